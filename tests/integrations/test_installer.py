"""scripts/install-ci-env, the install step of the GitLab template and the Action, run as a runner runs it.

Each test gives the installer a fresh runner (new HOME, no pip settings from this machine) and checks
what a job sees: the `ci-env` command it prints, what that command does, what is in the install home,
and the messages. Packages come from the offline wheelhouse, a zipapp built from it, or an HTTPS
package index signed by a private CA (a company mirror).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.machinery
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from pytest_httpserver import HTTPServer

from ci_env import __version__
from tests.integrations.conftest import INSTALLER
from tests.integrations.runnerenv import find_python, runner_env
from tests.services.package_index import serve_package_index


def _run(env: dict[str, str], *args: str, python: str = sys.executable, cwd: Path | None = None
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([python, str(INSTALLER), *args], env=env, capture_output=True, text=True, timeout=600,
                          cwd=cwd)


def _installer_module() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("install_ci_env", str(INSTALLER))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def _ci_env(bin_dir: str, env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(bin_dir) / "ci-env"), *args], env=env, capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def _entries(home: Path) -> list[Path]:
    return sorted(p for p in home.iterdir() if p.is_dir() and not p.name.startswith("."))


def test_zipapp_installs_without_a_virtualenv_and_is_found_again(tmp_path: Path, zipapp: Path) -> None:
    env = runner_env(tmp_path / "home", uv=False)
    home = tmp_path / "ci-env-home"
    first = _run(env, "--home", str(home), "--spec", str(zipapp))
    assert first.returncode == 0, first.stderr
    bin_dir = first.stdout.strip()
    (entry,) = _entries(home)
    assert Path(bin_dir) == entry / "bin"
    assert not (entry / "venv").exists() and (entry / "app" / "ci_env" / "__init__.py").is_file()
    version = _ci_env(bin_dir, env, "--version")
    assert version.returncode == 0 and "ci-env, version" in version.stdout
    inode = entry.stat().st_ino
    again = _run(env, "--home", str(home), "--spec", str(zipapp))
    assert again.returncode == 0 and again.stdout == first.stdout and again.stderr == ""
    assert entry.stat().st_ino == inode, "found, not made again"


def test_install_survives_a_move_and_ignores_the_jobs_directory(tmp_path: Path, zipapp: Path) -> None:
    """A cache restores the entry elsewhere (GitLab's project directory differs between jobs); a project
    with a package named like a dependency (click/) does not shadow it."""
    env = runner_env(tmp_path / "home", uv=False)
    made = _run(env, "--home", str(tmp_path / "first"), "--spec", str(zipapp))
    assert made.returncode == 0, made.stderr
    moved = tmp_path / "elsewhere" / "ci-env"
    shutil.copytree(tmp_path / "first", moved, symlinks=True)
    shutil.rmtree(tmp_path / "first")
    project = tmp_path / "project"
    (project / "click").mkdir(parents=True)
    (project / "click" / "__init__.py").write_text("raise SystemExit('the project shadowed click')\n")
    (entry,) = _entries(moved)
    result = _ci_env(str(entry / "bin"), env, "--version", cwd=project)
    assert result.returncode == 0, result.stderr
    found = _run(env, "--home", str(moved), "--spec", str(zipapp))
    assert found.stdout.strip() == str(entry / "bin"), "the moved entry is used as it is"


def test_zipapp_from_a_url(tmp_path: Path, zipapp: Path, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/releases/v1/ci-env.pyz").respond_with_data(zipapp.read_bytes())
    env = runner_env(tmp_path / "home", uv=False)
    result = _run(env, "--home", str(tmp_path / "h"), "--spec", httpserver.url_for("/releases/v1/ci-env.pyz"),
                  "--sha256", hashlib.sha256(zipapp.read_bytes()).hexdigest())  # plain http: pinned, or refused
    assert result.returncode == 0, result.stderr
    assert _ci_env(result.stdout.strip(), env, "--version").returncode == 0


def test_zipapp_that_cannot_be_fetched_falls_back_to_the_index(
    tmp_path: Path, https: tuple[HTTPServer, Path], wheelhouse: Path
) -> None:
    server, ca = https
    server.expect_request("/releases/v9/ci-env.pyz").respond_with_data("gone", status=404)
    url = server.url_for("/releases/v9/ci-env.pyz")
    env = runner_env(tmp_path / "home", uv=False, pip_conf=f"[global]\nno-index = true\nfind-links = {wheelhouse}\n")
    env["SSL_CERT_FILE"] = str(ca)
    result = _run(env, "--home", str(tmp_path / "h"), "--spec", url, "--fallback", f"ci-env=={__version__}")
    assert result.returncode == 0, result.stderr
    assert f"ci-env: could not fetch {url}: HTTP Error 404" in result.stderr
    assert f"installing ci-env=={__version__} instead" in result.stderr
    assert _ci_env(result.stdout.strip(), env, "--version").returncode == 0

    alone = _run(env, "--home", str(tmp_path / "h2"), "--spec", url)
    assert alone.returncode == 1
    assert alone.stderr.splitlines()[-1].startswith(f"ci-env: error: could not fetch {url}: HTTP Error 404")
    assert [p.name for p in (tmp_path / "h2").iterdir()] == [".locks"], "nothing half-made is left"


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"not a zip", "is not a zipapp (not a zip file)"), (None, "is not a ci-env zipapp")],
)
def test_a_file_that_is_not_a_ci_env_zipapp_is_refused(
    tmp_path: Path, wheelhouse: Path, content: bytes | None, message: str
) -> None:
    pyz = tmp_path / "other.pyz"
    if content is None:
        shutil.make_archive(str(tmp_path / "other"), "zip", wheelhouse.parent, wheelhouse.name)
        (tmp_path / "other.zip").rename(pyz)
    else:
        pyz.write_bytes(content)
    result = _run(runner_env(tmp_path / "home", uv=False), "--home", str(tmp_path / "h"), "--spec", str(pyz))
    assert result.returncode == 1
    assert result.stderr.strip() == f"ci-env: error: {pyz} {message}" + (
        " (no ci_env package and __main__.py in it)" if content is None else ""
    )


def test_zipapp_cannot_hold_the_aws_extra(tmp_path: Path, zipapp: Path) -> None:
    env = runner_env(tmp_path / "home", uv=False)
    result = _run(env, "--home", str(tmp_path / "h"), "--spec", str(zipapp), "--extras", "aws")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"ci-env: error: the zipapp {zipapp} carries the extras ['docker'] only (and kube beside it), not ['aws']; "
        "install a wheel instead"
    )


def test_wheel_with_pip_when_there_is_no_uv(tmp_path: Path, wheelhouse: Path, ci_env_wheel: Path) -> None:
    env = runner_env(tmp_path / "home", uv=False)
    env["CI_ENV_PIP_ARGS"] = f"--no-index --find-links {wheelhouse}"
    result = _run(env, "--home", str(tmp_path / "h"), "--spec", str(ci_env_wheel), "--extras", "docker")
    assert result.returncode == 0, result.stderr
    (entry,) = _entries(tmp_path / "h")
    site = next((entry / "venv" / "lib").glob("python*/site-packages"))
    assert (site / "docker").is_dir() and (site / "ci_env").is_dir()
    assert not (site / "pip").exists(), "the virtualenv is made without pip (pip --python installs into it)"
    assert _ci_env(result.stdout.strip(), env, "--version").returncode == 0


def test_wheel_from_a_url_with_extras(
    tmp_path: Path, wheelhouse: Path, ci_env_wheel: Path, httpserver: HTTPServer
) -> None:
    """A pinned wheel on a file server: the extras go in pip's `name[extras] @ URL` form."""
    httpserver.expect_request(f"/files/{ci_env_wheel.name}").respond_with_data(ci_env_wheel.read_bytes())
    env = runner_env(tmp_path / "home", uv=False)
    env["CI_ENV_PIP_ARGS"] = f"--no-index --find-links {wheelhouse}"
    url = httpserver.url_for(f"/files/{ci_env_wheel.name}")
    result = _run(env, "--home", str(tmp_path / "h"), "--spec", url, "--extras", "docker")
    assert result.returncode == 0, result.stderr
    (entry,) = _entries(tmp_path / "h")
    assert list((entry / "venv" / "lib").glob("python*/site-packages/docker"))
    assert _ci_env(result.stdout.strip(), env, "--version").returncode == 0


def test_setup_jobs_do_not_get_the_docker_extra(tmp_path: Path, wheelhouse: Path, ci_env_wheel: Path) -> None:
    env = runner_env(tmp_path / "home", uv=False)
    env["CI_ENV_PIP_ARGS"] = f"--no-index --find-links {wheelhouse}"
    result = _run(env, "--home", str(tmp_path / "h"), "--spec", str(ci_env_wheel))
    assert result.returncode == 0, result.stderr
    (entry,) = _entries(tmp_path / "h")
    assert not list((entry / "venv" / "lib").glob("python*/site-packages/docker"))


def test_uv_gets_the_runners_pip_configuration_index_and_ca(
    tmp_path: Path, wheelhouse: Path, ci_env_wheel: Path
) -> None:
    """A runner whose pip knows the company mirror and its CA (pip.conf): uv, told the same, installs from
    it; nothing reaches any other index (HTTPS_PROXY is a dead end)."""
    with serve_package_index(wheelhouse, tmp_path / "mirror") as index:
        conf = f"[global]\nindex-url = {index.url}\ncert = {index.ca_file}\n"
        env = runner_env(tmp_path / "home", uv=True, pip_conf=conf)
        env["HTTPS_PROXY"] = env["https_proxy"] = "http://127.0.0.1:9"
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1"
        env["UV_CACHE_DIR"] = str(tmp_path / "uv-cache")
        result = _run(env, "--home", str(tmp_path / "h"), "--spec", str(ci_env_wheel))
        assert result.returncode == 0, result.stderr
        assert "trying pip" not in result.stderr
        assert any(p.startswith("/simple/click/") for p in index.requests), index.requests
        assert any((tmp_path / "uv-cache").iterdir()), "uv installed it"
        assert _ci_env(result.stdout.strip(), env, "--version").returncode == 0


def test_when_uv_fails_pip_installs_and_the_message_names_uv(
    tmp_path: Path, wheelhouse: Path, ci_env_wheel: Path
) -> None:
    """Arguments written for pip that uv does not take (--progress-bar): uv fails, pip succeeds."""
    env = runner_env(tmp_path / "home", uv=True)
    env["CI_ENV_PIP_ARGS"] = f"--progress-bar off --no-index --find-links {wheelhouse}"
    result = _run(env, "--home", str(tmp_path / "h"), "--spec", str(ci_env_wheel))
    assert result.returncode == 0, result.stderr
    assert "unexpected argument '--progress-bar'" in result.stderr
    assert f"ci-env: uv could not install {ci_env_wheel} (its message is above); trying pip" in result.stderr
    assert _ci_env(result.stdout.strip(), env, "--version").returncode == 0


def test_when_both_fail_the_error_names_pip(tmp_path: Path, ci_env_wheel: Path) -> None:
    env = runner_env(tmp_path / "home", uv=True, pip_conf=f"[global]\nno-index = true\nfind-links = {tmp_path}\n")
    result = _run(env, "--home", str(tmp_path / "h"), "--spec", str(ci_env_wheel))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert f"ci-env: uv could not install {ci_env_wheel} (its message is above); trying pip" in lines
    assert lines[-1] == f"ci-env: error: pip could not install {ci_env_wheel} (pip's message is above)"
    assert [p.name for p in (tmp_path / "h").iterdir()] == [".locks"], "no entry, no half-made directory"


def test_an_entry_made_for_another_python_is_never_used(tmp_path: Path, zipapp: Path) -> None:
    env = runner_env(tmp_path / "home", uv=False)
    home = str(tmp_path / "h")
    made = {}
    for version in ("3.10", "3.12"):
        python = find_python(version)
        result = _run(env, "--home", home, "--spec", str(zipapp), python=python)
        assert result.returncode == 0, result.stderr
        launcher = (Path(result.stdout.strip()) / "ci-env").read_text()
        assert python in launcher or os.path.realpath(python) in launcher
        made[version] = result.stdout.strip()
    assert made["3.10"] != made["3.12"]


def test_python_too_old_is_named(tmp_path: Path, zipapp: Path) -> None:
    python = find_python("3.8")
    result = _run(runner_env(tmp_path / "home", uv=False), "--home", str(tmp_path / "h"), "--spec", str(zipapp),
                  python=python)
    assert result.returncode == 2
    assert result.stderr.startswith("ci-env: error: ci-env needs Python 3.10 or newer;")
    assert result.stderr.strip().endswith("set CI_ENV_PYTHON to a newer one")


@pytest.mark.parametrize(
    "files",
    [
        {"PIP_CONFIG_FILE": "[global]\nindex-url = https://a.example/simple\n[install]\nfind-links = /x\n"},
        {"PIP_CONFIG_FILE": "[global]\nextra-index-url = https://b.example/simple https://c.example/simple\n",
         "env": {"PIP_INDEX_URL": "https://env.example/simple", "PIP_NO_INDEX": "1"}},
        {"user": "[global]\ncert = /u.pem\ntrusted-host = u.example\n", "xdg": "[global]\ncert = /g.pem\n"},
    ],
)
def test_pip_settings_are_read_as_pip_reads_them(tmp_path: Path, files: dict[str, object]) -> None:
    """The installer's reading of pip's configuration equals `pip config list` (pip's own)."""
    env = runner_env(tmp_path / "home", uv=False)
    xdg = tmp_path / "xdg"
    env["XDG_CONFIG_DIRS"] = str(xdg)
    for kind, text in files.items():
        if kind == "env":
            assert isinstance(text, dict)
            env.update(text)
            continue
        assert isinstance(text, str)
        path = {"PIP_CONFIG_FILE": tmp_path / "named.conf", "user": tmp_path / "home" / ".config" / "pip" / "pip.conf",
                "xdg": xdg / "pip" / "pip.conf"}[kind]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if kind == "PIP_CONFIG_FILE":
            env["PIP_CONFIG_FILE"] = str(path)
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], env=env, capture_output=True,
                            text=True, check=True).stdout
    expected: dict[str, str] = {}
    for section in ("global", "install", ":env:"):
        for line in listed.splitlines():
            key, _, value = line.partition("=")
            if key.startswith(section + "."):
                expected[key[len(section) + 1:]] = value.strip("'")
    expected.pop("config-file", None)  # $PIP_CONFIG_FILE names the file; it is no setting of its own
    code = ("import json, importlib.machinery as m, sys; "
            f"mod = m.SourceFileLoader('i', {str(INSTALLER)!r}).load_module(); "
            "print(json.dumps(mod.pip_configuration()))")
    got = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert json.loads(got) == expected


