/*
** consumers.c - named consumers of a klevdb table: their positions in the
** shadow table <table>_consumers of the table's own database (so that they
** commit and roll back with the consumer's results), the functions that
** move them and klevdb_consumers(table), which shows each one's lag.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kvt.h"

/* ---- the shadow table ---- */

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A table made before consumers existed has no shadow table: that is "no
** consumers", not an error. */
static bool no_such_table(sqlite3 *db) {
  return strstr(sqlite3_errmsg(db), "no such table") != NULL;
}

int kvt_consumers_create(kvt_vtab *vt) {
  char *sql = sqlite3_mprintf("CREATE TABLE IF NOT EXISTS \"%w\".\"%w_consumers\"(name TEXT "
                              "PRIMARY KEY, position INTEGER NOT NULL, committed_at INTEGER "
                              "NOT NULL) WITHOUT ROWID", vt->schema, vt->name);
  if (!sql) return SQLITE_NOMEM;
  char *err = NULL;
  int rc = sqlite3_exec(vt->conn->db, sql, NULL, NULL, &err);
  sqlite3_free(sql);
  if (rc != SQLITE_OK)
    kvt_error(vt, rc, "table %s: cannot make its consumers table: %s", vt->name,
              err ? err : sqlite3_errstr(rc));
  sqlite3_free(err);
  return rc;
}

void kvt_consumers_close(kvt_vtab *vt) {
  sqlite3_finalize(vt->pos_stmt);
  sqlite3_finalize(vt->put_stmt);
  vt->pos_stmt = vt->put_stmt = NULL;
}

/* Prepares sql on the table's shadow table; *st NULL (and SQLITE_OK)
** when the shadow table does not exist. */
static int prepare(kvt_vtab *vt, const char *fmt, sqlite3_stmt **st, unsigned flags) {
  *st = NULL;
  char *sql = sqlite3_mprintf(fmt, vt->schema, vt->name);
  if (!sql) return SQLITE_NOMEM;
  int rc = sqlite3_prepare_v3(vt->conn->db, sql, -1, flags, st, NULL);
  sqlite3_free(sql);
  if (rc == SQLITE_OK) return SQLITE_OK;
  if (no_such_table(vt->conn->db)) return SQLITE_OK;
  return kvt_error(vt, rc, "table %s: %s", vt->name, sqlite3_errmsg(vt->conn->db));
}

/* One lookup by primary key, with a statement the table keeps: reading
** by consumer costs what reading by offset does, plus this. */
static int position(kvt_vtab *vt, const char *name, int64_t *pos, bool *found) {
  *pos = 0;
  *found = false;
  if (!vt->pos_stmt) {
    int rc = prepare(vt, "SELECT position FROM \"%w\".\"%w_consumers\" WHERE name = ?1",
                     &vt->pos_stmt, SQLITE_PREPARE_PERSISTENT);
    if (rc != SQLITE_OK || !vt->pos_stmt) return rc;
  }
  sqlite3_stmt *st = vt->pos_stmt;
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *pos = sqlite3_column_int64(st, 0);
    *found = true;
    rc = SQLITE_OK;
  } else if (rc == SQLITE_DONE) {
    rc = SQLITE_OK;
  }
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  if (rc != SQLITE_OK) {
    kvt_error(vt, rc, "table %s: %s", vt->name, sqlite3_errmsg(vt->conn->db));
    kvt_consumers_close(vt);   /* prepared anew next time */
  }
  return rc;
}

int kvt_consumer_position(kvt_vtab *vt, const char *name, int64_t *pos) {
  bool found;
  return position(vt, name, pos, &found);
}

int kvt_consumers_min(kvt_vtab *vt, int64_t *min, bool *any) {
  sqlite3_stmt *st;
  *any = false;
  *min = 0;
  int rc = prepare(vt, "SELECT min(position), count(*) FROM \"%w\".\"%w_consumers\"", &st, 0);
  if (rc != SQLITE_OK || !st) return rc;
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *any = sqlite3_column_int64(st, 1) > 0;
    *min = sqlite3_column_int64(st, 0);
    rc = SQLITE_OK;
  } else {
    kvt_error(vt, rc, "table %s: %s", vt->name, sqlite3_errmsg(vt->conn->db));
  }
  sqlite3_finalize(st);
  return rc;
}

