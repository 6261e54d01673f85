/*
** dirops.c - directory maintenance without a lock (differences D31): the
** public klevdb_dir_* calls (check, recover, stat, backup, migrate of a
** store's segments, built on repair.c's per-segment work), the backup's
** destination, and Go's backup copy rule.
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kdb.h"

#define PATH_CAP 4096
/* Room left in a path for "/<20 digits>.index.recover" and the like. */
#define DIR_MAX (PATH_CAP - 64)

static int opts_params(const klevdb_options *o) {
  if (!o) return 0;
  return (o->time_index ? IDX_TIMES : 0) | (o->key_index ? IDX_KEYS : 0);
}

/* Tells the caller's progress callback, if any, how many segments are done. */
static void progress(const klevdb_options *o, int64_t done, int64_t total) {
  if (o && o->progress) o->progress(o->progress_arg, done, total);
}

klevdb_err file_copy(const char *src, const char *dst, klevdb_error *e) {
  int in = open(src, O_RDONLY | O_CLOEXEC);
  if (in < 0) return kerr_sys(e, errno, "copy open %s", src);
  struct stat ss, ds;
  if (fstat(in, &ss) < 0) {
    int err = errno;
    close(in);
    return kerr_sys(e, err, "copy stat %s", src);
  }
  if (stat(dst, &ds) == 0 && ds.st_size == ss.st_size &&
      ds.st_mtim.tv_sec == ss.st_mtim.tv_sec && ds.st_mtim.tv_nsec == ss.st_mtim.tv_nsec) {
    close(in);
    return KLEVDB_OK;
  }
  /* A new file renamed over dst: a reader that maps dst (a store opened
  ** there) keeps the old file instead of having it cut under it. */
  char tmp[4096];
  if (snprintf(tmp, sizeof(tmp), "%s.copy", dst) >= (int)sizeof(tmp)) {
    close(in);
    return kerr(e, KLEVDB_EINVAL, "copy %s: path too long", dst);
  }
  int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out < 0) {
    int err = errno;
    close(in);
    return kerr_sys(e, err, "copy create %s", dst);
  }
  int64_t copied = 0;
  int err = 0;
  uint8_t *buf = malloc(1 << 16);
  if (!buf) err = ENOMEM;
  while (!err) {
    ssize_t r = read(in, buf, 1 << 16);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) err = errno;
    if (r <= 0) break;
    if ((err = write_full(out, buf, (size_t)r)) != 0) break;
    copied += r;
  }
  free(buf);
  close(in);
  if (!err && fsync(out) < 0) err = errno;
  struct timespec times[2] = {ss.st_mtim, ss.st_mtim};
  if (!err && futimens(out, times) < 0) err = errno;
  if (close(out) < 0 && !err) err = errno;
  if (!err && copied < (int64_t)ss.st_size) {
    unlink(tmp);
    return kerr(e, KLEVDB_EIO, "copy %s: partial copy (%lld/%lld)", src,
                (long long)copied, (long long)ss.st_size);
  }
  if (!err && rename(tmp, dst) < 0) err = errno;
  if (err) {
    unlink(tmp);
    return kerr_sys(e, err, "copy %s to %s", src, dst);
  }
  return KLEVDB_OK;
}

/* ---- directory level ---- */

/* The message is built even when the caller passed no error struct. */
#define LOCAL_ERR(err)                                                         \
  klevdb_error local_err_;                                                     \
  klevdb_error *e = (err) ? (err) : &local_err_;                               \
  e->code = KLEVDB_OK;                                                         \
  e->msg[0] = 0
#define NEED_DIR(d)                                                            \
  if (!(d)) return kerr(e, KLEVDB_EINVAL, "no directory given")

/* The base of dir's last segment: *found false when there is none (a
** missing or empty directory is fine: nothing to check or recover). */
static klevdb_err last_segment(const char *dir, int64_t *base, bool *found, klevdb_error *e) {
  int64_t *bases;
  size_t n;
  *found = false;
  klevdb_err rc = dir_segments(dir, DIRSEG_MISSING_OK, &bases, &n, e);
  if (rc) return rc;
  if (n) {
    *base = bases[n - 1];
    *found = true;
  }
  free(bases);
  return KLEVDB_OK;
}

klevdb_err klevdb_dir_check(const char *dir, const klevdb_options *opts,
                            klevdb_error *err) {
  LOCAL_ERR(err);
  NEED_DIR(dir);
  int64_t base;
  bool found;
  klevdb_err rc = last_segment(dir, &base, &found, e);
  if (rc || !found) return rc;
  rc = seg_check(dir, base, opts_params(opts), writer_active(dir), e);
  if (rc) kerr_wrap(e, "check %lld", (long long)base);
  return rc;
}

