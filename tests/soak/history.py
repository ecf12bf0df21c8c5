"""The soak's history checker: pure functions over what the workers wrote down and what a final
read of every partition found. No Kafka client here, so `test_checker.py` can feed it invented
histories and prove it catches each kind of violation.

History events (JSON lines, one file per worker; `ev` says which):

    ack       a producer's delivery report without error: w, seq, topic, p, off (txn for a
              transactional producer)
    nack      a delivery report with an error: the record may or may not be stored
    txn       the end of a transaction: w, txn, outcome (commit, abort, or unknown when the
              producer failed fatally and its successor's init_transactions decided it)
    done      a producer finished: w, sent (records 0..sent-1 were handed to the client)
    fatal     an idempotent producer's client failed fatally (the broker broke the sequence
              contract): a violation
    txn_error a transactional call failed; with fatal=true the producer was replaced
    consumed  a group member received a record: m, g, topic, p, off, v
    commit    a group member's synchronous commit succeeded for one partition: m, g, topic, p, off
    observed  the offset monitor read a group's committed offset: g, topic, p, off

Every record value is a payload id, `w=<writer>;s=<seq>;p=<partition>;t=<txn or ->`: unique in
the whole soak, and it says who wrote it, in which order, for which partition and transaction.

The final read (`FinalRead`) holds, per partition, the high watermark and last stable offset,
every record a read_uncommitted and a read_committed reader got from offset 0, the batch layout
(offset ranges, data or control) from a raw Fetch, and each group's committed offsets.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

# Topic and partition, the key of everything per partition.
Partition = tuple[str, int]


def payload(writer: str, seq: int, partition: int, txn: int | None = None) -> str:
    return f"w={writer};s={seq};p={partition};t={'-' if txn is None else txn}"


@dataclass(frozen=True)
class Payload:
    writer: str
    seq: int
    partition: int
    txn: int | None


def parse_payload(value: str) -> Payload | None:
    try:
        fields = dict(item.split("=", 1) for item in value.split(";"))
        txn = fields["t"]
        return Payload(fields["w"], int(fields["s"]), int(fields["p"]), None if txn == "-" else int(txn))
    except (ValueError, KeyError):
        return None


@dataclass
class Batch:
    """One record batch of the log as a raw Fetch returned it."""

    base: int
    last: int
    control: bool
    marker: str | None = None  # "commit" or "abort" for a control batch
    producer: tuple[int, int, int] | None = None  # (producer id, epoch, base sequence), for reports


@dataclass
class PartitionRead:
    high: int
    stable: int
    uncommitted: list[tuple[int, str]]  # (offset, value), read_uncommitted from offset 0
    committed: list[tuple[int, str]]  # the same with read_committed
    batches: list[Batch]


@dataclass
class FinalRead:
    partitions: dict[Partition, PartitionRead]
    # group -> partition -> committed offset (absent: nothing committed)
    group_offsets: dict[str, dict[Partition, int]] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "partitions": [
                {
                    "topic": topic,
                    "p": p,
                    "high": read.high,
                    "stable": read.stable,
                    "uncommitted": read.uncommitted,
                    "committed": read.committed,
                    "batches": [[b.base, b.last, b.control, b.marker, b.producer] for b in read.batches],
                }
                for (topic, p), read in sorted(self.partitions.items())
            ],
            "groups": {
                group: [[topic, p, off] for (topic, p), off in sorted(offsets.items())]
                for group, offsets in self.group_offsets.items()
            },
        }

    @classmethod
    def from_json(cls, data: dict) -> "FinalRead":
        partitions = {
            (entry["topic"], entry["p"]): PartitionRead(
                entry["high"],
                entry["stable"],
                [tuple(r) for r in entry["uncommitted"]],
                [tuple(r) for r in entry["committed"]],
                [Batch(*b[:4], tuple(b[4]) if len(b) > 4 and b[4] else None) for b in entry["batches"]],
            )
            for entry in data["partitions"]
        }
        groups = {g: {(t, p): off for t, p, off in rows} for g, rows in data["groups"].items()}
        return cls(partitions, groups)


@dataclass
class Report:
    violations: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def fail(self, kind: str, detail: str) -> None:
        self.counts[f"violations.{kind}"] += 1
        self.violations.append(f"{kind}: {detail}")

    def kinds(self) -> set[str]:
        return {v.split(":", 1)[0] for v in self.violations}

    @property
    def lost(self) -> int:
        return self.counts["violations.lost"]

    @property
    def duplicates(self) -> int:
        return self.counts["violations.duplicate"]

    def summary(self) -> str:
        keys = sorted(k for k in self.counts if not k.startswith("violations."))
        text = ", ".join(f"{k}={self.counts[k]}" for k in keys)
        verdict = "PASS" if not self.violations else f"FAIL ({len(self.violations)} violations)"
        return f"{verdict}: {text}"


def read_events(directory: Path) -> list[dict]:
    """Every event of every `*.jsonl` history file, each file's events in its order."""
    events = []
    for path in sorted(directory.glob("*.jsonl")):
        with open(path) as lines:
            events.extend(json.loads(line) for line in lines if line.strip())
    return events


