/*
** main.c - the klevdb tool's entry: the command table and help texts,
** global and per-command option parsing, argument parsers shared by the
** commands, and the mapping of library errors to exit codes.
*/
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli.h"
#include "cli_config.h"

#define COMMON_HELP                                                            \
  "  --json        JSON output\n"                                              \
  "  --quiet       no progress bar or summary on stderr\n"                     \
  "  --help        this text\n"

static const char HELP[] =
    "usage: klevdb [--json] [--quiet] COMMAND DIR [options]\n"
    "       klevdb COMMAND --help\n"
    "       klevdb --help | --version\n"
    "\n"
    "Reads and writes a klevdb store: one Kafka-style partition kept in the\n"
    "directory DIR (files compatible with Go klevdb).\n"
    "\n"
    "commands:\n"
    "  publish   append messages read from stdin (one per line, or JSON lines)\n"
    "  consume   print messages from an offset, up to a count, or by key\n"
    "  dump      print every message (consume of everything)\n"
    "  tail      print the last messages; -f follows new ones\n"
    "  get       print one message by offset, --key or --time\n"
    "  stat      segments, messages, bytes, first/last offset and time\n"
    "  check     verify every record and the last segment's index\n"
    "  recover   cut a torn or damaged tail off the last segment\n"
    "  backup    copy the store into another directory\n"
    "  migrate   rewrite the segments in format v1 or v2\n"
    "  gc        finish interrupted writes, remove temp files of crashed writers\n"
    "  settle    show, or decide by hand, a SQL transaction in doubt in the store\n"
    "  trim      remove the oldest messages (--count, --size, --age, --before-offset)\n"
    "  compact   remove superseded messages (--updates) or tombstones (--deletes)\n"
    "  sql       open the sqlite3 shell with the store as a table\n"
    "  kafka     export the store to a Kafka partition, or import one (if built)\n"
    "\n"
    "options of every command (before or after it):\n"
    "  --json        JSON output: one object per line (publish: JSON lines input too)\n"
    "  --quiet       no progress bar or summary on stderr\n"
    "  --help        the command's options\n"
    "\n"
    "Output is text (OFFSET  TIME  KEY  VALUE, '-' for an absent key or value,\n"
    "bytes that do not print as \\xNN) unless --json. Times are ISO-8601 in UTC\n"
    "(2024-05-01, 2024-05-01T09:00:00.5Z, 2024-05-01T11:00:00+02:00) or integer\n"
    "microseconds since the epoch. Read commands take no lock and may run while\n"
    "another process writes the store.\n"
    "\n"
    "exit codes:\n"
    "  0  ok\n"
    "  1  not found: no such message, offset, key, time or store directory, or\n"
    "     a directory that is not a store (files, but no segments and no .lock)\n"
    "  2  usage: bad option or argument, bad input line, an index the store lacks\n"
    "  3  corrupt store: damaged log or index files\n"
    "  4  locked: another process writes the store\n"
    "  5  any other failure: I/O, permissions, disk full, out of memory\n";

static const char HELP_PUBLISH[] =
    "usage: klevdb publish DIR [options] < input\n"
    "\n"
    "Appends the lines of stdin as messages, creating DIR if needed. Each line\n"
    "is one value (no key, time now) unless the input is JSON lines:\n"
    "  {\"key\": \"user:1\", \"value\": \"click\", \"time\": \"2024-05-01T09:00:00Z\"}\n"
    "where every field is optional; key and value are strings, null (absent)\n"
    "or {\"base64\": \"...\"}; time is ISO-8601 or integer microseconds (absent:\n"
    "now). The output of `klevdb dump --json` is valid input. Lines are\n"
    "published in batches (up to 1000 lines or 1 MiB, sooner when the input\n"
    "pauses); on a bad line the lines before it stay published.\n"
    "\n"
    "options:\n"
    "  --key K            the key of every message without one\n"
    "  --input lines|json the input format (default: lines; json with --json)\n"
    "  --rollover BYTES   start a new segment past this size (default 1M)\n"
    "  --sync             fsync every batch\n"
    "  --no-key-index     a new store without the index by key\n"
    "  --no-time-index    a new store without the index by time\n"
    "  --json             JSON lines input, and the summary as JSON on stdout\n"
    "  --quiet            no summary on stderr\n"
    "  --help             this text\n"
    "\n"
    "Prints \"published N messages, offsets A..B\" on stderr.\n";

