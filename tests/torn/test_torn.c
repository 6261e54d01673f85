/*
** test_torn.c - torn-write / power-loss suite.
**
** Builds a store (V2, and one V1), then damages copies of it: the head
** log and index are cut, or have one byte complemented, at every byte
** position of their last records; single bits are flipped at a sample of
** positions in older records (older segments, the head's first records,
** file headers). Each damaged copy is opened read-only and read-write,
** checked and recovered, every open in a forked child with an alarm, so
** a crash or a hang is caught. Every outcome must be the correct data (a
** torn tail may be dropped) or a clear corruption error naming the
** damaged segment: never a crash, a hang, a duplicate offset, a wrong
** message, or a message lost silently. Recover keeps every message whose
** bytes were intact before the damage point.
**
**   test_torn          the CI form (suite 'torn')
**   test_torn --long   every byte of the last 4 records, more bit flips
**   test_torn -v       print every failure in full (default: the first 40)
**                      and the distinct clear errors seen
**   test_torn --keep   only build the two stores and keep them (debugging)
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "klevdb.h"
#include "../check.h"

#define NMSG 30
#define MAXSEG 16
#define MAXREC 64
#define MAXFILES (2 * MAXSEG)
#define WHY_CAP 1024

/* ------------------------------------------------------------------ */
/* The original messages                                               */

typedef struct {
  uint8_t key[8];
  size_t key_len;
  uint8_t value[64];
  size_t value_len;
  int64_t time;
} omsg;

static omsg orig[NMSG];
static omsg fresh; /* the message published after the damage */

static void make_messages(void) {
  for (int i = 0; i < NMSG; i++) {
    omsg *m = &orig[i];
    m->key_len = (i == 3) ? 0 : (size_t)snprintf((char *)m->key, sizeof(m->key), "k%d", i % 7);
    m->value_len = (i == 7) ? 0 : (size_t)((i * 13) % 47 + 1);
    for (size_t j = 0; j < m->value_len; j++) m->value[j] = (uint8_t)(i * 31 + j * 7 + 1);
    m->time = 1700000000000000LL + (int64_t)i * 1000003;
  }
  memcpy(fresh.key, "new", 3);
  fresh.key_len = 3;
  memcpy(fresh.value, "fresh value", 11);
  fresh.value_len = 11;
  fresh.time = 1800000000000000LL;
}

static klevdb_msg to_msg(const omsg *o) {
  klevdb_msg m = {0, o->time, o->key_len ? o->key : NULL, o->key_len,
                  o->value_len ? o->value : NULL, o->value_len};
  return m;
}

/* ------------------------------------------------------------------ */
/* Files                                                               */

static void die(const char *what) {
  perror(what);
  exit(2);
}

static int write_file(const char *path, const uint8_t *data, size_t len) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return -1;
  size_t done = 0;
  while (done < len) {
    ssize_t w = write(fd, data + done, len - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      close(fd);
      return -1;
    }
    done += (size_t)w;
  }
  return close(fd);
}

static uint8_t *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) die(path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *p = malloc((size_t)n + 1);
  if (!p || fread(p, 1, (size_t)n, f) != (size_t)n) die("read");
  fclose(f);
  *len = (size_t)n;
  return p;
}

/* Removes every entry of dir (the store has no subdirectories). */
static void clear_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *de;
  char p[4096];
  while ((de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
    unlink(p);
  }
  closedir(d);
}

static void rm_dir(const char *dir) {
  clear_dir(dir);
  rmdir(dir);
}

static uint64_t be64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | p[i];
  return v;
}

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ------------------------------------------------------------------ */
/* A pristine store image and its layout                               */

typedef struct {
  char name[64];
  uint8_t *data;
  size_t len;
} file_t;

typedef struct {
  int64_t base;
  int64_t end;  /* offsets [base, end) */
  int logf, idxf; /* index into img.files */
  int nrec;
  int64_t rpos[MAXREC], rlen[MAXREC], roff[MAXREC];
  int64_t ihdr; /* 8 for a V2 index, 0 for V1 */
} seg_t;

