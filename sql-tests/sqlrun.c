/*
** sqlrun.c - a tiny stand-in for the sqlite3 shell, for the SQL tests of
** sanitizer builds. A module built with AddressSanitizer cannot be loaded
** into the uninstrumented /usr/bin/sqlite3, so this program links the
** extension in (klevdb_ext_dep), registers it with sqlite3_auto_extension and
** runs a script read from stdin the way `sqlite3 -batch` does, printing
** exactly what the shell prints so the same .expected files serve both:
**
**   sqlrun [-batch] [-cmd DOTCOMMAND]... [DATABASE] < script.sql
**                                         (DATABASE defaults to :memory:)
**
** Built with -DSQLRUN_LOADABLE against any SQLite amalgamation (see
** tests/sqlite-versions/run.sh), it links no extension and takes the
** module through ".load", as the shell does, so that the same scripts test
** the loadable module in SQLite versions other than the system's. The
** shell's command line is what run.py passes to the real shell.
**
** Input is read line by line as the shell does: blank and comment-only lines
** between statements are skipped, a line starting with '.' (when no SQL is
** pending) is a dot-command, other lines accumulate until they end with ';'
** and form complete SQL; then each statement of the chunk runs in turn and
** the first error ends the chunk (as in the shell). The script keeps going
** after errors (the shell without -bail).
**
** Output is the shell's `.mode list` with `.nullvalue NULL` and
** `.headers off`: columns joined by '|', NULL as "NULL", every value as
** sqlite3_column_text gives it (REAL as "%!.15g", BLOB as raw bytes up to the
** first NUL). EXPLAIN QUERY PLAN prints the shell's tree ("QUERY PLAN",
** "|--", "`--"). Errors go to stderr (stdout is flushed first) as
** "Parse error near line N: MSG" (prepare, followed by the shell's two-line
** "^--- error here" context when SQLite knows the offset) or
** "Runtime error near line N: MSG" (step), with " (RC)" appended for result
** codes other than SQLITE_ERROR, N being the line the chunk started on.
**
** Dot-commands supported (only what the tests use):
**   .load FILE [ENTRY]    sqlite3_load_extension
**   .print ARGS...        ARGS joined by one space, shell quoting and
**                         backslash escapes
**   .mode list            the only mode
**   .headers on|off       column names before the first row of each result
**   .nullvalue STRING     how NULL is printed (default "NULL" here, "" in
**                         the shell: the tests always set it)
** Anything else prints the shell's "unknown command" error. Plain EXPLAIN
** (not QUERY PLAN) prints in list mode, unlike the shell: tests don't use it.
** Exit status: 1 if any statement failed, 0 otherwise.
*/
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#ifndef SQLRUN_LOADABLE
int sqlite3_klevdb_init(sqlite3 *db, char **err, const sqlite3_api_routines *api);
#endif

static char null_value[100] = "NULL";
static int show_headers = 0;

static void *xmalloc(size_t n) {
  void *p = malloc(n);
  if (!p) {
    fputs("sqlrun: out of memory\n", stderr);
    exit(2);
  }
  return p;
}

static void *xrealloc(void *p, size_t n) {
  p = realloc(p, n);
  if (!p) {
    fputs("sqlrun: out of memory\n", stderr);
    exit(2);
  }
  return p;
}

static int is_space(char c) { return isspace((unsigned char)c) != 0; }

/* ---- the shell's quickscan(): string/comment state across lines ---- */

enum {
  QSS_HasDark = 1 << 8,
  QSS_EndingSemi = 2 << 8,
  QSS_CharMask = (1 << 8) - 1,
  QSS_ScanMask = 3 << 8,
  QSS_Start = 0
};
#define QSS_SETV(qss, newst) ((newst) | ((qss) & QSS_ScanMask))
#define QSS_PLAINWHITE(qss) (((qss) & ~QSS_EndingSemi) == QSS_Start)
#define QSS_SEMITERM(qss) (((qss) & ~QSS_HasDark) == QSS_EndingSemi)

