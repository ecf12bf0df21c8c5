#!/usr/bin/env python3
"""Skiff benchmark: start-up time, memory, produce and consume throughput with a third-party client.

For each engine asked for (`--engine memory`, `--engine sqlite`; both by default) this starts the
real `skiff broker` release binary on a free port of 127.0.0.1 and measures:

1. start-up: from just before spawning the process to the first ApiVersions v0 answer (a raw
   socket that retries connect every 0.2 ms), and to the first Metadata answer on the same
   connection; `--starts` starts (20 by default), each stopped with SIGTERM before the next. The
   SQLite engine reuses one database file, so only its first start creates the schema.
2. memory: VmRSS right after start-up, after 1 s idle, and with one librdkafka client connected;
   VmHWM (peak) after the load phases.
3. produce: `--records` values of `--value-bytes` bytes into a fresh topic of `--partitions`
   partitions with confluent-kafka (librdkafka): acks=all, linger.ms=5, default batch size, no
   compression, enable.idempotence=false (Skiff has no idempotent producers yet). Throughput runs
   from the first produce() call to the last delivery report; latency is per record, from its
   produce() call to its delivery report.
4. consume: a Consumer that assign()s every partition from offset 0 (a group.id is set because
   librdkafka insists, but it never subscribes or commits: Skiff has no consumer groups yet), with
   librdkafka's default fetch settings, until all records are read; then once more with only the
   client-local fetch.queue.backoff.ms lowered to 10 ms (see QUEUE_BACKOFF_PHASE).
5. CPU per phase, in cores (CPU seconds / wall seconds): the broker's (from the nanosecond
   per-thread clocks in /proc/PID/task/*/schedstat; utime+stime from /proc/PID/stat is reported
   too, but counts 10 ms ticks), this process's (Python thread plus librdkafka's threads), the
   Python thread's alone, and what every other process on the machine used meanwhile (/proc/stat).
   A client-bound run shows the Python thread near 1 core while the broker uses a fraction.

Prints a table and optionally writes everything as JSON (`--json PATH`). Not a test: nothing
here asserts on time. `bench/run.sh` builds the binary and runs this in the project venv.
"""

from __future__ import annotations

import argparse
import atexit
import datetime
import json
import math
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka import libversion as librdkafka_version
from confluent_kafka import version as confluent_kafka_version
from confluent_kafka.admin import AdminClient, NewTopic

REPO_ROOT = Path(__file__).resolve().parents[1]
ENGINES = ("memory", "sqlite", "s3")
# s3 needs an S3-compatible server (scripts/services.sh starts one): measured only when asked for.
DEFAULT_ENGINES = ("memory", "sqlite")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
now = time.perf_counter


def default_binary() -> Path:
    """`$CARGO_TARGET_DIR/release/skiff` (relative to the repository root, as cargo resolves it
    from there in run.sh), else `target/release/skiff`."""
    target = os.environ.get("CARGO_TARGET_DIR")
    if target:
        base = Path(target) if os.path.isabs(target) else REPO_ROOT / target
        return base / "release" / "skiff"
    return REPO_ROOT / "target" / "release" / "skiff"


# /proc readings ---------------------------------------------------------------------------------


