"""action.yml run step by step the way the GitHub runner runs a composite action.

The inputs come from the ci-env step of ``examples/github-workflow.yml`` (the README's snippet), plus
what a test machine needs instead of the internet: ``version`` (a wheel of this checkout, installed
offline through the action's own install step), ``login: false`` (setup would log into ghcr.io) and,
for build-and-publish, an images repo on the local registry and the local Docker daemon.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import stat
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.integrations.actionrunner import ActionRun, CompositeActionRunner
from tests.integrations.runnerenv import path_without_uv
from tests.services.dockerd import DockerDaemon
from tests.services.git_http import GitHttp, serve_git_http
from tests.services.registry import RegistryService

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "examples" / "github-workflow.yml"
TOKEN = "ghs_" + "T0ken$`\"'\\x" * 2
HUB_TOKEN = "dckr_pat_Hub-Secret-42"


def _example_steps() -> dict[str, dict[str, Any]]:
    """job name -> the `with:` of the step that uses this action in the example workflow."""
    workflow = yaml.safe_load(WORKFLOW.read_text())
    found = {}
    for name, job in workflow["jobs"].items():
        for step in job["steps"]:
            if re.fullmatch(r"[\w-]+/ci-env@[\w.-]+", step.get("uses", "")):
                found[name] = dict(step.get("with") or {})
    return found


@pytest.fixture(scope="module")
def tool_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """$RUNNER_TOOL_CACHE shared by the module's runs, as on a self-hosted runner."""
    return tmp_path_factory.mktemp("tool-cache")


def _job_env(tmp_path: Path, tool_cache: Path, wheelhouse: Path) -> dict[str, str]:
    workspace = tmp_path / "workspace"
    runner_temp = tmp_path / "runner-temp"
    for directory in (workspace, runner_temp, tmp_path / "home"):
        directory.mkdir(parents=True)
    return {
        "PATH": path_without_uv(),  # a GitHub-hosted runner has no uv unless a step installs it
        "CI_ENV_PYTHON": sys.executable,
        "HOME": str(tmp_path / "home"),
        "LANG": "C.UTF-8",
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_REPOSITORY": "Octo-Org/Hello-World",
        "GITHUB_REPOSITORY_OWNER": "Octo-Org",
        "GITHUB_ACTOR": "octocat",
        "GITHUB_RUN_ID": "9876543210",
        "GITHUB_RUN_NUMBER": "7",
        "GITHUB_RUN_ATTEMPT": "1",
        "GITHUB_JOB": "build",
        "GITHUB_WORKFLOW": "images",
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_REF_NAME": "main",
        "GITHUB_REF_TYPE": "branch",
        "GITHUB_SHA": "1f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_API_URL": "https://api.github.com",
        "GITHUB_WORKSPACE": str(workspace),
        "RUNNER_OS": "Linux",
        "RUNNER_ARCH": "X64",
        "RUNNER_TEMP": str(runner_temp),
        "RUNNER_TOOL_CACHE": str(tool_cache),
        "CI_ENV_PIP_ARGS": f"--no-index --find-links {wheelhouse}",
    }


def _later_step(run: ActionRun, script: str) -> subprocess.CompletedProcess[str]:
    """A later `run:` step of the same job: the job env after the action's GITHUB_ENV/GITHUB_PATH."""
    return subprocess.run(["bash", "-eo", "pipefail", "-c", script], env=run.job_env, capture_output=True, text=True)


def _assert_masked_before_use(run: ActionRun, secrets: list[str]) -> None:
    """Each secret had an ::add-mask:: line before any step got it, and no other line shows it."""
    for secret in secrets:
        assert secret in run.masks, "the secret was masked"
        first_mask = next(i for i, s in enumerate(run.steps) if s.ran and f"::add-mask::{secret}" in s.stdout)
        first_use = next(i for i, s in enumerate(run.steps) if s.ran and secret in s.env.values())
        assert first_mask <= first_use
        assert run.steps[first_mask].name == "Mask secrets"
        leaked = [line for line in run.raw_log if secret in line and not line.startswith("::add-mask::")]
        assert leaked == []
        assert not any(secret in line for line in run.log)


