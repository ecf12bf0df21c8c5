#!/usr/bin/env python3
"""Proxy benchmark: the same upstream broker measured directly and through `skiff proxy`, side by
side in one run.

One `skiff broker` (memory engine by default, so the upstream is as fast as it gets and the
proxy's share shows) and one `skiff proxy` in front of it, both the release binary, on free ports
of 127.0.0.1. Then, for `--rounds` rounds, alternating direct and proxied so that drift on a shared
machine hits both alike:

1. produce: `--records` values of `--value-bytes` bytes to a fresh topic with confluent-kafka,
   exactly as bench.py does (acks=all, linger.ms=5, no compression): records/s, and per-record
   latency from produce() to its delivery report (p50/p99/max; linger included).
2. consume: assign() partition 0 from offset 0 and read everything back: records/s.
3. round trip: `--probes` sequential Produce v3 requests (one 100-byte record, acks=1) on one raw
   socket, one at a time: the latency of a single request/response, p50/p99. The proxy's added
   latency is proxied minus direct.

The proxy's VmRSS is sampled every 20 ms during the load phases; its VmHWM (peak) is read at the
end. CPU per phase (cores) for the proxy, the broker and this client comes from the same meters as
bench.py. Nothing here asserts: it prints a table and optionally writes JSON (`--json PATH`).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import bench
from bench import (
    _RUNNING,
    Broker,
    CpuMeter,
    create_topic,
    free_port,
    machine_info,
    now,
    percentile,
    proc_memory_kib,
    proc_threads_cpu_ns,
    recv_response,
    source_info,
    threads_cpu_delta_s,
)

sys.path.insert(0, str(bench.REPO_ROOT / "tests" / "e2e"))
import kafka_wire  # noqa: E402  (hand-encoded Produce v3 for the round-trip probe)


class Proxy:
    """`skiff proxy` in front of one upstream address."""

    def __init__(self, binary: Path, upstream: str, workdir: Path, extra: list[str]):
        self.binary = binary
        self.port = free_port()  # its per-broker port is any free one, learnt from Metadata
        self.upstream = upstream
        self.log_path = workdir / "proxy.log"
        self.extra = extra
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        command = [
            str(self.binary), "proxy", "--listen", self.address, "--advertised-listener", self.address,
            "--upstream", self.upstream, *self.extra,
        ]  # fmt: skip
        env = dict(os.environ, NO_COLOR="1")
        env.setdefault("SKIFF_LOG", "info")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
        _RUNNING.add(self.proc)
        deadline = now() + timeout
        while now() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"proxy exited with {self.proc.returncode}; see {self.log_path}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(bench.api_versions_v0(1))
                    recv_response(sock, 1)
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("proxy did not answer")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        _RUNNING.discard(self.proc)


class RssSampler:
    """Samples a process's VmRSS in the background; `peak_kib` is the largest sample."""

    def __init__(self, pid: int, interval: float = 0.02):
        self.pid = pid
        self.interval = interval
        self.peak_kib = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak_kib = max(self.peak_kib, proc_memory_kib(self.pid)["VmRSS"])
                self.samples += 1
            except (FileNotFoundError, ProcessLookupError, KeyError):
                return
            self._stop.wait(self.interval)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(2)


class ProcessCpu:
    """CPU of one more process (the proxy) over a phase, from its threads' nanosecond clocks."""

    def __init__(self, pid: int):
        self.pid = pid
        self.start_threads = proc_threads_cpu_ns(pid)
        self.start_wall = now()

    def cores(self) -> float:
        used = threads_cpu_delta_s(self.start_threads, proc_threads_cpu_ns(self.pid))
        return used / (now() - self.start_wall)


def round_trip_probe(port: int, topic: str, probes: int, value_bytes: int) -> dict:
    """`probes` sequential Produce v3 requests (acks=1, one record) on one connection."""
    batch = kafka_wire.record_batch([kafka_wire.record(0, b"p" * value_bytes)])
    times = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for correlation_id in range(1, probes + 1):
            request = kafka_wire.produce_v3_request(topic, 0, batch, correlation_id, acks=1)
            began = now()
            sock.sendall(request)
            recv_response(sock, correlation_id)
            times.append(now() - began)
    times.sort()
    return {
        "probes": probes,
        "p50_ms": percentile(times, 0.50) * 1000,
        "p99_ms": percentile(times, 0.99) * 1000,
        "max_ms": times[-1] * 1000,
        "mean_ms": statistics.fmean(times) * 1000,
    }


