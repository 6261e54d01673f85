/*
** test_basic.c - the cases of Go's TestBasic, TestGet, TestByKey and
** TestByTime: publish/consume with rollover and GC, Get, keys and time.
*/
#include "check.h"

static void test_basic_consume(void) {
  char dir[256];
  tmp_dir(dir, sizeof(dir));
  SECTION("basic 1-8");
  klevdb_options o = opts_default();
  klevdb *db = OPEN(dir, &o);
  if (!db) goto out;
  int64_t Size = gen_size(db);
  CHECK_EQ(Size, SV2 + 16);

  /* 1 */
  CHECK_NEXT(db, 0);
  CHECK_STAT(db, 1, 0, 16);
  CHECK(seg_exists(dir, 0, ".log"));
  CHECK_EQ(seg_size(dir, 0, ".log"), 8);
  CHECK_EQ(seg_size(dir, 0, ".index"), 8);
  /* 2 */
  CONSUME_EXPECT(db, KLEVDB_OFFSET_OLDEST, 10, 0, 0, 0, 0);
  CONSUME_EXPECT(db, KLEVDB_OFFSET_NEWEST, 10, 0, 0, 0, 0);
  /* 3 */
  CONSUME_EXPECT(db, 0, 10, 0, 0, 0, 0);
  CONSUME_FAIL(db, 1, KLEVDB_EINVALID_OFFSET);
  /* 4 */
  {
    tmsg t;
    gen(&t, 0);
    int64_t next = -99;
    CHECK_DBOK(db, klevdb_publish(db, &t.m, 0, &next));
    CHECK_EQ(next, 0);
    CHECK_NEXT(db, 0);
    CHECK_STAT(db, 1, 0, 16);
  }
  /* 5 */
  for (int i = 0; i < 3; i++) {
    PUBLISH(db, i, 1, i);
    CHECK_NEXT(db, i + 1);
  }
  /* 6 */
  CHECK_STAT(db, 1, 3, 3 * Size + 16);
  /* 7 */
  CONSUME_EXPECT(db, KLEVDB_OFFSET_OLDEST, 10, 0, 0, 3, 3);
  CONSUME_EXPECT(db, KLEVDB_OFFSET_NEWEST, 10, 0, 0, 0, 3);
  /* 8 */
  CONSUME_EXPECT(db, 0, 10, 0, 0, 3, 3);
  CONSUME_EXPECT(db, 1, 10, 1, 1, 2, 3);
  CONSUME_EXPECT(db, 2, 10, 2, 2, 1, 3);
  CONSUME_EXPECT(db, 3, 10, 0, 0, 0, 3);
  CONSUME_FAIL(db, 4, KLEVDB_EINVALID_OFFSET);
  CONSUME_EXPECT(db, 0, 2, 0, 0, 2, 2);
  /* negative offsets other than -1 start at the oldest (differences D20) */
  CONSUME_EXPECT(db, -3, 10, 0, 0, 3, 3);
  CONSUME_EXPECT(db, -100, 10, 0, 0, 3, 3);
  /* An open head has space allocated ahead of its records; sync cuts it,
  ** leaving the file Go would have written. */
  CHECK(seg_size(dir, 0, ".log") >= 8 + 3 * SV2);
  CHECK_OK(klevdb_sync(db, NULL));
  CHECK_EQ(seg_size(dir, 0, ".log"), 8 + 3 * SV2);
  CHECK_OK(klevdb_close(db));
out:
  rm_rf(dir);
}