typedef struct {
  const char *name; /* "v2" / "v1" */
  klevdb_options opts;
  file_t files[MAXFILES];
  int nfiles;
  seg_t segs[MAXSEG];
  int nsegs;
  int64_t isz;
} image_t;

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static void build_image(image_t *img, const char *root, klevdb_format ver) {
  char dir[4096];
  snprintf(dir, sizeof(dir), "%s/pristine-%s", root, img->name);
  klevdb_options o = {0};
  o.create_dirs = 1;
  o.key_index = 1;
  o.time_index = 1;
  o.rollover = 600;
  o.new_segments_version = ver;
  img->opts = o;
  img->opts.create_dirs = 0;
  img->isz = 32;
  klevdb *db;
  klevdb_error err;
  if (klevdb_open(dir, &o, &db, &err)) {
    fprintf(stderr, "open %s: %s\n", dir, err.msg);
    exit(2);
  }
  for (int i = 0; i < NMSG; i++) {
    klevdb_msg m = to_msg(&orig[i]);
    int64_t next;
    if (klevdb_publish(db, &m, 1, &next) || next != i + 1) {
      fprintf(stderr, "publish %d: %s\n", i, klevdb_errmsg(db));
      exit(2);
    }
  }
  if (klevdb_close(db)) die("close");

  /* The segments, by base. */
  int64_t bases[MAXSEG];
  int n = 0;
  DIR *d = opendir(dir);
  if (!d) die(dir);
  struct dirent *de;
  while ((de = readdir(d))) {
    size_t l = strlen(de->d_name);
    if (l > 4 && !strcmp(de->d_name + l - 4, ".log")) {
      if (n == MAXSEG) die("too many segments");
      bases[n++] = strtoll(de->d_name, NULL, 10);
    }
  }
  closedir(d);
  qsort(bases, (size_t)n, sizeof(bases[0]), cmp_i64);
  img->nsegs = n;
  img->nfiles = 0;
  for (int i = 0; i < n; i++) {
    seg_t *s = &img->segs[i];
    s->base = bases[i];
    s->end = i + 1 < n ? bases[i + 1] : NMSG;
    for (int k = 0; k < 2; k++) {
      file_t *f = &img->files[img->nfiles];
      snprintf(f->name, sizeof(f->name), "%020" PRId64 "%s", s->base, k ? ".index" : ".log");
      char p[4200];
      snprintf(p, sizeof(p), "%s/%s", dir, f->name);
      f->data = read_file(p, &f->len);
      if (k) s->idxf = img->nfiles;
      else s->logf = img->nfiles;
      img->nfiles++;
    }
    /* Records of the log. */
    const file_t *lf = &img->files[s->logf];
    int v2 = lf->len >= 8 && !memcmp(lf->data, "\xffklevs", 6);
    int64_t pos = v2 ? 8 : 0, hs = v2 ? 36 : 28;
    s->nrec = 0;
    while (pos + hs <= (int64_t)lf->len) {
      const uint8_t *r = lf->data + pos;
      uint32_t k = be32(r + (v2 ? 20 : 16)), v = be32(r + (v2 ? 24 : 20));
      if (s->nrec == MAXREC) die("too many records");
      s->rpos[s->nrec] = pos;
      s->rlen[s->nrec] = hs + k + v;
      s->roff[s->nrec] = (int64_t)be64(r + (v2 ? 4 : 0));
      s->nrec++;
      pos += hs + k + v;
    }
    if (pos != (int64_t)lf->len || s->nrec != s->end - s->base) {
      fprintf(stderr, "%s: segment %" PRId64 ": layout does not parse\n", img->name, s->base);
      exit(2);
    }
    const file_t *xf = &img->files[s->idxf];
    s->ihdr = xf->len >= 8 && !memcmp(xf->data, "\xffklevi", 6) ? 8 : 0;
    if ((int64_t)xf->len != s->ihdr + s->nrec * img->isz) {
      fprintf(stderr, "%s: segment %" PRId64 ": index size %zu\n", img->name, s->base, xf->len);
      exit(2);
    }
  }
  if (n < 2) {
    fprintf(stderr, "%s: only %d segment(s): rollover too big\n", img->name, n);
    exit(2);
  }
  printf("store %s: %d segments (bases", img->name, n);
  for (int i = 0; i < n; i++)
    printf(" %" PRId64 "[%d rec, %zu B]", img->segs[i].base, img->segs[i].nrec,
           img->files[img->segs[i].logf].len);
  printf("), %d messages\n", NMSG);
}

/* ------------------------------------------------------------------ */
/* Damage                                                              */

enum { D_TRUNC, D_COMPL, D_FLIP };
static const char *kind_name[] = {"truncate", "complement byte", "flip bit"};

typedef struct {
  int cat;       /* category */
  int seg;       /* damaged segment (index into img->segs) */
  int file;      /* damaged file */
  int kind;
  int64_t pos;
  int bit;
  int64_t intact_upto; /* offsets of the damaged segment below this are intact */
} damage_t;

enum {
  C_LOG_TRUNC, C_LOG_BYTE, C_IDX_TRUNC, C_IDX_BYTE,
  C_FLIP_OLD_LOG, C_FLIP_OLD_IDX, C_FLIP_HEAD_LOG, C_FLIP_HEAD_IDX, C_N
};
static const char *cat_name[C_N] = {
  "head log cut", "head log byte", "head index cut", "head index byte",
  "old log bit", "old index bit", "head log bit (first records)", "head index bit (first items)",
};

/* The first offset of segment s whose record the damage touches. */
static int64_t intact_upto(const image_t *img, int si, const damage_t *d) {
  const seg_t *s = &img->segs[si];
  if (d->file == s->idxf) return s->end; /* the log is intact */
  for (int r = 0; r < s->nrec; r++) {
    int64_t end = s->rpos[r] + s->rlen[r];
    if (end > d->pos) return s->roff[r]; /* cut inside, or a byte of it */
  }
  return s->end;
}

