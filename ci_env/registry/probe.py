"""Check registry credentials before they are written: ``GET /v2/`` and its auth challenge.

Standard library HTTP only (``urllib``): this runs on the ``ci-env setup`` path, where
importing requests would cost more than the round trip. The password is only ever sent
in an ``Authorization`` header (never on redirects, never to a plain-HTTP token realm
that is not loopback or listed as insecure, never to a realm whose host is ambiguous) and
never appears in a message or log line. As the registry client: no ``~/.netrc`` (urllib
reads none), the environment's proxies, and the CA bundle of ``REQUESTS_CA_BUNDLE`` /
``CURL_CA_BUNDLE``; a registry that is not there is one line naming the cause, at once.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from ci_env import __version__, untrusted_json
from ci_env.errors import AuthError, ConfigError, RegistryError
from ci_env.registry.challenge import Challenge, preferred_challenge
from ci_env.registry.insecure import is_listed, is_loopback
from ci_env.registry.origins import ambiguity, refusal
from ci_env.registry.reference import DOCKER_HUB_ALIASES, DOCKER_HUB_API_HOST

if TYPE_CHECKING:
    from ci_env.ci.facts import RegistryLogin

Log = Callable[[str], None]
#: the most of an answer's body the probe reads (an error's details, a token).
MAX_BODY = 65536


@dataclass(frozen=True)
class _Response:
    status: int
    headers: Mapping[str, str]
    body: bytes


def registry_host(registry: str) -> str:
    """``host[:port]`` of a registry address (scheme and path dropped; Docker Hub → its API host)."""
    value = registry.strip()
    for scheme in ("https://", "http://"):
        if value.lower().startswith(scheme):
            value = value[len(scheme):]
    host = value.split("/", 1)[0]
    return DOCKER_HUB_API_HOST if host.lower() in DOCKER_HUB_ALIASES else host


def _is_insecure(host: str, insecure: Sequence[str]) -> bool:
    return is_listed(host, insecure) or is_listed(registry_host(host), [registry_host(r) for r in insecure])


def _schemes(host: str, insecure: Sequence[str]) -> list[tuple[str, bool]]:
    """(scheme, verify TLS) in the order to try: HTTPS only, except loopback (HTTP first,
    as local test registries are plain) and insecure registries (HTTPS unverified, then HTTP)."""
    if is_loopback(host):
        return [("http", True), ("https", False)]
    if _is_insecure(host, insecure):
        return [("https", False), ("http", True)]
    return [("https", True)]


def _plain_allowed(url: str, insecure: Sequence[str]) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" or is_loopback(parts.netloc) or _is_insecure(parts.netloc, insecure)


def _get(url: str, headers: dict[str, str], timeout: float, verify: bool) -> _Response:
    """One GET; HTTP errors are returned as responses, network errors raised (OSError, URLError included),
    a malformed URL raised as ValueError."""
    import http.client
    import ssl  # imported here: only a verification pays for urllib/ssl
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": f"ci-env/{__version__}"})
    for name, value in headers.items():
        request.add_unredirected_header(name, value)  # never carried to a redirect target
    handlers: list[urllib.request.BaseHandler] = []
    if not verify:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        handlers.append(urllib.request.HTTPSHandler(context=context))
    elif url.startswith("https:") and _ca_bundle():
        bundle = _ca_bundle() or ""
        import os

        context = (ssl.create_default_context(capath=bundle) if os.path.isdir(bundle)
                   else ssl.create_default_context(cafile=bundle))
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(request, timeout=timeout) as response:
            return _Response(response.status, _lower(response.headers), _read_some(response, timeout))
    except urllib.error.HTTPError as exc:
        try:
            body = _read_some(exc, timeout)
        except OSError:
            body = b""
        return _Response(exc.code, _lower(exc.headers), body)
    except http.client.InvalidURL as exc:
        raise ValueError(str(exc)) from None


def _ca_bundle() -> str | None:
    """The CA bundle of ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` (the registry client's too), or None."""
    import os

    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or None


def _read_some(response: Any, seconds: float) -> bytes:
    """Up to ``MAX_BODY`` bytes of ``response``'s body, read within ``seconds`` in all: a server sending its
    body a byte at a time gets what it sent so far (``read(n)`` alone waits for all ``n`` bytes, each read of
    the socket within the timeout)."""
    import time

    deadline = time.monotonic() + seconds
    chunks: list[bytes] = []
    size = 0
    while size < MAX_BODY and time.monotonic() < deadline:
        chunk = response.read1(MAX_BODY - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _lower(headers: object) -> dict[str, str]:
    items = headers.items() if hasattr(headers, "items") else []
    return {str(k).lower(): str(v) for k, v in items}


def _detail(response: _Response, secrets: Sequence[str]) -> str:
    """A short, secret-free description of an error response (its registry error code/message)."""
    text = ""
    try:
        data = untrusted_json.loads(response.body)
        errors = data.get("errors") if isinstance(data, dict) else None
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            text = " ".join(str(errors[0].get(k, "")) for k in ("code", "message")).strip()
        elif isinstance(data, dict):
            text = str(data.get("details") or data.get("message") or data.get("error") or "")
    except (ValueError, UnicodeDecodeError):
        text = ""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = " ".join(text.split())[:160]
    return f" ({text})" if text else ""


def verify_logins(logins: Sequence[RegistryLogin], insecure_registries: Sequence[str], log: Log) -> None:
    """Check each CI-provided login against its registry, in order, before anything is written (see
    :func:`verify_login`); the first refusal raises."""
    for login in logins:
        log(f"checking the credentials of {login.username} on {login.registry}")
        verify_login(login.registry, login.username, login.password, insecure_registries,
                     credentials_hint=login.hint, log=log)


def verify_login(
    registry: str,
    username: str,
    password: str,
    insecure_registries: Sequence[str] = (),
    timeout: float = 15,
    *,
    credentials_hint: str = "the username and password",
    log: Log | None = None,
) -> None:
    """Return when ``registry`` accepts ``username``/``password``; raise otherwise.

    ``GET /v2/`` without credentials, then answer its challenge: Basic (the same GET with the
    credentials) or Bearer (a token from the realm with the credentials, then ``/v2/`` with the
    token). Success is a 200 from ``/v2/``; a registry that answers 200 without credentials
    cannot check them and is accepted. Raises AuthError naming the registry and the HTTP status
    (``credentials_hint`` says which variables to check), RegistryError when the registry cannot
    be reached or answers unexpectedly. ``log`` receives secret-free progress lines.
    """
    say = log or (lambda _line: None)
    host = registry_host(registry)
    if not host:
        raise RegistryError(f"empty registry address {registry!r}; give a host such as registry.example.com")
    insecure = tuple(insecure_registries)
    secrets = (password, base64.b64encode(f"{username}:{password}".encode()).decode())
    basic = "Basic " + secrets[1]
    attempts = _schemes(host, insecure)
    last_error: Exception | None = None
    for index, (scheme, verify) in enumerate(attempts):
        base = f"{scheme}://{host}"
        try:
            first = _get(f"{base}/v2/", {}, timeout, verify)
        except ValueError as exc:  # http.client.InvalidURL: spaces, a bad port, an unclosed [ipv6
            raise ConfigError(
                f"{registry!r} is not a usable registry address ({exc}); give host[:port] such as "
                "registry.example.com or 127.0.0.1:5000"
            ) from None
        except OSError as exc:  # URLError is an OSError
            last_error = exc
            say(f"GET {base}/v2/ failed: {_reason(exc)}")
            continue
        if _protocol_mismatch(first) and index + 1 < len(attempts):
            say(f"GET {base}/v2/ -> {first.status}: the registry does not speak {scheme}")
            continue
        say(f"GET {base}/v2/ -> {first.status}")
        _answer(registry, base, first, username, basic, secrets, insecure, verify, timeout, credentials_hint, say)
        return
    from ci_env.registry.netfail import cause

    if last_error is not None and cause(last_error):
        raise RegistryError(f"cannot reach registry {registry}: {cause(last_error)}")
    reason = _reason(last_error) if last_error is not None else "no response"
    raise RegistryError(f"cannot reach registry {registry}: {reason}; check the address and that it is reachable")


def _reason(exc: BaseException) -> str:
    from ci_env.registry.netfail import cause

    known = cause(exc)
    if known:
        return known
    reason = getattr(exc, "reason", exc)
    return str(getattr(reason, "strerror", None) or reason)


def _protocol_mismatch(response: _Response) -> bool:
    """A plain-HTTP request answered by a TLS server (Go's "HTTP request to an HTTPS server")."""
    return response.status == 400 and b"HTTPS server" in response.body


def _answer(
    registry: str,
    base: str,
    first: _Response,
    username: str,
    basic: str,
    secrets: Sequence[str],
    insecure: Sequence[str],
    verify: bool,
    timeout: float,
    hint: str,
    say: Log,
) -> None:
    """Log in as ``first`` (the answer to ``GET /v2/``) asks, with Basic credentials or a token, and check the
    registry accepts them; AuthError when it refuses them, RegistryError for any other answer.

    Size: 11 parameters, the facts of one login probe passed down unchanged from ``probe``."""
    if first.status == 200:
        say(f"{registry} answers /v2/ without credentials; nothing to verify")
        return
    if first.status != 401:
        raise RegistryError(
            f"registry {registry} answered HTTP {first.status} to GET /v2/{_detail(first, secrets)}; "
            "is this a Docker registry address?"
        )
    challenge = preferred_challenge(first.headers.get("www-authenticate"))
    if challenge is None:
        raise RegistryError(
            f"registry {registry} answered HTTP 401 without a Basic or Bearer challenge; cannot log in"
        )
    if challenge.scheme == "basic":
        authed = _request(registry, f"{base}/v2/", {"Authorization": basic}, timeout, verify)
        say(f"GET {base}/v2/ with Basic credentials -> {authed.status}")
    else:
        token = _token(registry, challenge, username, basic, secrets, insecure, timeout, hint, say)
        authed = _request(registry, f"{base}/v2/", {"Authorization": f"Bearer {token}"}, timeout, verify)
        say(f"GET {base}/v2/ with the token -> {authed.status}")
    if authed.status == 200:
        return
    if authed.status in (401, 403):
        raise AuthError(
            f"login to {registry} refused: HTTP {authed.status}{_detail(authed, secrets)}; check {hint}"
        )
    raise RegistryError(f"registry {registry} answered HTTP {authed.status} to GET /v2/{_detail(authed, secrets)}")


def _request(registry: str, url: str, headers: dict[str, str], timeout: float, verify: bool) -> _Response:
    try:
        return _get(url, headers, timeout, verify)
    except ValueError as exc:  # http.client.InvalidURL, e.g. a token realm with a bad port
        raise RegistryError(f"registry {registry} sent an unusable URL ({urlsplit(url).netloc}): {exc}") from None
    except OSError as exc:  # URLError is an OSError
        raise RegistryError(f"cannot reach registry {registry} ({urlsplit(url).netloc}): {_reason(exc)}") from None


def _token(
    registry: str,
    challenge: Challenge,
    username: str,
    basic: str,
    secrets: Sequence[str],
    insecure: Sequence[str],
    timeout: float,
    hint: str,
    say: Log,
) -> str:
    """A token from the realm of ``challenge``, asked with the Basic credentials; refused before sending them to
    an ambiguous or plain-HTTP realm (unless listed insecure).

    Size: 9 parameters, the facts of one login probe passed down unchanged from ``_answer``."""
    realm = challenge.realm
    if not realm or urlsplit(realm).scheme not in ("http", "https"):
        raise RegistryError(f"registry {registry} sent a Bearer challenge without a usable token realm")
    problem = ambiguity(realm)
    if problem:
        raise refusal(registry, "its token realm", realm, problem)
    if not _plain_allowed(realm, insecure):
        raise RegistryError(
            f"registry {registry} asks for credentials at a plain-HTTP token realm ({urlsplit(realm).netloc}); "
            "refusing to send them unencrypted (list it in --insecure-registry / $WERF_INSECURE_REGISTRY if intended)"
        )
    query = [("account", username), ("client_id", "ci-env")]
    if challenge.params.get("service"):
        query.insert(0, ("service", challenge.params["service"]))
    if challenge.params.get("scope"):
        query.append(("scope", challenge.params["scope"]))
    url = f"{realm}{'&' if '?' in realm else '?'}{urlencode(query)}"
    realm_host = urlsplit(realm).netloc
    verify = not (is_loopback(realm_host) or _is_insecure(realm_host, insecure))
    response = _request(registry, url, {"Authorization": basic}, timeout, verify)
    say(f"GET token from {urlsplit(realm).scheme}://{realm_host}{urlsplit(realm).path} -> {response.status}")
    if response.status in (401, 403):
        raise AuthError(
            f"login to {registry} refused: HTTP {response.status} from its token service "
            f"{realm_host}{_detail(response, secrets)}; check {hint}"
        )
    if response.status != 200:
        raise RegistryError(
            f"the token service of {registry} ({realm_host}) answered HTTP {response.status}"
            f"{_detail(response, secrets)}"
        )
    try:
        data = untrusted_json.loads(response.body)
        token = data.get("token") or data.get("access_token")
    except (ValueError, AttributeError):
        token = None
    if not isinstance(token, str) or not token:
        raise RegistryError(f"the token service of {registry} ({realm_host}) answered without a token")
    return token
