#!/usr/bin/env python3
"""What TLS costs: produce and consume throughput of small records over a broker's SSL listener
against its plaintext listener, in one run on one broker (two listeners, `--listeners`).

A private CA and a server certificate for 127.0.0.1 are made with openssl; the clients verify
the server (librdkafka's default TLS settings otherwise). Each round produces `--records`
records (acks=all, linger.ms=5) into a new topic through each listener and consumes them back;
rounds alternate the listeners, and the median and best rates are reported. Not a test: nothing
asserts on time. `bench/run.sh tls` builds the release binary and runs this.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import Broker, create_topic, default_binary, free_port, measure_consume, measure_produce, storage_url


def make_certificates(directory: Path) -> None:
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True, timeout=60)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=skiff bench CA")
    (directory / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=127.0.0.1")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "server.ext")


class TwoListenerBroker(Broker):
    """A broker with a PLAINTEXT and an SSL listener."""

    def __init__(self, binary: Path, storage: str, workdir: Path, log_path: Path):
        super().__init__(binary, storage, workdir, log_path)
        self.ssl_port = free_port()

    @property
    def ssl_address(self) -> str:
        return f"127.0.0.1:{self.ssl_port}"

    def command(self) -> list[str]:
        listeners = f"PLAINTEXT://{self.address},SSL://{self.ssl_address}"
        return [
            str(self.binary), "broker", "--listeners", listeners, "--advertised-listeners", listeners,
            "--tls-cert", str(self.workdir / "server.pem"), "--tls-key", str(self.workdir / "server.key"),
            "--storage", self.storage,
        ]  # fmt: skip


def compare_listeners(broker: Broker, modes: dict[str, tuple[str, dict]], args,
                      brokers: dict[str, Broker] | None = None) -> dict[str, list[dict]]:
    """Produce and consume `--records` records through each listener of `modes` (name ->
    (bootstrap, client settings)), `--rounds` times, alternating; each round's figures by mode.
    A mode's listener belongs to `broker` unless `brokers` names another for it (whose plaintext
    listener creates the topics)."""
    results: dict[str, list[dict]] = {mode: [] for mode in modes}
    for round_number in range(args.rounds):
        for mode, (bootstrap, conf) in modes.items():
            serving = (brokers or {}).get(mode, broker)
            topic = f"bench-{mode}-{round_number}-{int(time.time())}"
            create_topic(serving.address, topic, args.partitions)
            print(f"[{mode}] round {round_number + 1}: produce {args.records} x {args.value_bytes} B ...",
                  file=sys.stderr, flush=True)
            produced = measure_produce(bootstrap, topic, args, serving.proc.pid, conf)
            consumed = measure_consume(bootstrap, topic, args, serving.proc.pid,
                                       {**conf, "fetch.queue.backoff.ms": 10})
            results[mode].append({"produce": produced, "consume": consumed})
    return results


def print_comparison(title: str, label: str, modes: dict, results: dict[str, list[dict]], args) -> None:
    """The table of medians and bests per listener, and each later listener's throughput as a
    share of the first's (`label` names the second in that line, later ones by their mode)."""

    def rates(mode: str, phase: str) -> list[float]:
        return [r[phase]["records_per_s"] for r in results[mode]]

    print(f"\n{title}, {args.records} x {args.value_bytes} B, {args.rounds} rounds")
    print("| listener | produce records/s (median, best) | produce p99 ms (median) | consume records/s (median, best) |")
    print("|---|---|---|---|")
    for mode in modes:
        produce, consume = rates(mode, "produce"), rates(mode, "consume")
        p99 = statistics.median(r["produce"]["latency_ms"]["p99"] for r in results[mode])
        print(f"| {mode} | {statistics.median(produce):,.0f}, {max(produce):,.0f} | {p99:.1f} | "
              f"{statistics.median(consume):,.0f}, {max(consume):,.0f} |")
    baseline, *others = list(modes)
    for index, other in enumerate(others):
        for phase in ("produce", "consume"):
            ratio = statistics.median(rates(other, phase)) / statistics.median(rates(baseline, phase))
            print(f"{label if index == 0 else other} {phase} throughput: {ratio:.0%} of {baseline} (medians)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", default="memory", choices=["memory", "sqlite"])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--value-bytes", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--phase-timeout", type=float, default=600.0)
    parser.add_argument("--binary", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write every figure here")
    args = parser.parse_args(argv)
    binary = (args.binary or default_binary()).resolve()

    workdir = Path(tempfile.mkdtemp(prefix="skiff-bench-tls-"))
    make_certificates(workdir)
    broker = TwoListenerBroker(binary, storage_url(args.engine, workdir), workdir, workdir / "broker.log")
    broker.start()
    ssl_conf = {"security.protocol": "SSL", "ssl.ca.location": str(workdir / "ca.pem")}
    modes = {"plaintext": (broker.address, {}), "tls": (broker.ssl_address, ssl_conf)}
    try:
        results = compare_listeners(broker, modes, args)
    finally:
        broker.stop()
    print_comparison(f"TLS vs plaintext, {args.engine}", "TLS", modes, results, args)
    if args.json:
        args.json.write_text(json.dumps({"engine": args.engine, "records": args.records, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
