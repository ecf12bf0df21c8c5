"""`skiff proxy` in front of real upstreams: one Skiff broker, and a two-broker Skiff cluster (two
brokers on one SQLite file). Every client talks only to the proxy; the proxy's Metadata and
FindCoordinator answers must point at proxy ports, and clients must keep working when an upstream
broker is killed and comes back."""

from __future__ import annotations

import random
import re
import socket
import ssl
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

import kafka_wire
from conftest import ANSI_ESCAPE, _die_with_parent
from group_helpers import GROUP_BROKER_ARGS, Member, consumed, poll_until, wait_balanced
from helpers import (
    TIMEOUT,
    admin,
    consume,
    create_topic,
    kcat,
    kcat_consume,
    kcat_produce,
    produce,
    producer,
    unique,
    values,
)
from test_sasl import add_user, authentication_error

# Brokers abort timed-out transactions quickly and form groups at once in these tests.
BROKER_ARGS = (*GROUP_BROKER_ARGS, "--transaction-check-interval-ms", "200")
# What the proxy logs for each listener it binds.
BOOTSTRAP_LINE = re.compile(r"listening address=(\S+):(\d+) target=Bootstrap")
ROUTE_LINE = re.compile(r"serving upstream broker upstream=(\S+) listen=(\S+):(\d+) advertised=(\S+):(\d+)")


