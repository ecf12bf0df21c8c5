"""SASL with real clients: users made with `skiff user add` (kept in storage, salted SCRAM
credentials only) log in with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 from kcat, confluent-kafka
and kafka-python over SASL_PLAINTEXT and SASL_SSL; wrong passwords and unknown users get
SASL_AUTHENTICATION_FAILED, a clean disconnect and a log line without the secret; nothing but
the handshake is answered before authentication; admin clients manage users with
Alter/DescribeUserScramCredentials; sessions expire (connections.max.reauth.ms) and clients
re-authenticate on the same connection (KIP-368)."""

from __future__ import annotations

import json
import struct
import subprocess
import time

import kafka_wire
import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)
from helpers import CLIENT_LOG, consume, create_topic, kcat, kcat_consume, kcat_produce, produce, unique
from pg_server import TestCertificates

PASSWORD = "correct horse battery staple"

API_SASL_HANDSHAKE = 17
API_SASL_AUTHENTICATE = 36
ERROR_SASL_AUTHENTICATION_FAILED = 58


def add_user(skiff_bin, broker, name: str, password: str = PASSWORD, *args: str) -> str:
    """Adds a user to the broker's storage (or to `broker` itself when it is a storage URL)."""
    storage = broker if isinstance(broker, str) else broker.storage
    result = subprocess.run(
        [str(skiff_bin), "user", "add", name, "--password-stdin", "--storage", storage, *args],
        input=(password + "\n").encode(), capture_output=True, timeout=30,
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def list_users(skiff_bin, broker) -> list[dict]:
    result = subprocess.run(
        [str(skiff_bin), "user", "list", "--json", "--storage", broker.storage],
        capture_output=True, timeout=30,
    )
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)


def sasl(mechanism: str, user: str = "alice", password: str = PASSWORD, protocol: str = "SASL_PLAINTEXT", **extra) -> dict:
    return {"security.protocol": protocol, "sasl.mechanisms": mechanism,
            "sasl.username": user, "sasl.password": password, **extra}


def kcat_sasl(mechanism: str, user: str = "alice", password: str = PASSWORD, protocol: str = "SASL_PLAINTEXT", *extra: str) -> tuple:
    args = ["-X", f"security.protocol={protocol}", "-X", f"sasl.mechanisms={mechanism}",
            "-X", f"sasl.username={user}", "-X", f"sasl.password={password}"]
    for setting in extra:
        args += ["-X", setting]
    return tuple(args)


def kafka_python_conf(mechanism: str, user: str = "alice", password: str = PASSWORD) -> dict:
    return {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": mechanism,
            "sasl_plain_username": user, "sasl_plain_password": password}


def authentication_error(bootstrap: str, **conf) -> KafkaError:
    """The error a confluent-kafka producer reports when it cannot log in."""
    errors: list[KafkaError] = []
    client = Producer({"bootstrap.servers": bootstrap, "error_cb": errors.append, **CLIENT_LOG, **conf})
    deadline = time.monotonic() + 15
    while not errors and time.monotonic() < deadline:
        client.poll(0.1)
    assert errors, "the client reported no error"
    return errors[0]


