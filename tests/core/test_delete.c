/*
** test_delete.c - the cases of Go's TestDelete: klevdb_delete (Go's Delete, one
** segment per call) inside and across segments, DeleteMulti emulated by
** repeated deletes, and klevdb_delete_ranges over several segments.
*/
#include "check.h"

#define ROLL2 (2 * (SV2 - 1)) /* 2 messages per segment */

static klevdb *setup(char *dir, size_t cap, int64_t rollover, int n) {
  tmp_dir(dir, cap);
  klevdb_options o = opts_tk();
  o.rollover = rollover;
  klevdb *db = OPEN(dir, &o);
  if (db) PUBLISH(db, 0, n, 0);
  return db;
}

static klevdb *reopen(klevdb *db, const char *dir, int64_t rollover) {
  CHECK_OK(klevdb_close(db));
  klevdb_options o = opts_tk();
  o.rollover = rollover;
  return OPEN(dir, &o);
}

static klevdb *reopen_plain(const char *dir) {
  klevdb_options o = opts_tk();
  o.rollover = ROLL2;
  return OPEN(dir, &o);
}

/* klevdb_delete of offs[0..n): expects count deleted with these offsets. */
static void delete_expect(klevdb *db, const int64_t *offs, size_t n,
                          const int64_t *want, size_t nwant, int line) {
  klevdb_deleted d = {-1, -1};
  int64_t *got = NULL;
  klevdb_err e = klevdb_delete(db, offs, n, &d, &got);
  chk_report(e == KLEVDB_OK, __FILE__, line, "delete: %s (%s)", klevdb_errname(e),
             e ? klevdb_errmsg(db) : "");
  chk_report(d.count == (int64_t)nwant, __FILE__, line, "delete: count %lld, expected %zu",
             (long long)d.count, nwant);
  int64_t Size = gen_size(db);
  chk_report(d.size == (int64_t)nwant * Size, __FILE__, line,
             "delete: size %lld, expected %lld", (long long)d.size,
             (long long)nwant * Size);
  if (nwant > 0) {
    int same = got != NULL;
    for (size_t k = 0; same && k < nwant; k++) same = got[k] == want[k];
    chk_report(same, __FILE__, line, "delete: deleted offsets differ (first %lld)",
               got ? (long long)got[0] : -99LL);
  }
  free(got);
}
#define DELETE_EXPECT(db, offs, want)                                          \
  delete_expect((db), (offs), sizeof(offs) / sizeof((offs)[0]), (want),        \
                sizeof(want) / sizeof((want)[0]), __LINE__)

static void key_fail(klevdb *db, int i, int line) {
  char k[16];
  snprintf(k, sizeof(k), "%10d", i);
  klevdb_batch b = KLEVDB_BATCH_INIT;
  klevdb_err e = klevdb_get_by_key(db, k, 10, &b);
  chk_report(e == KLEVDB_ENOTFOUND, __FILE__, line, "get_by_key(%d): %s, expected not_found",
             i, klevdb_errname(e));
  klevdb_batch_free(&b);
}
static void key_ok(klevdb *db, int i, int line) {
  char k[16];
  snprintf(k, sizeof(k), "%10d", i);
  klevdb_batch b = KLEVDB_BATCH_INIT;
  klevdb_err e = klevdb_get_by_key(db, k, 10, &b);
  chk_report(e == KLEVDB_OK && b.len == 1, __FILE__, line, "get_by_key(%d): %s", i,
             klevdb_errname(e));
  if (e == KLEVDB_OK && b.len == 1) chk_msg(&b.msgs[0], i, i, __FILE__, line);
  klevdb_batch_free(&b);
}

