"""Topics written as tables (`skiff.table.format=parquet|delta|iceberg`), read back by readers
other people wrote: pyarrow (Apache Arrow's C++ Parquet reader), DuckDB SQL over the files,
delta-rs's `deltalake` and pyiceberg's SqlCatalog on the brokers' catalog database. Records are
produced with confluent-kafka's Avro, JSON Schema and Protobuf serializers against Skiff's own
registry. Every committed record is in the table exactly once (no (partition, offset) twice,
none missing), on every engine; the schema evolves mid-stream; aborted transactional records
never reach the table; a sink topic's log empties once its rows are committed; a broker killed
with kill -9 while two brokers share the storage loses and duplicates nothing; a location on S3
(moto) works like a local one. `skiff table status` reports the commits."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from confluent_kafka import KafkaError
from confluent_kafka.admin import ConfigResource, NewTopic
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from conftest import S3_BUCKET, S3_ENDPOINT, free_port
from helpers import (
    Scrape,
    admin,
    consumer,
    create_topic,
    error_code,
    produce,
    producer,
    protobuf_classes,
    protobuf_message_file,
    unique,
    wait_futures,
    watermarks,
)

ORDER_V1 = json.dumps(
    {
        "type": "record",
        "name": "Order",
        "namespace": "skiff.shop",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "cents", "type": "long"},
            {"name": "tags", "type": {"type": "array", "items": "string"}},
        ],
    }
)
# v2 adds an optional field: backward compatible, old rows read it as null.
ORDER_V2 = json.dumps(
    {
        **json.loads(ORDER_V1),
        "fields": [
            *json.loads(ORDER_V1)["fields"],
            {"name": "note", "type": ["null", "string"], "default": None},
        ],
    }
)
TABLE_ARGS = ("--table-check-interval-ms", "100")
FAST_FLUSH = {"skiff.table.format": "parquet", "skiff.table.flush.ms": "300"}


def table_broker(broker_factory, engine, tables: Path, *args, **kwargs):
    return broker_factory(
        engine, "--table-location", f"file://{tables}", *TABLE_ARGS, *args, schema_registry=True, **kwargs
    )


def order_topic(broker_factory, engine, tables: Path, partitions: int = 1, args=(), **config):
    """A broker writing tables under `tables` (with extra `args`), and a new topic of Avro
    orders (ORDER_V1 registered under its value subject) written as a table:
    (broker, registry, topic)."""
    broker = table_broker(broker_factory, engine, tables, *args)
    registry = SchemaRegistryClient({"url": broker.registry_url})
    topic = unique("orders")
    registry.register_schema(f"{topic}-value", Schema(ORDER_V1, "AVRO"))
    create_topic(broker.bootstrap, topic, partitions=partitions, config={**FAST_FLUSH, **config})
    return broker, registry, topic


def status(broker, topic: str) -> list[dict]:
    """`skiff table status TOPIC --json` on the broker's storage."""
    done = subprocess.run(
        [str(broker.binary), "table", "status", topic, "--storage", broker.storage, "--json"],
        capture_output=True,
        text=True,
        timeout=30,
        env=broker.environment(),
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def committed_offsets(directory: Path) -> dict[int, int]:
    """Per partition, where the table's last commit ends, read from the files' own metadata."""
    ends: dict[int, int] = {}
    for file in directory.glob("*/*.parquet"):
        meta = pq.read_metadata(file).metadata
        partition = int(meta[b"skiff.partition"])
        ends[partition] = max(ends.get(partition, 0), int(meta[b"skiff.next_offset"]))
    return ends


def wait_committed(broker, topic: str, directory: Path, partitions: int = 1, timeout: float = 60.0) -> None:
    """Polls the table's files until every partition is committed up to its log end."""
    deadline = time.monotonic() + timeout
    while True:
        ends = [watermarks(broker.bootstrap, topic, p)[1] for p in range(partitions)]
        committed = committed_offsets(directory)
        if all(committed.get(p, 0) == end for p, end in enumerate(ends)):
            return
        assert time.monotonic() < deadline, f"table of {topic} not committed: {committed} < {ends}"
        time.sleep(0.2)


def produce_avro(broker, topic: str, schema: str, orders: list[dict], partitions: int = 1) -> None:
    registry = SchemaRegistryClient({"url": broker.registry_url})
    serialize = AvroSerializer(registry, schema, conf={"auto.register.schemas": False, "use.latest.version": True})
    context = SerializationContext(topic, MessageField.VALUE)
    client = producer(broker.bootstrap, **{"linger.ms": 20})
    failed = []
    for index, order in enumerate(orders):
        client.produce(
            topic,
            key=order["id"].encode(),
            value=serialize(order, context),
            partition=index % partitions,
            headers=[("h", b"1"), ("h", b"2")],
            on_delivery=lambda err, msg: failed.append(err) if err else None,
        )
    assert client.flush(30) == 0
    assert failed == []


def read_table(path: Path):
    """Every committed file under a topic's table directory, as one pyarrow table (files may
    have different schemas: missing columns are null)."""
    files = sorted(path.glob("*/*.parquet"))
    assert files, f"no files under {path}"
    tables = [pq.read_table(file) for file in files]
    import pyarrow as pa

    return pa.concat_tables(tables, promote_options="default")


def test_avro_records_land_in_parquet_exactly_once_and_the_schema_evolves(broker_factory, engine, tmp_path):
    tables = tmp_path / "tables"
    metrics_port = free_port()
    metrics_args = ("--metrics-listen", f"127.0.0.1:{metrics_port}")
    broker, registry, topic = order_topic(broker_factory, engine, tables, partitions=2, args=metrics_args)

    first = [{"id": f"o-{i}", "cents": i * 100, "tags": ["a"] * (i % 3)} for i in range(60)]
    produce_avro(broker, topic, ORDER_V1, first, partitions=2)
    wait_committed(broker, topic, tables / topic, partitions=2)

    registry.register_schema(f"{topic}-value", Schema(ORDER_V2, "AVRO"))
    second = [{"id": f"n-{i}", "cents": 7, "tags": [], "note": f"note {i}"} for i in range(40)]
    produce_avro(broker, topic, ORDER_V2, second, partitions=2)
    wait_committed(broker, topic, tables / topic, partitions=2)
    if engine != "memory":  # `skiff table status` reads the storage, which memory:// keeps in the broker
        reports = status(broker, topic)
        assert [(r["partition"], r["lag"], r["last_error"]) for r in reports] == [(0, 0, None), (1, 0, None)]
        assert sum(r["rows"] for r in reports) == 100
        assert [r["committed_offset"] for r in reports] == [r["log_end"] for r in reports]

    scrape = Scrape(f"http://127.0.0.1:{metrics_port}")
    assert scrape.total("skiff_table_rows_total", topic=topic) == 100
    assert scrape.total("skiff_table_commits_total", topic=topic) >= 4, "two schemas, two partitions"

    table = read_table(tables / topic)
    assert table.num_rows == 100
    rows = table.to_pylist()
    keys = {(row["_partition"], row["_offset"]) for row in rows}
    assert len(keys) == 100, "every (partition, offset) once"
    by_id = {row["id"]: row for row in rows}
    assert by_id["o-5"]["cents"] == 500 and by_id["o-5"]["tags"] == ["a", "a"]
    assert by_id["o-5"]["note"] is None, "rows written before the evolution read the new column as null"
    assert by_id["n-3"]["note"] == "note 3"
    assert by_id["o-5"]["_key"] == b"o-5"
    assert by_id["o-5"]["_headers"] == [{"key": "h", "value": b"1"}, {"key": "h", "value": b"2"}]
    assert str(table.schema.field("cents").type) == "int64"
    assert str(table.schema.field("_timestamp").type) == "timestamp[ms, tz=UTC]"

    # DuckDB reads the same files with SQL (union_by_name: files of both schema versions).
    glob = str(tables / topic / "*" / "*.parquet")
    count, distinct, notes = duckdb.sql(
        f"SELECT count(*), count(DISTINCT (_partition, _offset)), count(note) "
        f"FROM read_parquet('{glob}', union_by_name = true)"
    ).fetchone()
    assert (count, distinct, notes) == (100, 100, 40)
    # Each file records the offsets it covers: consecutive commits, no gap and no overlap.
    for partition in (0, 1):
        ranges = sorted(
            (int(meta[b"skiff.from_offset"]), int(meta[b"skiff.next_offset"]))
            for meta in (
                pq.read_metadata(file).metadata for file in (tables / topic / str(partition)).glob("*.parquet")
            )
        )
        assert ranges[0][0] == 0
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:])), ranges
        assert ranges[-1][1] == watermarks(broker.bootstrap, topic, partition)[1]


