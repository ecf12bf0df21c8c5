"""Consumer-protocol groups (KIP-848, `group.protocol=consumer`) with real confluent-kafka
consumers: the broker assigns partitions, members move to their share one heartbeat at a time,
and members that stay keep what they own while others join and leave (no stop-the-world).
Also: regex subscriptions that pick up a topic created later, members on two brokers of one
storage, a broker killed under a running group, offsets carried between the classic and the
consumer protocol, a running classic group upgraded by a consumer-protocol member and
downgraded when it leaves, ConsumerGroupDescribe through the admin client, and a classic kcat group
beside a consumer-protocol one. How long joins and leaves take is measured by
bench/rebalance_bench.py, not asserted here."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, ConsumerGroupState, ConsumerGroupType, KafkaError

from group_helpers import (
    CONSUMER_BROKER_ARGS,
    CONSUMER_PROTOCOL,
    STRATEGIES,
    Member,
    assert_each_once,
    assert_three_share_a_topic_exactly_once,
    consumed,
    poll_until,
    records_for,
    values_of,
    wait_balanced,
)
from helpers import CLIENT_LOG, TIMEOUT, admin, create_topic, kcat, produce, unique, wait_futures

PARTITIONS = 6


def member(bootstrap: str, group: str, topic: str, name: str, **conf) -> Member:
    return Member(bootstrap, group, topic, name, **CONSUMER_PROTOCOL, **conf)


def close_all(members: list[Member]) -> None:
    for each in members:
        each.close()


def test_three_members_share_six_partitions_exactly_once(broker_factory, engine):
    broker = broker_factory(engine, *CONSUMER_BROKER_ARGS)
    topic, group = unique("kip848"), unique("group")
    create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    members = [member(broker.bootstrap, group, topic, f"m{i}", commit_each=True) for i in range(3)]
    try:
        assert_three_share_a_topic_exactly_once(broker.bootstrap, topic, members)
        assert not any(m.uncommitted for m in members), "a commit with the member epoch was refused"
    finally:
        close_all(members)


def test_members_keep_their_partitions_while_others_join_and_leave(broker_factory):
    broker = broker_factory("sqlite", *CONSUMER_BROKER_ARGS)
    topic, group = unique("incremental"), unique("group")
    create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    members = [member(broker.bootstrap, group, topic, "m0")]
    try:
        wait_balanced(members, PARTITIONS)
        for name in ("m1", "m2"):
            before = {m.name: m.assigned() for m in members}
            members.append(member(broker.bootstrap, group, topic, name))
            wait_balanced(members, PARTITIONS)
            for each in members[:-1]:
                # A join only takes partitions away: nothing a member keeps is revoked.
                assert each.assigned() <= before[each.name], (each.name, before, each.callbacks)
                kept = each.assigned()
                revoked = {p for kind, _, parts in each.callbacks if kind == "revoke" for p in parts}
                assert not kept & revoked, f"{each.name} had kept partitions revoked: {each.callbacks}"
        assert sorted(len(m.assigned()) for m in members) == [2, 2, 2]
        before = {m.name: m.assigned() for m in members}
        members[1].close()  # a leave: the others only gain
        wait_balanced(members, PARTITIONS)
        for each in (members[0], members[2]):
            assert before[each.name] <= each.assigned(), (each.name, before, each.assigned())
            assert len(each.assigned()) == 3
    finally:
        close_all(members)


def regex_consumer(bootstrap: str, group: str, pattern: str) -> Consumer:
    client = Consumer({
        "bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 100, "enable.auto.commit": False, **CONSUMER_PROTOCOL, **CLIENT_LOG,
    })
    client.subscribe([pattern])
    return client


def poll_values(client: Consumer, want: set[bytes], what: str) -> set[tuple[str, bytes]]:
    seen: set[tuple[str, bytes]] = set()
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and not want <= {value for _, value in seen}:
        msg = client.poll(0.1)
        if msg is not None and not msg.error():
            seen.add((msg.topic(), msg.value()))
        elif msg is not None and msg.error().code() != KafkaError._PARTITION_EOF:
            raise AssertionError(f"consumer error: {msg.error()}")
    missing = want - {value for _, value in seen}
    assert not missing, f"{what}: {len(missing)} records never arrived; assignment {client.assignment()}"
    return seen


def test_a_regex_subscription_picks_up_a_topic_created_later(broker_factory):
    broker = broker_factory("sqlite", *CONSUMER_BROKER_ARGS)
    prefix, group = unique("rx"), unique("group")
    first, later, other = f"{prefix}-a", f"{prefix}-b", unique("elsewhere")
    for topic in (first, other):
        create_topic(broker.bootstrap, topic, partitions=2)
    client = regex_consumer(broker.bootstrap, group, f"^{prefix}-.*")
    try:
        produce(broker.bootstrap, first, [{"value": b"a%d" % i} for i in range(10)])
        produce(broker.bootstrap, other, [{"value": b"x%d" % i} for i in range(10)])
        seen = poll_values(client, {b"a%d" % i for i in range(10)}, "the first topic")
        create_topic(broker.bootstrap, later, partitions=2)
        produce(broker.bootstrap, later, [{"value": b"b%d" % i} for i in range(10)])
        seen |= poll_values(client, {b"b%d" % i for i in range(10)}, "the topic created later")
        assert {topic for topic, _ in seen} == {first, later}, "read a topic the regex does not match"
    finally:
        client.close()


def test_members_on_two_brokers_form_one_group(broker_factory):
    first = broker_factory("sqlite", *CONSUMER_BROKER_ARGS)
    second = broker_factory("sqlite", *CONSUMER_BROKER_ARGS, storage=first.storage)
    topic, group = unique("two-brokers"), unique("group")
    create_topic(first.bootstrap, topic, partitions=PARTITIONS)
    bootstraps = [first.bootstrap, second.bootstrap, first.bootstrap]
    members = [member(b, group, topic, f"m{i}", commit_each=True) for i, b in enumerate(bootstraps)]
    try:
        wait_balanced(members, PARTITIONS)
        assert all(len(m.assigned()) == 2 for m in members)
        records = records_for("both", 300)
        produce(second.bootstrap, topic, records)
        poll_until(members, lambda: len(consumed(members)) >= 300, "300 records")
        assert_each_once(members, values_of(records))
    finally:
        close_all(members)


def test_a_group_carries_on_after_its_broker_is_killed(broker_factory):
    broker = broker_factory("sqlite", *CONSUMER_BROKER_ARGS)
    topic, group = unique("killed"), unique("group")
    create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    members = [member(broker.bootstrap, group, topic, f"m{i}", commit_each=True) for i in range(2)]
    try:
        wait_balanced(members, PARTITIONS)
        before = {m.name: m.assigned() for m in members}
        records = records_for("before", 120)
        produce(broker.bootstrap, topic, records)
        poll_until(members, lambda: len(consumed(members)) >= 120, "120 records")
        broker.restart(kill=True)  # kill -9, then a broker on the same address and storage
        later = records_for("after", 120)
        produce(broker.bootstrap, topic, later)
        expected = set(values_of(records) + values_of(later))
        poll_until(members, lambda: expected <= {v for _, _, v in consumed(members)}, "every record")
        wait_balanced(members, PARTITIONS)
        # The group lives in storage: the members kept their partitions through the restart.
        assert {m.name: m.assigned() for m in members} == before
        assert_each_once(members, sorted(expected))
    finally:
        close_all(members)


def group_type(bootstrap: str, group: str):
    listed = admin(bootstrap).list_consumer_groups(request_timeout=TIMEOUT).result(timeout=TIMEOUT)
    types = {g.group_id: g.type for g in listed.valid}
    return types.get(group)


def test_offsets_carry_over_between_the_classic_and_the_consumer_protocol(broker_factory):
    broker = broker_factory("sqlite", *CONSUMER_BROKER_ARGS)
    topic, group = unique("upgrade"), unique("group")
    create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    produced: list[bytes] = []
    phases = [("classic", {}), ("consumer", CONSUMER_PROTOCOL), ("classic-again", {})]
    for phase, conf in phases:
        records = records_for(phase, 60)
        produce(broker.bootstrap, topic, records)
        produced.extend(values_of(records))
        members = [Member(broker.bootstrap, group, topic, f"{phase}{i}", commit_each=True, **conf) for i in range(2)]
        try:
            poll_until(members, lambda: len(consumed(members)) >= 60, f"{phase}: 60 new records")
            # Each phase reads only what the one before did not commit: the offsets carried over.
            assert_each_once(members, values_of(records))
            want = ConsumerGroupType.CONSUMER if conf else ConsumerGroupType.CLASSIC
            assert group_type(broker.bootstrap, group) == want
        finally:
            close_all(members)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_running_classic_group_is_upgraded_by_a_consumer_member_and_downgraded_again(broker_factory, strategy):
    """KIP-848's online migration: classic members keep consuming while a consumer-protocol
    member joins their group (which becomes a consumer group, the broker assigning everyone)
    and when it leaves (the group is classic again, the members' own assignor back in charge).
    Every record is consumed once throughout."""
    broker = broker_factory("sqlite", *CONSUMER_BROKER_ARGS)
    topic, group = unique("migrate"), unique("group")
    create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    classic = [
        Member(broker.bootstrap, group, topic, f"classic{i}", commit_each=True,
               **{"partition.assignment.strategy": strategy})
        for i in range(2)
    ]
    members = list(classic)
    produced: list[bytes] = []

    def consume(phase: str) -> None:
        records = records_for(phase, 120)
        produce(broker.bootstrap, topic, records)
        produced.extend(values_of(records))
        poll_until(members, lambda: len(consumed(members)) >= len(produced), f"{phase}: 120 records")

    def wait_type(want) -> None:
        checked = [0.0]

        def is_type() -> bool:
            if time.monotonic() - checked[0] < 0.5:
                return False
            checked[0] = time.monotonic()
            return group_type(broker.bootstrap, group) == want

        poll_until(members, is_type, f"group type {want}")

    try:
        wait_balanced(members, PARTITIONS)
        assert group_type(broker.bootstrap, group) == ConsumerGroupType.CLASSIC
        consume("classic")

        modern = member(broker.bootstrap, group, topic, "modern", commit_each=True)
        members.append(modern)
        wait_type(ConsumerGroupType.CONSUMER)
        wait_balanced(members, PARTITIONS)
        assert all(m.assigned() for m in members), {m.name: m.assigned() for m in members}
        consume("mixed")

        modern.close()
        wait_type(ConsumerGroupType.CLASSIC)
        wait_balanced(members, PARTITIONS)
        assert sorted(len(m.assigned()) for m in classic) == [3, 3]
        consume("classic-again")

        assert_each_once(members, produced)
        for each in members:
            assert not each.uncommitted, f"{each.name}: commits refused {sorted(each.uncommitted)}"
    finally:
        close_all(members)


def test_consumer_group_describe_shows_members_and_assignments(broker_factory):
    broker = broker_factory("sqlite", *CONSUMER_BROKER_ARGS)
    topic, group = unique("describe"), unique("group")
    create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    members = [member(broker.bootstrap, group, topic, f"m{i}") for i in range(3)]
    try:
        wait_balanced(members, PARTITIONS)
        futures = admin(broker.bootstrap).describe_consumer_groups([group], request_timeout=TIMEOUT)
        described = wait_futures(futures)[group]
        assert described.type == ConsumerGroupType.CONSUMER
        assert described.state == ConsumerGroupState.STABLE
        assert sorted(m.client_id for m in described.members) == ["m0", "m1", "m2"]
        owned = sorted(
            tp.partition for m in described.members for tp in m.assignment.topic_partitions
        )
        assert owned == list(range(PARTITIONS))
        assert all(tp.topic == topic for m in described.members for tp in m.assignment.topic_partitions)
    finally:
        close_all(members)


def test_a_classic_kcat_group_beside_a_consumer_protocol_group(broker_factory):
    broker = broker_factory("sqlite", *CONSUMER_BROKER_ARGS)
    topic, group, kcat_group = unique("side-by-side"), unique("group"), unique("kcat")
    create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    members = [member(broker.bootstrap, group, topic, f"m{i}") for i in range(2)]
    try:
        wait_balanced(members, PARTITIONS)
        values = [f"line-{i}" for i in range(50)]
        produce(broker.bootstrap, topic, [{"value": v.encode(), "partition": i % PARTITIONS} for i, v in enumerate(values)])
        result = kcat(
            "-b", broker.bootstrap, "-G", kcat_group, "-o", "beginning", "-e", "-q",
            "-X", "fetch.wait.max.ms=100", topic,
        )
        assert sorted(result.stdout.decode().split()) == sorted(values)
        poll_until(members, lambda: len(consumed(members)) >= 50, "the consumer-protocol group's 50 records")
        assert group_type(broker.bootstrap, kcat_group) == ConsumerGroupType.CLASSIC
        assert group_type(broker.bootstrap, group) == ConsumerGroupType.CONSUMER
    finally:
        close_all(members)