def fetch_v4_request(topic: str, correlation_id: int, max_wait_ms: int) -> bytes:
    """A Fetch v4 long poll for partition 0 from offset 0 (min_bytes 1)."""
    body = (
        struct.pack(">iiiib", -1, max_wait_ms, 1, 1 << 20, 0)
        + struct.pack(">i", 1) + kafka_wire.string(topic)
        + struct.pack(">i", 1) + struct.pack(">iqi", 0, 0, 1 << 20)
    )  # fmt: skip
    return kafka_wire.frame(kafka_wire.request_header(1, 4, correlation_id, "skiff-bench") + body)


def head_of_line(broker_port: int, proxy_port: int, empty_topic: str, produce_topic: str, wait_ms: int) -> dict:
    """How long a Produce waits behind another request's long poll.

    - shared connection (what a proxy multiplexing Fetch onto a shared upstream connection would
      impose): a long-poll Fetch on an empty partition, then a Produce, on one connection straight
      to the broker, which handles a connection's requests one at a time;
    - through the proxy: the long poll on one client connection, the Produce on another (the
      proxy gives Fetch a dedicated upstream connection).
    """
    batch = kafka_wire.record_batch([kafka_wire.record(0, b"h" * 100)])
    produce = kafka_wire.produce_v3_request(produce_topic, 0, batch, 2, acks=1)
    with socket.create_connection(("127.0.0.1", broker_port), timeout=10) as sock:
        sock.sendall(fetch_v4_request(empty_topic, 1, wait_ms))
        began = now()
        sock.sendall(produce)
        recv_response(sock, 1)
        recv_response(sock, 2)
        shared_ms = (now() - began) * 1000
    with socket.create_connection(("127.0.0.1", proxy_port), timeout=10) as poller, \
            socket.create_connection(("127.0.0.1", proxy_port), timeout=10) as producer:
        poller.sendall(fetch_v4_request(empty_topic, 1, wait_ms))
        time.sleep(0.05)  # the long poll is upstream now
        began = now()
        producer.sendall(produce)
        recv_response(producer, 2)
        proxied_ms = (now() - began) * 1000
        recv_response(poller, 1)
    return {"fetch_max_wait_ms": wait_ms, "shared_connection_ms": shared_ms, "through_proxy_ms": proxied_ms}


def _producer_worker(bootstrap: str, topic: str, count: int, value_bytes: int, ready, go, results) -> None:
    """One producer process of the many-producers phase (same settings as the produce phase)."""
    from confluent_kafka import Producer

    value = bytes((i * 7 + 13) % 256 for i in range(value_bytes))
    state = {"delivered": 0, "failed": 0}

    def on_delivery(err, _msg) -> None:
        state["failed" if err is not None else "delivered"] += 1

    producer = Producer({
        "bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, "compression.type": "none",
        "enable.idempotence": False, "on_delivery": on_delivery,
    })  # fmt: skip
    producer.list_topics(topic, timeout=30)
    ready.put(True)
    go.wait(60)  # every process connected before any starts
    started = time.time()  # wall clock: comparable across processes
    for _ in range(count):
        while True:
            try:
                producer.produce(topic, value)
                break
            except BufferError:
                producer.poll(0.001)
        producer.poll(0)
    producer.flush(300)
    results.put((started, time.time(), state["delivered"], state["failed"]))


def measure_many_producers(bootstrap: str, topic: str, producers: int, records: int, value_bytes: int) -> dict:
    """`producers` processes produce `records` in total to one topic at once; aggregate records/s
    from the first process's start to the last one's last delivery report."""
    context = multiprocessing.get_context("spawn")  # no fork of a process with librdkafka threads
    results, ready, go = context.Queue(), context.Queue(), context.Event()
    share = records // producers
    processes = [
        context.Process(
            target=_producer_worker, args=(bootstrap, topic, share, value_bytes, ready, go, results)
        )
        for _ in range(producers)
    ]
    for process in processes:
        process.start()
    for _ in processes:
        ready.get(timeout=120)
    go.set()
    outcomes = [results.get(timeout=600) for _ in processes]
    for process in processes:
        process.join(10)
    first = min(started for started, _, _, _ in outcomes)
    last = max(ended for _, ended, _, _ in outcomes)
    delivered = sum(outcome[2] for outcome in outcomes)
    return {
        "producers": producers,
        "records": share * producers,
        "delivered": delivered,
        "failed": sum(outcome[3] for outcome in outcomes),
        "records_per_s": delivered / (last - first),
    }


