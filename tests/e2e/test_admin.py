"""Topic administration through confluent-kafka's AdminClient: create, delete, list,
CreatePartitions, DescribeConfigs / AlterConfigs / IncrementalAlterConfigs, DescribeCluster, and
Metadata auto-creation with and without --auto-create-topics."""

from __future__ import annotations

import time

from confluent_kafka import KafkaError
from confluent_kafka.admin import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

import kafka_wire
from helpers import (
    TIMEOUT,
    admin,
    consume,
    create_topic,
    error_code,
    produce,
    producer,
    topic_partitions,
    unique,
    wait_futures,
    watermarks,
)

RETENTION_DEFAULT = "604800000"  # Kafka's retention.ms default: 7 days


def create_topics(bootstrap, *topics: NewTopic) -> dict:
    futures = admin(bootstrap).create_topics(list(topics), operation_timeout=10, request_timeout=TIMEOUT)
    return wait_futures(futures)


def wait_absent(bootstrap: str, topic: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while topic_partitions(bootstrap, topic) is not None:
        assert time.monotonic() < deadline, f"{topic} still listed {timeout}s after deletion"
        time.sleep(0.1)


def test_topic_create_list_delete(broker):
    first, second = unique("admin-a"), unique("admin-b")
    outcomes = create_topics(broker.bootstrap, NewTopic(first, 3, 1), NewTopic(second, 1, 1))
    assert {name: error_code(o) for name, o in outcomes.items()} == {first: None, second: None}, outcomes

    listed = admin(broker.bootstrap).list_topics(timeout=TIMEOUT).topics
    assert len(listed[first].partitions) == 3
    assert len(listed[second].partitions) == 1

    outcomes = create_topics(broker.bootstrap, NewTopic(first, 5, 1))
    assert error_code(outcomes[first]) == KafkaError.TOPIC_ALREADY_EXISTS, outcomes[first]
    assert topic_partitions(broker.bootstrap, first) == 3, "a failed create changed the topic"

    produce(broker.bootstrap, first, [{"value": b"before-delete", "partition": 2}])
    assert watermarks(broker.bootstrap, first, 2) == (0, 1)

    futures = admin(broker.bootstrap).delete_topics([first], operation_timeout=10, request_timeout=TIMEOUT)
    assert error_code(wait_futures(futures)[first]) is None
    wait_absent(broker.bootstrap, first)
    assert topic_partitions(broker.bootstrap, second) == 1, "deleting one topic touched another"

    futures = admin(broker.bootstrap).delete_topics([first], operation_timeout=10, request_timeout=TIMEOUT)
    assert error_code(wait_futures(futures)[first]) == KafkaError.UNKNOWN_TOPIC_OR_PART

    # Re-created under the same name, the topic starts empty with its new partition count.
    outcomes = create_topics(broker.bootstrap, NewTopic(first, 4, 1))
    assert error_code(outcomes[first]) is None, outcomes[first]
    assert topic_partitions(broker.bootstrap, first) == 4
    assert watermarks(broker.bootstrap, first, 2) == (0, 0), "records of the deleted topic came back"


def test_create_topic_with_default_partitions_and_invalid_requests(broker_factory, engine):
    broker = broker_factory(engine, "--num-partitions", "3")
    name = unique("admin-default")
    outcomes = create_topics(broker.bootstrap, NewTopic(name))  # -1 partitions: the broker default
    assert error_code(outcomes[name]) is None, outcomes[name]
    assert topic_partitions(broker.bootstrap, name) == 3

    bad = unique("admin-bad")
    outcomes = create_topics(broker.bootstrap, NewTopic(bad, 1, 1, config={"retention.ms": "not-a-number"}))
    assert error_code(outcomes[bad]) == KafkaError.INVALID_CONFIG, outcomes[bad]
    assert topic_partitions(broker.bootstrap, bad) is None

    invalid_name = "bad/name"
    outcomes = create_topics(broker.bootstrap, NewTopic(invalid_name, 1, 1))
    assert error_code(outcomes[invalid_name]) == KafkaError.TOPIC_EXCEPTION, outcomes[invalid_name]


def test_create_partitions(broker):
    topic = unique("grow")
    create_topic(broker.bootstrap, topic, partitions=2)
    client = admin(broker.bootstrap)

    futures = client.create_partitions([NewPartitions(topic, 5)], operation_timeout=10, request_timeout=TIMEOUT)
    assert error_code(wait_futures(futures)[topic]) is None
    assert topic_partitions(broker.bootstrap, topic) == 5

    delivered = produce(broker.bootstrap, topic, [{"value": b"in-new-partition", "partition": 4}])
    assert (delivered[0].partition(), delivered[0].offset()) == (4, 0)
    messages = consume(broker.bootstrap, topic, count=1, partitions=(4,))
    assert [(m.partition(), m.offset(), m.value()) for m in messages] == [(4, 0, b"in-new-partition")]

    futures = client.create_partitions([NewPartitions(topic, 3)], operation_timeout=10, request_timeout=TIMEOUT)
    assert error_code(wait_futures(futures)[topic]) == KafkaError.INVALID_PARTITIONS
    assert topic_partitions(broker.bootstrap, topic) == 5

    missing = unique("grow-missing")
    futures = client.create_partitions([NewPartitions(missing, 3)], operation_timeout=10, request_timeout=TIMEOUT)
    assert error_code(wait_futures(futures)[missing]) == KafkaError.UNKNOWN_TOPIC_OR_PART


def describe_topic_configs(bootstrap: str, topic: str) -> dict[str, ConfigEntry]:
    futures = admin(bootstrap).describe_configs([ConfigResource(ResourceType.TOPIC, topic)], request_timeout=TIMEOUT)
    outcome = list(wait_futures(futures).values())[0]
    assert error_code(outcome) is None, f"describe_configs({topic}) failed: {outcome}"
    return outcome


def config_of(entries: dict[str, ConfigEntry], name: str) -> tuple[str, ConfigSource]:
    assert name in entries, f"{name} missing from DescribeConfigs: {sorted(entries)}"
    return entries[name].value, ConfigSource(entries[name].source)


def test_describe_and_alter_configs(broker):
    topic = unique("configs")
    create_topic(broker.bootstrap, topic, config={"cleanup.policy": "compact"})
    client = admin(broker.bootstrap)

    entries = describe_topic_configs(broker.bootstrap, topic)
    assert config_of(entries, "retention.ms") == (RETENTION_DEFAULT, ConfigSource.DEFAULT_CONFIG)
    assert config_of(entries, "cleanup.policy") == ("compact", ConfigSource.DYNAMIC_TOPIC_CONFIG)
    assert "max.message.bytes" in entries

    # AlterConfigs replaces the whole set: cleanup.policy goes back to its default.
    resource = ConfigResource(ResourceType.TOPIC, topic, set_config={"retention.ms": "3600000"})
    outcome = list(wait_futures(client.alter_configs([resource], request_timeout=TIMEOUT)).values())[0]
    assert error_code(outcome) is None, outcome
    entries = describe_topic_configs(broker.bootstrap, topic)
    assert config_of(entries, "retention.ms") == ("3600000", ConfigSource.DYNAMIC_TOPIC_CONFIG)
    assert config_of(entries, "cleanup.policy") == ("delete", ConfigSource.DEFAULT_CONFIG)

    # IncrementalAlterConfigs changes only what it names.
    resource = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry("max.message.bytes", "2000000", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    outcome = list(wait_futures(client.incremental_alter_configs([resource], request_timeout=TIMEOUT)).values())[0]
    assert error_code(outcome) is None, outcome
    entries = describe_topic_configs(broker.bootstrap, topic)
    assert config_of(entries, "max.message.bytes") == ("2000000", ConfigSource.DYNAMIC_TOPIC_CONFIG)
    assert config_of(entries, "retention.ms") == ("3600000", ConfigSource.DYNAMIC_TOPIC_CONFIG)

    resource = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE)],
    )
    outcome = list(wait_futures(client.incremental_alter_configs([resource], request_timeout=TIMEOUT)).values())[0]
    assert error_code(outcome) is None, outcome
    entries = describe_topic_configs(broker.bootstrap, topic)
    assert config_of(entries, "retention.ms") == (RETENTION_DEFAULT, ConfigSource.DEFAULT_CONFIG)
    assert config_of(entries, "max.message.bytes") == ("2000000", ConfigSource.DYNAMIC_TOPIC_CONFIG)

    # Bad values and unknown topics are per-resource errors.
    resource = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[ConfigEntry("retention.ms", "soon", incremental_operation=AlterConfigOpType.SET)],
    )
    outcome = list(wait_futures(client.incremental_alter_configs([resource], request_timeout=TIMEOUT)).values())[0]
    assert error_code(outcome) == KafkaError.INVALID_CONFIG, outcome
    assert config_of(describe_topic_configs(broker.bootstrap, topic), "retention.ms")[0] == RETENTION_DEFAULT

    missing = unique("configs-missing")
    futures = client.describe_configs([ConfigResource(ResourceType.TOPIC, missing)], request_timeout=TIMEOUT)
    assert error_code(list(wait_futures(futures).values())[0]) == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_deprecated_kafka_configs_are_accepted_and_described(broker):
    """Tools still set configs Kafka 3.x deprecated (message.format.version, ...): Kafka accepts
    them, so Skiff stores and describes them too, and refuses only what Kafka refuses."""
    topic = unique("old-configs")
    create_topic(broker.bootstrap, topic, config={"message.format.version": "2.8"})
    client = admin(broker.bootstrap)
    entries = describe_topic_configs(broker.bootstrap, topic)
    assert config_of(entries, "message.format.version") == ("2.8", ConfigSource.DYNAMIC_TOPIC_CONFIG)
    assert config_of(entries, "message.downconversion.enable") == ("true", ConfigSource.DEFAULT_CONFIG)

    resource = ConfigResource(
        ResourceType.TOPIC,
        topic,
        set_config={"message.format.version": "3.0-IV1", "message.downconversion.enable": "false"},
    )
    outcome = list(wait_futures(client.alter_configs([resource], request_timeout=TIMEOUT)).values())[0]
    assert error_code(outcome) is None, outcome
    entries = describe_topic_configs(broker.bootstrap, topic)
    assert config_of(entries, "message.format.version") == ("3.0-IV1", ConfigSource.DYNAMIC_TOPIC_CONFIG)
    assert config_of(entries, "message.downconversion.enable") == ("false", ConfigSource.DYNAMIC_TOPIC_CONFIG)

    resource = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry("message.format.version", "0.10.2", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry("message.timestamp.difference.max.ms", "60000", incremental_operation=AlterConfigOpType.SET),
        ],
    )
    outcome = list(wait_futures(client.incremental_alter_configs([resource], request_timeout=TIMEOUT)).values())[0]
    assert error_code(outcome) is None, outcome
    entries = describe_topic_configs(broker.bootstrap, topic)
    assert config_of(entries, "message.format.version") == ("0.10.2", ConfigSource.DYNAMIC_TOPIC_CONFIG)
    assert config_of(entries, "message.timestamp.difference.max.ms")[0] == "60000"

    # What Kafka refuses stays refused: a value that is no Kafka version, an unknown name.
    for name, value in [("message.format.version", "latest"), ("message.format.versions", "3.0")]:
        resource = ConfigResource(
            ResourceType.TOPIC,
            topic,
            incremental_configs=[ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)],
        )
        outcome = list(wait_futures(client.incremental_alter_configs([resource], request_timeout=TIMEOUT)).values())[0]
        assert error_code(outcome) == KafkaError.INVALID_CONFIG, (name, outcome)
    produce(broker.bootstrap, topic, [{"value": b"still works"}])
    assert [m.value() for m in consume(broker.bootstrap, topic)] == [b"still works"]


