/*
** klevdb.h - the public API of libklevdb, a local message store that keeps
** one Kafka-style partition in a directory and reads and writes the same
** files as the Go library klevdb (github.com/klev-dev/klevdb).
**
** Conventions: every call returns a klevdb_err (KLEVDB_OK = 0); results go
** through out-parameters. Calls on a handle leave a message readable with
** klevdb_errmsg(); directory-level calls take a klevdb_error* (may be NULL).
**
** Errors. Each call's comment lists the codes it returns and when. Calls
** on a handle return KLEVDB_EINVAL for a NULL handle. "File errors"
** below means KLEVDB_EIO (a system call failed), KLEVDB_ECORRUPT_LOG and
** KLEVDB_ECORRUPT_INDEX (a file does not parse, or a log and its index
** disagree) and KLEVDB_ENOMEM. A read-only handle tries a read again, a
** few times, when its file errors came from another process's writer
** moving files under it; what is left is reported.
**
** Caveats.
**
** Threads. A handle is used by one thread at a time; klevdb_interrupt is
** the one call for another thread (klevdb_close is not: interrupt a
** blocked reader and let it return before closing its handle). Open one
** handle per thread: opens of a
** directory in one process share one store (its segment list, mappings,
** key table, lock and head writer), so a second handle is cheap and takes
** no second lock. A read-only open shares the read-write store of the
** directory when there is one. Each handle has its own error message,
** interrupt and writer reservation (klevdb_writer_lock). Writes of all the
** handles of a store run one at a time; while a handle holds the writer
** reservation, publish and delete on the others wait, without a timeout.
** From its first rollover a read-write store runs a thread of its own
** (it makes the next head's files ahead), and a stage another while it
** lives; progress callbacks run on the calling thread. At most 64 stores
** are open in a process.
**
** fork(2). In the child, a handle opened before the fork is the parent's
** (its writer, threads and locks): every call on it fails with
** KLEVDB_ECLOSED, and klevdb_close frees the handle alone, leaving the
** store to the parent. A klevdb_open in the child opens the store anew
** (a read-write open meets the parent's lock: KLEVDB_ELOCKED). The child
** shares the parent's open lock file: while it lives, the store stays
** locked, even once the parent closed it, unless the child execs (every
** descriptor is close-on-exec).
**
** Mapped results. A read's messages point into a mapping of the segment's
** log, which the batch pins: key and value stay valid until the next read
** into that batch or klevdb_batch_free(), whatever happens meanwhile: a
** delete, trim or compaction rewriting or removing the segment (by any
** handle, or by a writer of another process), klevdb_gc, or klevdb_close
** of the handle and the store. libklevdb never changes a file in place
** under records it served (rewrites are new files renamed into place; only
** room past the head's last record is cut), so a pinned mapping keeps the
** old bytes, and a removed file's disk space until it is unpinned. A
** program that truncates a store's file in place would make such a read
** fault (SIGBUS).
**
** Signals and blocking. klevdb_consume_blocking sleeps on a condition
** variable: a signal does not end the wait (no EINTR); a publish, the
** timeout or klevdb_interrupt do. klevdb_interrupt takes a
** mutex, so a signal handler must not call it: set a flag there and use a
** finite timeout, or interrupt from another thread. A read-only handle
** learns of another process's publishes by looking at the files, every
** 5 ms while it waits. The library installs no signal handler and retries
** reads and writes that a signal cut short.
**
** File descriptors. A read-write store holds two (dir/.lock and the head's
** log), a read-only store one (the log it follows); sealed segments are
** mapped and their descriptors closed. Calls open a few more while they
** run. Every segment read is two mappings (log and index): a store keeps
** about 1024 sealed segments mapped, unmapping the least recently used
** past that (klevdb_gc unmaps idle ones sooner), plus what batches pin.
*/
#ifndef KLEVDB_H
#define KLEVDB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the calls libklevdb exports. The library is compiled with hidden
** visibility, so that its internal functions are not exported and cannot
** clash with a program's own names. */
#ifndef KLEVDB_API
#if defined(__GNUC__) && __GNUC__ >= 4
#define KLEVDB_API __attribute__((visibility("default")))
#else
#define KLEVDB_API
#endif
#endif

/* The version of this header (core/meson.build checks it against the
** project's). KLEVDB_VERSION_NUMBER is MAJOR * 1000000 + MINOR * 1000 +
** PATCH, as SQLITE_VERSION_NUMBER. klevdb_version() and
** klevdb_version_number() give the library's own, which differs when a
** program runs with another libklevdb than the one it was built with. */
#define KLEVDB_VERSION_MAJOR 0
#define KLEVDB_VERSION_MINOR 1
#define KLEVDB_VERSION_PATCH 0
#define KLEVDB_VERSION_STRING "0.1.0"
#define KLEVDB_VERSION_NUMBER 1000
KLEVDB_API const char *klevdb_version(void);
KLEVDB_API int klevdb_version_number(void);

/* Special offsets (as in Go klevdb). */
#define KLEVDB_OFFSET_OLDEST  (-2)
#define KLEVDB_OFFSET_NEWEST  (-1)
#define KLEVDB_OFFSET_INVALID (-3)

