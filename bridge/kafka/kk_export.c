/*
** kk_export.c - klevdb_kafka_export: the store's messages to one Kafka
** partition through an idempotent producer, resuming after the offset the
** partition's last record carries in its klevdb.offset header.
*/
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kk_int.h"

typedef struct exporter {
  const klevdb_kafka_options *o;
  klevdb *db;
  rd_kafka_t *rk;
  char id[33];
  int64_t acked;        /* the next store offset to acknowledge */
  int64_t done;         /* records acknowledged */
  int64_t max_bytes;    /* what the producer sends in one record */
  klevdb_kafka_err fail;
  klevdb_kafka_error ferr;
  char broker_error[256];
  int64_t last_status;
} exporter;

/* Deliveries come in produce order (idempotence keeps it across retries),
** so the last one acknowledged tells how far the partition is. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  exporter *x = opaque;
  int64_t off = (int64_t)(intptr_t)m->_private;
  if (!m->err) {
    x->acked = off + 1;
    x->done++;
    x->broker_error[0] = 0;
    return;
  }
  if (x->fail || m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
      m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
    return;
  if (m->err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
      m->err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE)
    x->fail = kk_fail(&x->ferr, KLEVDB_KAFKA_ETOOBIG,
                      "kafka export: the broker refused store offset %" PRId64
                      " as too big (%s); the partition ends before it",
                      off, rd_kafka_err2str(m->err));
  else
    x->fail = kk_fail(&x->ferr, KLEVDB_KAFKA_EDELIVERY,
                      "kafka export: store offset %" PRId64 " not delivered: %s; the "
                      "partition ends before it", off, rd_kafka_err2str(m->err));
}

static void on_error(rd_kafka_t *rk, int code, const char *reason, void *opaque) {
  exporter *x = opaque;
  char fatal[256];
  if (code == RD_KAFKA_RESP_ERR__FATAL) {
    rd_kafka_resp_err_t fc = rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
    if (!x->fail)
      x->fail = kk_fail(&x->ferr, KLEVDB_KAFKA_EDELIVERY, "kafka export: producer failed: %s (%s)",
                        fatal, rd_kafka_err2name(fc));
    return;
  }
  snprintf(x->broker_error, sizeof(x->broker_error), "%s", reason);
}

static void report(exporter *x, int final) {
  int64_t now = kk_now_ms();
  if (!x->o->status || (!final && now - x->last_status < KK_STATUS_MS)) return;
  x->last_status = now;
  klevdb_kafka_status st = {0};
  st.done = x->done;
  st.position = x->acked;
  if (klevdb_next_offset(x->db, &st.end)) st.end = x->acked;
  st.lag = st.end > st.position ? st.end - st.position : 0;
  st.in_flight = rd_kafka_outq_len(x->rk);
  st.broker_error = x->broker_error[0] ? x->broker_error : NULL;
  st.final = final;
  x->o->status(x->o->status_arg, &st);
}

/* Bytes librdkafka counts for a record against message.max.bytes: the
** batch header (61) and a record's largest overhead on top of the data. */
static int64_t wire_size(const klevdb_msg *m) {
  return 61 + 60 + (int64_t)m->key_len + (int64_t)m->value_len +
         (int64_t)(sizeof(KLEVDB_KAFKA_H_OFFSET) + sizeof(KLEVDB_KAFKA_H_TIME) +
                   sizeof(KLEVDB_KAFKA_H_STORE) + 20 + 20 + 32 + 3 * 10);
}

