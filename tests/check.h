/*
** check.h - the one check harness of the C tests (every folder under
** tests/ includes it; tests/core/check.h adds the store helpers). Header
** only: every helper is static and may be unused. A failed check prints
** file:line, the section and the values, and the run goes on so that one
** bug shows all its symptoms.
**
** CHECK(cond), CHECK_EQ(a, b) (integers), CHECK_STR(a, b) (strings),
** CHECK_ERR(call, code) / CHECK_OK(call) (klevdb_err results),
** CHECK_DB(db, call, code): as CHECK_ERR, prints klevdb_errmsg(db) on a
** mismatch and checks that the message of a failure starts "klevdb: ";
** CHECK_RC(rc, want, err): a klevdb_err with its klevdb_error shown;
** CHECK_EQ_INT, CHECK_EQ_HEX, CHECK_MEM (bytes), CHECK_STR_HAS and
** CHECK_CONTAINS (substrings), CHECK_WHY(cond, fmt, ...) (a condition
** explained on failure). SECTION(name) names what follows. Helpers that
** check in their own way count in chk_total and chk_failed.
** check_done() prints "<chk_name>: N checks, M failed" and returns the
** exit status.
*/
#ifndef TESTS_CHECK_H
#define TESTS_CHECK_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "klevdb.h"

#define TU __attribute__((unused)) static

TU int chk_total;
TU int chk_failed;
TU const char *chk_name = "test";
TU const char *chk_section = "";

#define SECTION(s) (chk_section = (s))

