/*
** check.h - the store helpers shared by the tests of tests/core (and
** tests/diskfull): generated messages, files and directories, opening,
** publishing and reading with checks. The checks themselves are the one
** harness of tests/check.h. Header-only (every helper is static and may be
** unused).
*/
#ifndef TESTS_CORE_CHECK_H
#define TESTS_CORE_CHECK_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "klevdb.h"

#include "../check.h"

/* ---- generated messages, as in the Go tests ---- */

#define T0 INT64_C(1672531200000000) /* 2023-01-01T00:00:00Z in us */
#define TI(i) (T0 + (int64_t)(i) * 1000000)
#define SV2 (36 + 10 + 128)
#define SV1 (28 + 10 + 128)

typedef struct tmsg {
  char key[16];
  uint8_t val[128];
  klevdb_msg m;
} tmsg;

/* Message i: key "%10d" of i, 128 value bytes derived from i, time TI(i). */
TU void gen(tmsg *t, int i) {
  snprintf(t->key, sizeof(t->key), "%10d", i);
  for (int j = 0; j < 128; j++) t->val[j] = (uint8_t)(i * 31 + j * 7 + 1);
  t->m.offset = 0;
  t->m.time = TI(i);
  t->m.key = (const uint8_t *)t->key;
  t->m.key_len = 10;
  t->m.value = t->val;
  t->m.value_len = 128;
}

/* got is message i (key, value, time) at offset off. */
TU int chk_msg(const klevdb_msg *got, int64_t off, int i, const char *file,
               int line) {
  tmsg t;
  gen(&t, i);
  int ok = got != NULL && got->offset == off && got->time == t.m.time &&
           got->key_len == 10 && got->value_len == 128 &&
           memcmp(got->key, t.key, 10) == 0 &&
           memcmp(got->value, t.val, 128) == 0;
  if (!got)
    return chk_report(0, file, line, "message is NULL (expected gen %d at %lld)",
                      i, (long long)off);
  return chk_report(ok, file, line,
                    "message: got offset %lld time %lld key_len %zu "
                    "value_len %zu key \"%.*s\"; expected gen %d at offset %lld",
                    (long long)got->offset, (long long)got->time, got->key_len,
                    got->value_len, (int)(got->key_len < 20 ? got->key_len : 20),
                    got->key ? (const char *)got->key : "", i, (long long)off);
}
#define CHECK_MSG(got, off, i) chk_msg((got), (off), (i), __FILE__, __LINE__)

/* Batch b holds gen(first + k) at offsets off0 + k, k < n. */
#define CHECK_BATCH(b, off0, first, n)                                      \
  do {                                                                      \
    CHECK_EQ((b)->len, (n));                                                \
    for (size_t chk_k_ = 0; chk_k_ < (b)->len && chk_k_ < (size_t)(n); chk_k_++) \
      CHECK_MSG(&(b)->msgs[chk_k_], (off0) + (int64_t)chk_k_,               \
                (int)(first) + (int)chk_k_);                                \
  } while (0)

/* ---- files and directories ---- */

TU char *tmp_dir(char *buf, size_t cap) {
  const char *base = getenv("TMPDIR");
  if (!base || !*base) base = "/tmp";
  snprintf(buf, cap, "%s/klevdb-core-XXXXXX", base);
  if (!mkdtemp(buf)) {
    perror("mkdtemp");
    exit(2);
  }
  return buf;
}

TU int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f) {
  (void)sb;
  (void)flag;
  (void)f;
  return remove(p);
}
TU void rm_rf(const char *path) { nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

TU long long file_size(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) return -1;
  return (long long)st.st_size;
}

TU char *seg_name(char *buf, size_t cap, const char *dir, int64_t base,
                  const char *ext) {
  snprintf(buf, cap, "%s/%020lld%s", dir, (long long)base, ext);
  return buf;
}
TU long long seg_size(const char *dir, int64_t base, const char *ext) {
  char p[4096];
  return file_size(seg_name(p, sizeof(p), dir, base, ext));
}
TU int seg_exists(const char *dir, int64_t base, const char *ext) {
  return seg_size(dir, base, ext) >= 0;
}

/* Number of entries of dir whose name ends in ext. */
TU int count_ext(const char *dir, const char *ext) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  size_t el = strlen(ext);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t l = strlen(e->d_name);
    if (l >= el && strcmp(e->d_name + l - el, ext) == 0) n++;
  }
  closedir(d);
  return n;
}