/* Where this store's export stopped, from the partition's last record. */
static klevdb_kafka_err find_resume(exporter *x, int64_t *resume, klevdb_kafka_error *err) {
  const klevdb_kafka_options *o = x->o;
  rd_kafka_conf_t *conf = kk_conf(o, err, "enable.partition.eof", "true",
                                  "enable.auto.commit", "false",
                                  "auto.offset.reset", "error",
                                  "group.id", "klevdb-export", NULL);
  if (!conf) return err->code;
  rd_kafka_t *rk = kk_new(RD_KAFKA_CONSUMER, conf, err);
  if (!rk) return err->code;
  klevdb_kafka_err out = KLEVDB_KAFKA_OK;
  int64_t low, high;
  rd_kafka_resp_err_t rc = rd_kafka_query_watermark_offsets(rk, o->topic, o->partition, &low,
                                                            &high, (int)kk_timeout(o));
  *resume = -1;
  if (rc) {
    out = kk_fail(err, KLEVDB_KAFKA_EUNREACHABLE, "kafka export: %s/%d: watermarks: %s",
                  o->topic, (int)o->partition, rd_kafka_err2str(rc));
  } else if (high > 0 && high <= low) {
    out = o->force ? KLEVDB_KAFKA_OK
                   : kk_fail(err, KLEVDB_KAFKA_ELOST,
                             "kafka export: %s/%d: every record was deleted (retention), so "
                             "where this store stopped is unknown (--force sends the store "
                             "from its oldest message)", o->topic, (int)o->partition);
  } else if (high > 0) {
    /* The last offset may hold no record (a transaction marker, a record
    ** compacted away): read from a little before and keep the last seen. */
    int64_t from = high - 1;
    int tries = 0;
    rd_kafka_message_t *last = NULL;
    while (!last && out == KLEVDB_KAFKA_OK && tries++ < 4) {
      rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(1);
      rd_kafka_topic_partition_list_add(tp, o->topic, o->partition)->offset = from;
      rd_kafka_assign(rk, tp);
      rd_kafka_topic_partition_list_destroy(tp);
      int64_t deadline = kk_now_ms() + kk_timeout(o);
      for (;;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) {
          if (kk_now_ms() > deadline) {
            out = kk_fail(err, KLEVDB_KAFKA_EUNREACHABLE,
                          "kafka export: %s/%d: the last record did not come within %lld ms",
                          o->topic, (int)o->partition, (long long)kk_timeout(o));
            break;
          }
          continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
          rd_kafka_message_destroy(m);
          break;
        }
        if (m->err) {
          out = kk_fail(err, KLEVDB_KAFKA_EKAFKA, "kafka export: %s/%d: reading the last record: %s",
                        o->topic, (int)o->partition, rd_kafka_message_errstr(m));
          rd_kafka_message_destroy(m);
          break;
        }
        if (last) rd_kafka_message_destroy(last);
        last = m;
      }
      rd_kafka_assign(rk, NULL);
      from = from - 64 * tries > low ? from - 64 * tries : low;
    }
    if (out == KLEVDB_KAFKA_OK && last) {
      rd_kafka_headers_t *h = NULL;
      const void *sid = NULL;
      size_t sidn = 0;
      int64_t off;
      rd_kafka_message_headers(last, &h);
      if (h && !rd_kafka_header_get_last(h, KLEVDB_KAFKA_H_STORE, &sid, &sidn) && sid &&
          kk_header_int(h, KLEVDB_KAFKA_H_OFFSET, &off) == 0) {
        if (sidn != 32 || memcmp(sid, x->id, 32))
          out = kk_fail(err, KLEVDB_KAFKA_EFOREIGN,
                        "kafka export: %s/%d ends with a record of another store (%.*s, "
                        "not this store's %s); nothing sent", o->topic, (int)o->partition,
                        (int)(sidn > 64 ? 64 : sidn), (const char *)sid, x->id);
        else
          *resume = off + 1;
      } else if (!o->force) {
        out = kk_fail(err, KLEVDB_KAFKA_EFOREIGN,
                      "kafka export: %s/%d ends with a record that no klevdb export wrote "
                      "(offset %" PRId64 ", no klevdb.store/klevdb.offset headers); nothing "
                      "sent (--force appends after it)", o->topic, (int)o->partition,
                      last->offset);
      }
    } else if (out == KLEVDB_KAFKA_OK && !o->force) {
      out = kk_fail(err, KLEVDB_KAFKA_ELOST,
                    "kafka export: %s/%d: no record readable near its end (offset %" PRId64
                    "); where this store stopped is unknown", o->topic, (int)o->partition,
                    high - 1);
    }
    if (last) rd_kafka_message_destroy(last);
  }
  rd_kafka_destroy(rk);
  return out;
}

