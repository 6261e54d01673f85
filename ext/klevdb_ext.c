/*
** klevdb_ext.c - the extension's entry point: the klevdb module's method
** table (the reading half in vtab.c, the writing half in vtab_write.c, so
** that neither needs the other's methods) and its registration with the
** klevdb_scan table-valued function and the SQL functions on a connection.
** Loadable (".load klevdb") or linked in (sqlite3_auto_extension).
*/
#include <string.h>

#include "kvt.h"

#ifndef SQLITE_CORE
SQLITE_EXTENSION_INIT1
#endif

static sqlite3_module kvt_module = {
  .iVersion = 3,
  .xCreate = kvt_create,
  .xConnect = kvt_connect,
  .xBestIndex = kvt_best_index,
  .xDisconnect = kvt_disconnect,
  .xDestroy = kvt_destroy,
  .xOpen = kvt_open,
  .xClose = kvt_close,
  .xFilter = kvt_filter,
  .xNext = kvt_next,
  .xEof = kvt_eof,
  .xColumn = kvt_column,
  .xRowid = kvt_rowid,
  .xUpdate = kvt_update,
  .xBegin = kvt_begin,
  .xSync = kvt_sync,
  .xCommit = kvt_commit,
  .xRollback = kvt_rollback,
  .xRename = kvt_rename,
  .xSavepoint = kvt_savepoint,
  .xRelease = kvt_release,
  .xRollbackTo = kvt_rollback_to,
  .xShadowName = kvt_shadow_name,
};

void kvt_conn_free(void *p) {
  kvt_conn *c = p;
  for (int i = 0; i < c->ntrigger_dirs; i++) sqlite3_free(c->trigger_dirs[i]);
  sqlite3_free(c->trigger_dirs);
  sqlite3_free(c);
}

/* The one exported name: the extension is compiled with hidden visibility
** and the module links with klevdb.map. */
#ifdef _WIN32
__declspec(dllexport)
#elif defined(__GNUC__)
__attribute__((visibility("default")))
#endif
int sqlite3_klevdb_init(sqlite3 *db, char **err, const sqlite3_api_routines *api) {
#ifndef SQLITE_CORE
  SQLITE_EXTENSION_INIT2(api);
#else
  (void)api;
#endif
  if (sqlite3_libversion_number() < KVT_SQLITE_MIN) {
    if (err)
      *err = sqlite3_mprintf("klevdb: SQLite %s is too old; the klevdb module needs " KVT_SQLITE_MIN_TEXT
                             " or newer", sqlite3_libversion());
    return SQLITE_ERROR;
  }
  kvt_conn *c = sqlite3_malloc(sizeof(*c));
  if (!c) return SQLITE_NOMEM;
  memset(c, 0, sizeof(*c));
  c->db = db;
  /* The module owns c (freed with the connection); the functions share it. */
  int rc = sqlite3_create_module_v2(db, "klevdb", &kvt_module, c, kvt_conn_free);
  if (rc == SQLITE_OK) rc = kvt_register_functions(db, c);
  if (rc == SQLITE_OK) rc = kvt_register_scan(db);
  if (rc == SQLITE_OK) rc = kvt_register_consumers(db, c);
  if (rc != SQLITE_OK && err) *err = sqlite3_mprintf("klevdb: cannot register: %s", sqlite3_errstr(rc));
  return rc;
}
