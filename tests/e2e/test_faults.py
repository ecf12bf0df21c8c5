"""Fault injection (`--inject-faults`, docs/reliability.md): a broker whose storage fails calls
and loses the replies of calls that did apply still gives real clients what Kafka promises.
Producers and consumers see only retriable errors, and every acknowledged record is read back
exactly once, in order. Each test also asserts from the broker's shutdown line that faults were
injected, so none passes because nothing went wrong."""

from __future__ import annotations

import re
import time
from collections import defaultdict

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException

import kafka_wire
from helpers import CLIENT_LOG, TIMEOUT, consume, create_topic, produce, producer, unique

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


TXN_FAULTS = "append:error=0.1,append:lost=0.1,state_put:error=0.05,state_put:lost=0.05,seed=9"


def run_transaction(client, topic: str, values: list[bytes], commit: bool) -> bool:
    """One transaction of `values` over two partitions; returns True if it ended as asked.
    Retriable failures of commit or abort are retried; one that requires an abort is aborted
    (then the values count as not committed)."""
    client.begin_transaction()
    for index, value in enumerate(values):
        client.produce(topic, value=value, partition=index % 2)
    assert client.flush(4 * TIMEOUT) == 0
    end = client.commit_transaction if commit else client.abort_transaction
    for _ in range(20):
        try:
            end(TIMEOUT)
            return True
        except KafkaException as error:
            kafka_error = error.args[0]
            if kafka_error.txn_requires_abort():
                client.abort_transaction(TIMEOUT)
                return not commit
            assert kafka_error.retriable(), f"not retriable: {kafka_error}"
    raise AssertionError("transaction did not end in 20 attempts")


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_transactions_commit_exactly_once_through_faults(broker_factory, engine):
    broker = broker_factory(engine, "--inject-faults", TXN_FAULTS, "--transaction-check-interval-ms", "200")
    topic = unique("faults-txn")
    create_topic(broker.bootstrap, topic, partitions=2)
    client = producer(broker.bootstrap, **{"transactional.id": unique("tid"), "linger.ms": 1,
                                           "batch.num.messages": 5, "retry.backoff.ms": 10})
    client.init_transactions(TIMEOUT)
    committed: dict[int, list[bytes]] = defaultdict(list)
    for round_ in range(10):
        values = [b"t%02d-%03d" % (round_, i) for i in range(40)]
        commit = round_ % 3 != 2
        if run_transaction(client, topic, values, commit) and commit:
            for index, value in enumerate(values):
                committed[index % 2].append(value)
    messages = consume(broker.bootstrap, topic, partitions=(0, 1), timeout=4 * TIMEOUT,
                       **{"isolation.level": "read_committed"})
    found: dict[int, list[bytes]] = defaultdict(list)
    for message in messages:
        found[message.partition()].append(message.value())
    assert found == committed
    counts = injected(broker)
    assert counts["errors"] > 0 and counts["lost"] > 0, counts


# What Kafka answers a commit with when its coordinator cannot store offsets right now; clients
# retry these (KAFKA_STORAGE_ERROR is retried by producers, not by committing consumers).
RETRIABLE_COMMIT_ERRORS = {
    KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError.NOT_COORDINATOR, KafkaError.REQUEST_TIMED_OUT,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
}
GROUP_FAULTS = "commit_offsets:error=0.2,commit_offsets:lost=0.2,committed_offsets:error=0.1,state_put:error=0.05,state_put:lost=0.05,seed=4"


def consume_in_group(bootstrap: str, topic: str, group: str, count: int) -> list[bytes]:
    """Reads `count` records in `group`, committing synchronously after each one; a commit that
    fails with a retriable error is retried. Returns the values in the order read."""
    client = Consumer({
        "bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "session.timeout.ms": 10000, "heartbeat.interval.ms": 500,
        "fetch.wait.max.ms": 100, **CLIENT_LOG,
    })
    client.subscribe([topic])
    seen: list[bytes] = []
    deadline = time.monotonic() + 4 * TIMEOUT
    try:
        while len(seen) < count and time.monotonic() < deadline:
            message = client.poll(0.1)
            if message is None or message.error():
                continue
            seen.append(message.value())
            for _ in range(30):
                try:
                    client.commit(message=message, asynchronous=False)
                    break
                except KafkaException as error:
                    # librdkafka reports commit errors without its retriable flag: the code says.
                    code = error.args[0].code()
                    assert code in RETRIABLE_COMMIT_ERRORS, f"commit failed for good: {error.args[0]}"
            else:
                raise AssertionError("commit did not succeed in 30 attempts")
    finally:
        client.close()
    return seen


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_group_commits_resume_exactly_through_faults(broker_factory, engine):
    broker = broker_factory(engine, "--inject-faults", GROUP_FAULTS, "--group-initial-rebalance-delay-ms", "0")
    topic = unique("faults-group")
    create_topic(broker.bootstrap, topic, partitions=1)
    first = [b"a%03d" % i for i in range(60)]
    produce(broker.bootstrap, topic, [{"value": value} for value in first])
    group = unique("group")
    assert consume_in_group(broker.bootstrap, topic, group, len(first)) == first

    second = [b"b%03d" % i for i in range(20)]
    produce(broker.bootstrap, topic, [{"value": value} for value in second])
    assert consume_in_group(broker.bootstrap, topic, group, len(second)) == second, "resumes after the last commit"
    counts = injected(broker)
    assert counts["errors"] > 0 and counts["lost"] > 0, counts


def test_group_consumer_starts_when_reading_its_committed_offsets_fails(broker_factory):
    """Regression: a failed OffsetFetch was answered COORDINATOR_NOT_AVAILABLE, which librdkafka
    does not retry there (confluentinc/librdkafka#5586): the consumer stayed assigned and
    alive but never fetched. COORDINATOR_LOAD_IN_PROGRESS is retried until the read succeeds."""
    broker = broker_factory("sqlite", "--inject-faults", "committed_offsets:error=0.8,seed=2",
                            "--group-initial-rebalance-delay-ms", "0")
    topic = unique("faults-offset-fetch")
    create_topic(broker.bootstrap, topic)
    values = [b"x%d" % i for i in range(5)]
    produce(broker.bootstrap, topic, [{"value": value} for value in values])
    assert consume_in_group(broker.bootstrap, topic, unique("group"), len(values)) == values
    counts = injected(broker)
    assert counts["errors"] > 0, counts


def test_list_groups_answers_an_unreachable_store_with_a_retriable_code(broker_factory):
    """ListGroups, like the other group coordinator requests, answers storage it cannot read
    with COORDINATOR_NOT_AVAILABLE, which admin clients retry (it answered KAFKA_STORAGE_ERROR,
    which they report as a failure)."""
    broker = broker_factory("sqlite", "--inject-faults", "offset_groups:error=1.0,seed=1")
    sock = kafka_wire.connect(broker.port, timeout=TIMEOUT)
    try:
        sock.sendall(kafka_wire.list_groups_v0_request(correlation_id=7))
        correlation_id, error, groups = kafka_wire.parse_list_groups_v0(kafka_wire.recv_frame(sock))
    finally:
        sock.close()
    assert (correlation_id, error, groups) == (7, kafka_wire.ERROR_COORDINATOR_NOT_AVAILABLE, [])
    counts = injected(broker)
    assert counts["errors"] > 0, counts
