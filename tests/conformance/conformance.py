#!/usr/bin/env python3
"""Conformance of libklevdb with the golden stores written by Go klevdb.

usage: conformance.py FIXTURES_DIR PROBE_BINARY

For every fixture folder (see FIXTURES_DIR/README.md) this runs kdb_probe on
a copy of the store and compares what the C library answers with what Go
answered: dump, every query (read-only and read-write), stat, check, the
mismatched-options combos, a fresh publish of input.jsonl (file bytes), and
for v2-torn the recover / check / recover-at-open / publish-on-torn cases.

Prints one line per check ("ok ..." / "FAIL ...: expected ... got ...") and
"conformance: N passed, M failed"; exits 1 if anything failed.
Error texts are not compared, only the error class ("kinds").

Two behaviours of the C library differ from Go on purpose, and are checked
by a stronger rule instead of Go's answer (each printed as "deliberate"):
- A store opened with other key/time index options than it was written
  with is refused at open with index_corrupted (Go opens it and answers
  no_index or nonsense later); the files must stay unchanged.
- A torn last record (v2-torn) is a write that never completed: the C
  library answers exactly as on Go's recovered store (store_recovered/),
  where Go reports log_corrupted. So every query, dump and publish on the
  torn store must give the same output as on store_recovered/.
"""
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile

PROBE = None
FIXTURE_PATH = None
FIRST_KEY = ""
PASSED = 0
FAILED = 0
SKIPPED = 0


def short(v, n=300):
    s = json.dumps(v, sort_keys=True) if not isinstance(v, str) else v
    return s if len(s) <= n else s[:n] + "...(%d chars)" % len(s)


def ok(fx, what):
    global PASSED
    PASSED += 1
    print("ok %s %s" % (fx, what))


def fail(fx, what, expected, got):
    global FAILED
    FAILED += 1
    print("FAIL %s %s: expected %s got %s" % (fx, what, short(expected), short(got)))


def skip(fx, what, why):
    global SKIPPED
    SKIPPED += 1
    print("skip %s %s: %s" % (fx, what, why))


DELIBERATE = 0


def deliberate(fx, what, why):
    global DELIBERATE
    DELIBERATE += 1
    print("deliberate %s %s: %s" % (fx, what, why))


def check(fx, what, expected, got):
    if expected == got:
        ok(fx, what)
        return True
    fail(fx, what, expected, got)
    return False


# ---------------------------------------------------------------------------
# probe and files


def run_probe(store, opts, *args):
    """Runs the probe; returns (rc, [parsed lines], stderr)."""
    cmd = [PROBE, store] + list(opts) + [str(a) for a in args]
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=120)
    except subprocess.TimeoutExpired:
        return -1, [{"probe": "timeout"}], ""
    lines = []
    for raw in p.stdout.decode("utf-8", "replace").splitlines():
        if not raw.strip():
            continue
        try:
            lines.append(json.loads(raw))
        except ValueError:
            lines.append({"unparsable": raw})
    err = p.stderr.decode("utf-8", "replace")
    if p.returncode < 0:
        lines.append({"probe": "killed by signal %d" % -p.returncode,
                      "stderr": err[-500:]})
    return p.returncode, lines, err


def probe_opts(options, keys=None, times=None):
    keys = options.get("keys") if keys is None else keys
    times = options.get("times") if times is None else times
    o = []
    if keys:
        o.append("--keys")
    if times:
        o.append("--times")
    if options.get("rollover") is not None:
        o += ["--rollover", str(options["rollover"])]
    if options.get("version") == "v1":
        o.append("--v1")
    return o


def copy_store(src, dst):
    """Copies a (read-only) fixture store into dst, files 0600, dir 0700."""
    os.makedirs(dst, mode=0o700)
    for name in sorted(os.listdir(src)):
        shutil.copyfile(os.path.join(src, name), os.path.join(dst, name))
        os.chmod(os.path.join(dst, name), 0o600)
    return dst


def file_info(path):
    with open(path, "rb") as f:
        data = f.read()
    st = os.stat(path)
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
            "mode": stat.filemode(st.st_mode), "data": data}


