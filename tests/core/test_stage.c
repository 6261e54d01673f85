/*
** test_stage.c - staged batches (klevdb_stage_*): what a stage commits is
** byte for byte what klevdb_publish of the same messages writes, after
** truncates at every kind of place too; abort and a crash leave nothing.
*/
#include <stdbool.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define ROLL 4096   /* 23 records of SV2 bytes per segment */

static klevdb_options opts_small(void) {
  klevdb_options o = opts_tk();
  o.rollover = ROLL;
  return o;
}

/* Message i of a batch, with every third time unset (stamped "now") only
** where the caller asks: times must match between the two stores. */
static void msgs_gen(tmsg *t, int first, int n) {
  for (int i = 0; i < n; i++) gen(&t[i], first + i);
}

static void add_range(klevdb *db, klevdb_stage *sg, tmsg *t, int from, int to) {
  for (int i = from; i < to; i++) CHECK_DBOK(db, klevdb_stage_add(sg, &t[i].m, 1));
}

/* A store with a head of 3 messages, then a batch of the given messages
** published with klevdb_publish: the reference. */
static void reference(const char *dir, tmsg *t, const int *pick, int n) {
  klevdb_options o = opts_small();
  klevdb *db = OPEN(dir, &o);
  if (!db) return;
  PUBLISH(db, 0, 3, 0);
  klevdb_msg *m = malloc((size_t)n * sizeof(*m));
  for (int i = 0; i < n; i++) m[i] = t[pick[i]].m;
  int64_t next = -1;
  CHECK_DBOK(db, klevdb_publish(db, m, (size_t)n, &next));
  CHECK_EQ(next, 3 + n);
  free(m);
  CHECK_OK(klevdb_close(db));
}

static void test_same_as_publish(void) {
  SECTION("same files as publish");
  enum { N = 1000 };
  static tmsg t[N];
  msgs_gen(t, 3, N);
  char ref[256], dir[256];
  tmp_dir(ref, sizeof ref);
  tmp_dir(dir, sizeof dir);
  int pick[N];
  for (int i = 0; i < N; i++) pick[i] = i;
  reference(ref, t, pick, N);

  klevdb_options o = opts_small();
  klevdb *db = OPEN(dir, &o);
  if (!db) return;
  PUBLISH(db, 0, 3, 0);
  klevdb_stage *sg = NULL;
  /* Without the writer reservation the offsets could move: refused. */
  CHECK_DB(db, klevdb_stage_begin(db, &sg), KLEVDB_EINVAL);
  CHECK(sg == NULL);
  CHECK_DBOK(db, klevdb_writer_lock(db, 1000));
  CHECK_DBOK(db, klevdb_stage_begin(db, &sg));
  /* In pieces of different sizes, as a SQL transaction hands them over. */
  for (int i = 0; i < N;) {
    int k = 1 + (i * 7) % 113;
    if (i + k > N) k = N - i;
    klevdb_msg m[113];
    for (int j = 0; j < k; j++) m[j] = t[i + j].m;
    CHECK_DBOK(db, klevdb_stage_add(sg, m, (size_t)k));
    i += k;
  }
  CHECK_EQ(klevdb_stage_count(sg), N);
  /* Nothing is visible before the commit; the files are temporary. */
  CHECK_NEXT(db, 3);
  CHECK_EQ(count_ext(dir, ".log"), 1);
  CHECK(count_ext(dir, ".log.batch") > 30);
  int64_t next = -1;
  CHECK_DBOK(db, klevdb_stage_commit(sg, &next));
  CHECK_EQ(next, 3 + N);
  klevdb_writer_unlock(db);
  CHECK_EQ(count_ext(dir, ".batch"), 0);
  for (int i = 0; i < N; i += 97) GET_EXPECT(db, 3 + i, 3 + i, 3 + i);
  PUBLISH(db, 3 + N, 2, 3 + N);   /* publishing goes on after it */
  CHECK_OK(klevdb_close(db));
  /* The reference gets the same two, then the stores must be the same. */
  db = OPEN(ref, &o);
  if (db) {
    PUBLISH(db, 3 + N, 2, 3 + N);
    CHECK_OK(klevdb_close(db));
  }
  CHECK(SAME_FILES(dir, ref) > 80);
  rm_rf(ref);
  rm_rf(dir);
}

/* Adds 0..upto, truncates to keep, adds keep..upto2 again (other
** messages: gen numbers shifted by 5000), commits; the store must equal
** a publish of exactly the kept and re-added messages. */
static void truncate_case(int upto, int keep, int more, bool same) {
  static tmsg t[12000];
  msgs_gen(t, 3, 6000);
  for (int i = 0; i < 6000; i++) gen(&t[6000 + i], 3 + 5000 + i);
  char ref[256], dir[256];
  tmp_dir(ref, sizeof ref);
  tmp_dir(dir, sizeof dir);
  static int pick[12000];
  int n = 0;
  for (int i = 0; i < keep; i++) pick[n++] = i;
  for (int i = 0; i < more; i++) pick[n++] = 6000 + i;
  reference(ref, t, pick, n);

  klevdb_options o = opts_small();
  klevdb *db = OPEN(dir, &o);
  if (!db) return;
  PUBLISH(db, 0, 3, 0);
  klevdb_stage *sg = NULL;
  CHECK_DBOK(db, klevdb_writer_lock(db, 1000));
  CHECK_DBOK(db, klevdb_stage_begin(db, &sg));
  if (!sg) return;
  add_range(db, sg, t, 0, upto);
  CHECK_DBOK(db, klevdb_stage_truncate(sg, (size_t)keep));
  CHECK_EQ(klevdb_stage_count(sg), keep);
  add_range(db, sg, t, 6000, 6000 + more);
  int64_t next = -1;
  CHECK_DBOK(db, klevdb_stage_commit(sg, &next));
  CHECK_EQ(next, 3 + n);
  klevdb_writer_unlock(db);
  CHECK_OK(klevdb_close(db));
  CHECK_EQ(count_ext(dir, ".batch"), 0);
  if (n > 0 && same) CHECK(SAME_FILES(dir, ref) >= 2);
  /* Reopened, it reads back the kept messages and then the added ones. */
  db = OPEN(dir, &o);
  if (db) {
    CHECK_NEXT(db, 3 + n);
    for (int i = 0; i < n; i += 1 + n / 7)
      GET_EXPECT(db, 3 + i, 3 + i, pick[i] < 6000 ? 3 + pick[i] : 5003 + pick[i] - 6000);
    CHECK_OK(klevdb_close(db));
  }
  rm_rf(ref);
  rm_rf(dir);
}

