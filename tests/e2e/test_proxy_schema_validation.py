"""`skiff proxy --schema-registry URL` in front of a Kafka cluster that does not validate: a
plain Skiff broker upstream, the schemas in another Skiff broker's registry. confluent-kafka
produces through the proxy; what the proxy refuses (INVALID_RECORD, every bad record named) must
be absent upstream, a partition of the same request that is valid must be stored, and a
registry that is down must refuse with an error clients retry, storing nothing."""

from __future__ import annotations

from confluent_kafka import KafkaError
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from conftest import free_port
from helpers import (
    OTHER_AVRO,
    USER_AVRO,
    create_topic,
    produce_outcomes,
    schema_framed,
    unique,
    watermarks,
)
from test_proxy import proxy_factory  # noqa: F401 (a fixture)

USER, OTHER = USER_AVRO, OTHER_AVRO


def outcomes(bootstrap: str, topic: str, records: list[tuple[int, bytes]], **conf) -> list[int | None]:
    return produce_outcomes(bootstrap, topic, records, linger_ms=500, **conf)


framed = schema_framed


def test_proxy_refuses_invalid_records_and_forwards_the_rest(broker_factory, proxy_factory):
    registry_broker = broker_factory("memory", schema_registry=True)
    upstream = broker_factory("memory")
    proxy = proxy_factory([upstream.address], "--schema-registry", registry_broker.registry_url)
    registry = SchemaRegistryClient({"url": registry_broker.registry_url})
    topic = unique("users")
    create_topic(upstream.bootstrap, topic, partitions=2)
    user_id = registry.register_schema(f"{topic}-value", Schema(USER, "AVRO"))
    other_id = registry.register_schema(unique("other") + "-value", Schema(OTHER, "AVRO"))

    serialize = AvroSerializer(registry, USER, conf={"auto.register.schemas": False, "use.latest.version": True})
    context = SerializationContext(topic, MessageField.VALUE)
    good = [serialize({"name": "ada", "age": 36}, context), serialize({"name": "alan", "age": 41}, context)]
    assert outcomes(proxy.bootstrap, topic, [(0, good[0]), (0, good[1])]) == [None, None]
    assert watermarks(upstream.bootstrap, topic, 0) == (0, 2)

    bad = [
        framed(user_id, b"\xff\xff\xff"),  # the right id, a payload that is no User
        framed(987654, good[0][5:]),  # an id nobody registered
        framed(other_id, good[0][5:]),  # the id of another subject
        b'{"name": "ada"}',  # no wire header at all
    ]
    for value in bad:
        assert outcomes(proxy.bootstrap, topic, [(0, value)]) == [KafkaError.INVALID_RECORD], value
    assert watermarks(upstream.bootstrap, topic, 0) == (0, 2), "nothing refused reached the cluster"

    # One request, two partitions: partition 1 holds bad records and is refused (its good
    # records with it, named as innocent: KIP-467), partition 0 is forwarded and stored.
    mixed = outcomes(
        proxy.bootstrap,
        topic,
        [(0, good[0]), (1, good[0]), (1, bad[0]), (1, good[1]), (1, bad[1]), (0, good[1])],
    )
    assert mixed == [
        None,
        KafkaError._INVALID_DIFFERENT_RECORD,
        KafkaError.INVALID_RECORD,
        KafkaError._INVALID_DIFFERENT_RECORD,
        KafkaError.INVALID_RECORD,
        None,
    ]
    assert watermarks(upstream.bootstrap, topic, 0) == (0, 4)
    assert watermarks(upstream.bootstrap, topic, 1) == (0, 0)
    proxy.wait_log("refused records failing the schema")

    # A topic without a subject is not checked.
    free = unique("free")
    create_topic(upstream.bootstrap, free)
    assert outcomes(proxy.bootstrap, free, [(0, b"anything at all")]) == [None]
    assert watermarks(upstream.bootstrap, free, 0) == (0, 1)


def test_proxy_refuses_with_a_retriable_error_when_the_registry_is_down(broker_factory, proxy_factory):
    upstream = broker_factory("memory")
    nowhere = f"http://127.0.0.1:{free_port()}"
    proxy = proxy_factory([upstream.address], "--schema-registry", nowhere)
    topic = unique("users")
    create_topic(upstream.bootstrap, topic)

    # KAFKA_STORAGE_ERROR is retriable: with retries the client keeps trying until its delivery
    # timeout; without, it sees the code itself.
    assert outcomes(proxy.bootstrap, topic, [(0, framed(1, b"\x06ada\x48"))]) == [KafkaError.KAFKA_STORAGE_ERROR]
    retried = outcomes(
        proxy.bootstrap, topic, [(0, framed(1, b"\x06ada\x48"))], retries=1000, **{"message.timeout.ms": 3000}
    )
    assert retried == [KafkaError._MSG_TIMED_OUT]
    line = proxy.wait_log("records not checked: partition refused")
    assert "schema registry unavailable" in line, line
    assert watermarks(upstream.bootstrap, topic, 0) == (0, 0), "unchecked records must not be forwarded"