def measure_path(name: str, bootstrap: str, probe_port: int, args, broker_pid: int, proxy_pid: int, round_: int) -> dict:
    """One round of produce, consume and round-trip probe against `bootstrap`."""
    topic = f"bench-proxy-{name}-{round_}-{int(time.time() * 1000)}"
    create_topic(bootstrap, topic, 1)
    bench_args = argparse.Namespace(
        records=args.records, value_bytes=args.value_bytes, partitions=1, phase_timeout=args.phase_timeout
    )
    result: dict = {"path": name, "round": round_}
    with RssSampler(proxy_pid) as rss:
        proxy_cpu = ProcessCpu(proxy_pid)
        print(f"[{name} #{round_}] produce {args.records} x {args.value_bytes} B ...", file=sys.stderr, flush=True)
        result["produce"] = bench.measure_produce(bootstrap, topic, bench_args, broker_pid)
        result["produce"]["proxy_cores"] = proxy_cpu.cores()
        proxy_cpu = ProcessCpu(proxy_pid)
        print(f"[{name} #{round_}] consume ...", file=sys.stderr, flush=True)
        result["consume"] = bench.measure_consume(
            bootstrap, topic, bench_args, broker_pid, bench.QUEUE_BACKOFF_PHASE
        )
        result["consume"]["proxy_cores"] = proxy_cpu.cores()
    result["proxy_rss_peak_sampled_kib"] = rss.peak_kib
    print(f"[{name} #{round_}] round-trip probe x {args.probes} ...", file=sys.stderr, flush=True)
    result["round_trip"] = round_trip_probe(probe_port, topic, args.probes, args.value_bytes)
    return result


def median_of(results: list[dict], *path) -> float | None:
    values = []
    for result in results:
        value = result
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, (int, float)):
            values.append(value)
    return statistics.median(values) if values else None


def summarize(rounds: list[dict]) -> dict:
    direct = [r for r in rounds if r["path"] == "direct"]
    proxied = [r for r in rounds if r["path"] == "proxy"]
    figures = {}
    for label, path in [
        ("produce_records_per_s", ("produce", "records_per_s")),
        ("produce_p50_ms", ("produce", "latency_ms", "p50")),
        ("produce_p99_ms", ("produce", "latency_ms", "p99")),
        ("consume_records_per_s", ("consume", "records_per_s")),
        ("round_trip_p50_ms", ("round_trip", "p50_ms")),
        ("round_trip_p99_ms", ("round_trip", "p99_ms")),
        ("proxy_cores_produce", ("produce", "proxy_cores")),
        ("broker_cores_produce", ("produce", "cpu", "broker_cores")),
        ("client_cores_produce", ("produce", "cpu", "client_cores")),
    ]:
        figures[label] = {"direct": median_of(direct, *path), "proxy": median_of(proxied, *path)}
    return figures


