/*
** fuzz_codec.c - libFuzzer target for the codecs: Go's zig-zag varints,
** Go's JSON string form, the JSON validator (core/src/codec.c), the SQL
** column codecs (kvt_encode / kvt_result) and the time parser
** (kvt_parse_time) of the extension (ext/codec.c).
**
** Properties:
**   varint   decode(encode(v)) == v with the same length, for v from the
**            input; decode of the input reads at most 10 bytes, and its
**            value encodes to at most that many;
**   JSON     encode(s) is valid JSON, and decodes to s when s is valid
**            UTF-8 (to valid UTF-8 in any case); an encoder or decoder
**            given too small a buffer writes nothing; decode(x) succeeding
**            means json_valid(x); what decode gives is valid UTF-8 and
**            survives encode + decode unchanged;
**   SQL      kvt_encode of TEXT/BLOB/INTEGER/REAL values in every codec
**            succeeds or fails with a "klevdb: " message; JSON and stringopt
**            results are valid JSON and integers decode back; kvt_result
**            reads every stored form back; kvt_parse_time of text
**            succeeds or says why.
*/
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "kvt.h"

static sqlite3 *db;
static sqlite3_stmt *stmt;

/* fz_codec(v): runs every column codec and the time parser on v. */
static void fz_codec_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  sqlite3_value *v = argv[0];
  int t = sqlite3_value_type(v);
  for (int c = KVT_BLOB; c <= KVT_STRINGOPT; c++) {
    kvt_buf buf = {0};
    char *err = (char *)1;
    int rc = kvt_encode((kvt_codec)c, v, "value", &buf, &err);
    if (rc == SQLITE_OK) {
      FUZZ_CHECK(err == NULL);
      if (t == SQLITE_NULL) FUZZ_CHECK(buf.len == 0);
      if (c == KVT_JSON && buf.len) FUZZ_CHECK(klevdb_json_valid(buf.p, buf.len));
      if (c == KVT_STRINGOPT) {
        FUZZ_CHECK(t == SQLITE_NULL || klevdb_json_valid(buf.p, buf.len));
        if (t != SQLITE_NULL) FUZZ_CHECK(klevdb_json_string_decode(buf.p, buf.len, NULL, 0) >= 0);
      }
      if (c == KVT_INTEGER && buf.len) {
        int64_t x;
        FUZZ_CHECK(klevdb_varint_decode(buf.p, buf.len, &x) == (int)buf.len);
        if (t == SQLITE_INTEGER) FUZZ_CHECK(x == sqlite3_value_int64(v));
      }
      kvt_result(ctx, (kvt_codec)c, buf.p, buf.len);
    } else {
      FUZZ_CHECK(err != NULL && strncmp(err, "klevdb: ", 8) == 0);
      sqlite3_free(err);
    }
    kvt_buf_free(&buf);
  }
  /* Stored bytes as any codec reads them back, whatever wrote them. */
  if (t == SQLITE_BLOB || t == SQLITE_TEXT) {
    const uint8_t *p = t == SQLITE_BLOB ? sqlite3_value_blob(v) : sqlite3_value_text(v);
    size_t n = (size_t)sqlite3_value_bytes(v);
    for (int c = KVT_BLOB; c <= KVT_STRINGOPT; c++) kvt_result(ctx, (kvt_codec)c, p, n);
  }
  int64_t when = 0;
  char *err = (char *)1;
  int rc = kvt_parse_time(v, &when, &err);
  if (rc == SQLITE_OK) {
    FUZZ_CHECK(err == NULL);
    if (t == SQLITE_INTEGER) FUZZ_CHECK(when == sqlite3_value_int64(v));
  } else {
    FUZZ_CHECK(rc == SQLITE_MISMATCH || rc == SQLITE_NOMEM);
    if (t != SQLITE_NULL) FUZZ_CHECK(err != NULL && strncmp(err, "klevdb: ", 8) == 0);
    sqlite3_free(err);
  }
  sqlite3_result_int64(ctx, when);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc; (void)argv;
  if (sqlite3_open(":memory:", &db) != SQLITE_OK) abort();
  if (sqlite3_create_function(db, "fz_codec", 1, SQLITE_UTF8, NULL, fz_codec_fn, NULL, NULL))
    abort();
  if (sqlite3_prepare_v2(db,
        "SELECT fz_codec(?1), fz_codec(CAST(?1 AS BLOB)), fz_codec(?2), "
        "fz_codec(?3), fz_codec(NULL)", -1, &stmt, NULL))
    abort();
  return 0;
}

