"""Durability on the engines that persist (SQLite, Postgres, S3): a restart keeps everything, and
kill -9 during an acks=all stream loses no acknowledged record. Brokers hold no state, so the new
process must serve exactly what the old one acknowledged."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import ConfigResource, ResourceType

from helpers import (
    TIMEOUT,
    admin,
    consume,
    consumer,
    create_topic,
    poll_records,
    produce,
    producer,
    record_tuples,
    topic_partitions,
    unique,
    wait_futures,
    watermarks,
)

DURABLE_ENGINES = ["sqlite", "postgres", "s3"]


@pytest.fixture(params=DURABLE_ENGINES)
def durable_broker(request, broker_factory):
    return broker_factory(request.param)


def test_data_survives_restart(durable_broker):
    broker = durable_broker
    topic = unique("restart")
    create_topic(broker.bootstrap, topic, partitions=2, config={"retention.ms": "7200000"})
    records = [
        {
            "key": f"k{i}".encode(),
            "value": f"v{i}".encode(),
            "partition": i % 2,
            "headers": [("h", b"1"), ("h", b"2")] if i % 10 == 0 else None,
        }
        for i in range(200)
    ]
    produce(broker.bootstrap, topic, [{k: v for k, v in r.items() if v is not None} for r in records])
    before = record_tuples(consume(broker.bootstrap, topic, count=200, partitions=(0, 1)))
    assert len(before) == 200

    # A consumer stays connected across the restart: the broker closes its connection first
    # (server-side TIME_WAIT on the port), so the new process must still bind at once, and the
    # client must carry on against it.
    follower = consumer(broker.bootstrap)
    follower.assign([TopicPartition(topic, 1, 100)])
    assert poll_records(follower, None, {(topic, 1)}) == []

    assert broker.stop() == 0, "graceful shutdown (SIGTERM) did not exit with status 0"
    broker.start()

    assert topic_partitions(broker.bootstrap, topic) == 2
    futures = admin(broker.bootstrap).describe_configs([ConfigResource(ResourceType.TOPIC, topic)], request_timeout=TIMEOUT)
    entries = list(wait_futures(futures).values())[0]
    assert entries["retention.ms"].value == "7200000"
    assert watermarks(broker.bootstrap, topic, 0) == (0, 100)
    assert watermarks(broker.bootstrap, topic, 1) == (0, 100)

    after = record_tuples(consume(broker.bootstrap, topic, count=200, partitions=(0, 1)))
    assert sorted(after, key=lambda r: (r[0], r[1])) == sorted(before, key=lambda r: (r[0], r[1]))
    assert [r[3] for r in after if r[0] == 0] == [f"v{i}".encode() for i in range(0, 200, 2)]

    delivered = produce(
        broker.bootstrap, topic, [{"value": b"next", "partition": 0}, {"value": b"next", "partition": 1}]
    )
    assert [(m.partition(), m.offset()) for m in delivered] == [(0, 100), (1, 100)]
    try:
        messages = poll_records(follower, 1, {(topic, 1)}, timeout=20)
    finally:
        follower.close()
    assert [(m.partition(), m.offset(), m.value()) for m in messages] == [(1, 100, b"next")]


@pytest.mark.parametrize("shared", DURABLE_ENGINES)
def test_two_brokers_share_one_storage(broker_factory, shared):
    """Brokers hold no state: two processes on one SQLite file, Postgres database or bucket are one
    cluster. Concurrent appends through both leave no gap and no overlap, and each sees the
    other's topics."""
    first = broker_factory(shared)
    second = broker_factory(shared, storage=first.storage)

    topic = unique("shared")
    create_topic(first.bootstrap, topic)
    assert topic_partitions(second.bootstrap, topic) == 1, "the second broker does not see the topic"

    acked: dict[bytes, int] = {}
    producers = [producer(b.bootstrap, **{"linger.ms": 1, "batch.num.messages": 10}) for b in (first, second)]

    def on_delivery(err, msg):
        assert err is None, err
        acked[msg.value()] = msg.offset()

    for i in range(300):
        for index, client in enumerate(producers):
            client.produce(topic, value=b"b%d-%04d" % (index, i), partition=0, on_delivery=on_delivery)
            client.poll(0)
    for client in producers:
        assert client.flush(TIMEOUT) == 0
    assert len(acked) == 600
    assert sorted(acked.values()) == list(range(600)), "offsets overlap or have gaps"

    for reader_broker in (first, second):
        messages = consume(reader_broker.bootstrap, topic, count=600)
        assert {m.value(): m.offset() for m in messages} == acked


def test_kill_9_loses_no_acknowledged_record(durable_broker):
    broker = durable_broker
    topic = unique("kill9")
    create_topic(broker.bootstrap, topic, partitions=2)

    acked: dict[bytes, tuple[int, int]] = {}
    failed: list = []

    def on_delivery(err, msg):
        if err is None:
            acked[msg.value()] = (msg.partition(), msg.offset())
        else:
            failed.append((msg.value(), err))

    client = producer(
        broker.bootstrap,
        **{
            "acks": "all",
            "linger.ms": 2,
            "batch.num.messages": 50,
            "message.timeout.ms": 20000,
            "retry.backoff.ms": 100,
            "reconnect.backoff.ms": 50,
            "reconnect.backoff.max.ms": 500,
        },
    )
    sent = 0

    def send(count: int) -> None:
        nonlocal sent
        for _ in range(count):
            while True:
                try:
                    client.produce(topic, value=b"v%06d" % sent, on_delivery=on_delivery)
                    break
                except BufferError:
                    client.poll(0.05)
            sent += 1
            client.poll(0)

    # Stream until a good number of acks came back, then kill the broker mid-stream.
    deadline = time.monotonic() + 30
    while len(acked) < 500:
        assert time.monotonic() < deadline, f"only {len(acked)} acks in 30s ({len(failed)} failures)"
        send(20)
        client.poll(0.002)
    broker.kill9()
    acked_at_kill = len(acked)
    send(300)  # these queue up or sit in flight while the broker is gone
    client.poll(0.3)

    broker.start()  # same port, same file
    send(200)
    assert client.flush(40) == 0, "producer did not finish after the broker came back"
    assert acked_at_kill >= 500
    print(f"sent {sent}, acknowledged {acked_at_kill} before the kill and {len(acked)} in all, {len(failed)} failed")
    assert len(acked) + len(failed) == sent

    # Everything acknowledged, before and after the kill, is there at the acknowledged offset.
    highs = {p: watermarks(broker.bootstrap, topic, p)[1] for p in (0, 1)}
    reader = consumer(broker.bootstrap)
    try:
        reader.assign([TopicPartition(topic, p, 0) for p in (0, 1)])
        messages = poll_records(reader, sum(highs.values()), {(topic, 0), (topic, 1)}, timeout=30)
    finally:
        reader.close()
    stored = {(m.partition(), m.offset()): m.value() for m in messages}
    assert len(stored) == len(messages), "the same offset was delivered twice"
    for p in (0, 1):
        assert sorted(o for (q, o) in stored if q == p) == list(range(highs[p])), f"gap in partition {p}"
    lost = {v: at for v, at in acked.items() if stored.get(at) != v}
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged records are missing, e.g. {list(lost.items())[:5]}"
    assert set(acked) <= set(stored.values())
