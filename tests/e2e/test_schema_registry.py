"""The Schema Registry `skiff broker --schema-registry-listen` serves, driven by confluent-kafka's
own `SchemaRegistryClient` and serializers, on every engine: registration of Avro, JSON Schema and
Protobuf (with an import reference), compatibility, deletes, several brokers on one storage, and
restarts."""

from __future__ import annotations

import concurrent.futures
import json

import pytest
from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from helpers import consume, create_topic, produce, unique

# Engines whose storage outlives a broker process and can be shared by several.
SHARED_ENGINES = ["sqlite", "postgres", "s3"]


def user_schema(*extra_fields: dict) -> str:
    fields = [{"name": "name", "type": "string"}, {"name": "age", "type": "int"}, *extra_fields]
    return json.dumps({"type": "record", "name": "User", "namespace": "skiff.test", "fields": fields})


USER_V1 = user_schema()
# Backward compatible: the new field has a default.
USER_V2 = user_schema({"name": "email", "type": "string", "default": ""})
# Not backward compatible: a new field without a default cannot be read from old records.
USER_BAD = user_schema({"name": "phone", "type": "string"})

JSON_SCHEMA = json.dumps(
    {
        "type": "object",
        "properties": {"id": {"type": "integer"}, "label": {"type": "string"}},
        "required": ["id"],
    }
)

COMMON_PROTO = """syntax = "proto3";
package skiff.test;

message Money {
  string currency = 1;
  int64 units = 2;
}
"""

ORDER_PROTO = """syntax = "proto3";
package skiff.test;

import "common.proto";

message Order {
  string id = 1;
  skiff.test.Money total = 2;
}
"""


def client(broker) -> SchemaRegistryClient:
    """A new client: nothing cached, so every call goes to the server."""
    return SchemaRegistryClient({"url": broker.registry_url})


def error_of(call) -> tuple[int, int]:
    with pytest.raises(SchemaRegistryError) as raised:
        call()
    return raised.value.http_status_code, raised.value.error_code


@pytest.fixture
def registry_broker(broker_factory, engine):
    return broker_factory(engine, schema_registry=True)


def test_register_and_read_avro_json_and_protobuf(registry_broker):
    registry = client(registry_broker)
    avro_id = registry.register_schema("users-value", Schema(USER_V1, "AVRO"))
    # The same schema again, from a client with nothing cached: the same id, no new version.
    assert client(registry_broker).register_schema("users-value", Schema(USER_V1, "AVRO")) == avro_id
    assert client(registry_broker).register_schema("people-value", Schema(USER_V1, "AVRO")) == avro_id
    json_id = registry.register_schema("things-value", Schema(JSON_SCHEMA, "JSON"))
    common_id = registry.register_schema("common.proto", Schema(COMMON_PROTO, "PROTOBUF"))
    reference = SchemaReference("common.proto", "common.proto", 1)
    order_id = registry.register_schema(
        "orders-value", Schema(ORDER_PROTO, "PROTOBUF", [reference])
    )
    assert len({avro_id, json_id, common_id, order_id}) == 4

    fresh = client(registry_broker)
    assert sorted(fresh.get_subjects()) == [
        "common.proto",
        "orders-value",
        "people-value",
        "things-value",
        "users-value",
    ]
    assert fresh.get_versions("users-value") == [1]
    assert sorted(fresh.get_schema_types()) == ["AVRO", "JSON", "PROTOBUF"]
    latest = fresh.get_latest_version("orders-value")
    assert (latest.schema_id, latest.version, latest.subject) == (order_id, 1, "orders-value")
    assert latest.schema.schema_type == "PROTOBUF"
    assert [(r.name, r.subject, r.version) for r in latest.schema.references] == [
        ("common.proto", "common.proto", 1)
    ]
    by_id = fresh.get_schema(json_id)
    assert (by_id.schema_type, json.loads(by_id.schema_str)) == ("JSON", json.loads(JSON_SCHEMA))
    assert fresh.get_version("users-value", 1).schema_id == avro_id
    assert sorted(fresh.get_subjects_by_schema_id(avro_id)) == ["people-value", "users-value"]
    looked_up = fresh.lookup_schema("people-value", Schema(USER_V1, "AVRO"))
    assert (looked_up.schema_id, looked_up.version) == (avro_id, 1)
    assert fresh.get_referenced_by("common.proto", 1) == [order_id]
    # A referenced version may not go while something references it.
    assert error_of(lambda: fresh.delete_version("common.proto", 1)) == (422, 42206)
    # A reference to a version that does not exist is an invalid schema.
    missing = Schema(ORDER_PROTO, "PROTOBUF", [SchemaReference("common.proto", "common.proto", 9)])
    assert error_of(lambda: fresh.register_schema("orders2-value", missing)) == (422, 42201)
    assert error_of(lambda: fresh.get_version("users-value", 5)) == (404, 40402)
    assert error_of(lambda: fresh.get_latest_version("nobody")) == (404, 40401)
    assert error_of(lambda: fresh.get_schema(999_999)) == (404, 40403)
    invalid = Schema('{"type": "record", "name": "Broken"', "AVRO")
    assert error_of(lambda: fresh.register_schema("broken-value", invalid)) == (422, 42201)


