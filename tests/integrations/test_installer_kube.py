"""The kube extra beside the zipapp: installed from a hash-pinned lock when asked or, with ``--kube auto``, when
cleanup would read a cluster; checked whenever the entry is found again.

The lock here pins wheels of the Kubernetes client and what it needs beyond the zipapp, repacked from this
interpreter (an offline package source, as the wheelhouse is); the installer gets it with ``--kube-lock``, as
it gets scripts/kube.lock (its embedded copy) in a job.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.integrations.conftest import INSTALLER, ROOT
from tests.integrations.runnerenv import runner_env
from tests.integrations.wheelhouse import _closure, repack_installed

pytest.importorskip("kubernetes", reason="the kube wheels are repacked from this interpreter's kubernetes")


@pytest.fixture(scope="module")
def kube_source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(a find-links directory, a lock pinning each of its wheels) for what kubernetes needs beyond ci-env[docker]."""
    directory = tmp_path_factory.mktemp("kube-wheels")
    in_zipapp = _closure([Requirement(r) for r in ("click", "requests", "PyYAML", "Jinja2", "filelock", "docker")])
    lines = []
    for name in sorted(_closure([Requirement("kubernetes")]) - in_zipapp):
        wheel = repack_installed(name, directory)
        if wheel.name.endswith("-py2-none-any.whl"):  # the first of its WHEEL tags: it is py2.py3
            wheel = wheel.rename(wheel.with_name(wheel.name.replace("-py2-none-any", "-py2.py3-none-any")))
        lines.append(f"{name.replace('_', '-')}=={wheel.name.split('-')[1]} "
                     f"--hash=sha256:{hashlib.sha256(wheel.read_bytes()).hexdigest()}")
    lock = directory.parent / "kube.lock"
    lock.write_text("# test lock\n" + "\n".join(lines) + "\n")
    return directory, lock


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-S", str(INSTALLER), *args], env=env, capture_output=True, text=True,
                          timeout=600)


def _env(tmp_path: Path, wheels: Path) -> dict[str, str]:
    env = runner_env(tmp_path / "home", uv=False)
    env["CI_ENV_PIP_ARGS"] = f"--no-index --find-links {wheels}"
    for name in ("KUBECONFIG", "WERF_KUBE_CONFIG", "WERF_KUBECONFIG", "WERF_WITHOUT_KUBE", "KUBERNETES_SERVICE_HOST"):
        env.pop(name, None)
    return env


def _kubernetes_from(bin_dir: str, env: dict[str, str]) -> str:
    """Where ``import kubernetes`` finds it in the entry, with run.py's path (what ci-env cleanup imports)."""
    run_py = Path(bin_dir) / "run.py"
    code = ("import sys; p = sys.argv[1]; src = open(p).read().replace('from ci_env.cli import main', "
            "'import kubernetes.client, kubernetes.config; print(kubernetes.__file__)').replace('\\nmain()', '')\n"
            "exec(compile(src, p, 'exec'), {'__file__': p, '__name__': '__main__'})")
    launcher = (Path(bin_dir) / "ci-env").read_text()
    python = launcher.split("exec ", 1)[1].split(" -I", 1)[0].strip("'\"")
    found = subprocess.run([python, "-I", "-c", code, str(run_py)], env=env, capture_output=True, text=True)
    return found.stdout.strip() or found.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("setting", "installed"),
    [
        ("none", False),
        ("home kubeconfig", True),
        ("KUBECONFIG", True),
        ("WERF_KUBE_CONFIG", True),
        ("home kubeconfig and WERF_WITHOUT_KUBE", False),
        ("KUBERNETES_SERVICE_HOST without a token", False),
    ],
)
def test_kube_auto_installs_the_kube_extra_when_cleanup_would_read_a_cluster(
    tmp_path: Path, zipapp: Path, kube_source: tuple[Path, Path], setting: str, installed: bool
) -> None:
    wheels, lock = kube_source
    env = _env(tmp_path, wheels)
    kubeconfig = tmp_path / "home" / ".kube" / "config"
    if "home kubeconfig" in setting:
        kubeconfig.parent.mkdir(parents=True)
        kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    if setting == "KUBECONFIG":
        (tmp_path / "kc").write_text("apiVersion: v1\nkind: Config\n")
        env["KUBECONFIG"] = f"{tmp_path / 'missing'}{os.pathsep}{tmp_path / 'kc'}"
    if setting == "WERF_KUBE_CONFIG":
        env["WERF_KUBE_CONFIG"] = str(tmp_path / "kc")
    if "WERF_WITHOUT_KUBE" in setting:
        env["WERF_WITHOUT_KUBE"] = "true"
    if "KUBERNETES_SERVICE_HOST" in setting:
        if Path("/var/run/secrets/kubernetes.io/serviceaccount/token").exists():
            pytest.skip("this machine runs in a pod with a service account")
        env["KUBERNETES_SERVICE_HOST"] = "10.0.0.1"
    args = ["--home", str(tmp_path / "h"), "--spec", str(zipapp), "--extras", "docker", "--kube", "auto",
            "--kube-lock", str(lock)]
    plan = _run(env, *args, "--plan")
    assert plan.returncode == 0, plan.stderr
    assert f"extras={'docker,kube' if installed else 'docker'}" in plan.stdout.splitlines()
    result = _run(env, *args)
    assert result.returncode == 0, result.stderr
    entry = Path(result.stdout.strip()).parent
    assert (entry / "kube").is_dir() == installed
    assert ("installing the kube extra too" in result.stderr) == installed
    assert f"dir={entry}" in plan.stdout.splitlines(), "the plan names the entry the install makes"
    where = _kubernetes_from(result.stdout.strip(), env)
    if installed:
        assert where.startswith(str(entry / "kube" / "kubernetes")), where
        again = _run(env, *args)
        assert again.returncode == 0 and again.stdout == result.stdout and again.stderr.count("installing the") == 1
        assert "cannot run" not in again.stderr, "found again and checked, not installed again"
    else:
        assert not where.startswith(str(entry)), where


