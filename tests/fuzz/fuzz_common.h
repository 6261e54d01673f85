/*
** fuzz_common.h - helpers shared by the libFuzzer targets of tests/fuzz.
** A failed property calls FUZZ_CHECK, which aborts: libFuzzer then saves
** the input as a crash artifact like any sanitizer report.
*/
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond)                                                     \
  do {                                                                       \
    if (!(cond)) {                                                           \
      fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__,    \
              #cond);                                                        \
      abort();                                                               \
    }                                                                        \
  } while (0)

/* A small reader over the fuzz input for the targets that take control
** bytes; past the end it yields zeros. */
typedef struct fz {
  const uint8_t *p;
  size_t n, i;
} fz;

static inline uint8_t fz_u8(fz *f) { return f->i < f->n ? f->p[f->i++] : 0; }
static inline uint16_t fz_u16(fz *f) {
  uint16_t a = fz_u8(f);
  return (uint16_t)(a | (uint16_t)fz_u8(f) << 8);
}
static inline uint64_t fz_u64(fz *f) {
  uint64_t v = 0;
  for (int k = 0; k < 8; k++) v = v << 8 | fz_u8(f);
  return v;
}
/* The next min(want, left) bytes. */
static inline const uint8_t *fz_take(fz *f, size_t want, size_t *got) {
  size_t left = f->n - f->i;
  *got = want < left ? want : left;
  const uint8_t *p = f->p + f->i;
  f->i += *got;
  return p;
}

/* Where the targets that need files make their temporary directory:
** $FUZZ_TMPDIR (run.sh sets it and removes it afterwards, since a crash
** skips atexit handlers), else /dev/shm (tmpfs: fast), else /tmp. */
#include <sys/stat.h>
static inline const char *fuzz_tmp_root(void) {
  const char *t = getenv("FUZZ_TMPDIR");
  struct stat sb;
  if (t && *t) return t;
  return stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) ? "/dev/shm" : "/tmp";
}

static inline uint64_t be64(const uint8_t *p) {
  uint64_t v = 0;
  for (int k = 0; k < 8; k++) v = v << 8 | p[k];
  return v;
}

/* Strict UTF-8 (RFC 3629: no overlongs, surrogates or code points past
** U+10FFFF), written independently of the core's decoder. */
static inline int utf8_valid(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    uint32_t cp;
    size_t w;
    if (c < 0x80) { i++; continue; }
    if ((c & 0xE0) == 0xC0) { w = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { w = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { w = 4; cp = c & 0x07; }
    else return 0;
    if (n - i < w) return 0;
    for (size_t k = 1; k < w; k++) {
      if ((s[i + k] & 0xC0) != 0x80) return 0;
      cp = cp << 6 | (s[i + k] & 0x3F);
    }
    if ((w == 2 && cp < 0x80) || (w == 3 && cp < 0x800) || (w == 4 && cp < 0x10000))
      return 0;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    i += w;
  }
  return 1;
}

#endif
