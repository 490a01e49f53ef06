"""What runs in Kubernetes (``ci_env.cleanup.in_use``): the official client against the Kubernetes API test
server, through kubeconfigs the tests write; the requests each server received are asserted exactly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ci_env.cleanup.in_use import ImagesInUse, KubeSettings, Workload, scan, scan_namespaces
from ci_env.cleanup.kube_objects import ImageUse, parse_image, parse_image_id
from ci_env.errors import ConfigError, KubernetesError, UsageError
from ci_env.registry.reference import RepoAddress, parse_address
from tests.services.kubeapi import Context, KubeApi, controller, cronjob, pod, refused_url, write_kubeconfig

REG = "registry.example.com:5000/team"


def at(text: str) -> RepoAddress:
    """The repository ``text`` names, as cleanup's tags and decisions carry it."""
    address = parse_address(text)
    assert address is not None
    return address
D1, D2, D3 = ("sha256:" + c * 64 for c in "123")
LIST_PATHS = {
    "/api/v1/pods", "/api/v1/replicationcontrollers", "/apis/apps/v1/deployments", "/apis/apps/v1/statefulsets",
    "/apis/apps/v1/daemonsets", "/apis/apps/v1/replicasets", "/apis/batch/v1/jobs", "/apis/batch/v1/cronjobs",
}

Servers = Callable[..., KubeApi]


def _every_kind(namespace: str) -> list[dict[str, object]]:
    return [
        controller("Deployment", "api", namespace, [f"{REG}/api:main"], init=[f"{REG}/migrate:v3"]),
        controller("StatefulSet", "db", namespace, [f"{REG}/db:v1"]),
        controller("DaemonSet", "agent", namespace, [f"{REG}/agent@{D1}"]),
        controller("ReplicaSet", "api-7d9f", namespace, [f"{REG}/api:main"]),
        controller("ReplicationController", "legacy", namespace, [f"{REG}/legacy:1.0"]),
        controller("Job", "migrate-now", namespace, [f"{REG}/job:running"]),
        cronjob("nightly", namespace, [f"{REG}/batch:nightly"], init=[f"{REG}/prep:2"]),
        pod("api-7d9f-abcde", namespace, [f"{REG}/api:main"], ephemeral=[f"{REG}/debug:tools"],
            image_ids=[f"docker-pullable://{REG}/api@{D2}"]),
    ]


@pytest.fixture
def two_clusters(kube_servers: Servers, tmp_path: Path) -> tuple[KubeApi, KubeApi, Path]:
    """``prod`` (namespace ``apps``) and ``staging`` (no namespace) on two servers, in one kubeconfig."""
    prod = kube_servers(objects=_every_kind("apps"), tokens={"prod-token-x1"})
    staging = kube_servers(objects=[pod("web-0", "web", ["nginx"])], tokens={"staging-token-y2"})
    config = write_kubeconfig(tmp_path / "kube" / "config", [
        Context("prod", prod.url, "prod-token-x1", prod.ca_pem, namespace="apps"),
        Context("staging", staging.url, "staging-token-y2", staging.ca_pem),
    ])
    return prod, staging, config


def _settings(config: Path, **kw: object) -> KubeSettings:
    return KubeSettings(kube_config=(config,), **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------- image strings


@pytest.mark.parametrize(("text", "expected"), [
    ("nginx", ImageUse("docker.io/library/nginx", "latest")),
    ("nginx:1.25", ImageUse("docker.io/library/nginx", "1.25")),
    ("library/nginx:1.25", ImageUse("docker.io/library/nginx", "1.25")),
    ("index.docker.io/library/nginx", ImageUse("docker.io/library/nginx", "latest")),
    ("acme/app:v1", ImageUse("docker.io/acme/app", "v1")),
    ("Registry.Example.com:5000/a/b", ImageUse("registry.example.com:5000/a/b", "latest")),
    ("registry.example.com:443/a/b:v1", ImageUse("registry.example.com/a/b", "v1")),
    ("index.docker.io:443/library/nginx", ImageUse("docker.io/library/nginx", "latest")),
    ("registry-1.docker.io/acme/app:v1", ImageUse("docker.io/acme/app", "v1")),
    (f"127.0.0.1:5000/a/b@{D1}", ImageUse("127.0.0.1:5000/a/b", None, D1)),
    (f"127.0.0.1:5000/a/b:v2@{D1}", ImageUse("127.0.0.1:5000/a/b", "v2", D1)),
    ("NotAnImage:x", None),
    ("", None),
])
def test_kubernetes_image_strings_are_normalised_like_cleanup_repositories(text: str, expected: object) -> None:
    assert parse_image(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    (f"docker-pullable://{REG}/api@{D1}", ImageUse(f"{REG}/api", None, D1)),
    (f"{REG}/api@{D1}", ImageUse(f"{REG}/api", None, D1)),
    (f"docker.io/library/nginx@{D1}", ImageUse("docker.io/library/nginx", None, D1)),
    (f"docker://{D1}", ImageUse("", None, D1)),
    (D1, ImageUse("", None, D1)),
    ("", None),
    (f"{REG}/api:main", None),
])
def test_pod_status_image_ids_give_the_running_digest(text: str, expected: object) -> None:
    assert parse_image_id(text) == expected


