/*
** vtab.c - the klevdb virtual table's reading half: connect and
** disconnect, the query planner interface (xBestIndex) and the cursor
** that turns a plan into reads of the store's offset, key and time indexes.
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "kvt.h"

/* ---- errors (kvt_rc and kvt_error are in errors.c) ---- */

/* The core's message for the last failed call on the table's handle. */
static int core_error(kvt_vtab *vt, klevdb_err e) {
  return kvt_error(vt, kvt_rc(e), "%s", klevdb_errmsg(vt->kdb));
}

kvt_vtab *kvt_find(kvt_conn *c, const char *schema, const char *name) {
  for (kvt_vtab *v = c->tables; v; v = v->next)
    if (sqlite3_stricmp(v->schema, schema) == 0 && sqlite3_stricmp(v->name, name) == 0) return v;
  return NULL;
}

/* ---- connect and disconnect ---- */

static void estimate_rows(kvt_vtab *vt) {
  klevdb_bounds b;
  vt->est_rows = 1000000;
  if (klevdb_bounds_get(vt->kdb, &b) == KLEVDB_OK)
    vt->est_rows = b.oldest_offset < 0 ? 1 : b.newest_offset - b.oldest_offset + 1;
}

static void vt_free(kvt_vtab *vt) {
  kvt_consumers_close(vt);
  sqlite3_finalize(vt->temp_stmt);
  klevdb_close(vt->kdb);
  kvt_args_free(&vt->args);
  sqlite3_free(vt->schema);
  sqlite3_free(vt->name);
  sqlite3_free(vt->base.zErrMsg);
  sqlite3_free(vt);
}

/* xCreate (create: a CREATE VIRTUAL TABLE the application runs) and
** xConnect (a table found in a schema, which whoever wrote the database
** file chose). Neither takes the store's writer lock: the table opens it
** read-only and becomes the writer at its first write (vtab_write.c), so
** a table that only reads leaves the store to Go writers and readers.
** Only xCreate may make the directory: connecting a schema must not leave
** folders wherever its text points. */
static int connect_table(sqlite3 *db, void *aux, int argc, const char *const *argv,
                         sqlite3_vtab **out, char **err, bool create) {
  kvt_conn *c = aux;
  kvt_vtab *vt = sqlite3_malloc(sizeof(*vt));
  if (!vt) return SQLITE_NOMEM;
  memset(vt, 0, sizeof(*vt));
  vt->conn = c;
  int rc = kvt_args_parse(db, argv[1], argv[2], argc, argv, &vt->args, err);
  if (rc != SQLITE_OK) {
    sqlite3_free(vt);
    return rc;
  }
  vt->schema = sqlite3_mprintf("%s", argv[1]);
  vt->name = sqlite3_mprintf("%s", argv[2]);
  if (!vt->schema || !vt->name) {
    vt_free(vt);
    return SQLITE_NOMEM;
  }
  if (!create) {
    struct stat sb;
    if (stat(vt->args.dir, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
      *err = sqlite3_mprintf("klevdb: table %s: no store directory %s (a table of an existing "
                             "schema does not create one; only CREATE VIRTUAL TABLE does)",
                             vt->name, vt->args.dir);
      vt_free(vt);
      return SQLITE_CANTOPEN;
    }
    vt->args.opts.create_dirs = 0;
  }
  /* Indexes not named take what an existing store has (a Go store written
  ** without a time index opens without saying time_index=0). */
  if ((vt->args.indexes_given & 3) != 3) {
    int k, t;
    klevdb_dir_indexes(vt->args.dir, &k, &t);
    if (!(vt->args.indexes_given & 1)) vt->args.opts.key_index = k;
    if (!(vt->args.indexes_given & 2)) vt->args.opts.time_index = t;
  }
  /* max_age finds its segments through the time index. */
  if (vt->args.max_age && !vt->args.opts.time_index) {
    *err = sqlite3_mprintf("klevdb: table %s: argument max_age needs the time index (the store "
                           "in %s has none)", vt->name, vt->args.dir);
    vt_free(vt);
    return SQLITE_ERROR;
  }
  /* recover= rewrites the last segment: a table that may write runs it
  ** when it opens the store for writing, not here, where a damaged tail
  ** must not stop it from connecting. (A readonly=1 table checks.) */
  klevdb_options ro = vt->args.opts;
  ro.readonly = 1;
  if (!vt->args.opts.readonly && ro.recover) {
    ro.recover = 0;
    ro.check = 0;
  }
  klevdb_error ke;
  klevdb_err e = klevdb_open(vt->args.dir, &ro, &vt->kdb, &ke);
  vt->follower = e == KLEVDB_OK && !vt->args.opts.readonly;
  if (e != KLEVDB_OK) {
    if (ke.reason == KLEVDB_REASON_KEY_INDEX)
      *err = sqlite3_mprintf("%s (the store in %s was written %s a key index: say key_index=%d, "
                             "or leave it out)", ke.msg, vt->args.dir,
                             vt->args.opts.key_index ? "without" : "with", !vt->args.opts.key_index);
    else if (ke.reason == KLEVDB_REASON_TIME_INDEX)
      *err = sqlite3_mprintf("%s (the store in %s was written %s a time index: say time_index=%d, "
                             "or leave it out)", ke.msg, vt->args.dir,
                             vt->args.opts.time_index ? "without" : "with", !vt->args.opts.time_index);
    else
      *err = sqlite3_mprintf("%s", ke.msg);
    vt_free(vt);
    return kvt_rc(e);
  }
  /* A table writes files wherever its dir= says, so a trigger or view in
  ** a database file (written by anyone) must not reach it: only SQL the
  ** application runs itself may, unless the schema says triggers=1 and the
  ** application allowed this very store (klevdb_allow_triggers). */
  vt->trusted = vt->args.triggers && kvt_triggers_allowed(c, vt->args.dir);
  rc = sqlite3_vtab_config(db, vt->trusted ? SQLITE_VTAB_INNOCUOUS : SQLITE_VTAB_DIRECTONLY);
  if (rc == SQLITE_OK) {
    /* key and value are declared with the type their codec reads back, so
    ** that SQLite converts what it compares with them as it would for a
    ** plain table (key = '5' with an integer key is key = 5). */
    char *decl = sqlite3_mprintf("CREATE TABLE x(\"offset\" INTEGER, time INTEGER, key %s, value %s, "
                                 "wait HIDDEN INTEGER, consumer HIDDEN TEXT)", kvt_codec_type(vt->args.key),
                                 kvt_codec_type(vt->args.value));
    rc = decl ? sqlite3_declare_vtab(db, decl) : SQLITE_NOMEM;
    sqlite3_free(decl);
  }
  if (rc != SQLITE_OK) {
    vt_free(vt);
    return rc;
  }
  /* The shadow table records which transaction's batch is prepared (see
  ** vtab_write.c); a table that cannot write needs none. */
  if (create && !vt->args.opts.readonly &&
      ((rc = kvt_shadow_create(vt)) != SQLITE_OK || (rc = kvt_consumers_create(vt)) != SQLITE_OK)) {
    *err = sqlite3_mprintf("%s", vt->base.zErrMsg ? vt->base.zErrMsg : sqlite3_errstr(rc));
    vt_free(vt);
    return rc;
  }
  estimate_rows(vt);
  /* An instance of this table with a transaction open (SQLite reconnects
  ** after a failed schema change): share its writes. */
  for (kvt_vtab *o = c->tables; o && !vt->tx; o = o->next)
    if (o->tx->locked && sqlite3_stricmp(o->schema, vt->schema) == 0 &&
        sqlite3_stricmp(o->name, vt->name) == 0 && strcmp(o->args.dir, vt->args.dir) == 0)
      vt->tx = o->tx;
  if (!vt->tx) {
    if (!(vt->tx = sqlite3_malloc(sizeof(*vt->tx)))) {
      vt_free(vt);
      return SQLITE_NOMEM;
    }
    memset(vt->tx, 0, sizeof(*vt->tx));
  }
  vt->tx->refs++;
  vt->next = c->tables;
  c->tables = vt;
  *out = &vt->base;
  return SQLITE_OK;
}

int kvt_create(sqlite3 *db, void *aux, int argc, const char *const *argv,
                      sqlite3_vtab **out, char **err) {
  return connect_table(db, aux, argc, argv, out, err, true);
}

int kvt_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                       sqlite3_vtab **out, char **err) {
  return connect_table(db, aux, argc, argv, out, err, false);
}

