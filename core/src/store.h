/*
** store.h - the store layer: the in-memory shape of an open store, and
** what the files of the store layer (store.c, registry.c, follow.c, txn.c,
** publish.c, read.c, lookup.c, delete.c) share. It calls down into the
** segment layer (segment.h), which never calls back up.
**
** Locks. Each guards:
**   registry_mu (registry.c)  the registry, each store's refs; peers is set
**                             under it.
**   st->wmu                   the writer: publish, rollover, delete, sync,
**                             backup, gc, close; the head writer (st->hd and
**                             the head's files), txn_owner and deleting
**                             (with txn_cv), doubt. A delete of several
**                             segments lets publishes take it between two
**                             segments (st->deleting keeps other writers
**                             but publish out meanwhile). A delete reads the segment it
**                             rewrites under wmu alone, so unmapping (gc,
**                             sweep) takes wmu too.
**   st->lk (rwlock)           the segment list (segs, bases, nsegs), the
**                             head's items buffer and log mapping (moved
**                             only under lk for writing; a publish that
**                             needs neither moved adds to them under wmu
**                             alone, see seg_n), the key table (kt,
**                             kt_state, kt_lo, kt_hi); read-only stores:
**                             the whole view (follow and relist hold it
**                             for writing).
**   st->tsmu                  serializes rebuilders of tsmin/tsmax (which
**                             run under lk for reading).
**   seg->load_mu              one segment's lazy load and its summary.
**   st->cvmu (with cv)        blocking consumers' sleep; closing.
**   st->hd.spare.mu (.cv)     the spare files' state (spare.c).
**   st->rp.mu (.cv, .idle)    the reaper's queue (reaper.c).
** Lock order (take left before right, never the reverse):
**   wmu -> registry_mu;  wmu -> lk -> tsmu -> seg->load_mu;
**   wmu -> hd.spare.mu;  wmu -> cvmu;  wmu -> rp.mu.
** registry_mu is held across store_open, which takes only the new store's
** own locks, which no other thread can see yet.
**
** Atomic fields (read anywhere without a lock):
**   st->next      written by the writer (under wmu, after the head's
**                 count) or by follow (under lk); read by anyone
**                 (store_next), before a head's count when both are.
**   seg->n, seg->log_end  a head's grow under wmu alone (seg_n, seg_end);
**                 they shrink only under lk for writing.
**   st->tsmin_n   0 when the time table is stale (segment list changes,
**                 under lk); set by tsmin_build (under tsmu), release.
**   st->pubseq    bumped by publish (wake_waiters) and follow.
**   st->waiters   blocking consumers (under cvmu, read outside it).
**   st->wmu_want  publishes waiting for wmu (a delete lets them by).
**   st->loads, st->swept    seg_load counts its mappings of sealed
**                 segments; the sweep (under wmu) records where it was.
**   st->moves, st->stale, st->refreshed, st->peers   see struct store.
**   seg->loaded, seg->summed  release once the load (or summary) is whole.
**   seg->atime    relaxed: a hint for the sweep and gc.
**   db->interrupted, kmap->refs.
*/
#ifndef STORE_H
#define STORE_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/types.h>

#include "keytable.h"
#include "segment.h"

typedef struct store store;

/* What a delete dropped, freed by a background thread (reaper.c). */
typedef struct reap_item {
  void (*fn)(void *);
  void *p;
} reap_item;
typedef struct reaper {
  pthread_mutex_t mu;
  pthread_cond_t cv;        /* the thread waits for work */
  pthread_cond_t idle;      /* reaper_flush waits for the thread */
  pthread_t tid;
  bool running, stop;
  bool busy;                /* work queued or being freed */
  reap_item *v;
  size_t n, cap;
} reaper;

/* The head writer's own state (read-write stores), under wmu. publish.c
** owns it: it opens, fills, trims, seals and closes the head's files.
** The head's seg itself stays the last of the segment list, where readers
** find its items. */
struct head {
  int64_t last_ts;          /* time clamp carried across segments */
  int64_t alloc;            /* head log bytes allocated (preallocate) */
  bool no_fallocate;        /* the file system cannot: append with write() */
  kbuf wbuf;                /* a batch's records on their way to pwrite */
  spare spare;              /* the next head's files, made ahead */
};

struct store {
  char *dir;
  dev_t dev;
  ino_t ino;
  bool ro;
  int refs;                 /* handles, under the registry mutex */