static int quickscan(const char *z, int qss) {
  char cin;
  char wait = (char)(qss & QSS_CharMask);
  if (wait == 0) {
  plain:
    while ((cin = *z++) != 0) {
      if (is_space(cin)) continue;
      switch (cin) {
      case '-':
        if (*z != '-') break;
        while ((cin = *++z) != 0)
          if (cin == '\n') goto plain;
        return qss;
      case ';':
        qss |= QSS_EndingSemi;
        continue;
      case '/':
        if (*z == '*') {
          ++z;
          wait = '*';
          qss = QSS_SETV(qss, wait);
          goto term;
        }
        break;
      case '[':
        cin = ']';
        /* fall through */
      case '`':
      case '\'':
      case '"':
        wait = cin;
        qss = QSS_HasDark | wait;
        goto term;
      default:
        break;
      }
      qss = (qss & ~QSS_EndingSemi) | QSS_HasDark;
    }
  } else {
  term:
    while ((cin = *z++) != 0) {
      if (cin != wait) continue;
      switch (wait) {
      case '*':
        if (*z != '/') continue;
        ++z;
        wait = 0;
        qss = QSS_SETV(qss, 0);
        goto plain;
      case '`':
      case '\'':
      case '"':
        if (*z == wait) {
          ++z;
          continue;
        }
        /* fall through */
      default: /* ']' */
        wait = 0;
        qss = QSS_SETV(qss, 0);
        goto plain;
      }
    }
  }
  return qss;
}

/* ---- output ---- */

static void print_row(sqlite3_stmt *st, int ncol) {
  for (int i = 0; i < ncol; i++) {
    const char *z = (const char *)sqlite3_column_text(st, i);
    fputs(z ? z : null_value, stdout);
    fputs(i < ncol - 1 ? "|" : "\n", stdout);
  }
}

static void print_headers(sqlite3_stmt *st, int ncol) {
  for (int i = 0; i < ncol; i++) {
    const char *z = sqlite3_column_name(st, i);
    fputs(z ? z : "", stdout);
    fputs(i < ncol - 1 ? "|" : "\n", stdout);
  }
}

/* EXPLAIN QUERY PLAN rows, rendered as the shell's tree. */
typedef struct eqp_row {
  int id, parent;
  char *text;
} eqp_row;

static void eqp_render(const eqp_row *rows, int n, int parent, char *prefix, size_t plen) {
  int last = -1;
  for (int i = 0; i < n; i++)
    if (rows[i].parent == parent) last = i;
  for (int i = 0; i < n; i++) {
    if (rows[i].parent != parent) continue;
    int more = i != last;
    printf("%s%s%s\n", prefix, more ? "|--" : "`--", rows[i].text);
    if (plen < 93) {
      memcpy(prefix + plen, more ? "|  " : "   ", 4);
      eqp_render(rows, n, rows[i].id, prefix, plen + 3);
      prefix[plen] = 0;
    }
  }
}

static int run_eqp(sqlite3_stmt *st) {
  eqp_row *rows = NULL;
  int n = 0, cap = 0, rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (n == cap) {
      cap = cap ? 2 * cap : 16;
      rows = xrealloc(rows, (size_t)cap * sizeof(*rows));
    }
    const char *t = (const char *)sqlite3_column_text(st, 3);
    rows[n].id = sqlite3_column_int(st, 0);
    rows[n].parent = sqlite3_column_int(st, 1);
    rows[n].text = strdup(t ? t : "");
    n++;
  }
  if (n > 0) {
    char prefix[100] = "";
    fputs("QUERY PLAN\n", stdout);
    eqp_render(rows, n, 0, prefix, 0);
  }
  for (int i = 0; i < n; i++) free(rows[i].text);
  free(rows);
  return rc;
}

