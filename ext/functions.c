/*
** functions.c - the SQL functions of the extension:
**
**   klevdb_stat(table)                  JSON text: segments, messages, bytes,
**                                       next/oldest/newest offset and times
**   klevdb_sync(table)                  fsyncs; the next offset
**   klevdb_gc(table, seconds_unused)    releases idle segment memory; 0
**   klevdb_backup(table, dir)           copies the store; the resolved dir
**   klevdb_allow_triggers(dir)          lets triggers=1 tables on that store
**                                       be used by triggers; the resolved dir
**   klevdb_trim(table, kind, value)     kind 'count'|'size'|'age'|'offset';
**                                       the number of messages removed
**   klevdb_compact(table, kind, before) kind 'updates'|'deletes'; removed
**   klevdb_check(dir [, indexes])       'ok' or the check's error
**   klevdb_recover(dir [, indexes])     'ok'
**   klevdb_migrate(dir, 'v1'|'v2' [, indexes])  'ok'
**   klevdb_varint(x)                    Go's zig-zag varint of x (BLOB)
**   klevdb_unvarint(b)                  its inverse
**
** A table is named by a string, "name" or "schema.name", and resolved as
** SQL resolves it (temp, main, then attached databases in order). A directory is resolved as in CREATE VIRTUAL TABLE (relative
** to the main database's folder). indexes names the store's indexes:
** 'keys,times', 'keys', 'times' or ''; without it (or NULL) they are read
** from the store's newest V2 index header, both for a V1 store.
**
** Every error message starts with "klevdb: "; core errors keep their
** class through kvt_rc().
*/
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <string.h>
#include <time.h>

#include "kvt.h"

/* v's text if it is TEXT, else NULL. The type is asked first: asking
** sqlite3_value_text() first turns a BLOB into TEXT, so that x'7631'
** would pass for 'v1'. */
static const char *text_arg(sqlite3_value *v) {
  return sqlite3_value_type(v) == SQLITE_TEXT ? (const char *)sqlite3_value_text(v) : NULL;
}

/* scan.c: the indexes a store directory has (from its newest V2 index
** header; both when there is none). */

/* How long trim and compact wait for another handle's open SQL
** transaction on the same store. */
#define FN_LOCK_WAIT_MS 5000

/* ---- helpers ---- */

static void fn_error(sqlite3_context *ctx, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *m = sqlite3_vmprintf(fmt, ap);
  va_end(ap);
  if (!m) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  sqlite3_result_error(ctx, m, -1);
  sqlite3_result_error_code(ctx, rc);
  sqlite3_free(m);
}

/* A core message without its "klevdb: " prefix. */
static const char *bare(const char *msg) {
  if (msg && strncmp(msg, "klevdb: ", 8) == 0) return msg + 8;
  return msg ? msg : "";
}

/* "klevdb: <fn>: <core message>" with the core error's SQLite code. */
static void core_error(sqlite3_context *ctx, const char *fn, klevdb_err code, const char *msg) {
  if (code == KLEVDB_ENOMEM) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  fn_error(ctx, kvt_rc(code), "klevdb: %s: %s", fn, bare(msg));
}

/* One SQL identifier at p: "double" or `back` quoted (a doubled quote
** stands for one), [bracketed], or bare up to a '.'. *out gets it
** (sqlite3_malloc'ed; NULL when out of memory or empty); returns where it
** ends, NULL on an unterminated quote. */
static const char *ident(const char *p, char **out) {
  char close = *p == '[' ? ']' : (*p == '"' || *p == '`') ? *p : 0;
  char *w = *out = sqlite3_malloc64(strlen(p) + 1);
  if (!w) return p;
  if (close) {
    for (p++;; p++) {
      if (!*p) return NULL;
      if (*p == close) {
        if (close == ']' || p[1] != close) break;
        p++;
      }
      *w++ = *p;
    }
    p++;
  } else {
    while (*p && *p != '.') *w++ = *p++;
  }
  *w = 0;
  if (!**out) {
    sqlite3_free(*out);
    *out = NULL;
  }
  return p;
}