  klevdb_options opts;
  int params;
  size_t isz;
  int newver;

  int lockfd;
  pthread_mutex_t wmu;      /* writers: publish, delete, sync, backup, close */
  pthread_rwlock_t lk;      /* segment list, head items, key table */

  seg **segs;
  int64_t *bases;           /* segs[i]->base, contiguous for binary search */
  size_t nsegs, capsegs;
  int64_t next;             /* next offset (atomic reads) */

  segcfg cfg;               /* what the segment layer sees (copies) */
  struct head hd;           /* the head writer (read-write stores) */
  reaper rp;                /* frees dropped segments off the locks */

  /* a handle holding the writes (klevdb_writer_lock), under wmu */
  struct klevdb *txn_owner;
  pthread_cond_t txn_cv;
  bool doubt;               /* a prepared batch is in the store, under wmu */
  /* a delete of several segments is under way, under wmu: it lets
  ** publishes by between segments, and keeps every other writer out
  ** (deletes, backup, klevdb_writer_lock) until it ends (txn_cv) */
  bool deleting;
  int wmu_want;             /* atomic: publishes waiting for wmu */

  /* time lookups: the suffix minimum of each segment's first indexed
  ** time (empty segments count as +inf), rebuilt when segments change */
  pthread_mutex_t tsmu;
  int64_t *tsmin;
  int64_t *tsmax;           /* prefix maximum of each segment's last indexed
                            ** time (time floors); the head's entry goes stale */
  size_t tsmin_n;           /* valid entries; 0 when stale (atomic) */

  /* key table, under lk */
  ktab kt;
  int kt_state;             /* 0 not started, 1 in use, -1 unusable */
  int64_t kt_lo;            /* the table covers the segments from this base
                            ** on: it grows back from the newest as needed */
  int64_t kt_hi;            /* read-write stores: ... and the offsets below
                            ** this; publish leaves the rest to the next
                            ** get by key, so that it never waits for lk */

  /* blocking consumers */
  pthread_mutex_t cvmu;
  pthread_cond_t cv;
  int waiters;              /* atomic */
  uint64_t pubseq;          /* atomic, bumped by publish and refresh */
  bool closing;
  /* Set in a child process by fork(2) (registry.c): the store is the
  ** parent's (its writer, threads and locks), so every call refuses it. */
  bool forked;

  /* mapped sealed segments: loads counts seg_load's mappings of sealed
  ** segments (atomic), swept the value at the last sweep (store.c) */
  uint64_t loads, swept;

  /* read-only stores: following another process */
  uint64_t moves;           /* atomic: bumped when files under the view
                            ** moved (a segment replaced, removed or added
                            ** by relist; a load that raced a rewrite) */
  struct timespec dir_mtime;
  int64_t refreshed;        /* coarse µs of the last refresh check */
  int stale;                /* atomic: a writer of this process changed
                            ** the files since (relist at the next read) */
  int peers;                /* read-write stores: read-only stores of the
                            ** directory in this process (atomic; set
                            ** under the registry's mutex) */
};

/* ---- txn.c, for stage.c ---- */

/* What a staged batch is built with, read when it begins. */
typedef struct stage_params {
  int64_t next, last_ts, rollover;
  int ver, params;
  bool sync;
} stage_params;
/* Checks that db may stage (it holds klevdb_writer_lock) and reads the
** store's state, which that lock keeps as it is until the commit. */
klevdb_err store_stage_begin(klevdb *db, store **st_out, stage_params *p);
/* Installs segments a stage wrote (TMP_STAGE names) as one batch starting
** at base. On failure their files stay where they were: the caller drops
** them, or keeps them for a prepared batch. */
klevdb_err store_stage_commit(klevdb *db, int64_t base, const int64_t *bases, size_t nb,
                              int64_t *next_out);
klevdb_error *store_handle_err(klevdb *db);

/* ---- prepared.c, and txn.c for it ---- */

/* True when dir holds a prepared batch (removes one half written). */
bool prepared_present(const char *dir);
/* The same without touching anything (readers). */
bool prepared_exists(const char *dir);
/* Removes what stages left (a crash while a transaction ran), but not the
** segments of the batch in doubt. At a writer's open. */
void prepared_clean(const char *dir);
/* klevdb_stage_prepare's second half: the batch of count messages at base
** is in the stage's segments segs[0..nsegs). */
klevdb_err prepared_staged(klevdb *db, int64_t base, size_t count, const int64_t *segs,
                           size_t nsegs, const klevdb_range *ranges, size_t nranges,
                           const char *txid, klevdb_prepared **out);
