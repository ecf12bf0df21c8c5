"""Transactions with no broker state: the coordinator's record lives in storage, markers are
written to every partition of a transaction, and read_committed consumers see exactly the
committed records (the reference broker let them see aborted ones)."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaException, TopicPartition

from helpers import TIMEOUT, consume, consumer, create_topic, poll_records, producer, unique

# Brokers look for expired transactions often in these tests.
SWEEP = ("--transaction-check-interval-ms", "200")


@pytest.fixture(params=["memory", "sqlite", "postgres", "s3"])
def txn_broker(request, broker_factory):
    return broker_factory(request.param, *SWEEP)


def transactional(bootstrap: str, transactional_id: str, **conf):
    client = producer(bootstrap, **{"transactional.id": transactional_id, "linger.ms": 1, **conf})
    client.init_transactions(TIMEOUT)
    return client


def values_of(messages) -> list[bytes]:
    return [m.value() for m in messages]


def read(bootstrap: str, topic: str, isolation: str, partitions=(0, 1)) -> list[bytes]:
    return sorted(
        values_of(consume(bootstrap, topic, partitions=partitions, **{"isolation.level": isolation}))
    )


def test_read_committed_sees_exactly_the_committed_records(txn_broker):
    bootstrap = txn_broker.bootstrap
    topic = unique("txn")
    create_topic(bootstrap, topic, partitions=2)
    client = transactional(bootstrap, unique("tid"))
    committed, aborted = [], []
    for round_ in range(6):
        client.begin_transaction()
        batch = [b"r%d-%d" % (round_, i) for i in range(10)]
        for i, value in enumerate(batch):
            client.produce(topic, value=value, partition=i % 2)
        # Make sure the records reach the broker (abort purges what was not sent yet).
        assert client.flush(TIMEOUT) == 0
        if round_ % 2 == 0:
            client.commit_transaction(TIMEOUT)
            committed.extend(batch)
        else:
            client.abort_transaction(TIMEOUT)
            aborted.extend(batch)
    # A plain (non-transactional) record after them, as a fence post.
    plain = producer(bootstrap)
    plain.produce(topic, value=b"plain", partition=0)
    assert plain.flush(TIMEOUT) == 0

    assert read(bootstrap, topic, "read_committed") == sorted(committed + [b"plain"])
    assert read(bootstrap, topic, "read_uncommitted") == sorted(committed + aborted + [b"plain"])


def test_open_transaction_holds_back_read_committed_consumers(txn_broker):
    bootstrap = txn_broker.bootstrap
    topic = unique("lso")
    create_topic(bootstrap, topic, partitions=1)
    before = producer(bootstrap)
    before.produce(topic, value=b"before", partition=0)
    assert before.flush(TIMEOUT) == 0

    client = transactional(bootstrap, unique("tid"))
    client.begin_transaction()
    client.produce(topic, value=b"pending", partition=0)
    assert client.flush(TIMEOUT) == 0

    reader = consumer(bootstrap, **{"isolation.level": "read_committed"})
    try:
        reader.assign([TopicPartition(topic, 0, 0)])
        first = poll_records(reader, 1, {(topic, 0)})
        assert values_of(first) == [b"before"], "nothing past the last stable offset"
        client.commit_transaction(TIMEOUT)
        later = poll_records(reader, 1, {(topic, 0)})
        assert values_of(later) == [b"pending"]
    finally:
        reader.close()


def test_new_instance_fences_the_zombie_and_aborts_its_transaction(txn_broker):
    bootstrap = txn_broker.bootstrap
    topic = unique("zombie")
    create_topic(bootstrap, topic, partitions=1)
    tid = unique("tid")
    zombie = transactional(bootstrap, tid)
    zombie.begin_transaction()
    zombie.produce(topic, value=b"zombie", partition=0)
    assert zombie.flush(TIMEOUT) == 0

    successor = transactional(bootstrap, tid)  # bumps the epoch and aborts the zombie's transaction
    successor.begin_transaction()
    successor.produce(topic, value=b"successor", partition=0)
    successor.commit_transaction(TIMEOUT)

    with pytest.raises(KafkaException) as fenced:
        zombie.produce(topic, value=b"late", partition=0)
        zombie.commit_transaction(TIMEOUT)
    assert fenced.value.args[0].fatal() or "fenced" in str(fenced.value).lower(), fenced.value

    assert read(bootstrap, topic, "read_committed", partitions=(0,)) == [b"successor"]
    assert b"late" not in read(bootstrap, topic, "read_uncommitted", partitions=(0,))


def test_abandoned_transaction_is_aborted_at_its_timeout(txn_broker):
    bootstrap = txn_broker.bootstrap
    topic = unique("timeout")
    create_topic(bootstrap, topic, partitions=1)
    abandoned = transactional(
        bootstrap, unique("tid"), **{"transaction.timeout.ms": 1500, "socket.timeout.ms": 1500, "message.timeout.ms": 1500}
    )
    abandoned.begin_transaction()
    abandoned.produce(topic, value=b"abandoned", partition=0)
    assert abandoned.flush(TIMEOUT) == 0
    # The producer goes silent (as if its process hung). Records after it must become readable
    # once the broker aborts the transaction, and the abandoned record must never be.
    after = producer(bootstrap)
    after.produce(topic, value=b"after", partition=0)
    assert after.flush(TIMEOUT) == 0

    deadline = time.monotonic() + 20
    seen: list[bytes] = []
    while time.monotonic() < deadline:
        seen = read(bootstrap, topic, "read_committed", partitions=(0,))
        if seen:
            break
        time.sleep(0.3)
    assert seen == [b"after"]