static void test_truncate(void) {
  SECTION("truncate");
  truncate_case(500, 490, 300, true);   /* inside the open segment */
  truncate_case(500, 100, 300, true);   /* inside a written segment */
  truncate_case(500, 23, 300, true);    /* at the boundary of the first two */
  truncate_case(500, 1, 300, true);     /* after the first message */
  truncate_case(500, 0, 300, true);     /* everything */
  truncate_case(500, 250, 0, true);     /* and nothing added after */
  truncate_case(500, 500, 10, true);    /* to the count: nothing to do */
  /* Fewer than a split batch: publish would append them to the head, a
  ** stage puts them in a segment of their own; both read the same. */
  truncate_case(40, 5, 0, false);
}

static void test_abort_and_empty(void) {
  SECTION("abort, empty commit");
  enum { N = 300 };
  static tmsg t[N];
  msgs_gen(t, 3, N);
  char dir[256];
  tmp_dir(dir, sizeof dir);
  klevdb_options o = opts_small();
  klevdb *db = OPEN(dir, &o);
  if (!db) return;
  PUBLISH(db, 0, 3, 0);
  klevdb_stage *sg = NULL;
  CHECK_DBOK(db, klevdb_writer_lock(db, 1000));
  CHECK_DBOK(db, klevdb_stage_begin(db, &sg));
  add_range(db, sg, t, 0, N);
  klevdb_stage_abort(sg);
  CHECK_EQ(count_ext(dir, ".batch"), 0);
  CHECK_NEXT(db, 3);
  CHECK_DBOK(db, klevdb_stage_begin(db, &sg));
  int64_t next = -1;
  CHECK_DBOK(db, klevdb_stage_commit(sg, &next));
  CHECK_EQ(next, 3);
  /* Bad input is refused and the stage goes on. */
  CHECK_DBOK(db, klevdb_stage_begin(db, &sg));
  klevdb_msg bad = {.key_len = 3};
  CHECK_DB(db, klevdb_stage_add(sg, &bad, 1), KLEVDB_EINVAL);
  klevdb_msg big = t[0].m;
  big.value_len = KLEVDB_MAX_PAYLOAD;
  CHECK_DB(db, klevdb_stage_add(sg, &big, 1), KLEVDB_ETOOBIG);
  add_range(db, sg, t, 0, 10);
  CHECK_DBOK(db, klevdb_stage_commit(sg, &next));
  CHECK_EQ(next, 13);
  klevdb_writer_unlock(db);
  GET_EXPECT(db, 12, 12, 12);
  CHECK_OK(klevdb_close(db));
  rm_rf(dir);
}

/* A writer that dies with a stage half written leaves temporary files;
** the next writer's open removes them and the store is as it was. */
static void test_crash(void) {
  SECTION("crash");
  enum { N = 400 };
  static tmsg t[N];
  msgs_gen(t, 3, N);
  char dir[256];
  tmp_dir(dir, sizeof dir);
  klevdb_options o = opts_small();
  klevdb *db = OPEN(dir, &o);
  if (!db) return;
  PUBLISH(db, 0, 3, 0);
  CHECK_OK(klevdb_close(db));
  pid_t pid = fork();
  if (pid == 0) {
    klevdb *c;
    if (klevdb_open(dir, &o, &c, NULL) || klevdb_writer_lock(c, 1000)) _exit(2);
    klevdb_stage *sg;
    if (klevdb_stage_begin(c, &sg)) _exit(3);
    for (int i = 0; i < N; i++)
      if (klevdb_stage_add(sg, &t[i].m, 1)) _exit(4);
    /* Let the thread write what is queued, then die without a word. */
    if (klevdb_stage_truncate(sg, N)) _exit(5);
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  CHECK(count_ext(dir, ".log.batch") > 10);
  db = OPEN(dir, &o);
  if (!db) return;
  CHECK_EQ(count_ext(dir, ".batch"), 0);
  CHECK_EQ(count_ext(dir, ".log"), 1);
  CHECK_NEXT(db, 3);
  PUBLISH_BATCH(db, 3, 200, 203);
  GET_EXPECT(db, 150, 150, 150);
  CHECK_OK(klevdb_close(db));
  rm_rf(dir);
}

int main(void) {
  test_same_as_publish();
  test_truncate();
  test_abort_and_empty();
  test_crash();
  return check_done();
}
