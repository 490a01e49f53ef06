"""`ci-env registry tags --json` through the vendor listings: ECR (moto's server), Docker Hub and Quay (recording
fakes of their documented APIs), run as a user runs it, with the endpoint override variables."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from collections.abc import Callable, Mapping
from datetime import timezone
from pathlib import Path
from typing import Any

import pytest

from tests.cli import run_ci_env
from tests.vendors.fakeapi import FakeApi
from tests.vendors.test_dockerhub import JWT, DockerHub
from tests.vendors.test_ecr import DUMMY, HOST, manifest
from tests.vendors.test_quay import Quay


def run_tags(tmp_path: Path, env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m ci_env registry tags ARGS`` with ``env`` added to the (cleaned) environment."""
    return run_ci_env("registry", "tags", *args, env={**os.environ, "DOCKER_CONFIG": str(tmp_path), **env},
                      timeout=60)


def listed(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


# --- ECR ---------------------------------------------------------------------------------------------------
@pytest.fixture
def ecr(moto_url: str, clean_env: None) -> Any:
    import boto3

    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"))
    client = boto3.client("ecr", region_name="eu-west-1", endpoint_url=moto_url,
                          aws_access_key_id="testing", aws_secret_access_key="testing-secret")
    client.create_repository(repositoryName="team/app")
    return client


def test_ecr_lists_tags_digests_and_push_times(ecr: Any, moto_url: str, tmp_path: Path) -> None:
    for tag in ("v1", "v2"):
        ecr.put_image(repositoryName="team/app", imageManifest=manifest("a"), imageTag=tag)
    ecr.put_image(repositoryName="team/app", imageManifest=manifest("b"), imageTag="v3")
    expected = []
    for image in ecr.describe_images(repositoryName="team/app")["imageDetails"]:
        pushed = image["imagePushedAt"].astimezone(timezone.utc).replace(microsecond=0)
        for tag in image["imageTags"]:
            expected.append({"tag": tag, "digest": image["imageDigest"],
                             "media_type": image.get("imageManifestMediaType"),
                             "created": pushed.isoformat().replace("+00:00", "Z")})
    assert len({row["digest"] for row in expected}) == 2
    rows = listed(run_tags(tmp_path, {"AWS_ENDPOINT_URL_ECR": moto_url, **DUMMY}, f"{HOST}/team/app", "--json"))
    assert rows == sorted(expected, key=lambda row: row["tag"])
    assert [row["tag"] for row in rows] == ["v1", "v2", "v3"]
    assert rows[0]["digest"] == rows[1]["digest"] != rows[2]["digest"]
    assert {row["media_type"] for row in rows} == {"application/vnd.docker.distribution.manifest.v2+json"}
    assert all(row["created"] for row in rows)


def test_ecr_chosen_by_variable_and_missing_repository_is_an_error(ecr: Any, moto_url: str, tmp_path: Path) -> None:
    env = {"AWS_ENDPOINT_URL_ECR": moto_url, "AWS_REGION": "eu-west-1", "WERF_REPO_IMPLEMENTATION": "ecr", **DUMMY}
    ecr.put_image(repositoryName="team/app", imageManifest=manifest("c"), imageTag="only")
    rows = listed(run_tags(tmp_path, env, "registry.example.com/team/app", "--json"))
    assert [row["tag"] for row in rows] == ["only"]
    missing = run_tags(tmp_path, env, "registry.example.com/team/nope", "--json")
    assert missing.returncode == 1 and missing.stdout == ""
    assert "team/nope does not exist" in missing.stderr and "Traceback" not in missing.stderr


def test_ecr_without_credentials_says_what_to_set(ecr: Any, moto_url: str, tmp_path: Path) -> None:
    env = {"AWS_ENDPOINT_URL_ECR": moto_url, "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
           "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_EC2_METADATA_DISABLED": "true", "HOME": str(tmp_path)}
    result = run_tags(tmp_path, env, f"{HOST}/team/app", "--json")
    assert result.returncode == 1 and result.stdout == ""
    assert "no AWS credentials found" in result.stderr and "ecr:DescribeImages" in result.stderr


# --- Docker Hub --------------------------------------------------------------------------------------------
@pytest.fixture
def hub(fake_api: Callable[[], FakeApi], clean_env: None) -> DockerHub:
    return DockerHub(fake_api())


def test_docker_hub_lists_anonymously_following_next(hub: DockerHub, tmp_path: Path) -> None:
    hub.repos["foo/app"] = {f"t{i:03}": f"sha256:{i % 7:064x}" for i in range(150)}
    hub.updated[("foo/app", "t042")] = "2024-05-01T12:30:00.123456Z"
    rows = listed(run_tags(tmp_path, {"WERF_DOCKER_HUB_API_URL": hub.api.url}, "docker.io/foo/app", "--json"))
    assert [row["tag"] for row in rows] == [f"t{i:03}" for i in range(150)]
    assert rows[42] == {"tag": "t042", "digest": f"sha256:{42 % 7:064x}",
                        "media_type": "application/vnd.oci.image.index.v1+json",
                        "created": "2024-05-01T12:30:00.123456Z"}
    assert hub.api.requests() == [
        ("GET", "/v2/repositories/foo/app/tags?page_size=100"),
        ("GET", "/v2/repositories/foo/app/tags?page=2&page_size=100"),
    ]
    assert all("Authorization" not in call.headers for call in hub.api.calls)


def test_docker_hub_push_time_is_tag_last_pushed_not_last_updated(hub: DockerHub, tmp_path: Path) -> None:
    hub.repos["foo/app"] = {"a": f"sha256:{1:064x}", "b": f"sha256:{2:064x}"}
    hub.updated[("foo/app", "a")] = "2025-06-01T00:00:00.000000Z"  # its metadata changed then; it was pushed before
    hub.pushed[("foo/app", "a")] = "2024-02-03T04:05:06.000000Z"
    hub.updated[("foo/app", "b")] = "2024-07-08T09:10:11.000000Z"  # no tag_last_pushed in the answer: last_updated
    rows = listed(run_tags(tmp_path, {"WERF_DOCKER_HUB_API_URL": hub.api.url}, "docker.io/foo/app", "--json"))
    assert {row["tag"]: row["created"] for row in rows} == {"a": "2024-02-03T04:05:06.000000Z",
                                                           "b": "2024-07-08T09:10:11.000000Z"}


def test_docker_hub_official_image_and_explicit_implementation(hub: DockerHub, tmp_path: Path) -> None:
    hub.repos["library/alpine"] = {"3.20": "sha256:" + "a" * 64}
    env = {"WERF_DOCKER_HUB_API_URL": hub.api.url}
    rows = listed(run_tags(tmp_path, env, "alpine", "--json", "--repo-implementation", "dockerhub"))
    assert [(row["tag"], row["digest"]) for row in rows] == [("3.20", "sha256:" + "a" * 64)]
    assert hub.api.requests() == [("GET", "/v2/repositories/library/alpine/tags?page_size=100")]


def test_docker_hub_private_repository_with_token_and_without(hub: DockerHub, tmp_path: Path) -> None:
    hub.private.add("foo/app")
    env = {"WERF_DOCKER_HUB_API_URL": hub.api.url}
    anonymous = run_tags(tmp_path, env, "docker.io/foo/app", "--json")
    assert anonymous.returncode == 1 and anonymous.stdout == ""
    assert "no such repository" in anonymous.stderr and "--repo-docker-hub-token" in anonymous.stderr
    rows = listed(run_tags(tmp_path, {**env, "WERF_REPO_DOCKER_HUB_TOKEN": JWT}, "docker.io/foo/app", "--json"))
    assert [row["tag"] for row in rows] == ["v1", "v2", "v3"]
    assert hub.api.calls[-1].headers["Authorization"] == f"Bearer {JWT}"


# --- Quay --------------------------------------------------------------------------------------------------
@pytest.fixture
def quay(fake_api: Callable[[], FakeApi], clean_env: None) -> Quay:
    return Quay(fake_api())


def test_quay_lists_public_repository_page_by_page(quay: Quay, tmp_path: Path) -> None:
    quay.public.add("acme/app")
    quay.tags["acme/app"] = {f"t{i:03}": f"sha256:{i % 5:064x}" for i in range(150)}
    quay.pushed[("acme/app", "t007")] = 1714566600  # 2024-05-01T12:30:00Z
    rows = listed(run_tags(tmp_path, {"WERF_QUAY_API_URL": quay.api.url}, "quay.io/acme/app", "--json"))
    assert [row["tag"] for row in rows] == [f"t{i:03}" for i in range(150)]
    assert rows[7] == {"tag": "t007", "digest": f"sha256:{7 % 5:064x}", "media_type": None,
                       "created": "2024-05-01T12:30:00Z"}
    assert quay.api.requests() == [
        ("GET", "/api/v1/repository/acme/app/tag/?onlyActiveTags=true&limit=100&page=1"),
        ("GET", "/api/v1/repository/acme/app/tag/?onlyActiveTags=true&limit=100&page=2"),
    ]
    assert all("Authorization" not in call.headers for call in quay.api.calls)


def test_quay_private_repository_needs_the_token(quay: Quay, tmp_path: Path) -> None:
    env = {"WERF_QUAY_API_URL": quay.api.url, "WERF_REPO_IMPLEMENTATION": "quay"}
    anonymous = run_tags(tmp_path, env, "quay.example.org/acme/app", "--json")
    assert anonymous.returncode == 1 and anonymous.stdout == ""
    assert "no such repository" in anonymous.stderr and "--repo-quay-token" in anonymous.stderr
    rows = listed(run_tags(tmp_path, env, "quay.example.org/acme/app", "--json",
                           "--repo-quay-token", "READ-TOKEN-SECRET"))
    assert [(row["tag"], row["digest"]) for row in rows] == [
        ("v1", "sha256:aaa"), ("v2", "sha256:aaa"), ("v3", "sha256:bbb")]
    assert quay.api.calls[-1].headers["Authorization"] == "Bearer READ-TOKEN-SECRET"
