/*
** test_hosttx.c - a klevdb table's writes go with the database's
** transaction: a COMMIT that fails (a commit hook's veto, SQLITE_BUSY)
** leaves the store's files as they were, a COMMIT retried after BUSY
** publishes once at the offsets last_insert_rowid() gave, ROLLBACK after
** BUSY leaves nothing, and a crash between the database's commit and the
** store's (made by putting back the store as it was at xSync) is settled
** at the next use: rolled forward when the database committed, back when
** not. A lone autocommit INSERT keeps its fast path (no shadow row).
** With "dbfull", only the database file on a small tmpfs that fills up at
** COMMIT (the store elsewhere): SQLITE_FULL leaves the store's files as
** they were; needs a tmpfs mount (root), else exits 77 (skipped).
**
** usage: test_hosttx WORKDIR [dbfull]. Prints "test_hosttx: N checks, M failed".
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "../check.h"

int sqlite3_klevdb_init(sqlite3 *db, char **err, const sqlite3_api_routines *api);

static const char *work;

/* A check of this file's own, reported by the shared harness. */
#define check_at(ok, line, ...) chk_report((ok), __FILE__, (line), __VA_ARGS__)

static sqlite3 *db_open(const char *name) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", work, name);
  sqlite3 *db = NULL;
  if (sqlite3_open(path, &db) != SQLITE_OK) {
    fprintf(stderr, "open %s: %s\n", path, sqlite3_errmsg(db));
    exit(2);
  }
  char *err = NULL;
  if (sqlite3_klevdb_init(db, &err, NULL) != SQLITE_OK) {
    fprintf(stderr, "init: %s\n", err);
    exit(2);
  }
  return db;
}

static int exec(sqlite3 *db, const char *sql) {
  char *err = NULL;
  int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
  sqlite3_free(err);
  return rc;
}
#define EXEC_OK(db, sql)                                                           \
  do {                                                                             \
    int rc_ = exec((db), (sql));                                                   \
    check_at(rc_ == SQLITE_OK, __LINE__, "%s: %d %s", (sql), rc_, sqlite3_errmsg(db)); \
  } while (0)

static long long one(sqlite3 *db, const char *sql) {
  sqlite3_stmt *st;
  long long v = -999;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
    fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(db));
    return v;
  }
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

/* ---- store files: a snapshot of a directory, compared or put back ---- */

typedef struct file {
  char name[128];
  char *data;
  long len;
} file;
typedef struct snap {
  file f[64];
  int n;
} snap;

static char *slurp(const char *path, long *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  *len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *p = malloc((size_t)*len + 1);
  if (p && fread(p, 1, (size_t)*len, f) != (size_t)*len) {
    free(p);
    p = NULL;
  }
  fclose(f);
  return p;
}

static void snap_free(snap *s) {
  for (int i = 0; i < s->n; i++) free(s->f[i].data);
  s->n = 0;
}

/* segments: .log and .index files only (what readers read). */
static void snap_take(snap *s, const char *dir, bool segments) {
  s->n = 0;
  DIR *d = opendir(dir);
  struct dirent *de;
  while (d && (de = readdir(d)) != NULL && s->n < 64) {
    size_t l = strlen(de->d_name);
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    bool seg = (l > 4 && !strcmp(de->d_name + l - 4, ".log")) ||
               (l > 6 && !strcmp(de->d_name + l - 6, ".index"));
    if (segments && !seg) continue;
    char p[768];
    snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
    file *f = &s->f[s->n++];
    snprintf(f->name, sizeof f->name, "%s", de->d_name);
    f->data = slurp(p, &f->len);
  }
  if (d) closedir(d);
}

static const file *snap_find(const snap *s, const char *name) {
  for (int i = 0; i < s->n; i++)
    if (!strcmp(s->f[i].name, name)) return &s->f[i];
  return NULL;
}

/* Bytes of f that are content: a writer's head log has room allocated
** ahead, zeros that it cuts off when it closes. */
static long content_len(const file *f) {
  size_t l = strlen(f->name);
  long n = f->len;
  if (l > 4 && !strcmp(f->name + l - 4, ".log"))
    while (n > 0 && f->data[n - 1] == 0) n--;
  return n;
}

