/*
** store.c - an open store: the segment list, rollover, publish, the reads
** (consume, get by offset, key and time), delete, stat, sync, gc, backup,
** blocking reads, and the per-process registry that shares one store
** between every handle on a directory.
*/
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fault.h"
#include "store.h"

#define PATH_CAP 4096
/* A read-only store looks for another process's changes at least this
** often (µs), and on every read that reaches the end of what it knows. */
#define FOLLOW_US 10000
/* A batch over this many rollover sizes is split into segments. */
#define SPLIT_FACTOR 4
/* Sealed segments kept mapped (two mappings each: Linux allows 65,530 a
** process): past this, the least recently used are unmapped, looked for
** once every SWEEP_EVERY mappings. */
#define MAP_MAX 1024
#define SWEEP_EVERY 128

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23   /* Linux 5.14; older kernels ignore it */
#endif

struct klevdb {
  store *st;
  bool ro;
  bool resolving;           /* publishing a prepared batch (prepared.c) */
  int interrupted;          /* atomic */
  klevdb_error err;
};

/* A read of a read-only store can meet a writer of another process
** rewriting or removing a segment between the listing and the reading of
** its files (a vanished file, a log and index that do not match). Such a
** read lists the segments again and starts over, a few times, if files
** under its view moved meanwhile (st->moves) or a writer holds the lock
** (it may be between a rewrite's renames and removals): a failure on files
** that stayed where they were with no writer is damage, reported at once. */
#define RO_TRIES 8

static bool ro_transient(klevdb_err rc) {
  return rc == KLEVDB_EIO || rc == KLEVDB_ECORRUPT_LOG || rc == KLEVDB_ECORRUPT_INDEX;
}

/* ---- clocks ---- */

static int64_t coarse_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- the registry: one store per directory per process ---- */

/* The one piece of global state: a second open of a directory must find
** the store the first one locked, since flock(2) would refuse it. */
static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static store *registry[64];
static size_t registry_n;

static store *registry_find(dev_t dev, ino_t ino, bool want_rw) {
  store *ro_match = NULL;
  for (size_t i = 0; i < registry_n; i++) {
    store *s = registry[i];
    if (s->dev != dev || s->ino != ino || s->closing) continue;
    if (!s->ro) return s;
    if (!want_rw) ro_match = s;
  }
  return ro_match;
}

/* A read-only store opened before this process's writer of the directory
** is not that writer's store: the writer tells it of each commit, so that
** its next read sees the commit rather than waiting for the next refresh.
** Under registry_mu, after the registry changed for (dev, ino). */
static void registry_link(dev_t dev, ino_t ino) {
  int n = 0;
  bool rw = false;
  for (size_t i = 0; i < registry_n; i++) {
    store *s = registry[i];
    if (s->dev == dev && s->ino == ino) {
      if (s->ro) n++;
      else rw = true;
    }
  }
  /* A read-only store listed the files before it was registered: a
  ** commit in between told no one. */
  for (size_t i = 0; i < registry_n; i++) {
    store *s = registry[i];
    if (s->dev != dev || s->ino != ino) continue;
    if (!s->ro) __atomic_store_n(&s->peers, n, __ATOMIC_SEQ_CST);
    else if (rw) __atomic_store_n(&s->stale, 1, __ATOMIC_SEQ_CST);
  }
}

/* After a commit of a read-write store (files written, under wmu). */
static void peers_stale(store *st) {
  if (__atomic_load_n(&st->peers, __ATOMIC_SEQ_CST) == 0) return;
  pthread_mutex_lock(&registry_mu);
  for (size_t i = 0; i < registry_n; i++) {
    store *s = registry[i];
    if (s->ro && s->dev == st->dev && s->ino == st->ino)
      __atomic_store_n(&s->stale, 1, __ATOMIC_SEQ_CST);
  }
  pthread_mutex_unlock(&registry_mu);
}

/* ---- segment list ---- */

static inline seg *head(store *st) { return st->segs[st->nsegs - 1]; }

/* Time lookups rebuild their table of first times on next use. */
static inline void tsmin_stale(store *st) { __atomic_store_n(&st->tsmin_n, 0, __ATOMIC_RELEASE); }

/* After any change of the segment list (under lk for writing): the bases
** array (as long as st->segs' capacity) follows it. Returns false when out
** of memory. */
static bool segs_changed(store *st) {
  tsmin_stale(st);
  int64_t *b = realloc(st->bases, (st->capsegs ? st->capsegs : 1) * sizeof(int64_t));
  if (!b) return false;
  st->bases = b;
  for (size_t i = 0; i < st->nsegs; i++) b[i] = st->segs[i]->base;
  return true;
}

/* Appends a segment; O(1), so that opening a store of many segments is
** linear in them. */
static klevdb_err segs_push(store *st, seg *s, klevdb_error *e) {
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

/* Index of the segment with the greatest base <= offset (0 if none). */
static size_t seg_find(const store *st, int64_t offset) {
  const int64_t *b = st->bases;
  size_t lo = 0, hi = st->nsegs;
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (b[mid] <= offset) lo = mid;
    else hi = mid;
  }
  return lo;
}

