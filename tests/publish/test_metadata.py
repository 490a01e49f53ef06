"""build-and-publish records image metadata by commit: on a build, on a reuse, and for ``:local``."""

from __future__ import annotations

import json

from tests.cleanup.gitrepo import GitRepo
from tests.publish.conftest import Cli, RegistryFactory, RegistryReader, write_project
from tests.services.dockerd import DockerDaemon


def _metadata_tags(reader: RegistryReader, repository: str) -> set[str]:
    return {t for t in reader.tags(repository) if t.startswith("ci-env-meta-")}


def test_every_publish_records_commit_and_signature_also_when_reused(
    cli: Cli, fresh_registry: RegistryFactory, dockerd: DockerDaemon
) -> None:
    registry = fresh_registry()
    write_project(cli.cwd, {"app": {"a.txt": "a"}})
    git = GitRepo(cli.cwd)
    git.git("add", "-A")
    first = git.commit("first")
    args = ("build-and-publish", "-i", f"{registry.host}/acme", "-s", f"{registry.host}/acme/stages",
            "--tag-by-stages-signature")
    cli(*args)
    reader = RegistryReader(registry)
    signature = next(t for t in reader.tags("acme/app") if len(t) == 64)
    assert _metadata_tags(reader, "acme/stages") == {f"ci-env-meta-{first}-{signature}"}
    record = json.loads(reader.manifest("acme/stages", f"ci-env-meta-{first}-{signature}")["annotations"][
        "dev.ci-env.record"])  # type: ignore[index]
    assert (record["image"], record["commit"], record["signature"]) == ("app", first, signature)

    second = git.commit("docs only, same image")  # nothing is built: the signature exists
    result = cli(*args)
    assert "reused" in result.stdout
    assert _metadata_tags(reader, "acme/stages") == {f"ci-env-meta-{first}-{signature}",
                                                      f"ci-env-meta-{second}-{signature}"}
    before = reader.digest("acme/stages", f"ci-env-meta-{first}-{signature}")
    cli(*args)  # the same commit again: the record is immutable, nothing is rewritten
    assert reader.digest("acme/stages", f"ci-env-meta-{first}-{signature}") == before


def test_local_stages_record_metadata_as_json_files(
    cli: Cli, fresh_registry: RegistryFactory, dockerd: DockerDaemon
) -> None:
    registry = fresh_registry()
    write_project(cli.cwd, {"web": {"w.txt": "w"}}, project="metademo")
    git = GitRepo(cli.cwd)
    git.git("add", "-A")
    commit = git.commit("one")
    cli("build-and-publish", "-i", f"{registry.host}/acme", "-s", ":local", "--tag-custom", "x")
    folder = cli.cwd.parent / "state" / "ci-env" / "metademo" / "metadata"
    files = list(folder.glob("*.json"))
    assert len(files) == 1 and files[0].name.startswith(f"{commit}-")
    data = json.loads(files[0].read_text())
    assert (data["image"], data["commit"]) == ("web", commit)
