/*
** static_demo.c - the klevdb SQLite extension linked into a program.
**
** Link the static library (meson: dependency klevdb_ext_dep; by hand:
** -lklevdb_sqlite -lklevdb -lsqlite3 -pthread) and register the entry point
** once with sqlite3_auto_extension: every connection opened afterwards has
** the klevdb module and functions, no .load needed.
**
**   static_demo [DIR]    (default: a new temporary folder, removed at the end)
**
** Creates DIR/demo.db with a klevdb table "events" (its store goes beside the
** database, in DIR/demo.db-events.klevdb), publishes a few messages in one
** transaction, reads them back by offset and by key and prints them. Exits 1
** if anything is not as expected.
*/
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mkdtemp, nftw */
#endif
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

int sqlite3_klevdb_init(sqlite3 *db, char **err, const sqlite3_api_routines *api);

static sqlite3 *db;

static void die(const char *what) {
  fprintf(stderr, "static_demo: %s: %s\n", what, db ? sqlite3_errmsg(db) : "?");
  exit(1);
}

static void exec(const char *sql) {
  char *err = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
    fprintf(stderr, "static_demo: %s\n  in: %s\n", err ? err : "?", sql);
    exit(1);
  }
}

/* Prints the rows of sql (one int64 parameter) and returns how many. */
static int query(const char *title, const char *sql, sqlite3_int64 arg) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) die(sql);
  if (sqlite3_bind_parameter_count(st) > 0) sqlite3_bind_int64(st, 1, arg);
  printf("== %s\n", title);
  int n = 0, rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    printf("  offset %lld  key %-7s  value %s\n", (long long)sqlite3_column_int64(st, 0),
           sqlite3_column_type(st, 1) == SQLITE_NULL ? "(none)" : (const char *)sqlite3_column_text(st, 1),
           (const char *)sqlite3_column_text(st, 2));
    n++;
  }
  if (rc != SQLITE_DONE) die(sql);
  sqlite3_finalize(st);
  return n;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

int main(int argc, char **argv) {
  char tmpl[] = "/tmp/klevdb-static-demo.XXXXXX";
  const char *dir = argc > 1 ? argv[1] : mkdtemp(tmpl);
  if (!dir) {
    perror("mkdtemp");
    return 1;
  }

  /* Once per process: every new connection gets the extension. */
  if (sqlite3_auto_extension((void (*)(void))sqlite3_klevdb_init) != SQLITE_OK) {
    fputs("static_demo: cannot register the extension\n", stderr);
    return 1;
  }

  char path[4096];
  snprintf(path, sizeof path, "%s/demo.db", dir);
  if (sqlite3_open(path, &db) != SQLITE_OK) die(path);
  printf("database %s\n", path);

  /* No dir=: the store goes beside the database file. */
  exec("CREATE VIRTUAL TABLE events USING klevdb(key='text', value='text')");

  /* One transaction: the rows are published together at COMMIT. */
  exec("BEGIN;"
       "INSERT INTO events(key, value, time) VALUES"
       "  ('sensor1', '21.5', '2024-05-01T12:00:00Z'),"
       "  ('sensor2', '19.0', '2024-05-01T12:00:01Z'),"
       "  ('sensor1', '21.7', '2024-05-01T12:01:00Z'),"
       "  (NULL,      'boot', '2024-05-01T12:01:30Z');"
       "INSERT INTO events(key, value) VALUES ('sensor2', '19.4');"
       "COMMIT;");

  int all = query("all", "SELECT \"offset\", key, value FROM events", 0);
  int from = query("from offset 2", "SELECT \"offset\", key, value FROM events WHERE \"offset\" >= ?", 2);
  int latest = query("latest of sensor1",
                     "SELECT \"offset\", key, value FROM events WHERE key = 'sensor1' "
                     "ORDER BY \"offset\" DESC LIMIT 1", 0);

  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, "SELECT klevdb_stat('events')", -1, &st, NULL) != SQLITE_OK ||
      sqlite3_step(st) != SQLITE_ROW)
    die("klevdb_stat");
  printf("== stat\n  %s\n", (const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);

  if (sqlite3_close(db) != SQLITE_OK) die("close");
  db = NULL;

  char store[4200];
  snprintf(store, sizeof store, "%s-events.klevdb", path);
  int has_store = access(store, F_OK) == 0;
  printf("store %s %s\n", store, has_store ? "exists" : "is MISSING");

  if (argc <= 1) nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);

  if (all != 5 || from != 3 || latest != 1 || !has_store) {
    fprintf(stderr, "static_demo: unexpected results (%d, %d, %d rows)\n", all, from, latest);
    return 1;
  }
  puts("ok");
  return 0;
}
