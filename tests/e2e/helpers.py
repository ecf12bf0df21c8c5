"""Client helpers shared by the end-to-end tests: confluent-kafka producers, consumers and admin,
and kcat. Every helper has a short, explicit timeout so a broker bug fails a test instead of
hanging the suite.

These consumers never join a group: they `assign()` explicit partitions and offsets and never
commit (librdkafka insists on a `group.id` anyway; it is unique per consumer and unused). Group
members are in group_helpers.py.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import re
import shutil
import struct
import subprocess
import time
import urllib.error
import urllib.request
import uuid

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

from conftest import free_port

TIMEOUT = 15.0


class _RepeatFilter(logging.Filter):
    """Keeps the first few copies of each librdkafka message: a client retrying a dead broker
    repeats the same line every few milliseconds."""

    def __init__(self, keep: int = 3):
        super().__init__()
        self.keep = keep
        self.seen: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = re.sub(r"\d+", "#", record.getMessage())
        self.seen[key] = self.seen.get(key, 0) + 1
        return self.seen[key] <= self.keep


# librdkafka's log lines go through Python logging, so pytest shows them only for failing tests.
_librdkafka_logger = logging.getLogger("librdkafka")
_librdkafka_logger.addFilter(_RepeatFilter())
CLIENT_LOG = {"logger": _librdkafka_logger}
# Consumer errors that are events, not failures (a broker going away and coming back).
TRANSIENT_CONSUMER_ERRORS = {
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError._RESOLVE,
}


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# Admin --------------------------------------------------------------------------------------------


class Admin:
    """An AdminClient whose returned futures keep it alive.

    librdkafka fails every pending future with _DESTROY once its client is garbage collected, so
    `admin(addr).create_topics(...)` with a bare AdminClient would lose the answers.
    """

    def __init__(self, client: AdminClient):
        self._client = client

    def __getattr__(self, name):
        method = getattr(self._client, name)
        if not callable(method):
            return method

        def call(*args, **kwargs):
            result = method(*args, **kwargs)
            futures = result.values() if isinstance(result, dict) else [result]
            for future in futures:
                if isinstance(future, concurrent.futures.Future):
                    future.skiff_admin_client = self._client
            return result

        return call


def admin(bootstrap: str, **conf) -> Admin:
    return Admin(AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000, **CLIENT_LOG, **conf}))


def wait_futures(futures: dict, timeout: float = TIMEOUT) -> dict:
    """Resolves every future of an AdminClient call; returns {key: result or KafkaException}."""
    results = {}
    for key, future in futures.items():
        try:
            results[key] = future.result(timeout=timeout)
        except KafkaException as error:
            results[key] = error
        except concurrent.futures.TimeoutError:
            raise AssertionError(f"no admin answer for {key} within {timeout}s") from None
    return results


def error_code(outcome) -> int | None:
    """The Kafka error code inside a KafkaException outcome, or None for a success."""
    if isinstance(outcome, KafkaException):
        return outcome.args[0].code()
    return None


def create_topic(bootstrap: str, name: str, partitions: int = 1, config: dict | None = None) -> None:
    client = admin(bootstrap)
    futures = client.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
        operation_timeout=10,
        request_timeout=TIMEOUT,
    )
    outcome = wait_futures(futures)[name]
    assert error_code(outcome) is None, f"create_topics({name}) failed: {outcome}"


def topic_partitions(bootstrap: str, name: str) -> int | None:
    """Partition count of a topic as listed in Metadata for all topics, or None if absent."""
    metadata = admin(bootstrap).list_topics(timeout=TIMEOUT)
    topic = metadata.topics.get(name)
    if topic is None or topic.error is not None:
        return None
    return len(topic.partitions)


# Producing ----------------------------------------------------------------------------------------


def producer(bootstrap: str, **conf) -> Producer:
    settings = {
        "bootstrap.servers": bootstrap,
        "linger.ms": 5,
        "acks": "all",
        "message.timeout.ms": 15000,
        "socket.timeout.ms": 10000,
        **CLIENT_LOG,
    }
    settings.update(conf)
    return Producer(settings)


def produce(bootstrap: str, topic: str, records: list[dict], **conf) -> list:
    """Produces records ({"key", "value", "headers", "timestamp", "partition"}) in order and waits
    for every delivery report. Returns the delivered Messages in produce order; fails on any error.
    """
    client = producer(bootstrap, **conf)
    reports: list = [None] * len(records)

    def on_delivery(index):
        def callback(err, msg):
            reports[index] = (err, msg)

        return callback

    for index, record in enumerate(records):
        kwargs = {k: v for k, v in record.items() if k in ("key", "value", "headers", "timestamp", "partition")}
        while True:
            try:
                client.produce(topic, on_delivery=on_delivery(index), **kwargs)
                break
            except BufferError:
                client.poll(0.05)
        client.poll(0)
    remaining = client.flush(TIMEOUT)
    assert remaining == 0, f"{remaining} records still undelivered after {TIMEOUT}s"
    failures = [(i, err) for i, (err, _) in enumerate(reports) if err is not None]
    assert not failures, f"delivery failed for {len(failures)} records, first: {failures[:3]}"
    return [msg for _, msg in reports]


def values(prefix: str, count: int, size: int = 0) -> list[bytes]:
    """Deterministic values; `size` pads them with compressible text."""
    filler = ("skiff-" * (size // 6 + 1))[:size]
    return [f"{prefix}-{i}-{filler}".encode() for i in range(count)]


# Consuming ----------------------------------------------------------------------------------------


def consumer(bootstrap: str, **conf) -> Consumer:
    settings = {
        "bootstrap.servers": bootstrap,
        "group.id": unique("unused-group"),
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "error",  # an out-of-range offset is a failure, never a silent skip
        "fetch.wait.max.ms": 100,
        "socket.timeout.ms": 10000,
        **CLIENT_LOG,
    }
    settings.update(conf)
    return Consumer(settings)


def poll_records(client: Consumer, count: int | None, partitions: set, timeout: float = TIMEOUT) -> list:
    """Polls an assigned consumer until `count` records arrived (None: any number) and every
    partition in `partitions` reported end-of-partition after its last record."""
    records = []
    at_end: set = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = client.poll(0.1)
        if msg is None:
            continue
        if msg.error():
            code = msg.error().code()
            if code == KafkaError._PARTITION_EOF:
                at_end.add((msg.topic(), msg.partition()))
                if (count is None or len(records) >= count) and at_end >= partitions:
                    return records
                continue
            if code in TRANSIENT_CONSUMER_ERRORS:
                continue
            raise AssertionError(f"consumer error after {len(records)} records: {msg.error()}")
        records.append(msg)
        at_end.discard((msg.topic(), msg.partition()))
    raise AssertionError(
        f"timed out after {timeout}s with {len(records)} records (wanted {count}); "
        f"partitions at end: {sorted(at_end)} of {sorted(partitions)}"
    )


def consume(
    bootstrap: str,
    topic: str,
    count: int | None = None,
    partitions=(0,),
    offset: int = OFFSET_BEGINNING,
    timeout: float = TIMEOUT,
    **conf,
) -> list:
    """Reads `topic` from `offset` on the given partitions until `count` records arrived and each
    partition is at its end. With count=None, reads until every partition is at its end."""
    client = consumer(bootstrap, **conf)
    try:
        client.assign([TopicPartition(topic, p, offset) for p in partitions])
        return poll_records(client, count, {(topic, p) for p in partitions}, timeout)
    finally:
        client.close()


def kafka_python_records(bootstrap: str, topic: str, count: int, timeout: float = TIMEOUT) -> list:
    """Reads partition 0 of `topic` from the beginning with kafka-python (no group) until `count`
    records arrived or `timeout` passed; returns its ConsumerRecords."""
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KafkaTopicPartition

    client = KafkaConsumer(
        bootstrap_servers=[bootstrap],
        group_id=None,
        enable_auto_commit=False,
        request_timeout_ms=10000,
        fetch_max_wait_ms=100,
    )
    try:
        partition = KafkaTopicPartition(topic, 0)
        client.assign([partition])
        client.seek_to_beginning(partition)
        records = []
        deadline = time.monotonic() + timeout
        while len(records) < count and time.monotonic() < deadline:
            for batch in client.poll(timeout_ms=200).values():
                records.extend(batch)
        return records
    finally:
        client.close()


def record_tuples(messages) -> list[tuple]:
    """(partition, offset, key, value, headers) for exact comparisons."""
    return [(m.partition(), m.offset(), m.key(), m.value(), m.headers()) for m in messages]


def watermarks(bootstrap: str, topic: str, partition: int = 0) -> tuple[int, int]:
    """(low, high) watermark queried from the broker (ListOffsets earliest and latest)."""
    client = consumer(bootstrap)
    try:
        return client.get_watermark_offsets(TopicPartition(topic, partition), timeout=TIMEOUT, cached=False)
    finally:
        client.close()


# kcat ---------------------------------------------------------------------------------------------


def kcat_path() -> str:
    path = shutil.which("kcat") or shutil.which("kafkacat")
    assert path, "kcat is not installed (scripts/test.sh installs it)"
    return path


def kcat(*args: str, input: bytes | None = None, timeout: float = 30.0) -> subprocess.CompletedProcess:
    """Runs kcat and fails with its stderr if it exits non-zero."""
    result = subprocess.run(
        [kcat_path(), *args],
        input=input if input is not None else b"",
        capture_output=True,
        timeout=timeout,
    )
    assert result.returncode == 0, (
        f"kcat {' '.join(args)} exited {result.returncode}\nstdout: {result.stdout[-2000:]!r}\n"
        f"stderr: {result.stderr.decode(errors='replace')[-4000:]}"
    )
    return result


def kcat_produce(bootstrap: str, topic: str, lines: list[str], *args: str, partition: int = 0) -> None:
    """Produces newline-separated lines with kcat; `-K :` style options come through `args`."""
    data = "".join(line + "\n" for line in lines).encode()
    result = kcat("-P", "-b", bootstrap, "-t", topic, "-p", str(partition), "-X", "acks=all", *args, input=data)
    stderr = result.stderr.decode(errors="replace")
    assert "failed" not in stderr.lower() and "error" not in stderr.lower(), stderr


def kcat_consume(bootstrap: str, topic: str, *args: str, partition: int = 0, offset: str = "beginning") -> str:
    """Consumes a partition to its end with kcat (no group) and returns stdout."""
    result = kcat(
        "-C", "-b", bootstrap, "-t", topic, "-p", str(partition), "-o", offset, "-e", "-q",
        "-X", "fetch.wait.max.ms=100", *args,
    )
    return result.stdout.decode(errors="replace")


def kcat_consume_json(bootstrap: str, topic: str, *args: str, partition: int = 0) -> list[dict]:
    out = kcat_consume(bootstrap, topic, "-J", *args, partition=partition)
    return [json.loads(line) for line in out.splitlines() if line.strip()]


# Schema validation ------------------------------------------------------------------------------

# Avro schemas the validation tests register: a record with two fields, and an unrelated one.
USER_AVRO = json.dumps(
    {
        "type": "record",
        "name": "User",
        "namespace": "skiff.test",
        "fields": [{"name": "name", "type": "string"}, {"name": "age", "type": "int"}],
    }
)
OTHER_AVRO = json.dumps({"type": "record", "name": "Other", "fields": [{"name": "x", "type": "long"}]})


def schema_framed(schema_id: int, payload: bytes) -> bytes:
    """`payload` in the schema registry's wire format: magic byte 0, then the 4-byte schema id."""
    return b"\x00" + struct.pack(">I", schema_id) + payload


