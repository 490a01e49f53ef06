"""A tiny recording HTTP server for vendor APIs (stdlib only).

A fake registers routes ``(METHOD, regex on the path)`` -> handler; a handler gets a
``Call`` (method, path, query, headers, body) and the regex groups and returns
``(status, headers, body)``. Every request is recorded in order so tests assert the
exact calls a remover made.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.services.tls import Certificate, server_context

Reply = tuple[int, dict[str, str], Any]
Handler = Callable[..., Reply]


@dataclass
class Call:
    """One recorded request."""

    method: str
    raw_path: str  # as sent, still percent-encoded, without the query
    query: dict[str, list[str]]
    target: str  # path and query exactly as sent
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)  #: when it arrived (``time.monotonic``)

    @property
    def path(self) -> str:
        return self.raw_path

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}


@dataclass
class FakeApi:
    """Routes and recorded calls; ``start()`` serves on 127.0.0.1, ``url`` is its base URL."""

    routes: list[tuple[str, re.Pattern[str], Handler]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    tls: bool = False

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes.append((method, re.compile(pattern + r"\Z"), handler))
            return handler

        return register

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.server.server_address[1]}"

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    def requests(self) -> list[tuple[str, str]]:
        """(method, raw path with query) of every call so far."""
        return [(c.method, c.target) for c in self.calls]

    def start(self, tls: Certificate | None = None) -> FakeApi:
        """Serve on 127.0.0.1 (HTTPS with ``tls``' certificate when given) in a thread."""
        api = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _serve(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = dict(self.headers.items())
                call = Call(self.command, split.path, parse_qs(split.query), self.path, headers, body)
                api.calls.append(call)
                for method, pattern, handler in api.routes:
                    if method != self.command:
                        continue
                    match = pattern.match(split.path)
                    if match:
                        status, headers, payload = handler(call, *match.groups())
                        break
                else:
                    status, headers, payload = 404, {}, {"message": "no such route in the fake"}
                if isinstance(payload, bytes):
                    data = payload
                else:
                    data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                if data and "Content-Type" not in headers:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        if tls is not None:
            self.server.socket = server_context(tls).wrap_socket(self.server.socket, server_side=True)
            self.tls = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
