"""The transport of one registry host: the one place a Registry API request is sent and its URL judged.

A ``Transport`` holds one pooled session with retries (``ci_env.registry.http``), answers the registry's auth
challenge on demand (Basic or Bearer tokens per scope: ``ci_env.registry.auth``), follows redirects itself (at most
``MAX_REDIRECTS``, never carrying credentials away from the registry, never downgrading HTTPS to plain HTTP:
``ci_env.registry.origins``), and turns an unexpected answer into one clear error (:meth:`Transport.fail`).
Plain HTTP is used only for loopback registries and those listed as insecure; everything else is HTTPS.
The Registry API verbs (``ci_env.registry.api``) are built on it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ci_env.errors import AuthError, RegistryError, RepositoryUnknownError
from ci_env.registry.auth import Authenticator, Credential, credentials_for, docker_config_dir
from ci_env.registry.insecure import from_env as insecure_from_env
from ci_env.registry.insecure import is_listed, is_loopback
from ci_env.registry.origins import RegistryOrigins

if TYPE_CHECKING:
    import requests

#: redirects followed per request at most (as requests and Go's net/http do).
MAX_REDIRECTS = 10
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class Transport:
    """Requests to one registry (``host[:port]``) with its credentials; safe to share between threads."""

    def __init__(
        self,
        registry: str,
        *,
        docker_config: Path | None = None,
        credentials: tuple[str, str] | None = None,
        insecure_registries: Sequence[str] = (),
        session: requests.Session | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        from ci_env.registry.http import make_session

        self.registry = registry
        self._env = os.environ if env is None else env
        self._docker_config = docker_config
        self._explicit = Credential(credentials[0], credentials[1]) if credentials else None
        insecure = (*insecure_registries, *insecure_from_env(self._env))
        self.plain_http = is_loopback(registry) or is_listed(registry, insecure)
        self.insecure = self.plain_http and not is_loopback(registry)
        self._scheme: str | None = "http" if is_loopback(registry) else (None if self.insecure else "https")
        self.origins = RegistryOrigins(registry, insecure)
        if insecure:
            _quiet_unverified_tls()
        self.session = session if session is not None else make_session()
        self._auth = Authenticator(registry, self.session, None, self.origins)
        self._credential_loaded = False
        self._lock = threading.Lock()
        self._count = 0

    def request_count(self) -> int:
        """HTTP requests made so far through this transport, token requests included."""
        return self._count + self._auth.token_requests

    @property
    def base_url(self) -> str:
        """``scheme://host`` of the registry (for an insecure registry: HTTPS if it answers, else HTTP)."""
        if self._scheme is None:
            self._scheme = self._probe_scheme()
        return f"{self._scheme}://{self.registry}"

    def _probe_scheme(self) -> str:
        import requests

        try:
            self._count += 1
            self.session.get(f"https://{self.registry}/v2/", verify=False, timeout=5)
            return "https"
        except requests.RequestException:
            return "http"

    def _credential(self) -> Credential | None:
        if self._explicit is not None:
            self._auth.credential = self._explicit
            return self._explicit
        if not self._credential_loaded:
            self._auth.credential = credentials_for(self.registry, docker_config_dir(self._docker_config, self._env))
            self._credential_loaded = True
        return self._auth.credential

    def request(
        self,
        method: str,
        url_path: str,
        *,
        scopes: Sequence[str] = (),
        headers: Mapping[str, str] | None = None,
        data: Any = None,
        stream: bool = False,
        absolute: bool = False,
    ) -> requests.Response:
        """Send one request (answering an auth challenge once); RegistryError when the registry is unreachable.

        ``url_path`` is a path on the registry, or (``absolute``) a URL the registry handed back. The registry's
        credentials go only where ``RegistryOrigins.carries_credentials`` allows; redirects are followed (at
        most ``MAX_REDIRECTS``), without credentials when they leave the registry, and a downgrade from HTTPS
        to plain HTTP is refused (``RegistryOrigins.check_target``).
        """
        base = self.base_url
        url = url_path if absolute else base + url_path
        if absolute:
            self.origins.check_target(url, base, f"{method} {path_of(url)}")
        response: requests.Response | None = None
        for attempt in range(2):
            response = self._send_following_redirects(method, url, scopes, headers, data, stream, url_path)
            if response.status_code != 401 or attempt == 1 or not self.origins.carries_credentials(response.url):
                break
            self._credential()
            if not self._auth.learn(response.headers.get("WWW-Authenticate"), scopes):
                break
            response.close()
        assert response is not None
        return response

    def _send_following_redirects(
        self, method: str, url: str, scopes: Sequence[str], headers: Mapping[str, str] | None, data: Any,
        stream: bool, url_path: str,
    ) -> requests.Response:
        import requests

        from ci_env.registry.http import failure_cause

        for _ in range(MAX_REDIRECTS + 1):
            sent = dict(headers or {})
            if self.origins.carries_credentials(url):
                authorization = self._auth.authorization(scopes)
                if authorization:
                    sent["Authorization"] = authorization
            with self._lock:
                self._count += 1
            try:
                response = self.session.request(
                    method, url, headers=sent, data=data, stream=stream, verify=self.origins.verify(url),
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                where = (f"the registry {self.registry}" if self.origins.is_registry(url)
                         else f"{host_of(url)} (for {self.registry})")
                raise RegistryError(
                    f"cannot reach {where} ({method} {path_of(url)}): {failure_cause(exc)}"
                ) from None
            location = response.headers.get("Location")
            if response.status_code not in REDIRECT_STATUSES or not location:
                return response
            what = f"a redirect for {method} {path_of(url)}"
            target = self.origins.resolve(response.url, location, what)
            self.origins.check_target(target, url, what)
            if response.status_code == 303 or (response.status_code in (301, 302) and method == "POST"):
                method, data = ("HEAD" if method == "HEAD" else "GET"), None
            elif data is not None and not isinstance(data, bytes):
                raise RegistryError(f"{self.registry} redirected the upload {method} {path_of(url)}: a streamed "
                                    "body cannot be sent twice; run the command again")
            response.close()
            url = target
        raise RegistryError(f"{self.registry} redirected {method} {url_path.split('?')[0]} more than "
                            f"{MAX_REDIRECTS} times")

    def fail(self, response: requests.Response, what: str) -> RegistryError | AuthError:
        """The error for an unexpected answer to ``what``: status, the registry's error code, and what to do."""
        codes, message = error_codes(response)
        status = response.status_code
        credential = self._auth.credential
        who = f" as {credential.username}" if credential and credential.username else ""
        hint = (
            "check the credentials" if self._auth.credential or self._explicit
            else "no credentials for it were found in the Docker config: run docker login or ci-env login"
        )
        if status == 401 and "insufficient_scope" in (response.headers.get("WWW-Authenticate") or ""):
            fix = "use credentials that have it" if self._auth.credential or self._explicit else hint
            return AuthError(f"{self.registry} refused {what}{who}: the token lacks the permission for it "
                             f"(insufficient_scope); {fix}")
        if status == 401:
            return AuthError(f"{self.registry} refused {what}{who} (401 {codes or 'UNAUTHORIZED'}); {hint}")
        if status == 403:
            return AuthError(f"{self.registry} denied {what}{who} (403 {codes or 'DENIED'}): the credentials lack "
                             "the permission for it")
        if status == 405 and "UNSUPPORTED" in codes:
            return RegistryError(
                f"{self.registry} does not allow {what} (405 UNSUPPORTED): deletion is disabled on this registry "
                "(distribution: storage.delete.enabled=true / REGISTRY_STORAGE_DELETE_ENABLED=true)"
            )
        if status == 404 and "NAME_UNKNOWN" in codes.split(","):
            return RepositoryUnknownError(
                f"{what}: the repository does not exist on {self.registry} (404 NAME_UNKNOWN)")
        detail = f" {codes}" if codes else ""
        text = f": {message}" if message else ""
        return RegistryError(f"{self.registry} answered {status}{detail} to {what}{text}")

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()


def error_codes(response: requests.Response) -> tuple[str, str]:
    """(comma-separated error codes, first message) of a Registry API error body; ("", "") when none."""
    try:
        body = response.json()
    except ValueError:
        return "", ""
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return "", ""
    codes = [str(e.get("code")) for e in errors if isinstance(e, dict) and e.get("code")]
    messages = [str(e.get("message")) for e in errors if isinstance(e, dict) and e.get("message")]
    return one_line(",".join(codes), 100), one_line(messages[0] if messages else "", 200)


def one_line(text: str, limit: int) -> str:
    """``text`` (the registry's, untrusted) on one line: whitespace runs as one space, other control characters
    dropped, at most ``limit`` characters; a newline in it would forge lines of the job's log."""
    return "".join(char for char in " ".join(text.split()) if char.isprintable())[:limit]


def is_missing(response: requests.Response) -> bool:
    """True for a 404 that says the thing asked for is not there (not that the repository is unknown)."""
    return response.status_code == 404 and "NAME_UNKNOWN" not in error_codes(response)[0]


def next_link(response: requests.Response, origins: RegistryOrigins, what: str) -> str | None:
    """The absolute URL of the ``Link: <...>; rel="next"`` header, or None; RegistryError when its host is
    ambiguous (``RegistryOrigins.resolve``)."""
    import re

    header = response.headers.get("Link")
    if not header:
        return None
    match = re.search(r'<([^>]+)>\s*;\s*rel="?next"?', header)
    return origins.resolve(response.url, match.group(1), what) if match else None


def path_of(url: str) -> str:
    """The path of ``url``, for messages (no host, no query: a query may carry an upload's secrets)."""
    return urlsplit(url).path[:200] or "/"


def host_of(url: str) -> str:
    """The host of ``url``, for messages (no user information)."""
    return (urlsplit(url).netloc.rpartition("@")[2] or "?")[:100]


def _quiet_unverified_tls() -> None:
    """No urllib3 warning per host for the unverified HTTPS the user asked for with --insecure-registry."""
    import urllib3

    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
