"""Where a registry's credentials may go, and which URLs a registry may send the client to.

A registry hands back absolute URLs: ``Link`` pages, upload and mount ``Location`` headers, redirects (often to
object storage on another host), token realms. ``RegistryOrigins`` answers, for one registry:

- ``carries_credentials(url)``: the registry's ``Authorization`` (Basic or Bearer) goes only to the registry's
  own host and port, over HTTPS, or over plain HTTP when the registry may use it (loopback, or listed with
  ``--insecure-registry`` / ``$WERF_INSECURE_REGISTRY``); everything else is reached without it;
- ``check_target(url, coming_from)``: a move from HTTPS to plain HTTP (a downgrade) is refused unless the
  target host may use plain HTTP under the same rules;
- ``verify(url)``: TLS certificates are verified except for the registry itself when it is listed as insecure
  (its token realm included, as docker does) and for hosts listed as insecure.

Every one of these answers starts from ``endpoint_of(url)``: the host the HTTP stack will really contact, read
with urllib3's parser (the one requests uses to open the connection), and only when the standard library's
parser reads the same scheme, host and port. A URL the two read differently (``http://other\\@registry/``:
``registry`` for one, ``other`` for the other), or whose authority holds a backslash (raw or ``%5C``),
whitespace or a control character, has no endpoint: it is refused (``UnsafeUrl``), never followed with or
without credentials.

Standard library only, but for urllib3's parser (imported when a URL is first judged).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urljoin, urlsplit

from ci_env.errors import RegistryError
from ci_env.registry.insecure import is_listed, is_loopback

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Endpoint:
    """The scheme, lower-case host name and port (explicit or the scheme's default) of a URL."""

    scheme: str
    host: str
    port: int | None
    explicit_port: bool

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}" if self.explicit_port else host


class UnsafeUrl(ValueError):
    """A URL whose host is ambiguous: parsers disagree on it, or its authority holds characters no host has."""


def endpoint_of(url: str) -> Endpoint:
    """The ``Endpoint`` the HTTP stack (requests, through urllib3's parser) will contact for the absolute
    ``http``/``https`` URL ``url``.

    Raises ``UnsafeUrl`` when ``url`` is ambiguous (see ``ambiguity``) or when urllib3 and
    ``urllib.parse.urlsplit`` read another scheme, host or port from it; ValueError for anything that is not
    an absolute http(s) URL (a bad port included).
    """
    problem = ambiguity(url)
    if problem:
        raise UnsafeUrl(problem)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url[:100]!r}")
    port = parts.port  # ValueError for a bad port
    stdlib = Endpoint(scheme, parts.hostname.lower(), port if port is not None else _DEFAULT_PORTS[scheme],
                      port is not None)
    from urllib3.exceptions import LocationParseError
    from urllib3.util import parse_url

    try:
        used = parse_url(url)
    except LocationParseError:
        raise UnsafeUrl("the HTTP client cannot parse its host") from None
    used_host = (used.host or "").lower()
    if used_host.startswith("[") and used_host.endswith("]"):
        used_host = used_host[1:-1]
    used_port = used.port if used.port is not None else _DEFAULT_PORTS.get((used.scheme or "").lower())
    if ((used.scheme or "").lower(), used_host, used_port) != (stdlib.scheme, stdlib.host, stdlib.port):
        raise UnsafeUrl("the HTTP client and the URL parser read different hosts or ports in it")
    return stdlib


def ambiguity(url: str) -> str | None:
    """Why the authority (``user@host:port``) of ``url`` is ambiguous, or None when it is not.

    Ambiguous: a backslash (raw or percent-encoded), whitespace or a control character (raw or percent-encoded)
    before the path starts. Parsers differ on where such an authority ends or what its host is (the standard
    library drops tabs and newlines; urllib3 ends the authority at a backslash). Standard library only (the
    login probe of ``ci-env setup`` uses it too).
    """
    _, sep, rest = url.partition("://")
    if not sep:
        if not url.startswith("//"):
            return None  # a relative reference: its authority is the base URL's
        rest = url[2:]
    end = len(rest)
    for stop in "/?#":
        index = rest.find(stop)
        if index != -1:
            end = min(end, index)
    authority = rest[:end]
    if "\\" in authority:
        return "a backslash in its host part"
    if any(ord(char) <= 0x20 or ord(char) == 0x7F or char.isspace() for char in authority):
        return "whitespace or a control character in its host part"
    decoded = unquote(authority)
    if "\\" in decoded:
        return "an encoded backslash (%5C) in its host part"
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in decoded):
        return "encoded whitespace or a control character in its host part"
    return None


def describe_unsafe(url: str) -> str:
    """``url`` for a message about refusing it: scheme and authority without user info, characters escaped,
    no path or query (they may carry secrets)."""
    _, sep, rest = url.partition("://")
    scheme = url.partition("://")[0] if sep else ""
    end = len(rest)
    for stop in "/?#":
        index = rest.find(stop)
        if index != -1:
            end = min(end, index)
    authority = rest[:end]
    # the user info ends at the last '@'; a backslash before it is shown, the rest of the user info is not
    user, at, host = authority.rpartition("@")
    shown = ("…\\@" if user.endswith("\\") else "…@" if at else "") + host
    return _printable(f"{scheme}://{shown}")[:120]