def test_pip_settings_become_uv_arguments_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    module = _installer_module()
    settings = {"index-url": "https://mirror/simple", "extra-index-url": "https://a/simple https://b/simple",
                "cert": "/ca.pem", "no-index": "true", "proxy": "http://proxy:3128", "disable-pip-version-check": "1"}
    for variable in ("SSL_CERT_FILE", "HTTPS_PROXY", "UV_NATIVE_TLS", "UV_SYSTEM_CERTS", "CI_ENV_PIP_ARGS"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(module, "pip_configuration", lambda: settings)
    command, env = module.uv_command("uv", "/venv/bin/python", ["ci-env"])
    assert command == [
        "uv", "pip", "install", "--quiet", "--python", "/venv/bin/python",
        "--index-url", "https://mirror/simple",
        "--extra-index-url", "https://a/simple", "--extra-index-url", "https://b/simple",
        "--no-index", "--index-strategy=unsafe-best-match", "ci-env",
    ]
    assert (env["SSL_CERT_FILE"], env["HTTPS_PROXY"], env["UV_NATIVE_TLS"]) == ("/ca.pem", "http://proxy:3128", "1")


def test_a_zipapp_url_with_credentials_authenticates_and_never_prints_them(
    tmp_path: Path, zipapp: Path, httpserver: HTTPServer
) -> None:
    """A private mirror: ``https://user:password@host/ci-env.pyz`` logs in with Basic credentials, as pip takes
    them from a URL; the installer's messages show the URL without them."""
    basic = "Basic " + base64.b64encode(b"ci:SECRET-tok").decode()
    httpserver.expect_request("/private/ci-env.pyz", headers={"Authorization": basic}).respond_with_data(
        zipapp.read_bytes())
    httpserver.expect_request("/private/gone.pyz").respond_with_data("gone", status=404)
    base = httpserver.url_for("/private/").replace("http://", "http://ci:SECRET-tok@")
    env = runner_env(tmp_path / "home", uv=False)
    pin = ("--sha256", hashlib.sha256(zipapp.read_bytes()).hexdigest())  # plain http: pinned, or refused
    result = _run(env, "--home", str(tmp_path / "h"), "--spec", base + "ci-env.pyz", *pin)
    assert result.returncode == 0, result.stderr
    assert _ci_env(result.stdout.strip(), env, "--version").returncode == 0

    failed = _run(env, "--home", str(tmp_path / "h2"), "--spec", base + "gone.pyz", *pin)
    assert failed.returncode == 1
    assert failed.stderr.strip() == (
        f"ci-env: error: could not fetch {httpserver.url_for('/private/gone.pyz')}: HTTP Error 404: NOT FOUND"
    )
    assert "SECRET-tok" not in failed.stderr