static bool snap_same(const snap *a, const snap *b) {
  if (a->n != b->n) return false;
  for (int i = 0; i < a->n; i++) {
    const file *x = &a->f[i], *y = snap_find(b, x->name);
    long n = content_len(x);
    if (!y || n != content_len(y) || (n && memcmp(x->data, y->data, (size_t)n))) {
      fprintf(stderr, "  %s: %ld bytes, before %ld\n", x->name, n, y ? content_len(y) : -1L);
      return false;
    }
  }
  return true;
}
#define SAME_SEGMENTS(dir, before)                                                     \
  do {                                                                                 \
    snap now_;                                                                         \
    snap_take(&now_, (dir), true);                                                     \
    check_at(snap_same(&now_, (before)), __LINE__, "segment files of %s as before", (dir)); \
    snap_free(&now_);                                                                  \
  } while (0)

/* Puts the whole directory back as it was in s (files not in s go). */
static void snap_restore(const snap *s, const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *de;
  char p[768];
  while (d && (de = readdir(d)) != NULL) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
    unlink(p);
  }
  if (d) closedir(d);
  for (int i = 0; i < s->n; i++) {
    snprintf(p, sizeof p, "%s/%s", dir, s->f[i].name);
    FILE *f = fopen(p, "wb");
    if (!f || (s->f[i].len && fwrite(s->f[i].data, 1, (size_t)s->f[i].len, f) != (size_t)s->f[i].len))
      CHECK(!"restore a file");
    if (f) fclose(f);
  }
}

/* A batch is prepared in dir (a resolved one leaves .prepared zeroed). */
static bool has_prepared(const char *dir) {
  char p[512];
  snprintf(p, sizeof p, "%s/.prepared", dir);
  FILE *f = fopen(p, "rb");
  char m[8];
  bool yes = f && fread(m, 1, 8, f) == 8 && memcmp(m, "KLEVPREP", 8) == 0;
  if (f) fclose(f);
  return yes;
}

/* ---- the cases ---- */

static int veto;
static snap *hook_snap;
static const char *hook_dir;
static int hook(void *arg) {
  (void)arg;
  if (hook_snap) snap_take(hook_snap, hook_dir, false);
  return veto;
}

/* An outbox: orders, and two klevdb tables of events. */
static sqlite3 *outbox(const char *name, char *ev, char *ev2) {
  snprintf(ev, 256, "%s/%s.ev", work, name);
  snprintf(ev2, 256, "%s/%s.ev2", work, name);
  char db_name[256], sql[1024];
  snprintf(db_name, sizeof db_name, "%s.db", name);
  sqlite3 *db = db_open(db_name);
  snprintf(sql, sizeof sql,
           "CREATE TABLE orders(id INTEGER PRIMARY KEY, item TEXT);"
           "CREATE VIRTUAL TABLE ev USING klevdb(dir='%s', create_dirs=1, value='text');"
           "CREATE VIRTUAL TABLE ev2 USING klevdb(dir='%s', create_dirs=1, value='text');"
           "INSERT INTO ev(value) VALUES ('first'); INSERT INTO ev2(value) VALUES ('first');",
           ev, ev2);
  EXEC_OK(db, sql);
  return db;
}

static void test_lone_insert(void) {
  char ev[256], ev2[256];
  sqlite3 *db = outbox("lone", ev, ev2);
  /* Alone in its transaction: published as it comes, nothing recorded. */
  CHECK_EQ(one(db, "SELECT count(*) FROM ev_klevdb"), 0);
  CHECK_EQ(one(db, "SELECT count(*) FROM ev"), 1);
  CHECK(!has_prepared(ev));
  /* The shadow table is the table's: gone with DROP TABLE, renamed with it. */
  EXEC_OK(db, "ALTER TABLE ev RENAME TO events");
  CHECK_EQ(one(db, "SELECT count(*) FROM sqlite_master WHERE name = 'events_klevdb'"), 1);
  EXEC_OK(db, "DROP TABLE events");
  CHECK_EQ(one(db, "SELECT count(*) FROM sqlite_master WHERE name LIKE 'ev%_klevdb'"), 1);
  sqlite3_close(db);
}

