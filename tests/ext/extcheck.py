"""What the extension's Python tests (test_processes.py, test_wait.py, ...)
add to the one check harness (tests/pycheck.py, whose check() this
re-exports): connections that load the module, and a runner that gives
each test a folder of its own and ends with "NAME: N checks, M failed"."""
import os
import shutil
import sqlite3
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import pycheck  # noqa: E402
from pycheck import check  # noqa: E402,F401

MODULE = None   # the loadable module, set by main()


def connect(path=":memory:"):
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.enable_load_extension(True)
    conn.load_extension(MODULE)
    conn.enable_load_extension(False)
    return conn


def main(name, doc, argv, tests):
    """argv: [script, MODULE, WORKDIR]. Runs each test in WORKDIR/<fresh>/<test>;
    a test that raises counts as a failed check and the others still run."""
    global MODULE
    if len(argv) != 3:
        sys.exit(doc)
    MODULE = os.path.abspath(argv[1])
    if not os.path.exists(MODULE):
        sys.exit("%s: %s does not exist (build first)" % (name, MODULE))
    os.makedirs(argv[2], exist_ok=True)
    work = tempfile.mkdtemp(prefix=name + ".", dir=os.path.abspath(argv[2]))
    try:
        for t in tests:
            sub = os.path.join(work, t.__name__)
            os.mkdir(sub)
            try:
                t(sub)
            except Exception as e:  # a broken check must not hide the others
                check(False, "%s raised %r" % (t.__name__, e))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return pycheck.summary(name)
