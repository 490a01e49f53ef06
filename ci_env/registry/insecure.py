"""Which registries may be reached over plain HTTP or unverified TLS.

As docker does: loopback registries (``localhost``, 127.0.0.0/8, ``::1``) implicitly, and the ones the
user lists with ``--insecure-registry`` or ``$WERF_INSECURE_REGISTRY`` (a list, or ``true`` for all).
Shared by setup's login probe, the registry client and the vendor endpoints; standard library only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence

from ci_env.boolean import boolean_word

#: The marker for "every registry" (``$WERF_INSECURE_REGISTRY`` set to a true word).
ALL = "*"


def hostname(host: str) -> str:
    """The host name of ``host[:port]`` (IPv6 in brackets or bare), without the port."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") > 1:  # bare IPv6
        return host
    return host.rsplit(":", 1)[0] if ":" in host else host


def is_loopback(host: str) -> bool:
    """True for ``localhost`` (and ``*.localhost``), 127.0.0.0/8 and ``::1``, with or without a port."""
    name = hostname(host).lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def from_env(env: Mapping[str, str]) -> tuple[str, ...]:
    """The registries ``$WERF_INSECURE_REGISTRY`` lists (comma or space separated); ``("*",)`` for ``true``."""
    raw = (env.get("WERF_INSECURE_REGISTRY") or "").strip()
    every = boolean_word(raw)
    if not raw or every is False:
        return ()
    if every:
        return (ALL,)
    return tuple(part for part in raw.replace(",", " ").split() if part)


def _host_of(registry: str) -> str:
    value = registry.strip().lower()
    for scheme in ("https://", "http://"):
        if value.startswith(scheme):
            value = value[len(scheme):]
    return value.split("/", 1)[0]


def is_listed(host: str, insecure: Sequence[str]) -> bool:
    """True when ``host`` (``host[:port]``) is in ``insecure`` (or it holds ``*``)."""
    return ALL in insecure or _host_of(host) in {_host_of(entry) for entry in insecure}
