/*
** vtab_write.c - the klevdb virtual table's writing half: INSERT hands out
** offsets and collects messages, DELETE collects offset ranges, and the
** transaction methods publish both if and only if the database commits.
**
** The database decides. xSync, which SQLite calls before it commits the
** database file, prepares the batch in the store (durable, seen by no
** reader) and writes its transaction id into the table's shadow table,
** inside the same database transaction; xCommit, after the database
** committed, makes the batch visible; xRollback (a commit hook's veto, a
** full disk, BUSY then ROLLBACK) drops it. A crash in between leaves the
** batch in doubt in the store: the next use of the table commits it if the
** shadow row committed, and drops it if not (kvt_resolve).
**
** An autocommit statement that writes nothing but this table, the common
** case, publishes in xSync as it comes, with no shadow row: the promise is
** about the table's writes together with others, and alone a COMMIT that
** fails after xSync leaves them. It is told by sqlite3_total_changes64
** (sqlite3_total_changes before SQLite 3.37, whose count is an int anyway):
** SQLite counts a statement's own rows only after its commit, and those of
** trigger programs when each ends, so an unchanged count between xBegin
** and xSync means no other table changed. In an explicit transaction xBegin
** comes with the table's first write, after whatever the transaction did
** before, so there the count cannot tell and the batch is always prepared.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fault.h"
#include "kvt.h"

/* How long a write waits for another connection's transaction (ms). */
#define WRITER_WAIT_MS 5000

static int grow(void **p, size_t *cap, size_t need, size_t size) {
  if (need <= *cap) return SQLITE_OK;
  size_t n = *cap ? *cap * 2 : 16;
  while (n < need) n *= 2;
  if (n > SIZE_MAX / size) return SQLITE_NOMEM;
  void *q = realloc(*p, n * size);
  if (!q) return SQLITE_NOMEM;
  *p = q;
  *cap = n;
  return SQLITE_OK;
}

void kvt_pending_clear(kvt_vtab *vt) {
  kvt_pending *tx = vt->tx;
  /* Still prepared here only if neither commit nor rollback came: it
  ** stays in doubt, for the next use to resolve. */
  klevdb_prepared_close(tx->prep);
  klevdb_stage_abort(tx->stage);
  free(tx->rows);
  free(tx->dels);
  sqlite3_free(tx->marks);
  kvt_buf_free(&tx->arena);
  if (tx->locked) klevdb_writer_unlock(tx->owner);
  int refs = tx->refs;
  memset(tx, 0, sizeof(*tx));
  tx->refs = refs;
}

klevdb_msg kvt_pending_msg(const kvt_pending *tx, size_t i) {
  const kvt_row *r = &tx->rows[i];
  const uint8_t *a = tx->arena.p;
  return (klevdb_msg){.offset = tx->base + (int64_t)i, .time = r->time,
                      .key = r->klen ? a + r->koff : NULL, .key_len = r->klen,
                      .value = r->vlen ? a + r->koff + r->klen : NULL, .value_len = r->vlen};
}

bool kvt_pending_deleted(const kvt_vtab *vt, int64_t offset) {
  const kvt_pending *tx = vt->tx;
  if (tx->ndels == 0) return false;
  if (tx->dels_sorted) {
    /* Deletes usually come in offset order: binary search the ranges. */
    size_t lo = 0, hi = tx->ndels;
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      if (tx->dels[mid].from <= offset) lo = mid + 1;
      else hi = mid;
    }
    return lo > 0 && offset < tx->dels[lo - 1].to;
  }
  for (size_t i = tx->ndels; i-- > 0;)
    if (offset >= tx->dels[i].from && offset < tx->dels[i].to) return true;
  return false;
}

/* The first write of a transaction reserves the store, so that the
** offsets handed out now are the ones the messages get at commit. */
/* A table that follows another process's writes becomes the writer once
** that process has let go of the store. */
int kvt_become_writer(kvt_vtab *vt) {
  klevdb *w;
  klevdb_error ke;
  klevdb_err e = klevdb_open(vt->args.dir, &vt->args.opts, &w, &ke);
  if (e == KLEVDB_ELOCKED)
    return kvt_error(vt, SQLITE_BUSY, "table %s: another process is writing the store in %s; "
                     "this connection can read it but not write to it", vt->name, vt->args.dir);
  if (e != KLEVDB_OK) return kvt_error(vt, kvt_rc(e), "%s", ke.msg);
  klevdb_close(vt->kdb);
  vt->kdb = w;
  vt->follower = false;
  return SQLITE_OK;
}