/* Writes the image, with the damage, into dir. */
static void materialize(const image_t *img, const damage_t *d, const char *dir) {
  clear_dir(dir);
  static uint8_t buf[1 << 16];
  char p[4200];
  for (int i = 0; i < img->nfiles; i++) {
    const file_t *f = &img->files[i];
    size_t len = f->len;
    const uint8_t *data = f->data;
    if (d && i == d->file) {
      if (len > sizeof(buf)) die("file too big");
      memcpy(buf, f->data, len);
      if (d->kind == D_TRUNC) len = (size_t)d->pos;
      else if (d->kind == D_COMPL) buf[d->pos] = (uint8_t)~buf[d->pos];
      else buf[d->pos] ^= (uint8_t)(1u << d->bit);
      data = buf;
    }
    snprintf(p, sizeof(p), "%s/%s", dir, f->name);
    if (write_file(p, data, len)) die(p);
  }
}

/* ------------------------------------------------------------------ */
/* The checks run in a child                                           */

enum { R_FULL, R_PARTIAL, R_ERROR, R_MISSED, R_V1TIME, R_N };
static const char *res_name[R_N] = {"correct (all)", "correct (torn tail dropped)",
                                    "clear error", "check ok on damage",
                                    "V1 time field changed, undetectable"};
#define R_FAIL 10

static char why[WHY_CAP];
static int why_fd = -1;

static void failf(const char *fmt, ...) {
  char b[WHY_CAP];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(b, sizeof(b), fmt, ap);
  va_end(ap);
  snprintf(why, sizeof(why), "%s", b);
  if (why_fd >= 0) {
    ssize_t w = write(why_fd, why, strlen(why));
    (void)w;
  }
  _exit(R_FAIL);
}

/* The base a message names after prefix ("segment ", "check ", ...), or
** -1. */
static int64_t named_base(const char *msg, const char *prefix) {
  const char *p = msg;
  size_t pl = strlen(prefix);
  while ((p = strstr(p, prefix))) {
    p += pl;
    if (*p >= '0' && *p <= '9') return strtoll(p, NULL, 10);
  }
  return -1;
}

/* A corruption error that names segment base. */
static void need_clear(const char *step, klevdb_err rc, const char *msg, int64_t base,
                       const char *prefix2) {
  if (rc != KLEVDB_ECORRUPT_LOG && rc != KLEVDB_ECORRUPT_INDEX)
    failf("%s: error class %s (want log_corrupted/index_corrupted): %s", step,
          klevdb_errname(rc), msg);
  if (strncmp(msg, "klevdb: ", 8) != 0) failf("%s: message without \"klevdb: \": %s", step, msg);
  int64_t b = named_base(msg, "segment ");
  if (b < 0 && prefix2) b = named_base(msg, prefix2);
  if (b != base)
    failf("%s: error does not name segment %" PRId64 ": %s", step, base, msg);
  /* The first clear error goes to the parent too (shown with -v). */
  static int told;
  if (!told && why_fd >= 0) {
    char line[WHY_CAP];
    int n = snprintf(line, sizeof(line), "E:%s: %s\n", step, msg);
    ssize_t w = write(why_fd, line, n > 0 && n < (int)sizeof(line) ? (size_t)n : strlen(line));
    (void)w;
    told = 1;
  }
}

typedef struct {
  const image_t *img;
  const damage_t *d;
  int64_t new_off; /* offset of the fresh message, or -1 */
} expect_t;

static const omsg *expected(const expect_t *x, int64_t off) {
  if (x->new_off >= 0 && off == x->new_off) return &fresh;
  if (off >= 0 && off < NMSG && (x->new_off < 0 || off < x->new_off)) return &orig[off];
  return NULL;
}

/* V1 records leave their header out of the CRC: a changed time field
** cannot be detected (a format limit, counted apart, not a failure). */
static int v1_time_seen;
static int v1_time_damage(const image_t *img, const damage_t *d, int64_t off) {
  const seg_t *s = &img->segs[d->seg];
  if (d->kind == D_TRUNC || d->file != s->logf || s->rpos[0] != 0) return 0; /* V2 */
  for (int r = 0; r < s->nrec; r++)
    if (s->roff[r] == off) return d->pos - s->rpos[r] >= 8 && d->pos - s->rpos[r] < 16;
  return 0;
}

/* The same for a V1 record's offset field (bytes 0..7 of the record): a
** changed offset parses as another message, which neither the CRC nor the
** scan can tell (the format limit again, counted with the time field). */
static int v1_offset_damage(const image_t *img, const damage_t *d) {
  const seg_t *s = &img->segs[d->seg];
  if (d->kind == D_TRUNC || d->file != s->logf || s->rpos[0] != 0) return 0; /* V2 */
  for (int r = 0; r < s->nrec; r++)
    if (d->pos >= s->rpos[r] && d->pos - s->rpos[r] < 8) return 1;
  return 0;
}