def check(events: list[dict], final: FinalRead) -> Report:
    """Checks the soak's properties; every violation found is in the report."""
    report = Report()
    _check_layout(final, report)
    stored = _check_stored(events, final, report)
    _check_acknowledged(events, stored, report)
    _check_order(stored, report)
    _check_transactions(events, final, stored, report)
    _check_groups(events, final, report)
    return report


def _check_layout(final: FinalRead, report: Report) -> None:
    """Offsets are contiguous: the batches of a partition tile [0, high) with no gap and no
    overlap, every offset of a data batch reaches a read_uncommitted reader and nothing else
    does. Control batches (transaction markers) take one offset each and carry no data, which
    is why the data offsets alone may have holes."""
    for (topic, p), read in sorted(final.partitions.items()):
        where = f"{topic}/{p}"
        expected = 0
        data_offsets: set[int] = set()
        for batch in sorted(read.batches, key=lambda b: b.base):
            if batch.base != expected:
                kind = "gap" if batch.base > expected else "overlap"
                report.fail("gap", f"{where}: {kind} in the log, batch at {batch.base}..{batch.last} after {expected - 1}")
            if batch.last < batch.base:
                report.fail("gap", f"{where}: batch {batch.base}..{batch.last} ends before it starts")
            if batch.control:
                report.counts["control batches"] += 1
                if batch.last != batch.base or batch.marker not in ("commit", "abort"):
                    report.fail("gap", f"{where}: control batch {batch.base}..{batch.last} is not one marker ({batch.marker})")
            else:
                data_offsets.update(range(batch.base, batch.last + 1))
            expected = max(expected, batch.last + 1)
        if expected != read.high:
            report.fail("gap", f"{where}: the batches end at {expected}, the high watermark is {read.high}")
        if read.stable != read.high:
            report.fail("read_committed", f"{where}: last stable offset {read.stable} < high watermark {read.high} after every transaction ended")
        offsets = [off for off, _ in read.uncommitted]
        if len(set(offsets)) != len(offsets):
            report.fail("duplicate", f"{where}: read_uncommitted got an offset twice")
        missing = sorted(data_offsets - set(offsets))
        extra = sorted(set(offsets) - data_offsets)
        if missing:
            report.fail("gap", f"{where}: {len(missing)} data offsets never delivered, first {missing[:5]}")
        if extra:
            report.fail("gap", f"{where}: {len(extra)} offsets delivered outside any data batch, first {extra[:5]}")
        if offsets != sorted(offsets):
            report.fail("order", f"{where}: read_uncommitted delivered offsets out of order")


def _writer_of(final: FinalRead, topic: str, p: int, off: int) -> tuple[int, int, int] | None:
    """The producer id, epoch and base sequence of the batch holding an offset, if known."""
    for batch in final.partitions[(topic, p)].batches:
        if batch.base <= off <= batch.last:
            return batch.producer
    return None