def delta_rows(path: str, storage_options: dict | None = None) -> list[dict]:
    """Every row of a Delta table, read with delta-rs's Python package (`deltalake`)."""
    from deltalake import DeltaTable

    return DeltaTable(path, storage_options=storage_options).to_pyarrow_table().to_pylist()


def wait_delta_committed(broker, topic: str, path: str, partitions: int, storage_options=None) -> None:
    """Polls the Delta table's `txn` versions (the offset each partition is committed up to)
    until every partition is committed up to its log end."""
    from deltalake import DeltaTable

    deadline = time.monotonic() + 60
    while True:
        ends = [watermarks(broker.bootstrap, topic, p)[1] for p in range(partitions)]
        try:
            table = DeltaTable(path, storage_options=storage_options)
            versions = [table.transaction_version(f"skiff-{topic}-{p}") for p in range(partitions)]
        except Exception:  # noqa: BLE001 (no table yet: the first commit creates it)
            versions = [None] * partitions
        if versions == ends:
            return
        assert time.monotonic() < deadline, f"delta table of {topic} at {versions}, log ends {ends}"
        time.sleep(0.2)


def test_avro_records_land_in_a_delta_table_exactly_once_and_the_schema_evolves(broker_factory, engine, tmp_path):
    tables = tmp_path / "tables"
    broker, registry, topic = order_topic(
        broker_factory, engine, tables, partitions=2, **{"skiff.table.format": "delta"}
    )
    path = str(tables / topic)
    produce_avro(broker, topic, ORDER_V1, [{"id": f"o-{i}", "cents": i, "tags": ["a"]} for i in range(40)], partitions=2)
    wait_delta_committed(broker, topic, path, 2)
    registry.register_schema(f"{topic}-value", Schema(ORDER_V2, "AVRO"))
    produce_avro(broker, topic, ORDER_V2, [{"id": f"n-{i}", "cents": 1, "tags": [], "note": "new"} for i in range(20)], partitions=2)
    wait_delta_committed(broker, topic, path, 2)

    rows = delta_rows(path)
    assert len(rows) == 60
    assert len({(row["_partition"], row["_offset"]) for row in rows}) == 60, "every (partition, offset) once"
    by_id = {row["id"]: row for row in rows}
    assert by_id["o-3"]["note"] is None and by_id["n-3"]["note"] == "new"
    assert by_id["o-3"]["tags"] == ["a"] and by_id["o-3"]["_key"] == b"o-3"
    count, notes = duckdb.sql(
        f"SELECT count(*), count(note) FROM read_parquet('{path}/*/*.parquet', union_by_name = true)"
    ).fetchone()
    assert count >= 60 and notes >= 20, "the data files are Parquet files DuckDB reads too (losers' may remain)"