static int seg_of(const image_t *img, int64_t off) {
  int si = 0;
  for (int i = 0; i < img->nsegs; i++)
    if (off >= img->segs[i].base) si = i;
  return si;
}

typedef struct {
  unsigned char seen[NMSG + 2];
  int errors;
  int err_seg_hit; /* the damaged segment reported an error */
  int64_t max_seen;
  int nseen;
} consumed_t;

/* Consumes the whole store; an error in the damaged segment resumes at
** the next segment. */
static void consume_all(const char *step, klevdb *db, const expect_t *x, consumed_t *c) {
  const image_t *img = x->img;
  int64_t dbase = img->segs[x->d->seg].base;
  memset(c, 0, sizeof(*c));
  c->max_seen = -1;
  klevdb_batch b = KLEVDB_BATCH_INIT;
  int64_t off = KLEVDB_OFFSET_OLDEST;
  int iter;
  for (iter = 0; iter < 1000; iter++) {
    klevdb_err rc = klevdb_consume(db, off, 4, &b);
    if (rc) {
      const char *msg = klevdb_errmsg(db);
      need_clear(step, rc, msg, dbase, NULL);
      c->errors++;
      c->err_seg_hit = 1;
      /* Go on after the damaged segment. */
      int di = x->d->seg;
      if (di + 1 >= img->nsegs) break;
      int64_t next = img->segs[di + 1].base;
      if (off >= 0 && next <= off) break;
      off = next;
      continue;
    }
    if (b.len == 0) break;
    for (size_t i = 0; i < b.len; i++) {
      const klevdb_msg *m = &b.msgs[i];
      if (m->offset <= c->max_seen)
        failf("%s: offset %" PRId64 " after %" PRId64 " (duplicate or going back)", step,
              m->offset, c->max_seen);
      const omsg *o = expected(x, m->offset);
      if (!o && v1_offset_damage(img, x->d)) {
        v1_time_seen = 1;
        continue;
      }
      if (!o) failf("%s: message at offset %" PRId64 ", which was never published", step, m->offset);
      if (m->time != o->time && v1_time_damage(img, x->d, m->offset)) v1_time_seen = 1;
      else if (m->time != o->time || m->key_len != o->key_len || m->value_len != o->value_len ||
          (o->key_len && memcmp(m->key, o->key, o->key_len)) ||
          (o->value_len && memcmp(m->value, o->value, o->value_len)))
        failf("%s: wrong message at offset %" PRId64 " (time %" PRId64 "/%" PRId64
              ", key %zu/%zu B, value %zu/%zu B)", step, m->offset, m->time, o->time,
              m->key_len, o->key_len, m->value_len, o->value_len);
      c->max_seen = m->offset;
      if (m->offset >= 0 && m->offset < NMSG + 2) c->seen[m->offset] = 1;
      c->nseen++;
    }
    if (b.next_offset <= c->max_seen)
      failf("%s: next offset %" PRId64 " does not move past %" PRId64, step, b.next_offset,
            c->max_seen);
    off = b.next_offset;
  }
  if (iter == 1000) failf("%s: consume does not end", step);
  klevdb_batch_free(&b);

  /* Nothing lost silently: undamaged segments are whole, the damaged
  ** one keeps its intact prefix unless it reported an error. */
  int64_t lim = x->new_off >= 0 ? x->new_off : NMSG;
  for (int64_t o = 0; o < lim && o < NMSG; o++) {
    int si = seg_of(img, o);
    int must = si != x->d->seg || (!c->err_seg_hit && o < x->d->intact_upto);
    if (must && !c->seen[o])
      failf("%s: offset %" PRId64 " (segment %" PRId64 ") missing without an error", step, o,
            img->segs[si].base);
  }
}

static int classify(const consumed_t *c, int64_t total) {
  if (v1_time_seen) return R_V1TIME;
  if (c->errors) return R_ERROR;
  return c->nseen == total ? R_FULL : R_PARTIAL;
}

static klevdb_options ro_opts(const image_t *img) {
  klevdb_options o = img->opts;
  o.readonly = 1;
  return o;
}

