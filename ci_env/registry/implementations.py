"""The one table of registry implementations: host patterns, capabilities, delete route, credentials.

Everything that varies by registry implementation lives in :data:`IMPLEMENTATIONS`; nothing else in
the package branches on a vendor's name. Where capabilities differ between hosts of one vendor (GitHub's
``ghcr.io`` versus the legacy ``docker.pkg.github.com``; GCR's ``gcr.io`` versus Artifact Registry's
``*-docker.pkg.dev``), the row carries :class:`HostRule` overrides and :meth:`Implementation.for_address`
returns the row specialised for an address. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ci_env.errors import ConfigError
from ci_env.registry.reference import RepoAddress, canonical_registry

#: How cleanup removes one tag; the untag dispatcher maps each route to a remover.
DELETE_ROUTES = frozenset(
    {
        "oci-tag-delete",  # DELETE /v2/NAME/manifests/TAG removes just that tag
        "placeholder",  # Registry API: move the tag to a unique placeholder, delete the placeholder by digest
        "dockerhub-api",
        "github-api",
        "github-graphql",
        "gitlab",
        "harbor-api",
        "quay-api",
        "ecr-sdk",
        "acr",
    }
)

#: Credential kinds cleanup may need beyond the Docker config (see ci_env.options for flags and variables).
CREDENTIAL_KINDS = (
    "docker-hub-token",
    "docker-hub-username",
    "docker-hub-password",
    "github-token",
    "gitlab-token",
    "harbor-username",
    "harbor-password",
    "quay-token",
)


@dataclass(frozen=True)
class HostRule:
    """Capabilities that differ for some hosts of one implementation; ``None`` keeps the row's value."""

    pattern: str  #: regular expression, full match on the lower-case host without port
    label: str  #: what the variant is called in messages, e.g. "docker.pkg.github.com (legacy)"
    nested_repositories: bool | None = None
    account_depth: int | None = None
    min_depth: int | None = None
    max_depth: int | None = None
    delete_route: str | None = None
    cleanup: str | None = None
    notes: str | None = None
    address_help: str | None = None


@dataclass(frozen=True)
class Implementation:
    """One registry implementation and everything the package needs to know about it.

    Address shape: ``account_depth`` path components name an account / namespace / project, so an
    address with at most that many components is a *registry* address (images go in repositories
    below it), a longer one is a *repository*. ``min_depth`` / ``max_depth`` bound the path length
    the implementation accepts (``max_depth`` None: unbounded).
    """

    name: str
    title: str
    nested_repositories: bool
    repositories_precreated: bool
    delete_route: str
    #: credential kinds cleanup reads (any of ``credential_sets``), empty when none
    extra_credentials: tuple[str, ...] = ()
    #: alternatives: any one complete set is enough, e.g. token, or username + password
    credential_sets: tuple[tuple[str, ...], ...] = ()
    #: True when cleanup cannot delete without one of ``credential_sets``
    credentials_required: bool = False
    #: credentials from outside ci-env's options (AWS chain, az session), shown as text
    credentials_note: str = ""
    hosts: tuple[str, ...] = ()  #: detection patterns, full match on the lower-case host without port
    host_examples: tuple[str, ...] = ()  #: hosts as shown in help and README
    account_depth: int = 0
    min_depth: int = 0
    max_depth: int | None = None
    cleanup: str = ""  #: how cleanup removes a tag, for humans
    notes: str = ""
    address_help: str = ""  #: what a valid address looks like, used in error messages
    host_rules: tuple[HostRule, ...] = ()
    variant: str = ""  #: label of the host rule applied by for_address, "" when none

    def for_address(self, address: RepoAddress) -> Implementation:
        """This implementation specialised for ``address``'s host (host rules applied); idempotent."""
        if self.variant:
            return self
        host = address.host
        for rule in self.host_rules:
            if re.fullmatch(rule.pattern, host):
                changes = {
                    f.name: getattr(rule, f.name)
                    for f in dataclasses.fields(rule)
                    if f.name not in ("pattern", "label") and getattr(rule, f.name) is not None
                }
                return dataclasses.replace(self, variant=rule.label, **changes)
        return self

    def matches_host(self, host: str) -> bool:
        """True when ``host`` (lower-case, without port) matches one of the detection patterns."""
        return any(re.fullmatch(pattern, host) for pattern in self.hosts)

    @property
    def display(self) -> str:
        """Title plus the host variant when one applies, e.g. "GitHub Packages (ghcr.io)"."""
        return f"{self.title} ({self.variant})" if self.variant else self.title


_DOCKER_HUB_SETS = (("docker-hub-token",), ("docker-hub-username", "docker-hub-password"))

