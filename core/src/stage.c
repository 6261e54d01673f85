/*
** stage.c - a batch written while it is collected. A SQL transaction that
** inserts millions of rows hands them over as they come; each full segment
** goes to a background thread that writes it under temporary names, so the
** commit only renames files into place (batch.c's marker makes that all or
** nothing) instead of writing hundreds of megabytes at once.
*/
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fault.h"
#include "kdb.h"
#include "store.h"

/* Sealed segments waiting for the writer thread: enough to keep it busy
** while the next one fills, few enough to bound the memory they hold
** (QMAX, or fewer when segments are big: about QBYTES in all). */
#define QMAX 4
#define QBYTES ((int64_t)32 << 20)

/* A segment handed to the thread, as the commit and a truncate need it. */
typedef struct sealed {
  int64_t base;
  size_t n;
  int64_t ts0;              /* index time clamp before its first record */
} sealed;

struct klevdb_stage {
  klevdb *db;
  store *st;
  stage_params p;           /* p.next: offset of the first message */
  size_t n;                 /* messages added */
  int64_t last_ts;          /* index time clamp after the last message */
  segbuild cur;             /* the segment being filled */
  int64_t cur_ts0;
  sealed *segs;             /* handed to the thread, in offset order */
  size_t nsegs, capsegs;

  pthread_mutex_t mu;
  pthread_cond_t cv;
  segbuild q[QMAX];         /* waiting to be written, a ring */
  size_t qhead, qlen, qmax;
  segbuild spare[QMAX];     /* written ones, their buffers to reuse */
  size_t nspare;
  bool busy, stop;
  pthread_t th;
  bool th_started;
  klevdb_err err;           /* the first failure of the thread */
  klevdb_error everr;
};

static void *writer(void *arg) {
  klevdb_stage *sg = arg;
  pthread_mutex_lock(&sg->mu);
  for (;;) {
    while (sg->qlen == 0 && !sg->stop) pthread_cond_wait(&sg->cv, &sg->mu);
    if (sg->qlen == 0) break;
    segbuild b = sg->q[sg->qhead];
    sg->qhead = (sg->qhead + 1) % QMAX;
    sg->qlen--;
    sg->busy = true;
    bool failed = sg->err != KLEVDB_OK;
    pthread_mutex_unlock(&sg->mu);
    klevdb_error e;
    /* After a failure the rest is not written: the stage is lost anyway. */
    klevdb_err rc = failed ? KLEVDB_OK : segbuild_write(sg->st->dir, &b, TMP_STAGE, sg->p.sync, &e);
    pthread_mutex_lock(&sg->mu);
    if (rc && !sg->err) {
      sg->err = rc;
      sg->everr = e;
    }
    if (sg->nspare < sg->qmax) sg->spare[sg->nspare++] = b;
    else segbuild_free(&b);
    sg->busy = false;
    pthread_cond_broadcast(&sg->cv);
  }
  pthread_mutex_unlock(&sg->mu);
  return NULL;
}

/* Waits until the thread has written everything queued; returns (and
** makes the handle's) the first failure. */
static klevdb_err drain(klevdb_stage *sg) {
  pthread_mutex_lock(&sg->mu);
  while (sg->qlen || sg->busy) pthread_cond_wait(&sg->cv, &sg->mu);
  klevdb_err rc = sg->err;
  if (rc) *store_handle_err(sg->db) = sg->everr;
  pthread_mutex_unlock(&sg->mu);
  return rc;
}

static void stop_writer(klevdb_stage *sg) {
  if (!sg->th_started) return;
  pthread_mutex_lock(&sg->mu);
  sg->stop = true;
  pthread_cond_broadcast(&sg->cv);
  pthread_mutex_unlock(&sg->mu);
  pthread_join(sg->th, NULL);
  sg->th_started = false;
}

/* Starts an empty segment at offset base, reusing written buffers. */
static klevdb_err open_segment(klevdb_stage *sg, int64_t base, int64_t ts0) {
  pthread_mutex_lock(&sg->mu);
  if (sg->nspare && !sg->cur.log.p) sg->cur = sg->spare[--sg->nspare];
  pthread_mutex_unlock(&sg->mu);
  sg->cur_ts0 = ts0;
  return segbuild_start(&sg->cur, sg->p.ver, sg->p.params, base, store_handle_err(sg->db));
}