static int step_ro(const expect_t *x, const char *dir) {
  klevdb_options o = ro_opts(x->img);
  klevdb *db;
  klevdb_error err;
  klevdb_err rc = klevdb_open(dir, &o, &db, &err);
  int64_t dbase = x->img->segs[x->d->seg].base;
  if (rc) {
    need_clear("read-only open", rc, err.msg, dbase, NULL);
    return R_ERROR;
  }
  consumed_t c;
  consume_all("read-only consume", db, x, &c);
  /* Get agrees: every message whose record is intact (and every one that
  ** consume returned) is there by offset, or get fails clearly; "not
  ** found" for a message the log holds is a wrong answer. */
  klevdb_batch b = KLEVDB_BATCH_INIT;
  for (int64_t off = 0; off < NMSG; off++) {
    int si = seg_of(x->img, off);
    if (!c.seen[off] && si == x->d->seg && off >= x->d->intact_upto) continue;
    rc = klevdb_get(db, off, &b);
    if (rc) {
      if (si != x->d->seg)
        failf("read-only get %" PRId64 " (undamaged segment %" PRId64 "): %s", off,
              x->img->segs[si].base, klevdb_errmsg(db));
      if (rc == KLEVDB_ENOTFOUND || rc == KLEVDB_EINVALID_OFFSET)
        failf("read-only get %" PRId64 ": the log holds it intact%s, get says: %s", off,
              c.seen[off] ? " (and consume returned it)" : "", klevdb_errmsg(db));
      need_clear("read-only get", rc, klevdb_errmsg(db), dbase, NULL);
      continue;
    }
    const klevdb_msg *m = &b.msgs[0];
    const omsg *o = &orig[off];
    if (b.len != 1 || m->offset != off)
      failf("read-only get %" PRId64 ": got offset %" PRId64, off, b.len ? m->offset : -1);
    if (m->time != o->time && v1_time_damage(x->img, x->d, off)) continue;
    if (m->time != o->time || m->key_len != o->key_len || m->value_len != o->value_len ||
        (o->key_len && memcmp(m->key, o->key, o->key_len)) ||
        (o->value_len && memcmp(m->value, o->value, o->value_len)))
      failf("read-only get %" PRId64 ": wrong message", off);
  }
  klevdb_batch_free(&b);
  klevdb_close(db);
  return classify(&c, NMSG);
}

static int step_check(const expect_t *x, const char *dir) {
  klevdb_error err;
  klevdb_err rc = klevdb_dir_check(dir, &x->img->opts, &err);
  const image_t *img = x->img;
  int64_t dbase = img->segs[x->d->seg].base;
  int head = x->d->seg == img->nsegs - 1;
  if (rc) {
    if (!head)
      failf("check: error on an undamaged head (damage in segment %" PRId64 "): %s", dbase,
            err.msg);
    need_clear("check", rc, err.msg, dbase, "check ");
    return R_ERROR;
  }
  return head ? R_MISSED : R_FULL;
}

static int step_rw(const expect_t *x0, const char *dir) {
  expect_t x = *x0;
  klevdb *db;
  klevdb_error err;
  const image_t *img = x.img;
  int64_t dbase = img->segs[x.d->seg].base;
  klevdb_err rc = klevdb_open(dir, &img->opts, &db, &err);
  if (rc) {
    need_clear("read-write open", rc, err.msg, dbase, NULL);
    return R_ERROR;
  }
  consumed_t c;
  consume_all("read-write consume", db, &x, &c);
  int res = classify(&c, NMSG);

  int64_t next;
  if (klevdb_next_offset(db, &next)) failf("read-write: next offset: %s", klevdb_errmsg(db));
  if (next <= c.max_seen)
    failf("read-write: next offset %" PRId64 " but offset %" PRId64 " is readable (duplicate ahead)",
          next, c.max_seen);
  if (!c.errors && next != c.max_seen + 1)
    failf("read-write: next offset %" PRId64 " after a clean read ending at %" PRId64
          " (offsets skipped)", next, c.max_seen);
  if (next > NMSG) failf("read-write: next offset %" PRId64 " beyond the %d messages", next, NMSG);
  klevdb_msg m = to_msg(&fresh);
  int64_t after;
  if (klevdb_publish(db, &m, 1, &after)) {
    /* Publishing into a store with a corrupt head may fail, clearly. */
    need_clear("read-write publish", klevdb_errcode(db), klevdb_errmsg(db), dbase, NULL);
    klevdb_close(db);
    return R_ERROR;
  }
  if (after != next + 1)
    failf("read-write: publish at %" PRId64 " returned next %" PRId64, next, after);
  klevdb_batch b = KLEVDB_BATCH_INIT;
  if (klevdb_get(db, next, &b) || b.len != 1)
    failf("read-write: get of the new message at %" PRId64 ": %s", next, klevdb_errmsg(db));
  const klevdb_msg *g = &b.msgs[0];
  if (g->offset != next || g->time != fresh.time || g->key_len != fresh.key_len ||
      g->value_len != fresh.value_len || memcmp(g->value, fresh.value, fresh.value_len))
    failf("read-write: the new message at %" PRId64 " reads back wrong", next);
  klevdb_batch_free(&b);
  if (klevdb_close(db)) failf("read-write: close: %s", klevdb_errmsg(db));

  /* Reopened (read-only: no repair), the files hold each offset once. */
  x.new_off = next;
  klevdb_options o = ro_opts(img);
  rc = klevdb_open(dir, &o, &db, &err);
  if (rc) {
    if (c.errors) {
      need_clear("reopen after publish", rc, err.msg, dbase, NULL);
      return R_ERROR;
    }
    failf("reopen after publish: %s", err.msg);
  }
  consumed_t c2;
  consume_all("reopen after publish", db, &x, &c2);
  int head = x.d->seg == img->nsegs - 1;
  if (!c2.seen[next] && (!head || !c2.err_seg_hit))
    failf("reopen after publish: the new message at %" PRId64 " is gone", next);
  if (!c.errors && c2.errors)
    failf("reopen after publish: an error the first open did not have");
  klevdb_close(db);
  return res;
}