/* Sets name's position in the caller's transaction: one row written, with
** a statement the table keeps (a commit is one statement of the caller). */
static int write_position(kvt_vtab *vt, const char *name, int64_t pos) {
  static const char fmt[] = "INSERT OR REPLACE INTO \"%w\".\"%w_consumers\"(name, position, "
                            "committed_at) VALUES(?1, ?2, ?3)";
  int rc = SQLITE_OK;
  if (!vt->put_stmt) {
    rc = prepare(vt, fmt, &vt->put_stmt, SQLITE_PREPARE_PERSISTENT);
    if (rc == SQLITE_OK && !vt->put_stmt && (rc = kvt_consumers_create(vt)) == SQLITE_OK) {
      rc = prepare(vt, fmt, &vt->put_stmt, SQLITE_PREPARE_PERSISTENT);
      if (rc == SQLITE_OK && !vt->put_stmt)
        rc = kvt_error(vt, SQLITE_ERROR, "table %s: no consumers table", vt->name);
    }
    if (rc != SQLITE_OK) return rc;
  }
  sqlite3_stmt *st = vt->put_stmt;
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, pos);
  sqlite3_bind_int64(st, 3, now_us());
  rc = sqlite3_step(st);
  rc = rc == SQLITE_DONE ? SQLITE_OK : kvt_error(vt, rc, "table %s: %s", vt->name,
                                                   sqlite3_errmsg(vt->conn->db));
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  if (rc != SQLITE_OK) kvt_consumers_close(vt);   /* prepared anew next time */
  return rc;
}

/* ---- lag ---- */

/* The first message at or after pos (*has false if none). */
static int first_at(kvt_vtab *vt, int64_t pos, int64_t *time, bool *has) {
  klevdb_batch b = KLEVDB_BATCH_INIT;
  int rc = SQLITE_OK;
  *has = false;
  for (int64_t at = pos;;) {
    klevdb_err e = klevdb_consume(vt->kdb, at, 1, &b);
    if (e == KLEVDB_EINVALID_OFFSET) break;   /* past the end */
    if (e != KLEVDB_OK) {
      rc = kvt_error(vt, kvt_rc(e), "%s", klevdb_errmsg(vt->kdb));
      break;
    }
    if (b.len) {
      *time = b.msgs[0].time;
      *has = true;
      break;
    }
    if (b.next_offset <= at) break;
    at = b.next_offset;
  }
  klevdb_batch_free(&b);
  return rc;
}

/* Messages still in the store at or after pos, and their bytes: the
** segments after the one holding pos count whole, as klevdb_stat counts
** their files; in the one holding pos each message is read and counted by
** klevdb_size. The committed store: the end is its next offset. */
static int lag_of(kvt_vtab *vt, const klevdb_segment_info *sg, size_t nsg, int64_t pos,
                  int64_t *lag, int64_t *bytes) {
  *lag = *bytes = 0;
  size_t k = nsg;   /* the segment holding pos; nsg: before them all */
  for (size_t i = 0; i < nsg && sg[i].base <= pos; i++) k = i;
  for (size_t i = k == nsg ? 0 : k + 1; i < nsg; i++) {
    *lag += sg[i].messages;
    *bytes += sg[i].bytes;
  }
  if (k == nsg) return SQLITE_OK;
  int64_t end = k + 1 < nsg ? sg[k + 1].base : INT64_MAX;
  klevdb_batch b = KLEVDB_BATCH_INIT;
  int rc = SQLITE_OK;
  for (int64_t at = pos; at < end;) {
    klevdb_err e = klevdb_consume(vt->kdb, at, 256, &b);
    if (e == KLEVDB_EINVALID_OFFSET) break;
    if (e != KLEVDB_OK) {
      rc = kvt_error(vt, kvt_rc(e), "%s", klevdb_errmsg(vt->kdb));
      break;
    }
    size_t i = 0;
    for (; i < b.len && b.msgs[i].offset < end; i++) {
      *lag += 1;
      *bytes += klevdb_size(vt->kdb, &b.msgs[i]);
    }
    if (b.len == 0 || i < b.len || b.next_offset <= at) break;
    at = b.next_offset;
  }
  klevdb_batch_free(&b);
  return rc;
}

