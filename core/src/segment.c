/*
** segment.c - one segment of an open store: a .log and its .index. Lazy
** loading of sealed segments (both files mmapped), the items of a live
** segment (the head, or a tail another process appends to, followed as it
** grows), and the rewrite without some offsets that Delete is built on.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "segment.h"

#define PATH_CAP 4096

seg *seg_new(int64_t base) {
  seg *s = calloc(1, sizeof(*s));
  if (!s) return NULL;
  s->base = base;
  s->fd = -1;
  pthread_mutex_init(&s->load_mu, NULL);
  return s;
}

void seg_unload(seg *s) {
  kmap_unref(s->log);
  s->log = NULL;
  kmap_unref(s->imap);
  s->imap = NULL;
  kbuf_free(&s->ibuf);
  s->n = 0;
  __atomic_store_n(&s->loaded, false, __ATOMIC_RELEASE);
}

void seg_free(seg *s) {
  if (!s) return;
  if (s->fd >= 0) close(s->fd);
  seg_unload(s);
  pthread_mutex_destroy(&s->load_mu);
  free(s);
}

/* Room to map for a log that grows: appends land in the mapping without a
** remap until the file passes it. */
size_t log_reserve(const segcfg *c, int64_t size) {
  int64_t r = c->rollover * 2;
  if (r < size * 2) r = size * 2;
  if (r < (1 << 20)) r = 1 << 20;
  return ((size_t)r + 4095) & ~(size_t)4095;
}

/* Maps the log of s; live logs keep their fd and get room to grow. */
static klevdb_err log_map(const segcfg *c, seg *s, int64_t upper, klevdb_error *e) {
  char path[PATH_CAP];
  seg_path(path, sizeof(path), c->dir, s->base, ".log");
  int fd;
  klevdb_err orc = file_open(path, O_RDONLY, KLEVDB_ECORRUPT_LOG, &fd, e);
  if (orc) {
    if (errno == ENOENT && c->ro && upper == INT64_MAX && s->base == 0) {
      /* The virtual empty segment of a read-only store with no files: the
      ** last segment of the list, at 0, is its only one. */
      if (e) e->code = KLEVDB_OK;
      s->ver = FMT_V2;
      s->log_end = 0;
      return kmap_open(-1, 0, false, &s->log, e);
    }
    return orc;
  }
  struct stat sb;
  if (fstat(fd, &sb) < 0) {
    int err = errno;
    close(fd);
    return kerr_sys(e, err, "stat %s", path);
  }
  int64_t size = sb.st_size;
  size_t reserve = s->live ? log_reserve(c, size) : (size_t)size;
  kmap *m;
  klevdb_err rc = kmap_open(fd, reserve, false, &m, e);
  if (rc) {
    close(fd);
    kerr_wrap(e, "map %s", path);
    return rc;
  }
  int ver = 0;
  /* A live log shorter than a header is being created by its writer: its
  ** format is known once the first 8 bytes are there (seg_follow). */
  if (s->live && size < FILE_HDR) {
    size = 0;
  } else if ((rc = log_detect(m->data, size, s->base, &ver, e))) {
    kmap_unref(m);
    close(fd);
    kerr_wrap(e, "segment %lld", (long long)s->base);
    return rc;
  }
  s->ver = ver;
  s->ino = sb.st_ino;
  s->log = m;
  s->log_end = size;
  if (s->live) s->fd = fd;
  else close(fd);
  return KLEVDB_OK;
}

