/*
** reaper.c - frees what a delete dropped (segments, a key table) on a
** background thread of the store, so that the kernel's freeing of the
** dropped files' pages and blocks happens off the writer's lock.
*/
#include <stdlib.h>

#include "fault.h"
#include "store.h"

/* A delete unlinks a dropped segment's files under the writer's lock while
** the segment's mappings still hold them: unlink then only drops a name,
** and the kernel frees the file (about 1 ms per MiB) when its last
** reference goes, which is the unmapping done here. */
static void *reaper_main(void *arg) {
  reaper *rp = arg;
  pthread_mutex_lock(&rp->mu);
  for (;;) {
    if (rp->n == 0) {
      rp->busy = false;
      pthread_cond_broadcast(&rp->idle);
      if (rp->stop) break;
      pthread_cond_wait(&rp->cv, &rp->mu);
      continue;
    }
    reap_item *v = rp->v;
    size_t n = rp->n;
    rp->v = NULL;
    rp->n = rp->cap = 0;
    rp->busy = true;
    pthread_mutex_unlock(&rp->mu);
    for (size_t i = 0; i < n; i++) {
      FAULT_BG_POINT();
      v[i].fn(v[i].p);
    }
    free(v);
    pthread_mutex_lock(&rp->mu);
  }
  pthread_mutex_unlock(&rp->mu);
  return NULL;
}

void kmap_free_v(void *m) { kmap_free(m); }

void reaper_init(reaper *rp) {
  pthread_mutex_init(&rp->mu, NULL);
  pthread_cond_init(&rp->cv, NULL);
  pthread_cond_init(&rp->idle, NULL);
}

void reap(reaper *rp, void (*fn)(void *), void *p) {
  if (!p) return;
  pthread_mutex_lock(&rp->mu);
  if (!rp->running && !rp->stop && pthread_create(&rp->tid, NULL, reaper_main, rp) == 0)
    rp->running = true;
  bool queued = false;
  if (rp->running && !rp->stop) {
    if (rp->n == rp->cap) {
      size_t cap = rp->cap ? rp->cap * 2 : 16;
      reap_item *v = realloc(rp->v, cap * sizeof(*v));
      if (v) {
        rp->v = v;
        rp->cap = cap;
      }
    }
    if (rp->n < rp->cap) {
      rp->v[rp->n++] = (reap_item){fn, p};
      rp->busy = true;
      queued = true;
      pthread_cond_signal(&rp->cv);
    }
  }
  pthread_mutex_unlock(&rp->mu);
  /* No thread or no memory: the caller waits for the kernel, as before. */
  if (!queued) fn(p);
}

void reaper_flush(reaper *rp) {
  pthread_mutex_lock(&rp->mu);
  while (rp->running && rp->busy) pthread_cond_wait(&rp->idle, &rp->mu);
  pthread_mutex_unlock(&rp->mu);
}

void reaper_destroy(reaper *rp) {
  pthread_mutex_lock(&rp->mu);
  bool running = rp->running;
  rp->stop = true;
  pthread_cond_signal(&rp->cv);
  pthread_mutex_unlock(&rp->mu);
  /* The thread frees everything queued before it returns. */
  if (running) pthread_join(rp->tid, NULL);
  free(rp->v);
  pthread_mutex_destroy(&rp->mu);
  pthread_cond_destroy(&rp->cv);
  pthread_cond_destroy(&rp->idle);
}
