/*
** codec.c - SQL values to stored key/value bytes and back, by the column's
** codec (Go klevdb's typed-log codecs, spec section 9), and the parsing of
** times given in SQL (INTEGER microseconds or ISO-8601 text).
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kvt.h"

/* ---- buffer ---- */

void kvt_buf_free(kvt_buf *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

/* Makes room for extra more bytes, doubling so that a transaction's arena
** of many small rows grows in amortised O(1). */
static int buf_reserve(kvt_buf *b, size_t extra) {
  size_t need, cap;
  uint8_t *p;
  if (extra > SIZE_MAX - b->len) return SQLITE_NOMEM;
  need = b->len + extra;
  if (need <= b->cap) return SQLITE_OK;
  cap = b->cap ? b->cap : 256;
  while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  p = realloc(b->p, cap);
  if (!p) return SQLITE_NOMEM;
  b->p = p;
  b->cap = cap;
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

static int mismatch(char **err, const char *what, const char *want, kvt_codec c,
                    int t) {
  *err = sqlite3_mprintf("klevdb: %s must be %s for codec %s, got %s", what,
                         want, kvt_codec_name(c), type_name(t));
  return SQLITE_MISMATCH;
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

/* A base-10 integer literal and nothing else (no spaces, no fraction, no
** hex), within int64. SQLite's own text-to-integer casts accept junk such
** as '12abc' as 12; a stored key must not depend on that. */
static int parse_int64(const char *s, size_t n, int64_t *out) {
  size_t i = 0;
  int neg = 0;
  uint64_t u = 0, lim;
  if (n > 0 && (s[0] == '-' || s[0] == '+')) {
    neg = s[0] == '-';
    i++;
  }
  if (i == n) return -1;
  lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  for (; i < n; i++) {
    unsigned d;
    if (s[i] < '0' || s[i] > '9') return -1;
    d = (unsigned)(s[i] - '0');
    if (u > (lim - d) / 10) return -1;
    u = u * 10 + d;
  }
  /* Negating in unsigned arithmetic: -(INT64_MIN) does not fit int64_t. */
  *out = neg ? (int64_t)(0 - u) : (int64_t)u;
  return 0;
}

/* The bytes of a TEXT or BLOB value; n is 0 for an empty one (p may then
** be NULL). */
static const uint8_t *value_bytes(sqlite3_value *v, int t, size_t *n) {
  const uint8_t *p = t == SQLITE_BLOB ? sqlite3_value_blob(v)
                                      : sqlite3_value_text(v);
  *n = (size_t)sqlite3_value_bytes(v);
  return p;
}

/* Numbers are refused where bytes are wanted (blob, text, string, and
** stringopt): SQLite would turn 42 into the text '42', so a lookup by
** key = 42 and one by key = X'2A' would silently mean different things,
** and a forgotten key='integer' argument would go unnoticed. An explicit
** CAST(x AS TEXT) says what is meant. */
int kvt_encode(kvt_codec c, sqlite3_value *v, const char *what, kvt_buf *out,
               char **err) {
  int t = sqlite3_value_type(v);
  const uint8_t *p;
  size_t n;

  *err = NULL;
  /* NULL is absent in every codec: Go's empty flag, zero bytes on disk. */
  if (t == SQLITE_NULL) return SQLITE_OK;

  switch (c) {
  case KVT_BLOB:
  case KVT_TEXT:
  case KVT_STRING:
    if (t != SQLITE_BLOB && t != SQLITE_TEXT)
      return mismatch(err, what, "a BLOB or TEXT", c, t);
    p = value_bytes(v, t, &n);
    if (n > 0 && !p) return nomem(err);
    if (n > KLEVDB_MAX_PAYLOAD) return too_big(err, what, n);
    return buf_append(out, p, n) == SQLITE_OK ? SQLITE_OK : nomem(err);

  case KVT_INTEGER: {
    uint8_t b[10];
    int64_t x;
    if (t == SQLITE_INTEGER) {
      x = sqlite3_value_int64(v);
    } else if (t == SQLITE_TEXT) {
      p = value_bytes(v, t, &n);
      if (n > 0 && !p) return nomem(err);
      if (parse_int64((const char *)p, n, &x) != 0) {
        *err = sqlite3_mprintf("klevdb: %s must be an INTEGER for codec integer,"
                               " got TEXT that is not an integer", what);
        return SQLITE_MISMATCH;
      }
    } else {
      return mismatch(err, what, "an INTEGER", c, t);
    }
    n = klevdb_varint_encode(x, b);
    return buf_append(out, b, n) == SQLITE_OK ? SQLITE_OK : nomem(err);
  }

  case KVT_JSON: {
    char *num = NULL;
    int rc;
    if (t == SQLITE_BLOB)
      return mismatch(err, what, "TEXT, INTEGER or REAL", c, t);
    if (t == SQLITE_TEXT) {
      p = value_bytes(v, t, &n);
      if (n > 0 && !p) return nomem(err);
    } else {
      /* A number is stored as its JSON text. "%!.15g" is how SQLite
      ** itself prints a REAL (1.5, 1.0e+20), so it reads back the same as
      ** CAST(x AS TEXT) would. */
      num = t == SQLITE_INTEGER
                ? sqlite3_mprintf("%lld", (long long)sqlite3_value_int64(v))
                : sqlite3_mprintf("%!.15g", sqlite3_value_double(v));
      if (!num) return nomem(err);
      p = (const uint8_t *)num;
      n = strlen(num);
    }
    /* Numbers are short, so only a TEXT can be too big (no num to free). */
    if (n > KLEVDB_MAX_PAYLOAD) return too_big(err, what, n);
    /* Infinities print as Inf, which is no JSON either. */
    if (!klevdb_json_valid(p, n)) {
      sqlite3_free(num);
      *err = sqlite3_mprintf("klevdb: %s is not valid JSON", what);
      return SQLITE_MISMATCH;
    }
    rc = buf_append(out, p, n);
    sqlite3_free(num);
    return rc == SQLITE_OK ? SQLITE_OK : nomem(err);
  }

  case KVT_STRINGOPT: {
    size_t m;
    /* A Go string is any bytes, so a BLOB is a string too; invalid UTF-8
    ** becomes \ufffd exactly as Go's json.Marshal does. '' is not absent
    ** here: Go writes it as "" and only its empty flag (SQL NULL) is. */
    if (t != SQLITE_BLOB && t != SQLITE_TEXT)
      return mismatch(err, what, "TEXT or a BLOB", c, t);
    p = value_bytes(v, t, &n);
    if (n > 0 && !p) return nomem(err);
    /* The JSON form is never shorter than n + 2: skip measuring a value
    ** that cannot fit anyway. */
    if (n > KLEVDB_MAX_PAYLOAD) return too_big(err, what, n);
    m = klevdb_json_string_encode(p, n, NULL, 0);
    if (m > KLEVDB_MAX_PAYLOAD) return too_big(err, what, m);
    if (buf_reserve(out, m) != SQLITE_OK) return nomem(err);
    klevdb_json_string_encode(p, n, out->p + out->len, m);
    out->len += m;
    return SQLITE_OK;
  }
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

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
** days_from_civil): pure arithmetic, so no timegm(), TZ or locale. */
static int64_t days_from_civil(int64_t y, int m, int d) {
  int64_t era, yoe, doy, doe;
  y -= m <= 2;
  era = (y >= 0 ? y : y - 399) / 400;
  yoe = y - era * 400;
  doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m) {
  static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) return 29;
  return dm[m - 1];
}

/* Reads exactly k digits at s[*i]. */
static int digits(const char *s, size_t n, size_t *i, int k, int *out) {
  int v = 0;
  if (n - *i < (size_t)k) return -1;
  for (int j = 0; j < k; j++) {
    char ch = s[*i + (size_t)j];
    if (ch < '0' || ch > '9') return -1;
    v = v * 10 + (ch - '0');
  }
  *i += (size_t)k;
  *out = v;
  return 0;
}

static int expect(const char *s, size_t n, size_t *i, char ch) {
  if (*i >= n || s[*i] != ch) return -1;
  (*i)++;
  return 0;
}

/* YYYY-MM-DD[(T|t| )HH:MM[:SS[.fraction]][Z|z|+HH:MM|-HH:MM]]. Returns 0,
** -1 for a malformed text, or -2 for a field out of range. */
static int parse_iso(const char *s, size_t n, int64_t *out) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, zh = 0, zm = 0, zsign = 0;
  int64_t frac = 0;
  size_t i = 0;

  if (digits(s, n, &i, 4, &y) || expect(s, n, &i, '-') ||
      digits(s, n, &i, 2, &mo) || expect(s, n, &i, '-') ||
      digits(s, n, &i, 2, &d))
    return -1;
  if (i < n) {
    if (s[i] != 'T' && s[i] != 't' && s[i] != ' ') return -1;
    i++;
    if (digits(s, n, &i, 2, &h) || expect(s, n, &i, ':') ||
        digits(s, n, &i, 2, &mi))
      return -1;
    if (i < n && s[i] == ':') {
      i++;
      if (digits(s, n, &i, 2, &sec)) return -1;
      if (i < n && s[i] == '.') {
        /* Up to nanoseconds; digits past the microsecond are dropped,
        ** which floors since the fraction only ever adds. */
        int k = 0;
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, k++) {
          if (k >= 9) return -1;
          if (k < 6) frac = frac * 10 + (s[i] - '0');
        }
        if (k == 0) return -1;
        for (; k < 6; k++) frac *= 10;
      }
    }
    if (i < n) {
      if (s[i] == 'Z' || s[i] == 'z') {
        i++;
      } else if (s[i] == '+' || s[i] == '-') {
        zsign = s[i] == '-' ? -1 : 1;
        i++;
        if (digits(s, n, &i, 2, &zh) || expect(s, n, &i, ':') ||
            digits(s, n, &i, 2, &zm))
          return -1;
      } else {
        return -1;
      }
    }
    if (i != n) return -1;
  }
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) ||
      h > 23 || mi > 59 || sec > 59 || zh > 23 || zm > 59)
    return -2;
  *out = ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec) -
          zsign * (zh * 3600 + zm * 60)) * 1000000 + frac;
  return 0;
}

int kvt_parse_time(sqlite3_value *v, int64_t *out, char **err) {
  const char *s;
  size_t n;
  int r;

  *err = NULL;
  switch (sqlite3_value_type(v)) {
  case SQLITE_INTEGER:
    *out = sqlite3_value_int64(v);
    return SQLITE_OK;
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
  r = parse_iso(s, n, out);
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