/* Records read from the log of s (items climb) must be its own: offsets
** from its name up to the next segment's. A log of another segment in its
** place (copied or renamed over it) would otherwise be served under these
** offsets, or send a reader back to offsets it has passed. */
static klevdb_err log_owned(const segcfg *c, const seg *s, const uint8_t *items, size_t n,
                            int64_t upper, klevdb_error *e) {
  if (n == 0) return KLEVDB_OK;
  int64_t first = item_off(items), last = item_off(items + (n - 1) * c->isz);
  if (first >= s->base && last < upper) return KLEVDB_OK;
  if (upper == INT64_MAX)
    return kerr(e, KLEVDB_ECORRUPT_LOG,
                "segment %lld: log corrupted: it holds offsets %lld to %lld, not this segment's "
                "(%lld on): the log of another segment?", (long long)s->base, (long long)first,
                (long long)last, (long long)s->base);
  return kerr(e, KLEVDB_ECORRUPT_LOG,
              "segment %lld: log corrupted: it holds offsets %lld to %lld, not this segment's "
              "(%lld to %lld): the log of another segment?", (long long)s->base, (long long)first,
              (long long)last, (long long)s->base, (long long)upper - 1);
}

/* The first and last items of a mapped index name the records the log has
** there. Only a record that parses and carries another offset fails (a
** damaged record is reported when it is read, as before). */
static klevdb_err ends_match(const segcfg *c, const seg *s, const uint8_t *items, size_t n,
                             int64_t upper, klevdb_error *e) {
  for (size_t k = 0; k < 2 && n; k++) {
    const uint8_t *it = items + (k ? n - 1 : 0) * c->isz;
    int64_t pos = item_pos(it), len;
    klevdb_msg m;
    if (rec_decode(s->ver, s->log->data + pos, s->log_end - pos, false, &m, &len, NULL) != 1 ||
        m.offset == item_off(it))
      continue;
    if (m.offset < s->base || m.offset >= upper)
      return kerr(e, KLEVDB_ECORRUPT_LOG,
                  "segment %lld: log corrupted: it holds offset %lld, not one of this segment's: "
                  "the log of another segment?", (long long)s->base, (long long)m.offset);
    return kerr(e, KLEVDB_ECORRUPT_INDEX,
                "segment %lld: index corrupted: offset %lld holds message %lld",
                (long long)s->base, (long long)item_off(it), (long long)m.offset);
  }
  return KLEVDB_OK;
}

/* Items must climb: offsets and positions strictly, inside the log. The
** searches rely on it, so a damaged index is caught here rather than
** answered from ("not found" for a message that is there). Returns the
** number of leading items that are sane. */
static size_t items_sane(const uint8_t *items, size_t n, size_t isz, int64_t log_size,
                         int64_t start, int64_t base, int64_t upper) {
  /* A segment is named after its first offset, and the next one after an
  ** offset past its last. */
  int64_t prev_off = base - 1, prev_pos = start - 1;
  for (size_t i = 0; i < n; i++) {
    const uint8_t *it = items + i * isz;
    int64_t off = item_off(it), pos = item_pos(it);
    if (off <= prev_off || off >= upper || pos <= prev_pos || pos >= log_size) return i;
    prev_off = off;
    prev_pos = pos;
  }
  return n;
}

