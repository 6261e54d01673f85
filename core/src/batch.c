/*
** batch.c - changes of several files made all or nothing across a crash,
** with a marker file that open reads: batches larger than a segment
** (renamed into place) and the renames and removals of a delete.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fault.h"
#include "kdb.h"

#define MARKER ".batch"
#define DELETE_MARKER ".delete"

/* ---- marker files ---- */

/* Writes a marker (fsynced with sync, as the files it covers). */
static klevdb_err marker_write(const char *dir, const char *name, const uint8_t *text, size_t len,
                               bool sync, const char *what, klevdb_error *e) {
  char path[4200];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int err = fd < 0 ? errno : write_full(fd, text, len);
  if (!err && sync && fdatasync(fd) < 0) err = errno;
  if (fd >= 0 && close(fd) < 0 && !err) err = errno;
  if (err) {
    unlink(path);
    return kerr_sys(e, err, "%s: write %s", what, path);
  }
  return sync ? dir_sync(dir, e) : KLEVDB_OK;
}

/* Reads a marker: KLEVDB_ENOTFOUND when there is none. */
static klevdb_err marker_read(const char *dir, const char *name, uint8_t **data, size_t *len,
                              klevdb_error *e) {
  char path[4200];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  return file_read(path, data, len, e);
}

/* Removes a marker once the files it covers are all in place. */
static void marker_remove(const char *dir, const char *name, bool sync) {
  char path[4200];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  if (sync) dir_sync(dir, NULL);
  unlink(path);
  if (sync) dir_sync(dir, NULL);
}

static void temp_path(char *out, size_t cap, const char *dir, int64_t base, const char *ext,
                      const char *tmp) {
  char p[4096];
  seg_path(p, sizeof(p), dir, base, ext);
  snprintf(out, cap, "%s%s", p, tmp);
}

void batch_discard(const char *dir, const int64_t *bases, size_t nb, const char *tmp) {
  char p[4200];
  for (size_t i = 0; i < nb; i++) {
    temp_path(p, sizeof(p), dir, bases[i], ".log", tmp);
    unlink(p);
    temp_path(p, sizeof(p), dir, bases[i], ".index", tmp);
    unlink(p);
  }
}

klevdb_err segbuild_start(segbuild *b, int ver, int params, int64_t base, klevdb_error *e) {
  b->ver = ver;
  b->params = params;
  b->isz = item_size(params);
  b->base = base;
  b->n = 0;
  b->log.len = b->items.len = 0;
  if (ver != FMT_V2) return KLEVDB_OK;
  klevdb_err rc = kbuf_reserve(&b->log, FILE_HDR, e);
  if (rc) return rc;
  log_header(b->log.p);
  b->log.len = FILE_HDR;
  return KLEVDB_OK;
}

klevdb_err segbuild_add(segbuild *b, const klevdb_msg *m, int64_t t, int64_t *last_ts,
                        klevdb_error *e) {
  size_t len = (size_t)rec_size(b->ver, m->key_len, m->value_len);
  klevdb_err rc = kbuf_reserve(&b->log, len, e);
  if (!rc) rc = kbuf_reserve(&b->items, b->isz, e);
  if (rc) return rc;
  int64_t off = b->base + (int64_t)b->n, pos = (int64_t)b->log.len;
  rec_encode(b->ver, b->log.p + b->log.len, off, t, m->key, m->key_len, m->value, m->value_len);
  b->log.len += len;
  if (t > *last_ts) *last_ts = t;
  item_encode(b->items.p + b->items.len, b->params, off, pos, *last_ts,
              (b->params & IDX_KEYS) ? klevdb_key_hash(m->key, m->key_len) : 0);
  b->items.len += b->isz;
  b->n++;
  return KLEVDB_OK;
}

klevdb_err segbuild_write(const char *dir, const segbuild *b, const char *tmp, bool sync,
                          klevdb_error *e) {
  char p[4200];
  temp_path(p, sizeof(p), dir, b->base, ".log", tmp);
  int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return kerr_sys(e, errno, "publish: create %s", p);
  int err = write_full(fd, b->log.p, b->log.len);
  if (!err && sync && fdatasync(fd) < 0) err = errno;
  if (close(fd) < 0 && !err) err = errno;
  if (err) return kerr_sys(e, err, "publish: write %s", p);
  temp_path(p, sizeof(p), dir, b->base, ".index", tmp);
  return index_write(p, b->ver, b->params, b->items.p, b->items.len, sync, e);
}