static void test_delete_first(int do_reopen) {
  char dir[256];
  SECTION(do_reopen ? "delete 41" : "delete 40");
  klevdb *db = setup(dir, sizeof(dir), ROLL2, 4);
  if (!db) goto out;
  int64_t Size = gen_size(db);
  CHECK_STAT(db, 2, 4, 4 * Size + 32);
  CHECK(seg_exists(dir, 2, ".log"));
  if (do_reopen) db = reopen(db, dir, ROLL2);
  if (!db) goto out;
  {
    int64_t offs[] = {0}, want[] = {0};
    DELETE_EXPECT(db, offs, want);
  }
  CHECK_STAT(db, 2, 3, 3 * Size + 32);
  CONSUME_EXPECT(db, KLEVDB_OFFSET_OLDEST, 10, 1, 1, 1, 2);
  CONSUME_EXPECT(db, 0, 10, 1, 1, 1, 2);
  GET_FAIL(db, 0, KLEVDB_ENOTFOUND);
  GET_EXPECT(db, KLEVDB_OFFSET_OLDEST, 1, 1);
  key_fail(db, 0, __LINE__);
  for (int i = 1; i < 4; i++) key_ok(db, i, __LINE__);
  /* the segment was renamed to its first survivor */
  CHECK(!seg_exists(dir, 0, ".log"));
  CHECK(!seg_exists(dir, 0, ".index"));
  CHECK_EQ(seg_size(dir, 1, ".log"), 8 + SV2);
  CHECK_EQ(seg_size(dir, 1, ".index"), 8 + 32);
  CHECK_EQ(count_ext(dir, ".log"), 2);
  /* and it all holds after a reopen */
  db = reopen(db, dir, ROLL2);
  if (!db) goto out;
  CHECK_STAT(db, 2, 3, 3 * Size + 32);
  CONSUME_EXPECT(db, KLEVDB_OFFSET_OLDEST, 10, 1, 1, 1, 2);
  GET_FAIL(db, 0, KLEVDB_ENOTFOUND);
  CHECK_NEXT(db, 4);
  CHECK_OK(klevdb_close(db));
out:
  rm_rf(dir);
}

static void test_delete_segment(void) {
  char dir[256];
  SECTION("delete 42");
  klevdb *db = setup(dir, sizeof(dir), ROLL2, 4);
  if (!db) goto out;
  int64_t Size = gen_size(db);
  {
    int64_t offs[] = {1, 0}, want[] = {0, 1};
    DELETE_EXPECT(db, offs, want);
  }
  CHECK_STAT(db, 1, 2, 2 * Size + 16);
  CONSUME_EXPECT(db, KLEVDB_OFFSET_OLDEST, 10, 2, 2, 2, 4);
  CONSUME_EXPECT(db, 0, 10, 2, 2, 2, 4);
  GET_FAIL(db, 0, KLEVDB_ENOTFOUND);
  GET_FAIL(db, 1, KLEVDB_ENOTFOUND);
  CHECK(!seg_exists(dir, 0, ".log"));
  CHECK(!seg_exists(dir, 0, ".index"));
  CHECK_EQ(count_ext(dir, ".log"), 1);
  CHECK_EQ(count_ext(dir, ".index"), 1);
  /* deleting offsets that no longer exist: nothing, no error */
  {
    int64_t offs[] = {0, 1};
    klevdb_deleted d = {-1, -1};
    /* below the first segment's base: not found (differences D30) */
    CHECK_DB(db, klevdb_delete(db, offs, 2, &d, NULL), KLEVDB_ENOTFOUND);
  }
  CHECK_OK(klevdb_close(db));
out:
  rm_rf(dir);
}