def _check_stored(events: list[dict], final: FinalRead, report: Report) -> dict[str, tuple[str, int, int]]:
    """Every stored record was produced by a worker, sits in the partition it was sent to, and
    is stored once. Returns payload id -> (topic, partition, offset)."""
    sent = {e["w"]: e["sent"] for e in events if e["ev"] == "done"}
    for e in events:
        if e["ev"] == "fatal":
            report.fail("producer_fatal", f"{e['w']}: {e.get('err')}")
        if e["ev"] == "txn_error" and e.get("fatal"):
            report.counts["transactional producers replaced"] += 1
    writers = {e["w"] for e in events if "w" in e}
    for writer in sorted(writers - set(sent)):
        report.fail("history", f"writer {writer} never reported how many records it sent")
    stored: dict[str, tuple[str, int, int]] = {}
    for (topic, p), read in sorted(final.partitions.items()):
        for off, value in read.uncommitted:
            report.counts["records stored"] += 1
            if value in stored:
                first = stored[value]
                writers = [_writer_of(final, *first), _writer_of(final, topic, p, off)]
                report.fail(
                    "duplicate",
                    f"{value} stored at {first} and at {(topic, p, off)}; (producer id, epoch, base sequence) of their batches: {writers}",
                )
                continue
            stored[value] = (topic, p, off)
            parsed = parse_payload(value)
            if parsed is None or parsed.writer not in sent or parsed.seq >= sent[parsed.writer]:
                report.fail("phantom", f"{topic}/{p}@{off} holds {value!r}, which no worker sent")
            elif parsed.partition != p:
                report.fail("phantom", f"{value} was sent to partition {parsed.partition}, stored in {topic}/{p}@{off}")
    return stored


def _outcomes(events: list[dict]) -> dict[tuple[str, int], str]:
    return {(e["w"], e["txn"]): e["outcome"] for e in events if e["ev"] == "txn"}


def _check_acknowledged(events: list[dict], stored: dict, report: Report) -> None:
    """Every acknowledged record (outside a transaction or in one that committed) is stored,
    exactly at the offset its acknowledgement named. A record of an aborted transaction may stay
    in the log as aborted data, but only at its acknowledged offset."""
    outcomes = _outcomes(events)
    for e in events:
        if e["ev"] == "nack":
            report.counts["produce errors"] += 1
        if e["ev"] != "ack":
            continue
        report.counts["records acknowledged"] += 1
        value = payload(e["w"], e["seq"], e["p"], e.get("txn"))
        acked_at = (e["topic"], e["p"], e["off"])
        txn = e.get("txn")
        outcome = "commit" if txn is None else outcomes.get((e["w"], txn), "unknown")
        where = stored.get(value)
        if where is None:
            if outcome != "abort":
                report.fail("lost", f"{value} acknowledged at {acked_at} (transaction: {outcome}) is not in the log")
        elif where != acked_at:
            report.counts["acknowledged but stored at another offset"] += 1
            report.fail("lost", f"{value} acknowledged at {acked_at} is stored at {where}")


def _check_order(stored: dict, report: Report) -> None:
    """A producer's records keep their order in each partition: offsets grow with sequence."""
    by_writer: dict[tuple[str, str, int], list[tuple[int, int]]] = defaultdict(list)
    for value, (topic, p, off) in stored.items():
        parsed = parse_payload(value)
        if parsed is not None:
            by_writer[(parsed.writer, topic, p)].append((parsed.seq, off))
    for (writer, topic, p), pairs in sorted(by_writer.items()):
        pairs.sort()
        for (seq_a, off_a), (seq_b, off_b) in zip(pairs, pairs[1:]):
            if off_b <= off_a:
                report.fail("order", f"{writer} in {topic}/{p}: seq {seq_a} at {off_a} but seq {seq_b} at {off_b}")
                break


