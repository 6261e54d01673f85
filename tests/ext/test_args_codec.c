/*
** test_args_codec.c - tests of ext/args.c (CREATE VIRTUAL TABLE arguments)
** and ext/codec.c (column codecs, SQL times), linked with SQLite itself.
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvt.h"
#include "../check.h"


static sqlite3 *mem;

/* ---- helpers ---- */

/* The value of one SQL expression, e.g. val("X'00FF'"). */
static sqlite3_value *val(const char *expr) {
  sqlite3_stmt *st;
  sqlite3_value *v = NULL;
  char *sql = sqlite3_mprintf("SELECT %s", expr);
  if (sqlite3_prepare_v2(mem, sql, -1, &st, NULL) != SQLITE_OK) {
    fprintf(stderr, "prepare %s: %s\n", sql, sqlite3_errmsg(mem));
    exit(2);
  }
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_value_dup(sqlite3_column_value(st, 0));
  sqlite3_finalize(st);
  sqlite3_free(sql);
  if (!v) exit(2);
  return v;
}

/* kvt_args_parse with the arguments after the module, schema and table
** names, NULL-terminated. */
static int parse(sqlite3 *db, kvt_args *a, char **err, ...) {
  const char *argv[32] = {"klevdb", "main", "events"};
  int argc = 3;
  va_list ap;
  va_start(ap, err);
  for (const char *s; (s = va_arg(ap, const char *)) != NULL;) argv[argc++] = s;
  va_end(ap);
  return kvt_args_parse(db, "main", "events", argc, argv, a, err);
}

/* Expects parse() to fail with a message containing want. */
#define PARSE_ERR(want, ...)                                              \
  do {                                                                    \
    kvt_args a_;                                                          \
    char *e_ = NULL;                                                      \
    int rc_ = parse(mem, &a_, &e_, __VA_ARGS__, (const char *)NULL);      \
    CHECK_WHY(rc_ == SQLITE_ERROR, "rc %d", rc_);                             \
    CHECK_WHY(e_ && strstr(e_, want), "message '%s', want '%s'", e_ ? e_ : "(null)", want); \
    CHECK_WHY(e_ && strncmp(e_, "klevdb: ", 8) == 0, "prefix of '%s'", e_ ? e_ : ""); \
    CHECK_WHY(a_.dir == NULL, "dir left allocated");                          \
    sqlite3_free(e_);                                                     \
  } while (0)

/* rollover=<s> with an explicit dir; returns the rollover or -1. */
static int64_t rollover(const char *s) {
  kvt_args a;
  char *e = NULL;
  char *arg = sqlite3_mprintf("rollover=%s", s);
  int rc = parse(mem, &a, &e, "dir=/tmp/x", arg, (const char *)NULL);
  int64_t r = rc == SQLITE_OK ? a.opts.rollover : -1;
  if (rc == SQLITE_OK) kvt_args_free(&a);
  sqlite3_free(e);
  sqlite3_free(arg);
  return r;
}

/* ---- args ---- */

