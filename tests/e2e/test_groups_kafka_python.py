"""kafka-python in a consumer group: a second client implementation of the group protocol (its own
JoinGroup/SyncGroup versions, heartbeat thread and assignor), sharing partitions with a librdkafka
member of the same group. Each client polls in its own thread, as applications do: kafka-python
blocks inside poll() while it joins."""

from __future__ import annotations

import collections
import threading
import time

from kafka import KafkaConsumer
from kafka.coordinator.assignors.range import RangePartitionAssignor

from group_helpers import GROUP_BROKER_ARGS, Member, consumed
from helpers import create_topic, produce, unique

PARTITIONS = 4


class PythonMember(threading.Thread):
    """A kafka-python consumer polling in its own thread until stopped."""

    def __init__(self, bootstrap: str, group: str, topic: str):
        super().__init__(daemon=True)
        self.consumer = KafkaConsumer(
            bootstrap_servers=[bootstrap],
            group_id=group,
            client_id="kafka-python",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            partition_assignment_strategy=[RangePartitionAssignor],
            session_timeout_ms=10000,
            heartbeat_interval_ms=500,
            request_timeout_ms=30000,
            fetch_max_wait_ms=100,
        )
        self.consumer.subscribe([topic])
        self.records: list = []
        self.owned: set[int] = set()
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                for batch in self.consumer.poll(timeout_ms=50).values():
                    self.records.extend(batch)
                self.owned = {tp.partition for tp in self.consumer.assignment()}
        except BaseException as error:  # reported by the test thread
            self.error = error
        finally:
            self.consumer.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join(15)
        assert self.error is None, f"kafka-python failed: {self.error!r}"


def test_kafka_python_and_librdkafka_share_a_group(broker_factory):
    broker = broker_factory("sqlite", *GROUP_BROKER_ARGS)
    topic, group = unique("mixed"), unique("group")
    create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    python_member = PythonMember(broker.bootstrap, group, topic)
    python_member.start()
    rdkafka_member = Member(broker.bootstrap, group, topic, "rdkafka")
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            rdkafka_member.poll_once()
            python_owned, rdkafka_owned = python_member.owned, rdkafka_member.assigned()
            disjoint = python_owned and rdkafka_owned and not python_owned & rdkafka_owned
            if disjoint and python_owned | rdkafka_owned == set(range(PARTITIONS)):
                break
        else:
            raise AssertionError(f"never shared: {python_member.owned} and {rdkafka_member.assigned()}")
        records = [{"value": f"m{i}".encode(), "partition": i % PARTITIONS} for i in range(200)]
        produce(broker.bootstrap, topic, records)
        deadline = time.monotonic() + 30
        while len(python_member.records) + len(consumed([rdkafka_member])) < 200 and time.monotonic() < deadline:
            rdkafka_member.poll_once()
        python_values = [r.value for r in python_member.records]
        counts = collections.Counter(python_values + [value for _, _, value in consumed([rdkafka_member])])
        assert sorted(counts) == sorted(r["value"] for r in records)
        assert max(counts.values()) == 1
        assert {r.partition for r in python_member.records} == python_member.owned
    finally:
        python_member.stop()
        rdkafka_member.close()
