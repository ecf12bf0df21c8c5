"""A soak worker, run as its own process, writing its history as JSON lines (see history.py).

    python worker.py CONFIG_JSON

CONFIG_JSON: {"role": "idempotent" | "transactional" | "member" | "monitor", "name": ...,
"bootstrap": ..., "topics": [...], "partitions": N, "history": path, "stop": path, "seed": N,
"group": ...}. A worker runs until the file `stop` exists, then finishes cleanly (producers flush,
transactions end, members commit and leave) and exits 0. It never exits because a broker died:
every client error is either retried or written down as an event the checker understands.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from history import payload

config = json.loads(sys.argv[1])
name = config["name"]
bootstrap = config["bootstrap"]
topics = config["topics"]
partitions = config["partitions"]
rng = random.Random(config.get("seed", 0))
history = open(config["history"], "a", buffering=1)

# Settings every client shares: fail over quickly between the three brokers.
CLIENT = {
    "bootstrap.servers": bootstrap,
    "socket.timeout.ms": 10000,
    "reconnect.backoff.ms": 50,
    "reconnect.backoff.max.ms": 1000,
    "topic.metadata.refresh.interval.ms": 2000,
    "log_level": 3,  # librdkafka's own errors only; the history is what matters
}


def log(event: dict) -> None:
    event["t"] = round(time.time(), 3)  # for reading a failed soak's history, never checked
    history.write(json.dumps(event, separators=(",", ":")) + "\n")


def stopping() -> bool:
    return os.path.exists(config["stop"])


def targets():
    """(topic, partition) for record seq: round robin over every partition."""
    everything = [(t, p) for t in topics for p in range(partitions)]
    return lambda seq: everything[seq % len(everything)]


def delivery(txn: int | None):
    def report(err, msg):
        seq = int(msg.value().decode().split(";")[1][2:])
        event = {"w": name, "seq": seq, "topic": msg.topic(), "p": msg.partition()}
        if txn is not None:
            event["txn"] = txn
        if err is None:
            log({"ev": "ack", **event, "off": msg.offset()})
        else:
            log({"ev": "nack", **event, "err": str(err)})

    return report


def produce(client: Producer, seq: int, txn: int | None) -> None:
    topic, p = targets()(seq)
    while True:
        try:
            client.produce(topic, value=payload(name, seq, p, txn).encode(), partition=p, on_delivery=delivery(txn))
            return
        except BufferError:
            client.poll(0.05)


def idempotent() -> None:
    """Records one by one, ~100/s, each acknowledged or failed in the history. If the client
    fails fatally (for an idempotent producer that means the broker broke the sequence
    contract), that is written down and a new producer carries on, so the soak still ends with
    a full history and final read for the checker to judge."""

    def new_producer() -> Producer:
        return Producer(
            {**CLIENT, "enable.idempotence": True, "acks": "all", "linger.ms": 5, "message.timeout.ms": 120000}
        )

    client = new_producer()
    seq = 0
    while not stopping():
        try:
            for _ in range(5):
                produce(client, seq, None)
                seq += 1
            client.poll(0.05)
        except KafkaException as error:
            if not error.args[0].fatal():
                raise
            log({"ev": "fatal", "w": name, "err": str(error.args[0])})
            try:
                client.flush(10)  # delivery reports (errors) of what was in flight
            except KafkaException:
                pass
            client = new_producer()
    remaining = client.flush(120)
    log({"ev": "done", "w": name, "sent": seq, "unreported": remaining})


def retried(call, what: str):
    """Runs a transactional API call, retrying it while the client says the error is
    retriable. Other errors propagate."""
    while True:
        try:
            return call()
        except KafkaException as error:
            if error.args[0].retriable():
                time.sleep(0.2)
                continue
            raise


def transactional_producer() -> Producer:
    client = Producer(
        {
            **CLIENT,
            "transactional.id": f"soak-{name}",
            "transaction.timeout.ms": 60000,
            "linger.ms": 5,
            "message.timeout.ms": 60000,
        }
    )
    retried(lambda: client.init_transactions(30), "init_transactions")
    return client


def transactional() -> None:
    """Transactions of 2-10 records over every partition; one in three aborted on purpose.
    When the client fails fatally, the transaction's outcome is unknown to it: a new producer
    with the same transactional id takes over (its init_transactions ends the old one, one way
    or the other), and the final read decides."""
    client = transactional_producer()
    seq = 0
    txn = 0
    while not stopping():
        txn += 1
        abort = rng.random() < 1 / 3
        outcome = "unknown"
        try:
            client.begin_transaction()
            for _ in range(rng.randint(2, 10)):
                produce(client, seq, txn)
                seq += 1
                client.poll(0)
            client.poll(0.05)
            try:
                if abort:
                    retried(lambda: client.abort_transaction(30), "abort")
                    outcome = "abort"
                else:
                    retried(lambda: client.commit_transaction(30), "commit")
                    outcome = "commit"
            except KafkaException as error:
                if not error.args[0].txn_requires_abort():
                    raise
                retried(lambda: client.abort_transaction(30), "abort")
                outcome = "abort"
        except KafkaException as error:
            # A fatal error here is the producer being fenced, e.g. after its transaction ran
            # past transaction.timeout.ms and a broker's sweeper aborted it: Kafka's behaviour,
            # counted by the checker, not a violation.
            log({"ev": "txn_error", "w": name, "txn": txn, "err": str(error.args[0]), "fatal": error.args[0].fatal()})
            if error.args[0].txn_requires_abort() and not error.args[0].fatal():
                try:
                    retried(lambda: client.abort_transaction(30), "abort")
                    outcome = "abort"
                except KafkaException as again:
                    log({"ev": "txn_error", "w": name, "txn": txn, "err": str(again.args[0])})
            if outcome == "unknown":
                try:
                    client.flush(30)  # delivery reports of what was sent, so no ack goes unrecorded
                except KafkaException:
                    pass
                client = transactional_producer()
        log({"ev": "txn", "w": name, "txn": txn, "outcome": outcome})
        client.poll(0.1)
    client.flush(30)
    log({"ev": "done", "w": name, "sent": seq})


def member() -> None:
    """A read_committed group member that commits synchronously after each batch and when
    partitions are revoked."""
    group = config["group"]
    client = Consumer(
        {
            **CLIENT,
            "group.id": group,
            "client.id": name,
            "enable.auto.commit": False,
            # Only what this member was given is stored for its commits. With librdkafka's
            # automatic store, close() stores the offset after a transaction marker still in
            # its queue, past records it discarded unconsumed, and the revoke commit then
            # commits records nobody received (docs/reliability.md, bug 4).
            "enable.auto.offset.store": False,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 1000,
            "fetch.wait.max.ms": 200,
        }
    )

    def commit() -> None:
        try:
            committed = client.commit(asynchronous=False)
        except KafkaException as error:
            log({"ev": "commit_failed", "m": name, "g": group, "err": str(error.args[0])})
            return
        for tp in committed or []:
            if tp.error is None and tp.offset >= 0:
                log({"ev": "commit", "m": name, "g": group, "topic": tp.topic, "p": tp.partition, "off": tp.offset})

    def on_assign(consumer, assigned):
        log({"ev": "assigned", "m": name, "g": group, "partitions": [[tp.topic, tp.partition] for tp in assigned]})

    def on_revoke(consumer, revoked):
        commit()
        log({"ev": "revoked", "m": name, "g": group, "partitions": [[tp.topic, tp.partition] for tp in revoked]})

    client.subscribe(topics, on_assign=on_assign, on_revoke=on_revoke)
    while not stopping():
        messages = client.consume(200, 0.5)
        records = [m for m in messages if m.error() is None]
        for m in records:
            log({"ev": "consumed", "m": name, "g": group, "topic": m.topic(), "p": m.partition(), "off": m.offset(), "v": m.value().decode()})
            client.store_offsets(message=m)
        if records:
            commit()
    commit()
    client.close()
    log({"ev": "member_done", "m": name})


def monitor() -> None:
    """Reads the group's committed offsets (OffsetFetch, not a member) every 300 ms and writes
    down each change."""
    group = config["group"]
    client = Consumer({**CLIENT, "group.id": group, "enable.auto.commit": False})
    wanted = [TopicPartition(t, p) for t in topics for p in range(partitions)]
    seen: dict[tuple[str, int], int] = {}
    while not stopping():
        try:
            for tp in client.committed(wanted, timeout=5):
                key = (tp.topic, tp.partition)
                if tp.error is None and tp.offset >= 0 and seen.get(key) != tp.offset:
                    seen[key] = tp.offset
                    log({"ev": "observed", "g": group, "topic": tp.topic, "p": tp.partition, "off": tp.offset})
        except KafkaException:
            pass  # a broker going away; the next round asks again
        time.sleep(0.3)
    client.close()


ROLES = {"idempotent": idempotent, "transactional": transactional, "member": member, "monitor": monitor}

if __name__ == "__main__":
    ROLES[config["role"]]()
    history.close()