static void test_args(void) {
  kvt_args a;
  char *e = NULL;
  int rc;

  /* All defaults (dir must be given for :memory:). */
  rc = parse(mem, &a, &e, "dir='/tmp/k'", (const char *)NULL);
  CHECK_WHY(rc == SQLITE_OK && e == NULL, "rc %d %s", rc, e ? e : "");
  if (rc == SQLITE_OK) {
    CHECK_WHY(strcmp(a.dir, "/tmp/k") == 0, "dir %s", a.dir);
    CHECK_WHY(a.opts.key_index == 1 && a.opts.time_index == 1, "indexes");
    CHECK_WHY(a.opts.create_dirs == 1 && a.opts.readonly == 0, "create/readonly");
    CHECK_WHY(a.opts.auto_sync == 0 && a.opts.check == 0 && a.opts.recover == 0, "flags");
    CHECK_WHY(a.opts.rollover == 1048576, "rollover %lld", (long long)a.opts.rollover);
    CHECK_WHY(a.opts.new_segments_version == KLEVDB_V2, "format");
    CHECK_WHY(a.opts.keep_rewrite_version == 0 && a.opts.eager_migrate == 0, "other");
    CHECK_WHY(a.opts.preallocate == 0, "preallocate off by default");
    CHECK_WHY(a.key == KVT_TEXT && a.value == KVT_TEXT, "codecs");
    CHECK_WHY(!a.triggers, "triggers");
    kvt_args_free(&a);
    CHECK_WHY(a.dir == NULL, "freed");
  }

  /* Every argument, with odd spacing and case. */
  rc = parse(mem, &a, &e, "dir=/a/b", " key_index = off ", "time_index=NO",
             "rollover=64KB", "auto_sync=on", "READONLY=TRUE", "create_dirs=0",
             "check=yes", "recover=1", "format=V1", "key=integer",
             "value=StringOpt", "Triggers=1", "preallocate=ON", (const char *)NULL);
  CHECK_WHY(rc == SQLITE_OK, "rc %d %s", rc, e ? e : "");
  if (rc == SQLITE_OK) {
    CHECK_WHY(strcmp(a.dir, "/a/b") == 0, "dir %s", a.dir);
    CHECK_WHY(a.opts.key_index == 0 && a.opts.time_index == 0, "indexes");
    CHECK_WHY(a.opts.rollover == 65536, "rollover");
    CHECK_WHY(a.opts.auto_sync == 1 && a.opts.readonly == 1 && a.opts.create_dirs == 0,
          "bools");
    CHECK_WHY(a.opts.check == 1 && a.opts.recover == 1, "check/recover");
    CHECK_WHY(a.opts.preallocate == 1, "preallocate");
    CHECK_WHY(a.opts.new_segments_version == KLEVDB_V1, "format");
    CHECK_WHY(a.key == KVT_INTEGER && a.value == KVT_STRINGOPT, "codecs");
    CHECK_WHY(a.triggers, "triggers");
    kvt_args_free(&a);
  }
  for (int c = KVT_BLOB; c <= KVT_STRINGOPT; c++) {
    char *arg = sqlite3_mprintf("value='%s'", kvt_codec_name((kvt_codec)c));
    rc = parse(mem, &a, &e, "dir=/x", arg, (const char *)NULL);
    CHECK_WHY(rc == SQLITE_OK && a.value == (kvt_codec)c, "codec %s", arg);
    if (rc == SQLITE_OK) kvt_args_free(&a);
    sqlite3_free(arg);
  }
  CHECK_WHY(strcmp(kvt_codec_name(KVT_JSON), "json") == 0, "name");

  /* Quoting. */
  rc = parse(mem, &a, &e, "dir=\"/a b/c\"", "key = 'json'", (const char *)NULL);
  CHECK_WHY(rc == SQLITE_OK && strcmp(a.dir, "/a b/c") == 0 && a.key == KVT_JSON,
        "double quotes %s", rc == SQLITE_OK ? a.dir : e);
  if (rc == SQLITE_OK) kvt_args_free(&a);
  rc = parse(mem, &a, &e, "dir='/it''s'", (const char *)NULL);
  CHECK_WHY(rc == SQLITE_OK && strcmp(a.dir, "/it's") == 0, "doubled quote");
  if (rc == SQLITE_OK) kvt_args_free(&a);
  rc = parse(mem, &a, &e, "dir =  '/ spaced '  ", (const char *)NULL);
  CHECK_WHY(rc == SQLITE_OK && strcmp(a.dir, "/ spaced ") == 0, "spaces inside quotes");
  if (rc == SQLITE_OK) kvt_args_free(&a);
  rc = parse(mem, &a, &e, "dir='/x=y'", (const char *)NULL);
  CHECK_WHY(rc == SQLITE_OK && strcmp(a.dir, "/x=y") == 0, "'=' inside the value");
  if (rc == SQLITE_OK) kvt_args_free(&a);

  /* Sizes. */
  CHECK_WHY(rollover("1048576") == 1048576, "plain");
  CHECK_WHY(rollover("64KB") == 65536, "64KB");
  CHECK_WHY(rollover("1MB") == 1048576, "1MB");
  CHECK_WHY(rollover("1mib") == 1048576, "1mib");
  CHECK_WHY(rollover("1GB") == 1073741824, "1GB");
  CHECK_WHY(rollover("2k") == 2048, "2k");
  CHECK_WHY(rollover("'3 M'") == 3 * 1048576, "3 M");
  CHECK_WHY(rollover("1TiB") == (int64_t)1 << 40, "1TiB");
  CHECK_WHY(rollover("1") == 1, "1 byte");
  CHECK_WHY(rollover("0") == -1, "0");
  CHECK_WHY(rollover("1025GB") == -1, "over 1 TiB");
  CHECK_WHY(rollover("99999999999999999999999") == -1, "overflow");
  CHECK_WHY(rollover("1.5MB") == -1, "fraction");
  CHECK_WHY(rollover("-1") == -1, "negative");
  CHECK_WHY(rollover("12XB") == -1, "suffix");

  /* Retention arguments. */
  {
    static const struct { const char *arg; int64_t age, bytes, count; } ok[] = {
      {"max_age=7d", 7 * 86400000000LL, 0, 0},
      {"max_age=12h", 12 * 3600000000LL, 0, 0},
      {"max_age='30 m'", 30 * 60000000LL, 0, 0},
      {"max_age=90s", 90000000, 0, 0},
      {"max_age=250ms", 250000, 0, 0},
      {"max_age=1500", 1500, 0, 0},
      {"max_bytes=64KB", 0, 65536, 0},
      {"max_bytes=1000", 0, 1000, 0},
      {"max_count=3", 0, 0, 3},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
      kvt_args a;
      char *e = NULL;
      int rc = parse(mem, &a, &e, "dir=/x", ok[i].arg, (const char *)NULL);
      CHECK_WHY(rc == SQLITE_OK && a.max_age == ok[i].age && a.max_bytes == ok[i].bytes &&
                a.max_count == ok[i].count && !a.keep_unconsumed, "%s: %s", ok[i].arg,
                e ? e : "");
      if (rc == SQLITE_OK) kvt_args_free(&a);
      sqlite3_free(e);
    }
    kvt_args a;
    char *e = NULL;
    int rc = parse(mem, &a, &e, "dir=/x", "keep_unconsumed=1", (const char *)NULL);
    CHECK(rc == SQLITE_OK && a.keep_unconsumed && !a.max_count);
    if (rc == SQLITE_OK) kvt_args_free(&a);
  }
  PARSE_ERR("klevdb: argument max_age: bad duration '7 weeks'", "dir=/x", "max_age=7 weeks");
  PARSE_ERR("klevdb: argument max_age: bad duration '0s'", "dir=/x", "max_age=0s");
  PARSE_ERR("klevdb: argument max_age: bad duration '-1d'", "dir=/x", "max_age=-1d");
  PARSE_ERR("klevdb: argument max_age: bad duration '99999999999d'", "dir=/x",
            "max_age=99999999999d");
  PARSE_ERR("klevdb: argument max_bytes: bad size '1.5MB'", "dir=/x", "max_bytes=1.5MB");
  PARSE_ERR("klevdb: argument max_bytes: bad size '0'", "dir=/x", "max_bytes=0");
  PARSE_ERR("klevdb: argument max_count: '0' is not", "dir=/x", "max_count=0");
  PARSE_ERR("klevdb: argument max_count: '10k' is not", "dir=/x", "max_count=10k");
  PARSE_ERR("klevdb: argument max_count: '99999999999999999999' is not", "dir=/x",
            "max_count=99999999999999999999");
  PARSE_ERR("klevdb: argument keep_unconsumed: bad boolean 'maybe'", "dir=/x",
            "keep_unconsumed=maybe");

  /* Errors and their messages. */
  PARSE_ERR("klevdb: unknown argument 'rolover' (arguments: dir, key_index, "
            "time_index, rollover, auto_sync, readonly, create_dirs, check, "
            "recover, format, key, value, triggers, preallocate, max_age, "
            "max_bytes, max_count, keep_unconsumed)", "dir=/x", "rolover=1MB");
  PARSE_ERR("argument 'readonly' has no '='", "dir=/x", "readonly");
  PARSE_ERR("argument key has an empty value", "dir=/x", "key=");
  PARSE_ERR("argument dir has an empty value", "dir=''");
  PARSE_ERR("argument '=1' has no name", "dir=/x", "=1");
  PARSE_ERR("argument key given twice", "dir=/x", "key=blob", "KEY=text");
  PARSE_ERR("argument dir given twice", "dir=/x", "dir=/y");
  PARSE_ERR("argument key_index: bad boolean 'maybe'", "dir=/x", "key_index=maybe");
  PARSE_ERR("argument check: bad boolean '2'", "dir=/x", "check=2");
  PARSE_ERR("argument rollover: bad size '12XB'", "dir=/x", "rollover=12XB");
  PARSE_ERR("argument rollover: bad size '1.5MB'", "dir=/x", "rollover=1.5MB");
  PARSE_ERR("argument rollover must be > 0", "dir=/x", "rollover=0KB");
  PARSE_ERR("argument rollover: '2TB' is over the limit of 1 TiB", "dir=/x",
            "rollover=2TB");
  PARSE_ERR("argument format: unknown format 'v3' (formats: v1, v2)", "dir=/x",
            "format=v3");
  PARSE_ERR("argument key: unknown codec 'int' (codecs: blob, text, integer, "
            "json, string, stringopt)", "dir=/x", "key=int");
  PARSE_ERR("argument dir: unterminated quote", "dir='/x");
  PARSE_ERR("argument dir: text after the closing quote", "dir='/x'y");
  PARSE_ERR("klevdb: table events: an in-memory or temporary database needs "
            "dir='...'", "key=text");
  PARSE_ERR("klevdb: table events: an in-memory or temporary database needs "
            "dir='...'", (const char *)NULL);

  /* In memory: a relative dir stays relative (to the current directory). */
  rc = parse(mem, &a, &e, "dir=rel/x", (const char *)NULL);
  CHECK_WHY(rc == SQLITE_OK && strcmp(a.dir, "rel/x") == 0, "relative in memory");
  if (rc == SQLITE_OK) kvt_args_free(&a);
  {
    char *d = kvt_resolve_dir(mem, "main", "/abs/x");
    CHECK_WHY(d && strcmp(d, "/abs/x") == 0, "absolute %s", d);
    sqlite3_free(d);
    d = kvt_resolve_dir(mem, "main", "rel");
    CHECK_WHY(d && strcmp(d, "rel") == 0, "relative %s", d);
    sqlite3_free(d);
    d = kvt_resolve_dir(mem, "temp", "rel");
    CHECK_WHY(d && strcmp(d, "rel") == 0, "temp %s", d);
    sqlite3_free(d);
  }
}

