"""Cooperative (incremental) rebalancing with real confluent-kafka consumers: eight members
joining one at a time and leaving one at a time reach a stable, complete assignment after every
step, and commits made from the rebalance callbacks (before partitions are given up) succeed,
as clients that commit there depend on. How long each step takes is measured by
bench/rebalance_bench.py, not asserted here."""

from __future__ import annotations

from confluent_kafka import KafkaException, TopicPartition

from group_helpers import GROUP_BROKER_ARGS, Member, wait_balanced
from helpers import admin, create_topic, produce, unique, TIMEOUT

PARTITIONS = 12
MEMBERS = 8


def test_eight_cooperative_members_converge_after_each_join_and_leave(broker_factory, engine):
    broker = broker_factory(engine, *GROUP_BROKER_ARGS)
    topic, group = unique("coop"), unique("group")
    create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    conf = {"partition.assignment.strategy": "cooperative-sticky"}
    members: list[Member] = []
    try:
        for index in range(MEMBERS):
            members.append(Member(broker.bootstrap, group, topic, f"m{index}", **conf))
            wait_balanced(members, PARTITIONS)
            sizes = sorted(len(m.assigned()) for m in members)
            assert sizes[-1] - sizes[0] <= 1, f"after {index + 1} joins: {sizes}"
        for leaving in reversed(members[1:]):
            kept = {m.name: m.assigned() for m in members if not m.closed and m is not leaving}
            leaving.close()
            wait_balanced(members, PARTITIONS)
            for member in members:
                if not member.closed:
                    assert kept[member.name] <= member.assigned(), "a member lost partitions on a leave"
        assert members[0].assigned() == set(range(PARTITIONS))
    finally:
        for member in members:
            member.close()


class CallbackCommitter(Member):
    """Commits the position of every partition it gives up from inside the revoke callback,
    synchronously, and remembers any commit the broker refused."""

    def __init__(self, *args, **kwargs):
        self.commit_errors: list[str] = []
        self.callback_commits = 0
        super().__init__(*args, **kwargs)

    def _on_revoke(self, consumer, partitions):
        super()._on_revoke(consumer, partitions)
        positions = [tp for tp in consumer.position(partitions) if tp.offset >= 0]
        if not positions:
            return
        try:
            consumer.commit(offsets=positions, asynchronous=False)
            self.callback_commits += 1
        except KafkaException as error:
            self.commit_errors.append(f"{self.name}: {error}")


def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    request = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    from confluent_kafka import ConsumerGroupTopicPartitions

    futures = admin(bootstrap).list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group, request)], request_timeout=TIMEOUT
    )
    result = futures[group].result(timeout=TIMEOUT)
    return {tp.partition: tp.offset for tp in result.topic_partitions}


def test_commits_from_the_revoke_callback_succeed(broker_factory, engine):
    broker = broker_factory(engine, *GROUP_BROKER_ARGS)
    topic, group = unique("callback-commit"), unique("group")
    create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    produce(broker.bootstrap, topic, [{"value": b"v%d" % i, "partition": i % PARTITIONS} for i in range(120)])
    conf = {"partition.assignment.strategy": "cooperative-sticky"}
    members: list[CallbackCommitter] = []
    try:
        for index in range(3):
            members.append(CallbackCommitter(broker.bootstrap, group, topic, f"m{index}", **conf))
            wait_balanced(members, PARTITIONS)
        # Each join took partitions from the members before it: they committed in on_revoke.
        assert sum(m.callback_commits for m in members) >= 2
        members[1].close()  # gives up all it owns: commits them in its revoke callback
        wait_balanced(members, PARTITIONS)
        errors = [error for m in members for error in m.commit_errors]
        assert not errors, errors
        for member in members:
            member.close()
        # Every record was consumed and every owner committed on the way out.
        consumed = sum(len(m.records) for m in members)
        assert consumed >= 120
        assert committed_offsets(broker.bootstrap, group, topic) == {p: 10 for p in range(PARTITIONS)}
    finally:
        for member in members:
            member.close()