def iceberg_catalog_args(engine: str, tmp_path: Path) -> tuple[str, ...]:
    """The broker flags for an Iceberg catalog: a SQL storage is its own catalog (the
    default); memory:// and s3:// brokers get a SQLite catalog file."""
    if engine in ("sqlite", "postgres"):
        return ()
    return ("--iceberg-catalog", f"sqlite://{tmp_path}/catalog.db")


def iceberg_uri(broker, tmp_path: Path) -> str:
    """The catalog database as SQLAlchemy (pyiceberg's SqlCatalog) names it."""
    url = broker.storage if broker.engine in ("sqlite", "postgres") else f"sqlite://{tmp_path}/catalog.db"
    if url.startswith("sqlite://"):
        return "sqlite:///" + url[len("sqlite://"):]
    return url.replace("postgres://", "postgresql+psycopg2://", 1)


def iceberg_table(uri: str, topic: str, s3: bool = False):
    """The topic's table, loaded by pyiceberg from the catalog the brokers write."""
    from pyiceberg.catalog.sql import SqlCatalog

    properties = {"uri": uri}
    if s3:
        properties.update({"s3.endpoint": S3_ENDPOINT, "s3.access-key-id": "test",
                           "s3.secret-access-key": "test", "s3.region": "us-east-1"})
    return SqlCatalog("skiff", **properties).load_table(("skiff", topic))


def iceberg_committed(uri: str, topic: str, partitions: int, s3: bool = False) -> list[int | None]:
    """Where each partition's commits end, by the table's `skiff.partition.<p>.next-offset`."""
    try:
        properties = iceberg_table(uri, topic, s3).properties
    except Exception:  # noqa: BLE001 (no table yet: the first commit creates it)
        return [None] * partitions
    return [int(v) if (v := properties.get(f"skiff.partition.{p}.next-offset")) else None for p in range(partitions)]


def wait_iceberg_committed(broker, topic: str, uri: str, partitions: int, s3: bool = False) -> None:
    deadline = time.monotonic() + 60
    while True:
        ends = [watermarks(broker.bootstrap, topic, p)[1] for p in range(partitions)]
        committed = iceberg_committed(uri, topic, partitions, s3)
        if committed == ends:
            return
        assert time.monotonic() < deadline, f"iceberg table of {topic} at {committed}, log ends {ends}"
        time.sleep(0.2)


