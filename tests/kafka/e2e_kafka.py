#!/usr/bin/env python3
"""e2e_kafka.py - `klevdb kafka export|import` end to end, checked with kcat
as an independent client: offsets, keys, values, timestamps and headers;
kill -9 of export and of import at random moments (10 kills each, 50 with
KLEVDB_LONG=1), then no loss, no duplicate, order kept; --follow ended by
SIGTERM; the exit codes of bad input.

  e2e_kafka.py KLEVDB MOCK_BROKER WORKDIR            (a mock cluster)
  e2e_kafka.py KLEVDB - WORKDIR --brokers B --topics T1,T2,T3,T4
                    (a real broker: four existing, empty 1-partition topics)
"""
import json, os, random, shutil, signal, subprocess, sys, time

klevdb, mock, work = sys.argv[1], sys.argv[2], sys.argv[3]
args = sys.argv[4:]
real = '--brokers' in args
kills = 50 if os.environ.get('KLEVDB_LONG') == '1' else 10
failed = 0
checks = 0


def check(ok, what):
    global failed, checks
    checks += 1
    if not ok:
        failed += 1
        print('FAIL:', what, file=sys.stderr)
    return ok


shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
if real:
    brokers = args[args.index('--brokers') + 1]
    topics = args[args.index('--topics') + 1].split(',')
    broker = None
else:
    topics = ['e2e', 'kills', 'follow', 'bad']
    broker = subprocess.Popen([mock, '3'] + [t + ':1' for t in topics],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    brokers = broker.stdout.readline().strip()
T_E2E, T_KILLS, T_FOLLOW, T_BAD = topics


def run(*a, stdin=None, ok=(0,)):
    p = subprocess.run([klevdb] + list(a), input=stdin, capture_output=True, text=True)
    if p.returncode not in ok:
        print('klevdb', ' '.join(a), '->', p.returncode, p.stderr, file=sys.stderr)
    return p


def kcat(topic):
    """The partition as kcat reads it: one dict per record."""
    p = subprocess.run(['kcat', '-b', brokers, '-C', '-t', topic, '-p', '0', '-o', 'beginning',
                        '-e', '-q', '-J'], capture_output=True, text=True, timeout=120)
    check(p.returncode == 0, 'kcat: ' + p.stderr)
    out = []
    for line in p.stdout.splitlines():
        r = json.loads(line)
        h = r.get('headers') or []
        r['h'] = dict(zip(h[0::2], h[1::2]))
        out.append(r)
    return out


def dump(store):
    p = run('--json', 'dump', store)
    return [json.loads(l) for l in p.stdout.splitlines()]


def make_messages(n, start=0, base=1700000000000000):
    lines = []
    for i in range(start, start + n):
        key = None if i % 10 == 0 else 'key-%d' % i
        value = None if i % 17 == 0 else ('v%d-' % i + 'x' * 128)[:128]
        lines.append(json.dumps({'key': key, 'value': value, 'time': base + i * 1001}))
    return '\n'.join(lines) + '\n'


def publish(store, n, start=0):
    run('--json', '--quiet', 'publish', store, stdin=make_messages(n, start))


def store_id(store):
    return open(os.path.join(store, 'kafka-store-id')).read().strip()


def check_partition(topic, store, count):
    """The partition against the store. A re-sent record (a producer retry
    the mock appended twice; a real broker de-duplicates it) repeats an
    offset already seen with the same content, and the records one retry
    re-sends ascend; any other repeat, a gap or a reorder fails."""
    recs, msgs = kcat(topic), {m['offset']: m for m in dump(store)}
    sid = store_id(store)
    expect, floor, dups, seen = 0, -1, 0, {}
    for r in recs:
        if not check(r['h'].get('klevdb.store') == sid, 'record %d: store id' % r['offset']):
            return
        off = int(r['h']['klevdb.offset'])
        if off == expect:
            expect, floor = expect + 1, -1
        elif floor < off < expect and seen[off] == (r['key'], r['payload']):
            floor, dups = off, dups + 1
        else:
            check(False, '%s: record %d has store offset %d, %d due' %
                  (topic, r['offset'], off, expect))
            return
        seen[off] = (r['key'], r['payload'])
        m = msgs.get(off)
        check(m is not None and m['key'] == r['key'] and m['value'] == r['payload'] and
              int(r['h']['klevdb.time_us']) == m['time_us'] and r['ts'] == m['time_us'] // 1000,
              '%s: record %d differs from store offset %d' % (topic, r['offset'], off))
    check(expect == count, '%s: %d distinct records, %d expected' % (topic, expect, count))
    if real:
        check(dups == 0, 'a real broker de-duplicates retries: %d re-sent records' % dups)
    return dups


def kill_loop(argv, label):
    """Runs argv until it ends by itself, killed -9 after a random moment,
    kills times; then once to its end."""
    rnd = random.Random(1600 + kills)
    ended = 0
    for i in range(kills):
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rnd.uniform(0.01, 0.3))
        ended += p.poll() is not None
        p.kill()
        p.wait()
    print('%s: %d kills -9, %d runs had ended before theirs' % (label, kills, ended))
    p = subprocess.run(argv, capture_output=True, text=True)
    check(p.returncode == 0, '%s after %d kills: %s' % (label, kills, p.stderr))


