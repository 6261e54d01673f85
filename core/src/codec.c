/*
** codec.c - the byte encodings of Go klevdb's typed logs:
** zig-zag varints, Go's JSON string form, a JSON validator, and the FNV-1a
** key hash. Values must match Go byte for byte, since keys are hashed raw.
*/
#include <limits.h>

#include "kdb.h"

/* ---- varint ---- */

/* Zig-zag on unsigned arithmetic: shifting a negative int64_t left is
** undefined in C, and Go's (x<<1)^(x>>63) is exactly this bit pattern. */
size_t klevdb_varint_encode(int64_t v, uint8_t out[10]) {
  uint64_t x = (uint64_t)v;
  uint64_t u = (x << 1) ^ (0 - (x >> 63));
  size_t n = 0;
  while (u >= 0x80) {
    out[n++] = (uint8_t)(u | 0x80);
    u >>= 7;
  }
  out[n++] = (uint8_t)u;
  return n;
}

/* Mirrors Go's binary.Uvarint: ten bytes all with the continuation bit and
** nothing after them is a short buffer, an eleventh byte is an overflow. */
int klevdb_varint_decode(const uint8_t *in, size_t len, int64_t *v) {
  uint64_t u = 0;
  unsigned shift = 0;
  for (size_t i = 0; i < len; i++) {
    uint8_t b = in[i];
    if (i == 10) return -1;
    if (b < 0x80) {
      if (i == 9 && b > 1) return -1;
      u |= (uint64_t)b << shift;
      *v = (int64_t)((u >> 1) ^ (0 - (u & 1)));
      return (int)i + 1;
    }
    u |= (uint64_t)(b & 0x7f) << shift;
    shift += 7;
  }
  return 0;
}

/* ---- UTF-8 ---- */

/* Width of the valid UTF-8 sequence at s (n > 0 bytes available) and its
** code point, or 0 when it does not decode. Same acceptance ranges as Go's
** utf8.DecodeRune, so overlongs, surrogates and truncations are all
** invalid and Go replaces only their first byte. */
static size_t utf8_decode(const uint8_t *s, size_t n, uint32_t *cp) {
  uint8_t c = s[0];
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  size_t w;
  uint8_t lo = 0x80, hi = 0xBF;
  if (c < 0xC2) return 0;
  else if (c < 0xE0) w = 2;
  else if (c < 0xF0) {
    w = 3;
    if (c == 0xE0) lo = 0xA0;
    else if (c == 0xED) hi = 0x9F;
  } else if (c < 0xF5) {
    w = 4;
    if (c == 0xF0) lo = 0x90;
    else if (c == 0xF4) hi = 0x8F;
  } else return 0;
  if (n < w) return 0;
  if (s[1] < lo || s[1] > hi) return 0;
  for (size_t i = 2; i < w; i++)
    if (s[i] < 0x80 || s[i] > 0xBF) return 0;
  uint32_t r = c & (0x7F >> w);
  for (size_t i = 1; i < w; i++) r = (r << 6) | (s[i] & 0x3F);
  *cp = r;
  return w;
}

static size_t utf8_encode(uint32_t r, uint8_t b[4]) {
  if (r < 0x80) {
    b[0] = (uint8_t)r;
    return 1;
  }
  if (r < 0x800) {
    b[0] = (uint8_t)(0xC0 | (r >> 6));
    b[1] = (uint8_t)(0x80 | (r & 0x3F));
    return 2;
  }
  if (r < 0x10000) {
    b[0] = (uint8_t)(0xE0 | (r >> 12));
    b[1] = (uint8_t)(0x80 | ((r >> 6) & 0x3F));
    b[2] = (uint8_t)(0x80 | (r & 0x3F));
    return 3;
  }
  b[0] = (uint8_t)(0xF0 | (r >> 18));
  b[1] = (uint8_t)(0x80 | ((r >> 12) & 0x3F));
  b[2] = (uint8_t)(0x80 | ((r >> 6) & 0x3F));
  b[3] = (uint8_t)(0x80 | (r & 0x3F));
  return 4;
}

/* ---- output sink ---- */

/* Both JSON string functions run twice: once to measure, once to write, so
** that a too-small buffer is left untouched (the encoders' contract). */
typedef struct sink {
  uint8_t *out; /* NULL while measuring */
  size_t n;
} sink;

static void put(sink *s, const void *p, size_t n) {
  if (s->out && n) memcpy(s->out + s->n, p, n);
  s->n += n;
}

static void put1(sink *s, uint8_t c) { put(s, &c, 1); }

static const char HEX[] = "0123456789abcdef";

/* ---- JSON string encoding ---- */

