"""A blob that cannot be mounted is streamed from source to target, never held whole in memory.

A streaming front before the real registry drops the ``mount``/``from`` query of upload POSTs, as registries
that do not mount do (they answer 202 and open an upload). The copy runs in a fresh process whose address
space is limited to what it uses at start plus ``HEADROOM``, with a layer larger than that headroom.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

from ci_env.registry.client import RegistryClient
from tests.services.registry import RegistryService

LAYER_MB = 160
HEADROOM_MB = 64
CHUNK = 1 << 20


class NoMountFront:
    """Forward to ``upstream`` chunk by chunk; upload POSTs lose their ``mount`` and ``from`` parameters."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.mounts_refused = 0
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def _any(self) -> None:
                parts = urlsplit(self.path)
                path = self.path
                query = parse_qsl(parts.query)
                if self.command == "POST" and any(key == "mount" for key, _ in query):
                    front.mounts_refused += 1
                    kept = [(k, v) for k, v in query if k not in ("mount", "from")]
                    path = parts.path + (f"?{urlencode(kept)}" if kept else "")
                upstream = http.client.HTTPConnection(front.upstream, timeout=60)
                upstream.putrequest(self.command, path, skip_host=True, skip_accept_encoding=True)
                for key, value in self.headers.items():
                    if key.lower() != "connection":
                        upstream.putheader(key, value)
                upstream.endheaders()
                remaining = int(self.headers.get("Content-Length") or 0)
                while remaining:
                    data = self.rfile.read(min(CHUNK, remaining))
                    if not data:
                        break
                    upstream.send(data)
                    remaining -= len(data)
                response = upstream.getresponse()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("connection", "transfer-encoding", "date", "server"):
                        self.send_header(key, value)
                self.end_headers()
                if self.command != "HEAD":
                    while data := response.read(CHUNK):
                        self.wfile.write(data)
                upstream.close()

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


COPY = textwrap.dedent(
    """
    import resource, sys
    from pathlib import Path
    from ci_env.registry.client import RegistryClient

    host, source, target, digest, headroom = sys.argv[1:6]
    client = RegistryClient(host, docker_config=Path("/nonexistent-docker-config"))
    client.ping()  # everything the copy needs is imported and connected before the limit
    in_use = int(next(line for line in open("/proc/self/status") if line.startswith("VmSize:")).split()[1]) * 1024
    limit = in_use + int(headroom) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    client.mount_blob(source, target, digest)
    print("copied")
    """
)


def test_a_blob_that_cannot_be_mounted_is_streamed_within_a_memory_limit(
    registry_open: RegistryService, repo: str
) -> None:
    direct = RegistryClient(registry_open.host)
    layer = os.urandom(1 << 20) * LAYER_MB  # larger than the copying process may hold
    digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    direct.ensure_blob(repo, digest, layer)
    del layer
    front = NoMountFront(registry_open.host)
    try:
        result = subprocess.run(
            [sys.executable, "-c", COPY, front.host, repo, f"{repo}-copy", digest, str(HEADROOM_MB)],
            capture_output=True, text=True, timeout=300, check=False,
        )
    finally:
        front.stop()
    assert result.returncode == 0 and result.stdout.strip() == "copied", result.stderr[-3000:]
    assert front.mounts_refused == 1, "the mount was not refused: the test would prove nothing"
    head = direct.request("HEAD", f"/v2/{repo}-copy/blobs/{digest}")
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == LAYER_MB << 20
