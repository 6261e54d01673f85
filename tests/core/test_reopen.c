/*
** test_reopen.c - spec checklist 31-39 (reopen, read-only, stat, backup,
** rebuilt indexes, corrupt head index) plus locking between processes,
** shared in-process opens and a read-only follower in another process.
**
** Child processes re-execute this program (/proc/self/exe) with a mode
** argument, so they start with a clean library state.
*/
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>

#include "check.h"

static char self_exe[4096];

/* ---- child modes ---- */

static int child_lockhold(const char *dir) {
  char p[4096];
  snprintf(p, sizeof(p), "%s/.lock", dir);
  int fd = open(p, O_CREAT | O_RDONLY, 0600);
  if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) {
    printf("F\n");
    fflush(stdout);
    return 1;
  }
  printf("L\n");
  fflush(stdout);
  char buf[16];
  while (read(0, buf, sizeof(buf)) > 0) {
  }
  return 0;
}

static int child_flock_ex(const char *dir) {
  char p[4096];
  snprintf(p, sizeof(p), "%s/.lock", dir);
  int fd = open(p, O_CREAT | O_RDONLY, 0600);
  if (fd < 0) return 2;
  if (flock(fd, LOCK_EX | LOCK_NB) == 0) return 0;
  return errno == EWOULDBLOCK ? 1 : 2;
}

static int child_open_rw(const char *dir) {
  klevdb_options o = opts_tk();
  klevdb *db = NULL;
  klevdb_error err;
  klevdb_err e = klevdb_open(dir, &o, &db, &err);
  if (e != KLEVDB_OK) {
    if (strncmp(err.msg, "klevdb: ", 8) != 0) {
      fprintf(stderr, "child open-rw: bad message \"%s\"\n", err.msg);
      return 100;
    }
    return (int)e;
  }
  klevdb_close(db);
  return 0;
}

/* Opens read-only, reports how many messages it sees, waits for the parent,
** then consumes past the previously known end. */
static int child_follow(const char *dir) {
  klevdb_options o = opts_tk();
  o.readonly = 1;
  klevdb *db = NULL;
  klevdb_error err;
  if (klevdb_open(dir, &o, &db, &err) != KLEVDB_OK) {
    fprintf(stderr, "follow: open: %s\n", err.msg);
    return 10;
  }
  int64_t offs[64];
  long n = CONSUME_ALL(db, 10, offs, 64);
  printf("%ld\n", n);
  fflush(stdout);
  char line[32];
  if (!fgets(line, sizeof(line), stdin)) return 11;
  klevdb_batch b = KLEVDB_BATCH_INIT;
  int64_t cur = n, seen = 0;
  for (int guard = 0; guard < 20; guard++) {
    klevdb_err e = klevdb_consume(db, cur, 10, &b);
    if (e != KLEVDB_OK) {
      fprintf(stderr, "follow: consume(%lld): %s (%s)\n", (long long)cur,
              klevdb_errname(e), klevdb_errmsg(db));
      return 12;
    }
    for (size_t k = 0; k < b.len; k++) {
      if (!CHECK_MSG(&b.msgs[k], n + seen, (int)(n + seen))) return 13;
      seen++;
    }
    if (b.len == 0 || b.next_offset == cur) break;
    cur = b.next_offset;
  }
  if (seen != 3) {
    fprintf(stderr, "follow: saw %lld new messages, expected 3\n", (long long)seen);
    return 14;
  }
  int64_t next = -1;
  if (klevdb_next_offset(db, &next) != KLEVDB_OK || next != 5) {
    fprintf(stderr, "follow: next offset %lld, expected 5\n", (long long)next);
    return 15;
  }
  if (klevdb_get(db, 4, &b) != KLEVDB_OK || b.len != 1 || !CHECK_MSG(&b.msgs[0], 4, 4)) {
    fprintf(stderr, "follow: get(4) failed: %s\n", klevdb_errmsg(db));
    return 16;
  }
  if (klevdb_get(db, KLEVDB_OFFSET_NEWEST, &b) != KLEVDB_OK || b.len != 1 ||
      b.msgs[0].offset != 4) {
    fprintf(stderr, "follow: get(newest) failed: %s\n", klevdb_errmsg(db));
    return 17;
  }
  char k3[16];
  snprintf(k3, sizeof(k3), "%10d", 3);
  if (klevdb_get_by_key(db, k3, 10, &b) != KLEVDB_OK || b.len != 1 ||
      b.msgs[0].offset != 3) {
    fprintf(stderr, "follow: get_by_key(3) failed: %s\n", klevdb_errmsg(db));
    return 18;
  }
  klevdb_stat st;
  if (klevdb_stat_get(db, &st) != KLEVDB_OK || st.messages != 5) {
    fprintf(stderr, "follow: stat messages %lld, expected 5\n", (long long)st.messages);
    return 19;
  }
  /* phase 2: the writer deleted [0, 3): segment 0 is gone, segment 2 was
  ** renamed to 3 */
  printf("ok\n");
  fflush(stdout);
  if (!fgets(line, sizeof(line), stdin)) return 21;
  /* The store re-reads the directory at most every 10 ms for reads that do
  ** not depend on the log's end (follow.c FOLLOW_US): give it that time. */
  usleep(30000);
  if (klevdb_consume(db, KLEVDB_OFFSET_OLDEST, 10, &b) != KLEVDB_OK || b.len != 1 ||
      !CHECK_MSG(&b.msgs[0], 3, 3) || b.next_offset != 4) {
    fprintf(stderr, "follow: after delete, consume(oldest): %s len %zu\n",
            klevdb_errmsg(db), b.len);
    return 22;
  }
  if (klevdb_get(db, 1, &b) != KLEVDB_ENOTFOUND) {
    fprintf(stderr, "follow: after delete, get(1) is not not_found\n");
    return 23;
  }
  long m = CONSUME_ALL(db, 10, offs, 64);
  if (m != 2 || offs[0] != 3 || offs[1] != 4) {
    fprintf(stderr, "follow: after delete, %ld messages\n", m);
    return 24;
  }
  klevdb_batch_free(&b);
  klevdb_close(db);
  return chk_failed ? 20 : 0;
}

