/*
** kk_import.c - klevdb_kafka_import: one Kafka partition's records into a
** store, in batches. After each publish a position file records which
** Kafka offset the batch's last store offset came from; at restart the
** store's messages past that offset say how many records were already in.
*/
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kk_int.h"

/* Pairs the file keeps, newest last: after a machine crash the store may
** have lost its last batches (no fsync), and an older pair still fits. */
#define POS_PAIRS 16

typedef struct position {
  int n;
  int64_t store[POS_PAIRS], kafka[POS_PAIRS];
} position;

/* 1 when the file is there, 0 when not, -1 (err filled) when it is bad
** or names another partition. */
static int pos_read(const char *path, const klevdb_kafka_options *o, position *p,
                    klevdb_kafka_error *err) {
  FILE *f = fopen(path, "r");
  memset(p, 0, sizeof(*p));
  if (!f) {
    if (errno == ENOENT) return 0;
    kk_fail(err, KLEVDB_KAFKA_EINVAL, "%s: %s", path, strerror(errno));
    return -1;
  }
  char topic[256] = {0}, line[512];
  int version = 0, partition = -1, bad = 0;
  if (!fgets(line, sizeof(line), f) || sscanf(line, "klevdb-kafka-import %d", &version) != 1 ||
      version != 1 || !fgets(line, sizeof(line), f) || sscanf(line, "topic %255s", topic) != 1 ||
      !fgets(line, sizeof(line), f) || sscanf(line, "partition %d", &partition) != 1)
    bad = 1;
  while (!bad && fgets(line, sizeof(line), f)) {
    int64_t s, k;
    if (sscanf(line, "%" SCNd64 " %" SCNd64, &s, &k) != 2) {
      bad = 1;
      break;
    }
    if (p->n == POS_PAIRS) {
      memmove(p->store, p->store + 1, sizeof(int64_t) * (POS_PAIRS - 1));
      memmove(p->kafka, p->kafka + 1, sizeof(int64_t) * (POS_PAIRS - 1));
      p->n--;
    }
    p->store[p->n] = s;
    p->kafka[p->n++] = k;
  }
  fclose(f);
  if (bad || p->n == 0) {
    kk_fail(err, KLEVDB_KAFKA_EINVAL, "%s: not a klevdb import position file", path);
    return -1;
  }
  if (strcmp(topic, o->topic) || partition != o->partition) {
    kk_fail(err, KLEVDB_KAFKA_EINVAL,
            "kafka import: the store was imported from %s/%d, not %s/%d (its %s says so)",
            topic, partition, o->topic, (int)o->partition, KLEVDB_KAFKA_POS_FILE);
    return -1;
  }
  return 1;
}

/* Written whole under another name and renamed over the old one, so that a
** kill leaves either the old file or the new. */
static int pos_write(const char *path, const klevdb_kafka_options *o, position *p,
                     int64_t store, int64_t kafka, klevdb_kafka_error *err) {
  if (p->n == POS_PAIRS) {
    memmove(p->store, p->store + 1, sizeof(int64_t) * (POS_PAIRS - 1));
    memmove(p->kafka, p->kafka + 1, sizeof(int64_t) * (POS_PAIRS - 1));
    p->n--;
  }
  p->store[p->n] = store;
  p->kafka[p->n++] = kafka;
  char tmp[4200], buf[1024];
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  int len = snprintf(buf, sizeof(buf), "klevdb-kafka-import 1\ntopic %s\npartition %d\n",
                     o->topic, (int)o->partition);
  for (int i = 0; i < p->n; i++)
    len += snprintf(buf + len, sizeof(buf) - (size_t)len, "%" PRId64 " %" PRId64 "\n",
                    p->store[i], p->kafka[i]);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int bad = fd < 0 || write(fd, buf, (size_t)len) != len;
  int e = errno;
  if (fd >= 0) close(fd);
  if (!bad && rename(tmp, path) < 0) {
    bad = 1;
    e = errno;
  }
  if (bad) {
    kk_fail(err, KLEVDB_KAFKA_ESTORE, "%s: %s", path, strerror(e));
    err->store_code = KLEVDB_EIO;
    return -1;
  }
  return 0;
}

typedef struct importer {
  const klevdb_kafka_options *o;
  klevdb *db;
  rd_kafka_t *rk;
  char broker_error[256];
  int64_t done, next_kafka, last_status;
} importer;

static void on_error(rd_kafka_t *rk, int code, const char *reason, void *opaque) {
  (void)rk;
  (void)code;
  importer *im = opaque;
  snprintf(im->broker_error, sizeof(im->broker_error), "%s", reason);
}

