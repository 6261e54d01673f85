/*
** fault.c - the test-only fault hook (see fault.h), compiled only into
** the test module built with -DKLEVDB_FAULTS. Its counters are the one
** mutable global state of the library, and they exist only in that build.
*/
#include <errno.h>
#include <signal.h>
#include <stdlib.h>

#include "fault.h"

typedef struct fault_count {
  const char *env;
  long at;     /* the variable's value, read at the first point; 0: never */
  long hits;
} fault_count;

static fault_count fault_fg = {"KLEVDB_FAULT_AT", -1, 0};
static fault_count fault_bg = {"KLEVDB_FAULT_BG_AT", -1, 0};

static void fault_pass(fault_count *f) {
  int saved = errno;   /* a point changes nothing of what the code around it sees */
  long at = __atomic_load_n(&f->at, __ATOMIC_SEQ_CST);
  if (at < 0) {
    const char *s = getenv(f->env);
    at = s ? strtol(s, NULL, 10) : 0;
    if (at < 0) at = 0;
    __atomic_store_n(&f->at, at, __ATOMIC_SEQ_CST);
  }
  /* The kill is the crash under test: nothing after the point runs, as
  ** after kill -9 between two system calls. */
  if (__atomic_add_fetch(&f->hits, 1, __ATOMIC_SEQ_CST) == at) raise(SIGKILL);
  errno = saved;
}

void kfault_point(void) { fault_pass(&fault_fg); }
void kfault_bg_point(void) { fault_pass(&fault_bg); }
