/*
** kdb.h - internal declarations shared by the files of libklevdb: errors,
** byte order, CRC-32C, the record format (message.c) and the index item
** format (index.c). Nothing here is part of the public API.
*/
#ifndef KDB_H
#define KDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "klevdb.h"

/* ---- errors (error.c) ---- */

/* Sets e (if not NULL) to code and a "klevdb: ..." message; returns code. */
klevdb_err kerr(klevdb_error *e, klevdb_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* As kerr, with ": strerror(errno_value)" appended, class KLEVDB_EIO
** (KLEVDB_ENOMEM for ENOMEM). */
klevdb_err kerr_sys(klevdb_error *e, int errno_value, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Puts "what: " in front of the message already in e (returns nothing:
** with e NULL there is no code to return; callers return their own). */
void kerr_wrap(klevdb_error *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Sets the handle's error (for files built on the public API, such as
** retention.c); returns code. */
struct klevdb;
klevdb_err kdb_fail(struct klevdb *db, klevdb_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- byte order ---- */

static inline uint64_t get_be64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return __builtin_bswap64(v);
}
static inline uint32_t get_be32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return __builtin_bswap32(v);
}
static inline void put_be64(uint8_t *p, uint64_t v) {
  v = __builtin_bswap64(v);
  memcpy(p, &v, 8);
}
static inline void put_be32(uint8_t *p, uint32_t v) {
  v = __builtin_bswap32(v);
  memcpy(p, &v, 4);
}

/* ---- CRC-32C (crc32c.c) ---- */

/* Standard CRC-32C: crc32c(0, "123456789", 9) == 0xE3069283. Chainable:
** crc32c(crc32c(0, a, n), b, m) == crc32c(0, a||b, n+m). */
uint32_t crc32c(uint32_t crc, const void *p, size_t n);

/* ---- FNV-1a-64 key hash (codec.c: klevdb_key_hash) ---- */

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

/* ---- log records (message.c) ---- */

#define FILE_HDR 8           /* V2 file header of .log and .index */
#define REC_HDR 28           /* record header, both versions */
#define REC_TRAILER 8        /* V2 only */

/* Byte offsets inside the V2 file header and records (docs/format.md has
** the diagrams). The four fields both versions share have one layout; it
** starts at byte 0 of a V1 record and after the CRC in a V2 record. */
enum {
  HDR_MAGIC = 0,             /* 6 bytes: 0xFF "klevs" (log) or "klevi" (index) */
  HDR_VERSION = 6,           /* 0x01 */
  HDR_RESERVED = 7,          /* 0 in a log */
  HDR_PARAMS = 7,            /* IDX_TIMES | IDX_KEYS in an index */
  REC2_CRC = 0,              /* V2: CRC-32C of everything after it */
  REC2_FIELDS = 4,           /* V2: where the shared fields start */
  REC1_CRC = 24,             /* V1: CRC-32C of key and value */
  REC_OFFSET = 0,            /* shared fields, from their start: i64 offset */
  REC_TIME = 8,              /* i64 time (microseconds) */
  REC_KLEN = 16,             /* u32 key length */
  REC_VLEN = 20              /* u32 value length */
};
enum { FMT_V1 = 1, FMT_V2 = 2 };

static inline int64_t rec_size(int ver, size_t klen, size_t vlen) {
  return (int64_t)(REC_HDR + klen + vlen + (ver == FMT_V2 ? REC_TRAILER : 0));
}
static inline int64_t log_start(int ver) { return ver == FMT_V2 ? FILE_HDR : 0; }

/* The 8-byte V2 log header. */
void log_header(uint8_t out[FILE_HDR]);

/* Detects a log's format from its first bytes (hdr holds min(size, 8)
** bytes) and the segment's base offset; size 0 is an empty V1 log. */
klevdb_err log_detect(const uint8_t *hdr, int64_t size, int64_t base, int *ver,
                      klevdb_error *e);

/* Encodes one record at out (rec_size bytes); returns its size. */
size_t rec_encode(int ver, uint8_t *out, int64_t offset, int64_t time,
                  const uint8_t *key, size_t klen, const uint8_t *val,
                  size_t vlen);

/* Checks messages to publish (bytes given, sizes within the limit);
** *bytes (may be NULL) gets their size as V2 records. */
klevdb_err msgs_check(const klevdb_msg *msgs, size_t n, size_t *bytes, klevdb_error *e);

/* Microseconds since the epoch: the time of messages published without one. */
static inline int64_t wall_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Decodes the record at p with avail bytes up to the end of data.
** Returns 1 with *m (key/value pointing into p) and *len, 0 at end of data
** (fewer than REC_HDR bytes: docs/format.md, reading a record), or -1 with e set
** (KLEVDB_ECORRUPT_LOG). verify: check the CRC. */
int rec_decode(int ver, const uint8_t *p, int64_t avail, bool verify,
               klevdb_msg *m, int64_t *len, klevdb_error *e);

/* ---- index items (index.c) ---- */

#define IDX_TIMES 0x01
#define IDX_KEYS 0x02

/* An item: offset, position, then the time (IDX_TIMES) and the key hash
** (IDX_KEYS), 8 bytes each, in that order when both are there. */
enum { ITEM_OFFSET = 0, ITEM_POS = 8, ITEM_EXTRA = 16 };

static inline size_t item_size(int params) {
  return ITEM_EXTRA + ((params & IDX_TIMES) ? 8 : 0) + ((params & IDX_KEYS) ? 8 : 0);
}
static inline int64_t item_off(const uint8_t *it) { return (int64_t)get_be64(it + ITEM_OFFSET); }
static inline int64_t item_pos(const uint8_t *it) { return (int64_t)get_be64(it + ITEM_POS); }
static inline int64_t item_ts(const uint8_t *it, int params) {
  return (params & IDX_TIMES) ? (int64_t)get_be64(it + ITEM_EXTRA) : 0;
}
static inline uint64_t item_hash(const uint8_t *it, int params) {
  return (params & IDX_KEYS) ? get_be64(it + ITEM_EXTRA + ((params & IDX_TIMES) ? 8 : 0)) : 0;
}
void item_encode(uint8_t *out, int params, int64_t off, int64_t pos, int64_t ts,
                 uint64_t hash);

/* The 8-byte V2 index header. */
void index_header(uint8_t out[FILE_HDR], int params);

/* Validates an index file's header (docs/format.md, validating an index): hdr holds min(size, 8)
** bytes. Sets *ver and *data_start (0 for V1, 8 for V2). */
klevdb_err index_detect(const uint8_t *hdr, int64_t size, int64_t base,
                        int params, int *ver, int64_t *data_start,
                        klevdb_error *e);

/* Searches over n raw items. Each returns an item index or one
** of the negative codes below. */
enum { IX_EMPTY = -1, IX_AFTER_END = -2, IX_BEFORE_START = -3, IX_ABSENT = -4 };
/* First item with offset >= o (idx_consume without the special offsets). */
long items_seek(const uint8_t *items, size_t n, size_t isz, int64_t o);
/* The item with offset exactly o. */
long items_find(const uint8_t *items, size_t n, size_t isz, int64_t o);
/* First item with (clamped) time >= ts. */
long items_time(const uint8_t *items, size_t n, size_t isz, int params,
                int64_t ts);


/* ---- segment files (segfile.c) ---- */

/* "<dir>/<20-digit base><ext>", ext like ".log" or ".index". */
void seg_path(char *out, size_t cap, const char *dir, int64_t base, const char *ext);

/* Segment discovery (docs/format.md, segment names): the bases of every "*.log" in dir, sorted
** ascending (free() *bases). A missing directory gives n = 0 with
** DIRSEG_MISSING_OK, else KLEVDB_EIO. DIRSEG_CLEAN_TEMPS also removes, in
** the same pass, the temporary files crashed writers (Go's or ours) leave:
** only with the store's lock. */
#define DIRSEG_MISSING_OK 1
#define DIRSEG_CLEAN_TEMPS 2
klevdb_err dir_segments(const char *dir, int flags, int64_t **bases, size_t *n,
                        klevdb_error *e);

/* A read-only mapping of a whole file, refcounted so that readers can keep
** using it after the segment was deleted, rewritten or gc'ed. */
typedef struct kmap {
  const uint8_t *data;
  size_t len;       /* bytes mapped (may exceed the file size: reserve) */
  int refs;         /* atomic */
} kmap;
/* Maps reserve bytes (at least the file size) of fd; len 0 maps nothing.
** writable: the head, whose writer appends by copying into the mapping. */
klevdb_err kmap_open(int fd, size_t reserve, bool writable, kmap **out, klevdb_error *e);
kmap *kmap_ref(kmap *m);
void kmap_unref(kmap *m);
/* kmap_unref in two steps: true when that was the last reference, which
** the caller then frees (kmap_free) where it likes. */
bool kmap_drop(kmap *m);
void kmap_free(kmap *m);

/* Opens a file of the store (flags as open(2), O_CLOEXEC added; created
** 0600): never through a symbolic link (one to another segment's file
** would read or append to that one) and only a regular file, else class
** bad. On failure *fd_out is -1 and errno says why (ENOENT: missing). */
klevdb_err file_open(const char *path, int flags, klevdb_err bad, int *fd_out, klevdb_error *e);

/* Reads a whole file into memory (malloc'ed; *len bytes). Missing file:
** KLEVDB_ENOTFOUND; not a regular file (a symbolic link): a corruption. */
klevdb_err file_read(const char *path, uint8_t **data, size_t *len, klevdb_error *e);

/* A growable byte buffer. */
typedef struct kbuf {
  uint8_t *p;
  size_t len, cap;
} kbuf;
klevdb_err kbuf_reserve(kbuf *b, size_t extra, klevdb_error *e);
void kbuf_free(kbuf *b);

/* Scans the records of a log image (data, size bytes, format ver) from
** position from, appending one index item per record to items (clamping
** times from *last_ts, updated). Stops at end of data; *end gets the
** position after the last good record. Returns KLEVDB_ECORRUPT_LOG (with
** *end at the bad record) if a record does not parse. */
klevdb_err log_scan(const uint8_t *data, int64_t size, int ver, int64_t from,
                    int params, int64_t *last_ts, kbuf *items, int64_t *end,
                    klevdb_error *e);

/* True when only zero bytes follow position from in data[0..size): room a
** writer allocated ahead of its records (never a valid record: a V2 CRC of
** zeros is not zero, a V1 offset cannot go back to 0). */
bool log_zero_tail(const uint8_t *data, int64_t size, int64_t from);

/* Writes an index's content to fd (header for ver V2, then items): 0 or
** an errno. */
int index_put(int fd, int ver, int params, const uint8_t *items, size_t len);
/* Writes a whole index file (index_put), fsynced if sync, replacing any
** file at path. */
klevdb_err index_write(const char *path, int ver, int params,
                       const uint8_t *items, size_t len, bool sync, klevdb_error *e);

/* write(2) of all n bytes (retrying short writes and EINTR); 0 or an errno. */
int write_full(int fd, const uint8_t *p, size_t n);
/* The same with pwrite(2) at position at. */
int pwrite_full(int fd, const uint8_t *p, size_t n, int64_t at);

/* Syncs a directory (after renames). */
klevdb_err dir_sync(const char *dir, klevdb_error *e);

/* ---- all-or-nothing changes of several files (batch.c) ---- */

/* One segment's files built in memory, record by record, then written
** under temporary names (batch_write; stage.c, which builds them while a
** transaction collects its messages). */
typedef struct segbuild {
  int ver, params;
  size_t isz;
  int64_t base;             /* offset of the first record */
  size_t n;                 /* records */
  kbuf log, items;          /* the .log file (with its header) and index items */
} segbuild;
klevdb_err segbuild_start(segbuild *b, int ver, int params, int64_t base, klevdb_error *e);
/* Appends m (time t) as offset base + n; index times clamp from *last_ts. */
klevdb_err segbuild_add(segbuild *b, const klevdb_msg *m, int64_t t, int64_t *last_ts,
                        klevdb_error *e);
/* Temporary names of a batch's segment files (<segment file><tmp>): a
** publish's go at the next open; a stage's stay while a prepared batch
** names them (prepared.c), and a commit cut short puts them back. */
#define TMP_BATCH ".batch"
#define TMP_STAGE ".stage"
klevdb_err segbuild_write(const char *dir, const segbuild *b, const char *tmp, bool sync,
                          klevdb_error *e);
/* Reads a segment segbuild_write wrote back (to cut it shorter). */
klevdb_err segbuild_read(const char *dir, segbuild *b, const char *tmp, int ver, int params,
                         int64_t base, klevdb_error *e);
void segbuild_free(segbuild *b);

/* Writes msgs[0..n) (offsets from offset, unset times = now, index times
** clamped from *last_ts) as segments of about rollover bytes under
** temporary names; *bases_out (free()) gets their bases. */
klevdb_err batch_write(const char *dir, int ver, int params, int64_t rollover,
                       const klevdb_msg *msgs, size_t n, int64_t offset, int64_t now,
                       int64_t *last_ts, bool sync, int64_t **bases_out, size_t *nb_out,
                       klevdb_error *e);
/* Renames the segments (named with tmp) into place under a marker after
** the head segment at base head (replace: the first one replaces that
** head, empty); all or nothing, across a crash (batch_recover). */
klevdb_err batch_commit(const char *dir, const int64_t *bases, size_t nb, const char *tmp,
                        bool replace, int64_t head, bool sync, klevdb_error *e);
/* Removes the temporary files of a batch that is not committed. */
void batch_discard(const char *dir, const int64_t *bases, size_t nb, const char *tmp);
/* At open: undoes or finishes a batch whose commit a crash interrupted. */
klevdb_err batch_recover(const char *dir, klevdb_error *e);

/* A delete's renames and removals under a marker (batch.c): written before
** them, removed after; open finishes or undoes what a crash interrupted. */
klevdb_err delete_mark(const char *dir, int64_t old_base, int64_t new_base, const char *tmp_log,
                       const char *tmp_idx, bool sync, klevdb_error *e);
void delete_unmark(const char *dir, bool sync);
klevdb_err delete_recover(const char *dir, klevdb_error *e);
/* A delete of several segments (batch.c): its ranges are written before
** the first segment changes (ranges_mark) and removed after the last;
** ranges_pending gives those of one a crash interrupted (KLEVDB_ENOTFOUND:
** none), for open to finish. */
klevdb_err ranges_mark(const char *dir, const klevdb_range *r, size_t n, bool sync,
                       klevdb_error *e);
void ranges_unmark(const char *dir, bool sync);
klevdb_err ranges_pending(const char *dir, klevdb_range **out, size_t *nout, klevdb_error *e);

/* ---- the store's lock (dirlock.c) ---- */

/* True while a writer (Go or C, any process) holds the lock of the store
** in dir: its files may be mid-rewrite. */
bool writer_active(const char *dir);

/* ---- one segment's check, recover and migrate (repair.c) ---- */

/* The log and index paths of a segment (4096 bytes each); a directory
** name too long for them is refused (KLEVDB_EINVAL) rather than cut. */
klevdb_err seg_paths(const char *dir, int64_t base, char *lpath, char *ipath,
                     klevdb_error *e);
/* Check and Recover of one segment (docs/files.md, maintenance). */
klevdb_err seg_check(const char *dir, int64_t base, int params, bool live, klevdb_error *e);
klevdb_err seg_recover(const char *dir, int64_t base, int params, bool sync,
                       klevdb_error *e);
/* Migrate of one segment to format ver (differences D14); index_ver for a
** rebuilt index. */
klevdb_err seg_migrate(const char *dir, int64_t base, int params, int ver,
                       bool sync, klevdb_error *e);

/* ---- directory maintenance (dirops.c) ---- */

/* Go's backup copy rule: skip when size and mtime match. */
klevdb_err file_copy(const char *src, const char *dst, klevdb_error *e);
/* Makes dst ready for a backup of the store in src and locks it as a
** writer would (*lockfd; close it when the copy is done), so that no writer
** can start there meanwhile. Refuses, leaving dst as it was: dst inside src
** (or src itself), a dst that is not an empty directory (a .lock alone is
** fine), and a dst another writer holds (KLEVDB_ELOCKED). */
klevdb_err backup_dest_lock(const char *src, const char *dst, int *lockfd, klevdb_error *e);

#endif /* KDB_H */
