"""Records per second through a running broker with confluent-kafka: N 100-byte records into a
new one-partition topic, then consumed back from offset 0.

    python bench/produce_consume.py BOOTSTRAP N TOPIC

Use the venv scripts/test.sh makes (~/.cache/skiff-venv). Start the broker first, e.g.
`skiff broker --storage postgres://postgres@127.0.0.1/bench`.
"""

import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def main() -> None:
    bootstrap, count, topic = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result()

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 5,
            "batch.num.messages": 10000,
            "queue.buffering.max.messages": 1000000,
        }
    )
    value = b"x" * 100
    start = time.time()
    for index in range(count):
        while True:
            try:
                producer.produce(topic, value=value, partition=0)
                break
            except BufferError:
                producer.poll(0.01)
        if index % 1000 == 0:
            producer.poll(0)
    assert producer.flush(600) == 0, "records left unacknowledged"
    elapsed = time.time() - start
    print(f"produce: {count / elapsed:.0f} records/s, {count * len(value) / elapsed / 1e6:.1f} MB/s of values")

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{topic}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    received, start = 0, time.time()
    while received < count:
        messages = consumer.consume(10000, 5)
        if not messages:
            break
        received += len(messages)
    print(f"consume: {received} records, {received / (time.time() - start):.0f} records/s")
    consumer.close()


if __name__ == "__main__":
    main()