static void test_rollover_gc(void) {
  char dir[256];
  tmp_dir(dir, sizeof(dir));
  SECTION("rollover 9-12");
  klevdb_options o = opts_default();
  o.rollover = 3 * SV2;
  klevdb *db = OPEN(dir, &o);
  if (!db) goto out;
  int64_t Size = gen_size(db);
  /* 9 */
  PUBLISH(db, 0, 3, 0);
  CHECK_STAT(db, 1, 3, 3 * Size + 16);
  CHECK(!seg_exists(dir, 3, ".log"));
  PUBLISH_BATCH(db, 3, 3, 6);
  CHECK_NEXT(db, 6);
  CHECK_STAT(db, 2, 6, 6 * Size + 32);
  CHECK(seg_exists(dir, 3, ".log"));
  CHECK(seg_exists(dir, 3, ".index"));
  CHECK_EQ(seg_size(dir, 0, ".log"), 8 + 3 * SV2);   /* sealed: cut at rollover */
  CHECK_OK(klevdb_sync(db, NULL));
  CHECK_EQ(seg_size(dir, 3, ".log"), 8 + 3 * SV2);
  CHECK_EQ(count_ext(dir, ".log"), 2);
  /* 10 */
  CONSUME_EXPECT(db, KLEVDB_OFFSET_OLDEST, 10, 0, 0, 3, 3);
  /* 11 */
  CONSUME_EXPECT(db, 0, 3, 0, 0, 3, 3);
  CONSUME_EXPECT(db, 3, 3, 3, 3, 3, 6);
  CONSUME_EXPECT(db, 4, 10, 4, 4, 2, 6);
  CONSUME_EXPECT(db, 6, 10, 0, 0, 0, 6);
  CONSUME_FAIL(db, 7, KLEVDB_EINVALID_OFFSET);
  CONSUME_EXPECT(db, KLEVDB_OFFSET_NEWEST, 10, 0, 0, 0, 6);
  /* 12 */
  CHECK_DBOK(db, klevdb_gc(db, 0));
  CONSUME_EXPECT(db, 0, 3, 0, 0, 3, 3);
  CONSUME_EXPECT(db, 3, 3, 3, 3, 3, 6);
  GET_EXPECT(db, 1, 1, 1);
  CHECK_DBOK(db, klevdb_gc(db, 0));
  GET_EXPECT(db, 2, 2, 2);
  /* a batch stays valid across a GC of its segment */
  {
    klevdb_batch b = KLEVDB_BATCH_INIT;
    CHECK_DBOK(db, klevdb_consume(db, 0, 3, &b));
    CHECK_DBOK(db, klevdb_gc(db, 0));
    CHECK_BATCH(&b, 0, 0, 3);
    klevdb_batch_free(&b);
  }
  /* bounds */
  {
    klevdb_bounds bd;
    CHECK_DBOK(db, klevdb_bounds_get(db, &bd));
    CHECK_EQ(bd.oldest_offset, 0);
    CHECK_EQ(bd.newest_offset, 5);
    CHECK_EQ(bd.next_offset, 6);
    CHECK_EQ(bd.oldest_time, TI(0));
    CHECK_EQ(bd.newest_time, TI(5));
  }
  CHECK_OK(klevdb_close(db));

  /* more rollovers: every third publish rolls (V2, rollover 2S) */
  SECTION("rollover 2S");
  rm_rf(dir);
  tmp_dir(dir, sizeof(dir));
  o.rollover = 2 * SV2;
  db = OPEN(dir, &o);
  if (!db) goto out;
  PUBLISH(db, 0, 7, 0);
  CHECK_STAT(db, 4, 7, 7 * Size + 4 * 16);
  CHECK(seg_exists(dir, 2, ".log"));
  CHECK(seg_exists(dir, 4, ".log"));
  CHECK(seg_exists(dir, 6, ".log"));
  {
    int64_t offs[16];
    CHECK_EQ(CONSUME_ALL(db, 10, offs, 16), 7);
    for (int i = 0; i < 7; i++) CHECK_EQ(offs[i], i);
  }
  CONSUME_EXPECT(db, 1, 10, 1, 1, 1, 2);
  CONSUME_EXPECT(db, 2, 10, 2, 2, 2, 4);
  CHECK_OK(klevdb_close(db));
out:
  rm_rf(dir);
}

