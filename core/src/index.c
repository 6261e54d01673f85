/*
** index.c - the .index item format (docs/format.md): header, params,
** item encoding and the three searches over a sorted item array (by
** offset for consume, exact offset for get, clamped time).
*/
#include "kdb.h"

static const uint8_t INDEX_MAGIC[6] = {0xFF, 'k', 'l', 'e', 'v', 'i'};

void index_header(uint8_t out[FILE_HDR], int params) {
  memcpy(out + HDR_MAGIC, INDEX_MAGIC, 6);
  out[HDR_VERSION] = 0x01;
  out[HDR_PARAMS] = (uint8_t)params;
}

void item_encode(uint8_t *out, int params, int64_t off, int64_t pos, int64_t ts,
                 uint64_t hash) {
  put_be64(out + ITEM_OFFSET, (uint64_t)off);
  put_be64(out + ITEM_POS, (uint64_t)pos);
  uint8_t *p = out + ITEM_EXTRA;
  if (params & IDX_TIMES) {
    put_be64(p, (uint64_t)ts);
    p += 8;
  }
  if (params & IDX_KEYS) put_be64(p, hash);
}

klevdb_err index_detect(const uint8_t *hdr, int64_t size, int64_t base,
                        int params, int *ver, int64_t *data_start,
                        klevdb_error *e) {
  if (size == 0) {
    *ver = FMT_V1;
    *data_start = 0;
    return KLEVDB_OK;
  }
  if (size < FILE_HDR)
    return kerr(e, KLEVDB_ECORRUPT_INDEX, "index corrupted: reading header");
  if (memcmp(hdr + HDR_MAGIC, INDEX_MAGIC, 6) != 0) {
    if ((int64_t)get_be64(hdr) != base)
      return kerr(e, KLEVDB_ECORRUPT_INDEX, "index corrupted: magic prefix not found");
    *ver = FMT_V1;
    *data_start = 0;
  } else {
    if (hdr[HDR_VERSION] > 0x01)
      return kerr(e, KLEVDB_ECORRUPT_INDEX, "index corrupted: unknown version %d", hdr[HDR_VERSION]);
    /* A reason besides the text, so that callers need not match it. */
    if (!!(hdr[HDR_PARAMS] & IDX_TIMES) != !!(params & IDX_TIMES)) {
      kerr(e, KLEVDB_ECORRUPT_INDEX, "index corrupted: times index mismatch");
      if (e) e->reason = KLEVDB_REASON_TIME_INDEX;
      return KLEVDB_ECORRUPT_INDEX;
    }
    if (!!(hdr[HDR_PARAMS] & IDX_KEYS) != !!(params & IDX_KEYS)) {
      kerr(e, KLEVDB_ECORRUPT_INDEX, "index corrupted: keys index mismatch");
      if (e) e->reason = KLEVDB_REASON_KEY_INDEX;
      return KLEVDB_ECORRUPT_INDEX;
    }
    if (hdr[HDR_PARAMS] & ~(IDX_TIMES | IDX_KEYS))
      return kerr(e, KLEVDB_ECORRUPT_INDEX, "index corrupted: invalid reserved data");
    if (hdr[HDR_VERSION] != 0x01)
      return kerr(e, KLEVDB_ECORRUPT_INDEX, "index corrupted: unknown version 0");
    *ver = FMT_V2;
    *data_start = FILE_HDR;
  }
  if ((size - *data_start) % (int64_t)item_size(params) != 0)
    return kerr(e, KLEVDB_ECORRUPT_INDEX, "index corrupted: unaligned index size");
  return KLEVDB_OK;
}

/* Lower bound: the first item whose offset is >= o; n if none. Offsets
** without gaps (the common case) are found by subtraction. */
static size_t lower_bound(const uint8_t *items, size_t n, size_t isz, int64_t o) {
  int64_t first = item_off(items);
  if (o <= first) return 0;
  int64_t last = item_off(items + (n - 1) * isz);
  if (o > last) return n;
  /* Unsigned: offsets come from files and may be anything. */
  if ((uint64_t)last - (uint64_t)first == n - 1) return (size_t)((uint64_t)o - (uint64_t)first);
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (item_off(items + mid * isz) < o) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

long items_seek(const uint8_t *items, size_t n, size_t isz, int64_t o) {
  if (n == 0) return IX_EMPTY;
  size_t i = lower_bound(items, n, isz, o);
  return i == n ? IX_AFTER_END : (long)i;
}

long items_find(const uint8_t *items, size_t n, size_t isz, int64_t o) {
  if (n == 0) return IX_EMPTY;
  if (o < item_off(items)) return IX_BEFORE_START;
  size_t i = lower_bound(items, n, isz, o);
  if (i == n) return IX_AFTER_END;
  return item_off(items + i * isz) == o ? (long)i : IX_ABSENT;
}

long items_time(const uint8_t *items, size_t n, size_t isz, int params,
                int64_t ts) {
  if (n == 0) return IX_EMPTY;
  int64_t tlo = item_ts(items, params);
  if (ts < tlo) return IX_BEFORE_START;
  if (ts == tlo) return 0;
  int64_t thi = item_ts(items + (n - 1) * isz, params);
  if (thi < ts) return IX_AFTER_END;
  /* The answer is in (lo, hi]: ts(lo) < ts <= ts(hi). Times usually grow
  ** evenly, so a few interpolation steps land next to it; then binary
  ** search finishes (and bounds the worst case). */
  size_t lo = 0, hi = n - 1;
  for (int step = 0; step < 3 && hi - lo > 16; step++) {
    /* Times past 2^53 may round together: then binary search alone. */
    if (!((double)thi > (double)tlo)) break;
    double f = ((double)ts - (double)tlo) / ((double)thi - (double)tlo);
    if (!(f >= 0 && f <= 1)) break;
    size_t mid = lo + 1 + (size_t)(f * (double)(hi - lo - 1));
    if (mid >= hi) mid = hi - 1;
    int64_t t = item_ts(items + mid * isz, params);
    if (t < ts) {
      lo = mid;
      tlo = t;
    } else {
      hi = mid;
      thi = t;
    }
  }
  lo++;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (item_ts(items + mid * isz, params) < ts) lo = mid + 1;
    else hi = mid;
  }
  return (long)lo;
}
