#!/usr/bin/python3
"""Stateful differential fuzzer of the klevdb table's transactions: random
sequences of BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE and ROLLBACK TO at
every depth (also a SAVEPOINT that opens the transaction), single and
multi-row INSERTs, DELETEs with random WHERE, SELECTs inside and outside
transactions, INSERT INTO t SELECT ... FROM t, closing and reopening the
connection (also in the middle of a transaction, which rolls it back) and
dropping and creating the table again on its store between transactions,
run on a klevdb table (in some episodes two, in one transaction) and
mirrored into a plain table of the same database, so that both share each
transaction. The full contents of the two are compared after every step,
and outside transactions those of a readonly=1 table on the same store
too. Big INSERTs make transactions that are staged to segment files while
they run, and savepoints cut them back. The differences found so far run
first, as regression cases.

usage: fuzz_tx.py MODULE WORKDIR [STEPS [SEED]]

On a difference it prints the seed, a shrunk repro (a sqlite3 shell
script) and exits 1. "--episode SEED" reruns one episode, as printed.
"""
import os
import random
import shutil
import sys
import tempfile
import time

import fuzzlib
from fuzzlib import Gen, random_query, shrink, report
from fuzz_query import random_rows

NAMES = ["s0", "s1", "s2", "s3"]


class TxState:
    """SQLite's transaction and savepoint stack, followed as the steps are
    made, so that most generated statements are valid ones."""

    def __init__(self):
        self.in_tx, self.stack, self.by_savepoint = False, [], False

    def apply(self, sql):
        w = sql.split()
        if w[0] == "BEGIN":
            if not self.in_tx:
                self.in_tx, self.stack, self.by_savepoint = True, [], False
        elif w[0] in ("COMMIT", "END") or sql == "ROLLBACK":
            self.in_tx, self.stack = False, []
        elif w[0] == "SAVEPOINT":
            if not self.in_tx:
                self.in_tx, self.by_savepoint = True, True
            self.stack.append(w[1])
        elif w[0] == "RELEASE":
            name = w[-1]
            if name in self.stack:
                i = len(self.stack) - 1 - self.stack[::-1].index(name)
                self.stack = self.stack[:i]
                if not self.stack and self.by_savepoint:
                    self.in_tx = False
        elif w[0] == "ROLLBACK":
            name = w[-1]
            if name in self.stack:
                i = len(self.stack) - 1 - self.stack[::-1].index(name)
                self.stack = self.stack[:i + 1]


def tx_statement(r, st, long_tx=False):
    """A transaction-control statement fitting the state (now and then one
    that does not: both tables get the same error). long_tx: transactions
    rarely end, so that they grow past the size that stages them."""
    if r.random() < 0.03:
        return r.choice(["COMMIT", "ROLLBACK", "RELEASE s9", "ROLLBACK TO s9", "BEGIN"])
    if not st.in_tx:
        if r.random() < 0.5:
            return r.choice(["BEGIN", "BEGIN", "BEGIN IMMEDIATE", "BEGIN EXCLUSIVE", "BEGIN DEFERRED"])
        return "SAVEPOINT " + r.choice(NAMES)
    x = r.random()
    if st.stack and x < 0.45:
        name = r.choice(st.stack)
        if r.random() < 0.5:
            return r.choice(["RELEASE ", "RELEASE SAVEPOINT "]) + name
        return r.choice(["ROLLBACK TO ", "ROLLBACK TO SAVEPOINT ", "ROLLBACK TRANSACTION TO "]) + name
    if (x < 0.75 or (long_tx and r.random() < 0.8)) and len(st.stack) < 6:
        return "SAVEPOINT " + r.choice(NAMES)
    if long_tx and st.stack and r.random() < 0.8:
        return "ROLLBACK TO " + r.choice(st.stack)
    return r.choice(["COMMIT", "END", "ROLLBACK", "COMMIT"])


