"""The multi-broker kill soak (issue 14, item 4).

Three brokers on one storage URL (Postgres, S3). Against them, for SKIFF_SOAK_SECONDS (default 40)
per engine: two idempotent producers, two transactional producers (one transaction in three
aborted on purpose), two read_committed members of one consumer group committing after every
batch, and a monitor reading the group's committed offsets; every one of them writes down what
it was told (history.py). Meanwhile one broker after the other is killed with SIGKILL and
restarted on its port every 1.5-3.5 s, and every ~12 s the storage server stops answering for
1-2 s. Then the workers finish, the whole log is read back, and the checker verifies every
property in history.py; any violation fails the test with the evidence.

The short form runs in scripts/test.sh; the long form by hand:

    SKIFF_SOAK_SECONDS=600 SKIFF_BIN=target/debug/skiff ~/.cache/skiff-venv/bin/python -m pytest tests/soak -s
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from cluster import STORAGES, Cluster, e2e
from final_read import final_read
from history import check, read_events

SECONDS = float(os.environ.get("SKIFF_SOAK_SECONDS", "40"))
SEED = int(os.environ.get("SKIFF_SOAK_SEED", str(int(time.time()))))
WORKER = Path(__file__).with_name("worker.py")
TOPICS = ["soak-a", "soak-b"]
PARTITIONS = 3
GROUP = "soak-group"
ROLES = [
    ("idempotent", "idem1"),
    ("idempotent", "idem2"),
    ("transactional", "txn1"),
    ("transactional", "txn2"),
    ("member", "member1"),
    ("member", "member2"),
    ("monitor", "monitor"),
]


@pytest.fixture(scope="session")
def skiff_bin() -> Path:
    binary = e2e.skiff_binary()
    if not binary.is_file():
        pytest.exit(f"skiff binary not found at {binary}: build it or set SKIFF_BIN", returncode=2)
    return binary


def create_topics(bootstrap: str) -> None:
    client = AdminClient({"bootstrap.servers": bootstrap})
    futures = client.create_topics([NewTopic(t, num_partitions=PARTITIONS, replication_factor=1) for t in TOPICS])
    for future in futures.values():
        future.result(30)


def history_counts(directory: Path) -> dict[str, int]:
    """How many events of each kind the workers wrote so far."""
    counts: dict[str, int] = {}
    for path in directory.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            try:
                kind = json.loads(line)["ev"]
            except ValueError:
                continue  # a line being written
            counts[kind] = counts.get(kind, 0) + 1
    return counts


def wait_for(condition, what: str, workers: list, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        dead = [(name, proc.returncode) for name, proc in workers if proc.poll() is not None]
        assert not dead, f"workers exited early: {dead}"
        assert time.monotonic() < deadline, f"no {what} within {timeout}s"
        time.sleep(0.2)


@pytest.mark.timeout(SECONDS + 420)
@pytest.mark.parametrize("engine", ["postgres", "s3"])
def test_soak(engine, skiff_bin, tmp_path):
    rng = random.Random(SEED)
    if os.environ.get("SKIFF_SOAK_DIR"):  # kept: pytest removes all but its last few temp dirs
        tmp_path = Path(os.environ["SKIFF_SOAK_DIR"]) / f"{engine}-{SEED}"
        tmp_path.mkdir(parents=True)
    print(f"\nsoak: engine={engine} seconds={SECONDS} seed={SEED} dir={tmp_path}")
    storage = STORAGES[engine](tmp_path)
    cluster = Cluster(skiff_bin, tmp_path, storage)
    histories = tmp_path / "history"
    histories.mkdir()
    stop_file = tmp_path / "stop"
    workers: list[tuple[str, subprocess.Popen]] = []
    try:
        cluster.start()
        create_topics(cluster.bootstrap)
        for index, (role, name) in enumerate(ROLES):
            config = {
                "role": role,
                "name": name,
                "bootstrap": cluster.bootstrap,
                "topics": TOPICS,
                "partitions": PARTITIONS,
                "group": GROUP,
                "history": str(histories / f"{name}.jsonl"),
                "stop": str(stop_file),
                "seed": SEED + index,
            }
            workers.append(
                (
                    name,
                    subprocess.Popen(
                        [sys.executable, str(WORKER), json.dumps(config)],
                        cwd=WORKER.parent,
                        stdout=open(tmp_path / f"{name}.out", "wb"),
                        stderr=subprocess.STDOUT,
                        preexec_fn=e2e._die_with_parent,
                    ),
                )
            )
        # Faults start once every kind of work is under way.
        wait_for(
            lambda: all(history_counts(histories).get(kind, 0) > 0 for kind in ("ack", "txn", "consumed", "commit")),
            "acknowledged produce, ended transaction, consumed record and offset commit",
            workers,
        )

        kills = stalls = 0
        started = time.monotonic()
        next_stall = started + 6
        victim = rng.randrange(3)
        while time.monotonic() - started < SECONDS:
            time.sleep(rng.uniform(1.5, 3.5))
            broker = cluster.brokers[victim]
            victim = (victim + 1) % 3
            broker.kill9()
            kills += 1
            time.sleep(rng.uniform(0.1, 1.0))
            broker.start(timeout=60)
            if time.monotonic() >= next_stall:
                storage.stall(rng.uniform(1.0, 2.0))
                stalls += 1
                next_stall = time.monotonic() + 12
            dead = [(name, proc.returncode) for name, proc in workers if proc.poll() is not None]
            assert not dead, f"workers exited during the soak: {dead}"
        chaos_seconds = time.monotonic() - started

        # Work went on after the last fault: the cluster recovered, not just survived.
        before = history_counts(histories)
        wait_for(
            lambda: all(history_counts(histories).get(k, 0) > before.get(k, 0) for k in ("ack", "consumed", "commit")),
            "progress after the last fault",
            workers,
            timeout=120,
        )
        stop_file.touch()
        for name, proc in workers:
            try:
                proc.wait(180)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise AssertionError(f"worker {name} did not finish within 180 s of the stop")
            assert proc.returncode == 0, f"worker {name} exited {proc.returncode}:\n" + (tmp_path / f"{name}.out").read_text()[-3000:]

        assert all(broker.alive() for broker in cluster.brokers), "a broker died by itself"
        final = final_read(cluster.bootstrap, cluster.brokers[0].port, TOPICS, PARTITIONS, [GROUP])
        (tmp_path / "final.json").write_text(json.dumps(final.to_json()))
        events = read_events(histories)
        report = check(events, final)
        report.counts["broker kills"] = kills
        report.counts["storage stalls"] = stalls
        operations = sum(
            report.counts[k]
            for k in ("records acknowledged", "produce errors", "records consumed", "offset commits")
        ) + sum(v for k, v in report.counts.items() if k.startswith("transactions "))
        line = (
            f"soak result: engine={engine} seconds={chaos_seconds:.0f} operations={operations} "
            f"kills={kills} stalls={stalls} lost={report.lost} duplicates={report.duplicates} "
            f"verdict={'PASS' if not report.violations else 'FAIL'}\n  {report.summary()}"
        )
        print(line)
        (tmp_path / "report.txt").write_text(line + "\n" + "\n".join(report.violations) + "\n")
        if os.environ.get("SKIFF_SOAK_RESULTS"):
            with open(os.environ["SKIFF_SOAK_RESULTS"], "a") as results:
                results.write(line + "\n")

        assert not report.violations, (
            f"{len(report.violations)} violations (history in {histories}, final read in "
            f"{tmp_path / 'final.json'}):\n" + "\n".join(report.violations[:30])
        )
        assert not cluster.panics(), cluster.panics()
        # The soak did what it claims: enough of each kind of operation under enough faults.
        assert kills >= 3 and stalls >= 1, (kills, stalls)
        assert report.counts["records acknowledged"] >= 200
        assert report.counts["transactions commit"] >= 3 and report.counts["transactions abort"] >= 1
        assert report.counts["records consumed"] >= 100 and report.counts["offset commits"] >= 10
        assert report.counts["control batches"] >= 3
    finally:
        stop_file.touch()
        for _, proc in workers:
            if proc.poll() is None:
                proc.kill()
        cluster.stop()
        storage.close()
