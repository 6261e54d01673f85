/*
** errors.c - the extension's error mapping: the core's error classes as
** SQLite result codes, and a table's "klevdb: ..." message. Shared by both
** halves of the table and by the SQL functions.
*/
#include <stdarg.h>
#include <string.h>

#include "kvt.h"

int kvt_rc(klevdb_err e) {
  switch (e) {
  case KLEVDB_OK: return SQLITE_OK;
  case KLEVDB_EREADONLY: return SQLITE_READONLY;
  case KLEVDB_ECORRUPT_LOG:
  case KLEVDB_ECORRUPT_INDEX: return SQLITE_CORRUPT;
  case KLEVDB_ELOCKED:
  case KLEVDB_ETIMEOUT: return SQLITE_BUSY;
  case KLEVDB_ETOOBIG: return SQLITE_TOOBIG;
  case KLEVDB_EIO: return SQLITE_IOERR;
  case KLEVDB_ENOMEM: return SQLITE_NOMEM;
  case KLEVDB_ECLOSED: return SQLITE_ABORT;
  case KLEVDB_ENOTFOUND:
  case KLEVDB_EINVALID_OFFSET:
  case KLEVDB_ENOINDEX:
  case KLEVDB_EINVAL: return SQLITE_ERROR;
  }
  return SQLITE_ERROR;
}

int kvt_error(kvt_vtab *vt, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *m = sqlite3_vmprintf(fmt, ap);
  va_end(ap);
  sqlite3_free(vt->base.zErrMsg);
  vt->base.zErrMsg = m && strncmp(m, "klevdb: ", 8) != 0 ? sqlite3_mprintf("klevdb: %s", m) : m;
  if (vt->base.zErrMsg != m) sqlite3_free(m);
  return rc;
}
