"""Client quotas with real clients: `skiff quota set` gives a client id a produce or fetch byte
rate; a confluent-kafka producer and consumer under it are held to about that rate (the broker
answers `throttle_time_ms` and mutes the connection), while a client without a quota on the
same broker keeps its throughput and every record arrives, in order.

The rates are measured over bounded runs with generous margins: a two-sample window
(`--quota-window-num 2`) keeps the runs to seconds."""

from __future__ import annotations

import json
import subprocess
import time

from confluent_kafka import Producer
from helpers import CLIENT_LOG, Scrape, consume, create_topic, metrics_broker, unique

QUOTA = 100_000  # bytes a second
RECORDS, VALUE_BYTES = 6000, 100  # 600 KB: six seconds' worth at the quota, most of it throttled


def skiff_quota(skiff_bin, broker, *args: str) -> str:
    result = subprocess.run([str(skiff_bin), "quota", *args, "--storage", broker.storage],
                            capture_output=True, timeout=30)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def quota_broker(broker_factory, skiff_bin):
    broker, metrics = metrics_broker(broker_factory, "sqlite", "--quota-window-num", "2", "--quota-refresh-ms", "0")
    broker.metrics_url = metrics
    skiff_quota(skiff_bin, broker, "set", "--client-id", "slow", "--producer-byte-rate", str(QUOTA),
                "--consumer-byte-rate", str(QUOTA))
    listed = json.loads(skiff_quota(skiff_bin, broker, "list", "--json"))
    assert listed == [{"entity": "client-id=slow",
                       "quotas": {"producer_byte_rate": QUOTA, "consumer_byte_rate": QUOTA}}]
    return broker


def timed_produce(bootstrap: str, topic: str, client_id: str) -> tuple[float, list[int]]:
    """Produces RECORDS values in small batches; returns the seconds it took and the throttle
    times librdkafka reported."""
    throttles: list[int] = []
    client = Producer({"bootstrap.servers": bootstrap, "client.id": client_id, "batch.size": 16384,
                       "linger.ms": 5, "acks": "all", "statistics.interval.ms": 500,
                       "throttle_cb": lambda event: throttles.append(event.throttle_time * 1000),
                       **CLIENT_LOG})
    value = b"x" * VALUE_BYTES
    failures = []
    started = time.monotonic()
    for _ in range(RECORDS):
        while True:
            try:
                client.produce(topic, value=value, partition=0,
                               on_delivery=lambda err, msg: err and failures.append(err))
                break
            except BufferError:
                client.poll(0.05)
        client.poll(0)
    assert client.flush(60) == 0
    elapsed = time.monotonic() - started
    assert not failures, failures[:3]
    return elapsed, throttles


def test_a_producer_over_its_quota_is_throttled_while_another_keeps_its_throughput(broker_factory, skiff_bin):
    broker = quota_broker(broker_factory, skiff_bin)
    slow_topic, fast_topic = unique("slow"), unique("fast")
    create_topic(broker.bootstrap, slow_topic)
    create_topic(broker.bootstrap, fast_topic)

    slow, throttles = timed_produce(broker.bootstrap, slow_topic, "slow")
    fast, _ = timed_produce(broker.bootstrap, fast_topic, "fast")
    total = RECORDS * VALUE_BYTES
    # Without the quota 600 KB take a fraction of a second; at 100 KB/s, with the first window's
    # worth let through at once, several seconds. Allow 2.4x the quota before calling it unthrottled.
    assert total / slow <= 2.4 * QUOTA, f"slow producer ran at {total / slow:,.0f} B/s"
    assert throttles and max(throttles) > 0, "the broker never told the client to wait"
    assert fast < slow / 3, f"the producer without a quota took {fast:.1f}s against {slow:.1f}s"
    assert Scrape(broker.metrics_url).total("skiff_quota_throttles_total", quota="producer_byte_rate") > 0
    for topic in (slow_topic, fast_topic):
        assert len(consume(broker.bootstrap, topic)) == RECORDS, "every record stored once"


def test_a_consumer_over_its_quota_is_throttled_and_still_reads_everything_in_order(broker_factory, skiff_bin):
    broker = quota_broker(broker_factory, skiff_bin)
    topic = unique("read")
    create_topic(broker.bootstrap, topic)
    timed_produce(broker.bootstrap, topic, "loader")

    small_fetches = {"fetch.max.bytes": 50_000, "max.partition.fetch.bytes": 50_000, "message.max.bytes": 40_000}
    started = time.monotonic()
    fast = consume(broker.bootstrap, topic, **{"client.id": "fast-reader"}, **small_fetches)
    fast_elapsed = time.monotonic() - started
    started = time.monotonic()
    slow = consume(broker.bootstrap, topic, **{"client.id": "slow"}, **small_fetches)
    slow_elapsed = time.monotonic() - started

    assert [m.offset() for m in slow] == list(range(RECORDS)), "all records, in order"
    assert len(fast) == RECORDS
    total = RECORDS * VALUE_BYTES
    assert total / slow_elapsed <= 2.4 * QUOTA, f"slow consumer ran at {total / slow_elapsed:,.0f} B/s"
    assert fast_elapsed < slow_elapsed / 3, f"{fast_elapsed:.1f}s against {slow_elapsed:.1f}s"
    assert Scrape(broker.metrics_url).total("skiff_quota_throttles_total", quota="consumer_byte_rate") > 0


def test_a_client_over_its_request_percentage_is_throttled_and_loses_nothing(broker_factory, skiff_bin):
    """`request_percentage` limits the broker time a client's requests take (Kafka's KIP-124:
    n% of one thread): a producer whose quota is a hundred-thousandth of a thread is told to
    wait after its first request, of any API, while a producer without one on the same broker
    never is, and both deliver every record."""
    broker = quota_broker(broker_factory, skiff_bin)
    skiff_quota(skiff_bin, broker, "set", "--client-id", "chatty", "--request-percentage", "0.001")
    listed = json.loads(skiff_quota(skiff_bin, broker, "list", "--json"))
    assert {"entity": "client-id=chatty", "quotas": {"request_percentage": 0.001}} in listed, listed
    topic = unique("chatty")
    create_topic(broker.bootstrap, topic)

    def produce_throttles(client_id: str, count: int = 50) -> list[float]:
        throttles: list[float] = []
        failures = []
        client = Producer({"bootstrap.servers": broker.bootstrap, "client.id": client_id, "linger.ms": 0,
                           "acks": "all", "throttle_cb": lambda event: throttles.append(event.throttle_time),
                           **CLIENT_LOG})
        for index in range(count):
            client.produce(topic, value=f"{client_id}-{index}".encode(), partition=0,
                           on_delivery=lambda err, msg: err and failures.append(err))
            client.poll(0)
        assert client.flush(60) == 0
        client.poll(0.5)  # throttle events are served by poll
        assert not failures, failures[:3]
        return throttles

    assert [t for t in produce_throttles("calm") if t > 0] == [], "a client without a quota was throttled"
    throttled = produce_throttles("chatty")
    assert throttled and max(throttled) > 0, "the broker never told the busy client to wait"
    assert Scrape(broker.metrics_url).total("skiff_quota_throttles_total", quota="request_percentage") > 0
    values = [m.value().decode() for m in consume(broker.bootstrap, topic)]
    assert sorted(values) == sorted([f"calm-{i}" for i in range(50)] + [f"chatty-{i}" for i in range(50)])
    assert [v for v in values if v.startswith("chatty")] == [f"chatty-{i}" for i in range(50)], "in order"
