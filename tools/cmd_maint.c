/*
** cmd_maint.c - maintenance of a store's files: recover, backup, migrate
** and gc. Those that rewrite files hold the store's writer lock, so that
** they never run under a live writer.
*/
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static int dir_only(cli_ctx *c, int argc, char **argv, const char **dir) {
  static const struct option longopts[] = {CLI_COMMON_OPTIONS};
  if (cli_getopt(c, argc, argv, "", longopts) != -1) return cli_usage(c, "unknown option");
  return cli_operand_dir(c, argc, argv, dir, NULL);
}

/* The options the store's files were written with. */
static void store_options(const char *dir, klevdb_options *o) {
  memset(o, 0, sizeof(*o));
  klevdb_dir_indexes(dir, &o->key_index, &o->time_index);
}

/* Messages and next offset as a reader sees them now. */
static void kv_contents(cli_kv *k, const char *dir) {
  klevdb_options o;
  store_options(dir, &o);
  o.readonly = 1;
  klevdb *db;
  klevdb_stat st;
  int64_t next;
  if (klevdb_open(dir, &o, &db, NULL) != KLEVDB_OK) return;
  if (klevdb_stat_get(db, &st) == KLEVDB_OK && klevdb_next_offset(db, &next) == KLEVDB_OK) {
    cli_kv_int(k, "messages", st.messages);
    cli_kv_int(k, "next_offset", next);
  }
  klevdb_close(db);
}

/* ---- recover ---- */

typedef struct filestate {
  bool exists;
  struct stat st;
} filestate;

static filestate file_state(const char *path) {
  filestate f;
  f.exists = stat(path, &f.st) == 0;
  return f;
}

static const char *index_outcome(const filestate *before, const filestate *after) {
  if (!before->exists) return "missing (rebuilt on use)";
  if (!after->exists) return "removed (rebuilt on use)";
  if (before->st.st_ino != after->st.st_ino || before->st.st_size != after->st.st_size ||
      before->st.st_mtim.tv_sec != after->st.st_mtim.tv_sec ||
      before->st.st_mtim.tv_nsec != after->st.st_mtim.tv_nsec)
    return "rewritten";
  return "unchanged";
}

static int recover_locked(cli_ctx *c, const char *dir) {
  int64_t *bases;
  size_t n;
  if (cli_seg_list(dir, &bases, &n) < 0)
    return cli_error(c, CLI_FAIL, "%s: %s", dir, strerror(errno));
  if (n == 0) {
    free(bases);
    cli_kv k;
    cli_kv_begin(&k, c);
    cli_kv_str(&k, "result", "nothing to recover (no segments)");
    cli_kv_end(&k);
    return cli_out_flush();
  }
  int64_t base = bases[n - 1];
  free(bases);
  char lpath[4200], ipath[4200], name[32];
  cli_seg_path(lpath, sizeof(lpath), dir, base, ".log");
  cli_seg_path(ipath, sizeof(ipath), dir, base, ".index");
  snprintf(name, sizeof(name), "%020" PRId64, base);
  filestate log0 = file_state(lpath), idx0 = file_state(ipath);

  klevdb_options o;
  store_options(dir, &o);
  cli_progress bar;
  cli_progress_start(&bar, c, "recover");
  cli_progress_attach(&bar, &o);
  klevdb_error err;
  klevdb_err krc = klevdb_dir_recover(dir, &o, &err);
  cli_progress_end(&bar);
  if (krc) return cli_core_error(krc, err.msg);

  filestate log1 = file_state(lpath), idx1 = file_state(ipath);
  int64_t cut = log0.exists && log1.exists ? (int64_t)(log0.st.st_size - log1.st.st_size) : 0;
  const char *index = index_outcome(&idx0, &idx1);
  bool repaired = cut > 0 || !strcmp(index, "rewritten") || !strncmp(index, "removed", 7);
  cli_kv k;
  cli_kv_begin(&k, c);
  cli_kv_str(&k, "result", repaired ? "repaired" : "nothing to repair");
  cli_kv_str(&k, "segment", name);
  cli_kv_int(&k, "cut_bytes", cut);
  cli_kv_int(&k, "log_bytes", log1.exists ? (int64_t)log1.st.st_size : 0);
  cli_kv_str(&k, "index", index);
  kv_contents(&k, dir);
  cli_kv_end(&k);
  return cli_out_flush();
}

