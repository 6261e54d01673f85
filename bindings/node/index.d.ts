// Types of sqlite-klevdb (index.js).

/** Absolute path of the loadable klevdb module for this platform. */
export function getLoadablePath(): string;

/** Loads the module into a database that has loadExtension(path):
 *  better-sqlite3's Database, node:sqlite's DatabaseSync. */
export function load(db: { loadExtension(path: string): unknown }): void;
