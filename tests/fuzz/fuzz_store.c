/*
** fuzz_store.c - libFuzzer target for opening a store over arbitrary
** directory contents. The input is split into up to four files written
** into a fresh directory (under /dev/shm when it exists):
**
**   byte 0   flags: 1 key_index, 2 time_index, 4 two segments, 8 no index
**            file for segment 0, 16 new segments V1, 32 check at open,
**            64 recover at open, 128 migrate the directory at the end
**   byte 1   flags: 1 publish, 2 no index file for segment 1, 4 delete,
**            8 retention (trim/compact), 16 tiny rollover
**   2..9     base of segment 1 (big-endian int64; segment 0 has base 0)
**   then     for each file (log 0, index 0, log 1, index 1; only those the
**            flags ask for): a little-endian u16 length and that many bytes
**            (the last file takes whatever is left)
**
** Then: klevdb_dir_indexes, klevdb_dir_stat and klevdb_dir_check; a
** read-only and a read-write klevdb_open that consume everything forwards,
** backwards and as offsets, get by offset, key and time, and (read-write,
** by the flags) publish, delete and trim; klevdb_dir_recover and a
** read-only open of the result; klevdb_dir_migrate. Every key and value
** handed out is read in full, so a pointer outside the mapped files is an
** AddressSanitizer report. Properties: no memory error, leak or undefined
** behaviour; calls that fail return a known error class with a "klevdb: "
** message.
*/
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "kdb.h"

static char root[256];
static uint64_t sink_sum;

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb; (void)flag; (void)ftw;
  remove(p);
  return 0;
}
static void rm_rf(const char *p) { nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS); }
static void cleanup(void) {
  if (root[0]) rm_rf(root);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc; (void)argv;
  const char *base = fuzz_tmp_root();
  snprintf(root, sizeof(root), "%s/klevdb-fuzz-store-XXXXXX", base);
  if (!mkdtemp(root)) {
    perror("mkdtemp");
    exit(1);
  }
  atexit(cleanup);
  return 0;
}

static void check_err(klevdb_err rc, const char *msg) {
  FUZZ_CHECK(rc > KLEVDB_OK && rc <= KLEVDB_ETIMEOUT);
  FUZZ_CHECK(strncmp(msg, "klevdb: ", 8) == 0);
}

static void touch(const klevdb_msg *m) {
  uint64_t h = (uint64_t)m->offset ^ (uint64_t)m->time;
  for (size_t i = 0; i < m->key_len; i++) h = h * 31 + m->key[i];
  for (size_t i = 0; i < m->value_len; i++) h = h * 31 + m->value[i];
  sink_sum += h;
}

static void touch_batch(const klevdb_batch *b) {
  FUZZ_CHECK(b->len <= b->cap);
  for (size_t i = 0; i < b->len; i++) touch(&b->msgs[i]);
}

