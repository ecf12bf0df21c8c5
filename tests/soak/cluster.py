"""The soak's cluster: three `skiff broker` processes on one storage URL, and a storage server the
soak can pause for a moment. Brokers are the end-to-end suite's `Broker` (tests/e2e/conftest.py:
free port, log file, kill -9, restart on the same port), loaded under another module name so the
two conftest files do not collide.

- S3: a moto server of the soak's own (scripts/s3_server.py, single-threaded), paused with
  SIGSTOP / SIGCONT: requests in flight hang, as in an outage, then complete.
- Postgres: the machine's shared server must not be stopped, so the brokers reach it through
  `StallableProxy`, a TCP proxy that can hold all traffic in both directions for a moment.
"""

from __future__ import annotations

import asyncio
import importlib.util
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from pathlib import Path

E2E = Path(__file__).resolve().parents[1] / "e2e"
if str(E2E) not in sys.path:
    sys.path.insert(0, str(E2E))

_spec = importlib.util.spec_from_file_location("e2e_conftest", E2E / "conftest.py")
e2e = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(e2e)

REPO_ROOT = e2e.REPO_ROOT
free_port = e2e.free_port


class StallableProxy:
    """A TCP proxy from 127.0.0.1:`port` to an upstream server, running an asyncio loop in a
    thread. `stall(seconds)` holds every byte in both directions (and new connections) for that
    long: to the brokers the server stops answering, then answers again."""

    def __init__(self, upstream_host: str, upstream_port: int):
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.flowing: asyncio.Event | None = None
        self.connections = 0
        started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self.thread.start()
        assert started.wait(10), "proxy did not start"

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.server = self.loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", self.port))
        started.set()
        self.loop.run_forever()

    async def _serve(self, client_reader, client_writer) -> None:
        await self.flowing.wait()
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.close()
            return
        self.connections += 1
        await asyncio.gather(
            self._pump(client_reader, upstream_writer), self._pump(upstream_reader, client_writer)
        )

    async def _pump(self, reader, writer) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                await self.flowing.wait()
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()  # the other direction's read then ends too

    def stall(self, seconds: float) -> None:
        self.loop.call_soon_threadsafe(self.flowing.clear)
        time.sleep(seconds)
        self.loop.call_soon_threadsafe(self.flowing.set)

    def close(self) -> None:
        async def shutdown() -> None:
            self.server.close()
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class PostgresStorage:
    """A fresh database on the test server, reached through a StallableProxy."""

    engine = "postgres"

    def __init__(self, workdir: Path):
        self.direct = e2e.postgres_database()
        parts = urllib.parse.urlsplit(self.direct)
        self.proxy = StallableProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = (userinfo + "@" if userinfo else "") + f"127.0.0.1:{self.proxy.port}"
        self.url = urllib.parse.urlunsplit(parts._replace(netloc=netloc))

    def stall(self, seconds: float) -> None:
        self.proxy.stall(seconds)

    def close(self) -> None:
        self.proxy.close()
        e2e.drop_postgres_database(self.direct)


class S3Storage:
    """A prefix of a bucket on a moto server of the soak's own, which it can SIGSTOP."""

    engine = "s3"

    def __init__(self, workdir: Path):
        port = free_port()
        log = workdir / "s3-server.log"
        self.server = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "scripts" / "s3_server.py"), str(port)],
            stdout=open(log, "wb"),
            stderr=subprocess.STDOUT,
            preexec_fn=e2e._die_with_parent,
        )
        deadline = time.monotonic() + 30
        while "bucket skiff-test ready" not in log.read_text(errors="replace"):
            assert self.server.poll() is None, "the soak's S3 server exited:\n" + log.read_text()[-2000:]
            assert time.monotonic() < deadline, "the soak's S3 server did not start"
            time.sleep(0.1)
        self.url = f"s3://skiff-test/soak-{uuid.uuid4().hex[:12]}?endpoint=http://127.0.0.1:{port}"

    def stall(self, seconds: float) -> None:
        self.server.send_signal(signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            self.server.send_signal(signal.SIGCONT)

    def close(self) -> None:
        self.server.send_signal(signal.SIGCONT)
        self.server.kill()
        self.server.wait(10)


STORAGES = {"postgres": PostgresStorage, "s3": S3Storage}


class Cluster:
    """Three brokers on one storage URL, each with its own node id (so a client that loses one
    learns from another's Metadata that the partitions moved, as in a Kafka cluster)."""

    def __init__(self, binary: Path, workdir: Path, storage):
        self.brokers = [
            e2e.Broker(
                binary,
                workdir,
                storage.engine,
                ["--node-id", str(index + 1), "--group-initial-rebalance-delay-ms", "0",
                 "--transaction-check-interval-ms", "1000"],
                f"broker{index}",
                storage=storage.url,
            )
            for index in range(3)
        ]

    @property
    def bootstrap(self) -> str:
        return ",".join(broker.address for broker in self.brokers)

    def start(self) -> None:
        for broker in self.brokers:
            broker.start(timeout=30)

    def stop(self) -> None:
        for broker in self.brokers:
            if broker.alive():
                try:
                    broker.stop(timeout=10)
                except AssertionError as error:
                    print(error)

    def panics(self) -> list[str]:
        return [
            f"{broker.log_path.name}: {line}"
            for broker in self.brokers
            for line in broker.log_text().splitlines()
            if "panicked" in line
        ]