/* "No time given": publish stamps the message with the current time. */
#define KLEVDB_TIME_UNSET INT64_MIN

/* Largest key + value of one message, as in Go klevdb. */
#define KLEVDB_MAX_PAYLOAD (64 * 1024 * 1024)

typedef enum klevdb_err {
  KLEVDB_OK = 0,
  KLEVDB_ENOTFOUND,        /* no such offset, key or time */
  KLEVDB_EINVALID_OFFSET,  /* offset outside what the log has */
  KLEVDB_ENOINDEX,         /* key or time operation without that index */
  KLEVDB_EREADONLY,        /* write on a read-only store */
  KLEVDB_ECORRUPT_LOG,     /* a .log file does not parse */
  KLEVDB_ECORRUPT_INDEX,   /* an .index file does not parse or disagrees */
  KLEVDB_ELOCKED,          /* another process writes this store, or the
                           ** writes are held (klevdb_writer_lock, a
                           ** prepared batch in doubt) */
  KLEVDB_ETOOBIG,          /* key + value over KLEVDB_MAX_PAYLOAD */
  KLEVDB_EIO,              /* a system call failed */
  KLEVDB_EINVAL,           /* bad argument */
  KLEVDB_ENOMEM,           /* out of memory */
  KLEVDB_ECLOSED,          /* a blocking read interrupted; a store left
                           ** without its head by an earlier failure */
  KLEVDB_ETIMEOUT          /* not returned by libklevdb (a blocking read's
                           ** timeout is an empty batch); kept for the ABI */
} klevdb_err;

/* What an error is about beyond its class, for the few errors a caller
** acts on (the class stays the one users see). */
typedef enum klevdb_reason {
  KLEVDB_REASON_NONE = 0,
  KLEVDB_REASON_KEY_INDEX,   /* the files were written with the other key_index */
  KLEVDB_REASON_TIME_INDEX   /* the files were written with the other time_index */
} klevdb_reason;

/* An error with its message, for calls that have no handle. */
typedef struct klevdb_error {
  klevdb_err code;
  char msg[256];           /* "klevdb: ..." */
  klevdb_reason reason;
} klevdb_error;

/* Name of an error class: "not_found", "invalid_offset", ...; "unknown"
** for a value that is none. */
KLEVDB_API const char *klevdb_errname(klevdb_err code);

/* ------------------------------------------------------------------ */
/* Options                                                             */

typedef enum klevdb_format {
  KLEVDB_VERSION_DEFAULT = 0,  /* V2 */
  KLEVDB_V1 = 1,
  KLEVDB_V2 = 2
} klevdb_format;

typedef struct klevdb_options {
  int create_dirs;       /* mkdir -p the directory (0700) */
  int readonly;          /* no writes; takes no lock; follows other writers */
  int key_index;         /* index messages by key (FNV-1a-64 of the key) */
  int time_index;        /* index messages by time */
  int auto_sync;         /* fsync the log after every publish (the head's
                         ** index is rebuilt from it; see preallocate) */
  int64_t rollover;      /* start a new segment past this many log bytes; <= 0: 1 MiB */
  int check;             /* check the last segment at open */
  int recover;           /* recover the last segment at open (read-write only) */
  klevdb_format new_segments_version; /* format of new segments (default V2) */
  int keep_rewrite_version;            /* deletes keep a segment's own format */
  int eager_migrate;                   /* migrate every segment at open */
  /* Publish copies records into log space allocated ahead, through a
  ** mapping, instead of one write(2) per batch: about 4x faster for small
  ** batches. The price is at a crash: the log is left with zeros past its
  ** last record, which our next open (or Go's Recover) cuts, and which Go
  ** refuses to open until then ("log corrupted"). Without it, the files as
  ** a crash leaves them are a store Go opens and appends to as it is. */
  int preallocate;
  /* Long operations (recover, migrate, backup, trims, compactions) report
  ** how far they are: done of total units (segments or offsets); may be
  ** NULL. Recover, migrate and backup count segments; trims and compactions
  ** count offsets, the scan being the first half and the delete the second.
  ** It runs on the calling thread, maybe with the store's locks held, so it
  ** must not call into the store. */
  void (*progress)(void *arg, int64_t done, int64_t total);
  void *progress_arg;
} klevdb_options;

/* ------------------------------------------------------------------ */
/* Messages                                                            */

/* A message. On publish, offset is ignored (assigned by the log) and time
** KLEVDB_TIME_UNSET means now. On read, key/value point into the store's
** memory (see klevdb_batch); a zero-length key or value is absent. */
typedef struct klevdb_msg {
  int64_t offset;
  int64_t time;            /* microseconds since the Unix epoch */
  const uint8_t *key;
  size_t key_len;
  const uint8_t *value;
  size_t value_len;
} klevdb_msg;

#define klevdb_msg_has_key(m)   ((m)->key_len > 0)
#define klevdb_msg_has_value(m) ((m)->value_len > 0)

