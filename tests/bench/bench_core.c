/*
** bench_core.c - performance benchmark of the libklevdb core store.
**
** Workloads follow Go klevdb's own benchmarks: 10-byte keys ("%10d"),
** 128-byte values, message times 1 ms apart.
**
**   publish   batches of 1 and 8, no index / time / key / both indexes,
**             into a fresh store each (1 MiB rollover); both indexes again
**             with the preallocate option (the layout with room ahead)
**   consume   1 and 8 at a time over a whole store (both indexes) on the
**             writer handle, a reopened read-write and a reopened read-only
**             store
**   get       by offset / key / time, in log order (Go's workload) and at
**             random places, on a store of --rows
**             messages in >= 64 segments
**   open      klevdb_open + first klevdb_get, in ms
**   memory    heap bytes per message once every segment and the key
**             tables are loaded
**   latency   p50, p99, p99.9 and max of publish batch 1 (both indexes,
**             the default layout, then preallocate's): alone, beside 3
**             reader threads, and (default layout) while another thread
**             trims the oldest half of the get store; publish to visible
**             for a read-only follower in another process; and what a
**             system call and a small pwrite() cost on this machine today
**
** Usage: bench_core [--rows N] [--dir PATH] [--quick] [--keep]
**                   [--min-time SECS] [--only trim]
**
** Every call is checked; any error aborts with exit code 1. Missed goals are
** reported (MISS) but do not change the exit code.
*/
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "klevdb.h"

#define KEY_LEN 10
#define VALUE_LEN 128
#define KEY_MOD 100000 /* the get-by-key store repeats keys i % KEY_MOD */
#define TIME_BASE_US INT64_C(1672531200000000) /* 2023-01-01T00:00:00Z */
#define TIME_STEP_US INT64_C(1000)             /* 1 ms apart */

/* ------------------------------------------------------------------ */
/* Configuration and helpers                                           */

static int64_t g_rows = 1000000;
static int g_quick = 0;
static int g_keep = 0;
static int g_only_trim = 0; /* --only trim: the publish latency rows alone, then the trim's */
static double g_min_secs = 0.2;
static char g_root[4096];
static int g_root_is_tmp = 0;
static uint8_t g_value[VALUE_LEN];
static int64_t g_big_rollover = 0;

static void cleanup_root(void);

static void die(const char *fmt, ...) {
  va_list ap;
  fflush(stdout);
  fprintf(stderr, "bench_core: ERROR: ");
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n");
  cleanup_root();
  exit(1);
}

static void progress(const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "bench_core: ");
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n");
}

/* Checks a handle call. */
#define CHECK(db, call)                                                     \
  do {                                                                      \
    klevdb_err rc_ = (call);                                                \
    if (rc_ != KLEVDB_OK)                                                   \
      die("%s:%d: %s failed: %s (%s)", __FILE__, __LINE__, #call,           \
          klevdb_errname(rc_), (db) ? klevdb_errmsg(db) : "?");             \
  } while (0)

