/*
** test_recover.c - Check and Recover of the last segment (as Go's, docs/files.md):
** the outcome table, the torn Go fixture, the torn-header fix (differences
** D1), the stale temp fix (D9) and damage Recover must refuse to touch.
*/
#include "util.h"

#define TK (IDX_TIMES | IDX_KEYS)
#define T0 1672531200000000LL

static const klevdb_options OPTS_TK = {.key_index = 1, .time_index = 1};

/* A store dir holding one V2 segment of two records; s gets its bytes. */
static char *two_records(rawseg *s, int iver) {
  rawseg_build(s, FMT_V2, iver, TK, 0, 2, T0);
  char *dir = tmpdir();
  spit(pj(dir, segname(0, ".log")), s->log.p, s->log.len);
  spit(pj(dir, segname(0, ".index")), s->idx.p, s->idx.len);
  return dir;
}

/* Runs Recover on dir; then the log must hold log_len bytes of s's log
** and the index idx_len bytes of s's index (-1: no index file). */
static void expect_after(const char *what, char *dir, rawseg *s, int64_t log_len,
                         int64_t idx_len) {
  klevdb_error err = {0};
  fprintf(stderr, "-- recover: %s\n", what);
  CHECK_RC(klevdb_dir_recover(dir, &OPTS_TK, &err), KLEVDB_OK, err);
  size_t l;
  uint8_t *p = slurp(pj(dir, segname(0, ".log")), &l);
  CHECK(p != NULL);
  CHECK_EQ(l, log_len);
  CHECK(p && l == (size_t)log_len && memcmp(p, s->log.p, l) == 0);
  free(p);
  p = slurp(pj(dir, segname(0, ".index")), &l);
  if (idx_len < 0) {
    CHECK(p == NULL);
  } else {
    CHECK(p != NULL);
    CHECK_EQ(l, idx_len);
    CHECK(p && l == (size_t)idx_len && memcmp(p, s->idx.p, l) == 0);
  }
  free(p);
  CHECK(!exists(pj(dir, segname(0, ".log.recover"))));
  /* What Recover leaves passes Check. */
  CHECK_RC(klevdb_dir_check(dir, &OPTS_TK, &err), KLEVDB_OK, err);
  rawseg_free(s);
  rm_rf(dir);
}

static void test_recover_table(void) {
  rawseg s;
  char *dir;
  const size_t S = item_size(TK);
  const int64_t one = 56, two = 104, i1 = 8 + 32, i2 = 8 + 64;

  dir = two_records(&s, FMT_V2);
  CHECK_EQ(s.rec_end[0], one);
  CHECK_EQ(s.rec_end[1], two);
  CHECK_EQ(s.idx.len, i2);
  expect_after("none", dir, &s, two, i2);

  dir = two_records(&s, FMT_V2);
  cut(pj(dir, segname(0, ".log")), one);
  expect_after("log cut after record 1", dir, &s, one, i1);

  /* Go keeps the 4 bytes (differences D1); the fix cuts them. */
  dir = two_records(&s, FMT_V2);
  cut(pj(dir, segname(0, ".log")), one + 4);
  expect_after("log cut 4 bytes into record 2's header", dir, &s, one, i1);

  dir = two_records(&s, FMT_V2);
  cut(pj(dir, segname(0, ".log")), one + 30);
  expect_after("log cut inside record 2's body", dir, &s, one, i1);

  dir = two_records(&s, FMT_V2);
  {
    uint8_t *cp = malloc(s.log.len);
    memcpy(cp, s.log.p, s.log.len);
    cp[s.log.len - 1] = 0;
    spit(pj(dir, segname(0, ".log")), cp, s.log.len);
    free(cp);
  }
  expect_after("last log byte zeroed", dir, &s, one, i1);

  dir = two_records(&s, FMT_V2);
  unlink(pj(dir, segname(0, ".index")));
  expect_after("index removed", dir, &s, two, -1);

  dir = two_records(&s, FMT_V2);
  cut(pj(dir, segname(0, ".index")), (off_t)(8 + S - 1));
  expect_after("index cut to header + S-1", dir, &s, two, -1);

  dir = two_records(&s, FMT_V2);
  cut(pj(dir, segname(0, ".index")), (off_t)(8 + S + 4));
  expect_after("index cut to header + S+4", dir, &s, two, -1);

  dir = two_records(&s, FMT_V2);
  {
    uint8_t *cp = malloc(s.idx.len);
    memcpy(cp, s.idx.p, s.idx.len);
    cp[s.idx.len - 1] = 0;
    spit(pj(dir, segname(0, ".index")), cp, s.idx.len);
    free(cp);
  }
  expect_after("last index byte zeroed", dir, &s, two, i2);
}