static void test_delete_single_segment(void) {
  char dir[256];
  SECTION("delete 43");
  klevdb *db = setup(dir, sizeof(dir), 0, 4);
  if (!db) goto out;
  int64_t Size = gen_size(db);
  {
    int64_t offs[] = {0, 1}, want[] = {0, 1};
    DELETE_EXPECT(db, offs, want);
  }
  CHECK_STAT(db, 1, 2, 2 * Size + 16);
  CONSUME_EXPECT(db, KLEVDB_OFFSET_OLDEST, 10, 2, 2, 2, 4);
  CONSUME_EXPECT(db, 1, 10, 2, 2, 2, 4);
  CHECK(seg_exists(dir, 2, ".log"));
  CHECK(!seg_exists(dir, 0, ".log"));
  /* the head goes on in the renamed segment */
  PUBLISH(db, 4, 1, 4);
  CHECK_STAT(db, 1, 3, 3 * Size + 16);
  CONSUME_EXPECT(db, 2, 10, 2, 2, 3, 5);
  CHECK_OK(klevdb_close(db));
  rm_rf(dir);

  SECTION("delete 44");
  db = setup(dir, sizeof(dir), 0, 4);
  if (!db) goto out;
  {
    int64_t offs[] = {3}, want[] = {3};
    DELETE_EXPECT(db, offs, want);
  }
  CHECK_STAT(db, 2, 3, 3 * Size + 32);
  CHECK_NEXT(db, 4);
  CHECK(seg_exists(dir, 4, ".log"));
  GET_FAIL(db, 3, KLEVDB_ENOTFOUND);
  db = reopen(db, dir, 0);
  if (!db) goto out;
  CHECK_NEXT(db, 4);
  CHECK_STAT(db, 2, 3, 3 * Size + 32);
  CONSUME_EXPECT(db, KLEVDB_OFFSET_OLDEST, 10, 0, 0, 3, 3);
  CONSUME_EXPECT(db, 3, 10, 0, 0, 0, 4);
  PUBLISH(db, 4, 1, 4);
  GET_EXPECT(db, 4, 4, 4);
  CHECK_OK(klevdb_close(db));
out:
  rm_rf(dir);
}

static void test_delete_head(void) {
  char dir[256];
  SECTION("delete 45");
  klevdb *db = setup(dir, sizeof(dir), ROLL2, 4);
  if (!db) goto out;
  int64_t Size = gen_size(db);
  {
    int64_t offs[] = {2}, want[] = {2};
    DELETE_EXPECT(db, offs, want);
  }
  CHECK_STAT(db, 2, 3, 3 * Size + 32);
  CONSUME_EXPECT(db, KLEVDB_OFFSET_OLDEST, 10, 0, 0, 2, 2);
  CONSUME_EXPECT(db, 2, 10, 3, 3, 1, 4);
  GET_FAIL(db, 2, KLEVDB_ENOTFOUND);
  GET_EXPECT(db, 3, 3, 3);
  CHECK(seg_exists(dir, 3, ".log"));
  CHECK(!seg_exists(dir, 2, ".log"));
  CHECK_NEXT(db, 4);
  CHECK_OK(klevdb_close(db));
  rm_rf(dir);

  SECTION("delete 46");
  db = setup(dir, sizeof(dir), ROLL2, 4);
  if (!db) goto out;
  {
    int64_t offs[] = {2, 3}, want[] = {2, 3};
    DELETE_EXPECT(db, offs, want);
  }
  CHECK_STAT(db, 2, 2, 2 * Size + 32);
  CONSUME_EXPECT(db, 2, 10, 0, 0, 0, 4);
  CHECK(!seg_exists(dir, 2, ".log"));
  CHECK(seg_exists(dir, 4, ".log"));
  CHECK_EQ(seg_size(dir, 4, ".log"), 8);
  PUBLISH_BATCH(db, 4, 2, 6);
  CONSUME_EXPECT(db, 2, 10, 4, 4, 2, 6);
  CHECK_OK(klevdb_close(db));
  rm_rf(dir);

  SECTION("delete 47");
  db = setup(dir, sizeof(dir), ROLL2, 4);
  if (!db) goto out;
  {
    int64_t offs[] = {2, 3}, want[] = {2, 3};
    DELETE_EXPECT(db, offs, want);
  }
  {
    int64_t offs[] = {0, 1}, want[] = {0, 1};
    DELETE_EXPECT(db, offs, want);
  }
  CHECK_STAT(db, 1, 0, 16);
  CONSUME_EXPECT(db, KLEVDB_OFFSET_OLDEST, 10, 0, 0, 0, 4);
  CONSUME_EXPECT(db, 1, 10, 0, 0, 0, 4);
  CHECK_EQ(count_ext(dir, ".log"), 1);
  CHECK(seg_exists(dir, 4, ".log"));
  PUBLISH(db, 4, 1, 4);
  CHECK_OK(klevdb_close(db));
out:
  rm_rf(dir);
}