/* ---- the shadow table and batches left in doubt ---- */

static int exec_shadow(kvt_vtab *vt, const char *fmt) {
  char *sql = sqlite3_mprintf(fmt, vt->schema, vt->name);
  if (!sql) return SQLITE_NOMEM;
  char *err = NULL;
  int rc = sqlite3_exec(vt->conn->db, sql, NULL, NULL, &err);
  sqlite3_free(sql);
  if (rc != SQLITE_OK) kvt_error(vt, rc, "table %s: %s", vt->name, err ? err : sqlite3_errstr(rc));
  sqlite3_free(err);
  return rc;
}

int kvt_shadow_create(kvt_vtab *vt) {
  return exec_shadow(vt, "CREATE TABLE IF NOT EXISTS \"%w\".\"%w_klevdb\"(id INTEGER PRIMARY KEY, "
                         "txid TEXT NOT NULL, base INTEGER NOT NULL, count INTEGER NOT NULL)");
}

/* Records in the database transaction that txid's batch is prepared. */
static int shadow_write(kvt_vtab *vt, const char *txid, int64_t base, int64_t count) {
  char *sql = sqlite3_mprintf("INSERT OR REPLACE INTO \"%w\".\"%w_klevdb\"(id, txid, base, count) "
                              "VALUES(1, ?1, ?2, ?3)", vt->schema, vt->name);
  if (!sql) return SQLITE_NOMEM;
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(vt->conn->db, sql, -1, &st, NULL);
  if (rc != SQLITE_OK && kvt_shadow_create(vt) == SQLITE_OK)   /* a table made before it */
    rc = sqlite3_prepare_v2(vt->conn->db, sql, -1, &st, NULL);
  sqlite3_free(sql);
  if (rc == SQLITE_OK) {
    /* The row is ours, not the caller's: last_insert_rowid() stays the
    ** last offset the caller inserted. */
    sqlite3_int64 last = sqlite3_last_insert_rowid(vt->conn->db);
    sqlite3_bind_text(st, 1, txid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, base);
    sqlite3_bind_int64(st, 3, count);
    rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(vt->conn->db);
    sqlite3_set_last_insert_rowid(vt->conn->db, last);
  }
  if (rc != SQLITE_OK)
    kvt_error(vt, rc, "table %s: cannot record the transaction: %s", vt->name,
              sqlite3_errmsg(vt->conn->db));
  sqlite3_finalize(st);
  return rc;
}

/* Whether the shadow row names txid (no shadow table: it does not). */
static int shadow_has(kvt_vtab *vt, const char *txid, bool *yes) {
  *yes = false;
  char *sql = sqlite3_mprintf("SELECT txid FROM \"%w\".\"%w_klevdb\" WHERE id = 1", vt->schema,
                              vt->name);
  if (!sql) return SQLITE_NOMEM;
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(vt->conn->db, sql, -1, &st, NULL);
  sqlite3_free(sql);
  if (rc != SQLITE_OK) {
    /* Only a missing table means "not committed"; anything else is not
    ** an answer. */
    bool missing = strstr(sqlite3_errmsg(vt->conn->db), "no such table") != NULL;
    if (!missing) kvt_error(vt, rc, "table %s: %s", vt->name, sqlite3_errmsg(vt->conn->db));
    return missing ? SQLITE_OK : rc;
  }
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    const char *t = (const char *)sqlite3_column_text(st, 0);
    *yes = t && strcmp(t, txid) == 0;
    rc = SQLITE_OK;
  } else if (rc == SQLITE_DONE) {
    rc = SQLITE_OK;
  } else {
    kvt_error(vt, rc, "table %s: %s", vt->name, sqlite3_errmsg(vt->conn->db));
  }
  sqlite3_finalize(st);
  return rc;
}

