"""build-and-publish against a real Docker daemon and a real registry."""

from __future__ import annotations

import json
import time

from tests.conftest import USERS
from tests.publish.conftest import Cli, RegistryFactory, RegistryReader, blob_data_uploads, login, write_project
from tests.services.dockerd import DockerDaemon


def image_ids(dockerd: DockerDaemon) -> set[str]:
    out = dockerd.docker("images", "-a", "-q", "--no-trunc").stdout
    return {line for line in out.split() if line}


def daemon_events(dockerd: DockerDaemon, since: float) -> list[dict[str, object]]:
    out = dockerd.docker("events", "--since", f"{since:.3f}", "--until", f"{time.time():.3f}",
                         "--format", "{{json .}}").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_monorepo_named_images_are_built_labelled_and_published(
    cli: Cli, fresh_registry: RegistryFactory, dockerd: DockerDaemon
) -> None:
    registry = fresh_registry(auth="htpasswd", users=dict(USERS))
    login(cli.env, registry, "alice", USERS["alice"])
    write_project(cli.cwd, {"frontend": {"index.html": "front"}, "backend": {"app.py": "print(1)"}})
    result = cli(
        "build-and-publish", "-i", f"{registry.host}/acme/app", "--images-repo-mode", "monorepo",
        "-s", f"{registry.host}/acme/stages", "--tag-custom", "v1", "--tag-custom", "latest",
        "--tag-git-commit", "0123abc",
        extra_env={"CI_PROJECT_URL": "https://git.example/acme/app"},
    )
    reader = RegistryReader(registry, "alice", USERS["alice"])
    assert reader.tags("acme/app") == sorted([
        "backend-0123abc", "backend-latest", "backend-v1", "frontend-0123abc", "frontend-latest", "frontend-v1",
    ])
    front = reader.digest("acme/app", "frontend-v1")
    assert reader.digest("acme/app", "frontend-latest") == front
    assert reader.digest("acme/app", "backend-v1") != front
    labels = reader.labels("acme/app", "frontend-v1")
    assert labels["werf-image-name"] == "frontend"
    assert labels["werf-tag-strategy"] == "custom"
    assert labels["werf-image-tag"] == "v1"
    assert labels["org.opencontainers.image.revision"] == "0123abc"
    assert len(labels["werf-content-signature"]) == 64
    assert labels["org.opencontainers.image.created"].endswith("Z")
    assert reader.files("acme/app", "backend-latest")["app/app.py"] == b"print(1)"
    assert front in result.stdout and "frontend" in result.stdout and "built" in result.stdout



def test_multirepo_named_images_go_to_their_own_repositories(cli: Cli, fresh_registry: RegistryFactory) -> None:
    registry = fresh_registry()
    write_project(cli.cwd, {"frontend": {"a.txt": "a"}, "backend": {"b.txt": "b"}})
    cli("build-and-publish", "-i", f"{registry.host}/acme", "-s", f"{registry.host}/acme/stages",
        "--tag-git-branch", "feature/login", "--tag-by-stages-signature")
    reader = RegistryReader(registry)
    front_labels = reader.labels("acme/frontend", "feature-login-" + _hash8("feature/login"))
    signature = front_labels["werf-content-signature"]
    assert reader.tags("acme/frontend") == sorted(["feature-login-" + _hash8("feature/login"), signature])
    assert front_labels["werf-image-name"] == "frontend"
    assert front_labels["werf-tag-strategy"] == "git-branch"
    assert reader.labels("acme/backend", reader.tags("acme/backend")[0])["werf-image-name"] == "backend"
    # the stage itself is kept in the stages storage under the signature
    assert signature in reader.tags("acme/stages")
    assert reader.digest("acme/stages", signature) == reader.digest("acme/frontend", signature)


def _hash8(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:8]


def test_nameless_image_is_published_as_images_repo_tag(cli: Cli, fresh_registry: RegistryFactory) -> None:
    registry = fresh_registry()
    write_project(cli.cwd, {None: {"only.txt": "one"}})
    cli("build-and-publish", "-i", f"{registry.host}/acme/app", "-s", ":local", "--tag-custom", "1.0",
        "--tag-custom", "stable")
    reader = RegistryReader(registry)
    assert reader.tags("acme/app") == ["1.0", "stable"]
    assert reader.digest("acme/app", "1.0") == reader.digest("acme/app", "stable")
    labels = reader.labels("acme/app", "stable")
    assert labels["werf-image-name"] == ""
    assert labels["werf-image-tag"] == "1.0"
    assert reader.files("acme/app", "1.0")["app/only.txt"] == b"one"