/* Items of a sealed segment: the mapped .index, or a rebuilt one when it
** is missing or holds no items (docs/files.md, segments). */
static klevdb_err index_map(const segcfg *c, seg *s, int64_t upper, klevdb_error *e) {
  char path[PATH_CAP];
  seg_path(path, sizeof(path), c->dir, s->base, ".index");
  int fd;
  klevdb_err orc = file_open(path, O_RDONLY, KLEVDB_ECORRUPT_INDEX, &fd, e);
  if (orc && errno != ENOENT) return orc;
  if (orc && e) e->code = KLEVDB_OK;   /* missing: rebuilt below */
  struct stat sb;
  if (fd >= 0 && fstat(fd, &sb) < 0) {
    int err = errno;
    close(fd);
    return kerr_sys(e, err, "stat %s", path);
  }
  if (fd < 0 || sb.st_size <= FILE_HDR) {
    if (fd >= 0) close(fd);
    int64_t last_ts = 0, end;
    kbuf items = {0};
    klevdb_err rc = log_scan(s->log->data, s->log_end, s->ver, log_start(s->ver),
                             c->params, &last_ts, &items, &end, e);
    /* A head sealed by a crash before its allocated room was cut off (a
    ** delete or rollover that a kill interrupted): the zeros were never
    ** records. */
    if (rc == KLEVDB_ECORRUPT_LOG && log_zero_tail(s->log->data, s->log_end, end)) {
      rc = KLEVDB_OK;
      s->log_end = end;
    }
    if (!rc) rc = log_owned(c, s, items.p, items.len / c->isz, upper, e);
    if (rc) {
      kbuf_free(&items);
      kerr_wrap(e, "segment %lld: rebuild index", (long long)s->base);
      return rc;
    }
    s->iver = c->newver;
    /* Go writes the rebuilt index too; a read-only store never writes. The
    ** items are in memory: a failure to keep them (a full disk) fails no
    ** read, the next open rebuilds them again. */
    int64_t isize = fd < 0 ? 0 : sb.st_size;   /* what the file holds, for stat */
    if (!c->ro && !index_write(path, s->iver, c->params, items.p, items.len, true, NULL))
      isize = (s->iver == FMT_V2 ? FILE_HDR : 0) + (int64_t)items.len;
    s->ibuf = items;
    s->n = items.len / c->isz;
    s->isize = isize;
    return KLEVDB_OK;
  }
  kmap *m;
  klevdb_err rc = kmap_open(fd, (size_t)sb.st_size, false, &m, e);
  close(fd);
  if (rc) {
    kerr_wrap(e, "map %s", path);
    return rc;
  }
  int iver;
  int64_t ioff;
  rc = index_detect(m->data, sb.st_size, s->base, c->params, &iver, &ioff, e);
  if (rc) {
    kmap_unref(m);
    kerr_wrap(e, "segment %lld", (long long)s->base);
    return rc;
  }
  size_t n = (size_t)(sb.st_size - ioff) / c->isz;
  size_t ok = items_sane(m->data + ioff, n, c->isz, s->log_end, log_start(s->ver), s->base,
                         upper);
  if (ok < n) {
    kmap_unref(m);
    return kerr(e, KLEVDB_ECORRUPT_INDEX,
                "segment %lld: index corrupted: item %zu does not follow the one before it, "
                "points past the log or past the segment's offsets", (long long)s->base, ok);
  }
  if ((rc = ends_match(c, s, m->data + ioff, n, upper, e))) {
    kmap_unref(m);
    return rc;
  }
  s->imap = m;
  s->ioff = ioff;
  s->iver = iver;
  s->n = n;
  s->isize = sb.st_size;
  return KLEVDB_OK;
}

/* True when item i names a record that the log really holds there. */
static bool item_ok(const segcfg *c, const seg *s, const uint8_t *items, size_t i) {
  klevdb_msg m;
  int64_t len;
  const uint8_t *it = items + i * c->isz;
  int64_t pos = item_pos(it);
  if (pos < log_start(s->ver) || pos >= s->log_end) return false;
  if (rec_decode(s->ver, s->log->data + pos, s->log_end - pos, true, &m, &len, NULL) != 1)
    return false;
  return m.offset == item_off(it);
}