klevdb_err segbuild_read(const char *dir, segbuild *b, const char *tmp, int ver, int params,
                         int64_t base, klevdb_error *e) {
  char p[4200];
  uint8_t *log, *idx;
  size_t loglen, idxlen;
  temp_path(p, sizeof(p), dir, base, ".log", tmp);
  klevdb_err rc = file_read(p, &log, &loglen, e);
  if (rc) return rc;
  temp_path(p, sizeof(p), dir, base, ".index", tmp);
  if ((rc = file_read(p, &idx, &idxlen, e))) {
    free(log);
    return rc;
  }
  size_t skip = ver == FMT_V2 ? FILE_HDR : 0;
  segbuild_free(b);
  b->ver = ver;
  b->params = params;
  b->isz = item_size(params);
  b->base = base;
  b->log = (kbuf){log, loglen, loglen};
  b->items = (kbuf){idx, idxlen, idxlen};
  if (idxlen < skip || (idxlen - skip) % b->isz) {
    segbuild_free(b);
    return kerr(e, KLEVDB_ECORRUPT_INDEX, "publish: %s changed under the transaction", p);
  }
  memmove(idx, idx + skip, idxlen - skip);
  b->items.len -= skip;
  b->n = b->items.len / b->isz;
  return KLEVDB_OK;
}

void segbuild_free(segbuild *b) {
  kbuf_free(&b->log);
  kbuf_free(&b->items);
}

klevdb_err batch_write(const char *dir, int ver, int params, int64_t rollover,
                       const klevdb_msg *msgs, size_t n, int64_t offset, int64_t now,
                       int64_t *last_ts, bool sync, int64_t **bases_out, size_t *nb_out,
                       klevdb_error *e) {
  segbuild b = {0};
  int64_t *bases = NULL;
  size_t nb = 0;
  klevdb_err rc = KLEVDB_OK;
  size_t i = 0;
  while (i < n && !rc) {
    int64_t base = offset + (int64_t)i;
    int64_t *nbases = realloc(bases, (nb + 1) * sizeof(int64_t));
    if (!nbases) {
      rc = kerr_sys(e, ENOMEM, "publish");
      break;
    }
    bases = nbases;
    bases[nb++] = base;
    if ((rc = segbuild_start(&b, ver, params, base, e))) break;
    /* One segment: records while its size is within the rollover, as
    ** message-by-message publishing would have rolled over. */
    do {
      const klevdb_msg *m = &msgs[i];
      rc = segbuild_add(&b, m, m->time == KLEVDB_TIME_UNSET ? now : m->time, last_ts, e);
      i++;
    } while (!rc && i < n && (int64_t)b.log.len <= rollover);
    if (!rc) rc = segbuild_write(dir, &b, TMP_BATCH, sync, e);
  }
  segbuild_free(&b);
  if (rc) {
    batch_discard(dir, bases, nb, TMP_BATCH);
    free(bases);
    return rc;
  }
  *bases_out = bases;
  *nb_out = nb;
  return KLEVDB_OK;
}

static klevdb_err recover(const char *dir, bool crash, klevdb_error *e);

/* Renames one segment's files (log first: a kill between the two leaves a
** segment without its index, rebuilt by whoever opens it, Go too, where an
** index first would be one Go appends to when it makes that segment). A
** file already in place (a commit resumed) is skipped. */
static klevdb_err rename_segment(const char *dir, int64_t base, const char *tmp, klevdb_error *e) {
  char from[4200], to[4200];
  const char *ext[2] = {".log", ".index"};
  for (int k = 0; k < 2; k++) {
    temp_path(from, sizeof(from), dir, base, ext[k], tmp);
    seg_path(to, sizeof(to), dir, base, ext[k]);
    if (rename(from, to) < 0 && (errno != ENOENT || access(to, F_OK) < 0))
      return kerr_sys(e, errno, "publish: rename %s", from);
    FAULT_POINT();
  }
  return KLEVDB_OK;
}

static int64_t file_size_of(const char *path) {
  struct stat sb;
  return stat(path, &sb) < 0 ? -1 : (int64_t)sb.st_size;
}

