"""kafka-python in a consumer group: a second client implementation of the group protocol (its own
JoinGroup/SyncGroup versions, heartbeat thread and assignor), sharing partitions with librdkafka
members of the same group."""

from __future__ import annotations

import collections
import time

from kafka import KafkaConsumer
from kafka.coordinator.assignors.range import RangePartitionAssignor

from group_helpers import GROUP_BROKER_ARGS, Member, consumed
from helpers import create_topic, produce, unique

PARTITIONS = 4


def kafka_python_member(bootstrap: str, group: str, topic: str) -> KafkaConsumer:
    consumer = KafkaConsumer(
        bootstrap_servers=[bootstrap],
        group_id=group,
        client_id="kafka-python",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        partition_assignment_strategy=[RangePartitionAssignor],
        session_timeout_ms=10000,
        heartbeat_interval_ms=500,
        request_timeout_ms=30000,
        fetch_max_wait_ms=100,
    )
    consumer.subscribe([topic])
    return consumer


def test_kafka_python_and_librdkafka_share_a_group(broker_factory):
    broker = broker_factory("sqlite", *GROUP_BROKER_ARGS)
    topic, group = unique("mixed"), unique("group")
    create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    python_member = kafka_python_member(broker.bootstrap, group, topic)
    rdkafka_member = Member(broker.bootstrap, group, topic, "rdkafka")
    python_records: list = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            python_member.poll(timeout_ms=50)
            rdkafka_member.poll_once()
            python_owned = {tp.partition for tp in python_member.assignment()}
            rdkafka_owned = rdkafka_member.assigned()
            shared = python_owned and rdkafka_owned and not python_owned & rdkafka_owned
            if shared and python_owned | rdkafka_owned == set(range(PARTITIONS)):
                break
        else:
            raise AssertionError("the two clients never shared the partitions")
        records = [{"value": f"m{i}".encode(), "partition": i % PARTITIONS} for i in range(200)]
        produce(broker.bootstrap, topic, records)
        deadline = time.monotonic() + 30
        while len(python_records) + len(consumed([rdkafka_member])) < 200 and time.monotonic() < deadline:
            for batch in python_member.poll(timeout_ms=50).values():
                python_records.extend(batch)
            rdkafka_member.poll_once()
        values = [r.value for r in python_records] + [value for _, _, value in consumed([rdkafka_member])]
        counts = collections.Counter(values)
        assert sorted(counts) == sorted(r["value"] for r in records)
        assert max(counts.values()) == 1
        assert {r.partition for r in python_records} == {tp.partition for tp in python_member.assignment()}
    finally:
        python_member.close()
        rdkafka_member.close()
