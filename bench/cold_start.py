#!/usr/bin/env python3
"""Scale to zero, measured: how long a client waits when its connection is what starts the
broker. `systemd-socket-activate` holds the listening socket (as systemd or a platform would);
the client connects, the activator starts `skiff broker` with the socket (`LISTEN_FDS`), and the
clock stops when the client gets its answer.

Two figures per start, each over `--starts` cold starts per engine:
- connect → ApiVersions answered: a raw socket sends ApiVersions v0 as soon as it is connected;
  this is the broker's whole cold start as a client sees it.
- producer created → first record acknowledged: a confluent-kafka producer (acks=all) sends one
  record to an existing topic; librdkafka's own bootstrap (ApiVersions, Metadata) is included.
  The same figure against a broker already running is printed beside it, so the cost of the
  cold start is the difference.

Not a test: nothing asserts on time. `bench/run.sh cold-start` builds the release binary and
runs this.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import api_versions_v0, default_binary, free_port, percentile, recv_response, storage_url
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

now = time.perf_counter


def listening(port: int) -> bool:
    """Whether something listens on 127.0.0.1:port, read from /proc (connecting would start
    the broker)."""
    wanted = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as table:
        return any(line.split()[1] == wanted and line.split()[3] == "0A" for line in table.readlines()[1:])


class Activator:
    """systemd-socket-activate holding 127.0.0.1:port for one `skiff broker`."""

    def __init__(self, binary: Path, storage: str, log: Path):
        self.port = free_port()
        command = [
            shutil.which("systemd-socket-activate") or "systemd-socket-activate",
            "-l", f"127.0.0.1:{self.port}",
            "-E", "SKIFF_LOG=warn", "-E", "NO_COLOR=1",
            *[f"-E{name}={os.environ[name]}" for name in os.environ if name.startswith("AWS_")],
            str(binary), "broker", "--advertised-listener", f"127.0.0.1:{self.port}", "--storage", storage,
        ]  # fmt: skip
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        deadline = now() + 10
        while not listening(self.port):
            if self.proc.poll() is not None or now() > deadline:
                raise RuntimeError(f"systemd-socket-activate did not listen; see {log}")
            time.sleep(0.005)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        """SIGTERM: the activator passes it on to the broker, which exits gracefully."""
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def first_answer_ms(port: int) -> float:
    started = now()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(api_versions_v0(1))
        recv_response(sock, 1)
    return (now() - started) * 1000


def first_produce_ms(bootstrap: str, topic: str) -> float:
    started = now()
    outcome: list = []
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    producer.produce(topic, b"wake up", on_delivery=lambda err, msg: outcome.append(err))
    producer.flush(30)
    elapsed = (now() - started) * 1000
    if outcome != [None]:
        raise RuntimeError(f"the first record was not acknowledged: {outcome}")
    return elapsed


def create_topic(bootstrap: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, 1, 1)])
    futures[topic].result(timeout=30)


def measure(binary: Path, engine: str, starts: int) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix=f"skiff-cold-{engine}-"))
    storage = storage_url(engine, workdir)
    log = workdir / "brokers.log"
    answer, produce, warm = [], [], []
    try:
        # The topic exists before the clock runs; the storage is reused by every start.
        setup = Activator(binary, storage, log)
        create_topic(setup.address, "cold")
        warm += [first_produce_ms(setup.address, "cold") for _ in range(min(starts, 10))]
        setup.stop()
        for index in range(starts):
            print(f"[{engine}] cold start {index + 1}/{starts}", file=sys.stderr, end="\r", flush=True)
            activator = Activator(binary, storage, log)
            answer.append(first_answer_ms(activator.port))
            activator.stop()
            activator = Activator(binary, storage, log)
            produce.append(first_produce_ms(activator.address, "cold"))
            activator.stop()
        print(file=sys.stderr)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    def stats(values: list[float]) -> dict:
        ordered = sorted(values)
        return {"median": statistics.median(ordered), "p99": percentile(ordered, 0.99), "max": ordered[-1]}

    return {"engine": engine, "answer": stats(answer), "produce": stats(produce), "warm_produce": stats(warm)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", action="append", choices=["memory", "sqlite", "s3"],
                        help="engine to measure; repeat for several (default: memory and sqlite)")
    parser.add_argument("--starts", type=int, default=50)
    parser.add_argument("--binary", type=Path, default=None)
    args = parser.parse_args(argv)
    binary = (args.binary or default_binary()).resolve()
    results = [measure(binary, engine, args.starts) for engine in (args.engine or ["memory", "sqlite"])]
    print(f"\nSocket-activated cold starts ({args.starts} per engine), ms: median / p99 / max")
    print("| engine | connect → ApiVersions answered | producer → first record acknowledged | same, broker already running |")
    print("|---|---|---|---|")
    for result in results:
        cells = [" / ".join(f"{result[key][s]:.1f}" for s in ("median", "p99", "max"))
                 for key in ("answer", "produce", "warm_produce")]
        print(f"| {result['engine']} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