static double now_sec(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static void rng_seed(uint64_t s) { g_rng = s ? s : 0x9E3779B97F4A7C15ull; }
static inline uint64_t xorshift64(void) {
  uint64_t x = g_rng;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  g_rng = x;
  return x;
}

static void fmt_key(char out[KEY_LEN + 1], int64_t i) {
  int n = snprintf(out, KEY_LEN + 1, "%10" PRId64, i);
  if (n != KEY_LEN) die("key %" PRId64 " does not fit in %d bytes", i, KEY_LEN);
}

static int rm_cb(const char *path, const struct stat *sb, int flag,
                 struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  if (remove(path) != 0 && errno != ENOENT)
    fprintf(stderr, "bench_core: warning: remove %s: %s\n", path,
            strerror(errno));
  return 0;
}

static void rm_rf(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) return;
  nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void sub_path(char *out, size_t cap, const char *name) {
  int n = snprintf(out, cap, "%s/%s", g_root, name);
  if (n < 0 || (size_t)n >= cap) die("path too long: %s/%s", g_root, name);
}

static int g_cleaned = 0;
static const char *g_subdirs[64];
static int g_nsubdirs = 0;

static void track_subdir(const char *name) {
  for (int i = 0; i < g_nsubdirs; i++)
    if (strcmp(g_subdirs[i], name) == 0) return;
  if (g_nsubdirs < 64) g_subdirs[g_nsubdirs++] = name;
}

static void cleanup_root(void) {
  if (g_cleaned || !g_root[0] || g_keep) return;
  g_cleaned = 1;
  if (g_root_is_tmp) {
    rm_rf(g_root);
  } else {
    char p[4200];
    for (int i = 0; i < g_nsubdirs; i++) {
      sub_path(p, sizeof p, g_subdirs[i]);
      rm_rf(p);
    }
  }
}

/* Fresh store directory g_root/name (removed first if present). */
static void fresh_dir(char *out, size_t cap, const char *name) {
  sub_path(out, cap, name);
  rm_rf(out);
  track_subdir(name);
}

/* klevdb_options.preallocate of the stores open_store opens. */
static int g_preallocate;

static klevdb *open_store(const char *dir, int key_index, int time_index,
                          int readonly, int64_t rollover) {
  klevdb_options o;
  memset(&o, 0, sizeof o);
  o.create_dirs = 1;
  o.preallocate = g_preallocate;
  o.readonly = readonly;
  o.key_index = key_index;
  o.time_index = time_index;
  o.rollover = rollover;
  klevdb *db = NULL;
  klevdb_error e;
  memset(&e, 0, sizeof e);
  klevdb_err rc = klevdb_open(dir, &o, &db, &e);
  if (rc != KLEVDB_OK)
    die("klevdb_open(%s) failed: %s (%s)", dir, klevdb_errname(rc), e.msg);
  if (!db) die("klevdb_open(%s) returned OK but no handle", dir);
  return db;
}

static void close_store(klevdb *db) {
  klevdb_err rc = klevdb_close(db);
  if (rc != KLEVDB_OK) die("klevdb_close failed: %s", klevdb_errname(rc));
}

/* ------------------------------------------------------------------ */
/* Message generation                                                  */

/* n messages starting at message number first; keys "%10d" of
** (i % key_mod) (key_mod <= 0: of i); times TIME_BASE + i ms. keybuf holds
** n * KEY_LEN bytes. */
static void gen_msgs(klevdb_msg *m, char *keybuf, int64_t first, size_t n,
                     int64_t key_mod) {
  char k[KEY_LEN + 1];
  for (size_t j = 0; j < n; j++) {
    int64_t i = first + (int64_t)j;
    fmt_key(k, key_mod > 0 ? i % key_mod : i);
    memcpy(keybuf + j * KEY_LEN, k, KEY_LEN);
    m[j].offset = 0;
    m[j].time = TIME_BASE_US + i * TIME_STEP_US;
    m[j].key = (const uint8_t *)(keybuf + j * KEY_LEN);
    m[j].key_len = KEY_LEN;
    m[j].value = g_value;
    m[j].value_len = VALUE_LEN;
  }
}

/* ------------------------------------------------------------------ */
/* Results table                                                       */

typedef struct row {
  char name[64];
  double ns_op;    /* < 0: n/a */
  char value[32];  /* msgs/s, or ms, or bytes/msg */
  char goal[48];   /* "<= 1000 ns PASS" or "" */
} row;

static row g_rows_out[64];
static int g_nrows = 0;
static int g_misses = 0;

static row *add_row(const char *name) {
  if (g_nrows >= 64) die("too many result rows");
  row *r = &g_rows_out[g_nrows++];
  memset(r, 0, sizeof *r);
  snprintf(r->name, sizeof r->name, "%s", name);
  r->ns_op = -1;
  return r;
}

static void set_goal(row *r, double measured, double limit, const char *unit) {
  int pass = measured <= limit;
  if (!pass) g_misses++;
  /* Cut to fit: the column is for reading, not for parsing. */
  if (snprintf(r->goal, sizeof r->goal, "<= %g %s %s", limit, unit, pass ? "PASS" : "MISS") < 0)
    r->goal[0] = 0;
}

static void rate_row(const char *name, double ns_per_msg, double goal_ns) {
  row *r = add_row(name);
  r->ns_op = ns_per_msg;
  snprintf(r->value, sizeof r->value, "%.0f", 1e9 / ns_per_msg);
  if (goal_ns > 0) set_goal(r, ns_per_msg, goal_ns, "ns");
  progress("%-40s %10.1f ns/op", name, ns_per_msg);
}

static void print_table(void) {
  printf("\n%-40s %12s %16s  %s\n", "workload", "ns/op", "msgs/s|ms|B/msg",
         "goal");
  for (int i = 0; i < 40 + 1 + 12 + 1 + 16 + 2 + 24; i++) putchar('-');
  putchar('\n');
  for (int i = 0; i < g_nrows; i++) {
    row *r = &g_rows_out[i];
    char ns[32];
    if (r->ns_op >= 0)
      snprintf(ns, sizeof ns, "%.1f", r->ns_op);
    else
      snprintf(ns, sizeof ns, "-");
    printf("%-40s %12s %16s  %s\n", r->name, ns, r->value, r->goal);
  }
  printf("\nns/op is per message for publish and consume\n");
}

/* ------------------------------------------------------------------ */
/* Publish                                                             */

static const char *index_name(int key, int time) {
  if (key && time) return "both";
  if (key) return "key";
  if (time) return "time";
  return "none";
}

/* Publishes n messages in batches of bs into a fresh store; returns the
** open writer handle if keep_open, else closes it. */
static klevdb *bench_publish(const char *dirname, int key, int time,
                             size_t bs, int64_t n, int keep_open) {
  char dir[4200];
  fresh_dir(dir, sizeof dir, dirname);
  klevdb_msg *msgs = malloc((size_t)n * sizeof *msgs);
  char *keys = malloc((size_t)n * KEY_LEN);
  if (!msgs || !keys) die("out of memory");
  gen_msgs(msgs, keys, 0, (size_t)n, 0);

  klevdb *db = open_store(dir, key, time, 0, 0);
  int64_t next = -1;
  double t0 = now_sec();
  for (int64_t i = 0; i < n; i += (int64_t)bs) {
    size_t cnt = (size_t)(n - i) < bs ? (size_t)(n - i) : bs;
    CHECK(db, klevdb_publish(db, msgs + i, cnt, &next));
    if (next != i + (int64_t)cnt)
      die("publish: next offset %" PRId64 ", want %" PRId64, next,
          i + (int64_t)cnt);
  }
  double dt = now_sec() - t0;

  klevdb_stat st;
  CHECK(db, klevdb_stat_get(db, &st));
  if (st.messages != n)
    die("publish: store has %" PRId64 " messages, want %" PRId64, st.messages,
        n);

  char name[64];
  snprintf(name, sizeof name, "publish batch %zu index %s%s", bs,
           index_name(key, time), g_preallocate ? ", preallocate" : "");
  double goal = 0;
  if (key && time) goal = bs == 1 ? 1000 : bs == 8 ? 350 : 0;
  rate_row(name, dt * 1e9 / (double)n, goal);

  free(msgs);
  free(keys);
  if (keep_open) return db;
  close_store(db);
  rm_rf(dir);
  return NULL;
}

/* ------------------------------------------------------------------ */
/* Consume                                                             */

/* One pass over the whole store [0, n); verifies offsets and sizes. */
static void consume_pass(klevdb *db, int64_t n, size_t max, klevdb_batch *b) {
  int64_t off = 0;
  while (off < n) {
    CHECK(db, klevdb_consume(db, off, max, b));
    if (b->len == 0 || b->len > max)
      die("consume(%" PRId64 ", %zu) returned %zu messages", off, max, b->len);
    const klevdb_msg *m = b->msgs;
    if (m[0].offset != off || m[b->len - 1].offset != off + (int64_t)b->len - 1)
      die("consume(%" PRId64 ") returned offsets %" PRId64 "..%" PRId64, off,
          m[0].offset, m[b->len - 1].offset);
    if (m[0].key_len != KEY_LEN || m[0].value_len != VALUE_LEN)
      die("consume(%" PRId64 ") returned key/value of %zu/%zu bytes", off,
          m[0].key_len, m[0].value_len);
    if (b->next_offset != off + (int64_t)b->len)
      die("consume(%" PRId64 "): next_offset %" PRId64 ", want %" PRId64, off,
          b->next_offset, off + (int64_t)b->len);
    off = b->next_offset;
  }
}

static void bench_consume(klevdb *db, const char *state, int64_t n, size_t max) {
  klevdb_batch b = KLEVDB_BATCH_INIT;
  int64_t msgs = 0;
  double t0 = now_sec(), dt;
  do {
    consume_pass(db, n, max, &b);
    msgs += n;
    dt = now_sec() - t0;
  } while (dt < g_min_secs);
  klevdb_batch_free(&b);
  char name[64];
  snprintf(name, sizeof name, "consume %zu %s", max, state);
  rate_row(name, dt * 1e9 / (double)msgs, max == 1 ? 150 : 80);
}

/* ------------------------------------------------------------------ */
/* Big store: get, open, memory                                        */

static int64_t key_newest_offset(int64_t k, int64_t rows) {
  /* the largest i < rows with i % KEY_MOD == k */
  return k + KEY_MOD * ((rows - 1 - k) / KEY_MOD);
}

static void build_big(const char *dir, int64_t rows, int64_t rollover) {
  klevdb *db = open_store(dir, 1, 1, 0, rollover);
  enum { CHUNK = 1024 };
  static klevdb_msg msgs[CHUNK];
  static char keys[CHUNK * KEY_LEN];
  int64_t next = -1;
  double t0 = now_sec();
  for (int64_t i = 0; i < rows; i += CHUNK) {
    size_t cnt = (size_t)(rows - i) < CHUNK ? (size_t)(rows - i) : CHUNK;
    gen_msgs(msgs, keys, i, cnt, KEY_MOD);
    for (size_t j = 0; j < cnt; j += 8) {
      size_t c = cnt - j < 8 ? cnt - j : 8;
      CHECK(db, klevdb_publish(db, msgs + j, c, &next));
      if (next != i + (int64_t)(j + c))
        die("publish: next offset %" PRId64 ", want %" PRId64, next,
            i + (int64_t)(j + c));
    }
  }
  double dt = now_sec() - t0;
  klevdb_stat st;
  CHECK(db, klevdb_stat_get(db, &st));
  if (st.messages != rows)
    die("big store has %" PRId64 " messages, want %" PRId64, st.messages, rows);
  progress("built store: %" PRId64 " messages, %" PRId64
           " segments, %.1f MB, rollover %" PRId64 " B, %.2f s",
           st.messages, st.segments, (double)st.size / 1e6, rollover, dt);
  if (st.segments < 64) {
    if (rows >= 10000)
      die("big store has only %" PRId64 " segments (want >= 64)", st.segments);
    progress("warning: only %" PRId64 " segments (too few rows for 64)",
             st.segments);
  }
  close_store(db);
}

static void check_get(klevdb *db, klevdb_batch *b, int64_t want,
                      const char *what) {
  if (b->len < 1) die("%s: empty batch", what);
  if (b->msgs[0].offset != want)
    die("%s: got offset %" PRId64 ", want %" PRId64, what, b->msgs[0].offset,
        want);
  if (b->msgs[0].key_len != KEY_LEN || b->msgs[0].value_len != VALUE_LEN)
    die("%s: key/value of %zu/%zu bytes", what, b->msgs[0].key_len,
        b->msgs[0].value_len);
  (void)db;
}

enum get_kind { GET_OFFSET, GET_KEY, GET_TIME };

typedef struct get_ctx {
  klevdb *db;
  int64_t rows;
  const char *keys;    /* GET_KEY: nkeys keys of KEY_LEN bytes */
  const int64_t *want; /* GET_KEY: newest offset of each key */
  int64_t nkeys;
} get_ctx;

/* Gets for at least g_min_secs; returns ns per get. Every result is checked
** against the offset it must have. seq: in log order, as Go klevdb's own
** benchmarks do (Get(i), GetByKey(msgs[i].Key), GetByTime(msgs[i].Time));
** otherwise at random places. */
static double run_gets(const get_ctx *c, enum get_kind kind, uint64_t seed, bool seq) {
  klevdb *db = c->db;
  klevdb_batch b = KLEVDB_BATCH_INIT;
  uint64_t span = (uint64_t)((c->rows - 1) * TIME_STEP_US) + 1;
  rng_seed(seed);
  int64_t ops = 0;
  uint64_t n = 0;
  double t0 = now_sec(), dt;
  do {
    for (int j = 0; j < 1024; j++, n++) {
      int64_t want;
      uint64_t r = seq ? n : xorshift64();
      switch (kind) {
      case GET_OFFSET:
        want = (int64_t)(r % (uint64_t)c->rows);
        CHECK(db, klevdb_get(db, want, &b));
        if (b.len != 1 || b.msgs[0].offset != want)
          check_get(db, &b, want, "get");
        break;
      case GET_KEY: {
        int64_t i = (int64_t)(r % (uint64_t)c->nkeys);
        const char *k = c->keys + i * KEY_LEN;
        want = c->want[i];
        CHECK(db, klevdb_get_by_key(db, k, KEY_LEN, &b));
        if (b.len != 1 || b.msgs[0].offset != want ||
            b.msgs[0].key_len != KEY_LEN ||
            memcmp(b.msgs[0].key, k, KEY_LEN) != 0) {
          check_get(db, &b, want, "get_by_key");
          die("get_by_key: wrong key returned for key %" PRId64, i);
        }
        break;
      }
      case GET_TIME: {
        int64_t dtus = seq ? (int64_t)(r % (uint64_t)c->rows) * TIME_STEP_US
                           : (int64_t)(r % span);
        want = (dtus + TIME_STEP_US - 1) / TIME_STEP_US;
        CHECK(db, klevdb_get_by_time(db, TIME_BASE_US + dtus, &b));
        if (b.len != 1 || b.msgs[0].offset != want)
          check_get(db, &b, want, "get_by_time");
        break;
      }
      }
    }
    ops += 1024;
    dt = now_sec() - t0;
  } while (dt < g_min_secs);
  check_get(db, &b, b.msgs[0].offset, "get");
  klevdb_batch_free(&b);
  return dt * 1e9 / (double)ops;
}

/* One warm-up run (faults in the maps, fills caches), then the timed run. */
static double bench_gets(const get_ctx *c, enum get_kind kind, const char *name,
                         double goal_ns, uint64_t seed, bool seq) {
  double warm = run_gets(c, kind, seed ^ 0x5555555555555555ull, seq);
  double ns = run_gets(c, kind, seed, seq);
  progress("%s: warm-up run %.1f ns/op", name, warm);
  rate_row(name, ns, goal_ns);
  return ns;
}

/* Gets on db; writer_ns: NULL on the writer, whose in-order key and time
** figures it then fills in (gets_ns[0], [1]); else those figures, which
** a read-only handle's gets must come within 1.2x of. */
static void bench_get_all(klevdb *db, int64_t rows, double *gets_ns, bool ro) {
  int64_t nkeys = rows < KEY_MOD ? rows : KEY_MOD;
  char *keys = malloc((size_t)nkeys * KEY_LEN);
  int64_t *want = malloc((size_t)nkeys * sizeof *want);
  if (!keys || !want) die("out of memory");
  char k[KEY_LEN + 1];
  for (int64_t i = 0; i < nkeys; i++) {
    fmt_key(k, i);
    memcpy(keys + i * KEY_LEN, k, KEY_LEN);
    want[i] = key_newest_offset(i, rows);
  }
  get_ctx c = {db, rows, keys, want, nkeys};

  /* The goals are for Go's workload (in log order); random places are
  ** shown beside them (cache and TLB misses over the whole store). */
  if (ro) {
    /* The same in-order workloads on a read-only handle of the store. */
    double ns = bench_gets(&c, GET_KEY, "get by key (in order), read-only", 0, 0x2545F4914F6CDD1Dull, true);
    set_goal(&g_rows_out[g_nrows - 1], ns / gets_ns[0], 1.2, "x the writer");
    ns = bench_gets(&c, GET_TIME, "get by time (in order), read-only", 0, 0xD1B54A32D192ED03ull, true);
    set_goal(&g_rows_out[g_nrows - 1], ns / gets_ns[1], 1.2, "x the writer");
    free(keys);
    free(want);
    return;
  }
  bench_gets(&c, GET_OFFSET, "get by offset (in order)", 150, 0x1234567887654321ull, true);
  bench_gets(&c, GET_OFFSET, "get by offset (random)", 0, 0x1234567887654321ull, false);

  /* the first key lookup builds the key tables: timed on its own */
  klevdb_batch b = KLEVDB_BATCH_INIT;
  double tw = now_sec();
  CHECK(db, klevdb_get_by_key(db, keys, KEY_LEN, &b));
  check_get(db, &b, want[0], "get_by_key (first)");
  progress("first get_by_key (builds key tables): %.3f ms",
           (now_sec() - tw) * 1e3);
  klevdb_batch_free(&b);
  gets_ns[0] = bench_gets(&c, GET_KEY, "get by key (in order)", 300, 0x2545F4914F6CDD1Dull, true);
  bench_gets(&c, GET_KEY, "get by key (random, keys repeat)", 0, 0x2545F4914F6CDD1Dull, false);

  gets_ns[1] = bench_gets(&c, GET_TIME, "get by time (in order)", 300, 0xD1B54A32D192ED03ull, true);
  bench_gets(&c, GET_TIME, "get by time (random)", 0, 0xD1B54A32D192ED03ull, false);
  free(keys);
  free(want);
}

/* Go klevdb's own get benchmarks replayed as they are (bench_test.go:
** ByKey/W, ByKey/A, ByTime/W, ByTime/A): message i has the key "%10d" of
** i (every key distinct), 128 spaces as its value and the time
** 2023-01-01T00:00:00Z + i seconds; the store has the one index the
** lookup needs and Go's default rollover, and is filled in batches of 4.
** W gets every message in order on the writer that filled the store; A
** closes it and times a read-only open and the same gets, as Go's timer
** does. Shown for a like-for-like comparison with Go's figures. */
static double go_gets(const char *dir, int by_key, int readonly, int64_t n) {
  klevdb *db = open_store(dir, by_key, !by_key, 0, 0);
  klevdb_msg m[4];
  char keys[4][KEY_LEN + 1];
  char value[VALUE_LEN];
  memset(value, ' ', sizeof value);
  for (int64_t i = 0; i < n; i += 4) {
    size_t k = 0;
    for (; k < 4 && i + (int64_t)k < n; k++) {
      fmt_key(keys[k], i + (int64_t)k);
      m[k] = (klevdb_msg){.offset = 0, .time = TIME_BASE_US + (i + (int64_t)k) * 1000000,
                          .key = (const uint8_t *)keys[k], .key_len = KEY_LEN, .value = (const uint8_t *)value, .value_len = VALUE_LEN};
    }
    CHECK(db, klevdb_publish(db, m, k, NULL));
  }
  if (readonly) {
    close_store(db);
  }
  double t0 = now_sec();
  if (readonly) db = open_store(dir, by_key, !by_key, 1, 0);
  klevdb_batch b = KLEVDB_BATCH_INIT;
  char k[KEY_LEN + 1];
  for (int64_t i = 0; i < n; i++) {
    if (by_key) {
      fmt_key(k, i);
      CHECK(db, klevdb_get_by_key(db, k, KEY_LEN, &b));
    } else {
      CHECK(db, klevdb_get_by_time(db, TIME_BASE_US + i * 1000000, &b));
    }
    if (b.len != 1 || b.msgs[0].offset != i)
      die("Go workload: get %" PRId64 " gave offset %" PRId64, i, b.len ? b.msgs[0].offset : -1);
  }
  double dt = now_sec() - t0;
  klevdb_batch_free(&b);
  close_store(db);
  return dt * 1e9 / (double)n;
}

static void bench_go_gets(int64_t n) {
  static const char *names[2][2] = {
      {"Go ByTime/W: get by time, writer", "Go ByTime/A: by time, reopened ro"},
      {"Go ByKey/W: get by key, writer", "Go ByKey/A: by key, reopened ro"}};
  for (int by_key = 1; by_key >= 0; by_key--) {
    double ns[2];
    for (int ro = 0; ro < 2; ro++) {
      char dir[4200];
      fresh_dir(dir, sizeof dir, ro ? "go-a" : "go-w");
      ns[ro] = go_gets(dir, by_key, ro, n);
      if (!g_keep) rm_rf(dir);
      row *r = add_row(names[by_key][ro]);
      r->ns_op = ns[ro];
      snprintf(r->value, sizeof r->value, "%.0f", 1e9 / ns[ro]);
      progress("%s: %.0f ns/op over %" PRId64, names[by_key][ro], ns[ro], n);
    }
    /* As Go times it, A includes the open and the first touch of every
    ** page of the store; the goal is on the steady state (the read-only
    ** rows of the big store above). */
    progress("%s / %s: %.2f", names[by_key][1], names[by_key][0], ns[1] / ns[0]);
  }
}

static void bench_open(const char *dir, int64_t rows) {
  int reps = g_quick ? 3 : 10;
  double best = 1e30, sum = 0;
  klevdb_batch b = KLEVDB_BATCH_INIT;
  rng_seed(0xA0761D6478BD642Full);
  for (int r = 0; r < reps; r++) {
    int64_t off = (int64_t)(xorshift64() % (uint64_t)rows);
    double t0 = now_sec();
    klevdb *db = open_store(dir, 1, 1, 0, g_big_rollover);
    CHECK(db, klevdb_get(db, off, &b));
    double dt = now_sec() - t0;
    check_get(db, &b, off, "get after open");
    klevdb_batch_free(&b);
    close_store(db);
    sum += dt;
    if (dt < best) best = dt;
  }
  double mean_ms = sum / reps * 1e3;
  row *r = add_row("open + first get (rw)");
  snprintf(r->value, sizeof r->value, "%.2f ms", mean_ms);
  char unit[48];
  snprintf(unit, sizeof unit, "ms @10M (%" PRId64 " rows)", rows);
  set_goal(r, mean_ms, 50, unit);
  progress("open + first get: mean %.3f ms, best %.3f ms over %d", mean_ms,
           best * 1e3, reps);

  /* read-only open: informational */
  sum = 0;
  for (int i = 0; i < reps; i++) {
    int64_t off = (int64_t)(xorshift64() % (uint64_t)rows);
    double t0 = now_sec();
    klevdb *db = open_store(dir, 1, 1, 1, g_big_rollover);
    CHECK(db, klevdb_get(db, off, &b));
    double dt = now_sec() - t0;
    check_get(db, &b, off, "get after read-only open");
    klevdb_batch_free(&b);
    close_store(db);
    sum += dt;
  }
  r = add_row("open + first get (read-only)");
  snprintf(r->value, sizeof r->value, "%.2f ms", sum / reps * 1e3);
}

static size_t heap_bytes(void) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
#else
  return 0;
#endif
}

