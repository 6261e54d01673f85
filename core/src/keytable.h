/*
** keytable.h - the store-wide key table (keytable.c): FNV-1a hash of a key
** to the newest offset seen with that hash.
*/
#ifndef KEYTABLE_H
#define KEYTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ktab {
  uint64_t *slots;
  size_t mask;
  size_t used;
} ktab;

/* True if the message at offset has key hash hash (looked up in its index
** item); called only when a slot's tag matches. */
typedef bool (*kt_match_fn)(void *ctx, int64_t offset, uint64_t hash);

/* Records that hash was seen at offset (keeps the larger offset). Returns
** false when out of memory or for offsets of 2^40 and more; the caller
** then stops using the table. */
bool kt_put(ktab *t, uint64_t hash, int64_t offset, kt_match_fn same, void *ctx);
/* The newest offset recorded for hash, -1 if none. */
int64_t kt_get(const ktab *t, uint64_t hash, kt_match_fn same, void *ctx);
void kt_free(ktab *t);

#endif
