/*
** test_stage.c - staged batches (klevdb_stage_*): what a stage commits is
** byte for byte what klevdb_publish of the same messages writes, after
** truncates at every kind of place too; abort and a crash leave nothing.
** A prepared stage (klevdb_stage_prepare) commits the same files, after a
** crash at any step too, and its abort leaves the store as it was.
*/
#include <stdbool.h>
#include <stdio.h>
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
  CHECK(count_ext(dir, ".log.stage") > 30);
  int64_t next = -1;
  CHECK_DBOK(db, klevdb_stage_commit(sg, &next));
  CHECK_EQ(next, 3 + N);
  klevdb_writer_unlock(db);
  CHECK_EQ(count_ext(dir, ".stage"), 0);
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
  CHECK_EQ(count_ext(dir, ".stage"), 0);
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
  CHECK_EQ(count_ext(dir, ".stage"), 0);
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
  CHECK(count_ext(dir, ".log.stage") > 10);
  db = OPEN(dir, &o);
  if (!db) return;
  CHECK_EQ(count_ext(dir, ".stage"), 0);
  CHECK_EQ(count_ext(dir, ".log"), 1);
  CHECK_NEXT(db, 3);
  PUBLISH_BATCH(db, 3, 200, 203);
  GET_EXPECT(db, 150, 150, 150);
  CHECK_OK(klevdb_close(db));
  rm_rf(dir);
}

/* ---- prepared stages ---- */

enum { PN = 400 };   /* messages of a prepared stage: gen(3 .. 3 + PN) */
static const klevdb_range PDELS[1] = {{1, 2}};

/* The reference of a prepared stage: its messages published as one batch
** and PDELS deleted. */
static void prepared_reference(const char *dir, tmsg *t) {
  int pick[PN];
  for (int i = 0; i < PN; i++) pick[i] = i;
  reference(dir, t, pick, PN);
  klevdb_options o = opts_small();
  klevdb *db = OPEN(dir, &o);
  if (!db) return;
  klevdb_deleted d;
  CHECK_DBOK(db, klevdb_delete_ranges(db, PDELS, 1, &d));
  CHECK_OK(klevdb_close(db));
}

/* Stages the messages on db (locked) and prepares them with PDELS. */
static klevdb_prepared *stage_prepared(klevdb *db, tmsg *t, const char *txid) {
  klevdb_stage *sg = NULL;
  klevdb_prepared *p = NULL;
  CHECK_DBOK(db, klevdb_writer_lock(db, 1000));
  CHECK_DBOK(db, klevdb_stage_begin(db, &sg));
  if (!sg) return NULL;
  add_range(db, sg, t, 0, PN);
  CHECK_DBOK(db, klevdb_stage_prepare(sg, PDELS, 1, txid, &p));
  return p;
}

