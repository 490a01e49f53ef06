"""Naming rules (full names, image repositories) and the reverse mapping tag -> managed image."""

from __future__ import annotations

import pytest

from ci_env.contract import IMAGE_NAME_LABEL
from ci_env.errors import ConfigError
from ci_env.registry.implementations import IMPLEMENTATIONS, get_implementation
from ci_env.registry.naming import (
    full_name,
    image_repository,
    resolve_images_repo,
    resolve_mode,
    tag_owner,
    validate,
)
from ci_env.registry.reference import RepoAddress, parse_address


def addr(text: str) -> RepoAddress:
    parsed = parse_address(text)
    assert parsed is not None
    return parsed


# the seed's worked examples, one per vendor
WORKED = [
    ("foo", "docker.io/foo/frontend:tag", "docker.io/foo/backend:tag"),
    ("foo/project", "docker.io/foo/project:frontend-tag", "docker.io/foo/project:backend-tag"),
    ("docker.pkg.github.com/company/project", "docker.pkg.github.com/company/project/frontend:tag",
     "docker.pkg.github.com/company/project/backend:tag"),
    ("docker.pkg.github.com/company/project/app", "docker.pkg.github.com/company/project/app:frontend-tag",
     "docker.pkg.github.com/company/project/app:backend-tag"),
    ("quay.io/company", "quay.io/company/frontend:tag", "quay.io/company/backend:tag"),
    ("quay.io/company/app", "quay.io/company/app:frontend-tag", "quay.io/company/app:backend-tag"),
]


@pytest.mark.parametrize(("images_repo", "frontend", "backend"), WORKED, ids=[w[0] for w in WORKED])
def test_worked_examples(images_repo: str, frontend: str, backend: str) -> None:
    repo = resolve_images_repo(addr(images_repo), {}, image_names=["frontend", "backend"])
    assert repo.full_name("frontend", "tag") == frontend
    assert repo.full_name("backend", "tag") == backend


@pytest.mark.parametrize("name", list(IMPLEMENTATIONS))
def test_naming_rules_are_the_same_for_every_implementation(name: str) -> None:
    impl = get_implementation(name)
    address = addr("registry.example.com/a/b")
    assert full_name(address, "multirepo", "api", "v1") == "registry.example.com/a/b/api:v1"
    assert full_name(address, "monorepo", "api", "v1") == "registry.example.com/a/b:api-v1"
    assert full_name(address, "multirepo", None, "v1") == "registry.example.com/a/b:v1"
    assert full_name(address, "monorepo", None, "v1") == "registry.example.com/a/b:v1"
    assert image_repository(address, "multirepo", "api") == RepoAddress("registry.example.com", "a/b/api")
    assert image_repository(address, "monorepo", "api") == address
    assert resolve_mode(address, impl, "monorepo") == "monorepo"
    assert resolve_mode(address, impl, "multirepo") == "multirepo"


def test_ghcr_supports_nested_packages_all_three_combinations() -> None:
    github = get_implementation("github")
    assert resolve_mode(addr("ghcr.io/acme"), github) == "multirepo"
    assert resolve_mode(addr("ghcr.io/acme/app"), github) == "multirepo"
    validate(addr("ghcr.io/acme"), github, "multirepo", ["api"])
    validate(addr("ghcr.io/acme/app"), github, "monorepo", ["api", None])
    validate(addr("ghcr.io/acme/app/sub"), github, "multirepo", ["api"])


def test_legacy_github_path_is_owner_project_or_package() -> None:
    github = get_implementation("github")
    for bad in ("docker.pkg.github.com/owner", "docker.pkg.github.com/o/p/pkg/extra"):
        with pytest.raises(ConfigError, match=r"docker\.pkg\.github\.com/OWNER/PROJECT"):
            validate(addr(bad), github, "auto", ["api"])


def test_monorepo_tag_longer_than_128_is_rejected() -> None:
    with pytest.raises(ConfigError, match="at most 128"):
        full_name(addr("x.io/a"), "monorepo", "a" * 60, "b" * 70)


def test_invalid_tag_is_rejected_in_full_name() -> None:
    with pytest.raises(ConfigError, match="starts with '-'"):
        full_name(addr("x.io/a"), "multirepo", "api", "-bad")