/* A transaction id no other transaction of any process has, which also
** names the table that decides it: its database file, a unit separator,
** the table's name, another, then the unique part. Several database files
** may write one store, and only the one that prepared a batch knows its
** fate. */
static char *new_txid(kvt_vtab *vt) {
  unsigned char r[8];
  sqlite3_randomness(sizeof(r), r);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  const char *file = sqlite3_db_filename(vt->conn->db, vt->schema);
  return sqlite3_mprintf("%s\x1f%s\x1f%lld.%09ld-%02x%02x%02x%02x%02x%02x%02x%02x",
                         file ? file : "", vt->name, (long long)ts.tv_sec, ts.tv_nsec, r[0], r[1],
                         r[2], r[3], r[4], r[5], r[6], r[7]);
}

/* Who decides txid: 1 this table, 0 another table, -1 no one (a database
** in memory or a temporary one, which a crash took with it: the batch can
** only be dropped). */
static int txid_owner(kvt_vtab *vt, const char *txid) {
  const char *a = strchr(txid, '\x1f'), *b = a ? strchr(a + 1, '\x1f') : NULL;
  if (!b) return 0;
  if (a == txid) return -1;
  const char *file = sqlite3_db_filename(vt->conn->db, vt->schema);
  size_t fl = (size_t)(a - txid), nl = (size_t)(b - a - 1);
  return file && strlen(file) == fl && memcmp(file, txid, fl) == 0 && strlen(vt->name) == nl &&
         sqlite3_strnicmp(vt->name, a + 1, (int)nl) == 0;
}

static int resolve(kvt_vtab *vt, bool locked) {
  kvt_pending *tx = vt->tx;
  klevdb *h = vt->kdb;
  klevdb_prepared *p = NULL;
  klevdb_err e = klevdb_prepared_find(h, &p);
  if (e == KLEVDB_ENOTFOUND) {
    vt->resolved = true;
    return SQLITE_OK;
  }
  if (e != KLEVDB_OK) return kvt_error(vt, kvt_rc(e), "%s", klevdb_errmsg(h));
  if (!locked) {
    klevdb_prepared_close(p);
    p = NULL;
    /* A batch of this transaction, or one only a writer may settle. */
    if (tx->prep || tx->locked || vt->args.opts.readonly) return SQLITE_OK;
    if (vt->follower) {
      int rc = kvt_become_writer(vt);
      if (rc == SQLITE_BUSY) return SQLITE_OK;   /* another process writes: its business */
      if (rc != SQLITE_OK) return rc;
    }
    /* Another connection holding the store may be in the middle of its
    ** own commit: that batch is not in doubt. */
    e = klevdb_writer_lock(vt->kdb, 0);
    if (e == KLEVDB_ELOCKED) return SQLITE_OK;
    if (e != KLEVDB_OK) return kvt_error(vt, kvt_rc(e), "%s", klevdb_errmsg(vt->kdb));
    e = klevdb_prepared_find(vt->kdb, &p);
    if (e == KLEVDB_ENOTFOUND) {
      klevdb_writer_unlock(vt->kdb);
      vt->resolved = true;
      return SQLITE_OK;
    }
    if (e != KLEVDB_OK) {
      klevdb_writer_unlock(vt->kdb);
      return kvt_error(vt, kvt_rc(e), "%s", klevdb_errmsg(vt->kdb));
    }
  }
  klevdb_prepared_info in;
  klevdb_prepared_get_info(p, &in);
  bool commit = false;
  int rc = SQLITE_OK, owner = txid_owner(vt, in.txid);
  if (owner == 1) rc = shadow_has(vt, in.txid, &commit);
  if (rc != SQLITE_OK || owner == 0) {
    /* Another table's (of another database file, maybe): its next use
    ** settles it; until then this one cannot write the store. */
    klevdb_prepared_close(p);
  } else {
    e = commit ? klevdb_prepared_commit(p, NULL, NULL) : klevdb_prepared_abort(p);
    if (e != KLEVDB_OK) rc = kvt_error(vt, kvt_rc(e), "%s", klevdb_errmsg(vt->kdb));
    else vt->resolved = true;
  }
  if (!locked) klevdb_writer_unlock(vt->kdb);
  return rc;
}

int kvt_resolve(kvt_vtab *vt) { return vt->resolved ? SQLITE_OK : resolve(vt, false); }