static klevdb_err load(store *st, seg *s, klevdb_error *e) {
  int64_t t = coarse_us();
  if (__atomic_load_n(&s->atime, __ATOMIC_RELAXED) != t)
    __atomic_store_n(&s->atime, t, __ATOMIC_RELAXED);
  return seg_load(st, s, e);
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

/* After a call that may have mapped segments (no lock held). The writer
** lock too, as for gc: a delete reads its segment without holding lk. */
static bool sweep_due(store *st) {
  return __atomic_load_n(&st->loads, __ATOMIC_RELAXED) - __atomic_load_n(&st->swept, __ATOMIC_RELAXED) >=
         SWEEP_EVERY;
}

/* The sweep of a caller that holds wmu already (a delete through many
** segments maps each one). */
static void sweep_wmu(store *st) {
  if (!sweep_due(st)) return;
  pthread_rwlock_wrlock(&st->lk);
  sweep(st);
  pthread_rwlock_unlock(&st->lk);
}

static void maybe_sweep(store *st) {
  if (!sweep_due(st)) return;
  pthread_mutex_lock(&st->wmu);
  sweep_wmu(st);
  pthread_mutex_unlock(&st->wmu);
}

/* Segment s for a walk over many segments: s itself when it is mapped (it
** stays so while lk is held) or the last one (the head, or the tail another
** process writes: mapped, and live, which a copy would not be; its live
** flag itself changes under wmu alone), else a private copy mapped for the
** caller alone, so that a walk maps one segment at a time instead of
** keeping all it passed (a store may have more than the process can map).
** unpeek() frees the copy; batches pin what they return from it. */
static klevdb_err peek(store *st, seg *s, seg **view, klevdb_error *e) {
  *view = s;
  if (s == head(st) || __atomic_load_n(&s->loaded, __ATOMIC_ACQUIRE)) return load(st, s, e);
  seg *t = seg_new(s->base);
  if (!t) return kerr_sys(e, ENOMEM, "read segment %lld", (long long)s->base);
  klevdb_err rc = seg_load(st, t, e);
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
static void unpeek(seg *s, seg *view) {
  if (view != s) seg_free(view);
}

/* The summary of sealed segment s (see seg), mapping it for a moment if
** nothing is known of it yet. */
static klevdb_err summary(store *st, seg *s, klevdb_error *e) {
  if (__atomic_load_n(&s->summed, __ATOMIC_ACQUIRE)) return KLEVDB_OK;
  seg *v;
  klevdb_err rc = peek(st, s, &v, e);
  if (!rc) unpeek(s, v);
  return rc;
}

/* kt_match_fn: does the item at offset carry this key hash? */
static bool kt_same(void *ctx, int64_t offset, uint64_t hash) {
  store *st = ctx;
  seg *s = st->segs[seg_find(st, offset)];
  if (load(st, s, NULL)) return false;
  long i = items_find(seg_items(s), s->n, st->isz, offset);
  return i >= 0 && item_hash(seg_items(s) + (size_t)i * st->isz, st->params) == hash;
}

/* ---- following another process (read-only stores) ---- */

/* The segments of the directory. A listing taken while the writer renames
** files can miss one (readdir(3) gives no promise about entries renamed
** while it runs), so it is taken again until two agree. */
static klevdb_err list_stable(store *st, int64_t **bases, size_t *n, klevdb_error *e) {
  klevdb_err rc = dir_segments(st->dir, 0, bases, n, e);
  for (int tries = 0; !rc && tries < 5; tries++) {
    int64_t *again;
    size_t m;
    if ((rc = dir_segments(st->dir, 0, &again, &m, e))) {
      free(*bases);
      break;
    }
    /* Two empty listings may both be NULL, which memcmp must not get. */
    bool same = m == *n && (m == 0 || memcmp(again, *bases, m * sizeof(int64_t)) == 0);
    free(*bases);
    *bases = again;
    *n = m;
    if (same) break;
  }
  return rc;
}

static klevdb_err relist(store *st, klevdb_error *e) {
  int64_t *bases;
  size_t n;
  klevdb_err rc = list_stable(st, &bases, &n, e);
  if (rc) return rc;
  if (n == 0) {
    free(bases);
    return KLEVDB_OK;   /* keep what we have: the writer is mid-delete */
  }
  /* A listing taken while the writer renames can miss entries; the newest
  ** segment never goes away (its base only grows), so a listing without it
  ** is incomplete: keep the old view and look again next time. */
  seg *last = st->segs[st->nsegs - 1];
  if (bases[n - 1] < last->base) {
    char path[PATH_CAP];
    seg_path(path, sizeof(path), st->dir, last->base, ".log");
    if (access(path, F_OK) == 0) {
      free(bases);
      st->dir_mtime.tv_sec = 0;
      return KLEVDB_OK;
    }
  }
  seg **ns = calloc(n, sizeof(seg *));
  if (!ns) {
    free(bases);
    return kerr_sys(e, ENOMEM, "refresh");
  }
  bool changed = false, moved = false;
  for (size_t i = 0; i < n; i++) {
    char path[PATH_CAP];
    struct stat sb;
    seg_path(path, sizeof(path), st->dir, bases[i], ".log");
    ino_t ino = stat(path, &sb) == 0 ? sb.st_ino : 0;
    for (size_t j = 0; j < st->nsegs; j++) {
      seg *old = st->segs[j];
      if (old && old->base == bases[i] && (!old->log || old->ino == ino)) {
        ns[i] = old;
        st->segs[j] = NULL;
        break;
      }
    }
    if (!ns[i]) {
      moved = true;
      ns[i] = seg_new(bases[i]);
      if (!ns[i]) {
        for (size_t k = 0; k < i; k++) if (!ns[k]->log) seg_free(ns[k]);
        free(ns);
        free(bases);
        return kerr_sys(e, ENOMEM, "refresh");
      }
      if (i + 1 < n) changed = true;
    }
  }
  for (size_t j = 0; j < st->nsegs; j++) {
    if (!st->segs[j]) continue;
    seg_free(st->segs[j]);  /* gone or replaced; readers hold their pins */
    changed = moved = true;
  }
  if (moved) __atomic_add_fetch(&st->moves, 1, __ATOMIC_SEQ_CST);
  /* A segment that is no longer the last was rolled over: its index file
  ** is complete, so it becomes an ordinary mapped segment. */
  for (size_t i = 0; i + 1 < n; i++) {
    seg *s = ns[i];
    if (!s->live) continue;
    if (s->fd >= 0) close(s->fd);
    s->fd = -1;
    s->live = false;
    seg_unload(s);
  }
  /* The last segment is read as a live one (items on the heap, following
  ** appends); one that was sealed in this view loads again that way. */
  if (!ns[n - 1]->live) {
    seg_unload(ns[n - 1]);
    ns[n - 1]->live = true;
  }
  free(st->segs);
  free(bases);
  st->segs = ns;
  st->nsegs = st->capsegs = n;
  if (!segs_changed(st)) return kerr_sys(e, ENOMEM, "refresh");
  if (changed && st->kt_state == 1) {
    kt_free(&st->kt);
    st->kt_state = 0;
  }
  return KLEVDB_OK;
}

/* Reads what the writer appended to the last segment (loading it if it
** is new in the view), extending the key table with it. */
static klevdb_err head_catch_up(store *st, seg *h, klevdb_error *e) {
  if (!h->loaded) return seg_load(st, h, e);
  int64_t before = seg_next(h, st->isz);
  if (h->n == 0) tsmin_stale(st);
  klevdb_err rc = seg_follow(st, h, e);
  if (!rc && seg_next(h, st->isz) != before && st->kt_state == 1) {
    /* Extend the key table with what arrived. */
    const uint8_t *items = seg_items(h);
    for (size_t i = 0; i < h->n; i++) {
      const uint8_t *it = items + i * st->isz;
      if (item_off(it) < before) continue;
      if (!kt_put(&st->kt, item_hash(it, st->params), item_off(it), kt_same, st)) st->kt_state = -1;
    }
  }
  if (!rc && !h->loaded) rc = seg_load(st, h, e);
  return rc;
}

/* Brings a read-only store up to date with the files. force: the caller's
** answer depends on the end of the log. */
static klevdb_err follow(store *st, bool force, klevdb_error *e) {
  int64_t t = coarse_us();
  if (!force && !__atomic_load_n(&st->stale, __ATOMIC_SEQ_CST) &&
      t - __atomic_load_n(&st->refreshed, __ATOMIC_RELAXED) < FOLLOW_US)
    return KLEVDB_OK;
  pthread_rwlock_wrlock(&st->lk);
  /* A writer of this process committed: its renames may share the
  ** directory's mtime with what was listed. */
  if (__atomic_exchange_n(&st->stale, 0, __ATOMIC_SEQ_CST)) st->dir_mtime = (struct timespec){0, 0};
  klevdb_err rc = KLEVDB_OK;
  seg *h = head(st);
  for (int tries = 0;; tries++) {
    uint64_t moves = __atomic_load_n(&st->moves, __ATOMIC_SEQ_CST);
    struct stat sb;
    if (stat(st->dir, &sb) < 0) {
      rc = kerr_sys(e, errno, "stat %s", st->dir);
      break;
    }
    /* A directory changed within the clock's granularity may change again
    ** with the same mtime, so a recent mtime is never trusted. */
    int64_t mtime = (int64_t)sb.st_mtim.tv_sec * 1000000 + sb.st_mtim.tv_nsec / 1000;
    if (sb.st_mtim.tv_sec != st->dir_mtime.tv_sec || sb.st_mtim.tv_nsec != st->dir_mtime.tv_nsec ||
        wall_us() - mtime < 50000) {
      rc = relist(st, e);
      if (!rc) st->dir_mtime = sb.st_mtim;
    }
    h = head(st);
    if (!rc) rc = head_catch_up(st, h, e);
    if (rc && ro_transient(rc) && tries < 4 &&
        __atomic_load_n(&st->moves, __ATOMIC_SEQ_CST) != moves) {
      /* The last segment went or was replaced after the listing. */
      rc = KLEVDB_OK;
      st->dir_mtime = (struct timespec){0, 0};
      pthread_rwlock_unlock(&st->lk);
      usleep(1000 * (useconds_t)tries);
      pthread_rwlock_wrlock(&st->lk);
      continue;
    }
    /* The next offset of a store never goes back: a view where it does
    ** was listed while the writer renamed its newest segment in. */
    if (rc || tries == 4 || seg_next(h, st->isz) >= st->next) break;
    st->dir_mtime = (struct timespec){0, 0};
  }
  if (!rc) {
    int64_t next = seg_next(h, st->isz);
    if (next != st->next) {
      __atomic_store_n(&st->next, next, __ATOMIC_SEQ_CST);
      __atomic_add_fetch(&st->pubseq, 1, __ATOMIC_SEQ_CST);
    }
  }
  pthread_rwlock_unlock(&st->lk);
  __atomic_store_n(&st->refreshed, t, __ATOMIC_RELAXED);
  return rc;
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

static klevdb_err mkdirs(const char *dir, klevdb_error *e) {
  char p[PATH_CAP];
  snprintf(p, sizeof(p), "%s", dir);
  for (char *c = p + 1; *c; c++) {
    if (*c != '/') continue;
    *c = 0;
    if (mkdir(p, 0700) < 0 && errno != EEXIST) return kerr_sys(e, errno, "create directory %s", p);
    *c = '/';
  }
  if (mkdir(p, 0700) < 0 && errno != EEXIST) return kerr_sys(e, errno, "create directory %s", p);
  return KLEVDB_OK;
}

static void store_free(store *st) {
  for (size_t i = 0; i < st->nsegs; i++) seg_free(st->segs[i]);
  free(st->segs);
  free(st->bases);
  if (st->lockfd >= 0) close(st->lockfd);  /* releases the flock */
  kt_free(&st->kt);
  kbuf_free(&st->wbuf);
  pthread_mutex_destroy(&st->wmu);
  pthread_rwlock_destroy(&st->lk);
  pthread_mutex_destroy(&st->cvmu);
  pthread_cond_destroy(&st->cv);
  pthread_cond_destroy(&st->txn_cv);
  pthread_mutex_destroy(&st->spare_mu);
  pthread_mutex_destroy(&st->tsmu);
  free(st->tsmin);
  free(st->tsmax);
  pthread_cond_destroy(&st->spare_cv);
  free(st->dir);
  free(st);
}

static klevdb_err delete_finish(store *st, klevdb_error *e);

static klevdb_err store_open(const char *dir, const klevdb_options *o, store **out,
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
  pthread_mutex_init(&st->spare_mu, NULL);
  pthread_mutex_init(&st->tsmu, NULL);
  pthread_cond_init(&st->spare_cv, NULL);
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
    spare_clean(st);
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
    if ((rc = seg_load(st, h, e))) goto fail;
    st->refreshed = coarse_us();
  } else if ((rc = head_open(st, h, n == 0, e))) {
    goto fail;
  }
  st->next = seg_next(h, st->isz);
  if (!st->ro && (rc = delete_finish(st, e))) {
    spare_stop(st);
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

static void store_close(store *st) {
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
    spare_stop(st);
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

klevdb_err klevdb_open(const char *dir, const klevdb_options *opts, klevdb **out,
                       klevdb_error *e) {
  if (e) {
    e->code = KLEVDB_OK;
    e->msg[0] = 0;
  }
  if (!out) return kerr(e, KLEVDB_EINVAL, "open: no place for the handle");
  *out = NULL;
  if (!dir || !*dir) return kerr(e, KLEVDB_EINVAL, "open: no directory given");
  if (strlen(dir) > PATH_CAP - 64) return kerr(e, KLEVDB_EINVAL, "open: directory name too long");
  klevdb_options o = {0};
  if (opts) o = *opts;
  if (o.new_segments_version < KLEVDB_VERSION_DEFAULT || o.new_segments_version > KLEVDB_V2)
    return kerr(e, KLEVDB_EINVAL, "open %s: unknown format version %d", dir,
                (int)o.new_segments_version);
  klevdb_err rc;
  if (o.create_dirs && (rc = mkdirs(dir, e))) return rc;
  struct stat sb;
  if (stat(dir, &sb) < 0) {
    if (errno == ENOENT) return kerr(e, KLEVDB_EIO, "open %s: no such directory (create_dirs is off)", dir);
    return kerr_sys(e, errno, "open %s", dir);
  }
  klevdb *db = calloc(1, sizeof(*db));
  if (!db) return kerr_sys(e, ENOMEM, "open");
  db->ro = o.readonly;

  pthread_mutex_lock(&registry_mu);
  store *st = registry_find(sb.st_dev, sb.st_ino, !o.readonly);
  if (st) {
    int params = (o.time_index ? IDX_TIMES : 0) | (o.key_index ? IDX_KEYS : 0);
    if (params != st->params) {
      pthread_mutex_unlock(&registry_mu);
      free(db);
      return kerr(e, KLEVDB_EINVAL,
                  "open %s: already open in this process with key_index=%d time_index=%d",
                  dir, !!(st->params & IDX_KEYS), !!(st->params & IDX_TIMES));
    }
    st->refs++;
  } else if (registry_n == sizeof(registry) / sizeof(registry[0])) {
    pthread_mutex_unlock(&registry_mu);
    free(db);
    return kerr(e, KLEVDB_EINVAL, "open %s: too many stores open in this process", dir);
  } else {
    /* A read-only open lists the segments, then reads the last one: a
    ** writer of another process may rewrite it in between (ro_again). */
    for (int tries = 1;; tries++) {
      bool raced = false;
      rc = store_open(dir, &o, &st, &raced, e);
      if (!rc || !o.readonly || !ro_transient(rc) || tries >= RO_TRIES) break;
      if (!raced && !writer_active(dir)) break;
      usleep(1000 * (useconds_t)(tries - 1));
    }
    if (rc) {
      pthread_mutex_unlock(&registry_mu);
      free(db);
      return rc;
    }
    st->refs = 1;
    registry[registry_n++] = st;
    registry_link(st->dev, st->ino);
  }
  pthread_mutex_unlock(&registry_mu);
  db->st = st;
  *out = db;
  return KLEVDB_OK;
}

klevdb_err klevdb_close(klevdb *db) {
  if (!db) return KLEVDB_OK;
  klevdb_interrupt(db);
  klevdb_writer_unlock(db);
  store *st = db->st;
  pthread_mutex_lock(&registry_mu);
  bool last = --st->refs == 0;
  if (last) {
    for (size_t i = 0; i < registry_n; i++)
      if (registry[i] == st) {
        registry[i] = registry[--registry_n];
        break;
      }
    registry_link(st->dev, st->ino);
  }
  pthread_mutex_unlock(&registry_mu);
  if (last) store_close(st);
  free(db);
  return KLEVDB_OK;
}

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

/* Every API call starts here: resets the handle's error. */
#define BEGIN(db)                                       \
  do {                                                  \
    if (!(db)) return KLEVDB_EINVAL;                    \
    (db)->err.code = KLEVDB_OK;                         \
  } while (0)

static uint64_t ro_moves(const klevdb *db) {
  return db->st->ro ? __atomic_load_n(&db->st->moves, __ATOMIC_SEQ_CST) : 0;
}

/* *moves: st->moves when the failed try began. */
static bool ro_again(klevdb *db, klevdb_err *rc, int *tries, uint64_t *moves) {
  store *st = db->st;
  if (!st->ro || !ro_transient(*rc)) return false;
  if (++*tries >= RO_TRIES) return false;
  if (*tries > 1) usleep(1000 * (useconds_t)(*tries - 1));
  pthread_rwlock_wrlock(&st->lk);
  st->dir_mtime = (struct timespec){0, 0};   /* list again whatever the mtime */
  pthread_rwlock_unlock(&st->lk);
  /* A failure here comes back from the next try's own follow. */
  klevdb_error saved = db->err;
  follow(st, true, &db->err);
  uint64_t now = ro_moves(db);
  /* Nothing moved in the listing: the files are damaged, unless a writer
  ** is between the renames and removals of a rewrite (a head renamed to
  ** its first survivor beside its old name, a delete across segments half
  ** done), where the view holds both generations for a moment. */
  if (now == *moves && !writer_active(st->dir)) {
    db->err = saved;
    return false;
  }
  *moves = now;
  db->err.code = KLEVDB_OK;
  return true;
}

#define RO_RETRY(db, call)                                      \
  do {                                                          \
    BEGIN(db);                                                  \
    klevdb_err rc_;                                             \
    int tries_ = 0;                                             \
    uint64_t moves_ = ro_moves(db);                             \
    while ((rc_ = (call)) && ro_again((db), &rc_, &tries_, &moves_)) { \
    }                                                           \
    return rc_;                                                 \
  } while (0)

/* ---- the writer reservation of SQL transactions ---- */

/* Waits while another handle holds the writes. Caller holds wmu. */
static void txn_wait(store *st, klevdb *db) {
  while (st->txn_owner && st->txn_owner != db) pthread_cond_wait(&st->txn_cv, &st->wmu);
}

klevdb_err klevdb_writer_lock(klevdb *db, int64_t timeout_ms) {
  BEGIN(db);
  store *st = db->st;
  if (db->ro || st->ro) return kerr(&db->err, KLEVDB_EREADONLY, "write: store opened read-only");
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += timeout_ms / 1000;
  until.tv_nsec += (timeout_ms % 1000) * 1000000;
  if (until.tv_nsec >= 1000000000) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000;
  }
  klevdb_err rc = KLEVDB_OK;
  pthread_mutex_lock(&st->wmu);
  while (st->txn_owner && st->txn_owner != db) {
    if (timeout_ms <= 0 || pthread_cond_timedwait(&st->txn_cv, &st->wmu, &until) == ETIMEDOUT) {
      if (st->txn_owner && st->txn_owner != db)
        rc = kerr(&db->err, KLEVDB_ELOCKED, "write: another connection is writing this store (an open transaction, maybe of another table on it)");
      break;
    }
  }
  if (!rc) st->txn_owner = db;
  pthread_mutex_unlock(&st->wmu);
  return rc;
}

void klevdb_writer_unlock(klevdb *db) {
  if (!db) return;
  store *st = db->st;
  pthread_mutex_lock(&st->wmu);
  if (st->txn_owner == db) {
    st->txn_owner = NULL;
    pthread_cond_broadcast(&st->txn_cv);
  }
  pthread_mutex_unlock(&st->wmu);
}

/* ---- publish ---- */

/* A head whose file is no longer in any directory (the store's folder was
** removed under us) takes writes that no one will ever read: say so. It is
** looked at whenever the head needs the kernel anyway (more space, a sync,
** a rollover), so at most one allocation chunk goes unnoticed. */
static klevdb_err head_gone(store *st, seg *h, const char *what, klevdb_error *e) {
  struct stat sb;
  if (h->fd < 0 || fstat(h->fd, &sb) < 0 || sb.st_nlink > 0) return KLEVDB_OK;
  return kerr(e, KLEVDB_EIO, "%s: the files of the store in %s were removed while it was open "
              "(was the folder deleted?); what was written since is lost", what, st->dir);
}

/* Starts a new head at the next offset (docs/files.md, rollover). Caller holds wmu. */
static klevdb_err rollover(store *st, klevdb_error *e) {
  seg *old = head(st);
  klevdb_err rc = head_gone(st, old, "publish", e);
  if (rc) return rc;
  head_trim(st, old);
  seg *s = seg_new(st->next);
  if (!s) return kerr_sys(e, ENOMEM, "rollover");
  if (s->base == old->base) {
    /* Rollover below the size of an empty head (differences D10): stay put. */
    seg_free(s);
    return KLEVDB_OK;
  }
  /* The new head's files are new (its base is past every segment): if it
  ** cannot be opened, none of it stays, and the publish fails with why. */
  char lp[PATH_CAP], ip[PATH_CAP];
  seg_path(lp, sizeof(lp), st->dir, s->base, ".log");
  seg_path(ip, sizeof(ip), st->dir, s->base, ".index");
  bool log_new = access(lp, F_OK) < 0 && errno == ENOENT;
  bool idx_new = access(ip, F_OK) < 0 && errno == ENOENT;
  spare_take(st, s->base);
  rc = head_open(st, s, true, e);
  if (rc) {
    if (log_new) unlink(lp);
    if (idx_new) unlink(ip);
    seg_free(s);
    return rc;
  }
  /* The old head's index is written once the new head exists: until then
  ** it stays the head, whose index must not have items (head_open). It is
  ** derived from the log, so a failure (a full disk) fails nothing: a
  ** sealed segment whose index has no items is rebuilt by whoever reads it. */
  head_seal(st, old, st->opts.auto_sync, NULL);
  head_close(st, old, st->opts.auto_sync);
  if (st->opts.auto_sync && (rc = dir_sync(st->dir, e))) { /* the data is safe; report */ }
  pthread_rwlock_wrlock(&st->lk);
  klevdb_err prc = segs_push(st, s, e);
  /* The old head's items leave the heap: its .index is complete now and
  ** is mapped again on first use (readers hold pins on its log). */
  if (!prc) seg_unload(old);
  pthread_rwlock_unlock(&st->lk);
  if (prc) return prc;
  return rc;
}

/* Maps more of the head log when it outgrows its mapping. */
static klevdb_err head_remap(store *st, seg *h, int64_t size, klevdb_error *e) {
  kmap *m;
  klevdb_err rc = kmap_open(h->fd, log_reserve(st, size), true, &m, e);
  if (rc) return rc;
  pthread_rwlock_wrlock(&st->lk);
  kmap_unref(h->log);
  h->log = m;
  pthread_rwlock_unlock(&st->lk);
  return KLEVDB_OK;
}

/* Makes sure the head log has need bytes allocated and mapped. Allocating
** (not just extending the size) is what turns a full disk into an error
** here instead of a SIGBUS on the copy. */
static klevdb_err head_room(store *st, seg *h, int64_t need, bool *mapped, klevdb_error *e) {
  if (need <= st->alloc) return KLEVDB_OK;
  klevdb_err gone = head_gone(st, h, "publish", e);
  if (gone) return gone;
  int64_t chunk = st->opts.rollover / 2;
  if (chunk < (64 << 10)) chunk = 64 << 10;
  if (chunk > (8 << 20)) chunk = 8 << 20;
  int64_t to = (need + chunk + 4095) & ~(int64_t)4095;
  int r = fallocate(h->fd, 0, st->alloc, to - st->alloc);
  if (r < 0 && (errno == ENOSPC || errno == EFBIG)) {
    /* Nearly full: allocate just what this batch needs. */
    to = (need + 4095) & ~(int64_t)4095;
    r = fallocate(h->fd, 0, st->alloc, to - st->alloc);
  }
  if (r < 0) {
    if (errno == EOPNOTSUPP || errno == ENOSYS) {
      st->no_fallocate = true;
      *mapped = false;
      return KLEVDB_OK;
    }
    int err = errno;
    head_trim(st, h);
    return kerr_sys(e, err, "publish: allocate space in segment %lld", (long long)h->base);
  }
  int64_t from = st->alloc & ~(int64_t)4095;
  st->alloc = to;
  klevdb_err rc = (size_t)to > h->log->len ? head_remap(st, h, to, e) : KLEVDB_OK;
  /* Fault the new pages in with one call instead of one trap per page. */
  if (!rc) madvise((void *)(h->log->data + from), (size_t)(to - from), MADV_POPULATE_WRITE);
  return rc;
}

static void wake_waiters(store *st) {
  peers_stale(st);
  __atomic_add_fetch(&st->pubseq, 1, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&st->waiters, __ATOMIC_SEQ_CST) > 0) {
    pthread_mutex_lock(&st->cvmu);
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->cvmu);
  }
}

/* Puts the batch segments at bases (written under temporary names) in
** place after the head, and into the segment list. An empty head at the
** next offset is replaced by the first of them; a head with records stays
** and is sealed. Caller holds wmu. */
static klevdb_err install_batch(store *st, const int64_t *bases, size_t nb, const char *tmp,
                                klevdb_error *e) {
  seg *h = head(st);
  bool replace = h->n == 0 && h->base == st->next;
  klevdb_err rc = KLEVDB_OK;
  seg **news = calloc(nb, sizeof(seg *));
  for (size_t i = 0; news && i < nb; i++)
    if (!(news[i] = seg_new(bases[i]))) rc = kerr_sys(e, ENOMEM, "publish");
  if (!news) rc = kerr_sys(e, ENOMEM, "publish");
  /* A head left with room allocated ahead must not become a sealed
  ** segment with zeros at its end. */
  head_trim(st, h);
  if (!rc) rc = batch_commit(st->dir, bases, nb, tmp, replace, h->base, st->opts.auto_sync, e);
  if (rc) {
    for (size_t i = 0; news && i < nb; i++) seg_free(news[i]);
    free(news);
    return rc;
  }
  /* The files are in place; now the segment list follows. A head that
  ** stays (sealed) gets its whole index; its data is safe either way. */
  if (!replace) head_seal(st, h, st->opts.auto_sync, NULL);
  FAULT_POINT();
  head_close(st, h, st->opts.auto_sync);
  rc = head_open(st, news[nb - 1], false, e);
  pthread_rwlock_wrlock(&st->lk);
  size_t i = 0;
  if (replace) st->segs[st->nsegs - 1] = news[i++];
  else seg_unload(h);   /* sealed: its index is complete, mapped on use */
  for (; i < nb; i++)
    if (segs_push(st, news[i], NULL)) seg_free(news[i]);
  segs_changed(st);
  if (st->kt_state == 1) {
    kt_free(&st->kt);
    st->kt_state = 0;
  }
  __atomic_store_n(&st->next, seg_next(head(st), st->isz), __ATOMIC_SEQ_CST);
  pthread_rwlock_unlock(&st->lk);
  if (replace) seg_free(h);
  free(news);
  return rc;
}

/* A batch of several segments' worth goes into new segments of their own
** (Go would make one big segment; both are valid stores), so that trimming
** the old part of a store drops whole segments. Caller holds wmu. */
static klevdb_err publish_split(store *st, const klevdb_msg *msgs, size_t n, klevdb_error *e) {
  int64_t last_ts = st->last_ts, *bases;
  size_t nb;
  klevdb_err rc = batch_write(st->dir, st->newver, st->params, st->opts.rollover, msgs, n, st->next,
                   wall_us(), &last_ts, st->opts.auto_sync, &bases, &nb, e);
  if (rc) return rc;
  rc = install_batch(st, bases, nb, TMP_BATCH, e);
  if (rc) batch_discard(st->dir, bases, nb, TMP_BATCH);
  free(bases);
  return rc;
}

/* Offsets from next on are claimed by a prepared batch whose fate only
** its SQL transaction knows: no other write may take them. */
static klevdb_err in_doubt(store *st, klevdb_error *e, const char *what) {
  return kerr(e, KLEVDB_ELOCKED, "%s: a SQL transaction is in doubt in %s (its batch is "
              "prepared at offset %lld, its outcome not yet known): open the store from its "
              "table, or resolve it (klevdb_prepared_find, then commit or abort)", what,
              st->dir, (long long)st->next);
}

/* ---- prepared batches (prepared.c) ---- */

klevdb_err store_prepare_begin(klevdb *db, const char **dir, bool *sync) {
  BEGIN(db);
  store *st = db->st;
  if (db->ro || st->ro) return kerr(&db->err, KLEVDB_EREADONLY, "prepare: store opened read-only");
  klevdb_err rc = KLEVDB_OK;
  pthread_mutex_lock(&st->wmu);
  if (st->txn_owner != db) rc = kerr(&db->err, KLEVDB_EINVAL, "prepare: the handle must hold klevdb_writer_lock");
  else if (head(st)->fd < 0) rc = kerr(&db->err, KLEVDB_ECLOSED, "prepare: store is closed");
  else if (st->doubt) rc = in_doubt(st, &db->err, "prepare");
  *dir = st->dir;
  *sync = st->opts.auto_sync;
  pthread_mutex_unlock(&st->wmu);
  return rc;
}

klevdb_err store_prepared_dir(klevdb *db, const char **dir, bool *sync, bool *doubt) {
  BEGIN(db);
  store *st = db->st;
  if (db->ro || st->ro) {
    /* A reader may look (its writer is elsewhere) but not decide. */
    if (!doubt) return kerr(&db->err, KLEVDB_EREADONLY, "prepared batch: store opened read-only");
    *dir = st->dir;
    *sync = false;
    *doubt = prepared_exists(st->dir);
    return KLEVDB_OK;
  }
  pthread_mutex_lock(&st->wmu);
  *dir = st->dir;
  *sync = st->opts.auto_sync;
  if (doubt) *doubt = st->doubt;
  pthread_mutex_unlock(&st->wmu);
  return KLEVDB_OK;
}

void store_set_doubt(klevdb *db, bool doubt) {
  store *st = db->st;
  pthread_mutex_lock(&st->wmu);
  st->doubt = doubt;
  pthread_mutex_unlock(&st->wmu);
}

void store_seg_format(klevdb *db, int *ver, int *params) {
  *ver = db->st->newver;
  *params = db->st->params;
}

klevdb_err store_publish_prepared(klevdb *db, const klevdb_msg *msgs, size_t n,
                                  int64_t *next_out) {
  db->resolving = true;
  klevdb_err rc = klevdb_publish(db, msgs, n, next_out);
  db->resolving = false;
  return rc;
}

/* ---- staged batches (stage.c) ---- */

klevdb_err store_stage_begin(klevdb *db, store **st_out, stage_params *p) {
  BEGIN(db);
  store *st = db->st;
  if (db->ro || st->ro) return kerr(&db->err, KLEVDB_EREADONLY, "publish: store opened read-only");
  klevdb_err rc = KLEVDB_OK;
  pthread_mutex_lock(&st->wmu);
  if (st->txn_owner != db) {
    rc = kerr(&db->err, KLEVDB_EINVAL, "stage: the handle must hold klevdb_writer_lock");
  } else if (head(st)->fd < 0) {
    rc = kerr(&db->err, KLEVDB_ECLOSED, "publish: store is closed");
  } else if (st->doubt) {
    rc = in_doubt(st, &db->err, "stage");
  } else {
    *st_out = st;
    p->next = st->next;
    p->last_ts = st->last_ts;
    p->ver = st->newver;
    p->params = st->params;
    p->rollover = st->opts.rollover;
    p->sync = st->opts.auto_sync;
  }
  pthread_mutex_unlock(&st->wmu);
  return rc;
}

klevdb_err store_stage_commit(klevdb *db, int64_t base, const int64_t *bases, size_t nb,
                              int64_t *next_out) {
  store *st = db->st;
  klevdb_error *e = &db->err;
  pthread_mutex_lock(&st->wmu);
  txn_wait(st, db);
  klevdb_err rc = KLEVDB_OK;
  if (head(st)->fd < 0) rc = kerr(e, KLEVDB_ECLOSED, "publish: store is closed");
  else if (st->next != base)
    rc = kerr(e, KLEVDB_EINVAL, "publish: the store moved on while the batch was staged "
              "(next offset %lld, staged from %lld)", (long long)st->next, (long long)base);
  if (!rc && !(rc = install_batch(st, bases, nb, TMP_STAGE, e))) wake_waiters(st);
  if (next_out) *next_out = st->next;
  pthread_mutex_unlock(&st->wmu);
  return rc;
}

klevdb_error *store_handle_err(klevdb *db) { return &db->err; }

klevdb_err klevdb_publish(klevdb *db, const klevdb_msg *msgs, size_t n, int64_t *next_out) {
  BEGIN(db);
  store *st = db->st;
  klevdb_error *e = &db->err;
  if (db->ro || st->ro) return kerr(e, KLEVDB_EREADONLY, "publish: store opened read-only");
  size_t total;
  klevdb_err bad = msgs_check(msgs, n, &total, e);
  if (bad) return bad;
  pthread_mutex_lock(&st->wmu);
  txn_wait(st, db);
  klevdb_err rc = KLEVDB_OK;
  seg *h = head(st);
  if (h->fd < 0) {
    rc = kerr(e, KLEVDB_ECLOSED, "publish: store is closed");
    goto out;
  }
  if (st->doubt && !db->resolving) {
    rc = in_doubt(st, e, "publish");
    goto out;
  }
  if (h->log_end > st->opts.rollover) {
    if ((rc = rollover(st, e))) goto out;
    h = head(st);
  }
  if (n == 0) goto out;
  /* Only batches of several segments' worth: smaller ones stay in the
  ** head as Go writes them (same files). */
  if (n > 1 && (int64_t)total > SPLIT_FACTOR * st->opts.rollover) {
    if (!(rc = publish_split(st, msgs, n, e))) wake_waiters(st);
    goto out;
  }

  int ver = h->ver;
  /* By default the log grows by one pwrite() per batch, so that its size is
  ** always the end of its last record, whatever moment the process dies at
  ** (Go appends at the size it finds). With preallocate, a V2 head appends
  ** by copying into its mapping (no system call per publish); the space is
  ** allocated ahead and cut off again at sync, rollover and close, so after
  ** a crash the log ends in zeros until the next open of ours (or Go's
  ** Recover) cuts them. */
  bool mapped = st->opts.preallocate && ver == FMT_V2 && !st->no_fallocate;
  if (mapped && (rc = head_room(st, h, h->log_end + (int64_t)total, &mapped, e))) goto out;
  uint8_t *dst;
  if (mapped) {
    dst = (uint8_t *)h->log->data + h->log_end;
  } else {
    head_trim(st, h);
    st->wbuf.len = 0;
    if ((rc = kbuf_reserve(&st->wbuf, total, e))) goto out;
    dst = st->wbuf.p;
  }
  size_t need = (h->n + n) * st->isz;
  if (h->ibuf.cap < need) {
    pthread_rwlock_wrlock(&st->lk);
    rc = kbuf_reserve(&h->ibuf, need - h->ibuf.len, e);
    pthread_rwlock_unlock(&st->lk);
    if (rc) goto out;
  }
  int64_t t_now = KLEVDB_TIME_UNSET, pos = h->log_end, off = st->next;
  int64_t last_ts = st->last_ts;
  uint8_t *items = h->ibuf.p + h->ibuf.len;
  /* The first record is written last: until it is complete the batch is
  ** a torn tail that open cuts whole, whatever moment a crash hits. */
  for (size_t i = 0; i < n && t_now == KLEVDB_TIME_UNSET; i++)
    if (msgs[i].time == KLEVDB_TIME_UNSET) t_now = wall_us();
  size_t len0 = (size_t)rec_size(ver, msgs[0].key_len, msgs[0].value_len);
  int64_t at = h->log_end + (int64_t)len0;
  for (size_t k = 1; k <= n; k++) {
    size_t i = k % n;   /* 1, 2, ..., n-1, then 0 */
    const klevdb_msg *m = &msgs[i];
    int64_t t = m->time == KLEVDB_TIME_UNSET ? t_now : m->time;
    int64_t where = i == 0 ? h->log_end : at;
    size_t len = rec_encode(ver, dst + (where - h->log_end), off + (int64_t)i, t, m->key,
                            m->key_len, m->value, m->value_len);
    if (i != 0) at += (int64_t)len;
  }
  /* Items in order, with the clamped times. */
  pos = h->log_end;
  for (size_t i = 0; i < n; i++) {
    const klevdb_msg *m = &msgs[i];
    int64_t t = m->time == KLEVDB_TIME_UNSET ? t_now : m->time;
    if (t > last_ts) last_ts = t;
    item_encode(items + i * st->isz, st->params, off + (int64_t)i, pos, last_ts,
                (st->params & IDX_KEYS) ? klevdb_key_hash(m->key, m->key_len) : 0);
    pos += rec_size(ver, m->key_len, m->value_len);
  }
  if (!mapped) {
    /* One write within a page is all or nothing, a kill included (the
    ** kernel looks for a fatal signal before each page it copies). A batch
    ** that crosses a page boundary is written past the first page's bytes,
    ** then those: until then it starts with zeros (a torn tail that our
    ** open cuts whole, and that Go's scan rejects as a bad record rather
    ** than reading past). No O_APPEND: positions are ours; on failure cut
    ** the log back so that nothing of the batch stays (Go leaves a failed
    ** batch's first records in the log). */
    size_t total = (size_t)(pos - h->log_end);
    size_t first = 4096 - (size_t)(h->log_end & 4095);
    if (first > total) first = total;
    int err = 0;
    if (total > first) err = pwrite_full(h->fd, dst + first, total - first, h->log_end + (int64_t)first);
    FAULT_POINT();
    if (!err) err = pwrite_full(h->fd, dst, first, h->log_end);
    if (err) {
      if (ftruncate(h->fd, h->log_end) < 0) { /* open cuts a torn tail */ }
      rc = kerr_sys(e, err, "publish: write segment %lld", (long long)h->base);
      goto out;
    }
    if ((size_t)pos > h->log->len && (rc = head_remap(st, h, pos, e))) {
      if (ftruncate(h->fd, h->log_end) < 0) { /* open cuts a torn tail */ }
      goto out;
    }
  }

  if (st->opts.auto_sync && fdatasync(h->fd) < 0) {
    /* Not durable, so not published: erase or cut what was written. */
    int err = errno;
    if (mapped) memset(dst, 0, (size_t)(pos - h->log_end));
    else if (ftruncate(h->fd, h->log_end) < 0) { /* open cuts a torn tail */ }
    rc = kerr_sys(e, err, "publish: sync segment %lld", (long long)h->base);
    goto out;
  }

  pthread_rwlock_wrlock(&st->lk);
  if (h->n == 0) tsmin_stale(st);
  h->ibuf.len += n * st->isz;
  h->n += n;
  h->log_end = pos;
  __atomic_store_n(&st->next, off + (int64_t)n, __ATOMIC_SEQ_CST);
  if (st->kt_state == 1) {
    for (size_t i = 0; i < n; i++)
      if (!kt_put(&st->kt, item_hash(items + i * st->isz, st->params), off + (int64_t)i, kt_same, st))
        st->kt_state = -1;
  }
  pthread_rwlock_unlock(&st->lk);
  st->last_ts = last_ts;
  wake_waiters(st);
out:
  if (next_out) *next_out = rc ? KLEVDB_OFFSET_INVALID : st->next;
  pthread_mutex_unlock(&st->wmu);
  return rc;
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

int64_t klevdb_size(const klevdb *db, const klevdb_msg *m) {
  if (!db || !m) return 0;
  return rec_size(db->st->newver, m->key_len, m->value_len) + (int64_t)db->st->isz;
}

/* ---- reads ---- */

void klevdb_batch_free(klevdb_batch *b) {
  if (!b) return;
  free(b->msgs);
  kmap_unref(b->pin);
  memset(b, 0, sizeof(*b));
}

/* Empties b and makes room for want messages. */
static klevdb_err batch_reset(klevdb_batch *b, size_t want, klevdb_error *e) {
  b->len = 0;
  if (b->cap < want) {
    size_t cap = b->cap ? b->cap : 8;
    while (cap < want) cap *= 2;
    klevdb_msg *m = realloc(b->msgs, cap * sizeof(klevdb_msg));
    if (!m) return kerr_sys(e, ENOMEM, "read");
    b->msgs = m;
    b->cap = cap;
  }
  return KLEVDB_OK;
}

static void batch_pin(klevdb_batch *b, kmap *m) {
  if (b->pin == m) return;
  kmap_unref(b->pin);
  b->pin = kmap_ref(m);
}

static klevdb_err batch_add(klevdb_batch *b, const klevdb_msg *m, klevdb_error *e) {
  if (b->len == b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 8;
    klevdb_msg *n = realloc(b->msgs, cap * sizeof(klevdb_msg));
    if (!n) return kerr_sys(e, ENOMEM, "read");
    b->msgs = n;
    b->cap = cap;
  }
  b->msgs[b->len++] = *m;
  return KLEVDB_OK;
}

/* A read's prologue: argument checks, following other processes. */
static klevdb_err read_begin(klevdb *db, klevdb_batch *b, bool at_end) {
  if (!b) return kerr(&db->err, KLEVDB_EINVAL, "read: no batch given");
  b->len = 0;
  if (db->st->ro) return follow(db->st, at_end, &db->err);
  return KLEVDB_OK;
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
    klevdb_err rc = load(st, s, e);
    if (rc) return rc;
    if (offset == KLEVDB_OFFSET_NEWEST) {
      b->next_offset = last ? st->next : seg_next(s, st->isz);
      return KLEVDB_OK;
    }
    long i = offset == KLEVDB_OFFSET_OLDEST ? (s->n ? 0 : IX_EMPTY)
                                            : items_seek(seg_items(s), s->n, st->isz, offset);
    if (i < 0) {
      if (last) {
        if (offset <= st->next) {
          b->next_offset = st->next;
          return KLEVDB_OK;
        }
        return kerr(e, KLEVDB_EINVALID_OFFSET,
                    "consume %lld: invalid offset: offset after end (next offset is %lld)",
                    (long long)offset, (long long)st->next);
      }
      si++;
      offset = from >= 0 ? from : KLEVDB_OFFSET_OLDEST;
      continue;
    }
    size_t count = s->n - (size_t)i;
    if (count > max) count = max;
    if ((rc = batch_reset(b, count, e))) return rc;
    if (flags & KLEVDB_READ_OFFSETS) {
      const uint8_t *items = seg_items(s) + (size_t)i * st->isz;
      for (size_t k = 0; k < count; k++)
        b->msgs[k] = (klevdb_msg){.offset = item_off(items + k * st->isz), .time = KLEVDB_TIME_UNSET};
    } else {
      for (size_t k = 0; k < count; k++)
        if ((rc = seg_read(st, s, (size_t)i + k, &b->msgs[k], e))) return rc;
    }
    b->len = count;
    b->next_offset = b->msgs[count - 1].offset + 1;
    batch_pin(b, s->log);
    return KLEVDB_OK;
  }
}

/* Segment for a consume (the one Go's Consume picks). */
static size_t pick_consume(const store *st, int64_t offset) {
  if (offset == KLEVDB_OFFSET_OLDEST) return 0;
  if (offset == KLEVDB_OFFSET_NEWEST) return st->nsegs - 1;
  return seg_find(st, offset);
}

/* A read that fails leaves an empty batch that points nowhere. */
static void batch_fail(klevdb_batch *b) {
  if (!b) return;
  b->len = 0;
  b->next_offset = KLEVDB_OFFSET_INVALID;
}

/* Newest first from offset (klevdb_read with KLEVDB_READ_BACKWARD), under lk. */
static klevdb_err consume_back(store *st, int64_t offset, size_t max, int flags,
                               klevdb_batch *b, klevdb_error *e) {
  b->next_offset = -1;
  if (offset < 0 && offset != KLEVDB_OFFSET_NEWEST) return KLEVDB_OK;
  if (offset >= st->next) offset = KLEVDB_OFFSET_NEWEST;
  size_t si = offset == KLEVDB_OFFSET_NEWEST ? st->nsegs - 1 : seg_find(st, offset);
  for (;;) {
    seg *s = st->segs[si];
    klevdb_err rc = load(st, s, e);
    if (rc) return rc;
    const uint8_t *items = seg_items(s);
    long i = -1;
    if (s->n && offset == KLEVDB_OFFSET_NEWEST) {
      i = (long)s->n - 1;
    } else if (s->n && offset >= item_off(items)) {
      long j = items_seek(items, s->n, st->isz, offset + 1);
      i = j == IX_AFTER_END ? (long)s->n - 1 : j - 1;
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
      else if ((rc = seg_read(st, s, at, &b->msgs[k], e)))
        return rc;
    }
    b->len = count;
    b->next_offset = b->msgs[count - 1].offset - 1;
    batch_pin(b, s->log);
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
    if (st->ro && (offset == KLEVDB_OFFSET_NEWEST || offset >= st->next) && (rc = follow(st, true, e)))
      return rc;
    pthread_rwlock_rdlock(&st->lk);
    rc = consume_back(st, offset, max_count, flags, b, e);
    pthread_rwlock_unlock(&st->lk);
    maybe_sweep(st);
    if (rc) batch_fail(b);
    return rc;
  }
  pthread_rwlock_rdlock(&st->lk);
  if (st->ro && (offset == KLEVDB_OFFSET_NEWEST || offset >= st->next)) {
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
    /* A key's messages may be far apart: segments passed are not kept. */
    if ((rc = peek(st, s, &v, e))) break;
    if (offset == KLEVDB_OFFSET_NEWEST) {
      b->next_offset = si + 1 == st->nsegs ? st->next : seg_next(v, st->isz);
      unpeek(s, v);
      break;
    }
    const uint8_t *items = seg_items(v);
    long i = offset == KLEVDB_OFFSET_OLDEST ? 0 : items_seek(items, v->n, st->isz, offset);
    for (size_t k = i < 0 ? v->n : (size_t)i; k < v->n && b->len < max_count; k++) {
      const uint8_t *it = items + k * st->isz;
      if (item_hash(it, st->params) != h || item_off(it) < floor) continue;
      klevdb_msg m;
      if ((rc = seg_read(st, v, k, &m, e))) break;
      if (m.key_len != key_len || (key_len && memcmp(m.key, key, key_len) != 0)) continue;
      if ((rc = batch_add(b, &m, e))) break;
    }
    if (!rc && b->len) {
      b->next_offset = b->msgs[b->len - 1].offset + 1;
      batch_pin(b, v->log);
    }
    unpeek(s, v);
    if (rc || b->len) break;
    if (si + 1 == st->nsegs) {
      b->next_offset = st->next;
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

/* Makes m (read from segment s) the batch's one message. */
static klevdb_err batch_one(klevdb_batch *b, const klevdb_msg *m, seg *s, klevdb_error *e) {
  klevdb_err rc = batch_reset(b, 1, e);
  if (rc) return rc;
  b->msgs[0] = *m;
  b->len = 1;
  b->next_offset = m->offset + 1;
  batch_pin(b, s->log);
  return KLEVDB_OK;
}

/* Reads item i of segment s into a one-message batch. */
static klevdb_err get_item(store *st, seg *s, size_t i, klevdb_batch *b, klevdb_error *e) {
  klevdb_msg m;
  klevdb_err rc = seg_read(st, s, i, &m, e);
  return rc ? rc : batch_one(b, &m, s, e);
}

/* An offset the index does not have: before saying "not found", check
** that the items around where it would be hold the records they name, so
** that a damaged index is reported as such and not as a missing message. */
static klevdb_err verify_around(store *st, seg *s, int64_t offset, klevdb_error *e) {
  if (s->n == 0) return KLEVDB_OK;
  long j = items_seek(seg_items(s), s->n, st->isz, offset);
  size_t at = j < 0 ? s->n : (size_t)j;
  klevdb_msg m;
  for (size_t k = at > 0 ? at - 1 : 0; k <= at && k < s->n; k++) {
    klevdb_err rc = seg_read(st, s, k, &m, e);
    if (rc) return rc;
  }
  return KLEVDB_OK;
}

/* Get by offset (Go's Get) under lk, with differences D3: the newest
** message is found even when the head is empty. */
static klevdb_err get_locked(store *st, int64_t offset, klevdb_batch *b, klevdb_error *e) {
  klevdb_err rc;
  if (offset == KLEVDB_OFFSET_NEWEST) {
    for (size_t si = st->nsegs; si-- > 0;) {
      seg *s = st->segs[si];
      if ((rc = load(st, s, e))) return rc;
      if (s->n) return get_item(st, s, s->n - 1, b, e);
    }
    return kerr(e, KLEVDB_EINVALID_OFFSET, "get newest: invalid offset: the log is empty");
  }
  if (offset == KLEVDB_OFFSET_OLDEST) {
    for (size_t si = 0; si < st->nsegs; si++) {
      seg *s = st->segs[si];
      if ((rc = load(st, s, e))) return rc;
      if (s->n) return get_item(st, s, 0, b, e);
    }
    return kerr(e, KLEVDB_EINVALID_OFFSET, "get oldest: invalid offset: the log is empty");
  }
  if (offset < st->segs[0]->base) {
    if (st->segs[0]->base == 0)
      return kerr(e, KLEVDB_EINVALID_OFFSET, "get %lld: invalid offset: get relative offset",
                  (long long)offset);
    return kerr(e, KLEVDB_ENOTFOUND, "get %lld: not found: offset before start", (long long)offset);
  }
  if (offset >= st->next)
    return kerr(e, KLEVDB_EINVALID_OFFSET, "get %lld: invalid offset: offset after end (next offset is %lld)",
                (long long)offset, (long long)st->next);
  size_t si = seg_find(st, offset);
  seg *s = st->segs[si];
  if ((rc = load(st, s, e))) return rc;
  long i = items_find(seg_items(s), s->n, st->isz, offset);
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

/* The key table covers every segment: a key it lacks is in none. */
static bool kt_complete(const store *st) {
  return st->nsegs == 0 || st->kt_lo <= st->segs[0]->base;
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
  seg *s = st->segs[lo - 1], *v;
  klevdb_err rc = peek(st, s, &v, e);
  if (rc) return rc;
  const uint8_t *items = seg_items(v);
  for (size_t i = 0; i < v->n; i++) {
    const uint8_t *it = items + i * st->isz;
    if (!kt_put(&st->kt, item_hash(it, st->params), item_off(it), kt_same, st)) {
      kt_free(&st->kt);
      st->kt_state = -1;
      unpeek(s, v);
      return KLEVDB_OK;
    }
  }
  unpeek(s, v);
  st->kt_lo = s->base;
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
    long i = items_find(seg_items(s), s->n, st->isz, off);
    if (i >= 0) {
      klevdb_msg m;
      if ((rc = seg_read(st, s, (size_t)i, &m, e))) return rc;
      if (key_eq(&m, key, len)) return batch_one(b, &m, s, e);
    }
  }
  for (size_t si = st->nsegs; si-- > 0;) {
    seg *s = st->segs[si], *v;
    if ((rc = peek(st, s, &v, e))) return rc;
    const uint8_t *items = seg_items(v);
    for (size_t i = v->n; !rc && i-- > 0;) {
      if (item_hash(items + i * st->isz, st->params) != h) continue;
      klevdb_msg m;
      if ((rc = seg_read(st, v, i, &m, e))) break;
      if (key_eq(&m, key, len)) {
        rc = batch_one(b, &m, v, e);
        unpeek(s, v);
        return rc;
      }
    }
    unpeek(s, v);
    if (rc) return rc;
  }
  return kerr(e, KLEVDB_ENOTFOUND, "get by key: not found: key not found");
}

static klevdb_err get_by_key_once(klevdb *db, const void *key, size_t key_len, klevdb_batch *b) {
  BEGIN(db);
  batch_fail(b);
  store *st = db->st;
  klevdb_error *e = &db->err;
  if (!(st->params & IDX_KEYS)) return kerr(e, KLEVDB_ENOINDEX, "get by key: no index by key");
  if (key_len && !key) return kerr(e, KLEVDB_EINVAL, "get by key: no key bytes given");
  klevdb_err rc = read_begin(db, b, true);
  if (rc) return rc;
  uint64_t h = klevdb_key_hash(key, key_len);
  pthread_rwlock_rdlock(&st->lk);
  /* Until the table answers (it has the key, or covers every segment),
  ** grow it by a segment under the write lock and look again. */
  while (st->kt_state == 0 || (st->kt_state == 1 && !kt_complete(st) && kt_get(&st->kt, h, kt_same, st) < 0)) {
    pthread_rwlock_unlock(&st->lk);
    pthread_rwlock_wrlock(&st->lk);
    if (st->kt_state == 0) {
      st->kt_state = 1;
      st->kt_lo = INT64_MAX;
    }
    if (st->kt_state == 1) rc = kt_extend(st, e);
    pthread_rwlock_unlock(&st->lk);
    if (rc) return rc;
    pthread_rwlock_rdlock(&st->lk);
  }
  rc = get_by_key_locked(st, key, key_len, h, b, e);
  pthread_rwlock_unlock(&st->lk);
  maybe_sweep(st);
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
          if (s->n) t = item_ts(seg_items(s), st->params);
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
          if (s->n) t = item_ts(seg_items(s) + (s->n - 1) * st->isz, st->params);
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
    if (s->n) return get_item(st, s, 0, b, e);
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
  long i = items_time(seg_items(s), s->n, st->isz, st->params, ts);
  if (i >= 0) return get_item(st, s, (size_t)i, b, e);
  return first_from(st, lo + 1, ts, b, e);
}

static klevdb_err get_by_time_once(klevdb *db, int64_t time_us, klevdb_batch *b) {
  BEGIN(db);
  batch_fail(b);
  store *st = db->st;
  if (!(st->params & IDX_TIMES)) return kerr(&db->err, KLEVDB_ENOINDEX, "get by time: no index by time");
  klevdb_err rc = read_begin(db, b, true);
  if (rc) return rc;
  pthread_rwlock_rdlock(&st->lk);
  rc = get_by_time_locked(st, time_us, b, &db->err);
  pthread_rwlock_unlock(&st->lk);
  maybe_sweep(st);
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
  *offset_out = st->next;
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
    if (s->n == 0) continue;
    const uint8_t *items = seg_items(s);
    long i = items_time(items, s->n, st->isz, st->params, time_us);
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
  if (!db) return;
  store *st = db->st;
  __atomic_store_n(&db->interrupted, 1, __ATOMIC_SEQ_CST);
  pthread_mutex_lock(&st->cvmu);
  pthread_cond_broadcast(&st->cv);
  pthread_mutex_unlock(&st->cvmu);
}

/* ---- stat, bounds, sync, gc, backup ---- */

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
      rc = seg_stat(st, s, &msgs, &bytes, &db->err);
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
      if ((rc = seg_stat(st, s, &msgs, &bytes, &db->err))) break;
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
  out->next_offset = st->next;
  rc = get_locked(st, KLEVDB_OFFSET_OLDEST, &b, &db->err);
  if (!rc) {
    out->oldest_offset = b.msgs[0].offset;
    out->oldest_time = b.msgs[0].time;
    rc = get_locked(st, KLEVDB_OFFSET_NEWEST, &b, &db->err);
    if (!rc) {
      out->newest_offset = b.msgs[0].offset;
      out->newest_time = b.msgs[0].time;
    }
  } else if (rc == KLEVDB_EINVALID_OFFSET) {
    rc = KLEVDB_OK;   /* empty */
    db->err.code = KLEVDB_OK;
  }
  pthread_rwlock_unlock(&st->lk);
  klevdb_batch_free(&b);
  maybe_sweep(st);
  return rc;
}

klevdb_err klevdb_bounds_get(klevdb *db, klevdb_bounds *out) {
  RO_RETRY(db, bounds_once(db, out));
}

klevdb_err klevdb_sync(klevdb *db, int64_t *next_out) {
  BEGIN(db);
  store *st = db->st;
  klevdb_err rc = KLEVDB_OK;
  if (st->ro) {
    rc = follow(st, true, &db->err);
  } else {
    pthread_mutex_lock(&st->wmu);
    seg *h = head(st);
    /* After a sync the log is exactly what Go would have written; the
    ** head's index stays at its header until the head is sealed. */
    head_trim(st, h);
    rc = head_gone(st, h, "sync", &db->err);
    if (!rc && h->fd >= 0 && fdatasync(h->fd) < 0)
      rc = kerr_sys(&db->err, errno, "sync segment %lld", (long long)h->base);
    pthread_mutex_unlock(&st->wmu);
  }
  if (next_out) *next_out = rc ? KLEVDB_OFFSET_INVALID : __atomic_load_n(&st->next, __ATOMIC_SEQ_CST);
  return rc;
}

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

/* ---- delete ---- */

typedef struct {
  const int64_t *offs;   /* sorted, for Go's Delete */
  size_t n;
  const klevdb_range *ranges;  /* sorted by from, for delete_ranges */
  size_t nranges;
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

static bool drop_ranges(void *ctx, int64_t off) {
  const dropset *d = ctx;
  size_t lo = 0, hi = d->nranges;
  while (lo < hi) {   /* last range with from <= off */
    size_t mid = lo + (hi - lo) / 2;
    if (d->ranges[mid].from <= off) lo = mid + 1;
    else hi = mid;
  }
  return lo > 0 && off < d->ranges[lo - 1].to;
}

/* Replaces segment si by what survives the drop set (Go's Delete). Caller
** holds wmu. Adds to *out and, if offs is set, appends dropped offsets. */
static klevdb_err delete_in(store *st, size_t si, drop_fn drop, void *ctx, klevdb_deleted *out,
                            kbuf *offs, klevdb_error *e) {
  seg *s = st->segs[si];
  bool is_head = si + 1 == st->nsegs && !st->ro;
  klevdb_err rc = load(st, s, e);
  if (rc) return rc;
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
  for (size_t i = 0; i < s->n; i++) {
    const uint8_t *it = items + i * st->isz;
    int64_t off = item_off(it);
    if (!drop(ctx, off)) continue;
    if (st->kt_state == 1 && !kt_stale && kt_get(&st->kt, item_hash(it, st->params), kt_same, st) == off)
      kt_stale = true;
    dropped++;
    size += seg_rec_len(st, s, i) + (int64_t)st->isz;
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
    rc = seg_rewrite(st, s, drop, ctx, tmp_log, tmp_idx, PATH_CAP, &kept, &first, e);
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
  int64_t carry_ts = st->last_ts;
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
      st->last_ts = carry_ts;
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
  if (kt_stale) {
    kt_free(&st->kt);
    st->kt_state = 0;
  }
  tsmin_stale(st);
  pthread_rwlock_unlock(&st->lk);
  seg_free(s);
  out->count += (int64_t)dropped;
  out->size += size;
  return rc;
}

/* Gives back the space the writer holds ahead, for a delete on a full
** disk: the head's room allocated ahead (only close gave it back, so a
** trim failed until a reopen) and the spare files of the next head (a
** marker needs a little space before a delete frees any). Not on every
** delete: cutting the head's file under a reader that scans its tail is
** what close and sync do, rarely. */
static void room_back(store *st) {
  head_trim(st, head(st));
  spare_drop(st);
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
  txn_wait(st, db);
  if (head(st)->fd < 0) {
    rc = kerr(e, KLEVDB_ECLOSED, "delete: store is closed");
  } else if (sorted[0] < st->segs[0]->base) {
    rc = kerr(e, KLEVDB_ENOTFOUND, "delete %lld: not found: offset before start", (long long)sorted[0]);
  } else {
    dropset d = {sorted, n, NULL, 0};
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

/* Deletes the ranges r[0..k) (sorted, merged, below the next offset),
** segment by segment, oldest first; caller holds wmu. A delete of more
** than one segment is all or nothing across a crash: its ranges are on
** disk before the first segment changes, and open finishes it. */
static klevdb_err delete_ranges_locked(store *st, const klevdb_range *r, size_t k,
                                       klevdb_deleted *res, klevdb_error *e) {
  if (!k) return KLEVDB_OK;
  dropset d = {NULL, 0, r, k};
  size_t touched = 0;
  for (size_t si = seg_find(st, r[0].from); si < st->nsegs && touched < 2; si++) {
    if (st->segs[si]->base >= r[k - 1].to) break;
    if (seg_touched(st, si, r, k)) touched++;
  }
  bool marked = touched > 1;
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
  }
  /* A delete that failed before any segment changed never began; one that
  ** failed later is finished by the next open. */
  if (marked && (!rc || res->count == before)) ranges_unmark(st->dir, st->opts.auto_sync);
  return rc;
}

/* Finishes a delete of several segments that a crash (at open) or an
** error after it began (at the next delete) interrupted. */
static klevdb_err delete_finish(store *st, klevdb_error *e) {
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
  txn_wait(st, db);
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
  if (head(st)->fd < 0) rc = kerr(e, KLEVDB_ECLOSED, "delete: store is closed");
  else if (!(rc = delete_finish(st, e))) rc = delete_ranges_locked(st, r, k, &res, e);
  peers_stale(st);
  pthread_mutex_unlock(&st->wmu);
  free(r);
  if (out) *out = res;
  return rc;
}
