"""`skiff schema` and `skiff produce|consume --format json` against the Schema Registry a broker
serves, on every engine, cross-checked with confluent-kafka's Avro serializers so the wire format
is proven by a client the tools were not written with."""

from __future__ import annotations

import json

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from helpers import consume, create_topic, produce, protobuf_classes, protobuf_message_file, unique
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


ORDER_PROTO = """syntax = "proto3";
package skiff.cli;

message Order {
  string id = 1;
  int64 qty = 2;
}
"""
ORDER_JSON_SCHEMA = {
    "type": "object",
    "properties": {"id": {"type": "string"}, "qty": {"type": "integer"}},
    "required": ["id"],
    "additionalProperties": False,
}


def cli_order_class():
    """The generated class of ORDER_PROTO's Order."""
    file = protobuf_message_file(f"{unique('cli-order')}.proto", "skiff.cli", "Order", [("id", "string"), ("qty", "int64")])
    [order] = protobuf_classes([file], "skiff.cli.Order")
    return order


@pytest.mark.parametrize("schema_type", ["PROTOBUF", "JSON"])
def test_json_lines_round_trip_through_protobuf_and_json_schemas(registry_broker, tmp_path, schema_type):
    from confluent_kafka.schema_registry.json_schema import JSONDeserializer
    from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer

    topic = unique(f"orders-{schema_type.lower()}")
    create_topic(registry_broker.bootstrap, topic)
    if schema_type == "PROTOBUF":
        schema_file = tmp_path / "order.proto"
        schema_file.write_text(ORDER_PROTO)
    else:
        schema_file = tmp_path / "order.json"
        schema_file.write_text(json.dumps(ORDER_JSON_SCHEMA))
    # The type comes from the file name.
    schema_cli(registry_broker, "register", f"{topic}-value", str(schema_file))
    registry = SchemaRegistryClient({"url": registry_broker.registry_url})
    assert registry.get_latest_version(f"{topic}-value").schema.schema_type == schema_type

    orders = [{"id": "o-1", "qty": 3}, {"id": "o-2", "qty": 5}]
    lines = [json.dumps(order) for order in orders]
    registry_flag = ("--registry", registry_broker.registry_url)
    skiff(registry_broker.bootstrap, "produce", topic, "--format", "json", *registry_flag, input=lines_input(lines))
    refused = skiff(registry_broker.bootstrap, "produce", topic, "--format", "json", *registry_flag,
                    input=lines_input(['{"id": "o-3", "colour": "red"}']), check=False)
    assert "line 1" in stderr_of(refused), stderr_of(refused)

    # Confluent's deserializers read what the tool wrote...
    context = SerializationContext(topic, MessageField.VALUE)
    messages = consume(registry_broker.bootstrap, topic, count=2)
    if schema_type == "PROTOBUF":
        deserialize = ProtobufDeserializer(cli_order_class(), {}, registry)
        assert [(m.id, m.qty) for m in (deserialize(x.value(), context) for x in messages)] == [("o-1", 3), ("o-2", 5)]
    else:
        deserialize = JSONDeserializer(json.dumps(ORDER_JSON_SCHEMA))
        assert [deserialize(x.value(), context) for x in messages] == orders

    # ... and the tool reads it back as the same JSON (protobuf's JSON mapping writes int64 as a string).
    consumed = skiff(registry_broker.bootstrap, "consume", topic, "--from-beginning", "--timeout-ms", "1500",
                     "--max-messages", "2", "--format", "json", *registry_flag)
    read = [json.loads(line) for line in lines_of(consumed)]
    assert [{"id": r["id"], "qty": int(r["qty"])} for r in read] == orders
