"""Consumer-group members for the end-to-end tests: confluent-kafka consumers that subscribe in a
group, remember every record and every rebalance callback, and are polled together from one
thread so tests stay deterministic about who polls when.

Brokers in these tests run with `--group-initial-rebalance-delay-ms 0`, and members heartbeat
every 500 ms, so rebalances take well under a second; every wait still has a timeout.
"""

from __future__ import annotations

import collections
import time

from confluent_kafka import Consumer, KafkaError, KafkaException

from helpers import CLIENT_LOG, TIMEOUT, TRANSIENT_CONSUMER_ERRORS, produce

# Brokers for group tests form groups at once.
GROUP_BROKER_ARGS = ("--group-initial-rebalance-delay-ms", "0")
# Consumer-protocol (KIP-848) members heartbeat as often as classic ones here, and a member
# that stops is out after 10 s, as with the classic members' session.timeout.ms.
CONSUMER_BROKER_ARGS = GROUP_BROKER_ARGS + (
    "--group-consumer-heartbeat-interval-ms", "500",
    "--group-consumer-session-timeout-ms", "10000",
)
# What makes a confluent-kafka consumer use the consumer protocol.
CONSUMER_PROTOCOL = {"group.protocol": "consumer"}
STRATEGIES = ["range", "cooperative-sticky"]


class Member:
    """One consumer in a group. `commit_each` commits every record synchronously right after it
    is polled (rebalance callbacks only run inside poll, so a record is committed before its
    partition can move); a commit refused mid-rebalance is remembered in `uncommitted`."""

    def __init__(self, bootstrap: str, group: str, topic: str, name: str, commit_each: bool = False, **conf):
        self.name = name
        self.commit_each = commit_each
        self.records: list[tuple[int, int, bytes]] = []  # (partition, offset, value)
        self.uncommitted: set[tuple[int, int]] = set()
        self.assigned_calls = 0
        self.callbacks: list[tuple[str, float, list[int]]] = []  # for failure messages
        self.revoked_calls = 0
        settings = {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "client.id": name,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 500,
            "fetch.wait.max.ms": 100,
            "socket.timeout.ms": 10000,
            **CLIENT_LOG,
        }
        settings.update(conf)
        if settings.get("group.protocol") == "consumer":
            # KIP-848: the broker's group.consumer.* settings decide these; librdkafka refuses
            # them from the client.
            settings.pop("session.timeout.ms")
            settings.pop("heartbeat.interval.ms")
        self.consumer = Consumer(settings)
        self.consumer.subscribe([topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
        self.closed = False

    def _on_assign(self, consumer, partitions):
        self.assigned_calls += 1
        self.callbacks.append(("assign", time.monotonic(), sorted(tp.partition for tp in partitions)))

    def _on_revoke(self, consumer, partitions):
        self.revoked_calls += 1
        self.callbacks.append(("revoke", time.monotonic(), sorted(tp.partition for tp in partitions)))

    def poll_once(self, timeout: float = 0.02) -> None:
        msg = self.consumer.poll(timeout)
        if msg is None:
            return
        if msg.error():
            code = msg.error().code()
            if code == KafkaError._PARTITION_EOF or code in TRANSIENT_CONSUMER_ERRORS:
                return
            raise AssertionError(f"{self.name}: consumer error: {msg.error()}")
        self.records.append((msg.partition(), msg.offset(), msg.value()))
        if self.commit_each:
            try:
                self.consumer.commit(message=msg, asynchronous=False)
            except KafkaException:
                self.uncommitted.add((msg.partition(), msg.offset()))

    def assigned(self) -> set[int]:
        return {tp.partition for tp in self.consumer.assignment()}

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.consumer.close()


def poll_until(members: list[Member], condition, what: str, timeout: float = TIMEOUT) -> None:
    """Polls every open member in turn until `condition()` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for member in members:
            if not member.closed:
                member.poll_once()
        if condition():
            return
    state = {m.name: sorted(m.assigned()) for m in members if not m.closed}
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; assignments: {state}")


def balanced(members: list[Member], partitions: int):
    """A condition: the open members own every partition exactly once, each at least one."""

    def check() -> bool:
        open_members = [m for m in members if not m.closed]
        owned = [m.assigned() for m in open_members]
        flat = [p for parts in owned for p in parts]
        return sorted(flat) == list(range(partitions)) and all(owned)

    return check


def wait_balanced(members: list[Member], partitions: int, timeout: float = TIMEOUT) -> None:
    poll_until(members, balanced(members, partitions), "a balanced assignment", timeout)
    # Stay balanced for a few polls: a cooperative rebalance may still be finishing.
    stable_until = time.monotonic() + 1.0
    check = balanced(members, partitions)
    while time.monotonic() < stable_until:
        for member in members:
            if not member.closed:
                member.poll_once()
        if not check():
            poll_until(members, check, "a balanced assignment", timeout)
            stable_until = time.monotonic() + 1.0


def consumed(members: list[Member]) -> list[tuple[int, int, bytes]]:
    return [record for member in members for record in member.records]


def records_for(prefix: str, count: int, partitions: int = 6) -> list[dict]:
    """`count` records spread evenly over the partitions."""
    return [{"value": f"{prefix}-{i}".encode(), "partition": i % partitions} for i in range(count)]


def values_of(records: list[dict]) -> list[bytes]:
    return [record["value"] for record in records]


def assert_each_once(members: list[Member], expected: list[bytes]) -> None:
    counts = collections.Counter(value for _, _, value in consumed(members))
    duplicates = {value: n for value, n in counts.items() if n > 1}
    assert not duplicates, f"consumed more than once: {sorted(duplicates)[:10]}"
    assert sorted(counts) == sorted(expected)


def assert_three_share_a_topic_exactly_once(bootstrap: str, topic: str, members: list[Member]) -> None:
    """Three members of one group on a 6-partition topic: two partitions each, 600 records
    consumed once each, every one by the member that owns its partition."""
    wait_balanced(members, 6)
    assert all(len(m.assigned()) == 2 for m in members), {m.name: m.assigned() for m in members}
    records = records_for("r", 600)
    produce(bootstrap, topic, records)
    poll_until(members, lambda: len(consumed(members)) >= 600, "600 records")
    assert_each_once(members, values_of(records))
    for member in members:
        partitions = {partition for partition, _, _ in member.records}
        assert partitions <= member.assigned(), f"{member.name} read partitions it does not own"