def test_avro_records_land_in_an_iceberg_table_exactly_once_and_the_schema_evolves(broker_factory, engine, tmp_path):
    tables = tmp_path / "tables"
    broker, registry, topic = order_topic(
        broker_factory, engine, tables, partitions=2, args=iceberg_catalog_args(engine, tmp_path),
        **{"skiff.table.format": "iceberg"},
    )
    uri = iceberg_uri(broker, tmp_path)
    produce_avro(broker, topic, ORDER_V1, [{"id": f"o-{i}", "cents": i, "tags": ["a"]} for i in range(40)], partitions=2)
    wait_iceberg_committed(broker, topic, uri, 2)
    registry.register_schema(f"{topic}-value", Schema(ORDER_V2, "AVRO"))
    produce_avro(broker, topic, ORDER_V2, [{"id": f"n-{i}", "cents": 1, "tags": [], "note": "new"} for i in range(20)], partitions=2)
    wait_iceberg_committed(broker, topic, uri, 2)

    table = iceberg_table(uri, topic)
    data = table.scan().to_arrow()
    rows = data.to_pylist()
    assert len(rows) == 60
    assert len({(row["_partition"], row["_offset"]) for row in rows}) == 60, "every (partition, offset) once"
    by_id = {row["id"]: row for row in rows}
    assert by_id["o-3"]["note"] is None and by_id["n-3"]["note"] == "new", "old rows read the new column as null"
    assert by_id["o-3"]["tags"] == ["a"] and by_id["o-3"]["_key"] == b"o-3"
    assert by_id["o-3"]["_headers"] == [{"key": "h", "value": b"1"}, {"key": "h", "value": b"2"}]
    assert str(data.schema.field("_timestamp").type) == "timestamp[us, tz=UTC]", "Iceberg's timestamptz"
    assert len(table.schemas()) == 2, "the evolution is a schema of its own"
    # Every snapshot is one commit of one partition; together they cover each log from 0 to its
    # end with no gap and no overlap.
    for partition in (0, 1):
        summaries = [s.summary.additional_properties for s in table.snapshots()]
        ranges = sorted(
            (int(summary["skiff.from_offset"]), int(summary["skiff.next_offset"]))
            for summary in summaries
            if summary.get("skiff.partition") == str(partition)
        )
        assert ranges[0][0] == 0
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:])), ranges
        assert ranges[-1][1] == watermarks(broker.bootstrap, topic, partition)[1]


def produce_over_three_days(broker, registry, topic: str, cents) -> list[int]:
    """Produces Avro orders `o-0` to `o-59` (cents `cents(index)`) with timestamps on the day
    before yesterday, yesterday and today in turn; returns those days' midnights (UTC, ms)."""
    serialize = AvroSerializer(registry, ORDER_V1, conf={"auto.register.schemas": False, "use.latest.version": True})
    context = SerializationContext(topic, MessageField.VALUE)
    day_ms = 86_400_000
    today = int(time.time() * 1000) // day_ms * day_ms
    days = [today - 2 * day_ms, today - day_ms, today]
    client = producer(broker.bootstrap, **{"linger.ms": 20})
    for index in range(60):
        order = {"id": f"o-{index}", "cents": cents(index), "tags": []}
        client.produce(topic, value=serialize(order, context), timestamp=days[index % 3] + 1000 + index)
    assert client.flush(30) == 0
    return days


def test_a_partitioned_iceberg_table_prunes_by_day_and_evolves_its_spec(broker_factory, tmp_path):
    """`skiff.table.partition.by=day(_timestamp), bucket(4, cents)`: records produced with
    timestamps on three days land in one data file per (day, bucket), pyiceberg sees the spec
    and reads only a day's files for a filter on `_timestamp`; altering the config gives the
    table a new default spec while older files keep theirs; bad values are refused at once."""
    tables = tmp_path / "tables"
    broker, registry, topic = order_topic(
        broker_factory, "sqlite", tables,
        **{"skiff.table.format": "iceberg", "skiff.table.partition.by": "day(_timestamp), bucket(4, cents)"},
    )
    uri = iceberg_uri(broker, tmp_path)
    days = produce_over_three_days(broker, registry, topic, lambda index: index)
    today = days[-1]
    serialize = AvroSerializer(registry, ORDER_V1, conf={"auto.register.schemas": False, "use.latest.version": True})
    context = SerializationContext(topic, MessageField.VALUE)
    wait_iceberg_committed(broker, topic, uri, 1)

    table = iceberg_table(uri, topic)
    fields = [(field.name, str(field.transform)) for field in table.spec().fields]
    assert fields == [("_timestamp_day", "day"), ("cents_bucket", "bucket[4]")], fields
    files = table.inspect.files().to_pylist()
    values = {(f["partition"]["_timestamp_day"], f["partition"]["cents_bucket"]) for f in files}
    assert len(values) == len(files), "one data file per partition value"
    assert len({day for day, _ in values}) == 3, values
    assert sum(f["record_count"] for f in files) == 60
    offsets = [f["readable_metrics"]["_offset"] for f in files]
    assert all(m["lower_bound"] is not None and m["upper_bound"] is not None for m in offsets), "column statistics"
    rows = table.scan().to_arrow().to_pylist()
    assert sorted(row["cents"] for row in rows) == list(range(60)), "every record once"

    # A filter on the source column reads only the matching day's files.
    from datetime import datetime, timezone

    since = datetime.fromtimestamp(today / 1000, tz=timezone.utc).isoformat()
    scan = table.scan(row_filter=f"_timestamp >= '{since}'")
    planned = list(scan.plan_files())
    assert 0 < len(planned) < len(files), (len(planned), len(files))
    assert sorted(row["cents"] for row in scan.to_arrow().to_pylist()) == list(range(2, 60, 3))

    # Altering the config evolves the spec: later commits are split by the new one only. Writers
    # pick the change up at their next lease round, when they start again.
    mark = broker.log_mark()
    client_admin = admin(broker.bootstrap)
    resource = ConfigResource(
        "TOPIC", topic, set_config={**FAST_FLUSH, "skiff.table.format": "iceberg", "skiff.table.partition.by": "month(_timestamp)"}
    )
    assert error_code(wait_futures(client_admin.alter_configs([resource], request_timeout=15))[resource]) is None
    deadline = time.monotonic() + 30
    while "table writer starts" not in broker.log_since(mark):
        assert time.monotonic() < deadline, "the writer did not start again with the new config"
        time.sleep(0.1)
    more = producer(broker.bootstrap)
    for index in range(60, 70):
        more.produce(topic, value=serialize({"id": f"o-{index}", "cents": index, "tags": []}, context))
    assert more.flush(30) == 0
    wait_iceberg_committed(broker, topic, uri, 1)
    table = iceberg_table(uri, topic)
    assert [(f.name, str(f.transform)) for f in table.spec().fields] == [("_timestamp_month", "month")]
    assert len(table.specs()) == 2
    assert sorted(row["cents"] for row in table.scan().to_arrow().to_pylist()) == list(range(70))

    # Refused at once: a column the schema lacks, a transform that does not fit, bad syntax,
    # and partitioning a format that has none.
    for config, reason in [
        ({"skiff.table.format": "iceberg", "skiff.table.partition.by": "day(missing)"}, "no column"),
        ({"skiff.table.format": "iceberg", "skiff.table.partition.by": "day(id)"}, "does not take"),
        ({"skiff.table.format": "iceberg", "skiff.table.partition.by": "week(_timestamp)"}, "skiff.table.partition.by"),
        ({"skiff.table.format": "parquet", "skiff.table.partition.by": "cents"}, "iceberg and delta"),
    ]:
        refused = unique("refused")
        registry.register_schema(f"{refused}-value", Schema(ORDER_V1, "AVRO"))
        futures = client_admin.create_topics([NewTopic(refused, 1, 1, config=config)], request_timeout=15)
        outcome = wait_futures(futures)[refused]
        assert error_code(outcome) == KafkaError.INVALID_CONFIG, (config, outcome)
        assert reason in str(outcome), (config, outcome)


