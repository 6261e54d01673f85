/*
** test_blocking.c - klevdb_consume_blocking and klevdb_interrupt: returns at
** once when messages exist, waits for a publish from another thread (own
** handle on the same store), times out with an empty batch, is woken with
** KLEVDB_ECLOSED by klevdb_interrupt.
*/
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "check.h"

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

typedef struct job {
  const char *dir;
  klevdb *db;       /* for interrupt */
  int delay_ms;
  int first, n;     /* messages to publish */
  klevdb_err err;
} job;

/* Opens its own handle on the store, sleeps, publishes gen(first..). */
static void *publisher(void *arg) {
  job *j = arg;
  klevdb_options o = opts_tk();
  klevdb *db = NULL;
  klevdb_error err;
  j->err = klevdb_open(j->dir, &o, &db, &err);
  if (j->err != KLEVDB_OK) return NULL;
  sleep_ms(j->delay_ms);
  for (int k = 0; k < j->n && j->err == KLEVDB_OK; k++) {
    tmsg t;
    gen(&t, j->first + k);
    j->err = klevdb_publish(db, &t.m, 1, NULL);
  }
  klevdb_close(db);
  return NULL;
}

static void *interrupter(void *arg) {
  job *j = arg;
  sleep_ms(j->delay_ms);
  klevdb_interrupt(j->db);
  return NULL;
}

static void test_blocking(void) {
  char dir[256];
  tmp_dir(dir, sizeof(dir));
  klevdb_options o = opts_tk();
  klevdb *db = OPEN(dir, &o);
  if (!db) goto out;
  klevdb_batch b = KLEVDB_BATCH_INIT;

  SECTION("timeout with nothing");
  int64_t t0 = now_ms();
  CHECK_DBOK(db, klevdb_consume_blocking(db, 0, 10, 100, &b));
  int64_t el = now_ms() - t0;
  CHECK_EQ(b.len, 0);
  CHECK_EQ(b.next_offset, 0);
  CHECK(el >= 90);
  CHECK(el < 3000);
  /* timeout 0: a plain consume */
  t0 = now_ms();
  CHECK_DBOK(db, klevdb_consume_blocking(db, 0, 10, 0, &b));
  CHECK_EQ(b.len, 0);
  CHECK(now_ms() - t0 < 50);

  SECTION("messages exist");
  PUBLISH(db, 0, 3, 0);
  t0 = now_ms();
  CHECK_DBOK(db, klevdb_consume_blocking(db, 0, 10, 5000, &b));
  CHECK(now_ms() - t0 < 500);
  CHECK_BATCH(&b, 0, 0, 3);
  CHECK_EQ(b.next_offset, 3);
  CHECK_DBOK(db, klevdb_consume_blocking(db, KLEVDB_OFFSET_OLDEST, 2, -1, &b));
  CHECK_BATCH(&b, 0, 0, 2);
  CHECK_DBOK(db, klevdb_consume_blocking(db, 1, 10, -1, &b));
  CHECK_BATCH(&b, 1, 1, 2);
  CHECK(now_ms() - t0 < 500);

  SECTION("publish from another thread");
  {
    job j = {dir, NULL, 50, 3, 1, KLEVDB_OK};
    pthread_t th;
    pthread_create(&th, NULL, publisher, &j);
    t0 = now_ms();
    CHECK_DBOK(db, klevdb_consume_blocking(db, 3, 10, 5000, &b));
    el = now_ms() - t0;
    pthread_join(th, NULL);
    CHECK_OK(j.err);
    CHECK_BATCH(&b, 3, 3, 1);
    CHECK_EQ(b.next_offset, 4);
    CHECK(el >= 30);
    CHECK(el < 4000);
  }
  SECTION("publish from another thread, no timeout");
  {
    job j = {dir, NULL, 50, 4, 2, KLEVDB_OK};
    pthread_t th;
    pthread_create(&th, NULL, publisher, &j);
    t0 = now_ms();
    CHECK_DBOK(db, klevdb_consume_blocking(db, 4, 10, -1, &b));
    el = now_ms() - t0;
    pthread_join(th, NULL);
    CHECK_OK(j.err);
    CHECK(b.len >= 1 && b.len <= 2);
    if (b.len >= 1) CHECK_MSG(&b.msgs[0], 4, 4);
    CHECK(el >= 30);
  }
  SECTION("late publish from a second handle");
  {
    /* the waiter's store is shared: a publish through a second handle of
    ** this process wakes it, also when the waiter started well before */
    job j = {dir, NULL, 150, 6, 1, KLEVDB_OK};
    pthread_t th;
    pthread_create(&th, NULL, publisher, &j);
    CHECK_DBOK(db, klevdb_consume_blocking(db, 6, 10, 5000, &b));
    pthread_join(th, NULL);
    CHECK_BATCH(&b, 6, 6, 1);
  }

  SECTION("interrupt");
  {
    job j = {dir, db, 50, 0, 0, KLEVDB_OK};
    pthread_t th;
    pthread_create(&th, NULL, interrupter, &j);
    t0 = now_ms();
    CHECK_DB(db, klevdb_consume_blocking(db, 7, 10, 5000, &b), KLEVDB_ECLOSED);
    el = now_ms() - t0;
    pthread_join(th, NULL);
    CHECK_EQ(b.len, 0);
    CHECK(el >= 30);
    CHECK(el < 4000);
  }
  SECTION("interrupt, no timeout");
  {
    job j = {dir, db, 50, 0, 0, KLEVDB_OK};
    pthread_t th;
    pthread_create(&th, NULL, interrupter, &j);
    CHECK_DB(db, klevdb_consume_blocking(db, 7, 10, -1, &b), KLEVDB_ECLOSED);
    pthread_join(th, NULL);
  }
  /* the handle still works for plain reads */
  CONSUME_EXPECT(db, 0, 10, 0, 0, 7, 7);

  SECTION("interrupt only wakes its own handle");
  {
    klevdb *other = OPEN(dir, &o);
    if (other) {
      job j = {dir, other, 20, 0, 0, KLEVDB_OK};
      pthread_t th;
      pthread_create(&th, NULL, interrupter, &j);
      pthread_join(th, NULL);
      klevdb_batch ob = KLEVDB_BATCH_INIT;
      job p = {dir, NULL, 100, 7, 1, KLEVDB_OK};
      pthread_create(&th, NULL, publisher, &p);
      /* db was not interrupted this time; other's interrupt must not leak */
      CHECK_DBOK(db, klevdb_consume_blocking(db, 7, 10, 5000, &ob));
      pthread_join(th, NULL);
      CHECK_BATCH(&ob, 7, 7, 1);
      klevdb_batch_free(&ob);
      CHECK_OK(klevdb_close(other));
    }
  }
  klevdb_batch_free(&b);
  CHECK_OK(klevdb_close(db));
out:
  rm_rf(dir);
}

