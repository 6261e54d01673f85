/*
** follow_child.c - the writer and the C API follower of the follower test
** (follow_test.py).
**
**   follow_child writer DIR SECONDS
**       Opens DIR read-write (rollover 16KB, so there are many segments)
**       and, until SECONDS have passed, publishes batches and, between
**       them, trims, deletes ranges across segments, deletes single
**       offsets (Go's Delete), compacts updates and deletes, and gc's.
**       Prints "READY" once the first batch is there, then at the end
**       "writer ops=N publishes=N trims=N deletes=N compacts=N gcs=N",
**       and exits 1 on the first error.
**
**   follow_child reader DIR SECONDS
**       Opens DIR read-only and, until SECONDS have passed, reads it as a
**       follower: whole scans from the oldest message, gets by offset, by
**       key and by time, bounds and stat, and gc (segments load again). Every message read must be the
**       one content() gives for its offset, scans must climb. Prints
**       "reader queries=N errors=N" (and the first errors), exits 1 if
**       there was any error.
**
** content(o): key "k<o % 61>", value "v<o>-" and o % 40 letters, absent
** when o % 17 == 5 (a tombstone for compact deletes), time 1.7e15 + o ms.
*/
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <klevdb.h>

#define TIME_BASE INT64_C(1700000000000000)
#define KEEP 3000   /* the writer trims to about this many messages */

typedef struct content {
  char key[16], value[64];
  size_t key_len, value_len;
  int64_t time;
} content;

static void content_of(int64_t o, content *c) {
  c->key_len = (size_t)snprintf(c->key, sizeof(c->key), "k%d", (int)(o % 61));
  if (o % 17 == 5) {
    c->value_len = 0;
  } else {
    int n = snprintf(c->value, sizeof(c->value), "v%lld-", (long long)o);
    for (int i = 0; i < (int)(o % 40); i++) c->value[n++] = (char)('a' + o % 10);
    c->value_len = (size_t)n;
  }
  c->time = TIME_BASE + o * 1000;
}

