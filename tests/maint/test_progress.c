/*
** test_progress.c - klevdb_options.progress: every long operation (backup,
** trims, compactions, finders, recover, migrate) reports done of total with
** done climbing, ends at done == total, and reports rarely (not per batch).
*/
#include <time.h>

#include "util.h"

/* What one operation reported. */
typedef struct calls {
  int n, bad;
  int64_t done, total;
} calls;

static void on_progress(void *arg, int64_t done, int64_t total) {
  calls *c = arg;
  if (done < 0 || done > total || total <= 0) c->bad++;
  if (c->n && (done <= c->done || total != c->total)) c->bad++;
  c->n++;
  c->done = done;
  c->total = total;
}

static void reset(calls *c) { memset(c, 0, sizeof(*c)); }

/* The calls of one finished operation: at least `min` of them, each later
** one further on, the last one at the end. */
#define CHECK_CALLS(c, min, max)                                               \
  do {                                                                         \
    CHECK((c).n >= (min));                                                     \
    CHECK((c).n <= (max));                                                     \
    CHECK_EQ((c).bad, 0);                                                      \
    CHECK_EQ((c).done, (c).total);                                             \
  } while (0)

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* 5000 messages over 50 keys, in small segments. */
static klevdb *fill(const char *dir, calls *c, int64_t *segments) {
  klevdb_options o = {.create_dirs = 1, .key_index = 1, .time_index = 1,
                      .rollover = 8192, .progress = on_progress, .progress_arg = c};
  klevdb *db;
  klevdb_error err;
  CHECK_RC(klevdb_open(dir, &o, &db, &err), KLEVDB_OK, err);
  if (!db) exit(1);
  int64_t t0 = now_us() - 10 * 1000000;
  for (int i = 0; i < 5000; i += 100) {
    char keys[100][16], vals[100][32];
    klevdb_msg m[100];
    for (int j = 0; j < 100; j++) {
      int k = i + j;
      int kl = snprintf(keys[j], sizeof(keys[j]), "key-%d", k % 50);
      int vl = snprintf(vals[j], sizeof(vals[j]), "value-%d", k);
      m[j] = (klevdb_msg){.time = t0 + k, .key = (const uint8_t *)keys[j], .key_len = (size_t)kl,
                          .value = (const uint8_t *)vals[j], .value_len = (size_t)vl};
    }
    klevdb_err rc = klevdb_publish(db, m, 100, NULL);
    CHECK_EQ(rc, KLEVDB_OK);
  }
  klevdb_stat st;
  CHECK_EQ(klevdb_stat_get(db, &st), KLEVDB_OK);
  CHECK(st.segments > 10);
  *segments = st.segments;
  return db;
}

