/*
** test_reaper.c - trims whose dropped segments are freed off the writer's
** lock: what readers, publishers, transactions, backups and a crash see
** while the freeing runs behind the call or after it returned.
*/
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "check.h"

#define PER_SEG 10                 /* messages per segment */
#define ROLL (PER_SEG * SV2)       /* rollover: a segment per PER_SEG singles */

static klevdb_options opts_small(void) {
  klevdb_options o = opts_tk();
  o.rollover = ROLL;
  return o;
}

/* The offset of the oldest message, -1 if none or on error. */
static int64_t oldest(klevdb *db) {
  klevdb_batch b = KLEVDB_BATCH_INIT;
  int64_t off = -1;
  if (klevdb_consume(db, KLEVDB_OFFSET_OLDEST, 1, &b) == KLEVDB_OK && b.len == 1)
    off = b.msgs[0].offset;
  klevdb_batch_free(&b);
  return off;
}

/* Segment files (.log, .index) of dir with a base below cut. */
static int files_below(const char *dir, int64_t cut) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    long long base = strtoll(e->d_name, NULL, 10);
    if (base < cut) n++;
  }
  closedir(d);
  return n;
}

/* Mappings of this process of files under dir that are no longer in any
** directory: the space the kernel has not been able to give back yet. */
static int deleted_maps(const char *dir) {
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f) return -1;
  char line[8192];
  int n = 0;
  while (fgets(line, sizeof(line), f))
    if (strstr(line, dir) && strstr(line, "(deleted)")) n++;
  fclose(f);
  return n;
}

/* Waits up to ms for deleted_maps(dir) to reach 0; returns what is left. */
static int wait_unmapped(const char *dir, int ms) {
  int left = deleted_maps(dir);
  for (int i = 0; i < ms && left != 0; i++) {
    usleep(1000);
    left = deleted_maps(dir);
  }
  return left;
}

/* The whole store is gen(i) at offset i for i in [from, to). */
static void check_exactly(klevdb *db, int64_t from, int64_t to) {
  int64_t cap = to - from + 16;
  int64_t *offs = calloc((size_t)cap, sizeof(int64_t));
  long n = CONSUME_ALL(db, 97, offs, (size_t)cap);
  CHECK_EQ(n, to - from);
  for (long k = 0; k < n && k < cap; k++) CHECK_EQ(offs[k], from + k);
  free(offs);
  if (to > from) {
    GET_EXPECT(db, from, from, (int)from);
    GET_EXPECT(db, to - 1, to - 1, (int)(to - 1));
  }
  if (from > 0) GET_FAIL(db, from - 1, KLEVDB_ENOTFOUND);
}

/* ---- 1. a trim, followed by readers: a read-only handle in a thread and
** a batch that pins a dropped segment ---- */

typedef struct follower {
  klevdb *ro;
  int64_t cut;
  int trimmed;    /* atomic: the trim returned */
  int stop;       /* atomic */
  long reads, errors, stale;
} follower;

static void *follow_main(void *p) {
  follower *f = p;
  klevdb_batch b = KLEVDB_BATCH_INIT;
  while (!__atomic_load_n(&f->stop, __ATOMIC_ACQUIRE)) {
    int after = __atomic_load_n(&f->trimmed, __ATOMIC_ACQUIRE);
    klevdb_err rc = klevdb_consume(f->ro, KLEVDB_OFFSET_OLDEST, 50, &b);
    f->reads++;
    if (rc != KLEVDB_OK) {
      f->errors++;
      continue;
    }
    for (size_t k = 0; k < b.len; k++) {
      tmsg t;
      gen(&t, (int)b.msgs[k].offset);
      if (b.msgs[k].value_len != 128 || memcmp(b.msgs[k].value, t.val, 128) != 0) f->errors++;
      /* A read begun after the trim returned sees nothing it dropped. */
      if (after && b.msgs[k].offset < f->cut) f->stale++;
    }
  }
  klevdb_batch_free(&b);
  return NULL;
}

