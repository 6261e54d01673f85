/*
** prepared.c - a batch made durable but not visible: the first phase of a
** commit that another system decides (a SQL transaction). The messages
** and delete ranges go to one file, .prepared, that no reader lists (Go
** and C take only *.log files for segments); the commit publishes them as
** klevdb_publish would and then removes the file, the abort only removes
** it. While the file exists the offsets from its base on are claimed, so
** the store refuses every other publish until the batch is resolved.
**
** The file, integers big-endian:
**   "KLEVPREP" u32 version (2), u32 txid length, i64 base, u64 count,
**   u64 nranges, u64 nsegs, txid, nranges * (i64 from, i64 to),
**   nsegs * i64 segment base,
**   count * (i64 time, u32 key length, u32 value length, key, value)
**     (only when nsegs is 0),
**   u32 CRC-32C of everything before it.
** Version 1 is version 2 without nsegs. A batch a stage wrote while it
** ran (a big transaction) is not copied: its segments stay under their
** temporary names (TMP_STAGE) and the file lists them; the commit renames
** them into place, and the batch counts as published once none is left
** (an interrupted rename is undone by the next open, batch.c).
** Trailing bytes after the CRC are ignored. The file stays from one batch
** to the next and is written in place (a create, rename and unlink for
** every transaction would cost more than the rest of a small one): a batch
** is resolved by zeroing the magic, and an image that does not check (a
** crash in the middle of a prepare, before the caller could act on it)
** holds no batch. A batch moved after another writer (a rewrite after the
** outcome is known) goes under .prepared.tmp and is renamed over it, whole
** or not at all. With auto_sync every step is fsynced, as publish syncs.
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fault.h"
#include "store.h"

#define FILE_NAME ".prepared"
#define TEMP_NAME ".prepared.tmp"
#define MAGIC "KLEVPREP"
#define VERSION 2
#define HEAD_V1 (8 + 4 + 4 + 8 + 8 + 8)
#define HEAD (HEAD_V1 + 8)
#define TXID_MAX 4096

struct klevdb_prepared {
  klevdb *db;
  char *txid;
  int64_t base;
  size_t count, nranges;
  klevdb_range *ranges;
  int64_t *segs;            /* a stage's segments (nsegs > 0), or: */
  size_t nsegs;
  klevdb_msg *msgs;         /* key and value point into data */
  uint8_t *data;            /* the file's image */
  size_t len;
};

static void path_of(char *out, size_t cap, const char *dir, const char *name) {
  snprintf(out, cap, "%s/%s", dir, name);
}

/* Whether the file at path starts as a prepared batch does. */
static bool live(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char m[8];
  bool yes = pread(fd, m, 8, 0) == 8 && memcmp(m, MAGIC, 8) == 0;
  close(fd);
  return yes;
}

bool prepared_exists(const char *dir) {
  char p[4200];
  path_of(p, sizeof(p), dir, FILE_NAME);
  return live(p);
}

bool prepared_present(const char *dir) {
  char p[4200];
  path_of(p, sizeof(p), dir, TEMP_NAME);
  unlink(p);   /* a rewrite the crash cut short: the file it was to replace holds */
  return prepared_exists(dir);
}

static void put64(kbuf *b, uint64_t v) {
  put_be64(b->p + b->len, v);
  b->len += 8;
}
static void put32(kbuf *b, uint32_t v) {
  put_be32(b->p + b->len, v);
  b->len += 4;
}
static void put(kbuf *b, const void *p, size_t n) {
  if (n) memcpy(b->p + b->len, p, n);
  b->len += n;
}

