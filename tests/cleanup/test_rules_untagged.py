"""`ci-env cleanup --rules` and untagged manifests, where the vendor lists them: GitHub's untagged package versions
(the real registry plays ghcr.io, versions derived from it) and ECR's untagged images (moto). An `untagged:` policy
removes the untagged manifests nothing kept references, by digest, each with its reason in the report; the platform
manifests of a kept index and the signature of a kept image, untagged on both, stay; so do those a tag pushed or
moved between the plan and the untagged removal reaches, and those of a tag the vendor's listing omits."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import jsonschema

from ci_env.registry.client import RegistryClient
from tests.cleanup.test_cleanup_rules import SCHEMA, ago
from tests.cleanup.vendors import AwsFront, EcrRegistryApi, RegistryRelay, ecr_manifest, registry_error
from tests.cli import environ_without, run_ci_env
from tests.graphs.shapes import push_artifact, push_index_of
from tests.registry_client.images import push_image
from tests.services.registry import RegistryService
from tests.vendors.fakeapi import FakeApi
from tests.vendors.servers import TOKEN as GITHUB_TOKEN
from tests.vendors.servers import GitHubPackages

AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret", "AWS_REGION": "eu-west-1"}
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
SIGNATURE = "application/vnd.dev.cosign.artifact.sig.v1+json"
EMPTY = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**environ_without(), "DOCKER_CONFIG": str(tmp_path / "none"), "XDG_STATE_HOME": str(tmp_path / "state"),
            "KUBECONFIG": str(tmp_path / "none"), **extra}


def test_github_untagged_versions_follow_the_policy_and_kept_images_keep_theirs(
        registry_open: RegistryService, fake_api: Callable[[], FakeApi], clean_env: None, tmp_path: Path) -> None:
    packages = GitHubPackages(fake_api(), registry_open, "read:packages, delete:packages")
    client = RegistryClient(registry_open.host, docker_config=Path("/nonexistent"))
    path = f"acme/untagged{uuid.uuid4().hex[:8]}"
    # kept: an index whose platform manifests are untagged versions, and an image with an OCI 1.1 signature that
    # names it as subject (untagged, no referrers tag: only reading the signature tells whose it is)
    platforms = [push_image(client, path, created=ago(300)).digest for _ in range(2)]
    push_index_of(client, path, platforms, ["multi"])
    app = push_image(client, path, ["app"], created=ago(300)).digest
    signature = push_artifact(client, path, app, "application/vnd.dev.cosign.artifact.sig.v1+json", fallback=False)
    # untagged and referenced by nothing kept: an old image (with its own signature), an old index and its platforms
    # (the index's age decides them), and a recent image
    orphan = push_image(client, path, created=ago(1)).digest
    orphan_signature = push_artifact(client, path, orphan, "application/vnd.dev.cosign.artifact.sig.v1+json",
                                     fallback=False)
    old_platforms = [push_image(client, path, created=ago(1)).digest for _ in range(2)]
    old_index = push_index_of(client, path, old_platforms)
    recent = push_image(client, path, created=ago(300)).digest
    for digest in (*platforms, app, signature):
        packages.pushed[digest] = ago(300)
    for digest in (orphan, orphan_signature, old_index, *old_platforms):
        packages.pushed[digest] = ago(30)  # the image configs say 1 day: the push time must decide
    packages.pushed[recent] = ago(2)  # its config says 300 days
    args = ["cleanup", "--registry", registry_open.host, "--repository", path, "--rule", "keep=all",
            "--untagged", "older-than=7d", "--images-repo-implementation", "github",
            "--repo-github-token", GITHUB_TOKEN]
    env = _env(tmp_path, WERF_GITHUB_API_URL=packages.api.url)
    before = set(packages._revisions(path))

    dry = tmp_path / "dry.json"
    done = run_ci_env(*args, "--dry-run", "--report", str(dry), env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert set(packages._revisions(path)) == before
    assert not [c for c in packages.api.calls if c.method == "DELETE"]
    removed = {orphan, old_index, orphan_signature, *old_platforms}
    document = json.loads(dry.read_text())
    jsonschema.validate(document, SCHEMA)
    listed = {u["digest"]: u for u in document["untagged"]}
    assert set(listed) == removed
    assert {u["outcome"] for u in listed.values()} == {"would-remove"}
    assert listed[orphan]["reason"].startswith("untagged, nothing references it: untagged: remove older than 7d")
    assert "by the registry's push time" in listed[orphan]["reason"]
    assert listed[old_platforms[0]]["reason"] == f"goes with removed {old_index}: no kept image references it"
    assert listed[orphan_signature]["reason"] == f"goes with removed {orphan}: no kept image references it"
    assert orphan[:19] in done.stdout
    assert "5 untagged manifests to remove" in done.stderr

    packages.api.calls.clear()
    report = tmp_path / "report.json"
    done = run_ci_env(*args, "--report", str(report), env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert set(packages._revisions(path)) == before - removed
    document = json.loads(report.read_text())
    jsonschema.validate(document, SCHEMA)
    assert {u["digest"]: u["outcome"] for u in document["untagged"]} == dict.fromkeys(removed, "removed")
    deleted = [c.path.rsplit("/", 1)[1] for c in packages.api.calls if c.method == "DELETE"]
    assert sorted(deleted) == sorted(str(packages.ids[d]) for d in removed)
    assert deleted.index(str(packages.ids[old_index])) < min(deleted.index(str(packages.ids[d])) for d in old_platforms)
    for digest in (*platforms, app, signature, recent):
        assert client.find_manifest(path, digest) is not None
    assert GITHUB_TOKEN not in done.stderr + done.stdout + report.read_text()


def test_ecr_untagged_images_are_removed_by_digest_but_a_kept_index_keeps_its_platforms(
        registry_open: RegistryService, fake_api: Callable[[], FakeApi], moto_url: str, clean_env: None,
        tmp_path: Path) -> None:
    ecr = boto3.client("ecr", region_name="eu-west-1", endpoint_url=moto_url, aws_access_key_id="testing",
                       aws_secret_access_key="testing-secret")
    shim = EcrRegistryApi(fake_api(), ecr)
    path = f"ecr{uuid.uuid4().hex[:8]}/app"
    ecr.create_repository(repositoryName=path)

    def put(manifest: str, media: str = DOCKER_MANIFEST, tag: str | None = None) -> str:
        digest = "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()  # as ECR computes it (moto: when told)
        ecr.put_image(repositoryName=path, imageManifest=manifest, imageManifestMediaType=media, imageDigest=digest,
                      **({"imageTag": tag} if tag else {}))
        return digest

    platforms = [put(ecr_manifest(uuid.uuid4().hex)) for _ in range(2)]
    put(json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": DOCKER_MANIFEST, "digest": digest, "size": 100, "platform": {"architecture": arch, "os": "linux"}}
        for digest, arch in zip(platforms, ("amd64", "arm64"), strict=True)]}), OCI_INDEX, "multi")
    app = put(ecr_manifest(uuid.uuid4().hex), tag="v1")
    signature = put(json.dumps({  # an OCI 1.1 signature of v1 (ECR lists it as an untagged image)
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": SIGNATURE,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": EMPTY, "size": 2},
        "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "digest": EMPTY, "size": 2}],
        "subject": {"mediaType": DOCKER_MANIFEST, "digest": app, "size": 100}}), OCI_MANIFEST)
    orphan = put(ecr_manifest(uuid.uuid4().hex))

    def images() -> set[str]:
        return {i["imageDigest"] for i in ecr.describe_images(repositoryName=path)["imageDetails"]}

    before = images()
    report = tmp_path / "report.json"
    done = run_ci_env("cleanup", "--registry", shim.host, "--repository", path, "--rule", "keep=all",
                      "--untagged", "remove", "--images-repo-implementation", "ecr", "--report", str(report),
                      env=_env(tmp_path, AWS_ENDPOINT_URL_ECR=moto_url, **AWS), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert images() == before - {orphan}
    document: dict[str, Any] = json.loads(report.read_text())
    jsonschema.validate(document, SCHEMA)
    assert [(u["digest"], u["outcome"]) for u in document["untagged"]] == [(orphan, "removed")]
    assert document["untagged"][0]["reason"].startswith("untagged, nothing references it: untagged: remove (pushed ")
    assert shim.tags(path) == {"multi", "v1"}
    assert {platforms[0], platforms[1], signature} <= images()


def _untagged_outcomes(report: Path) -> dict[str, dict[str, Any]]:
    """digest -> the report's untagged outcome (the report checked against its schema first)."""
    document = json.loads(report.read_text())
    jsonschema.validate(document, SCHEMA)
    return {u["digest"]: u for u in document["untagged"]}


