"""Parsing and normalising registry addresses and image references (pure: no I/O).

An *address* is where images go: a registry (``127.0.0.1:5000``), a Docker Hub account
(``foo``), or a repository (``ghcr.io/acme/app``). An *image reference* adds a tag and/or a
digest (``ghcr.io/acme/app:1.0``, ``...@sha256:...``). The grammar follows the
distribution reference grammar: lower-case path components separated by ``/``, each made
of ``[a-z0-9]`` runs joined by ``.``, ``_``, ``__`` or dashes; tags ``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}``;
digests ``algorithm:hex`` (sha256: 64 lower-case hex digits).

Every malformed input raises :class:`~ci_env.errors.ConfigError` whose message quotes the
input, names the part that is wrong and says what to write instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ci_env.configjson import DOCKER_HUB_NAMES
from ci_env.errors import ConfigError
from ci_env.redact import strip_userinfo

#: The stages-storage value meaning "keep stages in the local Docker daemon".
LOCAL = ":local"

#: Canonical Docker Hub registry name and the host serving its Registry API.
DOCKER_HUB = "docker.io"
DOCKER_HUB_API_HOST = "registry-1.docker.io"
#: Every host name that means Docker Hub; all normalise to :data:`DOCKER_HUB`.
DOCKER_HUB_ALIASES = DOCKER_HUB_NAMES

#: Maximum length of a repository name (host excluded), as in the distribution reference grammar.
MAX_PATH_LENGTH = 255

_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN_COMPONENT = r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
_HOST = re.compile(rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9A-Fa-f:.]+\])(?::([0-9]+))?")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"([A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*):([0-9A-Fa-f]{32,})")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True)
class RepoAddress:
    """A registry, account or repository address, canonical and validated.

    ``registry`` is ``host[:port]`` in lower case (Docker Hub is ``docker.io``); ``path`` is the
    repository path, ``""`` when the address names a registry only. A Docker Hub ``foo`` stays
    ``foo`` (an account), it is NOT expanded to ``library/foo``.
    """

    registry: str
    path: str = ""

    def api_host(self) -> str:
        """Host[:port] to send Registry API requests to (``registry-1.docker.io`` for Docker Hub)."""
        return DOCKER_HUB_API_HOST if self.registry == DOCKER_HUB else self.registry

    def child(self, name: str) -> RepoAddress:
        """The address ``self/name`` (``name`` may contain ``/``); ConfigError if ``name`` is not a valid path."""
        _check_path(name, name)
        return RepoAddress(self.registry, f"{self.path}/{name}" if self.path else name)

    @property
    def is_registry_only(self) -> bool:
        """True when the address is a bare registry host with no repository path."""
        return not self.path

    @property
    def components(self) -> tuple[str, ...]:
        """The path split on ``/`` (empty for a registry-only address)."""
        return tuple(self.path.split("/")) if self.path else ()

    @property
    def host(self) -> str:
        """The registry host without its port."""
        if self.registry.startswith("["):
            return self.registry.split("]", 1)[0] + "]"
        return self.registry.rsplit(":", 1)[0] if ":" in self.registry else self.registry

    def __str__(self) -> str:
        return f"{self.registry}/{self.path}" if self.path else self.registry


@dataclass(frozen=True)
class LocalRepository(RepoAddress):
    """A repository of the local Docker daemon (the ``:local`` stages, ``ci-env-stages/<project>``): on no
    registry (``registry`` is ``""``), written as its name alone. Never equal to a registry's address."""

    def __str__(self) -> str:
        return self.path


@dataclass(frozen=True)
class ImageRef:
    """A reference to one image: repository plus tag and/or digest (at least one of them is set)."""

    repo: RepoAddress
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        text = str(self.repo)
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def canonical_registry(host: str) -> str:
    """Normalise a registry host[:port]: lower case, Docker Hub aliases to ``docker.io``.

    Raises ConfigError for a host that is not a valid ``host[:port]``.
    """
    _check_host(host, host)
    lowered = host.lower()
    return DOCKER_HUB if lowered in DOCKER_HUB_ALIASES else lowered


#: Ports that name the registry's own scheme default: ``host:443`` (HTTPS) and ``host:80`` (HTTP) are
#: the registry ``host`` itself, as far as which images it holds is concerned.
DEFAULT_PORTS = frozenset({"443", "80"})


def registry_identity(registry: str) -> str:
    """The one name a canonical registry (``str``, as in :attr:`RepoAddress.registry`) is known by whatever
    its spelling: an explicit default port (``:443``, ``:80``) dropped, then Docker Hub's aliases
    (``index.docker.io``, ``registry-1.docker.io``, ...) as ``docker.io``.

    Used to match an image a workload runs against the repository cleanup cleans; never to address
    requests (``host:80`` and ``host`` may differ in scheme)."""
    lowered = registry.lower()
    host, sep, port = lowered.rpartition(":")
    if sep and not lowered.endswith("]") and port in DEFAULT_PORTS:
        lowered = host
    return DOCKER_HUB if lowered in DOCKER_HUB_ALIASES else lowered


