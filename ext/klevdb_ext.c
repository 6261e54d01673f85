/*
** klevdb_ext.c - the extension's entry point: registers the klevdb module,
** the klevdb_scan table-valued function and the SQL functions on a
** connection. Loadable (".load klevdb") or linked in (sqlite3_auto_extension).
*/
#include <string.h>

#include "kvt.h"

#ifndef SQLITE_CORE
SQLITE_EXTENSION_INIT1
#endif

void kvt_conn_free(void *p) {
  kvt_conn *c = p;
  for (int i = 0; i < c->ntrigger_dirs; i++) sqlite3_free(c->trigger_dirs[i]);
  sqlite3_free(c->trigger_dirs);
  sqlite3_free(c);
}

#ifdef _WIN32
__declspec(dllexport)
#endif
int sqlite3_klevdb_init(sqlite3 *db, char **err, const sqlite3_api_routines *api) {
#ifndef SQLITE_CORE
  SQLITE_EXTENSION_INIT2(api);
#else
  (void)api;
#endif
  kvt_conn *c = sqlite3_malloc(sizeof(*c));
  if (!c) return SQLITE_NOMEM;
  memset(c, 0, sizeof(*c));
  c->db = db;
  /* The module owns c (freed with the connection); the functions share it. */
  int rc = kvt_register_vtab(db, c);
  if (rc == SQLITE_OK) rc = kvt_register_functions(db, c);
  if (rc == SQLITE_OK) rc = kvt_register_scan(db);
  if (rc == SQLITE_OK) rc = kvt_register_consumers(db, c);
  if (rc != SQLITE_OK && err) *err = sqlite3_mprintf("klevdb: cannot register: %s", sqlite3_errstr(rc));
  return rc;
}