def dir_files(d):
    if not os.path.isdir(d):
        return {}
    return {n: file_info(os.path.join(d, n)) for n in sorted(os.listdir(d))
            if os.path.isfile(os.path.join(d, n))}


def digest(d):
    return {n: (i["size"], i["sha256"]) for n, i in dir_files(d).items()
            if n != ".lock"}


def compare_files(fx, what, d, expected, size_only=(), prefix_of=None):
    """Compares every file of d with the fixture list (name, size, sha256,
    mode). .lock: present and empty. size_only: names compared by size.
    prefix_of: {name: entry} where Go's (cut) file must be a prefix of ours."""
    got = dir_files(d)
    exp = {e["name"]: e for e in expected}
    check(fx, what + " file names", sorted(exp), sorted(got))
    for name, e in sorted(exp.items()):
        g = got.get(name)
        if g is None:
            continue
        label = "%s %s" % (what, name)
        if name == ".lock":
            check(fx, label + " (empty)", 0, g["size"])
            continue
        if name in size_only:
            check(fx, label + " size", e["size"], g["size"])
        else:
            check(fx, label, {"size": e["size"], "sha256": e["sha256"]},
                  {"size": g["size"], "sha256": g["sha256"]})
        check(fx, label + " mode", e["mode"], g["mode"])
    for name, e in sorted((prefix_of or {}).items()):
        g = got.get(name)
        if g is None:
            continue
        pre = g["data"][:e["size"]]
        check(fx, "%s %s has Go's cut file as prefix" % (what, name),
              {"size>=": e["size"], "sha256": e["sha256"]},
              {"size>=": e["size"] if g["size"] >= e["size"] else g["size"],
               "sha256": hashlib.sha256(pre).hexdigest()})


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def norm(result):
    """What is compared of one result: errors by class only."""
    if isinstance(result, dict) and "error" in result and "kinds" in result:
        return {"kinds": result["kinds"]}
    return result


# ---------------------------------------------------------------------------
# checks


def compare_dump(fx, what, expected_lines, rc_exp, rc, got):
    n = max(len(expected_lines), len(got))
    bad = 0
    for i in range(n):
        e = norm(expected_lines[i]) if i < len(expected_lines) else None
        g = norm(got[i]) if i < len(got) else None
        if e != g:
            if bad < 5:
                fail(fx, "%s line %d" % (what, i), e, g)
            bad += 1
    if bad > 5:
        fail(fx, "%s (%d more lines differ)" % (what, bad - 5), "", "")
    if bad == 0:
        ok(fx, "%s (%d lines)" % (what, len(got)))
    if rc_exp is not None:
        check(fx, what + " rc", rc_exp, rc)


def dump_count_args(args):
    if "--count" in args:
        return ["--count", str(args[args.index("--count") + 1])]
    return []


def run_queries(fx, label, store, opts, queries_path, expected):
    rc, got, err = run_probe(store, opts, "query", queries_path)
    if len(got) == 1 and "cmd" not in got[0] and len(expected) > 1:
        fail(fx, label + " open", "ok", got[0])
        return
    for i, e in enumerate(expected):
        g = got[i] if i < len(got) else None
        what = "%s %d %s %s" % (label, i, e["cmd"], " ".join(e["args"]))
        if g is None:
            fail(fx, what, {"rc": e["rc"]}, "no output (probe rc %d %s)" % (rc, err[-200:]))
            continue
        if g.get("cmd") != e["cmd"] or g.get("args") != e["args"]:
            fail(fx, what + " echo", [e["cmd"], e["args"]], [g.get("cmd"), g.get("args")])
            continue
        check(fx, what, {"rc": e["rc"], "result": norm(e["result"])},
              {"rc": g.get("rc"), "result": norm(g.get("result"))})
    if len(got) > len(expected):
        fail(fx, label + " extra output", len(expected), got[len(expected):])


