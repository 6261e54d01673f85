/*
** test_prepared.c - prepared batches (klevdb_prepare, klevdb_prepared_*):
** durable but invisible until committed; a commit writes the files a
** klevdb_publish and klevdb_delete_ranges of the same batch write, also
** when it is found again after a crash, in the middle of a commit too;
** abort leaves the store as it was; while a batch is in doubt nothing else
** takes its offsets; a prepare that fails (a full disk) leaves nothing.
*/
#include <signal.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "kdb.h"

#define ROLL 4096   /* 23 records of SV2 bytes per segment */
#define N 5         /* messages of the batch: gen(3 .. 7) */

static const klevdb_range DELS[1] = {{1, 2}};

static klevdb_options opts_small(void) {
  klevdb_options o = opts_tk();
  o.rollover = ROLL;
  return o;
}

static int has_file(const char *dir, const char *name) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  return access(p, F_OK) == 0;
}

/* A batch is prepared in dir: .prepared starts with its magic (a resolved
** one keeps the file, zeroed). */
static int has_batch(const char *dir) {
  char p[512];
  snprintf(p, sizeof p, "%s/.prepared", dir);
  FILE *f = fopen(p, "rb");
  uint8_t m[8];
  int yes = f && fread(m, 1, 8, f) == 8 && memcmp(m, "KLEVPREP", 8) == 0;
  if (f) fclose(f);
  return yes;
}

/* A store with gen(0 .. 2), closed. */
static void base_store(const char *dir) {
  klevdb_options o = opts_small();
  klevdb *db = OPEN(dir, &o);
  if (!db) return;
  PUBLISH(db, 0, 3, 0);
  CHECK_OK(klevdb_close(db));
}

/* The reference: base_store, then gen(3 .. 3+N) published as one batch
** and DELS deleted, as the table published before prepared batches. */
static void reference(const char *dir, bool dels) {
  base_store(dir);
  klevdb_options o = opts_small();
  klevdb *db = OPEN(dir, &o);
  if (!db) return;
  PUBLISH_BATCH(db, 3, N, 3 + N);
  klevdb_deleted d;
  if (dels) CHECK_DBOK(db, klevdb_delete_ranges(db, DELS, 1, &d));
  CHECK_OK(klevdb_close(db));
}

static void batch_msgs(tmsg *t, klevdb_msg *m) {
  for (int i = 0; i < N; i++) {
    gen(&t[i], 3 + i);
    m[i] = t[i].m;
  }
}

/* Prepares the batch on db (which takes the writer lock). */
static klevdb_prepared *prepare_at(klevdb *db, const char *txid, const char *file, int line) {
  tmsg t[N];
  klevdb_msg m[N];
  batch_msgs(t, m);
  klevdb_prepared *p = NULL;
  klevdb_err e = klevdb_writer_lock(db, 1000);
  if (!e) e = klevdb_prepare(db, m, N, DELS, 1, txid, &p);
  chk_report(e == KLEVDB_OK && p, file, line, "prepare: %s (%s)", klevdb_errname(e),
             e ? klevdb_errmsg(db) : "");
  return p;
}
#define PREPARE(db, txid) prepare_at((db), (txid), __FILE__, __LINE__)

