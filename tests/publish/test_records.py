"""Publication records and managed images: what cleanup reads back from the stages storage."""

from __future__ import annotations

from pathlib import Path

import pytest

from ci_env import records
from ci_env.registry.client import RegistryClient
from ci_env.registry.reference import parse_address
from tests.publish.conftest import Cli, RegistryFactory, RegistryReader, write_project
from tests.services.registry import RegistryService


def _store(registry: RegistryService, repository: str) -> records.RecordStore:
    address = parse_address(f"{registry.host}/{repository}")
    assert address is not None
    return records.open_store(address, "demo", client=RegistryClient(registry.host))


def test_every_published_tag_has_a_record_in_the_stages_repository(
    cli: Cli, fresh_registry: RegistryFactory
) -> None:
    registry = fresh_registry()
    write_project(cli.cwd, {"frontend": {"f": "1"}, "backend": {"b": "1"}})
    result = cli("build-and-publish", "-i", f"{registry.host}/acme/app", "--images-repo-mode", "monorepo",
        "-s", f"{registry.host}/acme/stages", "--tag-git-branch", "feature/x", "--tag-git-commit", "abc1234",
        extra_env={"GITLAB_CI": "true", "CI_COMMIT_REF_NAME": "feature/x", "CI_COMMIT_BRANCH": "feature/x",
                   "CI_COMMIT_SHA": "abc1234" + "0" * 33, "CI_PROJECT_URL": "https://gitlab.example/acme/app",
                   "CI_JOB_ID": "7"})
    reader = RegistryReader(registry)
    publications = records.read_publications(_store(registry, "acme/stages"))
    by_name = {p.full_name: p for p in publications}
    branch_tag = next(t for t in reader.tags("acme/app") if t.startswith("frontend-feature-x-"))
    assert set(by_name) == {f"{registry.host}/acme/app:{t}" for t in reader.tags("acme/app")}
    front = by_name[f"{registry.host}/acme/app:{branch_tag}"]
    assert front.image == "frontend"
    assert front.strategy == "git-branch"
    assert front.git_branch == "feature/x"
    assert front.git_commit == "abc1234"
    assert front.tag == branch_tag.removeprefix("frontend-")
    assert front.digest == reader.digest("acme/app", branch_tag)
    assert front.published_at.endswith("Z")
    commit = by_name[f"{registry.host}/acme/app:backend-abc1234"]
    assert commit.strategy == "git-commit" and commit.image == "backend"
    assert records.list_managed_images(_store(registry, "acme/stages")) == ["backend", "frontend"]
    # records are never mistaken for stages
    stage_tags = [t for t in reader.tags("acme/stages") if records.is_stage_tag(t)]
    assert len(stage_tags) == 2
    assert all(records.is_record_tag(t) for t in reader.tags("acme/stages") if t not in stage_tags)
    # the gitlab log folds the build into a section
    assert "\x1b[0Ksection_start:" in result.stdout and "\x1b[0Ksection_end:" in result.stdout


def test_managed_images_round_trip_through_a_registry_stages_storage(
    cli: Cli, fresh_registry: RegistryFactory
) -> None:
    registry = fresh_registry()
    stages = f"{registry.host}/acme/stages"
    assert cli("managed-images", "ls", "-s", stages).stdout == ""
    assert "added" in cli("managed-images", "add", "api", "-s", stages).stdout
    cli("managed-images", "add", "~", "-s", stages)
    cli("managed-images", "add", "api", "-s", stages)
    assert cli("managed-images", "ls", "-s", stages).stdout.split() == ["~", "api"]
    assert "removed" in cli("managed-images", "rm", "~", "-s", stages).stdout
    assert "was not in the list" in cli("managed-images", "rm", "~", "-s", stages).stdout
    assert cli("managed-images", "ls", extra_env={"WERF_STAGES_STORAGE": stages}).stdout.split() == ["api"]
    # stored as one tag per image in the stages repository
    assert RegistryReader(registry).tags("acme/stages") == ["ci-env-managed-api"]