def test_users_log_in_with_every_mechanism_from_every_client(broker_factory, skiff_bin, monkeypatch):
    from kafka import KafkaConsumer, KafkaProducer

    monkeypatch.setenv("SKIFF_LOG", "info,skiff_auth::session=debug")
    broker = broker_factory("sqlite", sasl=True)
    printed = add_user(skiff_bin, broker, "alice")
    assert "SCRAM-SHA-256" in printed and "SCRAM-SHA-512" in printed
    assert PASSWORD.encode() not in broker.db_path.read_bytes(), "no password in storage"
    assert list_users(skiff_bin, broker) == [{"name": "alice", "credentials": [
        {"mechanism": "SCRAM-SHA-256", "iterations": 4096},
        {"mechanism": "SCRAM-SHA-512", "iterations": 4096}]}]
    topic = unique("sasl")
    create_topic(broker.bootstrap, topic)

    for mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
        kcat_produce(broker.sasl_bootstrap, topic, [f"kcat-{mechanism}"], *kcat_sasl(mechanism))
    produce(broker.sasl_bootstrap, topic, [{"value": b"confluent"}], **sasl("SCRAM-SHA-512"))
    for mechanism in ("PLAIN", "SCRAM-SHA-256"):
        client = KafkaProducer(bootstrap_servers=[broker.sasl_bootstrap], **kafka_python_conf(mechanism))
        client.send(topic, f"kafka-python-{mechanism}".encode(), partition=0).get(timeout=15)
        client.close()

    expected = ["kcat-PLAIN", "kcat-SCRAM-SHA-256", "kcat-SCRAM-SHA-512", "confluent",
                "kafka-python-PLAIN", "kafka-python-SCRAM-SHA-256"]
    assert kcat_consume(broker.sasl_bootstrap, topic, *kcat_sasl("SCRAM-SHA-256")).split("\n")[:-1] == expected
    read = consume(broker.sasl_bootstrap, topic, count=6, **sasl("PLAIN"))
    assert [m.value().decode() for m in read] == expected
    reader = KafkaConsumer(bootstrap_servers=[broker.sasl_bootstrap], auto_offset_reset="earliest",
                           consumer_timeout_ms=10000, **kafka_python_conf("SCRAM-SHA-512"))
    reader.subscribe([topic])
    values = []
    for record in reader:
        values.append(record.value.decode())
        if len(values) == len(expected):
            break
    reader.close()
    assert values == expected
    log = broker.log_text()
    assert "SASL authenticated" in log and "User:alice" in log
    assert PASSWORD not in log


def test_sasl_ssl_carries_scram_and_plain_over_tls(broker_factory, skiff_bin, tmp_path):
    certificates = TestCertificates(tmp_path)
    broker = broker_factory("sqlite", tls=certificates, sasl=True)
    add_user(skiff_bin, broker, "alice", PASSWORD, "--mechanism", "SCRAM-SHA-512", "--iterations", "8192")
    ca = certificates.path("ca.pem")
    topic = unique("sasl-ssl")
    create_topic(broker.bootstrap, topic)
    kcat_produce(broker.sasl_ssl_bootstrap, topic, ["over-tls"],
                 *kcat_sasl("SCRAM-SHA-512", "alice", PASSWORD, "SASL_SSL", f"ssl.ca.location={ca}"))
    tls = {"ssl.ca.location": ca}
    produce(broker.sasl_ssl_bootstrap, topic, [{"value": b"plain-over-tls"}],
            **sasl("PLAIN", protocol="SASL_SSL", **tls))
    read = consume(broker.sasl_ssl_bootstrap, topic, count=2, **sasl("SCRAM-SHA-512", protocol="SASL_SSL", **tls))
    assert [m.value() for m in read] == [b"over-tls", b"plain-over-tls"]
    # The user has no SHA-256 credential: that mechanism fails, the others work.
    error = authentication_error(broker.sasl_ssl_bootstrap, **sasl("SCRAM-SHA-256", protocol="SASL_SSL", **tls))
    assert error.code() == KafkaError._AUTHENTICATION, error


def test_wrong_credentials_are_refused_and_logged_without_the_secret(broker_factory, skiff_bin):
    from kafka import KafkaProducer
    from kafka.errors import KafkaError as KafkaPythonError

    broker = broker_factory("sqlite", sasl=True)
    add_user(skiff_bin, broker, "alice")
    topic = unique("refused")
    create_topic(broker.bootstrap, topic)
    wrong = "not-the-password-7731"
    for mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
        mark = broker.log_mark()
        error = authentication_error(broker.sasl_bootstrap, **sasl(mechanism, password=wrong))
        assert error.code() == KafkaError._AUTHENTICATION, error
        assert "invalid credentials" in error.str(), error.str()
        line = broker.wait_log_line(mark, lambda line: "SASL authentication failed" in line)
        assert "alice" in line and mechanism in line, line
    # An unknown user reads the same to the client; the log says which user tried.
    mark = broker.log_mark()
    error = authentication_error(broker.sasl_bootstrap, **sasl("SCRAM-SHA-256", user="mallory"))
    assert "invalid credentials" in error.str(), error.str()
    broker.wait_log_line(mark, lambda line: "SASL authentication failed" in line and "mallory" in line)
    # kafka-python cannot bootstrap; the broker logs why.
    mark = broker.log_mark()
    with pytest.raises(KafkaPythonError):
        KafkaProducer(bootstrap_servers=[broker.sasl_bootstrap], **kafka_python_conf("SCRAM-SHA-512", password=wrong),
                      bootstrap_timeout_ms=3000)
    broker.wait_log_line(mark, lambda line: "SASL authentication failed" in line and "SCRAM-SHA-512" in line)
    assert wrong not in broker.log_text() and PASSWORD not in broker.log_text()
    # kcat with a wrong password stores nothing; the right one still works after all that.
    failed = subprocess.run([kcat_path_of(), "-P", "-b", broker.sasl_bootstrap, "-t", topic, "-X", "message.timeout.ms=5000",
                             *kcat_sasl("PLAIN", "alice", wrong)], input=b"never\n", capture_output=True, timeout=30)
    assert failed.returncode != 0 or b"Authentication failed" in failed.stderr, failed.stderr
    kcat_produce(broker.sasl_bootstrap, topic, ["after"], *kcat_sasl("PLAIN"))
    assert [m.value() for m in consume(broker.bootstrap, topic)] == [b"after"], "nothing else stored"


