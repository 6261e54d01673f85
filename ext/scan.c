/*
** scan.c - klevdb_scan(dir [, start]), an eponymous-only table-valued
** function that reads any store directory read-only, without CREATE:
**
**   SELECT * FROM klevdb_scan('fixtures/v2-basic/store');
**   SELECT "offset", key FROM klevdb_scan('store', 5);
**
** Rows are (offset, time, key, value), oldest first, rowid = offset; key
** and value are BLOBs (NULL when absent). dir is resolved as in CREATE
** VIRTUAL TABLE; start (an offset >= 0) is where the scan begins. The
** store's indexes are read from its newest V2 index header (both for a V1
** store), so any store opens without naming them.
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvt.h"

#define SCAN_BATCH 256

enum { SC_OFFSET, SC_TIME, SC_KEY, SC_VALUE, SC_DIR, SC_START };

/* ---- index detection (shared with functions.c) ---- */

/* ---- the module ---- */

typedef struct scan_vtab {
  sqlite3_vtab base;
  sqlite3 *db;
} scan_vtab;

typedef struct scan_cursor {
  sqlite3_vtab_cursor base;
  klevdb *kdb;
  klevdb_batch b;
  size_t i;                 /* current message in b */
  bool eof;
  sqlite3_value *dir, *start;  /* the arguments, for the hidden columns */
} scan_cursor;

static int scan_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                        sqlite3_vtab **out, char **err) {
  (void)aux;
  (void)argc;
  (void)argv;
  (void)err;
  int rc = sqlite3_declare_vtab(
      db, "CREATE TABLE x(\"offset\" INTEGER, time INTEGER, key BLOB, value BLOB, "
          "dir HIDDEN, start HIDDEN)");
  if (rc != SQLITE_OK) return rc;
  scan_vtab *v = sqlite3_malloc(sizeof(*v));
  if (!v) return SQLITE_NOMEM;
  memset(v, 0, sizeof(*v));
  v->db = db;
  /* It reads files named in SQL: not from schema objects. */
  sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
  *out = &v->base;
  return SQLITE_OK;
}

static int scan_disconnect(sqlite3_vtab *vt) {
  sqlite3_free(vt);
  return SQLITE_OK;
}

/* idxNum bit 1: dir is argv[0]; bit 2: start is the next argument. */
static int scan_best_index(sqlite3_vtab *vt, sqlite3_index_info *info) {
  int dir = -1, start = -1;
  bool dir_unusable = false, start_unusable = false;
  for (int i = 0; i < info->nConstraint; i++) {
    const struct sqlite3_index_constraint *c = &info->aConstraint[i];
    if (c->op != SQLITE_INDEX_CONSTRAINT_EQ) continue;
    if (c->iColumn == SC_DIR) {
      if (c->usable) dir = i;
      else dir_unusable = true;
    } else if (c->iColumn == SC_START) {
      if (c->usable) start = i;
      else start_unusable = true;
    }
  }
  if (dir < 0) {
    if (dir_unusable) return SQLITE_CONSTRAINT;
    sqlite3_free(vt->zErrMsg);
    vt->zErrMsg = sqlite3_mprintf(
        "klevdb: klevdb_scan: a store directory is required, as in klevdb_scan('dir')");
    return vt->zErrMsg ? SQLITE_ERROR : SQLITE_NOMEM;
  }
  if (start < 0 && start_unusable) return SQLITE_CONSTRAINT;
  int n = 0;
  info->aConstraintUsage[dir].argvIndex = ++n;
  info->aConstraintUsage[dir].omit = 1;
  info->idxNum = 1;
  if (start >= 0) {
    info->aConstraintUsage[start].argvIndex = ++n;
    info->aConstraintUsage[start].omit = 1;
    info->idxNum |= 2;
  }
  info->estimatedCost = start >= 0 ? 500.0 : 1000.0;
  info->estimatedRows = start >= 0 ? 500 : 1000;
  if (info->nOrderBy == 1 && info->aOrderBy[0].iColumn == SC_OFFSET && !info->aOrderBy[0].desc)
    info->orderByConsumed = 1;
  return SQLITE_OK;
}

