/*
** read.c - reads by offset: consume (forward and backward), get, the next
** offset, blocking consumers, stat and bounds; and the batches they fill,
** which pin the mapping their messages point into.
*/
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "store.h"

/* ---- reads ---- */

void klevdb_batch_free(klevdb_batch *b) {
  if (!b) return;
  free(b->msgs);
  kmap_unref(b->pin);
  memset(b, 0, sizeof(*b));
}

/* Consume within segment index si (Go's Consume), under lk. */
static klevdb_err consume_in(store *st, size_t si, int64_t offset, size_t max, int flags,
                             klevdb_batch *b, klevdb_error *e) {
  /* Later segments are read from the same offset on, not from their first
  ** item: nothing below it comes back, whatever the files say. */
  const int64_t from = offset;
  for (;;) {
    seg *s = st->segs[si];
    bool last = si + 1 == st->nsegs;
    /* The next offset before the head's count: the count then covers
    ** every offset below it, so an answer "nothing past here" never skips
    ** a message published in between. */
    int64_t next = store_next(st);
    klevdb_err rc = load(st, s, e);
    if (rc) return rc;
    if (offset == KLEVDB_OFFSET_NEWEST) {
      b->next_offset = last ? next : seg_next(s, st->isz);
      return KLEVDB_OK;
    }
    size_t n = seg_n(s);
    if (last) n = seg_n_below(st, s, n, next);
    long i = offset == KLEVDB_OFFSET_OLDEST ? (n ? 0 : IX_EMPTY)
                                            : items_seek(seg_items(s), n, st->isz, offset);
    if (i < 0) {
      if (last) {
        if (offset <= next) {
          b->next_offset = next;
          return KLEVDB_OK;
        }
        return kerr(e, KLEVDB_EINVALID_OFFSET,
                    "consume %lld: invalid offset: offset after end (next offset is %lld)",
                    (long long)offset, (long long)next);
      }
      si++;
      offset = from >= 0 ? from : KLEVDB_OFFSET_OLDEST;
      continue;
    }
    size_t count = n - (size_t)i;
    if (count > max) count = max;
    if ((rc = batch_reset(b, count, e))) return rc;
    if (flags & KLEVDB_READ_OFFSETS) {
      const uint8_t *items = seg_items(s) + (size_t)i * st->isz;
      for (size_t k = 0; k < count; k++)
        b->msgs[k] = (klevdb_msg){.offset = item_off(items + k * st->isz), .time = KLEVDB_TIME_UNSET};
    } else {
      for (size_t k = 0; k < count; k++)
        if ((rc = seg_read(&st->cfg, s, (size_t)i + k, &b->msgs[k], e))) return rc;
    }
    b->len = count;
    b->next_offset = b->msgs[count - 1].offset + 1;
    batch_pin(st, b, s->log);
    return KLEVDB_OK;
  }
}

/* Newest first from offset (klevdb_read with KLEVDB_READ_BACKWARD), under lk. */
static klevdb_err consume_back(store *st, int64_t offset, size_t max, int flags,
                               klevdb_batch *b, klevdb_error *e) {
  b->next_offset = -1;
  if (offset < 0 && offset != KLEVDB_OFFSET_NEWEST) return KLEVDB_OK;
  int64_t next = store_next(st);   /* before the count (consume_in) */
  if (offset >= next) offset = KLEVDB_OFFSET_NEWEST;
  size_t si = offset == KLEVDB_OFFSET_NEWEST ? st->nsegs - 1 : seg_find(st, offset);
  for (;;) {
    seg *s = st->segs[si];
    klevdb_err rc = load(st, s, e);
    if (rc) return rc;
    const uint8_t *items = seg_items(s);
    size_t n = seg_n(s);
    if (si + 1 == st->nsegs) n = seg_n_below(st, s, n, next);
    long i = -1;
    if (n && offset == KLEVDB_OFFSET_NEWEST) {
      i = (long)n - 1;
    } else if (n && offset >= item_off(items)) {
      long j = items_seek(items, n, st->isz, offset + 1);
      i = j == IX_AFTER_END ? (long)n - 1 : j - 1;
    }
    if (i < 0) {
      if (si == 0) return KLEVDB_OK;
      si--;
      offset = KLEVDB_OFFSET_NEWEST;
      continue;
    }
    size_t count = (size_t)i + 1 < max ? (size_t)i + 1 : max;
    if ((rc = batch_reset(b, count, e))) return rc;
    for (size_t k = 0; k < count; k++) {
      size_t at = (size_t)i - k;
      if (flags & KLEVDB_READ_OFFSETS)
        b->msgs[k] = (klevdb_msg){.offset = item_off(items + at * st->isz), .time = KLEVDB_TIME_UNSET};
      else if ((rc = seg_read(&st->cfg, s, at, &b->msgs[k], e)))
        return rc;
    }
    b->len = count;
    b->next_offset = b->msgs[count - 1].offset - 1;
    batch_pin(st, b, s->log);
    return KLEVDB_OK;
  }
}

