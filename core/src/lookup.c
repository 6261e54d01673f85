/*
** lookup.c - reads by key and by time: consume and get by key through the
** key table (grown from the newest segment back), get by time and the
** time floor through a table of each segment's first and last times.
*/
#include <errno.h>
#include <stdlib.h>

#include "store.h"

/* ---- by key ---- */

static klevdb_err consume_by_key_once(klevdb *db, const void *key, size_t key_len, int64_t offset,
                                 size_t max_count, klevdb_batch *b) {
  BEGIN(db);
  batch_fail(b);
  store *st = db->st;
  klevdb_error *e = &db->err;
  if (!(st->params & IDX_KEYS)) return kerr(e, KLEVDB_ENOINDEX, "consume by key: no index by key");
  if (key_len && !key) return kerr(e, KLEVDB_EINVAL, "consume by key: no key bytes given");
  if (max_count == 0) return kerr(e, KLEVDB_EINVAL, "consume by key: max count must be at least 1");
  klevdb_err rc = read_begin(db, b, true);
  if (rc) return rc;
  uint64_t h = klevdb_key_hash(key, key_len);
  /* Nothing below the offset asked for is ever returned, whatever the
  ** files say: a caller that goes on from next_offset always moves on. */
  const int64_t floor = offset < 0 ? INT64_MIN : offset;
  pthread_rwlock_rdlock(&st->lk);
  size_t si = pick_consume(st, offset);
  for (;;) {
    seg *s = st->segs[si], *v;
    int64_t next = store_next(st);   /* before the count (consume_in) */
    /* A key's messages may be far apart: segments passed are not kept. */
    if ((rc = peek(st, s, &v, e))) break;
    if (offset == KLEVDB_OFFSET_NEWEST) {
      b->next_offset = si + 1 == st->nsegs ? next : seg_next(v, st->isz);
      unpeek(s, v);
      break;
    }
    const uint8_t *items = seg_items(v);
    size_t n = seg_n(v);
    if (si + 1 == st->nsegs) n = seg_n_below(st, v, n, next);
    long i = offset == KLEVDB_OFFSET_OLDEST ? 0 : items_seek(items, n, st->isz, offset);
    for (size_t k = i < 0 ? n : (size_t)i; k < n && b->len < max_count; k++) {
      const uint8_t *it = items + k * st->isz;
      if (item_hash(it, st->params) != h || item_off(it) < floor) continue;
      klevdb_msg m;
      if ((rc = seg_read(&st->cfg, v, k, &m, e))) break;
      if (m.key_len != key_len || (key_len && memcmp(m.key, key, key_len) != 0)) continue;
      if ((rc = batch_add(b, &m, e))) break;
    }
    if (!rc && b->len) {
      b->next_offset = b->msgs[b->len - 1].offset + 1;
      batch_pin(st, b, v->log);
    }
    unpeek(s, v);
    if (rc || b->len) break;
    if (si + 1 == st->nsegs) {
      b->next_offset = next;
      break;
    }
    si++;
    offset = KLEVDB_OFFSET_OLDEST;
  }
  pthread_rwlock_unlock(&st->lk);
  maybe_sweep(st);
  if (rc) {
    b->len = 0;
    b->next_offset = KLEVDB_OFFSET_INVALID;
  }
  return rc;
}

klevdb_err klevdb_consume_by_key(klevdb *db, const void *key, size_t key_len, int64_t offset,
                                 size_t max_count, klevdb_batch *b) {
  RO_RETRY(db, consume_by_key_once(db, key, key_len, offset, max_count, b));
}

/* The key table covers every segment: a key it lacks is in none. */
static bool kt_complete(const store *st) {
  return st->nsegs == 0 || st->kt_lo <= st->segs[0]->base;
}

