"""The action and the pipelines validate against their vendors' schemas, and zizmor finds nothing."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.services import require

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("schema", "path"),
    [
        ("vendor.github-actions", "action.yml"),
        ("vendor.github-workflows", "examples/github-workflow.yml"),
        ("vendor.gitlab-ci", ".gitlab-ci-template.yml"),
        ("vendor.gitlab-ci", "examples/gitlab-ci.yml"),
        ("vendor.github-workflows", "examples/github-buildx.yml"),
        ("vendor.gitlab-ci", "examples/gitlab-buildx.yml"),
    ],
)
def test_file_validates_against_vendor_schema(schema: str, path: str) -> None:
    check = require("check-jsonschema", "validates the action and pipelines; pip install check-jsonschema")
    result = _run(check, "--builtin-schema", schema, path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", ["action.yml", "examples/github-workflow.yml", "examples/github-buildx.yml"])
def test_zizmor_finds_nothing(path: str) -> None:
    """The action, and the example workflow as shipped (every action pinned to a commit)."""
    zizmor = require("zizmor", "audits action.yml; pip install zizmor")
    result = _run(zizmor, "--offline", path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings" in result.stdout


def test_action_scripts_take_inputs_only_through_env() -> None:
    """No `${{ }}` inside `run:` text, and no reliance on INPUT_* (composite actions do not get them)."""
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    used: set[str] = set()
    for step in action["runs"]["steps"]:
        assert "${{" not in step.get("run", ""), step["name"]
        assert "INPUT_" not in step.get("run", ""), step["name"]
        for value in [*(step.get("env") or {}).values(), *(step.get("with") or {}).values()]:
            used.update(re.findall(r"inputs\.([\w-]+)", value))
        used.update(re.findall(r"inputs\.([\w-]+)", step.get("if", "")))
    assert used == set(action["inputs"]), "every input reaches a step, and only declared ones"