/* The database that holds table name, resolved as SQL resolves a name
** without a schema: temp first, then main, then attached databases in the
** order they were attached. NULL if none has a table or view of that name
** (*rc SQLITE_OK) or on error. */
static char *find_schema(sqlite3 *db, const char *name, int *rc) {
  sqlite3_stmt *list = NULL, *probe = NULL;
  char *found = NULL;
  *rc = sqlite3_prepare_v2(db, "SELECT name FROM pragma_database_list "
                               "ORDER BY name <> 'temp', seq", -1, &list, NULL);
  while (*rc == SQLITE_OK && !found && sqlite3_step(list) == SQLITE_ROW) {
    const char *schema = (const char *)sqlite3_column_text(list, 0);
    char *sql = sqlite3_mprintf("SELECT 1 FROM \"%w\".sqlite_master WHERE type IN "
                                "('table', 'view') AND name = ?1 COLLATE NOCASE", schema);
    if (!sql) {
      *rc = SQLITE_NOMEM;
      break;
    }
    *rc = sqlite3_prepare_v2(db, sql, -1, &probe, NULL);
    sqlite3_free(sql);
    if (*rc == SQLITE_OK) {
      sqlite3_bind_text(probe, 1, name, -1, SQLITE_STATIC);
      if (sqlite3_step(probe) == SQLITE_ROW && !(found = sqlite3_mprintf("%s", schema)))
        *rc = SQLITE_NOMEM;
    }
    sqlite3_finalize(probe);
    probe = NULL;
  }
  sqlite3_finalize(list);
  return found;
}

/* The usual case, resolved without preparing anything: a connected
** klevdb table of that name in temp, or in main when temp holds no table
** or view of that name (asked by a statement the table keeps). NULL:
** resolve it as SQL does (find_schema). */
static kvt_vtab *find_connected(sqlite3 *db, kvt_conn *c, const char *name) {
  kvt_vtab *in_main = NULL;
  for (kvt_vtab *v = c->tables; v; v = v->next) {
    if (sqlite3_stricmp(v->name, name) != 0) continue;
    if (sqlite3_stricmp(v->schema, "temp") == 0) return v;
    if (!in_main && sqlite3_stricmp(v->schema, "main") == 0) in_main = v;
  }
  if (!in_main) return NULL;
  if (!in_main->temp_stmt &&
      sqlite3_prepare_v3(db, "SELECT 1 FROM temp.sqlite_master WHERE type IN ('table', 'view') "
                             "AND name = ?1 COLLATE NOCASE", -1, SQLITE_PREPARE_PERSISTENT,
                         &in_main->temp_stmt, NULL) != SQLITE_OK)
    return NULL;
  sqlite3_stmt *st = in_main->temp_stmt;
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return rc == SQLITE_DONE ? in_main : NULL;
}

/* Sets *err ("klevdb: ...") and *rc; returns NULL. */
static kvt_vtab *named_fail(int *rc, char **err, int code, char *msg) {
  *rc = msg ? code : SQLITE_NOMEM;
  *err = msg;
  return NULL;
}

kvt_vtab *kvt_table_named(sqlite3 *db, kvt_conn *c, const char *fn, sqlite3_value *v, int *rc,
                          char **err) {
  *rc = SQLITE_OK;
  *err = NULL;
  if (sqlite3_value_type(v) != SQLITE_TEXT)
    return named_fail(rc, err, SQLITE_MISMATCH,
                      sqlite3_mprintf("klevdb: %s: table must be a TEXT table name", fn));
  const char *arg = (const char *)sqlite3_value_text(v);
  kvt_vtab *vt = NULL;
  char *a = NULL, *b = NULL, *schema = NULL, *name = NULL;
  int r = SQLITE_OK;
  const char *p = arg ? ident(arg, &a) : NULL;
  bool dotted = p && *p == '.';
  if (dotted) p = ident(p + 1, &b);
  if (!p || *p || !a || (dotted && !b)) {
    named_fail(rc, err, SQLITE_ERROR,
               sqlite3_mprintf("klevdb: %s: '%s' is not a table name (name or schema.name; "
                               "quote a name with a '.' in it: '\"a.b\"')", fn, arg ? arg : ""));
    goto out;
  }
  if (dotted) schema = a;
  name = dotted ? b : a;
  if (!schema && (vt = find_connected(db, c, name)) != NULL) goto found;
  if (!schema) {
    schema = find_schema(db, name, &r);
    if (!schema) {
      if (r == SQLITE_NOMEM) named_fail(rc, err, SQLITE_NOMEM, NULL);
      else if (r != SQLITE_OK)
        named_fail(rc, err, r, sqlite3_mprintf("klevdb: %s: %s", fn, sqlite3_errmsg(db)));
      else
        named_fail(rc, err, SQLITE_ERROR,
                   sqlite3_mprintf("klevdb: %s: no table named '%s'", fn, name));
      goto out;
    }
  }
  vt = kvt_find(c, schema, name);
  if (!vt) {
    /* A table SQLite has not connected yet (a fresh schema, ATTACH, after
    ** RENAME): preparing a query on it connects it. */
    char *sql = sqlite3_mprintf("SELECT 1 FROM \"%w\".\"%w\" LIMIT 0", schema, name);
    sqlite3_stmt *st = NULL;
    if (!sql) {
      named_fail(rc, err, SQLITE_NOMEM, NULL);
      goto out;
    }
    r = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    sqlite3_free(sql);
    if (r == SQLITE_OK) {
      vt = kvt_find(c, schema, name);
      if (!vt)
        named_fail(rc, err, SQLITE_ERROR, sqlite3_mprintf("klevdb: %s: %s.%s is not a klevdb "
                                                          "table", fn, schema, name));
    } else {
      const char *m = sqlite3_errmsg(db);
      named_fail(rc, err, r, sqlite3_mprintf("klevdb: %s: %s", fn,
                                             strncmp(m, "klevdb: ", 8) == 0 ? m + 8 : m));
    }
    sqlite3_finalize(st);
    if (!vt) goto out;
  }
found:
  if (!vt->kdb) {
    named_fail(rc, err, SQLITE_ERROR,
               sqlite3_mprintf("klevdb: %s: table %s is not open", fn, vt->name));
    vt = NULL;
  }
out:
  if (schema != a && schema != b) sqlite3_free(schema);
  sqlite3_free(a);
  sqlite3_free(b);
  return vt;
}