def _assert_left_for_the_late_tag(outcomes: dict[str, dict[str, Any]], stderr: str, kept: list[str],
                                  orphan: str) -> None:
    """What the tag ``late``, pushed between the plan and the untagged removal, reaches was left (and said so);
    the orphan nothing reaches was removed."""
    assert outcomes[orphan]["outcome"] == "removed"
    for digest in kept:
        assert outcomes[digest]["outcome"] == "left", outcomes[digest]
        assert "tag late" in outcomes[digest]["reason"], outcomes[digest]
    assert "since the plan" in stderr and "late" in stderr


def _github_run(packages: GitHubPackages, registry: RegistryService | RegistryRelay, path: str, tmp_path: Path,
                report: Path) -> Any:
    return run_ci_env("cleanup", "--registry", registry.host, "--repository", path, "--rule", "keep=all",
                      "--untagged", "older-than=7d", "--images-repo-implementation", "github",
                      "--repo-github-token", GITHUB_TOKEN, "--report", str(report),
                      env=_env(tmp_path, WERF_GITHUB_API_URL=packages.api.url), cwd=tmp_path)


def _old_index_with_signature(client: RegistryClient, path: str) -> tuple[str, list[str], str]:
    """An untagged index of two untagged platform images and its OCI 1.1 signature (untagged, no referrers tag):
    (index, platforms, signature)."""
    platforms = [push_image(client, path, created=ago(30)).digest for _ in range(2)]
    index = push_index_of(client, path, platforms)
    signature = push_artifact(client, path, index, SIGNATURE, fallback=False)
    return index, platforms, signature


