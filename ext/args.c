/*
** args.c - the arguments of CREATE VIRTUAL TABLE ... USING klevdb(...):
** name=value pairs giving the directory, the store's options and the
** codecs of the key and value columns.
*/
#include <string.h>

#include "kvt.h"

/* The one list of argument names, in the order the error message lists
** them; its index is the bit in the "seen" mask that catches duplicates. */
enum {
  ARG_DIR, ARG_KEY_INDEX, ARG_TIME_INDEX, ARG_ROLLOVER, ARG_AUTO_SYNC,
  ARG_READONLY, ARG_CREATE_DIRS, ARG_CHECK, ARG_RECOVER, ARG_FORMAT,
  ARG_KEY, ARG_VALUE, ARG_TRIGGERS, ARG_PREALLOCATE, ARG_MAX_AGE, ARG_MAX_BYTES,
  ARG_MAX_COUNT, ARG_KEEP_UNCONSUMED, ARG_COUNT
};
static const char *const arg_names[ARG_COUNT] = {
  "dir", "key_index", "time_index", "rollover", "auto_sync", "readonly",
  "create_dirs", "check", "recover", "format", "key", "value", "triggers",
  "preallocate", "max_age", "max_bytes", "max_count", "keep_unconsumed"
};
#define ARG_LIST "dir, key_index, time_index, rollover, auto_sync, " \
                 "readonly, create_dirs, check, recover, format, key, value, " \
                 "triggers, preallocate, max_age, max_bytes, max_count, " \
                 "keep_unconsumed"

static const char *const codec_names[] = {
  "blob", "text", "integer", "json", "string", "stringopt"
};
#define CODEC_LIST "blob, text, integer, json, string, stringopt"

/* 1 TiB: far beyond any sensible segment, small enough that sizes never
** come near int64 overflow in the core's arithmetic. */
#define ROLLOVER_MAX ((int64_t)1 << 40)

const char *kvt_codec_name(kvt_codec c) {
  if ((unsigned)c < sizeof(codec_names) / sizeof(codec_names[0]))
    return codec_names[c];
  return "?";
}

static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
         c == '\v';
}

/* A boolean as SQLite's PRAGMAs spell them. Returns 0/1, or -1. */
static int parse_bool(const char *s) {
  static const char *const yes[] = {"1", "on", "true", "yes"};
  static const char *const no[] = {"0", "off", "false", "no"};
  for (int i = 0; i < 4; i++) {
    if (sqlite3_stricmp(s, yes[i]) == 0) return 1;
    if (sqlite3_stricmp(s, no[i]) == 0) return 0;
  }
  return -1;
}

/* A duration: a whole number with a unit (d, h, m, s, ms, us), or bare
** microseconds as the table's times are. Returns 0 and sets *out (> 0),
** or -1. */
static int parse_duration(const char *s, int64_t *out) {
  static const struct { const char *suffix; int64_t us; } units[] = {
    {"", 1}, {"us", 1}, {"ms", 1000}, {"s", 1000000}, {"m", 60000000},
    {"h", 3600000000LL}, {"d", 86400000000LL},
  };
  uint64_t n = 0;
  const char *p = s;
  if (*p < '0' || *p > '9') return -1;
  for (; *p >= '0' && *p <= '9'; p++) {
    if (n > ((uint64_t)INT64_MAX - 9) / 10) return -1;
    n = n * 10 + (uint64_t)(*p - '0');
  }
  while (is_space(*p)) p++;
  for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
    if (sqlite3_stricmp(p, units[i].suffix) != 0) continue;
    if (n == 0 || n > (uint64_t)INT64_MAX / (uint64_t)units[i].us) return -1;
    *out = (int64_t)n * units[i].us;
    return 0;
  }
  return -1;
}

/* Sets *msg to an error message and returns SQLITE_ERROR (a NULL *msg
** then only means that the message itself did not fit in memory). */
static int fail(char **msg, char *m) {
  *msg = m;
  return SQLITE_ERROR;
}

