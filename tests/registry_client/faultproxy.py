"""A stdlib HTTP proxy in front of a registry that answers 429 (with Retry-After), 500s and drops connections.

Faults are drawn from a seeded random generator; a drop either happens before the request reaches the
registry or after (the registry acted, the answer is lost). The Host header is passed through, so the
registry's upload Locations point back at the proxy.
"""

from __future__ import annotations

import http.client
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FaultProxy:
    """Forward to ``upstream`` (host:port), injecting faults with the given probabilities."""

    def __init__(self, upstream: str, *, seed: int = 7, p429: float = 0.05, p500: float = 0.1,
                 p_drop_before: float = 0.05, p_drop_after: float = 0.05) -> None:
        self.upstream = upstream
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.p = (p429, p500, p_drop_before, p_drop_after)
        self.faults: list[tuple[str, str, str]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _fault(self) -> str:
        with self.lock:
            roll = self.random.random()
        edge = 0.0
        for name, probability in zip(("429", "500", "drop-before", "drop-after"), self.p, strict=True):
            edge += probability
            if roll < edge:
                return name
        return ""

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                fault = proxy._fault()
                if fault:
                    proxy.faults.append((fault, self.command, self.path))
                if fault in ("429", "500"):
                    self.send_response(int(fault))
                    if fault == "429":
                        self.send_header("Retry-After", "1")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if fault == "drop-before":
                    self.close_connection = True
                    self.connection.close()
                    return
                upstream = http.client.HTTPConnection(proxy.upstream, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                data = response.read()
                upstream.close()
                if fault == "drop-after":
                    self.close_connection = True
                    self.connection.close()
                    return
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("connection", "transfer-encoding", "content-length", "date", "server"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = _any

        return Handler
