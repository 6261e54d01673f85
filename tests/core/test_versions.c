/*
** test_versions.c - the cases of Go's version tests: V1/V2 new segments,
** keep_rewrite_version and eager_migrate.
*/
#include "check.h"

static klevdb_options vopts(klevdb_format v, int64_t rollover) {
  klevdb_options o = opts_tk();
  o.new_segments_version = v;
  o.rollover = rollover;
  return o;
}

/* Consumes the whole store and checks it holds exactly gen(ids[k]) at
** offset ids[k]. */
static void content_expect(klevdb *db, const int *ids, int n, int line) {
  int64_t offs[32];
  long got = consume_all_at(db, 10, offs, 32, __FILE__, line);
  chk_report(got == n, __FILE__, line, "content: %ld messages, expected %d", got, n);
  for (int k = 0; k < n && k < got; k++) {
    chk_report(offs[k] == ids[k], __FILE__, line, "content[%d]: offset %lld, expected %d",
               k, (long long)offs[k], ids[k]);
    get_expect_at(db, ids[k], KLEVDB_OK, ids[k], ids[k], __FILE__, line);
  }
}
#define CONTENT(db, ...)                                                     \
  do {                                                                       \
    static const int ids_[] = {__VA_ARGS__};                                 \
    content_expect((db), ids_, (int)(sizeof(ids_) / sizeof(ids_[0])), __LINE__); \
  } while (0)

static void delete_one(klevdb *db, int64_t off, int line) {
  klevdb_deleted d = {-1, -1};
  klevdb_err e = klevdb_delete(db, &off, 1, &d, NULL);
  chk_report(e == KLEVDB_OK && d.count == 1, __FILE__, line,
             "delete(%lld): %s, count %lld (%s)", (long long)off, klevdb_errname(e),
             (long long)d.count, e ? klevdb_errmsg(db) : "");
}

/* 56: V1 new segments, rollover 2*S(V1). */
static void test_v1_segments(void) {
  char dir[256];
  SECTION("versions 56");
  tmp_dir(dir, sizeof(dir));
  klevdb_options o = vopts(KLEVDB_V1, 2 * SV1);
  klevdb *db = OPEN(dir, &o);
  if (!db) goto out;
  CHECK_EQ(gen_size(db), SV1 + 32);
  CHECK_EQ(seg_size(dir, 0, ".log"), 0);
  CHECK_EQ(seg_size(dir, 0, ".index"), 0);
  CHECK_STAT(db, 1, 0, 0);
  PUBLISH(db, 0, 4, 0);
  CHECK_EQ(seg_size(dir, 0, ".log"), 3 * SV1);
  CHECK_EQ(seg_size(dir, 3, ".log"), SV1);
  CHECK_EQ(seg_size(dir, 0, ".index"), 3 * 32); /* sealed by the rollover */
  CHECK_EQ(log_version(dir, 0), 1);
  CHECK_EQ(log_version(dir, 3), 1);
  CHECK_EQ(index_version(dir, 0), 1);
  CHECK_STAT(db, 2, 4, 4 * (SV1 + 32));
  CONTENT(db, 0, 1, 2, 3);
  delete_one(db, 0, __LINE__);
  CHECK(!seg_exists(dir, 0, ".log"));
  CHECK_EQ(log_version(dir, 1), 1);
  CHECK_EQ(seg_size(dir, 1, ".log"), 2 * SV1);
  CHECK_EQ(index_version(dir, 1), 1);
  CHECK_OK(klevdb_close(db));
  CHECK_EQ(seg_size(dir, 3, ".index"), 32);
  CHECK_EQ(index_version(dir, 3), 1);
  db = OPEN(dir, &o);
  if (!db) goto out;
  CONTENT(db, 1, 2, 3);
  CHECK_NEXT(db, 4);
  CHECK_OK(klevdb_close(db));
out:
  rm_rf(dir);
}

/* A V1 store with messages 0, 1 in segment 0 (large rollover). */
static void make_v1(const char *dir) {
  klevdb_options o = vopts(KLEVDB_V1, 0);
  klevdb *db = OPEN(dir, &o);
  if (!db) return;
  PUBLISH(db, 0, 2, 0);
  CHECK_OK(klevdb_close(db));
  CHECK_EQ(log_version(dir, 0), 1);
  CHECK_EQ(seg_size(dir, 0, ".log"), 2 * SV1);
}

