"""Why a request got no answer, in a few words a user can act on (standard library only).

The registry client (requests and urllib3) and the login probe of ``ci-env setup`` (urllib) wrap the socket's
error in their own exceptions; ``cause`` walks the chain down to it. ``is_not_there`` says whether retrying can
help: not for a refused connection, an unknown host or an unreachable network.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Iterator

#: advice after a TLS certificate that could not be verified.
TLS_HINT = (
    "use --insecure-registry (or $WERF_INSECURE_REGISTRY) for a registry with a self-signed certificate, or point "
    "REQUESTS_CA_BUNDLE at its CA"
)

_UNREACHABLE = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL})


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps (causes, contexts, ``reason``, exceptions among its ``args``)."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        inner = [getattr(current, "reason", None), getattr(current, "original_error", None),
                 current.__cause__, current.__context__, *getattr(current, "args", ())]
        pending.extend(item for item in inner if isinstance(item, BaseException))


def _kind(exc: BaseException) -> str | None:
    """The kind of failure ``exc`` itself is, or None when it only wraps another."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "tls-verify"
    if isinstance(exc, ssl.SSLError) or type(exc).__name__ in ("SSLError", "CertificateError"):
        return "tls"
    if isinstance(exc, socket.gaierror) or type(exc).__name__ == "NameResolutionError":
        return "unknown-host"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, OSError) and exc.errno in _UNREACHABLE:
        return "unreachable"
    if isinstance(exc, ConnectionResetError):
        return "reset"
    if isinstance(exc, (socket.timeout, TimeoutError)) or type(exc).__name__.endswith("TimeoutError"):
        return "timeout"
    return None


#: kinds by precedence: the most specific one found anywhere in the chain wins (requests' ``SSLError`` wraps
#: the certificate error; urllib3's connection timeout class is the base of its refused connection).
_PRECEDENCE = ("tls-verify", "unknown-host", "refused", "unreachable", "reset", "tls", "timeout")


def _first_kind(exc: BaseException) -> tuple[str, BaseException] | None:
    found: dict[str, BaseException] = {}
    for item in _chain(exc):
        kind = _kind(item)
        if kind is not None:
            found.setdefault(kind, item)
    for kind in _PRECEDENCE:
        if kind in found:
            return kind, found[kind]
    return None


def _through_proxy(exc: BaseException) -> bool:
    return any(type(item).__name__ == "ProxyError" for item in _chain(exc))


def is_not_there(exc: BaseException) -> bool:
    """True when ``exc`` says the host is not there: the connection was refused, the name is unknown or the
    network unreachable. Retrying such a request only delays the answer."""
    found = _first_kind(exc)
    return found is not None and found[0] in ("refused", "unknown-host", "unreachable")


def cause(exc: BaseException) -> str | None:
    """A short, secret-free phrase for why ``exc`` (a failed request) got no answer; None when unknown."""
    found = _first_kind(exc)
    if found is None:
        return None
    kind, item = found
    phrase = _phrase(kind, item)
    return f"through the proxy: {phrase}" if _through_proxy(exc) else phrase


def _phrase(kind: str, item: BaseException) -> str:
    if kind == "refused":
        return "connection refused (nothing listens on that port; check the address and that it is running)"
    if kind == "unknown-host":
        return "unknown host (the name does not resolve; check the address and DNS)"
    if kind == "unreachable":
        return "network unreachable (no route to the host)"
    if kind == "reset":
        return "the connection was reset, again after retries"
    if kind == "timeout":
        return "no answer in time, again after retries"
    detail = _tls_detail(item)
    if kind == "tls-verify":
        return f"TLS certificate verify failed ({detail}); {TLS_HINT}"
    return f"TLS failed ({detail})"


def _tls_detail(exc: BaseException) -> str:
    message = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or str(exc)
    text = str(message).split(" (_ssl.c")[0]
    return " ".join(text.split())[:160] or type(exc).__name__
