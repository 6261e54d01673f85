/*
** test_parse.c - unit tests of what core owns for the extension and the
** tool: the time and size parsers (parse.c), the store's lock (dirlock.c),
** the segment listing and format detection (segfile.c), and the reason an
** index params mismatch carries (index.c).
*/
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../check.h"
#include "kdb.h"

#define T(s, out) klevdb_parse_time((s), strlen(s), (out))
#define S(s, out) klevdb_parse_size((s), strlen(s), (out))

static void test_time(void) {
  int64_t t = -1;
  /* 2024-05-01T09:00:00Z */
  const int64_t base = INT64_C(1714554000) * 1000000;
  CHECK_EQ_INT(T("2024-05-01T09:00:00Z", &t), 0);
  CHECK_EQ_INT(t, base);
  /* a fraction after a point or a comma (ISO-8601 allows both) */
  t = -1;
  CHECK_EQ_INT(T("2024-05-01T09:00:00.5Z", &t), 0);
  CHECK_EQ_INT(t, base + 500000);
  t = -1;
  CHECK_EQ_INT(T("2024-05-01T09:00:00,5Z", &t), 0);
  CHECK_EQ_INT(t, base + 500000);
  t = -1;
  CHECK_EQ_INT(T("2024-05-01t09:00:00,123456789z", &t), 0);
  CHECK_EQ_INT(t, base + 123456);
  /* date only, a space, minutes only, zones */
  t = -1;
  CHECK_EQ_INT(T("2024-05-01", &t), 0);
  CHECK_EQ_INT(t, base - INT64_C(9) * 3600 * 1000000);
  t = -1;
  CHECK_EQ_INT(T("2024-05-01 09:00", &t), 0);
  CHECK_EQ_INT(t, base);
  t = -1;
  CHECK_EQ_INT(T("2024-05-01T11:30:00+02:30", &t), 0);
  CHECK_EQ_INT(t, base);
  t = -1;
  CHECK_EQ_INT(T("2024-05-01T08:00:00-01:00", &t), 0);
  CHECK_EQ_INT(t, base);
  t = -1;
  CHECK_EQ_INT(T("1969-12-31T23:59:59.5Z", &t), 0);
  CHECK_EQ_INT(t, -500000);
  /* length, not the NUL, ends the text */
  t = -1;
  CHECK_EQ_INT(klevdb_parse_time("2024-05-01T09:00:00Zjunk", 20, &t), 0);
  CHECK_EQ_INT(t, base);
  /* not times */
  const char *bad[] = {"", "now", "2024-5-01", "24-05-01", " 2024-05-01", "2024-05-01T",
                       "2024-05-01T09:00:00.Z", "2024-05-01T09:00:00,Z",
                       "2024-05-01T09:00:00.1234567890Z", "2024-05-01T09:00:00Zx",
                       "2024-05-01T09:00:00+0100", "1714554000000000"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    t = 7;
    CHECK_EQ_INT(T(bad[i], &t), -1);
    CHECK_EQ_INT(t, 7);
  }
  /* out of range */
  const char *range[] = {"2023-02-29", "2024-13-01", "0000-01-01", "2024-05-01T24:00",
                         "2024-05-01T09:60", "2024-05-01T09:00:60Z", "2024-05-01T09:00+24:00"};
  for (size_t i = 0; i < sizeof(range) / sizeof(range[0]); i++) CHECK_EQ_INT(T(range[i], &t), -2);
  CHECK_EQ_INT(T("2024-02-29", &t), 0);
}