/* Hands the current segment to the thread and opens the next. */
static klevdb_err seal(klevdb_stage *sg) {
  klevdb_error *e = store_handle_err(sg->db);
  if (sg->nsegs == sg->capsegs) {
    size_t cap = sg->capsegs ? sg->capsegs * 2 : 64;
    sealed *s = realloc(sg->segs, cap * sizeof(*s));
    if (!s) return kerr_sys(e, ENOMEM, "stage");
    sg->segs = s;
    sg->capsegs = cap;
  }
  if (!sg->th_started) {
    int err = pthread_create(&sg->th, NULL, writer, sg);
    if (err) return kerr_sys(e, err, "stage: start the writer thread");
    sg->th_started = true;
  }
  sg->segs[sg->nsegs++] = (sealed){sg->cur.base, sg->cur.n, sg->cur_ts0};
  int64_t next = sg->cur.base + (int64_t)sg->cur.n;
  pthread_mutex_lock(&sg->mu);
  while (sg->qlen == sg->qmax) pthread_cond_wait(&sg->cv, &sg->mu);
  sg->q[(sg->qhead + sg->qlen) % QMAX] = sg->cur;
  sg->qlen++;
  klevdb_err failed = sg->err;
  if (failed) *e = sg->everr;
  pthread_cond_broadcast(&sg->cv);
  pthread_mutex_unlock(&sg->mu);
  memset(&sg->cur, 0, sizeof(sg->cur));
  if (failed) return failed;
  return open_segment(sg, next, sg->last_ts);
}

static void stage_free(klevdb_stage *sg) {
  stop_writer(sg);
  segbuild_free(&sg->cur);
  for (size_t i = 0; i < sg->qlen; i++) segbuild_free(&sg->q[(sg->qhead + i) % QMAX]);
  for (size_t i = 0; i < sg->nspare; i++) segbuild_free(&sg->spare[i]);
  free(sg->segs);
  pthread_cond_destroy(&sg->cv);
  pthread_mutex_destroy(&sg->mu);
  free(sg);
}

/* Removes the temporary files of sealed segments from, on. */
static void discard_from(klevdb_stage *sg, size_t from) {
  for (size_t i = from; i < sg->nsegs; i++) batch_discard(sg->st->dir, &sg->segs[i].base, 1, TMP_STAGE);
  sg->nsegs = from;
}

klevdb_err klevdb_stage_begin(klevdb *db, klevdb_stage **out) {
  if (!out) return KLEVDB_EINVAL;
  *out = NULL;
  klevdb_stage *sg = calloc(1, sizeof(*sg));
  if (!sg) return db ? kerr_sys(store_handle_err(db), ENOMEM, "stage") : KLEVDB_ENOMEM;
  pthread_mutex_init(&sg->mu, NULL);
  pthread_cond_init(&sg->cv, NULL);
  sg->db = db;
  klevdb_err rc = store_stage_begin(db, &sg->st, &sg->p);
  if (!rc) {
    int64_t q = QBYTES / (sg->p.rollover > 0 ? sg->p.rollover : 1);
    sg->qmax = q < 1 ? 1 : q > QMAX ? QMAX : (size_t)q;
    sg->last_ts = sg->p.last_ts;
    rc = open_segment(sg, sg->p.next, sg->last_ts);
  }
  if (rc) {
    stage_free(sg);
    return rc;
  }
  *out = sg;
  return KLEVDB_OK;
}

/* A stage carried into a child by fork(2) has no writer thread there. */
#define STAGE_FORKED(sg) ((sg)->st->forked)

klevdb_err klevdb_stage_add(klevdb_stage *sg, const klevdb_msg *msgs, size_t n) {
  if (!sg) return KLEVDB_EINVAL;
  if (STAGE_FORKED(sg)) return forked_err(store_handle_err(sg->db));
  klevdb_error *e = store_handle_err(sg->db);
  klevdb_err bad = msgs_check(msgs, n, NULL, e);
  if (bad) return bad;
  int64_t now = KLEVDB_TIME_UNSET;
  for (size_t i = 0; i < n; i++) {
    const klevdb_msg *m = &msgs[i];
    int64_t t = m->time;
    if (t == KLEVDB_TIME_UNSET) t = now == KLEVDB_TIME_UNSET ? (now = wall_us()) : now;
    klevdb_err rc = segbuild_add(&sg->cur, m, t, &sg->last_ts, e);
    if (rc) return rc;
    sg->n++;
    /* The segment ends after the record that takes it past the rollover,
    ** as batch_write (and publishing one by one) would end it. */
    if ((int64_t)sg->cur.log.len > sg->p.rollover && (rc = seal(sg))) return rc;
  }
  return KLEVDB_OK;
}

size_t klevdb_stage_count(const klevdb_stage *sg) { return sg ? sg->n : 0; }

/* The index time clamp after the first k records of b, from ts0. */
static klevdb_err clamp_after(const segbuild *b, size_t k, int64_t ts0, int64_t *out,
                              klevdb_error *e) {
  int64_t ts = ts0;
  for (size_t i = 0; i < k; i++) {
    int64_t pos = item_pos(b->items.p + i * b->isz), len;
    klevdb_msg m;
    if (rec_decode(b->ver, b->log.p + pos, (int64_t)b->log.len - pos, false, &m, &len, e) != 1)
      return kerr(e, KLEVDB_ECORRUPT_LOG, "stage: a staged record does not read back");
    if (m.time > ts) ts = m.time;
  }
  *out = ts;
  return KLEVDB_OK;
}

