"""Kafka strings are length-prefixed UTF-8, so they may hold NUL (U+0000), which C strings and
Postgres `text` cannot. Offset commit metadata, group ids and record header keys come back byte
for byte on every engine, read by a second client so the answer comes from storage."""

from __future__ import annotations

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from helpers import create_topic, kafka_python_records, unique

METADATA = "Hello\0world!"


def consumer(broker, group_id: str) -> KafkaConsumer:
    return KafkaConsumer(
        bootstrap_servers=[broker.bootstrap],
        group_id=group_id,
        enable_auto_commit=False,
        request_timeout_ms=10000,
        fetch_max_wait_ms=100,
    )


def commit_and_read_back(broker, group_id: str, topic: str) -> OffsetAndMetadata:
    """Commits offset 1 with METADATA from one consumer; returns what a second one reads."""
    partition = TopicPartition(topic, 0)
    committer = consumer(broker, group_id)
    try:
        committer.assign([partition])
        committer.commit({partition: OffsetAndMetadata(1, METADATA, -1)})
    finally:
        committer.close()
    reader = consumer(broker, group_id)
    try:
        return reader.committed(partition, metadata=True)
    finally:
        reader.close()


def test_offset_metadata_with_nul_round_trips(broker):
    topic = unique("nul-metadata")
    create_topic(broker.bootstrap, topic)
    committed = commit_and_read_back(broker, unique("group"), topic)
    assert committed.offset == 1
    assert committed.metadata == METADATA
    assert committed.metadata.encode() == b"Hello\x00world!"


def test_group_id_with_nul_is_its_own_group(broker):
    topic = unique("nul-group")
    create_topic(broker.bootstrap, topic)
    plain = unique("group")
    committed = commit_and_read_back(broker, plain + "\0x", topic)
    assert (committed.offset, committed.metadata) == (1, METADATA)
    reader = consumer(broker, plain)
    try:
        assert reader.committed(TopicPartition(topic, 0)) is None, "the group without NUL is another"
    finally:
        reader.close()


def test_header_key_with_nul_round_trips(broker):
    topic = unique("nul-header")
    create_topic(broker.bootstrap, topic)
    producer = KafkaProducer(
        bootstrap_servers=[broker.bootstrap],
        acks="all",
        request_timeout_ms=10000,
        max_block_ms=10000,
    )
    headers = [("trace\0id", b"1"), ("\0", b"2"), ("plain", b"3")]
    try:
        producer.send(topic, key=b"k", value=b"v", headers=headers).get(timeout=10)
    finally:
        producer.close(timeout=5)

    # Read back with kafka-python too: librdkafka hands header names out as C strings.
    records = kafka_python_records(broker.bootstrap, topic, 1)
    assert [list(record.headers) for record in records] == [headers]
