#!/usr/bin/env python3
"""What writing a topic as a table costs and how fast rows land: on one broker, in one run,

1. produce throughput into a plain topic, a topic validated against an Avro schema, and a topic
   with the same schema written as a `parquet` table (100-byte Avro records, acks=all,
   linger.ms=5; rounds alternate between the topics, best and median reported);
2. rows per second from produce to committed table: the time from the first record produced
   into a fresh table topic (`skiff.table.flush.ms=1000`, the default 16 MiB
   `skiff.table.flush.bytes`) until the table's files say every record is committed;
3. end-to-end latency from a produce acknowledged to the record visible in the table (a file
   whose metadata covers its offset), with `skiff.table.flush.ms=0` and the default writer
   tick, one record at a time.

Records are encoded once, before timing. Not a test: nothing asserts on time.
`bench/run.sh tables` builds the release binary and runs this.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pyarrow.parquet as pq
from bench import default_binary, start_registry_broker
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from validation_bench import AVRO, produce_rate, reading

now = time.perf_counter


# A note long enough that the framed Avro record is about 100 bytes.
NOTE = "steady reading from the north wall; calibrated 2026-11-30 by the night shift"


def record(seq: int) -> dict:
    return {**reading(seq), "note": NOTE}


FORMAT = "parquet"  # set from --format
CATALOG = None  # pyiceberg's SqlCatalog on the brokers' catalog (iceberg)


def committed_to(directory: Path) -> int:
    """The offset the table of a one-partition topic is committed up to: from the files'
    metadata (parquet), the partition's `txn` version (delta), or the table property
    `skiff.partition.0.next-offset` (iceberg)."""
    if FORMAT == "iceberg":
        try:
            table = CATALOG.load_table(("skiff", directory.name))
        except Exception:  # noqa: BLE001 (no table before the first commit)
            return 0
        return int(table.properties.get("skiff.partition.0.next-offset", 0))
    if FORMAT == "delta":
        from deltalake import DeltaTable

        try:
            return DeltaTable(str(directory)).transaction_version(f"skiff-{directory.name}-0") or 0
        except Exception:  # noqa: BLE001 (no table before the first commit)
            return 0
    ends = [int(pq.read_metadata(f).metadata[b"skiff.next_offset"]) for f in directory.glob("0/*.parquet")]
    return max(ends, default=0)


def wait_committed(directory: Path, offset: int, timeout: float = 300.0) -> float:
    """Polls until the table is committed up to `offset`; returns when that was seen."""
    deadline = now() + timeout
    while committed_to(directory) < offset:
        if now() > deadline:
            raise SystemExit(f"{directory}: not committed to {offset} within {timeout}s")
        time.sleep(0.005)
    return now()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", type=Path, default=default_binary())
    parser.add_argument("--storage", default="memory://")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-samples", type=int, default=30)
    parser.add_argument("--tick-ms", type=int, default=1000, help="the broker's --table-check-interval-ms")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--format", choices=["parquet", "delta", "iceberg"], default="parquet")
    parser.add_argument("--partition-by", default="",
                        help="skiff.table.partition.by of the table topics (iceberg, delta), e.g. 'bucket(8, sensor)'")
    args = parser.parse_args()
    global FORMAT, CATALOG
    FORMAT = args.format

    workdir = Path(tempfile.mkdtemp(prefix="skiff-tables-"))
    tables = workdir / "tables"
    catalog_args = ()
    if FORMAT == "iceberg":
        from pyiceberg.catalog.sql import SqlCatalog

        # A SQL storage is its own catalog; others get a SQLite catalog file.
        if args.storage.startswith(("sqlite://", "postgres://")):
            url = args.storage.split("?", 1)[0]
        else:
            url = f"sqlite://{workdir}/catalog.db"
            catalog_args = ("--iceberg-catalog", url)
        uri = ("sqlite:///" + url[len("sqlite://"):] if url.startswith("sqlite://")
               else url.replace("postgres://", "postgresql+psycopg2://", 1))
        CATALOG = SqlCatalog("skiff", uri=uri)
    broker, bootstrap, registry_url = start_registry_broker(
        args.binary, args.storage, workdir, *catalog_args,
        "--table-location", f"file://{tables}", "--table-check-interval-ms", str(args.tick_ms))
    try:
        suffix = uuid.uuid4().hex[:6]
        topics = {kind: f"bench-{kind}-{suffix}" for kind in ("plain", "validated", "table", "landing", "latency")}
        registry = SchemaRegistryClient({"url": registry_url})
        for kind in ("validated", "table", "landing", "latency"):
            registry.register_schema(f"{topics[kind]}-value", Schema(AVRO, "AVRO"))
        table_config = {"skiff.table.format": args.format}
        if args.partition_by:
            table_config["skiff.table.partition.by"] = args.partition_by
        configs = {"table": table_config, "landing": {**table_config, "skiff.table.flush.ms": "1000"},
                   "latency": {**table_config, "skiff.table.flush.ms": "0"}}
        admin = AdminClient({"bootstrap.servers": bootstrap})
        new = [NewTopic(topic, 1, 1, config=configs.get(kind, {})) for kind, topic in topics.items()]
        for future in admin.create_topics(new).values():
            future.result(30)

        serialize = AvroSerializer(registry, AVRO, conf={"auto.register.schemas": False, "use.latest.version": True})
        context = SerializationContext(topics["table"], MessageField.VALUE)
        values = [serialize(record(i), context) for i in range(args.records)]
        size = statistics.mean(len(v) for v in values)

        rates: dict[str, list[float]] = {kind: [] for kind in ("plain", "validated", "table")}
        for _ in range(args.rounds):
            for kind in rates:
                rates[kind].append(produce_rate(bootstrap, topics[kind], values))

        # One record first, so the partition's writer runs (a writer starts at the next lease
        # round, within 5 s of the topic's creation) before the clock starts.
        produce_rate(bootstrap, topics["landing"], values[:1])
        wait_committed(tables / topics["landing"], 1)
        started = now()
        produced_rate = produce_rate(bootstrap, topics["landing"], values)
        landed = wait_committed(tables / topics["landing"], len(values) + 1) - started

        latencies = []
        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0, "log_level": 3})
        producer.produce(topics["latency"], value=values[0])  # the writer runs before sampling
        producer.flush(10)
        wait_committed(tables / topics["latency"], 1)
        for sample in range(1, args.latency_samples + 1):
            producer.produce(topics["latency"], value=values[sample])
            producer.flush(10)
            acked = now()
            latencies.append(wait_committed(tables / topics["latency"], sample + 1) - acked)
    finally:
        broker.terminate()
        broker.wait(10)

    # Partitioned tables keep files under their values' directories: [data/]<values>/0/.
    pattern = "**/0/*.parquet" if FORMAT != "iceberg" else "data/**/0/*.parquet"
    files = len(list((tables / topics["landing"]).glob(pattern))) - 1
    print(f"skiff {args.binary} on {args.storage}, {args.format} tables: {args.records} records of {size:.0f} bytes, "
          f"{args.rounds} rounds")
    print(f"{'topic':<10} {'best rec/s':>12} {'median rec/s':>13} {'vs plain':>9}")
    base = statistics.median(rates["plain"])
    for kind, measured in rates.items():
        median = statistics.median(measured)
        print(f"{kind:<10} {max(measured):>12,.0f} {statistics.median(measured):>13,.0f} {median / base:>9.0%}")
    print(f"produce to committed table: {len(values) / landed:,.0f} rows/s ({len(values)} rows in {landed:.2f} s, "
          f"{files} files; produce alone {produced_rate:,.0f} rec/s)")
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    print(f"produce acknowledged to visible in the table (flush.ms=0, {args.tick_ms} ms writer tick): "
          f"median {statistics.median(latencies) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms")
    if args.json:
        args.json.write_text(json.dumps({"rates": rates, "size": size, "landed_s": landed,
                                         "latencies_s": latencies, "files": files}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