static int step_recover(const expect_t *x, const char *dir) {
  klevdb_error err;
  const image_t *img = x->img;
  int64_t dbase = img->segs[x->d->seg].base;
  int head = x->d->seg == img->nsegs - 1;
  klevdb_err rc = klevdb_dir_recover(dir, &img->opts, &err);
  if (rc) {
    need_clear("recover", rc, err.msg, dbase, "recover ");
    return R_ERROR;
  }
  if (head) {
    rc = klevdb_dir_check(dir, &img->opts, &err);
    if (rc) failf("check after recover: %s", err.msg);
  }
  klevdb *db;
  rc = klevdb_open(dir, &img->opts, &db, &err);
  if (rc) {
    if (head) failf("open after recover: %s", err.msg);
    need_clear("open after recover", rc, err.msg, dbase, NULL);
    return R_ERROR;
  }
  consumed_t c;
  consume_all("consume after recover", db, x, &c);
  klevdb_close(db);
  if (head && c.errors) failf("consume after recover: the recovered head still fails");
  return classify(&c, NMSG);
}

/* ------------------------------------------------------------------ */
/* Driver                                                              */

enum { S_RO, S_CHECK, S_RW, S_RECOVER, S_N };
static const char *step_name[S_N] = {"read-only", "check", "read-write", "recover"};

static int counts[2][C_N][S_N][R_N];
static int cases[2][C_N];
static int verbose, timeout_s = 20;
static char *workdir;

/* Distinct clear errors (digits folded), for -v. */
#define MAXERR 256
static struct {
  char text[160];
  int n;
} errs[MAXERR];
static int nerrs;

static struct {
  char text[240];
  int n;
  char example[WHY_CAP + 600];
} fails[MAXERR];
static int nfails;

/* Folds the digits of msg into N (so that one kind of outcome is one
** line). */
static void fold(char *t, size_t cap, const char *msg) {
  size_t j = 0;
  for (const char *p = msg; *p && j + 1 < cap; p++) {
    if ((*p >= '0' && *p <= '9') || (*p == '-' && p[1] >= '0' && p[1] <= '9')) {
      if (j == 0 || t[j - 1] != 'N') t[j++] = 'N';
      continue;
    }
    t[j++] = *p;
  }
  t[j] = 0;
}

static void note_failure(const char *step, const image_t *img, int cat, const char *what,
                         const char *example) {
  char w[200], t[240];
  fold(w, sizeof(w), what);
  snprintf(t, sizeof(t), "[%s] %s: %s: %s", step, img->name, cat_name[cat], w);
  for (int i = 0; i < nfails; i++)
    if (!strcmp(fails[i].text, t)) {
      fails[i].n++;
      return;
    }
  if (nfails < MAXERR) {
    snprintf(fails[nfails].text, sizeof(fails[nfails].text), "%s", t);
    snprintf(fails[nfails].example, sizeof(fails[nfails].example), "%s", example);
    fails[nfails++].n = 1;
  }
}

static void note_error(const char *msg) {
  char t[160];
  size_t j = 0;
  for (const char *p = msg; *p && j + 1 < sizeof(t); p++) {
    if (*p >= '0' && *p <= '9') {
      if (j == 0 || t[j - 1] != 'N') t[j++] = 'N';
      continue;
    }
    t[j++] = *p;
  }
  t[j] = 0;
  for (int i = 0; i < nerrs; i++)
    if (!strcmp(errs[i].text, t)) {
      errs[i].n++;
      return;
    }
  if (nerrs < MAXERR) {
    snprintf(errs[nerrs].text, sizeof(errs[nerrs].text), "%s", t);
    errs[nerrs++].n = 1;
  }
}

static void describe(char *out, size_t cap, const image_t *img, const damage_t *d) {
  const file_t *f = &img->files[d->file];
  if (d->kind == D_FLIP)
    snprintf(out, cap, "%s: %s: %s %s at byte %" PRId64 " bit %d (of %zu)", img->name,
             cat_name[d->cat], kind_name[d->kind], f->name, d->pos, d->bit, f->len);
  else if (d->kind == D_TRUNC)
    snprintf(out, cap, "%s: %s: %s %s to %" PRId64 " bytes (of %zu)", img->name, cat_name[d->cat],
             kind_name[d->kind], f->name, d->pos, f->len);
  else
    snprintf(out, cap, "%s: %s: %s %s at byte %" PRId64 " (of %zu)", img->name, cat_name[d->cat],
             kind_name[d->kind], f->name, d->pos, f->len);
}