static void test_get(void) {
  char dir[256];
  tmp_dir(dir, sizeof(dir));
  SECTION("get 13-17");
  klevdb_options o = opts_default();
  o.rollover = 2 * SV2;
  klevdb *db = OPEN(dir, &o);
  if (!db) goto out;
  /* 13 */
  GET_FAIL(db, KLEVDB_OFFSET_OLDEST, KLEVDB_EINVALID_OFFSET);
  GET_FAIL(db, KLEVDB_OFFSET_NEWEST, KLEVDB_EINVALID_OFFSET);
  GET_FAIL(db, 0, KLEVDB_EINVALID_OFFSET);
  GET_FAIL(db, 3, KLEVDB_EINVALID_OFFSET);
  /* 14 */
  PUBLISH(db, 0, 4, 0);
  CHECK_STAT(db, 2, 4, 4 * gen_size(db) + 32);
  for (int i = 0; i < 4; i++) GET_EXPECT(db, i, i, i);
  /* 15 */
  GET_FAIL(db, -3, KLEVDB_EINVALID_OFFSET);
  GET_FAIL(db, -10, KLEVDB_EINVALID_OFFSET);
  /* 16 */
  GET_EXPECT(db, KLEVDB_OFFSET_OLDEST, 0, 0);
  GET_EXPECT(db, KLEVDB_OFFSET_NEWEST, 3, 3);
  /* 17 */
  GET_FAIL(db, 4, KLEVDB_EINVALID_OFFSET);
  GET_FAIL(db, 100, KLEVDB_EINVALID_OFFSET);
  /* the batch is reused across calls */
  {
    klevdb_batch b = KLEVDB_BATCH_INIT;
    for (int i = 0; i < 4; i++) {
      CHECK_DBOK(db, klevdb_get(db, i, &b));
      CHECK_EQ(b.len, 1);
      if (b.len) CHECK_MSG(&b.msgs[0], i, i);
    }
    CHECK_DBOK(db, klevdb_consume(db, 0, 10, &b));
    CHECK_BATCH(&b, 0, 0, 2);
    klevdb_batch_free(&b);
  }
  CHECK_OK(klevdb_close(db));
out:
  rm_rf(dir);
}

static void key_of(int i, char k[16]) { snprintf(k, 16, "%10d", i); }

static void get_by_key_expect(klevdb *db, int i, int64_t off, int gi, int line) {
  char k[16];
  key_of(i, k);
  klevdb_batch b = KLEVDB_BATCH_INIT;
  klevdb_err e = klevdb_get_by_key(db, k, 10, &b);
  chk_report(e == KLEVDB_OK, __FILE__, line, "get_by_key(%d): %s (%s)", i,
             klevdb_errname(e), e ? klevdb_errmsg(db) : "");
  if (e == KLEVDB_OK && b.len == 1) chk_msg(&b.msgs[0], off, gi, __FILE__, line);
  else if (e == KLEVDB_OK) chk_report(0, __FILE__, line, "get_by_key: len %zu", b.len);
  int64_t o = -99;
  e = klevdb_offset_by_key(db, k, 10, &o);
  chk_report(e == KLEVDB_OK && o == off, __FILE__, line,
             "offset_by_key(%d): %s, %lld (expected %lld)", i, klevdb_errname(e),
             (long long)o, (long long)off);
  klevdb_batch_free(&b);
}

static void consume_by_key_expect(klevdb *db, int i, int64_t from, int64_t off,
                                  int gi, size_t n, int64_t next, int line) {
  char k[16];
  key_of(i, k);
  klevdb_batch b = KLEVDB_BATCH_INIT;
  klevdb_err e = klevdb_consume_by_key(db, k, 10, from, 10, &b);
  chk_report(e == KLEVDB_OK, __FILE__, line, "consume_by_key(%d, %lld): %s (%s)", i,
             (long long)from, klevdb_errname(e), e ? klevdb_errmsg(db) : "");
  chk_report(b.len == n, __FILE__, line, "consume_by_key(%d, %lld): len %zu, expected %zu",
             i, (long long)from, b.len, n);
  if (b.len == 1 && n == 1) chk_msg(&b.msgs[0], off, gi, __FILE__, line);
  chk_report(b.next_offset == next, __FILE__, line,
             "consume_by_key(%d, %lld): next %lld, expected %lld", i,
             (long long)from, (long long)b.next_offset, (long long)next);
  klevdb_batch_free(&b);
}

