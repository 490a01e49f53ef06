"""What the installer lets run: the committed release zipapp served over HTTPS (as gitlab.com serves the
tag's dist/ci-env.pyz), checked against the digest the GitLab template pins for the release; tampered,
downgraded and redirected downloads, and installs found again (restored from a cache) that were changed,
planted or left writable by others. Each case is what a job would run; a zipapp "payload" stands for an
attacker's code and records whether it ran, and with which token.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pytest_httpserver import HTTPServer

from ci_env import __version__
from tests.integrations.conftest import INSTALLER, ROOT
from tests.integrations.runnerenv import runner_env
from tests.services.tls import self_signed, server_context

RELEASE = ROOT / "dist" / "ci-env.pyz"
TEMPLATE = ROOT / ".gitlab-ci-template.yml"
RAW = f"/ci-env/ci-env/-/raw/v{__version__}/dist/ci-env.pyz"


def template_digest(version: str) -> str:
    """The sha256 the GitLab template pins for ``version`` (its table of release digests)."""
    match = re.search(rf'^ *{re.escape(version)}\) ci_env_sha256="([0-9a-f]{{64}})" ;;$', TEMPLATE.read_text(), re.M)
    assert match, f"the template pins no digest for {version}"
    return match.group(1)


def payload(marker: Path) -> bytes:
    """A zipapp that passes for ci-env and, when run, writes the job's CI_JOB_TOKEN to ``marker``."""
    code = f"import os\nopen({str(marker)!r}, 'w').write(os.environ.get('CI_JOB_TOKEN', ''))\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("__main__.py", code)
        archive.writestr("ci_env/__init__.py", "")
        archive.writestr("ci_env/cli.py", f"def main():\n    exec({code!r})\n")
    return b"#!/usr/bin/env python3\n" + buffer.getvalue()


@pytest.fixture
def https(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HTTPServer, Path]]:
    """An HTTPS server (a private CA's certificate, trusted through SSL_CERT_FILE) and that CA file."""
    certificate = self_signed(tmp_path_factory.mktemp("tls"), ["localhost"])
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=server_context(certificate))
    server.start()
    yield server, certificate.cert
    server.clear()
    if server.is_running():
        server.stop()


def job_env(tmp_path: Path, ca: Path | None = None) -> dict[str, str]:
    env = runner_env(tmp_path / "runner-home", uv=False)
    env["CI_JOB_TOKEN"] = "job-token-secret"
    if ca is not None:
        env["SSL_CERT_FILE"] = str(ca)
    return env


def install(env: dict[str, str], home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-S", str(INSTALLER), "--home", str(home), *args], env=env,
                          capture_output=True, text=True, timeout=300)


def run_job(result: subprocess.CompletedProcess[str], env: dict[str, str]) -> None:
    """What the template does next: run the installed ci-env, when the installer printed one."""
    if result.returncode == 0:
        subprocess.run([str(Path(result.stdout.strip()) / "ci-env"), "--version"], env=env, capture_output=True,
                       timeout=120)


def test_the_release_installs_from_https_with_the_templates_digest(tmp_path: Path, https: tuple[HTTPServer, Path]
                                                                   ) -> None:
    server, ca = https
    server.expect_request(RAW).respond_with_data(RELEASE.read_bytes())
    env = job_env(tmp_path, ca)
    digest = template_digest(__version__)
    assert digest == (ROOT / "dist" / "SHA256SUMS").read_text().split()[0] == hashlib.sha256(
        RELEASE.read_bytes()).hexdigest(), "the template, SHA256SUMS and the committed zipapp agree"
    result = install(env, tmp_path / "h", "--spec", server.url_for(RAW), "--sha256", digest)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    version = subprocess.run([str(Path(result.stdout.strip()) / "ci-env"), "--version"], env=env,
                             capture_output=True, text=True, timeout=120)
    assert version.stdout.startswith(f"ci-env, version {__version__} (commit "), version.stderr


