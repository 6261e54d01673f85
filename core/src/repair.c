/*
** repair.c - the per-segment work under a store's open and the directory
** helpers: check (the index against its log), recover (keep the intact
** records, cut the rest, rebuild the index) and migrate (V1 <-> V2) of one
** segment. Rewrites go to a temporary file renamed over the original.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kdb.h"

#define PATH_CAP 4096
/* Room left in a path for "/<20 digits>.index.recover" and the like. */
#define DIR_MAX (PATH_CAP - 64)

klevdb_err seg_paths(const char *dir, int64_t base, char *lpath, char *ipath,
                     klevdb_error *e) {
  if (strlen(dir) > DIR_MAX) return kerr(e, KLEVDB_EINVAL, "directory name too long");
  seg_path(lpath, PATH_CAP, dir, base, ".log");
  seg_path(ipath, PATH_CAP, dir, base, ".index");
  return KLEVDB_OK;
}

/* Reads a whole file. A missing file sets *missing when the caller can
** live without it; otherwise it is an I/O error, not ENOTFOUND, because
** that class means "no such offset" to users. */
static klevdb_err load(const char *path, uint8_t **data, size_t *len,
                       bool *missing, klevdb_error *e) {
  klevdb_err rc = file_read(path, data, len, e);
  if (missing) *missing = false;
  if (rc != KLEVDB_ENOTFOUND) return rc;
  if (missing) {
    *missing = true;
    return KLEVDB_OK;
  }
  return kerr_sys(e, ENOENT, "open %s", path);
}

static klevdb_err unlink_missing_ok(const char *path, klevdb_error *e) {
  if (unlink(path) < 0 && errno != ENOENT) return kerr_sys(e, errno, "remove %s", path);
  return KLEVDB_OK;
}

/* Writes data to tmp (a fresh file: a stale one from a crash is removed,
** never appended to) and renames it over path, so that readers which
** mapped the old file keep valid memory. */
static klevdb_err replace_file(const char *tmp, const char *path,
                               const uint8_t *data, size_t len, klevdb_error *e) {
  klevdb_err rc = unlink_missing_ok(tmp, e);
  if (rc) return rc;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return kerr_sys(e, errno, "create %s", tmp);
  int err = write_full(fd, data, len);
  if (!err && fsync(fd) < 0) err = errno;
  if (close(fd) < 0 && !err) err = errno;
  if (!err && rename(tmp, path) < 0) err = errno;
  if (err) {
    unlink(tmp);
    return kerr_sys(e, err, "replace %s", path);
  }
  return KLEVDB_OK;
}

/* The items a rebuild would write for this log image (0-start clamp). */
static klevdb_err log_items(const uint8_t *data, size_t size, int64_t base,
                            int params, int *ver, kbuf *items, int64_t *end,
                            klevdb_error *e) {
  klevdb_err rc = log_detect(data, (int64_t)size, base, ver, e);
  if (rc) return rc;
  int64_t last_ts = 0;
  return log_scan(data, (int64_t)size, *ver, log_start(*ver), params, &last_ts,
                  items, end, e);
}

klevdb_err seg_check(const char *dir, int64_t base, int params, bool live, klevdb_error *e) {
  char lpath[PATH_CAP], ipath[PATH_CAP];
  if (seg_paths(dir, base, lpath, ipath, e)) return KLEVDB_EINVAL;
  uint8_t *log = NULL, *idx = NULL;
  size_t lsize, isize;
  kbuf items = {0};
  int ver, iver;
  int64_t end, ds;
  bool missing;

  klevdb_err rc = load(lpath, &log, &lsize, NULL, e);
  if (!rc) rc = log_items(log, lsize, base, params, &ver, &items, &end, e);
  /* A live writer's head has room allocated ahead (zeros) and its index
  ** is written behind the log: neither is damage. */
  if (rc == KLEVDB_ECORRUPT_LOG && live && log_zero_tail(log, (int64_t)lsize, end)) rc = KLEVDB_OK;
  if (!rc) rc = load(ipath, &idx, &isize, &missing, e);
  if (!rc && !missing) {
    rc = index_detect(idx, (int64_t)isize, base, params, &iver, &ds, e);
    size_t ilen = (size_t)((int64_t)isize - ds);
    if (!rc && (live ? ilen > items.len : ilen != items.len)) rc = kerr(e, KLEVDB_ECORRUPT_INDEX, "index corrupted");
    if (!rc && ilen && memcmp(idx + ds, items.p, ilen) != 0)
      rc = kerr(e, KLEVDB_ECORRUPT_INDEX, "index corrupted");
  }
  free(log);
  free(idx);
  kbuf_free(&items);
  return rc;
}