/* ---- klevdb_stat's part ---- */

/* Appends s to a JSON text as a string. */
static void json_str(sqlite3_str *o, const char *s) {
  sqlite3_str_appendchar(o, 1, '"');
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') sqlite3_str_appendf(o, "\\%c", c);
    else if (c < 0x20) sqlite3_str_appendf(o, "\\u%04x", c);
    else sqlite3_str_appendchar(o, 1, (char)c);
  }
  sqlite3_str_appendchar(o, 1, '"');
}

char *kvt_stat_extra(kvt_vtab *vt, int *rc) {
  sqlite3_str *o = sqlite3_str_new(vt->conn->db);
  sqlite3_stmt *st = NULL;
  klevdb_segment_info *sg = NULL;
  size_t nsg = 0;
  *rc = prepare(vt, "SELECT name, position, committed_at FROM \"%w\".\"%w_consumers\" "
                    "ORDER BY name", &st, 0);
  int n = 0;
  while (*rc == SQLITE_OK && st && sqlite3_step(st) == SQLITE_ROW) {
    if (n == 0) {
      klevdb_err e = klevdb_segments_get(vt->kdb, &sg, &nsg);
      if (e != KLEVDB_OK) {
        *rc = kvt_error(vt, kvt_rc(e), "%s", klevdb_errmsg(vt->kdb));
        break;
      }
    }
    int64_t pos = sqlite3_column_int64(st, 1), lag, bytes;
    if ((*rc = lag_of(vt, sg, nsg, pos, &lag, &bytes)) != SQLITE_OK) break;
    sqlite3_str_appendall(o, n++ ? "," : ",\"consumers\":[");
    sqlite3_str_appendall(o, "{\"name\":");
    json_str(o, (const char *)sqlite3_column_text(st, 0));
    sqlite3_str_appendf(o, ",\"position\":%lld,\"lag\":%lld,\"lag_bytes\":%lld}", (long long)pos,
                        (long long)lag, (long long)bytes);
  }
  if (n) sqlite3_str_appendall(o, "]");
  sqlite3_finalize(st);
  free(sg);
  if (*rc == SQLITE_OK) {
    char *r = kvt_retention_json(vt, rc);
    if (r) sqlite3_str_appendall(o, r);
    sqlite3_free(r);
  }
  if (*rc == SQLITE_OK) *rc = sqlite3_str_errcode(o);
  char *s = sqlite3_str_finish(o);   /* NULL when empty */
  if (*rc != SQLITE_OK) {
    sqlite3_free(s);
    return NULL;
  }
  return s;
}

/* ---- the functions ---- */

static void fn_fail(sqlite3_context *ctx, int rc, char *msg) {
  if (!msg) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  sqlite3_result_error(ctx, msg, -1);
  sqlite3_result_error_code(ctx, rc);
  sqlite3_free(msg);
}

/* The table's own error (kvt_error) as the function's. */
static void vt_fail(sqlite3_context *ctx, const char *fn, kvt_vtab *vt, int rc) {
  const char *m = vt->base.zErrMsg ? vt->base.zErrMsg : sqlite3_errstr(rc);
  if (strncmp(m, "klevdb: ", 8) == 0) m += 8;
  fn_fail(ctx, rc, sqlite3_mprintf("klevdb: %s: %s", fn, m));
}

