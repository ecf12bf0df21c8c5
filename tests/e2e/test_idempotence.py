"""Idempotent producers: InitProducerId hands out ids, and sequence checks made inside the
storage append keep retried batches from being stored twice — also across a broker killed with
kill -9 mid-stream, since the sequence state is written in the same transaction as the records."""

from __future__ import annotations

import time
from collections import defaultdict

from confluent_kafka import TopicPartition
from kafka import KafkaProducer

from helpers import TIMEOUT, consume, consumer, create_topic, poll_records, producer, unique, watermarks


def by_partition(messages) -> dict[int, list[bytes]]:
    grouped: dict[int, list[bytes]] = defaultdict(list)
    for m in messages:
        grouped[m.partition()].append(m.value())
    return grouped


def test_idempotent_producer_delivers_each_record_once_in_order(broker):
    topic = unique("idempotent")
    create_topic(broker.bootstrap, topic, partitions=3)
    client = producer(broker.bootstrap, **{"enable.idempotence": True, "linger.ms": 2})
    sent: dict[int, list[bytes]] = defaultdict(list)
    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)

    for i in range(3000):
        value = b"r%05d" % i
        sent[i % 3].append(value)
        while True:
            try:
                client.produce(topic, value=value, partition=i % 3, on_delivery=on_delivery)
                break
            except BufferError:
                client.poll(0.05)
        client.poll(0)
    assert client.flush(TIMEOUT) == 0
    assert errors == []
    messages = consume(broker.bootstrap, topic, count=3000, partitions=(0, 1, 2))
    assert by_partition(messages) == sent


def test_kafka_python_default_producer_is_idempotent(broker):
    """kafka-python 3 turns idempotence on by default: it needs InitProducerId."""
    topic = unique("kafka-python-idem")
    create_topic(broker.bootstrap, topic)
    client = KafkaProducer(bootstrap_servers=[broker.bootstrap], request_timeout_ms=10000, max_block_ms=10000)
    try:
        offsets = [client.send(topic, value=b"v%d" % i).get(timeout=10).offset for i in range(5)]
    finally:
        client.close(timeout=5)
    assert offsets == [0, 1, 2, 3, 4]
    assert [m.value() for m in consume(broker.bootstrap, topic, count=5)] == [b"v%d" % i for i in range(5)]


def test_idempotent_stream_survives_kill_9_without_duplicates_or_gaps(sqlite_broker):
    broker = sqlite_broker
    topic = unique("idem-kill9")
    create_topic(broker.bootstrap, topic, partitions=2)
    acked = 0
    errors = []

    def on_delivery(err, msg):
        nonlocal acked
        if err is None:
            acked += 1
        else:
            errors.append(err)

    client = producer(
        broker.bootstrap,
        **{
            "enable.idempotence": True,
            "linger.ms": 2,
            "batch.num.messages": 50,
            "message.timeout.ms": 60000,
            "retry.backoff.ms": 100,
            "reconnect.backoff.ms": 50,
            "reconnect.backoff.max.ms": 500,
        },
    )
    sent: dict[int, list[bytes]] = defaultdict(list)

    def send(count: int) -> None:
        for _ in range(count):
            index = sum(len(v) for v in sent.values())
            value = b"v%06d" % index
            while True:
                try:
                    client.produce(topic, value=value, partition=index % 2, on_delivery=on_delivery)
                    break
                except BufferError:
                    client.poll(0.05)
            sent[index % 2].append(value)
            client.poll(0)

    deadline = time.monotonic() + 30
    while acked < 500:
        assert time.monotonic() < deadline, f"only {acked} acks in 30s"
        send(20)
        client.poll(0.002)
    broker.kill9()
    send(300)
    client.poll(0.3)
    broker.start()
    send(200)
    assert client.flush(60) == 0, "producer did not finish after the broker came back"
    assert errors == [], errors[:3]

    total = sum(len(v) for v in sent.values())
    highs = {p: watermarks(broker.bootstrap, topic, p)[1] for p in (0, 1)}
    assert sum(highs.values()) == total, f"{sum(highs.values())} stored for {total} sent: duplicates or losses"
    reader = consumer(broker.bootstrap)
    try:
        reader.assign([TopicPartition(topic, p, 0) for p in (0, 1)])
        messages = poll_records(reader, total, {(topic, 0), (topic, 1)}, timeout=30)
    finally:
        reader.close()
    assert by_partition(messages) == sent, "each record exactly once, in the order produced"
