"""What runs in Kubernetes, so that cleanup never removes it.

:func:`scan` reads every context of the kubeconfig (``--kube-config``, else ``KUBECONFIG``, a list of
files separated by ``:``, else ``~/.kube/config``; ``--kube-context`` picks one), or, when there is none and
cleanup runs in a pod, the pod's service account as ``kubectl`` does (``KUBERNETES_SERVICE_HOST`` and
``_PORT``, the token and CA in ``/var/run/secrets/kubernetes.io/serviceaccount``: the context
``inClusterContext``, as werf names it). It lists the kinds of :data:`~ci_env.cleanup.kube_objects.KINDS` in
the namespaces of ``--kube-scan-namespaces`` when given, else in all namespaces (or, with
``--scan-context-namespace-only``, in the context's namespace, ``default`` when it names none; the pod's own
namespace in the cluster) and returns :class:`ImagesInUse`: which workload uses which ``repository:tag``,
``repository@digest`` and running digest.

This is the only module that imports the ``kubernetes`` client (the ``kube`` extra), and only when a
kubeconfig exists. Each list call pages (``limit``/``continue``), has a timeout, and the calls run in
parallel across contexts and kinds. A context that cannot be read, wholly or for one kind, stops
cleanup before anything is removed (:class:`~ci_env.errors.KubernetesError`, exit 1), naming the
context, the kind, the cause and the fix: never a silent skip.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from ci_env.cleanup.kube_objects import (
    ANY_REPOSITORY,
    KIND_RANK,
    KINDS,
    ImageUse,
    Kind,
    finished,
    image_uses,
    repository_key,
)
from ci_env.errors import ConfigError, KubernetesError, UsageError
from ci_env.registry.reference import RepoAddress

#: Objects per list page, seconds to connect and to answer each request, and list calls at once.
PAGE_SIZE = 500
CONNECT_TIMEOUT = 10.0
REQUEST_TIMEOUT = 30.0
PARALLEL = 8
DOCS = "docs/cleanup-kubernetes.md"
ESCAPES = ("scan only the contexts that can be read with --kube-context NAME, or pass --without-kube "
           "(WERF_WITHOUT_KUBE=1) to clean without protecting the images that run in Kubernetes")


@dataclass(frozen=True, order=True)
class Workload:
    """A Kubernetes object that uses images: ``context/namespace/kind/name``."""

    context: str
    namespace: str
    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.context}/{self.namespace}/{self.kind}/{self.name}"


#: The service account a pod's containers get (token, ca.crt, namespace), as kubectl reads it in a cluster.
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
#: The context name of the in-cluster configuration (werf's).
IN_CLUSTER = "inClusterContext"
_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


@dataclass(frozen=True)
class KubeSettings:
    """Where and whether to look: ``--without-kube``, ``--kube-config`` files, ``--kube-context``,
    ``--scan-context-namespace-only``, ``--kube-scan-namespaces``; ``service_account_dir``: where a pod's
    service account is mounted."""

    without_kube: bool = False
    kube_config: tuple[Path, ...] = ()
    kube_context: str | None = None
    namespace_only: bool = False
    scan_namespaces: tuple[str, ...] = ()
    service_account_dir: Path = SERVICE_ACCOUNT_DIR


def scan_namespaces(values: Iterable[str]) -> tuple[str, ...]:
    """``--kube-scan-namespaces`` values (each may list several, separated by commas or spaces), in order, each
    once; UsageError for a name Kubernetes would not accept (a DNS label: lower case letters, digits, ``-``)."""
    names: list[str] = []
    for value in values:
        for name in value.replace(",", " ").split():
            if not _NAMESPACE.fullmatch(name):
                raise UsageError(f"--kube-scan-namespaces {name!r} is not a Kubernetes namespace name (lower case "
                                 "letters, digits and '-', at most 63): give the namespaces to scan, e.g. "
                                 "--kube-scan-namespaces apps,jobs")
            if name not in names:
                names.append(name)
    return tuple(names)


_Index = Mapping[tuple[str, str], tuple[Workload, ...]]


@dataclass(frozen=True)
class ImagesInUse:
    """The images the scanned workloads use, indexed by ``(repository, tag)`` and ``(repository, digest)``;
    ``note`` says why nothing is protected when no kubeconfig was found."""

    contexts: tuple[str, ...] = ()
    objects: int = 0
    workloads: int = 0
    images: int = 0
    note: str | None = None
    by_tag: _Index = field(default_factory=dict, repr=False, hash=False)
    by_digest: _Index = field(default_factory=dict, repr=False, hash=False)

    @classmethod
    def index(
        cls, uses: Iterable[tuple[Workload, ImageUse]], contexts: Sequence[str], objects: int,
    ) -> ImagesInUse:
        """Index ``(workload, use)`` pairs: each tag and digest to the workloads using it."""
        by_tag: dict[tuple[str, str], set[Workload]] = {}
        by_digest: dict[tuple[str, str], set[Workload]] = {}
        workloads: set[Workload] = set()
        images: set[ImageUse] = set()
        for workload, use in uses:
            workloads.add(workload)
            images.add(use)
            if use.tag is not None:
                by_tag.setdefault((use.repository, use.tag), set()).add(workload)
            if use.digest is not None:
                by_digest.setdefault((use.repository, use.digest), set()).add(workload)
        return cls(
            tuple(contexts), objects, len(workloads), len(images), None,
            {k: _ranked(v) for k, v in by_tag.items()}, {k: _ranked(v) for k, v in by_digest.items()},
        )

    def users(self, repository: RepoAddress, tag: str, digest: str | None) -> tuple[Workload, ...]:
        """The workloads that reference ``repository:tag`` or ``repository@digest``, or run ``digest``;
        controllers first, then by name."""
        if not self.by_tag and not self.by_digest:
            return ()
        key = repository_key(repository)
        found = set(self.by_tag.get((key, tag), ()))
        if digest:
            found.update(self.by_digest.get((key, digest), ()))
            found.update(self.by_digest.get((ANY_REPOSITORY, digest), ()))
        return _ranked(found)

    def digests(self, repository: RepoAddress) -> frozenset[str]:
        """Every digest workloads reference or run in ``repository``, whether or not a tag still points at it:
        removals must leave these, and what they reach, in place."""
        key = repository_key(repository)
        return frozenset(digest for (where, digest) in self.by_digest if where in (key, ANY_REPOSITORY))

    def summary(self) -> str | None:
        """One line for stderr: the note, or what was scanned; None when Kubernetes was not looked at."""
        if self.note is not None:
            return self.note
        if not self.contexts:
            return None
        count = len(self.contexts)
        return (f"kubernetes: {count} context{'s' if count != 1 else ''} ({', '.join(self.contexts)}), "
                f"{self.workloads} workloads, {self.images} images in use")


def _ranked(workloads: Iterable[Workload]) -> tuple[Workload, ...]:
    return tuple(sorted(workloads, key=lambda w: (KIND_RANK.get(w.kind, len(KIND_RANK)), w)))


def in_use_reason(users: Sequence[Workload]) -> str:
    """``in use: <first workload>[, +N more]``."""
    more = f", +{len(users) - 1} more" if len(users) > 1 else ""
    return f"in use: {users[0]}{more}"


# ---------------------------------------------------------------- finding the kubeconfig


def kubeconfig_files(settings: KubeSettings, env: Mapping[str, str]) -> tuple[tuple[Path, ...], str]:
    """The kubeconfig files to read and where they were looked for (for the note).

    ``--kube-config`` files must exist (UsageError otherwise); of ``KUBECONFIG`` the existing files count,
    as kubectl does; else ``$HOME/.kube/config`` when it exists."""
    if settings.kube_config:
        missing = [str(p) for p in settings.kube_config if not p.is_file()]
        if missing:
            raise UsageError(f"--kube-config {missing[0]!r} is not a file: give the kubeconfig to read "
                             "(WERF_KUBE_CONFIG), or pass --without-kube to clean without Kubernetes")
        return settings.kube_config, "--kube-config"
    listed = env.get("KUBECONFIG", "")
    if listed:
        paths = [Path(p).expanduser() for p in listed.split(os.pathsep) if p]
        return tuple(p for p in paths if p.is_file()), f"KUBECONFIG={listed}"
    home = env.get("HOME")
    default = (Path(home) if home else Path.home()) / ".kube" / "config"
    return ((default,) if default.is_file() else ()), str(default)


def in_cluster(settings: KubeSettings, env: Mapping[str, str]) -> bool:
    """True when cleanup runs in a pod whose service account kubectl would use for want of a kubeconfig:
    ``KUBERNETES_SERVICE_HOST`` and ``KUBERNETES_SERVICE_PORT`` set and the account's token mounted."""
    return bool(env.get("KUBERNETES_SERVICE_HOST") and env.get("KUBERNETES_SERVICE_PORT")
                and (settings.service_account_dir / "token").is_file())


