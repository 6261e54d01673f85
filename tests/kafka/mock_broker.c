/*
** mock_broker.c - runs librdkafka's mock cluster for the end-to-end tests:
** prints its bootstrap servers on stdout, then takes commands on stdin
** (faults, topics) until "quit" or the end of stdin.
**
**   mock_broker [BROKERS] [TOPIC:PARTITIONS...]
**   commands: topic NAME PARTITIONS | down ID | up ID | leader TOPIC P ID
**             | produce_errors N CODE | quit     (each answered "ok")
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

static int add_topic(rd_kafka_mock_cluster_t *mc, const char *name, int parts) {
  rd_kafka_resp_err_t rc = rd_kafka_mock_topic_create(mc, name, parts, 1);
  if (rc) fprintf(stderr, "mock_broker: topic %s: %s\n", name, rd_kafka_err2str(rc));
  return rc ? -1 : 0;
}

int main(int argc, char **argv) {
  int brokers = argc > 1 ? atoi(argv[1]) : 3;
  char errstr[256];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "0", NULL, 0);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  if (!rk) {
    fprintf(stderr, "mock_broker: %s\n", errstr);
    return 1;
  }
  rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers > 0 ? brokers : 3);
  if (!mc) {
    fprintf(stderr, "mock_broker: no mock cluster\n");
    return 1;
  }
  for (int i = 2; i < argc; i++) {
    char name[256];
    int parts = 1;
    if (sscanf(argv[i], "%255[^:]:%d", name, &parts) < 1 || add_topic(mc, name, parts)) return 1;
  }
  printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
  fflush(stdout);
  char line[512];
  while (fgets(line, sizeof(line), stdin)) {
    char a[256], cmd[32];
    int x = 0, y = 0, z = 0, ok = 1;
    if (sscanf(line, "%31s", cmd) != 1) continue;
    if (!strcmp(cmd, "quit")) break;
    if (!strcmp(cmd, "topic") && sscanf(line, "%*s %255s %d", a, &x) == 2)
      ok = !add_topic(mc, a, x);
    else if (!strcmp(cmd, "down") && sscanf(line, "%*s %d", &x) == 1)
      ok = !rd_kafka_mock_broker_set_down(mc, x);
    else if (!strcmp(cmd, "up") && sscanf(line, "%*s %d", &x) == 1)
      ok = !rd_kafka_mock_broker_set_up(mc, x);
    else if (!strcmp(cmd, "leader") && sscanf(line, "%*s %255s %d %d", a, &y, &z) == 3)
      ok = !rd_kafka_mock_partition_set_leader(mc, a, y, z);
    else if (!strcmp(cmd, "produce_errors") && sscanf(line, "%*s %d %d", &x, &y) == 2) {
      for (int i = 0; i < x; i++)
        rd_kafka_mock_push_request_errors(mc, 0 /* Produce */, 1, (rd_kafka_resp_err_t)y);
    } else
      ok = 0;
    printf(ok ? "ok\n" : "error\n");
    fflush(stdout);
  }
  rd_kafka_mock_cluster_destroy(mc);
  rd_kafka_destroy(rk);
  return 0;
}
