#!/usr/bin/env python3
"""How fast consumer groups converge: real confluent-kafka (librdkafka) consumers with default
settings, classic groups with `cooperative-sticky` and consumer-protocol groups (KIP-848,
`group.protocol=consumer`, the broker's `uniform` assignor), against the real `skiff broker`
with its default group settings (`--group-initial-rebalance-delay-ms 3000`, like Kafka;
`--group-consumer-heartbeat-interval-ms 5000`, like Kafka). `--protocol both` (the default)
runs every phase for each protocol, one after the other, in one run.

Phases, each timed from the action to the moment the group is converged (every member has a
non-empty assignment, the assignments are disjoint and cover every partition of the subscribed
topics, and nothing changed for a moment):

1. first record: three consumers start at once in a new group on a topic that has records;
   the time to the first record any of them gets, and to convergence.
2. joins: eight members join one at a time, each waiting for the previous step to converge.
3. subscription change: every member subscribes to a second topic too, then back.
4. leaves: members close one at a time (LeaveGroup) until one is left.
5. hand-over, under a steady stream of records: a fourth member joins a group of three (time
   to its first record), then leaves again (time until every partition it had is consumed by
   the others again).
6. migration (`--protocol both` or `migration`), under a steady stream: a consumer-protocol
   member joins a running classic group of three (the online upgrade: time to its first
   record, and until the four are converged), then leaves (the downgrade: time until its
   partitions are consumed again, and until the three classic members are converged).

Prints one line per step and a total; `--json PATH` writes them too. Not a test: nothing asserts
on time. `bench/run.sh rebalance` builds the release binary and runs this.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from bench import default_binary, free_port
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

now = time.monotonic


def start_broker(binary: Path, storage: str, extra: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    command = [str(binary), "broker", "--listen", bootstrap, "--advertised-listener", bootstrap,
               "--storage", storage, *extra]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = now() + 20
    while now() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process, bootstrap
        except OSError:
            time.sleep(0.02)
    process.kill()
    raise SystemExit("broker did not start")


class Member(threading.Thread):
    """One consumer polled by its own thread; commands (subscribe, close) go through a queue so
    only that thread touches the consumer."""

    def __init__(self, bootstrap: str, group: str, topics: list[str], name: str, protocol: str):
        super().__init__(daemon=True)
        self.name = name
        self.assignment: frozenset = frozenset()
        self.first_record_at: float | None = None
        # When each partition's latest record arrived.
        self.last_record_at: dict[tuple[str, int], float] = {}
        self.commands: queue.Queue = queue.Queue()
        self.stopped = threading.Event()
        if protocol == "consumer":
            group_settings = {"group.protocol": "consumer"}
        else:
            group_settings = {"partition.assignment.strategy": "cooperative-sticky"}
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "client.id": name,
            "auto.offset.reset": "earliest",
            "log_level": 3,
            **group_settings,
        })
        self.consumer.subscribe(topics)

    def run(self) -> None:
        while True:
            try:
                command, argument = self.commands.get_nowait()
            except queue.Empty:
                command = None
            if command == "subscribe":
                self.consumer.subscribe(argument)
            elif command == "close":
                self.consumer.close()
                self.assignment = frozenset()
                self.stopped.set()
                return
            message = self.consumer.poll(0.05)
            if message is not None and message.error() is None:
                self.first_record_at = self.first_record_at or now()
                self.last_record_at[(message.topic(), message.partition())] = now()
            self.assignment = frozenset((tp.topic, tp.partition) for tp in self.consumer.assignment())


def converged(members: list[Member], partitions: set) -> bool:
    assignments = [member.assignment for member in members]
    if any(not assignment for assignment in assignments):
        return False
    union = set().union(*assignments)
    return union == partitions and sum(len(a) for a in assignments) == len(partitions)


def wait_converged(members: list[Member], partitions: set, since: float, timeout: float) -> float:
    """Seconds from `since` until the group converged and stayed so for 0.5 s."""
    stable_from = None
    deadline = now() + timeout
    while now() < deadline:
        if converged(members, partitions):
            stable_from = stable_from or now()
            if now() - stable_from >= 0.5:
                return stable_from - since
        else:
            stable_from = None
        time.sleep(0.01)
    raise SystemExit(f"no convergence within {timeout} s: {[sorted(m.assignment) for m in members]}")


def create_topics(bootstrap: str, topics: dict[str, int]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(t, num_partitions=n, replication_factor=1) for t, n in topics.items()])
    for future in futures.values():
        future.result(timeout=30)


def produce_some(bootstrap: str, topic: str, partitions: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for partition in range(partitions):
        for index in range(10):
            producer.produce(topic, value=b"record-%d" % index, partition=partition)
    producer.flush(30)


class SteadyProducer(threading.Thread):
    """Writes a record to every partition of a topic every 10 ms until stopped, so a member
    that gets a partition has something to read at once."""

    def __init__(self, bootstrap: str, topic: str, partitions: int):
        super().__init__(daemon=True)
        self.topic, self.partitions = topic, partitions
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 2})
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.01):
            for partition in range(self.partitions):
                self.producer.produce(self.topic, value=b"steady", partition=partition)
            self.producer.poll(0)
        self.producer.flush(30)


def wait_for(condition, timeout: float, what: str) -> float:
    deadline = now() + timeout
    while now() < deadline:
        if condition():
            return now()
        time.sleep(0.002)
    raise SystemExit(f"timed out waiting for {what}")


def recorder(steps: list[dict], protocol: str):
    """A function that records one timed step of `protocol` in `steps` and prints it."""

    def record(name: str, seconds: float, **extra) -> None:
        steps.append({"step": name, "protocol": protocol, "seconds": round(seconds, 3), **extra})
        print(f"{protocol:<9} {name:<40} {seconds:7.2f} s", flush=True)

    return record


def close_all(members: list[Member]) -> None:
    for member in members:
        member.commands.put(("close", None))
    for member in members:
        member.stopped.wait(30)


def join_and_leave(bootstrap: str, partitions: int, timeout: float, prefix: str,
                   stay_protocol: str, join_protocol: str) -> dict:
    """Under a steady stream of records: three members of `stay_protocol` converge, a fourth
    of `join_protocol` joins, then leaves. Returns the seconds from its start to its first
    record (`first_record`) and to the four converged (`joined`), and from its close until
    every partition it had is consumed by the others again (`taken_over`) and the three are
    converged (`left`), with how many partitions it gave up (`given_up`)."""
    topic = f"{prefix}-{uuid.uuid4().hex[:8]}"
    create_topics(bootstrap, {topic: partitions})
    everything = {(topic, p) for p in range(partitions)}
    producer = SteadyProducer(bootstrap, topic, partitions)
    producer.start()
    group = f"group-{uuid.uuid4().hex[:8]}"
    stayers = [Member(bootstrap, group, [topic], f"{prefix}-{i}", stay_protocol) for i in range(3)]
    for member in stayers:
        member.start()
    wait_converged(stayers, everything, now(), timeout)
    joiner = Member(bootstrap, group, [topic], f"{prefix}-joiner", join_protocol)
    started = now()
    joiner.start()
    got = wait_for(lambda: joiner.first_record_at is not None, timeout, "the new member's first record")
    timings = {"first_record": got - started}
    timings["joined"] = wait_converged(stayers + [joiner], everything, started, timeout)
    given_up = set(joiner.assignment)
    started = now()
    joiner.commands.put(("close", None))

    def taken_over() -> bool:
        return all(any(m.last_record_at.get(tp, 0) > started for m in stayers) for tp in given_up)

    timings["taken_over"] = wait_for(taken_over, timeout, "the leaver's partitions consumed again") - started
    timings["left"] = wait_converged(stayers, everything, started, timeout)
    timings["given_up"] = len(given_up)
    producer.stop.set()
    producer.join(30)
    close_all(stayers)
    return timings


def run(bootstrap: str, partitions: int, members_count: int, timeout: float, protocol: str) -> list[dict]:
    steps: list[dict] = []
    record = recorder(steps, protocol)

    def member_of(group: str, topics: list[str], name: str) -> Member:
        return Member(bootstrap, group, topics, name, protocol)

    # 1. A new three-member group: time to the first record and to convergence.
    first = f"first-{uuid.uuid4().hex[:8]}"
    create_topics(bootstrap, {first: partitions})
    produce_some(bootstrap, first, partitions)
    group = f"group-{uuid.uuid4().hex[:8]}"
    started = now()
    trio = [member_of(group, [first], f"trio-{i}") for i in range(3)]
    for member in trio:
        member.start()
    all_first = {(first, p) for p in range(partitions)}
    deadline = now() + timeout
    while now() < deadline and not any(m.first_record_at for m in trio):
        time.sleep(0.005)
    first_record = min(m.first_record_at for m in trio if m.first_record_at) - started
    record("new 3-member group: first record", first_record)
    record("new 3-member group: converged", wait_converged(trio, all_first, started, timeout))
    close_all(trio)

    # 2-4. Eight members joining one at a time, a subscription change, leaving one at a time.
    main, extra = f"main-{uuid.uuid4().hex[:8]}", f"extra-{uuid.uuid4().hex[:8]}"
    create_topics(bootstrap, {main: partitions, extra: partitions})
    group = f"group-{uuid.uuid4().hex[:8]}"
    main_partitions = {(main, p) for p in range(partitions)}
    both = main_partitions | {(extra, p) for p in range(partitions)}
    members: list[Member] = []
    total_started = now()
    for index in range(members_count):
        member = member_of(group, [main], f"member-{index}")
        started = now()
        member.start()
        members.append(member)
        record(f"join: member {index + 1} of {members_count}", wait_converged(members, main_partitions, started, timeout))
    for topics, partitions_now, name in [([main, extra], both, "subscribe to a second topic"),
                                         ([main], main_partitions, "unsubscribe from it")]:
        started = now()
        for member in members:
            member.commands.put(("subscribe", topics))
        record(name, wait_converged(members, partitions_now, started, timeout))
    while len(members) > 1:
        leaving = members.pop()
        started = now()
        leaving.commands.put(("close", None))
        record(f"leave: {len(members)} remain", wait_converged(members, main_partitions, started, timeout))
    record("joins, subscription changes and leaves", now() - total_started)
    close_all(members)

    # 5. Hand-over under a steady stream: a fourth member joins three, then leaves.
    timings = join_and_leave(bootstrap, partitions, timeout, "steady", protocol, protocol)
    record("hand-over: join to first record", timings["first_record"])
    record("hand-over: leave to partitions consumed", timings["taken_over"], partitions=timings["given_up"])
    return steps


def migrate(bootstrap: str, partitions: int, timeout: float) -> list[dict]:
    """Phase 6: a consumer-protocol member joins a running classic group and leaves again."""
    steps: list[dict] = []
    record = recorder(steps, "migration")
    timings = join_and_leave(bootstrap, partitions, timeout, "migrate", "classic", "consumer")
    record("upgrade: join to first record", timings["first_record"])
    record("upgrade: converged", timings["joined"])
    record("downgrade: leave to partitions consumed", timings["taken_over"], partitions=timings["given_up"])
    record("downgrade: converged", timings["left"])
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", type=Path, default=default_binary())
    parser.add_argument("--engine", choices=["memory", "sqlite", "postgres", "s3"], default="memory")
    parser.add_argument("--storage", help="storage URL (overrides --engine)")
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--protocol", choices=["classic", "consumer", "both", "migration"], default="both")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per step before giving up")
    parser.add_argument("--broker-arg", action="append", default=[], help="extra broker flag (repeatable)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="skiff-rebalance-"))
    storage = args.storage
    if storage is None:
        if args.engine == "memory":
            storage = "memory://"
        elif args.engine == "sqlite":
            storage = f"sqlite://{workdir}/bench.db"
        elif args.engine == "postgres":
            storage = os.environ.get("SKIFF_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
        else:
            endpoint = os.environ.get("SKIFF_TEST_S3_ENDPOINT")
            if not endpoint:
                raise SystemExit("--engine s3 needs SKIFF_TEST_S3_ENDPOINT (eval \"$(scripts/services.sh)\")")
            for name, value in [("AWS_ENDPOINT_URL", endpoint), ("AWS_ALLOW_HTTP", "true"),
                                ("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"),
                                ("AWS_REGION", "us-east-1")]:
                os.environ.setdefault(name, value)
            storage = f"s3://skiff-test/rebalance-{uuid.uuid4().hex[:8]}"
    process, bootstrap = start_broker(args.binary, storage, args.broker_arg)
    try:
        print(f"skiff {args.binary} on {storage}, {args.partitions} partitions, broker args {args.broker_arg}")
        protocols = {"both": ["classic", "consumer"], "migration": []}.get(args.protocol, [args.protocol])
        steps = [step for protocol in protocols
                 for step in run(bootstrap, args.partitions, args.members, args.timeout, protocol)]
        if args.protocol in ("both", "migration"):
            steps += migrate(bootstrap, args.partitions, args.timeout)
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps({"storage": storage.split("?")[0], "steps": steps}, indent=2))


if __name__ == "__main__":
    sys.exit(main())
