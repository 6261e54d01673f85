/*
** segfile.c - file plumbing shared by the store and the directory helpers:
** segment names and discovery, refcounted read-only mappings, whole-file
** reads, log scanning into index items, and index file writing.
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kdb.h"

void seg_path(char *out, size_t cap, const char *dir, int64_t base, const char *ext) {
  snprintf(out, cap, "%s/%020lld%s", dir, (long long)base, ext);
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* A temporary file that a crashed writer (Go's or ours) left: rewrites,
** recovers, migrates, index writes, batches. */
static bool temp_name(const char *n) {
  size_t len = strlen(n);
  if (n[0] < '0' || n[0] > '9') return false;
  return strstr(n, ".log.rewrite.") || strstr(n, ".index.rewrite.") ||
         (len > 8 && strcmp(n + len - 8, ".recover") == 0) ||
         (len > 8 && strcmp(n + len - 8, ".migrate") == 0) ||
         (len > 10 && strcmp(n + len - 10, ".index.tmp") == 0) ||
         (len > 10 && strcmp(n + len - 10, ".log.batch") == 0) ||
         (len > 12 && strcmp(n + len - 12, ".index.batch") == 0) ||
         (len > 16 && strcmp(n + len - 16, ".index.batch.tmp") == 0);
}

klevdb_err dir_segments(const char *dir, int flags, int64_t **bases, size_t *n,
                        klevdb_error *e) {
  *bases = NULL;
  *n = 0;
  DIR *d = opendir(dir);
  if (!d) {
    if (errno == ENOENT && (flags & DIRSEG_MISSING_OK)) return KLEVDB_OK;
    return kerr_sys(e, errno, "open directory %s", dir);
  }
  size_t cap = 0;
  klevdb_err rc = KLEVDB_OK;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    size_t len = strlen(de->d_name);
    if ((flags & DIRSEG_CLEAN_TEMPS) && temp_name(de->d_name)) {
      char path[4200];
      snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
      unlink(path);
      continue;
    }
    if (len < 5 || strcmp(de->d_name + len - 4, ".log") != 0) continue;
    char *end;
    errno = 0;
    long long v = strtoll(de->d_name, &end, 10);
    if (errno || end != de->d_name + len - 4 || end == de->d_name) {
      rc = kerr(e, KLEVDB_EINVAL, "find parse offset: %s is not a segment name", de->d_name);
      break;
    }
    if (*n == cap) {
      cap = cap ? cap * 2 : 16;
      int64_t *nb = realloc(*bases, cap * sizeof(int64_t));
      if (!nb) {
        rc = kerr_sys(e, ENOMEM, "list %s", dir);
        break;
      }
      *bases = nb;
    }
    (*bases)[(*n)++] = v;
  }
  closedir(d);
  if (rc) {
    free(*bases);
    *bases = NULL;
    *n = 0;
    return rc;
  }
  if (*n > 1) qsort(*bases, *n, sizeof(int64_t), cmp_i64);
  return KLEVDB_OK;
}

/* "<20 digits>.log", the only names a store's segments get. */
static bool padded_seg_name(const char *name, int64_t *base) {
  if (strlen(name) != 24 || strcmp(name + 20, ".log") != 0) return false;
  int64_t v = 0;
  for (int i = 0; i < 20; i++) {
    if (name[i] < '0' || name[i] > '9') return false;
    if (v > (INT64_MAX - (name[i] - '0')) / 10) return false;
    v = v * 10 + (name[i] - '0');
  }
  *base = v;
  return true;
}

klevdb_err klevdb_dir_segments(const char *dir, int64_t **bases, size_t *n, klevdb_error *e) {
  if (!bases || !n) return kerr(e, KLEVDB_EINVAL, "list: no place for the segments");
  *bases = NULL;
  *n = 0;
  DIR *d = dir ? opendir(dir) : NULL;
  if (!d) {
    int err = dir ? errno : EINVAL;
    kerr_sys(e, err, "%s", dir ? dir : "(no directory)");
    errno = err;   /* callers print it with names of their own */
    return err == ENOMEM ? KLEVDB_ENOMEM : KLEVDB_EIO;
  }
  size_t cap = 0;
  int err = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    int64_t base;
    if (!padded_seg_name(de->d_name, &base)) continue;
    if (*n == cap) {
      cap = cap ? cap * 2 : 16;
      int64_t *nb = realloc(*bases, cap * sizeof(int64_t));
      if (!nb) {
        err = ENOMEM;
        break;
      }
      *bases = nb;
    }
    (*bases)[(*n)++] = base;
  }
  closedir(d);
  if (err) {
    free(*bases);
    *bases = NULL;
    *n = 0;
    kerr_sys(e, err, "%s", dir);
    errno = err;
    return KLEVDB_ENOMEM;
  }
  if (*n > 1) qsort(*bases, *n, sizeof(int64_t), cmp_i64);
  return KLEVDB_OK;
}

