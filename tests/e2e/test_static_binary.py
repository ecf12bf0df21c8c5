"""The static binary (`scripts/build-static.sh`, `$SKIFF_STATIC_BIN`) needs nothing from the
machine: it is started by `chroot` in an empty root file system that holds only `/skiff` and
`/etc/ssl/certs/ca-certificates.crt` (what `deploy/Dockerfile`'s `FROM scratch` image holds), and
real clients produce and consume through it. This stands in for the container image.

Host names must resolve there without glibc's NSS modules: Postgres by a name the root's
`/etc/hosts` gives (as Docker and Kubernetes write one), S3, the CLI's bootstrap address and
`localhost` with no `/etc/hosts` and no `/etc/resolv.conf` at all, and a proxy's upstream
broker and Schema Registry by names in `/etc/hosts`.

Needs root (chroot). `scripts/test.sh` builds the binary and sets `SKIFF_STATIC_BIN`."""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.parse
from pathlib import Path

import pytest
from confluent_kafka import KafkaError
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from conftest import S3_ENDPOINT, Broker, drop_postgres_database, postgres_database, s3_storage
from helpers import (
    USER_AVRO,
    consume,
    create_topic,
    produce,
    produce_outcomes,
    schema_framed,
    unique,
    watermarks,
)
from test_proxy import Proxy

STATIC_BIN = os.environ.get("SKIFF_STATIC_BIN")
CA_CERTIFICATES = Path("/etc/ssl/certs/ca-certificates.crt")
# By absolute path: the proxy helper starts processes with PATH=/usr/bin:/bin, chroot is in sbin.
CHROOT = shutil.which("chroot") or "/usr/sbin/chroot"

pytestmark = [
    pytest.mark.skipif(
        not STATIC_BIN,
        reason="SKIFF_STATIC_BIN is not set: scripts/test.sh builds it with scripts/build-static.sh",
    ),
    pytest.mark.skipif(os.geteuid() != 0, reason="chroot needs root"),
]


def empty_root(directory: Path, hosts: str | None = None) -> Path:
    """A root file system with the static binary and CA certificates, and `etc/hosts` if given."""
    root = directory / "root"
    (root / "etc/ssl/certs").mkdir(parents=True)
    shutil.copy(STATIC_BIN, root / "skiff")
    shutil.copy(CA_CERTIFICATES, root / "etc/ssl/certs/ca-certificates.crt")
    if hosts is not None:
        (root / "etc/hosts").write_text(hosts)
    files = sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())
    expected = ["etc/ssl/certs/ca-certificates.crt", "skiff"] + (["etc/hosts"] if hosts else [])
    assert files == sorted(expected)
    return root


def in_root(root: Path, command: list[str]) -> list[str]:
    """`command` (a `skiff ...` command line) run as `/skiff` inside `root`."""
    return [CHROOT, str(root), "/skiff", *command[1:]]


class RootedBroker(Broker):
    """A `skiff broker` started by chroot in an empty root, with `environment` overrides."""

    def __init__(self, root: Path, workdir: Path, storage: str, env: dict[str, str] | None = None):
        super().__init__(root / "skiff", workdir, "memory", [], "rooted", storage=storage)
        self.root = root
        self.env = env or {}

    def command(self) -> list[str]:
        return in_root(self.root, super().command())

    def environment(self) -> dict[str, str]:
        return {**super().environment(), **self.env}


class RootedProxy(Proxy):
    def __init__(self, root: Path, workdir: Path, upstreams: list[str], extra_args: list[str]):
        super().__init__(root / "skiff", workdir, upstreams, extra_args, "127.0.0.1:0")
        self.root = root

    def command(self) -> list[str]:
        return in_root(self.root, super().command())