/* Splits "name = value" in place (arg is a private copy): trims both
** sides and strips one level of '...' or "..." quotes, where a doubled
** quote inside stands for one, as in SQL literals. */
static int split_arg(char *arg, const char *orig, char **name, char **value,
                     char **msg) {
  char *eq = strchr(arg, '=');
  if (!eq)
    return fail(msg, sqlite3_mprintf("klevdb: argument '%s' has no '=' (write "
                                     "name=value)", orig));
  *eq = 0;
  char *n = arg, *v = eq + 1;
  while (is_space(*n)) n++;
  char *e = n + strlen(n);
  while (e > n && is_space(e[-1])) *--e = 0;
  while (is_space(*v)) v++;
  e = v + strlen(v);
  while (e > v && is_space(e[-1])) *--e = 0;
  if (!*n)
    return fail(msg, sqlite3_mprintf("klevdb: argument '%s' has no name", orig));

  if (*v == '\'' || *v == '"') {
    char q = *v;
    char *r = v + 1, *w = v;
    for (;;) {
      if (!*r)
        return fail(msg, sqlite3_mprintf("klevdb: argument %s: unterminated "
                                         "quote in '%s'", n, orig));
      if (*r == q) {
        if (r[1] != q) break;
        r++;
      }
      *w++ = *r++;
    }
    if (r[1])
      return fail(msg, sqlite3_mprintf("klevdb: argument %s: text after the "
                                       "closing quote in '%s'", n, orig));
    *w = 0;
  }
  if (!*v)
    return fail(msg, sqlite3_mprintf("klevdb: argument %s has an empty value", n));
  *name = n;
  *value = v;
  return SQLITE_OK;
}

/* Applies one argument to out; a dir= value goes to *dir, unresolved. */
static int apply_arg(int which, const char *v, kvt_args *out, char **dir,
                     char **msg) {
  int b;
  switch (which) {
  case ARG_DIR:
    *dir = sqlite3_mprintf("%s", v);
    return *dir ? SQLITE_OK : SQLITE_NOMEM;
  case ARG_ROLLOVER: {
    /* klevdb_parse_size: binary units (64KB = 65536), blanks allowed
    ** before the unit; one parser for SQL and the tool. */
    int64_t n;
    int pr = klevdb_parse_size(v, strlen(v), &n);
    if (pr == -1)
      return fail(msg, sqlite3_mprintf("klevdb: argument rollover: bad size "
                                       "'%s' (bytes, or a number with KB, MB "
                                       "or GB)", v));
    if (pr == 0 && n == 0)
      return fail(msg, sqlite3_mprintf("klevdb: argument rollover must be > 0"));
    if (pr == -2 || n > ROLLOVER_MAX)
      return fail(msg, sqlite3_mprintf("klevdb: argument rollover: '%s' is over "
                                       "the limit of 1 TiB", v));
    out->opts.rollover = (int64_t)n;
    return SQLITE_OK;
  }
  case ARG_MAX_AGE:
    if (parse_duration(v, &out->max_age) != 0)
      return fail(msg, sqlite3_mprintf("klevdb: argument max_age: bad duration '%s' (a whole "
                                       "number > 0 with d, h, m, s or ms, as in '7d', or "
                                       "microseconds)", v));
    return SQLITE_OK;
  case ARG_MAX_BYTES: {
    int64_t n;
    if (klevdb_parse_size(v, strlen(v), &n) != 0 || n == 0)
      return fail(msg, sqlite3_mprintf("klevdb: argument max_bytes: bad size '%s' (bytes > 0, "
                                       "or a number with KB, MB or GB)", v));
    out->max_bytes = n;
    return SQLITE_OK;
  }
  case ARG_MAX_COUNT: {
    uint64_t n = 0;
    const char *p = v;
    for (; *p >= '0' && *p <= '9' && n <= (uint64_t)INT64_MAX / 10; p++)
      n = n * 10 + (uint64_t)(*p - '0');
    if (*p || p == v || n == 0 || n > (uint64_t)INT64_MAX)
      return fail(msg, sqlite3_mprintf("klevdb: argument max_count: '%s' is not a whole "
                                       "number of messages > 0", v));
    out->max_count = (int64_t)n;
    return SQLITE_OK;
  }
  case ARG_FORMAT:
    if (sqlite3_stricmp(v, "v1") == 0) out->opts.new_segments_version = KLEVDB_V1;
    else if (sqlite3_stricmp(v, "v2") == 0) out->opts.new_segments_version = KLEVDB_V2;
    else
      return fail(msg, sqlite3_mprintf("klevdb: argument format: unknown format "
                                       "'%s' (formats: v1, v2)", v));
    return SQLITE_OK;
  case ARG_KEY:
  case ARG_VALUE:
    for (size_t i = 0; i < sizeof(codec_names) / sizeof(codec_names[0]); i++) {
      if (sqlite3_stricmp(v, codec_names[i]) == 0) {
        if (which == ARG_KEY) out->key = (kvt_codec)i;
        else out->value = (kvt_codec)i;
        return SQLITE_OK;
      }
    }
    return fail(msg, sqlite3_mprintf("klevdb: argument %s: unknown codec '%s' "
                                     "(codecs: " CODEC_LIST ")",
                                     arg_names[which], v));
  default:
    break;
  }
  /* Everything else is a boolean option. */
  b = parse_bool(v);
  if (b < 0)
    return fail(msg, sqlite3_mprintf("klevdb: argument %s: bad boolean '%s' "
                                     "(use 0/1, on/off, true/false or yes/no)",
                                     arg_names[which], v));
  switch (which) {
  case ARG_KEY_INDEX: out->opts.key_index = b; out->indexes_given |= 1; break;
  case ARG_TIME_INDEX: out->opts.time_index = b; out->indexes_given |= 2; break;
  case ARG_AUTO_SYNC: out->opts.auto_sync = b; break;
  case ARG_READONLY: out->opts.readonly = b; break;
  case ARG_CREATE_DIRS: out->opts.create_dirs = b; break;
  case ARG_CHECK: out->opts.check = b; break;
  case ARG_RECOVER: out->opts.recover = b; break;
  case ARG_TRIGGERS: out->triggers = b; break;
  case ARG_PREALLOCATE: out->opts.preallocate = b; break;
  case ARG_KEEP_UNCONSUMED: out->keep_unconsumed = b; break;
  default: break;
  }
  return SQLITE_OK;
}