def kcat_path_of() -> str:
    from helpers import kcat_path
    return kcat_path()


def sasl_handshake(version: int, mechanism: str, correlation_id: int) -> bytes:
    return kafka_wire.frame(kafka_wire.request_header(API_SASL_HANDSHAKE, version, correlation_id, "wire")
                            + kafka_wire.string(mechanism))


def sasl_authenticate_v1(token: bytes, correlation_id: int) -> bytes:
    body = struct.pack(">i", len(token)) + token
    return kafka_wire.frame(kafka_wire.request_header(API_SASL_AUTHENTICATE, 1, correlation_id, "wire") + body)


def parse_handshake(payload: bytes) -> tuple[int, list[str]]:
    reader = kafka_wire.Reader(payload)
    reader.int32()  # correlation id
    error = reader.int16()
    return error, [reader.string() for _ in range(reader.int32())]


def parse_authenticate_v1(payload: bytes) -> tuple[int, str | None, int]:
    reader = kafka_wire.Reader(payload)
    reader.int32()
    error = reader.int16()
    message = reader.string()
    reader.pos += 4 + max(0, struct.unpack_from(">i", payload, reader.pos)[0])
    lifetime = reader.take(">q")
    return error, message, lifetime


def plain_exchange(sock, version: int, password: str, correlation_id: int) -> None:
    """A PLAIN handshake of `version`, then alice's message: as SaslAuthenticate v1 after a v1
    handshake, as a bare token after a v0 one."""
    sock.sendall(sasl_handshake(version, "PLAIN", correlation_id))
    assert parse_handshake(kafka_wire.recv_frame(sock))[0] == 0
    token = f"\0alice\0{password}".encode()
    if version == 0:
        sock.sendall(kafka_wire.frame(token))
    else:
        sock.sendall(sasl_authenticate_v1(token, correlation_id + 1))