/* ---- errors, in the shell's words ---- */

/* The shell's shell_error_context(): the statement around the error offset
** with a caret under it. */
static void error_context(sqlite3 *db, const char *sql) {
#if SQLITE_VERSION_NUMBER < 3038000
  /* No sqlite3_error_offset before 3.38: its shell shows no context. */
  (void)db;
  (void)sql;
  (void)xmalloc;
#else
  int off = sqlite3_error_offset(db);
  if (off < 0 || !sql) return;
  while (off > 50) {
    off--;
    sql++;
    while ((sql[0] & 0xc0) == 0x80) {
      sql++;
      off--;
    }
  }
  size_t len = strlen(sql);
  if (len > 78) {
    len = 78;
    while ((sql[len] & 0xc0) == 0x80) len--;
  }
  char *code = xmalloc(len + 1);
  memcpy(code, sql, len);
  code[len] = 0;
  for (size_t i = 0; code[i]; i++)
    if (is_space(sql[i])) code[i] = ' ';
  if (off < 25)
    fprintf(stderr, "\n  %s\n  %*s^--- error here", code, off, "");
  else
    fprintf(stderr, "\n  %s\n  %*serror here ---^", code, off - 14, "");
  free(code);
#endif
}

static void report(sqlite3 *db, const char *kind, int line, int rc, const char *sql) {
  fflush(stdout);
  fprintf(stderr, "%s near line %d: %s", kind, line, sqlite3_errmsg(db));
  if (rc > 1) fprintf(stderr, " (%d)", rc);
  error_context(db, sql);
  fputc('\n', stderr);
  fflush(stderr);
}

/* The shell's shell_exec(): runs the statements of one chunk, stopping at
** the first error. Returns 1 on error. */
static int run_chunk(sqlite3 *db, const char *sql, int line) {
  while (sql[0]) {
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, &tail);
    if (rc != SQLITE_OK) {
      report(db, "Parse error", line, rc, sql);
      return 1;
    }
    if (!st) { /* whitespace or a comment */
      sql = tail;
      while (is_space(sql[0])) sql++;
      continue;
    }
    if (sqlite3_stmt_isexplain(st) == 2) {
      run_eqp(st);
    } else {
      int ncol = sqlite3_column_count(st), nrow = 0;
      while (sqlite3_step(st) == SQLITE_ROW) {
        if (nrow++ == 0 && show_headers) print_headers(st, ncol);
        print_row(st, ncol);
      }
    }
    rc = sqlite3_finalize(st);
    if (rc != SQLITE_OK) {
      report(db, "Runtime error", line, rc, NULL);
      return 1;
    }
    sql = tail;
    while (is_space(sql[0])) sql++;
  }
  return 0;
}

/* ---- dot-commands ---- */

static void resolve_backslashes(char *z) {
  int i, j;
  char c;
  while (*z && *z != '\\') z++;
  for (i = j = 0; (c = z[i]) != 0; i++, j++) {
    if (c == '\\' && z[i + 1] != 0) {
      c = z[++i];
      if (c == 'a') c = '\a';
      else if (c == 'b') c = '\b';
      else if (c == 't') c = '\t';
      else if (c == 'n') c = '\n';
      else if (c == 'v') c = '\v';
      else if (c == 'f') c = '\f';
      else if (c == 'r') c = '\r';
      else if (c >= '0' && c <= '7') {
        c -= '0';
        if (z[i + 1] >= '0' && z[i + 1] <= '7') {
          i++;
          c = (char)((c << 3) + z[i] - '0');
          if (z[i + 1] >= '0' && z[i + 1] <= '7') {
            i++;
            c = (char)((c << 3) + z[i] - '0');
          }
        }
      }
      /* any other character stands for itself */
    }
    z[j] = c;
  }
  if (j < i) z[j] = 0;
}

