/*
** store.h - the in-memory shape of an open store, shared by segment.c
** (one log + index pair) and store.c (the segment list and the API).
*/
#ifndef STORE_H
#define STORE_H

#include <pthread.h>
#include <sys/types.h>

#include "kdb.h"
#include "keytable.h"

/* One segment. A sealed segment maps its .log and .index lazily and reads
** items straight from the index mapping. The head (and the last segment of
** a read-only store, which another process may still append to) keeps its
** items in a heap buffer that grows as records arrive, and maps its log
** with room to grow. */
typedef struct seg {
  int64_t base;
  ino_t ino;                /* of the .log when loaded (read-only refresh) */
  int ver;                  /* log format, 0 until the log is opened */
  bool live;                /* items in ibuf, log may grow (head / tail) */

  int fd;                   /* log fd kept open for live segments, else -1 */
  kmap *log;                /* NULL until first read */
  int64_t log_end;          /* bytes of complete records */

  bool loaded;              /* items valid (atomic) */
  kmap *imap;               /* mapped .index (sealed) */
  int64_t ioff;             /* items start in imap (0 V1, 8 V2) */
  int iver;                 /* index format */
  kbuf ibuf;                /* items of live or rebuilt segments */
  size_t n;                 /* number of items */
  int64_t isize;            /* .index file size (sealed, for stat) */

  int64_t atime;            /* last use, coarse µs (gc, unmapping) */
  pthread_mutex_t load_mu;

  /* What stays known of a sealed segment once it is unmapped, for walks
  ** over every segment (time table, stat): set by seg_load under load_mu,
  ** then summed (atomic, release). */
  bool summed;
  int64_t sum_n, sum_bytes;
  int64_t sum_ts_lo, sum_ts_hi;  /* first and last indexed times */
} seg;

static inline const uint8_t *seg_items(const seg *s) {
  return s->imap ? s->imap->data + s->ioff : s->ibuf.p;
}

typedef struct store store;

struct store {
  char *dir;
  dev_t dev;
  ino_t ino;
  bool ro;
  int refs;                 /* handles, under the registry mutex */

  klevdb_options opts;
  int params;
  size_t isz;
  int newver;

  int lockfd;
  pthread_mutex_t wmu;      /* writers: publish, delete, sync, backup, close */
  pthread_rwlock_t lk;      /* segment list, head items, key table */

  seg **segs;
  int64_t *bases;           /* segs[i]->base, contiguous for binary search */
  size_t nsegs, capsegs;
  int64_t next;             /* next offset (atomic reads) */

  /* head writer state (read-write stores), under wmu */
  int64_t last_ts;          /* time clamp carried across segments */
  int64_t alloc;            /* head log bytes allocated (preallocate) */
  bool no_fallocate;        /* the file system cannot: append with write() */
  kbuf wbuf;

  /* a handle holding the writes (klevdb_writer_lock), under wmu */
  struct klevdb *txn_owner;
  pthread_cond_t txn_cv;
  bool doubt;               /* a prepared batch is in the store, under wmu */

  /* the next head's files, made ahead (spare.c) */
  pthread_mutex_t spare_mu;
  pthread_cond_t spare_cv;
  pthread_t spare_tid;
  bool spare_running;
  int spare_state;

  /* time lookups: the suffix minimum of each segment's first indexed
  ** time (empty segments count as +inf), rebuilt when segments change */
  pthread_mutex_t tsmu;
  int64_t *tsmin;
  int64_t *tsmax;           /* prefix maximum of each segment's last indexed
                            ** time (time floors); the head's entry goes stale */
  size_t tsmin_n;           /* valid entries; 0 when stale (atomic) */

  /* key table, under lk */
  ktab kt;
  int kt_state;             /* 0 not started, 1 in use, -1 unusable */
  int64_t kt_lo;            /* the table covers the segments from this base
                            ** on: it grows back from the newest as needed */

  /* blocking consumers */
  pthread_mutex_t cvmu;
  pthread_cond_t cv;
  int waiters;              /* atomic */
  uint64_t pubseq;          /* atomic, bumped by publish and refresh */
  bool closing;

  /* mapped sealed segments: loads counts seg_load's mappings of sealed
  ** segments (atomic), swept the value at the last sweep (store.c) */
  uint64_t loads, swept;

  /* read-only stores: following another process */
  uint64_t moves;           /* atomic: bumped when files under the view
                            ** moved (a segment replaced, removed or added
                            ** by relist; a load that raced a rewrite) */
  struct timespec dir_mtime;
  int64_t refreshed;        /* coarse µs of the last refresh check */
  int stale;                /* atomic: a writer of this process changed
                            ** the files since (relist at the next read) */
  int peers;                /* read-write stores: read-only stores of the
                            ** directory in this process (atomic; set
                            ** under the registry's mutex) */
};

