/*
** codec.c - SQL values to stored key/value bytes and back, by the column's
** codec (Go klevdb's typed-log codecs), and the parsing of
** times given in SQL (INTEGER microseconds or ISO-8601 text).
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kvt.h"

/* ---- buffer ---- */

void kvt_buf_free(kvt_buf *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = b->ready = 0;
}

/* A big transaction's arena takes a page fault for each new page it
** writes, and on a VM a fault costs microseconds: the pages ahead are
** made ready a few MiB at a time with one call instead (a hint; nothing
** changes where it is refused). About a tenth of a bulk insert's time. */
#define READY_FROM ((size_t)8 << 20)
#define READY_STEP ((size_t)4 << 20)

static void buf_ready(kvt_buf *b, size_t need) {
  uintptr_t lo = ((uintptr_t)b->p + b->ready + 4095) & ~(uintptr_t)4095;
  size_t upto = need + READY_STEP < b->cap ? need + READY_STEP : b->cap;
  uintptr_t hi = ((uintptr_t)b->p + upto) & ~(uintptr_t)4095;
  if (hi > lo) madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE);
  b->ready = upto;
}

/* Makes room for extra more bytes, doubling so that a transaction's arena
** of many small rows grows in amortised O(1). */
static int buf_reserve(kvt_buf *b, size_t extra) {
  size_t need, cap;
  uint8_t *p;
  if (extra > SIZE_MAX - b->len) return SQLITE_NOMEM;
  need = b->len + extra;
  if (need > b->ready && b->cap >= READY_FROM && need <= b->cap) buf_ready(b, need);
  if (need <= b->cap) return SQLITE_OK;
  cap = b->cap ? b->cap : 256;
  while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  p = realloc(b->p, cap);
  if (!p) return SQLITE_NOMEM;
  b->p = p;
  b->cap = cap;
  if (b->ready > b->len) b->ready = b->len;   /* a copy touched only what it held */
  if (cap >= READY_FROM) buf_ready(b, need);
  return SQLITE_OK;
}

static int buf_append(kvt_buf *b, const void *p, size_t n) {
  if (n == 0) return SQLITE_OK; /* p may be NULL (an empty BLOB) */
  if (buf_reserve(b, n) != SQLITE_OK) return SQLITE_NOMEM;
  memcpy(b->p + b->len, p, n);
  b->len += n;
  return SQLITE_OK;
}

/* ---- encoding ---- */

static const char *type_name(int t) {
  switch (t) {
  case SQLITE_INTEGER: return "INTEGER";
  case SQLITE_FLOAT: return "REAL";
  case SQLITE_TEXT: return "TEXT";
  case SQLITE_BLOB: return "BLOB";
  default: return "NULL";
  }
}

static int too_big(char **err, const char *what, size_t n) {
  *err = sqlite3_mprintf("klevdb: %s too big: %llu bytes, the limit is %d", what,
                         (unsigned long long)n, KLEVDB_MAX_PAYLOAD);
  return SQLITE_TOOBIG;
}

static int nomem(char **err) {
  *err = sqlite3_mprintf("klevdb: out of memory");
  return SQLITE_NOMEM;
}

/* The bytes of a TEXT or BLOB value; n is 0 for an empty one (p may then
** be NULL). */
static const uint8_t *value_bytes(sqlite3_value *v, int t, size_t *n) {
  const uint8_t *p = t == SQLITE_BLOB ? sqlite3_value_blob(v)
                                      : sqlite3_value_text(v);
  *n = (size_t)sqlite3_value_bytes(v);
  return p;
}

const char *kvt_codec_type(kvt_codec c) {
  switch (c) {
  case KVT_BLOB: return "BLOB";
  case KVT_INTEGER: return "INTEGER";
  default: return "TEXT";
  }
}

/* The INTEGER a value is under INTEGER affinity, as SQLite converts it
** when it stores into or compares with an INTEGER column: an integer, a
** REAL with a whole value (not the two extremes, as in SQLite), or a TEXT
** that reads as one of these (surrounding spaces allowed, not '12abc' or
** hex). v is not changed. Returns 0, or -1 when it stays no INTEGER. */
static int integer_affinity(sqlite3_value *v, int64_t *out) {
  sqlite3_value *d = NULL;
  int t = sqlite3_value_type(v);
  if (t == SQLITE_TEXT) {
    /* Converting changes the value: work on a copy. */
    if (!(d = sqlite3_value_dup(v))) return -1;
    t = sqlite3_value_numeric_type(d);
    v = d;
  }
  int rc = -1;
  if (t == SQLITE_INTEGER) {
    *out = sqlite3_value_int64(v);
    rc = 0;
  } else if (t == SQLITE_FLOAT) {
    double x = sqlite3_value_double(v);
    if (x > -9223372036854775808.0 && x < 9223372036854775808.0) {
      int64_t i = (int64_t)x;
      if ((double)i == x && i > INT64_MIN && i < INT64_MAX) {
        *out = i;
        rc = 0;
      }
    }
  }
  sqlite3_value_free(d);
  return rc;
}

