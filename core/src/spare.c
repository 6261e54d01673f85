/*
** spare.c - the next head's files, made ahead by a background thread. A
** rollover then renames two ready files instead of creating them, which
** on some file systems costs milliseconds inside a publish.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "store.h"

/* Names that discovery ignores (they do not end in ".log"). */
#define SPARE_LOG ".spare-log.tmp"
#define SPARE_INDEX ".spare-index.tmp"

enum { SPARE_NONE, SPARE_WANTED, SPARE_READY, SPARE_STOP };

static void spare_path(char *out, size_t cap, const store *st, const char *name) {
  snprintf(out, cap, "%s/%s", st->dir, name);
}

/* Creates both files with their headers; false if anything failed. */
static bool spare_make(store *st) {
  char lp[4096], ip[4096];
  spare_path(lp, sizeof(lp), st, SPARE_LOG);
  spare_path(ip, sizeof(ip), st, SPARE_INDEX);
  uint8_t lh[FILE_HDR], ih[FILE_HDR];
  log_header(lh);
  index_header(ih, st->params);
  size_t hl = st->newver == FMT_V2 ? FILE_HDR : 0;
  bool ok = true;
  const char *paths[2] = {lp, ip};
  const uint8_t *hdrs[2] = {lh, ih};
  for (int k = 0; k < 2 && ok; k++) {
    int fd = open(paths[k], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
      ok = false;
      break;
    }
    if (hl && write(fd, hdrs[k], hl) != (ssize_t)hl) ok = false;
    if (close(fd) < 0) ok = false;
  }
  if (!ok) {
    unlink(lp);
    unlink(ip);
  }
  return ok;
}

static void *spare_main(void *arg) {
  store *st = arg;
  pthread_mutex_lock(&st->spare_mu);
  while (st->spare_state != SPARE_STOP) {
    if (st->spare_state != SPARE_WANTED) {
      pthread_cond_wait(&st->spare_cv, &st->spare_mu);
      continue;
    }
    pthread_mutex_unlock(&st->spare_mu);
    bool ok = spare_make(st);
    pthread_mutex_lock(&st->spare_mu);
    if (st->spare_state == SPARE_WANTED) st->spare_state = ok ? SPARE_READY : SPARE_NONE;
  }
  pthread_mutex_unlock(&st->spare_mu);
  return NULL;
}

void spare_clean(store *st) {
  char p[4096];
  spare_path(p, sizeof(p), st, SPARE_LOG);
  unlink(p);
  spare_path(p, sizeof(p), st, SPARE_INDEX);
  unlink(p);
}

void spare_want(store *st) {
  pthread_mutex_lock(&st->spare_mu);
  if (!st->spare_running && st->spare_state != SPARE_STOP &&
      pthread_create(&st->spare_tid, NULL, spare_main, st) == 0)
    st->spare_running = true;
  if (st->spare_running && st->spare_state == SPARE_NONE) {
    st->spare_state = SPARE_WANTED;
    pthread_cond_signal(&st->spare_cv);
  }
  pthread_mutex_unlock(&st->spare_mu);
}

bool spare_take(store *st, int64_t base) {
  bool taken = false;
  pthread_mutex_lock(&st->spare_mu);
  if (st->spare_state == SPARE_READY) {
    char from[4096], to[4096];
    spare_path(from, sizeof(from), st, SPARE_INDEX);
    seg_path(to, sizeof(to), st->dir, base, ".index");
    /* Never over an existing segment: then the head is made in place. */
    if (access(to, F_OK) < 0 && errno == ENOENT && rename(from, to) == 0) {
      spare_path(from, sizeof(from), st, SPARE_LOG);
      seg_path(to, sizeof(to), st->dir, base, ".log");
      taken = rename(from, to) == 0;
    }
    st->spare_state = SPARE_NONE;
  }
  pthread_mutex_unlock(&st->spare_mu);
  spare_want(st);
  return taken;
}

void spare_drop(store *st) {
  pthread_mutex_lock(&st->spare_mu);
  if (st->spare_state == SPARE_READY) {
    spare_clean(st);
    st->spare_state = SPARE_NONE;
  }
  pthread_mutex_unlock(&st->spare_mu);
}

void spare_stop(store *st) {
  pthread_mutex_lock(&st->spare_mu);
  bool running = st->spare_running;
  st->spare_state = SPARE_STOP;
  pthread_cond_signal(&st->spare_cv);
  pthread_mutex_unlock(&st->spare_mu);
  if (running) pthread_join(st->spare_tid, NULL);
  st->spare_running = false;
  spare_clean(st);
}