/* Reads a whole file; NULL if missing. */
TU uint8_t *slurp(const char *path, long *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  *len = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *p = malloc((size_t)*len + 1);
  if (p && fread(p, 1, (size_t)*len, f) != (size_t)*len) {
    free(p);
    p = NULL;
  }
  fclose(f);
  return p;
}

/* Every file of store a (dot files aside) equals the file of that name in
** b, and both have as many segment files. Returns the files compared. */
TU int same_files_at(const char *a, const char *b, const char *file, int line) {
  int bad = 0, n = 0;
  DIR *d = opendir(a);
  struct dirent *de;
  while (d && (de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.') continue;
    char pa[512], pb[512];
    snprintf(pa, sizeof pa, "%s/%s", a, de->d_name);
    snprintf(pb, sizeof pb, "%s/%s", b, de->d_name);
    long la = -1, lb = -2;
    uint8_t *x = slurp(pa, &la), *y = slurp(pb, &lb);
    if (!x || !y || la != lb || memcmp(x, y, (size_t)la) != 0) {
      bad++;
      chk_report(0, file, line, "file %s differs from %s", pa, pb);
    }
    free(x);
    free(y);
    n++;
  }
  if (d) closedir(d);
  chk_report(bad == 0 && n > 0, file, line, "%d files compared, %d differ", n, bad);
  chk_report(count_ext(a, ".log") == count_ext(b, ".log") &&
             count_ext(a, ".index") == count_ext(b, ".index"),
             file, line, "as many segment files in %s as in %s", a, b);
  return n;
}
#define SAME_FILES(a, b) same_files_at((a), (b), __FILE__, __LINE__)

/* Removes every file of dir ending in ext; returns how many. */
TU int remove_ext(const char *dir, const char *ext) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  size_t el = strlen(ext);
  struct dirent *e;
  char p[4096];
  while ((e = readdir(d)) != NULL) {
    size_t l = strlen(e->d_name);
    if (l >= el && strcmp(e->d_name + l - el, ext) == 0) {
      snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
      if (unlink(p) == 0) n++;
    }
  }
  closedir(d);
  return n;
}

/* Log format of a segment file: 2 (V2 header), 1 (other non-empty
** content), 0 (empty), -1 (missing). */
TU int log_version(const char *dir, int64_t base) {
  char p[4096];
  seg_name(p, sizeof(p), dir, base, ".log");
  FILE *f = fopen(p, "rb");
  if (!f) return -1;
  unsigned char h[8];
  size_t n = fread(h, 1, 8, f);
  fclose(f);
  if (n == 0) return 0;
  static const unsigned char magic[8] = {0xFF, 0x6B, 0x6C, 0x65, 0x76, 0x73, 0x01, 0x00};
  return (n == 8 && memcmp(h, magic, 8) == 0) ? 2 : 1;
}
/* Index format: 2 (V2 header klevi), 1 (other non-empty), 0, -1. */
TU int index_version(const char *dir, int64_t base) {
  char p[4096];
  seg_name(p, sizeof(p), dir, base, ".index");
  FILE *f = fopen(p, "rb");
  if (!f) return -1;
  unsigned char h[8];
  size_t n = fread(h, 1, 8, f);
  fclose(f);
  if (n == 0) return 0;
  static const unsigned char magic[7] = {0xFF, 0x6B, 0x6C, 0x65, 0x76, 0x69, 0x01};
  return (n == 8 && memcmp(h, magic, 7) == 0) ? 2 : 1;
}

TU int append_bytes(const char *path, const void *p, size_t n) {
  int fd = open(path, O_WRONLY | O_APPEND);
  if (fd < 0) return -1;
  ssize_t w = write(fd, p, n);
  close(fd);
  return w == (ssize_t)n ? 0 : -1;
}

/* ---- store helpers ---- */

TU klevdb_options opts_default(void) {
  klevdb_options o;
  memset(&o, 0, sizeof(o));
  return o;
}
TU klevdb_options opts_tk(void) {
  klevdb_options o = opts_default();
  o.time_index = 1;
  o.key_index = 1;
  return o;
}

/* Opens (check on failure); NULL if it failed. */
TU klevdb *open_at(const char *dir, const klevdb_options *o, const char *file,
                   int line) {
  klevdb *db = NULL;
  klevdb_error err;
  memset(&err, 0, sizeof(err));
  klevdb_err e = klevdb_open(dir, o, &db, &err);
  chk_report(e == KLEVDB_OK && db != NULL, file, line,
             "klevdb_open(%s): got %s (%s)", dir, klevdb_errname(e), err.msg);
  return e == KLEVDB_OK ? db : NULL;
}
#define OPEN(dir, o) open_at((dir), (o), __FILE__, __LINE__)