def test_describe_cluster_advertises_the_listener(broker):
    description = admin(broker.bootstrap).describe_cluster(request_timeout=TIMEOUT).result(timeout=TIMEOUT)
    assert [(node.host, node.port) for node in description.nodes] == [("127.0.0.1", broker.port)]
    assert description.controller is not None
    assert description.cluster_id

    metadata = admin(broker.bootstrap).list_topics(timeout=TIMEOUT)
    assert [(b.host, b.port) for b in metadata.brokers.values()] == [("127.0.0.1", broker.port)]


def test_metadata_auto_creates_topics(broker_factory, engine):
    broker = broker_factory(engine, "--num-partitions", "3")
    topic = unique("auto")
    assert topic_partitions(broker.bootstrap, topic) is None

    records = [{"key": f"k{i}".encode(), "value": f"v{i}".encode()} for i in range(60)]
    delivered = produce(broker.bootstrap, topic, records)
    assert topic_partitions(broker.bootstrap, topic) == 3
    assert {m.partition() for m in delivered} == {0, 1, 2}

    messages = consume(broker.bootstrap, topic, count=60, partitions=(0, 1, 2))
    assert sorted((m.key(), m.value()) for m in messages) == sorted((r["key"], r["value"]) for r in records)
    assert {(m.partition(), m.offset()) for m in messages} == {(m.partition(), m.offset()) for m in delivered}


