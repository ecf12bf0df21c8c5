"""ACLs with real clients (`--authorizer acl`): confluent-kafka's admin client creates, lists and
deletes ACLs; `skiff acl` does the same on the storage URL; a user without WRITE on a topic is
refused that topic while a permitted one goes through (confluent-kafka, kcat, kafka-python);
consumer groups need READ on the group, transactional producers WRITE on their transactional id;
prefixed ACLs cover every name under the prefix; two brokers on one storage enforce an ACL made
through the other; a mutual-TLS client acts as its certificate's subject."""

from __future__ import annotations

import subprocess
import time

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer, TopicCollection
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)
from helpers import (
    CLIENT_LOG,
    Scrape,
    admin,
    consume,
    consumer,
    free_port,
    kcat,
    kcat_path,
    produce,
    unique,
    wait_futures,
)
from test_sasl import PASSWORD, add_user, kafka_python_conf, kcat_sasl, sasl

AUTHORIZER = ("--authorizer", "acl", "--super-users", "User:admin")
TOPIC_AUTHORIZATION_FAILED = 29
GROUP_AUTHORIZATION_FAILED = 30
TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53


def secured_broker(broker_factory, skiff_bin, *extra: str, users=("admin", "alice", "bob"), **kwargs):
    """A broker enforcing ACLs on a SASL listener, with `admin` a super user."""
    broker = broker_factory(kwargs.pop("engine", "sqlite"), *AUTHORIZER, *extra, sasl=True, **kwargs)
    for user in users:
        add_user(skiff_bin, broker, user)
    return broker


def as_user(broker, user: str):
    return admin(broker.sasl_bootstrap, **sasl("SCRAM-SHA-256", user))


def create_topics(broker, *names: str) -> None:
    futures = as_user(broker, "admin").create_topics(
        [NewTopic(name, num_partitions=1, replication_factor=1) for name in names])
    for name, outcome in wait_futures(futures).items():
        assert outcome is None, f"creating {name}: {outcome}"


def allow(resource_type, name: str, principal: str, operation, pattern=ResourcePatternType.LITERAL) -> AclBinding:
    return AclBinding(resource_type, name, pattern, principal, "*", operation, AclPermissionType.ALLOW)


def create_acls(broker, *bindings: AclBinding) -> None:
    outcomes = wait_futures(as_user(broker, "admin").create_acls(list(bindings)))
    assert all(outcome is None for outcome in outcomes.values()), outcomes


def skiff_acl(skiff_bin, broker, *args: str) -> str:
    result = subprocess.run([str(skiff_bin), "acl", *args, "--storage", broker.storage],
                            capture_output=True, timeout=30)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def kcat_refused(*args: str, input: bytes = b"") -> str:
    """Runs kcat expecting it to fail; returns its stderr."""
    result = subprocess.run([kcat_path(), *args], input=input, capture_output=True, timeout=30)
    assert result.returncode != 0, result.stdout
    return result.stderr.decode(errors="replace")


def delivery_codes(bootstrap: str, topic_values: list[tuple[str, bytes]], **conf) -> list[int | None]:
    """Produces each (topic, value) and returns each record's error code (None: stored)."""
    client = Producer({"bootstrap.servers": bootstrap, "retries": 0, "message.timeout.ms": 15000,
                       **CLIENT_LOG, **conf})
    found: dict[int, int | None] = {}
    for index, (topic, value) in enumerate(topic_values):
        client.produce(topic, value=value, partition=0,
                       on_delivery=lambda err, msg, index=index: found.__setitem__(index, err.code() if err else None))
    client.flush(30)
    assert sorted(found) == list(range(len(topic_values))), found
    return [found[index] for index in range(len(topic_values))]


def stored_values(broker, topic: str) -> list[bytes]:
    return [m.value() for m in consume(broker.sasl_bootstrap, topic, **sasl("PLAIN", "admin"))]


