/*
** test_kafka.c - the Kafka bridge against librdkafka's mock cluster in this
** process: round trips, resume, faults (produce errors, brokers down, a
** leader move) and the inputs every run must refuse without writing.
*/
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "../check.h"
#include "klevdb_kafka.h"

static rd_kafka_mock_cluster_t *mc;
static char bs[512];
static char root[256];

/* ---- stores ---- */

static void path_of(char *out, size_t cap, const char *name) {
  snprintf(out, cap, "%s/%s", root, name);
}

static klevdb *open_store(const char *dir) {
  klevdb_options o = {0};
  o.create_dirs = 1;
  o.key_index = o.time_index = 1;
  klevdb *db = NULL;
  klevdb_error err;
  if (klevdb_open(dir, &o, &db, &err)) {
    fprintf(stderr, "open %s: %s\n", dir, err.msg);
    exit(2);
  }
  return db;
}

/* Message i: key "k<i>" except every 10th (absent), value of 1..200
** bytes except every 15th (absent), time base + 7 us * i. */
static void publish_range(klevdb *db, int from, int to, int64_t base) {
  static char keys[64][16], vals[64][256];
  klevdb_msg m[64];
  for (int i = from; i < to;) {
    int n = 0;
    for (; n < 64 && i < to; n++, i++) {
      memset(&m[n], 0, sizeof(m[n]));
      m[n].time = base + 7 * (int64_t)i;
      if (i % 10) {
        m[n].key_len = (size_t)snprintf(keys[n], sizeof(keys[n]), "k%d", i);
        m[n].key = (const uint8_t *)keys[n];
      }
      if (i % 15) {
        size_t len = 1 + (size_t)(i * 37) % 200;
        for (size_t j = 0; j < len; j++) vals[n][j] = (char)('a' + (i + (int)j) % 26);
        m[n].value = (const uint8_t *)vals[n];
        m[n].value_len = len;
      }
    }
    CHECK_OK(klevdb_publish(db, m, (size_t)n, NULL));
  }
}

/* ---- the partition as a client sees it ---- */

typedef struct rec {
  int64_t koff, ts, h_off, h_time;
  int has_key, has_val, has_hdr;
  char *key, *val;
  size_t klen, vlen;
  char store[33];
} rec;

static int64_t hdr_int(rd_kafka_headers_t *h, const char *name) {
  const void *v;
  size_t n;
  char buf[32];
  if (!h || rd_kafka_header_get_last(h, name, &v, &n) || n >= sizeof(buf)) return -1;
  memcpy(buf, v, n);
  buf[n] = 0;
  return strtoll(buf, NULL, 10);
}

static size_t read_partition(const char *topic, int part, rec **out) {
  char errstr[256];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bs, NULL, 0);
  rd_kafka_conf_set(conf, "group.id", "test-reader", NULL, 0);
  rd_kafka_conf_set(conf, "enable.partition.eof", "true", NULL, 0);
  rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
  rd_kafka_conf_set(conf, "log_level", "0", NULL, 0);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
  rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(tp, topic, part)->offset = RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_assign(rk, tp);
  rd_kafka_topic_partition_list_destroy(tp);
  size_t n = 0, cap = 0;
  rec *r = NULL;
  for (int idle = 0; idle < 100;) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
    if (!m) {
      idle++;
      continue;
    }
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      rd_kafka_message_destroy(m);
      break;
    }
    if (m->err) {
      rd_kafka_message_destroy(m);
      continue;
    }
    if (n == cap) r = realloc(r, (cap = cap ? 2 * cap : 256) * sizeof(*r));
    rec *x = &r[n++];
    memset(x, 0, sizeof(*x));
    x->koff = m->offset;
    x->ts = rd_kafka_message_timestamp(m, NULL);
    x->has_key = m->key != NULL;
    x->klen = m->key_len;
    x->key = x->has_key ? memcpy(malloc(m->key_len + 1), m->key, m->key_len) : NULL;
    x->has_val = m->payload != NULL;
    x->vlen = m->len;
    x->val = x->has_val ? memcpy(malloc(m->len + 1), m->payload, m->len) : NULL;
    rd_kafka_headers_t *h = NULL;
    rd_kafka_message_headers(m, &h);
    x->h_off = hdr_int(h, KLEVDB_KAFKA_H_OFFSET);
    x->h_time = hdr_int(h, KLEVDB_KAFKA_H_TIME);
    const void *sid;
    size_t sn;
    if (h && !rd_kafka_header_get_last(h, KLEVDB_KAFKA_H_STORE, &sid, &sn) && sn == 32) {
      memcpy(x->store, sid, 32);
      x->has_hdr = 1;
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_destroy(rk);
  *out = r;
  return n;
}