/* The table, and a consumer name; a table that can write positions. */
static kvt_vtab *args(sqlite3_context *ctx, const char *fn, sqlite3_value **argv,
                      const char **name) {
  int rc;
  char *err;
  kvt_vtab *vt = kvt_table_named(sqlite3_context_db_handle(ctx), sqlite3_user_data(ctx), fn,
                                 argv[0], &rc, &err);
  if (!vt) {
    fn_fail(ctx, rc, err);
    return NULL;
  }
  /* The type first: sqlite3_value_text() would make a BLOB read as TEXT. */
  *name = sqlite3_value_type(argv[1]) == SQLITE_TEXT ? (const char *)sqlite3_value_text(argv[1])
                                                      : NULL;
  if (!*name || !**name) {
    fn_fail(ctx, SQLITE_MISMATCH,
            sqlite3_mprintf("klevdb: %s: consumer must be a non-empty TEXT name", fn));
    return NULL;
  }
  if (vt->args.opts.readonly) {
    fn_fail(ctx, SQLITE_READONLY, sqlite3_mprintf("klevdb: %s: table %s is read-only "
                                                  "(readonly=1): it has no consumers", fn,
                                                  vt->name));
    return NULL;
  }
  return vt;
}

/* The end of the table as this connection sees it: the next offset,
** counting the rows its open transaction inserted. */
static int table_end(kvt_vtab *vt, int64_t *end) {
  if (vt->tx->locked) {
    *end = vt->tx->base + (int64_t)vt->tx->n;
    return SQLITE_OK;
  }
  klevdb_err e = klevdb_next_offset(vt->kdb, end);
  return e == KLEVDB_OK ? SQLITE_OK : kvt_error(vt, kvt_rc(e), "%s", klevdb_errmsg(vt->kdb));
}

/* klevdb_commit(table, consumer, next): the consumer has read everything
** before next; forward only, at most to the end. */
static void fn_commit(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  static const char fn[] = "klevdb_commit";
  const char *name;
  kvt_vtab *vt = args(ctx, fn, argv, &name);
  if (!vt) return;
  if (sqlite3_value_type(argv[2]) != SQLITE_INTEGER) {
    fn_fail(ctx, SQLITE_MISMATCH, sqlite3_mprintf("klevdb: %s: next must be an INTEGER offset "
                                                  "(the next one to read)", fn));
    return;
  }
  int64_t next = sqlite3_value_int64(argv[2]), cur, end;
  if (next < 0) {
    fn_fail(ctx, SQLITE_ERROR, sqlite3_mprintf("klevdb: %s: next must be >= 0", fn));
    return;
  }
  int rc = kvt_consumer_position(vt, name, &cur);
  if (rc == SQLITE_OK) rc = table_end(vt, &end);
  if (rc != SQLITE_OK) {
    vt_fail(ctx, fn, vt, rc);
    return;
  }
  if (next > end) {
    fn_fail(ctx, SQLITE_ERROR, sqlite3_mprintf("klevdb: %s: %lld is past the end of %s (its "
                                               "next offset is %lld)", fn, (long long)next,
                                               vt->name, (long long)end));
    return;
  }
  if (next < cur) {
    fn_fail(ctx, SQLITE_ERROR, sqlite3_mprintf("klevdb: %s: consumer '%s' is at %lld: %lld "
                                               "would move it backwards (klevdb_reset does "
                                               "that)", fn, name, (long long)cur,
                                               (long long)next));
    return;
  }
  if ((rc = write_position(vt, name, next)) != SQLITE_OK) {
    vt_fail(ctx, fn, vt, rc);
    return;
  }
  sqlite3_result_int64(ctx, next);
}