def free_ports(count: int) -> list[int]:
    """`count` distinct ports that are free on 127.0.0.1 right now (for tests that choose ports)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port_range(count: int) -> int:
    """A port P such that P..P+count-1 are all free on 127.0.0.1 right now."""
    for _ in range(200):
        base = random.randint(20000, 30000 - count)  # below Linux's ephemeral range (32768-60999)
        sockets = []
        try:
            for port in range(base, base + count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise AssertionError("no free port range")


class Proxy:
    """One `skiff proxy` process with its log file. It listens on any free port unless `listen`
    says otherwise, and learns its bootstrap port and per-broker ports from its log."""

    def __init__(self, binary: Path, workdir: Path, upstreams: list[str], extra_args: list[str], listen: str,
                 tls_ca: str | None = None):
        self.binary = binary
        # With `--tls-cert`, the CA that signed it: the proxy is ready once it answers over TLS.
        self.tls_ca = tls_ca
        self.workdir = workdir
        self.upstreams = upstreams
        self.extra_args = extra_args
        self.listen = listen
        self.log_path = workdir / f"proxy-{random.getrandbits(32):08x}.log"
        self.log_start = 0  # where the current run's log lines begin
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            str(self.binary), "proxy",
            "--listen", self.listen,
            "--advertised-listener", self.listen,
            "--upstream", ",".join(self.upstreams),
            "--upstream-connect-timeout-ms", "1000",
            *self.extra_args,
        ]  # fmt: skip

    def start(self, timeout: float = 15.0, ready: bool = True) -> "Proxy":
        """Starts the process; with `ready`, waits until the bootstrap port answers ApiVersions."""
        env = {"SKIFF_LOG": "info,skiff_proxy=debug", "NO_COLOR": "1", "PATH": "/usr/bin:/bin"}
        self.log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=self.workdir,
                env=env, preexec_fn=_die_with_parent,
            )  # fmt: skip
        self.port = int(BOOTSTRAP_LINE.search(self.wait_log("target=Bootstrap", timeout)).group(2))
        if not ready:
            return self
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "proxy exited:\n" + self.log_text()[-3000:]
            if self.answers():
                return self
            time.sleep(0.05)
        raise AssertionError("proxy did not answer ApiVersions:\n" + self.log_text()[-3000:])

    def answers(self) -> bool:
        """Whether the bootstrap port answers ApiVersions (over TLS when the proxy speaks it)."""
        if self.tls_ca is None:
            return kafka_wire.answers_api_versions(self.port, timeout=1.0)
        context = ssl.create_default_context(cafile=self.tls_ca)
        try:
            with context.wrap_socket(kafka_wire.connect(self.port, 1.0), server_hostname="127.0.0.1") as sock:
                sock.sendall(kafka_wire.api_versions_request(0, correlation_id=1))
                return kafka_wire.parse_api_versions_v0(kafka_wire.recv_frame(sock))[1] == 0
        except (OSError, EOFError, ValueError):
            return False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError("proxy ignored SIGTERM for 10 s")

    def log_text(self) -> str:
        return ANSI_ESCAPE.sub("", self.log_path.read_bytes().decode("utf-8", "replace"))

    def run_log(self) -> str:
        """The log of the current run only."""
        raw = self.log_path.read_bytes()[self.log_start :]
        return ANSI_ESCAPE.sub("", raw.decode("utf-8", "replace"))

    def wait_log(self, needle: str, timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.run_log().splitlines():
                if needle in line:
                    return line
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no log line with {needle!r}:\n" + self.log_text()[-3000:])

    def routes(self) -> dict[str, int]:
        """Upstream broker address -> the proxy port the log says serves it (this run)."""
        routes = {}
        for match in ROUTE_LINE.finditer(self.run_log()):
            upstream, _, listen_port, advertised_host, advertised_port = match.groups()
            assert listen_port == advertised_port and advertised_host == "127.0.0.1", match.group(0)
            routes[upstream] = int(listen_port)
        return routes


@pytest.fixture
def proxy_factory(skiff_bin, tmp_path, request):
    proxies: list[Proxy] = []

    def start(upstreams: list[str], *extra_args: str, listen: str = "127.0.0.1:0", tls_ca: str | None = None,
              ready: bool = True) -> Proxy:
        proxy = Proxy(skiff_bin, tmp_path, upstreams, list(extra_args), listen, tls_ca)
        proxies.append(proxy)
        return proxy.start(ready=ready)

    yield start
    failed = getattr(getattr(request.node, "rep_call", None), "failed", False)
    for proxy in proxies:
        proxy.stop()
        if failed:
            print(f"\n===== proxy log ({proxy.log_path}) =====")
            print(proxy.log_text()[-6000:])


@pytest.fixture(params=["one-broker", "two-brokers"])
def cluster(request, broker_factory, proxy_factory):
    """(proxy, brokers): a proxy in front of one Skiff broker, or of two brokers sharing one
    SQLite file (a real two-broker Skiff cluster)."""
    first = broker_factory("sqlite", *BROKER_ARGS)
    brokers = [first]
    if request.param == "two-brokers":
        brokers.append(broker_factory("sqlite", *BROKER_ARGS, storage=first.storage))
    proxy = proxy_factory([broker.address for broker in brokers])
    return proxy, brokers


@pytest.fixture
def single(broker_factory, proxy_factory):
    broker = broker_factory("sqlite", *BROKER_ARGS)
    return proxy_factory([broker.address]), broker


def proxy_ports(proxy: Proxy) -> set[int]:
    """The per-broker ports the proxy reported in its log."""
    ports = set(proxy.routes().values())
    assert ports and proxy.port not in ports, proxy.run_log()[-3000:]
    return ports


# Basics -------------------------------------------------------------------------------------------


def test_produce_consume_and_metadata_point_at_the_proxy(cluster):
    proxy, brokers = cluster
    topic = unique("proxy")
    create_topic(proxy.bootstrap, topic, partitions=3)
    records = [{"key": b"k%d" % i, "value": v, "partition": i % 3} for i, v in enumerate(values("p", 300))]
    produce(proxy.bootstrap, topic, records)
    got = consume(proxy.bootstrap, topic, count=300, partitions=(0, 1, 2))
    assert sorted(m.value() for m in got) == sorted(r["value"] for r in records)

    metadata = admin(proxy.bootstrap).list_topics(timeout=TIMEOUT)
    advertised = {(b.host, b.port) for b in metadata.brokers.values()}
    assert advertised and all(host == "127.0.0.1" and port in proxy_ports(proxy) for host, port in advertised), advertised
    broker_ports = {broker.port for broker in brokers}
    assert not {port for _, port in advertised} & broker_ports


def test_describe_cluster_and_group_coordinator_point_at_the_proxy(cluster):
    proxy, brokers = cluster
    client = admin(proxy.bootstrap)
    description = client.describe_cluster(request_timeout=TIMEOUT).result(TIMEOUT)
    assert description.nodes and all(node.port in proxy_ports(proxy) for node in description.nodes)

    topic, group = unique("coord"), unique("g")
    create_topic(proxy.bootstrap, topic)
    member = Member(proxy.bootstrap, group, topic, "m0")
    try:
        wait_balanced([member], 1)
        groups = client.describe_consumer_groups([group], request_timeout=TIMEOUT)
        coordinator = groups[group].result(TIMEOUT).coordinator
        assert coordinator.host == "127.0.0.1" and coordinator.port in proxy_ports(proxy), coordinator
        assert coordinator.port not in {broker.port for broker in brokers}
    finally:
        member.close()


def test_kafka_python_through_the_proxy(single):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition as KafkaTopicPartition

    proxy, _ = single
    topic = unique("kafka-python")
    create_topic(proxy.bootstrap, topic)
    client = KafkaProducer(
        bootstrap_servers=[proxy.bootstrap], acks="all", compression_type="gzip",
        request_timeout_ms=10000, max_block_ms=10000,
    )  # fmt: skip
    try:
        for i in range(20):
            client.send(topic, value=b"kp-%d" % i).get(timeout=10)
    finally:
        client.close(timeout=5)
    reader = KafkaConsumer(
        bootstrap_servers=[proxy.bootstrap], group_id=None, enable_auto_commit=False,
        consumer_timeout_ms=5000,
    )  # fmt: skip
    try:
        reader.assign([KafkaTopicPartition(topic, 0)])
        reader.seek_to_beginning()
        got = [message.value for message in reader]
    finally:
        reader.close()
    assert got == [b"kp-%d" % i for i in range(20)]


def test_kcat_through_the_proxy(cluster):
    proxy, _ = cluster
    topic = unique("kcat")
    lines = [f"line-{i}" for i in range(50)]
    create_topic(proxy.bootstrap, topic)
    kcat_produce(proxy.bootstrap, topic, lines)
    assert kcat_consume(proxy.bootstrap, topic).splitlines() == lines
    listing = kcat("-L", "-b", proxy.bootstrap, "-t", topic).stdout.decode()
    assert any(f"127.0.0.1:{port}" in listing for port in proxy_ports(proxy)), listing


def test_kcat_consumer_group_through_the_proxy(cluster):
    proxy, _ = cluster
    topic, group = unique("kcat-group"), unique("g")
    create_topic(proxy.bootstrap, topic, partitions=3)
    lines = [f"line-{i}" for i in range(60)]
    produce(proxy.bootstrap, topic, [{"value": v.encode(), "partition": i % 3} for i, v in enumerate(lines)])
    settings = ("-X", "fetch.wait.max.ms=100", "-X", "enable.auto.commit=true", "-X", "auto.commit.interval.ms=100")
    first = kcat("-b", proxy.bootstrap, "-G", group, "-o", "beginning", "-e", "-q", *settings, topic)
    assert sorted(first.stdout.decode().split()) == sorted(lines)
    again = kcat("-b", proxy.bootstrap, "-G", group, "-e", "-q", *settings, topic)
    assert again.stdout.decode().split() == []


def test_acks_zero_produce_gets_no_response_and_lands(single):
    proxy, _ = single
    topic = unique("acks0")
    create_topic(proxy.bootstrap, topic)
    client = producer(proxy.bootstrap, acks=0)
    for value in values("z", 100):
        client.produce(topic, value=value)
    assert client.flush(TIMEOUT) == 0
    assert len(consume(proxy.bootstrap, topic, count=100)) == 100


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_every_compression_codec(cluster, codec):
    proxy, _ = cluster
    topic = unique(f"codec-{codec}")
    create_topic(proxy.bootstrap, topic)
    records = [{"value": v} for v in values(codec, 500, size=200)]
    produce(proxy.bootstrap, topic, records, **{"compression.type": codec, "linger.ms": 20})
    got = consume(proxy.bootstrap, topic, count=500)
    assert [m.value() for m in got] == [r["value"] for r in records]


# Groups and transactions --------------------------------------------------------------------------


def test_consumer_group_through_the_proxy(cluster):
    proxy, _ = cluster
    topic = unique("group")
    group = unique("g")
    create_topic(proxy.bootstrap, topic, partitions=4)
    expected = values("g", 200)
    produce(proxy.bootstrap, topic, [{"value": v, "partition": i % 4} for i, v in enumerate(expected)])
    members = [Member(proxy.bootstrap, group, topic, f"m{i}", commit_each=True) for i in range(2)]
    try:
        wait_balanced(members, 4)
        poll_until(members, lambda: len(consumed(members)) >= len(expected), "every record")
        assert sorted(value for _, _, value in consumed(members)) == sorted(expected)
    finally:
        for member in members:
            member.close()
    # Committed offsets are visible through the proxy too.
    late = Member(proxy.bootstrap, group, topic, "late")
    try:
        wait_balanced([late], 4)
        for _ in range(20):
            late.poll_once(0.05)
        assert late.records == []
    finally:
        late.close()


def test_transactions_through_the_proxy(cluster):
    proxy, _ = cluster
    topic = unique("txn")
    create_topic(proxy.bootstrap, topic, partitions=2)
    client = producer(proxy.bootstrap, **{"transactional.id": unique("tid"), "linger.ms": 1})
    client.init_transactions(TIMEOUT)
    committed = []
    for round_ in range(4):
        client.begin_transaction()
        batch = [b"r%d-%d" % (round_, i) for i in range(10)]
        for i, value in enumerate(batch):
            client.produce(topic, value=value, partition=i % 2)
        assert client.flush(TIMEOUT) == 0
        if round_ % 2 == 0:
            client.commit_transaction(TIMEOUT)
            committed.extend(batch)
        else:
            client.abort_transaction(TIMEOUT)
    seen = consume(proxy.bootstrap, topic, partitions=(0, 1), **{"isolation.level": "read_committed"})
    assert sorted(m.value() for m in seen) == sorted(committed)


# Failures -----------------------------------------------------------------------------------------


class BackgroundProducer:
    """Produces numbered records until stopped; remembers which ones were acknowledged."""

    def __init__(self, bootstrap: str, topic: str):
        self.client = producer(
            bootstrap, **{"message.timeout.ms": 60000, "retry.backoff.ms": 100, "enable.idempotence": False}
        )
        self.topic = topic
        self.acked: set[bytes] = set()
        self.failed: list[str] = []
        self.sent = 0
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def on_delivery(self, err, msg):
        if err is None:
            self.acked.add(msg.value())
        else:
            self.failed.append(str(err))

    def run(self):
        while not self.stop_flag.is_set():
            try:
                self.client.produce(self.topic, value=b"bg-%d" % self.sent, on_delivery=self.on_delivery)
                self.sent += 1
            except BufferError:
                pass
            self.client.poll(0.002)

    def start(self):
        self.thread.start()
        return self

    def wait_acked(self, count: int, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while len(self.acked) < count:
            assert time.monotonic() < deadline, f"only {len(self.acked)} of {count} acknowledged"
            time.sleep(0.05)

    def finish(self):
        self.stop_flag.set()
        self.thread.join(10)
        remaining = self.client.flush(60)
        assert remaining == 0, f"{remaining} records never delivered"


def test_upstream_killed_and_restarted(single):
    proxy, broker = single
    topic = unique("restart")
    create_topic(proxy.bootstrap, topic)
    background = BackgroundProducer(proxy.bootstrap, topic).start()
    background.wait_acked(200)
    broker.kill9()
    time.sleep(1.0)
    broker.start()
    acked_before = len(background.acked)
    background.wait_acked(acked_before + 200)
    background.finish()
    assert not background.failed, background.failed[:3]
    assert proxy.alive()
    proxy.wait_log("closed by upstream")  # logged as WARN if requests were in flight, else DEBUG
    stored = {m.value() for m in consume(proxy.bootstrap, topic, timeout=30)}
    assert background.acked <= stored, f"{len(background.acked - stored)} acknowledged records lost"


def test_consumer_group_reads_on_through_an_upstream_restart(single):
    proxy, broker = single
    topic, group = unique("group-restart"), unique("g")
    create_topic(proxy.bootstrap, topic, partitions=2)
    before = values("before", 100)
    produce(proxy.bootstrap, topic, [{"value": v, "partition": i % 2} for i, v in enumerate(before)])
    member = Member(proxy.bootstrap, group, topic, "m0", commit_each=True)
    try:
        poll_until([member], lambda: len(member.records) >= len(before), "the first records")
        broker.kill9()
        for _ in range(20):
            member.poll_once(0.05)  # the member sees its connections drop
        broker.start()
        after = values("after", 100)
        produce(proxy.bootstrap, topic, [{"value": v, "partition": i % 2} for i, v in enumerate(after)])
        seen = lambda: {value for _, _, value in member.records}  # noqa: E731
        poll_until([member], lambda: seen() >= set(before + after), "every record after the restart", timeout=45)
    finally:
        member.close()


def test_one_of_two_brokers_killed_and_restarted(broker_factory, proxy_factory):
    first = broker_factory("sqlite", *BROKER_ARGS)
    second = broker_factory("sqlite", *BROKER_ARGS, storage=first.storage)
    proxy = proxy_factory([first.address, second.address])
    topic = unique("failover")
    create_topic(proxy.bootstrap, topic)
    background = BackgroundProducer(proxy.bootstrap, topic).start()
    background.wait_acked(200)
    first.kill9()  # the bootstrap's first choice: clients must move to the second broker
    acked = len(background.acked)
    background.wait_acked(acked + 200, timeout=45)
    first.start()
    second.kill9()
    acked = len(background.acked)
    background.wait_acked(acked + 200, timeout=45)
    background.finish()
    assert not background.failed, background.failed[:3]
    stored = {m.value() for m in consume(proxy.bootstrap, topic, timeout=30)}
    assert background.acked <= stored, f"{len(background.acked - stored)} acknowledged records lost"


def test_upstream_down_fails_fast_instead_of_hanging(broker_factory, proxy_factory):
    broker = broker_factory("sqlite")
    proxy = proxy_factory([broker.address])
    broker.stop()
    with kafka_wire.connect(proxy.port) as sock:
        sock.sendall(kafka_wire.api_versions_request(0, 1))
        assert kafka_wire.wait_closed(sock, timeout=5.0) in ("eof", "reset")
    proxy.wait_log("closing client connection")
    broker.start()
    deadline = time.monotonic() + 10
    while not kafka_wire.answers_api_versions(proxy.port):
        assert time.monotonic() < deadline, "proxy did not reconnect to the restarted broker"
        time.sleep(0.1)


@pytest.mark.parametrize(
    "frame",
    [struct.pack(">i", -1), struct.pack(">i", 0x7FFFFFF0), struct.pack(">i", 3) + b"abc"],
    ids=["negative-length", "oversized-length", "too-short"],
)
def test_malformed_client_frames_close_cleanly(single, frame):
    proxy, _ = single
    with kafka_wire.connect(proxy.port) as sock:
        sock.sendall(frame)
        assert kafka_wire.wait_closed(sock) in ("eof", "reset")
    proxy.wait_log("closing client connection")
    assert proxy.alive()
    assert kafka_wire.answers_api_versions(proxy.port)


def test_malformed_produce_header_closes_cleanly(single):
    proxy, _ = single
    # Produce v3, header v1 with a client id claiming 200 bytes but carrying 2.
    payload = struct.pack(">hhih", 0, 3, 9, 200) + b"ab"
    with kafka_wire.connect(proxy.port) as sock:
        sock.sendall(struct.pack(">i", len(payload)) + payload)
        assert kafka_wire.wait_closed(sock) in ("eof", "reset")
    proxy.wait_log("closing client connection")
    assert proxy.alive()


# Leader routing against a cluster with several node ids ------------------------------------------

MOCK_SOURCE = Path(__file__).resolve().parent / "mock" / "mock_cluster.c"


@pytest.fixture
def mock_cluster(tmp_path):
    """librdkafka's mock cluster (three brokers, node ids 1-3, topic `routed` with partition p led
    by broker p % 3 + 1), compiled from mock/mock_cluster.c. It needs Debian's librdkafka-dev,
    which scripts/test.sh installs."""
    header = Path("/usr/include/librdkafka/rdkafka_mock.h")
    assert header.is_file(), "librdkafka-dev is not installed (scripts/test.sh installs it)"
    binary = tmp_path / "mock_cluster"
    subprocess.run(["cc", "-O1", "-o", str(binary), str(MOCK_SOURCE), "-lrdkafka"], check=True)
    proc = subprocess.Popen(
        [str(binary), "3", "routed", "6"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
    )  # fmt: skip
    bootstraps = proc.stdout.readline().decode().strip().split(",")
    assert len(bootstraps) == 3, bootstraps
    yield bootstraps
    proc.stdin.close()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_leader_routing_through_the_proxy_to_a_three_broker_mock_cluster(mock_cluster, proxy_factory):
    proxy = proxy_factory([mock_cluster[0]])
    metadata = admin(proxy.bootstrap).list_topics("routed", timeout=TIMEOUT)
    brokers = {node: (b.host, b.port) for node, b in metadata.brokers.items()}
    assert sorted(brokers) == [1, 2, 3], brokers
    ports = {port for _, port in brokers.values()}
    assert len(ports) == 3 and ports <= proxy_ports(proxy), brokers
    leaders = {p: part.leader for p, part in metadata.topics["routed"].partitions.items()}
    assert leaders == {p: p % 3 + 1 for p in range(6)}, leaders

    # The mock answers Produce and Fetch only on the leader: delivery proves the routing.
    records = [{"value": v, "partition": i % 6} for i, v in enumerate(values("routed", 600))]
    produce(proxy.bootstrap, "routed", records, **{"enable.idempotence": False})
    got = consume(proxy.bootstrap, "routed", count=600, partitions=tuple(range(6)))
    assert sorted(m.value() for m in got) == sorted(r["value"] for r in records)


# Choosing the per-broker ports -------------------------------------------------------------------


def test_broker_ports_are_free_ports_reported_in_the_log_and_advertised(cluster):
    proxy, brokers = cluster
    routes = proxy.routes()
    assert set(routes) == {broker.address for broker in brokers}, routes
    assert len(set(routes.values())) == len(brokers) and 0 not in routes.values(), routes
    # A Skiff broker lists itself (they share node id 0): the port of whichever answered.
    metadata = admin(proxy.bootstrap).list_topics(timeout=TIMEOUT)
    advertised = {(b.host, b.port) for b in metadata.brokers.values()}
    assert advertised and {port for _, port in advertised} <= set(routes.values()), (advertised, routes)


def test_leader_routing_on_listed_base_and_free_ports(mock_cluster, proxy_factory):
    [listed] = free_ports(1)
    base = free_port_range(3)  # route n would use base + n; routes 0 and 1 come from the list
    proxy = proxy_factory(mock_cluster, "--broker-ports", f"{listed},0", "--broker-port-base", str(base))
    routes = proxy.routes()
    assert routes[mock_cluster[0]] == listed, routes
    assert routes[mock_cluster[2]] == base + 2, routes
    assert routes[mock_cluster[1]] not in (0, listed, base + 2), routes

    metadata = admin(proxy.bootstrap).list_topics("routed", timeout=TIMEOUT)
    advertised = {node: broker.port for node, broker in metadata.brokers.items()}
    assert sorted(advertised) == [1, 2, 3], advertised
    assert set(advertised.values()) == set(routes.values()), (advertised, routes)
    # The mock answers Produce and Fetch only on the leader: delivery proves the routing.
    records = [{"value": v, "partition": i % 6} for i, v in enumerate(values("listed", 300))]
    produce(proxy.bootstrap, "routed", records, **{"enable.idempotence": False})
    got = consume(proxy.bootstrap, "routed", count=300, partitions=tuple(range(6)))
    assert sorted(m.value() for m in got) == sorted(r["value"] for r in records)


@pytest.mark.parametrize("ports", ["listed", "free"])
def test_a_client_carries_on_through_a_proxy_restart(broker_factory, proxy_factory, ports):
    """Listed ports come back at once (SO_REUSEADDR, though the old process left TIME_WAIT
    sockets on them); free ports change, and the client follows them through the bootstrap port."""
    broker = broker_factory("sqlite", *BROKER_ARGS)
    listen_port, broker_port = free_ports(2)
    extra = ("--broker-ports", str(broker_port)) if ports == "listed" else ()
    proxy = proxy_factory([broker.address], *extra, listen=f"127.0.0.1:{listen_port}")
    first_routes = proxy.routes()
    if ports == "listed":
        assert first_routes == {broker.address: broker_port}
    topic = unique(f"restart-{ports}")
    create_topic(proxy.bootstrap, topic)
    client = producer(proxy.bootstrap, **{"message.timeout.ms": 60000})
    try:
        for value in values("before", 50):
            client.produce(topic, value=value)
        assert client.flush(TIMEOUT) == 0
        proxy.stop()
        proxy.start()
        assert proxy.port == listen_port and set(proxy.routes()) == {broker.address}
        if ports == "listed":
            assert proxy.routes() == first_routes
        for value in values("after", 50):
            client.produce(topic, value=value)
        assert client.flush(60) == 0
    finally:
        client.flush(1)
    got = consume(proxy.bootstrap, topic, count=100)
    assert sorted(m.value() for m in got) == sorted(values("before", 50) + values("after", 50))


def hold_port(how: str, keep: list) -> int:
    """Takes a port on 127.0.0.1 the way `how` says and returns it; `keep` keeps the sockets open."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen()
    keep.append(server)
    if how == "listener":
        return server.getsockname()[1]
    # The reported failure: the port is the ephemeral source port of an outgoing connection.
    outgoing = socket.create_connection(server.getsockname())
    keep.append(outgoing)
    return outgoing.getsockname()[1]