static void test_size(void) {
  int64_t n = -1;
  CHECK_EQ_INT(S("0", &n), 0);
  CHECK_EQ_INT(n, 0);
  CHECK_EQ_INT(S("1234", &n), 0);
  CHECK_EQ_INT(n, 1234);
  CHECK_EQ_INT(S("64KB", &n), 0);
  CHECK_EQ_INT(n, 65536);
  /* blanks before the unit, any case */
  n = -1;
  CHECK_EQ_INT(S("64 KB", &n), 0);
  CHECK_EQ_INT(n, 65536);
  n = -1;
  CHECK_EQ_INT(S("64\tkib", &n), 0);
  CHECK_EQ_INT(n, 65536);
  CHECK_EQ_INT(S("3m", &n), 0);
  CHECK_EQ_INT(n, 3 << 20);
  CHECK_EQ_INT(S("2 GiB", &n), 0);
  CHECK_EQ_INT(n, INT64_C(2) << 30);
  CHECK_EQ_INT(S("1T", &n), 0);
  CHECK_EQ_INT(n, INT64_C(1) << 40);
  CHECK_EQ_INT(S("10 b", &n), 0);
  CHECK_EQ_INT(n, 10);
  CHECK_EQ_INT(S("9223372036854775807", &n), 0);
  CHECK_EQ_INT(n, INT64_MAX);
  /* not sizes */
  const char *bad[] = {"", "KB", " 64", "-1", "1.5MB", "12XB", "64 K B", "64KBs",
                       "9223372036854775808", "99999999999999999999999"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    n = 7;
    CHECK_EQ_INT(S(bad[i], &n), -1);
    CHECK_EQ_INT(n, 7);
  }
  /* sizes too big for int64 once the unit applies */
  CHECK_EQ_INT(S("8388608TB", &n), -2);
  CHECK_EQ_INT(S("9223372036854775807k", &n), -2);
  CHECK_EQ_INT(S("8388607 tb", &n), 0);
  CHECK_EQ_INT(n, INT64_C(8388607) << 40);
}

static void touch(const char *dir, const char *name, const void *bytes, size_t n) {
  char p[512];
  snprintf(p, sizeof(p), "%s/%s", dir, name);
  int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  CHECK(fd >= 0);
  if (fd < 0) return;
  CHECK_EQ_INT(write(fd, bytes, n), (long)n);
  close(fd);
}

static void test_lock(const char *dir) {
  int active = -1, fd = -7, fd2 = -7;
  klevdb_error e = {0};
  /* no .lock: no writer, and nothing to hold unless asked to create it */
  CHECK_EQ_INT(klevdb_dir_writer_active(dir, &active), KLEVDB_OK);
  CHECK_EQ_INT(active, 0);
  CHECK_EQ_INT(klevdb_dir_lock(dir, 0, &fd, &e), KLEVDB_OK);
  CHECK_EQ_INT(fd, -1);
  CHECK_EQ_INT(klevdb_dir_lock(dir, KLEVDB_LOCK_CREATE, &fd, &e), KLEVDB_OK);
  CHECK(fd >= 0);
  char p[512];
  snprintf(p, sizeof(p), "%s/.lock", dir);
  struct stat sb;
  CHECK_EQ_INT(stat(p, &sb), 0);
  CHECK_EQ_INT(sb.st_mode & 0777, 0600);
  /* held: a second taker (another open file, same process) is refused */
  CHECK_EQ_INT(klevdb_dir_writer_active(dir, &active), KLEVDB_OK);
  CHECK_EQ_INT(active, 1);
  CHECK_EQ_INT(klevdb_dir_lock(dir, 0, &fd2, &e), KLEVDB_ELOCKED);
  CHECK_EQ_INT(fd2, -1);
  CHECK_EQ_INT(e.code, KLEVDB_ELOCKED);
  CHECK_STR_HAS(e.msg, "klevdb: ");
  CHECK_STR_HAS(e.msg, ": locked by another process (writer)");
  /* a store open for writing holds the same lock */
  klevdb_dir_unlock(fd);
  CHECK_EQ_INT(klevdb_dir_writer_active(dir, &active), KLEVDB_OK);
  CHECK_EQ_INT(active, 0);
  klevdb_options o = {0};
  klevdb *db = NULL;
  CHECK_EQ_INT(klevdb_open(dir, &o, &db, &e), KLEVDB_OK);
  CHECK_EQ_INT(klevdb_dir_writer_active(dir, &active), KLEVDB_OK);
  CHECK_EQ_INT(active, 1);
  CHECK_EQ_INT(klevdb_dir_lock(dir, KLEVDB_LOCK_CREATE, &fd2, &e), KLEVDB_ELOCKED);
  klevdb_close(db);
  CHECK_EQ_INT(klevdb_dir_lock(dir, 0, &fd2, &e), KLEVDB_OK);
  CHECK(fd2 >= 0);
  klevdb_dir_unlock(fd2);
  /* a directory that is not there */
  CHECK_EQ_INT(klevdb_dir_lock("/nonexistent-klevdb-dir", KLEVDB_LOCK_CREATE, &fd, &e), KLEVDB_EIO);
  CHECK_EQ_INT(fd, -1);
  CHECK_STR_HAS(e.msg, "klevdb: open lock /nonexistent-klevdb-dir/.lock: ");
}

