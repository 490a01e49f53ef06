"""`ci-env setup` as a new user meets it: the summary line, variables checked like options, a default stages
storage valid on every implementation, ``--images-repo-mode auto``, implementation variables that follow their
registry, the credsStore warning."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.cli import run_ci_env
from tests.conftest import USERS
from tests.services.registry import RegistryService
from tests.setup.test_setup_cli import gitlab_env, job_dirs

pytestmark = pytest.mark.services


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_ci_env(*args, env=env, timeout=60)


def plain_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No CI at all: a developer's shell or an unknown runner."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {"PATH": os.environ["PATH"], "HOME": str(home), "WERF_TMP_DIR": str(tmp_path / "jobs"), **extra}


def exports(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    assert result.returncode == 0, result.stderr
    data: dict[str, str] = json.loads(result.stdout)["exports"]
    return data


def test_success_prints_one_summary_line(tmp_path: Path, registry_htpasswd: RegistryService) -> None:
    env = gitlab_env(tmp_path, registry_htpasswd, "alice", USERS["alice"])
    result = run(["setup"], env)
    assert result.returncode == 0, result.stderr
    [job_dir] = job_dirs(tmp_path)
    host = registry_htpasswd.host
    assert result.stderr.splitlines() == [
        f"ci-env: setup: gitlab job 4242; Docker config {job_dir}; logged in to {host} as alice; "
        f"images repo {host}/group/project (implementation gitlab, mode multirepo); "
        f"stages storage {host}/group/project/stages"
    ]
    assert USERS["alice"] not in result.stderr


def test_an_unverified_login_is_not_called_logged_in(tmp_path: Path, registry_htpasswd: RegistryService) -> None:
    env = gitlab_env(tmp_path, registry_htpasswd, "alice", "wrong password")
    result = run(["setup", "--no-verify-login"], env)
    assert result.returncode == 0, result.stderr
    assert "logged in" not in result.stderr
    assert f"credentials (not verified) for {registry_htpasswd.host} as alice" in result.stderr


def test_summary_outside_ci_says_so(tmp_path: Path) -> None:
    result = run(["setup", "-i", "quay.io/acme", "--shell", "json"], plain_env(tmp_path))
    assert result.returncode == 0, result.stderr
    [job_dir] = job_dirs(tmp_path)
    assert result.stderr == (
        f"ci-env: setup: no CI system detected; Docker config {job_dir}; no login; images repo quay.io/acme "
        "(implementation quay, mode multirepo); stages storage quay.io/acme/stages\n"
    )


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("WERF_IMAGES_REPO_IMPLEMENTATION", "gitlabb", "unknown registry implementation 'gitlabb': use one of"),
        ("WERF_STAGES_STORAGE_REPO_IMPLEMENTATION", "hub", "unknown registry implementation 'hub'"),
        ("WERF_REPO_IMPLEMENTATION", "azure", "unknown registry implementation 'azure'"),
        ("WERF_IMAGES_REPO_MODE", "mono", "unknown images repo mode 'mono': use one of auto, monorepo, multirepo"),
        ("WERF_IMAGES_REPO", "Acme/App", "upper-case"),
        ("WERF_STAGES_STORAGE", "registry.example.com/a//b", "empty component"),
        ("WERF_TAG_BY_STAGES_SIGNATURE", "maybe", "'maybe' is not a boolean: use true or false"),
        ("WERF_INSECURE_REGISTRY", "bad host!", "is not a registry HOST[:PORT]"),
    ],
)
def test_bad_variable_is_named_exit_2_and_nothing_is_created(
    tmp_path: Path, registry_htpasswd: RegistryService, variable: str, value: str, message: str
) -> None:
    env = {**gitlab_env(tmp_path, registry_htpasswd, "alice", USERS["alice"]), variable: value}
    before = len(registry_htpasswd.requests())
    result = run(["setup"], env)
    assert result.returncode == 2
    assert result.stderr.startswith(f"ci-env: error: {variable}: ") and result.stderr.count("\n") == 1
    assert message in result.stderr
    assert "export" not in result.stdout and "exit 1" in result.stdout
    assert job_dirs(tmp_path) == []
    assert len(registry_htpasswd.requests()) == before  # refused before any login check


def test_override_does_not_take_the_variables_it_replaces(tmp_path: Path) -> None:
    env = plain_env(tmp_path, WERF_IMAGES_REPO_MODE="mono", WERF_IMAGES_REPO="quay.io/acme")
    got = exports(run(["setup", "--override", "-i", "quay.io/acme", "--shell", "json"], env))
    assert got["WERF_IMAGES_REPO_MODE"] == "multirepo"


def test_images_repo_mode_auto_is_accepted_and_exports_the_resolved_mode(tmp_path: Path) -> None:
    env = plain_env(tmp_path, WERF_IMAGES_REPO_MODE="multirepo")
    got = exports(run(["setup", "--images-repo-mode", "auto", "-i", "quay.io/acme/app", "-s", ":local",
                       "--shell", "json"], env))
    assert (got["WERF_IMAGES_REPO_IMPLEMENTATION"], got["WERF_IMAGES_REPO_MODE"]) == ("quay", "monorepo")


@pytest.mark.parametrize(
    ("images_repo", "stages"),
    [
        ("acme", "acme/stages"),  # Docker Hub account
        ("quay.io/acme", "quay.io/acme/stages"),
        ("docker.pkg.github.com/acme/project", "docker.pkg.github.com/acme/project/stages"),
        ("ghcr.io/acme/app", "ghcr.io/acme/app/stages"),
    ],
)
def test_default_stages_storage_is_valid_for_the_implementation(tmp_path: Path, images_repo: str,
                                                                 stages: str) -> None:
    got = exports(run(["setup", "--shell", "json"], plain_env(tmp_path, WERF_IMAGES_REPO=images_repo)))
    assert got["WERF_STAGES_STORAGE"] == stages
    info = run_ci_env("registry", "info", stages, "--images-repo-mode", "monorepo", env=plain_env(tmp_path))
    assert info.returncode == 0, info.stderr
    assert "(repository)" in info.stdout.splitlines()[0]


@pytest.mark.parametrize(
    ("images_repo", "suggestion"),
    [
        ("docker.io/foo/bar", "docker.io/foo/bar-stages"),
        ("quay.io/foo/bar", "quay.io/foo/bar-stages"),
        ("docker.pkg.github.com/foo/project/app", "docker.pkg.github.com/foo/project/app-stages"),
    ],
)
def test_no_valid_default_stages_storage_is_refused_with_the_fix(tmp_path: Path, images_repo: str,
                                                                 suggestion: str) -> None:
    env = plain_env(tmp_path, WERF_IMAGES_REPO=images_repo)
    result = run(["setup"], env)
    assert result.returncode == 2
    assert result.stderr.startswith(f"ci-env: error: no default stages storage for images repo {images_repo} "
                                    "(from WERF_IMAGES_REPO): ")
    assert f"pass -s/--stages-storage (or set WERF_STAGES_STORAGE) to a repository of its own, e.g. {suggestion}, " \
           "or :local" in result.stderr
    assert job_dirs(tmp_path) == []
    fixed = exports(run(["setup", "-s", ":local", "--shell", "json"], env))
    assert fixed["WERF_STAGES_STORAGE"] == ":local"
    own = run(["setup", "--shell", "json"], {**env, "WERF_STAGES_STORAGE": suggestion})
    assert own.returncode == 0, own.stderr
    assert own.stderr.splitlines()[-1].endswith(f"; stages storage {suggestion}")


def test_invalid_stages_storage_variable_is_refused(tmp_path: Path) -> None:
    env = plain_env(tmp_path, WERF_IMAGES_REPO="docker.io/foo/bar", WERF_STAGES_STORAGE="docker.io/foo/bar/stages")
    result = run(["setup"], env)
    assert result.returncode == 2
    assert result.stderr.startswith(
        "ci-env: error: stages storage docker.io/foo/bar/stages (from WERF_STAGES_STORAGE) is not valid: "
    )


def test_implementation_variable_of_another_registry_is_replaced(tmp_path: Path) -> None:
    earlier_job = {"WERF_IMAGES_REPO": "registry.gitlab.com/group/project", "WERF_IMAGES_REPO_IMPLEMENTATION": "gitlab",
                   "WERF_STAGES_STORAGE": "registry.gitlab.com/group/project/stages",
                   "WERF_STAGES_STORAGE_REPO_IMPLEMENTATION": "gitlab"}
    got = exports(run(["setup", "-i", "quay.io/acme/app", "-s", "quay.io/acme/app-stages", "--shell", "json"],
                      plain_env(tmp_path, **earlier_job)))
    assert got["WERF_IMAGES_REPO_IMPLEMENTATION"] == "quay"
    assert got["WERF_STAGES_STORAGE_REPO_IMPLEMENTATION"] == "quay"
    assert got["WERF_IMAGES_REPO_MODE"] == "monorepo"
    same_registry = plain_env(tmp_path, **{**earlier_job, "WERF_IMAGES_REPO_IMPLEMENTATION": "harbor"})
    result = run(["setup", "--shell", "json"], same_registry)
    assert result.returncode == 0, result.stderr
    assert "WERF_IMAGES_REPO_IMPLEMENTATION" in json.loads(result.stdout)["kept"]
    assert "(implementation harbor, mode multirepo)" in result.stderr


def test_common_implementation_variable_is_exported_for_its_registry(tmp_path: Path) -> None:
    env = plain_env(tmp_path, WERF_IMAGES_REPO="nexus.example.com/team", WERF_REPO_IMPLEMENTATION="nexus")
    got = exports(run(["setup", "--shell", "json"], env))
    assert got["WERF_IMAGES_REPO_IMPLEMENTATION"] == "nexus"
    assert got["WERF_STAGES_STORAGE_REPO_IMPLEMENTATION"] == "nexus"


def test_credentials_left_in_the_base_credential_store_are_named(tmp_path: Path,
                                                                 registry_htpasswd: RegistryService) -> None:
    base = tmp_path / "base-docker"
    base.mkdir()
    host = registry_htpasswd.host
    (base / "config.json").write_text(json.dumps({
        "credsStore": "desktop",
        "auths": {"https://index.docker.io/v1/": {}, host: {}, "ghcr.io": {}, "quay.io": {"auth": "eDp5"}},
        "credHelpers": {"ghcr.io": "gh"},
    }))
    env = {**gitlab_env(tmp_path, registry_htpasswd, "alice", USERS["alice"]), "DOCKER_CONFIG": str(base)}
    result = run(["setup"], env)
    assert result.returncode == 0, result.stderr
    warning, summary = result.stderr.splitlines()
    assert warning == (
        f"ci-env: warning: the base Docker config {base} keeps the credentials of docker.io in its credsStore "
        "'desktop', which this job's config does not use (a store is shared by every job): log in to it in the "
        "job (ci-env login REGISTRY) if the job needs it"
    )
    assert summary.startswith("ci-env: setup: gitlab job 4242;")


def test_shorthands_are_hidden_but_still_work(tmp_path: Path) -> None:
    listing = run_ci_env("--help", env=plain_env(tmp_path))
    commands = [line.split()[0] for line in listing.stdout.split("Commands:")[1].splitlines() if line.strip()]
    assert "setup" in commands and "gitlab" not in commands and "github" not in commands
    result = run(["gitlab", "--no-login", "--shell", "json"], plain_env(tmp_path))
    assert result.returncode == 0, result.stderr
