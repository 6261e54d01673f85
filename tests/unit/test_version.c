/*
** test_version.c - the version macros of klevdb.h, the library's own
** version (version.c) and the project's (meson.build, given as argv[1])
** are one and the same.
*/
#include "../check.h"

int main(int argc, char **argv) {
  chk_name = "test_version";
  SECTION("header and library");
  CHECK_STR(klevdb_version(), KLEVDB_VERSION_STRING);
  CHECK_EQ_INT(klevdb_version_number(), KLEVDB_VERSION_NUMBER);
  SECTION("the macros agree");
  char want[64];
  snprintf(want, sizeof(want), "%d.%d.%d", KLEVDB_VERSION_MAJOR, KLEVDB_VERSION_MINOR,
           KLEVDB_VERSION_PATCH);
  CHECK_STR(KLEVDB_VERSION_STRING, want);
  CHECK_EQ_INT(KLEVDB_VERSION_NUMBER,
               KLEVDB_VERSION_MAJOR * 1000000 + KLEVDB_VERSION_MINOR * 1000 + KLEVDB_VERSION_PATCH);
  SECTION("the project's version");
  CHECK(argc == 2);
  if (argc == 2) CHECK_STR(klevdb_version(), argv[1]);
  return check_done();
}
