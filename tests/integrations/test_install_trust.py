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
from pathlib import Path

import pytest
import yaml
from pytest_httpserver import HTTPServer

from ci_env import __version__
from tests.integrations.conftest import INSTALLER, ROOT
from tests.integrations.runnerenv import runner_env

#: the zipapp this tree builds (main between releases: it differs from the release's)
RELEASE = ROOT / "dist" / "ci-env.pyz"
TEMPLATE = ROOT / ".gitlab-ci-template.yml"
RAW = f"/ci-env/ci-env/-/raw/v{__version__}/dist/ci-env.pyz"


def template_digest(version: str) -> str:
    """The sha256 the GitLab template pins for ``version`` (its table of release digests)."""
    match = re.search(rf'^ *{re.escape(version)}\) ci_env_sha256="([0-9a-f]{{64}})" ;;$', TEMPLATE.read_text(), re.M)
    assert match, f"the template pins no digest for {version}"
    return match.group(1)


def _git(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The release's zipapp, as its tag serves it: ``dist/ci-env.pyz`` of the last commit whose
    ``dist/SHA256SUMS`` names the digest the template pins for this version (main's own ``dist/`` differs
    once code changed after the release)."""
    if _git("rev-parse", "--is-shallow-repository").stdout.strip() == b"true":
        message = "a shallow clone: the release commit is not in its history (fetch the whole history)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    digest = template_digest(__version__)
    for commit in _git("log", "--format=%H", "--", "dist/SHA256SUMS").stdout.decode().split():
        sums = _git("show", f"{commit}:dist/SHA256SUMS").stdout.decode().split()
        if sums[:1] == [digest]:
            data = _git("show", f"{commit}:dist/ci-env.pyz").stdout
            assert hashlib.sha256(data).hexdigest() == digest, f"{commit}: SHA256SUMS and dist/ci-env.pyz agree"
            path = tmp_path_factory.mktemp("release") / "ci-env.pyz"
            path.write_bytes(data)
            return path
    raise AssertionError(f"no commit's dist/SHA256SUMS names {digest}, the template's digest for {__version__}")


def payload(marker: Path) -> bytes:
    """A zipapp that passes for ci-env and, when run, writes the job's CI_JOB_TOKEN to ``marker``."""
    code = f"import os\nopen({str(marker)!r}, 'w').write(os.environ.get('CI_JOB_TOKEN', ''))\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("__main__.py", code)
        archive.writestr("ci_env/__init__.py", "")
        archive.writestr("ci_env/cli.py", f"def main():\n    exec({code!r})\n")
    return b"#!/usr/bin/env python3\n" + buffer.getvalue()


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


def test_the_release_installs_from_https_with_the_templates_digest(
    tmp_path: Path, https: tuple[HTTPServer, Path], released: Path
) -> None:
    server, ca = https
    server.expect_request(RAW).respond_with_data(released.read_bytes())
    env = job_env(tmp_path, ca)
    digest = template_digest(__version__)
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


@pytest.mark.parametrize("change", ["source", "planted file", "planted bytecode", "pyz", "launcher", "pyz removed",
                                    "virtualenv planted", "in-use fifo"])
def test_a_changed_install_is_installed_again_before_it_runs(tmp_path: Path, change: str, released: Path) -> None:
    """An install found again (restored from a cache, left on the runner) that differs from the pinned
    release: a line says so, the release is installed again, the change never runs."""
    env = job_env(tmp_path)
    marker = tmp_path / "ran"
    digest = template_digest(__version__)
    home = tmp_path / "h"
    first = install(env, home, "--spec", str(released), "--sha256", digest)
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
    elif change == "pyz removed":  # nothing left to check app/ against: a zipapp entry without its zipapp
        (entry / "ci-env.pyz").unlink()
        (entry / "sha256").unlink()
        with (entry / "app" / "ci_env" / "__init__.py").open("a") as handle:
            handle.write(evil)
    elif change == "virtualenv planted":  # the entry passes for a virtualenv install, whose files pip vouched for
        python = entry / "venv" / "bin" / "python"
        python.parent.mkdir(parents=True)
        python.write_text(f"#!/bin/sh\necho ran > {marker}\nexec {sys.executable} \"$@\"\n")
        python.chmod(0o755)
        launcher = entry / "bin" / "ci-env"
        launcher.write_text(launcher.read_text().replace(f"exec {sys.executable} ", 'exec "$here/venv/bin/python" '))
    elif change == "in-use fifo":  # run.py opens .in-use to hold it: a FIFO would hang every job
        (entry / ".in-use").unlink()
        os.mkfifo(entry / ".in-use", 0o644)
    else:
        launcher = entry / "bin" / "ci-env"
        launcher.write_text(launcher.read_text().replace("exec ", f"echo ran > {marker}; exec "))
    again = install(env, home, "--spec", str(released), "--sha256", digest)
    assert again.returncode == 0, again.stderr
    assert again.stdout == first.stdout
    assert re.fullmatch(r"ci-env: the installed ci-env cannot run: .*; installing it again\n", again.stderr), \
        again.stderr
    version = subprocess.run([str(entry / "bin" / "ci-env"), "--version"], env=env, capture_output=True, text=True,
                             timeout=60)
    assert version.returncode == 0 and not marker.exists()
    clean = install(env, home, "--spec", str(released), "--sha256", digest)
    assert clean.stderr == "", "the reinstalled entry passes the check"


def test_an_install_home_others_can_write_to_is_refused(tmp_path: Path, released: Path) -> None:
    env = job_env(tmp_path)
    home = tmp_path / "shared"
    home.mkdir()
    home.chmod(0o777)
    result = install(env, home, "--spec", str(released), "--sha256", template_digest(__version__))
    assert result.returncode == 2
    assert result.stderr == (f"ci-env: error: refused the install home: {home} is writable by group or others "
                             "(mode 0777); make it yours and not writable by others (chmod go-w), or set "
                             "CI_ENV_HOME to a directory of your own\n")
    assert list(home.iterdir()) == []


def test_an_entry_others_can_write_to_is_installed_again(tmp_path: Path, released: Path) -> None:
    env = job_env(tmp_path)
    home = tmp_path / "h"
    digest = template_digest(__version__)
    first = install(env, home, "--spec", str(released), "--sha256", digest)
    package = Path(first.stdout.strip()).parent / "app" / "ci_env"
    package.chmod(0o777)
    again = install(env, home, "--spec", str(released), "--sha256", digest)
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


@pytest.mark.parametrize("link", ["hard link", "symbolic link"])
def test_a_file_of_the_install_linked_elsewhere_is_installed_again(tmp_path: Path, link: str, released: Path) -> None:
    """A file of a found install that is another file's other name (a hard link) or points to another file (a
    symbolic link): the same bytes at check time, but whoever holds the other name can change what runs after
    the check. The install is made again, and the other file no longer reaches it."""
    env = job_env(tmp_path)
    home = tmp_path / "h"
    digest = template_digest(__version__)
    first = install(env, home, "--spec", str(released), "--sha256", digest)
    assert first.returncode == 0, first.stderr
    module = Path(first.stdout.strip()).parent / "app" / "ci_env" / "__init__.py"
    elsewhere = tmp_path / "project" / "__init__.py"
    elsewhere.parent.mkdir()
    if link == "hard link":
        os.link(module, elsewhere)
        reason = f"{module} has other hard links (1)"
    else:
        elsewhere.write_bytes(module.read_bytes())
        module.unlink()
        module.symlink_to(elsewhere)
        reason = f"{module} is a symbolic link"
    again = install(env, home, "--spec", str(released), "--sha256", digest)
    assert again.returncode == 0
    assert again.stderr == f"ci-env: the installed ci-env cannot run: {reason}; installing it again\n"
    marker = tmp_path / "ran"
    elsewhere.write_text(f"open({str(marker)!r}, 'w').write('ran')\n")  # the other name changes, after the check
    version = subprocess.run([str(module.parents[2] / "bin" / "ci-env"), "--version"], env=env, capture_output=True,
                             text=True, timeout=60)
    assert version.returncode == 0 and not marker.exists()
    assert not module.is_symlink() and module.stat().st_nlink == 1


@pytest.mark.parametrize("hop", ["301 chain", "data: URL", "ftp: URL"])
def test_every_redirect_that_leaves_https_is_refused(tmp_path: Path, https: tuple[HTTPServer, Path],
                                                     httpserver: HTTPServer, hop: str) -> None:
    """Redirects are followed hop by hop, each checked: https to https to http (301s), or to a URL that is not
    http at all (urllib would read a data: URL's bytes, an ftp: server's file). One line, nothing run."""
    server, ca = https
    marker = tmp_path / "ran"
    httpserver.expect_request("/evil/ci-env.pyz").respond_with_data(payload(marker))
    final = {"301 chain": httpserver.url_for("/evil/ci-env.pyz"), "data: URL": "data:application/zip;base64,UEsFBg==",
             "ftp: URL": "ftp://127.0.0.1:9/ci-env.pyz"}[hop]
    server.expect_request("/mirror/ci-env.pyz").respond_with_data("", status=301, headers={"Location": "/moved"})
    server.expect_request("/moved").respond_with_data("", status=301, headers={"Location": final})
    env = job_env(tmp_path, ca)
    result = install(env, tmp_path / "h", "--spec", server.url_for("/mirror/ci-env.pyz"))
    run_job(result, env)
    assert not marker.exists()
    assert result.returncode == 1
    moved = server.url_for("/moved")
    assert result.stderr == f"ci-env: error: refused the redirect from {moved} to {final}: it leaves https\n"


def test_a_protocol_relative_redirect_stays_on_https(tmp_path: Path, https: tuple[HTTPServer, Path],
                                                     released: Path) -> None:
    """``Location: //host/path`` keeps the scheme of the URL it came from (RFC 3986): https, allowed."""
    server, ca = https
    server.expect_request("/mirror/ci-env.pyz").respond_with_data(
        "", status=302, headers={"Location": f"//localhost:{server.port}/release/ci-env.pyz"})
    server.expect_request("/release/ci-env.pyz").respond_with_data(released.read_bytes())
    env = job_env(tmp_path, ca)
    result = install(env, tmp_path / "h", "--spec", server.url_for("/mirror/ci-env.pyz"),
                     "--sha256", template_digest(__version__))
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_a_plain_http_zipapp_must_be_pinned(tmp_path: Path, httpserver: HTTPServer, released: Path) -> None:
    """A zipapp over plain http is anyone's bytes on the way: refused unless a sha256 pins it."""
    marker = tmp_path / "ran"
    httpserver.expect_request("/ci-env.pyz").respond_with_data(payload(marker))
    env = job_env(tmp_path)
    url = httpserver.url_for("/ci-env.pyz")
    result = install(env, tmp_path / "h", "--spec", url)
    run_job(result, env)
    assert not marker.exists()
    assert result.returncode == 2
    assert result.stderr == (f"ci-env: error: refused {url}: a download over plain http is not checked by anyone; use "
                             "https, or pin its sha256 (CI_ENV_SHA256, the Action's sha256 input, --sha256)\n")
    assert [p.name for p in (tmp_path / "h").iterdir()] == [".locks"], "nothing half-made is left"
    httpserver.clear()
    httpserver.expect_request("/ci-env.pyz").respond_with_data(released.read_bytes())
    pinned = install(env, tmp_path / "h", "--spec", url, "--sha256", template_digest(__version__))
    assert pinned.returncode == 0 and pinned.stderr == "", pinned.stderr


@pytest.mark.parametrize("form", ["upper case", "sha256: prefix", "spaces around"])
def test_a_digest_is_taken_as_sha256sum_docker_or_pip_write_it(tmp_path: Path, released: Path, form: str) -> None:
    def written(digest: str) -> str:
        forms = {"upper case": digest.upper(), "sha256: prefix": f"sha256:{digest}", "spaces around": f" {digest}\n"}
        return forms[form]

    result = install(job_env(tmp_path), tmp_path / "h", "--spec", str(released), "--sha256",
                     written(template_digest(__version__)))
    assert result.returncode == 0 and result.stderr == "", result.stderr
    other = install(job_env(tmp_path), tmp_path / "h2", "--spec", str(released), "--sha256", written("f" * 64))
    assert other.returncode == 1 and other.stderr.startswith(f"ci-env: error: refused {released}: its sha256 is ")


@pytest.mark.parametrize("given", ["sha512:" + "a" * 64, "a" * 63, "a" * 64 + "; rm -rf ~", "a" * 32 + "\n" + "a" * 32])
def test_a_digest_that_is_not_one_is_refused_in_one_line(tmp_path: Path, released: Path, given: str) -> None:
    result = install(job_env(tmp_path), tmp_path / "h", "--spec", str(released), "--sha256", given)
    assert result.returncode == 2
    assert re.fullmatch(r"ci-env: error: the sha256 .* is not 64 hexadecimal digits \(sha256sum's output\)\n",
                        result.stderr), result.stderr
    assert not (tmp_path / "h").exists()


def test_a_lock_file_planted_as_a_symbolic_link_is_refused(tmp_path: Path, released: Path) -> None:
    """The install home's .locks/ travels with the cache: a lock that is a symbolic link would create (open for
    append) whatever file it names. Refused in one line; nothing is created where it points."""
    env = job_env(tmp_path)
    home = tmp_path / "h"
    digest = template_digest(__version__)
    plan = install(env, home, "--spec", str(released), "--sha256", digest, "--plan")
    key = plan.stdout.split()[0].removeprefix("key=")
    (home / ".locks").mkdir(parents=True)
    target = tmp_path / "elsewhere" / "created"
    target.parent.mkdir()
    (home / ".locks" / key).symlink_to(target)
    result = install(env, home, "--spec", str(released), "--sha256", digest)
    assert result.returncode == 1
    assert re.fullmatch(rf"ci-env: error: cannot lock {re.escape(str(home / '.locks' / key))}: .*; remove it\n",
                        result.stderr), result.stderr
    assert not target.exists()