@pytest.mark.parametrize("served", ["tampered", "downgraded"])
def test_a_download_with_another_digest_is_refused_before_it_runs(
    tmp_path: Path, https: tuple[HTTPServer, Path], zipapp: Path, served: str
) -> None:
    """A mirror serving other bytes under the release's URL: an attacker's zipapp, or a genuine but other
    build of ci-env (an older release). One line, nothing unpacked, nothing run."""
    server, ca = https
    marker = tmp_path / "ran"
    body = payload(marker) if served == "tampered" else zipapp.read_bytes()
    server.expect_request(RAW).respond_with_data(body)
    env = job_env(tmp_path, ca)
    url = server.url_for(RAW)
    result = install(env, tmp_path / "h", "--spec", url, "--sha256", template_digest(__version__))
    run_job(result, env)
    assert result.returncode == 1
    assert result.stderr == (f"ci-env: error: refused {url}: its sha256 is {hashlib.sha256(body).hexdigest()}, "
                             f"not the pinned {template_digest(__version__)} (nothing was unpacked or run)\n")
    assert not marker.exists()
    assert [p.name for p in (tmp_path / "h").iterdir()] == [".locks"], "nothing half-made is left"


def test_a_redirect_from_https_to_http_is_refused(tmp_path: Path, https: tuple[HTTPServer, Path],
                                                  httpserver: HTTPServer) -> None:
    """An HTTPS mirror answering 302 to plain http: the job never runs what came over http (which, run, would
    see CI_JOB_TOKEN)."""
    server, ca = https
    marker = tmp_path / "ran"
    httpserver.expect_request("/evil/ci-env.pyz").respond_with_data(payload(marker))
    server.expect_request("/mirror/ci-env.pyz").respond_with_data(
        "", status=302, headers={"Location": httpserver.url_for("/evil/ci-env.pyz")})
    env = job_env(tmp_path, ca)
    url = server.url_for("/mirror/ci-env.pyz")
    result = install(env, tmp_path / "h", "--spec", url)
    run_job(result, env)
    assert not marker.exists(), f"the http download ran and read the token: {marker.read_text()!r}"
    assert result.returncode == 1
    assert result.stderr == (f"ci-env: error: refused the redirect from {url} to "
                             f"{httpserver.url_for('/evil/ci-env.pyz')}: it leaves https\n")


@pytest.mark.parametrize("change", ["source", "planted file", "planted bytecode", "pyz", "launcher"])
def test_a_changed_install_is_installed_again_before_it_runs(tmp_path: Path, change: str) -> None:
    """An install found again (restored from a cache, left on the runner) that differs from the pinned
    release: a line says so, the release is installed again, the change never runs."""
    env = job_env(tmp_path)
    marker = tmp_path / "ran"
    digest = template_digest(__version__)
    home = tmp_path / "h"
    first = install(env, home, "--spec", str(RELEASE), "--sha256", digest)
    assert first.returncode == 0, first.stderr
    entry = Path(first.stdout.strip()).parent
    evil = f"open({str(marker)!r}, 'w').write('ran')\n"
    if change == "source":
        with (entry / "app" / "ci_env" / "__init__.py").open("a") as handle:
            handle.write(evil)
    elif change == "planted file":
        (entry / "app" / "sitecustomize.py").write_text(evil)
        (entry / "app" / "ci_env" / "buildinfo.py").unlink()
    elif change == "planted bytecode":
        import importlib.util

        cache = entry / "app" / "ci_env" / "__pycache__"
        cache.mkdir()
        source = (entry / "app" / "ci_env" / "__init__.py")
        code = compile(source.read_text() + evil, str(source), "exec")
        import marshal

        st = source.stat()
        header = importlib.util.MAGIC_NUMBER + (0).to_bytes(4, "little") + int(st.st_mtime).to_bytes(4, "little")
        (cache / f"__init__.{sys.implementation.cache_tag}.pyc").write_bytes(
            header + (st.st_size & 0xFFFFFFFF).to_bytes(4, "little") + marshal.dumps(code))
    elif change == "pyz":
        (entry / "ci-env.pyz").write_bytes(payload(marker))
        (entry / "sha256").write_text(hashlib.sha256((entry / "ci-env.pyz").read_bytes()).hexdigest() + "\n")
    else:
        launcher = entry / "bin" / "ci-env"
        launcher.write_text(launcher.read_text().replace("exec ", f"echo ran > {marker}; exec "))
    again = install(env, home, "--spec", str(RELEASE), "--sha256", digest)
    assert again.returncode == 0, again.stderr
    assert again.stdout == first.stdout
    assert re.fullmatch(r"ci-env: the installed ci-env cannot run: .*; installing it again\n", again.stderr), \
        again.stderr
    version = subprocess.run([str(entry / "bin" / "ci-env"), "--version"], env=env, capture_output=True, text=True)
    assert version.returncode == 0 and not marker.exists()
    clean = install(env, home, "--spec", str(RELEASE), "--sha256", digest)
    assert clean.stderr == "", "the reinstalled entry passes the check"