def print_report(report: dict) -> None:
    figures = report["summary"]
    print()
    print(
        f"skiff proxy bench {report['machine']['date']}: {report['args']['records']:,} x "
        f"{report['args']['value_bytes']} B, {report['args']['rounds']} rounds per path, "
        f"upstream {report['args']['engine']}; load average before/after {report['load_before']} / {report['load_after']}"
    )
    print(f"binary {report['args']['binary']}; work tree at run time: {report['source']['commit']}")
    print()
    print("| figure (median of rounds) | direct | through proxy | proxy / direct |")
    print("|---|---:|---:|---:|")
    for key, digits in [
        ("produce_records_per_s", 0), ("consume_records_per_s", 0), ("produce_p50_ms", 2),
        ("produce_p99_ms", 2), ("round_trip_p50_ms", 3), ("round_trip_p99_ms", 3),
        ("proxy_cores_produce", 2), ("broker_cores_produce", 2), ("client_cores_produce", 2),
    ]:  # fmt: skip
        direct, proxied = figures[key]["direct"], figures[key]["proxy"]
        # The proxy's own CPU is zero on the direct path: no ratio.
        has_ratio = direct and proxied is not None and not key.startswith("proxy_")
        ratio = f"{proxied / direct:.2f}" if has_ratio else "-"
        cell = lambda v: "-" if v is None else f"{v:,.{digits}f}"  # noqa: E731
        print(f"| {key} | {cell(direct)} | {cell(proxied)} | {ratio} |")
    print()
    added = report["added_round_trip_ms"]
    print(f"added round-trip latency (proxy - direct): p50 {added['p50']:.3f} ms, p99 {added['p99']:.3f} ms")
    many = report.get("many_producers")
    if many:
        direct, proxied = many["direct"], many["proxy"]
        print(
            f"{direct['producers']} producer processes at once: {direct['records_per_s']:,.0f} records/s direct, "
            f"{proxied['records_per_s']:,.0f} through the proxy (failed {direct['failed']} / {proxied['failed']})"
        )
    hol = report["head_of_line"]
    print(
        f"a Produce behind another client's {hol['fetch_max_wait_ms']} ms long poll: "
        f"{hol['shared_connection_ms']:.1f} ms on one shared connection, "
        f"{hol['through_proxy_ms']:.2f} ms through the proxy (Fetch on its own upstream connection)"
    )
    memory = report["proxy_memory_kib"]
    print(
        f"proxy RSS: idle {memory['idle'] / 1024:.1f} MiB, peak sampled under load "
        f"{memory['peak_sampled'] / 1024:.1f} MiB, VmHWM {memory['hwm'] / 1024:.1f} MiB"
    )
    for result in report["rounds"]:
        p, c, t = result["produce"], result["consume"], result["round_trip"]
        print(
            f"  {result['path']:>6} #{result['round']}: produce {p['records_per_s']:>9,.0f}/s "
            f"p99 {p['latency_ms']['p99']:.2f} ms (failed {p['failed']}, undelivered {p['undelivered_after_timeout']}); "
            f"consume {c['records_per_s']:>9,.0f}/s ({c['consumed']} read); "
            f"round trip p50 {t['p50_ms']:.3f} p99 {t['p99_ms']:.3f} ms"
        )


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=("memory", "sqlite"), default="memory", help="upstream broker's engine")
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--value-bytes", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3, help="rounds per path, alternating direct/proxy")
    parser.add_argument("--probes", type=int, default=5000, help="sequential requests in the round-trip probe")
    parser.add_argument("--producers", type=int, default=4,
                        help="producer processes of the many-producers phase (0 or 1: skip it)")
    parser.add_argument("--binary", type=Path, default=None)
    parser.add_argument("--proxy-arg", action="append", default=[], help="extra flag for skiff proxy")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--phase-timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    args.binary = (args.binary or bench.default_binary()).resolve()
    if not os.access(args.binary, os.X_OK):
        parser.error(f"no skiff binary at {args.binary}: build it (bench/run.sh does) or pass --binary")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda signum, _frame: sys.exit(128 + signum))
    workdir = Path(tempfile.mkdtemp(prefix="skiff-bench-proxy-"))
    report: dict = {
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": machine_info(None),
        "source": source_info(args.binary),
        "load_before": [round(x, 2) for x in os.getloadavg()],
        "rounds": [],
    }
    broker = Broker(args.binary, bench.storage_url(args.engine, workdir), workdir, workdir / "broker.log")
    broker.start()
    proxy = Proxy(args.binary, broker.address, workdir, args.proxy_arg)
    try:
        proxy.start()
        time.sleep(0.5)
        idle = proc_memory_kib(proxy.proc.pid)["VmRSS"]
        for round_ in range(1, args.rounds + 1):
            for name, bootstrap, port in (
                ("direct", broker.address, broker.port),
                ("proxy", proxy.address, proxy.port),
            ):
                report["rounds"].append(
                    measure_path(name, bootstrap, port, args, broker.proc.pid, proxy.proc.pid, round_)
                )
        empty_topic, produce_topic = f"bench-hol-empty-{int(time.time())}", f"bench-hol-{int(time.time())}"
        create_topic(broker.address, empty_topic, 1)
        create_topic(broker.address, produce_topic, 1)
        if args.producers > 1:
            report["many_producers"] = {}
            for name, bootstrap in (("direct", broker.address), ("proxy", proxy.address)):
                topic = f"bench-many-{name}-{int(time.time() * 1000)}"
                create_topic(bootstrap, topic, 1)
                print(f"[{name}] {args.producers} producer processes ...", file=sys.stderr, flush=True)
                report["many_producers"][name] = measure_many_producers(
                    bootstrap, topic, args.producers, args.records, args.value_bytes
                )
        report["head_of_line"] = head_of_line(broker.port, proxy.port, empty_topic, produce_topic, 500)
        memory = proc_memory_kib(proxy.proc.pid)
        report["proxy_memory_kib"] = {
            "idle": idle,
            "peak_sampled": max(r["proxy_rss_peak_sampled_kib"] for r in report["rounds"]),
            "hwm": memory["VmHWM"],
            "end": memory["VmRSS"],
        }
    finally:
        proxy.stop()
        broker.stop()
    report["load_after"] = [round(x, 2) for x in os.getloadavg()]
    report["summary"] = summarize(report["rounds"])
    report["added_round_trip_ms"] = {
        "p50": report["summary"]["round_trip_p50_ms"]["proxy"] - report["summary"]["round_trip_p50_ms"]["direct"],
        "p99": report["summary"]["round_trip_p99_ms"]["proxy"] - report["summary"]["round_trip_p99_ms"]["direct"],
    }
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