# ---------------------------------------------------------------- scanning


def test_every_kind_of_every_context_is_read_once_with_its_own_token(
    two_clusters: tuple[KubeApi, KubeApi, Path],
) -> None:
    prod, staging, config = two_clusters
    found = scan(_settings(config), {})
    for server, token in ((prod, "prod-token-x1"), (staging, "staging-token-y2")):
        calls = server.list_calls()
        assert sorted(c.path for c in calls) == sorted(LIST_PATHS)  # one call per kind, cluster-wide
        assert {c.authorization for c in server.calls} == {f"Bearer {token}"}
        assert all(c.query == {"limit": "500"} for c in calls)
    assert found.contexts == ("prod", "staging")
    assert found.summary() == "kubernetes: 2 contexts (prod, staging), 9 workloads, 11 images in use"

    def users(repo: str, tag: str, digest: str | None = None) -> list[str]:
        return [str(w) for w in found.users(at(repo), tag, digest)]

    assert users(f"{REG}/api", "main") == ["prod/apps/Deployment/api", "prod/apps/ReplicaSet/api-7d9f",
                                           "prod/apps/Pod/api-7d9f-abcde"]
    assert users(f"{REG}/migrate", "v3") == ["prod/apps/Deployment/api"]  # init container
    assert users(f"{REG}/debug", "tools") == ["prod/apps/Pod/api-7d9f-abcde"]  # ephemeral container
    assert users(f"{REG}/batch", "nightly") == users(f"{REG}/prep", "2") == ["prod/apps/CronJob/nightly"]
    assert users(f"{REG}/db", "v1") == ["prod/apps/StatefulSet/db"]
    assert users(f"{REG}/legacy", "1.0") == ["prod/apps/ReplicationController/legacy"]
    assert users(f"{REG}/job", "running") == ["prod/apps/Job/migrate-now"]
    assert users(f"{REG}/agent", "any-tag", D1) == ["prod/apps/DaemonSet/agent"]  # by repo@digest
    assert users(f"{REG}/api", "moved-since", D2) == ["prod/apps/Pod/api-7d9f-abcde"]  # the digest that runs
    assert users(f"{REG}/other", "x", D2) == []  # a digest protects its own repository only
    assert users("docker.io/library/nginx", "latest") == ["staging/web/Pod/web-0"]
    assert users(f"{REG}/api", "v9", D3) == []


SPELLINGS = [  # (workload's image, repository as cleanup is given it, tag, digest): the same image
    ("registry.example.com:443/app:v1", "registry.example.com/app", "v1", None),
    ("registry.example.com/app:v1", "registry.example.com:443/app", "v1", None),
    ("Registry.Example.com:443/app:v1", "registry.example.com:443/app", "v1", None),
    ("plain.example.com:80/app:v1", "plain.example.com/app", "v1", None),
    ("docker.io/library/x:1", "x", "1", None),
    ("x:1", "docker.io/library/x", "1", None),
    ("x", "index.docker.io/library/x", "latest", None),
    ("index.docker.io:443/library/x:1", "docker.io/x", "1", None),
    ("registry-1.docker.io/acme/app:2", "acme/app", "2", None),
    (f"registry.example.com:443/app:v1@{D1}", "registry.example.com/app", "v1", None),
    (f"registry.example.com:443/app:v1@{D1}", "registry.example.com/app", "moved", D1),
    (f"registry.example.com/app@{D2}", "registry.example.com:443/app", "any", D2),
]