klevdb_err klevdb_stage_truncate(klevdb_stage *sg, size_t keep) {
  if (!sg) return KLEVDB_EINVAL;
  if (STAGE_FORKED(sg)) return forked_err(store_handle_err(sg->db));
  if (keep >= sg->n) return KLEVDB_OK;
  klevdb_error *e = store_handle_err(sg->db);
  klevdb_err rc = drain(sg);
  if (rc) return rc;
  int64_t cut = sg->p.next + (int64_t)keep;   /* the first offset to forget */
  size_t j = sg->nsegs;
  while (j > 0 && sg->segs[j - 1].base > cut) j--;
  if (j > 0 && sg->segs[j - 1].base + (int64_t)sg->segs[j - 1].n > cut) j--;
  else j = sg->nsegs;   /* the cut is in the open segment */
  int64_t ts0 = sg->cur_ts0;
  if (j < sg->nsegs) {
    /* Back into a written segment: it becomes the open one again. */
    sealed s = sg->segs[j];
    ts0 = s.ts0;
    if (cut == s.base) rc = open_segment(sg, s.base, ts0);
    else rc = segbuild_read(sg->st->dir, &sg->cur, TMP_STAGE, sg->p.ver, sg->p.params, s.base, e);
    discard_from(sg, j);
    if (rc) return rc;
    sg->cur_ts0 = ts0;
  }
  size_t k = (size_t)(cut - sg->cur.base);
  if (k < sg->cur.n) {
    sg->cur.log.len = (size_t)item_pos(sg->cur.items.p + k * sg->cur.isz);
    sg->cur.items.len = k * sg->cur.isz;
    sg->cur.n = k;
  }
  if ((rc = clamp_after(&sg->cur, sg->cur.n, ts0, &sg->last_ts, e))) return rc;
  sg->n = keep;
  return KLEVDB_OK;
}

/* Writes what is still in memory and waits for the thread: every message
** is then in a segment file of segs[]. On failure the stage is dropped. */
static klevdb_err finish(klevdb_stage *sg) {
  klevdb_err rc = KLEVDB_OK;
  if (sg->cur.n) rc = seal(sg);
  if (!rc) rc = drain(sg);
  stop_writer(sg);
  if (!rc && sg->p.sync) rc = dir_sync(sg->st->dir, store_handle_err(sg->db));
  FAULT_POINT();
  if (rc) discard_from(sg, 0);
  return rc;
}

static int64_t *stage_bases(klevdb_stage *sg) {
  int64_t *bases = malloc((sg->nsegs ? sg->nsegs : 1) * sizeof(int64_t));
  for (size_t i = 0; bases && i < sg->nsegs; i++) bases[i] = sg->segs[i].base;
  if (!bases) kerr_sys(store_handle_err(sg->db), ENOMEM, "stage");
  return bases;
}

klevdb_err klevdb_stage_commit(klevdb_stage *sg, int64_t *next_out) {
  if (!sg) return KLEVDB_EINVAL;
  if (STAGE_FORKED(sg)) return forked_err(store_handle_err(sg->db));
  klevdb *db = sg->db;
  if (sg->n == 0) {
    stage_free(sg);
    return next_out ? klevdb_next_offset(db, next_out) : KLEVDB_OK;
  }
  int64_t *bases = NULL;
  klevdb_err rc = finish(sg);
  if (!rc && !(bases = stage_bases(sg))) rc = KLEVDB_ENOMEM;
  if (!rc) rc = store_stage_commit(db, sg->p.next, bases, sg->nsegs, next_out);
  if (rc) discard_from(sg, 0);
  free(bases);
  stage_free(sg);
  return rc;
}

klevdb_err klevdb_stage_prepare(klevdb_stage *sg, const klevdb_range *ranges, size_t nranges,
                                const char *txid, klevdb_prepared **out) {
  if (!sg || !out) {
    klevdb_stage_abort(sg);
    return KLEVDB_EINVAL;
  }
  if (STAGE_FORKED(sg)) return forked_err(store_handle_err(sg->db));
  *out = NULL;
  klevdb *db = sg->db;
  int64_t *bases = NULL;
  klevdb_err rc = finish(sg);
  if (!rc && !(bases = stage_bases(sg))) rc = KLEVDB_ENOMEM;
  if (!rc) {
    rc = prepared_staged(db, sg->p.next, sg->n, bases, sg->nsegs, ranges, nranges, txid, out);
    if (rc) discard_from(sg, 0);
  }
  free(bases);
  stage_free(sg);
  return rc;
}

void klevdb_stage_abort(klevdb_stage *sg) {
  if (!sg || STAGE_FORKED(sg)) return;   /* the parent's: left as it is */
  stop_writer(sg);
  discard_from(sg, 0);
  stage_free(sg);
}
