"""`skiff broker --metrics-listen`: real clients drive a broker, then `/metrics` is scraped and
parsed with Prometheus' own Python parser, and the counters must have moved by exactly what the
clients did. `/healthz` and `/readyz` answer on every engine, and `/readyz` says 503 when the
storage cannot be reached (a Postgres URL where nothing listens)."""

from __future__ import annotations

import json

import pytest
from confluent_kafka.admin import NewTopic
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

import kafka_wire
from conftest import free_port
from helpers import (
    TIMEOUT,
    Scrape,
    admin,
    consume,
    create_topic,
    error_code,
    produce,
    produce_outcomes,
    schema_framed,
    unique,
    values,
    wait_futures,
    wait_for,
)
from helpers import get
from helpers import metrics_broker as start  # noqa: F401 (the tests call it start)

TOPIC_ALREADY_EXISTS = 36
INVALID_RECORD = 87


def test_counters_follow_real_traffic(broker_factory):
    broker, base = start(broker_factory, "memory")
    # The gauge follows one connection we hold: open, then closed again (before any client
    # library holds connections of its own; the start-up probe's is closed by then).
    wait_for(base, lambda s: s.total("skiff_connections_open") == 0, "the start-up probe gone")
    with kafka_wire.connect(broker.port) as sock:
        sock.sendall(kafka_wire.api_versions_request(0, 1))
        kafka_wire.recv_frame(sock)
        wait_for(base, lambda s: s.total("skiff_connections_open") == 1, "our connection counted")
    wait_for(base, lambda s: s.total("skiff_connections_open") == 0, "our connection closed")

    topic = unique("metrics")
    records = values("m", 50, size=100)
    create_topic(broker.bootstrap, topic)
    produce(broker.bootstrap, topic, [{"value": value} for value in records])
    consumed = consume(broker.bootstrap, topic, count=len(records))
    assert [message.value() for message in consumed] == records
    # One request that fails with a known code: creating the topic again.
    again = admin(broker.bootstrap).create_topics([NewTopic(topic, 1, 1)], request_timeout=TIMEOUT)
    assert error_code(wait_futures(again)[topic]) == TOPIC_ALREADY_EXISTS
    # One request that closes its connection unanswered: Metadata at a version nobody has
    # (its header as flexible versions write it: an empty tagged-field section at the end).
    with kafka_wire.connect(broker.port) as sock:
        header = kafka_wire.request_header(3, 999, 7, "metrics-test") + b"\x00"
        sock.sendall(kafka_wire.frame(header))
        kafka_wire.wait_closed(sock)

    scrape = Scrape(base)
    payload = sum(len(value) for value in records)
    produces = scrape.total("skiff_requests_total", api="Produce", error="NONE")
    assert produces >= 1
    assert scrape.total("skiff_requests_total", api="Produce") == scrape.total(
        "skiff_request_duration_seconds_count", api="Produce"
    ), "every counted request has its latency observed"
    assert scrape.total("skiff_requests_total", api="Fetch") >= 1
    assert scrape.total("skiff_request_bytes_total", api="Produce") >= payload
    assert scrape.total("skiff_response_bytes_total", api="Fetch") >= payload
    assert scrape.total("skiff_produced_records_total", topic=topic) == len(records)
    assert scrape.total("skiff_produced_bytes_total", topic=topic) >= payload
    assert scrape.total("skiff_fetched_bytes_total", topic=topic) >= payload
    assert scrape.total("skiff_requests_total", api="CreateTopics", error="NONE") == 1
    assert scrape.total("skiff_requests_total", api="CreateTopics", error="TOPIC_ALREADY_EXISTS") == 1
    assert scrape.total("skiff_response_errors_total", api="CreateTopics", error="TOPIC_ALREADY_EXISTS") == 1
    assert scrape.total("skiff_requests_refused_total", api="Metadata") == 1
    assert scrape.total("skiff_storage_operation_duration_seconds_count", engine="memory", operation="log.append") >= 1
    assert scrape.total("skiff_connections_accepted_total") >= 4



def test_schema_registrations_and_refused_records_are_counted(broker_factory):
    broker, base = start(broker_factory, "memory", schema_registry=True)
    topic = unique("validated")
    create_topic(broker.bootstrap, topic)
    registry = SchemaRegistryClient({"url": broker.registry_url})
    schema = json.dumps({"type": "record", "name": "Point", "fields": [{"name": "x", "type": "int"}]})
    schema_id = registry.register_schema(f"{topic}-value", Schema(schema, "AVRO"))
    # The same schema under a second subject gets the same id: no new schema.
    assert registry.register_schema(unique("other") + "-value", Schema(schema, "AVRO")) == schema_id
    valid = schema_framed(schema_id, b"\x02")  # x = 1, zigzag encoded
    invalid = schema_framed(schema_id + 1000, b"\x02")  # an id that does not exist
    assert produce_outcomes(broker.bootstrap, topic, [valid]) == [None]
    assert produce_outcomes(broker.bootstrap, topic, [valid, invalid]) == [INVALID_RECORD] * 2

    scrape = Scrape(base)
    assert scrape.total("skiff_registry_schemas_created_total") == 1
    assert scrape.total("skiff_records_refused_total", reason="schema") == 1
    assert scrape.total("skiff_response_errors_total", api="Produce", error="INVALID_RECORD") >= 1
    assert scrape.total("skiff_produced_records_total", topic=topic) == 1


def test_health_and_storage_metrics_on_every_engine(broker_factory, engine):
    broker, base = start(broker_factory, engine)
    assert get(base + "/healthz") == (200, "ok\n")
    assert get(base + "/readyz") == (200, "ready\n")
    topic = unique("health")
    create_topic(broker.bootstrap, topic)
    produce(broker.bootstrap, topic, [{"value": b"one"}])
    scrape = Scrape(base)
    assert scrape.total("skiff_storage_operation_duration_seconds_count", engine=engine, operation="log.append") >= 1
    assert scrape.total("skiff_produced_records_total", topic=topic) == 1
    if engine == "s3":
        # Acknowledged appends have been written: at least one PUT, and reads before it.
        assert scrape.total("skiff_s3_requests_total", kind="put") >= 1
        assert scrape.total("skiff_s3_requests_total", kind="get") >= 1
    else:
        assert "skiff_s3_requests_total" not in scrape.names()


def test_readyz_fails_while_storage_is_unreachable(broker_factory):
    nowhere = f"postgres://postgres@127.0.0.1:{free_port()}/skiff_nowhere?sslmode=disable"
    broker, base = start(broker_factory, "postgres", storage=nowhere)
    assert get(base + "/healthz") == (200, "ok\n"), "the process itself is alive"
    status, body = get(base + "/readyz")
    assert status == 503, body
    assert body.startswith("not ready: "), body
    scrape = Scrape(base)
    assert scrape.total("skiff_storage_errors_total", engine="postgres", operation="state.get") >= 1