TU int chk_report(int ok, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

TU int chk_report(int ok, const char *file, int line, const char *fmt, ...) {
  chk_total++;
  if (ok) return 1;
  chk_failed++;
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s:%d: [%s] FAIL: ", file, line, chk_section);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return 0;
}

#define CHECK(c) chk_report(!!(c), __FILE__, __LINE__, "%s", #c)
#define CHECK_EQ(a, b)                                                      \
  do {                                                                      \
    long long chk_a_ = (long long)(a), chk_b_ = (long long)(b);             \
    chk_report(chk_a_ == chk_b_, __FILE__, __LINE__,                        \
               "%s == %s: got %lld, expected %lld", #a, #b, chk_a_, chk_b_); \
  } while (0)
#define CHECK_STR(a, b)                                                     \
  do {                                                                      \
    const char *chk_a_ = (a), *chk_b_ = (b);                                \
    chk_report(chk_a_ && chk_b_ && strcmp(chk_a_, chk_b_) == 0, __FILE__,   \
               __LINE__, "%s == %s: got \"%s\", expected \"%s\"", #a, #b,   \
               chk_a_ ? chk_a_ : "(null)", chk_b_ ? chk_b_ : "(null)");     \
  } while (0)
#define CHECK_ERR(call, code)                                               \
  do {                                                                      \
    klevdb_err chk_e_ = (call), chk_x_ = (code);                            \
    chk_report(chk_e_ == chk_x_, __FILE__, __LINE__,                        \
               "%s: got %s, expected %s", #call, klevdb_errname(chk_e_),    \
               klevdb_errname(chk_x_));                                     \
  } while (0)
#define CHECK_OK(call) CHECK_ERR(call, KLEVDB_OK)
#define CHECK_DB(db, call, code)                                            \
  do {                                                                      \
    klevdb_err chk_e_ = (call), chk_x_ = (code);                            \
    chk_report(chk_e_ == chk_x_, __FILE__, __LINE__,                        \
               "%s: got %s (%s), expected %s", #call,                       \
               klevdb_errname(chk_e_),                                      \
               chk_e_ != KLEVDB_OK ? klevdb_errmsg(db) : "",                \
               klevdb_errname(chk_x_));                                     \
    if (chk_e_ != KLEVDB_OK) {                                              \
      const char *chk_m_ = klevdb_errmsg(db);                               \
      chk_report(chk_m_ && strncmp(chk_m_, "klevdb: ", 8) == 0, __FILE__,   \
                 __LINE__, "errmsg after %s starts with \"klevdb: \": \"%s\"", \
                 #call, chk_m_ ? chk_m_ : "(null)");                        \
    }                                                                       \
  } while (0)
#define CHECK_DBOK(db, call) CHECK_DB(db, call, KLEVDB_OK)

TU int check_done(void) {
  printf("%s: %d checks, %d failed\n", chk_name, chk_total, chk_failed);
  fflush(stdout);
  return chk_failed ? 1 : 0;
}

/* rc is a klevdb_err; err a klevdb_error whose message is shown. */
#define CHECK_RC(rc, want, err)                                             \
  do {                                                                      \
    klevdb_err chk_r_ = (rc), chk_w_ = (want);                              \
    chk_report(chk_r_ == chk_w_, __FILE__, __LINE__, "%s gave %s, want %s (%s)", \
               #rc, klevdb_errname(chk_r_), klevdb_errname(chk_w_), (err).msg); \
  } while (0)

#define CHECK_EQ_INT(a, b)                                                  \
  do {                                                                      \
    intmax_t chk_a_ = (intmax_t)(a), chk_b_ = (intmax_t)(b);                \
    chk_report(chk_a_ == chk_b_, __FILE__, __LINE__,                        \
               "%s == %s: got %jd, want %jd", #a, #b, chk_a_, chk_b_);      \
  } while (0)

#define CHECK_EQ_HEX(a, b)                                                  \
  do {                                                                      \
    uint64_t chk_a_ = (uint64_t)(a), chk_b_ = (uint64_t)(b);                \
    chk_report(chk_a_ == chk_b_, __FILE__, __LINE__,                        \
               "%s == %s: got 0x%016" PRIx64 ", want 0x%016" PRIx64, #a, #b, \
               chk_a_, chk_b_);                                             \
  } while (0)

TU void chk_hex(const char *label, const void *p, size_t n) {
  const uint8_t *b = p;
  fprintf(stderr, "  %s (%zu bytes):", label, n);
  for (size_t i = 0; i < n && i < 96; i++) fprintf(stderr, " %02x", b[i]);
  fprintf(stderr, n > 96 ? " ...\n" : "\n");
}

/* Equal lengths and bytes. */
#define CHECK_MEM(a, alen, b, blen)                                         \
  do {                                                                      \
    const void *chk_ma_ = (a), *chk_mb_ = (b);                              \
    size_t chk_la_ = (size_t)(alen), chk_lb_ = (size_t)(blen);              \
    if (!chk_report(chk_la_ == chk_lb_ &&                                   \
                        (!chk_la_ || memcmp(chk_ma_, chk_mb_, chk_la_) == 0), \
                    __FILE__, __LINE__, "bytes of %s == %s", #a, #b)) {     \
      chk_hex("got ", chk_ma_, chk_la_);                                    \
      chk_hex("want", chk_mb_, chk_lb_);                                    \
    }                                                                       \
  } while (0)

/* hay contains needle (error messages). */
#define CHECK_STR_HAS(hay, needle)                                          \
  do {                                                                      \
    const char *chk_h_ = (hay), *chk_n_ = (needle);                         \
    chk_report(strstr(chk_h_, chk_n_) != NULL, __FILE__, __LINE__,          \
               "%s contains %s: got \"%s\", want it to contain \"%s\"", #hay, \
               #needle, chk_h_, chk_n_);                                    \
  } while (0)
#define CHECK_CONTAINS(hay, needle) CHECK_STR_HAS(hay, needle)

/* cond, explained on failure by a printf-style message. */
#define CHECK_WHY(cond, ...)                                                \
  do {                                                                      \
    if (!chk_report(!!(cond), __FILE__, __LINE__, "%s", #cond)) {           \
      fprintf(stderr, "  ");                                                \
      fprintf(stderr, __VA_ARGS__);                                         \
      fputc('\n', stderr);                                                  \
    }                                                                       \
  } while (0)

#endif /* TESTS_CHECK_H */
