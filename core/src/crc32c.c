/*
** crc32c.c - CRC-32C (Castagnoli), the checksum of every log record.
** Uses the SSE4.2 crc32 instruction when the CPU has it, a slicing-by-8
** table otherwise; both give the standard crc32c.
*/
#include "kdb.h"

#include "crc32c_table.h"

static uint32_t crc_sw(uint32_t crc, const uint8_t *p, size_t n) {
  while (n && ((uintptr_t)p & 7)) {
    crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
    n--;
  }
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    w ^= crc;
    crc = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^
          table[5][(w >> 16) & 0xff] ^ table[4][(w >> 24) & 0xff] ^
          table[3][(w >> 32) & 0xff] ^ table[2][(w >> 40) & 0xff] ^
          table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
    p += 8;
    n -= 8;
  }
  while (n--) crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
  return crc;
}

#if defined(__x86_64__)
#include <nmmintrin.h>

__attribute__((target("sse4.2")))
static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t n) {
  /* No alignment prologue: x86 loads unaligned words at full speed, and
  ** byte steps cost as much as word steps (3 cycles each); records start
  ** anywhere. */
  uint64_t c = crc;
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    c = _mm_crc32_u64(c, w);
    p += 8;
    n -= 8;
  }
  uint32_t c32 = (uint32_t)c;
  if (n >= 4) {
    uint32_t w;
    memcpy(&w, p, 4);
    c32 = _mm_crc32_u32(c32, w);
    p += 4;
    n -= 4;
  }
  if (n >= 2) {
    uint16_t w;
    memcpy(&w, p, 2);
    c32 = _mm_crc32_u16(c32, w);
    p += 2;
    n -= 2;
  }
  if (n) c32 = _mm_crc32_u8(c32, *p);
  return c32;
}
#endif

uint32_t crc32c_sw(uint32_t crc, const void *p, size_t n);
uint32_t crc32c_sw(uint32_t crc, const void *p, size_t n) {
  return ~crc_sw(~crc, p, n);
}

uint32_t crc32c(uint32_t crc, const void *p, size_t n) {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("sse4.2")) return ~crc_hw(~crc, p, n);
#endif
  return ~crc_sw(~crc, p, n);
}