/* The index may lag the log (the writer buffers items) or, after a crash,
** run ahead of it. */
klevdb_err live_items(const segcfg *c, seg *s, bool writer, bool *rewrite,
                      klevdb_error *e) {
  /* The head, or the last segment another process writes: none after it. */
  const int64_t upper = INT64_MAX;
  char path[PATH_CAP];
  seg_path(path, sizeof(path), c->dir, s->base, ".index");
  uint8_t *data = NULL;
  size_t len = 0;
  klevdb_err rc = file_read(path, &data, &len, e);
  if (rc && rc != KLEVDB_ENOTFOUND) return rc;
  *rewrite = false;
  s->iver = c->newver;
  kbuf *b = &s->ibuf;
  b->len = 0;
  if (rc == KLEVDB_OK && len > FILE_HDR) {
    int64_t ioff;
    rc = index_detect(data, (int64_t)len, s->base, c->params, &s->iver, &ioff, e);
    if (rc) {
      /* An item torn by a crash leaves the file unaligned: keep the whole
      ** items (the log has the rest) if the header itself is good. */
      size_t hdr = FILE_HDR;
      size_t aligned = hdr + (len - hdr) / c->isz * c->isz;
      if (memcmp(data, "\xffklevi", 6) != 0 || aligned == len || aligned <= hdr ||
          index_detect(data, (int64_t)aligned, s->base, c->params, &s->iver, &ioff, NULL)) {
        free(data);
        kerr_wrap(e, "segment %lld", (long long)s->base);
        return rc;
      }
      rc = KLEVDB_OK;
      len = aligned;
      *rewrite = writer;
    }
    size_t bytes = len - (size_t)ioff;
    rc = kbuf_reserve(b, bytes, e);
    if (rc) {
      free(data);
      return rc;
    }
    memcpy(b->p, data + ioff, bytes);
    b->len = bytes;
  } else if (rc == KLEVDB_OK && len > 0) {
    /* A header alone (or a torn one): valid when it parses, else rebuilt. */
    int64_t ioff;
    if (index_detect(data, (int64_t)len, s->base, c->params, &s->iver, &ioff, NULL)) {
      if (len == FILE_HDR) {
        rc = index_detect(data, (int64_t)len, s->base, c->params, &s->iver, &ioff, e);
        free(data);
        kerr_wrap(e, "segment %lld", (long long)s->base);
        return rc;
      }
      s->iver = c->newver;
      *rewrite = true;
    }
  } else if (rc == KLEVDB_ENOTFOUND) {
    *rewrite = writer;
  }
  free(data);
  size_t n = b->len / c->isz;
  /* Items that do not climb are rebuilt from the log (the source of truth);
  ** a V1 index might just be read with the wrong item size (it records no
  ** params), so it is refused instead, changing nothing. */
  if (items_sane(b->p, n, c->isz, s->log_end, log_start(s->ver), s->base, upper) < n) {
    if (s->iver == FMT_V1)
      return kerr(e, KLEVDB_ECORRUPT_INDEX,
                  "segment %lld: index corrupted: the V1 index does not match the log "
                  "(damaged, or other key_index/time_index options than the store's?)",
                  (long long)s->base);
    b->len = 0;
    n = 0;
    *rewrite = writer;
  }
  /* Trust the items if the last one matches its record. A V2 index that
  ** ran ahead of its log (power loss) loses the items past the log's end.
  ** A V1 index records no params, so a mismatch there may just as well be
  ** a store opened with the wrong key/time options: refuse, change nothing. */
  if (n && !item_ok(c, s, b->p, n - 1)) {
    if (s->iver == FMT_V1)
      return kerr(e, KLEVDB_ECORRUPT_INDEX,
                  "segment %lld: index corrupted: the V1 index does not match the log "
                  "(other key_index/time_index options than the store's?)",
                  (long long)s->base);
    while (n && !item_ok(c, s, b->p, n - 1)) n--;
    b->len = n * c->isz;
    *rewrite = true;
  }
  s->n = n;
  int64_t from = log_start(s->ver), last_ts = 0;
  if (n) {
    const uint8_t *last = b->p + (n - 1) * c->isz;
    klevdb_msg m;
    int64_t rlen;
    rec_decode(s->ver, s->log->data + item_pos(last), s->log_end - item_pos(last),
               false, &m, &rlen, NULL);
    from = item_pos(last) + rlen;
    last_ts = item_ts(last, c->params);
  }
  int64_t end;
  klevdb_error scan_err;
  rc = log_scan(s->log->data, s->log_end, s->ver, from, c->params, &last_ts, b,
                &end, &scan_err);
  if (rc && rc != KLEVDB_ECORRUPT_LOG) {
    if (e) *e = scan_err;
    return rc;
  }
  /* A record that does not parse at the tail is a write torn by a crash;
  ** the writer cuts it (and any partial header, differences D1), a reader stops. */
  s->log_end = end;
  s->n = b->len / c->isz;
  return log_owned(c, s, b->p, s->n, upper, e);
}

