"""The README's GitHub and GitLab snippets are the example files the tests run, byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ["examples/github-workflow.yml", "examples/gitlab-ci.yml"]
# The README section; once merged into README.md, add "README.md" here too.
DOCUMENTS = ["README.md"]


@pytest.mark.parametrize("document", DOCUMENTS)
@pytest.mark.parametrize("example", EXAMPLES)
def test_document_embeds_example_verbatim(document: str, example: str) -> None:
    text = (ROOT / document).read_text()
    snippet = (ROOT / example).read_text()
    assert f"```yaml\n{snippet}```\n" in text, f"{document} must contain {example} verbatim in a yaml block"