/* Reads the whole store every way the API offers. */
static void exercise(klevdb *db, int rw, uint8_t f1) {
  klevdb_batch b = KLEVDB_BATCH_INIT;
  klevdb_bounds bo;
  klevdb_stat st;
  int64_t next = 0, o, t;
  klevdb_err rc;
  uint8_t key[64];
  size_t klen = 0;
  int64_t some_time = 0, some_off = 0;

  if ((rc = klevdb_bounds_get(db, &bo))) check_err(rc, klevdb_errmsg(db));
  else some_off = bo.oldest_offset;
  if ((rc = klevdb_stat_get(db, &st))) check_err(rc, klevdb_errmsg(db));
  if ((rc = klevdb_next_offset(db, &next))) check_err(rc, klevdb_errmsg(db));

  /* Forwards, the way a consumer goes. */
  o = KLEVDB_OFFSET_OLDEST;
  for (int i = 0; i < 300; i++) {
    rc = klevdb_consume(db, o, 32, &b);
    if (rc) {
      check_err(rc, klevdb_errmsg(db));
      break;
    }
    touch_batch(&b);
    if (b.len && !klen && b.msgs[0].key_len) {
      klen = b.msgs[0].key_len < sizeof(key) ? b.msgs[0].key_len : sizeof(key);
      memcpy(key, b.msgs[0].key, klen);
      some_time = b.msgs[0].time;
      some_off = b.msgs[0].offset;
    }
    if (!b.len || (o >= 0 && b.next_offset <= o)) break;
    o = b.next_offset;
  }
  /* Backwards, and offsets only. */
  o = KLEVDB_OFFSET_NEWEST;
  for (int i = 0; i < 300; i++) {
    rc = klevdb_read(db, o, 32, KLEVDB_READ_BACKWARD, &b);
    if (rc) {
      check_err(rc, klevdb_errmsg(db));
      break;
    }
    touch_batch(&b);
    if (!b.len || (o >= 0 && b.next_offset >= o)) break;
    o = b.next_offset;
  }
  rc = klevdb_read(db, KLEVDB_OFFSET_OLDEST, 1000, KLEVDB_READ_OFFSETS, &b);
  if (rc) check_err(rc, klevdb_errmsg(db));
  else touch_batch(&b);
  rc = klevdb_read(db, KLEVDB_OFFSET_NEWEST, 1000, KLEVDB_READ_OFFSETS | KLEVDB_READ_BACKWARD, &b);
  if (rc) check_err(rc, klevdb_errmsg(db));

  /* Point reads. */
  int64_t offs[] = {some_off, some_off + 1, next - 1, next, 0, -5, INT64_MAX,
                    KLEVDB_OFFSET_OLDEST, KLEVDB_OFFSET_NEWEST};
  for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
    if ((rc = klevdb_get(db, offs[i], &b))) check_err(rc, klevdb_errmsg(db));
    else touch_batch(&b);
  }
  if ((rc = klevdb_get_by_key(db, key, klen, &b))) check_err(rc, klevdb_errmsg(db));
  else touch_batch(&b);
  if ((rc = klevdb_offset_by_key(db, "k", 1, &o))) check_err(rc, klevdb_errmsg(db));
  if ((rc = klevdb_consume_by_key(db, key, klen, KLEVDB_OFFSET_OLDEST, 16, &b)))
    check_err(rc, klevdb_errmsg(db));
  else touch_batch(&b);
  int64_t times[] = {INT64_MIN, 0, some_time, some_time + 1, INT64_MAX};
  for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
    if ((rc = klevdb_get_by_time(db, times[i], &b))) check_err(rc, klevdb_errmsg(db));
    else touch_batch(&b);
    if ((rc = klevdb_offset_by_time(db, times[i], &o, &t))) check_err(rc, klevdb_errmsg(db));
    if ((rc = klevdb_time_floor(db, times[i], &o))) check_err(rc, klevdb_errmsg(db));
  }
  for (int w = KLEVDB_FIND_OFFSET; w <= KLEVDB_FIND_DELETES; w++) {
    int64_t *found = NULL;
    size_t nf = 0;
    int64_t arg = w == KLEVDB_FIND_OFFSET ? some_off + 1 : w == KLEVDB_FIND_COUNT ? 1
                : w == KLEVDB_FIND_SIZE ? 100 : some_time;
    if ((rc = klevdb_find_offsets(db, (klevdb_find)w, arg, &found, &nf)))
      check_err(rc, klevdb_errmsg(db));
    free(found);
  }

  if (rw) {
    if (f1 & 1) {
      klevdb_msg m[2] = {{0, KLEVDB_TIME_UNSET, (const uint8_t *)"k", 1,
                          (const uint8_t *)"v", 1},
                         {0, some_time, key, klen, NULL, 0}};
      if ((rc = klevdb_publish(db, m, 2, &next))) check_err(rc, klevdb_errmsg(db));
      if ((rc = klevdb_get_by_key(db, "k", 1, &b))) check_err(rc, klevdb_errmsg(db));
      else touch_batch(&b);
    }
    if (f1 & 4) {
      int64_t d[2] = {some_off, some_off + 1}, *gone = NULL;
      klevdb_deleted del;
      if ((rc = klevdb_delete(db, d, 2, &del, &gone))) check_err(rc, klevdb_errmsg(db));
      free(gone);
      klevdb_range r = {some_off + 2, some_off + 4};
      if ((rc = klevdb_delete_ranges(db, &r, 1, &del))) check_err(rc, klevdb_errmsg(db));
    }
    if (f1 & 8) {
      klevdb_deleted del;
      if ((rc = klevdb_compact_updates(db, some_time, &del))) check_err(rc, klevdb_errmsg(db));
      if ((rc = klevdb_compact_deletes(db, some_time, &del))) check_err(rc, klevdb_errmsg(db));
      if ((rc = klevdb_trim_by_count(db, 3, &del))) check_err(rc, klevdb_errmsg(db));
    }
    if ((rc = klevdb_sync(db, &next))) check_err(rc, klevdb_errmsg(db));
    /* Read again after the writes. */
    if ((rc = klevdb_consume(db, KLEVDB_OFFSET_OLDEST, 64, &b))) check_err(rc, klevdb_errmsg(db));
    else touch_batch(&b);
  }
  if ((rc = klevdb_gc(db, 0))) check_err(rc, klevdb_errmsg(db));
  klevdb_batch_free(&b);
}

