/*
** cmd_kafka.c - `klevdb kafka export|import`: the Kafka bridge from the
** command line, with a signal thread for --follow, a progress line on a
** terminal and JSON status lines.
*/
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "klevdb_kafka.h"

const char cli_kafka_help[] =
    "usage: klevdb kafka export DIR --brokers HOST:PORT[,...] --topic T [options]\n"
    "       klevdb kafka import DIR --brokers HOST:PORT[,...] --topic T [options]\n"
    "\n"
    "export sends the store's messages to one Kafka partition, with an\n"
    "idempotent producer (acks=all). Key, value and time become the record's\n"
    "key, value and timestamp (ms); an absent key or value is null. Headers\n"
    "klevdb.offset and klevdb.time_us (decimal) keep the offset and the exact\n"
    "time, klevdb.store the store's id (the file kafka-store-id in DIR). It\n"
    "resumes after the offset of the partition's last record, and refuses a\n"
    "partition that ends with another store's record. A broker down is waited\n"
    "for; a record is never dropped.\n"
    "\n"
    "import publishes the partition's records into the store DIR (created if\n"
    "missing), times from klevdb.time_us, else the timestamp. The file\n"
    "kafka-import-position in DIR says where it resumes.\n"
    "\n"
    "Without --follow both end at the end (of the store, of the partition);\n"
    "with it they go on until SIGINT or SIGTERM (a second one stops at once,\n"
    "leaving records for the next run).\n"
    "\n"
    "options:\n"
    "  --brokers LIST       bootstrap servers\n"
    "  --topic T            the topic (it must exist)\n"
    "  --partition P        the partition (default 0)\n"
    "  --follow             go on with new messages / records\n"
    "  --force              export: append after records no klevdb export wrote\n"
    "  --timeout SECONDS    brokers must answer at start within it (default 10)\n"
    "  --max-message-bytes N  export: largest record (default 1000000)\n"
    "  -X NAME=VALUE        a librdkafka setting (repeatable)\n"
    "  --progress           a progress line on stderr when it is a terminal\n"
    "  --status-json        a JSON status line on stdout every second and at the end\n"
    "  --quiet              no summary on stderr\n"
    "  --help               this text\n"
    "\n"
    "exit codes: 1 no such topic or partition, 2 usage, 4 the store is locked\n"
    "(import), 5 anything else (brokers unreachable, another store's partition,\n"
    "a record too big, a delivery refused).\n";

typedef struct kctx {
  const cli_ctx *c;
  bool progress, json, drawn;
  const char *verb;
} kctx;

static void on_status(void *arg, const klevdb_kafka_status *st) {
  kctx *k = arg;
  if (k->json) {
    printf("{\"done\":%" PRId64 ",\"position\":%" PRId64 ",\"end\":%" PRId64
           ",\"lag\":%" PRId64 ",\"in_flight\":%" PRId64 ",\"broker_error\":",
           st->done, st->position, st->end, st->lag, st->in_flight);
    if (st->broker_error) cli_json_str(stdout, (const uint8_t *)st->broker_error,
                                       strlen(st->broker_error));
    else fputs("null", stdout);
    printf(",\"final\":%s}\n", st->final ? "true" : "false");
    fflush(stdout);
  }
  if (k->progress) {
    fprintf(stderr, "\r%s %" PRId64 ", lag %" PRId64 ", in flight %" PRId64 "%s%.60s\033[K",
            k->verb, st->done, st->lag, st->in_flight, st->broker_error ? ", broker: " : "",
            st->broker_error ? st->broker_error : "");
    if (st->final) fputc('\n', stderr);
    k->drawn = !st->final;
  }
}

/* SIGINT/SIGTERM: the first asks for a clean end, the second for an end
** at once. A thread takes them with sigwait; no handler runs. */
typedef struct watcher {
  pthread_t tid;
  sigset_t set;
  int stop;   /* atomic, read by the bridge */
  int done;   /* atomic */
} watcher;

static void *watch(void *arg) {
  watcher *w = arg;
  for (;;) {
    int sig;
    sigwait(&w->set, &sig);
    if (__atomic_load_n(&w->done, __ATOMIC_SEQ_CST)) return NULL;
    int s = __atomic_load_n(&w->stop, __ATOMIC_SEQ_CST);
    __atomic_store_n(&w->stop, s < 2 ? s + 1 : 2, __ATOMIC_SEQ_CST);
  }
}

static int exit_code(klevdb_kafka_err rc, const klevdb_kafka_error *err) {
  switch (rc) {
  case KLEVDB_KAFKA_OK: return CLI_OK;
  case KLEVDB_KAFKA_ENOTFOUND: return CLI_NOTFOUND;
  case KLEVDB_KAFKA_EINVAL: return CLI_USAGE;
  case KLEVDB_KAFKA_ELOCKED: return CLI_LOCKED;
  case KLEVDB_KAFKA_ESTORE: return cli_exit_code(err->store_code);
  default: return CLI_FAIL;
  }
}