/* The offset a reset to time t means: the first message at or after it
** that the transaction sees, the end if there is none. klevdb_time_floor
** says where to look, not what is there: the index clamps times before
** 1970 to 0 (docs/format.md), so for t <= 0 older messages may follow it,
** and this transaction may have deleted the one it finds. A table without
** the time index reads from the oldest message, as "time >=" does. */
static int reset_time(kvt_vtab *vt, int64_t t, int64_t *pos) {
  klevdb_err e = klevdb_time_floor(vt->kdb, t, pos);
  if (e == KLEVDB_ENOINDEX) {
    *pos = KLEVDB_OFFSET_OLDEST;
    e = KLEVDB_OK;
  }
  klevdb_batch b = KLEVDB_BATCH_INIT;
  bool found = false;
  for (int64_t at = *pos; e == KLEVDB_OK && !found;) {
    e = klevdb_consume(vt->kdb, at, 64, &b);
    if (e == KLEVDB_EINVALID_OFFSET) {
      e = KLEVDB_OK;   /* past the end */
      break;
    }
    for (size_t i = 0; e == KLEVDB_OK && i < b.len && !found; i++) {
      if (b.msgs[i].time < t || kvt_pending_deleted(vt, b.msgs[i].offset)) continue;
      *pos = b.msgs[i].offset;
      found = true;
    }
    if (e != KLEVDB_OK || found || b.next_offset <= at) break;
    at = b.next_offset;
  }
  klevdb_batch_free(&b);
  if (e == KLEVDB_OK && !found) e = klevdb_next_offset(vt->kdb, pos);
  if (e != KLEVDB_OK) return kvt_error(vt, kvt_rc(e), "%s", klevdb_errmsg(vt->kdb));
  const kvt_pending *tx = vt->tx;
  if (tx->locked && *pos >= tx->base) {
    /* None committed is that new: maybe one of this transaction's rows. */
    size_t i = 0;
    while (i < tx->n && (tx->rows[i].time < t || kvt_pending_deleted(vt, tx->base + (int64_t)i))) i++;
    *pos = tx->base + (int64_t)i;
  }
  return SQLITE_OK;
}

/* The oldest message the transaction sees, the end if none: with its
** deletes, the committed oldest may be gone (then the offsets are read
** past them, from the index only). */
static int table_oldest(kvt_vtab *vt, int64_t *oldest) {
  const kvt_pending *tx = vt->tx;
  klevdb_bounds bd;
  klevdb_err e = klevdb_bounds_get(vt->kdb, &bd);
  if (e != KLEVDB_OK) return kvt_error(vt, kvt_rc(e), "%s", klevdb_errmsg(vt->kdb));
  *oldest = bd.oldest_offset >= 0 ? bd.oldest_offset : bd.next_offset;
  if (!tx->locked || tx->ndels == 0) return SQLITE_OK;
  klevdb_batch b = KLEVDB_BATCH_INIT;
  bool found = false;
  for (int64_t at = *oldest; e == KLEVDB_OK && !found;) {
    e = klevdb_read(vt->kdb, at, 256, KLEVDB_READ_OFFSETS, &b);
    if (e == KLEVDB_EINVALID_OFFSET) {
      e = KLEVDB_OK;   /* past the end */
      break;
    }
    for (size_t i = 0; e == KLEVDB_OK && i < b.len && !found; i++) {
      if (kvt_pending_deleted(vt, b.msgs[i].offset)) continue;
      *oldest = b.msgs[i].offset;
      found = true;
    }
    if (e != KLEVDB_OK || found || b.next_offset <= at) break;
    at = b.next_offset;
  }
  klevdb_batch_free(&b);
  if (e != KLEVDB_OK) return kvt_error(vt, kvt_rc(e), "%s", klevdb_errmsg(vt->kdb));
  if (!found) {
    size_t i = 0;
    while (i < tx->n && kvt_pending_deleted(vt, tx->base + (int64_t)i)) i++;
    *oldest = tx->base + (int64_t)i;
  }
  return SQLITE_OK;
}

