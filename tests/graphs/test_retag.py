"""`ci-env registry retag` of a signed multi-platform (nested) index across repositories: every child is copied,
the digest does not change, and the signatures go along and stay valid."""

from __future__ import annotations

import json
from pathlib import Path

from ci_env.registry.client import RegistryClient
from tests.cli import environ_without, run_ci_env
from tests.graphs.shapes import cosign_tag, push_buildx, push_cosign, push_index_of
from tests.registry_client.images import pulls
from tests.services.registry import RegistryService


def test_retag_copies_a_signed_nested_index_with_its_children_and_signatures(
    registry_open: RegistryService, open_client: RegistryClient, repo: str, tmp_path: Path,
) -> None:
    buildx, platforms, attestations = push_buildx(open_client, repo)
    outer = push_index_of(open_client, repo, [buildx], ["v1"])
    signature = push_cosign(open_client, repo, outer, "sig")
    target = f"{repo}-copy"
    env = {**environ_without(), "DOCKER_CONFIG": str(tmp_path / "none")}
    done = run_ci_env("registry", "retag", f"{registry_open.host}/{repo}:v1", f"{registry_open.host}/{target}:v1",
                      env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].endswith(f"-> {outer}")
    copied = open_client.resolve(target, "v1")
    assert copied is not None and copied.digest == outer  # the same digest: signatures stay valid
    assert pulls(open_client, target, "v1")
    for digest in (buildx, *platforms, *attestations):
        assert open_client.resolve(target, digest) is not None
    sig = open_client.resolve(target, cosign_tag(outer, "sig"))
    assert sig is not None and sig.digest == signature
    body, _ = open_client.get_manifest(target, signature)
    layer = json.loads(body)["layers"][0]["digest"]
    payload = open_client.request("GET", f"/v2/{target}/blobs/{layer}", scopes=[f"repository:{target}:pull"]).json()
    assert payload["critical"]["image"]["docker-manifest-digest"] == copied.digest
