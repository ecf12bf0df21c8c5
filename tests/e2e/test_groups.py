"""Classic consumer groups with real clients: sharing partitions, rebalancing on join and leave,
resuming committed offsets, static membership, several brokers on one storage, and session
expiry of a consumer that died without leaving. Each flow runs with the eager `range` assignor
and with `cooperative-sticky` (incremental rebalancing, driven by the clients)."""

from __future__ import annotations

import collections
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading

import pytest
from confluent_kafka import ConsumerGroupState

from group_helpers import (
    GROUP_BROKER_ARGS,
    STRATEGIES,
    Member,
    assert_each_once,
    assert_three_share_a_topic_exactly_once,
    balanced,
    consumed,
    poll_until,
    records_for,
    values_of,
    wait_balanced,
)
from helpers import TIMEOUT, admin, create_topic, produce, unique, wait_futures

PARTITIONS = 6


def assert_no_loss_or_duplicate_past_commits(members: list[Member], expected: list[bytes]) -> None:
    """Every record consumed; a record consumed twice must be one whose commit was refused."""
    seen: dict[bytes, list[tuple[str, int, int]]] = collections.defaultdict(list)
    refused = set().union(*(m.uncommitted for m in members))
    for member in members:
        for partition, offset, value in member.records:
            seen[value].append((member.name, partition, offset))
    missing = set(expected) - set(seen)
    assert not missing, f"{len(missing)} records never consumed, e.g. {sorted(missing)[:5]}"
    for value, where in seen.items():
        if len(where) > 1:
            first = where[0]
            assert (first[1], first[2]) in refused, f"{value!r} consumed twice although committed: {where}"


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_three_consumers_share_a_topic_exactly_once(broker_factory, engine, strategy):
    broker = broker_factory(engine, *GROUP_BROKER_ARGS)
    topic, group = unique("shared"), unique("group")
    create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    conf = {"partition.assignment.strategy": strategy}
    members = [Member(broker.bootstrap, group, topic, f"m{i}", **conf) for i in range(3)]
    try:
        assert_three_share_a_topic_exactly_once(broker.bootstrap, topic, members)
    finally:
        for member in members:
            member.close()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_rebalance_on_join_and_leave(broker_factory, engine, strategy):
    broker = broker_factory(engine, *GROUP_BROKER_ARGS)
    topic, group = unique("rebalance"), unique("group")
    create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    conf = {"partition.assignment.strategy": strategy}
    produced: list[bytes] = []
    members = [Member(broker.bootstrap, group, topic, "m0", commit_each=True, **conf)]
    try:
        wait_balanced(members, PARTITIONS)
        assert members[0].assigned() == set(range(PARTITIONS))
        history = [{m.name: frozenset(m.assigned()) for m in members}]

        def round_of(prefix: str) -> None:
            records = records_for(prefix, 120)
            produce(broker.bootstrap, topic, records)
            produced.extend(values_of(records))
            poll_until(
                members,
                lambda: set(produced) <= {value for _, _, value in consumed(members)},
                f"every record up to {prefix}",
            )

        round_of("a")
        for name in ("m1", "m2"):  # two joins, a round of records after each
            members.append(Member(broker.bootstrap, group, topic, name, commit_each=True, **conf))
            wait_balanced(members, PARTITIONS)
            history.append({m.name: frozenset(m.assigned()) for m in members if not m.closed})
            round_of(f"after-{name}")
        members[0].close()  # a leave: m1 and m2 take over m0's partitions
        wait_balanced(members, PARTITIONS)
        history.append({m.name: frozenset(m.assigned()) for m in members if not m.closed})
        round_of("after-leave")

        assert [len(h) for h in history] == [1, 2, 3, 2]
        assert all(len(parts) == 2 for parts in history[2].values()), history[2]
        assert all(len(parts) == 3 for parts in history[3].values()), history[3]
        assert_no_loss_or_duplicate_past_commits(members, produced)
    finally:
        for member in members:
            member.close()


