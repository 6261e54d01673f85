/*
** test_retention.c - the retention helpers (trims, compactions, finders) of
** libklevdb against the cases of Go klevdb's finder and compaction tests, adapted to
** the C API whose trims delete the whole found set (Go's ...Multi).
*/
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "klevdb.h"
#include "../check.h"

/* ---- checks (tests/check.h, and the store calls of this file) ---- */

/* call gives want; on a mismatch the handle's message is shown (read only
** then: after a klevdb_close the handle is gone). */
#define CHECK_CALL(db, call, want)                                      \
  do {                                                                  \
    klevdb_err r_ = (call), w_ = (want);                                \
    chk_report(r_ == w_, __FILE__, __LINE__, "%s -> %s, want %s (%s)", #call, \
               klevdb_errname(r_), klevdb_errname(w_),                  \
               r_ != w_ && (db) ? klevdb_errmsg(db) : "");              \
  } while (0)

#define CHECK_CALL_OK(db, call) CHECK_CALL(db, call, KLEVDB_OK)

/* A deleted result: count and size. */
#define CHECK_DEL(d, cnt, sz)   \
  do {                          \
    CHECK_EQ((d).count, cnt);    \
    CHECK_EQ((d).size, sz);      \
  } while (0)

/* ---- offsets lists ---- */

typedef struct ivec {
  int64_t *v;
  size_t n, cap;
} ivec;

static void iv_push(ivec *a, int64_t x) {
  if (a->n == a->cap) {
    a->cap = a->cap ? a->cap * 2 : 64;
    a->v = realloc(a->v, a->cap * sizeof(*a->v));
    if (!a->v) abort();
  }
  a->v[a->n++] = x;
}

static void iv_range(ivec *a, int64_t from, int64_t to) {
  for (int64_t i = from; i < to; i++) iv_push(a, i);
}

static void iv_free(ivec *a) {
  free(a->v);
  a->v = NULL;
  a->n = a->cap = 0;
}

static void check_list(int line, const char *what, const int64_t *got,
                       size_t ng, const int64_t *exp, size_t ne) {
  size_t i = 0;
  while (i < ng && i < ne && got[i] == exp[i]) i++;
  chk_report(i == ng && i == ne, __FILE__, line,
             "%s: got %zu offsets, want %zu; first difference at #%zu: got %lld, want %lld",
             what, ng, ne, i, i < ng ? (long long)got[i] : -999LL,
             i < ne ? (long long)exp[i] : -999LL);
}

/* ---- stores and messages ---- */

#define T0 INT64_C(1672531200000000) /* 2023-01-01T00:00:00Z in us */
#define SEC INT64_C(1000000)
#define MS INT64_C(1000)
#define VLEN 128
#define KLEN 10

typedef struct tstore {
  char dir[64];
  klevdb *db;
} tstore;

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f) {
  (void)sb, (void)flag, (void)f;
  return remove(p);
}

static klevdb *open_store(tstore *s, int keys, int times, int64_t rollover) {
  snprintf(s->dir, sizeof(s->dir), "/tmp/klevdb-ret-XXXXXX");
  if (!mkdtemp(s->dir)) {
    perror("mkdtemp");
    exit(2);
  }
  klevdb_options o = {0};
  o.key_index = keys;
  o.time_index = times;
  o.rollover = rollover;
  klevdb_error e;
  s->db = NULL;
  klevdb_err rc = klevdb_open(s->dir, &o, &s->db, &e);
  if (rc) {
    fprintf(stderr, "open %s: %s\n", s->dir, e.msg);
    exit(2);
  }
  return s->db;
}