static void test_keys(void) {
  char dir[256];
  tmp_dir(dir, sizeof(dir));
  SECTION("keys 18");
  klevdb_options o = opts_default();
  o.rollover = 2 * SV2;
  char k0[16];
  key_of(0, k0);
  klevdb *db = OPEN(dir, &o);
  if (!db) goto out;
  PUBLISH(db, 0, 1, 0);
  {
    klevdb_batch b = KLEVDB_BATCH_INIT;
    int64_t off = 0;
    CHECK_DB(db, klevdb_get_by_key(db, k0, 10, &b), KLEVDB_ENOINDEX);
    CHECK_DB(db, klevdb_offset_by_key(db, k0, 10, &off), KLEVDB_ENOINDEX);
    CHECK_EQ(off, KLEVDB_OFFSET_INVALID);
    CHECK_DB(db, klevdb_consume_by_key(db, k0, 10, KLEVDB_OFFSET_OLDEST, 10, &b),
             KLEVDB_ENOINDEX);
    CHECK_EQ(b.len, 0);
    CHECK_EQ(b.next_offset, KLEVDB_OFFSET_INVALID);
    klevdb_batch_free(&b);
  }
  CHECK_OK(klevdb_close(db));
  rm_rf(dir);
  tmp_dir(dir, sizeof(dir));

  SECTION("keys 19");
  o.key_index = 1;
  db = OPEN(dir, &o);
  if (!db) goto out;
  {
    klevdb_batch b = KLEVDB_BATCH_INIT;
    int64_t off = 0;
    CHECK_DB(db, klevdb_get_by_key(db, k0, 10, &b), KLEVDB_ENOTFOUND);
    CHECK_DB(db, klevdb_offset_by_key(db, k0, 10, &off), KLEVDB_ENOTFOUND);
    CHECK_EQ(off, KLEVDB_OFFSET_INVALID);
    klevdb_batch_free(&b);
  }
  consume_by_key_expect(db, 0, KLEVDB_OFFSET_OLDEST, 0, 0, 0, 0, __LINE__);

  SECTION("keys 20");
  PUBLISH(db, 0, 4, 0);
  CHECK_STAT(db, 2, 4, 4 * gen_size(db) + 32);
  for (int i = 0; i < 4; i++) {
    get_by_key_expect(db, i, i, i, __LINE__);
    consume_by_key_expect(db, i, KLEVDB_OFFSET_OLDEST, i, i, 1, i + 1, __LINE__);
    consume_by_key_expect(db, i, i + 1, 0, 0, 0, 4, __LINE__);
    consume_by_key_expect(db, i, i, i, i, 1, i + 1, __LINE__);
  }
  SECTION("keys 21");
  consume_by_key_expect(db, 0, 1, 0, 0, 0, 4, __LINE__);
  SECTION("keys 22");
  {
    const char *unk = "  unknown!";
    klevdb_batch b = KLEVDB_BATCH_INIT;
    CHECK_DB(db, klevdb_get_by_key(db, unk, 10, &b), KLEVDB_ENOTFOUND);
    CHECK_DBOK(db, klevdb_consume_by_key(db, unk, 10, KLEVDB_OFFSET_OLDEST, 10, &b));
    CHECK_EQ(b.len, 0);
    CHECK_EQ(b.next_offset, 4);
    /* empty key: a valid key, not present */
    CHECK_DB(db, klevdb_get_by_key(db, "", 0, &b), KLEVDB_ENOTFOUND);
    klevdb_batch_free(&b);
  }
  SECTION("keys 23");
  for (int i = 0; i < 4; i++) PUBLISH(db, i, 1, 4 + i); /* same keys, offsets 4-7 */
  for (int i = 0; i < 4; i++) {
    get_by_key_expect(db, i, 4 + i, i, __LINE__);
    consume_by_key_expect(db, i, KLEVDB_OFFSET_OLDEST, i, i, 1, i + 1, __LINE__);
    consume_by_key_expect(db, i, i + 1, 4 + i, i, 1, 4 + i + 1, __LINE__);
  }
  /* ConsumeByKey with a larger max returns both versions when in one segment */
  {
    klevdb_batch b = KLEVDB_BATCH_INIT;
    CHECK_DBOK(db, klevdb_consume_by_key(db, k0, 10, 8, 10, &b));
    CHECK_EQ(b.len, 0);
    CHECK_EQ(b.next_offset, 8);
    /* differences D21: beyond NextOffset -> (NextOffset, none) without error */
    CHECK_DBOK(db, klevdb_consume_by_key(db, k0, 10, 100, 10, &b));
    CHECK_EQ(b.len, 0);
    CHECK_EQ(b.next_offset, 8);
    klevdb_batch_free(&b);
  }
  /* keys survive a GC and a reopen */
  CHECK_DBOK(db, klevdb_gc(db, 0));
  for (int i = 0; i < 4; i++) get_by_key_expect(db, i, 4 + i, i, __LINE__);
  CHECK_OK(klevdb_close(db));
  db = OPEN(dir, &o);
  if (!db) goto out;
  for (int i = 0; i < 4; i++) get_by_key_expect(db, i, 4 + i, i, __LINE__);
  CHECK_OK(klevdb_close(db));
out:
  rm_rf(dir);
}