/* Publishes gen(first .. first+n-1) one message per call; checks that each
** returns the next offset (expect0 + k + 1). */
TU void publish_singles_at(klevdb *db, int first, int n, int64_t expect0,
                           const char *file, int line) {
  for (int k = 0; k < n; k++) {
    tmsg t;
    gen(&t, first + k);
    int64_t next = -99;
    klevdb_err e = klevdb_publish(db, &t.m, 1, &next);
    chk_report(e == KLEVDB_OK, file, line, "publish gen %d: %s (%s)", first + k,
               klevdb_errname(e), e ? klevdb_errmsg(db) : "");
    chk_report(next == expect0 + k + 1, file, line,
               "publish gen %d: next %lld, expected %lld", first + k,
               (long long)next, (long long)(expect0 + k + 1));
  }
}
#define PUBLISH(db, first, n, expect0) \
  publish_singles_at((db), (first), (n), (expect0), __FILE__, __LINE__)

/* Publishes gen(first .. first+n-1) as one batch. */
TU void publish_batch_at(klevdb *db, int first, int n, int64_t expect_next,
                         const char *file, int line) {
  tmsg *t = calloc((size_t)n, sizeof(*t));
  klevdb_msg *m = calloc((size_t)n, sizeof(*m));
  for (int k = 0; k < n; k++) {
    gen(&t[k], first + k);
    m[k] = t[k].m;
  }
  int64_t next = -99;
  klevdb_err e = klevdb_publish(db, m, (size_t)n, &next);
  chk_report(e == KLEVDB_OK, file, line, "publish batch gen %d+%d: %s (%s)",
             first, n, klevdb_errname(e), e ? klevdb_errmsg(db) : "");
  chk_report(next == expect_next, file, line,
             "publish batch gen %d+%d: next %lld, expected %lld", first, n,
             (long long)next, (long long)expect_next);
  free(t);
  free(m);
}
#define PUBLISH_BATCH(db, first, n, expect_next) \
  publish_batch_at((db), (first), (n), (expect_next), __FILE__, __LINE__)

/* Consumes the whole store from OffsetOldest with batches of max; stores up
** to cap offsets in offs, returns the number of messages (-1 on error).
** Checks that each message is gen(its key) and offsets strictly increase. */
TU long consume_all_at(klevdb *db, size_t max, int64_t *offs, size_t cap,
                       const char *file, int line) {
  klevdb_batch b = KLEVDB_BATCH_INIT;
  int64_t cur = KLEVDB_OFFSET_OLDEST, last = -1;
  long n = 0;
  for (int guard = 0; guard < 100000; guard++) {
    klevdb_err e = klevdb_consume(db, cur, max, &b);
    if (e != KLEVDB_OK) {
      chk_report(0, file, line, "consume_all: consume(%lld): %s (%s)",
                 (long long)cur, klevdb_errname(e), klevdb_errmsg(db));
      n = -1;
      break;
    }
    for (size_t k = 0; k < b.len; k++) {
      const klevdb_msg *m = &b.msgs[k];
      if (m->offset <= last)
        chk_report(0, file, line, "consume_all: offset %lld after %lld",
                   (long long)m->offset, (long long)last);
      last = m->offset;
      if ((size_t)n < cap) offs[n] = m->offset;
      n++;
    }
    if (b.len == 0 || b.next_offset == cur) break;
    cur = b.next_offset;
  }
  klevdb_batch_free(&b);
  return n;
}
#define CONSUME_ALL(db, max, offs, cap) \
  consume_all_at((db), (max), (offs), (cap), __FILE__, __LINE__)

