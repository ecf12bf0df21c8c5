"""Many partitions, ListOffsets (earliest, latest, by timestamp, max timestamp) and DeleteRecords."""

from __future__ import annotations

import confluent_kafka
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

import kafka_wire
from helpers import (
    admin,
    consume,
    consumer,
    create_topic,
    error_code,
    produce,
    unique,
    wait_futures,
    watermarks,
    TIMEOUT,
)


def test_sixty_four_partitions(broker):
    topic = unique("p64")
    create_topic(broker.bootstrap, topic, partitions=64)

    metadata = admin(broker.bootstrap).list_topics(topic, timeout=TIMEOUT)
    partitions = metadata.topics[topic].partitions
    assert sorted(partitions) == list(range(64))
    assert all(p.error is None for p in partitions.values())
    assert {p.leader for p in partitions.values()} == {b.id for b in metadata.brokers.values()}

    records = [{"key": f"key-{i}".encode(), "value": f"value-{i}".encode()} for i in range(1024)]
    delivered = produce(broker.bootstrap, topic, records)
    placed = {m.key(): (m.partition(), m.offset()) for m in delivered}
    assert {partition for partition, _ in placed.values()} == set(range(64)), "keys missed partitions"

    messages = consume(broker.bootstrap, topic, count=1024, partitions=range(64))
    assert len(messages) == 1024
    assert {m.key(): (m.partition(), m.offset()) for m in messages} == placed
    assert all(m.value() == b"value-" + m.key()[4:] for m in messages)

    per_partition: dict[int, int] = {}
    for partition, _ in placed.values():
        per_partition[partition] = per_partition.get(partition, 0) + 1
    client = consumer(broker.bootstrap)
    try:
        for partition in (0, 17, 63):
            got = client.get_watermark_offsets(TopicPartition(topic, partition), timeout=TIMEOUT, cached=False)
            assert got == (0, per_partition[partition])
    finally:
        client.close()


def test_list_offsets_earliest_latest_and_by_timestamp(broker):
    topic = unique("offsets")
    create_topic(broker.bootstrap, topic)
    assert watermarks(broker.bootstrap, topic) == (0, 0)

    base = 1_700_000_000_000
    stamps = [base + i * 1000 for i in range(10)]
    stamps[5] = base + 100_000  # the largest timestamp is in the middle, not at the end
    produce(broker.bootstrap, topic, [{"value": b"v%d" % i, "timestamp": ts} for i, ts in enumerate(stamps)])

    assert watermarks(broker.bootstrap, topic) == (0, 10)

    client = consumer(broker.bootstrap)
    try:
        queries = {
            base - 1: 0,  # before everything: the first record
            base: 0,  # exact match
            base + 2500: 3,  # first record with timestamp >= target
            base + 3000: 3,
            base + 5500: 5,  # record 5 (base+100s) is the first at or after the target
            base + 9000: 5,
            base + 100_000: 5,
            base + 100_001: -1,  # nothing that late: offset -1
        }
        answers = {}
        for target in queries:  # one partition may appear only once per ListOffsets request
            [tp] = client.offsets_for_times([TopicPartition(topic, 0, target)], timeout=TIMEOUT)
            assert tp.error is None, (target, tp.error)
            answers[target] = tp.offset
        assert answers == queries
    finally:
        client.close()

    futures = admin(broker.bootstrap).list_offsets(
        {
            TopicPartition(topic, 0): OffsetSpec.max_timestamp(),
        },
        request_timeout=TIMEOUT,
    )
    info = list(wait_futures(futures).values())[0]
    assert error_code(info) is None, f"max timestamp lookup failed: {info}"
    assert (info.offset, info.timestamp) == (5, base + 100_000)

    for spec, expected in ((OffsetSpec.earliest(), 0), (OffsetSpec.latest(), 10)):
        futures = admin(broker.bootstrap).list_offsets({TopicPartition(topic, 0): spec}, request_timeout=TIMEOUT)
        info = list(wait_futures(futures).values())[0]
        assert error_code(info) is None, info
        assert info.offset == expected