static int reserve(kvt_vtab *vt) {
  if (vt->tx->locked) return SQLITE_OK;
  if (vt->follower) {
    int rc = kvt_become_writer(vt);
    if (rc != SQLITE_OK) return rc;
  }
  klevdb_err e = klevdb_writer_lock(vt->kdb, WRITER_WAIT_MS);
  if (e != KLEVDB_OK) return kvt_error(vt, kvt_rc(e), "%s", klevdb_errmsg(vt->kdb));
  /* A batch left in doubt holds the next offsets: settle it first. */
  int rc = resolve(vt, true);
  if (rc != SQLITE_OK) {
    klevdb_writer_unlock(vt->kdb);
    return rc;
  }
  int64_t next;
  e = klevdb_next_offset(vt->kdb, &next);
  if (e != KLEVDB_OK) {
    klevdb_writer_unlock(vt->kdb);
    return kvt_error(vt, kvt_rc(e), "%s", klevdb_errmsg(vt->kdb));
  }
  /* Staging starts past this many bytes of rows: then klevdb_publish would
  ** split the batch into segments of its own too (it does past 4 rollover
  ** sizes of records; records are over half of klevdb_size), so the files
  ** are the same either way. */
  klevdb_options o;
  klevdb_get_options(vt->kdb, &o);
  vt->tx->stage_at = 8 * o.rollover;
  vt->tx->locked = true;
  vt->tx->owner = vt->kdb;
  vt->tx->base = next;
  return SQLITE_OK;
}

/* ---- staging: big transactions written while they run ---- */

/* Hands rows[staged..n) to the stage. A failure (say a full disk) stops
** staging for the transaction: the rows are still here, and the commit
** publishes them the ordinary way (and reports the error if it persists). */
static void stage_feed(kvt_vtab *vt) {
  kvt_pending *tx = vt->tx;
  klevdb_msg m[64];
  while (tx->stage && tx->staged < tx->n) {
    size_t k = 0;
    while (k < 64 && tx->staged + k < tx->n) {
      m[k] = kvt_pending_msg(tx, tx->staged + k);
      k++;
    }
    if (klevdb_stage_add(tx->stage, m, k) != KLEVDB_OK) {
      klevdb_stage_abort(tx->stage);
      tx->stage = NULL;
      tx->no_stage = true;
      return;
    }
    tx->staged += k;
  }
}

/* Called after each insert: starts staging once the rows are worth it and
** hands over full runs of rows. */
static void stage_maybe(kvt_vtab *vt) {
  kvt_pending *tx = vt->tx;
  if (!tx->stage) {
    if (tx->no_stage || tx->bytes <= tx->stage_at) return;
    if (klevdb_stage_begin(tx->owner, &tx->stage) != KLEVDB_OK) {
      tx->stage = NULL;
      tx->no_stage = true;
      return;
    }
    tx->staged = 0;
  }
  if (tx->n - tx->staged >= 64) stage_feed(vt);
}

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Writes after an xSync (a COMMIT that failed with BUSY, then more
** statements): what xSync made ready no longer is the batch. */
static void unsync(kvt_pending *tx) {
  if (tx->prep) klevdb_prepared_abort(tx->prep);
  tx->prep = NULL;
  tx->published = false;
}

