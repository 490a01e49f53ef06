"""The GitLab template end to end under gitlab-ci-local (shell executor), on a sample git project.

The sample's ``.gitlab-ci.yml`` is ``examples/gitlab-ci.yml`` (the README's snippet) with its
``include: remote:`` pointed at a local copy of ``.gitlab-ci-template.yml``; ci-env is installed from a
wheel of this checkout through the template's own install code (``CI_ENV_INSTALL_SPEC``,
``CI_ENV_PIP_ARGS``). The registry is the real htpasswd registry as ``$CI_REGISTRY``; images are built
by the real Docker daemon (``DOCKER_HOST``). The tests read the registry afterwards.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from collections.abc import Mapping
from pathlib import Path

import pytest
import requests
import yaml

from tests.conftest import USERS
from tests.integrations.conftest import INSTALLER
from tests.integrations.runnerenv import path_without_uv
from tests.services import require
from tests.services.dockerd import DockerDaemon
from tests.services.git_http import GitHttp, serve_git_http
from tests.services.registry import RegistryService

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "gitlab-ci.yml"
TEMPLATE = ROOT / ".gitlab-ci-template.yml"
USER = "alice"

CHECK_JOB = """
check-setup:
  stage: build
  extends: .ci-env
  script:
    - echo "DOCKER_CONFIG=$DOCKER_CONFIG"
    - echo "WERF_IMAGES_REPO=$WERF_IMAGES_REPO"
    - echo "WERF_STAGES_STORAGE=$WERF_STAGES_STORAGE"
    - echo "WERF_DOCKER_CONFIG=$WERF_DOCKER_CONFIG"
    - echo "config-mode=$(stat -c %a "$DOCKER_CONFIG")"
    - echo "auths=$(python3 -c 'import json,sys; print(sorted(json.load(sys.stdin)["auths"]))' \
        < "$DOCKER_CONFIG/config.json")"
"""


def _sample_ci(remote_include: str) -> str:
    """The example pipeline with its remote include replaced by the local copy of the template."""
    text = EXAMPLE.read_text()
    assert remote_include in text, "the example includes the template remotely"
    return text.replace(remote_include, "- local: .gitlab-ci-template.yml")


def _git(project: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=project, check=True, capture_output=True)


@pytest.fixture
def sample_project(tmp_path: Path) -> Path:
    """A git repository with werf.yaml, a FROM scratch Dockerfile and the example pipeline."""
    require("git", "gitlab-ci-local needs a git repository")
    project = tmp_path / "sample"
    (project / "app").mkdir(parents=True)
    (project / "werf.yaml").write_text("project: sample\nconfigVersion: 1\n---\nimage: app\ncontext: app\n")
    (project / "app" / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")
    (project / "app" / "hello.txt").write_text(f"hello {uuid.uuid4()}\n")
    remote = re.search(r"- remote: \S+", EXAMPLE.read_text())
    assert remote is not None
    (project / ".gitlab-ci.yml").write_text(_sample_ci(remote.group(0)) + CHECK_JOB)
    shutil.copy(TEMPLATE, project / ".gitlab-ci-template.yml")
    (project / ".gitignore").write_text(".gitlab-ci-local/\n")
    _git(project, "init", "-q", "-b", "main")
    _git(project, "-c", "user.name=t", "-c", "user.email=t@example.com", "add", "-A")
    _git(project, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "sample")
    # a GitLab job's clone has the project as origin: the cleanup job's history synchronisation fetches from it
    _git(project, "remote", "add", "origin", project.as_uri())
    return project


def _variables(registry: RegistryService, repo: str, wheelhouse: Path, wheel: Path, home: Path) -> dict[str, str]:
    return {
        "GITLAB_CI": "true",  # gitlab-ci-local says "false" so that scripts can tell; GitLab says "true"
        "CI_REGISTRY": registry.host,
        "CI_REGISTRY_USER": USER,
        "CI_REGISTRY_PASSWORD": USERS[USER],
        "CI_REGISTRY_IMAGE": f"{registry.host}/{repo}",
        "CI_ENV_INSTALL_SPEC": str(wheel),
        "CI_ENV_PIP_ARGS": f"--no-index --find-links {wheelhouse}",
        "CI_ENV_HOME": str(home),
        # The registry here is the CNCF distribution, not GitLab's (no GitLab tag-delete route): say so,
        # as a user of another registry as $CI_REGISTRY would. Setup keeps variables the user set.
        "WERF_IMAGES_REPO_IMPLEMENTATION": "default",
        "WERF_STAGES_STORAGE_REPO_IMPLEMENTATION": "default",
    }


def _run_job(
    project: Path, job: str | None, variables: Mapping[str, str], *options: str
) -> subprocess.CompletedProcess[str]:
    """gitlab-ci-local runs ``job`` (None: the whole pipeline) with ``variables`` and ``options``."""
    binary = require("gitlab-ci-local", "runs .gitlab-ci-template.yml end to end; scripts/install-gitlab-ci-local")
    require("rsync", "gitlab-ci-local needs rsync")
    args = [binary, "--no-color", *options, *([job] if job else [])]
    for key, value in variables.items():
        args += ["--variable", f"{key}={value}"]
    # gitlab-ci-local's fallbacks: no such service here, so no dependency proxy login.
    for name in ("CI_DEPENDENCY_PROXY_SERVER", "CI_DEPENDENCY_PROXY_USER", "CI_DEPENDENCY_PROXY_PASSWORD"):
        args += ["--unset-variable", name]
    env = {"PATH": path_without_uv(), "HOME": str(project.parent / "home"), "LANG": "C.UTF-8",
           "GCL_IGNORE_PREDEFINED_VARS": "GITLAB_CI,CI_REGISTRY,CI_REGISTRY_IMAGE,CI_PIPELINE_SOURCE"}
    return subprocess.run(args, cwd=project, env=env, capture_output=True, text=True, timeout=900)


def _job_lines(project: Path, job: str) -> dict[str, str]:
    """KEY=VALUE lines the job echoed, from the job's log that gitlab-ci-local keeps."""
    log = (project / ".gitlab-ci-local" / "output" / f"{job}.log").read_text()
    return {m.group(1): m.group(2) for m in re.finditer(r"^([\w-]+)=(.*)$", log, re.M)}


