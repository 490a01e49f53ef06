"""Address and image reference parsing: Docker Hub normalisation, ports, grammar."""

from __future__ import annotations

import pytest

from ci_env.errors import ConfigError
from ci_env.registry.reference import ImageRef, RepoAddress, parse_address, parse_image_ref

HUB_FORMS = ["foo/bar", "docker.io/foo/bar", "index.docker.io/foo/bar", "registry.hub.docker.com/foo/bar",
             "registry-1.docker.io/foo/bar", "Docker.IO/foo/bar"]


@pytest.mark.parametrize("text", HUB_FORMS)
def test_docker_hub_forms_normalise(text: str) -> None:
    address = parse_address(text)
    assert address == RepoAddress("docker.io", "foo/bar")
    assert str(address) == "docker.io/foo/bar"
    assert address.api_host() == "registry-1.docker.io"


def test_docker_hub_account_stays_an_account() -> None:
    assert parse_address("foo") == RepoAddress("docker.io", "foo")
    assert parse_address("index.docker.io/library") == RepoAddress("docker.io", "library")


def test_registry_with_port_and_child() -> None:
    address = parse_address("LocalHost:5000")
    assert address == RepoAddress("localhost:5000", "")
    assert address.is_registry_only
    assert str(address.child("a/b")) == "localhost:5000/a/b"
    assert address.api_host() == "localhost:5000"
    assert parse_address("[::1]:5000/x") == RepoAddress("[::1]:5000", "x")


def test_local_only_when_allowed() -> None:
    assert parse_address(":local", allow_local=True) is None
    with pytest.raises(ConfigError, match="only valid for the stages storage"):
        parse_address(":local")


def test_image_refs() -> None:
    digest = "sha256:" + "0123456789abcdef" * 4
    assert parse_image_ref("foo/bar:1.0") == ImageRef(RepoAddress("docker.io", "foo/bar"), "1.0", None)
    assert parse_image_ref("127.0.0.1:5000/a/b:x_y") == ImageRef(RepoAddress("127.0.0.1:5000", "a/b"), "x_y", None)
    ref = parse_image_ref(f"ghcr.io/o/p:t@{digest}")
    assert (ref.tag, ref.digest, str(ref)) == ("t", digest, f"ghcr.io/o/p:t@{digest}")
    assert parse_image_ref(f"ghcr.io/o/p@{digest}").tag is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ghcr.io/o/p", "neither a tag nor a digest"),
        ("localhost:5000", "no repository path"),
        ("ghcr.io/o/p:", "tag is empty"),
        ("ghcr.io/o/p:-x", "starts with '-'"),
        ("ghcr.io/o/p:a+b", "contains '+'"),
        ("ghcr.io/o/p@sha256:abc", "64 lower-case hex"),
        ("ghcr.io/o/p@sha256:" + "A" * 64, "64 lower-case hex"),
        ("ghcr.io/o/p@md5", "malformed"),
        ("ghcr.io/O/p:1", "upper-case"),
    ],
)
def test_bad_image_refs(text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected.replace("+", r"\+")):
        parse_image_ref(text)