static long vm_rss_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  long kb = -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0) {
      kb = strtol(line + 6, NULL, 10);
      break;
    }
  fclose(f);
  return kb;
}

/* Heap growth per message once every segment's index, the key tables and
** the logs are loaded. key_mod > 0: keys repeat i % key_mod (else unique). */
static void bench_memory(const char *dir, int64_t rows, int64_t rollover,
                         int64_t key_mod, const char *label) {
  klevdb_batch b = KLEVDB_BATCH_INIT;
  size_t h0 = heap_bytes();
  long rss0 = vm_rss_kb();

  klevdb *db = open_store(dir, 1, 1, 0, rollover);
  CHECK(db, klevdb_get(db, 0, &b));
  check_get(db, &b, 0, "get 0");
  size_t h1 = heap_bytes();

  /* a missing key visits every segment: loads every index + key table */
  int64_t off = -1;
  klevdb_err rc = klevdb_offset_by_key(db, "missing-key", 11, &off);
  if (rc != KLEVDB_ENOTFOUND)
    die("offset_by_key(missing) returned %s, want not_found (%s)",
        klevdb_errname(rc), klevdb_errmsg(db));
  /* first key lookup of an existing key */
  CHECK(db, klevdb_get_by_key(db, "         0", KEY_LEN, &b));
  check_get(db, &b, key_mod > 0 ? key_newest_offset(0, rows) : 0,
            "get_by_key 0");
  /* touch every segment's log and index: consume the whole store */
  int64_t pos = 0;
  while (pos < rows) {
    CHECK(db, klevdb_consume(db, pos, 8, &b));
    if (b.len == 0 || b.msgs[0].offset != pos)
      die("consume(%" PRId64 ") in memory pass", pos);
    pos = b.next_offset;
  }
  /* and every time index */
  CHECK(db, klevdb_get_by_time(db, TIME_BASE_US, &b));
  check_get(db, &b, 0, "get_by_time(first)");
  klevdb_batch_free(&b);

  size_t h2 = heap_bytes();
  long rss2 = vm_rss_kb();
  klevdb_stat st;
  CHECK(db, klevdb_stat_get(db, &st));
  close_store(db);

  char name[64];
  if (h2 == 0) {
    snprintf(name, sizeof name, "heap per message (%s)", label);
    row *r = add_row(name);
    snprintf(r->value, sizeof r->value, "n/a");
    snprintf(r->goal, sizeof r->goal, "(no mallinfo2)");
    return;
  }
  double per = ((double)h2 - (double)h0) / (double)rows;
  snprintf(name, sizeof name, "heap per message (%s)", label);
  row *r = add_row(name);
  snprintf(r->value, sizeof r->value, "%.1f B/msg", per);
  set_goal(r, per, 24, "B/msg");
  progress("heap (%s): before open %zu, after open+get %zu (+%.1f B/msg), after "
           "all segments+keys %zu; %.1f B/msg over %" PRId64
           " segments; VmRSS %ld -> %ld kB (includes mapped logs)",
           label, h0, h1, ((double)h1 - (double)h0) / (double)rows, h2, per,
           st.segments, rss0, rss2);
  snprintf(name, sizeof name, "RSS growth per msg (%s, info)", label);
  r = add_row(name);
  snprintf(r->value, sizeof r->value, "%.1f B/msg",
           (double)(rss2 - rss0) * 1024.0 / (double)rows);
}

