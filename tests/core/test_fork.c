/*
** test_fork.c - handles carried into a child by fork(2): every call on
** them fails with a clear error and closing them leaves the parent's store
** alone; the child opens the store again (read-only: the parent writes).
*/
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

/* The child's checks: its exit status is the number that failed. */
static int child(const char *dir, klevdb *w, klevdb *r, const klevdb_options *o) {
  int bad = 0;
  tmsg t;
  gen(&t, 100);
  bad += klevdb_publish(w, &t.m, 1, NULL) != KLEVDB_ECLOSED;
  bad += strstr(klevdb_errmsg(w), "klevdb: ") != klevdb_errmsg(w) ||
         !strstr(klevdb_errmsg(w), "fork");
  klevdb_batch b = KLEVDB_BATCH_INIT;
  bad += klevdb_get(r, 0, &b) != KLEVDB_ECLOSED;
  klevdb_stage *sg = NULL;
  bad += klevdb_stage_begin(w, &sg) != KLEVDB_ECLOSED || sg != NULL;
  bad += klevdb_writer_lock(w, 0) != KLEVDB_ECLOSED;
  bad += klevdb_close(w) != KLEVDB_OK;
  bad += klevdb_close(r) != KLEVDB_OK;
  /* Its own opens: the parent holds the writer's lock. */
  klevdb *w2 = NULL, *r2 = NULL;
  klevdb_error e;
  bad += klevdb_open(dir, o, &w2, &e) != KLEVDB_ELOCKED;
  klevdb_options ro = *o;
  ro.readonly = 1;
  bad += klevdb_open(dir, &ro, &r2, &e) != KLEVDB_OK;
  if (r2) {
    bad += klevdb_consume(r2, KLEVDB_OFFSET_OLDEST, 10, &b) != KLEVDB_OK || b.len != 3;
    klevdb_batch_free(&b);
    bad += klevdb_close(r2) != KLEVDB_OK;
  }
  return bad;
}

int main(void) {
  SECTION("fork");
  char dir[256];
  tmp_dir(dir, sizeof dir);
  klevdb_options o = opts_tk();
  klevdb *w = OPEN(dir, &o);
  if (!w) return check_done();
  for (int i = 0; i < 3; i++) {
    tmsg t;
    gen(&t, i);
    CHECK_DBOK(w, klevdb_publish(w, &t.m, 1, NULL));
  }
  klevdb_options ro = o;
  ro.readonly = 1;
  klevdb *r = OPEN(dir, &ro);
  pid_t pid = fork();
  if (pid == 0) _exit(child(dir, w, r, &o));
  int status = -1;
  CHECK(waitpid(pid, &status, 0) == pid);
  CHECK_EQ(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 0);

  /* The parent goes on as if nothing happened. */
  tmsg t;
  gen(&t, 3);
  int64_t next = -1;
  CHECK_DBOK(w, klevdb_publish(w, &t.m, 1, &next));
  CHECK_EQ(next, 4);
  klevdb_batch b = KLEVDB_BATCH_INIT;
  CHECK_DBOK(r, klevdb_consume(r, KLEVDB_OFFSET_OLDEST, 10, &b));
  CHECK_EQ(b.len, 4);
  for (size_t i = 0; i < b.len; i++) CHECK(chk_msg(&b.msgs[i], (int64_t)i, (int)i, __FILE__, __LINE__));
  klevdb_batch_free(&b);
  CHECK_DBOK(r, klevdb_close(r));
  CHECK_DBOK(w, klevdb_close(w));
  klevdb_error e;
  CHECK_OK(klevdb_dir_check(dir, &o, &e));
  rm_rf(dir);
  return check_done();
}
