/*
** fault.c - the test-only fault hook (see fault.h), compiled only into
** the test module built with -DKLEVDB_FAULTS. Its counters are the one
** mutable global state of the library, and they exist only in that build.
*/
#include <errno.h>
#include <signal.h>
#include <stdlib.h>

#include "fault.h"

static long fault_at = -1;   /* KLEVDB_FAULT_AT, read at the first point; 0: never */
static long fault_hits;

void kfault_point(void) {
  int saved = errno;   /* a point changes nothing of what the code around it sees */
  long at = __atomic_load_n(&fault_at, __ATOMIC_SEQ_CST);
  if (at < 0) {
    const char *s = getenv("KLEVDB_FAULT_AT");
    at = s ? strtol(s, NULL, 10) : 0;
    if (at < 0) at = 0;
    __atomic_store_n(&fault_at, at, __ATOMIC_SEQ_CST);
  }
  /* The kill is the crash under test: nothing after the point runs, as
  ** after kill -9 between two system calls. */
  if (__atomic_add_fetch(&fault_hits, 1, __ATOMIC_SEQ_CST) == at) raise(SIGKILL);
  errno = saved;
}