/* ------------------------------------------------------------------ */
/* The machine                                                         */

/* The machine's busy CPU seconds so far, all processes, from /proc/stat
** (-1 if it cannot be read). */
static double machine_busy(void) {
  double busy = -1;
  FILE *f = fopen("/proc/stat", "r");
  if (!f) return busy;
  unsigned long long us, ni, sy, id, io, irq, sirq, st;
  if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &us, &ni, &sy, &id, &io, &irq, &sirq,
             &st) == 8)
    busy = (double)(us + ni + sy + irq + sirq + st) / (double)sysconf(_SC_CLK_TCK);
  fclose(f);
  return busy;
}

/* CPU seconds of this process and its waited-for children. */
static double own_cpu(void) {
  double t = 0;
  int who[2] = {RUSAGE_SELF, RUSAGE_CHILDREN};
  for (int i = 0; i < 2; i++) {
    struct rusage ru;
    if (getrusage(who[i], &ru) != 0) die("getrusage: %s", strerror(errno));
    t += (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
  }
  return t;
}

static void load_avg(char *out, size_t cap) {
  double la[3];
  if (getloadavg(la, 3) == 3) snprintf(out, cap, "%.2f %.2f %.2f", la[0], la[1], la[2]);
  else snprintf(out, cap, "?");
}

/* ------------------------------------------------------------------ */
/* Tail latencies                                                      */

/* A log-linear histogram of nanoseconds: values under 16 have a bucket
** each; above, every power of two is cut into 16 buckets, so a bucket is
** at most 1/16 of its values wide, whatever the range, in a fixed 8 KiB. */
#define HSUB 16
#define HBUCKETS (61 * HSUB)
typedef struct hist {
  uint64_t n, max, sum;
  uint64_t count[HBUCKETS];
} hist;

static unsigned hist_bucket(uint64_t v) {
  if (v < HSUB) return (unsigned)v;
  unsigned k = 63u - (unsigned)__builtin_clzll(v); /* 2^k <= v < 2^(k+1) */
  return (k - 3) * HSUB + (unsigned)((v >> (k - 4)) & (HSUB - 1));
}

/* The largest value bucket b holds. */
static uint64_t hist_upper(unsigned b) {
  if (b < HSUB) return b;
  unsigned k = b / HSUB + 3, sub = b % HSUB;
  return (((uint64_t)HSUB + sub + 1) << (k - 4)) - 1;
}

/* Every value falls in the one bucket whose range holds it (checked at
** start-up over each power of two's edges and random values). */
static void hist_selfcheck(void) {
  uint64_t r = 0x243F6A8885A308D3ull;
  for (int i = 0; i < 4096; i++) {
    uint64_t v;
    if (i < 64 * 3) {
      v = (UINT64_C(1) << (i / 3)) + (uint64_t)(i % 3) - 1;
    } else {
      r ^= r << 13;
      r ^= r >> 7;
      r ^= r << 17;
      v = r >> (r % 64);
    }
    unsigned b = hist_bucket(v);
    if (b >= HBUCKETS || hist_upper(b) < v || (b > 0 && hist_upper(b - 1) >= v))
      die("histogram: %" PRIu64 " in bucket %u of [%" PRIu64 ", %" PRIu64 "]", v, b,
          b > 0 ? hist_upper(b - 1) + 1 : 0, hist_upper(b));
  }
}

static void hist_add(hist *h, uint64_t v) {
  h->count[hist_bucket(v)]++;
  h->n++;
  h->sum += v;
  if (v > h->max) h->max = v;
}

/* The value at quantile q, as its bucket's upper edge (never below the
** truth, at most 1/16 above it), capped at the exact maximum. */
static uint64_t hist_quantile(const hist *h, double q) {
  if (h->n == 0) return 0;
  uint64_t rank = (uint64_t)(q * (double)h->n + 0.999999);
  if (rank < 1) rank = 1;
  uint64_t seen = 0;
  for (unsigned b = 0; b < HBUCKETS; b++) {
    seen += h->count[b];
    if (seen >= rank) return hist_upper(b) < h->max ? hist_upper(b) : h->max;
  }
  return h->max;
}

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

typedef struct lat_row {
  char name[64];
  uint64_t n, p50, p99, p999, max;
  double mean;
  char goal[80];
  char note[128];
} lat_row;

static lat_row g_lat[8];
static int g_nlat = 0;

static lat_row *lat_add(const char *name, const hist *h) {
  if (g_nlat >= 8) die("too many latency rows");
  lat_row *r = &g_lat[g_nlat++];
  memset(r, 0, sizeof *r);
  snprintf(r->name, sizeof r->name, "%s", name);
  r->n = h->n;
  r->p50 = hist_quantile(h, 0.50);
  r->p99 = hist_quantile(h, 0.99);
  r->p999 = hist_quantile(h, 0.999);
  r->max = h->max;
  r->mean = h->n ? (double)h->sum / (double)h->n : 0;
  progress("%-48s n %" PRIu64 " p50 %.2f us p99 %.2f us p99.9 %.2f us max %.2f us", name,
           r->n, r->p50 / 1e3, r->p99 / 1e3, r->p999 / 1e3, r->max / 1e3);
  return r;
}

/* Appends "what <= limit us PASS|MISS" to the row's goal. */
static void lat_goal(lat_row *r, const char *what, uint64_t measured, double limit_us) {
  int pass = (double)measured <= limit_us * 1e3;
  if (!pass) g_misses++;
  size_t len = strlen(r->goal);
  snprintf(r->goal + len, sizeof r->goal - len, "%s%s <= %g us %s", len ? ", " : "", what,
           limit_us, pass ? "PASS" : "MISS");
}

static void print_lat_table(void) {
  printf("\n%-48s %8s %9s %9s %9s %9s %9s  %s\n", "latency (us)", "n", "mean", "p50", "p99",
         "p99.9", "max", "goal");
  for (int i = 0; i < 48 + 9 + 5 * 10 + 2 + 40; i++) putchar('-');
  putchar('\n');
  for (int i = 0; i < g_nlat; i++) {
    lat_row *r = &g_lat[i];
    printf("%-48s %8" PRIu64 " %9.2f %9.2f %9.2f %9.2f %9.2f  %s\n", r->name, r->n, r->mean / 1e3,
           r->p50 / 1e3,
           r->p99 / 1e3, r->p999 / 1e3, r->max / 1e3, r->goal);
    if (r->note[0]) printf("%-48s %s\n", "", r->note);
  }
}

/* Publishes n messages one at a time from message number first, timing
** each klevdb_publish. */
static void timed_publishes(klevdb *db, int64_t first, int64_t n, hist *h) {
  klevdb_msg m;
  char key[KEY_LEN];
  int64_t next = -1;
  for (int64_t i = first; i < first + n; i++) {
    gen_msgs(&m, key, i, 1, 0);
    uint64_t t0 = mono_ns();
    CHECK(db, klevdb_publish(db, &m, 1, &next));
    hist_add(h, mono_ns() - t0);
    if (next != i + 1) die("publish: next offset %" PRId64 ", want %" PRId64, next, i + 1);
  }
}

typedef struct reader_arg {
  const char *dir;
  uint64_t seed;
  volatile int *stop; /* read with __atomic_load_n */
  int64_t ops;
  pthread_t th;
} reader_arg;

/* A reader of the publisher's store: gets and consumes of 8 at random
** offsets among those published, on its own handle, until told to stop. */
static void *reader_main(void *p) {
  reader_arg *a = p;
  klevdb *db = open_store(a->dir, 1, 1, 0, 0);
  klevdb_batch b = KLEVDB_BATCH_INIT;
  uint64_t s = a->seed;
  while (!__atomic_load_n(a->stop, __ATOMIC_ACQUIRE)) {
    int64_t next;
    CHECK(db, klevdb_next_offset(db, &next));
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    int64_t off = (int64_t)(s % (uint64_t)next);
    if (s & 1)
      CHECK(db, klevdb_consume(db, off, 8, &b));
    else
      CHECK(db, klevdb_get(db, off, &b));
    if (b.len < 1 || b.msgs[0].offset != off || b.msgs[0].value_len != VALUE_LEN)
      die("reader: read at %" PRId64 " returned %zu messages from %" PRId64, off, b.len,
          b.len ? b.msgs[0].offset : -1);
    a->ops++;
  }
  klevdb_batch_free(&b);
  close_store(db);
  return NULL;
}

/* Publish batch 1 into a fresh store (both indexes; the default layout,
** or preallocate's, which makes no system call a publish), alone and then
** with 3 reader threads; returns the alone p99 (ns). */
static uint64_t bench_lat_publish(int64_t n, int prealloc) {
  char dir[4200];
  fresh_dir(dir, sizeof dir, prealloc ? "latency-prealloc" : "latency");
  int saved = g_preallocate;
  g_preallocate = prealloc;
  klevdb *db = open_store(dir, 1, 1, 0, 0);
  g_preallocate = saved;
  const char *sfx = prealloc ? ", preallocate" : "";
  char name[64];
  hist *h = calloc(1, sizeof *h);
  if (!h) die("out of memory");
  /* a first segment's worth, untimed: the readers need something to read
  ** and the first publishes' page faults are not a steady state */
  timed_publishes(db, 0, 10000, h);
  memset(h, 0, sizeof *h);
  timed_publishes(db, 10000, n, h);
  snprintf(name, sizeof name, "publish batch 1, alone%s", sfx);
  lat_row *r = lat_add(name, h);
  lat_goal(r, "p99", r->p99, 5);
  uint64_t alone_p99 = r->p99;

  int stop = 0;
  reader_arg rd[3];
  for (int i = 0; i < 3; i++) {
    rd[i] = (reader_arg){.dir = dir, .seed = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1),
                         .stop = &stop};
    if (pthread_create(&rd[i].th, NULL, reader_main, &rd[i]) != 0) die("pthread_create failed");
  }
  usleep(20000); /* the readers open and start */
  memset(h, 0, sizeof *h);
  double t0 = now_sec();
  timed_publishes(db, 10000 + n, n, h);
  double dt = now_sec() - t0;
  __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
  int64_t reads = 0;
  for (int i = 0; i < 3; i++) {
    pthread_join(rd[i].th, NULL);
    reads += rd[i].ops;
  }
  snprintf(name, sizeof name, "publish batch 1, 3 reader threads%s", sfx);
  r = lat_add(name, h);
  lat_goal(r, "p99", r->p99, 5);
  snprintf(r->note, sizeof r->note, "(readers: %.0f gets/consumes per s in all, %ld CPUs)",
           (double)reads / dt, sysconf(_SC_NPROCESSORS_ONLN));
  free(h);
  close_store(db);
  if (!g_keep) rm_rf(dir);
  return alone_p99;
}