static void free_recs(rec *r, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(r[i].key);
    free(r[i].val);
  }
  free(r);
}

/* The records must be the store's offsets first.. in order, each once,
** with one exception the mock allows and a real broker does not: a
** producer retry that the broker appended twice. Such a re-sent record
** carries an offset already seen, equal in content to the first copy, and
** the re-sent records of one retry come in ascending order (a run of
** batches sent again); any other repeat, a gap or a reordering fails.
** Returns the number of distinct records; *dups the re-sent ones. */
static int64_t check_sequence(const rec *r, size_t n, int64_t first, const char *id,
                              int64_t *dups) {
  int64_t expect = first, floor = first - 1;
  *dups = 0;
  for (size_t i = 0; i < n; i++) {
    int64_t v = r[i].h_off;
    if (!r[i].has_hdr || memcmp(r[i].store, id, 32)) {
      CHECK_WHY(0, "record %lld: not this store's", (long long)r[i].koff);
      return -1;
    }
    if (v == expect) {
      expect++;
      floor = first - 1;
    } else if (v < expect && v > floor) {
      const rec *o = NULL;
      for (size_t j = 0; j < i && !o; j++)
        if (r[j].h_off == v) o = &r[j];
      if (!o || o->vlen != r[i].vlen || o->h_time != r[i].h_time ||
          (o->vlen && memcmp(o->val, r[i].val, o->vlen))) {
        CHECK_WHY(0, "record %lld repeats offset %lld with other content",
                  (long long)r[i].koff, (long long)v);
        return -1;
      }
      floor = v;
      (*dups)++;
    } else {
      CHECK_WHY(0, "record %lld: store offset %lld where %lld was due (gap or reorder)",
                (long long)r[i].koff, (long long)v, (long long)expect);
      return -1;
    }
  }
  return expect - first;
}

/* Every distinct record matches the store's message of its offset. */
static void check_against_store(klevdb *db, const rec *r, size_t n) {
  klevdb_batch b = KLEVDB_BATCH_INIT;
  int bad = 0;
  for (size_t i = 0; i < n && bad < 5; i++) {
    if (klevdb_get(db, r[i].h_off, &b)) {
      bad++;
      CHECK_WHY(0, "store offset %lld missing", (long long)r[i].h_off);
      continue;
    }
    const klevdb_msg *m = &b.msgs[0];
    int ok = r[i].has_key == (m->key_len > 0) && r[i].has_val == (m->value_len > 0) &&
             r[i].klen == m->key_len && r[i].vlen == m->value_len &&
             (!m->key_len || !memcmp(r[i].key, m->key, m->key_len)) &&
             (!m->value_len || !memcmp(r[i].val, m->value, m->value_len)) &&
             r[i].h_time == m->time && r[i].ts == m->time / 1000;
    if (!ok) bad++;
    CHECK_WHY(ok, "record %lld differs from store offset %lld", (long long)r[i].koff,
              (long long)r[i].h_off);
  }
  klevdb_batch_free(&b);
}

static void store_id(const char *dir, char id[33]) {
  klevdb_kafka_error err;
  CHECK_EQ(klevdb_kafka_store_id(dir, id, &err), KLEVDB_KAFKA_OK);
}

/* ---- runs ---- */

static klevdb_kafka_options opts(const char *topic, int part) {
  klevdb_kafka_options o = {0};
  o.brokers = bs;
  o.topic = topic;
  o.partition = part;
  o.timeout_ms = 5000;
  return o;
}

static klevdb_kafka_err export_once(klevdb *db, const char *dir, const char *topic, int part,
                                    int64_t *sent, klevdb_kafka_error *err) {
  klevdb_kafka_options o = opts(topic, part);
  return klevdb_kafka_export(db, dir, &o, sent, err);
}

/* An export with follow on a thread of its own. */
typedef struct job {
  klevdb *db;
  const char *dir;
  klevdb_kafka_options o;
  int stop;
  int64_t sent, max_lag, last_done;
  int broker_errors;
  klevdb_kafka_err rc;
  klevdb_kafka_error err;
  pthread_t t;
} job;

static void job_status(void *arg, const klevdb_kafka_status *st) {
  job *j = arg;
  if (st->lag > j->max_lag) j->max_lag = st->lag;
  if (st->broker_error) j->broker_errors++;
  __atomic_store_n(&j->last_done, st->done, __ATOMIC_SEQ_CST);
}

