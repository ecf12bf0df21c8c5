"""Log compaction (cleanup.policy=compact) on every engine, seen by real clients: the newest record
of each key stays at its offset, older ones and expired tombstones go, keyless records are refused
at produce, and the cleaner never touches a topic that does not ask for compaction."""

from __future__ import annotations

import time

from confluent_kafka import KafkaError

from helpers import (
    consume,
    create_topic,
    kcat_consume_json,
    metrics_broker,
    produce,
    producer,
    unique,
    wait_cleaner_passes,
    watermarks,
)

KEYS = 6
ROUNDS = 4


def compacted_view(bootstrap: str, topic: str) -> list[tuple]:
    return [(m.offset(), m.key(), m.value()) for m in consume(bootstrap, topic)]


def wait_for(condition, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.3)


def test_compaction_keeps_the_newest_record_of_each_key(broker_factory, engine):
    broker = broker_factory(engine, "--retention-check-interval-ms", "200")
    topic = unique("compacted")
    create_topic(
        broker.bootstrap,
        topic,
        config={"cleanup.policy": "compact", "delete.retention.ms": "3600000"},
    )
    records = [
        {"key": b"k%d" % key, "value": b"v%d-%d" % (key, round_)}
        for round_ in range(ROUNDS)
        for key in range(KEYS)
    ]
    records.append({"key": b"k0", "value": None})  # a tombstone for k0, kept for an hour
    # Small batches, so that some batches empty out entirely and others only shrink.
    produce(broker.bootstrap, topic, records, **{"linger.ms": 0, "batch.num.messages": 4})
    total = len(records)

    expected = [(total - 1, b"k0", None)] + [
        ((ROUNDS - 1) * KEYS + key, b"k%d" % key, b"v%d-%d" % (key, ROUNDS - 1)) for key in range(1, KEYS)
    ]
    expected.sort()
    view = wait_for(lambda: (v := compacted_view(broker.bootstrap, topic)) == expected and v)
    assert view == expected, compacted_view(broker.bootstrap, topic)
    assert watermarks(broker.bootstrap, topic) == (0, total), "compaction never moves offsets"

    # kcat reads the compacted log too, offsets and all.
    seen = [(r["offset"], r["key"], r["payload"]) for r in kcat_consume_json(broker.bootstrap, topic)]
    assert seen == [(o, k.decode(), v.decode() if v is not None else None) for o, k, v in expected]

    # Newer records of a key supersede the survivors in the next pass.
    produce(broker.bootstrap, topic, [{"key": b"k1", "value": b"newest"}])
    wait_for(lambda: all(m.key() != b"k1" or m.value() == b"newest" for m in consume(broker.bootstrap, topic)))
    k1 = [(m.offset(), m.value()) for m in consume(broker.bootstrap, topic) if m.key() == b"k1"]
    assert k1 == [(total, b"newest")]


def test_expired_tombstones_go_too(broker_factory, engine):
    broker = broker_factory(engine, "--retention-check-interval-ms", "200")
    topic = unique("tombstones")
    create_topic(broker.bootstrap, topic, config={"cleanup.policy": "compact", "delete.retention.ms": "0"})
    produce(
        broker.bootstrap,
        topic,
        [{"key": b"gone", "value": b"1"}, {"key": b"kept", "value": b"2"}, {"key": b"gone", "value": None}],
    )
    view = wait_for(lambda: (v := compacted_view(broker.bootstrap, topic)) == [(1, b"kept", b"2")] and v)
    assert view == [(1, b"kept", b"2")]


def test_keyless_records_are_refused_on_compacted_topics(broker_factory, engine):
    """One batch mixing keyed and keyless records: the broker names the keyless ones in
    record_errors (KIP-467), so the client fails exactly them with INVALID_RECORD and the keyed
    ones with "another record in the batch failed"; nothing of the batch is stored."""
    broker = broker_factory(engine)
    topic = unique("needs-keys")
    create_topic(broker.bootstrap, topic, config={"cleanup.policy": "compact"})
    client = producer(broker.bootstrap, retries=0, **{"linger.ms": 1000})
    client.list_topics(topic, timeout=10)  # the partition is known: all five share one batch
    outcome = {}
    for index, key in enumerate([b"k0", None, b"k2", None, b"k4"]):
        client.produce(
            topic,
            key=key,
            value=b"v%d" % index,
            on_delivery=lambda err, msg, index=index: outcome.__setitem__(index, err),
        )
    client.flush(15)
    assert sorted(outcome) == [0, 1, 2, 3, 4], outcome
    codes = {index: (err.code() if err else None) for index, err in outcome.items()}
    assert codes[1] == codes[3] == KafkaError.INVALID_RECORD, codes
    assert codes[0] == codes[2] == codes[4] == KafkaError._INVALID_DIFFERENT_RECORD, codes
    assert watermarks(broker.bootstrap, topic) == (0, 0), "nothing of the refused batch is stored"
    produce(broker.bootstrap, topic, [{"key": b"k", "value": b"keyed"}])
    assert watermarks(broker.bootstrap, topic) == (0, 1)


def test_delete_only_topics_are_never_compacted(broker_factory, engine):
    broker, metrics = metrics_broker(broker_factory, engine, "--retention-check-interval-ms", "200")
    topic = unique("not-compacted")
    create_topic(broker.bootstrap, topic, config={"retention.ms": "-1"})
    produce(broker.bootstrap, topic, [{"key": b"same", "value": b"v%d" % i} for i in range(4)])
    wait_cleaner_passes(metrics, 2)  # whole passes over the topic, not just time gone by
    assert [m.value() for m in consume(broker.bootstrap, topic)] == [b"v0", b"v1", b"v2", b"v3"]