static int scan_open(sqlite3_vtab *vt, sqlite3_vtab_cursor **out) {
  (void)vt;
  scan_cursor *c = sqlite3_malloc(sizeof(*c));
  if (!c) return SQLITE_NOMEM;
  memset(c, 0, sizeof(*c));
  klevdb_batch init = KLEVDB_BATCH_INIT;
  c->b = init;
  c->eof = true;
  *out = &c->base;
  return SQLITE_OK;
}

static void scan_reset(scan_cursor *c) {
  klevdb_batch_free(&c->b);
  klevdb_batch init = KLEVDB_BATCH_INIT;
  c->b = init;
  if (c->kdb) klevdb_close(c->kdb);
  c->kdb = NULL;
  sqlite3_value_free(c->dir);
  sqlite3_value_free(c->start);
  c->dir = c->start = NULL;
  c->i = 0;
  c->eof = true;
}

static int scan_close(sqlite3_vtab_cursor *cur) {
  scan_cursor *c = (scan_cursor *)cur;
  scan_reset(c);
  sqlite3_free(c);
  return SQLITE_OK;
}

static int scan_fail(scan_cursor *c, int rc, const char *msg) {
  sqlite3_vtab *vt = c->base.pVtab;
  const char *m = msg && strncmp(msg, "klevdb: ", 8) == 0 ? msg + 8 : (msg ? msg : "");
  const char *dir = c->dir ? (const char *)sqlite3_value_text(c->dir) : NULL;
  sqlite3_free(vt->zErrMsg);
  vt->zErrMsg = sqlite3_mprintf("klevdb: scan %s: %s", dir ? dir : "", m);
  return vt->zErrMsg ? rc : SQLITE_NOMEM;
}

/* Reads the next batch from where the last one ended. */
static int scan_fill(scan_cursor *c, int64_t from) {
  klevdb_err rc = klevdb_consume(c->kdb, from, SCAN_BATCH, &c->b);
  if (rc == KLEVDB_EINVALID_OFFSET) {
    /* A start past the end: nothing to see. */
    int64_t next;
    if (klevdb_next_offset(c->kdb, &next) == KLEVDB_OK && from >= next) {
      c->b.len = 0;
      c->eof = true;
      return SQLITE_OK;
    }
  }
  if (rc) {
    c->eof = true;
    return scan_fail(c, kvt_rc(rc), klevdb_errmsg(c->kdb));
  }
  c->i = 0;
  c->eof = c->b.len == 0;
  return SQLITE_OK;
}

