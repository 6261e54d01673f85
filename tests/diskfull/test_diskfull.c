/*
** test_diskfull.c - a full disk and bad input at the C API.
**
** 1. RLIMIT_FSIZE (in forked children, SIGXFSZ ignored): publish until a
**    publish fails, on the V2 mmap+fallocate path, the V1 write() path, in
**    batches, through the index flush (V1 empty messages: the index grows
**    faster than the log) and through a split batch. The failure must be
**    KLEVDB_EIO with a "klevdb: " message naming EFBIG; every acknowledged
**    message reads back byte for byte; the failed publish left nothing; the
**    store closes, reopens (in the parent, no limit) with exactly the
**    acknowledged messages and no preallocated or torn tail; publishing
**    goes on at the right offset once the limit is raised.
** 2. A 2 MiB tmpfs (skipped with a note without CAP_SYS_ADMIN): the same
**    with ENOSPC, then space is freed by deleting another file and
**    publishing works again; a backup into the full file system fails
**    cleanly; a read-only remount refuses a read-write open.
** 3. Bad input not in tests/core/test_badinput.c: rollover 1..8 bytes
**    (V1 and V2, singles, batches, split batches), SIZE_MAX counts on
**    klevdb_read, INT64_MAX / INT64_MIN / negative offsets on every
**    offset-taking call, delete_ranges with inverted, overlapping, negative
**    and huge ranges, a path through a regular file, a directory removed
**    under an open store, directories a non-root user may not read. Every
**    call that fails or does nothing leaves the files byte for byte.
**
** Children report their failed checks through their exit status; a child
** killed by a signal (SIGBUS on the head mapping, SIGXFSZ, SIGSEGV) is a
** failure of its own.
*/
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <grp.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <sys/wait.h>

#include "../core/check.h"

#define CHECK_ERRMSG_DB(db)                                                   \
  chk_report(strncmp(klevdb_errmsg(db), "klevdb: ", 8) == 0, __FILE__,       \
             __LINE__, "errmsg starts with \"klevdb: \": \"%s\"",            \
             klevdb_errmsg(db))

static int skipped_parts;

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("test_diskfull: NOTE [%s]: ", chk_section);
  vprintf(fmt, ap);
  putchar('\n');
  va_end(ap);
  fflush(stdout);
}

/* ------------------------------------------------------------------ */
/* Directory snapshots: every regular file (name, size, content hash).  */

typedef struct snapfile {
  char name[256];
  long long size;
  uint64_t hash;
} snapfile;

typedef struct snap {
  snapfile f[256];
  int n;
} snap;

static int snap_cmp(const void *a, const void *b) {
  return strcmp(((const snapfile *)a)->name, ((const snapfile *)b)->name);
}

/* Spare head files are made by a background thread at any time; they are
** not part of the store. */
static int snap_ignored(const char *name) {
  return strncmp(name, ".spare-", 7) == 0 || strcmp(name, ".") == 0 ||
         strcmp(name, "..") == 0;
}

static void snap_take(const char *dir, snap *s) {
  s->n = 0;
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL && s->n < 256) {
    if (snap_ignored(e->d_name)) continue;
    char p[4096];
    snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
    struct stat sb;
    if (lstat(p, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
    snapfile *f = &s->f[s->n++];
    snprintf(f->name, sizeof(f->name), "%s", e->d_name);
    f->size = (long long)sb.st_size;
    f->hash = 0;
    FILE *fp = fopen(p, "rb");
    if (fp) {
      uint8_t *buf = malloc((size_t)sb.st_size + 1);
      size_t got = buf ? fread(buf, 1, (size_t)sb.st_size, fp) : 0;
      f->hash = klevdb_key_hash(buf ? buf : (const uint8_t *)"", got);
      free(buf);
      fclose(fp);
    }
  }
  closedir(d);
  qsort(s->f, (size_t)s->n, sizeof(snapfile), snap_cmp);
}

static int snap_same_at(const snap *a, const snap *b, const char *what,
                        const char *file, int line) {
  int same = a->n == b->n;
  for (int i = 0; same && i < a->n; i++)
    same = strcmp(a->f[i].name, b->f[i].name) == 0 && a->f[i].size == b->f[i].size &&
           a->f[i].hash == b->f[i].hash;
  if (!same) {
    char desc[2048];
    size_t o = 0;
    o += (size_t)snprintf(desc + o, sizeof(desc) - o, "before:");
    for (int i = 0; i < a->n && o < sizeof(desc) - 64; i++)
      o += (size_t)snprintf(desc + o, sizeof(desc) - o, " %s(%lld)", a->f[i].name, a->f[i].size);
    o += (size_t)snprintf(desc + o, sizeof(desc) - o, "; after:");
    for (int i = 0; i < b->n && o < sizeof(desc) - 64; i++)
      o += (size_t)snprintf(desc + o, sizeof(desc) - o, " %s(%lld)", b->f[i].name, b->f[i].size);
    return chk_report(0, file, line, "files changed by %s: %s", what, desc);
  }
  return chk_report(1, file, line, "%s", what);
}

/* The files of dir are as in *before (takes the snapshot now). */
#define CHECK_UNCHANGED(dir, before, what)                                    \
  do {                                                                        \
    snap chk_now_;                                                            \
    snap_take((dir), &chk_now_);                                              \
    snap_same_at((before), &chk_now_, (what), __FILE__, __LINE__);            \
  } while (0)

/* Bytes of all .log and .index files of dir. */
static long long store_bytes(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  long long n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t l = strlen(e->d_name);
    if ((l > 4 && strcmp(e->d_name + l - 4, ".log") == 0) ||
        (l > 6 && strcmp(e->d_name + l - 6, ".index") == 0)) {
      char p[4096];
      snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
      n += file_size(p);
    }
  }
  closedir(d);
  return n;
}

/* ------------------------------------------------------------------ */
/* Messages: gen(i) (10-byte key, 128-byte value) or an empty message.   */

typedef struct msgset {
  tmsg *t;
  klevdb_msg *m;
  int n;
} msgset;

static void msgs_make(msgset *s, int first, int n, int empty) {
  s->t = calloc((size_t)n, sizeof(tmsg));
  s->m = calloc((size_t)n, sizeof(klevdb_msg));
  s->n = n;
  for (int k = 0; k < n; k++) {
    gen(&s->t[k], first + k);
    s->m[k] = s->t[k].m;
    if (empty) {
      s->m[k].key = NULL;
      s->m[k].key_len = 0;
      s->m[k].value = NULL;
      s->m[k].value_len = 0;
    }
  }
}
static void msgs_free(msgset *s) {
  free(s->t);
  free(s->m);
}

static int msg_ok(const klevdb_msg *got, int64_t off, int empty) {
  tmsg t;
  gen(&t, (int)off);
  if (got->offset != off || got->time != t.m.time) return 0;
  if (empty) return got->key_len == 0 && got->value_len == 0;
  return got->key_len == 10 && got->value_len == 128 && memcmp(got->key, t.key, 10) == 0 &&
         memcmp(got->value, t.val, 128) == 0;
}

