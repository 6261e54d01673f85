"""sqlite-klevdb: the loadable klevdb module for Python's sqlite3.

    import sqlite3, sqlite_klevdb
    db = sqlite3.connect("app.db")
    sqlite_klevdb.load(db)
    db.execute("CREATE VIRTUAL TABLE events USING klevdb(dir='events.d')")
"""
import os

__all__ = ["loadable_path", "load"]


def loadable_path():
    """Absolute path of the module (klevdb.so) installed with this package."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "klevdb.so")
    if not os.path.exists(path):
        raise FileNotFoundError("klevdb: no module at %s (install the package with pip, "
                                "which builds it)" % path)
    return path


def load(conn):
    """Loads the module into a sqlite3 connection; extension loading is
    switched off again afterwards, as it was."""
    if not hasattr(conn, "enable_load_extension"):
        raise RuntimeError("klevdb: this Python's sqlite3 cannot load extensions (it was built "
                           "without them; Debian's python3 can)")
    conn.enable_load_extension(True)
    try:
        conn.load_extension(loadable_path())
    finally:
        conn.enable_load_extension(False)