/* The result of a read. Reads fill a caller-owned batch; the messages'
** key and value stay valid until the batch's next use or
** klevdb_batch_free() (see "Mapped results" above). A failed read leaves
** it empty, next_offset KLEVDB_OFFSET_INVALID. Initialise with
** KLEVDB_BATCH_INIT; klevdb_batch_free(NULL) is a no-op. */
typedef struct klevdb_batch {
  klevdb_msg *msgs;
  size_t len;
  size_t cap;
  int64_t next_offset;     /* where the next consume should start */
  void *pin;               /* internal: keeps the memory mapped */
} klevdb_batch;

#define KLEVDB_BATCH_INIT {0, 0, 0, 0, 0}
KLEVDB_API void klevdb_batch_free(klevdb_batch *b);

/* ------------------------------------------------------------------ */
/* Opening and closing                                                 */

typedef struct klevdb klevdb;

/* Opens the store in dir (opts NULL: all zero). A read-write open takes an
** exclusive flock(2) on dir/.lock; several opens of one directory in a
** process share the store. Read-write, it finishes what a crash
** interrupted (a batch, a delete) and cuts a torn tail off the head's log.
**   KLEVDB_EINVAL   out or dir NULL, dir empty or too long, an unknown
**                   new_segments_version; the store is open in this process
**                   with the other key_index or time_index; 64 stores open
**                   already; a *.log file whose name is not a segment's.
**   KLEVDB_ELOCKED  read-write: another process (Go or C) or klevdb_dir_lock
**                   holds the lock.
**   KLEVDB_EIO      dir missing (create_dirs off) or not a directory.
**   file errors     of the head, and of the last segment with check or
**                   recover (every segment with eager_migrate); for an index
**                   written with the other key_index or time_index,
**                   err->reason says which. */
KLEVDB_API klevdb_err klevdb_open(const char *dir, const klevdb_options *opts,
                                  klevdb **out, klevdb_error *err);

/* Closes the handle, giving up its writer reservation; the store closes
** with its last handle, sealing and fsyncing the head. No other thread may
** be in a call on the handle (see Threads). NULL is a no-op. Always
** KLEVDB_OK: what the close writes is not checked (klevdb_sync first to
** learn of a failure). */
KLEVDB_API klevdb_err klevdb_close(klevdb *db);

/* The message and code of the last failed call on this handle ("not an
** error" and KLEVDB_OK after a success). NULL: "klevdb: no handle" and
** KLEVDB_EINVAL. */
KLEVDB_API const char *klevdb_errmsg(const klevdb *db);
KLEVDB_API klevdb_err klevdb_errcode(const klevdb *db);

/* The options the store runs with (defaults applied). db not NULL. */
KLEVDB_API void klevdb_get_options(const klevdb *db, klevdb_options *out);

/* ------------------------------------------------------------------ */
/* Writing                                                             */

/* Appends msgs[0..n) as one batch; their offsets are next_offset + i.
** *next_out (may be NULL) receives the new next offset (on failure
** KLEVDB_OFFSET_INVALID). All or nothing: on any error nothing of the
** batch stays on disk. Waits while another handle holds klevdb_writer_lock.
**   KLEVDB_EINVAL    msgs NULL with n > 0; a length without bytes.
**   KLEVDB_ETOOBIG   a key + value over KLEVDB_MAX_PAYLOAD.
**   KLEVDB_EREADONLY a read-only handle or store.
**   KLEVDB_ELOCKED   a prepared batch is in doubt (klevdb_prepare).
**   KLEVDB_ECLOSED   an earlier failure left the store without a head:
**                    reopen it.
**   KLEVDB_EIO       a write, allocation or fsync failed (a full disk); the
**                    store's files were removed while it was open.
**   file errors      of the new head at a rollover. */
KLEVDB_API klevdb_err klevdb_publish(klevdb *db, const klevdb_msg *msgs,
                                     size_t n, int64_t *next_out);

/* The offset the next published message gets. KLEVDB_EINVAL: out NULL;
** read-only (which looks at the files first): file errors. */
KLEVDB_API klevdb_err klevdb_next_offset(klevdb *db, int64_t *out);

/* ------------------------------------------------------------------ */
/* Reading                                                             */

/* Up to max_count messages from offset on (or KLEVDB_OFFSET_OLDEST/NEWEST),
** from one segment, as Go's Consume. b->next_offset is where to go on; an
** empty batch at the next offset.
**   KLEVDB_EINVAL           b NULL, max_count 0.
**   KLEVDB_EINVALID_OFFSET  offset after the next offset.
**   file errors. */
KLEVDB_API klevdb_err klevdb_consume(klevdb *db, int64_t offset,
                                     size_t max_count, klevdb_batch *b);

/* klevdb_consume with flags:
**   KLEVDB_READ_BACKWARD  newest first: up to max_count messages at or
**                         before offset (KLEVDB_OFFSET_NEWEST: the newest),
**                         from one segment; b->next_offset is the offset to
**                         go on from (an empty batch: nothing older);
**   KLEVDB_READ_OFFSETS   offsets only, from the indexes: the log is not
**                         read (time KLEVDB_TIME_UNSET, no key or value).
** Errors as klevdb_consume's, and KLEVDB_EINVAL for an unknown flag; a
** backward read is never KLEVDB_EINVALID_OFFSET (before the oldest or a
** negative offset other than NEWEST: an empty batch). */
#define KLEVDB_READ_BACKWARD 1
#define KLEVDB_READ_OFFSETS 2
KLEVDB_API klevdb_err klevdb_read(klevdb *db, int64_t offset, size_t max_count,
                                  int flags, klevdb_batch *b);