static int insert(kvt_vtab *vt, sqlite3_value **argv, sqlite3_int64 *rowid) {
  kvt_pending *tx = vt->tx;
  unsync(tx);
  /* argv: [0] old rowid (NULL), [1] new rowid, [2..] the columns. */
  if (sqlite3_value_type(argv[1]) != SQLITE_NULL || sqlite3_value_type(argv[2 + KVT_OFFSET]) != SQLITE_NULL)
    return kvt_error(vt, SQLITE_CONSTRAINT, "offsets are assigned by the log (leave offset out of the INSERT)");
  if (sqlite3_value_type(argv[2 + KVT_WAIT]) != SQLITE_NULL)
    return kvt_error(vt, SQLITE_CONSTRAINT, "wait is for reading (SELECT ... WHERE wait = ms), not stored");
  if (sqlite3_value_type(argv[2 + KVT_CONSUMER]) != SQLITE_NULL)
    return kvt_error(vt, SQLITE_CONSTRAINT, "consumer is for reading (SELECT ... WHERE consumer = "
                     "'name'; klevdb_commit moves it), not stored");
  int64_t t;
  sqlite3_value *tv = argv[2 + KVT_TIME];
  if (sqlite3_value_type(tv) == SQLITE_NULL) {
    t = now_us();
  } else {
    char *err = NULL;
    int rc = kvt_parse_time(tv, &t, &err);
    if (rc != SQLITE_OK) {
      kvt_error(vt, rc, "%s", err ? err : "bad time");
      sqlite3_free(err);
      return rc;
    }
    /* The store reads this one value as "now": it cannot be kept. */
    if (t == KLEVDB_TIME_UNSET)
      return kvt_error(vt, SQLITE_MISMATCH, "time %lld cannot be stored (the store takes it for "
                       "\"now\"; give NULL for now)", (long long)t);
  }
  size_t alen = tx->arena.len, klen = 0, vlen = 0;
  char *err = NULL;
  int rc = kvt_encode(vt->args.key, argv[2 + KVT_KEY], "key", &tx->arena, &err);
  if (rc == SQLITE_OK) {
    klen = tx->arena.len - alen;
    rc = kvt_encode(vt->args.value, argv[2 + KVT_VALUE], "value", &tx->arena, &err);
    vlen = tx->arena.len - alen - klen;
  }
  if (rc == SQLITE_OK && klen + vlen > KLEVDB_MAX_PAYLOAD) {
    rc = SQLITE_TOOBIG;
    /* SQLite's printf: %llu, not %zu (its %z means "print and free"). */
    err = sqlite3_mprintf("klevdb: message too big: key + value is %llu bytes, the limit is %d",
                          (unsigned long long)(klen + vlen), KLEVDB_MAX_PAYLOAD);
  }
  if (rc != SQLITE_OK) {
    tx->arena.len = alen;
    kvt_error(vt, rc, "%s", err ? err : "cannot encode");
    sqlite3_free(err);
    return rc;
  }
  if ((rc = reserve(vt)) != SQLITE_OK || (rc = grow((void **)&tx->rows, &tx->cap, tx->n + 1, sizeof(kvt_row))) != SQLITE_OK) {
    tx->arena.len = alen;
    return rc;
  }
  tx->rows[tx->n++] = (kvt_row){.time = t, .koff = alen, .klen = (uint32_t)klen, .vlen = (uint32_t)vlen};
  klevdb_msg m = kvt_pending_msg(tx, tx->n - 1);
  tx->bytes += klevdb_size(vt->kdb, &m);
  *rowid = tx->base + (sqlite3_int64)tx->n - 1;
  stage_maybe(vt);
  return SQLITE_OK;
}

static int delete_row(kvt_vtab *vt, int64_t offset) {
  kvt_pending *tx = vt->tx;
  unsync(tx);
  int rc = reserve(vt);
  if (rc != SQLITE_OK) return rc;
  /* Consecutive offsets grow the last range (ranges born before the last
  ** savepoint stay as they are, so that ROLLBACK TO can cut them off). */
  size_t floor = tx->nmarks ? tx->marks[tx->nmarks - 1].ndels : 0;
  if (tx->ndels > floor) {
    klevdb_range *last = &tx->dels[tx->ndels - 1];
    if (offset == last->to) {
      last->to++;
      return SQLITE_OK;
    }
    if (offset == last->from - 1) {
      last->from--;
      if (tx->ndels > 1 && last->from < tx->dels[tx->ndels - 2].to) tx->dels_sorted = false;
      return SQLITE_OK;
    }
  }
  if ((rc = grow((void **)&tx->dels, &tx->capdels, tx->ndels + 1, sizeof(klevdb_range))) != SQLITE_OK)
    return rc;
  if (tx->ndels == 0) tx->dels_sorted = true;
  else if (offset < tx->dels[tx->ndels - 1].to) tx->dels_sorted = false;
  tx->dels[tx->ndels++] = (klevdb_range){offset, offset + 1};
  return SQLITE_OK;
}

int kvt_update(sqlite3_vtab *vtab, int argc, sqlite3_value **argv, sqlite3_int64 *rowid) {
  kvt_vtab *vt = (kvt_vtab *)vtab;
  if (vt->args.opts.readonly)
    return kvt_error(vt, SQLITE_READONLY, "table %s is read-only", vt->name);
  if (argc == 1) return delete_row(vt, sqlite3_value_int64(argv[0]));
  if (sqlite3_value_type(argv[0]) == SQLITE_NULL) return insert(vt, argv, rowid);
  return kvt_error(vt, SQLITE_CONSTRAINT, "messages are immutable (UPDATE is not supported; "
                   "INSERT a new message and DELETE the old one)");
}