def _tags(registry: RegistryService, prefix: str) -> dict[str, list[str]]:
    auth = (USER, USERS[USER])
    catalog = requests.get(f"{registry.url}/v2/_catalog", auth=auth, timeout=10).json()["repositories"]
    result = {}
    for repo in catalog:
        if repo == prefix or repo.startswith(prefix + "/"):
            tags = requests.get(f"{registry.url}/v2/{repo}/tags/list", auth=auth, timeout=10).json()["tags"]
            result[repo] = sorted(tags or [])
    return result


def test_setup_job_gets_private_logged_in_config_and_teardown_removes_it(
    sample_project: Path, registry_htpasswd: RegistryService, wheelhouse: Path, ci_env_wheel: Path, tmp_path: Path
) -> None:
    repo = f"group/sample-{uuid.uuid4().hex[:8]}"
    variables = _variables(registry_htpasswd, repo, wheelhouse, ci_env_wheel, tmp_path / "ci-env-home")
    result = _run_job(sample_project, "check-setup", variables)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    seen = _job_lines(sample_project, "check-setup")
    assert seen["WERF_IMAGES_REPO"] == f"{registry_htpasswd.host}/{repo}"
    assert seen["WERF_STAGES_STORAGE"] == f"{registry_htpasswd.host}/{repo}/stages"
    assert seen["WERF_DOCKER_CONFIG"] == seen["DOCKER_CONFIG"]
    assert seen["config-mode"] == "700"
    assert registry_htpasswd.host in seen["auths"]
    assert not Path(seen["DOCKER_CONFIG"]).exists(), "after_script's teardown removed the job's directory"
    assert USERS[USER] not in output