/* In a child that dies without a word after preparing, and, with
** mid_commit, after a commit of which only the removal of the file was
** lost (the file is put back). */
static void crash_child(const char *dir, bool mid_commit) {
  pid_t pid = fork();
  if (pid == 0) {
    klevdb_options o = opts_small();
    klevdb *c;
    if (klevdb_open(dir, &o, &c, NULL)) _exit(2);
    klevdb_prepared *p = PREPARE(c, "tx-crash");
    if (!p) _exit(3);
    if (mid_commit) {
      char a[512], b[512];
      snprintf(a, sizeof a, "%s/.prepared", dir);
      snprintf(b, sizeof b, "%s/prepared.keep", dir);
      long len;
      uint8_t *img = slurp(a, &len);
      FILE *f = fopen(b, "wb");
      if (!img || !f || fwrite(img, 1, (size_t)len, f) != (size_t)len) _exit(4);
      fclose(f);
      free(img);
      if (klevdb_prepared_commit(p, NULL, NULL)) _exit(5);
      if (rename(b, a)) _exit(6);
    }
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  CHECK(has_batch(dir));
}

static void test_round_trip(void) {
  SECTION("round trip");
  char dir[256], ref[256];
  tmp_dir(dir, sizeof dir);
  tmp_dir(ref, sizeof ref);
  reference(ref, true);
  base_store(dir);
  klevdb_options o = opts_small(), ro = opts_small();
  ro.readonly = 1;
  klevdb *db = OPEN(dir, &o), *other = OPEN(dir, &o);
  if (!db || !other) return;
  klevdb_prepared *p = PREPARE(db, "tx-1");
  if (!p) return;
  klevdb_prepared_info in;
  klevdb_prepared_get_info(p, &in);
  CHECK_STR(in.txid, "tx-1");
  CHECK_EQ(in.base, 3);
  CHECK_EQ(in.count, N);
  CHECK_EQ(in.nranges, 1);
  CHECK(has_batch(dir));
  CHECK(!has_file(dir, ".prepared.tmp"));
  /* Invisible: to this handle, another one, and another process's view. */
  CHECK_NEXT(db, 3);
  CHECK_NEXT(other, 3);
  CONSUME_EXPECT(other, KLEVDB_OFFSET_OLDEST, 100, 0, 0, 3, 3);
  klevdb *r = OPEN(dir, &ro);
  if (r) {
    CHECK_NEXT(r, 3);
    CHECK_OK(klevdb_close(r));
  }
  GET_FAIL(db, 3, KLEVDB_EINVALID_OFFSET);
  klevdb_stat st;
  CHECK_DBOK(db, klevdb_stat_get(db, &st));
  CHECK_EQ(st.messages, 3);
  /* Its offsets are claimed: the owner cannot publish or prepare again. */
  tmsg t;
  gen(&t, 50);
  CHECK_DB(db, klevdb_publish(db, &t.m, 1, NULL), KLEVDB_ELOCKED);
  CHECK(strstr(klevdb_errmsg(db), "a SQL transaction is in doubt") != NULL);
  klevdb_prepared *p2 = NULL;
  CHECK_DB(db, klevdb_prepare(db, &t.m, 1, NULL, 0, "tx-2", &p2), KLEVDB_ELOCKED);
  CHECK(p2 == NULL);
  klevdb_stage *sg = NULL;
  CHECK_DB(db, klevdb_stage_begin(db, &sg), KLEVDB_ELOCKED);
  /* Deletes are not offsets: they go on. */
  klevdb_deleted d;
  klevdb_range none = {100, 200};
  CHECK_DBOK(db, klevdb_delete_ranges(db, &none, 1, &d));
  CHECK_EQ(d.count, 0);

  int64_t b = -99, next = -99;
  CHECK_DBOK(db, klevdb_prepared_commit(p, &b, &next));
  CHECK_EQ(b, 3);
  CHECK_EQ(next, 3 + N);
  CHECK(!has_batch(dir));
  CONSUME_EXPECT(other, 3, 100, 3, 3, N, 3 + N);
  GET_FAIL(other, 1, KLEVDB_ENOTFOUND);
  klevdb_writer_unlock(db);
  /* Not in doubt any more. */
  PUBLISH(other, 3 + N, 1, 3 + N);
  CHECK_OK(klevdb_close(other));
  CHECK_OK(klevdb_close(db));
  rm_rf(ref);
  tmp_dir(ref, sizeof ref);
  reference(ref, true);
  db = OPEN(ref, &o);
  if (db) {
    PUBLISH(db, 3 + N, 1, 3 + N);
    CHECK_OK(klevdb_close(db));
  }
  SAME_FILES(dir, ref);
  rm_rf(dir);
  rm_rf(ref);
}

static void test_abort(void) {
  SECTION("abort");
  char dir[256], ref[256];
  tmp_dir(dir, sizeof dir);
  tmp_dir(ref, sizeof ref);
  base_store(ref);
  base_store(dir);
  klevdb_options o = opts_small();
  klevdb *db = OPEN(dir, &o);
  if (!db) return;
  klevdb_prepared *p = PREPARE(db, "tx-a");
  CHECK_DBOK(db, klevdb_prepared_abort(p));
  CHECK(!has_batch(dir));
  CHECK_NEXT(db, 3);
  klevdb_writer_unlock(db);
  CHECK_OK(klevdb_close(db));
  SAME_FILES(dir, ref);
  db = OPEN(dir, &o);
  if (!db) return;
  PUBLISH(db, 3, 2, 3);
  /* A smaller batch over the cleared image of a bigger one: found again
  ** after a reopen as it was prepared (the old bytes past it ignored). */
  CHECK_OK(klevdb_writer_lock(db, 0));
  tmsg t;
  gen(&t, 60);
  klevdb_prepared *q = NULL;
  CHECK_DBOK(db, klevdb_prepare(db, &t.m, 1, NULL, 0, "tx-small", &q));
  klevdb_prepared_close(q);
  CHECK_OK(klevdb_close(db));
  db = OPEN(dir, &o);
  if (!db) return;
  CHECK_DBOK(db, klevdb_prepared_find(db, &q));
  klevdb_prepared_info in = {0};
  if (q) klevdb_prepared_get_info(q, &in);
  CHECK_STR(in.txid, "tx-small");
  CHECK_EQ(in.count, 1);
  CHECK_DBOK(db, klevdb_prepared_commit(q, NULL, NULL));
  GET_EXPECT(db, 5, 5, 60);
  CHECK_OK(klevdb_close(db));
  rm_rf(dir);
  rm_rf(ref);
}

/* A crash after the prepare: the next writer finds the batch, cannot
** publish until it is resolved, and the commit gives the reference. */
static void test_crash_commit(bool mid_commit) {
  SECTION(mid_commit ? "crash in the middle of a commit" : "crash after prepare, commit");
  char dir[256], ref[256];
  tmp_dir(dir, sizeof dir);
  tmp_dir(ref, sizeof ref);
  reference(ref, true);
  base_store(dir);
  crash_child(dir, mid_commit);
  klevdb_options o = opts_small(), ro = opts_small();
  ro.readonly = 1;
  /* A reader sees the store as the database would: without the batch
  ** unless the commit got that far. */
  klevdb *r = OPEN(dir, &ro);
  if (r) {
    CHECK_NEXT(r, mid_commit ? 3 + N : 3);
    /* It may see the batch in doubt, not decide it. */
    klevdb_prepared *rp = NULL;
    CHECK_DBOK(r, klevdb_prepared_find(r, &rp));
    klevdb_prepared_info ri = {0};
    if (rp) klevdb_prepared_get_info(rp, &ri);
    CHECK_STR(ri.txid, "tx-crash");
    CHECK_DB(r, klevdb_prepared_abort(rp), KLEVDB_EREADONLY);
    CHECK(has_batch(dir));
    CHECK_OK(klevdb_close(r));
  }
  klevdb *db = OPEN(dir, &o);
  if (!db) return;
  CHECK(has_batch(dir));
  tmsg t;
  gen(&t, 50);
  CHECK_DB(db, klevdb_publish(db, &t.m, 1, NULL), KLEVDB_ELOCKED);
  klevdb_prepared *p = NULL;
  CHECK_DBOK(db, klevdb_prepared_find(db, &p));
  if (!p) return;
  klevdb_prepared_info in;
  klevdb_prepared_get_info(p, &in);
  CHECK_STR(in.txid, "tx-crash");
  CHECK_EQ(in.base, 3);
  CHECK_EQ(in.count, N);
  CHECK_EQ(in.nranges, 1);
  int64_t b = -99, next = -99;
  CHECK_DBOK(db, klevdb_prepared_commit(p, &b, &next));
  CHECK_EQ(b, 3);
  CHECK_EQ(next, 3 + N);
  CHECK(!has_batch(dir));
  CHECK_DB(db, klevdb_prepared_find(db, &p), KLEVDB_ENOTFOUND);
  CHECK_OK(klevdb_close(db));
  SAME_FILES(dir, ref);
  rm_rf(dir);
  rm_rf(ref);
}

static void test_crash_abort(void) {
  SECTION("crash after prepare, abort");
  char dir[256], ref[256];
  tmp_dir(dir, sizeof dir);
  tmp_dir(ref, sizeof ref);
  base_store(ref);
  base_store(dir);
  crash_child(dir, false);
  klevdb_options o = opts_small();
  klevdb *db = OPEN(dir, &o);
  if (!db) return;
  klevdb_prepared *p = NULL;
  CHECK_DBOK(db, klevdb_prepared_find(db, &p));
  CHECK_DBOK(db, klevdb_prepared_abort(p));
  CHECK(!has_batch(dir));
  CHECK_OK(klevdb_close(db));
  SAME_FILES(dir, ref);
  db = OPEN(dir, &o);
  if (!db) return;
  PUBLISH(db, 3, 1, 3);
  CHECK_OK(klevdb_close(db));
  rm_rf(dir);
  rm_rf(ref);
}

/* Another writer (Go's: nothing stops it) published while the batch was
** in doubt: the commit puts the batch after its messages and says where,
** and a crash after that commit does not publish it twice. */
static void test_moved(void) {
  SECTION("another writer took the offsets");
  char dir[256], keep[512], path[512];
  tmp_dir(dir, sizeof dir);
  base_store(dir);
  crash_child(dir, false);
  snprintf(path, sizeof path, "%s/.prepared", dir);
  snprintf(keep, sizeof keep, "%s/prepared.keep", dir);
  CHECK(rename(path, keep) == 0);
  klevdb_options o = opts_small();
  klevdb *db = OPEN(dir, &o);
  if (!db) return;
  PUBLISH(db, 100, 2, 3);   /* offsets 3 and 4 */
  CHECK_OK(klevdb_close(db));
  CHECK(rename(keep, path) == 0);
  db = OPEN(dir, &o);
  if (!db) return;
  klevdb_prepared *p = NULL;
  CHECK_DBOK(db, klevdb_prepared_find(db, &p));
  int64_t b = -99, next = -99;
  CHECK_DBOK(db, klevdb_prepared_commit(p, &b, &next));
  CHECK_EQ(b, 5);
  CHECK_EQ(next, 5 + N);
  GET_EXPECT(db, 3, 3, 100);
  GET_EXPECT(db, 4, 4, 101);
  CONSUME_EXPECT(db, 5, 100, 5, 3, N, 5 + N);
  GET_FAIL(db, 1, KLEVDB_ENOTFOUND);
  CHECK_OK(klevdb_close(db));
  rm_rf(dir);
}

/* A batch the other writer moved, whose commit then crashed before the
** file went: the file says the new base (the commit rewrote it before
** publishing), and found again the batch is not published a second time.
** The crash is made by hand: the image of the rewritten file is the
** original one with base 5. */
static void test_moved_then_crash(void) {
  SECTION("moved, then a crash in the commit");
  char dir[256], keep[512], path[512];
  tmp_dir(dir, sizeof dir);
  base_store(dir);
  crash_child(dir, false);
  snprintf(path, sizeof path, "%s/.prepared", dir);
  snprintf(keep, sizeof keep, "%s/prepared.keep", dir);
  long len = 0;
  uint8_t *img = slurp(path, &len);
  CHECK(img && len > 40);
  if (!img) return;
  CHECK(rename(path, keep) == 0);
  klevdb_options o = opts_small();
  klevdb *db = OPEN(dir, &o);
  if (!db) return;
  PUBLISH(db, 100, 2, 3);
  CHECK_OK(klevdb_close(db));
  CHECK(rename(keep, path) == 0);
  db = OPEN(dir, &o);
  if (!db) return;
  klevdb_prepared *p = NULL;
  CHECK_DBOK(db, klevdb_prepared_find(db, &p));
  CHECK_DBOK(db, klevdb_prepared_commit(p, NULL, NULL));
  CHECK_OK(klevdb_close(db));
  put_be64(img + 16, 5);
  put_be32(img + len - 4, crc32c(0, img, (size_t)len - 4));
  FILE *f = fopen(path, "wb");
  CHECK(f && fwrite(img, 1, (size_t)len, f) == (size_t)len);
  if (f) fclose(f);
  free(img);
  db = OPEN(dir, &o);
  if (!db) return;
  CHECK_DBOK(db, klevdb_prepared_find(db, &p));
  klevdb_prepared_info in;
  if (p) klevdb_prepared_get_info(p, &in);
  CHECK_EQ(p ? in.base : -1, 5);
  int64_t b = -99, next = -99;
  CHECK_DBOK(db, klevdb_prepared_commit(p, &b, &next));
  CHECK_EQ(b, 5);
  CHECK_EQ(next, 5 + N);
  CONSUME_EXPECT(db, 5, 100, 5, 3, N, 5 + N);
  CHECK(!has_batch(dir));
  CHECK_OK(klevdb_close(db));
  rm_rf(dir);
}

/* A prepare that cannot write its file leaves nothing, and nothing is in
** doubt after it. */
static void test_full_disk(void) {
  SECTION("full disk");
  char dir[256];
  tmp_dir(dir, sizeof dir);
  base_store(dir);
  pid_t pid = fork();
  if (pid == 0) {
    signal(SIGXFSZ, SIG_IGN);
    klevdb_options o = opts_small();
    klevdb *c;
    if (klevdb_open(dir, &o, &c, NULL) || klevdb_writer_lock(c, 1000)) _exit(2);
    struct rlimit rl;
    getrlimit(RLIMIT_FSIZE, &rl);
    rl.rlim_cur = 4096;
    if (setrlimit(RLIMIT_FSIZE, &rl)) _exit(3);
    static tmsg t[40];
    klevdb_msg m[40];
    for (int i = 0; i < 40; i++) {
      gen(&t[i], 3 + i);
      m[i] = t[i].m;
    }
    klevdb_prepared *p = NULL;
    klevdb_err e = klevdb_prepare(c, m, 40, NULL, 0, "tx-full", &p);
    if (e != KLEVDB_EIO || p) _exit(4);
    if (strncmp(klevdb_errmsg(c), "klevdb: ", 8) != 0) _exit(5);
    /* Not in doubt: the next batch fits and goes. */
    if (klevdb_publish(c, m, 2, NULL)) _exit(6);
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  CHECK(!has_batch(dir));
  CHECK(!has_file(dir, ".prepared.tmp"));
  klevdb_options o = opts_small();
  klevdb *db = OPEN(dir, &o);
  if (!db) return;
  CHECK_NEXT(db, 5);
  CHECK_OK(klevdb_close(db));
  rm_rf(dir);
}

static void test_refusals(void) {
  SECTION("refusals");
  char dir[256], path[512];
  tmp_dir(dir, sizeof dir);
  base_store(dir);
  klevdb_options o = opts_small(), ro = opts_small();
  ro.readonly = 1;
  klevdb *db = OPEN(dir, &o);
  if (!db) return;
  tmsg t;
  gen(&t, 3);
  klevdb_prepared *p = NULL;
  /* Without the writer lock the offsets could move. */
  CHECK_DB(db, klevdb_prepare(db, &t.m, 1, NULL, 0, "tx", &p), KLEVDB_EINVAL);
  CHECK_OK(klevdb_writer_lock(db, 0));
  CHECK_DB(db, klevdb_prepare(db, &t.m, 1, NULL, 0, NULL, &p), KLEVDB_EINVAL);
  CHECK_DB(db, klevdb_prepare(db, &t.m, 1, NULL, 1, "tx", &p), KLEVDB_EINVAL);
  CHECK(p == NULL);
  CHECK_DB(db, klevdb_prepared_find(db, &p), KLEVDB_ENOTFOUND);
  CHECK(!has_batch(dir));
  CHECK_OK(klevdb_close(db));
  klevdb *r = OPEN(dir, &ro);
  if (r) {
    CHECK_DB(r, klevdb_prepare(r, &t.m, 1, NULL, 0, "tx", &p), KLEVDB_EREADONLY);
    CHECK_DB(r, klevdb_prepared_find(r, &p), KLEVDB_ENOTFOUND);
    CHECK_OK(klevdb_close(r));
  }
  /* An image that does not check (a prepare a crash cut short, before
  ** anyone could decide on it) holds no batch: the store is writable. */
  snprintf(path, sizeof path, "%s/.prepared", dir);
  FILE *f = fopen(path, "wb");
  CHECK(f && fwrite("KLEVPREP garbage", 1, 16, f) == 16);
  if (f) fclose(f);
  db = OPEN(dir, &o);
  if (!db) return;
  CHECK_DB(db, klevdb_publish(db, &t.m, 1, NULL), KLEVDB_ELOCKED);
  CHECK_DB(db, klevdb_prepared_find(db, &p), KLEVDB_ENOTFOUND);
  CHECK(!has_batch(dir));
  CHECK_DB(db, klevdb_prepared_find(db, &p), KLEVDB_ENOTFOUND);
  PUBLISH(db, 3, 1, 3);
  CHECK_OK(klevdb_close(db));
  rm_rf(dir);
}

/* Unset times are stamped at the prepare, so a commit found again after a
** crash writes what the first one would have. */
static void test_time_stamped(void) {
  SECTION("times stamped at prepare");
  char dir[256];
  tmp_dir(dir, sizeof dir);
  base_store(dir);
  klevdb_options o = opts_small();
  klevdb *db = OPEN(dir, &o);
  if (!db) return;
  CHECK_OK(klevdb_writer_lock(db, 0));
  klevdb_msg m = {0, KLEVDB_TIME_UNSET, (const uint8_t *)"k", 1, (const uint8_t *)"v", 1};
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  int64_t t0 = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
  klevdb_prepared *p = NULL;
  CHECK_DBOK(db, klevdb_prepare(db, &m, 1, NULL, 0, "tx-t", &p));
  clock_gettime(CLOCK_REALTIME, &ts);
  int64_t t1 = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
  klevdb_prepared_close(p);
  klevdb_writer_unlock(db);
  CHECK_OK(klevdb_close(db));
  usleep(20000);
  db = OPEN(dir, &o);
  if (!db) return;
  CHECK_DBOK(db, klevdb_prepared_find(db, &p));
  CHECK_DBOK(db, klevdb_prepared_commit(p, NULL, NULL));
  klevdb_batch b = KLEVDB_BATCH_INIT;
  CHECK_DBOK(db, klevdb_get(db, 3, &b));
  CHECK(b.len == 1 && b.msgs[0].time >= t0 && b.msgs[0].time <= t1);
  klevdb_batch_free(&b);
  CHECK_OK(klevdb_close(db));
  rm_rf(dir);
}


int main(void) {
  chk_name = "test_prepared";
  test_round_trip();
  test_abort();
  test_crash_commit(false);
  test_crash_commit(true);
  test_crash_abort();
  test_moved();
  test_moved_then_crash();
  test_full_disk();
  test_refusals();
  test_time_stamped();
  return check_done();
}