/* The store holds exactly messages 0..n-1 (gen or empty), byte for byte:
** consume from the oldest, get of the first and last, get(n) fails. */
static void verify_all_at(klevdb *db, int64_t n, int empty, const char *file, int line) {
  klevdb_batch b = KLEVDB_BATCH_INIT;
  int64_t cur = KLEVDB_OFFSET_OLDEST, seen = 0, bad = 0, first_bad = -1;
  for (int guard = 0; guard < 1000000; guard++) {
    klevdb_err e = klevdb_consume(db, cur, 1000, &b);
    if (e != KLEVDB_OK) {
      chk_report(0, file, line, "verify: consume(%lld): %s (%s)", (long long)cur,
                 klevdb_errname(e), klevdb_errmsg(db));
      break;
    }
    for (size_t k = 0; k < b.len; k++, seen++)
      if (!msg_ok(&b.msgs[k], seen, empty) && bad++ == 0) first_bad = seen;
    if (b.len == 0 || b.next_offset == cur) break;
    cur = b.next_offset;
  }
  chk_report(seen == n, file, line, "verify: %lld messages, expected %lld", (long long)seen,
             (long long)n);
  chk_report(bad == 0, file, line,
             "verify: %lld messages differ from what was published (first at %lld)",
             (long long)bad, (long long)first_bad);
  int64_t next = -99;
  klevdb_err e = klevdb_next_offset(db, &next);
  chk_report(e == KLEVDB_OK && next == n, file, line, "verify: next offset %lld, expected %lld",
             (long long)next, (long long)n);
  if (n > 0) {
    e = klevdb_get(db, n - 1, &b);
    chk_report(e == KLEVDB_OK && b.len == 1 && msg_ok(&b.msgs[0], n - 1, empty), file, line,
               "verify: get(%lld): %s", (long long)(n - 1), klevdb_errname(e));
  }
  e = klevdb_get(db, n, &b);
  chk_report(e == KLEVDB_EINVALID_OFFSET, file, line, "verify: get(%lld) past the end: %s",
             (long long)n, klevdb_errname(e));
  klevdb_batch_free(&b);
}
#define VERIFY_ALL(db, n, empty) verify_all_at((db), (n), (empty), __FILE__, __LINE__)

/* Publishes messages first.. in batches of `batch` until count or a
** failure; returns the number acknowledged, *rc the failure. */
static int64_t publish_until(klevdb *db, int64_t first, int64_t count, int batch, int empty,
                             klevdb_err *rc) {
  int64_t acked = 0;
  *rc = KLEVDB_OK;
  while (acked < count) {
    msgset s;
    msgs_make(&s, (int)(first + acked), batch, empty);
    int64_t next = -99;
    klevdb_err e = klevdb_publish(db, s.m, (size_t)batch, &next);
    msgs_free(&s);
    if (e != KLEVDB_OK) {
      *rc = e;
      CHECK_EQ(next, KLEVDB_OFFSET_INVALID);
      return acked;
    }
    acked += batch;
    if (next != first + acked) {
      CHECK_EQ(next, first + acked);
      return acked;
    }
  }
  return acked;
}

/* ------------------------------------------------------------------ */
/* Part 1 and 2: publish into a full file.                             */

typedef struct scen {
  const char *name;
  klevdb_format ver;
  int empty;          /* empty messages (28/36-byte records, 32-byte items) */
  int batch;          /* messages per publish */
  int64_t rollover;
  rlim_t limit;       /* RLIMIT_FSIZE in the child; 0: none (tmpfs) */
  const char *ballast; /* tmpfs: a file to delete to free space */
  int64_t presplit;   /* publish this many singles, then one batch of split_n */
  int split_n;
} scen;

typedef struct result {
  int64_t acked;      /* messages acknowledged in all */
  int64_t at_fail;    /* acknowledged when the first failure came */
  int failed;         /* a publish failed */
} result;

static const char *expected_errno_text(const scen *sc) {
  return sc->limit ? strerror(EFBIG) : strerror(ENOSPC);
}

static void free_space(const scen *sc) {
  if (sc->limit) {
    struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
    CHECK(setrlimit(RLIMIT_FSIZE, &rl) == 0);
  } else if (sc->ballast) {
    CHECK(unlink(sc->ballast) == 0);
  }
}

/* The child: fill, check, free, publish again, close. */
static void fill_child(const scen *sc, const char *dir, int wfd) {
  result res = {0, 0, 0};
  signal(SIGXFSZ, SIG_IGN);
  klevdb_options o = opts_tk();
  o.create_dirs = 1;
  o.rollover = sc->rollover;
  o.new_segments_version = sc->ver;
  if (sc->limit) {
    struct rlimit rl;
    getrlimit(RLIMIT_FSIZE, &rl);
    rl.rlim_cur = sc->limit;
    CHECK(setrlimit(RLIMIT_FSIZE, &rl) == 0);
  }
  klevdb *db = OPEN(dir, &o);
  if (!db) goto out;
  klevdb_err rc = KLEVDB_OK;
  if (sc->split_n) {
    /* A few singles, then a batch of more than 4 rollovers (written as
    ** segments of its own) that cannot fit. */
    res.acked = publish_until(db, 0, sc->presplit, 1, 0, &rc);
    CHECK_EQ(rc, KLEVDB_OK);
    CHECK_DBOK(db, klevdb_sync(db, NULL));
    snap before;
    snap_take(dir, &before);
    klevdb_stat st0 = {0, 0, 0};
    CHECK_DBOK(db, klevdb_stat_get(db, &st0));
    msgset s;
    msgs_make(&s, (int)res.acked, sc->split_n, 0);
    int64_t next = -99;
    rc = klevdb_publish(db, s.m, (size_t)sc->split_n, &next);
    msgs_free(&s);
    CHECK_EQ(next, KLEVDB_OFFSET_INVALID);
    res.at_fail = res.acked;
    res.failed = rc != KLEVDB_OK;
    CHECK_DB(db, rc, KLEVDB_EIO);
    CHECK(strstr(klevdb_errmsg(db), expected_errno_text(sc)) != NULL);
    CHECK_DBOK(db, klevdb_sync(db, NULL));
    /* no temporary files of the batch, no new segment with messages */
    CHECK_UNCHANGED(dir, &before, "a split batch that failed");
    klevdb_stat st1 = {0, 0, 0};
    CHECK_DBOK(db, klevdb_stat_get(db, &st1));
    CHECK_EQ(st1.messages, st0.messages);
    CHECK_EQ(st1.size, st0.size);
  } else {
    int64_t guard = sc->limit ? (int64_t)sc->limit / 20 + 1000 : 200000;
    res.acked = publish_until(db, 0, guard, sc->batch, sc->empty, &rc);
    res.at_fail = res.acked;
    res.failed = rc != KLEVDB_OK;
    chk_report(rc != KLEVDB_OK, __FILE__, __LINE__,
               "%s: %lld messages published and no failure", sc->name, (long long)res.acked);
    if (rc == KLEVDB_OK) goto close;
    const char *msg = klevdb_errmsg(db);
    chk_report(rc == KLEVDB_EIO, __FILE__, __LINE__, "%s: publish failed with %s (%s), expected io",
               sc->name, klevdb_errname(rc), msg);
    chk_report(strncmp(msg, "klevdb: ", 8) == 0 && strstr(msg, expected_errno_text(sc)) != NULL,
               __FILE__, __LINE__, "%s: errmsg \"%s\" names \"%s\"", sc->name, msg,
               expected_errno_text(sc));
    printf("test_diskfull: [%s] publish #%lld failed: %s\n", sc->name, (long long)res.acked, msg);
    /* A failed publish must leave nothing (klevdb.h: "All or nothing: on
    ** any error nothing of the batch stays"). If it did, say so once and
    ** go on from what the store has (the messages are gen(offset)). */
    {
      int64_t next = -99;
      CHECK_DBOK(db, klevdb_next_offset(db, &next));
      chk_report(next == res.acked, __FILE__, __LINE__,
                 "%s: the failed publish (\"%s\") left %lld message(s) in the store: next "
                 "offset %lld, %lld acknowledged",
                 sc->name, msg, (long long)(next - res.acked), (long long)next,
                 (long long)res.acked);
      if (next > res.acked) res.acked = next;
    }
    if (!sc->limit && !sc->empty) {
      /* How much room was left when the disk was called full. */
      struct statvfs vf;
      if (statvfs(dir, &vf) == 0) {
        long long freeb = (long long)vf.f_bavail * (long long)vf.f_frsize;
        long long need = (long long)klevdb_size(db, &(klevdb_msg){.key_len = 10, .value_len = 128}) *
                         sc->batch;
        if (freeb >= need + 8192)
          note("%s: ENOSPC while %lld bytes were free (the batch needs %lld): the head "
               "allocates ahead in chunks of rollover/2 (64 KiB..8 MiB) and does not retry "
               "with less",
               sc->name, freeb, need);
      }
    }
    /* nothing of the failed publish is there, also after a retry */
    VERIFY_ALL(db, res.acked, sc->empty);
    {
      msgset s;
      msgs_make(&s, (int)res.acked, sc->batch, sc->empty);
      int64_t next = -99;
      klevdb_err e = klevdb_publish(db, s.m, (size_t)sc->batch, &next);
      msgs_free(&s);
      /* On a file size limit the retry must fail again. On a full tmpfs it
      ** may pass: the head grows by what each batch needs (no room ahead),
      ** and the background thread that makes the next head's spare files
      ** removes them when it fails on the full disk, so the pages free at
      ** the retry depend on its timing. Passing, the batch must be there
      ** whole (counted, and verified below with the rest). */
      chk_report(e == KLEVDB_EIO || (e == KLEVDB_OK && sc->limit == 0), __FILE__, __LINE__,
                 "%s: retry on a full disk: %s (%s)", sc->name, klevdb_errname(e), klevdb_errmsg(db));
      if (e == KLEVDB_OK) res.acked += sc->batch; /* it is there: count it */
      else CHECK_EQ(next, KLEVDB_OFFSET_INVALID);
      CHECK_DBOK(db, klevdb_next_offset(db, &next));
      chk_report(next == res.acked, __FILE__, __LINE__,
                 "%s: the failed retry left %lld message(s) in the store", sc->name,
                 (long long)(next - res.acked));
      if (next > res.acked) res.acked = next;
    }
    VERIFY_ALL(db, res.acked, sc->empty);
    /* reads still work, stat agrees */
    {
      klevdb_stat st = {-1, -1, -1};
      CHECK_DBOK(db, klevdb_stat_get(db, &st));
      CHECK_EQ(st.messages, res.acked);
    }
  }
  /* space again: publishing goes on at the next offset */
  free_space(sc);
  {
    int64_t more = publish_until(db, res.acked, 20, 1, sc->empty, &rc);
    chk_report(rc == KLEVDB_OK, __FILE__, __LINE__, "%s: publish after freeing space: %s (%s)",
               sc->name, klevdb_errname(rc), rc ? klevdb_errmsg(db) : "");
    res.acked += more;
  }
  VERIFY_ALL(db, res.acked, sc->empty);
  CHECK_DBOK(db, klevdb_sync(db, NULL));
close:
  CHECK_OK(klevdb_close(db));
out:
  if (write(wfd, &res, sizeof(res)) != (ssize_t)sizeof(res)) CHECK(0);
}

