"""Broker-side schema validation with real clients: a topic whose `<topic>-value` subject has a
schema in Skiff's registry stores what confluent-kafka's Avro, JSON and Protobuf serializers
write, and refuses with INVALID_RECORD every record that does not decode under it (a valid
header with a wrong payload, an unknown schema id, the id of another subject, no header at
all), naming exactly the bad records of a batch (KIP-467), with nothing of a refused batch
stored. kcat writes plain JSON lines into a `raw`-framed topic. confluent-kafka's
ProtobufSerializer registers its files (imports included) as serialized descriptors and its
ProtobufDeserializer reads them back with `format=serialized`. Topics with the record name
strategies check each value against the subject its record names. On every engine."""

from __future__ import annotations

import json
import struct
import subprocess

from confluent_kafka import KafkaError
from confluent_kafka.admin import NewTopic
from confluent_kafka.schema_registry import (
    Schema,
    SchemaRegistryClient,
    record_subject_name_strategy,
    topic_record_subject_name_strategy,
)
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from helpers import (
    OTHER_AVRO,
    USER_AVRO,
    admin,
    consume,
    create_topic,
    error_code,
    produce_outcomes,
    protobuf_classes,
    protobuf_message_file,
    schema_framed,
    unique,
    wait_futures,
    watermarks,
)

USER, OTHER = USER_AVRO, OTHER_AVRO
ORDER_JSON = json.dumps(
    {
        "type": "object",
        "properties": {"id": {"type": "integer"}, "label": {"type": "string"}},
        "required": ["id"],
        "additionalProperties": False,
    }
)
ORDER_PROTO = """syntax = "proto3";
package skiff.test;

message Order {
  string id = 1;
  int64 units = 2;
}
"""


outcomes = produce_outcomes
framed = schema_framed


def test_avro_records_are_validated_against_the_topic_subject(broker_factory, engine):
    broker = broker_factory(engine, schema_registry=True)
    registry = SchemaRegistryClient({"url": broker.registry_url})
    topic = unique("users")
    create_topic(broker.bootstrap, topic)
    user_id = registry.register_schema(f"{topic}-value", Schema(USER, "AVRO"))
    other_id = registry.register_schema(unique("other") + "-value", Schema(OTHER, "AVRO"))
    assert user_id != other_id

    serialize = AvroSerializer(registry, USER, conf={"auto.register.schemas": False, "use.latest.version": True})
    context = SerializationContext(topic, MessageField.VALUE)
    good = [serialize({"name": "ada", "age": 36}, context), serialize({"name": "alan", "age": 41}, context)]
    assert outcomes(broker.bootstrap, topic, good) == [None, None]

    bad = [
        framed(user_id, b"\xff\xff\xff"),  # the right id, a payload that is no User
        framed(987654, good[0][5:]),  # an id nobody registered
        framed(other_id, good[0][5:]),  # the id of another subject
        b'{"name": "ada"}',  # no wire header at all
    ]
    for value in bad:
        assert outcomes(broker.bootstrap, topic, [value]) == [KafkaError.INVALID_RECORD], value
    # One batch mixing good and bad records: only the bad ones are named; nothing is stored.
    mixed = outcomes(broker.bootstrap, topic, [good[0], bad[0], good[1], bad[1]])
    assert mixed == [
        KafkaError._INVALID_DIFFERENT_RECORD,
        KafkaError.INVALID_RECORD,
        KafkaError._INVALID_DIFFERENT_RECORD,
        KafkaError.INVALID_RECORD,
    ]
    assert watermarks(broker.bootstrap, topic) == (0, 2), "only the first two valid records are stored"

    deserialize = AvroDeserializer(registry)
    read = [deserialize(m.value(), context) for m in consume(broker.bootstrap, topic, count=2)]
    assert read == [{"name": "ada", "age": 36}, {"name": "alan", "age": 41}]