static int64_t total_changes(sqlite3 *db) {
  return KVT_HAS_CHANGES64() ? sqlite3_total_changes64(db) : sqlite3_total_changes(db);
}

/* SQLite before 3.40 lets a trigger write a SQLITE_VTAB_DIRECTONLY table,
** and the table is not told who writes. So there a table that triggers may
** not use refuses every write while a trigger of its schema names it: such
** a trigger came with the database file (a TEMP trigger is the
** application's own), and SQLite 3.40 would refuse it anyway. Quotes are
** dropped on both sides, as a name may be written "a""b", `a`, [a]. */
static int guard_triggers(kvt_vtab *vt) {
  if (vt->trusted || KVT_HAS_TRIGGER_GUARD() || sqlite3_stricmp(vt->schema, "temp") == 0)
    return SQLITE_OK;
  char *sql = sqlite3_mprintf(
      "SELECT name FROM \"%w\".sqlite_master WHERE type = 'trigger' AND instr("
      "lower(replace(replace(replace(replace(sql, '\"', ''), '`', ''), '[', ''), ']', '')), "
      "lower(replace(replace(replace(replace(?1, '\"', ''), '`', ''), '[', ''), ']', ''))) > 0",
      vt->schema);
  if (!sql) return SQLITE_NOMEM;
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(vt->conn->db, sql, -1, &st, NULL);
  sqlite3_free(sql);
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(st, 1, vt->name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
      rc = kvt_error(vt, SQLITE_ERROR,
                     "table %s: trigger %s may write it, and SQLite %s cannot keep triggers "
                     "from writing a table not allowed to them (3.40 can); drop the trigger, or "
                     "declare the table triggers=1 and allow its store (klevdb_allow_triggers)",
                     vt->name, (const char *)sqlite3_column_text(st, 0), sqlite3_libversion());
    else if (rc == SQLITE_DONE)
      rc = SQLITE_OK;
  }
  if (rc != SQLITE_OK && !vt->base.zErrMsg)
    kvt_error(vt, rc, "table %s: %s", vt->name, sqlite3_errmsg(vt->conn->db));
  sqlite3_finalize(st);
  return rc;
}

int kvt_begin(sqlite3_vtab *vtab) {
  kvt_vtab *vt = (kvt_vtab *)vtab;
  int rc = guard_triggers(vt);
  if (rc != SQLITE_OK) return rc;
  vt->tx->autocommit = sqlite3_get_autocommit(vt->conn->db) != 0;
  vt->tx->changes0 = total_changes(vt->conn->db);
  return SQLITE_OK;
}

/* Whether another klevdb table of the connection has writes pending. */
static bool others_write(const kvt_vtab *vt) {
  for (const kvt_vtab *o = vt->conn->tables; o; o = o->next)
    if (o->tx != vt->tx && (o->tx->n || o->tx->ndels)) return true;
  return false;
}

static klevdb_msg *pending_msgs(const kvt_pending *tx) {
  klevdb_msg *m = malloc((tx->n ? tx->n : 1) * sizeof(klevdb_msg));
  for (size_t i = 0; m && i < tx->n; i++) m[i] = kvt_pending_msg(tx, i);
  return m;
}

/* Publishes a batch alone in its database transaction, as it comes. */
static int publish_now(kvt_vtab *vt, const klevdb_range *dels, size_t ndels) {
  kvt_pending *tx = vt->tx;
  klevdb *w = tx->owner;
  klevdb_err e = KLEVDB_OK;
  stage_feed(vt);
  int64_t next = tx->base + (int64_t)tx->n;
  if (tx->n && tx->stage) {
    /* Most of it is on disk already; the commit renames it into place. */
    e = klevdb_stage_commit(tx->stage, &next);
    tx->stage = NULL;
  } else if (tx->n) {
    klevdb_msg *msgs = pending_msgs(tx);
    if (!msgs) return SQLITE_NOMEM;
    e = klevdb_publish(w, msgs, tx->n, &next);
    free(msgs);
  }
  if (e == KLEVDB_OK && next != tx->base + (int64_t)tx->n)
    return kvt_error(vt, SQLITE_INTERNAL, "published at another offset than handed out (%lld)",
                     (long long)(next - (int64_t)tx->n));
  if (e == KLEVDB_OK && ndels) {
    klevdb_deleted d;
    e = klevdb_delete_ranges(w, dels, ndels, &d);
  }
  if (e == KLEVDB_OK && vt->args.opts.auto_sync) e = klevdb_sync(w, NULL);
  if (e != KLEVDB_OK) return kvt_error(vt, kvt_rc(e), "%s", klevdb_errmsg(w));
  return SQLITE_OK;
}

