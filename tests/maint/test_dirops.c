/*
** test_dirops.c - Check, Stat, Backup and Migrate of whole directories
** against the Go fixtures (Go's Check, Stat, Backup, Migrate), and a mutation run that
** feeds damaged files to every helper.
*/
#include <sys/file.h>
#include <time.h>

#include "util.h"

#define TK (IDX_TIMES | IDX_KEYS)

static const klevdb_options OPTS_TK = {.key_index = 1, .time_index = 1};

static void test_check_fixtures(void) {
  const char *names[] = {"v2-basic", "v2-multiseg", "v1-basic"};
  klevdb_error err;
  for (int i = 0; i < 3; i++) {
    char *dir = fixture_copy(names[i], "store");
    fprintf(stderr, "-- check %s\n", names[i]);
    CHECK_RC(klevdb_dir_check(dir, &OPTS_TK, &err), KLEVDB_OK, err);
    rm_rf(dir);
  }

  char *dir = fixture_copy("v2-basic", "store");
  klevdb_options o = {.key_index = 1};
  CHECK_RC(klevdb_dir_check(dir, &o, &err), KLEVDB_ECORRUPT_INDEX, err);
  CHECK_CONTAINS(err.msg, "klevdb: check 0: ");
  CHECK_CONTAINS(err.msg, "times index mismatch");
  o = (klevdb_options){.time_index = 1};
  CHECK_RC(klevdb_dir_check(dir, &o, &err), KLEVDB_ECORRUPT_INDEX, err);
  CHECK_CONTAINS(err.msg, "keys index mismatch");
  CHECK_RC(klevdb_dir_check(dir, NULL, &err), KLEVDB_ECORRUPT_INDEX, err);
  CHECK_CONTAINS(err.msg, "times index mismatch");
  CHECK_RC(klevdb_dir_check(dir, NULL, NULL), KLEVDB_ECORRUPT_INDEX, err);
  rm_rf(dir);

  /* A V1 index cannot tell its params: 16-byte items line up, the items
  ** differ (meta.json: "check 990: index corrupted"). */
  dir = fixture_copy("v1-basic", "store");
  CHECK_RC(klevdb_dir_check(dir, NULL, &err), KLEVDB_ECORRUPT_INDEX, err);
  CHECK_CONTAINS(err.msg, "klevdb: check 990: index corrupted");
  o = (klevdb_options){.time_index = 1};
  CHECK_RC(klevdb_dir_check(dir, &o, &err), KLEVDB_ECORRUPT_INDEX, err);
  CHECK_CONTAINS(err.msg, "unaligned index size");
  rm_rf(dir);
}

