#!/usr/bin/env python3
"""What broker-side schema validation costs: produce throughput of small records into a topic
whose `<topic>-value` subject has an Avro, a Protobuf or a JSON schema, against a topic without
one, in one run on one broker; and Schema Registry look-ups per second.

Records are encoded once, before timing (confluent-kafka's AvroSerializer and JSONSerializer;
protobuf's own encoding with Confluent's wire header), so the figures are the broker's cost plus
the client's, not the serializers'. Each phase produces `--records` records with acks=all and
linger.ms=5, rounds alternate between the topics (`--rounds`), and the best and median rates are
reported. Not a test: nothing asserts on time. `bench/run.sh validation` builds the release
binary and runs this.
"""

from __future__ import annotations

import argparse
import json
import statistics
import struct
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from bench import default_binary, start_registry_broker
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

now = time.perf_counter

AVRO = json.dumps({
    "type": "record", "name": "Reading", "namespace": "bench",
    "fields": [{"name": "sensor", "type": "string"}, {"name": "seq", "type": "long"},
               {"name": "celsius", "type": "double"}, {"name": "note", "type": "string"}],
})
JSON_SCHEMA = json.dumps({
    "type": "object",
    "properties": {"sensor": {"type": "string"}, "seq": {"type": "integer"},
                   "celsius": {"type": "number"}, "note": {"type": "string"}},
    "required": ["sensor", "seq", "celsius"],
})
PROTO = """syntax = "proto3";
package bench;
message Reading {
  string sensor = 1;
  int64 seq = 2;
  double celsius = 3;
  string note = 4;
}
"""


def reading(seq: int) -> dict:
    return {"sensor": f"sensor-{seq % 64:02d}", "seq": seq, "celsius": 20.0 + (seq % 100) / 10,
            "note": "steady reading from the north wall"}


def protobuf_reading(seq: int) -> bytes:
    """protobuf's encoding of bench.Reading, built with the runtime descriptor API."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    global _READING
    if "_READING" not in globals():
        file = descriptor_pb2.FileDescriptorProto(name="bench_reading.proto", package="bench", syntax="proto3")
        message = file.message_type.add(name="Reading")
        kinds = descriptor_pb2.FieldDescriptorProto
        for number, (name, kind) in enumerate([("sensor", kinds.TYPE_STRING), ("seq", kinds.TYPE_INT64),
                                               ("celsius", kinds.TYPE_DOUBLE), ("note", kinds.TYPE_STRING)], 1):
            message.field.add(name=name, number=number, type=kind, label=kinds.LABEL_OPTIONAL)
        pool = descriptor_pool.DescriptorPool()
        pool.Add(file)
        _READING = message_factory.GetMessageClass(pool.FindMessageTypeByName("bench.Reading"))
    return _READING(**reading(seq)).SerializeToString()


def produce_rate(bootstrap: str, topic: str, values: list[bytes]) -> float:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                         "enable.idempotence": False, "log_level": 3})
    failures = []
    started = now()
    for value in values:
        while True:
            try:
                producer.produce(topic, value=value, on_delivery=lambda err, _msg: err and failures.append(err))
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    producer.flush(120)
    elapsed = now() - started
    if failures:
        raise SystemExit(f"{topic}: {len(failures)} records refused, e.g. {failures[0]}")
    return len(values) / elapsed


def lookups_per_second(registry_url: str, schema_id: int, subject: str, seconds: float) -> dict:
    """Sequential GET /schemas/ids/{id} and POST /subjects/{s} (look-up), one connection each."""
    figures = {}
    for name, request in [
        ("GET /schemas/ids/{id}", lambda: urllib.request.Request(f"{registry_url}/schemas/ids/{schema_id}")),
        ("POST /subjects/{s} (look-up)", lambda: urllib.request.Request(
            f"{registry_url}/subjects/{subject}", data=json.dumps({"schema": AVRO}).encode(),
            headers={"Content-Type": "application/vnd.schemaregistry.v1+json"})),
    ]:
        count, deadline = 0, now() + seconds
        started = now()
        while now() < deadline:
            with urllib.request.urlopen(request(), timeout=10) as response:
                response.read()
            count += 1
        figures[name] = count / (now() - started)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", type=Path, default=default_binary())
    parser.add_argument("--storage", default="memory://")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="skiff-validation-"))
    broker, bootstrap, registry_url = start_registry_broker(args.binary, args.storage, workdir)
    try:
        suffix = uuid.uuid4().hex[:6]
        topics = {kind: f"bench-{kind}-{suffix}" for kind in ("none", "avro", "protobuf", "json")}
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for future in admin.create_topics([NewTopic(t, 1, 1) for t in topics.values()]).values():
            future.result(30)
        registry = SchemaRegistryClient({"url": registry_url})
        avro_id = registry.register_schema(f"{topics['avro']}-value", Schema(AVRO, "AVRO"))
        proto_id = registry.register_schema(f"{topics['protobuf']}-value", Schema(PROTO, "PROTOBUF"))
        registry.register_schema(f"{topics['json']}-value", Schema(JSON_SCHEMA, "JSON"))

        avro = AvroSerializer(registry, AVRO, conf={"auto.register.schemas": False, "use.latest.version": True})
        jsons = JSONSerializer(JSON_SCHEMA, registry, conf={"auto.register.schemas": False, "use.latest.version": True})
        context = lambda topic: SerializationContext(topic, MessageField.VALUE)  # noqa: E731
        values = {
            "avro": [avro(reading(i), context(topics["avro"])) for i in range(args.records)],
            "protobuf": [b"\x00" + struct.pack(">I", proto_id) + b"\x00" + protobuf_reading(i) for i in range(args.records)],
            "json": [jsons(reading(i), context(topics["json"])) for i in range(args.records)],
        }
        values["none"] = values["avro"]  # the same bytes, into a topic without a schema
        sizes = {kind: statistics.mean(len(v) for v in vs) for kind, vs in values.items()}
        rates: dict[str, list[float]] = {kind: [] for kind in topics}
        for _ in range(args.rounds):
            for kind, topic in topics.items():
                rates[kind].append(produce_rate(bootstrap, topic, values[kind]))
        lookups = lookups_per_second(registry_url, avro_id, f"{topics['avro']}-value", 3.0)
    finally:
        broker.terminate()
        broker.wait(10)

    print(f"skiff {args.binary} on {args.storage}: {args.records} records per phase, {args.rounds} rounds")
    print(f"{'topic':<10} {'bytes/record':>12} {'best rec/s':>12} {'median rec/s':>13} {'vs none':>8}")
    base = statistics.median(rates["none"])
    for kind in topics:
        median = statistics.median(rates[kind])
        print(f"{kind:<10} {sizes[kind]:>12.0f} {max(rates[kind]):>12,.0f} {median:>13,.0f} {median / base:>8.0%}")
    for name, rate in lookups.items():
        print(f"registry {name}: {rate:,.0f} per second (sequential)")
    if args.json:
        args.json.write_text(json.dumps({"rates": rates, "sizes": sizes, "lookups": lookups}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
