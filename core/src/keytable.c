/*
** keytable.c - the store-wide key table: FNV-1a key hash -> newest offset,
** so that a get by key costs one probe however many segments there are.
** Open addressing with linear probing; one 8-byte slot per key.
*/
#include <errno.h>
#include <stdlib.h>

#include "keytable.h"
#include "xxh.h"

/* A slot packs a 24-bit tag with offset + 1 (0 = empty): 8 bytes a key
** keeps the table under the memory goal even when every key differs. The
** tag (and from it the probe start) comes from XXH3 of the FNV hash. The
** full hash lives in the index item of the slot's offset, so a tag match
** is confirmed there (same()): each distinct hash keeps its own slot. */
#define TAG_SHIFT 40
#define OFF_MASK ((1ULL << TAG_SHIFT) - 1)

static inline uint64_t mix(uint64_t h) { return XXH3_64bits(&h, sizeof(h)); }

void kt_free(ktab *t) {
  free(t->slots);
  t->slots = NULL;
  t->mask = 0;
  t->used = 0;
}

static bool kt_grow(ktab *t) {
  size_t cap = t->slots ? (t->mask + 1) * 2 : 1024;
  /* Past 2^24 slots the 24-bit tag no longer spreads positions. */
  if (cap > ((size_t)1 << 24)) return false;
  uint64_t *ns = calloc(cap, sizeof(uint64_t));
  if (!ns) return false;
  size_t mask = cap - 1;
  for (size_t i = 0; t->slots && i <= t->mask; i++) {
    uint64_t s = t->slots[i];
    if (!s) continue;
    /* Positions come from the tag, so growing needs no hash. */
    size_t j = (size_t)(s >> TAG_SHIFT) & mask;
    while (ns[j]) j = (j + 1) & mask;
    ns[j] = s;
  }
  free(t->slots);
  t->slots = ns;
  t->mask = mask;
  return true;
}

bool kt_put(ktab *t, uint64_t hash, int64_t offset, kt_match_fn same, void *ctx) {
  if ((uint64_t)offset >= OFF_MASK) return false;
  if (!t->slots || (t->used + 1) * 4 > (t->mask + 1) * 3) {
    if (!kt_grow(t)) return false;
  }
  uint64_t tag = mix(hash) >> TAG_SHIFT;
  size_t j = (size_t)tag & t->mask;
  for (;;) {
    uint64_t s = t->slots[j];
    if (!s) {
      t->slots[j] = (tag << TAG_SHIFT) | (uint64_t)(offset + 1);
      t->used++;
      return true;
    }
    int64_t old = (int64_t)(s & OFF_MASK) - 1;
    if ((s >> TAG_SHIFT) == tag && (old == offset || same(ctx, old, hash))) {
      /* The newest message of a key wins; replay from old to new keeps it. */
      if (old < offset) t->slots[j] = (tag << TAG_SHIFT) | (uint64_t)(offset + 1);
      return true;
    }
    j = (j + 1) & t->mask;
  }
}

int64_t kt_get(const ktab *t, uint64_t hash, kt_match_fn same, void *ctx) {
  if (!t->slots) return -1;
  uint64_t tag = mix(hash) >> TAG_SHIFT;
  size_t j = (size_t)tag & t->mask;
  for (;;) {
    uint64_t s = t->slots[j];
    if (!s) return -1;
    int64_t off = (int64_t)(s & OFF_MASK) - 1;
    if ((s >> TAG_SHIFT) == tag && same(ctx, off, hash)) return off;
    j = (j + 1) & t->mask;
  }
}
