#!/usr/bin/env python3
"""The klevdb command-line tool, driven as a user would drive it.

usage: test_cli.py TOOL WORKDIR [GROUP...]

TOOL is the built `klevdb` executable, WORKDIR a directory for the stores
(emptied first). GROUP picks what runs: "main" (default: everything but the
sqlite3 shell) or "sql" (needs /usr/bin/sqlite3 able to load the extension,
so it is not registered in sanitizer builds). Python standard library only.

Prints one line per check and "N checks passed" (or "N checks, M failed",
exit status 1) at the end.
"""
import base64
import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import pycheck  # noqa: E402  (the one check harness, tests/pycheck.py)
from pycheck import check, eq  # noqa: E402

pycheck.detail_on_ok = False   # details here are whole outputs

TOOL = None
WORK = None
ENV = None


def run(*args, stdin=b"", env=None, timeout=60):
    """Runs the tool; returns (exit code, stdout, stderr)."""
    p = subprocess.run([TOOL] + [str(a) for a in args], input=stdin,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=env or ENV, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def jrun(*args, **kw):
    """Runs the tool with --json; returns (exit code, parsed lines, stderr)."""
    rc, out, err = run("--json", *args, **kw)
    try:
        rows = [json.loads(line) for line in out.splitlines()]
    except ValueError:
        rows = ["unparsable: %r" % out]
    return rc, rows, err


def jone(*args, **kw):
    rc, rows, err = jrun(*args, **kw)
    return rc, (rows[0] if len(rows) == 1 else rows), err


def fresh(name):
    path = os.path.join(WORK, name)
    shutil.rmtree(path, ignore_errors=True)
    return path


def lines(*values):
    return b"".join(v + b"\n" for v in values)


def publish(d, data, *opts):
    rc, out, err = run("publish", d, "--quiet", *opts, stdin=data)
    if not check(rc == 0, "publish %d bytes into %s" % (len(data), os.path.basename(d)), err):
        sys.exit(1)


def values_store(name, n, rollover=None, chunk=None):
    """A store of n messages "value-00".. without keys; published `chunk`
    at a time (one batch each) so that a small rollover makes segments."""
    d = fresh(name)
    vals = [b"value-%02d" % i for i in range(n)]
    chunk = chunk or n
    opts = ["--rollover", rollover] if rollover else []
    for i in range(0, n, chunk):
        publish(d, lines(*vals[i:i + chunk]), *opts)
    return d


def dump_rows(d):
    rc, rows, err = jrun("dump", d)
    check(rc == 0, "dump --json %s" % os.path.basename(d), err)
    return rows


def is_error(err, *words):
    """stderr is one or more "klevdb: ..." lines mentioning every word."""
    text = err.decode(errors="replace")
    first = text.splitlines()[0] if text else ""
    return (first.startswith("klevdb: ") and not first.startswith("klevdb: klevdb:")
            and all(w.lower() in text.lower() for w in words))


def err_check(result, code, what, *words):
    rc, _, err = result
    check(rc == code and is_error(err, *words), what,
          "exit %d, stderr %r" % (rc, err[:300]))


def header_version():
    """KLEVDB_VERSION_STRING of klevdb.h (core/meson.build holds it to the
    project's version)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                        "core", "include", "klevdb.h")
    with open(path, "rb") as f:
        m = re.search(rb'^#define KLEVDB_VERSION_STRING "([^"]+)"$', f.read(), re.M)
    return m.group(1) if m else b"(no KLEVDB_VERSION_STRING in klevdb.h)"


def seg_logs(d):
    return sorted(f for f in os.listdir(d) if f.endswith(".log"))


# ---------------------------------------------------------------------------

def test_usage():
    d = values_store("usage", 3)
    err_check(run(), 2, "no command: usage, exit 2", "no command", "usage:")
    err_check(run("frobnicate", d), 2, "unknown command", "unknown command 'frobnicate'")
    err_check(run("--bogus", "dump", d), 2, "unknown global option", "unknown option --bogus")
    rc, out, _ = run("--help")
    check(rc == 0 and b"exit codes:" in out and b"4  locked" in out and b"tail" in out,
          "--help lists commands and exit codes")
    rc, out, _ = run("--version")
    eq(out, b"klevdb %s\n" % header_version(), "--version: the library's version")
    check(rc == 0, "--version exits 0", rc)

    commands = ["publish", "consume", "dump", "tail", "get", "stat", "check", "recover",
                "backup", "migrate", "gc", "trim", "compact", "sql"]
    for cmd in commands:
        rc, out, _ = run(cmd, "--help")
        check(rc == 0 and out.startswith(b"usage: klevdb " + (b"consume" if cmd == "dump"
                                                               else cmd.encode())),
              "%s --help" % cmd, out[:80])
        err_check(run(cmd), 2, "%s without DIR: exit 2" % cmd, cmd + ":", "usage:")
        err_check(run(cmd, d, "--no-such-option"), 2, "%s unknown option: exit 2" % cmd,
                  "unknown option --no-such-option")
    # Global options after the command work too.
    rc, rows, _ = jrun("dump", d)
    rc2, out2, _ = run("dump", d, "--json")
    check(rc == 0 and rc2 == 0 and [json.loads(x) for x in out2.splitlines()] == rows,
          "--json after the command")

    # Each command's own argument errors.
    err_check(run("publish", d, "--input", "xml"), 2, "publish --input xml", "--input")
    err_check(run("publish", d, "--rollover", "lots"), 2, "publish --rollover lots", "--rollover")
    err_check(run("publish", d, "--no-key-index"), 2,
              "publish --no-key-index on a store with a key index", "new stores")
    err_check(run("consume", d, "--from", "-3"), 2, "consume --from -3", "--from")
    err_check(run("consume", d, "--count", "x"), 2, "consume --count x", "--count")
    err_check(run("consume", d, "--count"), 2, "consume --count without a value", "needs a value")
    err_check(run("dump", d, "extra"), 2, "dump DIR extra", "unexpected argument 'extra'")
    err_check(run("tail", "-n", "many", d), 2, "tail -n many", "-n")
    err_check(run("get", d), 2, "get without OFFSET/--key/--time", "exactly one")
    err_check(run("get", d, "1", "--key", "k"), 2, "get OFFSET --key", "exactly one")
    err_check(run("get", d, "--time", "yesterday"), 2, "get --time yesterday", "ISO-8601")
    err_check(run("get", d, "--time", "2024-02-30"), 2, "get --time 2024-02-30", "out of range")
    err_check(run("get", d, "one"), 2, "get OFFSET not a number", "not an offset")
    err_check(run("stat", d, "extra"), 2, "stat DIR extra", "unexpected")
    err_check(run("check", d, "extra"), 2, "check DIR extra", "unexpected")
    err_check(run("recover", d, "extra"), 2, "recover DIR extra", "unexpected")
    err_check(run("backup", d), 2, "backup without DEST", "DEST")
    err_check(run("backup", d, d + "/."), 2, "backup into the store itself", "same directory")
    err_check(run("migrate", d), 2, "migrate without --to", "--to")
    err_check(run("migrate", d, "--to", "v3"), 2, "migrate --to v3", "v3")
    err_check(run("gc", d, "extra"), 2, "gc DIR extra", "unexpected")
    err_check(run("trim", d), 2, "trim without a mode", "exactly one")
    err_check(run("trim", d, "--count", "1", "--age", "1d"), 2, "trim with two modes", "exactly one")
    err_check(run("trim", d, "--size", "12Q"), 2, "trim --size 12Q", "--size")
    err_check(run("trim", d, "--age", "soon"), 2, "trim --age soon", "duration")
    err_check(run("trim", d, "--before-offset", "-1"), 2, "trim --before-offset -1", "before-offset")
    err_check(run("compact", d), 2, "compact without a mode", "--updates")
    err_check(run("compact", d, "--updates", "--before", "later"), 2, "compact --before later", "--before")
    err_check(run("sql", d, "--table", ""), 2, "sql --table ''", "--table")
    # Nothing was changed by any of that.
    eq(len(dump_rows(d)), 3, "usage errors changed nothing")


def test_missing_store():
    nope = os.path.join(WORK, "no-such-store")
    shutil.rmtree(nope, ignore_errors=True)
    for args in (["dump", nope], ["consume", nope], ["tail", nope], ["get", nope, "0"],
                 ["stat", nope], ["check", nope], ["recover", nope], ["backup", nope, nope + "-b"],
                 ["migrate", nope, "--to", "v2"], ["gc", nope], ["trim", nope, "--count", "1"],
                 ["compact", nope, "--updates"], ["sql", nope]):
        err_check(run(*args), 1, "%s on a missing directory: exit 1" % args[0],
                  "no such store directory")
    check(not os.path.exists(nope) and not os.path.exists(nope + "-b"),
          "nothing created for a missing store")


def test_not_a_store():
    # A folder of other files (think /etc): no segment files, no .lock.
    d = fresh("not-a-store")
    os.makedirs(os.path.join(d, "sub"))
    with open(os.path.join(d, "notes.txt"), "w") as f:
        f.write("not messages\n")
    before = sorted(os.listdir(d))
    for args in (["dump", d], ["consume", d], ["tail", d], ["get", d, "0"], ["stat", d],
                 ["check", d], ["recover", d], ["backup", d, d + "-b"], ["migrate", d, "--to", "v2"],
                 ["gc", d], ["trim", d, "--count", "1"], ["compact", d, "--updates"], ["sql", d],
                 ["publish", d]):
        err_check(run(*args, stdin=b"x\n"), 1, "%s on a folder that is not a store: exit 1" % args[0],
                  "is not a klevdb store")
    eq(sorted(os.listdir(d)), before, "nothing was created in it")
    check(not os.path.exists(d + "-b"), "no backup folder was made")
    # An empty folder is an empty store (CREATE VIRTUAL TABLE makes just that).
    e = fresh("empty-store")
    os.makedirs(e)
    rc, out, err = run("dump", e)
    eq((rc, out, err), (0, b"", b""), "dump of an empty folder: an empty store, exit 0")
    rc, res, _ = jone("stat", e)
    eq((rc, res.get("messages")), (0, 0), "stat of an empty folder: 0 messages")


def test_roundtrip_lines():
    d = fresh("lines")
    data = [b"hello", b"", b"tab\there", b"back\\slash", b"bin\x00\xff\x01", "caf\u00e9".encode(),
            b"crlf\r"]
    before = time.time()
    rc, out, err = run("publish", d, stdin=lines(*data))
    after = time.time()
    eq((rc, out, err), (0, b"", b"published 7 messages, offsets 0..6\n"),
       "publish lines: summary on stderr")
    rc, out, err = run("dump", d)
    got = [line.split(b"  ", 3) for line in out.splitlines()]
    eq(rc, 0, "dump exit code")
    eq([g[0] for g in got], [b"%d" % i for i in range(7)], "dump offsets")
    eq([g[2] for g in got], [b"-"] * 7, "dump: no key shown as -")
    eq([g[3] for g in got], [b"hello", b"-", b"tab\\x09here", b"back\\\\slash",
                             b"bin\\x00\\xff\\x01", "caf\u00e9".encode(), b"crlf\\x0d"],
       "dump text escapes non-printable bytes")
    rows = dump_rows(d)
    eq([r["offset"] for r in rows], list(range(7)), "json offsets")
    eq([r["key"] for r in rows], [None] * 7, "json: absent key is null")
    decoded = []
    for r in rows:
        v = r["value"]
        decoded.append(None if v is None else
                       base64.b64decode(v["base64"]) if isinstance(v, dict) else v.encode())
    eq(decoded, [b"hello", None, b"tab\there", b"back\\slash", b"bin\x00\xff\x01",
                 "caf\u00e9".encode(), b"crlf\r"], "json values (binary as base64)")
    check(isinstance(rows[4]["value"], dict) and isinstance(rows[0]["value"], str),
          "only non-UTF-8 values are base64")
    check(all(before * 1e6 - 1e6 <= r["time_us"] <= after * 1e6 + 1e6 for r in rows),
          "time defaults to now")
    check(all(r["time"].endswith("Z") and len(r["time"]) == 27 for r in rows),
          "json time is ISO-8601 with microseconds", rows[0]["time"])
    check(text_time_matches(out, rows), "text time equals the JSON time")

    # --key gives every line a key; a last line without \n counts.
    rc, _, err = run("publish", d, "--key", "user:1", stdin=b"a\nb")
    eq((rc, err), (0, b"published 2 messages, offsets 7..8\n"), "publish --key, no final newline")
    rc, rows, _ = jrun("consume", d, "--from", "7")
    eq([(r["key"], r["value"]) for r in rows], [("user:1", "a"), ("user:1", "b")],
       "publish --key round trip")

    # 2500 lines: several batches, every line once, in order.
    big = fresh("lines-big")
    rc, out, err = run("--json", "publish", big, "--input", "lines",
                       stdin=lines(*[b"m%d" % i for i in range(2500)]))
    eq((rc, json.loads(out)), (0, {"published": 2500, "first_offset": 0, "last_offset": 2499,
                                   "next_offset": 2500}), "publish --json summary on stdout")
    eq(err, b"published 2500 messages, offsets 0..2499\n", "summary on stderr too")
    rows = dump_rows(big)
    eq([r["value"] for r in rows], ["m%d" % i for i in range(2500)], "2500 lines round trip")
    rc, out, err = run("publish", big, "--quiet", stdin=b"x\n")
    eq((rc, out, err), (0, b"", b""), "publish --quiet prints nothing")


def text_time_matches(out, rows):
    return [line.split(b"  ")[1].decode() for line in out.splitlines()] == \
        [r["time"] for r in rows][:len(out.splitlines())]


def test_roundtrip_json():
    d = fresh("jsonl")
    src = [
        {"key": "user:1", "value": "click", "time": "2024-05-01T09:00:00Z"},
        {"key": "user:2", "value": "view", "time": "2024-05-01T09:00:00.000123Z"},
        {"key": {"base64": base64.b64encode(b"\x00\xfe").decode()},
         "value": {"base64": base64.b64encode(b"\xff\xfe\x00").decode()}, "time": 1714554001000000},
        {"key": "user:1", "value": None, "time": "2024-05-01T11:00:02+02:00"},
        {"value": "no key \u2603 \"quoted\"\n", "time": "2024-05-01 09:00:03.5"},
        {"key": "t", "value": "now"},
    ]
    data = "".join(json.dumps(m) + "\n" for m in src).encode() + b"\n  \n"
    rc, out, err = run("--json", "publish", d, stdin=data)
    eq((rc, json.loads(out)["published"]), (0, 6), "publish --json (blank lines skipped)")
    rows = dump_rows(d)
    eq([r["key"] for r in rows],
       ["user:1", "user:2", {"base64": "AP4="}, "user:1", None, "t"], "json keys round trip")
    eq([r["value"] for r in rows],
       ["click", "view", {"base64": "//4A"}, None, "no key \u2603 \"quoted\"\n", "now"],
       "json values round trip")
    eq([r["time"] for r in rows[:5]],
       ["2024-05-01T09:00:00.000000Z", "2024-05-01T09:00:00.000123Z", "2024-05-01T09:00:01.000000Z",
        "2024-05-01T09:00:02.000000Z", "2024-05-01T09:00:03.500000Z"], "json times round trip")
    eq(rows[1]["time_us"], 1714554000000123, "time_us")
    check(abs(rows[5]["time_us"] / 1e6 - time.time()) < 60, "no time: now")

    # What dump --json prints, publish --json reads back: an exact copy.
    rc, out, _ = run("--json", "dump", d)
    copy = fresh("jsonl-copy")
    publish(copy, out, "--json")
    eq(dump_rows(copy), rows, "dump --json | publish --json copies exactly")
    # --input json without --json: the summary stays text.
    copy2 = fresh("jsonl-copy2")
    rc, out2, err = run("publish", copy2, "--input", "json", stdin=out)
    eq((rc, out2, err), (0, b"", b"published 6 messages, offsets 0..5\n"), "--input json")

    # A bad line: exit 2 naming the line; the lines before it are published.
    bad = fresh("jsonl-bad")
    rc, _, err = run("publish", bad, "--json",
                     stdin=b'{"value":"a"}\n{"value":"b"}\n{"value": 12}\n{"value":"d"}\n')
    check(rc == 2 and is_error(err, "line 3", "value must be") and
          b"published 2 messages, offsets 0..1" in err, "bad JSON line: exit 2 with its number", err)
    eq([r["value"] for r in dump_rows(bad)], ["a", "b"], "lines before the bad one are kept")
    for line, word in ((b'{"value":"x", "colour":"red"}', "unknown field"),
                       (b'{"value":"x"', "expected"),
                       (b'{"time":"noon"}', "ISO-8601"),
                       (b'{"time":1.5}', "time must be"),
                       (b'{"key":{"base64":"%%%"}}', "not base64"),
                       (b'{"value":"\\ud800"}', "surrogate"),
                       (b'["value"]', "expected a JSON object"),
                       (b'{"value":"x"} trailing', "text after")):
        rc, _, err = run("publish", bad, "--json", "--quiet", stdin=line + b"\n")
        check(rc == 2 and is_error(err, "line 1", word), "bad JSON line %r: exit 2" % line, err)
    eq(len(dump_rows(bad)), 2, "bad lines published nothing")


def test_consume():
    d = fresh("consume")
    msgs = [{"key": "k%d" % (i % 3), "value": "v%d" % i} for i in range(20)]
    publish(d, "".join(json.dumps(m) + "\n" for m in msgs).encode(), "--json")
    off = lambda rows: [r["offset"] for r in rows]
    rc, rows, _ = jrun("consume", d)
    eq((rc, off(rows)), (0, list(range(20))), "consume: all by default")
    rc, rows, _ = jrun("consume", d, "--from", "5", "--count", "3")
    eq((rc, off(rows)), (0, [5, 6, 7]), "consume --from 5 --count 3")
    rc, rows, _ = jrun("consume", d, "--from", "oldest", "--count", "2")
    eq(off(rows), [0, 1], "consume --from oldest")
    rc, rows, _ = jrun("consume", d, "--from", "newest")
    eq(off(rows), [19], "consume --from newest: the newest message")
    rc, rows, _ = jrun("consume", d, "--from", "20")
    eq((rc, rows), (0, []), "consume --from next offset: nothing")
    err_check(run("consume", d, "--from", "21"), 1, "consume past the end: exit 1", "invalid offset")
    rc, rows, _ = jrun("consume", d, "--key", "k1")
    eq(off(rows), list(range(1, 20, 3)), "consume --key k1")
    rc, rows, _ = jrun("consume", d, "--key", "k1", "--from", "8", "--count", "2")
    eq(off(rows), [10, 13], "consume --key --from --count")
    rc, rows, _ = jrun("consume", d, "--key", "nope")
    eq((rc, rows), (0, []), "consume --key without matches: nothing, exit 0")
    rc, rows, _ = jrun("consume", d, "--count", "0")
    eq((rc, rows), (0, []), "consume --count 0")
    rc, out, _ = run("dump", d, "--count", "1")
    check(rc == 0 and out.split(b"  ")[2:] == [b"k0", b"v0\n"], "dump text with key", out)

    # A store without a key index: --key is a usage error (2).
    nk = fresh("nokeys")
    publish(nk, b"a\nb\n", "--no-key-index", "--no-time-index")
    err_check(run("consume", nk, "--key", "a"), 2, "consume --key without key index: exit 2", "index")
    err_check(run("get", nk, "--time", "2024-01-01"), 2, "get --time without time index", "index")
    rc, rows, _ = jone("stat", nk)
    eq((rows["key_index"], rows["time_index"]), (False, False), "stat shows the missing indexes")
    rc, _, err = run("publish", nk, "--quiet", stdin=b"c\n")
    eq(rc, 0, "publish to an index-less store keeps its options", )
    eq(len(dump_rows(nk)), 3, "index-less store readable")

    # Output to a closed pipe ends quietly with exit 0.
    p = subprocess.Popen([TOOL, "dump", os.path.join(WORK, "lines-big")], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=ENV)
    p.stdout.read(10)
    p.stdout.close()
    err = p.stderr.read()
    eq((p.wait(timeout=30), err), (0, b""), "dump into a closed pipe: exit 0, no message")


def test_get():
    d = fresh("get")
    src = [{"key": "a", "value": "a0", "time": "2024-05-01T09:00:00Z"},
           {"key": "b", "value": "b0", "time": "2024-05-01T09:00:01.250Z"},
           {"key": "a", "value": "a1", "time": "2024-05-01T09:00:02Z"},
           {"key": "c", "value": "c0", "time": "2024-05-02T00:00:00Z"}]
    publish(d, "".join(json.dumps(m) + "\n" for m in src).encode(), "--json")
    val = lambda r: r[1]["value"] if r[0] == 0 and isinstance(r[1], dict) else r
    eq(val(jone("get", d, "2")), "a1", "get OFFSET")
    eq(val(jone("get", d, "oldest")), "a0", "get oldest")
    eq(val(jone("get", d, "newest")), "c0", "get newest")
    eq(val(jone("get", d, "--key", "a")), "a1", "get --key: the newest with the key")
    eq(val(jone("get", d, "--time", "2024-05-01")), "a0", "get --time DATE")
    eq(val(jone("get", d, "--time", "2024-05-01T09:00:01Z")), "b0", "get --time ...Z")
    eq(val(jone("get", d, "--time", "2024-05-01T09:00:01.25Z")), "b0", "get --time fraction (equal)")
    eq(val(jone("get", d, "--time", "2024-05-01T09:00:01.250001Z")), "a1", "get --time fraction after")
    eq(val(jone("get", d, "--time", "2024-05-01T09:00:01,25Z")), "b0", "get --time comma fraction (as in SQL)")
    eq(val(jone("get", d, "--time", "2024-05-01T09:00:01,250001Z")), "a1", "get --time comma fraction after")
    eq(val(jone("get", d, "--time", "2024-05-01T11:00:01+02:00")), "b0", "get --time +02:00")
    eq(val(jone("get", d, "--time", "2024-05-01T05:00:02-04:00")), "a1", "get --time -04:00")
    eq(val(jone("get", d, "--time", "1714554001250000")), "b0", "get --time microseconds")
    eq(val(jone("get", d, "--time", "2024-05-01T09:00:03")), "c0", "get --time without zone is UTC")
    rc, out, _ = run("get", d, "1")
    eq((rc, out), (0, b"1  2024-05-01T09:00:01.250000Z  b  b0\n"), "get text output")
    err_check(run("get", d, "4"), 1, "get past the end: exit 1", "invalid offset")
    err_check(run("get", d, "99"), 1, "get far past the end: exit 1", "invalid offset")
    err_check(run("get", d, "--key", "zz"), 1, "get --key missing: exit 1", "not found")
    err_check(run("get", d, "--time", "2024-06-01"), 1, "get --time after the last: exit 1", "not found")
    rc, _, _ = run("trim", d, "--before-offset", "1")
    err_check(run("get", d, "0"), 1, "get of a trimmed offset: exit 1", "not found")
    empty = fresh("get-empty")
    os.makedirs(empty)
    err_check(run("get", empty, "0"), 1, "get in an empty store: exit 1", "invalid offset")


def test_stat():
    d = values_store("stat", 100, "1K", 10)
    rc, st, err = jone("stat", d)
    eq(rc, 0, "stat exit code")
    segs = len(seg_logs(d))
    check(segs > 3, "rollover 1K made several segments", segs)
    # V2: 36 + value bytes per record, 32 per index item (keys + times),
    # 8 + 8 header bytes per segment.
    eq({k: st[k] for k in ("segments", "messages", "bytes", "first_offset", "last_offset",
                           "next_offset", "key_index", "time_index", "formats")},
       {"segments": segs, "messages": 100, "bytes": 100 * (36 + 8 + 32) + 16 * segs,
        "first_offset": 0, "last_offset": 99, "next_offset": 100, "key_index": True,
        "time_index": True, "formats": {"v1": 0, "v2": segs, "empty": 0}}, "stat --json numbers")
    rows = dump_rows(d)
    eq((st["first_time"], st["last_time"], st["last_time_us"]),
       (rows[0]["time"], rows[-1]["time"], rows[-1]["time_us"]), "stat times")
    rc, out, _ = run("stat", d)
    text = dict(line.split(":", 1) for line in out.decode().splitlines())
    eq({k: v.strip() for k, v in text.items() if k in ("messages", "bytes", "next offset", "formats")},
       {"messages": "100", "bytes": str(7600 + 16 * segs), "next offset": "100", "formats": "v2"},
       "stat text")
    empty = fresh("stat-empty")
    os.makedirs(empty)
    rc, st, _ = jone("stat", empty)
    eq((rc, st["segments"], st["messages"], st["first_offset"], st["last_time"]),
       (0, 0, 0, None, None), "stat of an empty directory")


def test_check_recover():
    d = values_store("torn", 50, "1K", 10)
    rc, out, _ = run("check", d)
    eq((rc, out), (0, b"ok: %d segments, 50 messages\n" % len(seg_logs(d))), "check of a sound store")
    check(len(seg_logs(d)) > 1, "several segments")
    last = os.path.join(d, seg_logs(d)[-1])
    size = os.path.getsize(last)
    with open(last, "r+b") as f:
        f.truncate(size - 3)   # the last record loses its trailer
    err_check(run("check", d), 3, "check of a torn tail: exit 3", "corrupt")
    rc, res, err = jone("check", d)
    check(rc == 3 and res.get("ok") is False and res.get("error_class") == "log_corrupted",
          "check --json reports the damage", res)
    rc, res, err = jone("recover", d)
    eq((rc, res.get("result"), res.get("cut_bytes"), res.get("log_bytes"), res.get("index"),
        res.get("messages"), res.get("next_offset")),
       (0, "repaired", 36 + 8 - 3, size - 44, "rewritten", 49, 49), "recover cuts the torn record")
    rc, out, _ = run("check", d)
    eq(rc, 0, "check after recover")
    eq([r["value"] for r in dump_rows(d)], ["value-%02d" % i for i in range(49)],
       "the other messages survive recover")
    rc, res, _ = jone("recover", d)
    eq((rc, res.get("result"), res.get("cut_bytes"), res.get("index")),
       (0, "nothing to repair", 0, "unchanged"), "recover of a sound store changes nothing")
    rc, out, _ = run("recover", d)
    check(rc == 0 and b"result:           nothing to repair\n" in out, "recover text output", out)
    publish(d, b"after\n")
    eq(dump_rows(d)[-1]["offset"], 49, "publish after recover goes on at the cut")


def test_corrupt():
    src = values_store("corrupt-src", 60, "1K", 10)
    d = fresh("corrupt")
    shutil.copytree(src, d)
    first = os.path.join(d, seg_logs(d)[0])
    with open(first, "r+b") as f:
        f.seek(8 + 28 + 2)        # inside the first record's value
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0xFF]))
    err_check(run("check", d), 3, "check of a damaged sealed segment: exit 3", "corrupt")
    err_check(run("dump", d), 3, "dump of a damaged sealed segment: exit 3", "corrupt")
    err_check(run("get", d, "0"), 3, "get of a damaged record: exit 3", "corrupt")
    rc, rows, _ = jone("get", d, "59")
    eq((rc, rows.get("value") if isinstance(rows, dict) else rows), (0, "value-59"),
       "other segments still read")
    # A damaged index of a sealed segment.
    d2 = fresh("corrupt-index")
    shutil.copytree(src, d2)
    idx = os.path.join(d2, seg_logs(d2)[0][:-4] + ".index")
    with open(idx, "r+b") as f:
        f.truncate(os.path.getsize(idx) - 5)
    err_check(run("check", d2), 3, "check of a damaged sealed index: exit 3", "index")


def test_swapped():
    """Segment files that are not their segment's: refused (exit 3), never a
    read that goes round for ever."""
    src = fresh("swapped-src")
    for i in range(0, 120, 10):
        publish(src, lines(*[json.dumps({"key": "k%d" % (j % 3), "value": "v%d" % j}).encode()
                             for j in range(i, i + 10)]), "--json", "--rollover", "1K")
    logs = seg_logs(src)
    check(len(logs) >= 3, "a keyed store of several segments", repr(logs))

    def timed(*args, **kw):
        try:
            return run(*args, timeout=30, **kw)
        except subprocess.TimeoutExpired:
            return (-1, b"", b"timed out: it never ended")
    d = fresh("swapped")
    shutil.copytree(src, d)
    shutil.copyfile(os.path.join(d, logs[0]), os.path.join(d, logs[-1]))
    err_check(timed("consume", d, "--key", "k1"), 3,
              "consume --key, head log replaced by an older one: exit 3", "another segment")
    err_check(timed("dump", d), 3, "dump of it: exit 3", "another segment")
    d = fresh("swapped-sealed")
    shutil.copytree(src, d)
    shutil.copyfile(os.path.join(d, logs[0]), os.path.join(d, logs[1]))
    err_check(timed("consume", d, "--key", "k1"), 3,
              "consume --key, a sealed log replaced by an older one: exit 3", "another segment")
    d = fresh("symlinked")
    shutil.copytree(src, d)
    os.unlink(os.path.join(d, logs[-1]))
    os.symlink(os.path.join(d, logs[0]), os.path.join(d, logs[-1]))
    size0 = os.path.getsize(os.path.join(d, logs[0]))
    err_check(timed("consume", d, "--key", "k1"), 3, "consume --key, symlinked head log: exit 3",
              "symbolic link")
    err_check(timed("publish", d, stdin=b"x\n"), 3, "publish into it: exit 3", "symbolic link")
    eq(os.path.getsize(os.path.join(d, logs[0])), size0, "nothing written through the link")


def hold_store(d):
    """A `klevdb publish` that keeps d open for writing until its stdin
    closes; returns once its first line is published (so it holds the lock)."""
    p = subprocess.Popen([TOOL, "publish", "--quiet", d], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    p.stdin.write(b"held\n")
    p.stdin.flush()
    deadline = time.time() + 10
    while time.time() < deadline:
        rc, out, _ = run("get", d, "newest")
        if rc == 0 and out.endswith(b"  held\n"):
            return p
        time.sleep(0.01)
    check(False, "the holding publisher published its first line while its input stayed open")
    return p


def test_locked():
    d = values_store("locked", 5)
    holder = hold_store(d)
    check(holder.poll() is None, "a publisher with open input publishes at once and holds the store")
    for args in (["publish", d], ["trim", d, "--count", "1"], ["compact", d, "--updates"],
                 ["gc", d], ["recover", d], ["migrate", d, "--to", "v1"]):
        rc, out, err = run(*args, stdin=b"x\n")
        check(rc == 4 and is_error(err, "locked") and d.encode() in err,
              "%s while another process writes: exit 4 naming the store" % args[0], err)
    rc, rows, _ = jrun("dump", d)
    eq((rc, len(rows)), (0, 6), "reads work while another process writes")
    rc, res, _ = jone("check", d)
    eq((rc, res), (0, {"ok": True, "segments": 1, "messages": 6, "live": True}),
       "check while another process writes: its room ahead and lagging index are not damage")
    b = fresh("locked-backup")
    rc, _, _ = run("backup", d, b)
    eq(rc, 0, "backup while another process writes")
    rc, res, _ = jone("check", b)
    eq((rc, res), (0, {"ok": True, "segments": 1, "messages": 6, "live": False}),
       "the backup of a live store is clean (no allocated tail)")
    eq(dump_rows(b), dump_rows(d), "the backup of a live store has every message")
    holder.stdin.write(b"more\n")
    holder.stdin.close()
    eq(holder.wait(timeout=30), 0, "the holder ends cleanly at the end of its input")
    eq([r["value"] for r in dump_rows(d)][-2:], ["held", "more"], "the holder published both lines")
    rc, _, _ = run("trim", d, "--count", "1")
    eq(rc, 0, "writable again once the holder is gone")


def test_backup():
    d = values_store("backup-src", 80, "1K", 10)
    b = fresh("backup-dst")
    rc, res, _ = jone("backup", d, b)
    eq((rc, res.get("segments"), res.get("messages")), (0, len(seg_logs(d)), 80), "backup --json")
    eq(dump_rows(b), dump_rows(d), "dump of the backup equals dump of the store")
    eq(sorted(f for f in os.listdir(b) if not f.startswith(".")),
       sorted(f for f in os.listdir(d) if not f.startswith(".")), "backup holds the same files")
    publish(d, b"later\n")
    # Into a store (even an earlier backup of this one): refused, untouched.
    before = {f: open(os.path.join(b, f), "rb").read() for f in os.listdir(b)}
    err_check(run("backup", d, b), 2, "a second backup into the same place is refused",
              "is not empty")
    eq({f: open(os.path.join(b, f), "rb").read() for f in os.listdir(b)}, before,
       "the refused backup left the destination as it was")
    b2 = fresh("backup-dst2")
    rc, _, _ = run("backup", d, b2)
    eq(rc, 0, "a backup into a new place")
    eq(dump_rows(b2), dump_rows(d), "it has the new message")
    # Over another store's messages: never mixed.
    other = values_store("backup-other", 5)
    want = dump_rows(other)
    err_check(run("backup", d, other), 2, "a backup into another store is refused", "is not empty")
    eq(dump_rows(other), want, "the other store is as it was")
    # Into a store another process writes: refused, not a word lost there.
    held = fresh("backup-held")
    os.mkdir(held)
    holder = hold_store(held)
    err_check(run("backup", d, held), 4, "a backup into a store another process writes: exit 4",
              "locked")
    holder.stdin.write(b"more\n")
    holder.stdin.close()
    eq(holder.wait(timeout=30), 0, "the writer there ends cleanly")
    eq([r["value"] for r in dump_rows(held)], ["held", "more"], "and has both of its messages")
    # Inside the store: refused before anything is made there.
    err_check(run("backup", d, os.path.join(d, "sub", "dir")), 2,
              "a backup into a folder inside the store is refused", "inside the store")
    check(not os.path.exists(os.path.join(d, "sub")), "no folder was made inside the store")


def test_migrate():
    d = values_store("migrate", 40, "1K", 10)
    want = dump_rows(d)
    segs = len(seg_logs(d))
    rc, res, _ = jone("migrate", d, "--to", "v1")
    eq((rc, res), (0, {"format": "v1", "segments": segs, "migrated": segs}), "migrate --to v1")
    eq(jone("stat", d)[1]["formats"], {"v1": segs, "v2": 0, "empty": 0}, "stat: all v1")
    eq(dump_rows(d), want, "v1 store reads the same")
    rc, res, _ = jone("migrate", d, "--to", "v1")
    eq((rc, res["migrated"]), (0, 0), "migrate to the same format: nothing to do")
    rc, res, _ = jone("migrate", d, "--to", "v2")
    eq((rc, res["migrated"]), (0, segs), "migrate --to v2")
    eq(jone("stat", d)[1]["formats"], {"v1": 0, "v2": segs, "empty": 0}, "stat: all v2")
    eq(dump_rows(d), want, "v1 -> v2 round trip keeps every message")
    rc, _, _ = run("check", d)
    eq(rc, 0, "check after the migrations")


def test_gc():
    d = values_store("gc", 10)
    stale = "00000000000000000000.log.rewrite.abcdefgh"
    with open(os.path.join(d, stale), "wb") as f:
        f.write(b"left by a crash")
    rc, res, _ = jone("gc", d)
    eq((rc, res), (0, {"removed_files": 1, "removed": [stale]}), "gc removes a crashed writer's temp")
    check(not os.path.exists(os.path.join(d, stale)), "the temp file is gone")
    rc, out, _ = run("gc", d)
    eq((rc, out), (0, b"removed files:    0\nremoved:          -\n"), "gc with nothing to do")
    eq(len(dump_rows(d)), 10, "gc keeps every message")
    empty = fresh("gc-empty")
    os.makedirs(empty)
    rc, res, _ = jone("gc", empty)
    eq((rc, res["removed_files"], os.listdir(empty)), (0, 0, []), "gc leaves a non-store alone")


def test_trim():
    item = 36 + 8 + 32   # one "value-NN" message on disk, as the trims count it
    d = values_store("trim-count", 100)
    rc, res, _ = jone("trim", d, "--count", "30")
    eq((rc, res), (0, {"removed_messages": 70, "removed_bytes": 70 * item, "messages": 30}),
       "trim --count 30 keeps the newest 30")
    eq(dump_rows(d)[0]["value"], "value-70", "the oldest are gone")
    rc, res, _ = jone("trim", d, "--count", "30")
    eq(res["removed_messages"], 0, "trim --count again: nothing")

    d = values_store("trim-size", 100)
    # 7616 bytes; removing until under 4000 takes 48 messages.
    rc, res, _ = jone("trim", d, "--size", "4000")
    eq((rc, res["removed_messages"], res["removed_bytes"]), (0, 48, 48 * item), "trim --size 4000")
    d = values_store("trim-size-k", 100)
    rc, res, _ = jone("trim", d, "--size", "4K")
    eq((rc, res["removed_messages"]), (0, 47), "trim --size 4K (4096 bytes)")
    d = values_store("trim-size-blank", 100)
    rc, res, _ = jone("trim", d, "--size", "4 KB")
    eq((rc, res["removed_messages"]), (0, 47), "trim --size '4 KB' (a blank before the unit, as in SQL)")

    d = values_store("trim-offset", 100, "1K", 10)
    rc, res, _ = jone("trim", d, "--before-offset", "25")
    eq((rc, res["removed_messages"], res["removed_bytes"]), (0, 25, 25 * item),
       "trim --before-offset 25")
    eq(dump_rows(d)[0]["offset"], 25, "first offset is 25")

    d = fresh("trim-age")
    old = ["2020-01-01T00:00:%02dZ" % i for i in range(20)]
    data = "".join(json.dumps({"value": "old-%02d" % i, "time": t}) + "\n" for i, t in enumerate(old))
    data += "".join(json.dumps({"value": "new-%02d" % i}) + "\n" for i in range(5))
    publish(d, data.encode(), "--json")
    rc, res, _ = jone("trim", d, "--age", "7d")
    eq((rc, res["removed_messages"], res["removed_bytes"], res["messages"]),
       (0, 20, 20 * (36 + 6 + 32), 5), "trim --age 7d removes the old messages")
    rc, res, _ = jone("trim", d, "--age", "1h30m")
    eq(res["removed_messages"], 0, "trim --age 1h30m keeps recent ones")
    rc, out, _ = run("trim", d, "--count", "2")
    eq((rc, out), (0, b"removed messages: 3\nremoved bytes:    %d\nmessages:         2\n" % (3 * 74)),
       "trim text output")


def test_compact():
    seq = [("a", "1"), ("b", "1"), ("a", "2"), ("c", "1"), ("a", "3"), ("b", "2"), ("c", None),
           ("d", None)]
    data = "".join(json.dumps({"key": k, "value": v}) + "\n" for k, v in seq).encode()
    d = fresh("compact")
    publish(d, data, "--json")
    rc, res, _ = jone("compact", d, "--updates", "--before", "2000-01-01")
    eq((rc, res["removed_messages"]), (0, 0), "compact --before 2000: nothing that old")
    rc, res, _ = jone("compact", d, "--updates")
    size = lambda kvs: sum(36 + len(k) + len(v or "") + 32 for k, v in kvs)
    eq((rc, res["removed_messages"], res["removed_bytes"]),
       (0, 4, size([("a", "1"), ("b", "1"), ("a", "2"), ("c", "1")])), "compact --updates")
    eq([(r["key"], r["value"]) for r in dump_rows(d)],
       [("a", "3"), ("b", "2"), ("c", None), ("d", None)], "the newest of each key stays")
    rc, res, _ = jone("compact", d, "--deletes")
    eq((rc, res["removed_messages"], res["removed_bytes"]), (0, 2, size([("c", None), ("d", None)])),
       "compact --deletes")
    eq([r["key"] for r in dump_rows(d)], ["a", "b"], "tombstones are gone")

    d = fresh("compact-deletes-only")
    publish(d, data, "--json")
    rc, res, _ = jone("compact", d, "--deletes", "--before", "1d")
    eq(res["removed_messages"], 0, "compact --deletes --before 1d (a day ago): nothing")
    rc, res, _ = jone("compact", d, "--deletes")
    eq(res["removed_messages"], 1, "compact --deletes alone: only d, c still has a value before")
    d = fresh("compact-both")
    publish(d, data, "--json")
    rc, res, _ = jone("compact", d, "--updates", "--deletes", "--before", "now")
    eq((rc, res["removed_messages"], res["messages"]), (0, 6, 2), "compact --updates --deletes")


class Lines:
    """Lines from a pipe, read without blocking longer than asked."""

    def __init__(self, f):
        self.fd = f.fileno()
        self.buf = b""

    def get(self, timeout):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line


def test_tail():
    d = values_store("tail", 20, "256", 5)
    vals = lambda out: [line.split(b"  ")[3] for line in out.splitlines()]
    rc, out, _ = run("tail", "-n", "3", d)
    eq((rc, vals(out)), (0, [b"value-17", b"value-18", b"value-19"]), "tail -n 3")
    rc, out, _ = run("tail", d)
    eq(vals(out), [b"value-%02d" % i for i in range(10, 20)], "tail: 10 by default")
    rc, out, _ = run("tail", "-n", "0", d)
    eq((rc, out), (0, b""), "tail -n 0")
    rc, out, _ = run("tail", "-n", "500", d)
    eq(len(out.splitlines()), 20, "tail -n more than there are")
    rc, _, _ = run("trim", d, "--before-offset", "15")
    rc, out, _ = run("tail", "--lines", "8", d)
    eq(vals(out), [b"value-%02d" % i for i in range(15, 20)], "tail after a trim")

    # -f: a message published by another process shows within 100 ms.
    p = subprocess.Popen([TOOL, "tail", "-f", "-n", "1", d], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=ENV)
    out = Lines(p.stdout)
    first = out.get(10)
    check(first is not None and first.endswith(b"value-19"), "tail -f prints the last message", first)
    worst = 0.0
    for i in range(5):
        rc, _, _ = run("publish", "--quiet", d, stdin=b"fresh-%d\n" % i)
        t0 = time.monotonic()
        line = out.get(5)
        lat = time.monotonic() - t0
        worst = max(worst, lat)
        check(line is not None and line.endswith(b"  -  fresh-%d" % i),
              "tail -f sees fresh-%d (%.1f ms)" % (i, lat * 1000), line)
    check(worst < 0.1, "tail -f latency under 100 ms (worst %.1f ms)" % (worst * 1000))
    # A batch of many arrives whole and in order.
    run("publish", "--quiet", d, stdin=lines(*[b"burst-%d" % i for i in range(300)]))
    got = [out.get(5) for _ in range(300)]
    check(all(g is not None and g.endswith(b"burst-%d" % i) for i, g in enumerate(got)),
          "tail -f follows a burst of 300 in order")
    p.send_signal(signal.SIGTERM)
    rc = p.wait(timeout=5)
    eq((rc, p.stderr.read()), (0, b""), "tail -f ends on SIGTERM with exit 0")

    p = subprocess.Popen([TOOL, "--json", "tail", "-f", "-n", "1", d], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=ENV)
    out = Lines(p.stdout)
    first = out.get(10)   # it follows from here on
    check(first is not None and json.loads(first)["value"] == "burst-299", "tail -f --json -n 1",
          first)
    run("publish", "--quiet", d, stdin=b"json-follow\n")
    line = out.get(5)
    check(line is not None and json.loads(line)["value"] == "json-follow", "tail -f --json", line)
    p.send_signal(signal.SIGINT)
    eq(p.wait(timeout=5), 0, "tail -f ends on SIGINT with exit 0")

    # Its reader gone, tail -f ends with 0 at the next message.
    p = subprocess.Popen([TOOL, "tail", "-f", "-n", "1", d], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=ENV)
    out = Lines(p.stdout)
    check(out.get(10) is not None, "tail -f started")
    p.stdout.close()
    run("publish", "--quiet", d, stdin=b"nobody reads this\n")
    try:
        rc = p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = "still running"
    eq((rc, p.stderr.read()), (0, b""), "tail -f with its output closed: exit 0")


def read_pty(master, proc, timeout=60):
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.1)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        elif proc.poll() is not None:
            break
    proc.wait(timeout=10)
    return data


def with_tty_stderr(*args):
    master, slave = pty.openpty()
    p = subprocess.Popen([TOOL] + list(args), stdout=subprocess.PIPE, stderr=slave, env=ENV)
    os.close(slave)
    err = read_pty(master, p)
    os.close(master)
    return p.returncode, p.stdout.read(), err


def test_progress():
    src = values_store("progress-src", 3000, "4K")
    for args in (["trim", "{d}", "--count", "10"], ["compact", "{d}", "--updates"],
                 ["migrate", "{d}", "--to", "v1"], ["backup", "{d}", "{d}-bak"],
                 ["recover", "{d}"], ["check", "{d}"]):
        d = fresh("progress")
        shutil.rmtree(d + "-bak", ignore_errors=True)
        shutil.copytree(src, d)
        argv = [a.format(d=d) for a in args]
        rc, out, err = run(*argv)
        check(rc == 0 and b"\r" not in err and b"[" not in err,
              "%s piped: no progress bar" % args[0], err[:100])
        d = fresh("progress")
        shutil.rmtree(d + "-bak", ignore_errors=True)
        shutil.copytree(src, d)
        rc, out, err = with_tty_stderr(*argv)
        check(rc == 0 and b"\r" + args[0].encode() + b" [" in err and err.endswith(b"\r\x1b[K"),
              "%s on a terminal: a bar, wiped at the end" % args[0], err[-120:])
    d = fresh("progress")
    shutil.copytree(src, d)
    rc, out, err = with_tty_stderr("--quiet", "trim", d, "--count", "10")
    eq((rc, err), (0, b""), "--quiet on a terminal: no bar")
    d = fresh("progress")
    shutil.copytree(src, d)
    rc, out, err = with_tty_stderr("--json", "migrate", d, "--to", "v1")
    eq((rc, err), (0, b""), "--json on a terminal: no bar")


def test_sql_errors():
    d = values_store("sql-err", 3)
    err_check(run("sql"), 2, "sql without DIR", "no store directory")
    env = dict(ENV, PATH=os.path.join(WORK, "empty-path"))
    err_check(run("sql", d, env=env), 5, "sql without sqlite3 on PATH: exit 5", "sqlite3 is not on PATH")
    env = dict(ENV, KLEVDB_EXTENSION=os.path.join(WORK, "no-such.so"))
    err_check(run("sql", d, env=env), 5, "sql with a missing KLEVDB_EXTENSION: exit 5", "KLEVDB_EXTENSION")


def test_sql():
    if not shutil.which("sqlite3", path=ENV.get("PATH")):
        print("skip - sqlite3 is not on PATH")
        return 77
    d = values_store("sql", 100)
    rc, out, err = run("sql", d, "--", "SELECT count(*) FROM store")
    eq((rc, out, err), (0, b"100\n", b""), "sql -- \"SELECT count(*) FROM store\"")
    rc, out, err = run("sql", d, "--table", "ev", "--", 'SELECT value FROM ev WHERE "offset" = 42')
    eq((rc, out), (0, b"value-42\n"), "sql --table ev")
    rc, out, err = run("sql", d, "--table", 'we"ird', "--", 'SELECT max("offset") FROM "we""ird"')
    eq((rc, out), (0, b"99\n"), "sql --table with a quote in the name")
    q = fresh("it's a store")
    publish(q, b"x\ny\n")
    rc, out, err = run("sql", q, "--", "SELECT group_concat(value, ',') FROM store")
    eq((rc, out), (0, b"x,y\n"), "sql on a directory with a quote in its name")
    # The store attached read-write by default: an INSERT publishes.
    rc, out, err = run("sql", q, "--", "INSERT INTO store(value) VALUES ('from sql')")
    eq(rc, 0, "sql INSERT", )
    eq(dump_rows(q)[-1]["value"], "from sql", "a row inserted through sql is in the store")
    holder = hold_store(d)
    rc, out, err = run("sql", d, "--readonly", "--", "SELECT count(*) FROM store")
    eq((rc, out), (0, b"101\n"), "sql --readonly reads a store another process writes")
    holder.stdin.close()
    holder.wait(timeout=30)
    rc, out, err = run("sql", d, "--", "-json", "SELECT \"offset\", value FROM store LIMIT 1")
    eq((rc, json.loads(out or b"null")), (0, [{"offset": 0, "value": "value-00"}]),
       "sqlite3 options after --")
    return 0


def main():
    global TOOL, WORK, ENV
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    TOOL = os.path.abspath(sys.argv[1])
    WORK = os.path.abspath(sys.argv[2])
    groups = sys.argv[3:] or ["main"]
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    ENV = {k: v for k, v in os.environ.items() if k != "KLEVDB_EXTENSION"}
    # In a sanitizer build, undefined behaviour fails the command (and so a
    # check) instead of printing a line no check may look at.
    ENV["UBSAN_OPTIONS"] = "halt_on_error=1:print_stacktrace=1:" + ENV.get("UBSAN_OPTIONS", "")
    status = 0
    if "main" in groups:
        for t in (test_usage, test_missing_store, test_not_a_store, test_roundtrip_lines, test_roundtrip_json,
                  test_consume, test_get, test_stat, test_check_recover, test_corrupt, test_swapped,
                  test_locked,
                  test_backup, test_migrate, test_gc, test_trim, test_compact, test_tail,
                  test_progress, test_sql_errors):
            print("# %s" % t.__name__)
            t()
    if "sql" in groups:
        print("# test_sql")
        status = test_sql()
        if status == 77 and pycheck.checks == 0:
            return 77
    if pycheck.failures:
        print("%d checks, %d failed" % (pycheck.checks, pycheck.failures))
        return 1
    print("%d checks passed" % pycheck.checks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