static void test_trim_readers(void) {
  SECTION("trim with readers");
  char dir[256];
  tmp_dir(dir, sizeof(dir));
  klevdb_options o = opts_small();
  klevdb *db = OPEN(dir, &o);
  if (!db) return;
  const int n = 40 * PER_SEG;
  PUBLISH(db, 0, n, 0);
  klevdb_stat st0 = {0, 0, 0};
  CHECK_DBOK(db, klevdb_stat_get(db, &st0));
  CHECK(st0.segments >= 40);

  /* A batch from the oldest segment pins its log across the trim. */
  klevdb_batch pinned = KLEVDB_BATCH_INIT;
  CHECK_DBOK(db, klevdb_consume(db, 0, PER_SEG, &pinned));
  CHECK_BATCH(&pinned, 0, 0, PER_SEG);

  klevdb_options ro = opts_small();
  ro.readonly = 1;
  follower f = {.ro = OPEN(dir, &ro), .cut = 30 * PER_SEG};
  klevdb *ro2 = OPEN(dir, &ro);   /* the thread's handle is its own */
  if (!f.ro || !ro2) return;
  CHECK_EQ(oldest(f.ro), 0);
  CHECK_EQ(oldest(ro2), 0);
  pthread_t th;
  CHECK(pthread_create(&th, NULL, follow_main, &f) == 0);
  usleep(20000);

  klevdb_deleted d = {0, 0};
  CHECK_DBOK(db, klevdb_trim_by_offset(db, f.cut, &d));
  __atomic_store_n(&f.trimmed, 1, __ATOMIC_RELEASE);
  CHECK_EQ(d.count, f.cut);
  CHECK_EQ(d.size, f.cut * (SV2 + 32));   /* record and index item (time, key) */
  /* Gone from the directory and from every reader when the call returns. */
  CHECK_EQ(files_below(dir, f.cut), 0);
  CHECK_EQ(oldest(db), f.cut);
  CHECK_EQ(oldest(ro2), f.cut);
  GET_FAIL(db, f.cut - 1, KLEVDB_ENOTFOUND);
  GET_FAIL(ro2, f.cut - 1, KLEVDB_ENOTFOUND);
  usleep(20000);
  __atomic_store_n(&f.stop, 1, __ATOMIC_RELEASE);
  pthread_join(th, NULL);
  CHECK(f.reads > 0);
  CHECK_EQ(f.errors, 0);
  CHECK_EQ(f.stale, 0);

  /* The pinned batch still reads what it read, byte for byte. */
  CHECK_BATCH(&pinned, 0, 0, PER_SEG);
  /* A read into it moves the pin on: the last reference to the dropped
  ** log goes, under the reader's lock, to the reaper's thread. */
  CHECK_DBOK(db, klevdb_consume(db, f.cut, 1, &pinned));
  CHECK_EQ(pinned.len, 1);
  CHECK_EQ(pinned.msgs[0].offset, f.cut);
  klevdb_batch_free(&pinned);
  /* With the pin gone, the space of every dropped file comes back (the
  ** read-only handle may map the old files too: it lets go at its next
  ** read, which lists the segments again). */
  CHECK_EQ(oldest(f.ro), f.cut);
  CHECK_EQ(wait_unmapped(dir, 1000), 0);
  check_exactly(db, f.cut, n);
  check_exactly(f.ro, f.cut, n);
  check_exactly(ro2, f.cut, n);
  CHECK_OK(klevdb_close(ro2));
  CHECK_OK(klevdb_close(f.ro));
  CHECK_OK(klevdb_close(db));
  db = OPEN(dir, &o);
  if (db) {
    check_exactly(db, f.cut, n);
    CHECK_OK(klevdb_close(db));
  }
  rm_rf(dir);
}

/* ---- 2. a crash right after the trim returned, the freeing under way ---- */