static int dot_command(sqlite3 *db, char *line) {
  char *argv[52];
  int argc = 0, h = 1;
  while (line[h] && argc < 51) {
    while (is_space(line[h])) h++;
    if (!line[h]) break;
    if (line[h] == '\'' || line[h] == '"') {
      char delim = line[h++];
      argv[argc++] = &line[h];
      while (line[h] && line[h] != delim) {
        if (line[h] == '\\' && delim == '"' && line[h + 1] != 0) h++;
        h++;
      }
      if (line[h] == delim) line[h++] = 0;
      if (delim == '"') resolve_backslashes(argv[argc - 1]);
    } else {
      argv[argc++] = &line[h];
      while (line[h] && !is_space(line[h])) h++;
      if (line[h]) line[h++] = 0;
      resolve_backslashes(argv[argc - 1]);
    }
  }
  if (argc == 0) return 0;
  const char *cmd = argv[0];
  if (strcmp(cmd, "print") == 0) {
    for (int i = 1; i < argc; i++) {
      if (i > 1) fputc(' ', stdout);
      fputs(argv[i], stdout);
    }
    fputc('\n', stdout);
    return 0;
  }
  if (strcmp(cmd, "load") == 0 && (argc == 2 || argc == 3)) {
    char *err = NULL;
    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 1, (int *)NULL);
    if (sqlite3_load_extension(db, argv[1], argc == 3 ? argv[2] : NULL, &err) == SQLITE_OK) return 0;
    fflush(stdout);
    fprintf(stderr, "Error: %s\n", err ? err : "cannot load");
    fflush(stderr);
    sqlite3_free(err);
    return 1;
  }
  if (strcmp(cmd, "mode") == 0 && argc == 2 && strcmp(argv[1], "list") == 0) return 0;
  if (strcmp(cmd, "headers") == 0 && argc == 2) {
    if (strcmp(argv[1], "on") == 0) {
      show_headers = 1;
      return 0;
    }
    if (strcmp(argv[1], "off") == 0) {
      show_headers = 0;
      return 0;
    }
  }
  if (strcmp(cmd, "dbconfig") == 0 && argc == 3 && strcmp(argv[1], "defensive") == 0) {
    int on = strcmp(argv[2], "on") == 0, now = -1;
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, on, &now);
    printf("%19s %s\n", "defensive", now ? "on" : "off");
    return 0;
  }
  if (strcmp(cmd, "nullvalue") == 0 && argc == 2) {
    snprintf(null_value, sizeof null_value, "%s", argv[1]);
    return 0;
  }
  fflush(stdout);
  fprintf(stderr,
          "Error: unknown command or invalid arguments:  \"%s\". Enter \".help\" for help\n",
          cmd);
  fflush(stderr);
  return 1;
}

/* ---- main loop: the shell's process_input() ---- */

/* writefile(path, data) and readfile(path), as the shell has them (the
** error tests damage files with writefile). */
static void fn_writefile(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  const char *path = (const char *)sqlite3_value_text(argv[0]);
  if (!path) return;
  FILE *f = fopen(path, "wb");
  if (!f) {
    sqlite3_result_error(ctx, "cannot open file", -1);
    return;
  }
  int n = sqlite3_value_bytes(argv[1]);
  const void *p = sqlite3_value_blob(argv[1]);
  size_t w = n > 0 ? fwrite(p, 1, (size_t)n, f) : 0;
  fclose(f);
  sqlite3_result_int64(ctx, (sqlite3_int64)w);
}

static void fn_readfile(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  const char *path = (const char *)sqlite3_value_text(argv[0]);
  FILE *f = path ? fopen(path, "rb") : NULL;
  if (!f) return;
  char *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len == cap) {
      cap = cap ? cap * 2 : 4096;
      char *nb = sqlite3_realloc64(buf, cap);
      if (!nb) {
        sqlite3_free(buf);
        fclose(f);
        sqlite3_result_error_nomem(ctx);
        return;
      }
      buf = nb;
    }
    size_t r = fread(buf + len, 1, cap - len, f);
    if (r == 0) break;
    len += r;
  }
  fclose(f);
  sqlite3_result_blob64(ctx, buf, len, sqlite3_free);
}

