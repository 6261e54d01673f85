/*
** test_badinput.c - bad input for the entry points of klevdb.h: NULL
** handles and out-pointers (where a klevdb_err can report it), max_count 0,
** oversized messages (nothing written, differences D6), bad options and
** directories, writes on read-only stores, negative deletes, index params
** mismatch; every error message starts with "klevdb: ".
**
** Calls with a NULL handle run in a forked child so that a crash is
** reported as a failure instead of ending the test.
*/
#include <sys/wait.h>

#include "check.h"

#define CHECK_ERRMSG(e)                                                  \
  do {                                                                   \
    CHECK(strncmp((e).msg, "klevdb: ", 8) == 0);                         \
  } while (0)

static void null_handle_calls(void) {
  klevdb_batch b = KLEVDB_BATCH_INIT;
  int64_t o = 0, t = 0;
  klevdb_msg m;
  memset(&m, 0, sizeof(m));
  klevdb_stat st;
  klevdb_bounds bd;
  klevdb_deleted d;
  klevdb_range r = {0, 1};
  CHECK_ERR(klevdb_publish(NULL, &m, 1, &o), KLEVDB_EINVAL);
  CHECK_ERR(klevdb_next_offset(NULL, &o), KLEVDB_EINVAL);
  CHECK_ERR(klevdb_consume(NULL, 0, 10, &b), KLEVDB_EINVAL);
  CHECK_ERR(klevdb_consume_by_key(NULL, "k", 1, 0, 10, &b), KLEVDB_EINVAL);
  CHECK_ERR(klevdb_consume_blocking(NULL, 0, 10, 10, &b), KLEVDB_EINVAL);
  CHECK_ERR(klevdb_get(NULL, 0, &b), KLEVDB_EINVAL);
  CHECK_ERR(klevdb_get_by_key(NULL, "k", 1, &b), KLEVDB_EINVAL);
  CHECK_ERR(klevdb_offset_by_key(NULL, "k", 1, &o), KLEVDB_EINVAL);
  CHECK_ERR(klevdb_get_by_time(NULL, 0, &b), KLEVDB_EINVAL);
  CHECK_ERR(klevdb_offset_by_time(NULL, 0, &o, &t), KLEVDB_EINVAL);
  CHECK_ERR(klevdb_stat_get(NULL, &st), KLEVDB_EINVAL);
  CHECK_ERR(klevdb_bounds_get(NULL, &bd), KLEVDB_EINVAL);
  CHECK_ERR(klevdb_delete(NULL, &o, 1, &d, NULL), KLEVDB_EINVAL);
  CHECK_ERR(klevdb_delete_ranges(NULL, &r, 1, &d), KLEVDB_EINVAL);
  CHECK_ERR(klevdb_sync(NULL, &o), KLEVDB_EINVAL);
  CHECK_ERR(klevdb_gc(NULL, 0), KLEVDB_EINVAL);
  CHECK_ERR(klevdb_backup(NULL, "/tmp/klevdb-nonexistent-backup"), KLEVDB_EINVAL);
  CHECK_ERR(klevdb_close(NULL), KLEVDB_OK);
  klevdb_batch_free(&b);
}

