"""Consume-transform-produce with send_offsets_to_transaction is exactly-once across a producer
crash: the crashed worker's open transaction is aborted when its successor (same transactional
id) starts, and the successor resumes from the offsets committed with the last committed
transaction, so every input record appears exactly once in the output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from helpers import consume, create_topic, produce, unique

WORKER = Path(__file__).with_name("eos_worker.py")


def test_consume_transform_produce_is_exactly_once_across_a_crash(broker_factory, engine):
    broker = broker_factory(engine, "--group-initial-rebalance-delay-ms", "0")
    source, sink = unique("eos-in"), unique("eos-out")
    create_topic(broker.bootstrap, source, partitions=2)
    create_topic(broker.bootstrap, sink, partitions=2)
    count = 400
    produce(broker.bootstrap, source, [{"key": b"k%d" % i, "value": b"v%04d" % i} for i in range(count)])
    group, transactional_id = unique("eos-group"), unique("eos-tid")

    def worker(crash_after: int) -> subprocess.CompletedProcess:
        args = [broker.bootstrap, source, sink, group, transactional_id, str(count), str(crash_after)]
        return subprocess.run([sys.executable, str(WORKER), *args], capture_output=True, timeout=120)

    crashed = worker(crash_after=3)
    assert crashed.returncode == 3, crashed.stderr.decode()[-2000:]
    finished = worker(crash_after=0)
    assert finished.returncode == 0, finished.stderr.decode()[-2000:]

    output = consume(broker.bootstrap, sink, partitions=(0, 1), **{"isolation.level": "read_committed"})
    values = sorted(m.value() for m in output)
    assert values == sorted(b"V%04d" % i for i in range(count)), (
        f"{len(values)} committed outputs for {count} inputs, {len(set(values))} distinct"
    )
    everything = consume(broker.bootstrap, sink, partitions=(0, 1), **{"isolation.level": "read_uncommitted"})
    assert len(everything) > count, "the crashed transaction's records are in the log, aborted"
