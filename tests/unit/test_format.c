/*
** test_format.c - unit tests of the on-disk formats: CRC-32C, log records
** and version detection (message.c), index headers, items and the item
** searches (index.c), against docs/format.md and its worked example.
*/
#include <stdlib.h>

#include "../check.h"
#include "kdb.h"

uint32_t crc32c_sw(uint32_t, const void *, size_t);

static size_t unhex(const char *s, uint8_t *out) {
  size_t n = 0;
  while (*s) {
    if (*s == ' ' || *s == '\n') {
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

static uint64_t rng_state = 0x2545F4914F6CDD1DULL;
static uint64_t rnd(void) {
  uint64_t x = rng_state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return rng_state = x;
}

/* docs/format.md, a worked example. */
#define A_TIME INT64_C(1672531200000000)
static const char A_V2_LOG[] =
    "ff 6b 6c 65 76 73 01 00"
    "94 59 c7 fe"
    "00 00 00 00 00 00 00 00"
    "00 05 f1 28 84 0d 40 00"
    "00 00 00 02  00 00 00 02"
    "6b 31  76 31"
    "de ad be ef fe ed fa ce";
static const char A_V1_LOG[] =
    "00 00 00 00 00 00 00 00  00 05 f1 28 84 0d 40 00  00 00 00 02"
    "00 00 00 02  80 3b b1 93  6b 31 76 31";
static const char A_V2_INDEX[] =
    "ff 6b 6c 65 76 69 01 03"
    "00 00 00 00 00 00 00 00"
    "00 00 00 00 00 00 00 08"
    "00 05 f1 28 84 0d 40 00"
    "08 be 0f 07 b5 62 24 c1";

/* ---- CRC-32C ---- */

static void test_crc(void) {
  const char *s = "123456789";
  CHECK_EQ_HEX(crc32c(0, s, 9), 0xE3069283);
  CHECK_EQ_HEX(crc32c_sw(0, s, 9), 0xE3069283);
  CHECK_EQ_HEX(crc32c(0, s, 0), 0);
  CHECK_EQ_HEX(crc32c(0, "k1v1", 4), 0x803bb193); /* docs/format.md, worked example, V1 */

  /* Chaining at every split point. */
  int bad = 0;
  for (size_t k = 0; k <= 9; k++) {
    if (crc32c(crc32c(0, s, k), s + k, 9 - k) != 0xE3069283) bad++;
    if (crc32c_sw(crc32c_sw(0, s, k), s + k, 9 - k) != 0xE3069283) bad++;
  }
  CHECK_EQ_INT(bad, 0);

  /* The hardware path equals the table path for every length and
  ** alignment, and with a nonzero starting crc. */
  static uint8_t buf[320];
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)rnd();
  bad = 0;
  for (size_t len = 0; len <= 300; len++)
    for (size_t al = 0; al < 8; al++) {
      uint32_t seed = (uint32_t)rnd();
      if (crc32c(0, buf + al, len) != crc32c_sw(0, buf + al, len)) bad++;
      if (crc32c(seed, buf + al, len) != crc32c_sw(seed, buf + al, len)) bad++;
      size_t cut = len ? (size_t)(rnd() % len) : 0;
      if (crc32c(crc32c(0, buf + al, cut), buf + al + cut, len - cut) !=
          crc32c_sw(0, buf + al, len))
        bad++;
    }
  CHECK_EQ_INT(bad, 0);
}

/* ---- log records ---- */

static void test_rec_encode(void) {
  uint8_t want[64], got[64];
  size_t wn = unhex(A_V2_LOG, want);
  CHECK_EQ_INT(wn, 48);
  memset(got, 0xAA, sizeof got);
  log_header(got);
  size_t n = rec_encode(FMT_V2, got + FILE_HDR, 0, A_TIME, (const uint8_t *)"k1", 2,
                        (const uint8_t *)"v1", 2);
  CHECK_EQ_INT(n, 40);
  CHECK_EQ_INT(rec_size(FMT_V2, 2, 2), 40);
  CHECK_EQ_INT(log_start(FMT_V2), 8);
  CHECK_MEM(got, FILE_HDR + n, want, wn);
  CHECK_EQ_INT(got[48], 0xAA);

  wn = unhex(A_V1_LOG, want);
  CHECK_EQ_INT(wn, 32);
  memset(got, 0xAA, sizeof got);
  n = rec_encode(FMT_V1, got, 0, A_TIME, (const uint8_t *)"k1", 2,
                 (const uint8_t *)"v1", 2);
  CHECK_EQ_INT(n, 32);
  CHECK_EQ_INT(rec_size(FMT_V1, 2, 2), 32);
  CHECK_EQ_INT(log_start(FMT_V1), 0);
  CHECK_MEM(got, n, want, wn);
  CHECK_EQ_INT(got[32], 0xAA);

  /* Absent key and value: the CRC of V1 covers nothing. */
  n = rec_encode(FMT_V1, got, 7, -1, NULL, 0, NULL, 0);
  CHECK_EQ_INT(n, 28);
  CHECK_MEM(got, 28,
            "\0\0\0\0\0\0\0\7\xff\xff\xff\xff\xff\xff\xff\xff"
            "\0\0\0\0\0\0\0\0\0\0\0\0",
            28);
  n = rec_encode(FMT_V2, got, 7, -1, NULL, 0, NULL, 0);
  CHECK_EQ_INT(n, 36);
  CHECK_EQ_HEX(get_be32(got), crc32c(0, got + 4, 32));
  CHECK_MEM(got + 28, 8, "\xde\xad\xbe\xef\xfe\xed\xfa\xce", 8);
}

static void test_rec_decode(void) {
  uint8_t b[256];
  klevdb_msg m;
  int64_t len = 0;
  klevdb_error e = {0};

  /* V2, docs/format.md worked example. */
  size_t n = unhex(A_V2_LOG, b);
  memset(&m, 0, sizeof m);
  CHECK_EQ_INT(rec_decode(FMT_V2, b + 8, (int64_t)n - 8, true, &m, &len, &e), 1);
  CHECK_EQ_INT(len, 40);
  CHECK_EQ_INT(m.offset, 0);
  CHECK_EQ_INT(m.time, A_TIME);
  CHECK_MEM(m.key, m.key_len, "k1", 2);
  CHECK_MEM(m.value, m.value_len, "v1", 2);
  CHECK(m.key == b + 8 + 28);

  /* V1, docs/format.md worked example. */
  n = unhex(A_V1_LOG, b);
  memset(&m, 0, sizeof m);
  CHECK_EQ_INT(rec_decode(FMT_V1, b, (int64_t)n, true, &m, &len, &e), 1);
  CHECK_EQ_INT(len, 32);
  CHECK_EQ_INT(m.offset, 0);
  CHECK_EQ_INT(m.time, A_TIME);
  CHECK_MEM(m.key, m.key_len, "k1", 2);
  CHECK_MEM(m.value, m.value_len, "v1", 2);

  /* A sequence of records of both versions, walked by len. */
  for (int ver = FMT_V1; ver <= FMT_V2; ver++) {
    size_t pos = 0;
    for (int i = 0; i < 5; i++) {
      char key[8], val[16];
      size_t kl = (size_t)snprintf(key, sizeof key, "k%d", i) * (size_t)(i != 2);
      size_t vl = (size_t)snprintf(val, sizeof val, "value-%d", i * 111) * (size_t)(i != 3);
      pos += rec_encode(ver, b + pos, 100 + i, 1000 * i - 2000, (uint8_t *)key, kl,
                        (uint8_t *)val, vl);
    }
    int64_t p = 0;
    int bad = 0, count = 0;
    for (;;) {
      int r = rec_decode(ver, b + p, (int64_t)pos - p, true, &m, &len, &e);
      if (r != 1) {
        CHECK_EQ_INT(r, 0);
        break;
      }
      if (m.offset != 100 + count || m.time != 1000 * count - 2000) bad++;
      if ((count == 2) != (m.key_len == 0) || (count == 2) != (m.key == NULL)) bad++;
      if ((count == 3) != (m.value_len == 0) || (count == 3) != (m.value == NULL)) bad++;
      if (len != rec_size(ver, m.key_len, m.value_len)) bad++;
      p += len;
      count++;
    }
    CHECK_EQ_INT(count, 5);
    CHECK_EQ_INT(p, (int64_t)pos);
    CHECK_EQ_INT(bad, 0);
  }

  /* Fewer than 28 bytes is the end of data, not an error. */
  n = unhex(A_V2_LOG, b);
  e.code = KLEVDB_OK;
  CHECK_EQ_INT(rec_decode(FMT_V2, b + 8, 27, true, &m, &len, &e), 0);
  CHECK_EQ_INT(rec_decode(FMT_V2, b + 8, 0, true, &m, &len, &e), 0);
  CHECK_EQ_INT(rec_decode(FMT_V1, b, 27, true, &m, &len, &e), 0);
  CHECK_EQ_INT(e.code, KLEVDB_OK);
}

#define DECODE_ERR(ver, p, avail, verify, text)                             \
  do {                                                                      \
    klevdb_msg m_;                                                          \
    int64_t l_ = -7;                                                        \
    klevdb_error e_ = {0};                                              \
    CHECK_EQ_INT(rec_decode(ver, p, avail, verify, &m_, &l_, &e_), -1);     \
    CHECK_EQ_INT(e_.code, KLEVDB_ECORRUPT_LOG);                             \
    CHECK_STR_HAS(e_.msg, text);                                            \
    CHECK_STR_HAS(e_.msg, "log corrupted");                                 \
  } while (0)

static void test_rec_errors(void) {
  uint8_t b[64], v1[64];
  klevdb_msg m;
  int64_t len;
  size_t n = unhex(A_V2_LOG, b) - 8;
  uint8_t *r = b + 8; /* the V2 record, 40 bytes */
  size_t n1 = unhex(A_V1_LOG, v1);

  /* Key length 64 MiB + 1: invalid header, before CRC and size checks. */
  put_be32(r + 20, KLEVDB_MAX_PAYLOAD + 1);
  DECODE_ERR(FMT_V2, r, (int64_t)n, true, "invalid header");
  DECODE_ERR(FMT_V2, r, (int64_t)n, false, "invalid header");
  /* K + V over the limit. */
  put_be32(r + 20, KLEVDB_MAX_PAYLOAD);
  put_be32(r + 24, 1);
  DECODE_ERR(FMT_V2, r, (int64_t)n, true, "invalid header");
  /* K + V exactly the limit passes the header check, then is short. */
  put_be32(r + 24, 0);
  DECODE_ERR(FMT_V2, r, (int64_t)n, true, "short data");
  /* Negative value length. */
  put_be32(r + 20, 2);
  put_be32(r + 24, 0xFFFFFFF7);
  DECODE_ERR(FMT_V2, r, (int64_t)n, true, "invalid header");
  put_be32(r + 24, 0x80000000);
  DECODE_ERR(FMT_V2, r, (int64_t)n, true, "invalid header");
  put_be32(r + 24, 2);
  CHECK_EQ_INT(rec_decode(FMT_V2, r, (int64_t)n, true, &m, &len, NULL), 1);

  put_be32(v1 + 16, KLEVDB_MAX_PAYLOAD + 1);
  DECODE_ERR(FMT_V1, v1, (int64_t)n1, true, "invalid header");
  put_be32(v1 + 16, 2);
  put_be32(v1 + 20, 0xFFFFFFF7);
  DECODE_ERR(FMT_V1, v1, (int64_t)n1, true, "invalid header");
  put_be32(v1 + 20, 2);
  CHECK_EQ_INT(rec_decode(FMT_V1, v1, (int64_t)n1, true, &m, &len, NULL), 1);

  /* Truncated body. */
  DECODE_ERR(FMT_V2, r, 39, true, "short data");
  DECODE_ERR(FMT_V2, r, 28, false, "short data");
  DECODE_ERR(FMT_V1, v1, 31, true, "no message");
  DECODE_ERR(FMT_V1, v1, 28, false, "no message");

  /* A flipped byte in the value. */
  r[28 + 2] ^= 0x01;
  DECODE_ERR(FMT_V2, r, (int64_t)n, true, "crc failed");
  CHECK_EQ_INT(rec_decode(FMT_V2, r, (int64_t)n, false, &m, &len, NULL), 1);
  CHECK_MEM(m.value, m.value_len, "w1", 2);
  r[28 + 2] ^= 0x01;
  v1[28 + 3] ^= 0x40;
  DECODE_ERR(FMT_V1, v1, (int64_t)n1, true, "crc failed");
  v1[28 + 3] ^= 0x40;

  /* V2's CRC covers the header fields; V1's does not. */
  r[4 + 7] ^= 0x01;
  DECODE_ERR(FMT_V2, r, (int64_t)n, true, "crc failed");
  r[4 + 7] ^= 0x01;
  v1[7] = 0x09;
  CHECK_EQ_INT(rec_decode(FMT_V1, v1, (int64_t)n1, true, &m, &len, NULL), 1);
  CHECK_EQ_INT(m.offset, 9);
  v1[7] = 0;
  /* The stored CRC itself. */
  r[0] ^= 0x80;
  DECODE_ERR(FMT_V2, r, (int64_t)n, true, "crc failed");
  r[0] ^= 0x80;
  /* A flipped trailer byte fails the CRC first. */
  r[36] ^= 0x01;
  DECODE_ERR(FMT_V2, r, (int64_t)n, true, "crc failed");

  /* Wrong trailer with a CRC computed over it: bad trailer. */
  put_be32(r, crc32c(0, r + 4, n - 4));
  DECODE_ERR(FMT_V2, r, (int64_t)n, true, "bad trailer");
  memset(r + 32, 0, 8);
  put_be32(r, crc32c(0, r + 4, n - 4));
  DECODE_ERR(FMT_V2, r, (int64_t)n, true, "bad trailer");

}

/* ---- log version detection ---- */

#define LOG_DETECT_ERR(hdr, size, base, text)                               \
  do {                                                                      \
    klevdb_error e_ = {0};                                              \
    int v_ = -1;                                                            \
    CHECK_EQ_INT(log_detect((const uint8_t *)(hdr), size, base, &v_, &e_),  \
                 KLEVDB_ECORRUPT_LOG);                                      \
    CHECK_EQ_INT(e_.code, KLEVDB_ECORRUPT_LOG);                             \
    CHECK_STR_HAS(e_.msg, text);                                            \
  } while (0)

static void test_log_detect(void) {
  uint8_t h[8] = {0};
  int ver = -1;
  klevdb_error e = {0};

  CHECK_EQ_INT(log_detect(h, 0, 0, &ver, &e), KLEVDB_OK);
  CHECK_EQ_INT(ver, FMT_V1);
  CHECK_EQ_INT(log_detect(NULL, 0, 42, &ver, &e), KLEVDB_OK);
  CHECK_EQ_INT(ver, FMT_V1);

  log_header(h);
  CHECK_MEM(h, 8, "\xff" "klevs\x01\x00", 8);
  ver = -1;
  CHECK_EQ_INT(log_detect(h, 8, 0, &ver, &e), KLEVDB_OK);
  CHECK_EQ_INT(ver, FMT_V2);
  ver = -1;
  CHECK_EQ_INT(log_detect(h, 48, 12345, &ver, &e), KLEVDB_OK);
  CHECK_EQ_INT(ver, FMT_V2);

  LOG_DETECT_ERR("badmagic", 8, 0, "magic prefix not found");
  LOG_DETECT_ERR("\xff", 1, 0, "reading header");
  LOG_DETECT_ERR("\xff" "klevs\x01", 7, 0, "reading header");

  memcpy(h, "\xff" "klevs\x02\x00", 8);
  LOG_DETECT_ERR(h, 8, 0, "unknown version 2");
  h[6] = 0xFF;
  LOG_DETECT_ERR(h, 8, 0, "unknown version 255");
  h[6] = 0x02;
  h[7] = 0x01; /* the version is checked before the reserved byte */
  LOG_DETECT_ERR(h, 8, 0, "unknown version 2");
  h[6] = 0x01;
  LOG_DETECT_ERR(h, 8, 0, "invalid reserved data");
  h[6] = 0x00;
  LOG_DETECT_ERR(h, 8, 0, "invalid reserved data");
  h[7] = 0x00;
  LOG_DETECT_ERR(h, 8, 0, "unknown version 0");

  /* V1: the first record's offset is the base. */
  put_be64(h, 5);
  ver = -1;
  CHECK_EQ_INT(log_detect(h, 60, 5, &ver, &e), KLEVDB_OK);
  CHECK_EQ_INT(ver, FMT_V1);
  LOG_DETECT_ERR(h, 60, 6, "magic prefix not found");
  put_be64(h, 0);
  ver = -1;
  CHECK_EQ_INT(log_detect(h, 32, 0, &ver, &e), KLEVDB_OK);
  CHECK_EQ_INT(ver, FMT_V1);
}

/* ---- index header ---- */

#define INDEX_DETECT_ERR(hdr, size, base, params, text)                     \
  do {                                                                      \
    klevdb_error e_ = {0};                                              \
    int v_ = -1;                                                            \
    int64_t ds_ = -1;                                                       \
    CHECK_EQ_INT(index_detect((const uint8_t *)(hdr), size, base, params,   \
                              &v_, &ds_, &e_),                              \
                 KLEVDB_ECORRUPT_INDEX);                                    \
    CHECK_EQ_INT(e_.code, KLEVDB_ECORRUPT_INDEX);                           \
    CHECK_STR_HAS(e_.msg, text);                                            \
    CHECK_STR_HAS(e_.msg, "index corrupted");                               \
  } while (0)

static void test_index_detect(void) {
  uint8_t want[64], h[8];
  int ver = -1;
  int64_t ds = -1;
  klevdb_error e = {0};
  size_t n = unhex(A_V2_INDEX, want);
  CHECK_EQ_INT(n, 40);

  index_header(h, IDX_TIMES | IDX_KEYS);
  CHECK_MEM(h, 8, want, 8);
  CHECK_EQ_INT(index_detect(want, 40, 0, 3, &ver, &ds, &e), KLEVDB_OK);
  CHECK_EQ_INT(ver, FMT_V2);
  CHECK_EQ_INT(ds, 8);
  ver = -1;
  ds = -1;
  CHECK_EQ_INT(index_detect(want, 8, 0, 3, &ver, &ds, &e), KLEVDB_OK);
  CHECK_EQ_INT(ver, FMT_V2);
  CHECK_EQ_INT(ds, 8);
  ver = -1;
  ds = -1;
  CHECK_EQ_INT(index_detect(NULL, 0, 0, 3, &ver, &ds, &e), KLEVDB_OK);
  CHECK_EQ_INT(ver, FMT_V1);
  CHECK_EQ_INT(ds, 0);

  index_header(h, 0);
  CHECK_MEM(h, 8, "\xff" "klevi\x01\x00", 8);
  CHECK_EQ_INT(index_detect(h, 8 + 16 * 3, 0, 0, &ver, &ds, &e), KLEVDB_OK);
  index_header(h, IDX_TIMES);
  CHECK_EQ_INT(h[7], 1);
  CHECK_EQ_INT(index_detect(h, 8 + 24, 0, IDX_TIMES, &ver, &ds, &e), KLEVDB_OK);
  index_header(h, IDX_KEYS);
  CHECK_EQ_INT(h[7], 2);
  CHECK_EQ_INT(index_detect(h, 8 + 24, 0, IDX_KEYS, &ver, &ds, &e), KLEVDB_OK);

  /* Params mismatch: times is reported before keys. */
  INDEX_DETECT_ERR(want, 40, 0, IDX_KEYS, "times index mismatch");
  INDEX_DETECT_ERR(want, 40, 0, 0, "times index mismatch");
  INDEX_DETECT_ERR(want, 40, 0, IDX_TIMES, "keys index mismatch");
  index_header(h, 0);
  INDEX_DETECT_ERR(h, 8, 0, IDX_KEYS, "keys index mismatch");
  INDEX_DETECT_ERR(h, 8, 0, IDX_TIMES | IDX_KEYS, "times index mismatch");

  INDEX_DETECT_ERR("badmagic", 8, 0, 0, "magic prefix not found");
  INDEX_DETECT_ERR("badmagic", 40, 0, 3, "magic prefix not found");
  INDEX_DETECT_ERR("\xff", 1, 0, 3, "reading header");
  INDEX_DETECT_ERR("\xff" "klev", 5, 0, 0, "reading header");

  /* Unaligned data. */
  INDEX_DETECT_ERR(want, 39, 0, 3, "unaligned index size");
  INDEX_DETECT_ERR(want, 41, 0, 3, "unaligned index size");
  uint8_t v1[8] = {0, 0, 0, 0, 0, 0, 0, 9};
  ver = -1;
  ds = -1;
  CHECK_EQ_INT(index_detect(v1, 64, 9, 3, &ver, &ds, &e), KLEVDB_OK);
  CHECK_EQ_INT(ver, FMT_V1);
  CHECK_EQ_INT(ds, 0);
  CHECK_EQ_INT(index_detect(v1, 48, 9, IDX_TIMES, &ver, &ds, &e), KLEVDB_OK);
  INDEX_DETECT_ERR(v1, 33, 9, 3, "unaligned index size");
  INDEX_DETECT_ERR(v1, 40, 9, 3, "unaligned index size");
  INDEX_DETECT_ERR(v1, 64, 8, 3, "magic prefix not found");

  /* Reserved bits, version byte. */
  memcpy(h, want, 8);
  h[7] = 0x07;
  INDEX_DETECT_ERR(h, 8, 0, 3, "invalid reserved data");
  h[7] = 0x83;
  INDEX_DETECT_ERR(h, 8, 0, 3, "invalid reserved data");
  h[7] = 0x04;
  INDEX_DETECT_ERR(h, 8, 0, 0, "invalid reserved data");
  h[7] = 0x05; /* a params mismatch is found before the reserved bits */
  INDEX_DETECT_ERR(h, 8, 0, 0, "times index mismatch");
  h[7] = 0x03;
  h[6] = 0x02;
  INDEX_DETECT_ERR(h, 8, 0, 3, "unknown version 2");
  h[6] = 0x00;
  INDEX_DETECT_ERR(h, 8, 0, 3, "unknown version 0");
}

/* ---- items ---- */

static void test_items(void) {
  uint8_t want[64], it[32];
  unhex(A_V2_INDEX, want);
  uint64_t hash = klevdb_key_hash("k1", 2);
  CHECK_EQ_INT(item_size(IDX_TIMES | IDX_KEYS), 32);
  memset(it, 0xAA, sizeof it);
  item_encode(it, IDX_TIMES | IDX_KEYS, 0, 8, A_TIME, hash);
  CHECK_MEM(it, 32, want + 8, 32);
  CHECK_EQ_INT(item_off(it), 0);
  CHECK_EQ_INT(item_pos(it), 8);
  CHECK_EQ_INT(item_ts(it, 3), A_TIME);
  CHECK_EQ_HEX(item_hash(it, 3), 0x08BE0F07B56224C1ULL);

  CHECK_EQ_INT(item_size(0), 16);
  memset(it, 0xAA, sizeof it);
  item_encode(it, 0, 0x0102030405060708LL, 0x1112131415161718LL, A_TIME, hash);
  CHECK_MEM(it, 16, "\x01\x02\x03\x04\x05\x06\x07\x08\x11\x12\x13\x14\x15\x16\x17\x18", 16);
  CHECK_EQ_INT(it[16], 0xAA);
  CHECK_EQ_INT(item_ts(it, 0), 0);
  CHECK_EQ_HEX(item_hash(it, 0), 0);

  CHECK_EQ_INT(item_size(IDX_TIMES), 24);
  memset(it, 0xAA, sizeof it);
  item_encode(it, IDX_TIMES, 1, 2, -1, hash);
  CHECK_MEM(it, 24, "\0\0\0\0\0\0\0\1\0\0\0\0\0\0\0\2\xff\xff\xff\xff\xff\xff\xff\xff", 24);
  CHECK_EQ_INT(it[24], 0xAA);
  CHECK_EQ_INT(item_ts(it, IDX_TIMES), -1);
  CHECK_EQ_HEX(item_hash(it, IDX_TIMES), 0);

  CHECK_EQ_INT(item_size(IDX_KEYS), 24);
  memset(it, 0xAA, sizeof it);
  item_encode(it, IDX_KEYS, 1, 2, A_TIME, hash);
  CHECK_MEM(it, 24, "\0\0\0\0\0\0\0\1\0\0\0\0\0\0\0\2\x08\xbe\x0f\x07\xb5\x62\x24\xc1", 24);
  CHECK_EQ_INT(it[24], 0xAA);
  CHECK_EQ_INT(item_ts(it, IDX_KEYS), 0);
  CHECK_EQ_HEX(item_hash(it, IDX_KEYS), 0x08BE0F07B56224C1ULL);
}

/* Builds n items (params), offsets offs[], positions 100 * offset,
** timestamps ts[] (or 0). */
static uint8_t *mk(int params, const int64_t *offs, const int64_t *ts, size_t n) {
  size_t isz = item_size(params);
  uint8_t *b = malloc(n * isz + 1);
  for (size_t i = 0; i < n; i++)
    item_encode(b + i * isz, params, offs[i], offs[i] * 100, ts ? ts[i] : 0, 0);
  return b;
}

static void test_items_seek(void) {
  const size_t S = 16;
  uint8_t dummy[16];
  CHECK_EQ_INT(items_seek(dummy, 0, S, 0), IX_EMPTY);
  CHECK_EQ_INT(items_seek(dummy, 0, S, 5), IX_EMPTY);

  int64_t o1[] = {1};
  uint8_t *b = mk(0, o1, NULL, 1);
  CHECK_EQ_INT(items_seek(b, 1, S, 0), 0);
  CHECK_EQ_INT(items_seek(b, 1, S, 1), 0);
  CHECK_EQ_INT(items_seek(b, 1, S, -100), 0);
  CHECK_EQ_INT(items_seek(b, 1, S, 2), IX_AFTER_END);
  CHECK_EQ_INT(item_pos(b + 0 * S), 100);
  free(b);

  int64_t o2[] = {1, 3};
  b = mk(0, o2, NULL, 2);
  CHECK_EQ_INT(items_seek(b, 2, S, 0), 0);
  CHECK_EQ_INT(items_seek(b, 2, S, 1), 0);
  CHECK_EQ_INT(items_seek(b, 2, S, 2), 1);
  CHECK_EQ_INT(item_pos(b + 1 * S), 300);
  CHECK_EQ_INT(items_seek(b, 2, S, 3), 1);
  CHECK_EQ_INT(items_seek(b, 2, S, 4), IX_AFTER_END);
  free(b);

  int64_t o3[] = {1, 3, 5};
  b = mk(0, o3, NULL, 3);
  CHECK_EQ_INT(items_seek(b, 3, S, 2), 1);
  CHECK_EQ_INT(items_seek(b, 3, S, 3), 1);
  CHECK_EQ_INT(items_seek(b, 3, S, 4), 2);
  CHECK_EQ_INT(item_pos(b + 2 * S), 500);
  CHECK_EQ_INT(items_seek(b, 3, S, 5), 2);
  CHECK_EQ_INT(items_seek(b, 3, S, 6), IX_AFTER_END);
  free(b);

  /* Gapless offsets (the subtraction shortcut) with a wider item. */
  int64_t o10[10];
  for (int i = 0; i < 10; i++) o10[i] = 10 + i;
  b = mk(IDX_TIMES | IDX_KEYS, o10, NULL, 10);
  CHECK_EQ_INT(items_seek(b, 10, 32, 9), 0);
  CHECK_EQ_INT(items_seek(b, 10, 32, 10), 0);
  CHECK_EQ_INT(items_seek(b, 10, 32, 15), 5);
  CHECK_EQ_INT(items_seek(b, 10, 32, 19), 9);
  CHECK_EQ_INT(items_seek(b, 10, 32, 20), IX_AFTER_END);
  free(b);

  /* Random gapped lists against a linear scan. */
  int bad = 0;
  for (int iter = 0; iter < 200; iter++) {
    size_t n = 1 + rnd() % 300;
    int64_t *offs = malloc(n * sizeof *offs);
    int64_t o = (int64_t)(rnd() % 50);
    for (size_t i = 0; i < n; i++) {
      offs[i] = o;
      o += 1 + (int64_t)(rnd() % 3 == 0 ? rnd() % 10 : 0);
    }
    b = mk(IDX_KEYS, offs, NULL, n);
    for (int64_t q = offs[0] - 2; q <= offs[n - 1] + 2; q++) {
      long want = IX_AFTER_END, wfind = IX_ABSENT;
      for (size_t i = 0; i < n; i++)
        if (offs[i] >= q) {
          want = (long)i;
          break;
        }
      for (size_t i = 0; i < n; i++)
        if (offs[i] == q) wfind = (long)i;
      if (q < offs[0]) wfind = IX_BEFORE_START;
      if (q > offs[n - 1]) wfind = IX_AFTER_END;
      if (items_seek(b, n, 24, q) != want) bad++;
      if (items_find(b, n, 24, q) != wfind) bad++;
    }
    free(b);
    free(offs);
  }
  CHECK_EQ_INT(bad, 0);
}

static void test_items_find(void) {
  const size_t S = 16;
  uint8_t dummy[16];
  CHECK_EQ_INT(items_find(dummy, 0, S, 0), IX_EMPTY);

  int64_t o1[] = {1};
  uint8_t *b = mk(0, o1, NULL, 1);
  CHECK_EQ_INT(items_find(b, 1, S, 0), IX_BEFORE_START);
  CHECK_EQ_INT(items_find(b, 1, S, -5), IX_BEFORE_START);
  CHECK_EQ_INT(items_find(b, 1, S, 1), 0);
  CHECK_EQ_INT(items_find(b, 1, S, 2), IX_AFTER_END);
  free(b);

  int64_t o2[] = {1, 3};
  b = mk(0, o2, NULL, 2);
  CHECK_EQ_INT(items_find(b, 2, S, 0), IX_BEFORE_START);
  CHECK_EQ_INT(items_find(b, 2, S, 1), 0);
  CHECK_EQ_INT(items_find(b, 2, S, 2), IX_ABSENT);
  CHECK_EQ_INT(items_find(b, 2, S, 3), 1);
  CHECK_EQ_INT(items_find(b, 2, S, 4), IX_AFTER_END);
  free(b);

  int64_t o10[10];
  for (int i = 0; i < 10; i++) o10[i] = 10 + i;
  b = mk(IDX_TIMES, o10, NULL, 10);
  CHECK_EQ_INT(items_find(b, 10, 24, 9), IX_BEFORE_START);
  CHECK_EQ_INT(items_find(b, 10, 24, 17), 7);
  CHECK_EQ_INT(items_find(b, 10, 24, 20), IX_AFTER_END);
  free(b);
}

static void test_items_time(void) {
  uint8_t dummy[32];
  CHECK_EQ_INT(items_time(dummy, 0, 24, IDX_TIMES, 0), IX_EMPTY);

  int64_t offs[] = {0, 1, 2, 3, 4, 5, 6};
  int64_t ts[] = {10, 20, 20, 20, 30, 40, 40};
  for (int params = IDX_TIMES; params <= (IDX_TIMES | IDX_KEYS); params += IDX_KEYS) {
    size_t isz = item_size(params);
    uint8_t *b = mk(params, offs, ts, 7);
    CHECK_EQ_INT(items_time(b, 7, isz, params, INT64_MIN), IX_BEFORE_START);
    CHECK_EQ_INT(items_time(b, 7, isz, params, 9), IX_BEFORE_START);
    CHECK_EQ_INT(items_time(b, 7, isz, params, 10), 0);
    CHECK_EQ_INT(items_time(b, 7, isz, params, 11), 1);
    CHECK_EQ_INT(items_time(b, 7, isz, params, 19), 1);
    CHECK_EQ_INT(items_time(b, 7, isz, params, 20), 1);  /* first of the run */
    CHECK_EQ_INT(items_time(b, 7, isz, params, 21), 4);  /* next run */
    CHECK_EQ_INT(items_time(b, 7, isz, params, 30), 4);
    CHECK_EQ_INT(items_time(b, 7, isz, params, 31), 5);
    CHECK_EQ_INT(items_time(b, 7, isz, params, 40), 5);
    CHECK_EQ_INT(items_time(b, 7, isz, params, 41), IX_AFTER_END);
    CHECK_EQ_INT(items_time(b, 7, isz, params, INT64_MAX), IX_AFTER_END);
    CHECK_EQ_INT(item_pos(b + 5 * isz), 500);
    free(b);
  }

  /* One item; and all-equal timestamps. */
  int64_t t1[] = {7};
  uint8_t *b = mk(IDX_TIMES, offs, t1, 1);
  CHECK_EQ_INT(items_time(b, 1, 24, IDX_TIMES, 6), IX_BEFORE_START);
  CHECK_EQ_INT(items_time(b, 1, 24, IDX_TIMES, 7), 0);
  CHECK_EQ_INT(items_time(b, 1, 24, IDX_TIMES, 8), IX_AFTER_END);
  free(b);
  int64_t t3[] = {7, 7, 7};
  b = mk(IDX_TIMES, offs, t3, 3);
  CHECK_EQ_INT(items_time(b, 3, 24, IDX_TIMES, 7), 0);
  CHECK_EQ_INT(items_time(b, 3, 24, IDX_TIMES, 8), IX_AFTER_END);
  free(b);
}

int main(void) {
  test_crc();
  test_rec_encode();
  test_rec_decode();
  test_rec_errors();
  test_log_detect();
  test_index_detect();
  test_items();
  test_items_seek();
  test_items_find();
  test_items_time();
  chk_name = "test_format";
  return check_done();
}