def test_compatibility_refuses_an_incompatible_avro_version(registry_broker):
    registry = client(registry_broker)
    assert registry.get_compatibility() == "BACKWARD"
    registry.set_compatibility("users-value", "BACKWARD")
    assert registry.get_compatibility("users-value") == "BACKWARD"
    registry.register_schema("users-value", Schema(USER_V1, "AVRO"))
    assert registry.test_compatibility("users-value", Schema(USER_V2, "AVRO")) is True
    v2 = registry.register_schema("users-value", Schema(USER_V2, "AVRO"))
    assert registry.test_compatibility("users-value", Schema(USER_BAD, "AVRO")) is False
    assert error_of(lambda: registry.register_schema("users-value", Schema(USER_BAD, "AVRO"))) == (409, 409)
    assert registry.get_latest_version("users-value").schema_id == v2
    assert registry.get_versions("users-value") == [1, 2]
    # With the checks off, the same schema is accepted.
    registry.set_compatibility("users-value", "NONE")
    registry.register_schema("users-value", Schema(USER_BAD, "AVRO"))
    assert registry.get_versions("users-value") == [1, 2, 3]
    assert error_of(lambda: registry.set_compatibility("users-value", "SIDEWAYS")) == (422, 42203)


def test_soft_then_permanent_deletes(registry_broker):
    registry = client(registry_broker)
    registry.set_compatibility("users-value", "NONE")
    first = registry.register_schema("users-value", Schema(USER_V1, "AVRO"))
    registry.register_schema("users-value", Schema(USER_V2, "AVRO"))
    assert error_of(lambda: registry.delete_version("users-value", 1, permanent=True)) == (404, 40407)
    assert registry.delete_version("users-value", 1) == 1
    assert error_of(lambda: registry.delete_version("users-value", 1)) == (404, 40406)
    assert registry.get_versions("users-value") == [2]
    assert registry.delete_version("users-value", 1, permanent=True) == 1
    assert error_of(lambda: registry.delete_subject("users-value", permanent=True)) == (404, 40405)
    assert registry.delete_subject("users-value") == [2]
    assert registry.get_subjects() == []
    assert registry.get_subjects(deleted=True) == ["users-value"]
    assert error_of(lambda: registry.delete_subject("users-value")) == (404, 40404)
    assert registry.delete_subject("users-value", permanent=True) == [2]
    assert registry.get_subjects(deleted=True) == []
    # Ids are never reused: the schema is still readable by id, and registering it again
    # returns the same id.
    assert client(registry_broker).get_schema(first).schema_str == USER_V1
    assert client(registry_broker).register_schema("users-value", Schema(USER_V1, "AVRO")) == first


def test_read_only_mode_refuses_writes(registry_broker):
    registry = client(registry_broker)
    registry.register_schema("users-value", Schema(USER_V1, "AVRO"))
    assert registry.update_global_mode("READONLY") == "READONLY"
    assert error_of(lambda: registry.register_schema("other-value", Schema(USER_V2, "AVRO"))) == (422, 42205)
    assert error_of(lambda: registry.delete_subject("users-value")) == (422, 42205)
    assert registry.update_global_mode("READWRITE") == "READWRITE"
    registry.register_schema("other-value", Schema(USER_V2, "AVRO"))


