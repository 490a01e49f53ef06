"""`ci-env cleanup --rules FILE` end to end on the real registry: repositories a foreign builder filled (manifests
pushed directly, no ci-env record or label), selected by namespace through the catalog, cleaned as
docs/migrating.md's GitLab cleanup policy example says."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from ci_env.registry.client import RegistryClient
from tests.cli import environ_without, run_ci_env
from tests.graphs.shapes import push_index_of
from tests.registry_client.images import pulls, push_image
from tests.services.kubeapi import Context, controller, pod, write_kubeconfig
from tests.services.registry import RegistryService
from tests.vendors.servers import TOKEN as GITHUB_TOKEN
from tests.vendors.servers import GitHubPackages

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "schemas" / "cleanup-report.schema.json").read_text())

#: docs/migrating.md, "GitLab cleanup policy": keep_n 3, older_than 90d, name_regex '.*', name_regex_keep 'v.+'
GITLAB_RULES = """\
version: 1
repositories:
- namespace: {group}            # every project of the group
  rules:
  - tags: {{include: ['.*'], exclude: [latest, 'v.+']}}
    keep: {{last: 3}}
    remove: {{olderThan: 90d}}
"""

#: app's tags -> days since their image was built (each its own image)
APP_AGES = {"latest": 200, "v1.0": 400, "dev-1": 100, "dev-2": 95, "dev-3": 91, "dev-4": 60, "dev-5": 5}
#: what GitLab's policy removes of them: beyond the 3 most recent (multi, dev-5, dev-4) and older than 90 days;
#: old-multi is an index of 120-day-old platforms; stale-arm, on a platform manifest of the kept multi, stays
REMOVED = {"dev-1", "dev-2", "dev-3", "old-multi"}


def ago(days: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(days=days)).replace(microsecond=0).isoformat().replace(
        "+00:00", "Z")


@dataclass
class Filled:
    client: RegistryClient
    host: str
    group: str
    multi_children: list[str]

    def tags(self, name: str) -> set[str]:
        return set(self.client.list_tags(f"{self.group}/{name}"))


@pytest.fixture
def filled(registry_open: RegistryService) -> Filled:
    """``GROUP/app`` and ``GROUP/api`` as buildx or kaniko leave them, and ``OTHER/app`` outside the group."""
    client = RegistryClient(registry_open.host, docker_config=Path("/nonexistent"))
    group = f"grp{uuid.uuid4().hex[:8]}"
    app = f"{group}/app"
    for tag, days in APP_AGES.items():
        push_image(client, app, [tag], created=ago(days))
    children = [push_image(client, app, created=ago(300)).digest for _ in range(2)]
    client.put_manifest(app, "stale-arm", *_body(client, app, children[1]))  # a tag on a kept image's platform
    fresh = push_image(client, app, created=ago(2)).digest  # an index's age is its first platform's: 2 days
    push_index_of(client, app, [fresh, *children], ["multi"])
    old = [push_image(client, app, created=ago(120)).digest for _ in range(2)]
    push_index_of(client, app, old, ["old-multi"])
    for tag, days in {"dev-1": 200, "dev-2": 1}.items():
        push_image(client, f"{group}/api", [tag], created=ago(days))
    push_image(client, f"other{group}/app", ["dev-1"], created=ago(500))
    return Filled(client, registry_open.host, group, [fresh, *children])


def _body(client: RegistryClient, path: str, digest: str) -> tuple[bytes, str]:
    body, info = client.get_manifest(path, digest)
    return body, info.media_type


def run_cli(*args: str, cwd: Path, **extra: str) -> tuple[int, str, str]:
    env = {**environ_without(), "DOCKER_CONFIG": str(cwd / "no-docker-config"), "XDG_STATE_HOME": str(cwd / "state"),
           "KUBECONFIG": str(cwd / "no-kubeconfig"), **extra}
    done = run_ci_env(*args, env=env, cwd=cwd)
    return done.returncode, done.stdout, done.stderr


def test_rules_file_cleans_a_foreign_builders_namespace_as_the_migration_page_says(
        filled: Filled, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(GITLAB_RULES.format(group=filled.group))
    before = {name: filled.tags(name) for name in ("app", "api")}
    report = tmp_path / "dry.json"
    code, out, err = run_cli("cleanup", "--rules", str(rules), "--registry", filled.host, "--dry-run",
                             "--report", str(report), cwd=tmp_path)
    assert code == 0, err
    assert {name: filled.tags(name) for name in ("app", "api")} == before  # a dry run removes nothing
    assert "2 repositories" in err and "dev-1" in out
    document = json.loads(report.read_text())
    jsonschema.validate(document, SCHEMA)
    app = f"{filled.host}/{filled.group}/app"
    decisions = {(d["repository"], d["tag"]): d for d in document["decisions"]}
    would = {tag for (repo, tag), d in decisions.items() if repo == app and d["outcome"] == "would-remove"}
    assert would == REMOVED
    dev1 = decisions[(app, "dev-1")]
    assert dev1["basis"] == {"rule": "retention-rule", "number": 1, "line": 5}
    assert dev1["age_source"] == "config" and dev1["published"].startswith(ago(100)[:10])
    assert "beyond the 3 most recent tags of rule #1 (line 5), older than 90d" in dev1["reason"]
    assert "created" in dev1["reason"] and "by the image config" in dev1["reason"]
    stale = decisions[(app, "stale-arm")]
    assert stale["action"] == "keep" and stale["basis"]["rule"] == "graph"
    assert "platform manifest of kept tag multi" in stale["reason"]
    assert decisions[(app, "latest")]["basis"]["rule"] == "no-rule"
    api = f"{filled.host}/{filled.group}/api"
    assert decisions[(api, "dev-1")]["action"] == "keep"  # among api's own 3 most recent
    assert not any(repo.startswith(f"{filled.host}/other") for repo, _ in decisions)

    report = tmp_path / "report.json"
    summary, page = tmp_path / "summary.md", tmp_path / "report.html"
    code, _out, err = run_cli("cleanup", "--rules", str(rules), "--registry", filled.host, "--report", str(report),
                              "--html-report", str(page), cwd=tmp_path, GITHUB_STEP_SUMMARY=str(summary))
    assert code == 0, err
    assert filled.tags("app") == before["app"] - REMOVED
    assert f"{filled.group}/app" in summary.read_text() and "dev-1" in summary.read_text()
    assert "dev-1" in page.read_text()
    assert filled.tags("api") == before["api"]
    assert filled.client.list_tags(f"other{filled.group}/app") == ["dev-1"]
    assert pulls(filled.client, f"{filled.group}/app", "multi")  # every platform manifest of the kept index
    assert pulls(filled.client, f"{filled.group}/app", "stale-arm")
    document = json.loads(report.read_text())
    jsonschema.validate(document, SCHEMA)
    assert document["summary"]["removed"] == len(REMOVED) and document["summary"]["failed"] == 0


def test_rules_as_options_with_keep_tag(filled: Filled, tmp_path: Path) -> None:
    code, _out, err = run_cli("cleanup", "--registry", filled.host, "--repository", f"{filled.group}/app",
                              "--rule", "exclude=latest;exclude=v.+;keep-last=3;older-than=90d",
                              "--keep-tag", "dev-2", cwd=tmp_path)
    assert code == 0, err
    assert filled.tags("app") == set(APP_AGES) - {"dev-1", "dev-3"} | {"multi", "stale-arm"}


@pytest.mark.parametrize(("text", "where"), [
    ("version: 1\nrepositories:\n- glob: 'a/*'\n  rules:\n  - keep: {last: ten}\n", ":5:"),
    ("version: 1\nrepositories:\n- glob: 'a/*'\n  rules:\n  - tags: {include: ['(']}\n    keep: all\n", ":5:"),
])
def test_bad_rules_file_exits_2_with_file_and_line_and_removes_nothing(
        filled: Filled, tmp_path: Path, text: str, where: str) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(text.replace("a/*", f"{filled.group}/*"))
    before = filled.tags("app")
    code, _out, err = run_cli("cleanup", "--rules", str(rules), "--registry", filled.host, cwd=tmp_path)
    assert code == 2, err
    assert f"{rules}{where}" in err and "Traceback" not in err
    assert filled.tags("app") == before


def test_a_glob_without_a_registry_is_a_usage_error(tmp_path: Path) -> None:
    code, _out, err = run_cli("cleanup", "--repository", "team/*", "--rule", "keep-last=3", cwd=tmp_path)
    assert code == 2
    assert "names no registry: pass --registry HOST" in err and "Traceback" not in err


def test_shards_split_the_repositories_disjointly_and_their_reports_merge(
        registry_open: RegistryService, tmp_path: Path) -> None:
    client = RegistryClient(registry_open.host, docker_config=Path("/nonexistent"))
    from ci_env.cleanup.shards import shard_of

    while True:  # a group whose 8 repositories give each of the 3 shards some (most do)
        group = f"shd{uuid.uuid4().hex[:8]}"
        names = [f"{group}/svc-{n}" for n in range(8)]
        if len({shard_of(f"{registry_open.host}/{name}", 3) for name in names}) == 3:
            break
    for name in names:
        push_image(client, name, ["old"], created=ago(100))
        push_image(client, name, ["new"], created=ago(1))
    args = ["cleanup", "--registry", registry_open.host, "--repository", f"{group}/", "--rule", "keep-last=1"]
    reports = []
    for index in (1, 2, 3):
        report = tmp_path / f"shard-{index}.json"
        code, _out, err = run_cli(*args, "--shard", f"{index}/3", "--report", str(report), cwd=tmp_path)
        assert code == 0, err
        reports.append(report)
    handled = [{d["repository"] for d in json.loads(r.read_text())["decisions"]} for r in reports]
    assert handled == [{f"{registry_open.host}/{n}" for n in names if shard_of(f"{registry_open.host}/{n}", 3) == i}
                       for i in (1, 2, 3)]
    assert sum(len(h) for h in handled) == len(names)  # exactly one shard each
    assert set().union(*handled) == {f"{registry_open.host}/{name}" for name in names}
    assert all(client.list_tags(name) == ["new"] for name in names)

    merged = tmp_path / "merged.json"
    code, _out, err = run_cli("report", "merge", *map(str, reports), "-o", str(merged), cwd=tmp_path)
    assert code == 0, err
    document = json.loads(merged.read_text())
    jsonschema.validate(document, SCHEMA)
    assert document["summary"]["removed"] == len(names) and document["summary"]["kept"] == len(names)
    assert {(d["repository"], d["tag"], d["outcome"]) for d in document["decisions"]} == {
        (f"{registry_open.host}/{name}", tag, outcome) for name in names
        for tag, outcome in (("old", "removed"), ("new", "kept"))}

    code, _out, err = run_cli("report", "merge", str(reports[0]), str(reports[0]), "-o", str(tmp_path / "x.json"),
                              cwd=tmp_path)
    assert code == 2 and "shard 1/3 is given twice" in err and not (tmp_path / "x.json").exists()


def test_gitlab_parallel_variables_choose_the_shard(registry_open: RegistryService, tmp_path: Path) -> None:
    client = RegistryClient(registry_open.host, docker_config=Path("/nonexistent"))
    group = f"par{uuid.uuid4().hex[:8]}"
    names = [f"{group}/svc-{n}" for n in range(6)]
    for name in names:
        push_image(client, name, ["old"], created=ago(100))
    report = tmp_path / "r.json"
    env = {**environ_without(), "DOCKER_CONFIG": str(tmp_path / "none"), "XDG_STATE_HOME": str(tmp_path / "state"),
           "KUBECONFIG": str(tmp_path / "none"), "CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "2"}
    done = run_ci_env("cleanup", "--registry", registry_open.host, "--repository", f"{group}/", "--rule",
                      "keep-last=0", "--dry-run", "--report", str(report), env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    from ci_env.cleanup.shards import shard_of

    mine = {f"{registry_open.host}/{n}" for n in names if shard_of(f"{registry_open.host}/{n}", 2) == 2}
    assert {d["repository"] for d in json.loads(report.read_text())["decisions"]} == mine
    assert "shard 2/2" in done.stderr


@pytest.mark.parametrize("shard", ["3/2", "0/2", "two"])
def test_a_bad_shard_is_a_usage_error(shard: str, tmp_path: Path) -> None:
    code, _out, err = run_cli("cleanup", "--registry", "localhost:1", "--repository", "a/b", "--rule", "keep-last=1",
                              "--shard", shard, cwd=tmp_path)
    assert code == 2 and "--shard" in err and "Traceback" not in err


def test_github_package_versions_give_the_push_times(registry_open: RegistryService, fake_api: Any,
                                                     clean_env: None, tmp_path: Path) -> None:
    packages = GitHubPackages(fake_api(), registry_open, "read:packages, delete:packages")
    client = RegistryClient(registry_open.host, docker_config=Path("/nonexistent"))
    path = f"acme/ghrules{uuid.uuid4().hex[:8]}"
    # each image's config says the opposite of when it was pushed: the registry's push time must win
    for tag, (built, pushed) in {"t-new": (300, 1), "t-mid": (200, 50), "t-old": (1, 100)}.items():
        packages.pushed[push_image(client, path, [tag], created=ago(built)).digest] = ago(pushed)
    report = tmp_path / "report.json"
    env = {**environ_without(), "DOCKER_CONFIG": str(tmp_path / "none"), "XDG_STATE_HOME": str(tmp_path / "state"),
           "KUBECONFIG": str(tmp_path / "none"), "WERF_GITHUB_API_URL": packages.api.url}
    done = run_ci_env("cleanup", "--registry", registry_open.host, "--repository", path, "--rule",
                      "keep-last=1;older-than=30d", "--images-repo-implementation", "github", "--repo-github-token",
                      GITHUB_TOKEN, "--report", str(report), env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert client.list_tags(path) == ["t-new"]
    document = json.loads(report.read_text())
    jsonschema.validate(document, SCHEMA)
    ages = {d["tag"]: (d["age_source"], d["published"][:10]) for d in document["decisions"]}
    assert ages == {tag: ("registry", ago(days)[:10]) for tag, days in (("t-new", 1), ("t-mid", 50), ("t-old", 100))}
    assert "by the registry's push time" in next(d["reason"] for d in document["decisions"] if d["tag"] == "t-old")
    assert GITHUB_TOKEN not in done.stderr + done.stdout + report.read_text()


def test_what_kubernetes_runs_is_kept_by_tag_and_by_digest(filled: Filled, tmp_path: Path,
                                                          kube_servers: Any) -> None:
    app = f"{filled.host}/{filled.group}/app"
    digest = filled.client.resolve(f"{filled.group}/app", "dev-2")
    assert digest is not None
    server = kube_servers(tokens={"kube-token-7"}, objects=[
        controller("Deployment", "by-tag", "apps", [f"{app}:dev-1"]),
        pod("by-digest", "jobs", [f"{app}@{digest.digest}"]),
    ])
    config = write_kubeconfig(tmp_path / "kube" / "config", [Context("prod", server.url, "kube-token-7",
                                                                     server.ca_pem)])
    rules = tmp_path / "rules.yaml"
    rules.write_text(GITLAB_RULES.format(group=filled.group))
    report = tmp_path / "report.json"
    env = {**environ_without(), "DOCKER_CONFIG": str(tmp_path / "none"), "XDG_STATE_HOME": str(tmp_path / "state"),
           "KUBECONFIG": str(config)}
    done = run_ci_env("cleanup", "--rules", str(rules), "--registry", filled.host, "--report", str(report), env=env,
                      cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert filled.tags("app") == (set(APP_AGES) | {"multi", "stale-arm"}) - {"dev-3"}
    reasons = {d["tag"]: (d["basis"]["rule"], d["reason"]) for d in json.loads(report.read_text())["decisions"]
               if d["repository"] == app}
    assert reasons["dev-1"] == ("protection", "protected: in use: prod/apps/Deployment/by-tag")
    assert reasons["dev-2"] == ("protection", "protected: in use: prod/jobs/Pod/by-digest")
