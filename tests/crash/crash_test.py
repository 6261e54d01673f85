#!/usr/bin/env python3
"""Process-crash test: a child publishes and deletes while we SIGKILL it.

    crash_test.py CHILD [--rounds N] [--seed S] [--sql] [--auto-sync] [--preallocate] [--dir D] [--keep]

Each round starts `CHILD run DIR SEED` on the store the previous round left,
reads its report lines (see crash_child.c), SIGKILLs it at a random moment
(usually 0-50 ms after it opened the store, sometimes while it is still
opening), then runs `CHILD verify DIR STATE`, which reopens the store with no
recovery and checks it against everything the child acknowledged: every
acknowledged, undeleted offset is there byte for byte, nothing deleted is
back, offsets increase without duplicates, the unacknowledged batch is all
there or not at all, the next offset never goes back, and a publish after the
reopen continues at the next offset. Before that reopen, the files as the kill
left them must be a store Go klevdb opens as it is (crash_child.c, go_view).
Prints a summary; exits 1 on the first
failure with the seed to reproduce it.
"""
import argparse
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time


def merge(ranges):
    out = []
    for a, b in sorted(tuple(r) for r in ranges):
        if a >= b:
            continue
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("child")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--sql", action="store_true")
    ap.add_argument("--auto-sync", action="store_true")
    ap.add_argument("--preallocate", action="store_true", help="the layout with room allocated ahead")
    ap.add_argument("--dir", default=None, help="work here (default: a new temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the folder")
    ap.add_argument("--max-delay-ms", type=float, default=50.0)
    args = ap.parse_args()

    seed = args.seed if args.seed is not None else int(os.environ.get("CRASH_SEED", "0")) or random.randrange(1, 1 << 31)
    rnd = random.Random(seed)
    mode = ("sql" if args.sql else "c") + (" auto_sync" if args.auto_sync else "") + \
        (" preallocate" if args.preallocate else "")
    print(f"crash_test: mode {mode}, {args.rounds} rounds, seed {seed}", flush=True)

    if args.dir:
        if os.path.exists(args.dir):
            shutil.rmtree(args.dir)
        os.makedirs(args.dir)
        work = args.dir
    else:
        work = tempfile.mkdtemp(prefix="klevdb-crash-")
    print(f"crash_test: work folder {work}", flush=True)
    store = os.path.join(work, "store")
    state_path = os.path.join(work, "state")
    flags = (["--sql"] if args.sql else []) + (["--auto-sync"] if args.auto_sync else []) + \
        (["--preallocate"] if args.preallocate else [])
    verify_flags = (["--sql"] if args.sql else []) + (["--auto-sync"] if args.auto_sync else []) + (["--preallocate"] if args.preallocate else [])

    acked = 0            # next offset after the last acknowledged publish
    deleted = []         # [from, to) ranges known deleted
    stats = dict(kills=0, early=0, acks=0, tries=0, dels=0, lost_try=0, kept_try=0,
                 pend=0, msgs=0, open_ms_max=0.0, go_ok=0, go_refuses=0, go_in_delete=0)
    t_start = time.monotonic()

    def failed(what, out=""):
        print(f"crash_test: FAILED in round {rnd_no}: {what}", flush=True)
        if out:
            print(out, flush=True)
        print(f"crash_test: reproduce with: {' '.join(sys.argv[:1])} {args.child} --rounds {args.rounds} "
              f"--seed {seed}{' --sql' if args.sql else ''}{' --auto-sync' if args.auto_sync else ''}"
              f" --dir DIR --keep  (kill moments are not reproducible; work folder {work}"
              f"{', the store as killed in killed/, its state in killed.state' if args.keep else ''})", flush=True)
        sys.exit(1)

    for rnd_no in range(1, args.rounds + 1):
        child_seed = rnd.randrange(1, 1 << 62)
        early = rnd.random() < 0.1          # kill while it is opening
        delay = rnd.uniform(0, 5 if early else args.max_delay_ms) / 1000.0
        p = subprocess.Popen([args.child, "run", store, str(child_seed)] + flags,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        buf = b""
        lines = []
        ready = False
        deadline = time.monotonic() + (delay if early else 20.0)
        killed = False
        fd = p.stdout.fileno()
        while True:
            now = time.monotonic()
            if not killed and now >= deadline:
                p.send_signal(signal.SIGKILL)
                killed = True
            timeout = max(0.0, deadline - now) if not killed else None
            r, _, _ = select.select([fd], [], [], timeout)
            if not r:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                lines.append(line.decode())
                if not ready and line.startswith(b"READY"):
                    ready = True
                    if not early:
                        deadline = time.monotonic() + delay
        err = p.stderr.read().decode(errors="replace")
        rc = p.wait()
        if rc != -signal.SIGKILL:
            failed(f"child exited with {rc} instead of being killed", "\n".join(lines[-5:]) + "\n" + err)
        stats["kills"] += 1
        if not ready:
            stats["early"] += 1

        # What the child acknowledged.
        tr = None
        pend = []
        for line in lines:
            w = line.split()
            if w[0] == "READY":
                if int(w[1]) != acked:
                    failed(f"child opened at next {w[1]}, expected {acked}")
            elif w[0] == "TRY":
                tr = (int(w[1]), int(w[2]))
                stats["tries"] += 1
                if tr[0] != acked:
                    failed(f"publish at {tr[0]}, acknowledged next is {acked}")
            elif w[0] == "ACK":
                n = int(w[1])
                if tr is None or n != tr[1]:
                    failed(f"ACK {n} does not end the batch tried {tr}")
                acked, tr = n, None
                stats["acks"] += 1
            elif w[0] == "PEND":
                pend.append((int(w[1]), int(w[2])))
            elif w[0] == "DEL":
                deleted.append((int(w[1]), int(w[2])))
                stats["dels"] += 1
            elif w[0] == "CLR":
                pend = []
            elif w[0] == "ERR":
                failed("child: " + line, err)
            else:
                failed("child said: " + line, err)
        deleted = merge(deleted)
        if pend:
            stats["pend"] += 1
        with open(state_path, "w") as f:
            f.write(f"acked {acked}\n")
            if tr:
                f.write(f"try {tr[0]} {tr[1]}\n")
            for a, b in deleted:
                f.write(f"del {a} {b}\n")
            for a, b in pend:
                f.write(f"pend {a} {b}\n")
        if args.keep:
            # the store as the kill left it (verify changes it)
            snap = os.path.join(work, "killed")
            shutil.rmtree(snap, ignore_errors=True)
            shutil.copytree(store, snap)
            shutil.copy(state_path, os.path.join(work, "killed.state"))
        v = subprocess.run([args.child, "verify", store, state_path] + verify_flags,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        out = v.stdout.decode(errors="replace")
        if v.returncode != 0:
            failed(f"verify (killed after {len(lines)} lines, last: {lines[-3:]})", out)
        w = out.split()
        nxt = int(w[w.index("NEXT") + 1] if "NEXT" in w else -1)
        for tok in w:
            if tok.startswith("messages="):
                stats["msgs"] = int(tok.split("=")[1])
            if tok == "go_view=ok":
                stats["go_ok"] += 1
            if tok == "go_view=refuses":
                stats["go_refuses"] += 1
            if tok == "go_view=in_delete":
                stats["go_in_delete"] += 1
            if tok.startswith("open_ms="):
                stats["open_ms_max"] = max(stats["open_ms_max"], float(tok.split("=")[1]))
            if tok.startswith("reopened_next=") and tr:
                kept = int(tok.split("=")[1]) == tr[1]
                stats["kept_try" if kept else "lost_try"] += 1
        # verify finished the pending deletes and published a few more
        deleted = merge(deleted + pend)
        acked = nxt

    el = time.monotonic() - t_start
    print(f"crash_test: OK mode {mode}: {stats['kills']} kills ({stats['early']} while opening), "
          f"{stats['acks']} acknowledged publishes, {stats['dels']} deletes confirmed, "
          f"{stats['pend']} kills during a delete, {stats['kept_try']}/{stats['lost_try']} unacknowledged "
          f"batches kept/dropped, next offset {acked}, {stats['msgs']} messages "
          f"in the store, files as Go finds them: right after {stats['go_ok']} kills, refused by Go "
          f"(a kill inside a multi-page write, or room ahead) after {stats['go_refuses']}, wrong for "
          f"Go inside a delete (its marker is ours alone) after {stats['go_in_delete']}, "
          f"slowest reopen {stats['open_ms_max']:.1f} ms, {el:.1f} s, seed {seed}",
          flush=True)
    if not args.keep and not args.dir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