/* Adds the items of segment s at or past offset from to the key table.
** *end: past the last item it saw (a head may have more by now). Caller
** holds lk for writing. */
static klevdb_err kt_add_seg(store *st, seg *s, int64_t from, int64_t *end, klevdb_error *e) {
  seg *v;
  klevdb_err rc = peek(st, s, &v, e);
  if (rc) return rc;
  const uint8_t *items = seg_items(v);
  size_t n = seg_n(v);
  long i = items_seek(items, n, st->isz, from);
  for (size_t k = i < 0 ? n : (size_t)i; k < n; k++) {
    const uint8_t *it = items + k * st->isz;
    if (!kt_put(&st->kt, item_hash(it, st->params), item_off(it), kt_same, st)) {
      kt_free(&st->kt);
      st->kt_state = -1;
      break;
    }
  }
  *end = n ? item_off(items + (n - 1) * st->isz) + 1 : s->base;
  unpeek(s, v);
  return KLEVDB_OK;
}

/* Adds the newest segment the key table does not cover yet. The table
** grows from the newest segment back, only as far as key queries need
** (a recent key is found after a few segments, not a build of the whole
** store), one segment per hold of the lock. Caller holds lk for writing. */
static klevdb_err kt_extend(store *st, klevdb_error *e) {
  size_t lo = 0, hi = st->nsegs;   /* segments below kt_lo: [0, lo) */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (st->bases[mid] < st->kt_lo) lo = mid + 1;
    else hi = mid;
  }
  if (lo == 0) return KLEVDB_OK;
  seg *s = st->segs[lo - 1];
  int64_t end;
  klevdb_err rc = kt_add_seg(st, s, INT64_MIN, &end, e);
  if (rc || st->kt_state != 1) return rc;
  if (lo == st->nsegs) st->kt_hi = end;   /* the first: the head */
  st->kt_lo = s->base;
  return KLEVDB_OK;
}

/* Adds what was published since the table last looked (kt_hi): the rest
** of the head, and of the heads rolled over since. Caller holds lk for
** writing. */
static klevdb_err kt_catch_up(store *st, klevdb_error *e) {
  for (size_t si = seg_find(st, st->kt_hi); si < st->nsegs && st->kt_state == 1; si++) {
    int64_t end;
    klevdb_err rc = kt_add_seg(st, st->segs[si], st->kt_hi, &end, e);
    if (rc) return rc;
    if (end > st->kt_hi) st->kt_hi = end;
  }
  return KLEVDB_OK;
}

static bool key_eq(const klevdb_msg *m, const void *key, size_t len) {
  return m->key_len == len && (len == 0 || memcmp(m->key, key, len) == 0);
}

/* Newest message with this key (Go's GetByKey), under lk: one probe of the key
** table, confirmed against the record; a scan of the segments' items from
** the newest when the table cannot answer (hash collision, deleted). */
static klevdb_err get_by_key_locked(store *st, const void *key, size_t len, uint64_t h,
                                    klevdb_batch *b, klevdb_error *e) {
  klevdb_err rc;
  if (st->kt_state == 1) {
    int64_t off = kt_get(&st->kt, h, kt_same, st);
    if (off < 0) return kerr(e, KLEVDB_ENOTFOUND, "get by key: not found: key not found");
    seg *s = st->segs[seg_find(st, off)];
    if ((rc = load(st, s, e))) return rc;
    long i = items_find(seg_items(s), seg_n(s), st->isz, off);
    if (i >= 0) {
      klevdb_msg m;
      if ((rc = seg_read(&st->cfg, s, (size_t)i, &m, e))) return rc;
      if (key_eq(&m, key, len)) return batch_one(st, b, &m, s, e);
    }
  }
  for (size_t si = st->nsegs; si-- > 0;) {
    seg *s = st->segs[si], *v;
    if ((rc = peek(st, s, &v, e))) return rc;
    const uint8_t *items = seg_items(v);
    for (size_t i = seg_n(v); !rc && i-- > 0;) {
      if (item_hash(items + i * st->isz, st->params) != h) continue;
      klevdb_msg m;
      if ((rc = seg_read(&st->cfg, v, i, &m, e))) break;
      if (key_eq(&m, key, len)) {
        rc = batch_one(st, b, &m, v, e);
        unpeek(s, v);
        return rc;
      }
    }
    unpeek(s, v);
    if (rc) return rc;
  }
  return kerr(e, KLEVDB_ENOTFOUND, "get by key: not found: key not found");
}