def test_setup_exports_reach_later_steps_and_secrets_are_masked(
    tmp_path: Path, tool_cache: Path, wheelhouse: Path, ci_env_wheel: Path
) -> None:
    with_ = _example_steps()["build"]
    with_.update(
        command="setup", version=str(ci_env_wheel), login="false", token=TOKEN,
        **{"docker-hub-username": "octo", "docker-hub-token": HUB_TOKEN},
    )
    runner = CompositeActionRunner(ROOT, _job_env(tmp_path, tool_cache, wheelhouse), tmp_path / "steps")
    run = runner.run(with_)
    assert run.ok, [(s.name, s.returncode, s.stdout, s.stderr) for s in run.steps]

    later = _later_step(run, 'printf "%s\\n" "$DOCKER_CONFIG" "$WERF_DOCKER_CONFIG" "$WERF_IMAGES_REPO" '
                             '"$WERF_STAGES_STORAGE" "$REGISTRY_AUTH_FILE" "$WERF_REPO_GITHUB_TOKEN"')
    docker_config, werf_docker_config, images_repo, stages, auth_file, token = later.stdout.split("\n")[:6]
    assert docker_config == werf_docker_config
    assert Path(docker_config).parent == Path(run.job_env["RUNNER_TEMP"])
    assert stat.S_IMODE(Path(docker_config).stat().st_mode) == 0o700
    assert images_repo == "ghcr.io/octo-org/hello-world"
    assert stages == "ghcr.io/octo-org/hello-world/stages"
    assert auth_file == f"{docker_config}/config.json"
    assert token == TOKEN
    assert run.outputs["docker-config"] == docker_config
    assert run.outputs["images-repo"] == images_repo
    assert run.outputs["ci-env"].startswith(str(tool_cache))
    skipped = {s.name for s in run.steps if not s.ran}
    assert skipped == {"Registry login", "Docker Hub login", "Run ci-env setup"}
    _assert_masked_before_use(run, [TOKEN, HUB_TOKEN])


def test_second_job_reuses_the_installed_tool(
    tmp_path: Path, tool_cache: Path, wheelhouse: Path, ci_env_wheel: Path
) -> None:
    """A self-hosted runner keeps its tool cache: the second job finds the install the first one made."""
    inputs = {"version": str(ci_env_wheel), "login": "false", "token": TOKEN, "cache": "false"}
    first = CompositeActionRunner(ROOT, _job_env(tmp_path / "a", tool_cache, wheelhouse), tmp_path / "a-steps")
    run = first.run(inputs)
    assert run.ok
    entry = Path(run.outputs["ci-env"]).parents[1]
    inode = entry.stat().st_ino
    second = CompositeActionRunner(ROOT, _job_env(tmp_path / "b", tool_cache, wheelhouse), tmp_path / "b-steps")
    again = second.run(inputs)
    assert again.ok
    assert again.outputs["ci-env"] == run.outputs["ci-env"]
    assert entry.stat().st_ino == inode, "no second install"
    assert again.outputs["docker-config"] != run.outputs["docker-config"], "each job has its own config"


def test_hosted_runner_jobs_restore_the_install_from_the_actions_cache(
    tmp_path: Path, wheelhouse: Path, ci_env_wheel: Path
) -> None:
    """Nothing survives between hosted jobs but the Actions cache: the first job installs and saves, the
    second restores (no package index reachable any more) and runs ci-env from PATH in a later step."""
    store = tmp_path / "actions-cache"
    local_wheels = tmp_path / "wheels"
    shutil.copytree(wheelhouse, local_wheels)
    inputs = {"version": str(ci_env_wheel), "login": "false", "token": TOKEN}
    runs = []
    for job in ("a", "b"):
        env = _job_env(tmp_path / job, tmp_path / job / "hostedtoolcache", local_wheels)
        (tmp_path / job / "hostedtoolcache").mkdir()
        env["RUNNER_TOOL_CACHE"] = str(tmp_path / "hostedtoolcache")  # the same path on every hosted runner
        shutil.rmtree(tmp_path / "hostedtoolcache", ignore_errors=True)  # ... and empty when a job starts
        run = CompositeActionRunner(ROOT, env, tmp_path / f"{job}-steps", cache_store=store).run(inputs)
        assert run.ok, [(s.name, s.returncode, s.stdout[-2000:], s.stderr[-2000:]) for s in run.steps]
        runs.append(run)
        shutil.rmtree(local_wheels, ignore_errors=True)  # from now on, any install would fail
    first, second = (({s.name: s for s in r.steps}) for r in runs)
    assert "Cache not found for input keys: ci-env-Linux-X64-" in first["Restore ci-env from the cache"].stdout
    assert "Cache saved with key: ci-env-Linux-X64-" in first["Save ci-env to the cache"].stdout
    assert "Cache restored from key: ci-env-Linux-X64-" in second["Restore ci-env from the cache"].stdout
    assert not second["Save ci-env to the cache"].ran, "a hit is not saved again"
    later = _later_step(runs[1], "command -v ci-env && ci-env --version")
    assert later.returncode == 0, later.stderr
    assert later.stdout.splitlines()[0] == runs[1].outputs["ci-env"]