def test_second_run_with_unchanged_inputs_builds_nothing_and_uploads_no_layer(
    cli: Cli, fresh_registry: RegistryFactory, dockerd: DockerDaemon
) -> None:
    registry = fresh_registry()
    write_project(cli.cwd, {"frontend": {"big.bin": "x" * 200_000}, "backend": {"b.txt": "b"}})
    args = ("build-and-publish", "-i", f"{registry.host}/acme", "-s", f"{registry.host}/acme/stages")
    cli(*args, "--tag-custom", "one")
    reader = RegistryReader(registry)
    first = {name: reader.digest(f"acme/{name}", "one") for name in ("frontend", "backend")}
    images_before = image_ids(dockerd)
    log_mark = len(registry.requests())
    since = time.time()
    cli(*args, "--tag-custom", "two", "--parallel", "2")
    assert image_ids(dockerd) == images_before
    actions = {(e.get("Type"), e.get("Action")) for e in daemon_events(dockerd, since)}
    assert not {a for a in actions if a[0] in ("container", "image")}, actions
    assert blob_data_uploads(registry, log_mark) == []
    for name in ("frontend", "backend"):
        assert reader.digest(f"acme/{name}", "two") == first[name]
        assert reader.tags(f"acme/{name}") == ["one", "two"]


def test_changed_file_rebuilds_only_that_image(
    cli: Cli, fresh_registry: RegistryFactory, dockerd: DockerDaemon
) -> None:
    registry = fresh_registry()
    write_project(cli.cwd, {"frontend": {"f.txt": "f"}, "backend": {"b.txt": "b"}})
    args = ("build-and-publish", "-i", f"{registry.host}/acme", "-s", f"{registry.host}/acme/stages")
    cli(*args, "--tag-custom", "one")
    reader = RegistryReader(registry)
    front = reader.digest("acme/frontend", "one")
    back = reader.digest("acme/backend", "one")
    built_front = set(dockerd.docker("images", "-q", "--filter", "label=werf-image-name=frontend").stdout.split())
    (cli.cwd / "backend" / "b.txt").write_text("b2")
    since = time.time()
    cli(*args, "--tag-custom", "two")
    # the daemon saw a build (containers of the build steps): the same check as the no-build test, alive
    assert any(e.get("Type") == "container" for e in daemon_events(dockerd, since))
    assert reader.digest("acme/frontend", "two") == front
    assert reader.digest("acme/backend", "two") != back
    assert reader.files("acme/backend", "two")["app/b.txt"] == b"b2"
    assert set(dockerd.docker("images", "-q", "--filter", "label=werf-image-name=frontend").stdout.split()) == (
        built_front
    )


def test_dockerignored_file_change_does_not_rebuild(cli: Cli, fresh_registry: RegistryFactory,
                                                    dockerd: DockerDaemon) -> None:
    registry = fresh_registry()
    write_project(cli.cwd, {"app": {"keep.txt": "k", "notes.md": "n1", ".dockerignore": "*.md\n"}})
    args = ("build-and-publish", "-i", f"{registry.host}/acme", "-s", ":local")
    cli(*args, "--tag-custom", "one")
    images_before = image_ids(dockerd)
    (cli.cwd / "app" / "notes.md").write_text("n2")
    log_mark = len(registry.requests())
    cli(*args, "--tag-custom", "two")
    assert image_ids(dockerd) == images_before
    assert blob_data_uploads(registry, log_mark) == []
    reader = RegistryReader(registry)
    assert reader.digest("acme/app", "two") == reader.digest("acme/app", "one")
    assert "app/notes.md" not in reader.files("acme/app", "two")


def test_local_stages_reuse_the_daemons_image(cli: Cli, fresh_registry: RegistryFactory,
                                              dockerd: DockerDaemon) -> None:
    registry = fresh_registry()
    write_project(cli.cwd, {"web": {"w.txt": "w"}}, project="localdemo")
    args = ("build-and-publish", "-i", f"{registry.host}/acme/mono", "--images-repo-mode", "monorepo", "-s", ":local")
    cli(*args, "--tag-custom", "a")
    images_before = image_ids(dockerd)
    log_mark = len(registry.requests())
    result = cli(*args, "--tag-custom", "b")
    assert image_ids(dockerd) == images_before
    assert blob_data_uploads(registry, log_mark) == []
    reader = RegistryReader(registry)
    assert reader.tags("acme/mono") == ["web-a", "web-b"]
    assert reader.digest("acme/mono", "web-a") == reader.digest("acme/mono", "web-b")
    assert "reused" in result.stdout
