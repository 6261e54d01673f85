/*
** cmd_read.c - the read commands, consume/dump, tail (-f) and get, on a
** read-only handle: no lock is taken, and a writer in another process is
** followed as it publishes.
*/
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define READ_BATCH 1000

/* Opens dir read-only with the indexes its files were written with. */
static int open_reader(const cli_ctx *c, const char *dir, klevdb **db) {
  int rc = cli_need_dir(c, dir);
  if (rc) return rc;
  klevdb_options o = {0};
  o.readonly = 1;
  klevdb_dir_indexes(dir, &o.key_index, &o.time_index);
  return cli_open(dir, &o, db);
}

/* The offset of the newest message, or -1 in an empty store. */
static klevdb_err newest_offset(klevdb *db, klevdb_batch *b, int64_t *out) {
  klevdb_err rc = klevdb_read(db, KLEVDB_OFFSET_NEWEST, 1,
                              KLEVDB_READ_BACKWARD | KLEVDB_READ_OFFSETS, b);
  *out = !rc && b->len ? b->msgs[0].offset : -1;
  return rc;
}

/* Prints messages from *cursor on, stopping before offset end, after
** `left` messages, or when caught up; *cursor is where to go on. With key,
** only that key's messages. */
static int print_from(const cli_ctx *c, klevdb *db, const char *key, int64_t *cursor,
                      int64_t end, int64_t left, klevdb_batch *b) {
  size_t klen = key ? strlen(key) : 0;
  while (left > 0) {
    size_t max = left < READ_BATCH ? (size_t)left : READ_BATCH;
    klevdb_err rc = key ? klevdb_consume_by_key(db, key, klen, *cursor, max, b)
                        : klevdb_consume(db, *cursor, max, b);
    if (rc) return cli_core_error(rc, klevdb_errmsg(db));
    if (b->len == 0) {
      /* A gap left by deletes is skipped by moving on; the end is empty. */
      if (!key && b->next_offset > *cursor && b->next_offset < end) {
        *cursor = b->next_offset;
        continue;
      }
      break;
    }
    for (size_t i = 0; i < b->len && left > 0; i++, left--) {
      if (b->msgs[i].offset >= end) return cli_out_flush();
      cli_out_msg(c, &b->msgs[i]);
    }
    *cursor = b->next_offset;
    int frc = cli_out_flush();
    if (frc) return frc;
  }
  return cli_out_flush();
}

int cli_cmd_consume(cli_ctx *c, int argc, char **argv) {
  static const struct option longopts[] = {{"from", required_argument, 0, 'f'},
                                           {"count", required_argument, 0, 'n'},
                                           {"key", required_argument, 0, 'k'},
                                           CLI_COMMON_OPTIONS};
  int64_t from = KLEVDB_OFFSET_OLDEST, count = INT64_MAX;
  const char *key = NULL, *dir;
  int ch, rc;
  while ((ch = cli_getopt(c, argc, argv, "", longopts)) != -1) {
    switch (ch) {
    case 'f':
      if ((rc = cli_parse_offset(c, "--from", optarg, &from))) return rc;
      break;
    case 'n':
      if ((rc = cli_parse_count(c, "--count", optarg, &count))) return rc;
      break;
    case 'k': key = optarg; break;
    default: return cli_usage(c, "unknown option");
    }
  }
  if ((rc = cli_operand_dir(c, argc, argv, &dir, NULL))) return rc;
  klevdb *db;
  if ((rc = open_reader(c, dir, &db))) return rc;

  klevdb_batch b = KLEVDB_BATCH_INIT;
  int64_t end = 0;
  klevdb_err krc = klevdb_next_offset(db, &end);
  /* "newest" is the newest message here, not Go's "after the end": that
  ** would print nothing. */
  if (!krc && from == KLEVDB_OFFSET_NEWEST) {
    krc = newest_offset(db, &b, &from);
    if (!krc && from < 0) count = 0;
  }
  if (krc) rc = cli_core_error(krc, klevdb_errmsg(db));
  else rc = print_from(c, db, key, &from, end, count, &b);
  klevdb_batch_free(&b);
  klevdb_close(db);
  return rc;
}

/* ---- tail ---- */

/* The offset of the n-th newest message (the next offset if none). */
static klevdb_err tail_start(klevdb *db, int64_t n, klevdb_batch *b, int64_t *start) {
  klevdb_err rc = klevdb_next_offset(db, start);
  int64_t off = KLEVDB_OFFSET_NEWEST;
  while (!rc && n > 0) {
    size_t max = n < READ_BATCH ? (size_t)n : READ_BATCH;
    rc = klevdb_read(db, off, max, KLEVDB_READ_BACKWARD | KLEVDB_READ_OFFSETS, b);
    if (rc || b->len == 0) break;
    *start = b->msgs[b->len - 1].offset;
    n -= (int64_t)b->len;
    if (b->next_offset < 0) break;   /* offset 0 reached */
    off = b->next_offset;
  }
  return rc;
}

/* SIGINT and SIGTERM end `tail -f` cleanly: a thread takes them with
** sigwait and wakes the blocked read, so no signal handler has to call
** into the library. */
typedef struct watcher {
  pthread_t tid;
  sigset_t set;
  klevdb *db;
  int stop;   /* atomic */
} watcher;