int cli_cmd_recover(cli_ctx *c, int argc, char **argv) {
  const char *dir;
  int rc = dir_only(c, argc, argv, &dir), lock;
  if (rc || (rc = cli_need_dir(c, dir)) || (rc = cli_lock_dir(c, dir, &lock))) return rc;
  rc = recover_locked(c, dir);
  cli_unlock_dir(lock);
  return rc;
}

/* ---- backup ---- */

int cli_cmd_backup(cli_ctx *c, int argc, char **argv) {
  static const struct option longopts[] = {CLI_COMMON_OPTIONS};
  const char *dir;
  int rc, more;
  if (cli_getopt(c, argc, argv, "", longopts) != -1) return cli_usage(c, "unknown option");
  if ((rc = cli_operand_dir(c, argc, argv, &dir, &more))) return rc;
  if (more >= argc) return cli_usage(c, "no backup directory (DEST) given");
  if (more + 1 < argc) return cli_usage(c, "unexpected argument '%s'", argv[more + 1]);
  const char *dest = argv[more];
  if (!*dest) return cli_usage(c, "the backup directory is an empty name");
  if ((rc = cli_need_dir(c, dir))) return rc;

  /* Through a read-only handle: no lock on the store, and the library
  ** copies each segment with its index as the store has them, into a new
  ** or empty DEST that it locks meanwhile, and cuts the copy's last
  ** segment back to its complete records. */
  klevdb_options o;
  store_options(dir, &o);
  o.readonly = 1;
  cli_progress bar;
  cli_progress_start(&bar, c, "backup");
  cli_progress_attach(&bar, &o);
  klevdb *db;
  if ((rc = cli_open(dir, &o, &db))) return rc;
  klevdb_stat st;
  klevdb_err krc = klevdb_backup(db, dest);
  cli_progress_end(&bar);
  if (!krc) krc = klevdb_stat_get(db, &st);
  if (krc) {
    rc = cli_core_error(krc, klevdb_errmsg(db));
  } else {
    cli_kv k;
    cli_kv_begin(&k, c);
    cli_kv_str(&k, "backup", dest);
    cli_kv_int(&k, "segments", st.segments);
    cli_kv_int(&k, "messages", st.messages);
    cli_kv_int(&k, "bytes", st.size);
    cli_kv_end(&k);
    rc = cli_out_flush();
  }
  klevdb_close(db);
  return rc;
}

/* ---- migrate ---- */

static int migrate_locked(cli_ctx *c, const char *dir, klevdb_format to) {
  int64_t *bases, before[3];
  size_t n;
  if (cli_seg_list(dir, &bases, &n) < 0)
    return cli_error(c, CLI_FAIL, "%s: %s", dir, strerror(errno));
  cli_seg_formats(dir, bases, n, before);
  free(bases);
  int target = to == KLEVDB_V1 ? 1 : 2;

  klevdb_options o;
  store_options(dir, &o);
  cli_progress bar;
  cli_progress_start(&bar, c, "migrate");
  cli_progress_attach(&bar, &o);
  klevdb_error err;
  klevdb_err krc = klevdb_dir_migrate(dir, &o, to, &err);
  cli_progress_end(&bar);
  if (krc) return cli_core_error(krc, err.msg);
  cli_kv k;
  cli_kv_begin(&k, c);
  cli_kv_str(&k, "format", target == 1 ? "v1" : "v2");
  cli_kv_int(&k, "segments", (int64_t)n);
  /* Empty logs have no format to change until they are written. */
  cli_kv_int(&k, "migrated", before[3 - target]);
  cli_kv_end(&k);
  return cli_out_flush();
}