static void test_veto(void) {
  char ev[256], ev2[256];
  sqlite3 *db = outbox("veto", ev, ev2);
  snap before, before2;
  snap_take(&before, ev, true);
  snap_take(&before2, ev2, true);
  sqlite3_commit_hook(db, hook, NULL);
  veto = 1;
  int rc = exec(db, "BEGIN; INSERT INTO orders VALUES (42, 'pen');"
                    "INSERT INTO ev(value) VALUES ('order:42'); INSERT INTO ev2(value) VALUES ('x');"
                    "DELETE FROM ev WHERE offset = 0; COMMIT");
  CHECK_EQ(rc, SQLITE_CONSTRAINT);
  veto = 0;
  CHECK_EQ(sqlite3_get_autocommit(db), 1);
  SAME_SEGMENTS(ev, &before);
  SAME_SEGMENTS(ev2, &before2);
  CHECK(!has_prepared(ev) && !has_prepared(ev2));
  CHECK_EQ(one(db, "SELECT count(*) FROM orders"), 0);
  CHECK_EQ(one(db, "SELECT count(*) FROM ev"), 1);
  CHECK_EQ(one(db, "SELECT count(*) FROM ev2"), 1);
  /* The same transaction, let through: all of it, at offset 1. */
  EXEC_OK(db, "BEGIN; INSERT INTO orders VALUES (42, 'pen'); INSERT INTO ev(value) VALUES ('order:42');");
  CHECK_EQ(sqlite3_last_insert_rowid(db), 1);
  EXEC_OK(db, "INSERT INTO ev2(value) VALUES ('x'); DELETE FROM ev WHERE offset = 0; COMMIT");
  CHECK_EQ(one(db, "SELECT count(*) FROM orders"), 1);
  CHECK_EQ(one(db, "SELECT group_concat(offset) FROM ev"), 1);
  CHECK_EQ(one(db, "SELECT count(*) FROM ev2"), 2);
  CHECK_EQ(one(db, "SELECT count(*) FROM ev_klevdb WHERE base = 1 AND count = 1"), 1);
  CHECK(!has_prepared(ev) && !has_prepared(ev2));
  snap_free(&before);
  snap_free(&before2);
  sqlite3_close(db);
}

/* An autocommit INSERT into an ordinary table whose trigger writes the
** klevdb table is not alone: the trigger's rows are counted when it ends,
** before xSync, so the batch is prepared and the veto leaves nothing. */
static void test_trigger(void) {
  char ev[256], sql[1024];
  snprintf(ev, sizeof ev, "%s/trig.ev", work);
  sqlite3 *db = db_open("trig.db");
  snprintf(sql, sizeof sql,
           "SELECT klevdb_allow_triggers('%s');"
           "CREATE TABLE orders(id INTEGER PRIMARY KEY);"
           "CREATE VIRTUAL TABLE ev USING klevdb(dir='%s', create_dirs=1, value='text', triggers=1);"
           "CREATE TRIGGER announce AFTER INSERT ON orders BEGIN "
           "INSERT INTO ev(value) VALUES ('order:' || new.id); END;"
           "INSERT INTO ev(value) VALUES ('first');", ev, ev);
  EXEC_OK(db, sql);
  snap before;
  snap_take(&before, ev, true);
  sqlite3_commit_hook(db, hook, NULL);
  veto = 1;
  CHECK_EQ(exec(db, "INSERT INTO orders VALUES (5)"), SQLITE_CONSTRAINT);
  veto = 0;
  SAME_SEGMENTS(ev, &before);
  CHECK(!has_prepared(ev));
  CHECK_EQ(one(db, "SELECT count(*) FROM orders"), 0);
  CHECK_EQ(one(db, "SELECT count(*) FROM ev"), 1);
  EXEC_OK(db, "INSERT INTO orders VALUES (5)");
  CHECK_EQ(one(db, "SELECT count(*) FROM orders"), 1);
  CHECK_EQ(one(db, "SELECT offset FROM ev WHERE value = 'order:5'"), 1);
  CHECK_EQ(one(db, "SELECT count(*) FROM ev_klevdb WHERE base = 1"), 1);
  snap_free(&before);
  sqlite3_close(db);
}