klevdb_err klevdb_consume(klevdb *db, int64_t offset, size_t max_count, klevdb_batch *b) {
  return klevdb_read(db, offset, max_count, 0, b);
}

static klevdb_err read_once(klevdb *db, int64_t offset, size_t max_count, int flags, klevdb_batch *b) {
  BEGIN(db);
  batch_fail(b);
  store *st = db->st;
  klevdb_error *e = &db->err;
  if (max_count == 0) return kerr(e, KLEVDB_EINVAL, "consume %lld: max count must be at least 1", (long long)offset);
  if (flags & ~(KLEVDB_READ_BACKWARD | KLEVDB_READ_OFFSETS))
    return kerr(e, KLEVDB_EINVAL, "read: unknown flags %#x", (unsigned)flags);
  klevdb_err rc = read_begin(db, b, false);
  if (rc) return rc;
  if (flags & KLEVDB_READ_BACKWARD) {
    if (st->ro && (offset == KLEVDB_OFFSET_NEWEST || offset >= store_next(st)) && (rc = follow(st, true, e)))
      return rc;
    pthread_rwlock_rdlock(&st->lk);
    rc = consume_back(st, offset, max_count, flags, b, e);
    pthread_rwlock_unlock(&st->lk);
    maybe_sweep(st);
    if (rc) batch_fail(b);
    return rc;
  }
  pthread_rwlock_rdlock(&st->lk);
  if (st->ro && (offset == KLEVDB_OFFSET_NEWEST || offset >= store_next(st))) {
    pthread_rwlock_unlock(&st->lk);
    if ((rc = follow(st, true, e))) return rc;
    pthread_rwlock_rdlock(&st->lk);
  }
  rc = consume_in(st, pick_consume(st, offset), offset, max_count, flags, b, e);
  if (!rc && st->ro && b->len == 0 && offset != KLEVDB_OFFSET_NEWEST) {
    /* Nothing here yet: maybe the writer has more than we followed. */
    pthread_rwlock_unlock(&st->lk);
    if ((rc = follow(st, true, e))) return rc;
    pthread_rwlock_rdlock(&st->lk);
    rc = consume_in(st, pick_consume(st, offset), offset, max_count, flags, b, e);
  }
  pthread_rwlock_unlock(&st->lk);
  maybe_sweep(st);
  if (rc) batch_fail(b);
  return rc;
}

klevdb_err klevdb_read(klevdb *db, int64_t offset, size_t max_count, int flags, klevdb_batch *b) {
  RO_RETRY(db, read_once(db, offset, max_count, flags, b));
}

/* An offset the index does not have: before saying "not found", check
** that the items around where it would be hold the records they name, so
** that a damaged index is reported as such and not as a missing message. */
static klevdb_err verify_around(store *st, seg *s, int64_t offset, klevdb_error *e) {
  size_t n = seg_n(s);
  if (n == 0) return KLEVDB_OK;
  long j = items_seek(seg_items(s), n, st->isz, offset);
  size_t at = j < 0 ? n : (size_t)j;
  klevdb_msg m;
  for (size_t k = at > 0 ? at - 1 : 0; k <= at && k < n; k++) {
    klevdb_err rc = seg_read(&st->cfg, s, k, &m, e);
    if (rc) return rc;
  }
  return KLEVDB_OK;
}