klevdb_err klevdb_dir_recover(const char *dir, const klevdb_options *opts,
                              klevdb_error *err) {
  LOCAL_ERR(err);
  NEED_DIR(dir);
  int64_t base;
  bool found;
  klevdb_err rc = last_segment(dir, &base, &found, e);
  if (rc || !found) return rc;
  progress(opts, 0, 1);
  rc = seg_recover(dir, base, opts_params(opts), true, e);
  if (rc) kerr_wrap(e, "recover %lld", (long long)base);
  else progress(opts, 1, 1);
  return rc;
}

/* One segment's share of Stat: the index header is validated
** but its body is neither read nor required to be aligned. */
static klevdb_err seg_stat(const char *dir, int64_t base, int params,
                           klevdb_stat *st, klevdb_error *e) {
  char lpath[PATH_CAP], ipath[PATH_CAP];
  if (seg_paths(dir, base, lpath, ipath, e)) return KLEVDB_EINVAL;
  struct stat ls;
  if (stat(lpath, &ls) < 0) return kerr_sys(e, errno, "stat log %s", lpath);
  int fd = open(ipath, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return kerr_sys(e, errno, "stat index %s", ipath);
  struct stat is;
  uint8_t hdr[FILE_HDR];
  ssize_t got = 0;
  int err = fstat(fd, &is) < 0 ? errno : 0;
  if (!err && is.st_size > 0) {
    size_t want = is.st_size < FILE_HDR ? (size_t)is.st_size : FILE_HDR;
    while ((got = pread(fd, hdr, want, 0)) < 0 && errno == EINTR) {}
    if (got < 0) err = errno;
    else if ((size_t)got < want) err = EIO;
  }
  close(fd);
  if (err) return kerr_sys(e, err, "stat index %s", ipath);

  int64_t size = is.st_size, ds = 0;
  if (size > 0) {
    /* index_detect also checks alignment, which Stat must not: a V2
    ** header is validated against a header-only size, a V1 file (no
    ** header) against a size of one item. */
    int iver;
    klevdb_error scratch;
    if (index_detect(hdr, size < FILE_HDR ? size : FILE_HDR, base, params, &iver, &ds,
                     &scratch) != KLEVDB_OK) {
      int64_t probe = size < FILE_HDR ? size : (int64_t)item_size(params);
      klevdb_err rc = index_detect(hdr, probe, base, params, &iver, &ds, e);
      if (rc) return rc;
    }
  }
  st->segments += 1;
  st->messages += (size - ds) / (int64_t)item_size(params);
  st->size += (int64_t)ls.st_size + size;
  return KLEVDB_OK;
}

klevdb_err klevdb_dir_stat(const char *dir, const klevdb_options *opts,
                           klevdb_stat *out, klevdb_error *err) {
  LOCAL_ERR(err);
  NEED_DIR(dir);
  if (!out) return kerr(e, KLEVDB_EINVAL, "stat: no result given");
  klevdb_stat st = {0, 0, 0};
  *out = st;
  int64_t *bases;
  size_t n;
  klevdb_err rc = dir_segments(dir, DIRSEG_MISSING_OK, &bases, &n, e);
  if (rc) return rc;
  for (size_t i = 0; i < n && !rc; i++) {
    rc = seg_stat(dir, bases[i], opts_params(opts), &st, e);
    if (rc) kerr_wrap(e, "stat %lld", (long long)bases[i]);
  }
  free(bases);
  if (!rc) *out = st;
  return rc;
}

static klevdb_err mkdir_p(const char *path, klevdb_error *e) {
  char buf[PATH_CAP];
  size_t len = strlen(path);
  if (len == 0 || len >= sizeof(buf)) return kerr(e, KLEVDB_EINVAL, "bad directory name");
  memcpy(buf, path, len + 1);
  for (size_t i = 1; i <= len; i++) {
    if (buf[i] != '/' && buf[i] != 0) continue;
    char c = buf[i];
    buf[i] = 0;
    if (mkdir(buf, 0700) < 0 && errno != EEXIST) return kerr_sys(e, errno, "mkdir %s", buf);
    buf[i] = c;
  }
  struct stat st;
  if (stat(path, &st) < 0) return kerr_sys(e, errno, "mkdir %s", path);
  if (!S_ISDIR(st.st_mode)) return kerr_sys(e, ENOTDIR, "mkdir %s", path);
  return KLEVDB_OK;
}

/* ---- the destination of a backup ---- */

/* The absolute path dir will have once created: the real path of its
** longest existing prefix, then the missing components with "." and ".."
** applied (as the kernel applies them once mkdir has made the directories
** before them). */
static klevdb_err future_path(const char *dir, char *out, size_t cap, klevdb_error *e) {
  char buf[PATH_CAP], real[PATH_MAX];
  if (dir[0] == '/') {
    if (snprintf(buf, sizeof(buf), "%s", dir) >= (int)sizeof(buf)) goto too_long;
  } else {
    if (!getcwd(real, sizeof(real))) return kerr_sys(e, errno, "backup: current directory");
    if (snprintf(buf, sizeof(buf), "%s/%s", real, dir) >= (int)sizeof(buf)) goto too_long;
  }
  size_t cut = strlen(buf);   /* buf[0..cut) is the prefix tried */
  for (;;) {
    char c = buf[cut];
    buf[cut] = 0;
    bool found = realpath(cut ? buf : "/", real) != NULL;
    int err = errno;
    buf[cut] = c;
    if (found) break;
    if (err != ENOENT || cut == 0) return kerr_sys(e, err, "backup: %s", dir);
    while (cut > 0 && buf[cut - 1] != '/') cut--;
    if (cut > 0) cut--;
  }
  size_t len = strlen(real);
  if (len >= cap) goto too_long;
  memcpy(out, real, len + 1);
  for (const char *p = buf + cut; *p;) {
    while (*p == '/') p++;
    const char *q = p;
    while (*q && *q != '/') q++;
    size_t n = (size_t)(q - p);
    if (n == 2 && p[0] == '.' && p[1] == '.') {
      char *slash = strrchr(out, '/');
      len = slash == out ? 1 : (size_t)(slash - out);
      out[len] = 0;
    } else if (n && !(n == 1 && p[0] == '.')) {
      if (len + 1 + n >= cap) goto too_long;
      if (len > 1) out[len++] = '/';
      memcpy(out + len, p, n);
      len += n;
      out[len] = 0;
    }
    p = q;
  }
  return KLEVDB_OK;
too_long:
  return kerr(e, KLEVDB_EINVAL, "backup: directory name too long");
}

/* A backup never mixes two stores: its destination holds nothing else. */
static klevdb_err dest_empty(const char *dst, klevdb_error *e) {
  DIR *d = opendir(dst);
  if (!d) return kerr_sys(e, errno, "backup: %s", dst);
  struct dirent *de;
  bool other = false;
  while (!other && (de = readdir(d)) != NULL)
    other = strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && strcmp(de->d_name, ".lock");
  closedir(d);
  if (other)
    return kerr(e, KLEVDB_EINVAL, "backup: %s is not empty (back up into a new or empty directory)",
                dst);
  return KLEVDB_OK;
}

static klevdb_err dest_flock(int fd, const char *dst, klevdb_error *e) {
  if (flock(fd, LOCK_EX | LOCK_NB) == 0) return KLEVDB_OK;
  if (errno == EWOULDBLOCK)
    return kerr(e, KLEVDB_ELOCKED, "backup: %s is locked: a store is open there", dst);
  return kerr_sys(e, errno, "backup: lock %s", dst);
}

klevdb_err backup_dest_lock(const char *src, const char *dst, int *lockfd, klevdb_error *e) {
  char s[PATH_MAX], d[PATH_CAP], lock[PATH_CAP + 8];
  *lockfd = -1;
  if (!realpath(src, s)) return kerr_sys(e, errno, "backup: %s", src);
  klevdb_err rc = future_path(dst, d, sizeof(d), e);
  if (rc) return rc;
  size_t sl = strlen(s);
  if (strcmp(d, s) == 0)
    return kerr(e, KLEVDB_EINVAL, "backup: %s and %s are the same directory", src, dst);
  if (strncmp(d, s, sl) == 0 && (d[sl] == '/' || sl == 1))
    return kerr(e, KLEVDB_EINVAL, "backup: %s is inside the store %s", dst, src);
  if (snprintf(lock, sizeof(lock), "%s/.lock", dst) >= (int)sizeof(lock))
    return kerr(e, KLEVDB_EINVAL, "backup: directory name too long");
  int fd = -1;
  struct stat st;
  if (stat(dst, &st) == 0) {
    if (!S_ISDIR(st.st_mode)) return kerr_sys(e, ENOTDIR, "backup: %s", dst);
    /* A writer there first (its store is not empty either, but "locked"
    ** says more), without creating a lock file in a folder we refuse. */
    if ((fd = open(lock, O_RDONLY | O_CLOEXEC)) >= 0 && (rc = dest_flock(fd, dst, e))) {
      close(fd);
      return rc;
    }
    if ((rc = dest_empty(dst, e))) {
      if (fd >= 0) close(fd);
      return rc;
    }
  } else if ((rc = mkdir_p(dst, e))) {
    return rc;
  }
  if (fd < 0) {
    if ((fd = open(lock, O_CREAT | O_RDONLY | O_CLOEXEC, 0600)) < 0)
      return kerr_sys(e, errno, "backup: open lock %s", lock);
    if ((rc = dest_flock(fd, dst, e))) {
      close(fd);
      return rc;
    }
  }
  /* Someone may have written there between the look and the lock. */
  if ((rc = dest_empty(dst, e))) {
    close(fd);
    return rc;
  }
  *lockfd = fd;
  return KLEVDB_OK;
}

klevdb_err klevdb_dir_backup(const char *src, const char *dst, klevdb_error *err) {
  LOCAL_ERR(err);
  NEED_DIR(src);
  NEED_DIR(dst);
  if (strlen(src) > DIR_MAX || strlen(dst) > DIR_MAX)
    return kerr(e, KLEVDB_EINVAL, "backup: directory name too long");
  struct stat st;
  if (stat(src, &st) < 0) {
    if (errno == ENOENT) return KLEVDB_OK;
    return kerr_sys(e, errno, "backup stat %s", src);
  }
  int64_t *bases;
  size_t n;
  int lockfd = -1;
  klevdb_err rc = dir_segments(src, 0, &bases, &n, e);
  if (!rc) rc = backup_dest_lock(src, dst, &lockfd, e);
  if (rc) {
    free(bases);
    return rc;
  }
  for (size_t i = 0; i < n && !rc; i++) {
    char from[PATH_CAP], to[PATH_CAP];
    seg_path(from, sizeof(from), src, bases[i], ".log");
    seg_path(to, sizeof(to), dst, bases[i], ".log");
    rc = file_copy(from, to, e);
    if (!rc) {
      seg_path(from, sizeof(from), src, bases[i], ".index");
      seg_path(to, sizeof(to), dst, bases[i], ".index");
      rc = file_copy(from, to, e);
    }
    if (rc) kerr_wrap(e, "backup %lld", (long long)bases[i]);
  }
  free(bases);
  if (!rc) rc = dir_sync(dst, e);
  close(lockfd);
  return rc;
}

klevdb_err klevdb_dir_migrate(const char *dir, const klevdb_options *opts,
                              klevdb_format to, klevdb_error *err) {
  LOCAL_ERR(err);
  NEED_DIR(dir);
  if (to != KLEVDB_V1 && to != KLEVDB_V2)
    return kerr(e, KLEVDB_EINVAL, "migrate: version must be specified (e.g. KLEVDB_V2)");
  int64_t *bases;
  size_t n;
  klevdb_err rc = dir_segments(dir, DIRSEG_MISSING_OK, &bases, &n, e);
  if (rc) return rc;
  int ver = to == KLEVDB_V1 ? FMT_V1 : FMT_V2;
  if (n) progress(opts, 0, (int64_t)n);
  for (size_t i = 0; i < n && !rc; i++) {
    rc = seg_migrate(dir, bases[i], opts_params(opts), ver, true, e);
    if (rc) kerr_wrap(e, "migrate %lld", (long long)bases[i]);
    else progress(opts, (int64_t)i + 1, (int64_t)n);
  }
  free(bases);
  return rc;
}

void klevdb_dir_indexes(const char *dir, int *key_index, int *time_index) {
  *key_index = *time_index = 1;
  int64_t *bases;
  size_t n;
  if (!dir || dir_segments(dir, DIRSEG_MISSING_OK, &bases, &n, NULL)) return;
  for (size_t i = n; i-- > 0;) {
    char path[4096];
    seg_path(path, sizeof(path), dir, bases[i], ".index");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    uint8_t h[FILE_HDR];
    ssize_t got;
    while ((got = pread(fd, h, sizeof(h), 0)) < 0 && errno == EINTR) {}
    close(fd);
    if (got < (ssize_t)sizeof(h)) continue;   /* empty: an older one may say */
    int ver;
    int64_t start;
    /* Any params pass the header check once the params byte is taken. */
    if (index_detect(h, FILE_HDR, bases[i], h[HDR_PARAMS] & (IDX_TIMES | IDX_KEYS), &ver, &start, NULL) == KLEVDB_OK &&
        ver == FMT_V2) {
      *time_index = (h[HDR_PARAMS] & IDX_TIMES) != 0;
      *key_index = (h[HDR_PARAMS] & IDX_KEYS) != 0;
    }
    break;
  }
  free(bases);
}