/* The table named by argument v ("name" or "schema.name", quoted as SQL
** quotes identifiers, or not), or NULL with the error set. */
static kvt_vtab *table_arg(sqlite3_context *ctx, const char *fn, sqlite3_value *v) {
  int rc;
  char *err;
  kvt_vtab *vt = kvt_table_named(sqlite3_context_db_handle(ctx), sqlite3_user_data(ctx), fn, v,
                                 &rc, &err);
  if (!vt) {
    if (rc == SQLITE_NOMEM || !err) sqlite3_result_error_nomem(ctx);
    else fn_error(ctx, rc, "%s", err);
    sqlite3_free(err);
  }
  return vt;
}

/* Maintenance that deletes runs neither inside a transaction nor under
** the table's own pending writes (an autocommit statement's), whose
** offsets and deletes were planned against the log as it was. */
static bool refuse_in_transaction(sqlite3_context *ctx, const char *fn, kvt_vtab *vt) {
  /* A function is no write of the table that SQLite would enlist in the
  ** transaction, so what it removes could not be rolled back: like VACUUM,
  ** it runs outside a transaction only. DELETE goes with one. */
  if (!sqlite3_get_autocommit(vt->conn->db)) {
    fn_error(ctx, SQLITE_ERROR, "klevdb: %s: cannot run inside a transaction (what it removes "
             "could not be rolled back); run it alone, or DELETE FROM %s WHERE ..., which "
             "commits and rolls back with the transaction", fn, vt->name);
    return true;
  }
  if (vt->tx->n == 0 && vt->tx->ndels == 0) return false;
  fn_error(ctx, SQLITE_ERROR, "klevdb: %s: table %s has uncommitted changes; commit first", fn,
           vt->name);
  return true;
}

static bool int_arg(sqlite3_context *ctx, const char *fn, const char *what, sqlite3_value *v,
                    int64_t *out) {
  if (sqlite3_value_type(v) != SQLITE_INTEGER) {
    fn_error(ctx, SQLITE_MISMATCH, "klevdb: %s: %s must be an INTEGER", fn, what);
    return false;
  }
  *out = sqlite3_value_int64(v);
  return true;
}

/* A time argument: INTEGER microseconds or ISO-8601 text. */
static bool time_arg(sqlite3_context *ctx, const char *fn, const char *what, sqlite3_value *v,
                     int64_t *out) {
  int t = sqlite3_value_type(v);
  if (t != SQLITE_INTEGER && t != SQLITE_TEXT) {
    fn_error(ctx, SQLITE_MISMATCH,
             "klevdb: %s: %s must be INTEGER microseconds or ISO-8601 TEXT", fn, what);
    return false;
  }
  char *err = NULL;
  int rc = kvt_parse_time(v, out, &err);
  if (rc != SQLITE_OK) {
    if (!err) {
      fn_error(ctx, rc, "klevdb: %s: %s is not a time", fn, what);
    } else {
      fn_error(ctx, rc, "klevdb: %s: %s", fn, bare(err));
      sqlite3_free(err);
    }
    return false;
  }
  return true;
}

