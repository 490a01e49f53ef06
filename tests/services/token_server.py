"""A Docker registry token server (the ``auth: token`` protocol), for tests.

It checks Basic credentials against ``users``, and issues RS256 JWTs with an
``x5c`` header whose certificate is the registry's ``rootcertbundle``. The
actions granted are those requested, minus ``denied_actions`` (to simulate a
token without delete scope). Every request is recorded in ``requests``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from tests.services.tls import Certificate, server_context


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenRequest:
    """One request the token server received."""

    user: str | None
    service: str | None
    scopes: list[str]


@dataclass
class TokenServer:
    """Issue registry tokens to known users; see the module docstring."""

    directory: Path
    service: str = "test-registry"
    issuer: str = "ci-env-test-issuer"
    users: dict[str, str] = field(default_factory=dict)
    denied_actions: set[str] = field(default_factory=set)
    expires_in: int = 300
    requests: list[TokenRequest] = field(default_factory=list)
    #: serve HTTPS with this certificate (the realm is then https://)
    tls: Certificate | None = None

    def __post_init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ci-env test token issuer")])
        now = dt.datetime.now(dt.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .sign(self._key, hashes.SHA256())
        )
        self._cert_der = cert.public_bytes(serialization.Encoding.DER)
        self.cert_path = self.directory / "token-issuer.pem"
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = int(self._server.server_address[1])
        if self.tls is not None:
            self._server.socket = server_context(self.tls).wrap_socket(self._server.socket, server_side=True)
        self.realm = f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/token"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def issue(self, user: str, scopes: list[str]) -> str:
        """A signed token granting ``scopes`` (minus denied actions) to ``user``."""
        access = []
        for scope in scopes:
            parts = scope.split(":")
            if len(parts) < 3:
                continue
            kind, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1]
            granted = [a for a in actions.split(",") if a and a not in self.denied_actions]
            if "*" in granted:
                granted = ["pull", "push", "delete"]
                granted = [a for a in granted if a not in self.denied_actions]
            access.append({"type": kind, "name": name, "actions": granted})
        now = int(dt.datetime.now(dt.timezone.utc).timestamp())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(self._cert_der).decode()]}
        claims = {
            "iss": self.issuer,
            "sub": user,
            "aud": self.service,
            "exp": now + self.expires_in,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = parse_qs(url.query)
                user = None
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    try:
                        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                    except ValueError:
                        user, password = None, None
                    if user is None or server.users.get(user) != password:
                        server.requests.append(TokenRequest(user, None, []))
                        self._send(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]})
                        return
                scopes = query.get("scope", [])
                scopes = [s for joined in scopes for s in joined.split(" ")]
                server.requests.append(TokenRequest(user, next(iter(query.get("service") or []), None), scopes))
                if url.path != "/token":
                    self._send(404, {})
                    return
                # anonymous users get tokens with no access, as real token servers do
                token = server.issue(user or "", scopes if user else [])
                self._send(200, {"token": token, "access_token": token, "expires_in": server.expires_in})

            def _send(self, status: int, body: dict[str, object]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
