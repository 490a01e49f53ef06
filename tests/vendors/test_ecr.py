"""ECR remover against moto's server (``moto_server``), boto3 pointed at it by ``AWS_ENDPOINT_URL_ECR``.

moto follows ECR's API: ``batch_delete_image`` by tag removes only that tag, unknown tags come back in
``failures`` with ``ImageNotFound``. (moto computes ``imageDigest`` from the layers, so two
``put_image`` calls with the same manifest and different tags share one digest, as in ECR.)
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from ci_env.errors import PreflightError, RegistryError
from ci_env.registry.reference import RepoAddress
from ci_env.registry.vendors.ecr import EcrRemover
from tests.vendors.conftest import Ctx

HOST = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
DUMMY = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret"}


@pytest.fixture
def ecr(moto_url: str, clean_env: None) -> Any:
    import boto3

    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"))
    client = boto3.client("ecr", region_name="eu-west-1", endpoint_url=moto_url,
                          aws_access_key_id="testing", aws_secret_access_key="testing-secret")
    client.create_repository(repositoryName="team/app")
    return client


def manifest(layer: str) -> str:
    return json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 2,
                   "digest": "sha256:" + "c" * 64},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 3,
                    "digest": "sha256:" + layer * 64}],
    })


def tags_by_digest(client: Any) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for image in client.describe_images(repositoryName="team/app")["imageDetails"]:
        result[image["imageDigest"]] = sorted(image.get("imageTags") or [])
    return result


def context(moto_url: str) -> Ctx:
    return Ctx(env={"AWS_ENDPOINT_URL_ECR": moto_url, **DUMMY})


def test_untag_keeps_other_tags_on_same_digest(ecr: Any, moto_url: str) -> None:
    for tag in ("v1", "v2"):
        ecr.put_image(repositoryName="team/app", imageManifest=manifest("a"), imageTag=tag)
    ecr.put_image(repositoryName="team/app", imageManifest=manifest("b"), imageTag="v3")
    before = tags_by_digest(ecr)
    shared = next(d for d, tags in before.items() if tags == ["v1", "v2"])
    repo = RepoAddress(HOST, "team/app")
    r = EcrRemover(context(moto_url))
    r.preflight(repo)
    assert r.untag(repo, "v1") == "removed"
    after = tags_by_digest(ecr)
    assert after[shared] == ["v2"]
    assert sorted(t for tags in after.values() for t in tags) == ["v2", "v3"]


def test_untag_many_in_batches_with_per_item_results(ecr: Any, moto_url: str) -> None:
    for i in range(150):
        ecr.put_image(repositoryName="team/app", imageManifest=manifest("d"), imageTag=f"t{i}")
    ecr.put_image(repositoryName="team/app", imageManifest=manifest("e"), imageTag="keep")
    wanted = [f"t{i}" for i in range(150)] + ["missing"]
    results = EcrRemover(context(moto_url)).untag_many(RepoAddress(HOST, "team/app"), wanted)
    assert results == {**{f"t{i}": "removed" for i in range(150)}, "missing": "absent"}
    assert [tags for tags in tags_by_digest(ecr).values()] == [["keep"]]


def test_unknown_repository_is_an_error_not_absent(ecr: Any, moto_url: str) -> None:
    r = EcrRemover(context(moto_url))
    repo = RepoAddress(HOST, "team/never")
    r.preflight(repo)
    with pytest.raises(RegistryError, match="RepositoryNotFoundException"):
        r.untag(repo, "v1")


def test_preflight_without_credentials_or_region(moto_url: str, clean_env: None, tmp_path: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(PreflightError) as no_creds:
        EcrRemover(Ctx(env={"AWS_ENDPOINT_URL_ECR": moto_url})).preflight(RepoAddress(HOST, "team/app"))
    assert "AWS_ACCESS_KEY_ID" in str(no_creds.value)
    with pytest.raises(PreflightError) as no_region:
        EcrRemover(context(moto_url)).preflight(RepoAddress("ecr.example.com", "team/app"))
    assert "AWS_REGION" in str(no_region.value)


def test_untag_all_sends_ecr_tags_in_calls_of_100(ecr: Any, moto_url: str) -> None:
    from ci_env.registry.untag import untag_all

    for i in range(250):
        ecr.put_image(repositoryName="team/app", imageManifest=manifest("f"), imageTag=f"t{i}")
    ecr.put_image(repositoryName="team/app", imageManifest=manifest("f"), imageTag="keep")
    calls: list[int] = []
    ecr.meta.events.register("before-parameter-build.ecr.BatchDeleteImage",
                             lambda params, **_: calls.append(len(params["imageIds"])))
    remover = EcrRemover(context(moto_url), client=ecr)
    repo = RepoAddress(HOST, "team/app")
    wanted = [f"t{i}" for i in range(250)]
    summary = untag_all([(repo, tag) for tag in wanted], lambda _: remover, parallel=8)
    assert [o.status for o in summary.outcomes] == ["removed"] * 250
    assert calls == [100, 100, 50]
    assert [tags for tags in tags_by_digest(ecr).values()] == [["keep"]]


def test_an_ecr_cleanup_without_the_aws_sdk_says_what_to_install(tmp_path: Any) -> None:
    """The AWS SDK is an extra: a cleanup of an ECR repository on an install without it stops with one line
    saying what to install, never a traceback (boto3 and botocore made unimportable in the CLI's process)."""
    import subprocess
    import sys

    from tests.cli import environ_without

    script = ("import sys; sys.modules['boto3'] = None; sys.modules['botocore'] = None; "
              "from ci_env.cli import main; sys.argv = ['ci-env'] + sys.argv[1:]; main()")
    env = {**environ_without(), "AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing-secret", "DOCKER_CONFIG": str(tmp_path / "none"),
           "XDG_STATE_HOME": str(tmp_path / "state")}
    done = subprocess.run([sys.executable, "-c", script, "cleanup", "--without-kube",
                           "--repository", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app",
                           "--rule", "keep-last=1"], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=120)
    assert done.returncode == 1, done.stderr
    assert "needs the AWS SDK (botocore is missing): install the aws extra" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "testing-secret" not in done.stderr