def test_json_and_protobuf_serializers_write_validated_topics(broker_factory, engine):
    broker = broker_factory(engine, schema_registry=True)
    registry = SchemaRegistryClient({"url": broker.registry_url})

    orders = unique("orders-json")
    create_topic(broker.bootstrap, orders)
    registry.register_schema(f"{orders}-value", Schema(ORDER_JSON, "JSON"))
    serialize = JSONSerializer(ORDER_JSON, registry, conf={"auto.register.schemas": False, "use.latest.version": True})
    context = SerializationContext(orders, MessageField.VALUE)
    good = serialize({"id": 7, "label": "seven"}, context)
    schema_id = struct.unpack(">I", good[1:5])[0]
    wrong_type = framed(schema_id, b'{"id": "seven"}')
    undeclared = framed(schema_id, b'{"id": 8, "colour": "red"}')
    not_json = framed(schema_id, b"\x00\x01")
    assert outcomes(broker.bootstrap, orders, [good, wrong_type, undeclared, not_json]) == [
        KafkaError._INVALID_DIFFERENT_RECORD,
        KafkaError.INVALID_RECORD,
        KafkaError.INVALID_RECORD,
        KafkaError.INVALID_RECORD,
    ]
    assert outcomes(broker.bootstrap, orders, [good]) == [None]
    deserialize = JSONDeserializer(ORDER_JSON)
    assert [deserialize(m.value(), context) for m in consume(broker.bootstrap, orders, count=1)] == [
        {"id": 7, "label": "seven"}
    ]

    proto_topic = unique("orders-proto")
    create_topic(broker.bootstrap, proto_topic)
    registry.register_schema(f"{proto_topic}-value", Schema(ORDER_PROTO, "PROTOBUF"))
    proto_id = registry.get_latest_version(f"{proto_topic}-value").schema_id
    # The payload is protobuf's own encoding of an Order; the header is Confluent's wire format
    # with message index [0] (the first message of the file).
    order_class = protobuf_order_class()
    good = framed(proto_id, b"\x00" + order_class(id="o-1", units=3).SerializeToString())
    # Field 1 as a varint where Order has a string: does not decode as an Order.
    garbage = framed(proto_id, b"\x00" + b"\x08\x96\x01")
    no_such_message = framed(proto_id, b"\x02\x0a" + order_class(id="o-2").SerializeToString())  # indexes [5]
    # Two bad records: librdkafka tells the records apart only when the broker names more than
    # one (with a single record error it fails the whole batch with the partition's error).
    assert outcomes(broker.bootstrap, proto_topic, [good, garbage, good, no_such_message]) == [
        KafkaError._INVALID_DIFFERENT_RECORD,
        KafkaError.INVALID_RECORD,
        KafkaError._INVALID_DIFFERENT_RECORD,
        KafkaError.INVALID_RECORD,
    ]
    assert outcomes(broker.bootstrap, proto_topic, [good]) == [None]
    assert watermarks(broker.bootstrap, proto_topic) == (0, 1)


def protobuf_order_class():
    """The generated class of ORDER_PROTO's Order."""
    file = protobuf_message_file(f"{unique('order')}.proto", "skiff.test", "Order", [("id", "string"), ("units", "int64")])
    [order] = protobuf_classes([file], "skiff.test.Order")
    return order


def order_with_money_classes():
    """Generated classes of an Order whose file imports another file, `skiff/<unique>.proto`,
    defining Money: a schema with a reference."""
    money = protobuf_message_file(f"skiff/{unique('money')}.proto", "skiff.money", "Money", [("cents", "int64")])
    order = protobuf_message_file(f"{unique('order')}.proto", "skiff.shop", "Order",
                                  [("id", "string"), ("total", "skiff.money.Money")], imports=(money.name,))
    return protobuf_classes([money, order], "skiff.shop.Order", "skiff.money.Money")


def test_protobuf_serializer_registers_serialized_files_and_the_deserializer_reads_them(broker_factory, engine):
    broker = broker_factory(engine, schema_registry=True)
    registry = SchemaRegistryClient({"url": broker.registry_url})
    topic = unique("orders-pb")
    create_topic(broker.bootstrap, topic)
    order_class, money_class = order_with_money_classes()
    context = SerializationContext(topic, MessageField.VALUE)

    # The serializer registers the imported file under its import path, then the Order file
    # referencing it, both as base64 FileDescriptorProtos.
    serialize = ProtobufSerializer(order_class, registry, {"auto.register.schemas": True})
    first = serialize(order_class(id="o-1", total=money_class(cents=250)), context)
    second = serialize(order_class(id="o-2", total=money_class(cents=99)), context)
    latest = registry.get_latest_version(f"{topic}-value")
    assert latest.schema.schema_type == "PROTOBUF"
    [reference] = latest.schema.references
    assert reference.subject == reference.name and reference.name.startswith("skiff/money-")
    assert registry.get_latest_version(reference.subject).schema_id != latest.schema_id
    # Registering the same classes again (a new serializer) finds the same ids.
    again = ProtobufSerializer(order_class, registry, {"auto.register.schemas": True})(order_class(id="o-3"), context)
    assert again[1:5] == first[1:5]

    garbage = first[:6] + b"\x10\x01"  # field 2 as a varint where total is a message
    assert outcomes(broker.bootstrap, topic, [first, garbage, second, garbage]) == [
        KafkaError._INVALID_DIFFERENT_RECORD,
        KafkaError.INVALID_RECORD,
        KafkaError._INVALID_DIFFERENT_RECORD,
        KafkaError.INVALID_RECORD,
    ]
    assert outcomes(broker.bootstrap, topic, [first, second]) == [None, None]

    # The deserializer fetches the writer's schema and its reference with format=serialized.
    deserialize = ProtobufDeserializer(order_class, {}, registry)
    read = [deserialize(m.value(), context) for m in consume(broker.bootstrap, topic, count=2)]
    assert [(m.id, m.total.cents) for m in read] == [("o-1", 250), ("o-2", 99)]


