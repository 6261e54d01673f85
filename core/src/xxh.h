/*
** xxh.h - XXH3 compiled into the library from the xxhash header, so that
** neither libklevdb nor the SQLite module needs libxxhash.so at run time.
*/
#ifndef KLEVDB_XXH_H
#define KLEVDB_XXH_H

/* Every XXH_* function becomes static inline in the including file: no
** symbol of xxhash is defined by the library, so none can meet a program's
** own copy of xxhash at link time. */
#define XXH_INLINE_ALL
#include <xxhash.h>

#endif