@pytest.mark.parametrize("holder", ["listener", "outgoing-connection"])
@pytest.mark.parametrize("setting", ["--broker-ports", "SKIFF_BROKER_PORT_BASE", "--listen"])
def test_a_taken_port_fails_at_start_naming_the_flag(skiff_bin, tmp_path, holder, setting):
    keep: list = []
    try:
        port = hold_port(holder, keep)
        listen = f"127.0.0.1:{port}" if setting == "--listen" else "127.0.0.1:0"
        command = [str(skiff_bin), "proxy", "--listen", listen, "--advertised-listener", "127.0.0.1:9092",
                   "--upstream", "127.0.0.1:1"]  # fmt: skip
        env = {"NO_COLOR": "1", "PATH": "/usr/bin:/bin"}
        if setting == "--broker-ports":
            command += ["--broker-ports", str(port)]
        elif setting == "SKIFF_BROKER_PORT_BASE":
            env[setting] = str(port)
        result = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, timeout=30)
    finally:
        for sock in keep:
            sock.close()
    stderr = ANSI_ESCAPE.sub("", result.stderr.decode("utf-8", "replace"))
    assert result.returncode != 0, stderr
    flag = "--broker-port-base" if setting == "SKIFF_BROKER_PORT_BASE" else setting
    assert f"cannot listen on 127.0.0.1:{port}" in stderr, stderr
    assert flag in stderr and "Address already in use" in stderr, stderr
    assert "panicked" not in stderr, stderr