# ---------------------------------------------------------------- tag_owner

IMAGES = ["api", "api-v2", "web"]


def test_multirepo_tag_belongs_to_the_image_of_its_repository() -> None:
    base = addr("x.io/team")
    owner = tag_owner(base, "multirepo", addr("x.io/team/api-v2"), "abc", IMAGES)
    assert (owner.status, owner.image, owner.image_tag) == ("owned", "api-v2", "abc")
    assert tag_owner(base, "multirepo", addr("x.io/team/other"), "abc", IMAGES).status == "unmanaged"


def test_monorepo_unique_prefix_is_owned() -> None:
    base = addr("x.io/team/app")
    owner = tag_owner(base, "monorepo", base, "web-123", IMAGES)
    assert (owner.status, owner.image, owner.image_tag) == ("owned", "web", "123")
    owner = tag_owner(base, "monorepo", base, "api-123", IMAGES)
    assert (owner.status, owner.image, owner.image_tag) == ("owned", "api", "123")


def test_monorepo_ambiguous_prefix_is_never_assigned_silently() -> None:
    base = addr("x.io/team/app")
    owner = tag_owner(base, "monorepo", base, "api-v2-123", IMAGES)
    assert owner.status == "ambiguous"
    assert owner.image is None and not owner.owned
    assert set(owner.candidates) == {"api", "api-v2"}
    assert "api, api-v2" in owner.reason


def test_monorepo_ambiguity_decided_by_label() -> None:
    base = addr("x.io/team/app")
    owner = tag_owner(base, "monorepo", base, "api-v2-123", IMAGES, {IMAGE_NAME_LABEL: "api-v2"})
    assert (owner.status, owner.image, owner.image_tag) == ("owned", "api-v2", "123")
    owner = tag_owner(base, "monorepo", base, "api-v2-123", IMAGES, {IMAGE_NAME_LABEL: "api"})
    assert (owner.status, owner.image, owner.image_tag) == ("owned", "api", "v2-123")


def test_label_contradicting_structure_is_not_assigned() -> None:
    base = addr("x.io/team/app")
    assert tag_owner(base, "monorepo", base, "api-123", IMAGES, {IMAGE_NAME_LABEL: "web"}).status == "ambiguous"
    assert tag_owner(base, "monorepo", base, "api-123", IMAGES, {IMAGE_NAME_LABEL: "gone"}).status == "unmanaged"


def test_nameless_image_in_monorepo_competes_with_named_prefixes() -> None:
    base = addr("x.io/team/app")
    images: list[str | None] = ["web", None]
    assert tag_owner(base, "monorepo", base, "web-1", images).status == "ambiguous"
    owner = tag_owner(base, "monorepo", base, "web-1", images, {IMAGE_NAME_LABEL: ""})
    assert (owner.status, owner.image, owner.image_tag) == ("owned", None, "web-1")
    owner = tag_owner(base, "monorepo", base, "1.0", images)
    assert (owner.status, owner.image) == ("owned", None)


def test_tag_in_foreign_repository_is_unmanaged() -> None:
    base = addr("x.io/team/app")
    assert tag_owner(base, "monorepo", addr("x.io/team/other"), "api-1", IMAGES).status == "unmanaged"
    assert tag_owner(base, "monorepo", base, "latest", IMAGES).status == "unmanaged"


def test_an_images_repo_names_each_managed_repository_once_and_owns_tags_as_tag_owner() -> None:
    multi = resolve_images_repo(addr("x.io/team"), {}, requested_mode="multirepo", image_names=IMAGES).naming(IMAGES)
    assert multi.repositories == (addr("x.io/team/api"), addr("x.io/team/api-v2"), addr("x.io/team/web"))
    assert multi.owner(addr("x.io/team/web"), "abc") == tag_owner(addr("x.io/team"), "multirepo",
                                                                    addr("x.io/team/web"), "abc", IMAGES)
    mono = resolve_images_repo(addr("x.io/team/app"), {}, requested_mode="monorepo",
                               image_names=[*IMAGES, None]).naming([*IMAGES, None])
    assert mono.repositories == (addr("x.io/team/app"),)
    assert mono.owner(addr("x.io/team/app"), "web-1").status == "ambiguous"  # web's "1" or the nameless "web-1"
