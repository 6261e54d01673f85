/*
** test_segments.c - klevdb_segments_get: one entry per segment, oldest
** first, whose bases, messages and bytes agree with the files, with
** klevdb_stat and with deletes; on a read-write and a read-only handle.
*/
#include "check.h"

int main(void) {
  SECTION("segments");
  char dir[256];
  tmp_dir(dir, sizeof dir);
  klevdb_options o = opts_tk();
  o.rollover = 4 * SV2 - 10;   /* a segment rolls over after 4 messages */
  klevdb *db = OPEN(dir, &o);
  if (!db) return check_done();
  klevdb_segment_info *sg = NULL;
  size_t n = 99;
  CHECK_DBOK(db, klevdb_segments_get(db, &sg, &n));
  CHECK_EQ(n, 1);   /* an empty head */
  CHECK(sg && sg[0].base == 0 && sg[0].messages == 0);
  free(sg);

  for (int i = 0; i < 10; i++) {
    tmsg t;
    gen(&t, i);
    CHECK_DBOK(db, klevdb_publish(db, &t.m, 1, NULL));
  }
  CHECK_DBOK(db, klevdb_segments_get(db, &sg, &n));
  CHECK_EQ(n, 3);
  klevdb_stat st;
  CHECK_DBOK(db, klevdb_stat_get(db, &st));
  int64_t msgs = 0, bytes = 0;
  for (size_t i = 0; i < n; i++) {
    msgs += sg[i].messages;
    bytes += sg[i].bytes;
  }
  CHECK_EQ(msgs, 10);
  CHECK_EQ(bytes, st.size);
  CHECK(n == 3 && sg[0].base == 0 && sg[1].base == 4 && sg[2].base == 8);
  CHECK(n == 3 && sg[0].messages == 4 && sg[1].messages == 4 && sg[2].messages == 2);
  CHECK(n == 3 && sg[0].bytes == seg_size(dir, 0, ".log") + seg_size(dir, 0, ".index"));
  free(sg);

  /* A delete inside segment 4 leaves its base; a whole segment goes. */
  klevdb_range r[2] = {{5, 6}, {0, 4}};
  klevdb_deleted d;
  CHECK_DBOK(db, klevdb_delete_ranges(db, r, 2, &d));
  CHECK_EQ(d.count, 5);
  CHECK_DBOK(db, klevdb_segments_get(db, &sg, &n));
  CHECK(n == 2 && sg[0].base == 4 && sg[0].messages == 3 && sg[1].base == 8 &&
        sg[1].messages == 2);
  free(sg);

  /* A read-only handle sees the same. */
  klevdb_options ro = o;
  ro.readonly = 1;
  klevdb *rd = OPEN(dir, &ro);
  if (rd) {
    CHECK_DBOK(rd, klevdb_segments_get(rd, &sg, &n));
    CHECK(n == 2 && sg[0].base == 4 && sg[0].messages == 3 && sg[1].messages == 2);
    free(sg);
    klevdb_close(rd);
  }
  CHECK_ERR(klevdb_segments_get(db, NULL, &n), KLEVDB_EINVAL);
  klevdb_close(db);
  rm_rf(dir);
  return check_done();
}