/* The smallest offset such that every message before it is older than
** time_us (the next offset if all are). Exact even when stored times go
** backwards, so a scan for "time >= time_us" may start there.
** KLEVDB_EINVAL: offset_out NULL; KLEVDB_ENOINDEX: no time_index; file
** errors. */
KLEVDB_API klevdb_err klevdb_time_floor(klevdb *db, int64_t time_us,
                                        int64_t *offset_out);

/* Up to max_count messages with this key at or after offset, from the
** first segment that has any (an empty batch past the end).
** KLEVDB_ENOINDEX: no key_index; KLEVDB_EINVAL: b NULL, key NULL with
** key_len > 0, max_count 0; file errors. */
KLEVDB_API klevdb_err klevdb_consume_by_key(klevdb *db, const void *key,
                                            size_t key_len, int64_t offset,
                                            size_t max_count, klevdb_batch *b);

/* As klevdb_consume, but when there is nothing at or after offset yet,
** waits up to timeout_ms (< 0: forever) for a publish. Returns KLEVDB_OK
** with an empty batch on timeout; KLEVDB_ECLOSED when interrupted
** (klevdb_interrupt); else klevdb_consume's errors. */
KLEVDB_API klevdb_err klevdb_consume_blocking(klevdb *db, int64_t offset,
                                              size_t max_count,
                                              int64_t timeout_ms,
                                              klevdb_batch *b);

/* Wakes the klevdb_consume_blocking of this handle (from another thread);
** it returns KLEVDB_ECLOSED. With none waiting, the next one to find
** nothing returns KLEVDB_ECLOSED at once. Not for signal handlers. */
KLEVDB_API void klevdb_interrupt(klevdb *db);

/* One message by offset; b->msgs[0] on success.
**   KLEVDB_EINVALID_OFFSET  offset at or after the next offset; OLDEST or
**                           NEWEST of an empty store; a negative offset
**                           while the store starts at 0.
**   KLEVDB_ENOTFOUND        no message there (deleted, or before the oldest
**                           segment).
**   KLEVDB_EINVAL           b NULL.
**   file errors. */
KLEVDB_API klevdb_err klevdb_get(klevdb *db, int64_t offset, klevdb_batch *b);

/* The newest message with this key (an empty key is a valid key).
** KLEVDB_ENOTFOUND: none; KLEVDB_ENOINDEX: no key_index; KLEVDB_EINVAL: b
** NULL, key NULL with key_len > 0; file errors. */
KLEVDB_API klevdb_err klevdb_get_by_key(klevdb *db, const void *key,
                                        size_t key_len, klevdb_batch *b);
/* Its offset: klevdb_get_by_key's errors, and KLEVDB_EINVAL when
** offset_out is NULL (which gets KLEVDB_OFFSET_INVALID on failure). */
KLEVDB_API klevdb_err klevdb_offset_by_key(klevdb *db, const void *key,
                                           size_t key_len, int64_t *offset_out);

/* The first message whose indexed time is at or after time_us.
**   KLEVDB_ENOTFOUND        every message is older.
**   KLEVDB_EINVALID_OFFSET  no message at all.
**   KLEVDB_ENOINDEX         no time_index.
**   KLEVDB_EINVAL           b NULL.
**   file errors. */
KLEVDB_API klevdb_err klevdb_get_by_time(klevdb *db, int64_t time_us,
                                         klevdb_batch *b);
/* Its offset and time: klevdb_get_by_time's errors, and KLEVDB_EINVAL
** when offset_out is NULL; time_out may be. */
KLEVDB_API klevdb_err klevdb_offset_by_time(klevdb *db, int64_t time_us,
                                            int64_t *offset_out,
                                            int64_t *time_out);

/* Bytes one message costs on disk in the current format (record + item);
** 0 if db or m is NULL. */
KLEVDB_API int64_t klevdb_size(const klevdb *db, const klevdb_msg *m);

typedef struct klevdb_stat {
  int64_t segments;
  int64_t messages;
  int64_t size;            /* bytes of all logs and indexes (the head's
                           ** index counted as written when it is sealed) */
} klevdb_stat;

/* KLEVDB_EINVAL: out NULL; file errors. */
KLEVDB_API klevdb_err klevdb_stat_get(klevdb *db, klevdb_stat *out);

/* First and last message of the store (0 messages: both -1).
** klevdb_bounds_get: KLEVDB_EINVAL (out NULL); file errors. */
typedef struct klevdb_bounds {
  int64_t oldest_offset, newest_offset;
  int64_t oldest_time, newest_time;
  int64_t next_offset;
} klevdb_bounds;
KLEVDB_API klevdb_err klevdb_bounds_get(klevdb *db, klevdb_bounds *out);