/* Parses an indexes argument: a comma separated list of "keys" and
** "times" ('' for none). NULL: detected from the store. */
static bool indexes_arg(sqlite3_context *ctx, const char *fn, sqlite3_value *v, const char *dir,
                        klevdb_options *o) {
  if (!v || sqlite3_value_type(v) == SQLITE_NULL) {
    klevdb_dir_indexes(dir, &o->key_index, &o->time_index);
    return true;
  }
  if (sqlite3_value_type(v) != SQLITE_TEXT) goto bad;
  const char *s = (const char *)sqlite3_value_text(v);
  if (!s) goto bad;
  o->key_index = o->time_index = 0;
  while (*s) {
    while (*s == ' ' || *s == '\t') s++;
    const char *w = s;
    while (*s && *s != ',' && *s != ' ' && *s != '\t') s++;
    size_t n = (size_t)(s - w);
    while (*s == ' ' || *s == '\t') s++;
    if (n == 4 && sqlite3_strnicmp(w, "keys", 4) == 0) o->key_index = 1;
    else if (n == 5 && sqlite3_strnicmp(w, "times", 5) == 0) o->time_index = 1;
    else if (n != 0 || *s == ',') goto bad;
    if (*s == ',') {
      s++;
      if (!*s) goto bad;
    } else if (*s) {
      goto bad;
    }
  }
  return true;
bad:
  fn_error(ctx, SQLITE_ERROR,
           "klevdb: %s: indexes must be 'keys,times', 'keys', 'times' or ''", fn);
  return false;
}

/* Formats microseconds since the epoch as 2023-01-01T00:00:00.000000Z. */
static bool iso_time(int64_t us, char *out, size_t cap) {
  int64_t secs = us / 1000000, frac = us % 1000000;
  if (frac < 0) {
    frac += 1000000;
    secs -= 1;
  }
  time_t t = (time_t)secs;
  struct tm tm;
  if (!gmtime_r(&t, &tm)) return false;
  snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1,
           tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
  return true;
}

/* ---- klevdb_stat, klevdb_sync, klevdb_gc, klevdb_backup ---- */

static void fn_stat(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  kvt_vtab *vt = table_arg(ctx, "klevdb_stat", argv[0]);
  if (!vt) return;
  klevdb_stat st;
  klevdb_bounds b;
  klevdb_err rc = klevdb_stat_get(vt->kdb, &st);
  if (!rc) rc = klevdb_bounds_get(vt->kdb, &b);
  if (rc) {
    core_error(ctx, "klevdb_stat", rc, klevdb_errmsg(vt->kdb));
    return;
  }
  char oo[32] = "null", no[32] = "null", ot[112] = "null", nt[112] = "null";
  if (b.oldest_offset >= 0) {
    char t[96];
    snprintf(oo, sizeof(oo), "%lld", (long long)b.oldest_offset);
    snprintf(no, sizeof(no), "%lld", (long long)b.newest_offset);
    if (iso_time(b.oldest_time, t, sizeof(t))) snprintf(ot, sizeof(ot), "\"%s\"", t);
    if (iso_time(b.newest_time, t, sizeof(t))) snprintf(nt, sizeof(nt), "\"%s\"", t);
  }
  int xrc;
  char *extra = kvt_stat_extra(vt, &xrc);   /* consumers, retention */
  if (xrc != SQLITE_OK) {
    const char *m = vt->base.zErrMsg ? bare(vt->base.zErrMsg) : sqlite3_errstr(xrc);
    fn_error(ctx, xrc, "klevdb: klevdb_stat: %s", m);
    return;
  }
  char *json = sqlite3_mprintf(
      "{\"segments\":%lld,\"messages\":%lld,\"bytes\":%lld,\"next_offset\":%lld,"
      "\"oldest_offset\":%s,\"newest_offset\":%s,\"oldest_time\":%s,\"newest_time\":%s%s}",
      (long long)st.segments, (long long)st.messages, (long long)st.size,
      (long long)b.next_offset, oo, no, ot, nt, extra ? extra : "");
  sqlite3_free(extra);
  if (!json) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  sqlite3_result_text(ctx, json, -1, sqlite3_free);
}

static void fn_sync(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  kvt_vtab *vt = table_arg(ctx, "klevdb_sync", argv[0]);
  if (!vt) return;
  int64_t next = 0;
  klevdb_err rc = klevdb_sync(vt->kdb, &next);
  if (rc) {
    core_error(ctx, "klevdb_sync", rc, klevdb_errmsg(vt->kdb));
    return;
  }
  sqlite3_result_int64(ctx, next);
}