def test_a_user_is_refused_a_topic_without_write_while_a_permitted_one_goes_through(broker_factory, skiff_bin):
    from kafka import KafkaProducer
    from kafka.errors import TopicAuthorizationFailedError

    metrics_port = free_port()
    broker = secured_broker(broker_factory, skiff_bin, "--metrics-listen", f"127.0.0.1:{metrics_port}")
    granted, withheld = unique("granted"), unique("withheld")
    create_topics(broker, granted, withheld)
    create_acls(broker, allow(ResourceType.TOPIC, granted, "User:alice", AclOperation.WRITE))

    codes = delivery_codes(broker.sasl_bootstrap, [(granted, b"one"), (withheld, b"two")],
                           **sasl("SCRAM-SHA-512", "alice"))
    assert codes == [None, TOPIC_AUTHORIZATION_FAILED]
    refused = kcat_refused("-b", broker.sasl_bootstrap, "-P", "-t", withheld, "-p", "0",
                           *kcat_sasl("PLAIN", "alice"), input=b"from-kcat\n")
    assert "Topic authorization failed" in refused, refused
    kcat("-b", broker.sasl_bootstrap, "-P", "-t", granted, "-p", "0", *kcat_sasl("PLAIN", "alice"),
         input=b"from-kcat\n")

    client = KafkaProducer(bootstrap_servers=[broker.sasl_bootstrap], **kafka_python_conf("PLAIN"))
    client.send(granted, b"from-kafka-python", partition=0).get(timeout=15)
    with pytest.raises(TopicAuthorizationFailedError):
        client.send(withheld, b"refused", partition=0).get(timeout=15)
    client.close()

    assert stored_values(broker, granted) == [b"one", b"from-kcat", b"from-kafka-python"]
    assert stored_values(broker, withheld) == [], "nothing refused was stored"
    denials = Scrape(f"http://127.0.0.1:{metrics_port}").total("skiff_authorization_denials_total",
                                                                resource_type="TOPIC")
    assert denials >= 3, "the confluent-kafka, kcat and kafka-python refusals are counted"


def test_admin_clients_create_list_and_delete_acls(broker_factory, skiff_bin):
    broker = secured_broker(broker_factory, skiff_bin)
    topic = unique("orders")
    create_topics(broker, topic)
    refused = wait_futures(as_user(broker, "alice").create_acls(
        [allow(ResourceType.TOPIC, topic, "User:alice", AclOperation.WRITE)]))
    assert [outcome.args[0].code() for outcome in refused.values()] == [KafkaError.CLUSTER_AUTHORIZATION_FAILED]

    write = allow(ResourceType.TOPIC, topic, "User:alice", AclOperation.WRITE)
    prefixed = allow(ResourceType.TOPIC, topic[:6], "User:bob", AclOperation.READ, ResourcePatternType.PREFIXED)
    create_acls(broker, write, prefixed)
    every_topic_acl = AclBindingFilter(ResourceType.TOPIC, None, ResourcePatternType.ANY, None, None,
                                       AclOperation.ANY, AclPermissionType.ANY)
    listed = as_user(broker, "admin").describe_acls(every_topic_acl).result(timeout=15)
    assert sorted((b.name, b.principal, b.operation) for b in listed) == sorted(
        [(topic, "User:alice", AclOperation.WRITE), (topic[:6], "User:bob", AclOperation.READ)])
    matching = AclBindingFilter(ResourceType.TOPIC, topic, ResourcePatternType.MATCH, "User:bob", None,
                                AclOperation.ANY, AclPermissionType.ANY)
    assert [b.name for b in as_user(broker, "admin").describe_acls(matching).result(timeout=15)] == [topic[:6]]
    assert "TOPIC" in skiff_acl(skiff_bin, broker, "list", "--principal", "User:bob")
    refused = subprocess.run([str(skiff_bin), "acl", "remove", "--storage", broker.storage],
                             capture_output=True, timeout=30)
    assert refused.returncode != 0 and b"--all" in refused.stderr, "removing everything needs --all"
    assert "User:bob" in skiff_acl(skiff_bin, broker, "remove", "--principal", "User:bob")
    assert skiff_acl(skiff_bin, broker, "list", "--principal", "User:bob", "--json").strip() == "[]"

    assert delivery_codes(broker.sasl_bootstrap, [(topic, b"kept")], **sasl("PLAIN", "alice")) == [None]
    described = as_user(broker, "alice").describe_topics(TopicCollection([topic]), include_authorized_operations=True)
    operations = set(wait_futures(described)[topic].authorized_operations)
    assert operations == {AclOperation.WRITE, AclOperation.DESCRIBE}, operations
    alice_filter = AclBindingFilter(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:alice", None,
                                    AclOperation.ANY, AclPermissionType.ANY)
    deleted = wait_futures(as_user(broker, "admin").delete_acls([alice_filter]))
    assert [[b.principal for b in outcome] for outcome in deleted.values()] == [["User:alice"]]
    assert delivery_codes(broker.sasl_bootstrap, [(topic, b"refused")], **sasl("PLAIN", "alice")) == [
        TOPIC_AUTHORIZATION_FAILED]