static void close_store(tstore *s) {
  CHECK_CALL_OK(s->db, klevdb_close(s->db));
  nftw(s->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void gen_key(char key[KLEN + 1], int64_t i) {
  snprintf(key, KLEN + 1, "%10u", (unsigned)i);  /* unsigned: fits 10 */
}

static void gen_value(uint8_t v[VLEN], int64_t i) {
  for (int j = 0; j < VLEN; j++) v[j] = (uint8_t)('a' + (i + j) % 26);
}

/* Publishes one message (key NULL: absent; vlen 0: tombstone); returns its
** offset. One message per call so that small rollovers make segments. */
static int64_t pub(klevdb *db, const char *key, int64_t seed, size_t vlen,
                   int64_t time) {
  uint8_t val[VLEN];
  gen_value(val, seed);
  klevdb_msg m = {0};
  m.time = time;
  m.key = (const uint8_t *)key;
  m.key_len = key ? strlen(key) : 0;
  m.value = vlen ? val : NULL;
  m.value_len = vlen;
  int64_t next = -1;
  klevdb_err rc = klevdb_publish(db, &m, 1, &next);
  if (rc) {
    fprintf(stderr, "publish: %s\n", klevdb_errmsg(db));
    exit(2);
  }
  return next - 1;
}

/* The generated message i: key "%10d", 128-byte value, time T0 + i s. */
static int64_t pub_gen(klevdb *db, int64_t i) {
  char key[KLEN + 1];
  gen_key(key, i);
  return pub(db, key, i, VLEN, T0 + i * SEC);
}

static void pub_gen_range(klevdb *db, int64_t from, int64_t to) {
  for (int64_t i = from; i < to; i++) pub_gen(db, i);
}

/* klevdb_size of a message with these lengths. */
static int64_t size_of(klevdb *db, size_t klen, size_t vlen) {
  static const uint8_t buf[VLEN + KLEN] = {0};
  klevdb_msg m = {0};
  m.key = klen ? buf : NULL;
  m.key_len = klen;
  m.value = vlen ? buf : NULL;
  m.value_len = vlen;
  return klevdb_size(db, &m);
}

/* Every surviving offset, consuming from the oldest. */
static ivec survivors(klevdb *db) {
  ivec r = {0};
  klevdb_batch b = KLEVDB_BATCH_INIT;
  int64_t cur = KLEVDB_OFFSET_OLDEST;
  for (int guard = 0; guard < 100000; guard++) {
    klevdb_err rc = klevdb_consume(db, cur, 7, &b);
    if (rc) {
      chk_report(0, __FILE__, __LINE__, "consume(%lld): %s", (long long)cur, klevdb_errmsg(db));
      break;
    }
    for (size_t i = 0; i < b.len; i++) iv_push(&r, b.msgs[i].offset);
    if (b.len == 0 || b.next_offset <= cur) break;
    cur = b.next_offset;
  }
  klevdb_batch_free(&b);
  return r;
}

#define CHECK_SURVIVORS(db, exp)                                          \
  do {                                                                    \
    ivec s_ = survivors(db);                                              \
    check_list(__LINE__, "survivors", s_.v, s_.n, (exp).v, (exp).n);      \
    iv_free(&s_);                                                         \
  } while (0)

#define CHECK_SURVIVOR_RANGE(db, from, to)                                \
  do {                                                                    \
    ivec e_ = {0};                                                        \
    iv_range(&e_, from, to);                                              \
    CHECK_SURVIVORS(db, e_);                                              \
    iv_free(&e_);                                                         \
  } while (0)

/* klevdb_find_offsets(what, arg) must give exactly exp. */
#define CHECK_FIND(db, what, arg, exp)                                    \
  do {                                                                    \
    int64_t *o_ = NULL;                                                   \
    size_t n_ = 0;                                                        \
    CHECK_CALL_OK(db, klevdb_find_offsets(db, what, arg, &o_, &n_));           \
    check_list(__LINE__, "find " #what, o_, n_, (exp).v, (exp).n);        \
    free(o_);                                                             \
  } while (0)

#define CHECK_FIND_RANGE(db, what, arg, from, to)                         \
  do {                                                                    \
    ivec e_ = {0};                                                        \
    iv_range(&e_, from, to);                                              \
    CHECK_FIND(db, what, arg, e_);                                        \
    iv_free(&e_);                                                         \
  } while (0)

static klevdb_stat stat_of(klevdb *db) {
  klevdb_stat st = {-1, -1, -1};
  CHECK_CALL_OK(db, klevdb_stat_get(db, &st));
  return st;
}

static int64_t offset_by_key(klevdb *db, int64_t i) {
  char key[KLEN + 1];
  gen_key(key, i);
  int64_t off = -100;
  CHECK_CALL_OK(db, klevdb_offset_by_key(db, key, KLEN, &off));
  return off;
}

static int64_t oldest(klevdb *db) {
  klevdb_batch b = KLEVDB_BATCH_INIT;
  int64_t off = -100;
  klevdb_err rc = klevdb_get(db, KLEVDB_OFFSET_OLDEST, &b);
  if (rc == KLEVDB_OK) off = b.msgs[0].offset;
  klevdb_batch_free(&b);
  return off;
}

#define FAR_FUTURE INT64_MAX

/* ---- 62-64: CompactDeletes ---- */

static void t62_compact_deletes_empty(void) {
  tstore s;
  klevdb *db = open_store(&s, 1, 1, 0);
  klevdb_deleted d = {-1, -1};
  CHECK_CALL_OK(db, klevdb_compact_deletes(db, FAR_FUTURE, &d));
  CHECK_DEL(d, 0, 0);
  ivec none = {0};
  CHECK_FIND(db, KLEVDB_FIND_DELETES, FAR_FUTURE, none);
  int64_t *o = (int64_t *)&d;
  size_t n = 99;
  CHECK_CALL_OK(db, klevdb_find_offsets(db, KLEVDB_FIND_COUNT, 0, &o, &n));
  CHECK(o == NULL);
  CHECK_EQ(n, 0);
  /* The other helpers on an empty store find nothing either. */
  CHECK_CALL_OK(db, klevdb_compact_updates(db, FAR_FUTURE, &d));
  CHECK_DEL(d, 0, 0);
  CHECK_CALL_OK(db, klevdb_trim_by_count(db, 0, &d));
  CHECK_DEL(d, 0, 0);
  CHECK_CALL_OK(db, klevdb_trim_by_offset(db, KLEVDB_OFFSET_NEWEST, &d));
  CHECK_DEL(d, 0, 0);
  CHECK_CALL_OK(db, klevdb_trim_by_size(db, 0, &d));
  CHECK_DEL(d, 0, 0);
  klevdb_stat st = stat_of(db);
  CHECK_EQ(st.segments, 1);
  CHECK_EQ(st.messages, 0);
  CHECK_EQ(st.size, 16);
  /* Go's FindByAge fails on a store without records (no time items); a
  ** retention job run on an empty store should just find nothing. */
  CHECK_CALL_OK(db, klevdb_trim_by_age(db, FAR_FUTURE, &d));
  CHECK_EQ(d.count, 0);
  CHECK_EQ(d.size, 0);
  close_store(&s);
}

static void t63_compact_deletes_no_tombstones(void) {
  tstore s;
  klevdb *db = open_store(&s, 1, 1, 0);
  pub_gen_range(db, 0, 10);
  klevdb_deleted d = {-1, -1};
  CHECK_CALL_OK(db, klevdb_compact_deletes(db, FAR_FUTURE, &d));
  CHECK_DEL(d, 0, 0);
  CHECK_EQ(stat_of(db).messages, 10);
  CHECK_SURVIVOR_RANGE(db, 0, 10);
  close_store(&s);
}

static void t64_compact_deletes_tombstones(void) {
  tstore s;
  klevdb *db = open_store(&s, 1, 1, 0);
  char key[KLEN + 1];
  for (int i = 0; i < 5; i++) {  /* tombstones k0..k4 */
    gen_key(key, i);
    pub(db, key, i, 0, T0 + i * SEC);
  }
  for (int i = 0; i < 5; i++) {  /* then values for the same keys */
    gen_key(key, i);
    pub(db, key, i, VLEN, T0 + (5 + i) * SEC);
  }
  int64_t ts = size_of(db, KLEN, 0);
  CHECK_EQ(ts, 36 + KLEN + 32);
  /* Equal time is inside the window: tombstones 0..2 at before = T0+2s. */
  CHECK_FIND_RANGE(db, KLEVDB_FIND_DELETES, T0 + 2 * SEC, 0, 3);
  CHECK_FIND_RANGE(db, KLEVDB_FIND_DELETES, FAR_FUTURE, 0, 5);
  klevdb_deleted d = {-1, -1};
  CHECK_CALL_OK(db, klevdb_compact_deletes(db, FAR_FUTURE, &d));
  CHECK_DEL(d, 5, 5 * ts);
  CHECK_SURVIVOR_RANGE(db, 5, 10);
  klevdb_stat st = stat_of(db);
  CHECK_EQ(st.messages, 5);
  CHECK_EQ(st.size, 5 * size_of(db, KLEN, VLEN) + 16);
  for (int i = 0; i < 5; i++) CHECK_EQ(offset_by_key(db, i), 5 + i);
  /* Nothing left to drop. */
  CHECK_CALL_OK(db, klevdb_compact_deletes(db, FAR_FUTURE, &d));
  CHECK_DEL(d, 0, 0);
  close_store(&s);
}

/* A tombstone that is not the oldest record of its key stays. */
static void t64b_compact_deletes_not_oldest(void) {
  tstore s;
  klevdb *db = open_store(&s, 1, 1, 0);
  char key[KLEN + 1];
  gen_key(key, 0);
  pub(db, key, 0, VLEN, T0);            /* 0: value k0 */
  pub(db, key, 0, 0, T0 + SEC);         /* 1: tombstone k0 (not oldest) */
  pub(db, NULL, 1, 0, T0 + 2 * SEC);    /* 2: absent key, tombstone */
  pub(db, NULL, 1, 0, T0 + 3 * SEC);    /* 3: absent key again: seen */
  gen_key(key, 1);
  pub(db, key, 1, 0, T0 + 4 * SEC);     /* 4: tombstone k1 (oldest) */
  ivec exp = {0};
  iv_push(&exp, 2);
  iv_push(&exp, 4);
  CHECK_FIND(db, KLEVDB_FIND_DELETES, FAR_FUTURE, exp);
  iv_free(&exp);
  /* before excludes offset 4 (strictly later). */
  iv_push(&exp, 2);
  CHECK_FIND(db, KLEVDB_FIND_DELETES, T0 + 4 * SEC - 1, exp);
  iv_free(&exp);
  klevdb_deleted d = {-1, -1};
  CHECK_CALL_OK(db, klevdb_compact_deletes(db, FAR_FUTURE, &d));
  CHECK_DEL(d, 2, size_of(db, 0, 0) + size_of(db, KLEN, 0));
  iv_push(&exp, 0);
  iv_push(&exp, 1);
  iv_push(&exp, 3);
  CHECK_SURVIVORS(db, exp);
  iv_free(&exp);
  close_store(&s);
}

/* ---- 65-70: CompactUpdates ---- */

static void t65_compact_updates_nothing(void) {
  tstore s;
  klevdb *db = open_store(&s, 1, 1, 0);
  klevdb_deleted d = {-1, -1};
  CHECK_CALL_OK(db, klevdb_compact_updates(db, FAR_FUTURE, &d));
  CHECK_DEL(d, 0, 0);
  pub_gen_range(db, 0, 5);
  CHECK_CALL_OK(db, klevdb_compact_updates(db, FAR_FUTURE, &d));
  CHECK_DEL(d, 0, 0);
  for (int i = 0; i < 5; i++) CHECK_EQ(offset_by_key(db, i), i);
  CHECK_SURVIVOR_RANGE(db, 0, 5);
  close_store(&s);
}

static void t66_67_68_compact_updates_republished(void) {
  int64_t sz;
  /* 66: k0 re-published. */
  {
    tstore s;
    klevdb *db = open_store(&s, 1, 1, 0);
    sz = size_of(db, KLEN, VLEN);
    pub_gen_range(db, 0, 5);
    pub_gen(db, 0);  /* offset 5, time T0 (same as the original) */
    CHECK_FIND_RANGE(db, KLEVDB_FIND_UPDATES, FAR_FUTURE, 0, 1);
    klevdb_deleted d = {-1, -1};
    CHECK_CALL_OK(db, klevdb_compact_updates(db, FAR_FUTURE, &d));
    CHECK_DEL(d, 1, sz);
    CHECK_SURVIVOR_RANGE(db, 1, 6);
    CHECK_EQ(offset_by_key(db, 0), 5);
    for (int i = 1; i < 5; i++) CHECK_EQ(offset_by_key(db, i), i);
    close_store(&s);
  }
  /* 67: k4 (the last) re-published. */
  {
    tstore s;
    klevdb *db = open_store(&s, 1, 1, 0);
    pub_gen_range(db, 0, 5);
    pub_gen(db, 4);  /* offset 5 */
    klevdb_deleted d = {-1, -1};
    CHECK_CALL_OK(db, klevdb_compact_updates(db, FAR_FUTURE, &d));
    CHECK_DEL(d, 1, sz);
    ivec exp = {0};
    iv_range(&exp, 0, 4);
    iv_push(&exp, 5);
    CHECK_SURVIVORS(db, exp);
    iv_free(&exp);
    CHECK_EQ(offset_by_key(db, 4), 5);
    close_store(&s);
  }
  /* 68: all 5 re-published. */
  {
    tstore s;
    klevdb *db = open_store(&s, 1, 1, 0);
    pub_gen_range(db, 0, 5);
    pub_gen_range(db, 0, 5);  /* offsets 5..9 */
    CHECK_FIND_RANGE(db, KLEVDB_FIND_UPDATES, FAR_FUTURE, 0, 5);
    klevdb_deleted d = {-1, -1};
    CHECK_CALL_OK(db, klevdb_compact_updates(db, FAR_FUTURE, &d));
    CHECK_DEL(d, 5, 5 * sz);
    CHECK_SURVIVOR_RANGE(db, 5, 10);
    for (int i = 0; i < 5; i++) CHECK_EQ(offset_by_key(db, i), 5 + i);
    klevdb_stat st = stat_of(db);
    CHECK_EQ(st.messages, 5);
    CHECK_EQ(st.size, 5 * sz + 16);
    close_store(&s);
  }
}

static void t69_compact_updates_window(void) {
  tstore s;
  klevdb *db = open_store(&s, 1, 1, 0);
  int64_t sz = size_of(db, KLEN, VLEN);
  pub_gen_range(db, 0, 5);
  char key[KLEN + 1];
  for (int i = 0; i < 5; i++) {  /* copies one hour later: offsets 5..9 */
    gen_key(key, i);
    pub(db, key, i, VLEN, T0 + 3600 * SEC + i * SEC);
  }
  int64_t before = T0 + 3600 * SEC + 2 * SEC;  /* time of copy #2 */
  CHECK_FIND_RANGE(db, KLEVDB_FIND_UPDATES, before, 0, 3);
  CHECK_FIND_RANGE(db, KLEVDB_FIND_UPDATES, before - 1, 0, 2);
  klevdb_deleted d = {-1, -1};
  CHECK_CALL_OK(db, klevdb_compact_updates(db, before, &d));
  CHECK_DEL(d, 3, 3 * sz);
  CHECK_SURVIVOR_RANGE(db, 3, 10);
  for (int i = 0; i < 5; i++) CHECK_EQ(offset_by_key(db, i), 5 + i);
  /* A window before the copies finds nothing (each key seen once). */
  CHECK_CALL_OK(db, klevdb_compact_updates(db, T0 + 3599 * SEC, &d));
  CHECK_DEL(d, 0, 0);
  close_store(&s);
}

static void t70_compact_updates_absent_keys(void) {
  tstore s;
  klevdb *db = open_store(&s, 1, 1, 0);
  char key[KLEN + 1];
  gen_key(key, 0);
  pub(db, key, 0, VLEN, T0);
  pub(db, NULL, 1, VLEN, T0 + SEC);
  pub(db, NULL, 2, VLEN, T0 + 2 * SEC);
  CHECK_FIND_RANGE(db, KLEVDB_FIND_UPDATES, FAR_FUTURE, 1, 2);
  klevdb_deleted d = {-1, -1};
  CHECK_CALL_OK(db, klevdb_compact_updates(db, FAR_FUTURE, &d));
  CHECK_DEL(d, 1, size_of(db, 0, VLEN));
  ivec exp = {0};
  iv_push(&exp, 0);
  iv_push(&exp, 2);
  CHECK_SURVIVORS(db, exp);
  iv_free(&exp);
  close_store(&s);
}

/* ---- 71-73: TrimByAge ---- */

static void t71_72_trim_by_age(int times) {
  tstore s;
  klevdb *db = open_store(&s, 1, times, 0);
  int64_t sz = size_of(db, KLEN, VLEN);
  CHECK_EQ(sz, 36 + KLEN + VLEN + (times ? 32 : 24));
  pub_gen_range(db, 0, 20);
  int64_t before = T0 + 10 * SEC - MS;  /* time(msg10) - 1 ms */
  if (times) {
    int64_t off = -100, t = 0;
    CHECK_CALL_OK(db, klevdb_offset_by_time(db, before, &off, &t));
    CHECK_EQ(off, 10);
    CHECK_EQ(t, T0 + 10 * SEC);
  } else {
    int64_t off;
    CHECK_CALL(db, klevdb_offset_by_time(db, before, &off, NULL), KLEVDB_ENOINDEX);
  }
  CHECK_FIND_RANGE(db, KLEVDB_FIND_AGE, before, 0, 10);
  klevdb_deleted d = {-1, -1};
  CHECK_CALL_OK(db, klevdb_trim_by_age(db, before, &d));
  CHECK_DEL(d, 10, 10 * sz);
  CHECK_EQ(oldest(db), 10);
  CHECK_SURVIVOR_RANGE(db, 10, 20);
  klevdb_stat st = stat_of(db);
  CHECK_EQ(st.messages, 10);
  CHECK_EQ(st.size, 10 * sz + 16);
  /* Again: nothing older is left. */
  CHECK_CALL_OK(db, klevdb_trim_by_age(db, before, &d));
  CHECK_DEL(d, 0, 0);
  close_store(&s);
}

static void t73_trim_by_age_all(void) {
  tstore s;
  klevdb *db = open_store(&s, 1, 1, 0);
  int64_t sz = size_of(db, KLEN, VLEN);
  pub_gen_range(db, 0, 20);
  int64_t before = T0 + 19 * SEC + MS;  /* last time + 1 ms */
  CHECK_FIND_RANGE(db, KLEVDB_FIND_AGE, before, 0, 20);  /* in order */
  klevdb_deleted d = {-1, -1};
  CHECK_CALL_OK(db, klevdb_trim_by_age(db, before, &d));
  CHECK_DEL(d, 20, 20 * sz);
  klevdb_batch b = KLEVDB_BATCH_INIT;
  CHECK_CALL_OK(db, klevdb_consume(db, KLEVDB_OFFSET_OLDEST, 32, &b));
  CHECK_EQ(b.next_offset, 20);
  CHECK_EQ(b.len, 0);
  klevdb_batch_free(&b);
  klevdb_stat st = stat_of(db);
  CHECK_EQ(st.segments, 1);
  CHECK_EQ(st.messages, 0);
  CHECK_EQ(st.size, 16);
  int64_t next = -1;
  CHECK_CALL_OK(db, klevdb_next_offset(db, &next));
  CHECK_EQ(next, 20);
  /* No record at all: nothing to trim (Go fails here with "no time items"). */
  CHECK_CALL_OK(db, klevdb_trim_by_age(db, before, &d));
  CHECK_EQ(d.count, 0);
  /* And publishing after a full trim continues at 20. */
  CHECK_EQ(pub_gen(db, 20), 20);
  CHECK_SURVIVOR_RANGE(db, 20, 21);
  close_store(&s);
}

/* differences D2 (fixed in C): after the newest record is deleted the head is empty;
** Go's OffsetByTime then fails and so does TrimByAge. Here it works. */
static void tb2_trim_by_age_empty_head(void) {
  tstore s;
  klevdb *db = open_store(&s, 1, 1, 0);
  int64_t sz = size_of(db, KLEN, VLEN);
  pub_gen_range(db, 0, 20);
  int64_t last = 19;
  klevdb_deleted d = {-1, -1};
  CHECK_CALL_OK(db, klevdb_delete(db, &last, 1, &d, NULL));
  CHECK_DEL(d, 1, sz);
  CHECK_EQ(stat_of(db).segments, 2);  /* 0..18 and an empty head at 20 */
  int64_t before = T0 + 5 * SEC - 1;
  CHECK_FIND_RANGE(db, KLEVDB_FIND_AGE, before, 0, 5);
  CHECK_CALL_OK(db, klevdb_trim_by_age(db, before, &d));
  CHECK_DEL(d, 5, 5 * sz);
  CHECK_SURVIVOR_RANGE(db, 5, 19);
  /* Past every record: OffsetByTime says not found, the bound is next. */
  CHECK_CALL_OK(db, klevdb_trim_by_age(db, FAR_FUTURE, &d));
  CHECK_DEL(d, 14, 14 * sz);
  klevdb_stat st = stat_of(db);
  CHECK_EQ(st.segments, 1);
  CHECK_EQ(st.messages, 0);
  CHECK_EQ(st.size, 16);
  close_store(&s);
}

/* ---- 74-77: TrimByCount / TrimByOffset / TrimBySize ---- */

static void t74_trim_by_count(void) {
  tstore s;
  klevdb *db = open_store(&s, 1, 1, 0);
  int64_t sz = size_of(db, KLEN, VLEN);
  pub_gen_range(db, 0, 20);
  klevdb_deleted d = {-1, -1};
  CHECK_CALL(db, klevdb_trim_by_count(db, -1, &d), KLEVDB_EINVAL);
  CHECK_CALL_OK(db, klevdb_trim_by_count(db, 21, &d));
  CHECK_DEL(d, 0, 0);
  CHECK_CALL_OK(db, klevdb_trim_by_count(db, 20, &d));
  CHECK_DEL(d, 0, 0);
  CHECK_FIND_RANGE(db, KLEVDB_FIND_COUNT, 10, 0, 10);
  CHECK_CALL_OK(db, klevdb_trim_by_count(db, 10, &d));
  CHECK_DEL(d, 10, 10 * sz);
  klevdb_stat st = stat_of(db);
  CHECK_EQ(st.messages, 10);
  CHECK_EQ(st.size, 10 * sz + 16);
  CHECK_EQ(oldest(db), 10);
  CHECK_SURVIVOR_RANGE(db, 10, 20);
  CHECK_CALL_OK(db, klevdb_trim_by_count(db, 0, &d));
  CHECK_DEL(d, 10, 10 * sz);
  CHECK_EQ(stat_of(db).messages, 0);
  close_store(&s);
}

static void t75_trim_by_offset(void) {
  tstore s;
  klevdb *db = open_store(&s, 1, 1, 0);
  int64_t sz = size_of(db, KLEN, VLEN);
  pub_gen_range(db, 0, 20);
  klevdb_deleted d = {-1, -1};
  CHECK_CALL_OK(db, klevdb_trim_by_offset(db, 0, &d));
  CHECK_DEL(d, 0, 0);
  CHECK_FIND_RANGE(db, KLEVDB_FIND_OFFSET, 10, 0, 10);
  CHECK_CALL_OK(db, klevdb_trim_by_offset(db, 10, &d));
  CHECK_DEL(d, 10, 10 * sz);
  CHECK_EQ(oldest(db), 10);
  CHECK_SURVIVOR_RANGE(db, 10, 20);
  CHECK_CALL_OK(db, klevdb_trim_by_offset(db, 10, &d));
  CHECK_DEL(d, 0, 0);
  CHECK_CALL_OK(db, klevdb_trim_by_offset(db, 100, &d));
  CHECK_DEL(d, 10, 10 * sz);
  klevdb_stat st = stat_of(db);
  CHECK_EQ(st.messages, 0);
  CHECK_EQ(st.size, 16);
  klevdb_batch b = KLEVDB_BATCH_INIT;
  CHECK_CALL(db, klevdb_get(db, KLEVDB_OFFSET_OLDEST, &b), KLEVDB_EINVALID_OFFSET);
  klevdb_batch_free(&b);
  close_store(&s);
}

static void t76_trim_by_offset_special(void) {
  tstore s;
  klevdb *db = open_store(&s, 1, 1, 0);
  int64_t sz = size_of(db, KLEN, VLEN);
  pub_gen_range(db, 0, 20);
  klevdb_deleted d = {-1, -1};
  CHECK_CALL_OK(db, klevdb_trim_by_offset(db, KLEVDB_OFFSET_OLDEST, &d));
  CHECK_DEL(d, 0, 0);
  /* Other negative offsets (not Newest) bound the scan below 0. */
  CHECK_CALL_OK(db, klevdb_trim_by_offset(db, KLEVDB_OFFSET_INVALID, &d));
  CHECK_DEL(d, 0, 0);
  CHECK_CALL_OK(db, klevdb_trim_by_offset(db, -100, &d));
  CHECK_DEL(d, 0, 0);
  CHECK_FIND_RANGE(db, KLEVDB_FIND_OFFSET, KLEVDB_OFFSET_NEWEST, 0, 20);
  CHECK_CALL_OK(db, klevdb_trim_by_offset(db, KLEVDB_OFFSET_NEWEST, &d));
  CHECK_DEL(d, 20, 20 * sz);
  klevdb_batch b = KLEVDB_BATCH_INIT;
  CHECK_CALL(db, klevdb_get(db, KLEVDB_OFFSET_OLDEST, &b), KLEVDB_EINVALID_OFFSET);
  klevdb_batch_free(&b);
  int64_t next = -1;
  CHECK_CALL_OK(db, klevdb_next_offset(db, &next));
  CHECK_EQ(next, 20);
  close_store(&s);
}

static void t77_trim_by_size(void) {
  tstore s;
  klevdb *db = open_store(&s, 1, 1, 0);
  int64_t sz = size_of(db, KLEN, VLEN);
  pub_gen_range(db, 0, 20);
  CHECK_EQ(stat_of(db).size, 20 * sz + 16);
  klevdb_deleted d = {-1, -1};
  CHECK_CALL(db, klevdb_trim_by_size(db, -1, &d), KLEVDB_EINVAL);
  CHECK_CALL_OK(db, klevdb_trim_by_size(db, 21 * sz, &d));
  CHECK_DEL(d, 0, 0);
  CHECK_FIND_RANGE(db, KLEVDB_FIND_SIZE, 11 * sz, 0, 10);
  CHECK_CALL_OK(db, klevdb_trim_by_size(db, 11 * sz, &d));
  CHECK_DEL(d, 10, 10 * sz);
  CHECK_EQ(stat_of(db).size, 10 * sz + 16);
  CHECK_EQ(oldest(db), 10);
  CHECK_SURVIVOR_RANGE(db, 10, 20);
  /* Size == max exactly: at least one record goes (removes until below). */
  CHECK_CALL_OK(db, klevdb_trim_by_size(db, 10 * sz + 16, &d));
  CHECK_DEL(d, 1, sz);
  CHECK_SURVIVOR_RANGE(db, 11, 20);
  /* One byte above the size: nothing. */
  CHECK_CALL_OK(db, klevdb_trim_by_size(db, 9 * sz + 17, &d));
  CHECK_DEL(d, 0, 0);
  close_store(&s);
}

/* ---- several segments ---- */

/* V2 rollover at 5 records: after 5 the log is 8 + 5*174 > 870 bytes, so
** the 6th publish starts a new segment (docs/files.md, rollover). */
#define REC (36 + KLEN + VLEN)
#define ROLL5 (5 * REC)

static void tms_trim_by_count(void) {
  tstore s;
  klevdb *db = open_store(&s, 1, 1, ROLL5);
  int64_t sz = size_of(db, KLEN, VLEN);
  pub_gen_range(db, 0, 50);
  klevdb_stat st = stat_of(db);
  CHECK_EQ(st.segments, 10);
  CHECK_EQ(st.messages, 50);
  CHECK_EQ(st.size, 50 * sz + 10 * 16);
  CHECK_FIND_RANGE(db, KLEVDB_FIND_COUNT, 17, 0, 33);
  klevdb_deleted d = {-1, -1};
  CHECK_CALL_OK(db, klevdb_trim_by_count(db, 17, &d));
  CHECK_DEL(d, 33, 33 * sz);
  CHECK_SURVIVOR_RANGE(db, 33, 50);
  st = stat_of(db);
  /* Segments 0..25 gone, 30..34 rewritten to base 33, 35, 40, 45 kept. */
  CHECK_EQ(st.segments, 4);
  CHECK_EQ(st.messages, 17);
  CHECK_EQ(st.size, 17 * sz + 4 * 16);
  CHECK_EQ(oldest(db), 33);
  klevdb_batch b = KLEVDB_BATCH_INIT;
  CHECK_CALL(db, klevdb_get(db, 32, &b), KLEVDB_ENOTFOUND);
  CHECK_CALL_OK(db, klevdb_get(db, 33, &b));
  klevdb_batch_free(&b);
  close_store(&s);
}

static void tms_trim_by_age(void) {
  tstore s;
  klevdb *db = open_store(&s, 1, 1, ROLL5);
  int64_t sz = size_of(db, KLEN, VLEN);
  pub_gen_range(db, 0, 50);
  int64_t before = T0 + 23 * SEC - MS;
  int64_t off = -100;
  CHECK_CALL_OK(db, klevdb_offset_by_time(db, before, &off, NULL));
  CHECK_EQ(off, 23);
  CHECK_FIND_RANGE(db, KLEVDB_FIND_AGE, before, 0, 23);
  klevdb_deleted d = {-1, -1};
  CHECK_CALL_OK(db, klevdb_trim_by_age(db, before, &d));
  CHECK_DEL(d, 23, 23 * sz);
  CHECK_SURVIVOR_RANGE(db, 23, 50);
  klevdb_stat st = stat_of(db);
  CHECK_EQ(st.segments, 6);
  CHECK_EQ(st.messages, 27);
  CHECK_EQ(st.size, 27 * sz + 6 * 16);
  /* A bound on a segment boundary (msg 30 starts a segment). */
  before = T0 + 30 * SEC - 1;
  CHECK_FIND_RANGE(db, KLEVDB_FIND_AGE, before, 23, 30);
  CHECK_CALL_OK(db, klevdb_trim_by_age(db, before, &d));
  CHECK_DEL(d, 7, 7 * sz);
  CHECK_SURVIVOR_RANGE(db, 30, 50);
  CHECK_EQ(stat_of(db).segments, 4);
  /* Everything, including the head: one empty head at the old next. */
  CHECK_CALL_OK(db, klevdb_trim_by_age(db, FAR_FUTURE, &d));
  CHECK_DEL(d, 20, 20 * sz);
  st = stat_of(db);
  CHECK_EQ(st.segments, 1);
  CHECK_EQ(st.messages, 0);
  CHECK_EQ(st.size, 16);
  int64_t next = -1;
  CHECK_CALL_OK(db, klevdb_next_offset(db, &next));
  CHECK_EQ(next, 50);
  close_store(&s);
}

/* differences D22: FindBySize subtracts Size() per record but Stat counts 16 header
** bytes per segment; with 10 segments that is 160 extra bytes. */
static void tms_trim_by_size(void) {
  tstore s;
  klevdb *db = open_store(&s, 1, 1, ROLL5);
  int64_t sz = size_of(db, KLEN, VLEN);
  pub_gen_range(db, 0, 50);
  /* Remove k while (50-k)*sz + 160 >= 20*sz: k = 31 for sz = 206. */
  CHECK_EQ(sz, 206);
  CHECK_FIND_RANGE(db, KLEVDB_FIND_SIZE, 20 * sz, 0, 31);
  klevdb_deleted d = {-1, -1};
  CHECK_CALL_OK(db, klevdb_trim_by_size(db, 20 * sz, &d));
  CHECK_DEL(d, 31, 31 * sz);
  CHECK_SURVIVOR_RANGE(db, 31, 50);
  klevdb_stat st = stat_of(db);
  CHECK_EQ(st.segments, 4);
  CHECK_EQ(st.size, 19 * sz + 4 * 16);
  close_store(&s);
}

/* Non-contiguous found offsets across segments: several ranges, one call. */
static void tms_compact_updates_gaps(void) {
  tstore s;
  klevdb *db = open_store(&s, 1, 1, ROLL5);
  int64_t sz = size_of(db, KLEN, VLEN);
  char key[KLEN + 1];
  for (int i = 0; i < 30; i++) {
    if (i % 2 == 0)
      snprintf(key, sizeof(key), "%10s", "even");
    else
      gen_key(key, i);
    pub(db, key, i, VLEN, T0 + i * SEC);
  }
  ivec exp = {0};
  for (int i = 0; i < 28; i += 2) iv_push(&exp, i);
  CHECK_FIND(db, KLEVDB_FIND_UPDATES, FAR_FUTURE, exp);
  iv_free(&exp);
  klevdb_deleted d = {-1, -1};
  CHECK_CALL_OK(db, klevdb_compact_updates(db, FAR_FUTURE, &d));
  CHECK_DEL(d, 14, 14 * sz);
  for (int i = 1; i < 30; i += 2) {
    iv_push(&exp, i);
    if (i == 27) iv_push(&exp, 28);
  }
  CHECK_SURVIVORS(db, exp);
  iv_free(&exp);
  klevdb_stat st = stat_of(db);
  CHECK_EQ(st.segments, 6);
  CHECK_EQ(st.messages, 16);
  CHECK_EQ(st.size, 16 * sz + 6 * 16);
  /* Now a trim over the gaps: the 5 oldest survivors 1,3,5,7,9. */
  CHECK_CALL_OK(db, klevdb_trim_by_count(db, 11, &d));
  CHECK_DEL(d, 5, 5 * sz);
  CHECK_EQ(oldest(db), 11);
  CHECK_EQ(stat_of(db).messages, 11);
  close_store(&s);
}

/* ---- FindByAge ties and batch boundaries (as Go's finders) ---- */

static void tie_single_segment(void) {
  char key[KLEN + 1];
  /* 0..9 at T0+i s, 10..99 all at T0+10s; before = T0+10s; bound = 10.
  ** The first batch (0..31) is all <= before; the cursor (32) is then
  ** past the bound, so 32..99 stay although their time equals before. */
  {
    tstore s;
    klevdb *db = open_store(&s, 1, 1, 0);
    int64_t sz = size_of(db, KLEN, VLEN);
    for (int i = 0; i < 100; i++) {
      gen_key(key, i);
      pub(db, key, i, VLEN, T0 + (i < 10 ? i : 10) * SEC);
    }
    int64_t before = T0 + 10 * SEC, off = -100;
    CHECK_CALL_OK(db, klevdb_offset_by_time(db, before, &off, NULL));
    CHECK_EQ(off, 10);
    CHECK_FIND_RANGE(db, KLEVDB_FIND_AGE, before, 0, 32);
    klevdb_deleted d = {-1, -1};
    CHECK_CALL_OK(db, klevdb_trim_by_age(db, before, &d));
    CHECK_DEL(d, 32, 32 * sz);
    CHECK_SURVIVOR_RANGE(db, 32, 100);
    /* Now the bound is 32 (the first record, rewritten index): one batch,
    ** 32..63, is taken and the cursor 64 is past the bound. */
    CHECK_FIND_RANGE(db, KLEVDB_FIND_AGE, before, 32, 64);
    close_store(&s);
  }
  /* The bound inside the second batch: 0..39 at T0+i, 40..99 at T0+40s,
  ** before = T0+40s: bound 40, batches 0..31 and 32..63 -> 0..63. */
  {
    tstore s;
    klevdb *db = open_store(&s, 1, 1, 0);
    for (int i = 0; i < 100; i++) {
      gen_key(key, i);
      pub(db, key, i, VLEN, T0 + (i < 40 ? i : 40) * SEC);
    }
    CHECK_FIND_RANGE(db, KLEVDB_FIND_AGE, T0 + 40 * SEC, 0, 64);
    /* before just under the tie: bound 40, stop at 40 (time > before). */
    CHECK_FIND_RANGE(db, KLEVDB_FIND_AGE, T0 + 40 * SEC - 1, 0, 40);
    close_store(&s);
  }
  /* A later record inside the crossing batch stops everything: 0..9 at
  ** T0+i, 10..14 at T0+10s, 15 at T0+20s, 16..39 at T0+10s. */
  {
    tstore s;
    klevdb *db = open_store(&s, 1, 1, 0);
    for (int i = 0; i < 40; i++) {
      gen_key(key, i);
      int64_t t = i < 10 ? i : i == 15 ? 20 : 10;
      pub(db, key, i, VLEN, T0 + t * SEC);
    }
    CHECK_FIND_RANGE(db, KLEVDB_FIND_AGE, T0 + 10 * SEC, 0, 15);
    close_store(&s);
  }
  /* Without a time index the bound is NextOffset: ties are all taken. */
  {
    tstore s;
    klevdb *db = open_store(&s, 1, 0, 0);
    for (int i = 0; i < 100; i++) {
      gen_key(key, i);
      pub(db, key, i, VLEN, T0 + (i < 10 ? i : 10) * SEC);
    }
    CHECK_FIND_RANGE(db, KLEVDB_FIND_AGE, T0 + 10 * SEC, 0, 100);
    close_store(&s);
  }
}

/* Batches never cross segments, so with 5-record segments every batch is
** one segment. All 20 records have the same time. */
static void tie_multi_segment(void) {
  tstore s;
  klevdb *db = open_store(&s, 1, 1, ROLL5);
  char key[KLEN + 1];
  for (int i = 0; i < 20; i++) {
    gen_key(key, i);
    pub(db, key, i, VLEN, T0);
  }
  CHECK_EQ(stat_of(db).segments, 4);
  int64_t off = -100;
  CHECK_CALL_OK(db, klevdb_offset_by_time(db, T0, &off, NULL));
  /* Go walks segments newest first and stops at the first one whose first
  ** timestamp equals the target: offset 15, not 0 (as Go's GetByTime). */
  CHECK_EQ(off, 15);
  /* Scan until the cursor reaches the bound, whole segments at a time. */
  int64_t end = off <= 0 ? 5 : (off + 4) / 5 * 5;
  CHECK_FIND_RANGE(db, KLEVDB_FIND_AGE, T0, 0, end);
  klevdb_deleted d = {-1, -1};
  CHECK_CALL_OK(db, klevdb_trim_by_age(db, T0, &d));
  CHECK_EQ(d.count, end);
  CHECK_SURVIVOR_RANGE(db, end, 20);
  close_store(&s);
}

/* Many keys of many lengths: the key table grows and rehashes, the key
** arena moves (keys are copied out of the reused batch memory). */
static void t_many_keys(void) {
  tstore s;
  klevdb *db = open_store(&s, 1, 1, 64 * 1024);
  static char keys[1000][80];
  static const char pad[] = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
  int64_t want = 0;
  for (int i = 0; i < 1000; i++) {
    snprintf(keys[i], sizeof(keys[i]), "%d-%.*s", i, i % 60, pad);
    pub(db, keys[i], i, i % 7 ? VLEN : 0, T0 + i * SEC);
  }
  for (int i = 1; i < 1000; i += 2) {  /* odd keys again: 1000..1499 */
    pub(db, keys[i], i, VLEN, T0 + (1000 + i) * SEC);
    want += size_of(db, strlen(keys[i]), i % 7 ? VLEN : 0);
  }
  CHECK(stat_of(db).segments > 3);
  ivec exp = {0};
  for (int i = 1; i < 1000; i += 2) iv_push(&exp, i);
  CHECK_FIND(db, KLEVDB_FIND_UPDATES, FAR_FUTURE, exp);
  iv_free(&exp);
  /* Tombstones (i % 7 == 0) that are the oldest of their key: all of them
  ** before compacting updates (each is its key's first record). */
  for (int i = 0; i < 1000; i += 7) iv_push(&exp, i);
  CHECK_FIND(db, KLEVDB_FIND_DELETES, FAR_FUTURE, exp);
  iv_free(&exp);
  klevdb_deleted d = {-1, -1};
  CHECK_CALL_OK(db, klevdb_compact_updates(db, FAR_FUTURE, &d));
  CHECK_DEL(d, 500, want);
  CHECK_EQ(stat_of(db).messages, 1000);
  for (int i = 0; i < 1000; i++) {
    int64_t off = -100;
    CHECK_CALL_OK(db, klevdb_offset_by_key(db, keys[i], strlen(keys[i]), &off));
    if (off != (i % 2 ? 1000 + i / 2 : i)) {
      CHECK_EQ(off, i % 2 ? 1000 + i / 2 : i);
      break;
    }
  }
  /* The even tombstones remain the oldest of their keys. */
  for (int i = 0; i < 1000; i += 14) iv_push(&exp, i);
  CHECK_FIND(db, KLEVDB_FIND_DELETES, FAR_FUTURE, exp);
  iv_free(&exp);
  close_store(&s);
}

/* A read-only store: finders work, a trim that finds nothing succeeds
** (no delete is attempted), one that finds something is refused. */
static void t_readonly(void) {
  tstore s;
  klevdb *db = open_store(&s, 1, 1, 0);
  pub_gen_range(db, 0, 10);
  CHECK_CALL_OK(db, klevdb_close(db));
  klevdb_options o = {0};
  o.key_index = 1;
  o.time_index = 1;
  o.readonly = 1;
  klevdb_error e;
  db = NULL;
  CHECK_CALL_OK(NULL, klevdb_open(s.dir, &o, &db, &e));
  s.db = db;
  if (!db) return;
  CHECK_FIND_RANGE(db, KLEVDB_FIND_COUNT, 5, 0, 5);
  klevdb_deleted d = {-1, -1};
  CHECK_CALL_OK(db, klevdb_trim_by_count(db, 10, &d));
  CHECK_DEL(d, 0, 0);
  CHECK_CALL(db, klevdb_trim_by_count(db, 5, &d), KLEVDB_EREADONLY);
  CHECK_DEL(d, 0, 0);
  CHECK_EQ(stat_of(db).messages, 10);
  close_store(&s);
}

/* ---- argument checks ---- */

static void t_args(void) {
  tstore s;
  klevdb *db = open_store(&s, 1, 1, 0);
  pub_gen_range(db, 0, 3);
  int64_t *o = NULL;
  size_t n = 0;
  CHECK_CALL(db, klevdb_find_offsets(db, (klevdb_find)99, 0, &o, &n), KLEVDB_EINVAL);
  CHECK_CALL(db, klevdb_find_offsets(db, KLEVDB_FIND_COUNT, -1, &o, &n), KLEVDB_EINVAL);
  CHECK_CALL(db, klevdb_find_offsets(db, KLEVDB_FIND_SIZE, -5, &o, &n), KLEVDB_EINVAL);
  CHECK_CALL(db, klevdb_find_offsets(db, KLEVDB_FIND_AGE, 0, NULL, &n), KLEVDB_EINVAL);
  CHECK(o == NULL);
  /* A NULL result pointer is allowed for the trims. */
  CHECK_CALL_OK(db, klevdb_trim_by_count(db, 1, NULL));
  CHECK_SURVIVOR_RANGE(db, 2, 3);
  close_store(&s);
}

int main(void) {
  t62_compact_deletes_empty();
  t63_compact_deletes_no_tombstones();
  t64_compact_deletes_tombstones();
  t64b_compact_deletes_not_oldest();
  t65_compact_updates_nothing();
  t66_67_68_compact_updates_republished();
  t69_compact_updates_window();
  t70_compact_updates_absent_keys();
  t71_72_trim_by_age(1);
  t71_72_trim_by_age(0);
  t73_trim_by_age_all();
  tb2_trim_by_age_empty_head();
  t74_trim_by_count();
  t75_trim_by_offset();
  t76_trim_by_offset_special();
  t77_trim_by_size();
  tms_trim_by_count();
  tms_trim_by_age();
  tms_trim_by_size();
  tms_compact_updates_gaps();
  tie_single_segment();
  tie_multi_segment();
  t_many_keys();
  t_readonly();
  t_args();
  chk_name = "retention";
  return check_done();
}
