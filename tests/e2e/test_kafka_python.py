"""kafka-python smoke test: a pure-Python client that negotiates ApiVersions itself (falling back
when the broker answers UNSUPPORTED_VERSION) and encodes its own requests."""

from __future__ import annotations

import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from helpers import create_topic, unique


def test_kafka_python_produce_and_consume(broker):
    topic = unique("kafka-python")
    create_topic(broker.bootstrap, topic)

    # The non-idempotent path (idempotence is covered in test_idempotence.py).
    producer = KafkaProducer(
        bootstrap_servers=[broker.bootstrap],
        enable_idempotence=False,
        acks="all",
        compression_type="gzip",
        request_timeout_ms=10000,
        max_block_ms=10000,
        bootstrap_timeout_ms=10000,
    )
    try:
        sent = []
        for i in range(3):
            future = producer.send(topic, key=b"k%d" % i, value=b"v%d" % i, headers=[("h", b"%d" % i)])
            sent.append(future.get(timeout=10))
        producer.send(topic, key=b"k3", value=b"compressed" * 50).get(timeout=10)
    finally:
        producer.close(timeout=5)
    assert [(m.partition, m.offset) for m in sent] == [(0, 0), (0, 1), (0, 2)]

    consumer = KafkaConsumer(
        bootstrap_servers=[broker.bootstrap],
        group_id=None,
        enable_auto_commit=False,
        request_timeout_ms=10000,
        fetch_max_wait_ms=100,
    )
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        records = []
        deadline = time.monotonic() + 15
        while len(records) < 4 and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
    finally:
        consumer.close()
    assert [(r.offset, r.key, r.value) for r in records] == [
        (0, b"k0", b"v0"),
        (1, b"k1", b"v1"),
        (2, b"k2", b"v2"),
        (3, b"k3", b"compressed" * 50),
    ]
    assert [list(r.headers) for r in records[:3]] == [[("h", b"0")], [("h", b"1")], [("h", b"2")]]