/* The newest message below next, under lk: what a reader that saw next
** may report (seg_n_below; INT64_MAX: the newest there is). Only the last
** segment can hold more: the list does not change while lk is held, and a
** segment was sealed by a publish after the one that moved the next
** offset past its items. */
static klevdb_err newest_below(store *st, int64_t next, klevdb_batch *b, klevdb_error *e) {
  for (size_t si = st->nsegs; si-- > 0;) {
    seg *s = st->segs[si];
    klevdb_err rc = load(st, s, e);
    if (rc) return rc;
    size_t n = seg_n(s);
    if (si + 1 == st->nsegs) n = seg_n_below(st, s, n, next);
    if (n) return get_item(st, s, n - 1, b, e);
  }
  return kerr(e, KLEVDB_EINVALID_OFFSET, "get newest: invalid offset: the log is empty");
}

/* Get by offset (Go's Get) under lk, with differences D3: the newest
** message is found even when the head is empty. */
static klevdb_err get_locked(store *st, int64_t offset, klevdb_batch *b, klevdb_error *e) {
  klevdb_err rc;
  if (offset == KLEVDB_OFFSET_NEWEST) return newest_below(st, INT64_MAX, b, e);
  if (offset == KLEVDB_OFFSET_OLDEST) {
    for (size_t si = 0; si < st->nsegs; si++) {
      seg *s = st->segs[si];
      if ((rc = load(st, s, e))) return rc;
      if (seg_n(s)) return get_item(st, s, 0, b, e);
    }
    return kerr(e, KLEVDB_EINVALID_OFFSET, "get oldest: invalid offset: the log is empty");
  }
  if (offset < st->segs[0]->base) {
    if (st->segs[0]->base == 0)
      return kerr(e, KLEVDB_EINVALID_OFFSET, "get %lld: invalid offset: get relative offset",
                  (long long)offset);
    return kerr(e, KLEVDB_ENOTFOUND, "get %lld: not found: offset before start", (long long)offset);
  }
  int64_t next = store_next(st);
  if (offset >= next)
    return kerr(e, KLEVDB_EINVALID_OFFSET, "get %lld: invalid offset: offset after end (next offset is %lld)",
                (long long)offset, (long long)next);
  size_t si = seg_find(st, offset);
  seg *s = st->segs[si];
  if ((rc = load(st, s, e))) return rc;
  long i = items_find(seg_items(s), seg_n(s), st->isz, offset);
  if (i >= 0) return get_item(st, s, (size_t)i, b, e);
  if ((rc = verify_around(st, s, offset, e))) return rc;
  if (i == IX_EMPTY && si + 1 == st->nsegs)
    return kerr(e, KLEVDB_EINVALID_OFFSET, "get %lld: invalid offset: no offset items", (long long)offset);
  if (i == IX_BEFORE_START)
    return kerr(e, KLEVDB_ENOTFOUND, "get %lld: not found: offset before start", (long long)offset);
  return kerr(e, KLEVDB_ENOTFOUND, "get %lld: not found: offset not found", (long long)offset);
}

static klevdb_err get_once(klevdb *db, int64_t offset, klevdb_batch *b) {
  BEGIN(db);
  batch_fail(b);
  store *st = db->st;
  klevdb_err rc = read_begin(db, b, false);
  if (rc) return rc;
  if (st->ro && (offset < 0 || offset >= __atomic_load_n(&st->next, __ATOMIC_SEQ_CST)) &&
      (rc = follow(st, true, &db->err)))
    return rc;
  pthread_rwlock_rdlock(&st->lk);
  rc = get_locked(st, offset, b, &db->err);
  pthread_rwlock_unlock(&st->lk);
  maybe_sweep(st);
  return rc;
}

klevdb_err klevdb_get(klevdb *db, int64_t offset, klevdb_batch *b) {
  RO_RETRY(db, get_once(db, offset, b));
}

static klevdb_err next_offset_once(klevdb *db, int64_t *out) {
  BEGIN(db);
  if (!out) return kerr(&db->err, KLEVDB_EINVAL, "next offset: no place for the result");
  store *st = db->st;
  if (st->ro) {
    klevdb_err rc = follow(st, true, &db->err);
    if (rc) return rc;
  }
  *out = __atomic_load_n(&st->next, __ATOMIC_SEQ_CST);
  return KLEVDB_OK;
}

