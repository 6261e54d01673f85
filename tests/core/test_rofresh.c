/*
** test_rofresh.c - what a read-only handle's gets by key and by time see
** of another process's publishes: a key or a time it does not know yet
** makes it look at once; a newer message of a key it knows shows within
** the follow period (10 ms), so that lookups need not look each time.
*/
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

/* Publishes message i (key "%10d" of key_of, time of i) from a child
** process, as another process's writer would. */
static void publish_elsewhere(const char *dir, const klevdb_options *o, int i, int key_of) {
  pid_t pid = fork();
  if (pid == 0) {
    klevdb *w = NULL;
    klevdb_error e;
    if (klevdb_open(dir, o, &w, &e) != KLEVDB_OK) _exit(2);
    tmsg t;
    gen(&t, i);
    snprintf(t.key, sizeof t.key, "%10d", key_of);
    t.m.key = (const uint8_t *)t.key;
    int rc = klevdb_publish(w, &t.m, 1, NULL) != KLEVDB_OK;
    rc |= klevdb_close(w) != KLEVDB_OK;
    _exit(rc);
  }
  int status = -1;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static int64_t key_offset(klevdb *rd, int key_of, klevdb_err *rc) {
  char k[16];
  snprintf(k, sizeof k, "%10d", key_of);
  klevdb_batch b = KLEVDB_BATCH_INIT;
  *rc = klevdb_get_by_key(rd, k, 10, &b);
  int64_t off = *rc == KLEVDB_OK && b.len == 1 ? b.msgs[0].offset : -1;
  klevdb_batch_free(&b);
  return off;
}

int main(void) {
  SECTION("read-only gets follow another process");
  char dir[256];
  tmp_dir(dir, sizeof dir);
  klevdb_options o = opts_tk();
  o.rollover = 3 * SV2 - 10;   /* new segments appear too */
  publish_elsewhere(dir, &o, 0, 0);
  klevdb_options ro = o;
  ro.readonly = 1;
  klevdb *rd = OPEN(dir, &ro);
  if (!rd) return check_done();
  klevdb_err rc;
  CHECK_EQ(key_offset(rd, 0, &rc), 0);

  /* New keys and new times are found at once, however recent the last look. */
  for (int i = 1; i < 8; i++) {
    publish_elsewhere(dir, &o, i, i);
    CHECK_EQ(key_offset(rd, i, &rc), i);
    CHECK_EQ(rc, KLEVDB_OK);
    tmsg t;
    gen(&t, i);
    klevdb_batch b = KLEVDB_BATCH_INIT;
    CHECK_DBOK(rd, klevdb_get_by_time(rd, t.m.time, &b));
    CHECK(b.len == 1 && b.msgs[0].offset == i);
    klevdb_batch_free(&b);
  }

  /* A key it knows, published again: the newer message within 10 ms. */
  publish_elsewhere(dir, &o, 8, 3);
  int64_t seen = key_offset(rd, 3, &rc);
  CHECK(seen == 3 || seen == 8);
  struct timespec pause = {0, 20 * 1000 * 1000};
  nanosleep(&pause, NULL);
  CHECK_EQ(key_offset(rd, 3, &rc), 8);

  /* A key nobody published is still not found, after a fresh look. */
  CHECK_EQ(key_offset(rd, 99, &rc), -1);
  CHECK_EQ(rc, KLEVDB_ENOTFOUND);
  CHECK_DBOK(rd, klevdb_close(rd));
  rm_rf(dir);
  return check_done();
}