def _not_protected(where: str, why: str) -> ImagesInUse:
    return ImagesInUse(note=f"kubernetes: {why} ({where}): images running in Kubernetes are not protected; "
                            "pass --kube-config FILE to protect them, or --without-kube to silence this")


# ---------------------------------------------------------------- scanning


def scan(settings: KubeSettings, env: Mapping[str, str]) -> ImagesInUse:
    """What every selected context runs (see the module docstring).

    ``without_kube``: empty, nothing imported. No kubeconfig (or one without contexts): empty with a note,
    ``kubernetes`` not imported. Raises UsageError for an unknown ``--kube-context`` or a missing
    ``--kube-config``, ConfigError for a kubeconfig that cannot be parsed, KubernetesError (exit 1) when the
    ``kubernetes`` package is missing or a context cannot be read."""
    if settings.without_kube:
        return ImagesInUse()
    files, where = kubeconfig_files(settings, env)
    cluster = not files and in_cluster(settings, env)
    if not files and not cluster:
        if settings.kube_context is not None:
            raise UsageError(f"--kube-context {settings.kube_context!r} is given but no kubeconfig was found "
                             f"({where}): pass --kube-config FILE")
        return _not_protected(where, "no kubeconfig found")
    kube = _import_kubernetes("this job runs in a Kubernetes pod with a service account" if cluster
                              else "a kubeconfig was found")
    config_file = os.pathsep.join(str(p) for p in files)
    contexts = _in_cluster_context(settings) if cluster else _contexts(kube, config_file, where, settings)
    if not contexts:
        return _not_protected(where, "the kubeconfig has no contexts")
    clients: dict[str, Any] = {}
    failures: list[_Failure] = []
    for name, _namespaces in contexts:
        try:
            clients[name] = _in_cluster_client(kube, settings, env) if cluster else _client(kube, config_file, name)
        except Exception as exc:  # the client raises many types for a bad context (missing file, exec plugin)
            fix = (f"check the service account mounted in {settings.service_account_dir}" if cluster
                   else "fix this context in the kubeconfig")
            failures.append(_Failure(name, None, None, f"its configuration cannot be loaded: {_cause(kube, exc)}",
                                     fix))
    tasks = [(name, namespace, kind) for name, namespaces in contexts if name in clients
             for namespace in namespaces for kind in KINDS]
    uses: list[tuple[Workload, ImageUse]] = []
    objects = 0
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(PARALLEL, len(tasks)))) as pool:
            results = list(pool.map(lambda t: _list_kind(kube, clients[t[0]], *t), tasks))
    finally:
        for client in clients.values():
            _close(client)
    for result in results:
        if isinstance(result, _Failure):
            failures.append(result)
        else:
            read, found = result
            objects += read
            uses.extend(found)
    if failures:
        raise KubernetesError(_message(failures))
    return ImagesInUse.index(uses, [name for name, _ns in contexts], objects)


