"""Time-based retention on every engine: records older than retention.ms leave the log (the low
watermark moves past them), younger ones stay, whichever broker holds the cleaner lease."""

from __future__ import annotations

import time

from helpers import consume, create_topic, metrics_broker, produce, unique, wait_cleaner_passes, watermarks


def test_records_older_than_retention_ms_are_deleted(broker_factory, engine):
    broker = broker_factory(engine, "--retention-check-interval-ms", "200")
    topic = unique("retention")
    create_topic(broker.bootstrap, topic, config={"retention.ms": "60000"})
    now_ms = int(time.time() * 1000)
    old = [{"value": b"old-%d" % i, "timestamp": now_ms - 3_600_000 + i} for i in range(5)]
    young = [{"value": b"young-%d" % i, "timestamp": now_ms + i} for i in range(3)]
    produce(broker.bootstrap, topic, old + young)

    deadline = time.monotonic() + 15
    while watermarks(broker.bootstrap, topic)[0] < 5 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert watermarks(broker.bootstrap, topic) == (5, 8)
    assert [m.value() for m in consume(broker.bootstrap, topic)] == [b"young-0", b"young-1", b"young-2"]


def test_topics_without_time_retention_keep_everything(broker_factory, engine):
    broker, metrics = metrics_broker(broker_factory, engine, "--retention-check-interval-ms", "200")
    kept, compacted = unique("forever"), unique("compacted")
    create_topic(broker.bootstrap, kept, config={"retention.ms": "-1"})
    create_topic(broker.bootstrap, compacted, config={"cleanup.policy": "compact", "retention.ms": "1000"})
    old = [{"key": b"k", "value": b"v%d" % i, "timestamp": 1_000 + i} for i in range(4)]
    for topic in (kept, compacted):
        produce(broker.bootstrap, topic, old)
    wait_cleaner_passes(metrics, 2)  # whole passes over both topics, not just time gone by
    for topic in (kept, compacted):
        assert watermarks(broker.bootstrap, topic) == (0, 4), topic
    # Compaction keeps the newest record of the key; retention.ms does not apply to the topic.
    assert [m.value() for m in consume(broker.bootstrap, compacted)] == [b"v3"]


def test_retention_bytes_keeps_the_newest_batches_that_fit(broker_factory, engine):
    broker = broker_factory(engine, "--retention-check-interval-ms", "200")
    topic = unique("retention-bytes")
    # Six one-record batches of about 1.07 kB each; 2500 bytes hold the newest two.
    create_topic(broker.bootstrap, topic, config={"retention.bytes": "2500", "retention.ms": "-1"})
    for i in range(6):
        produce(broker.bootstrap, topic, [{"value": b"%d" % i * 1000}], **{"linger.ms": 0})

    deadline = time.monotonic() + 15
    while watermarks(broker.bootstrap, topic)[0] < 4 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert watermarks(broker.bootstrap, topic) == (4, 6)
    assert [m.value()[:1] for m in consume(broker.bootstrap, topic)] == [b"4", b"5"]