/* A get that found nothing on a read-only handle, which looks for another
** process's publishes only every 10 ms (FOLLOW_US), looks at once and
** says to try again, once. */
static bool miss_look_again(store *st, klevdb_err *rc, bool *fresh, klevdb_error *e) {
  if (*rc != KLEVDB_ENOTFOUND || !st->ro || *fresh) return false;
  *fresh = true;
  *rc = follow(st, true, e);
  return *rc == KLEVDB_OK;
}

static klevdb_err get_by_key_once(klevdb *db, const void *key, size_t key_len, klevdb_batch *b) {
  BEGIN(db);
  batch_fail(b);
  store *st = db->st;
  klevdb_error *e = &db->err;
  if (!(st->params & IDX_KEYS)) return kerr(e, KLEVDB_ENOINDEX, "get by key: no index by key");
  if (key_len && !key) return kerr(e, KLEVDB_EINVAL, "get by key: no key bytes given");
  /* Not a look for another process's publishes at each lookup (two
  ** system calls and the list lock): see miss_look_again. */
  bool fresh = false;
  klevdb_err rc = read_begin(db, b, false);
  if (rc) return rc;
again:;
  uint64_t h = klevdb_key_hash(key, key_len);
  /* What was published before this call is what the table must hold;
  ** publishes meanwhile may be seen or not (as with a lock). */
  int64_t upto = store_next(st);
  pthread_rwlock_rdlock(&st->lk);
  /* Until the table holds what was published and answers (it has the
  ** key, or covers every segment), bring it up to date or grow it by a
  ** segment under the write lock, and look again. */
  while (st->kt_state == 0 ||
         (st->kt_state == 1 && !st->ro && st->kt_hi < upto) ||
         (st->kt_state == 1 && !kt_complete(st) && kt_get(&st->kt, h, kt_same, st) < 0)) {
    pthread_rwlock_unlock(&st->lk);
    pthread_rwlock_wrlock(&st->lk);
    if (st->kt_state == 0) {
      st->kt_state = 1;
      st->kt_lo = INT64_MAX;
      st->kt_hi = INT64_MAX;   /* set by the first kt_extend, the head's */
    }
    if (st->kt_state == 1 && !st->ro && st->kt_hi < upto) rc = kt_catch_up(st, e);
    else if (st->kt_state == 1) rc = kt_extend(st, e);
    pthread_rwlock_unlock(&st->lk);
    if (rc) return rc;
    pthread_rwlock_rdlock(&st->lk);
  }
  rc = get_by_key_locked(st, key, key_len, h, b, e);
  pthread_rwlock_unlock(&st->lk);
  maybe_sweep(st);
  if (miss_look_again(st, &rc, &fresh, e)) goto again;
  return rc;
}

klevdb_err klevdb_get_by_key(klevdb *db, const void *key, size_t key_len, klevdb_batch *b) {
  RO_RETRY(db, get_by_key_once(db, key, key_len, b));
}

klevdb_err klevdb_offset_by_key(klevdb *db, const void *key, size_t key_len, int64_t *offset_out) {
  BEGIN(db);
  if (!offset_out) return kerr(&db->err, KLEVDB_EINVAL, "offset by key: no place for the result");
  klevdb_batch b = KLEVDB_BATCH_INIT;
  klevdb_err rc = klevdb_get_by_key(db, key, key_len, &b);
  if (offset_out) *offset_out = rc ? KLEVDB_OFFSET_INVALID : b.msgs[0].offset;
  klevdb_batch_free(&b);
  return rc;
}

/* ---- by time ---- */

