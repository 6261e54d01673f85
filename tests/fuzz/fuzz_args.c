/*
** fuzz_args.c - libFuzzer target for the option parser of the klevdb
** virtual table (ext/args.c). The input is split at newlines: the first
** line is the table name, the others are the arguments of CREATE VIRTUAL
** TABLE ... USING klevdb(...) (argv[3..]). Each input is parsed against an
** in-memory database and against one with a file name, and the directory
** resolution (kvt_resolve_dir) runs on every line.
**
** Properties: no memory error, leak or undefined behaviour; success gives a
** directory and options in range and no message; failure gives a
** "klevdb: ..." message and frees what it had.
*/
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "kvt.h"

static sqlite3 *mem_db, *file_db;
static char dbdir[256], dbpath[300];

static void cleanup(void) {
  sqlite3_close(mem_db);
  sqlite3_close(file_db);
  unlink(dbpath);
  rmdir(dbdir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc; (void)argv;
  const char *base = fuzz_tmp_root();
  snprintf(dbdir, sizeof(dbdir), "%s/klevdb-fuzz-args-XXXXXX", base);
  if (!mkdtemp(dbdir)) abort();
  snprintf(dbpath, sizeof(dbpath), "%s/x.db", dbdir);
  if (sqlite3_open(":memory:", &mem_db) != SQLITE_OK) abort();
  if (sqlite3_open(dbpath, &file_db) != SQLITE_OK) abort();
  atexit(cleanup);
  return 0;
}

static void parse(sqlite3 *db, const char *schema, const char *table, int argc,
                  const char *const *argv) {
  kvt_args a;
  char *err = (char *)1;
  int rc = kvt_args_parse(db, schema, table, argc, argv, &a, &err);
  if (rc == SQLITE_OK) {
    FUZZ_CHECK(err == NULL);
    FUZZ_CHECK(a.dir != NULL && a.dir[0]);
    FUZZ_CHECK(a.opts.rollover > 0 && a.opts.rollover <= ((int64_t)1 << 40));
    FUZZ_CHECK(a.key >= KVT_BLOB && a.key <= KVT_STRINGOPT);
    FUZZ_CHECK(a.value >= KVT_BLOB && a.value <= KVT_STRINGOPT);
    FUZZ_CHECK(a.opts.new_segments_version == KLEVDB_V1 ||
               a.opts.new_segments_version == KLEVDB_V2);
    FUZZ_CHECK((a.indexes_given & ~3) == 0);
    FUZZ_CHECK(strcmp(kvt_codec_name(a.key), "?") != 0);
    kvt_args_free(&a);
    FUZZ_CHECK(a.dir == NULL);
  } else {
    FUZZ_CHECK(rc == SQLITE_ERROR || rc == SQLITE_NOMEM);
    FUZZ_CHECK(err != NULL && strncmp(err, "klevdb: ", 8) == 0);
    FUZZ_CHECK(a.dir == NULL);
    sqlite3_free(err);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 4096) return 0;
  /* NUL-terminated lines in one copy; argv[0..2] as SQLite passes them. */
  char *buf = malloc(size + 1);
  const char **argv = malloc((size + 4) * sizeof(char *));
  if (!buf || !argv) abort();
  memcpy(buf, data, size);
  buf[size] = 0;
  int argc = 3;
  argv[0] = "klevdb";
  argv[1] = "main";
  char *line = buf;
  for (size_t i = 0; i <= size; i++) {
    if (i < size && buf[i] != '\n') continue;
    buf[i] = 0;
    argv[argc++] = line;
    line = buf + i + 1;
  }
  /* The first line names the table. */
  argv[2] = argv[3];
  for (int i = 3; i + 1 < argc; i++) argv[i] = argv[i + 1];
  argc--;
  const char *table = argv[2];

  parse(mem_db, "main", table, argc, argv);
  parse(file_db, "main", table, argc, argv);
  for (int i = 2; i < argc; i++) {
    for (int k = 0; k < 2; k++) {
      char *d = kvt_resolve_dir(k ? file_db : mem_db, "main", argv[i]);
      FUZZ_CHECK(d != NULL);
      if (argv[i][0] == '/' || k == 0) FUZZ_CHECK(strcmp(d, argv[i]) == 0);
      sqlite3_free(d);
    }
  }
  /* An unknown schema: no file name, so in-memory rules apply. */
  parse(file_db, "nosuch", table, argc, argv);
  free(argv);
  free(buf);
  return 0;
}