static rd_kafka_resp_err_t produce(exporter *x, const klevdb_msg *m) {
  char off[24], tus[24];
  int offn = snprintf(off, sizeof(off), "%" PRId64, m->offset);
  int tusn = snprintf(tus, sizeof(tus), "%" PRId64, m->time);
  rd_kafka_headers_t *h = rd_kafka_headers_new(3);
  rd_kafka_header_add(h, KLEVDB_KAFKA_H_OFFSET, -1, off, offn);
  rd_kafka_header_add(h, KLEVDB_KAFKA_H_TIME, -1, tus, tusn);
  rd_kafka_header_add(h, KLEVDB_KAFKA_H_STORE, -1, x->id, 32);
  /* Kafka counts milliseconds; 0 would mean "now" to the producer. */
  int64_t ms = m->time >= 0 ? m->time / 1000 : -((999 - m->time) / 1000);
  if (ms <= 0) ms = 1;
  rd_kafka_resp_err_t rc = rd_kafka_producev(
      x->rk, RD_KAFKA_V_TOPIC(x->o->topic), RD_KAFKA_V_PARTITION(x->o->partition),
      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
      RD_KAFKA_V_KEY(m->key_len ? (void *)m->key : NULL, m->key_len),
      RD_KAFKA_V_VALUE(m->value_len ? (void *)m->value : NULL, m->value_len),
      RD_KAFKA_V_TIMESTAMP(ms), RD_KAFKA_V_HEADERS(h),
      RD_KAFKA_V_OPAQUE((void *)(intptr_t)m->offset), RD_KAFKA_V_END);
  if (rc) rd_kafka_headers_destroy(h);
  return rc;
}

/* Hands one store message to the producer, waiting while its queue is
** full (a broker down): 1 when a second stop abandons it. */
static int send_one(exporter *x, const klevdb_msg *m) {
  for (;;) {
    rd_kafka_resp_err_t rc = produce(x, m);
    if (!rc) return 0;
    if (rc != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      x->fail = kk_fail(&x->ferr,
                        rc == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ? KLEVDB_KAFKA_ETOOBIG
                                                                   : KLEVDB_KAFKA_EKAFKA,
                        "kafka export: store offset %" PRId64 ": %s", m->offset,
                        rd_kafka_err2str(rc));
      return 1;
    }
    rd_kafka_poll(x->rk, 100);
    report(x, 0);
    if (x->fail || kk_stop_level(x->o) >= 2) return 1;
  }
}

/* Nothing is sent when a message already in the store is over the limit. */
static klevdb_kafka_err check_sizes(exporter *x, int64_t from, int64_t end,
                                    klevdb_batch *b, klevdb_kafka_error *err) {
  while (from < end) {
    klevdb_err rc = klevdb_consume(x->db, from, KK_BATCH, b);
    if (rc) return kk_store_fail(err, rc, "kafka export", klevdb_errmsg(x->db));
    for (size_t i = 0; i < b->len && b->msgs[i].offset < end; i++)
      if (wire_size(&b->msgs[i]) > x->max_bytes)
        return kk_fail(err, KLEVDB_KAFKA_ETOOBIG,
                       "kafka export: store offset %" PRId64 " is %zu bytes, over the "
                       "%" PRId64 " a record may have (message.max.bytes); nothing sent",
                       b->msgs[i].offset, b->msgs[i].key_len + b->msgs[i].value_len,
                       x->max_bytes);
    if (b->next_offset <= from) break;
    from = b->next_offset;
  }
  return KLEVDB_KAFKA_OK;
}

/* Sends from cursor on; without follow, up to end. */
static void run(exporter *x, int64_t cursor, int64_t end, klevdb_batch *b) {
  const klevdb_kafka_options *o = x->o;
  while (!x->fail && !kk_stop_level(o)) {
    if (!o->follow && cursor >= end) break;
    klevdb_err rc = o->follow ? klevdb_consume_blocking(x->db, cursor, KK_BATCH, 100, b)
                              : klevdb_consume(x->db, cursor, KK_BATCH, b);
    if (rc == KLEVDB_ECLOSED && kk_stop_level(o)) break;
    if (rc) {
      x->fail = kk_store_fail(&x->ferr, rc, "kafka export", klevdb_errmsg(x->db));
      break;
    }
    for (size_t i = 0; i < b->len && !x->fail; i++) {
      const klevdb_msg *m = &b->msgs[i];
      if (!o->follow && m->offset >= end) break;
      if (wire_size(m) > x->max_bytes) {
        x->fail = kk_fail(&x->ferr, KLEVDB_KAFKA_ETOOBIG,
                          "kafka export: store offset %" PRId64 " is %zu bytes, over the "
                          "%" PRId64 " a record may have (message.max.bytes); the partition "
                          "ends before it", m->offset, m->key_len + m->value_len, x->max_bytes);
        break;
      }
      if (send_one(x, m)) break;
    }
    /* Deletes leave gaps that the read steps over. */
    if (b->next_offset > cursor) cursor = b->next_offset;
    else if (!o->follow && b->len == 0) break;
    rd_kafka_poll(x->rk, 0);
    report(x, 0);
  }
}

