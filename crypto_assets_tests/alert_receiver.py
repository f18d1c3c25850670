"""A real HTTP receiver on loopback for alert tests: it records every POST and answers with the
statuses it is told to (then `otherwise`, 200 unless it is "down"), optionally with headers such
as Retry-After and after a delay longer than the sender waits."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from crypto_assets_tests.loopback import serving

Answer = int | tuple[int, dict[str, str]]  # a status, or a status and its headers


class Receiver:
    def __init__(self, server: ThreadingHTTPServer) -> None:
        self.server = server
        self.bodies: list[dict[str, Any]] = []  # every request, answered or not
        self.statuses: list[int] = []  # what each request was answered
        self.answers: list[Answer] = []  # answers to give next, in order
        self.otherwise: Answer = 200  # once `answers` is empty
        self.delay_seconds = 0.0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hooks/T000/B000/secret-token"

    def texts(self) -> list[str]:
        return [body.get("text", "") for body in self.bodies]

    def delivered(self) -> list[dict[str, Any]]:
        """The bodies it took (answered 2xx), in order."""
        with self.lock:
            return [body for body, status in zip(self.bodies, self.statuses, strict=True) if status < 300]


@contextmanager
def alert_receiver() -> Iterator[Receiver]:
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            with receiver.lock:
                answer = receiver.answers.pop(0) if receiver.answers else receiver.otherwise
                status, headers = answer if isinstance(answer, tuple) else (answer, {})
                receiver.bodies.append(body)
                receiver.statuses.append(status)
                delay = receiver.delay_seconds
            if delay:
                threading.Event().wait(delay)
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(b"ok" if status < 400 else b"no")
            except (BrokenPipeError, ConnectionResetError):  # the sender gave up waiting
                pass

        def log_message(self, *args: object) -> None:  # quiet test output
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver = Receiver(server)
    with serving(server):
        yield receiver
