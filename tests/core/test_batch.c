/*
** test_batch.c - batches of several segments' worth: split into segments
** of their own, all or nothing across a crash in the middle of the commit,
** and trimmed a whole segment at a time.
*/
#include "check.h"
#include "kdb.h"

#define ROLL 4096   /* 23 records of SV2 bytes: a 100-record batch is > 4 rollovers */

static klevdb_options opts_small(void) {
  klevdb_options o = opts_tk();
  o.rollover = ROLL;
  return o;
}

static void test_split(void) {
  SECTION("split");
  char dir[256];
  tmp_dir(dir, sizeof(dir));
  klevdb_options o = opts_small();
  klevdb *db = OPEN(dir, &o);
  if (!db) return;
  PUBLISH(db, 0, 3, 0);                 /* a head with records... */
  PUBLISH_BATCH(db, 3, 100, 103);       /* ...then 100 records = 17,400 bytes */
  /* The head was rolled over first; the batch starts a segment at 3 and
  ** fills segments up to the rollover, as single publishes would. */
  CHECK(seg_exists(dir, 0, ".log"));
  CHECK(seg_exists(dir, 3, ".log"));
  int segs = count_ext(dir, ".log");
  CHECK(segs >= 5);
  CHECK_EQ(count_ext(dir, ".batch"), 0);
  int64_t offs[200];
  CHECK_EQ(CONSUME_ALL(db, 7, offs, 200), 103);
  for (int i = 0; i < 103; i++) CHECK_EQ(offs[i], i);
  for (int i = 0; i < 103; i += 17) GET_EXPECT(db, i, i, i);
  CHECK_STAT(db, segs, 103, 103 * gen_size(db) + 16 * segs);
  /* Every sealed segment of the batch is within a record of the rollover. */
  DIR *d = opendir(dir);
  struct dirent *de;
  while (d && (de = readdir(d)) != NULL) {
    size_t len = strlen(de->d_name);
    if (len > 4 && strcmp(de->d_name + len - 4, ".log") == 0)
      CHECK(seg_size(dir, strtoll(de->d_name, NULL, 10), ".log") <= ROLL + SV2);
  }
  if (d) closedir(d);
  PUBLISH(db, 103, 2, 103);             /* small publishes go on in the head */
  CHECK_EQ(count_ext(dir, ".log"), segs);
  klevdb_batch b = KLEVDB_BATCH_INIT;
  char key[16];
  snprintf(key, sizeof(key), "%10d", 50);
  CHECK_DBOK(db, klevdb_get_by_key(db, key, 10, &b));
  CHECK_EQ(b.len ? b.msgs[0].offset : -1, 50);
  CHECK_DBOK(db, klevdb_get_by_time(db, TI(80), &b));
  CHECK_EQ(b.len ? b.msgs[0].offset : -1, 80);
  klevdb_batch_free(&b);
  CHECK_OK(klevdb_close(db));
  db = OPEN(dir, &o);
  if (db) {
    CHECK_NEXT(db, 105);
    CHECK_EQ(CONSUME_ALL(db, 100, offs, 200), 105);
    /* Trimming the batch's old part drops whole segments. */
    int before = count_ext(dir, ".log");
    klevdb_deleted del;
    CHECK_DBOK(db, klevdb_trim_by_offset(db, 60, &del));
    CHECK_EQ(del.count, 60);
    CHECK(count_ext(dir, ".log") < before);
    CHECK_EQ(CONSUME_ALL(db, 100, offs, 200), 45);
    CHECK_EQ(offs[0], 60);
    CHECK_OK(klevdb_close(db));
  }
  rm_rf(dir);
}

/* A commit cut short by a crash: the marker is there, some segments were
** renamed, some not. The next open puts the store back as before. */
static void test_crash(int renamed) {
  SECTION("crash in the commit");
  char dir[256];
  tmp_dir(dir, sizeof(dir));
  klevdb_options o = opts_small();
  klevdb *db = OPEN(dir, &o);
  if (!db) return;
  PUBLISH(db, 0, 10, 0);
  CHECK_OK(klevdb_close(db));

  /* Write a 100-record batch at offset 10 by hand, as publish would (its
  ** first segment replaces the empty head a rollover makes at 10). */
  tmsg *t = calloc(100, sizeof(*t));
  klevdb_msg *m = calloc(100, sizeof(*m));
  for (int k = 0; k < 100; k++) {
    gen(&t[k], 10 + k);
    m[k] = t[k].m;
  }
  int64_t last_ts = 0, *bases = NULL;
  size_t nb = 0;
  klevdb_error e;
  CHECK_OK(batch_write(dir, FMT_V2, IDX_TIMES | IDX_KEYS, ROLL, m, 100, 10, T0, &last_ts,
                       false, &bases, &nb, &e));
  CHECK(nb >= 4);
  char path[512], from[600];
  snprintf(path, sizeof(path), "%s/.batch", dir);
  FILE *f = fopen(path, "w");
  for (size_t i = 0; f && i < nb; i++) fprintf(f, "%lld\n", (long long)bases[i]);
  if (f) fclose(f);
  for (int i = 0; i < renamed && (size_t)i < nb; i++) {
    const char *ext[2] = {".index", ".log"};
    for (int k = 0; k < 2; k++) {
      seg_name(path, sizeof(path), dir, bases[i], ext[k]);
      snprintf(from, sizeof(from), "%s.batch", path);
      CHECK(rename(from, path) == 0);
    }
  }
  free(bases);
  free(t);
  free(m);

  db = OPEN(dir, &o);
  if (db) {
    CHECK_NEXT(db, 10);
    int64_t offs[200];
    CHECK_EQ(CONSUME_ALL(db, 100, offs, 200), 10);
    CHECK_EQ(count_ext(dir, ".batch"), 0);
    CHECK(!seg_exists(dir, 10, ".log") || seg_size(dir, 10, ".log") <= 8);
    PUBLISH(db, 10, 2, 10);
    CHECK_EQ(CONSUME_ALL(db, 100, offs, 200), 12);
    CHECK_OK(klevdb_close(db));
  }
  rm_rf(dir);
}

int main(void) {
  chk_name = "test_batch";
  test_split();
  test_crash(0);
  test_crash(1);
  test_crash(3);
  return check_done();
}
