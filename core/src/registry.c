/*
** registry.c - the per-process registry of open stores: every handle on a
** directory shares one store, and klevdb_open and klevdb_close find, make
** and drop it there.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"

/* ---- the registry: one store per directory per process ---- */

/* The one piece of global state: a second open of a directory must find
** the store the first one locked, since flock(2) would refuse it. */
static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static store *registry[64];
static size_t registry_n;

/* fork(2) copies the registry into the child, but not the parent's other
** threads, and the parent's writer goes on writing: the child's opens must
** not find the parent's stores, whose handles it can only close (freeing
** the handle, leaving the store as it is). The parent's stores stay
** reachable from here, for leak checkers. */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static store *forked[64];
static size_t forked_n;

static void atfork_prepare(void) { pthread_mutex_lock(&registry_mu); }
static void atfork_parent(void) { pthread_mutex_unlock(&registry_mu); }
static void atfork_child(void) {
  for (size_t i = 0; i < registry_n; i++) {
    registry[i]->forked = true;
    if (forked_n < sizeof(forked) / sizeof(forked[0])) forked[forked_n++] = registry[i];
  }
  registry_n = 0;
  pthread_mutex_unlock(&registry_mu);
}

static void atfork_register(void) { pthread_atfork(atfork_prepare, atfork_parent, atfork_child); }

klevdb_err forked_err(klevdb_error *e) {
  return kerr(e, KLEVDB_ECLOSED, "this handle was opened before fork(); open the store again in this "
              "process (the parent's writer and threads are not here)");
}

static store *registry_find(dev_t dev, ino_t ino, bool want_rw) {
  store *ro_match = NULL;
  for (size_t i = 0; i < registry_n; i++) {
    store *s = registry[i];
    if (s->dev != dev || s->ino != ino || s->closing) continue;
    if (!s->ro) return s;
    if (!want_rw) ro_match = s;
  }
  return ro_match;
}

/* A read-only store opened before this process's writer of the directory
** is not that writer's store: the writer tells it of each commit, so that
** its next read sees the commit rather than waiting for the next refresh.
** Under registry_mu, after the registry changed for (dev, ino). */
static void registry_link(dev_t dev, ino_t ino) {
  int n = 0;
  bool rw = false;
  for (size_t i = 0; i < registry_n; i++) {
    store *s = registry[i];
    if (s->dev == dev && s->ino == ino) {
      if (s->ro) n++;
      else rw = true;
    }
  }
  /* A read-only store listed the files before it was registered: a
  ** commit in between told no one. */
  for (size_t i = 0; i < registry_n; i++) {
    store *s = registry[i];
    if (s->dev != dev || s->ino != ino) continue;
    if (!s->ro) __atomic_store_n(&s->peers, n, __ATOMIC_SEQ_CST);
    else if (rw) __atomic_store_n(&s->stale, 1, __ATOMIC_SEQ_CST);
  }
}

/* After a commit of a read-write store (files written, under wmu). */
void peers_stale(store *st) {
  if (__atomic_load_n(&st->peers, __ATOMIC_SEQ_CST) == 0) return;
  pthread_mutex_lock(&registry_mu);
  for (size_t i = 0; i < registry_n; i++) {
    store *s = registry[i];
    if (s->ro && s->dev == st->dev && s->ino == st->ino)
      __atomic_store_n(&s->stale, 1, __ATOMIC_SEQ_CST);
  }
  pthread_mutex_unlock(&registry_mu);
}

/* ---- open and close of handles ---- */

static klevdb_err mkdirs(const char *dir, klevdb_error *e) {
  char p[PATH_CAP];
  snprintf(p, sizeof(p), "%s", dir);
  for (char *c = p + 1; *c; c++) {
    if (*c != '/') continue;
    *c = 0;
    if (mkdir(p, 0700) < 0 && errno != EEXIST) return kerr_sys(e, errno, "create directory %s", p);
    *c = '/';
  }
  if (mkdir(p, 0700) < 0 && errno != EEXIST) return kerr_sys(e, errno, "create directory %s", p);
  return KLEVDB_OK;
}