klevdb_err klevdb_next_offset(klevdb *db, int64_t *out) {
  RO_RETRY(db, next_offset_once(db, out));
}

/* ---- blocking reads ---- */

klevdb_err klevdb_consume_blocking(klevdb *db, int64_t offset, size_t max_count,
                                   int64_t timeout_ms, klevdb_batch *b) {
  BEGIN(db);
  store *st = db->st;
  struct timespec deadline;
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  if (timeout_ms >= 0) {
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (timeout_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
      deadline.tv_sec++;
      deadline.tv_nsec -= 1000000000;
    }
  }
  for (;;) {
    uint64_t seq = __atomic_load_n(&st->pubseq, __ATOMIC_SEQ_CST);
    klevdb_err rc = klevdb_consume(db, offset, max_count, b);
    if (rc || b->len) return rc;
    if (__atomic_exchange_n(&db->interrupted, 0, __ATOMIC_SEQ_CST))
      return kerr(&db->err, KLEVDB_ECLOSED, "consume: interrupted");
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (timeout_ms >= 0 && (now.tv_sec > deadline.tv_sec ||
                            (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec)))
      return KLEVDB_OK;
    /* A read-only store learns of other processes' writes by looking, so
    ** it waits in short steps; a writer's store is woken by publish. */
    struct timespec until = deadline;
    if (st->ro || timeout_ms < 0) {
      until = now;
      until.tv_nsec += (st->ro ? 5 : 100) * 1000000L;
      if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
      }
      if (timeout_ms >= 0 && (until.tv_sec > deadline.tv_sec ||
                              (until.tv_sec == deadline.tv_sec && until.tv_nsec > deadline.tv_nsec)))
        until = deadline;
    }
    pthread_mutex_lock(&st->cvmu);
    __atomic_add_fetch(&st->waiters, 1, __ATOMIC_SEQ_CST);
    while (!st->closing && !__atomic_load_n(&db->interrupted, __ATOMIC_SEQ_CST) &&
           __atomic_load_n(&st->pubseq, __ATOMIC_SEQ_CST) == seq) {
      if (pthread_cond_timedwait(&st->cv, &st->cvmu, &until) == ETIMEDOUT) break;
    }
    __atomic_sub_fetch(&st->waiters, 1, __ATOMIC_SEQ_CST);
    bool closing = st->closing;
    pthread_mutex_unlock(&st->cvmu);
    if (closing) return kerr(&db->err, KLEVDB_ECLOSED, "consume: store closed");
  }
}

void klevdb_interrupt(klevdb *db) {
  if (!db || db->st->forked) return;
  store *st = db->st;
  __atomic_store_n(&db->interrupted, 1, __ATOMIC_SEQ_CST);
  pthread_mutex_lock(&st->cvmu);
  pthread_cond_broadcast(&st->cv);
  pthread_mutex_unlock(&st->cvmu);
}

/* ---- stat and bounds ---- */

static klevdb_err stat_once(klevdb *db, klevdb_stat *out) {
  BEGIN(db);
  store *st = db->st;
  if (!out) return kerr(&db->err, KLEVDB_EINVAL, "stat: no place for the result");
  klevdb_err rc = st->ro ? follow(st, true, &db->err) : KLEVDB_OK;
  if (rc) return rc;
  memset(out, 0, sizeof(*out));
  pthread_rwlock_rdlock(&st->lk);
  for (size_t si = 0; si < st->nsegs && !rc; si++) {
    seg *s = st->segs[si];
    int64_t msgs, bytes;
    if (si + 1 == st->nsegs) {
      rc = seg_stat(&st->cfg, s, &msgs, &bytes, &db->err);
      if (rc) break;
      if (st->ro && st->nsegs == 1 && s->log->len == 0) break;  /* no files */
    } else {
      /* Sealed: from what is known of it, so that a stat of many
      ** segments does not keep them all mapped. */
      if ((rc = summary(st, s, &db->err))) break;
      msgs = s->sum_n;
      bytes = s->sum_bytes;
    }
    out->segments++;
    out->messages += msgs;
    out->size += bytes;
  }
  pthread_rwlock_unlock(&st->lk);
  maybe_sweep(st);
  if (rc) kerr_wrap(&db->err, "stat");
  return rc;
}

