/*
** segfiles.c - what the tool looks at in a store directory itself: the
** segments' names and formats, the files there (gc), and the writer lock
** that maintenance on the files directly (recover, migrate) must hold.
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "cli.h"

/* "<20 digits>.log", the only segment names a store uses. */
static bool seg_name(const char *name, int64_t *base) {
  if (strlen(name) != 24 || strcmp(name + 20, ".log") != 0) return false;
  int64_t v = 0;
  for (int i = 0; i < 20; i++) {
    if (name[i] < '0' || name[i] > '9') return false;
    if (v > (INT64_MAX - (name[i] - '0')) / 10) return false;
    v = v * 10 + (name[i] - '0');
  }
  *base = v;
  return true;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

int cli_seg_list(const char *dir, int64_t **bases, size_t *n) {
  char **names;
  size_t nn;
  *bases = NULL;
  *n = 0;
  if (cli_dir_names(dir, &names, &nn) < 0) return -1;
  /* At most one base per name: the array never grows. */
  int64_t *b = malloc((nn ? nn : 1) * sizeof(*b));
  if (!b) {
    cli_dir_names_free(names, nn);
    errno = ENOMEM;
    return -1;
  }
  for (size_t i = 0; i < nn; i++)
    if (seg_name(names[i], &b[*n])) (*n)++;
  cli_dir_names_free(names, nn);
  if (*n) qsort(b, *n, sizeof(*b), cmp_i64);
  *bases = b;
  return 0;
}

void cli_seg_path(char *out, size_t cap, const char *dir, int64_t base, const char *ext) {
  snprintf(out, cap, "%s/%020lld%s", dir, (long long)base, ext);
}

int cli_seg_format(const char *dir, int64_t base) {
  /* The V2 file header (docs/format.md); anything else that parses is V1. */
  static const uint8_t v2[8] = {0xFF, 'k', 'l', 'e', 'v', 's', 0x01, 0x00};
  char path[4200];
  cli_seg_path(path, sizeof(path), dir, base, ".log");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  uint8_t h[8];
  ssize_t got = read(fd, h, sizeof(h));
  close(fd);
  if (got == 0) return 0;
  if (got == (ssize_t)sizeof(h) && memcmp(h, v2, sizeof(h)) == 0) return 2;
  return got == (ssize_t)sizeof(h) ? 1 : -1;
}

void cli_seg_formats(const char *dir, const int64_t *bases, size_t n, int64_t counts[3]) {
  counts[0] = counts[1] = counts[2] = 0;
  for (size_t i = 0; i < n; i++) {
    int f = cli_seg_format(dir, bases[i]);
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
  char path[4200];
  snprintf(path, sizeof(path), "%s/.lock", dir);
  /* The library's protocol (docs/files.md, the lock): flock on DIR/.lock, which Go and C
  ** writers hold while the store is open. */
  *fd = open(path, O_CREAT | O_RDONLY | O_CLOEXEC, 0600);
  if (*fd < 0) return cli_error(c, CLI_FAIL, "open lock %s: %s", path, strerror(errno));
  if (flock(*fd, LOCK_EX | LOCK_NB) < 0) {
    int err = errno;
    close(*fd);
    *fd = -1;
    if (err == EWOULDBLOCK)
      return cli_error(c, CLI_LOCKED, "%s: locked by another process (writer)", dir);
    return cli_error(c, CLI_FAIL, "lock %s: %s", path, strerror(err));
  }
  return CLI_OK;
}

bool cli_writer_active(const char *dir, int *fd) {
  char path[4200];
  snprintf(path, sizeof(path), "%s/.lock", dir);
  /* No lock file: no writer has ever opened the store (and a read
  ** command creates nothing). */
  *fd = open(path, O_RDONLY | O_CLOEXEC);
  if (*fd < 0) return false;
  /* Shared, as Go's readers take it: only a writer's lock stands in the
  ** way, and a writer cannot start while it is held. */
  if (flock(*fd, LOCK_SH | LOCK_NB) == 0) return false;
  close(*fd);
  *fd = -1;
  return true;
}

void cli_unlock_dir(int fd) {
  if (fd >= 0) close(fd);
}
