/*
** reaper_crash.c - kill -9 during a trim of many whole segments, at each
** of the trim's own crash points in turn (between a segment's two unlinks
** among them), then at each point of the reaper thread that frees what it
** dropped (core/src/reaper.c); then reopen: the trim is all there or not
** at all, no dropped file is left and no dropped message comes back.
**
** Built with the core's sources and -DKLEVDB_FAULTS: the child kills
** itself at point KLEVDB_FAULT_AT=N, or background point
** KLEVDB_FAULT_BG_AT=N (core/src/fault.h).
**   reaper_crash WORKDIR            the driver: for each kind of point,
**                                   N = 1, 2, ... until a child passes all
**   reaper_crash child STORE        one trim, then close (joins the reaper)
*/
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "klevdb.h"

#include "../check.h"

#define PER_SEG 10
#define SEGS 60
#define ROLL (PER_SEG * (36 + 10 + 128))   /* a segment per PER_SEG messages */
#define DROPPED 45                           /* whole segments the trim drops */
#define CUT (DROPPED * PER_SEG + 3)          /* and 3 messages of the next */
#define MIN_POINTS DROPPED                   /* one point per dropped segment at least */

static klevdb_options opts(void) {
  klevdb_options o;
  memset(&o, 0, sizeof(o));
  o.create_dirs = 1;
  o.key_index = 1;
  o.time_index = 1;
  o.rollover = ROLL;
  return o;
}

static void msg(int i, char key[16], uint8_t val[128], klevdb_msg *m) {
  snprintf(key, 16, "%10d", i);
  for (int j = 0; j < 128; j++) val[j] = (uint8_t)(i * 31 + j * 7 + 1);
  memset(m, 0, sizeof(*m));
  m->time = 1672531200000000 + (int64_t)i * 1000;
  m->key = (const uint8_t *)key;
  m->key_len = 10;
  m->value = val;
  m->value_len = 128;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f) {
  (void)sb, (void)flag, (void)f;
  return remove(p);
}

/* Segment files (names starting with a digit) with a base below cut. */
static int files_below(const char *dir, int64_t cut) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] >= '0' && e->d_name[0] <= '9' && strtoll(e->d_name, NULL, 10) < cut) n++;
  closedir(d);
  return n;
}

static int child(const char *store) {
  klevdb_options o = opts();
  klevdb *db = NULL;
  klevdb_error e;
  if (klevdb_open(store, &o, &db, &e) != KLEVDB_OK) return 3;
  /* Every segment mapped, as after reads: the reaper unmaps each. */
  klevdb_batch b = KLEVDB_BATCH_INIT;
  for (int64_t off = 0; off < SEGS * PER_SEG; off += PER_SEG)
    if (klevdb_get(db, off, &b) != KLEVDB_OK) return 4;
  klevdb_batch_free(&b);
  klevdb_deleted d;
  if (klevdb_trim_by_offset(db, CUT, &d) != KLEVDB_OK || d.count != CUT) return 5;
  /* Dropped for every reader when the call returns, whatever the reaper
  ** has done yet. */
  if (files_below(store, DROPPED * PER_SEG) != 0) return 6;
  return klevdb_close(db) == KLEVDB_OK ? 0 : 7;
}