/* 48/49: DeleteMulti {0,2,3,4} over five two-message segments, emulated
** with repeated klevdb_delete (Go's DeleteMulti loop). */
static void test_delete_multi(void) {
  char dir[256];
  SECTION("delete multi 48-49");
  klevdb *db = setup(dir, sizeof(dir), ROLL2, 10);
  if (!db) goto out;
  int64_t Size = gen_size(db);
  CHECK_STAT(db, 5, 10, 10 * Size + 80);
  int64_t rem[4] = {0, 2, 3, 4}, all[8];
  size_t nrem = 4, nall = 0;
  int64_t total = 0;
  for (int iter = 0; iter < 10 && nrem > 0; iter++) {
    klevdb_deleted d = {0, 0};
    int64_t *got = NULL;
    CHECK_DBOK(db, klevdb_delete(db, rem, nrem, &d, &got));
    if (d.count == 0) {
      free(got);
      break;
    }
    total += d.size;
    for (int64_t k = 0; k < d.count; k++) {
      if (nall < 8) all[nall++] = got[k];
      size_t w = 0;
      for (size_t r = 0; r < nrem; r++)
        if (rem[r] != got[k]) rem[w++] = rem[r];
      nrem = w;
    }
    free(got);
  }
  CHECK_EQ(nrem, 0);
  CHECK_EQ(nall, 4);
  CHECK(nall == 4 && all[0] == 0 && all[1] == 2 && all[2] == 3 && all[3] == 4);
  CHECK_EQ(total, 4 * Size);
  CHECK_STAT(db, 4, 6, 6 * Size + 64);
  CHECK(!seg_exists(dir, 0, ".log"));
  CHECK(!seg_exists(dir, 2, ".log"));
  CHECK(!seg_exists(dir, 2, ".index"));
  CHECK(!seg_exists(dir, 4, ".log"));
  CHECK(seg_exists(dir, 1, ".log"));
  CHECK(seg_exists(dir, 5, ".log"));
  CHECK(seg_exists(dir, 6, ".log"));
  CHECK(seg_exists(dir, 8, ".log"));
  int64_t offs[16];
  long n = CONSUME_ALL(db, 10, offs, 16);
  CHECK_EQ(n, 6);
  static const int64_t surv[6] = {1, 5, 6, 7, 8, 9};
  for (int k = 0; k < 6 && k < n; k++) CHECK_EQ(offs[k], surv[k]);
  CHECK_OK(klevdb_close(db));
  rm_rf(dir);

  /* a batch stays readable after its segment was deleted */
  SECTION("batch outlives a deleted segment");
  {
    klevdb *d2 = setup(dir, sizeof(dir), ROLL2, 4);
    if (d2) {
      klevdb_batch b = KLEVDB_BATCH_INIT;
      CHECK_DBOK(d2, klevdb_consume(d2, 0, 10, &b));
      klevdb_range r = {0, 2};
      klevdb_deleted d = {0, 0};
      CHECK_DBOK(d2, klevdb_delete_ranges(d2, &r, 1, &d));
      CHECK_EQ(d.count, 2);
      CHECK(!seg_exists(dir, 0, ".log"));
      CHECK_DBOK(d2, klevdb_gc(d2, 0));
      CHECK_BATCH(&b, 0, 0, 2);
      klevdb_batch_free(&b);
      CHECK_OK(klevdb_close(d2));
    }
    rm_rf(dir);
  }

  /* the same with klevdb_delete_ranges in one call */
  SECTION("delete_ranges 48");
  db = setup(dir, sizeof(dir), ROLL2, 10);
  if (!db) goto out;
  {
    klevdb_range r[2] = {{0, 1}, {2, 5}};
    klevdb_deleted d = {-1, -1};
    CHECK_DBOK(db, klevdb_delete_ranges(db, r, 2, &d));
    CHECK_EQ(d.count, 4);
    CHECK_EQ(d.size, 4 * Size);
  }
  CHECK_STAT(db, 4, 6, 6 * Size + 64);
  n = CONSUME_ALL(db, 10, offs, 16);
  CHECK_EQ(n, 6);
  for (int k = 0; k < 6 && k < n; k++) CHECK_EQ(offs[k], surv[k]);
  CHECK(!seg_exists(dir, 0, ".log"));
  CHECK(!seg_exists(dir, 2, ".log"));
  CHECK(!seg_exists(dir, 4, ".log"));
  CHECK_EQ(count_ext(dir, ".log"), 4);
  CHECK_EQ(count_ext(dir, ".index"), 4);
  CHECK_OK(klevdb_close(db));
out:
  rm_rf(dir);
}