/* Another connection's read transaction makes COMMIT fail with BUSY. */
static void test_busy(bool retry) {
  char ev[256], ev2[256];
  sqlite3 *db = outbox(retry ? "busy1" : "busy2", ev, ev2);
  char name[64];
  snprintf(name, sizeof name, "%s.db", retry ? "busy1" : "busy2");
  sqlite3 *r = db_open(name);
  sqlite3_stmt *st;
  EXEC_OK(r, "BEGIN");
  CHECK(sqlite3_prepare_v2(r, "SELECT * FROM orders", -1, &st, NULL) == SQLITE_OK);
  sqlite3_step(st);
  snap before;
  snap_take(&before, ev, true);
  EXEC_OK(db, "BEGIN; INSERT INTO orders VALUES (7, 'ink'); INSERT INTO ev(value) VALUES ('order:7')");
  long long at = sqlite3_last_insert_rowid(db);
  CHECK_EQ(at, 1);
  CHECK_EQ(exec(db, "COMMIT"), SQLITE_BUSY);
  /* Failed: nothing of it for readers (the batch waits, prepared). */
  SAME_SEGMENTS(ev, &before);
  CHECK_EQ(one(r, "SELECT count(*) FROM ev"), 1);
  CHECK_EQ(exec(db, "COMMIT"), SQLITE_BUSY);
  SAME_SEGMENTS(ev, &before);
  sqlite3_finalize(st);
  EXEC_OK(r, "COMMIT");
  if (retry) {
    EXEC_OK(db, "COMMIT");
    CHECK_EQ(one(db, "SELECT count(*) FROM orders"), 1);
    CHECK_EQ(one(db, "SELECT count(*) FROM ev"), 2);
    CHECK_EQ(one(db, "SELECT offset FROM ev WHERE value = 'order:7'"), at);
  } else {
    EXEC_OK(db, "ROLLBACK");
    SAME_SEGMENTS(ev, &before);
    CHECK_EQ(one(db, "SELECT count(*) FROM orders"), 0);
    CHECK_EQ(one(db, "SELECT count(*) FROM ev"), 1);
    /* The offset is free again. */
    EXEC_OK(db, "INSERT INTO ev(value) VALUES ('next')");
    CHECK_EQ(sqlite3_last_insert_rowid(db), 1);
  }
  CHECK(!has_prepared(ev));
  snap_free(&before);
  sqlite3_close(r);
  sqlite3_close(db);
}

/* Retention recorded by a COMMIT that failed with BUSY is recorded once,
** whether the retried COMMIT comes at once or after more writes (which
** make xSync prepare the batch, and plan retention, again): the shadow
** table's totals are the messages and segments really removed. */
static void test_busy_retention(bool more) {
  char ev[256], sql[512];
  const char *name = more ? "busyret2" : "busyret1";
  snprintf(ev, sizeof ev, "%s/%s.ev", work, name);
  char db_name[64];
  snprintf(db_name, sizeof db_name, "%s.db", name);
  sqlite3 *db = db_open(db_name);
  /* A segment a message (rollover 10 bytes); max_count 2 keeps the newest
  ** two messages' segments. */
  snprintf(sql, sizeof sql,
           "CREATE TABLE orders(id INTEGER PRIMARY KEY);"
           "CREATE VIRTUAL TABLE ev USING klevdb(dir='%s', create_dirs=1, value='text', "
           "rollover=10, max_count=2);", ev);
  EXEC_OK(db, sql);
  EXEC_OK(db, "INSERT INTO ev(value) VALUES ('a'); INSERT INTO ev(value) VALUES ('b'); "
              "INSERT INTO ev(value) VALUES ('c')");
  int64_t before = one(db, "SELECT count(*) FROM ev");
  int64_t removed0 = one(db, "SELECT coalesce((SELECT base FROM ev_klevdb WHERE id = 2), 0)");
  sqlite3 *r = db_open(db_name);
  sqlite3_stmt *st;
  EXEC_OK(r, "BEGIN");
  CHECK(sqlite3_prepare_v2(r, "SELECT * FROM orders", -1, &st, NULL) == SQLITE_OK);
  sqlite3_step(st);
  EXEC_OK(db, "BEGIN; INSERT INTO orders VALUES (1); INSERT INTO ev(value) VALUES ('d')");
  CHECK_EQ(exec(db, "COMMIT"), SQLITE_BUSY);
  int64_t added = 1;
  if (more) {
    EXEC_OK(db, "INSERT INTO ev(value) VALUES ('e')");
    added++;
    CHECK_EQ(exec(db, "COMMIT"), SQLITE_BUSY);
  }
  sqlite3_finalize(st);
  EXEC_OK(r, "COMMIT");
  EXEC_OK(db, "COMMIT");
  int64_t after = one(db, "SELECT count(*) FROM ev");
  int64_t removed = one(db, "SELECT base FROM ev_klevdb WHERE id = 2") - removed0;
  CHECK(removed > 0);
  CHECK_EQ(removed, before + added - after);
  CHECK_EQ(one(db, "SELECT base FROM ev_klevdb WHERE id = 3"), removed);
  sqlite3_close(r);
  sqlite3_close(db);
}