typedef struct trim_arg {
  klevdb *db;
  int64_t before;
  volatile int *started, *trimming; /* read and written with __atomic */
  double secs;
  klevdb_deleted del;
  pthread_t th;
} trim_arg;

static void *trim_main(void *p) {
  trim_arg *a = p;
  while (!__atomic_load_n(a->started, __ATOMIC_ACQUIRE)) usleep(100);
  usleep(5000); /* the publisher is in its loop */
  __atomic_store_n(a->trimming, 1, __ATOMIC_RELEASE);
  double t0 = now_sec();
  CHECK(a->db, klevdb_trim_by_offset(a->db, a->before, &a->del));
  a->secs = now_sec() - t0;
  __atomic_store_n(a->trimming, 2, __ATOMIC_RELEASE);
  return NULL;
}

/* One thread publishes batches of 1 while another trims the oldest half
** of the store in dir (rows messages); the publisher's latencies while the
** trim runs are kept. */
static void bench_lat_trim(const char *dir, int64_t rows, int64_t rollover, uint64_t alone_p99) {
  klevdb *db = open_store(dir, 1, 1, 0, rollover);
  int started = 0, trimming = 0;
  trim_arg ta = {.db = open_store(dir, 1, 1, 0, rollover), .before = rows / 2,
                 .started = &started, .trimming = &trimming};
  if (pthread_create(&ta.th, NULL, trim_main, &ta) != 0) die("pthread_create failed");
  hist *h = calloc(1, sizeof *h);
  if (!h) die("out of memory");
  klevdb_msg m;
  char key[KEY_LEN];
  int64_t next = -1, i = rows;
  uint64_t blocked = 0; /* ns in publishes of over 100 us */
  __atomic_store_n(&started, 1, __ATOMIC_RELEASE);
  for (;; i++) {
    int phase = __atomic_load_n(&trimming, __ATOMIC_ACQUIRE);
    if (phase == 2) break;
    gen_msgs(&m, key, i, 1, KEY_MOD);
    uint64_t t0 = mono_ns();
    CHECK(db, klevdb_publish(db, &m, 1, &next));
    uint64_t t1 = mono_ns();
    if (phase == 1) {
      hist_add(h, t1 - t0);
      if (t1 - t0 > 100000) blocked += t1 - t0;
    }
    if (next != i + 1) die("publish: next offset %" PRId64 ", want %" PRId64, next, i + 1);
  }
  pthread_join(ta.th, NULL);
  if (ta.del.count != rows / 2)
    die("trim removed %" PRId64 " messages, want %" PRId64, ta.del.count, rows / 2);
  lat_row *r = lat_add("publish batch 1, concurrent trim of half", h);
  lat_goal(r, "p99 (2x alone)", r->p99, 2.0 * (double)alone_p99 / 1e3);
  lat_goal(r, "max", r->max, 5000);
  snprintf(r->note, sizeof r->note,
           "(the trim of %" PRId64 " of %" PRId64 " messages took %.1f ms; publishes over 100 us: "
           "%.1f ms in all)",
           ta.del.count, rows, ta.secs * 1e3, (double)blocked / 1e6);
  free(h);
  close_store(ta.db);
  close_store(db);
}