def test_auto_create_disabled_fails_unknown_topic(broker_factory, engine):
    broker = broker_factory(engine, "--auto-create-topics", "false")
    topic = unique("no-auto")

    # On the wire: Metadata asking to auto-create still gets UNKNOWN_TOPIC_OR_PARTITION.
    payload = kafka_wire.roundtrip(broker.port, kafka_wire.metadata_v4_request([topic], True, 42))
    correlation_id, brokers, topics = kafka_wire.parse_metadata_v4(payload)
    assert correlation_id == 42
    assert topics[topic]["error"] == kafka_wire.ERROR_UNKNOWN_TOPIC_OR_PARTITION

    # Through a producer: delivery fails with unknown topic.
    client = producer(
        broker.bootstrap,
        **{"message.timeout.ms": 5000, "topic.metadata.propagation.max.ms": 1000},
    )
    errors = []
    client.produce(topic, b"nowhere", on_delivery=lambda err, msg: errors.append(err))
    assert client.flush(15) == 0
    assert len(errors) == 1 and errors[0] is not None, f"produce to an unknown topic succeeded: {errors}"
    assert errors[0].code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC), errors[0]
    assert topic_partitions(broker.bootstrap, topic) is None

    # An explicitly created topic still works.
    create_topic(broker.bootstrap, topic)
    delivered = produce(broker.bootstrap, topic, [{"value": b"now-it-exists"}])
    assert delivered[0].offset() == 0