/* Rebuilds st->tsmin and st->tsmax (under lk, read side; tsmu serializes
** builders). */
static klevdb_err tsmin_build(store *st, klevdb_error *e) {
  klevdb_err rc = KLEVDB_OK;
  pthread_mutex_lock(&st->tsmu);
  if (__atomic_load_n(&st->tsmin_n, __ATOMIC_ACQUIRE) != st->nsegs) {
    int64_t *a = realloc(st->tsmin, st->nsegs * sizeof(int64_t));
    if (a) st->tsmin = a;
    int64_t *x = a ? realloc(st->tsmax, st->nsegs * sizeof(int64_t)) : NULL;
    if (x) st->tsmax = x;
    if (!a || !x) {
      rc = kerr_sys(e, ENOMEM, "get by time");
    } else {
      /* Sealed segments from what is known of them (mapping each once,
      ** one at a time, if nothing is); the live one from its items. */
      int64_t m = INT64_MAX;
      for (size_t si = st->nsegs; si-- > 0;) {
        seg *s = st->segs[si];
        int64_t t = INT64_MAX;
        if (si + 1 == st->nsegs) {
          if ((rc = load(st, s, e))) break;
          if (seg_n(s)) t = item_ts(seg_items(s), st->params);
        } else {
          if ((rc = summary(st, s, e))) break;
          t = s->sum_ts_lo;
        }
        if (t < m) m = t;
        a[si] = m;
      }
      m = INT64_MIN;
      for (size_t si = 0; !rc && si < st->nsegs; si++) {
        seg *s = st->segs[si];
        int64_t t = INT64_MIN;
        if (si + 1 == st->nsegs) {
          size_t n = seg_n(s);
          if (n) t = item_ts(seg_items(s) + (n - 1) * st->isz, st->params);
        } else {
          t = s->sum_ts_hi;
        }
        if (t > m) m = t;
        x[si] = m;
      }
      if (!rc) __atomic_store_n(&st->tsmin_n, st->nsegs, __ATOMIC_RELEASE);
    }
  }
  pthread_mutex_unlock(&st->tsmu);
  return rc;
}

/* The first record of the first non-empty segment from si on. */
static klevdb_err first_from(store *st, size_t si, int64_t ts, klevdb_batch *b, klevdb_error *e) {
  for (; si < st->nsegs; si++) {
    seg *s = st->segs[si];
    klevdb_err rc = load(st, s, e);
    if (rc) return rc;
    if (seg_n(s)) return get_item(st, s, 0, b, e);
  }
  return kerr(e, KLEVDB_ENOTFOUND, "get by time %lld: not found: time not found", (long long)ts);
}

/* First message whose indexed time is >= ts (Go's GetByTime), under lk. Go walks
** from the newest segment to the first one whose first time is <= ts; the
** newest such segment is found here by binary search over the suffix
** minimum of first times, which gives the same answer in log(segments).
** Empty segments are passed over (differences D2). */
static klevdb_err get_by_time_locked(store *st, int64_t ts, klevdb_batch *b, klevdb_error *e) {
  klevdb_err rc;
  if (__atomic_load_n(&st->tsmin_n, __ATOMIC_ACQUIRE) != st->nsegs && (rc = tsmin_build(st, e)))
    return rc;
  const int64_t *m = st->tsmin;
  if (m[0] == INT64_MAX)
    return kerr(e, KLEVDB_EINVALID_OFFSET, "get by time %lld: invalid offset: no time items", (long long)ts);
  if (ts < m[0]) return first_from(st, 0, ts, b, e);
  size_t lo = 0, hi = st->nsegs - 1;   /* m[lo] <= ts; find the last such */
  while (lo < hi) {
    size_t mid = hi - (hi - lo) / 2;
    if (m[mid] <= ts) lo = mid;
    else hi = mid - 1;
  }
  seg *s = st->segs[lo];
  if ((rc = load(st, s, e))) return rc;
  long i = items_time(seg_items(s), seg_n(s), st->isz, st->params, ts);
  if (i >= 0) return get_item(st, s, (size_t)i, b, e);
  return first_from(st, lo + 1, ts, b, e);
}