def test_a_partitioned_delta_table_prunes_by_day_and_keeps_its_partition_columns(broker_factory, tmp_path):
    """`skiff.table.partition.by=day(_timestamp), cents` on a Delta table: `_timestamp_day` is a
    date column the writer derives, `cents` a partition column kept out of the data files;
    each file holds one (day, cents) pair, delta-rs prunes by them, and every record lands once.
    A Delta table cannot change its partition columns: altering the config shows an error in
    `skiff table status` until it is set back, and nothing is lost meanwhile."""
    tables = tmp_path / "tables"
    partition_by = {"skiff.table.format": "delta", "skiff.table.partition.by": "day(_timestamp), cents"}
    broker, registry, topic = order_topic(broker_factory, "sqlite", tables, **partition_by)
    path = str(tables / topic)
    days = produce_over_three_days(broker, registry, topic, lambda index: index % 4)
    today = days[-1]
    wait_delta_committed(broker, topic, path, 1)

    from datetime import date, datetime, timezone

    from deltalake import DeltaTable

    table = DeltaTable(path)
    assert table.metadata().partition_columns == ["_timestamp_day", "cents"]
    rows = table.to_pyarrow_table().to_pylist()
    assert sorted(row["id"] for row in rows) == sorted(f"o-{i}" for i in range(60)), "every record once"
    day_of = lambda ms: datetime.fromtimestamp(ms / 1000, tz=timezone.utc).date()  # noqa: E731
    for row in rows:
        index = int(row["id"][2:])
        assert row["_timestamp_day"] == day_of(days[index % 3]) and row["cents"] == index % 4, row
    import pyarrow

    actions = pyarrow.table(table.get_add_actions(flatten=True)).to_pylist()
    values = {(a["partition._timestamp_day"], a["partition.cents"]) for a in actions}
    assert len(values) == 12, values
    assert all(isinstance(day, date) for day, _ in values), values
    data_file = tables / topic / actions[0]["path"]
    assert {"cents", "_timestamp_day"}.isdisjoint(pq.read_schema(data_file).names), "partition values stay in the log"
    assert data_file.relative_to(tables / topic).parts[:2] == (
        f"_timestamp_day={actions[0]['partition._timestamp_day']}",
        f"cents={actions[0]['partition.cents']}",
    )

    # A filter on the partition columns reads only their files.
    latest = str(day_of(today))
    pruned = table.file_uris(partition_filters=[("_timestamp_day", "=", latest)])
    assert 0 < len(pruned) < len(actions), (len(pruned), len(actions))
    todays = table.to_pyarrow_table(partitions=[("_timestamp_day", "=", latest), ("cents", "=", "2")]).to_pylist()
    assert sorted(row["id"] for row in todays) == sorted(f"o-{i}" for i in range(60) if i % 3 == 2 and i % 4 == 2)

    # Other partition columns cannot apply to this table: the writer says so, and resumes once
    # the config is set back.
    client_admin = admin(broker.bootstrap)

    def alter(value: str) -> None:
        """Sets the config, and waits for the writer to start again with it (at its next
        lease round)."""
        mark = broker.log_mark()
        config = {**FAST_FLUSH, "skiff.table.format": "delta", "skiff.table.partition.by": value}
        resource = ConfigResource("TOPIC", topic, set_config=config)
        assert error_code(wait_futures(client_admin.alter_configs([resource], request_timeout=15))[resource]) is None
        deadline = time.monotonic() + 30
        while "table writer starts" not in broker.log_since(mark):
            assert time.monotonic() < deadline, "the writer did not start again with the new config"
            time.sleep(0.1)

    alter("month(_timestamp)")
    produce_avro(broker, topic, ORDER_V1, [{"id": f"n-{i}", "cents": 1, "tags": []} for i in range(5)])
    deadline = time.monotonic() + 30
    while "keeps the partition columns" not in (status(broker, topic)[0]["last_error"] or ""):
        assert time.monotonic() < deadline, f"no error in the status: {status(broker, topic)}"
        time.sleep(0.2)
    alter("day(_timestamp), cents")
    wait_delta_committed(broker, topic, path, 1)
    assert len(delta_rows(path)) == 65

    # Refused at once: what Delta Lake has no partition column for.
    for value, reason in [("bucket(4, cents)", "no bucket"), ("_timestamp", "day(_timestamp)")]:
        refused = unique("refused")
        registry.register_schema(f"{refused}-value", Schema(ORDER_V1, "AVRO"))
        config = {"skiff.table.format": "delta", "skiff.table.partition.by": value}
        futures = client_admin.create_topics([NewTopic(refused, 1, 1, config=config)], request_timeout=15)
        outcome = wait_futures(futures)[refused]
        assert error_code(outcome) == KafkaError.INVALID_CONFIG, (value, outcome)
        assert reason in str(outcome), (value, outcome)