/* A crash after xSync: the store as it was then (the batch prepared) is
** put back once the connection is gone; the next connection's first use
** settles it as the database decided. */
static void test_crash(bool committed) {
  char ev[256], ev2[256];
  const char *name = committed ? "crash1" : "crash2";
  sqlite3 *db = outbox(name, ev, ev2);
  snap at_sync, before;
  snap_take(&before, ev, true);
  hook_snap = &at_sync;
  hook_dir = ev;
  sqlite3_commit_hook(db, hook, NULL);
  veto = !committed;
  int rc = exec(db, "BEGIN; INSERT INTO orders VALUES (9, 'cap'); INSERT INTO ev(value) VALUES "
                    "('order:9'), ('order:9b'); COMMIT");
  CHECK_EQ(rc, committed ? SQLITE_OK : SQLITE_CONSTRAINT);
  veto = 0;
  hook_snap = NULL;
  sqlite3_close(db);
  CHECK(snap_find(&at_sync, ".prepared") != NULL);
  snap_restore(&at_sync, ev);
  CHECK(has_prepared(ev));
  char db_name[64];
  snprintf(db_name, sizeof db_name, "%s.db", name);
  db = db_open(db_name);
  CHECK_EQ(one(db, "SELECT count(*) FROM orders"), committed ? 1 : 0);
  CHECK_EQ(one(db, "SELECT count(*) FROM ev"), committed ? 3 : 1);
  CHECK(!has_prepared(ev));
  if (committed) {
    CHECK_EQ(one(db, "SELECT offset FROM ev WHERE value = 'order:9b'"), 2);
  } else {
    /* The log as before (the index of a head is flushed at close, so the
    ** reopened store's index file differs in bytes, not in content). */
    snap now;
    snap_take(&now, ev, true);
    const file *a = snap_find(&now, "00000000000000000000.log"),
               *b = snap_find(&before, "00000000000000000000.log");
    CHECK(a && b && content_len(a) == content_len(b) && !memcmp(a->data, b->data, (size_t)content_len(a)));
    CHECK_EQ(now.n, 2);
    snap_free(&now);
    EXEC_OK(db, "INSERT INTO ev(value) VALUES ('next')");
    CHECK_EQ(sqlite3_last_insert_rowid(db), 1);
  }
  snap_free(&at_sync);
  snap_free(&before);
  sqlite3_close(db);
}

