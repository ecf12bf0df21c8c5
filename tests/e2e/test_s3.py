"""The s3:// engine's own promises, on a real S3-compatible server (moto_server, started by
scripts/services.sh): any number of brokers on one bucket append to one partition without gaps
or overlaps, and a broker killed in the middle of a flush leaves the partition consistent (every
acknowledged record readable exactly once, nothing a consumer cannot get past); a stalled store
costs retriable errors, never the broker or a record."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

from confluent_kafka import TopicPartition

import kafka_wire
from conftest import REPO_ROOT, free_port, s3_storage
from helpers import (
    TIMEOUT,
    Scrape,
    consume,
    consumer,
    create_topic,
    metrics_broker,
    poll_records,
    producer,
    unique,
    watermarks,
)


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
        assert len(stored) == 1200, "a record was stored twice"
        assert {value: offset for offset, value in stored.items()} == acked


def test_pipelined_produce_requests_share_a_flush(broker_factory):
    """A client that sends produce requests without waiting for their answers (librdkafka keeps
    up to five in flight) gets them answered in order and appended in order, and they share the
    engine's flushes: with a long flush window, requests handled one at a time would cost a
    data PUT and a head PUT each (ten here); pipelined, they all fit in one or two flushes."""
    broker, base = metrics_broker(broker_factory, "s3", storage=s3_storage("?flush_ms=300"))
    topic = unique("s3-pipelined")
    create_topic(broker.bootstrap, topic)
    puts_before = Scrape(base).total("skiff_s3_requests_total", kind="put")

    count = 5
    values = [b"pipelined-%d" % i for i in range(count)]
    requests = [
        kafka_wire.produce_v3_request(
            topic, 0, kafka_wire.record_batch([kafka_wire.record(0, value)]), correlation_id=100 + i, acks=-1
        )
        for i, value in enumerate(values)
    ]
    sock = kafka_wire.connect(broker.port, timeout=TIMEOUT)
    try:
        sock.sendall(b"".join(requests))
        answers = [kafka_wire.parse_produce_v3(kafka_wire.recv_frame(sock)) for _ in range(count)]
    finally:
        sock.close()

    assert [correlation_id for correlation_id, _ in answers] == [100 + i for i in range(count)]
    assert [results[(topic, 0)] for _, results in answers] == [(0, i) for i in range(count)]
    puts = Scrape(base).total("skiff_s3_requests_total", kind="put") - puts_before
    assert puts <= 4, f"{puts} PUTs for {count} pipelined requests: they did not share flushes"
    stored = consume(broker.bootstrap, topic, count=count)
    assert [(m.offset(), m.value()) for m in stored] == list(enumerate(values))


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


def test_a_stalled_store_gives_retriable_errors_and_nothing_is_lost(broker_factory, tmp_path):
    """The S3 server stops answering (SIGSTOP: requests hang, as in an outage or heavy
    throttling). The broker keeps running, answers produce requests with a retriable error once
    its retries run out, and when the store is back the producer's retries land: every record
    exactly once (idempotence covers an append that landed although its answer timed out)."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "scripts" / "s3_server.py"), str(port)],
        stdout=open(tmp_path / "s3.log", "wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while "bucket skiff-test ready" not in (tmp_path / "s3.log").read_text(errors="replace"):
            assert time.monotonic() < deadline, "private s3 server did not start"
            time.sleep(0.1)
        storage = (
            f"s3://skiff-test/outage?endpoint={endpoint}&retry_timeout_ms=1000&request_timeout_ms=1000"
        )
        broker = broker_factory("s3", storage=storage)
        topic = unique("s3-outage")
        create_topic(broker.bootstrap, topic)

        acked: list[bytes] = []
        errors: list = []

        def on_delivery(err, msg):
            if err is None:
                acked.append(msg.value())
            else:
                errors.append(err)

        client = producer(
            broker.bootstrap,
            **{"enable.idempotence": True, "message.timeout.ms": 60000, "linger.ms": 1},
        )
        for i in range(10):
            client.produce(topic, value=b"before-%d" % i, on_delivery=on_delivery)
        assert client.flush(TIMEOUT) == 0

        mark = broker.log_mark()
        server.send_signal(signal.SIGSTOP)
        try:
            for i in range(10):
                client.produce(topic, value=b"during-%d" % i, on_delivery=on_delivery)
            client.poll(0.1)
            broker.wait_log_line(mark, lambda line: "storage unavailable" in line or "object store" in line, timeout=20)
            time.sleep(2)
            assert broker.alive(), "the broker died while the store was stalled"
            assert len(acked) == 10, "nothing can be acknowledged while the store is stalled"
        finally:
            server.send_signal(signal.SIGCONT)
        assert client.flush(60) == 0, "the producer's retries did not land after the store came back"
        assert not errors, errors[:3]
        assert len(acked) == 20

        stored = stored_records(broker.bootstrap, topic)
        values = sorted(stored.values())
        assert values == sorted(acked), "every acknowledged record exactly once"
        assert sorted(stored) == list(range(20)), "no gap and no duplicate in the offsets"
    finally:
        server.send_signal(signal.SIGCONT)
        server.kill()
        server.wait(5)


def test_a_broker_dying_between_data_object_and_heads(broker_factory, monkeypatch):
    """The worst moment, made exact: the victim aborts right after writing a data object and
    before any head references it (SKIFF_S3_CRASH_AFTER_DATA_OBJECTS). What that flush held was
    never acknowledged and got no offsets; the partitions stay readable with no gap, and the
    survivor and the restarted victim append right after what is there."""
    storage = s3_storage("?flush_ms=20")
    monkeypatch.setenv("SKIFF_S3_CRASH_AFTER_DATA_OBJECTS", "4")
    victim = broker_factory("s3", storage=storage, name="victim")
    monkeypatch.delenv("SKIFF_S3_CRASH_AFTER_DATA_OBJECTS")
    survivor = broker_factory("s3", storage=storage, name="survivor")
    topic = unique("s3-abort")
    create_topic(survivor.bootstrap, topic, partitions=2)

    acked: dict[bytes, tuple[int, int]] = {}

    def on_delivery(err, msg):
        if err is None:
            acked[msg.value()] = (msg.partition(), msg.offset())

    client = producer(victim.bootstrap, **{"linger.ms": 1, "message.timeout.ms": 3000, "retries": 0})
    sent = 0
    deadline = time.monotonic() + 20
    while victim.alive():
        assert time.monotonic() < deadline, "the victim never reached its crash point"
        client.produce(topic, value=b"v%05d" % sent, partition=sent % 2, on_delivery=on_delivery)
        sent += 1
        client.poll(0.005)
    client.flush(5)
    assert "aborting before any head is written" in victim.log_text()
    assert sent > len(acked), "the aborted flush's records were acknowledged"

    highs = {p: watermarks(survivor.bootstrap, topic, p)[1] for p in (0, 1)}
    reader = consumer(survivor.bootstrap)
    try:
        reader.assign([TopicPartition(topic, p, 0) for p in (0, 1)])
        messages = poll_records(reader, sum(highs.values()), {(topic, 0), (topic, 1)}, timeout=60)
    finally:
        reader.close()
    stored = {(m.partition(), m.offset()): m.value() for m in messages}
    for p in (0, 1):
        assert sorted(o for (q, o) in stored if q == p) == list(range(highs[p])), f"gap in partition {p}"
    assert {v: at for v, at in acked.items() if stored.get(at) != v} == {}, "acknowledged records missing"

    victim.start()
    for broker, value in ((survivor, b"survivor"), (victim, b"restarted")):
        delivered = []
        after = producer(broker.bootstrap)
        after.produce(topic, value=value, partition=0, on_delivery=lambda err, msg: delivered.append((err, msg)))
        assert after.flush(TIMEOUT) == 0
        assert [(err, msg.offset()) for err, msg in delivered] == [(None, highs[0])]
        highs[0] += 1