def test_release_checkout_runs_its_zipapp(tmp_path: Path, tool_cache: Path, wheelhouse: Path, zipapp: Path) -> None:
    """On a release tag the action's checkout carries dist/ci-env.pyz: no virtualenv, no package index."""
    checkout = tmp_path / "action"
    shutil.copytree(ROOT, checkout, ignore=shutil.ignore_patterns(".git", ".venv", "*cache*", "dist", "tests"))
    (checkout / "dist").mkdir()
    shutil.copy(zipapp, checkout / "dist" / "ci-env.pyz")
    env = _job_env(tmp_path, tool_cache, wheelhouse)
    env.pop("CI_ENV_PIP_ARGS")
    run = CompositeActionRunner(checkout, env, tmp_path / "steps").run({"login": "false", "token": TOKEN})
    assert run.ok, [(s.name, s.returncode, s.stdout[-2000:], s.stderr[-2000:]) for s in run.steps]
    entry = Path(run.outputs["ci-env"]).parents[1]
    assert (entry / "app" / "ci_env").is_dir() and not (entry / "venv").exists()
    assert run.outputs["images-repo"] == "ghcr.io/octo-org/hello-world"


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"command": "deploy"}, "input command is 'deploy'; use setup, build-and-publish, cleanup or record"),
        ({"command": "record"}, "input images is empty; with command record give the pushed images, REPOSITORY:TAG, "
                                "one per line"),
        ({"command": "record", "images": " \n, "}, "input images is empty; with command record give the pushed "
                                                   "images, REPOSITORY:TAG, one per line"),
        ({"command": "record", "images": ",,\n\n, ,\n"}, "input images is empty; with command record give the "
                                                         "pushed images, REPOSITORY:TAG, one per line"),
        ({"images": "ghcr.io/o/r/app:1"}, "input images is for command record, not setup"),
        ({"command": "record", "images": "ghcr.io/o/r/app:1", "dry-run": "true"},
         "input dry-run is for command cleanup, not record"),
        ({"login": "yes"}, "input login is 'yes'; use true or false"),
        ({"dry-run": "true"}, "input dry-run is for command cleanup, not setup"),
        ({"cache": "maybe"}, "input cache is 'maybe'; use true or false"),
        ({"kube": "yes"}, "input kube is 'yes'; use auto, true or false"),
        # a line break would add lines of its own to $GITHUB_OUTPUT (dir=..., key=...) and to the error command
        ({"version": "1.0\ndir=/tmp/elsewhere"}, "input version holds a line break; give one version, zipapp or "
                                                 "pip requirement"),
        ({"command": "deploy\n::add-mask::x"}, "input command is 'deploy%0A::add-mask::x'; use setup, "
                                               "build-and-publish, cleanup or record"),
        ({"sha256": "a" * 32 + "\n" + "a" * 32}, "input sha256 is not 64 hexadecimal digits (sha256sum's output)"),
        ({"sha256": "$(touch pwned)" + "a" * 50}, "input sha256 is not 64 hexadecimal digits (sha256sum's output)"),
        ({"sha256": "sha512:" + "a" * 64}, "input sha256 is not 64 hexadecimal digits (sha256sum's output)"),
    ],
)
def test_bad_input_stops_before_installing(
    tmp_path: Path, wheelhouse: Path, inputs: dict[str, str], message: str
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    env = _job_env(tmp_path, cache, wheelhouse)
    runner = CompositeActionRunner(ROOT, env, tmp_path / "steps")
    run = runner.run({"token": TOKEN, **inputs})
    assert not (Path(env["GITHUB_WORKSPACE"]) / "pwned").exists()
    failed = [s for s in run.steps if s.ran and s.returncode]
    assert [(s.name, s.returncode) for s in failed] == [("Plan the install", 2)]
    assert f"::error title=ci-env::{message}" in failed[0].stdout
    assert list(cache.iterdir()) == []
    assert "DOCKER_CONFIG" not in run.job_env


def test_build_and_publish_runs_setup_then_publishes(
    tmp_path: Path, tool_cache: Path, wheelhouse: Path, ci_env_wheel: Path,
    registry_open: RegistryService, dockerd: DockerDaemon,
) -> None:
    env = _job_env(tmp_path, tool_cache, wheelhouse)
    env["DOCKER_HOST"] = dockerd.host
    workspace = Path(env["GITHUB_WORKSPACE"])
    (workspace / "werf.yaml").write_text("project: hello\nconfigVersion: 1\n---\nimage: app\n")
    (workspace / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")
    (workspace / "hello.txt").write_text(f"{uuid.uuid4()}\n")
    repo = f"gh-action/{uuid.uuid4().hex[:8]}"
    with_ = _example_steps()["build"]
    with_.update(version=str(ci_env_wheel), login="false", token=TOKEN)
    with_["images-repo"] = f"{registry_open.host}/{repo}"
    run = CompositeActionRunner(ROOT, env, tmp_path / "steps").run(with_)
    assert run.ok, [(s.name, s.returncode, s.stdout[-3000:], s.stderr[-3000:]) for s in run.steps]
    assert [s.name for s in run.steps if s.ran] == [
        "Mask secrets", "Plan the install", "Restore ci-env from the cache", "Install ci-env", "ci-env setup",
        "Outputs", "Save ci-env to the cache", "Run ci-env build-and-publish",
    ]
    tags = requests.get(f"{registry_open.url}/v2/{repo}/app/tags/list", timeout=10).json()["tags"]
    assert len(tags) == 1
    _assert_masked_before_use(run, [TOKEN])


def test_images_repo_elsewhere_logs_in_there_and_not_to_ghcr(
    tmp_path: Path, tool_cache: Path, wheelhouse: Path, ci_env_wheel: Path, registry_htpasswd: RegistryService
) -> None:
    """The job's token is for ghcr.io: with the images repo on another registry the action does not log in
    to ghcr.io, and logs in to that registry with registry-username and registry-password."""
    from tests.conftest import USERS

    user = "alice"
    with_ = {
        "version": str(ci_env_wheel), "token": TOKEN, "images-repo": f"{registry_htpasswd.host}/team/app",
        "registry-username": user, "registry-password": USERS[user],
    }
    run = CompositeActionRunner(ROOT, _job_env(tmp_path, tool_cache, wheelhouse), tmp_path / "steps").run(with_)
    assert run.ok, [(s.name, s.returncode, s.stdout[-2000:], s.stderr[-2000:]) for s in run.steps]
    config = json.loads((Path(run.outputs["docker-config"]) / "config.json").read_text())
    assert sorted(config["auths"]) == [registry_htpasswd.host]
    _assert_masked_before_use(run, [TOKEN, USERS[user]])


def _checkout(workspace: Path, server: GitHttp, persist_credentials: bool) -> None:
    """What actions/checkout with ``fetch-depth: 0`` leaves: ``git init``, origin at the server, every branch
    and tag fetched with the job's token as an ``AUTHORIZATION: basic`` header (no origin/HEAD), the branch
    checked out; the header kept in .git/config only with ``persist-credentials`` (its default)."""
    header = f"http.{server.url}/.extraheader"
    basic = "AUTHORIZATION: basic " + base64.b64encode(f"{server.user}:{server.password}".encode()).decode()
    for args in (["init", "-q"], ["remote", "add", "origin", server.repo_url("hello.git")],
                 ["-c", f"{header}={basic}", "fetch", "-q", "--prune", "origin", "+refs/heads/*:refs/remotes/origin/*",
                  "+refs/tags/*:refs/tags/*"],
                 ["checkout", "-q", "--force", "-B", "main", "refs/remotes/origin/main"]):
        subprocess.run(["git", *args], cwd=workspace, check=True, capture_output=True,
                       env={"PATH": path_without_uv(), "HOME": str(workspace.parent), "GIT_TERMINAL_PROMPT": "0"})
    if persist_credentials:
        subprocess.run(["git", "config", "--local", header, basic], cwd=workspace, check=True)


@pytest.mark.parametrize("persist_credentials", [True, False], ids=["persisted", "persist-credentials-false"])
def test_cleanup_fetches_every_branch_with_the_checkouts_or_the_jobs_credentials(
    tmp_path: Path, tool_cache: Path, wheelhouse: Path, ci_env_wheel: Path, registry_open: RegistryService,
    persist_credentials: bool,
) -> None:
    """actions/checkout with fetch-depth: 0 leaves no origin/HEAD, so a repository whose only branch is main
    looks like a one-branch CI checkout, which cleanup refuses: the action's cleanup synchronises by default,
    fetching from origin with the persisted header or, with persist-credentials: false, the job's token (one
    Authorization header either way, never written to .git/config). WERF_GIT_HISTORY_SYNCHRONIZATION=false on
    the step turns it off: refused, exit 2."""
    token = "ghs_CheckoutToken42"
    upstream = tmp_path / "git" / "hello.git"
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "werf.yaml").write_text("project: hello\nconfigVersion: 1\n---\nimage: app\n")
    (seed / "Dockerfile").write_text("FROM scratch\n")
    git_env = {"PATH": path_without_uv(), "HOME": str(tmp_path), "GIT_TERMINAL_PROMPT": "0"}
    for args in (["init", "-q", "--bare", str(upstream)], ["-C", str(seed), "init", "-q", "-b", "main"],
                 ["-C", str(seed), "add", "-A"],
                 ["-C", str(seed), "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "one"],
                 ["-C", str(seed), "push", "-q", str(upstream), "main"]):
        subprocess.run(["git", *args], check=True, capture_output=True, env=git_env)
    with serve_git_http(tmp_path / "git", "x-access-token", token) as server:
        env = _job_env(tmp_path, tool_cache, wheelhouse)
        env.update(GITHUB_SERVER_URL=server.url, GIT_TERMINAL_PROMPT="0", GITHUB_EVENT_NAME="schedule")
        workspace = Path(env["GITHUB_WORKSPACE"])
        _checkout(workspace, server, persist_credentials)
        config_before = (workspace / ".git" / "config").read_text()
        with_ = _example_steps()["cleanup"]
        with_.update(version=str(ci_env_wheel), login="false", token=token,
                     **{"images-repo": f"{registry_open.host}/gh-cleanup/{uuid.uuid4().hex[:8]}"})
        server.requests.clear()
        run = CompositeActionRunner(ROOT, env, tmp_path / "steps").run(with_)
        assert run.ok, [(s.name, s.returncode, s.stdout[-3000:], s.stderr[-3000:]) for s in run.steps]
        fetches = [r for r in server.requests if r[1].endswith("/git-upload-pack") or "info/refs" in r[1]]
        assert fetches and all(r[3] <= 1 for r in server.requests), server.requests
        assert any(r[2] == "x-access-token" for r in fetches), "the fetch authenticated"
        assert (workspace / ".git" / "config").read_text() == config_before, "no credentials written"
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        assert not any(token in line or basic in line for line in run.log)

        env = _job_env(tmp_path / "off", tool_cache, wheelhouse)
        env.update(GITHUB_SERVER_URL=server.url, GIT_TERMINAL_PROMPT="0", WERF_GIT_HISTORY_SYNCHRONIZATION="false")
        _checkout(Path(env["GITHUB_WORKSPACE"]), server, persist_credentials)
        off = CompositeActionRunner(ROOT, env, tmp_path / "off-steps").run(with_)
    failed = [s for s in off.steps if s.ran and s.returncode]
    assert [(s.name, s.returncode) for s in failed] == [("Run ci-env cleanup", 2)]
    assert "is a clone that hides branches of origin (it has only origin/main and no origin/HEAD" in failed[0].stderr


@pytest.mark.parametrize(
    ("inputs", "step_env", "kubeconfig", "extras"),
    [
        ({"command": "cleanup"}, {}, True, "docker,kube"),
        ({"command": "cleanup"}, {}, False, "docker"),
        ({"command": "cleanup"}, {"WERF_WITHOUT_KUBE": "true"}, True, "docker"),
        ({"command": "cleanup"}, {"CI_ENV_EXTRAS": "docker"}, True, "docker"),
        ({"command": "cleanup", "kube": "false"}, {}, True, "docker"),
        ({"command": "build-and-publish"}, {}, True, "docker"),
        ({"command": "setup", "kube": "true"}, {}, False, "kube"),
    ],
)
def test_kube_input_decides_the_kube_extra(
    tmp_path: Path, wheelhouse: Path, ci_env_wheel: Path, inputs: dict[str, str], step_env: dict[str, str],
    kubeconfig: bool, extras: str,
) -> None:
    """kube: auto adds the kube extra for cleanup when the runner has a kubeconfig, WERF_WITHOUT_KUBE is not true
    and CI_ENV_EXTRAS is unset; true adds it, false never. What the install step is given is what was planned
    (the install itself is not the point here: the wheelhouse has no Kubernetes client)."""
    cache = tmp_path / "cache"
    cache.mkdir()
    env = {**_job_env(tmp_path, cache, wheelhouse), **step_env}
    if kubeconfig:
        config = Path(env["HOME"]) / ".kube" / "config"
        config.parent.mkdir()
        config.write_text("apiVersion: v1\nkind: Config\n")
    with_ = {"version": str(ci_env_wheel), "login": "false", "token": TOKEN, "cache": "false",
             "images-repo": "127.0.0.1:9/nowhere", **inputs}
    run = CompositeActionRunner(ROOT, env, tmp_path / "steps").run(with_)
    install = next(s for s in run.steps if s.name == "Install ci-env")
    assert install.ran and install.env["CI_ENV_EXTRAS_PLANNED"] == extras


def test_a_version_with_shell_text_is_a_spec_never_a_command(tmp_path: Path, wheelhouse: Path) -> None:
    """``version`` reaches the installer as one argument: ``$(...)``, ``;`` and quotes are never run by a shell."""
    cache = tmp_path / "cache"
    cache.mkdir()
    env = _job_env(tmp_path, cache, wheelhouse)
    marker = tmp_path / "pwned"
    run = CompositeActionRunner(ROOT, env, tmp_path / "steps").run(
        {"token": TOKEN, "login": "false", "version": f"ci-env$(touch {marker}); touch {marker} '\""})
    failed = [s for s in run.steps if s.ran and s.returncode]
    assert [s.name for s in failed] == ["Install ci-env"]
    assert not marker.exists()
    assert "DOCKER_CONFIG" not in run.job_env


def test_sha256_input_as_docker_writes_it(tmp_path: Path, tool_cache: Path, wheelhouse: Path, zipapp: Path) -> None:
    """``sha256: sha256:<HEX>`` (docker's form, any case) pins the zipapp as sha256sum's output does; another
    digest in that form is refused before anything is unpacked."""
    digest = hashlib.sha256(zipapp.read_bytes()).hexdigest()
    env = _job_env(tmp_path, tool_cache, wheelhouse)
    inputs = {"login": "false", "token": TOKEN, "version": str(zipapp), "cache": "false"}
    run = CompositeActionRunner(ROOT, env, tmp_path / "steps").run({**inputs, "sha256": f" sha256:{digest.upper()}"})
    assert run.ok, [(s.name, s.returncode, s.stdout[-2000:], s.stderr[-2000:]) for s in run.steps]
    other = CompositeActionRunner(ROOT, _job_env(tmp_path / "2", tool_cache, wheelhouse), tmp_path / "steps2").run(
        {**inputs, "sha256": "sha256:" + "f" * 64})
    failed = [s for s in other.steps if s.ran and s.returncode]
    assert [s.name for s in failed] == ["Install ci-env"]
    assert f"refused {zipapp}: its sha256 is {digest}, not the pinned {'f' * 64}" in failed[0].stderr


def test_record_records_the_images_given_as_data(
    tmp_path: Path, tool_cache: Path, wheelhouse: Path, ci_env_wheel: Path, registry_open: RegistryService,
) -> None:
    """command: record with the images input (one per line, as docker/metadata-action's tags output lists them):
    setup first, then ci-env record with each image one argument, never run by a shell nor taken for an option."""
    from ci_env.registry.client import RegistryClient
    from tests.registry_client.images import push_image

    client = RegistryClient(registry_open.host, docker_config=Path("/nonexistent"))
    repo = f"gh-record/{uuid.uuid4().hex[:8]}"
    digest = push_image(client, f"{repo}/app", ["main", "1f2e3d4c"]).digest
    env = _job_env(tmp_path, tool_cache, wheelhouse)
    images = f"{registry_open.host}/{repo}/app:main\n {registry_open.host}/{repo}/app:1f2e3d4c\n"
    with_ = {"command": "record", "images": images, "version": str(ci_env_wheel), "login": "false", "token": TOKEN,
             "images-repo": f"{registry_open.host}/{repo}"}
    run = CompositeActionRunner(ROOT, env, tmp_path / "steps").run(with_)
    assert run.ok, [(s.name, s.returncode, s.stdout[-3000:], s.stderr[-3000:]) for s in run.steps]
    assert [s.name for s in run.steps if s.ran] == [
        "Mask secrets", "Plan the install", "Restore ci-env from the cache", "Install ci-env", "ci-env setup",
        "Outputs", "Save ci-env to the cache", "Run ci-env record",
    ]
    step = next(s for s in run.steps if s.name == "Run ci-env record")
    told = step.stdout + step.stderr
    assert f"recorded: {registry_open.host}/{repo}/app:main (image app, git-branch main, {digest[:12]}" in told
    assert "record: 2 recorded, 0 unchanged" in told
    install = next(s for s in run.steps if s.name == "Install ci-env")
    assert install.env["CI_ENV_EXTRAS_PLANNED"] == ""  # record needs no Docker SDK
    _assert_masked_before_use(run, [TOKEN])

    marker = Path(env["GITHUB_WORKSPACE"]) / "pwned"
    for hostile in (f"{registry_open.host}/{repo}/app:main $(touch {marker});touch {marker} *",
                    f"--images-repo=evil.example/x\n{registry_open.host}/{repo}/app:main"):
        job = tmp_path / uuid.uuid4().hex[:6]
        again = CompositeActionRunner(ROOT, _job_env(job, tool_cache, wheelhouse), job / "steps").run(
            {**with_, "images": hostile})
        failed = [s for s in again.steps if s.ran and s.returncode]
        assert [(s.name, s.returncode) for s in failed] == [("Run ci-env record", 2)]
        first = hostile.split()[0] if hostile.startswith("-") else "$(touch"
        assert f"ci-env: error: image reference '{first}' has neither a tag nor a digest" in failed[0].stderr
        assert not marker.exists()


def test_record_skips_the_empty_entries_of_the_images_input(
    tmp_path: Path, tool_cache: Path, wheelhouse: Path, ci_env_wheel: Path, registry_open: RegistryService,
) -> None:
    """A list of tags joined with commas and line breaks (a doubled, a leading and a trailing comma, blank lines,
    as a joined metadata-action output often has) records the images it names: no empty reference reaches
    ci-env record."""
    from ci_env.registry.client import RegistryClient
    from tests.registry_client.images import push_image

    client = RegistryClient(registry_open.host, docker_config=Path("/nonexistent"))
    repo = f"gh-record/{uuid.uuid4().hex[:8]}"
    push_image(client, f"{repo}/app", ["main", "1f2e3d4c"])
    main, commit = f"{registry_open.host}/{repo}/app:main", f"{registry_open.host}/{repo}/app:1f2e3d4c"
    env = _job_env(tmp_path, tool_cache, wheelhouse)
    with_ = {"command": "record", "images": f",{main},,\n\n {commit},\n,\n", "version": str(ci_env_wheel),
             "login": "false", "token": TOKEN, "images-repo": f"{registry_open.host}/{repo}"}
    run = CompositeActionRunner(ROOT, env, tmp_path / "steps").run(with_)
    step = next(s for s in run.steps if s.name == "Run ci-env record")
    told = step.stdout + step.stderr
    assert run.ok, [(s.name, s.returncode, s.stdout[-3000:], s.stderr[-3000:]) for s in run.steps]
    assert "empty image reference" not in told
    assert f"recorded: {main} (image app, git-branch main" in told
    assert "record: 2 recorded, 0 unchanged" in told
