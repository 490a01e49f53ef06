"""Namespace listings: how each registry implementation lists the repositories under a namespace through its own
API (a GitLab group's or project's registry repositories, a GitHub owner's container packages, a Harbor project,
ECR repositories by prefix, a Docker Hub or Quay namespace), the one table saying which.

``namespace_lister_for(implementation, context)`` builds the lister for the implementation's ``delete_route``
(each lives next to its remover in ``ci_env.registry.vendors``, imported lazily), or returns None: the Registry
API's catalog (``GET /v2/_catalog``) lists the registry, as on a CNCF registry, ACR, Artifactory or Nexus.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, cast

from ci_env.registry.routes import RoutedImplementation, build

if TYPE_CHECKING:
    from ci_env.registry.untag import RemoverContext


@dataclass(frozen=True)
class NamespaceRoute:
    """How one implementation lists a namespace: ``target`` ("module:Class", built as ``Class(context)``), what
    its namespace is (``unit``, for messages), how many leading path segments name one (``depth``: ``acme/team``
    lists GitHub owner ``acme``; None: the whole namespace given, a GitLab subgroup or an ECR prefix), and whether
    it lists every repository of the registry when no namespace is given (``whole_registry``)."""

    target: str
    unit: str
    depth: int | None = None
    whole_registry: bool = False


#: delete_route -> how its implementation lists a namespace; an implementation not here lists the catalog.
NAMESPACE_LISTERS: dict[str, NamespaceRoute] = {
    "gitlab": NamespaceRoute("ci_env.registry.vendors.gitlab:GitLabNamespaces", "a GitLab group or project"),
    "github-api": NamespaceRoute("ci_env.registry.vendors.github:GitHubNamespaces",
                                 "a GitHub organization or user", depth=1),
    "harbor-api": NamespaceRoute("ci_env.registry.vendors.harbor:HarborNamespaces", "a Harbor project", depth=1),
    "ecr-sdk": NamespaceRoute("ci_env.registry.vendors.ecr:EcrNamespaces", "an ECR repository prefix",
                              whole_registry=True),
    "dockerhub-api": NamespaceRoute("ci_env.registry.vendors.dockerhub:DockerHubNamespaces",
                                    "a Docker Hub namespace", depth=1),
    "quay-api": NamespaceRoute("ci_env.registry.vendors.quay:QuayNamespaces", "a Quay namespace", depth=1),
}


class NamespaceLister(Protocol):
    """Lists the repositories under a namespace of one implementation's registries through its own API."""

    def list_namespace(self, registry: str, namespace: str) -> list[str]:
        """The path of every repository under ``namespace`` of ``registry`` (``host[:port]``), each once; [] for
        an empty namespace; RegistryError naming the namespace when it does not exist, AuthError when refused."""


@dataclass(frozen=True)
class Namespaces:
    """A lister built for one implementation and its row of :data:`NAMESPACE_LISTERS`."""

    route: NamespaceRoute
    lister: NamespaceLister

    def listed(self, namespace: str) -> str:
        """What is listed for ``namespace``: its first ``depth`` segments (the account), else all of it."""
        parts = [part for part in namespace.split("/") if part]
        return "/".join(parts if self.route.depth is None else parts[: self.route.depth])


def namespace_lister_for(implementation: RoutedImplementation, context: RemoverContext) -> Namespaces | None:
    """The namespace lister of ``implementation`` built with ``context``, or None: list the Registry API's catalog.
    RegistryError when its module cannot be imported (an SDK missing)."""
    route = NAMESPACE_LISTERS.get(implementation.delete_route)
    if route is None:
        return None
    return Namespaces(route, cast(NamespaceLister, build(route.target, context, f"listing {route.unit}")))


def glob_namespace(glob: str) -> str:
    """The namespace holding every repository ``glob`` can match: its leading segments before the first one with
    a wildcard, and never its last segment (``team/*`` -> ``team``, ``team/app-?/x`` -> ``team``, ``team/sub/**``
    -> ``team/sub``); "" when its first segment has a wildcard (``*/app``)."""
    fixed: list[str] = []
    for segment in glob.split("/")[:-1]:
        if any(char in segment for char in "*?["):
            break
        fixed.append(segment)
    return "/".join(fixed)