/* ---- segment.c ---- */
seg *seg_new(int64_t base);
void seg_free(seg *s);
/* Makes items and the log mapping usable (lazy load, may rebuild the
** index; writes the rebuilt index only in read-write stores). */
klevdb_err seg_load(store *st, seg *s, klevdb_error *e);
/* Reads new records of a live segment appended by another process. */
klevdb_err seg_follow(store *st, seg *s, klevdb_error *e);
/* Forgets items and mappings (gc); they reload on next use. */
void seg_unload(seg *s);
/* Decodes the record of item i. */
klevdb_err seg_read(const store *st, const seg *s, size_t i, klevdb_msg *m,
                    klevdb_error *e);
/* Byte size of the record of item i (from positions, without reading it). */
int64_t seg_rec_len(const store *st, const seg *s, size_t i);
/* Stat of one segment: messages and bytes of both files. */
klevdb_err seg_stat(store *st, seg *s, int64_t *msgs, int64_t *bytes,
                    klevdb_error *e);
static inline int64_t seg_next(const seg *s, size_t isz) {
  return s->n ? item_off(seg_items(s) + (s->n - 1) * isz) + 1 : s->base;
}

/* Head of a read-write store: open (creating files) or create new. */
klevdb_err head_open(store *st, seg *s, bool create, klevdb_error *e);
/* Creates an empty segment's files at base (if there are none). */
klevdb_err seg_create_empty(store *st, int64_t base, klevdb_error *e);
/* Writes the head's whole .index (which holds only its header while the
** head is written): the head is being sealed or closed. */
klevdb_err head_seal(store *st, seg *h, bool sync, klevdb_error *e);
/* Closes the head's log (fsyncs it first if sync); head_seal first. */
void head_close(store *st, seg *s, bool sync);
/* Cuts the head log back to its records: appends copy into the mapping of
** space allocated ahead, which must not outlive the writer. */
void head_trim(store *st, seg *s);
size_t log_reserve(const store *st, int64_t size);

/* ---- spare.c ---- */
/* Asks the background thread for a spare pair of files (starting it). */
void spare_want(store *st);
/* Renames a ready spare pair to segment base's names; false if none. */
bool spare_take(store *st, int64_t base);
/* Removes a ready spare pair, giving its space back (a full disk); the
** next rollover makes the head's files itself. */
void spare_drop(store *st);
/* Stops the thread and removes the spare files (close). */
void spare_stop(store *st);
/* Removes spare files a crashed writer left (open). */
void spare_clean(store *st);

/* Rewrites segment s without the items for which drop(offset) is true, to
** temp files. *kept and *dropped count items; *first is the first survivor.
** tmp_log/tmp_idx get the temp paths (left unset when nothing dropped). */
typedef bool (*drop_fn)(void *ctx, int64_t offset);
klevdb_err seg_rewrite(store *st, seg *s, drop_fn drop, void *ctx,
                       char *tmp_log, char *tmp_idx, size_t cap,
                       size_t *kept, int64_t *first, klevdb_error *e);

/* ---- store.c, for stage.c ---- */

/* What a staged batch is built with, read when it begins. */
typedef struct stage_params {
  int64_t next, last_ts, rollover;
  int ver, params;
  bool sync;
} stage_params;
/* Checks that db may stage (it holds klevdb_writer_lock) and reads the
** store's state, which that lock keeps as it is until the commit. */
klevdb_err store_stage_begin(klevdb *db, store **st_out, stage_params *p);
/* Installs segments a stage wrote (TMP_STAGE names) as one batch starting
** at base. On failure their files stay where they were: the caller drops
** them, or keeps them for a prepared batch. */
klevdb_err store_stage_commit(klevdb *db, int64_t base, const int64_t *bases, size_t nb,
                              int64_t *next_out);
klevdb_error *store_handle_err(klevdb *db);

/* ---- prepared.c, and store.c for it ---- */

/* True when dir holds a prepared batch (removes one half written). */
bool prepared_present(const char *dir);
/* The same without touching anything (readers). */
bool prepared_exists(const char *dir);
/* Removes what stages left (a crash while a transaction ran), but not the
** segments of the batch in doubt. At a writer's open. */
void prepared_clean(const char *dir);
/* klevdb_stage_prepare's second half: the batch of count messages at base
** is in the stage's segments segs[0..nsegs). */
klevdb_err prepared_staged(klevdb *db, int64_t base, size_t count, const int64_t *segs,
                           size_t nsegs, const klevdb_range *ranges, size_t nranges,
                           const char *txid, klevdb_prepared **out);
/* The format new segments are written in. */
void store_seg_format(klevdb *db, int *ver, int *params);
/* Checks that db may prepare (writer lock held, no batch in doubt); gives
** the store's directory and whether it syncs. */
klevdb_err store_prepare_begin(klevdb *db, const char **dir, bool *sync);
/* The same facts for resolving; *doubt (NULL: the caller will change the
** store, which read-only handles refuse) gets whether a prepared batch is
** in the store. */
klevdb_err store_prepared_dir(klevdb *db, const char **dir, bool *sync, bool *doubt);
/* Marks the store as holding a prepared batch (publish refuses) or not. */
void store_set_doubt(klevdb *db, bool doubt);
/* klevdb_publish for the prepared batch itself, which the mark lets by. */
klevdb_err store_publish_prepared(klevdb *db, const klevdb_msg *msgs, size_t n,
                                  int64_t *next_out);

#endif
