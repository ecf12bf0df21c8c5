"""The `skiff topic`, `skiff produce` and `skiff consume` tools against a real broker, cross-checked
with kcat so the tools are not only tested against themselves."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

import kafka_wire
from conftest import free_port, skiff_binary
from helpers import kcat, kcat_consume, kcat_produce, unique

API_OFFSET_COMMIT = 8
API_OFFSET_FETCH = 9
CLI_TIMEOUT = 30.0


def skiff(
    bootstrap: str | None,
    *args: str,
    input: bytes | None = None,
    env: dict | None = None,
    check: bool = True,
    timeout: float = CLI_TIMEOUT,
) -> subprocess.CompletedProcess:
    """Runs the skiff binary with `--bootstrap` (unless None) and returns the finished process;
    with `check`, a non-zero exit fails the test with its stderr."""
    command = [str(skiff_binary()), *args]
    if bootstrap is not None:
        command += ["--bootstrap", bootstrap]
    # Only the variables a test sets: a stray SKIFF_BOOTSTRAP or SKIFF_ACKS must not leak in.
    full_env = {name: value for name, value in os.environ.items() if not name.startswith("SKIFF_")}
    full_env.update({"NO_COLOR": "1", **(env or {})})
    result = subprocess.run(
        command, input=input if input is not None else b"", capture_output=True, timeout=timeout, env=full_env
    )
    if check:
        assert result.returncode == 0, (
            f"{' '.join(args)} exited {result.returncode}\nstdout: {result.stdout[-2000:]!r}\n"
            f"stderr: {result.stderr.decode(errors='replace')[-4000:]}"
        )
    return result


def stderr_of(result: subprocess.CompletedProcess) -> str:
    return result.stderr.decode(errors="replace")


def lines_of(result: subprocess.CompletedProcess) -> list[str]:
    return result.stdout.decode(errors="replace").splitlines()


def lines_input(lines: list[str]) -> bytes:
    return "".join(line + "\n" for line in lines).encode()


def consume_all(bootstrap: str, topic: str, *args: str, idle_ms: int = 1000) -> list[str]:
    """Everything in the topic, via `skiff consume --from-beginning`, exiting once idle."""
    return lines_of(skiff(bootstrap, "consume", topic, "--from-beginning", "--timeout-ms", str(idle_ms), *args))


def advertised_apis(broker) -> dict[int, tuple[int, int]]:
    payload = kafka_wire.roundtrip(broker.port, kafka_wire.api_versions_request(0, 1))
    _, _, versions = kafka_wire.parse_api_versions_v0(payload)
    return versions


def test_topic_create_list_describe_delete(broker):
    topic, other = unique("cli-admin"), unique("cli-admin")
    created = skiff(
        broker.bootstrap, "topic", "create", topic, "--partitions", "3",
        "--config", "retention.ms=86400000", "--config", "cleanup.policy=compact,delete",
    )
    assert lines_of(created) == [f"created topic {topic} with 3 partitions"]
    skiff(broker.bootstrap, "topic", "create", other)

    listed = lines_of(skiff(broker.bootstrap, "topic", "list"))
    assert topic in listed and other in listed
    assert listed == sorted(listed)

    described = lines_of(skiff(broker.bootstrap, "topic", "describe", topic))
    assert described[0].startswith(f"Topic: {topic}\t") and "PartitionCount: 3" in described[0], described
    assert described[1] == "Configs: cleanup.policy=compact,delete; retention.ms=86400000", described
    assert [line.split("\t")[1] for line in described[2:]] == [f"Partition: {p}" for p in range(3)]
    assert all("LogStartOffset: 0\tHighWatermark: 0" in line for line in described[2:]), described

    again = skiff(broker.bootstrap, "topic", "create", topic, check=False)
    assert again.returncode != 0
    assert "TOPIC_ALREADY_EXISTS" in stderr_of(again), stderr_of(again)

    assert lines_of(skiff(broker.bootstrap, "topic", "delete", other)) == [f"deleted topic {other}"]
    assert other not in lines_of(skiff(broker.bootstrap, "topic", "list"))
    gone = skiff(broker.bootstrap, "topic", "delete", other, check=False)
    assert gone.returncode != 0 and "UNKNOWN_TOPIC_OR_PARTITION" in stderr_of(gone), stderr_of(gone)
    missing = skiff(broker.bootstrap, "topic", "describe", other, check=False)
    assert missing.returncode != 0 and "does not exist" in stderr_of(missing), stderr_of(missing)


def test_produce_1000_lines_then_consume_from_beginning(broker):
    topic = unique("cli-pc")
    skiff(broker.bootstrap, "topic", "create", topic, "--partitions", "3")
    lines = [f"line-{i}" for i in range(1000)]
    produced = skiff(broker.bootstrap, "produce", topic, input=lines_input(lines))
    assert f"produced 1000 records to {topic}" in stderr_of(produced)

    consumed = consume_all(broker.bootstrap, topic, idle_ms=2000)
    assert sorted(consumed) == sorted(lines)

    by_kcat = kcat("-C", "-b", broker.bootstrap, "-t", topic, "-e", "-q").stdout.decode().splitlines()
    assert sorted(by_kcat) == sorted(lines)

    # Round-robin spreads records without keys evenly, and describe's watermarks add up.
    described = lines_of(skiff(broker.bootstrap, "topic", "describe", topic))[2:]
    high_watermarks = [int(line.rsplit("HighWatermark: ", 1)[1]) for line in described]
    assert sorted(high_watermarks) == [333, 333, 334]


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_keys_codecs_and_offsets_agree_with_kcat(memory_broker, codec):
    topic = unique("cli-keys")
    skiff(memory_broker.bootstrap, "topic", "create", topic, "--partitions", "2")
    lines = ["k1:v1", "k2:v2:with:colons", "no key here", ":empty key"]
    skiff(
        memory_broker.bootstrap, "produce", topic, "--key-separator", ":", "--partition", "1",
        "--compression", codec, input=lines_input(lines),
    )
    printed = consume_all(memory_broker.bootstrap, topic, "--print-key", "--print-offset")
    assert printed == [
        "1:0\tk1\tv1",
        "1:1\tk2\tv2:with:colons",
        "1:2\tnull\tno key here",
        "1:3\t\tempty key",
    ]
    by_kcat = kcat_consume(memory_broker.bootstrap, topic, "-f", "%k=%s\n", partition=1).splitlines()
    assert by_kcat == ["k1=v1", "k2=v2:with:colons", "=no key here", "=empty key"]
    assert kcat_consume(memory_broker.bootstrap, topic, partition=0) == ""


def test_consume_reads_what_kcat_produced(memory_broker):
    topic = unique("cli-from-kcat")
    kcat_produce(memory_broker.bootstrap, topic, ["a:1", "b:2", "c:3"], "-K", ":")
    assert consume_all(memory_broker.bootstrap, topic, "--print-key") == ["a\t1", "b\t2", "c\t3"]


def test_same_key_same_partition_and_explicit_partition(memory_broker):
    topic = unique("cli-partitioning")
    skiff(memory_broker.bootstrap, "topic", "create", topic, "--partitions", "4")
    lines = [f"user-{i % 5}|event-{i}" for i in range(100)]
    skiff(memory_broker.bootstrap, "produce", topic, "--key-separator", "|", input=lines_input(lines))
    partitions_of_key: dict[str, set[str]] = {}
    for line in consume_all(memory_broker.bootstrap, topic, "--print-key", "--print-offset"):
        position, key, _ = line.split("\t")
        partitions_of_key.setdefault(key, set()).add(position.split(":")[0])
    assert len(partitions_of_key) == 5
    assert all(len(partitions) == 1 for partitions in partitions_of_key.values()), partitions_of_key

    only = consume_all(memory_broker.bootstrap, topic, "--partition", "3", "--print-offset")
    assert all(line.startswith("3:") for line in only)

    bad = skiff(memory_broker.bootstrap, "produce", topic, "--partition", "9", input=b"x\n", check=False)
    assert bad.returncode != 0 and "partition 9 does not exist" in stderr_of(bad), stderr_of(bad)


def test_max_messages_and_file_input(memory_broker, tmp_path):
    topic = unique("cli-max")
    source = tmp_path / "input.txt"
    source.write_text("".join(f"{i}\n" for i in range(50)))
    skiff(memory_broker.bootstrap, "produce", topic, "--file", str(source), "--batch-size", "7", "--partition", "0")
    first = skiff(memory_broker.bootstrap, "consume", topic, "--from-beginning", "--max-messages", "5")
    assert lines_of(first) == ["0", "1", "2", "3", "4"]
    assert "consumed 5 records" in stderr_of(first)
    assert consume_all(memory_broker.bootstrap, topic) == [str(i) for i in range(50)]


@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_acks(memory_broker, acks):
    topic = unique("cli-acks")
    skiff(memory_broker.bootstrap, "topic", "create", topic)
    skiff(memory_broker.bootstrap, "produce", topic, "--acks", acks, input=lines_input(["x", "y"]))
    deadline = time.monotonic() + 5
    while (records := consume_all(memory_broker.bootstrap, topic)) != ["x", "y"]:
        assert time.monotonic() < deadline, records  # acks=0: the broker appends after we exit
        time.sleep(0.1)


def test_consume_starts_at_latest_by_default(memory_broker):
    topic = unique("cli-latest")
    skiff(memory_broker.bootstrap, "produce", topic, input=lines_input(["old"] * 3))
    command = [str(skiff_binary()), "consume", topic, "--bootstrap", memory_broker.bootstrap, "--max-messages", "1"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as tail:
        deadline = time.monotonic() + CLI_TIMEOUT
        # It may still be looking up the end of the log: keep producing until it prints something.
        while tail.poll() is None:
            assert time.monotonic() < deadline, "consume did not see new records"
            skiff(memory_broker.bootstrap, "produce", topic, input=b"new\n")
            time.sleep(0.2)
        out, err = tail.communicate(timeout=5)
    assert tail.returncode == 0, err
    assert out.decode().splitlines() == ["new"]


def test_large_lines_are_split_across_requests(memory_broker):
    topic = unique("cli-large")
    lines = [letter * 600_000 for letter in "abc"]  # two would overflow one 1 MiB batch
    skiff(memory_broker.bootstrap, "produce", topic, "--partition", "0", input=lines_input(lines))
    assert consume_all(memory_broker.bootstrap, topic) == lines
    too_big = skiff(memory_broker.bootstrap, "produce", topic, input=b"z" * 3_000_000 + b"\n", check=False)
    assert too_big.returncode != 0 and "MESSAGE_TOO_LARGE" in stderr_of(too_big), stderr_of(too_big)


def test_group_offsets_or_a_clear_refusal(memory_broker):
    topic = unique("cli-group")
    skiff(memory_broker.bootstrap, "produce", topic, "--partition", "0", input=lines_input([str(i) for i in range(10)]))
    apis = advertised_apis(memory_broker)
    group_args = ("consume", topic, "--group", unique("g"), "--from-beginning")
    if API_OFFSET_COMMIT not in apis or API_OFFSET_FETCH not in apis:
        refused = skiff(memory_broker.bootstrap, *group_args, check=False)
        assert refused.returncode != 0
        assert "consumer groups need a broker that supports OffsetCommit" in stderr_of(refused)
        return
    first = skiff(memory_broker.bootstrap, *group_args, "--max-messages", "4")
    assert lines_of(first) == ["0", "1", "2", "3"]
    rest = skiff(memory_broker.bootstrap, *group_args, "--timeout-ms", "1000")
    assert lines_of(rest) == [str(i) for i in range(4, 10)]


def test_env_vars_stand_in_for_flags(memory_broker):
    topic = unique("cli-env")
    env = {"SKIFF_BOOTSTRAP": memory_broker.bootstrap}
    skiff(None, "produce", topic, input=b"k=v\n", env={**env, "SKIFF_KEY_SEPARATOR": "=", "SKIFF_ACKS": "1"})
    consumed = skiff(
        None, "consume", topic,
        env={**env, "SKIFF_FROM_BEGINNING": "1", "SKIFF_PRINT_KEY": "true", "SKIFF_TIMEOUT_MS": "1000"},
    )
    assert lines_of(consumed) == ["k\tv"]


def test_missing_topic_without_auto_creation(broker_factory):
    broker = broker_factory("memory", "--auto-create-topics", "false")
    produced = skiff(broker.bootstrap, "produce", "nowhere", input=b"x\n", check=False)
    assert produced.returncode != 0 and "does not exist" in stderr_of(produced), stderr_of(produced)
    consumed = skiff(broker.bootstrap, "consume", "nowhere", "--timeout-ms", "500", check=False)
    assert consumed.returncode != 0 and "topic nowhere does not exist" in stderr_of(consumed)


def test_unreachable_broker_is_a_clear_error(skiff_bin):
    address = f"127.0.0.1:{free_port()}"
    result = skiff(address, "topic", "list", check=False)
    assert result.returncode != 0
    assert address in stderr_of(result) and "SKIFF_BOOTSTRAP" in stderr_of(result), stderr_of(result)
