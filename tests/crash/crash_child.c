/*
** crash_child.c - the process that crash_test.py kills, and its checker.
**
**   crash_child run DIR SEED [--sql] [--auto-sync] [--preallocate]
**       Opens the store in DIR (read-write, both indexes, rollover 64KB)
**       and loops until killed: publishes batches of 1..100 messages, now
**       and then a batch of several rollover sizes (the split path), trims,
**       deletes ranges or single offsets and compacts. --sql does the same
**       through a klevdb virtual table (the extension linked in statically):
**       BEGIN; INSERT x N; COMMIT, DELETE, klevdb_trim, klevdb_compact.
**       Every message's bytes are a function of its offset (gen_*).
**       Reports on stdout, one write(2) per line, each written only after
**       the call it reports returned (or before the call it announces):
**         READY <next>        the store opened
**         TRY <from> <to>     about to publish offsets [from, to)
**         ACK <next>          the publish (COMMIT) returned
**         PEND <from> <to>    about to delete (some of) [from, to)
**         DEL <from> <to>     [from, to) is deleted (the call returned)
**         CLR                 the delete is over: the rest of PEND stays
**       and exits 1 with "ERR ..." on anything unexpected.
**
**   crash_child verify DIR STATEFILE [--sql] [--auto-sync] [--preallocate]
**       With --sql, first reads the table once, which settles a batch the
**       kill left in doubt between the store and the database.
**       First checks the files as the kill left them the way Go klevdb
**       would open them (go_view: every log ends at its last record, every
**       index is a bare header or lists exactly the log's records).
**       Then opens the store after a kill (no recovery option) and checks it
**       against what the killed child acknowledged; STATEFILE has lines
**         acked <next>     try <from> <to>     del <from> <to>
**         pend <from> <to>
**       Then finishes the pending deletes, publishes a few messages at the
**       next offset and reads them back. Prints "NEXT <next>" and exits 0,
**       or prints "FAIL ..." lines and exits 1.
**
**   crash_child bigdel-make DIR N ROLLOVER / bigdel DIR N [--sql] /
**   bigdel-verify DIR N
**       delete_test.py: a store of N messages, one delete of every third
**       offset in it (C API or one SQL DELETE) killed at a random moment,
**       then a check that the delete is all there or not at all.
*/
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <klevdb.h>

#ifdef CRASH_SQL
#include <sqlite3.h>
int sqlite3_klevdb_init(sqlite3 *db, char **err, const sqlite3_api_routines *api);
#endif

#define ROLLOVER (64 * 1024)
#define TIME_BASE INT64_C(1700000000000000)
#define KEEP_MAX 20000      /* the child trims the store to about this many */

/* ---- the generator: every byte of a message from its offset ---- */

static uint64_t mix(uint64_t x) {
  x += UINT64_C(0x9e3779b97f4a7c15);
  x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
  return x ^ (x >> 31);
}

typedef struct gen {
  uint8_t key[16];
  size_t key_len;
  uint8_t value[400];
  size_t value_len;
  int64_t time;
} gen;

static void gen_msg(int64_t o, gen *g) {
  uint64_t h = mix((uint64_t)o);
  if (o % 11 == 3) {
    g->key_len = 0;                                 /* no key */
  } else if (o % 7 == 0) {
    g->key_len = (size_t)snprintf((char *)g->key, sizeof(g->key), "u%05u",
                                  (unsigned)(h % 50));  /* keys that repeat */
  } else {
    g->key_len = (size_t)snprintf((char *)g->key, sizeof(g->key), "%010lld", (long long)o);
  }
  g->value_len = (size_t)((h >> 8) % 300);
  if (o % 7 == 0 && (h >> 20) % 4 == 0) g->value_len = 0;   /* tombstones */
  for (size_t i = 0; i < g->value_len; i++)
    g->value[i] = (uint8_t)((h >> ((i % 8) * 8)) + i * 31u);
  g->time = TIME_BASE + o * 1000;
}

/* ---- reporting ---- */

static void say(const char *fmt, ...) {
  char line[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
  va_end(ap);
  line[n++] = '\n';
  size_t off = 0;
  while (off < (size_t)n) {
    ssize_t w = write(1, line + off, (size_t)n - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) _exit(3);   /* the driver went away */
    off += (size_t)w;
  }
}

static void die(const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  say("ERR %s", msg);
  fprintf(stderr, "crash_child: %s\n", msg);
  exit(1);
}

static uint64_t rng;
static uint64_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}
static int64_t rnd_in(int64_t lo, int64_t hi) {   /* [lo, hi] */
  return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

/* Offsets as ranges [from, to) on one PEND/DEL line each. */
static void say_offsets(const char *what, const int64_t *offs, size_t n) {
  size_t i = 0;
  while (i < n) {
    size_t j = i + 1;
    while (j < n && offs[j] == offs[j - 1] + 1) j++;
    say("%s %lld %lld", what, (long long)offs[i], (long long)offs[j - 1] + 1);
    i = j;
  }
}

static int preallocate;   /* --preallocate: the layout with room allocated ahead */

static klevdb_options store_options(int auto_sync) {
  klevdb_options o = {0};
  o.create_dirs = 1;
  o.key_index = 1;
  o.time_index = 1;
  o.auto_sync = auto_sync;
  o.preallocate = preallocate;
  o.rollover = ROLLOVER;
  return o;
}

/* ---- the writer: one interface, two implementations ---- */

typedef struct writer {
  klevdb *db;           /* C mode: the store; SQL mode: a second handle for reads */
#ifdef CRASH_SQL
  sqlite3 *sql;
  sqlite3_stmt *ins;
#endif
  int use_sql;
} writer;

#ifdef CRASH_SQL
static void sql_exec(writer *w, const char *sql) {
  char *err = NULL;
  if (sqlite3_exec(w->sql, sql, NULL, NULL, &err) != SQLITE_OK)
    die("sql %s: %s", sql, err ? err : "?");
}

static int64_t sql_int(writer *w, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *q = sqlite3_vmprintf(fmt, ap);
  va_end(ap);
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(w->sql, q, -1, &st, NULL) != SQLITE_OK)
    die("prepare %s: %s", q, sqlite3_errmsg(w->sql));
  int rc = sqlite3_step(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) die("%s: %s", q, sqlite3_errmsg(w->sql));
  int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_finalize(st);
  sqlite3_free(q);
  return v;
}
#endif

