/*
** kvt.h - declarations shared by the files of the klevdb SQLite extension:
** the virtual table, its arguments and column codecs, the open
** transaction's pending writes, and the one mapping of core errors to
** SQLite result codes.
*/
#ifndef KVT_H
#define KVT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3ext.h>

#include "klevdb.h"

#ifndef SQLITE_CORE
SQLITE_EXTENSION_INIT3
#endif

/* The oldest SQLite the module loads into: 3.31.0 brought
** SQLITE_VTAB_DIRECTONLY, which keeps a schema's triggers and views away
** from a table that writes files. Calls newer than that go through these
** checks of the host's version, as a loaded module that calls past the end
** of an older host's API table jumps anywhere; without them the table
** gives the same rows and SQLite does more of the filtering. */
#define KVT_SQLITE_MIN 3031000
#define KVT_SQLITE_MIN_TEXT "3.31.0"
/* sqlite3_vtab_in*, sqlite3_vtab_rhs_value, LIMIT/OFFSET constraints */
#define KVT_HAS_VTAB_IN() (sqlite3_libversion_number() >= 3038000)
/* sqlite3_total_changes64 */
#define KVT_HAS_CHANGES64() (sqlite3_libversion_number() >= 3037000)
/* SQLite refuses a trigger's INSERT or DELETE on a DIRECTONLY table
** (before, only reads were refused: see kvt_begin) */
#define KVT_HAS_TRIGGER_GUARD() (sqlite3_libversion_number() >= 3040000)

/* Columns of a klevdb table, in declaration order. */
enum { KVT_OFFSET = 0, KVT_TIME = 1, KVT_KEY = 2, KVT_VALUE = 3,
       KVT_WAIT = 4,   /* hidden: "wait = ms" makes a scan block for news */
       KVT_CONSUMER = 5, /* hidden: "consumer = 'name'" reads from its position */
       KVT_NCOL = 6 };

/* How a key or value column maps between SQL values and stored bytes. */
typedef enum kvt_codec {
  KVT_BLOB,       /* bytes as they are; reads back as BLOB */
  KVT_TEXT,       /* bytes as they are; reads back as TEXT */
  KVT_INTEGER,    /* Go's zig-zag varint of an INTEGER */
  KVT_JSON,       /* JSON text, validated on write */
  KVT_STRING,     /* Go's StringCodec: TEXT, absent reads back as '' */
  KVT_STRINGOPT   /* Go's StringOptCodec: a JSON string on disk, TEXT in SQL */
} kvt_codec;

/* ---- args.c ---- */

/* Parsed CREATE VIRTUAL TABLE arguments. */
typedef struct kvt_args {
  char *dir;                /* resolved directory (sqlite3_malloc'ed) */
  klevdb_options opts;
  kvt_codec key, value;
  int indexes_given;        /* bit 0: key_index=, bit 1: time_index= given */
  /* triggers=1: the schema asks that triggers and views may use the table;
  ** granted only for a store the connection allowed (kvt_conn). */
  bool triggers;
  /* Retention declared on the table (0: no limit), applied by each commit
  ** that writes it (retention.c); keep_unconsumed=1 spares what the
  ** table's consumers have not read. */
  int64_t max_age;          /* microseconds */
  int64_t max_bytes, max_count;
  bool keep_unconsumed;
} kvt_args;

/* Parses argv[3..argc) of xCreate/xConnect. On error returns SQLITE_ERROR
** with *err set (sqlite3_malloc'ed, "klevdb: ..."). */
int kvt_args_parse(sqlite3 *db, const char *schema, const char *table, int argc,
                   const char *const *argv, kvt_args *out, char **err);
void kvt_args_free(kvt_args *a);

/* Resolves a directory given in SQL: relative paths are relative to the
** folder of the database file of schema (the current directory for an
** in-memory or temporary database). Returns a sqlite3_malloc'ed path. */
char *kvt_resolve_dir(sqlite3 *db, const char *schema, const char *dir);

const char *kvt_codec_name(kvt_codec c);

/* ---- codec.c ---- */

/* A growable byte buffer for encoded keys and values. Its memory and the
** pending rows' come from malloc: SQLite's allocator stops at 2 GB, and a
** transaction may hold more than that. */
typedef struct kvt_buf {
  uint8_t *p;
  size_t len, cap;
  size_t ready;   /* bytes from p faulted in ahead (big buffers) */
} kvt_buf;
void kvt_buf_free(kvt_buf *b);

/* The SQL type a codec reads back (BLOB, TEXT or INTEGER): the declared
** type of its column. */
const char *kvt_codec_type(kvt_codec c);
/* Encodes SQL value v with codec c, appending to out (NULL appends
** nothing: absent), after the conversion SQLite applies for a column of
** kvt_codec_type(c); v itself is not changed. Returns SQLITE_OK, or an
** error code with *err ("klevdb: ...", sqlite3_malloc'ed) for a value the
** codec would not give back as it is; what names the column. */
int kvt_encode(kvt_codec c, sqlite3_value *v, const char *what, kvt_buf *out,
               char **err);