static void test_delete_ranges(void) {
  char dir[256];
  SECTION("delete_ranges across segments");
  klevdb *db = setup(dir, sizeof(dir), ROLL2, 10);
  if (!db) goto out;
  int64_t Size = gen_size(db);
  {
    klevdb_range r[1] = {{1, 7}};
    klevdb_deleted d = {-1, -1};
    CHECK_DBOK(db, klevdb_delete_ranges(db, r, 1, &d));
    CHECK_EQ(d.count, 6);
    CHECK_EQ(d.size, 6 * Size);
  }
  /* segments: 0 (0), 7 (7), 8 (8, 9) */
  CHECK_STAT(db, 3, 4, 4 * Size + 48);
  CHECK(seg_exists(dir, 0, ".log"));
  CHECK(!seg_exists(dir, 2, ".log"));
  CHECK(!seg_exists(dir, 2, ".index"));
  CHECK(!seg_exists(dir, 4, ".log"));
  CHECK(!seg_exists(dir, 4, ".index"));
  CHECK(!seg_exists(dir, 6, ".log"));
  CHECK(!seg_exists(dir, 6, ".index"));
  CHECK(seg_exists(dir, 7, ".log"));
  CHECK(seg_exists(dir, 8, ".log"));
  CHECK_EQ(seg_size(dir, 0, ".log"), 8 + SV2);
  CHECK_EQ(count_ext(dir, ".log"), 3);
  int64_t offs[16];
  long n = CONSUME_ALL(db, 10, offs, 16);
  CHECK_EQ(n, 4);
  static const int64_t surv[4] = {0, 7, 8, 9};
  for (int k = 0; k < 4 && k < n; k++) CHECK_EQ(offs[k], surv[k]);
  for (int k = 1; k < 7; k++) GET_FAIL(db, k, KLEVDB_ENOTFOUND);
  GET_EXPECT(db, 7, 7, 7);
  CONSUME_EXPECT(db, 1, 10, 7, 7, 1, 8);
  CONSUME_EXPECT(db, 0, 10, 0, 0, 1, 1);
  /* ranges overlapping deleted space and unsorted, reaching the head */
  {
    klevdb_range r[2] = {{8, 100}, {3, 8}};
    klevdb_deleted d = {-1, -1};
    CHECK_DBOK(db, klevdb_delete_ranges(db, r, 2, &d));
    CHECK_EQ(d.count, 3);
    CHECK_EQ(d.size, 3 * Size);
  }
  /* segments: 0 (0) and an empty head at 10 */
  CHECK_STAT(db, 2, 1, Size + 32);
  CHECK_NEXT(db, 10);
  CHECK(seg_exists(dir, 10, ".log"));
  CHECK(!seg_exists(dir, 7, ".log"));
  CHECK(!seg_exists(dir, 8, ".log"));
  CHECK_EQ(count_ext(dir, ".log"), 2);
  GET_EXPECT(db, KLEVDB_OFFSET_NEWEST, 0, 0);
  PUBLISH(db, 10, 1, 10);
  GET_EXPECT(db, 10, 10, 10);
  /* nothing to delete: OK, zero */
  {
    klevdb_range r[1] = {{1, 10}};
    klevdb_deleted d = {-1, -1};
    CHECK_DBOK(db, klevdb_delete_ranges(db, r, 1, &d));
    CHECK_EQ(d.count, 0);
    CHECK_EQ(d.size, 0);
  }
  db = reopen(db, dir, ROLL2);
  if (!db) goto out;
  n = CONSUME_ALL(db, 10, offs, 16);
  CHECK_EQ(n, 2);
  CHECK(n == 2 && offs[0] == 0 && offs[1] == 10);
  CHECK_NEXT(db, 11);
  /* delete everything */
  {
    klevdb_range r[1] = {{0, 11}};
    klevdb_deleted d = {-1, -1};
    CHECK_DBOK(db, klevdb_delete_ranges(db, r, 1, &d));
    CHECK_EQ(d.count, 2);
  }
  CHECK_STAT(db, 1, 0, 16);
  CHECK_NEXT(db, 11);
  CONSUME_EXPECT(db, KLEVDB_OFFSET_OLDEST, 10, 0, 0, 0, 11);
  CHECK_EQ(count_ext(dir, ".log"), 1);
  CHECK(seg_exists(dir, 11, ".log"));
  CHECK_OK(klevdb_close(db));
  rm_rf(dir);

  /* within one segment, keeping its base (override) */
  SECTION("delete_ranges inside one segment");
  db = setup(dir, sizeof(dir), 0, 6);
  if (!db) goto out;
  {
    klevdb_range r[2] = {{1, 2}, {3, 5}};
    klevdb_deleted d = {-1, -1};
    CHECK_DBOK(db, klevdb_delete_ranges(db, r, 2, &d));
    CHECK_EQ(d.count, 3);
    CHECK_EQ(d.size, 3 * Size);
  }
  CHECK_STAT(db, 1, 3, 3 * Size + 16);
  n = CONSUME_ALL(db, 10, offs, 16);
  CHECK(n == 3 && offs[0] == 0 && offs[1] == 2 && offs[2] == 5);
  CONSUME_EXPECT(db, 3, 10, 5, 5, 1, 6);
  PUBLISH(db, 6, 1, 6);
  CHECK_STAT(db, 1, 4, 4 * Size + 16);
  CHECK_EQ(count_ext(dir, ".log"), 1);
  CHECK_OK(klevdb_close(db));
out:
  rm_rf(dir);
}