def test_the_proxy_gives_a_plaintext_cluster_tls(broker_factory, proxy_factory, tmp_path):
    """`--tls-cert`: clients speak TLS to every proxy port while the cluster behind stays
    plaintext; a plaintext client on the proxy's port gets no Kafka answer."""
    from pg_server import TestCertificates
    from test_tls import refused_without_an_answer

    certificates = TestCertificates(tmp_path)
    ca = certificates.path("ca.pem")
    broker = broker_factory("sqlite", *BROKER_ARGS)
    proxy = proxy_factory([broker.address], "--tls-cert", certificates.path("server.pem"),
                          "--tls-key", certificates.path("server.key"), tls_ca=ca)
    topic = unique("proxy-tls")
    create_topic(broker.bootstrap, topic)
    tls = {"security.protocol": "SSL", "ssl.ca.location": ca}
    produce(proxy.bootstrap, topic, [{"value": b"one"}], **tls)
    kcat_produce(proxy.bootstrap, topic, ["two"], "-X", "security.protocol=ssl", "-X", f"ssl.ca.location={ca}")
    # Metadata through the proxy names its per-broker port, reached over TLS as well.
    assert [m.value() for m in consume(proxy.bootstrap, topic, count=2, **tls)] == [b"one", b"two"]
    assert [m.value() for m in consume(broker.bootstrap, topic, count=2)] == [b"one", b"two"]
    answer = refused_without_an_answer(proxy.port)
    assert answer == b"" or answer[0] == 21, answer
    proxy.wait_log("TLS handshake failed")