klevdb_err batch_commit(const char *dir, const int64_t *bases, size_t nb, const char *tmp,
                        bool replace, int64_t head, bool sync, klevdb_error *e) {
  kbuf list = {0};
  klevdb_err rc = KLEVDB_OK;
  bool staged = strcmp(tmp, TMP_STAGE) == 0;
  /* One base a line; "=" marks a first segment that replaces an empty
  ** head, "s" a stage's segment. A stage's batch also names the head it
  ** goes after and the size of its log ("h" line), which tells the next
  ** open whether another writer (Go's) appended to it after a crash. */
  if (staged) {
    char hp[4200];
    seg_path(hp, sizeof(hp), dir, head, ".log");
    if (!(rc = kbuf_reserve(&list, 48, e)))
      list.len += (size_t)snprintf((char *)list.p, 48, "h%lld %lld\n", (long long)head,
                                   (long long)file_size_of(hp));
  }
  for (size_t i = 0; i < nb && !rc; i++) {
    if ((rc = kbuf_reserve(&list, 26, e))) break;
    list.len += (size_t)snprintf((char *)list.p + list.len, 26, "%s%s%lld\n", staged ? "s" : "",
                                 i == 0 && replace ? "=" : "", (long long)bases[i]);
  }
  /* The marker is on disk before the renames it covers, always. */
  if (!rc) rc = marker_write(dir, MARKER, list.p, list.len, true, "publish", e);
  FAULT_POINT();
  kbuf_free(&list);
  /* A stage's segments go in last to first: a crash in between leaves the
  ** batch's end in place, so a writer that takes over (Go, which does not
  ** read the marker) appends after the whole batch, and the next open of
  ** ours puts the rest in place under it. */
  for (size_t j = 0; j < nb && !rc; j++)
    rc = rename_segment(dir, bases[staged ? nb - 1 - j : j], tmp, e);
  if (rc) {
    /* Undo what was renamed (no other writer can have come in between). */
    recover(dir, false, NULL);
    return rc;
  }
  marker_remove(dir, MARKER, sync);
  return KLEVDB_OK;
}

/* Undoes one segment file of a batch: a stage's goes back under its
** temporary name, a publish's goes; an empty head it replaced comes back
** empty (the writer's open formats a 0-byte head). */
static void undo_file(const char *dir, int64_t base, const char *ext, bool staged, bool empty_it) {
  char path[4200], tmp[4200];
  seg_path(path, sizeof(path), dir, base, ext);
  temp_path(tmp, sizeof(tmp), dir, base, ext, staged ? TMP_STAGE : TMP_BATCH);
  if (staged) {
    /* Still under its temporary name: what is in place is not the stage's
    ** (the empty head, or another writer's), and stays. */
    if (access(tmp, F_OK) == 0) return;
    if (rename(path, tmp) < 0) return;
  } else {
    unlink(tmp);
  }
  if (empty_it) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) close(fd);
  } else {
    unlink(path);
  }
}

/* Finishes or undoes the batch a marker names. A publish's batch is
** undone (never acknowledged). A stage's batch was whole on disk before its
** first rename, so after a crash it is finished: undoing it would take
** away a prepared batch the database may have committed, and segments a
** writer that took over (Go) may have appended to. Only when that writer
** appended to the head the batch was to follow (no segment of it was in
** place yet) is it undone: its segments go back under their temporary
** names for a prepared batch to publish after that writer's messages. */
static klevdb_err recover(const char *dir, bool crash, klevdb_error *e) {
  uint8_t *data;
  size_t len;
  klevdb_err rc = marker_read(dir, MARKER, &data, &len, e);
  if (rc == KLEVDB_ENOTFOUND) return KLEVDB_OK;
  if (rc) return rc;
  char *p = (char *)data, *end = p + len;
  bool forward = crash;
  if (p < end && *p == 'h') {
    long long head = 0, size = -1;
    char hp[4200];
    if (sscanf(p + 1, "%lld %lld", &head, &size) == 2) {
      seg_path(hp, sizeof(hp), dir, head, ".log");
      if (file_size_of(hp) != size) forward = false;
    }
    char *nl = memchr(p, '\n', (size_t)(end - p));
    p = nl ? nl + 1 : end;
  }
  while (p < end) {
    char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl) break;
    *nl = 0;
    bool staged = *p == 's';
    p += staged;
    bool empty_it = *p == '=';
    int64_t base = strtoll(p + empty_it, NULL, 10);
    p = nl + 1;
    if (staged && forward) {
      rename_segment(dir, base, TMP_STAGE, NULL);
    } else {
      undo_file(dir, base, ".log", staged, empty_it);
      undo_file(dir, base, ".index", staged, empty_it);
    }
  }
  free(data);
  marker_remove(dir, MARKER, true);
  return KLEVDB_OK;
}

klevdb_err batch_recover(const char *dir, klevdb_error *e) { return recover(dir, true, e); }

/* ---- the renames of a delete ---- */


klevdb_err delete_mark(const char *dir, int64_t old_base, int64_t new_base, const char *tmp_log,
                       const char *tmp_idx, bool sync, klevdb_error *e) {
  size_t cap = strlen(tmp_log) + strlen(tmp_idx) + 96;
  char *text = malloc(cap);
  if (!text) return kerr_sys(e, ENOMEM, "delete");
  int len = snprintf(text, cap, "%lld\n%lld\n%s\n%s\n", (long long)old_base,
                     (long long)new_base, tmp_log, tmp_idx);
  klevdb_err rc = marker_write(dir, DELETE_MARKER, (const uint8_t *)text, (size_t)len, sync,
                               "delete", e);
  free(text);
  return rc;
}

void delete_unmark(const char *dir, bool sync) { marker_remove(dir, DELETE_MARKER, sync); }