static void writer_open(writer *w, const char *dir, int auto_sync, int use_sql) {
  memset(w, 0, sizeof(*w));
  w->use_sql = use_sql;
  klevdb_options o = store_options(auto_sync);
#ifdef CRASH_SQL
  if (use_sql) {
    char dbpath[4200];
    snprintf(dbpath, sizeof(dbpath), "%s.db", dir);
    if (sqlite3_open(dbpath, &w->sql) != SQLITE_OK) die("sqlite3_open %s", dbpath);
    char *q = sqlite3_mprintf(
        "CREATE VIRTUAL TABLE IF NOT EXISTS t USING klevdb(dir=%Q, rollover='64KB', auto_sync=%d, "
        "key='blob', value='blob', preallocate=%d)",
        dir, auto_sync, preallocate);
    sql_exec(w, q);
    sqlite3_free(q);
    /* Touch the table so that it has the store open before our handle. */
    sql_int(w, "SELECT count(*) FROM t WHERE \"offset\" = 0");
    if (sqlite3_prepare_v2(w->sql, "INSERT INTO t(key, value, time) VALUES (?, ?, ?)", -1,
                           &w->ins, NULL) != SQLITE_OK)
      die("prepare insert: %s", sqlite3_errmsg(w->sql));
  }
#else
  if (use_sql) die("built without SQL");
#endif
  klevdb_error e;
  if (klevdb_open(dir, &o, &w->db, &e)) die("open %s: %s", dir, e.msg);
}

static int64_t writer_next(writer *w) {
  int64_t next;
  if (klevdb_next_offset(w->db, &next)) die("next offset: %s", klevdb_errmsg(w->db));
  return next;
}

/* Publishes offsets [next, next + n); returns the new next. */
static int64_t writer_publish(writer *w, int64_t next, size_t n) {
  static gen *gs;
  static klevdb_msg *ms;
  static size_t cap;
  if (cap < n) {
    cap = n;
    gs = realloc(gs, cap * sizeof(*gs));
    ms = realloc(ms, cap * sizeof(*ms));
    if (!gs || !ms) die("out of memory");
  }
  for (size_t i = 0; i < n; i++) {
    gen_msg(next + (int64_t)i, &gs[i]);
    ms[i] = (klevdb_msg){.time = gs[i].time, .key = gs[i].key, .key_len = gs[i].key_len,
                         .value = gs[i].value, .value_len = gs[i].value_len};
  }
  int64_t want = next + (int64_t)n, got = -1;
  say("TRY %lld %lld", (long long)next, (long long)want);
  if (!w->use_sql) {
    if (klevdb_publish(w->db, ms, n, &got)) die("publish %zu at %lld: %s", n, (long long)next, klevdb_errmsg(w->db));
  } else {
#ifdef CRASH_SQL
    sql_exec(w, "BEGIN");
    for (size_t i = 0; i < n; i++) {
      sqlite3_stmt *st = w->ins;
      if (ms[i].key_len) sqlite3_bind_blob(st, 1, ms[i].key, (int)ms[i].key_len, SQLITE_STATIC);
      else sqlite3_bind_null(st, 1);
      if (ms[i].value_len) sqlite3_bind_blob(st, 2, ms[i].value, (int)ms[i].value_len, SQLITE_STATIC);
      else sqlite3_bind_null(st, 2);
      sqlite3_bind_int64(st, 3, ms[i].time);
      if (sqlite3_step(st) != SQLITE_DONE) die("insert: %s", sqlite3_errmsg(w->sql));
      sqlite3_reset(st);
      int64_t rowid = sqlite3_last_insert_rowid(w->sql);
      if (rowid != next + (int64_t)i)
        die("insert %zu of the transaction got offset %lld, expected %lld", i, (long long)rowid,
            (long long)(next + (int64_t)i));
    }
    sql_exec(w, "COMMIT");
    got = writer_next(w);
#endif
  }
  if (got != want) die("publish %zu at %lld: next is %lld, expected %lld", n, (long long)next, (long long)got, (long long)want);
  say("ACK %lld", (long long)got);
  return got;
}

static void check_deleted(const char *what, klevdb_deleted *d, int64_t want) {
  if (want >= 0 && d->count != want)
    die("%s deleted %lld messages, the finder said %lld", what, (long long)d->count, (long long)want);
}

