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

Standard library only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

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


def endpoint_of(url: str) -> Endpoint:
    """The ``Endpoint`` of an absolute ``http``/``https`` URL; ValueError for anything else."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url[:100]!r}")
    port = parts.port  # ValueError for a bad port
    return Endpoint(scheme, parts.hostname.lower(), port if port is not None else _DEFAULT_PORTS[scheme],
                    port is not None)


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

    def check_target(self, url: str, coming_from: str, what: str) -> None:
        """Raise RegistryError when going from ``coming_from`` to ``url`` (for ``what``) is not allowed.

        Refused: a URL that is not http(s), and a downgrade from HTTPS to plain HTTP, unless ``url``'s host may
        use plain HTTP (loopback or listed as insecure).
        """
        try:
            target = endpoint_of(url)
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
        except ValueError:
            raise RegistryError(f"registry {self.registry} sent a Bearer challenge without a usable token realm") \
                from None
        if target.scheme == "http" and not plain_http_allowed(target.netloc, self.insecure):
            raise RegistryError(
                f"registry {self.registry} asks for credentials at a plain-HTTP token realm ({target.netloc}); "
                "refusing to send them unencrypted (list it in --insecure-registry / $WERF_INSECURE_REGISTRY "
                "if intended)"
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