static bool exists(const char *path) { return access(path, F_OK) == 0; }

klevdb_err delete_recover(const char *dir, klevdb_error *e) {
  uint8_t *data;
  size_t len;
  klevdb_err rc = marker_read(dir, DELETE_MARKER, &data, &len, e);
  if (rc == KLEVDB_ENOTFOUND) return KLEVDB_OK;
  if (rc) return rc;
  char *lines[4] = {0}, *p = (char *)data, *end = p + len;
  for (int i = 0; i < 4 && p < end; i++) {
    char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl) break;
    *nl = 0;
    lines[i] = p;
    p = nl + 1;
  }
  if (lines[3]) {
    int64_t old_base = strtoll(lines[0], NULL, 10), new_base = strtoll(lines[1], NULL, 10);
    const char *tmp_log = lines[2], *tmp_idx = lines[3];
    char ol[4200], oi[4200], ni[4200];
    seg_path(ol, sizeof(ol), dir, old_base, ".log");
    seg_path(oi, sizeof(oi), dir, old_base, ".index");
    if (new_base < 0) {
      /* Nothing survived: the old segment goes (its empty successor head
      ** was made before the marker). */
      unlink(oi);
      unlink(ol);
    } else if (exists(tmp_log)) {
      /* The new log was not renamed yet: back to the old segment. */
      seg_path(ni, sizeof(ni), dir, new_base, ".index");
      if (!exists(tmp_idx)) unlink(ni);   /* a renamed index without its log */
      unlink(tmp_idx);
      unlink(tmp_log);
    } else if (new_base == old_base) {
      /* The log is in place (a rewrite in place renames it before its
      ** index): its index follows. */
      seg_path(ni, sizeof(ni), dir, new_base, ".index");
      if (exists(tmp_idx) && rename(tmp_idx, ni) < 0) {
        int err = errno;
        free(data);
        return kerr_sys(e, err, "delete: rename %s", tmp_idx);
      }
    } else {
      /* The survivors are in place: the old segment goes. */
      unlink(oi);
      unlink(ol);
    }
  }
  free(data);
  marker_remove(dir, DELETE_MARKER, true);
  return KLEVDB_OK;
}

/* ---- a delete across segments ---- */

/* The ranges of a delete that spans several segments, written before the
** first segment changes and removed after the last: open finishes a
** delete that a crash interrupted, so it is all or nothing. Text, one
** "from to" a line, then "end N" (a marker without it was never complete,
** so nothing it covers had started). */
#define RANGES_MARKER ".delete-ranges"

klevdb_err ranges_mark(const char *dir, const klevdb_range *r, size_t n, bool sync,
                       klevdb_error *e) {
  kbuf b = {0};
  klevdb_err rc = kbuf_reserve(&b, n * 42 + 32, e);
  if (rc) return rc;
  for (size_t i = 0; i < n; i++)
    b.len += (size_t)snprintf((char *)b.p + b.len, 42, "%lld %lld\n", (long long)r[i].from,
                              (long long)r[i].to);
  b.len += (size_t)snprintf((char *)b.p + b.len, 32, "end %zu\n", n);
  rc = marker_write(dir, RANGES_MARKER, b.p, b.len, sync, "delete", e);
  kbuf_free(&b);
  return rc;
}

void ranges_unmark(const char *dir, bool sync) { marker_remove(dir, RANGES_MARKER, sync); }

klevdb_err ranges_pending(const char *dir, klevdb_range **out, size_t *nout, klevdb_error *e) {
  *out = NULL;
  *nout = 0;
  uint8_t *data;
  size_t len;
  klevdb_err rc = marker_read(dir, RANGES_MARKER, &data, &len, e);
  if (rc) return rc;
  size_t cap = 0, n = 0;
  klevdb_range *r = NULL;
  bool complete = false;
  char *p = (char *)data, *end = p + len;
  while (p < end && !complete) {
    char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl) break;
    *nl = 0;
    long long a, b;
    if (sscanf(p, "end %lld", &a) == 1) {
      complete = a == (long long)n;
    } else if (sscanf(p, "%lld %lld", &a, &b) == 2) {
      if (n == cap) {
        cap = cap ? cap * 2 : 64;
        klevdb_range *nr = realloc(r, cap * sizeof(*r));
        if (!nr) {
          free(r);
          free(data);
          return kerr_sys(e, ENOMEM, "open: delete to finish");
        }
        r = nr;
      }
      r[n++] = (klevdb_range){a, b};
    } else {
      break;
    }
    p = nl + 1;
  }
  free(data);
  if (!complete) {
    /* Torn: the delete never began. */
    free(r);
    ranges_unmark(dir, true);
    return KLEVDB_ENOTFOUND;
  }
  *out = r;
  *nout = n;
  return KLEVDB_OK;
}