/* Child mode: opens dir read-write, sleeps 150 ms, publishes gen(first). */
static int child_publish(const char *dir, int first) {
  klevdb_options o = opts_tk();
  klevdb *db = NULL;
  klevdb_error err;
  if (klevdb_open(dir, &o, &db, &err) != KLEVDB_OK) {
    fprintf(stderr, "child publish: %s\n", err.msg);
    return 1;
  }
  sleep_ms(150);
  tmsg t;
  gen(&t, first);
  klevdb_err e = klevdb_publish(db, &t.m, 1, NULL);
  klevdb_close(db);
  return e == KLEVDB_OK ? 0 : 2;
}

/* A read-only handle waits for a publish made by another process. */
static void test_blocking_other_process(void) {
  char dir[256], exe[4096];
  SECTION("read-only waiter, publish from another process");
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) return;
  exe[n] = 0;
  tmp_dir(dir, sizeof(dir));
  klevdb_options o = opts_tk();
  klevdb *w = OPEN(dir, &o);
  if (!w) goto out;
  PUBLISH(w, 0, 2, 0);
  CHECK_OK(klevdb_close(w));
  o.readonly = 1;
  klevdb *db = OPEN(dir, &o);
  if (!db) goto out;
  CONSUME_EXPECT(db, KLEVDB_OFFSET_OLDEST, 10, 0, 0, 2, 2);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid == 0) {
    execl(exe, exe, "publish", dir, "2", (char *)NULL);
    _exit(127);
  }
  klevdb_batch b = KLEVDB_BATCH_INIT;
  int64_t t0 = now_ms();
  CHECK_DBOK(db, klevdb_consume_blocking(db, 2, 10, 5000, &b));
  int64_t el = now_ms() - t0;
  CHECK_BATCH(&b, 2, 2, 1);
  CHECK(el >= 100);
  CHECK(el < 4000);
  int st = 0;
  waitpid(pid, &st, 0);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  klevdb_batch_free(&b);
  CHECK_OK(klevdb_close(db));
out:
  rm_rf(dir);
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "publish") == 0)
    return child_publish(argv[2], atoi(argv[3]));
  chk_name = "test_blocking";
  alarm(60); /* a hung wait fails the test instead of blocking the suite */
  test_blocking();
  test_blocking_other_process();
  return check_done();
}
