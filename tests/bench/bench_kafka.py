#!/usr/bin/env python3
"""bench_kafka.py - `klevdb kafka export|import` against what a user would do
instead, side by side in one run on librdkafka's mock cluster, 128-byte
values: export vs `klevdb dump --json | kcat -P`, import vs
`kcat -C | klevdb publish`. Prints messages/s and the ratios.

  bench_kafka.py KLEVDB MOCK_BROKER [--export N] [--import N] [--rounds R]

The mock keeps only about the last 5 MiB of a partition, so the import
reads a partition of --import messages (default 20000, ~4 MiB with the
headers), --rounds times into fresh stores; the export sends --export
messages (default 200000) once per side and round.
"""
import json, os, shutil, subprocess, sys, tempfile, time

klevdb, mock = sys.argv[1], sys.argv[2]
opt = sys.argv[3:]
def arg(name, dflt):
    return int(opt[opt.index(name) + 1]) if name in opt else dflt
n_exp, n_imp, rounds = arg('--export', 200000), arg('--import', 20000), arg('--rounds', 3)

work = tempfile.mkdtemp(prefix='bench_kafka.')
broker = subprocess.Popen([mock, '1'], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
brokers = broker.stdout.readline().strip()
ntopic = 0

def topic():
    global ntopic
    ntopic += 1
    broker.stdin.write('topic b%d 1\n' % ntopic)
    broker.stdin.flush()
    assert broker.stdout.readline().strip() == 'ok'
    return 'b%d' % ntopic

def make_store(path, n):
    lines = ''.join(json.dumps({'key': 'key-%d' % i, 'value': ('%08d' % i) * 16}) + '\n'
                    for i in range(n))
    subprocess.run([klevdb, '--quiet', '--json', 'publish', path], input=lines, text=True,
                   check=True, stdout=subprocess.DEVNULL)

def timed(cmd, shell=False):
    t = time.perf_counter()
    subprocess.run(cmd, shell=shell, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - t

def best(xs):
    return min(xs)

src = os.path.join(work, 'src')
make_store(src, n_exp)
small = os.path.join(work, 'small')
make_store(small, n_imp)

exp_k, exp_p, imp_k, imp_p, imp_f = [], [], [], [], []
for r in range(rounds):
    exp_k.append(timed([klevdb, '--quiet', 'kafka', 'export', src, '--brokers', brokers,
                        '--topic', topic()]))
    exp_p.append(timed('%s dump --json %s | kcat -P -b %s -t %s -p 0' %
                       (klevdb, src, brokers, topic()), shell=True))
    # The import's source: the small store exported once per round.
    t = topic()
    subprocess.run([klevdb, '--quiet', 'kafka', 'export', small, '--brokers', brokers,
                    '--topic', t], check=True)
    d1, d2 = os.path.join(work, 'i%d' % r), os.path.join(work, 'p%d' % r)
    imp_k.append(timed([klevdb, '--quiet', 'kafka', 'import', d1, '--brokers', brokers,
                        '--topic', t]))
    imp_p.append(timed("kcat -C -b %s -t %s -p 0 -o beginning -e -q -f '%%s\\n' | "
                       "%s --quiet publish %s" % (brokers, t, klevdb, d2), shell=True))
    # The same with kcat's fetch wait as short as the import's own (50 ms).
    imp_f.append(timed("kcat -C -X fetch.wait.max.ms=50 -b %s -t %s -p 0 -o beginning -e -q "
                       "-f '%%s\\n' | %s --quiet publish %s" %
                       (brokers, t, klevdb, d2 + 'f'), shell=True))
    for d in (d1, d2, d2 + 'f'):
        st = json.loads(subprocess.run([klevdb, '--json', 'stat', d], capture_output=True,
                                       text=True, check=True).stdout)
        assert st['messages'] == n_imp, (d, st['messages'], n_imp)

broker.stdin.write('quit\n')
broker.stdin.close()
broker.wait()
shutil.rmtree(work, ignore_errors=True)

def row(name, n, k, p, alt):
    rk, rp = n / best(k), n / best(p)
    print('%-7s %8d msgs  klevdb kafka %-6s %9.0f msgs/s   %-32s %9.0f msgs/s   ratio %.2f'
          % (name, n, name, rk, alt, rp, rk / rp))

print('best of %d rounds, 128-byte values, librdkafka mock cluster (1 broker)' % rounds)
row('export', n_exp, exp_k, exp_p, 'klevdb dump --json | kcat -P')
row('import', n_imp, imp_k, imp_p, 'kcat -C | klevdb publish')
row('import', n_imp, imp_k, imp_f, 'same, kcat fetch.wait.max.ms=50')