def test_delete_records_moves_log_start(broker):
    assert hasattr(AdminClient, "delete_records"), (
        f"confluent-kafka {confluent_kafka.version()[0]} has no AdminClient.delete_records (needs >= 2.4)"
    )
    topic = unique("delete-records")
    create_topic(broker.bootstrap, topic, partitions=2)
    produce(broker.bootstrap, topic, [{"value": b"a%d" % i, "partition": 0} for i in range(10)])
    produce(broker.bootstrap, topic, [{"value": b"b%d" % i, "partition": 1} for i in range(3)])
    client = admin(broker.bootstrap)

    futures = client.delete_records([TopicPartition(topic, 0, 4)], request_timeout=TIMEOUT, operation_timeout=10)
    deleted = list(wait_futures(futures).values())[0]
    assert error_code(deleted) is None, f"delete_records failed: {deleted}"
    assert deleted.low_watermark == 4

    assert watermarks(broker.bootstrap, topic, 0) == (4, 10)
    assert watermarks(broker.bootstrap, topic, 1) == (0, 3), "the other partition was touched"

    messages = consume(broker.bootstrap, topic, count=6, offset=OFFSET_BEGINNING)
    assert [(m.offset(), m.value()) for m in messages] == [(i, b"a%d" % i) for i in range(4, 10)]

    # Fetching below the log start is out of range (the consumer is set to auto.offset.reset=error).
    try:
        consume(broker.bootstrap, topic, count=1, offset=2, timeout=5)
    except AssertionError as error:
        assert "out of range" in str(error).lower() or "OFFSET_OUT_OF_RANGE" in str(error), error
    else:
        raise AssertionError("fetching offset 2 below log start 4 did not fail")

    # Deleting past the high watermark is refused; OFFSET_END deletes everything.
    futures = client.delete_records([TopicPartition(topic, 0, 11)], request_timeout=TIMEOUT)
    outcome = list(wait_futures(futures).values())[0]
    assert error_code(outcome) == KafkaError.OFFSET_OUT_OF_RANGE, outcome

    futures = client.delete_records([TopicPartition(topic, 0, OFFSET_END)], request_timeout=TIMEOUT)
    deleted = list(wait_futures(futures).values())[0]
    assert error_code(deleted) is None, deleted
    assert deleted.low_watermark == 10
    assert watermarks(broker.bootstrap, topic, 0) == (10, 10)

    # New records continue the offsets.
    delivered = produce(broker.bootstrap, topic, [{"value": b"after", "partition": 0}])
    assert delivered[0].offset() == 10
    messages = consume(broker.bootstrap, topic, count=1)
    assert [(m.offset(), m.value()) for m in messages] == [(10, b"after")]


def test_offset_for_leader_epoch(broker):
    """What a consumer asks after a leader change: the end offset of a leader epoch. Skiff has one
    epoch per partition, so its end is the log end offset."""
    topic = unique("epochs")
    create_topic(broker.bootstrap, topic, partitions=2)
    produce(broker.bootstrap, topic, [{"value": b"x%d" % i, "partition": 0} for i in range(7)])

    metadata = admin(broker.bootstrap).list_topics(topic, timeout=TIMEOUT)
    assert metadata.topics[topic].partitions[0].error is None

    request = kafka_wire.offset_for_leader_epoch_v3_request(
        topic, [(0, -1, 0), (1, -1, 0), (9, -1, 0)], correlation_id=77
    )
    correlation_id, results = kafka_wire.parse_offset_for_leader_epoch_v3(
        kafka_wire.roundtrip(broker.port, request)
    )
    assert correlation_id == 77
    assert results[(topic, 0)] == (kafka_wire.ERROR_NONE, 0, 7)
    assert results[(topic, 1)] == (kafka_wire.ERROR_NONE, 0, 0)
    assert results[(topic, 9)][0] == kafka_wire.ERROR_UNKNOWN_TOPIC_OR_PARTITION
