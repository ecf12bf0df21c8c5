"""Fixtures that run the real `skiff` binary for end-to-end tests.

Nothing is built here: `scripts/test.sh` builds first. The binary is `$SKIFF_BIN`, else
`$CARGO_TARGET_DIR/debug/skiff`, else `target/debug/skiff` under the repository root.

Every broker gets a free port on 127.0.0.1, its own temporary directory (the SQLite file lives
there; a Postgres broker gets a fresh database on the server `$SKIFF_TEST_POSTGRES_URL` names,
which `scripts/services.sh` provides, dropped at teardown) and a log file that captures its stderr, so tests can assert on log lines. Brokers die with
the test process (PR_SET_PDEATHSIG), so a killed pytest never leaves one behind.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

import kafka_wire

REPO_ROOT = Path(__file__).resolve().parents[2]
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
BACKTRACE_FRAME = re.compile(r"^\s+(\d+: |at )")
ENGINES = ["memory", "sqlite", "postgres", "s3"]
POSTGRES_URL = os.environ.get(
    "SKIFF_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"
)
# The S3-compatible server scripts/services.sh starts (moto_server), and its bucket.
S3_ENDPOINT = os.environ.get("SKIFF_TEST_S3_ENDPOINT")
S3_BUCKET = "skiff-test"


def s3_storage(query: str = "") -> str:
    """A fresh prefix of the test bucket: a new, empty cluster."""
    if not S3_ENDPOINT:
        pytest.fail("SKIFF_TEST_S3_ENDPOINT is not set: run `eval \"$(scripts/services.sh)\"` first")
    return f"s3://{S3_BUCKET}/e2e-{uuid.uuid4().hex}{query}"


def postgres_sql(statement: str) -> None:
    """Runs one statement on the Postgres maintenance database (with psql)."""
    subprocess.run(["psql", "-w", POSTGRES_URL, "-qAtc", statement], check=True, capture_output=True)


def postgres_database() -> str:
    """Creates a fresh database on the test server; returns its storage URL."""
    name = f"skiff_e2e_{uuid.uuid4().hex}"
    postgres_sql(f"CREATE DATABASE {name}")
    base, _, query = POSTGRES_URL.partition("?")
    return base.rsplit("/", 1)[0] + f"/{name}" + (f"?{query}" if query else "")


def drop_postgres_database(storage: str) -> None:
    name = storage.partition("?")[0].rsplit("/", 1)[1]
    postgres_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def skiff_binary() -> Path:
    if os.environ.get("SKIFF_BIN"):
        return Path(os.environ["SKIFF_BIN"]).resolve()
    target = os.environ.get("CARGO_TARGET_DIR")
    if target:
        # cargo resolves a relative CARGO_TARGET_DIR against its working directory; the test
        # script runs both from the repository root.
        base = Path(target) if os.path.isabs(target) else REPO_ROOT / target
        return base / "debug" / "skiff"
    return REPO_ROOT / "target" / "debug" / "skiff"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_LIBC = ctypes.CDLL("libc.so.6", use_errno=True)  # loaded here: no dlopen between fork and exec
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGKILL it when the test process dies."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class Broker:
    """One `skiff broker` process; can be stopped, killed and started again on the same port and
    storage (the restart helper the durability tests need)."""

    def __init__(
        self,
        binary: Path,
        workdir: Path,
        engine: str,
        extra_args: list[str],
        name: str,
        storage: str | None = None,
        schema_registry: bool = False,
        tls=None,
        sasl: bool = False,
    ):
        self.binary = binary
        self.workdir = workdir
        self.engine = engine
        self.extra_args = list(extra_args)
        self.port = free_port()
        # The Schema Registry's port (`--schema-registry-listen`), if it serves one.
        self.registry_port = free_port() if schema_registry else None
        # With `tls` (pg_server.TestCertificates), an SSL listener beside the plaintext one.
        self.tls = tls
        self.ssl_port = free_port() if tls is not None else None
        # With `sasl`, a SASL_PLAINTEXT listener (and a SASL_SSL one with `tls`) beside them.
        self.sasl_port = free_port() if sasl else None
        self.sasl_ssl_port = free_port() if sasl and tls is not None else None
        if storage is not None:
            self.storage = storage  # e.g. another broker's, to share one storage
        elif engine == "memory":
            self.storage = "memory://"
        elif engine == "sqlite":
            self.db_path = workdir / f"{name}.db"
            self.storage = f"sqlite://{self.db_path}"  # sqlite:///abs/path/name.db
        elif engine == "postgres":
            self.storage = postgres_database()
            self.owns_database = True
        elif engine == "s3":
            self.storage = s3_storage()
        else:
            raise ValueError(f"unknown engine {engine}")
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.owns_database = getattr(self, "owns_database", False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def bootstrap(self) -> str:
        return self.address

    @property
    def registry_url(self) -> str:
        assert self.registry_port is not None, "start the broker with schema_registry=True"
        return f"http://127.0.0.1:{self.registry_port}"

    @property
    def ssl_bootstrap(self) -> str:
        assert self.ssl_port is not None, "start the broker with tls=certificates"
        return f"127.0.0.1:{self.ssl_port}"

    @property
    def sasl_bootstrap(self) -> str:
        assert self.sasl_port is not None, "start the broker with sasl=True"
        return f"127.0.0.1:{self.sasl_port}"

    @property
    def sasl_ssl_bootstrap(self) -> str:
        assert self.sasl_ssl_port is not None, "start the broker with sasl=True and tls=certificates"
        return f"127.0.0.1:{self.sasl_ssl_port}"

    def listener_args(self) -> list[str]:
        listeners = [f"PLAINTEXT://{self.address}"]
        if self.tls is not None:
            listeners.append(f"SSL://{self.ssl_bootstrap}")
        if self.sasl_port is not None:
            listeners.append(f"SASL_PLAINTEXT://{self.sasl_bootstrap}")
        if self.sasl_ssl_port is not None:
            listeners.append(f"SASL_SSL://{self.sasl_ssl_bootstrap}")
        if len(listeners) == 1:
            return ["--listen", self.address, "--advertised-listener", self.address]
        joined = ",".join(listeners)
        args = ["--listeners", joined, "--advertised-listeners", joined]
        if self.tls is not None:
            args += ["--tls-cert", self.tls.path("server.pem"), "--tls-key", self.tls.path("server.key")]
        return args

    def command(self) -> list[str]:
        return [
            str(self.binary),
            "broker",
            *self.listener_args(),
            "--storage",
            self.storage,
            *(
                ["--schema-registry-listen", f"127.0.0.1:{self.registry_port}"]
                if self.registry_port is not None
                else []
            ),
            *self.extra_args,
        ]

    def environment(self) -> dict[str, str]:
        """The broker process's environment: the test's, plus log settings and, for S3, the
        standard AWS variables as a deployment would set them."""
        env = dict(os.environ)
        env.setdefault("SKIFF_LOG", os.environ.get("SKIFF_E2E_LOG", "info"))
        env["NO_COLOR"] = "1"
        # S3 storage, or a table location on S3 (`--table-location s3://...`).
        if self.storage.startswith("s3://") or any(arg.startswith("s3://") for arg in self.extra_args):
            env.setdefault("AWS_ENDPOINT_URL", S3_ENDPOINT or "")
            env.setdefault("AWS_ALLOW_HTTP", "true")
            env.setdefault("AWS_ACCESS_KEY_ID", "test")
            env.setdefault("AWS_SECRET_ACCESS_KEY", "test")
            env.setdefault("AWS_REGION", "us-east-1")
        return env

    def start(self, timeout: float = 15.0) -> "Broker":
        assert self.proc is None or self.proc.poll() is not None, "broker already running"
        env = self.environment()
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"--- e2e: start #{self.starts}: {' '.join(self.command())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self.workdir,
                env=env,
                preexec_fn=_die_with_parent,
            )
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        """Waits until the broker answers ApiVersions, or fails with the end of its log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"skiff broker exited with {self.proc.returncode} before answering:\n"
                    + self.log_tail()
                )
            if kafka_wire.answers_api_versions(self.port, timeout=1.0) and self.registry_answers():
                return
            time.sleep(0.05)
        raise AssertionError(
            f"skiff broker did not answer ApiVersions on {self.address} within {timeout}s:\n"
            + self.log_tail()
        )

    def registry_answers(self) -> bool:
        """True if there is no registry to wait for, or it answers `GET /` (a 401 counts)."""
        if self.registry_port is None:
            return True
        try:
            with urllib.request.urlopen(self.registry_url + "/", timeout=1.0) as response:
                return response.status == 200
        except urllib.error.HTTPError as error:
            return error.code == 401  # up, and asking for credentials (basic auth)
        except OSError:
            return False

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (graceful shutdown), then SIGKILL if it does not exit in time."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(f"broker ignored SIGTERM for {timeout}s:\n" + self.log_tail())

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def restart(self, kill: bool = False) -> "Broker":
        """Stops (or kill -9s) the broker and starts it again on the same port and storage."""
        if kill:
            self.kill9()
        else:
            self.stop()
        return self.start()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # Log helpers -------------------------------------------------------------------------------

    def log_text(self) -> str:
        return ANSI_ESCAPE.sub("", self.log_path.read_bytes().decode("utf-8", "replace"))

    def log_mark(self) -> int:
        return self.log_path.stat().st_size

    def log_since(self, mark: int) -> str:
        with open(self.log_path, "rb") as log:
            log.seek(mark)
            return ANSI_ESCAPE.sub("", log.read().decode("utf-8", "replace"))

    def log_tail(self, lines: int = 60) -> str:
        """The last lines of the log, without the frames of any backtrace."""
        try:
            kept = [line for line in self.log_text().splitlines() if not BACKTRACE_FRAME.match(line)]
            return "\n".join(kept[-lines:])
        except FileNotFoundError:
            return "(no log file)"

    def wait_log_line(self, mark: int, predicate, timeout: float = 5.0) -> str:
        """Waits for a log line written after `mark` that satisfies `predicate`; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log_since(mark).splitlines():
                if predicate(line):
                    return line
            if time.monotonic() > deadline:
                raise AssertionError(
                    "no matching log line; broker log since the mark:\n"
                    + "\n".join(
                        line for line in self.log_since(mark).splitlines() if not BACKTRACE_FRAME.match(line)
                    )[:4000]
                )
            time.sleep(0.05)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="session")
def skiff_bin() -> Path:
    binary = skiff_binary()
    if not binary.is_file() or not os.access(binary, os.X_OK):
        pytest.exit(
            f"skiff binary not found at {binary}: run `cargo build -p skiff-cli` "
            "(scripts/test.sh does) or set SKIFF_BIN",
            returncode=2,
        )
    return binary


@pytest.fixture
def broker_factory(skiff_bin, tmp_path, request):
    """Starts brokers: `broker_factory("sqlite", "--num-partitions", "3")`, or on another
    broker's storage with `storage=other.storage`; `schema_registry=True` serves the Schema
    Registry too (on `broker.registry_url`); `tls=certificates` (pg_server.TestCertificates) adds
    an SSL listener (on `broker.ssl_bootstrap`); `sasl=True` a SASL_PLAINTEXT listener (on
    `broker.sasl_bootstrap`) and, with `tls`, a SASL_SSL one (`broker.sasl_ssl_bootstrap`). All are stopped at teardown; if the test failed, the
    end of each broker's log is printed with the report."""
    brokers: list[Broker] = []

    def start(
        engine: str,
        *extra_args: str,
        name: str | None = None,
        storage: str | None = None,
        schema_registry: bool = False,
        tls=None,
        sasl: bool = False,
    ) -> Broker:
        broker = Broker(
            skiff_bin,
            tmp_path,
            engine,
            list(extra_args),
            name or f"broker{len(brokers)}",
            storage,
            schema_registry,
            tls,
            sasl,
        )
        brokers.append(broker)
        return broker.start()

    yield start

    failed = any(
        getattr(getattr(request.node, f"rep_{when}", None), "failed", False)
        for when in ("setup", "call")
    )
    for broker in brokers:
        if broker.alive():
            try:
                broker.stop(timeout=5)
            except AssertionError as error:
                print(error)
        if failed:
            print(f"\n===== {broker.engine} broker log ({broker.log_path}) =====")
            print(broker.log_tail(80))
    for broker in brokers:
        if broker.owns_database:
            drop_postgres_database(broker.storage)


@pytest.fixture(params=ENGINES)
def engine(request) -> str:
    return request.param


@pytest.fixture
def broker(broker_factory, engine) -> Broker:
    """A broker on each engine (memory, sqlite in a temp dir, postgres on a fresh database, s3 on a fresh prefix) with
    default settings."""
    return broker_factory(engine)


@pytest.fixture
def sqlite_broker(broker_factory) -> Broker:
    return broker_factory("sqlite")


@pytest.fixture
def memory_broker(broker_factory) -> Broker:
    return broker_factory("memory")