#: THE table. Order matters only for detection (first host match wins; "default" matches nothing).
IMPLEMENTATIONS: dict[str, Implementation] = {
    impl.name: impl
    for impl in (
        Implementation(
            name="default",
            title="Default",
            nested_repositories=True,
            repositories_precreated=False,
            delete_route="placeholder",
            cleanup="Registry API: the tag is moved to a unique placeholder manifest, which is deleted by digest; "
            "other tags on the same image stay",
            address_help="HOST[:PORT] or HOST[:PORT]/REPOSITORY",
        ),
        Implementation(
            name="ecr",
            title="AWS ECR",
            nested_repositories=True,
            repositories_precreated=True,
            delete_route="ecr-sdk",
            credentials_note="the AWS credential chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, "
            "web identity or instance role)",
            hosts=(r"\d{12}\.dkr\.ecr(-fips)?\.[a-z0-9-]+\.amazonaws\.com(\.cn)?",),
            host_examples=("ACCOUNT.dkr.ecr.REGION.amazonaws.com",),
            cleanup="AWS SDK batch_delete_image by tag: removes only that tag",
            notes="repositories must be created before the first push (console, CLI or IaC)",
            address_help="ACCOUNT.dkr.ecr.REGION.amazonaws.com[/REPOSITORY]",
        ),
        Implementation(
            name="acr",
            title="Azure CR",
            nested_repositories=True,
            repositories_precreated=False,
            delete_route="acr",
            credentials_note="an Azure CLI session (az login; role Owner, Contributor or AcrDelete) or a service "
            "principal (AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_TENANT_ID)",
            hosts=(r"[a-z0-9-]+\.azurecr\.(io|cn|us)",),
            host_examples=("NAME.azurecr.io",),
            cleanup="Azure untag (az acr repository untag, or the ACR data plane): removes only that tag",
            address_help="NAME.azurecr.io[/REPOSITORY]",
        ),
        Implementation(
            name="dockerhub",
            title="Docker Hub",
            nested_repositories=False,
            repositories_precreated=False,
            delete_route="dockerhub-api",
            extra_credentials=("docker-hub-token", "docker-hub-username", "docker-hub-password"),
            credential_sets=_DOCKER_HUB_SETS,
            credentials_required=True,
            hosts=(r"docker\.io",),
            host_examples=("docker.io", "index.docker.io", "registry.hub.docker.com"),
            account_depth=1,
            min_depth=1,
            max_depth=2,
            cleanup="Docker Hub API: DELETE .../repositories/NS/REPO/tags/TAG removes only that tag",
            notes="a personal access token needs the Delete scope",
            address_help="ACCOUNT or ACCOUNT/REPOSITORY",
        ),
        Implementation(
            name="gcr",
            title="GCR",
            nested_repositories=True,
            repositories_precreated=False,
            delete_route="oci-tag-delete",
            hosts=(
                r"gcr\.io",
                r"[a-z0-9-]+\.gcr\.io",
                r"container\.cloud\.google\.com",
                r"[a-z0-9-]+-docker\.pkg\.dev",
            ),
            host_examples=("gcr.io", "eu.gcr.io", "REGION-docker.pkg.dev"),
            account_depth=1,
            min_depth=1,
            cleanup="Registry API tag delete (DELETE /v2/NAME/manifests/TAG): removes only that tag",
            address_help="gcr.io/PROJECT[/REPOSITORY]",
            host_rules=(
                HostRule(
                    pattern=r"[a-z0-9-]+-docker\.pkg\.dev",
                    label="Artifact Registry",
                    account_depth=2,
                    min_depth=2,
                    address_help="REGION-docker.pkg.dev/PROJECT/REPOSITORY[/IMAGE]",
                ),
            ),
        ),
        Implementation(
            name="github",
            title="GitHub Packages",
            nested_repositories=True,
            repositories_precreated=False,
            delete_route="github-api",
            extra_credentials=("github-token",),
            credential_sets=(("github-token",),),
            credentials_required=True,
            hosts=(r"ghcr\.io", r"docker\.pkg\.github\.com"),
            host_examples=("ghcr.io", "docker.pkg.github.com"),
            account_depth=1,
            min_depth=1,
            cleanup="GitHub packages REST API: deletes the package version (the tag is first detached when the "
            "version has other tags)",
            notes="the token needs read:packages and delete:packages",
            address_help="ghcr.io/OWNER[/PACKAGE...]",
            host_rules=(
                HostRule(
                    pattern=r"ghcr\.io",
                    label="ghcr.io",
                ),
                HostRule(
                    pattern=r"docker\.pkg\.github\.com",
                    label="docker.pkg.github.com, legacy",
                    nested_repositories=False,
                    account_depth=2,
                    min_depth=2,
                    max_depth=3,
                    delete_route="github-graphql",
                    address_help="docker.pkg.github.com/OWNER/PROJECT or docker.pkg.github.com/OWNER/PROJECT/PACKAGE",
                    cleanup="GitHub GraphQL deletePackageVersion (private repositories only)",
                    notes="cleanup works in private repositories only; the token needs read:packages, "
                    "write:packages, delete:packages and repo",
                ),
            ),
        ),
        Implementation(
            name="gitlab",
            title="GitLab Registry",
            nested_repositories=True,
            repositories_precreated=False,
            delete_route="gitlab",
            extra_credentials=("gitlab-token",),
            credential_sets=(("gitlab-token",),),
            credentials_required=False,
            hosts=(r"registry\.gitlab\.com", r"gitlab\.com"),
            host_examples=("registry.gitlab.com", "$CI_REGISTRY in GitLab CI"),
            min_depth=2,
            cleanup="Registry tag delete (DELETE /v2/NAME/tags/reference/TAG) with a delete-scoped token, "
            "else the GitLab projects API with the GitLab token",
            notes="the GitLab token is optional: the job's registry login is used first",
            address_help="REGISTRY/GROUP/PROJECT[/IMAGE]",
        ),
        Implementation(
            name="harbor",
            title="Harbor",
            nested_repositories=True,
            repositories_precreated=False,
            delete_route="harbor-api",
            extra_credentials=("harbor-username", "harbor-password"),
            credential_sets=(("harbor-username", "harbor-password"),),
            credentials_required=False,
            hosts=(r"harbor\..+",),
            host_examples=("harbor.*",),
            account_depth=1,
            min_depth=1,
            cleanup="Harbor API v2.0: DELETE .../artifacts/REF/tags/TAG removes only that tag",
            notes="Harbor username/password are optional: the job's registry login is used when absent",
            address_help="HOST/PROJECT[/REPOSITORY]",
        ),
        Implementation(
            name="quay",
            title="Quay",
            nested_repositories=False,
            repositories_precreated=False,
            delete_route="quay-api",
            extra_credentials=("quay-token",),
            credential_sets=(("quay-token",),),
            credentials_required=False,
            hosts=(r"quay\.io", r"quay\..+\.com"),
            host_examples=("quay.io", "quay.*.com"),
            account_depth=1,
            min_depth=1,
            max_depth=2,
            cleanup="Quay API: DELETE /api/v1/repository/NS/REPO/tag/TAG removes only that tag",
            notes="the Quay token is optional: the Registry API tag delete is used when absent",
            address_help="quay.io/NAMESPACE or quay.io/NAMESPACE/REPOSITORY",
        ),
        Implementation(
            name="artifactory",
            title="JFrog Artifactory / Container Registry",
            nested_repositories=True,
            repositories_precreated=False,
            delete_route="placeholder",
            hosts=(r"[a-z0-9-]+\.jfrog\.io",),
            host_examples=("*.jfrog.io",),
            cleanup="Registry API: the tag is moved to a unique placeholder manifest, which is deleted by digest",
            address_help="HOST/REPOSITORY-KEY[/IMAGE]",
        ),
        Implementation(
            name="nexus",
            title="Sonatype Nexus",
            nested_repositories=True,
            repositories_precreated=False,
            delete_route="placeholder",
            cleanup="Registry API: the tag is moved to a unique placeholder manifest, which is deleted by digest",
            notes="never detected by host: select it with --repo-implementation nexus",
            address_help="HOST[:PORT][/REPOSITORY]",
        ),
    )
}