/* klevdb_reset(table, consumer, to): to an offset (from the oldest
** message to the end), 'oldest', 'end' or the first message at or after
** an ISO-8601 time. Makes the consumer if it is new. */
static void fn_reset(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  static const char fn[] = "klevdb_reset";
  const char *name;
  kvt_vtab *vt = args(ctx, fn, argv, &name);
  if (!vt) return;
  int64_t end = 0, oldest = 0, pos;
  int rc = table_end(vt, &end);
  if (rc == SQLITE_OK) rc = table_oldest(vt, &oldest);
  if (rc != SQLITE_OK) {
    vt_fail(ctx, fn, vt, rc);
    return;
  }
  int t = sqlite3_value_type(argv[2]);
  const char *s = (const char *)sqlite3_value_text(argv[2]);
  if (t == SQLITE_INTEGER) {
    pos = sqlite3_value_int64(argv[2]);
    if (pos < oldest || pos > end) {
      fn_fail(ctx, SQLITE_ERROR, sqlite3_mprintf("klevdb: %s: offset %lld is outside %s (from "
                                                 "its oldest message, %lld, to its end, %lld)",
                                                 fn, (long long)pos, vt->name,
                                                 (long long)oldest, (long long)end));
      return;
    }
  } else if (t == SQLITE_TEXT && s && sqlite3_stricmp(s, "oldest") == 0) {
    pos = oldest;
  } else if (t == SQLITE_TEXT && s && sqlite3_stricmp(s, "end") == 0) {
    pos = end;
  } else {
    /* ISO-8601 only: a number in TEXT ('5') is not read as microseconds,
    ** as a time column would, since an INTEGER here is an offset. */
    int64_t when;
    if (t != SQLITE_TEXT || !s ||
        klevdb_parse_time(s, (size_t)sqlite3_value_bytes(argv[2]), &when) != 0) {
      fn_fail(ctx, SQLITE_MISMATCH, sqlite3_mprintf("klevdb: %s: to must be an INTEGER offset, "
                                                    "'oldest', 'end' or an ISO-8601 time", fn));
      return;
    }
    if ((rc = reset_time(vt, when, &pos)) != SQLITE_OK) {
      vt_fail(ctx, fn, vt, rc);
      return;
    }
  }
  if ((rc = write_position(vt, name, pos)) != SQLITE_OK) {
    vt_fail(ctx, fn, vt, rc);
    return;
  }
  sqlite3_result_int64(ctx, pos);
}

/* klevdb_consumer_drop(table, consumer): forgets it (an abandoned
** consumer holds keep_unconsumed retention back); its last position. */
static void fn_drop(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  static const char fn[] = "klevdb_consumer_drop";
  const char *name;
  kvt_vtab *vt = args(ctx, fn, argv, &name);
  if (!vt) return;
  int64_t pos;
  bool found;
  int rc = position(vt, name, &pos, &found);
  if (rc != SQLITE_OK) {
    vt_fail(ctx, fn, vt, rc);
    return;
  }
  if (!found) {
    fn_fail(ctx, SQLITE_ERROR, sqlite3_mprintf("klevdb: %s: table %s has no consumer '%s'", fn,
                                               vt->name, name));
    return;
  }
  sqlite3_stmt *st;
  rc = prepare(vt, "DELETE FROM \"%w\".\"%w_consumers\" WHERE name = ?1", &st, 0);
  if (rc == SQLITE_OK && st) {
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : kvt_error(vt, sqlite3_errcode(vt->conn->db),
                                                                 "%s", sqlite3_errmsg(vt->conn->db));
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_OK) {
    vt_fail(ctx, fn, vt, rc);
    return;
  }
  sqlite3_result_int64(ctx, pos);
}

/* ---- klevdb_consumers(table): one row per consumer ---- */

enum { CC_NAME, CC_POSITION, CC_LAG, CC_LAG_BYTES, CC_OLDEST_TIME, CC_COMMITTED_AT, CC_TABLE };

typedef struct cons_row {
  char *name;
  int64_t position, lag, lag_bytes, oldest_time, committed_at;
  bool has_time;
} cons_row;

typedef struct cons_vtab {
  sqlite3_vtab base;
  sqlite3 *db;
  kvt_conn *conn;
} cons_vtab;

typedef struct cons_cursor {
  sqlite3_vtab_cursor base;
  cons_row *rows;
  size_t n, i;
  sqlite3_value *table;
} cons_cursor;