static void test_stat(void) {
  static const struct {
    const char *name;
    int64_t segments, messages, size;
  } want[] = {
      {"v2-basic", 1, 10, 1070},
      {"v2-multiseg", 13, 5000, 1030208},
      {"v1-basic", 11, 1000, 198000},
      {"v2-torn", 3, 300, 61838},
  };
  klevdb_error err;
  klevdb_stat st;
  for (int i = 0; i < 4; i++) {
    char *dir = fixture_copy(want[i].name, "store");
    fprintf(stderr, "-- stat %s\n", want[i].name);
    CHECK_RC(klevdb_dir_stat(dir, &OPTS_TK, &st, &err), KLEVDB_OK, err);
    CHECK_EQ(st.segments, want[i].segments);
    CHECK_EQ(st.messages, want[i].messages);
    CHECK_EQ(st.size, want[i].size);
    rm_rf(dir);
  }

  /* Go's mismatched_options answers: V2 reports the header, V1 counts
  ** size / S without an alignment check. */
  char *dir = fixture_copy("v2-basic", "store");
  klevdb_options o = {.key_index = 1};
  CHECK_RC(klevdb_dir_stat(dir, &o, &st, &err), KLEVDB_ECORRUPT_INDEX, err);
  CHECK_CONTAINS(err.msg, "klevdb: stat 0: ");
  CHECK_CONTAINS(err.msg, "times index mismatch");
  rm_rf(dir);
  dir = fixture_copy("v1-basic", "store");
  CHECK_RC(klevdb_dir_stat(dir, NULL, &st, &err), KLEVDB_OK, err);
  CHECK_EQ(st.messages, 2000);
  o = (klevdb_options){.time_index = 1};
  CHECK_RC(klevdb_dir_stat(dir, &o, &st, &err), KLEVDB_OK, err);
  CHECK_EQ(st.segments, 11);
  CHECK_EQ(st.messages, 1333);
  CHECK_EQ(st.size, 198000);
  /* A missing index fails Stat. */
  unlink(pj(dir, segname(99, ".index")));
  CHECK_RC(klevdb_dir_stat(dir, &OPTS_TK, &st, &err), KLEVDB_EIO, err);
  CHECK_CONTAINS(err.msg, "klevdb: stat 99: ");
  /* Missing and empty dirs. */
  CHECK_RC(klevdb_dir_stat(pj(dir, "missing"), &OPTS_TK, &st, &err), KLEVDB_OK, err);
  CHECK(st.segments == 0 && st.messages == 0 && st.size == 0);
  rm_rf(dir);
  dir = tmpdir();
  CHECK_RC(klevdb_dir_stat(dir, &OPTS_TK, &st, NULL), KLEVDB_OK, err);
  CHECK(st.segments == 0 && st.messages == 0 && st.size == 0);
  /* Header-only V2 index and a 3-byte index. */
  uint8_t h[8];
  log_header(h);
  spit(pj(dir, segname(0, ".log")), h, 8);
  index_header(h, TK);
  spit(pj(dir, segname(0, ".index")), h, 8);
  CHECK_RC(klevdb_dir_stat(dir, &OPTS_TK, &st, &err), KLEVDB_OK, err);
  CHECK(st.segments == 1 && st.messages == 0 && st.size == 16);
  spit(pj(dir, segname(0, ".index")), h, 3);
  CHECK_RC(klevdb_dir_stat(dir, &OPTS_TK, &st, &err), KLEVDB_ECORRUPT_INDEX, err);
  rm_rf(dir);
}

static int same_times(const struct stat *a, const struct stat *b) {
  return a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Every segment file of src is in dst with the same bytes and mtime. */
static int backup_matches(const char *src, const char *dst) {
  DIR *d = opendir(src);
  if (!d) return 0;
  int ok = 1;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.') continue;
    struct stat a, b;
    if (!same_file(pj(src, de->d_name), pj(dst, de->d_name))) ok = 0;
    if (stat(pj(src, de->d_name), &a) || stat(pj(dst, de->d_name), &b) ||
        !same_times(&a, &b) || (b.st_mode & 0777) != 0600) {
      fprintf(stderr, "  times/mode differ: %s\n", de->d_name);
      ok = 0;
    }
  }
  closedir(d);
  return ok;
}

/* Names, sizes and mtimes of dir's entries, for "left as it was". */
static void dir_sig(const char *dir, char *out, size_t cap) {
  DIR *d = opendir(dir);
  size_t n = 0;
  out[0] = 0;
  if (!d) return;
  struct dirent *de;
  while ((de = readdir(d)) != NULL && n < cap) {
    struct stat st;
    if (stat(pj(dir, de->d_name), &st) < 0) continue;
    n += (size_t)snprintf(out + n, cap - n, "%s:%lld:%lld.%ld;", de->d_name,
                          (long long)st.st_size, (long long)st.st_mtim.tv_sec,
                          st.st_mtim.tv_nsec);
  }
  closedir(d);
}

/* Tries to open a writer in dir from a backup's progress callback. */
typedef struct {
  const char *dir;
  klevdb_err got;
  int calls;
} writer_probe;

static void try_writer(void *arg, int64_t done, int64_t total) {
  writer_probe *p = arg;
  (void)total;
  if (p->calls++ == 0 || done != 1) return;
  klevdb_options o = {.key_index = 1, .time_index = 1};
  klevdb *w;
  p->got = klevdb_open(p->dir, &o, &w, NULL);
  if (p->got == KLEVDB_OK) klevdb_close(w);
}

