"""Fault injection (`--inject-faults`, docs/reliability.md): a broker whose storage fails calls
and loses the replies of calls that did apply still gives real clients what Kafka promises.
Producers and consumers see only retriable errors, and every acknowledged record is read back
exactly once, in order. Each test also asserts from the broker's shutdown line that faults were
injected, so none passes because nothing went wrong."""

from __future__ import annotations

import re
from collections import defaultdict

import pytest

from helpers import TIMEOUT, consume, create_topic, producer, unique

RECORDS = 1500
PARTITIONS = 3
# Enough faults that most flushes hit several, few enough that a run takes seconds.
APPEND_FAULTS = "append:error=0.15,append:lost=0.15,seed=7"
READ_FAULTS = "read:error=0.2,read:delay_ms=5,watermarks:error=0.1,seed=3"


def injected(broker) -> dict[str, int]:
    """Stops the broker and returns the totals of its `injected storage faults` line."""
    broker.stop()
    lines = [line for line in broker.log_text().splitlines() if "injected storage faults" in line]
    assert lines, "no `injected storage faults` line at shutdown:\n" + broker.log_tail()
    return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", lines[-1])}


def produce_idempotently(bootstrap: str, topic: str) -> dict[int, list[bytes]]:
    """Produces RECORDS values round-robin over the partitions with an idempotent producer;
    fails on any delivery error. Returns the values sent to each partition, in order."""
    client = producer(
        bootstrap,
        **{
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 2,
            # Small batches: many appends, so many faults, while five stay in flight per
            # partition (the most an idempotent producer may have) to exercise reordering.
            "batch.num.messages": 10,
            "retry.backoff.ms": 10,
            "message.timeout.ms": 60000,
        },
    )
    sent: dict[int, list[bytes]] = defaultdict(list)
    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)

    for index in range(RECORDS):
        value = b"v%05d" % index
        sent[index % PARTITIONS].append(value)
        while True:
            try:
                client.produce(topic, value=value, partition=index % PARTITIONS, on_delivery=on_delivery)
                break
            except BufferError:
                client.poll(0.05)
        client.poll(0)
    assert client.flush(4 * TIMEOUT) == 0, "records still undelivered"
    assert errors == [], f"{len(errors)} deliveries failed, first: {errors[:3]}"
    return sent


def read_back(bootstrap: str, topic: str, **conf) -> dict[int, list[bytes]]:
    """Every record of the topic by partition, in offset order."""
    messages = consume(bootstrap, topic, count=RECORDS, partitions=range(PARTITIONS), timeout=4 * TIMEOUT, **conf)
    found: dict[int, list[bytes]] = defaultdict(list)
    for message in messages:
        found[message.partition()].append(message.value())
    return found


@pytest.mark.parametrize("engine", ["memory", "sqlite", "postgres", "s3"])
def test_idempotent_producer_survives_append_errors_and_lost_replies(broker_factory, engine):
    broker = broker_factory(engine, "--inject-faults", APPEND_FAULTS)
    topic = unique("faults")
    create_topic(broker.bootstrap, topic, partitions=PARTITIONS)

    sent = produce_idempotently(broker.bootstrap, topic)

    assert read_back(broker.bootstrap, topic) == sent, "each acknowledged value once, in order"
    counts = injected(broker)
    assert counts["errors"] > 0 and counts["lost"] > 0, counts


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_consumer_reads_everything_through_read_errors(broker_factory, engine):
    broker = broker_factory(engine, "--inject-faults", READ_FAULTS)
    topic = unique("faults-read")
    create_topic(broker.bootstrap, topic, partitions=PARTITIONS)

    sent = produce_idempotently(broker.bootstrap, topic)

    # Small fetches: many reads, so many faults.
    small = {"fetch.max.bytes": 1024, "message.max.bytes": 1000, "max.partition.fetch.bytes": 512}
    assert read_back(broker.bootstrap, topic, **small) == sent
    counts = injected(broker)
    assert counts["errors"] > 0 and counts["delayed"] > 0, counts