/* The format new segments are written in. */
void store_seg_format(klevdb *db, int *ver, int *params);
/* Checks that db may prepare (writer lock held, no batch in doubt); gives
** the store's directory and whether it syncs. */
klevdb_err store_prepare_begin(klevdb *db, const char **dir, bool *sync);
/* The same facts for resolving; *doubt (NULL: the caller will change the
** store, which read-only handles refuse) gets whether a prepared batch is
** in the store. */
klevdb_err store_prepared_dir(klevdb *db, const char **dir, bool *sync, bool *doubt);
/* Marks the store as holding a prepared batch (publish refuses) or not. */
void store_set_doubt(klevdb *db, bool doubt);
/* klevdb_publish for the prepared batch itself, which the mark lets by. */
klevdb_err store_publish_prepared(klevdb *db, const klevdb_msg *msgs, size_t n,
                                  int64_t *next_out);

/* ---- the store layer's shared pieces ---- */

#define PATH_CAP 4096

/* A handle: many may share one store (registry.c). */
struct klevdb {
  store *st;
  bool ro;
  bool resolving;           /* publishing a prepared batch (prepared.c) */
  int interrupted;          /* atomic */
  klevdb_error err;
};

/* Every API call starts here: resets the handle's error. */
#define BEGIN(db)                                       \
  do {                                                  \
    if (!(db)) return KLEVDB_EINVAL;                    \
    (db)->err.code = KLEVDB_OK;                         \
    if ((db)->st->forked) return forked_err(&(db)->err); \
  } while (0)

/* The error of a handle used in a child process after fork(2). */
klevdb_err forked_err(klevdb_error *e);

/* A read of a read-only store can meet a writer of another process
** rewriting or removing a segment between the listing and the reading of
** its files (a vanished file, a log and index that do not match). Such a
** read lists the segments again and starts over, a few times, if files
** under its view moved meanwhile (st->moves) or a writer holds the lock
** (it may be between a rewrite's renames and removals): a failure on files
** that stayed where they were with no writer is damage, reported at once. */
#define RO_TRIES 8

static inline bool ro_transient(klevdb_err rc) {
  return rc == KLEVDB_EIO || rc == KLEVDB_ECORRUPT_LOG || rc == KLEVDB_ECORRUPT_INDEX;
}

/* A read API call: call, tried again while ro_again says so. */
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

static inline seg *head(store *st) { return st->segs[st->nsegs - 1]; }
static inline int64_t store_next(const store *st) { return __atomic_load_n(&st->next, __ATOMIC_ACQUIRE); }

/* How many of the head's n items a reader that saw next offset next may
** return: a publish makes its items visible (the head's count) before it
** moves the next offset, and a reader that returned an item at or past
** the next offset it saw would send its caller past the end, where the
** next read, seeing the next offset not moved yet, fails. */
static inline size_t seg_n_below(const store *st, const seg *s, size_t n, int64_t next) {
  if (n == 0 || item_off(seg_items(s) + (n - 1) * st->isz) < next) return n;
  long j = items_seek(seg_items(s), n, st->isz, next);
  return j >= 0 ? (size_t)j : n;
}

/* Time lookups rebuild their table of first times on next use. */
static inline void tsmin_stale(store *st) { __atomic_store_n(&st->tsmin_n, 0, __ATOMIC_RELEASE); }

/* ---- on every read's path: inline ---- */

/* A sweep looks for segments to unmap once every SWEEP_EVERY mappings. */
#define SWEEP_EVERY 128

/* Coarse monotonic microseconds (segment use times, follow's pacing). */
static inline int64_t coarse_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Index of the segment with the greatest base <= offset (0 if none). */
static inline size_t seg_find(const store *st, int64_t offset) {
  const int64_t *b = st->bases;
  size_t lo = 0, hi = st->nsegs;
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (b[mid] <= offset) lo = mid;
    else hi = mid;
  }
  return lo;
}

/* The base of the segment after s in the list (INT64_MAX for the last one,
** or one not in the list yet: a new head). Caller holds lk or wmu. */
int64_t seg_upper(const store *st, const seg *s);