/* The file's image of p (times already stamped). */
static klevdb_err encode(const klevdb_prepared *p, kbuf *b, klevdb_error *e) {
  size_t tl = strlen(p->txid), need = HEAD + tl + p->nranges * 16 + p->nsegs * 8 + 4;
  size_t nmsgs = p->nsegs ? 0 : p->count;
  for (size_t i = 0; i < nmsgs; i++) need += 16 + p->msgs[i].key_len + p->msgs[i].value_len;
  klevdb_err rc = kbuf_reserve(b, need, e);
  if (rc) return rc;
  put(b, MAGIC, 8);
  put32(b, VERSION);
  put32(b, (uint32_t)tl);
  put64(b, (uint64_t)p->base);
  put64(b, p->count);
  put64(b, p->nranges);
  put64(b, p->nsegs);
  put(b, p->txid, tl);
  for (size_t i = 0; i < p->nranges; i++) {
    put64(b, (uint64_t)p->ranges[i].from);
    put64(b, (uint64_t)p->ranges[i].to);
  }
  for (size_t i = 0; i < p->nsegs; i++) put64(b, (uint64_t)p->segs[i]);
  for (size_t i = 0; i < nmsgs; i++) {
    const klevdb_msg *m = &p->msgs[i];
    put64(b, (uint64_t)m->time);
    put32(b, (uint32_t)m->key_len);
    put32(b, (uint32_t)m->value_len);
    put(b, m->key, m->key_len);
    put(b, m->value, m->value_len);
  }
  put32(b, crc32c(0, b->p, b->len));
  return KLEVDB_OK;
}

/* Reads an image back into p (pointing into data, which p then owns). */
static klevdb_err decode(klevdb_prepared *p, uint8_t *data, size_t len, const char *path,
                         klevdb_error *e) {
  p->data = data;
  p->len = len;
  uint32_t ver = len >= HEAD_V1 ? get_be32(data + 8) : 0;
  size_t head = ver == 1 ? HEAD_V1 : HEAD;
  if (len < head + 4 || memcmp(data, MAGIC, 8) != 0 || (ver != 1 && ver != VERSION))
    return kerr(e, KLEVDB_ECORRUPT_LOG, "prepared batch: %s is damaged", path);
  size_t tl = get_be32(data + 12), at = head, end = len - 4;
  p->base = (int64_t)get_be64(data + 16);
  uint64_t count = get_be64(data + 24), nranges = get_be64(data + 32);
  uint64_t nsegs = ver == 1 ? 0 : get_be64(data + 40);
  /* Sizes checked against what the file holds before anything is sized
  ** by them. */
  if (tl > end - at || nranges > (end - at - tl) / 16 ||
      nsegs > (end - at - tl - nranges * 16) / 8 || (!nsegs && count > (end - at - tl) / 16) ||
      count > INT64_MAX / 2)
    return kerr(e, KLEVDB_ECORRUPT_LOG, "prepared batch: %s is damaged", path);
  p->count = count;
  p->nranges = nranges;
  p->nsegs = nsegs;
  size_t nmsgs = nsegs ? 0 : count;
  p->txid = malloc(tl + 1);
  p->ranges = malloc(nranges ? nranges * sizeof(klevdb_range) : 1);
  p->segs = malloc(nsegs ? nsegs * sizeof(int64_t) : 1);
  p->msgs = malloc(nmsgs ? nmsgs * sizeof(klevdb_msg) : 1);
  if (!p->txid || !p->ranges || !p->segs || !p->msgs)
    return kerr_sys(e, ENOMEM, "prepared batch");
  memcpy(p->txid, data + at, tl);
  p->txid[tl] = 0;
  at += tl;
  for (size_t i = 0; i < nranges; i++, at += 16)
    p->ranges[i] = (klevdb_range){(int64_t)get_be64(data + at), (int64_t)get_be64(data + at + 8)};
  for (size_t i = 0; i < nsegs; i++, at += 8) p->segs[i] = (int64_t)get_be64(data + at);
  for (size_t i = 0; i < nmsgs; i++) {
    if (end - at < 16) return kerr(e, KLEVDB_ECORRUPT_LOG, "prepared batch: %s is damaged", path);
    klevdb_msg *m = &p->msgs[i];
    m->offset = p->base + (int64_t)i;
    m->time = (int64_t)get_be64(data + at);
    m->key_len = get_be32(data + at + 8);
    m->value_len = get_be32(data + at + 12);
    at += 16;
    if (m->key_len > end - at || m->value_len > end - at - m->key_len)
      return kerr(e, KLEVDB_ECORRUPT_LOG, "prepared batch: %s is damaged", path);
    m->key = m->key_len ? data + at : NULL;
    m->value = m->value_len ? data + at + m->key_len : NULL;
    at += m->key_len + m->value_len;
  }
  if (at > end || crc32c(0, data, at) != get_be32(data + at))
    return kerr(e, KLEVDB_ECORRUPT_LOG, "prepared batch: %s is damaged", path);
  return KLEVDB_OK;
}

