/*
** test_concurrent.c - one writer, reader threads, a deleter, compaction and
** gc on one store at once (each thread with its own handle, as the API
** asks), and a second process reading: readers never see a torn, wrong or
** out-of-order message, and nothing is lost.
*/
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/wait.h>

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

/* False, with the error counted and shown, unless rc is KLEVDB_OK. */
static bool ok_at(shared *s, klevdb *db, klevdb_err rc, const char *call, int line) {
  if (rc == KLEVDB_OK) return true;
  atomic_fetch_add(&s->errors, 1);
  fprintf(stderr, "test_concurrent.c:%d: %s: %s\n", line, call, klevdb_errmsg(db));
  return false;
}
#define ok(s, call) ok_at((s), db, (call), #call, __LINE__)

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
    if (ok(s, klevdb_publish(db, m, (size_t)n, &next)) && next != i + n) {
      fprintf(stderr, "test_concurrent.c:%d: publish: next %lld, want %d\n", __LINE__, (long long)next, i + n);
      atomic_fetch_add(&s->errors, 1);
    }
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
    if (!ok(s, klevdb_consume_blocking(db, cur, 16, 5, &b))) break;
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
    if (!ok(s, klevdb_next_offset(db, &next))) break;
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

/* Compacts while the others work (keys are unique here: it finds nothing,
** but scans the store under the writer's feet). */
static void *compactor(void *arg) {
  shared *s = arg;
  klevdb *db = open_shared(s);
  if (!db) return NULL;
  while (!atomic_load(&s->done)) {
    klevdb_deleted d;
    if (klevdb_compact_updates(db, TI(TOTAL), &d) || klevdb_compact_deletes(db, TI(TOTAL), &d))
      atomic_fetch_add(&s->errors, 1);
    else if (d.count) atomic_fetch_add(&s->bad, 1);
    struct timespec ts = {0, 3000000};
    nanosleep(&ts, NULL);
  }
  klevdb_close(db);
  return NULL;
}

/* Another process, read-only (no lock): follows the writer until told to
** stop, checking every message. Exits 0 if all was well. */
static int other_process(const char *dir, int stop_fd) {
  klevdb_options o = opts_tk();
  o.readonly = 1;
  klevdb *db;
  klevdb_error e;
  if (klevdb_open(dir, &o, &db, &e)) return 2;
  klevdb_batch b = KLEVDB_BATCH_INIT;
  int64_t cur = KLEVDB_OFFSET_OLDEST, last = -1;
  long seen = 0;
  int rc = 0;
  for (;;) {
    char c;
    int stopping = read(stop_fd, &c, 1) == 1;
    if (klevdb_consume_blocking(db, cur, 32, 5, &b)) {
      fprintf(stderr, "reader process: consume %lld: %s\n", (long long)cur, klevdb_errmsg(db));
      rc = 3;
      break;
    }
    for (size_t k = 0; k < b.len; k++) {
      if (b.msgs[k].offset <= last || !same_msg(&b.msgs[k])) rc = 4;
      last = b.msgs[k].offset;
    }
    seen += (long)b.len;
    if (b.len) cur = b.next_offset;
    if (stopping || rc) break;
  }
  klevdb_batch_free(&b);
  klevdb_close(db);
  return rc ? rc : (seen > 0 ? 0 : 5);
}

/* Trims the old part and releases idle segments while the others work. */
static void *deleter(void *arg) {
  shared *s = arg;
  klevdb *db = open_shared(s);
  if (!db) return NULL;
  while (!atomic_load(&s->done)) {
    int64_t next;
    klevdb_deleted d;
    ok(s, klevdb_next_offset(db, &next));
    if (next > KEEP) {
      if (ok(s, klevdb_trim_by_offset(db, next - KEEP, &d)))
        atomic_fetch_add(&s->deleted, (long)d.count);
    }
    ok(s, klevdb_gc(db, 0));
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
  }
  klevdb_close(db);
  return NULL;
}

