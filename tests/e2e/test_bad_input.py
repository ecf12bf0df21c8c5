"""Malformed frames over raw sockets. For each, the broker drops only that connection and logs a
warn/error line naming it, while a client that was already connected keeps producing and
consuming. ApiVersions with an unknown version is the exception: Kafka answers it with
UNSUPPORTED_VERSION and a v0-shaped list of supported versions, and keeps the connection."""

from __future__ import annotations

import re
import socket
import struct

import pytest
from confluent_kafka import TopicPartition

import kafka_wire
from helpers import consume, consumer, create_topic, poll_records, producer, unique

# tracing's format: "<timestamp>  WARN target: message fields".
WARN_OR_ERROR = re.compile(r"^\S+\s+(WARN|ERROR)\s")


def header(api_key: int, version: int, correlation_id: int = 7) -> bytes:
    return kafka_wire.request_header(api_key, version, correlation_id, "skiff-e2e-bad")


BAD_INPUTS = {
    "negative_length": struct.pack(">i", -1),
    "huge_length": struct.pack(">i", 0x7FFFFFFF),  # > the 100 MiB default; no body follows
    "zero_length": struct.pack(">i", 0),
    "header_too_short": kafka_wire.frame(b"\xff\xff\xff"),
    "http_request": b"GET / HTTP/1.1\r\nHost: skiff\r\n\r\n",  # reads as a ~1.2 GB length
    "client_id_past_frame_end": kafka_wire.frame(struct.pack(">hhih", 18, 0, 7, 500) + b"abc"),
    # Metadata v4 whose topic array claims 2^31-1 entries in a 6-byte body: must fail to decode
    # without trying to allocate for the announced count.
    "array_count_past_frame_end": kafka_wire.frame(header(3, 4) + b"\x7f\xff\xff\xff\xde\xad"),
    "unknown_api_key": kafka_wire.frame(header(999, 0) + b"\x00" * 8),
    "unknown_metadata_version": kafka_wire.frame(header(3, 99) + struct.pack(">i", -1)),
}


class Witness:
    """A confluent-kafka producer and consumer connected before the bad input arrives."""

    def __init__(self, bootstrap: str):
        self.topic = unique("witness")
        create_topic(bootstrap, self.topic)
        self.producer = producer(bootstrap, **{"linger.ms": 0})
        self.consumer = consumer(bootstrap)
        self.consumer.assign([TopicPartition(self.topic, 0, 0)])
        self.sent = 0

    def round_trip(self) -> None:
        value = b"witness-%d" % self.sent
        reports = []
        self.producer.produce(self.topic, value, on_delivery=lambda err, msg: reports.append((err, msg)))
        assert self.producer.flush(10) == 0
        err, msg = reports[0]
        assert err is None, f"witness produce failed: {err}"
        assert msg.offset() == self.sent
        messages = poll_records(self.consumer, 1, {(self.topic, 0)}, timeout=10)
        assert [(m.offset(), m.value()) for m in messages] == [(self.sent, value)]
        self.sent += 1

    def close(self) -> None:
        self.consumer.close()


@pytest.fixture
def witness(memory_broker):
    w = Witness(memory_broker.bootstrap)
    w.round_trip()
    yield w
    w.close()


def send_bad_input(broker, data: bytes, half_close: bool = False) -> tuple[int, str]:
    """Sends `data` on a fresh connection; returns (local port, how the broker closed it)."""
    try:
        sock = kafka_wire.connect(broker.port)
    except ConnectionRefusedError:
        raise AssertionError(
            f"the broker refuses connections (process alive: {broker.alive()}); end of its log:\n"
            + broker.log_tail(20)
        ) from None
    try:
        local_port = sock.getsockname()[1]
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            return local_port, "reset"
        return local_port, kafka_wire.wait_closed(sock, timeout=5)
    finally:
        sock.close()


def assert_logged_drop(broker, mark: int, local_port: int) -> str:
    """The broker survived, and a warn/error line written after `mark` names the connection (its
    peer port)."""
    if not broker.alive():
        broker.proc.wait(5)
        raise AssertionError(
            f"the broker process died (exit status {broker.proc.returncode}); its log since the "
            f"bad input:\n{broker.log_since(mark)[:3000]}"
        )
    names_connection = re.compile(rf":{local_port}\b")
    return broker.wait_log_line(
        mark,
        lambda line: WARN_OR_ERROR.search(line) is not None and names_connection.search(line) is not None,
        timeout=5,
    )


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_frame_drops_only_that_connection(memory_broker, witness, case):
    mark = memory_broker.log_mark()
    local_port, how = send_bad_input(memory_broker, BAD_INPUTS[case])
    assert how in ("eof", "reset")
    assert_logged_drop(memory_broker, mark, local_port)
    assert memory_broker.alive()
    witness.round_trip()


def test_truncated_body_then_close(memory_broker, witness):
    """Length says 100, 10 bytes arrive, then the client closes its side."""
    mark = memory_broker.log_mark()
    data = struct.pack(">i", 100) + header(3, 4)[:10]
    local_port, how = send_bad_input(memory_broker, data, half_close=True)
    assert how in ("eof", "reset")
    assert_logged_drop(memory_broker, mark, local_port)
    assert memory_broker.alive()
    witness.round_trip()


