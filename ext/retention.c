/*
** retention.c - retention declared on the table (max_age, max_bytes,
** max_count): whole sealed segments dropped with each commit that writes
** the table, recorded in its shadow table; keep_unconsumed, which spares
** what the table's consumers have not read, here and in klevdb_trim.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kvt.h"

/* Rows of <table>_klevdb besides the batch in doubt (id 1): what
** retention removed, in (txid, base, count) as (when, messages,
** segments): id 2 the totals, id 3 the last time it removed anything. */
enum { ROW_TOTAL = 2, ROW_LAST = 3 };

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Records that this transaction removes msgs messages in segs segments:
** the totals grow by what an earlier xSync of it (a COMMIT that failed
** with BUSY) did not record already. */
static int record(kvt_vtab *vt, int64_t msgs, int64_t segs) {
  kvt_pending *tx = vt->tx;
  static const char fmt[] =
      "INSERT INTO \"%w\".\"%w_klevdb\"(id, txid, base, count) VALUES(2, ?1, ?4, ?5) "
      "ON CONFLICT(id) DO UPDATE SET txid = excluded.txid, base = base + excluded.base, "
      "count = count + excluded.count; "
      "INSERT OR REPLACE INTO \"%w\".\"%w_klevdb\"(id, txid, base, count) "
      "SELECT 3, ?1, ?2, ?3 WHERE ?2 > 0";
  char *sql = sqlite3_mprintf(fmt, vt->schema, vt->name, vt->schema, vt->name);
  if (!sql) return SQLITE_NOMEM;
  int rc = kvt_shadow_create(vt);
  char when[24];
  snprintf(when, sizeof(when), "%lld", (long long)now_us());
  /* Our rows, not the caller's: last_insert_rowid() stays its last offset. */
  sqlite3_int64 last = sqlite3_last_insert_rowid(vt->conn->db);
  const char *tail = sql;
  while (rc == SQLITE_OK && tail && *tail) {
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(vt->conn->db, tail, -1, &st, &tail);
    if (rc != SQLITE_OK || !st) break;
    /* Each statement has the parameters it names; binding the others is
    ** refused (SQLITE_RANGE) and harmless. */
    sqlite3_bind_text(st, 1, when, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, msgs);
    sqlite3_bind_int64(st, 3, segs);
    sqlite3_bind_int64(st, 4, msgs - tx->ret_msgs);
    sqlite3_bind_int64(st, 5, segs - tx->ret_segs);
    rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(vt->conn->db);
    sqlite3_finalize(st);
  }
  sqlite3_free(sql);
  if (rc == SQLITE_OK) {
    tx->ret_msgs = msgs;
    tx->ret_segs = segs;
  }
  sqlite3_set_last_insert_rowid(vt->conn->db, last);
  if (rc != SQLITE_OK)
    kvt_error(vt, rc, "table %s: cannot record retention: %s", vt->name,
              sqlite3_errmsg(vt->conn->db));
  return rc;
}

/* The first message at or after cut by its own time, looked for below
** limit (limit if none is). klevdb_time_floor is where to start: the
** index's times are at least the messages' (docs/format.md, time
** clamping), and may carry the time of a message since deleted or
** dropped, which would keep old segments for good. Read from there, what
** is read is old, and goes with this commit unless keep_unconsumed holds
** it, so the reading is paid once per segment (limit stops it at the
** consumers' smallest position). */
static int age_floor(kvt_vtab *vt, klevdb *w, int64_t cut, int64_t limit, int64_t *floor) {
  klevdb_err e = klevdb_time_floor(w, cut, floor);
  if (e != KLEVDB_OK) return kvt_error(vt, kvt_rc(e), "%s", klevdb_errmsg(w));
  if (vt->args.keep_unconsumed) {
    int64_t min;
    bool any;
    int rc = kvt_consumers_min(vt, &min, &any);
    if (rc != SQLITE_OK) return rc;
    if (any && min < limit) limit = min;
  }
  klevdb_batch b = KLEVDB_BATCH_INIT;
  int64_t at = *floor;
  *floor = limit;
  while (e == KLEVDB_OK && at < limit) {
    e = klevdb_consume(w, at, 64, &b);
    if (e == KLEVDB_EINVALID_OFFSET) {
      e = KLEVDB_OK;   /* past the end */
      break;
    }
    size_t i = 0;
    while (e == KLEVDB_OK && i < b.len && b.msgs[i].offset < limit && b.msgs[i].time < cut) i++;
    if (e != KLEVDB_OK || i < b.len || b.next_offset <= at) {
      if (i < b.len && b.msgs[i].offset < limit) *floor = b.msgs[i].offset;
      break;
    }
    at = b.next_offset;
  }
  klevdb_batch_free(&b);
  if (e != KLEVDB_OK) return kvt_error(vt, kvt_rc(e), "%s", klevdb_errmsg(w));
  return SQLITE_OK;
}