def _import_kubernetes(found: str) -> ModuleType:
    try:
        import kubernetes.client
        import kubernetes.config
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("kubernetes"):
            raise
        raise KubernetesError(
            f"{found} but the kubernetes package is not installed, so cleanup cannot see which "
            "images run in Kubernetes: install ci-env with the kube extra (CI_ENV_EXTRAS=docker,kube in the Action "
            "and the template), or pass --without-kube (WERF_WITHOUT_KUBE=1) to clean without protecting them"
        ) from None
    return kubernetes


def _namespaces(settings: KubeSettings, own: str | None) -> tuple[str | None, ...]:
    """The namespaces to list in a context whose namespace is ``own`` (None: all namespaces), as werf chooses
    them: ``--kube-scan-namespaces``, else the context's with ``--scan-context-namespace-only``, else all."""
    if settings.scan_namespaces:
        return settings.scan_namespaces
    return (own or "default",) if settings.namespace_only else (None,)


def _in_cluster_context(settings: KubeSettings) -> list[tuple[str, tuple[str | None, ...]]]:
    """The one in-cluster context, its namespace the pod's (its service account's ``namespace`` file)."""
    if settings.kube_context not in (None, IN_CLUSTER):
        raise UsageError(f"--kube-context {settings.kube_context!r} is given but no kubeconfig was found; in this "
                         f"pod the only context is {IN_CLUSTER!r} (its service account): pass --kube-config FILE")
    try:
        own = (settings.service_account_dir / "namespace").read_text().strip() or None
    except OSError:
        own = None
    return [(IN_CLUSTER, _namespaces(settings, own))]