/* Each codec has the SQL type it reads back (kvt_codec_type), declared as
** its column's type. A value is converted as SQLite converts it into a
** plain column of that type (INTEGER affinity; numbers become TEXT under
** TEXT affinity; a BLOB column converts nothing), and then refused unless
** the codec gives it back with the same type and value: no TEXT in a blob
** column, no BLOB in a text one, no REAL 1.5 in an integer one. The same
** conversion is what SQLite applies to the right side of key = ?, so a
** lookup encodes its argument here too: refused means equal to no row. */
int kvt_encode(kvt_codec c, sqlite3_value *v, const char *what, kvt_buf *out,
               char **err) {
  int t = sqlite3_value_type(v);
  const uint8_t *p;
  size_t n;
  sqlite3_value *d = NULL;
  int rc;

  *err = NULL;
  /* NULL is absent in every codec: Go's empty flag, zero bytes on disk. */
  if (t == SQLITE_NULL) return SQLITE_OK;

  switch (c) {
  case KVT_BLOB:
    if (t != SQLITE_BLOB) {
      *err = sqlite3_mprintf("klevdb: %s must be a BLOB for codec blob, got %s%s", what,
                             type_name(t), t == SQLITE_TEXT ? " (it would read back as a BLOB; "
                             "the text codec stores text)" : "");
      return SQLITE_MISMATCH;
    }
    p = value_bytes(v, t, &n);
    if (n > 0 && !p) return nomem(err);
    if (n > KLEVDB_MAX_PAYLOAD) return too_big(err, what, n);
    return buf_append(out, p, n) == SQLITE_OK ? SQLITE_OK : nomem(err);

  case KVT_INTEGER: {
    uint8_t b[10];
    int64_t x;
    if (t == SQLITE_BLOB || integer_affinity(v, &x) != 0) {
      if (t == SQLITE_TEXT)
        *err = sqlite3_mprintf("klevdb: %s must be an INTEGER for codec integer,"
                               " got TEXT that is not an integer", what);
      else
        *err = sqlite3_mprintf("klevdb: %s must be an INTEGER for codec integer, got %s",
                               what, t == SQLITE_FLOAT ? "a REAL that is not a whole number"
                                                       : type_name(t));
      return SQLITE_MISMATCH;
    }
    n = klevdb_varint_encode(x, b);
    return buf_append(out, b, n) == SQLITE_OK ? SQLITE_OK : nomem(err);
  }

  case KVT_TEXT:
  case KVT_STRING:
  case KVT_JSON:
  case KVT_STRINGOPT:
    if (t == SQLITE_BLOB) {
      *err = sqlite3_mprintf("klevdb: %s must be TEXT for codec %s, got BLOB (it would read "
                             "back as TEXT; CAST(x AS TEXT) says so)", what,
                             kvt_codec_name(c));
      return SQLITE_MISMATCH;
    }
    if (t != SQLITE_TEXT) {
      /* A number: its text, exactly as TEXT affinity would make it. */
      if (!(d = sqlite3_value_dup(v))) return nomem(err);
      v = d;
    }
    p = value_bytes(v, SQLITE_TEXT, &n);
    rc = SQLITE_OK;
    if (n > 0 && !p) rc = nomem(err);
    else if (n > KLEVDB_MAX_PAYLOAD) rc = too_big(err, what, n);
    else if (c == KVT_JSON && (n == 0 || !klevdb_json_valid(p, n))) {
      /* Infinities print as Inf, which is no JSON either. */
      *err = sqlite3_mprintf("klevdb: %s is not valid JSON", what);
      rc = SQLITE_MISMATCH;
    } else if (c == KVT_STRINGOPT) {
      /* Go's json.Marshal form; '' is not absent here: Go writes it as ""
      ** and only its empty flag (SQL NULL) is. The JSON form is never
      ** shorter than n + 2. */
      size_t m = klevdb_json_string_encode(p, n, NULL, 0);
      if (m > KLEVDB_MAX_PAYLOAD) rc = too_big(err, what, m);
      else if (buf_reserve(out, m) != SQLITE_OK) rc = nomem(err);
      else {
        klevdb_json_string_encode(p, n, out->p + out->len, m);
        out->len += m;
      }
    } else if (buf_append(out, p, n) != SQLITE_OK) {
      rc = nomem(err);
    }
    sqlite3_value_free(d);
    return rc;
  }
  *err = sqlite3_mprintf("klevdb: %s has an unknown codec %d", what, (int)c);
  return SQLITE_ERROR;
}

