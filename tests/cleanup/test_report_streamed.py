"""The ``--report`` JSON written one decision at a time is the document ``as_json`` gives, byte for byte."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from ci_env.cleanup import report as rpt
from ci_env.cleanup.policies import FoundTag, Policy, plan_cleanup
from ci_env.gitinfo import GitFacts
from ci_env.registry.reference import RepoAddress

REPO = RepoAddress("registry.example.com", "acme/app/api")


def _result(tags: list[FoundTag]) -> rpt.Result:
    plan = plan_cleanup(tags, [], GitFacts(branches=frozenset({"main"})), Policy(), datetime.now(timezone.utc))
    outcomes = {d.key: ("failed", 'denied: "no" \u00e9') for d in plan.deletions}
    return rpt.Result("cleanup", False, "registry.example.com/acme/app", None, plan, outcomes,
                      (("registry.example.com/acme/app/x:y", "another project's"),), "2024-01-01T00:00:00Z",
                      "2024-01-01T00:01:00Z", 3)


def test_the_streamed_report_is_the_document_byte_for_byte(tmp_path: Path) -> None:
    tags = [FoundTag("api", REPO, name, name, "sha256:" + "1" * 64, "git-branch", "record", name)
            for name in ("main", "gone-1", "gone-2")]
    for index, result in enumerate((_result(tags), _result([]))):
        whole, streamed = tmp_path / f"whole-{index}.json", tmp_path / f"streamed-{index}.json"
        rpt.write_json(whole, result.as_json())
        result.write_json(streamed)
        assert streamed.read_bytes() == whole.read_bytes()
    assert (tmp_path / "streamed-0.json").read_text().count('"outcome": "failed"') == 2