/* Checks consume(offset, max): OK, n messages starting with gen(first) at
** offset off0 (consecutive), and next offset. */
TU void consume_expect_at(klevdb *db, int64_t offset, size_t max, int64_t off0,
                          int first, size_t n, int64_t next, const char *file,
                          int line) {
  klevdb_batch b = KLEVDB_BATCH_INIT;
  klevdb_err e = klevdb_consume(db, offset, max, &b);
  chk_report(e == KLEVDB_OK, file, line, "consume(%lld, %zu): %s (%s)",
             (long long)offset, max, klevdb_errname(e),
             e ? klevdb_errmsg(db) : "");
  chk_report(b.len == n, file, line, "consume(%lld, %zu): %zu messages, expected %zu",
             (long long)offset, max, b.len, n);
  for (size_t k = 0; k < b.len && k < n; k++)
    chk_msg(&b.msgs[k], off0 + (int64_t)k, first + (int)k, file, line);
  chk_report(b.next_offset == next, file, line,
             "consume(%lld, %zu): next %lld, expected %lld", (long long)offset,
             max, (long long)b.next_offset, (long long)next);
  klevdb_batch_free(&b);
}
#define CONSUME_EXPECT(db, offset, max, off0, first, n, next)                 \
  consume_expect_at((db), (offset), (max), (off0), (first), (n), (next), __FILE__, \
                    __LINE__)

/* consume(offset) fails with code (and next offset OffsetInvalid). */
TU void consume_fail_at(klevdb *db, int64_t offset, klevdb_err code,
                        const char *file, int line) {
  klevdb_batch b = KLEVDB_BATCH_INIT;
  klevdb_err e = klevdb_consume(db, offset, 10, &b);
  chk_report(e == code, file, line, "consume(%lld): got %s, expected %s",
             (long long)offset, klevdb_errname(e), klevdb_errname(code));
  if (e != KLEVDB_OK) {
    const char *m = klevdb_errmsg(db);
    chk_report(m && strncmp(m, "klevdb: ", 8) == 0, file, line,
               "errmsg \"%s\" starts with \"klevdb: \"", m ? m : "(null)");
  }
  chk_report(b.len == 0, file, line, "consume(%lld) failed with %zu messages",
             (long long)offset, b.len);
  chk_report(b.next_offset == KLEVDB_OFFSET_INVALID, file, line,
             "consume(%lld) failed: next %lld, expected OffsetInvalid (-3)",
             (long long)offset, (long long)b.next_offset);
  klevdb_batch_free(&b);
}
#define CONSUME_FAIL(db, offset, code) \
  consume_fail_at((db), (offset), (code), __FILE__, __LINE__)

/* get(offset) returns gen(i) at off (or fails with code if code != OK). */
TU void get_expect_at(klevdb *db, int64_t offset, klevdb_err code, int64_t off,
                      int i, const char *file, int line) {
  klevdb_batch b = KLEVDB_BATCH_INIT;
  klevdb_err e = klevdb_get(db, offset, &b);
  chk_report(e == code, file, line, "get(%lld): got %s (%s), expected %s",
             (long long)offset, klevdb_errname(e), e ? klevdb_errmsg(db) : "",
             klevdb_errname(code));
  if (e == KLEVDB_OK && code == KLEVDB_OK) {
    chk_report(b.len == 1, file, line, "get(%lld): %zu messages", (long long)offset,
               b.len);
    if (b.len >= 1) chk_msg(&b.msgs[0], off, i, file, line);
  }
  if (e != KLEVDB_OK) {
    const char *m = klevdb_errmsg(db);
    chk_report(m && strncmp(m, "klevdb: ", 8) == 0, file, line,
               "errmsg \"%s\" starts with \"klevdb: \"", m ? m : "(null)");
  }
  klevdb_batch_free(&b);
}
#define GET_EXPECT(db, offset, off, i) \
  get_expect_at((db), (offset), KLEVDB_OK, (off), (i), __FILE__, __LINE__)
#define GET_FAIL(db, offset, code) \
  get_expect_at((db), (offset), (code), 0, 0, __FILE__, __LINE__)

#define CHECK_STAT(db, segs, msgs, sz)                    \
  do {                                                    \
    klevdb_stat chk_st_ = {-1, -1, -1};                   \
    CHECK_DBOK((db), klevdb_stat_get((db), &chk_st_));    \
    CHECK_EQ(chk_st_.segments, (segs));                   \
    CHECK_EQ(chk_st_.messages, (msgs));                   \
    CHECK_EQ(chk_st_.size, (sz));                         \
  } while (0)

#define CHECK_NEXT(db, n)                                 \
  do {                                                    \
    int64_t chk_n_ = -99;                                 \
    CHECK_DBOK((db), klevdb_next_offset((db), &chk_n_));  \
    CHECK_EQ(chk_n_, (n));                                \
  } while (0)

/* Size() of generated message i on db. */
TU int64_t gen_size(const klevdb *db) {
  tmsg t;
  gen(&t, 0);
  return klevdb_size(db, &t.m);
}

#endif