int kvt_disconnect(sqlite3_vtab *vtab) {
  kvt_vtab *vt = (kvt_vtab *)vtab;
  for (kvt_vtab **p = &vt->conn->tables; *p; p = &(*p)->next)
    if (*p == vt) {
      *p = vt->next;
      break;
    }
  /* SQLite keeps an instance with an open transaction connected until
  ** it ends; should that ever not hold, the writes go with the handle. */
  if (vt->tx->refs > 1 && vt->tx->owner == vt->kdb) kvt_pending_clear(vt);
  if (--vt->tx->refs == 0) {
    kvt_pending_clear(vt);
    sqlite3_free(vt->tx);
  }
  vt_free(vt);
  return SQLITE_OK;
}

/* DROP TABLE keeps the store's files. It is refused while the open
** transaction has writes to the table: they would go with the table
** unpublished, and a ROLLBACK of the DROP could not bring them back. */
int kvt_destroy(sqlite3_vtab *vtab) {
  kvt_vtab *vt = (kvt_vtab *)vtab;
  if (vt->tx->n || vt->tx->ndels)
    /* SQLite reports xDestroy's code alone ("database table is locked"),
    ** as when a statement still reads the table. */
    return kvt_error(vt, SQLITE_LOCKED, "DROP TABLE %s: the open transaction has writes to it "
                     "(COMMIT or ROLLBACK first)", vt->name);
  kvt_consumers_close(vt);
  char *sql = sqlite3_mprintf("DROP TABLE IF EXISTS \"%w\".\"%w_klevdb\"; DROP TABLE IF EXISTS "
                              "\"%w\".\"%w_consumers\"", vt->schema, vt->name, vt->schema, vt->name);
  int rc = sql ? sqlite3_exec(vt->conn->db, sql, NULL, NULL, NULL) : SQLITE_NOMEM;
  sqlite3_free(sql);
  if (rc != SQLITE_OK) return rc;
  return kvt_disconnect(vtab);
}

/* <table>_klevdb and <table>_consumers are the table's own (ordinary SQL
** may not write them when the connection is defensive). */
int kvt_shadow_name(const char *suffix) {
  return sqlite3_stricmp(suffix, "klevdb") == 0 || sqlite3_stricmp(suffix, "consumers") == 0;
}

/* ---- planning ---- */

/* A plan is a set of these bits in idxNum. Constraint values arrive in
** argv in this order, each only if its bit is set:
**   offset = (or IN), offset lower bound, offset upper bound, key = (or IN),
**   time lower bound, wait, consumer =. */
enum {
  P_EQ = 1 << 0,       /* offset = ? */
  P_EQ_IN = 1 << 1,    /* ... as offset IN (...) */
  P_LO = 1 << 2,       /* offset >= ? */
  P_LO_GT = 1 << 3,    /* ... > */
  P_HI = 1 << 4,       /* offset <= ? */
  P_HI_LT = 1 << 5,    /* ... < */
  P_KEY = 1 << 6,      /* key = ? */
  P_KEY_IN = 1 << 7,   /* ... as key IN (...) */
  P_TIME = 1 << 8,     /* time >= ? (start there; SQLite still checks) */
  P_TIME_GT = 1 << 9,  /* ... > */
  P_DESC = 1 << 10,    /* ORDER BY offset DESC */
  P_CONSUMER = 1 << 11, /* consumer = ? (start at its position) */
  P_NOLOG = 1 << 13,   /* only offsets are needed: the log is not read */
  P_WAIT = 1 << 14     /* wait = ? (ms to block for a first row) */
};
/* idxNum bits from P_READ_SHIFT on: how many messages the first read
** takes (a literal LIMIT + OFFSET, at most 256; 0: the default). */
enum { P_READ_SHIFT = 16, P_READ_MAX = 256 };
enum { NSLOT = 7 };

/* A key that SQLite compares as TEXT. Whether key = 5 means the text '5'
** (5 is a literal or a parameter) or any text that reads as the number 5
** (5 comes from an INTEGER column or a CAST) depends on the right side's
** own type, which a virtual table is not told: SQLite checks such keys
** itself, and a number finds its rows by a scan (key_lookup_exact). */
static bool text_key(const kvt_vtab *vt) {
  return vt->args.key != KVT_BLOB && vt->args.key != KVT_INTEGER;
}