def test_every_spelling_of_an_image_protects_the_tag_and_digest_it_means(
    kube_servers: Servers, tmp_path: Path,
) -> None:
    server = kube_servers(tokens={"t"}, objects=[
        pod(f"p{i}", "ns", [image]) for i, (image, _repo, _tag, _digest) in enumerate(SPELLINGS)])
    config = write_kubeconfig(tmp_path / "config", [Context("c", server.url, "t", server.ca_pem)])
    found = scan(_settings(config), {})
    for i, (image, repository, tag, digest) in enumerate(SPELLINGS):
        assert Workload("c", "ns", "Pod", f"p{i}") in found.users(at(repository), tag, digest), (image, repository)
    assert found.digests(at("registry.example.com:443/app")) == {D1, D2}
    # a different port, host or path is another repository
    assert found.users(at("registry.example.com:5000/app"), "v1", None) == ()
    assert found.users(at("other.example.com/app"), "v1", None) == ()
    assert found.users(at("docker.io/acme/x"), "1", None) == ()


def test_a_workload_running_a_local_stage_protects_it_by_the_name_kubernetes_gives_it() -> None:
    from ci_env.cleanup import local_stages

    stage = "a" * 64
    running = Workload("c", "ns", "Pod", "p")
    uses = [(running, use) for use in (parse_image(f"ci-env-stages/proj:{stage}"),
                                       parse_image(f"docker.io/ci-env-stages/proj@{D1}")) if use is not None]
    found = ImagesInUse.index(uses, ["c"], 1)
    local = local_stages.repository("proj")
    assert found.users(local, stage, None) == (running,)
    assert found.digests(local) == {D1}
    assert found.users(local_stages.repository("other"), stage, None) == ()
    assert found.users(at("registry.example.com/ci-env-stages/proj"), stage, None) == ()


def test_lists_are_paged_with_limit_and_continue(kube_servers: Servers, tmp_path: Path) -> None:
    pods = [pod(f"p{i}", "big", [f"{REG}/app:{i}"]) for i in range(1203)]
    server = kube_servers(objects=pods, tokens={"t"})
    config = write_kubeconfig(tmp_path / "config", [Context("big", server.url, "t", server.ca_pem)])
    found = scan(_settings(config), {})
    pod_calls = [c for c in server.list_calls() if c.path == "/api/v1/pods"]
    assert [c.query.get("limit") for c in pod_calls] == ["500", "500", "500"]
    assert next(c.query.get("continue") for c in pod_calls) is None
    assert all(c.query.get("continue") for c in pod_calls[1:])
    assert found.objects == 1203
    assert [str(w) for w in found.users(at(f"{REG}/app"), "1202", None)] == ["big/big/Pod/p1202"]


def test_finished_jobs_protect_nothing_running_ones_do(kube_servers: Servers, tmp_path: Path) -> None:
    server = kube_servers(tokens={"t"}, objects=[
        controller("Job", "done", "ns", [f"{REG}/job:done"], conditions=[{"type": "Complete", "status": "True"}]),
        controller("Job", "failed", "ns", [f"{REG}/job:failed"], conditions=[{"type": "Failed", "status": "True"}]),
        controller("Job", "retrying", "ns", [f"{REG}/job:retrying"],
                   conditions=[{"type": "Failed", "status": "False"}]),
    ])
    config = write_kubeconfig(tmp_path / "config", [Context("c", server.url, "t", server.ca_pem)])
    found = scan(_settings(config), {})
    assert found.users(at(f"{REG}/job"), "done", None) == ()
    assert found.users(at(f"{REG}/job"), "failed", None) == ()
    assert found.users(at(f"{REG}/job"), "retrying", None) == (Workload("c", "ns", "Job", "retrying"),)


def test_namespace_only_lists_each_context_namespace(two_clusters: tuple[KubeApi, KubeApi, Path]) -> None:
    prod, staging, config = two_clusters
    found = scan(_settings(config, namespace_only=True), {})
    prefixes = {"/api/v1/": "/api/v1/namespaces/{}/", "/apis/apps/v1/": "/apis/apps/v1/namespaces/{}/",
                "/apis/batch/v1/": "/apis/batch/v1/namespaces/{}/"}

    def namespaced(namespace: str) -> set[str]:
        out = set()
        for path in LIST_PATHS:
            for prefix, template in prefixes.items():
                if path.startswith(prefix):
                    out.add(template.format(namespace) + path[len(prefix):])
        return out

    assert {c.path for c in prod.list_calls()} == namespaced("apps")
    assert {c.path for c in staging.list_calls()} == namespaced("default")  # the context names no namespace
    assert found.users(at("docker.io/library/nginx"), "latest", None) == ()  # web-0 is in namespace web
    assert found.users(at(f"{REG}/api"), "main", None)