static const char HELP_CONSUME[] =
    "usage: klevdb consume DIR [--from OFFSET] [--count N] [--key K]\n"
    "       klevdb dump DIR [same options]\n"
    "\n"
    "Prints the messages from OFFSET on (default: the oldest) as they are when\n"
    "the command starts.\n"
    "\n"
    "options:\n"
    "  --from OFFSET  the first offset: a number, oldest, or newest (the\n"
    "                 newest message)\n"
    "  --count N      at most N messages (default: all)\n"
    "  --key K        only the messages with this key (needs the key index)\n" COMMON_HELP;

static const char HELP_TAIL[] =
    "usage: klevdb tail [-n N] [-f] DIR\n"
    "\n"
    "Prints the last N messages; with -f goes on printing new ones as other\n"
    "processes publish them, until interrupted (SIGINT, SIGTERM) or its\n"
    "output is closed.\n"
    "\n"
    "options:\n"
    "  -n, --lines N   how many (default 10)\n"
    "  -f, --follow    follow new messages\n" COMMON_HELP;

static const char HELP_GET[] =
    "usage: klevdb get DIR OFFSET\n"
    "       klevdb get DIR --key K\n"
    "       klevdb get DIR --time TIME\n"
    "\n"
    "Prints one message: the one at OFFSET (a number, oldest or newest), the\n"
    "newest one with key K, or the first one at or after TIME (ISO-8601 or\n"
    "integer microseconds). Exit code 1 when there is none.\n"
    "\n"
    "options:\n"
    "  --key K       by key (needs the key index)\n"
    "  --time TIME   by time (needs the time index)\n" COMMON_HELP;

static const char HELP_STAT[] =
    "usage: klevdb stat DIR\n"
    "\n"
    "Prints segments, messages, bytes, the first and last offset and time,\n"
    "the next offset, the segments' formats and the indexes.\n"
    "\n"
    "options:\n" COMMON_HELP;

static const char HELP_CHECK[] =
    "usage: klevdb check DIR\n"
    "\n"
    "Reads every record of every segment (checksums, offsets, the indexes)\n"
    "and compares the last segment's index with its log, holding a shared\n"
    "lock meanwhile as Go's readers do; while a writer has the store open that\n"
    "comparison is skipped (its last segment is being written). Prints \"ok\",\n"
    "or the damage with exit code 3 (then see `klevdb recover`).\n"
    "\n"
    "options:\n" COMMON_HELP;

static const char HELP_RECOVER[] =
    "usage: klevdb recover DIR\n"
    "\n"
    "Cuts the last segment back to its last good record and repairs its\n"
    "index, as a writer does after a crash. Prints what was cut. Takes the\n"
    "store's lock (exit code 4 while another process writes it).\n"
    "\n"
    "options:\n" COMMON_HELP;

static const char HELP_BACKUP[] =
    "usage: klevdb backup DIR DEST\n"
    "\n"
    "Copies the store's segments into DEST, a new or empty directory (a store\n"
    "or any other folder with files in it is refused: two stores are never\n"
    "mixed), locked meanwhile so that no writer starts there. Takes no lock on\n"
    "DIR: the copy of a store another process writes ends at its last\n"
    "complete record.\n"
    "\n"
    "options:\n" COMMON_HELP;

static const char HELP_MIGRATE[] =
    "usage: klevdb migrate DIR --to v1|v2\n"
    "\n"
    "Rewrites every segment not yet in the given format (v1: readable by old\n"
    "Go klevdb versions). Takes the store's lock.\n"
    "\n"
    "options:\n"
    "  --to v1|v2    the format\n" COMMON_HELP;

static const char HELP_SETTLE[] =
    "usage: klevdb settle DIR [--commit | --abort]\n"
    "\n"
    "A SQL table prepares its transaction's messages and deletes in the store\n"
    "before the database commits, and publishes them after: a crash in between\n"
    "leaves the batch in doubt, and the store refuses other writes until the\n"
    "table's next use settles it from its database. Without options, shows the\n"
    "batch and the transaction (database file | table | id); exit 1 if none.\n"
    "When that database is gone for good, decide by hand: --commit publishes\n"
    "the batch (after any messages another writer added meanwhile), --abort\n"
    "drops it. Deciding against what the database recorded makes the two\n"
    "disagree: use it only when the table can no longer settle the batch.\n"
    "\n"
    "options:\n"
    "  --commit      publish the batch\n"
    "  --abort       drop the batch\n" COMMON_HELP;

