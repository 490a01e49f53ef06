"""The README's GitHub and GitLab quickstarts are the example files the tests run, byte for byte; every werf.yaml
it shows is one ci-env reads; every YAML block of the README and docs/ parses; the GitHub shard workflow of
docs/retention-rules.md wires its matrix, artifacts and merge job together (its steps run against a real
registry)."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from ci_env.werf_config import load_project
from tests.cli import environ_without
from tests.services.registry import RegistryService

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ["examples/github-workflow.yml", "examples/gitlab-ci.yml", "examples/github-buildx.yml",
            "examples/gitlab-buildx.yml"]
DOCUMENTS = ["README.md"]


@pytest.mark.parametrize("document", DOCUMENTS)
@pytest.mark.parametrize("example", EXAMPLES)
def test_document_embeds_example_verbatim(document: str, example: str) -> None:
    text = (ROOT / document).read_text()
    snippet = (ROOT / example).read_text()
    assert f"```yaml\n{snippet}```\n" in text, f"{document} must contain {example} verbatim in a yaml block"


def _werf_yamls(text: str) -> list[str]:
    """The yaml blocks of ``text`` that are a whole werf.yaml (a meta document with project and configVersion)."""
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    return [b for b in blocks if re.search(r"^project: ", b, re.M) and re.search(r"^configVersion: ", b, re.M)]


def test_readme_werf_yamls_are_read_by_ci_env(tmp_path: Path) -> None:
    """The quickstart's werf.yaml and the keep-policy recipe load as written (keep policies included)."""
    found = _werf_yamls((ROOT / "README.md").read_text())
    assert len(found) >= 2, "the quickstart's werf.yaml and the keep-policy recipe"
    for number, text in enumerate(found):
        project_dir = tmp_path / str(number)
        project_dir.mkdir()
        (project_dir / "werf.yaml").write_text(text)
        (project_dir / "Dockerfile").write_text("FROM scratch\n")
        project = load_project(project_dir, env={})
        assert [image.name for image in project.images] == ["app"]
        if "keepPolicies" in text:
            assert project.cleanup is not None and len(project.cleanup.keep_policies) == 3


class _GitLabLoader(yaml.SafeLoader):
    """YAML as GitLab reads it: ``!reference [job, key]`` is GitLab's own tag."""


_GitLabLoader.add_constructor("!reference", lambda loader, node: loader.construct_sequence(node))  # type: ignore[arg-type]


