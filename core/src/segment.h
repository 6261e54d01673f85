/*
** segment.h - the segment layer: one segment of a store (a .log and its
** .index) and the spare files of the next head. It sees its store only
** through segcfg, read-only, and calls down into the files layer (kdb.h).
*/
#ifndef SEGMENT_H
#define SEGMENT_H

#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>

#include "kdb.h"

/* What the segment layer knows of its store, set once at open and never
** written after: copies of the store's settings. */
typedef struct segcfg {
  const char *dir;
  int params;               /* IDX_TIMES | IDX_KEYS */
  size_t isz;               /* item_size(params) */
  int newver;               /* format of new segments and rebuilt indexes */
  int64_t rollover;         /* sizes the room mapped ahead of a live log */
  bool ro;                  /* read-only store: never writes a file */
  bool keep_rewrite_version;
  /* The store's counters (atomic), which seg_load adds to: *loads for each
  ** sealed segment it maps (the store's sweep), *moves when a read-only
  ** load found the log replaced under it (a writer's rewrite raced it). */
  uint64_t *loads, *moves;
} segcfg;

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

/* A head's count and log end grow while readers look: publish stores them
** (release) without the list lock, once the items and records they cover
** are written. Readers take each once (acquire) and keep to what it
** covers; the writer, the only one to grow them, reads them plainly. */
static inline size_t seg_n(const seg *s) {
  return __atomic_load_n(&s->n, __ATOMIC_ACQUIRE);
}
static inline int64_t seg_end(const seg *s) {
  return __atomic_load_n(&s->log_end, __ATOMIC_ACQUIRE);
}

/* ---- segment.c ---- */

seg *seg_new(int64_t base);
void seg_free(seg *s);
/* Makes items and the log mapping usable (lazy load, may rebuild the
** index; writes the rebuilt index only in read-write stores). upper: the
** base of the segment after s in the store's list (s holds offsets below
** it), INT64_MAX for the last one; a read-only store's only segment, at 0,
** may be the virtual empty one of a directory without files. */
klevdb_err seg_load(const segcfg *c, seg *s, int64_t upper, klevdb_error *e);
/* Reads new records of a live segment (the last one) appended by another
** process. */
klevdb_err seg_follow(const segcfg *c, seg *s, klevdb_error *e);
/* Forgets items and mappings (gc); they reload on next use. */
void seg_unload(seg *s);
/* Decodes the record of item i. */
klevdb_err seg_read(const segcfg *c, const seg *s, size_t i, klevdb_msg *m,
                    klevdb_error *e);
/* Byte size of the record of item i (from positions, without reading it). */
int64_t seg_rec_len(const segcfg *c, const seg *s, size_t i);
/* The messages of sealed segment s and their bytes (records and index
** items, as a delete counts them), from its files' headers and ends alone,
** without mapping them: for a delete that drops all of it. fds: the log
** and index, left open for the caller (whose last close frees them).
** False when the files do not add up (the caller loads it, which
** rebuilds or reports). */
bool seg_whole(const segcfg *c, const seg *s, int64_t upper, size_t *n, int64_t *bytes,
               int fds[2]);
/* Stat of the last segment of a store: messages and bytes of both files. */
klevdb_err seg_stat(const segcfg *c, seg *s, int64_t *msgs, int64_t *bytes,
                    klevdb_error *e);
static inline int64_t seg_next(const seg *s, size_t isz) {
  size_t n = seg_n(s);
  return n ? item_off(seg_items(s) + (n - 1) * isz) + 1 : s->base;
}
/* Room to map for a log that grows, now size bytes. */
size_t log_reserve(const segcfg *c, int64_t size);
/* Items of a live segment whose log is mapped: the .index file's, checked
** against the log, then one per record past the last indexed one. writer:
** the head of a read-write store, which cuts a torn tail (*rewrite: its
** index must be written again). */
klevdb_err live_items(const segcfg *c, seg *s, bool writer, bool *rewrite, klevdb_error *e);

/* Rewrites segment s (upper as for seg_load) without the items for which
** drop(offset) is true, to temp files. *kept counts the items kept; *first
** is the first survivor. tmp_log/tmp_idx get the temp paths (left unset
** when nothing dropped). */
typedef bool (*drop_fn)(void *ctx, int64_t offset);
klevdb_err seg_rewrite(const segcfg *c, seg *s, int64_t upper, drop_fn drop, void *ctx,
                       char *tmp_log, char *tmp_idx, size_t cap,
                       size_t *kept, int64_t *first, klevdb_error *e);

/* ---- spare.c ---- */

/* The next head's files, made ahead by a background thread. */
typedef struct spare {
  const segcfg *cfg;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t tid;
  bool running;
  int state;
} spare;
void spare_init(spare *sp, const segcfg *cfg);
/* Frees what spare_init made (spare_stop first). */
void spare_destroy(spare *sp);
/* Asks the background thread for a spare pair of files (starting it). */
void spare_want(spare *sp);
/* Renames a ready spare pair to segment base's names; false if none. */
bool spare_take(spare *sp, int64_t base);
/* Removes a ready spare pair, giving its space back (a full disk); the
** next rollover makes the head's files itself. */
void spare_drop(spare *sp);
/* Stops the thread and removes the spare files (close). */
void spare_stop(spare *sp);
/* Removes spare files a crashed writer left (open). */
void spare_clean(spare *sp);

#endif /* SEGMENT_H */
