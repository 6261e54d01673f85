/*
** gen_seeds.c - writes the seed corpora of the store-format targets
** (corpus/fuzz_log, corpus/fuzz_index, corpus/fuzz_store) from small stores
** made with libklevdb itself: V1 and V2, every index combination, one and
** two segments. The committed seeds came from this program; run it again
** only to change them:
**
**   clang -std=c11 -D_GNU_SOURCE -Icore/include -Icore/src \
**     tests/fuzz/gen_seeds.c core/src/[a-z]*.c -lpthread -o /tmp/gen_seeds
**   /tmp/gen_seeds tests/fuzz/corpus
*/
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kdb.h"

static void die(const char *what) {
  perror(what);
  exit(1);
}

static uint8_t *slurp(const char *path, size_t *n) {
  uint8_t *p = NULL;
  klevdb_error e;
  if (file_read(path, &p, n, &e)) {
    *n = 0;
    return NULL;
  }
  return p;
}

static void spit(const char *path, const uint8_t *p, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f)) die(path);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: gen_seeds CORPUS_DIR\n");
    return 2;
  }
  const char *out = argv[1];
  char tmpl[] = "/tmp/klevdb-seeds-XXXXXX";
  if (!mkdtemp(tmpl)) die("mkdtemp");
  int made = 0;
  for (int ver = 1; ver <= 2; ver++) {
    for (int params = 0; params < 4; params++) {
      for (int segs = 1; segs <= 2; segs++) {
        char dir[256], name[128], path[512];
        snprintf(dir, sizeof(dir), "%s/v%d-p%d-s%d", tmpl, ver, params, segs);
        klevdb_options o = {0};
        o.create_dirs = 1;
        o.time_index = params & IDX_TIMES;
        o.key_index = (params & IDX_KEYS) != 0;
        o.new_segments_version = ver == 1 ? KLEVDB_V1 : KLEVDB_V2;
        o.rollover = segs == 2 ? 120 : 0;
        klevdb *db;
        klevdb_error e;
        if (klevdb_open(dir, &o, &db, &e)) {
          fprintf(stderr, "%s\n", e.msg);
          return 1;
        }
        /* Keys repeat, one is absent, one value is absent, time goes back. */
        const char *keys[] = {"a", "b", "", "a", "c"};
        const char *vals[] = {"1", "hello", "x", "", "{\"j\":1}"};
        int64_t times[] = {1700000000000000, 1700000000000100, 1700000000000050,
                           1700000000000200, 1700000000000200};
        for (int i = 0; i < 5; i++) {
          klevdb_msg m = {0, times[i], (const uint8_t *)keys[i], strlen(keys[i]),
                          (const uint8_t *)vals[i], strlen(vals[i])};
          if (klevdb_publish(db, &m, 1, NULL)) {
            fprintf(stderr, "%s\n", klevdb_errmsg(db));
            return 1;
          }
        }
        klevdb_close(db);

        int64_t *bases;
        size_t n;
        if (dir_segments(dir, 0, &bases, &n, &e) || n < 1) return 1;
        uint8_t *f[4] = {0};
        size_t fl[4] = {0};
        for (size_t s = 0; s < n && s < 2; s++) {
          seg_path(path, sizeof(path), dir, bases[s], ".log");
          f[2 * s] = slurp(path, &fl[2 * s]);
          seg_path(path, sizeof(path), dir, bases[s], ".index");
          f[2 * s + 1] = slurp(path, &fl[2 * s + 1]);
        }
        /* fuzz_log / fuzz_index: the first segment's files. */
        snprintf(name, sizeof(name), "v%d-p%d-s%d", ver, params, segs);
        snprintf(path, sizeof(path), "%s/fuzz_log/%s.log", out, name);
        spit(path, f[0], fl[0]);
        snprintf(path, sizeof(path), "%s/fuzz_index/%s.index", out, name);
        spit(path, f[1], fl[1]);
        if (n >= 2) {
          snprintf(path, sizeof(path), "%s/fuzz_log/%s-2.log", out, name);
          spit(path, f[2], fl[2]);
        }
        /* fuzz_store: flags, base of segment 1, u16-length-prefixed files. */
        uint8_t pk[8192];
        size_t k = 0;
        pk[k++] = (uint8_t)((params & IDX_KEYS ? 1 : 0) | (params & IDX_TIMES ? 2 : 0) |
                            (n >= 2 ? 4 : 0) | (ver == 1 ? 16 : 0));
        pk[k++] = (uint8_t)(made % 3 == 0 ? 1 : made % 3 == 1 ? 4 | 8 : 0);
        put_be64(pk + k, n >= 2 ? (uint64_t)bases[1] : 0);
        k += 8;
        int nf = n >= 2 ? 4 : 2;
        for (int i = 0; i < nf; i++) {
          if (i < nf - 1) {
            pk[k++] = (uint8_t)(fl[i] & 0xff);
            pk[k++] = (uint8_t)(fl[i] >> 8);
          }
          if (k + fl[i] > sizeof(pk)) return 1;
          memcpy(pk + k, f[i], fl[i]);
          k += fl[i];
        }
        snprintf(path, sizeof(path), "%s/fuzz_store/%s", out, name);
        spit(path, pk, k);
        for (int i = 0; i < 4; i++) free(f[i]);
        free(bases);
        made++;
      }
    }
  }
  char cmd[300];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpl);
  if (system(cmd) != 0) return 1;
  printf("%d stores\n", made);
  return 0;
}
