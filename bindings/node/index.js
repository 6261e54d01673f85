// sqlite-klevdb: where the loadable klevdb module of this package is, and
// load(db) for better-sqlite3 (db.loadExtension) or node:sqlite (opened
// with allowExtension: true). The module is built into lib/<platform>-<arch>/
// when the package is packed (npm pack runs prepack), so installing needs
// no compiler.
'use strict';

const fs = require('fs');
const path = require('path');

function getLoadablePath() {
  const target = `${process.platform}-${process.arch}`;
  const file = path.join(__dirname, 'lib', target, 'klevdb.so');
  if (!fs.existsSync(file)) {
    throw new Error(`klevdb: this package has no module for ${target} (looked for ${file}); ` +
                    'build one from the klevdb repository with bindings/build-module.sh');
  }
  return file;
}

function load(db) {
  if (!db || typeof db.loadExtension !== 'function') {
    throw new TypeError('klevdb: load(db) takes a better-sqlite3 Database or a node:sqlite DatabaseSync');
  }
  db.loadExtension(getLoadablePath());
}

module.exports = { getLoadablePath, load };
