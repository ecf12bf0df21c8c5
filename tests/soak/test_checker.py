"""The history checker catches what it is for: each test breaks one property of an otherwise
correct history and expects exactly that kind of violation. Without these, a soak that passes
could be a checker that cannot fail."""

from __future__ import annotations

import copy

from history import Batch, FinalRead, PartitionRead, check, payload

T = "soak"


def good_history() -> tuple[list[dict], FinalRead]:
    """A correct history: writer `i` (idempotent) sends 3 records to partition 0; writer `x`
    (transactional) commits transaction 1 with 2 records and aborts transaction 2 with 1, all
    in partition 0; one member consumes and commits everything committed; the monitor sees its
    offset grow.

    Partition 0: 0 i/0, 1 x/0 (t1), 2 i/1, 3 x/1 (t1), 4 COMMIT, 5 x/2 (t2), 6 ABORT, 7 i/2
    """
    i0, i1, i2 = (payload("i", s, 0) for s in range(3))
    x0, x1 = payload("x", 0, 0, 1), payload("x", 1, 0, 1)
    x2 = payload("x", 2, 0, 2)
    events = [
        {"ev": "ack", "w": "i", "seq": 0, "topic": T, "p": 0, "off": 0},
        {"ev": "ack", "w": "x", "seq": 0, "topic": T, "p": 0, "off": 1, "txn": 1},
        {"ev": "ack", "w": "i", "seq": 1, "topic": T, "p": 0, "off": 2},
        {"ev": "ack", "w": "x", "seq": 1, "topic": T, "p": 0, "off": 3, "txn": 1},
        {"ev": "txn", "w": "x", "txn": 1, "outcome": "commit"},
        {"ev": "ack", "w": "x", "seq": 2, "topic": T, "p": 0, "off": 5, "txn": 2},
        {"ev": "txn", "w": "x", "txn": 2, "outcome": "abort"},
        {"ev": "ack", "w": "i", "seq": 2, "topic": T, "p": 0, "off": 7},
        {"ev": "done", "w": "i", "sent": 3},
        {"ev": "done", "w": "x", "sent": 3},
    ]
    committed_records = [(0, i0), (1, x0), (2, i1), (3, x1), (7, i2)]
    for off, value in committed_records:
        events.append({"ev": "consumed", "m": "m1", "g": "g", "topic": T, "p": 0, "off": off, "v": value})
    events += [
        {"ev": "commit", "m": "m1", "g": "g", "topic": T, "p": 0, "off": 4},
        {"ev": "observed", "g": "g", "topic": T, "p": 0, "off": 4},
        {"ev": "commit", "m": "m1", "g": "g", "topic": T, "p": 0, "off": 8},
        {"ev": "observed", "g": "g", "topic": T, "p": 0, "off": 8},
    ]
    read = PartitionRead(
        high=8,
        stable=8,
        uncommitted=[(0, i0), (1, x0), (2, i1), (3, x1), (5, x2), (7, i2)],
        committed=committed_records,
        batches=[
            Batch(0, 0, False),
            Batch(1, 1, False),
            Batch(2, 2, False),
            Batch(3, 3, False),
            Batch(4, 4, True, "commit"),
            Batch(5, 5, False),
            Batch(6, 6, True, "abort"),
            Batch(7, 7, False),
        ],
    )
    return events, FinalRead({(T, 0): read}, {"g": {(T, 0): 8}})


def partition(final: FinalRead) -> PartitionRead:
    return final.partitions[(T, 0)]


def test_a_correct_history_passes():
    events, final = good_history()
    report = check(events, final)
    assert report.violations == []
    assert report.counts["records acknowledged"] == 6
    assert report.counts["transactions commit"] == 1 and report.counts["transactions abort"] == 1


def test_a_lost_acknowledged_record():
    events, final = good_history()
    read = partition(final)
    read.uncommitted = [r for r in read.uncommitted if r[0] != 2]
    read.committed = [r for r in read.committed if r[0] != 2]
    read.batches = [b for b in read.batches if b.base != 2]
    events = [e for e in events if not (e["ev"] == "consumed" and e["off"] == 2)]
    report = check(events, final)
    assert "lost" in report.kinds() and report.lost >= 1, report.violations


def test_an_acknowledged_record_at_another_offset():
    events, final = good_history()
    ack = next(e for e in events if e["ev"] == "ack" and e["w"] == "i" and e["seq"] == 2)
    ack["off"] = 6
    assert "lost" in check(events, final).kinds()


def stored_again(final, value: str) -> None:
    """Appends `value` to the partition's log at offset 8, as a plain committed record."""
    read = partition(final)
    read.uncommitted.append((8, value))
    read.committed.append((8, value))
    read.batches.append(Batch(8, 8, False))
    read.high = read.stable = 9