/* Deletes [from, to) ranges. */
static void writer_delete_ranges(writer *w, const klevdb_range *r, size_t n) {
  for (size_t i = 0; i < n; i++) say("PEND %lld %lld", (long long)r[i].from, (long long)r[i].to);
  if (!w->use_sql) {
    klevdb_deleted d;
    if (klevdb_delete_ranges(w->db, r, n, &d)) die("delete ranges: %s", klevdb_errmsg(w->db));
  } else {
#ifdef CRASH_SQL
    sql_exec(w, "BEGIN");
    for (size_t i = 0; i < n; i++) {
      char q[200];
      snprintf(q, sizeof(q), "DELETE FROM t WHERE \"offset\" >= %lld AND \"offset\" < %lld",
               (long long)r[i].from, (long long)r[i].to);
      sql_exec(w, q);
    }
    sql_exec(w, "COMMIT");
#endif
  }
  for (size_t i = 0; i < n; i++) say("DEL %lld %lld", (long long)r[i].from, (long long)r[i].to);
  say("CLR");
}

static void writer_trim(writer *w, int64_t before) {
  say("PEND 0 %lld", (long long)before);
  if (!w->use_sql) {
    klevdb_deleted d;
    if (klevdb_trim_by_offset(w->db, before, &d)) die("trim: %s", klevdb_errmsg(w->db));
  } else {
#ifdef CRASH_SQL
    sql_int(w, "SELECT klevdb_trim('t', 'offset', %lld)", (long long)before);
#endif
  }
  say("DEL 0 %lld", (long long)before);
  say("CLR");
}

/* Go's one-segment delete of a few offsets. */
static void writer_delete_some(writer *w, int64_t lo, int64_t hi) {
  int64_t offs[20];
  size_t n = (size_t)rnd_in(1, 20);
  for (size_t i = 0; i < n; i++) offs[i] = rnd_in(lo, hi - 1);
  for (size_t i = 1; i < n; i++)   /* sort, unique */
    for (size_t j = i; j > 0 && offs[j] < offs[j - 1]; j--) {
      int64_t t = offs[j]; offs[j] = offs[j - 1]; offs[j - 1] = t;
    }
  size_t m = 0;
  for (size_t i = 0; i < n; i++) if (!m || offs[i] != offs[m - 1]) offs[m++] = offs[i];
  say_offsets("PEND", offs, m);
  if (!w->use_sql) {
    klevdb_deleted d;
    int64_t *gone = NULL;
    if (klevdb_delete(w->db, offs, m, &d, &gone)) die("delete: %s", klevdb_errmsg(w->db));
    say_offsets("DEL", gone, (size_t)d.count);
    free(gone);
  } else {
#ifdef CRASH_SQL
    /* SQL has no one-segment delete: one DELETE ... IN (...) of them all. */
    char q[1024];
    size_t len = (size_t)snprintf(q, sizeof(q), "DELETE FROM t WHERE \"offset\" IN (");
    for (size_t i = 0; i < m; i++)
      len += (size_t)snprintf(q + len, sizeof(q) - len, "%s%lld", i ? "," : "", (long long)offs[i]);
    snprintf(q + len, sizeof(q) - len, ")");
    sql_exec(w, q);
    say_offsets("DEL", offs, m);
#endif
  }
  say("CLR");
}

static void writer_compact(writer *w, int updates, int64_t before_us) {
  int64_t *offs = NULL;
  size_t n = 0;
  if (klevdb_find_offsets(w->db, updates ? KLEVDB_FIND_UPDATES : KLEVDB_FIND_DELETES, before_us,
                          &offs, &n))
    die("find: %s", klevdb_errmsg(w->db));
  say_offsets("PEND", offs, n);
  klevdb_deleted d = {0, 0};
  if (!w->use_sql) {
    klevdb_err rc = updates ? klevdb_compact_updates(w->db, before_us, &d)
                            : klevdb_compact_deletes(w->db, before_us, &d);
    if (rc) die("compact: %s", klevdb_errmsg(w->db));
  } else {
#ifdef CRASH_SQL
    d.count = sql_int(w, "SELECT klevdb_compact('t', '%s', %lld)", updates ? "updates" : "deletes",
                      (long long)before_us);
#endif
  }
  check_deleted(updates ? "compact updates" : "compact deletes", &d, (int64_t)n);
  say_offsets("DEL", offs, n);
  say("CLR");
  free(offs);
}

static int run(const char *dir, uint64_t seed, int use_sql, int auto_sync) {
  rng = mix(seed) | 1;
  writer w;
  writer_open(&w, dir, auto_sync, use_sql);
  int64_t next = writer_next(&w);
  say("READY %lld", (long long)next);
  for (long iter = 0;; iter++) {
    uint64_t r = rnd() % 1000;
    klevdb_bounds b;
    if (klevdb_bounds_get(w.db, &b)) die("bounds: %s", klevdb_errmsg(w.db));
    if (b.next_offset != next) die("bounds next %lld, expected %lld", (long long)b.next_offset, (long long)next);
    int64_t oldest = b.oldest_offset < 0 ? next : b.oldest_offset;
    if (r < 880 || next - oldest < 50) {
      next = writer_publish(&w, next, (size_t)rnd_in(1, 100));
    } else if (r < 900) {
      /* Several rollover sizes in one batch: the split path (batch.c). */
      next = writer_publish(&w, next, (size_t)rnd_in(1600, 4000));
    } else if (r < 930) {
      int64_t before = next - KEEP_MAX > oldest ? next - KEEP_MAX : oldest + rnd_in(1, (next - oldest) / 4);
      writer_trim(&w, before);
    } else if (r < 960) {
      klevdb_range rs[3];
      size_t n = (size_t)rnd_in(1, 3);
      int64_t from = rnd_in(oldest, next - 1);
      size_t k = 0;
      for (size_t i = 0; i < n && from < next; i++) {
        int64_t to = from + rnd_in(1, 300);
        if (to > next) to = next;
        rs[k++] = (klevdb_range){from, to};
        from = to + rnd_in(1, 2000);
      }
      /* Now and then the newest messages: the head loses its newest. */
      if (rnd() % 4 == 0) {
        if (k == 3) k--;
        rs[k++] = (klevdb_range){next - rnd_in(1, 20), next};
      }
      writer_delete_ranges(&w, rs, k);
    } else if (r < 980) {
      writer_delete_some(&w, oldest, next);
    } else {
      int64_t before = TIME_BASE + rnd_in(oldest, next - 1) * 1000;
      writer_compact(&w, r < 990, before);
    }
    if (iter % 64 == 63 && rnd() % 2) klevdb_gc(w.db, 0);
  }
  return 0;
}