/* Writes the image over the file (see the top). A failure (a full disk)
** leaves no batch: the file is cut to nothing. */
static klevdb_err save(const char *dir, const kbuf *b, bool sync, klevdb_error *e) {
  char path[4200];
  path_of(path, sizeof(path), dir, FILE_NAME);
  bool created = false;
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) created = true;
  else if (errno == EEXIST) fd = open(path, O_WRONLY | O_CLOEXEC);
  FAULT_POINT();
  /* The magic goes last (after the rest is durable, with sync): a kill in
  ** between leaves a file no open takes for a batch, where a magic before
  ** a torn image would mark the store in doubt with nothing to settle. */
  int err = fd < 0 ? errno : pwrite_full(fd, b->p + 8, b->len - 8, 8);
  FAULT_POINT();
  if (!err && sync && fdatasync(fd) < 0) err = errno;
  if (!err) err = pwrite_full(fd, b->p, 8, 0);
  FAULT_POINT();
  if (!err && sync && fdatasync(fd) < 0) err = errno;
  if (err && fd >= 0 && ftruncate(fd, 0) < 0) { /* the image does not check anyway */ }
  if (fd >= 0 && close(fd) < 0 && !err) err = errno;
  if (err) return kerr_sys(e, err, "prepare: write %s", path);
  return created && sync ? dir_sync(dir, e) : KLEVDB_OK;
}

/* As save, whole or not at all: for a rewrite once the outcome is known. */
static klevdb_err save_whole(const char *dir, const kbuf *b, bool sync, klevdb_error *e) {
  char tmp[4200], path[4200];
  path_of(tmp, sizeof(tmp), dir, TEMP_NAME);
  path_of(path, sizeof(path), dir, FILE_NAME);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int err = fd < 0 ? errno : write_full(fd, b->p, b->len);
  if (!err && sync && fdatasync(fd) < 0) err = errno;
  if (fd >= 0 && close(fd) < 0 && !err) err = errno;
  FAULT_POINT();
  if (!err && rename(tmp, path) < 0) err = errno;
  FAULT_POINT();
  if (err) {
    unlink(tmp);
    return kerr_sys(e, err, "prepared batch: write %s", path);
  }
  return sync ? dir_sync(dir, e) : KLEVDB_OK;
}

/* The batch is resolved: its magic goes (and a big image's space). */
static klevdb_err drop(const char *dir, bool sync, klevdb_error *e) {
  char path[4200];
  path_of(path, sizeof(path), dir, FILE_NAME);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? KLEVDB_OK : kerr_sys(e, errno, "prepared batch: open %s", path);
  static const uint8_t zero[8];
  struct stat sb;
  int err = fstat(fd, &sb) < 0 ? errno : 0;
  if (!err && sb.st_size > (1 << 20)) err = ftruncate(fd, 0) < 0 ? errno : 0;
  else if (!err) err = pwrite_full(fd, zero, sizeof(zero), 0);
  FAULT_POINT();
  if (!err && sync && fdatasync(fd) < 0) err = errno;
  if (close(fd) < 0 && !err) err = errno;
  return err ? kerr_sys(e, err, "prepared batch: clear %s", path) : KLEVDB_OK;
}

/* Frees what p holds (not p), as a batch read from the file has it. */
static void prepared_clear(klevdb_prepared *p) {
  free(p->txid);
  free(p->ranges);
  free(p->segs);
  free(p->msgs);
  free(p->data);
}

static void prepared_free(klevdb_prepared *p) {
  if (!p) return;
  prepared_clear(p);
  free(p);
}

/* Writes p's image and makes p read it back, so that the batch no longer
** depends on the caller's memory; on success the store is in doubt and
** *out gets p, on failure p is freed and nothing is prepared. */
static klevdb_err put_in_doubt(klevdb *db, klevdb_prepared *p, const char *dir, bool sync,
                               klevdb_prepared **out) {
  klevdb_error *e = store_handle_err(db);
  kbuf b = {0};
  klevdb_err rc = encode(p, &b, e);
  if (!rc) rc = save(dir, &b, sync, e);
  if (!rc) {
    free(p->msgs);
    free(p->ranges);
    free(p->segs);
    free(p->txid);
    p->msgs = NULL;
    p->ranges = NULL;
    p->segs = NULL;
    p->txid = NULL;
    rc = decode(p, b.p, b.len, FILE_NAME, e);
    b.p = NULL;
    if (rc) {
      drop(dir, sync, NULL);
    } else {
      store_set_doubt(db, true);
      *out = p;
      return KLEVDB_OK;
    }
  }
  kbuf_free(&b);
  prepared_free(p);
  return rc;
}