static void check_varint(const uint8_t *data, size_t size) {
  uint8_t b[10];
  int64_t v = 0, w = 0;
  int r = klevdb_varint_decode(data, size, &v);
  FUZZ_CHECK(r >= -1 && r <= 10 && (r <= 0 || (size_t)r <= size));
  if (r > 0) {
    size_t n = klevdb_varint_encode(v, b);
    FUZZ_CHECK(n >= 1 && n <= (size_t)r);
    FUZZ_CHECK(klevdb_varint_decode(b, n, &w) == (int)n && w == v);
  }
  if (size >= 8) {
    v = (int64_t)be64(data);
    size_t n = klevdb_varint_encode(v, b);
    FUZZ_CHECK(n >= 1 && n <= 10);
    FUZZ_CHECK(klevdb_varint_decode(b, n, &w) == (int)n && w == v);
    FUZZ_CHECK(klevdb_varint_decode(b, n - 1, &w) == 0);
  }
}

/* encode with a buffer one byte short must leave it untouched. */
static size_t encode_exact(const uint8_t *s, size_t n, uint8_t **out) {
  size_t m = klevdb_json_string_encode(s, n, NULL, 0);
  FUZZ_CHECK(m >= n + 2);
  uint8_t *p = malloc(m);
  if (!p) abort();
  memset(p, 0xAA, m);
  FUZZ_CHECK(klevdb_json_string_encode(s, n, p, m - 1) == m);
  for (size_t i = 0; i < m; i++) FUZZ_CHECK(p[i] == 0xAA);
  FUZZ_CHECK(klevdb_json_string_encode(s, n, p, m) == m);
  *out = p;
  return m;
}

static long decode_exact(const uint8_t *in, size_t n, uint8_t **out) {
  long m = klevdb_json_string_decode(in, n, NULL, 0);
  *out = NULL;
  if (m < 0) {
    FUZZ_CHECK(m == -1);
    return m;
  }
  uint8_t *p = malloc((size_t)m + 1);
  if (!p) abort();
  memset(p, 0xAA, (size_t)m + 1);
  if (m > 0) {
    FUZZ_CHECK(klevdb_json_string_decode(in, n, p, (size_t)m - 1) == m);
    for (long i = 0; i <= m; i++) FUZZ_CHECK(p[i] == 0xAA);
  }
  FUZZ_CHECK(klevdb_json_string_decode(in, n, p, (size_t)m) == m);
  FUZZ_CHECK(p[m] == 0xAA);
  *out = p;
  return m;
}

static void check_json(const uint8_t *data, size_t size) {
  uint8_t *enc, *dec, *enc2, *dec2;
  /* The input as a Go string. */
  size_t m = encode_exact(data, size, &enc);
  FUZZ_CHECK(enc[0] == '"' && enc[m - 1] == '"');
  FUZZ_CHECK(klevdb_json_valid(enc, m) == 1);
  FUZZ_CHECK(utf8_valid(enc, m));
  long d = decode_exact(enc, m, &dec);
  FUZZ_CHECK(d >= 0);
  FUZZ_CHECK(utf8_valid(dec, (size_t)d));
  if (utf8_valid(data, size)) FUZZ_CHECK((size_t)d == size && memcmp(dec, data, size) == 0);
  free(enc);
  free(dec);

  /* The input as JSON text. */
  int valid = klevdb_json_valid(data, size);
  FUZZ_CHECK(valid == 0 || valid == 1);
  d = decode_exact(data, size, &dec);
  if (d >= 0) {
    FUZZ_CHECK(valid == 1);
    FUZZ_CHECK(utf8_valid(dec, (size_t)d));
    m = encode_exact(dec, (size_t)d, &enc2);
    long d2 = decode_exact(enc2, m, &dec2);
    FUZZ_CHECK(d2 == d && memcmp(dec2, dec, (size_t)d) == 0);
    free(enc2);
    free(dec2);
  }
  free(dec);
}

static void check_sql(const uint8_t *data, size_t size) {
  if (size > 100000) return;
  sqlite3_bind_text(stmt, 1, (const char *)data, (int)size, SQLITE_STATIC);
  sqlite3_bind_int64(stmt, 2, size >= 8 ? (int64_t)be64(data) : (int64_t)size - 4);
  double x = 0;
  if (size >= 8) memcpy(&x, data, 8);
  sqlite3_bind_double(stmt, 3, x);
  while (sqlite3_step(stmt) == SQLITE_ROW) {
  }
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  check_varint(data, size);
  check_json(data, size);
  check_sql(data, size);
  return 0;
}