/* ---- verify ---- */

typedef struct ranges {
  klevdb_range *r;
  size_t n, cap;
} ranges;

static void ranges_add(ranges *rs, int64_t from, int64_t to) {
  if (rs->n == rs->cap) {
    rs->cap = rs->cap ? rs->cap * 2 : 64;
    rs->r = realloc(rs->r, rs->cap * sizeof(*rs->r));
    if (!rs->r) die("out of memory");
  }
  rs->r[rs->n++] = (klevdb_range){from, to};
}

static int in_ranges(const ranges *rs, int64_t o) {
  for (size_t i = 0; i < rs->n; i++)
    if (o >= rs->r[i].from && o < rs->r[i].to) return 1;
  return 0;
}

/* del is sorted and merged by the driver. */
static int in_sorted(const ranges *rs, int64_t o) {
  size_t lo = 0, hi = rs->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (rs->r[mid].from <= o) lo = mid + 1;
    else hi = mid;
  }
  return lo > 0 && o < rs->r[lo - 1].to;
}

static int fails;
static void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("FAIL ");
  vprintf(fmt, ap);
  printf("\n");
  va_end(ap);
  fflush(stdout);
  if (++fails > 20) exit(1);
}

/* ---- the store as Go klevdb finds it, before any open of ours ---- */

/* Go opens a store as it is (no Recover): it appends to the last log at
** its size, trusts an index with items and rebuilds one that holds its
** header alone (or nothing). So after a kill, in every segment: the log
** must end exactly at the end of its last complete record, and the index
** must either be a bare header or list exactly the log's records; no two
** segments may hold the same offset (Go has no delete marker). Written
** from the format (not the library's code) so that it checks the library. */

static uint32_t crc_table[256];
static uint32_t crc32c_sw(const uint8_t *p, size_t n) {
  if (!crc_table[1])
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      crc_table[i] = c;
    }
  uint32_t c = 0xFFFFFFFFu;
  while (n--) c = crc_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

static uint64_t be64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
  return v;
}
static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint8_t *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 16, n = 0;
  uint8_t *p = malloc(cap);
  size_t r;
  while (p && (r = fread(p + n, 1, cap - n, f)) > 0) {
    n += r;
    if (n == cap) p = realloc(p, cap *= 2);
  }
  fclose(f);
  *len = n;
  return p;
}

static int cmp_ll(const void *a, const void *b) {
  long long x = *(const long long *)a, y = *(const long long *)b;
  return (x > y) - (x < y);
}