def test_avro_serializer_and_deserializer_round_trip(registry_broker):
    topic = unique("avro")
    create_topic(registry_broker.bootstrap, topic)
    serializer = AvroSerializer(client(registry_broker), USER_V1)
    users = [{"name": f"user-{i}", "age": 20 + i} for i in range(5)]
    context = SerializationContext(topic, MessageField.VALUE)
    payloads = [serializer(user, context) for user in users]
    produce(registry_broker.bootstrap, topic, [{"value": payload} for payload in payloads])

    schema_id = client(registry_broker).get_latest_version(f"{topic}-value").schema_id
    messages = consume(registry_broker.bootstrap, topic, count=5)
    for message in messages:
        # Confluent's wire format: magic byte 0, then the 4-byte schema id.
        assert message.value()[0] == 0
        assert int.from_bytes(message.value()[1:5], "big") == schema_id
    deserializer = AvroDeserializer(client(registry_broker))
    assert [deserializer(message.value(), context) for message in messages] == users


@pytest.mark.parametrize("engine", SHARED_ENGINES)
def test_brokers_on_one_storage_serve_one_registry(broker_factory, engine):
    first = broker_factory(engine, schema_registry=True)
    second = broker_factory(engine, schema_registry=True, storage=first.storage)
    schema_id = client(first).register_schema("users-value", Schema(USER_V1, "AVRO"))
    assert client(second).get_schema(schema_id).schema_str == USER_V1
    assert client(second).register_schema("users-value", Schema(USER_V1, "AVRO")) == schema_id
    client(second).set_compatibility("race-value", "NONE")

    # Both brokers register different schemas under one subject at once, and one schema under
    # another: unique ids, versions 1..n with none shared, and one id for the shared schema.
    def register(n: int) -> tuple[int, int]:
        broker = (first, second)[n % 2]
        schema = Schema(user_schema({"name": f"field{n}", "type": "string", "default": ""}), "AVRO")
        schema_id = client(broker).register_schema("race-value", schema)
        same_id = client(broker).register_schema("same-value", Schema(USER_V2, "AVRO"))
        return schema_id, same_id

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(register, range(12)))
    assert len({schema_id for schema_id, _ in outcomes}) == 12
    assert len({same_id for _, same_id in outcomes}) == 1
    assert client(first).get_versions("race-value") == list(range(1, 13))
    assert client(second).get_versions("same-value") == [1]
    for version in range(1, 13):
        on_first = client(first).get_version("race-value", version)
        on_second = client(second).get_version("race-value", version)
        assert on_first.schema_id == on_second.schema_id


@pytest.mark.parametrize("engine", SHARED_ENGINES)
def test_restart_loses_nothing(broker_factory, engine):
    broker = broker_factory(engine, schema_registry=True)
    registry = client(broker)
    registry.set_compatibility(level="FULL")
    avro_id = registry.register_schema("users-value", Schema(USER_V1, "AVRO"))
    common_id = registry.register_schema("common.proto", Schema(COMMON_PROTO, "PROTOBUF"))
    reference = SchemaReference("common.proto", "common.proto", 1)
    order_id = registry.register_schema("orders-value", Schema(ORDER_PROTO, "PROTOBUF", [reference]))
    registry.register_schema("gone-value", Schema(JSON_SCHEMA, "JSON"))
    registry.delete_subject("gone-value")

    broker.restart()

    after = client(broker)
    assert after.get_compatibility() == "FULL"
    assert sorted(after.get_subjects()) == ["common.proto", "orders-value", "users-value"]
    assert after.get_subjects(deleted=True).count("gone-value") == 1
    assert after.get_schema(avro_id).schema_str == USER_V1
    assert after.get_latest_version("orders-value").schema_id == order_id
    assert after.get_referenced_by("common.proto", 1) == [order_id]
    # Ids continue after the restart: a new schema gets an id no earlier one has.
    new_id = after.register_schema("users-value", Schema(USER_V2, "AVRO"))
    assert new_id not in {avro_id, common_id, order_id}