def _yaml_blocks() -> list[tuple[str, str]]:
    found = []
    for name in ["README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))]:
        found += [(name, block) for block in re.findall(r"```yaml\n(.*?)```", (ROOT / name).read_text(), re.S)]
    return found


def test_every_yaml_block_of_the_docs_parses() -> None:
    blocks = _yaml_blocks()
    assert len(blocks) > 20
    for name, block in blocks:
        try:
            list(yaml.load_all(block, Loader=_GitLabLoader))  # a SafeLoader, with GitLab's tag
        except yaml.YAMLError as error:
            pytest.fail(f"a yaml block of {name} does not parse: {error}\n{block}")


PINNED = re.compile(r"^ *- uses: (?P<action>[\w.-]+/[\w./-]+)@(?P<sha>[0-9a-f]{40}) # v\d+\.\d+\.\d+$")


def _github_shard_workflow() -> tuple[str, dict[Any, Any]]:
    (text,) = [b for name, b in _yaml_blocks() if name == "docs/retention-rules.md" and "--shard ${{" in b]
    return text, yaml.safe_load(text)


def _run_steps(steps: list[dict[str, Any]], workspace: Path, artifacts: Path, env: dict[str, str],
               values: dict[str, str], failed: bool = False) -> bool:
    """The job's steps as the runner runs them, in ``workspace``: ``run:`` by bash -e with its ``env:``, the
    artifact actions on the directory ``artifacts`` (one directory per artifact name), other actions skipped
    (the setup steps: the registry here needs no login). ``values`` stand for the ``${{ }}`` expressions.
    Returns whether a step failed."""
    def fill(text: str) -> str:
        for expression, value in values.items():
            text = text.replace(expression, value)
        assert "${{" not in text, text
        return text

    for step in steps:
        if failed and "always()" not in step.get("if", ""):
            continue
        uses = step.get("uses", "")
        given = {k: fill(str(v)) for k, v in step["with"].items()} if uses.startswith("actions/") else {}
        if uses.startswith("actions/upload-artifact@"):
            target = artifacts / given["name"]
            target.mkdir(parents=True)
            for line in given["path"].split():
                if (workspace / line).exists():
                    shutil.copy(workspace / line, target)
        elif uses.startswith("actions/download-artifact@"):
            assert given["merge-multiple"].lower() == "true"  # YAML true, given to the action as "true"
            for source in artifacts.iterdir():
                if fnmatch.fnmatchcase(source.name, given["pattern"]):
                    shutil.copytree(source, workspace, dirs_exist_ok=True)
        elif "run" in step:
            done = subprocess.run(["bash", "-e", "-c", fill(step["run"])], cwd=workspace, capture_output=True,
                                  text=True, env={**env, **{k: fill(str(v)) for k, v in step.get("env", {}).items()}})
            failed = failed or done.returncode != 0
            assert done.returncode == 0, done.stderr
    return failed


def test_github_shard_workflow_merges_every_shards_report(registry_open: RegistryService, tmp_path: Path) -> None:
    """docs/retention-rules.md's GitHub workflow: complete (triggers, runs-on, permissions, every action pinned
    by commit with its release), one matrix job per shard and a merge job after them all; run step by step
    (each job in a workspace of its own, artifacts passed only through upload-artifact and download-artifact
    as written) against a namespace of the real registry, the merged report holds every shard's decisions."""
    from ci_env.registry.client import RegistryClient
    from tests.registry_client.images import push_image

    text, workflow = _github_shard_workflow()
    assert set(workflow[True]) == {"schedule", "workflow_dispatch"}  # yaml 1.1 reads the key `on` as True
    uses = [line for line in text.splitlines() if "uses:" in line]
    assert uses and all(PINNED.match(line) for line in uses), uses
    cleanup, merge = workflow["jobs"]["cleanup"], workflow["jobs"]["cleanup-report"]
    shards = cleanup["strategy"]["matrix"]["shard"]
    assert shards == [1, 2, 3] and cleanup["strategy"]["fail-fast"] is False
    assert f"--shard ${{{{ matrix.shard }}}}/{len(shards)}" in text
    assert merge["needs"] == "cleanup" and merge["if"].startswith("always()")
    assert all(job["runs-on"] == "ubuntu-latest" and "permissions" in job for job in (cleanup, merge))

    client = RegistryClient(registry_open.host, docker_config=Path("/nonexistent"))
    group = f"ghshards{uuid.uuid4().hex[:8]}"
    names = [f"{group}/svc-{n}" for n in range(6)]
    for name in names:
        push_image(client, name, ["old"], created="2024-01-01T00:00:00Z")
        push_image(client, name, ["new"], created="2024-06-01T00:00:00Z")
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "retention.yaml").write_text(
        f"version: 1\nrepositories:\n- namespace: {group}\n  rules:\n  - keep: {{last: 1}}\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ci-env").write_text(f'#!/bin/sh\nexec {sys.executable} -m ci_env "$@"\n')
    (bin_dir / "ci-env").chmod(0o755)
    env = {**environ_without(), "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT),
           "DOCKER_CONFIG": str(tmp_path / "docker"), "XDG_STATE_HOME": str(tmp_path / "state"),
           "KUBECONFIG": str(tmp_path / "none"), "WERF_WITHOUT_KUBE": "true"}
    artifacts = tmp_path / "artifacts"
    for shard in shards:
        workspace = tmp_path / f"shard-{shard}"
        shutil.copytree(checkout, workspace)
        _run_steps(cleanup["steps"], workspace, artifacts, env,
                   {"${{ matrix.shard }}": str(shard), "registry.example.com": registry_open.host})
    assert sorted(p.name for p in artifacts.iterdir()) == [f"cleanup-report-{n}" for n in shards]
    workspace = tmp_path / "merge"
    workspace.mkdir()
    _run_steps(merge["steps"], workspace, artifacts, env, {})

    merged = json.loads((artifacts / "cleanup-report" / "cleanup-report.json").read_text())
    assert merged["shards"]["merged"] == ["1/3", "2/3", "3/3"] and merged["shards"]["missing"] == []
    assert {(d["repository"], d["tag"], d["outcome"]) for d in merged["decisions"]} == {
        (f"{registry_open.host}/{name}", tag, outcome) for name in names
        for tag, outcome in (("old", "removed"), ("new", "kept"))}
    assert all(client.list_tags(name) == ["new"] for name in names)