/* A rewritten index keeps the version of the one it replaces. */
static void test_recover_keeps_v1_index(void) {
  rawseg s;
  char *dir = two_records(&s, FMT_V1);
  const char *ip = pj(dir, segname(0, ".index"));
  CHECK_EQ(s.idx.len, 64);
  cut(pj(dir, segname(0, ".log")), 56);
  klevdb_error err;
  CHECK_RC(klevdb_dir_check(dir, &OPTS_TK, &err), KLEVDB_ECORRUPT_INDEX, err);
  CHECK_CONTAINS(err.msg, "klevdb: check 0: index corrupted");
  CHECK_RC(klevdb_dir_recover(dir, &OPTS_TK, &err), KLEVDB_OK, err);
  size_t l;
  uint8_t *p = slurp(ip, &l);
  CHECK_EQ(l, 32);
  CHECK(p && l == 32 && memcmp(p, s.idx.p, 32) == 0);
  free(p);
  CHECK_RC(klevdb_dir_check(dir, &OPTS_TK, &err), KLEVDB_OK, err);
  rawseg_free(&s);
  rm_rf(dir);
}

/* Wrong params on a V2 index: Check reports it, Recover drops the index. */
static void test_recover_params_mismatch(void) {
  rawseg s;
  char *dir = two_records(&s, FMT_V2);
  klevdb_options keys_only = {.key_index = 1};
  klevdb_error err;
  CHECK_RC(klevdb_dir_check(dir, &keys_only, &err), KLEVDB_ECORRUPT_INDEX, err);
  CHECK_CONTAINS(err.msg, "times index mismatch");
  CHECK_RC(klevdb_dir_recover(dir, &keys_only, &err), KLEVDB_OK, err);
  CHECK(!exists(pj(dir, segname(0, ".index"))));
  CHECK_EQ(fsize(pj(dir, segname(0, ".log"))), 104);
  rawseg_free(&s);
  rm_rf(dir);
}

/* differences D1: a torn record header at the tail passes Check, and Recover cuts it. */
static void test_torn_header(void) {
  rawseg s;
  char *dir = two_records(&s, FMT_V2);
  const char *lp = pj(dir, segname(0, ".log"));
  uint8_t *cp = malloc(s.log.len + 5);
  memcpy(cp, s.log.p, s.log.len);
  memcpy(cp + s.log.len, "\x01\x02\x03\x04\x05", 5);
  spit(lp, cp, s.log.len + 5);
  free(cp);
  klevdb_error err;
  CHECK_RC(klevdb_dir_check(dir, &OPTS_TK, &err), KLEVDB_OK, err);
  struct stat before, after;
  stat(pj(dir, segname(0, ".index")), &before);
  CHECK_RC(klevdb_dir_recover(dir, &OPTS_TK, &err), KLEVDB_OK, err);
  CHECK_EQ(fsize(lp), s.log.len);
  size_t l;
  uint8_t *p = slurp(lp, &l);
  CHECK(p && l == s.log.len && memcmp(p, s.log.p, l) == 0);
  free(p);
  /* The index was right and stays the same file. */
  stat(pj(dir, segname(0, ".index")), &after);
  CHECK_EQ(before.st_ino, after.st_ino);
  CHECK(!exists(pj(dir, segname(0, ".log.recover"))));
  rawseg_free(&s);
  rm_rf(dir);
}