/* A database file in a fresh temporary folder: the default dir sits beside
** it, and relative dirs resolve against its folder. */
static void test_file_db(void) {
  char tmpl[] = "/tmp/test_args_codec.XXXXXX";
  char *tmp = mkdtemp(tmpl), *path, *want, *e = NULL, *d;
  const char *file;
  sqlite3 *db;
  kvt_args a;
  int rc;

  if (!tmp) {
    CHECK_WHY(0, "mkdtemp");
    return;
  }
  path = sqlite3_mprintf("%s/test.db", tmp);
  if (sqlite3_open(path, &db) != SQLITE_OK) {
    CHECK_WHY(0, "open %s", path);
    return;
  }
  file = sqlite3_db_filename(db, "main");
  CHECK_WHY(file && *file, "db filename");
  want = sqlite3_mprintf("%s-events.klevdb", file);
  rc = parse(db, &a, &e, (const char *)NULL);
  CHECK_WHY(rc == SQLITE_OK && strcmp(a.dir, want) == 0, "default dir %s, want %s",
        rc == SQLITE_OK ? a.dir : e, want);
  CHECK_WHY(strstr(want, "/test.db-events.klevdb") != NULL, "want %s", want);
  if (rc == SQLITE_OK) kvt_args_free(&a);
  sqlite3_free(want);

  /* The folder of the real file, whatever /tmp resolves to. */
  want = sqlite3_mprintf("%.*s/sub/store", (int)(strrchr(file, '/') - file), file);
  rc = parse(db, &a, &e, "dir='sub/store'", (const char *)NULL);
  CHECK_WHY(rc == SQLITE_OK && strcmp(a.dir, want) == 0, "relative dir %s, want %s",
        rc == SQLITE_OK ? a.dir : e, want);
  if (rc == SQLITE_OK) kvt_args_free(&a);
  d = kvt_resolve_dir(db, "main", "sub/store");
  CHECK_WHY(d && strcmp(d, want) == 0, "resolve %s", d);
  sqlite3_free(d);
  d = kvt_resolve_dir(db, "main", "/abs");
  CHECK_WHY(d && strcmp(d, "/abs") == 0, "resolve absolute %s", d);
  sqlite3_free(d);
  sqlite3_free(want);

  /* The temp schema of a file database has no file either. */
  {
    const char *argv[] = {"klevdb", "temp", "events"};
    rc = kvt_args_parse(db, "temp", "events", 3, argv, &a, &e);
    CHECK_WHY(rc == SQLITE_ERROR && e && strstr(e, "in-memory or temporary"), "temp: %s",
          e ? e : "");
    sqlite3_free(e);
    e = NULL;
  }
  {
    const char *argv[] = {"klevdb", "main", "a/b"};
    rc = kvt_args_parse(db, "main", "a/b", 3, argv, &a, &e);
    CHECK_WHY(rc == SQLITE_ERROR && e && strstr(e, "klevdb: table a/b: the name has a '/'"),
          "slash: %s", e ? e : "");
    sqlite3_free(e);
    e = NULL;
  }

  sqlite3_close(db);
  unlink(path);
  rmdir(tmp);
  sqlite3_free(path);
}