static void report(importer *im, int final) {
  int64_t now = kk_now_ms();
  if (!im->o->status || (!final && now - im->last_status < KK_STATUS_MS)) return;
  im->last_status = now;
  klevdb_kafka_status st = {0};
  int64_t low, high;
  st.done = im->done;
  st.position = im->next_kafka;
  st.end = rd_kafka_get_watermark_offsets(im->rk, im->o->topic, im->o->partition, &low, &high) ||
                   high < 0 ? -1 : high;
  st.lag = st.end > st.position ? st.end - st.position : 0;
  st.broker_error = im->broker_error[0] ? im->broker_error : NULL;
  st.final = final;
  im->o->status(im->o->status_arg, &st);
}

/* The time of a record: its klevdb.time_us header, else its timestamp. */
static int64_t record_time(const rd_kafka_message_t *m) {
  rd_kafka_headers_t *h = NULL;
  int64_t us;
  if (!rd_kafka_message_headers(m, &h) && kk_header_int(h, KLEVDB_KAFKA_H_TIME, &us) == 0)
    return us;
  int64_t ms = rd_kafka_message_timestamp(m, NULL);
  return ms < 0 ? KLEVDB_TIME_UNSET : ms * 1000;
}

static int fatal_consumer_error(rd_kafka_resp_err_t e) {
  switch (e) {
  case RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET:
  case RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE:
  case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
  case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
  case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
  case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
  case RD_KAFKA_RESP_ERR__FATAL:
    return 1;
  default:
    return 0;
  }
}

/* Reads, publishes and records the position until the end (or a stop). */
static klevdb_kafka_err run(importer *im, const char *path, position *p, int64_t skip,
                            klevdb_kafka_error *err) {
  const klevdb_kafka_options *o = im->o;
  rd_kafka_message_t **recs = calloc(KK_BATCH, sizeof(*recs));
  klevdb_msg *msgs = calloc(KK_BATCH, sizeof(*msgs));
  klevdb_kafka_err out = KLEVDB_KAFKA_OK;
  if (!recs || !msgs) out = kk_fail(err, KLEVDB_KAFKA_EKAFKA, "kafka import: out of memory");
  int eof = 0;
  while (!out && !kk_stop_level(o) && !(eof && !o->follow)) {
    size_t n = 0, bytes = 0;
    eof = 0;
    while (n < KK_BATCH && bytes < KK_BATCH_BYTES) {
      rd_kafka_message_t *m = rd_kafka_consumer_poll(im->rk, n ? 0 : 100);
      if (!m) break;
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        rd_kafka_message_destroy(m);
        eof = 1;
        break;
      }
      if (m->err) {
        if (fatal_consumer_error(m->err)) {
          out = kk_fail(err, m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
                                     m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE
                                 ? KLEVDB_KAFKA_ELOST : KLEVDB_KAFKA_EKAFKA,
                        "kafka import: %s/%d at offset %" PRId64 ": %s%s", o->topic,
                        (int)o->partition, im->next_kafka, rd_kafka_message_errstr(m),
                        m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET
                            ? " (records not yet imported were deleted from the partition)"
                            : "");
          rd_kafka_message_destroy(m);
          break;
        }
        snprintf(im->broker_error, sizeof(im->broker_error), "%s", rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
        continue;
      }
      im->broker_error[0] = 0;
      im->next_kafka = m->offset + 1;
      if (skip > 0) {
        skip--;
        rd_kafka_message_destroy(m);
        continue;
      }
      klevdb_msg *km = &msgs[n];
      km->time = record_time(m);
      km->key = m->key;
      km->key_len = m->key ? m->key_len : 0;
      km->value = m->payload;
      km->value_len = m->payload ? m->len : 0;
      bytes += km->key_len + km->value_len;
      recs[n++] = m;
    }
    if (!out && n) {
      int64_t next;
      klevdb_err rc = klevdb_publish(im->db, msgs, n, &next);
      if (rc)
        out = kk_store_fail(err, rc, "kafka import", klevdb_errmsg(im->db));
      else if (pos_write(path, o, p, next - 1, recs[n - 1]->offset, err))
        out = err->code;
      else
        im->done += (int64_t)n;
    }
    for (size_t i = 0; i < n; i++) rd_kafka_message_destroy(recs[i]);
    report(im, 0);
  }
  free(recs);
  free(msgs);
  return out;
}