def test_github_an_index_tagged_between_the_plan_and_the_untagged_removal_keeps_its_platforms_and_signature(
        registry_open: RegistryService, fake_api: Callable[[], FakeApi], clean_env: None, tmp_path: Path) -> None:
    packages = GitHubPackages(fake_api(), registry_open, "read:packages, delete:packages")
    client = RegistryClient(registry_open.host, docker_config=Path("/nonexistent"))
    path = f"acme/late{uuid.uuid4().hex[:8]}"
    push_image(client, path, ["app"], created=ago(300))
    index, platforms, signature = _old_index_with_signature(client, path)
    orphan = push_image(client, path, created=ago(30)).digest
    for digest in (index, signature, orphan, *platforms):
        packages.pushed[digest] = ago(30)
    body, info = client.get_manifest(path, index)

    def tag_the_index(listing: int) -> None:
        if listing == 2:  # the plan listed the versions once: this is the untagged removal reading them again
            client.put_manifest(path, "late", body, info.media_type)

    packages.before_listing = tag_the_index
    report = tmp_path / "report.json"
    done = _github_run(packages, registry_open, path, tmp_path, report)
    assert done.returncode == 0, done.stderr
    assert packages.listings >= 2
    resolved = client.resolve(path, "late")
    assert resolved is not None and resolved.digest == index
    for digest in (index, signature, *platforms):
        assert client.find_manifest(path, digest) is not None, digest
    assert client.find_manifest(path, orphan) is None  # what nothing reaches still goes
    outcomes = _untagged_outcomes(report)
    _assert_left_for_the_late_tag(outcomes, done.stderr, [index, signature, *platforms], orphan)


