/*
** store.c - an open store: its segment list (lookup, lazy loads, the sweep
** that bounds how many segments stay mapped), open and close, the handle's
** error and options, gc and backup.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

/* Sealed segments kept mapped (two mappings each: Linux allows 65,530 a
** process): past this, the least recently used are unmapped, looked for
** once every SWEEP_EVERY mappings (store.h). */
#define MAP_MAX 1024

/* ---- segment list ---- */

/* After any change of the segment list (under lk for writing): the bases
** array (as long as st->segs' capacity) follows it. Returns false when out
** of memory. */
bool segs_changed(store *st) {
  tsmin_stale(st);
  int64_t *b = realloc(st->bases, (st->capsegs ? st->capsegs : 1) * sizeof(int64_t));
  if (!b) return false;
  st->bases = b;
  for (size_t i = 0; i < st->nsegs; i++) b[i] = st->segs[i]->base;
  return true;
}

/* Appends a segment; O(1), so that opening a store of many segments is
** linear in them. */
klevdb_err segs_push(store *st, seg *s, klevdb_error *e) {
  if (st->nsegs == st->capsegs) {
    size_t cap = st->capsegs ? st->capsegs * 2 : 16;
    seg **n = realloc(st->segs, cap * sizeof(seg *));
    if (!n) return kerr_sys(e, ENOMEM, "open");
    st->segs = n;
    int64_t *b = realloc(st->bases, cap * sizeof(int64_t));
    if (!b) return kerr_sys(e, ENOMEM, "open");
    st->bases = b;
    st->capsegs = cap;
  }
  st->segs[st->nsegs] = s;
  st->bases[st->nsegs] = s->base;
  st->nsegs++;
  tsmin_stale(st);
  return KLEVDB_OK;
}

/* The base of the segment after s in the store's list: s holds offsets
** below it. INT64_MAX for the last one (or one not in the list yet: a new
** head). Caller holds lk or wmu (the list does not change). */
int64_t seg_upper(const store *st, const seg *s) {
  size_t lo = 0, hi = st->nsegs;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (st->bases[mid] < s->base) lo = mid + 1;
    else hi = mid;
  }
  return lo + 1 < st->nsegs && st->bases[lo] == s->base ? st->bases[lo + 1] : INT64_MAX;
}

/* Unmaps the least recently used sealed segments while more than MAP_MAX
** are mapped (down to 3/4 of it, so that sweeps stay rare). Caller holds
** lk for writing: no reader is inside a segment. They map again on use;
** readers keep what they hold through their batches' pins. */
static int cmp_atime(const void *a, const void *b) {
  int64_t x = (*(seg *const *)a)->atime, y = (*(seg *const *)b)->atime;
  return (x > y) - (x < y);
}
static void sweep(store *st) {
  __atomic_store_n(&st->swept, __atomic_load_n(&st->loads, __ATOMIC_RELAXED), __ATOMIC_RELAXED);
  size_t n = 0;
  for (size_t i = 0; i < st->nsegs; i++) {
    seg *s = st->segs[i];
    if (s->loaded && !s->live) n++;
  }
  if (n <= MAP_MAX) return;
  seg **v = malloc(n * sizeof(seg *));
  if (!v) return;   /* next time */
  n = 0;
  for (size_t i = 0; i < st->nsegs; i++) {
    seg *s = st->segs[i];
    if (s->loaded && !s->live) v[n++] = s;
  }
  qsort(v, n, sizeof(seg *), cmp_atime);
  for (size_t i = 0; i < n - MAP_MAX * 3 / 4; i++) seg_unload(v[i]);
  free(v);
}

/* The sweep of a caller that holds wmu already (a delete through many
** segments maps each one). */
void sweep_wmu(store *st) {
  if (!sweep_due(st)) return;
  pthread_rwlock_wrlock(&st->lk);
  sweep(st);
  pthread_rwlock_unlock(&st->lk);
}

