"""`skiff schema` and `skiff produce|consume --format json` against the Schema Registry a broker
serves, on every engine, cross-checked with confluent-kafka's Avro serializers so the wire format
is proven by a client the tools were not written with."""

from __future__ import annotations

import json

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from helpers import consume, create_topic, produce, unique
from test_cli import lines_input, lines_of, skiff, stderr_of

ORDER = {
    "type": "record",
    "name": "Order",
    "namespace": "skiff.test",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "qty", "type": "int"},
        {"name": "note", "type": ["null", "string"], "default": None},
    ],
}


@pytest.fixture
def registry_broker(broker_factory, engine):
    return broker_factory(engine, schema_registry=True)


def schema_cli(broker, *args: str, check: bool = True, input: bytes | None = None):
    return skiff(None, "schema", *args, "--registry", broker.registry_url, check=check, input=input)


def write_schema(tmp_path, name: str, schema: dict) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(schema))
    return str(path)


def test_schema_register_list_get_delete_round_trip(registry_broker, tmp_path):
    subject = unique("orders") + "-value"
    order_file = write_schema(tmp_path, "order.avsc", ORDER)

    registered = schema_cli(registry_broker, "register", subject, order_file)
    schema_id = int(lines_of(registered)[0])
    again = schema_cli(registry_broker, "register", subject, order_file)
    assert int(lines_of(again)[0]) == schema_id, "the same schema keeps its id"

    assert subject in lines_of(schema_cli(registry_broker, "list"))
    got = schema_cli(registry_broker, "get", subject)
    assert json.loads(got.stdout) == ORDER
    assert f"version 1 id {schema_id} type AVRO" in stderr_of(got)
    document = json.loads(schema_cli(registry_broker, "get", subject, "--version", "1", "--json").stdout)
    assert (document["subject"], document["version"], document["id"]) == (subject, 1, schema_id)

    # What confluent-kafka's own client sees.
    registry = SchemaRegistryClient({"url": registry_broker.registry_url})
    assert registry.get_latest_version(subject).schema_id == schema_id

    compatible = schema_cli(registry_broker, "compat", subject, order_file)
    assert lines_of(compatible) == ["compatible"]
    breaking = dict(ORDER, fields=ORDER["fields"] + [{"name": "price", "type": "long"}])
    refused = schema_cli(registry_broker, "compat", subject, write_schema(tmp_path, "b.avsc", breaking), check=False)
    assert refused.returncode != 0 and "not compatible" in stderr_of(refused)

    assert lines_of(schema_cli(registry_broker, "delete", subject)) == ["1"]
    assert subject not in lines_of(schema_cli(registry_broker, "list"))
    assert subject in lines_of(schema_cli(registry_broker, "list", "--deleted"))
    assert lines_of(schema_cli(registry_broker, "delete", subject, "--permanent")) == ["1"]
    assert subject not in lines_of(schema_cli(registry_broker, "list", "--deleted"))

    missing = schema_cli(registry_broker, "get", subject, check=False)
    assert missing.returncode != 0
    assert f"error 40401: Subject '{subject}' not found." in stderr_of(missing)


def test_produce_json_is_read_by_confluents_avro_deserializer(registry_broker, tmp_path):
    topic = unique("orders")
    create_topic(registry_broker.bootstrap, topic)
    schema_cli(registry_broker, "register", f"{topic}-value", write_schema(tmp_path, "order.avsc", ORDER))
    orders = [{"id": f"o-{i}", "qty": i, "note": None if i % 2 else f"note {i}"} for i in range(5)]
    lines = [json.dumps({k: v for k, v in order.items() if v is not None}) for order in orders]

    skiff(
        registry_broker.bootstrap,
        "produce",
        topic,
        "--format",
        "json",
        "--registry",
        registry_broker.registry_url,
        input=lines_input(lines),
    )

    messages = consume(registry_broker.bootstrap, topic, count=5)
    deserializer = AvroDeserializer(SchemaRegistryClient({"url": registry_broker.registry_url}))
    context = SerializationContext(topic, MessageField.VALUE)
    assert [deserializer(message.value(), context) for message in messages] == orders


def test_consume_json_prints_what_confluents_avro_serializer_wrote(registry_broker):
    topic = unique("orders")
    create_topic(registry_broker.bootstrap, topic)
    registry = SchemaRegistryClient({"url": registry_broker.registry_url})
    serializer = AvroSerializer(registry, json.dumps(ORDER))
    context = SerializationContext(topic, MessageField.VALUE)
    orders = [{"id": f"o-{i}", "qty": i, "note": f"n{i}" if i else None} for i in range(3)]
    produce(registry_broker.bootstrap, topic, [{"value": serializer(order, context)} for order in orders])

    consumed = skiff(
        registry_broker.bootstrap,
        "consume",
        topic,
        "--from-beginning",
        "--timeout-ms",
        "1500",
        "--max-messages",
        "3",
        "--format",
        "json",
        "--registry",
        registry_broker.registry_url,
    )
    assert [json.loads(line) for line in lines_of(consumed)] == orders


def test_produce_json_refuses_a_bad_line_by_number(registry_broker, tmp_path):
    topic = unique("orders")
    create_topic(registry_broker.bootstrap, topic)
    schema_cli(registry_broker, "register", f"{topic}-value", write_schema(tmp_path, "order.avsc", ORDER))
    lines = ['{"id": "a", "qty": 1}', '{"id": "b", "qty": 2}', '{"id": "c", "qty": "three"}', '{"id": "d", "qty": 4}']
    flags = ["--format", "json", "--registry", registry_broker.registry_url]

    refused = skiff(registry_broker.bootstrap, "produce", topic, *flags, input=lines_input(lines), check=False)
    assert refused.returncode != 0
    assert "line 3 does not fit the schema of" in stderr_of(refused), stderr_of(refused)
    assert "2 records before it were produced" in stderr_of(refused)

    skipped = skiff(
        registry_broker.bootstrap, "produce", topic, *flags, "--skip-invalid", input=lines_input(["not json", *lines])
    )
    assert "skipping line 1: not JSON" in stderr_of(skipped)
    assert "skipping line 4:" in stderr_of(skipped)

    consumed = skiff(
        registry_broker.bootstrap, "consume", topic, "--from-beginning", "--timeout-ms", "1500",
        "--max-messages", "5", *flags,
    )
    assert [json.loads(line)["id"] for line in lines_of(consumed)] == ["a", "b", "a", "b", "d"]


def test_produce_json_without_a_schema_says_how_to_register_one(registry_broker):
    topic = unique("plain")
    result = skiff(
        registry_broker.bootstrap,
        "produce",
        topic,
        "--format",
        "json",
        "--registry",
        registry_broker.registry_url,
        input=b"{}\n",
        check=False,
    )
    assert result.returncode != 0
    assert f"skiff schema register {topic}-value FILE" in stderr_of(result)
    assert "error 40401" in stderr_of(result)
