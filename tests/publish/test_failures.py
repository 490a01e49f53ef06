"""Invalid input stops before anything is built; failed builds and pushes name the image and the cause."""

from __future__ import annotations

import pytest

from tests.conftest import USERS
from tests.publish.conftest import Cli, RegistryFactory, RegistryReader, login, write_project
from tests.services.dockerd import DockerDaemon


def _images(dockerd: DockerDaemon) -> set[str]:
    return set(dockerd.docker("images", "-a", "-q", "--no-trunc").stdout.split())


@pytest.mark.parametrize(
    ("images", "args", "expected"),
    [
        ({"web": {}}, ["-i", "{host}", "--images-repo-mode", "monorepo", "--tag-custom", "x"], "monorepo"),
        ({None: {}}, ["-i", "{host}", "--tag-custom", "x"], "nameless"),
        ({"web": {}}, ["-i", "{host}/acme"], "no tag to publish"),
        ({"web": {}}, ["-i", "{host}/acme", "--tag-custom", "bad tag"], "--tag-custom 'bad tag'"),
        ({"web": {}}, ["-i", "{host}/acme", "--tag-custom", "-x"], "starts with '-'"),
        ({"web": {}}, ["-i", "{host}/acme", "--tag-git-commit", "a/b"], "--tag-git-commit"),
        ({"web": {}}, ["-i", "{host}/acme/app", "--images-repo-mode", "monorepo", "--tag-custom", "x" * 126],
         "monorepo tag for image 'web'"),
        ({"web": {}}, ["-i", "{host}/Acme", "--tag-custom", "x"], "upper-case"),
        ({"web": {}}, ["-i", "{host}/acme", "--images-repo-mode", "sideways", "--tag-custom", "x"], "sideways"),
        ({"web": {}}, ["--tag-custom", "x"], "no images repo"),
        ({"web": {}}, ["-i", "{host}/acme", "--tag-custom", "x", "--parallel", "0"], "--parallel 0"),
        ({"web": {}}, ["-i", "{host}/acme", "--tag-custom", "x", "-s", "docker.io/foo/bar/stages"],
         "stages storage docker.io/foo/bar/stages (from --stages-storage) is not valid"),
        ({"web": {}}, ["-i", "{host}/acme", "--tag-custom", "x", "-s", "quay.io/ns"],
         "stages storage quay.io/ns (from --stages-storage) is a Quay account/namespace, not a repository"),
        ({"web": {}}, ["-i", "{host}/acme", "--tag-custom", "x", "-s", "{host}"],
         "is a registry, not a repository"),
    ],
)
def test_invalid_input_stops_before_building(
    cli: Cli, fresh_registry: RegistryFactory, dockerd: DockerDaemon,
    images: dict[str | None, dict[str, str]], args: list[str], expected: str,
) -> None:
    registry = fresh_registry()
    write_project(cli.cwd, images)
    before = _images(dockerd)
    filled = [a.replace("{host}", registry.host) for a in args]
    result = cli("build-and-publish", "-s", ":local", *filled, check=False)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert result.stderr.startswith("ci-env: error: ") and "Traceback" not in result.stderr
    assert _images(dockerd) == before
    assert [r for r in registry.requests() if r[1] != "/v2/"] == []


def test_missing_stages_storage_is_a_usage_error(cli: Cli, fresh_registry: RegistryFactory) -> None:
    registry = fresh_registry()
    write_project(cli.cwd, {"web": {}})
    result = cli("build-and-publish", "-i", f"{registry.host}/acme", "--tag-custom", "x", check=False)
    assert result.returncode == 2
    assert "no stages storage" in result.stderr and "WERF_STAGES_STORAGE" in result.stderr


def test_stages_storage_variable_is_named_and_checked_before_the_project(
    cli: Cli, fresh_registry: RegistryFactory
) -> None:
    registry = fresh_registry()
    result = cli("build-and-publish", "-i", f"{registry.host}/acme", "--tag-custom", "x", check=False,
                 extra_env={"WERF_STAGES_STORAGE": "docker.io/foo/bar/stages"})
    assert result.returncode == 2
    assert result.stderr.startswith(
        "ci-env: error: stages storage docker.io/foo/bar/stages (from WERF_STAGES_STORAGE) is not valid: "
    )
    assert result.stderr.count("\n") == 1 and "or use :local" in result.stderr


def test_werf_variables_drive_the_step_without_flags(cli: Cli, fresh_registry: RegistryFactory) -> None:
    registry = fresh_registry()
    write_project(cli.cwd, {"web": {"w": "1"}})
    cli("build-and-publish", extra_env={
        "WERF_IMAGES_REPO": f"{registry.host}/acme", "WERF_STAGES_STORAGE": f"{registry.host}/acme/stages",
        "WERF_TAG_GIT_TAG": "v1.2.3", "WERF_TAG_CUSTOM": "a,b", "WERF_TAG_BY_STAGES_SIGNATURE": "false",
    })
    tags = RegistryReader(registry).tags("acme/web")
    assert tags == ["a", "b", "v1.2.3"]


def test_failed_build_names_the_image_and_keeps_the_others_published(
    cli: Cli, fresh_registry: RegistryFactory
) -> None:
    registry = fresh_registry()
    write_project(cli.cwd, {"good": {"g.txt": "g"}, "broken": {"b.txt": "b"}})
    (cli.cwd / "broken" / "Dockerfile").write_text("FROM scratch\nCOPY does-not-exist /x\n")
    result = cli("build-and-publish", "-i", f"{registry.host}/acme", "-s", f"{registry.host}/acme/stages",
                 "--tag-custom", "v1", check=False)
    assert result.returncode == 1
    assert "image broken: docker build failed" in result.stderr
    assert "does-not-exist" in result.stderr
    assert "published: good" in result.stderr
    assert "Traceback" not in result.stderr
    assert RegistryReader(registry).tags("acme/good") == ["v1"]
    table = result.stdout[result.stdout.index("image  "):]
    assert f"{registry.host}/acme/good:v1" in table and "failed" in table


def test_push_refused_by_the_registry_reports_its_message(cli: Cli, fresh_registry: RegistryFactory) -> None:
    registry = fresh_registry(auth="htpasswd", users=dict(USERS))
    login(cli.env, registry, "alice", "wrong-password")
    write_project(cli.cwd, {"web": {"w": "1"}})
    result = cli("build-and-publish", "-i", f"{registry.host}/acme", "-s", ":local", "--tag-custom", "v1",
                 check=False)
    assert result.returncode == 1
    assert "image web: pushing" in result.stderr
    assert "unauthorized" in result.stderr.lower() or "authentication" in result.stderr.lower()
    assert "wrong-password" not in result.stderr + result.stdout


def test_unreachable_daemon_is_a_clear_error(cli: Cli, fresh_registry: RegistryFactory) -> None:
    registry = fresh_registry()
    write_project(cli.cwd, {"web": {"w": "1"}})
    result = cli("build-and-publish", "-i", f"{registry.host}/acme", "-s", ":local", "--tag-custom", "v1",
                 check=False, extra_env={"DOCKER_HOST": f"unix://{cli.cwd}/nothing.sock"})
    assert result.returncode == 1
    assert "cannot reach the Docker daemon" in result.stderr and "Traceback" not in result.stderr
