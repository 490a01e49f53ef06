"""create_job_dir / resolve_base / tmp_root: what a job's private config holds, and the base stays untouched."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from ci_env.ci.facts import JobFacts
from ci_env.configjson import BaseConfig
from ci_env.dockerconfig import create_job_dir, resolve_base, tmp_root
from ci_env.errors import ConfigError
from tests.cli import environ_without, run_ci_env
from tests.dockerconfig.conftest import tree_state
from tests.services import require

GITLAB = JobFacts(family="gitlab", system="gitlab", job_id="41")
GITHUB = JobFacts(family="github", system="github", job_id="9-1-build")
GENERIC = JobFacts(family="generic", system="none")


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_job_dir_is_private_and_config_is_0600(base_config: Path, tmp_path: Path) -> None:
    job = create_job_dir(BaseConfig(base_config), tmp_path / "root", "gitlab-41", [])
    assert _mode(job) == 0o700
    assert _mode(job / "config.json") == 0o600
    for dirpath, dirnames, filenames in os.walk(job):
        for name in dirnames:
            assert _mode(Path(dirpath) / name) == 0o700
        for name in filenames:
            path = Path(dirpath) / name
            if not path.is_symlink():
                assert _mode(path) == 0o600, path


def test_creds_store_and_stripped_helpers_are_removed(base_config: Path, tmp_path: Path) -> None:
    job = create_job_dir(BaseConfig(base_config), tmp_path, "gitlab-41", ["docker.io", "127.0.0.1:5999"])
    config = json.loads((job / "config.json").read_text())
    assert "credsStore" not in config
    # index.docker.io is Docker Hub: stripped via its alias; gcr.io is not logged into: kept
    assert config["credHelpers"] == {"gcr.io": "gcloud"}
    assert config["auths"]["shared.example.com"] == {"auth": "c2hhcmVkOnNoYXJlZA=="}
    assert config["psFormat"] == "table {{.ID}}"


def test_all_helpers_stripped_leaves_no_cred_helpers_key(tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text(json.dumps({"credHelpers": {"https://index.docker.io/v1/": "x"}}))
    job = create_job_dir(BaseConfig(base), tmp_path / "root", None, ["registry-1.docker.io"])
    assert json.loads((job / "config.json").read_text()) == {}


def test_base_is_byte_identical_afterwards(base_config: Path, tmp_path: Path) -> None:
    before = tree_state(base_config)
    create_job_dir(BaseConfig(base_config), tmp_path / "root", "gitlab-41", ["docker.io"])
    create_job_dir(BaseConfig(base_config), tmp_path / "root", "gitlab-41", ["docker.io"])
    assert tree_state(base_config) == before


def test_sockets_fifos_and_runtime_state_are_not_copied(base_config: Path, tmp_path: Path) -> None:
    job = create_job_dir(BaseConfig(base_config), tmp_path / "root", "gitlab-41", [])
    assert (job / "contexts" / "meta" / "abc" / "meta.json").read_text() == '{"Name":"remote"}'
    assert (job / "trust" / "private" / "key").read_text() == "trust key"
    assert (job / "buildx" / "instances" / "builder").exists()
    assert not os.path.lexists(job / "buildx" / "instances" / "agent.sock")
    assert not os.path.lexists(job / "run.sock")
    assert not os.path.lexists(job / "trust" / "fifo")
    assert not os.path.lexists(job / "buildx" / "refs")
    for dirpath, _dirs, files in os.walk(job):
        for name in files:
            mode = os.lstat(Path(dirpath) / name).st_mode
            assert stat.S_ISREG(mode) or stat.S_ISLNK(mode)


def test_cli_plugins_stay_usable_by_docker(base_config: Path, tmp_path: Path) -> None:
    docker = require("docker", "the docker CLI, to run a CLI plugin from the private config")
    job = create_job_dir(BaseConfig(base_config), tmp_path / "root", "gitlab-41", [])
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path / "nohome"), "DOCKER_CONFIG": str(job)}
    out = subprocess.run([docker, "hello"], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "hello from the plugin" in out.stdout
    # installing a plugin into the job's config does not touch the base
    (job / "cli-plugins" / "docker-extra").write_text("#!/bin/sh\n")
    assert not (base_config / "cli-plugins" / "docker-extra").exists()


def test_two_setups_in_one_job_get_two_directories(tmp_path: Path) -> None:
    first = create_job_dir(BaseConfig(None), tmp_path, "gitlab-41", [])
    second = create_job_dir(BaseConfig(None), tmp_path, "gitlab-41", [])
    assert first != second
    assert first.parent == second.parent == tmp_path


def test_removing_the_job_dir_keeps_the_base_plugins(base_config: Path, tmp_path: Path) -> None:
    job = create_job_dir(BaseConfig(base_config), tmp_path / "root", "gitlab-41", [])
    shutil.rmtree(job)
    assert (base_config / "cli-plugins" / "docker-hello").read_text().startswith("#!/bin/sh")


def test_gitlab_docker_auth_config_is_the_base_content(base_config: Path, tmp_path: Path) -> None:
    auth = {"auths": {"registry.example.com": {"auth": "dXNlcjpwYXNz"}}, "credsStore": "secretservice"}
    env = {"HOME": str(base_config.parent), "DOCKER_AUTH_CONFIG": json.dumps(auth)}
    base = resolve_base(None, env, GITLAB)
    assert base.directory == base_config
    job = create_job_dir(base, tmp_path / "root", "gitlab-41", [])
    assert json.loads((job / "config.json").read_text()) == {"auths": auth["auths"]}
    assert (job / "cli-plugins" / "docker-hello").exists()


def test_docker_auth_config_outside_gitlab_is_ignored(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "DOCKER_AUTH_CONFIG": "{not json"}
    assert resolve_base(None, env, GITHUB).content is None


def test_invalid_docker_auth_config_names_the_variable_not_its_value(tmp_path: Path) -> None:
    secret = '{"auths": {"r": {"auth": "c2VjcmV0LXRva2Vu"}'
    with pytest.raises(ConfigError) as caught:
        resolve_base(None, {"HOME": str(tmp_path), "DOCKER_AUTH_CONFIG": secret}, GITLAB)
    assert "$DOCKER_AUTH_CONFIG" in caught.value.message
    assert "c2VjcmV0" not in caught.value.message
    with pytest.raises(ConfigError, match="JSON object"):
        resolve_base(None, {"HOME": str(tmp_path), "DOCKER_AUTH_CONFIG": '["x"]'}, GITLAB)


@pytest.mark.parametrize("deep", ["[" * 100_000, '{"a":' * 20_000 + "1" + "}" * 20_000], ids=["arrays", "objects"])
def test_a_deeply_nested_docker_auth_config_is_one_error_line(tmp_path: Path, deep: str) -> None:
    env = {**environ_without(), "HOME": str(tmp_path), "GITLAB_CI": "true", "CI": "true", "CI_JOB_ID": "41",
           "WERF_TMP_DIR": str(tmp_path / "tmp"), "DOCKER_AUTH_CONFIG": deep}
    out = run_ci_env("setup", "--as-file", env=env, cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        "ci-env: error: $DOCKER_AUTH_CONFIG is JSON nested too deeply to be a Docker config; "
        'it must hold a Docker config.json object such as {"auths": {...}}']
    assert not (tmp_path / "tmp").exists() or not any((tmp_path / "tmp").iterdir())  # no job directory left


def test_invalid_base_config_json_is_a_config_error(tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text('{"auths": {"x": {"auth": "c2VjcmV0"}')
    with pytest.raises(ConfigError) as caught:
        create_job_dir(BaseConfig(base), tmp_path / "root", "k", [])
    assert str(base / "config.json") in caught.value.message
    assert "c2VjcmV0" not in caught.value.message
    assert not (tmp_path / "root").exists() or list((tmp_path / "root").iterdir()) == []


def test_base_precedence(tmp_path: Path) -> None:
    for name in ("opt", "werf", "docker", "home/.docker"):
        (tmp_path / name).mkdir(parents=True)
    env = {"HOME": str(tmp_path / "home"), "WERF_DOCKER_CONFIG": str(tmp_path / "werf"),
           "DOCKER_CONFIG": str(tmp_path / "docker")}
    assert resolve_base(str(tmp_path / "opt"), env, GENERIC).directory == tmp_path / "opt"
    assert resolve_base(None, env, GENERIC).directory == tmp_path / "werf"
    del env["WERF_DOCKER_CONFIG"]
    assert resolve_base(None, env, GENERIC).directory == tmp_path / "docker"
    del env["DOCKER_CONFIG"]
    assert resolve_base(None, env, GENERIC).directory == tmp_path / "home" / ".docker"
    assert resolve_base(None, {"HOME": str(tmp_path / "nowhere")}, GENERIC).directory is None
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="not a directory"):
        resolve_base(str(tmp_path / "file"), env, GENERIC)


def test_tmp_root_precedence(tmp_path: Path) -> None:
    env = {"WERF_TMP_DIR": str(tmp_path / "werf"), "RUNNER_TEMP": str(tmp_path / "runner")}
    assert tmp_root(str(tmp_path / "opt"), env, GITHUB) == tmp_path / "opt"
    assert tmp_root(None, env, GITHUB) == tmp_path / "werf"
    del env["WERF_TMP_DIR"]
    assert tmp_root(None, env, GITHUB) == tmp_path / "runner"
    assert tmp_root(None, env, GITLAB) != tmp_path / "runner"


def test_tmp_root_that_is_a_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="--tmp-dir"):
        create_job_dir(BaseConfig(None), tmp_path / "file", "k", [])