/* Runs fn in a child; its failed checks come back through the exit code. */
static int run_child(const char *what, void (*fn)(const void *), const void *arg) {
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) return chk_report(0, __FILE__, __LINE__, "%s: fork: %s", what, strerror(errno));
  if (pid == 0) {
    chk_failed = 0;
    chk_total = 0;
    fn(arg);
    fflush(stdout);
    fflush(stderr);
    _exit(chk_failed > 100 ? 100 : chk_failed);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
  return chk_report(ok, __FILE__, __LINE__, "%s: child %s %d (%s)", what,
                    WIFEXITED(st) ? "failed checks:" : "died of signal",
                    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st),
                    WIFEXITED(st) ? "see above" : strsignal(WTERMSIG(st)));
}

typedef struct fill_arg {
  const scen *sc;
  const char *dir;
  int wfd;
} fill_arg;

static void fill_child_fn(const void *p) {
  const fill_arg *a = p;
  fill_child(a->sc, a->dir, a->wfd);
}

/* Expected bytes of a single-segment store with n messages. */
static long long one_seg_bytes(const scen *sc, int64_t n) {
  int hdr = sc->ver == KLEVDB_V1 ? 0 : 8;
  int rec = (sc->ver == KLEVDB_V1 ? 28 : 36) + (sc->empty ? 0 : 138);
  return 2LL * hdr + n * (rec + 32);
}

/* Fills the store in dir (in a child), then checks it from here. */
static void fill_scenario(const scen *sc, const char *dir) {
  SECTION(sc->name);
  int p[2];
  if (pipe(p) != 0) {
    CHECK(0);
    return;
  }
  fill_arg a = {sc, dir, p[1]};
  run_child(sc->name, fill_child_fn, &a);
  close(p[1]);
  result res = {-1, -1, 0};
  ssize_t got = read(p[0], &res, sizeof(res));
  close(p[0]);
  if (!chk_report(got == (ssize_t)sizeof(res), __FILE__, __LINE__,
                  "%s: no result from the child", sc->name))
    return;
  printf("test_diskfull: [%s] %lld acknowledged before the failure, %lld in all\n", sc->name,
         (long long)res.at_fail, (long long)res.acked);
  if (!sc->split_n && res.at_fail == 0 && sc->limit)
    note("%s: the very first publish failed (a %llu-byte file limit, %lld-byte messages)",
         sc->name, (unsigned long long)sc->limit,
         (long long)(sc->empty ? 36 : 174));
  /* reopen without a limit: exactly the acknowledged messages */
  klevdb_error err;
  klevdb_options o = opts_tk();
  o.rollover = sc->rollover;
  o.new_segments_version = sc->ver;
  memset(&err, 0, sizeof(err));
  CHECK_ERR(klevdb_dir_check(dir, &o, &err), KLEVDB_OK);
  klevdb *db = OPEN(dir, &o);
  if (!db) return;
  VERIFY_ALL(db, res.acked, sc->empty);
  klevdb_stat st = {-1, -1, -1};
  CHECK_DBOK(db, klevdb_stat_get(db, &st));
  CHECK_EQ(st.messages, res.acked);
  /* no preallocated tail, no torn record: the files are what stat counts
  ** (once closed: the head's index is written when the head is sealed) */
  CHECK_OK(klevdb_close(db));
  CHECK_EQ(store_bytes(dir), st.size);
  if (st.segments == 1 && !sc->split_n) CHECK_EQ(st.size, one_seg_bytes(sc, res.acked));
  db = OPEN(dir, &o);
  if (!db) return;
  int64_t next = -1;
  klevdb_err rc;
  int64_t more = publish_until(db, res.acked, 5, 1, sc->empty, &rc);
  CHECK_DBOK(db, rc);
  CHECK_EQ(more, 5);
  CHECK_DBOK(db, klevdb_next_offset(db, &next));
  CHECK_EQ(next, res.acked + 5);
  CHECK_OK(klevdb_close(db));
  db = OPEN(dir, &o);
  if (db) {
    VERIFY_ALL(db, res.acked + 5, sc->empty);
    CHECK_OK(klevdb_close(db));
  }
}

static void test_rlimit(void) {
  static const scen scens[] = {
      /* the first fallocate (need + rollover/2) is already past the limit */
      {"fsize 256K, V2 mmap", KLEVDB_V2, 0, 1, 1 << 20, 256 << 10, NULL, 0, 0},
      {"fsize 768K, V2 mmap", KLEVDB_V2, 0, 1, 1 << 20, 768 << 10, NULL, 0, 0},
      {"fsize 768K+100, V2 mmap, batches of 64", KLEVDB_V2, 0, 64, 1 << 20, (768 << 10) + 100,
       NULL, 0, 0},
      {"fsize 768K, V2 mmap, empty messages", KLEVDB_V2, 1, 1, 1 << 20, 768 << 10, NULL, 0, 0},
      {"fsize 256K+100, V1 write()", KLEVDB_V1, 0, 1, 1 << 20, (256 << 10) + 100, NULL, 0, 0},
      {"fsize 256K+100, V1 write(), batches of 64", KLEVDB_V1, 0, 64, 1 << 20,
       (256 << 10) + 100, NULL, 0, 0},
      /* V1 empty messages: 28-byte records, 32-byte index items, so the
      ** index flush (write() of 4096 bytes of items) hits the limit first */
      {"fsize 256K+100, V1 index flush", KLEVDB_V1, 1, 1, 1 << 20, (256 << 10) + 100, NULL, 0,
       0},
      {"fsize 256K, V1 index flush at a page boundary", KLEVDB_V1, 1, 1, 1 << 20, 256 << 10,
       NULL, 0, 0},
      /* a batch of > 4 rollovers goes to segments of its own (publish_split) */
      {"fsize 768K, V2 split batch", KLEVDB_V2, 0, 1, 1 << 20, 768 << 10, NULL, 10, 30000},
  };
  for (size_t i = 0; i < sizeof(scens) / sizeof(scens[0]); i++) {
    char dir[256];
    tmp_dir(dir, sizeof(dir));
    fill_scenario(&scens[i], dir);
    rm_rf(dir);
  }
}