def test_an_iceberg_table_needs_a_catalog(broker_factory, tmp_path):
    """A memory:// broker has no SQL database to be its catalog: a topic asking for an Iceberg
    table is refused with INVALID_CONFIG saying what to do."""
    broker = table_broker(broker_factory, "memory", tmp_path / "tables")
    registry = SchemaRegistryClient({"url": broker.registry_url})
    topic = unique("orders")
    registry.register_schema(f"{topic}-value", Schema(ORDER_V1, "AVRO"))
    futures = admin(broker.bootstrap).create_topics(
        [NewTopic(topic, 1, 1, config={"skiff.table.format": "iceberg"})], request_timeout=15
    )
    outcome = wait_futures(futures)[topic]
    assert error_code(outcome) == KafkaError.INVALID_CONFIG
    assert "--iceberg-catalog" in str(outcome)


def test_a_table_needs_a_schema_and_a_location(broker_factory, tmp_path):
    broker = broker_factory("sqlite", schema_registry=True)
    client = admin(broker.bootstrap)
    topic = unique("orders")
    futures = client.create_topics(
        [NewTopic(topic, 1, 1, config={"skiff.table.format": "parquet"})], request_timeout=15
    )
    outcome = wait_futures(futures)[topic]
    assert error_code(outcome) == KafkaError.INVALID_CONFIG
    assert "location" in str(outcome)

    located = {"skiff.table.format": "parquet", "skiff.table.location": f"file://{tmp_path}/t"}
    futures = client.create_topics([NewTopic(topic, 1, 1, config=located)], request_timeout=15)
    outcome = wait_futures(futures)[topic]
    assert error_code(outcome) == KafkaError.INVALID_CONFIG
    assert f"subject {topic}-value" in str(outcome)

    # An existing topic cannot be switched to a table without a schema either.
    create_topic(broker.bootstrap, topic)
    resource = ConfigResource("TOPIC", topic, set_config=located)
    altered = wait_futures(client.alter_configs([resource], request_timeout=15))[resource]
    assert error_code(altered) == KafkaError.INVALID_CONFIG
    registry = SchemaRegistryClient({"url": broker.registry_url})
    registry.register_schema(f"{topic}-value", Schema(ORDER_V1, "AVRO"))
    altered = wait_futures(client.alter_configs([resource], request_timeout=15))[resource]
    assert error_code(altered) is None, altered