def test_ecr_an_index_tagged_between_the_plan_and_the_untagged_removal_keeps_its_platforms_and_signature(
        fake_api: Callable[[], FakeApi], moto_url: str, clean_env: None, tmp_path: Path) -> None:
    ecr = boto3.client("ecr", region_name="eu-west-1", endpoint_url=moto_url, aws_access_key_id="testing",
                       aws_secret_access_key="testing-secret")
    shim = EcrRegistryApi(fake_api(), ecr)
    front = AwsFront(fake_api(), moto_url)
    path = f"ecr{uuid.uuid4().hex[:8]}/late"
    ecr.create_repository(repositoryName=path)

    def put(manifest: str, media: str = DOCKER_MANIFEST, tag: str | None = None) -> str:
        digest = "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()
        ecr.put_image(repositoryName=path, imageManifest=manifest, imageManifestMediaType=media, imageDigest=digest,
                      **({"imageTag": tag} if tag else {}))
        return digest

    put(ecr_manifest(uuid.uuid4().hex), tag="v1")
    platforms = [put(ecr_manifest(uuid.uuid4().hex)) for _ in range(2)]
    index_body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": DOCKER_MANIFEST, "digest": digest, "size": 100, "platform": {"architecture": arch, "os": "linux"}}
        for digest, arch in zip(platforms, ("amd64", "arm64"), strict=True)]})
    index = put(index_body, OCI_INDEX)
    signature = put(json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": SIGNATURE,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": EMPTY, "size": 2},
        "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "digest": EMPTY, "size": 2}],
        "subject": {"mediaType": OCI_INDEX, "digest": index, "size": len(index_body)}}), OCI_MANIFEST)
    orphan = put(ecr_manifest(uuid.uuid4().hex))
    listings = 0

    def tag_the_index(operation: str) -> None:
        nonlocal listings
        if operation == "DescribeImages":
            listings += 1
            if listings == 2:  # the plan described the images once: this is the untagged removal's listing
                put(index_body, OCI_INDEX, "late")

    front.before = tag_the_index
    report = tmp_path / "report.json"
    done = run_ci_env("cleanup", "--registry", shim.host, "--repository", path, "--rule", "keep=all",
                      "--untagged", "remove", "--images-repo-implementation", "ecr", "--report", str(report),
                      env=_env(tmp_path, AWS_ENDPOINT_URL_ECR=front.url, **AWS), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert listings >= 2
    assert shim.tags(path) == {"v1", "late"}
    images = {i["imageDigest"] for i in ecr.describe_images(repositoryName=path)["imageDetails"]}
    assert {index, signature, *platforms} <= images
    assert orphan not in images
    outcomes = _untagged_outcomes(report)
    _assert_left_for_the_late_tag(outcomes, done.stderr, [index, signature, *platforms], orphan)


def test_github_a_tag_the_versions_listing_omits_keeps_its_image_and_what_it_reaches(
        registry_open: RegistryService, fake_api: Callable[[], FakeApi], clean_env: None, tmp_path: Path) -> None:
    packages = GitHubPackages(fake_api(), registry_open, "read:packages, delete:packages")
    client = RegistryClient(registry_open.host, docker_config=Path("/nonexistent"))
    path = f"acme/lag{uuid.uuid4().hex[:8]}"
    push_image(client, path, ["app"], created=ago(300))
    index, platforms, signature = _old_index_with_signature(client, path)
    body, info = client.get_manifest(path, index)
    client.put_manifest(path, "fresh", body, info.media_type)
    orphan = push_image(client, path, created=ago(30)).digest
    for digest in (index, signature, orphan, *platforms):
        packages.pushed[digest] = ago(30)
    packages.hidden_tags.add("fresh")  # the versions listing lags: the index's version shows no tag yet
    report = tmp_path / "report.json"
    done = _github_run(packages, registry_open, path, tmp_path, report)
    assert done.returncode == 0, done.stderr
    resolved = client.resolve(path, "fresh")
    assert resolved is not None and resolved.digest == index
    for digest in (index, signature, *platforms):
        assert client.find_manifest(path, digest) is not None, digest
    assert client.find_manifest(path, orphan) is None
    document = json.loads(report.read_text())
    jsonschema.validate(document, SCHEMA)
    assert [u["digest"] for u in document["untagged"]] == [orphan]
    decisions = {d["tag"]: d for d in document["decisions"]}
    assert decisions["fresh"]["action"] == "keep"
    assert "push time unknown" in decisions["fresh"]["reason"]
    assert "the vendor's listing does not" in decisions["fresh"]["reason"]


def test_github_a_new_index_pushed_after_the_plan_keeps_the_planned_platforms_it_names(
        registry_open: RegistryService, fake_api: Callable[[], FakeApi], clean_env: None, tmp_path: Path) -> None:
    packages = GitHubPackages(fake_api(), registry_open, "read:packages, delete:packages")
    client = RegistryClient(registry_open.host, docker_config=Path("/nonexistent"))
    path = f"acme/rebuilt{uuid.uuid4().hex[:8]}"
    push_image(client, path, ["app"], created=ago(300))
    index, platforms, signature = _old_index_with_signature(client, path)
    for digest in (index, signature, *platforms):
        packages.pushed[digest] = ago(30)
    pushed: list[str] = []

    def push_a_new_index(listing: int) -> None:
        if listing == 2:  # a build pushes a new index of the same platform images, unknown to the plan
            pushed.append(push_index_of(client, path, [platforms[0]], ["rebuilt"]))

    packages.before_listing = push_a_new_index
    report = tmp_path / "report.json"
    done = _github_run(packages, registry_open, path, tmp_path, report)
    assert done.returncode == 0, done.stderr
    assert pushed and client.find_manifest(path, pushed[0]) is not None
    assert client.find_manifest(path, platforms[0]) is not None
    for digest in (index, signature, platforms[1]):  # the new tag does not reach them: they go as planned
        assert client.find_manifest(path, digest) is None, digest
    document = json.loads(report.read_text())
    outcomes = {u["digest"]: u["outcome"] for u in document["untagged"]}
    assert outcomes == {platforms[0]: "left", index: "removed", signature: "removed", platforms[1]: "removed"}
    assert "(rebuilt)" in done.stderr


def test_a_package_listed_in_an_unexpected_shape_is_skipped_with_its_reason_and_the_others_are_cleaned(
        registry_open: RegistryService, fake_api: Callable[[], FakeApi], clean_env: None, tmp_path: Path) -> None:
    packages = GitHubPackages(fake_api(), registry_open, "read:packages, delete:packages")
    client = RegistryClient(registry_open.host, docker_config=Path("/nonexistent"))
    good, odd = f"acme/good{uuid.uuid4().hex[:8]}", f"acme/odd{uuid.uuid4().hex[:8]}"
    orphans = {}
    for path in (good, odd):
        push_image(client, path, ["app"], created=ago(300))
        orphans[path] = push_image(client, path, created=ago(30)).digest
        packages.pushed[orphans[path]] = ago(30)
    packages.metadata[orphans[odd]] = "container"  # GitHub answers one version's metadata as a string
    report = tmp_path / "report.json"
    done = run_ci_env("cleanup", "--registry", registry_open.host, "--repository", good, "--repository", odd,
                      "--rule", "keep=all", "--untagged", "older-than=7d", "--images-repo-implementation", "github",
                      "--repo-github-token", GITHUB_TOKEN, "--report", str(report),
                      env=_env(tmp_path, WERF_GITHUB_API_URL=packages.api.url), cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert (f"ci-env: warning: {registry_open.host}/{odd}: not listed, nothing removed: GitHub Packages: the package "
            f"versions listing is malformed: version {packages.ids[orphans[odd]]} has a metadata that is not an "
            "object") in done.stderr
    assert client.find_manifest(good, orphans[good]) is None  # the other package was cleaned
    assert client.find_manifest(odd, orphans[odd]) is not None
    document = json.loads(report.read_text())
    assert [u["digest"] for u in document["untagged"]] == [orphans[good]]


def test_github_a_tag_list_failure_whose_text_names_name_unknown_is_a_failure_not_a_missing_repository(
        registry_open: RegistryService, fake_api: Callable[[], FakeApi], clean_env: None, tmp_path: Path) -> None:
    # the versions listing lags (the index's tag is not on it yet) and the Registry API's tag list, which would
    # complete it, fails with a 404 whose message mentions NAME_UNKNOWN (a front passing an upstream's words on):
    # that is no "repository does not exist", so the repository is skipped and nothing of it is removed
    packages = GitHubPackages(fake_api(), registry_open, "read:packages, delete:packages")
    relay = RegistryRelay(fake_api(), registry_open)
    client = RegistryClient(registry_open.host, docker_config=Path("/nonexistent"))
    path = f"acme/spoof{uuid.uuid4().hex[:8]}"
    push_image(client, path, ["app"], created=ago(300))
    index, platforms, signature = _old_index_with_signature(client, path)
    body, info = client.get_manifest(path, index)
    client.put_manifest(path, "fresh", body, info.media_type)
    orphan = push_image(client, path, created=ago(30)).digest
    for digest in (index, signature, orphan, *platforms):
        packages.pushed[digest] = ago(30)
    packages.hidden_tags.add("fresh")
    relay.tag_list_answer = registry_error(404, "NOT_FOUND", "route not found (upstream said NAME_UNKNOWN)")
    report = tmp_path / "report.json"
    done = _github_run(packages, relay, path, tmp_path, report)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert f"{relay.host}/{path}: not listed, nothing removed: " in done.stderr
    assert "answered 404 NOT_FOUND" in done.stderr
    for digest in (index, signature, orphan, *platforms):
        assert client.find_manifest(path, digest) is not None, digest
    assert not [c for c in packages.api.calls if c.method == "DELETE"]


def test_github_a_tag_the_versions_listing_still_shows_on_its_old_image_keeps_the_index_it_points_at(
        registry_open: RegistryService, fake_api: Callable[[], FakeApi], clean_env: None, tmp_path: Path) -> None:
    # app was moved onto an old untagged index; GitHub's versions listing lags: the old image's version still
    # shows the tag, the index's none. The Registry API is the truth of where a tag points: the index, its
    # platform manifests and its signature stay (deleting them would break app)
    packages = GitHubPackages(fake_api(), registry_open, "read:packages, delete:packages")
    client = RegistryClient(registry_open.host, docker_config=Path("/nonexistent"))
    path = f"acme/stale{uuid.uuid4().hex[:8]}"
    old = push_image(client, path, ["app"], created=ago(300)).digest
    index, platforms, signature = _old_index_with_signature(client, path)
    orphan = push_image(client, path, created=ago(30)).digest
    body, info = client.get_manifest(path, index)
    client.put_manifest(path, "app", body, info.media_type)
    for digest in (index, signature, orphan, *platforms):
        packages.pushed[digest] = ago(30)
    packages.listed_on["app"] = old
    report = tmp_path / "report.json"
    done = _github_run(packages, registry_open, path, tmp_path, report)
    assert done.returncode == 0, done.stderr
    resolved = client.resolve(path, "app")
    assert resolved is not None and resolved.digest == index
    for digest in (index, signature, *platforms):
        assert client.find_manifest(path, digest) is not None, digest
    assert client.find_manifest(path, orphan) is None
    outcomes = _untagged_outcomes(report)
    assert outcomes[orphan]["outcome"] == "removed"
    for digest in (index, signature, *platforms):
        assert outcomes[digest]["outcome"] == "left", outcomes[digest]
        assert "tag app" in outcomes[digest]["reason"], outcomes[digest]