int cli_cmd_migrate(cli_ctx *c, int argc, char **argv) {
  static const struct option longopts[] = {{"to", required_argument, 0, 't'},
                                           CLI_COMMON_OPTIONS};
  const char *dir, *to = NULL;
  int ch, rc, lock;
  while ((ch = cli_getopt(c, argc, argv, "", longopts)) != -1) {
    if (ch != 't') return cli_usage(c, "unknown option");
    to = optarg;
  }
  if ((rc = cli_operand_dir(c, argc, argv, &dir, NULL))) return rc;
  klevdb_format ver;
  if (!to) return cli_usage(c, "--to v1|v2 is needed");
  if (!strcmp(to, "v1") || !strcmp(to, "1")) ver = KLEVDB_V1;
  else if (!strcmp(to, "v2") || !strcmp(to, "2")) ver = KLEVDB_V2;
  else return cli_usage(c, "--to: '%s' is not v1 or v2", to);
  if ((rc = cli_need_dir(c, dir)) || (rc = cli_lock_dir(c, dir, &lock))) return rc;
  rc = migrate_locked(c, dir, ver);
  cli_unlock_dir(lock);
  return rc;
}

/* ---- gc ---- */

static bool listed(char **names, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(names[i], name)) return true;
  return false;
}

/* The names of `before` that are gone from `after`, as text and JSON. */
static int kv_removed(cli_kv *k, char **before, size_t nb, char **after, size_t na) {
  char *text = NULL, *json = NULL;
  size_t tl, jl, count = 0;
  FILE *ft = open_memstream(&text, &tl), *fj = open_memstream(&json, &jl);
  if (ft && fj) {
    fputc('[', fj);
    for (size_t i = 0; i < nb; i++) {
      if (listed(after, na, before[i])) continue;
      fprintf(ft, "%s%s", count ? ", " : "", before[i]);
      if (count) fputc(',', fj);
      cli_json_str(fj, (const uint8_t *)before[i], strlen(before[i]));
      count++;
    }
    if (!count) fputc('-', ft);
    fputc(']', fj);
  }
  bool ok = ft && fj;
  if (ft && fclose(ft) != 0) ok = false;
  if (fj && fclose(fj) != 0) ok = false;
  if (ok) {
    cli_kv_int(k, "removed_files", (int64_t)count);
    cli_kv_raw(k, "removed", text, json);
  }
  free(text);
  free(json);
  return ok ? CLI_OK : CLI_FAIL;
}

int cli_cmd_gc(cli_ctx *c, int argc, char **argv) {
  const char *dir;
  int rc = dir_only(c, argc, argv, &dir);
  if (rc || (rc = cli_need_dir(c, dir))) return rc;
  char **before, **after;
  size_t nb, na;
  if (cli_dir_names(dir, &before, &nb) < 0)
    return cli_error(c, CLI_FAIL, "%s: %s", dir, strerror(errno));
  int64_t *bases;
  size_t nseg = 0;
  if (cli_seg_list(dir, &bases, &nseg) == 0) free(bases);

  /* A writer's open finishes or undoes what a crashed writer left and
  ** removes its temp files; a directory without segments is left alone
  ** rather than made a store. */
  if (nseg) {
    klevdb_options o;
    store_options(dir, &o);
    klevdb *db;
    if ((rc = cli_open(dir, &o, &db))) {
      cli_dir_names_free(before, nb);
      return rc;
    }
    klevdb_err krc = klevdb_gc(db, 0);
    if (krc) rc = cli_core_error(krc, klevdb_errmsg(db));
    klevdb_close(db);
  }
  if (!rc && cli_dir_names(dir, &after, &na) < 0)
    rc = cli_error(c, CLI_FAIL, "%s: %s", dir, strerror(errno));
  if (!rc) {
    cli_kv k;
    cli_kv_begin(&k, c);
    rc = kv_removed(&k, before, nb, after, na);
    cli_kv_end(&k);
    cli_dir_names_free(after, na);
    if (rc) rc = cli_error(c, CLI_FAIL, "out of memory");
    else rc = cli_out_flush();
  }
  cli_dir_names_free(before, nb);
  return rc;
}
