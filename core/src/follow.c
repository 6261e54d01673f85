/*
** follow.c - a read-only store following another process's writer: the
** listing of segments taken again when the directory changes, the tail
** read as it grows, and the retry of reads that met a rewrite.
*/
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"

/* A read-only store looks for another process's changes at least this
** often (µs), and on every read that reaches the end of what it knows. */
#define FOLLOW_US 10000

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

/* Adds the items of s at or past offset from to the key table, which
** covers every segment from its lowest one to the end of the view. */
static void kt_add(store *st, seg *s, int64_t from) {
  if (st->kt_state != 1) return;
  const uint8_t *items = seg_items(s);
  for (size_t i = 0; i < s->n; i++) {
    const uint8_t *it = items + i * st->isz;
    if (item_off(it) < from) continue;
    if (!kt_put(&st->kt, item_hash(it, st->params), item_off(it), kt_same, st)) st->kt_state = -1;
  }
}

/* A segment that is no longer the last was rolled over: its index file
** is complete, so it becomes an ordinary mapped segment. */
static void seal_in_view(seg *s) {
  if (s->fd >= 0) close(s->fd);
  s->fd = -1;
  s->live = false;
  seg_unload(s);
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
  seg *sealed = NULL;   /* the head of the old view, sealed since */
  int64_t sealed_from = 0;
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
  for (size_t i = 0; i + 1 < n; i++) {
    seg *s = ns[i];
    if (!s->live) continue;
    if (st->kt_state == 1) {
      /* What the writer appended to it before the rollover, unread yet,
      ** goes into the key table (once the new list is in place), which
      ** the new head then extends. One never read cannot be in it. */
      sealed = s;
      sealed_from = seg_next(s, st->isz);
      if (!s->loaded || seg_follow(&st->cfg, s, NULL) != KLEVDB_OK) changed = true;
      else continue;   /* sealed below, after its items are added */
    }
    seal_in_view(s);
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
  if (sealed && sealed->live) {
    kt_add(st, sealed, sealed_from);
    seal_in_view(sealed);
  }
  return KLEVDB_OK;
}

/* Reads what the writer appended to the last segment (loading it if it
** is new in the view), extending the key table with it. */
static klevdb_err head_catch_up(store *st, seg *h, klevdb_error *e) {
  if (!h->loaded) {
    klevdb_err rc = seg_load_in(st, h, e);
    if (!rc) kt_add(st, h, 0);
    return rc;
  }
  int64_t before = seg_next(h, st->isz);
  if (h->n == 0) tsmin_stale(st);
  klevdb_err rc = seg_follow(&st->cfg, h, e);
  if (!rc && seg_next(h, st->isz) != before) kt_add(st, h, before);
  if (!rc && !h->loaded) {
    rc = seg_load_in(st, h, e);
    if (!rc) kt_add(st, h, 0);
  }
  return rc;
}

/* Brings a read-only store up to date with the files. force: the caller's
** answer depends on the end of the log. */
klevdb_err follow(store *st, bool force, klevdb_error *e) {
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

/* ---- retrying the reads of read-only stores ---- */

/* *moves: st->moves when the failed try began. */
bool ro_again(klevdb *db, klevdb_err *rc, int *tries, uint64_t *moves) {
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
