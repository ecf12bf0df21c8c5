"""Counts the S3 requests a `skiff broker --storage s3://...` makes per 10,000 records.

    eval "$(scripts/services.sh)"          # a local S3 server (moto) and its AWS_* settings
    ~/.cache/skiff-venv/bin/python bench/s3_requests.py --binary PATH [--records 100000]

Three phases, each on a fresh broker process over the same bucket prefix, each ended by SIGTERM:
the broker logs its request totals ("s3 requests in all") when it drops its storage.
1. produce: `--producers` clients (1), `--records` x `--value-bytes`, acks=all, `--linger-ms` (5), spread over
   `--partitions` partitions (topic creation's few requests are included); `--client kcat` produces
   with one `kcat -P` instead (librdkafka in C, so the client is not the bottleneck: use it for
   produce throughput);
2. consume: one consumer reads everything from offset 0 (librdkafka's default fetch settings);
3. idle tail: one consumer waits at the end of every partition for `--idle-seconds`.
Request counts do not depend on how fast the broker is, so a debug build measures them as well.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

TOTALS = re.compile(r"s3 requests in all .*?puts=(\d+) gets=(\d+) lists=(\d+) deletes=(\d+)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_broker(binary: str, storage: str, log: Path):
    port = free_port()
    env = dict(os.environ, SKIFF_LOG="info", NO_COLOR="1")
    proc = subprocess.Popen(
        [binary, "broker", "--listen", f"127.0.0.1:{port}", "--advertised-listener",
         f"127.0.0.1:{port}", "--storage", storage],
        stdout=open(log, "ab"), stderr=subprocess.STDOUT, env=env,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("broker did not start; see " + str(log))


def stop(proc, log: Path) -> tuple[int, int, int, int]:
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    found = TOTALS.findall(log.read_text(errors="replace"))
    if not found:
        raise SystemExit(f"no request totals in {log}")
    return tuple(int(x) for x in found[-1])


def produce(bootstrap: str, topic: str, records: int, size: int, partitions: int, linger_ms: int,
            producers: int) -> float:
    """`producers` clients (one connection each), in threads, share the records."""
    value = b"x" * size
    errors = []

    def run(first: int) -> None:
        client = Producer({"bootstrap.servers": bootstrap, "linger.ms": linger_ms, "acks": "all",
                           "enable.idempotence": False})
        for i in range(first, records, producers):
            while True:
                try:
                    client.produce(topic, value=value, partition=i % partitions,
                                   on_delivery=lambda err, _msg: err and errors.append(err))
                    break
                except BufferError:
                    client.poll(0.01)
            client.poll(0)
        assert client.flush(300) == 0

    began = time.monotonic()
    threads = [threading.Thread(target=run, args=(first,)) for first in range(producers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[:3]
    return time.monotonic() - began


def produce_kcat(bootstrap: str, topic: str, records: int, size: int, partitions: int,
                 linger_ms: int, workdir: Path) -> float:
    """One `kcat -P` (librdkafka's default partitioner over `partitions`), records read from a file."""
    lines = workdir / "records.txt"
    with open(lines, "wb") as out:
        line = b"x" * size + b"\n"  # each line is one record; kcat strips the newline
        out.write(line * records)
    command = ["kcat", "-P", "-b", bootstrap, "-t", topic, "-X", f"linger.ms={linger_ms}",
               "-X", "acks=all", "-X", "enable.idempotence=false"]
    if partitions == 1:
        command += ["-p", "0"]
    began = time.monotonic()
    with open(lines, "rb") as source:
        subprocess.run(command, stdin=source, check=True, timeout=600)
    return time.monotonic() - began


def consume(bootstrap: str, topic: str, records: int, partitions: int) -> None:
    client = Consumer({"bootstrap.servers": bootstrap, "group.id": "count", "enable.auto.commit": False})
    client.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got = 0
    deadline = time.monotonic() + 300
    while got < records and time.monotonic() < deadline:
        msg = client.poll(0.5)
        if msg is not None and not msg.error():
            got += 1
    client.close()
    assert got == records, f"consumed {got} of {records}"


def idle(bootstrap: str, topic: str, partitions: int, seconds: float) -> None:
    client = Consumer({"bootstrap.servers": bootstrap, "group.id": "idle", "enable.auto.commit": False})
    client.assign([TopicPartition(topic, p, -1) for p in range(partitions)])  # OFFSET_END
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        client.poll(0.2)
    client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", required=True)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--value-bytes", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--linger-ms", type=int, default=5, help="the producer's linger.ms")
    parser.add_argument("--producers", type=int, default=1, help="producer clients (connections)")
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--client", choices=["python", "kcat"], default="python",
                        help="the producer: confluent-kafka threads, or one kcat -P (C, faster)")
    parser.add_argument("--query", default="", help="extra storage URL options, e.g. flush_ms=20")
    args = parser.parse_args()
    endpoint = os.environ.get("SKIFF_TEST_S3_ENDPOINT")
    if not endpoint:
        raise SystemExit('needs SKIFF_TEST_S3_ENDPOINT: eval "$(scripts/services.sh)"')
    query = f"?endpoint={endpoint}" + (f"&{args.query}" if args.query else "")
    storage = f"s3://skiff-test/requests-{uuid.uuid4().hex}{query}"
    workdir = Path(tempfile.mkdtemp(prefix="skiff-s3-requests-"))
    topic = "requests"
    per = 10_000 / args.records

    proc = None
    try:
        proc, bootstrap = run_broker(args.binary, storage, workdir / "produce.log")
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic(topic, args.partitions, 1)])[topic].result(30)
        if args.client == "kcat":
            seconds = produce_kcat(bootstrap, topic, args.records, args.value_bytes, args.partitions,
                                   args.linger_ms, workdir)
        else:
            seconds = produce(bootstrap, topic, args.records, args.value_bytes, args.partitions,
                              args.linger_ms, args.producers)
        produced = stop(proc, workdir / "produce.log")

        proc, bootstrap = run_broker(args.binary, storage, workdir / "consume.log")
        consume(bootstrap, topic, args.records, args.partitions)
        consumed = stop(proc, workdir / "consume.log")

        proc, bootstrap = run_broker(args.binary, storage, workdir / "idle.log")
        idle(bootstrap, topic, args.partitions, args.idle_seconds)
        idled = stop(proc, workdir / "idle.log")
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()

    print(f"{args.records} records x {args.value_bytes} B, {args.partitions} partition(s), "
          f"{args.producers if args.client == 'python' else 'kcat'} producer(s), linger.ms={args.linger_ms}, "
          f"storage options {query!r}; produce took {seconds:.2f}s ({args.records / seconds:,.0f} records/s); "
          f"logs in {workdir}")
    print("| phase | PUT | GET | LIST | DELETE | PUT per 10k records | GET per 10k records |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, (puts, gets, lists, deletes) in (("produce", produced), ("consume", consumed)):
        print(f"| {name} | {puts} | {gets} | {lists} | {deletes} | {puts * per:.1f} | {gets * per:.1f} |")
    puts, gets, lists, deletes = idled
    print(f"| idle consumer at the tail, {args.idle_seconds:.0f}s | {puts} | {gets} | {lists} | {deletes} "
          f"| - | {gets / args.idle_seconds:.1f} GET/s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
