/*
** klevdb_kafka.h - the Kafka bridge: forwards a store's messages to one
** Kafka partition and brings a partition's records into a store, exactly
** once across restarts, on librdkafka. Optional: core never depends on it.
*/
#ifndef KLEVDB_KAFKA_H
#define KLEVDB_KAFKA_H

#include <stddef.h>
#include <stdint.h>

#include "klevdb.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Record headers an export writes (values in decimal ASCII, so that any
** client shows them as they are; the store id is 32 hex digits). */
#define KLEVDB_KAFKA_H_OFFSET "klevdb.offset"
#define KLEVDB_KAFKA_H_TIME "klevdb.time_us"
#define KLEVDB_KAFKA_H_STORE "klevdb.store"

/* The file in a store's directory holding its id (not a *.log name: Go
** and C klevdb pass over it) and the file an import keeps its position
** in. */
#define KLEVDB_KAFKA_ID_FILE "kafka-store-id"
#define KLEVDB_KAFKA_POS_FILE "kafka-import-position"

typedef enum klevdb_kafka_err {
  KLEVDB_KAFKA_OK = 0,
  KLEVDB_KAFKA_ENOTFOUND,     /* no such topic or partition */
  KLEVDB_KAFKA_EUNREACHABLE,  /* no broker answered in time at start */
  KLEVDB_KAFKA_EFOREIGN,      /* the partition ends with another writer's record */
  KLEVDB_KAFKA_ETOOBIG,       /* a message over the size the broker takes */
  KLEVDB_KAFKA_ELOCKED,       /* another process writes the store */
  KLEVDB_KAFKA_EDELIVERY,     /* the broker refused a record for good */
  KLEVDB_KAFKA_ELOST,         /* records to import are gone from the partition */
  KLEVDB_KAFKA_ESTORE,        /* the store failed (the message says how) */
  KLEVDB_KAFKA_EKAFKA,        /* any other librdkafka failure */
  KLEVDB_KAFKA_EINVAL,        /* bad argument or position file */
  KLEVDB_KAFKA_EINTERRUPTED   /* stopped twice: records left undelivered */
} klevdb_kafka_err;

typedef struct klevdb_kafka_error {
  klevdb_kafka_err code;
  klevdb_err store_code;      /* with KLEVDB_KAFKA_ESTORE */
  char msg[512];              /* "klevdb: ..." */
} klevdb_kafka_error;

/* How far a run is, given to the status callback about once a second and
** once at the end. */
typedef struct klevdb_kafka_status {
  int64_t done;        /* export: records the broker acknowledged;
                       ** import: records published into the store */
  int64_t position;    /* export: the next store offset to acknowledge;
                       ** import: the next Kafka offset to read */
  int64_t end;         /* export: the store's next offset;
                       ** import: the partition's high watermark (-1 unknown) */
  int64_t lag;         /* end - position (never below 0) */
  int64_t in_flight;   /* export: records the producer holds */
  const char *broker_error;  /* the last broker trouble, NULL once it works */
  int final;           /* the last call of the run */
} klevdb_kafka_status;

typedef struct klevdb_kafka_options {
  const char *brokers;        /* bootstrap servers, HOST:PORT[,...] */
  const char *topic;
  int32_t partition;
  int follow;                 /* go on with new messages until *stop */
  int force;                  /* export: append after records with no
                              ** klevdb headers (never another store's) */
  int64_t timeout_ms;         /* brokers must answer at start (<= 0: 10 s) */
  int64_t max_message_bytes;  /* export: <= 0: librdkafka's 1000000 */
  /* Extra librdkafka settings, "name=value", NULL-terminated; may be NULL. */
  const char *const *conf;
  /* Set by another thread (or a signal thread): 1 ends the run after a
  ** flush, 2 ends it at once. Read atomically; may be NULL. */
  const int *stop;
  void (*status)(void *arg, const klevdb_kafka_status *st);
  void *status_arg;
} klevdb_kafka_options;

/* Sends the store's messages, from where the partition's last record says
** this store stopped, to topic/partition, with an idempotent producer
** (acks=all, retried until delivered). Without follow, ends when what the
** store held at start is acknowledged. db may be read-only; the store's id
** file is created in dir if missing. *sent (may be NULL) gets the count. */
klevdb_kafka_err klevdb_kafka_export(klevdb *db, const char *dir,
                                     const klevdb_kafka_options *o,
                                     int64_t *sent, klevdb_kafka_error *err);

/* Publishes the partition's records into the store opened read-write at dir
** (created if missing), from where its position file says the last import
** stopped. Without follow, ends at the partition's end. */
klevdb_kafka_err klevdb_kafka_import(const char *dir,
                                     const klevdb_kafka_options *o,
                                     int64_t *imported, klevdb_kafka_error *err);

/* The store's id (32 hex digits and a NUL), created if missing. */
klevdb_kafka_err klevdb_kafka_store_id(const char *dir, char id[33],
                                       klevdb_kafka_error *err);

/* Name of an error class: "not_found", "unreachable", ... */
const char *klevdb_kafka_errname(klevdb_kafka_err code);

#ifdef __cplusplus
}
#endif
#endif