/* ---- a small tmpfs ---- */

static int make_file(const char *path, size_t n) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return -1;
  uint8_t buf[4096];
  memset(buf, 0x5a, sizeof(buf));
  size_t left = n;
  while (left) {
    ssize_t w = write(fd, buf, left < sizeof(buf) ? left : sizeof(buf));
    if (w <= 0) break;
    left -= (size_t)w;
  }
  close(fd);
  return left ? -1 : 0;
}

static int tmpfs_mount(const char *mnt, const char *size) {
  char opt[64];
  snprintf(opt, sizeof(opt), "size=%s,mode=0700", size);
  return mount("tmpfs", mnt, "tmpfs", MS_NOSUID | MS_NODEV, opt);
}

static void backup_full_child(const void *p) {
  /* The store at mnt/bk-src (read-write), a backup into the full mnt. */
  const char *mnt = p;
  char src[600], dst[600], fill[600];
  snprintf(src, sizeof(src), "%s/bk-src", mnt);
  snprintf(dst, sizeof(dst), "%s/bk-dst", mnt);
  snprintf(fill, sizeof(fill), "%s/fill", mnt);
  klevdb_options o = opts_tk();
  o.create_dirs = 1;
  klevdb *db = OPEN(src, &o);
  if (!db) return;
  PUBLISH(db, 0, 600, 0); /* ~100 KiB */
  CHECK_DBOK(db, klevdb_sync(db, NULL));
  snap before;
  snap_take(src, &before);
  /* fill what is left */
  {
    int fd = open(fill, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    uint8_t buf[4096];
    memset(buf, 1, sizeof(buf));
    while (fd >= 0 && write(fd, buf, sizeof(buf)) > 0) {
    }
    if (fd >= 0) close(fd);
  }
  klevdb_err e = klevdb_backup(db, dst);
  CHECK_DB(db, e, KLEVDB_EIO);
  CHECK(strstr(klevdb_errmsg(db), strerror(ENOSPC)) != NULL);
  CHECK_UNCHANGED(src, &before, "a backup into a full file system");
  VERIFY_ALL(db, 600, 0);
  unlink(fill);
  /* with room, the backup is complete and opens */
  rm_rf(dst);
  CHECK_DBOK(db, klevdb_backup(db, dst));
  CHECK_OK(klevdb_close(db));
  db = OPEN(dst, &o);
  if (db) {
    VERIFY_ALL(db, 600, 0);
    CHECK_OK(klevdb_close(db));
  }
}

/* Exactly the messages [from, to) of msgs_make are there. */
static void verify_range(klevdb *db, int64_t from, int64_t to) {
  klevdb_batch b = KLEVDB_BATCH_INIT;
  int64_t at = KLEVDB_OFFSET_OLDEST, want = from;
  klevdb_err rc;
  while ((rc = klevdb_consume(db, at, 500, &b)) == KLEVDB_OK && b.len) {
    for (size_t i = 0; i < b.len; i++, want++) {
      if (b.msgs[i].offset != want || !msg_ok(&b.msgs[i], want, 0)) {
        chk_report(0, __FILE__, __LINE__, "message %lld where %lld was expected, or not as published",
                   (long long)b.msgs[i].offset, (long long)want);
        klevdb_batch_free(&b);
        return;
      }
    }
    at = b.next_offset;
  }
  CHECK_DBOK(db, rc);
  CHECK_EQ(want, to);
  klevdb_batch_free(&b);
}

/* Trims on a full disk. One that needs space (a rewrite) fails while
** there is none, and works as soon as there is some again, without a
** reopen, even though a publish in between allocated room ahead for the
** head (a reopen gives that back; a trim must too). One that frees space
** (every sealed segment, and into the head) works on the full disk. */
static void trim_full_child(const void *p) {
  const char *mnt = p;
  char dir[600], ballast[600];
  snprintf(dir, sizeof(dir), "%s/trim", mnt);
  snprintf(ballast, sizeof(ballast), "%s/trim-ballast", mnt);
  if (!CHECK(make_file(ballast, 384 << 10) == 0)) return;
  klevdb_options o = opts_tk();
  o.create_dirs = 1;
  o.rollover = 256 << 10;
  klevdb *db = OPEN(dir, &o);
  if (!db) return;
  klevdb_err rc;
  int64_t n = publish_until(db, 0, 200000, 1, 0, &rc);
  CHECK_EQ(rc, KLEVDB_EIO);
  klevdb_deleted d = {0, 0};
  /* a rewrite of the first segment: no room for it */
  CHECK_DB(db, klevdb_trim_by_offset(db, 100, &d), KLEVDB_EIO);
  printf("test_diskfull: [%s] trim on the full disk: %s\n", chk_section, klevdb_errmsg(db));
  verify_range(db, 0, n);
  /* room again; a publish takes some of it ahead */
  CHECK(unlink(ballast) == 0);
  n += publish_until(db, n, 10, 1, 0, &rc);
  CHECK_DBOK(db, rc);
  rc = klevdb_trim_by_offset(db, 100, &d);
  chk_report(rc == KLEVDB_OK, __FILE__, __LINE__, "trim once there is room again: %s (%s)",
             klevdb_errname(rc), rc ? klevdb_errmsg(db) : "");
  if (rc == KLEVDB_OK) CHECK_EQ(d.count, 100);
  int64_t first = rc == KLEVDB_OK ? 100 : 0;
  verify_range(db, first, n);
  /* full again: a trim of every sealed segment and into the head */
  n += publish_until(db, n, 200000, 1, 0, &rc);
  CHECK_EQ(rc, KLEVDB_EIO);
  rc = klevdb_trim_by_offset(db, n - 10, &d);
  chk_report(rc == KLEVDB_OK, __FILE__, __LINE__, "a trim that frees space, on the full disk: %s (%s)",
             klevdb_errname(rc), rc ? klevdb_errmsg(db) : "");
  if (rc == KLEVDB_OK) first = n - 10;
  verify_range(db, first, n);
  n += publish_until(db, n, 5, 1, 0, &rc);
  CHECK_DBOK(db, rc);
  verify_range(db, first, n);
  CHECK_OK(klevdb_close(db));
  db = OPEN(dir, &o);
  if (db) {
    verify_range(db, first, n);
    CHECK_OK(klevdb_close(db));
  }
  rm_rf(dir);
}

static void test_tmpfs(void) {
  char mnt[256];
  SECTION("tmpfs");
  tmp_dir(mnt, sizeof(mnt));
  if (tmpfs_mount(mnt, "2m") != 0) {
    note("mount -t tmpfs failed (%s): the tmpfs part is skipped", strerror(errno));
    skipped_parts++;
    rm_rf(mnt);
    return;
  }
  static const struct {
    const char *name;
    klevdb_format ver;
    int empty, batch;
    int64_t rollover;
  } ts[] = {
      {"tmpfs 2M, V2 mmap, rollover 256K", KLEVDB_V2, 0, 1, 256 << 10},
      {"tmpfs 2M, V2 mmap, batches of 32, rollover 128K", KLEVDB_V2, 0, 32, 128 << 10},
      {"tmpfs 2M, V2 mmap, rollover 1M", KLEVDB_V2, 0, 1, 1 << 20},
      {"tmpfs 2M, V1 write(), rollover 256K", KLEVDB_V1, 0, 1, 256 << 10},
      {"tmpfs 2M, V1 empty messages (index flush)", KLEVDB_V1, 1, 1, 1 << 20},
      {"tmpfs 2M, V1 empty messages, rollover 64K", KLEVDB_V1, 1, 1, 64 << 10},
  };
  for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++) {
    char dir[600], ballast[600];
    snprintf(dir, sizeof(dir), "%s/store%zu", mnt, i);
    snprintf(ballast, sizeof(ballast), "%s/ballast%zu", mnt, i);
    SECTION(ts[i].name);
    if (!CHECK(make_file(ballast, 640 << 10) == 0)) continue;
    scen sc = {ts[i].name, ts[i].ver, ts[i].empty, ts[i].batch, ts[i].rollover, 0, ballast, 0, 0};
    fill_scenario(&sc, dir);
    rm_rf(dir);
    unlink(ballast);
  }
  SECTION("tmpfs backup into a full file system");
  run_child("backup into a full file system", backup_full_child, mnt);
  {
    char p[600];
    snprintf(p, sizeof(p), "%s/bk-src", mnt);
    rm_rf(p);
    snprintf(p, sizeof(p), "%s/bk-dst", mnt);
    rm_rf(p);
  }

  SECTION("tmpfs trim on a full file system");
  run_child("trim on a full file system", trim_full_child, mnt);

  /* a read-only file system: a read-write open is refused clearly, a
  ** read-only one reads */
  SECTION("tmpfs remounted read-only");
  {
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/ro", mnt);
    klevdb_options o = opts_tk();
    o.create_dirs = 1;
    klevdb *db = OPEN(dir, &o);
    if (db) {
      PUBLISH(db, 0, 10, 0);
      CHECK_OK(klevdb_close(db));
      if (mount(NULL, mnt, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0) {
        note("remount read-only failed (%s): skipped", strerror(errno));
      } else {
        snap before;
        snap_take(dir, &before);
        klevdb_error err;
        memset(&err, 0, sizeof(err));
        db = NULL;
        klevdb_err e = klevdb_open(dir, &o, &db, &err);
        CHECK_EQ(e, KLEVDB_EIO);
        CHECK(db == NULL);
        CHECK(strncmp(err.msg, "klevdb: ", 8) == 0 && strstr(err.msg, strerror(EROFS)) != NULL);
        printf("test_diskfull: [%s] read-write open: %s\n", chk_section, err.msg);
        if (db) klevdb_close(db);
        /* a new store under it cannot be made either */
        char sub[700];
        snprintf(sub, sizeof(sub), "%s/new", dir);
        db = NULL;
        memset(&err, 0, sizeof(err));
        CHECK_EQ(klevdb_open(sub, &o, &db, &err), KLEVDB_EIO);
        CHECK(strncmp(err.msg, "klevdb: ", 8) == 0);
        if (db) klevdb_close(db);
        klevdb_options ro = opts_tk();
        ro.readonly = 1;
        db = OPEN(dir, &ro);
        if (db) {
          VERIFY_ALL(db, 10, 0);
          CHECK_OK(klevdb_close(db));
        }
        CHECK_UNCHANGED(dir, &before, "opens on a read-only file system");
        CHECK(mount(NULL, mnt, NULL, MS_REMOUNT | MS_NOSUID | MS_NODEV, NULL) == 0);
      }
    }
  }
  if (umount(mnt) != 0) {
    CHECK(umount2(mnt, MNT_DETACH) == 0);
  }
  rm_rf(mnt);
}

/* ------------------------------------------------------------------ */
/* Part 3: bad input                                                   */

/* differences D10 for every rollover of 1..8 bytes (below the V2 header size): singles,
** a batch, a split batch; every message readable, reopen, go on. */
static void test_tiny_rollover(void) {
  for (int ver = 1; ver <= 2; ver++) {
    for (int64_t r = 1; r <= 8; r++) {
      char dir[256], name[64];
      snprintf(name, sizeof(name), "rollover %lld, V%d", (long long)r, ver);
      SECTION(name);
      tmp_dir(dir, sizeof(dir));
      klevdb_options o = opts_tk();
      o.rollover = r;
      o.new_segments_version = (klevdb_format)ver;
      klevdb *db = OPEN(dir, &o);
      if (!db) {
        rm_rf(dir);
        continue;
      }
      klevdb_options got;
      klevdb_get_options(db, &got);
      CHECK_EQ(got.rollover, r);
      PUBLISH(db, 0, 4, 0);
      PUBLISH_BATCH(db, 4, 3, 7);   /* 3 messages > 4 * rollover: split */
      PUBLISH(db, 7, 2, 7);
      VERIFY_ALL(db, 9, 0);
      for (int i = 0; i < 9; i++) GET_EXPECT(db, i, i, i);
      {
        klevdb_batch b = KLEVDB_BATCH_INIT;
        tmsg t;
        gen(&t, 5);
        CHECK_DBOK(db, klevdb_get_by_key(db, t.key, 10, &b));
        CHECK(b.len == 1 && b.msgs[0].offset == 5);
        CHECK_DBOK(db, klevdb_get_by_time(db, TI(6), &b));
        CHECK(b.len == 1 && b.msgs[0].offset == 6);
        CHECK_DBOK(db, klevdb_read(db, KLEVDB_OFFSET_NEWEST, 100, KLEVDB_READ_BACKWARD, &b));
        CHECK(b.len >= 1 && b.msgs[0].offset == 8);
        klevdb_batch_free(&b);
      }
      klevdb_stat st;
      CHECK_DBOK(db, klevdb_sync(db, NULL));
      CHECK_DBOK(db, klevdb_stat_get(db, &st));
      CHECK_EQ(st.messages, 9);
      CHECK_EQ(st.segments, count_ext(dir, ".log"));
      CHECK_OK(klevdb_close(db));   /* the head's index is written when it is sealed */
      CHECK_EQ(st.size, store_bytes(dir));
      klevdb_error err;
      CHECK_ERR(klevdb_dir_check(dir, &o, &err), KLEVDB_OK);
      db = OPEN(dir, &o);
      if (db) {
        VERIFY_ALL(db, 9, 0);
        PUBLISH(db, 9, 2, 9);
        VERIFY_ALL(db, 11, 0);
        CHECK_OK(klevdb_close(db));
      }
      rm_rf(dir);
    }
  }
}

/* SIZE_MAX counts on the klevdb_read variants: what exists, and no
** allocation of the count. */
static void test_huge_counts(void) {
  char dir[256];
  SECTION("huge max_count on klevdb_read");
  tmp_dir(dir, sizeof(dir));
  klevdb_options o = opts_tk();
  klevdb *db = OPEN(dir, &o);
  if (!db) goto out;
  PUBLISH(db, 0, 6, 0);
  klevdb_batch b = KLEVDB_BATCH_INIT;
  size_t counts[3] = {SIZE_MAX, SIZE_MAX / 2 + 1, (size_t)INT64_MAX};
  for (int i = 0; i < 3; i++) {
    CHECK_DBOK(db, klevdb_read(db, 0, counts[i], 0, &b));
    CHECK_BATCH(&b, 0, 0, 6);
    CHECK(b.cap < 1024);
    CHECK_DBOK(db, klevdb_read(db, KLEVDB_OFFSET_NEWEST, counts[i], KLEVDB_READ_BACKWARD, &b));
    CHECK_EQ(b.len, 6);
    CHECK(b.len == 6 && b.msgs[0].offset == 5 && b.msgs[5].offset == 0);
    CHECK_EQ(b.next_offset, -1);
    CHECK(b.cap < 1024);
    CHECK_DBOK(db, klevdb_read(db, 2, counts[i], KLEVDB_READ_OFFSETS, &b));
    CHECK_EQ(b.len, 4);
    CHECK(b.cap < 1024);
    CHECK_DBOK(db, klevdb_read(db, 3, counts[i], KLEVDB_READ_BACKWARD | KLEVDB_READ_OFFSETS, &b));
    CHECK(b.len == 4 && b.msgs[0].offset == 3);
    CHECK(b.cap < 1024);
    CHECK_DBOK(db, klevdb_consume_blocking(db, 6, counts[i], 0, &b));
    CHECK_EQ(b.len, 0);
    CHECK(b.cap < 1024);
  }
  /* unknown flags */
  CHECK_DB(db, klevdb_read(db, 0, 10, 0x100, &b), KLEVDB_EINVAL);
  CHECK_EQ(b.len, 0);
  CHECK_EQ(b.next_offset, KLEVDB_OFFSET_INVALID);
  CHECK_DB(db, klevdb_read(db, 0, 0, KLEVDB_READ_BACKWARD, &b), KLEVDB_EINVAL);
  klevdb_batch_free(&b);
  CHECK_OK(klevdb_close(db));
out:
  rm_rf(dir);
}

/* Huge and negative offsets on every call that takes one; the files do
** not change. */
static void test_huge_offsets(void) {
  char dir[256];
  SECTION("huge and negative offsets");
  tmp_dir(dir, sizeof(dir));
  klevdb_options o = opts_tk();
  o.rollover = 2 * SV2 + 8; /* segments of 2 or 3 messages */
  klevdb *db = OPEN(dir, &o);
  if (!db) goto out;
  PUBLISH(db, 0, 10, 0);
  CHECK_DBOK(db, klevdb_sync(db, NULL));
  snap before;
  snap_take(dir, &before);
  klevdb_batch b = KLEVDB_BATCH_INIT;
  tmsg t;
  gen(&t, 4);
  int64_t off = 0, tm = 0;

  /* get */
  GET_FAIL(db, INT64_MAX, KLEVDB_EINVALID_OFFSET);
  GET_FAIL(db, INT64_MIN, KLEVDB_EINVALID_OFFSET);
  GET_FAIL(db, -4, KLEVDB_EINVALID_OFFSET);
  GET_FAIL(db, KLEVDB_OFFSET_INVALID, KLEVDB_EINVALID_OFFSET);
  GET_FAIL(db, 10, KLEVDB_EINVALID_OFFSET);
  GET_EXPECT(db, KLEVDB_OFFSET_NEWEST, 9, 9);
  GET_EXPECT(db, KLEVDB_OFFSET_OLDEST, 0, 0);

  /* consume */
  CONSUME_FAIL(db, INT64_MAX, KLEVDB_EINVALID_OFFSET);
  CONSUME_FAIL(db, 11, KLEVDB_EINVALID_OFFSET);
  CONSUME_EXPECT(db, 10, 10, 10, 10, 0, 10); /* at the end: empty, not an error */
  {
    /* offsets below OffsetOldest: no crash, a clear answer (an error, or
    ** Go's reading from the start) */
    int64_t negs[3] = {INT64_MIN, -4, KLEVDB_OFFSET_INVALID};
    for (int i = 0; i < 3; i++) {
      klevdb_err e = klevdb_consume(db, negs[i], 10, &b);
      chk_report(e == KLEVDB_EINVALID_OFFSET || (e == KLEVDB_OK && b.len > 0 && b.msgs[0].offset == 0),
                 __FILE__, __LINE__, "consume(%lld): %s, %zu messages", (long long)negs[i],
                 klevdb_errname(e), b.len);
      if (e) CHECK_ERRMSG_DB(db);
      printf("test_diskfull: [%s] consume(%lld): %s (%zu messages, next %lld)\n", chk_section,
             (long long)negs[i], e ? klevdb_errmsg(db) : "ok", b.len, (long long)b.next_offset);
    }
  }
  /* backward from past the end: the newest; from below zero: nothing */
  CHECK_DBOK(db, klevdb_read(db, INT64_MAX, 3, KLEVDB_READ_BACKWARD, &b));
  CHECK(b.len >= 1 && b.msgs[0].offset == 9);
  CHECK_DBOK(db, klevdb_read(db, INT64_MIN, 3, KLEVDB_READ_BACKWARD, &b));
  CHECK_EQ(b.len, 0);
  CHECK_DB(db, klevdb_read(db, INT64_MAX, 3, KLEVDB_READ_OFFSETS, &b), KLEVDB_EINVALID_OFFSET);

  /* blocking consume past the end: an error now, no wait */
  {
    struct timespec a, z;
    clock_gettime(CLOCK_MONOTONIC, &a);
    CHECK_DB(db, klevdb_consume_blocking(db, INT64_MAX, 10, 5000, &b), KLEVDB_EINVALID_OFFSET);
    clock_gettime(CLOCK_MONOTONIC, &z);
    CHECK((z.tv_sec - a.tv_sec) < 2);
  }

  /* consume by key */
  {
    klevdb_err e = klevdb_consume_by_key(db, t.key, 10, INT64_MAX, 10, &b);
    CHECK(e == KLEVDB_EINVALID_OFFSET || (e == KLEVDB_OK && b.len == 0));
    printf("test_diskfull: [%s] consume_by_key(INT64_MAX): %s (%zu messages, next %lld)\n",
           chk_section, e ? klevdb_errmsg(db) : "ok", b.len, (long long)b.next_offset);
    e = klevdb_consume_by_key(db, t.key, 10, INT64_MIN, 10, &b);
    CHECK(e == KLEVDB_EINVALID_OFFSET || (e == KLEVDB_OK && b.len == 1 && b.msgs[0].offset == 4));
    printf("test_diskfull: [%s] consume_by_key(INT64_MIN): %s (%zu messages)\n", chk_section,
           e ? klevdb_errmsg(db) : "ok", b.len);
    CHECK_DBOK(db, klevdb_consume_by_key(db, t.key, 10, KLEVDB_OFFSET_OLDEST, 10, &b));
    CHECK(b.len == 1 && b.msgs[0].offset == 4);
  }

  /* times */
  CHECK_DB(db, klevdb_get_by_time(db, INT64_MAX, &b), KLEVDB_ENOTFOUND);
  CHECK_DBOK(db, klevdb_get_by_time(db, INT64_MIN + 1, &b));
  CHECK(b.len == 1 && b.msgs[0].offset == 0);
  CHECK_DB(db, klevdb_offset_by_time(db, INT64_MAX, &off, &tm), KLEVDB_ENOTFOUND);
  CHECK_DBOK(db, klevdb_time_floor(db, INT64_MAX, &off));
  CHECK_EQ(off, 10);
  CHECK_DBOK(db, klevdb_time_floor(db, INT64_MIN + 1, &off));
  CHECK_EQ(off, 0);

  /* delete: huge offsets delete nothing, negative ones are refused */
  {
    klevdb_deleted d = {-1, -1};
    int64_t *dels = NULL;
    int64_t big[2] = {INT64_MAX, INT64_MAX - 1};
    CHECK_DBOK(db, klevdb_delete(db, big, 2, &d, &dels));
    CHECK_EQ(d.count, 0);
    CHECK_EQ(d.size, 0);
    free(dels);
    dels = NULL;
    int64_t mixed[3] = {5, INT64_MIN, 6};
    d.count = -1;
    CHECK_DB(db, klevdb_delete(db, mixed, 3, &d, &dels), KLEVDB_EINVALID_OFFSET);
    CHECK_EQ(d.count, 0);
    CHECK(dels == NULL);
    int64_t inval = KLEVDB_OFFSET_INVALID;
    CHECK_DB(db, klevdb_delete(db, &inval, 1, &d, NULL), KLEVDB_EINVALID_OFFSET);
    int64_t newest = KLEVDB_OFFSET_NEWEST;
    CHECK_DB(db, klevdb_delete(db, &newest, 1, &d, NULL), KLEVDB_EINVALID_OFFSET);
  }
  /* delete_ranges that select nothing */
  {
    klevdb_deleted d = {-1, -1};
    klevdb_range r[6] = {{INT64_MIN, INT64_MIN + 1}, {-10, 0},         {INT64_MAX - 1, INT64_MAX},
                         {INT64_MAX, INT64_MIN},     {7, 3},           {10, INT64_MAX}};
    CHECK_DBOK(db, klevdb_delete_ranges(db, r, 6, &d));
    CHECK_EQ(d.count, 0);
    CHECK_EQ(d.size, 0);
    klevdb_range inv = {9, 0};
    CHECK_DBOK(db, klevdb_delete_ranges(db, &inv, 1, &d));
    CHECK_EQ(d.count, 0);
  }
  CHECK_DBOK(db, klevdb_sync(db, NULL));
  CHECK_UNCHANGED(dir, &before, "reads and deletes with huge or negative offsets");
  VERIFY_ALL(db, 10, 0);

  /* overlapping, duplicated and negative-from ranges: each offset once */
  {
    klevdb_deleted d = {-1, -1};
    klevdb_range r[5] = {{3, 5}, {2, 4}, {4, 7}, {3, 5}, {INT64_MIN, 1}};
    CHECK_DBOK(db, klevdb_delete_ranges(db, r, 5, &d));
    CHECK_EQ(d.count, 6); /* 0, 2, 3, 4, 5, 6 */
    CHECK_EQ(d.size, 6 * gen_size(db));
    int64_t offs[16];
    long n = CONSUME_ALL(db, 100, offs, 16);
    CHECK_EQ(n, 4);
    if (n == 4) {
      CHECK_EQ(offs[0], 1);
      CHECK_EQ(offs[1], 7);
      CHECK_EQ(offs[2], 8);
      CHECK_EQ(offs[3], 9);
    }
    GET_EXPECT(db, 1, 1, 1);
    GET_EXPECT(db, 8, 8, 8);
    CHECK_NEXT(db, 10);
    /* again: nothing more */
    CHECK_DBOK(db, klevdb_delete_ranges(db, r, 5, &d));
    CHECK_EQ(d.count, 0);
    /* everything, with the widest range: the next offset stays */
    klevdb_range all = {INT64_MIN, INT64_MAX};
    CHECK_DBOK(db, klevdb_delete_ranges(db, &all, 1, &d));
    CHECK_EQ(d.count, 4);
    CHECK_NEXT(db, 10);
    CONSUME_EXPECT(db, KLEVDB_OFFSET_OLDEST, 10, 10, 0, 0, 10);
    PUBLISH(db, 10, 2, 10);
    GET_EXPECT(db, 10, 10, 10);
  }
  klevdb_batch_free(&b);
  CHECK_OK(klevdb_close(db));
  db = OPEN(dir, &o);
  if (db) {
    int64_t offs[8];
    CHECK_EQ(CONSUME_ALL(db, 100, offs, 8), 2);
    CHECK_NEXT(db, 12);
    CHECK_OK(klevdb_close(db));
  }
out:
  rm_rf(dir);
}

/* A path that goes through a regular file: a clear error, nothing made. */
static void test_path_through_file(void) {
  char dir[256], file[300], p[400];
  SECTION("path through a regular file");
  tmp_dir(dir, sizeof(dir));
  snprintf(file, sizeof(file), "%s/plain", dir);
  CHECK(make_file(file, 100) == 0);
  snap before;
  snap_take(dir, &before);
  const char *subs[3] = {"store", "a/b/store", "."};
  for (int i = 0; i < 3; i++) {
    snprintf(p, sizeof(p), "%s/%s", file, subs[i]);
    for (int mode = 0; mode < 3; mode++) {
      klevdb_options o = opts_tk();
      o.create_dirs = mode != 2;
      o.readonly = mode == 2;
      klevdb_error err;
      memset(&err, 0, sizeof(err));
      klevdb *db = NULL;
      klevdb_err e = klevdb_open(p, &o, &db, &err);
      chk_report(e != KLEVDB_OK && db == NULL && err.code == e &&
                     strncmp(err.msg, "klevdb: ", 8) == 0,
                 __FILE__, __LINE__, "open(%s, mode %d): %s \"%s\"", p, mode, klevdb_errname(e),
                 err.msg);
      if (mode == 0) CHECK_EQ(e, KLEVDB_EIO);
      if (mode == 0) CHECK(strstr(err.msg, strerror(ENOTDIR)) != NULL);
      if (db) klevdb_close(db);
    }
    klevdb_error err;
    klevdb_options o = opts_tk();
    klevdb_stat st;
    memset(&err, 0, sizeof(err));
    CHECK(klevdb_dir_recover(p, &o, &err) != KLEVDB_OK || err.code == KLEVDB_OK);
    CHECK(klevdb_dir_stat(p, &o, &st, &err) != KLEVDB_OK || st.messages == 0);
  }
  /* backup into a path through a file */
  {
    char sdir[300];
    snprintf(sdir, sizeof(sdir), "%s/src", dir);
    klevdb_options o = opts_tk();
    o.create_dirs = 1;
    klevdb *db = OPEN(sdir, &o);
    if (db) {
      PUBLISH(db, 0, 3, 0);
      snprintf(p, sizeof(p), "%s/bk", file);
      CHECK_DB(db, klevdb_backup(db, p), KLEVDB_EIO);
      CHECK_OK(klevdb_close(db));
      klevdb_error err;
      memset(&err, 0, sizeof(err));
      CHECK_EQ(klevdb_dir_backup(sdir, p, &err), KLEVDB_EIO);
      CHECK(strncmp(err.msg, "klevdb: ", 8) == 0);
      rm_rf(sdir);
    }
  }
  CHECK_UNCHANGED(dir, &before, "opens of a path through a file");
  CHECK_EQ(file_size(file), 100);
  rm_rf(dir);
}

/* The directory is removed while the store is open: no crash, clear
** errors, the directory is not made again. */
static void test_removed_dir(void) {
  char base[256], dir[300];
  SECTION("directory removed under an open store");
  tmp_dir(base, sizeof(base));
  snprintf(dir, sizeof(dir), "%s/s", base);
  klevdb_options o = opts_tk();
  o.create_dirs = 1;
  o.rollover = 3 * SV2 + 8; /* 4 messages a segment */
  klevdb *db = OPEN(dir, &o);
  if (!db) goto out;
  PUBLISH(db, 0, 10, 0);
  klevdb_batch keep = KLEVDB_BATCH_INIT;
  CHECK_DBOK(db, klevdb_consume(db, 8, 10, &keep)); /* pins the head's map */
  {
    /* Out of the way first (a background thread may be making the next
    ** head's spare files in it), then gone. */
    char gone[400];
    snprintf(gone, sizeof(gone), "%s/gone", base);
    CHECK(rename(dir, gone) == 0);
    for (int i = 0; i < 100 && file_size(gone) >= 0; i++) rm_rf(gone);
    CHECK(file_size(gone) < 0);
  }
  CHECK(file_size(dir) < 0);
  klevdb_batch b = KLEVDB_BATCH_INIT;
  /* the head (mapped, items in memory) still reads */
  CHECK_DBOK(db, klevdb_get(db, 9, &b));
  CHECK(b.len == 1 && msg_ok(&b.msgs[0], 9, 0));
  CHECK(keep.len == 2 && msg_ok(&keep.msgs[0], 8, 0) && msg_ok(&keep.msgs[1], 9, 0));
  /* older segments: served or a clear error */
  {
    klevdb_err e = klevdb_get(db, 0, &b);
    CHECK(e == KLEVDB_OK || e == KLEVDB_EIO);
    if (e == KLEVDB_OK) CHECK(b.len == 1 && msg_ok(&b.msgs[0], 0, 0));
    else CHECK_ERRMSG_DB(db);
    printf("test_diskfull: [%s] get(0): %s\n", chk_section, e ? klevdb_errmsg(db) : "ok");
  }
  /* publishing: into the open head, or a clear error at rollover */
  {
    int64_t next = -99;
    klevdb_err last = KLEVDB_OK;
    int ok = 0;
    for (int i = 0; i < 6; i++) {
      tmsg t;
      gen(&t, 10 + ok);
      klevdb_err e = klevdb_publish(db, &t.m, 1, &next);
      if (e == KLEVDB_OK) {
        ok++;
        CHECK_EQ(next, 10 + ok);
      } else {
        CHECK_EQ(e, KLEVDB_EIO);
        CHECK_ERRMSG_DB(db);
        CHECK_EQ(next, KLEVDB_OFFSET_INVALID);
        last = e;
      }
    }
    printf("test_diskfull: [%s] %d of 6 publishes went into the removed head; last error: %s\n",
           chk_section, ok, last ? klevdb_errmsg(db) : "none");
    CHECK_NEXT(db, 10 + ok);
  }
  /* a delete must rewrite files in the directory: a clear error */
  {
    int64_t one = 9;
    klevdb_deleted d = {-1, -1};
    klevdb_err e = klevdb_delete(db, &one, 1, &d, NULL);
    CHECK(e == KLEVDB_EIO);
    if (e) CHECK_ERRMSG_DB(db);
    printf("test_diskfull: [%s] delete(9): %s\n", chk_section, e ? klevdb_errmsg(db) : "ok");
  }
  {
    char bk[400];
    snprintf(bk, sizeof(bk), "%s/bk", base);
    klevdb_err e = klevdb_backup(db, bk);
    int n = count_ext(bk, ".log");
    printf("test_diskfull: [%s] backup: %s, %d logs copied\n", chk_section,
           e ? klevdb_errmsg(db) : "ok", n);
    /* an OK backup must hold the store; one with nothing in it is a lie */
    chk_report(e != KLEVDB_OK || n > 0, __FILE__, __LINE__,
               "backup of a store whose files are gone returned OK with %d segments", n);
  }
  CHECK(klevdb_sync(db, NULL) == KLEVDB_OK || klevdb_errcode(db) == KLEVDB_EIO);
  klevdb_batch_free(&b);
  klevdb_batch_free(&keep);
  CHECK_OK(klevdb_close(db));
  /* the store did not bring the directory back */
  CHECK(file_size(dir) < 0);
  /* and a fresh open there makes a new, empty store */
  db = OPEN(dir, &o);
  if (db) {
    CHECK_NEXT(db, 0);
    CHECK_OK(klevdb_close(db));
  }
out:
  rm_rf(base);
}

/* As a user that is not root (chmod does not stop root): unreadable and
** unwritable directories and files give a clear error and change nothing. */
typedef struct perm_arg {
  const char *store, *locked, *ro_parent;
} perm_arg;

static void perm_child(const void *p) {
  const perm_arg *a = p;
  if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0) {
    printf("test_diskfull: NOTE: cannot become nobody (%s)\n", strerror(errno));
    _exit(77);
  }
  klevdb_error err;
  klevdb *db;
  const char *deny = strerror(EACCES);
  struct {
    const char *dir;
    int readonly, create;
  } cases[] = {
      {a->store, 0, 0},     /* files 0600 of root: no .lock, no logs */
      {a->store, 1, 0},     /* read-only: the logs cannot be read */
      {a->locked, 0, 0},    /* a directory mode 000 */
      {a->locked, 1, 0},
      {a->ro_parent, 0, 1}, /* create a store in a directory mode 0555 */
  };
  char sub[600];
  snprintf(sub, sizeof(sub), "%s/new", a->ro_parent);
  cases[4].dir = sub;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    klevdb_options o = opts_tk();
    o.readonly = cases[i].readonly;
    o.create_dirs = cases[i].create;
    memset(&err, 0, sizeof(err));
    db = NULL;
    klevdb_err e = klevdb_open(cases[i].dir, &o, &db, &err);
    chk_report(e == KLEVDB_EIO && db == NULL && strncmp(err.msg, "klevdb: ", 8) == 0 &&
                   strstr(err.msg, deny) != NULL,
               __FILE__, __LINE__, "open(%s, readonly %d) as nobody: %s \"%s\"", cases[i].dir,
               cases[i].readonly, klevdb_errname(e), err.msg);
    printf("test_diskfull: [%s] as nobody, open(%s, readonly %d): %s\n", chk_section,
           cases[i].dir, cases[i].readonly, err.msg);
    if (db) klevdb_close(db);
  }
  /* directory helpers */
  {
    klevdb_options o = opts_tk();
    klevdb_stat st;
    memset(&err, 0, sizeof(err));
    klevdb_err e = klevdb_dir_stat(a->locked, &o, &st, &err);
    chk_report(e == KLEVDB_EIO && strstr(err.msg, deny) != NULL, __FILE__, __LINE__,
               "dir_stat of a 000 directory: %s \"%s\"", klevdb_errname(e), err.msg);
    memset(&err, 0, sizeof(err));
    e = klevdb_dir_check(a->store, &o, &err);
    chk_report(e == KLEVDB_EIO && strstr(err.msg, deny) != NULL, __FILE__, __LINE__,
               "dir_check of unreadable files: %s \"%s\"", klevdb_errname(e), err.msg);
    memset(&err, 0, sizeof(err));
    e = klevdb_dir_recover(a->store, &o, &err);
    chk_report(e == KLEVDB_EIO && strstr(err.msg, deny) != NULL, __FILE__, __LINE__,
               "dir_recover of unreadable files: %s \"%s\"", klevdb_errname(e), err.msg);
    memset(&err, 0, sizeof(err));
    e = klevdb_dir_migrate(a->store, &o, KLEVDB_V1, &err);
    chk_report(e == KLEVDB_EIO && strstr(err.msg, deny) != NULL, __FILE__, __LINE__,
               "dir_migrate of unreadable files: %s \"%s\"", klevdb_errname(e), err.msg);
    char bk[700];
    snprintf(bk, sizeof(bk), "%s/bk", a->ro_parent);
    memset(&err, 0, sizeof(err));
    e = klevdb_dir_backup(a->store, bk, &err);
    chk_report(e == KLEVDB_EIO && strncmp(err.msg, "klevdb: ", 8) == 0, __FILE__, __LINE__,
               "dir_backup as nobody: %s \"%s\"", klevdb_errname(e), err.msg);
  }
}