/* One segment of the store (klevdb_segments_get): its offsets are at or
** after base and before the next segment's base. */
typedef struct klevdb_segment_info {
  int64_t base;
  int64_t messages;
  int64_t bytes;           /* log and index, as klevdb_stat counts them */
} klevdb_segment_info;
/* The segments, oldest first, the head last; free() *out. KLEVDB_EINVAL:
** out or n NULL; file errors. */
KLEVDB_API klevdb_err klevdb_segments_get(klevdb *db, klevdb_segment_info **out,
                                          size_t *n);

/* ------------------------------------------------------------------ */
/* Deleting and maintenance                                            */

typedef struct klevdb_deleted {
  int64_t count;           /* messages removed */
  int64_t size;            /* bytes, counted as Go does (record + item) */
} klevdb_deleted;

/* Go's Delete: removes the given offsets that live in the segment holding
** the smallest of them (one segment per call); offsets with no message are
** passed over. If deleted_offsets is not NULL it receives the removed
** offsets in log order (free() it). Waits while another handle holds
** klevdb_writer_lock; a batch in doubt does not stop it.
**   KLEVDB_EREADONLY        a read-only handle or store.
**   KLEVDB_EINVAL           offsets NULL with n > 0.
**   KLEVDB_EINVALID_OFFSET  a negative offset.
**   KLEVDB_ENOTFOUND        the smallest offset is before the oldest segment.
**   KLEVDB_ECLOSED          as for klevdb_publish.
**   file errors             of the segment read and rewritten. */
KLEVDB_API klevdb_err klevdb_delete(klevdb *db, const int64_t *offsets,
                                    size_t n, klevdb_deleted *out,
                                    int64_t **deleted_offsets);

/* A half-open range of offsets [from, to). */
typedef struct klevdb_range {
  int64_t from, to;
} klevdb_range;

/* Removes every message inside the ranges, in all segments. Segments that
** lose every message are unlinked without being read. All or nothing
** across a crash: the ranges are written to the store's folder before the
** first segment changes, and the next read-write open finishes a delete
** that a crash (or an I/O error after it began) interrupted; so does the
** next delete, whose error may then be that one's ("finish an interrupted
** delete"). Ranges are cut to [0, next offset). Waits as klevdb_delete.
** KLEVDB_EREADONLY, KLEVDB_ECLOSED as klevdb_delete; KLEVDB_EINVAL: ranges
** NULL with n > 0; file errors. */
KLEVDB_API klevdb_err klevdb_delete_ranges(klevdb *db,
                                           const klevdb_range *ranges, size_t n,
                                           klevdb_deleted *out);

/* Reserves the store's writes for this handle (a SQL transaction that
** hands out offsets before it publishes): publish and delete on other
** handles of the store wait until klevdb_writer_unlock. Waits up to
** timeout_ms (<= 0: not at all) for another holder; KLEVDB_ELOCKED when it
** is still held. Held already by this handle: KLEVDB_OK. KLEVDB_EREADONLY:
** a read-only handle or store. Unlock without holding it is a no-op. */
KLEVDB_API klevdb_err klevdb_writer_lock(klevdb *db, int64_t timeout_ms);
KLEVDB_API void klevdb_writer_unlock(klevdb *db);

/* Staged batches: a batch too large to hold back until its end (a SQL
** transaction inserting millions of rows) is written while it is being
** collected. Messages given to klevdb_stage_add are encoded at once (their
** memory may be reused after the call) and each full segment is written to
** temporary files by a background thread; klevdb_stage_commit publishes
** everything as one klevdb_publish would (all or nothing, across a crash
** too) and klevdb_stage_abort drops it. The handle must hold
** klevdb_writer_lock from klevdb_stage_begin until the stage ends, so the
** offsets (next offset + i) cannot change. Worth it from a few segments'
** worth of messages; a stage ends with commit or abort, which free it.
** Errors are the store handle's (klevdb_errmsg); a NULL stage is
** KLEVDB_EINVAL.
** klevdb_stage_begin: KLEVDB_EINVAL (out NULL, no klevdb_writer_lock held),
** KLEVDB_EREADONLY, KLEVDB_ELOCKED (a batch in doubt), KLEVDB_ECLOSED (as
** for klevdb_publish), KLEVDB_ENOMEM.
** klevdb_stage_add: klevdb_publish's KLEVDB_EINVAL and KLEVDB_ETOOBIG,
** KLEVDB_ENOMEM, and KLEVDB_EIO when the thread failed to write a segment
** (reported by a later add, or the commit; abort the stage). */
typedef struct klevdb_stage klevdb_stage;
KLEVDB_API klevdb_err klevdb_stage_begin(klevdb *db, klevdb_stage **out);
KLEVDB_API klevdb_err klevdb_stage_add(klevdb_stage *sg, const klevdb_msg *msgs,
                                       size_t n);
/* Messages added so far. */
KLEVDB_API size_t klevdb_stage_count(const klevdb_stage *sg);
/* Forgets every message after the first n (a rollback to a savepoint).
** KLEVDB_EIO, KLEVDB_ENOMEM, KLEVDB_ECORRUPT_LOG (a segment the thread
** wrote does not read back). */
KLEVDB_API klevdb_err klevdb_stage_truncate(klevdb_stage *sg, size_t n);
/* *next_out (may be NULL) receives the new next offset. On failure
** nothing of the batch is in the store; the error is the handle's:
** KLEVDB_EIO and KLEVDB_ENOMEM (writing the last segments), KLEVDB_ECLOSED
** (as for klevdb_publish), KLEVDB_EINVAL (the store moved on since
** klevdb_stage_begin: the writer lock was let go meanwhile), file errors
** of the new head. */
KLEVDB_API klevdb_err klevdb_stage_commit(klevdb_stage *sg, int64_t *next_out);
KLEVDB_API void klevdb_stage_abort(klevdb_stage *sg);