def test_sasl_passes_through_the_proxy_to_a_sasl_listener(broker_factory, proxy_factory, skiff_bin):
    """A proxy in front of a broker's SASL_PLAINTEXT listener: the client's SASL handshake goes
    upstream on its dedicated connection, so users log in through the proxy as directly."""
    broker = broker_factory("sqlite", *BROKER_ARGS, sasl=True)
    add_user(skiff_bin, broker.storage, "alice", "pw-alice")
    proxy = proxy_factory([broker.sasl_bootstrap])
    topic = unique("proxy-sasl")
    create_topic(broker.bootstrap, topic)
    login = {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "SCRAM-SHA-512",
             "sasl.username": "alice", "sasl.password": "pw-alice"}
    produce(proxy.bootstrap, topic, [{"value": b"through"}], **login)
    assert [m.value() for m in consume(proxy.bootstrap, topic, count=1, **login)] == [b"through"]


def test_the_proxy_terminates_sasl_ssl_in_front_of_a_plaintext_cluster(broker_factory, proxy_factory, skiff_bin, tmp_path):
    """`--sasl-users` with `--tls-cert`: clients log in to the proxy over SASL_SSL with PLAIN
    and SCRAM (kcat, confluent-kafka, kafka-python), users kept in a storage of their own; the
    cluster behind is plaintext and knows nothing of SASL. Wrong passwords and clients that do
    not log in are refused at the proxy."""
    from confluent_kafka import KafkaError
    from kafka import KafkaConsumer
    from pg_server import TestCertificates

    certificates = TestCertificates(tmp_path)
    ca = certificates.path("ca.pem")
    users = f"sqlite://{tmp_path / 'proxy-users.db'}"
    password = "proxy users pw 9"
    add_user(skiff_bin, users, "alice", password)
    broker = broker_factory("sqlite", *BROKER_ARGS)
    proxy = proxy_factory([broker.address], "--tls-cert", certificates.path("server.pem"),
                          "--tls-key", certificates.path("server.key"), "--sasl-users", users, tls_ca=ca)
    proxy.wait_log("protocol=\"SASL_SSL\"")
    topic = unique("proxy-sasl-ssl")
    create_topic(broker.bootstrap, topic)

    def login(mechanism: str, secret: str = password) -> dict:
        return {"security.protocol": "SASL_SSL", "ssl.ca.location": ca, "sasl.mechanisms": mechanism,
                "sasl.username": "alice", "sasl.password": secret}

    produce(proxy.bootstrap, topic, [{"value": b"scram-256"}], **login("SCRAM-SHA-256"))
    kcat_produce(proxy.bootstrap, topic, ["plain"], "-X", "security.protocol=SASL_SSL", "-X", f"ssl.ca.location={ca}",
                 "-X", "sasl.mechanisms=PLAIN", "-X", "sasl.username=alice", "-X", f"sasl.password={password}")
    expected = [b"scram-256", b"plain"]
    assert [m.value() for m in consume(proxy.bootstrap, topic, count=2, **login("SCRAM-SHA-512"))] == expected
    reader = KafkaConsumer(topic, bootstrap_servers=[proxy.bootstrap], auto_offset_reset="earliest",
                           consumer_timeout_ms=10000, security_protocol="SASL_SSL", ssl_cafile=ca,
                           sasl_mechanism="SCRAM-SHA-512", sasl_plain_username="alice", sasl_plain_password=password)
    got = []
    for record in reader:
        got.append(record.value)
        if len(got) == len(expected):
            break
    reader.close()
    assert got == expected
    # The cluster stored what the proxy's users produced, and never saw a SASL exchange.
    assert [m.value() for m in consume(broker.bootstrap, topic, count=2)] == expected
    assert "SASL" not in broker.log_text()

    for mechanism in ("PLAIN", "SCRAM-SHA-256"):
        error = authentication_error(proxy.bootstrap, **login(mechanism, "wrong-pw-5150"))
        assert error.code() == KafkaError._AUTHENTICATION, error
        assert "invalid credentials" in error.str(), error.str()
    proxy.wait_log("SASL authentication failed")
    # A TLS client that does not log in gets nothing but ApiVersions.
    error = authentication_error(proxy.bootstrap, **{"security.protocol": "SSL", "ssl.ca.location": ca})
    assert error.code() in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN), error
    proxy.wait_log("before SASL authentication")
    assert password not in proxy.log_text() and "wrong-pw-5150" not in proxy.log_text()