static void test_backup(void) {
  klevdb_error err;
  char *src = fixture_copy("v2-multiseg", "store");
  char *top = tmpdir();
  char dst[4096];
  snprintf(dst, sizeof(dst), "%s/a/b/backup", top);
  CHECK_RC(klevdb_dir_backup(src, dst, &err), KLEVDB_OK, err);
  CHECK(backup_matches(src, dst));
  /* The destination's lock, held during the copy so that no writer could
  ** start there, stays (as in any store a writer opened); no temps. */
  CHECK_EQ(count_suffix(dst, ""), 27);
  CHECK(exists(pj(dst, ".lock")));
  struct stat st;
  CHECK(stat(dst, &st) == 0 && (st.st_mode & 0777) == 0700);
  CHECK(stat(pj(top, "a"), &st) == 0 && (st.st_mode & 0777) == 0700);

  /* A second backup into a store (even an earlier backup of this one) is
  ** refused, and nothing there is touched: two stores never mix. */
  char before[8192], after[8192];
  dir_sig(dst, before, sizeof(before));
  struct timespec nap = {0, 30 * 1000 * 1000};
  nanosleep(&nap, NULL);
  CHECK_RC(klevdb_dir_backup(src, dst, &err), KLEVDB_EINVAL, err);
  CHECK_CONTAINS(err.msg, "is not empty");
  dir_sig(dst, after, sizeof(after));
  CHECK(strcmp(before, after) == 0);
  CHECK(backup_matches(src, dst));

  /* Any other non-empty directory too. */
  char other[4096];
  snprintf(other, sizeof(other), "%s/other", top);
  mkdir(other, 0700);
  spit(pj(other, "notes.txt"), "mine", 4);
  CHECK_RC(klevdb_dir_backup(src, other, &err), KLEVDB_EINVAL, err);
  CHECK_EQ(count_suffix(other, ""), 1);

  /* An empty directory, or one with only a lock file, is fine. */
  char empty[4096];
  snprintf(empty, sizeof(empty), "%s/empty", top);
  mkdir(empty, 0700);
  CHECK_RC(klevdb_dir_backup(src, empty, &err), KLEVDB_OK, err);
  CHECK(backup_matches(src, empty));
  char lonely[4096];
  snprintf(lonely, sizeof(lonely), "%s/lonely", top);
  mkdir(lonely, 0700);
  spit(pj(lonely, ".lock"), "", 0);
  CHECK_RC(klevdb_dir_backup(src, lonely, &err), KLEVDB_OK, err);
  CHECK(backup_matches(src, lonely));

  /* Into the store itself or a folder inside it (however spelled): refused
  ** before anything is created there. */
  int nsrc = count_suffix(src, "");
  CHECK_RC(klevdb_dir_backup(src, pj(src, "."), &err), KLEVDB_EINVAL, err);
  CHECK_CONTAINS(err.msg, "same directory");
  CHECK_RC(klevdb_dir_backup(src, pj(src, "new/deeper"), &err), KLEVDB_EINVAL, err);
  CHECK_CONTAINS(err.msg, "is inside the store");
  /* Through a folder that does not exist yet and back up. */
  char parent[4096], sneaky[8300];
  snprintf(parent, sizeof(parent), "%s", src);
  *strrchr(parent, '/') = 0;
  snprintf(sneaky, sizeof(sneaky), "%s/missing/../%s/sub", parent, strrchr(src, '/') + 1);
  CHECK_RC(klevdb_dir_backup(src, sneaky, &err), KLEVDB_EINVAL, err);
  CHECK_CONTAINS(err.msg, "is inside the store");
  CHECK_EQ(count_suffix(src, ""), nsrc);
  CHECK(!exists(pj(src, "new")) && !exists(pj(src, "sub")));

  /* A destination a writer holds is refused, even an empty store. */
  char held[4096];
  snprintf(held, sizeof(held), "%s/held", top);
  klevdb_options wo = {.create_dirs = 1, .key_index = 1, .time_index = 1};
  klevdb *w;
  CHECK_RC(klevdb_open(held, &wo, &w, &err), KLEVDB_OK, err);
  char hb[8192], ha[8192];
  dir_sig(held, hb, sizeof(hb));
  CHECK_RC(klevdb_dir_backup(src, held, &err), KLEVDB_ELOCKED, err);
  CHECK_CONTAINS(err.msg, "is locked: a store is open there");
  dir_sig(held, ha, sizeof(ha));
  CHECK(strcmp(hb, ha) == 0);
  klevdb_close(w);
  /* ... and one a reader holds as Go's readers do (a shared flock). */
  char shared[4096];
  snprintf(shared, sizeof(shared), "%s/shared", top);
  mkdir(shared, 0700);
  int sfd = open(pj(shared, ".lock"), O_CREAT | O_RDONLY | O_CLOEXEC, 0600);
  CHECK(sfd >= 0 && flock(sfd, LOCK_SH | LOCK_NB) == 0);
  CHECK_RC(klevdb_dir_backup(src, shared, &err), KLEVDB_ELOCKED, err);
  CHECK_EQ(count_suffix(shared, ""), 1);
  close(sfd);

  /* While a backup runs, no writer can start in its destination (tried
  ** from the progress callback, in the middle of the copy). */
  {
    char during[4096];
    snprintf(during, sizeof(during), "%s/during", top);
    writer_probe p = {during, KLEVDB_OK, 0};
    klevdb_options ro = {.readonly = 1, .key_index = 1, .time_index = 1,
                         .progress = try_writer, .progress_arg = &p};
    klevdb *r;
    CHECK_RC(klevdb_open(src, &ro, &r, &err), KLEVDB_OK, err);
    CHECK_RC(klevdb_backup(r, p.dir), KLEVDB_OK, err);
    CHECK(p.calls > 2);
    CHECK_EQ(p.got, KLEVDB_ELOCKED);
    CHECK(backup_matches(src, p.dir));
    /* Afterwards it is an ordinary store. */
    klevdb *w;
    klevdb_options wo2 = {.key_index = 1, .time_index = 1};
    CHECK_RC(klevdb_open(p.dir, &wo2, &w, &err), KLEVDB_OK, err);
    int64_t next = 0;
    CHECK_EQ(klevdb_next_offset(w, &next), KLEVDB_OK);
    CHECK_EQ(next, 5000);
    klevdb_close(w);
    /* The handle's backup refuses what the directory-level one does. */
    CHECK_EQ(klevdb_backup(r, p.dir), KLEVDB_EINVAL);
    CHECK_CONTAINS(klevdb_errmsg(r), "is not empty");
    CHECK_EQ(klevdb_backup(r, pj(src, "in")), KLEVDB_EINVAL);
    CHECK_CONTAINS(klevdb_errmsg(r), "is inside the store");
    CHECK(!exists(pj(src, "in")));
    klevdb_close(r);
  }

  /* A missing index fails the backup. */
  unlink(pj(src, segname(400, ".index")));
  char fresh[4096];
  snprintf(fresh, sizeof(fresh), "%s/fresh", top);
  CHECK_RC(klevdb_dir_backup(src, fresh, &err), KLEVDB_EIO, err);
  CHECK_CONTAINS(err.msg, "klevdb: backup 400: ");

  /* Missing source: success, nothing created. */
  const char *nodst = pj(top, "never");
  CHECK_RC(klevdb_dir_backup(pj(top, "no-such-src"), nodst, &err), KLEVDB_OK, err);
  CHECK(!exists(nodst));
  CHECK_RC(klevdb_dir_backup(pj(top, "no-such-src"), nodst, NULL), KLEVDB_OK, err);
  rm_rf(src);
  rm_rf(top);
}

