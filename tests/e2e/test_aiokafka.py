"""aiokafka, an asyncio client with its own protocol code (its own API version choices, record
batch encoder, group coordinator and transaction manager), on every engine: produce and consume
with keys and headers over several partitions, a consumer group of two members whose commits a
new member resumes from, and transactions (committed records visible to read_committed
consumers, aborted ones never; offsets committed inside a transaction).

Each test is a plain function that runs its coroutine with asyncio.run; every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from group_helpers import GROUP_BROKER_ARGS
from helpers import create_topic, produce, unique

TEST_TIMEOUT = 90.0  # seconds for a whole test's coroutine
CLIENT = {"request_timeout_ms": 10000}
CONSUMER = {
    **CLIENT,
    "enable_auto_commit": False,
    "auto_offset_reset": "earliest",
    "fetch_max_wait_ms": 100,
    "session_timeout_ms": 10000,
    "heartbeat_interval_ms": 500,
}
# Brokers for transaction tests look for expired transactions often (as in test_transactions.py).
SWEEP = ("--transaction-check-interval-ms", "200")


def run(coroutine) -> None:
    asyncio.run(asyncio.wait_for(coroutine, TEST_TIMEOUT))


async def read_until(consumers, done, timeout: float = 20.0, commit: bool = False) -> list:
    """getmany() on every consumer until done(records) holds; commits after each getmany when asked.
    Returns the records with the consumer index: [(index, ConsumerRecord)]."""
    records: list = []
    deadline = time.monotonic() + timeout
    while not done([r for _, r in records]):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s with {len(records)} records")
        batches = await asyncio.gather(*(c.getmany(timeout_ms=100) for c in consumers))
        for index, (consumer, batch) in enumerate(zip(consumers, batches)):
            for partition_records in batch.values():
                records.extend((index, r) for r in partition_records)
            if commit and batch:
                await consumer.commit()
    return records


async def wait_for_assignments(consumers, partitions: int, timeout: float = 20.0) -> list[set[int]]:
    """Waits until every consumer holds partitions, none twice, all of them in all."""
    deadline = time.monotonic() + timeout
    while True:
        owned = [{tp.partition for tp in c.assignment()} for c in consumers]
        if all(owned) and sum(len(o) for o in owned) == partitions and set().union(*owned) == set(range(partitions)):
            return owned
        if time.monotonic() > deadline:
            raise AssertionError(f"no complete disjoint assignment within {timeout}s: {owned}")
        # Assignments change in aiokafka's background tasks; getmany also drives the consumer.
        await asyncio.gather(*(c.getmany(timeout_ms=50) for c in consumers))


def test_aiokafka_produce_and_consume(broker):
    topic = unique("aiokafka")
    create_topic(broker.bootstrap, topic, partitions=3)

    async def scenario():
        # An idempotent producer (acks=all) with explicit partitions, keys and repeated headers.
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=True, **CLIENT)
        await producer.start()
        try:
            sent = [
                await producer.send_and_wait(
                    topic,
                    value=b"v%d" % i,
                    key=b"k%d" % i,
                    partition=i % 3,
                    headers=[("h", b"%d" % i), ("trace", b"a"), ("trace", b"b")],
                )
                for i in range(12)
            ]
        finally:
            await producer.stop()
        assert [(m.partition, m.offset) for m in sent] == [(i % 3, i // 3) for i in range(12)]

        # A gzip producer; keyed records without a partition land together (murmur2 partitioner),
        # one null key and one empty value.
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, compression_type="gzip", acks=1, **CLIENT)
        await producer.start()
        try:
            futures = [await producer.send(topic, value=b"z%d" % i, key=b"same-key") for i in range(3)]
            keyed = [await future for future in futures]
            no_key = await producer.send_and_wait(topic, value=b"", key=None, partition=0)
        finally:
            await producer.stop()
        keyed_partition = keyed[0].partition
        assert [m.partition for m in keyed] == [keyed_partition] * 3

        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, **CONSUMER)
        await consumer.start()
        try:
            partitions = [TopicPartition(topic, p) for p in range(3)]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            starts = await consumer.beginning_offsets(partitions)
            records = [r for _, r in await read_until([consumer], lambda rs: len(rs) >= 16)]
        finally:
            await consumer.stop()
        expected_ends = {p: 4 + (3 if p == keyed_partition else 0) + (1 if p == 0 else 0) for p in range(3)}
        assert {tp.partition: offset for tp, offset in ends.items()} == expected_ends
        assert set(starts.values()) == {0}
        assert len(records) == 16
        by_value = {r.value: r for r in records}
        for i in range(12):
            record = by_value[b"v%d" % i]
            assert (record.partition, record.offset, record.key) == (i % 3, i // 3, b"k%d" % i)
            assert list(record.headers) == [("h", b"%d" % i), ("trace", b"a"), ("trace", b"b")]
        assert [(by_value[b"z%d" % i].partition, by_value[b"z%d" % i].offset) for i in range(3)] == [
            (keyed_partition, m.offset) for m in keyed
        ]
        assert (by_value[b""].partition, by_value[b""].offset, by_value[b""].key) == (0, no_key.offset, None)

    run(scenario())


def test_aiokafka_group_commits_and_resume(broker_factory, engine):
    broker = broker_factory(engine, *GROUP_BROKER_ARGS)
    topic, group = unique("aiokafka-group"), unique("group")
    create_topic(broker.bootstrap, topic, partitions=4)
    partitions = [TopicPartition(topic, p) for p in range(4)]

    async def scenario():
        members = [AIOKafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group, **CONSUMER) for _ in range(2)]
        for member in members:
            await member.start()
        try:
            owned = await wait_for_assignments(members, 4)
            # Records only now, so each member reads its own share.
            await asyncio.to_thread(
                produce,
                broker.bootstrap,
                topic,
                [{"key": b"k%d" % i, "value": b"m%d" % i, "partition": i % 4} for i in range(40)],
            )
            records = await read_until(members, lambda rs: len(rs) >= 40, commit=True)
            assert sorted(r.value for _, r in records) == sorted(b"m%d" % i for i in range(40))
            for index, member_owned in enumerate(owned):
                assert {r.partition for i, r in records if i == index} <= member_owned
            assert [await members[0].committed(tp) for tp in partitions] == [10, 10, 10, 10]
        finally:
            for member in members:
                await member.stop()

        # A new member of the group starts where the others committed, not at the beginning.
        await asyncio.to_thread(
            produce, broker.bootstrap, topic, [{"value": b"n%d" % i, "partition": i % 4} for i in range(8)]
        )
        member = AIOKafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group, **CONSUMER)
        await member.start()
        try:
            resumed = [r for _, r in await read_until([member], lambda rs: len(rs) >= 8, commit=True)]
            assert sorted((r.partition, r.offset, r.value) for r in resumed) == sorted(
                (i % 4, 10 + i // 4, b"n%d" % i) for i in range(8)
            )
            assert [await member.committed(tp) for tp in partitions] == [12, 12, 12, 12]
        finally:
            await member.stop()

    run(scenario())


@pytest.fixture(params=["memory", "sqlite", "postgres", "s3"])
def txn_broker(request, broker_factory):
    return broker_factory(request.param, *SWEEP, *GROUP_BROKER_ARGS)


def test_aiokafka_transactions(txn_broker):
    bootstrap = txn_broker.bootstrap
    topic, source, group = unique("aiokafka-txn"), unique("aiokafka-src"), unique("group")
    create_topic(bootstrap, topic, partitions=2)
    create_topic(bootstrap, source, partitions=1)
    partitions = [TopicPartition(topic, p) for p in range(2)]
    source_partition = TopicPartition(source, 0)

    async def send_all(producer, values: list[bytes]) -> None:
        for i, value in enumerate(values):
            await producer.send_and_wait(topic, value=value, partition=i % 2)

    async def read(isolation_level: str) -> list[bytes]:
        """Reads both partitions up to and including the plain fence post records."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, isolation_level=isolation_level, **CONSUMER
        )
        await consumer.start()
        try:
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            records = await read_until([consumer], lambda rs: sum(r.value == b"plain" for r in rs) == 2)
        finally:
            await consumer.stop()
        return sorted(r.value for _, r in records)

    async def scenario():
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=unique("tid"), **CLIENT)
        await producer.start()
        committed, aborted = [], []
        try:
            for round_ in range(4):
                batch = [b"r%d-%d" % (round_, i) for i in range(6)]
                await producer.begin_transaction()
                await send_all(producer, batch)
                if round_ % 2 == 0:
                    await producer.commit_transaction()
                    committed.extend(batch)
                else:
                    await producer.abort_transaction()
                    aborted.extend(batch)

            # An open transaction holds read_committed consumers (and their end offsets) back.
            await producer.begin_transaction()
            await send_all(producer, [b"open-0", b"open-1"])
            probe = AIOKafkaConsumer(
                bootstrap_servers=bootstrap, group_id=None, isolation_level="read_committed", **CONSUMER
            )
            await probe.start()
            try:
                stable = await probe.end_offsets(partitions)
            finally:
                await probe.stop()
            # Per partition, four rounds of three records and a marker: the open one starts at 16.
            assert stable == {tp: 16 for tp in partitions}
            await producer.commit_transaction()
            committed.extend([b"open-0", b"open-1"])

            # Consume-transform-produce: the source offset commits with the transaction.
            await asyncio.to_thread(produce, bootstrap, source, [{"value": b"in-%d" % i} for i in range(3)])
            for outcome in ("abort", "commit"):
                await producer.begin_transaction()
                await producer.send_and_wait(topic, value=b"out-%s" % outcome.encode(), partition=0)
                await producer.send_offsets_to_transaction({source_partition: 3}, group)
                if outcome == "abort":
                    await producer.abort_transaction()
                    aborted.append(b"out-abort")
                else:
                    await producer.commit_transaction()
                    committed.append(b"out-commit")
        finally:
            await producer.stop()

        await asyncio.to_thread(produce, bootstrap, topic, [{"value": b"plain", "partition": p} for p in range(2)])
        assert await read("read_committed") == sorted(committed + [b"plain", b"plain"])
        assert await read("read_uncommitted") == sorted(committed + aborted + [b"plain", b"plain"])

        member = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, **CONSUMER)
        await member.start()
        try:
            assert await member.committed(source_partition) == 3
        finally:
            await member.stop()

    run(scenario())