def test_the_proxy_logs_in_upstream_with_its_own_credentials(broker_factory, proxy_factory, skiff_bin, tmp_path):
    """`--upstream-sasl-*`: every upstream connection logs in as the proxy's user (SCRAM, the
    server's signature checked), so clients of the proxy, logged in to the proxy as users the
    cluster does not know, reach a SASL-only cluster; a wrong upstream password is logged and
    clients get no answers instead of a plaintext connection."""
    broker = broker_factory("sqlite", *BROKER_ARGS, sasl=True)
    add_user(skiff_bin, broker.storage, "gateway", "gateway pw 1")
    users = f"sqlite://{tmp_path / 'edge-users.db'}"
    add_user(skiff_bin, users, "bob", "bob pw 2")
    proxy = proxy_factory([broker.sasl_bootstrap], "--sasl-users", users, "--upstream-sasl-mechanism", "SCRAM-SHA-512",
                          "--upstream-sasl-username", "gateway", "--upstream-sasl-password", "gateway pw 1")
    topic = unique("proxy-upstream-sasl")
    create_topic(broker.bootstrap, topic)
    bob = {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "SCRAM-SHA-256",
           "sasl.username": "bob", "sasl.password": "bob pw 2"}
    produce(proxy.bootstrap, topic, [{"value": b"via-gateway"}], **bob)
    # Fetch rides a dedicated upstream connection per client, logged in on its own.
    assert [m.value() for m in consume(proxy.bootstrap, topic, count=1, **bob)] == [b"via-gateway"]
    assert "gateway pw 1" not in proxy.log_text()

    wrong = proxy_factory([broker.sasl_bootstrap], "--upstream-sasl-mechanism", "SCRAM-SHA-512",
                          "--upstream-sasl-username", "gateway", "--upstream-sasl-password", "not it",
                          ready=False)
    error = authentication_error(wrong.bootstrap)
    assert error is not None
    line = wrong.wait_log("upstream SASL login failed", timeout=15)
    assert "gateway" in line and "not it" not in wrong.log_text(), line


