"""The soak's final read: every partition from offset 0 with confluent-kafka (read_uncommitted and
read_committed), its batch layout with a hand-made Fetch v4 (librdkafka hides control batches,
the checker needs them to tell a transaction marker's offset from a hole), and each group's
committed offsets."""

from __future__ import annotations

import struct
import time

from confluent_kafka import Consumer, KafkaError, TopicPartition

import cluster  # noqa: F401  (puts tests/e2e on sys.path for kafka_wire)
import kafka_wire
from history import Batch, FinalRead, PartitionRead

API_FETCH = 1
CONTROL = 0x20


def fetch_v4(topic: str, partition: int, offset: int, correlation_id: int) -> bytes:
    body = struct.pack(">iiiib", -1, 100, 0, 8 << 20, 0)  # replica, max wait, min bytes, max bytes, read_uncommitted
    body += struct.pack(">i", 1) + kafka_wire.string(topic)
    body += struct.pack(">i", 1) + struct.pack(">iqi", partition, offset, 4 << 20)
    return kafka_wire.frame(kafka_wire.request_header(API_FETCH, 4, correlation_id, "skiff-soak") + body)


def varint(data: bytes, pos: int) -> tuple[int, int]:
    """A zigzag varint at pos: (value, next position)."""
    shift = value = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (value >> 1) ^ -(value & 1), pos
        shift += 7


def parse_batches(records: bytes) -> list[Batch]:
    """The complete batches in a Fetch response's records (a partial one at the end is left
    for the next fetch)."""
    batches = []
    pos = 0
    while len(records) - pos >= 12:
        base, length = struct.unpack_from(">qi", records, pos)
        if len(records) - pos - 12 < length:
            break
        body = records[pos + 12 : pos + 12 + length]
        # partition leader epoch (4), magic (1), crc (4), then attributes and last offset delta
        attributes, last_delta = struct.unpack_from(">hi", body, 9)
        # then base and max timestamps (8 + 8), producer id (8), epoch (2), base sequence (4)
        producer = struct.unpack_from(">qhi", body, 9 + 6 + 16)
        marker = None
        if attributes & CONTROL:
            # 40 bytes of header after the attributes and last offset delta, then the one record:
            # length, attributes, timestamp delta, offset delta, key length, key (version, type).
            at = 9 + 6 + 8 + 8 + 8 + 2 + 4 + 4
            _, at = varint(body, at)
            at += 1
            _, at = varint(body, at)
            _, at = varint(body, at)
            key_length, at = varint(body, at)
            _version, kind = struct.unpack_from(">hh", body, at) if key_length >= 4 else (0, -1)
            marker = {0: "abort", 1: "commit"}.get(kind, f"type {kind}")
        batches.append(Batch(base, base + last_delta, bool(attributes & CONTROL), marker, producer))
        pos += 12 + length
    return batches


def batch_layout(port: int, topic: str, partition: int, high: int) -> list[Batch]:
    """Every batch of a partition from offset 0 up to `high`, read with raw Fetch v4."""
    batches: list[Batch] = []
    offset = 0
    correlation = 0
    with kafka_wire.connect(port, timeout=30) as sock:
        while offset < high:
            correlation += 1
            sock.sendall(fetch_v4(topic, partition, offset, correlation))
            reader = kafka_wire.Reader(kafka_wire.recv_frame(sock))
            assert reader.int32() == correlation
            reader.int32()  # throttle
            assert reader.int32() == 1 and reader.string() == topic and reader.int32() == 1
            index, error, _high, _stable = reader.take(">ihqq")
            assert index == partition and error == 0, f"fetch {topic}/{partition}@{offset}: error {error}"
            aborted = reader.int32()
            for _ in range(max(aborted, 0)):
                reader.take(">qq")
            size = reader.int32()
            records = reader.data[reader.pos : reader.pos + max(size, 0)]
            found = parse_batches(records)
            assert found, f"fetch {topic}/{partition}@{offset} returned no complete batch below {high}"
            batches.extend(found)
            offset = found[-1].last + 1
    return batches


def read_all(bootstrap: str, partitions: list[tuple[str, int]], isolation: str, timeout: float = 180) -> dict:
    """{(topic, partition): [(offset, value), ...]}: every record a reader with `isolation` gets
    from offset 0 to the end of each partition."""
    client = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"soak-final-{isolation}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "error",  # an out-of-range offset is a failure, never a skip
            "isolation.level": isolation,
            "fetch.wait.max.ms": 100,
        }
    )
    records: dict[tuple[str, int], list[tuple[int, str]]] = {tp: [] for tp in partitions}
    at_end: set[tuple[str, int]] = set()
    try:
        client.assign([TopicPartition(t, p, 0) for t, p in partitions])
        deadline = time.monotonic() + timeout
        while at_end != set(partitions):
            assert time.monotonic() < deadline, f"final read ({isolation}) reached the end of only {sorted(at_end)}"
            msg = client.poll(0.2)
            if msg is None:
                continue
            key = (msg.topic(), msg.partition())
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add(key)
                    continue
                if msg.error().retriable() or msg.error().code() in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN):
                    continue
                raise AssertionError(f"final read ({isolation}): {msg.error()}")
            at_end.discard(key)
            records[key].append((msg.offset(), msg.value().decode()))
        return records
    finally:
        client.close()


def watermarks(bootstrap: str, partitions: list[tuple[str, int]], isolation: str) -> dict:
    """{(topic, partition): latest offset}: the high watermark, or with read_committed the last
    stable offset."""
    client = Consumer({"bootstrap.servers": bootstrap, "group.id": "soak-watermarks", "isolation.level": isolation})
    try:
        return {
            (t, p): client.get_watermark_offsets(TopicPartition(t, p), timeout=30, cached=False)[1]
            for t, p in partitions
        }
    finally:
        client.close()


def group_offsets(bootstrap: str, group: str, wanted: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
    client = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        found = client.committed([TopicPartition(t, p) for t, p in wanted], timeout=30)
    finally:
        client.close()
    return {(tp.topic, tp.partition): tp.offset for tp in found if tp.error is None and tp.offset >= 0}


def final_read(bootstrap: str, port: int, topics: list[str], partitions: int, groups: list[str]) -> FinalRead:
    wanted = [(t, p) for t in topics for p in range(partitions)]
    highs = watermarks(bootstrap, wanted, "read_uncommitted")
    stables = watermarks(bootstrap, wanted, "read_committed")
    uncommitted = read_all(bootstrap, wanted, "read_uncommitted")
    committed = read_all(bootstrap, wanted, "read_committed")
    reads = {
        tp: PartitionRead(highs[tp], stables[tp], uncommitted[tp], committed[tp], batch_layout(port, *tp, highs[tp]))
        for tp in wanted
    }
    return FinalRead(reads, {group: group_offsets(bootstrap, group, wanted) for group in groups})