def test_managed_images_round_trip_through_local(cli: Cli) -> None:
    write_project(cli.cwd, {"web": {}}, project="localproj")
    assert cli("managed-images", "ls", "-s", ":local").stdout == ""
    cli("managed-images", "add", "web", "-s", ":local")
    cli("managed-images", "add", "~", "-s", ":local")
    assert cli("managed-images", "ls", "-s", ":local").stdout.split() == ["~", "web"]
    cli("managed-images", "rm", "web", "-s", ":local")
    assert cli("managed-images", "ls", "-s", ":local").stdout.split() == ["~"]
    state = Path(cli.env["XDG_STATE_HOME"]) / "ci-env" / "localproj" / "managed"
    assert sorted(p.name for p in state.iterdir()) == ["_nameless.json"]


def test_local_build_records_publications_on_the_machine(cli: Cli, fresh_registry: RegistryFactory) -> None:
    registry = fresh_registry()
    write_project(cli.cwd, {"web": {"w": "1"}}, project="localpub")
    cli("build-and-publish", "-i", f"{registry.host}/acme", "-s", ":local", "--tag-custom", "v1")
    store = records.open_store(None, "localpub", env={"XDG_STATE_HOME": cli.env["XDG_STATE_HOME"]})
    (publication,) = records.read_publications(store)
    assert publication.full_name == f"{registry.host}/acme/web:v1"
    assert publication.strategy == "custom"
    assert publication.digest == RegistryReader(registry).digest("acme/web", "v1")
    assert records.list_managed_images(store) == ["web"]


def test_managed_images_invalid_name_and_storage(cli: Cli, registry_nodelete: RegistryService) -> None:
    bad = cli("managed-images", "add", "Not Valid", "-s", ":local", check=False)
    assert bad.returncode == 2 and "invalid image name 'Not Valid'" in bad.stderr
    missing = cli("managed-images", "ls", check=False)
    assert missing.returncode == 2 and "no stages storage" in missing.stderr
    stages = f"{registry_nodelete.host}/acme/nodelete-stages"
    cli("managed-images", "add", "api", "-s", stages)
    refused = cli("managed-images", "rm", "api", "-s", stages, check=False)
    assert refused.returncode == 1 and "deletion is disabled" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_an_unwritable_state_directory_is_one_error_line(cli: Cli) -> None:
    write_project(cli.cwd, {"web": {}}, project="stuck")
    blocker = Path(cli.cwd) / "not-a-directory"
    blocker.write_text("a file where the state directory should be\n")
    result = cli("managed-images", "add", "web", "-s", ":local", extra_env={"XDG_STATE_HOME": str(blocker)},
                 check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("ci-env: error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "XDG_STATE_HOME" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("stages_host", ["same", "other"])
def test_every_tag_is_put_after_its_publication_record(
    cli: Cli, fresh_registry: RegistryFactory, stages_host: str,
) -> None:
    """A cleanup lists the records right before it removes a tag, and leaves alone a tag whose record is new: that
    holds only if no tag is put before its record exists. ``other``: the stages storage named by another host
    (``localhost``), so the image reaches the images repo by a push, not by a retag on the registry."""
    registry = fresh_registry()
    port = registry.host.rsplit(":", 1)[1]
    stages = f"{registry.host if stages_host == 'same' else f'localhost:{port}'}/acme/stages"
    write_project(cli.cwd, {"api": {"a": "1"}})
    cli("build-and-publish", "-i", f"{registry.host}/acme/app", "-s", stages, "--tag-git-branch", "main",
        "--tag-custom", "latest")
    log = [(m, p.split("?")[0]) for m, p, status in registry.requests() if status < 300]
    tags = RegistryReader(registry).tags("acme/app/api")
    assert tags == ["latest", "main"]
    for tag in tags:
        key = records.publication_key(f"{registry.host}/acme/app/api:{tag}")
        record = next(n for n, (m, p) in enumerate(log)
                      if m == "PUT" and p.startswith(f"/v2/acme/stages/manifests/ci-env-pub-{key}-"))
        last = max(n for n, (m, p) in enumerate(log) if m == "PUT" and p == f"/v2/acme/app/api/manifests/{tag}")
        assert record < last, (tag, log)