int kvt_best_index(sqlite3_vtab *vtab, sqlite3_index_info *ix) {
  kvt_vtab *vt = (kvt_vtab *)vtab;
  int slot[NSLOT];     /* constraint index for each argv position */
  for (int i = 0; i < NSLOT; i++) slot[i] = -1;
  int plan = 0;
  bool wait_unusable = false, consumer_unusable = false;
  klevdb_options o;
  klevdb_get_options(vt->kdb, &o);
  /* Before 3.38 SQLite hands IN to xFilter one value at a time, as =,
  ** and offers no LIMIT or OFFSET. */
  bool has_in = KVT_HAS_VTAB_IN();

  for (int i = 0; i < ix->nConstraint; i++) {
    const struct sqlite3_index_constraint *c = &ix->aConstraint[i];
    if (c->op == SQLITE_INDEX_CONSTRAINT_LIMIT || c->op == SQLITE_INDEX_CONSTRAINT_OFFSET) continue;
    int col = c->iColumn;
    /* Any other test of wait would compare with a column that has no
    ** value of its own and silently drop every row. */
    if (col == KVT_WAIT && (c->op != SQLITE_INDEX_CONSTRAINT_EQ || (has_in && sqlite3_vtab_in(ix, i, -1)))) {
      sqlite3_free(vtab->zErrMsg);
      vtab->zErrMsg = sqlite3_mprintf("klevdb: %s: wait takes only \"wait = milliseconds\"", vt->name);
      return SQLITE_ERROR;
    }
    /* consumer is a name to read as, not a value to compare. Before 3.38
    ** an IN list cannot be told from = (one xFilter per name, as a join
    ** with a list of names would do). */
    if (col == KVT_CONSUMER && (c->op != SQLITE_INDEX_CONSTRAINT_EQ || (has_in && sqlite3_vtab_in(ix, i, -1)))) {
      sqlite3_free(vtab->zErrMsg);
      vtab->zErrMsg = sqlite3_mprintf("klevdb: %s: consumer takes only \"consumer = 'name'\"", vt->name);
      return SQLITE_ERROR;
    }
    if (!c->usable) {
      if (col == KVT_WAIT) wait_unusable = true;
      if (col == KVT_CONSUMER) consumer_unusable = true;
      continue;
    }
    if (col == KVT_CONSUMER) {
      if (slot[6] < 0) {
        slot[6] = i;
        plan |= P_CONSUMER;
      }
    } else if (col == KVT_WAIT) {
      if (slot[5] < 0) {
        slot[5] = i;
        plan |= P_WAIT;
      }
    } else if (col == -1 || col == KVT_OFFSET) {
      if (c->op == SQLITE_INDEX_CONSTRAINT_EQ && slot[0] < 0) {
        slot[0] = i;
        plan |= P_EQ;
      } else if ((c->op == SQLITE_INDEX_CONSTRAINT_GE || c->op == SQLITE_INDEX_CONSTRAINT_GT) && slot[1] < 0) {
        slot[1] = i;
        plan |= P_LO | (c->op == SQLITE_INDEX_CONSTRAINT_GT ? P_LO_GT : 0);
      } else if ((c->op == SQLITE_INDEX_CONSTRAINT_LE || c->op == SQLITE_INDEX_CONSTRAINT_LT) && slot[2] < 0) {
        slot[2] = i;
        plan |= P_HI | (c->op == SQLITE_INDEX_CONSTRAINT_LT ? P_HI_LT : 0);
      }
    } else if (col == KVT_KEY && o.key_index && c->op == SQLITE_INDEX_CONSTRAINT_EQ && slot[3] < 0 &&
               (vt->args.key == KVT_BLOB || vt->args.key == KVT_INTEGER ||
                sqlite3_stricmp(sqlite3_vtab_collation(ix, i), "BINARY") == 0)) {
      /* The index finds equal bytes: text compared under another
      ** collation (key = 'A' COLLATE NOCASE) is left to SQLite. */
      slot[3] = i;
      plan |= P_KEY;
    } else if (col == KVT_TIME && o.time_index && slot[4] < 0 &&
               (c->op == SQLITE_INDEX_CONSTRAINT_GE || c->op == SQLITE_INDEX_CONSTRAINT_GT)) {
      /* Stored times may go backwards: the start is exact, the rest is
      ** checked by SQLite. */
      slot[4] = i;
      plan |= P_TIME | (c->op == SQLITE_INDEX_CONSTRAINT_GT ? P_TIME_GT : 0);
    }
  }

  /* IN lists come whole (all at once) for offset, and for key unless
  ** offset = is taken too: then SQLite calls xFilter once per key, and the
  ** offset list is checked against that one key. */
  if (has_in && slot[0] >= 0 && sqlite3_vtab_in(ix, slot[0], -1)) {
    sqlite3_vtab_in(ix, slot[0], 1);
    plan |= P_EQ_IN;
  }
  if (has_in && slot[3] >= 0 && slot[0] < 0 && sqlite3_vtab_in(ix, slot[3], -1)) {
    sqlite3_vtab_in(ix, slot[3], 1);
    plan |= P_KEY_IN;
  }

  if (ix->nOrderBy > 0) {
    int col = ix->aOrderBy[0].iColumn;
    if (col == -1 || col == KVT_OFFSET) {
      /* offset is unique, so later ORDER BY terms change nothing. */
      if (ix->aOrderBy[0].desc) plan |= P_DESC;
      ix->orderByConsumed = 1;
    }
  }
  /* LIMIT and OFFSET stay SQLite's: SQLite 3.40 (Debian 12's) offers them
  ** while it hides a term comparing two columns of this table (key =
  ** value), and drops that term once the table takes them, so rows the
  ** WHERE clause excludes would come back. A literal LIMIT (looked at,
  ** not taken) only sizes the first read. */
  int64_t first_read = 0;
  for (int i = 0; has_in && i < ix->nConstraint; i++) {
    const struct sqlite3_index_constraint *c = &ix->aConstraint[i];
    sqlite3_value *v;
    if (!c->usable || (c->op != SQLITE_INDEX_CONSTRAINT_LIMIT && c->op != SQLITE_INDEX_CONSTRAINT_OFFSET) ||
        sqlite3_vtab_rhs_value(ix, i, &v) != SQLITE_OK || sqlite3_value_type(v) != SQLITE_INTEGER)
      continue;
    int64_t n = sqlite3_value_int64(v);
    if (n > 0) first_read += n < P_READ_MAX ? n : P_READ_MAX;
  }
  if (first_read > P_READ_MAX) first_read = P_READ_MAX;
  /* Columns beyond offset are read from the log; none asked, none read. */
  if ((ix->colUsed & ~((sqlite3_uint64)1 | (sqlite3_uint64)1 << KVT_WAIT |
                        (sqlite3_uint64)1 << KVT_CONSUMER)) == 0)
    plan |= P_NOLOG;

  int argc = 0;
  for (int k = 0; k < NSLOT; k++) {
    if (slot[k] < 0) continue;
    ix->aConstraintUsage[slot[k]].argvIndex = ++argc;
    ix->aConstraintUsage[slot[k]].omit = k == 4 || (k == 3 && text_key(vt)) ? 0 : 1;
  }

  double n = vt->est_rows > 1 ? (double)vt->est_rows : 1;
  double rows;
  if (plan & P_EQ) {
    rows = (plan & P_EQ_IN) ? 10 : 1;
    if (!(plan & P_EQ_IN)) ix->idxFlags |= SQLITE_INDEX_SCAN_UNIQUE;
  } else if (plan & P_KEY) {
    rows = (plan & P_KEY_IN) ? 50 : 10;
  } else {
    rows = n;
    if ((plan & P_LO) && (plan & P_HI)) rows = n / 20;
    else if (plan & (P_LO | P_HI)) rows = n / 4;
    if (plan & P_TIME) rows /= 4;
  }
  if (rows < 1) rows = 1;
  ix->estimatedRows = (sqlite3_int64)rows;
  ix->estimatedCost = (plan & (P_EQ | P_KEY)) ? rows * 2 : rows + 10;
  /* wait = ? can only be honoured as an argument: steer SQLite off plans
  ** that would leave it to be compared with the column. */
  if (wait_unusable || consumer_unusable) ix->estimatedCost *= 1e6;
  ix->idxNum = plan | (int)(first_read << P_READ_SHIFT);

  char reads[32] = "";
  if (first_read) snprintf(reads, sizeof(reads), " first read %d", (int)first_read);
  char *s = sqlite3_mprintf("%s%s%s%s%s%s%s%s%s%s",
      (plan & P_EQ) ? ((plan & P_EQ_IN) ? " offset IN (...)" : " offset=?") : "",
      (plan & P_LO) ? ((plan & P_LO_GT) ? " offset>?" : " offset>=?") : "",
      (plan & P_HI) ? ((plan & P_HI_LT) ? " offset<?" : " offset<=?") : "",
      (plan & P_KEY) ? ((plan & P_KEY_IN) ? " key IN (...)" : " key=?") : "",
      (plan & P_TIME) ? ((plan & P_TIME_GT) ? " time>? (start)" : " time>=? (start)") : "",
      (plan & P_DESC) ? " desc" : "",
      (plan & P_NOLOG) ? " offsets-only" : "",
      (plan & P_WAIT) ? " wait=?" : "", (plan & P_CONSUMER) ? " consumer=?" : "", reads);
  if (s && !*s) {
    sqlite3_free(s);
    s = sqlite3_mprintf("scan");
  } else if (s) {
    memmove(s, s + 1, strlen(s));
  }
  ix->idxStr = s;
  ix->needToFreeIdxStr = 1;
  return SQLITE_OK;
}

