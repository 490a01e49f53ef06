"""`ci-env registry info` end to end: output, invalid input (exit 2, one message, no traceback), no network."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from typing import Any

import pytest

from ci_env.cli import main
from tests.cli import environ_without, run_ci_env


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(["registry", "info", *args])
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 0), out, err


INVALID: list[tuple[list[str], str]] = [
    # addresses
    ([""], "empty address"),
    ([" foo"], "whitespace"),
    (["https://ghcr.io/acme"], "scheme"),
    (["ghcr.io/acme/app:1.0"], "ends with a tag"),
    (["foo:latest"], "ends with a tag"),
    (["ghcr.io/acme@sha256:" + "a" * 64], "contains a digest"),
    (["Foo/bar"], "upper-case"),
    (["ghcr.io/Acme"], "upper-case"),
    (["ghcr.io//acme"], "empty component"),
    (["ghcr.io/acme/"], "empty component"),
    (["ghcr.io/-acme"], "is invalid"),
    (["ghcr.io/ac..me"], "is invalid"),
    (["ghcr.io/ac_-me"], "is invalid"),
    (["ghcr.io/a:b/c"], "contains ':'"),
    (["reg_istry.io/a"], "registry host"),
    (["registry.io:70000/a"], "out of range"),
    (["registry.io:abc"], "ends with a tag"),
    ([":local"], "only valid for the stages storage"),
    (["hub.docker.com/r/foo"], "Docker Hub website"),
    (["x.io/" + "a" * 256], "the limit is 255"),
    # addresses too short / too deep for the implementation
    (["docker.io"], "too short for Docker Hub"),
    (["foo/bar/baz"], "does not support nested repositories"),
    (["quay.io"], "too short for Quay"),
    (["quay.io/a/b/c"], "does not support nested repositories"),
    (["docker.pkg.github.com/owner"], "too short"),
    (["docker.pkg.github.com/o/p/a/b"], "does not support nested repositories"),
    (["ghcr.io"], "too short for GitHub"),
    (["registry.gitlab.com/group"], "too short for GitLab"),
    (["europe-docker.pkg.dev/project"], "too short for GCR"),
    (["harbor.example.com"], "too short for Harbor"),
    # modes
    (["foo", "--images-repo-mode", "mono"], "unknown images repo mode 'mono'"),
    (["foo", "--images-repo-mode", ""], "unknown images repo mode"),
    # implementation names
    (["foo", "--implementation", "dockerhubb"], "unknown registry implementation 'dockerhubb'"),
    (["foo", "--implementation", "GHCR"], "unknown registry implementation"),
    # combinations
    (["127.0.0.1:5000", "--images-repo-mode", "monorepo"], "not a repository: monorepo"),
    (["foo", "--images-repo-mode", "monorepo"], "not a repository: monorepo"),
    (["quay.io/ns", "--images-repo-mode", "monorepo"], "not a repository: monorepo"),
    (["127.0.0.1:5000", "--image", "~"], "nameless image"),
    (["foo", "--image", "~"], "nameless image"),
    (["ghcr.io/acme", "--image", "~"], "nameless image"),
    (["foo/project", "--images-repo-mode", "multirepo"], "does not support nested repositories"),
    (["quay.io/ns/app", "--images-repo-mode", "multirepo"], "does not support nested repositories"),
    (["docker.pkg.github.com/o/p/app", "--images-repo-mode", "multirepo"], "does not support nested"),
    # image names and tags
    (["x.io/a", "--image", "Api"], "cannot be a repository name"),
    (["x.io/a", "--image", "api", "--image", "api"], "given twice"),
    (["x.io/a", "--images-repo-mode", "monorepo", "--image", "a/b"], "contains '/'"),
    (["foo", "--image", "a/b"], "does not support nested repositories"),
    (["x.io/a", "--image", ""], "empty image name"),
    (["x.io/a", "--tag", ".x"], "starts with '.'"),
    (["x.io/a", "--tag", "a" * 129], "at most 128"),
    (["x.io/a", "--images-repo-mode", "monorepo", "--image", "i" * 100, "--tag", "t" * 40], "at most 128"),
]


@pytest.mark.parametrize(("args", "expected"), INVALID, ids=[" ".join(a)[:60] for a, _ in INVALID])
def test_invalid_input_exits_2_with_one_clear_message(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, args: list[str], expected: str
) -> None:
    for name in list(os.environ):
        if name.startswith("WERF_") or name in ("GITLAB_CI", "CI_REGISTRY"):
            monkeypatch.delenv(name)
    code, out, err = run(capsys, *args)
    assert code == 2
    assert out == ""
    assert err.startswith("ci-env: error: ")
    assert expected in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_invalid_input_through_a_real_process() -> None:
    env = {**environ_without(("WERF_",)), "WERF_IMAGES_REPO_MODE": "multi"}
    proc = run_ci_env("registry", "info", "foo", env=env, timeout=30)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == "ci-env: error: WERF_IMAGES_REPO_MODE: unknown images repo mode 'multi': " \
        "use one of auto, monorepo, multirepo\n"


def test_unknown_implementation_from_variable_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WERF_REPO_IMPLEMENTATION", "azure")
    code, _, err = run(capsys, "foo")
    assert code == 2
    assert err.startswith("ci-env: error: WERF_REPO_IMPLEMENTATION: unknown registry implementation 'azure'")


def _info(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code, out, err = run(capsys, *args, "--json")
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    return data


def test_docker_hub_account_text_report(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WERF_REPO_DOCKER_HUB_TOKEN", raising=False)
    monkeypatch.delenv("WERF_IMAGES_REPO_DOCKER_HUB_TOKEN", raising=False)
    code, out, _ = run(capsys, "foo", "--image", "frontend", "--image", "backend", "--tag", "v1")
    assert code == 0
    assert "implementation:       dockerhub (Docker Hub): host docker.io matches dockerhub" in out
    assert "images repo mode:     multirepo (auto)" in out
    assert "nested repositories:  no" in out
    assert "route dockerhub-api" in out
    assert "docker-hub-token or docker-hub-username + docker-hub-password: MISSING" in out
    assert "frontend  docker.io/foo/frontend:v1" in out
    assert "backend   docker.io/foo/backend:v1" in out


def test_credentials_reported_present_without_values(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WERF_REPO_GITHUB_TOKEN", "ghp_supersecretvalue")
    code, out, err = run(capsys, "ghcr.io/acme", "--images-repo-github-token", "flag-secret-value")
    assert code == 0
    assert "github-token: present (from --images-repo-github-token)" in out
    data = _info(capsys, "ghcr.io/acme")
    assert data["credentials"]["kinds"]["github-token"] == {
        "present": True, "source": "WERF_REPO_GITHUB_TOKEN",
        "set_with": ["--images-repo-github-token", "WERF_IMAGES_REPO_GITHUB_TOKEN", "--repo-github-token",
                     "WERF_REPO_GITHUB_TOKEN"],
    }
    assert data["credentials"]["satisfied"] is True
    everything = out + err + json.dumps(data)
    assert "supersecret" not in everything and "flag-secret-value" not in everything


def test_json_for_legacy_github_monorepo(capsys: pytest.CaptureFixture[str]) -> None:
    data = _info(capsys, "docker.pkg.github.com/company/project/app", "--image", "frontend", "--image", "~")
    assert data["implementation"] == "github"
    assert data["implementation_title"] == "GitHub Packages (docker.pkg.github.com, legacy)"
    assert data["mode"] == "monorepo"
    assert data["nested_repositories"] is False
    assert data["cleanup"]["route"] == "github-graphql"
    assert data["images"] == [
        {"image": "frontend", "repository": "docker.pkg.github.com/company/project/app",
         "full_name": "docker.pkg.github.com/company/project/app:frontend-TAG"},
        {"image": "~", "repository": "docker.pkg.github.com/company/project/app",
         "full_name": "docker.pkg.github.com/company/project/app:TAG"},
    ]


def test_explicit_implementation_and_mode_flags(capsys: pytest.CaptureFixture[str]) -> None:
    data = _info(capsys, "nexus.example.com:8082/team", "--implementation", "nexus", "--images-repo-mode", "monorepo",
                 "--image", "api")
    assert (data["implementation"], data["implementation_reason"]) == ("nexus", "set by --implementation")
    assert (data["mode"], data["mode_source"]) == ("monorepo", "--images-repo-mode")
    assert data["images"][0]["full_name"] == "nexus.example.com:8082/team:api-TAG"


def test_ecr_reports_precreated_repositories_and_aws_chain(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "123456789012.dkr.ecr.eu-west-1.amazonaws.com")
    assert code == 0
    assert "create repos first:   yes" in out
    assert "AWS credential chain" in out


def test_gitlab_ci_registry_detection_through_cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITLAB_CI", "true")
    monkeypatch.setenv("CI_REGISTRY", "gitlab.corp.example:5050")
    data = _info(capsys, "gitlab.corp.example:5050/group/project")
    assert data["implementation"] == "gitlab"
    assert "CI_REGISTRY" in data["implementation_reason"]


def test_resolving_does_no_network_io(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    for address in ("foo", "ghcr.io/acme/app", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/x", "quay.io/ns/app"):
        data = _info(capsys, address, "--image", "api")
        assert data["images"]


def test_registry_info_imports_no_heavy_module() -> None:
    code = (
        "import sys\nfrom ci_env.cli import main\n"
        "try:\n    main(['registry','info','foo','--image','a'])\nexcept SystemExit: pass\n"
        "heavy = ('requests', 'boto3', 'docker', 'jinja2', 'urllib3')\n"
        "print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert proc.stderr.strip().splitlines()[-1] == "[]"