def _printable(text: str) -> str:
    """``text`` with control characters and whitespace escaped (``\\t``, ``\\n``, ``\\x00``)."""
    return "".join(
        char if char.isprintable() and not char.isspace()
        else "\\x20" if char == " " else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def plain_http_allowed(host: str, insecure: Sequence[str]) -> bool:
    """True when ``host`` (``host[:port]``) may be reached over plain HTTP: loopback, or listed as insecure."""
    return is_loopback(host) or is_listed(host, insecure)


@dataclass(frozen=True)
class RegistryOrigins:
    """The rules above for the registry ``registry`` (``host[:port]``) with the insecure list ``insecure``."""

    registry: str
    insecure: tuple[str, ...] = ()

    @property
    def registry_host(self) -> str:
        return (urlsplit("//" + self.registry).hostname or self.registry).lower()

    @property
    def registry_port(self) -> int | None:
        try:
            return urlsplit("//" + self.registry).port
        except ValueError:
            return None

    @property
    def registry_plain(self) -> bool:
        """True when the registry itself may be reached over plain HTTP."""
        return plain_http_allowed(self.registry, self.insecure)

    @property
    def registry_insecure(self) -> bool:
        """True when the registry is listed as insecure (plain HTTP or unverified TLS), loopback aside."""
        return is_listed(self.registry, self.insecure) and not is_loopback(self.registry)

    def is_registry(self, url: str) -> bool:
        """True when ``url`` is on the registry's host and port (either scheme; default ports count as one)."""
        try:
            target = endpoint_of(url)
        except ValueError:
            return False
        if target.host != self.registry_host:
            return False
        port = self.registry_port
        if port is None:
            return not target.explicit_port or target.port == _DEFAULT_PORTS[target.scheme]
        return target.port == port

    def carries_credentials(self, url: str) -> bool:
        """True when the registry's ``Authorization`` may be sent with a request for ``url``."""
        if not self.is_registry(url):
            return False
        return endpoint_of(url).scheme == "https" or self.registry_plain

    def resolve(self, base: str, reference: str, what: str) -> str:
        """The absolute URL of ``reference`` (a ``Location`` or ``Link`` the registry sent as ``what``, maybe
        relative) against ``base``; RegistryError when its host is ambiguous, judged before joining (joining
        drops tabs and newlines) and after."""
        problem = ambiguity(reference)
        if problem:
            raise refusal(self.registry, what, reference, problem)
        absolute = urljoin(base, reference)
        self.check_unambiguous(absolute, what)
        return absolute

    def check_unambiguous(self, url: str, what: str) -> None:
        """Raise RegistryError when the host of ``url`` (sent by the registry as ``what``) is ambiguous."""
        try:
            endpoint_of(url)
        except UnsafeUrl as exc:
            raise refusal(self.registry, what, url, exc) from None
        except ValueError:
            pass

    def check_target(self, url: str, coming_from: str, what: str) -> None:
        """Raise RegistryError when going from ``coming_from`` to ``url`` (for ``what``) is not allowed.

        Refused: a URL that is not http(s), and a downgrade from HTTPS to plain HTTP, unless ``url``'s host may
        use plain HTTP (loopback or listed as insecure).
        """
        try:
            target = endpoint_of(url)
        except UnsafeUrl as exc:
            raise refusal(self.registry, what, url, exc) from None
        except ValueError:
            raise RegistryError(f"{self.registry} sent {what} to a URL ci-env cannot use ({_safe(url)})") from None
        downgrade = target.scheme == "http" and urlsplit(coming_from).scheme.lower() == "https"
        if downgrade and not plain_http_allowed(target.netloc, self.insecure):
            raise RegistryError(
                f"{self.registry} sent {what} from HTTPS to plain HTTP ({_safe(url)}); refusing the downgrade "
                "(list the host in --insecure-registry / $WERF_INSECURE_REGISTRY if plain HTTP is intended)"
            )

    def verify(self, url: str) -> bool:
        """Whether the TLS certificate of ``url``'s host is verified."""
        try:
            target = endpoint_of(url)
        except ValueError:
            return True
        if self.registry_insecure and target.host == self.registry_host:
            return False
        return not is_listed(target.netloc, self.insecure)

    def realm_verify(self, realm: str) -> bool:
        """Whether the TLS certificate of the token realm ``realm`` is verified: the registry's setting."""
        return not self.registry_insecure and self.verify(realm)

    def check_realm(self, realm: str) -> None:
        """Raise RegistryError unless credentials may be sent to the token realm ``realm``.

        An ``https`` realm is fine; a plain-HTTP realm only on loopback or on a host listed as insecure.
        """
        try:
            target = endpoint_of(realm)
        except UnsafeUrl as exc:
            raise refusal(self.registry, "its token realm", realm, exc) from None
        except ValueError:
            raise RegistryError(f"registry {self.registry} sent a Bearer challenge without a usable token realm") \
                from None
        if target.scheme == "http" and not plain_http_allowed(target.netloc, self.insecure):
            raise RegistryError(
                f"registry {self.registry} asks for credentials at a plain-HTTP token realm ({target.netloc}); "
                "refusing to send them unencrypted (list it in --insecure-registry / $WERF_INSECURE_REGISTRY "
                "if intended)"
            )


def refusal(registry: str, what: str, url: str, problem: UnsafeUrl | str) -> RegistryError:
    """The error for ``registry`` sending ``what`` to the ambiguous URL ``url``: names the URL's scheme and
    host (escaped, no user info, path or query) and why it is refused; nothing was sent there."""
    return RegistryError(
        f"{registry} sent {what} to a URL whose host is ambiguous ({describe_unsafe(url)}: {problem}); refusing "
        "to follow it, no request was sent there"
    )


def _safe(url: str) -> str:
    """``scheme://host/path`` of ``url``, without user info or query (which may carry secrets)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if _port_or_none(url) is not None else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"[:200]


def _port_or_none(url: str) -> int | None:
    try:
        return urlsplit(url).port
    except ValueError:
        return None