/* ---- the cursor ---- */

enum { M_SCAN, M_LIST };

typedef struct kvt_cursor {
  sqlite3_vtab_cursor base;
  kvt_vtab *vt;
  int plan;
  int mode;
  int64_t lo, hi;           /* inclusive offset bounds */
  kvt_buf key;              /* key = ? (encoded) */
  bool by_key;

  /* committed messages */
  klevdb_batch b;
  size_t bi;                /* next message of b */
  int64_t from;             /* where the next read of the store starts */
  bool store_done;
  size_t batch;             /* messages per read, grows */

  /* pending messages of the open transaction (snapshot at xFilter) */
  size_t pn;                /* rows visible */
  size_t pi;                /* next pending row (count done, in scan order) */

  /* M_LIST: offsets to fetch one by one, in scan order */
  int64_t *list;
  size_t nlist, ilist, listcap;
  bool key_rest;            /* newest by key returned: list the rest when asked */

  /* the current row */
  bool eof;
  bool cur_pending;
  klevdb_msg cur;
  klevdb_batch one;         /* holds single gets */

  int64_t returned;
  int64_t wait_ms;          /* wait = ? (-1: not given) */
  int64_t deadline;         /* CLOCK_MONOTONIC ms when the wait runs out */
  sqlite3_value *consumer;  /* consumer = ? as given (reads back as itself) */
} kvt_cursor;

int kvt_open(sqlite3_vtab *vtab, sqlite3_vtab_cursor **out) {
  kvt_cursor *c = sqlite3_malloc(sizeof(*c));
  if (!c) return SQLITE_NOMEM;
  memset(c, 0, sizeof(*c));
  c->vt = (kvt_vtab *)vtab;
  *out = &c->base;
  return SQLITE_OK;
}

static void cursor_reset(kvt_cursor *c) {
  sqlite3_value_free(c->consumer);
  c->consumer = NULL;
  klevdb_batch_free(&c->b);
  klevdb_batch_free(&c->one);
  kvt_buf_free(&c->key);
  sqlite3_free(c->list);
  c->list = NULL;
  c->nlist = c->ilist = c->listcap = 0;
  c->key_rest = false;
  c->bi = 0;
  c->pi = 0;
}

int kvt_close(sqlite3_vtab_cursor *cur) {
  kvt_cursor *c = (kvt_cursor *)cur;
  cursor_reset(c);
  sqlite3_free(c);
  return SQLITE_OK;
}

static bool key_match(const kvt_cursor *c, const klevdb_msg *m) {
  return m->key_len == c->key.len && (m->key_len == 0 || memcmp(m->key, c->key.p, m->key_len) == 0);
}

/* Next pending row in scan order that passes the plan, or false. */
static bool next_pending(kvt_cursor *c) {
  const kvt_vtab *vt = c->vt;
  bool desc = c->plan & P_DESC;
  while (c->pi < c->pn) {
    size_t i = desc ? c->pn - 1 - c->pi : c->pi;
    c->pi++;
    klevdb_msg m = kvt_pending_msg(vt->tx, i);
    if (m.offset < c->lo || m.offset > c->hi) continue;
    if (c->by_key && !key_match(c, &m)) continue;
    if (kvt_pending_deleted(vt, m.offset)) continue;
    c->cur = m;
    c->cur_pending = true;
    return true;
  }
  return false;
}

