/*
** hello.c - the smallest klevdb program: publish a few messages into a
** store, read them back from the oldest, and look one up by key and time.
** Usage: hello DIR
*/
#include <stdio.h>
#include <string.h>

#include <klevdb.h>

static int fail(klevdb *db, const char *what) {
  fprintf(stderr, "%s: %s\n", what, klevdb_errmsg(db));
  klevdb_close(db);
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  klevdb_options opts = {.create_dirs = 1, .key_index = 1, .time_index = 1};
  klevdb_error err;
  klevdb *db;
  if (klevdb_open(argv[1], &opts, &db, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  const char *fruit[] = {"apple", "banana", "cherry", "apple"};
  const char *color[] = {"green", "yellow", "red", "red"};
  klevdb_msg msgs[4];
  int64_t t0 = 1672531200000000;  /* 2023-01-01T00:00:00Z */
  for (int i = 0; i < 4; i++) {
    msgs[i] = (klevdb_msg){.time = t0 + i * 1000000,
                           .key = (const uint8_t *)fruit[i], .key_len = strlen(fruit[i]),
                           .value = (const uint8_t *)color[i], .value_len = strlen(color[i])};
  }
  int64_t next;
  if (klevdb_publish(db, msgs, 4, &next)) return fail(db, "publish");
  printf("published 4 messages, next offset %lld\n", (long long)next);

  klevdb_batch b = KLEVDB_BATCH_INIT;
  int64_t at = KLEVDB_OFFSET_OLDEST;
  for (;;) {
    if (klevdb_consume(db, at, 16, &b)) return fail(db, "consume");
    if (b.len == 0) break;
    for (size_t i = 0; i < b.len; i++)
      printf("offset %lld  %.*s = %.*s\n", (long long)b.msgs[i].offset,
             (int)b.msgs[i].key_len, b.msgs[i].key, (int)b.msgs[i].value_len, b.msgs[i].value);
    at = b.next_offset;
  }
  if (klevdb_get_by_key(db, "apple", 5, &b)) return fail(db, "get by key");
  printf("latest apple: offset %lld is %.*s\n", (long long)b.msgs[0].offset,
         (int)b.msgs[0].value_len, b.msgs[0].value);
  if (klevdb_get_by_time(db, t0 + 1500000, &b)) return fail(db, "get by time");
  printf("first at or after 00:00:01.5: offset %lld\n", (long long)b.msgs[0].offset);
  klevdb_batch_free(&b);
  return klevdb_close(db) ? 1 : 0;
}
