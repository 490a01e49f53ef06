"""The step summary reads at a glance: per-image totals first, a Mermaid chart, natural order, short digests."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timezone

from ci_env.cleanup import report as rpt
from ci_env.cleanup import step_summary
from ci_env.cleanup.policies import FoundTag, Policy, plan_cleanup
from ci_env.cleanup.sizes import Manifest, Removal, measure
from ci_env.gitinfo import GitFacts
from ci_env.registry.reference import RepoAddress

REPO = "registry.example.com/acme/app"


def _digest(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


def _result(names: dict[str, list[str]], *, failed: frozenset[str] = frozenset(), dry_run: bool = False,
            with_bytes: bool = False) -> rpt.Result:
    tags = [FoundTag(image, RepoAddress("registry.example.com", f"acme/app/{image}"), name, name,
                     _digest(f"{image}:{name}"), "git-branch", "record", name)
            for image, tag_names in names.items() for name in tag_names]
    plan = plan_cleanup(tags, [], GitFacts(branches=frozenset({"main"})), Policy(), datetime.now(timezone.utc))
    outcomes = {d.key: ("failed", "denied") if d.stored_tag in failed
                else ("would-remove" if dry_run else "removed", "") for d in plan.deletions}
    figures = None
    if with_bytes:
        manifests = {d.digest: Manifest(d.digest, 100, {f"sha256:layer-{d.stored_tag}": 1024 * 1024})
                     for d in plan.deletions if d.digest}
        figures = measure([Removal(d.image or "~", d.stored_tag, d.digest or "") for d in plan.deletions],
                          [d.digest for d in plan.kept if d.digest], manifests)
    return rpt.Result("cleanup", dry_run, REPO, None, plan, outcomes, (), "", "", bytes=figures)


def test_tags_sort_naturally_digests_are_short_and_each_image_folds() -> None:
    text = step_summary.markdown(_result({"api": ["gone-10", "main", "gone-2", "gone-1"], "web": ["gone-3"]},
                                with_bytes=True))
    rows = re.findall(r"^\| (gone-\d+) \| `([0-9a-f]+)` \|", text, re.MULTILINE)
    assert [tag for tag, _ in rows] == ["gone-1", "gone-2", "gone-10", "gone-3"]
    assert all(len(digest) == 12 for _, digest in rows)
    assert "<details><summary><b>api</b>: 3 removed, 1 kept</summary>" in text
    assert "<details><summary><b>web</b>: 1 removed, 0 kept</summary>" in text
    assert "| api | 1 | 3 | 0 | 3.0 MiB |" in text and "| web | 0 | 1 | 0 | 1.0 MiB |" in text
    assert "at most 4.0 MiB freed once the registry's garbage collection runs" in text
    chart = text.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert chart.startswith("pie showData title Removals by reason")
    assert '"git-branch strategy policy" : 4' in chart


def test_failures_come_first_and_the_cap_counts_the_rest() -> None:
    names = [f"gone-{n}" for n in range(step_summary.SUMMARY_ROWS + 50)]
    text = step_summary.markdown(_result({"api": names}, failed=frozenset({"gone-1049"})))
    rows = re.findall(r"^\| (gone-\d+) \|", text, re.MULTILINE)
    assert rows[0] == "gone-1049" and rows[1:4] == ["gone-0", "gone-1", "gone-2"]
    assert len(rows) == step_summary.SUMMARY_ROWS + 1
    assert "... and 49 more removals" in text


def test_the_html_report_is_linked_to_the_jobs_artifacts() -> None:
    env = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/app", "GITHUB_RUN_ID": "42"}
    text = step_summary.markdown(_result({"api": ["gone-1"]}, dry_run=True), "out/cleanup.html", env)
    assert "HTML report: [cleanup.html](https://github.com/acme/app/actions/runs/42#artifacts)" in text
    assert "Planned removals by reason" in text and "1 would be removed" in text
    gitlab = step_summary.markdown(_result({"api": ["gone-1"]}), "cleanup.html", {"CI_JOB_URL": "https://gl/j/7"})
    assert "(https://gl/j/7/artifacts/browse)" in gitlab
    assert "HTML report" not in step_summary.markdown(_result({"api": ["gone-1"]}))


def test_hostile_names_stay_text() -> None:
    text = step_summary.markdown(_result({"<img src=x onerror=alert(1)>|x": ["gone-1"]}))
    assert "<img" not in text and "&lt;img src=x onerror=alert(1)&gt;\\|x" in text


def test_long_hex_tags_are_shortened() -> None:
    assert step_summary.short_tag("a" * 64) == "a" * 12 + "\u2026"
    assert step_summary.short_tag("v1.0") == "v1.0"
    assert step_summary.short_digest("sha256:" + "b" * 64) == "b" * 12


def test_a_registrys_error_text_makes_no_link_or_image_in_the_summary() -> None:
    """A failed removal's reason carries the registry's own error text: a hostile registry (or a proxy in front of
    one) could otherwise plant a phishing link or a tracking image in the job's summary page."""
    result = _result({"api": ["gone-1"]}, failed=frozenset({"gone-1"}))
    error = "log in again at [the registry](https://evil.example/login) ![x](https://evil.example/p.png)"
    outcomes = {key: ("failed", error) for key in result.outcomes}
    text = step_summary.markdown(rpt.Result("cleanup", False, REPO, None, result.plan, outcomes, (), "", ""))
    row = next(line for line in text.splitlines() if line.startswith("| gone-1 |"))
    assert "evil.example" in row  # the text is shown ...
    assert "](" not in row  # ... but no inline link or image is formed