/* Refills c->b from the store; false when the store has no more. */
static int refill(kvt_cursor *c, bool *more) {
  kvt_vtab *vt = c->vt;
  bool desc = c->plan & P_DESC;
  *more = false;
  if (c->store_done) return SQLITE_OK;
  if (desc ? c->from < c->lo : c->from > c->hi) {
    c->store_done = true;
    return SQLITE_OK;
  }
  klevdb_err e;
  if (c->by_key)
    e = klevdb_consume_by_key(vt->kdb, c->key.p, c->key.len, c->from, c->batch, &c->b);
  else
    e = klevdb_read(vt->kdb, c->from, c->batch,
                    (desc ? KLEVDB_READ_BACKWARD : 0) | ((c->plan & P_NOLOG) ? KLEVDB_READ_OFFSETS : 0),
                    &c->b);
  if (e == KLEVDB_EINVALID_OFFSET && !desc) {
    /* Starting past the end: nothing to read. */
    c->store_done = true;
    return SQLITE_OK;
  }
  if (e != KLEVDB_OK) return core_error(vt, e);
  c->bi = 0;
  if (c->b.len == 0) {
    /* A key search looked up to the end: a wait looks for news there. */
    if (!desc && c->b.next_offset > c->from) c->from = c->b.next_offset;
    c->store_done = true;
    return SQLITE_OK;
  }
  if (c->batch < 256) c->batch *= 2;
  c->from = c->b.next_offset;
  *more = true;
  return SQLITE_OK;
}

/* Next committed row that passes the plan, or false. */
static int next_committed(kvt_cursor *c, bool *found) {
  bool desc = c->plan & P_DESC;
  *found = false;
  for (;;) {
    while (c->bi < c->b.len) {
      klevdb_msg *m = &c->b.msgs[c->bi++];
      if (desc ? m->offset < c->lo : m->offset > c->hi) {
        c->store_done = true;
        c->bi = c->b.len;
        return SQLITE_OK;
      }
      if (desc ? m->offset > c->hi : m->offset < c->lo) continue;
      if (kvt_pending_deleted(c->vt, m->offset)) continue;
      c->cur = *m;
      c->cur_pending = false;
      *found = true;
      return SQLITE_OK;
    }
    bool more;
    int rc = refill(c, &more);
    if (rc != SQLITE_OK || !more) return rc;
  }
}

/* Next row of an offset list (IN, key IN). */
static int next_listed(kvt_cursor *c, bool *found) {
  kvt_vtab *vt = c->vt;
  *found = false;
  while (c->ilist < c->nlist) {
    int64_t off = c->list[c->ilist++];
    if (off < c->lo || off > c->hi || kvt_pending_deleted(vt, off)) continue;
    if (vt->tx->n && off >= vt->tx->base) {
      size_t i = (size_t)(off - vt->tx->base);
      if (i >= c->pn) continue;
      klevdb_msg m = kvt_pending_msg(vt->tx, i);
      if (c->by_key && !key_match(c, &m)) continue;
      c->cur = m;
      c->cur_pending = true;
      *found = true;
      return SQLITE_OK;
    }
    klevdb_err e = klevdb_get(vt->kdb, off, &c->one);
    if (e == KLEVDB_ENOTFOUND || e == KLEVDB_EINVALID_OFFSET) continue;
    if (e != KLEVDB_OK) return core_error(vt, e);
    if (c->by_key && !key_match(c, &c->one.msgs[0])) continue;
    c->cur = c->one.msgs[0];
    c->cur_pending = false;
    *found = true;
    return SQLITE_OK;
  }
  return SQLITE_OK;
}

static int64_t now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* True once sqlite3_interrupt() was called for the running statement.
** SQLite 3.40 has no sqlite3_is_interrupted(), but its parser refuses to
** prepare while the connection is interrupted. */
static bool interrupted(sqlite3 *db) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db, "SELECT 0", -1, &st, NULL);
  sqlite3_finalize(st);
  return rc == SQLITE_INTERRUPT;
}

/* Blocks until a message at or after c->from may exist (*news), the wait
** runs out or the statement is interrupted. Waits in steps of at most
** 50 ms so that an interrupt ends it promptly; core holds no lock while
** it waits, so writers here and in other processes go on. */
static int wait_news(kvt_cursor *c, bool *news) {
  kvt_vtab *vt = c->vt;
  *news = false;
  for (;;) {
    int64_t left = c->deadline - now_ms();
    if (left <= 0) return SQLITE_OK;
    if (interrupted(vt->conn->db)) return SQLITE_INTERRUPT;
    int64_t next;
    klevdb_err e = klevdb_next_offset(vt->kdb, &next);
    if (e != KLEVDB_OK) return core_error(vt, e);
    /* Past the end, any publish is news to look at. */
    int64_t at = c->from < next ? c->from : next;
    e = klevdb_consume_blocking(vt->kdb, at, 1, left < 50 ? left : 50, &c->one);
    if (e == KLEVDB_ECLOSED) return SQLITE_OK;
    if (e == KLEVDB_EINVALID_OFFSET) {
      /* The log moved under us (trimmed, or a follower's stale view):
      ** look again shortly rather than spin. */
      struct timespec d = {0, 5000000};
      nanosleep(&d, NULL);
      continue;
    }
    if (e != KLEVDB_OK) return core_error(vt, e);
    if (c->one.len && c->one.msgs[c->one.len - 1].offset >= c->from) {
      *news = true;
      return SQLITE_OK;
    }
  }
}

static int collect_key(kvt_cursor *c);
static void list_sort(kvt_cursor *c);

