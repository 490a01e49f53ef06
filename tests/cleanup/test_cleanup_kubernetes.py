"""`ci-env cleanup` never removes what Kubernetes runs: end to end through the CLI, against the real registry
and two Kubernetes API test servers (two contexts of one kubeconfig, the official client talking TLS)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cleanup.world import MISSING_COMMIT, World, publish_scenario, signature_of
from tests.cli import environ_without, run_ci_env
from tests.services.kubeapi import Context, KubeApi, cronjob, pod, write_kubeconfig
from tests.services.kubeapi import controller as workload

PROD_TOKEN = "prod-secret-token-41"
STAGING_TOKEN = "staging-secret-token-42"


@dataclass
class Cluster:
    """The published scenario, the two servers, and the kubeconfig naming them."""

    world: World
    project: str
    first: str
    second: str
    prod: KubeApi
    staging: KubeApi
    kubeconfig: Path

    def args(self) -> list[str]:
        return ["-i", str(self.world.images_repo), "-s", str(self.world.stages), "--dir", self.project]

    def everything(self) -> tuple[set[str], set[str], set[str]]:
        return self.world.tags("api"), self.world.tags("web"), self.world.stage_tags()


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {**environ_without(), "DOCKER_CONFIG": str(cwd / "no-docker-config"), **(env or {})}
    return run_ci_env(*args, env=base, cwd=cwd)


def _digest(world: World, image: str, tag: str) -> str:
    _body, info = world.client.get_manifest(world.images_repo.child(image).path, tag)
    return info.digest


@pytest.fixture
def cluster(world: World, tmp_path: Path, kube_servers: Callable[..., KubeApi]) -> Cluster:
    """The shared scenario (``publish_scenario``), and workloads that use three tags cleanup would remove
    (``api:feature-a`` by tag, ``api:v1`` by digest, the missing commit's tag only through the digest a pod
    reports) and one stage directly. ``prod`` (namespace ``apps``) and ``staging`` (no namespace)."""
    scenario = publish_scenario(world, tmp_path / "project")
    api, stages = str(world.images_repo.child("api")), str(world.stages)
    prod = kube_servers(tokens={PROD_TOKEN}, objects=[
        workload("Deployment", "api-by-tag", "apps", [f"{api}:feature-a"]),
        workload("Deployment", "api-by-digest", "apps", [f"{api}@{_digest(world, 'api', 'v1')}"]),
    ])
    staging = kube_servers(tokens={STAGING_TOKEN}, objects=[
        # `main` has moved on since this pod started: it still runs the image the missing commit's tag holds
        pod("api-old", "jobs", [f"{api}:main"],
            image_ids=[f"docker-pullable://{api}@{_digest(world, 'api', MISSING_COMMIT)}"]),
        cronjob("stage-user", "jobs", [f"{stages}:{signature_of('orphan')}"]),
    ])
    config = write_kubeconfig(tmp_path / "kube" / "config", [
        Context("prod", prod.url, PROD_TOKEN, prod.ca_pem, namespace="apps"),
        Context("staging", staging.url, STAGING_TOKEN, staging.ca_pem),
    ])
    return Cluster(world, scenario.directory, scenario.first, scenario.second, prod, staging, config)


def test_tags_and_stages_in_use_are_kept_and_the_plan_names_the_workload(cluster: Cluster, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    result = run_cli("cleanup", *cluster.args(), "--report", str(report), cwd=tmp_path,
                     env={"KUBECONFIG": str(cluster.kubeconfig)})
    assert result.returncode == 0, result.stderr
    world = cluster.world
    assert world.tags("api") == {"main", "latest", "v2", cluster.first, cluster.second,
                                 "feature-a", "v1", MISSING_COMMIT}
    assert world.tags("web") == {"brand-new"}  # web:feature-a is used by nothing: removed
    assert world.stage_tags() == {signature_of(n) for n in ("main", "feat", "v1", "v2", "c1", "c2", "gone", "orphan")}
    reasons = {(d["image"], d["tag"]): (d["action"], d["reason"]) for d in json.loads(report.read_text())["decisions"]}
    assert reasons[("api", "feature-a")] == ("keep", "in use: prod/apps/Deployment/api-by-tag")
    assert reasons[("web", "feature-a")][0] == "delete"
    assert reasons[("api", "v1")] == ("keep", "in use: prod/apps/Deployment/api-by-digest")
    assert reasons[("api", MISSING_COMMIT)] == ("keep", "in use: staging/jobs/Pod/api-old")
    assert reasons[(None, signature_of("orphan"))] == ("keep", "in use: staging/jobs/CronJob/stage-user")
    assert reasons[(None, signature_of("gone"))] == ("keep", "used by a kept tag (signature)")
    basis = {(d["image"], d["tag"]): d["basis"] for d in json.loads(report.read_text())["decisions"]}
    assert basis[("api", "feature-a")] == {"rule": "in-use", "workloads": ["prod/apps/Deployment/api-by-tag"]}
    assert basis[(None, signature_of("orphan"))] == {"rule": "in-use", "workloads": ["staging/jobs/CronJob/stage-user"]}
    assert "in use: prod/apps/Deployment/api-by-tag" in result.stdout
    assert "ci-env: kubernetes: 2 contexts (prod, staging), 4 workloads, 5 images in use" in result.stderr
    for server, token in ((cluster.prod, PROD_TOKEN), (cluster.staging, STAGING_TOKEN)):
        assert len(server.list_calls()) == 8 and {c.token for c in server.calls} == {token}
        assert token not in result.stderr + result.stdout


def test_a_forbidden_kind_stops_cleanup_before_anything_is_removed(cluster: Cluster, tmp_path: Path) -> None:
    cluster.prod.forbidden.add("deployments")
    before = cluster.everything()
    result = run_cli("cleanup", *cluster.args(), cwd=tmp_path, env={"KUBECONFIG": str(cluster.kubeconfig)})
    assert result.returncode == 1
    assert cluster.everything() == before
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert "ci-env: error: cannot read Kubernetes, so cleanup stops before removing anything:\n" in result.stderr
    line = next(x for x in result.stderr.splitlines() if "context 'prod'" in x)
    assert "deployments (Deployment, apps/v1, all namespaces): 403 Forbidden" in line
    assert "grant its user get and list on deployments (API group apps) cluster-wide" in line
    assert "--kube-context NAME" in result.stderr and "--without-kube" in result.stderr
    assert PROD_TOKEN not in result.stderr


def test_without_kube_ignores_the_cluster(cluster: Cluster, tmp_path: Path) -> None:
    cluster.prod.forbidden.add("deployments")  # would stop cleanup if it were read
    result = run_cli("cleanup", *cluster.args(), cwd=tmp_path,
                     env={"KUBECONFIG": str(cluster.kubeconfig), "WERF_WITHOUT_KUBE": "1"})
    assert result.returncode == 0, result.stderr
    assert cluster.prod.calls == [] and cluster.staging.calls == []
    assert cluster.world.tags("api") == {"main", "latest", "v2", cluster.first, cluster.second}
    assert "kubernetes" not in result.stderr


def _imported(stderr: str) -> set[str]:
    """Top-level package names from ``-X importtime`` lines (``import time: self | cumulative | name``)."""
    return {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


def test_no_kubeconfig_is_one_note_and_kubernetes_is_not_imported(
    cluster: Cluster, tmp_path: Path, no_machine_kubeconfig: Path,
) -> None:
    dry = run_cli("cleanup", *cluster.args(), "--dry-run", cwd=tmp_path,
                  env={"KUBECONFIG": str(cluster.kubeconfig), "PYTHONPROFILEIMPORTTIME": "1"})
    assert dry.returncode == 0, dry.stderr
    assert "kubernetes" in _imported(dry.stderr)  # the check below can see the client being imported

    result = run_cli("cleanup", *cluster.args(), cwd=tmp_path, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert result.returncode == 0, result.stderr
    assert "kubernetes" not in _imported(result.stderr)
    notes = [line for line in result.stderr.splitlines() if "kubernetes:" in line]
    assert notes == [f"ci-env: kubernetes: no kubeconfig found (KUBECONFIG={no_machine_kubeconfig}): images running "
                     "in Kubernetes are not protected; pass --kube-config FILE to protect them, or --without-kube "
                     "to silence this"]
    assert cluster.world.tags("api") == {"main", "latest", "v2", cluster.first, cluster.second}


def test_kube_context_scans_only_that_context(cluster: Cluster, tmp_path: Path) -> None:
    report = tmp_path / "plan.json"
    result = run_cli("cleanup", *cluster.args(), "--dry-run", "--report", str(report), cwd=tmp_path,
                     env={"KUBECONFIG": str(cluster.kubeconfig), "WERF_KUBE_CONTEXT": "prod"})
    assert result.returncode == 0, result.stderr
    assert cluster.staging.calls == [] and len(cluster.prod.list_calls()) == 8
    actions = {d["tag"]: d["action"] for d in json.loads(report.read_text())["decisions"] if d["image"] == "api"}
    assert actions["feature-a"] == "keep" and actions[MISSING_COMMIT] == "delete"  # staging's pod was not read
    assert "kubernetes: 1 context (prod)" in result.stderr


def test_scan_context_namespace_only_lists_each_context_namespace(cluster: Cluster, tmp_path: Path) -> None:
    result = run_cli("cleanup", *cluster.args(), "--dry-run", "--scan-context-namespace-only",
                     "--kube-config", str(cluster.kubeconfig), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert {c.path.split("/namespaces/")[1].split("/")[0] for c in cluster.prod.list_calls()} == {"apps"}
    assert {c.path for c in cluster.staging.list_calls()} >= {
        "/api/v1/namespaces/default/pods", "/apis/apps/v1/namespaces/default/deployments",
        "/apis/batch/v1/namespaces/default/cronjobs"}
    assert len(cluster.staging.list_calls()) == 8
    assert "feature-a" in result.stdout and "would-remove" in result.stdout


def test_a_kubeconfig_without_the_kubernetes_package_stops_cleanup(cluster: Cluster, tmp_path: Path) -> None:
    shadow = tmp_path / "shadow" / "kubernetes"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'kubernetes'\", name='kubernetes')\n")
    before = cluster.everything()
    result = run_cli("cleanup", *cluster.args(), cwd=tmp_path,
                     env={"KUBECONFIG": str(cluster.kubeconfig), "PYTHONPATH": str(shadow.parent)})
    assert result.returncode == 1
    assert "kube extra (CI_ENV_EXTRAS=docker,kube" in result.stderr and "--without-kube" in result.stderr
    assert "Traceback" not in result.stderr
    assert cluster.everything() == before and cluster.prod.calls == []


@pytest.mark.parametrize("given", ["option", "variable"])
def test_kube_scan_namespaces_limits_the_scan__werf_cleanup_namespaces_scan_go(
    cluster: Cluster, tmp_path: Path, given: str
) -> None:
    """werf's --kube-scan-namespaces: only those namespaces are listed, in every context; a workload elsewhere
    protects nothing (its tag is planned for removal)."""
    env = {"KUBECONFIG": str(cluster.kubeconfig)}
    args = ["--kube-scan-namespaces", "jobs"] if given == "option" else []
    if given == "variable":
        env["WERF_KUBE_SCAN_NAMESPACES"] = "jobs"
    report = tmp_path / "plan.json"
    result = run_cli("cleanup", *cluster.args(), *args, "--dry-run", "--report", str(report), cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    for server in (cluster.prod, cluster.staging):
        paths = {c.path for c in server.list_calls()}
        assert paths and all("/namespaces/jobs/" in path for path in paths), paths
    decisions = {(d["image"], d["tag"]): d for d in json.loads(report.read_text())["decisions"]}
    assert decisions[("api", "feature-a")]["action"] == "delete"  # its Deployment is in namespace apps
    assert decisions[("api", "main")]["action"] == "keep"


def test_a_bad_kube_scan_namespace_is_a_usage_error_before_anything_is_read(cluster: Cluster, tmp_path: Path) -> None:
    result = run_cli("cleanup", *cluster.args(), "--kube-scan-namespaces", "Apps", cwd=tmp_path,
                     env={"KUBECONFIG": str(cluster.kubeconfig)})
    assert result.returncode == 2 and "--kube-scan-namespaces 'Apps'" in result.stderr
    assert "Traceback" not in result.stderr and cluster.prod.calls == [] and cluster.staging.calls == []