/* Segments [0, drop) of sg go: each is entirely past a limit, counting
** this transaction's rows as the newest. The head never goes, nor (with
** keep_unconsumed) a segment that reaches the consumers' smallest
** position. */
static int plan(kvt_vtab *vt, klevdb *w, const klevdb_segment_info *sg, size_t nsg,
                size_t *drop) {
  const kvt_args *a = &vt->args;
  const kvt_pending *tx = vt->tx;
  *drop = 0;
  if (nsg < 2) return SQLITE_OK;
  int64_t later_msgs = (int64_t)tx->n, later_bytes = tx->bytes;
  for (size_t i = 0; i < nsg; i++) {
    later_msgs += sg[i].messages;
    later_bytes += sg[i].bytes;
  }
  int64_t floor = -1;
  if (a->max_age) {
    int rc = age_floor(vt, w, now_us() - a->max_age, sg[nsg - 1].base, &floor);
    if (rc != SQLITE_OK) return rc;
  }
  for (size_t i = 0; i + 1 < nsg; i++) {
    later_msgs -= sg[i].messages;
    later_bytes -= sg[i].bytes;
    bool past = (a->max_count && later_msgs >= a->max_count) ||
                (a->max_bytes && later_bytes >= a->max_bytes) ||
                (a->max_age && sg[i + 1].base <= floor);
    if (past) *drop = i + 1;
  }
  if (*drop && a->keep_unconsumed) {
    int64_t min;
    bool any;
    int rc = kvt_consumers_min(vt, &min, &any);
    if (rc != SQLITE_OK) return rc;
    while (any && *drop && sg[*drop].base > min) --*drop;
  }
  return SQLITE_OK;
}

int kvt_retention(kvt_vtab *vt, klevdb_range **out, size_t *n) {
  const kvt_args *a = &vt->args;
  *out = NULL;
  *n = 0;
  if ((!a->max_age && !a->max_bytes && !a->max_count) || a->opts.readonly) return SQLITE_OK;
  klevdb *w = vt->tx->owner;
  klevdb_segment_info *sg;
  size_t nsg, drop;
  klevdb_err e = klevdb_segments_get(w, &sg, &nsg);
  if (e != KLEVDB_OK) return kvt_error(vt, kvt_rc(e), "%s", klevdb_errmsg(w));
  int rc = plan(vt, w, sg, nsg, &drop);
  int64_t msgs = 0, segs = 0;
  for (size_t i = 0; i < drop; i++) {
    msgs += sg[i].messages;
    segs += sg[i].messages > 0;
  }
  if (rc == SQLITE_OK && msgs > 0) {
    klevdb_range *r = sqlite3_malloc(sizeof(*r));
    if (!r) {
      rc = SQLITE_NOMEM;
    } else {
      *r = (klevdb_range){sg[0].base, sg[drop].base};
      rc = record(vt, msgs, segs);
      if (rc == SQLITE_OK) {
        *out = r;
        *n = 1;
      } else {
        sqlite3_free(r);
      }
    }
  } else if (rc == SQLITE_OK && vt->tx->ret_msgs > 0) {
    /* An earlier xSync of this transaction recorded a removal that this
    ** one no longer makes: take it back out of the totals. */
    rc = record(vt, 0, 0);
  }
  free(sg);
  return rc;
}

