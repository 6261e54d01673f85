/*
** error.c - the one error type of libklevdb: a class (klevdb_err) and a
** "klevdb: ..." message, set where the failure happens.
*/
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "kdb.h"

static const char PREFIX[] = "klevdb: ";

static void vset(klevdb_error *e, klevdb_err code, const char *fmt, va_list ap) {
  e->code = code;
  e->reason = KLEVDB_REASON_NONE;
  memcpy(e->msg, PREFIX, sizeof(PREFIX));
  vsnprintf(e->msg + sizeof(PREFIX) - 1, sizeof(e->msg) - sizeof(PREFIX) + 1, fmt, ap);
}

klevdb_err kerr(klevdb_error *e, klevdb_err code, const char *fmt, ...) {
  if (e) {
    va_list ap;
    va_start(ap, fmt);
    vset(e, code, fmt, ap);
    va_end(ap);
  }
  return code;
}

klevdb_err kerr_sys(klevdb_error *e, int errno_value, const char *fmt, ...) {
  klevdb_err code = errno_value == ENOMEM ? KLEVDB_ENOMEM : KLEVDB_EIO;
  if (e) {
    va_list ap;
    va_start(ap, fmt);
    vset(e, code, fmt, ap);
    va_end(ap);
    size_t n = strlen(e->msg);
    snprintf(e->msg + n, sizeof(e->msg) - n, ": %s", strerror(errno_value));
  }
  return code;
}

void kerr_wrap(klevdb_error *e, const char *fmt, ...) {
  if (!e) return;
  char what[128], rest[sizeof(e->msg)];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof(what), fmt, ap);
  va_end(ap);
  const char *old = e->msg;
  if (strncmp(old, PREFIX, sizeof(PREFIX) - 1) == 0) old += sizeof(PREFIX) - 1;
  snprintf(rest, sizeof(rest), "%s", old);
  if (snprintf(e->msg, sizeof(e->msg), "%s%s: %s", PREFIX, what, rest) < 0) e->msg[0] = 0;
}

const char *klevdb_errname(klevdb_err code) {
  switch (code) {
  case KLEVDB_OK: return "ok";
  case KLEVDB_ENOTFOUND: return "not_found";
  case KLEVDB_EINVALID_OFFSET: return "invalid_offset";
  case KLEVDB_ENOINDEX: return "no_index";
  case KLEVDB_EREADONLY: return "readonly";
  case KLEVDB_ECORRUPT_LOG: return "log_corrupted";
  case KLEVDB_ECORRUPT_INDEX: return "index_corrupted";
  case KLEVDB_ELOCKED: return "locked";
  case KLEVDB_ETOOBIG: return "too_big";
  case KLEVDB_EIO: return "io";
  case KLEVDB_EINVAL: return "invalid_argument";
  case KLEVDB_ENOMEM: return "no_memory";
  case KLEVDB_ECLOSED: return "closed";
  case KLEVDB_ETIMEOUT: return "timeout";
  }
  return "unknown";
}
