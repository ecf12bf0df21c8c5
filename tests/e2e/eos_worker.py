"""A consume-transform-produce worker for the exactly-once test, run as its own process so that
it can really crash (os._exit) in the middle of a transaction.

    python eos_worker.py BOOTSTRAP IN OUT GROUP TRANSACTIONAL_ID EXPECTED CRASH_AFTER

It reads IN as group GROUP (read_committed), writes each value upper-cased to OUT and commits
the consumed offsets in the same transaction. With CRASH_AFTER > 0 it produces part of its
transaction number CRASH_AFTER, flushes it to the broker, and exits abruptly without committing.
It exits 0 once it owns every partition of IN and has committed its way to their ends (or 1
after two minutes).
"""

from __future__ import annotations

import os
import sys
import time

from confluent_kafka import Consumer, KafkaError, Producer

bootstrap, source, sink, group, transactional_id = sys.argv[1:6]
expected, crash_after = int(sys.argv[6]), int(sys.argv[7])

consumer = Consumer(
    {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "enable.partition.eof": True,
        "session.timeout.ms": 6000,
    }
)
producer = Producer(
    {
        "bootstrap.servers": bootstrap,
        "transactional.id": transactional_id,
        "linger.ms": 1,
    }
)
producer.init_transactions(20)
consumer.subscribe([source])

def drained() -> bool:
    """Whether this worker owns every input partition and has consumed each to its end."""
    owned = consumer.assignment()
    if len(owned) != partitions:
        return False
    for position in consumer.position(owned):
        _, high = consumer.get_watermark_offsets(position, timeout=5)
        if position.offset < high:
            return False
    return True


partitions = len(consumer.list_topics(source, timeout=10).topics[source].partitions)
transactions = 0
deadline = time.monotonic() + 120
while True:
    if time.monotonic() > deadline:
        sys.exit(1)
    messages = consumer.consume(50, 0.5)
    records = [m for m in messages if m.error() is None]
    if not records:
        if drained():
            break
        continue
    producer.begin_transaction()
    for record in records:
        producer.produce(sink, key=record.key(), value=record.value().upper())
    transactions += 1
    if transactions == crash_after:
        producer.flush(10)  # the records reach the broker...
        os._exit(3)  # ...but the transaction never commits
    producer.send_offsets_to_transaction(
        consumer.position(consumer.assignment()), consumer.consumer_group_metadata(), 20
    )
    producer.commit_transaction(20)

consumer.close()
print(f"worker done after {transactions} transactions", flush=True)
