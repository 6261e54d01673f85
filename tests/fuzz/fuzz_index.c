/*
** fuzz_index.c - libFuzzer target for the .index reader: the input is a
** whole .index file image. index_detect runs with every params value and
** with base 0 and the base the first 8 bytes name; the image's items are
** then searched (items_seek, items_find, items_time) for offsets and times
** taken from the items themselves, their neighbours and the extremes.
**
** Properties: no memory error or undefined behaviour (the searches read
** only the n items they are given); answers are in range; on items sorted
** as a valid index is, the answers are those of a linear scan.
*/
#include <string.h>

#include "fuzz_common.h"
#include "kdb.h"

static int64_t nb(int64_t v, int d) {  /* v + d without overflow */
  if (d > 0 && v > INT64_MAX - d) return INT64_MAX;
  if (d < 0 && v < INT64_MIN - d) return INT64_MIN;
  return v + d;
}

static void query_off(const uint8_t *items, size_t n, size_t isz, int sorted, int64_t o) {
  long r = items_seek(items, n, isz, o);
  long f = items_find(items, n, isz, o);
  if (n == 0) {
    FUZZ_CHECK(r == IX_EMPTY && f == IX_EMPTY);
    return;
  }
  FUZZ_CHECK(r == IX_AFTER_END || (r >= 0 && (size_t)r < n));
  FUZZ_CHECK(f == IX_AFTER_END || f == IX_BEFORE_START || f == IX_ABSENT ||
             (f >= 0 && (size_t)f < n));
  if (f >= 0) FUZZ_CHECK(item_off(items + (size_t)f * isz) == o);
  if (!sorted) return;
  size_t want = 0;
  while (want < n && item_off(items + want * isz) < o) want++;
  FUZZ_CHECK(want == n ? r == IX_AFTER_END : r == (long)want);
  if (want < n && item_off(items + want * isz) == o) FUZZ_CHECK(f == (long)want);
  else FUZZ_CHECK(f < 0);
}

static void query_time(const uint8_t *items, size_t n, size_t isz, int params,
                       int tsorted, int64_t t) {
  long r = items_time(items, n, isz, params, t);
  if (n == 0) {
    FUZZ_CHECK(r == IX_EMPTY);
    return;
  }
  FUZZ_CHECK(r == IX_AFTER_END || r == IX_BEFORE_START || (r >= 0 && (size_t)r < n));
  if (!tsorted) return;
  size_t want = 0;
  while (want < n && item_ts(items + want * isz, params) < t) want++;
  if (want == n) FUZZ_CHECK(r == IX_AFTER_END);
  else if (want == 0 && item_ts(items, params) > t) FUZZ_CHECK(r == IX_BEFORE_START);
  else FUZZ_CHECK(r == (long)want);
}

static void search(const uint8_t *items, size_t n, int params) {
  size_t isz = item_size(params);
  int sorted = 1, tsorted = 1;
  for (size_t i = 1; i < n; i++) {
    if (item_off(items + i * isz) <= item_off(items + (i - 1) * isz)) sorted = 0;
    if (item_ts(items + i * isz, params) < item_ts(items + (i - 1) * isz, params)) tsorted = 0;
  }
  int64_t ext[3] = {INT64_MIN, 0, INT64_MAX};
  for (int k = 0; k < 3; k++) {
    query_off(items, n, isz, sorted, ext[k]);
    query_time(items, n, isz, params, tsorted, ext[k]);
  }
  size_t step = n > 48 ? n / 48 : 1;
  for (size_t i = 0; i < n; i += step) {
    const uint8_t *it = items + i * isz;
    for (int d = -1; d <= 1; d++) {
      query_off(items, n, isz, sorted, nb(item_off(it), d));
      /* Positions and hashes are numbers from the file too. */
      if (d == 0) query_off(items, n, isz, sorted, item_pos(it));
      query_time(items, n, isz, params, tsorted, nb(item_ts(it, params), d));
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int64_t bases[2] = {0, size >= 8 ? (int64_t)be64(data) : 0};
  for (int params = 0; params < 4; params++) {
    size_t isz = item_size(params);
    for (int b = 0; b < 2; b++) {
      int ver = 0;
      int64_t start = -1;
      klevdb_error e;
      if (index_detect(data, (int64_t)size, bases[b], params, &ver, &start, &e)) {
        FUZZ_CHECK(e.code == KLEVDB_ECORRUPT_INDEX);
        continue;
      }
      FUZZ_CHECK((ver == FMT_V1 && start == 0) || (ver == FMT_V2 && start == FILE_HDR));
      FUZZ_CHECK(start <= (int64_t)size && (size - (size_t)start) % isz == 0);
      search(data + start, (size - (size_t)start) / isz, params);
    }
    /* Whatever the header says: the raw bytes as items. */
    search(data, size / isz, params);
  }
  return 0;
}
