/*
** check.h - the few assertion macros the unit tests share. A failed check
** prints file:line and the values, and the run goes on so that one bug
** shows all its symptoms; check_done() makes main's exit status nonzero.
*/
#ifndef CHECK_H
#define CHECK_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int check_count, check_failed;

static inline void check_fail(const char *file, int line, const char *what) {
  check_failed++;
  fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what);
}

static inline void check_hex(const char *label, const void *p, size_t n) {
  const uint8_t *b = p;
  fprintf(stderr, "  %s (%zu bytes):", label, n);
  for (size_t i = 0; i < n && i < 96; i++) fprintf(stderr, " %02x", b[i]);
  fprintf(stderr, n > 96 ? " ...\n" : "\n");
}

#define CHECK(cond)                                                         \
  do {                                                                      \
    check_count++;                                                          \
    if (!(cond)) check_fail(__FILE__, __LINE__, #cond);                     \
  } while (0)

#define CHECK_EQ_INT(a, b)                                                  \
  do {                                                                      \
    intmax_t a_ = (intmax_t)(a), b_ = (intmax_t)(b);                        \
    check_count++;                                                          \
    if (a_ != b_) {                                                         \
      check_fail(__FILE__, __LINE__, #a " == " #b);                         \
      fprintf(stderr, "  got %jd, want %jd\n", a_, b_);                     \
    }                                                                       \
  } while (0)

#define CHECK_EQ_HEX(a, b)                                                  \
  do {                                                                      \
    uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b);                        \
    check_count++;                                                          \
    if (a_ != b_) {                                                         \
      check_fail(__FILE__, __LINE__, #a " == " #b);                         \
      fprintf(stderr, "  got 0x%016" PRIx64 ", want 0x%016" PRIx64 "\n",    \
              a_, b_);                                                      \
    }                                                                       \
  } while (0)

/* Equal lengths and bytes. */
#define CHECK_MEM(a, alen, b, blen)                                         \
  do {                                                                      \
    const void *ma_ = (a), *mb_ = (b);                                      \
    size_t la_ = (size_t)(alen), lb_ = (size_t)(blen);                      \
    check_count++;                                                          \
    if (la_ != lb_ || (la_ && memcmp(ma_, mb_, la_) != 0)) {                \
      check_fail(__FILE__, __LINE__, "bytes of " #a " == " #b);             \
      check_hex("got ", ma_, la_);                                          \
      check_hex("want", mb_, lb_);                                          \
    }                                                                       \
  } while (0)

/* hay contains needle (error messages). */
#define CHECK_STR_HAS(hay, needle)                                          \
  do {                                                                      \
    const char *h_ = (hay), *n_ = (needle);                                 \
    check_count++;                                                          \
    if (!strstr(h_, n_)) {                                                  \
      check_fail(__FILE__, __LINE__, #hay " contains " #needle);            \
      fprintf(stderr, "  got \"%s\", want it to contain \"%s\"\n", h_, n_); \
    }                                                                       \
  } while (0)

static inline int check_done(const char *name) {
  printf("%s: %d checks, %d failed\n", name, check_count, check_failed);
  return check_failed != 0;
}

#endif /* CHECK_H */
