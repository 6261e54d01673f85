/*
** txn.c - the writer side of SQL transactions: the reservation of the
** writes (klevdb_writer_lock), and what stage.c and prepared.c ask of the
** store to build, prepare and install their batches.
*/
#include <errno.h>
#include <time.h>

#include "store.h"

/* ---- the writer reservation of SQL transactions ---- */

klevdb_err klevdb_writer_lock(klevdb *db, int64_t timeout_ms) {
  BEGIN(db);
  store *st = db->st;
  if (db->ro || st->ro) return kerr(&db->err, KLEVDB_EREADONLY, "write: store opened read-only");
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += timeout_ms / 1000;
  until.tv_nsec += (timeout_ms % 1000) * 1000000;
  if (until.tv_nsec >= 1000000000) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000;
  }
  klevdb_err rc = KLEVDB_OK;
  pthread_mutex_lock(&st->wmu);
  for (;;) {
    /* Not in the middle of a delete of several segments, which lets
    ** publishes by but not a transaction: wait for its end, as for wmu,
    ** which such a delete used to hold throughout. */
    if (st->deleting) {
      pthread_cond_wait(&st->txn_cv, &st->wmu);
      continue;
    }
    if (!st->txn_owner || st->txn_owner == db) break;
    if (timeout_ms <= 0 || pthread_cond_timedwait(&st->txn_cv, &st->wmu, &until) == ETIMEDOUT) {
      if (st->deleting) continue;
      if (st->txn_owner && st->txn_owner != db)
        rc = kerr(&db->err, KLEVDB_ELOCKED, "write: another connection is writing this store (an open transaction, maybe of another table on it)");
      break;
    }
  }
  if (!rc) st->txn_owner = db;
  pthread_mutex_unlock(&st->wmu);
  return rc;
}

void klevdb_writer_unlock(klevdb *db) {
  if (!db || db->st->forked) return;
  store *st = db->st;
  pthread_mutex_lock(&st->wmu);
  if (st->txn_owner == db) {
    st->txn_owner = NULL;
    pthread_cond_broadcast(&st->txn_cv);
  }
  pthread_mutex_unlock(&st->wmu);
}

/* Offsets from next on are claimed by a prepared batch whose fate only
** its SQL transaction knows: no other write may take them. */
klevdb_err in_doubt(store *st, klevdb_error *e, const char *what) {
  return kerr(e, KLEVDB_ELOCKED, "%s: a SQL transaction is in doubt in %s (its batch is "
              "prepared at offset %lld, its outcome not yet known): open the store from its "
              "table, or resolve it (klevdb_prepared_find, then commit or abort)", what,
              st->dir, (long long)st->next);
}

/* ---- prepared batches (prepared.c) ---- */

klevdb_err store_prepare_begin(klevdb *db, const char **dir, bool *sync) {
  BEGIN(db);
  store *st = db->st;
  if (db->ro || st->ro) return kerr(&db->err, KLEVDB_EREADONLY, "prepare: store opened read-only");
  klevdb_err rc = KLEVDB_OK;
  pthread_mutex_lock(&st->wmu);
  if (st->txn_owner != db) rc = kerr(&db->err, KLEVDB_EINVAL, "prepare: the handle must hold klevdb_writer_lock");
  else if (head(st)->fd < 0) rc = kerr(&db->err, KLEVDB_ECLOSED, "prepare: store is closed");
  else if (st->doubt) rc = in_doubt(st, &db->err, "prepare");
  *dir = st->dir;
  *sync = st->opts.auto_sync;
  pthread_mutex_unlock(&st->wmu);
  return rc;
}

klevdb_err store_prepared_dir(klevdb *db, const char **dir, bool *sync, bool *doubt) {
  BEGIN(db);
  store *st = db->st;
  if (db->ro || st->ro) {
    /* A reader may look (its writer is elsewhere) but not decide. */
    if (!doubt) return kerr(&db->err, KLEVDB_EREADONLY, "prepared batch: store opened read-only");
    *dir = st->dir;
    *sync = false;
    *doubt = prepared_exists(st->dir);
    return KLEVDB_OK;
  }
  pthread_mutex_lock(&st->wmu);
  *dir = st->dir;
  *sync = st->opts.auto_sync;
  if (doubt) *doubt = st->doubt;
  pthread_mutex_unlock(&st->wmu);
  return KLEVDB_OK;
}

void store_set_doubt(klevdb *db, bool doubt) {
  store *st = db->st;
  pthread_mutex_lock(&st->wmu);
  st->doubt = doubt;
  pthread_mutex_unlock(&st->wmu);
}

void store_seg_format(klevdb *db, int *ver, int *params) {
  *ver = db->st->newver;
  *params = db->st->params;
}

klevdb_err store_publish_prepared(klevdb *db, const klevdb_msg *msgs, size_t n,
                                  int64_t *next_out) {
  db->resolving = true;
  klevdb_err rc = klevdb_publish(db, msgs, n, next_out);
  db->resolving = false;
  return rc;
}

/* ---- staged batches (stage.c) ---- */

klevdb_err store_stage_begin(klevdb *db, store **st_out, stage_params *p) {
  BEGIN(db);
  store *st = db->st;
  if (db->ro || st->ro) return kerr(&db->err, KLEVDB_EREADONLY, "publish: store opened read-only");
  klevdb_err rc = KLEVDB_OK;
  pthread_mutex_lock(&st->wmu);
  if (st->txn_owner != db) {
    rc = kerr(&db->err, KLEVDB_EINVAL, "stage: the handle must hold klevdb_writer_lock");
  } else if (head(st)->fd < 0) {
    rc = kerr(&db->err, KLEVDB_ECLOSED, "publish: store is closed");
  } else if (st->doubt) {
    rc = in_doubt(st, &db->err, "stage");
  } else {
    *st_out = st;
    p->next = st->next;
    p->last_ts = st->hd.last_ts;
    p->ver = st->newver;
    p->params = st->params;
    p->rollover = st->opts.rollover;
    p->sync = st->opts.auto_sync;
  }
  pthread_mutex_unlock(&st->wmu);
  return rc;
}

klevdb_err store_stage_commit(klevdb *db, int64_t base, const int64_t *bases, size_t nb,
                              int64_t *next_out) {
  store *st = db->st;
  klevdb_error *e = &db->err;
  pthread_mutex_lock(&st->wmu);
  txn_wait(st, db);
  klevdb_err rc = KLEVDB_OK;
  if (head(st)->fd < 0) rc = kerr(e, KLEVDB_ECLOSED, "publish: store is closed");
  else if (st->next != base)
    rc = kerr(e, KLEVDB_EINVAL, "publish: the store moved on while the batch was staged "
              "(next offset %lld, staged from %lld)", (long long)st->next, (long long)base);
  if (!rc && !(rc = install_batch(st, bases, nb, TMP_STAGE, e))) wake_waiters(st);
  if (next_out) *next_out = st->next;
  pthread_mutex_unlock(&st->wmu);
  return rc;
}

klevdb_error *store_handle_err(klevdb *db) { return &db->err; }
