"""The README's GitHub and GitLab quickstarts are the example files the tests run, byte for byte; every werf.yaml
it shows is one ci-env reads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ci_env.werf_config import load_project

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
