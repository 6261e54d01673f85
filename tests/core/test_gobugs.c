/*
** test_gobugs.c - the Go klevdb bugs that libklevdb fixes (docs/differences.md):
** D1 torn tail at writer open, D2 time lookups with an empty head, D3
** Get(OffsetNewest) with an empty head, D4 head index behind the log,
** D6 all-or-nothing batches, D7 max_count, D10 tiny rollover.
*/
#include "check.h"

static void time_expect(klevdb *db, int64_t ts, int64_t off, int gi, int line) {
  klevdb_batch b = KLEVDB_BATCH_INIT;
  klevdb_err e = klevdb_get_by_time(db, ts, &b);
  chk_report(e == KLEVDB_OK && b.len == 1, __FILE__, line, "get_by_time(%lld): %s (%s)",
             (long long)ts, klevdb_errname(e), e ? klevdb_errmsg(db) : "");
  if (e == KLEVDB_OK && b.len == 1) chk_msg(&b.msgs[0], off, gi, __FILE__, line);
  int64_t o = -99, t = -99;
  e = klevdb_offset_by_time(db, ts, &o, &t);
  chk_report(e == KLEVDB_OK && o == off && t == TI(gi), __FILE__, line,
             "offset_by_time(%lld): %s (%lld, %lld), expected (%lld, %lld)",
             (long long)ts, klevdb_errname(e), (long long)o, (long long)t,
             (long long)off, (long long)TI(gi));
  klevdb_batch_free(&b);
}

static void test_b2_b3(int64_t rollover) {
  char dir[256];
  const int64_t HOUR = INT64_C(3600000000);
  SECTION(rollover ? "D2/D3 (2 segments)" : "D2/D3 (1 segment)");
  tmp_dir(dir, sizeof(dir));
  klevdb_options o = opts_tk();
  o.rollover = rollover;
  klevdb *db = OPEN(dir, &o);
  if (!db) goto out;
  PUBLISH(db, 0, 4, 0);
  {
    int64_t off = 3;
    klevdb_deleted d = {0, 0};
    CHECK_DBOK(db, klevdb_delete(db, &off, 1, &d, NULL));
    CHECK_EQ(d.count, 1);
  }
  /* the head is now empty, at offset 4 */
  CHECK(seg_exists(dir, 4, ".log"));
  CHECK_EQ(seg_size(dir, 4, ".log"), 8);
  CHECK_NEXT(db, 4);
  /* D2 */
  for (int i = 0; i < 3; i++) time_expect(db, TI(i), i, i, __LINE__);
  time_expect(db, TI(0) - HOUR, 0, 0, __LINE__);
  time_expect(db, TI(1) + 1, 2, 2, __LINE__);
  {
    klevdb_batch b = KLEVDB_BATCH_INIT;
    CHECK_DB(db, klevdb_get_by_time(db, TI(2) + 1, &b), KLEVDB_ENOTFOUND);
    CHECK_DB(db, klevdb_get_by_time(db, TI(3), &b), KLEVDB_ENOTFOUND);
    klevdb_batch_free(&b);
  }
  /* D3 */
  GET_EXPECT(db, KLEVDB_OFFSET_NEWEST, 2, 2);
  GET_EXPECT(db, KLEVDB_OFFSET_OLDEST, 0, 0);
  GET_FAIL(db, 3, KLEVDB_ENOTFOUND);
  GET_FAIL(db, 4, KLEVDB_EINVALID_OFFSET);
  CONSUME_EXPECT(db, KLEVDB_OFFSET_NEWEST, 10, 0, 0, 0, 4);
  {
    klevdb_bounds bd;
    CHECK_DBOK(db, klevdb_bounds_get(db, &bd));
    CHECK_EQ(bd.oldest_offset, 0);
    CHECK_EQ(bd.newest_offset, 2);
    CHECK_EQ(bd.newest_time, TI(2));
    CHECK_EQ(bd.next_offset, 4);
  }
  /* the same after a reopen, and read-only */
  CHECK_OK(klevdb_close(db));
  db = OPEN(dir, &o);
  if (!db) goto out;
  time_expect(db, TI(2), 2, 2, __LINE__);
  GET_EXPECT(db, KLEVDB_OFFSET_NEWEST, 2, 2);
  CHECK_OK(klevdb_close(db));
  o.readonly = 1;
  db = OPEN(dir, &o);
  if (!db) goto out;
  time_expect(db, TI(1), 1, 1, __LINE__);
  time_expect(db, TI(2), 2, 2, __LINE__);
  GET_EXPECT(db, KLEVDB_OFFSET_NEWEST, 2, 2);
  CHECK_OK(klevdb_close(db));
  o.readonly = 0;

  /* everything deleted: nothing to find */
  db = OPEN(dir, &o);
  if (!db) goto out;
  {
    klevdb_range r = {0, 4};
    klevdb_deleted d = {0, 0};
    CHECK_DBOK(db, klevdb_delete_ranges(db, &r, 1, &d));
    CHECK_EQ(d.count, 3);
    klevdb_batch b = KLEVDB_BATCH_INIT;
    klevdb_err e = klevdb_get_by_time(db, TI(0), &b);
    CHECK(e == KLEVDB_ENOTFOUND || e == KLEVDB_EINVALID_OFFSET);
    GET_FAIL(db, KLEVDB_OFFSET_NEWEST, KLEVDB_EINVALID_OFFSET);
    GET_FAIL(db, KLEVDB_OFFSET_OLDEST, KLEVDB_EINVALID_OFFSET);
    klevdb_batch_free(&b);
  }
  CHECK_OK(klevdb_close(db));
out:
  rm_rf(dir);
}

