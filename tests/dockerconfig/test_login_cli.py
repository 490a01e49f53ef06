"""`ci-env login`: refuses shared configs, verifies, never leaks the password, and is safe in parallel."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

from ci_env.configjson import BaseConfig
from ci_env.dockerconfig import create_job_dir
from tests.conftest import USERS
from tests.dockerconfig.conftest import REPO, run_cli
from tests.services.registry import RegistryService


def _job(tmp_path: Path) -> Path:
    return create_job_dir(BaseConfig(None), tmp_path / "root", "gitlab-77", [])


def _auths(job: Path) -> dict[str, str]:
    config = json.loads((job / "config.json").read_text())
    return {key: base64.b64decode(value["auth"]).decode() for key, value in config["auths"].items()}


def test_login_writes_verified_credentials(registry_htpasswd: RegistryService, tmp_path: Path) -> None:
    job = _job(tmp_path)
    out = run_cli(["login", registry_htpasswd.host, "-u", "bob", "--password-stdin", "--verbose"],
                  {"DOCKER_CONFIG": str(job), "HOME": str(tmp_path)}, stdin=USERS["bob"] + "\n")
    assert out.returncode == 0, out.stderr
    assert _auths(job) == {registry_htpasswd.host: f"bob:{USERS['bob']}"}
    assert USERS["bob"] not in out.stderr and USERS["bob"] not in out.stdout
    assert base64.b64encode(f"bob:{USERS['bob']}".encode()).decode() not in out.stderr
    assert stat.S_IMODE(os.stat(job / "config.json").st_mode) == 0o600


def test_bad_password_is_refused_and_nothing_written(registry_htpasswd: RegistryService, tmp_path: Path) -> None:
    job = _job(tmp_path)
    before = (job / "config.json").read_bytes()
    out = run_cli(["login", registry_htpasswd.host, "-u", "alice", "--password-stdin", "-v"],
                  {"DOCKER_CONFIG": str(job)}, stdin="s3cret-wrong-pw")
    assert out.returncode == 1
    assert out.stderr.splitlines()[-1].startswith("ci-env: error: login to ")
    assert registry_htpasswd.host in out.stderr and "HTTP 401" in out.stderr
    assert "s3cret-wrong-pw" not in out.stderr and "Traceback" not in out.stderr
    assert (job / "config.json").read_bytes() == before


def test_token_registry_login(registry_token: RegistryService, tmp_path: Path) -> None:
    job = _job(tmp_path)
    out = run_cli(["login", registry_token.host, "-u", "alice", "--password-stdin", "-v"],
                  {"DOCKER_CONFIG": str(job)}, stdin=USERS["alice"])
    assert out.returncode == 0, out.stderr
    assert USERS["alice"] not in out.stderr
    assert _auths(job) == {registry_token.host: f"alice:{USERS['alice']}"}


def test_login_without_isolated_config_refuses(tmp_path: Path) -> None:
    out = run_cli(["login", "r.example.com", "-u", "u", "--password-stdin", "--no-verify"],
                  {"HOME": str(tmp_path)}, stdin="pw")
    assert out.returncode == 2
    assert "ci-env setup" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / ".docker").exists()


def test_login_into_a_shared_config_refuses(tmp_path: Path) -> None:
    shared = tmp_path / ".docker"
    shared.mkdir()
    (shared / "config.json").write_text("{}")
    out = run_cli(["login", "r.example.com", "-u", "u", "--password-stdin", "--no-verify"],
                  {"HOME": str(tmp_path), "DOCKER_CONFIG": str(shared)}, stdin="pw")
    assert out.returncode == 2
    assert "not a ci-env job directory" in out.stderr
    assert (shared / "config.json").read_text() == "{}"


def test_login_needs_password_stdin(tmp_path: Path) -> None:
    job = _job(tmp_path)
    out = run_cli(["login", "r.example.com", "-u", "u"], {"DOCKER_CONFIG": str(job)}, stdin="pw")
    assert out.returncode == 2 and "--password-stdin" in out.stderr
    empty = run_cli(["login", "r.example.com", "-u", "u", "--password-stdin"], {"DOCKER_CONFIG": str(job)}, stdin="")
    assert empty.returncode == 2 and "no password on stdin" in empty.stderr


def test_docker_hub_login_uses_dockers_key_and_replaces_aliases(tmp_path: Path) -> None:
    job = _job(tmp_path)
    for name, password in (("index.docker.io", "first"), ("docker.io", "second")):
        out = run_cli(["login", name, "-u", "hubuser", "--password-stdin", "--no-verify"],
                      {"DOCKER_CONFIG": str(job)}, stdin=password)
        assert out.returncode == 0, out.stderr
    assert _auths(job) == {"https://index.docker.io/v1/": "hubuser:second"}


def test_parallel_logins_keep_every_entry(tmp_path: Path, registry_htpasswd: RegistryService) -> None:
    job = _job(tmp_path)
    stop = threading.Event()
    invalid: list[str] = []

    def watch() -> None:  # the file must be complete JSON at every moment
        while not stop.is_set():
            try:
                json.loads((job / "config.json").read_text())
            except ValueError as exc:
                invalid.append(str(exc))

    watcher = threading.Thread(target=watch)
    watcher.start()
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO), "DOCKER_CONFIG": str(job)}
    processes = []
    for index in range(16):
        registry = registry_htpasswd.host if index == 0 else f"registry-{index}.example.com:5000"
        args = [sys.executable, "-m", "ci_env", "login", registry, "-u", "alice" if index == 0 else f"user{index}",
                "--password-stdin"]
        if index:
            args.append("--no-verify")
        proc = subprocess.Popen(args, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        processes.append((proc, USERS["alice"] if index == 0 else f"pass{index}"))
    for proc, password in processes:
        _out, err = proc.communicate(password.encode(), timeout=120)
        assert proc.returncode == 0, err.decode()
    stop.set()
    watcher.join()
    assert invalid == []
    auths = _auths(job)
    assert auths[registry_htpasswd.host] == f"alice:{USERS['alice']}"
    assert {f"registry-{i}.example.com:5000": f"user{i}:pass{i}" for i in range(1, 16)}.items() <= auths.items()
    assert len(auths) == 16
    assert stat.S_IMODE(os.stat(job / "config.json").st_mode) == 0o600
    leftovers = [p.name for p in job.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
