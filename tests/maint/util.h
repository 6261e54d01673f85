/*
** util.h - file helpers for the maint tests: temp dirs, copying fixture
** stores, whole-file reads and writes, and segments built from raw bytes.
*/
#ifndef MAINT_UTIL_H
#define MAINT_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../check.h"
#include "kdb.h"

static const char *fixtures;

static inline void die(const char *what) {
  perror(what);
  exit(2);
}

static inline char *xstrdup(const char *s) {
  char *p = strdup(s);
  if (!p) die("strdup");
  return p;
}

/* Joins a and b with a '/' into a static ring of buffers. */
static inline const char *pj(const char *a, const char *b) {
  static char ring[16][4096];
  static int next;
  char *out = ring[next++ % 16];
  size_t la = strlen(a), lb = strlen(b);
  if (la + lb + 2 > sizeof(ring[0])) die("path too long");
  memcpy(out, a, la);
  out[la] = '/';
  memcpy(out + la + 1, b, lb + 1);
  return out;
}

static inline char *tmpdir(void) {
  const char *t = getenv("TMPDIR");
  char buf[4096];
  snprintf(buf, sizeof(buf), "%s/klevdb-maint-XXXXXX", t && *t ? t : "/tmp");
  if (!mkdtemp(buf)) die("mkdtemp");
  return xstrdup(buf);
}

static inline int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f) {
  (void)st;
  (void)flag;
  (void)f;
  remove(p);
  return 0;
}

static inline void rm_rf(char *dir) {
  nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  free(dir);
}

/* Returns the file's bytes (malloc'ed) or NULL if it does not exist. */
static inline uint8_t *slurp(const char *path, size_t *len) {
  uint8_t *p;
  if (file_read(path, &p, len, NULL) != KLEVDB_OK) {
    *len = 0;
    return NULL;
  }
  return p;
}

static inline void spit(const char *path, const void *data, size_t len) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) die(path);
  if (len && write(fd, data, len) != (ssize_t)len) die(path);
  close(fd);
}

static inline void cut(const char *path, off_t len) {
  if (truncate(path, len) < 0) die(path);
}

static inline int exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

static inline long long fsize(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* 1 if both files exist and hold the same bytes. */
static inline int same_file(const char *a, const char *b) {
  size_t la, lb;
  uint8_t *pa = slurp(a, &la), *pb = slurp(b, &lb);
  int same = pa && pb && la == lb && memcmp(pa, pb, la) == 0;
  if (!same) fprintf(stderr, "  differ: %s (%zu) vs %s (%zu)\n", a, la, b, lb);
  free(pa);
  free(pb);
  return same;
}

/* Copies every regular file of src (one level) into dst, mode 0600. */
static inline void copy_store(const char *src, const char *dst) {
  DIR *d = opendir(src);
  if (!d) die(src);
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.' && (!de->d_name[1] || !strcmp(de->d_name, ".."))) continue;
    size_t len;
    uint8_t *p = slurp(pj(src, de->d_name), &len);
    if (!p) die(de->d_name);
    spit(pj(dst, de->d_name), p, len);
    free(p);
  }
  closedir(d);
}

/* A fresh temp dir holding a copy of fixtures/<name>/<sub>. */
static inline char *fixture_copy(const char *name, const char *sub) {
  char *dir = tmpdir();
  char src[4096];
  snprintf(src, sizeof(src), "%s/%s/%s", fixtures, name, sub);
  copy_store(src, dir);
  return dir;
}

/* Number of entries of dir (without . and ..) whose name ends in suffix. */
static inline int count_suffix(const char *dir, const char *suffix) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  size_t sl = strlen(suffix);
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    size_t len = strlen(de->d_name);
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    if (len >= sl && !strcmp(de->d_name + len - sl, suffix)) n++;
  }
  closedir(d);
  return n;
}