def repository_identity(repo: RepoAddress) -> str:
    """The one key of a repository whatever its spelling: ``registry_identity/path`` with a one-component
    Docker Hub path under ``library/`` (``x``, ``docker.io/x``, ``index.docker.io:443/library/x`` are all
    ``docker.io/library/x``; ``registry.example.com:443/app`` is ``registry.example.com/app``). A repository of
    the local daemon (:class:`LocalRepository`) is known by the name Kubernetes gives an image of that name: on
    Docker Hub."""
    registry = DOCKER_HUB if isinstance(repo, LocalRepository) else registry_identity(repo.registry)
    if registry == DOCKER_HUB and repo.path and "/" not in repo.path:
        return f"{DOCKER_HUB}/library/{repo.path}"
    return f"{registry}/{repo.path}" if repo.path else registry


def is_valid_tag(tag: str) -> bool:
    """True when ``tag`` matches the tag grammar (``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}``)."""
    return _TAG.fullmatch(tag) is not None


def validate_tag(tag: str, *, context: str = "tag") -> None:
    """Raise ConfigError unless ``tag`` is a valid tag; the message (starting with ``context``) says what is wrong."""
    if not tag:
        raise ConfigError(f"{context} is empty: a tag needs 1 to 128 characters from [A-Za-z0-9_.-]")
    if len(tag) > 128:
        raise ConfigError(f"{context} {tag[:40]!r}... is {len(tag)} characters long: a tag has at most 128")
    if tag[0] in ".-":
        raise ConfigError(f"{context} {tag!r} starts with {tag[0]!r}: a tag must start with a letter, digit or '_'")
    if not is_valid_tag(tag):
        bad = sorted({c for c in tag if not (c.isascii() and (c.isalnum() or c in "_.-"))})
        raise ConfigError(
            f"{context} {tag!r} contains {', '.join(repr(c) for c in bad)}: a tag may only contain "
            "letters, digits, '_', '.' and '-'"
        )


def validate_digest(digest: str) -> None:
    """Raise ConfigError unless ``digest`` is ``algorithm:hex`` (sha256: exactly 64 lower-case hex digits)."""
    match = _DIGEST.fullmatch(digest)
    if match is None:
        raise ConfigError(
            f"digest {digest!r} is malformed: expected 'sha256:' followed by 64 lower-case hex digits"
        )
    algorithm, hexpart = match.groups()
    if algorithm == "sha256" and (len(hexpart) != 64 or hexpart != hexpart.lower()):
        raise ConfigError(
            f"digest {digest!r} is malformed: a sha256 digest has exactly 64 lower-case hex digits"
        )


def parse_address(text: str, *, allow_local: bool = False) -> RepoAddress | None:
    """Parse an images repo or stages storage address into a canonical :class:`RepoAddress`.

    Returns ``None`` for ``:local`` when ``allow_local`` (the stages storage). Docker Hub forms
    (``foo``, ``foo/bar``, ``docker.io/...``, ``index.docker.io/...``, ``registry.hub.docker.com/...``)
    normalise to registry ``docker.io``. Raises ConfigError naming what is wrong for anything
    malformed: empty text, a scheme, upper-case or invalid path characters, empty components,
    a tag or digest where a repository is expected, a bad port.
    """
    if text == LOCAL:
        if allow_local:
            return None
        raise ConfigError(
            "':local' is only valid for the stages storage (-s/--stages-storage); "
            "an images repo must be a registry or repository address"
        )
    if not text or not text.strip():
        raise ConfigError("empty address: give a registry (e.g. 'registry.example.com') or a repository "
                          "(e.g. 'registry.example.com/group/project')")
    shown = strip_userinfo(text)  # what a message may quote
    if shown != text:
        raise ConfigError(
            f"address {shown!r} was given with credentials ('USER:PASSWORD@'): remove them and "
            "log in with docker login or ci-env login (ci-env never stores credentials in an address)"
        )
    if text != text.strip() or any(c.isspace() for c in text):
        raise ConfigError(f"address {text!r} contains whitespace: remove it")
    if _SCHEME.match(text):
        scheme = text.split("://", 1)[0]
        raise ConfigError(
            f"address {text!r} has a scheme ({scheme}://): write the address without it, "
            f"e.g. {text.split('://', 1)[1].rstrip('/')!r}"
        )
    if "@" in text:
        raise ConfigError(
            f"address {text!r} contains a digest ('@...'): an images repo or stages storage is a repository "
            "address, not an image; remove '@...'"
        )
    registry, path = _split_host(text)
    if path and ":" in path.rsplit("/", 1)[-1]:
        name, tag = path.rsplit(":", 1)
        raise ConfigError(
            f"address {text!r} ends with a tag (':{tag}'): an images repo or stages storage is a repository "
            f"address, not an image; use {_join(registry, name)!r}"
        )
    if path:
        _check_path(path, text)
    return RepoAddress(registry, path)


