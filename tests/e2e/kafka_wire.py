"""Hand-encoded Kafka frames for the tests that must control every byte.

Only what the tests need: request headers v1 (non-flexible), ApiVersions v0 and Metadata v4
requests, and parsers for their responses. Clients hide these details, which is exactly why the
bad-input and version-fallback tests speak the wire format themselves.
"""

from __future__ import annotations

import socket
import struct
import time

API_PRODUCE = 0
API_FETCH = 1
API_METADATA = 3
API_API_VERSIONS = 18

ERROR_NONE = 0
ERROR_UNKNOWN_TOPIC_OR_PARTITION = 3
ERROR_UNSUPPORTED_VERSION = 35


def string(value: str | None) -> bytes:
    """A Kafka STRING / NULLABLE_STRING (int16 length, -1 for null)."""
    if value is None:
        return struct.pack(">h", -1)
    raw = value.encode()
    return struct.pack(">h", len(raw)) + raw


def request_header(api_key: int, api_version: int, correlation_id: int, client_id: str | None) -> bytes:
    """Request header v1: api key, api version, correlation id, nullable client id."""
    return struct.pack(">hhi", api_key, api_version, correlation_id) + string(client_id)


def frame(payload: bytes) -> bytes:
    """Prefixes a payload with its 4-byte big-endian length."""
    return struct.pack(">i", len(payload)) + payload


def compact_string(value: str) -> bytes:
    """A flexible-version COMPACT_STRING (unsigned varint length + 1); short strings only."""
    raw = value.encode()
    assert len(raw) < 127
    return bytes([len(raw) + 1]) + raw


def api_versions_request(version: int, correlation_id: int, client_id: str = "skiff-e2e") -> bytes:
    """An ApiVersions request, framed, shaped as Kafka clients send it.

    v0-v2: request header v1 and an empty body. v3 and later (including versions the broker does
    not know, like a newer client would send): request header v2 (client id + empty tagged fields)
    and the v3 body (client software name and version, empty tagged fields).
    """
    if version < 3:
        return frame(request_header(API_API_VERSIONS, version, correlation_id, client_id))
    header = request_header(API_API_VERSIONS, version, correlation_id, client_id) + b"\x00"
    body = compact_string("skiff-e2e") + compact_string("1.0") + b"\x00"
    return frame(header + body)


def metadata_v4_request(topics: list[str] | None, allow_auto_topic_creation: bool, correlation_id: int) -> bytes:
    """A Metadata v4 request, framed. `topics=None` asks for all topics."""
    if topics is None:
        body = struct.pack(">i", -1)
    else:
        body = struct.pack(">i", len(topics)) + b"".join(string(t) for t in topics)
    body += struct.pack(">?", allow_auto_topic_creation)
    return frame(request_header(API_METADATA, 4, correlation_id, "skiff-e2e") + body)


def recv_exact(sock: socket.socket, n: int) -> bytes:
    """Reads exactly n bytes or raises EOFError if the peer closes first."""
    chunks = []
    remaining = n
    while remaining:
        chunk = sock.recv(remaining)
        if not chunk:
            raise EOFError(f"connection closed with {remaining} of {n} bytes unread")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def recv_frame(sock: socket.socket) -> bytes:
    """Reads one length-prefixed response frame and returns its payload."""
    (size,) = struct.unpack(">i", recv_exact(sock, 4))
    assert 0 <= size < 64 * 1024 * 1024, f"implausible response size {size}"
    return recv_exact(sock, size)