/* Publish to visible across processes: a forked child follows the store
** on a read-only handle with klevdb_consume_blocking while this process
** publishes one message at a time at random intervals (0-2 ms), each value
** carrying its CLOCK_MONOTONIC publish time (one clock for every process on
** Linux); the child times each message's arrival.
**
** What sets the figure: a read-only store is not woken by another process's
** publish. klevdb_consume_blocking on it waits on its condition variable in
** steps of 5 ms, and each try reads at the end of what it knows, which makes
** it look for the writer's changes (a stat of the directory, then the new
** records of the last segment). So a message becomes visible up to 5 ms
** after it is written (about 2.5 ms on average) plus the look itself: p99
** about 5 ms. A reader that polls with klevdb_consume sees it at its own
** polling rate instead. */
static void bench_lat_follow(int64_t n) {
  char dir[4200];
  fresh_dir(dir, sizeof dir, "follow");
  klevdb_msg m;
  char key[KEY_LEN];
  uint8_t value[VALUE_LEN];
  memcpy(value, g_value, VALUE_LEN);
  int64_t next;
  /* The store exists with one message before the child opens it; nothing
  ** is open in this process across the fork. */
  klevdb *db = open_store(dir, 1, 1, 0, 0);
  gen_msgs(&m, key, 0, 1, 0);
  CHECK(db, klevdb_publish(db, &m, 1, &next));
  close_store(db);

  hist *h = mmap(NULL, sizeof *h, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (h == MAP_FAILED) die("mmap: %s", strerror(errno));
  memset(h, 0, sizeof *h);
  int ready[2];
  if (pipe(ready) != 0) die("pipe: %s", strerror(errno));
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) die("fork: %s", strerror(errno));
  if (pid == 0) {
    /* The child must not die() (it would remove the parent's stores). */
    close(ready[0]);
    klevdb_options o;
    memset(&o, 0, sizeof o);
    o.readonly = 1;
    o.key_index = o.time_index = 1;
    klevdb *ro = NULL;
    klevdb_batch b = KLEVDB_BATCH_INIT;
    if (klevdb_open(dir, &o, &ro, NULL) != KLEVDB_OK || klevdb_consume(ro, 0, 1, &b) != KLEVDB_OK ||
        b.len != 1 || write(ready[1], "r", 1) != 1)
      _exit(3);
    int64_t off = 1;
    while (off <= n) {
      klevdb_err rc = klevdb_consume_blocking(ro, off, 64, 5000, &b);
      uint64_t seen = mono_ns();
      if (rc != KLEVDB_OK || b.len == 0) {
        fprintf(stderr, "bench_core: follower: %s at offset %" PRId64 " (%s)\n",
                rc ? klevdb_errname(rc) : "nothing for 5 s", off, klevdb_errmsg(ro));
        _exit(2);
      }
      for (size_t j = 0; j < b.len; j++) {
        uint64_t sent;
        if (b.msgs[j].offset != off + (int64_t)j || b.msgs[j].value_len != VALUE_LEN) _exit(4);
        memcpy(&sent, b.msgs[j].value, sizeof sent);
        hist_add(h, seen - sent);
      }
      off = b.next_offset;
    }
    klevdb_batch_free(&b);
    _exit(klevdb_close(ro) == KLEVDB_OK ? 0 : 5);
  }
  close(ready[1]);
  char c;
  if (read(ready[0], &c, 1) != 1) die("the follower did not start");
  close(ready[0]);
  db = open_store(dir, 1, 1, 0, 0);
  uint64_t s = 0xC2B2AE3D27D4EB4Full;
  for (int64_t i = 1; i <= n; i++) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    struct timespec pause = {0, (long)(s % 2000000)};
    nanosleep(&pause, NULL);
    gen_msgs(&m, key, i, 1, 0);
    m.value = value;
    uint64_t t = mono_ns();
    memcpy(value, &t, sizeof t);
    CHECK(db, klevdb_publish(db, &m, 1, &next));
  }
  int status;
  if (waitpid(pid, &status, 0) != pid) die("waitpid: %s", strerror(errno));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    die("the follower failed (status %d)", status);
  close_store(db);
  if (h->n != (uint64_t)n) die("the follower saw %" PRIu64 " messages, want %" PRId64, h->n, n);
  lat_row *r = lat_add("publish to visible, read-only follower process", h);
  lat_goal(r, "p99", r->p99, 10000);
  snprintf(r->note, sizeof r->note, "(klevdb_consume_blocking; it looks every 5 ms)");
  munmap(h, sizeof *h);
  if (!g_keep) rm_rf(dir);
}