klevdb_kafka_err klevdb_kafka_export(klevdb *db, const char *dir,
                                     const klevdb_kafka_options *o,
                                     int64_t *sent, klevdb_kafka_error *err) {
  klevdb_kafka_error dummy;
  if (!err) err = &dummy;
  if (sent) *sent = 0;
  if (!o || !o->brokers || !o->topic || !db || !dir)
    return kk_fail(err, KLEVDB_KAFKA_EINVAL, "kafka export: brokers, topic and store needed");
  exporter x;
  memset(&x, 0, sizeof(x));
  x.o = o;
  x.db = db;
  x.max_bytes = o->max_message_bytes > 0 ? o->max_message_bytes : 1000000;
  klevdb_kafka_err out;

  char maxb[24];
  snprintf(maxb, sizeof(maxb), "%" PRId64, x.max_bytes);
  rd_kafka_conf_t *conf = kk_conf(o, err, "enable.idempotence", "true", "acks", "all",
                                  /* Never give up on a record: wait for the broker. */
                                  "message.timeout.ms", "0", "linger.ms", "5",
                                  "batch.num.messages", "10000",
                                  "message.max.bytes", maxb, NULL);
  if (!conf) return err->code;
  rd_kafka_conf_set_opaque(conf, &x);
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_conf_set_error_cb(conf, on_error);
  x.rk = kk_new(RD_KAFKA_PRODUCER, conf, err);
  if (!x.rk) return err->code;

  klevdb_batch b = KLEVDB_BATCH_INIT;
  int64_t resume = -1, end = 0;
  klevdb_bounds bounds;
  klevdb_err krc;
  out = kk_check_partition(x.rk, o, err);
  /* The id file is made only once the partition is known to exist. */
  if (!out) out = klevdb_kafka_store_id(dir, x.id, err);
  if (!out) out = find_resume(&x, &resume, err);
  if (!out && (krc = klevdb_bounds_get(db, &bounds)))
    out = kk_store_fail(err, krc, "kafka export", klevdb_errmsg(db));
  if (!out) {
    end = bounds.next_offset;
    if (resume > end)
      out = kk_fail(err, KLEVDB_KAFKA_EFOREIGN,
                    "kafka export: %s/%d already holds this store up to offset %" PRId64
                    ", past its end (%" PRId64 "): is this a restored copy?", o->topic,
                    (int)o->partition, resume - 1, end);
    if (resume < 0 || (bounds.oldest_offset >= 0 && resume < bounds.oldest_offset))
      resume = bounds.oldest_offset >= 0 ? bounds.oldest_offset : end;
  }
  if (!out) out = check_sizes(&x, resume, end, &b, err);
  if (!out) {
    x.acked = resume;
    run(&x, resume, end, &b);
    /* Waits for every record handed over: until the broker takes them, or
    ** a second stop. */
    while (!x.fail && rd_kafka_outq_len(x.rk) > 0) {
      if (kk_stop_level(o) >= 2) {
        x.fail = kk_fail(&x.ferr, KLEVDB_KAFKA_EINTERRUPTED,
                         "kafka export: stopped with %d records not acknowledged (from "
                         "store offset %" PRId64 "); the next export sends them",
                         rd_kafka_outq_len(x.rk), x.acked);
        break;
      }
      rd_kafka_poll(x.rk, 100);
      report(&x, 0);
    }
    if (x.fail) {
      rd_kafka_purge(x.rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
      rd_kafka_poll(x.rk, 0);
      *err = x.ferr;
      out = x.fail;
    }
    report(&x, 1);
  }
  if (sent) *sent = x.done;
  klevdb_batch_free(&b);
  rd_kafka_destroy(x.rk);
  return out;
}