/* seg_load for a segment of the list (or a private copy of one). */
static inline klevdb_err seg_load_in(store *st, seg *s, klevdb_error *e) {
  /* Loaded: no need for upper (a search of the list). */
  if (__atomic_load_n(&s->loaded, __ATOMIC_ACQUIRE)) return KLEVDB_OK;
  return seg_load(&st->cfg, s, seg_upper(st, s), e);
}

/* seg_load_in, noting the segment's use (sweep, gc). */
static inline klevdb_err load(store *st, seg *s, klevdb_error *e) {
  int64_t t = coarse_us();
  if (__atomic_load_n(&s->atime, __ATOMIC_RELAXED) != t)
    __atomic_store_n(&s->atime, t, __ATOMIC_RELAXED);
  return seg_load_in(st, s, e);
}

/* After a call that may have mapped segments (no lock held). The writer
** lock too, as for gc: a delete reads its segment without holding lk. */
static inline bool sweep_due(store *st) {
  return __atomic_load_n(&st->loads, __ATOMIC_RELAXED) - __atomic_load_n(&st->swept, __ATOMIC_RELAXED) >=
         SWEEP_EVERY;
}

/* The sweep of a caller that holds wmu already (a delete through many
** segments maps each one). */
void sweep_wmu(store *st);

static inline void maybe_sweep(store *st) {
  if (!sweep_due(st)) return;
  pthread_mutex_lock(&st->wmu);
  sweep_wmu(st);
  pthread_mutex_unlock(&st->wmu);
}

static inline uint64_t ro_moves(const klevdb *db) {
  return db->st->ro ? __atomic_load_n(&db->st->moves, __ATOMIC_SEQ_CST) : 0;
}

/* ---- store.c: the segment list, open and close ---- */

bool segs_changed(store *st);
klevdb_err segs_push(store *st, seg *s, klevdb_error *e);
klevdb_err peek(store *st, seg *s, seg **view, klevdb_error *e);
void unpeek(seg *s, seg *view);
klevdb_err summary(store *st, seg *s, klevdb_error *e);
bool kt_same(void *ctx, int64_t offset, uint64_t hash);
/* Opens the store in dir (not registered yet). *raced: a read-only open
** that failed saw files move under it (worth another try). */
klevdb_err store_open(const char *dir, const klevdb_options *o, store **out, bool *raced,
                      klevdb_error *e);
/* The last handle went: seals the head, waits out blocked readers, frees. */
void store_close(store *st);

/* ---- registry.c ---- */

/* Tells this process's read-only stores of the directory that the writer
** committed (their next read looks at the files). Caller holds wmu. */
void peers_stale(store *st);

/* ---- follow.c: read-only stores ---- */

/* Brings a read-only store up to date with the files. force: the caller's
** answer depends on the end of the log. */
klevdb_err follow(store *st, bool force, klevdb_error *e);
/* After a failed try of a read (RO_RETRY): whether to try again. */
bool ro_again(klevdb *db, klevdb_err *rc, int *tries, uint64_t *moves);

/* ---- txn.c ---- */

/* Waits while another handle holds the writes. Caller holds wmu. */
static inline void txn_wait(store *st, klevdb *db) {
  while (st->txn_owner && st->txn_owner != db) pthread_cond_wait(&st->txn_cv, &st->wmu);
}

/* txn_wait for writers other than publish: also while a delete of
** several segments lets publishes by (it holds the store's state for a
** moment without wmu). */
static inline void writer_wait(store *st, klevdb *db) {
  while ((st->txn_owner && st->txn_owner != db) || st->deleting)
    pthread_cond_wait(&st->txn_cv, &st->wmu);
}

/* Waits out a delete of several segments (backup). Caller holds wmu. */
static inline void delete_wait(store *st) {
  while (st->deleting) pthread_cond_wait(&st->txn_cv, &st->wmu);
}

/* wmu for a publish: counted, so that a long delete lets it by. */
static inline void wmu_lock_publish(store *st) {
  __atomic_add_fetch(&st->wmu_want, 1, __ATOMIC_SEQ_CST);
  pthread_mutex_lock(&st->wmu);
  __atomic_sub_fetch(&st->wmu_want, 1, __ATOMIC_SEQ_CST);
}

/* The error of a write refused while a prepared batch is in doubt. */
klevdb_err in_doubt(store *st, klevdb_error *e, const char *what);

/* ---- publish.c ---- */