def fixture_queries(fx, path, store_src, options):
    qpath = os.path.join(path, "queries.jsonl")
    expected = read_jsonl(qpath)
    with tempfile.TemporaryDirectory() as tmp:
        st = copy_store(store_src, os.path.join(tmp, "s"))
        before = digest(st)
        run_queries(fx, "query", st, probe_opts(options) + ["--readonly"], qpath, expected)
        check(fx, "query files unchanged", before, digest(st))
    with tempfile.TemporaryDirectory() as tmp:
        st = copy_store(store_src, os.path.join(tmp, "s"))
        before = digest(st)
        run_queries(fx, "query-rw", st, probe_opts(options), qpath, expected)
        check(fx, "query-rw files unchanged", before, digest(st))


def dirop_result(lines):
    if not lines:
        return None
    r = lines[-1]
    if r == {"ok": True}:
        return "ok"
    return norm(r)


def expected_dirop(v):
    if v == {"ok": True} or v == "ok":
        return "ok"
    return norm(v)


OPS = [("get_oldest", "get", lambda k: ["-2"]),
       ("getkey_first", "getkey", lambda k: [k]),
       ("gettime_0", "gettime", lambda k: ["0"]),
       ("log_stat", "log-stat", lambda k: []),
       ("next_offset", "next-offset", lambda k: [])]


def run_ops(fx, label, store, opts, expected_ops, first_key, tmp):
    qpath = os.path.join(tmp, "ops.jsonl")
    with open(qpath, "w") as f:
        for _, cmd, args in OPS:
            f.write(json.dumps({"cmd": cmd, "args": args(first_key)}) + "\n")
    rc, got, err = run_probe(store, opts, "query", qpath)
    open_failed = len(got) == 1 and "cmd" not in got[0]
    for i, (name, cmd, _) in enumerate(OPS):
        if name not in expected_ops:
            continue
        e = expected_ops[name]
        what = "%s %s" % (label, name)
        if isinstance(e, dict) and "panic" in e:
            skip(fx, what, "Go panicked (%s)" % e["panic"])
            continue
        if open_failed:
            # The C read-only open may report an error Go reports at the
            # first read (open_readonly is checked on its own): the same
            # class passes, anything else fails.
            if norm(e) == norm(got[0]):
                ok(fx, what + " (error at open)")
            else:
                fail(fx, what, norm(e), {"open": got[0]})
            continue
        g = got[i] if i < len(got) else {"result": None, "rc": None}
        r = g.get("result")
        if g.get("rc") == 0 and name == "next_offset":
            r = r.get("next_offset")
        check(fx, what, norm(e), norm(r))
    d = expected_ops.get("dump")
    if d is None:
        return
    what = label + " dump"
    if "panic" in d:
        skip(fx, what, "Go panicked (%s)" % d["panic"])
        return
    rc, got, err = run_probe(store, opts, "--count", "100", "dump")
    msgs = [l for l in got if "offset" in l]
    errs = [l for l in got if "error" in l or "probe" in l]
    if "error" in d:
        check(fx, what, {"error": norm(d["error"]),
                         "messages_before_error": d["messages_before_error"]},
              {"error": norm(errs[0]) if errs else None, "messages_before_error": len(msgs)})
    else:
        check(fx, what, {"messages": d["messages"]},
              {"messages": len(msgs), "error": norm(errs[0])} if errs else
              {"messages": len(msgs)})