/* No deletes: a reader from the oldest gets every offset, in order, none
** skipped, however the publishes (which leave the list lock alone) fall
** between its look at the next offset and at the head. */
static void *strict_reader(void *arg) {
  shared *s = arg;
  klevdb *db = open_shared(s);
  if (!db) return NULL;
  klevdb_batch b = KLEVDB_BATCH_INIT;
  int64_t cur = KLEVDB_OFFSET_OLDEST, last = -1;
  while (last + 1 < TOTAL) {
    if (!ok(s, klevdb_consume(db, cur, 7, &b))) break;
    for (size_t k = 0; k < b.len; k++) {
      if (b.msgs[k].offset != last + 1 || !same_msg(&b.msgs[k])) atomic_fetch_add(&s->bad, 1);
      last = b.msgs[k].offset;
    }
    /* Past the end, the next offset is where the next message will be. */
    if (b.len == 0 && b.next_offset != last + 1) atomic_fetch_add(&s->bad, 1);
    atomic_fetch_add(&s->read, (long)b.len);
    cur = b.next_offset;
  }
  klevdb_batch_free(&b);
  klevdb_close(db);
  return NULL;
}

/* No deletes: whatever was published before a get is found by it, by
** key (the key table catches up with publishes at the get) and by time,
** and the bounds never put the newest message at or past the next offset. */
static void *strict_getter(void *arg) {
  shared *s = arg;
  klevdb *db = open_shared(s);
  if (!db) return NULL;
  klevdb_batch b = KLEVDB_BATCH_INIT;
  while (!atomic_load(&s->done)) {
    int64_t next;
    if (!ok(s, klevdb_next_offset(db, &next))) break;
    if (next == 0) continue;
    int i = (int)next - 1;
    char key[16];
    snprintf(key, sizeof(key), "%10d", i);
    klevdb_err e = klevdb_get_by_key(db, key, 10, &b);
    if (e || b.msgs[0].offset != i || !same_msg(&b.msgs[0])) atomic_fetch_add(&s->bad, 1);
    e = klevdb_get_by_time(db, TI(i), &b);
    if (e || b.msgs[0].offset != i || !same_msg(&b.msgs[0])) atomic_fetch_add(&s->bad, 1);
    klevdb_bounds bd;
    if (ok(s, klevdb_bounds_get(db, &bd)) && (bd.oldest_offset != 0 || bd.newest_offset < i || bd.newest_offset >= bd.next_offset))
      atomic_fetch_add(&s->bad, 1);
    atomic_fetch_add(&s->read, 1);
  }
  klevdb_batch_free(&b);
  klevdb_close(db);
  return NULL;
}

static void no_deletes(void) {
  SECTION("writer, strict readers and getter, no deletes");
  char dir[256];
  tmp_dir(dir, sizeof(dir));
  shared s = {.dir = dir, .o = opts_tk()};
  s.o.rollover = 64 << 10;
  klevdb *keep = OPEN(dir, &s.o);
  pthread_t th[4];
  void *(*fn[4])(void *) = {writer, strict_reader, strict_reader, strict_getter};
  for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, fn[i], &s);
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  CHECK_EQ(atomic_load(&s.errors), 0);
  CHECK_EQ(atomic_load(&s.bad), 0);
  CHECK(atomic_load(&s.read) >= 2 * TOTAL);
  CHECK_NEXT(keep, TOTAL);
  CHECK_OK(klevdb_close(keep));
  rm_rf(dir);
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "--reader") == 0) return other_process(argv[2], atoi(argv[3]));
  const char *self = argv[0];
  chk_name = "test_concurrent";
  signal(SIGPIPE, SIG_IGN);   /* the reader may have stopped already */
  SECTION("writer, readers, getter, deleter");
  char dir[256];
  tmp_dir(dir, sizeof(dir));
  shared s = {.dir = dir, .o = opts_tk()};
  s.o.rollover = 64 << 10;   /* many segments: rollovers under the readers */
  klevdb *keep = OPEN(dir, &s.o);   /* holds the store open for all threads */
  int stop[2];
  CHECK(pipe(stop) == 0);
  fcntl(stop[0], F_SETFL, O_NONBLOCK);
  /* A fresh program, not a fork: a forked child would share this
  ** process's open stores (copied) instead of opening its own. */
  pid_t child = fork();
  if (child == 0) {
    close(stop[1]);
    char fd[16];
    snprintf(fd, sizeof(fd), "%d", stop[0]);
    execl(self, self, "--reader", dir, fd, (char *)NULL);
    _exit(6);
  }
  close(stop[0]);
  pthread_t th[7];
  void *(*fn[7])(void *) = {writer, reader, reader, reader, getter, deleter, compactor};
  for (int i = 0; i < 7; i++) pthread_create(&th[i], NULL, fn[i], &s);
  for (int i = 0; i < 7; i++) pthread_join(th[i], NULL);
  CHECK(write(stop[1], "x", 1) == 1);
  close(stop[1]);
  int status = 0;
  CHECK(waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
  CHECK_EQ(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 0);
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
  no_deletes();
  return check_done();
}