def test_an_install_home_others_can_write_to_is_refused(tmp_path: Path) -> None:
    env = job_env(tmp_path)
    home = tmp_path / "shared"
    home.mkdir()
    home.chmod(0o777)
    result = install(env, home, "--spec", str(RELEASE), "--sha256", template_digest(__version__))
    assert result.returncode == 2
    assert result.stderr == (f"ci-env: error: refused the install home: {home} is writable by group or others "
                             "(mode 0777); make it yours and not writable by others (chmod go-w), or set "
                             "CI_ENV_HOME to a directory of your own\n")
    assert list(home.iterdir()) == []


def test_an_entry_others_can_write_to_is_installed_again(tmp_path: Path) -> None:
    env = job_env(tmp_path)
    home = tmp_path / "h"
    digest = template_digest(__version__)
    first = install(env, home, "--spec", str(RELEASE), "--sha256", digest)
    package = Path(first.stdout.strip()).parent / "app" / "ci_env"
    package.chmod(0o777)
    again = install(env, home, "--spec", str(RELEASE), "--sha256", digest)
    assert again.returncode == 0
    assert again.stderr == (f"ci-env: the installed ci-env cannot run: {package} is writable by group or others "
                            "(mode 0777); installing it again\n")
    assert package.stat().st_mode & 0o777 == 0o755


def test_a_protected_job_never_restores_the_cache_of_an_unprotected_one() -> None:
    """GitLab expands the cache key per job: a protected branch's key differs from an unprotected one's
    for the same CI_ENV_VERSION (an unprotected job cannot plant an install a protected job restores)."""
    key = yaml.safe_load(TEMPLATE.read_text())[".ci-env"]["cache"][0]["key"]

    def expand(variables: dict[str, str]) -> str:  # GitLab's $NAME / ${NAME} expansion in cache:key
        return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: variables.get(m.group(1), ""), key)

    protected = expand({"CI_ENV_VERSION": __version__, "CI_COMMIT_REF_PROTECTED": "true"})
    unprotected = expand({"CI_ENV_VERSION": __version__, "CI_COMMIT_REF_PROTECTED": "false"})
    assert protected != unprotected
    assert "/" not in protected and protected.endswith("true")


def _entry_for(env: dict[str, str], home: Path, pyz: Path) -> Path:
    result = install(env, home, "--spec", str(pyz))
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip()).parent


def _age(entry: Path, days: float) -> None:
    then = time.time() - days * 86400
    os.utime(entry, (then, then))


def _make_newer_entries(env: dict[str, str], home: Path, tmp_path: Path, count: int = 4) -> None:
    for number in range(count):  # other specs (copies at other paths): other entries, each made after a prune
        copy = tmp_path / f"copy{number}" / "ci-env.pyz"
        copy.parent.mkdir(parents=True)
        copy.write_bytes(RELEASE.read_bytes())
        _entry_for(env, home, copy)


def test_pruning_never_removes_an_entry_a_job_is_running_from(tmp_path: Path) -> None:
    env = job_env(tmp_path)
    home = tmp_path / "h"
    entry = _entry_for(env, home, RELEASE)
    # a long-running command of another job: listing tags on a registry that accepts and never answers
    with socket.socket() as registry:
        registry.bind(("127.0.0.1", 0))
        registry.listen(8)
        address = f"127.0.0.1:{registry.getsockname()[1]}/app"
        running = subprocess.Popen([str(entry / "bin" / "ci-env"), "registry", "tags", address], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            registry.settimeout(30)
            connection, _ = registry.accept()  # ci-env runs: it has connected, and waits for an answer
            _age(entry, 2)  # last installed two days ago: only the running process protects it
            _make_newer_entries(env, home, tmp_path)
            assert running.poll() is None, "still running"
            assert (entry / "bin" / "ci-env").exists(), "pruned while a job ran from it"
            assert len([p for p in home.iterdir() if not p.name.startswith(".")]) == 5
            connection.close()
        finally:
            running.kill()
            running.wait(timeout=30)


def test_pruning_keeps_an_entry_used_today_and_removes_old_unused_ones(tmp_path: Path) -> None:
    env = job_env(tmp_path)
    home = tmp_path / "h"
    old = _entry_for(env, home, RELEASE)
    _age(old, 2)
    _make_newer_entries(env, home, tmp_path)
    assert not old.exists(), "an old entry nothing runs from is pruned"
    used = _entry_for(env, home, RELEASE)
    _make_newer_entries(env, home, tmp_path / "more")
    assert used.exists(), "an entry a job installed or found today is kept (the job may run it again)"