static void test_store_ops(void) {
  char *dir = tmpdir(), *bak = tmpdir();
  calls c;
  reset(&c);
  int64_t segs;
  klevdb *db = fill(pj(dir, "s"), &c, &segs);
  CHECK_EQ(c.n, 0);   /* publish is not a long operation */

  fprintf(stderr, "-- backup (%lld segments)\n", (long long)segs);
  reset(&c);
  CHECK_EQ(klevdb_backup(db, pj(bak, "b")), KLEVDB_OK);
  CHECK_CALLS(c, segs + 1, segs + 1);
  CHECK_EQ(c.total, segs);

  fprintf(stderr, "-- finder\n");
  reset(&c);
  int64_t *offs;
  size_t n;
  CHECK_EQ(klevdb_find_offsets(db, KLEVDB_FIND_UPDATES, now_us(), &offs, &n), KLEVDB_OK);
  CHECK_EQ(n, 4950);
  free(offs);
  CHECK_CALLS(c, 3, 8);
  CHECK_EQ(c.total, 5000);

  fprintf(stderr, "-- trim by count\n");
  reset(&c);
  klevdb_deleted del;
  CHECK_EQ(klevdb_trim_by_count(db, 4000, &del), KLEVDB_OK);
  CHECK_EQ(del.count, 1000);
  CHECK_CALLS(c, 3, 8);
  CHECK_EQ(c.total, 2 * 5000);

  fprintf(stderr, "-- compact updates\n");
  reset(&c);
  CHECK_EQ(klevdb_compact_updates(db, now_us(), &del), KLEVDB_OK);
  CHECK_EQ(del.count, 3950);
  /* The scan of 4000 offsets reports every 1024 at most, not per batch. */
  CHECK_CALLS(c, 4, 8);
  CHECK_EQ(c.total, 2 * 4000);

  fprintf(stderr, "-- compact deletes (nothing to do)\n");
  reset(&c);
  CHECK_EQ(klevdb_compact_deletes(db, now_us(), &del), KLEVDB_OK);
  CHECK_EQ(del.count, 0);
  CHECK_CALLS(c, 2, 8);

  fprintf(stderr, "-- trim by offset\n");
  reset(&c);
  CHECK_EQ(klevdb_trim_by_offset(db, 4990, &del), KLEVDB_OK);
  CHECK_EQ(del.count, 40);
  CHECK_CALLS(c, 3, 3);

  fprintf(stderr, "-- trim by age, size (empty result)\n");
  reset(&c);
  CHECK_EQ(klevdb_trim_by_age(db, 0, &del), KLEVDB_OK);
  CHECK_EQ(del.count, 0);
  CHECK_CALLS(c, 2, 3);
  reset(&c);
  CHECK_EQ(klevdb_trim_by_size(db, 1 << 30, &del), KLEVDB_OK);
  CHECK_CALLS(c, 2, 3);

  /* A read-only handle fails before deleting: no call says it is done. */
  klevdb_options ro = {.readonly = 1, .key_index = 1, .time_index = 1,
                       .progress = on_progress, .progress_arg = &c};
  klevdb *rdb;
  klevdb_error err;
  CHECK_RC(klevdb_open(pj(bak, "b"), &ro, &rdb, &err), KLEVDB_OK, err);
  reset(&c);
  CHECK_EQ(klevdb_trim_by_count(rdb, 10, &del), KLEVDB_EREADONLY);
  CHECK(c.n >= 1);
  CHECK(c.done < c.total);
  klevdb_close(rdb);
  klevdb_close(db);

  /* Stores without a callback (all the other tests) are unaffected. */
  klevdb_options plain = {.key_index = 1, .time_index = 1};
  CHECK_RC(klevdb_open(pj(bak, "b"), &plain, &db, &err), KLEVDB_OK, err);
  CHECK_EQ(klevdb_trim_by_count(db, 10, &del), KLEVDB_OK);
  CHECK_EQ(del.count, 4990);
  klevdb_close(db);

  rm_rf(dir);
  rm_rf(bak);
}

static void test_dir_ops(void) {
  char *dir = tmpdir();
  calls c;
  reset(&c);
  int64_t segs;
  klevdb *db = fill(dir, &c, &segs);
  klevdb_close(db);
  klevdb_options o = {.key_index = 1, .time_index = 1, .progress = on_progress,
                      .progress_arg = &c};
  klevdb_error err;

  fprintf(stderr, "-- migrate to v1 and back\n");
  reset(&c);
  CHECK_RC(klevdb_dir_migrate(dir, &o, KLEVDB_V1, &err), KLEVDB_OK, err);
  CHECK_CALLS(c, segs + 1, segs + 1);
  CHECK_EQ(c.total, segs);
  reset(&c);
  CHECK_RC(klevdb_dir_migrate(dir, &o, KLEVDB_V2, &err), KLEVDB_OK, err);
  CHECK_CALLS(c, segs + 1, segs + 1);

  fprintf(stderr, "-- recover a torn tail\n");
  const char *last = NULL;
  for (int64_t base = 5000; base >= 0 && !last; base--)
    if (exists(pj(dir, segname(base, ".log")))) last = pj(dir, segname(base, ".log"));
  CHECK(last != NULL);
  if (last) cut(last, (off_t)fsize(last) - 3);
  reset(&c);
  CHECK_RC(klevdb_dir_recover(dir, &o, &err), KLEVDB_OK, err);
  CHECK_CALLS(c, 2, 2);
  CHECK_EQ(c.total, 1);

  /* Nothing to do: no calls at all, and no crash. */
  char *empty = tmpdir();
  reset(&c);
  CHECK_RC(klevdb_dir_recover(empty, &o, &err), KLEVDB_OK, err);
  CHECK_RC(klevdb_dir_migrate(empty, &o, KLEVDB_V2, &err), KLEVDB_OK, err);
  CHECK_EQ(c.n, 0);
  rm_rf(empty);
  rm_rf(dir);
}

int main(int argc, char **argv) {
  fixtures = argc > 1 ? argv[1] : ".";
  test_store_ops();
  test_dir_ops();
  chk_name = "test_progress";
  return check_done();
}
