"""Registry credentials and the Registry API's authentication.

Credentials come from the job's Docker config (``config.json``: ``auths`` with ``auth``,
``username``/``password`` or ``identitytoken``; ``credHelpers`` and ``credsStore`` through the
``docker-credential-*`` programs) or are given explicitly. ``Authenticator`` answers a registry's
``WWW-Authenticate`` challenge: Basic, or a Bearer token fetched from the realm for the scopes a request
needs, cached per (realm, service, scopes) and fetched again when it expires or is refused.
Secrets never appear in messages or ``repr``.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ci_env.configjson import config_keys, load, locate, normalize_registry
from ci_env.errors import AuthError, ConfigError
from ci_env.registry.challenge import Challenge, preferred_challenge
from ci_env.registry.origins import RegistryOrigins

if TYPE_CHECKING:
    import requests

#: actions asked for, in order, when a token server refuses the previous set (GitLab needs delete, some want *).
SCOPE_ACTIONS: tuple[str, ...] = ("pull,push,delete", "*", "pull,push", "pull")
FULL_ACTIONS = SCOPE_ACTIONS[0]
DEFAULT_TOKEN_LIFETIME = 60
HELPER_TIMEOUT = 30.0


@dataclass(frozen=True)
class Credential:
    """A user name and password, or an identity (OAuth2 refresh) token; ``repr`` hides the secrets."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    identity_token: str | None = field(default=None, repr=False)

    @property
    def has_basic(self) -> bool:
        return bool(self.username) and self.password is not None


def docker_config_dir(explicit: str | Path | None = None, env: Mapping[str, str] | None = None) -> Path:
    """The Docker config directory: ``explicit`` > WERF_DOCKER_CONFIG > DOCKER_CONFIG > ``~/.docker``."""
    return locate(explicit, env).path


def credentials_for(registry: str, docker_config: Path | None = None) -> Credential | None:
    """The credential the Docker config holds for ``registry`` (host[:port]); None when it has none.

    Order as docker's: ``credHelpers[host]``, then ``auths`` entries (``identitytoken``, ``auth``,
    ``username``/``password``), then ``credsStore``.
    """
    directory = docker_config if docker_config is not None else docker_config_dir()
    config = load(directory)
    keys = config_keys(registry)
    host = normalize_registry(registry)
    helpers = config.get("credHelpers") or {}
    if isinstance(helpers, dict):
        for key in keys:
            if helpers.get(key):
                return _from_helper(str(helpers[key]), key)
    auths = config.get("auths") or {}
    if isinstance(auths, dict):
        entry = _find_entry(auths, keys, host)
        if entry is not None:
            credential = _from_entry(entry, registry)
            if credential is not None:
                return credential
    store = config.get("credsStore")
    if isinstance(store, str) and store:
        for key in keys[:2]:
            credential = _from_helper(store, key)
            if credential is not None:
                return credential
    return None


def _find_entry(auths: dict[str, Any], keys: Sequence[str], host: str) -> dict[str, Any] | None:
    for key in keys:
        if isinstance(auths.get(key), dict):
            return dict(auths[key])
    for key, value in auths.items():
        if normalize_registry(key) == host and isinstance(value, dict):
            return dict(value)
    return None


def _from_entry(entry: dict[str, Any], registry: str) -> Credential | None:
    identity = entry.get("identitytoken") or entry.get("identityToken")
    username = entry.get("username")
    password = entry.get("password")
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(str(entry["auth"]), validate=False).decode()
        except (ValueError, UnicodeDecodeError):
            raise ConfigError(
                f"the Docker config entry for {registry} has an 'auth' value that is not base64 of user:password; "
                "log in again"
            ) from None
        if ":" not in decoded:
            raise ConfigError(f"the Docker config entry for {registry} has an 'auth' value without 'user:password'")
        username, password = decoded.split(":", 1)
    if identity:
        return Credential(username=username or None, identity_token=str(identity))
    if username:
        return Credential(username=str(username), password=str(password or ""))
    return None