# ---- export, checked with kcat; import back ----
a = os.path.join(work, 'a')
publish(a, 3000)
p = run('kafka', 'export', a, '--brokers', brokers, '--topic', T_E2E, '--status-json', '--quiet')
check(p.returncode == 0, 'export')
st = [json.loads(l) for l in p.stdout.splitlines()]
check(st and st[-1]['final'] and st[-1]['done'] == 3000 and st[-1]['lag'] == 0,
      'final status line: %r' % st[-1:])
check_partition(T_E2E, a, 3000)
recs = kcat(T_E2E)
check(len(recs) >= 3000 and recs[0]['key'] is None and recs[0]['ts'] == 1700000000000 and
      recs[0]['h']['klevdb.time_us'] == '1700000000000000', 'record 0: %r' % recs[:1])
check(len(recs) >= 3000 and recs[17]['payload'] is None and recs[1]['key'] == 'key-1',
      'null value and key')
b = os.path.join(work, 'b')
p = run('kafka', 'import', b, '--brokers', brokers, '--topic', T_E2E)
check(p.returncode == 0 and 'imported 3000 records' in p.stderr, 'import: ' + p.stderr)
check(dump(a) == dump(b), 'the round trip gives the same keys, values and times')
p = run('kafka', 'import', b, '--brokers', brokers, '--topic', T_E2E)
check('imported 0 records' in p.stderr, 'import again: ' + p.stderr)

# ---- kill -9 of export, then of import ----
k = os.path.join(work, 'k')
publish(k, 20000)   # 20000 x ~200 bytes: under the mock's 5 MiB
kill_loop([klevdb, 'kafka', 'export', k, '--brokers', brokers, '--topic', T_KILLS,
           '-X', 'linger.ms=1', '-X', 'batch.num.messages=200'], 'export')
dups = check_partition(T_KILLS, k, 20000)
print('export kills: %d, re-sent records the mock kept: %s' % (kills, dups))
ki = os.path.join(work, 'ki')
kill_loop([klevdb, 'kafka', 'import', ki, '--brokers', brokers, '--topic', T_KILLS],
          'import')
recs = kcat(T_KILLS)
got = dump(ki)
check(len(got) == len(recs), 'import after kills: %d messages for %d records' %
      (len(got), len(recs)))
check(all(g['key'] == r['key'] and g['value'] == r['payload'] and
          g['time_us'] == int(r['h']['klevdb.time_us']) for g, r in zip(got, recs)),
      'import after kills: the records, in order')

# ---- --follow until SIGTERM ----
f = os.path.join(work, 'f')
publish(f, 100)
p = subprocess.Popen([klevdb, 'kafka', 'export', f, '--brokers', brokers, '--topic', T_FOLLOW,
                      '--follow', '--status-json'], stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, text=True)
time.sleep(1)
publish(f, 200, 100)
time.sleep(2)
p.send_signal(signal.SIGTERM)
out, err = p.communicate(timeout=60)
check(p.returncode == 0, 'export --follow after SIGTERM: %d %s' % (p.returncode, err))
check('exported 300 records' in err, 'export --follow: ' + err)
check_partition(T_FOLLOW, f, 300)

# ---- bad input ----
p = run('kafka', 'export', a, '--brokers', brokers, '--topic', 'no-such-topic-e2e', ok=(1,))
check(p.returncode == 1 and p.stderr.startswith("klevdb: kafka topic 'no-such-topic-e2e'"),
      'unknown topic: %d %s' % (p.returncode, p.stderr))
p = run('kafka', 'export', a, '--brokers', brokers, '--topic', T_E2E, '--partition', '7', ok=(1,))
check(p.returncode == 1 and 'has no partition 7' in p.stderr, 'unknown partition')
nd = os.path.join(work, 'never')
p = run('kafka', 'import', nd, '--brokers', '127.0.0.1:1', '--topic', T_BAD, '--timeout', '1',
        ok=(5,))
check(p.returncode == 5 and p.stderr.startswith('klevdb: kafka brokers 127.0.0.1:1: no answer')
      and not os.path.exists(nd), 'unreachable: %d %s' % (p.returncode, p.stderr))
p = run('kafka', 'export', k, '--brokers', brokers, '--topic', T_E2E, ok=(5,))
check(p.returncode == 5 and 'ends with a record of another store' in p.stderr,
      'another store: %d %s' % (p.returncode, p.stderr))
big = os.path.join(work, 'big')
run('--json', '--quiet', 'publish', big, stdin=json.dumps({'value': 'y' * 5000}) + '\n')
p = run('kafka', 'export', big, '--brokers', brokers, '--topic', T_BAD,
        '--max-message-bytes', '4000', ok=(5,))
check(p.returncode == 5 and 'over the 4000 a record may have' in p.stderr, 'too big')
check(kcat(T_BAD) == [], 'nothing sent')
holder = subprocess.Popen([klevdb, '--quiet', 'publish', b], stdin=subprocess.PIPE)
time.sleep(0.3)
p = run('kafka', 'import', b, '--brokers', brokers, '--topic', T_E2E, ok=(4,))
check(p.returncode == 4 and p.stderr.startswith('klevdb: kafka import: ') and
      'another process writes this store' in p.stderr, 'locked: %d %s' % (p.returncode, p.stderr))
holder.stdin.close()
holder.wait()

if broker:
    broker.stdin.write('quit\n')
    broker.stdin.close()
    broker.wait()
print('e2e_kafka: %d checks, %d failed' % (checks, failed))
if not failed:
    shutil.rmtree(work, ignore_errors=True)
sys.exit(1 if failed else 0)
