/*
** cmd_retain.c - retention: `klevdb trim` (oldest messages by count, size,
** age or offset) and `klevdb compact` (superseded messages, tombstones),
** run by the library's finders on a writer's handle.
*/
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef enum { TRIM_NONE, TRIM_COUNT, TRIM_SIZE, TRIM_AGE, TRIM_OFFSET } trim_mode;

/* Opens dir for writing with a progress bar; *none when there is no store
** to work on (a directory without segments is not made one). */
static int open_writer(cli_ctx *c, const char *dir, cli_progress *bar, const char *label,
                       klevdb **db, bool *none) {
  int rc = cli_need_dir(c, dir);
  if (rc) return rc;
  int64_t *bases;
  size_t n = 0;
  if (cli_seg_list(dir, &bases, &n) == 0) free(bases);
  *none = n == 0;
  if (*none) return CLI_OK;
  klevdb_options o = {0};
  klevdb_dir_indexes(dir, &o.key_index, &o.time_index);
  cli_progress_start(bar, c, label);
  cli_progress_attach(bar, &o);
  return cli_open(dir, &o, db);
}

static int report(const cli_ctx *c, klevdb *db, const klevdb_deleted *del) {
  cli_kv k;
  cli_kv_begin(&k, c);
  cli_kv_int(&k, "removed_messages", del->count);
  cli_kv_int(&k, "removed_bytes", del->size);
  klevdb_stat st;
  if (db && klevdb_stat_get(db, &st) == KLEVDB_OK) cli_kv_int(&k, "messages", st.messages);
  else if (!db) cli_kv_int(&k, "messages", 0);
  cli_kv_end(&k);
  return cli_out_flush();
}

int cli_cmd_trim(cli_ctx *c, int argc, char **argv) {
  static const struct option longopts[] = {
      {"count", required_argument, 0, 'n'}, {"size", required_argument, 0, 's'},
      {"age", required_argument, 0, 'a'},   {"before-offset", required_argument, 0, 'o'},
      CLI_COMMON_OPTIONS};
  trim_mode mode = TRIM_NONE;
  int64_t arg = 0;
  const char *dir;
  int ch, rc, modes = 0;
  while ((ch = cli_getopt(c, argc, argv, "", longopts)) != -1) {
    modes++;
    switch (ch) {
    case 'n':
      mode = TRIM_COUNT;
      if ((rc = cli_parse_count(c, "--count", optarg, &arg))) return rc;
      break;
    case 's':
      mode = TRIM_SIZE;
      if ((rc = cli_parse_size(c, "--size", optarg, &arg))) return rc;
      break;
    case 'a':
      mode = TRIM_AGE;
      if (cli_duration_parse(optarg, &arg))
        return cli_usage(c, "--age: '%s' is not a duration (7d, 12h, 30m, 90s)", optarg);
      break;
    case 'o':
      mode = TRIM_OFFSET;
      if ((rc = cli_parse_count(c, "--before-offset", optarg, &arg))) return rc;
      break;
    default: return cli_usage(c, "unknown option");
    }
  }
  if (modes != 1) return cli_usage(c, "give exactly one of --count, --size, --age, --before-offset");
  if ((rc = cli_operand_dir(c, argc, argv, &dir, NULL))) return rc;
  klevdb *db = NULL;
  cli_progress bar;
  bool none;
  if ((rc = open_writer(c, dir, &bar, "trim", &db, &none))) return rc;
  klevdb_deleted del = {0, 0};
  if (none) return report(c, NULL, &del);

  klevdb_err krc = KLEVDB_OK;
  switch (mode) {
  case TRIM_COUNT: krc = klevdb_trim_by_count(db, arg, &del); break;
  case TRIM_SIZE: krc = klevdb_trim_by_size(db, arg, &del); break;
  case TRIM_AGE: krc = klevdb_trim_by_age(db, cli_now_us() - arg, &del); break;
  case TRIM_OFFSET: krc = klevdb_trim_by_offset(db, arg, &del); break;
  case TRIM_NONE: break;
  }
  cli_progress_end(&bar);
  rc = krc ? cli_core_error(krc, klevdb_errmsg(db)) : report(c, db, &del);
  klevdb_close(db);
  return rc;
}

/* --before: ISO-8601, integer microseconds, "now", or a duration ago. */
static int parse_before(cli_ctx *c, const char *s, int64_t *out) {
  int64_t d;
  if (!strcmp(s, "now")) *out = cli_now_us();
  else if (cli_time_parse(s, out) == 0) return CLI_OK;
  else if (cli_duration_parse(s, &d) == 0) *out = cli_now_us() - d;
  else return cli_parse_time(c, "--before", s, out);
  return CLI_OK;
}

int cli_cmd_compact(cli_ctx *c, int argc, char **argv) {
  static const struct option longopts[] = {{"updates", no_argument, 0, 'u'},
                                           {"deletes", no_argument, 0, 'd'},
                                           {"before", required_argument, 0, 'b'},
                                           CLI_COMMON_OPTIONS};
  bool updates = false, deletes = false;
  const char *before_arg = NULL, *dir;
  int ch, rc;
  while ((ch = cli_getopt(c, argc, argv, "", longopts)) != -1) {
    switch (ch) {
    case 'u': updates = true; break;
    case 'd': deletes = true; break;
    case 'b': before_arg = optarg; break;
    default: return cli_usage(c, "unknown option");
    }
  }
  if (!updates && !deletes) return cli_usage(c, "give --updates, --deletes or both");
  if ((rc = cli_operand_dir(c, argc, argv, &dir, NULL))) return rc;
  int64_t before = cli_now_us();
  if (before_arg && (rc = parse_before(c, before_arg, &before))) return rc;
  klevdb *db = NULL;
  cli_progress bar;
  bool none;
  if ((rc = open_writer(c, dir, &bar, "compact", &db, &none))) return rc;
  klevdb_deleted del = {0, 0}, one;
  if (none) return report(c, NULL, &del);

  /* Updates first: a tombstone is removable once the values it deletes are
  ** gone (Go's Compact runs them in this order too). */
  klevdb_err krc = KLEVDB_OK;
  if (updates && !(krc = klevdb_compact_updates(db, before, &one))) {
    del.count += one.count;
    del.size += one.size;
  }
  if (!krc && deletes && !(krc = klevdb_compact_deletes(db, before, &one))) {
    del.count += one.count;
    del.size += one.size;
  }
  cli_progress_end(&bar);
  rc = krc ? cli_core_error(krc, klevdb_errmsg(db)) : report(c, db, &del);
  klevdb_close(db);
  return rc;
}
