/* A librdkafka mock cluster (Kafka-compatible, written by nobody here) for the proxy tests.
 *
 * Usage: mock_cluster BROKERS TOPIC PARTITIONS
 * Starts BROKERS mock brokers (node ids 1..BROKERS), creates TOPIC with PARTITIONS partitions,
 * makes broker (p % BROKERS) + 1 the leader of partition p, prints the bootstrap list on one line
 * and runs until its stdin closes. The mock answers Produce and Fetch only on a partition's
 * leader, so a client that reaches the wrong broker gets NOT_LEADER_OR_FOLLOWER. */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s BROKERS TOPIC PARTITIONS\n", argv[0]);
        return 2;
    }
    int brokers = atoi(argv[1]);
    int partitions = atoi(argv[3]);
    char error[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof(error));
    if (!rk) {
        fprintf(stderr, "rd_kafka_new: %s\n", error);
        return 1;
    }
    rd_kafka_mock_cluster_t *cluster = rd_kafka_mock_cluster_new(rk, brokers);
    if (!cluster) {
        fprintf(stderr, "cannot create the mock cluster\n");
        return 1;
    }
    rd_kafka_mock_topic_create(cluster, argv[2], partitions, 1);
    for (int p = 0; p < partitions; p++)
        rd_kafka_mock_partition_set_leader(cluster, argv[2], p, (p % brokers) + 1);
    printf("%s\n", rd_kafka_mock_cluster_bootstraps(cluster));
    fflush(stdout);
    while (getchar() != EOF) {
    }
    rd_kafka_mock_cluster_destroy(cluster);
    rd_kafka_destroy(rk);
    return 0;
}
