"""Every row of the two tables in registries.md, plus detection by host and the auto-mode rules."""

from __future__ import annotations

import pytest

from ci_env.errors import ConfigError
from ci_env.registry.implementations import DELETE_ROUTES, IMPLEMENTATIONS, detect_implementation
from ci_env.registry.naming import resolve_images_repo
from ci_env.registry.reference import RepoAddress, parse_address

# (implementation, registry-or-account address, repository address, explicit implementation needed)
ADDRESSES = [
    ("ecr", "123456789012.dkr.ecr.eu-central-1.amazonaws.com", "123456789012.dkr.ecr.eu-central-1.amazonaws.com/app"),
    ("acr", "acme.azurecr.io", "acme.azurecr.io/app"),
    ("default", "127.0.0.1:5000", "127.0.0.1:5000/app"),
    ("dockerhub", "foo", "foo/project"),
    ("gcr", "gcr.io/acme", "gcr.io/acme/app"),
    ("gcr", "europe-docker.pkg.dev/acme/images", "europe-docker.pkg.dev/acme/images/app"),
    ("github", "docker.pkg.github.com/company/project", "docker.pkg.github.com/company/project/app"),
    ("github", "ghcr.io/company", "ghcr.io/company/app"),
    # GitLab keeps images under a project: the project path is where repositories are created
    ("gitlab", "registry.gitlab.com/group/project", "registry.gitlab.com/group/project/app"),
    ("harbor", "harbor.example.com/library", "harbor.example.com/library/app"),
    ("quay", "quay.io/company", "quay.io/company/app"),
    ("artifactory", "acme.jfrog.io", "acme.jfrog.io/docker"),
    ("nexus", "nexus.example.com:8082", "nexus.example.com:8082/app"),
]
IDS = [f"{impl}:{registry}" for impl, registry, _ in ADDRESSES]


def addr(text: str) -> RepoAddress:
    parsed = parse_address(text)
    assert parsed is not None
    return parsed


NOT_NESTED = {"dockerhub", "quay", "docker.pkg.github.com"}


def _resolve(address: str, impl: str, mode: str, images: list[str | None]) -> str:
    explicit = "nexus" if impl == "nexus" else None
    repo = resolve_images_repo(addr(address), {}, requested_mode=mode, implementation=explicit, image_names=images)
    assert repo.implementation.name == impl
    return repo.full_name(images[0], "tag")


# ---------------------------------------------------------------- table 1: supported operations

SUPPORTED = [
    ("ecr", "AWS ECR", True),
    ("acr", "Azure CR", True),
    ("default", "Default", False),
    ("dockerhub", "Docker Hub", True),
    ("gcr", "GCR", False),
    ("github", "GitHub Packages", True),
    ("gitlab", "GitLab Registry", False),
    ("harbor", "Harbor", False),
    ("quay", "Quay", False),
]


@pytest.mark.parametrize(("name", "title", "native"), SUPPORTED, ids=[s[0] for s in SUPPORTED])
def test_supported_operations_row(name: str, title: str, native: bool) -> None:
    impl = IMPLEMENTATIONS[name]
    assert impl.title == title
    assert impl.delete_route in DELETE_ROUTES  # cleanup: ok
    needs_extra = impl.credentials_required or bool(impl.credentials_note)
    # "ok (native API)" rows need credentials beyond the docker login; the others do not
    assert needs_extra is native
    if native:
        assert impl.delete_route in {"ecr-sdk", "acr", "dockerhub-api", "github-api"}


def test_github_legacy_registry_cleanup_is_graphql_private_only() -> None:
    legacy = detect_implementation(addr("docker.pkg.github.com/a/b"), {}).implementation
    assert legacy.delete_route == "github-graphql"
    assert "private repositories only" in legacy.cleanup
    ghcr = detect_implementation(addr("ghcr.io/a/b"), {}).implementation
    assert ghcr.delete_route == "github-api"


def test_only_ecr_needs_repositories_created_first() -> None:
    assert [i.name for i in IMPLEMENTATIONS.values() if i.repositories_precreated] == ["ecr"]


# ---------------------------------------------------------------- table 2: images repo x mode


@pytest.mark.parametrize(("impl", "registry", "repository"), ADDRESSES, ids=IDS)
def test_registry_with_multirepo_is_ok(impl: str, registry: str, repository: str) -> None:
    assert _resolve(registry, impl, "multirepo", ["frontend"]) == f"{addr(registry)}/frontend:tag"


@pytest.mark.parametrize(("impl", "registry", "repository"), ADDRESSES, ids=IDS)
def test_repository_with_monorepo_is_ok(impl: str, registry: str, repository: str) -> None:
    assert _resolve(repository, impl, "monorepo", ["frontend"]) == f"{addr(repository)}:frontend-tag"


@pytest.mark.parametrize(("impl", "registry", "repository"), ADDRESSES, ids=IDS)
def test_repository_with_multirepo_depends_on_nested_support(impl: str, registry: str, repository: str) -> None:
    host = addr(repository).host
    if impl in NOT_NESTED or host in NOT_NESTED:
        with pytest.raises(ConfigError, match=r"does not support nested repositories.*monorepo"):
            _resolve(repository, impl, "multirepo", ["frontend"])
    else:
        assert _resolve(repository, impl, "multirepo", ["frontend"]) == f"{addr(repository)}/frontend:tag"