static void time_expect(klevdb *db, int64_t ts, int64_t off, int gi, int line) {
  klevdb_batch b = KLEVDB_BATCH_INIT;
  klevdb_err e = klevdb_get_by_time(db, ts, &b);
  chk_report(e == KLEVDB_OK, __FILE__, line, "get_by_time(%lld): %s (%s)",
             (long long)ts, klevdb_errname(e), e ? klevdb_errmsg(db) : "");
  if (e == KLEVDB_OK && b.len == 1) chk_msg(&b.msgs[0], off, gi, __FILE__, line);
  else if (e == KLEVDB_OK) chk_report(0, __FILE__, line, "get_by_time: len %zu", b.len);
  int64_t o = -99, t = -99;
  e = klevdb_offset_by_time(db, ts, &o, &t);
  chk_report(e == KLEVDB_OK && o == off && t == TI(gi), __FILE__, line,
             "offset_by_time(%lld): %s, (%lld, %lld), expected (%lld, %lld)",
             (long long)ts, klevdb_errname(e), (long long)o, (long long)t,
             (long long)off, (long long)TI(gi));
  klevdb_batch_free(&b);
}

static void time_fail(klevdb *db, int64_t ts, klevdb_err code, int line) {
  klevdb_batch b = KLEVDB_BATCH_INIT;
  klevdb_err e = klevdb_get_by_time(db, ts, &b);
  chk_report(e == code, __FILE__, line, "get_by_time(%lld): got %s, expected %s",
             (long long)ts, klevdb_errname(e), klevdb_errname(code));
  int64_t o = -99, t = -99;
  e = klevdb_offset_by_time(db, ts, &o, &t);
  chk_report(e == code, __FILE__, line, "offset_by_time(%lld): got %s, expected %s",
             (long long)ts, klevdb_errname(e), klevdb_errname(code));
  chk_report(o == KLEVDB_OFFSET_INVALID, __FILE__, line,
             "offset_by_time(%lld) failed: offset %lld, expected -3", (long long)ts,
             (long long)o);
  if (e != KLEVDB_OK) {
    const char *m = klevdb_errmsg(db);
    chk_report(m && strncmp(m, "klevdb: ", 8) == 0, __FILE__, line,
               "errmsg \"%s\"", m ? m : "(null)");
  }
  klevdb_batch_free(&b);
}

