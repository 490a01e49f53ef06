"""A server that answers every request with raw bytes written at its own pace: for bodies no HTTP library would
send (endless, dribbled a byte at a time, compressed bombs).

``RawServer(answer)``: for each request (read whole, headers and ``Content-Length`` body), ``answer(write)`` is
called with a function writing bytes to the client; the connection is closed when ``answer`` returns or the
client goes away (a write then raises ``Gone``, which ends the answer quietly).
"""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Callable

Write = Callable[[bytes], None]


class Gone(Exception):
    """The client closed the connection."""


class RawServer:
    """Serve on 127.0.0.1 (``host`` is ``127.0.0.1:PORT``); ``requests`` counts the requests answered."""

    def __init__(self, answer: Callable[[Write], None]) -> None:
        self.requests = 0
        server = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                length = 0
                if not self.rfile.readline(65537):
                    return
                while True:
                    line = self.rfile.readline(65537)
                    if line in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip() or 0)
                if length:
                    self.rfile.read(length)
                server.requests += 1

                def write(data: bytes) -> None:
                    try:
                        self.wfile.write(data)
                        self.wfile.flush()
                    except OSError:
                        raise Gone() from None

                try:
                    answer(write)
                except Gone:
                    return

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