/* Sets the SQL result of a stored key or value (absent: NULL, or '' for
** KVT_STRING). */
void kvt_result(sqlite3_context *ctx, kvt_codec c, const uint8_t *p, size_t n);

/* Parses a time given in SQL: INTEGER microseconds, or ISO-8601 text
** ("2023-01-01T00:00:00Z", fractions and +hh:mm allowed). */
int kvt_parse_time(sqlite3_value *v, int64_t *out, char **err);

/* ---- errors (errors.c) ---- */

/* The one mapping of core error classes to SQLite result codes. */
int kvt_rc(klevdb_err e);

/* ---- the table (vtab.c, vtab_write.c) ---- */

typedef struct kvt_vtab kvt_vtab;

/* Per connection: the module's client data, also given to the SQL
** functions so that klevdb_stat('events') finds its table. */
typedef struct kvt_conn {
  sqlite3 *db;
  kvt_vtab *tables;         /* connected klevdb tables of this connection */
  /* Stores the application let triggers and views write, by
  ** klevdb_allow_triggers(dir): the schema of a database file cannot
  ** grant this itself. Resolved paths, compared by device and inode. */
  char **trigger_dirs;
  int ntrigger_dirs;
} kvt_conn;

/* Frees c and what it holds (the module's destructor). */
void kvt_conn_free(void *c);

/* True if the application allowed triggers on the store in dir. */
bool kvt_triggers_allowed(const kvt_conn *c, const char *dir);

/* A message waiting for commit. */
typedef struct kvt_row {
  int64_t time;
  size_t koff;            /* in kvt_pending.arena: the key, then the value */
  uint32_t klen, vlen;    /* each at most KLEVDB_MAX_PAYLOAD */
} kvt_row;

/* The writes of the open transaction. Shared by the instances of one
** table in a connection: after a failed schema change SQLite connects a
** new instance while the old one still holds the transaction. */
typedef struct kvt_pending {
  int refs;
  klevdb *owner;            /* the handle holding klevdb_writer_lock */
  bool published;           /* xSync ran (each instance gets one) */
  kvt_row *rows;
  size_t n, cap;
  kvt_buf arena;
  klevdb_range *dels;       /* deleted offsets, as ranges, in call order */
  size_t ndels, capdels;
  bool dels_sorted;         /* ranges ascending and apart: binary search */
  struct { size_t n, ndels, alen; int64_t bytes; } *marks;   /* savepoints */
  int nmarks, capmarks;     /* marks[i]: the state when savepoint i began */
  int64_t base;             /* offset of rows[0] */
  bool locked;              /* holds klevdb_writer_lock */
  /* A transaction of many segments' worth is written while it runs
  ** (klevdb_stage); rows[0..staged) have been handed over. */
  int64_t bytes;            /* klevdb_size of the rows */
  int64_t stage_at;         /* bytes past which rows are staged */
  klevdb_stage *stage;
  size_t staged;
  bool no_stage;            /* staging failed once: publish at commit */
  /* The commit with the database's (kvt_sync): a batch prepared in the
  ** store, committed in xCommit, aborted in xRollback. */
  klevdb_prepared *prep;
  bool autocommit;          /* xBegin came in an autocommit statement */
  int64_t changes0;         /* sqlite3_total_changes64 at xBegin */
  /* Retention an xSync of this transaction recorded in the shadow table:
  ** a COMMIT that failed with BUSY keeps it, and the next xSync records
  ** only the difference. */
  int64_t ret_msgs, ret_segs;
} kvt_pending;

struct kvt_vtab {
  sqlite3_vtab base;
  kvt_conn *conn;
  char *schema;             /* database of the table: main, temp, an attached one */
  char *name;               /* table name */
  klevdb *kdb;
  kvt_args args;
  kvt_pending *tx;
  int64_t est_rows;         /* messages, for the planner's cost estimates */
  /* Opened read-only: the table has not written yet (or another process
  ** writes); the first write opens the store for writing. */
  bool follower;
  bool trusted;             /* triggers and views may use it (triggers=1, allowed) */
  bool resolved;            /* looked for a batch left in doubt (kvt_resolve) */
  sqlite3_stmt *pos_stmt;   /* a consumer's position (consumers.c), kept */
  sqlite3_stmt *put_stmt;   /* ... and its write, kept */
  sqlite3_stmt *temp_stmt;  /* does temp hold a table of a name (functions.c) */
  kvt_vtab *next;
};

/* Finds the connected klevdb table schema.name (case-insensitive), NULL
** if there is none. */
kvt_vtab *kvt_find(kvt_conn *c, const char *schema, const char *name);

/* Sets the table's error message (printf-style, "klevdb: " is added) and
** returns rc. */
int kvt_error(kvt_vtab *vt, int rc, const char *fmt, ...);

/* Pending row i as a message (key and value point into the arena). */
klevdb_msg kvt_pending_msg(const kvt_pending *tx, size_t i);

/* True if offset was deleted in the open transaction. */
bool kvt_pending_deleted(const kvt_vtab *vt, int64_t offset);

