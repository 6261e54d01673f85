/*
** check.h - tiny assertion macros for the maint tests: a failed check
** prints file:line and the values, the run goes on, and check_done()
** prints "N checks, M failed" and gives the exit status.
*/
#ifndef MAINT_CHECK_H
#define MAINT_CHECK_H

#include <stdio.h>
#include <string.h>

#include "klevdb.h"

static int checks_run, checks_failed;

#define CHECK(cond)                                                            \
  do {                                                                         \
    checks_run++;                                                              \
    if (!(cond)) {                                                             \
      checks_failed++;                                                         \
      fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
    }                                                                          \
  } while (0)

#define CHECK_EQ(a, b)                                                         \
  do {                                                                         \
    long long a_ = (long long)(a), b_ = (long long)(b);                        \
    checks_run++;                                                              \
    if (a_ != b_) {                                                            \
      checks_failed++;                                                         \
      fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__,      \
              __LINE__, #a, #b, a_, b_);                                       \
    }                                                                          \
  } while (0)

/* rc is a klevdb_err; err a klevdb_error whose message is shown. */
#define CHECK_RC(rc, want, err)                                                \
  do {                                                                         \
    klevdb_err r_ = (rc), w_ = (want);                                         \
    checks_run++;                                                              \
    if (r_ != w_) {                                                            \
      checks_failed++;                                                         \
      fprintf(stderr, "%s:%d: %s gave %s, want %s (%s)\n", __FILE__, __LINE__, \
              #rc, klevdb_errname(r_), klevdb_errname(w_), (err).msg);         \
    }                                                                          \
  } while (0)

#define CHECK_CONTAINS(hay, needle)                                            \
  do {                                                                         \
    const char *h_ = (hay), *n_ = (needle);                                    \
    checks_run++;                                                              \
    if (!strstr(h_, n_)) {                                                     \
      checks_failed++;                                                         \
      fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__,     \
              __LINE__, h_, n_);                                               \
    }                                                                          \
  } while (0)

static inline int check_done(void) {
  printf("%d checks, %d failed\n", checks_run, checks_failed);
  return checks_failed ? 1 : 0;
}

#endif