static void test_b4(void) {
  char dir[256];
  SECTION("D4 head index behind the log");
  tmp_dir(dir, sizeof(dir));
  klevdb_options o = opts_tk();
  klevdb *db = OPEN(dir, &o);
  if (!db) goto out;
  PUBLISH(db, 0, 3, 0);
  CHECK_OK(klevdb_close(db));
  char p[4096];
  seg_name(p, sizeof(p), dir, 0, ".index");
  CHECK_EQ(file_size(p), 8 + 3 * 32);
  CHECK(truncate(p, 8 + 2 * 32) == 0);
  db = OPEN(dir, &o);
  if (!db) goto out;
  CHECK_NEXT(db, 3);
  GET_EXPECT(db, 2, 2, 2);
  GET_EXPECT(db, KLEVDB_OFFSET_NEWEST, 2, 2);
  {
    char k[16];
    snprintf(k, sizeof(k), "%10d", 2);
    int64_t off = -1;
    CHECK_DBOK(db, klevdb_offset_by_key(db, k, 10, &off));
    CHECK_EQ(off, 2);
  }
  time_expect(db, TI(2), 2, 2, __LINE__);
  PUBLISH(db, 3, 1, 3);
  {
    int64_t offs[8];
    CHECK_EQ(CONSUME_ALL(db, 10, offs, 8), 4);
    for (int i = 0; i < 4; i++) CHECK_EQ(offs[i], i);
  }
  CHECK_STAT(db, 1, 4, 4 * gen_size(db) + 16);
  CHECK_OK(klevdb_close(db));
  CHECK_EQ(file_size(p), 8 + 4 * 32);
  {
    klevdb_error err;
    CHECK_OK(klevdb_dir_check(dir, &o, &err));
  }
  /* a whole batch of unindexed records (index cut to the header) */
  CHECK(truncate(p, 8) == 0);
  db = OPEN(dir, &o);
  if (!db) goto out;
  CHECK_NEXT(db, 4);
  PUBLISH(db, 4, 1, 4);
  {
    int64_t offs[8];
    CHECK_EQ(CONSUME_ALL(db, 10, offs, 8), 5);
    for (int i = 0; i < 5; i++) CHECK_EQ(offs[i], i);
    for (int i = 0; i < 5; i++) GET_EXPECT(db, i, i, i);
  }
  CHECK_OK(klevdb_close(db));
  CHECK_EQ(file_size(p), 8 + 5 * 32);
out:
  rm_rf(dir);
}

static void test_b1(void) {
  char dir[256];
  SECTION("D1 torn tail");
  tmp_dir(dir, sizeof(dir));
  klevdb_options o = opts_tk();
  klevdb *db = OPEN(dir, &o);
  if (!db) goto out;
  PUBLISH(db, 0, 3, 0);
  CHECK_OK(klevdb_close(db));
  char p[4096];
  seg_name(p, sizeof(p), dir, 0, ".log");
  CHECK(append_bytes(p, "\x01\x02\x03\x04\x05", 5) == 0);
  CHECK_EQ(file_size(p), 8 + 3 * SV2 + 5);
  db = OPEN(dir, &o);
  if (!db) goto out;
  CHECK_NEXT(db, 3);
  PUBLISH(db, 3, 1, 3);
  PUBLISH_BATCH(db, 4, 2, 6);
  {
    int64_t offs[8];
    CHECK_EQ(CONSUME_ALL(db, 10, offs, 8), 6);
    for (int i = 0; i < 6; i++) CHECK_EQ(offs[i], i);
    CONSUME_EXPECT(db, 0, 10, 0, 0, 6, 6);
    for (int i = 0; i < 6; i++) GET_EXPECT(db, i, i, i);
  }
  CHECK_OK(klevdb_close(db));
  CHECK_EQ(file_size(p), 8 + 6 * SV2);
  {
    klevdb_error err;
    CHECK_OK(klevdb_dir_check(dir, &o, &err));
  }
  o.readonly = 1;
  db = OPEN(dir, &o);
  if (db) {
    CONSUME_EXPECT(db, KLEVDB_OFFSET_OLDEST, 10, 0, 0, 6, 6);
    CHECK_OK(klevdb_close(db));
  }
  /* a torn tail in a V1 head as well */
  rm_rf(dir);
  tmp_dir(dir, sizeof(dir));
  o = opts_tk();
  o.new_segments_version = KLEVDB_V1;
  db = OPEN(dir, &o);
  if (!db) goto out;
  PUBLISH(db, 0, 2, 0);
  CHECK_OK(klevdb_close(db));
  seg_name(p, sizeof(p), dir, 0, ".log");
  CHECK(append_bytes(p, "\x01\x02\x03\x04\x05\x06\x07", 7) == 0);
  db = OPEN(dir, &o);
  if (!db) goto out;
  PUBLISH(db, 2, 1, 2);
  CONSUME_EXPECT(db, KLEVDB_OFFSET_OLDEST, 10, 0, 0, 3, 3);
  CHECK_OK(klevdb_close(db));
  CHECK_EQ(file_size(p), 3 * SV1);
out:
  rm_rf(dir);
}