/* Go's encoding/json appendString with escapeHTML on (Go >= 1.22). */
static void json_quote(sink *o, const uint8_t *s, size_t len) {
  put1(o, '"');
  size_t i = 0, start = 0;
  while (i < len) {
    uint8_t b = s[i];
    if (b < 0x80) {
      if (b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&') {
        i++;
        continue;
      }
      put(o, s + start, i - start);
      switch (b) {
      case '"': case '\\': put1(o, '\\'); put1(o, b); break;
      case '\b': put(o, "\\b", 2); break;
      case '\f': put(o, "\\f", 2); break;
      case '\n': put(o, "\\n", 2); break;
      case '\r': put(o, "\\r", 2); break;
      case '\t': put(o, "\\t", 2); break;
      default: {
        uint8_t u[6] = {'\\', 'u', '0', '0', (uint8_t)HEX[b >> 4], (uint8_t)HEX[b & 0xF]};
        put(o, u, 6);
      }
      }
      start = ++i;
      continue;
    }
    uint32_t cp;
    size_t w = utf8_decode(s + i, len - i, &cp);
    if (w == 0) {
      put(o, s + start, i - start);
      put(o, "\\ufffd", 6);
      start = ++i;
      continue;
    }
    /* JavaScript treats these two as line terminators inside strings. */
    if (cp == 0x2028 || cp == 0x2029) {
      put(o, s + start, i - start);
      put(o, cp == 0x2028 ? "\\u2028" : "\\u2029", 6);
      i += w;
      start = i;
      continue;
    }
    i += w;
  }
  if (len > start) put(o, s + start, len - start); /* s may be NULL if len is 0 */
  put1(o, '"');
}

size_t klevdb_json_string_encode(const uint8_t *s, size_t len, uint8_t *out,
                                 size_t cap) {
  sink o = {NULL, 0};
  json_quote(&o, s, len);
  if (out && o.n <= cap) {
    sink w = {out, 0};
    json_quote(&w, s, len);
  }
  return o.n;
}

/* ---- JSON scanning ---- */

/* Go's json.Unmarshal limit; deeper input is rejected, never recursed on. */
#define JSON_MAX_DEPTH 10000

static size_t skip_ws(const uint8_t *in, size_t len, size_t i) {
  while (i < len && (in[i] == ' ' || in[i] == '\t' || in[i] == '\n' || in[i] == '\r'))
    i++;
  return i;
}

