/*
** publish.c - the head writer (struct head): the head's files (opened,
** trimmed, sealed, closed), publish (records appended to the head),
** rollover to a new head, the batches of several segments installed after
** it, and sync.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fault.h"
#include "store.h"

/* A batch over this many rollover sizes is split into segments. */
#define SPLIT_FACTOR 4

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23   /* Linux 5.14; older kernels ignore it */
#endif

/* ---- the head's files ---- */

/* Leaves the head's .index at its header alone (see head_open). A file
** with a good header is cut in one ftruncate; anything else starts again
** (an empty file also means "rebuild" to both libraries). */
static klevdb_err head_index_reset(store *st, seg *s, const char *path, klevdb_error *e) {
  int fd;
  klevdb_err rc = file_open(path, O_RDWR | O_CREAT, KLEVDB_ECORRUPT_INDEX, &fd, e);
  if (rc) return rc;
  int64_t hdr = s->iver == FMT_V2 ? FILE_HDR : 0;
  uint8_t want[FILE_HDR], have[FILE_HDR];
  index_header(want, st->params);
  struct stat sb;
  int err = fstat(fd, &sb) < 0 ? errno : 0;
  bool good = !err && sb.st_size >= hdr &&
              (hdr == 0 || (pread(fd, have, FILE_HDR, 0) == FILE_HDR && !memcmp(have, want, FILE_HDR)));
  if (!err && !good) {
    if (ftruncate(fd, 0) < 0) err = errno;
    else if (hdr) err = pwrite_full(fd, want, FILE_HDR, 0);
  } else if (!err && sb.st_size > hdr && ftruncate(fd, hdr) < 0) {
    err = errno;
  }
  if (!err && st->opts.auto_sync && fdatasync(fd) < 0) err = errno;
  close(fd);
  return err ? kerr_sys(e, err, "reset %s", path) : KLEVDB_OK;
}

klevdb_err head_open(store *st, seg *s, bool create, klevdb_error *e) {
  char lpath[PATH_CAP], ipath[PATH_CAP];
  seg_path(lpath, sizeof(lpath), st->dir, s->base, ".log");
  seg_path(ipath, sizeof(ipath), st->dir, s->base, ".index");
  /* No O_APPEND: every write says where (the first record of a batch goes
  ** last, see publish). */
  int fd;
  klevdb_err orc = file_open(lpath, O_RDWR | O_CREAT, KLEVDB_ECORRUPT_LOG, &fd, e);
  if (orc) return orc;
  struct stat sb;
  if (fstat(fd, &sb) < 0) {
    int err = errno;
    close(fd);
    return kerr_sys(e, err, "stat %s", lpath);
  }
  if (sb.st_size == 0 && st->newver == FMT_V2) {
    uint8_t h[FILE_HDR];
    log_header(h);
    int err = write_full(fd, h, FILE_HDR);
    if (err) {
      close(fd);
      return kerr_sys(e, err, "write %s", lpath);
    }
    sb.st_size = FILE_HDR;
  }
  s->live = true;
  s->fd = fd;
  klevdb_err rc = kmap_open(fd, log_reserve(&st->cfg, sb.st_size), true, &s->log, e);
  if (rc) goto fail;
  s->ino = sb.st_ino;
  s->log_end = sb.st_size;
  if (sb.st_size == 0) s->ver = FMT_V1;
  else if ((rc = log_detect(s->log->data, sb.st_size, s->base, &s->ver, e))) {
    kerr_wrap(e, "segment %lld", (long long)s->base);
    goto fail;
  }

  bool rewrite;
  rc = live_items(&st->cfg, s, true, &rewrite, e);
  if (rc) goto fail;
  /* While a writer appends, the head's .index holds its header alone: both
  ** libraries rebuild such an index from the log at open, so whatever
  ** moment the writer dies at, the index cannot lag the log (Go trusts an
  ** index with items and would reuse the offsets it lacks). The items are
  ** written whole when the head is sealed (head_seal). First, so that an
  ** index that ran ahead of the log never meets the log cut below. */
  if ((rc = head_index_reset(st, s, ipath, e))) goto fail;
  if (s->log_end < sb.st_size) {
    /* Cut a torn tail so the next record follows the last good one. */
    if (ftruncate(fd, s->log_end) < 0 || fdatasync(fd) < 0) {
      rc = kerr_sys(e, errno, "truncate %s", lpath);
      goto fail;
    }
  }
  st->hd.alloc = s->log_end;
  s->loaded = true;
  if (s->n) st->hd.last_ts = item_ts(s->ibuf.p + (s->n - 1) * st->isz, st->params);
  else if (!create) st->hd.last_ts = 0;
  return KLEVDB_OK;

fail:
  kmap_unref(s->log);
  s->log = NULL;
  close(fd);
  s->fd = -1;
  s->live = false;
  kbuf_free(&s->ibuf);
  s->n = 0;
  return rc;
}