static const char HELP_GC[] =
    "usage: klevdb gc DIR\n"
    "\n"
    "Opens the store for writing, which finishes or undoes a write or delete\n"
    "a crashed writer left half done and removes its temp files, and prints\n"
    "the files that went.\n"
    "\n"
    "options:\n" COMMON_HELP;

static const char HELP_TRIM[] =
    "usage: klevdb trim DIR --count N | --size BYTES | --age DURATION | --before-offset N\n"
    "\n"
    "Removes the oldest messages; prints how many and their bytes.\n"
    "\n"
    "options (exactly one):\n"
    "  --count N           keep the newest N messages\n"
    "  --size BYTES        keep the store under BYTES (suffixes K, M, G)\n"
    "  --age DURATION      remove messages older than DURATION (7d, 12h, 30m, 90s)\n"
    "  --before-offset N   remove the offsets before N\n" COMMON_HELP;

static const char HELP_COMPACT[] =
    "usage: klevdb compact DIR --updates | --deletes [--before TIME]\n"
    "\n"
    "--updates removes every message that a newer one with the same key\n"
    "supersedes; --deletes removes tombstones (messages without a value) that\n"
    "are the oldest message of their key. Both may be given (updates first).\n"
    "Only messages at or before TIME count (default: now).\n"
    "\n"
    "options:\n"
    "  --updates        superseded messages\n"
    "  --deletes        tombstones\n"
    "  --before TIME    ISO-8601, integer microseconds, or a DURATION ago (7d)\n" COMMON_HELP;

static const char HELP_SQL[] =
    "usage: klevdb sql DIR [--table NAME] [--readonly] [-- SQLITE3-ARGS...]\n"
    "\n"
    "Runs the sqlite3 shell (from PATH) on an in-memory database with the\n"
    "klevdb extension loaded and the store as the table NAME (default\n"
    "\"store\"). Arguments after -- go to sqlite3, e.g.\n"
    "  klevdb sql DIR -- \"SELECT count(*) FROM store\"\n"
    "The extension is $KLEVDB_EXTENSION if set, else the one installed with\n"
    "this tool.\n"
    "\n"
    "options:\n"
    "  --table NAME   the table's name\n"
    "  --readonly     attach the store read-only\n"
    "  --help         this text\n";

typedef struct cli_command {
  const char *name;
  int (*run)(cli_ctx *c, int argc, char **argv);
  const char *help;
} cli_command;

static const cli_command COMMANDS[] = {
    {"publish", cli_cmd_publish, HELP_PUBLISH},
    {"consume", cli_cmd_consume, HELP_CONSUME},
    {"dump", cli_cmd_consume, HELP_CONSUME},
    {"tail", cli_cmd_tail, HELP_TAIL},
    {"get", cli_cmd_get, HELP_GET},
    {"stat", cli_cmd_stat, HELP_STAT},
    {"check", cli_cmd_check, HELP_CHECK},
    {"recover", cli_cmd_recover, HELP_RECOVER},
    {"backup", cli_cmd_backup, HELP_BACKUP},
    {"migrate", cli_cmd_migrate, HELP_MIGRATE},
    {"gc", cli_cmd_gc, HELP_GC},
    {"settle", cli_cmd_settle, HELP_SETTLE},
    {"trim", cli_cmd_trim, HELP_TRIM},
    {"compact", cli_cmd_compact, HELP_COMPACT},
    {"sql", cli_cmd_sql, HELP_SQL},
#ifdef KLEVDB_KAFKA
    {"kafka", cli_cmd_kafka, cli_kafka_help},
#endif
};

/* ---- messages ---- */

static void vmessage(const cli_ctx *c, const char *fmt, va_list ap) {
  fputs("klevdb: ", stderr);
  if (c && c->cmd) fprintf(stderr, "%s: ", c->cmd);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
}

int cli_error(const cli_ctx *c, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vmessage(c, fmt, ap);
  va_end(ap);
  return code;
}