static int hexval(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* in[i] is '"'. Returns the index just past the closing quote, or 0 if the
** string is malformed. Bytes >= 0x80 are not checked: like Go's scanner we
** accept invalid UTF-8 here and let the decoder replace it. */
static size_t scan_string(const uint8_t *in, size_t len, size_t i) {
  for (i++; i < len; i++) {
    uint8_t c = in[i];
    if (c == '"') return i + 1;
    if (c < 0x20) return 0;
    if (c != '\\') continue;
    if (++i >= len) return 0;
    switch (in[i]) {
    case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
      break;
    case 'u':
      if (len - i < 5) return 0;
      for (int k = 1; k <= 4; k++)
        if (hexval(in[i + k]) < 0) return 0;
      i += 4;
      break;
    default:
      return 0;
    }
  }
  return 0;
}

static size_t scan_digits(const uint8_t *in, size_t len, size_t i) {
  while (i < len && in[i] >= '0' && in[i] <= '9') i++;
  return i;
}

/* RFC 8259 number at in[i]; returns the index past it or 0. */
static size_t scan_number(const uint8_t *in, size_t len, size_t i) {
  if (i < len && in[i] == '-') i++;
  if (i >= len) return 0;
  if (in[i] == '0') i++;
  else if (in[i] >= '1' && in[i] <= '9') i = scan_digits(in, len, i + 1);
  else return 0;
  if (i < len && in[i] == '.') {
    size_t j = scan_digits(in, len, i + 1);
    if (j == i + 1) return 0;
    i = j;
  }
  if (i < len && (in[i] == 'e' || in[i] == 'E')) {
    i++;
    if (i < len && (in[i] == '+' || in[i] == '-')) i++;
    size_t j = scan_digits(in, len, i);
    if (j == i) return 0;
    i = j;
  }
  return i;
}

static size_t scan_lit(const uint8_t *in, size_t len, size_t i, const char *lit) {
  size_t n = strlen(lit);
  if (len - i < n || memcmp(in + i, lit, n) != 0) return 0;
  return i + n;
}

/* Iterative: one bit per open container (1 = object) instead of a C stack
** frame, so hostile nesting costs 1.25 KiB at most. */
int klevdb_json_valid(const uint8_t *in, size_t len) {
  uint8_t objs[JSON_MAX_DEPTH / 8 + 1] = {0};
  size_t depth = 0, i = 0;

  for (;;) {
    /* Expecting a value. */
    i = skip_ws(in, len, i);
    if (i >= len) return 0;
    switch (in[i]) {
    case '{':
    case '[': {
      int obj = in[i] == '{';
      /* An empty container counts as a level too, as in Go. */
      if (depth == JSON_MAX_DEPTH) return 0;
      i = skip_ws(in, len, i + 1);
      if (i < len && in[i] == (obj ? '}' : ']')) {
        i++;
        break;
      }
      if (obj) objs[depth / 8] |= (uint8_t)(1u << (depth % 8));
      else objs[depth / 8] &= (uint8_t)~(1u << (depth % 8));
      depth++;
      if (obj) {
        if (i >= len || in[i] != '"' || !(i = scan_string(in, len, i))) return 0;
        i = skip_ws(in, len, i);
        if (i >= len || in[i] != ':') return 0;
        i++;
      }
      continue;
    }
    case '"': i = scan_string(in, len, i); break;
    case 't': i = scan_lit(in, len, i, "true"); break;
    case 'f': i = scan_lit(in, len, i, "false"); break;
    case 'n': i = scan_lit(in, len, i, "null"); break;
    default: i = scan_number(in, len, i); break;
    }
    if (i == 0) return 0;

    /* After a value: close containers or move on to the next member. */
    for (;;) {
      i = skip_ws(in, len, i);
      if (depth == 0) return i == len;
      if (i >= len) return 0;
      int obj = (objs[(depth - 1) / 8] >> ((depth - 1) % 8)) & 1;
      if (in[i] == (obj ? '}' : ']')) {
        i++;
        depth--;
        continue;
      }
      if (in[i] != ',') return 0;
      i = skip_ws(in, len, i + 1);
      if (obj) {
        if (i >= len || in[i] != '"' || !(i = scan_string(in, len, i))) return 0;
        i = skip_ws(in, len, i);
        if (i >= len || in[i] != ':') return 0;
        i++;
      }
      break;
    }
  }
}

/* ---- JSON string decoding ---- */

static uint32_t get_u4(const uint8_t *p) {
  return (uint32_t)(hexval(p[0]) << 12 | hexval(p[1]) << 8 | hexval(p[2]) << 4 |
                    hexval(p[3]));
}

/* Go's unquoteBytes over the body of a string already checked by
** scan_string (so every escape is well formed). */
static void json_unquote(sink *o, const uint8_t *s, size_t n) {
  uint8_t buf[4];
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    if (c == '\\') {
      c = s[i + 1];
      i += 2;
      switch (c) {
      case 'b': put1(o, '\b'); break;
      case 'f': put1(o, '\f'); break;
      case 'n': put1(o, '\n'); break;
      case 'r': put1(o, '\r'); break;
      case 't': put1(o, '\t'); break;
      case 'u': {
        uint32_t r = get_u4(s + i);
        i += 4;
        if (r >= 0xD800 && r < 0xE000) {
          /* Only a high surrogate followed by an escaped low one pairs up;
          ** anything else is U+FFFD and the next escape stands alone. */
          if (r < 0xDC00 && n - i >= 6 && s[i] == '\\' && s[i + 1] == 'u') {
            uint32_t r2 = get_u4(s + i + 2);
            if (r2 >= 0xDC00 && r2 < 0xE000) {
              r = 0x10000 + ((r - 0xD800) << 10) + (r2 - 0xDC00);
              i += 6;
            } else r = 0xFFFD;
          } else r = 0xFFFD;
        }
        put(o, buf, utf8_encode(r, buf));
        break;
      }
      default: put1(o, c); break; /* " \ / */
      }
      continue;
    }
    if (c < 0x80) {
      put1(o, c);
      i++;
      continue;
    }
    uint32_t cp;
    size_t w = utf8_decode(s + i, n - i, &cp);
    if (w == 0) {
      put(o, "\xEF\xBF\xBD", 3);
      i++;
    } else {
      put(o, s + i, w);
      i += w;
    }
  }
}

long klevdb_json_string_decode(const uint8_t *in, size_t len, uint8_t *out,
                               size_t cap) {
  size_t i = skip_ws(in, len, 0);
  if (i >= len) return -1;
  if (in[i] == 'n') {
    /* json.Unmarshal of null into a string leaves it unchanged: "". */
    i = scan_lit(in, len, i, "null");
    if (i == 0 || skip_ws(in, len, i) != len) return -1;
    return 0;
  }
  if (in[i] != '"') return -1;
  size_t start = i + 1, end = scan_string(in, len, i);
  if (end == 0 || skip_ws(in, len, end) != len) return -1;
  sink o = {NULL, 0};
  json_unquote(&o, in + start, end - 1 - start);
  if (o.n > (size_t)LONG_MAX) return -1;
  if (out && o.n <= cap) {
    sink w = {out, 0};
    json_unquote(&w, in + start, end - 1 - start);
  }
  return (long)o.n;
}

/* ---- key hash ---- */

uint64_t klevdb_key_hash(const void *key, size_t len) {
  const uint8_t *p = key;
  uint64_t h = FNV_OFFSET;
  for (size_t i = 0; i < len; i++) {
    h ^= p[i];
    h *= FNV_PRIME;
  }
  return h;
}
