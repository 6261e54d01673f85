/*
** delete.c - delete by offsets and by ranges: each segment touched is
** rewritten without the dropped messages (or removed) under a marker, and
** a delete of several segments is finished at open after a crash.
*/
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fault.h"
#include "store.h"

/* ---- delete ---- */

typedef struct {
  const int64_t *offs;   /* sorted, for Go's Delete */
  size_t n;
  const klevdb_range *ranges;  /* sorted by from, for delete_ranges */
  size_t nranges;
  bool marked;                 /* the ranges are on disk (.delete-ranges) */
} dropset;

static bool drop_offsets(void *ctx, int64_t off) {
  const dropset *d = ctx;
  size_t lo = 0, hi = d->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (d->offs[mid] < off) lo = mid + 1;
    else hi = mid;
  }
  return lo < d->n && d->offs[lo] == off;
}

/* How many ranges of d start at or below off: the last of them is the only
** one that can hold it. */
static size_t ranges_upto(const dropset *d, int64_t off) {
  size_t lo = 0, hi = d->nranges;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (d->ranges[mid].from <= off) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

static bool drop_ranges(void *ctx, int64_t off) {
  const dropset *d = ctx;
  size_t k = ranges_upto(d, off);
  return k > 0 && off < d->ranges[k - 1].to;
}

static void seg_free_v(void *s) { seg_free(s); }
/* fd + 1 as a pointer: reap passes over NULL. */
static void close_v(void *fd1) { close((int)(intptr_t)fd1 - 1); }

/* Does one range of the drop set hold every item of s (loaded)? */
static bool covered(drop_fn drop, void *ctx, const seg *s, size_t isz) {
  if (drop != drop_ranges || s->n == 0) return false;
  const dropset *d = ctx;
  int64_t lo = item_off(seg_items(s)), hi = item_off(seg_items(s) + (s->n - 1) * isz);
  size_t k = ranges_upto(d, lo);
  return k > 0 && hi < d->ranges[k - 1].to;
}

/* Does one range of the drop set hold every offset of [base, upper)? */
static bool span_covered(drop_fn drop, void *ctx, int64_t base, int64_t upper) {
  if (drop != drop_ranges) return false;
  const dropset *d = ctx;
  size_t k = ranges_upto(d, base);
  return k > 0 && upper <= d->ranges[k - 1].to;
}

/* Drops sealed segment si whole without mapping it (a trim's): seg_whole
** gives its count and size, and keeps its files open for the reaper. It
** leaves the list before its files lose their names: it is not loaded, and
** a reader that loaded it now would find its index gone and write it
** again. A delete of several segments has its ranges on disk already, and
** open finishes it from them (a log left without its index is indexed
** again, then dropped): such a segment needs no marker of its own. Caller
** holds wmu. A delete of several segments (st->deleting keeps other
** writers out) lets publishes have wmu while it reads and unlinks the
** files: a sealed segment's files do not change, and a publish only adds
** segments after it, so the list changes under wmu alone. */
static bool drop_whole(store *st, size_t si, const dropset *d, klevdb_deleted *out,
                       klevdb_err *rc, klevdb_error *e) {
  seg *s = st->segs[si];
  size_t n;
  int64_t size;
  int fds[2];
  bool let_by = st->deleting;
  int64_t upper = seg_upper(st, s);
  if (let_by) pthread_mutex_unlock(&st->wmu);
  bool whole = seg_whole(&st->cfg, s, upper, &n, &size, fds);
  if (let_by) pthread_mutex_lock(&st->wmu);
  if (!whole) return false;
  if (st->segs[si] != s) si = seg_find(st, s->base);   /* not expected: publishes append */
  char old_log[PATH_CAP], old_idx[PATH_CAP];
  seg_path(old_log, sizeof(old_log), st->dir, s->base, ".log");
  seg_path(old_idx, sizeof(old_idx), st->dir, s->base, ".index");
  /* Under the marker that open finishes after a crash (delete_recover). */
  if (!d->marked && (*rc = delete_mark(st->dir, s->base, -1, "-", "-", st->opts.auto_sync, e))) {
    close(fds[0]);
    close(fds[1]);
    return true;
  }
  FAULT_POINT();
  uint64_t *kt_slots = NULL;
  pthread_rwlock_wrlock(&st->lk);
  memmove(&st->segs[si], &st->segs[si + 1], (st->nsegs - si - 1) * sizeof(seg *));
  st->nsegs--;
  segs_changed(st);   /* shrinks: cannot fail */
  /* Its keys are not looked at: the key table is built again if used. */
  if (st->kt_state == 1) {
    kt_slots = st->kt.slots;
    st->kt = (ktab){0};
    st->kt_state = 0;
  }
  tsmin_stale(st);
  pthread_rwlock_unlock(&st->lk);
  if (let_by) pthread_mutex_unlock(&st->wmu);
  unlink(old_idx);
  FAULT_POINT();
  unlink(old_log);
  if (!d->marked) delete_unmark(st->dir, st->opts.auto_sync);
  if (st->opts.auto_sync) dir_sync(st->dir, NULL);
  if (let_by) pthread_mutex_lock(&st->wmu);
  /* As a mapping would, the open files outlive their names until the
  ** reaper's thread closes them: that is when the kernel frees them. */
  reap(&st->rp, seg_free_v, s);
  reap(&st->rp, close_v, (void *)(intptr_t)(fds[0] + 1));
  reap(&st->rp, close_v, (void *)(intptr_t)(fds[1] + 1));
  reap(&st->rp, free, kt_slots);
  out->count += (int64_t)n;
  out->size += size;
  return true;
}

/* Replaces segment si by what survives the drop set (Go's Delete). Caller
** holds wmu. Adds to *out and, if offs is set, appends dropped offsets. */
static klevdb_err delete_in(store *st, size_t si, drop_fn drop, void *ctx, klevdb_deleted *out,
                            kbuf *offs, klevdb_error *e) {
  seg *s = st->segs[si];
  bool is_head = si + 1 == st->nsegs && !st->ro;
  klevdb_err rc = KLEVDB_OK;
  /* Mapping and checking each item of a segment that goes whole was most
  ** of a trim's time. */
  if (!is_head && !offs && span_covered(drop, ctx, s->base, seg_upper(st, s)) &&
      drop_whole(st, si, ctx, out, &rc, e))
    return rc;
  if ((rc = load(st, s, e))) return rc;
  /* A kill between the renames below can leave the old head as a sealed
  ** segment: without the room allocated ahead, its log reads as it is. */
  if (is_head) head_trim(st, s);
  const uint8_t *items = seg_items(s);
  size_t dropped = 0;
  int64_t size = 0, max_dropped = -1;
  /* The key table goes (and is rebuilt on the next key query) only when a
  ** key's newest message is among the dropped: compactions keep it. */
  bool kt_stale = false;
  pthread_rwlock_rdlock(&st->lk);
  /* Checking each dropped item costs a probe; past a few thousand a
  ** rebuild on the next key query is cheaper. */
  if (st->kt_state == 1 && s->n > 4096) kt_stale = true;
  bool whole = !offs && (kt_stale || st->kt_state != 1) && covered(drop, ctx, s, st->isz);
  if (whole) {
    /* A trim's segment: every item goes, without a look at each. The
    ** records' sizes add up to the span of their positions. */
    const uint8_t *first_it = items, *last_it = items + (s->n - 1) * st->isz;
    dropped = s->n;
    size = item_pos(last_it) - item_pos(first_it) + seg_rec_len(&st->cfg, s, s->n - 1) +
           (int64_t)(s->n * st->isz);
    max_dropped = item_off(last_it);
  }
  for (size_t i = 0; i < s->n && !whole; i++) {
    const uint8_t *it = items + i * st->isz;
    int64_t off = item_off(it);
    if (!drop(ctx, off)) continue;
    if (st->kt_state == 1 && !kt_stale && kt_get(&st->kt, item_hash(it, st->params), kt_same, st) == off)
      kt_stale = true;
    dropped++;
    size += seg_rec_len(&st->cfg, s, i) + (int64_t)st->isz;
    max_dropped = off;
    if (offs) {
      if ((rc = kbuf_reserve(offs, sizeof(int64_t), e))) break;
      memcpy(offs->p + offs->len, &off, sizeof(off));
      offs->len += sizeof(off);
    }
  }
  pthread_rwlock_unlock(&st->lk);
  if (rc || dropped == 0) return rc;
  bool newest_gone = s->n && max_dropped == item_off(items + (s->n - 1) * st->isz);

  char tmp_log[PATH_CAP], tmp_idx[PATH_CAP];
  size_t kept;
  int64_t first;
  /* Whole segments go without being read: only their items were looked at. */
  if (dropped < s->n) {
    rc = seg_rewrite(&st->cfg, s, seg_upper(st, s), drop, ctx, tmp_log, tmp_idx, PATH_CAP, &kept, &first, e);
    if (rc) return rc;
  } else {
    kept = 0;
    first = -1;
  }

  char old_log[PATH_CAP], old_idx[PATH_CAP], new_log[PATH_CAP], new_idx[PATH_CAP];
  seg_path(old_log, sizeof(old_log), st->dir, s->base, ".log");
  seg_path(old_idx, sizeof(old_idx), st->dir, s->base, ".index");
  seg *repl = NULL, *fresh = NULL;
  bool new_head = is_head && (newest_gone || !kept);
  /* The empty head that keeps the next offset exists before anything of
  ** the old one goes, so a crash never takes the next offset back. */
  if (new_head && (rc = seg_create_empty(st, st->next, e))) {
    if (kept) {
      unlink(tmp_idx);
      unlink(tmp_log);
    }
    return rc;
  }
  /* Renames and removals happen under a marker that open finishes or
  ** undoes after a crash (delete_recover), so segments never overlap. */
  if ((rc = delete_mark(st->dir, s->base, kept ? first : -1, kept ? tmp_log : "-",
                        kept ? tmp_idx : "-", st->opts.auto_sync, e))) {
    if (kept) {
      unlink(tmp_idx);
      unlink(tmp_log);
    }
    return rc;
  }
  FAULT_POINT();
  if (kept) {
    seg_path(new_log, sizeof(new_log), st->dir, first, ".log");
    seg_path(new_idx, sizeof(new_idx), st->dir, first, ".index");
    /* A reader opens a log, then its index, then checks that the log's
    ** name still holds the file it opened. In place, the old index goes
    ** first and the new one comes last, so a reader never pairs a log with
    ** the other one's index; at a new base, the index is there first. */
    bool in_place = first == s->base;
    if (in_place) unlink(old_idx);
    if (rename(in_place ? tmp_log : tmp_idx, in_place ? new_log : new_idx) < 0 ||
        rename(in_place ? tmp_idx : tmp_log, in_place ? new_idx : new_log) < 0) {
      rc = kerr_sys(e, errno, "delete: rename rewrite of segment %lld", (long long)s->base);
      delete_recover(st->dir, NULL);   /* back to the old segment */
      return rc;
    }
    repl = seg_new(first);
    if (!repl) {
      delete_recover(st->dir, NULL);
      return kerr_sys(e, ENOMEM, "delete");
    }
  }
  int64_t carry_ts = st->hd.last_ts;
  FAULT_POINT();
  if (is_head) head_close(st, s, st->opts.auto_sync);
  if (!kept || first != s->base) {
    unlink(old_idx);
    unlink(old_log);
  }
  delete_unmark(st->dir, st->opts.auto_sync);
  if (st->opts.auto_sync) dir_sync(st->dir, NULL);

  /* A head that lost its newest message is followed by a new empty head
  ** at the next offset, so the next offset never goes back (docs/files.md). */
  if (new_head) {
    fresh = seg_new(st->next);
    if (!fresh) rc = kerr_sys(e, ENOMEM, "delete");
    else {
      st->hd.last_ts = carry_ts;
      rc = head_open(st, fresh, true, e);
    }
  } else if (is_head) {
    rc = head_open(st, repl, false, e);
  }
  pthread_rwlock_wrlock(&st->lk);
  if (rc) {
    /* The files are right; the store cannot go on writing. Keep a list
    ** that readers can use until close. */
    seg_free(fresh);
    fresh = NULL;
  }
  if (repl) {
    st->segs[si] = repl;
  } else {
    memmove(&st->segs[si], &st->segs[si + 1], (st->nsegs - si - 1) * sizeof(seg *));
    st->nsegs--;
  }
  segs_changed(st);   /* shrinks or keeps the size: cannot fail */
  if (fresh) {
    if (segs_push(st, fresh, e)) seg_free(fresh);
  }
  if (st->nsegs == 0) {
    /* Cannot happen for a read-write store (the head is replaced). */
    seg *z = seg_new(st->next);
    if (z) segs_push(st, z, NULL);
  }
  uint64_t *kt_slots = NULL;
  if (kt_stale) {
    kt_slots = st->kt.slots;
    st->kt = (ktab){0};
    st->kt_state = 0;
  }
  tsmin_stale(st);
  pthread_rwlock_unlock(&st->lk);
  /* The old files lost their names above while the mappings of s still
  ** held them: the kernel frees them when those go, ~1 ms per MiB, which
  ** the reaper's thread waits out instead of the writer. A reader that
  ** pins a mapping of s keeps it until it lets go. */
  reap(&st->rp, seg_free_v, s);
  reap(&st->rp, free, kt_slots);
  out->count += (int64_t)dropped;
  out->size += size;
  return rc;
}

/* Gives back the space the writer holds ahead, for a delete on a full
** disk: the segments earlier deletes dropped (the reaper may not have
** freed them yet), the head's room allocated ahead (only close gave it
** back, so a trim failed until a reopen) and the spare files of the next head (a
** marker needs a little space before a delete frees any). Not on every
** delete: cutting the head's file under a reader that scans its tail is
** what close and sync do, rarely. */
static void room_back(store *st) {
  reaper_flush(&st->rp);
  head_trim(st, head(st));
  spare_drop(&st->hd.spare);
}

/* delete_in, once more after room_back on an I/O error that changed
** nothing (no segment was replaced). */
static klevdb_err delete_seg(store *st, size_t si, drop_fn drop, void *ctx, klevdb_deleted *out,
                             kbuf *offs, klevdb_error *e) {
  int64_t count = out->count;
  size_t have = offs ? offs->len : 0;
  klevdb_err rc = delete_in(st, si, drop, ctx, out, offs, e);
  if (rc == KLEVDB_EIO && out->count == count) {
    if (offs) offs->len = have;
    room_back(st);
    rc = delete_in(st, si, drop, ctx, out, offs, e);
  }
  return rc;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

klevdb_err klevdb_delete(klevdb *db, const int64_t *offsets, size_t n, klevdb_deleted *out,
                         int64_t **deleted_offsets) {
  BEGIN(db);
  store *st = db->st;
  klevdb_error *e = &db->err;
  klevdb_deleted res = {0, 0};
  if (deleted_offsets) *deleted_offsets = NULL;
  if (out) *out = res;
  if (db->ro || st->ro) return kerr(e, KLEVDB_EREADONLY, "delete: store opened read-only");
  if (n == 0) return KLEVDB_OK;
  if (!offsets) return kerr(e, KLEVDB_EINVAL, "delete: no offsets given");
  int64_t *sorted = malloc(n * sizeof(int64_t));
  if (!sorted) return kerr_sys(e, ENOMEM, "delete");
  memcpy(sorted, offsets, n * sizeof(int64_t));
  qsort(sorted, n, sizeof(int64_t), cmp_i64);
  klevdb_err rc = KLEVDB_OK;
  if (sorted[0] < 0) {
    long long bad = sorted[0];
    free(sorted);
    return kerr(e, KLEVDB_EINVALID_OFFSET, "delete %lld: invalid offset: delete relative offsets", bad);
  }
  kbuf offs = {0};
  pthread_mutex_lock(&st->wmu);
  writer_wait(st, db);
  if (head(st)->fd < 0) {
    rc = kerr(e, KLEVDB_ECLOSED, "delete: store is closed");
  } else if (sorted[0] < st->segs[0]->base) {
    rc = kerr(e, KLEVDB_ENOTFOUND, "delete %lld: not found: offset before start", (long long)sorted[0]);
  } else {
    dropset d = {sorted, n, NULL, 0, false};
    rc = delete_seg(st, seg_find(st, sorted[0]), drop_offsets, &d, &res,
                    deleted_offsets ? &offs : NULL, e);
    peers_stale(st);
  }
  pthread_mutex_unlock(&st->wmu);
  free(sorted);
  if (out) *out = res;
  if (deleted_offsets && !rc) *deleted_offsets = (int64_t *)(void *)offs.p;
  else kbuf_free(&offs);
  return rc;
}

static int cmp_range(const void *a, const void *b) {
  const klevdb_range *x = a, *y = b;
  return (x->from > y->from) - (x->from < y->from);
}

/* Does a range of r (sorted, merged: their ends climb too) meet segment si? */
static bool seg_touched(const store *st, size_t si, const klevdb_range *r, size_t k) {
  int64_t base = st->segs[si]->base;
  int64_t end = si + 1 == st->nsegs ? INT64_MAX : st->segs[si + 1]->base;
  size_t lo = 0, hi = k;
  while (lo < hi) {   /* first range that ends after base */
    size_t mid = lo + (hi - lo) / 2;
    if (r[mid].to <= base) lo = mid + 1;
    else hi = mid;
  }
  return lo < k && r[lo].from < end;
}

/* Between two segments of a delete of several (st->deleting set): the
** publishes waiting for wmu take it now, while st->deleting keeps every
** other writer out, so that a trim of many segments stalls a publish for
** one segment's work instead of for all of it. Caller holds wmu. */
static void let_publishes_by(store *st) {
  if (!st->deleting || !__atomic_load_n(&st->wmu_want, __ATOMIC_SEQ_CST)) return;
  pthread_mutex_unlock(&st->wmu);
  /* The mutex is not fair: this thread would take it back at once. */
  for (int i = 0; i < 100 && __atomic_load_n(&st->wmu_want, __ATOMIC_SEQ_CST); i++) sched_yield();
  pthread_mutex_lock(&st->wmu);
}

/* Deletes the ranges r[0..k) (sorted, merged, below the next offset),
** segment by segment, oldest first; caller holds wmu. A delete of more
** than one segment is all or nothing across a crash: its ranges are on
** disk before the first segment changes, and open finishes it. */
static klevdb_err delete_ranges_locked(store *st, const klevdb_range *r, size_t k,
                                       klevdb_deleted *res, klevdb_error *e) {
  if (!k) return KLEVDB_OK;
  dropset d = {NULL, 0, r, k, false};
  size_t touched = 0;
  for (size_t si = seg_find(st, r[0].from); si < st->nsegs && touched < 2; si++) {
    if (st->segs[si]->base >= r[k - 1].to) break;
    if (seg_touched(st, si, r, k)) touched++;
  }
  bool marked = touched > 1;
  d.marked = marked;
  klevdb_err rc = KLEVDB_OK;
  if (marked) {
    rc = ranges_mark(st->dir, r, k, st->opts.auto_sync, e);
    if (rc == KLEVDB_EIO) {
      room_back(st);
      rc = ranges_mark(st->dir, r, k, st->opts.auto_sync, e);
    }
  }
  FAULT_POINT();
  int64_t before = res->count;
  /* Each step may remove or rename segment si, so the next one is found
  ** again by base. */
  int64_t from = r[0].from;
  while (!rc) {
    size_t si = seg_find(st, from);
    bool last = si + 1 == st->nsegs;
    int64_t seg_end = last ? INT64_MAX : st->segs[si + 1]->base;
    if (seg_touched(st, si, r, k)) rc = delete_seg(st, si, drop_ranges, &d, res, NULL, e);
    sweep_wmu(st);
    if (rc || last || seg_end >= r[k - 1].to) break;
    from = seg_end;
    let_publishes_by(st);
  }
  /* A delete that failed before any segment changed never began; one that
  ** failed later is finished by the next open. */
  if (marked && (!rc || res->count == before)) ranges_unmark(st->dir, st->opts.auto_sync);
  return rc;
}

/* Finishes a delete of several segments that a crash (at open) or an
** error after it began (at the next delete) interrupted. */
klevdb_err delete_finish(store *st, klevdb_error *e) {
  klevdb_range *r;
  size_t n;
  klevdb_err rc = ranges_pending(st->dir, &r, &n, e);
  if (rc == KLEVDB_ENOTFOUND) return KLEVDB_OK;
  if (rc) return rc;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    klevdb_range x = r[i];
    if (x.to > st->next) x.to = st->next;
    if (x.from < 0 || x.to <= x.from || (k && x.from < r[k - 1].to)) continue;
    r[k++] = x;
  }
  klevdb_deleted res = {0, 0};
  rc = delete_ranges_locked(st, r, k, &res, e);
  free(r);
  if (rc) {
    kerr_wrap(e, "finish an interrupted delete");
    return rc;
  }
  ranges_unmark(st->dir, true);
  return KLEVDB_OK;
}

klevdb_err klevdb_delete_ranges(klevdb *db, const klevdb_range *ranges, size_t n,
                                klevdb_deleted *out) {
  BEGIN(db);
  store *st = db->st;
  klevdb_error *e = &db->err;
  klevdb_deleted res = {0, 0};
  if (out) *out = res;
  if (db->ro || st->ro) return kerr(e, KLEVDB_EREADONLY, "delete: store opened read-only");
  if (n == 0) return KLEVDB_OK;
  if (!ranges) return kerr(e, KLEVDB_EINVAL, "delete: no ranges given");
  klevdb_range *r = malloc(n * sizeof(*r));
  if (!r) return kerr_sys(e, ENOMEM, "delete");
  klevdb_err rc = KLEVDB_OK;
  pthread_mutex_lock(&st->wmu);
  writer_wait(st, db);
  /* Offsets from the next one on do not exist: a range is cut there, so
  ** that finishing it at open never touches later messages. */
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    klevdb_range x = ranges[i];
    if (x.from < 0) x.from = 0;
    if (x.to > st->next) x.to = st->next;
    if (x.to > x.from) r[m++] = x;
  }
  qsort(r, m, sizeof(*r), cmp_range);
  size_t k = 0;   /* merge overlapping ranges */
  for (size_t i = 0; i < m; i++) {
    if (k && r[i].from <= r[k - 1].to) {
      if (r[i].to > r[k - 1].to) r[k - 1].to = r[i].to;
    } else {
      r[k++] = r[i];
    }
  }
  st->deleting = true;
  if (head(st)->fd < 0) rc = kerr(e, KLEVDB_ECLOSED, "delete: store is closed");
  else if (!(rc = delete_finish(st, e))) rc = delete_ranges_locked(st, r, k, &res, e);
  peers_stale(st);
  st->deleting = false;
  pthread_cond_broadcast(&st->txn_cv);
  pthread_mutex_unlock(&st->wmu);
  free(r);
  if (out) *out = res;
  return rc;
}