def produce_outcomes(bootstrap: str, topic: str, records: list, linger_ms: int = 1000, **conf) -> list[int | None]:
    """Produces `records` (values, or (partition, value) pairs) in one go, so each partition's
    records share one batch, and returns each record's error code (None: stored)."""
    settings = {"bootstrap.servers": bootstrap, "linger.ms": linger_ms, "retries": 0, "acks": "all", **CLIENT_LOG}
    client = Producer({**settings, **conf})
    client.list_topics(topic, timeout=10)  # partitions known: the records are batched together
    found: dict[int, int | None] = {}
    for index, record in enumerate(records):
        partition, value = record if isinstance(record, tuple) else (None, record)
        extra = {} if partition is None else {"partition": partition}
        client.produce(
            topic,
            value=value,
            key=b"k%d" % index,
            on_delivery=lambda err, msg, index=index: found.__setitem__(index, err.code() if err else None),
            **extra,
        )
    client.flush(20)
    assert sorted(found) == list(range(len(records))), found
    return [found[index] for index in range(len(records))]



def protobuf_message_file(name: str, package: str, message: str, fields: list[tuple[str, str]],
                          imports: tuple[str, ...] = ()):
    """A `FileDescriptorProto` with one proto3 message whose fields are (name, type) in field
    number order; a type is a scalar's name (`string`, `int64`) or a message's full name."""
    from google.protobuf import descriptor_pb2

    field = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name=name, package=package, syntax="proto3", dependency=list(imports))
    added = file.message_type.add(name=message)
    for number, (field_name, kind) in enumerate(fields, 1):
        scalar = getattr(field, f"TYPE_{kind.upper()}", None)
        if scalar is not None:
            added.field.add(name=field_name, number=number, type=scalar, label=field.LABEL_OPTIONAL)
        else:
            added.field.add(name=field_name, number=number, type=field.TYPE_MESSAGE, type_name=f".{kind}",
                            label=field.LABEL_OPTIONAL)
    return file