/* ------------------------------------------------------------------ */

static void usage(void) {
  fprintf(stderr,
          "usage: bench_core [--rows N] [--dir PATH] [--quick] [--keep]\n"
          "                  [--min-time SECS] [--only trim]\n"
          "  --rows N    messages in the get/open/memory store (default "
          "1000000)\n"
          "  --dir PATH  work directory (default: a mkdtemp under /tmp)\n"
          "  --quick     small sizes, a few seconds (smoke test)\n"
          "  --keep      do not remove the stores at the end\n"
          "  --min-time  seconds each timed read loop runs at least (default "
          "0.2)\n"
          "  --only trim the publish latency rows (alone, with readers) and the\n"
          "              concurrent trim's, nothing else\n");
}

/* What this machine's kernel costs today, the floor of the default
** layout's publish (one pwrite() a batch): a system call that does
** nothing, and a 174-byte pwrite() appending to a file (a 10-byte key,
** a 128-byte value and the record header). On a VM these move from day
** to day, and the publish latencies with them. */
static int cmp_dbl(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The median time of the first 174-byte write to each page of fresh
** memory that the kernel has already faulted in (MADV_POPULATE_WRITE),
** and of a second write to it: on a VM the first can cost microseconds
** that the guest never sees as a page fault (the hypervisor's own work),
** and one publish in 23.5 starts a new page of the log. */
static void first_write_cost(double *first_us, double *again_us) {
  enum { PAGES = 4096 };
  size_t len = (size_t)PAGES * 4096;
  uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) die("mmap: %s", strerror(errno));
  madvise(p, len, MADV_POPULATE_WRITE);
  uint8_t rec[174];
  memset(rec, 7, sizeof rec);
  static double t[2][PAGES];
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < PAGES; i++) {
      uint8_t *at = p + (size_t)i * 4096 + 2000;
      double t0 = now_sec();
      memcpy(at, rec, sizeof rec);
      __asm__ volatile("" : : "r"(at) : "memory");
      t[pass][i] = now_sec() - t0;
    }
  qsort(t[0], PAGES, sizeof(double), cmp_dbl);
  qsort(t[1], PAGES, sizeof(double), cmp_dbl);
  *first_us = t[0][PAGES / 2] * 1e6;
  *again_us = t[1][PAGES / 2] * 1e6;
  munmap(p, len);
}