/* 57/58: V1 store reopened with V2 (keep_rewrite_version on / off). */
static void test_keep_rewrite(int keep) {
  char dir[256];
  SECTION(keep ? "versions 57" : "versions 58");
  tmp_dir(dir, sizeof(dir));
  make_v1(dir);
  klevdb_options o = vopts(KLEVDB_V2, 2 * SV1);
  o.keep_rewrite_version = keep;
  klevdb *db = OPEN(dir, &o);
  if (!db) goto out;
  PUBLISH(db, 2, 1, 2); /* 2*SV1 is not > rollover: stays in the V1 head */
  CHECK_EQ(seg_size(dir, 0, ".log"), 3 * SV1);
  CHECK_EQ(log_version(dir, 0), 1);
  PUBLISH(db, 3, 1, 3); /* rolls over into a V2 segment */
  CHECK_EQ(log_version(dir, 3), 2);
  CHECK_OK(klevdb_sync(db, NULL));   /* cuts the space allocated ahead */
  CHECK_EQ(seg_size(dir, 3, ".log"), 8 + SV2);
  CHECK_EQ(index_version(dir, 3), 2);
  CONTENT(db, 0, 1, 2, 3);
  if (keep) {
    delete_one(db, 1, __LINE__);
    CHECK_EQ(log_version(dir, 0), 1);
    CHECK_EQ(seg_size(dir, 0, ".log"), 2 * SV1);
    CHECK_EQ(index_version(dir, 0), 1);
    CHECK_EQ(log_version(dir, 3), 2);
    CONTENT(db, 0, 2, 3);
  } else {
    delete_one(db, 0, __LINE__);
    CHECK(!seg_exists(dir, 0, ".log"));
    CHECK_EQ(log_version(dir, 1), 2);
    CHECK_EQ(seg_size(dir, 1, ".log"), 8 + 2 * SV2);
    CHECK_EQ(index_version(dir, 1), 2);
    CHECK_EQ(log_version(dir, 3), 2);
    CONTENT(db, 1, 2, 3);
  }
  CHECK_EQ(count_ext(dir, ".log"), 2);
  CHECK_OK(klevdb_close(db));
  db = OPEN(dir, &o);
  if (!db) goto out;
  if (keep) CONTENT(db, 0, 2, 3);
  else CONTENT(db, 1, 2, 3);
  CHECK_OK(klevdb_close(db));
out:
  rm_rf(dir);
}

/* 59: eager migrate of a two-segment V1 store without indexes. */
static void test_eager_migrate(void) {
  char dir[256];
  SECTION("versions 59");
  tmp_dir(dir, sizeof(dir));
  {
    klevdb_options o = vopts(KLEVDB_V1, 2 * SV1 - 1);
    klevdb *db = OPEN(dir, &o);
    if (!db) goto out;
    PUBLISH(db, 0, 4, 0);
    CHECK_OK(klevdb_close(db));
  }
  CHECK_EQ(count_ext(dir, ".log"), 2);
  CHECK_EQ(log_version(dir, 0), 1);
  CHECK_EQ(log_version(dir, 2), 1);
  CHECK_EQ(remove_ext(dir, ".index"), 2);
  klevdb_options o = vopts(KLEVDB_V2, 0);
  o.eager_migrate = 1;
  klevdb *db = OPEN(dir, &o);
  if (!db) goto out;
  CHECK_EQ(log_version(dir, 0), 2);
  CHECK_EQ(log_version(dir, 2), 2);
  CHECK_EQ(seg_size(dir, 0, ".log"), 8 + 2 * SV2);
  CHECK_EQ(seg_size(dir, 2, ".log"), 8 + 2 * SV2);
  CHECK_EQ(index_version(dir, 0), 2);
  CHECK_EQ(seg_size(dir, 0, ".index"), 8 + 2 * 32);
  CHECK_EQ(count_ext(dir, ".migrate"), 0);
  CONTENT(db, 0, 1, 2, 3);
  CHECK_STAT(db, 2, 4, 4 * gen_size(db) + 32);
  PUBLISH(db, 4, 1, 4);
  CHECK_OK(klevdb_close(db));
  o.eager_migrate = 0;
  db = OPEN(dir, &o);
  if (!db) goto out;
  CONTENT(db, 0, 1, 2, 3, 4);
  CHECK_OK(klevdb_close(db));
out:
  rm_rf(dir);
}

/* 60: V2 store reopened with V1 and a smaller rollover. */
static void test_v2_to_v1(void) {
  char dir[256];
  SECTION("versions 60");
  tmp_dir(dir, sizeof(dir));
  {
    klevdb_options o = vopts(KLEVDB_VERSION_DEFAULT, 0);
    klevdb *db = OPEN(dir, &o);
    if (!db) goto out;
    PUBLISH(db, 0, 2, 0);
    CHECK_OK(klevdb_close(db));
  }
  CHECK_EQ(log_version(dir, 0), 2);
  klevdb_options o = vopts(KLEVDB_V1, SV1);
  klevdb *db = OPEN(dir, &o);
  if (!db) goto out;
  {
    klevdb_options got;
    klevdb_get_options(db, &got);
    CHECK_EQ(got.new_segments_version, KLEVDB_V1);
    CHECK_EQ(got.rollover, SV1);
  }
  PUBLISH(db, 2, 1, 2); /* rolls over: 8 + 2*SV2 > SV1 */
  CHECK_EQ(log_version(dir, 2), 1);
  PUBLISH(db, 3, 1, 3); /* SV1 is not > SV1: stays */
  CHECK_EQ(seg_size(dir, 2, ".log"), 2 * SV1);
  CHECK_EQ(count_ext(dir, ".log"), 2);
  delete_one(db, 1, __LINE__);
  CHECK_EQ(log_version(dir, 0), 1);
  CHECK_EQ(seg_size(dir, 0, ".log"), SV1);
  CHECK_EQ(index_version(dir, 0), 1);
  CHECK_EQ(seg_size(dir, 0, ".index"), 32);
  CHECK_EQ(log_version(dir, 2), 1);
  CONTENT(db, 0, 2, 3);
  CHECK_OK(klevdb_close(db));
  CHECK_EQ(seg_size(dir, 2, ".index"), 2 * 32);
  CHECK_EQ(index_version(dir, 2), 1);
  db = OPEN(dir, &o);
  if (!db) goto out;
  CONTENT(db, 0, 2, 3);
  CHECK_OK(klevdb_close(db));
out:
  rm_rf(dir);
}

int main(void) {
  chk_name = "test_versions";
  test_v1_segments();
  test_keep_rewrite(1);
  test_keep_rewrite(0);
  test_eager_migrate();
  test_v2_to_v1();
  return check_done();
}