def _in_cluster_client(kube: ModuleType, settings: KubeSettings, env: Mapping[str, str]) -> Any:
    """A client with the pod's service account, as kubectl makes it (the token re-read as it is renewed)."""
    from kubernetes.config.incluster_config import InClusterConfigLoader

    configuration = kube.client.Configuration()
    InClusterConfigLoader(token_filename=str(settings.service_account_dir / "token"),
                          cert_filename=str(settings.service_account_dir / "ca.crt"),
                          environ=dict(env)).load_and_set(configuration)
    return kube.client.ApiClient(configuration=configuration)


def _contexts(
    kube: ModuleType, config_file: str, where: str, settings: KubeSettings,
) -> list[tuple[str, tuple[str | None, ...]]]:
    """(name, namespaces to list, None for all) of each context to scan, in kubeconfig order."""
    try:
        listed, _current = kube.config.list_kube_config_contexts(config_file=config_file)
    except kube.config.ConfigException as exc:
        if "No configuration found" not in str(exc) and "is empty" not in str(exc):
            raise ConfigError(f"the kubeconfig ({where}) cannot be read: {exc}") from None
        listed = []
    except Exception as exc:  # YAML errors, unreadable files
        raise ConfigError(f"the kubeconfig ({where}) cannot be read: {_first_line(exc)}") from None
    contexts = []
    for entry in listed or ():
        name = str(entry.get("name") or "")
        body = entry.get("context") or {}
        if not name:
            continue
        contexts.append((name, _namespaces(settings, str(body.get("namespace") or "") or None)))
    if settings.kube_context is not None:
        chosen = [c for c in contexts if c[0] == settings.kube_context]
        if not chosen:
            names = ", ".join(repr(c[0]) for c in contexts) or "none"
            raise UsageError(f"--kube-context {settings.kube_context!r} is not in the kubeconfig ({where}); "
                             f"its contexts: {names}")
        return chosen
    return contexts


def _client(kube: ModuleType, config_file: str, context: str) -> Any:
    configuration = kube.client.Configuration()
    kube.config.load_kube_config(config_file=config_file, context=context, client_configuration=configuration,
                                 persist_config=False)
    return kube.client.ApiClient(configuration=configuration)


def _close(client: Any) -> None:
    with contextlib.suppress(Exception):  # closing is best effort
        client.close()


@dataclass(frozen=True)
class _Failure:
    context: str
    kind: Kind | None
    namespace: str | None
    cause: str
    fix: str
    server: str = ""


def _list_kind(
    kube: ModuleType, client: Any, context: str, namespace: str | None, kind: Kind,
) -> tuple[int, list[tuple[Workload, ImageUse]]] | _Failure:
    """Every object of ``kind`` (all pages), as (objects read, uses); or why it could not be read."""
    api = getattr(kube.client, kind.api)(client)
    method = getattr(api, kind.list_method(namespace is not None))
    args: dict[str, Any] = {"namespace": namespace} if namespace is not None else {}
    uses: list[tuple[Workload, ImageUse]] = []
    read = 0
    token: str | None = None
    seen: set[str] = set()
    while True:
        try:
            response = method(**args, limit=PAGE_SIZE, _continue=token, _preload_content=False,
                              _request_timeout=(CONNECT_TIMEOUT, REQUEST_TIMEOUT))
            document = json.loads(response.data)
        except Exception as exc:  # the client's errors: ApiException, urllib3's, JSON
            cause = _cause(kube, exc)
            return _Failure(context, kind, namespace, cause, _fix(kube, exc, kind, namespace, cause),
                            str(getattr(client.configuration, "host", "") or ""))
        for obj in document.get("items") or ():
            read += 1
            if kind.skips_finished and finished(obj):
                continue
            metadata = obj.get("metadata") or {}
            workload = Workload(context, str(metadata.get("namespace") or namespace or ""), kind.name,
                                str(metadata.get("name") or ""))
            uses.extend((workload, use) for use in image_uses(kind, obj))
        token = (document.get("metadata") or {}).get("continue") or None
        if token is None or token in seen:
            return read, uses
        seen.add(token)