klevdb_err seg_recover(const char *dir, int64_t base, int params, bool sync,
                       klevdb_error *e) {
  char lpath[PATH_CAP], ipath[PATH_CAP], tmp[PATH_CAP + 16];
  if (seg_paths(dir, base, lpath, ipath, e)) return KLEVDB_EINVAL;
  snprintf(tmp, sizeof(tmp), "%s.recover", lpath);
  uint8_t *log = NULL, *idx = NULL;
  size_t lsize, isize = 0;
  kbuf items = {0};
  int ver, iver;
  int64_t end = 0, ds;
  bool missing = false;

  klevdb_err rc = load(lpath, &log, &lsize, NULL, e);
  if (!rc) rc = log_detect(log, (int64_t)lsize, base, &ver, e);
  if (rc) goto out; /* a bad file header is beyond repair */
  int64_t last_ts = 0;
  klevdb_error scan_err; /* a corrupt record is what Recover repairs */
  rc = log_scan(log, (int64_t)lsize, ver, log_start(ver), params, &last_ts, &items,
                &end, &scan_err);
  if (rc && rc != KLEVDB_ECORRUPT_LOG) {
    if (e) *e = scan_err;
    goto out;
  }
  /* A stale temp from a crashed Recover is dropped whatever happens next
  ** (Go appends to it, differences D9). */
  rc = unlink_missing_ok(tmp, e);
  if (rc) goto out;
  /* The log ends at the last good record: a bad record and also a torn
  ** header at the tail (which Go keeps, differences D1) are cut off. */
  if ((size_t)end < lsize) {
    rc = replace_file(tmp, lpath, log, (size_t)end, e);
    if (rc) goto out;
  }

  rc = load(ipath, &idx, &isize, &missing, e);
  if (rc || missing) goto sync;
  rc = index_detect(idx, (int64_t)isize, base, params, &iver, &ds, &scan_err);
  if (rc == KLEVDB_ECORRUPT_INDEX) {
    /* The next open rebuilds it with the current params. */
    rc = unlink_missing_ok(ipath, e);
  } else if (!rc && ((size_t)((int64_t)isize - ds) != items.len ||
                     (items.len && memcmp(idx + ds, items.p, items.len) != 0))) {
    rc = index_write(ipath, iver, params, items.p, items.len, true, e);
  }
sync:
  if (!rc && sync) rc = dir_sync(dir, e);
out:
  free(log);
  free(idx);
  kbuf_free(&items);
  return rc;
}

klevdb_err seg_migrate(const char *dir, int64_t base, int params, int ver,
                       bool sync, klevdb_error *e) {
  char lpath[PATH_CAP], ipath[PATH_CAP], tmp[PATH_CAP + 16];
  if (seg_paths(dir, base, lpath, ipath, e)) return KLEVDB_EINVAL;
  snprintf(tmp, sizeof(tmp), "%s.migrate", lpath);
  uint8_t *log = NULL;
  size_t lsize;
  kbuf out = {0}, items = {0};
  int from;
  size_t isz = item_size(params);

  klevdb_err rc = load(lpath, &log, &lsize, NULL, e);
  if (!rc) rc = log_detect(log, (int64_t)lsize, base, &from, e);
  if (rc || from == ver) goto out;
  rc = unlink_missing_ok(tmp, e);
  if (rc) goto out;

  /* The whole new log is built before anything on disk changes, so that a
  ** corrupt record fails the migration with the segment intact (Go has
  ** already deleted the index then, differences D14). */
  rc = kbuf_reserve(&out, FILE_HDR, e);
  if (rc) goto out;
  if (ver == FMT_V2) {
    log_header(out.p);
    out.len = FILE_HDR;
  }
  int64_t pos = log_start(from), last_ts = 0;
  for (;;) {
    klevdb_msg m;
    int64_t len;
    int r = rec_decode(from, log + pos, (int64_t)lsize - pos, true, &m, &len, e);
    if (r == 0) break;
    if (r < 0) {
      rc = KLEVDB_ECORRUPT_LOG;
      goto out;
    }
    size_t rs = (size_t)rec_size(ver, m.key_len, m.value_len);
    if ((rc = kbuf_reserve(&out, rs, e)) || (rc = kbuf_reserve(&items, isz, e))) goto out;
    if (m.time > last_ts) last_ts = m.time;
    item_encode(items.p + items.len, params, m.offset, (int64_t)out.len, last_ts,
                (params & IDX_KEYS) ? klevdb_key_hash(m.key, m.key_len) : 0);
    items.len += isz;
    out.len += rec_encode(ver, out.p + out.len, m.offset, m.time, m.key, m.key_len,
                          m.value, m.value_len);
    pos += len;
  }

  /* The old index describes old positions: it must not survive the log. */
  rc = unlink_missing_ok(ipath, e);
  if (!rc) rc = replace_file(tmp, lpath, out.p, out.len, e);
  if (!rc) rc = index_write(ipath, ver, params, items.p, items.len, true, e);
  if (!rc && sync) rc = dir_sync(dir, e);
out:
  free(log);
  kbuf_free(&out);
  kbuf_free(&items);
  return rc;
}
