"""Consumer groups seen by tools: AdminClient listing, describing, reading and deleting groups and
their offsets; kcat's balanced consumer (-G, Debian's librdkafka); `skiff consume --group`."""

from __future__ import annotations

import time

from confluent_kafka import ConsumerGroupState, ConsumerGroupTopicPartitions, TopicPartition

from group_helpers import GROUP_BROKER_ARGS, Member, consumed, poll_until, wait_balanced
from helpers import TIMEOUT, admin, create_topic, error_code, kcat, produce, unique, wait_futures
from test_cli import lines_input, lines_of, skiff

PARTITIONS = 4
NON_EMPTY_GROUP = 68
GROUP_ID_NOT_FOUND = 69


def listed_groups(bootstrap: str, **kwargs) -> dict:
    """group id -> ConsumerGroupListing."""
    result = admin(bootstrap).list_consumer_groups(request_timeout=TIMEOUT, **kwargs).result(TIMEOUT)
    assert not result.errors, result.errors
    return {listing.group_id: listing for listing in result.valid}


def committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(PARTITIONS)])
    futures = admin(bootstrap).list_consumer_group_offsets([request], request_timeout=TIMEOUT)
    answer = wait_futures(futures)[group]
    assert error_code(answer) is None, answer
    return {tp.partition: tp.offset for tp in answer.topic_partitions}


def wait_for(condition, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.2)


def test_admin_lists_describes_reads_and_deletes_groups(broker_factory, engine):
    broker = broker_factory(engine, *GROUP_BROKER_ARGS)
    topic, group = unique("admin-groups"), unique("group")
    create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    produce(broker.bootstrap, topic, [{"value": f"v{i}".encode(), "partition": i % PARTITIONS} for i in range(40)])
    members = [
        Member(broker.bootstrap, group, topic, "alpha", commit_each=True),
        Member(broker.bootstrap, group, topic, "beta", commit_each=True, **{"group.instance.id": "beta-1"}),
    ]
    try:
        wait_balanced(members, PARTITIONS)
        poll_until(members, lambda: len(consumed(members)) >= 40, "40 records")

        assert listed_groups(broker.bootstrap)[group].state == ConsumerGroupState.STABLE
        assert group in listed_groups(broker.bootstrap, states={ConsumerGroupState.STABLE})
        assert group not in listed_groups(broker.bootstrap, states={ConsumerGroupState.EMPTY})

        description = wait_futures(admin(broker.bootstrap).describe_consumer_groups([group], request_timeout=TIMEOUT))[group]
        assert error_code(description) is None, description
        assert description.state == ConsumerGroupState.STABLE
        assert description.partition_assignor == "range"
        assert not description.is_simple_consumer_group
        by_client = {member.client_id: member for member in description.members}
        assert sorted(by_client) == ["alpha", "beta"]
        assert by_client["beta"].group_instance_id == "beta-1"
        assigned = sorted(tp.partition for m in description.members for tp in m.assignment.topic_partitions)
        assert assigned == list(range(PARTITIONS))

        assert committed(broker.bootstrap, group, topic) == {p: 10 for p in range(PARTITIONS)}

        refused = wait_futures(admin(broker.bootstrap).delete_consumer_groups([group], request_timeout=TIMEOUT))[group]
        assert error_code(refused) == NON_EMPTY_GROUP
    finally:
        for member in members:
            member.close()

    # beta is static: its close sends no LeaveGroup, so the group empties when its session ends.
    wait_for(lambda: listed_groups(broker.bootstrap)[group].state == ConsumerGroupState.EMPTY, "an empty group", 20)
    deleted = wait_futures(admin(broker.bootstrap).delete_consumer_groups([group], request_timeout=TIMEOUT))[group]
    assert error_code(deleted) is None, deleted
    assert group not in listed_groups(broker.bootstrap)
    assert all(offset < 0 for offset in committed(broker.bootstrap, group, topic).values())
    again = wait_futures(admin(broker.bootstrap).delete_consumer_groups([group], request_timeout=TIMEOUT))[group]
    assert error_code(again) == GROUP_ID_NOT_FOUND


def test_a_group_with_only_committed_offsets_is_an_empty_group(broker_factory):
    broker = broker_factory("sqlite", *GROUP_BROKER_ARGS)
    topic, group = unique("offsets-only"), unique("group")
    create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    produce(broker.bootstrap, topic, [{"value": b"x", "partition": p} for p in range(PARTITIONS)])
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 1), TopicPartition(topic, 2, 1)])
    altered = wait_futures(admin(broker.bootstrap).alter_consumer_group_offsets([request], request_timeout=TIMEOUT))
    assert error_code(altered[group]) is None, altered

    listing = listed_groups(broker.bootstrap)[group]
    assert listing.state == ConsumerGroupState.EMPTY
    assert group in listed_groups(broker.bootstrap, states={ConsumerGroupState.EMPTY})
    assert committed(broker.bootstrap, group, topic) == {0: 1, 1: -1001, 2: 1, 3: -1001}
    description = wait_futures(admin(broker.bootstrap).describe_consumer_groups([group], request_timeout=TIMEOUT))[group]
    assert description.state == ConsumerGroupState.EMPTY and not description.members

    broker.restart()  # all of it is in storage
    assert committed(broker.bootstrap, group, topic) == {0: 1, 1: -1001, 2: 1, 3: -1001}
    deleted = wait_futures(admin(broker.bootstrap).delete_consumer_groups([group], request_timeout=TIMEOUT))[group]
    assert error_code(deleted) is None, deleted
    assert group not in listed_groups(broker.bootstrap)


def test_kcat_balanced_consumer(broker_factory, engine):
    broker = broker_factory(engine, *GROUP_BROKER_ARGS)
    topic, group = unique("kcat-group"), unique("group")
    create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    values = [f"line-{i}" for i in range(50)]
    produce(broker.bootstrap, topic, [{"value": v.encode(), "partition": i % PARTITIONS} for i, v in enumerate(values)])
    result = kcat(
        "-b", broker.bootstrap, "-G", group, "-o", "beginning", "-e", "-q",
        "-X", "fetch.wait.max.ms=100", "-X", "enable.auto.commit=true", "-X", "auto.commit.interval.ms=100",
        topic,
    )
    assert sorted(result.stdout.decode().split()) == sorted(values)
    # kcat committed what it read: a second run of the group has nothing left.
    again = kcat("-b", broker.bootstrap, "-G", group, "-e", "-q", "-X", "fetch.wait.max.ms=100", topic)
    assert again.stdout.decode().split() == []


def test_skiff_consume_group_resumes_across_a_broker_restart(broker_factory):
    broker = broker_factory("sqlite", *GROUP_BROKER_ARGS)
    topic, group = unique("cli-group"), unique("group")
    skiff(broker.bootstrap, "produce", topic, "--partition", "0", input=lines_input([str(i) for i in range(10)]))
    args = ("consume", topic, "--group", group, "--from-beginning")
    assert lines_of(skiff(broker.bootstrap, *args, "--max-messages", "3")) == ["0", "1", "2"]
    broker.restart()
    assert lines_of(skiff(broker.bootstrap, *args, "--timeout-ms", "1000")) == [str(i) for i in range(3, 10)]
    assert listed_groups(broker.bootstrap)[group].state == ConsumerGroupState.EMPTY
