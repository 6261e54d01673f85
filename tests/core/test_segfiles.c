/*
** test_segfiles.c - segment files that are not what their names say: a log
** of another segment copied over one (the head or a sealed one), segment
** files that are symbolic links; reads that follow next_offset always move
** on, whatever the files hold.
*/
#include "check.h"

#include <pthread.h>
#include <sys/file.h>

/* 3 messages a segment: a V2 log passes 400 bytes with its third. */
#define ROLL 400

static klevdb_options opts_small(void) {
  klevdb_options o = opts_tk();
  o.create_dirs = 1;
  o.rollover = ROLL;
  return o;
}

/* A closed store of 9 messages in segments 0, 3 and 6 (the head). */
static void make_store(const char *dir) {
  klevdb_options o = opts_small();
  klevdb *db = OPEN(dir, &o);
  if (!db) return;
  PUBLISH(db, 0, 9, 0);
  CHECK_OK(klevdb_close(db));
  CHECK(seg_exists(dir, 0, ".log") && seg_exists(dir, 3, ".log") && seg_exists(dir, 6, ".log"));
  CHECK_EQ(count_ext(dir, ".log"), 3);
}

static int copy_file(const char *from, const char *to) {
  FILE *f = fopen(from, "rb"), *g = f ? fopen(to, "wb") : NULL;
  char buf[4096];
  size_t n;
  int ok = f && g;
  while (ok && (n = fread(buf, 1, sizeof buf, f)) > 0) ok = fwrite(buf, 1, n, g) == n;
  if (f) fclose(f);
  if (g && fclose(g) != 0) ok = 0;
  return ok ? 0 : -1;
}

/* Replaces segment to's file ext by a copy of segment from's. */
static void swap_in(const char *dir, int64_t from, int64_t to, const char *ext) {
  char a[512], b[512];
  seg_name(a, sizeof a, dir, from, ext);
  seg_name(b, sizeof b, dir, to, ext);
  CHECK(copy_file(a, b) == 0);
}

/* Replaces segment to's file ext by a symbolic link to segment from's. */
static void link_in(const char *dir, int64_t from, int64_t to, const char *ext) {
  char a[512], b[512];
  seg_name(a, sizeof a, dir, from, ext);
  seg_name(b, sizeof b, dir, to, ext);
  CHECK(unlink(b) == 0 && symlink(a, b) == 0);
}

static klevdb_err try_open(const char *dir, const klevdb_options *o, klevdb_error *err) {
  klevdb *db = NULL;
  memset(err, 0, sizeof(*err));
  klevdb_err rc = klevdb_open(dir, o, &db, err);
  if (db) klevdb_close(db);
  return rc;
}

/* Follows next_offset the way SQL and `klevdb consume --key` do, from the
** oldest: returns the error that ends it, or OK at the end. Fails the test
** if it does not end (a reader sent back to where it was). */
static klevdb_err follow_key(klevdb *db, const char *key, long *got) {
  klevdb_batch b = KLEVDB_BATCH_INIT;
  int64_t at = KLEVDB_OFFSET_OLDEST;
  klevdb_err rc = KLEVDB_OK;
  *got = 0;
  int steps = 0;
  for (; steps < 1000; steps++) {
    rc = klevdb_consume_by_key(db, key, strlen(key), at, 2, &b);
    if (rc || b.len == 0) break;
    for (size_t i = 0; i < b.len; i++)
      CHECK(at < 0 || b.msgs[i].offset >= at);
    *got += (long)b.len;
    CHECK(b.next_offset > at);
    at = b.next_offset;
  }
  CHECK(steps < 1000);
  klevdb_batch_free(&b);
  return rc;
}

static klevdb_err follow_all(klevdb *db, int flags, long *got) {
  klevdb_batch b = KLEVDB_BATCH_INIT;
  int64_t at = KLEVDB_OFFSET_OLDEST;
  klevdb_err rc = KLEVDB_OK;
  *got = 0;
  int steps = 0;
  for (; steps < 1000; steps++) {
    rc = klevdb_read(db, at, 2, flags, &b);
    if (rc || b.len == 0) break;
    *got += (long)b.len;
    CHECK(b.next_offset > at);
    at = b.next_offset;
  }
  CHECK(steps < 1000);
  klevdb_batch_free(&b);
  return rc;
}