@dataclass(frozen=True)
class Detected:
    """An implementation chosen for an address, specialised for its host, and why it was chosen."""

    implementation: Implementation
    reason: str


def get_implementation(name: str) -> Implementation:
    """The row for ``name`` (case-insensitive); ConfigError listing the valid names when unknown."""
    key = name.strip().lower()
    try:
        return IMPLEMENTATIONS[key]
    except KeyError:
        raise ConfigError(
            f"unknown registry implementation {name!r}: use one of {', '.join(IMPLEMENTATIONS)}"
        ) from None


def detect_implementation(
    address: RepoAddress,
    env: Mapping[str, str],
    explicit: str | None = None,
    *,
    explicit_source: str = "--repo-implementation",
    ci_registry: str | None = None,
) -> Detected:
    """Choose the implementation for ``address``: explicit name > GitLab CI's ``$CI_REGISTRY`` > host pattern > default.

    ``explicit`` is the already-resolved flag/variable value and ``explicit_source`` names where it came
    from (for the reason text). ``ci_registry`` is the GitLab CI registry when the caller knows the job is
    GitLab's (setup's ``ci-env gitlab``); else ``$CI_REGISTRY`` when ``$GITLAB_CI`` is ``true``. The result is
    specialised for the address's host.
    """
    if explicit:
        impl = get_implementation(explicit)
        return Detected(impl.for_address(address), f"set by {explicit_source}")
    if not ci_registry and env.get("GITLAB_CI") == "true":
        ci_registry = env.get("CI_REGISTRY", "").strip()
    if ci_registry:
        try:
            gitlab_registry = canonical_registry(ci_registry)
        except ConfigError:
            gitlab_registry = ""
        if gitlab_registry == address.registry:
            impl = IMPLEMENTATIONS["gitlab"]
            return Detected(impl.for_address(address), f"GitLab CI: the address is under $CI_REGISTRY ({ci_registry})")
    host = address.host
    for impl in IMPLEMENTATIONS.values():
        if impl.matches_host(host):
            return Detected(impl.for_address(address), f"host {host} matches {impl.name}")
    return Detected(IMPLEMENTATIONS["default"], f"host {host} matches no known vendor")
