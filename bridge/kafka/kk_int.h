/*
** kk_int.h - what the bridge's files share: error filling, librdkafka
** settings, the start-up check of brokers, topic and partition, headers.
*/
#ifndef KK_INT_H
#define KK_INT_H

#include <librdkafka/rdkafka.h>

#include "klevdb_kafka.h"

/* Records per store read, publish, and status period. */
#define KK_BATCH 1000
#define KK_BATCH_BYTES (1 << 20)
#define KK_STATUS_MS 1000
#define KK_DEFAULT_TIMEOUT_MS 10000

klevdb_kafka_err kk_fail(klevdb_kafka_error *err, klevdb_kafka_err code,
                         const char *fmt, ...) __attribute__((format(printf, 3, 4)));
klevdb_kafka_err kk_store_fail(klevdb_kafka_error *err, klevdb_err rc,
                               const char *what, const char *msg);
int64_t kk_now_ms(void);
int kk_stop_level(const klevdb_kafka_options *o);
int64_t kk_timeout(const klevdb_kafka_options *o);

/* A configuration with the brokers, o->conf and the given pairs
** (name, value, ..., NULL) applied; NULL on failure with err filled. */
rd_kafka_conf_t *kk_conf(const klevdb_kafka_options *o, klevdb_kafka_error *err, ...);
rd_kafka_t *kk_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, klevdb_kafka_error *err);

/* Asks the brokers for the topic: EUNREACHABLE when none answers within
** the timeout, ENOTFOUND for an unknown topic or partition. */
klevdb_kafka_err kk_check_partition(rd_kafka_t *rk, const klevdb_kafka_options *o,
                                    klevdb_kafka_error *err);

/* The decimal value of header name, 0; -1 when absent or not a number. */
int kk_header_int(rd_kafka_headers_t *h, const char *name, int64_t *out);

#endif