int klevdb_segment_format(const char *dir, int64_t base) {
  char path[4200];
  seg_path(path, sizeof(path), dir, base, ".log");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  uint8_t h[FILE_HDR], v2[FILE_HDR];
  ssize_t got = read(fd, h, sizeof(h));
  close(fd);
  if (got == 0) return 0;
  if (got != (ssize_t)sizeof(h)) return -1;
  /* Only the exact V2 header is V2; anything else that long is taken for
  ** V1 here (an open tells a damaged header from V1 by the base). */
  log_header(v2);
  return memcmp(h, v2, sizeof(h)) == 0 ? KLEVDB_V2 : KLEVDB_V1;
}

klevdb_err kmap_open(int fd, size_t reserve, bool writable, kmap **out, klevdb_error *e) {
  kmap *m = calloc(1, sizeof(*m));
  if (!m) return kerr_sys(e, ENOMEM, "map");
  if (reserve) {
    void *p = mmap(NULL, reserve, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      free(m);
      return kerr_sys(e, err, "mmap");
    }
    m->data = p;
    m->len = reserve;
  }
  m->refs = 1;
  *out = m;
  return KLEVDB_OK;
}

kmap *kmap_ref(kmap *m) {
  if (m) __atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED);
  return m;
}

bool kmap_drop(kmap *m) {
  return m && __atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) == 0;
}

void kmap_free(kmap *m) {
  if (m->len) munmap((void *)m->data, m->len);
  free(m);
}

void kmap_unref(kmap *m) {
  if (kmap_drop(m)) kmap_free(m);
}

klevdb_err file_open(const char *path, int flags, klevdb_err bad, int *fd_out, klevdb_error *e) {
  *fd_out = -1;
  /* Not blocking: a FIFO in a segment's place would hang the open. */
  int fd = open(path, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
  if (fd < 0) {
    int err = errno;
    klevdb_err rc = err == ELOOP
        ? kerr(e, bad, "%s is a symbolic link: a store's files must be its own regular files", path)
        : err == EISDIR ? kerr(e, bad, "%s is not a regular file", path)
                        : kerr_sys(e, err, "open %s", path);
    errno = err;
    return rc;
  }
  struct stat sb;
  int err = fstat(fd, &sb) < 0 ? errno : 0;
  if (!err && !S_ISREG(sb.st_mode)) {
    close(fd);
    klevdb_err rc = kerr(e, bad, "%s is not a regular file", path);
    errno = EINVAL;
    return rc;
  }
  if (!err && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) err = errno;
  if (err) {
    close(fd);
    klevdb_err rc = kerr_sys(e, err, "open %s", path);
    errno = err;
    return rc;
  }
  *fd_out = fd;
  return KLEVDB_OK;
}

/* The class of damage for a file of the store that is not a regular file. */
static klevdb_err file_class(const char *path) {
  size_t n = strlen(path);
  if (n >= 4 && strcmp(path + n - 4, ".log") == 0) return KLEVDB_ECORRUPT_LOG;
  if (n >= 6 && strcmp(path + n - 6, ".index") == 0) return KLEVDB_ECORRUPT_INDEX;
  return KLEVDB_EIO;
}

klevdb_err file_read(const char *path, uint8_t **data, size_t *len, klevdb_error *e) {
  *data = NULL;
  *len = 0;
  int fd;
  klevdb_err rc = file_open(path, O_RDONLY, file_class(path), &fd, e);
  if (rc) return errno == ENOENT ? kerr(e, KLEVDB_ENOTFOUND, "%s does not exist", path) : rc;
  struct stat st;
  if (fstat(fd, &st) < 0) {
    int err = errno;
    close(fd);
    return kerr_sys(e, err, "stat %s", path);
  }
  size_t n = (size_t)st.st_size, got = 0;
  uint8_t *p = malloc(n ? n : 1);
  if (!p) {
    close(fd);
    return kerr_sys(e, ENOMEM, "read %s", path);
  }
  while (got < n) {
    ssize_t r = pread(fd, p + got, n - got, (off_t)got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      int err = r < 0 ? errno : EIO;
      free(p);
      close(fd);
      return kerr_sys(e, err, "read %s", path);
    }
    got += (size_t)r;
  }
  close(fd);
  *data = p;
  *len = n;
  return KLEVDB_OK;
}

klevdb_err kbuf_reserve(kbuf *b, size_t extra, klevdb_error *e) {
  if (b->cap - b->len >= extra) return KLEVDB_OK;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap - b->len < extra) cap *= 2;
  uint8_t *p = realloc(b->p, cap);
  if (!p) return kerr_sys(e, ENOMEM, "grow buffer");
  b->p = p;
  b->cap = cap;
  return KLEVDB_OK;
}