/* Every file of a is in b with the same bytes, and both hold as many
** files. */
static inline int same_dir(const char *a, const char *b) {
  DIR *d = opendir(a);
  if (!d) return 0;
  int ok = 1;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    if (!same_file(pj(a, de->d_name), pj(b, de->d_name))) ok = 0;
  }
  closedir(d);
  if (count_suffix(a, "") != count_suffix(b, "")) {
    fprintf(stderr, "  %s and %s hold different file counts\n", a, b);
    ok = 0;
  }
  return ok;
}

static inline const char *segname(int64_t base, const char *ext) {
  static char ring[8][64];
  static int next;
  char *out = ring[next++ % 8];
  snprintf(out, 64, "%020lld%s", (long long)base, ext);
  return out;
}

/* A segment built from raw bytes: n records with key "key-<i>", value
** "value-<i>", time t0 + i * 1000; log and index images in buf. */
typedef struct rawseg {
  kbuf log, idx;
  int64_t rec_end[16]; /* position after record i */
} rawseg;

static inline void rawseg_build(rawseg *s, int ver, int iver, int params, int64_t base,
                         int n, int64_t t0) {
  memset(s, 0, sizeof(*s));
  if (kbuf_reserve(&s->log, 4096, NULL) || kbuf_reserve(&s->idx, 4096, NULL)) die("kbuf");
  if (ver == FMT_V2) {
    log_header(s->log.p);
    s->log.len = FILE_HDR;
  }
  if (iver == FMT_V2) {
    index_header(s->idx.p, params);
    s->idx.len = FILE_HDR;
  }
  int64_t last = 0;
  for (int i = 0; i < n && i < 16; i++) {
    char k[32], v[32];
    int kl = snprintf(k, sizeof(k), "key-%d", i);
    int vl = snprintf(v, sizeof(v), "value-%d", i);
    int64_t t = t0 + i * 1000, pos = (int64_t)s->log.len;
    s->log.len += rec_encode(ver, s->log.p + s->log.len, base + i, t, (const uint8_t *)k,
                             (size_t)kl, (const uint8_t *)v, (size_t)vl);
    s->rec_end[i] = (int64_t)s->log.len;
    if (t > last) last = t;
    item_encode(s->idx.p + s->idx.len, params, base + i, pos, last,
                klevdb_key_hash(k, (size_t)kl));
    s->idx.len += item_size(params);
  }
}

static inline void rawseg_free(rawseg *s) {
  kbuf_free(&s->log);
  kbuf_free(&s->idx);
}

/* Every record of a log file, for comparing two logs' contents. */
typedef struct recs {
  klevdb_msg *m;
  size_t n;
  uint8_t *data;
} recs;

static inline int recs_load(const char *path, int64_t base, recs *r) {
  size_t len;
  memset(r, 0, sizeof(*r));
  r->data = slurp(path, &len);
  if (!r->data) return -1;
  int ver;
  if (log_detect(r->data, (int64_t)len, base, &ver, NULL)) return -1;
  int64_t pos = log_start(ver);
  for (;;) {
    klevdb_msg m;
    int64_t l;
    int rc = rec_decode(ver, r->data + pos, (int64_t)len - pos, true, &m, &l, NULL);
    if (rc == 0) break;
    if (rc < 0) return -1;
    klevdb_msg *nm = realloc(r->m, (r->n + 1) * sizeof(*nm));
    if (!nm) die("realloc");
    r->m = nm;
    r->m[r->n++] = m;
    pos += l;
  }
  return ver;
}

static inline void recs_free(recs *r) {
  free(r->m);
  free(r->data);
}

static inline int msg_equal(const klevdb_msg *a, const klevdb_msg *b) {
  return a->offset == b->offset && a->time == b->time && a->key_len == b->key_len &&
         a->value_len == b->value_len &&
         (!a->key_len || memcmp(a->key, b->key, a->key_len) == 0) &&
         (!a->value_len || memcmp(a->value, b->value, a->value_len) == 0);
}

#endif