static void test_file_copy(void) {
  klevdb_error err;
  char *dir = tmpdir();
  spit(pj(dir, "a"), "hello", 5);
  CHECK_RC(file_copy(pj(dir, "a"), pj(dir, "b"), &err), KLEVDB_OK, err);
  CHECK(same_file(pj(dir, "a"), pj(dir, "b")));
  spit(pj(dir, "e"), "", 0);
  CHECK_RC(file_copy(pj(dir, "e"), pj(dir, "f"), &err), KLEVDB_OK, err);
  CHECK_EQ(fsize(pj(dir, "f")), 0);
  CHECK_RC(file_copy(pj(dir, "missing"), pj(dir, "g"), &err), KLEVDB_EIO, err);
  CHECK(!exists(pj(dir, "g")));
  rm_rf(dir);
}

/* Every record of two stores' logs is the same message. */
static void same_records(const char *a, const char *b, int64_t base, int wa, int wb) {
  recs ra, rb;
  CHECK_EQ(recs_load(pj(a, segname(base, ".log")), base, &ra), wa);
  CHECK_EQ(recs_load(pj(b, segname(base, ".log")), base, &rb), wb);
  CHECK_EQ(ra.n, rb.n);
  int same = ra.n == rb.n;
  for (size_t i = 0; same && i < ra.n; i++) same = msg_equal(&ra.m[i], &rb.m[i]);
  CHECK(same);
  recs_free(&ra);
  recs_free(&rb);
}