static void *job_run(void *arg) {
  job *j = arg;
  j->rc = klevdb_kafka_export(j->db, j->dir, &j->o, &j->sent, &j->err);
  return NULL;
}

static void job_start(job *j, klevdb *db, const char *dir, const char *topic) {
  memset(j, 0, sizeof(*j));
  j->db = db;
  j->dir = dir;
  j->o = opts(topic, 0);
  j->o.follow = 1;
  j->o.stop = &j->stop;
  j->o.status = job_status;
  j->o.status_arg = j;
  pthread_create(&j->t, NULL, job_run, j);
}

static void job_stop(job *j) {
  __atomic_store_n(&j->stop, 1, __ATOMIC_SEQ_CST);
  pthread_join(j->t, NULL);
  if (j->rc) fprintf(stderr, "export: %s\n", j->err.msg);
  CHECK_EQ(j->rc, KLEVDB_KAFKA_OK);
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

/* Exports all of a store, then checks the partition against it. */
static void check_partition_is_store(klevdb *db, const char *dir, const char *topic,
                                     int64_t count, int64_t *dups_out) {
  char id[33];
  store_id(dir, id);
  rec *r;
  size_t n = read_partition(topic, 0, &r);
  int64_t dups = 0;
  CHECK_EQ(check_sequence(r, n, 0, id, &dups), count);
  check_against_store(db, r, n);
  if (dups_out) *dups_out = dups;
  free_recs(r, n);
}

/* ---- the tests ---- */

static void test_round_trip(void) {
  SECTION("round trip");
  char a[300], b2[300];
  path_of(a, sizeof(a), "rt-a");
  path_of(b2, sizeof(b2), "rt-b");
  klevdb *db = open_store(a);
  publish_range(db, 0, 2500, 1700000000123456);
  CHECK_EQ(rd_kafka_mock_topic_create(mc, "rt", 2, 3), 0);
  int64_t sent = -1;
  klevdb_kafka_error err;
  klevdb_kafka_err rc = export_once(db, a, "rt", 0, &sent, &err);
  if (rc) fprintf(stderr, "%s\n", err.msg);
  CHECK_EQ(rc, KLEVDB_KAFKA_OK);
  CHECK_EQ(sent, 2500);
  int64_t dups;
  check_partition_is_store(db, a, "rt", 2500, &dups);
  CHECK_EQ(dups, 0);

  /* Null key and value, the exact time and the header values. */
  rec *r;
  size_t n = read_partition("rt", 0, &r);
  CHECK_EQ(n, 2500);
  if (n == 2500) {
    CHECK_EQ(r[0].has_key, 0);
    CHECK_EQ(r[0].has_val, 0);
    CHECK_EQ(r[0].ts, 1700000000123);
    CHECK_EQ(r[0].h_time, 1700000000123456);
    CHECK_EQ(r[1].klen, 2);
    CHECK_MEM(r[1].key, r[1].klen, "k1", 2);
    CHECK_EQ(r[1].vlen, 38);
    CHECK_EQ(r[20].has_key, 0);
    CHECK_EQ(r[30].has_val, 0);
    CHECK_EQ(r[31].has_val, 1);
    CHECK_EQ(r[2499].h_off, 2499);
    CHECK_EQ(r[2499].h_time, 1700000000123456 + 7 * 2499);
    CHECK_EQ(r[2499].ts, (1700000000123456 + 7 * 2499) / 1000);
  }
  free_recs(r, n);
  /* The other partition got nothing. */
  n = read_partition("rt", 1, &r);
  CHECK_EQ(n, 0);
  free_recs(r, n);

  /* A second export finds the partition up to date. */
  CHECK_EQ(export_once(db, a, "rt", 0, &sent, &err), KLEVDB_KAFKA_OK);
  CHECK_EQ(sent, 0);

  /* Import: the same keys, values and times. */
  klevdb_kafka_options o = opts("rt", 0);
  int64_t imported = -1;
  rc = klevdb_kafka_import(b2, &o, &imported, &err);
  if (rc) fprintf(stderr, "%s\n", err.msg);
  CHECK_EQ(rc, KLEVDB_KAFKA_OK);
  CHECK_EQ(imported, 2500);
  klevdb *db2 = open_store(b2);
  klevdb_batch x = KLEVDB_BATCH_INIT, y = KLEVDB_BATCH_INIT;
  int64_t off = 0, same = 0;
  while (!klevdb_consume(db, off, 500, &x) && x.len &&
         !klevdb_consume(db2, off, 500, &y) && y.len == x.len) {
    for (size_t i = 0; i < x.len; i++) {
      const klevdb_msg *p = &x.msgs[i], *q = &y.msgs[i];
      same += p->offset == q->offset && p->time == q->time && p->key_len == q->key_len &&
              p->value_len == q->value_len &&
              (!p->key_len || !memcmp(p->key, q->key, p->key_len)) &&
              (!p->value_len || !memcmp(p->value, q->value, p->value_len));
    }
    off = x.next_offset;
  }
  CHECK_EQ(same, 2500);
  klevdb_batch_free(&x);
  klevdb_batch_free(&y);
  int64_t next;
  CHECK_OK(klevdb_next_offset(db2, &next));
  CHECK_EQ(next, 2500);
  klevdb_close(db2);

  /* Import resumes: again, nothing new; after more records, just those. */
  CHECK_EQ(klevdb_kafka_import(b2, &o, &imported, &err), KLEVDB_KAFKA_OK);
  CHECK_EQ(imported, 0);
  publish_range(db, 2500, 2600, 1700000000123456);
  CHECK_EQ(export_once(db, a, "rt", 0, &sent, &err), KLEVDB_KAFKA_OK);
  CHECK_EQ(sent, 100);
  CHECK_EQ(klevdb_kafka_import(b2, &o, &imported, &err), KLEVDB_KAFKA_OK);
  CHECK_EQ(imported, 100);

  /* A kill between a publish and its position: the file's last pair is
  ** gone, and the restart must count the store's messages past the pair
  ** before it instead of importing them again. */
  char pos[400];
  snprintf(pos, sizeof(pos), "%s/%s", b2, KLEVDB_KAFKA_POS_FILE);
  FILE *f = fopen(pos, "r");
  char text[4096];
  size_t len = f ? fread(text, 1, sizeof(text) - 1, f) : 0;
  if (f) fclose(f);
  text[len] = 0;
  CHECK_STR_HAS(text, "2599 2599\n");
  char *last = len > 1 ? memrchr(text, '\n', len - 1) : NULL;
  CHECK(last != NULL);
  if (last) {
    last[1] = 0;
    f = fopen(pos, "w");
    fputs(text, f);
    fclose(f);
  }
  CHECK_EQ(klevdb_kafka_import(b2, &o, &imported, &err), KLEVDB_KAFKA_OK);
  CHECK_EQ(imported, 0);
  db2 = open_store(b2);
  CHECK_OK(klevdb_next_offset(db2, &next));
  CHECK_EQ(next, 2600);
  klevdb_close(db2);

  /* Another topic/partition into the same store is refused. */
  o.partition = 1;
  CHECK_EQ(klevdb_kafka_import(b2, &o, &imported, &err), KLEVDB_KAFKA_EINVAL);
  CHECK_STR_HAS(err.msg, "klevdb: kafka import: the store was imported from rt/0");
  klevdb_close(db);
}

/* Records no klevdb export wrote: times from the Kafka timestamp. */
static void test_import_plain(void) {
  SECTION("import plain records");
  char errstr[256], dir[300];
  CHECK_EQ(rd_kafka_mock_topic_create(mc, "plain", 1, 3), 0);
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bs, NULL, 0);
  rd_kafka_conf_set(conf, "log_level", "0", NULL, 0);
  rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  CHECK_EQ(rd_kafka_producev(p, RD_KAFKA_V_TOPIC("plain"), RD_KAFKA_V_PARTITION(0),
                             RD_KAFKA_V_KEY("a", 1), RD_KAFKA_V_VALUE("one", 3),
                             RD_KAFKA_V_TIMESTAMP(1600000000001), RD_KAFKA_V_END), 0);
  CHECK_EQ(rd_kafka_producev(p, RD_KAFKA_V_TOPIC("plain"), RD_KAFKA_V_PARTITION(0),
                             RD_KAFKA_V_VALUE("two", 3),
                             RD_KAFKA_V_TIMESTAMP(1600000000002), RD_KAFKA_V_END), 0);
  rd_kafka_flush(p, 10000);
  rd_kafka_destroy(p);
  path_of(dir, sizeof(dir), "plain");
  klevdb_kafka_options o = opts("plain", 0);
  int64_t imported;
  klevdb_kafka_error err;
  CHECK_EQ(klevdb_kafka_import(dir, &o, &imported, &err), KLEVDB_KAFKA_OK);
  CHECK_EQ(imported, 2);
  klevdb *db = open_store(dir);
  klevdb_batch b = KLEVDB_BATCH_INIT;
  CHECK_OK(klevdb_consume(db, 0, 10, &b));
  CHECK_EQ(b.len, 2);
  if (b.len == 2) {
    CHECK_EQ(b.msgs[0].time, 1600000000001000);
    CHECK_MEM(b.msgs[0].key, b.msgs[0].key_len, "a", 1);
    CHECK_MEM(b.msgs[0].value, b.msgs[0].value_len, "one", 3);
    CHECK_EQ(b.msgs[1].time, 1600000000002000);
    CHECK_EQ(b.msgs[1].key_len, 0);
  }
  klevdb_batch_free(&b);

  /* Exporting onto a partition of foreign records: refused, --force not. */
  CHECK_EQ(export_once(db, dir, "plain", 0, NULL, &err), KLEVDB_KAFKA_EFOREIGN);
  CHECK_STR_HAS(err.msg, "klevdb: kafka export: plain/0 ends with a record that no klevdb");
  klevdb_close(db);
}

