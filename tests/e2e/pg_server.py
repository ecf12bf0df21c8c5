"""A throwaway PostgreSQL server for tests that must restart it or configure it (TLS with client
certificates), so that no other test using the shared server is disturbed."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import free_port


class TestCertificates:
    """A private CA, a server certificate for 127.0.0.1 and a client certificate for user
    `postgres`, made with the openssl command-line tool."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory: Path):
        self.dir = directory
        self._openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
                      "-days", "2", "-subj", "/CN=skiff test CA")
        self._leaf("server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost")
        self._leaf("client", "/CN=postgres", "extendedKeyUsage=clientAuth")

    def _openssl(self, *args: str) -> None:
        result = subprocess.run(["openssl", *args], cwd=self.dir, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"openssl {args[0]} failed: {result.stderr[-2000:]}"

    def _leaf(self, name: str, subject: str, extension: str) -> None:
        (self.dir / f"{name}.ext").write_text(extension + "\n")
        self._openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                      "-subj", subject)
        self._openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                      "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")
        (self.dir / f"{name}.key").chmod(0o600)

    def path(self, name: str) -> str:
        return str(self.dir / name)


def _pg_bin(tool: str) -> str:
    found = shutil.which(tool)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{tool}"), key=lambda p: int(p.parts[-3]))
    if not candidates:
        pytest.fail(f"{tool} not found: install Debian's postgresql package (scripts/services.sh does)")
    return str(candidates[-1])


class PrivateServer:
    """A throwaway Postgres server (initdb into a temporary directory, trust auth, a free port),
    so that restarting it disturbs no other test using the shared server."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="skiff-e2e-pg-"))
        self.tls = False
        self.data = self.dir / "data"
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            shutil.chown(self.dir, user="postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self._run(_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        result = subprocess.run([*self.as_user, *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"{args[0]} failed: {result.stdout[-2000:]}{result.stderr[-2000:]}"

    def require_client_certificates(self, certs: "TestCertificates") -> None:
        """Serves TLS only, with a server certificate from `certs`' CA, and lets TCP clients in
        only with a client certificate from that CA whose CN is their user name (`cert` auth).
        The Unix socket stays trust, for the test's own psql."""
        for name in ("ca.pem", "server.pem", "server.key"):
            target = self.data / name
            shutil.copy(certs.dir / name, target)
            if self.as_user:
                shutil.chown(target, user="postgres")
            target.chmod(0o600)
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write("ssl = on\nssl_cert_file = 'server.pem'\nssl_key_file = 'server.key'\nssl_ca_file = 'ca.pem'\n")
        (self.data / "pg_hba.conf").write_text(
            "local all all trust\nhostssl all all 127.0.0.1/32 cert\nhostnossl all all 0.0.0.0/0 reject\n"
        )

    def psql(self, statement: str) -> str:
        """Runs one statement over the Unix socket and returns its unaligned output."""
        result = subprocess.run(
            ["psql", "-h", str(self.dir), "-p", str(self.port), "-U", "postgres", "-d", "postgres",
             "-qAtc", statement],
            capture_output=True, text=True, timeout=30,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def start(self) -> None:
        self._run(
            _pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "server.log"), "-w", "-t", "30",
            "-o", f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.dir} "
            "-c fsync=off -c max_connections=100",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-w", "-t", "30", "-m", mode, "stop")

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self.stop("immediate")
            except AssertionError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