static void run_case(int iv, const image_t *img, const damage_t *d) {
  cases[iv][d->cat]++;
  for (int step = 0; step < S_N; step++) {
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/case", workdir);
    mkdir(dir, 0700);
    materialize(img, d, dir);
    int pfd[2];
    if (pipe(pfd)) die("pipe");
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
      close(pfd[0]);
      why_fd = pfd[1];
      alarm((unsigned)timeout_s);
      expect_t x = {img, d, -1};
      int r = 0;
      switch (step) {
      case S_RO: r = step_ro(&x, dir); break;
      case S_CHECK: r = step_check(&x, dir); break;
      case S_RW: r = step_rw(&x, dir); break;
      case S_RECOVER: r = step_recover(&x, dir); break;
      }
      _exit(r);
    }
    close(pfd[1]);
    char msg[WHY_CAP] = "";
    size_t got = 0;
    for (;;) {
      ssize_t r = read(pfd[0], msg + got, sizeof(msg) - 1 - got);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      got += (size_t)r;
      if (got == sizeof(msg) - 1) break;
    }
    msg[got] = 0;
    close(pfd[0]);
    /* The child's words: "E:<first clear error>\n", then a failure's
    ** reason, if any. */
    char *reason = msg, *errline = NULL;
    if (!strncmp(msg, "E:", 2)) {
      errline = msg + 2;
      char *nl = strchr(errline, '\n');
      if (nl) {
        *nl = 0;
        reason = nl + 1;
      } else {
        reason = msg + got;
      }
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
      if (errno != EINTR) die("waitpid");
    chk_total++;
    int res = -1;
    char what[WHY_CAP + 64] = "";
    if (WIFSIGNALED(st)) {
      int sig = WTERMSIG(st);
      snprintf(what, sizeof(what), sig == SIGALRM ? "HANG (no answer in %d s)" : "CRASH (signal %d: %s)",
               sig == SIGALRM ? timeout_s : sig, strsignal(sig));
    } else if (WEXITSTATUS(st) == R_FAIL) {
      snprintf(what, sizeof(what), "%s", reason[0] ? reason : "failed (no reason given)");
    } else if (WEXITSTATUS(st) < R_N) {
      res = WEXITSTATUS(st);
    } else {
      snprintf(what, sizeof(what), "child exited %d", WEXITSTATUS(st));
    }
    if (res >= 0) {
      counts[iv][d->cat][step][res]++;
      if (errline) note_error(errline);
      continue;
    }
    chk_failed++;
    char dd[512];
    describe(dd, sizeof(dd), img, d);
    if (verbose || chk_failed <= 40) printf("FAIL [%s] %s\n     -> %s\n", step_name[step], dd, what);
    note_failure(step_name[step], img, d->cat, what, dd);
  }
}

/* Deterministic PRNG (xorshift64*). */
static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint64_t rnd(void) {
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return rng * 0x2545F4914F6CDD1DULL;
}

/* Positions [from, to): all of them, or about cap of them spread evenly
** (always including the first and the last few). */
static int want_pos(int64_t p, int64_t from, int64_t to, int64_t cap) {
  int64_t n = to - from;
  if (n <= cap) return 1;
  if (p - from < 4 || to - p <= 4) return 1;
  int64_t stride = (n + cap - 1) / cap;
  return (p - from) % stride == 0;
}

static void run_image(int iv, const image_t *img, int long_form) {
  int hi = img->nsegs - 1;
  const seg_t *h = &img->segs[hi];
  int last = long_form ? 4 : 2;
  if (last > h->nrec) last = h->nrec;
  int64_t cap = long_form ? 1 << 20 : 80;

  /* The head log: cut, or one byte complemented, at every position of the
  ** last records. */
  int64_t from = h->rpos[h->nrec - last], to = (int64_t)img->files[h->logf].len;
  for (int kind = D_TRUNC; kind <= D_COMPL; kind++)
    for (int64_t p = from; p < to; p++) {
      if (!want_pos(p, from, to, cap)) continue;
      damage_t d = {kind == D_TRUNC ? C_LOG_TRUNC : C_LOG_BYTE, hi, h->logf, kind, p, 0, 0};
      d.intact_upto = intact_upto(img, hi, &d);
      run_case(iv, img, &d);
    }
  /* The head index: the same over its last items. */
  from = h->ihdr + (h->nrec - last) * img->isz;
  to = (int64_t)img->files[h->idxf].len;
  for (int kind = D_TRUNC; kind <= D_COMPL; kind++)
    for (int64_t p = from; p < to; p++) {
      if (!want_pos(p, from, to, cap)) continue;
      damage_t d = {kind == D_TRUNC ? C_IDX_TRUNC : C_IDX_BYTE, hi, h->idxf, kind, p, 0, 0};
      d.intact_upto = intact_upto(img, hi, &d);
      run_case(iv, img, &d);
    }
  /* Single bit flips in older records: older segments (log and index,
  ** headers included) and the head's first records and items. */
  int flips = long_form ? 1500 : 48;
  for (int i = 0; i < flips; i++) {
    int which = (int)(rnd() % 4);
    damage_t d = {0};
    d.kind = D_FLIP;
    d.bit = (int)(rnd() % 8);
    if (which < 2) {
      d.seg = (int)(rnd() % (uint64_t)hi);
      const seg_t *s = &img->segs[d.seg];
      d.file = which == 0 ? s->logf : s->idxf;
      d.cat = which == 0 ? C_FLIP_OLD_LOG : C_FLIP_OLD_IDX;
      d.pos = (int64_t)(rnd() % img->files[d.file].len);
    } else {
      d.seg = hi;
      d.file = which == 2 ? h->logf : h->idxf;
      d.cat = which == 2 ? C_FLIP_HEAD_LOG : C_FLIP_HEAD_IDX;
      int64_t end = which == 2 ? h->rpos[h->nrec - last] : h->ihdr + (h->nrec - last) * img->isz;
      if (end <= 0) continue;
      d.pos = (int64_t)(rnd() % (uint64_t)end);
    }
    d.intact_upto = intact_upto(img, d.seg, &d);
    run_case(iv, img, &d);
  }
}