/* Makes the batch ready for xCommit without showing any of it (see the
** top of the file). A failure fails the COMMIT and leaves the store as it
** was. SQLite calls it again when a COMMIT that failed with BUSY is
** retried: what is ready stays ready. */
static int sync_batch(kvt_vtab *vt, bool alone, const klevdb_range *dels, size_t ndels);

int kvt_sync(sqlite3_vtab *vtab) {
  kvt_vtab *vt = (kvt_vtab *)vtab;
  kvt_pending *tx = vt->tx;
  if (tx->published || !tx->locked || (!tx->n && !tx->ndels)) return SQLITE_OK;
  bool alone = tx->autocommit && !others_write(vt) &&
               total_changes(vt->conn->db) == tx->changes0;
  /* Retention goes with the batch: the segments it drops are deleted
  ** when, and only when, the batch is committed. */
  klevdb_range *dels = tx->dels;
  size_t ndels = tx->ndels;
  klevdb_range *ret = NULL;
  size_t nret = 0;
  int rc = kvt_retention(vt, &ret, &nret);
  if (rc != SQLITE_OK) return rc;
  if (nret) {
    dels = malloc((tx->ndels + nret) * sizeof(*dels));
    if (!dels) {
      sqlite3_free(ret);
      return SQLITE_NOMEM;
    }
    memcpy(dels, ret, nret * sizeof(*dels));
    if (tx->ndels) memcpy(dels + nret, tx->dels, tx->ndels * sizeof(*dels));
    ndels += nret;
    sqlite3_free(ret);
  }
  rc = sync_batch(vt, alone, dels, ndels);
  if (dels != tx->dels) free(dels);
  return rc;
}

/* kvt_sync with the ranges to delete (the transaction's and retention's). */
static int sync_batch(kvt_vtab *vt, bool alone, const klevdb_range *dels, size_t ndels) {
  kvt_pending *tx = vt->tx;
  klevdb *w = tx->owner;
  if (alone) {
    int rc = publish_now(vt, dels, ndels);
    if (rc == SQLITE_OK) tx->published = true;
    return rc;
  }
  char *txid = new_txid(vt);
  if (!txid) return SQLITE_NOMEM;
  klevdb_err e;
  if (tx->stage) {
    /* Most of it is in segment files already: they are prepared as they
    ** are, and the commit renames them into place. */
    stage_feed(vt);
  }
  if (tx->stage) {
    e = klevdb_stage_prepare(tx->stage, dels, ndels, txid, &tx->prep);
    tx->stage = NULL;
    tx->no_stage = true;
  } else {
    klevdb_msg *msgs = pending_msgs(tx);
    if (!msgs) {
      sqlite3_free(txid);
      return SQLITE_NOMEM;
    }
    e = klevdb_prepare(w, msgs, tx->n, dels, ndels, txid, &tx->prep);
    free(msgs);
  }
  if (e != KLEVDB_OK) {
    sqlite3_free(txid);
    return kvt_error(vt, kvt_rc(e), "%s", klevdb_errmsg(w));
  }
  FAULT_POINT();
  int rc = shadow_write(vt, txid, tx->base, (int64_t)tx->n);
  sqlite3_free(txid);
  if (rc != SQLITE_OK) {
    klevdb_prepared_abort(tx->prep);
    tx->prep = NULL;
    return rc;
  }
  FAULT_POINT();
  tx->published = true;
  return SQLITE_OK;
}