/* Advances to the next row of the plan. */
static int step(kvt_cursor *c) {
  for (;;) {
    bool found = false;
    int rc = SQLITE_OK;
    if (c->mode == M_LIST) {
      rc = next_listed(c, &found);
      if (rc == SQLITE_OK && !found && c->key_rest) {
        /* Past the newest row by key: the older ones, looked up now. */
        c->key_rest = false;
        if ((rc = collect_key(c)) != SQLITE_OK) return rc;
        c->by_key = false;
        list_sort(c);
        continue;
      }
    } else if (c->plan & P_DESC) {
      found = next_pending(c);
      if (!found) rc = next_committed(c, &found);
    } else {
      rc = next_committed(c, &found);
      if (rc == SQLITE_OK && !found) found = next_pending(c);
    }
    if (rc != SQLITE_OK) return rc;
    /* wait = ?: a forward scan that has nothing to return yet and may
    ** still grow blocks for news, then reads on from where it stopped. */
    if (!found && c->wait_ms > 0 && c->returned == 0 && c->mode == M_SCAN &&
        !(c->plan & P_DESC) && c->from <= c->hi) {
      bool news;
      if ((rc = wait_news(c, &news)) != SQLITE_OK) return rc;
      if (news) {
        c->store_done = false;
        c->bi = c->b.len;
        continue;
      }
    }
    if (!found) {
      c->eof = true;
      return SQLITE_OK;
    }
    c->returned++;
    return SQLITE_OK;
  }
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static int list_add(kvt_cursor *c, int64_t off) {
  if (c->nlist == c->listcap) {
    size_t n = c->listcap ? c->listcap * 2 : 16;
    int64_t *l = sqlite3_realloc64(c->list, n * sizeof(int64_t));
    if (!l) return SQLITE_NOMEM;
    c->list = l;
    c->listcap = n;
  }
  c->list[c->nlist++] = off;
  return SQLITE_OK;
}

/* Sorts the list in scan order without duplicates. */
static void list_sort(kvt_cursor *c) {
  if (c->nlist == 0) return;
  qsort(c->list, c->nlist, sizeof(int64_t), cmp_i64);
  size_t k = 1;
  for (size_t i = 1; i < c->nlist; i++)
    if (c->list[i] != c->list[k - 1]) c->list[k++] = c->list[i];
  c->nlist = k;
  if (c->plan & P_DESC)
    for (size_t i = 0; i < k / 2; i++) {
      int64_t t = c->list[i];
      c->list[i] = c->list[k - 1 - i];
      c->list[k - 1 - i] = t;
    }
}

/* Every offset holding this key (committed and pending), into the list. */
static int collect_key(kvt_cursor *c) {
  kvt_vtab *vt = c->vt;
  int64_t at = c->lo;
  klevdb_batch b = KLEVDB_BATCH_INIT;
  int rc = SQLITE_OK;
  for (;;) {
    klevdb_err e = klevdb_consume_by_key(vt->kdb, c->key.p, c->key.len, at, 256, &b);
    if (e != KLEVDB_OK) {
      rc = core_error(vt, e);
      break;
    }
    for (size_t i = 0; i < b.len && rc == SQLITE_OK; i++)
      if (b.msgs[i].offset <= c->hi) rc = list_add(c, b.msgs[i].offset);
    if (rc != SQLITE_OK || b.len == 0 || b.next_offset <= at || b.next_offset > c->hi) break;
    at = b.next_offset;
  }
  klevdb_batch_free(&b);
  for (size_t i = 0; rc == SQLITE_OK && i < c->pn; i++) {
    klevdb_msg m = kvt_pending_msg(vt->tx, i);
    if (key_match(c, &m)) rc = list_add(c, m.offset);
  }
  return rc;
}

/* The offset an = or IN value stands for: an INTEGER, or a REAL with a
** whole value (4.0 = 4 in SQL). Anything else equals no offset. */
static bool whole_int(sqlite3_value *v, int64_t *out) {
  int t = sqlite3_value_numeric_type(v);
  if (t == SQLITE_INTEGER) {
    *out = sqlite3_value_int64(v);
    return true;
  }
  if (t != SQLITE_FLOAT) return false;
  double x = sqlite3_value_double(v);
  if (!(x >= -9.2e18 && x <= 9.2e18) || (double)(int64_t)x != x) return false;
  *out = (int64_t)x;
  return true;
}

/* False when the index could miss rows that SQLite finds equal to v
** (see text_key). */
static bool key_lookup_exact(const kvt_vtab *vt, sqlite3_value *v) {
  int t = sqlite3_value_type(v);
  return !text_key(vt) || (t != SQLITE_INTEGER && t != SQLITE_FLOAT);
}

/* True for -2^63 as a REAL (or a TEXT that reads as it): INTEGER affinity
** leaves it a REAL (SQLite converts neither extreme), yet SQL compares it
** equal to the INTEGER -9223372036854775808, so key = finds that key. */
static bool int64_min_real(sqlite3_value *v) {
  int t = sqlite3_value_type(v);
  if (t != SQLITE_FLOAT && t != SQLITE_TEXT) return false;
  sqlite3_value *d = sqlite3_value_dup(v);   /* converting changes it */
  bool r = d && sqlite3_value_numeric_type(d) == SQLITE_FLOAT &&
           sqlite3_value_double(d) == -9223372036854775808.0;
  sqlite3_value_free(d);
  return r;
}

/* Encodes a key = value for the lookup; false when no stored key can
** equal it: NULL, a value that SQLite's conversion for the key column
** leaves of another type than the codec reads back (a TEXT never equals
** a BLOB key), or an empty one (stored absent, it reads back NULL; only
** the string codec reads it as ''). */
static bool lookup_key(const kvt_vtab *vt, sqlite3_value *v, kvt_buf *out) {
  out->len = 0;
  if (vt->args.key == KVT_INTEGER && int64_min_real(v)) {
    uint8_t b[10];
    size_t n = klevdb_varint_encode(INT64_MIN, b);
    uint8_t *p = realloc(out->p, n);
    if (!p) return false;
    memcpy(p, b, n);
    out->p = p;
    out->len = out->cap = n;
    return true;
  }
  char *err = NULL;
  if (kvt_encode(vt->args.key, v, "key", out, &err) != SQLITE_OK) {
    sqlite3_free(err);
    return false;
  }
  return out->len > 0 || (vt->args.key == KVT_STRING && sqlite3_value_type(v) != SQLITE_NULL);
}

/* consumer = v: where its position says to start (*none: v is NULL, which
** equals nothing). */
static int consumer_start(kvt_cursor *c, sqlite3_value *v, int64_t *pos, bool *none) {
  kvt_vtab *vt = c->vt;
  *pos = 0;
  *none = sqlite3_value_type(v) == SQLITE_NULL;
  if (*none) return SQLITE_OK;
  /* The type first: sqlite3_value_text() would make a BLOB read as TEXT. */
  const char *name = sqlite3_value_type(v) == SQLITE_TEXT ? (const char *)sqlite3_value_text(v)
                                                          : NULL;
  if (!name || !*name)
    return kvt_error(vt, SQLITE_MISMATCH, "%s: consumer must be a non-empty TEXT name", vt->name);
  if (vt->args.opts.readonly)
    return kvt_error(vt, SQLITE_READONLY, "%s: table is read-only (readonly=1): it has no "
                     "consumers", vt->name);
  if (!(c->consumer = sqlite3_value_dup(v))) return SQLITE_NOMEM;
  return kvt_consumer_position(vt, name, pos);
}

int kvt_filter(sqlite3_vtab_cursor *cur, int plan, const char *idx, int argc,
                      sqlite3_value **argv) {
  (void)idx;
  (void)argc;
  kvt_cursor *c = (kvt_cursor *)cur;
  kvt_vtab *vt = c->vt;
  cursor_reset(c);
  /* The first read after a crash settles a batch it left in doubt. */
  int rrc = kvt_resolve(vt);
  if (rrc != SQLITE_OK) return rrc;
  size_t first_read = (size_t)(plan >> P_READ_SHIFT);
  plan &= (1 << P_READ_SHIFT) - 1;
  c->plan = plan;
  c->mode = M_SCAN;
  c->lo = 0;
  c->hi = INT64_MAX;
  c->by_key = false;
  c->store_done = false;
  c->eof = false;
  c->batch = first_read ? first_read : 16;
  c->returned = 0;
  c->pn = vt->tx->n;
  int a = 0, rc = SQLITE_OK;

  sqlite3_value *eq = (plan & P_EQ) ? argv[a++] : NULL;
  if (plan & P_LO) {
    sqlite3_value *v = argv[a++];
    int t = sqlite3_value_numeric_type(v);
    if (t == SQLITE_NULL) c->hi = -1;   /* compares false with everything */
    else if (t == SQLITE_INTEGER) {
      int64_t x = sqlite3_value_int64(v);
      c->lo = (plan & P_LO_GT) ? (x == INT64_MAX ? x : x + 1) : x;
      if ((plan & P_LO_GT) && x == INT64_MAX) c->hi = -1;
    } else if (t == SQLITE_FLOAT) {
      double x = sqlite3_value_double(v);
      if (x > 9.2e18) c->hi = -1;
      else if (x >= -9.2e18) {
        int64_t f = (int64_t)x;
        if ((double)f < x || ((plan & P_LO_GT) && (double)f == x)) f++;
        c->lo = f;
      }
    } else {
      c->hi = -1;   /* a TEXT or BLOB bound is above every INTEGER */
    }
  }
  if (plan & P_HI) {
    sqlite3_value *v = argv[a++];
    int t = sqlite3_value_numeric_type(v);
    if (t == SQLITE_NULL) c->hi = -1;
    else if (t == SQLITE_INTEGER) {
      int64_t x = sqlite3_value_int64(v);
      int64_t h = (plan & P_HI_LT) ? x - (x > INT64_MIN) : x;
      if ((plan & P_HI_LT) && x == INT64_MIN) c->hi = -1;
      else if (h < c->hi) c->hi = h;
    } else if (t == SQLITE_FLOAT) {
      double x = sqlite3_value_double(v);
      if (x < -9.2e18) c->hi = -1;
      else if (x <= 9.2e18) {
        int64_t f = (int64_t)x;
        if ((double)f > x || ((plan & P_HI_LT) && (double)f == x)) f--;
        if (f < c->hi) c->hi = f;
      }
    }
    /* TEXT/BLOB upper bounds are above every INTEGER: no limit. */
  }
  /* Offsets are never negative: a bound below 0 is no bound, and must
  ** not reach the store, where -1 and -2 mean newest and oldest. */
  if (c->lo < 0) c->lo = 0;
  sqlite3_value *keyv = (plan & P_KEY) ? argv[a++] : NULL;
  sqlite3_value *timev = (plan & P_TIME) ? argv[a++] : NULL;
  /* SQLite ranks every INTEGER below every TEXT, so "time >= 'ISO'"
  ** would quietly match nothing. */
  if (timev && sqlite3_value_numeric_type(timev) == SQLITE_TEXT)
    return kvt_error(vt, SQLITE_MISMATCH,
                     "%s: time is INTEGER microseconds; compare it with klevdb_time('%s')", vt->name,
                     (const char *)sqlite3_value_text(timev));
  c->wait_ms = -1;
  if (plan & P_WAIT) {
    sqlite3_value *v = argv[a++];
    int t = sqlite3_value_numeric_type(v);
    int64_t ms = 0;
    if (t != SQLITE_NULL) {
      if (!whole_int(v, &ms) || ms < 0)
        return kvt_error(vt, SQLITE_MISMATCH, "%s: wait must be a whole number of milliseconds >= 0",
                         vt->name);
      if (ms > 100LL * 366 * 24 * 3600 * 1000) ms = 100LL * 366 * 24 * 3600 * 1000;
      c->wait_ms = ms;
      c->deadline = now_ms() + ms;
    }
  }

  if (plan & P_CONSUMER) {
    int64_t pos;
    bool none;
    if ((rc = consumer_start(c, argv[a++], &pos, &none)) != SQLITE_OK) return rc;
    if (none) {
      c->eof = true;   /* consumer = NULL */
      return SQLITE_OK;
    }
    if (pos > c->lo) c->lo = pos;   /* the later start wins */
  }

  if (keyv && !key_lookup_exact(vt, keyv)) {
    keyv = NULL;   /* scan: SQLite checks the key */
  } else if (keyv && (plan & P_KEY_IN)) {
    sqlite3_value *v;
    for (rc = sqlite3_vtab_in_first(keyv, &v); rc == SQLITE_OK && v; rc = sqlite3_vtab_in_next(keyv, &v))
      if (!key_lookup_exact(vt, v)) break;
    if (rc != SQLITE_OK && rc != SQLITE_DONE) return rc;
    if (rc == SQLITE_OK) keyv = NULL;   /* a number in the list: scan */
    rc = SQLITE_OK;
  }
  if (keyv && !(plan & P_KEY_IN)) {
    if (!lookup_key(vt, keyv, &c->key)) {
      c->eof = true;
      return SQLITE_OK;
    }
    c->by_key = true;
  }

  if (eq) {
    c->mode = M_LIST;
    if (plan & P_EQ_IN) {
      sqlite3_value *v;
      int64_t o;
      for (rc = sqlite3_vtab_in_first(eq, &v); rc == SQLITE_OK && v; rc = sqlite3_vtab_in_next(eq, &v))
        if (whole_int(v, &o) && (rc = list_add(c, o)) != SQLITE_OK) break;
      if (rc == SQLITE_DONE) rc = SQLITE_OK;
    } else {
      int64_t o;
      if (whole_int(eq, &o)) rc = list_add(c, o);
    }
    if (rc != SQLITE_OK) return rc;
    list_sort(c);
  } else if (keyv && (plan & P_KEY_IN)) {
    c->mode = M_LIST;
    sqlite3_value *v;
    for (rc = sqlite3_vtab_in_first(keyv, &v); rc == SQLITE_OK && v; rc = sqlite3_vtab_in_next(keyv, &v)) {
      if (!lookup_key(vt, v, &c->key)) continue;
      if ((rc = collect_key(c)) != SQLITE_OK) break;
    }
    if (rc == SQLITE_DONE) rc = SQLITE_OK;
    if (rc != SQLITE_OK) return rc;
    c->by_key = false;   /* the list holds only matching offsets */
    list_sort(c);
  } else if (c->by_key && (plan & P_DESC)) {
    /* Newest first by key: the first row is one get by key (the usual
    ** LIMIT 1), the list of older matches is made only if SQLite asks
    ** for a second row. */
    if (c->hi == INT64_MAX) {
      bool found = false;
      for (size_t i = c->pn; i-- > 0 && !found;) {
        klevdb_msg m = kvt_pending_msg(vt->tx, i);
        if (key_match(c, &m) && !kvt_pending_deleted(vt, m.offset) && m.offset >= c->lo) {
          c->cur = m;
          c->cur_pending = true;
          found = true;
        }
      }
      if (!found) {
        /* The store's own gets by key look for other processes' publishes
        ** only every few ms; a query sees all that came before it. */
        int64_t next;
        klevdb_err e = klevdb_next_offset(vt->kdb, &next);
        if (e == KLEVDB_OK) e = klevdb_get_by_key(vt->kdb, c->key.p, c->key.len, &c->one);
        if (e == KLEVDB_ENOTFOUND) {
          c->eof = true;
          return SQLITE_OK;
        }
        if (e != KLEVDB_OK) return core_error(vt, e);
        c->cur = c->one.msgs[0];
        c->cur_pending = false;
        found = c->cur.offset >= c->lo && !kvt_pending_deleted(vt, c->cur.offset);
        if (!found) {
          /* Deleted in this transaction or below the bound: the long way. */
          klevdb_batch_free(&c->one);
          goto listed;
        }
      }
      c->returned = 1;
      c->mode = M_LIST;
      c->key_rest = true;
      c->hi = c->cur.offset - 1;
      return SQLITE_OK;
    }
  listed:
    c->mode = M_LIST;
    if ((rc = collect_key(c)) != SQLITE_OK) return rc;
    c->by_key = false;
    list_sort(c);
  } else {
    if (timev && !(plan & P_DESC)) {
      int64_t t;
      char *err = NULL;
      if (kvt_parse_time(timev, &t, &err) == SQLITE_OK) {
        int64_t start;
        if ((plan & P_TIME_GT) && t < INT64_MAX) t++;
        if (klevdb_time_floor(vt->kdb, t, &start) == KLEVDB_OK && start > c->lo) c->lo = start;
      }
      sqlite3_free(err);
    }
    /* Backwards from past the end starts at the newest message. */
    c->from = (plan & P_DESC) ? c->hi : c->lo;
    if (c->lo > c->hi) {
      c->eof = true;
      return SQLITE_OK;
    }
  }
  return step(c);
}

/* A forward scan within the batch it holds, with no DELETE pending in
** the transaction, is most calls: it needs none of step()'s cases. */
int kvt_next(sqlite3_vtab_cursor *cur) {
  kvt_cursor *c = (kvt_cursor *)cur;
  if (c->mode == M_SCAN && !(c->plan & P_DESC) && !c->cur_pending && c->bi < c->b.len &&
      c->vt->tx->ndels == 0) {
    const klevdb_msg *m = &c->b.msgs[c->bi];
    if (m->offset >= c->lo && m->offset <= c->hi) {
      c->bi++;
      c->cur = *m;
      c->returned++;
      return SQLITE_OK;
    }
  }
  return step(c);
}

int kvt_eof(sqlite3_vtab_cursor *cur) { return ((kvt_cursor *)cur)->eof; }

int kvt_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int col) {
  kvt_cursor *c = (kvt_cursor *)cur;
  const klevdb_msg *m = &c->cur;
  switch (col) {
  case KVT_OFFSET:
    sqlite3_result_int64(ctx, m->offset);
    break;
  case KVT_TIME:
    if (m->time == KLEVDB_TIME_UNSET) sqlite3_result_null(ctx);
    else sqlite3_result_int64(ctx, m->time);
    break;
  case KVT_KEY:
    kvt_result(ctx, c->vt->args.key, m->key, m->key_len);
    break;
  case KVT_VALUE:
    kvt_result(ctx, c->vt->args.value, m->value, m->value_len);
    break;
  case KVT_WAIT:
    if (c->wait_ms >= 0) sqlite3_result_int64(ctx, c->wait_ms);
    else sqlite3_result_null(ctx);
    break;
  case KVT_CONSUMER:
    if (c->consumer) sqlite3_result_value(ctx, c->consumer);
    else sqlite3_result_null(ctx);
    break;
  }
  return SQLITE_OK;
}