def protobuf_classes(files: list, *messages: str) -> list:
    """The generated classes of `messages` (full names), built at run time from `files`
    (imported files first), as protoc would build them."""
    from google.protobuf import descriptor_pool, message_factory

    pool = descriptor_pool.DescriptorPool()
    for file in files:
        pool.Add(file)
    return [message_factory.GetMessageClass(pool.FindMessageTypeByName(name)) for name in messages]


# Metrics -----------------------------------------------------------------------------------------


def metrics_broker(broker_factory, engine: str, *extra: str, **kwargs):
    """A broker serving metrics; returns it and the metrics base URL."""
    port = free_port()
    broker = broker_factory(engine, "--metrics-listen", f"127.0.0.1:{port}", *extra, **kwargs)
    return broker, f"http://127.0.0.1:{port}"


def get(url: str) -> tuple[int, str]:
    """Status and body of a GET, error statuses included."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


class Scrape:
    """One scrape of `/metrics`, parsed by `prometheus_client`."""

    def __init__(self, base: str):
        status, text = get(base + "/metrics")
        assert status == 200, text
        self.samples = [
            sample for family in text_string_to_metric_families(text) for sample in family.samples
        ]

    def total(self, name: str, **labels: str) -> float:
        """The sum of the samples named `name` whose labels include `labels` (0 if none)."""
        return sum(
            sample.value
            for sample in self.samples
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
        )

    def names(self) -> set[str]:
        return {sample.name for sample in self.samples}


def wait_for(base: str, predicate, what: str) -> Scrape:
    """Scrapes until `predicate(scrape)` holds (a state that must come), failing after TIMEOUT."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        scrape = Scrape(base)
        if predicate(scrape):
            return scrape
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not seen within {TIMEOUT}s")
        time.sleep(0.05)


def wait_cleaner_passes(base: str, count: int) -> None:
    """Waits until the broker serving metrics at `base` completes `count` more log cleaner
    passes than it had when called: a positive signal that retention and compaction looked at
    every topic, where sleeping would pass with a cleaner that never runs."""
    before = Scrape(base).total("skiff_cleaner_passes_total")
    wait_for(base, lambda s: s.total("skiff_cleaner_passes_total") >= before + count, f"{count} cleaner passes")