int main(int argc, char **argv) {
  const char *dbname = ":memory:";
  sqlite3 *db;
  int errors = 0;

  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-batch") == 0) continue;
    if (strcmp(argv[i], "-cmd") == 0 && i + 1 < argc) {
      i++;   /* run once the database is open */
      continue;
    }
    if (argv[i][0] == '-') {
      fprintf(stderr, "sqlrun: unknown option %s\n", argv[i]);
      return 1;
    }
    dbname = argv[i];
  }
#ifndef SQLRUN_LOADABLE
  sqlite3_auto_extension((void (*)(void))sqlite3_klevdb_init);
#endif
  if (sqlite3_open(dbname, &db) != SQLITE_OK) {
    fprintf(stderr, "Error: unable to open database \"%s\": %s\n", dbname, sqlite3_errmsg(db));
    sqlite3_close(db);
    return 1;
  }
  sqlite3_create_function(db, "writefile", 2, SQLITE_UTF8, NULL, fn_writefile, NULL, NULL);
  sqlite3_create_function(db, "readfile", 1, SQLITE_UTF8, NULL, fn_readfile, NULL, NULL);
  for (int i = 1; i + 1 < argc; i++) {
    if (strcmp(argv[i], "-cmd") != 0) continue;
    char *cmd = strdup(argv[++i]);
    if (!cmd) return 2;
    if (cmd[0] == '.') errors += dot_command(db, cmd);
    else errors += run_chunk(db, cmd, 0);
    free(cmd);
  }

  char *line = NULL, *sql = NULL;
  size_t linecap = 0, nsql = 0, sqlcap = 0;
  ssize_t n;
  int lineno = 0, startline = 0, qss = QSS_Start;
  while ((n = getline(&line, &linecap, stdin)) >= 0) {
    fflush(stdout);
    if (n > 0 && line[n - 1] == '\n') {
      line[--n] = 0;
      if (n > 0 && line[n - 1] == '\r') line[--n] = 0;
    }
    lineno++;
    qss = quickscan(line, qss);
    if (QSS_PLAINWHITE(qss) && nsql == 0) {
      qss = QSS_Start;
      continue;
    }
    if ((line[0] == '.' || line[0] == '#') && nsql == 0) {
      if (line[0] == '.') errors += dot_command(db, line);
      qss = QSS_Start;
      continue;
    }
    if (nsql + (size_t)n + 2 >= sqlcap) {
      sqlcap = (nsql + (size_t)n) * 2 + 100;
      sql = xrealloc(sql, sqlcap);
    }
    if (nsql == 0) {
      ssize_t i = 0;
      while (line[i] && is_space(line[i])) i++;
      memcpy(sql, line + i, (size_t)(n - i) + 1);
      startline = lineno;
      nsql = (size_t)(n - i);
    } else {
      sql[nsql++] = '\n';
      memcpy(sql + nsql, line, (size_t)n + 1);
      nsql += (size_t)n;
    }
    if (nsql && QSS_SEMITERM(qss) && sqlite3_complete(sql)) {
      errors += run_chunk(db, sql, startline);
      nsql = 0;
      qss = QSS_Start;
    } else if (nsql && QSS_PLAINWHITE(qss)) {
      nsql = 0;
      qss = QSS_Start;
    }
  }
  if (nsql > 0) errors += run_chunk(db, sql, startline); /* may be incomplete */
  free(line);
  free(sql);
  fflush(stdout);
  if (sqlite3_close(db) != SQLITE_OK) {
    fprintf(stderr, "Error: cannot close the database: %s\n", sqlite3_errmsg(db));
    errors++;
  }
  return errors > 0;
}