klevdb_err klevdb_open(const char *dir, const klevdb_options *opts, klevdb **out,
                       klevdb_error *e) {
  if (e) {
    e->code = KLEVDB_OK;
    e->msg[0] = 0;
  }
  if (!out) return kerr(e, KLEVDB_EINVAL, "open: no place for the handle");
  *out = NULL;
  if (!dir || !*dir) return kerr(e, KLEVDB_EINVAL, "open: no directory given");
  if (strlen(dir) > PATH_CAP - 64) return kerr(e, KLEVDB_EINVAL, "open: directory name too long");
  klevdb_options o = {0};
  if (opts) o = *opts;
  if (o.new_segments_version < KLEVDB_VERSION_DEFAULT || o.new_segments_version > KLEVDB_V2)
    return kerr(e, KLEVDB_EINVAL, "open %s: unknown format version %d", dir,
                (int)o.new_segments_version);
  klevdb_err rc;
  if (o.create_dirs && (rc = mkdirs(dir, e))) return rc;
  struct stat sb;
  if (stat(dir, &sb) < 0) {
    if (errno == ENOENT) return kerr(e, KLEVDB_EIO, "open %s: no such directory (create_dirs is off)", dir);
    return kerr_sys(e, errno, "open %s", dir);
  }
  klevdb *db = calloc(1, sizeof(*db));
  if (!db) return kerr_sys(e, ENOMEM, "open");
  db->ro = o.readonly;
  pthread_once(&atfork_once, atfork_register);

  pthread_mutex_lock(&registry_mu);
  store *st = registry_find(sb.st_dev, sb.st_ino, !o.readonly);
  if (st) {
    int params = (o.time_index ? IDX_TIMES : 0) | (o.key_index ? IDX_KEYS : 0);
    if (params != st->params) {
      pthread_mutex_unlock(&registry_mu);
      free(db);
      return kerr(e, KLEVDB_EINVAL,
                  "open %s: already open in this process with key_index=%d time_index=%d",
                  dir, !!(st->params & IDX_KEYS), !!(st->params & IDX_TIMES));
    }
    st->refs++;
  } else if (registry_n == sizeof(registry) / sizeof(registry[0])) {
    pthread_mutex_unlock(&registry_mu);
    free(db);
    return kerr(e, KLEVDB_EINVAL, "open %s: too many stores open in this process", dir);
  } else {
    /* A read-only open lists the segments, then reads the last one: a
    ** writer of another process may rewrite it in between (ro_again). */
    for (int tries = 1;; tries++) {
      bool raced = false;
      rc = store_open(dir, &o, &st, &raced, e);
      if (!rc || !o.readonly || !ro_transient(rc) || tries >= RO_TRIES) break;
      if (!raced && !writer_active(dir)) break;
      usleep(1000 * (useconds_t)(tries - 1));
    }
    if (rc) {
      pthread_mutex_unlock(&registry_mu);
      free(db);
      return rc;
    }
    st->refs = 1;
    registry[registry_n++] = st;
    registry_link(st->dev, st->ino);
  }
  pthread_mutex_unlock(&registry_mu);
  db->st = st;
  *out = db;
  return KLEVDB_OK;
}

klevdb_err klevdb_close(klevdb *db) {
  if (!db) return KLEVDB_OK;
  if (db->st->forked) {
    free(db);
    return KLEVDB_OK;
  }
  klevdb_interrupt(db);
  klevdb_writer_unlock(db);
  store *st = db->st;
  pthread_mutex_lock(&registry_mu);
  bool last = --st->refs == 0;
  if (last) {
    for (size_t i = 0; i < registry_n; i++)
      if (registry[i] == st) {
        registry[i] = registry[--registry_n];
        break;
      }
    registry_link(st->dev, st->ino);
  }
  pthread_mutex_unlock(&registry_mu);
  if (last) store_close(st);
  free(db);
  return KLEVDB_OK;
}