def with_host(url: str, host: str) -> str:
    """`url` with its host replaced by `host` (user, port, path and query kept)."""
    parts = urllib.parse.urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = (userinfo + "@" if userinfo else "") + host + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def test_static_binary_needs_no_shared_library():
    described = subprocess.run(["file", "-b", STATIC_BIN], capture_output=True, text=True, check=True).stdout
    assert "statically linked" in described or "static-pie linked" in described, described
    ldd = subprocess.run(["ldd", STATIC_BIN], capture_output=True, text=True)
    assert "not a dynamic executable" in ldd.stderr + ldd.stdout or "statically linked" in ldd.stdout, ldd
    dynamic = subprocess.run(["readelf", "--dynamic", STATIC_BIN], capture_output=True, text=True, check=True).stdout
    assert "(NEEDED)" not in dynamic, dynamic
    headers = subprocess.run(["readelf", "--program-headers", STATIC_BIN], capture_output=True, text=True, check=True).stdout
    assert "INTERP" not in headers, headers


@pytest.mark.parametrize("engine", ["memory", "postgres", "s3"])
def test_broker_in_an_empty_root_serves_clients(tmp_path, engine):
    """memory:// needs nothing; Postgres is reached by a name from the root's /etc/hosts; S3 at
    `localhost`, with neither /etc/hosts nor /etc/resolv.conf. The CLI in the same root creates
    the topic through `localhost` too; confluent-kafka produces and consumes."""
    env: dict[str, str] = {}
    hosts = None
    database = None
    if engine == "memory":
        storage = "memory://"
    elif engine == "postgres":
        database = postgres_database()
        server = urllib.parse.urlsplit(database).hostname
        assert server, f"the test Postgres server must be reached over TCP: {database}"
        address = subprocess.run(["getent", "ahostsv4", server], capture_output=True, text=True, check=True)
        hosts = f"{address.stdout.split()[0]} postgres.skiff.test\n"
        storage = with_host(database, "postgres.skiff.test")
    else:
        storage = s3_storage()
        assert S3_ENDPOINT, "SKIFF_TEST_S3_ENDPOINT is not set: run `eval \"$(scripts/services.sh)\"`"
        env["AWS_ENDPOINT_URL"] = with_host(S3_ENDPOINT, "localhost")
    root = empty_root(tmp_path, hosts)
    broker = RootedBroker(root, tmp_path, storage, env)
    try:
        broker.start()
        topic = unique("static")
        created = subprocess.run(
            in_root(root, ["skiff", "topic", "create", topic, "--bootstrap", f"localhost:{broker.port}"]),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert created.returncode == 0, created.stderr
        records = [{"key": f"k{i}".encode(), "value": f"v{i}".encode()} for i in range(10)]
        produce(broker.bootstrap, topic, records)
        consumed = consume(broker.bootstrap, topic, count=len(records))
        assert [(m.key(), m.value()) for m in consumed] == [(r["key"], r["value"]) for r in records]
        assert broker.stop() == 0, broker.log_tail()
        assert "panicked" not in broker.log_text()
    finally:
        broker.kill9()
        if database is not None:
            drop_postgres_database(database)


def test_proxy_in_an_empty_root_reaches_upstream_and_registry_by_name(tmp_path, broker_factory):
    """The proxy's upstream bootstrap and its Schema Registry URL name hosts that only the root's
    /etc/hosts knows: a valid record reaches the upstream broker, an invalid one is refused."""
    upstream = broker_factory("memory", schema_registry=True)
    root = empty_root(tmp_path, "127.0.0.1 kafka.skiff.test registry.skiff.test\n")
    registry_url = f"http://registry.skiff.test:{upstream.registry_port}"
    proxy = RootedProxy(
        root,
        tmp_path,
        [f"kafka.skiff.test:{upstream.port}"],
        ["--schema-registry", registry_url],
    )
    try:
        proxy.start()
        topic = unique("static-proxy")
        create_topic(upstream.bootstrap, topic)
        schema_id = SchemaRegistryClient({"url": upstream.registry_url}).register_schema(
            f"{topic}-value", Schema(USER_AVRO, "AVRO")
        )
        # A User record (Avro: name "ada", age 36) in Confluent's wire format, and a broken one.
        good = schema_framed(schema_id, b"\x06ada\x48")
        bad = schema_framed(schema_id, b"\xff\xff\xff")
        assert produce_outcomes(proxy.bootstrap, topic, [(0, good)]) == [None]
        assert produce_outcomes(proxy.bootstrap, topic, [(0, bad)]) == [KafkaError.INVALID_RECORD]
        assert watermarks(upstream.bootstrap, topic, 0) == (0, 1)
    finally:
        proxy.stop()