static void run_in_child(void (*fn)(void), const char *what) {
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid == 0) {
    chk_failed = 0;
    chk_total = 0;
    fn();
    fflush(stderr);
    _exit(chk_failed > 100 ? 100 : chk_failed);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
  chk_report(ok, __FILE__, __LINE__, "%s: child %s %d", what,
             WIFEXITED(st) ? "failed checks:" : "died of signal",
             WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

static void test_open_args(void) {
  char dir[256], p[512];
  SECTION("open arguments");
  tmp_dir(dir, sizeof(dir));
  klevdb_options o = opts_default();
  klevdb *db = NULL;
  klevdb_error err;

  memset(&err, 0, sizeof(err));
  CHECK_ERR(klevdb_open(NULL, &o, &db, &err), KLEVDB_EINVAL);
  CHECK_EQ(err.code, KLEVDB_EINVAL);
  CHECK_ERRMSG(err);
  CHECK(db == NULL);

  memset(&err, 0, sizeof(err));
  CHECK_ERR(klevdb_open(dir, &o, NULL, &err), KLEVDB_EINVAL);
  CHECK_ERRMSG(err);
  /* nothing was locked by the failed open */
  db = OPEN(dir, &o);
  if (db) klevdb_close(db);
  db = NULL;

  /* err may be NULL */
  CHECK_ERR(klevdb_open(NULL, &o, &db, NULL), KLEVDB_EINVAL);
  snprintf(p, sizeof(p), "%s/missing/deeper", dir);
  CHECK(klevdb_open(p, &o, &db, NULL) != KLEVDB_OK);
  CHECK(db == NULL);

  /* missing dir without create_dirs */
  memset(&err, 0, sizeof(err));
  CHECK(klevdb_open(p, &o, &db, &err) != KLEVDB_OK);
  CHECK(err.code != KLEVDB_OK);
  CHECK_ERRMSG(err);
  CHECK(file_size(p) < 0);
  /* ... with create_dirs: mkdir -p, 0700 */
  o.create_dirs = 1;
  db = OPEN(p, &o);
  if (db) {
    struct stat sb;
    CHECK(stat(p, &sb) == 0 && S_ISDIR(sb.st_mode));
    CHECK_EQ(sb.st_mode & 0777, 0700);
    char lk[600];
    snprintf(lk, sizeof(lk), "%s/.lock", p);
    CHECK(stat(lk, &sb) == 0);
    CHECK_EQ(sb.st_mode & 0777, 0600);
    CHECK(stat(seg_name(lk, sizeof(lk), p, 0, ".log"), &sb) == 0);
    CHECK_EQ(sb.st_mode & 0777, 0600);
    CHECK_OK(klevdb_close(db));
  }
  o.create_dirs = 0;

  /* read-only open of a missing dir: an error too (nothing to lock into)
  ** or an empty store; it must not crash. */
  snprintf(p, sizeof(p), "%s/nothing-here", dir);
  {
    klevdb_options ro = opts_default();
    ro.readonly = 1;
    db = NULL;
    memset(&err, 0, sizeof(err));
    klevdb_err e = klevdb_open(p, &ro, &db, &err);
    if (e != KLEVDB_OK) CHECK_ERRMSG(err);
    else klevdb_close(db);
    db = NULL;
  }

  /* dir is a regular file */
  snprintf(p, sizeof(p), "%s/afile", dir);
  FILE *f = fopen(p, "w");
  if (f) fclose(f);
  memset(&err, 0, sizeof(err));
  CHECK(klevdb_open(p, &o, &db, &err) != KLEVDB_OK);
  CHECK_ERRMSG(err);
  CHECK(db == NULL);
  o.create_dirs = 1;
  memset(&err, 0, sizeof(err));
  CHECK(klevdb_open(p, &o, &db, &err) != KLEVDB_OK);
  CHECK_ERRMSG(err);
  o.readonly = 1;
  memset(&err, 0, sizeof(err));
  CHECK(klevdb_open(p, &o, &db, &err) != KLEVDB_OK);
  CHECK_ERRMSG(err);
  o = opts_default();

  /* bad version */
  {
    klevdb_options bo = opts_default();
    bo.new_segments_version = (klevdb_format)7;
    char d2[600];
    snprintf(d2, sizeof(d2), "%s/badver", dir);
    bo.create_dirs = 1;
    memset(&err, 0, sizeof(err));
    db = NULL;
    CHECK_ERR(klevdb_open(d2, &bo, &db, &err), KLEVDB_EINVAL);
    CHECK_ERRMSG(err);
    if (db) klevdb_close(db);
    db = NULL;
  }

  /* a *.log whose name is not a number: open fails (differences D16) */
  {
    char d2[600], lf[700];
    snprintf(d2, sizeof(d2), "%s/badname", dir);
    mkdir(d2, 0700);
    snprintf(lf, sizeof(lf), "%s/foo.log", d2);
    f = fopen(lf, "w");
    if (f) fclose(f);
    memset(&err, 0, sizeof(err));
    CHECK(klevdb_open(d2, &o, &db, &err) != KLEVDB_OK);
    CHECK_ERRMSG(err);
  }

  /* negative rollover: the default 1 MiB */
  {
    char d2[600];
    snprintf(d2, sizeof(d2), "%s/negroll", dir);
    klevdb_options no = opts_default();
    no.create_dirs = 1;
    no.rollover = -5;
    db = OPEN(d2, &no);
    if (db) {
      klevdb_options got;
      klevdb_get_options(db, &got);
      CHECK_EQ(got.rollover, 1048576);
      CHECK_EQ(got.new_segments_version, KLEVDB_V2);
      PUBLISH(db, 0, 5, 0);
      CHECK_STAT(db, 1, 5, 5 * gen_size(db) + 16);
      CHECK_OK(klevdb_close(db));
    }
    no.rollover = 0;
    db = OPEN(d2, &no);
    if (db) {
      klevdb_options got;
      klevdb_get_options(db, &got);
      CHECK_EQ(got.rollover, 1048576);
      CHECK_OK(klevdb_close(db));
    }
  }
  rm_rf(dir);
}

static void test_handle_args(void) {
  char dir[256];
  SECTION("handle arguments");
  tmp_dir(dir, sizeof(dir));
  klevdb_options o = opts_tk();
  klevdb *db = OPEN(dir, &o);
  if (!db) goto out;
  PUBLISH(db, 0, 3, 0);
  klevdb_batch b = KLEVDB_BATCH_INIT;
  int64_t off = 0, t = 0;
  tmsg m;
  gen(&m, 3);

  /* NULL out-pointers */
  CHECK_DB(db, klevdb_next_offset(db, NULL), KLEVDB_EINVAL);
  CHECK_DB(db, klevdb_consume(db, 0, 10, NULL), KLEVDB_EINVAL);
  CHECK_DB(db, klevdb_consume_by_key(db, m.key, 10, 0, 10, NULL), KLEVDB_EINVAL);
  CHECK_DB(db, klevdb_consume_blocking(db, 0, 10, 10, NULL), KLEVDB_EINVAL);
  CHECK_DB(db, klevdb_get(db, 0, NULL), KLEVDB_EINVAL);
  CHECK_DB(db, klevdb_get_by_key(db, m.key, 10, NULL), KLEVDB_EINVAL);
  {
    /* offset_out / time_out are not documented as optional; the store may
    ** treat them as optional (ignored) or reject them: it must not crash. */
    klevdb_err e = klevdb_offset_by_key(db, m.key, 10, NULL);
    CHECK(e == KLEVDB_EINVAL || e == KLEVDB_ENOTFOUND);
    e = klevdb_offset_by_time(db, TI(0), NULL, &t);
    CHECK(e == KLEVDB_EINVAL || e == KLEVDB_OK);
    e = klevdb_offset_by_time(db, TI(0), &off, NULL);
    CHECK(e == KLEVDB_EINVAL || (e == KLEVDB_OK && off == 0));
  }
  CHECK_DB(db, klevdb_get_by_time(db, TI(0), NULL), KLEVDB_EINVAL);
  CHECK_DB(db, klevdb_stat_get(db, NULL), KLEVDB_EINVAL);
  CHECK_DB(db, klevdb_bounds_get(db, NULL), KLEVDB_EINVAL);
  CHECK_DB(db, klevdb_backup(db, NULL), KLEVDB_EINVAL);
  {
    size_t n = 0;
    int64_t *offs = NULL;
    CHECK_DB(db, klevdb_find_offsets(db, KLEVDB_FIND_COUNT, 1, NULL, &n), KLEVDB_EINVAL);
    CHECK_DB(db, klevdb_find_offsets(db, KLEVDB_FIND_COUNT, 1, &offs, NULL), KLEVDB_EINVAL);
    free(offs);
  }
  /* optional out-pointers */
  CHECK_DBOK(db, klevdb_sync(db, NULL));
  CHECK_DBOK(db, klevdb_publish(db, &m.m, 1, NULL));
  CHECK_NEXT(db, 4);
  /* NULL messages / key / offsets with a nonzero count */
  CHECK_DB(db, klevdb_publish(db, NULL, 1, &off), KLEVDB_EINVAL);
  CHECK_DB(db, klevdb_consume_by_key(db, NULL, 5, 0, 10, &b), KLEVDB_EINVAL);
  CHECK_DB(db, klevdb_get_by_key(db, NULL, 5, &b), KLEVDB_EINVAL);
  CHECK_DB(db, klevdb_offset_by_key(db, NULL, 5, &off), KLEVDB_EINVAL);
  CHECK_DB(db, klevdb_delete(db, NULL, 2, NULL, NULL), KLEVDB_EINVAL);
  CHECK_DB(db, klevdb_delete_ranges(db, NULL, 2, NULL), KLEVDB_EINVAL);
  /* a message with NULL key/value pointers but lengths > 0 */
  {
    klevdb_msg bad = m.m;
    bad.key = NULL;
    CHECK_DB(db, klevdb_publish(db, &bad, 1, &off), KLEVDB_EINVAL);
    bad = m.m;
    bad.value = NULL;
    CHECK_DB(db, klevdb_publish(db, &bad, 1, &off), KLEVDB_EINVAL);
  }
  CHECK_NEXT(db, 4);
  /* NULL key with length 0 is the empty key: valid */
  CHECK_DB(db, klevdb_get_by_key(db, NULL, 0, &b), KLEVDB_ENOTFOUND);
  CHECK_DBOK(db, klevdb_consume_by_key(db, NULL, 0, KLEVDB_OFFSET_OLDEST, 10, &b));
  CHECK_EQ(b.len, 0);
  /* a message with no key and no value (pointers NULL, lengths 0) is fine */
  {
    klevdb_msg empty;
    memset(&empty, 0, sizeof(empty));
    empty.time = TI(9);
    CHECK_DBOK(db, klevdb_publish(db, &empty, 1, &off));
    CHECK_EQ(off, 5);
    CHECK_DBOK(db, klevdb_get(db, 4, &b));
    CHECK(b.len == 1 && b.msgs[0].key_len == 0 && b.msgs[0].value_len == 0 &&
          b.msgs[0].time == TI(9));
    CHECK_DBOK(db, klevdb_get_by_key(db, NULL, 0, &b));
    CHECK(b.len == 1 && b.msgs[0].offset == 4);
  }

  /* max_count 0 (differences D7) */
  CHECK_DB(db, klevdb_consume(db, 0, 0, &b), KLEVDB_EINVAL);
  CHECK_EQ(b.len, 0);
  CHECK_DB(db, klevdb_consume_blocking(db, 0, 0, 10, &b), KLEVDB_EINVAL);
  {
    klevdb_err e = klevdb_consume_by_key(db, m.key, 10, 0, 0, &b);
    /* Go treats <= 0 as 1; EINVAL is acceptable too */
    CHECK(e == KLEVDB_EINVAL || (e == KLEVDB_OK && b.len <= 1));
  }
  /* huge max_count: what exists, no huge allocation */
  CHECK_DBOK(db, klevdb_consume(db, 0, SIZE_MAX, &b));
  CHECK_EQ(b.len, 5);
  CHECK_EQ(b.next_offset, 5);
  CHECK_DBOK(db, klevdb_consume_by_key(db, m.key, 10, 0, SIZE_MAX, &b));
  CHECK_EQ(b.len, 1);

  /* negative delete offsets */
  {
    int64_t neg[2] = {-1, 2};
    klevdb_deleted d = {-1, -1};
    CHECK_DB(db, klevdb_delete(db, neg, 2, &d, NULL), KLEVDB_EINVALID_OFFSET);
    int64_t neg2 = KLEVDB_OFFSET_OLDEST;
    CHECK_DB(db, klevdb_delete(db, &neg2, 1, &d, NULL), KLEVDB_EINVALID_OFFSET);
    CHECK_NEXT(db, 5);
    CHECK_STAT(db, 1, 5, 4 * gen_size(db) + 16 + 36 + 32);
    /* empty set: nothing */
    d.count = -1;
    CHECK_DBOK(db, klevdb_delete(db, neg, 0, &d, NULL));
    CHECK_EQ(d.count, 0);
    CHECK_EQ(d.size, 0);
    /* offsets beyond the end: nothing */
    int64_t far = 1000;
    d.count = -1;
    CHECK_DBOK(db, klevdb_delete(db, &far, 1, &d, NULL));
    CHECK_EQ(d.count, 0);
    /* empty / inverted ranges delete nothing */
    klevdb_range r[2] = {{3, 3}, {4, 2}};
    klevdb_err e = klevdb_delete_ranges(db, r, 2, &d);
    CHECK(e == KLEVDB_OK || e == KLEVDB_EINVAL);
    if (e == KLEVDB_OK) CHECK_EQ(d.count, 0);
    CHECK_DBOK(db, klevdb_delete_ranges(db, r, 0, &d));
    CHECK_EQ(d.count, 0);
    CHECK_STAT(db, 1, 5, 4 * gen_size(db) + 16 + 36 + 32);
  }
  /* errmsg/errcode after a failure */
  CHECK_DB(db, klevdb_get(db, 100, &b), KLEVDB_EINVALID_OFFSET);
  CHECK_EQ(klevdb_errcode(db), KLEVDB_EINVALID_OFFSET);
  CHECK(strncmp(klevdb_errmsg(db), "klevdb: ", 8) == 0);
  /* an invalid retention selector */
  {
    size_t n = 0;
    int64_t *offs = NULL;
    CHECK_DB(db, klevdb_find_offsets(db, (klevdb_find)99, 1, &offs, &n), KLEVDB_EINVAL);
    free(offs);
  }
  klevdb_batch_free(&b);
  CHECK_OK(klevdb_close(db));
out:
  rm_rf(dir);
}

static void test_too_big(void) {
  char dir[256];
  SECTION("too big (D6)");
  tmp_dir(dir, sizeof(dir));
  klevdb_options o = opts_tk();
  klevdb *db = OPEN(dir, &o);
  if (!db) goto out;
  PUBLISH(db, 0, 2, 0);
  CHECK_DBOK(db, klevdb_sync(db, NULL));
  long long log0 = seg_size(dir, 0, ".log"), idx0 = seg_size(dir, 0, ".index");
  size_t big_len = KLEVDB_MAX_PAYLOAD - 10 + 1; /* key 10 + value = 64 MiB + 1 */
  uint8_t *big = calloc(1, KLEVDB_MAX_PAYLOAD);
  if (!big) goto out_close;
  tmsg t[4];
  for (int i = 0; i < 4; i++) gen(&t[i], 2 + i);
  klevdb_msg m[4] = {t[0].m, t[1].m, t[2].m, t[3].m};
  int64_t next = 12345;

  klevdb_msg one = t[0].m;
  one.value = big;
  one.value_len = big_len;
  CHECK_DB(db, klevdb_publish(db, &one, 1, &next), KLEVDB_ETOOBIG);
  CHECK_NEXT(db, 2);
  CHECK_DBOK(db, klevdb_sync(db, NULL));
  CHECK_EQ(seg_size(dir, 0, ".log"), log0);
  CHECK_EQ(seg_size(dir, 0, ".index"), idx0);
  /* key alone too big */
  one = t[0].m;
  one.key = big;
  one.key_len = KLEVDB_MAX_PAYLOAD;
  one.value_len = 128;
  CHECK_DB(db, klevdb_publish(db, &one, 1, &next), KLEVDB_ETOOBIG);
  CHECK_NEXT(db, 2);

  /* the 3rd message of a batch is too big: nothing of the batch is written */
  m[2].value = big;
  m[2].value_len = big_len;
  CHECK_DB(db, klevdb_publish(db, m, 4, &next), KLEVDB_ETOOBIG);
  CHECK_NEXT(db, 2);
  CHECK_DBOK(db, klevdb_sync(db, NULL));
  CHECK_EQ(seg_size(dir, 0, ".log"), log0);
  CHECK_EQ(seg_size(dir, 0, ".index"), idx0);
  CHECK_STAT(db, 1, 2, 2 * gen_size(db) + 16);
  {
    int64_t offs[8];
    CHECK_EQ(CONSUME_ALL(db, 10, offs, 8), 2);
  }
  /* the next publish gets the next offset, no duplicate */
  m[2] = t[2].m;
  PUBLISH_BATCH(db, 2, 4, 6);
  {
    int64_t offs[8];
    CHECK_EQ(CONSUME_ALL(db, 10, offs, 8), 6);
    for (int i = 0; i < 6; i++) CHECK_EQ(offs[i], i);
    for (int i = 0; i < 6; i++) GET_EXPECT(db, i, i, i);
  }

  /* exactly 64 MiB of key + value is allowed */
  one = t[0].m;
  one.value = big;
  one.value_len = KLEVDB_MAX_PAYLOAD - 10;
  CHECK_DBOK(db, klevdb_publish(db, &one, 1, &next));
  CHECK_EQ(next, 7);
  {
    klevdb_batch b = KLEVDB_BATCH_INIT;
    CHECK_DBOK(db, klevdb_get(db, 6, &b));
    CHECK(b.len == 1 && b.msgs[0].value_len == (size_t)KLEVDB_MAX_PAYLOAD - 10 &&
          b.msgs[0].key_len == 10);
    klevdb_batch_free(&b);
  }
  CHECK_EQ(klevdb_size(db, &one), 36 + KLEVDB_MAX_PAYLOAD + 32);
  free(big);
out_close:
  CHECK_OK(klevdb_close(db));
  db = OPEN(dir, &o);
  if (db) {
    CHECK_NEXT(db, 7);
    CHECK_OK(klevdb_close(db));
  }
out:
  rm_rf(dir);
}

static void test_readonly_writes(void) {
  char dir[256], bdir[300] = "";
  SECTION("read-only writes");
  tmp_dir(dir, sizeof(dir));
  klevdb_options o = opts_tk();
  klevdb *db = OPEN(dir, &o);
  if (!db) goto out;
  PUBLISH(db, 0, 3, 0);
  PUBLISH(db, 0, 1, 3); /* key of message 0 again: compact_updates finds 0 */
  CHECK_OK(klevdb_close(db));
  o.readonly = 1;
  db = OPEN(dir, &o);
  if (!db) goto out;
  tmsg t;
  gen(&t, 3);
  int64_t next = 0, off = 0;
  klevdb_deleted d;
  klevdb_range r = {0, 2};
  CHECK_DB(db, klevdb_publish(db, &t.m, 1, &next), KLEVDB_EREADONLY);
  CHECK_DB(db, klevdb_publish(db, &t.m, 0, &next), KLEVDB_EREADONLY);
  CHECK_DB(db, klevdb_delete(db, &off, 1, &d, NULL), KLEVDB_EREADONLY);
  CHECK_DB(db, klevdb_delete_ranges(db, &r, 1, &d), KLEVDB_EREADONLY);
  CHECK_DB(db, klevdb_trim_by_count(db, 1, &d), KLEVDB_EREADONLY);
  CHECK_DB(db, klevdb_trim_by_offset(db, 2, &d), KLEVDB_EREADONLY);
  CHECK_DB(db, klevdb_compact_updates(db, TI(10), &d), KLEVDB_EREADONLY);
  CHECK_NEXT(db, 4);
  CONSUME_EXPECT(db, KLEVDB_OFFSET_OLDEST, 3, 0, 0, 3, 3);
  snprintf(bdir, sizeof(bdir), "%s-bk", dir);   /* beside it: never inside */
  CHECK_DBOK(db, klevdb_backup(db, bdir));
  CHECK_OK(klevdb_close(db));
  {
    klevdb_options ro = opts_tk();
    ro.readonly = 1;
    klevdb_options got;
    db = OPEN(dir, &ro);
    if (db) {
      klevdb_get_options(db, &got);
      CHECK_EQ(got.readonly, 1);
      CHECK_OK(klevdb_close(db));
    }
  }
  CHECK_EQ(seg_size(dir, 0, ".log"), 8 + 4 * SV2);
out:
  rm_rf(dir);
  rm_rf(bdir);
}

static void test_index_mismatch(void) {
  char dir[256];
  SECTION("key_index mismatch");
  tmp_dir(dir, sizeof(dir));
  klevdb_options o = opts_tk();
  klevdb *db = OPEN(dir, &o);
  if (!db) goto out;
  PUBLISH(db, 0, 2, 0);
  CHECK_OK(klevdb_close(db));
  klevdb_error err;
  klevdb_options m = opts_tk();
  m.key_index = 0;
  db = NULL;
  memset(&err, 0, sizeof(err));
  CHECK_ERR(klevdb_open(dir, &m, &db, &err), KLEVDB_ECORRUPT_INDEX);
  CHECK_ERRMSG(err);
  if (db) klevdb_close(db);
  m = opts_tk();
  m.time_index = 0;
  db = NULL;
  memset(&err, 0, sizeof(err));
  CHECK_ERR(klevdb_open(dir, &m, &db, &err), KLEVDB_ECORRUPT_INDEX);
  CHECK_ERRMSG(err);
  if (db) klevdb_close(db);
  /* dir stat with mismatched params fails too (differences D31) */
  {
    klevdb_stat st;
    m = opts_default();
    memset(&err, 0, sizeof(err));
    CHECK_ERR(klevdb_dir_stat(dir, &m, &st, &err), KLEVDB_ECORRUPT_INDEX);
    CHECK_ERRMSG(err);
    m = opts_tk();
    CHECK_OK(klevdb_dir_stat(dir, &m, &st, &err));
    CHECK_EQ(st.messages, 2);
    CHECK_ERR(klevdb_dir_stat(dir, &m, NULL, &err), KLEVDB_EINVAL);
    CHECK_ERR(klevdb_dir_stat(NULL, &m, &st, &err), KLEVDB_EINVAL);
  }
  /* the right params still open it */
  db = OPEN(dir, &o);
  if (db) {
    CONSUME_EXPECT(db, KLEVDB_OFFSET_OLDEST, 10, 0, 0, 2, 2);
    CHECK_OK(klevdb_close(db));
  }
  rm_rf(dir);

  SECTION("key_index mismatch, empty head");
  tmp_dir(dir, sizeof(dir));
  db = OPEN(dir, &o);
  if (!db) goto out;
  CHECK_OK(klevdb_close(db));
  m = opts_tk();
  m.key_index = 0;
  db = NULL;
  memset(&err, 0, sizeof(err));
  CHECK_ERR(klevdb_open(dir, &m, &db, &err), KLEVDB_ECORRUPT_INDEX);
  CHECK_ERRMSG(err);
  if (db) klevdb_close(db);
out:
  rm_rf(dir);
}

static void test_dir_helpers(void) {
  char dir[256];
  SECTION("directory helpers");
  tmp_dir(dir, sizeof(dir));
  klevdb_options o = opts_tk();
  klevdb_error err;
  memset(&err, 0, sizeof(err));
  CHECK_ERR(klevdb_dir_check(NULL, &o, &err), KLEVDB_EINVAL);
  CHECK_ERRMSG(err);
  CHECK_ERR(klevdb_dir_recover(NULL, &o, &err), KLEVDB_EINVAL);
  CHECK_ERR(klevdb_dir_backup(NULL, dir, &err), KLEVDB_EINVAL);
  CHECK_ERR(klevdb_dir_backup(dir, NULL, &err), KLEVDB_EINVAL);
  CHECK_ERR(klevdb_dir_migrate(NULL, &o, KLEVDB_V2, &err), KLEVDB_EINVAL);
  CHECK_ERR(klevdb_dir_check(NULL, &o, NULL), KLEVDB_EINVAL);
  /* migrate needs an explicit version */
  memset(&err, 0, sizeof(err));
  CHECK_ERR(klevdb_dir_migrate(dir, &o, KLEVDB_VERSION_DEFAULT, &err), KLEVDB_EINVAL);
  CHECK_ERRMSG(err);
  /* missing directory: success / empty */
  {
    char p[400];
    klevdb_stat st = {-1, -1, -1};
    snprintf(p, sizeof(p), "%s/none", dir);
    CHECK_OK(klevdb_dir_stat(p, &o, &st, &err));
    CHECK(st.segments == 0 && st.messages == 0 && st.size == 0);
    CHECK_OK(klevdb_dir_check(p, &o, &err));
    CHECK_OK(klevdb_dir_recover(p, &o, &err));
  }
  rm_rf(dir);
}

int main(void) {
  chk_name = "test_badinput";
  SECTION("NULL handle");
  run_in_child(null_handle_calls, "calls with a NULL handle");
  /* errnames */
  CHECK_STR(klevdb_errname(KLEVDB_ENOTFOUND), "not_found");
  CHECK_STR(klevdb_errname(KLEVDB_EINVALID_OFFSET), "invalid_offset");
  CHECK(klevdb_errname((klevdb_err)999) != NULL);
  test_open_args();
  test_handle_args();
  test_too_big();
  test_readonly_writes();
  test_index_mismatch();
  test_dir_helpers();
  return check_done();
}