def test_kube_context_restricts_to_one_context(two_clusters: tuple[KubeApi, KubeApi, Path]) -> None:
    prod, staging, config = two_clusters
    found = scan(_settings(config, kube_context="staging"), {})
    assert prod.calls == [] and len(staging.list_calls()) == len(LIST_PATHS)
    assert found.contexts == ("staging",)
    with pytest.raises(UsageError) as info:
        scan(_settings(config, kube_context="qa"), {})
    assert "'qa'" in info.value.message and "'prod', 'staging'" in info.value.message


def test_kubeconfig_is_found_through_kubeconfig_list_then_home(
    two_clusters: tuple[KubeApi, KubeApi, Path], tmp_path: Path, kube_servers: Servers,
) -> None:
    _prod, _staging, config = two_clusters
    third = kube_servers(objects=[pod("q", "qa", [f"{REG}/qa:1"])], tokens={"qa-token"})
    extra = write_kubeconfig(tmp_path / "qa.yaml", [Context("qa", third.url, "qa-token", third.ca_pem)])
    listed = scan(KubeSettings(), {"KUBECONFIG": f"{tmp_path / 'absent'}:{config}:{extra}"})
    assert listed.contexts == ("prod", "staging", "qa")
    assert listed.users(at(f"{REG}/qa"), "1", None) == (Workload("qa", "qa", "Pod", "q"),)

    home = tmp_path / "home"
    write_kubeconfig(home / ".kube" / "config", [Context("qa", third.url, "qa-token", third.ca_pem)])
    assert scan(KubeSettings(), {"HOME": str(home)}).contexts == ("qa",)


def test_no_kubeconfig_is_a_note_and_no_protection(tmp_path: Path) -> None:
    found = scan(KubeSettings(), {"HOME": str(tmp_path)})
    assert found.users(at("docker.io/library/nginx"), "latest", None) == ()
    assert found.note is not None and str(tmp_path / ".kube" / "config") in found.note
    assert "not protected" in found.note and "--without-kube" in found.note
    assert found.summary() == found.note
    absent = scan(KubeSettings(), {"KUBECONFIG": str(tmp_path / "nothing")})
    assert absent.note is not None and "KUBECONFIG=" in absent.note


def test_without_kube_reads_nothing(two_clusters: tuple[KubeApi, KubeApi, Path]) -> None:
    prod, staging, config = two_clusters
    found = scan(_settings(config, without_kube=True), {})
    assert found == ImagesInUse() and found.summary() is None
    assert prod.calls == [] and staging.calls == []


def test_a_forbidden_kind_stops_the_scan_naming_context_kind_and_fix(
    two_clusters: tuple[KubeApi, KubeApi, Path],
) -> None:
    _prod, staging, config = two_clusters
    staging.forbidden.add("cronjobs")
    with pytest.raises(KubernetesError) as info:
        scan(_settings(config), {})
    message = info.value.message
    assert info.value.exit_code == 1
    assert "context 'staging'" in message and "cronjobs (CronJob, batch/v1, all namespaces)" in message
    assert "403 Forbidden" in message and "get and list on cronjobs (API group batch) cluster-wide" in message
    assert "--kube-context" in message and "--without-kube" in message
    assert "prod" not in message  # prod was read
    assert "token" not in message.lower()


def test_an_unreachable_context_and_a_refused_token_are_named(
    two_clusters: tuple[KubeApi, KubeApi, Path], tmp_path: Path,
) -> None:
    prod, staging, _config = two_clusters
    config = write_kubeconfig(tmp_path / "faulty", [
        Context("prod", prod.url, "prod-token-x1", prod.ca_pem),
        Context("gone", refused_url(), "gone-token", prod.ca_pem),
        Context("expired", staging.url, "expired-token-z3", staging.ca_pem),
    ])
    with pytest.raises(KubernetesError) as info:
        scan(_settings(config), {})
    lines = info.value.message.splitlines()
    gone = [line for line in lines if "'gone'" in line]
    expired = [line for line in lines if "'expired'" in line]
    assert len(gone) == 1 and "every kind: connection refused" in gone[0]
    assert len(expired) == 1 and "every kind: 401 Unauthorized" in expired[0] and "renew" in expired[0]
    assert not any("'prod'" in line for line in lines)
    assert "gone-token" not in info.value.message and "expired-token-z3" not in info.value.message


