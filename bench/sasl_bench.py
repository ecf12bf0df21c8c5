#!/usr/bin/env python3
"""What SASL and ACLs cost: produce and consume throughput over a SASL_SSL listener
(SCRAM-SHA-512) against the plaintext listener of the same broker, and over SASL_SSL on a second
broker that checks every request against ACLs (`--authorizer acl`); and authentication
handshakes per second (PLAIN, SCRAM-SHA-256) on fresh connections.

The ACL broker holds `--filler-acls` ACLs of other principals besides the bench user's (prefixed
WRITE and READ on `bench-` topics, READ on every group), so each check scans a realistic list;
its plaintext listener, used only to create topics and ACLs, acts as a super user.

One broker with PLAINTEXT, SASL_PLAINTEXT and SASL_SSL listeners (a private CA made with
openssl, as bench/tls_bench.py). The user is created over the plaintext listener with
AlterUserScramCredentials (so the memory engine works), 4096 iterations. Throughput rounds
alternate the listeners (median and best reported). Handshakes: `--connections` threads each
connect, run SaslHandshake and SaslAuthenticate (PLAIN: one round trip, the broker runs PBKDF2;
SCRAM: two, the client's PBKDF2 is done once and cached, as a pooled client would) and close,
for `--handshake-seconds`. Not a test: nothing asserts on time. `bench/run.sh sasl` builds the
release binary and runs this.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import socket
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import Broker, default_binary, free_port, kafka_string, recv_response, request, storage_url
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)
from tls_bench import compare_listeners, make_certificates, print_comparison

USER, PASSWORD = "bench", "bench-password"


class SaslBroker(Broker):
    """A broker with PLAINTEXT, SASL_PLAINTEXT and SASL_SSL listeners."""

    def __init__(self, binary: Path, storage: str, workdir: Path, log_path: Path, extra: tuple[str, ...] = ()):
        super().__init__(binary, storage, workdir, log_path)
        self.sasl_port, self.sasl_ssl_port = free_port(), free_port()
        self.extra = list(extra)

    def command(self) -> list[str]:
        listeners = (f"PLAINTEXT://{self.address},SASL_PLAINTEXT://127.0.0.1:{self.sasl_port},"
                     f"SASL_SSL://127.0.0.1:{self.sasl_ssl_port}")
        return [
            str(self.binary), "broker", "--listeners", listeners, "--advertised-listeners", listeners,
            "--tls-cert", str(self.workdir / "server.pem"), "--tls-key", str(self.workdir / "server.key"),
            "--storage", self.storage, *self.extra,
        ]  # fmt: skip


def create_acls(bootstrap: str, filler: int) -> None:
    """The bench user's ACLs and `filler` ACLs of other principals on other topics."""
    def allow(resource, name, pattern, principal, operation):
        return AclBinding(resource, name, pattern, principal, "*", operation, AclPermissionType.ALLOW)

    prefixed, literal = ResourcePatternType.PREFIXED, ResourcePatternType.LITERAL
    bindings = [allow(ResourceType.TOPIC, "bench-", prefixed, f"User:{USER}", operation)
                for operation in (AclOperation.WRITE, AclOperation.READ)]
    bindings.append(allow(ResourceType.GROUP, "*", literal, f"User:{USER}", AclOperation.READ))
    bindings += [allow(ResourceType.TOPIC, f"other-{index}", literal, f"User:user-{index}", AclOperation.READ)
                 for index in range(filler)]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_acls(bindings).values():
        future.result(timeout=30)