def mismatched(fx, store_src, meta, first_key):
    mo = meta.get("mismatched_options")
    if not mo:
        return
    options = meta["options"]
    cases = [(c, v) for c, v in sorted(mo.get("combos", {}).items())]
    if "matching" in mo:
        cases.append(("matching", mo["matching"]))
    for combo, exp in cases:
        if combo == "matching":
            keys, times = options["keys"], options["times"]
        else:
            kv = dict(p.split("=") for p in combo.split(","))
            keys, times = kv["keys"] == "true", kv["times"] == "true"
        opts = probe_opts(options, keys=keys, times=times)
        label = "options %s" % combo
        with tempfile.TemporaryDirectory() as tmp:
            st = copy_store(store_src, os.path.join(tmp, "s"))
            original = digest(st)
            if combo != "matching" and refused(fx, label, st, opts, exp, original):
                continue
            if combo == "matching" and "torn" in meta:
                torn_matching(fx, label, st, opts, exp, tmp)
                continue
            if "check" in exp:
                rc, got, _ = run_probe(st, opts, "check")
                check(fx, label + " check", expected_dirop(exp["check"]), dirop_result(got))
            if "stat" in exp:
                rc, got, _ = run_probe(st, opts, "stat")
                check(fx, label + " stat", expected_dirop(exp["stat"]), dirop_result(got))
            if "open_readonly" in exp:
                rc, got, _ = run_probe(st, opts + ["--readonly"], "open")
                check(fx, label + " open_readonly", expected_dirop(exp["open_readonly"]),
                      dirop_result(got))
            if "readonly_ops" in exp:
                run_ops(fx, label + " readonly", st, opts + ["--readonly"],
                        exp["readonly_ops"], first_key, tmp)
            check(fx, label + " readonly files unchanged", original, digest(st))
            if "open_rw" in exp:
                rc, got, _ = run_probe(st, opts, "open")
                check(fx, label + " open_rw", expected_dirop(exp["open_rw"]), dirop_result(got))
            if "rw_ops" in exp:
                run_ops(fx, label + " rw", st, opts, exp["rw_ops"], first_key, tmp)
            if "rw_files_changed" in exp:
                check(fx, label + " rw_files_changed", exp["rw_files_changed"],
                      digest(st) != original)


def refused(fx, label, st, opts, exp, original):
    """Other index options than the store's: C refuses at open (deliberate).
    Returns False when C opened the store (then Go's answers apply)."""
    rc, got, _ = run_probe(st, opts + ["--readonly"], "open")
    r = dirop_result(got)
    if r == "ok":
        return False
    check(fx, label + " open_readonly refused", {"kinds": ["index_corrupted"]}, r)
    rc, got, _ = run_probe(st, opts, "open")
    check(fx, label + " open_rw refused", {"kinds": ["index_corrupted"]}, dirop_result(got))
    check(fx, label + " files unchanged after refusal", original, digest(st))
    for key, cmd in (("check", "check"), ("stat", "stat")):
        if key in exp:
            rc, got, _ = run_probe(st, opts, cmd)
            check(fx, label + " " + key, expected_dirop(exp[key]), dirop_result(got))
    deliberate(fx, label, "refused at open; Go opened with %s / %s" %
               (short(exp.get("open_readonly"), 60), short(exp.get("open_rw"), 60)))
    return True


def recovered_copy(tmp, name="r"):
    return copy_store(os.path.join(FIXTURE_PATH, "store_recovered"), os.path.join(tmp, name))


def same_as_recovered(fx, what, tmp, opts, *args, files=False, st=None):
    """Runs the probe on the torn store (copied, or st) and on store_recovered/
    and checks both outputs are equal (and, with files, the files too)."""
    torn = st or copy_store(os.path.join(FIXTURE_PATH, "store"), os.path.join(tmp, "t-" + what.replace(" ", "_")))
    rec = recovered_copy(tmp, "r-" + what.replace(" ", "_"))
    rc1, got1, _ = run_probe(torn, opts, *args)
    rc2, got2, _ = run_probe(rec, opts, *args)
    ok_ = check(fx, what + " == on store_recovered", {"rc": rc2, "out": got2},
                {"rc": rc1, "out": got1})
    if files:
        check(fx, what + " files == store_recovered after the same call", digest(rec), digest(torn))
    return ok_


def torn_matching(fx, label, st, opts, exp, tmp):
    qpath = os.path.join(tmp, "ops.jsonl")
    with open(qpath, "w") as f:
        for _, cmd, args in OPS:
            f.write(json.dumps({"cmd": cmd, "args": args(FIRST_KEY)}) + "\n")
    same_as_recovered(fx, label + " readonly ops", tmp, opts + ["--readonly"], "query", qpath)
    same_as_recovered(fx, label + " readonly dump", tmp, opts + ["--readonly", "--count", "100"], "dump")
    same_as_recovered(fx, label + " rw ops", tmp, opts, "query", qpath, files=True)
    same_as_recovered(fx, label + " rw dump", tmp, opts + ["--count", "100"], "dump", files=True)
    deliberate(fx, label, "torn last record answered as on store_recovered/ (Go: log_corrupted)")