/* Two database files write one store: a batch left in doubt by the one
** is settled only by it (the other's shadow table knows nothing of it). */
static void test_two_files(void) {
  char ev[256], ev2[256], sql[512];
  sqlite3 *db = outbox("own1", ev, ev2);
  sqlite3 *other = db_open("own2.db");
  snprintf(sql, sizeof sql, "CREATE VIRTUAL TABLE ev USING klevdb(dir='%s', value='text')", ev);
  EXEC_OK(other, sql);
  sqlite3_close(other);
  snap at_sync;
  hook_snap = &at_sync;
  hook_dir = ev;
  sqlite3_commit_hook(db, hook, NULL);
  EXEC_OK(db, "BEGIN; INSERT INTO orders VALUES (3, 'pad'); INSERT INTO ev(value) VALUES "
              "('order:3'); COMMIT");
  hook_snap = NULL;
  sqlite3_close(db);
  snap_restore(&at_sync, ev);
  other = db_open("own2.db");
  CHECK_EQ(one(other, "SELECT count(*) FROM ev"), 1);
  CHECK(has_prepared(ev));
  CHECK_EQ(exec(other, "INSERT INTO ev(value) VALUES ('x')"), SQLITE_BUSY);
  CHECK(strstr(sqlite3_errmsg(other), "in doubt") != NULL);
  CHECK(has_prepared(ev));
  sqlite3_close(other);
  db = db_open("own1.db");
  CHECK_EQ(one(db, "SELECT count(*) FROM ev"), 2);
  CHECK_EQ(one(db, "SELECT offset FROM ev WHERE value = 'order:3'"), 1);
  CHECK(!has_prepared(ev));
  sqlite3_close(db);
  snap_free(&at_sync);
}

/* ---- a full file system under the database at COMMIT ---- */

/* Fills the file system of path up, then frees room bytes of it. */
static void ballast_fill(const char *path, long room) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  static char block[4096];
  long size = 0;
  ssize_t w;
  while (fd >= 0 && (w = write(fd, block, sizeof block)) > 0) size += w;
  CHECK(fd >= 0 && errno == ENOSPC);
  CHECK(fd >= 0 && ftruncate(fd, size > room ? size - room : 0) == 0);
  if (fd >= 0) close(fd);
}

/* The store's files of dir are those of before, byte for byte, but for
** .lock and .prepared (a batch's image, whose magic must be cleared). */
static bool store_unchanged(const snap *before, const char *dir) {
  snap now;
  snap_take(&now, dir, false);
  int n = 0;
  bool same = true;
  for (int i = 0; i < now.n; i++) {
    const file *x = &now.f[i], *y = snap_find(before, x->name);
    if (!strcmp(x->name, ".lock")) continue;
    if (!strcmp(x->name, ".prepared")) {
      static const char zero[8];
      if (x->len != 0 && (x->len < 8 || memcmp(x->data, zero, 8) != 0)) {
        fprintf(stderr, "  .prepared: magic not cleared\n");
        same = false;
      }
      continue;
    }
    n++;
    if (!y || y->len != x->len || (x->len && memcmp(x->data, y->data, (size_t)x->len))) {
      fprintf(stderr, "  %s: %ld bytes, before %ld\n", x->name, x->len, y ? y->len : -1L);
      same = false;
    }
  }
  for (int i = 0; i < before->n; i++)
    if (strcmp(before->f[i].name, ".lock") && strcmp(before->f[i].name, ".prepared")) n--;
  if (n != 0) {
    fprintf(stderr, "  %s: files added or gone\n", dir);
    same = false;
  }
  snap_free(&now);
  return same;
}