void kbuf_free(kbuf *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

klevdb_err log_scan(const uint8_t *data, int64_t size, int ver, int64_t from,
                    int params, int64_t *last_ts, kbuf *items, int64_t *end,
                    klevdb_error *e) {
  size_t isz = item_size(params);
  int64_t pos = from;
  int64_t prev = items->len >= isz ? item_off(items->p + items->len - isz) : INT64_MIN;
  for (;;) {
    klevdb_msg m;
    int64_t len;
    if (size - pos < REC_HDR) break;   /* (an empty log may have no mapping) */
    int r = rec_decode(ver, data + pos, size - pos, true, &m, &len, e);
    if (r == 0) break;
    /* Offsets only grow: a record that goes back is not one that was
    ** written here (a zeroed V1 stretch parses as offset 0, empty). */
    if (r > 0 && m.offset <= prev) {
      kerr(e, KLEVDB_ECORRUPT_LOG, "log corrupted: offset %lld after %lld", (long long)m.offset,
           (long long)prev);
      r = -1;
    }
    if (r < 0) {
      *end = pos;
      return KLEVDB_ECORRUPT_LOG;
    }
    prev = m.offset;
    klevdb_err rc = kbuf_reserve(items, isz, e);
    if (rc) {
      *end = pos;
      return rc;
    }
    if (m.time > *last_ts) *last_ts = m.time;
    item_encode(items->p + items->len, params, m.offset, pos, *last_ts,
                (params & IDX_KEYS) ? klevdb_key_hash(m.key, m.key_len) : 0);
    items->len += isz;
    pos += len;
  }
  *end = pos;
  return KLEVDB_OK;
}

int write_full(int fd, const uint8_t *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return errno;
    if (w == 0) return EIO;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

int pwrite_full(int fd, const uint8_t *p, size_t n, int64_t at) {
  while (n) {
    ssize_t w = pwrite(fd, p, n, (off_t)at);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return errno;
    if (w == 0) return EIO;
    p += w;
    at += w;
    n -= (size_t)w;
  }
  return 0;
}

bool log_zero_tail(const uint8_t *data, int64_t size, int64_t from) {
  for (int64_t i = from; i < size; i++)
    if (data[i]) return false;
  return true;
}

int index_put(int fd, int ver, int params, const uint8_t *items, size_t len) {
  int err = 0;
  if (ver == FMT_V2) {
    uint8_t h[FILE_HDR];
    index_header(h, params);
    err = write_full(fd, h, FILE_HDR);
  }
  return err ? err : write_full(fd, items, len);
}

klevdb_err index_write(const char *path, int ver, int params,
                       const uint8_t *items, size_t len, bool sync, klevdb_error *e) {
  char tmp[4096];
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return kerr_sys(e, errno, "create %s", tmp);
  int err = index_put(fd, ver, params, items, len);
  if (!err && sync && fsync(fd) < 0) err = errno;
  if (close(fd) < 0 && !err) err = errno;
  if (!err && rename(tmp, path) < 0) err = errno;
  if (err) {
    unlink(tmp);
    return kerr_sys(e, err, "write index %s", path);
  }
  return KLEVDB_OK;
}

klevdb_err dir_sync(const char *dir, klevdb_error *e) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return kerr_sys(e, errno, "open directory %s", dir);
  int err = fsync(fd) < 0 ? errno : 0;
  close(fd);
  return err ? kerr_sys(e, err, "sync directory %s", dir) : KLEVDB_OK;
}

