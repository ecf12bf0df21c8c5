"""A local S3-compatible server for tests: moto's S3 served single-threaded.

    python scripts/s3_server.py PORT [BUCKET ...]

Serves on 127.0.0.1:PORT until killed, after creating each BUCKET (default: skiff-test).
Single-threaded on purpose: moto's default threaded server loses updates when conditional
writes (If-Match) race, and the s3:// engine's whole protocol rests on those (DESIGN.md 10.4).
"""

from __future__ import annotations

import logging
import sys
import threading
import urllib.request

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import WSGIRequestHandler, run_simple


def create_buckets(port: int, buckets: list[str]) -> None:
    """Creates the buckets once the server answers (a plain PUT, as S3 does)."""
    for bucket in buckets:
        for _ in range(200):
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/{bucket}", method="PUT")
                urllib.request.urlopen(request, timeout=2).read()
                break
            except OSError:
                threading.Event().wait(0.05)
        print(f"s3_server: bucket {bucket} ready", flush=True)


class TimelyRequestHandler(WSGIRequestHandler):
    """Gives up on a connection that sends nothing for a while: one server thread must never
    wait forever on one silent client (all the others would wait too)."""

    timeout = 10


def main() -> None:
    port = int(sys.argv[1])
    buckets = sys.argv[2:] or ["skiff-test"]
    threading.Thread(target=create_buckets, args=(port, buckets), daemon=True).start()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        "127.0.0.1",
        port,
        app,
        threaded=False,
        use_reloader=False,
        use_debugger=False,
        request_handler=TimelyRequestHandler,
    )


if __name__ == "__main__":
    main()