class Reader:
    """Sequential big-endian decoder over a response payload."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise ValueError(f"response truncated at byte {self.pos} reading {fmt}")
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values if len(values) > 1 else values[0]

    def int16(self) -> int:
        return self.take(">h")

    def int32(self) -> int:
        return self.take(">i")

    def boolean(self) -> bool:
        return self.take(">?")

    def string(self) -> str | None:
        length = self.int16()
        if length < 0:
            return None
        raw = self.data[self.pos : self.pos + length]
        if len(raw) != length:
            raise ValueError("response truncated inside a string")
        self.pos += length
        return raw.decode()

    def remaining(self) -> int:
        return len(self.data) - self.pos


def parse_api_versions_v0(payload: bytes) -> tuple[int, int, dict[int, tuple[int, int]]]:
    """Parses response header v0 + an ApiVersions v0 body.

    Returns (correlation_id, error_code, {api_key: (min_version, max_version)}). Raises if bytes are
    left over, since a v0-shaped body has nothing after the array.
    """
    reader = Reader(payload)
    correlation_id = reader.int32()
    error_code = reader.int16()
    count = reader.int32()
    versions = {}
    for _ in range(count):
        api_key, min_version, max_version = reader.take(">hhh")
        versions[api_key] = (min_version, max_version)
    if reader.remaining():
        raise ValueError(f"{reader.remaining()} bytes left after a v0-shaped ApiVersions body")
    return correlation_id, error_code, versions


def parse_metadata_v4(payload: bytes) -> tuple[int, list[dict], dict[str, dict]]:
    """Parses response header v0 + a Metadata v4 body.

    Returns (correlation_id, brokers, {topic: {"error": code, "partitions": count}}).
    """
    reader = Reader(payload)
    correlation_id = reader.int32()
    reader.int32()  # throttle_time_ms
    brokers = []
    for _ in range(reader.int32()):
        node_id = reader.int32()
        host = reader.string()
        port = reader.int32()
        reader.string()  # rack
        brokers.append({"node_id": node_id, "host": host, "port": port})
    reader.string()  # cluster_id
    reader.int32()  # controller_id
    topics = {}
    for _ in range(reader.int32()):
        error = reader.int16()
        name = reader.string()
        reader.boolean()  # is_internal
        partitions = reader.int32()
        for _ in range(partitions):
            reader.take(">hii")  # error, index, leader
            reader.take(">" + "i" * reader.int32())  # replicas
            reader.take(">" + "i" * reader.int32())  # isr
            reader.take(">" + "i" * reader.int32())  # offline replicas
        topics[name] = {"error": error, "partitions": partitions}
    return correlation_id, brokers, topics


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def roundtrip(port: int, request: bytes, timeout: float = 5.0) -> bytes:
    """Sends one framed request on a fresh connection and returns the response payload."""
    with connect(port, timeout) as sock:
        sock.sendall(request)
        return recv_frame(sock)


def answers_api_versions(port: int, timeout: float = 1.0) -> bool:
    """True once a broker on `port` answers ApiVersions v0 without error."""
    try:
        payload = roundtrip(port, api_versions_request(0, 1), timeout)
        correlation_id, error_code, versions = parse_api_versions_v0(payload)
    except (OSError, EOFError, ValueError, AssertionError, struct.error):
        return False
    return correlation_id == 1 and error_code == ERROR_NONE and API_API_VERSIONS in versions


def wait_closed(sock: socket.socket, timeout: float = 5.0) -> str:
    """Waits until the peer closes `sock`; returns how ("eof" or "reset").

    Any bytes the broker sends instead are a failure: it must drop the connection, not answer.
    """
    deadline = time.monotonic() + timeout
    received = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(
                f"broker kept the connection open for {timeout}s (received {received[:64]!r})"
            )
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return "reset"
        except socket.timeout:
            continue
        if not chunk:
            if received:
                raise AssertionError(f"broker answered {received[:64]!r} before closing")
            return "eof"
        received += chunk


API_OFFSET_FOR_LEADER_EPOCH = 23


def offset_for_leader_epoch_v3_request(
    topic: str, partitions: list[tuple[int, int, int]], correlation_id: int
) -> bytes:
    """OffsetForLeaderEpoch v3 (non-flexible), framed, as a consumer sends it (replica id -1).

    `partitions` holds (partition, current_leader_epoch, leader_epoch) triples.
    """
    body = struct.pack(">i", -1) + struct.pack(">i", 1) + string(topic) + struct.pack(">i", len(partitions))
    for partition, current_epoch, epoch in partitions:
        body += struct.pack(">iii", partition, current_epoch, epoch)
    header = request_header(API_OFFSET_FOR_LEADER_EPOCH, 3, correlation_id, "skiff-e2e")
    return frame(header + body)


def parse_offset_for_leader_epoch_v3(payload: bytes) -> tuple[int, dict[tuple[str, int], tuple[int, int, int]]]:
    """Returns (correlation_id, {(topic, partition): (error_code, leader_epoch, end_offset)})."""
    reader = Reader(payload)
    correlation_id = reader.int32()
    reader.int32()  # throttle_time_ms
    results = {}
    for _ in range(reader.int32()):
        topic = reader.string()
        for _ in range(reader.int32()):
            error, partition, epoch, end_offset = reader.take(">hiiq")
            results[(topic, partition)] = (error, epoch, end_offset)
    if reader.remaining():
        raise ValueError(f"{reader.remaining()} bytes left after an OffsetForLeaderEpoch v3 body")
    return correlation_id, results


# Produce with hand-made record batches -----------------------------------------------------------

ERROR_CORRUPT_MESSAGE = 2
ERROR_INVALID_RECORD = 87

_CRC32C_TABLE = []
for _byte in range(256):
    _crc = _byte
    for _ in range(8):
        _crc = (_crc >> 1) ^ 0x82F63B78 if _crc & 1 else _crc >> 1
    _CRC32C_TABLE.append(_crc)


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def varint(value: int) -> bytes:
    """A zigzag varint, as record fields use."""
    value = (value << 1) ^ (value >> 63)
    out = bytearray()
    while True:
        if value & ~0x7F:
            out.append((value & 0x7F) | 0x80)
            value >>= 7
        else:
            out.append(value)
            return bytes(out)


def record(offset_delta: int, value: bytes) -> bytes:
    body = b"\x00" + varint(0) + varint(offset_delta) + varint(-1) + varint(len(value)) + value + varint(0)
    return varint(len(body)) + body


def record_batch(records: list[bytes], declared_count: int | None = None, corrupt_crc: bool = False) -> bytes:
    """A magic-2 record batch, uncompressed, non-idempotent. `declared_count` may lie about how
    many records follow; `corrupt_crc` flips the checksum."""
    count = len(records) if declared_count is None else declared_count
    after_crc = (
        struct.pack(">hiqqqhii", 0, max(len(records) - 1, 0), 1_700_000_000_000, 1_700_000_000_000, -1, -1, -1, count)
        + b"".join(records)
    )
    crc = crc32c(after_crc) ^ (0xFFFFFFFF if corrupt_crc else 0)
    after_length = struct.pack(">ibI", 0, 2, crc) + after_crc
    return struct.pack(">qi", 0, len(after_length)) + after_length


def produce_v3_request(topic: str, partition: int, batch: bytes, correlation_id: int, acks: int = 1) -> bytes:
    body = (
        string(None)
        + struct.pack(">hi", acks, 10_000)
        + struct.pack(">i", 1)
        + string(topic)
        + struct.pack(">i", 1)
        + struct.pack(">ii", partition, len(batch))
        + batch
    )
    return frame(request_header(API_PRODUCE, 3, correlation_id, "skiff-e2e") + body)


def parse_produce_v3(payload: bytes) -> tuple[int, dict[tuple[str, int], tuple[int, int]]]:
    """Returns (correlation_id, {(topic, partition): (error_code, base_offset)})."""
    reader = Reader(payload)
    correlation_id = reader.int32()
    results = {}
    for _ in range(reader.int32()):
        topic = reader.string()
        for _ in range(reader.int32()):
            partition, error, base_offset, _append_time = reader.take(">ihqq")
            results[(topic, partition)] = (error, base_offset)
    reader.int32()  # throttle_time_ms
    if reader.remaining():
        raise ValueError(f"{reader.remaining()} bytes left after a Produce v3 body")
    return correlation_id, results


API_LIST_GROUPS = 16
ERROR_COORDINATOR_NOT_AVAILABLE = 15


def list_groups_v0_request(correlation_id: int) -> bytes:
    """A ListGroups v0 request: request header v1 and an empty body."""
    return frame(request_header(API_LIST_GROUPS, 0, correlation_id, "skiff-e2e"))


def parse_list_groups_v0(payload: bytes) -> tuple[int, int, list[tuple[str, str]]]:
    """Returns (correlation_id, error_code, [(group_id, protocol_type)])."""
    reader = Reader(payload)
    correlation_id = reader.int32()
    error = reader.int16()
    groups = [(reader.string(), reader.string()) for _ in range(reader.int32())]
    if reader.remaining():
        raise ValueError(f"{reader.remaining()} bytes left after a ListGroups v0 body")
    return correlation_id, error, groups