def test_groups_need_read_on_the_group_and_prefixed_acls_cover_their_names(broker_factory, skiff_bin):
    # ACLs written by `skiff acl` straight to storage: read for every request, so none is stale.
    broker = secured_broker(broker_factory, skiff_bin, "--acl-refresh-ms", "0")
    topic = f"team-a.{unique('events')}"
    create_topics(broker, topic)
    produce(broker.sasl_bootstrap, topic, [{"value": b"v%d" % i, "partition": 0} for i in range(3)],
            **sasl("PLAIN", "admin"))
    skiff_acl(skiff_bin, broker, "add", "--allow-principal", "User:alice", "--operation", "read",
              "--topic", "team-a.", "--resource-pattern-type", "prefixed")
    skiff_acl(skiff_bin, broker, "add", "--allow-principal", "User:alice", "--operation", "read",
              "--group", "team-a-", "--resource-pattern-type", "prefixed")

    def subscribe(group: str, records: int):
        client = consumer(broker.sasl_bootstrap, **{"group.id": group, "auto.offset.reset": "earliest",
                                                   "enable.partition.eof": False, "enable.auto.offset.store": True},
                          **sasl("SCRAM-SHA-256", "alice"))
        client.subscribe([topic])
        values, errors = [], []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(values) < records and not errors:
            msg = client.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                errors.append(msg.error().code())
            else:
                values.append(msg.value())
        if values:
            client.commit(asynchronous=False)
        client.close()
        return values, errors

    values, errors = subscribe(f"team-a-{unique('g')}", 3)
    assert (values, errors) == ([b"v0", b"v1", b"v2"], [])
    values, errors = subscribe(unique("other"), 3)
    assert values == [] and errors == [GROUP_AUTHORIZATION_FAILED]

    # kcat without a group needs READ on the topic only; bob has none.
    refused = kcat_refused("-b", broker.sasl_bootstrap, "-C", "-t", topic, "-p", "0", "-o", "beginning",
                           "-e", *kcat_sasl("PLAIN", "bob"))
    assert "authorization failed" in refused.lower(), refused


def test_transactions_need_write_on_the_transactional_id(broker_factory, skiff_bin):
    broker = secured_broker(broker_factory, skiff_bin, "--acl-refresh-ms", "0")
    topic = unique("payments")
    create_topics(broker, topic)
    for user in ("alice", "bob"):
        skiff_acl(skiff_bin, broker, "add", "--allow-principal", f"User:{user}", "--operation", "write",
                  "--topic", topic)
    skiff_acl(skiff_bin, broker, "add", "--allow-principal", "User:alice", "--operation", "write",
              "--transactional-id", "alice-", "--resource-pattern-type", "prefixed")

    def transactional(user: str, transactional_id: str) -> Producer:
        return Producer({"bootstrap.servers": broker.sasl_bootstrap, "transactional.id": transactional_id,
                         **CLIENT_LOG, **sasl("SCRAM-SHA-512", user)})

    alice = transactional("alice", f"alice-{unique('tx')}")
    alice.init_transactions(15)
    alice.begin_transaction()
    alice.produce(topic, value=b"committed", partition=0)
    alice.commit_transaction(15)

    bob = transactional("bob", f"bob-{unique('tx')}")
    with pytest.raises(KafkaException) as refused:
        bob.init_transactions(15)
    assert refused.value.args[0].code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    committed = consume(broker.sasl_bootstrap, topic, **{"isolation.level": "read_committed"},
                        **sasl("PLAIN", "admin"))
    assert [m.value() for m in committed] == [b"committed"]


def test_two_brokers_enforce_an_acl_created_through_the_other(broker_factory, skiff_bin):
    first = secured_broker(broker_factory, skiff_bin, "--acl-refresh-ms", "200", engine="postgres")
    second = broker_factory("postgres", *AUTHORIZER, "--acl-refresh-ms", "200", storage=first.storage, sasl=True)
    topic = unique("shared")
    create_topics(first, topic)

    def alice_codes_on(broker) -> list[int | None]:
        return delivery_codes(broker.sasl_bootstrap, [(topic, b"x")], **sasl("PLAIN", "alice"))

    assert alice_codes_on(second) == [TOPIC_AUTHORIZATION_FAILED]
    create_acls(first, allow(ResourceType.TOPIC, topic, "User:alice", AclOperation.WRITE))
    deadline = time.monotonic() + 15
    while alice_codes_on(second) != [None]:
        assert time.monotonic() < deadline, "the second broker never enforced the new ACL"
        time.sleep(0.2)

    topic_filter = AclBindingFilter(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, None, None,
                                    AclOperation.ANY, AclPermissionType.ANY)
    wait_futures(as_user(second, "admin").delete_acls([topic_filter]))
    deadline = time.monotonic() + 15
    while alice_codes_on(first) != [TOPIC_AUTHORIZATION_FAILED]:
        assert time.monotonic() < deadline, "the first broker never saw the ACL deleted"
        time.sleep(0.2)


