/*
** version.c - the library's own version, compiled in, so that a program
** can tell the libklevdb it runs with from the klevdb.h it was built with.
*/
#include "klevdb.h"

const char *klevdb_version(void) { return KLEVDB_VERSION_STRING; }

int klevdb_version_number(void) { return KLEVDB_VERSION_NUMBER; }
