/*
** retention.c - Go klevdb's finders (FindByOffset/Count/Size/Age, FindUpdates,
** FindDeletes) and the trims/compactions built on them, written
** only against the public API so they behave exactly like the Go helpers.
*/
#include <stdlib.h>
#include <string.h>

#include "kdb.h"
#include "xxh.h"

/* Go scans with Consume(cursor, 32); FindByAge's result depends on where the
** batches end, so the size is part of the behaviour. */
#define SCAN_BATCH 32

/* ---- a growing list of offsets ---- */

typedef struct offvec {
  int64_t *v;
  size_t len, cap;
} offvec;

static klevdb_err offvec_push(offvec *o, int64_t x) {
  if (o->len == o->cap) {
    size_t cap = o->cap ? o->cap * 2 : 64;
    int64_t *v = realloc(o->v, cap * sizeof(*v));
    if (!v) return KLEVDB_ENOMEM;
    o->v = v;
    o->cap = cap;
  }
  o->v[o->len++] = x;
  return KLEVDB_OK;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* ---- key table: key bytes -> last offset, for FindUpdates/FindDeletes ---- */

/* Keys are copied into one arena and referenced by position, because the
** batch's key memory is reused by the next Consume and the arena may move
** when it grows. */
typedef struct kslot {
  uint64_t hash;
  size_t key_pos, key_len;
  int64_t offset;
  int used;
} kslot;

typedef struct keytab {
  kslot *slots;
  size_t cap, count;  /* cap is a power of two */
  uint8_t *arena;
  size_t arena_len, arena_cap;
} keytab;

static void keytab_free(keytab *t) {
  free(t->slots);
  free(t->arena);
}

static uint64_t key_hash(const uint8_t *key, size_t len) {
  /* An absent key has no pointer; hash the empty string so all absent keys
  ** land together (Go's string(nil) == ""). */
  static const uint8_t empty[1] = {0};
  return XXH3_64bits(len ? key : empty, len);
}

static kslot *keytab_probe(kslot *slots, size_t cap, const uint8_t *arena,
                           uint64_t h, const uint8_t *key, size_t len) {
  size_t i = (size_t)h & (cap - 1);
  for (;;) {
    kslot *s = &slots[i];
    if (!s->used) return s;
    if (s->hash == h && s->key_len == len &&
        (len == 0 || memcmp(arena + s->key_pos, key, len) == 0))
      return s;
    i = (i + 1) & (cap - 1);
  }
}

static klevdb_err keytab_grow(keytab *t) {
  size_t cap = t->cap ? t->cap * 2 : 256;
  kslot *slots = calloc(cap, sizeof(*slots));
  if (!slots) return KLEVDB_ENOMEM;
  for (size_t i = 0; i < t->cap; i++) {
    kslot *s = &t->slots[i];
    if (!s->used) continue;
    size_t j = (size_t)s->hash & (cap - 1);
    while (slots[j].used) j = (j + 1) & (cap - 1);
    slots[j] = *s;
  }
  free(t->slots);
  t->slots = slots;
  t->cap = cap;
  return KLEVDB_OK;
}

/* Finds the key, inserting it (offset -1) if new; *found tells which. */
static klevdb_err keytab_upsert(keytab *t, const uint8_t *key, size_t len,
                                kslot **out, int *found) {
  /* Keep the load factor under 1/2 so probe chains stay short. */
  if ((t->count + 1) * 2 > t->cap) {
    klevdb_err rc = keytab_grow(t);
    if (rc) return rc;
  }
  uint64_t h = key_hash(key, len);
  kslot *s = keytab_probe(t->slots, t->cap, t->arena, h, key, len);
  if (s->used) {
    *found = 1;
    *out = s;
    return KLEVDB_OK;
  }
  if (len > t->arena_cap - t->arena_len) {
    size_t cap = t->arena_cap ? t->arena_cap : 4096;
    while (len > cap - t->arena_len) {
      if (cap > SIZE_MAX / 2) return KLEVDB_ENOMEM;
      cap *= 2;
    }
    uint8_t *a = realloc(t->arena, cap);
    if (!a) return KLEVDB_ENOMEM;
    t->arena = a;
    t->arena_cap = cap;
  }
  if (len) memcpy(t->arena + t->arena_len, key, len);
  s->used = 1;
  s->hash = h;
  s->key_pos = t->arena_len;
  s->key_len = len;
  s->offset = -1;
  t->arena_len += len;
  t->count++;
  *found = 0;
  *out = s;
  return KLEVDB_OK;
}

/* ---- progress (klevdb_options.progress) ---- */

/* A trim or compaction reports offsets: the scan walks [start, start + span)
** and is the first half of the work, the delete the second (it rewrites or
** unlinks the segments the scan went through). */
typedef struct prog {
  void (*fn)(void *arg, int64_t done, int64_t total);
  void *arg;
  int64_t start, span, total;
  int64_t step, last;       /* report only every step offsets */
} prog;

/* Sets p up for db's callback; a store without one costs nothing more. */
static void prog_init(klevdb *db, prog *p, bool with_delete, klevdb_batch *b) {
  klevdb_options o;
  klevdb_get_options(db, &o);
  memset(p, 0, sizeof(*p));
  p->fn = o.progress;
  p->arg = o.progress_arg;
  if (!p->fn) return;
  int64_t next = 0;
  if (klevdb_next_offset(db, &next) != KLEVDB_OK) next = 0;
  p->start = next;
  if (klevdb_read(db, KLEVDB_OFFSET_OLDEST, 1, KLEVDB_READ_OFFSETS, b) == KLEVDB_OK && b->len)
    p->start = b->msgs[0].offset;
  p->span = next > p->start ? next - p->start : 1;
  p->total = with_delete ? 2 * p->span : p->span;
  /* At most about a hundred reports, and none per batch of a small store. */
  p->step = p->span / 100 > 1024 ? p->span / 100 : 1024;
  p->last = 0;
  p->fn(p->arg, 0, p->total);
}

static void prog_at(prog *p, int64_t done) {
  if (!p->fn || done <= p->last) return;
  p->last = done;
  p->fn(p->arg, done, p->total);
}

/* The scan reached cursor. */
static void prog_scan(prog *p, int64_t cursor) {
  if (!p->fn) return;
  int64_t done = cursor - p->start;
  if (done > p->span) done = p->span;
  if (done - p->last >= p->step) prog_at(p, done);
}

/* ---- the scan ---- */

/* One step of Go's "for cursor := OffsetOldest; cursor < bound && ...;"
** loop body: Consume(cursor, 32) and move the cursor. Returns 0 with the
** batch filled, or an error. *stuck is set when the cursor did not move,
** which a correct store never does; Go would spin forever there, we stop. */
/* flags KLEVDB_READ_OFFSETS: a finder that needs only offsets reads the
** indexes, not the log (the same batches, so the same results). */
static klevdb_err scan_step(klevdb *db, int64_t *cursor, klevdb_batch *b,
                            int *stuck, int flags, prog *p) {
  klevdb_err rc = klevdb_read(db, *cursor, SCAN_BATCH, flags, b);
  if (rc) return rc;
  *stuck = b->next_offset <= *cursor;
  *cursor = b->next_offset;
  prog_scan(p, *cursor);
  return KLEVDB_OK;
}

/* Go's msg.Time.After(before): strictly later; equal times stay eligible. */
static int time_after(int64_t t, int64_t before) { return t > before; }

static klevdb_err find_by_offset(klevdb *db, int64_t before, klevdb_batch *b,
                                 offvec *out, prog *p) {
  if (before == KLEVDB_OFFSET_OLDEST) return KLEVDB_OK;
  int64_t bound;
  klevdb_err rc = klevdb_next_offset(db, &bound);
  if (rc) return rc;
  if (before == KLEVDB_OFFSET_NEWEST)
    before = bound;
  else if (before < bound)
    bound = before;  /* other negatives make the bound negative: nothing */
  for (int64_t cur = KLEVDB_OFFSET_OLDEST; cur < bound;) {
    int stuck;
    if ((rc = scan_step(db, &cur, b, &stuck, KLEVDB_READ_OFFSETS, p))) return rc;
    for (size_t i = 0; i < b->len; i++)
      if (b->msgs[i].offset < before && (rc = offvec_push(out, b->msgs[i].offset)))
        return rc;
    if (stuck) break;
  }
  return KLEVDB_OK;
}

static klevdb_err find_by_count(klevdb *db, int64_t keep, klevdb_batch *b,
                                offvec *out, prog *p) {
  klevdb_stat st;
  klevdb_err rc = klevdb_stat_get(db, &st);
  if (rc) return rc;
  if (st.messages <= keep) return KLEVDB_OK;
  int64_t bound;
  if ((rc = klevdb_next_offset(db, &bound))) return rc;
  int64_t to_remove = st.messages - keep;
  for (int64_t cur = KLEVDB_OFFSET_OLDEST; cur < bound && to_remove > 0;) {
    int stuck;
    if ((rc = scan_step(db, &cur, b, &stuck, KLEVDB_READ_OFFSETS, p))) return rc;
    for (size_t i = 0; i < b->len; i++) {
      if ((rc = offvec_push(out, b->msgs[i].offset))) return rc;
      if (--to_remove <= 0) return KLEVDB_OK;
    }
    if (stuck) break;
  }
  return KLEVDB_OK;
}

static klevdb_err find_by_size(klevdb *db, int64_t max_size, klevdb_batch *b,
                               offvec *out, prog *p) {
  klevdb_stat st;
  klevdb_err rc = klevdb_stat_get(db, &st);
  if (rc) return rc;
  if (st.size < max_size) return KLEVDB_OK;
  int64_t bound;
  if ((rc = klevdb_next_offset(db, &bound))) return rc;
  /* Go subtracts the estimated size of each record (new-segment format +
  ** index item) from Stat's real size, headers included (differences D22). */
  int64_t total = st.size;
  for (int64_t cur = KLEVDB_OFFSET_OLDEST; cur < bound && total >= max_size;) {
    int stuck;
    if ((rc = scan_step(db, &cur, b, &stuck, 0, p))) return rc;
    for (size_t i = 0; i < b->len; i++) {
      if ((rc = offvec_push(out, b->msgs[i].offset))) return rc;
      total -= klevdb_size(db, &b->msgs[i]);
      if (total < max_size) return KLEVDB_OK;
    }
    if (stuck) break;
  }
  return KLEVDB_OK;
}

static klevdb_err find_by_age(klevdb *db, int64_t before, klevdb_batch *b,
                              offvec *out, prog *p) {
  int64_t bound, t;
  klevdb_err rc = klevdb_offset_by_time(db, before, &bound, &t);
  /* An empty store has no time items (Go fails there); it has nothing to
  ** trim either, so retention on it quietly finds nothing. */
  if (rc == KLEVDB_ENOINDEX || rc == KLEVDB_ENOTFOUND || rc == KLEVDB_EINVALID_OFFSET)
    rc = klevdb_next_offset(db, &bound);
  if (rc) return rc;
  /* Only the bound limits the batches; within the batch that crosses it,
  ** later records with time <= before are still taken (ties, as in Go). */
  for (int64_t cur = KLEVDB_OFFSET_OLDEST; cur < bound;) {
    int stuck;
    if ((rc = scan_step(db, &cur, b, &stuck, 0, p))) return rc;
    for (size_t i = 0; i < b->len; i++) {
      if (time_after(b->msgs[i].time, before)) return KLEVDB_OK;
      if ((rc = offvec_push(out, b->msgs[i].offset))) return rc;
    }
    if (stuck) break;
  }
  return KLEVDB_OK;
}

/* FindUpdates (deletes = false) and FindDeletes (true): one scan of the
** window, with the keys seen so far. */
static klevdb_err find_by_key(klevdb *db, int64_t before, bool deletes, klevdb_batch *b,
                              offvec *out, prog *p) {
  int64_t bound;
  klevdb_err rc = klevdb_next_offset(db, &bound);
  if (rc) return rc;
  keytab kt = {0};
  for (int64_t cur = KLEVDB_OFFSET_OLDEST; cur < bound;) {
    int stuck;
    if ((rc = scan_step(db, &cur, b, &stuck, 0, p))) goto done;
    for (size_t i = 0; i < b->len; i++) {
      const klevdb_msg *m = &b->msgs[i];
      if (time_after(m->time, before)) goto done;
      kslot *s;
      int found;
      if ((rc = keytab_upsert(&kt, m->key, m->key_len, &s, &found))) goto done;
      if (deletes) {
        /* Only a tombstone that is the oldest record of its key can go: an
        ** older value would otherwise resurface. */
        if (!found && m->value_len == 0 && (rc = offvec_push(out, m->offset))) goto done;
      } else {
        /* An older version of this key in the window is superseded. */
        if (found && (rc = offvec_push(out, s->offset))) goto done;
        s->offset = m->offset;
      }
    }
    if (stuck) break;
  }
done:
  keytab_free(&kt);
  return rc;
}

/* Runs a finder; the result is sorted and without duplicates (FindUpdates
** collects out of order; Go returns a set). */
static klevdb_err run_finder(klevdb *db, klevdb_find what, int64_t arg,
                             offvec *out, prog *p) {
  klevdb_batch b = KLEVDB_BATCH_INIT;
  klevdb_err rc;
  switch (what) {
  case KLEVDB_FIND_OFFSET: rc = find_by_offset(db, arg, &b, out, p); break;
  case KLEVDB_FIND_COUNT:
    rc = arg < 0 ? kdb_fail(db, KLEVDB_EINVAL, "trim by count: keep must be 0 or more, got %lld", (long long)arg)
                 : find_by_count(db, arg, &b, out, p);
    break;
  case KLEVDB_FIND_SIZE:
    rc = arg < 0 ? kdb_fail(db, KLEVDB_EINVAL, "trim by size: size must be 0 or more, got %lld", (long long)arg)
                 : find_by_size(db, arg, &b, out, p);
    break;
  case KLEVDB_FIND_AGE: rc = find_by_age(db, arg, &b, out, p); break;
  case KLEVDB_FIND_UPDATES: rc = find_by_key(db, arg, false, &b, out, p); break;
  case KLEVDB_FIND_DELETES: rc = find_by_key(db, arg, true, &b, out, p); break;
  default: rc = kdb_fail(db, KLEVDB_EINVAL, "find: unknown finder %d", (int)what); break;
  }
  klevdb_batch_free(&b);
  if (rc) return rc;
  bool sorted = true;   /* all finders but FindUpdates find in order */
  for (size_t i = 1; i < out->len && sorted; i++) sorted = out->v[i - 1] < out->v[i];
  if (!sorted) {
    qsort(out->v, out->len, sizeof(out->v[0]), cmp_i64);
    size_t k = 1;
    for (size_t i = 1; i < out->len; i++)
      if (out->v[i] != out->v[k - 1]) out->v[k++] = out->v[i];
    out->len = k;
  }
  return KLEVDB_OK;
}

/* The finders' own allocations fail with the bare code; the handle's
** message says it too. */
static klevdb_err nomem_said(klevdb *db, klevdb_err rc) {
  if (rc == KLEVDB_ENOMEM && klevdb_errcode(db) != KLEVDB_ENOMEM)
    return kdb_fail(db, rc, "retention: out of memory");
  return rc;
}

klevdb_err klevdb_find_offsets(klevdb *db, klevdb_find what, int64_t arg,
                               int64_t **offsets, size_t *n) {
  if (!db) return KLEVDB_EINVAL;
  if (!offsets || !n) return kdb_fail(db, KLEVDB_EINVAL, "find: no place for the result");
  *offsets = NULL;
  *n = 0;
  offvec o = {0};
  prog p;
  klevdb_batch b = KLEVDB_BATCH_INIT;
  prog_init(db, &p, false, &b);
  klevdb_batch_free(&b);
  klevdb_err rc = run_finder(db, what, arg, &o, &p);
  if (rc) {
    free(o.v);
    return nomem_said(db, rc);
  }
  prog_at(&p, p.total);
  *offsets = o.v;
  *n = o.len;
  return KLEVDB_OK;
}

/* Finder + Go's DeleteMulti: every found offset goes, in all segments. The
** sorted offsets become runs [from, to) so one delete call covers them. */
static klevdb_err find_and_delete(klevdb *db, klevdb_find what, int64_t arg,
                                  klevdb_deleted *out) {
  if (!db) return KLEVDB_EINVAL;
  klevdb_deleted del = {0, 0};
  offvec o = {0};
  klevdb_range *ranges = NULL;
  prog p;
  klevdb_batch b = KLEVDB_BATCH_INIT;
  prog_init(db, &p, true, &b);
  klevdb_batch_free(&b);
  klevdb_err rc = run_finder(db, what, arg, &o, &p);
  prog_at(&p, p.span);
  if (rc || o.len == 0) goto done;
  /* Worst case one range per offset. */
  ranges = malloc(o.len * sizeof(*ranges));
  if (!ranges) {
    rc = KLEVDB_ENOMEM;
    goto done;
  }
  size_t nr = 0;
  for (size_t i = 0; i < o.len; i++) {
    if (nr && ranges[nr - 1].to == o.v[i])
      ranges[nr - 1].to++;
    else
      ranges[nr++] = (klevdb_range){o.v[i], o.v[i] + 1};
  }
  rc = klevdb_delete_ranges(db, ranges, nr, &del);
done:
  if (!rc) prog_at(&p, p.total);
  free(ranges);
  free(o.v);
  /* On a failed delete, whatever it reports as done is passed on, as Go's
  ** DeleteMulti returns what it deleted with the error. */
  if (out) *out = del;
  return nomem_said(db, rc);
}

klevdb_err klevdb_trim_by_offset(klevdb *db, int64_t before, klevdb_deleted *out) {
  /* What FindByOffset finds is every message below before: one range,
  ** which deletes whole segments without reading them. */
  if (!db) return KLEVDB_EINVAL;
  klevdb_deleted none = {0, 0};
  if (out) *out = none;
  if (before == KLEVDB_OFFSET_OLDEST || (before < 0 && before != KLEVDB_OFFSET_NEWEST))
    return KLEVDB_OK;
  int64_t next;
  klevdb_err rc = klevdb_next_offset(db, &next);
  if (rc) return rc;
  if (before == KLEVDB_OFFSET_NEWEST || before > next) before = next;
  if (before <= 0) return KLEVDB_OK;
  klevdb_range r = {0, before};
  /* No scan: the delete is all the work (see prog). */
  prog p;
  klevdb_batch b = KLEVDB_BATCH_INIT;
  prog_init(db, &p, true, &b);
  klevdb_batch_free(&b);
  prog_at(&p, p.span);
  rc = klevdb_delete_ranges(db, &r, 1, out ? out : &none);
  if (!rc) prog_at(&p, p.total);
  return rc;
}

klevdb_err klevdb_trim_by_count(klevdb *db, int64_t keep, klevdb_deleted *out) {
  return find_and_delete(db, KLEVDB_FIND_COUNT, keep, out);
}

klevdb_err klevdb_trim_by_size(klevdb *db, int64_t max_size, klevdb_deleted *out) {
  return find_and_delete(db, KLEVDB_FIND_SIZE, max_size, out);
}

klevdb_err klevdb_trim_by_age(klevdb *db, int64_t before_us, klevdb_deleted *out) {
  return find_and_delete(db, KLEVDB_FIND_AGE, before_us, out);
}

klevdb_err klevdb_compact_updates(klevdb *db, int64_t before_us, klevdb_deleted *out) {
  return find_and_delete(db, KLEVDB_FIND_UPDATES, before_us, out);
}

klevdb_err klevdb_compact_deletes(klevdb *db, int64_t before_us, klevdb_deleted *out) {
  return find_and_delete(db, KLEVDB_FIND_DELETES, before_us, out);
}