static void test_dbfull(const char *mnt, const char *journal) {
  char ev[256], name[128], sql[1024], ballast[512];
  snprintf(ev, sizeof ev, "%s/full-%s.ev", work, journal);
  snprintf(name, sizeof name, "mnt/full-%s.db", journal);
  snprintf(ballast, sizeof ballast, "%s/ballast", mnt);
  sqlite3 *db = db_open(name);
  snprintf(sql, sizeof sql,
           "PRAGMA journal_mode=%s; PRAGMA synchronous=FULL;"
           "CREATE TABLE orders(id INTEGER PRIMARY KEY, item TEXT, pad BLOB);"
           "CREATE VIRTUAL TABLE ev USING klevdb(dir='%s', create_dirs=1, value='text');"
           "BEGIN; INSERT INTO orders VALUES (1, 'pen', NULL);"
           "INSERT INTO ev(value) VALUES ('order:1'); COMMIT", journal, ev);
  EXEC_OK(db, sql);
  /* Room for the rollback journal of the few pages that change, not for
  ** the 200 KB the database file must grow by. */
  ballast_fill(ballast, 32 << 10);
  snap before;
  snap_take(&before, ev, false);
  CHECK(snap_find(&before, ".prepared") != NULL);
  const char *tx = "BEGIN; INSERT INTO orders VALUES (2, 'ink', randomblob(200000));"
                   "INSERT INTO ev(value) VALUES ('order:2')";
  EXEC_OK(db, tx);
  CHECK_EQ(sqlite3_last_insert_rowid(db), 1);
  /* The hook runs after xSync: the batch was prepared when COMMIT failed. */
  snap at_sync = {0};
  hook_snap = &at_sync;
  hook_dir = ev;
  sqlite3_commit_hook(db, hook, NULL);
  int rc = exec(db, "COMMIT");
  sqlite3_commit_hook(db, NULL, NULL);
  hook_snap = NULL;
  const file *prep = snap_find(&at_sync, ".prepared");
  check_at(prep && prep->len > 8 && !memcmp(prep->data, "KLEVPREP", 8), __LINE__,
           "%s: the batch prepared at the commit hook", journal);
  snap_free(&at_sync);
  check_at(rc == SQLITE_FULL, __LINE__, "%s: COMMIT gave %d (%s), expected SQLITE_FULL", journal, rc,
           sqlite3_errmsg(db));
  /* SQLite rolls the transaction back itself after SQLITE_FULL. */
  CHECK_EQ(sqlite3_get_autocommit(db), 1);
  if (!sqlite3_get_autocommit(db)) exec(db, "ROLLBACK");
  check_at(store_unchanged(&before, ev), __LINE__, "%s: the store's files as before", journal);
  CHECK(!has_prepared(ev));
  CHECK_EQ(one(db, "SELECT count(*) FROM orders"), 1);
  CHECK_EQ(one(db, "SELECT count(*) FROM ev"), 1);
  snap_free(&before);
  /* With room again, the same transaction at the same offset. */
  CHECK(unlink(ballast) == 0);
  EXEC_OK(db, tx);
  CHECK_EQ(sqlite3_last_insert_rowid(db), 1);
  EXEC_OK(db, "COMMIT");
  sqlite3_close(db);
  db = db_open(name);
  CHECK_EQ(one(db, "SELECT count(*) FROM orders"), 2);
  CHECK_EQ(one(db, "SELECT offset FROM ev WHERE value = 'order:2'"), 1);
  CHECK_EQ(one(db, "SELECT count(*) FROM ev"), 2);
  CHECK(!has_prepared(ev));
  sqlite3_close(db);
}