int cli_exit_code(klevdb_err rc) {
  switch (rc) {
  case KLEVDB_OK: return CLI_OK;
  case KLEVDB_ENOTFOUND:
  case KLEVDB_EINVALID_OFFSET: return CLI_NOTFOUND;
  /* The library says EINVAL to arguments the user gave us. */
  case KLEVDB_ENOINDEX:
  case KLEVDB_EINVAL:
  case KLEVDB_ETOOBIG: return CLI_USAGE;
  case KLEVDB_ECORRUPT_LOG:
  case KLEVDB_ECORRUPT_INDEX: return CLI_CORRUPT;
  case KLEVDB_ELOCKED: return CLI_LOCKED;
  default: return CLI_FAIL;
  }
}

int cli_core_error(klevdb_err rc, const char *msg) {
  /* Library messages carry the prefix already; never print it twice. */
  const char *prefix = strncmp(msg, "klevdb: ", 8) == 0 ? "" : "klevdb: ";
  fprintf(stderr, "%s%s\n", prefix, msg);
  return cli_exit_code(rc);
}

/* The usage lines of a help text: up to its first empty line. */
static void print_usage_lines(const char *help) {
  const char *end = strstr(help, "\n\n");
  fprintf(stderr, "%.*s\n", end ? (int)(end - help) : (int)strlen(help), help);
}

int cli_usage(const cli_ctx *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vmessage(c, fmt, ap);
  va_end(ap);
  if (c && c->help) {
    print_usage_lines(c->help);
    fprintf(stderr, "run 'klevdb %s --help' for the options\n", c->cmd);
  } else {
    print_usage_lines(HELP);
    fputs("run 'klevdb --help' for the commands\n", stderr);
  }
  return CLI_USAGE;
}

/* ---- options ---- */

int cli_getopt(cli_ctx *c, int argc, char **argv, const char *shortopts,
               const struct option *longopts) {
  char spec[64];
  /* ':' first: a missing value is told apart from an unknown option. */
  snprintf(spec, sizeof(spec), ":%sh", shortopts);
  opterr = 0;
  for (;;) {
    int ch = getopt_long(argc, argv, spec, longopts, NULL);
    switch (ch) {
    case 'J': c->json = 1; break;
    case 'q': c->quiet = 1; break;
    case 'h':
      fputs(c->help, stdout);
      exit(fflush(stdout) == 0 ? CLI_OK : CLI_FAIL);
    case ':': exit(cli_usage(c, "option %s needs a value", argv[optind - 1]));
    case '?':
      if (optopt) exit(cli_usage(c, "unknown option -%c", optopt));
      exit(cli_usage(c, "unknown option %s", argv[optind - 1]));
    default: return ch;
    }
  }
}

int cli_operand_dir(const cli_ctx *c, int argc, char **argv, const char **dir,
                    int *more) {
  if (optind >= argc) return cli_usage(c, "no store directory given");
  *dir = argv[optind];
  if (!**dir) return cli_usage(c, "the store directory is an empty name");
  if (more) *more = optind + 1;
  else if (optind + 1 < argc) return cli_usage(c, "unexpected argument '%s'", argv[optind + 1]);
  return CLI_OK;
}

/* Decimal digits only, no sign: counts and offsets are never negative. */
static bool parse_u63(const char *s, const char **end, int64_t *out) {
  int64_t v = 0;
  if (*s < '0' || *s > '9') return false;
  for (; *s >= '0' && *s <= '9'; s++) {
    if (v > (INT64_MAX - (*s - '0')) / 10) return false;
    v = v * 10 + (*s - '0');
  }
  *end = s;
  *out = v;
  return true;
}

int cli_parse_count(const cli_ctx *c, const char *opt, const char *s, int64_t *out) {
  const char *end;
  if (!parse_u63(s, &end, out) || *end)
    return cli_usage(c, "%s: '%s' is not a number (0 or more)", opt, s);
  return CLI_OK;
}

int cli_parse_size(const cli_ctx *c, const char *opt, const char *s, int64_t *out) {
  /* The library's parser, so that sizes read as in SQL ('64 KB'). */
  int r = klevdb_parse_size(s, strlen(s), out);
  if (r == -2) return cli_usage(c, "%s: '%s' is too big", opt, s);
  if (r) return cli_usage(c, "%s: '%s' is not a size (bytes, or a number with K, M, G)", opt, s);
  return CLI_OK;
}