@pytest.mark.parametrize(("impl", "registry", "repository"), ADDRESSES, ids=IDS)
def test_registry_with_monorepo_is_never_valid(impl: str, registry: str, repository: str) -> None:
    if impl == "gitlab":  # a GitLab project path is a repository; the instance alone holds no images
        registry, expected = "registry.gitlab.com", "too short for GitLab"
    else:
        expected = "not a repository: monorepo mode"
    with pytest.raises(ConfigError, match=expected):
        _resolve(registry, impl, "monorepo", ["frontend"])


@pytest.mark.parametrize(("impl", "registry", "repository"), ADDRESSES, ids=IDS)
def test_registry_with_nameless_image_is_never_valid(impl: str, registry: str, repository: str) -> None:
    if impl == "gitlab":
        registry, expected = "registry.gitlab.com", "too short for GitLab"
    else:
        expected = r"nameless image \(image: ~\).*give the image a name"
    with pytest.raises(ConfigError, match=expected):
        _resolve(registry, impl, "multirepo", ["frontend", None])


@pytest.mark.parametrize(("impl", "registry", "repository"), ADDRESSES, ids=IDS)
def test_nameless_image_in_a_repository_is_repo_colon_tag(impl: str, registry: str, repository: str) -> None:
    host = addr(repository).host
    modes = ["monorepo"] if impl in NOT_NESTED or host in NOT_NESTED else ["monorepo", "multirepo"]
    for mode in modes:
        assert _resolve(repository, impl, mode, [None]) == f"{addr(repository)}:tag"


# ---------------------------------------------------------------- auto mode


@pytest.mark.parametrize(("impl", "registry", "repository"), ADDRESSES, ids=IDS)
def test_auto_mode(impl: str, registry: str, repository: str) -> None:
    host = addr(repository).host
    registry_full = _resolve(registry, impl, "auto", ["frontend"])
    repository_full = _resolve(repository, impl, "auto", ["frontend"])
    assert registry_full == f"{addr(registry)}/frontend:tag"  # always multirepo on a registry/account
    if impl in NOT_NESTED or host in NOT_NESTED:
        assert repository_full == f"{addr(repository)}:frontend-tag"  # follows the address: monorepo
    else:
        assert repository_full == f"{addr(repository)}/frontend:tag"  # nested support: multirepo


# ---------------------------------------------------------------- detection by host

DETECTION = [
    ("123456789012.dkr.ecr.us-east-1.amazonaws.com/a", "ecr"),
    ("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com/a", "ecr"),
    ("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/a", "ecr"),
    ("12345.dkr.ecr.us-east-1.amazonaws.com/a", "default"),
    ("acme.azurecr.io/a", "acr"),
    ("foo", "dockerhub"),
    ("docker.io/foo/bar", "dockerhub"),
    ("index.docker.io/library", "dockerhub"),
    ("registry.hub.docker.com/foo", "dockerhub"),
    ("registry-1.docker.io/foo", "dockerhub"),
    ("gcr.io/p", "gcr"),
    ("eu.gcr.io/p", "gcr"),
    ("container.cloud.google.com/p", "gcr"),
    ("us-central1-docker.pkg.dev/p/r", "gcr"),
    ("ghcr.io/o", "github"),
    ("docker.pkg.github.com/o/p", "github"),
    ("registry.gitlab.com/g/p", "gitlab"),
    ("gitlab.com/g/p", "gitlab"),
    ("harbor.example.com/p", "harbor"),
    ("quay.io/ns", "quay"),
    ("quay.example.com/ns", "quay"),
    ("acme.jfrog.io/docker", "artifactory"),
    ("nexus.example.com/a", "default"),
    ("registry.example.com/a", "default"),
]


@pytest.mark.parametrize(("address", "expected"), DETECTION, ids=[d[0] for d in DETECTION])
def test_detection_by_host(address: str, expected: str) -> None:
    detected = detect_implementation(addr(address), {})
    assert detected.implementation.name == expected
    assert detected.reason


def test_self_hosted_gitlab_detected_under_ci_registry_in_gitlab_ci() -> None:
    address = addr("gitlab.example.com:5050/group/project")
    env = {"GITLAB_CI": "true", "CI_REGISTRY": "gitlab.example.com:5050"}
    detected = detect_implementation(address, env)
    assert detected.implementation.name == "gitlab"
    assert "$CI_REGISTRY" in detected.reason
    # outside GitLab CI the same host is just a registry
    assert detect_implementation(address, {"CI_REGISTRY": "gitlab.example.com:5050"}).implementation.name == "default"


def test_explicit_implementation_beats_host() -> None:
    source = "WERF_REPO_IMPLEMENTATION"
    detected = detect_implementation(addr("ghcr.io/o"), {}, "harbor", explicit_source=source)
    assert detected.implementation.name == "harbor"
    assert detected.reason == "set by WERF_REPO_IMPLEMENTATION"


def test_unknown_implementation_lists_valid_names() -> None:
    with pytest.raises(ConfigError) as info:
        detect_implementation(addr("x.io/a"), {}, "dockerhubb")
    assert "'dockerhubb'" in info.value.message
    for name in IMPLEMENTATIONS:
        assert name in info.value.message
