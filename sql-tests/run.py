#!/usr/bin/env python3
"""Runs SQL test scripts and compares their output with NAME.expected.

usage: run.py [--update] [--keep] [--shell=PATH] MODE MODULE_OR_RUNNER FIXTURES_DIR SQL_FILE...

MODE shell:  MODULE_OR_RUNNER is the loadable module (build/ext/klevdb.so);
             each script runs through the real shell as
               sqlite3 -batch :memory: -cmd '.load MODULE' -cmd '.mode list'
                       -cmd '.nullvalue NULL' -cmd '.headers off' < NAME.sql
             under `stdbuf -oL`, so stdout is line-buffered and rows and error
             messages (stderr) interleave in the order they happen.
             --shell=PATH runs PATH instead of the sqlite3 on PATH (sqlrun
             built against another SQLite: tests/sqlite-versions/run.sh).
MODE runner: MODULE_OR_RUNNER is sql-tests/sqlrun (SQLite and the extension
             linked in; for sanitizer builds); `sqlrun < NAME.sql` prints
             exactly what the shell prints.

Without -bail the shell keeps going after an error, so one script can test
many errors: "Parse error near line N: ..." (prepare) and "Runtime error near
line N: ..." (step) go to stderr, N being the line the statement starts on.

For each script: a fresh temporary directory holds a writable copy of every
folder of FIXTURES_DIR under fixtures/ (e.g. fixtures/v2-basic/store), the
script runs with that directory as its current directory, TZ=UTC and LC_ALL=C,
and its stdout and stderr together are compared with NAME.expected (the path
of the temporary directory, should it appear, is replaced by "<tmp>").
Prints "ok NAME" or "FAIL NAME" with a unified diff; exits 1 if any failed.

--update writes NAME.expected from the output instead of comparing (for test
authors; check the diff before committing). --keep leaves the temporary
directories in place and prints where they are.
"""
import difflib
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile

TIMEOUT = 60          # seconds per script (meson's own timeout is 120)
MAX_OUTPUT = 1 << 20  # bytes of output kept (a runaway query prints forever)


def copy_fixtures(src, dst):
    os.makedirs(dst)
    if not src or not os.path.isdir(src):
        return
    for name in sorted(os.listdir(src)):
        path = os.path.join(src, name)
        if os.path.isdir(path):
            shutil.copytree(path, os.path.join(dst, name), copy_function=shutil.copyfile)
    for root, dirs, files in os.walk(dst):
        for d in dirs:
            p = os.path.join(root, d)
            os.chmod(p, os.stat(p).st_mode | stat.S_IRWXU)
        for f in files:
            p = os.path.join(root, f)
            os.chmod(p, os.stat(p).st_mode | stat.S_IRUSR | stat.S_IWUSR)


def command(mode, target, shell=None):
    if not os.path.exists(target):
        sys.exit("run.py: %s does not exist (build first)" % target)
    if mode == "shell":
        shell = shell or shutil.which("sqlite3")
        if not shell:
            sys.exit("run.py: no sqlite3 shell on PATH (apt-get install sqlite3)")
        # The shell's .load takes one argument; quote it in case of spaces.
        cmd = [shell, "-batch", ":memory:",
               "-cmd", ".load '%s'" % os.path.abspath(target),
               "-cmd", ".mode list", "-cmd", ".nullvalue NULL", "-cmd", ".headers off"]
        stdbuf = shutil.which("stdbuf")
        return [stdbuf, "-oL"] + cmd if stdbuf else cmd
    if mode == "runner":
        return [os.path.abspath(target)]
    sys.exit("run.py: MODE must be shell or runner, not %r" % mode)


def execute(cmd, sql_file, cwd, env):
    """Runs cmd with the script on stdin in cwd; returns (output, exit
    status or None). Output goes to a file beside cwd (stdout and stderr
    together, in the order written); a script that runs too long or prints
    too much is killed."""
    out_path = cwd + ".out"
    note = b""
    try:
        with open(sql_file, "rb") as script, open(out_path, "wb") as out:
            p = subprocess.Popen(cmd, stdin=script, stdout=out, stderr=subprocess.STDOUT,
                                 cwd=cwd, env=env)
            waited = 0.0
            while True:
                try:
                    rc = p.wait(timeout=0.1)
                    break
                except subprocess.TimeoutExpired:
                    waited += 0.1
                except BaseException:  # meson's SIGTERM, ^C
                    p.kill()
                    p.wait()
                    raise
                if waited > TIMEOUT:
                    note = b"\n[run.py: killed after %d seconds]\n" % TIMEOUT
                elif os.path.getsize(out_path) > MAX_OUTPUT:
                    note = b"\n[run.py: killed after printing over %d bytes]\n" % MAX_OUTPUT
                else:
                    continue
                p.kill()
                p.wait()
                rc = None
                break
        with open(out_path, "rb") as f:
            data = f.read(MAX_OUTPUT)
    finally:
        try:
            os.unlink(out_path)
        except OSError:
            pass
    return data + note, rc


def run_one(cmd, fixtures, sql_file, update, keep):
    name = os.path.splitext(os.path.basename(sql_file))[0]
    expected_file = os.path.splitext(sql_file)[0] + ".expected"
    tmp = tempfile.mkdtemp(prefix="klevdb-sql-%s." % name)
    try:
        copy_fixtures(fixtures, os.path.join(tmp, "fixtures"))
        env = dict(os.environ, TZ="UTC", LC_ALL="C")
        out, rc = execute(cmd, sql_file, tmp, env)
        text = out.decode("utf-8", "replace")
        for t in {tmp, os.path.realpath(tmp)}:
            text = text.replace(t, "<tmp>")
    finally:
        if keep:
            print("# %s: kept %s" % (name, tmp))
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    if rc is not None and rc < 0:
        text += "[run.py: killed by signal %d]\n" % -rc
    if update:
        with open(expected_file, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        print("updated %s" % expected_file)
        return True
    try:
        with open(expected_file, encoding="utf-8", newline="") as f:
            expected = f.read()
    except FileNotFoundError:
        expected = ""
        print("# %s: no %s" % (name, expected_file))
    if text == expected and (rc is None or rc >= 0):
        print("ok %s" % name)
        return True
    print("FAIL %s" % name)
    diff = list(difflib.unified_diff(
        expected.splitlines(True), text.splitlines(True),
        fromfile=expected_file, tofile="%s (actual)" % name))
    if len(diff) > 400:
        diff = diff[:400] + ["[run.py: diff cut at 400 lines]\n"]
    for line in diff:
        sys.stdout.write(line if line.endswith("\n") else line + "\n")
    return False


def main(argv):
    # meson ends a test that overruns with SIGTERM: clean up on the way out.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    update = keep = False
    shell = None
    args = []
    for a in argv[1:]:
        if a.startswith("--shell="):
            shell = os.path.abspath(a[len("--shell="):])
        elif a == "--update":
            update = True
        elif a == "--keep":
            keep = True
        else:
            args.append(a)
    if len(args) < 4:
        sys.exit(__doc__)
    mode, target, fixtures = args[0], args[1], args[2]
    cmd = command(mode, target, shell)
    failed = 0
    for sql_file in args[3:]:
        if not run_one(cmd, fixtures, sql_file, update, keep):
            failed += 1
    sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