int main(int argc, char **argv) {
  int long_form = 0, keep = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--long")) long_form = 1;
    else if (!strcmp(argv[i], "-v")) verbose = 1;
    else if (!strcmp(argv[i], "--keep")) keep = 1; /* build the stores, keep them, stop */
    else {
      fprintf(stderr, "usage: %s [--long] [-v]\n", argv[0]);
      return 2;
    }
  }
  if (long_form) timeout_s = 60;
  setvbuf(stdout, NULL, _IOLBF, 0);
  make_messages();
  /* Thousands of opens, syncs and recovers: tmpfs when there is one
  ** (fsync on a disk makes the suite several times slower). */
  const char *t = getenv("KLEVDB_TORN_TMP");
  char root[4096];
  snprintf(root, sizeof(root), "%s/klevdb-torn-XXXXXX", t && *t ? t : "/dev/shm");
  if (!mkdtemp(root)) {
    t = getenv("TMPDIR");
    snprintf(root, sizeof(root), "%s/klevdb-torn-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(root)) die("mkdtemp");
  }
  workdir = root;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);

  static image_t imgs[2];
  imgs[0].name = "v2";
  imgs[1].name = "v1";
  build_image(&imgs[0], root, KLEVDB_V2);
  build_image(&imgs[1], root, KLEVDB_V1);

  /* The undamaged copies must read back whole. */
  for (int iv = 0; iv < 2; iv++) {
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/case", root);
    mkdir(dir, 0700);
    materialize(&imgs[iv], NULL, dir);
    klevdb *db;
    klevdb_error err;
    if (klevdb_open(dir, &imgs[iv].opts, &db, &err)) {
      printf("FAIL %s: undamaged store does not open: %s\n", imgs[iv].name, err.msg);
      return 1;
    }
    klevdb_close(db);
  }

  if (keep) {
    printf("pristine stores kept in %s\n", root);
    return 0;
  }
  for (int iv = 0; iv < 2; iv++) run_image(iv, &imgs[iv], long_form);

  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;

  printf("\noutcomes (cases; per step: %s / %s / %s [/ missed: %s] [/ v1-time: %s]):\n",
         res_name[0], res_name[1], res_name[2], res_name[3], res_name[4]);
  for (int iv = 0; iv < 2; iv++)
    for (int c = 0; c < C_N; c++) {
      if (!cases[iv][c]) continue;
      printf("  %s %-30s %4d cases:", imgs[iv].name, cat_name[c], cases[iv][c]);
      for (int s = 0; s < S_N; s++) {
        int *r = counts[iv][c][s];
        printf("  %s %d/%d/%d", step_name[s], r[R_FULL], r[R_PARTIAL], r[R_ERROR]);
        if (r[R_MISSED]) printf("/missed %d", r[R_MISSED]);
        if (r[R_V1TIME]) printf("/v1-time %d", r[R_V1TIME]);
      }
      printf("\n");
    }
  if (verbose) {
    printf("\nclear errors seen (digits folded to N):\n");
    for (int i = 0; i < nerrs; i++) printf("  %5d  %s\n", errs[i].n, errs[i].text);
  }
  if (nfails) {
    printf("\nfailures by kind (digits folded to N; count, then one example):\n");
    for (int i = 0; i < nfails; i++)
      printf("  %4d  %s\n        e.g. %s\n", fails[i].n, fails[i].text, fails[i].example);
  }
  printf("(%.1f s)\n", secs);
  chk_name = "test_torn";
  int status = check_done();

  for (int iv = 0; iv < 2; iv++)
    for (int i = 0; i < imgs[iv].nfiles; i++) free(imgs[iv].files[i].data);
  char p[4200];
  snprintf(p, sizeof(p), "%s/case", root);
  rm_dir(p);
  snprintf(p, sizeof(p), "%s/pristine-v2", root);
  rm_dir(p);
  snprintf(p, sizeof(p), "%s/pristine-v1", root);
  rm_dir(p);
  rmdir(root);
  return status;
}