/* A new handle for a batch at base; the caller's txid and ranges copied. */
static klevdb_prepared *prepared_new(klevdb *db, int64_t base, size_t count,
                                     const klevdb_range *ranges, size_t nranges,
                                     const char *txid) {
  klevdb_prepared *p = calloc(1, sizeof(*p));
  if (!p) return NULL;
  p->db = db;
  p->base = base;
  p->count = count;
  p->nranges = nranges;
  p->txid = strdup(txid);
  p->ranges = malloc(nranges ? nranges * sizeof(klevdb_range) : 1);
  if (!p->txid || !p->ranges) {
    prepared_free(p);
    return NULL;
  }
  if (nranges) memcpy(p->ranges, ranges, nranges * sizeof(klevdb_range));
  return p;
}

/* The checks both kinds of prepare make. */
static klevdb_err prepare_check(klevdb *db, const klevdb_range *ranges, size_t nranges,
                                const char *txid) {
  klevdb_error *e = store_handle_err(db);
  if (!txid || strlen(txid) > TXID_MAX)
    return kerr(e, KLEVDB_EINVAL, "prepare: a transaction id of at most %d bytes is needed",
                TXID_MAX);
  if (nranges && !ranges) return kerr(e, KLEVDB_EINVAL, "prepare: no ranges given");
  return KLEVDB_OK;
}

klevdb_err klevdb_prepare(klevdb *db, const klevdb_msg *msgs, size_t n,
                          const klevdb_range *ranges, size_t nranges, const char *txid,
                          klevdb_prepared **out) {
  if (!db || !out) return KLEVDB_EINVAL;
  *out = NULL;
  const char *dir;
  bool sync;
  klevdb_err rc = store_prepare_begin(db, &dir, &sync);
  if (rc) return rc;
  klevdb_error *e = store_handle_err(db);
  if ((rc = prepare_check(db, ranges, nranges, txid))) return rc;
  if ((rc = msgs_check(msgs, n, NULL, e))) return rc;
  int64_t base;
  if ((rc = klevdb_next_offset(db, &base))) return rc;
  klevdb_prepared *p = prepared_new(db, base, n, ranges, nranges, txid);
  if (p && !(p->msgs = malloc(n ? n * sizeof(klevdb_msg) : 1))) {
    prepared_free(p);
    p = NULL;
  }
  if (!p) return kerr_sys(e, ENOMEM, "prepare");
  /* "Now" is fixed here: a commit retried after a crash writes the same
  ** records. */
  int64_t now = wall_us();
  for (size_t i = 0; i < n; i++) {
    p->msgs[i] = msgs[i];
    if (p->msgs[i].time == KLEVDB_TIME_UNSET) p->msgs[i].time = now;
  }
  return put_in_doubt(db, p, dir, sync, out);
}

klevdb_err prepared_staged(klevdb *db, int64_t base, size_t count, const int64_t *segs,
                           size_t nsegs, const klevdb_range *ranges, size_t nranges,
                           const char *txid, klevdb_prepared **out) {
  const char *dir;
  bool sync;
  klevdb_err rc = store_prepare_begin(db, &dir, &sync);
  if (rc || (rc = prepare_check(db, ranges, nranges, txid))) return rc;
  klevdb_prepared *p = prepared_new(db, base, count, ranges, nranges, txid);
  if (p && !(p->segs = malloc(nsegs ? nsegs * sizeof(int64_t) : 1))) {
    prepared_free(p);
    p = NULL;
  }
  if (!p) return kerr_sys(store_handle_err(db), ENOMEM, "prepare");
  if (nsegs) memcpy(p->segs, segs, nsegs * sizeof(int64_t));
  p->nsegs = nsegs;
  return put_in_doubt(db, p, dir, sync, out);
}

