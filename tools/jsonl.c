/*
** jsonl.c - one line of publish's JSON-lines input: an object with key,
** value and time (and the offset and time_us that --json output adds), read
** by a small parser that takes exactly what those fields can hold.
*/
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_buf_reserve(cli_buf *b, size_t more) {
  if (b->cap - b->len >= more) return 0;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap - b->len < more) {
    if (cap > SIZE_MAX / 2) return -1;
    cap *= 2;
  }
  uint8_t *p = realloc(b->p, cap);
  if (!p) return -1;
  b->p = p;
  b->cap = cap;
  return 0;
}

void cli_buf_free(cli_buf *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

typedef struct jp {
  const char *s;
  size_t n, i;
  cli_buf *buf;
  char *err;
  size_t errcap;
} jp;

#define J_ERR (-1)
#define J_NOMEM (-2)

static int fail(jp *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(jp *p, const char *fmt, ...) {
  int k = snprintf(p->err, p->errcap, "column %zu: ", p->i + 1);
  va_list ap;
  va_start(ap, fmt);
  if (k >= 0 && (size_t)k < p->errcap) vsnprintf(p->err + k, p->errcap - (size_t)k, fmt, ap);
  va_end(ap);
  return J_ERR;
}

static void ws(jp *p) {
  while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\r' ||
                         p->s[p->i] == '\n'))
    p->i++;
}

static bool peek(jp *p, char ch) { return p->i < p->n && p->s[p->i] == ch; }

static bool word(jp *p, const char *w) {
  size_t l = strlen(w);
  if (p->n - p->i < l || memcmp(p->s + p->i, w, l) != 0) return false;
  p->i += l;
  return true;
}

static int put(jp *p, const void *data, size_t len) {
  if (!len) return 0;
  if (cli_buf_reserve(p->buf, len)) return J_NOMEM;
  memcpy(p->buf->p + p->buf->len, data, len);
  p->buf->len += len;
  return 0;
}

static int hex4(jp *p, uint32_t *out) {
  uint32_t v = 0;
  if (p->n - p->i < 4) return fail(p, "short \\u escape");
  for (int k = 0; k < 4; k++) {
    char ch = p->s[p->i++];
    v <<= 4;
    if (ch >= '0' && ch <= '9') v |= (uint32_t)(ch - '0');
    else if (ch >= 'a' && ch <= 'f') v |= (uint32_t)(ch - 'a' + 10);
    else if (ch >= 'A' && ch <= 'F') v |= (uint32_t)(ch - 'A' + 10);
    else return fail(p, "bad \\u escape");
  }
  *out = v;
  return 0;
}

static int put_utf8(jp *p, uint32_t cp) {
  uint8_t b[4];
  size_t n;
  if (cp < 0x80) {
    b[0] = (uint8_t)cp;
    n = 1;
  } else if (cp < 0x800) {
    b[0] = (uint8_t)(0xC0 | cp >> 6);
    b[1] = (uint8_t)(0x80 | (cp & 0x3F));
    n = 2;
  } else if (cp < 0x10000) {
    b[0] = (uint8_t)(0xE0 | cp >> 12);
    b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    b[2] = (uint8_t)(0x80 | (cp & 0x3F));
    n = 3;
  } else {
    b[0] = (uint8_t)(0xF0 | cp >> 18);
    b[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    b[3] = (uint8_t)(0x80 | (cp & 0x3F));
    n = 4;
  }
  return put(p, b, n);
}

static int escape(jp *p) {
  char ch = p->s[p->i++];
  const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
  const char *at = ch ? strchr(from, ch) : NULL;
  if (at) return put(p, &to[at - from], 1);
  if (ch != 'u') {
    p->i--;
    return fail(p, "bad escape \\%c", ch);
  }
  uint32_t cp, lo;
  int rc = hex4(p, &cp);
  if (rc) return rc;
  if (cp >= 0xDC00 && cp <= 0xDFFF) return fail(p, "lone low surrogate in \\u escape");
  if (cp >= 0xD800 && cp <= 0xDBFF) {
    if (!word(p, "\\u")) return fail(p, "high surrogate without its low half");
    if ((rc = hex4(p, &lo))) return rc;
    if (lo < 0xDC00 || lo > 0xDFFF) return fail(p, "high surrogate without its low half");
    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
  }
  return put_utf8(p, cp);
}

/* A JSON string at p->i, decoded onto the end of the buffer. Bytes that
** are not UTF-8 are kept as they are: the input is the user's data. */
static int string(jp *p, size_t *pos, size_t *len) {
  if (!peek(p, '"')) return fail(p, "expected a string");
  p->i++;
  *pos = p->buf->len;
  for (;;) {
    size_t start = p->i;
    while (p->i < p->n && p->s[p->i] != '"' && p->s[p->i] != '\\' &&
           (unsigned char)p->s[p->i] >= 0x20)
      p->i++;
    int rc = put(p, p->s + start, p->i - start);
    if (rc) return rc;
    if (p->i >= p->n) return fail(p, "unterminated string");
    char ch = p->s[p->i++];
    if (ch == '"') break;
    if (ch != '\\') {
      p->i--;
      return fail(p, "control character in a string (escape it)");
    }
    if (p->i >= p->n) return fail(p, "unterminated string");
    if ((rc = escape(p))) return rc;
  }
  *len = p->buf->len - *pos;
  return 0;
}

/* An integer; fractions and exponents are refused, not rounded. */
static int integer(jp *p, int64_t *out) {
  bool neg = peek(p, '-');
  if (neg) p->i++;
  if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9') return fail(p, "expected a number");
  int64_t v = 0;
  while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
    int dgt = p->s[p->i++] - '0';
    if (v > (INT64_MAX - dgt) / 10) return fail(p, "number out of range");
    v = v * 10 + dgt;
  }
  if (p->i < p->n && (p->s[p->i] == '.' || p->s[p->i] == 'e' || p->s[p->i] == 'E'))
    return fail(p, "expected an integer");
  *out = neg ? -v : v;
  return 0;
}