def test_a_location_the_broker_cannot_write_shows_in_the_status_and_produce_goes_on(broker_factory, tmp_path):
    """A table location that cannot be created (under /proc, not writable even by root): the
    writer's failure is in `skiff table status` (and the log), and producing to the topic and to
    others is unaffected."""
    broker = table_broker(broker_factory, "sqlite", tmp_path / "tables", "--table-lease-ms", "1500")
    registry = SchemaRegistryClient({"url": broker.registry_url})
    topic = unique("orders")
    registry.register_schema(f"{topic}-value", Schema(ORDER_V1, "AVRO"))
    location = f"file:///proc/skiff-{unique('nowhere')}"
    create_topic(broker.bootstrap, topic, config={**FAST_FLUSH, "skiff.table.location": location})
    produce_avro(broker, topic, ORDER_V1, [{"id": "o-1", "cents": 1, "tags": []}])

    deadline = time.monotonic() + 30
    while True:
        [report] = status(broker, topic)
        if report["last_error"]:
            break
        assert time.monotonic() < deadline, f"no error in the status: {report}"
        time.sleep(0.2)
    assert "cannot create the directory" in report["last_error"], report
    assert report["committed_offset"] is None and report["lag"] == 1
    assert "table location unusable" in broker.log_text()

    plain = unique("plain")
    create_topic(broker.bootstrap, plain)
    produce(broker.bootstrap, plain, [{"value": b"x"}])
    produce_avro(broker, topic, ORDER_V1, [{"id": "o-2", "cents": 2, "tags": []}])
    assert watermarks(broker.bootstrap, plain) == (0, 1), "other topics are unaffected"
    assert watermarks(broker.bootstrap, topic) == (0, 2), "produce to the table topic goes on"


def test_json_schema_and_protobuf_records_become_typed_columns(broker_factory, tmp_path):
    tables = tmp_path / "tables"
    broker = table_broker(broker_factory, "sqlite", tables)
    registry = SchemaRegistryClient({"url": broker.registry_url})

    json_topic = unique("events")
    schema = {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "at": {"type": "string", "format": "date-time"},
            "labels": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["id"],
    }
    registry.register_schema(f"{json_topic}-value", Schema(json.dumps(schema), "JSON"))
    create_topic(broker.bootstrap, json_topic, config=FAST_FLUSH)
    serialize = JSONSerializer(json.dumps(schema), registry, conf={"auto.register.schemas": False, "use.latest.version": True})
    context = SerializationContext(json_topic, MessageField.VALUE)
    client = producer(broker.bootstrap)
    for index in range(5):
        event = {"id": index, "at": f"2026-12-06T10:00:0{index}Z", "labels": ["x"] * index}
        client.produce(json_topic, value=serialize(event, context))
    assert client.flush(30) == 0

    proto_topic = unique("orders-proto")
    file = protobuf_message_file(f"{unique('order')}.proto", "skiff.test", "Order", [("id", "string"), ("units", "int64")])
    [order_class] = protobuf_classes([file], "skiff.test.Order")
    proto_serialize = ProtobufSerializer(order_class, registry, {"auto.register.schemas": True})
    proto_context = SerializationContext(proto_topic, MessageField.VALUE)
    first = proto_serialize(order_class(id="o-1", units=3), proto_context)  # registers the schema
    create_topic(broker.bootstrap, proto_topic, config=FAST_FLUSH)
    client.produce(proto_topic, value=first)
    client.produce(proto_topic, value=proto_serialize(order_class(id="o-2", units=-4), proto_context))
    assert client.flush(30) == 0

    wait_committed(broker, json_topic, tables / json_topic)
    wait_committed(broker, proto_topic, tables / proto_topic)
    events = read_table(tables / json_topic)
    assert str(events.schema.field("id").type) == "int64"
    assert str(events.schema.field("at").type) == "timestamp[us, tz=UTC]"
    assert events.column("labels").to_pylist() == [["x"] * i for i in range(5)]
    orders = read_table(tables / proto_topic)
    assert orders.select(["id", "units"]).to_pylist() == [{"id": "o-1", "units": 3}, {"id": "o-2", "units": -4}]


def test_aborted_transactions_never_reach_the_table(broker_factory, tmp_path):
    tables = tmp_path / "tables"
    broker, registry, topic = order_topic(broker_factory, "sqlite", tables)
    serialize = AvroSerializer(registry, ORDER_V1, conf={"auto.register.schemas": False, "use.latest.version": True})
    context = SerializationContext(topic, MessageField.VALUE)

    client = producer(broker.bootstrap, **{"transactional.id": unique("tid"), "linger.ms": 1})
    client.init_transactions(15)
    for ids, commit in ((["c-1", "c-2"], True), (["a-1", "a-2", "a-3"], False), (["c-3"], True)):
        client.begin_transaction()
        for order_id in ids:
            client.produce(topic, value=serialize({"id": order_id, "cents": 1, "tags": []}, context))
        client.flush(15)
        if commit:
            client.commit_transaction(15)
        else:
            client.abort_transaction(15)

    wait_committed(broker, topic, tables / topic)
    table = read_table(tables / topic)
    assert sorted(table.column("id").to_pylist()) == ["c-1", "c-2", "c-3"]


