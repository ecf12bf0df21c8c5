"""kafkajs, a pure-JavaScript client with its own protocol code (its own API versions, record batch
encoder, group membership and offset commits), on every engine. pytest runs the small node scripts
under js/ (one JSON argument, one JSON line of output) and asserts on what they print; scripts/test.sh
installs their package with `npm ci`."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from group_helpers import GROUP_BROKER_ARGS
from helpers import consume, create_topic, produce, unique

JS_DIR = Path(__file__).resolve().parent / "js"
RUN_TIMEOUT = 60.0  # seconds for one script run; each script also ends itself before this


def run_js(script: str, options: dict, timeout: float = RUN_TIMEOUT) -> dict:
    """Runs js/<script>.js with `options` (plus a deadline inside the script); returns its JSON."""
    node = shutil.which("node")
    if node is None or not (JS_DIR / "node_modules" / "kafkajs").is_dir():
        pytest.fail(f"node and kafkajs are needed: run `npm ci` in {JS_DIR} (scripts/test.sh does)")
    options = {"deadlineMs": int((timeout - 5) * 1000), **options}
    try:
        proc = subprocess.run(
            [node, str(JS_DIR / f"{script}.js"), json.dumps(options)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as error:
        raise AssertionError(f"{script}.js ran over {timeout}s; stderr:\n{error.stderr}") from None
    if proc.returncode != 0:
        raise AssertionError(f"{script}.js exited with {proc.returncode}; stderr:\n{proc.stderr[-6000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_kafkajs_produce_and_consume(broker_factory, engine):
    broker = broker_factory(engine, *GROUP_BROKER_ARGS)
    topic, group = unique("kafkajs"), unique("kafkajs-group")
    messages = [
        {
            "key": f"k{i}",
            "value": f"v{i}",
            "partition": i % 3,
            # An array value is one header per element, in order (repeated keys).
            "headers": {"h": str(i), "trace": ["a", "b"]},
        }
        for i in range(12)
    ]
    first = run_js(
        "produce",
        {
            "brokers": [broker.bootstrap],
            "topic": topic,
            "create": {"partitions": 3},
            "messages": messages,
            "idempotent": True,  # InitProducerId, then sequenced batches
        },
    )
    assert first["created"] is True
    assert [p["partitionId"] for p in first["partitions"]] == [0, 1, 2]
    assert sorted((s["partition"], s["errorCode"], s["baseOffset"]) for s in first["sent"]) == [
        (0, 0, "0"),
        (1, 0, "0"),
        (2, 0, "0"),
    ]
    # A second send, gzip-compressed, and keyed records without a partition (kafkajs's murmur2
    # partitioner picks it).
    second = run_js(
        "produce",
        {
            "brokers": [broker.bootstrap],
            "topic": topic,
            "compression": "gzip",
            "messages": [{"key": "same-key", "value": f"z{i}"} for i in range(3)],
        },
    )
    assert [s["errorCode"] for s in second["sent"]] == [0]
    keyed_partition = second["sent"][0]["partition"]
    highs = {o["partition"]: int(o["high"]) for o in second["offsets"]}
    assert highs == {p: 4 + (3 if p == keyed_partition else 0) for p in range(3)}
    assert all(o["low"] == "0" for o in second["offsets"])

    # What kafkajs wrote reads back the same with librdkafka.
    read = consume(broker.bootstrap, topic, partitions=(0, 1, 2))
    by_value = {m.value(): m for m in read}
    assert len(read) == 15
    for i in range(12):
        record = by_value[f"v{i}".encode()]
        assert (record.partition(), record.key()) == (i % 3, f"k{i}".encode())
        assert record.headers() == [("h", str(i).encode()), ("trace", b"a"), ("trace", b"b")]
    assert [by_value[f"z{i}".encode()].offset() for i in range(3)] == [4, 5, 6]

    # And kafkajs reads it all back in a group, committing as it goes.
    result = run_js(
        "consume",
        {"brokers": [broker.bootstrap], "topic": topic, "groupId": group, "count": 15, "partitions": 3},
    )
    (member,) = result["members"]
    assert member["assignment"] == [0, 1, 2]
    records = {r["value"]: r for r in member["records"]}
    assert len(member["records"]) == 15 and len(records) == 15
    for i in range(12):
        record = records[f"v{i}"]
        assert (record["partition"], record["offset"], record["key"]) == (i % 3, str(i // 3), f"k{i}")
        assert record["headers"] == [["h", str(i)], ["trace", ["a", "b"]]]
    assert [(records[f"z{i}"]["partition"], records[f"z{i}"]["offset"]) for i in range(3)] == [
        (keyed_partition, "4"),
        (keyed_partition, "5"),
        (keyed_partition, "6"),
    ]
    assert result["committed"] == [{"partition": p, "offset": str(highs[p])} for p in range(3)]


def test_kafkajs_group_shares_partitions_and_resumes_from_commits(broker_factory, engine):
    broker = broker_factory(engine, *GROUP_BROKER_ARGS)
    topic, group = unique("kafkajs-group"), unique("group")
    create_topic(broker.bootstrap, topic, partitions=4)
    produced = [{"key": f"k{i}", "value": f"m{i}", "partition": i % 4} for i in range(40)]

    # Two members; the records are produced once each holds its share.
    result = run_js(
        "consume",
        {
            "brokers": [broker.bootstrap],
            "topic": topic,
            "groupId": group,
            "members": 2,
            "partitions": 4,
            "produce": produced,
            "count": 40,
        },
    )
    first, second = result["members"]
    assert first["memberId"] != second["memberId"]
    assert first["assignment"] and second["assignment"]
    assert sorted(first["assignment"] + second["assignment"]) == [0, 1, 2, 3]
    for member in (first, second):
        assert {r["partition"] for r in member["records"]} <= set(member["assignment"])
    values = sorted(r["value"] for r in first["records"] + second["records"])
    assert values == sorted(r["value"] for r in produced)
    assert result["committed"] == [{"partition": p, "offset": "10"} for p in range(4)]

    # More records (from librdkafka); a new member of the group starts at the committed offsets.
    produce(broker.bootstrap, topic, [{"value": f"n{i}".encode(), "partition": i % 4} for i in range(8)])
    resumed = run_js(
        "consume",
        {"brokers": [broker.bootstrap], "topic": topic, "groupId": group, "count": 8, "partitions": 4},
    )
    (member,) = resumed["members"]
    assert sorted((r["partition"], r["offset"], r["value"]) for r in member["records"]) == sorted(
        (i % 4, str(10 + i // 4), f"n{i}") for i in range(8)
    )
    assert resumed["committed"] == [{"partition": p, "offset": "12"} for p in range(4)]