static int cons_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                        sqlite3_vtab **out, char **err) {
  (void)argc;
  (void)argv;
  (void)err;
  int rc = sqlite3_declare_vtab(db, "CREATE TABLE x(name TEXT, position INTEGER, lag INTEGER, "
                                    "lag_bytes INTEGER, oldest_unconsumed_time INTEGER, "
                                    "committed_at INTEGER, table_name HIDDEN)");
  if (rc != SQLITE_OK) return rc;
  cons_vtab *v = sqlite3_malloc(sizeof(*v));
  if (!v) return SQLITE_NOMEM;
  memset(v, 0, sizeof(*v));
  v->db = db;
  v->conn = aux;
  sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
  *out = &v->base;
  return SQLITE_OK;
}

static int cons_disconnect(sqlite3_vtab *vt) {
  sqlite3_free(vt);
  return SQLITE_OK;
}

static int cons_best_index(sqlite3_vtab *vt, sqlite3_index_info *info) {
  int arg = -1;
  bool unusable = false;
  for (int i = 0; i < info->nConstraint; i++) {
    const struct sqlite3_index_constraint *c = &info->aConstraint[i];
    if (c->iColumn != CC_TABLE || c->op != SQLITE_INDEX_CONSTRAINT_EQ) continue;
    if (c->usable) arg = i;
    else unusable = true;
  }
  if (arg < 0) {
    if (unusable) return SQLITE_CONSTRAINT;
    sqlite3_free(vt->zErrMsg);
    vt->zErrMsg = sqlite3_mprintf("klevdb: klevdb_consumers: a table is required, as in "
                                  "klevdb_consumers('events')");
    return vt->zErrMsg ? SQLITE_ERROR : SQLITE_NOMEM;
  }
  info->aConstraintUsage[arg].argvIndex = 1;
  info->aConstraintUsage[arg].omit = 1;
  info->idxNum = 1;
  info->estimatedCost = 100;
  info->estimatedRows = 10;
  return SQLITE_OK;
}

static void cons_reset(cons_cursor *c) {
  for (size_t i = 0; i < c->n; i++) sqlite3_free(c->rows[i].name);
  sqlite3_free(c->rows);
  c->rows = NULL;
  c->n = c->i = 0;
  sqlite3_value_free(c->table);
  c->table = NULL;
}

static int cons_open(sqlite3_vtab *vt, sqlite3_vtab_cursor **out) {
  (void)vt;
  cons_cursor *c = sqlite3_malloc(sizeof(*c));
  if (!c) return SQLITE_NOMEM;
  memset(c, 0, sizeof(*c));
  *out = &c->base;
  return SQLITE_OK;
}

static int cons_close(sqlite3_vtab_cursor *cur) {
  cons_reset((cons_cursor *)cur);
  sqlite3_free(cur);
  return SQLITE_OK;
}

static int cons_fail(sqlite3_vtab *v, int rc, char *msg) {
  sqlite3_free(v->zErrMsg);
  v->zErrMsg = msg;
  return msg ? rc : SQLITE_NOMEM;
}