def test_only_the_handshake_is_answered_before_authentication(broker_factory, skiff_bin):
    broker = broker_factory("sqlite", "--connections-max-reauth-ms", "1500", sasl=True)
    add_user(skiff_bin, broker, "alice")
    # ApiVersions is answered; a Metadata request closes the connection.
    with kafka_wire.connect(broker.sasl_port) as sock:
        sock.sendall(kafka_wire.api_versions_request(0, correlation_id=1))
        correlation, error, versions = kafka_wire.parse_api_versions_v0(kafka_wire.recv_frame(sock))
        assert error == 0 and API_SASL_HANDSHAKE in versions and API_SASL_AUTHENTICATE in versions
        mark = broker.log_mark()
        sock.sendall(kafka_wire.metadata_v4_request(None, False, correlation_id=2))
        kafka_wire.wait_closed(sock)
    broker.wait_log_line(mark, lambda line: "before SASL authentication" in line)

    # Before authentication a frame may not exceed 512 KiB (Kafka's sasl.server.max.receive.size),
    # far below --max-request-bytes: its length alone closes the connection.
    with kafka_wire.connect(broker.sasl_port) as sock:
        mark = broker.log_mark()
        sock.sendall(struct.pack(">i", 600_000) + b"\0" * 64)
        kafka_wire.wait_closed(sock)
    broker.wait_log_line(mark, lambda line: "600000" in line and "closing connection" in line)

    # A handshake for an unknown mechanism lists the enabled ones.
    with kafka_wire.connect(broker.sasl_port) as sock:
        sock.sendall(sasl_handshake(1, "GSSAPI", 3))
        error, mechanisms = parse_handshake(kafka_wire.recv_frame(sock))
        assert error == 33 and mechanisms == ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

    # SaslAuthenticate v1 reports the session lifetime; after it, requests close the connection.
    with kafka_wire.connect(broker.sasl_port) as sock:
        plain_exchange(sock, 1, PASSWORD, 4)
        error, message, lifetime = parse_authenticate_v1(kafka_wire.recv_frame(sock))
        assert (error, lifetime) == (0, 1500), message
        sock.sendall(kafka_wire.metadata_v4_request(None, False, correlation_id=6))
        assert kafka_wire.recv_frame(sock)[:4] == struct.pack(">i", 6)
        time.sleep(1.6)
        mark = broker.log_mark()
        sock.sendall(kafka_wire.metadata_v4_request(None, False, correlation_id=7))
        kafka_wire.wait_closed(sock)
    broker.wait_log_line(mark, lambda line: "expired" in line)

    # Handshake v0: the PLAIN message follows as a bare token, answered by a bare (empty) one.
    with kafka_wire.connect(broker.sasl_port) as sock:
        plain_exchange(sock, 0, PASSWORD, 8)
        assert kafka_wire.recv_frame(sock) == b""
        sock.sendall(kafka_wire.metadata_v4_request(None, False, correlation_id=9))
        assert kafka_wire.recv_frame(sock)[:4] == struct.pack(">i", 9)
    with kafka_wire.connect(broker.sasl_port) as sock:
        plain_exchange(sock, 0, "wrong", 10)
        kafka_wire.wait_closed(sock)

    # A wrong password over SaslAuthenticate: the error, then the connection closes.
    with kafka_wire.connect(broker.sasl_port) as sock:
        plain_exchange(sock, 1, "wrong", 11)
        error, message, _ = parse_authenticate_v1(kafka_wire.recv_frame(sock))
        assert error == ERROR_SASL_AUTHENTICATION_FAILED and "invalid credentials" in message
        kafka_wire.wait_closed(sock)
    assert broker.alive()