int kvt_keep_delete(kvt_vtab *vt, klevdb_find what, int64_t arg, klevdb_deleted *d,
                    bool *handled) {
  *handled = false;
  if (!vt->args.keep_unconsumed) return SQLITE_OK;
  int64_t min;
  bool any;
  int rc = kvt_consumers_min(vt, &min, &any);
  if (rc != SQLITE_OK || !any) return rc;
  *handled = true;
  int64_t *offs = NULL;
  size_t n = 0, nr = 0;
  klevdb_err e = klevdb_find_offsets(vt->kdb, what, arg, &offs, &n);
  if (e != KLEVDB_OK) return kvt_error(vt, kvt_rc(e), "%s", klevdb_errmsg(vt->kdb));
  klevdb_range *r = malloc((n ? n : 1) * sizeof(*r));
  if (!r) {
    free(offs);
    return SQLITE_NOMEM;
  }
  for (size_t i = 0; i < n && offs[i] < min; i++) {
    if (nr && r[nr - 1].to == offs[i]) r[nr - 1].to++;
    else r[nr++] = (klevdb_range){offs[i], offs[i] + 1};
  }
  e = klevdb_delete_ranges(vt->kdb, r, nr, d);
  free(r);
  free(offs);
  if (e != KLEVDB_OK) return kvt_error(vt, kvt_rc(e), "%s", klevdb_errmsg(vt->kdb));
  return SQLITE_OK;
}

/* ,"retention":{...} for klevdb_stat, for a table that declares any. */
char *kvt_retention_json(kvt_vtab *vt, int *rc) {
  const kvt_args *a = &vt->args;
  *rc = SQLITE_OK;
  if (!a->max_age && !a->max_bytes && !a->max_count && !a->keep_unconsumed) return NULL;
  sqlite3_str *o = sqlite3_str_new(vt->conn->db);
  sqlite3_str_appendall(o, ",\"retention\":{");
  if (a->max_age) sqlite3_str_appendf(o, "\"max_age_us\":%lld,", (long long)a->max_age);
  if (a->max_bytes) sqlite3_str_appendf(o, "\"max_bytes\":%lld,", (long long)a->max_bytes);
  if (a->max_count) sqlite3_str_appendf(o, "\"max_count\":%lld,", (long long)a->max_count);
  if (a->keep_unconsumed) {
    int64_t min;
    bool any;
    if ((*rc = kvt_consumers_min(vt, &min, &any)) != SQLITE_OK) goto out;
    if (any) sqlite3_str_appendf(o, "\"keep_unconsumed\":\"from offset %lld\",", (long long)min);
    else sqlite3_str_appendall(o, "\"keep_unconsumed\":\"no consumers\",");
  }
  int64_t v[2][3] = {{0, 0, 0}, {0, 0, 0}};   /* total, last: when, messages, segments */
  bool has[2] = {false, false};
  char *sql = sqlite3_mprintf("SELECT id, txid, base, count FROM \"%w\".\"%w_klevdb\" WHERE id "
                              "IN (2, 3)", vt->schema, vt->name);
  sqlite3_stmt *st = NULL;
  if (!sql) {
    *rc = SQLITE_NOMEM;
    goto out;
  }
  if (sqlite3_prepare_v2(vt->conn->db, sql, -1, &st, NULL) == SQLITE_OK) {
    while (sqlite3_step(st) == SQLITE_ROW) {
      int k = sqlite3_column_int(st, 0) - ROW_TOTAL;
      has[k] = true;
      v[k][0] = sqlite3_column_int64(st, 1);
      v[k][1] = sqlite3_column_int64(st, 2);
      v[k][2] = sqlite3_column_int64(st, 3);
    }
  }   /* no shadow table: nothing removed yet */
  sqlite3_finalize(st);
  sqlite3_free(sql);
  sqlite3_str_appendf(o, "\"removed_messages\":%lld,\"removed_segments\":%lld,",
                      (long long)v[0][1], (long long)v[0][2]);
  if (has[1])
    sqlite3_str_appendf(o, "\"last_removed_at\":%lld,\"last_removed_messages\":%lld,"
                        "\"last_removed_segments\":%lld}", (long long)v[1][0],
                        (long long)v[1][1], (long long)v[1][2]);
  else
    sqlite3_str_appendall(o, "\"last_removed_at\":null}");
out:
  if (*rc == SQLITE_OK) *rc = sqlite3_str_errcode(o);
  char *s = sqlite3_str_finish(o);
  if (*rc != SQLITE_OK) {
    sqlite3_free(s);
    return NULL;
  }
  return s;
}