/* Segment s for a walk over many segments: s itself when it is mapped (it
** stays so while lk is held) or the last one (the head, or the tail another
** process writes: mapped, and live, which a copy would not be; its live
** flag itself changes under wmu alone), else a private copy mapped for the
** caller alone, so that a walk maps one segment at a time instead of
** keeping all it passed (a store may have more than the process can map).
** unpeek() frees the copy; batches pin what they return from it. */
klevdb_err peek(store *st, seg *s, seg **view, klevdb_error *e) {
  *view = s;
  if (s == head(st) || __atomic_load_n(&s->loaded, __ATOMIC_ACQUIRE)) return load(st, s, e);
  seg *t = seg_new(s->base);
  if (!t) return kerr_sys(e, ENOMEM, "read segment %lld", (long long)s->base);
  klevdb_err rc = seg_load_in(st, t, e);
  if (rc) {
    seg_free(t);
    return rc;
  }
  if (!__atomic_load_n(&s->summed, __ATOMIC_ACQUIRE)) {
    pthread_mutex_lock(&s->load_mu);
    if (!s->summed) {
      s->sum_n = t->sum_n;
      s->sum_bytes = t->sum_bytes;
      s->sum_ts_lo = t->sum_ts_lo;
      s->sum_ts_hi = t->sum_ts_hi;
      __atomic_store_n(&s->summed, true, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&s->load_mu);
  }
  *view = t;
  return KLEVDB_OK;
}
void unpeek(seg *s, seg *view) {
  if (view != s) seg_free(view);
}

/* The summary of sealed segment s (see seg), mapping it for a moment if
** nothing is known of it yet. */
klevdb_err summary(store *st, seg *s, klevdb_error *e) {
  if (__atomic_load_n(&s->summed, __ATOMIC_ACQUIRE)) return KLEVDB_OK;
  seg *v;
  klevdb_err rc = peek(st, s, &v, e);
  if (!rc) unpeek(s, v);
  return rc;
}

/* kt_match_fn: does the item at offset carry this key hash? */
bool kt_same(void *ctx, int64_t offset, uint64_t hash) {
  store *st = ctx;
  seg *s = st->segs[seg_find(st, offset)];
  if (load(st, s, NULL)) return false;
  long i = items_find(seg_items(s), seg_n(s), st->isz, offset);
  return i >= 0 && item_hash(seg_items(s) + (size_t)i * st->isz, st->params) == hash;
}

/* ---- open and close ---- */

static klevdb_err lock_dir(store *st, klevdb_error *e) {
  char path[PATH_CAP];
  snprintf(path, sizeof(path), "%s/.lock", st->dir);
  st->lockfd = open(path, O_CREAT | O_RDONLY | O_CLOEXEC, 0600);
  if (st->lockfd < 0) return kerr_sys(e, errno, "open lock %s", path);
  if (flock(st->lockfd, LOCK_EX | LOCK_NB) < 0) {
    int err = errno;
    close(st->lockfd);
    st->lockfd = -1;
    if (err == EWOULDBLOCK)
      return kerr(e, KLEVDB_ELOCKED, "open %s: locked by another process (writer)", st->dir);
    return kerr_sys(e, err, "lock %s", path);
  }
  return KLEVDB_OK;
}

static void store_free(store *st) {
  reaper_destroy(&st->rp);
  for (size_t i = 0; i < st->nsegs; i++) seg_free(st->segs[i]);
  free(st->segs);
  free(st->bases);
  if (st->lockfd >= 0) close(st->lockfd);  /* releases the flock */
  kt_free(&st->kt);
  kbuf_free(&st->hd.wbuf);
  pthread_mutex_destroy(&st->wmu);
  pthread_rwlock_destroy(&st->lk);
  pthread_mutex_destroy(&st->cvmu);
  pthread_cond_destroy(&st->cv);
  pthread_cond_destroy(&st->txn_cv);
  pthread_mutex_destroy(&st->tsmu);
  free(st->tsmin);
  free(st->tsmax);
  spare_destroy(&st->hd.spare);
  free(st->dir);
  free(st);
}

klevdb_err store_open(const char *dir, const klevdb_options *o, store **out,
                             bool *raced, klevdb_error *e) {
  store *st = calloc(1, sizeof(*st));
  if (!st) return kerr_sys(e, ENOMEM, "open");
  st->dir = strdup(dir);
  st->lockfd = -1;
  pthread_mutex_init(&st->wmu, NULL);
  /* Writers first: readers polling in a loop must not starve publish,
  ** which takes lk for writing only briefly. */
  pthread_rwlockattr_t ra;
  pthread_rwlockattr_init(&ra);
  pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init(&st->lk, &ra);
  pthread_rwlockattr_destroy(&ra);
  pthread_mutex_init(&st->cvmu, NULL);
  pthread_cond_init(&st->txn_cv, NULL);
  pthread_mutex_init(&st->tsmu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&st->cv, &ca);
  pthread_condattr_destroy(&ca);
  st->opts = *o;
  st->ro = o->readonly;
  if (st->opts.rollover <= 0) st->opts.rollover = 1 << 20;
  if (st->opts.new_segments_version == KLEVDB_VERSION_DEFAULT)
    st->opts.new_segments_version = KLEVDB_V2;
  st->newver = st->opts.new_segments_version == KLEVDB_V1 ? FMT_V1 : FMT_V2;
  st->params = (o->time_index ? IDX_TIMES : 0) | (o->key_index ? IDX_KEYS : 0);
  st->isz = item_size(st->params);
  st->cfg = (segcfg){.dir = st->dir, .params = st->params, .isz = st->isz,
                     .newver = st->newver, .rollover = st->opts.rollover, .ro = st->ro,
                     .keep_rewrite_version = st->opts.keep_rewrite_version,
                     .loads = &st->loads, .moves = &st->moves};
  spare_init(&st->hd.spare, &st->cfg);
  reaper_init(&st->rp);
  klevdb_err rc = KLEVDB_OK;
  int64_t *bases = NULL;
  size_t n = 0;
  if (!st->dir) {
    rc = kerr_sys(e, ENOMEM, "open");
    goto fail;
  }

  struct stat sb;
  if (stat(dir, &sb) < 0) {
    rc = errno == ENOENT ? kerr(e, KLEVDB_EIO, "open %s: no such directory (create_dirs is off)", dir)
                         : kerr_sys(e, errno, "open %s", dir);
    goto fail;
  }
  if (!S_ISDIR(sb.st_mode)) {
    rc = kerr(e, KLEVDB_EIO, "open %s: not a directory", dir);
    goto fail;
  }
  st->dev = sb.st_dev;
  st->ino = sb.st_ino;
  if (!st->ro && (rc = lock_dir(st, e))) goto fail;
  if (!st->ro) {
    spare_clean(&st->hd.spare);
    if ((rc = batch_recover(dir, e)) || (rc = delete_recover(dir, e))) goto fail;
    st->doubt = prepared_present(dir);
    prepared_clean(dir);
  }
  if ((rc = dir_segments(dir, st->ro ? 0 : DIRSEG_CLEAN_TEMPS, &bases, &n, e))) goto fail;

  if (n && !st->ro) {
    int64_t last = bases[n - 1];
    if (o->recover) rc = seg_recover(dir, last, st->params, o->auto_sync, e);
    else if (o->check) rc = seg_check(dir, last, st->params, false, e);
    if (rc) {
      kerr_wrap(e, o->recover ? "open recover" : "open check");
      goto fail;
    }
    for (size_t i = 0; o->eager_migrate && i < n; i++)
      if ((rc = seg_migrate(dir, bases[i], st->params, st->newver, o->auto_sync, e))) goto fail;
  } else if (n && (o->check || o->recover)) {
    if ((rc = seg_check(dir, bases[n - 1], st->params, false, e))) {
      kerr_wrap(e, "open check");
      goto fail;
    }
  }
  if (n == 0) {
    /* A new store (read-write) or the virtual empty one (read-only). */
    seg *s = seg_new(0);
    if (!s || (rc = segs_push(st, s, e))) {
      seg_free(s);
      rc = rc ? rc : kerr_sys(e, ENOMEM, "open");
      goto fail;
    }
  }
  for (size_t i = 0; i < n; i++) {
    seg *s = seg_new(bases[i]);
    if (!s || (rc = segs_push(st, s, e))) {
      seg_free(s);
      rc = rc ? rc : kerr_sys(e, ENOMEM, "open");
      goto fail;
    }
  }
  free(bases);
  bases = NULL;
  seg *h = head(st);
  if (st->ro) {
    h->live = true;
    st->dir_mtime = sb.st_mtim;
    if ((rc = seg_load_in(st, h, e))) goto fail;
    st->refreshed = coarse_us();
  } else if ((rc = head_open(st, h, n == 0, e))) {
    goto fail;
  }
  st->next = seg_next(h, st->isz);
  if (!st->ro && (rc = delete_finish(st, e))) {
    spare_stop(&st->hd.spare);
    goto fail;
  }
  *out = st;
  return KLEVDB_OK;

fail:
  *raced = __atomic_load_n(&st->moves, __ATOMIC_SEQ_CST) != 0;
  free(bases);
  store_free(st);
  return rc;
}

void store_close(store *st) {
  pthread_mutex_lock(&st->cvmu);
  st->closing = true;
  pthread_cond_broadcast(&st->cv);
  pthread_mutex_unlock(&st->cvmu);
  pthread_mutex_lock(&st->wmu);
  if (!st->ro) {
    seg *h = head(st);
    head_trim(st, h);
    if (h->live && h->fd >= 0) head_seal(st, h, true, NULL);
    head_close(st, h, true);
    spare_stop(&st->hd.spare);
  }
  pthread_mutex_unlock(&st->wmu);
  /* Blocked readers hold no lock for long; wait until they have left. */
  pthread_mutex_lock(&st->cvmu);
  while (__atomic_load_n(&st->waiters, __ATOMIC_SEQ_CST) > 0) {
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->cvmu);
    sched_yield();
    pthread_mutex_lock(&st->cvmu);
  }
  pthread_mutex_unlock(&st->cvmu);
  store_free(st);
}

