/*
** cli.h - what the files of the klevdb command-line tool share: the run
** context, the exit codes, and the helpers (main.c, out.c, jsonl.c,
** base64.c, timefmt.c, progress.c, segfiles.c) the commands are built from.
*/
#ifndef CLI_H
#define CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "klevdb.h"

/* Exit codes (documented in `klevdb --help`). */
enum {
  CLI_OK = 0,
  CLI_NOTFOUND = 1,   /* no such message, offset, key, time or store */
  CLI_USAGE = 2,      /* bad option, argument or input line */
  CLI_CORRUPT = 3,    /* the store's files are damaged */
  CLI_LOCKED = 4,     /* another process writes the store */
  CLI_FAIL = 5,       /* anything else: I/O, permissions, memory */
  /* Not an exit code: the reader of stdout went away; stop quietly, exit 0. */
  CLI_STOP = 100
};

/* One run of the tool. */
typedef struct cli_ctx {
  const char *cmd;        /* the command, for messages */
  const char *help;       /* its help text */
  int json;               /* --json */
  int quiet;              /* --quiet */
} cli_ctx;

/* ---- main.c: messages, option parsing, exit codes ---- */

/* "klevdb: <cmd>: <message>" to stderr. Returns code, for one-line error
** paths. */
int cli_error(const cli_ctx *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A message from the core library (already "klevdb: ..."), with the exit
** code of its class. */
int cli_core_error(klevdb_err rc, const char *msg);
int cli_exit_code(klevdb_err rc);
/* A usage error: the message and a pointer to --help; returns CLI_USAGE. */
int cli_usage(const cli_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Long options every command takes, to end each command's table with. */
#define CLI_COMMON_OPTIONS                                                     \
  {"json", no_argument, 0, 'J'}, {"quiet", no_argument, 0, 'q'},              \
      {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}

/* getopt_long over a command's arguments (argv[0] is the command). Handles
** the common options itself (--help prints the help and exits 0) and exits
** with CLI_USAGE on an unknown option or a missing argument, so that the
** commands see only their own options. Returns -1 at the end; the
** operands are then argv[optind..argc). */
int cli_getopt(cli_ctx *c, int argc, char **argv, const char *shortopts,
               const struct option *longopts);
/* The one operand DIR (and no other unless more != NULL, which then gets
** the index of the first further operand). */
int cli_operand_dir(const cli_ctx *c, int argc, char **argv, const char **dir,
                    int *more);

/* Number arguments; each prints a usage error and returns CLI_USAGE. */
int cli_parse_count(const cli_ctx *c, const char *opt, const char *s, int64_t *out);
int cli_parse_size(const cli_ctx *c, const char *opt, const char *s, int64_t *out);
/* An offset: a number, "oldest" or "newest". */
int cli_parse_offset(const cli_ctx *c, const char *opt, const char *s, int64_t *out);
int cli_parse_time(const cli_ctx *c, const char *opt, const char *s, int64_t *out);

/* The store directory must exist and be a store (read commands and
** maintenance): CLI_NOTFOUND with a message when it is not. */
int cli_need_dir(const cli_ctx *c, const char *dir);
/* A directory is a store when it has segment files or a .lock (a writer
** has opened it); an empty one is an empty store (CREATE VIRTUAL TABLE
** makes just the folder). Anything else (say /etc) is not one. Returns
** CLI_NOTFOUND with a message for a directory that is not a store. */
int cli_need_store(const cli_ctx *c, const char *dir);
/* klevdb_open; a failure is reported, with its exit code. */
int cli_open(const char *dir, const klevdb_options *o, klevdb **db);

/* ---- out.c: messages and key/value records, as text or JSON ---- */

void cli_out_msg(const cli_ctx *c, const klevdb_msg *m);
/* Flushes stdout: CLI_OK, CLI_STOP when its reader is gone, or CLI_FAIL
** (with a message). */
int cli_out_flush(void);
/* A JSON string of valid UTF-8 s[0..n). */
void cli_json_str(FILE *f, const uint8_t *s, size_t n);
bool cli_utf8_valid(const uint8_t *s, size_t n);

/* Records of named fields: "name: value" lines (underscores shown as
** spaces), or one JSON object with --json. */
typedef struct cli_kv {
  const cli_ctx *c;
  int n;
} cli_kv;
void cli_kv_begin(cli_kv *k, const cli_ctx *c);
void cli_kv_int(cli_kv *k, const char *name, int64_t v);
void cli_kv_str(cli_kv *k, const char *name, const char *v);  /* NULL: null */
void cli_kv_bool(cli_kv *k, const char *name, bool v);
/* ISO-8601 as name and microseconds as name_us; absent if us is -1 and
** absent is set. */
void cli_kv_time(cli_kv *k, const char *name, int64_t us, bool absent);
/* A field whose text and JSON forms differ (json is raw JSON text). */
void cli_kv_raw(cli_kv *k, const char *name, const char *text, const char *json);
void cli_kv_end(cli_kv *k);

/* ---- base64.c ---- */

/* Standard alphabet with padding; out needs 4 * ((n + 2) / 3) + 1 bytes. */
size_t cli_base64_encode(const uint8_t *in, size_t n, char *out);
/* Decodes in place-safe into out (n * 3 / 4 bytes at most); -1 if in is
** not base64. */
long cli_base64_decode(const char *in, size_t n, uint8_t *out);

/* ---- timefmt.c: ISO-8601 times and durations ---- */

#define CLI_TIME_CAP 40
/* 2024-05-01T09:00:00.000123Z; false if the time is beyond what gmtime
** takes. */
bool cli_time_format(int64_t us, char out[CLI_TIME_CAP]);
/* ISO-8601 (2024-05-01, 2024-05-01T09:00:00Z, fractions, +02:00 zones) or
** integer microseconds. 0, or -1 for a malformed text, -2 for a field out
** of range. */
int cli_time_parse(const char *s, int64_t *us);
/* 7d, 12h, 30m, 90s, 500ms, 2w, combined (1h30m); a plain number is
** seconds. 0 or -1. */
int cli_duration_parse(const char *s, int64_t *us);
int64_t cli_now_us(void);

/* ---- jsonl.c: one line of publish's JSON-lines input ---- */

/* A growing byte buffer. */
typedef struct cli_buf {
  uint8_t *p;
  size_t len, cap;
} cli_buf;
int cli_buf_reserve(cli_buf *b, size_t more);   /* 0 or -1 (no memory) */
void cli_buf_free(cli_buf *b);

/* A parsed line; key and value are positions in the caller's buffer, which
** may move while a batch fills. */
typedef struct cli_jmsg {
  bool has_key, has_value, has_time;
  size_t key_pos, key_len, value_pos, value_len;
  int64_t time;
} cli_jmsg;
/* Parses {"key":..., "value":..., "time":...} (offset and time_us, as
** printed by --json output, are accepted too), appending the decoded key
** and value to buf. 0, -1 with a message in err, or -2 out of memory. */
int cli_jsonl_parse(const char *line, size_t n, cli_buf *buf, cli_jmsg *m,
                    char *err, size_t errcap);

/* ---- progress.c: a bar on a terminal for long operations ---- */

typedef struct cli_progress {
  bool on;
  const char *label;
  int64_t last_ms;
  bool drawn;
} cli_progress;
/* Shown only when stderr is a terminal and neither --json nor --quiet. */
void cli_progress_start(cli_progress *p, const cli_ctx *c, const char *label);
/* The klevdb_options.progress callback (arg is the cli_progress). */
void cli_progress_cb(void *arg, int64_t done, int64_t total);
/* Hooks p to the store's options. */
void cli_progress_attach(cli_progress *p, klevdb_options *o);
void cli_progress_end(cli_progress *p);

/* ---- segfiles.c: the store's files as the tool sees them (the library
** lists segments, tells their formats and owns the lock) ---- */

/* Bases of dir's segments (<20 digits>.log), ascending; free(*bases). 0 or
** -1 with errno. */
int cli_seg_list(const char *dir, int64_t **bases, size_t *n);
void cli_seg_path(char *out, size_t cap, const char *dir, int64_t base, const char *ext);
/* counts[f] segments of format f (counts[0]: empty or unreadable). */
void cli_seg_formats(const char *dir, const int64_t *bases, size_t n, int64_t counts[3]);
/* The names in dir (without . and ..); 0 or -1 with errno. */
int cli_dir_names(const char *dir, char ***names, size_t *n);
void cli_dir_names_free(char **names, size_t n);
/* Takes the store's writer lock for work on its files directly: CLI_OK,
** CLI_LOCKED or CLI_FAIL (with a message). */
int cli_lock_dir(const cli_ctx *c, const char *dir, int *fd);
/* True if a writer has the store open now. */
bool cli_writer_active(const char *dir);
void cli_unlock_dir(int fd);

/* ---- the commands (argv[0] is the command's name) ---- */

int cli_cmd_publish(cli_ctx *c, int argc, char **argv);
int cli_cmd_consume(cli_ctx *c, int argc, char **argv);
int cli_cmd_tail(cli_ctx *c, int argc, char **argv);
int cli_cmd_get(cli_ctx *c, int argc, char **argv);
int cli_cmd_stat(cli_ctx *c, int argc, char **argv);
int cli_cmd_check(cli_ctx *c, int argc, char **argv);
int cli_cmd_recover(cli_ctx *c, int argc, char **argv);
int cli_cmd_backup(cli_ctx *c, int argc, char **argv);
int cli_cmd_migrate(cli_ctx *c, int argc, char **argv);
int cli_cmd_gc(cli_ctx *c, int argc, char **argv);
int cli_cmd_settle(cli_ctx *c, int argc, char **argv);
/* The "in doubt" fields of stat and settle: a SQL transaction's batch
** prepared in the store, its outcome not yet known. */
void cli_kv_doubt(cli_kv *k, klevdb *db);
int cli_cmd_trim(cli_ctx *c, int argc, char **argv);
int cli_cmd_compact(cli_ctx *c, int argc, char **argv);
int cli_cmd_sql(cli_ctx *c, int argc, char **argv);
/* cmd_kafka.c, built with the Kafka bridge (KLEVDB_KAFKA). */
int cli_cmd_kafka(cli_ctx *c, int argc, char **argv);
extern const char cli_kafka_help[];

#endif
