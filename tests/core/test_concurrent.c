/*
** test_concurrent.c - one writer, reader threads, a deleter and gc on one
** store at once (each thread with its own handle, as the API asks): readers
** never see a torn, wrong or out-of-order message, and nothing is lost.
*/
#include <pthread.h>
#include <stdatomic.h>

#include "check.h"

#define TOTAL 30000
#define KEEP 8000      /* the deleter trims below next - KEEP */

typedef struct shared {
  const char *dir;
  klevdb_options o;
  atomic_int done;
  atomic_long bad;           /* wrong, torn or out-of-order messages seen */
  atomic_long errors;        /* failed calls */
  atomic_long read;          /* messages checked by readers */
  atomic_long deleted;
} shared;

static int same_msg(const klevdb_msg *m) {
  tmsg t;
  gen(&t, (int)m->offset);
  return m->time == t.m.time && m->key_len == 10 && m->value_len == 128 &&
         memcmp(m->key, t.key, 10) == 0 && memcmp(m->value, t.val, 128) == 0;
}

static klevdb *open_shared(shared *s) {
  klevdb *db;
  klevdb_error e;
  if (klevdb_open(s->dir, &s->o, &db, &e)) {
    atomic_fetch_add(&s->errors, 1);
    return NULL;
  }
  return db;
}

static void *writer(void *arg) {
  shared *s = arg;
  klevdb *db = open_shared(s);
  if (!db) return NULL;
  tmsg t[8];
  klevdb_msg m[8];
  for (int i = 0; i < TOTAL;) {
    int n = 1 + i % 8;
    if (i + n > TOTAL) n = TOTAL - i;
    for (int k = 0; k < n; k++) {
      gen(&t[k], i + k);
      m[k] = t[k].m;
    }
    int64_t next;
    if (klevdb_publish(db, m, (size_t)n, &next) || next != i + n) atomic_fetch_add(&s->errors, 1);
    i += n;
  }
  atomic_store(&s->done, 1);
  klevdb_close(db);
  return NULL;
}

/* Consumes from the oldest over and over: offsets only go up, each message
** is the one published at its offset. */
static void *reader(void *arg) {
  shared *s = arg;
  klevdb *db = open_shared(s);
  if (!db) return NULL;
  klevdb_batch b = KLEVDB_BATCH_INIT;
  int64_t cur = KLEVDB_OFFSET_OLDEST, last = -1;
  for (;;) {
    int fin = atomic_load(&s->done);
    if (klevdb_consume_blocking(db, cur, 16, 5, &b)) {
      atomic_fetch_add(&s->errors, 1);
      break;
    }
    for (size_t k = 0; k < b.len; k++) {
      if (b.msgs[k].offset <= last || !same_msg(&b.msgs[k])) atomic_fetch_add(&s->bad, 1);
      last = b.msgs[k].offset;
    }
    atomic_fetch_add(&s->read, (long)b.len);
    if (b.len) cur = b.next_offset;
    else if (fin && cur >= TOTAL) break;
    if (cur >= TOTAL && fin) {
      cur = KLEVDB_OFFSET_OLDEST;   /* a second pass over what is left */
      last = -1;
      if (atomic_load(&s->read) > 4 * TOTAL) break;
    }
  }
  klevdb_batch_free(&b);
  klevdb_close(db);
  return NULL;
}

/* Looks messages up by key, time and offset while they come and go. */
static void *getter(void *arg) {
  shared *s = arg;
  klevdb *db = open_shared(s);
  if (!db) return NULL;
  klevdb_batch b = KLEVDB_BATCH_INIT;
  uint64_t x = 88172645463325252ull;
  while (!atomic_load(&s->done)) {
    int64_t next;
    if (klevdb_next_offset(db, &next)) {
      atomic_fetch_add(&s->errors, 1);
      break;
    }
    if (next == 0) continue;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    int i = (int)(x % (uint64_t)next);
    char key[16];
    snprintf(key, sizeof(key), "%10d", i);
    klevdb_err e = klevdb_get_by_key(db, key, 10, &b);
    if (e == KLEVDB_OK && (b.msgs[0].offset != i || !same_msg(&b.msgs[0]))) atomic_fetch_add(&s->bad, 1);
    else if (e && e != KLEVDB_ENOTFOUND) atomic_fetch_add(&s->errors, 1);
    e = klevdb_get(db, i, &b);
    if (e == KLEVDB_OK && (b.msgs[0].offset != i || !same_msg(&b.msgs[0]))) atomic_fetch_add(&s->bad, 1);
    else if (e && e != KLEVDB_ENOTFOUND) atomic_fetch_add(&s->errors, 1);
    e = klevdb_get_by_time(db, TI(i), &b);
    /* Deleted messages move the answer forward, never to a wrong message. */
    if (e == KLEVDB_OK && (b.msgs[0].offset < i || !same_msg(&b.msgs[0]))) atomic_fetch_add(&s->bad, 1);
    else if (e && e != KLEVDB_ENOTFOUND) atomic_fetch_add(&s->errors, 1);
  }
  klevdb_batch_free(&b);
  klevdb_close(db);
  return NULL;
}

/* Trims the old part and releases idle segments while the others work. */
static void *deleter(void *arg) {
  shared *s = arg;
  klevdb *db = open_shared(s);
  if (!db) return NULL;
  while (!atomic_load(&s->done)) {
    int64_t next;
    klevdb_deleted d;
    if (klevdb_next_offset(db, &next)) atomic_fetch_add(&s->errors, 1);
    if (next > KEEP) {
      if (klevdb_trim_by_offset(db, next - KEEP, &d)) atomic_fetch_add(&s->errors, 1);
      else atomic_fetch_add(&s->deleted, (long)d.count);
    }
    if (klevdb_gc(db, 0)) atomic_fetch_add(&s->errors, 1);
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
  }
  klevdb_close(db);
  return NULL;
}

int main(void) {
  chk_name = "test_concurrent";
  SECTION("writer, readers, getter, deleter");
  char dir[256];
  tmp_dir(dir, sizeof(dir));
  shared s = {.dir = dir, .o = opts_tk()};
  s.o.rollover = 64 << 10;   /* many segments: rollovers under the readers */
  klevdb *keep = OPEN(dir, &s.o);   /* holds the store open for all threads */
  pthread_t th[6];
  void *(*fn[6])(void *) = {writer, reader, reader, reader, getter, deleter};
  for (int i = 0; i < 6; i++) pthread_create(&th[i], NULL, fn[i], &s);
  for (int i = 0; i < 6; i++) pthread_join(th[i], NULL);
  CHECK_EQ(atomic_load(&s.errors), 0);
  CHECK_EQ(atomic_load(&s.bad), 0);
  CHECK(atomic_load(&s.read) >= TOTAL);
  CHECK(atomic_load(&s.deleted) > 0);
  /* What is left is exactly the messages above the last trim. */
  CHECK_NEXT(keep, TOTAL);
  int64_t offs[TOTAL];
  long n = CONSUME_ALL(keep, 100, offs, TOTAL);
  CHECK(n > 0 && n <= TOTAL);
  CHECK_EQ(n + atomic_load(&s.deleted), TOTAL);
  if (n > 0) CHECK_EQ(offs[n - 1], TOTAL - 1);
  CHECK_OK(klevdb_close(keep));
  rm_rf(dir);
  return check_done();
}
