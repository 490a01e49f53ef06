"""Every vendor route with an index child and a signature: a version or image a kept tag reaches (platform,
nested child, signature) is never deleted, a removed image takes its own with it, and ``--delete-untagged``
removes only what nothing kept reaches.

GitHub Packages: ghcr.io played by the real registry and the packages API derived from it (every manifest is a
version; children and signatures are untagged versions, as ghcr.io lists them). ECR: moto's server.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ci_env.registry.client import RegistryClient
from ci_env.registry.graph import registry_graph
from ci_env.registry.reference import RepoAddress
from ci_env.registry.removal import remove_images, remove_untagged
from ci_env.registry.vendors.github import GitHubRemover
from tests.graphs.shapes import cosign_tag, push_cosign, push_index_of, push_nested
from tests.registry_client.images import pulls, push_image, push_index
from tests.services.registry import RegistryService
from tests.vendors.conftest import Ctx
from tests.vendors.fakeapi import FakeApi
from tests.vendors.images import tag_map
from tests.vendors.servers import TOKEN, GitHubPackages

_names = itertools.count()


@pytest.fixture
def gh(fake_api: Callable[[], FakeApi], registry_open: RegistryService, clean_env: None) -> GitHubPackages:
    return GitHubPackages(fake_api(), registry_open, "read:packages, delete:packages")


def _remover(gh: GitHubPackages, registry: RegistryService, tmp_path: Path) -> GitHubRemover:
    context = Ctx(env={"WERF_GITHUB_API_URL": gh.api.url}, credentials={"github-token": TOKEN},
                  docker_config=tmp_path)
    return GitHubRemover(context, client_factory=lambda host: RegistryClient(registry.host))


def test_github_untag_of_the_only_tag_on_a_nested_child_keeps_its_version(
    gh: GitHubPackages, registry_open: RegistryService, tmp_path: Path,
) -> None:
    path = f"acme/nested{next(_names)}"
    _outer, _inner, image = push_nested(gh.client, path, ["A"])
    body, info = gh.client.get_manifest(path, image.digest)
    gh.client.put_manifest(path, "B", body, info.media_type)
    remover = _remover(gh, registry_open, tmp_path)
    assert remover.untag(RepoAddress("ghcr.io", path), "B") == "removed"
    assert set(tag_map(gh.client, path)) == {"A"}
    assert pulls(gh.client, path, "A")


def test_github_removal_takes_children_and_signatures_and_keeps_the_kept_image_s(
    gh: GitHubPackages, registry_open: RegistryService, tmp_path: Path,
) -> None:
    path = f"acme/signed{next(_names)}"
    old = push_index(gh.client, path, ["old"])
    old_signature = push_cosign(gh.client, path, old.digest)
    kept = push_index(gh.client, path, ["keep"])
    kept_signature = push_cosign(gh.client, path, kept.digest)
    shared_child = push_index_of(gh.client, path, [kept.children[0], old.children[0]], ["mixed"])
    leftover = push_image(gh.client, path)  # untagged, nothing reaches it
    repo = RepoAddress("ghcr.io", path)
    remover = _remover(gh, registry_open, tmp_path)
    client = RegistryClient(registry_open.host)

    def graph_of(r: RepoAddress) -> Any:
        return registry_graph(client, r.path)

    result = remove_images([(repo, "old")], lambda _r: remover, graph_of)
    assert [o.status for o in result.summary.outcomes] == ["removed"]
    assert {a.accessory.digest: a.status for a in result.accessories} == {
        old_signature: "removed", old.children[1]: "removed"}
    holds = set(gh._revisions(path))
    assert old.digest not in holds and old_signature not in holds and old.children[1] not in holds
    assert old.children[0] in holds  # "mixed" still uses it
    assert pulls(gh.client, path, "keep") and pulls(gh.client, path, "mixed")
    assert cosign_tag(kept.digest, "sig") in tag_map(gh.client, path)

    untagged = remove_untagged([repo], lambda _r: remover, graph_of, result)
    assert untagged.warnings == () and not untagged.stopped
    assert [(u.digest, u.status) for u in untagged.outcomes] == [(leftover.digest, "removed")]
    holds = set(gh._revisions(path))
    assert leftover.digest not in holds
    assert {*kept.children, kept_signature, shared_child, old.children[0]} <= holds
    assert pulls(gh.client, path, "keep") and pulls(gh.client, path, "mixed")


# --- ECR (moto) ----------------------------------------------------------------------------------------------


def _ecr_manifest(layer: str) -> str:
    import json

    return json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 2,
                   "digest": "sha256:" + "c" * 64},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 3,
                    "digest": "sha256:" + layer * 64}],
    })


def test_ecr_never_removes_the_last_tag_of_a_protected_image_deletes_accessories_and_lists_untagged(
    moto_url: str, clean_env: None,
) -> None:
    import urllib.request

    import boto3

    from ci_env.registry.vendors.ecr import EcrRemover

    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"))
    ecr = boto3.client("ecr", region_name="eu-west-1", endpoint_url=moto_url,
                       aws_access_key_id="testing", aws_secret_access_key="testing-secret")
    ecr.create_repository(repositoryName="team/app")
    put = ecr.put_image
    child = put(repositoryName="team/app", imageManifest=_ecr_manifest("a"), imageTag="amd64")["image"]
    signature = put(repositoryName="team/app", imageManifest=_ecr_manifest("b"), imageTag="sha256-x.sig")["image"]
    untagged = put(repositoryName="team/app", imageManifest=_ecr_manifest("d"))["image"]
    put(repositoryName="team/app", imageManifest=_ecr_manifest("e"), imageTag="old")
    remover = EcrRemover(Ctx(env={"AWS_ENDPOINT_URL_ECR": moto_url, "AWS_ACCESS_KEY_ID": "testing",
                                  "AWS_SECRET_ACCESS_KEY": "testing-secret"}))
    repo = RepoAddress("123456789012.dkr.ecr.eu-west-1.amazonaws.com", "team/app")
    remover.protect(repo, frozenset({child["imageId"]["imageDigest"]}))
    outcome = remover.untag_many(repo, ["amd64", "old"])
    assert outcome["old"] == "removed"
    assert "last tag of an image a kept tag reaches" in str(outcome["amd64"])
    digests = {i["imageDigest"]: i.get("imageTags") or [] for i in ecr.describe_images(repositoryName="team/app")
               ["imageDetails"]}
    assert digests[child["imageId"]["imageDigest"]] == ["amd64"]
    assert list(remover.list_manifests(repo)[1]) == [untagged["imageId"]["imageDigest"]]
    deleted = remover.delete_manifests(repo, [signature["imageId"]["imageDigest"], "sha256:" + "f" * 64])
    assert list(deleted.values()) == ["removed", "absent"]
    remaining = {i["imageDigest"] for i in ecr.describe_images(repositoryName="team/app")["imageDetails"]}
    assert signature["imageId"]["imageDigest"] not in remaining and child["imageId"]["imageDigest"] in remaining