static int cons_filter(sqlite3_vtab_cursor *cur, int idx, const char *idxStr, int argc,
                       sqlite3_value **argv) {
  (void)idx;
  (void)idxStr;
  (void)argc;
  cons_cursor *c = (cons_cursor *)cur;
  cons_vtab *v = (cons_vtab *)cur->pVtab;
  cons_reset(c);
  if (!(c->table = sqlite3_value_dup(argv[0]))) return SQLITE_NOMEM;
  int rc;
  char *err;
  kvt_vtab *vt = kvt_table_named(v->db, v->conn, "klevdb_consumers", argv[0], &rc, &err);
  if (!vt) return cons_fail(&v->base, rc, err);
  sqlite3_stmt *st;
  klevdb_segment_info *sg = NULL;
  size_t nsg = 0, cap = 0;
  rc = prepare(vt, "SELECT name, position, committed_at FROM \"%w\".\"%w_consumers\" "
                   "ORDER BY name", &st, 0);
  if (rc == SQLITE_OK && st) {
    klevdb_err e = klevdb_segments_get(vt->kdb, &sg, &nsg);
    if (e != KLEVDB_OK) rc = kvt_error(vt, kvt_rc(e), "%s", klevdb_errmsg(vt->kdb));
  }
  while (rc == SQLITE_OK && st && sqlite3_step(st) == SQLITE_ROW) {
    if (c->n == cap) {
      cap = cap ? cap * 2 : 8;
      cons_row *r = sqlite3_realloc64(c->rows, cap * sizeof(*r));
      if (!r) {
        rc = SQLITE_NOMEM;
        break;
      }
      c->rows = r;
    }
    cons_row *r = &c->rows[c->n];
    memset(r, 0, sizeof(*r));
    r->name = sqlite3_mprintf("%s", (const char *)sqlite3_column_text(st, 0));
    if (!r->name) {
      rc = SQLITE_NOMEM;
      break;
    }
    c->n++;
    r->position = sqlite3_column_int64(st, 1);
    r->committed_at = sqlite3_column_int64(st, 2);
    rc = lag_of(vt, sg, nsg, r->position, &r->lag, &r->lag_bytes);
    if (rc == SQLITE_OK) rc = first_at(vt, r->position, &r->oldest_time, &r->has_time);
  }
  sqlite3_finalize(st);
  free(sg);
  if (rc != SQLITE_OK && rc != SQLITE_NOMEM)
    return cons_fail(&v->base, rc, sqlite3_mprintf("%s", vt->base.zErrMsg ? vt->base.zErrMsg
                                                                          : sqlite3_errstr(rc)));
  return rc;
}

static int cons_next(sqlite3_vtab_cursor *cur) {
  ((cons_cursor *)cur)->i++;
  return SQLITE_OK;
}

static int cons_eof(sqlite3_vtab_cursor *cur) {
  cons_cursor *c = (cons_cursor *)cur;
  return c->i >= c->n;
}

static int cons_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int col) {
  cons_cursor *c = (cons_cursor *)cur;
  const cons_row *r = &c->rows[c->i];
  switch (col) {
  case CC_NAME: sqlite3_result_text(ctx, r->name, -1, SQLITE_TRANSIENT); break;
  case CC_POSITION: sqlite3_result_int64(ctx, r->position); break;
  case CC_LAG: sqlite3_result_int64(ctx, r->lag); break;
  case CC_LAG_BYTES: sqlite3_result_int64(ctx, r->lag_bytes); break;
  case CC_OLDEST_TIME:
    if (r->has_time) sqlite3_result_int64(ctx, r->oldest_time);
    break;
  case CC_COMMITTED_AT: sqlite3_result_int64(ctx, r->committed_at); break;
  case CC_TABLE: sqlite3_result_value(ctx, c->table); break;
  }
  return SQLITE_OK;
}

static int cons_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *rowid) {
  *rowid = (sqlite3_int64)((cons_cursor *)cur)->i;
  return SQLITE_OK;
}

static sqlite3_module cons_module = {
    .iVersion = 0,
    .xConnect = cons_connect,
    .xBestIndex = cons_best_index,
    .xDisconnect = cons_disconnect,
    .xOpen = cons_open,
    .xClose = cons_close,
    .xFilter = cons_filter,
    .xNext = cons_next,
    .xEof = cons_eof,
    .xColumn = cons_column,
    .xRowid = cons_rowid,
};

int kvt_register_consumers(sqlite3 *db, kvt_conn *c) {
  static const struct {
    const char *name;
    void (*f)(sqlite3_context *, int, sqlite3_value **);
  } fns[] = {
      {"klevdb_commit", fn_commit},
      {"klevdb_reset", fn_reset},
      {"klevdb_consumer_drop", fn_drop},
  };
  for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
    int rc = sqlite3_create_function_v2(db, fns[i].name, i == 2 ? 2 : 3,
                                        SQLITE_UTF8 | SQLITE_DIRECTONLY, c, fns[i].f, NULL, NULL,
                                        NULL);
    if (rc != SQLITE_OK) return rc;
  }
  return sqlite3_create_module(db, "klevdb_consumers", &cons_module, c);
}