def test_in_cluster_detection_needs_the_service_account_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    loader = importlib.machinery.SourceFileLoader("install_ci_env_kube", str(INSTALLER))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    token = tmp_path / "token"
    monkeypatch.setattr(module, "SERVICE_ACCOUNT_TOKEN", str(token))
    env = {"HOME": str(tmp_path), "KUBERNETES_SERVICE_HOST": "10.0.0.1"}
    assert module.with_kube("docker", "auto", env) == ("docker", "")
    token.write_text("t")
    extras, why = module.with_kube("docker", "auto", env)
    assert (extras, why) == ("docker,kube", "this job runs in a Kubernetes pod with a service account")
    assert module.with_kube("docker", "auto", {**env, "WERF_WITHOUT_KUBE": "1"}) == ("docker", "")
    assert module.with_kube("docker", "false", env) == ("docker", "")
    assert module.with_kube("", "true", {}) == ("kube", "")


def test_a_changed_or_planted_kube_directory_is_installed_again(
    tmp_path: Path, zipapp: Path, kube_source: tuple[Path, Path]
) -> None:
    wheels, lock = kube_source
    env = _env(tmp_path, wheels)
    args = ["--home", str(tmp_path / "h"), "--spec", str(zipapp), "--extras", "docker", "--kube", "true",
            "--kube-lock", str(lock)]
    made = _run(env, *args)
    assert made.returncode == 0, made.stderr
    entry = Path(made.stdout.strip()).parent
    init = entry / "kube" / "kubernetes" / "__init__.py"
    init.write_text(init.read_text() + "\nraise SystemExit('planted')\n")
    again = _run(env, *args)
    assert again.returncode == 0, again.stderr
    assert f"ci-env: the installed ci-env cannot run: {init} differs from" in again.stderr
    assert "planted" not in init.read_text()

    # an entry without kube: a kube/ planted in it (it would come first on the path) is refused too
    plain = _run(env, "--home", str(tmp_path / "h2"), "--spec", str(zipapp))
    assert plain.returncode == 0, plain.stderr
    plain_entry = Path(plain.stdout.strip()).parent
    shutil.copytree(entry / "kube", plain_entry / "kube")
    (plain_entry / "kube" / "json.py").write_text("raise SystemExit('planted')\n")
    found = _run(env, "--home", str(tmp_path / "h2"), "--spec", str(zipapp))
    assert found.returncode == 0 and "ci-env: the installed ci-env cannot run:" in found.stderr
    assert not (plain_entry / "kube").exists()


def test_a_wheel_that_is_not_the_pinned_one_is_refused(
    tmp_path: Path, zipapp: Path, kube_source: tuple[Path, Path]
) -> None:
    """A package source that serves other bytes for a pinned wheel: pip refuses it (--require-hashes), the
    install fails (exit 1) and leaves no entry."""
    wheels, lock = kube_source
    tampered = tmp_path / "wheels"
    shutil.copytree(wheels, tampered)
    victim = next(tampered.glob("kubernetes-*.whl"))
    with open(victim, "ab") as handle:
        handle.write(b"\0")
    env = _env(tmp_path, tampered)
    result = _run(env, "--home", str(tmp_path / "h"), "--spec", str(zipapp), "--extras", "docker", "--kube", "true",
                  "--kube-lock", str(lock))
    assert result.returncode == 1
    assert "DO NOT MATCH THE HASHES" in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "ci-env: error: pip could not download the kube extra's wheels (pip's message is above)")
    assert [p.name for p in (tmp_path / "h").iterdir()] == [".locks"]


def test_the_installer_carries_scripts_kube_lock_of_pure_python_wheels() -> None:
    """The template carries the installer, the installer the lock (scripts/embed-installer); the lock pins one
    wheel per package, none of them one the zipapp holds."""
    text = INSTALLER.read_text()
    embedded = text.split('KUBE_LOCK = """\\\n', 1)[1].split('"""\n# END kube.lock', 1)[0]
    lock = (ROOT / "scripts" / "kube.lock").read_text()
    assert embedded == lock, "run scripts/embed-installer"
    pinned = [line for line in lock.splitlines() if line and not line.startswith("#")]
    zipapp = {line.split("==")[0] for line in (ROOT / "scripts" / "zipapp.lock").read_text().splitlines()
              if line and not line.startswith("#")}
    assert any(line.startswith("kubernetes==") for line in pinned)
    for line in pinned:
        assert line.count("--hash=sha256:") == 1, line
        assert line.split("==")[0] not in zipapp, line