/* A key or value: a string, null (absent) or {"base64": "..."}. */
static int bytes_field(jp *p, const char *field, size_t *pos, size_t *len) {
  if (word(p, "null")) {
    *pos = p->buf->len;
    *len = 0;
    return 0;
  }
  if (peek(p, '"')) return string(p, pos, len);
  if (!peek(p, '{'))
    return fail(p, "%s must be a string, null or {\"base64\": \"...\"}", field);
  p->i++;
  ws(p);
  size_t npos, nlen;
  int rc = string(p, &npos, &nlen);
  if (rc) return rc;
  bool is_b64 = nlen == 6 && memcmp(p->buf->p + npos, "base64", 6) == 0;
  p->buf->len = npos;
  if (!is_b64) return fail(p, "%s: the only field of an object is \"base64\"", field);
  ws(p);
  if (!peek(p, ':')) return fail(p, "expected ':'");
  p->i++;
  ws(p);
  if ((rc = string(p, pos, len))) return rc;
  long got = 0;
  if (*len) got = cli_base64_decode((const char *)p->buf->p + *pos, *len, p->buf->p + *pos);
  if (got < 0) return fail(p, "%s: not base64", field);
  *len = (size_t)got;
  p->buf->len = *pos + *len;
  ws(p);
  if (!peek(p, '}')) return fail(p, "%s: expected '}' after the base64 text", field);
  p->i++;
  return 0;
}

/* "time": ISO-8601 text, integer microseconds, or null (now). */
static int time_field(jp *p, cli_jmsg *m) {
  if (word(p, "null")) {
    m->has_time = false;
    return 0;
  }
  if (!peek(p, '"')) {
    int rc = integer(p, &m->time);
    if (rc) return fail(p, "time must be an ISO-8601 string or integer microseconds");
    m->has_time = true;
    return 0;
  }
  size_t at = p->i, pos, len;
  int rc = string(p, &pos, &len);
  if (rc) return rc;
  char text[64];
  bool fits = len < sizeof(text);
  if (fits) {
    if (len) memcpy(text, p->buf->p + pos, len);
    text[len] = 0;
  }
  p->buf->len = pos;
  if (!fits || cli_time_parse(text, &m->time) != 0) {
    p->i = at;
    return fail(p, "time is not ISO-8601 (YYYY-MM-DD[THH:MM[:SS[.frac]]][Z|+HH:MM])");
  }
  m->has_time = true;
  return 0;
}

static int field(jp *p, cli_jmsg *m, bool *time_us_seen) {
  size_t at = p->i, npos, nlen;
  int rc = string(p, &npos, &nlen);
  if (rc) return rc;
  char name[16] = "";
  if (nlen && nlen < sizeof(name)) memcpy(name, p->buf->p + npos, nlen);
  p->buf->len = npos;
  ws(p);
  if (!peek(p, ':')) return fail(p, "expected ':'");
  p->i++;
  ws(p);
  if (nlen < sizeof(name) && !memchr(name, 0, nlen)) {
    if (!strcmp(name, "key")) {
      m->has_key = true;
      return bytes_field(p, "key", &m->key_pos, &m->key_len);
    }
    if (!strcmp(name, "value")) {
      m->has_value = true;
      return bytes_field(p, "value", &m->value_pos, &m->value_len);
    }
    if (!strcmp(name, "time")) {
      /* dump --json gives both; the exact microseconds win. */
      if (!*time_us_seen) return time_field(p, m);
      cli_jmsg scratch = *m;
      return time_field(p, &scratch);
    }
    if (!strcmp(name, "time_us")) {
      *time_us_seen = true;
      m->has_time = true;
      if (integer(p, &m->time)) return fail(p, "time_us must be an integer");
      return 0;
    }
    if (!strcmp(name, "offset")) {
      /* Offsets are the log's to give; accepted so dump output reads back. */
      int64_t ignored;
      if (word(p, "null") || integer(p, &ignored) == 0) return 0;
      return fail(p, "offset must be an integer");
    }
  }
  p->i = at;
  return fail(p, "unknown field (expected key, value, time)");
}

int cli_jsonl_parse(const char *line, size_t n, cli_buf *buf, cli_jmsg *m, char *err,
                    size_t errcap) {
  jp p = {line, n, 0, buf, err, errcap};
  bool time_us_seen = false;
  memset(m, 0, sizeof(*m));
  ws(&p);
  if (!peek(&p, '{')) return fail(&p, "expected a JSON object");
  p.i++;
  ws(&p);
  if (peek(&p, '}')) {
    p.i++;
  } else {
    for (;;) {
      int rc = field(&p, m, &time_us_seen);
      if (rc) return rc;
      ws(&p);
      if (peek(&p, '}')) {
        p.i++;
        break;
      }
      if (!peek(&p, ',')) return fail(&p, "expected ',' or '}'");
      p.i++;
      ws(&p);
    }
  }
  ws(&p);
  if (p.i != p.n) return fail(&p, "text after the object");
  return 0;
}