/* Head of a read-write store: open (creating files) or create new. */
klevdb_err head_open(store *st, seg *s, bool create, klevdb_error *e);
/* Creates an empty segment's files at base (if there are none). */
klevdb_err seg_create_empty(store *st, int64_t base, klevdb_error *e);
/* Writes the head's whole .index (which holds only its header while the
** head is written): the head is being sealed or closed. */
klevdb_err head_seal(store *st, seg *h, bool sync, klevdb_error *e);
/* Closes the head's log (fsyncs it first if sync); head_seal first. */
void head_close(store *st, seg *s, bool sync);
/* Cuts the head log back to its records: appends copy into the mapping of
** space allocated ahead, which must not outlive the writer. */
void head_trim(store *st, seg *s);

/* Wakes blocking consumers and this process's readers after a commit. */
void wake_waiters(store *st);
/* Puts batch segments (written under temporary names tmp) in place after
** the head, and into the segment list. Caller holds wmu. */
klevdb_err install_batch(store *st, const int64_t *bases, size_t nb, const char *tmp,
                         klevdb_error *e);

/* ---- read.c's batches, shared with lookup.c: inline, on every read's path ---- */

/* Empties b and makes room for want messages. */
static inline klevdb_err batch_reset(klevdb_batch *b, size_t want, klevdb_error *e) {
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

/* ---- reaper.c ---- */

void reaper_init(reaper *rp);
/* Has fn(p) run on the reaper's thread (started on first use), or at
** once if it cannot be. */
void reap(reaper *rp, void (*fn)(void *), void *p);
/* kmap_free for reap(). */
void kmap_free_v(void *m);
/* Waits until everything queued is freed (a full disk wants the space). */
void reaper_flush(reaper *rp);
/* Frees what is queued, stops the thread (close). */
void reaper_destroy(reaper *rp);

/* The batch's pin moves to m. A reader holds lk here: if the mapping it
** let go of was the last of a segment a delete dropped, its munmap (where
** the kernel frees the file) goes to the reaper's thread. */
static inline void batch_pin(store *st, klevdb_batch *b, kmap *m) {
  if (b->pin == m) return;
  if (kmap_drop(b->pin)) reap(&st->rp, kmap_free_v, b->pin);
  b->pin = kmap_ref(m);
}

static inline klevdb_err batch_add(klevdb_batch *b, const klevdb_msg *m, klevdb_error *e) {
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

/* Makes m (read from segment s) the batch's one message. */
static inline klevdb_err batch_one(store *st, klevdb_batch *b, const klevdb_msg *m, seg *s,
                                   klevdb_error *e) {
  klevdb_err rc = batch_reset(b, 1, e);
  if (rc) return rc;
  b->msgs[0] = *m;
  b->len = 1;
  b->next_offset = m->offset + 1;
  batch_pin(st, b, s->log);
  return KLEVDB_OK;
}

/* A read that fails leaves an empty batch that points nowhere. */
static inline void batch_fail(klevdb_batch *b) {
  if (!b) return;
  b->len = 0;
  b->next_offset = KLEVDB_OFFSET_INVALID;
}

/* A read's prologue: argument checks, following other processes. */
static inline klevdb_err read_begin(klevdb *db, klevdb_batch *b, bool at_end) {
  if (!b) return kerr(&db->err, KLEVDB_EINVAL, "read: no batch given");
  b->len = 0;
  if (db->st->ro) return follow(db->st, at_end, &db->err);
  return KLEVDB_OK;
}

/* Segment for a consume (the one Go's Consume picks). */
static inline size_t pick_consume(const store *st, int64_t offset) {
  if (offset == KLEVDB_OFFSET_OLDEST) return 0;
  if (offset == KLEVDB_OFFSET_NEWEST) return st->nsegs - 1;
  return seg_find(st, offset);
}

/* Reads item i of segment s into a one-message batch. */
static inline klevdb_err get_item(store *st, seg *s, size_t i, klevdb_batch *b, klevdb_error *e) {
  klevdb_msg m;
  klevdb_err rc = seg_read(&st->cfg, s, i, &m, e);
  return rc ? rc : batch_one(st, b, &m, s, e);
}

/* ---- delete.c ---- */

/* Finishes a delete of several segments that a crash (at open) or an
** error after it began (at the next delete) interrupted. Caller holds wmu
** (or is open). */
klevdb_err delete_finish(store *st, klevdb_error *e);

#endif
