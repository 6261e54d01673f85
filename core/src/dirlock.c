/*
** dirlock.c - the store's lock (flock(2) on dir/.lock, as Go klevdb takes
** it) for everyone who works on a store's files without opening it: the
** directory helpers, read-only followers, the SQL functions and the tool.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <unistd.h>

#include "kdb.h"

#define PATH_CAP 4096

bool writer_active(const char *dir) {
  char path[PATH_CAP + 8];
  snprintf(path, sizeof(path), "%s/.lock", dir);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  /* Shared, as Go's readers take it: only a writer's lock is in the way. */
  bool held = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
  close(fd);
  return held;
}

klevdb_err klevdb_dir_writer_active(const char *dir, int *active) {
  if (!dir || !active) return KLEVDB_EINVAL;
  *active = writer_active(dir);
  return KLEVDB_OK;
}

klevdb_err klevdb_dir_lock(const char *dir, int flags, int *fd, klevdb_error *e) {
  if (!fd) return kerr(e, KLEVDB_EINVAL, "lock: no place for the descriptor");
  *fd = -1;
  if (!dir || !*dir) return kerr(e, KLEVDB_EINVAL, "lock: no directory given");
  char path[PATH_CAP + 8];
  snprintf(path, sizeof(path), "%s/.lock", dir);
  int oflags = O_RDONLY | O_CLOEXEC | ((flags & KLEVDB_LOCK_CREATE) ? O_CREAT : 0);
  int f = open(path, oflags, 0600);
  if (f < 0) {
    if (errno == ENOENT && !(flags & KLEVDB_LOCK_CREATE)) return KLEVDB_OK;
    return kerr_sys(e, errno, "open lock %s", path);
  }
  if (flock(f, LOCK_EX | LOCK_NB) < 0) {
    int err = errno;
    close(f);
    if (err == EWOULDBLOCK)
      return kerr(e, KLEVDB_ELOCKED, "%s: locked by another process (writer)", dir);
    return kerr_sys(e, err, "lock %s", path);
  }
  *fd = f;
  return KLEVDB_OK;
}

void klevdb_dir_unlock(int fd) {
  if (fd >= 0) close(fd);
}
