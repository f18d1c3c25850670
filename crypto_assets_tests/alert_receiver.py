"""A real HTTP receiver on loopback for alert tests: it records every POST and answers with the
statuses it is told to (then 200), optionally after a delay longer than the sender waits."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    def __init__(self, server: ThreadingHTTPServer) -> None:
        self.server = server
        self.bodies: list[dict[str, Any]] = []  # every request, answered or not
        self.answers: list[int] = []  # statuses to answer next, in order; 200 once empty
        self.delay_seconds = 0.0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hooks/T000/B000/secret-token"

    def texts(self) -> list[str]:
        return [body.get("text", "") for body in self.bodies]


@contextmanager
def alert_receiver() -> Iterator[Receiver]:
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            with receiver.lock:
                receiver.bodies.append(body)
                status = receiver.answers.pop(0) if receiver.answers else 200
                delay = receiver.delay_seconds
            if delay:
                threading.Event().wait(delay)
            try:
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status < 400 else b"no")
            except (BrokenPipeError, ConnectionResetError):  # the sender gave up waiting
                pass

        def log_message(self, *args: object) -> None:  # quiet test output
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver = Receiver(server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
