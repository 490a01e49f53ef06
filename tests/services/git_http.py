"""A git server over HTTP for the tests: ``git http-backend`` (git's own smart HTTP server) behind Basic
authentication, as GitLab serves a job's clone (``gitlab-ci-token`` and the job token) and GitHub a checkout
(``x-access-token`` and the job's token, sent by actions/checkout as an ``AUTHORIZATION: basic`` header).

A request without the credentials gets ``401`` with ``WWW-Authenticate: Basic``; one with two Authorization
headers (a persisted header and a second one) gets ``400``, as a front that takes one would. Every request is
recorded (method, path, the user it authenticated as, how many Authorization headers it had).
"""

from __future__ import annotations

import base64
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit


@dataclass
class GitHttp:
    """A running server: ``url`` (``http://127.0.0.1:PORT``) serves the bare repositories under ``root``."""

    url: str
    root: Path
    user: str
    password: str
    requests: list[tuple[str, str, str, int]] = field(default_factory=list)

    def repo_url(self, name: str, with_credentials: bool = False) -> str:
        """The URL of ``root/name`` (``name`` ends in ``.git``), with ``user:password@`` when asked."""
        if not with_credentials:
            return f"{self.url}/{name}"
        return self.url.replace("http://", f"http://{self.user}:{self.password}@", 1) + f"/{name}"


@contextmanager
def serve_git_http(root: Path, user: str, password: str) -> Iterator[GitHttp]:
    """Serve the bare repositories under ``root`` on loopback until the block ends."""
    server_state = GitHttp("", root, user, password)
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet
            pass

        def _serve(self) -> None:
            auths = self.headers.get_all("Authorization") or []
            parts = urlsplit(self.path)
            who = ""
            if len(auths) == 1 and auths[0].split(" ", 1)[0].lower() == "basic" \
                    and auths[0].split(" ", 1)[1:] == expected.split(" ", 1)[1:]:
                who = user
            server_state.requests.append((self.command, parts.path, who, len(auths)))
            if len(auths) > 1:
                self.send_response(400)
                self.end_headers()
                return
            if not who:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            env = {
                "PATH": os.environ.get("PATH", ""), "GIT_PROJECT_ROOT": str(root), "GIT_HTTP_EXPORT_ALL": "1",
                "REQUEST_METHOD": self.command, "PATH_INFO": parts.path, "QUERY_STRING": parts.query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
                "REMOTE_USER": who, "REMOTE_ADDR": "127.0.0.1",
                "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            }
            out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
            head, _, payload = out.partition(b"\r\n\r\n")
            status = 200
            headers = []
            for line in head.decode("latin-1").split("\r\n"):
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.strip().split()[0])
                elif name:
                    headers.append((name, value.strip()))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = _serve
        do_POST = _serve

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server_state
    finally:
        server.shutdown()
        server.server_close()