static void make_store(const char *store) {
  nftw(store, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  klevdb_options o = opts();
  klevdb *db = NULL;
  klevdb_error e;
  if (klevdb_open(store, &o, &db, &e) != KLEVDB_OK) {
    fprintf(stderr, "reaper_crash: open %s: %s\n", store, e.msg);
    exit(2);
  }
  for (int i = 0; i < SEGS * PER_SEG; i++) {
    char key[16];
    uint8_t val[128];
    klevdb_msg m;
    msg(i, key, val, &m);
    int64_t next;
    if (klevdb_publish(db, &m, 1, &next) != KLEVDB_OK || next != i + 1) {
      fprintf(stderr, "reaper_crash: publish %d: %s\n", i, klevdb_errmsg(db));
      exit(2);
    }
  }
  klevdb_close(db);
}

/* After a child's kill: what a reopen finds is exactly [CUT, end), or
** with may_undone (a kill before the trim began) all of [0, end). */
static void verify(const char *store, int point, int *midway, bool may_undone) {
  /* A kill while the trim still ran (the reaper frees the first segments
  ** while the writer drops the next) leaves .delete-ranges, which the
  ** open finishes; after the trim returned no dropped file is left. */
  char marker[4200];
  snprintf(marker, sizeof(marker), "%s/.delete-ranges", store);
  bool pending = access(marker, F_OK) == 0;
  int left = files_below(store, DROPPED * PER_SEG);
  if (pending) (*midway)++;
  /* Not begun: every file is there (two a segment). */
  bool undone = !pending && may_undone && left == 2 * DROPPED;
  if (!pending && !undone) CHECK_EQ(left, 0);
  klevdb_options o = opts();
  klevdb *db = NULL;
  klevdb_error e;
  klevdb_err rc = klevdb_open(store, &o, &db, &e);
  if (!chk_report(rc == KLEVDB_OK, __FILE__, __LINE__, "point %d: reopen: %s", point, e.msg)) return;
  CHECK_EQ(files_below(store, DROPPED * PER_SEG), undone ? 2 * DROPPED : 0);
  klevdb_batch b = KLEVDB_BATCH_INIT;
  int64_t cur = KLEVDB_OFFSET_OLDEST, want = undone ? 0 : CUT;
  for (;;) {
    rc = klevdb_consume(db, cur, 64, &b);
    if (!chk_report(rc == KLEVDB_OK, __FILE__, __LINE__, "point %d: consume: %s", point,
                    klevdb_errmsg(db)))
      break;
    for (size_t k = 0; k < b.len; k++, want++) {
      char key[16];
      uint8_t val[128];
      klevdb_msg m;
      msg((int)want, key, val, &m);
      chk_report(b.msgs[k].offset == want && b.msgs[k].value_len == 128 &&
                     memcmp(b.msgs[k].value, val, 128) == 0 && b.msgs[k].key_len == 10 &&
                     memcmp(b.msgs[k].key, key, 10) == 0,
                 __FILE__, __LINE__, "point %d: message at %lld, want gen %lld", point,
                 (long long)b.msgs[k].offset, (long long)want);
    }
    if (b.len == 0) break;
    cur = b.next_offset;
  }
  CHECK_EQ(want, SEGS * PER_SEG);
  b.len = 0;
  if (!undone) CHECK_ERR(klevdb_get(db, CUT - 1, &b), KLEVDB_ENOTFOUND);
  klevdb_batch_free(&b);
  CHECK_OK(klevdb_close(db));
}

/* Kills a child at each point of one kind (KLEVDB_FAULT_AT or
** KLEVDB_FAULT_BG_AT) in turn and checks the store after each; returns
** the number of kills. */
static int kill_at_each(const char *self, const char *store, const char *var, int *midway) {
  int kills = 0, point;
  bool fg = strcmp(var, "KLEVDB_FAULT_AT") == 0;
  for (point = 1; point < 10000; point++) {
    SECTION(fg ? "crash point of the trim" : "crash point of the reaper");
    make_store(store);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
      char n[32];
      snprintf(n, sizeof(n), "%d", point);
      setenv(var, n, 1);
      execl("/proc/self/exe", self, "child", store, (char *)NULL);
      _exit(127);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) {
      perror("waitpid");
      exit(2);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) break;   /* passed every point */
    if (!chk_report(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, __FILE__, __LINE__,
                    "%s=%d: child ended with status 0x%x", var, point, status))
      break;
    kills++;
    verify(store, point, midway, fg);
  }
  CHECK_EQ(kills, point - 1);
  /* The last run, not killed, is the same store. */
  verify(store, 0, midway, false);
  return kills;
}

int main(int argc, char **argv) {
  chk_name = "reaper_crash";
  if (argc == 3 && strcmp(argv[1], "child") == 0) return child(argv[2]);
  if (argc != 2) {
    fprintf(stderr, "usage: reaper_crash WORKDIR\n");
    return 2;
  }
  mkdir(argv[1], 0700);
  char store[4096];
  snprintf(store, sizeof(store), "%s/store", argv[1]);
  int fg_midway = 0, bg_midway = 0;
  int fg = kill_at_each(argv[0], store, "KLEVDB_FAULT_AT", &fg_midway);
  int bg = kill_at_each(argv[0], store, "KLEVDB_FAULT_BG_AT", &bg_midway);
  printf("reaper_crash: killed at %d points of the trim (%d with its ranges on disk) and %d "
         "points of the reaper (%d while the trim ran)\n", fg, fg_midway, bg, bg_midway);
  /* Two points a dropped segment in the trim (before its unlinks and
  ** between them), one in the reaper. */
  CHECK(fg >= 2 * DROPPED);
  CHECK(fg_midway >= 2 * DROPPED);
  CHECK(bg >= MIN_POINTS);
  nftw(argv[1], rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  return check_done();
}
