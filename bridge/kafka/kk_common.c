/*
** kk_common.c - pieces both directions use: errors, librdkafka settings,
** the start-up check of the partition, header values and the store's id.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "kk_int.h"

klevdb_kafka_err kk_fail(klevdb_kafka_error *err, klevdb_kafka_err code,
                         const char *fmt, ...) {
  if (!err) return code;
  va_list ap;
  va_start(ap, fmt);
  int n = snprintf(err->msg, sizeof(err->msg), "klevdb: ");
  vsnprintf(err->msg + n, sizeof(err->msg) - (size_t)n, fmt, ap);
  va_end(ap);
  err->code = code;
  err->store_code = KLEVDB_OK;
  return code;
}

klevdb_kafka_err kk_store_fail(klevdb_kafka_error *err, klevdb_err rc,
                               const char *what, const char *msg) {
  if (!strncmp(msg, "klevdb: ", 8)) msg += 8;
  kk_fail(err, KLEVDB_KAFKA_ESTORE, "%s: %s", what, msg);
  if (err) err->store_code = rc;
  return KLEVDB_KAFKA_ESTORE;
}

int64_t kk_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int kk_stop_level(const klevdb_kafka_options *o) {
  return o->stop ? __atomic_load_n(o->stop, __ATOMIC_SEQ_CST) : 0;
}

int64_t kk_timeout(const klevdb_kafka_options *o) {
  return o->timeout_ms > 0 ? o->timeout_ms : KK_DEFAULT_TIMEOUT_MS;
}

const char *klevdb_kafka_errname(klevdb_kafka_err code) {
  switch (code) {
  case KLEVDB_KAFKA_OK: return "ok";
  case KLEVDB_KAFKA_ENOTFOUND: return "not_found";
  case KLEVDB_KAFKA_EUNREACHABLE: return "unreachable";
  case KLEVDB_KAFKA_EFOREIGN: return "foreign";
  case KLEVDB_KAFKA_ETOOBIG: return "too_big";
  case KLEVDB_KAFKA_ELOCKED: return "locked";
  case KLEVDB_KAFKA_EDELIVERY: return "delivery";
  case KLEVDB_KAFKA_ELOST: return "lost";
  case KLEVDB_KAFKA_ESTORE: return "store";
  case KLEVDB_KAFKA_EKAFKA: return "kafka";
  case KLEVDB_KAFKA_EINVAL: return "invalid";
  case KLEVDB_KAFKA_EINTERRUPTED: return "interrupted";
  }
  return "unknown";
}

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value,
                    klevdb_kafka_error *err) {
  char msg[256];
  if (rd_kafka_conf_set(conf, name, value, msg, sizeof(msg)) == RD_KAFKA_CONF_OK) return 0;
  kk_fail(err, KLEVDB_KAFKA_EINVAL, "kafka setting %s=%s: %s", name, value, msg);
  return -1;
}

rd_kafka_conf_t *kk_conf(const klevdb_kafka_options *o, klevdb_kafka_error *err, ...) {
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  va_list ap;
  va_start(ap, err);
  int bad = conf_set(conf, "bootstrap.servers", o->brokers, err) ||
            /* A typo in a topic name must not make a topic. */
            conf_set(conf, "allow.auto.create.topics", "false", err) ||
            /* librdkafka's log lines would repeat what status reports. */
            conf_set(conf, "log_level", "0", err);
  for (const char *name; !bad && (name = va_arg(ap, const char *));)
    bad = conf_set(conf, name, va_arg(ap, const char *), err);
  va_end(ap);
  for (const char *const *kv = o->conf; !bad && kv && *kv; kv++) {
    const char *eq = strchr(*kv, '=');
    char name[128];
    if (!eq || eq == *kv || (size_t)(eq - *kv) >= sizeof(name)) {
      kk_fail(err, KLEVDB_KAFKA_EINVAL, "kafka setting '%s' is not NAME=VALUE", *kv);
      bad = 1;
      break;
    }
    memcpy(name, *kv, (size_t)(eq - *kv));
    name[eq - *kv] = 0;
    bad = conf_set(conf, name, eq + 1, err);
  }
  if (bad) {
    rd_kafka_conf_destroy(conf);
    return NULL;
  }
  return conf;
}

rd_kafka_t *kk_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, klevdb_kafka_error *err) {
  char msg[256];
  rd_kafka_t *rk = rd_kafka_new(type, conf, msg, sizeof(msg));
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    kk_fail(err, KLEVDB_KAFKA_EKAFKA, "kafka client: %s", msg);
  }
  return rk;
}