/* Whether a staged segment file of the batch is still under its temporary
** name (the batch is not in place). */
static bool stage_left(const klevdb_prepared *p, const char *dir) {
  for (size_t i = 0; i < p->nsegs; i++) {
    char seg[4096], path[4200];
    seg_path(seg, sizeof(seg), dir, p->segs[i], ".log");
    snprintf(path, sizeof(path), "%s%s", seg, TMP_STAGE);
    if (access(path, F_OK) == 0) return true;
    seg_path(seg, sizeof(seg), dir, p->segs[i], ".index");
    snprintf(path, sizeof(path), "%s%s", seg, TMP_STAGE);
    if (access(path, F_OK) == 0) return true;
  }
  return false;
}

void prepared_clean(const char *dir) {
  char path[4200];
  path_of(path, sizeof(path), dir, FILE_NAME);
  klevdb_prepared p = {0};
  uint8_t *data;
  size_t len;
  /* The live batch's segments stay; anything else a stage left goes. */
  if (!live(path) || file_read(path, &data, &len, NULL) != KLEVDB_OK) data = NULL;
  if (data && decode(&p, data, len, path, NULL) != KLEVDB_OK) p.nsegs = 0;
  DIR *d = opendir(dir);
  struct dirent *de;
  while (d && (de = readdir(d)) != NULL) {
    const char *n = de->d_name;
    size_t l = strlen(n);
    bool log = l > 10 && strcmp(n + l - 10, ".log" TMP_STAGE) == 0;
    bool idx = l > 12 && strcmp(n + l - 12, ".index" TMP_STAGE) == 0;
    bool tmp = l > 16 && strcmp(n + l - 16, ".index" TMP_STAGE ".tmp") == 0;
    if (!log && !idx && !tmp) continue;
    char *end;
    int64_t base = strtoll(n, &end, 10);
    bool keep = false;
    for (size_t i = 0; !tmp && i < p.nsegs && !keep; i++) keep = p.segs[i] == base;
    if (keep) continue;
    snprintf(path, sizeof(path), "%s/%s", dir, n);
    unlink(path);
  }
  if (d) closedir(d);
  prepared_clear(&p);
}

klevdb_err klevdb_prepared_find(klevdb *db, klevdb_prepared **out) {
  if (!db || !out) return KLEVDB_EINVAL;
  *out = NULL;
  const char *dir;
  bool sync, doubt;
  klevdb_err rc = store_prepared_dir(db, &dir, &sync, &doubt);
  if (rc) return rc;
  bool writer = store_prepared_dir(db, &dir, &sync, NULL) == KLEVDB_OK;
  klevdb_error *e = store_handle_err(db);
  if (!doubt) return kerr(e, KLEVDB_ENOTFOUND, "prepared batch: none in %s", dir);
  char path[4200];
  path_of(path, sizeof(path), dir, FILE_NAME);
  uint8_t *data;
  size_t len;
  if ((rc = file_read(path, &data, &len, e))) return rc;
  klevdb_prepared *p = calloc(1, sizeof(*p));
  if (!p) {
    free(data);
    return kerr_sys(e, ENOMEM, "prepared batch");
  }
  p->db = db;
  if ((rc = decode(p, data, len, path, e))) {
    /* A prepare the crash cut short: its caller never went on to decide
    ** anything, so there is no batch. */
    prepared_free(p);
    if (rc != KLEVDB_ECORRUPT_LOG) return rc;
    if (writer && !drop(dir, sync, NULL)) store_set_doubt(db, false);
    return kerr(e, KLEVDB_ENOTFOUND, "prepared batch: none in %s", dir);
  }
  *out = p;
  return KLEVDB_OK;
}

void klevdb_prepared_get_info(const klevdb_prepared *p, klevdb_prepared_info *out) {
  *out = (klevdb_prepared_info){p->txid, p->base, p->count, p->nranges};
}

