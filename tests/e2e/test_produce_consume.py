"""Produce and consume with real clients: every codec, both clients in both directions, record
edge cases (headers with repeated keys, null key/value, empty value), a 1 MiB record, every acks
level, and librdkafka's default consumer settings over a backlog."""

from __future__ import annotations

import os

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, TopicPartition

from helpers import (
    consume,
    consumer,
    create_topic,
    kcat_consume,
    kcat_consume_json,
    kcat_produce,
    poll_records,
    produce,
    record_tuples,
    unique,
    values,
)

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


@pytest.mark.parametrize("codec", CODECS)
def test_codec_round_trip_mixing_clients(broker, codec):
    """confluent-kafka and kcat each produce compressed batches; each consumes both halves."""
    topic = unique(f"codec-{codec}")
    create_topic(broker.bootstrap, topic)

    ck_values = values(f"ck-{codec}", 30, size=200)
    delivered = produce(
        broker.bootstrap,
        topic,
        [{"key": f"ck-key-{i}".encode(), "value": v} for i, v in enumerate(ck_values)],
        **{"compression.type": codec, "linger.ms": 50},
    )
    assert [m.offset() for m in delivered] == list(range(30))

    kc_lines = [f"kc-key-{i}:kc-{codec}-{i}-" + "kcat" * 40 for i in range(30)]
    kcat_args = ["-K", ":"] + (["-z", codec] if codec != "none" else [])
    kcat_produce(broker.bootstrap, topic, kc_lines, *kcat_args)

    expected = [(f"ck-key-{i}".encode(), v) for i, v in enumerate(ck_values)] + [
        tuple(part.encode() for part in line.split(":", 1)) for line in kc_lines
    ]

    # confluent-kafka reads what both clients wrote, at consecutive offsets.
    messages = consume(broker.bootstrap, topic, count=60)
    assert [(m.offset(), m.key(), m.value()) for m in messages] == [
        (offset, key, value) for offset, (key, value) in enumerate(expected)
    ]

    # kcat reads the same.
    out = kcat_consume(broker.bootstrap, topic, "-f", "%k %s %o\n")
    assert out.splitlines() == [
        f"{key.decode()} {value.decode()} {offset}" for offset, (key, value) in enumerate(expected)
    ]


def test_headers_null_and_empty_values(broker):
    topic = unique("edge")
    create_topic(broker.bootstrap, topic)
    records = [
        {"key": b"k0", "value": b"with-headers", "headers": [("h", b"1"), ("h", b"2"), ("other", b"x")]},
        {"key": None, "value": b"null-key"},
        {"key": b"tombstone", "value": None},
        {"key": b"empty", "value": b""},
        {"key": b"", "value": b"empty-key"},
        {"key": b"k5", "value": b"null-header-value", "headers": [("n", None), ("e", b"")]},
        {"key": bytes(range(256)), "value": bytes(range(255, -1, -1))},
    ]
    produce(broker.bootstrap, topic, records)

    messages = consume(broker.bootstrap, topic, count=len(records))
    got = record_tuples(messages)
    assert got[0] == (0, 0, b"k0", b"with-headers", [("h", b"1"), ("h", b"2"), ("other", b"x")])
    assert got[1][1:4] == (1, None, b"null-key")
    assert got[2][1:4] == (2, b"tombstone", None)
    assert got[3][1:4] == (3, b"empty", b"")
    assert got[4][1:4] == (4, b"", b"empty-key")
    assert got[5][1:] == (5, b"k5", b"null-header-value", [("n", None), ("e", b"")])
    assert got[6][1:4] == (6, bytes(range(256)), bytes(range(255, -1, -1)))
    for record in got[1:5] + got[6:]:
        assert not record[4], f"record at offset {record[1]} gained headers {record[4]}"

    # kcat (older librdkafka, Fetch as Debian ships it) sees the same headers in order and nulls.
    out = kcat_consume_json(broker.bootstrap, topic, "-c", "6")  # the 7th is not valid JSON text
    assert [(r["offset"], r["key"], r["payload"]) for r in out[:4]] == [
        (0, "k0", "with-headers"),
        (1, None, "null-key"),
        (2, "tombstone", None),
        (3, "empty", ""),
    ]
    assert out[0]["headers"] == ["h", "1", "h", "2", "other", "x"]
    assert [r["offset"] for r in out] == list(range(6))