/* ---- decoding ---- */

void kvt_result(sqlite3_context *ctx, kvt_codec c, const uint8_t *p, size_t n) {
  if (n == 0) {
    /* Go's StringCodec cannot tell absent from "": it reads back as ''. */
    if (c == KVT_STRING) sqlite3_result_text(ctx, "", 0, SQLITE_STATIC);
    else sqlite3_result_null(ctx);
    return;
  }
  switch (c) {
  case KVT_BLOB:
    sqlite3_result_blob64(ctx, p, n, SQLITE_TRANSIENT);
    return;
  case KVT_TEXT:
  case KVT_JSON:
  case KVT_STRING:
    sqlite3_result_text64(ctx, (const char *)p, n, SQLITE_TRANSIENT, SQLITE_UTF8);
    return;
  case KVT_INTEGER: {
    int64_t x;
    int r = klevdb_varint_decode(p, n, &x);
    /* An error, not NULL: Go fails the read too, and a NULL would hide a
    ** table declared with the wrong codec. Trailing bytes are ignored, as
    ** Go ignores them. */
    if (r <= 0) {
      sqlite3_result_error(ctx, r == 0
          ? "klevdb: stored key/value is not a valid varint (short buffer)"
          : "klevdb: stored key/value is not a valid varint (overflow)", -1);
      return;
    }
    sqlite3_result_int64(ctx, x);
    return;
  }
  case KVT_STRINGOPT: {
    long m = klevdb_json_string_decode(p, n, NULL, 0);
    char *s;
    if (m < 0) {
      sqlite3_result_error(ctx, "klevdb: stored value is not a JSON string", -1);
      return;
    }
    /* JSON null decodes to "" as in Go, and "" stays '' (not NULL). */
    if (m == 0) {
      sqlite3_result_text(ctx, "", 0, SQLITE_STATIC);
      return;
    }
    s = sqlite3_malloc64((sqlite3_uint64)m);
    if (!s) {
      sqlite3_result_error_nomem(ctx);
      return;
    }
    klevdb_json_string_decode(p, n, (uint8_t *)s, (size_t)m);
    sqlite3_result_text64(ctx, s, (sqlite3_uint64)m, sqlite3_free, SQLITE_UTF8);
    return;
  }
  }
  sqlite3_result_error(ctx, "klevdb: unknown codec", -1);
}

/* ---- times ---- */

int kvt_parse_time(sqlite3_value *v, int64_t *out, char **err) {
  const char *s;
  size_t n;
  int r;

  *err = NULL;
  switch (sqlite3_value_type(v)) {
  case SQLITE_INTEGER:
    *out = sqlite3_value_int64(v);
    return SQLITE_OK;
  case SQLITE_FLOAT:
    /* time is an INTEGER column: a whole REAL is that INTEGER. */
    if (integer_affinity(v, out) == 0) return SQLITE_OK;
    *err = sqlite3_mprintf("klevdb: time must be INTEGER microseconds or "
                           "ISO-8601 TEXT, got a REAL that is not a whole number");
    return SQLITE_MISMATCH;
  case SQLITE_TEXT:
    break;
  case SQLITE_NULL:
    /* The caller decides what a NULL time means (now, or no match), so
    ** there is no message to free. */
    return SQLITE_MISMATCH;
  default:
    *err = sqlite3_mprintf("klevdb: time must be INTEGER microseconds or "
                           "ISO-8601 TEXT, got %s",
                           type_name(sqlite3_value_type(v)));
    return SQLITE_MISMATCH;
  }
  s = (const char *)sqlite3_value_text(v);
  n = (size_t)sqlite3_value_bytes(v);
  if (!s) return nomem(err);
  r = klevdb_parse_time(s, n, out);
  /* Not a date: a number in TEXT, as an INTEGER column takes it. */
  if (r == -1 && integer_affinity(v, out) == 0) return SQLITE_OK;
  if (r == -1) {
    *err = sqlite3_mprintf("klevdb: time '%.*s' is not ISO-8601 (YYYY-MM-DD"
                           "[THH:MM:SS[.fraction]][Z|+HH:MM|-HH:MM]) or "
                           "INTEGER microseconds", (int)(n > 100 ? 100 : n), s);
    return SQLITE_MISMATCH;
  }
  if (r == -2) {
    *err = sqlite3_mprintf("klevdb: time '%s' is out of range (no such "
                           "month, day, hour, minute, second or zone)", s);
    return SQLITE_MISMATCH;
  }
  return SQLITE_OK;
}
