/*
** cmd_sql.c - `klevdb sql`: runs the sqlite3 shell with the klevdb
** extension loaded and the store attached as a virtual table, finding the
** shell on PATH and the extension next to this build or installation.
*/
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_config.h"

/* A program on PATH, as execvp would pick it (malloc'ed), or NULL. */
static char *find_on_path(const char *prog) {
  const char *path = getenv("PATH");
  if (!path) return NULL;
  size_t plen = strlen(prog);
  for (const char *p = path; ; ) {
    const char *colon = strchr(p, ':');
    size_t dl = colon ? (size_t)(colon - p) : strlen(p);
    /* An empty entry is the current directory (POSIX). */
    const char *d = dl ? p : ".";
    if (!dl) dl = 1;
    char *full = malloc(dl + plen + 2);
    if (!full) return NULL;
    memcpy(full, d, dl);
    full[dl] = '/';
    memcpy(full + dl + 1, prog, plen + 1);
    if (access(full, X_OK) == 0) return full;
    free(full);
    if (!colon) return NULL;
    p = colon + 1;
  }
}

/* True when this executable is the one in the build tree, whose
** extension is the module built beside it rather than an installed one. */
static bool in_build_tree(void) {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) return false;
  exe[n] = 0;
  size_t bl = strlen(CLI_BUILD_ROOT);
  return strncmp(exe, CLI_BUILD_ROOT, bl) == 0 && exe[bl] == '/';
}

/* The extension to load: $KLEVDB_EXTENSION, else the first that exists of
** the build tree's module (run from there) and the installed one. */
static int find_extension(const cli_ctx *c, const char **out) {
  const char *env = getenv("KLEVDB_EXTENSION");
  if (env && *env) {
    if (access(env, R_OK) != 0)
      return cli_error(c, CLI_FAIL, "KLEVDB_EXTENSION=%s: %s", env, strerror(errno));
    *out = env;
    return CLI_OK;
  }
  if (in_build_tree() && access(CLI_BUILD_EXT, R_OK) == 0) {
    *out = CLI_BUILD_EXT;
    return CLI_OK;
  }
  if (access(CLI_INSTALL_EXT, R_OK) == 0) {
    *out = CLI_INSTALL_EXT;
    return CLI_OK;
  }
  return cli_error(c, CLI_FAIL, "the klevdb SQLite extension is not at %s; set KLEVDB_EXTENSION",
                   CLI_INSTALL_EXT);
}

/* s with each q doubled, between q's: an SQL string ('), or an SQL name
** ("). malloc'ed. */
static char *quote(const char *s, char q) {
  size_t n = 3;
  for (const char *p = s; *p; p++) n += *p == q ? 2 : 1;
  char *out = malloc(n), *w = out;
  if (!out) return NULL;
  *w++ = q;
  for (const char *p = s; *p; p++) {
    if (*p == q) *w++ = q;
    *w++ = *p;
  }
  *w++ = q;
  *w = 0;
  return out;
}

/* The shell's .load argument: in '...' taken as it is; a path with a '
** goes in "..." where the shell reads backslash escapes. */
static char *load_command(const char *path) {
  size_t n = strlen(path) * 2 + 16;
  char *out = malloc(n), *w = out;
  if (!out) return NULL;
  w += sprintf(w, ".load ");
  if (!strchr(path, '\'')) {
    sprintf(w, "'%s'", path);
    return out;
  }
  *w++ = '"';
  for (const char *p = path; *p; p++) {
    if (*p == '"' || *p == '\\') *w++ = '\\';
    *w++ = *p;
  }
  *w++ = '"';
  *w = 0;
  return out;
}

int cli_cmd_sql(cli_ctx *c, int argc, char **argv) {
  static const struct option longopts[] = {{"table", required_argument, 0, 't'},
                                           {"readonly", no_argument, 0, 'r'},
                                           CLI_COMMON_OPTIONS};
  /* What follows "--" is sqlite3's, untouched by our option parsing. */
  int own = 1;
  while (own < argc && strcmp(argv[own], "--") != 0) own++;
  char **extra = argv + (own < argc ? own + 1 : argc);
  int nextra = own < argc ? argc - own - 1 : 0;

  const char *table = "store", *dir;
  bool readonly = false;
  int ch, rc;
  while ((ch = cli_getopt(c, own, argv, "", longopts)) != -1) {
    switch (ch) {
    case 't': table = optarg; break;
    case 'r': readonly = true; break;
    default: return cli_usage(c, "unknown option");
    }
  }
  if ((rc = cli_operand_dir(c, own, argv, &dir, NULL))) return rc;
  if (!*table) return cli_usage(c, "--table: the name is empty");
  if ((rc = cli_need_dir(c, dir))) return rc;
  const char *ext = NULL;
  if ((rc = find_extension(c, &ext))) return rc;
  char *shell = find_on_path("sqlite3");
  if (!shell) return cli_error(c, CLI_FAIL, "sqlite3 is not on PATH (install the sqlite3 shell)");

  /* The table reads the store by absolute path: the shell's idea of a
  ** relative one would be its database's directory. */
  char *abs = realpath(dir, NULL);
  char *qdir = abs ? quote(abs, '\'') : NULL, *qtable = quote(table, '"');
  char *load = load_command(ext), *create = NULL;
  if (qdir && qtable && load) {
    const char *fmt = "CREATE VIRTUAL TABLE temp.%s USING klevdb(dir=%s%s)";
    size_t n = strlen(fmt) + strlen(qtable) + strlen(qdir) + 16;
    if ((create = malloc(n)) != NULL)
      snprintf(create, n, fmt, qtable, qdir, readonly ? ", readonly=1" : "");
  }
  char **args = malloc(((size_t)nextra + 8) * sizeof(*args));
  if (!abs || !create || !args) {
    rc = abs ? cli_error(c, CLI_FAIL, "out of memory")
             : cli_error(c, CLI_FAIL, "%s: %s", dir, strerror(errno));
  } else {
    int k = 0;
    args[k++] = "sqlite3";
    args[k++] = "-cmd";
    args[k++] = load;
    args[k++] = "-cmd";
    args[k++] = create;
    args[k++] = ":memory:";
    for (int i = 0; i < nextra; i++) args[k++] = extra[i];
    args[k] = NULL;
    fflush(stdout);
    execv(shell, args);
    rc = cli_error(c, CLI_FAIL, "run %s: %s", shell, strerror(errno));
  }
  free(args);
  free(create);
  free(load);
  free(qtable);
  free(qdir);
  free(abs);
  free(shell);
  return rc;
}