def test_kcat_headers_and_keys_reach_confluent(broker):
    topic = unique("kcat-headers")
    create_topic(broker.bootstrap, topic)
    kcat_produce(broker.bootstrap, topic, ["a:1", "b:2"], "-K", ":", "-H", "h=1", "-H", "h=2")
    messages = consume(broker.bootstrap, topic, count=2)
    assert record_tuples(messages) == [
        (0, 0, b"a", b"1", [("h", b"1"), ("h", b"2")]),
        (0, 1, b"b", b"2", [("h", b"1"), ("h", b"2")]),
    ]


def test_one_mebibyte_record(broker):
    topic = unique("big")
    # Kafka's default max.message.bytes (1048588) is just below a 1 MiB record plus overhead.
    create_topic(broker.bootstrap, topic, config={"max.message.bytes": str(4 * 1024 * 1024)})
    big = os.urandom(1024 * 1024)
    delivered = produce(
        broker.bootstrap,
        topic,
        [{"key": b"big", "value": big}, {"key": b"small", "value": b"after"}],
        **{"message.max.bytes": 4 * 1024 * 1024, "linger.ms": 0},
    )
    assert [m.offset() for m in delivered] == [0, 1]

    # Default consumer fetch sizes: max.partition.fetch.bytes is 1 MiB, so the broker must return
    # the first batch even though it is larger (KIP-74).
    client = consumer(broker.bootstrap)
    try:
        client.assign([TopicPartition(topic, 0, 0)])
        messages = poll_records(client, 2, {(topic, 0)})
    finally:
        client.close()
    assert [(m.offset(), m.key(), len(m.value())) for m in messages] == [
        (0, b"big", len(big)),
        (1, b"small", 5),
    ]
    assert messages[0].value() == big
    assert messages[1].value() == b"after"

    out = kcat_consume(broker.bootstrap, topic, "-f", "%o %K %S\n")
    assert out.splitlines() == [f"0 3 {len(big)}", "1 5 5"]


@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_acks_levels_deliver(broker, acks):
    topic = unique(f"acks-{acks}")
    create_topic(broker.bootstrap, topic)
    vals = values(f"acks{acks}", 50)
    delivered = produce(broker.bootstrap, topic, [{"value": v} for v in vals], acks=acks)
    if acks != "0":
        assert [m.offset() for m in delivered] == list(range(50))
    messages = consume(broker.bootstrap, topic, count=50)
    assert [(m.offset(), m.value()) for m in messages] == list(enumerate(vals))


def test_explicit_timestamps_are_kept(broker):
    topic = unique("ts")
    create_topic(broker.bootstrap, topic)
    base = 1_700_000_000_000
    produce(broker.bootstrap, topic, [{"value": b"%d" % i, "timestamp": base + i * 7} for i in range(5)])
    messages = consume(broker.bootstrap, topic, count=5)
    assert [m.timestamp() for m in messages] == [(TIMESTAMP_CREATE_TIME, base + i * 7) for i in range(5)]


def test_default_consumer_settings_read_a_backlog(broker):
    """librdkafka's defaults (fetch.wait.max.ms=500, fetch.min.bytes=1, 1 MiB per partition) must
    drain a backlog promptly on every engine; the timeout only guards against a stall."""
    topic = unique("backlog")
    create_topic(broker.bootstrap, topic)
    vals = values("backlog", 5000, size=100)
    produce(broker.bootstrap, topic, [{"value": v} for v in vals], **{"linger.ms": 20})
    client = consumer(broker.bootstrap, **{"fetch.wait.max.ms": 500})
    try:
        client.assign([TopicPartition(topic, 0, 0)])
        messages = poll_records(client, 5000, {(topic, 0)}, timeout=60)
    finally:
        client.close()
    assert [m.offset() for m in messages] == list(range(5000))
    assert [m.value() for m in messages] == vals


def test_long_poll_delivers_records_produced_later(broker):
    topic = unique("longpoll")
    create_topic(broker.bootstrap, topic)
    client = consumer(broker.bootstrap, **{"fetch.wait.max.ms": 2000})
    try:
        client.assign([TopicPartition(topic, 0, 0)])
        assert poll_records(client, None, {(topic, 0)}) == []
        produce(broker.bootstrap, topic, [{"value": b"late"}])
        messages = poll_records(client, 1, {(topic, 0)})
    finally:
        client.close()
    assert [(m.offset(), m.value()) for m in messages] == [(0, b"late")]