/* Prepared batches: the first phase of a commit that another system
** decides (a SQL transaction that publishes if and only if its database
** commits). klevdb_prepare makes the messages (offsets next offset + i,
** unset times stamped now) and the delete ranges durable in the store's
** directory, in a file no reader lists (.prepared: Go and C read *.log
** files only), and nothing of them visible. The handle must hold
** klevdb_writer_lock. txid (at most 4096 bytes) names the transaction, for
** the one who decides. Files are fsynced only with auto_sync; a failure
** (say a full disk) leaves no batch.
**
** Until it is committed or aborted, in this process or after a crash, the
** batch is "in doubt" and its offsets are claimed: klevdb_publish, stages
** and a second prepare refuse with KLEVDB_ELOCKED ("a SQL transaction is in
** doubt"); reads and deletes go on. A read-write open keeps the file (it
** is never taken for a crashed writer's temporary file).
**
** klevdb_prepared_commit publishes the messages as klevdb_publish of the
** same messages would (same files), applies the deletes and clears the
** file. It can be repeated: after a crash in the middle, the batch found
** again commits without publishing twice. If it fails (a full disk), the
** file stays and the batch stays in doubt: find it and commit it again
** later; it is never lost. Go klevdb cannot be kept from writing a store
** with a batch in doubt: if it took the batch's offsets meanwhile, the
** commit publishes the batch after them, and *base_out (may be NULL)
** says where the batch went; it is the prepared base otherwise.
** klevdb_prepared_abort drops it. klevdb_prepared_find gives the batch in
** doubt of a store (KLEVDB_ENOTFOUND if none, also for an image a crash
** in the middle of the prepare left unfinished: no one decided on it); a
** read-only handle may find it but not commit or abort it
** (KLEVDB_EREADONLY). The file stays from one batch to the next, written
** in place, and holds none once resolved. Commit and
** abort free the handle whatever they return; klevdb_prepared_close frees
** it leaving the batch in doubt. Errors are the store handle's; a NULL
** argument is KLEVDB_EINVAL.
** klevdb_prepare: KLEVDB_EINVAL (no klevdb_writer_lock held; txid NULL or
** too long; ranges NULL with nranges > 0; messages as klevdb_publish),
** KLEVDB_ETOOBIG, KLEVDB_EREADONLY, KLEVDB_ELOCKED (a batch in doubt
** already), KLEVDB_ECLOSED (as for klevdb_publish), KLEVDB_EIO,
** KLEVDB_ENOMEM.
** klevdb_prepared_find: KLEVDB_ENOTFOUND, KLEVDB_EIO, KLEVDB_ENOMEM.
** klevdb_prepared_commit: KLEVDB_EREADONLY, KLEVDB_ECORRUPT_LOG (a staged
** segment is damaged), and the errors of klevdb_publish and
** klevdb_delete_ranges (the batch stays in doubt).
** klevdb_prepared_abort: KLEVDB_EREADONLY, KLEVDB_EIO. */
typedef struct klevdb_prepared klevdb_prepared;
typedef struct klevdb_prepared_info {
  const char *txid;        /* valid while the prepared handle is */
  int64_t base;            /* offset of the first message */
  size_t count;            /* messages */
  size_t nranges;          /* delete ranges */
} klevdb_prepared_info;
KLEVDB_API klevdb_err klevdb_prepare(klevdb *db, const klevdb_msg *msgs,
                                     size_t n, const klevdb_range *ranges,
                                     size_t nranges, const char *txid,
                                     klevdb_prepared **out);
/* Prepares what a stage collected (and frees the stage, as commit and
** abort do), instead of klevdb_stage_commit: the same promise as
** klevdb_prepare, but the messages stay in the segment files the stage
** wrote and the commit only renames them into place. The errors of
** klevdb_stage_commit's writing and of klevdb_prepare. */
KLEVDB_API klevdb_err klevdb_stage_prepare(klevdb_stage *sg,
                                           const klevdb_range *ranges,
                                           size_t nranges, const char *txid,
                                           klevdb_prepared **out);
KLEVDB_API klevdb_err klevdb_prepared_find(klevdb *db, klevdb_prepared **out);
KLEVDB_API void klevdb_prepared_get_info(const klevdb_prepared *p,
                                         klevdb_prepared_info *out);
KLEVDB_API klevdb_err klevdb_prepared_commit(klevdb_prepared *p,
                                             int64_t *base_out,
                                             int64_t *next_out);
KLEVDB_API klevdb_err klevdb_prepared_abort(klevdb_prepared *p);
KLEVDB_API void klevdb_prepared_close(klevdb_prepared *p);

