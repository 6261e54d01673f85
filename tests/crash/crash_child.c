/*
** crash_child.c - the process that crash_test.py kills, and its checker.
**
**   crash_child run DIR SEED [--sql] [--auto-sync]
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
**   crash_child verify DIR STATEFILE [--sql] [--auto-sync]
**       With --sql, first reads the table once, which settles a batch the
**       kill left in doubt between the store and the database.
**       Opens the store after a kill (no recovery option) and checks it
**       against what the killed child acknowledged; STATEFILE has lines
**         acked <next>     try <from> <to>     del <from> <to>
**         pend <from> <to>
**       Then finishes the pending deletes, publishes a few messages at the
**       next offset and reads them back. Prints "NEXT <next>" and exits 0,
**       or prints "FAIL ..." lines and exits 1.
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

static klevdb_options store_options(int auto_sync) {
  klevdb_options o = {0};
  o.create_dirs = 1;
  o.key_index = 1;
  o.time_index = 1;
  o.auto_sync = auto_sync;
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
        "key='blob', value='blob')",
        dir, auto_sync);
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
  if (use_sql) settle_sql(dir);
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
  printf("NEXT %lld reopened_next=%lld messages=%lld open_ms=%.2f\n", (long long)after,
         (long long)next, (long long)count,
         (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
  free(del.r);
  free(pend.r);
  return fails ? 1 : 0;
}

int main(int argc, char **argv) {
  int use_sql = 0, auto_sync = 0;
  int npos = 0;
  char *pos[4] = {0};
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--sql")) use_sql = 1;
    else if (!strcmp(argv[i], "--auto-sync")) auto_sync = 1;
    else if (npos < 4) pos[npos++] = argv[i];
  }
#ifdef CRASH_SQL
  sqlite3_auto_extension((void (*)(void))sqlite3_klevdb_init);
#endif
  if (npos == 3 && !strcmp(pos[0], "run"))
    return run(pos[1], strtoull(pos[2], NULL, 10), use_sql, auto_sync);
  if (npos == 3 && !strcmp(pos[0], "verify")) return verify(pos[1], pos[2], auto_sync, use_sql);
  fprintf(stderr, "usage: crash_child run DIR SEED [--sql] [--auto-sync]\n"
                  "       crash_child verify DIR STATEFILE [--sql] [--auto-sync]\n");
  return 2;
}