def create_user(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    upsertions = [UserScramCredentialUpsertion(USER, ScramCredentialInfo(mechanism, 4096), PASSWORD.encode())
                  for mechanism in (ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512)]
    for future in admin.alter_user_scram_credentials(upsertions).values():
        future.result(timeout=15)


def authenticate(sock: socket.socket, token: bytes, correlation_id: int) -> bytes:
    """SaslAuthenticate v1: returns the broker's bytes; raises on an error code."""
    sock.sendall(request(36, 1, correlation_id, struct.pack(">i", len(token)) + token))
    body = recv_response(sock, correlation_id)
    (error,) = struct.unpack_from(">h", body)
    if error:
        raise RuntimeError(f"SaslAuthenticate error {error}")
    (message_length,) = struct.unpack_from(">h", body, 2)
    offset = 4 + max(message_length, 0)
    (length,) = struct.unpack_from(">i", body, offset)
    return body[offset + 4: offset + 4 + length]


class ScramClient:
    """A SCRAM-SHA-256 client that salts the password once per salt (as the RFC allows)."""

    def __init__(self):
        self.salted: dict[tuple[bytes, int], bytes] = {}
        self.lock = threading.Lock()

    def login(self, sock: socket.socket) -> None:
        nonce = base64.b64encode(os.urandom(18)).decode()
        first_bare = f"n={USER},r={nonce}"
        server_first = authenticate(sock, f"n,,{first_bare}".encode(), 2).decode()
        fields = dict(part.split("=", 1) for part in server_first.split(","))
        salt, iterations = base64.b64decode(fields["s"]), int(fields["i"])
        with self.lock:
            salted = self.salted.get((salt, iterations))
            if salted is None:
                salted = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), salt, iterations)
                self.salted[(salt, iterations)] = salted
        without_proof = f"c=biws,r={fields['r']}"
        auth_message = f"{first_bare},{server_first},{without_proof}".encode()
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        signature = hmac.new(hashlib.sha256(client_key).digest(), auth_message, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        authenticate(sock, f"{without_proof},p={base64.b64encode(proof).decode()}".encode(), 3)


def handshakes_per_second(port: int, mechanism: str, connections: int, seconds: float) -> float:
    scram = ScramClient()
    counts = [0] * connections
    deadline = time.monotonic() + seconds

    def worker(index: int) -> None:
        while time.monotonic() < deadline:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.sendall(request(17, 1, 1, kafka_string(mechanism)))
                (error,) = struct.unpack_from(">h", recv_response(sock, 1))
                if error:
                    raise RuntimeError(f"SaslHandshake error {error}")
                if mechanism == "PLAIN":
                    authenticate(sock, f"\0{USER}\0{PASSWORD}".encode(), 2)
                else:
                    scram.login(sock)
            counts[index] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(index,)) for index in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.monotonic() - started)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", default="memory", choices=["memory", "sqlite"])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--value-bytes", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=4, help="threads opening connections for the handshake rate")
    parser.add_argument("--handshake-seconds", type=float, default=5.0)
    parser.add_argument("--filler-acls", type=int, default=1000, help="ACLs of other principals on the ACL broker")
    parser.add_argument("--phase-timeout", type=float, default=600.0)
    parser.add_argument("--binary", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write every figure here")
    args = parser.parse_args(argv)
    binary = (args.binary or default_binary()).resolve()

    workdir = Path(tempfile.mkdtemp(prefix="skiff-bench-sasl-"))
    make_certificates(workdir)
    broker = SaslBroker(binary, storage_url(args.engine, workdir), workdir, workdir / "broker.log")
    acl_dir = workdir / "acl"
    acl_dir.mkdir()
    for name in ("server.pem", "server.key"):
        (acl_dir / name).write_bytes((workdir / name).read_bytes())
    acl_broker = SaslBroker(binary, storage_url(args.engine, acl_dir), acl_dir, workdir / "acl-broker.log",
                            ("--authorizer", "acl", "--super-users", "User:ANONYMOUS"))
    broker.start()
    acl_broker.start()
    create_user(broker.address)
    create_user(acl_broker.address)
    create_acls(acl_broker.address, args.filler_acls)
    sasl_ssl = {"security.protocol": "SASL_SSL", "ssl.ca.location": str(workdir / "ca.pem"),
                "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": USER, "sasl.password": PASSWORD}
    modes = {"plaintext": (broker.address, {}), "sasl_ssl": (f"127.0.0.1:{broker.sasl_ssl_port}", sasl_ssl),
             "sasl_ssl_acls": (f"127.0.0.1:{acl_broker.sasl_ssl_port}", sasl_ssl)}
    handshakes: dict[str, float] = {}
    try:
        for mechanism in ("PLAIN", "SCRAM-SHA-256"):
            print(f"[handshakes] {mechanism}, {args.connections} threads, {args.handshake_seconds} s ...",
                  file=sys.stderr, flush=True)
            handshakes[mechanism] = handshakes_per_second(broker.sasl_port, mechanism, args.connections,
                                                          args.handshake_seconds)
        results = compare_listeners(broker, modes, args, {"sasl_ssl_acls": acl_broker})
    finally:
        broker.stop()
        acl_broker.stop()
    print_comparison(f"SASL_SSL (SCRAM-SHA-512), and with {args.filler_acls + 3} ACLs enforced, vs plaintext, "
                     f"{args.engine}", "SASL_SSL", modes, results, args)
    for mechanism, rate in handshakes.items():
        print(f"{mechanism} authentications on new connections: {rate:,.0f}/s ({args.connections} threads)")
    if args.json:
        args.json.write_text(json.dumps({"engine": args.engine, "records": args.records, "results": results,
                                         "handshakes_per_s": handshakes}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