def start_registry_broker(binary: Path, storage: str, workdir: Path, *extra: str):
    """Starts `skiff broker` serving the Schema Registry too, with `extra` flags, in `workdir`,
    and waits (at most 20 s) until the registry answers. Returns the process, the bootstrap
    address and the registry URL; the caller terminates the process."""
    port, registry_port = free_port(), free_port()
    bootstrap, registry_url = f"127.0.0.1:{port}", f"http://127.0.0.1:{registry_port}"
    broker = subprocess.Popen(
        [str(binary), "broker", "--listen", bootstrap, "--advertised-listener", bootstrap,
         "--storage", storage, "--schema-registry-listen", f"127.0.0.1:{registry_port}", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir)
    deadline = time.perf_counter() + 20
    while time.perf_counter() < deadline:
        try:
            urllib.request.urlopen(registry_url + "/", timeout=1).read()
            break
        except OSError:
            time.sleep(0.05)
    return broker, bootstrap, registry_url


def proc_memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in KiB."""
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0])
    return fields


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as stat:
        text = stat.read()
    fields = text[text.rfind(")") + 2 :].split()  # fields from the 3rd (state) on
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def proc_threads_cpu_ns(pid: int) -> dict[str, int]:
    """CPU time of each live thread of a process from /proc/PID/task/*/schedstat, in ns: a
    nanosecond clock, where utime+stime count 10 ms ticks (too coarse for a phase that lasts a
    fraction of a second)."""
    threads = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as schedstat:
                threads[task] = int(schedstat.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread exited meanwhile
    return threads


def threads_cpu_delta_s(before: dict[str, int], after: dict[str, int]) -> float:
    """CPU the threads alive at the end used since `before`; a thread that exited in between is
    missing (utime+stime still count it)."""
    return sum(ns - before.get(tid, 0) for tid, ns in after.items()) / 1e9


def machine_cpu_seconds() -> float:
    """CPU seconds every core of the machine spent busy (not idle, not waiting for I/O)."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (values + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


class CpuMeter:
    """CPU used by the broker, this process, its Python thread and everybody else over a phase."""

    def __init__(self, broker_pid: int):
        self.broker_pid = broker_pid
        self.start = self._snapshot()

    def _snapshot(self) -> dict[str, float]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "wall": now(),
            "broker": proc_cpu_seconds(self.broker_pid),
            "broker_threads": proc_threads_cpu_ns(self.broker_pid),
            "client": usage.ru_utime + usage.ru_stime,
            "client_python_thread": time.thread_time(),
            "machine": machine_cpu_seconds(),
        }

    def stop(self) -> dict[str, float]:
        end = self._snapshot()
        used = {key: end[key] - self.start[key] for key in end if key != "broker_threads"}
        broker_threads = threads_cpu_delta_s(self.start["broker_threads"], end["broker_threads"])
        if not end["broker_threads"]:  # no schedstat (kernel without CONFIG_SCHED_INFO): ticks
            broker_threads = used["broker"]
        wall = used.pop("wall")
        others = max(0.0, used["machine"] - max(used["broker"], broker_threads) - used["client"])
        return {
            "wall_s": wall,
            "broker_cpu_s": broker_threads,
            "broker_cores": broker_threads / wall,
            "broker_utime_stime_s": used["broker"],
            "broker_utime_stime_cores": used["broker"] / wall,
            "client_cores": used["client"] / wall,
            "client_python_thread_cores": used["client_python_thread"] / wall,
            "other_processes_cores": others / wall,
        }


# Kafka wire format, just enough for the start-up probe -------------------------------------------


def kafka_string(value: str) -> bytes:
    raw = value.encode()
    return struct.pack(">h", len(raw)) + raw


def request(api_key: int, version: int, correlation_id: int, body: bytes = b"") -> bytes:
    """A framed request with header v1: size, api key, version, correlation id, client id."""
    payload = struct.pack(">hhi", api_key, version, correlation_id) + kafka_string("skiff-bench") + body
    return struct.pack(">i", len(payload)) + payload


def api_versions_v0(correlation_id: int) -> bytes:
    return request(18, 0, correlation_id)


def metadata_v4_all_topics(correlation_id: int) -> bytes:
    # topics: null (all topics); allow_auto_topic_creation: false
    return request(3, 4, correlation_id, struct.pack(">i?", -1, False))


def recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks, remaining = [], n
    while remaining:
        chunk = sock.recv(remaining)
        if not chunk:
            raise EOFError(f"broker closed the connection with {remaining} of {n} bytes unread")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def recv_response(sock: socket.socket, correlation_id: int) -> bytes:
    (size,) = struct.unpack(">i", recv_exact(sock, 4))
    if not 4 <= size < 64 * 1024 * 1024:
        raise ValueError(f"implausible response size {size}")
    payload = recv_exact(sock, size)
    (got,) = struct.unpack(">i", payload[:4])
    if got != correlation_id:
        raise ValueError(f"response correlation id {got}, expected {correlation_id}")
    return payload[4:]


# The broker process ------------------------------------------------------------------------------

# Brokers are spawned without a preexec_fn (no PR_SET_PDEATHSIG as in tests/e2e): a preexec_fn
# makes Python fork instead of vfork, which added ~2 ms to every measured start here. Instead every
# running broker is killed at exit, on SIGTERM, SIGINT and SIGHUP; only a SIGKILL of the benchmark
# itself can leave one behind (its pid is in the log).
_RUNNING: set[subprocess.Popen] = set()


@atexit.register
def _kill_leftovers() -> None:
    for proc in list(_RUNNING):
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Broker:
    """One `skiff broker` process on a free port; start() measures its start-up."""

    def __init__(self, binary: Path, storage: str, workdir: Path, log_path: Path, metrics: bool = False):
        self.binary = binary
        self.storage = storage
        self.workdir = workdir
        self.log_path = log_path
        self.port = free_port()
        # `--metrics-listen` on a port of its own (what the metrics cost is measured with it).
        self.metrics_port = free_port() if metrics else None
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            str(self.binary), "broker",
            "--listen", self.address,
            "--advertised-listener", self.address,
            "--storage", self.storage,
            *(["--metrics-listen", f"127.0.0.1:{self.metrics_port}"] if self.metrics_port else []),
        ]  # fmt: skip

    def scrape(self) -> dict:
        """One scrape of `/metrics`: its size and how many samples it holds."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as answer:
            text = answer.read().decode()
        samples = [line for line in text.splitlines() if line and not line.startswith("#")]
        return {"bytes": len(text), "samples": len(samples)}

    def start(self, timeout: float = 30.0) -> dict:
        """Spawns the broker and returns, in ms from just before the spawn, when the spawn call
        returned, when ApiVersions v0 and then Metadata (all topics) were first answered, and the
        VmRSS at that moment."""
        env = dict(os.environ, NO_COLOR="1")
        env.setdefault("SKIFF_LOG", "info")
        with open(self.log_path, "ab") as log:
            log.write(f"--- bench: {' '.join(self.command())}\n".encode())
            log.flush()
            started = now()
            self.proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self.workdir,
                env=env,
            )
        spawned = now()
        _RUNNING.add(self.proc)
        deadline = started + timeout
        while True:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                sock.connect(("127.0.0.1", self.port))
                break
            except OSError:
                sock.close()
                if self.proc.poll() is not None:
                    raise RuntimeError(f"broker exited with {self.proc.returncode}; see {self.log_path}")
                if now() > deadline:
                    raise RuntimeError(f"broker did not accept connections within {timeout}s")
                time.sleep(0.0002)
        with sock:
            sock.settimeout(timeout)
            sock.sendall(api_versions_v0(1))
            body = recv_response(sock, 1)
            api_versions_at = now()
            (error_code,) = struct.unpack(">h", body[:2])
            if error_code != 0:
                raise RuntimeError(f"ApiVersions v0 answered error {error_code}")
            sock.sendall(metadata_v4_all_topics(2))
            recv_response(sock, 2)
            metadata_at = now()
        return {
            "spawn_ms": (spawned - started) * 1000,
            "api_versions_ms": (api_versions_at - started) * 1000,
            "metadata_ms": (metadata_at - started) * 1000,
            "rss_kib": self.memory()["VmRSS"],
        }

    def memory(self) -> dict[str, int]:
        return proc_memory_kib(self.proc.pid)

    def stop(self, timeout: float = 10.0) -> float:
        """SIGTERM (graceful shutdown), SIGKILL after `timeout`; returns the ms it took to exit."""
        assert self.proc is not None
        began = now()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        _RUNNING.discard(self.proc)
        return (now() - began) * 1000


# Measurements ------------------------------------------------------------------------------------


def storage_url(engine: str, workdir: Path) -> str:
    if engine == "memory":
        return "memory://"
    if engine == "s3":
        # A fresh prefix of the test bucket on the server scripts/services.sh started, or any
        # bucket named by SKIFF_BENCH_S3_URL (credentials from the AWS_* environment).
        if os.environ.get("SKIFF_BENCH_S3_URL"):
            return os.environ["SKIFF_BENCH_S3_URL"]
        endpoint = os.environ.get("SKIFF_TEST_S3_ENDPOINT")
        if not endpoint:
            raise SystemExit("--engine s3 needs SKIFF_TEST_S3_ENDPOINT: eval \"$(scripts/services.sh)\"")
        return f"s3://skiff-test/bench-{uuid.uuid4().hex}?endpoint={endpoint}"
    return f"sqlite://{workdir / 'bench.db'}"  # sqlite:///abs/dir/bench.db


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), math.ceil(fraction * len(sorted_values))))
    return sorted_values[rank - 1]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "first": values[0],
    }


def measure_startup(binary: Path, engine: str, workdir: Path, starts: int, metrics: bool) -> dict:
    """`starts` starts of a fresh process on the same storage URL, each stopped before the next."""
    storage = storage_url(engine, workdir)
    runs, stops = [], []
    for _ in range(starts):
        broker = Broker(binary, storage, workdir, workdir / "startup.log", metrics)
        try:
            runs.append(broker.start())
        finally:
            stops.append(broker.stop())
    return {
        "starts": starts,
        "api_versions_ms": summary([r["api_versions_ms"] for r in runs]),
        "metadata_ms": summary([r["metadata_ms"] for r in runs]),
        "spawn_ms": summary([r["spawn_ms"] for r in runs]),
        "rss_at_first_answer_kib": summary([r["rss_kib"] for r in runs]),
        "graceful_stop_ms": summary(stops),
    }


def exec_baseline_ms(binary: Path, runs: int = 10) -> float:
    """Median time to spawn `skiff --version` and see it exit: the process-creation share of
    start-up that no broker code can save."""
    times = []
    for _ in range(runs):
        began = now()
        subprocess.run([str(binary), "--version"], stdout=subprocess.DEVNULL, check=True)
        times.append((now() - began) * 1000)
    return statistics.median(times)


class ClientErrors:
    """Collects librdkafka error events instead of letting them spam stderr."""

    def __init__(self):
        self.events: list[str] = []

    def __call__(self, error) -> None:
        if len(self.events) < 20:
            self.events.append(str(error))


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    futures[name].result(timeout=30)


def measure_produce(bootstrap: str, topic: str, args, broker_pid: int, client_conf: dict | None = None) -> dict:
    value = bytes((i * 7 + 13) % 256 for i in range(args.value_bytes))
    partitions = args.partitions
    # Produce times per partition, indexed by the offset the broker will assign (the topic is new,
    # so offsets count from 0 and, with one in-flight order per partition, arrive in order).
    sent_at: list[list[float]] = [[] for _ in range(partitions)]
    latencies: list[float] = []
    state = {"delivered": 0, "failed": 0, "first_failure": None, "last_report": None, "unmatched": 0}

    def on_delivery(err, msg) -> None:
        reported = now()
        if err is not None:
            state["failed"] += 1
            state["first_failure"] = state["first_failure"] or str(err)
            return
        try:
            latencies.append(reported - sent_at[msg.partition()][msg.offset()])
        except IndexError:
            state["unmatched"] += 1
        state["delivered"] += 1
        state["last_report"] = reported

    errors = ClientErrors()
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "none",
        "enable.idempotence": False,
        "on_delivery": on_delivery,
        "error_cb": errors,
        **(client_conf or {}),  # e.g. security settings
    })  # fmt: skip
    producer.list_topics(topic, timeout=30)  # connected, with metadata, before the clock starts

    meter = CpuMeter(broker_pid)
    first_produce = now()
    poll = producer.poll
    produce = producer.produce
    for i in range(args.records):
        partition = i % partitions
        times = sent_at[partition]
        while True:
            times.append(now())
            try:
                produce(topic, value, partition=partition)
                break
            except BufferError:  # local queue full: serve delivery reports, then retry
                times.pop()
                poll(0.001)
        poll(0)
    remaining = producer.flush(args.phase_timeout)
    cpu = meter.stop()
    last_report = state["last_report"] or now()
    elapsed = last_report - first_produce

    latencies.sort()
    delivered = state["delivered"]
    return {
        "records": args.records,
        "delivered": delivered,
        "failed": state["failed"],
        "undelivered_after_timeout": remaining,
        "first_failure": state["first_failure"],
        "unmatched_reports": state["unmatched"],
        "client_errors": errors.events,
        "elapsed_s": elapsed,
        "records_per_s": delivered / elapsed,
        "mb_per_s": delivered * args.value_bytes / elapsed / 1e6,
        "latency_ms": {
            "p50": percentile(latencies, 0.50) * 1000,
            "p99": percentile(latencies, 0.99) * 1000,
            "max": latencies[-1] * 1000 if latencies else float("nan"),
        },
        "cpu": cpu,
    }


# librdkafka pauses fetching for fetch.queue.backoff.ms (1000 ms by default) whenever its local
# queue holds queued.min.messages (100,000): a broker that answers faster than Python drains the
# queue can hit this mid-run, and the reader then idles for a second. It is client-local flow
# control (the Fetch requests are the same), so the second consume phase shortens only that.
QUEUE_BACKOFF_PHASE = {"fetch.queue.backoff.ms": 10}


def measure_consume(bootstrap: str, topic: str, args, broker_pid: int, overrides: dict) -> dict:
    errors = ClientErrors()
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "skiff-bench-unused",  # required by librdkafka; never joined (no subscribe)
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "error_cb": errors,
        # everything else, fetch settings included, is librdkafka's default
        **overrides,
    })  # fmt: skip
    want = args.records
    count = value_bytes = 0
    failures: list[str] = []
    first_record_at = None
    longest_wait = 0.0
    try:
        meter = CpuMeter(broker_pid)
        assigned = last_batch = now()
        consumer.assign([TopicPartition(topic, p, 0) for p in range(args.partitions)])
        deadline = assigned + args.phase_timeout
        while count < want and now() < deadline:
            # consume() waits until it has num_messages or the timeout passed: never ask for more
            # than are left, or the last batch waits out the timeout.
            batch = consumer.consume(num_messages=min(1000, want - count), timeout=0.1)
            if not batch:
                continue
            received = now()
            longest_wait = max(longest_wait, received - last_batch)
            last_batch = received
            for msg in batch:
                if msg.error() is not None:
                    if len(failures) < 20:
                        failures.append(str(msg.error()))
                    continue
                count += 1
                value_bytes += len(msg.value())
            if first_record_at is None and count:
                first_record_at = received
        finished = now()
        cpu = meter.stop()
    finally:
        consumer.close()
    elapsed = finished - assigned
    return {
        "records": want,
        "consumed": count,
        "client_overrides": dict(overrides),
        "errors": failures,
        "client_errors": errors.events,
        "elapsed_s": elapsed,
        "first_batch_ms": (first_record_at - assigned) * 1000 if first_record_at else None,
        "longest_wait_ms": longest_wait * 1000,
        "records_per_s": count / elapsed,
        "mb_per_s": value_bytes / elapsed / 1e6,
        "cpu": cpu,
    }


def measure_engine(binary: Path, engine: str, args) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix=f"skiff-bench-{engine}-", dir=args.workdir))
    result: dict = {"engine": engine, "workdir": str(workdir)}
    try:
        print(f"[{engine}] start-up: {args.starts} starts ...", file=sys.stderr, flush=True)
        result["startup"] = measure_startup(binary, engine, workdir, args.starts, args.metrics)

        # A fresh storage for the load phases, so nothing from the start-up runs is in it.
        load_dir = workdir / "load"
        load_dir.mkdir()
        broker = Broker(binary, storage_url(engine, load_dir), load_dir, workdir / "load.log", args.metrics)
        result["load_startup"] = broker.start()
        try:
            memory: dict = {"after_start_kib": broker.memory()["VmRSS"]}
            result["memory"] = memory  # filled in as the phases go
            time.sleep(1.0)
            memory["idle_1s_kib"] = broker.memory()["VmRSS"]
            client = AdminClient({"bootstrap.servers": broker.address})
            client.list_topics(timeout=30)
            time.sleep(0.5)
            memory["one_client_kib"] = broker.memory()["VmRSS"]
            del client

            topic = f"bench-{engine}-{int(time.time())}"
            create_topic(broker.address, topic, args.partitions)

            print(f"[{engine}] produce {args.records} x {args.value_bytes} B ...", file=sys.stderr, flush=True)
            result["produce"] = measure_produce(broker.address, topic, args, broker.proc.pid)
            memory["after_produce_kib"] = broker.memory()["VmRSS"]

            print(f"[{engine}] consume ...", file=sys.stderr, flush=True)
            result["consume"] = measure_consume(broker.address, topic, args, broker.proc.pid, {})
            result["consume_short_queue_backoff"] = measure_consume(
                broker.address, topic, args, broker.proc.pid, QUEUE_BACKOFF_PHASE
            )
            after = broker.memory()
            memory["after_consume_kib"] = after["VmRSS"]
            memory["peak_kib"] = after["VmHWM"]
            if args.metrics:
                result["metrics_scrape"] = broker.scrape()
            if engine == "sqlite":
                result["sqlite_file_bytes"] = sum(
                    f.stat().st_size for f in load_dir.iterdir() if f.name.startswith("bench.db")
                )
        finally:
            broker.stop()
    except Exception as error:  # report what was measured and go on with the next engine
        result["error"] = f"{type(error).__name__}: {error}"
        print(f"[{engine}] FAILED: {result['error']} (logs in {workdir})", file=sys.stderr)
    else:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return result


# Report ------------------------------------------------------------------------------------------


def source_info(binary: Path) -> dict:
    """Which code was measured, as far as can be told: the binary's modification time, and the
    repository's commit and modified files when the benchmark ran (the binary may be older)."""
    def git(*args: str) -> str:
        try:
            out = subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return out.stdout.rstrip("\n")

    modified = git("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": git("rev-parse", "--short", "HEAD") or None,
        "uncommitted_changes": [line[3:] for line in modified.splitlines()],
        "binary_built": datetime.datetime.fromtimestamp(binary.stat().st_mtime, datetime.timezone.utc)
        .isoformat(timespec="seconds"),
    }


def machine_info(workdir: str | None) -> dict:
    cpu: dict[str, str] = {}
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "cpu family", "model", "cpu MHz") and key not in cpu:
                cpu[key] = value.strip()
            if not line.strip():
                break  # the first processor is enough
    with open("/proc/meminfo") as meminfo:
        mem_total_kib = int(meminfo.readline().split()[1])
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu_model": cpu.get("model name", "unknown"),
        "cpu_family_model_mhz": [cpu.get("cpu family"), cpu.get("model"), cpu.get("cpu MHz")],
        "mem_total_mib": mem_total_kib // 1024,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "confluent_kafka": confluent_kafka_version()[0] if isinstance(confluent_kafka_version(), tuple)
        else confluent_kafka_version(),
        "librdkafka": librdkafka_version()[0],
        "workdir": workdir or tempfile.gettempdir(),
    }


def fmt(value, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def mib(kib) -> str:
    return "-" if kib is None else f"{kib / 1024:.1f}"


def dig(result: dict, *path):
    for key in path:
        if not isinstance(result, dict) or key not in result:
            return None
        result = result[key]
    return result


ROWS = [
    ("start -> ApiVersions, median ms", ("startup", "api_versions_ms", "median"), 1),
    ("start -> ApiVersions, max ms", ("startup", "api_versions_ms", "max"), 1),
    ("start -> ApiVersions, first start ms", ("startup", "api_versions_ms", "first"), 1),
    ("start -> Metadata, median ms", ("startup", "metadata_ms", "median"), 1),
    ("start -> Metadata, max ms", ("startup", "metadata_ms", "max"), 1),
    ("spawn call alone, median ms", ("startup", "spawn_ms", "median"), 2),
    ("graceful stop (SIGTERM), median ms", ("startup", "graceful_stop_ms", "median"), 1),
    ("RSS at first answer, MiB", ("memory", "after_start_kib"), "mib"),
    ("RSS idle after 1 s, MiB", ("memory", "idle_1s_kib"), "mib"),
    ("RSS with one client, MiB", ("memory", "one_client_kib"), "mib"),
    ("RSS after produce, MiB", ("memory", "after_produce_kib"), "mib"),
    ("RSS after consume, MiB", ("memory", "after_consume_kib"), "mib"),
    ("peak RSS (VmHWM), MiB", ("memory", "peak_kib"), "mib"),
    ("produce records/s", ("produce", "records_per_s"), 0),
    ("produce MB/s", ("produce", "mb_per_s"), 1),
    ("produce latency p50 ms", ("produce", "latency_ms", "p50"), 2),
    ("produce latency p99 ms", ("produce", "latency_ms", "p99"), 2),
    ("produce latency max ms", ("produce", "latency_ms", "max"), 2),
    ("produce failed / undelivered", None, "produce_failures"),
    ("produce: broker CPU, cores", ("produce", "cpu", "broker_cores"), 2),
    ("produce: broker CPU, s", ("produce", "cpu", "broker_cpu_s"), 3),
    ("produce: broker utime+stime, s", ("produce", "cpu", "broker_utime_stime_s"), 2),
    ("produce: client CPU, cores", ("produce", "cpu", "client_cores"), 2),
    ("produce: client Python thread, cores", ("produce", "cpu", "client_python_thread_cores"), 2),
    ("produce: other processes, cores", ("produce", "cpu", "other_processes_cores"), 2),
    ("consume records/s", ("consume", "records_per_s"), 0),
    ("consume MB/s", ("consume", "mb_per_s"), 1),
    ("consume: assign -> first batch ms", ("consume", "first_batch_ms"), 1),
    ("consume: longest wait for a batch ms", ("consume", "longest_wait_ms"), 1),
    ("consume: records read", ("consume", "consumed"), 0),
    ("consume: broker CPU, cores", ("consume", "cpu", "broker_cores"), 2),
    ("consume: broker CPU, s", ("consume", "cpu", "broker_cpu_s"), 3),
    ("consume: broker utime+stime, s", ("consume", "cpu", "broker_utime_stime_s"), 2),
    ("consume: client CPU, cores", ("consume", "cpu", "client_cores"), 2),
    ("consume: client Python thread, cores", ("consume", "cpu", "client_python_thread_cores"), 2),
    ("consume: other processes, cores", ("consume", "cpu", "other_processes_cores"), 2),
    ("consume, queue backoff 10 ms: records/s", ("consume_short_queue_backoff", "records_per_s"), 0),
    ("consume, queue backoff 10 ms: MB/s", ("consume_short_queue_backoff", "mb_per_s"), 1),
    ("consume, queue backoff 10 ms: longest wait ms", ("consume_short_queue_backoff", "longest_wait_ms"), 1),
    ("consume, queue backoff 10 ms: broker cores", ("consume_short_queue_backoff", "cpu", "broker_cores"), 2),
    ("consume, queue backoff 10 ms: Python thread", ("consume_short_queue_backoff", "cpu", "client_python_thread_cores"), 2),
]


def cell(result: dict, path, kind) -> str:
    if kind == "produce_failures":
        produce = result.get("produce")
        if not produce:
            return "-"
        return f"{produce['failed']} / {produce['undelivered_after_timeout']}"
    value = dig(result, *path)
    if kind == "mib":
        return mib(value)
    if isinstance(value, (int, float)) and kind == 0:
        return f"{value:,.0f}"
    return fmt(value, kind)


def print_table(report: dict, markdown: bool = False) -> None:
    machine = report["machine"]
    results = report["results"]
    args = report["args"]
    source = report["source"]
    dirty = f" plus uncommitted changes to {len(source['uncommitted_changes'])} files" if source["uncommitted_changes"] else ""
    print()
    print(
        f"skiff bench {machine['date']}: {args['records']:,} records x {args['value_bytes']} B, "
        f"{args['partitions']} partition(s); {machine['nproc']} x {machine['cpu_model']}; "
        f"librdkafka {machine['librdkafka']}; load average before/after: "
        f"{report['load_before']} / {report['load_after']}"
    )
    print(f"binary {args['binary']} built {source['binary_built']}; work tree at run time: {source['commit']}{dirty}")
    print()
    if markdown:
        print("| figure | " + " | ".join(r["engine"] for r in results) + " |")
        print("|---|" + "---:|" * len(results))
        for label, path, kind in ROWS:
            print(f"| {label} | " + " | ".join(cell(r, path, kind) for r in results) + " |")
    else:
        label_width = max(len(label) for label, _, _ in ROWS)
        widths = [max(12, len(r["engine"])) for r in results]
        header = " " * label_width + " | " + " | ".join(r["engine"].rjust(w) for r, w in zip(results, widths))
        print(header)
        print("-" * len(header))
        for label, path, kind in ROWS:
            cells = [cell(r, path, kind).rjust(w) for r, w in zip(results, widths)]
            print(label.ljust(label_width) + " | " + " | ".join(cells))
    print()
    print(f"exec baseline (`skiff --version` spawn to exit), median ms: {report['exec_baseline_ms']:.1f}")
    for result in results:
        if "error" in result:
            print(f"{result['engine']}: FAILED: {result['error']}")
        for phase in ("produce", "consume", "consume_short_queue_backoff"):
            events = dig(result, phase, "client_errors")
            if events:
                print(f"{result['engine']} {phase}: librdkafka error events: {events[:3]}")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", action="append", choices=ENGINES,
                        help="engine to measure; repeat for several (default: all)")
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--value-bytes", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--starts", type=int, default=20, help="start-up measurements per engine")
    parser.add_argument("--binary", type=Path, default=None,
                        help="skiff binary (default: target/release/skiff under $CARGO_TARGET_DIR or the repo)")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure here")
    parser.add_argument("--workdir", default=None,
                        help="parent directory for the SQLite files and logs (default: the system temp dir)")
    parser.add_argument("--phase-timeout", type=float, default=600.0,
                        help="give up a produce or consume phase after this many seconds")
    parser.add_argument("--keep", action="store_true", help="keep databases and broker logs")
    parser.add_argument("--metrics", action="store_true",
                        help="run the brokers with --metrics-listen (what measuring costs)")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--show", type=Path, default=None, metavar="JSON",
                        help="print the table of a report written by --json, measuring nothing")
    args = parser.parse_args(argv)  # fmt: skip
    if args.show:
        return args
    args.engine = args.engine or list(DEFAULT_ENGINES)
    args.binary = (args.binary or default_binary()).resolve()
    if args.records < 1 or args.value_bytes < 0 or args.partitions < 1 or args.starts < 1:
        parser.error("--records, --partitions and --starts must be positive, --value-bytes not negative")
    if not os.access(args.binary, os.X_OK):
        parser.error(f"no skiff binary at {args.binary}: build it (bench/run.sh does) or pass --binary")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.show:
        print_table(json.loads(args.show.read_text()), args.markdown)
        return 0
    for signum in (signal.SIGTERM, signal.SIGHUP):  # exit through atexit: no broker left behind
        signal.signal(signum, lambda signum, _frame: sys.exit(128 + signum))
    report = {
        "args": {
            "engines": args.engine,
            "records": args.records,
            "value_bytes": args.value_bytes,
            "partitions": args.partitions,
            "starts": args.starts,
            "metrics": args.metrics,
            "binary": str(args.binary),
        },
        "machine": machine_info(args.workdir),
        "source": source_info(args.binary),
        "load_before": [round(x, 2) for x in os.getloadavg()],
        "exec_baseline_ms": exec_baseline_ms(args.binary),
        "results": [],
    }
    for engine in args.engine:
        report["results"].append(measure_engine(args.binary, engine, args))
    report["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print_table(report, args.markdown)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 1 if any("error" in r for r in report["results"]) else 0


if __name__ == "__main__":
    sys.exit(main())