/* ---- codecs ---- */

/* Encodes expr with codec c into a fresh buffer; *rc gets the result. */
static kvt_buf enc(kvt_codec c, const char *expr, int *rc, char **err) {
  kvt_buf b = {0};
  sqlite3_value *v = val(expr);
  *rc = kvt_encode(c, v, "value", &b, err);
  sqlite3_value_free(v);
  return b;
}

static int bytes_eq(const kvt_buf *b, const void *p, size_t n) {
  return b->len == n && (n == 0 || memcmp(b->p, p, n) == 0);
}

/* Expects encoding to succeed with exactly these bytes. */
#define ENC_OK(c, expr, bytes, n)                                          \
  do {                                                                     \
    int rc_;                                                               \
    char *e_ = NULL;                                                       \
    kvt_buf b_ = enc(c, expr, &rc_, &e_);                                  \
    CHECK_WHY(rc_ == SQLITE_OK && e_ == NULL, "%s: rc %d %s", expr, rc_, e_ ? e_ : ""); \
    CHECK_WHY(bytes_eq(&b_, bytes, n), "%s: %zu bytes", expr, b_.len);         \
    kvt_buf_free(&b_);                                                     \
    sqlite3_free(e_);                                                      \
  } while (0)

/* Expects encoding to fail with rc and a message containing want. */
#define ENC_ERR(c, expr, wantrc, want)                                     \
  do {                                                                     \
    int rc_;                                                               \
    char *e_ = NULL;                                                       \
    kvt_buf b_ = enc(c, expr, &rc_, &e_);                                  \
    CHECK_WHY(rc_ == (wantrc), "%s: rc %d", expr, rc_);                        \
    CHECK_WHY(e_ && strstr(e_, want), "%s: message '%s', want '%s'", expr,     \
          e_ ? e_ : "(null)", want);                                       \
    CHECK_WHY(b_.len == 0, "%s: bytes appended on error", expr);               \
    kvt_buf_free(&b_);                                                     \
    sqlite3_free(e_);                                                      \
  } while (0)

/* res(codec, bytes): the SQL result kvt_result gives stored bytes. */
static void res_func(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  const uint8_t *p = sqlite3_value_blob(argv[1]);
  (void)argc;
  kvt_result(ctx, (kvt_codec)sqlite3_value_int(argv[0]), p,
             (size_t)sqlite3_value_bytes(argv[1]));
}

/* Runs res(c, bytes) and checks type and content of the result (for an
** error, type -1 and want is part of the message). */
static void check_result(int line, kvt_codec c, const void *p, size_t n,
                         int wanttype, const void *want, size_t wantn) {
  sqlite3_stmt *st;
  int rc;
  chk_total++;
  sqlite3_prepare_v2(mem, "SELECT res(?1, ?2)", -1, &st, NULL);
  sqlite3_bind_int(st, 1, (int)c);
  sqlite3_bind_blob(st, 2, n ? p : "", (int)n, SQLITE_STATIC);
  rc = sqlite3_step(st);
  if (wanttype < 0) {
    const char *m = sqlite3_errmsg(mem);
    if (rc != SQLITE_ERROR || !strstr(m, want)) {
      chk_failed++;
      fprintf(stderr, "%s:%d: FAIL result: rc %d '%s', want error '%s'\n", __FILE__,
              line, rc, m, (const char *)want);
    }
  } else if (rc != SQLITE_ROW || sqlite3_column_type(st, 0) != wanttype) {
    chk_failed++;
    fprintf(stderr, "%s:%d: FAIL result: rc %d type %d, want %d (%s)\n", __FILE__,
            line, rc, rc == SQLITE_ROW ? sqlite3_column_type(st, 0) : -1, wanttype,
            sqlite3_errmsg(mem));
  } else if (wanttype == SQLITE_INTEGER) {
    if (sqlite3_column_int64(st, 0) != *(const int64_t *)want) {
      chk_failed++;
      fprintf(stderr, "%s:%d: FAIL result %lld\n", __FILE__, line,
              (long long)sqlite3_column_int64(st, 0));
    }
  } else if (wanttype != SQLITE_NULL) {
    const void *got = wanttype == SQLITE_BLOB ? sqlite3_column_blob(st, 0)
                                              : (const void *)sqlite3_column_text(st, 0);
    size_t gn = (size_t)sqlite3_column_bytes(st, 0);
    if (gn != wantn || (gn && memcmp(got, want, gn) != 0)) {
      chk_failed++;
      fprintf(stderr, "%s:%d: FAIL result '%.*s' (%zu bytes)\n", __FILE__, line,
              (int)gn, (const char *)got, gn);
    }
  }
  sqlite3_finalize(st);
}
#define RESULT(c, p, n, type, want, wantn) \
  check_result(__LINE__, c, p, n, type, want, wantn)
