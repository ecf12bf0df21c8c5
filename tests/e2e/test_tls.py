"""TLS listeners with real clients: a broker with a plaintext and an SSL listener (`--listeners`,
`--advertised-listeners`, `--tls-cert`, `--tls-key`) serves kcat and confluent-kafka over SSL
with the server verified by a private CA; each client is told the address of the listener it
came in on; mutual TLS (`--tls-client-ca`) admits only clients with a certificate the CA signed;
a plaintext client on the SSL port is refused cleanly (a log line, the broker unharmed); a
renewed certificate is served without a restart."""

from __future__ import annotations

import shutil
import socket
import ssl
import time

import kafka_wire
import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient
from helpers import (
    CLIENT_LOG,
    consume,
    create_topic,
    kcat_consume,
    kcat_produce,
    produce,
    unique,
)
from pg_server import TestCertificates


def ssl_client(certificates: TestCertificates, mutual: bool = False) -> dict:
    conf = {"security.protocol": "SSL", "ssl.ca.location": certificates.path("ca.pem")}
    if mutual:
        conf["ssl.certificate.location"] = certificates.path("client.pem")
        conf["ssl.key.location"] = certificates.path("client.key")
    return conf


def eventually_logged(broker, text: str, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while text not in broker.log_text():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def refused_without_an_answer(port: int) -> bytes:
    """Sends a plaintext ApiVersions request; returns what came back before the broker closed
    the connection (a TLS alert at most, never a Kafka answer)."""
    received = b""
    with kafka_wire.connect(port) as sock:
        sock.sendall(kafka_wire.api_versions_request(0, correlation_id=1))
        sock.settimeout(10)
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
    return received


def advertised_port(bootstrap: str, **conf) -> int:
    """The port of the one broker Metadata lists, as the client at `bootstrap` is told."""
    admin = AdminClient({"bootstrap.servers": bootstrap, **CLIENT_LOG, **conf})
    brokers = admin.list_topics(timeout=15).brokers
    assert len(brokers) == 1, brokers
    return next(iter(brokers.values())).port


def test_clients_produce_and_consume_over_ssl(broker_factory, tmp_path):
    certificates = TestCertificates(tmp_path)
    broker = broker_factory("sqlite", tls=certificates)
    ca = certificates.path("ca.pem")

    # Each client is told the address of its own listener: an SSL client given the plaintext
    # address (or the reverse) could not connect at all.
    assert advertised_port(broker.ssl_bootstrap, **ssl_client(certificates)) == broker.ssl_port
    assert advertised_port(broker.bootstrap) == broker.port

    topic = unique("tls")
    create_topic(broker.bootstrap, topic)
    kcat_ssl = ("-X", "security.protocol=ssl", "-X", f"ssl.ca.location={ca}")
    kcat_produce(broker.ssl_bootstrap, topic, ["one", "two"], *kcat_ssl)
    produce(broker.ssl_bootstrap, topic, [{"value": b"three"}], **ssl_client(certificates))
    assert kcat_consume(broker.ssl_bootstrap, topic, *kcat_ssl).split() == ["one", "two", "three"]
    # The same records over plaintext: one broker, two listeners.
    assert [m.value() for m in consume(broker.bootstrap, topic, count=3)] == [b"one", b"two", b"three"]
    read = consume(broker.ssl_bootstrap, topic, count=3, **ssl_client(certificates))
    assert [m.value() for m in read] == [b"one", b"two", b"three"]


def test_a_plaintext_client_on_the_ssl_port_is_refused_cleanly(broker_factory, tmp_path):
    certificates = TestCertificates(tmp_path)
    broker = broker_factory("memory", tls=certificates)
    answer = refused_without_an_answer(broker.ssl_port)
    # Nothing, or a TLS alert record (content type 21): never a Kafka response.
    assert answer == b"" or answer[0] == 21, answer
    assert eventually_logged(broker, "TLS handshake failed")
    # A client that does not trust the broker's CA fails its handshake; the broker carries on.
    untrusted = AdminClient({"bootstrap.servers": broker.ssl_bootstrap, "security.protocol": "SSL", **CLIENT_LOG})
    with pytest.raises(KafkaException):
        untrusted.list_topics(timeout=5)
    assert kafka_wire.answers_api_versions(broker.port)
    assert advertised_port(broker.ssl_bootstrap, **ssl_client(certificates)) == broker.ssl_port


def test_mutual_tls_admits_only_clients_with_a_certificate_the_ca_signed(broker_factory, tmp_path, monkeypatch):
    monkeypatch.setenv("SKIFF_LOG", "info,skiff_broker::connection=debug")
    certificates = TestCertificates(tmp_path)
    broker = broker_factory("memory", "--tls-client-ca", certificates.path("ca.pem"), tls=certificates)
    topic = unique("mtls")
    create_topic(broker.bootstrap, topic)
    produce(broker.ssl_bootstrap, topic, [{"value": b"signed"}], **ssl_client(certificates, mutual=True))
    assert [m.value() for m in consume(broker.ssl_bootstrap, topic, count=1,
                                       **ssl_client(certificates, mutual=True))] == [b"signed"]
    # The client acts as its certificate's subject, as Kafka's default principal builder says.
    assert "principal=User:CN=postgres" in broker.log_text()

    errors = []
    conf = {"bootstrap.servers": broker.ssl_bootstrap, "message.timeout.ms": 5000,
            "error_cb": errors.append, **ssl_client(certificates)}
    anonymous = Producer(conf)
    outcomes = []
    anonymous.produce(topic, b"anonymous", on_delivery=lambda err, msg: outcomes.append(err))
    anonymous.flush(15)
    assert outcomes and outcomes[0] is not None, "a client without a certificate must not produce"
    assert outcomes[0].code() in (KafkaError._MSG_TIMED_OUT, KafkaError._TRANSPORT, KafkaError._SSL), outcomes
    assert eventually_logged(broker, "TLS handshake failed")
    assert [m.value() for m in consume(broker.bootstrap, topic)] == [b"signed"], "nothing else stored"


def test_a_renewed_certificate_is_served_without_a_restart(broker_factory, tmp_path):
    first = tmp_path / "first"
    first.mkdir()
    certificates = TestCertificates(first)
    broker = broker_factory("memory", tls=certificates)
    assert advertised_port(broker.ssl_bootstrap, **ssl_client(certificates)) == broker.ssl_port

    # A new CA and server certificate replace the files the broker was started with.
    renewed_dir = tmp_path / "renewed"
    renewed_dir.mkdir()
    renewed = TestCertificates(renewed_dir)
    shutil.copy(renewed.path("server.key"), certificates.path("server.key"))
    shutil.copy(renewed.path("server.pem"), certificates.path("server.pem"))

    context = ssl.create_default_context(cafile=renewed.path("ca.pem"))
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", broker.ssl_port), timeout=5) as raw:
                with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                    tls.sendall(kafka_wire.api_versions_request(0, correlation_id=7))
                    answer = kafka_wire.recv_frame(tls)
            break
        except ssl.SSLCertVerificationError:
            assert time.monotonic() < deadline, "the renewed certificate was never served"
            time.sleep(0.2)
    correlation_id, error_code, _ = kafka_wire.parse_api_versions_v0(answer)
    assert (correlation_id, error_code) == (7, 0)
    assert eventually_logged(broker, "TLS files changed: reloaded")