klevdb_err klevdb_stat_get(klevdb *db, klevdb_stat *out) {
  RO_RETRY(db, stat_once(db, out));
}

/* As stat_once, one entry per segment: what retention and consumer lag
** need to reason in whole segments without reading them. */
static klevdb_err segments_once(klevdb *db, klevdb_segment_info **out, size_t *n) {
  BEGIN(db);
  store *st = db->st;
  if (!out || !n) return kerr(&db->err, KLEVDB_EINVAL, "segments: no place for the result");
  *out = NULL;
  *n = 0;
  klevdb_err rc = st->ro ? follow(st, true, &db->err) : KLEVDB_OK;
  if (rc) return rc;
  pthread_rwlock_rdlock(&st->lk);
  klevdb_segment_info *l = malloc((st->nsegs ? st->nsegs : 1) * sizeof(*l));
  if (!l) rc = kerr(&db->err, KLEVDB_ENOMEM, "segments: out of memory");
  size_t k = 0;
  for (size_t si = 0; si < st->nsegs && !rc; si++) {
    seg *s = st->segs[si];
    int64_t msgs, bytes;
    if (si + 1 == st->nsegs) {
      if ((rc = seg_stat(&st->cfg, s, &msgs, &bytes, &db->err))) break;
      if (st->ro && st->nsegs == 1 && s->log->len == 0) break;  /* no files */
    } else {
      if ((rc = summary(st, s, &db->err))) break;
      msgs = s->sum_n;
      bytes = s->sum_bytes;
    }
    l[k++] = (klevdb_segment_info){s->base, msgs, bytes};
  }
  pthread_rwlock_unlock(&st->lk);
  maybe_sweep(st);
  if (rc) {
    free(l);
    kerr_wrap(&db->err, "segments");
    return rc;
  }
  *out = l;
  *n = k;
  return KLEVDB_OK;
}

klevdb_err klevdb_segments_get(klevdb *db, klevdb_segment_info **out, size_t *n) {
  RO_RETRY(db, segments_once(db, out, n));
}

static klevdb_err bounds_once(klevdb *db, klevdb_bounds *out) {
  BEGIN(db);
  store *st = db->st;
  if (!out) return kerr(&db->err, KLEVDB_EINVAL, "bounds: no place for the result");
  klevdb_batch b = KLEVDB_BATCH_INIT;
  klevdb_err rc = read_begin(db, &b, true);
  if (rc) return rc;
  out->oldest_offset = out->newest_offset = -1;
  out->oldest_time = out->newest_time = -1;
  pthread_rwlock_rdlock(&st->lk);
  /* The next offset first: the bounds are those of the log at it. A
  ** publish makes its items visible before it moves the next offset, so
  ** the oldest and newest are looked for below it; publishes only add
  ** while lk is held for reading. */
  int64_t next = store_next(st);
  rc = get_locked(st, KLEVDB_OFFSET_OLDEST, &b, &db->err);
  if (!rc && b.msgs[0].offset >= next)
    rc = kerr(&db->err, KLEVDB_EINVALID_OFFSET, "bounds: the log is empty");
  if (!rc) {
    out->oldest_offset = b.msgs[0].offset;
    out->oldest_time = b.msgs[0].time;
    rc = newest_below(st, next, &b, &db->err);
    if (!rc) {
      out->newest_offset = b.msgs[0].offset;
      out->newest_time = b.msgs[0].time;
    }
  } else if (rc == KLEVDB_EINVALID_OFFSET) {
    rc = KLEVDB_OK;   /* empty */
    db->err.code = KLEVDB_OK;
  }
  out->next_offset = next;
  pthread_rwlock_unlock(&st->lk);
  klevdb_batch_free(&b);
  maybe_sweep(st);
  return rc;
}

klevdb_err klevdb_bounds_get(klevdb *db, klevdb_bounds *out) {
  RO_RETRY(db, bounds_once(db, out));
}
