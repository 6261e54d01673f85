/*
** test_manysegs.c - a store of more segments than a process can map at
** once (Linux allows 65,530 mappings, two per mapped segment): open, read
** the first and last, read all of it, key and time lookups, stat, publish;
** the mappings stay bounded. And a rollover that cannot map the new head
** (the process out of mappings) fails the publish and leaves no file.
**
**   test_manysegs [SEGMENTS]     (default 100000)
*/
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "check.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Lines of /proc/self/maps: the process's mappings. */
static long maps_count(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f) return -1;
  long n = 0;
  int c;
  while ((c = getc(f)) != EOF) n += c == '\n';
  fclose(f);
  return n;
}

static long rss_kb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

/* ---- segment files written directly (creating them through publish
** costs a rollover each, minutes for 100,000 on a busy disk) ---- */

static uint32_t crc_tab[256];
static uint32_t crc32c_sw(const uint8_t *p, size_t n) {
  if (!crc_tab[1])
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      crc_tab[i] = c;
    }
  uint32_t c = 0xFFFFFFFFu;
  while (n--) c = crc_tab[(c ^ *p++) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

static void be(uint8_t *p, uint64_t v, int n) {
  for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static int write_file(const char *path, const uint8_t *p, size_t n) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return -1;
  ssize_t w = write(fd, p, n);
  return close(fd) == 0 && w == (ssize_t)n ? 0 : -1;
}

/* Segment i holds message gen(i) at offset i: the files Go (and our
** writer) would make with a rollover below one message. */
static void build_store(const char *dir, int nseg) {
  static const uint8_t lhdr[8] = {0xFF, 'k', 'l', 'e', 'v', 's', 1, 0};
  static const uint8_t ihdr[8] = {0xFF, 'k', 'l', 'e', 'v', 'i', 1, 3};
  static const uint8_t trailer[8] = {0xDE, 0xAD, 0xBE, 0xEF, 0xFE, 0xED, 0xFA, 0xCE};
  for (int i = 0; i < nseg; i++) {
    tmsg t;
    gen(&t, i);
    uint8_t log[8 + SV2], idx[8 + 32], *r = log + 8;
    memcpy(log, lhdr, 8);
    be(r + 4, (uint64_t)i, 8);
    be(r + 12, (uint64_t)t.m.time, 8);
    be(r + 20, 10, 4);
    be(r + 24, 128, 4);
    memcpy(r + 28, t.key, 10);
    memcpy(r + 38, t.val, 128);
    memcpy(r + 166, trailer, 8);
    be(r, crc32c_sw(r + 4, SV2 - 4), 4);
    uint64_t h = 0xcbf29ce484222325ULL;
    for (int k = 0; k < 10; k++) h = (h ^ (uint8_t)t.key[k]) * 0x100000001b3ULL;
    memcpy(idx, ihdr, 8);
    be(idx + 8, (uint64_t)i, 8);
    be(idx + 16, 8, 8);
    be(idx + 24, (uint64_t)t.m.time, 8);
    be(idx + 32, h, 8);
    char p[512];
    if (write_file(seg_name(p, sizeof p, dir, i, ".log"), log, sizeof log) ||
        write_file(seg_name(p, sizeof p, dir, i, ".index"), idx, sizeof idx)) {
      CHECK(0);
      return;
    }
  }
}

/* One message a segment: a rollover below the log header's size rolls
** over before every publish. */
static klevdb_options opts_one(void) {
  klevdb_options o = opts_tk();
  o.create_dirs = 1;
  o.rollover = 1;
  return o;
}

static void test_many(int nseg) {
  SECTION("a store of many segments");
  char dir[256];
  tmp_dir(dir, sizeof dir);
  klevdb_options o = opts_one();
  double t0 = now_s();
  build_store(dir, nseg);
  double t_fill = now_s() - t0;
  CHECK_EQ(count_ext(dir, ".log"), nseg);
  /* the files are a valid store (the check of the last segment) */
  klevdb_error err;
  CHECK_ERR(klevdb_dir_check(dir, &o, &err), KLEVDB_OK);

  t0 = now_s();
  klevdb *db = OPEN(dir, &o);
  double t_open = now_s() - t0;
  if (!db) return;
  long maps_base = maps_count();
  klevdb_batch b = KLEVDB_BATCH_INIT;
  /* first and last */
  CHECK_DBOK(db, klevdb_get(db, KLEVDB_OFFSET_OLDEST, &b));
  CHECK(b.len == 1 && CHECK_MSG(&b.msgs[0], 0, 0));
  CHECK_DBOK(db, klevdb_get(db, KLEVDB_OFFSET_NEWEST, &b));
  CHECK(b.len == 1 && CHECK_MSG(&b.msgs[0], nseg - 1, nseg - 1));
  /* every message, in order: each read maps another segment */
  t0 = now_s();
  int64_t at = KLEVDB_OFFSET_OLDEST, seen = 0;
  long maps_max = 0;
  while (seen <= nseg) {
    klevdb_err rc = klevdb_consume(db, at, 100, &b);
    if (rc != KLEVDB_OK) {
      CHECK_DBOK(db, rc);
      break;
    }
    if (b.len == 0) break;
    for (size_t i = 0; i < b.len; i++) {
      if (b.msgs[i].offset != seen) CHECK_EQ(b.msgs[i].offset, seen);
      seen++;
    }
    at = b.next_offset;
    if (seen % 1000 == 0) {
      long m = maps_count();
      if (m > maps_max) maps_max = m;
    }
  }
  double t_scan = now_s() - t0;
  long m_after = maps_count();
  if (m_after > maps_max) maps_max = m_after;
  CHECK_EQ(seen, nseg);
  /* Mapped sealed segments are bounded (1,024 kept, two mappings each, a
  ** sweep every 128): far below the 65,530 a process may have. */
  CHECK(maps_max > 0 && maps_max - maps_base < 3000);
  /* key lookups: the oldest key (the key table grows back over every
  ** segment), a consume by key from the start, a key that is absent */
  t0 = now_s();
  tmsg t;
  gen(&t, 0);
  CHECK_DBOK(db, klevdb_get_by_key(db, t.key, 10, &b));
  CHECK(b.len == 1 && CHECK_MSG(&b.msgs[0], 0, 0));
  gen(&t, nseg / 2);
  CHECK_DBOK(db, klevdb_consume_by_key(db, t.key, 10, KLEVDB_OFFSET_OLDEST, 10, &b));
  CHECK(b.len == 1 && CHECK_MSG(&b.msgs[0], nseg / 2, nseg / 2));
  CHECK_DB(db, klevdb_get_by_key(db, "no such key", 11, &b), KLEVDB_ENOTFOUND);
  double t_key = now_s() - t0;
  /* time lookups over every segment's first and last times */
  CHECK_DBOK(db, klevdb_get_by_time(db, TI(nseg / 3), &b));
  CHECK(b.len == 1 && CHECK_MSG(&b.msgs[0], nseg / 3, nseg / 3));
  klevdb_stat st;
  CHECK_DBOK(db, klevdb_stat_get(db, &st));
  CHECK_EQ(st.segments, nseg);
  CHECK_EQ(st.messages, nseg);
  long maps_end = maps_count();
  CHECK(maps_end - maps_base < 3000);
  /* publishing goes on */
  PUBLISH(db, nseg, 3, nseg);
  CHECK_DBOK(db, klevdb_get(db, nseg + 2, &b));
  CHECK(b.len == 1 && CHECK_MSG(&b.msgs[0], nseg + 2, nseg + 2));
  klevdb_batch_free(&b);
  CHECK_OK(klevdb_close(db));
  printf("test_manysegs: %d segments: filled in %.1f s, open %.1f ms, read all %.1f s, "
         "key lookups %.1f s, mappings at most %ld (end %ld), max RSS %ld KiB\n",
         nseg, t_fill, t_open * 1e3, t_scan, t_key, maps_max, maps_end, rss_kb());
  rm_rf(dir);
}

/* In a child: a publish whose rollover cannot map the new head. */
static void rollover_out_of_maps(const char *dir) {
  klevdb_options o = opts_one();
  klevdb *db = OPEN(dir, &o);
  if (!db) _exit(100);
  PUBLISH(db, 0, 1, 0);
  /* Use up the process's mappings (alternate protections: no merging). */
  size_t cap = 1 << 17, n = 0;
  void **maps = malloc(cap * sizeof(void *));
  if (!maps) _exit(100);
  for (; n < cap; n++) {
    void *p = mmap(NULL, 4096, n % 2 ? PROT_READ : PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) break;
    maps[n] = p;
  }
  CHECK(n < cap);
  tmsg t;
  gen(&t, 1);
  int64_t next = 7;
  klevdb_err rc = klevdb_publish(db, &t.m, 1, &next);
  for (size_t i = 0; i < n; i++) munmap(maps[i], 4096);
  free(maps);
  CHECK_DB(db, rc, KLEVDB_ENOMEM);
  CHECK_EQ(next, KLEVDB_OFFSET_INVALID);
  CHECK(!seg_exists(dir, 1, ".log") && !seg_exists(dir, 1, ".index"));   /* no new files */
  CHECK_DBOK(db, klevdb_next_offset(db, &next));
  CHECK_EQ(next, 1);
  PUBLISH(db, 1, 2, 1);   /* with mappings again, it goes on */
  CHECK_OK(klevdb_close(db));
  _exit(chk_failed ? 1 : 0);
}

/* The same where the new head's log cannot be made: its name is taken by a
** directory (not ours: it stays). */
static void test_rollover_blocked(void) {
  SECTION("rollover onto a name taken");
  char dir[256], p[512];
  tmp_dir(dir, sizeof dir);
  klevdb_options o = opts_one();
  klevdb *db = OPEN(dir, &o);
  if (!db) return;
  PUBLISH(db, 0, 1, 0);
  CHECK(mkdir(seg_name(p, sizeof p, dir, 1, ".log"), 0700) == 0);
  tmsg t;
  gen(&t, 1);
  int64_t next = 7;
  CHECK_DB(db, klevdb_publish(db, &t.m, 1, &next), KLEVDB_ECORRUPT_LOG);
  CHECK(strstr(klevdb_errmsg(db), "not a regular file") != NULL);
  CHECK_EQ(next, KLEVDB_OFFSET_INVALID);
  CHECK(!seg_exists(dir, 1, ".index"));   /* no file of ours left */
  CHECK_DBOK(db, klevdb_next_offset(db, &next));
  CHECK_EQ(next, 1);
  CHECK(rmdir(p) == 0);
  PUBLISH(db, 1, 2, 1);
  CHECK_OK(klevdb_close(db));
  db = OPEN(dir, &o);
  if (db) {
    int64_t offs[8];
    CHECK_EQ(CONSUME_ALL(db, 10, offs, 8), 3);
    CHECK_OK(klevdb_close(db));
  }
  rm_rf(dir);
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1   /* their runtimes need mappings of their own */
#else
#define SANITIZED 0
#endif

static void test_rollover_fails(void) {
  if (SANITIZED) return;
  SECTION("rollover out of mappings");
  char dir[256];
  tmp_dir(dir, sizeof dir);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) rollover_out_of_maps(dir);
  int status = 0;
  waitpid(pid, &status, 0);
  chk_report(WIFEXITED(status) && WEXITSTATUS(status) == 0, __FILE__, __LINE__,
             "child: %s %d", WIFEXITED(status) ? "exit" : "signal",
             WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
  klevdb_options o = opts_one();
  klevdb *db = OPEN(dir, &o);
  if (db) {
    int64_t offs[8];
    CHECK_EQ(CONSUME_ALL(db, 10, offs, 8), 3);
    CHECK_OK(klevdb_close(db));
  }
  rm_rf(dir);
}

int main(int argc, char **argv) {
  chk_name = "test_manysegs";
  int n = argc > 1 ? atoi(argv[1]) : 100000;
  test_rollover_blocked();
  test_rollover_fails();
  test_many(n);
  return check_done();
}