int kvt_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *rowid) {
  *rowid = ((kvt_cursor *)cur)->cur.offset;
  return SQLITE_OK;
}

int kvt_rename(sqlite3_vtab *vtab, const char *name) {
  kvt_vtab *vt = (kvt_vtab *)vtab;
  char *n = sqlite3_mprintf("%s", name);
  if (!n) return SQLITE_NOMEM;
  /* The shadow table follows (a table made before it has none). */
  char *sql = sqlite3_mprintf("SELECT 1 FROM \"%w\".sqlite_master WHERE type = 'table' AND "
                              "name = '%q_klevdb'", vt->schema, vt->name);
  sqlite3_stmt *st = NULL;
  int rc = sql ? sqlite3_prepare_v2(vt->conn->db, sql, -1, &st, NULL) : SQLITE_NOMEM;
  sqlite3_free(sql);
  bool has = rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW;
  sqlite3_finalize(st);
  if (rc == SQLITE_OK && has) {
    sql = sqlite3_mprintf("ALTER TABLE \"%w\".\"%w_klevdb\" RENAME TO \"%w_klevdb\"", vt->schema,
                          vt->name, name);
    rc = sql ? sqlite3_exec(vt->conn->db, sql, NULL, NULL, NULL) : SQLITE_NOMEM;
    sqlite3_free(sql);
  }
  /* The consumers' positions follow too; the kept lookup named the old one. */
  kvt_consumers_close(vt);
  if (rc == SQLITE_OK) {
    sql = sqlite3_mprintf("SELECT 1 FROM \"%w\".sqlite_master WHERE type = 'table' AND "
                          "name = '%q_consumers'", vt->schema, vt->name);
    st = NULL;
    rc = sql ? sqlite3_prepare_v2(vt->conn->db, sql, -1, &st, NULL) : SQLITE_NOMEM;
    sqlite3_free(sql);
    has = rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    if (rc == SQLITE_OK && has) {
      sql = sqlite3_mprintf("ALTER TABLE \"%w\".\"%w_consumers\" RENAME TO \"%w_consumers\"",
                            vt->schema, vt->name, name);
      rc = sql ? sqlite3_exec(vt->conn->db, sql, NULL, NULL, NULL) : SQLITE_NOMEM;
      sqlite3_free(sql);
    }
  }
  if (rc != SQLITE_OK) {
    sqlite3_free(n);
    return rc;
  }
  sqlite3_free(vt->name);
  vt->name = n;
  return SQLITE_OK;
}