int cli_cmd_kafka(cli_ctx *c, int argc, char **argv) {
  static const struct option longopts[] = {
      {"brokers", required_argument, 0, 'b'}, {"topic", required_argument, 0, 't'},
      {"partition", required_argument, 0, 'p'}, {"follow", no_argument, 0, 'f'},
      {"force", no_argument, 0, 'F'}, {"timeout", required_argument, 0, 'T'},
      {"max-message-bytes", required_argument, 0, 'M'},
      {"progress", no_argument, 0, 'P'}, {"status-json", no_argument, 0, 'S'},
      CLI_COMMON_OPTIONS};
  if (argc < 2 || argv[1][0] == '-') {
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
      fputs(c->help, stdout);
      return fflush(stdout) == 0 ? CLI_OK : CLI_FAIL;
    }
    return cli_usage(c, "give export or import");
  }
  bool exporting = !strcmp(argv[1], "export");
  if (!exporting && strcmp(argv[1], "import"))
    return cli_usage(c, "unknown kafka command '%s' (export or import)", argv[1]);
  c->cmd = exporting ? "kafka export" : "kafka import";

  klevdb_kafka_options o = {0};
  kctx k = {c, false, false, false, exporting ? "exported" : "imported"};
  const char **conf = calloc((size_t)argc + 1, sizeof(*conf));
  int nconf = 0, ch, rc;
  int64_t v;
  if (!conf) return cli_error(c, CLI_FAIL, "out of memory");
  while ((ch = cli_getopt(c, argc - 1, argv + 1, "X:", longopts)) != -1) {
    switch (ch) {
    case 'b': o.brokers = optarg; break;
    case 't': o.topic = optarg; break;
    case 'p':
      if ((rc = cli_parse_count(c, "--partition", optarg, &v))) goto out;
      if (v > INT32_MAX) { rc = cli_usage(c, "--partition: %s is too big", optarg); goto out; }
      o.partition = (int32_t)v;
      break;
    case 'f': o.follow = 1; break;
    case 'F': o.force = 1; break;
    case 'T':
      if ((rc = cli_parse_count(c, "--timeout", optarg, &v))) goto out;
      o.timeout_ms = v > INT32_MAX / 1000 ? INT32_MAX : (v ? v * 1000 : 1);
      break;
    case 'M':
      if ((rc = cli_parse_size(c, "--max-message-bytes", optarg, &o.max_message_bytes))) goto out;
      break;
    case 'X': conf[nconf++] = optarg; break;
    case 'P': k.progress = true; break;
    case 'S': k.json = true; break;
    default: rc = cli_usage(c, "unknown option"); goto out;
    }
  }
  const char *dir;
  optind++;   /* the operands of argv, not of argv + 1 */
  if ((rc = cli_operand_dir(c, argc, argv, &dir, NULL))) goto out;
  if (!o.brokers || !o.topic) {
    rc = cli_usage(c, "--brokers and --topic are needed");
    goto out;
  }
  if (!exporting && o.force) {
    rc = cli_usage(c, "--force is for export");
    goto out;
  }
  k.progress = k.progress && isatty(STDERR_FILENO) && !c->quiet;
  o.conf = conf;
  o.status = on_status;
  o.status_arg = &k;

  /* Blocked before librdkafka starts its threads, which inherit the mask,
  ** so that only the watcher takes the signals. */
  watcher w;
  memset(&w, 0, sizeof(w));
  sigemptyset(&w.set);
  sigaddset(&w.set, SIGINT);
  sigaddset(&w.set, SIGTERM);
  int e = pthread_sigmask(SIG_BLOCK, &w.set, NULL);
  if (!e) e = pthread_create(&w.tid, NULL, watch, &w);
  if (e) {
    rc = cli_error(c, CLI_FAIL, "start the signal thread: %s", strerror(e));
    goto out;
  }
  o.stop = &w.stop;

  klevdb_kafka_error err;
  klevdb_kafka_err krc;
  int64_t n = 0;
  if (exporting) {
    klevdb *db = NULL;
    klevdb_options so = {0};
    so.readonly = 1;
    rc = cli_need_dir(c, dir);
    if (!rc) {
      klevdb_dir_indexes(dir, &so.key_index, &so.time_index);
      rc = cli_open(dir, &so, &db);
    }
    krc = rc ? KLEVDB_KAFKA_OK : klevdb_kafka_export(db, dir, &o, &n, &err);
    klevdb_close(db);
  } else {
    krc = klevdb_kafka_import(dir, &o, &n, &err);
  }
  __atomic_store_n(&w.done, 1, __ATOMIC_SEQ_CST);
  pthread_kill(w.tid, SIGTERM);
  pthread_join(w.tid, NULL);
  if (k.drawn) fputc('\n', stderr);
  if (!rc && krc) {
    fprintf(stderr, "%s\n", err.msg);
    if (k.json) {
      printf("{\"error\":\"%s\",\"message\":", klevdb_kafka_errname(krc));
      cli_json_str(stdout, (const uint8_t *)err.msg, strlen(err.msg));
      printf(",\"done\":%" PRId64 "}\n", n);
    }
    rc = exit_code(krc, &err);
  }
  if (!rc && !c->quiet)
    fprintf(stderr, "%s %" PRId64 " records %s %s/%d\n", k.verb, n, exporting ? "to" : "from",
            o.topic, (int)o.partition);
out:
  free(conf);
  return rc;
}