static void test_crash_after_trim(void) {
  SECTION("crash after trim");
  char dir[256];
  tmp_dir(dir, sizeof(dir));
  klevdb_options o = opts_small();
  klevdb *db = OPEN(dir, &o);
  if (!db) return;
  const int n = 60 * PER_SEG;
  const int64_t cut = 45 * PER_SEG + 3;   /* into a segment: a rewrite too */
  PUBLISH(db, 0, n, 0);
  CHECK_OK(klevdb_close(db));
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    klevdb *c = NULL;
    klevdb_error e;
    if (klevdb_open(dir, &o, &c, &e) != KLEVDB_OK) _exit(3);
    /* Every segment mapped, so that the trim leaves the most to free. */
    klevdb_batch b = KLEVDB_BATCH_INIT;
    for (int64_t off = 0; off < n; off += PER_SEG)
      if (klevdb_get(c, off, &b) != KLEVDB_OK) _exit(4);
    klevdb_batch_free(&b);
    klevdb_deleted d;
    if (klevdb_trim_by_offset(c, cut, &d) != KLEVDB_OK || d.count != cut) _exit(5);
    _exit(0);   /* no close: the reaper's work dies with the process */
  }
  int status = 0;
  CHECK(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  CHECK_EQ(files_below(dir, 45 * PER_SEG), 0);
  CHECK_EQ(count_ext(dir, ".delete-ranges"), 0);
  db = OPEN(dir, &o);
  if (db) {
    check_exactly(db, cut, n);
    CHECK_EQ(files_below(dir, 45 * PER_SEG), 0);
    CHECK_OK(klevdb_close(db));
  }
  rm_rf(dir);
}

/* ---- 3. a trim of many segments beside a publisher, a transaction and
** backups: publishes go on between its segments; nothing else sees it
** halfway ---- */

#define TRIMS 8                    /* trims one after the other */
#define TRIM_STEP (45 * PER_SEG)   /* messages each removes */

typedef struct side {
  const char *dir;
  klevdb *db;
  int done;       /* atomic: the trim returned */
  long ops, bad;
  int64_t next;
} side;

static void *publish_main(void *p) {
  side *s = p;
  while (!__atomic_load_n(&s->done, __ATOMIC_ACQUIRE)) {
    tmsg t;
    gen(&t, (int)s->next);
    int64_t next = -1;
    if (klevdb_publish(s->db, &t.m, 1, &next) != KLEVDB_OK || next != s->next + 1) s->bad++;
    s->next = next;
    s->ops++;
  }
  return NULL;
}

/* Under the writer lock nothing deletes: the oldest offset holds still. */
static void *txn_main(void *p) {
  side *s = p;
  while (!__atomic_load_n(&s->done, __ATOMIC_ACQUIRE)) {
    if (klevdb_writer_lock(s->db, 5000) != KLEVDB_OK) {
      s->bad++;
      continue;
    }
    int64_t a = oldest(s->db);
    usleep(1000);
    int64_t b = oldest(s->db);
    if (a != b) s->bad++;
    klevdb_writer_unlock(s->db);
    s->ops++;
    usleep(100);
  }
  return NULL;
}

/* A backup is from between two trims, never from halfway through one. */
static void *backup_main(void *p) {
  side *s = p;
  char to[300];
  for (int i = 0; !__atomic_load_n(&s->done, __ATOMIC_ACQUIRE); i++) {
    snprintf(to, sizeof(to), "%s.backup", s->dir);
    rm_rf(to);
    if (klevdb_backup(s->db, to) != KLEVDB_OK) {
      s->bad++;
      continue;
    }
    klevdb_options o = opts_small();
    klevdb *b = NULL;
    klevdb_error e;
    if (klevdb_open(to, &o, &b, &e) != KLEVDB_OK) {
      s->bad++;
      continue;
    }
    int64_t first = oldest(b);
    if (first % TRIM_STEP != 0) s->bad++;
    klevdb_close(b);
    s->ops++;
  }
  rm_rf(to);
  return NULL;
}

