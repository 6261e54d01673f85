/*
** clash.c - a program that defines its own crc32c, file_read and write_full,
** names libklevdb uses inside, and links the static library: the store it
** writes must still be right (test_clash.py checks it with the klevdb tool).
** Usage: clash DIR    (publishes three messages into a new store DIR)
*/
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <klevdb.h>

/* The program's own functions, which do something else: if the library
** called these, its checksums would be wrong and its reads and writes fail. */
uint32_t crc32c(uint32_t crc, const void *p, size_t n) {
  (void)p;
  return crc ^ (uint32_t)n ^ 0x5a5a5a5au;
}
int file_read(const char *path) { return path ? -7 : -8; }
long write_full(int fd, const void *p, size_t n) {
  (void)fd, (void)p;
  return (long)n + 1;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: clash DIR\n");
    return 2;
  }
  /* The program gets its own definitions. */
  if (crc32c(0, "abc", 3) != (0x5a5a5a5au ^ 3) || file_read("x") != -7 ||
      write_full(1, "ab", 2) != 3) {
    fprintf(stderr, "clash: the program's own functions were not called\n");
    return 1;
  }
  klevdb_options o = {.create_dirs = 1, .key_index = 1, .time_index = 1};
  klevdb_error err;
  klevdb *db;
  if (klevdb_open(argv[1], &o, &db, &err)) {
    fprintf(stderr, "clash: %s\n", err.msg);
    return 1;
  }
  const char *keys[] = {"k1", "k2", "k1"}, *vals[] = {"one", "two", "three"};
  klevdb_msg m[3];
  memset(m, 0, sizeof(m));
  for (int i = 0; i < 3; i++) {
    m[i].key = (const uint8_t *)keys[i];
    m[i].key_len = strlen(keys[i]);
    m[i].value = (const uint8_t *)vals[i];
    m[i].value_len = strlen(vals[i]);
    m[i].time = 1714554000000000 + i;
  }
  int64_t next = -1;
  if (klevdb_publish(db, m, 3, &next) || next != 3) {
    fprintf(stderr, "clash: publish: %s (next %lld)\n", klevdb_errmsg(db),
            (long long)next);
    klevdb_close(db);
    return 1;
  }
  return klevdb_close(db) ? 1 : 0;
}