klevdb_err seg_create_empty(store *st, int64_t base, klevdb_error *e) {
  char lp[PATH_CAP], ip[PATH_CAP];
  seg_path(lp, sizeof(lp), st->dir, base, ".log");
  seg_path(ip, sizeof(ip), st->dir, base, ".index");
  if (access(lp, F_OK) == 0 || spare_take(&st->hd.spare, base)) return KLEVDB_OK;
  uint8_t lh[FILE_HDR], ih[FILE_HDR];
  log_header(lh);
  index_header(ih, st->params);
  size_t hl = st->newver == FMT_V2 ? FILE_HDR : 0;
  const char *paths[2] = {lp, ip};
  const uint8_t *hdrs[2] = {lh, ih};
  for (int k = 0; k < 2; k++) {
    int fd;
    klevdb_err rc = file_open(paths[k], O_WRONLY | O_CREAT | O_TRUNC,
                              k ? KLEVDB_ECORRUPT_INDEX : KLEVDB_ECORRUPT_LOG, &fd, e);
    if (rc) return rc;
    int err = hl ? write_full(fd, hdrs[k], hl) : 0;
    if (close(fd) < 0 && !err) err = errno;
    if (err) {
      unlink(paths[0]);
      unlink(paths[1]);
      return kerr_sys(e, err, "write %s", paths[k]);
    }
  }
  return KLEVDB_OK;
}

klevdb_err head_seal(store *st, seg *h, bool sync, klevdb_error *e) {
  char path[PATH_CAP];
  seg_path(path, sizeof(path), st->dir, h->base, ".index");
  /* A temporary file renamed over the header-only one: the index goes
  ** from "rebuild me" to complete in one step, never half written. */
  return index_write(path, h->iver, st->params, h->ibuf.p, h->n * st->isz, sync, e);
}

void head_trim(store *st, seg *s) {
  if (st->hd.alloc > s->log_end && s->fd >= 0 && ftruncate(s->fd, s->log_end) == 0)
    st->hd.alloc = s->log_end;
}

void head_close(store *st, seg *s, bool sync) {
  head_trim(st, s);
  if (s->fd >= 0) {
    if (sync) fdatasync(s->fd);
    close(s->fd);
    s->fd = -1;
  }
  s->isize = (s->iver == FMT_V2 ? FILE_HDR : 0) + (int64_t)(s->n * st->isz);
  s->live = false;
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
  spare_take(&st->hd.spare, s->base);
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
  klevdb_err rc = kmap_open(h->fd, log_reserve(&st->cfg, size), true, &m, e);
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
  if (need <= st->hd.alloc) return KLEVDB_OK;
  klevdb_err gone = head_gone(st, h, "publish", e);
  if (gone) return gone;
  int64_t chunk = st->opts.rollover / 2;
  if (chunk < (64 << 10)) chunk = 64 << 10;
  if (chunk > (8 << 20)) chunk = 8 << 20;
  int64_t to = (need + chunk + 4095) & ~(int64_t)4095;
  int r = fallocate(h->fd, 0, st->hd.alloc, to - st->hd.alloc);
  if (r < 0 && (errno == ENOSPC || errno == EFBIG)) {
    /* Nearly full: allocate just what this batch needs. */
    to = (need + 4095) & ~(int64_t)4095;
    r = fallocate(h->fd, 0, st->hd.alloc, to - st->hd.alloc);
    if (r < 0 && errno == ENOSPC) {
      /* A delete's dropped segments may still be on their way back. */
      reaper_flush(&st->rp);
      r = fallocate(h->fd, 0, st->hd.alloc, to - st->hd.alloc);
    }
  }
  if (r < 0) {
    if (errno == EOPNOTSUPP || errno == ENOSYS) {
      st->hd.no_fallocate = true;
      *mapped = false;
      return KLEVDB_OK;
    }
    int err = errno;
    head_trim(st, h);
    return kerr_sys(e, err, "publish: allocate space in segment %lld", (long long)h->base);
  }
  int64_t from = st->hd.alloc & ~(int64_t)4095;
  st->hd.alloc = to;
  klevdb_err rc = (size_t)to > h->log->len ? head_remap(st, h, to, e) : KLEVDB_OK;
  /* Fault the new pages in with one call instead of one trap per page. */
  if (!rc) madvise((void *)(h->log->data + from), (size_t)(to - from), MADV_POPULATE_WRITE);
  return rc;
}