static void *watch(void *arg) {
  watcher *w = arg;
  int sig;
  sigwait(&w->set, &sig);
  __atomic_store_n(&w->stop, 1, __ATOMIC_SEQ_CST);
  klevdb_interrupt(w->db);
  return NULL;
}

static int watch_start(const cli_ctx *c, watcher *w, klevdb *db) {
  w->db = db;
  w->stop = 0;
  sigemptyset(&w->set);
  sigaddset(&w->set, SIGINT);
  sigaddset(&w->set, SIGTERM);
  int err = pthread_sigmask(SIG_BLOCK, &w->set, NULL);
  if (!err) err = pthread_create(&w->tid, NULL, watch, w);
  if (err) return cli_error(c, CLI_FAIL, "start the signal thread: %s", strerror(err));
  return CLI_OK;
}

static void watch_stop(watcher *w) {
  /* The thread waits for one of its signals: send it one if none came. */
  if (!__atomic_load_n(&w->stop, __ATOMIC_SEQ_CST)) pthread_kill(w->tid, SIGTERM);
  pthread_join(w->tid, NULL);
}

static int follow(const cli_ctx *c, klevdb *db, int64_t cursor, klevdb_batch *b) {
  watcher w;
  int rc = watch_start(c, &w, db);
  if (rc) return rc;
  while (!__atomic_load_n(&w.stop, __ATOMIC_SEQ_CST)) {
    /* A read-only handle looks for other processes' writes every 5 ms. */
    klevdb_err krc = klevdb_consume_blocking(db, cursor, READ_BATCH, -1, b);
    if (krc == KLEVDB_ECLOSED) break;
    if (krc) {
      rc = cli_core_error(krc, klevdb_errmsg(db));
      break;
    }
    for (size_t i = 0; i < b->len; i++) cli_out_msg(c, &b->msgs[i]);
    if (b->len) cursor = b->next_offset;
    if ((rc = cli_out_flush())) break;
  }
  watch_stop(&w);
  return rc;
}

int cli_cmd_tail(cli_ctx *c, int argc, char **argv) {
  static const struct option longopts[] = {{"lines", required_argument, 0, 'n'},
                                           {"follow", no_argument, 0, 'f'},
                                           CLI_COMMON_OPTIONS};
  int64_t n = 10;
  bool follow_on = false;
  const char *dir;
  int ch, rc;
  while ((ch = cli_getopt(c, argc, argv, "n:f", longopts)) != -1) {
    switch (ch) {
    case 'n':
      if ((rc = cli_parse_count(c, "-n", optarg, &n))) return rc;
      break;
    case 'f': follow_on = true; break;
    default: return cli_usage(c, "unknown option");
    }
  }
  if ((rc = cli_operand_dir(c, argc, argv, &dir, NULL))) return rc;
  klevdb *db;
  if ((rc = open_reader(c, dir, &db))) return rc;

  klevdb_batch b = KLEVDB_BATCH_INIT;
  int64_t cursor, end;
  klevdb_err krc = klevdb_next_offset(db, &end);
  if (!krc) krc = tail_start(db, n, &b, &cursor);
  if (krc) {
    rc = cli_core_error(krc, klevdb_errmsg(db));
  } else {
    rc = print_from(c, db, NULL, &cursor, follow_on ? INT64_MAX : end, n, &b);
    if (rc == CLI_OK && follow_on) rc = follow(c, db, cursor, &b);
  }
  klevdb_batch_free(&b);
  klevdb_close(db);
  return rc;
}

/* ---- get ---- */

int cli_cmd_get(cli_ctx *c, int argc, char **argv) {
  static const struct option longopts[] = {{"key", required_argument, 0, 'k'},
                                           {"time", required_argument, 0, 't'},
                                           CLI_COMMON_OPTIONS};
  const char *key = NULL, *dir;
  int64_t time_us = 0, offset = 0;
  bool by_time = false;
  int ch, rc, more;
  while ((ch = cli_getopt(c, argc, argv, "", longopts)) != -1) {
    switch (ch) {
    case 'k': key = optarg; break;
    case 't':
      if ((rc = cli_parse_time(c, "--time", optarg, &time_us))) return rc;
      by_time = true;
      break;
    default: return cli_usage(c, "unknown option");
    }
  }
  if ((rc = cli_operand_dir(c, argc, argv, &dir, &more))) return rc;
  bool by_offset = more < argc;
  if (more + 1 < argc) return cli_usage(c, "unexpected argument '%s'", argv[more + 1]);
  if (by_offset + (key != NULL) + by_time != 1)
    return cli_usage(c, "give exactly one of OFFSET, --key or --time");
  if (by_offset && (rc = cli_parse_offset(c, "OFFSET", argv[more], &offset))) return rc;
  klevdb *db;
  if ((rc = open_reader(c, dir, &db))) return rc;

  klevdb_batch b = KLEVDB_BATCH_INIT;
  klevdb_err krc;
  if (key) krc = klevdb_get_by_key(db, key, strlen(key), &b);
  else if (by_time) krc = klevdb_get_by_time(db, time_us, &b);
  else krc = klevdb_get(db, offset, &b);
  if (krc) {
    rc = cli_core_error(krc, klevdb_errmsg(db));
  } else {
    cli_out_msg(c, &b.msgs[0]);
    rc = cli_out_flush();
  }
  klevdb_batch_free(&b);
  klevdb_close(db);
  return rc;
}
