"""kafka-python smoke test: a pure-Python client that negotiates ApiVersions itself (falling back
when the broker answers UNSUPPORTED_VERSION) and encodes its own requests."""

from __future__ import annotations

from kafka import KafkaProducer

from helpers import create_topic, kafka_python_records, unique


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

    records = kafka_python_records(broker.bootstrap, topic, 4)
    assert [(r.offset, r.key, r.value) for r in records] == [
        (0, b"k0", b"v0"),
        (1, b"k1", b"v1"),
        (2, b"k2", b"v2"),
        (3, b"k3", b"compressed" * 50),
    ]
    assert [list(r.headers) for r in records[:3]] == [[("h", b"0")], [("h", b"1")], [("h", b"2")]]