/* Writes a file in dir (a marker as a crash leaves it). */
static void put_file(const char *dir, const char *name, const char *text) {
  char path[512];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  if (!CHECK(f != NULL)) return;
  fputs(text, f);
  fclose(f);
}

/* A delete of several segments killed after it wrote its ranges: the next
** read-write open finishes it (a read-only one changes nothing); ranges
** with no "end" line never began. */
static void test_delete_interrupted(void) {
  char dir[256];
  SECTION("a delete of several segments interrupted: open finishes it");
  klevdb *db = setup(dir, sizeof(dir), ROLL2, 10);
  if (!db) goto out;
  CHECK_OK(klevdb_close(db));
  /* as a crash leaves it once the ranges are written */
  put_file(dir, ".delete-ranges", "1 4\n6 9\nend 2\n");
  {
    klevdb_options ro = opts_tk();
    ro.readonly = 1;
    db = OPEN(dir, &ro);
    if (!db) goto out;
    int64_t offs[16];
    CHECK_EQ(CONSUME_ALL(db, 10, offs, 16), 10);
    CHECK_OK(klevdb_close(db));
  }
  db = reopen_plain(dir);
  if (!db) goto out;
  {
    int64_t offs[16];
    long n = CONSUME_ALL(db, 10, offs, 16);
    static const int64_t surv[4] = {0, 4, 5, 9};
    CHECK_EQ(n, 4);
    for (int k = 0; k < 4 && k < n; k++) CHECK_EQ(offs[k], surv[k]);
  }
  CHECK(!seg_exists(dir, 2, ".log"));
  CHECK_NEXT(db, 10);
  CHECK_OK(klevdb_close(db));
  {
    char m[512];
    snprintf(m, sizeof(m), "%s/.delete-ranges", dir);
    CHECK(access(m, F_OK) != 0);
  }
  /* a torn marker: nothing happens, and it goes */
  put_file(dir, ".delete-ranges", "0 1\n4 6\n");
  db = reopen_plain(dir);
  if (!db) goto out;
  {
    int64_t offs[16];
    CHECK_EQ(CONSUME_ALL(db, 10, offs, 16), 4);
  }
  CHECK_OK(klevdb_close(db));
out:
  rm_rf(dir);
}