/* Whether the batch is in the log already at its base: every message of
** it still there reads back as prepared (deletes may have removed some). */
static klevdb_err published(klevdb_prepared *p, bool *yes) {
  int64_t next;
  klevdb_err rc = klevdb_next_offset(p->db, &next);
  if (rc) return rc;
  *yes = next >= p->base + (int64_t)p->count;
  if (!*yes || p->count == 0) return KLEVDB_OK;
  klevdb_batch b = KLEVDB_BATCH_INIT;
  int64_t at = p->base, end = p->base + (int64_t)p->count;
  while (*yes && at < end) {
    if ((rc = klevdb_consume(p->db, at, (size_t)(end - at), &b))) {
      /* All of it deleted since (oldest is past it). */
      if (rc == KLEVDB_EINVALID_OFFSET) rc = KLEVDB_OK;
      break;
    }
    for (size_t i = 0; i < b.len && *yes && b.msgs[i].offset < end; i++) {
      const klevdb_msg *m = &b.msgs[i], *w = &p->msgs[m->offset - p->base];
      *yes = m->time == w->time && m->key_len == w->key_len && m->value_len == w->value_len &&
             (!m->key_len || memcmp(m->key, w->key, m->key_len) == 0) &&
             (!m->value_len || memcmp(m->value, w->value, m->value_len) == 0);
    }
    if (b.len == 0 || b.next_offset <= at) break;
    at = b.next_offset;
  }
  klevdb_batch_free(&b);
  return rc;
}

/* The delete ranges with the batch's own offsets moved by delta (a batch
** published at another base than prepared); ranges past the batch are
** another writer's messages and are left alone. */
static klevdb_range *ranges_moved(const klevdb_prepared *p, int64_t delta, size_t *n) {
  klevdb_range *r = malloc((2 * p->nranges + 1) * sizeof(*r));
  if (!r) return NULL;
  int64_t lo = p->base, hi = p->base + (int64_t)p->count;
  *n = 0;
  for (size_t i = 0; i < p->nranges; i++) {
    klevdb_range x = p->ranges[i];
    if (x.from < lo) r[(*n)++] = (klevdb_range){x.from, x.to < lo ? x.to : lo};
    int64_t f = x.from > lo ? x.from : lo, t = x.to < hi ? x.to : hi;
    if (f < t) r[(*n)++] = (klevdb_range){f + delta, t + delta};
  }
  return r;
}

/* Turns a staged batch into one held in the file itself, at the same
** base (whole or not at all), then drops its segments: for a commit that
** cannot rename them into place because another writer took their
** offsets. */
static klevdb_err unstage(klevdb_prepared *p, const char *dir, bool sync) {
  klevdb_error *e = store_handle_err(p->db);
  int ver, params;
  store_seg_format(p->db, &ver, &params);
  segbuild *bs = calloc(p->nsegs, sizeof(segbuild));
  klevdb_prepared q = *p;
  q.nsegs = 0;
  q.segs = NULL;
  q.msgs = malloc((p->count ? p->count : 1) * sizeof(klevdb_msg));
  kbuf b = {0};
  klevdb_err rc = bs && q.msgs ? KLEVDB_OK : kerr_sys(e, ENOMEM, "prepared batch");
  size_t k = 0;
  for (size_t i = 0; i < p->nsegs && !rc; i++) {
    segbuild *s = &bs[i];
    if ((rc = segbuild_read(dir, s, TMP_STAGE, ver, params, p->segs[i], e))) break;
    for (size_t j = 0; j < s->n && !rc; j++) {
      int64_t pos = item_pos(s->items.p + j * s->isz), len;
      klevdb_msg m;
      if (k == p->count || pos < 0 || (size_t)pos > s->log.len ||
          rec_decode(ver, s->log.p + pos, (int64_t)s->log.len - pos, true, &m, &len, e) != 1 ||
          m.offset != p->base + (int64_t)k)
        rc = kerr(e, KLEVDB_ECORRUPT_LOG, "prepared batch: the staged segment %lld is damaged",
                  (long long)p->segs[i]);
      else q.msgs[k++] = m;
    }
  }
  FAULT_POINT();
  if (!rc && k != p->count)
    rc = kerr(e, KLEVDB_ECORRUPT_LOG, "prepared batch: its staged segments hold %zu of %zu "
              "messages", k, p->count);
  q.count = k;
  if (!rc && !(rc = encode(&q, &b, e))) rc = save_whole(dir, &b, sync, e);
  for (size_t i = 0; bs && i < p->nsegs; i++) segbuild_free(&bs[i]);
  free(bs);
  free(q.msgs);
  if (rc) {
    kbuf_free(&b);
    return rc;
  }
  FAULT_POINT();
  batch_discard(dir, p->segs, p->nsegs, TMP_STAGE);
  /* p now reads the new image, as a batch found in the file would. */
  klevdb_prepared n = {.db = p->db};
  if ((rc = decode(&n, b.p, b.len, FILE_NAME, e))) {
    prepared_clear(&n);
    return rc;
  }
  prepared_clear(p);
  *p = n;
  return KLEVDB_OK;
}

