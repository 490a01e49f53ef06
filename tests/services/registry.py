"""The CNCF distribution registry (Debian's ``docker-registry``) as a test service.

``start_registry`` runs one registry process on 127.0.0.1 with its own storage,
in one of the auth modes the tests need: ``none``, ``htpasswd`` or ``token``,
with delete enabled or disabled. Its access log is kept so tests can count the
HTTP requests a command made.
"""

from __future__ import annotations

import os
import re
import ssl
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.services import free_port, require, wait_until
from tests.services.tls import Certificate
from tests.services.token_server import TokenServer

_ACCESS_LINE = re.compile(r'"(GET|HEAD|PUT|POST|DELETE|PATCH) (\S+) HTTP/[\d.]+" (\d{3})')


@dataclass
class RegistryService:
    """A running registry: its address, users and access log."""

    host: str
    root: Path
    auth: str
    delete_enabled: bool
    process: subprocess.Popen[bytes]
    log_path: Path
    htpasswd_path: Path | None = None
    token_server: TokenServer | None = None
    users: dict[str, str] = field(default_factory=dict)
    tls: Certificate | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    @property
    def port(self) -> int:
        return int(self.host.rsplit(":", 1)[1])

    def add_user(self, user: str, password: str) -> None:
        """Add (or change) a user; the registry re-reads htpasswd without a restart."""
        self.users[user] = password
        if self.token_server is not None:
            self.token_server.users[user] = password
        if self.htpasswd_path is not None:
            lines = []
            for name, secret in self.users.items():
                out = subprocess.run(
                    ["htpasswd", "-Bbn", "-C", "4", name, secret], check=True, capture_output=True, text=True
                ).stdout.strip()
                lines.append(out)
            tmp = self.htpasswd_path.with_suffix(".tmp")
            tmp.write_text("\n".join(lines) + "\n")
            os.replace(tmp, self.htpasswd_path)

    def requests(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every request in the access log so far."""
        text = self.log_path.read_text(errors="replace")
        return [(m, p, int(s)) for m, p, s in _ACCESS_LINE.findall(text)]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.token_server is not None:
            self.token_server.stop()


def start_registry(
    directory: Path,
    auth: str = "none",
    delete_enabled: bool = True,
    users: dict[str, str] | None = None,
    denied_actions: set[str] | None = None,
    tls: Certificate | None = None,
    realm: str | None = None,
    token_tls: Certificate | None = None,
) -> RegistryService:
    """Start a registry in ``directory``; ``auth`` is ``none``, ``htpasswd`` or ``token``.

    ``tls``: serve HTTPS with that certificate. For ``token``: ``realm`` replaces the token server's own URL in
    the challenge (a name a test proxy resolves), ``token_tls`` makes the token server speak HTTPS.
    """
    binary = require("docker-registry", "the CNCF distribution registry, Debian package docker-registry")
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": False}},
        "storage": {
            "filesystem": {"rootdirectory": str(directory / "data")},
            "delete": {"enabled": delete_enabled},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {"addr": f"127.0.0.1:{port}", "secret": "ci-env-test-secret"},
    }
    service_users = dict(users or {})
    htpasswd_path: Path | None = None
    token_server: TokenServer | None = None
    if auth == "htpasswd":
        require("htpasswd", "bcrypt password files, Debian package apache2-utils")
        htpasswd_path = directory / "htpasswd"
        htpasswd_path.write_text("")
        config["auth"] = {"htpasswd": {"realm": "ci-env-test", "path": str(htpasswd_path)}}
    elif auth == "token":
        token_server = TokenServer(directory, users=dict(service_users), denied_actions=set(denied_actions or ()),
                                   tls=token_tls)
        config["auth"] = {
            "token": {
                "realm": realm or token_server.realm,
                "service": token_server.service,
                "issuer": token_server.issuer,
                "rootcertbundle": str(token_server.cert_path),
            }
        }
    elif auth != "none":
        raise ValueError(f"unknown auth mode {auth!r}")
    if tls is not None:
        config["http"]["tls"] = {"certificate": str(tls.cert), "key": str(tls.key)}  # type: ignore[index]
    config_path = directory / "config.yml"
    config_path.write_text(yaml.safe_dump(config))
    log_path = directory / "registry.log"
    log = log_path.open("wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    process = subprocess.Popen([binary, "serve", str(config_path)], stdout=log, stderr=subprocess.STDOUT, env=env)
    service = RegistryService(
        host=f"127.0.0.1:{port}",
        root=directory,
        auth=auth,
        delete_enabled=delete_enabled,
        process=process,
        log_path=log_path,
        htpasswd_path=htpasswd_path,
        token_server=token_server,
        tls=tls,
    )
    for user, password in service_users.items():
        service.add_user(user, password)

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {log_path.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(f"{service.url}/v2/", timeout=1, context=_unverified())
        except urllib.error.HTTPError:
            return True
        return True

    wait_until(ready, 15, "docker-registry")
    return service


def _unverified() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