/* ---- the handle's error and options ---- */

klevdb_err kdb_fail(klevdb *db, klevdb_err code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char msg[sizeof(db->err.msg)];
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  return kerr(&db->err, code, "%s", msg);
}

const char *klevdb_errmsg(const klevdb *db) {
  if (!db) return "klevdb: no handle";
  return db->err.code ? db->err.msg : "not an error";
}

klevdb_err klevdb_errcode(const klevdb *db) { return db ? db->err.code : KLEVDB_EINVAL; }

void klevdb_get_options(const klevdb *db, klevdb_options *out) {
  *out = db->st->opts;
  out->readonly = db->ro;
}

/* ---- gc and backup ---- */

klevdb_err klevdb_gc(klevdb *db, int64_t unused_for_us) {
  BEGIN(db);
  store *st = db->st;
  int64_t t = coarse_us();
  /* The writer lock too: a delete reads the segment it rewrites without
  ** holding lk. */
  pthread_mutex_lock(&st->wmu);
  pthread_rwlock_wrlock(&st->lk);
  for (size_t si = 0; si + 1 < st->nsegs; si++) {
    seg *s = st->segs[si];
    if (s->live || !s->loaded) continue;
    if (t - __atomic_load_n(&s->atime, __ATOMIC_RELAXED) >= unused_for_us) seg_unload(s);
  }
  pthread_rwlock_unlock(&st->lk);
  pthread_mutex_unlock(&st->wmu);
  return KLEVDB_OK;
}

