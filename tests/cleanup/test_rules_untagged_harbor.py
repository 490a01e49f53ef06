"""`ci-env cleanup --rules` and Harbor's untagged artifacts: the artifact listing (a local server following Harbor's
documented v2.0 API over the real registry's storage: ``tests.vendors.namespace_servers.HarborProjects``) lists the
artifacts without tags, and an ``untagged:`` policy deletes those nothing kept reaches by digest (``DELETE
.../artifacts/sha256:...``, each read again right before: Harbor's delete takes the artifact's tags with it). The
platform manifests of a kept index and the signature of a kept image stay; so does what a tag pushed between the
plan and the removal reaches, and an artifact tagged right before its delete. An error of the untagged removal
fails the run (exit 1) once the rest is done, the report written, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jsonschema

from ci_env.registry.client import RegistryClient
from tests.cleanup.test_cleanup_rules import SCHEMA, ago
from tests.cli import environ_without, run_ci_env
from tests.graphs.shapes import push_artifact, push_index_of
from tests.registry_client.images import push_image
from tests.services.registry import RegistryService
from tests.vendors import namespace_servers as fakes
from tests.vendors.fakeapi import FakeApi

HARBOR = ("robot$cleanup", "Harbor-untagged-SECRET")
SIGNATURE = "application/vnd.dev.cosign.artifact.sig.v1+json"


@dataclass
class Project:
    harbor: fakes.HarborProjects
    client: RegistryClient
    path: str
    host: str

    def args(self, *extra: str, rules: tuple[str, ...] = ("keep=all",)) -> list[str]:
        return ["cleanup", "--registry", self.host, "--repository", self.path,
                *[arg for rule in rules for arg in ("--rule", rule)], "--untagged", "older-than=7d",
                "--images-repo-implementation", "harbor", "--repo-harbor-username", HARBOR[0],
                "--repo-harbor-password", HARBOR[1], *extra]

    def env(self, tmp_path: Path) -> dict[str, str]:
        return {**environ_without(), "DOCKER_CONFIG": str(tmp_path / "none"),
                "XDG_STATE_HOME": str(tmp_path / "state"), "KUBECONFIG": str(tmp_path / "none"),
                "WERF_HARBOR_API_URL": self.harbor.api.url}

    def revisions(self) -> set[str]:
        assert self.harbor.storage is not None
        return set(self.harbor._revisions(self.harbor.storage / self.path / "_manifests"))

    def old(self, *digests: str) -> None:
        for digest in digests:
            self.harbor.pushed[digest] = ago(30)  # the image configs say otherwise: the push time decides


def _project(registry: RegistryService, fake_api: Callable[[], FakeApi]) -> Project:
    name = f"hbu{uuid.uuid4().hex[:8]}"
    harbor = fakes.HarborProjects(fake_api(), fakes.stored_repositories(registry), (name,), HARBOR,
                                  storage=fakes.storage_of(registry))
    client = RegistryClient(registry.host, docker_config=Path("/nonexistent"))
    return Project(harbor, client, f"{name}/app", registry.host)


def _old_index_with_signature(project: Project) -> tuple[str, list[str], str]:
    """An untagged index of two untagged platform images and its OCI 1.1 signature (untagged, no referrers tag),
    pushed 30 days ago: (index, platforms, signature)."""
    platforms = [push_image(project.client, project.path, created=ago(30)).digest for _ in range(2)]
    index = push_index_of(project.client, project.path, platforms)
    signature = push_artifact(project.client, project.path, index, SIGNATURE, fallback=False)
    project.old(index, signature, *platforms)
    return index, platforms, signature


def test_harbor_untagged_artifacts_follow_the_policy_and_kept_images_keep_theirs(
        registry_open: RegistryService, fake_api: Callable[[], FakeApi], clean_env: None, tmp_path: Path) -> None:
    project = _project(registry_open, fake_api)
    client, path = project.client, project.path
    # kept: an index whose platform manifests are untagged artifacts, and an image with an OCI 1.1 signature that
    # names it as subject (untagged, no referrers tag: only reading the signature tells whose it is); all old
    platforms = [push_image(client, path, created=ago(1)).digest for _ in range(2)]
    push_index_of(client, path, platforms, ["multi"])
    app = push_image(client, path, ["app"], created=ago(1)).digest
    signature = push_artifact(client, path, app, SIGNATURE, fallback=False)
    project.old(*platforms, app, signature)
    # untagged and referenced by nothing kept: an old image with its signature, an old index with its platforms,
    # and a recent image (its config says 300 days: Harbor's push time decides)
    orphan = push_image(client, path, created=ago(1)).digest
    orphan_signature = push_artifact(client, path, orphan, SIGNATURE, fallback=False)
    old_index, old_platforms, old_index_signature = _old_index_with_signature(project)
    project.old(orphan, orphan_signature)
    recent = push_image(client, path, created=ago(300)).digest
    project.harbor.pushed[recent] = ago(2)
    before = project.revisions()
    removed = {orphan, orphan_signature, old_index, old_index_signature, *old_platforms}

    dry = tmp_path / "dry.json"
    done = run_ci_env(*project.args("--dry-run", "--report", str(dry)), env=project.env(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert project.revisions() == before
    assert not [c for c in project.harbor.api.calls if c.method == "DELETE"]
    document = json.loads(dry.read_text())
    jsonschema.validate(document, SCHEMA)
    assert {u["digest"]: u["outcome"] for u in document["untagged"]} == dict.fromkeys(removed, "would-remove")
    assert "6 untagged manifests to remove" in done.stderr

    report = tmp_path / "report.json"
    done = run_ci_env(*project.args("--report", str(report)), env=project.env(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert project.revisions() == before - removed
    document = json.loads(report.read_text())
    jsonschema.validate(document, SCHEMA)
    assert {u["digest"]: u["outcome"] for u in document["untagged"]} == dict.fromkeys(removed, "removed")
    deleted = project.harbor.deleted_artifacts()
    assert set(deleted) <= removed and old_index in deleted
    # Harbor's delete of the index took its platform manifests: none is deleted before it, nor after it
    assert not set(old_platforms) & set(deleted)
    reads = {c.raw_path.rsplit("/", 1)[1] for c in project.harbor.api.calls
             if c.method == "GET" and "/artifacts/sha256:" in c.raw_path}
    assert reads >= removed  # each artifact read right before its delete (or its parent's)
    for digest in (*platforms, app, signature, recent):
        assert client.find_manifest(path, digest) is not None, digest
    assert {"multi", "app"} <= set(client.list_tags(path))
    assert HARBOR[1] not in done.stderr + done.stdout + report.read_text()


def test_harbor_an_index_tagged_between_the_plan_and_the_untagged_removal_keeps_its_platforms_and_signature(
        registry_open: RegistryService, fake_api: Callable[[], FakeApi], clean_env: None, tmp_path: Path) -> None:
    project = _project(registry_open, fake_api)
    client, path = project.client, project.path
    push_image(client, path, ["app"], created=ago(300))
    index, platforms, signature = _old_index_with_signature(project)
    orphan = push_image(client, path, created=ago(30)).digest
    project.old(orphan)
    body, info = client.get_manifest(path, index)

    def tag_the_index(listing: int) -> None:
        if listing == 2:  # the plan listed the artifacts once: this is the untagged removal reading them again
            client.put_manifest(path, "late", body, info.media_type)

    project.harbor.before_listing = tag_the_index
    report = tmp_path / "report.json"
    done = run_ci_env(*project.args("--report", str(report)), env=project.env(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert project.harbor.artifact_listings >= 2
    resolved = client.resolve(path, "late")
    assert resolved is not None and resolved.digest == index
    for digest in (index, signature, *platforms):
        assert client.find_manifest(path, digest) is not None, digest
    assert client.find_manifest(path, orphan) is None  # what nothing reaches still goes
    assert project.harbor.deleted_artifacts() == [orphan]
    outcomes = {u["digest"]: u for u in json.loads(report.read_text())["untagged"]}
    assert outcomes[orphan]["outcome"] == "removed"
    for digest in (index, signature, *platforms):
        assert outcomes[digest]["outcome"] == "left", outcomes[digest]
        assert "tag late" in outcomes[digest]["reason"], outcomes[digest]
    assert "since the plan" in done.stderr and "late" in done.stderr


def test_harbor_an_artifact_tagged_right_before_its_delete_keeps_its_tag(
        registry_open: RegistryService, fake_api: Callable[[], FakeApi], clean_env: None, tmp_path: Path) -> None:
    # the re-check read the tags already; between two deletes another job tags the next artifact to go: Harbor's
    # delete would take that tag with it, so the remover reads each artifact right before deleting it
    project = _project(registry_open, fake_api)
    client, path = project.client, project.path
    push_image(client, path, ["app"], created=ago(300))
    first, second = (push_image(client, path, created=ago(30)).digest for _ in range(2))
    project.old(first, second)
    tagged: list[str] = []

    def tag_the_other(digest: str) -> None:
        if not tagged:
            other = second if digest == first else first
            body, info = client.get_manifest(path, other)
            client.put_manifest(path, "just-pushed", body, info.media_type)
            tagged.append(other)

    project.harbor.before_delete = tag_the_other
    report = tmp_path / "report.json"
    done = run_ci_env(*project.args("--report", str(report)), env=project.env(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert tagged
    resolved = client.resolve(path, "just-pushed")
    assert resolved is not None and resolved.digest == tagged[0]
    assert len(project.harbor.deleted_artifacts()) == 1
    outcomes = {u["digest"]: u for u in json.loads(report.read_text())["untagged"]}
    assert outcomes[tagged[0]]["outcome"] == "left"
    assert "it had a tag when it was to be deleted" in outcomes[tagged[0]]["reason"]
    assert {o["outcome"] for d, o in outcomes.items() if d != tagged[0]} == {"removed"}
    assert "tagged when they were to be deleted" in done.stderr


def test_harbor_an_account_that_may_not_delete_artifacts_fails_the_run_once_the_rest_is_done(
        registry_open: RegistryService, fake_api: Callable[[], FakeApi], clean_env: None, tmp_path: Path) -> None:
    project = _project(registry_open, fake_api)
    client, path = project.client, project.path
    push_image(client, path, ["app"], created=ago(300))
    orphan = push_image(client, path, created=ago(30)).digest
    project.old(orphan)
    project.harbor.delete_refused = (403, {"errors": [{"code": "FORBIDDEN", "message": "forbidden"}]})
    report = tmp_path / "report.json"
    done = run_ci_env(*project.args("--report", str(report)), env=project.env(tmp_path), cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and HARBOR[1] not in done.stderr
    assert "ci-env: error: untagged manifests could not be removed" in done.stderr
    assert f"{registry_open.host}/{path}@{orphan}: Harbor: deleting artifact {path}@{orphan} refused" in done.stderr
    assert "permission to delete artifacts" in done.stderr
    assert client.find_manifest(path, orphan) is not None
    untagged = json.loads(report.read_text())["untagged"]
    assert [(u["digest"], u["outcome"]) for u in untagged] == [(orphan, "failed")]


def test_an_unexpected_error_of_the_untagged_removal_fails_the_run_after_the_tags_and_writes_the_report(
        registry_open: RegistryService, fake_api: Callable[[], FakeApi], clean_env: None, tmp_path: Path) -> None:
    # the CLI's process with Harbor's artifact delete raising a TypeError (a vendor answer no check foresaw)
    project = _project(registry_open, fake_api)
    client, path = project.client, project.path
    push_image(client, path, ["keep-1"], created=ago(300))
    push_image(client, path, ["old-1"], created=ago(300))
    orphan = push_image(client, path, created=ago(30)).digest
    project.old(orphan)
    script = ("import sys\nfrom ci_env.registry.vendors import harbor\n"
              "def broken(self, repo, digests, *, parallel=1, keep=()):\n"
              "    raise TypeError(\"'NoneType' object is not subscriptable (https://user:pw@harbor.example/x)\")\n"
              "harbor.HarborRemover.delete_manifests = broken\n"
              "from ci_env.cli import main\nsys.argv = ['ci-env'] + sys.argv[1:]\nmain()\n")
    report = tmp_path / "report.json"
    args = project.args("--report", str(report), rules=("tags=old-.*;older-than=30d", "keep=all"))
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                          env=project.env(tmp_path), cwd=tmp_path, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and ":pw@" not in done.stderr and HARBOR[1] not in done.stderr
    where = f"{registry_open.host}/{path}"
    assert (f"ci-env: warning: {where}: untagged manifests were not removed: unexpected error (TypeError: "
            "'NoneType' object is not subscriptable (https://harbor.example/x))") in done.stderr
    assert "ci-env: error: untagged manifests could not be removed" in done.stderr
    assert set(client.list_tags(path)) == {"keep-1"}  # the tag removal ran first
    assert client.find_manifest(path, orphan) is not None
    document = json.loads(report.read_text())
    jsonschema.validate(document, SCHEMA)
    assert [(d["tag"], d["outcome"]) for d in document["decisions"] if d["action"] == "delete"] == [
        ("old-1", "removed")]
    assert [(u["digest"], u["outcome"]) for u in document["untagged"]] == [(orphan, "failed")]
    assert "TypeError" in document["untagged"][0]["error"]