/* A store of 3 messages whose writer died right after preparing a stage
** of t (the child's prepare is checked through its exit status). */
static void prepared_crash(const char *dir, tmsg *t) {
  klevdb_options o = opts_small();
  klevdb *db = OPEN(dir, &o);
  if (!db) return;
  PUBLISH(db, 0, 3, 0);
  CHECK_OK(klevdb_close(db));
  pid_t pid = fork();
  if (pid == 0) {
    klevdb *c;
    if (klevdb_open(dir, &o, &c, NULL)) _exit(2);
    klevdb_prepared *p = stage_prepared(c, t, "tx-stage");
    _exit(p && chk_failed == 0 ? 0 : 3);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static klevdb_prepared *find_batch(klevdb *db, int64_t base, size_t count) {
  klevdb_prepared *p = NULL;
  CHECK_DBOK(db, klevdb_prepared_find(db, &p));
  if (!p) return NULL;
  klevdb_prepared_info in;
  klevdb_prepared_get_info(p, &in);
  CHECK_STR(in.txid, "tx-stage");
  CHECK_EQ(in.base, base);
  CHECK_EQ(in.count, count);
  CHECK_EQ(in.nranges, 1);
  return p;
}

/* Committed in the same process, and found again after a crash: the files
** klevdb_publish and klevdb_delete_ranges write, renamed into place. */
static void test_prepared_commit(bool crash) {
  SECTION(crash ? "prepared stage: crash, then commit" : "prepared stage: commit");
  static tmsg t[PN];
  msgs_gen(t, 3, PN);
  char ref[256], dir[256];
  tmp_dir(ref, sizeof ref);
  tmp_dir(dir, sizeof dir);
  prepared_reference(ref, t);
  klevdb_options o = opts_small();
  klevdb *db;
  klevdb_prepared *p;
  if (crash) {
    prepared_crash(dir, t);
    /* A reader sees nothing of it; the segments wait under their names. */
    CHECK(count_ext(dir, ".log.stage") > 10);
    db = OPEN(dir, &o);
    if (!db) return;
    CHECK(count_ext(dir, ".log.stage") > 10);
    CHECK_NEXT(db, 3);
    tmsg x;
    gen(&x, 50);
    CHECK_DB(db, klevdb_publish(db, &x.m, 1, NULL), KLEVDB_ELOCKED);
    p = find_batch(db, 3, PN);
  } else {
    db = OPEN(dir, &o);
    if (!db) return;
    PUBLISH(db, 0, 3, 0);
    p = stage_prepared(db, t, "tx-stage");
    CHECK_NEXT(db, 3);
  }
  if (!p) return;
  int64_t b = -99, next = -99;
  CHECK_DBOK(db, klevdb_prepared_commit(p, &b, &next));
  CHECK_EQ(b, 3);
  CHECK_EQ(next, 3 + PN);
  if (!crash) klevdb_writer_unlock(db);
  CHECK_EQ(count_ext(dir, ".stage"), 0);
  CHECK_EQ(count_ext(dir, ".batch"), 0);
  GET_EXPECT(db, 200, 200, 200);
  GET_FAIL(db, 1, KLEVDB_ENOTFOUND);
  CHECK_DB(db, klevdb_prepared_find(db, &p), KLEVDB_ENOTFOUND);
  CHECK_OK(klevdb_close(db));
  CHECK(SAME_FILES(dir, ref) > 10);
  rm_rf(ref);
  rm_rf(dir);
}

static void test_prepared_abort(void) {
  SECTION("prepared stage: crash, then abort");
  static tmsg t[PN];
  msgs_gen(t, 3, PN);
  char ref[256], dir[256];
  tmp_dir(ref, sizeof ref);
  tmp_dir(dir, sizeof dir);
  reference(ref, t, NULL, 0);
  prepared_crash(dir, t);
  klevdb_options o = opts_small();
  klevdb *db = OPEN(dir, &o);
  if (!db) return;
  klevdb_prepared *p = find_batch(db, 3, PN);
  CHECK_DBOK(db, klevdb_prepared_abort(p));
  CHECK_EQ(count_ext(dir, ".stage"), 0);
  PUBLISH(db, 3, 1, 3);
  CHECK_OK(klevdb_close(db));
  db = OPEN(ref, &o);
  if (db) {
    PUBLISH(db, 3, 1, 3);
    CHECK_OK(klevdb_close(db));
  }
  CHECK(SAME_FILES(dir, ref) >= 1);
  rm_rf(ref);
  rm_rf(dir);
}

/* The commit's renames cut short by a crash. They go last segment first,
** so the batch's end is in place and a writer taking over (Go) appends
** after the whole batch; the next open finishes them. Unless that writer
** appended to the head the batch follows (no segment in place yet): then
** they stay under their temporary names, for the commit to publish after
** its messages. Made by hand: the commit's marker, and, for the first, the
** last segment renamed. */
static void test_prepared_cut_rename(bool other_writer) {
  SECTION(other_writer ? "prepared stage: renames cut short, the head grown since"
                       : "prepared stage: a commit's renames cut short");
  static tmsg t[PN];
  msgs_gen(t, 3, PN);
  char ref[256], dir[256], path[600], to[512];
  tmp_dir(ref, sizeof ref);
  tmp_dir(dir, sizeof dir);
  prepared_reference(ref, t);
  prepared_crash(dir, t);
  /* The stage's segments, from their files. */
  int64_t bases[64];
  int nb = 0;
  for (int64_t b = 3; b < 3 + PN && nb < 64; b++) {
    snprintf(path, sizeof path, "%s/%020lld.log.stage", dir, (long long)b);
    if (access(path, F_OK) == 0) bases[nb++] = b;
  }
  CHECK(nb > 10);
  snprintf(path, sizeof path, "%s/00000000000000000000.log", dir);
  long head = file_size(path);
  snprintf(path, sizeof path, "%s/.batch", dir);
  FILE *f = fopen(path, "w");
  CHECK(f != NULL);
  if (!f) return;
  fprintf(f, "h0 %ld\n", head + (other_writer ? 1 : 0));
  for (int i = 0; i < nb; i++) fprintf(f, "s%lld\n", (long long)bases[i]);
  fclose(f);
  if (!other_writer) {
    const char *ext[2] = {".log", ".index"};
    for (int k = 0; k < 2; k++) {
      snprintf(to, sizeof to, "%s/%020lld%s", dir, (long long)bases[nb - 1], ext[k]);
      snprintf(path, sizeof path, "%s.stage", to);
      CHECK(rename(path, to) == 0);
    }
  }
  klevdb_options o = opts_small();
  klevdb *db = OPEN(dir, &o);
  if (!db) return;
  CHECK_EQ(count_ext(dir, ".batch"), 0);
  CHECK_EQ(count_ext(dir, ".log.stage"), other_writer ? nb : 0);
  CHECK_NEXT(db, other_writer ? 3 : 3 + PN);
  klevdb_prepared *p = find_batch(db, 3, PN);
  int64_t b = -99;
  CHECK_DBOK(db, klevdb_prepared_commit(p, &b, NULL));
  CHECK_EQ(b, 3);
  CHECK_NEXT(db, 3 + PN);
  CHECK_OK(klevdb_close(db));
  CHECK(SAME_FILES(dir, ref) > 10);
  rm_rf(ref);
  rm_rf(dir);
}

/* Renamed into place, then the crash came before the file was cleared:
** found again, it is not published twice (only its deletes run again). */
static void test_prepared_done_then_crash(void) {
  SECTION("prepared stage: committed, then a crash before the file went");
  static tmsg t[PN];
  msgs_gen(t, 3, PN);
  char ref[256], dir[256], keep[512], path[512];
  tmp_dir(ref, sizeof ref);
  tmp_dir(dir, sizeof dir);
  prepared_reference(ref, t);
  prepared_crash(dir, t);
  snprintf(path, sizeof path, "%s/.prepared", dir);
  snprintf(keep, sizeof keep, "%s/prepared.keep", dir);
  long len = 0;
  uint8_t *img = slurp(path, &len);
  klevdb_options o = opts_small();
  klevdb *db = OPEN(dir, &o);
  if (!db || !img) return;
  klevdb_prepared *p = find_batch(db, 3, PN);
  CHECK_DBOK(db, klevdb_prepared_commit(p, NULL, NULL));
  CHECK_OK(klevdb_close(db));
  FILE *f = fopen(path, "wb");
  CHECK(f && fwrite(img, 1, (size_t)len, f) == (size_t)len);
  if (f) fclose(f);
  free(img);
  db = OPEN(dir, &o);
  if (!db) return;
  CHECK_NEXT(db, 3 + PN);
  p = find_batch(db, 3, PN);
  int64_t b = -99, next = -99;
  CHECK_DBOK(db, klevdb_prepared_commit(p, &b, &next));
  CHECK_EQ(b, 3);
  CHECK_EQ(next, 3 + PN);
  CHECK_OK(klevdb_close(db));
  CHECK(SAME_FILES(dir, ref) > 10);
  rm_rf(ref);
  rm_rf(dir);
}

/* Another writer (Go's) took the offsets while the batch was in doubt:
** the staged segments cannot go in as they are, so the batch is read
** back and published after that writer's messages. */
static void test_prepared_moved(void) {
  SECTION("prepared stage: another writer took the offsets");
  static tmsg t[PN];
  msgs_gen(t, 3, PN);
  char dir[256], hide[300], cmd[4096];
  tmp_dir(dir, sizeof dir);
  prepared_crash(dir, t);
  /* Hidden from the open of the other writer, which would clear them. */
  snprintf(hide, sizeof hide, "%s.hide", dir);
  snprintf(cmd, sizeof cmd, "mkdir -p '%s' && mv '%s'/.prepared '%s'/*.stage '%s'/", hide, dir,
           dir, hide);
  CHECK(system(cmd) == 0);
  klevdb_options o = opts_small();
  klevdb *db = OPEN(dir, &o);
  if (!db) return;
  PUBLISH(db, 100, 2, 3);   /* offsets 3 and 4 */
  CHECK_OK(klevdb_close(db));
  snprintf(cmd, sizeof cmd, "mv '%s'/.prepared '%s'/*.stage '%s'/ && rmdir '%s'", hide, hide, dir,
           hide);
  CHECK(system(cmd) == 0);
  db = OPEN(dir, &o);
  if (!db) return;
  klevdb_prepared *p = find_batch(db, 3, PN);
  int64_t b = -99, next = -99;
  CHECK_DBOK(db, klevdb_prepared_commit(p, &b, &next));
  CHECK_EQ(b, 5);
  CHECK_EQ(next, 5 + PN);
  CHECK_EQ(count_ext(dir, ".stage"), 0);
  GET_EXPECT(db, 3, 3, 100);
  GET_EXPECT(db, 4, 4, 101);
  GET_EXPECT(db, 5, 5, 3);
  GET_EXPECT(db, 5 + PN - 1, 5 + PN - 1, 3 + PN - 1);
  GET_FAIL(db, 1, KLEVDB_ENOTFOUND);
  CHECK_OK(klevdb_close(db));
  rm_rf(dir);
}

int main(void) {
  test_same_as_publish();
  test_truncate();
  test_abort_and_empty();
  test_crash();
  test_prepared_commit(false);
  test_prepared_commit(true);
  test_prepared_abort();
  test_prepared_cut_rename(false);
  test_prepared_cut_rename(true);
  test_prepared_done_then_crash();
  test_prepared_moved();
  return check_done();
}