/* A trim drops whole sealed segments without mapping them, counting from
** their files' ends: the count, the size and what stays are those of a
** delete of the same offsets, which reads every item, in both formats,
** with and without indexes, and with a dropped segment whose index must
** be rebuilt (its count then comes from the log). */
static void trim_like_delete(klevdb_format fmt, int indexes, int damaged) {
  char a[256], b[256];
  tmp_dir(a, sizeof(a));
  tmp_dir(b, sizeof(b));
  klevdb_options o = indexes ? opts_tk() : opts_default();
  o.new_segments_version = fmt;
  o.rollover = 4096;
  const int n = 600, cut = 450;
  const char *dirs[2] = {a, b};
  for (int k = 0; k < 2; k++) {
    klevdb *db = OPEN(dirs[k], &o);
    if (!db) return;
    PUBLISH(db, 0, n, 0);
    CHECK_OK(klevdb_close(db));
    if (damaged) {
      /* The second segment's index loses its items (a rebuild on use). */
      int64_t segs[64];
      size_t ns = 0;
      DIR *d = opendir(dirs[k]);
      struct dirent *de;
      while (d && (de = readdir(d)) != NULL)
        if (strstr(de->d_name, ".index") && ns < 64) segs[ns++] = strtoll(de->d_name, NULL, 10);
      if (d) closedir(d);
      int64_t second = INT64_MAX, first = INT64_MAX;
      for (size_t i = 0; i < ns; i++) first = segs[i] < first ? segs[i] : first;
      for (size_t i = 0; i < ns; i++) if (segs[i] > first && segs[i] < second) second = segs[i];
      char path[512];
      seg_name(path, sizeof(path), dirs[k], second, ".index");
      CHECK(second < cut && truncate(path, fmt == KLEVDB_V2 ? 8 : 0) == 0);
    }
  }
  klevdb *ta = OPEN(a, &o), *tb = OPEN(b, &o);
  if (!ta || !tb) return;
  klevdb_deleted da = {0, 0}, dbd = {0, 0};
  CHECK_OK(klevdb_trim_by_offset(ta, cut, &da));
  int64_t offs[cut];
  for (int i = 0; i < cut; i++) offs[i] = i;
  /* Go's Delete goes one segment per call: call until all are gone. */
  for (int calls = 0; calls < 100 && dbd.count < cut; calls++) {
    klevdb_deleted one = {0, 0};
    CHECK_OK(klevdb_delete(tb, offs + dbd.count, (size_t)(cut - dbd.count), &one, NULL));
    if (one.count == 0) break;
    dbd.count += one.count;
    dbd.size += one.size;
  }
  CHECK_EQ(da.count, cut);
  CHECK_EQ(dbd.count, cut);
  int64_t per = (fmt == KLEVDB_V2 ? SV2 : SV1) + (indexes ? 32 : 16);
  CHECK_EQ(da.size, cut * per);
  CHECK_EQ(dbd.size, cut * per);
  int64_t ga[n], gb[n];
  long na = CONSUME_ALL(ta, 50, ga, n), nb = CONSUME_ALL(tb, 50, gb, n);
  CHECK_EQ(na, n - cut);
  CHECK_EQ(nb, n - cut);
  for (long i = 0; i < na && i < nb; i++) CHECK_EQ(ga[i], gb[i]);
  if (na > 0) CHECK_EQ(ga[0], cut);
  GET_FAIL(ta, cut - 1, KLEVDB_ENOTFOUND);
  CHECK_OK(klevdb_close(ta));
  CHECK_OK(klevdb_close(tb));
  rm_rf(a);
  rm_rf(b);
}

int main(void) {
  chk_name = "test_delete";
  SECTION("trim of whole segments, as a delete of the same offsets");
  for (int f = 0; f < 2; f++)
    for (int i = 0; i < 2; i++)
      for (int d = 0; d < 2; d++) trim_like_delete(f ? KLEVDB_V2 : KLEVDB_V1, i, d);
  test_delete_first(0);
  test_delete_first(1);
  test_delete_segment();
  test_delete_single_segment();
  test_delete_head();
  test_delete_multi();
  test_delete_ranges();
  test_delete_interrupted();
  return check_done();
}