static void test_follow_faults(void) {
  SECTION("follow: produce errors, brokers down, leader move");
  char dir[300];
  path_of(dir, sizeof(dir), "faults");
  klevdb *db = open_store(dir);
  CHECK_EQ(rd_kafka_mock_topic_create(mc, "faults", 1, 3), 0);
  job j;
  job_start(&j, db, dir, "faults");
  publish_range(db, 0, 1000, 1710000000000000);
  sleep_ms(300);

  /* Injected produce errors the producer retries. */
  rd_kafka_mock_push_request_errors(mc, 0 /* Produce */, 4,
                                    RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                                    RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                                    RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
                                    RD_KAFKA_RESP_ERR__TRANSPORT);
  publish_range(db, 1000, 2000, 1710000000000000);
  sleep_ms(1500);

  /* Every broker down: the export waits and shows its lag. */
  for (int id = 1; id <= 3; id++) rd_kafka_mock_broker_set_down(mc, id);
  publish_range(db, 2000, 3000, 1710000000000000);
  sleep_ms(3000);
  int64_t done_down = __atomic_load_n(&j.last_done, __ATOMIC_SEQ_CST);
  CHECK(done_down < 3000);
  CHECK(j.max_lag > 0);
  CHECK(j.broker_errors > 0);
  for (int id = 1; id <= 3; id++) rd_kafka_mock_broker_set_up(mc, id);
  sleep_ms(500);

  /* A leader move. */
  publish_range(db, 3000, 3500, 1710000000000000);
  rd_kafka_mock_partition_set_leader(mc, "faults", 0, 2);
  publish_range(db, 3500, 4000, 1710000000000000);
  for (int i = 0; i < 300 && __atomic_load_n(&j.last_done, __ATOMIC_SEQ_CST) < 4000; i++)
    sleep_ms(100);
  job_stop(&j);
  CHECK(j.sent >= 4000);
  int64_t dups = 0;
  check_partition_is_store(db, dir, "faults", 4000, &dups);
  fprintf(stderr, "faults: %lld records re-sent by producer retries (the mock keeps them)\n",
          (long long)dups);

  /* A stop and a start again: resumes, one copy of each message. */
  publish_range(db, 4000, 4100, 1710000000000000);
  int64_t sent;
  klevdb_kafka_error err;
  CHECK_EQ(export_once(db, dir, "faults", 0, &sent, &err), KLEVDB_KAFKA_OK);
  CHECK_EQ(sent, 100);
  check_partition_is_store(db, dir, "faults", 4100, NULL);
  klevdb_close(db);
}

