"""A cleanup by retention rules refuses the options only managed-image cleanup reads when they are given on the
command line (exit 2, nothing removed), and ignores their variables (a CI job exports ``WERF_IMAGES_REPO`` for
every step). The real registry, the real CLI."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from ci_env.registry.client import RegistryClient
from tests.cleanup.test_cleanup_rules import ago, run_cli
from tests.registry_client.images import push_image
from tests.services.registry import RegistryService


def _filled(registry: RegistryService) -> tuple[RegistryClient, str]:
    client = RegistryClient(registry.host, docker_config=Path("/nonexistent"))
    name = f"opt{uuid.uuid4().hex[:8]}/app"
    push_image(client, name, ["old"], created=ago(100))
    push_image(client, name, ["new"], created=ago(1))
    return client, name


@pytest.mark.parametrize(("given", "named", "instead"), [
    (["-i", "HOST/team"], "-i/--images-repo", "name:, glob: or namespace: (or --repository)"),
    (["--images-repo-mode", "multirepo"], "--images-repo-mode", "name:, glob: or namespace:"),
    (["--stages-storage", ":local"], "-s/--stages-storage", "name:, glob: or namespace:"),
    (["--stages-storage-repo-github-token", "t0ken"], "--stages-storage-repo-github-token", "name:, glob:"),
    (["--keep-published-within", "0"], "--keep-published-within", "keep:/remove: of the rules file, or --rule"),
    (["--git-tag-strategy-limit", "3"], "--git-tag-strategy-limit", "keep:/remove:"),
    (["--stages-signature-strategy-expiry-days", "3"], "--stages-signature-strategy-expiry-days", "keep:/remove:"),
    (["--no-git-history-synchronization"],
     "--git-history-synchronization/--no-git-history-synchronization", "keep:/remove:"),
    (["--git-history-based-cleanup", "false"], "--git-history-based-cleanup", "keep:/remove:"),
    (["--git-history-based-cleanup-strict", "true"], "--git-history-based-cleanup-strict", "keep:/remove:"),
    (["--removed-branch", "feature/x"], "--removed-branch", "keep:/remove:"),
    (["--config", "werf.yaml"], "--config", "keep:/remove:"),
    (["--dir", "."], "--dir", "keep:/remove:"),
    (["--delete-untagged"], "--delete-untagged", "untagged: of the rules file, or --untagged"),
])
def test_an_option_of_managed_image_cleanup_is_a_usage_error_in_rules_mode(
        registry_open: RegistryService, tmp_path: Path, given: list[str], named: str, instead: str) -> None:
    client, name = _filled(registry_open)
    given = [arg.replace("HOST", registry_open.host) for arg in given]
    code, out, err = run_cli("cleanup", "--registry", registry_open.host, "--repository", name,
                             "--rule", "keep-last=1", "--without-kube", *given, cwd=tmp_path)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ci-env: error: {named} does not apply to cleanup by retention "
                                                    "rules")
    assert instead in lines[0] and "t0ken" not in err and "Traceback" not in err
    assert out == ""
    assert sorted(client.list_tags(name)) == ["new", "old"]  # nothing removed


def test_every_option_given_is_named_in_one_message(registry_open: RegistryService, tmp_path: Path) -> None:
    client, name = _filled(registry_open)
    code, _out, err = run_cli("cleanup", "--registry", registry_open.host, "--repository", name, "--rule",
                              "keep-last=1", "-s", ":local", "--delete-untagged", cwd=tmp_path)
    assert code == 2
    assert err.strip().splitlines() == [
        "ci-env: error: -s/--stages-storage and --delete-untagged do not apply to cleanup by retention rules "
        "(--rules, --repository/--rule): the rules select the repositories with name:, glob: or namespace: (or "
        "--repository); the rules say what becomes of untagged manifests (untagged: of the rules file, or "
        "--untagged); drop them (the WERF_* variables of these options are ignored in rules mode)"]
    assert sorted(client.list_tags(name)) == ["new", "old"]


def test_the_variables_of_those_options_are_ignored_in_rules_mode(
        registry_open: RegistryService, tmp_path: Path) -> None:
    client, name = _filled(registry_open)
    code, _out, err = run_cli(
        "cleanup", "--registry", registry_open.host, "--repository", name, "--rule", "keep-last=1",
        "--without-kube", cwd=tmp_path,
        WERF_IMAGES_REPO=f"{registry_open.host}/elsewhere", WERF_STAGES_STORAGE=":local",
        WERF_KEEP_PUBLISHED_WITHIN="30d", WERF_GIT_HISTORY_SYNCHRONIZATION="true", WERF_DELETE_UNTAGGED="true")
    assert code == 0, err
    assert client.list_tags(name) == ["new"]


def test_the_images_repos_implementation_that_setup_exports_is_not_the_rules_repositories(
        registry_open: RegistryService, tmp_path: Path) -> None:
    """A GitHub job's setup exports WERF_IMAGES_REPO=ghcr.io/... and WERF_IMAGES_REPO_IMPLEMENTATION=github: they
    describe the images repo, not the repositories the rules select on another registry."""
    client, name = _filled(registry_open)
    code, _out, err = run_cli(
        "cleanup", "--registry", registry_open.host, "--repository", name, "--rule", "keep-last=1",
        "--without-kube", cwd=tmp_path, WERF_IMAGES_REPO="ghcr.io/octo-org/hello-world",
        WERF_IMAGES_REPO_IMPLEMENTATION="github", WERF_STAGES_STORAGE_REPO_IMPLEMENTATION="github",
        WERF_IMAGES_REPO_MODE="multirepo")
    assert code == 0, err
    assert "plan: 1 kept, 1 to remove" in err
    assert client.list_tags(name) == ["new"]


def test_a_malformed_images_repo_variable_does_not_stop_a_rules_run(
        registry_open: RegistryService, tmp_path: Path) -> None:
    client, name = _filled(registry_open)
    code, _out, err = run_cli(
        "cleanup", "--registry", registry_open.host, "--repository", name, "--rule", "keep-last=1",
        "--without-kube", cwd=tmp_path, WERF_IMAGES_REPO="Not/An::Address", WERF_STAGES_STORAGE="x y",
        WERF_IMAGES_REPO_MODE="sideways")
    assert code == 0, err
    assert client.list_tags(name) == ["new"]


def test_the_implementation_option_still_applies_to_the_rules_repositories(
        registry_open: RegistryService, tmp_path: Path) -> None:
    client, name = _filled(registry_open)
    code, _out, err = run_cli(
        "cleanup", "--registry", registry_open.host, "--repository", name, "--rule", "keep-last=1",
        "--without-kube", "--images-repo-implementation", "nosuchvendor", cwd=tmp_path)
    assert code == 2 and "nosuchvendor" in err and "Traceback" not in err
    assert sorted(client.list_tags(name)) == ["new", "old"]