static void kernel_cost(double *sys_us, double *pwrite_us) {
  enum { N = 50000 };
  double t0 = now_sec();
  for (int i = 0; i < N; i++) syscall(SYS_getppid);
  *sys_us = (now_sec() - t0) / N * 1e6;
  char path[4200];
  sub_path(path, sizeof path, "kernel-cost.dat");
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) die("open %s: %s", path, strerror(errno));
  uint8_t rec[174];
  memset(rec, 7, sizeof rec);
  t0 = now_sec();
  for (int i = 0; i < N; i++)
    if (pwrite(fd, rec, sizeof rec, (off_t)i * (off_t)sizeof rec) != (ssize_t)sizeof rec)
      die("pwrite %s: %s", path, strerror(errno));
  *pwrite_us = (now_sec() - t0) / N * 1e6;
  close(fd);
  unlink(path);
}

int main(int argc, char **argv) {
  const char *dir_opt = NULL;
  int rows_given = 0;
  double min_time = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--rows") == 0 && i + 1 < argc) {
      char *end;
      errno = 0;
      long long v = strtoll(argv[++i], &end, 10);
      if (errno || *end || v < 2) {
        usage();
        die("bad --rows %s (want an integer >= 2)", argv[i]);
      }
      g_rows = v;
      rows_given = 1;
    } else if (strcmp(argv[i], "--min-time") == 0 && i + 1 < argc) {
      char *end;
      double v = strtod(argv[++i], &end);
      if (*end || !(v > 0)) {
        usage();
        die("bad --min-time %s (want seconds > 0)", argv[i]);
      }
      min_time = v;
    } else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
      dir_opt = argv[++i];
    } else if (strcmp(argv[i], "--quick") == 0) {
      g_quick = 1;
    } else if (strcmp(argv[i], "--keep") == 0) {
      g_keep = 1;
    } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc && strcmp(argv[i + 1], "trim") == 0) {
      g_only_trim = 1;
      i++;
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage();
      return 0;
    } else {
      usage();
      die("unknown argument %s", argv[i]);
    }
  }
  if (g_quick) {
    if (!rows_given) g_rows = 20000;
    g_min_secs = 0.02;
  }
  if (min_time > 0) g_min_secs = min_time;

  if (dir_opt) {
    if (mkdir(dir_opt, 0700) != 0 && errno != EEXIST)
      die("mkdir %s: %s", dir_opt, strerror(errno));
    snprintf(g_root, sizeof g_root, "%s", dir_opt);
  } else {
    const char *tmp = getenv("TMPDIR");
    snprintf(g_root, sizeof g_root, "%s/bench_core.XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_root)) die("mkdtemp %s: %s", g_root, strerror(errno));
    g_root_is_tmp = 1;
  }

  for (int i = 0; i < VALUE_LEN; i++) g_value[i] = (uint8_t)(xorshift64() >> 56);
  char load0[64], load1[64];
  load_avg(load0, sizeof load0);
  double wall0 = now_sec(), busy0 = machine_busy(), cpu0 = own_cpu();
  double sys_us, pwrite_us, first_us, again_us;
  kernel_cost(&sys_us, &pwrite_us);
  first_write_cost(&first_us, &again_us);

  int64_t npub = g_rows < 200000 ? g_rows : 200000;
  progress("dir %s, publish/consume %" PRId64 " msgs, get store %" PRId64
           " msgs%s",
           g_root, npub, g_rows, g_quick ? " (quick)" : "");

  klevdb *db;
  if (!g_only_trim) {
    /* publish: 8 rows; the last (both indexes, batch 8) stays open */
    static const int idx[4][2] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}};
    static const size_t batches[2] = {1, 8};
    klevdb *writer = NULL;
    for (int bi = 0; bi < 2; bi++)
      for (int ii = 0; ii < 4; ii++) {
        int keep = bi == 1 && ii == 3;
        klevdb *db = bench_publish(keep ? "consume" : "publish", idx[ii][0],
                                   idx[ii][1], batches[bi], npub, keep);
        if (keep) writer = db;
      }
    /* The same with room allocated ahead (klevdb_options.preallocate), side
    ** by side with the default in one run. */
    g_preallocate = 1;
    for (int bi = 0; bi < 2; bi++)
      bench_publish("publish", 1, 1, batches[bi], npub, 0);
    g_preallocate = 0;

    /* consume: writer handle, reopened rw, reopened read-only */
    char cdir[4200];
    sub_path(cdir, sizeof cdir, "consume");
    bench_consume(writer, "(writer)", npub, 1);
    bench_consume(writer, "(writer)", npub, 8);
    close_store(writer);
    db = open_store(cdir, 1, 1, 0, 0);
    bench_consume(db, "(reopened rw)", npub, 1);
    bench_consume(db, "(reopened rw)", npub, 8);
    close_store(db);
    db = open_store(cdir, 1, 1, 1, 0);
    bench_consume(db, "(reopened ro)", npub, 1);
    bench_consume(db, "(reopened ro)", npub, 8);
    close_store(db);
    bench_memory(cdir, npub, 0, 0, "unique keys");
    if (!g_keep) rm_rf(cdir);
  }

  /* tail latencies; the trim's comes last, on the big store */
  hist_selfcheck();
  uint64_t alone_p99 = bench_lat_publish(npub, 0);
  if (!g_only_trim) bench_lat_publish(npub, 1);
  if (!g_only_trim) bench_lat_follow(g_quick ? 100 : 2000);

  /* big store */
  char bdir[4200];
  fresh_dir(bdir, sizeof bdir, "big");
  int64_t rollover = g_rows * (36 + KEY_LEN + VALUE_LEN) / 100;
  if (rollover < 1) rollover = 1;
  g_big_rollover = rollover;
  build_big(bdir, g_rows, rollover);
  if (!g_only_trim) {
    db = open_store(bdir, 1, 1, 0, rollover);
    double gets_ns[2];
    bench_get_all(db, g_rows, gets_ns, false);
    close_store(db);
    db = open_store(bdir, 1, 1, 1, rollover);
    bench_get_all(db, g_rows, gets_ns, true);
    close_store(db);
    bench_go_gets(g_quick ? 20000 : 200000);
    bench_open(bdir, g_rows);
    bench_memory(bdir, g_rows, rollover, KEY_MOD, "keys repeat");
  }
  bench_lat_trim(bdir, g_rows, rollover, alone_p99);

  double wall = now_sec() - wall0, busy = machine_busy() - busy0, cpu = own_cpu() - cpu0;
  load_avg(load1, sizeof load1);
  print_table();
  print_lat_table();
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  printf("\nmachine: %ld CPUs online; load average %s at the start, %s at the end; of the\n"
         "%.1f CPU-seconds it had in the %.1f s run, this benchmark used %.1f and everything else\n"
         "(other processes, the kernel's writeback) %.1f\n",
         ncpu, load0, load1, (double)ncpu * wall, wall, cpu,
         busy0 < 0 ? -1.0 : busy > cpu ? busy - cpu : 0.0);
  printf("kernel: a system call that does nothing took %.2f us, a 174-byte pwrite() appending to\n"
         "a file %.2f us (a publish in the default layout makes one); the first 174-byte write to a\n"
         "page of memory already faulted in %.2f us, a second one %.2f us (medians; a publish of 174\n"
         "bytes starts a new page of the log one time in 23.5, so its p99 cannot be below the first)\n",
         sys_us, pwrite_us, first_us, again_us);
  printf("\n%d goal(s) missed\n", g_misses);
  cleanup_root();
  return 0;
}