def _status_message(body: Any) -> str:
    try:
        message = json.loads(body).get("message")
    except Exception:  # not a Status object
        return ""
    return str(message) if message else ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _cause(kube: ModuleType, exc: BaseException) -> str:
    """What went wrong, in one line, without credentials (client messages carry URLs, never headers)."""
    import urllib3.exceptions as u3

    if isinstance(exc, kube.client.ApiException):
        if not exc.status:  # the client's own wrapper of a TLS error
            return f"TLS error: {' '.join(str(exc.reason or '').split())}"
        message = _status_message(exc.body)
        return f"{exc.status} {exc.reason}" + (f": {message}" if message else "")
    if isinstance(exc, u3.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    if isinstance(exc, u3.NewConnectionError):  # before ConnectTimeoutError: urllib3 derives it from that
        text = str(exc)
        return "connection refused" if "refused" in text.lower() else f"cannot connect: {text.split(': ', 1)[-1]}"
    if isinstance(exc, u3.ConnectTimeoutError):
        return f"no connection within {CONNECT_TIMEOUT:g} s"
    if isinstance(exc, (u3.ReadTimeoutError, TimeoutError)):
        return f"no answer within {REQUEST_TIMEOUT:g} s"
    if isinstance(exc, u3.SSLError):
        return f"TLS error: {_first_line(exc)}"
    return _first_line(exc)


def _fix(kube: ModuleType, exc: BaseException, kind: Kind, namespace: str | None, cause: str) -> str:
    status = getattr(exc, "status", None) if isinstance(exc, kube.client.ApiException) else None
    if cause.startswith("TLS error"):
        return "check the cluster's certificate-authority in the kubeconfig"
    if status == 403:
        scope = f"in namespace {namespace!r}" if namespace else "cluster-wide"
        group = kind.group or "core"
        narrower = "" if namespace else ", or scan only the namespaces it may read with --kube-scan-namespaces"
        return f"grant its user get and list on {kind.resource} (API group {group}) {scope}{narrower} (see {DOCS})"
    if status == 401:
        return "its credentials were refused: renew them (an expired token?)"
    if status == 404:
        return f"its API server does not serve {kind.path(namespace)} (Kubernetes older than 1.21?)"
    if status in (None, 0):
        return "make its API server reachable from this job"
    return "check its API server"


def _message(failures: Sequence[_Failure]) -> str:
    """One line per failure (a context whose every kind failed alike is one line), then the ways out."""
    lines = ["cannot read Kubernetes, so cleanup stops before removing anything:"]
    by_context: dict[str, list[_Failure]] = {}
    for failure in failures:
        by_context.setdefault(failure.context, []).append(failure)
    for context, items in by_context.items():
        alike = len({(f.cause, f.fix) for f in items}) == 1
        if len(items) == len(KINDS) and alike:
            items = [_Failure(context, None, items[0].namespace, items[0].cause, items[0].fix, items[0].server)]
        for failure in items:
            server = f" ({failure.server})" if failure.server else ""
            what = "every kind" if failure.kind is None else (
                f"{failure.kind.resource} ({failure.kind.name}, {failure.kind.group_version}, "
                f"{'namespace ' + repr(failure.namespace) if failure.namespace else 'all namespaces'})")
            lines.append(f"  context {context!r}{server}: {what}: {failure.cause}; {failure.fix}")
    lines.append(f"fix each context above, {ESCAPES}")
    return "\n".join(lines)