def test_the_proxy_validates_against_a_registry_that_asks_for_credentials(broker_factory, proxy_factory, skiff_bin):
    """`--schema-registry http://user:password@host`: the proxy sends the URL's credentials as
    basic authentication to a registry with `--schema-registry-basic-auth`, and logs the URL
    without them."""
    import json

    from confluent_kafka import KafkaError
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
    from helpers import produce_outcomes, schema_framed

    broker = broker_factory("sqlite", *BROKER_ARGS, "--schema-registry-basic-auth", schema_registry=True)
    password = "registry pass 42"
    added = subprocess.run([str(skiff_bin), "user", "add", "carol", "--password", password, "--storage", broker.storage],
                           capture_output=True, timeout=30)
    assert added.returncode == 0, added.stderr
    topic = unique("proxy-auth-registry")
    create_topic(broker.bootstrap, topic)
    client = SchemaRegistryClient({"url": broker.registry_url, "basic.auth.user.info": f"carol:{password}"})
    schema = Schema(json.dumps({"type": "record", "name": "R", "fields": [{"name": "n", "type": "int"}]}), "AVRO")
    schema_id = client.register_schema(f"{topic}-value", schema)
    host = broker.registry_url.removeprefix("http://")
    proxy = proxy_factory([broker.address], "--schema-registry", f"http://carol:{password.replace(' ', '%20')}@{host}")
    good = schema_framed(schema_id, b"\x54")  # n = 42 (zigzag)
    bad = schema_framed(schema_id, b"")  # truncated: no int
    # INVALID_RECORD (not a storage error) proves the registry answered the proxy.
    assert produce_outcomes(proxy.bootstrap, topic, [good]) == [None]
    assert produce_outcomes(proxy.bootstrap, topic, [bad]) == [KafkaError.INVALID_RECORD]
    assert "registry pass" not in proxy.log_text() and "%20" not in proxy.log_text()
