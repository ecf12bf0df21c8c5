"""Scale to zero on any Linux: Debian's `systemd-socket-activate` holds the listening socket and
starts `skiff broker` on the first connection (systemd's LISTEN_FDS protocol); the broker exits
by itself after `--idle-exit-ms` without clients; the next connection starts a new broker, which
finds everything the first one stored. On every durable engine."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from conftest import Broker, _die_with_parent, drop_postgres_database
from helpers import consume, create_topic, produce, unique

IDLE_EXIT_MS = 1000
ACTIVATOR = shutil.which("systemd-socket-activate")


class Activated:
    """`systemd-socket-activate -l ADDRESS skiff broker ...`: nothing runs until a client
    connects; then the activator execs the broker with the listening socket."""

    def __init__(self, broker: Broker):
        self.broker = broker
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        # No --listen: the socket comes from the activator.
        b = self.broker
        broker_command = [str(b.binary), "broker", "--advertised-listener", b.address, "--storage", b.storage, *b.extra_args]
        # The activator clears the environment; pass what the broker needs, as a unit's
        # Environment= lines would.
        passed = [
            f"--setenv={name}={value}"
            for name, value in b.environment().items()
            if name.startswith(("AWS_", "SKIFF_")) or name in ("NO_COLOR", "RUST_LOG")
        ]
        return [ACTIVATOR, "-l", b.address, *passed, *broker_command]

    def start(self) -> None:
        log = open(self.broker.log_path, "ab")
        mark = self.broker.log_path.stat().st_size if self.broker.log_path.exists() else 0
        self.proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd=self.broker.workdir,
            env=self.broker.environment(),
            preexec_fn=_die_with_parent,
        )
        log.close()
        # The activator says when it listens; no broker runs yet.
        self.broker.wait_log_line(mark, lambda line: "Listening on" in line, timeout=10)
        assert "starting broker" not in self.broker.log_since(mark)

    def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.mark.skipif(ACTIVATOR is None, reason="systemd-socket-activate is not installed (scripts/test.sh installs systemd)")
@pytest.mark.parametrize("engine", ["sqlite", "postgres", "s3"])
def test_socket_activated_broker_exits_when_idle_and_the_next_connection_starts_another(
    skiff_bin, tmp_path, engine
):
    broker = Broker(skiff_bin, tmp_path, engine, ["--idle-exit-ms", str(IDLE_EXIT_MS)], "activated")
    activated = Activated(broker)
    topic = unique("scale-to-zero")
    try:
        # Round 1: the producer's connection starts the broker.
        activated.start()
        create_topic(broker.bootstrap, topic)
        produce(broker.bootstrap, topic, [{"key": b"k", "value": b"stored before the broker slept"}])
        started = time.monotonic()
        assert activated.wait_exit(timeout=30) == 0, broker.log_tail()
        assert time.monotonic() - started >= IDLE_EXIT_MS / 1000 * 0.5, "exited without waiting idle"
        log = broker.log_text()
        assert "serving the socket passed by the socket activator" in log
        assert "no client connected: exiting" in log

        # Round 2: nothing runs; a consumer's connection starts a new broker that reads it back.
        activated.start()
        records = consume(broker.bootstrap, topic, count=1)
        assert [(m.key(), m.value()) for m in records] == [(b"k", b"stored before the broker slept")]
        assert activated.wait_exit(timeout=30) == 0, broker.log_tail()
        assert broker.log_text().count("starting broker") == 2
    finally:
        activated.stop()
        if broker.owns_database:
            drop_postgres_database(broker.storage)