def test_pipeline_builds_publishes_and_cleans_up(
    sample_project: Path,
    registry_htpasswd: RegistryService,
    dockerd: DockerDaemon,
    wheelhouse: Path,
    ci_env_wheel: Path,
    tmp_path: Path,
) -> None:
    repo = f"group/sample-{uuid.uuid4().hex[:8]}"
    variables = _variables(registry_htpasswd, repo, wheelhouse, ci_env_wheel, tmp_path / "ci-env-home")
    variables["DOCKER_HOST"] = dockerd.host

    build = _run_job(sample_project, "build", variables)
    assert build.returncode == 0, build.stdout + build.stderr
    first = _tags(registry_htpasswd, repo)
    image_repos = [name for name in first if not name.endswith("/stages")]
    assert len(image_repos) == 1 and len(first[image_repos[0]]) == 1, f"one tag published: {json.dumps(first)}"
    image, (old_tag,) = image_repos[0], first[image_repos[0]]

    # A new commit changes the image: a second pipeline publishes a second tag.
    (sample_project / "app" / "hello.txt").write_text("changed\n")
    _git(sample_project, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam", "change")
    build = _run_job(sample_project, "build", variables)
    assert build.returncode == 0, build.stdout + build.stderr
    (new_tag,) = set(_tags(registry_htpasswd, repo)[image]) - {old_tag}
    assert USERS[USER] not in build.stdout + build.stderr

    # The scheduled pipeline's cleanup job, with a keep policy of one image per branch: the metadata records
    # of both pipelines tell it which commit published which image.
    werf_yaml = sample_project / "werf.yaml"
    werf_yaml.write_text(werf_yaml.read_text().replace(
        "configVersion: 1\n",
        "configVersion: 1\ncleanup:\n  keepPolicies:\n  - references: {branch: /.*/}\n"
        "    imagesPerReference: {last: 1}\n", 1))
    _git(sample_project, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam", "keep one")
    cleanup_vars = {
        **variables,
        "CI_PIPELINE_SOURCE": "schedule",
        "CI_ENV_CLEANUP_ARGS": "--keep-published-within 0m",
    }
    cleanup = _run_job(sample_project, "cleanup", cleanup_vars)
    assert cleanup.returncode == 0, cleanup.stdout + cleanup.stderr
    assert _tags(registry_htpasswd, repo)[image] == [new_tag]
    assert USERS[USER] not in cleanup.stdout + cleanup.stderr


def test_template_embeds_the_installer_verbatim() -> None:
    """The template is included on its own (no repository files at hand), so it carries the installer;
    the Action runs the same file from its checkout."""
    script = yaml.safe_load(TEMPLATE.read_text())[".ci-env:install"]["script"][0]
    embedded = script.split("<<'CI_ENV_INSTALLER'\n", 1)[1].split("\nCI_ENV_INSTALLER\n", 1)[0] + "\n"
    assert embedded == INSTALLER.read_text(), "copy scripts/install-ci-env into the template (scripts/embed-installer)"


PIPELINE = """
include:
  - local: .gitlab-ci-template.yml

stages: [first, second]

first:
  stage: first
  extends: .ci-env
  script:
    - echo "CI_ENV_COMMAND=$(command -v ci-env)"
  after_script:
    - !reference [.ci-env, after_script]
    - rm -rf "$WHEELS"  # the package index is gone: the next job has nothing to install from

second:
  stage: second
  extends: .ci-env
  script:
    - echo "CI_ENV_COMMAND=$(command -v ci-env)"
    - ci-env --version
"""


def test_second_job_of_a_pipeline_restores_ci_env_from_the_cache(
    tmp_path: Path, registry_htpasswd: RegistryService, wheelhouse: Path, ci_env_wheel: Path
) -> None:
    """gitlab-ci-local with --shell-isolation: each job runs in a fresh copy of the project (a directory of
    its own, untracked files gone) and gets the template's cache: restored before it and saved after it,
    as GitLab's Docker executor does. The first job installs into .git/ci-env and, last, removes the only
    package source; the second, in another directory, runs ci-env restored from the cache.

    One difference from GitLab: gitlab-ci-local copies the project afresh before after_script too (and
    restores the cache again), so what the cache saves is what after_script's install left; the template's
    after_script installs (or finds) ci-env, so the cache holds it either way."""
    project = tmp_path / "sample"
    project.mkdir()
    (project / ".gitlab-ci.yml").write_text(PIPELINE)
    shutil.copy(TEMPLATE, project / ".gitlab-ci-template.yml")
    (project / ".gitignore").write_text(".gitlab-ci-local/\n")
    _git(project, "init", "-q", "-b", "main")
    _git(project, "-c", "user.name=t", "-c", "user.email=t@example.com", "add", "-A")
    _git(project, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "sample")
    wheels = tmp_path / "wheels"
    shutil.copytree(wheelhouse, wheels)
    wheel = tmp_path / ci_env_wheel.name
    shutil.copy(ci_env_wheel, wheel)
    variables = _variables(registry_htpasswd, "group/cache", wheels, wheel, tmp_path / "unused")
    del variables["CI_ENV_HOME"]  # the template's default: .git/ci-env, inside the project directory
    variables["WHEELS"] = str(wheels)
    result = _run_job(project, None, variables, "--shell-isolation")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert not wheels.exists()
    first, second = (_job_lines(project, job)["CI_ENV_COMMAND"] for job in ("first", "second"))
    builds = project / ".gitlab-ci-local" / "builds"
    assert first.startswith(f"{builds}/first/.git/ci-env/")
    assert second.startswith(f"{builds}/second/.git/ci-env/")
    assert Path(first).relative_to(builds / "first") == Path(second).relative_to(builds / "second")
    assert re.search(r"second\s.*imported cache 'ci-env--protected-false'", output), output
    assert USERS[USER] not in output

    # The same job on a protected branch never restores what the unprotected pipeline saved: it has its
    # own cache, empty, and nothing to install from (the first job removed the only package source).
    protected = _run_job(project, "second", {**variables, "CI_COMMIT_REF_PROTECTED": "true"}, "--shell-isolation")
    output = protected.stdout + protected.stderr
    assert "imported cache 'ci-env--protected-false'" not in output, output
    assert protected.returncode != 0 and "pip could not install" in output, output


CLEANUP_ONLY = """
include:
  - local: .gitlab-ci-template.yml

cleanup:
  extends: .ci-env:cleanup
"""


def _gitlab_clone(tmp_path: Path, server: GitHttp) -> Path:
    """What a GitLab job's checkout is, even with GIT_DEPTH: 0: origin's URL carries the job token
    (gitlab-ci-token), and only the pipeline's branch is fetched (origin/main; feature is not shown)."""
    seed = tmp_path / "seed"
    (seed / "app").mkdir(parents=True)
    (seed / "werf.yaml").write_text("project: sample\nconfigVersion: 1\n---\nimage: app\ncontext: app\n")
    (seed / "app" / "Dockerfile").write_text("FROM scratch\n")
    (seed / ".gitlab-ci.yml").write_text(CLEANUP_ONLY)
    shutil.copy(TEMPLATE, seed / ".gitlab-ci-template.yml")
    (seed / ".gitignore").write_text(".gitlab-ci-local/\n")
    upstream = server.root / "group" / "sample.git"
    _git(tmp_path, "init", "-q", "--bare", str(upstream))
    _git(seed, "init", "-q", "-b", "main")
    _git(seed, "add", "-A")
    _git(seed, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "sample")
    _git(seed, "push", "-q", str(upstream), "main", "main:feature")
    project = tmp_path / "project"
    project.mkdir()
    _git(project, "init", "-q")
    _git(project, "remote", "add", "origin", server.repo_url("group/sample.git", with_credentials=True))
    _git(project, "-c", "credential.helper=", "fetch", "-q", "origin", "+refs/heads/main:refs/remotes/origin/main")
    _git(project, "checkout", "-q", "-B", "main", "refs/remotes/origin/main")
    return project


def test_cleanup_job_fetches_every_branch_with_the_job_token_and_keeps_the_reports(
    tmp_path: Path, registry_htpasswd: RegistryService, wheelhouse: Path, ci_env_wheel: Path
) -> None:
    """A job that only `extends: .ci-env:cleanup` in a GitLab clone that shows the pipeline's branch only:
    the template synchronises the history (from origin, whose URL carries the job token), writes both
    reports and gitlab-ci-local keeps them as the job's artifacts. With WERF_GIT_HISTORY_SYNCHRONIZATION
    set to false the same job is refused (exit 2)."""
    require("git", "the job's clone")
    token = "glcbt-JobToken-77"
    with serve_git_http(tmp_path / "git", "gitlab-ci-token", token) as server:
        project = _gitlab_clone(tmp_path, server)
        variables = _variables(registry_htpasswd, f"group/sample-{uuid.uuid4().hex[:8]}", wheelhouse, ci_env_wheel,
                               tmp_path / "ci-env-home")
        variables.update(CI_PIPELINE_SOURCE="schedule", CI_JOB_TOKEN=token, GIT_TERMINAL_PROMPT="0")
        refused = _run_job(project, "cleanup", {**variables, "WERF_GIT_HISTORY_SYNCHRONIZATION": "false"})
        assert refused.returncode != 0
        assert "is a clone that hides branches of origin (it has only origin/main and no origin/HEAD" in (
            refused.stdout + refused.stderr)
        server.requests.clear()
        result = _run_job(project, "cleanup", variables)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert any(r[1].endswith("/git-upload-pack") and r[2] == "gitlab-ci-token" for r in server.requests)
    refs = subprocess.run(["git", "for-each-ref", "--format=%(refname)", "refs/remotes/origin"], cwd=project,
                          capture_output=True, text=True, check=True).stdout.split()
    assert "refs/remotes/origin/feature" in refs, "every branch fetched"
    artifacts = project / ".gitlab-ci-local" / "artifacts" / "cleanup"
    report = json.loads((artifacts / "cleanup-report.json").read_text())
    assert isinstance(report, dict)
    assert (artifacts / "cleanup-report.html").read_text().lstrip().lower().startswith("<!doctype html")
    assert token not in output and USERS[USER] not in output


@pytest.mark.parametrize(("env", "names"), [
    ({}, ["cleanup-report.json", "cleanup-report.html"]),
    ({"CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "3"}, ["cleanup-report-2.json", "cleanup-report-2.html"]),
    ({"CI_NODE_INDEX": "2", "WERF_CLEANUP_REPORT": "mine.json"}, ["mine.json", "cleanup-report-2.html"]),
], ids=["unsharded", "parallel", "set-by-the-user"])
def test_cleanup_job_names_the_reports_it_keeps(env: dict[str, str], names: list[str], tmp_path: Path) -> None:
    """The job's script, run by sh with a stand-in ci-env on PATH: the report paths it passes (one per shard
    with parallel:, named by CI_NODE_INDEX) are among the artifact paths as GitLab expands them. GitLab's rules
    for expose_as: no '*' in the paths (refused), and the unsharded reports literal (linked in merge requests)."""
    job = yaml.safe_load(TEMPLATE.read_text())[".ci-env:cleanup"]
    stand_in = tmp_path / "ci-env"
    stand_in.write_text('#!/bin/sh\n'
                        'echo "$WERF_CLEANUP_REPORT|$WERF_CLEANUP_HTML_REPORT|$WERF_GIT_HISTORY_SYNCHRONIZATION"\n')
    stand_in.chmod(0o755)
    result = subprocess.run(["sh", "-ec", "\n".join(job["script"])], capture_output=True, text=True, check=True,
                            env={"PATH": f"{tmp_path}:/usr/bin:/bin", **env})
    assert result.stdout.strip() == f"{names[0]}|{names[1]}|true"
    artifacts = job["artifacts"]
    assert artifacts["when"] == "always" and artifacts["expose_as"] == "cleanup report"
    assert not any("*" in path for path in artifacts["paths"])
    assert {"cleanup-report.html", "cleanup-report.json"} <= set(artifacts["paths"])
    kept = {path.replace("$CI_NODE_INDEX", env.get("CI_NODE_INDEX", "")) for path in artifacts["paths"]}
    assert set(names) - {"mine.json"} <= kept


@pytest.mark.parametrize(("env", "branch"), [
    ({"CI_COMMIT_REF_NAME": "feature/x"}, "feature/x"),
    ({"CI_COMMIT_REF_NAME": "refs/merge-requests/7/head", "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature/y"},
     "feature/y"),
    ({"CI_COMMIT_REF_NAME": "feature/x", "WERF_REMOVED_BRANCH": "chosen"}, "chosen"),
])
def test_removed_branch_job_cleans_the_jobs_branch(env: dict[str, str], branch: str, tmp_path: Path) -> None:
    """The job's script, run by sh with a stand-in ci-env on PATH: the branch it passes, every branch fetched."""
    job = yaml.safe_load(TEMPLATE.read_text())[".ci-env:removed-branch"]
    assert job["extends"] == ".ci-env" and job["variables"]["GIT_DEPTH"] == "0" and "rules" not in job
    stand_in = tmp_path / "ci-env"
    stand_in.write_text('#!/bin/sh\necho "$WERF_REMOVED_BRANCH|$WERF_GIT_HISTORY_SYNCHRONIZATION|$*"\n')
    stand_in.chmod(0o755)
    result = subprocess.run(["sh", "-ec", "\n".join(job["script"])], capture_output=True, text=True, check=True,
                            env={"PATH": f"{tmp_path}:/usr/bin:/bin", **env})
    assert result.stdout.strip() == f"{branch}|true|cleanup"


RETENTION_DOC = ROOT / "docs" / "retention-rules.md"

#: keep each repository's most recent tag, remove the rest
SHARD_RULES = """\
version: 1
repositories:
- namespace: {group}
  rules:
  - keep: {{last: 1}}
"""


def _doc_shard_pipeline() -> str:
    """docs/retention-rules.md's GitLab shard example, 2 shards instead of 4, with the template included."""
    blocks: list[str] = re.findall(r"```yaml\n(.*?)```", RETENTION_DOC.read_text(), re.S)
    (example,) = [b for b in blocks if "extends: .ci-env:cleanup" in b and "parallel:" in b]
    assert "parallel: 4 " in example
    return "include:\n  - local: .gitlab-ci-template.yml\n\n" + example.replace("parallel: 4 ", "parallel: 2 ")


def test_sharded_cleanup_keeps_a_report_per_shard_and_the_merge_job_joins_them(
    tmp_path: Path, registry_htpasswd: RegistryService, wheelhouse: Path, ci_env_wheel: Path
) -> None:
    """The retention rules page's GitLab example under gitlab-ci-local: `parallel: 2` jobs of .ci-env:cleanup
    clean a namespace of the registry by rules, each keeping its reports as its artifacts,
    cleanup-report-$CI_NODE_INDEX.json and .html; the merge job joins the shards' JSON reports and keeps the
    merged one. Every repository is cleaned once, by one shard.

    The jobs share the project directory (gitlab-ci-local's --shell-isolation copies the project afresh before
    after_script, which the template has, so a job's files would be gone before its artifacts are taken): what
    each shard's artifacts hold is read from gitlab-ci-local's artifact directories."""
    from ci_env.registry.client import RegistryClient
    from tests.registry_client.conftest import docker_config_for
    from tests.registry_client.images import push_image

    config = docker_config_for(tmp_path / "docker", registry_htpasswd.host, USER, USERS[USER])
    client = RegistryClient(registry_htpasswd.host, docker_config=config)
    group = f"shards{uuid.uuid4().hex[:8]}"
    names = [f"{group}/svc-{n}" for n in range(6)]
    for name in names:
        push_image(client, name, ["old"], created="2024-01-01T00:00:00Z")
        push_image(client, name, ["new"], created="2024-06-01T00:00:00Z")
    project = tmp_path / "project"
    project.mkdir()
    (project / ".gitlab-ci.yml").write_text(_doc_shard_pipeline())
    (project / "retention.yaml").write_text(SHARD_RULES.format(group=group))
    shutil.copy(TEMPLATE, project / ".gitlab-ci-template.yml")
    (project / ".gitignore").write_text(".gitlab-ci-local/\n")
    _git(project, "init", "-q", "-b", "main")
    _git(project, "-c", "user.name=t", "-c", "user.email=t@example.com", "add", "-A")
    _git(project, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "sample")
    _git(project, "remote", "add", "origin", project.as_uri())
    variables = _variables(registry_htpasswd, f"{group}/ci", wheelhouse, ci_env_wheel, tmp_path / "ci-env-home")
    variables.update(CI_PIPELINE_SOURCE="schedule", WERF_REPO_IMPLEMENTATION="default")
    result = _run_job(project, None, variables)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert USERS[USER] not in output

    artifacts = project / ".gitlab-ci-local" / "artifacts"
    kept = {job.name: sorted(p.name for p in job.iterdir()) for job in artifacts.iterdir()}
    merge_job = kept.pop("cleanup-report")
    assert sorted(kept.values()) == [["cleanup-report-1.html", "cleanup-report-1.json"],
                                     ["cleanup-report-2.html", "cleanup-report-2.json"]], output
    assert merge_job == ["cleanup-report.json"]
    shard_reports = sorted(p for job in kept for p in (artifacts / job).glob("*.json"))
    shards = [json.loads(p.read_text())["shard"] for p in shard_reports]
    assert [(s["index"], s["total"]) for s in shards] == [(1, 2), (2, 2)]
    assert sum(s["repositories"] for s in shards) == len(names)

    merged = json.loads((artifacts / "cleanup-report" / "cleanup-report.json").read_text())
    assert merged["shards"]["merged"] == ["1/2", "2/2"] and merged["shards"]["missing"] == []
    assert {(d["repository"], d["tag"], d["outcome"]) for d in merged["decisions"]} == {
        (f"{registry_htpasswd.host}/{name}", tag, outcome) for name in names
        for tag, outcome in (("old", "removed"), ("new", "kept"))}
    assert _tags(registry_htpasswd, group) == {name: ["new"] for name in names}
