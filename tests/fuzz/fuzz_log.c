/*
** fuzz_log.c - libFuzzer target for the .log reader: the input is a whole
** .log file image. Detects its format (log_detect, with base 0 and with
** the base its first 8 bytes name), scans it as the store does
** (log_scan, every index params value), and walks it record by record with
** rec_decode in both formats, with and without CRC checks.
**
** Properties: no memory error; every record decoded lies inside the image;
** a record that passes its CRC re-encodes (rec_encode) to the same bytes;
** log_scan's items agree with the walk and their times never go down, and
** the index searches (items_seek/find/time) answer as a linear scan does.
*/
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "kdb.h"

/* Checks the searches of index.c over items log_scan made (times are
** clamped, so never decreasing) against a linear scan. */
static void check_items(const uint8_t *items, size_t n, int params) {
  size_t isz = item_size(params);
  int sorted = 1;
  for (size_t i = 1; i < n; i++)
    if (item_off(items + i * isz) <= item_off(items + (i - 1) * isz)) sorted = 0;
  for (size_t i = 1; i < n; i++)
    FUZZ_CHECK(item_ts(items + i * isz, params) >= item_ts(items + (i - 1) * isz, params));

  size_t step = n > 64 ? n / 64 : 1;
  for (size_t i = 0; i < n; i += step) {
    const uint8_t *it = items + i * isz;
    int64_t o = item_off(it);
    int64_t qs[3] = {o, o == INT64_MIN ? o : o - 1, o == INT64_MAX ? o : o + 1};
    for (int q = 0; q < 3; q++) {
      long r = items_seek(items, n, isz, qs[q]);
      long f = items_find(items, n, isz, qs[q]);
      FUZZ_CHECK(r == IX_AFTER_END || (r >= 0 && (size_t)r < n));
      FUZZ_CHECK(f < 0 || (size_t)f < n);
      if (sorted) {
        size_t want = 0;
        while (want < n && item_off(items + want * isz) < qs[q]) want++;
        FUZZ_CHECK(want == n ? r == IX_AFTER_END : r == (long)want);
        if (want < n && item_off(items + want * isz) == qs[q]) FUZZ_CHECK(f == (long)want);
        else FUZZ_CHECK(f < 0);
      } else if (f >= 0) {
        FUZZ_CHECK(item_off(items + (size_t)f * isz) == qs[q]);
      }
    }
    if (params & IDX_TIMES) {
      int64_t t = item_ts(it, params);
      int64_t ts[3] = {t, t == INT64_MIN ? t : t - 1, t == INT64_MAX ? t : t + 1};
      for (int q = 0; q < 3; q++) {
        long r = items_time(items, n, isz, params, ts[q]);
        size_t want = 0;
        while (want < n && item_ts(items + want * isz, params) < ts[q]) want++;
        if (want == n) FUZZ_CHECK(r == IX_AFTER_END);
        else if (want == 0 && item_ts(items, params) > ts[q]) FUZZ_CHECK(r == IX_BEFORE_START);
        else FUZZ_CHECK(r == (long)want);
      }
    }
  }
}

/* Walks the records from pos as rec_decode's callers do. */
static void walk(int ver, const uint8_t *data, int64_t size, int64_t pos, bool verify,
                 uint8_t *scratch) {
  for (int guard = 0; guard < 100000; guard++) {
    klevdb_msg m;
    int64_t len = 0;
    klevdb_error e;
    int r = rec_decode(ver, data + pos, size - pos, verify, &m, &len, &e);
    if (r == 0) {
      FUZZ_CHECK(size - pos < REC_HDR);
      return;
    }
    if (r < 0) {
      FUZZ_CHECK(e.code == KLEVDB_ECORRUPT_LOG);
      return;
    }
    FUZZ_CHECK(len >= REC_HDR && len <= size - pos);
    FUZZ_CHECK(len == rec_size(ver, m.key_len, m.value_len));
    FUZZ_CHECK(!m.key_len || (m.key >= data + pos && m.key + m.key_len <= data + pos + len));
    FUZZ_CHECK(!m.value_len ||
               (m.value >= data + pos && m.value + m.value_len <= data + pos + len));
    if (verify) {
      /* Everything a record holds is covered by the CRC (V2) or stored
      ** verbatim (V1 header), so encoding it again gives the same bytes. */
      size_t n = rec_encode(ver, scratch, m.offset, m.time, m.key, m.key_len,
                            m.value, m.value_len);
      FUZZ_CHECK((int64_t)n == len);
      FUZZ_CHECK(memcmp(scratch, data + pos, n) == 0);
    }
    pos += len;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int64_t bases[2] = {0, size >= 8 ? (int64_t)be64(data) : 0};
  uint8_t *scratch = malloc(size + REC_HDR + REC_TRAILER);
  if (!scratch) return 0;

  for (int b = 0; b < 2; b++) {
    int ver = 0;
    klevdb_error e;
    if (log_detect(data, (int64_t)size, bases[b], &ver, &e) != KLEVDB_OK) {
      FUZZ_CHECK(e.code == KLEVDB_ECORRUPT_LOG);
      continue;
    }
    FUZZ_CHECK(ver == FMT_V1 || ver == FMT_V2);
    for (int params = 0; params < 4; params++) {
      kbuf items = {0};
      int64_t last_ts = INT64_MIN, end = -1;
      klevdb_err rc = log_scan(data, (int64_t)size, ver, log_start(ver), params, &last_ts,
                               &items, &end, &e);
      FUZZ_CHECK(rc == KLEVDB_OK || rc == KLEVDB_ECORRUPT_LOG);
      FUZZ_CHECK(end >= log_start(ver) && end <= (int64_t)size);
      size_t isz = item_size(params), n = items.len / isz;
      FUZZ_CHECK(items.len % isz == 0);
      /* The items point at records that decode to the same message. */
      for (size_t i = 0; i < n; i++) {
        const uint8_t *it = items.p + i * isz;
        int64_t pos = item_pos(it), len;
        klevdb_msg m;
        FUZZ_CHECK(pos >= log_start(ver) && pos < end);
        FUZZ_CHECK(rec_decode(ver, data + pos, (int64_t)size - pos, true, &m, &len, &e) == 1);
        FUZZ_CHECK(m.offset == item_off(it));
        if (params & IDX_KEYS)
          FUZZ_CHECK(item_hash(it, params) == klevdb_key_hash(m.key, m.key_len));
        if (params & IDX_TIMES) FUZZ_CHECK(item_ts(it, params) >= m.time);
      }
      check_items(items.p, n, params);
      kbuf_free(&items);
    }
  }

  /* Both record formats from both starts, whatever the header says. */
  for (int ver = FMT_V1; ver <= FMT_V2; ver++)
    for (int64_t from = 0; from <= 8 && from <= (int64_t)size; from += 8) {
      walk(ver, data, (int64_t)size, from, true, scratch);
      walk(ver, data, (int64_t)size, from, false, scratch);
    }
  free(scratch);
  return 0;
}