static int write_file(const char *path, const uint8_t *p, size_t n) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  int r = write_full(fd, p, n);
  close(fd);
  return r ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz in = {data, size, 0};
  uint8_t f0 = fz_u8(&in), f1 = fz_u8(&in);
  int64_t base1 = (int64_t)fz_u64(&in);
  bool two = f0 & 4;
  if (two && base1 == 0) base1 = 1;

  char dir[300], path[400];
  snprintf(dir, sizeof(dir), "%s/s", root);
  rm_rf(dir);
  if (mkdir(dir, 0700) < 0) {
    perror("mkdir");
    abort();
  }

  /* Which files there are, in input order. */
  struct { int64_t base; const char *ext; bool on; } files[4] = {
    {0, ".log", true},
    {0, ".index", !(f0 & 8)},
    {base1, ".log", two},
    {base1, ".index", two && !(f1 & 2)},
  };
  int last = -1;
  for (int k = 0; k < 4; k++) if (files[k].on) last = k;
  for (int k = 0; k < 4; k++) {
    if (!files[k].on) continue;
    size_t want = k == last ? size : fz_u16(&in), got;
    const uint8_t *p = fz_take(&in, want, &got);
    seg_path(path, sizeof(path), dir, files[k].base, files[k].ext);
    if (write_file(path, p, got) < 0) {
      perror("write");
      abort();
    }
  }

  klevdb_options o = {0};
  o.key_index = f0 & 1;
  o.time_index = (f0 >> 1) & 1;
  o.new_segments_version = (f0 & 16) ? KLEVDB_V1 : KLEVDB_V2;
  o.check = (f0 >> 5) & 1;
  o.recover = (f0 >> 6) & 1;
  o.rollover = (f1 & 16) ? 64 : 0;

  klevdb_error e;
  klevdb_stat st;
  klevdb_err rc;
  int ki, ti;
  klevdb_dir_indexes(dir, &ki, &ti);
  FUZZ_CHECK((ki == 0 || ki == 1) && (ti == 0 || ti == 1));
  if ((rc = klevdb_dir_stat(dir, &o, &st, &e))) check_err(rc, e.msg);
  if ((rc = klevdb_dir_check(dir, &o, &e))) check_err(rc, e.msg);

  klevdb *db = NULL;
  klevdb_options ro = o;
  ro.readonly = 1;
  if ((rc = klevdb_open(dir, &ro, &db, &e)) == KLEVDB_OK) {
    exercise(db, 0, f1);
    klevdb_close(db);
  } else {
    check_err(rc, e.msg);
  }

  if ((rc = klevdb_open(dir, &o, &db, &e)) == KLEVDB_OK) {
    exercise(db, 1, f1);
    if ((rc = klevdb_close(db))) check_err(rc, "klevdb: close");
  } else {
    check_err(rc, e.msg);
  }

  if ((rc = klevdb_dir_recover(dir, &o, &e))) {
    check_err(rc, e.msg);
  } else if ((rc = klevdb_open(dir, &ro, &db, &e)) == KLEVDB_OK) {
    exercise(db, 0, f1);
    klevdb_close(db);
  } else {
    check_err(rc, e.msg);
  }

  if (f0 & 128) {
    klevdb_format to = (f1 & 32) ? KLEVDB_V1 : KLEVDB_V2;
    if ((rc = klevdb_dir_migrate(dir, &o, to, &e))) check_err(rc, e.msg);
  }
  rm_rf(dir);
  return 0;
}