static int scan_filter(sqlite3_vtab_cursor *cur, int idx, const char *idxStr, int argc,
                       sqlite3_value **argv) {
  (void)idxStr;
  scan_cursor *c = (scan_cursor *)cur;
  scan_vtab *vt = (scan_vtab *)cur->pVtab;
  scan_reset(c);
  if (!(idx & 1) || argc < 1) return scan_fail(c, SQLITE_ERROR, "no directory given");
  c->dir = sqlite3_value_dup(argv[0]);
  if (idx & 2) c->start = sqlite3_value_dup(argv[1]);
  if (!c->dir || ((idx & 2) && !c->start)) return SQLITE_NOMEM;

  int64_t start = KLEVDB_OFFSET_OLDEST;
  if (idx & 2) {
    int t = sqlite3_value_type(argv[1]);
    if (t == SQLITE_NULL) return SQLITE_OK; /* start = NULL matches nothing */
    if (t != SQLITE_INTEGER || sqlite3_value_int64(argv[1]) < 0) {
      sqlite3_free(cur->pVtab->zErrMsg);
      cur->pVtab->zErrMsg =
          sqlite3_mprintf("klevdb: klevdb_scan: start must be an INTEGER offset >= 0");
      return SQLITE_MISMATCH;
    }
    start = sqlite3_value_int64(argv[1]);
  }
  int t = sqlite3_value_type(argv[0]);
  if (t == SQLITE_NULL) return SQLITE_OK; /* dir = NULL matches nothing */
  const char *given = (const char *)sqlite3_value_text(argv[0]);
  if (t != SQLITE_TEXT || !given || !*given) {
    sqlite3_free(cur->pVtab->zErrMsg);
    cur->pVtab->zErrMsg =
        sqlite3_mprintf("klevdb: klevdb_scan: dir must be a non-empty TEXT path");
    return SQLITE_MISMATCH;
  }
  char *dir = kvt_resolve_dir(vt->db, "main", given);
  if (!dir) return SQLITE_NOMEM;
  /* The core's message for a missing directory speaks of create_dirs. */
  struct stat sb;
  const char *why = NULL;
  if (stat(dir, &sb) < 0)
    why = errno == ENOENT || errno == ENOTDIR ? "no such directory" : strerror(errno);
  else if (!S_ISDIR(sb.st_mode))
    why = "not a directory";
  if (why) {
    sqlite3_free(dir);
    return scan_fail(c, SQLITE_CANTOPEN, why);
  }
  klevdb_options o = {0};
  o.readonly = 1;
  klevdb_dir_indexes(dir, &o.key_index, &o.time_index);
  klevdb_error e;
  klevdb_err rc = klevdb_open(dir, &o, &c->kdb, &e);
  sqlite3_free(dir);
  if (rc) {
    c->kdb = NULL;
    return scan_fail(c, kvt_rc(rc), e.msg);
  }
  return scan_fill(c, start);
}

static int scan_next(sqlite3_vtab_cursor *cur) {
  scan_cursor *c = (scan_cursor *)cur;
  if (c->eof) return SQLITE_OK;
  if (++c->i < c->b.len) return SQLITE_OK;
  return scan_fill(c, c->b.next_offset);
}

static int scan_eof(sqlite3_vtab_cursor *cur) {
  return ((scan_cursor *)cur)->eof;
}

static int scan_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int col) {
  scan_cursor *c = (scan_cursor *)cur;
  const klevdb_msg *m = &c->b.msgs[c->i];
  switch (col) {
  case SC_OFFSET: sqlite3_result_int64(ctx, m->offset); break;
  case SC_TIME: sqlite3_result_int64(ctx, m->time); break;
  case SC_KEY:
    if (m->key_len) sqlite3_result_blob64(ctx, m->key, m->key_len, SQLITE_TRANSIENT);
    break;
  case SC_VALUE:
    if (m->value_len) sqlite3_result_blob64(ctx, m->value, m->value_len, SQLITE_TRANSIENT);
    break;
  case SC_DIR:
    if (c->dir) sqlite3_result_value(ctx, c->dir);
    break;
  case SC_START:
    if (c->start) sqlite3_result_value(ctx, c->start);
    break;
  }
  return SQLITE_OK;
}

static int scan_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *rowid) {
  scan_cursor *c = (scan_cursor *)cur;
  *rowid = c->b.msgs[c->i].offset;
  return SQLITE_OK;
}

/* Eponymous only (no xCreate); read-only. */
static sqlite3_module scan_module = {
    .iVersion = 0,
    .xConnect = scan_connect,
    .xBestIndex = scan_best_index,
    .xDisconnect = scan_disconnect,
    .xOpen = scan_open,
    .xClose = scan_close,
    .xFilter = scan_filter,
    .xNext = scan_next,
    .xEof = scan_eof,
    .xColumn = scan_column,
    .xRowid = scan_rowid,
};

int kvt_register_scan(sqlite3 *db) {
  return sqlite3_create_module(db, "klevdb_scan", &scan_module, NULL);
}