/* fsyncs the head, cutting the room allocated ahead off its log; *next_out
** (may be NULL) gets the next offset. KLEVDB_EIO: the fsync failed, or the
** store's files were removed while it was open. Read-only: looks at the
** files (file errors). */
KLEVDB_API klevdb_err klevdb_sync(klevdb *db, int64_t *next_out);

/* Unmaps sealed segments not read for unused_for_us microseconds (pinned
** batches keep theirs). Never fails. */
KLEVDB_API klevdb_err klevdb_gc(klevdb *db, int64_t unused_for_us);

/* Copies every segment into dir, which must be missing or empty (a .lock
** alone is fine) and not inside the store; dir is locked as a writer locks
** a store while the copy is made (KLEVDB_ELOCKED if a writer has it). From
** a read-only handle, the copy's last segment is cut back to its complete
** records. Refusals leave dir as it was.
**   KLEVDB_EINVAL   dir NULL, empty, too long, the store itself or inside
**                   it, or not empty.
**   KLEVDB_ELOCKED  a writer holds dir.
**   KLEVDB_EIO      dir is not a directory; a copy failed.
**   file errors     (read-only) of the copy's last segment. */
KLEVDB_API klevdb_err klevdb_backup(klevdb *db, const char *dir);

/* ------------------------------------------------------------------ */
/* Retention (Go's finders, trims and compactions). Each deletes what it  */
/* finds across all segments (Go's ...Multi variants).                    */

/* Errors: KLEVDB_EINVAL (trim_by_count and trim_by_size: a negative
** argument), file errors of the scan, and klevdb_delete_ranges' errors
** when something is found: KLEVDB_EREADONLY only then. *out (may be
** NULL) gets what was deleted, on a failure too. None needs key_index or
** time_index. */

KLEVDB_API klevdb_err klevdb_trim_by_offset(klevdb *db, int64_t before,
                                            klevdb_deleted *out);
KLEVDB_API klevdb_err klevdb_trim_by_count(klevdb *db, int64_t keep,
                                           klevdb_deleted *out);
KLEVDB_API klevdb_err klevdb_trim_by_size(klevdb *db, int64_t max_size,
                                          klevdb_deleted *out);
KLEVDB_API klevdb_err klevdb_trim_by_age(klevdb *db, int64_t before_us,
                                         klevdb_deleted *out);
/* Keeps the newest message of each key among those at or before before_us. */
KLEVDB_API klevdb_err klevdb_compact_updates(klevdb *db, int64_t before_us,
                                             klevdb_deleted *out);
/* Drops tombstones (absent value) at or before before_us that are the
** oldest message of their key. */
KLEVDB_API klevdb_err klevdb_compact_deletes(klevdb *db, int64_t before_us,
                                             klevdb_deleted *out);

/* Go's finders: the offsets the matching trim/compact would remove, in
** order (free() *offsets). KLEVDB_EINVAL: offsets or n NULL, an unknown
** what, a negative count or size; file errors. */
typedef enum klevdb_find {
  KLEVDB_FIND_OFFSET, KLEVDB_FIND_COUNT, KLEVDB_FIND_SIZE, KLEVDB_FIND_AGE,
  KLEVDB_FIND_UPDATES, KLEVDB_FIND_DELETES
} klevdb_find;
KLEVDB_API klevdb_err klevdb_find_offsets(klevdb *db, klevdb_find what,
                                          int64_t arg, int64_t **offsets,
                                          size_t *n);

/* ------------------------------------------------------------------ */
/* Directory-level helpers (no lock taken; do not run them on a store   */
/* another process writes, except stat and check).                       */

/* Which indexes the store in dir was written with, from its newest V2
** index header; 1 and 1 when no file says (a new store, or V1 files, or
** dir cannot be read). */
KLEVDB_API void klevdb_dir_indexes(const char *dir, int *key_index,
                                   int *time_index);

/* Check, Recover, Stat and Migrate as Go's, for the segments in dir: check
** and recover look at the last segment only. A missing or empty dir is
** KLEVDB_OK. All: KLEVDB_EINVAL for dir NULL or too long, or a *.log name
** that is not a segment's; KLEVDB_EIO when dir cannot be listed or a log
** is missing; KLEVDB_ENOMEM.
** klevdb_dir_check: KLEVDB_ECORRUPT_LOG, KLEVDB_ECORRUPT_INDEX (err->reason
** for an index of the other key_index or time_index).
** klevdb_dir_recover: cuts the log after its last good record and rewrites
** or removes a wrong index; KLEVDB_ECORRUPT_LOG for a bad log header,
** beyond repair.
** klevdb_dir_stat: KLEVDB_EINVAL (out NULL), KLEVDB_EIO (an index is
** missing), KLEVDB_ECORRUPT_INDEX (an index header).
** klevdb_dir_migrate: KLEVDB_EINVAL (to neither KLEVDB_V1 nor KLEVDB_V2),
** KLEVDB_ECORRUPT_LOG (a record that does not parse: that segment is left
** as it was). */
KLEVDB_API klevdb_err klevdb_dir_check(const char *dir,
                                       const klevdb_options *opts,
                                       klevdb_error *err);
KLEVDB_API klevdb_err klevdb_dir_recover(const char *dir,
                                         const klevdb_options *opts,
                                         klevdb_error *err);