def episode_case(eseed, nsteps):
    """The tables' create arguments (one table, or two: both take part in
    the transactions) and the steps of one episode."""
    r = random.Random(eseed)
    long_tx = r.random() < 0.3
    create, gens = [], []
    for _ in range(1 if r.random() < 0.6 else 2):
        kc, vc = r.choice(fuzzlib.CODECS), r.choice(fuzzlib.CODECS)
        create.append(dict(kc=kc, vc=vc, rollover=r.choice(["256", "256", "1KB", "64KB"] if not long_tx else ["256"]),
                           key_index=int(r.random() < 0.85), time_index=int(r.random() < 0.85),
                           fmt="v1" if r.random() < 0.15 else "v2"))
        gens.append(Gen(r, kc, vc))
        gens[-1].nrows = 20
    st = TxState()
    # A read-only table on the store: it must see each commit.
    steps = [("follow", t) for t in range(len(gens)) if r.random() < 0.5]
    for _ in range(nsteps):
        x = r.random()
        t = r.randrange(len(gens))
        g = gens[t]
        if x < 0.30:
            s = ("sql", tx_statement(r, st, long_tx))
            st.apply(s[1])
        elif x < 0.55:
            # Big ones make a transaction past eight rollover sizes, which
            # the table writes to segment files while it runs (staging).
            n = r.choice([1, 1, 1, 1, 2, 2, 3, 8, 37, 40, 101, 200] if not long_tx else
                         [1, 2, 3, 37, 64, 101, 150])
            s = ("insert", random_rows(r, g.kc, g.vc, n), t)
            g.nrows += n
        elif x < 0.66:
            s = ("delete", g.where_tree(), t)
        elif x < 0.70:
            s = ("copy", g.where_tree(), t)
        elif x < 0.93:
            s = ("query", random_query(g), t)
        elif long_tx and st.in_tx:
            s = ("sql", "COMMIT")      # not a reopen, which would roll it back
            st.apply(s[1])
        elif st.in_tx or x < 0.98:
            s = ("reopen",)
            st = TxState()
        else:
            s = ("recreate", t)
        steps.append(s)
    return create, steps


# Differences the fuzzer found, run first in every run (a regression test
# each); the random episodes then take their seed's course.
REGRESSIONS = [
    # A readonly=1 table that has read a row still gave it at its next query
    # after the writer's DELETE of it committed (same process; not every
    # time: hence the rounds).
    (dict(kc="text", vc="text", rollover="1KB", key_index=1, time_index=1, fmt="v2"),
     [("follow", 0)] + [s for i in range(40) for s in (
         ("insert", [(i, "a", "b"), (i, "c", "d")], 0), ("delete", ("leaf", "key = 'a'" if i % 2 else "1"), 0))]),
]


def main(argv):
    module, work, total, seed, only = fuzzlib.fuzz_args(argv, "fuzz_tx", "--episode", 500, __doc__)
    master = random.Random(seed)
    counters = {"steps": 0}
    start = time.monotonic()
    episodes = 0
    try:
        for i, (create, steps) in enumerate(REGRESSIONS if only is None else []):
            f, _, log = fuzzlib.replay(module, work, create, steps, check_each=True, counters=counters)
            if f:
                report("fuzz_tx", "regression case %d" % i, steps, (f, log))
                return 1
        while counters["steps"] < total:
            eseed = master.randrange(1 << 62) if only is None else only
            per = min(250, total - counters["steps"])
            create, steps = episode_case(eseed, per)
            f, i, log = fuzzlib.replay(module, work, create, steps, check_each=True, counters=counters)
            episodes += 1
            if f:
                steps = steps[:i + 1]
                print("difference found: %s" % f.split("\n")[0], flush=True)
                small, result = shrink(module, work, create, steps, check_each=True)
                if result is None:
                    result = (f, ["-- (did not happen again; the whole episode follows)"] + log)
                report("fuzz_tx", "seed %d episode %d (--episode %d)" % (seed, episodes, eseed), small, result)
                return 1
            if only is not None:
                break
    finally:
        shutil.rmtree(work, ignore_errors=True)
    extra = ", ".join("%s %d" % (k, v) for k, v in sorted(counters.items()) if k != "steps")
    print("fuzz_tx: seed %d, %d episodes, %d steps, contents equal after each (%.1f s; %s)" % (
        seed, episodes, counters["steps"], time.monotonic() - start, extra))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