klevdb_err klevdb_backup(klevdb *db, const char *dir) {
  BEGIN(db);
  store *st = db->st;
  klevdb_error *e = &db->err;
  if (!dir || !*dir) return kerr(e, KLEVDB_EINVAL, "backup: no directory given");
  int lockfd;
  klevdb_err rc = backup_dest_lock(st->dir, dir, &lockfd, e);
  if (rc) return rc;
  int64_t last = -1;   /* base of the last log copied */
  /* Holding the writer lock makes the copy of the head consistent: its
  ** log ends at its last record, and its index gets the items the writer
  ** holds in memory, as sealing would write them. */
  pthread_mutex_lock(&st->wmu);
  /* Not halfway through a delete of several segments: the copy would
  ** have part of it without the marker that finishes it. */
  delete_wait(st);
  if (!st->ro) head_trim(st, head(st));
  pthread_rwlock_rdlock(&st->lk);
  /* Progress in segments: the list cannot change while lk is held. */
  void (*progress)(void *, int64_t, int64_t) = st->opts.progress;
  int64_t total = (int64_t)st->nsegs;
  if (progress) progress(st->opts.progress_arg, 0, total);
  for (size_t si = 0; si < st->nsegs && !rc; si++) {
    char src[PATH_CAP], dst[PATH_CAP];
    const char *ext[2] = {".log", ".index"};
    for (int k = 0; k < 2 && !rc; k++) {
      seg_path(src, sizeof(src), st->dir, st->segs[si]->base, ext[k]);
      seg_path(dst, sizeof(dst), dir, st->segs[si]->base, ext[k]);
      /* A segment may lack its index (rebuilt on use), never its log. */
      bool virtual_empty = st->ro && st->nsegs == 1;   /* a read-only store with no files */
      if ((k == 1 || virtual_empty) && access(src, F_OK) < 0 && errno == ENOENT) continue;
      /* The head's own index holds its header alone while it is written:
      ** the copy gets the items, as sealing would write them. */
      seg *s = st->segs[si];
      if (k == 1 && !st->ro && s->live)
        rc = index_write(dst, s->iver, st->params, s->ibuf.p, s->n * st->isz, true, e);
      else
        rc = file_copy(src, dst, e);
      if (!rc && k == 0) last = s->base;
    }
    if (!rc && progress) progress(st->opts.progress_arg, (int64_t)si + 1, total);
  }
  pthread_rwlock_unlock(&st->lk);
  pthread_mutex_unlock(&st->wmu);
  /* Read-only, the head was copied as another process's writer had it:
  ** maybe with room allocated ahead, half a record and an index behind.
  ** The copy is cut back to its complete records, as Go expects a store. */
  if (!rc && st->ro && last >= 0) rc = seg_recover(dir, last, st->params, false, e);
  if (!rc) rc = dir_sync(dir, e);
  close(lockfd);
  if (rc) kerr_wrap(e, "backup");
  return rc;
}