static void test_b9_b10(void) {
  char dir[256];
  SECTION("D6/D7");
  tmp_dir(dir, sizeof(dir));
  klevdb_options o = opts_tk();
  klevdb *db = OPEN(dir, &o);
  if (!db) goto out;
  PUBLISH(db, 0, 2, 0);
  CHECK_DBOK(db, klevdb_sync(db, NULL));
  long long lsz = seg_size(dir, 0, ".log"), isz = seg_size(dir, 0, ".index");
  uint8_t *big = calloc(1, KLEVDB_MAX_PAYLOAD);
  if (big) {
    tmsg t[3];
    for (int i = 0; i < 3; i++) gen(&t[i], 2 + i);
    klevdb_msg m[3] = {t[0].m, t[1].m, t[2].m};
    m[2].value = big;
    m[2].value_len = KLEVDB_MAX_PAYLOAD; /* + 10 key bytes: too big */
    int64_t next = -99;
    CHECK_DB(db, klevdb_publish(db, m, 3, &next), KLEVDB_ETOOBIG);
    CHECK_NEXT(db, 2);
    CHECK_DBOK(db, klevdb_sync(db, NULL));
    CHECK_EQ(seg_size(dir, 0, ".log"), lsz);
    CHECK_EQ(seg_size(dir, 0, ".index"), isz);
    CONSUME_EXPECT(db, 0, 10, 0, 0, 2, 2);
    CONSUME_FAIL(db, 3, KLEVDB_EINVALID_OFFSET);
    GET_FAIL(db, 2, KLEVDB_EINVALID_OFFSET);
    free(big);
  }
  PUBLISH(db, 2, 1, 2);
  GET_EXPECT(db, 2, 2, 2);
  /* D7 */
  {
    klevdb_batch b = KLEVDB_BATCH_INIT;
    CHECK_DB(db, klevdb_consume(db, 0, 0, &b), KLEVDB_EINVAL);
    CHECK_DBOK(db, klevdb_consume(db, 0, SIZE_MAX, &b));
    CHECK_BATCH(&b, 0, 0, 3);
    CHECK_EQ(b.next_offset, 3);
    CHECK_DBOK(db, klevdb_consume(db, KLEVDB_OFFSET_OLDEST, SIZE_MAX / 2, &b));
    CHECK_EQ(b.len, 3);
    CHECK_DBOK(db, klevdb_consume_blocking(db, 0, SIZE_MAX, 10, &b));
    CHECK_EQ(b.len, 3);
    klevdb_batch_free(&b);
  }
  CHECK_OK(klevdb_close(db));
  db = OPEN(dir, &o);
  if (db) {
    int64_t offs[8];
    CHECK_EQ(CONSUME_ALL(db, 10, offs, 8), 3);
    CHECK_OK(klevdb_close(db));
  }
out:
  rm_rf(dir);
}

/* D10: a rollover below the V2 header size must not make two handles on
** one file pair; every message stays readable. */
static void test_b17(void) {
  char dir[256];
  SECTION("D10 tiny rollover");
  tmp_dir(dir, sizeof(dir));
  klevdb_options o = opts_tk();
  o.rollover = 4;
  klevdb *db = OPEN(dir, &o);
  if (!db) goto out;
  PUBLISH(db, 0, 3, 0);
  {
    int64_t offs[8];
    CHECK_EQ(CONSUME_ALL(db, 1, offs, 8), 3);
    for (int i = 0; i < 3; i++) GET_EXPECT(db, i, i, i);
  }
  CONSUME_EXPECT(db, KLEVDB_OFFSET_OLDEST, 10, 0, 0, 1, 1);
  klevdb_stat st;
  CHECK_DBOK(db, klevdb_stat_get(db, &st));
  CHECK_EQ(st.messages, 3);
  CHECK_EQ(st.segments, count_ext(dir, ".log"));
  CHECK_OK(klevdb_close(db));
  db = OPEN(dir, &o);
  if (db) {
    int64_t offs[8];
    CHECK_EQ(CONSUME_ALL(db, 10, offs, 8), 3);
    CHECK_OK(klevdb_close(db));
  }
out:
  rm_rf(dir);
}

int main(void) {
  chk_name = "test_gobugs";
  test_b2_b3(0);
  test_b2_b3(2 * SV2);
  test_b4();
  test_b1();
  test_b9_b10();
  test_b17();
  return check_done();
}