def test_admin_clients_manage_scram_users(broker_factory, skiff_bin):
    broker = broker_factory("sqlite", sasl=True)
    add_user(skiff_bin, broker, "admin")
    admin = AdminClient({"bootstrap.servers": broker.sasl_bootstrap, **CLIENT_LOG,
                         **sasl("SCRAM-SHA-512", user="admin")})
    bob_info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 8192)
    futures = admin.alter_user_scram_credentials([
        UserScramCredentialUpsertion("bob", bob_info, b"bobs password"),
        UserScramCredentialUpsertion("carol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 100), b"short"),
    ])
    futures["bob"].result(timeout=15)
    with pytest.raises(KafkaException) as refused:
        futures["carol"].result(timeout=15)
    assert refused.value.args[0].code() == KafkaError.UNACCEPTABLE_CREDENTIAL

    described = admin.describe_user_scram_credentials(["bob"])["bob"].result(timeout=15)
    assert [(info.mechanism, info.iterations) for info in described.scram_credential_infos] == [
        (ScramMechanism.SCRAM_SHA_256, 8192)]
    with pytest.raises(KafkaException) as unknown:
        admin.describe_user_scram_credentials(["carol"])["carol"].result(timeout=15)
    assert unknown.value.args[0].code() == KafkaError.RESOURCE_NOT_FOUND
    assert [user["name"] for user in list_users(skiff_bin, broker)] == ["admin", "bob"]

    topic = unique("admin-made")
    create_topic(broker.bootstrap, topic)
    # Users live in storage: a second broker on the same storage knows bob at once.
    other = broker_factory("sqlite", storage=broker.storage, sasl=True)
    produce(other.sasl_bootstrap, topic, [{"value": b"from bob"}],
            **sasl("SCRAM-SHA-256", user="bob", password="bobs password"))
    # PLAIN works for an admin-made user too (checked against the SCRAM credential).
    produce(broker.sasl_bootstrap, topic, [{"value": b"bob again"}], **sasl("PLAIN", user="bob", password="bobs password"))
    assert [m.value() for m in consume(broker.bootstrap, topic, count=2)] == [b"from bob", b"bob again"]

    admin.alter_user_scram_credentials([UserScramCredentialDeletion("bob", ScramMechanism.SCRAM_SHA_256)])["bob"].result(timeout=15)
    for either in (broker, other):
        error = authentication_error(either.sasl_bootstrap, **sasl("SCRAM-SHA-256", user="bob", password="bobs password"))
        assert error.code() == KafkaError._AUTHENTICATION, error
    assert [user["name"] for user in list_users(skiff_bin, broker)] == ["admin"]


def test_sessions_expire_and_clients_reauthenticate(broker_factory, skiff_bin, monkeypatch):
    monkeypatch.setenv("SKIFF_LOG", "info,skiff_auth::session=debug")
    broker = broker_factory("sqlite", "--connections-max-reauth-ms", "1000", sasl=True)
    add_user(skiff_bin, broker, "alice")
    topic = unique("reauth")
    create_topic(broker.bootstrap, topic)
    errors = []
    client = Producer({"bootstrap.servers": broker.sasl_bootstrap, "error_cb": errors.append, "linger.ms": 0,
                       **CLIENT_LOG, **sasl("SCRAM-SHA-256")})
    delivered = []
    for index in range(30):
        client.produce(topic, f"r{index}".encode(), partition=0,
                       on_delivery=lambda err, msg: delivered.append(err))
        client.poll(0)
        time.sleep(0.15)
    assert client.flush(15) == 0
    assert delivered == [None] * 30, delivered
    assert errors == [], errors
    log = broker.log_text()
    # Over 4.5 s with 1 s sessions the client re-authenticated on its connections (librdkafka
    # does so at 90% of the lifetime) instead of being disconnected.
    assert log.count("SASL re-authenticated") >= 3, log[-3000:]
    assert "expired" not in log
    assert len(consume(broker.bootstrap, topic, count=30)) == 30


def test_the_schema_registry_asks_for_the_same_users(broker_factory, skiff_bin):
    """`--schema-registry-basic-auth`: every registry route needs HTTP basic credentials of a
    cluster user (the ones SASL clients log in as); confluent-kafka's client and `skiff schema`
    pass them, a wrong password gets 401 with a challenge."""
    import base64
    import urllib.error
    import urllib.request

    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
    from confluent_kafka.schema_registry.error import SchemaRegistryError

    broker = broker_factory("sqlite", "--schema-registry-basic-auth", schema_registry=True)
    add_user(skiff_bin, broker, "alice")
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        urllib.request.urlopen(broker.registry_url + "/subjects", timeout=10)
    assert anonymous.value.code == 401
    assert anonymous.value.headers["WWW-Authenticate"].startswith("Basic")
    assert json.loads(anonymous.value.read())["error_code"] == 401

    schema = Schema(json.dumps({"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]}), "AVRO")
    client = SchemaRegistryClient({"url": broker.registry_url, "basic.auth.user.info": f"alice:{PASSWORD}"})
    schema_id = client.register_schema("orders-value", schema)
    assert client.get_subjects() == ["orders-value"]
    wrong = SchemaRegistryClient({"url": broker.registry_url, "basic.auth.user.info": "alice:wrong"})
    with pytest.raises(SchemaRegistryError) as refused:
        wrong.get_subjects()
    assert refused.value.http_status_code == 401

    # skiff schema takes the credentials in the URL.
    host = broker.registry_url.removeprefix("http://")
    listed = subprocess.run([str(skiff_bin), "schema", "list", "--registry", f"http://alice:{PASSWORD.replace(' ', '%20')}@{host}"],
                            capture_output=True, timeout=30)
    assert listed.returncode == 0 and b"orders-value" in listed.stdout, listed.stderr
    denied = subprocess.run([str(skiff_bin), "schema", "list", "--registry", f"http://alice:nope@{host}"],
                            capture_output=True, timeout=30)
    assert denied.returncode != 0 and b"401" in denied.stderr + denied.stdout, denied.stderr

    # A raw request with the header works too, and reads the schema registered above.
    request = urllib.request.Request(f"{broker.registry_url}/schemas/ids/{schema_id}")
    request.add_header("Authorization", "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode())
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read())["schema"]
