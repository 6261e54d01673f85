/*
** segfiles.c - what the tool looks at in a store directory: the segments
** and their formats, the files there (gc), and the writer lock that
** maintenance on the files directly (recover, migrate) must hold. The
** library owns the protocol; this file only adapts it to the tool.
*/
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_seg_list(const char *dir, int64_t **bases, size_t *n) {
  /* The library lists them (errno kept for our messages). */
  return klevdb_dir_segments(dir, bases, n, NULL) ? -1 : 0;
}

void cli_seg_path(char *out, size_t cap, const char *dir, int64_t base, const char *ext) {
  snprintf(out, cap, "%s/%020lld%s", dir, (long long)base, ext);
}

void cli_seg_formats(const char *dir, const int64_t *bases, size_t n, int64_t counts[3]) {
  counts[0] = counts[1] = counts[2] = 0;
  for (size_t i = 0; i < n; i++) {
    int f = klevdb_segment_format(dir, bases[i]);
    counts[f < 0 ? 0 : f]++;
  }
}

int cli_dir_names(const char *dir, char ***names, size_t *n) {
  *names = NULL;
  *n = 0;
  DIR *d = opendir(dir);
  if (!d) return -1;
  size_t cap = 0;
  struct dirent *de;
  int err = 0;
  while ((de = readdir(d)) != NULL) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    if (*n == cap) {
      cap = cap ? cap * 2 : 64;
      char **p = realloc(*names, cap * sizeof(*p));
      if (!p) {
        err = ENOMEM;
        break;
      }
      *names = p;
    }
    if (!((*names)[*n] = strdup(de->d_name))) {
      err = ENOMEM;
      break;
    }
    (*n)++;
  }
  closedir(d);
  if (err) {
    cli_dir_names_free(*names, *n);
    *names = NULL;
    *n = 0;
    errno = err;
    return -1;
  }
  return 0;
}

void cli_dir_names_free(char **names, size_t n) {
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
}

int cli_lock_dir(const cli_ctx *c, const char *dir, int *fd) {
  /* The library's lock protocol (docs/files.md, the lock); its messages
  ** without their "klevdb: ", which cli_error puts before the command. */
  klevdb_error e;
  klevdb_err rc = klevdb_dir_lock(dir, KLEVDB_LOCK_CREATE, fd, &e);
  if (!rc) return CLI_OK;
  const char *msg = strncmp(e.msg, "klevdb: ", 8) == 0 ? e.msg + 8 : e.msg;
  return cli_error(c, rc == KLEVDB_ELOCKED ? CLI_LOCKED : CLI_FAIL, "%s", msg);
}

bool cli_writer_active(const char *dir) {
  int active = 0;
  klevdb_dir_writer_active(dir, &active);
  return active != 0;
}

void cli_unlock_dir(int fd) { klevdb_dir_unlock(fd); }