/* The database has committed: the batch becomes visible. Nothing here
** can be reported (SQLite ignores xCommit's result): a prepared batch
** whose commit fails stays in doubt and the table's next use commits it. */
int kvt_commit(sqlite3_vtab *vtab) {
  kvt_vtab *vt = (kvt_vtab *)vtab;
  kvt_pending *tx = vt->tx;
  klevdb *w = tx->owner;
  if (tx->prep) {
    FAULT_POINT();
    klevdb_err e = klevdb_prepared_commit(tx->prep, NULL, NULL);
    FAULT_POINT();
    tx->prep = NULL;
    if (e == KLEVDB_OK && vt->args.opts.auto_sync) e = klevdb_sync(w, NULL);
    if (e != KLEVDB_OK) {
      sqlite3_log(kvt_rc(e), "klevdb: table %s: the store's commit failed after the database's "
                  "(the table's next use retries it): %s", vt->name, klevdb_errmsg(w));
      vt->resolved = false;
    }
  }
  if (tx->n || tx->ndels) {
    /* Rows inserted change the planner's picture a little; refresh it. */
    vt->est_rows += (int64_t)tx->n;
  }
  kvt_pending_clear(vt);
  return SQLITE_OK;
}

int kvt_rollback(sqlite3_vtab *vtab) {
  kvt_vtab *vt = (kvt_vtab *)vtab;
  kvt_pending *tx = vt->tx;
  if (tx->prep && klevdb_prepared_abort(tx->prep) != KLEVDB_OK) vt->resolved = false;
  tx->prep = NULL;
  kvt_pending_clear(vt);
  return SQLITE_OK;
}

/* SQLite numbers savepoints from 0 and passes -1 for the savepoint that
** opened the transaction itself (SAVEPOINT with no BEGIN): ROLLBACK TO it
** drops every pending write but keeps the transaction (and the offsets
** reserved) open. Savepoint n begun while nmarks < n took the state of
** now for every level in between (the table had no writes then). */
int kvt_savepoint(sqlite3_vtab *vtab, int n) {
  kvt_vtab *vt = (kvt_vtab *)vtab;
  kvt_pending *tx = vt->tx;
  if (n < 0) return SQLITE_OK;
  if (n >= tx->capmarks) {
    int cap = n + 8;
    void *m = sqlite3_realloc64(tx->marks, (sqlite3_uint64)cap * sizeof(*tx->marks));
    if (!m) return SQLITE_NOMEM;
    tx->marks = m;
    tx->capmarks = cap;
  }
  /* A level held already was begun by another instance sharing these
  ** writes (a table reconnected inside the transaction joins it late):
  ** its mark is the true one. */
  if (n < tx->nmarks) return SQLITE_OK;
  for (int i = tx->nmarks; i <= n; i++) {
    tx->marks[i].n = tx->n;
    tx->marks[i].ndels = tx->ndels;
    tx->marks[i].alen = tx->arena.len;
    tx->marks[i].bytes = tx->bytes;
  }
  tx->nmarks = n + 1;
  return SQLITE_OK;
}

int kvt_release(sqlite3_vtab *vtab, int n) {
  kvt_vtab *vt = (kvt_vtab *)vtab;
  if (n < 0) n = 0;
  if (n < vt->tx->nmarks) vt->tx->nmarks = n;
  return SQLITE_OK;
}

int kvt_rollback_to(sqlite3_vtab *vtab, int n) {
  kvt_vtab *vt = (kvt_vtab *)vtab;
  kvt_pending *tx = vt->tx;
  if (n >= tx->nmarks) return SQLITE_OK;
  unsync(tx);
  if (n < 0) {
    /* Back to the start of the transaction. */
    tx->n = tx->ndels = tx->arena.len = 0;
    tx->bytes = 0;
  } else {
    tx->n = tx->marks[n].n;
    tx->ndels = tx->marks[n].ndels;
    tx->arena.len = tx->marks[n].alen;
    tx->bytes = tx->marks[n].bytes;
  }
  if (tx->stage && tx->staged > tx->n) {
    /* Back below the size that splits: publish at commit as usual. */
    if (tx->bytes <= tx->stage_at || klevdb_stage_truncate(tx->stage, tx->n) != KLEVDB_OK) {
      klevdb_stage_abort(tx->stage);
      tx->stage = NULL;
    } else {
      tx->staged = tx->n;
    }
  }
  tx->nmarks = n < 0 ? 0 : n + 1;
  return SQLITE_OK;
}