/* differences D9: a stale .recover is removed, never appended to. */
static void test_stale_recover(void) {
  klevdb_error err;
  rawseg s;
  char *dir = two_records(&s, FMT_V2);
  const char *tmp = pj(dir, segname(0, ".log.recover"));
  spit(tmp, "garbage from a crashed recover", 30);
  CHECK_RC(klevdb_dir_recover(dir, &OPTS_TK, &err), KLEVDB_OK, err);
  CHECK(!exists(tmp));
  CHECK_EQ(fsize(pj(dir, segname(0, ".log"))), 104);
  rawseg_free(&s);
  rm_rf(dir);

  dir = two_records(&s, FMT_V2);
  tmp = pj(dir, segname(0, ".log.recover"));
  spit(tmp, s.log.p, s.log.len); /* looks like a valid log: must not be kept */
  cut(pj(dir, segname(0, ".log")), 56 + 30);
  CHECK_RC(klevdb_dir_recover(dir, &OPTS_TK, &err), KLEVDB_OK, err);
  CHECK(!exists(tmp));
  size_t l;
  uint8_t *p = slurp(pj(dir, segname(0, ".log")), &l);
  CHECK_EQ(l, 56);
  CHECK(p && l == 56 && memcmp(p, s.log.p, 56) == 0);
  free(p);
  rawseg_free(&s);
  rm_rf(dir);
}

/* Recover cannot fix a bad file header: error, files untouched. */
static void test_bad_header(void) {
  rawseg s;
  klevdb_error err;
  char *dir = two_records(&s, FMT_V2);
  const char *lp = pj(dir, segname(0, ".log"));
  uint8_t *cp = malloc(s.log.len);
  memcpy(cp, s.log.p, s.log.len);
  memcpy(cp, "badmagic", 8);
  spit(lp, cp, s.log.len);
  CHECK_RC(klevdb_dir_recover(dir, &OPTS_TK, &err), KLEVDB_ECORRUPT_LOG, err);
  CHECK_CONTAINS(err.msg, "klevdb: recover 0: log corrupted");
  size_t l;
  uint8_t *p = slurp(lp, &l);
  CHECK(p && l == s.log.len && memcmp(p, cp, l) == 0);
  free(p);
  p = slurp(pj(dir, segname(0, ".index")), &l);
  CHECK(p && l == s.idx.len && memcmp(p, s.idx.p, l) == 0);
  free(p);
  CHECK(!exists(pj(dir, segname(0, ".log.recover"))));
  CHECK_RC(klevdb_dir_check(dir, &OPTS_TK, &err), KLEVDB_ECORRUPT_LOG, err);
  /* A 3-byte log cannot hold a header either. */
  spit(lp, cp, 3);
  CHECK_RC(klevdb_dir_recover(dir, &OPTS_TK, &err), KLEVDB_ECORRUPT_LOG, err);
  CHECK_EQ(fsize(lp), 3);
  free(cp);
  rawseg_free(&s);
  rm_rf(dir);
}

/* Only the last segment is checked and recovered. */
static void test_last_segment_only(void) {
  rawseg a, b;
  klevdb_error err;
  rawseg_build(&a, FMT_V2, FMT_V2, TK, 0, 2, T0);
  rawseg_build(&b, FMT_V2, FMT_V2, TK, 2, 2, T0 + 5000);
  char *dir = tmpdir();
  spit(pj(dir, segname(0, ".log")), a.log.p, a.log.len - 1); /* damaged */
  spit(pj(dir, segname(0, ".index")), a.idx.p, a.idx.len);
  spit(pj(dir, segname(2, ".log")), b.log.p, b.log.len);
  spit(pj(dir, segname(2, ".index")), b.idx.p, b.idx.len);
  CHECK_RC(klevdb_dir_check(dir, &OPTS_TK, &err), KLEVDB_OK, err);
  CHECK_RC(klevdb_dir_recover(dir, &OPTS_TK, &err), KLEVDB_OK, err);
  CHECK_EQ(fsize(pj(dir, segname(0, ".log"))), a.log.len - 1);
  cut(pj(dir, segname(2, ".log")), (off_t)b.log.len - 1);
  CHECK_RC(klevdb_dir_check(dir, &OPTS_TK, &err), KLEVDB_ECORRUPT_LOG, err);
  CHECK_CONTAINS(err.msg, "klevdb: check 2: log corrupted: short data");
  CHECK_RC(klevdb_dir_recover(dir, &OPTS_TK, &err), KLEVDB_OK, err);
  CHECK_EQ(fsize(pj(dir, segname(2, ".log"))), b.rec_end[0]);
  CHECK_EQ(fsize(pj(dir, segname(2, ".index"))), 8 + 32);
  rawseg_free(&a);
  rawseg_free(&b);
  rm_rf(dir);
}

