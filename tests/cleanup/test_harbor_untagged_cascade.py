"""What Harbor's artifact delete takes with it, and the untagged removal: ``DELETE .../artifacts/sha256:...`` deletes
the artifact's accessories (every manifest naming it as ``subject``, cosign's tagged signatures) with every tag on
them, and its children no tag and no other index holds (Harbor's ``deleteDeeply``; the fake
``tests.vendors.namespace_servers.HarborProjects`` deletes so). An untagged artifact whose delete would take a
tagged image or what a workload runs stays (``left``, the reason naming it); what its delete took with it is
reported ``removed``, never ``absent``."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from ci_env.errors import CiEnvError
from ci_env.registry.reference import RepoAddress
from ci_env.registry.untag import RemoverContext
from ci_env.registry.vendors import harbor
from ci_env.registry.vendors.harbor import HarborRemover
from tests.cleanup.test_cleanup_rules import ago
from tests.cleanup.test_rules_untagged_harbor import HARBOR, SIGNATURE, Project, _project
from tests.cli import run_ci_env
from tests.graphs.shapes import cosign_tag, push_artifact, push_cosign, push_index_of
from tests.registry_client.images import push_image
from tests.services.kubeapi import Context, pod, write_kubeconfig
from tests.services.registry import RegistryService
from tests.vendors.fakeapi import FakeApi

SBOM = "application/spdx+json"


def _untagged(project: Project, tmp_path: Path, env: dict[str, str] | None = None) -> tuple[int, str, dict[str, Any]]:
    report = tmp_path / "report.json"
    done = run_ci_env(*project.args("--report", str(report)), env={**project.env(tmp_path), **(env or {})},
                      cwd=tmp_path)
    outcomes = {u["digest"]: u for u in json.loads(report.read_text())["untagged"]} if report.exists() else {}
    return done.returncode, done.stderr, outcomes


def test_harbor_an_untagged_image_that_a_kept_tagged_artifact_names_as_subject_stays_with_it(
        registry_open: RegistryService, fake_api: Callable[[], FakeApi], clean_env: None, tmp_path: Path) -> None:
    # an SBOM pushed with a tag of its own and a subject: Harbor records it as an accessory of the subject, and its
    # artifact delete would take the SBOM with its tag; the rules keep every tag
    project = _project(registry_open, fake_api)
    client, path = project.client, project.path
    push_image(client, path, ["app"], created=ago(300))
    subject = push_image(client, path, created=ago(30)).digest
    sbom = push_artifact(client, path, subject, SBOM, fallback=False, tags=["sbom-kept"])
    orphan = push_image(client, path, created=ago(30)).digest
    project.old(subject, orphan)

    code, stderr, outcomes = _untagged(project, tmp_path)
    assert code == 0, stderr
    resolved = client.resolve(path, "sbom-kept")
    assert resolved is not None and resolved.digest == sbom
    assert client.find_manifest(path, subject) is not None
    assert client.find_manifest(path, orphan) is None  # what takes nothing kept along still goes
    assert outcomes[orphan]["outcome"] == "removed"
    assert outcomes[subject]["outcome"] == "left", outcomes[subject]
    assert f"{sbom} (tag sbom-kept)" in outcomes[subject]["reason"], outcomes[subject]
    assert project.harbor.deleted_artifacts() == [orphan]
    assert "kept: Harbor's delete would take" in stderr


def test_harbor_an_untagged_index_whose_platform_manifest_a_workload_runs_stays(
        registry_open: RegistryService, fake_api: Callable[[], FakeApi], clean_env: None, tmp_path: Path,
        kube_servers: Any) -> None:
    # a pod pinned to one platform manifest of an index whose tag moved on: Harbor's delete of the index would take
    # its untagged children with it, the running one included
    project = _project(registry_open, fake_api)
    client, path = project.client, project.path
    push_image(client, path, ["app"], created=ago(300))
    platforms = [push_image(client, path, created=ago(30)).digest for _ in range(2)]
    index = push_index_of(client, path, platforms)
    project.old(index, *platforms)
    server = kube_servers(tokens={"kube-token-h"}, objects=[
        pod("pinned", "prod", [f"{registry_open.host}/{path}@{platforms[0]}"])])
    config = write_kubeconfig(tmp_path / "kube" / "config",
                              [Context("prod", server.url, "kube-token-h", server.ca_pem)])

    code, stderr, outcomes = _untagged(project, tmp_path, {"KUBECONFIG": str(config)})
    assert code == 0, stderr
    for digest in (index, *platforms):
        assert client.find_manifest(path, digest) is not None, digest
    assert project.harbor.deleted_artifacts() == []
    assert outcomes[index]["outcome"] == "left", outcomes[index]
    assert platforms[0] in outcomes[index]["reason"] and "runs" in outcomes[index]["reason"], outcomes[index]


def test_harbor_what_an_index_delete_took_with_it_is_reported_removed(
        registry_open: RegistryService, fake_api: Callable[[], FakeApi], clean_env: None, tmp_path: Path) -> None:
    # the index goes first and Harbor deletes its untagged platform manifests and its signature with it: this run
    # removed them, they were not "already gone"
    project = _project(registry_open, fake_api)
    client, path = project.client, project.path
    push_image(client, path, ["app"], created=ago(300))
    platforms = [push_image(client, path, created=ago(30)).digest for _ in range(2)]
    index = push_index_of(client, path, platforms)
    signature = push_artifact(client, path, index, SIGNATURE, fallback=False)
    project.old(index, signature, *platforms)

    code, stderr, outcomes = _untagged(project, tmp_path)
    assert code == 0, stderr
    for digest in (index, signature, *platforms):
        assert client.find_manifest(path, digest) is None, digest
        assert outcomes[digest]["outcome"] == "removed", outcomes[digest]
    assert project.harbor.deleted_artifacts()[0] in (index, signature)


def test_harbor_an_unexpected_error_on_one_artifact_fails_it_alone_and_the_deleted_stay_reported(
        registry_open: RegistryService, fake_api: Callable[[], FakeApi], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # reading the second artifact meets an answer of a shape no check foresaw: the first was deleted already
    project = _project(registry_open, fake_api)
    client, path = project.client, project.path
    push_image(client, path, ["app"], created=ago(300))
    first, second, third = (push_image(client, path, created=ago(30)).digest for _ in range(3))
    context = RemoverContext(docker_config=tmp_path / "none", env={
        "WERF_HARBOR_API_URL": project.harbor.api.url, "WERF_REPO_HARBOR_USERNAME": HARBOR[0],
        "WERF_REPO_HARBOR_PASSWORD": HARBOR[1]})
    repo = RepoAddress(registry_open.host, path)
    tag_names = harbor._tag_names

    def broken(artifact: dict[str, Any], what: str) -> Any:
        if artifact.get("digest") == second:
            raise TypeError("'NoneType' object is not subscriptable")
        return tag_names(artifact, what)

    monkeypatch.setattr(harbor, "_tag_names", broken)
    answers = HarborRemover(context).delete_manifests(repo, [first, second, third])
    assert answers[first] == "removed" and answers[third] == "removed"
    error = answers[second]
    assert isinstance(error, CiEnvError) and "TypeError" in error.message, error
    assert client.find_manifest(path, second) is not None
    assert [client.find_manifest(path, d) for d in (first, third)] == [None, None]


@pytest.mark.parametrize("answered", ["other", "none"])
def test_harbor_an_artifact_read_that_answers_for_another_digest_is_never_deleted(
        registry_open: RegistryService, fake_api: Callable[[], FakeApi], tmp_path: Path, answered: str) -> None:
    project = _project(registry_open, fake_api)
    client, path = project.client, project.path
    push_image(client, path, ["app"], created=ago(300))
    target = push_image(client, path, created=ago(30)).digest
    other = push_image(client, path, created=ago(30)).digest
    api = project.harbor.api

    def elsewhere(call: Any, project_name: str, repository: str, reference: str) -> Any:
        return 200, {}, {"digest": other if answered == "other" else None, "tags": None}

    api.routes.insert(0, ("GET", re.compile(r"/api/v2.0/projects/([^/]+)/repositories/([^/]+)/artifacts/"
                                            r"(sha256:[0-9a-f]+)\Z"), elsewhere))

    context = RemoverContext(docker_config=tmp_path / "none", env={
        "WERF_HARBOR_API_URL": api.url, "WERF_REPO_HARBOR_USERNAME": HARBOR[0],
        "WERF_REPO_HARBOR_PASSWORD": HARBOR[1]})
    answers: Sequence[object] = list(HarborRemover(context).delete_manifests(
        RepoAddress(registry_open.host, path), [target]).values())
    assert len(answers) == 1 and isinstance(answers[0], CiEnvError), answers
    assert "answered for" in answers[0].message, answers[0].message
    assert not [c for c in api.calls if c.method == "DELETE"]
    assert client.find_manifest(path, target) is not None


def test_harbor_an_untagged_image_goes_with_its_cosign_signature_tag_and_an_index_that_stays_keeps_its_children(
        registry_open: RegistryService, fake_api: Callable[[], FakeApi], clean_env: None, tmp_path: Path) -> None:
    # cosign's ``sha256-<hex>.sig`` tag belongs to the image it names: it goes with it. A kept index shares a platform
    # manifest with an untagged one: Harbor leaves that child (another index references it), the rest goes
    project = _project(registry_open, fake_api)
    client, path = project.client, project.path
    signed = push_image(client, path, created=ago(30)).digest
    signature = push_cosign(client, path, signed)
    shared, own = (push_image(client, path, created=ago(30)).digest for _ in range(2))
    push_index_of(client, path, [shared], ["app"])
    old_index = push_index_of(client, path, [shared, own])
    project.old(signed, signature, old_index, own)

    code, stderr, outcomes = _untagged(project, tmp_path)
    assert code == 0, stderr
    assert {d: o["outcome"] for d, o in outcomes.items()} == dict.fromkeys((signed, old_index, own), "removed")
    for digest in (signed, signature, old_index, own):
        assert client.find_manifest(path, digest) is None, digest
    assert cosign_tag(signed, "sig") not in client.list_tags(path)
    assert client.find_manifest(path, shared) is not None
    assert "app" in client.list_tags(path)


def test_harbor_a_dry_run_whose_untagged_listing_fails_says_nothing_was_removed(
        registry_open: RegistryService, fake_api: Callable[[], FakeApi], clean_env: None, tmp_path: Path) -> None:
    # the plan listed the artifacts; the untagged removal's second listing is refused: exit 1, and the message of a
    # dry run never claims that the rest of the cleanup was done
    project = _project(registry_open, fake_api)
    client, path = project.client, project.path
    push_image(client, path, ["app"], created=ago(300))
    orphan = push_image(client, path, created=ago(30)).digest
    project.old(orphan)

    def refuse_after_the_plan(listing: int) -> None:
        if listing == 1:
            project.harbor.broken.add(path)

    project.harbor.before_listing = refuse_after_the_plan
    done = run_ci_env(*project.args("--dry-run"), env=project.env(tmp_path), cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "the rest of the cleanup was done" not in done.stderr
    assert "untagged manifests could not be read (dry run, nothing was removed;" in done.stderr
    assert client.find_manifest(path, orphan) is not None