def test_offsets_resume_after_every_consumer_restarts(broker_factory, engine):
    broker = broker_factory(engine, *GROUP_BROKER_ARGS)
    topic, group = unique("resume"), unique("group")
    create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    first = records_for("first", 300)
    produce(broker.bootstrap, topic, first)
    members = [Member(broker.bootstrap, group, topic, f"m{i}", commit_each=True) for i in range(3)]
    try:
        poll_until(members, lambda: len(consumed(members)) >= 300, "the first 300 records")
        assert_each_once(members, values_of(first))
    finally:
        for member in members:
            member.close()
    second = records_for("second", 120)
    produce(broker.bootstrap, topic, second)
    if engine in ("sqlite", "s3"):
        broker.restart()  # committed offsets live in storage, not in the broker
    restarted = [Member(broker.bootstrap, group, topic, f"n{i}", commit_each=True) for i in range(3)]
    try:
        wanted = set(values_of(second))
        poll_until(
            restarted,
            lambda: wanted <= {value for _, _, value in consumed(restarted)},
            "the second 120 records",
        )
        # A last record on every partition: once the members have it, they have been given all
        # that came before it, so a committed record coming back would have shown by then.
        last = records_for("last", PARTITIONS)
        produce(broker.bootstrap, topic, last)
        wanted |= set(values_of(last))
        poll_until(
            restarted,
            lambda: set(values_of(last)) <= {value for _, _, value in consumed(restarted)},
            "the last record of every partition",
        )
        assert {value for _, _, value in consumed(restarted)} == wanted, "nothing committed comes back"
        assert_no_loss_or_duplicate_past_commits(restarted, values_of(second) + values_of(last))
    finally:
        for member in restarted:
            member.close()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_static_member_restarts_without_a_rebalance(broker_factory, strategy):
    broker = broker_factory("sqlite", *GROUP_BROKER_ARGS)
    topic, group = unique("static"), unique("group")
    create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    conf = {"partition.assignment.strategy": strategy, "session.timeout.ms": 15000}
    a = Member(broker.bootstrap, group, topic, "a", **{**conf, "group.instance.id": "instance-a"})
    b = Member(broker.bootstrap, group, topic, "b", **{**conf, "group.instance.id": "instance-b"})
    members = [a, b]
    try:
        wait_balanced(members, PARTITIONS)
        owned_by_a, owned_by_b = a.assigned(), b.assigned()
        old_member_id = a.consumer.memberid()
        b_callbacks = (b.assigned_calls, b.revoked_calls)

        a.close()  # a static member's close sends no LeaveGroup: its place is kept
        restarted = Member(broker.bootstrap, group, topic, "a2", **{**conf, "group.instance.id": "instance-a"})
        members = [restarted, b]
        poll_until(members, lambda: restarted.assigned() == owned_by_a, "the restarted member's old partitions")
        # No rebalance started: a rebalance the rejoin began would show as the group leaving
        # Stable until b rejoins, which takes b a heartbeat; the group is Stable now with the new
        # member id under instance-a, holding a's old partitions.
        description = wait_futures(admin(broker.bootstrap).describe_consumer_groups([group], request_timeout=TIMEOUT))[group]
        assert description.state == ConsumerGroupState.STABLE, description.state
        by_instance = {member.group_instance_id: member for member in description.members}
        assert sorted(by_instance) == ["instance-a", "instance-b"]
        assert by_instance["instance-a"].member_id == restarted.consumer.memberid()
        assert {tp.partition for tp in by_instance["instance-a"].assignment.topic_partitions} == owned_by_a
        assert restarted.consumer.memberid() != old_member_id
        assert b.assigned() == owned_by_b
        assert (b.assigned_calls, b.revoked_calls) == b_callbacks, f"b saw a rebalance: {b.callbacks}"

        records = records_for("static", 60)
        produce(broker.bootstrap, topic, records)
        poll_until(members, lambda: len(consumed(members)) >= 60, "60 records")
        assert_each_once(members, values_of(records))
    finally:
        for member in members:
            member.close()


@pytest.mark.parametrize("shared", ["sqlite", "s3"])
def test_consumers_on_two_brokers_form_one_group(broker_factory, shared):
    first = broker_factory(shared, *GROUP_BROKER_ARGS)
    second = broker_factory(shared, *GROUP_BROKER_ARGS, storage=first.storage)
    topic, group = unique("two-brokers"), unique("group")
    create_topic(first.bootstrap, topic, partitions=PARTITIONS)
    bootstraps = [first.bootstrap, second.bootstrap, first.bootstrap, second.bootstrap]
    members = [Member(bootstrap, group, topic, f"m{i}", commit_each=True) for i, bootstrap in enumerate(bootstraps[:3])]
    try:
        wait_balanced(members, PARTITIONS)
        assert all(len(m.assigned()) == 2 for m in members)
        records = records_for("both", 300)
        produce(second.bootstrap, topic, records)
        poll_until(members, lambda: len(consumed(members)) >= 300, "300 records")
        assert_each_once(members, values_of(records))

        # A fourth member through the second broker: everyone rebalances across brokers.
        members.append(Member(bootstraps[3], group, topic, "m3", commit_each=True))
        wait_balanced(members, PARTITIONS)
        more = records_for("more", 120)
        produce(first.bootstrap, topic, more)
        poll_until(
            members,
            lambda: set(values_of(more)) <= {value for _, _, value in consumed(members)},
            "the next 120 records",
        )
        assert_no_loss_or_duplicate_past_commits(members, values_of(records) + values_of(more))
    finally:
        for member in members:
            member.close()


CONSUMER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from confluent_kafka import Consumer
    consumer = Consumer({
        "bootstrap.servers": sys.argv[1], "group.id": sys.argv[2], "client.id": "doomed",
        "session.timeout.ms": 6000, "heartbeat.interval.ms": 500, "auto.offset.reset": "earliest",
    })
    consumer.subscribe([sys.argv[3]])
    while True:
        consumer.poll(0.1)
        if consumer.assignment():
            print("assigned", flush=True)
    """
)


def test_a_consumer_that_dies_is_expired_after_its_session(broker_factory, engine):
    broker = broker_factory(engine, *GROUP_BROKER_ARGS)
    topic, group = unique("expiry"), unique("group")
    create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    survivor = Member(broker.bootstrap, group, topic, "survivor")
    doomed = subprocess.Popen(
        [sys.executable, "-c", CONSUMER_SCRIPT, broker.bootstrap, group, topic],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in doomed.stdout], daemon=True).start()
    try:
        # The survivor must keep polling: its rejoin (and so the doomed member's) needs it.
        poll_until([survivor], lambda: 0 < len(survivor.assigned()) < PARTITIONS and not lines.empty(),
                   "a shared assignment")
        os.kill(doomed.pid, signal.SIGKILL)  # no LeaveGroup: only its session can end it
        doomed.wait(5)
        poll_until([survivor], balanced([survivor], PARTITIONS), "the survivor owning everything", timeout=20)
    finally:
        if doomed.poll() is None:
            doomed.kill()
        survivor.close()