def test_frame_over_configured_limit_is_refused_before_the_body(broker_factory):
    broker = broker_factory("memory", "--max-request-bytes", "4096")
    w = Witness(broker.bootstrap)
    try:
        w.round_trip()
        mark = broker.log_mark()
        # Announce 4097 bytes but send none: the broker must refuse on the length alone.
        local_port, how = send_bad_input(broker, struct.pack(">i", 4097))
        assert how in ("eof", "reset")
        assert_logged_drop(broker, mark, local_port)
        w.round_trip()
    finally:
        w.close()


def test_many_bad_connections_leave_the_broker_serving(memory_broker, witness):
    for round_ in range(20):
        for case, data in sorted(BAD_INPUTS.items()):
            _, how = send_bad_input(memory_broker, data)
            assert how in ("eof", "reset"), (round_, case)
            assert kafka_wire.answers_api_versions(memory_broker.port), (
                f"the broker stopped answering after {case!r} in round {round_} "
                f"(process alive: {memory_broker.alive()}); end of its log:\n{memory_broker.log_tail(20)}"
            )
    witness.round_trip()


def test_api_versions_unknown_version_falls_back_to_v0(memory_broker):
    with kafka_wire.connect(memory_broker.port) as sock:
        sock.sendall(kafka_wire.api_versions_request(99, correlation_id=1234))
        correlation_id, error_code, versions = kafka_wire.parse_api_versions_v0(kafka_wire.recv_frame(sock))
        assert correlation_id == 1234
        assert error_code == kafka_wire.ERROR_UNSUPPORTED_VERSION
        for api_key in (kafka_wire.API_PRODUCE, kafka_wire.API_FETCH, kafka_wire.API_METADATA):
            assert api_key in versions, f"api key {api_key} missing from {versions}"
        low, high = versions[kafka_wire.API_API_VERSIONS]
        assert low == 0 and high >= 3, versions[kafka_wire.API_API_VERSIONS]
        assert all(0 <= lo <= hi for lo, hi in versions.values()), versions

        # The connection stays usable: a client retries at a version from the list.
        sock.sendall(kafka_wire.api_versions_request(0, correlation_id=1235))
        correlation_id, error_code, versions_v0 = kafka_wire.parse_api_versions_v0(kafka_wire.recv_frame(sock))
        assert (correlation_id, error_code) == (1235, kafka_wire.ERROR_NONE)
        assert versions_v0 == versions

        sock.sendall(kafka_wire.metadata_v4_request(None, False, correlation_id=1236))
        correlation_id, brokers, _ = kafka_wire.parse_metadata_v4(kafka_wire.recv_frame(sock))
        assert correlation_id == 1236
        assert [(b["host"], b["port"]) for b in brokers] == [("127.0.0.1", memory_broker.port)]


def test_pipelined_requests_are_answered_in_order(memory_broker):
    with kafka_wire.connect(memory_broker.port) as sock:
        requests = b"".join(
            kafka_wire.metadata_v4_request(None, False, correlation_id=100 + i)
            if i % 2
            else kafka_wire.api_versions_request(0, correlation_id=100 + i)
            for i in range(20)
        )
        sock.sendall(requests)
        got = [struct.unpack(">i", kafka_wire.recv_frame(sock)[:4])[0] for _ in range(20)]
    assert got == list(range(100, 120))


def test_corrupt_record_batches_are_refused_and_not_stored(broker):
    """A produced batch with a wrong CRC, or a valid CRC over a record count that the bytes cannot
    hold (2^31-1 records in a few bytes), fails its partition and stores nothing; the broker
    neither crashes nor allocates for the announced count. A good batch then lands at offset 0."""
    topic = unique("corrupt")
    create_topic(broker.bootstrap, topic)
    good = [kafka_wire.record(0, b"good-0"), kafka_wire.record(1, b"good-1")]
    cases = {
        "bad crc": kafka_wire.record_batch(good, corrupt_crc=True),
        "count past the end": kafka_wire.record_batch(good, declared_count=0x7FFFFFFF),
        "count short of the records": kafka_wire.record_batch(good, declared_count=1),
    }
    with kafka_wire.connect(broker.port) as sock:
        for index, (case, batch) in enumerate(cases.items()):
            sock.sendall(kafka_wire.produce_v3_request(topic, 0, batch, correlation_id=index))
            try:
                correlation_id, results = kafka_wire.parse_produce_v3(kafka_wire.recv_frame(sock))
            except EOFError:
                raise AssertionError(
                    f"{case}: the broker closed the connection instead of answering "
                    f"(process alive: {broker.alive()}); end of its log:\n{broker.log_tail(20)}"
                ) from None
            assert correlation_id == index
            error, _ = results[(topic, 0)]
            assert error in (kafka_wire.ERROR_CORRUPT_MESSAGE, kafka_wire.ERROR_INVALID_RECORD), (case, error)

        sock.sendall(kafka_wire.produce_v3_request(topic, 0, kafka_wire.record_batch(good), correlation_id=99))
        correlation_id, results = kafka_wire.parse_produce_v3(kafka_wire.recv_frame(sock))
        assert (correlation_id, results[(topic, 0)]) == (99, (kafka_wire.ERROR_NONE, 0))

    messages = consume(broker.bootstrap, topic, count=2)
    assert [(m.offset(), m.value()) for m in messages] == [(0, b"good-0"), (1, b"good-1")]