static void test_permissions(void) {
  char base[256], store[300], locked[300], rop[300];
  SECTION("directories nobody may read");
  tmp_dir(base, sizeof(base));
  chmod(base, 0755);
  snprintf(store, sizeof(store), "%s/store", base);
  snprintf(locked, sizeof(locked), "%s/locked", base);
  snprintf(rop, sizeof(rop), "%s/ro", base);
  klevdb_options o = opts_tk();
  o.create_dirs = 1;
  const char *dirs[2] = {store, locked};
  for (int i = 0; i < 2; i++) {
    klevdb *db = OPEN(dirs[i], &o);
    if (!db) goto out;
    PUBLISH(db, 0, 5, 0);
    CHECK_OK(klevdb_close(db));
  }
  chmod(store, 0755); /* the files stay 0600 */
  chmod(locked, 0000);
  mkdir(rop, 0555);
  chmod(rop, 0555);
  snap s0, l0;
  snap_take(store, &s0);
  snap_take(locked, &l0);
  perm_arg a = {store, locked, rop};
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    chk_failed = 0;
    perm_child(&a);
    fflush(stdout);
    fflush(stderr);
    _exit(chk_failed > 76 ? 76 : chk_failed);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
    note("cannot switch to an unprivileged user: skipped");
    skipped_parts++;
  } else {
    chk_report(WIFEXITED(st) && WEXITSTATUS(st) == 0, __FILE__, __LINE__,
               "permission checks as nobody: %s %d", WIFEXITED(st) ? "failed" : "signal",
               WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
  }
  CHECK_UNCHANGED(store, &s0, "opens as nobody");
  CHECK_UNCHANGED(locked, &l0, "opens of a 000 directory as nobody");
  CHECK(count_ext(rop, "") == 2); /* only . and .. */
  chmod(locked, 0700);
  for (int i = 0; i < 2; i++) {
    klevdb_options oo = opts_tk();
    klevdb *db = OPEN(dirs[i], &oo);
    if (db) {
      VERIFY_ALL(db, 5, 0);
      CHECK_OK(klevdb_close(db));
    }
  }
out:
  chmod(locked, 0700);
  rm_rf(base);
}

int main(void) {
  chk_name = "test_diskfull";
  setvbuf(stdout, NULL, _IOLBF, 0);
  test_rlimit();
  test_tmpfs();
  test_tiny_rollover();
  test_huge_counts();
  test_huge_offsets();
  test_path_through_file();
  test_removed_dir();
  test_permissions();
  if (skipped_parts) printf("test_diskfull: %d part(s) skipped (see NOTE lines)\n", skipped_parts);
  return check_done();
}