KLEVDB_API klevdb_err klevdb_dir_stat(const char *dir,
                                      const klevdb_options *opts,
                                      klevdb_stat *out, klevdb_error *err);
/* As klevdb_backup, for a store no one writes (the copy is taken as it is),
** with its errors. A missing src copies nothing: KLEVDB_OK. */
KLEVDB_API klevdb_err klevdb_dir_backup(const char *src, const char *dst,
                                        klevdb_error *err);
KLEVDB_API klevdb_err klevdb_dir_migrate(const char *dir,
                                         const klevdb_options *opts,
                                         klevdb_format to, klevdb_error *err);

/* The store's lock, flock(2) on dir/.lock as Go klevdb takes it, for work
** on a store's files without opening it (recover, migrate). Takes it as a
** writer does (exclusive, not blocking) and gives the descriptor to hold
** in *fd until klevdb_dir_unlock. A missing .lock is created with
** KLEVDB_LOCK_CREATE; without it, *fd is -1 (no writer ever opened the
** store: nothing to hold). KLEVDB_ELOCKED while another open file holds
** it, in this process too (a store open for writing). KLEVDB_EINVAL: fd
** NULL, dir NULL or empty; KLEVDB_EIO: .lock cannot be opened. */
#define KLEVDB_LOCK_CREATE 1
KLEVDB_API klevdb_err klevdb_dir_lock(const char *dir, int flags, int *fd, klevdb_error *err);
KLEVDB_API void klevdb_dir_unlock(int fd);
/* *active = 1 while a writer (Go or C, any process) holds the lock: its
** files may be changing. Takes nothing. KLEVDB_EINVAL: an argument NULL. */
KLEVDB_API klevdb_err klevdb_dir_writer_active(const char *dir, int *active);

/* The bases of the segments in dir, ascending (free() *bases): the files
** named "<20 digits>.log". Unlike an open, which fails on any other *.log
** name, other names are passed over. KLEVDB_EIO (errno kept) when dir
** cannot be listed or is NULL; KLEVDB_EINVAL: bases or n NULL;
** KLEVDB_ENOMEM. */
KLEVDB_API klevdb_err klevdb_dir_segments(const char *dir, int64_t **bases,
                                          size_t *n, klevdb_error *err);
/* The format of segment base's log, from its first bytes: KLEVDB_V2 for a
** V2 header, KLEVDB_V1 for anything else of 8 bytes or more, 0 for an
** empty log, -1 when it cannot be read or is shorter than a header. */
KLEVDB_API int klevdb_segment_format(const char *dir, int64_t base);

/* ------------------------------------------------------------------ */
/* Typed codecs (Go's typed logs). Encoders write into out (cap bytes)   */
/* and return the length needed (write nothing if it exceeds cap).       */

/* Zig-zag LEB128, at most 10 bytes. */
KLEVDB_API size_t klevdb_varint_encode(int64_t v, uint8_t out[10]);
/* Returns bytes read, or 0 (short buffer) or -1 (overflow). */
KLEVDB_API int klevdb_varint_decode(const uint8_t *in, size_t len, int64_t *v);

/* Go's json.Marshal of a string (HTML escaping on, invalid UTF-8 as
** \ufffd). Returns the length of the JSON text. */
KLEVDB_API size_t klevdb_json_string_encode(const uint8_t *s, size_t len,
                                            uint8_t *out, size_t cap);
/* Decodes one JSON string (or null -> ""), as Go's json.Unmarshal into a
** string: returns the decoded length, or -1 if in is not a JSON string. */
KLEVDB_API long klevdb_json_string_decode(const uint8_t *in, size_t len,
                                          uint8_t *out, size_t cap);
/* 1 if in is one valid JSON value (RFC 8259), else 0. */
KLEVDB_API int klevdb_json_valid(const uint8_t *in, size_t len);

/* FNV-1a-64, the key hash on disk. */
KLEVDB_API uint64_t klevdb_key_hash(const void *key, size_t len);

/* ------------------------------------------------------------------ */
/* Parsing what people type (the SQL extension and the tool share it).  */

/* A time, s[0..len): YYYY-MM-DD[(T|t| )HH:MM[:SS[(.|,)fraction]]]
** [Z|z|+HH:MM|-HH:MM], in UTC unless a zone says otherwise; fraction
** digits past the microsecond are dropped (at most 9). Returns 0 with
** *us, -1 if s is not such a time, -2 if a field is out of range (no
** such month, day, hour, minute, second or zone). */
KLEVDB_API int klevdb_parse_time(const char *s, size_t len, int64_t *us);
/* A size in bytes, s[0..len): digits, optional blanks, then an optional
** binary unit, any case: b, k/kb/kib (2^10), m/mb/mib, g/gb/gib,
** t/tb/tib ("64KB", "64 KB" = 65536). Returns 0 with *bytes, -1 if s is
** not a size (a number over INT64_MAX is none), -2 if its unit takes it
** over INT64_MAX. */
KLEVDB_API int klevdb_parse_size(const char *s, size_t len, int64_t *bytes);

#ifdef __cplusplus
}
#endif
#endif /* KLEVDB_H */
