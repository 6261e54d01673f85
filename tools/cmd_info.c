/*
** cmd_info.c - `klevdb stat` and `klevdb check`: what a store holds and
** whether its files are sound, read without a lock (a writer may be busy).
*/
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Parses a command that takes only DIR and the common options. */
static int dir_only(cli_ctx *c, int argc, char **argv, const char **dir) {
  static const struct option longopts[] = {CLI_COMMON_OPTIONS};
  if (cli_getopt(c, argc, argv, "", longopts) != -1) return cli_usage(c, "unknown option");
  return cli_operand_dir(c, argc, argv, dir, NULL);
}

static int open_reader(const cli_ctx *c, const char *dir, klevdb_options *o, klevdb **db) {
  int rc = cli_need_dir(c, dir);
  if (rc) return rc;
  memset(o, 0, sizeof(*o));
  o->readonly = 1;
  klevdb_dir_indexes(dir, &o->key_index, &o->time_index);
  return cli_open(dir, o, db);
}

static void kv_offset(cli_kv *k, const char *name, int64_t off) {
  if (off < 0) cli_kv_str(k, name, NULL);
  else cli_kv_int(k, name, off);
}

/* "v2" when all agree, else "v1 3, v2 10"; JSON {"v1":3,"v2":10}. */
static void kv_formats(cli_kv *k, const char *dir) {
  int64_t *bases, n[3] = {0, 0, 0};
  size_t nb;
  if (cli_seg_list(dir, &bases, &nb) == 0) {
    cli_seg_formats(dir, bases, nb, n);
    free(bases);
  }
  char text[128] = "", json[128];
  const char *names[3] = {"empty", "v1", "v2"};
  int kinds = (n[0] > 0) + (n[1] > 0) + (n[2] > 0);
  size_t tl = 0;
  for (int f = 1; f <= 3; f++) {
    int i = f % 3;   /* v1, v2, then empty */
    if (!n[i]) continue;
    if (kinds == 1) tl += (size_t)snprintf(text + tl, sizeof(text) - tl, "%s", names[i]);
    else tl += (size_t)snprintf(text + tl, sizeof(text) - tl, "%s%s %" PRId64, tl ? ", " : "",
                                names[i], n[i]);
  }
  snprintf(json, sizeof(json), "{\"v1\":%" PRId64 ",\"v2\":%" PRId64 ",\"empty\":%" PRId64 "}",
           n[1], n[2], n[0]);
  cli_kv_raw(k, "formats", kinds ? text : "-", json);
}

int cli_cmd_stat(cli_ctx *c, int argc, char **argv) {
  const char *dir;
  int rc = dir_only(c, argc, argv, &dir);
  if (rc) return rc;
  klevdb_options o;
  klevdb *db;
  if ((rc = open_reader(c, dir, &o, &db))) return rc;

  klevdb_stat st;
  klevdb_bounds bd;   /* first/last offset and time, next: one consistent look */
  klevdb_err krc = klevdb_stat_get(db, &st);
  if (!krc) krc = klevdb_bounds_get(db, &bd);
  if (krc) {
    rc = cli_core_error(krc, klevdb_errmsg(db));
  } else {
    cli_kv k;
    cli_kv_begin(&k, c);
    cli_kv_str(&k, "directory", dir);
    cli_kv_int(&k, "segments", st.segments);
    cli_kv_int(&k, "messages", st.messages);
    cli_kv_int(&k, "bytes", st.size);
    kv_offset(&k, "first_offset", bd.oldest_offset);
    kv_offset(&k, "last_offset", bd.newest_offset);
    cli_kv_int(&k, "next_offset", bd.next_offset);
    cli_kv_time(&k, "first_time", bd.oldest_time, bd.oldest_offset < 0);
    cli_kv_time(&k, "last_time", bd.newest_time, bd.newest_offset < 0);
    kv_formats(&k, dir);
    cli_kv_bool(&k, "key_index", o.key_index);
    cli_kv_bool(&k, "time_index", o.time_index);
    cli_kv_doubt(&k, db);
    cli_kv_end(&k);
    rc = cli_out_flush();
  }
  klevdb_close(db);
  return rc;
}

/* ---- check ---- */

/* Reads every record (the checksums, and the indexes as they load). */
static klevdb_err read_all(klevdb *db, cli_progress *bar, int64_t *messages) {
  klevdb_batch b = KLEVDB_BATCH_INIT;
  int64_t next, first = -1, cursor = KLEVDB_OFFSET_OLDEST;
  klevdb_err rc = klevdb_next_offset(db, &next);
  *messages = 0;
  while (!rc) {
    rc = klevdb_consume(db, cursor, 1000, &b);
    if (rc || b.len == 0) break;
    if (first < 0) first = b.msgs[0].offset;
    *messages += (int64_t)b.len;
    cursor = b.next_offset;
    cli_progress_cb(bar, cursor - first, next - first);
    if (cursor >= next) break;
  }
  klevdb_batch_free(&b);
  return rc;
}

static int damaged(const cli_ctx *c, klevdb_err rc, const char *msg) {
  if (c->json) {
    fputs("{\"ok\":false,\"error\":", stdout);
    cli_json_str(stdout, (const uint8_t *)msg, strlen(msg));
    printf(",\"error_class\":\"%s\"}\n", klevdb_errname(rc));
    cli_out_flush();
  }
  return cli_core_error(rc, msg);
}

int cli_cmd_check(cli_ctx *c, int argc, char **argv) {
  const char *dir;
  int rc = dir_only(c, argc, argv, &dir);
  if (rc) return rc;
  klevdb_options o;
  klevdb *db;
  if ((rc = open_reader(c, dir, &o, &db))) return rc;

  /* The last segment's index against its log (a writer's crash leaves
  ** its damage there; under a live writer only what it has written so
  ** far), then every record of every segment. */
  bool live = cli_writer_active(dir);
  klevdb_error err;
  klevdb_err krc = klevdb_dir_check(dir, &o, &err);
  if (krc) {
    klevdb_close(db);
    return damaged(c, krc, err.msg);
  }
  cli_progress bar;
  cli_progress_start(&bar, c, "check");
  int64_t messages = 0;
  klevdb_stat st;
  krc = read_all(db, &bar, &messages);
  cli_progress_end(&bar);
  if (!krc) krc = klevdb_stat_get(db, &st);
  if (krc) {
    rc = damaged(c, krc, klevdb_errmsg(db));
  } else if (c->json) {
    printf("{\"ok\":true,\"segments\":%" PRId64 ",\"messages\":%" PRId64 ",\"live\":%s}\n",
           st.segments, messages, live ? "true" : "false");
    rc = cli_out_flush();
  } else {
    printf("ok: %" PRId64 " segment%s, %" PRId64 " message%s%s\n", st.segments,
           st.segments == 1 ? "" : "s", messages, messages == 1 ? "" : "s",
           live ? " (a writer has the store open: checked what it has written so far)" : "");
    rc = cli_out_flush();
  }
  klevdb_close(db);
  return rc;
}