def _from_helper(helper: str, server: str) -> Credential | None:
    """Ask ``docker-credential-<helper> get`` for ``server``; None when it knows no credential for it."""
    program = shutil.which(f"docker-credential-{helper}")
    if program is None:
        raise ConfigError(
            f"the Docker config names the credential helper {helper!r}, but docker-credential-{helper} "
            "is not on PATH; install it or remove it from config.json"
        )
    try:
        result = subprocess.run(
            [program, "get"], input=server, capture_output=True, text=True, timeout=HELPER_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise AuthError(f"docker-credential-{helper} did not answer within {HELPER_TIMEOUT:.0f}s") from None
    if result.returncode != 0:
        if "not found" in (result.stdout + result.stderr).lower():
            return None
        raise AuthError(f"docker-credential-{helper} get failed for {server} (exit {result.returncode})")
    try:
        data = json.loads(result.stdout)
    except ValueError:
        raise AuthError(f"docker-credential-{helper} answered something that is not JSON for {server}") from None
    username, secret = data.get("Username"), data.get("Secret")
    if not secret:
        return None
    if username == "<token>":
        return Credential(identity_token=str(secret))
    return Credential(username=str(username or ""), password=str(secret))


@dataclass
class _Token:
    value: str
    expires_at: float


class Authenticator:
    """Answers the auth challenges of one registry; thread-safe.

    ``authorization(scopes)`` gives the ``Authorization`` header to send (None before any challenge was
    seen, or for an anonymous Basic registry); ``learn(response)`` records a 401's challenge and drops the
    cached token for those scopes, so the next ``authorization`` fetches a fresh one.
    """

    def __init__(
        self, registry: str, session: requests.Session, credential: Credential | None,
        origins: RegistryOrigins | None = None,
    ) -> None:
        self.registry = registry
        self.origins = origins if origins is not None else RegistryOrigins(registry)
        self.session = session
        self.credential = credential
        self.challenge: Challenge | None = None
        self._tokens: dict[tuple[str, str, tuple[str, ...]], _Token] = {}
        self._lock = threading.Lock()
        self.token_requests = 0

    def learn(self, header: str | None, scopes: Sequence[str]) -> bool:
        """Record the challenge of a 401 answer; True when answering it again may help."""
        challenge = preferred_challenge(header)
        if challenge is None:
            return False
        with self._lock:
            self.challenge = challenge
            if challenge.scheme == "bearer":
                self._tokens.pop(self._key(challenge, scopes), None)
                return True
        return self.credential is not None and self.credential.has_basic

    def authorization(self, scopes: Sequence[str]) -> str | None:
        """The ``Authorization`` header value for a request needing ``scopes``; may fetch a token."""
        challenge = self.challenge
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            if self.credential is None or not self.credential.has_basic:
                return None
            return "Basic " + _basic(self.credential.username or "", self.credential.password or "")
        key = self._key(challenge, scopes)
        with self._lock:
            token = self._tokens.get(key)
            if token is None or token.expires_at <= time.monotonic():
                token = self._fetch(challenge, scopes)
                self._tokens[key] = token
            return "Bearer " + token.value

    @staticmethod
    def _key(challenge: Challenge, scopes: Sequence[str]) -> tuple[str, str, tuple[str, ...]]:
        return (challenge.realm or "", challenge.params.get("service", ""), tuple(scopes))

    def _fetch(self, challenge: Challenge, scopes: Sequence[str]) -> _Token:
        if not challenge.realm:
            raise AuthError(f"{self.registry} asked for a Bearer token but named no realm to get it from")
        self.origins.check_realm(challenge.realm)
        last_status = 0
        for variant in _scope_variants(scopes):
            status, token = self._request_token(challenge, variant)
            if token is not None:
                return token
            last_status = status
            if status not in (400, 401, 403):
                break
        who = f" as {self.credential.username}" if self.credential and self.credential.username else ""
        # an OAuth2 refresh token that is revoked or expired is refused with 400 invalid_grant
        refused_identity = last_status == 400 and self.credential is not None and bool(self.credential.identity_token)
        if last_status in (401, 403) or refused_identity:
            hint = (
                "check the credentials in the Docker config (docker login) or the ones given"
                if self.credential
                else "no credentials for it were found in the Docker config: run docker login or ci-env login"
            )
            raise AuthError(f"the token server of {self.registry} refused the credentials{who} ({last_status}); {hint}")
        raise AuthError(f"the token server of {self.registry} answered {last_status}; cannot authenticate{who}")

    def _request_token(self, challenge: Challenge, scopes: Sequence[str]) -> tuple[int, _Token | None]:
        import requests

        realm = challenge.realm or ""
        service = challenge.params.get("service", "")
        verify = self.origins.realm_verify(realm)
        self.token_requests += 1
        try:
            if self.credential is not None and self.credential.identity_token:
                form = {
                    "grant_type": "refresh_token",
                    "refresh_token": self.credential.identity_token,
                    "client_id": "ci-env",
                    "service": service,
                    "scope": " ".join(scopes),
                }
                response = self.session.post(realm, data=form, verify=verify, allow_redirects=False)
            else:
                headers = {}
                if self.credential is not None and self.credential.has_basic:
                    headers["Authorization"] = "Basic " + _basic(
                        self.credential.username or "", self.credential.password or ""
                    )
                response = self.session.get(
                    challenge.token_url(list(scopes)), headers=headers, verify=verify, allow_redirects=False
                )
        except requests.RequestException as exc:
            from ci_env.registry.http import failure_cause

            raise AuthError(
                f"cannot reach the token server of {self.registry} ({_realm_host(realm)}): {failure_cause(exc)}"
            ) from None
        if response.status_code != 200:
            return response.status_code, None
        try:
            body = response.json()
        except ValueError:
            body = None
        value = (body.get("token") or body.get("access_token")) if isinstance(body, dict) else None
        if not value or not isinstance(value, str):
            raise AuthError(
                f"the token server of {self.registry} answered 200 without a token (expected a JSON object with "
                "\"token\" or \"access_token\"); check the registry's token realm"
            )
        lifetime = body.get("expires_in") or DEFAULT_TOKEN_LIFETIME
        try:
            seconds = float(lifetime)
        except (TypeError, ValueError):
            seconds = DEFAULT_TOKEN_LIFETIME
        if not seconds > 0:  # also NaN
            seconds = DEFAULT_TOKEN_LIFETIME
        margin = min(10.0, seconds / 4)
        return 200, _Token(str(value), time.monotonic() + max(seconds - margin, 0.5))


def _scope_variants(scopes: Sequence[str]) -> list[list[str]]:
    """``scopes`` as asked, then with the full action set replaced by each fallback in ``SCOPE_ACTIONS``."""
    variants = [list(scopes)]
    if not any(scope.endswith(":" + FULL_ACTIONS) for scope in scopes):
        return variants
    for actions in SCOPE_ACTIONS[1:]:
        variants.append(
            [scope[: -len(FULL_ACTIONS)] + actions if scope.endswith(":" + FULL_ACTIONS) else scope for scope in scopes]
        )
    return variants


def _realm_host(realm: str) -> str:
    """``host[:port]`` of a token realm, for messages (no user info, path or query)."""
    from urllib.parse import urlsplit

    return urlsplit(realm).netloc.rpartition("@")[2][:100] or "?"


def _basic(username: str, password: str) -> str:
    return base64.b64encode(f"{username}:{password}".encode()).decode()


def repository_scope(path: str, actions: str = FULL_ACTIONS) -> str:
    """The token scope for ``path`` with ``actions`` (``repository:PATH:ACTIONS``)."""
    return f"repository:{path}:{actions}"