/* One "name=value" argument. */
static int parse_one(const char *arg, unsigned *seen, kvt_args *out, char **dir,
                     char **msg) {
  char *copy = sqlite3_mprintf("%s", arg);
  char *name = NULL, *value = NULL;
  int which = -1, rc;
  if (!copy) return SQLITE_NOMEM;
  rc = split_arg(copy, arg, &name, &value, msg);
  if (rc == SQLITE_OK) {
    for (int k = 0; k < ARG_COUNT; k++)
      if (sqlite3_stricmp(name, arg_names[k]) == 0) which = k;
    if (which < 0)
      rc = fail(msg, sqlite3_mprintf("klevdb: unknown argument '%s' "
                                     "(arguments: " ARG_LIST ")", name));
    else if (*seen & (1u << which))
      rc = fail(msg, sqlite3_mprintf("klevdb: argument %s given twice",
                                     arg_names[which]));
    else {
      *seen |= 1u << which;
      rc = apply_arg(which, value, out, dir, msg);
    }
  }
  sqlite3_free(copy);
  return rc;
}

/* The directory a table gets without dir=: beside the database file, so
** that moving the database's folder takes the store along. */
static int default_dir(sqlite3 *db, const char *schema, const char *table,
                       char **dir, char **msg) {
  const char *file = sqlite3_db_filename(db, schema);
  if (!file || !*file)
    return fail(msg, sqlite3_mprintf("klevdb: table %s: an in-memory or "
                                     "temporary database needs dir='...'",
                                     table));
  /* A '/' would silently nest the store in a folder of its own. */
  if (strchr(table, '/'))
    return fail(msg, sqlite3_mprintf("klevdb: table %s: the name has a '/', "
                                     "give dir='...'", table));
  *dir = sqlite3_mprintf("%s-%s.klevdb", file, table);
  return *dir ? SQLITE_OK : SQLITE_NOMEM;
}

int kvt_args_parse(sqlite3 *db, const char *schema, const char *table, int argc,
                   const char *const *argv, kvt_args *out, char **err) {
  unsigned seen = 0;
  char *dir = NULL;
  int rc = SQLITE_OK;

  memset(out, 0, sizeof(*out));
  *err = NULL;
  out->opts.key_index = 1;
  out->opts.time_index = 1;
  out->opts.create_dirs = 1;
  out->opts.rollover = 1024 * 1024;
  out->opts.new_segments_version = KLEVDB_V2;
  /* Text by default: what SQL users insert, and what 'user:1' finds. */
  out->key = KVT_TEXT;
  out->value = KVT_TEXT;

  for (int i = 3; i < argc && rc == SQLITE_OK; i++)
    rc = parse_one(argv[i], &seen, out, &dir, err);
  if (rc == SQLITE_OK && !dir) rc = default_dir(db, schema, table, &dir, err);
  if (rc == SQLITE_OK) {
    out->dir = kvt_resolve_dir(db, schema, dir);
    if (!out->dir) rc = SQLITE_NOMEM;
  }
  sqlite3_free(dir);
  if (rc != SQLITE_OK) {
    kvt_args_free(out);
    if (rc == SQLITE_NOMEM && !*err) *err = sqlite3_mprintf("klevdb: out of memory");
  }
  return rc;
}

void kvt_args_free(kvt_args *a) {
  sqlite3_free(a->dir);
  a->dir = NULL;
}

char *kvt_resolve_dir(sqlite3 *db, const char *schema, const char *dir) {
  const char *file, *slash;
  if (dir[0] == '/') return sqlite3_mprintf("%s", dir);
  file = sqlite3_db_filename(db, schema);
  /* No file (in-memory, temporary): the process's current directory, which
  ** the core applies to a relative path anyway. */
  if (!file || !*file) return sqlite3_mprintf("%s", dir);
  slash = strrchr(file, '/');
  if (!slash) return sqlite3_mprintf("%s", dir);
  return sqlite3_mprintf("%.*s/%s", (int)(slash - file), file, dir);
}