static int matches(const klevdb_msg *m) {
  content c;
  content_of(m->offset, &c);
  return m->key_len == c.key_len && memcmp(m->key, c.key, c.key_len) == 0 &&
         m->value_len == c.value_len && (!c.value_len || memcmp(m->value, c.value, c.value_len) == 0) &&
         m->time == c.time;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng = 88172645463325252ULL;
static uint64_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}
static int64_t rnd_in(int64_t lo, int64_t hi) {   /* [lo, hi] */
  return hi <= lo ? lo : lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

/* ---- the writer ---- */

static void wdie(klevdb *db, const char *what) {
  fprintf(stderr, "follow_child writer: %s: %s\n", what, db ? klevdb_errmsg(db) : "");
  printf("writer FAILED %s\n", what);
  exit(1);
}

static int64_t publish(klevdb *db, int64_t next, size_t n) {
  content cs[64];
  klevdb_msg ms[64];
  for (size_t i = 0; i < n; i++) {
    content_of(next + (int64_t)i, &cs[i]);
    ms[i] = (klevdb_msg){.key = (const uint8_t *)cs[i].key, .key_len = cs[i].key_len,
                         .value = (const uint8_t *)cs[i].value, .value_len = cs[i].value_len,
                         .time = cs[i].time};
  }
  int64_t got;
  if (klevdb_publish(db, ms, n, &got)) wdie(db, "publish");
  if (got != next + (int64_t)n) wdie(NULL, "publish: wrong next offset");
  return got;
}

static int writer(const char *dir, double secs) {
  klevdb_options o = {.create_dirs = 1, .key_index = 1, .time_index = 1, .rollover = 16 << 10};
  klevdb_error e;
  klevdb *db;
  if (klevdb_open(dir, &o, &db, &e)) {
    fprintf(stderr, "follow_child writer: %s\n", e.msg);
    return 1;
  }
  int64_t next;
  if (klevdb_next_offset(db, &next)) wdie(db, "next offset");
  next = publish(db, next, 50);
  printf("READY\n");
  fflush(stdout);
  long ops = 0, pubs = 0, trims = 0, dels = 0, compacts = 0, gcs = 0;
  double end = now_s() + secs;
  while (now_s() < end) {
    klevdb_bounds b;
    if (klevdb_bounds_get(db, &b)) wdie(db, "bounds");
    int64_t oldest = b.oldest_offset < 0 ? next : b.oldest_offset;
    uint64_t r = rnd() % 100;
    klevdb_deleted d;
    if (r < 70 || next - oldest < 200) {
      next = publish(db, next, (size_t)rnd_in(1, 64));
      pubs++;
    } else if (r < 78) {
      int64_t before = next - KEEP > oldest ? next - KEEP : oldest + (next - oldest) / 8;
      if (klevdb_trim_by_offset(db, before, &d)) wdie(db, "trim");
      trims++;
    } else if (r < 88) {
      /* Ranges over several segments, now and then the newest messages. */
      klevdb_range rs[5];
      size_t n = (size_t)rnd_in(1, 4), k = 0;
      int64_t from = rnd_in(oldest, next - 1);
      for (size_t i = 0; i < n && from < next; i++) {
        int64_t to = from + rnd_in(1, 200);
        rs[k++] = (klevdb_range){from, to < next ? to : next};
        from = to + rnd_in(1, 1500);
      }
      if (rnd() % 5 == 0) rs[k++] = (klevdb_range){next - rnd_in(1, 10), next};
      if (klevdb_delete_ranges(db, rs, k, &d)) wdie(db, "delete ranges");
      dels++;
    } else if (r < 92) {
      int64_t offs[8];
      for (int i = 0; i < 8; i++) offs[i] = rnd_in(oldest, next - 1);
      if (klevdb_delete(db, offs, 8, &d, NULL)) {
        /* Go's Delete: an offset before the first segment is not found. */
        if (klevdb_errcode(db) != KLEVDB_ENOTFOUND) wdie(db, "delete");
      }
      dels++;
    } else if (r < 97) {
      int64_t before = TIME_BASE + rnd_in(oldest, next) * 1000;
      klevdb_err rc = r < 95 ? klevdb_compact_updates(db, before, &d)
                             : klevdb_compact_deletes(db, before, &d);
      if (rc) wdie(db, "compact");
      compacts++;
    } else {
      if (klevdb_gc(db, 0)) wdie(db, "gc");
      gcs++;
    }
    ops++;
    usleep(300);
  }
  klevdb_close(db);
  printf("writer ops=%ld publishes=%ld trims=%ld deletes=%ld compacts=%ld gcs=%ld next=%lld\n", ops,
         pubs, trims, dels, compacts, gcs, (long long)next);
  return 0;
}

/* ---- the C API follower ---- */

static long queries, errors;

static void rerr(klevdb *db, const char *what, klevdb_err rc) {
  errors++;
  if (errors <= 10)
    printf("reader error: %s: %s (%s)\n", what, klevdb_errname(rc), db ? klevdb_errmsg(db) : "");
}

static void bad(const char *fmt, long long a, long long b) {
  errors++;
  if (errors <= 10) {
    printf("reader error: ");
    printf(fmt, a, b);
    printf("\n");
  }
}

static int reader(const char *dir, double secs) {
  klevdb_options o = {.readonly = 1, .key_index = 1, .time_index = 1};
  klevdb_error e;
  klevdb *db;
  if (klevdb_open(dir, &o, &db, &e)) {
    printf("reader error: open: %s\nreader queries=0 errors=1\n", e.msg);
    return 1;
  }
  klevdb_batch bt = KLEVDB_BATCH_INIT;
  double end = now_s() + secs;
  long scans = 0;
  klevdb_err rc0;
  while (now_s() < end) {
    /* A whole scan, in batches: offsets climb, every message is content(). */
    int64_t at = KLEVDB_OFFSET_OLDEST, prev = -1;
    for (;;) {
      klevdb_err rc = klevdb_consume(db, at, 200, &bt);
      queries++;
      if (rc) {
        rerr(db, "consume", rc);
        break;
      }
      for (size_t i = 0; i < bt.len; i++) {
        if (bt.msgs[i].offset <= prev)
          bad("scan: offset %lld after %lld", (long long)bt.msgs[i].offset, (long long)prev);
        if (!matches(&bt.msgs[i]))
          bad("scan: offset %lld (after %lld) is not its content", (long long)bt.msgs[i].offset,
              (long long)prev);
        prev = bt.msgs[i].offset;
      }
      if (bt.len == 0) break;
      at = bt.next_offset;
    }
    scans++;
    /* Forget the mappings now and then: segments load again, maybe while
    ** the writer rewrites them. */
    if (scans % 4 == 0) {
      rc0 = klevdb_gc(db, 0);
      queries++;
      if (rc0) rerr(db, "gc", rc0);
    }
    klevdb_bounds b;
    klevdb_err rc = klevdb_bounds_get(db, &b);
    queries++;
    if (rc) {
      rerr(db, "bounds", rc);
      continue;
    }
    if (b.oldest_offset < 0) continue;
    for (int k = 0; k < 20; k++) {
      int64_t off = rnd_in(b.oldest_offset, b.next_offset - 1);
      rc = klevdb_get(db, off, &bt);
      queries++;
      if (rc == KLEVDB_OK) {
        if (bt.msgs[0].offset != off || !matches(&bt.msgs[0]))
          bad("get %lld: message %lld", (long long)off, (long long)bt.msgs[0].offset);
      } else if (rc != KLEVDB_ENOTFOUND && rc != KLEVDB_EINVALID_OFFSET) {
        rerr(db, "get", rc);
      }
      char key[16];
      int klen = snprintf(key, sizeof(key), "k%d", (int)(off % 61));
      rc = klevdb_get_by_key(db, key, (size_t)klen, &bt);
      queries++;
      if (rc == KLEVDB_OK) {
        if (bt.msgs[0].key_len != (size_t)klen || memcmp(bt.msgs[0].key, key, (size_t)klen) ||
            !matches(&bt.msgs[0]))
          bad("get by key k%lld: message %lld", (long long)(off % 61), (long long)bt.msgs[0].offset);
      } else if (rc != KLEVDB_ENOTFOUND) {
        rerr(db, "get by key", rc);
      }
      rc = klevdb_get_by_time(db, TIME_BASE + off * 1000, &bt);
      queries++;
      if (rc == KLEVDB_OK) {
        if (!matches(&bt.msgs[0]) || bt.msgs[0].time < TIME_BASE + off * 1000)
          bad("get by time of %lld: message %lld", (long long)off, (long long)bt.msgs[0].offset);
      } else if (rc != KLEVDB_ENOTFOUND && rc != KLEVDB_EINVALID_OFFSET) {
        rerr(db, "get by time", rc);
      }
    }
    klevdb_stat s;
    rc = klevdb_stat_get(db, &s);
    queries++;
    if (rc) rerr(db, "stat", rc);
  }
  klevdb_batch_free(&bt);
  klevdb_close(db);
  printf("reader queries=%ld errors=%ld scans=%ld\n", queries, errors, scans);
  return errors ? 1 : 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc == 4 && !strcmp(argv[1], "writer")) return writer(argv[2], atof(argv[3]));
  if (argc == 4 && !strcmp(argv[1], "reader")) return reader(argv[2], atof(argv[3]));
  fprintf(stderr, "usage: follow_child writer|reader DIR SECONDS\n");
  return 2;
}
