/*
** test_codec.c - unit tests of codec.c: varints, Go's JSON string form,
** the JSON validator and the FNV-1a key hash, against the values Go's
** typed logs give and the worked example of docs/format.md.
*/
#include <stdlib.h>

#include "../check.h"
#include "kdb.h"

/* Parses "ac 02" style hex into out; returns the byte count. */
static size_t unhex(const char *s, uint8_t *out) {
  size_t n = 0;
  while (*s) {
    if (*s == ' ') {
      s++;
      continue;
    }
    unsigned v;
    sscanf(s, "%2x", &v);
    out[n++] = (uint8_t)v;
    s += 2;
  }
  return n;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static uint64_t rnd(void) {
  uint64_t x = rng_state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return rng_state = x;
}

/* ---- varint ---- */

#define VARINT(val, hexstr)                                                 \
  do {                                                                      \
    uint8_t w_[16], o_[10];                                                 \
    size_t wn_ = unhex(hexstr, w_);                                         \
    size_t n_ = klevdb_varint_encode(val, o_);                              \
    CHECK_MEM(o_, n_, w_, wn_);                                             \
    int64_t v_ = 12345;                                                     \
    CHECK_EQ_INT(klevdb_varint_decode(w_, wn_, &v_), (int)wn_);             \
    CHECK_EQ_INT(v_, val);                                                  \
  } while (0)

static void test_varint_examples(void) {
  VARINT(0, "00");
  VARINT(-1, "01");
  VARINT(1, "02");
  VARINT(-2, "03");
  VARINT(63, "7e");
  VARINT(-64, "7f");
  VARINT(64, "80 01");
  VARINT(-65, "81 01");
  VARINT(150, "ac 02");
  VARINT(-150, "ab 02");
  VARINT(INT64_MAX, "fe ff ff ff ff ff ff ff ff 01");
  VARINT(INT64_MIN, "ff ff ff ff ff ff ff ff ff 01");
}

static void test_varint_errors(void) {
  uint8_t b[16] = {0};
  int64_t v = 77;

  /* Short buffer: nothing, or only continuation bytes. */
  CHECK_EQ_INT(klevdb_varint_decode(b, 0, &v), 0);
  CHECK_EQ_INT(klevdb_varint_decode(NULL, 0, &v), 0);
  b[0] = 0x80;
  CHECK_EQ_INT(klevdb_varint_decode(b, 1, &v), 0);
  b[0] = 0xac;
  CHECK_EQ_INT(klevdb_varint_decode(b, 1, &v), 0);
  CHECK_EQ_INT(v, 77); /* untouched on error */

  /* Ten continuation bytes and nothing more: Go reports a short buffer. */
  memset(b, 0xff, 10);
  CHECK_EQ_INT(klevdb_varint_decode(b, 10, &v), 0);

  /* Eleven bytes: overflow. */
  memset(b, 0xff, 10);
  b[10] = 0x01;
  CHECK_EQ_INT(klevdb_varint_decode(b, 11, &v), -1);
  memset(b, 0x80, 10);
  b[10] = 0x00;
  CHECK_EQ_INT(klevdb_varint_decode(b, 11, &v), -1);

  /* Tenth byte above 1: overflow. */
  memset(b, 0xff, 9);
  b[9] = 0x02;
  CHECK_EQ_INT(klevdb_varint_decode(b, 10, &v), -1);
  b[9] = 0x7f;
  CHECK_EQ_INT(klevdb_varint_decode(b, 16, &v), -1);
  CHECK_EQ_INT(v, 77);

  /* Tenth byte 1 is the largest allowed. */
  b[9] = 0x01;
  CHECK_EQ_INT(klevdb_varint_decode(b, 10, &v), 10);
  CHECK_EQ_INT(v, INT64_MIN);
  b[9] = 0x00; /* non-minimal, still accepted as Go does */
  CHECK_EQ_INT(klevdb_varint_decode(b, 10, &v), 10);
  CHECK_EQ_HEX((uint64_t)v, 0xC000000000000000ULL);

  /* Trailing bytes are ignored. */
  size_t n = unhex("ac 02 ff ff 00", b);
  CHECK_EQ_INT(klevdb_varint_decode(b, n, &v), 2);
  CHECK_EQ_INT(v, 150);
  n = unhex("01 02 03", b);
  CHECK_EQ_INT(klevdb_varint_decode(b, n, &v), 1);
  CHECK_EQ_INT(v, -1);

  /* Non-minimal zero. */
  n = unhex("80 00", b);
  CHECK_EQ_INT(klevdb_varint_decode(b, n, &v), 2);
  CHECK_EQ_INT(v, 0);
}

/* Bytes a zig-zag varint of v takes. */
static size_t varint_len(int64_t v) {
  uint64_t u = ((uint64_t)v << 1) ^ (0 - ((uint64_t)v >> 63));
  size_t n = 1;
  while (u >= 0x80) {
    u >>= 7;
    n++;
  }
  return n;
}

static void test_varint_roundtrip(void) {
  int bad_len = 0, bad_dec = 0, bad_val = 0;
  uint8_t b[10];
  for (int i = 0; i < 20000; i++) {
    uint64_t r = rnd();
    /* Spread over all magnitudes, not just 64-bit ones. */
    int64_t v = (int64_t)(r >> (rnd() % 64));
    if (i & 1) v = -v - 1;
    size_t n = klevdb_varint_encode(v, b);
    if (n != varint_len(v) || n > 10) bad_len++;
    int64_t got = 0;
    if (klevdb_varint_decode(b, n, &got) != (int)n) bad_dec++;
    if (got != v) bad_val++;
  }
  CHECK_EQ_INT(bad_len, 0);
  CHECK_EQ_INT(bad_dec, 0);
  CHECK_EQ_INT(bad_val, 0);

  /* Every power-of-two boundary, both signs. */
  int bad = 0;
  for (int s = 0; s < 63; s++) {
    int64_t vals[4] = {(int64_t)1 << s, ((int64_t)1 << s) - 1, -((int64_t)1 << s),
                       -((int64_t)1 << s) - 1};
    for (int k = 0; k < 4; k++) {
      int64_t got = 0;
      size_t n = klevdb_varint_encode(vals[k], b);
      if (klevdb_varint_decode(b, n, &got) != (int)n || got != vals[k]) bad++;
    }
  }
  CHECK_EQ_INT(bad, 0);
  CHECK_EQ_INT(klevdb_varint_encode(-64, b), 1);
  CHECK_EQ_INT(klevdb_varint_encode(-65, b), 2);
  CHECK_EQ_INT(klevdb_varint_encode(INT64_MAX, b), 10);
}

/* ---- JSON string encoding ---- */

#define ENC(in, inlen, want)                                                \
  do {                                                                      \
    uint8_t o_[256];                                                        \
    size_t n_ = klevdb_json_string_encode((const uint8_t *)(in), (inlen),   \
                                          o_, sizeof o_);                   \
    CHECK_MEM(o_, n_, want, strlen(want));                                  \
  } while (0)
#define ENCS(s, want) ENC(s, sizeof(s) - 1, want)

static void test_json_encode(void) {
  ENCS("", "\"\"");
  ENCS("hello world", "\"hello world\"");
  ENCS("a\"b\\c/d", "\"a\\\"b\\\\c/d\"");
  ENCS("\b\f\n\r\t", "\"\\b\\f\\n\\r\\t\"");
  ENCS("\x01", "\"\\u0001\"");
  ENCS("\x1b", "\"\\u001b\"");
  ENCS("\x1f\x0b", "\"\\u001f\\u000b\"");
  ENC("a\0b", 3, "\"a\\u0000b\"");
  ENCS("<a>&", "\"\\u003ca\\u003e\\u0026\"");
  ENCS("\x7f", "\"\x7f\"");
  ENCS("~ !#'", "\"~ !#'\"");

  /* Valid multi-byte UTF-8 is raw, incl. an encoded U+FFFD. */
  ENCS("\xc3\xa9", "\"\xc3\xa9\"");
  ENCS("\xe2\x82\xac", "\"\xe2\x82\xac\"");
  ENCS("\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\"");
  ENCS("\xef\xbf\xbd", "\"\xef\xbf\xbd\"");
  ENCS("\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\"");  /* U+10FFFF */
  ENCS("\xed\x9f\xbf", "\"\xed\x9f\xbf\"");          /* U+D7FF */

  /* Line and paragraph separators. */
  ENCS("\xe2\x80\xa8", "\"\\u2028\"");
  ENCS("a\xe2\x80\xa9z", "\"a\\u2029z\"");
  ENCS("\xe2\x80\xa7", "\"\xe2\x80\xa7\"");

  /* Invalid UTF-8: one \ufffd per byte that does not start a valid rune. */
  ENCS("\xff", "\"\\ufffd\"");
  ENCS("x\xffy", "\"x\\ufffdy\"");
  ENCS("\x80", "\"\\ufffd\"");
  ENCS("\xe2\x82", "\"\\ufffd\\ufffd\"");          /* truncated at end */
  ENCS("\xe2\x82x", "\"\\ufffd\\ufffdx\"");        /* truncated in middle */
  ENCS("\xf0\x9f\x98", "\"\\ufffd\\ufffd\\ufffd\"");
  ENCS("\xc0\x80", "\"\\ufffd\\ufffd\"");          /* overlong NUL */
  ENCS("\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\""); /* overlong '/' */
  ENCS("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""); /* surrogate D800 */
  ENCS("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* > U+10FFFF */
  ENCS("\xf8\x88\x80\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\"");
  ENCS("\xc3\xc3\xa9", "\"\\ufffd\xc3\xa9\"");

  /* Capacity: length always returned, nothing written unless it fits. */
  uint8_t buf[16];
  memset(buf, 0xAA, sizeof buf);
  CHECK_EQ_INT(klevdb_json_string_encode((const uint8_t *)"<", 1, NULL, 0), 8);
  CHECK_EQ_INT(klevdb_json_string_encode((const uint8_t *)"<", 1, buf, 7), 8);
  CHECK_EQ_INT(buf[0], 0xAA);
  CHECK_EQ_INT(klevdb_json_string_encode((const uint8_t *)"<", 1, buf, 8), 8);
  CHECK_MEM(buf, 8, "\"\\u003c\"", 8);
  CHECK_EQ_INT(buf[8], 0xAA);
  CHECK_EQ_INT(klevdb_json_string_encode(NULL, 0, buf, 2), 2);
  CHECK_MEM(buf, 2, "\"\"", 2);
}

/* ---- JSON string decoding ---- */

#define DEC(in, inlen, want, wantlen)                                       \
  do {                                                                      \
    uint8_t o_[256];                                                        \
    long n_ = klevdb_json_string_decode((const uint8_t *)(in), (inlen), o_, \
                                        sizeof o_);                         \
    CHECK_EQ_INT(n_, (long)(wantlen));                                      \
    if (n_ >= 0) CHECK_MEM(o_, (size_t)n_, want, wantlen);                  \
  } while (0)
#define DECS(s, want) DEC(s, sizeof(s) - 1, want, sizeof(want) - 1)
#define DEC_BAD(s) CHECK_EQ_INT(klevdb_json_string_decode((const uint8_t *)(s), sizeof(s) - 1, NULL, 0), -1)

static void test_json_decode(void) {
  DECS("\"hello\"", "hello");
  DECS("\"\"", "");
  DECS(" \t\r\n\"a\" \n", "a");
  DECS("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t");
  DECS("\"\\u0041\\u00e9\\u20AC\"", "A\xc3\xa9\xe2\x82\xac");
  DEC("\"\\u0000\"", 8, "\0", 1);
  DECS("\"\\u003c\\u003E\\u0026\"", "<>&");
  DECS("\"\\u2028\"", "\xe2\x80\xa8");

  /* Surrogates, as Go's unquote. */
  DECS("\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80");
  DECS("\"\\uD83D\\uDE00\"", "\xf0\x9f\x98\x80");
  DECS("\"\\udbff\\udfff\"", "\xf4\x8f\xbf\xbf");
  DECS("\"\\ud83d\"", "\xef\xbf\xbd");
  DECS("\"\\ud83dx\"", "\xef\xbf\xbdx");
  DECS("\"\\ude00\"", "\xef\xbf\xbd");
  DECS("\"\\ude00\\ud83d\"", "\xef\xbf\xbd\xef\xbf\xbd");
  DECS("\"\\ud83d\\ud83d\\ude00\"", "\xef\xbf\xbd\xf0\x9f\x98\x80");
  DECS("\"\\ud83d\\u0041\"", "\xef\xbf\xbd" "A");
  DECS("\"\\ud83d\\n\"", "\xef\xbf\xbd\n");

  /* null is "" and no error. */
  DECS("null", "");
  DECS("  null\n", "");

  /* Raw UTF-8 kept; invalid bytes become U+FFFD each. */
  DECS("\"\xc3\xa9\xe2\x80\xa8\"", "\xc3\xa9\xe2\x80\xa8");
  DECS("\"a\xff" "b\"", "a\xef\xbf\xbd" "b");
  DECS("\"\xc0\x80\"", "\xef\xbf\xbd\xef\xbf\xbd");
  DECS("\"\xe2\x82\"", "\xef\xbf\xbd\xef\xbf\xbd");
  DECS("\"\x7f<>\"", "\x7f<>");

  /* Not a JSON string. */
  DEC_BAD("");
  DEC_BAD("   ");
  DEC_BAD("123");
  DEC_BAD("-1.5");
  DEC_BAD("{}");
  DEC_BAD("{\"a\":\"b\"}");
  DEC_BAD("[\"a\"]");
  DEC_BAD("true");
  DEC_BAD("false");
  DEC_BAD("nul");
  DEC_BAD("nullx");
  DEC_BAD("null null");
  DEC_BAD("\"abc");
  DEC_BAD("\"abc\\\"");
  DEC_BAD("\"a\x01" "b\"");
  DEC_BAD("\"a\tb\"");
  DEC_BAD("\"a\nb\"");
  DEC_BAD("\"\\x\"");
  DEC_BAD("\"\\'\"");
  DEC_BAD("\"\\u12\"");
  DEC_BAD("\"\\u12G4\"");
  DEC_BAD("\"\\");
  DEC_BAD("\"a\" \"b\"");
  DEC_BAD("\"a\"x");
  DEC_BAD("'a'");
  DEC_BAD("\xef\xbb\xbf\"a\""); /* BOM is not whitespace */

  /* Capacity: nothing written unless it fits. */
  uint8_t buf[8];
  memset(buf, 0xAA, sizeof buf);
  CHECK_EQ_INT(klevdb_json_string_decode((const uint8_t *)"\"\\u20ac\"", 8, buf, 2), 3);
  CHECK_EQ_INT(buf[0], 0xAA);
  CHECK_EQ_INT(klevdb_json_string_decode((const uint8_t *)"\"\\u20ac\"", 8, buf, 3), 3);
  CHECK_MEM(buf, 3, "\xe2\x82\xac", 3);
  CHECK_EQ_INT(buf[3], 0xAA);
  /* Invalid bytes grow: 2 input bytes decode to 6. */
  CHECK_EQ_INT(klevdb_json_string_decode((const uint8_t *)"\"\xff\xfe\"", 4, NULL, 0), 6);
}

/* encode then decode is the identity on valid UTF-8, and on any bytes
** once each invalid byte is replaced. */
static void test_json_roundtrip(void) {
  static const char *pieces[] = {"a", "\"", "\\", "<", "\n", "\x01", "\x7f",
                                 "\xc3\xa9", "\xe2\x80\xa8", "\xf0\x9f\x98\x80",
                                 "\xef\xbf\xbd", " ", "/", "\t"};
  const size_t np = sizeof pieces / sizeof pieces[0];
  int bad = 0;
  uint8_t s[128], enc[1024], dec[1024];
  for (int iter = 0; iter < 2000; iter++) {
    size_t n = 0, k = rnd() % 20;
    for (size_t j = 0; j < k; j++) {
      const char *p = pieces[rnd() % np];
      memcpy(s + n, p, strlen(p));
      n += strlen(p);
    }
    size_t en = klevdb_json_string_encode(s, n, enc, sizeof enc);
    if (!klevdb_json_valid(enc, en)) bad++;
    long dn = klevdb_json_string_decode(enc, en, dec, sizeof dec);
    if (dn != (long)n || memcmp(dec, s, n) != 0) bad++;
  }
  CHECK_EQ_INT(bad, 0);

  /* Random bytes: decode(encode(s)) equals decode of raw s in quotes, once
  ** the raw form is legal (escape what JSON forbids raw). */
  bad = 0;
  for (int iter = 0; iter < 2000; iter++) {
    size_t n = rnd() % 64;
    for (size_t j = 0; j < n; j++) s[j] = (uint8_t)(0x80 | rnd());
    size_t en = klevdb_json_string_encode(s, n, enc, sizeof enc);
    long dn = klevdb_json_string_decode(enc, en, dec, sizeof dec);
    uint8_t raw[130], dec2[1024];
    raw[0] = '"';
    memcpy(raw + 1, s, n);
    raw[n + 1] = '"';
    long dn2 = klevdb_json_string_decode(raw, n + 2, dec2, sizeof dec2);
    if (dn < 0 || dn != dn2 || memcmp(dec, dec2, (size_t)dn) != 0) bad++;
    /* And the encoded form is valid UTF-8 only, so encoding it again
    ** escapes nothing new inside. */
    if (!klevdb_json_valid(enc, en)) bad++;
  }
  CHECK_EQ_INT(bad, 0);
}

/* ---- JSON validity ---- */

#define VALID(s) CHECK_EQ_INT(klevdb_json_valid((const uint8_t *)(s), sizeof(s) - 1), 1)
#define INVALID(s) CHECK_EQ_INT(klevdb_json_valid((const uint8_t *)(s), sizeof(s) - 1), 0)

static void test_json_valid(void) {
  VALID("0");
  VALID("-0");
  VALID("-0.5e+10");
  VALID("1E5");
  VALID("1e-5");
  VALID("12.25");
  VALID("123456789012345678901234567890");
  VALID("true");
  VALID("false");
  VALID("null");
  VALID("\"x\"");
  VALID("\"\\u00e9\\ud83d\"");
  VALID("\"\xff\""); /* like Go's json.Valid: bytes in strings not checked */
  VALID("[]");
  VALID("{}");
  VALID(" [ ] ");
  VALID(" \t\r\n[1, 2 ,3]\n");
  VALID("{\"a\":1,\"b\":[true,null,{\"c\":\"d\"}],\"e\":{}}");
  VALID("[[[[]]]]");
  VALID("[{},[],\"\",0,-1.0E+2]");
  VALID("{ \"a\" : { \"b\" : [ ] } }");
  VALID("{\"a\":1,\"a\":2}");

  INVALID("");
  INVALID("   ");
  INVALID("01");
  INVALID("-01");
  INVALID("00");
  INVALID("-");
  INVALID("1.");
  INVALID(".5");
  INVALID("1e");
  INVALID("1e+");
  INVALID("+1");
  INVALID("0x10");
  INVALID("NaN");
  INVALID("Infinity");
  INVALID("1 2");
  INVALID("[1,]");
  INVALID("{\"a\":1,}");
  INVALID("[,1]");
  INVALID("{,}");
  INVALID("[1 2]");
  INVALID("{\"a\"}");
  INVALID("{\"a\":}");
  INVALID("{a:1}");
  INVALID("{1:1}");
  INVALID("{\"a\":1 \"b\":2}");
  INVALID("[}");
  INVALID("{]");
  INVALID("[");
  INVALID("]");
  INVALID("{");
  INVALID("[1]]");
  INVALID("[1],");
  INVALID("tru");
  INVALID("True");
  INVALID("nulll");
  INVALID("\"abc");
  INVALID("\"\\x\"");
  INVALID("\"a\tb\"");
  INVALID("\"\\u123\"");
  INVALID("{\"a\":1}x");
  INVALID("'a'");
  INVALID("[1,,2]");
  INVALID("\xef\xbb\xbf{}");

  /* Nesting: Go's limit of 10000 is accepted, one more is not, and hostile
  ** depth neither recurses nor crashes. */
  size_t big = 200002;
  uint8_t *b = malloc(big);
  memset(b, '[', 10000);
  memset(b + 10000, ']', 10000);
  CHECK_EQ_INT(klevdb_json_valid(b, 20000), 1);
  memset(b, '[', 10001);
  memset(b + 10001, ']', 10001);
  CHECK_EQ_INT(klevdb_json_valid(b, 20002), 0);
  memset(b, '[', 100000);
  CHECK_EQ_INT(klevdb_json_valid(b, 100000), 0);
  memset(b + 100000, ']', 100000);
  CHECK_EQ_INT(klevdb_json_valid(b, 200000), 0);
  for (size_t i = 0; i + 5 <= 100000; i += 5) memcpy(b + i, "{\"a\":", 5);
  CHECK_EQ_INT(klevdb_json_valid(b, 100000), 0);
  /* Alternating objects and arrays keep their kinds apart on the stack. */
  size_t n = 0;
  for (int i = 0; i < 5000; i++) {
    memcpy(b + n, "{\"k\":[", 6);
    n += 6;
  }
  b[n++] = '1';
  for (int i = 0; i < 5000; i++) {
    memcpy(b + n, "]}", 2);
    n += 2;
  }
  CHECK_EQ_INT(klevdb_json_valid(b, n), 1);
  b[n - 1] = ']';
  CHECK_EQ_INT(klevdb_json_valid(b, n), 0);
  free(b);
}

/* ---- key hash ---- */

static void test_key_hash(void) {
  CHECK_EQ_HEX(klevdb_key_hash("k1", 2), 0x08BE0F07B56224C1ULL);
  CHECK_EQ_HEX(klevdb_key_hash("", 0), 0xcbf29ce484222325ULL);
  CHECK_EQ_HEX(klevdb_key_hash(NULL, 0), FNV_OFFSET);
  CHECK_EQ_HEX(klevdb_key_hash("a", 1), 0xAF63DC4C8601EC8CULL);
  /* Standard FNV-1a-64 test vector. */
  CHECK_EQ_HEX(klevdb_key_hash("foobar", 6), 0x85944171f73967e8ULL);
  CHECK_EQ_HEX(klevdb_key_hash("\0", 1), 0xaf63bd4c8601b7dfULL);
}

int main(void) {
  test_varint_examples();
  test_varint_errors();
  test_varint_roundtrip();
  test_json_encode();
  test_json_decode();
  test_json_roundtrip();
  test_json_valid();
  test_key_hash();
  chk_name = "test_codec";
  return check_done();
}