static int file_exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0;
}

static void test_bad_input(void) {
  SECTION("bad input");
  char dir[300], other[300], idf[400], missing[300];
  path_of(dir, sizeof(dir), "bad");
  path_of(other, sizeof(other), "bad-other");
  path_of(missing, sizeof(missing), "bad-missing");
  snprintf(idf, sizeof(idf), "%s/%s", dir, KLEVDB_KAFKA_ID_FILE);
  klevdb *db = open_store(dir);
  publish_range(db, 0, 10, 1720000000000000);
  static uint8_t big[1000];
  klevdb_msg bm = {0, 1720000000999999, NULL, 0, big, sizeof(big)};
  CHECK_OK(klevdb_publish(db, &bm, 1, NULL));
  klevdb_kafka_error err;
  klevdb_kafka_options o;
  int64_t n;

  /* Unknown topic and partition: nothing written, the id file neither. */
  CHECK_EQ(export_once(db, dir, "no-such-topic", 0, NULL, &err), KLEVDB_KAFKA_ENOTFOUND);
  CHECK_STR(err.msg, "klevdb: kafka topic 'no-such-topic' does not exist");
  CHECK(!file_exists(idf));
  CHECK_EQ(rd_kafka_mock_topic_create(mc, "bad", 1, 3), 0);
  CHECK_EQ(export_once(db, dir, "bad", 3, NULL, &err), KLEVDB_KAFKA_ENOTFOUND);
  CHECK_STR(err.msg, "klevdb: kafka topic 'bad' has no partition 3 (it has 1)");
  o = opts("no-such-topic", 0);
  CHECK_EQ(klevdb_kafka_import(missing, &o, &n, &err), KLEVDB_KAFKA_ENOTFOUND);
  CHECK(!file_exists(missing));

  /* Brokers that do not answer: a timeout, nothing written. */
  o = opts("bad", 0);
  o.brokers = "127.0.0.1:1";
  o.timeout_ms = 1000;
  CHECK_EQ(klevdb_kafka_export(db, dir, &o, NULL, &err), KLEVDB_KAFKA_EUNREACHABLE);
  CHECK_STR_HAS(err.msg, "klevdb: kafka brokers 127.0.0.1:1: no answer within 1000 ms");
  CHECK(!file_exists(idf));
  CHECK_EQ(klevdb_kafka_import(missing, &o, &n, &err), KLEVDB_KAFKA_EUNREACHABLE);
  CHECK(!file_exists(missing));

  /* Too big for the broker's limit: nothing sent. */
  o = opts("bad", 0);
  o.max_message_bytes = 1000;   /* librdkafka's least */
  CHECK_EQ(klevdb_kafka_export(db, dir, &o, NULL, &err), KLEVDB_KAFKA_ETOOBIG);
  CHECK_STR_HAS(err.msg, "klevdb: kafka export: store offset 10 is 1000 bytes, over the 1000 a record may have (message.max.bytes); nothing sent");
  rec *r;
  size_t nr = read_partition("bad", 0, &r);
  CHECK_EQ(nr, 0);
  free_recs(r, nr);

  /* The partition holds another store's records. */
  CHECK_EQ(export_once(db, dir, "bad", 0, &n, &err), KLEVDB_KAFKA_OK);
  CHECK_EQ(n, 11);
  klevdb *db2 = open_store(other);
  publish_range(db2, 0, 5, 1720000000000000);
  CHECK_EQ(export_once(db2, other, "bad", 0, &n, &err), KLEVDB_KAFKA_EFOREIGN);
  CHECK_STR_HAS(err.msg, "klevdb: kafka export: bad/0 ends with a record of another store");
  o = opts("bad", 0);
  o.force = 1;   /* --force never covers another store's records */
  CHECK_EQ(klevdb_kafka_export(db2, other, &o, &n, &err), KLEVDB_KAFKA_EFOREIGN);
  nr = read_partition("bad", 0, &r);
  CHECK_EQ(nr, 11);
  free_recs(r, nr);

  /* Import into a store this process has open for writing. */
  o = opts("bad", 0);
  CHECK_EQ(klevdb_kafka_import(other, &o, &n, &err), KLEVDB_KAFKA_ELOCKED);
  CHECK_STR_HAS(err.msg, "klevdb: kafka import: ");
  CHECK_STR_HAS(err.msg, ": another process writes this store");
  int64_t next;
  CHECK_OK(klevdb_next_offset(db2, &next));
  CHECK_EQ(next, 5);
  klevdb_close(db2);
  klevdb_close(db);
}

int main(void) {
  chk_name = "test_kafka";
  snprintf(root, sizeof(root), "/tmp/test_kafka.%ld", (long)getpid());
  mkdir(root, 0700);
  char errstr[256];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "0", NULL, 0);
  rd_kafka_t *host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  mc = rd_kafka_mock_cluster_new(host, 3);
  snprintf(bs, sizeof(bs), "%s", rd_kafka_mock_cluster_bootstraps(mc));

  test_round_trip();
  test_import_plain();
  test_bad_input();
  test_follow_faults();

  rd_kafka_mock_cluster_destroy(mc);
  rd_kafka_destroy(host);
  char cmd[300];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
  if (system(cmd)) fprintf(stderr, "could not remove %s\n", root);
  return check_done();
}