def parse_image_ref(text: str) -> ImageRef:
    """Parse ``host/path:tag``, ``host/path@sha256:...`` or ``host/path:tag@sha256:...``.

    At least a tag or a digest is required. Raises ConfigError naming the malformed part.
    """
    if not text or not text.strip():
        raise ConfigError("empty image reference: expected REPOSITORY:TAG or REPOSITORY@sha256:DIGEST")
    shown = strip_userinfo(text)  # what a message may quote
    if shown != text:
        raise ConfigError(
            f"image reference {shown!r} was given with credentials ('USER:PASSWORD@'): remove them "
            "and log in with docker login or ci-env login"
        )
    if text != text.strip() or any(c.isspace() for c in text):
        raise ConfigError(f"image reference {text!r} contains whitespace: remove it")
    if _SCHEME.match(text):
        raise ConfigError(f"image reference {text!r} has a scheme: write it without '{text.split('://')[0]}://'")
    digest: str | None = None
    rest = text
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        validate_digest(digest)
    tag: str | None = None
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        rest, tag = rest.rsplit(":", 1)
        validate_tag(tag, context=f"image reference {text!r}: tag")
    if tag is None and digest is None:
        raise ConfigError(
            f"image reference {text!r} has neither a tag nor a digest: add ':TAG' or '@sha256:DIGEST'"
        )
    registry, path = _split_host(rest)
    if not path:
        raise ConfigError(f"image reference {text!r} has no repository path: expected HOST/REPOSITORY:TAG")
    _check_path(path, text)
    return ImageRef(RepoAddress(registry, path), tag, digest)


# ---------------------------------------------------------------- helpers


def _join(registry: str, path: str) -> str:
    return f"{registry}/{path}" if path else registry


def _is_host(component: str) -> bool:
    """Whether the first component of a name is a registry host (docker's rule, plus an explicit message)."""
    return "." in component or ":" in component or component == "localhost" or component.startswith("[")


def _split_host(text: str) -> tuple[str, str]:
    """Split text into (canonical registry, path); a first component without '.' or ':' is Docker Hub."""
    first, sep, rest = text.partition("/")
    if not _is_host(first):
        return DOCKER_HUB, text
    if ":" in first and not first.startswith("[") and not sep:
        host, _, port = first.rpartition(":")
        if not port.isdigit():
            raise ConfigError(
                f"address {text!r} ends with a tag (':{port}'): an images repo or stages storage is a "
                f"repository address, not an image; use {host!r}"
            )
    if first.lower().split(":")[0] == "hub.docker.com":
        raise ConfigError(
            f"{text!r}: hub.docker.com is the Docker Hub website, not a registry; "
            "write 'ACCOUNT' or 'ACCOUNT/REPOSITORY'"
        )
    _check_host(first, text)
    if sep and not rest:
        raise ConfigError(f"address {text!r} ends with '/': remove the trailing slash")
    lowered = first.lower()
    return (DOCKER_HUB if lowered in DOCKER_HUB_ALIASES else lowered), rest


def _check_host(host: str, text: str) -> None:
    match = _HOST.fullmatch(host)
    if match is None:
        raise ConfigError(
            f"registry host {host!r} in {text!r} is malformed: expected HOST or HOST:PORT "
            "(letters, digits, '-' and '.'; a numeric port)"
        )
    port = match.group(1)
    if port is not None and not 0 < int(port) < 65536:
        raise ConfigError(f"registry port {port} in {text!r} is out of range: use 1-65535")


def _check_path(path: str, text: str) -> None:
    """Raise ConfigError naming the first invalid component of ``path``."""
    if not path:
        raise ConfigError(f"empty repository path in {text!r}")
    if path.startswith("/") or path.endswith("/") or "//" in path:
        raise ConfigError(f"repository path in {text!r} has an empty component (a leading, trailing or doubled '/'): "
                          "remove the extra '/'")
    if len(path) > MAX_PATH_LENGTH:
        raise ConfigError(
            f"repository path in {text!r} is {len(path)} characters long: the limit is {MAX_PATH_LENGTH}"
        )
    for component in path.split("/"):
        if _PATH_COMPONENT.fullmatch(component):
            continue
        if component != component.lower() and _PATH_COMPONENT.fullmatch(component.lower()):
            raise ConfigError(
                f"repository path component {component!r} in {text!r} contains upper-case letters: "
                f"repository paths are lower-case, use {component.lower()!r}"
            )
        if ":" in component:
            raise ConfigError(
                f"repository path component {component!r} in {text!r} contains ':': a ':' may only separate "
                "a host from its port, or an image from its tag"
            )
        raise ConfigError(
            f"repository path component {component!r} in {text!r} is invalid: use lower-case letters and digits, "
            "separated by single '.', '_', '__' or dashes, starting and ending with a letter or digit"
        )