int cli_parse_offset(const cli_ctx *c, const char *opt, const char *s, int64_t *out) {
  const char *end;
  if (!strcmp(s, "oldest")) *out = KLEVDB_OFFSET_OLDEST;
  else if (!strcmp(s, "newest")) *out = KLEVDB_OFFSET_NEWEST;
  else if (!parse_u63(s, &end, out) || *end)
    return cli_usage(c, "%s: '%s' is not an offset (a number, oldest or newest)", opt, s);
  return CLI_OK;
}

int cli_parse_time(const cli_ctx *c, const char *opt, const char *s, int64_t *out) {
  int r = cli_time_parse(s, out);
  if (r == -2)
    return cli_usage(c, "%s: '%s' is out of range (no such month, day, hour, "
                        "minute, second or zone)", opt, s);
  if (r)
    return cli_usage(c, "%s: '%s' is not ISO-8601 (YYYY-MM-DD[THH:MM[:SS[.frac]]]"
                        "[Z|+HH:MM]) or integer microseconds", opt, s);
  return CLI_OK;
}

/* ---- the store ---- */

int cli_need_dir(const cli_ctx *c, const char *dir) {
  struct stat st;
  if (stat(dir, &st) < 0) {
    if (errno == ENOENT) return cli_error(c, CLI_NOTFOUND, "%s: no such store directory", dir);
    return cli_error(c, CLI_FAIL, "%s: %s", dir, strerror(errno));
  }
  if (!S_ISDIR(st.st_mode)) return cli_error(c, CLI_FAIL, "%s: not a directory", dir);
  return cli_need_store(c, dir);
}

int cli_need_store(const cli_ctx *c, const char *dir) {
  int64_t *bases;
  size_t n = 0;
  char **names;
  /* A directory that cannot be listed is left to the open to report. */
  if (cli_seg_list(dir, &bases, &n) < 0) return CLI_OK;
  free(bases);
  if (n > 0) return CLI_OK;
  if (cli_dir_names(dir, &names, &n) < 0) return CLI_OK;
  bool store = n == 0;
  for (size_t i = 0; i < n && !store; i++) store = !strcmp(names[i], ".lock");
  cli_dir_names_free(names, n);
  if (store) return CLI_OK;
  return cli_error(c, CLI_NOTFOUND, "%s is not a klevdb store (no segment files and no .lock; "
                   "an empty directory is an empty store)", dir);
}

int cli_open(const char *dir, const klevdb_options *o, klevdb **db) {
  klevdb_error err;
  klevdb_err rc = klevdb_open(dir, o, db, &err);
  if (rc) return cli_core_error(rc, err.msg);
  return CLI_OK;
}

/* ---- main ---- */

static const cli_command *find_command(const char *name) {
  for (size_t i = 0; i < sizeof(COMMANDS) / sizeof(COMMANDS[0]); i++)
    if (!strcmp(COMMANDS[i].name, name)) return &COMMANDS[i];
  return NULL;
}

int main(int argc, char **argv) {
  cli_ctx c = {0};
  /* A closed stdout shows up as EPIPE where it is written, which ends the
  ** command quietly (`klevdb dump DIR | head`). */
  signal(SIGPIPE, SIG_IGN);

  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--json")) {
      c.json = 1;
    } else if (!strcmp(a, "--quiet")) {
      c.quiet = 1;
    } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(HELP, stdout);
      return fflush(stdout) == 0 ? CLI_OK : CLI_FAIL;
    } else if (!strcmp(a, "--version")) {
      printf("klevdb %s\n", klevdb_version());
      return fflush(stdout) == 0 ? CLI_OK : CLI_FAIL;
    } else {
      return cli_usage(NULL, "unknown option %s", a);
    }
  }
  if (i == argc) return cli_usage(NULL, "no command given");
  const cli_command *cmd = find_command(argv[i]);
  if (!cmd) return cli_usage(NULL, "unknown command '%s'", argv[i]);
  c.cmd = cmd->name;
  c.help = cmd->help;
  int rc = cmd->run(&c, argc - i, argv + i);
  if (rc == CLI_STOP) rc = CLI_OK;
  if (rc == CLI_OK && fflush(stdout) != 0 && errno != EPIPE)
    rc = cli_error(&c, CLI_FAIL, "write to stdout: %s", strerror(errno));
  return rc;
}