static void test_segments(const char *dir) {
  uint8_t v2[FILE_HDR], v1[8];
  log_header(v2);
  put_be64(v1, 40);
  /* base 0 was made by test_lock's open (an empty V2 head) */
  touch(dir, "00000000000000000040.log", v1, 8);
  touch(dir, "00000000000000000020.log", v2, FILE_HDR);
  touch(dir, "00000000000000000030.log", "", 0);
  touch(dir, "00000000000000000050.log", v2, 5);
  touch(dir, "5.log", "", 0);            /* not padded: passed over */
  touch(dir, "foo.log", "", 0);
  touch(dir, "00000000000000000060.index", "", 0);
  int64_t *bases = NULL;
  size_t n = 0;
  klevdb_error e = {0};
  CHECK_EQ_INT(klevdb_dir_segments(dir, &bases, &n, &e), KLEVDB_OK);
  CHECK_EQ_INT(n, 5);
  int64_t want[5] = {0, 20, 30, 40, 50};
  for (size_t i = 0; i < 5 && i < n; i++) CHECK_EQ_INT(bases[i], want[i]);
  free(bases);
  CHECK_EQ_INT(klevdb_segment_format(dir, 0), KLEVDB_V2);
  CHECK_EQ_INT(klevdb_segment_format(dir, 20), KLEVDB_V2);
  CHECK_EQ_INT(klevdb_segment_format(dir, 30), 0);
  CHECK_EQ_INT(klevdb_segment_format(dir, 40), KLEVDB_V1);
  CHECK_EQ_INT(klevdb_segment_format(dir, 50), -1);
  CHECK_EQ_INT(klevdb_segment_format(dir, 60), -1);
  /* a directory that cannot be listed */
  bases = (int64_t *)&n;
  CHECK_EQ_INT(klevdb_dir_segments("/nonexistent-klevdb-dir", &bases, &n, &e), KLEVDB_EIO);
  CHECK(bases == NULL);
  CHECK_EQ_INT(n, 0);
  CHECK_STR_HAS(e.msg, "klevdb: /nonexistent-klevdb-dir: ");
}

/* The params mismatch of a V2 index has a reason besides its text. */
static void test_reason(void) {
  uint8_t h[FILE_HDR];
  int ver;
  int64_t ds;
  klevdb_error e = {0};
  index_header(h, IDX_TIMES | IDX_KEYS);
  CHECK_EQ_INT(index_detect(h, FILE_HDR, 0, IDX_TIMES, &ver, &ds, &e), KLEVDB_ECORRUPT_INDEX);
  CHECK_EQ_INT(e.reason, KLEVDB_REASON_KEY_INDEX);
  CHECK_STR_HAS(e.msg, "keys index mismatch");
  CHECK_EQ_INT(index_detect(h, FILE_HDR, 0, IDX_KEYS, &ver, &ds, &e), KLEVDB_ECORRUPT_INDEX);
  CHECK_EQ_INT(e.reason, KLEVDB_REASON_TIME_INDEX);
  CHECK_STR_HAS(e.msg, "times index mismatch");
  /* any other error clears it */
  h[HDR_PARAMS] = 0x07;
  CHECK_EQ_INT(index_detect(h, FILE_HDR, 0, IDX_TIMES | IDX_KEYS, &ver, &ds, &e),
               KLEVDB_ECORRUPT_INDEX);
  CHECK_EQ_INT(e.reason, KLEVDB_REASON_NONE);
  CHECK_STR_HAS(e.msg, "invalid reserved data");
}

int main(void) {
  test_time();
  test_size();
  char dir[] = "/tmp/test_parse.XXXXXX";
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  test_lock(dir);
  test_segments(dir);
  test_reason();
  char cmd[600];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  chk_name = "test_parse";
  return check_done();
}