/* The Go fixture whose last log lost 10 bytes. */
static void test_torn_fixture(void) {
  klevdb_error err;
  char *dir = fixture_copy("v2-torn", "store");
  CHECK_RC(klevdb_dir_check(dir, &OPTS_TK, &err), KLEVDB_ECORRUPT_LOG, err);
  CHECK_CONTAINS(err.msg, "short data");
  CHECK_CONTAINS(err.msg, "klevdb: check 200: ");
  klevdb_stat st;
  CHECK_RC(klevdb_dir_stat(dir, &OPTS_TK, &st, &err), KLEVDB_OK, err);
  CHECK_EQ(st.segments, 3);
  CHECK_EQ(st.messages, 300);
  CHECK_EQ(st.size, 61838);
  CHECK_RC(klevdb_dir_recover(dir, &OPTS_TK, &err), KLEVDB_OK, err);
  char want[4096];
  snprintf(want, sizeof(want), "%s/v2-torn/store_recovered", fixtures);
  CHECK(same_dir(want, dir));
  CHECK_RC(klevdb_dir_check(dir, &OPTS_TK, &err), KLEVDB_OK, err);
  /* A second Recover has nothing to do. */
  CHECK_RC(klevdb_dir_recover(dir, &OPTS_TK, NULL), KLEVDB_OK, err);
  CHECK(same_dir(want, dir));
  rm_rf(dir);
}

static void test_missing_and_empty(void) {
  klevdb_error err;
  char *dir = tmpdir();
  const char *missing = pj(dir, "nope");
  CHECK_RC(klevdb_dir_recover(missing, &OPTS_TK, &err), KLEVDB_OK, err);
  CHECK_RC(klevdb_dir_recover(dir, &OPTS_TK, &err), KLEVDB_OK, err);
  CHECK_RC(klevdb_dir_check(missing, &OPTS_TK, &err), KLEVDB_OK, err);
  CHECK_RC(klevdb_dir_check(dir, NULL, &err), KLEVDB_OK, err);
  CHECK(!exists(missing));
  /* An empty log (V1 by definition) with an empty index is fine. */
  spit(pj(dir, segname(0, ".log")), "", 0);
  spit(pj(dir, segname(0, ".index")), "", 0);
  CHECK_RC(klevdb_dir_check(dir, &OPTS_TK, &err), KLEVDB_OK, err);
  CHECK_RC(klevdb_dir_recover(dir, &OPTS_TK, &err), KLEVDB_OK, err);
  CHECK_EQ(fsize(pj(dir, segname(0, ".log"))), 0);
  CHECK_EQ(fsize(pj(dir, segname(0, ".index"))), 0);
  /* A segment name that is not a number fails discovery. */
  spit(pj(dir, "foo.log"), "", 0);
  CHECK_RC(klevdb_dir_recover(dir, &OPTS_TK, &err), KLEVDB_EINVAL, err);
  CHECK(strncmp(err.msg, "klevdb: ", 8) == 0);
  rm_rf(dir);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s FIXTURES_DIR\n", argv[0]);
    return 2;
  }
  fixtures = argv[1];
  test_recover_table();
  test_recover_keeps_v1_index();
  test_recover_params_mismatch();
  test_torn_header();
  test_stale_recover();
  test_bad_header();
  test_last_segment_only();
  test_torn_fixture();
  test_missing_and_empty();
  chk_name = "test_recover";
  return check_done();
}