/* Starts this program in mode on dir; pipes to its stdin / from its stdout
** if the pointers are not NULL. */
static pid_t spawn(const char *mode, const char *dir, int *to_child, int *from_child) {
  int in[2], out[2];
  if (pipe(in) != 0 || pipe(out) != 0) return -1;
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    close(in[0]);
    close(in[1]);
    close(out[0]);
    close(out[1]);
    execl(self_exe, self_exe, mode, dir, (char *)NULL);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  if (to_child) *to_child = in[1];
  else close(in[1]);
  if (from_child) *from_child = out[0];
  else close(out[0]);
  return pid;
}

static int wait_exit(pid_t pid) {
  int st = 0;
  if (waitpid(pid, &st, 0) != pid) return -1;
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  return 1000 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static int run_child(const char *mode, const char *dir) {
  pid_t pid = spawn(mode, dir, NULL, NULL);
  return wait_exit(pid);
}

/* ---- tests ---- */

static void make_store(const char *dir, int64_t rollover, int n) {
  klevdb_options o = opts_tk();
  o.rollover = rollover;
  klevdb *db = OPEN(dir, &o);
  if (!db) return;
  PUBLISH(db, 0, n, 0);
  CHECK_OK(klevdb_close(db));
}

static void get_by_key_all(klevdb *db, int n, int line) {
  klevdb_batch b = KLEVDB_BATCH_INIT;
  for (int i = 0; i < n; i++) {
    char k[16];
    snprintf(k, sizeof(k), "%10d", i);
    klevdb_err e = klevdb_get_by_key(db, k, 10, &b);
    chk_report(e == KLEVDB_OK && b.len == 1, __FILE__, line, "get_by_key(%d): %s (%s)",
               i, klevdb_errname(e), e ? klevdb_errmsg(db) : "");
    if (e == KLEVDB_OK && b.len == 1) chk_msg(&b.msgs[0], i, i, __FILE__, line);
  }
  klevdb_batch_free(&b);
}

static void test_reopen(void) {
  char dir[256];
  SECTION("reopen 31");
  tmp_dir(dir, sizeof(dir));
  make_store(dir, 0, 4);
  klevdb_options o = opts_tk();
  klevdb *db = OPEN(dir, &o);
  if (db) {
    CHECK_NEXT(db, 4);
    CONSUME_EXPECT(db, KLEVDB_OFFSET_OLDEST, 10, 0, 0, 4, 4);
    get_by_key_all(db, 4, __LINE__);
    CHECK_STAT(db, 1, 4, 4 * gen_size(db) + 16);
    CHECK_OK(klevdb_close(db));
  }
  rm_rf(dir);

  SECTION("reopen 32");
  tmp_dir(dir, sizeof(dir));
  make_store(dir, 2 * SV2, 4);
  o.rollover = 1000000;
  db = OPEN(dir, &o);
  if (db) {
    CONSUME_EXPECT(db, KLEVDB_OFFSET_OLDEST, 10, 0, 0, 2, 2);
    CONSUME_EXPECT(db, 2, 10, 2, 2, 2, 4);
    get_by_key_all(db, 4, __LINE__);
    CHECK_STAT(db, 2, 4, 4 * gen_size(db) + 32);
    CHECK_OK(klevdb_close(db));
    /* check and recover at open leave a healthy store alone */
    klevdb_options co = o;
    co.check = 1;
    db = OPEN(dir, &co);
    if (db) CHECK_OK(klevdb_close(db));
    co.recover = 1;
    co.auto_sync = 1;
    db = OPEN(dir, &co);
    if (!db) goto out32;
    CONSUME_EXPECT(db, 2, 10, 2, 2, 2, 4);
    /* the head continues with the new rollover */
    PUBLISH(db, 4, 2, 4);
    CHECK_STAT(db, 2, 6, 6 * gen_size(db) + 32);
    CHECK_OK(klevdb_close(db));
  }
out32:
  rm_rf(dir);
}

static void test_readonly_empty(void) {
  char dir[256], bdir[300] = "";
  SECTION("readonly 33");
  tmp_dir(dir, sizeof(dir));
  klevdb_options o = opts_tk();
  o.readonly = 1;
  klevdb *db = OPEN(dir, &o);
  if (!db) goto out;
  tmsg t;
  gen(&t, 0);
  int64_t next = 0;
  CHECK_DB(db, klevdb_publish(db, &t.m, 1, &next), KLEVDB_EREADONLY);
  int64_t del = 0;
  klevdb_deleted d;
  CHECK_DB(db, klevdb_delete(db, &del, 1, &d, NULL), KLEVDB_EREADONLY);
  CHECK_NEXT(db, 0);
  CONSUME_EXPECT(db, KLEVDB_OFFSET_OLDEST, 10, 0, 0, 0, 0);
  CONSUME_EXPECT(db, KLEVDB_OFFSET_NEWEST, 10, 0, 0, 0, 0);
  CONSUME_EXPECT(db, 0, 10, 0, 0, 0, 0);
  CONSUME_FAIL(db, 1, KLEVDB_EINVALID_OFFSET);
  GET_FAIL(db, KLEVDB_OFFSET_OLDEST, KLEVDB_EINVALID_OFFSET);
  GET_FAIL(db, KLEVDB_OFFSET_NEWEST, KLEVDB_EINVALID_OFFSET);
  GET_FAIL(db, 0, KLEVDB_EINVALID_OFFSET);
  GET_FAIL(db, 1, KLEVDB_EINVALID_OFFSET);
  {
    klevdb_batch b = KLEVDB_BATCH_INIT;
    CHECK_DB(db, klevdb_get_by_key(db, t.key, 10, &b), KLEVDB_ENOTFOUND);
    CHECK_DB(db, klevdb_get_by_time(db, TI(0), &b), KLEVDB_EINVALID_OFFSET);
    klevdb_batch_free(&b);
  }
  CHECK_STAT(db, 0, 0, 0);
  snprintf(bdir, sizeof(bdir), "%s-backup", dir);   /* beside it: never inside */
  CHECK_DBOK(db, klevdb_backup(db, bdir));
  next = -99;
  CHECK_DBOK(db, klevdb_sync(db, &next));
  CHECK_EQ(next, 0);
  /* B8: gc on the read-only empty store keeps it usable */
  CHECK_DBOK(db, klevdb_gc(db, 0));
  CONSUME_EXPECT(db, KLEVDB_OFFSET_OLDEST, 10, 0, 0, 0, 0);
  CHECK_EQ(count_ext(dir, ".log"), 0);
  CHECK_OK(klevdb_close(db));
out:
  rm_rf(dir);
  rm_rf(bdir);
}

static void test_readonly_store(int two_segments) {
  char dir[256], bdir[300] = "";
  SECTION(two_segments ? "readonly 35" : "readonly 34");
  tmp_dir(dir, sizeof(dir));
  make_store(dir, two_segments ? 2 * SV2 : 0, 4);
  klevdb_options o = opts_tk();
  o.readonly = 1;
  klevdb *db = OPEN(dir, &o);
  if (!db) goto out;
  int64_t Size = gen_size(db);
  CHECK_NEXT(db, 4);
  if (two_segments) {
    CONSUME_EXPECT(db, KLEVDB_OFFSET_OLDEST, 4, 0, 0, 2, 2);
    CONSUME_EXPECT(db, 2, 4, 2, 2, 2, 4);
  } else {
    CONSUME_EXPECT(db, KLEVDB_OFFSET_OLDEST, 4, 0, 0, 4, 4);
  }
  CONSUME_EXPECT(db, KLEVDB_OFFSET_NEWEST, 4, 0, 0, 0, 4);
  CONSUME_EXPECT(db, 0, 1, 0, 0, 1, 1);
  CONSUME_EXPECT(db, 4, 4, 0, 0, 0, 4);
  CONSUME_FAIL(db, 5, KLEVDB_EINVALID_OFFSET);
  GET_EXPECT(db, KLEVDB_OFFSET_OLDEST, 0, 0);
  GET_EXPECT(db, KLEVDB_OFFSET_NEWEST, 3, 3);
  GET_EXPECT(db, 2, 2, 2);
  GET_FAIL(db, 5, KLEVDB_EINVALID_OFFSET);
  get_by_key_all(db, 4, __LINE__);
  for (int i = 0; i < 4; i++) {
    klevdb_batch b = KLEVDB_BATCH_INIT;
    CHECK_DBOK(db, klevdb_get_by_time(db, TI(i), &b));
    if (b.len == 1) CHECK_MSG(&b.msgs[0], i, i);
    klevdb_batch_free(&b);
  }
  int segs = two_segments ? 2 : 1;
  CHECK_STAT(db, segs, 4, 4 * Size + 16 * segs);
  snprintf(bdir, sizeof(bdir), "%s-backup", dir);   /* beside it: never inside */
  CHECK_DBOK(db, klevdb_backup(db, bdir));
  {
    klevdb_stat st = {-1, -1, -1};
    klevdb_error err;
    klevdb_options so = opts_tk();
    CHECK_OK(klevdb_dir_stat(bdir, &so, &st, &err));
    CHECK_EQ(st.segments, segs);
    CHECK_EQ(st.messages, 4);
    CHECK_EQ(st.size, 4 * Size + 16 * segs);
  }
  int64_t next = -99;
  CHECK_DBOK(db, klevdb_sync(db, &next));
  CHECK_EQ(next, 4);
  CHECK_DBOK(db, klevdb_gc(db, 0));
  CONSUME_EXPECT(db, 0, 1, 0, 0, 1, 1);
  CHECK_OK(klevdb_close(db));
out:
  rm_rf(dir);
  rm_rf(bdir);
}

/* 36 (stat on 1 and 2 segments) is covered by 31/32/34/35; 37: backup of a
** live store, then the copy consumes the same step by step. */
static void test_backup_live(int rollover) {
  char dir[256], bdir[300] = "";
  SECTION(rollover ? "backup 37 (2 segments)" : "backup 37 (1 segment)");
  tmp_dir(dir, sizeof(dir));
  klevdb_options o = opts_tk();
  o.rollover = rollover;
  klevdb *db = OPEN(dir, &o);
  if (!db) goto out;
  PUBLISH(db, 0, 4, 0);
  snprintf(bdir, sizeof(bdir), "%s-backup", dir);   /* beside it: never inside */
  CHECK_DBOK(db, klevdb_backup(db, bdir));
  klevdb_stat st1, st2;
  CHECK_DBOK(db, klevdb_stat_get(db, &st1));
  {
    klevdb_options bo = opts_tk();
    klevdb *cp = OPEN(bdir, &bo);
    if (cp) {
      CHECK_DBOK(cp, klevdb_stat_get(cp, &st2));
      CHECK_EQ(st2.segments, st1.segments);
      CHECK_EQ(st2.messages, st1.messages);
      CHECK_EQ(st2.size, st1.size);
      klevdb_batch b1 = KLEVDB_BATCH_INIT, b2 = KLEVDB_BATCH_INIT;
      int64_t c1 = KLEVDB_OFFSET_OLDEST, c2 = KLEVDB_OFFSET_OLDEST;
      for (int step = 0; step < 10; step++) {
        CHECK_DBOK(db, klevdb_consume(db, c1, 1, &b1));
        CHECK_DBOK(cp, klevdb_consume(cp, c2, 1, &b2));
        CHECK_EQ(b1.len, b2.len);
        CHECK_EQ(b1.next_offset, b2.next_offset);
        if (b1.len == 1 && b2.len == 1) CHECK_MSG(&b2.msgs[0], b1.msgs[0].offset, step);
        if (b1.len == 0) break;
        c1 = b1.next_offset;
        c2 = b2.next_offset;
      }
      klevdb_batch_free(&b1);
      klevdb_batch_free(&b2);
      CHECK_OK(klevdb_close(cp));
    }
  }
  /* publish more: a second backup into the first one's folder is refused
  ** (two stores are never mixed); into a new one it has everything */
  PUBLISH(db, 4, 2, 4);
  CHECK_DB(db, klevdb_backup(db, bdir), KLEVDB_EINVAL);
  snprintf(bdir, sizeof(bdir), "%s-backup2", dir);
  CHECK_DBOK(db, klevdb_backup(db, bdir));
  {
    klevdb_options bo = opts_tk();
    klevdb *cp = OPEN(bdir, &bo);
    if (cp) {
      int64_t offs[16];
      CHECK_EQ(CONSUME_ALL(cp, 10, offs, 16), 6);
      CHECK_NEXT(cp, 6);
      CHECK_OK(klevdb_close(cp));
    }
  }
  /* the copy holds no lock file of the source's making: backup skips .lock */
  CHECK_OK(klevdb_close(db));
out:
  rm_rf(dir);
  rm_rf(bdir);
  snprintf(bdir, sizeof(bdir), "%s-backup", dir);
  rm_rf(bdir);
}

static void test_index_rebuild(void) {
  char dir[256];
  SECTION("index rebuild 38");
  tmp_dir(dir, sizeof(dir));
  make_store(dir, 2 * SV2, 4);
  CHECK_EQ(remove_ext(dir, ".index"), 2);
  klevdb_options o = opts_tk();
  klevdb *db = OPEN(dir, &o);
  if (db) {
    CHECK_NEXT(db, 4);
    CONSUME_EXPECT(db, KLEVDB_OFFSET_OLDEST, 10, 0, 0, 2, 2);
    CONSUME_EXPECT(db, 2, 10, 2, 2, 2, 4);
    get_by_key_all(db, 4, __LINE__);
    {
      klevdb_batch b = KLEVDB_BATCH_INIT;
      CHECK_DBOK(db, klevdb_get_by_time(db, TI(1), &b));
      if (b.len == 1) CHECK_MSG(&b.msgs[0], 1, 1);
      klevdb_batch_free(&b);
    }
    CHECK_OK(klevdb_close(db));
  }
  CHECK_EQ(count_ext(dir, ".index"), 2);
  CHECK_EQ(seg_size(dir, 0, ".index"), 8 + 2 * 32);
  CHECK_EQ(seg_size(dir, 2, ".index"), 8 + 2 * 32);
  /* read-only open of a store without indexes */
  CHECK_EQ(remove_ext(dir, ".index"), 2);
  o.readonly = 1;
  db = OPEN(dir, &o);
  if (db) {
    CHECK_NEXT(db, 4);
    int64_t offs[8];
    CHECK_EQ(CONSUME_ALL(db, 10, offs, 8), 4);
    get_by_key_all(db, 4, __LINE__);
    CHECK_OK(klevdb_close(db));
  }
  rm_rf(dir);

  SECTION("corrupt head index 39");
  tmp_dir(dir, sizeof(dir));
  make_store(dir, 2 * SV2, 4);
  {
    char p[4096];
    seg_name(p, sizeof(p), dir, 2, ".index");
    FILE *f = fopen(p, "wb");
    CHECK(f != NULL);
    if (f) {
      fputs("random data characters, not an index at all", f);
      fclose(f);
    }
  }
  o = opts_tk();
  {
    klevdb *bad = NULL;
    klevdb_error err;
    memset(&err, 0, sizeof(err));
    CHECK_ERR(klevdb_open(dir, &o, &bad, &err), KLEVDB_ECORRUPT_INDEX);
    CHECK_EQ(err.code, KLEVDB_ECORRUPT_INDEX);
    CHECK(strncmp(err.msg, "klevdb: ", 8) == 0);
    if (bad) klevdb_close(bad);
    /* the failed open released the lock */
    CHECK_EQ(run_child("flock-ex", dir), 0);
  }
  CHECK_EQ(remove_ext(dir, ".index"), 2);
  db = OPEN(dir, &o);
  if (db) {
    int64_t offs[8];
    CHECK_EQ(CONSUME_ALL(db, 10, offs, 8), 4);
    for (int i = 0; i < 4; i++) GET_EXPECT(db, i, i, i);
    get_by_key_all(db, 4, __LINE__);
    CHECK_OK(klevdb_close(db));
  }
  rm_rf(dir);
}

static void test_locking(void) {
  char dir[256];
  SECTION("locking");
  tmp_dir(dir, sizeof(dir));
  klevdb_options o = opts_tk();
  klevdb *db = OPEN(dir, &o);
  if (!db) goto out;
  PUBLISH(db, 0, 1, 0);
  /* another process cannot open read-write, nor flock the lock file */
  CHECK_EQ(run_child("open-rw", dir), KLEVDB_ELOCKED);
  CHECK_EQ(run_child("flock-ex", dir), 1);
  CHECK_OK(klevdb_close(db));
  /* closed: the lock is released */
  CHECK_EQ(run_child("flock-ex", dir), 0);
  CHECK_EQ(run_child("open-rw", dir), 0);

  /* a foreign flock holder (as a Go process) blocks a read-write open */
  {
    int to = -1, from = -1;
    pid_t pid = spawn("lockhold", dir, &to, &from);
    char c = 0;
    CHECK(read(from, &c, 1) == 1 && c == 'L');
    klevdb *x = NULL;
    klevdb_error err;
    memset(&err, 0, sizeof(err));
    CHECK_ERR(klevdb_open(dir, &o, &x, &err), KLEVDB_ELOCKED);
    CHECK(strncmp(err.msg, "klevdb: ", 8) == 0);
    if (x) klevdb_close(x);
    /* read-only takes no lock: it opens and reads while the lock is held */
    klevdb_options ro = opts_tk();
    ro.readonly = 1;
    klevdb *r = OPEN(dir, &ro);
    if (r) {
      CONSUME_EXPECT(r, KLEVDB_OFFSET_OLDEST, 10, 0, 0, 1, 1);
      CHECK_OK(klevdb_close(r));
    }
    close(to);
    close(from);
    CHECK_EQ(wait_exit(pid), 0);
    db = OPEN(dir, &o);
    if (db) CHECK_OK(klevdb_close(db));
  }

  /* read-only open takes no lock: another process can open read-write */
  {
    klevdb_options ro = opts_tk();
    ro.readonly = 1;
    klevdb *r = OPEN(dir, &ro);
    if (r) {
      CHECK_EQ(run_child("flock-ex", dir), 0);
      CHECK_EQ(run_child("open-rw", dir), 0);
      CHECK_OK(klevdb_close(r));
    }
  }
out:
  rm_rf(dir);
}

/* A read-only handle opened before the writer of the same process has a
** store of its own, following the files: each commit of that writer must
** show at its next read, not a refresh interval later. Rounds, since one
** may straddle the interval on a loaded machine. */
static void test_readonly_then_writer(void) {
  char dir[256];
  SECTION("read-only handle, then a writer, in one process");
  tmp_dir(dir, sizeof(dir));
  make_store(dir, 0, 4);
  klevdb_options o = opts_tk();
  o.readonly = 1;
  klevdb *ro = OPEN(dir, &o);
  o.readonly = 0;
  klevdb *rw = OPEN(dir, &o);
  if (!ro || !rw) goto out;
  GET_EXPECT(ro, 0, 0, 0);
  for (int i = 0; i < 20; i++) {
    int64_t off = 4 + i;
    PUBLISH(rw, (int)off, 1, off);
    char k[16];
    snprintf(k, sizeof(k), "%10d", (int)off);
    klevdb_batch bt = KLEVDB_BATCH_INIT;
    CHECK_DBOK(ro, klevdb_get_by_key(ro, k, 10, &bt));
    if (bt.len == 1) CHECK_MSG(&bt.msgs[0], off, (int)off);
    klevdb_batch_free(&bt);
    GET_EXPECT(ro, off - 1, off - 1, (int)off - 1);
    klevdb_deleted d = {0, 0};
    off--;
    CHECK_DBOK(rw, klevdb_delete(rw, &off, 1, &d, NULL));
    CHECK_EQ(d.count, 1);
    GET_FAIL(ro, off, KLEVDB_ENOTFOUND);
  }
  /* A key the handle knows, published again: the newest is the new one. */
  for (int64_t off = 24; off < 44; off++) {
    PUBLISH(rw, 0, 1, off);
    klevdb_batch bt = KLEVDB_BATCH_INIT;
    CHECK_DBOK(ro, klevdb_get_by_key(ro, "         0", 10, &bt));
    if (bt.len == 1) CHECK_MSG(&bt.msgs[0], off, 0);
    klevdb_batch_free(&bt);
  }
out:
  if (rw) klevdb_close(rw);
  if (ro) klevdb_close(ro);
  rm_rf(dir);
}

static void test_shared_open(void) {
  char dir[256];
  SECTION("two read-write opens in one process");
  tmp_dir(dir, sizeof(dir));
  klevdb_options o = opts_tk();
  klevdb *a = OPEN(dir, &o);
  klevdb *b = OPEN(dir, &o);
  if (!a || !b) goto out;
  CHECK(a != b);
  PUBLISH(a, 0, 2, 0);
  CHECK_NEXT(b, 2);
  CONSUME_EXPECT(b, KLEVDB_OFFSET_OLDEST, 10, 0, 0, 2, 2);
  PUBLISH(b, 2, 1, 2);
  CHECK_NEXT(a, 3);
  GET_EXPECT(a, 2, 2, 2);
  {
    char k[16];
    snprintf(k, sizeof(k), "%10d", 2);
    klevdb_batch bt = KLEVDB_BATCH_INIT;
    CHECK_DBOK(a, klevdb_get_by_key(a, k, 10, &bt));
    if (bt.len == 1) CHECK_MSG(&bt.msgs[0], 2, 2);
    klevdb_batch_free(&bt);
  }
  /* a delete on one handle is seen by the other */
  {
    int64_t off = 1;
    klevdb_deleted d = {0, 0};
    CHECK_DBOK(b, klevdb_delete(b, &off, 1, &d, NULL));
    CHECK_EQ(d.count, 1);
    GET_FAIL(a, 1, KLEVDB_ENOTFOUND);
  }
  /* still locked against other processes while any handle is open */
  CHECK_EQ(run_child("open-rw", dir), KLEVDB_ELOCKED);
  CHECK_OK(klevdb_close(a));
  a = NULL;
  CHECK_EQ(run_child("open-rw", dir), KLEVDB_ELOCKED);
  PUBLISH(b, 3, 1, 3);
  CHECK_STAT(b, 1, 3, 3 * gen_size(b) + 16);
  CHECK_OK(klevdb_close(b));
  b = NULL;
  CHECK_EQ(run_child("flock-ex", dir), 0);
  a = OPEN(dir, &o);
  if (a) {
    int64_t offs[8];
    CHECK_EQ(CONSUME_ALL(a, 10, offs, 8), 3);
    CHECK_EQ(offs[0], 0);
    CHECK_EQ(offs[1], 2);
    CHECK_EQ(offs[2], 3);
    CHECK_OK(klevdb_close(a));
    a = NULL;
  }
out:
  if (a) klevdb_close(a);
  if (b) klevdb_close(b);
  rm_rf(dir);
}

static void test_follow(void) {
  char dir[256];
  SECTION("read-only follower in another process");
  tmp_dir(dir, sizeof(dir));
  klevdb_options o = opts_tk();
  o.rollover = 2 * SV2;
  klevdb *db = OPEN(dir, &o);
  if (!db) goto out;
  PUBLISH(db, 0, 2, 0);
  int to = -1, from = -1;
  pid_t pid = spawn("follow", dir, &to, &from);
  FILE *fin = fdopen(from, "r");
  char line[32] = "";
  CHECK(fin && fgets(line, sizeof(line), fin) != NULL);
  CHECK_EQ(atoi(line), 2);
  /* rolls over twice: segments 2 and 4 appear after the reader opened */
  PUBLISH(db, 2, 3, 2);
  CHECK_EQ(count_ext(dir, ".log"), 3);
  CHECK(write(to, "go\n", 3) == 3);
  CHECK(fin && fgets(line, sizeof(line), fin) != NULL);
  CHECK_STR(line, "ok\n");
  {
    klevdb_range r = {0, 3};
    klevdb_deleted d = {0, 0};
    CHECK_DBOK(db, klevdb_delete_ranges(db, &r, 1, &d));
    CHECK_EQ(d.count, 3);
    CHECK(!seg_exists(dir, 0, ".log"));
    CHECK(seg_exists(dir, 3, ".log"));
  }
  CHECK(write(to, "go\n", 3) == 3);
  close(to);
  int rc = wait_exit(pid);
  CHECK_EQ(rc, 0);
  if (fin) fclose(fin);
  CHECK_OK(klevdb_close(db));
out:
  rm_rf(dir);
}

/* A writer killed between making the next head and cutting the old one's
** room allocated ahead (a delete or rollover interrupted) leaves a sealed
** segment whose log ends in zeros; with its index gone too, open rebuilds
** the index from the log and must keep every record. */
static void test_sealed_zero_tail(void) {
  SECTION("sealed segment with a zero tail");
  char dir[256], empty[256];
  tmp_dir(dir, sizeof dir);
  tmp_dir(empty, sizeof empty);
  klevdb_options o = opts_tk();
  o.preallocate = 1;   /* the layout with room ahead */
  pid_t pid = fork();
  if (pid == 0) {
    klevdb *c;
    if (klevdb_open(dir, &o, &c, NULL)) _exit(2);
    for (int i = 0; i < 40; i++) {
      tmsg t;
      gen(&t, i);
      if (klevdb_publish(c, &t.m, 1, NULL)) _exit(3);
    }
    _exit(0);   /* killed: no close, the room ahead stays */
  }
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  CHECK(seg_size(dir, 0, ".log") > 8 + 40 * SV2);   /* zeros after the records */
  /* An empty segment at 40 (a new store's files) makes segment 0 sealed. */
  klevdb *db = OPEN(empty, &o);
  if (db) CHECK_OK(klevdb_close(db));
  char from[512], to[512];
  const char *ext[2] = {".log", ".index"};
  for (int k = 0; k < 2; k++) {
    long len;
    snprintf(from, sizeof from, "%s/%020d%s", empty, 0, ext[k]);
    snprintf(to, sizeof to, "%s/%020d%s", dir, 40, ext[k]);
    FILE *f = fopen(from, "rb"), *g = fopen(to, "wb");
    char buf[64];
    len = f ? (long)fread(buf, 1, sizeof buf, f) : 0;
    CHECK(len == 8 && g && fwrite(buf, 1, (size_t)len, g) == (size_t)len);
    if (f) fclose(f);
    if (g) fclose(g);
  }
  snprintf(to, sizeof to, "%s/%020d.index", dir, 0);
  CHECK(unlink(to) == 0);
  db = OPEN(dir, &o);
  if (db) {
    int64_t offs[64];
    CHECK_EQ(CONSUME_ALL(db, 7, offs, 64), 40);
    GET_EXPECT(db, 39, 39, 39);
    CHECK_NEXT(db, 40);
    PUBLISH(db, 40, 2, 40);
    CHECK_OK(klevdb_close(db));
  }
  rm_rf(dir);
  rm_rf(empty);
}

int main(int argc, char **argv) {
  ssize_t n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
  if (n <= 0) {
    perror("readlink");
    return 2;
  }
  self_exe[n] = 0;
  if (argc == 3) {
    if (strcmp(argv[1], "lockhold") == 0) return child_lockhold(argv[2]);
    if (strcmp(argv[1], "flock-ex") == 0) return child_flock_ex(argv[2]);
    if (strcmp(argv[1], "open-rw") == 0) return child_open_rw(argv[2]);
    if (strcmp(argv[1], "follow") == 0) return child_follow(argv[2]);
    return 99;
  }
  signal(SIGPIPE, SIG_IGN);
  chk_name = "test_reopen";
  test_reopen();
  test_readonly_empty();
  test_readonly_store(0);
  test_readonly_store(1);
  test_backup_live(0);
  test_backup_live(2 * SV2);
  test_index_rebuild();
  test_sealed_zero_tail();
  test_locking();
  test_shared_open();
  test_readonly_then_writer();
  test_follow();
  return check_done();
}