/* A reader of another process's store opens a log, then its index. A
** writer that rewrites a segment in place removes the old index before it
** renames the new log into place, and renames the new index last; so if
** the log's name still holds the file opened, the index read belongs to
** it (or was rebuilt from it), and a failure to load is the files' own.
** Otherwise (replaced, or gone) a writer's rewrite raced the load. */
static bool log_moved(const segcfg *c, seg *s) {
  char path[PATH_CAP];
  struct stat sb;
  seg_path(path, sizeof(path), c->dir, s->base, ".log");
  if (stat(path, &sb) < 0) return true;
  return s->log && s->log->len && sb.st_ino != s->ino;
}

klevdb_err seg_load(const segcfg *c, seg *s, int64_t upper, klevdb_error *e) {
  if (__atomic_load_n(&s->loaded, __ATOMIC_ACQUIRE)) return KLEVDB_OK;
  pthread_mutex_lock(&s->load_mu);
  klevdb_err rc = KLEVDB_OK;
  if (!s->loaded) {
    if (!s->log) rc = log_map(c, s, upper, e);
    if (!rc && s->live) {
      bool rewrite;
      if (s->log->len == 0 || s->ver == 0) s->n = 0;
      else rc = live_items(c, s, false, &rewrite, e);
    } else if (!rc) {
      rc = index_map(c, s, upper, e);
      if (!rc && !s->summed) {
        const uint8_t *items = seg_items(s);
        s->sum_n = (int64_t)s->n;
        s->sum_bytes = s->log_end + s->isize;
        s->sum_ts_lo = s->n ? item_ts(items, c->params) : INT64_MAX;
        s->sum_ts_hi = s->n ? item_ts(items + (s->n - 1) * c->isz, c->params) : INT64_MIN;
        __atomic_store_n(&s->summed, true, __ATOMIC_RELEASE);
      }
      if (!rc) __atomic_add_fetch(c->loads, 1, __ATOMIC_RELAXED);
    }
    if (c->ro && (rc || s->log->len) && log_moved(c, s)) {
      __atomic_add_fetch(c->moves, 1, __ATOMIC_SEQ_CST);
      if (!rc)
        rc = kerr(e, KLEVDB_EIO, "segment %lld: log replaced while it was read",
                  (long long)s->base);
    }
    if (rc && c->ro) {
      /* Load again from the files on the next try. */
      seg_unload(s);
      if (s->fd >= 0) close(s->fd);
      s->fd = -1;
    }
    if (!rc) __atomic_store_n(&s->loaded, true, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(&s->load_mu);
  return rc;
}

klevdb_err seg_follow(const segcfg *c, seg *s, klevdb_error *e) {
  if (!s->live || s->fd < 0 || !s->loaded) return KLEVDB_OK;
  struct stat sb;
  if (fstat(s->fd, &sb) < 0) return kerr_sys(e, errno, "stat segment %lld", (long long)s->base);
  if (sb.st_size < s->log_end) {
    /* Cut under us (a recover): load again from scratch. */
    close(s->fd);
    s->fd = -1;
    seg_unload(s);
    return seg_load(c, s, INT64_MAX, e);
  }
  if (sb.st_size == s->log_end) return KLEVDB_OK;
  if ((size_t)sb.st_size > s->log->len) {
    kmap *m;
    klevdb_err rc = kmap_open(s->fd, log_reserve(c, sb.st_size), false, &m, e);
    if (rc) return rc;
    kmap_unref(s->log);
    s->log = m;
  }
  if (s->ver == 0) {
    /* The writer has now written the header (or a V1 record's start). */
    if (sb.st_size < FILE_HDR) return KLEVDB_OK;
    klevdb_err rc = log_detect(s->log->data, sb.st_size, s->base, &s->ver, e);
    if (rc) return rc;
    s->log_end = log_start(s->ver);
  }
  int64_t last_ts = s->n ? item_ts(s->ibuf.p + (s->n - 1) * c->isz, c->params) : 0;
  int64_t end;
  klevdb_error scan_err;
  klevdb_err rc = log_scan(s->log->data, sb.st_size, s->ver, s->log_end, c->params,
                           &last_ts, &s->ibuf, &end, &scan_err);
  if (rc && rc != KLEVDB_ECORRUPT_LOG) {
    if (e) *e = scan_err;
    return rc;
  }
  /* A record still being written ends the scan; the next follow reads it. */
  s->log_end = end;
  s->n = s->ibuf.len / c->isz;
  return log_owned(c, s, s->ibuf.p, s->n, INT64_MAX, e);
}

klevdb_err seg_read(const segcfg *c, const seg *s, size_t i, klevdb_msg *m,
                    klevdb_error *e) {
  const uint8_t *it = seg_items(s) + i * c->isz;
  int64_t pos = item_pos(it), len, end = seg_end(s);
  if (pos < log_start(s->ver) || pos >= end)
    return kerr(e, KLEVDB_ECORRUPT_INDEX,
                "segment %lld: index corrupted: offset %lld points past the log",
                (long long)s->base, (long long)item_off(it));
  int r = rec_decode(s->ver, s->log->data + pos, end - pos, true, m, &len, e);
  if (r < 0) {
    kerr_wrap(e, "segment %lld: offset %lld", (long long)s->base, (long long)item_off(it));
    return KLEVDB_ECORRUPT_LOG;
  }
  if (r == 0)
    return kerr(e, KLEVDB_ECORRUPT_LOG, "segment %lld: log corrupted: short data",
                (long long)s->base);
  if (m->offset != item_off(it))
    return kerr(e, KLEVDB_ECORRUPT_INDEX,
                "segment %lld: index corrupted: offset %lld holds message %lld",
                (long long)s->base, (long long)item_off(it), (long long)m->offset);
  return KLEVDB_OK;
}

int64_t seg_rec_len(const segcfg *c, const seg *s, size_t i) {
  const uint8_t *it = seg_items(s) + i * c->isz;
  if (i + 1 < seg_n(s)) return item_pos(it + c->isz) - item_pos(it);
  /* The last record: its own header says how long it is. */
  klevdb_msg m;
  int64_t len, pos = item_pos(it), end = seg_end(s);
  if (pos >= 0 && pos < end &&
      rec_decode(s->ver, s->log->data + pos, end - pos, false, &m, &len, NULL) == 1)
    return len;
  return end - pos;
}

/* Reads want bytes at off of fd into buf, all of them inside the file. */
static bool peek_at(int fd, int64_t size, int64_t off, void *buf, size_t want) {
  return off >= 0 && off + (int64_t)want <= size && pread(fd, buf, want, off) == (ssize_t)want;
}

static bool whole_of(const segcfg *c, const seg *s, int64_t upper, const int fds[2], size_t *n,
                     int64_t *bytes) {
  struct stat lsb, isb;
  if (fstat(fds[0], &lsb) < 0 || fstat(fds[1], &isb) < 0) return false;
  int64_t lsize = lsb.st_size, isize = isb.st_size, ioff;
  uint8_t hdr[FILE_HDR], first[32], last[32], rec[REC_HDR];   /* items: 32 bytes at most */
  int ver, iver;
  if (!peek_at(fds[1], isize, 0, hdr, FILE_HDR) ||
      index_detect(hdr, isize, s->base, c->params, &iver, &ioff, NULL) ||
      isize <= ioff || (isize - ioff) % (int64_t)c->isz != 0 ||
      !peek_at(fds[1], isize, ioff, first, c->isz) ||
      !peek_at(fds[1], isize, isize - (int64_t)c->isz, last, c->isz))
    return false;
  size_t k = (size_t)(isize - ioff) / c->isz;
  /* The items climb within the segment's offsets (items_sane checks each
  ** one; a delete of all of them needs only the ends). */
  int64_t o0 = item_off(first), o1 = item_off(last), p0 = item_pos(first), p1 = item_pos(last);
  if (o0 < s->base || o1 >= upper || o1 - o0 + 1 < (int64_t)k || p1 < p0) return false;
  /* The last item names the record the log has there (ends_match), whose
  ** header gives its length. */
  if (!peek_at(fds[0], lsize, 0, hdr, FILE_HDR) || log_detect(hdr, lsize, s->base, &ver, NULL) ||
      p0 < log_start(ver) || !peek_at(fds[0], lsize, p1, rec, REC_HDR))
    return false;
  const uint8_t *f = rec + (ver == FMT_V2 ? REC2_FIELDS : 0);
  int64_t len = rec_size(ver, get_be32(f + REC_KLEN), get_be32(f + REC_VLEN));
  if ((int64_t)get_be64(f + REC_OFFSET) != o1 || p1 + len > lsize) return false;
  *n = k;
  *bytes = p1 - p0 + len + (int64_t)(k * c->isz);
  return true;
}

bool seg_whole(const segcfg *c, const seg *s, int64_t upper, size_t *n, int64_t *bytes,
               int fds[2]) {
  char lpath[PATH_CAP], ipath[PATH_CAP];
  seg_path(lpath, sizeof(lpath), c->dir, s->base, ".log");
  seg_path(ipath, sizeof(ipath), c->dir, s->base, ".index");
  fds[0] = open(lpath, O_RDONLY | O_CLOEXEC);
  fds[1] = fds[0] < 0 ? -1 : open(ipath, O_RDONLY | O_CLOEXEC);
  if (fds[1] >= 0 && whole_of(c, s, upper, fds, n, bytes)) return true;
  if (fds[0] >= 0) close(fds[0]);
  if (fds[1] >= 0) close(fds[1]);
  fds[0] = fds[1] = -1;
  return false;
}

klevdb_err seg_stat(const segcfg *c, seg *s, int64_t *msgs, int64_t *bytes,
                    klevdb_error *e) {
  klevdb_err rc = seg_load(c, s, INT64_MAX, e);
  if (rc) return rc;
  /* The count first: the end then covers at least its records. */
  size_t n = seg_n(s);
  int64_t isize = s->live ? (s->iver == FMT_V2 ? FILE_HDR : 0) + (int64_t)(n * c->isz)
                          : s->isize;
  if (c->ro && s->base == 0 && s->log->len == 0) isize = 0;   /* virtual */
  *msgs = (int64_t)n;
  *bytes = seg_end(s) + isize;
  return KLEVDB_OK;
}

/* ---- rewrite without some offsets (Delete) ---- */

static void rewrite_suffix(char out[9]) {
  static const char alphabet[] = "0123456789abcdefghijklmnopqrstuv";
  uint8_t r[5] = {0};
  if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    memcpy(r, &ts.tv_nsec, sizeof(r) < sizeof(ts.tv_nsec) ? sizeof(r) : sizeof(ts.tv_nsec));
  }
  uint64_t v = 0;
  for (int i = 0; i < 5; i++) v = (v << 8) | r[i];
  for (int i = 0; i < 8; i++) out[i] = alphabet[(v >> (35 - 5 * i)) & 31];
  out[8] = 0;
}

klevdb_err seg_rewrite(const segcfg *c, seg *s, int64_t upper, drop_fn drop, void *ctx,
                       char *tmp_log, char *tmp_idx, size_t cap,
                       size_t *kept, int64_t *first, klevdb_error *e) {
  klevdb_err rc = seg_load(c, s, upper, e);
  if (rc) return rc;
  const uint8_t *items = seg_items(s);
  size_t dropped = 0;
  *first = -1;
  for (size_t i = 0; i < s->n; i++) {
    int64_t off = item_off(items + i * c->isz);
    if (drop(ctx, off)) dropped++;
    else if (*first < 0) *first = off;
  }
  *kept = s->n - dropped;
  if (dropped == 0 || *kept == 0) return KLEVDB_OK;

  int ver = c->keep_rewrite_version ? s->ver : c->newver;
  char sfx[9], path[PATH_CAP];
  rewrite_suffix(sfx);
  seg_path(path, sizeof(path), c->dir, s->base, ".log");
  snprintf(tmp_log, cap, "%s.rewrite.%s", path, sfx);
  seg_path(path, sizeof(path), c->dir, s->base, ".index");
  snprintf(tmp_idx, cap, "%s.rewrite.%s", path, sfx);

  int fd = open(tmp_log, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return kerr_sys(e, errno, "create %s", tmp_log);
  kbuf out = {0}, nitems = {0};
  int64_t pos = log_start(ver), last_ts = 0;
  if (ver == FMT_V2) {
    rc = kbuf_reserve(&out, FILE_HDR, e);
    if (!rc) {
      log_header(out.p);
      out.len = FILE_HDR;
    }
  }
  for (size_t i = 0; !rc && i < s->n; i++) {
    int64_t off = item_off(items + i * c->isz);
    if (drop(ctx, off)) continue;
    klevdb_msg m;
    if ((rc = seg_read(c, s, i, &m, e))) break;
    size_t len = (size_t)rec_size(ver, m.key_len, m.value_len);
    if ((rc = kbuf_reserve(&out, len, e)) || (rc = kbuf_reserve(&nitems, c->isz, e))) break;
    rec_encode(ver, out.p + out.len, m.offset, m.time, m.key, m.key_len, m.value, m.value_len);
    out.len += len;
    if (m.time > last_ts) last_ts = m.time;
    item_encode(nitems.p + nitems.len, c->params, m.offset, pos, last_ts,
                (c->params & IDX_KEYS) ? klevdb_key_hash(m.key, m.key_len) : 0);
    nitems.len += c->isz;
    pos += (int64_t)len;
    if (out.len >= (1 << 20)) {
      int err = write_full(fd, out.p, out.len);
      if (err) rc = kerr_sys(e, err, "write %s", tmp_log);
      out.len = 0;
    }
  }
  if (!rc && out.len) {
    int err = write_full(fd, out.p, out.len);
    if (err) rc = kerr_sys(e, err, "write %s", tmp_log);
  }
  /* Both files are synced before the marker names them, whatever
  ** auto_sync says: they replace messages that were on disk. The log's
  ** writeback starts now and runs while the index is written, so the two
  ** syncs mostly overlap. The index needs no name of its own first: the
  ** marker is what makes either file count. */
  if (!rc) sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
  int ifd = -1;
  if (!rc && (ifd = open(tmp_idx, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
    rc = kerr_sys(e, errno, "create %s", tmp_idx);
  if (!rc) {
    int err = index_put(ifd, ver, c->params, nitems.p, nitems.len);
    if (!err) sync_file_range(ifd, 0, 0, SYNC_FILE_RANGE_WRITE);
    if (err) rc = kerr_sys(e, err, "write %s", tmp_idx);
  }
  if (!rc && fdatasync(fd) < 0) rc = kerr_sys(e, errno, "sync %s", tmp_log);
  if (!rc && fdatasync(ifd) < 0) rc = kerr_sys(e, errno, "sync %s", tmp_idx);
  if (close(fd) < 0 && !rc) rc = kerr_sys(e, errno, "close %s", tmp_log);
  if (ifd >= 0 && close(ifd) < 0 && !rc) rc = kerr_sys(e, errno, "close %s", tmp_idx);
  kbuf_free(&out);
  kbuf_free(&nitems);
  if (rc) {
    unlink(tmp_log);
    unlink(tmp_idx);
  }
  return rc;
}
