"""Postgres-only end-to-end tests (issue 4): several brokers appending to one partition of one
database, the outbox function `skiff.produce` seen from a Kafka consumer, and Postgres restarted
under an acks=all stream. kill -9 of a broker on Postgres is in test_durability.py."""

from __future__ import annotations

import subprocess
import threading
import time

import pytest
from confluent_kafka import TopicPartition

import kafka_wire

from helpers import (
    TIMEOUT,
    TRANSIENT_CONSUMER_ERRORS,
    admin,
    consume,
    consumer,
    create_topic,
    poll_records,
    produce,
    producer,
    unique,
    watermarks,
)
from pg_server import PrivateServer


class Psql:
    """A long-lived `psql` session: statements run one by one in the same connection, so a
    transaction can stay open between calls."""

    MARK = "__skiff_e2e_done__"

    def __init__(self, url: str):
        self.proc = subprocess.Popen(
            ["psql", "-w", url, "-qAtX", "-v", "ON_ERROR_STOP=1"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    def run(self, sql: str, timeout: float = 10.0) -> list[str]:
        """Runs `sql` (one or more statements) and returns the output lines."""
        self.proc.stdin.write(sql.rstrip().rstrip(";") + ";\n\\echo " + self.MARK + "\n")
        self.proc.stdin.flush()
        lines: list[str] = []
        timer = threading.Timer(timeout, self.proc.kill)
        timer.start()
        try:
            while True:
                line = self.proc.stdout.readline()
                if not line:
                    raise AssertionError(
                        f"psql ended running {sql!r}: {self.proc.stderr.read()[-2000:]}"
                    )
                if line.rstrip("\n") == self.MARK:
                    return lines
                lines.append(line.rstrip("\n"))
        finally:
            timer.cancel()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def psql(url: str, sql: str) -> list[str]:
    """One statement in a session of its own (autocommit)."""
    result = subprocess.run(
        ["psql", "-w", url, "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", sql],
        capture_output=True,
        text=True,
        timeout=15,
    )
    assert result.returncode == 0, f"psql {sql!r} failed: {result.stderr}"
    return result.stdout.splitlines()


# Three brokers, one partition ---------------------------------------------------------------------


def test_three_brokers_append_to_one_partition(broker_factory):
    """Three broker processes on one database, one acks=all producer each, all into partition 0
    at once: offsets are unique and gap-free, and every acknowledged record is read back exactly
    once through every broker."""
    first = broker_factory("postgres")
    brokers = [first] + [broker_factory("postgres", storage=first.storage) for _ in range(2)]
    topic = unique("three")
    create_topic(first.bootstrap, topic)

    per_producer = 400
    acked: dict[bytes, int] = {}
    failures: list = []
    lock = threading.Lock()

    def on_delivery(err, msg):
        with lock:
            if err is None:
                acked[msg.value()] = msg.offset()
            else:
                failures.append(err)

    ready = threading.Barrier(len(brokers), timeout=TIMEOUT)

    def run(index: int, broker) -> None:
        client = producer(broker.bootstrap, **{"linger.ms": 1, "batch.num.messages": 7})
        client.list_topics(topic, timeout=TIMEOUT)  # connected, metadata known: start together
        ready.wait()
        for i in range(per_producer):
            while True:
                try:
                    client.produce(topic, value=b"b%d-%04d" % (index, i), partition=0, on_delivery=on_delivery)
                    break
                except BufferError:
                    client.poll(0.01)
            client.poll(0)
        assert client.flush(TIMEOUT) == 0

    threads = [threading.Thread(target=run, args=(i, b)) for i, b in enumerate(brokers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT + 10)
    total = per_producer * len(brokers)
    assert not failures, f"{len(failures)} deliveries failed, first: {failures[:3]}"
    assert len(acked) == total
    assert sorted(acked.values()) == list(range(total)), "offsets overlap or have gaps"
    # The producers really were interleaved: each one's records are spread over the log.
    for index in range(len(brokers)):
        offsets = sorted(o for v, o in acked.items() if v.startswith(b"b%d-" % index))
        assert offsets[-1] - offsets[0] > per_producer, f"producer {index} ran alone"

    for broker in brokers:
        assert watermarks(broker.bootstrap, topic) == (0, total)
        messages = consume(broker.bootstrap, topic, count=total)
        assert [m.offset() for m in messages] == list(range(total)), "an offset is missing or repeated"
        assert {m.value(): m.offset() for m in messages} == acked
    # And the table says the same.
    rows = psql(first.storage, f"SELECT count(*), count(DISTINCT \"offset\"), min(\"offset\"), max(\"offset\") "
                f"FROM skiff.records WHERE topic = '{topic}'")
    assert rows == [f"{total}|{total}|0|{total - 1}"]


# Outbox -------------------------------------------------------------------------------------------


def test_outbox_commit_and_rollback_seen_by_a_consumer(broker_factory):
    broker = broker_factory("postgres")
    topic = unique("orders")
    create_topic(broker.bootstrap, topic)
    produce(
        broker.bootstrap, topic, [{"key": b"k0", "value": b"from-kafka-0"}, {"key": b"k1", "value": b"from-kafka-1"}]
    )
    psql(broker.storage, "CREATE TABLE app_orders (id integer PRIMARY KEY, status text NOT NULL)")

    follower = consumer(broker.bootstrap)
    session = Psql(broker.storage)
    try:
        follower.assign([TopicPartition(topic, 0, 0)])
        assert [m.value() for m in poll_records(follower, 2, {(topic, 0)})] == [b"from-kafka-0", b"from-kafka-1"]

        # An open transaction: the record has its offset but nobody sees it yet, and a Kafka
        # producer's append to the partition waits for the transaction (it holds the row lock).
        session.run("BEGIN")
        session.run("INSERT INTO app_orders VALUES (42, 'paid')")
        [offset] = session.run(
            f"SELECT skiff.produce('{topic}', 0, 'order-42'::bytea, '{{\"id\":42}}'::bytea, "
            "ARRAY[ROW('h', '1')::skiff.header, ROW('h', '2')::skiff.header])"
        )
        assert offset == "2"
        waiting: list = []
        kafka_producer = producer(broker.bootstrap)
        kafka_producer.produce(
            topic,
            key=b"k3",
            value=b"from-kafka-3",
            partition=0,
            on_delivery=lambda err, msg: waiting.append((err, msg)),
        )
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            kafka_producer.poll(0.05)
            msg = follower.poll(0.05)
            assert msg is None or msg.error(), f"record of an open transaction seen: {msg.offset()} {msg.value()}"
        assert waiting == [], "a produce was acknowledged while the outbox transaction held the partition"
        assert watermarks(broker.bootstrap, topic) == (0, 2)
        assert [m.value() for m in consume(broker.bootstrap, topic)] == [b"from-kafka-0", b"from-kafka-1"]
        assert psql(broker.storage, "SELECT count(*) FROM app_orders") == ["0"]

        # Commit: the order row and the record appear together; the waiting append goes next.
        session.run("COMMIT")
        assert kafka_producer.flush(TIMEOUT) == 0
        [(err, delivered)] = waiting
        assert err is None and delivered.offset() == 3
        first, then = poll_records(follower, 2, {(topic, 0)})
        assert (first.offset(), first.key(), first.value(), first.headers()) == (
            2,
            b"order-42",
            b'{"id":42}',
            [("h", b"1"), ("h", b"2")],
        )
        assert (then.offset(), then.value()) == (3, b"from-kafka-3")
        assert psql(broker.storage, "SELECT id, status FROM app_orders") == ["42|paid"]

        # Rollback: neither the row nor the record ever appears, and the offset is not used up.
        session.run("BEGIN")
        session.run("INSERT INTO app_orders VALUES (43, 'paid')")
        assert session.run(f"SELECT skiff.produce('{topic}', 0, 'order-43'::bytea, 'rolled-back'::bytea)") == ["4"]
        session.run("ROLLBACK")
        assert watermarks(broker.bootstrap, topic) == (0, 4)

        session.run("BEGIN")
        assert session.run(f"SELECT skiff.produce('{topic}', 0, 'order-44'::bytea, 'committed'::bytea)") == ["4"]
        session.run("COMMIT")
        [delivered] = produce(broker.bootstrap, topic, [{"key": b"k5", "value": b"from-kafka-5"}])
        assert delivered.offset() == 5

        rest = poll_records(follower, 2, {(topic, 0)})
        assert [(m.offset(), m.key(), m.value()) for m in rest] == [
            (4, b"order-44", b"committed"),
            (5, b"k5", b"from-kafka-5"),
        ]
    finally:
        session.close()
        follower.close()

    everything = consume(broker.bootstrap, topic, count=6)
    assert [(m.offset(), m.value()) for m in everything] == [
        (0, b"from-kafka-0"),
        (1, b"from-kafka-1"),
        (2, b'{"id":42}'),
        (3, b"from-kafka-3"),
        (4, b"committed"),
        (5, b"from-kafka-5"),
    ]
    assert psql(broker.storage, "SELECT id FROM app_orders ORDER BY id") == ["42"]
    # An unknown topic is an error in the caller's transaction, not a silent no-op.
    result = subprocess.run(
        ["psql", "-w", broker.storage, "-qAtX", "-c", "SELECT skiff.produce('no-such-topic', 0, NULL, 'v')"],
        capture_output=True,
        text=True,
        timeout=15,
    )
    assert result.returncode != 0 and "does not exist" in result.stderr


# Postgres restarted under load --------------------------------------------------------------------


@pytest.fixture
def private_postgres():
    server = PrivateServer()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.mark.parametrize("idempotent", [False, True], ids=["plain", "idempotent"])
@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_postgres_restarted_under_load(broker_factory, private_postgres, mode, idempotent):
    """Postgres goes away (a clean `fast` shutdown, or `immediate`: a crash) and comes back while
    a producer streams acks=all records: the broker keeps running, answers with retriable errors
    meanwhile, the producer finishes by retrying, and every acknowledged record is there. An
    idempotent producer's retries are never stored twice, even when the outcome of a commit was
    lost with the connection."""
    server = private_postgres
    broker = broker_factory("postgres", storage=server.url + "?connect_timeout=2")
    topic = unique("pgrestart")
    create_topic(broker.bootstrap, topic)

    acked: dict[bytes, int] = {}
    failed: list = []

    def on_delivery(err, msg):
        if err is None:
            acked[msg.value()] = msg.offset()
        else:
            failed.append((msg.value(), err))

    client = producer(
        broker.bootstrap,
        **{
            "linger.ms": 2,
            "batch.num.messages": 20,
            "message.timeout.ms": 40000,
            "retry.backoff.ms": 100,
            "retry.backoff.max.ms": 500,
            "enable.idempotence": idempotent,
        },
    )
    sent = 0

    def send(count: int) -> None:
        nonlocal sent
        for _ in range(count):
            while True:
                try:
                    client.produce(topic, value=b"v%06d" % sent, partition=0, on_delivery=on_delivery)
                    break
                except BufferError:
                    client.poll(0.05)
            sent += 1
            client.poll(0)

    def stream_until(condition, limit: float, what: str) -> None:
        deadline = time.monotonic() + limit
        while not condition():
            assert time.monotonic() < deadline, f"{what}: {len(acked)} acks, {len(failed)} failures"
            send(10)
            client.poll(0.005)

    # A consumer tails the partition all along: Postgres going away is a pause for it, not an end.
    tailed: dict[int, bytes] = {}
    tail_errors: list = []
    stop_tailing = threading.Event()

    def tail() -> None:
        reader = consumer(broker.bootstrap, **{"enable.partition.eof": False})
        try:
            reader.assign([TopicPartition(topic, 0, 0)])
            give_up = time.monotonic() + 90  # ends on its own if the test fails before stopping it
            while not stop_tailing.is_set() and time.monotonic() < give_up:
                msg = reader.poll(0.1)
                if msg is None:
                    continue
                if msg.error():
                    if msg.error().code() not in TRANSIENT_CONSUMER_ERRORS:
                        tail_errors.append(msg.error())
                    continue
                assert msg.offset() not in tailed, f"offset {msg.offset()} delivered twice"
                tailed[msg.offset()] = msg.value()
        except BaseException as error:  # noqa: BLE001 - reported by the test thread
            tail_errors.append(error)
        finally:
            reader.close()

    tailer = threading.Thread(target=tail, daemon=True)
    tailer.start()

    stream_until(lambda: len(acked) >= 300, 20, "no steady stream before the restart")
    restarter_error: list = []
    answering: list[bool] = []
    down = threading.Event()

    def restart() -> None:
        try:
            server.stop(mode)
            down.set()
            started = time.monotonic()
            # The broker keeps serving the Kafka protocol while its storage is gone.
            answering.append(kafka_wire.answers_api_versions(broker.port, timeout=1.0))
            time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))  # an outage, not just a blip
            server.start()
        except BaseException as error:  # noqa: BLE001 - reported by the test thread
            restarter_error.append(error)
            down.set()

    acked_before = len(acked)
    restarter = threading.Thread(target=restart)
    restarter.start()
    stream_until(down.is_set, 30, "Postgres did not stop")
    stream_until(lambda: not restarter.is_alive(), 40, "Postgres did not start again")
    restarter.join()
    assert not restarter_error, restarter_error
    assert answering == [True], "the broker did not answer ApiVersions while Postgres was down"
    acked_at_restart = len(acked)
    # After the restart the stream carries on through the same broker process.
    stream_until(lambda: len(acked) >= acked_at_restart + 300, 30, "no acks after Postgres came back")
    assert client.flush(45) == 0, "producer did not finish after Postgres came back"
    print(
        f"sent {sent}; acknowledged {acked_before} before the restart, {acked_at_restart} when it "
        f"was back, {len(acked)} in all; {len(failed)} failed"
    )
    assert broker.alive(), "the broker exited while Postgres restarted:\n" + broker.log_tail()
    log = broker.log_text()
    assert "panicked" not in log, "the broker panicked:\n" + broker.log_tail()
    assert not failed, f"{len(failed)} records failed for good, first: {failed[:3]}"
    assert len(acked) == sent

    low, high = watermarks(broker.bootstrap, topic)
    assert low == 0
    messages = consume(broker.bootstrap, topic, count=high, timeout=30)
    stored = {m.offset(): m.value() for m in messages}
    assert sorted(stored) == list(range(high)), "offsets have a gap or repeat"
    print(f"stored {len(stored)} records for {len(acked)} acknowledged")
    lost = {v: o for v, o in acked.items() if stored.get(o) != v}
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged records are missing, e.g. {list(lost.items())[:5]}"
    # Without idempotence a retried append whose commit did succeed is stored twice; nothing else is.
    assert set(stored.values()) == set(acked)
    if idempotent:
        assert len(stored) == len(acked), f"{len(stored) - len(acked)} records stored twice"
        assert sorted(acked.values()) == list(range(high))

    deadline = time.monotonic() + 20
    while len(tailed) < high and time.monotonic() < deadline and tailer.is_alive():
        time.sleep(0.05)
    stop_tailing.set()
    tailer.join(15)
    assert not tail_errors, f"the tailing consumer failed: {tail_errors[:3]}"
    assert tailed == stored, f"the tailing consumer read {len(tailed)} of {high} records"



def test_outbox_refuses_topics_with_a_schema(broker_factory):
    """skiff.produce cannot run the broker's decoders, so it must not be a back door around
    validation: a topic whose <topic>-value subject has a schema is refused with SQLSTATE 23514
    and a message saying why, until the topic turns validation off."""
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

    broker = broker_factory("postgres", schema_registry=True)
    topic = unique("validated")
    create_topic(broker.bootstrap, topic)
    registry = SchemaRegistryClient({"url": broker.registry_url})
    registry.register_schema(f"{topic}-value", Schema('{"type": "string"}', "AVRO"))
    statement = f"SELECT skiff.produce('{topic}', 0, NULL, 'not avro'::bytea)"
    refused = subprocess.run(
        ["psql", "-w", broker.storage, "-qAtX", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose", "-c", statement],
        capture_output=True,
        text=True,
        timeout=15,
    )
    assert refused.returncode != 0
    assert "23514" in refused.stderr and f"subject {topic}-value" in refused.stderr, refused.stderr
    assert watermarks(broker.bootstrap, topic) == (0, 0)

    resource = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[ConfigEntry("skiff.schema.validation", "false", incremental_operation=AlterConfigOpType.SET)],
    )
    for future in admin(broker.bootstrap).incremental_alter_configs([resource]).values():
        future.result(timeout=15)
    assert psql(broker.storage, statement) == ["0"]
    assert watermarks(broker.bootstrap, topic) == (0, 1)
