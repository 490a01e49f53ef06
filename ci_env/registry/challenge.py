"""Parse ``WWW-Authenticate`` challenges of the Registry API (Basic and Bearer).

Pure functions, no I/O: shared by the light login probe of ``ci-env setup``
(stdlib HTTP, to keep start-up fast) and the full registry client (requests).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlencode

_PARAM = re.compile(r'\s*([A-Za-z0-9_\-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))\s*,?')


@dataclass(frozen=True)
class Challenge:
    """One authentication challenge: its scheme (lower-case) and parameters."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")

    def token_url(self, scopes: list[str] | None = None) -> str:
        """The token endpoint URL for a Bearer challenge, asking for ``scopes`` (else the challenge's own)."""
        if not self.realm:
            raise ValueError("Bearer challenge without realm")
        query: list[tuple[str, str]] = []
        if self.params.get("service"):
            query.append(("service", self.params["service"]))
        wanted = scopes if scopes is not None else ([self.params["scope"]] if self.params.get("scope") else [])
        query.extend(("scope", scope) for scope in wanted)
        if not query:
            return self.realm
        separator = "&" if "?" in self.realm else "?"
        return f"{self.realm}{separator}{urlencode(query)}"


def parse_challenges(header: str | None) -> list[Challenge]:
    """All challenges in a ``WWW-Authenticate`` header value, in order; [] for None or garbage."""
    if not header:
        return []
    challenges: list[Challenge] = []
    rest = header.strip()
    while rest:
        match = re.match(r"([A-Za-z][A-Za-z0-9_\-]*)\s*", rest)
        if not match:
            break
        scheme = match.group(1).lower()
        rest = rest[match.end():]
        params: dict[str, str] = {}
        while rest:
            pm = _PARAM.match(rest)
            if not pm:
                break
            key = pm.group(1).lower()
            value = pm.group(2) if pm.group(2) is not None else pm.group(3)
            params[key] = re.sub(r"\\(.)", r"\1", value or "")
            rest = rest[pm.end():]
        challenges.append(Challenge(scheme, params))
        rest = rest.lstrip(", ")
    return challenges


def preferred_challenge(header: str | None) -> Challenge | None:
    """The challenge to answer: Bearer if offered, else Basic, else None."""
    found = parse_challenges(header)
    for scheme in ("bearer", "basic"):
        for challenge in found:
            if challenge.scheme == scheme:
                return challenge
    return None