klevdb_kafka_err klevdb_kafka_import(const char *dir, const klevdb_kafka_options *o,
                                     int64_t *imported, klevdb_kafka_error *err) {
  klevdb_kafka_error dummy;
  if (!err) err = &dummy;
  if (imported) *imported = 0;
  if (!o || !o->brokers || !o->topic || !dir)
    return kk_fail(err, KLEVDB_KAFKA_EINVAL, "kafka import: brokers, topic and store needed");
  importer im;
  memset(&im, 0, sizeof(im));
  im.o = o;
  /* Refused before anything else, as later on the store gets written. */
  int active = 0;
  if (klevdb_dir_writer_active(dir, &active) == KLEVDB_OK && active)
    return kk_fail(err, KLEVDB_KAFKA_ELOCKED,
                   "kafka import: %s: another process writes this store", dir);

  rd_kafka_conf_t *conf = kk_conf(o, err, "enable.partition.eof", "true",
                                  "enable.auto.commit", "false", "auto.offset.reset", "error",
                                  "group.id", "klevdb-import",
                                  /* A broker holds a fetch that has less than
                                  ** fetch.min.bytes up to this long: at the
                                  ** partition's end, every time. */
                                  "fetch.wait.max.ms", "50", NULL);
  if (!conf) return err->code;
  rd_kafka_conf_set_opaque(conf, &im);
  rd_kafka_conf_set_error_cb(conf, on_error);
  im.rk = kk_new(RD_KAFKA_CONSUMER, conf, err);
  if (!im.rk) return err->code;
  klevdb_kafka_err out = kk_check_partition(im.rk, o, err);
  int64_t low = 0, high = 0;
  if (!out) {
    rd_kafka_resp_err_t rc = rd_kafka_query_watermark_offsets(
        im.rk, o->topic, o->partition, &low, &high, (int)kk_timeout(o));
    if (rc)
      out = kk_fail(err, KLEVDB_KAFKA_EUNREACHABLE, "kafka import: %s/%d: watermarks: %s",
                    o->topic, (int)o->partition, rd_kafka_err2str(rc));
  }

  char path[4096];
  snprintf(path, sizeof(path), "%s/%s", dir, KLEVDB_KAFKA_POS_FILE);
  position p;
  int have = 0;
  if (!out && (have = pos_read(path, o, &p, err)) < 0) out = err->code;

  if (!out) {
    klevdb_options so = {0};
    so.create_dirs = 1;
    klevdb_dir_indexes(dir, &so.key_index, &so.time_index);
    klevdb_error kerr;
    klevdb_err rc = klevdb_open(dir, &so, &im.db, &kerr);
    if (rc == KLEVDB_ELOCKED)
      out = kk_fail(err, KLEVDB_KAFKA_ELOCKED,
                    "kafka import: %s: another process writes this store", dir);
    else if (rc)
      out = kk_store_fail(err, rc, "kafka import", kerr.msg);
  }
  int64_t next = 0, start = 0, skip = 0;
  if (!out) {
    klevdb_err rc = klevdb_next_offset(im.db, &next);
    if (rc) out = kk_store_fail(err, rc, "kafka import", klevdb_errmsg(im.db));
  }
  if (!out && !have) {
    /* Written before the first publish, so that a kill before the first
    ** batch's position still finds where the import began. */
    start = low;
    if (pos_write(path, o, &p, next - 1, low - 1, err)) out = err->code;
  } else if (!out) {
    int i = p.n - 1;
    while (i >= 0 && p.store[i] > next - 1) i--;
    if (i < 0) {
      out = kk_fail(err, KLEVDB_KAFKA_EINVAL,
                    "kafka import: %s: the store ends at offset %" PRId64 ", before every "
                    "position the file recorded; cannot tell what was imported",
                    path, next - 1);
    } else {
      start = p.kafka[i] + 1;
      skip = next - 1 - p.store[i];
    }
  }
  if (!out) {
    rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(tp, o->topic, o->partition)->offset = start;
    rd_kafka_resp_err_t rc = rd_kafka_assign(im.rk, tp);
    rd_kafka_topic_partition_list_destroy(tp);
    if (rc)
      out = kk_fail(err, KLEVDB_KAFKA_EKAFKA, "kafka import: assign %s/%d: %s", o->topic,
                    (int)o->partition, rd_kafka_err2str(rc));
    im.next_kafka = start;
  }
  if (!out) {
    out = run(&im, path, &p, skip, err);
    report(&im, 1);
  }
  if (imported) *imported = im.done;
  if (im.db) {
    klevdb_err rc = klevdb_close(im.db);
    if (rc && !out) out = kk_store_fail(err, rc, "kafka import", "close failed");
  }
  rd_kafka_destroy(im.rk);
  return out;
}
