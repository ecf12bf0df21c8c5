#!/usr/bin/env python3
"""Writes the committed seed corpus of the fuzz targets (fuzz/corpus/<target>/seed-*): a few
valid inputs of each kind, so every run starts from real shapes instead of rediscovering the
Kafka framing. Run from the repository root with the test venv's Python (it has kafka-python and
fastavro): `~/.cache/skiff-venv/bin/python fuzz/seeds.py`."""

from __future__ import annotations

import io
import json
import struct
import sys
from pathlib import Path

import fastavro
from kafka.record.default_records import DefaultRecordBatchBuilder

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent / "tests" / "e2e"))
import kafka_wire  # noqa: E402

sys.path.insert(0, str(ROOT))


def batch(compression: int, transactional: bool = False) -> bytes:
    """A v2 record batch of three records, one with repeated header keys."""
    builder = DefaultRecordBatchBuilder(
        magic=2, compression_type=compression, is_transactional=transactional,
        producer_id=7 if transactional else -1, producer_epoch=0 if transactional else -1,
        base_sequence=0 if transactional else -1, batch_size=1 << 20,
    )
    builder.append(0, timestamp=1_700_000_000_000, key=b"k", value=b"v1", headers=[])
    builder.append(1, timestamp=1_700_000_000_001, key=None, value=b"v2", headers=[("h", b"1"), ("h", b"2")])
    builder.append(2, timestamp=1_700_000_000_002, key=b"k", value=None, headers=[])
    return bytes(builder.build())


def produce_v3(records: bytes) -> bytes:
    """A Produce v3 request (header v1) for one partition, without the length prefix."""
    body = kafka_wire.string(None) + struct.pack(">hi", -1, 30_000)
    body += struct.pack(">i", 1) + kafka_wire.string("orders") + struct.pack(">i", 1)
    body += struct.pack(">ii", 0, len(records)) + records
    return kafka_wire.request_header(0, 3, 1, "seed") + body


def avro_node() -> bytes:
    text = open_target("schema_payload").split('const AVRO: &str = r#"')[1].split('"#;')[0]
    schema = fastavro.parse_schema(json.loads(text))
    out = io.BytesIO()
    node = {"id": 1, "label": "root", "tags": ["a"], "attributes": {"k": b"v"}, "amount": b"\x01\x00",
            "children": [{"id": 2, "label": None, "tags": [], "attributes": {}, "amount": b"\x00", "children": []}]}
    fastavro.schemaless_writer(out, schema, node)
    return out.getvalue()


def s3_heads() -> list[dict]:
    """Partition heads as the S3 engine stores them (crates/storage-s3/src/head.rs): an empty
    one, and one with producers, an open and an aborted transaction, a segment and entries."""
    entry = lambda base, count: {"b": base, "n": count, "k": "data/obj", "s": 0, "l": 120, "t": 1000, "z": 480}  # noqa: E731
    return [
        {"log_start": 0, "high": 0},
        {
            "log_start": 2, "high": 9,
            "producers": {"5": {"epoch": 0, "batches": [[0, 1, 2], [2, 3, 4]], "last_used_ms": 1000},
                          "6": {"epoch": 2, "batches": [[0, 0, 6]], "last_used_ms": 2000}},
            "open": {"6": 6},
            "aborted": [{"producer_id": 5, "first": 2, "last": 5}],
            "segments": [{"first": 0, "last": 3, "object": "index/seg-0"}],
            "index": [entry(4, 2), entry(6, 1), entry(7, 2)],
            "writes": ["token-1", "token-2"],
        },
    ]


def registry_requests() -> list[bytes]:
    """A route byte (fuzz_targets/registry_request.rs) and a JSON body for it."""
    evolved = {"type": "record", "name": "Order", "fields": [
        {"name": "id", "type": "long"}, {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "tags", "type": {"type": "array", "items": "string"}, "default": []}]}
    proto = 'syntax = "proto3"; message Order { int64 id = 1; map<string, string> labels = 2; }'
    bodies = [
        (0, {"schema": json.dumps(evolved)}),
        (0, {"schema": proto, "schemaType": "PROTOBUF"}),
        (0, {"schema": json.dumps({"type": "object", "properties": {"id": {"type": "integer"}}}),
             "schemaType": "JSON", "references": [{"name": "x", "subject": "other", "version": 1}]}),
        (1, {"schema": json.dumps(evolved)}),
        (2, {"schema": json.dumps(evolved)}),
        (3, {"schema": json.dumps({"type": "string"})}),
        (4, {"compatibility": "FULL_TRANSITIVE"}),
        (5, {"compatibility": "NONE"}),
        (6, {"mode": "READONLY"}),
        (7, {"mode": "IMPORT"}),
    ]
    return [bytes([route]) + json.dumps(body).encode() for route, body in bodies]


def open_target(name: str) -> str:
    return (ROOT / "fuzz_targets" / f"{name}.rs").read_text()


def main() -> None:
    unframed = lambda framed: framed[4:]  # noqa: E731 (the broker's frame reader strips the length)
    seeds = {
        "request": [
            unframed(kafka_wire.api_versions_request(0, 1)),
            unframed(kafka_wire.api_versions_request(3, 2)),
            unframed(kafka_wire.metadata_v4_request(["orders", "payments"], True, 3)),
            unframed(kafka_wire.metadata_v4_request(None, False, 4)),
            produce_v3(batch(0)),
            produce_v3(batch(1)),
        ],
        "record_batch": [batch(0), batch(1), batch(0, transactional=True),
                         batch(0) + batch(1)],  # none and gzip: the codecs kafka-python has without extras
        "schema_text": [
            b"\x00" + json.dumps({"type": "record", "name": "A", "fields": [{"name": "x", "type": "int"}]}).encode(),
            b"\x01" + json.dumps({"type": "object", "properties": {"x": {"type": "integer"}}}).encode(),
            b"\x02" + b'syntax = "proto3"; message A { int32 x = 1; repeated string y = 2; }',
        ],
        "schema_payload": [
            b"\x00" + b"\x00\x00\x00\x00\x01" + avro_node(),
            b"\x01" + b"\x00\x00\x00\x00\x02" + b'{"id": 1, "tags": ["a"], "child": {"id": 2}}',
            b"\x02" + b"\x00\x00\x00\x00\x03\x00" + b"\x0a\x02o1\x12\x05\x0a\x03sku",
        ],
        "s3_head": [json.dumps(head).encode() for head in s3_heads()],
        "registry_request": registry_requests(),
        # PLAIN, then SCRAM's client-first and a client-final for the target's own exchange.
        "sasl_messages": [
            b"\0alice\0pencil",
            b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
            b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
        ],
    }
    for target, inputs in seeds.items():
        directory = ROOT / "corpus" / target
        directory.mkdir(parents=True, exist_ok=True)
        for index, data in enumerate(inputs):
            (directory / f"seed-{index}").write_bytes(data)
        print(f"{target}: {len(inputs)} seeds")


if __name__ == "__main__":
    main()