static void test_migrate(void) {
  klevdb_error err;
  char *dir = fixture_copy("v1-basic", "store");
  char orig[4096];
  snprintf(orig, sizeof(orig), "%s/v1-basic/store", fixtures);
  const char *stale = pj(dir, segname(99, ".log.migrate"));
  spit(stale, "stale garbage", 13);
  CHECK_RC(klevdb_dir_migrate(dir, &OPTS_TK, KLEVDB_V2, &err), KLEVDB_OK, err);
  CHECK(!exists(stale));
  CHECK_EQ(count_suffix(dir, ".migrate"), 0);
  CHECK_EQ(count_suffix(dir, ".tmp"), 0);
  int64_t *bases;
  size_t n;
  CHECK_RC(dir_segments(dir, 0, &bases, &n, &err), KLEVDB_OK, err);
  CHECK_EQ(n, 11);
  uint8_t lh[8], ih[8];
  log_header(lh);
  index_header(ih, TK);
  for (size_t i = 0; i < n; i++) {
    size_t l;
    uint8_t *p = slurp(pj(dir, segname(bases[i], ".log")), &l);
    CHECK(p && l >= 8 && memcmp(p, lh, 8) == 0);
    free(p);
    p = slurp(pj(dir, segname(bases[i], ".index")), &l);
    CHECK(p && l >= 8 && memcmp(p, ih, 8) == 0);
    free(p);
    CHECK_RC(seg_check(dir, bases[i], TK, false, &err), KLEVDB_OK, err);
    same_records(orig, dir, bases[i], FMT_V1, FMT_V2);
  }
  CHECK_RC(klevdb_dir_check(dir, &OPTS_TK, &err), KLEVDB_OK, err);
  klevdb_stat st;
  CHECK_RC(klevdb_dir_stat(dir, &OPTS_TK, &st, &err), KLEVDB_OK, err);
  /* Each segment gains two headers, each record a trailer. */
  CHECK_EQ(st.segments, 11);
  CHECK_EQ(st.messages, 1000);
  CHECK_EQ(st.size, 198000 + 11 * 16 + 1000 * 8);

  /* V2 -> V2 is a no-op: same files, same inodes. */
  struct stat before[32], after;
  for (size_t i = 0; i < n && i < 16; i++) {
    stat(pj(dir, segname(bases[i], ".log")), &before[2 * i]);
    stat(pj(dir, segname(bases[i], ".index")), &before[2 * i + 1]);
  }
  CHECK_RC(klevdb_dir_migrate(dir, &OPTS_TK, KLEVDB_V2, &err), KLEVDB_OK, err);
  for (size_t i = 0; i < n && i < 16; i++) {
    stat(pj(dir, segname(bases[i], ".log")), &after);
    CHECK_EQ(after.st_ino, before[2 * i].st_ino);
    CHECK(same_times(&after, &before[2 * i]));
    stat(pj(dir, segname(bases[i], ".index")), &after);
    CHECK_EQ(after.st_ino, before[2 * i + 1].st_ino);
  }
  /* ... even with other params: the index is not looked at. */
  CHECK_RC(klevdb_dir_migrate(dir, NULL, KLEVDB_V2, &err), KLEVDB_OK, err);
  CHECK_RC(klevdb_dir_check(dir, &OPTS_TK, &err), KLEVDB_OK, err);

  /* And back to V1: the Go V1 files again, byte for byte. */
  CHECK_RC(klevdb_dir_migrate(dir, &OPTS_TK, KLEVDB_V1, &err), KLEVDB_OK, err);
  for (size_t i = 0; i < n; i++) {
    CHECK(same_file(pj(orig, segname(bases[i], ".log")), pj(dir, segname(bases[i], ".log"))));
    CHECK(same_file(pj(orig, segname(bases[i], ".index")),
                    pj(dir, segname(bases[i], ".index"))));
  }
  free(bases);

  CHECK_RC(klevdb_dir_migrate(dir, &OPTS_TK, KLEVDB_VERSION_DEFAULT, &err), KLEVDB_EINVAL, err);
  CHECK_CONTAINS(err.msg, "klevdb: migrate: version must be specified");
  CHECK_RC(klevdb_dir_migrate(dir, &OPTS_TK, (klevdb_format)3, &err), KLEVDB_EINVAL, err);
  CHECK_RC(klevdb_dir_migrate(dir, &OPTS_TK, KLEVDB_VERSION_DEFAULT, NULL), KLEVDB_EINVAL, err);
  CHECK_RC(klevdb_dir_migrate(pj(dir, "missing"), &OPTS_TK, KLEVDB_V2, &err), KLEVDB_OK, err);
  rm_rf(dir);

  /* V2 -> V1 -> V2 gives Go's V2 files back. */
  dir = fixture_copy("v2-basic", "store");
  snprintf(orig, sizeof(orig), "%s/v2-basic/store", fixtures);
  CHECK_RC(klevdb_dir_migrate(dir, &OPTS_TK, KLEVDB_V1, &err), KLEVDB_OK, err);
  CHECK_EQ(fsize(pj(dir, segname(0, ".log"))), 742 - 8 - 10 * 8);
  CHECK_EQ(fsize(pj(dir, segname(0, ".index"))), 328 - 8);
  CHECK_RC(klevdb_dir_check(dir, &OPTS_TK, &err), KLEVDB_OK, err);
  same_records(orig, dir, 0, FMT_V2, FMT_V1);
  CHECK_RC(klevdb_dir_migrate(dir, &OPTS_TK, KLEVDB_V2, &err), KLEVDB_OK, err);
  CHECK(same_dir(orig, dir));
  rm_rf(dir);

  /* A corrupt record fails the migration and leaves the segment alone. */
  dir = fixture_copy("v2-torn", "store");
  snprintf(orig, sizeof(orig), "%s/v2-torn/store", fixtures);
  CHECK_RC(klevdb_dir_migrate(dir, &OPTS_TK, KLEVDB_V1, &err), KLEVDB_ECORRUPT_LOG, err);
  CHECK_CONTAINS(err.msg, "klevdb: migrate 200: log corrupted: short data");
  CHECK(same_file(pj(orig, segname(200, ".log")), pj(dir, segname(200, ".log"))));
  CHECK(same_file(pj(orig, segname(200, ".index")), pj(dir, segname(200, ".index"))));
  CHECK_EQ(count_suffix(dir, ".migrate"), 0);
  rm_rf(dir);

  /* An empty V1 log becomes a header-only V2 segment. */
  dir = tmpdir();
  spit(pj(dir, segname(0, ".log")), "", 0);
  CHECK_RC(klevdb_dir_migrate(dir, &OPTS_TK, KLEVDB_V2, &err), KLEVDB_OK, err);
  CHECK_EQ(fsize(pj(dir, segname(0, ".log"))), 8);
  CHECK_EQ(fsize(pj(dir, segname(0, ".index"))), 8);
  rm_rf(dir);
}

