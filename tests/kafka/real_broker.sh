#!/usr/bin/env bash
# real_broker.sh - runs the end-to-end test (e2e_kafka.py) against a real
# Kafka-protocol broker instead of the mock cluster. Not run by meson.
#   tests/kafka/real_broker.sh --brokers HOST:PORT [BUILD_DIR]
# It creates four 1-partition topics with a fresh suffix (kafka-topics.sh or
# rpk on PATH), or takes existing empty ones from $KLEVDB_KAFKA_TOPICS
# (T1,T2,T3,T4). Unlike the mock, a real broker de-duplicates producer
# retries: the test then fails on any re-sent record.
set -euo pipefail
[ "${1:-}" = "--brokers" ] && [ -n "${2:-}" ] || { echo "usage: $0 --brokers HOST:PORT [BUILD_DIR]" >&2; exit 2; }
brokers=$2
build=${3:-build}
here=$(cd "$(dirname "$0")" && pwd)
topics=${KLEVDB_KAFKA_TOPICS:-}
if [ -z "$topics" ]; then
  s=$(date +%s)$$
  topics="klevdb-e2e-$s,klevdb-kills-$s,klevdb-follow-$s,klevdb-bad-$s"
  for t in ${topics//,/ }; do
    if command -v kafka-topics.sh >/dev/null; then
      kafka-topics.sh --bootstrap-server "$brokers" --create --topic "$t" --partitions 1 --replication-factor 1
    elif command -v rpk >/dev/null; then
      rpk topic create "$t" -p 1 -r 1 --brokers "$brokers"
    else
      echo "real_broker.sh: no kafka-topics.sh or rpk: set KLEVDB_KAFKA_TOPICS" >&2; exit 2
    fi
  done
fi
exec python3 "$here/e2e_kafka.py" "$build/tools/klevdb" - "$(mktemp -d)/e2e" --brokers "$brokers" --topics "$topics"
