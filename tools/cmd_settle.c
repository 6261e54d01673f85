/*
** cmd_settle.c - `klevdb settle`: the SQL transaction whose batch is in
** doubt in a store (prepared in the store, its outcome known only to its
** database), and a decision by hand for when that database is gone.
*/
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* The transaction id with its field separators shown as " | ". */
static void kv_txid(cli_kv *k, const char *txid) {
  size_t n = strlen(txid), at = 0;
  char *t = malloc(3 * n + 1);
  if (!t) return;
  for (size_t i = 0; i < n; i++) {
    if (txid[i] == '\x1f') {
      memcpy(t + at, " | ", 3);
      at += 3;
    } else {
      t[at++] = txid[i];
    }
  }
  t[at] = 0;
  cli_kv_str(k, "transaction", t);
  free(t);
}

void cli_kv_doubt(cli_kv *k, klevdb *db) {
  klevdb_prepared *p = NULL;
  if (klevdb_prepared_find(db, &p) != KLEVDB_OK) {
    cli_kv_str(k, "in_doubt", "no");
    return;
  }
  klevdb_prepared_info in;
  klevdb_prepared_get_info(p, &in);
  char text[160], json[160];
  snprintf(text, sizeof(text), "%zu message%s at offset %" PRId64 ", %zu delete range%s",
           in.count, in.count == 1 ? "" : "s", in.base, in.nranges, in.nranges == 1 ? "" : "s");
  snprintf(json, sizeof(json), "{\"messages\":%zu,\"offset\":%" PRId64 ",\"delete_ranges\":%zu}",
           in.count, in.base, in.nranges);
  cli_kv_raw(k, "in_doubt", text, json);
  kv_txid(k, in.txid);
  klevdb_prepared_close(p);
}

int cli_cmd_settle(cli_ctx *c, int argc, char **argv) {
  static const struct option longopts[] = {
      {"commit", no_argument, 0, 'c'}, {"abort", no_argument, 0, 'a'}, CLI_COMMON_OPTIONS};
  int ch, decide = 0;
  while ((ch = cli_getopt(c, argc, argv, "", longopts)) != -1) {
    if (ch != 'c' && ch != 'a') return cli_usage(c, "unknown option");
    if (decide && decide != ch) return cli_usage(c, "--commit and --abort exclude each other");
    decide = ch;
  }
  const char *dir;
  int rc = cli_operand_dir(c, argc, argv, &dir, NULL);
  if (rc || (rc = cli_need_store(c, dir))) return rc;
  klevdb_options o;
  memset(&o, 0, sizeof(o));
  o.readonly = !decide;
  klevdb_dir_indexes(dir, &o.key_index, &o.time_index);
  klevdb *db;
  if ((rc = cli_open(dir, &o, &db))) return rc;
  klevdb_prepared *p = NULL;
  klevdb_err krc = klevdb_prepared_find(db, &p);
  if (krc) {
    rc = krc == KLEVDB_ENOTFOUND ? cli_error(c, CLI_NOTFOUND, "%s: no transaction is in doubt", dir)
                                 : cli_core_error(krc, klevdb_errmsg(db));
    klevdb_close(db);
    return rc;
  }
  cli_kv k;
  cli_kv_begin(&k, c);
  cli_kv_doubt(&k, db);
  if (decide) {
    int64_t base = 0, next = 0;
    krc = klevdb_writer_lock(db, 0);
    if (!krc) {
      krc = decide == 'c' ? klevdb_prepared_commit(p, &base, &next) : klevdb_prepared_abort(p);
      klevdb_writer_unlock(db);
    } else {
      klevdb_prepared_close(p);
    }
    if (!krc) {
      cli_kv_str(&k, "decided", decide == 'c' ? "committed" : "aborted");
      if (decide == 'c') cli_kv_int(&k, "published_at", base);
    }
  } else {
    klevdb_prepared_close(p);
  }
  cli_kv_end(&k);
  rc = krc ? cli_core_error(krc, klevdb_errmsg(db)) : cli_out_flush();
  klevdb_close(db);
  return rc;
}