/* The head's log replaced by an older segment's: open says so. */
static void test_head_swapped(void) {
  SECTION("head log replaced by an older segment's");
  char dir[256];
  tmp_dir(dir, sizeof dir);
  make_store(dir);
  swap_in(dir, 0, 6, ".log");
  char before[512];
  seg_name(before, sizeof before, dir, 6, ".log");
  long long size = file_size(before);
  klevdb_options o = opts_small();
  klevdb_error err;
  CHECK_ERR(try_open(dir, &o, &err), KLEVDB_ECORRUPT_LOG);
  CHECK(strstr(err.msg, "klevdb: ") == err.msg && strstr(err.msg, "segment 6") &&
        strstr(err.msg, "another segment"));
  o.readonly = 1;
  CHECK_ERR(try_open(dir, &o, &err), KLEVDB_ECORRUPT_LOG);
  CHECK(strstr(err.msg, "another segment") != NULL);
  /* Recover cuts bad records; these are good ones, of the wrong segment. */
  o.readonly = 0;
  o.recover = 1;
  CHECK_ERR(try_open(dir, &o, &err), KLEVDB_ECORRUPT_LOG);
  CHECK_EQ(file_size(before), size);   /* nothing appended or cut */
  rm_rf(dir);
}

/* A sealed segment's log replaced by another's: its first read says so,
** and no read goes back or around. */
static void test_sealed_swapped(int drop_index) {
  SECTION(drop_index ? "sealed log replaced, no index" : "sealed log replaced");
  char dir[256];
  tmp_dir(dir, sizeof dir);
  make_store(dir);
  swap_in(dir, 0, 3, ".log");
  if (drop_index) {
    char p[512];
    CHECK(unlink(seg_name(p, sizeof p, dir, 3, ".index")) == 0);
  }
  klevdb_options o = opts_small();
  klevdb *db = OPEN(dir, &o);
  if (!db) return;
  long got;
  tmsg t;
  gen(&t, 4);
  klevdb_err rc = follow_key(db, t.key, &got);
  CHECK_DB(db, rc, KLEVDB_ECORRUPT_LOG);
  CHECK(strstr(klevdb_errmsg(db), "segment 3") && strstr(klevdb_errmsg(db), "another segment"));
  CHECK_DB(db, follow_all(db, 0, &got), KLEVDB_ECORRUPT_LOG);
  CHECK_EQ(got, 3);   /* segment 0, then the error */
  CHECK_DB(db, follow_all(db, KLEVDB_READ_OFFSETS, &got), KLEVDB_ECORRUPT_LOG);
  klevdb_batch b = KLEVDB_BATCH_INIT;
  CHECK_DB(db, klevdb_get(db, 4, &b), KLEVDB_ECORRUPT_LOG);
  CHECK_DBOK(db, klevdb_get(db, 7, &b));   /* the other segments still read */
  CHECK(b.len == 1 && b.msgs[0].offset == 7);
  klevdb_stat st;
  CHECK_DB(db, klevdb_stat_get(db, &st), KLEVDB_ECORRUPT_LOG);   /* not a silent 6 */
  klevdb_batch_free(&b);
  CHECK_OK(klevdb_close(db));
  rm_rf(dir);
}

/* Removes a segment's files a moment after it starts: a writer finishing
** a rewrite. */
typedef struct {
  const char *dir;
  int64_t base;
} finish_arg;

static void *finish_rewrite(void *p) {
  finish_arg *a = p;
  char path[512];
  usleep(3000);
  unlink(seg_name(path, sizeof path, a->dir, a->base, ".index"));
  unlink(seg_name(path, sizeof path, a->dir, a->base, ".log"));
  return NULL;
}