klevdb_kafka_err kk_check_partition(rd_kafka_t *rk, const klevdb_kafka_options *o,
                                    klevdb_kafka_error *err) {
  const struct rd_kafka_metadata *md = NULL;
  int64_t deadline = kk_now_ms() + kk_timeout(o);
  rd_kafka_resp_err_t rc;
  /* Every topic is asked for, not this one: a request naming a topic makes
  ** brokers that auto-create topics (and librdkafka's mock) create it. A
  ** broker that refuses connections fails the request at once: ask again
  ** until the timeout, as the brokers may be starting. */
  for (;;) {
    int64_t left = deadline - kk_now_ms();
    rc = rd_kafka_metadata(rk, 1, NULL, &md, (int)(left > 0 ? left : 1));
    if (!rc || kk_now_ms() >= deadline || kk_stop_level(o)) break;
    struct timespec ts = {0, 100 * 1000000};
    nanosleep(&ts, NULL);
  }
  if (rc)
    return kk_fail(err, KLEVDB_KAFKA_EUNREACHABLE,
                   "kafka brokers %s: no answer within %lld ms (%s)", o->brokers,
                   (long long)kk_timeout(o), rd_kafka_err2str(rc));
  const struct rd_kafka_metadata_topic *t = NULL;
  for (int i = 0; i < md->topic_cnt && !t; i++)
    if (!strcmp(md->topics[i].topic, o->topic)) t = &md->topics[i];
  klevdb_kafka_err out = KLEVDB_KAFKA_OK;
  if (!t || t->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
    out = kk_fail(err, KLEVDB_KAFKA_ENOTFOUND, "kafka topic '%s' does not exist", o->topic);
  else if (t->err)
    out = kk_fail(err, KLEVDB_KAFKA_EKAFKA, "kafka topic '%s': %s", o->topic,
                  rd_kafka_err2str(t->err));
  else if (o->partition < 0 || o->partition >= t->partition_cnt)
    out = kk_fail(err, KLEVDB_KAFKA_ENOTFOUND,
                  "kafka topic '%s' has no partition %d (it has %d)", o->topic,
                  (int)o->partition, t->partition_cnt);
  rd_kafka_metadata_destroy(md);
  return out;
}

int kk_header_int(rd_kafka_headers_t *h, const char *name, int64_t *out) {
  const void *v;
  size_t n;
  if (!h || rd_kafka_header_get_last(h, name, &v, &n) || !v || n == 0 || n > 20) return -1;
  const char *s = v;
  int neg = s[0] == '-';
  if ((size_t)neg == n) return -1;
  int64_t x = 0;
  for (size_t i = (size_t)neg; i < n; i++) {
    if (s[i] < '0' || s[i] > '9' || x > (INT64_MAX - (s[i] - '0')) / 10) return -1;
    x = x * 10 + (s[i] - '0');
  }
  *out = neg ? -x : x;
  return 0;
}

/* ---- the store's id ---- */

static int read_id(const char *path, char id[33]) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  char line[64] = {0};
  int ok = fgets(line, sizeof(line), f) != NULL;
  fclose(f);
  size_t n = ok ? strspn(line, "0123456789abcdef") : 0;
  if (n != 32) {
    errno = EINVAL;
    return -1;
  }
  memcpy(id, line, 32);
  id[32] = 0;
  return 0;
}

klevdb_kafka_err klevdb_kafka_store_id(const char *dir, char id[33],
                                       klevdb_kafka_error *err) {
  char path[4096], tmp[4160];
  snprintf(path, sizeof(path), "%s/%s", dir, KLEVDB_KAFKA_ID_FILE);
  if (read_id(path, id) == 0) return KLEVDB_KAFKA_OK;
  if (errno != ENOENT)
    return kk_fail(err, KLEVDB_KAFKA_EINVAL, "%s: %s (expected 32 hex digits)", path,
                   strerror(errno));
  unsigned char r[16];
  if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
    return kk_fail(err, KLEVDB_KAFKA_EKAFKA, "random store id: %s", strerror(errno));
  char text[34];
  for (int i = 0; i < 16; i++) snprintf(text + 2 * i, 3, "%02x", r[i]);
  text[32] = '\n';
  /* Written whole under another name, then linked: two exporters starting
  ** at once agree on whichever id was linked first. */
  snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return kk_fail(err, KLEVDB_KAFKA_EKAFKA, "%s: %s", tmp, strerror(errno));
  int bad = write(fd, text, 33) != 33 || fsync(fd) < 0;
  int e = errno;
  close(fd);
  if (!bad && link(tmp, path) < 0 && errno != EEXIST) {
    bad = 1;
    e = errno;
  }
  unlink(tmp);
  if (bad) return kk_fail(err, KLEVDB_KAFKA_EKAFKA, "%s: %s", path, strerror(e));
  /* Make the name durable before any record carries the id. */
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  if (read_id(path, id) < 0)
    return kk_fail(err, KLEVDB_KAFKA_EINVAL, "%s: %s", path, strerror(errno));
  return KLEVDB_KAFKA_OK;
}