def test_a_duplicate():
    events, final = good_history()
    stored_again(final, payload("i", 2, 0))
    report = check(events, final)
    assert "duplicate" in report.kinds() and report.duplicates >= 1, report.violations


def test_a_gap_in_the_offsets():
    events, final = good_history()
    read = partition(final)
    # The batch at 7 moves to 8: offset 7 belongs to no batch.
    read.batches[-1] = Batch(8, 8, False)
    read.uncommitted[-1] = (8, read.uncommitted[-1][1])
    read.committed[-1] = (8, read.committed[-1][1])
    read.high = read.stable = 9
    for e in events:
        if e.get("off") == 7 and e["ev"] in ("ack", "consumed"):
            e["off"] = 8
    assert check(events, final).kinds() == {"gap"}


def test_a_data_offset_a_reader_never_got():
    events, final = good_history()
    read = partition(final)
    # The control batch at 4 is claimed to be data: read_uncommitted should have had a record.
    read.batches[4] = Batch(4, 4, False)
    assert "gap" in check(events, final).kinds()


def test_an_aborted_record_seen_by_the_final_read_committed_read():
    events, final = good_history()
    read = partition(final)
    read.committed.insert(4, (5, payload("x", 2, 0, 2)))
    assert "read_committed" in check(events, final).kinds()


def test_an_aborted_record_consumed_by_a_read_committed_member():
    events, final = good_history()
    events.append({"ev": "consumed", "m": "m2", "g": "g", "topic": T, "p": 0, "off": 5, "v": payload("x", 2, 0, 2)})
    assert check(events, final).kinds() == {"read_committed"}


def test_an_open_transaction_left_behind():
    events, final = good_history()
    partition(final).stable = 5
    assert "read_committed" in check(events, final).kinds()


def test_a_transaction_of_unknown_outcome_must_be_all_or_nothing():
    events, final = good_history()
    for e in events:
        if e["ev"] == "txn" and e["txn"] == 1:
            e["outcome"] = "unknown"
    assert check(events, final).violations == []  # fully visible: it committed
    read = partition(final)
    read.committed = [r for r in read.committed if r[0] != 3]
    events = [e for e in events if not (e["ev"] == "consumed" and e["off"] == 3)]
    assert "read_committed" in check(events, final).kinds()


def test_a_committed_transaction_missing_from_read_committed():
    events, final = good_history()
    read = partition(final)
    read.committed = [r for r in read.committed if r[0] != 1]
    events = [e for e in events if not (e["ev"] == "consumed" and e["off"] == 1)]
    assert "lost" in check(events, final).kinds()


def test_a_committed_offset_moving_back_for_one_member():
    events, final = good_history()
    events.append({"ev": "commit", "m": "m1", "g": "g", "topic": T, "p": 0, "off": 3})
    assert check(events, final).kinds() == {"offset_moved_back"}


def test_a_committed_offset_moving_back_as_the_monitor_saw_it():
    events, final = good_history()
    events.append({"ev": "observed", "g": "g", "topic": T, "p": 0, "off": 2})
    assert check(events, final).kinds() == {"offset_moved_back"}


def test_a_final_committed_offset_below_an_acknowledged_commit():
    events, final = good_history()
    final.group_offsets["g"][(T, 0)] = 4
    assert check(events, final).kinds() == {"offset_moved_back"}


def test_a_group_skipping_records():
    events, final = good_history()
    events = [e for e in events if not (e["ev"] == "consumed" and e["off"] == 2)]
    assert check(events, final).kinds() == {"group_skipped"}


def test_a_producer_reordered_in_a_partition():
    events, final = good_history()
    read = partition(final)
    # i/1 and i/2 swap places (offsets 2 and 7), acknowledgements saying so.
    i1, i2 = payload("i", 1, 0), payload("i", 2, 0)
    swap = {i1: i2, i2: i1}
    read.uncommitted = [(off, swap.get(v, v)) for off, v in read.uncommitted]
    read.committed = [(off, swap.get(v, v)) for off, v in read.committed]
    for e in events:
        if e["ev"] == "ack" and e["w"] == "i" and e["seq"] in (1, 2):
            e["off"] = {1: 7, 2: 2}[e["seq"]]
        if e["ev"] == "consumed" and e["v"] in swap:
            e["v"] = swap[e["v"]]
    assert check(events, final).kinds() == {"order"}


def test_a_record_nobody_sent():
    events, final = good_history()
    stored_again(final, payload("i", 99, 0))
    assert "phantom" in check(events, final).kinds()


def test_a_history_round_trips_through_json():
    events, final = good_history()
    again = FinalRead.from_json(copy.deepcopy(final.to_json()))
    assert again == final
    assert check(events, again).violations == []