static void fn_gc(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  kvt_vtab *vt = table_arg(ctx, "klevdb_gc", argv[0]);
  if (!vt) return;
  int t = sqlite3_value_type(argv[1]);
  double secs = sqlite3_value_double(argv[1]);
  if ((t != SQLITE_INTEGER && t != SQLITE_FLOAT) || !(secs >= 0) || secs > 9.2e12) {
    fn_error(ctx, SQLITE_MISMATCH,
             "klevdb: klevdb_gc: seconds_unused must be a number of seconds >= 0");
    return;
  }
  int64_t us = t == SQLITE_INTEGER ? sqlite3_value_int64(argv[1]) * 1000000
                                   : (int64_t)(secs * 1e6);
  klevdb_err rc = klevdb_gc(vt->kdb, us);
  if (rc) {
    core_error(ctx, "klevdb_gc", rc, klevdb_errmsg(vt->kdb));
    return;
  }
  sqlite3_result_int(ctx, 0);
}

static void fn_backup(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  kvt_vtab *vt = table_arg(ctx, "klevdb_backup", argv[0]);
  if (!vt) return;
  const char *d = text_arg(argv[1]);
  if (!d || !*d) {
    fn_error(ctx, SQLITE_MISMATCH, "klevdb: klevdb_backup: dir must be a non-empty TEXT path");
    return;
  }
  char *dir = kvt_resolve_dir(sqlite3_context_db_handle(ctx), "main", d);
  if (!dir) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  klevdb_err rc = klevdb_backup(vt->kdb, dir);
  if (rc) {
    core_error(ctx, "klevdb_backup", rc, klevdb_errmsg(vt->kdb));
    sqlite3_free(dir);
    return;
  }
  sqlite3_result_text(ctx, dir, -1, sqlite3_free);
}

/* ---- klevdb_allow_triggers ---- */