/* Puts a staged batch in place: *yes when it is (now or already). */
static klevdb_err commit_staged(klevdb_prepared *p, const char *dir, bool sync, bool *yes) {
  *yes = false;
  /* None left under a temporary name: renamed already (an interrupted
  ** rename is undone at open, so it is all or none). */
  if (!stage_left(p, dir)) {
    *yes = true;
    return KLEVDB_OK;
  }
  int64_t next;
  klevdb_err rc = klevdb_next_offset(p->db, &next);
  if (rc) return rc;
  if (next != p->base) return unstage(p, dir, sync);
  rc = store_stage_commit(p->db, p->base, p->segs, p->nsegs, NULL);
  *yes = rc == KLEVDB_OK;
  return rc;
}

klevdb_err klevdb_prepared_commit(klevdb_prepared *p, int64_t *base_out, int64_t *next_out) {
  if (!p) return KLEVDB_EINVAL;
  klevdb *db = p->db;
  klevdb_error *e = store_handle_err(db);
  const char *dir;
  bool sync, yes;
  klevdb_err rc = store_prepared_dir(db, &dir, &sync, NULL);
  int64_t base = p->base, next = KLEVDB_OFFSET_INVALID;
  if (!rc && p->nsegs) rc = commit_staged(p, dir, sync, &yes);
  if (!rc && !p->nsegs) rc = published(p, &yes);
  FAULT_POINT();
  if (!rc && !yes) {
    if ((rc = klevdb_next_offset(db, &next))) goto out;
    if (next != p->base) {
      /* Another writer (Go's, which nothing stops) took the offsets while
      ** the batch was in doubt: it goes after them, and the file says so
      ** first, so that a crash from here on finds it published there. */
      kbuf b = {0};
      klevdb_range *moved = NULL;
      size_t nmoved = 0;
      if (p->nranges && !(moved = ranges_moved(p, next - p->base, &nmoved))) {
        rc = kerr_sys(e, ENOMEM, "prepared batch");
        goto out;
      }
      klevdb_prepared q = *p;
      q.base = next;
      if (moved) {
        q.ranges = moved;
        q.nranges = nmoved;
      }
      if (!(rc = encode(&q, &b, e))) rc = save_whole(dir, &b, sync, e);
      kbuf_free(&b);
      if (rc) {
        free(moved);
        goto out;
      }
      if (moved) {
        free(p->ranges);
        p->ranges = moved;
        p->nranges = nmoved;
      }
      p->base = next;
      for (size_t i = 0; i < p->count; i++) p->msgs[i].offset = next + (int64_t)i;
    }
    base = p->base;
    rc = store_publish_prepared(db, p->msgs, p->count, &next);
    FAULT_POINT();
  }
  if (!rc && p->nranges) {
    klevdb_deleted d;
    rc = klevdb_delete_ranges(db, p->ranges, p->nranges, &d);
    FAULT_POINT();
  }
  if (!rc) rc = drop(dir, sync, e);
  FAULT_POINT();
  if (!rc) store_set_doubt(db, false);
  if (!rc) rc = klevdb_next_offset(db, &next);
out:
  if (base_out) *base_out = rc ? KLEVDB_OFFSET_INVALID : base;
  if (next_out) *next_out = rc ? KLEVDB_OFFSET_INVALID : next;
  prepared_free(p);
  return rc;
}

klevdb_err klevdb_prepared_abort(klevdb_prepared *p) {
  if (!p) return KLEVDB_EINVAL;
  const char *dir;
  bool sync;
  klevdb_err rc = store_prepared_dir(p->db, &dir, &sync, NULL);
  /* The file first: once it no longer names them, the segments are any
  ** stage's leftovers, which the next open removes. */
  if (!rc) rc = drop(dir, sync, store_handle_err(p->db));
  FAULT_POINT();
  if (!rc && p->nsegs) batch_discard(dir, p->segs, p->nsegs, TMP_STAGE);
  if (!rc) store_set_doubt(p->db, false);
  prepared_free(p);
  return rc;
}

void klevdb_prepared_close(klevdb_prepared *p) { prepared_free(p); }