#define RESULT_ERR(c, p, n, msg) check_result(__LINE__, c, p, n, -1, msg, 0)

static void test_encode(void) {
  /* NULL and empty are absent (nothing appended) in every codec but
  ** stringopt, where '' is Go's "". */
  for (int c = KVT_BLOB; c <= KVT_STRINGOPT; c++) {
    ENC_OK((kvt_codec)c, "NULL", "", 0);
    if (c == KVT_TEXT || c == KVT_STRING) ENC_OK((kvt_codec)c, "''", "", 0);
  }
  ENC_OK(KVT_BLOB, "X''", "", 0);

  /* blob: BLOBs as they are, nothing else (it would read back as a BLOB). */
  ENC_OK(KVT_BLOB, "X'0001FF'", "\x00\x01\xff", 3);
  ENC_ERR(KVT_BLOB, "'abc'", SQLITE_MISMATCH,
          "klevdb: value must be a BLOB for codec blob, got TEXT (it would read back as a BLOB");
  ENC_ERR(KVT_BLOB, "''", SQLITE_MISMATCH, "got TEXT");
  ENC_ERR(KVT_BLOB, "42", SQLITE_MISMATCH, "klevdb: value must be a BLOB for codec blob, got INTEGER");
  ENC_ERR(KVT_BLOB, "1.5", SQLITE_MISMATCH, "got REAL");
  /* text, string: TEXT as it is, numbers as their text (TEXT affinity),
  ** BLOBs refused (they would read back as TEXT). */
  ENC_OK(KVT_TEXT, "'h\xc3\xa9llo'", "h\xc3\xa9llo", 6);
  ENC_OK(KVT_TEXT, "42", "42", 2);
  ENC_OK(KVT_TEXT, "1.5", "1.5", 3);
  ENC_OK(KVT_TEXT, "-0.25e3", "-250.0", 6);
  ENC_OK(KVT_STRING, "'abc'", "abc", 3);
  ENC_OK(KVT_STRING, "7", "7", 1);
  ENC_ERR(KVT_TEXT, "X'6869'", SQLITE_MISMATCH,
          "klevdb: value must be TEXT for codec text, got BLOB (it would read back as TEXT");
  ENC_ERR(KVT_TEXT, "X''", SQLITE_MISMATCH, "got BLOB");
  ENC_ERR(KVT_STRING, "X'00'", SQLITE_MISMATCH, "for codec string, got BLOB");
  /* The value given is not changed by the conversion. */
  {
    sqlite3_value *v = val("12.5");
    kvt_buf b = {0};
    char *e = NULL;
    CHECK_WHY(kvt_encode(KVT_TEXT, v, "value", &b, &e) == SQLITE_OK, "number as text");
    CHECK_WHY(sqlite3_value_type(v) == SQLITE_FLOAT, "the REAL stays REAL");
    sqlite3_value_free(v);
    v = val("' 5'");
    b.len = 0;
    CHECK_WHY(kvt_encode(KVT_INTEGER, v, "value", &b, &e) == SQLITE_OK, "text as integer");
    CHECK_WHY(sqlite3_value_type(v) == SQLITE_TEXT && strcmp((const char *)sqlite3_value_text(v), " 5") == 0,
          "the TEXT stays TEXT");
    sqlite3_value_free(v);
    kvt_buf_free(&b);
  }

  /* integer: Go's zig-zag varint. */
  ENC_OK(KVT_INTEGER, "150", "\xac\x02", 2);
  ENC_OK(KVT_INTEGER, "0", "\x00", 1);
  ENC_OK(KVT_INTEGER, "-1", "\x01", 1);
  ENC_OK(KVT_INTEGER, "-150", "\xab\x02", 2);
  ENC_OK(KVT_INTEGER, "9223372036854775807",
         "\xfe\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10);
  ENC_OK(KVT_INTEGER, "-9223372036854775807-1",
         "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10);
  ENC_OK(KVT_INTEGER, "'150'", "\xac\x02", 2);
  ENC_OK(KVT_INTEGER, "'+64'", "\x80\x01", 2);
  ENC_OK(KVT_INTEGER, "'-9223372036854775808'",
         "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10);
  /* INTEGER affinity: whole numbers in TEXT or REAL are INTEGERs. */
  ENC_OK(KVT_INTEGER, "' 12 '", "\x18", 1);
  ENC_OK(KVT_INTEGER, "'1e2'", "\xc8\x01", 2);
  ENC_OK(KVT_INTEGER, "'-3.0'", "\x05", 1);
  ENC_OK(KVT_INTEGER, "1.0", "\x02", 1);
  ENC_OK(KVT_INTEGER, "-4611686018427387904.0", "\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 9);
  ENC_ERR(KVT_INTEGER, "'9223372036854775808'", SQLITE_MISMATCH,
          "klevdb: value must be an INTEGER for codec integer, got TEXT");
  ENC_ERR(KVT_INTEGER, "'12abc'", SQLITE_MISMATCH, "got TEXT that is not an integer");
  ENC_ERR(KVT_INTEGER, "'0x10'", SQLITE_MISMATCH, "not an integer");
  ENC_ERR(KVT_INTEGER, "''", SQLITE_MISMATCH, "not an integer");
  ENC_ERR(KVT_INTEGER, "'-'", SQLITE_MISMATCH, "not an integer");
  ENC_ERR(KVT_INTEGER, "'1.5'", SQLITE_MISMATCH, "not an integer");
  ENC_ERR(KVT_INTEGER, "1.5", SQLITE_MISMATCH,
          "klevdb: value must be an INTEGER for codec integer, got a REAL that is not a whole number");
  ENC_ERR(KVT_INTEGER, "9223372036854775808.0", SQLITE_MISMATCH, "not a whole number");
  ENC_ERR(KVT_INTEGER, "-9223372036854775808.0", SQLITE_MISMATCH, "not a whole number");
  ENC_ERR(KVT_INTEGER, "1e999", SQLITE_MISMATCH, "not a whole number");
  ENC_ERR(KVT_INTEGER, "X'01'", SQLITE_MISMATCH, "got BLOB");

  /* json: validated text, numbers as their JSON text. */
  ENC_OK(KVT_JSON, "'{\"a\":[1,2]}'", "{\"a\":[1,2]}", 11);
  ENC_OK(KVT_JSON, "' \"s\" '", " \"s\" ", 5);
  ENC_OK(KVT_JSON, "42", "42", 2);
  ENC_OK(KVT_JSON, "-7", "-7", 2);
  ENC_OK(KVT_JSON, "1.5", "1.5", 3);
  ENC_OK(KVT_JSON, "100.0", "100.0", 5);
  ENC_OK(KVT_JSON, "1e20", "1.0e+20", 7);
  ENC_OK(KVT_JSON, "'null'", "null", 4);
  ENC_ERR(KVT_JSON, "'{bad'", SQLITE_MISMATCH, "klevdb: value is not valid JSON");
  ENC_ERR(KVT_JSON, "''", SQLITE_MISMATCH, "klevdb: value is not valid JSON");
  ENC_ERR(KVT_JSON, "'abc'", SQLITE_MISMATCH, "is not valid JSON");
  ENC_ERR(KVT_JSON, "1e999", SQLITE_MISMATCH, "is not valid JSON");
  ENC_ERR(KVT_JSON, "X'7b7d'", SQLITE_MISMATCH, "must be TEXT for codec json, got BLOB");

  /* stringopt: Go's exact json.Marshal form. */
  ENC_OK(KVT_STRINGOPT, "'<a&b>'", "\"\\u003ca\\u0026b\\u003e\"", 22);
  ENC_OK(KVT_STRINGOPT, "''", "\"\"", 2);
  ENC_OK(KVT_STRINGOPT, "'say \"hi\"'", "\"say \\\"hi\\\"\"", 12);
  ENC_OK(KVT_STRINGOPT, "CAST(X'41FF' AS TEXT)", "\"A\\ufffd\"", 9);
  ENC_OK(KVT_STRINGOPT, "5", "\"5\"", 3);
  ENC_OK(KVT_STRINGOPT, "char(10, 1, 8232)", "\"\\n\\u0001\\u2028\"", 16);
  ENC_ERR(KVT_STRINGOPT, "X'41'", SQLITE_MISMATCH,
          "klevdb: value must be TEXT for codec stringopt, got BLOB");

  /* Appending: values follow each other; an error appends nothing. */
  {
    kvt_buf b = {0};
    char *e = NULL;
    sqlite3_value *v1 = val("'ab'"), *v2 = val("150"), *v3 = val("'x'");
    CHECK_WHY(kvt_encode(KVT_TEXT, v1, "key", &b, &e) == SQLITE_OK, "append 1");
    CHECK_WHY(kvt_encode(KVT_INTEGER, v2, "value", &b, &e) == SQLITE_OK, "append 2");
    CHECK_WHY(kvt_encode(KVT_INTEGER, v3, "key", &b, &e) == SQLITE_MISMATCH, "append 3");
    CHECK_WHY(e && strstr(e, "klevdb: key must be an INTEGER"), "what is named: %s",
          e ? e : "");
    sqlite3_free(e);
    CHECK_WHY(bytes_eq(&b, "ab\xac\x02", 4), "appended %zu", b.len);
    for (int i = 0; i < 100; i++) kvt_encode(KVT_TEXT, v1, "key", &b, &e);
    CHECK_WHY(b.len == 204 && b.cap >= 204, "growth %zu", b.len);
    sqlite3_value_free(v1);
    sqlite3_value_free(v2);
    sqlite3_value_free(v3);
    kvt_buf_free(&b);
    CHECK_WHY(b.p == NULL && b.len == 0 && b.cap == 0, "buf freed");
  }

  /* The 64 MiB limit: at it is fine, over it is SQLITE_TOOBIG. */
  ENC_ERR(KVT_BLOB, "zeroblob(67108865)", SQLITE_TOOBIG,
          "klevdb: value too big: 67108865 bytes, the limit is 67108864");
  {
    int rc;
    char *e = NULL;
    kvt_buf b = enc(KVT_BLOB, "zeroblob(67108864)", &rc, &e);
    CHECK_WHY(rc == SQLITE_OK && b.len == 67108864, "at the limit: rc %d", rc);
    kvt_buf_free(&b);
    sqlite3_free(e);
  }
  /* 22369622 '<' escape to 6 bytes each: the JSON form is what counts. */
  ENC_ERR(KVT_STRINGOPT, "replace(hex(zeroblob(11184811)), '0', '<')", SQLITE_TOOBIG,
          "klevdb: value too big: 134217734 bytes, the limit is 67108864");
}

static void test_result(void) {
  int64_t i;
  RESULT(KVT_BLOB, "\x00\xff", 2, SQLITE_BLOB, "\x00\xff", 2);
  RESULT(KVT_BLOB, "", 0, SQLITE_NULL, NULL, 0);
  RESULT(KVT_TEXT, "abc", 3, SQLITE_TEXT, "abc", 3);
  RESULT(KVT_TEXT, "", 0, SQLITE_NULL, NULL, 0);
  RESULT(KVT_JSON, "[1]", 3, SQLITE_TEXT, "[1]", 3);
  RESULT(KVT_JSON, "", 0, SQLITE_NULL, NULL, 0);
  RESULT(KVT_STRING, "abc", 3, SQLITE_TEXT, "abc", 3);
  RESULT(KVT_STRING, "", 0, SQLITE_TEXT, "", 0);
  i = 150;
  RESULT(KVT_INTEGER, "\xac\x02", 2, SQLITE_INTEGER, &i, 0);
  i = INT64_MIN;
  RESULT(KVT_INTEGER, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10, SQLITE_INTEGER,
         &i, 0);
  i = 1; /* trailing bytes are ignored, as in Go */
  RESULT(KVT_INTEGER, "\x02\x00", 2, SQLITE_INTEGER, &i, 0);
  RESULT(KVT_INTEGER, "", 0, SQLITE_NULL, NULL, 0);
  RESULT_ERR(KVT_INTEGER, "\x80", 1, "klevdb: stored key/value is not a valid varint");
  RESULT_ERR(KVT_INTEGER, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 10,
             "not a valid varint (overflow)");
  RESULT(KVT_STRINGOPT, "\"\\u003ca\\u0026b\\u003e\"", 22, SQLITE_TEXT, "<a&b>", 5);
  RESULT(KVT_STRINGOPT, " \"\\ud83d\\ude00\" ", 16, SQLITE_TEXT, "\xf0\x9f\x98\x80", 4);
  RESULT(KVT_STRINGOPT, "\"\"", 2, SQLITE_TEXT, "", 0);
  RESULT(KVT_STRINGOPT, "null", 4, SQLITE_TEXT, "", 0);
  RESULT(KVT_STRINGOPT, "", 0, SQLITE_NULL, NULL, 0);
  RESULT_ERR(KVT_STRINGOPT, "42", 2, "klevdb: stored value is not a JSON string");
  RESULT_ERR(KVT_STRINGOPT, "\"abc", 4, "not a JSON string");
}

/* Every codec: encode then read back gives the value (and type) again. */
static void test_round_trips(void) {
  static const struct { kvt_codec c; const char *expr; } cases[] = {
    {KVT_BLOB, "X'00010203FF'"}, {KVT_BLOB, "randomblob(1000)"},
    {KVT_TEXT, "'h\xc3\xa9llo'"}, {KVT_JSON, "'{\"k\":[true,null,1.5]}'"},
    {KVT_STRING, "'plain'"}, {KVT_INTEGER, "0"}, {KVT_INTEGER, "-42"},
    {KVT_INTEGER, "9223372036854775807"}, {KVT_INTEGER, "-9223372036854775807-1"},
    {KVT_STRINGOPT, "'<a&b> \"q\" \\ \xe2\x80\xa8 tab\t'"}, {KVT_STRINGOPT, "''"},
    {KVT_STRINGOPT, "'\xf0\x9f\x98\x80'"},
  };
  for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
    sqlite3_value *v = val(cases[k].expr);
    kvt_buf b = {0};
    char *e = NULL;
    sqlite3_stmt *st;
    int rc = kvt_encode(cases[k].c, v, "value", &b, &e);
    CHECK_WHY(rc == SQLITE_OK, "%s: %s", cases[k].expr, e ? e : "");
    sqlite3_prepare_v2(mem, "SELECT res(?1, ?2) IS ?3, typeof(res(?1, ?2)) = typeof(?3)",
                       -1, &st, NULL);
    sqlite3_bind_int(st, 1, (int)cases[k].c);
    sqlite3_bind_blob(st, 2, b.len ? (const void *)b.p : "", (int)b.len, SQLITE_STATIC);
    sqlite3_bind_value(st, 3, v);
    rc = sqlite3_step(st);
    CHECK_WHY(rc == SQLITE_ROW && sqlite3_column_int(st, 0) == 1 &&
              sqlite3_column_int(st, 1) == 1,
          "round trip of %s (codec %s): rc %d %s", cases[k].expr,
          kvt_codec_name(cases[k].c), rc, sqlite3_errmsg(mem));
    sqlite3_finalize(st);
    kvt_buf_free(&b);
    sqlite3_free(e);
    sqlite3_value_free(v);
  }
}

/* ---- times ---- */

static void time_ok(int line, const char *expr, int64_t want) {
  sqlite3_value *v = val(expr);
  int64_t t = 0;
  char *e = NULL;
  int rc = kvt_parse_time(v, &t, &e);
  chk_total++;
  if (rc != SQLITE_OK || t != want) {
    chk_failed++;
    fprintf(stderr, "%s:%d: FAIL time %s: rc %d %s, got %lld, want %lld\n", __FILE__,
            line, expr, rc, e ? e : "", (long long)t, (long long)want);
  }
  sqlite3_free(e);
  sqlite3_value_free(v);
}

static void time_err(int line, const char *expr, const char *want) {
  sqlite3_value *v = val(expr);
  int64_t t = 0;
  char *e = NULL;
  int rc = kvt_parse_time(v, &t, &e);
  chk_total++;
  if (rc != SQLITE_MISMATCH || !e || !strstr(e, want)) {
    chk_failed++;
    fprintf(stderr, "%s:%d: FAIL time %s: rc %d '%s', want '%s'\n", __FILE__, line,
            expr, rc, e ? e : "(null)", want);
  }
  sqlite3_free(e);
  sqlite3_value_free(v);
}
#define TIME_OK(expr, want) time_ok(__LINE__, expr, want)
#define TIME_ERR(expr, want) time_err(__LINE__, expr, want)

static void test_times(void) {
  TIME_OK("1672531200000000", 1672531200000000LL);
  TIME_OK("-5", -5);
  TIME_OK("'2023-01-01T00:00:00Z'", 1672531200000000LL);
  TIME_OK("'2023-01-01 00:00:00.5+01:00'", 1672527600500000LL);
  TIME_OK("'2023-01-01T00:00:00.123456789-00:30'", 1672533000123456LL);
  TIME_OK("'2023-01-01t00:00:00z'", 1672531200000000LL);
  TIME_OK("'2023-01-01T10:20'", 1672568400000000LL);
  TIME_OK("'2023-01-01 00:00:00'", 1672531200000000LL);
  TIME_OK("'2024-02-29'", 1709164800000000LL);
  TIME_OK("'2000-02-29'", 951782400000000LL);
  TIME_OK("'1970-01-01T00:00:00Z'", 0);
  TIME_OK("'1970-01-01'", 0);
  TIME_OK("'1969-12-31T23:59:59.9999999Z'", -1);
  TIME_OK("'0001-01-01T00:00:00Z'", -62135596800000000LL);
  TIME_OK("'9999-12-31T23:59:59.999999Z'", 253402300799999999LL);
  TIME_OK("'2023-06-15T12:34:56.7'", 1686832496700000LL);

  TIME_ERR("'2023-02-29'", "klevdb: time '2023-02-29' is out of range");
  TIME_ERR("'1900-02-29'", "out of range");
  TIME_ERR("'2023-13-01'", "out of range");
  TIME_ERR("'2023-04-31'", "out of range");
  TIME_ERR("'2023-00-10'", "out of range");
  TIME_ERR("'0000-01-01'", "out of range");
  TIME_ERR("'2023-01-01T24:00:00Z'", "out of range");
  TIME_ERR("'2023-01-01T00:60:00Z'", "out of range");
  TIME_ERR("'2023-01-01T00:00:60Z'", "out of range");
  TIME_ERR("'2023-01-01T00:00:00+24:00'", "out of range");
  TIME_ERR("'2023-01-01T00:00:00.1234567890Z'", "is not ISO-8601");
  TIME_ERR("'2023-01-01T00:00:00.Z'", "is not ISO-8601");
  TIME_ERR("'2023-01-01T'", "is not ISO-8601");
  TIME_ERR("'2023-01-01T00:00:00Zx'", "is not ISO-8601");
  TIME_ERR("'2023-01-01T00:00:00+0100'", "is not ISO-8601");
  TIME_ERR("'23-01-01'", "is not ISO-8601");
  TIME_ERR("'2023-1-01'", "is not ISO-8601");
  TIME_ERR("' 2023-01-01'", "is not ISO-8601");
  TIME_ERR("'now'", "klevdb: time 'now' is not ISO-8601");
  TIME_ERR("''", "is not ISO-8601");
  TIME_ERR("'1672531200000000x'", "is not ISO-8601");
  /* time is an INTEGER column: whole numbers in TEXT or REAL are taken as
  ** such a column takes them. */
  TIME_OK("'1672531200000000'", 1672531200000000LL);
  TIME_OK("' -5 '", -5);
  TIME_OK("1.6725312e15", 1672531200000000LL);
  TIME_ERR("1.5", "klevdb: time must be INTEGER microseconds or ISO-8601 TEXT, got a REAL that is not");
  TIME_ERR("'1.5'", "is not ISO-8601");
  TIME_ERR("X'00'", "klevdb: time must be INTEGER microseconds or ISO-8601 TEXT");
  {
    sqlite3_value *v = val("NULL");
    int64_t t = 7;
    char *e = NULL;
    int rc = kvt_parse_time(v, &t, &e);
    CHECK_WHY(rc == SQLITE_MISMATCH && e == NULL && t == 7, "NULL time: rc %d", rc);
    sqlite3_value_free(v);
  }
}

int main(void) {
  if (sqlite3_open(":memory:", &mem) != SQLITE_OK) return 2;
  sqlite3_create_function(mem, "res", 2, SQLITE_UTF8, NULL, res_func, NULL, NULL);

  test_args();
  test_file_db();
  test_encode();
  test_result();
  test_round_trips();
  test_times();

  sqlite3_close(mem);
  chk_name = "test_args_codec";
  return check_done();
}