static int run_dbfull(void) {
  char mnt[512];
  snprintf(mnt, sizeof mnt, "%s/mnt", work);
  if (mkdir(mnt, 0700) != 0 ||
      mount("tmpfs", mnt, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m") != 0) {
    printf("test_hosttx: mount -t tmpfs %s failed (%s): the full-disk case is skipped\n", mnt,
           strerror(errno));
    return 77;
  }
  test_dbfull(mnt, "delete");
  test_dbfull(mnt, "wal");
  if (umount(mnt) != 0) CHECK(umount2(mnt, MNT_DETACH) == 0);
  chk_name = "test_hosttx dbfull";
  return check_done();
}

/* Runs a shell command; *out gets its stdout and stderr (NUL-ended, at
** most cap - 1 bytes); returns its exit status. */
static int run(const char *cmd, char *out, size_t cap) {
  char full[1200];
  snprintf(full, sizeof full, "%s 2>&1", cmd);
  FILE *f = popen(full, "r");
  size_t n = f ? fread(out, 1, cap - 1, f) : 0;
  out[n] = 0;
  int st = f ? pclose(f) : -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Other writers while a batch is in doubt: the CLI's publish is refused
** (exit 4, "in doubt"), check and dump read the store without the batch,
** stat and settle show the transaction, and settle decides by hand: the
** commit the database recorded, or, with the database gone, an abort. */
static void test_cli_in_doubt(bool db_gone) {
  const char *cli = getenv("KLEVDB_CLI");
  CHECK(cli != NULL);
  if (!cli) return;
  char ev[256], ev2[256], cmd[900], out[4096];
  const char *name = db_gone ? "cli2" : "cli1";
  sqlite3 *db = outbox(name, ev, ev2);
  snap at_sync;
  hook_snap = &at_sync;
  hook_dir = ev;
  sqlite3_commit_hook(db, hook, NULL);
  EXEC_OK(db, "BEGIN; INSERT INTO orders VALUES (4, 'ink'); INSERT INTO ev(value) VALUES "
              "('order:4'); COMMIT");
  hook_snap = NULL;
  sqlite3_close(db);
  snap_restore(&at_sync, ev);
  snap_free(&at_sync);
  CHECK(has_prepared(ev));
  snprintf(cmd, sizeof cmd, "echo x | '%s' publish '%s'", cli, ev);
  CHECK_EQ(run(cmd, out, sizeof out), 4);
  CHECK(strstr(out, "klevdb: ") == out && strstr(out, "in doubt") != NULL);
  snprintf(cmd, sizeof cmd, "'%s' check '%s'", cli, ev);
  CHECK_EQ(run(cmd, out, sizeof out), 0);
  snprintf(cmd, sizeof cmd, "'%s' dump '%s' | wc -l", cli, ev);
  CHECK_EQ(run(cmd, out, sizeof out), 0);
  CHECK_EQ(atoi(out), 1);
  snprintf(cmd, sizeof cmd, "'%s' stat '%s'", cli, ev);
  CHECK_EQ(run(cmd, out, sizeof out), 0);
  CHECK(strstr(out, "in doubt:         1 message at offset 1, 0 delete ranges") != NULL);
  char want[300];
  snprintf(want, sizeof want, "%s.db | ev | ", name);
  CHECK(strstr(out, want) != NULL);
  if (db_gone) {
    snprintf(cmd, sizeof cmd, "%s/%s.db", work, name);
    CHECK(unlink(cmd) == 0);
  }
  snprintf(cmd, sizeof cmd, "'%s' settle '%s' %s", cli, ev, db_gone ? "--abort" : "--commit");
  CHECK_EQ(run(cmd, out, sizeof out), 0);
  CHECK(strstr(out, db_gone ? "decided:          aborted" : "decided:          committed") != NULL);
  snprintf(cmd, sizeof cmd, "'%s' settle '%s'", cli, ev);
  CHECK_EQ(run(cmd, out, sizeof out), 1);
  CHECK(strstr(out, "no transaction is in doubt") != NULL);
  CHECK(!has_prepared(ev));
  snprintf(cmd, sizeof cmd, "echo x | '%s' publish '%s' --quiet", cli, ev);
  CHECK_EQ(run(cmd, out, sizeof out), 0);
  char db_name[64];
  snprintf(db_name, sizeof db_name, "%s.db", name);
  db = db_open(db_name);
  if (!db_gone) {
    CHECK_EQ(one(db, "SELECT offset FROM ev WHERE value = 'order:4'"), 1);
    CHECK_EQ(one(db, "SELECT count(*) FROM ev"), 3);
  } else {
    char sql[512];
    snprintf(sql, sizeof sql, "CREATE VIRTUAL TABLE ev USING klevdb(dir='%s', value='text')", ev);
    EXEC_OK(db, sql);
    CHECK_EQ(one(db, "SELECT count(*) FROM ev WHERE value = 'order:4'"), 0);
    CHECK_EQ(one(db, "SELECT offset FROM ev WHERE value = 'x'"), 1);
  }
  sqlite3_close(db);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test_hosttx WORKDIR [dbfull]\n");
    return 2;
  }
  work = argv[1];
  char cmd[600];
  snprintf(cmd, sizeof cmd, "%s/mnt", work);
  umount2(cmd, MNT_DETACH);   /* a tmpfs a killed run left mounted */
  snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", work, work);
  if (system(cmd) != 0) return 2;
  if (argc > 2 && !strcmp(argv[2], "dbfull")) return run_dbfull();
  test_lone_insert();
  test_veto();
  test_trigger();
  test_busy(true);
  test_busy(false);
  test_busy_retention(false);
  test_busy_retention(true);
  test_crash(true);
  test_crash(false);
  test_two_files();
  test_cli_in_doubt(false);
  test_cli_in_doubt(true);
  chk_name = "test_hosttx";
  return check_done();
}