/* Damaged files of every kind: the helpers may fail but must not crash
** (ASan/UBSan builds check the memory accesses). */
static void test_mutations(void) {
  klevdb_error err;
  rawseg s;
  uint32_t seed = 12345;
  int done = 0;
  for (int round = 0; round < 400; round++) {
    int ver = round % 2 ? FMT_V2 : FMT_V1;
    rawseg_build(&s, ver, (round / 2) % 2 ? FMT_V2 : FMT_V1, TK, 0, 4, 1000);
    kbuf *target = round % 3 ? &s.log : &s.idx;
    int flips = 1 + (int)(seed % 4);
    for (int f = 0; f < flips && target->len; f++) {
      seed = seed * 1103515245u + 12345u;
      size_t at = (seed >> 8) % target->len;
      seed = seed * 1103515245u + 12345u;
      /* Length fields get large or negative values now and then. */
      target->p[at] = (uint8_t)(seed >> 16);
    }
    seed = seed * 1103515245u + 12345u;
    size_t keep = round % 5 == 0 ? (seed >> 8) % (target->len + 1) : target->len;
    char *dir = tmpdir();
    spit(pj(dir, segname(0, ".log")), s.log.p, target == &s.log ? keep : s.log.len);
    spit(pj(dir, segname(0, ".index")), s.idx.p, target == &s.idx ? keep : s.idx.len);
    klevdb_stat st;
    (void)klevdb_dir_check(dir, &OPTS_TK, &err);
    (void)klevdb_dir_stat(dir, &OPTS_TK, &st, &err);
    (void)klevdb_dir_migrate(dir, &OPTS_TK, ver == FMT_V1 ? KLEVDB_V2 : KLEVDB_V1, &err);
    klevdb_err rc = klevdb_dir_recover(dir, &OPTS_TK, &err);
    if (rc == KLEVDB_OK) {
      /* What Recover accepts, Check accepts. */
      CHECK_RC(klevdb_dir_check(dir, &OPTS_TK, &err), KLEVDB_OK, err);
      done++;
    } else {
      CHECK(strncmp(err.msg, "klevdb: ", 8) == 0);
    }
    rawseg_free(&s);
    rm_rf(dir);
  }
  CHECK(done > 0);
}