/* Same directory: same device and inode (paths may differ in spelling,
** symlinks and relative parts). */
static bool same_dir(const char *a, const char *b) {
  struct stat sa, sb;
  return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

bool kvt_triggers_allowed(const kvt_conn *c, const char *dir) {
  for (int i = 0; i < c->ntrigger_dirs; i++)
    if (same_dir(c->trigger_dirs[i], dir)) return true;
  return false;
}

/* klevdb_allow_triggers(dir): tables of this connection on the store in
** dir that say triggers=1 may be used by triggers and views. Only SQL the
** application runs can call it (the function is DIRECTONLY), so a
** database file cannot grant this to itself. It counts for tables that
** connect afterwards: SQLite fixes a table's trust when it connects. */
static void fn_allow_triggers(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  static const char fn[] = "klevdb_allow_triggers";
  const char *d = text_arg(argv[0]);
  if (!d || !*d) {
    fn_error(ctx, SQLITE_MISMATCH, "klevdb: %s: dir must be a non-empty TEXT path", fn);
    return;
  }
  kvt_conn *c = sqlite3_user_data(ctx);
  char *dir = kvt_resolve_dir(sqlite3_context_db_handle(ctx), "main", d);
  if (!dir) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  for (kvt_vtab *vt = c->tables; vt; vt = vt->next) {
    if (!vt->args.triggers || vt->trusted || !same_dir(vt->args.dir, dir)) continue;
    fn_error(ctx, SQLITE_ERROR, "klevdb: %s: table %s.%s on %s is in use already, without "
             "triggers; allow its store before the table is first used (right after "
             "opening the database)", fn, vt->schema, vt->name, d);
    sqlite3_free(dir);
    return;
  }
  for (int i = 0; i < c->ntrigger_dirs; i++) {
    if (strcmp(c->trigger_dirs[i], dir) != 0) continue;
    sqlite3_result_text(ctx, dir, -1, sqlite3_free);   /* allowed already */
    return;
  }
  char **l = sqlite3_realloc64(c->trigger_dirs, (sqlite3_uint64)(c->ntrigger_dirs + 1) * sizeof(*l));
  if (!l) {
    sqlite3_free(dir);
    sqlite3_result_error_nomem(ctx);
    return;
  }
  c->trigger_dirs = l;
  l[c->ntrigger_dirs++] = dir;
  sqlite3_result_text(ctx, dir, -1, SQLITE_TRANSIENT);
}

/* ---- klevdb_trim, klevdb_compact ---- */

typedef klevdb_err (*deleter)(klevdb *, int64_t, klevdb_deleted *);

/* Runs a deleting maintenance call on the table's store. The table's open
** SQL transaction (if any) already holds the store's writes; otherwise they
** are reserved for the call, so that another handle's transaction on the
** same store fails it with "locked" rather than waiting forever. */
static void run_delete(sqlite3_context *ctx, const char *fn, kvt_vtab *vt, deleter f,
                       klevdb_find what, int64_t arg) {
  klevdb_err rc = KLEVDB_OK;
  bool locked = false;
  if (vt->follower && kvt_become_writer(vt) != SQLITE_OK) {
    fn_error(ctx, SQLITE_BUSY, "%s", vt->base.zErrMsg ? vt->base.zErrMsg : "klevdb: store busy");
    return;
  }
  if (!vt->tx->locked) {
    rc = klevdb_writer_lock(vt->kdb, FN_LOCK_WAIT_MS);
    locked = rc == KLEVDB_OK;
  }
  klevdb_deleted d = {0, 0};
  bool kept = false;
  if (!rc && vt->args.keep_unconsumed) {
    /* keep_unconsumed=1: only below the consumers' smallest position. */
    int krc = kvt_keep_delete(vt, what, arg, &d, &kept);
    if (krc != SQLITE_OK) {
      fn_error(ctx, krc, "klevdb: %s: %s", fn,
               vt->base.zErrMsg ? bare(vt->base.zErrMsg) : sqlite3_errstr(krc));
      if (locked) klevdb_writer_unlock(vt->kdb);
      return;
    }
  }
  if (!rc && !kept) rc = f(vt->kdb, arg, &d);
  if (rc) core_error(ctx, fn, rc, klevdb_errmsg(vt->kdb));
  else sqlite3_result_int64(ctx, d.count);
  if (locked) klevdb_writer_unlock(vt->kdb);
}

static void fn_trim(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  static const char fn[] = "klevdb_trim";
  kvt_vtab *vt = table_arg(ctx, fn, argv[0]);
  if (!vt) return;
  const char *kind = text_arg(argv[1]);
  if (!kind) kind = "";
  int64_t v;
  deleter f;
  klevdb_find what;
  if (sqlite3_stricmp(kind, "count") == 0) {
    what = KLEVDB_FIND_COUNT;
    if (!int_arg(ctx, fn, "count", argv[2], &v)) return;
    if (v < 0) {
      fn_error(ctx, SQLITE_ERROR, "klevdb: %s: count must be >= 0", fn);
      return;
    }
    f = klevdb_trim_by_count;
  } else if (sqlite3_stricmp(kind, "size") == 0) {
    what = KLEVDB_FIND_SIZE;
    if (!int_arg(ctx, fn, "size", argv[2], &v)) return;
    if (v < 0) {
      fn_error(ctx, SQLITE_ERROR, "klevdb: %s: size must be >= 0", fn);
      return;
    }
    f = klevdb_trim_by_size;
  } else if (sqlite3_stricmp(kind, "age") == 0) {
    what = KLEVDB_FIND_AGE;
    if (!time_arg(ctx, fn, "age", argv[2], &v)) return;
    f = klevdb_trim_by_age;
  } else if (sqlite3_stricmp(kind, "offset") == 0) {
    what = KLEVDB_FIND_OFFSET;
    if (!int_arg(ctx, fn, "offset", argv[2], &v)) return;
    /* The core reads -1 as Go's OffsetNewest (remove everything) and -2
    ** as OffsetOldest: no SQL caller means those by a number. */
    if (v < 0) {
      fn_error(ctx, SQLITE_ERROR, "klevdb: %s: offset must be >= 0", fn);
      return;
    }
    f = klevdb_trim_by_offset;
  } else {
    fn_error(ctx, SQLITE_ERROR, "klevdb: %s: kind must be 'count', 'size', 'age' or 'offset'",
             fn);
    return;
  }
  if (refuse_in_transaction(ctx, fn, vt)) return;
  run_delete(ctx, fn, vt, f, what, v);
}

static void fn_compact(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  static const char fn[] = "klevdb_compact";
  kvt_vtab *vt = table_arg(ctx, fn, argv[0]);
  if (!vt) return;
  const char *kind = text_arg(argv[1]);
  if (!kind) kind = "";
  deleter f;
  klevdb_find what;
  if (sqlite3_stricmp(kind, "updates") == 0) {
    f = klevdb_compact_updates;
    what = KLEVDB_FIND_UPDATES;
  } else if (sqlite3_stricmp(kind, "deletes") == 0) {
    f = klevdb_compact_deletes;
    what = KLEVDB_FIND_DELETES;
  }
  else {
    fn_error(ctx, SQLITE_ERROR, "klevdb: %s: kind must be 'updates' or 'deletes'", fn);
    return;
  }
  int64_t before;
  if (!time_arg(ctx, fn, "before_time", argv[2], &before)) return;
  if (refuse_in_transaction(ctx, fn, vt)) return;
  run_delete(ctx, fn, vt, f, what, before);
}

/* ---- klevdb_check, klevdb_recover, klevdb_migrate ---- */

/* The directory argument, resolved (sqlite3_free it), or NULL with the
** error set. */
static char *dir_arg(sqlite3_context *ctx, const char *fn, sqlite3_value *v) {
  const char *d = text_arg(v);
  if (!d || !*d) {
    fn_error(ctx, SQLITE_MISMATCH, "klevdb: %s: dir must be a non-empty TEXT path", fn);
    return NULL;
  }
  char *dir = kvt_resolve_dir(sqlite3_context_db_handle(ctx), "main", d);
  if (!dir) {
    sqlite3_result_error_nomem(ctx);
    return NULL;
  }
  struct stat sb;
  if (stat(dir, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
    fn_error(ctx, SQLITE_CANTOPEN, "klevdb: %s: %s is not a directory", fn, d);
    sqlite3_free(dir);
    return NULL;
  }
  return dir;
}

/* Recover and migrate rewrite files: they take the store's .lock as a
** writer does, so a store open for writing (in this process too, since
** flock(2) locks belong to the open file) is refused. Returns the lock's
** descriptor (-1: there is no .lock, nothing to hold) or -2 with the
** error set. */
static int dir_lock(sqlite3_context *ctx, const char *fn, const char *dir, const char *given) {
  int fd;
  klevdb_err rc = klevdb_dir_lock(dir, 0, &fd, NULL);
  if (rc == KLEVDB_ELOCKED) {
    fn_error(ctx, kvt_rc(KLEVDB_ELOCKED),
             "klevdb: %s: %s is open for writing (close its tables first)", fn, given);
    return -2;
  }
  /* Any other failure to lock: the helper's own error will say more. */
  return rc ? -1 : fd;
}

static void dir_unlock(int fd) { klevdb_dir_unlock(fd); }

static void fn_check(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  static const char fn[] = "klevdb_check";
  char *dir = dir_arg(ctx, fn, argv[0]);
  if (!dir) return;
  klevdb_options o = {0};
  if (indexes_arg(ctx, fn, argc > 1 ? argv[1] : NULL, dir, &o)) {
    klevdb_error e;
    klevdb_err rc = klevdb_dir_check(dir, &o, &e);
    if (rc) core_error(ctx, fn, rc, e.msg);
    else sqlite3_result_text(ctx, "ok", 2, SQLITE_STATIC);
  }
  sqlite3_free(dir);
}

static void fn_recover(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  static const char fn[] = "klevdb_recover";
  char *dir = dir_arg(ctx, fn, argv[0]);
  if (!dir) return;
  klevdb_options o = {0};
  if (indexes_arg(ctx, fn, argc > 1 ? argv[1] : NULL, dir, &o)) {
    int fd = dir_lock(ctx, fn, dir, (const char *)sqlite3_value_text(argv[0]));
    if (fd != -2) {
      klevdb_error e;
      klevdb_err rc = klevdb_dir_recover(dir, &o, &e);
      dir_unlock(fd);
      if (rc) core_error(ctx, fn, rc, e.msg);
      else sqlite3_result_text(ctx, "ok", 2, SQLITE_STATIC);
    }
  }
  sqlite3_free(dir);
}

static void fn_migrate(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  static const char fn[] = "klevdb_migrate";
  const char *v = text_arg(argv[1]);
  if (!v) v = "";
  klevdb_format to;
  if (sqlite3_stricmp(v, "v1") == 0) to = KLEVDB_V1;
  else if (sqlite3_stricmp(v, "v2") == 0) to = KLEVDB_V2;
  else {
    fn_error(ctx, SQLITE_ERROR, "klevdb: %s: version must be 'v1' or 'v2'", fn);
    return;
  }
  char *dir = dir_arg(ctx, fn, argv[0]);
  if (!dir) return;
  klevdb_options o = {0};
  if (indexes_arg(ctx, fn, argc > 2 ? argv[2] : NULL, dir, &o)) {
    int fd = dir_lock(ctx, fn, dir, (const char *)sqlite3_value_text(argv[0]));
    if (fd != -2) {
      klevdb_error e;
      klevdb_err rc = klevdb_dir_migrate(dir, &o, to, &e);
      dir_unlock(fd);
      if (rc) core_error(ctx, fn, rc, e.msg);
      else sqlite3_result_text(ctx, "ok", 2, SQLITE_STATIC);
    }
  }
  sqlite3_free(dir);
}

/* ---- codec helpers ---- */

static void fn_varint(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  int t = sqlite3_value_type(argv[0]);
  if (t == SQLITE_NULL) return;
  if (t != SQLITE_INTEGER) {
    fn_error(ctx, SQLITE_MISMATCH, "klevdb: klevdb_varint: x must be an INTEGER");
    return;
  }
  uint8_t buf[10];
  size_t n = klevdb_varint_encode(sqlite3_value_int64(argv[0]), buf);
  sqlite3_result_blob(ctx, buf, (int)n, SQLITE_TRANSIENT);
}

static void fn_unvarint(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  int t = sqlite3_value_type(argv[0]);
  if (t == SQLITE_NULL) return;
  if (t != SQLITE_BLOB) {
    fn_error(ctx, SQLITE_MISMATCH, "klevdb: klevdb_unvarint: b must be a BLOB");
    return;
  }
  const uint8_t *p = sqlite3_value_blob(argv[0]);
  int len = sqlite3_value_bytes(argv[0]);
  if (len == 0) return; /* zero bytes: an absent value */
  int64_t v;
  int n = klevdb_varint_decode(p, (size_t)len, &v);
  if (n == 0) {
    fn_error(ctx, SQLITE_MISMATCH, "klevdb: klevdb_unvarint: truncated varint");
    return;
  }
  if (n < 0) {
    fn_error(ctx, SQLITE_MISMATCH, "klevdb: klevdb_unvarint: varint overflows 64 bits");
    return;
  }
  if (n != len) {
    fn_error(ctx, SQLITE_MISMATCH, "klevdb: klevdb_unvarint: %d trailing byte%s after the varint",
             len - n, len - n == 1 ? "" : "s");
    return;
  }
  sqlite3_result_int64(ctx, v);
}

/* ---- registration ---- */

/* klevdb_time(x): microseconds of an ISO-8601 text (or an INTEGER as it
** is), so that WHERE time >= klevdb_time('2023-01-01') reads naturally. */
static void fn_time(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  if (sqlite3_value_type(argv[0]) == SQLITE_NULL) return;
  int64_t t;
  char *err = NULL;
  int rc = kvt_parse_time(argv[0], &t, &err);
  if (rc != SQLITE_OK) {
    sqlite3_result_error(ctx, err ? err : "klevdb: bad time", -1);
    sqlite3_result_error_code(ctx, rc);
    sqlite3_free(err);
    return;
  }
  sqlite3_result_int64(ctx, t);
}

/* klevdb_version(): the version of the libklevdb the module carries, as
** sqlite_version() gives SQLite's. */
static void fn_version(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  (void)argv;
  sqlite3_result_text(ctx, klevdb_version(), -1, SQLITE_STATIC);
}

int kvt_register_functions(sqlite3 *db, kvt_conn *c) {
  static const struct {
    const char *name;
    int nargs;
    bool pure;
    void (*f)(sqlite3_context *, int, sqlite3_value **);
  } fns[] = {
      {"klevdb_stat", 1, false, fn_stat},
      {"klevdb_sync", 1, false, fn_sync},
      {"klevdb_gc", 2, false, fn_gc},
      {"klevdb_backup", 2, false, fn_backup},
      {"klevdb_allow_triggers", 1, false, fn_allow_triggers},
      {"klevdb_trim", 3, false, fn_trim},
      {"klevdb_compact", 3, false, fn_compact},
      {"klevdb_check", 1, false, fn_check},
      {"klevdb_check", 2, false, fn_check},
      {"klevdb_recover", 1, false, fn_recover},
      {"klevdb_recover", 2, false, fn_recover},
      {"klevdb_migrate", 2, false, fn_migrate},
      {"klevdb_migrate", 3, false, fn_migrate},
      {"klevdb_varint", 1, true, fn_varint},
      {"klevdb_unvarint", 1, true, fn_unvarint},
      {"klevdb_time", 1, true, fn_time},
      {"klevdb_version", 0, true, fn_version},
  };
  for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
    int flags = SQLITE_UTF8 | (fns[i].pure ? SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS
                                           : SQLITE_DIRECTONLY);
    int rc = sqlite3_create_function_v2(db, fns[i].name, fns[i].nargs, flags, c, fns[i].f, NULL,
                                        NULL, NULL);
    if (rc != SQLITE_OK) return rc;
  }
  return SQLITE_OK;
}