def test_a_sink_topic_keeps_records_only_until_they_are_in_the_table(broker_factory, engine, tmp_path):
    tables = tmp_path / "tables"
    broker, _, topic = order_topic(broker_factory, engine, tables, **{"skiff.table.sink.only": "true"})
    orders = [{"id": f"s-{i}", "cents": i, "tags": []} for i in range(30)]
    produce_avro(broker, topic, ORDER_V1, orders)

    wait_committed(broker, topic, tables / topic)
    deadline = time.monotonic() + 30
    while watermarks(broker.bootstrap, topic) != (30, 30):
        assert time.monotonic() < deadline, f"log not emptied: {watermarks(broker.bootstrap, topic)}"
        time.sleep(0.2)
    assert read_table(tables / topic).num_rows == 30

    # Consumers of a sink topic see an empty log, even from its very start.
    produce_avro(broker, topic, ORDER_V1, [{"id": "late", "cents": 1, "tags": []}])
    reader = consumer(broker.bootstrap, **{"auto.offset.reset": "earliest"})
    reader.subscribe([topic])
    seen = [m for m in (reader.poll(0.5) for _ in range(6)) if m is not None and not m.error()]
    reader.close()
    assert seen == []
    wait_committed(broker, topic, tables / topic)
    assert read_table(tables / topic).num_rows == 31


@pytest.mark.parametrize("table_format", ["parquet", "delta", "iceberg"])
def test_kill9_of_a_writer_with_two_brokers_loses_and_duplicates_nothing(broker_factory, tmp_path, table_format):
    """Two brokers on one Postgres storage write one table on S3 (moto); the one holding the
    writer leases is killed with kill -9 again and again while records keep coming. Afterwards
    the table holds every acknowledged record exactly once."""
    if not S3_ENDPOINT:
        pytest.fail("SKIFF_TEST_S3_ENDPOINT is not set: run `eval \"$(scripts/services.sh)\"` first")
    location = f"s3://{S3_BUCKET}/tables-{unique('kill')}?endpoint={S3_ENDPOINT}"
    lease = ("--table-lease-ms", "1500")
    first = broker_factory("postgres", "--table-location", location, *TABLE_ARGS, *lease, schema_registry=True)
    second = broker_factory(
        "postgres", "--table-location", location, *TABLE_ARGS, *lease, storage=first.storage, schema_registry=True
    )
    registry = SchemaRegistryClient({"url": first.registry_url})
    topic = unique("orders")
    registry.register_schema(f"{topic}-value", Schema(ORDER_V1, "AVRO"))
    create_topic(
        second.bootstrap,
        topic,
        partitions=2,
        config={**FAST_FLUSH, "skiff.table.flush.ms": "100", "skiff.table.format": table_format},
    )

    produced = 0
    brokers = [first, second]
    since = {id(broker): broker.log_mark() for broker in brokers}

    def writer_holder():
        """The broker whose running process started table writers (polled until one has)."""
        deadline = time.monotonic() + 30
        while True:
            for broker in brokers:
                if "table writer starts" in broker.log_since(since[id(broker)]):
                    return broker
            assert time.monotonic() < deadline, "no broker took the writer leases"
            time.sleep(0.1)

    for round_ in range(5):
        # Each round kills the broker that runs the writers, while records keep coming.
        victim = writer_holder()
        survivor = brokers[1 - brokers.index(victim)]
        orders = [{"id": f"r{round_}-{i}", "cents": i, "tags": []} for i in range(50)]
        produce_avro(survivor, topic, ORDER_V1, orders, partitions=2)
        produced += len(orders)
        time.sleep(0.2)  # the writer is mid-way: reading, buffering or committing
        victim.kill9()
        since[id(victim)] = victim.log_mark()
        victim.restart()
    deadline = time.monotonic() + 90
    while True:  # the table status, kept in storage by whichever broker writes each partition
        reports = status(second, topic)
        if all(r["committed_offset"] == r["log_end"] for r in reports):
            break
        assert time.monotonic() < deadline, f"table of {topic} not committed: {reports}"
        time.sleep(0.2)
    assert sum(r["log_end"] for r in reports) == produced

    prefix = location.split("://", 1)[1].split("?", 1)[0]
    if table_format == "iceberg":  # the brokers' Postgres storage is the catalog
        uri = first.storage.replace("postgres://", "postgresql+psycopg2://", 1)
        rows = iceberg_table(uri, topic, s3=True).scan(selected_fields=("_partition", "_offset", "id")).to_arrow().to_pylist()
    elif table_format == "delta":
        options = {"AWS_ENDPOINT_URL": S3_ENDPOINT, "AWS_ALLOW_HTTP": "true", "AWS_ACCESS_KEY_ID": "test",
                   "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1", "conditional_put": "etag"}
        rows = delta_rows(f"s3://{prefix}/{topic}", options)
    else:
        import pyarrow.fs as pafs

        s3 = pafs.S3FileSystem(endpoint_override=S3_ENDPOINT, scheme="http", access_key="test", secret_key="test",
                               region="us-east-1")
        selector = pafs.FileSelector(f"{prefix}/{topic}", recursive=True)
        files = [info.path for info in s3.get_file_info(selector) if info.path.endswith(".parquet")]
        rows = []
        for path in files:
            rows.extend(pq.read_table(path, filesystem=s3).select(["_partition", "_offset", "id"]).to_pylist())
    keys = [(row["_partition"], row["_offset"]) for row in rows]
    assert len(keys) == len(set(keys)) == produced, "each acknowledged record exactly once"
    assert len({row["id"] for row in rows}) == produced
