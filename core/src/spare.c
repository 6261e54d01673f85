/*
** spare.c - the next head's files, made ahead by a background thread. A
** rollover then renames two ready files instead of creating them, which
** on some file systems costs milliseconds inside a publish.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "segment.h"

/* Names that discovery ignores (they do not end in ".log"). */
#define SPARE_LOG ".spare-log.tmp"
#define SPARE_INDEX ".spare-index.tmp"

enum { SPARE_NONE, SPARE_WANTED, SPARE_READY, SPARE_STOP };

static void spare_path(char *out, size_t cap, const spare *sp, const char *name) {
  snprintf(out, cap, "%s/%s", sp->cfg->dir, name);
}

/* Creates both files with their headers; false if anything failed. */
static bool spare_make(spare *sp) {
  char lp[4096], ip[4096];
  spare_path(lp, sizeof(lp), sp, SPARE_LOG);
  spare_path(ip, sizeof(ip), sp, SPARE_INDEX);
  uint8_t lh[FILE_HDR], ih[FILE_HDR];
  log_header(lh);
  index_header(ih, sp->cfg->params);
  size_t hl = sp->cfg->newver == FMT_V2 ? FILE_HDR : 0;
  bool ok = true;
  const char *paths[2] = {lp, ip};
  const uint8_t *hdrs[2] = {lh, ih};
  for (int k = 0; k < 2 && ok; k++) {
    int fd = open(paths[k], O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
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
  spare *sp = arg;
  pthread_mutex_lock(&sp->mu);
  while (sp->state != SPARE_STOP) {
    if (sp->state != SPARE_WANTED) {
      pthread_cond_wait(&sp->cv, &sp->mu);
      continue;
    }
    pthread_mutex_unlock(&sp->mu);
    bool ok = spare_make(sp);
    pthread_mutex_lock(&sp->mu);
    if (sp->state == SPARE_WANTED) sp->state = ok ? SPARE_READY : SPARE_NONE;
  }
  pthread_mutex_unlock(&sp->mu);
  return NULL;
}

void spare_init(spare *sp, const segcfg *cfg) {
  sp->cfg = cfg;
  pthread_mutex_init(&sp->mu, NULL);
  pthread_cond_init(&sp->cv, NULL);
}

void spare_destroy(spare *sp) {
  pthread_mutex_destroy(&sp->mu);
  pthread_cond_destroy(&sp->cv);
}

void spare_clean(spare *sp) {
  char p[4096];
  spare_path(p, sizeof(p), sp, SPARE_LOG);
  unlink(p);
  spare_path(p, sizeof(p), sp, SPARE_INDEX);
  unlink(p);
}

void spare_want(spare *sp) {
  pthread_mutex_lock(&sp->mu);
  if (!sp->running && sp->state != SPARE_STOP &&
      pthread_create(&sp->tid, NULL, spare_main, sp) == 0)
    sp->running = true;
  if (sp->running && sp->state == SPARE_NONE) {
    sp->state = SPARE_WANTED;
    pthread_cond_signal(&sp->cv);
  }
  pthread_mutex_unlock(&sp->mu);
}

bool spare_take(spare *sp, int64_t base) {
  bool taken = false;
  pthread_mutex_lock(&sp->mu);
  if (sp->state == SPARE_READY) {
    char from[4096], to[4096];
    spare_path(from, sizeof(from), sp, SPARE_INDEX);
    seg_path(to, sizeof(to), sp->cfg->dir, base, ".index");
    /* Never over an existing segment: then the head is made in place. */
    if (access(to, F_OK) < 0 && errno == ENOENT && rename(from, to) == 0) {
      spare_path(from, sizeof(from), sp, SPARE_LOG);
      seg_path(to, sizeof(to), sp->cfg->dir, base, ".log");
      taken = rename(from, to) == 0;
    }
    sp->state = SPARE_NONE;
  }
  pthread_mutex_unlock(&sp->mu);
  spare_want(sp);
  return taken;
}

void spare_drop(spare *sp) {
  pthread_mutex_lock(&sp->mu);
  if (sp->state == SPARE_READY) {
    spare_clean(sp);
    sp->state = SPARE_NONE;
  }
  pthread_mutex_unlock(&sp->mu);
}

void spare_stop(spare *sp) {
  pthread_mutex_lock(&sp->mu);
  bool running = sp->running;
  sp->state = SPARE_STOP;
  pthread_cond_signal(&sp->cv);
  pthread_mutex_unlock(&sp->mu);
  if (running) pthread_join(sp->tid, NULL);
  sp->running = false;
  spare_clean(sp);
}