/* Check on a store a writer has open: its head has zeroed room allocated
** ahead and an index written behind, which are not damage; a damaged record
** still is. Once the writer is gone the same zero tail is a torn tail. */
static void test_check_live(void) {
  char *dir = tmpdir();
  klevdb_options o = OPTS_TK;
  o.create_dirs = 1;
  o.preallocate = 1;   /* the layout with room ahead */
  klevdb *db;
  klevdb_error err;
  CHECK_RC(klevdb_open(dir, &o, &db, &err), KLEVDB_OK, err);
  uint8_t v[100];
  memset(v, 'v', sizeof v);
  for (int i = 0; i < 50; i++) {
    klevdb_msg m = {.key = (const uint8_t *)"key", .key_len = 3, .value = v, .value_len = sizeof v,
                    .time = KLEVDB_TIME_UNSET};
    CHECK(klevdb_publish(db, &m, 1, NULL) == KLEVDB_OK);
  }
  const char *log = pj(dir, segname(0, ".log"));
  size_t len;
  uint8_t *data = slurp(log, &len);
  CHECK(data && len > 8 + 50 * 136 && data[len - 1] == 0);   /* room ahead, zeroed */
  CHECK_RC(klevdb_dir_check(dir, &o, &err), KLEVDB_OK, err);
  /* A flipped byte inside a record is damage, writer or not. */
  int fd = open(log, O_WRONLY);
  uint8_t x = 'w';
  CHECK(fd >= 0 && pwrite(fd, &x, 1, 8 + 28 + 3 + 10) == 1);
  close(fd);
  CHECK_RC(klevdb_dir_check(dir, &o, &err), KLEVDB_ECORRUPT_LOG, err);
  CHECK_CONTAINS(err.msg, "klevdb: check 0: ");
  fd = open(log, O_WRONLY);
  x = 'v';
  CHECK(fd >= 0 && pwrite(fd, &x, 1, 8 + 28 + 3 + 10) == 1);
  close(fd);
  CHECK(klevdb_close(db) == KLEVDB_OK);
  CHECK_RC(klevdb_dir_check(dir, &o, &err), KLEVDB_OK, err);
  /* No writer: a zero tail is what a crash leaves, for recover to cut. */
  fd = open(log, O_WRONLY | O_APPEND);
  uint8_t zeros[200] = {0};
  CHECK(fd >= 0 && write(fd, zeros, sizeof zeros) == (ssize_t)sizeof zeros);
  close(fd);
  CHECK_RC(klevdb_dir_check(dir, &o, &err), KLEVDB_ECORRUPT_LOG, err);
  free(data);
  rm_rf(dir);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s FIXTURES_DIR\n", argv[0]);
    return 2;
  }
  fixtures = argv[1];
  test_check_fixtures();
  test_check_live();
  test_stat();
  test_backup();
  test_file_copy();
  test_migrate();
  test_mutations();
  chk_name = "test_dirops";
  return check_done();
}
