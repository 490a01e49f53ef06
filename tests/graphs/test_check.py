"""`ci-env registry check` on a repository of the real registry damaged on purpose."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ci_env.registry.client import RegistryClient
from tests.cli import environ_without, run_ci_env
from tests.graphs.shapes import cosign_tag, push_artifact, push_cosign
from tests.registry_client.images import pulls, push_image, push_index
from tests.services.registry import RegistryService


def _check(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    env = {**environ_without(), "DOCKER_CONFIG": str(tmp_path / "none")}
    done = run_ci_env("registry", "check", *args, env=env, cwd=tmp_path)
    return done.returncode, done.stdout, done.stderr


def test_check_of_a_clean_repository_exits_0(registry_open: RegistryService, open_client: RegistryClient,
                                             repo: str, tmp_path: Path) -> None:
    index = push_index(open_client, repo, ["multi"])
    push_cosign(open_client, repo, index.digest)
    push_artifact(open_client, repo, index.children[0])
    code, out, err = _check(tmp_path, f"{registry_open.host}/{repo}", "--json")
    assert code == 0, err
    assert json.loads(out)["clean"] is True


def test_check_reports_a_deleted_child_a_deleted_subject_and_a_tag_without_manifest_and_fix_removes_orphans_only(
    registry_open: RegistryService, open_client: RegistryClient, repo: str, tmp_path: Path,
) -> None:
    index = push_index(open_client, repo, ["multi"])
    open_client.delete_manifest(repo, index.children[1])  # a deleted child
    gone = push_image(open_client, repo, ["gone"])
    signature = push_cosign(open_client, repo, gone.digest)
    sbom = push_artifact(open_client, repo, gone.digest)
    fallback = open_client.resolve(repo, gone.digest.replace(":", "-"))
    assert fallback is not None
    keep = push_image(open_client, repo, ["keep"])
    keep_signature = push_cosign(open_client, repo, keep.digest)
    open_client.delete_manifest(repo, gone.digest)  # a deleted subject
    lost = push_image(open_client, repo, ["lost"])  # a tag whose manifest is missing from the storage
    storage = registry_open.root / "data" / "docker" / "registry" / "v2" / "repositories" / repo / "_manifests"
    shutil.rmtree(storage / "revisions" / "sha256" / lost.digest.partition(":")[2])

    code, out, err = _check(tmp_path, f"{registry_open.host}/{repo}", "--json")
    assert code == 1, err
    found = json.loads(out)
    assert found["clean"] is False and found["dangling_tags"] == ["lost"]
    assert found["broken_indexes"] == [{"digest": index.digest, "tags": ["multi"],
                                        "missing_children": [index.children[1]]}]
    orphans = {o["digest"]: (o["kind"], o["tags"], o["subject"]) for o in found["orphans"]}
    assert orphans == {
        signature: ("signature", [cosign_tag(gone.digest, "sig")], gone.digest),
        sbom: ("sbom", [], gone.digest),
        fallback.digest: ("referrers-index", [gone.digest.replace(":", "-")], gone.digest),
    }

    code, out, err = _check(tmp_path, f"{registry_open.host}/{repo}", "--fix")
    assert code == 1  # the broken index and the lost tag are reported, not fixed
    assert "removing 3 orphan(s)" in err and f"signature {signature}" in err
    assert "missing manifest" in out and "broken index" in out
    tags_now = set(open_client.list_tags(repo))  # their tags go; the untagged manifests are the GC's
    assert cosign_tag(gone.digest, "sig") not in tags_now and gone.digest.replace(":", "-") not in tags_now
    assert open_client.resolve(repo, keep_signature) is not None and pulls(open_client, repo, "keep")
    assert open_client.resolve(repo, index.digest) is not None
    again = json.loads(_check(tmp_path, f"{registry_open.host}/{repo}", "--json")[1])
    assert again["orphans"] == [] and again["dangling_tags"] == ["lost"]


def test_check_of_a_registry_address_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = _check(tmp_path, "127.0.0.1:5999")
    assert code == 2 and "is a registry, not a repository" in err and "Traceback" not in err