def _check_transactions(events: list[dict], final: FinalRead, stored: dict, report: Report) -> None:
    """read_committed readers see every record outside transactions and every record of a
    committed transaction, never one of an aborted transaction; a transaction whose client
    could not learn its outcome is all or nothing. Checked for the final read_committed read and
    for every record the soak's read_committed group members consumed."""
    outcomes = _outcomes(events)
    for outcome in outcomes.values():
        report.counts[f"transactions {outcome}"] += 1
    visible: dict[str, tuple[str, int, int]] = {}
    for (topic, p), read in sorted(final.partitions.items()):
        for off, value in read.committed:
            if value in visible:
                report.fail("duplicate", f"read_committed got {value} twice")
            visible[value] = (topic, p, off)
            if stored.get(value) != (topic, p, off):
                report.fail("read_committed", f"read_committed got {value} at {(topic, p, off)}, read_uncommitted at {stored.get(value)}")

    # An unknown outcome is decided by what the log shows, but it must be one decision.
    decided: dict[tuple[str, int], str] = {}
    members: dict[tuple[str, int], list[str]] = defaultdict(list)
    for value in stored:
        parsed = parse_payload(value)
        if parsed is not None and parsed.txn is not None:
            members[(parsed.writer, parsed.txn)].append(value)
    for key, values in sorted(members.items()):
        outcome = outcomes.get(key)
        if outcome is None:
            report.fail("history", f"transaction {key} has stored records but no recorded end")
            outcome = "unknown"
        seen = [v for v in values if v in visible]
        if outcome == "unknown":
            if seen and len(seen) != len(values):
                report.fail("read_committed", f"transaction {key} is partly visible: {len(seen)} of {len(values)} records")
            decided[key] = "commit" if seen else "abort"
            report.counts[f"unknown transactions decided {decided[key]}"] += 1
        else:
            decided[key] = outcome
        if decided[key] == "abort" and seen:
            report.fail("read_committed", f"aborted transaction {key}: read_committed got {seen[:3]}")
        if decided[key] == "commit" and len(seen) != len(values):
            missing = sorted(set(values) - set(seen))
            report.fail("lost", f"committed transaction {key}: read_committed misses {missing[:3]}")

    for value, at in stored.items():
        parsed = parse_payload(value)
        if parsed is not None and parsed.txn is None and value not in visible:
            report.fail("lost", f"{value} at {at} (no transaction) is missing from the read_committed read")

    for e in events:
        if e["ev"] != "consumed":
            continue
        report.counts["records consumed"] += 1
        value, at = e["v"], (e["topic"], e["p"], e["off"])
        if stored.get(value) != at:
            report.fail("read_committed", f"member {e['m']} consumed {value} at {at}; the log has it at {stored.get(value)}")
            continue
        parsed = parse_payload(value)
        if parsed is not None and parsed.txn is not None:
            state = decided.get((parsed.writer, parsed.txn), "unknown")
            if state != "commit":
                report.fail("read_committed", f"member {e['m']} (read_committed) consumed {value} of a transaction that did not commit ({state})")


def _check_groups(events: list[dict], final: FinalRead, report: Report) -> None:
    """Committed group offsets never move back: not in the order one member's commits
    succeeded, not in the order the monitor observed them, and the final committed offset is at
    least every acknowledged commit. The group skipped nothing: every committed record below
    its final committed offset reached some member."""
    last_by_member: dict[tuple[str, str, str, int], int] = {}
    highest: dict[tuple[str, str, int], int] = {}
    observed: dict[tuple[str, str, int], int] = {}
    for e in events:
        key = (e.get("g"), e.get("topic"), e.get("p"))
        if e["ev"] == "commit":
            report.counts["offset commits"] += 1
            member_key = (e["m"], *key)
            before = last_by_member.get(member_key)
            if before is not None and e["off"] < before:
                report.fail("offset_moved_back", f"member {e['m']} committed {e['off']} for {key} after {before}")
            last_by_member[member_key] = e["off"]
            highest[key] = max(highest.get(key, -1), e["off"])
        elif e["ev"] == "observed":
            report.counts["offset observations"] += 1
            before = observed.get(key)
            if before is not None and e["off"] < before:
                report.fail("offset_moved_back", f"monitor saw {key} at {e['off']} after {before}")
            observed[key] = e["off"]

    for (group, topic, p), off in sorted(highest.items()):
        final_off = final.group_offsets.get(group, {}).get((topic, p))
        if final_off is None or final_off < off:
            report.fail("offset_moved_back", f"{group} {topic}/{p}: final committed offset {final_off} < acknowledged commit {off}")
    consumed: dict[tuple[str, str, int], set[int]] = defaultdict(set)
    for e in events:
        if e["ev"] == "consumed":
            consumed[(e["g"], e["topic"], e["p"])].add(e["off"])
    for group, offsets in sorted(final.group_offsets.items()):
        for (topic, p), committed in sorted(offsets.items()):
            read = final.partitions.get((topic, p))
            if read is None:
                continue
            if committed > read.high:
                report.fail("offset_moved_back", f"{group} {topic}/{p}: committed {committed} beyond the high watermark {read.high}")
            skipped = [off for off, _ in read.committed if off < committed and off not in consumed[(group, topic, p)]]
            if skipped:
                report.fail("group_skipped", f"{group} {topic}/{p}: committed {committed} but no member got offsets {skipped[:5]}")


if __name__ == "__main__":
    # Re-checks a kept soak run: python history.py <the test's temp directory>
    import sys

    run = Path(sys.argv[1])
    found = check(read_events(run / "history"), FinalRead.from_json(json.loads((run / "final.json").read_text())))
    print(found.summary())
    print("\n".join(found.violations))
    sys.exit(1 if found.violations else 0)