def test_a_server_with_an_untrusted_certificate_is_a_tls_error(
    two_clusters: tuple[KubeApi, KubeApi, Path], tmp_path: Path,
) -> None:
    prod, staging, _config = two_clusters
    config = write_kubeconfig(tmp_path / "wrong-ca", [Context("prod", prod.url, "prod-token-x1", staging.ca_pem)])
    with pytest.raises(KubernetesError) as info:
        scan(_settings(config), {})
    assert "context 'prod'" in info.value.message and "every kind" in info.value.message
    assert "certificate" in info.value.message.lower() and prod.calls == []


def test_bad_kubeconfigs_are_usage_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.write_text("clusters: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        scan(_settings(broken), {})
    assert info.value.exit_code == 2 and "--kube-config" in info.value.message
    with pytest.raises(UsageError) as missing:
        scan(_settings(tmp_path / "missing"), {})
    assert "is not a file" in missing.value.message
    empty = tmp_path / "empty"
    empty.write_text("")
    assert scan(_settings(empty), {}).note is not None


def test_a_context_whose_configuration_cannot_be_loaded_is_named(
    two_clusters: tuple[KubeApi, KubeApi, Path], tmp_path: Path,
) -> None:
    import yaml

    _prod, _staging, config = two_clusters
    document = yaml.safe_load(config.read_text())
    document["contexts"].append({"name": "orphan", "context": {"cluster": "nowhere", "user": "prod-user"}})
    broken = tmp_path / "broken-context"
    broken.write_text(yaml.safe_dump(document))
    with pytest.raises(KubernetesError) as info:
        scan(_settings(broken), {})
    lines = info.value.message.splitlines()
    assert [line for line in lines if line.startswith("  ")] == [
        next(line for line in lines if "context 'orphan'" in line)]
    assert "its configuration cannot be loaded" in info.value.message


def test_kube_context_without_a_kubeconfig_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        scan(KubeSettings(kube_context="prod"), {"HOME": str(tmp_path)})
    assert "--kube-context 'prod'" in info.value.message and "--kube-config" in info.value.message
    empty = tmp_path / "empty"
    empty.write_text("")
    with pytest.raises(UsageError):
        scan(_settings(empty, kube_context="prod"), {})


# ---------------------------------------------------------------- in the cluster, and chosen namespaces


def _namespaced(namespace: str) -> set[str]:
    """LIST_PATHS as the namespaced list endpoints of ``namespace``."""
    out = set()
    for path in LIST_PATHS:
        group, resource = path.rsplit("/", 1)
        out.add(f"{group}/namespaces/{namespace}/{resource}")
    return out


def _pod_identity(directory: Path, server: KubeApi, token: str, namespace: str | None = "runner-ns") -> Path:
    """A service account as Kubernetes mounts it in a pod: token, ca.crt, namespace."""
    directory.mkdir(parents=True)
    (directory / "token").write_text(token)
    (directory / "ca.crt").write_bytes(server.ca_pem)
    if namespace is not None:
        (directory / "namespace").write_text(namespace)
    return directory


def _pod_env(server: KubeApi, tmp_path: Path) -> dict[str, str]:
    port = server.url.rsplit(":", 1)[1]
    return {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": port,
            "KUBECONFIG": str(tmp_path / "absent"), "HOME": str(tmp_path / "home")}


def test_in_a_pod_without_kubeconfig_the_service_account_is_used__werf_cleanup_namespaces_scan_test_go(
    kube_servers: Servers, tmp_path: Path,
) -> None:
    """As kubectl (and werf, whose cleanup_namespaces_scan_test.go "scans all namespaces by default for in-cluster
    context"): no kubeconfig, KUBERNETES_SERVICE_HOST/PORT and a mounted token: every namespace is read with the
    service account's token, and what runs there is protected."""
    server = kube_servers(objects=_every_kind("apps"), tokens={"sa-token-z3"})
    account = _pod_identity(tmp_path / "sa", server, "sa-token-z3")
    found = scan(KubeSettings(service_account_dir=account), _pod_env(server, tmp_path))
    assert found.note is None and found.contexts == ("inClusterContext",)
    assert sorted(c.path for c in server.list_calls()) == sorted(LIST_PATHS)
    assert {c.token for c in server.calls} == {"sa-token-z3"}
    assert [str(w) for w in found.users(at(f"{REG}/db"), "v1", None)] == ["inClusterContext/apps/StatefulSet/db"]


def test_in_a_pod_namespace_only_reads_the_pods_namespace__werf_cleanup_namespaces_scan_go(
    kube_servers: Servers, tmp_path: Path,
) -> None:
    server = kube_servers(objects=[*_every_kind("runner-ns"), pod("web-0", "web", ["nginx"])], tokens={"sa"})
    account = _pod_identity(tmp_path / "sa", server, "sa", namespace="runner-ns")
    found = scan(KubeSettings(service_account_dir=account, namespace_only=True), _pod_env(server, tmp_path))
    assert {c.path for c in server.list_calls()} == _namespaced("runner-ns")
    assert found.users(at("docker.io/library/nginx"), "latest", None) == ()
    assert found.users(at(f"{REG}/db"), "v1", None)


def test_without_a_mounted_token_a_pod_protects_nothing_and_says_so(kube_servers: Servers, tmp_path: Path) -> None:
    """KUBERNETES_SERVICE_HOST alone (a pod whose service account token is not mounted) is no cluster to read, as
    for kubectl: the note says images are not protected."""
    server = kube_servers(objects=_every_kind("apps"), tokens={"sa"})
    found = scan(KubeSettings(service_account_dir=tmp_path / "none"), _pod_env(server, tmp_path))
    assert server.calls == [] and found.note is not None and "not protected" in found.note


def test_a_kubeconfig_wins_over_the_service_account(
    two_clusters: tuple[KubeApi, KubeApi, Path], kube_servers: Servers, tmp_path: Path,
) -> None:
    prod, _staging, config = two_clusters
    in_pod = kube_servers(objects=[], tokens={"sa"})
    account = _pod_identity(tmp_path / "sa", in_pod, "sa")
    found = scan(KubeSettings(service_account_dir=account), {**_pod_env(in_pod, tmp_path), "KUBECONFIG": str(config)})
    assert found.contexts == ("prod", "staging") and in_pod.calls == [] and prod.list_calls()


def test_in_a_pod_an_other_kube_context_is_a_usage_error(kube_servers: Servers, tmp_path: Path) -> None:
    server = kube_servers(objects=[], tokens={"sa"})
    account = _pod_identity(tmp_path / "sa", server, "sa")
    with pytest.raises(UsageError) as info:
        scan(KubeSettings(service_account_dir=account, kube_context="prod"), _pod_env(server, tmp_path))
    assert "'inClusterContext'" in info.value.message and server.calls == []
    chosen = scan(KubeSettings(service_account_dir=account, kube_context="inClusterContext"),
                  _pod_env(server, tmp_path))
    assert chosen.contexts == ("inClusterContext",)


def test_kube_scan_namespaces_lists_only_those_in_each_context__werf_cleanup_namespaces_scan_test_go(
    two_clusters: tuple[KubeApi, KubeApi, Path],
) -> None:
    """werf's "uses explicit namespaces when provided": --kube-scan-namespaces wins over
    --scan-context-namespace-only, in every context."""
    prod, staging, config = two_clusters
    found = scan(_settings(config, namespace_only=True, scan_namespaces=("web", "jobs")), {})
    for server in (prod, staging):
        assert {c.path for c in server.list_calls()} == _namespaced("web") | _namespaced("jobs")
        assert len(server.list_calls()) == 2 * len(LIST_PATHS)
    assert [str(w) for w in found.users(at("docker.io/library/nginx"), "latest", None)] == ["staging/web/Pod/web-0"]
    assert found.users(at(f"{REG}/api"), "main", None) == ()  # namespace apps is not read


@pytest.mark.parametrize("value", ["Apps", "apps_prod", "-apps", "a" * 64])
def test_a_kube_scan_namespace_kubernetes_would_refuse_is_a_usage_error(value: str) -> None:
    with pytest.raises(UsageError) as info:
        scan_namespaces([f"jobs,{value}"])
    assert repr(value) in info.value.message and "--kube-scan-namespaces" in info.value.message


def test_kube_scan_namespaces_values_split_on_commas_and_spaces() -> None:
    assert scan_namespaces(["apps,jobs", "web jobs", ""]) == ("apps", "jobs", "web")