def publish(fx, path, meta):
    options = meta["options"]
    batch = options.get("publish_batch") or 1
    torn = "torn" in meta
    with tempfile.TemporaryDirectory() as tmp:
        st = os.path.join(tmp, "new", "store")
        rc, got, err = run_probe(st, probe_opts(options), "publish",
                                 os.path.join(path, "input.jsonl"), batch)
        if not check(fx, "publish", meta.get("write_result"), got[-1] if got else err[-300:]):
            return
        if torn:
            cut = meta["torn"]["segment_log"]
            compare_files(fx, "publish files (intact)", st, meta["intact_files"])
            cut_entry = [e for e in meta["store_files"] if e["name"] == cut]
            compare_files(fx, "publish files (vs torn)", st,
                          [e for e in meta["store_files"] if e["name"] != cut] + [
                              dict(cut_entry[0], size=meta["torn"]["size_before"])],
                          size_only=(cut,), prefix_of={cut: cut_entry[0]})
            dump_file = os.path.join(path, meta.get("intact_dump", "dump_intact.jsonl"))
        else:
            compare_files(fx, "publish files", st, meta["store_files"])
            dump_file = os.path.join(path, "dump.jsonl")
        rc, got, _ = run_probe(st, probe_opts(options) + ["--readonly"], "dump")
        compare_dump(fx, "publish dump", read_jsonl(dump_file), 0, rc, got)


def torn_extras(fx, path, meta):
    options = meta["options"]
    opts = probe_opts(options)
    src = os.path.join(path, "store")
    # Recover
    with tempfile.TemporaryDirectory() as tmp:
        st = copy_store(src, os.path.join(tmp, "s"))
        rc, got, _ = run_probe(st, opts, "recover")
        check(fx, "recover", expected_dirop(meta.get("recover", {"ok": True})), dirop_result(got))
        compare_files(fx, "recover files", st, meta["store_recovered_files"])
        rec_dir = os.path.join(path, "store_recovered")
        if os.path.isdir(rec_dir):
            check(fx, "recover files == store_recovered/", digest(rec_dir), digest(st))
        if "check_after_recover" in meta:
            rc, got, _ = run_probe(st, opts, "check")
            check(fx, "check after recover", expected_dirop(meta["check_after_recover"]),
                  dirop_result(got))
        d = meta.get("dump_after_recover")
        if d:
            rc, got, _ = run_probe(st, opts + ["--readonly"], "dump")
            compare_dump(fx, "dump after recover", read_jsonl(os.path.join(path, d["file"])),
                         d.get("rc"), rc, got)
    # torn store before recover
    with tempfile.TemporaryDirectory() as tmp:
        st = copy_store(src, os.path.join(tmp, "s"))
        for key, cmd in (("check_torn", "check"), ("stat_torn", "stat")):
            if key in meta:
                rc, got, _ = run_probe(st, opts, cmd)
                check(fx, key, expected_dirop(meta[key]), dirop_result(got))
        if meta.get("dump_before_recover_count100"):
            same_as_recovered(fx, "dump count 100", tmp, opts + ["--readonly", "--count", "100"],
                              "dump", st=st)
            deliberate(fx, "dump count 100", "torn last record is not served (Go: log_corrupted)")
    # Open with Check / Recover
    for mode, e in sorted(meta.get("open_with_check_or_recover_option", {}).items()):
        mopts = list(opts)
        mopts.append("--recover" if mode.startswith("recover") else "--check")
        if not mode.endswith("+rw"):
            mopts.append("--readonly")
        with tempfile.TemporaryDirectory() as tmp:
            st = copy_store(src, os.path.join(tmp, "s"))
            rc, got, _ = run_probe(st, mopts, "dump")
            msgs = [l for l in got if "offset" in l]
            errs = [norm(l) for l in got if "offset" not in l]
            check(fx, "open %s" % mode,
                  {"rc": e["rc"], "messages": e["messages"],
                   "error": [norm(x) for x in e["error"]]},
                  {"rc": rc, "messages": len(msgs), "error": errs})
            if "files_after" in e:
                compare_files(fx, "open %s files" % mode, st, e["files_after"])
    # Publish on the torn store without Recover
    p = meta.get("publish_on_torn_without_recover")
    if p:
        with tempfile.TemporaryDirectory() as tmp:
            st = copy_store(src, os.path.join(tmp, "s"))
            inp = os.path.join(tmp, "one.jsonl")
            # Go's message is not recorded; ours has the same key+value length
            # (the new files are compared by size only).
            with open(inp, "w") as f:
                f.write(json.dumps({"key": "a2V5LTMwMA==", "value": "djMwMA==",
                                    "time_us": 1672531200300000}) + "\n")
            # Go appends after the torn record and then cannot read past it;
            # C cuts the torn record first, as Go's Recover would.
            same_as_recovered(fx, "publish on torn", tmp, opts, "publish", inp, 1,
                              files=True, st=st)
            rc, got, _ = run_probe(st, opts + ["--readonly", "--count", "1"], "dump")
            msgs = [l for l in got if "offset" in l]
            check(fx, "publish on torn then dump", {"rc": 0, "messages": 300, "last": 299},
                  {"rc": rc, "messages": len(msgs), "last": msgs[-1]["offset"] if msgs else None})
            deliberate(fx, "publish on torn", "the new message gets offset 299 after the torn one "
                       "is cut (Go: 300, and reads fail at 299)")


