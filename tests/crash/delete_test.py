#!/usr/bin/env python3
"""A delete across many segments, killed at random moments: after the next
open it is all there or not at all.

    delete_test.py CHILD [--rounds N] [--messages N] [--rollover BYTES] [--sql] [--seed S]

Makes a store of N messages (crash_child bigdel-make), then each round
copies it, starts `CHILD bigdel` on the copy (one klevdb_delete_ranges of
every third offset, or with --sql one autocommit DELETE ... WHERE "offset"
% 3 = 0), SIGKILLs it at a random moment within the time a delete takes
(measured by a first round that is not killed), and runs `CHILD
bigdel-verify`, which reopens the store and fails if only part of the
delete is there. Prints how many kills found the store before and after.
"""
import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("child")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--messages", type=int, default=30000)
    ap.add_argument("--rollover", type=int, default=65536)
    ap.add_argument("--sql", action="store_true")
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1, 1 << 31)
    rnd = random.Random(seed)
    mode = "sql" if args.sql else "c"
    work = tempfile.mkdtemp(prefix="klevdb-delete-")
    template = os.path.join(work, "template")
    store = os.path.join(work, "store")
    n = str(args.messages)
    flags = ["--sql"] if args.sql else []
    failed = None
    tally = {"before": 0, "after": 0, "done": 0}
    try:
        made = subprocess.run([args.child, "bigdel-make", template, n, str(args.rollover)],
                              stdout=subprocess.PIPE, text=True, check=True).stdout.strip()
        print("delete_test: mode %s, %s, seed %d" % (mode, made, seed), flush=True)
        took = None
        for rnd_no in range(args.rounds + 1):
            shutil.rmtree(store, ignore_errors=True)
            if os.path.exists(store + ".db"):
                os.unlink(store + ".db")
            shutil.copytree(template, store)
            p = subprocess.Popen([args.child, "bigdel", store, n] + flags, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
            line = p.stdout.readline()
            if not line.startswith("READY"):
                failed = "child did not start: %r %s" % (line, p.stderr.read())
                break
            t0 = time.monotonic()
            if took is None:
                # The first round measures the delete; it is not killed early.
                line = p.stdout.readline()
                took = time.monotonic() - t0
                print("delete_test: the delete takes %.0f ms (%s)" % (took * 1e3, line.strip()), flush=True)
            else:
                time.sleep(rnd.uniform(0, took * 1.1))
            p.send_signal(signal.SIGKILL)
            out, err = p.communicate()
            if "ERR" in out:
                failed = "child: %s %s" % (out, err)
                break
            done = "DONE" in out or rnd_no == 0
            v = subprocess.run([args.child, "bigdel-verify", store, n], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=300)
            if v.returncode != 0:
                failed = "round %d: verify after the kill:\n%s" % (rnd_no, v.stdout)
                break
            state = v.stdout.split()[v.stdout.split().index("STATE") + 1]
            if done and state != "after":
                failed = "round %d: the delete returned, but after reopening it is not there" % rnd_no
                break
            if rnd_no:
                tally[state] += 1
                tally["done"] += done
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if failed:
        print("delete_test: FAILED (seed %d): %s" % (seed, failed), flush=True)
        return 1
    print("delete_test: OK mode %s: %d kills: %d found the store before the delete, %d after "
          "(%d of them after it returned)" % (mode, args.rounds, tally["before"], tally["after"],
                                              tally["done"]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