static void test_time(void) {
  char dir[256];
  tmp_dir(dir, sizeof(dir));
  const int64_t HOUR = INT64_C(3600000000);
  SECTION("time 24");
  klevdb_options o = opts_default();
  o.rollover = 2 * SV2;
  klevdb *db = OPEN(dir, &o);
  if (!db) goto out;
  PUBLISH(db, 0, 2, 0);
  time_fail(db, TI(0), KLEVDB_ENOINDEX, __LINE__);
  CHECK_OK(klevdb_close(db));
  rm_rf(dir);
  tmp_dir(dir, sizeof(dir));

  SECTION("time 25");
  o.time_index = 1;
  db = OPEN(dir, &o);
  if (!db) goto out;
  time_fail(db, TI(0), KLEVDB_EINVALID_OFFSET, __LINE__);
  SECTION("time 26-29");
  PUBLISH(db, 0, 4, 0);
  CHECK_STAT(db, 2, 4, 4 * gen_size(db) + 32);
  CHECK_EQ(gen_size(db), SV2 + 24);
  for (int i = 0; i < 4; i++) time_expect(db, TI(i), i, i, __LINE__);
  time_expect(db, TI(0) - HOUR, 0, 0, __LINE__);
  time_fail(db, TI(3) + HOUR, KLEVDB_ENOTFOUND, __LINE__);
  time_expect(db, TI(2) - 1, 2, 2, __LINE__);
  time_expect(db, TI(1) - 1, 1, 1, __LINE__);
  time_expect(db, TI(3) - 1, 3, 3, __LINE__);
  time_expect(db, TI(1) + 1, 2, 2, __LINE__); /* between segments */
  CHECK_DBOK(db, klevdb_gc(db, 0));
  time_expect(db, TI(1), 1, 1, __LINE__);
  CHECK_OK(klevdb_close(db));
  rm_rf(dir);
  tmp_dir(dir, sizeof(dir));

  SECTION("time 30");
  o.rollover = 0;
  db = OPEN(dir, &o);
  if (!db) goto out;
  {
    static const int secs[5] = {0, 3, 2, 1, 4};
    for (int i = 0; i < 5; i++) {
      tmsg t;
      gen(&t, i);
      t.m.time = TI(secs[i]);
      int64_t next = -1;
      CHECK_DBOK(db, klevdb_publish(db, &t.m, 1, &next));
      CHECK_EQ(next, i + 1);
    }
    for (int s = 1; s <= 3; s++) {
      int64_t off = -99, t = -99;
      CHECK_DBOK(db, klevdb_offset_by_time(db, TI(s), &off, &t));
      CHECK_EQ(off, 1);
      CHECK_EQ(t, TI(3));
      klevdb_batch b = KLEVDB_BATCH_INIT;
      CHECK_DBOK(db, klevdb_get_by_time(db, TI(s), &b));
      CHECK(b.len == 1 && b.msgs[0].offset == 1);
      klevdb_batch_free(&b);
    }
    int64_t off = -99, t = -99;
    CHECK_DBOK(db, klevdb_offset_by_time(db, TI(0), &off, &t));
    CHECK_EQ(off, 0);
    CHECK_DBOK(db, klevdb_offset_by_time(db, TI(4), &off, &t));
    CHECK_EQ(off, 4);
    CHECK_EQ(t, TI(4));
  }
  CHECK_OK(klevdb_close(db));
out:
  rm_rf(dir);
}

int main(void) {
  chk_name = "test_basic";
  test_basic_consume();
  test_rollover_gc();
  test_get();
  test_keys();
  test_time();
  return check_done();
}
