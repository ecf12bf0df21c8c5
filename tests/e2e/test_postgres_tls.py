"""Postgres over TLS as a careful operator runs it: a private CA, the server certificate checked
with `sslmode=verify-full`, and a client certificate as the only way in (`cert` authentication).
The broker must connect, migrate, produce and fetch through that, and must be refused when its
URL names a CA that did not sign the server's certificate."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest

from helpers import consume, create_topic, produce, unique
from pg_server import PrivateServer, TestCertificates


@pytest.fixture
def tls_postgres(tmp_path: Path):
    certs = TestCertificates(tmp_path)
    server = PrivateServer()
    try:
        server.require_client_certificates(certs)
        server.start()
        yield server, certs
    finally:
        server.destroy()


def storage_url(server: PrivateServer, certs: TestCertificates, root: str) -> str:
    options = {
        "sslmode": "verify-full",
        "sslrootcert": root,
        "sslcert": certs.path("client.pem"),
        "sslkey": certs.path("client.key"),
        "connect_timeout": "5",
    }
    query = "&".join(f"{key}={quote(value, safe='/')}" for key, value in options.items())
    return f"postgres://postgres@127.0.0.1:{server.port}/postgres?{query}"


def test_verify_full_with_a_client_certificate(broker_factory, tls_postgres):
    server, certs = tls_postgres
    broker = broker_factory("postgres", storage=storage_url(server, certs, certs.path("ca.pem")))
    topic = unique("tls")
    create_topic(broker.bootstrap, topic)
    produce(broker.bootstrap, topic, [{"key": b"k%d" % i, "value": b"v%d" % i} for i in range(20)])
    assert [m.value() for m in consume(broker.bootstrap, topic)] == [b"v%d" % i for i in range(20)]

    # The broker's sessions are encrypted and authenticated by the client certificate.
    sessions = server.psql(
        "SELECT DISTINCT s.ssl, s.client_dn FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
        "WHERE a.client_addr IS NOT NULL"
    )
    assert sessions == "t|/CN=postgres", sessions
    rows = server.psql(f"SELECT count(*) FROM skiff.records WHERE topic = '{topic}'")
    assert rows == "20"


def test_a_server_certificate_from_another_ca_is_refused(broker_factory, tls_postgres):
    server, certs = tls_postgres
    other = Path(__file__).resolve().parents[2] / "crates/storage-postgres/testdata/unrelated_ca.pem"
    broker = broker_factory("postgres", storage=storage_url(server, certs, str(other)))
    topic = unique("untrusted")
    # The broker runs, but every request that needs storage fails: nothing reaches Postgres.
    with pytest.raises(AssertionError):
        create_topic(broker.bootstrap, topic)
    assert "certificate" in broker.log_tail().lower()
    assert server.psql("SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
                       "WHERE a.client_addr IS NOT NULL") == "0"


def test_the_iceberg_catalog_on_the_same_database_connects_as_the_storage_does(broker_factory, tls_postgres, tmp_path):
    """A Postgres storage is the Iceberg catalog by default, and the catalog connects with the
    storage's own options: `verify-full` against the private CA with the client certificate.
    pyiceberg, on the same database over TLS, reads the records back."""
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

    from test_tables import FAST_FLUSH, ORDER_V1, TABLE_ARGS, iceberg_table, produce_avro, wait_iceberg_committed

    server, certs = tls_postgres
    tables = tmp_path / "tables"
    broker = broker_factory(
        "postgres", "--table-location", f"file://{tables}", *TABLE_ARGS,
        storage=storage_url(server, certs, certs.path("ca.pem")), schema_registry=True,
    )
    registry = SchemaRegistryClient({"url": broker.registry_url})
    topic = unique("orders")
    registry.register_schema(f"{topic}-value", Schema(ORDER_V1, "AVRO"))
    create_topic(broker.bootstrap, topic, config={**FAST_FLUSH, "skiff.table.format": "iceberg"})
    produce_avro(broker, topic, ORDER_V1, [{"id": f"o-{i}", "cents": i, "tags": []} for i in range(10)])

    options = {
        "sslmode": "verify-full",
        "sslrootcert": certs.path("ca.pem"),
        "sslcert": certs.path("client.pem"),
        "sslkey": certs.path("client.key"),
    }
    query = "&".join(f"{key}={quote(value, safe='/')}" for key, value in options.items())
    uri = f"postgresql+psycopg2://postgres@127.0.0.1:{server.port}/postgres?{query}"
    wait_iceberg_committed(broker, topic, uri, 1)
    rows = iceberg_table(uri, topic).scan().to_arrow().to_pylist()
    assert sorted(row["cents"] for row in rows) == list(range(10))

    sessions = server.psql(
        "SELECT DISTINCT s.ssl, s.client_dn FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
        "WHERE a.application_name = 'skiff-iceberg-catalog'"
    )
    assert sessions == "t|/CN=postgres", sessions