def test_record_name_strategies_check_each_value_against_its_records_subject(broker_factory, engine):
    broker = broker_factory(engine, schema_registry=True)
    registry = SchemaRegistryClient({"url": broker.registry_url})
    user_schema = json.loads(USER)
    user_name = ".".join(filter(None, [user_schema.get("namespace"), user_schema["name"]]))
    for strategy, name_subject in [
        ("record", record_subject_name_strategy),
        ("topic_record", topic_record_subject_name_strategy),
    ]:
        topic = unique(f"events-{strategy}")
        create_topic(broker.bootstrap, topic, config={"skiff.subject.name.strategy": strategy})
        context = SerializationContext(topic, MessageField.VALUE)
        conf = {"auto.register.schemas": True, "subject.name.strategy": name_subject}
        # Two record types in one topic, each registered under its own record's subject.
        user = AvroSerializer(registry, USER, conf=conf)({"name": "ada", "age": 36}, context)
        other = AvroSerializer(registry, OTHER, conf=conf)({"x": 7}, context)
        expected_subject = user_name if strategy == "record" else f"{topic}-{user_name}"
        assert registry.get_latest_version(expected_subject).schema_id == struct.unpack(">I", user[1:5])[0]

        other_id = struct.unpack(">I", other[1:5])[0]
        claims_other = framed(other_id, user[5:])  # Other's id on a User payload: does not decode
        unframed = b'{"name": "ada"}'
        assert outcomes(broker.bootstrap, topic, [user, other, claims_other, unframed, None]) == [
            KafkaError._INVALID_DIFFERENT_RECORD,
            KafkaError._INVALID_DIFFERENT_RECORD,
            KafkaError.INVALID_RECORD,
            KafkaError.INVALID_RECORD,
            KafkaError._INVALID_DIFFERENT_RECORD,
        ], strategy
        # An id registered only under the topic's own `-value` subject names no record subject
        # of this strategy's.
        stray = registry.register_schema(unique("stray") + "-value", Schema(
            json.dumps({"type": "record", "name": unique("Stray").replace("-", "_"), "fields": []}), "AVRO"))
        assert outcomes(broker.bootstrap, topic, [framed(stray, b""), framed(stray, b"")]) == [
            KafkaError.INVALID_RECORD, KafkaError.INVALID_RECORD]
        assert outcomes(broker.bootstrap, topic, [user, other, None]) == [None, None, None], strategy
        assert watermarks(broker.bootstrap, topic) == (0, 3)

    # Raw framing cannot name a record: refused when the topic is created.
    refused = unique("raw-by-record")
    futures = admin(broker.bootstrap).create_topics([NewTopic(refused, 1, 1, config={
        "skiff.subject.name.strategy": "record", "skiff.value.schema.framing": "raw"})])
    assert error_code(wait_futures(futures)[refused]) == KafkaError.INVALID_CONFIG


def test_kcat_writes_plain_json_into_a_raw_framed_topic(broker_factory, engine):
    broker = broker_factory(engine, schema_registry=True)
    registry = SchemaRegistryClient({"url": broker.registry_url})
    topic = unique("raw-json")
    create_topic(broker.bootstrap, topic, config={"skiff.value.schema.framing": "raw"})
    registry.register_schema(f"{topic}-value", Schema(ORDER_JSON, "JSON"))

    lines = '{"id": 1, "label": "one"}\n{"id": 2}\n'
    sent = subprocess.run(["kcat", "-P", "-b", broker.bootstrap, "-t", topic], input=lines.encode(),
                          capture_output=True, timeout=30)
    assert sent.returncode == 0, sent.stderr
    refused = subprocess.run(["kcat", "-P", "-b", broker.bootstrap, "-t", topic], input=b'{"label": "no id"}\n',
                             capture_output=True, timeout=30)
    assert b"INVALID_RECORD" in refused.stderr or b"validate record" in refused.stderr, refused.stderr
    stored = [json.loads(m.value()) for m in consume(broker.bootstrap, topic)]
    assert stored == [{"id": 1, "label": "one"}, {"id": 2}]


def test_validation_can_be_turned_off_per_topic(broker_factory, engine):
    broker = broker_factory(engine, schema_registry=True)
    registry = SchemaRegistryClient({"url": broker.registry_url})
    topic = unique("unchecked")
    create_topic(broker.bootstrap, topic, config={"skiff.schema.validation": "false"})
    registry.register_schema(f"{topic}-value", Schema(USER, "AVRO"))
    assert outcomes(broker.bootstrap, topic, [b"anything goes"]) == [None]