static void test_trim_beside_writers(void) {
  SECTION("trim beside writers");
  char dir[256];
  tmp_dir(dir, sizeof(dir));
  klevdb_options o = opts_small();
  klevdb *db = OPEN(dir, &o);
  if (!db) return;
  const int n = TRIMS * TRIM_STEP + 50;
  PUBLISH_BATCH(db, 0, n, n);   /* split into segments of its own */
  klevdb_stat st0 = {0, 0, 0};
  CHECK_DBOK(db, klevdb_stat_get(db, &st0));
  CHECK(st0.segments >= TRIMS * 45);
  const int64_t cut = TRIMS * TRIM_STEP;
  side pub = {.dir = dir, .db = OPEN(dir, &o), .next = n};
  side txn = {.dir = dir, .db = OPEN(dir, &o)};
  side bak = {.dir = dir, .db = OPEN(dir, &o)};
  if (!pub.db || !txn.db || !bak.db) return;
  pthread_t t1, t2, t3;
  CHECK(pthread_create(&t1, NULL, publish_main, &pub) == 0);
  CHECK(pthread_create(&t2, NULL, txn_main, &txn) == 0);
  CHECK(pthread_create(&t3, NULL, backup_main, &bak) == 0);
  usleep(20000);
  for (int k = 1; k <= TRIMS; k++) {
    klevdb_deleted d = {0, 0};
    CHECK_DBOK(db, klevdb_trim_by_offset(db, k * TRIM_STEP, &d));
    CHECK_EQ(d.count, TRIM_STEP);
    usleep(2000);
  }
  __atomic_store_n(&pub.done, 1, __ATOMIC_RELEASE);
  __atomic_store_n(&txn.done, 1, __ATOMIC_RELEASE);
  __atomic_store_n(&bak.done, 1, __ATOMIC_RELEASE);
  pthread_join(t1, NULL);
  pthread_join(t2, NULL);
  pthread_join(t3, NULL);
  CHECK(pub.ops > 0);
  CHECK(txn.ops > 0);
  CHECK(bak.ops > 0);
  CHECK_EQ(pub.bad, 0);
  CHECK_EQ(txn.bad, 0);
  CHECK_EQ(bak.bad, 0);
  check_exactly(db, cut, pub.next);
  CHECK_OK(klevdb_close(pub.db));
  CHECK_OK(klevdb_close(txn.db));
  CHECK_OK(klevdb_close(bak.db));
  CHECK_OK(klevdb_close(db));
  CHECK_EQ(wait_unmapped(dir, 1000), 0);
  db = OPEN(dir, &o);
  if (db) {
    check_exactly(db, cut, pub.next);
    CHECK_OK(klevdb_close(db));
  }
  rm_rf(dir);
}

/* ---- 4. close with freeing still queued: all of it done by close ---- */

static void test_close_drains(void) {
  SECTION("close drains");
  char dir[256];
  tmp_dir(dir, sizeof(dir));
  klevdb_options o = opts_small();
  klevdb *db = OPEN(dir, &o);
  if (!db) return;
  const int n = 50 * PER_SEG;
  PUBLISH(db, 0, n, 0);
  klevdb_deleted d = {0, 0};
  CHECK_DBOK(db, klevdb_trim_by_offset(db, n, &d));
  CHECK_EQ(d.count, n);
  CHECK_OK(klevdb_close(db));
  /* close joined the reaper: nothing of the store is mapped any more */
  CHECK_EQ(deleted_maps(dir), 0);
  db = OPEN(dir, &o);
  if (db) {
    check_exactly(db, n, n);
    PUBLISH(db, n, 3, n);
    check_exactly(db, n, n + 3);
    CHECK_OK(klevdb_close(db));
  }
  rm_rf(dir);
}

int main(void) {
  chk_name = "test_reaper";
  signal(SIGPIPE, SIG_IGN);
  test_trim_readers();
  test_crash_after_trim();
  test_trim_beside_writers();
  test_close_drains();
  return check_done();
}