/* A delete's renames are covered by a marker only our open reads, so a
** kill inside one may leave a state Go reads wrongly (a rewritten index
** beside the old log, an old segment beside its rewrite): counted apart
** while a delete was in flight, a failure otherwise. */
typedef struct goview {
  int in_delete, bad, del;
} goview;
static void go_bad(goview *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void go_bad_log(goview *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void go_report(goview *g, int tolerated, const char *fmt, va_list ap) {
  char msg[1024];
  vsnprintf(msg, sizeof msg, fmt, ap);
  if (tolerated) {
    printf("NOTE %s (a delete was in flight)\n", msg);
    g->del = 1;
  } else {
    fail("%s", msg);
    g->bad++;
  }
}
static void go_bad(goview *g, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  go_report(g, g->in_delete, fmt, ap);
  va_end(ap);
}
/* A log that does not end at its last record: a delete writes its logs
** whole and renames them, so this is never tolerated. */
static void go_bad_log(goview *g, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  go_report(g, 0, fmt, ap);
  va_end(ap);
}

/* Checks every segment. Returns 0 when Go opens the store as it is, 1 when
** Go refuses it (see below), and prints FAIL lines for anything else.
**
** A kill inside a publish whose batch crosses a page boundary can leave
** the one state no ordering of write(2)s avoids (a multi-page write is not
** atomic under SIGKILL): bytes past the last record that start with the
** zeros of the batch's first page, not yet written. Go's scan rejects them
** ("log corrupted"), so Go refuses the store, reads nothing wrong and
** writes nothing, until our next open cuts them. That is tolerated for the
** last segment, with a bare index, while a publish was in flight (or
** always with the preallocated layout, whose zeroed room Go refuses alike);
** bytes Go would take for the end of the log (fewer than a header) never. */
static int go_view(const char *dir, int in_flight, int in_delete, int preallocate) {
  int refused = 0;
  goview gv = {in_delete, 0, 0};
  static const uint8_t lmagic[8] = {0xFF, 'k', 'l', 'e', 'v', 's', 1, 0};
  static const uint8_t imagic[8] = {0xFF, 'k', 'l', 'e', 'v', 'i', 1, 3};
  static const uint8_t trailer[8] = {0xDE, 0xAD, 0xBE, 0xEF, 0xFE, 0xED, 0xFA, 0xCE};
  char cmd[4400];
  snprintf(cmd, sizeof cmd, "ls '%s'", dir);
  FILE *ls = popen(cmd, "r");
  if (!ls) die("ls %s", dir);
  long long bases[4096], ibases[4096];
  size_t nb = 0, ni = 0;
  char name[512];
  while (fgets(name, sizeof name, ls)) {
    size_t l = strlen(name);
    if (l && name[l - 1] == '\n') name[--l] = 0;
    if (l == 24 && !strcmp(name + 20, ".log") && nb < 4096) bases[nb++] = atoll(name);
    if (l == 26 && !strcmp(name + 20, ".index") && ni < 4096) ibases[ni++] = atoll(name);
  }
  pclose(ls);
  qsort(bases, nb, sizeof bases[0], cmp_ll);
  /* An index with items but no log: Go appends to it when it makes that
  ** segment itself (its index writer keeps a file it finds). */
  for (size_t i = 0; i < ni; i++) {
    int has_log = 0;
    for (size_t j = 0; j < nb && !has_log; j++) has_log = bases[j] == ibases[i];
    char ip[4400];
    snprintf(ip, sizeof ip, "%s/%020lld.index", dir, ibases[i]);
    struct stat sb;
    if (!has_log && stat(ip, &sb) == 0 && sb.st_size > 8) {
      go_bad(&gv, "go view: %s: %lld bytes of index for a segment with no log", ip, (long long)sb.st_size);
    }
  }
  int64_t seg_prev = -1;
  for (size_t si = 0; si < nb; si++) {
    char lp[4400], ip[4400];
    snprintf(lp, sizeof lp, "%s/%020lld.log", dir, bases[si]);
    snprintf(ip, sizeof ip, "%s/%020lld.index", dir, bases[si]);
    size_t ll = 0, il = 0;
    uint8_t *log = slurp(lp, &ll), *idx = slurp(ip, &il);
    if (log && ll == 0) {
      /* Created, header not yet written: Go writes it (an empty log). */
    } else if (!log || ll < 8 || memcmp(log, lmagic, 8)) {
      go_bad_log(&gv, "go view: %s: no V2 log header (%zu bytes)", lp, ll);
    } else {
      /* The records, as Go's reindex would list them. */
      size_t pos = 8, nrec = 0, cap = 256;
      uint8_t (*items)[32] = malloc(cap * 32);
      int64_t prev_off = -1;
      while (pos < ll) {
        if (ll - pos < 28) {
          go_bad_log(&gv, "go view: %s: %zu bytes after the last record at %zu (Go takes them for the end "
               "and appends after them)", lp, ll - pos, pos);
          break;
        }
        const uint8_t *r = log + pos;
        uint32_t klen = be32(r + 20), vlen = be32(r + 24);   /* after crc, offset, time */
        size_t len = 28 + (size_t)klen + vlen + 8;
        if (klen > (1u << 26) || vlen > (1u << 26) || len > ll - pos ||
            be32(r) != crc32c_sw(r + 4, len - 4) || memcmp(r + len - 8, trailer, 8)) {
          int zeros = 1;
          for (size_t i = pos; i < ll && i < pos + 28 && zeros; i++) zeros = log[i] == 0;
          int last = si + 1 == nb, bare = !idx || il <= 8;
          if (last && bare && zeros && (in_flight || preallocate)) {
            refused = 1;
          } else {
            go_bad_log(&gv, "go view: %s: %zu bytes at %zu are no complete record (the log's size is not "
                 "the end of its last record)", lp, ll - pos, pos);
          }
          break;
        }
        int64_t off = (int64_t)be64(r + 4), t = (int64_t)be64(r + 12);
        if (off <= seg_prev) {
          go_bad(&gv, "go view: %s: offset %lld, but an older segment reaches %lld (overlap)", lp,
               (long long)off, (long long)seg_prev);
          break;
        }
        if (off <= prev_off) {
          go_bad(&gv, "go view: %s: offset %lld after %lld", lp, (long long)off, (long long)prev_off);
          break;
        }
        prev_off = off;
        uint64_t h = 0xcbf29ce484222325ULL;
        for (uint32_t i = 0; i < klen; i++) h = (h ^ r[28 + i]) * 0x100000001b3ULL;
        if (nrec == cap) items = realloc(items, (cap *= 2) * 32);
        uint8_t *it = items[nrec++];
        for (int i = 0; i < 8; i++) {
          it[i] = (uint8_t)((uint64_t)off >> (56 - 8 * i));
          it[8 + i] = (uint8_t)((uint64_t)pos >> (56 - 8 * i));
          it[16 + i] = (uint8_t)((uint64_t)t >> (56 - 8 * i));   /* record time */
          it[24 + i] = (uint8_t)(h >> (56 - 8 * i));
        }
        pos += len;
      }
      /* The index: a bare header (rebuilt), or exactly these records. */
      if (!idx || il < 8 || memcmp(idx, imagic, 8)) {
        if (idx && il > 0) {
          go_bad(&gv, "go view: %s: %zu bytes with no index header", ip, il);
        }
      } else if (il > 8) {
        size_t n = (il - 8) / 32;
        if ((il - 8) % 32 || n != nrec) {
          go_bad(&gv, "go view: %s: %zu bytes of items for %zu records in the log (Go trusts it)", ip,
               il - 8, nrec);
        } else {
          int64_t prev_ts = INT64_MIN;
          for (size_t i = 0; i < n; i++) {
            const uint8_t *a = idx + 8 + i * 32, *b = items[i];
            int64_t ts = (int64_t)be64(a + 16), rt = (int64_t)be64(b + 16);
            /* index times are the record's, clamped to never go back */
            int64_t want = prev_ts > rt ? prev_ts : rt;
            if (memcmp(a, b, 16) || memcmp(a + 24, b + 24, 8) || (i ? ts != want : ts < rt)) {
              go_bad(&gv, "go view: %s: item %zu does not match record %zu of the log", ip, i, i);
              break;
            }
            prev_ts = ts;
          }
        }
      }
      free(items);
      if (prev_off > seg_prev) seg_prev = prev_off;
    }
    free(log);
    free(idx);
  }
  return gv.bad ? -1 : gv.del ? 2 : refused;
}

static int msg_matches(const klevdb_msg *m, int64_t o) {
  gen g;
  gen_msg(o, &g);
  return m->key_len == g.key_len && (!g.key_len || memcmp(m->key, g.key, g.key_len) == 0) &&
         m->value_len == g.value_len && (!g.value_len || memcmp(m->value, g.value, g.value_len) == 0) &&
         m->time == g.time;
}

/* A SQL writer's store is settled by its table's first use: a batch the
** kill left prepared is committed or dropped as the database decided. */
static void settle_sql(const char *dir) {
#ifdef CRASH_SQL
  char dbpath[4200];
  snprintf(dbpath, sizeof(dbpath), "%s.db", dir);
  sqlite3 *db;
  /* Killed before the database or the table was made: nothing to settle. */
  if (access(dbpath, F_OK) != 0) return;
  if (sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
    die("sqlite3_open %s: %s", dbpath, sqlite3_errmsg(db));
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM t WHERE \"offset\" = 0", -1, &st, NULL);
  if (rc != SQLITE_OK && strstr(sqlite3_errmsg(db), "no such table")) {
    sqlite3_close(db);
    return;
  }
  if (rc != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW)
    die("settle %s: %s", dbpath, sqlite3_errmsg(db));
  sqlite3_finalize(st);
  sqlite3_close(db);
#else
  (void)dir;
#endif
}

static int verify(const char *dir, const char *statefile, int auto_sync, int use_sql) {
  FILE *f = fopen(statefile, "r");
  if (!f) die("open %s: %s", statefile, strerror(errno));
  int64_t acked = -1, try_from = -1, try_to = -1;
  ranges del = {0}, pend = {0};
  char word[16];
  long long a, b;
  while (fscanf(f, "%15s %lld", word, &a) == 2) {
    if (!strcmp(word, "acked")) { acked = a; continue; }
    if (fscanf(f, "%lld", &b) != 1) die("%s: bad line %s", statefile, word);
    if (!strcmp(word, "try")) { try_from = a; try_to = b; }
    else if (!strcmp(word, "del")) ranges_add(&del, a, b);
    else if (!strcmp(word, "pend")) ranges_add(&pend, a, b);
    else die("%s: bad line %s", statefile, word);
  }
  fclose(f);
  if (acked < 0) die("%s: no acked line", statefile);

  /* The files as the kill left them, before our open repairs anything. */
  int go = go_view(dir, try_from >= 0, pend.n > 0, preallocate);
  /* Then the table settles a batch the kill left in doubt between the
  ** store and the database, as its first use would. */
  if (use_sql) settle_sql(dir);

  klevdb_options o = store_options(auto_sync);
  klevdb_error e;
  klevdb *db;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  if (klevdb_open(dir, &o, &db, &e)) {
    fail("reopen read-write: %s", e.msg);
    return 1;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  int64_t next;
  if (klevdb_next_offset(db, &next)) die("next offset: %s", klevdb_errmsg(db));
  /* The next offset: the acknowledged one, or past the batch that was being
  ** published (all of it or none). Never back. */
  if (next != acked && !(try_from == acked && next == try_to))
    fail("next offset %lld after reopen: acknowledged next %lld, unacknowledged batch [%lld, %lld)",
         (long long)next, (long long)acked, (long long)try_from, (long long)try_to);

  /* Every message: increasing, not deleted, below next, bytes as generated;
  ** every acknowledged and not (maybe) deleted offset present. */
  klevdb_batch bt = KLEVDB_BATCH_INIT;
  int64_t at = KLEVDB_OFFSET_OLDEST, prev = -1, expect = 0, count = 0;
  int64_t end = next > acked ? next : acked;
  for (;;) {
    klevdb_err rc = klevdb_consume(db, at, 1000, &bt);
    if (rc) {
      fail("consume at %lld: %s", (long long)at, klevdb_errmsg(db));
      break;
    }
    if (bt.len == 0) break;
    for (size_t i = 0; i < bt.len; i++) {
      const klevdb_msg *m = &bt.msgs[i];
      int64_t off = m->offset;
      if (off <= prev) fail("offset %lld after %lld (duplicate or out of order)", (long long)off, (long long)prev);
      if (off >= next) fail("offset %lld at or past the next offset %lld", (long long)off, (long long)next);
      if (in_sorted(&del, off)) fail("offset %lld is there but was deleted", (long long)off);
      if (!msg_matches(m, off)) fail("offset %lld: bytes differ from what was published", (long long)off);
      for (int64_t x = expect; x < off && x < acked; x++)
        if (!in_sorted(&del, x) && !in_ranges(&pend, x))
          fail("offset %lld acknowledged and never deleted, but missing", (long long)x);
      if (off > prev) {
        prev = off;
        expect = off + 1;
      }
      count++;
    }
    if (bt.next_offset <= at && at >= 0) {
      fail("consume at %lld does not move on (next %lld)", (long long)at, (long long)bt.next_offset);
      break;
    }
    at = bt.next_offset;
    if (at >= end) break;
  }
  for (int64_t x = expect; x < acked; x++)
    if (!in_sorted(&del, x) && !in_ranges(&pend, x))
      fail("offset %lld acknowledged and never deleted, but missing", (long long)x);
  /* Every message the segments hold was read once: a segment left behind
  ** by a rewrite would hold offsets a newer one has too (consume, which
  ** goes segment by segment, skips them). */
  klevdb_stat sst;
  if (klevdb_stat_get(db, &sst)) fail("stat: %s", klevdb_errmsg(db));
  else if (sst.messages != count)
    fail("the segments hold %lld messages, consume read %lld (segments overlap: duplicate offsets)",
         (long long)sst.messages, (long long)count);
  /* The unacknowledged batch: all or nothing. */
  if (try_from >= 0 && next == try_to) {
    klevdb_batch g = KLEVDB_BATCH_INIT;
    for (int64_t x = try_from; x < try_to; x++) {
      if (klevdb_get(db, x, &g)) {
        fail("unacknowledged batch [%lld, %lld) is there but offset %lld is not: %s",
             (long long)try_from, (long long)try_to, (long long)x, klevdb_errmsg(db));
        break;
      }
    }
    klevdb_batch_free(&g);
  }

  /* Finish the deletes that were going on. */
  if (pend.n) {
    klevdb_deleted d;
    if (klevdb_delete_ranges(db, pend.r, pend.n, &d)) fail("finish deletes: %s", klevdb_errmsg(db));
  }
  /* The next publish goes on from next. */
  size_t n = (size_t)(1 + next % 5);
  gen gs[5];
  klevdb_msg ms[5];
  for (size_t i = 0; i < n; i++) {
    gen_msg(next + (int64_t)i, &gs[i]);
    ms[i] = (klevdb_msg){.time = gs[i].time, .key = gs[i].key, .key_len = gs[i].key_len,
                         .value = gs[i].value, .value_len = gs[i].value_len};
  }
  int64_t after;
  if (klevdb_publish(db, ms, n, &after)) {
    fail("publish after reopen: %s", klevdb_errmsg(db));
  } else if (after != next + (int64_t)n) {
    fail("publish of %zu at %lld: next %lld", n, (long long)next, (long long)after);
  } else {
    for (size_t i = 0; i < n; i++) {
      if (klevdb_get(db, next + (int64_t)i, &bt) || bt.len != 1 || !msg_matches(&bt.msgs[0], next + (int64_t)i))
        fail("offset %lld published after reopen does not read back", (long long)(next + (int64_t)i));
    }
  }
  klevdb_batch_free(&bt);
  klevdb_close(db);
  printf("NEXT %lld reopened_next=%lld messages=%lld go_view=%s open_ms=%.2f\n", (long long)after,
         (long long)next, (long long)count, go < 0 ? "bad" : go == 2 ? "in_delete" : go ? "refuses" : "ok",
         (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
  free(del.r);
  free(pend.r);
  return fails ? 1 : 0;
}

/* ---- one big delete across many segments (delete_test.py) ---- */

/* A store of n messages gen(0..n) in segments of rollover bytes. */
static int bigdel_make(const char *dir, int64_t n, int64_t rollover) {
  klevdb_options o = store_options(0);
  o.rollover = rollover;
  klevdb_error e;
  klevdb *db;
  if (klevdb_open(dir, &o, &db, &e)) die("open %s: %s", dir, e.msg);
  gen gs[100];
  klevdb_msg ms[100];
  for (int64_t at = 0; at < n;) {
    size_t k = 0;
    for (; k < 100 && at + (int64_t)k < n; k++) {
      gen_msg(at + (int64_t)k, &gs[k]);
      ms[k] = (klevdb_msg){.time = gs[k].time, .key = gs[k].key, .key_len = gs[k].key_len,
                           .value = gs[k].value, .value_len = gs[k].value_len};
    }
    if (klevdb_publish(db, ms, k, NULL)) die("publish: %s", klevdb_errmsg(db));
    at += (int64_t)k;
  }
  klevdb_stat st;
  if (klevdb_stat_get(db, &st)) die("stat: %s", klevdb_errmsg(db));
  klevdb_close(db);
  printf("made %lld messages in %lld segments\n", (long long)st.messages, (long long)st.segments);
  return 0;
}

/* Deletes every third offset of [0, n) in one call (C API) or one
** autocommit DELETE (SQL); says READY before and DONE after. */
static int bigdel(const char *dir, int64_t n, int use_sql) {
  struct timespec t0, t1;
  if (!use_sql) {
    klevdb_options o = store_options(0);
    klevdb_error e;
    klevdb *db;
    if (klevdb_open(dir, &o, &db, &e)) die("open %s: %s", dir, e.msg);
    klevdb_range *r = malloc((size_t)(n / 3 + 1) * sizeof(*r));
    if (!r) die("out of memory");
    size_t k = 0;
    for (int64_t x = 0; x < n; x += 3) r[k++] = (klevdb_range){x, x + 1};
    say("READY %lld", (long long)n);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    klevdb_deleted d;
    if (klevdb_delete_ranges(db, r, k, &d)) die("delete: %s", klevdb_errmsg(db));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (d.count != (int64_t)k) die("deleted %lld, expected %zu", (long long)d.count, k);
    free(r);
  } else {
#ifdef CRASH_SQL
    writer w = {0};
    char dbpath[4200];
    snprintf(dbpath, sizeof(dbpath), "%s.db", dir);
    unlink(dbpath);
    if (sqlite3_open(dbpath, &w.sql) != SQLITE_OK) die("sqlite3_open %s", dbpath);
    char *q = sqlite3_mprintf("CREATE VIRTUAL TABLE t USING klevdb(dir=%Q)", dir);
    sql_exec(&w, q);
    sqlite3_free(q);
    say("READY %lld", (long long)n);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    sql_exec(&w, "DELETE FROM t WHERE \"offset\" % 3 = 0");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (sqlite3_changes(w.sql) != (int)((n + 2) / 3)) die("deleted %d rows", sqlite3_changes(w.sql));
#else
    die("built without SQL");
#endif
  }
  say("DONE %.1f", (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
  pause();   /* killed by the driver */
  return 0;
}

/* After a kill: every offset not divisible by 3 is there as generated; of
** the others, all are there (the delete never began) or none (it was all
** done). Prints "STATE before|after", or FAIL and exits 1. */
static int bigdel_verify(const char *dir, int64_t n) {
  klevdb_options o = store_options(0);
  klevdb_error e;
  klevdb *db;
  if (klevdb_open(dir, &o, &db, &e)) {
    fail("reopen: %s", e.msg);
    return 1;
  }
  klevdb_batch bt = KLEVDB_BATCH_INIT;
  int64_t at = KLEVDB_OFFSET_OLDEST, expect = 0, thirds = 0, count = 0;
  int mode = -1;   /* 1: every third is there, 0: none is */
  for (;;) {
    if (klevdb_consume(db, at, 1000, &bt)) {
      fail("consume at %lld: %s", (long long)at, klevdb_errmsg(db));
      break;
    }
    if (bt.len == 0) break;
    for (size_t i = 0; i < bt.len; i++) {
      int64_t off = bt.msgs[i].offset;
      if (off < expect || off >= n) fail("offset %lld out of place (expected %lld)", (long long)off, (long long)expect);
      if (!msg_matches(&bt.msgs[i], off)) fail("offset %lld: bytes differ", (long long)off);
      for (int64_t x = expect; x < off; x++) {
        if (x % 3) fail("offset %lld was never deleted but is missing", (long long)x);
        else if (mode == 1) fail("offset %lld is missing, offsets before it of the delete are there", (long long)x);
        else mode = 0;
      }
      if (off % 3 == 0) {
        if (mode == 0) fail("offset %lld is there, offsets before it of the delete are gone (half applied)", (long long)off);
        else mode = 1;
        thirds++;
      }
      expect = off + 1;
      count++;
    }
    at = bt.next_offset;
  }
  for (int64_t x = expect; x < n; x++)
    if (x % 3) fail("offset %lld was never deleted but is missing", (long long)x);
    else if (mode == 1) fail("offset %lld is missing, offsets before it of the delete are there", (long long)x);
  klevdb_stat st;
  if (klevdb_stat_get(db, &st)) fail("stat: %s", klevdb_errmsg(db));
  else if (st.messages != count) fail("segments hold %lld messages, consume read %lld", (long long)st.messages, (long long)count);
  klevdb_batch_free(&bt);
  klevdb_close(db);
  printf("STATE %s thirds=%lld messages=%lld\n", thirds ? "before" : "after", (long long)thirds,
         (long long)count);
  return fails ? 1 : 0;
}

int main(int argc, char **argv) {
  int use_sql = 0, auto_sync = 0;
  int npos = 0;
  char *pos[4] = {0};
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--sql")) use_sql = 1;
    else if (!strcmp(argv[i], "--auto-sync")) auto_sync = 1;
    else if (!strcmp(argv[i], "--preallocate")) preallocate = 1;
    else if (npos < 4) pos[npos++] = argv[i];
  }
#ifdef CRASH_SQL
  sqlite3_auto_extension((void (*)(void))sqlite3_klevdb_init);
#endif
  if (npos == 3 && !strcmp(pos[0], "run"))
    return run(pos[1], strtoull(pos[2], NULL, 10), use_sql, auto_sync);
  if (npos == 3 && !strcmp(pos[0], "verify")) return verify(pos[1], pos[2], auto_sync, use_sql);
  if (npos == 4 && !strcmp(pos[0], "bigdel-make"))
    return bigdel_make(pos[1], strtoll(pos[2], NULL, 10), strtoll(pos[3], NULL, 10));
  if (npos == 3 && !strcmp(pos[0], "bigdel")) return bigdel(pos[1], strtoll(pos[2], NULL, 10), use_sql);
  if (npos == 3 && !strcmp(pos[0], "bigdel-verify")) return bigdel_verify(pos[1], strtoll(pos[2], NULL, 10));
  fprintf(stderr, "usage: crash_child run DIR SEED [--sql] [--auto-sync] [--preallocate]\n"
                  "       crash_child verify DIR STATEFILE [--sql] [--auto-sync] [--preallocate]\n"
                  "       crash_child bigdel-make DIR N ROLLOVER\n"
                  "       crash_child bigdel DIR N [--sql]\n"
                  "       crash_child bigdel-verify DIR N\n");
  return 2;
}