def test_a_client_certificate_is_the_principal_acls_name(broker_factory, tmp_path):
    from pg_server import TestCertificates
    from test_tls import ssl_client

    certificates = TestCertificates(tmp_path)
    # The plaintext listener (User:ANONYMOUS) administers; certificate holders get what ACLs say.
    broker = broker_factory("memory", "--authorizer", "acl", "--super-users", "User:ANONYMOUS",
                            "--tls-client-ca", certificates.path("ca.pem"), tls=certificates)
    granted, withheld = unique("granted"), unique("withheld")
    create = admin(broker.bootstrap).create_topics(
        [NewTopic(name, num_partitions=1, replication_factor=1) for name in (granted, withheld)])
    assert all(outcome is None for outcome in wait_futures(create).values())
    outcomes = wait_futures(admin(broker.bootstrap).create_acls(
        [allow(ResourceType.TOPIC, granted, "User:CN=postgres", AclOperation.WRITE)]))
    assert all(outcome is None for outcome in outcomes.values()), outcomes

    codes = delivery_codes(broker.ssl_bootstrap, [(granted, b"signed"), (withheld, b"refused")],
                           **ssl_client(certificates, mutual=True))
    assert codes == [None, TOPIC_AUTHORIZATION_FAILED]
    assert [m.value() for m in consume(broker.bootstrap, granted)] == [b"signed"]
    assert consume(broker.bootstrap, withheld) == []


def test_the_schema_registry_checks_subjects_against_their_topics_acls(broker_factory, skiff_bin):
    """With `--authorizer acl` and `--schema-registry-basic-auth`, confluent-kafka's Schema
    Registry client is held to the same ACLs as its Kafka clients: `<topic>-value` needs WRITE
    on the topic to register and DESCRIBE to read, lists show only describable subjects, and a
    refusal is HTTP 403 (40301). An ACL added with `skiff acl` opens the subject."""
    import json

    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
    from confluent_kafka.schema_registry.error import SchemaRegistryError

    broker = secured_broker(broker_factory, skiff_bin, "--schema-registry-basic-auth", "--acl-refresh-ms", "0",
                            schema_registry=True)
    orders, audit = unique("orders"), unique("audit")

    def client(user: str) -> SchemaRegistryClient:
        return SchemaRegistryClient({"url": broker.registry_url, "basic.auth.user.info": f"{user}:{PASSWORD}"})

    schema = Schema(json.dumps({"type": "record", "name": "Order", "fields": [{"name": "n", "type": "int"}]}), "AVRO")
    skiff_acl(skiff_bin, broker, "add", "--allow-principal", "User:alice", "--operation", "Write", "--topic", orders)
    schema_id = client("alice").register_schema(f"{orders}-value", schema)
    with pytest.raises(SchemaRegistryError) as refused:
        client("alice").register_schema(f"{audit}-value", schema)
    assert refused.value.http_status_code == 403 and refused.value.error_code == 40301, refused.value
    # bob has no ACL: he may not read the subject, nor the schema by its id, and lists nothing.
    with pytest.raises(SchemaRegistryError) as refused:
        client("bob").get_latest_version(f"{orders}-value")
    assert refused.value.http_status_code == 403, refused.value
    with pytest.raises(SchemaRegistryError):
        client("bob").get_schema(schema_id)
    assert client("bob").get_subjects() == []
    # READ on the topic (what a consumer needs anyway) lets him read its schemas.
    skiff_acl(skiff_bin, broker, "add", "--allow-principal", "User:bob", "--operation", "Read", "--topic", orders)
    assert client("bob").get_latest_version(f"{orders}-value").schema_id == schema_id
    assert client("bob").get_schema(schema_id).schema_str == schema.schema_str
    assert client("bob").get_subjects() == [f"{orders}-value"]
    # The super user sees and may do everything.
    client("admin").register_schema(f"{audit}-value", schema)
    assert sorted(client("admin").get_subjects()) == sorted([f"{orders}-value", f"{audit}-value"])