/* vtab.c: the reading half of the module (its methods; the method table
** is in klevdb_ext.c). */
int kvt_create(sqlite3 *db, void *aux, int argc, const char *const *argv, sqlite3_vtab **out,
               char **err);
int kvt_connect(sqlite3 *db, void *aux, int argc, const char *const *argv, sqlite3_vtab **out,
                char **err);
int kvt_disconnect(sqlite3_vtab *vtab);
int kvt_destroy(sqlite3_vtab *vtab);
int kvt_shadow_name(const char *suffix);
int kvt_best_index(sqlite3_vtab *vtab, sqlite3_index_info *ix);
int kvt_open(sqlite3_vtab *vtab, sqlite3_vtab_cursor **out);
int kvt_close(sqlite3_vtab_cursor *cur);
int kvt_filter(sqlite3_vtab_cursor *cur, int plan, const char *idx, int argc,
               sqlite3_value **argv);
int kvt_next(sqlite3_vtab_cursor *cur);
int kvt_eof(sqlite3_vtab_cursor *cur);
int kvt_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int col);
int kvt_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *rowid);
int kvt_rename(sqlite3_vtab *vtab, const char *name);

/* vtab_write.c: the writing half of the module. */
int kvt_update(sqlite3_vtab *vtab, int argc, sqlite3_value **argv, sqlite3_int64 *rowid);
int kvt_begin(sqlite3_vtab *vtab);
int kvt_sync(sqlite3_vtab *vtab);
int kvt_commit(sqlite3_vtab *vtab);
int kvt_rollback(sqlite3_vtab *vtab);
int kvt_savepoint(sqlite3_vtab *vtab, int n);
int kvt_release(sqlite3_vtab *vtab, int n);
int kvt_rollback_to(sqlite3_vtab *vtab, int n);
/* A follower table (it has not written yet, or another process writes)
** opens the store for writing; SQLITE_BUSY while another process writes. */
int kvt_become_writer(kvt_vtab *vt);
/* Drops the pending writes and the writer reservation. */
void kvt_pending_clear(kvt_vtab *vt);
/* The table's shadow table, schema.<name>_klevdb: one row (id 1) naming
** the transaction whose batch was last prepared, written in the database
** transaction itself. Creates it (xCreate, or a table made before it). */
int kvt_shadow_create(kvt_vtab *vt);
/* Brings the store into agreement with the database: a batch left in
** doubt by a crash (or a commit that failed) is committed if its
** transaction's row is in the shadow table, aborted if not. Runs at the
** first use of the table and when it begins to write; does nothing while
** another connection holds the store (the batch may be its own). */
int kvt_resolve(kvt_vtab *vt);

/* ---- consumers.c: named consumers and their positions ---- */

/* The shadow table <table>_consumers(name, position, committed_at), made
** by xCreate and by the first write of a consumer of an older table. */
int kvt_consumers_create(kvt_vtab *vt);
/* The position of consumer name (0, the start, if it never committed).
** Errors are the table's (kvt_error). */
int kvt_consumer_position(kvt_vtab *vt, const char *name, int64_t *pos);
/* The smallest position of the table's consumers; *any false if none. */
int kvt_consumers_min(kvt_vtab *vt, int64_t *min, bool *any);
/* ,"consumers":[...] and ,"retention":{...} for klevdb_stat (NULL: out
** of memory, or *rc an error). */
char *kvt_stat_extra(kvt_vtab *vt, int *rc);
/* retention.c's part of it: ,"retention":{...} when the table declares any. */
char *kvt_retention_json(kvt_vtab *vt, int *rc);
/* Finalizes what the table keeps (disconnect). */
void kvt_consumers_close(kvt_vtab *vt);

/* ---- retention.c: retention declared on the table ---- */

/* At xSync of a transaction that writes the table: the whole sealed
** segments past the table's limits, as ranges to delete with the batch
** (sqlite3_free *out), recorded in the shadow table in the transaction. */
int kvt_retention(kvt_vtab *vt, klevdb_range **out, size_t *n);
/* Maintenance under keep_unconsumed: deletes what finder `what` finds
** below the consumers' smallest position. *handled false when there is
** nothing to keep (no consumers, or keep_unconsumed=0). */
int kvt_keep_delete(kvt_vtab *vt, klevdb_find what, int64_t arg, klevdb_deleted *d,
                    bool *handled);

/* ---- functions.c ---- */

/* The klevdb table named by v ("name" or "schema.name"), or NULL with
** *err ("klevdb: <fn>: ...", sqlite3_malloc'ed) and *rc set. */
kvt_vtab *kvt_table_named(sqlite3 *db, kvt_conn *c, const char *fn, sqlite3_value *v, int *rc,
                          char **err);

/* ---- registration ---- */

int kvt_register_functions(sqlite3 *db, kvt_conn *c);  /* functions.c */
int kvt_register_scan(sqlite3 *db);                    /* scan.c */
int kvt_register_consumers(sqlite3 *db, kvt_conn *c);  /* consumers.c */

#endif