static klevdb_err get_by_time_once(klevdb *db, int64_t time_us, klevdb_batch *b) {
  BEGIN(db);
  batch_fail(b);
  store *st = db->st;
  if (!(st->params & IDX_TIMES)) return kerr(&db->err, KLEVDB_ENOINDEX, "get by time: no index by time");
  /* Paced as a get by key is (miss_look_again). */
  bool fresh = false;
  klevdb_err rc = read_begin(db, b, false);
  while (!rc) {
    pthread_rwlock_rdlock(&st->lk);
    rc = get_by_time_locked(st, time_us, b, &db->err);
    pthread_rwlock_unlock(&st->lk);
    maybe_sweep(st);
    if (!miss_look_again(st, &rc, &fresh, &db->err)) break;
  }
  return rc;
}

klevdb_err klevdb_get_by_time(klevdb *db, int64_t time_us, klevdb_batch *b) {
  RO_RETRY(db, get_by_time_once(db, time_us, b));
}

klevdb_err klevdb_offset_by_time(klevdb *db, int64_t time_us, int64_t *offset_out, int64_t *time_out) {
  BEGIN(db);
  if (!offset_out) return kerr(&db->err, KLEVDB_EINVAL, "offset by time: no place for the result");
  klevdb_batch b = KLEVDB_BATCH_INIT;
  klevdb_err rc = klevdb_get_by_time(db, time_us, &b);
  if (offset_out) *offset_out = rc ? KLEVDB_OFFSET_INVALID : b.msgs[0].offset;
  if (time_out) *time_out = rc ? 0 : b.msgs[0].time;
  klevdb_batch_free(&b);
  return rc;
}

static klevdb_err time_floor_once(klevdb *db, int64_t time_us, int64_t *offset_out) {
  BEGIN(db);
  store *st = db->st;
  klevdb_error *e = &db->err;
  if (!offset_out) return kerr(e, KLEVDB_EINVAL, "time floor: no place for the result");
  if (!(st->params & IDX_TIMES)) return kerr(e, KLEVDB_ENOINDEX, "time floor: no index by time");
  klevdb_err rc = st->ro ? follow(st, true, e) : KLEVDB_OK;
  if (rc) return rc;
  pthread_rwlock_rdlock(&st->lk);
  *offset_out = store_next(st);
  /* Indexed times never fall within a segment and are at least the real
  ** time, so everything before the first item at or past time_us, in the
  ** first segment that reaches it, is older. That segment is the first
  ** whose prefix maximum of last times reaches time_us: a binary search
  ** over the sealed ones (the head's last time moves with each publish). */
  size_t from = 0;
  if (st->nsegs && __atomic_load_n(&st->tsmin_n, __ATOMIC_ACQUIRE) != st->nsegs) rc = tsmin_build(st, e);
  if (!rc && st->nsegs) {
    size_t lo = 0, hi = st->nsegs - 1;   /* the head, if no sealed one reaches it */
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      if (st->tsmax[mid] >= time_us) hi = mid;
      else lo = mid + 1;
    }
    from = lo;
  }
  for (size_t si = from; !rc && si < st->nsegs; si++) {
    seg *s = st->segs[si];
    if ((rc = load(st, s, e))) break;
    size_t n = seg_n(s);
    if (n == 0) continue;
    const uint8_t *items = seg_items(s);
    long i = items_time(items, n, st->isz, st->params, time_us);
    if (i == IX_AFTER_END) continue;
    *offset_out = item_off(items + (i < 0 ? 0 : (size_t)i) * st->isz);
    break;
  }
  pthread_rwlock_unlock(&st->lk);
  maybe_sweep(st);
  return rc;
}

klevdb_err klevdb_time_floor(klevdb *db, int64_t time_us, int64_t *offset_out) {
  RO_RETRY(db, time_floor_once(db, time_us, offset_out));
}