void wake_waiters(store *st) {
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
klevdb_err install_batch(store *st, const int64_t *bases, size_t nb, const char *tmp,
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
  int64_t last_ts = st->hd.last_ts, *bases;
  size_t nb;
  klevdb_err rc = batch_write(st->dir, st->newver, st->params, st->opts.rollover, msgs, n, st->next,
                   wall_us(), &last_ts, st->opts.auto_sync, &bases, &nb, e);
  if (rc) return rc;
  rc = install_batch(st, bases, nb, TMP_BATCH, e);
  if (rc) batch_discard(st->dir, bases, nb, TMP_BATCH);
  free(bases);
  return rc;
}

klevdb_err klevdb_publish(klevdb *db, const klevdb_msg *msgs, size_t n, int64_t *next_out) {
  BEGIN(db);
  store *st = db->st;
  klevdb_error *e = &db->err;
  if (db->ro || st->ro) return kerr(e, KLEVDB_EREADONLY, "publish: store opened read-only");
  size_t total;
  klevdb_err bad = msgs_check(msgs, n, &total, e);
  if (bad) return bad;
  wmu_lock_publish(st);
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
  bool mapped = st->opts.preallocate && ver == FMT_V2 && !st->hd.no_fallocate;
  if (mapped && (rc = head_room(st, h, h->log_end + (int64_t)total, &mapped, e))) goto out;
  uint8_t *dst;
  if (mapped) {
    dst = (uint8_t *)h->log->data + h->log_end;
  } else {
    head_trim(st, h);
    st->hd.wbuf.len = 0;
    if ((rc = kbuf_reserve(&st->hd.wbuf, total, e))) goto out;
    dst = st->hd.wbuf.p;
  }
  size_t need = (h->n + n) * st->isz;
  if (h->ibuf.cap < need) {
    pthread_rwlock_wrlock(&st->lk);
    rc = kbuf_reserve(&h->ibuf, need - h->ibuf.len, e);
    pthread_rwlock_unlock(&st->lk);
    if (rc) goto out;
  }
  int64_t t_now = KLEVDB_TIME_UNSET, pos = h->log_end, off = st->next;
  int64_t last_ts = st->hd.last_ts;
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

  /* Readers see the batch once the count covers it (seg_n): the items
  ** and records below it are written by now, the end before the count,
  ** the next offset after it. The list lock is left alone, so a publish
  ** never waits for readers, except for a head's first item: a time
  ** table built meanwhile under the read lock must not miss it. The key
  ** table takes the batch at the next get by key (kt_hi). */
  bool first = h->n == 0;
  if (first) {
    pthread_rwlock_wrlock(&st->lk);
    tsmin_stale(st);
  }
  h->ibuf.len += n * st->isz;
  __atomic_store_n(&h->log_end, pos, __ATOMIC_RELEASE);
  __atomic_store_n(&h->n, h->n + n, __ATOMIC_RELEASE);
  __atomic_store_n(&st->next, off + (int64_t)n, __ATOMIC_SEQ_CST);
  if (first) pthread_rwlock_unlock(&st->lk);
  st->hd.last_ts = last_ts;
  wake_waiters(st);
out:
  if (next_out) *next_out = rc ? KLEVDB_OFFSET_INVALID : st->next;
  pthread_mutex_unlock(&st->wmu);
  return rc;
}

int64_t klevdb_size(const klevdb *db, const klevdb_msg *m) {
  if (!db || !m) return 0;
  return rec_size(db->st->newver, m->key_len, m->value_len) + (int64_t)db->st->isz;
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
