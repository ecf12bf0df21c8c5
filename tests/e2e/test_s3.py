"""The s3:// engine's own promises, on a real S3-compatible server (moto_server, started by
scripts/services.sh): any number of brokers on one bucket append to one partition without gaps
or overlaps, and a broker killed in the middle of a flush leaves the partition consistent (every
acknowledged record readable exactly once, nothing a consumer cannot get past)."""

from __future__ import annotations

import threading
import time

from confluent_kafka import TopicPartition

from conftest import s3_storage
from helpers import TIMEOUT, consume, consumer, create_topic, poll_records, producer, unique, watermarks


def stored_records(bootstrap: str, topic: str) -> dict[int, bytes]:
    """offset -> value of every record of partition 0, read to the end."""
    high = watermarks(bootstrap, topic, 0)[1]
    messages = consume(bootstrap, topic, count=high, timeout=60)
    stored = {m.offset(): m.value() for m in messages}
    assert len(stored) == len(messages), "the same offset was delivered twice"
    return stored


def test_three_brokers_append_to_one_partition(broker_factory):
    storage = s3_storage("?flush_ms=3")
    brokers = [broker_factory("s3", storage=storage) for _ in range(3)]
    topic = unique("s3-three")
    create_topic(brokers[0].bootstrap, topic)

    acked: dict[bytes, int] = {}
    failed: list = []
    lock = threading.Lock()

    def run(index: int, broker) -> None:
        client = producer(broker.bootstrap, **{"linger.ms": 2, "batch.num.messages": 20})

        def on_delivery(err, msg):
            with lock:
                if err is None:
                    acked[msg.value()] = msg.offset()
                else:
                    failed.append(err)

        for i in range(400):
            client.produce(topic, value=b"b%d-%04d" % (index, i), partition=0, on_delivery=on_delivery)
            client.poll(0)
        assert client.flush(TIMEOUT) == 0

    threads = [threading.Thread(target=run, args=(i, b)) for i, b in enumerate(brokers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failed, failed[:3]
    assert len(acked) == 1200
    assert sorted(acked.values()) == list(range(1200)), "offsets overlap or have gaps"
    for broker in brokers:
        stored = stored_records(broker.bootstrap, topic)
        assert {value: offset for offset, value in stored.items()} == acked


def test_kill_9_in_the_middle_of_a_flush(broker_factory):
    """A long flush window makes a kill land mid-flush: batches are queued, or their data
    object is written but no head yet, or some heads are and others are not. A second broker on
    the same bucket must then serve every acknowledged record, once, at its acknowledged offset,
    with no hole in the offsets, and keep appending after it."""
    storage = s3_storage("?flush_ms=250")
    victim = broker_factory("s3", storage=storage, name="victim")
    survivor = broker_factory("s3", storage=storage, name="survivor")
    topic = unique("s3-kill")
    create_topic(victim.bootstrap, topic, partitions=2)

    acked: dict[bytes, tuple[int, int]] = {}
    failed: list = []

    def on_delivery(err, msg):
        if err is None:
            acked[msg.value()] = (msg.partition(), msg.offset())
        else:
            failed.append(err)

    client = producer(victim.bootstrap, **{"linger.ms": 1, "message.timeout.ms": 5000, "retries": 0})
    sent = 0
    deadline = time.monotonic() + 30
    while len(acked) < 300:
        assert time.monotonic() < deadline, f"only {len(acked)} acks in 30s"
        for _ in range(20):
            client.produce(topic, value=b"v%06d" % sent, partition=sent % 2, on_delivery=on_delivery)
            sent += 1
        client.poll(0.01)
    # Keep requests in flight, then kill while a flush window is open.
    for _ in range(200):
        client.produce(topic, value=b"v%06d" % sent, partition=sent % 2, on_delivery=on_delivery)
        sent += 1
    client.poll(0.1)
    victim.kill9()
    client.flush(10)
    print(f"sent {sent}, acknowledged {len(acked)}, failed {len(failed)}")

    reader = consumer(survivor.bootstrap)
    try:
        highs = {p: watermarks(survivor.bootstrap, topic, p)[1] for p in (0, 1)}
        reader.assign([TopicPartition(topic, p, 0) for p in (0, 1)])
        messages = poll_records(reader, sum(highs.values()), {(topic, 0), (topic, 1)}, timeout=60)
    finally:
        reader.close()
    stored = {(m.partition(), m.offset()): m.value() for m in messages}
    assert len(stored) == len(messages), "the same offset was delivered twice"
    for p in (0, 1):
        assert sorted(o for (q, o) in stored if q == p) == list(range(highs[p])), f"gap in partition {p}"
    lost = {v: at for v, at in acked.items() if stored.get(at) != v}
    assert not lost, f"{len(lost)} acknowledged records missing, e.g. {list(lost.items())[:5]}"
    values = list(stored.values())
    assert len(values) == len(set(values)), "a record was stored twice"

    # The survivor keeps appending right after what is there.
    after = producer(survivor.bootstrap)
    delivered = []
    after.produce(topic, value=b"after", partition=0, on_delivery=lambda err, msg: delivered.append((err, msg)))
    assert after.flush(TIMEOUT) == 0
    assert [(err, msg.offset()) for err, msg in delivered] == [(None, highs[0])]