def fixture(fx, path):
    with open(os.path.join(path, "meta.json")) as f:
        meta = json.load(f)
    options = meta["options"]
    opts = probe_opts(options)
    src = os.path.join(path, "store")
    dump_exp = read_jsonl(os.path.join(path, "dump.jsonl"))
    # dump (read-only, as Go's dump)
    global FIXTURE_PATH, FIRST_KEY
    FIXTURE_PATH = path
    torn = "torn" in meta
    with tempfile.TemporaryDirectory() as tmp:
        st = copy_store(src, os.path.join(tmp, "s"))
        dargs = dump_count_args(meta.get("dump", {}).get("args", []))
        if torn:
            same_as_recovered(fx, "dump", tmp, opts + ["--readonly"] + dargs)
            deliberate(fx, "dump", "torn last record is not served (Go: log_corrupted)")
        else:
            rc, got, _ = run_probe(st, opts + ["--readonly"] + dargs, "dump")
            compare_dump(fx, "dump", dump_exp, meta.get("dump", {}).get("rc"), rc, got)
    # stat and check
    with tempfile.TemporaryDirectory() as tmp:
        st = copy_store(src, os.path.join(tmp, "s"))
        before = digest(st)
        for key in ("stat", "check"):
            if key in meta:
                rc, got, _ = run_probe(st, opts, key)
                check(fx, key, expected_dirop(meta[key]), dirop_result(got))
        check(fx, "stat/check files unchanged", before, digest(st))
    first_key = next((l["key"] or "") for l in dump_exp if "offset" in l)
    FIRST_KEY = first_key
    if torn:
        qpath = os.path.join(path, "queries.jsonl")
        with tempfile.TemporaryDirectory() as tmp:
            same_as_recovered(fx, "query", tmp, opts + ["--readonly"], "query", qpath)
            same_as_recovered(fx, "query-rw", tmp, opts, "query", qpath, files=True)
        deliberate(fx, "queries", "torn last record answered as on store_recovered/")
    else:
        fixture_queries(fx, path, src, options)
    mismatched(fx, src, meta, first_key)
    publish(fx, path, meta)
    if "torn" in meta:
        torn_extras(fx, path, meta)


def main():
    global PROBE
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    fixtures, PROBE = sys.argv[1], os.path.abspath(sys.argv[2])
    names = sorted(n for n in os.listdir(fixtures)
                   if os.path.isfile(os.path.join(fixtures, n, "meta.json")))
    if not names:
        print("conformance: no fixtures in %s" % fixtures)
        return 1
    for n in names:
        try:
            fixture(n, os.path.join(fixtures, n))
        except Exception as e:  # a crash of the script is a failure, not a stop
            fail(n, "script", "no exception", "%s: %s" % (type(e).__name__, e))
    print("conformance: %d passed, %d failed%s, %d deliberate differences" % (
        PASSED, FAILED, (", %d skipped" % SKIPPED) if SKIPPED else "", DELIBERATE))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
