"""An HTTP proxy that resolves made-up host names to local servers, so a test can play "another host".

The client reaches it through ``HTTP_PROXY``/``HTTPS_PROXY`` (with ``NO_PROXY`` keeping 127.0.0.1 direct):
plain-HTTP requests (absolute-form) are forwarded to the mapped server, ``CONNECT`` is tunnelled to it (TLS stays
end to end). A name that is not mapped is answered 502, so nothing ever leaves the machine. Every request is
recorded as (method, target) in ``seen``.
"""

from __future__ import annotations

import select
import socket
import socketserver
import threading
from collections.abc import Mapping
from urllib.parse import urlsplit


class NameProxy:
    """Forward ``name[:port]`` to ``127.0.0.1:PORT`` as ``routes`` says (keys with the port: ``"a.test:443"``)."""

    def __init__(self, routes: Mapping[str, int]) -> None:
        self.routes = dict(routes)
        self.seen: list[tuple[str, str]] = []
        proxy = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                proxy._handle(self)

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def env(self) -> dict[str, str]:
        """The variables that send a client's requests for made-up names through this proxy."""
        return {"HTTP_PROXY": self.url, "HTTPS_PROXY": self.url, "http_proxy": self.url, "https_proxy": self.url,
                "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handle(self, handler: socketserver.StreamRequestHandler) -> None:
        line = handler.rfile.readline(65537).decode("latin-1").strip()
        if not line:
            return
        headers: list[str] = []
        while True:
            header = handler.rfile.readline(65537).decode("latin-1")
            if header in ("\r\n", "\n", ""):
                break
            headers.append(header.rstrip("\r\n"))
        method, target, version = line.split(" ", 2)
        self.seen.append((method, target))
        if method == "CONNECT":
            port = self.routes.get(target)
            if port is None:
                handler.wfile.write(b"HTTP/1.1 502 Unknown host\r\nContent-Length: 0\r\n\r\n")
                return
            upstream = socket.create_connection(("127.0.0.1", port))
            handler.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            handler.wfile.flush()
            _relay(handler.connection, upstream)
            return
        parts = urlsplit(target)
        key = f"{parts.hostname}:{parts.port or 80}"
        port = self.routes.get(key)
        if port is None:
            handler.wfile.write(b"HTTP/1.1 502 Unknown host\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        kept = [h for h in headers if not h.lower().startswith(("connection:", "proxy-connection:"))]
        upstream = socket.create_connection(("127.0.0.1", port))
        request = "\r\n".join([f"{method} {path or '/'} {version}", *kept, "Connection: close", "", ""])
        upstream.sendall(request.encode("latin-1"))
        length = next((int(h.split(":", 1)[1]) for h in headers if h.lower().startswith("content-length:")), 0)
        if length:
            upstream.sendall(handler.rfile.read(length))
        _relay(handler.connection, upstream)  # the answer flows back until the server closes


def _relay(client: socket.socket, upstream: socket.socket) -> None:
    sockets = [client, upstream]
    try:
        while True:
            readable, _, _ = select.select(sockets, [], [], 30)
            if not readable:
                return
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    return
                (upstream if sock is client else client).sendall(data)
    except OSError:
        return
    finally:
        upstream.close()