/* A follower that lists the store while a writer (holding the lock) is
** between a head delete's renames and removals sees the old head beside
** the new one named at its first survivor: both generations, each log
** holding the other's offsets. It reads the store after the rewrite;
** the same files left there for good are damage, reported with the writer
** still there and at once without it. */
static void test_rewrite_in_flight(void) {
  SECTION("a writer between a rewrite's renames and removals");
  char dir[256], p[512], q[512];
  tmp_dir(dir, sizeof dir);
  klevdb_options o = opts_tk();
  o.create_dirs = 1;
  klevdb *db = OPEN(dir, &o);
  if (!db) return;
  PUBLISH(db, 0, 6, 0);
  const char *ext[2] = {".log", ".index"};
  for (int k = 0; k < 2; k++) {
    snprintf(q, sizeof q, "%s.old%s", dir, ext[k]);
    CHECK(copy_file(seg_name(p, sizeof p, dir, 0, ext[k]), q) == 0);
  }
  int64_t offs[3] = {0, 1, 2};
  klevdb_deleted d;
  CHECK_DBOK(db, klevdb_delete(db, offs, 3, &d, NULL));
  CHECK_OK(klevdb_close(db));
  CHECK(seg_exists(dir, 3, ".log") && !seg_exists(dir, 0, ".log"));
  snprintf(p, sizeof p, "%s/.lock", dir);
  int lock = open(p, O_RDONLY);
  CHECK(lock >= 0 && flock(lock, LOCK_EX) == 0);   /* the writer */
  o.readonly = 1;
  for (int round = 0; round < 3; round++) {
    for (int k = 0; k < 2; k++) {
      snprintf(q, sizeof q, "%s.old%s", dir, ext[k]);
      CHECK(copy_file(q, seg_name(p, sizeof p, dir, 0, ext[k])) == 0);
    }
    if (round == 2) CHECK(flock(lock, LOCK_UN) == 0);   /* no writer */
    db = OPEN(dir, &o);
    if (!db) break;
    finish_arg a = {dir, 0};
    pthread_t t;
    if (round == 0) CHECK(pthread_create(&t, NULL, finish_rewrite, &a) == 0);
    long got;
    klevdb_err rc = follow_all(db, 0, &got);
    if (round == 0) {
      CHECK(pthread_join(t, NULL) == 0);
      CHECK_DBOK(db, rc);
      CHECK_EQ(got, 3);   /* 3 to 5 */
    } else {
      CHECK_DB(db, rc, KLEVDB_ECORRUPT_LOG);
      CHECK(strstr(klevdb_errmsg(db), "segment 0") && strstr(klevdb_errmsg(db), "another segment"));
      CHECK_EQ(got, 0);
    }
    CHECK_OK(klevdb_close(db));
  }
  close(lock);
  for (int k = 0; k < 2; k++) {
    snprintf(q, sizeof q, "%s.old%s", dir, ext[k]);
    unlink(q);
  }
  rm_rf(dir);
}

/* Segment files that are symbolic links are refused, and nothing is
** written through them. */
static void test_symlinks(void) {
  SECTION("symlinked head log");
  char dir[256], p0[512];
  tmp_dir(dir, sizeof dir);
  make_store(dir);
  seg_name(p0, sizeof p0, dir, 0, ".log");
  long long size0 = file_size(p0);
  link_in(dir, 0, 6, ".log");
  klevdb_options o = opts_small();
  klevdb_error err;
  CHECK_ERR(try_open(dir, &o, &err), KLEVDB_ECORRUPT_LOG);
  CHECK(strstr(err.msg, "symbolic link") != NULL);
  o.readonly = 1;
  CHECK_ERR(try_open(dir, &o, &err), KLEVDB_ECORRUPT_LOG);
  CHECK(strstr(err.msg, "symbolic link") != NULL);
  CHECK_EQ(file_size(p0), size0);
  rm_rf(dir);

  SECTION("symlinked sealed log and index");
  for (int k = 0; k < 2; k++) {
    tmp_dir(dir, sizeof dir);
    make_store(dir);
    link_in(dir, 0, 3, k ? ".index" : ".log");
    o = opts_small();
    klevdb *db = OPEN(dir, &o);
    if (!db) continue;
    klevdb_batch b = KLEVDB_BATCH_INIT;
    CHECK_DB(db, klevdb_get(db, 4, &b), k ? KLEVDB_ECORRUPT_INDEX : KLEVDB_ECORRUPT_LOG);
    CHECK(strstr(klevdb_errmsg(db), "symbolic link") != NULL);
    long got;
    CHECK_DB(db, follow_all(db, 0, &got), k ? KLEVDB_ECORRUPT_INDEX : KLEVDB_ECORRUPT_LOG);
    /* A publish goes to the head, its own file. */
    PUBLISH(db, 9, 1, 9);
    klevdb_batch_free(&b);
    CHECK_OK(klevdb_close(db));
    rm_rf(dir);
  }

  SECTION("a FIFO as a segment's log");
  tmp_dir(dir, sizeof dir);
  make_store(dir);
  char p3[512];
  seg_name(p3, sizeof p3, dir, 3, ".log");
  CHECK(unlink(p3) == 0 && mkfifo(p3, 0600) == 0);
  o = opts_small();
  klevdb *db = OPEN(dir, &o);
  if (db) {
    klevdb_batch b = KLEVDB_BATCH_INIT;
    CHECK_DB(db, klevdb_get(db, 4, &b), KLEVDB_ECORRUPT_LOG);   /* not a hang */
    CHECK(strstr(klevdb_errmsg(db), "not a regular file") != NULL);
    klevdb_batch_free(&b);
    CHECK_OK(klevdb_close(db));
  }
  rm_rf(dir);
}

int main(void) {
  chk_name = "test_segfiles";
  /* A read that never ends is a failure too, not a hung test run. */
  alarm(60);
  test_head_swapped();
  test_sealed_swapped(0);
  test_sealed_swapped(1);
  test_symlinks();
  test_rewrite_in_flight();
  return check_done();
}
