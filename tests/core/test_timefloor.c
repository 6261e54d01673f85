/*
** test_timefloor.c - klevdb_time_floor against its definition, the smallest
** offset before which every message is older, on stores of many segments
** whose times go backwards within and across segments, before and after
** deletes and a reopen.
*/
#include <stdbool.h>

#include "check.h"

#define N 3000

static int64_t times[N];
static bool gone[N];

/* The definition, by brute force over what the store holds. */
static int64_t floor_brute(int64_t t, int64_t next) {
  for (int i = 0; i < N; i++)
    if (!gone[i] && times[i] >= t) return i;
  return next;
}

static void check_floors(klevdb *db, const char *what) {
  int bad = 0;
  uint64_t r = 7;
  for (int k = 0; k < 400; k++) {
    r = r * 6364136223846793005ULL + 1442695040888963407ULL;
    int64_t t = T0 + (int64_t)(r >> 33) % (int64_t)(N * 1000000LL + 2000000) - 1000000;
    int64_t got = -1;
    if (klevdb_time_floor(db, t, &got) != KLEVDB_OK || got != floor_brute(t, N)) {
      if (bad++ < 5)
        chk_report(0, __FILE__, __LINE__, "%s: time floor of %lld: got %lld, want %lld", what,
                   (long long)t, (long long)got, (long long)floor_brute(t, N));
    }
  }
  CHECK_EQ(bad, 0);
}

int main(void) {
  SECTION("time floor");
  char dir[256];
  tmp_dir(dir, sizeof dir);
  klevdb_options o = opts_tk();
  o.rollover = 4096;   /* about 23 messages a segment: 130 segments */
  klevdb *db = OPEN(dir, &o);
  if (!db) return check_done();
  uint64_t r = 1;
  for (int i = 0; i < N; i++) {
    r = r * 6364136223846793005ULL + 1442695040888963407ULL;
    /* Mostly rising, now and then a jump back of up to 200 s. */
    times[i] = TI(i) - ((r >> 40) % 10 == 0 ? (int64_t)((r >> 20) % 200) * 1000000 : 0);
    tmsg t;
    gen(&t, i);
    t.m.time = times[i];
    CHECK_DBOK(db, klevdb_publish(db, &t.m, 1, NULL));
  }
  check_floors(db, "published");
  /* Deletes rewrite segments, whose index times are clamped anew. */
  int64_t del[200];
  for (int i = 0; i < 200; i++) {
    del[i] = 1500 + i * 3;
    gone[del[i]] = true;
  }
  int64_t left = 200;
  for (int round = 0; round < 40 && left > 0; round++) {
    klevdb_deleted d;
    CHECK_DBOK(db, klevdb_delete(db, del + (200 - left), (size_t)left, &d, NULL));
    left -= d.count;
  }
  CHECK_EQ(left, 0);
  check_floors(db, "after deletes");
  CHECK_OK(klevdb_close(db));
  db = OPEN(dir, &o);
  if (db) {
    check_floors(db, "reopened");
    CHECK_OK(klevdb_close(db));
  }
  o.readonly = 1;
  db = OPEN(dir, &o);
  if (db) {
    check_floors(db, "read-only");
    CHECK_OK(klevdb_close(db));
  }
  rm_rf(dir);
  return check_done();
}
