#!/usr/bin/python3
"""Differential query fuzzer: random SELECTs (and DELETEs) against a klevdb
table and a plain SQLite table holding the same rows must give the same
answers, whatever plan SQLite picks.

usage: fuzz_query.py MODULE WORKDIR [QUERIES [SEED]]

Each round makes a table with random codecs (every codec as key in turn),
options and rows (absent keys and values, negative and extreme times), then
runs random queries: WHERE trees of =, <, <=, >, >=, !=, IS [NOT], [NOT] IN
lists and subqueries, BETWEEN, LIKE, GLOB, NOT, AND, OR over every column
(also as +col, rowid), with NULL, REAL, TEXT, BLOB, negative and INT64
extreme operands; ORDER BY any column either way; LIMIT and OFFSET, also
negative; count(*) and other aggregates; subqueries; self-joins. Every so
often a random DELETE (or INSERT INTO t SELECT ... FROM t) runs on both
tables, then their contents are compared, and more rows are inserted,
now and then of other types than the codec's. What the model allows to
differ is listed in fuzzlib.py. The differences found so far run first,
as regression cases.

On a difference it prints the seed, a shrunk repro (a sqlite3 shell
script) and exits 1. "--round SEED" reruns one round, as printed.
"""
import os
import random
import shutil
import sys
import tempfile
import time

import fuzzlib
from fuzzlib import Gen, Query, random_query, shrink, report


def random_rows(r, kc, vc, n):
    rows = []
    t = r.choice(fuzzlib.TIMES)
    ascending = r.random() < 0.4
    for _ in range(n):
        if ascending:
            t = min(t + r.randrange(0, 3), fuzzlib.INT64_MAX)
        else:
            t = r.choice(fuzzlib.TIMES) if r.random() < 0.7 else r.randrange(-10, 10)
        # Other types' values only in small INSERTs: a refused one drops them all.
        pick = lambda c: r.choice(fuzzlib.CROSS if n <= 3 and r.random() < 0.08 else fuzzlib.POOLS[c])
        if n <= 3 and r.random() < 0.01:
            t = fuzzlib.INT64_MIN
        rows.append((t, pick(kc), pick(vc)))
    return rows


def insert_steps(r, kc, vc, n):
    steps, left = [], n
    while left > 0:
        k = min(left, r.choice([1, 1, 2, 5, 10, 30]))
        steps.append(("insert", random_rows(r, kc, vc, k)))
        left -= k
    return steps


def round_case(rseed, kc, nqueries):
    """The create arguments and the steps of one round."""
    r = random.Random(rseed)
    vc = r.choice(fuzzlib.CODECS)
    create = dict(kc=kc, vc=vc, rollover=r.choice(["256", "1KB", "1KB", "64KB"]),
                  key_index=int(r.random() < 0.85), time_index=int(r.random() < 0.85),
                  fmt="v1" if r.random() < 0.15 else "v2")
    g = Gen(r, kc, vc)
    n = r.choice([0, 1, 3, 10, 25, 40, 60])
    g.nrows = n
    steps = insert_steps(r, kc, vc, n)
    for i in range(nqueries):
        x = r.random()
        if x < 0.04:
            steps.append(("delete", g.where_tree()))
            steps.append(("contents",))
        elif x < 0.06:
            steps += insert_steps(r, kc, vc, r.choice([1, 3, 10]))
            g.nrows += 10
        elif x < 0.07:
            steps.append(("copy", g.where_tree()))
            steps.append(("contents",))
        elif x < 0.065:
            steps.append(("reopen",))
        steps.append(("query", random_query(g)))
    return create, steps


# Differences the fuzzer found, run first in every run (a regression test
# each); the random rounds then take their seed's course.
REGRESSIONS = [
    # -2^63 as a REAL (or a TEXT reading as it) equals that INTEGER key.
    (dict(kc="integer", vc="text", rollover="1KB", key_index=1, time_index=1, fmt="v2"),
     [("insert", [(1, fuzzlib.INT64_MIN, "a"), (2, fuzzlib.INT64_MAX, "b"), (3, 5, "c")])] +
     [("query", Query("*", ("leaf", w), [], None)) for w in (
         "key = -9.223372036854776e+18", "key = '-9.223372036854776e+18'",
         "key IN (-9.223372036854776e+18, 9.223372036854776e+18, 5.0)", "key = 9.223372036854776e+18")]),
    # LIMIT + OFFSET past INT64_MAX (signed overflow, seen by UBSan).
    (dict(kc="blob", vc="blob", rollover="1KB", key_index=1, time_index=1, fmt="v2"),
     [("insert", [(1, b"a", b"b"), (2, b"c", b"d")])] +
     [("query", Query("*", None, [], l)) for l in (
         ("1", str(fuzzlib.INT64_MAX)), (str(fuzzlib.INT64_MAX), str(fuzzlib.INT64_MAX)),
         (str(fuzzlib.INT64_MAX), "1"))]),
]


def main(argv):
    module, work, total, seed, only = fuzzlib.fuzz_args(argv, "fuzz_query", "--round", 2000, __doc__)
    master = random.Random(seed)
    counters = {"query": 0, "delete": 0}
    start = time.monotonic()
    rounds = 0
    try:
        for i, (create, steps) in enumerate(REGRESSIONS if only is None else []):
            f, _, log = fuzzlib.replay(module, work, create, steps, counters=counters)
            if f:
                report("fuzz_query", "regression case %d" % i, steps, (f, log))
                return 1
        while counters["query"] < total:
            kc = fuzzlib.CODECS[rounds % len(fuzzlib.CODECS)]
            rseed = master.randrange(1 << 62)
            if only is not None:
                rseed, kc = only, fuzzlib.CODECS[only % len(fuzzlib.CODECS)]
            per = min(200, total - counters["query"])
            create, steps = round_case(rseed, kc, per)
            f, i, log = fuzzlib.replay(module, work, create, steps, counters=counters)
            rounds += 1
            if f:
                steps = steps[:i + 1]
                print("difference found: %s" % f.split("\n")[0], flush=True)
                small, result = shrink(module, work, create, steps)
                if result is None:
                    result = (f, ["-- (did not happen again; the whole round follows)"] + log)
                report("fuzz_query", "seed %d round %d (--round %d)" % (seed, rounds, rseed), small, result)
                return 1
            if only is not None:
                break
    finally:
        shutil.rmtree(work, ignore_errors=True)
    extra = ", ".join("%s %d" % (k, v) for k, v in sorted(counters.items())
                      if k in ("both_errors", "time_text", "sql_errors", "refused"))
    print("fuzz_query: seed %d, %d rounds, %d queries, %d deletes, no difference (%.1f s%s)" % (
        seed, rounds, counters["query"], counters["delete"], time.monotonic() - start,
        "; " + extra if extra else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
