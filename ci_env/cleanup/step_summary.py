"""The step summary (``$GITHUB_STEP_SUMMARY``): read at a glance at the width of a job page.

First the totals and the bytes freed, a table with one row per image (kept, removed, failed, freed), a Mermaid
pie of the removals by reason (GitHub and GitLab render ```` ```mermaid ```` blocks), a link to the HTML
report; then one collapsible section per image with its removals (failures first) and kept tags, tag names in
natural order (``gone-2`` before ``gone-10``), digests and content signatures shortened to 12 hex digits.

The document stays small whatever the repository: at most :data:`SUMMARY_ROWS` removals besides the failures
and as many kept tags are listed (the first in natural order, chosen while streaming over the decisions), the
rest are counted; the JSON and HTML reports have them all.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ci_env.cleanup.policies import DELETE, KIND_STAGE, Decision

if TYPE_CHECKING:
    from ci_env.cleanup.report import Result
    from ci_env.cleanup.sizes import Bytes

#: Rows of removals (besides the failed ones) and of kept tags the step summary shows at most
#: ($GITHUB_STEP_SUMMARY takes 1 MiB per step).
SUMMARY_ROWS = 1000
#: hex digits shown of digests and content signatures
SHORT = 12

_HEX = re.compile(r"[0-9a-f]{40,}")
_DIGITS = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple[tuple[int, int, str], ...]:
    """Sort key putting ``gone-2`` before ``gone-10``: digit runs compare as numbers."""
    return tuple((1, int(part), "") if part.isdigit() else (0, 0, part)
                 for part in _DIGITS.split(text) if part)


def short_digest(digest: str | None) -> str:
    """``sha256:0123…`` -> its first 12 hex digits; ``-`` for none."""
    if not digest:
        return "-"
    return digest.partition(":")[2][:SHORT] or digest[:SHORT]


def short_tag(tag: str) -> str:
    """A content signature or commit (40+ hex digits) shortened to 12 with an ellipsis; other tags as they are."""
    return tag[:SHORT] + "\u2026" if _HEX.fullmatch(tag) else tag


def image_of(decision: Decision) -> str:
    """The image column: the image name, ``~`` for the nameless image, ``(stages)`` for stages."""
    if decision.kind == KIND_STAGE:
        return "(stages)"
    return "~" if decision.image is None else decision.image


#: the words for each rule that removes (``Basis.rule``), grouping removals by reason
REASON_GROUPS: Mapping[str, str] = {
    "no-keep-policy": "no keep policy keeps it",
    "no-metadata": "no metadata record (strict)",
    "unused-stage": "stage no kept tag uses",
    "purge": "purge",
    "keep-policy": "kept by a keep policy",
    "protection": "protected (--keep-*)",
    "in-use": "in use in Kubernetes",
    "unknown-strategy": "strategy unknown",
    "used-by-kept-tag": "stage a kept tag uses",
}


def reason_group(decision: Decision) -> str:
    """A short, fixed label of why (one of a handful per run): the rule, or the policy of the tag's strategy."""
    rule = decision.basis.rule
    if rule == "strategy":
        return f"{decision.strategy or 'no'} strategy policy"
    return REASON_GROUPS.get(rule, rule)


def _cell(text: str) -> str:
    """A Markdown table cell: pipes escaped, HTML's specials as entities, no inline link or image (``](`` is
    escaped: a registry's error text in a reason is untrusted), one line."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
    text = text.replace("](", "]\\(")
    return " ".join(text.split()) or " "


def artifacts_url(env: Mapping[str, str]) -> str | None:
    """Where the CI system lists the job's artifacts (the HTML report), or None outside CI."""
    for needed, template in ARTIFACT_PAGES:
        if all(env.get(name) for name in needed):
            return template.format(**{name: env[name] for name in needed})
    return None


#: (variables needed, URL of the page listing the job's artifacts): one row per CI system
ARTIFACT_PAGES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"),
     "{GITHUB_SERVER_URL}/{GITHUB_REPOSITORY}/actions/runs/{GITHUB_RUN_ID}#artifacts"),
    (("CI_JOB_URL",), "{CI_JOB_URL}/artifacts/browse"),
)


def _row(result: Result, decision: Decision) -> tuple[str, str, str, str, str]:
    """(image, tag, digest, outcome, reason) of one decision."""
    status, error = result.outcome(decision)
    reason = decision.reason + (f" [{error}]" if error else "")
    accessories = result.accessories.get(decision.key, ())
    if accessories:
        reason += " (+ " + ", ".join(sorted({a.accessory.kind for a in accessories})) + ")"
    return image_of(decision), decision.stored_tag, decision.digest or "", status, reason


def markdown(result: Result, html_report: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The step summary of ``result``; ``html_report`` names the HTML report file when one was written (linked
    to the job's artifacts page where ``env`` says which).

    Size: the summary page top to bottom (head, refusals, per image, rows, untagged), one section after the other
    over the same counts.
    """
    from ci_env.cleanup.sizes import human

    counts = result.counts()
    title = f"ci-env {result.command}" + (" (dry run)" if result.dry_run else "")
    lines = [f"### {title}: {_cell(result.images_repo)}", ""]
    if result.shard is not None:
        lines += [f"{result.shard.phrase().capitalize()} selected by the rules", ""]
    removed_word = "would be removed" if result.dry_run else "removed"
    head = (f"**{counts['delete']} to remove**, {counts['kept']} kept: {counts['removed']} removed, "
            f"{counts['absent']} already gone, {counts['failed']} failed"
            + (f", {counts['would_remove']} would be removed" if result.dry_run else "")
            + (f", {counts['not_attempted']} not started" if counts["not_attempted"] else "")
            + (f", {counts['moved']} moved since the plan (left alone)" if counts["moved"] else ""))
    figures = result.bytes
    if figures is not None:
        head += f"; **{_bytes_words(figures, result.dry_run)}**"
    lines += [head, ""]
    for refusal in result.refusals:
        lines += [f"**The real {result.command} would fail** before removing anything: {_cell(refusal.message)}", ""]
    if html_report:
        url = artifacts_url(env or {})
        name = _cell(html_report.rsplit("/", 1)[-1])
        lines += [f"HTML report: [{name}]({url})" if url else f"HTML report: `{name}` (in the job's artifacts)", ""]

    per_image: dict[str, dict[str, int]] = {}
    by_reason: dict[str, int] = {}
    for decision in result.plan.decisions:
        status, _ = result.outcome(decision)
        stats = per_image.setdefault(image_of(decision), {"kept": 0, "delete": 0, "failed": 0})
        if decision.action == DELETE:
            stats["delete"] += 1
            stats["failed"] += status == "failed"
            group = reason_group(decision)
            by_reason[group] = by_reason.get(group, 0) + 1
        else:
            stats["kept"] += 1
    freed = {i.image: i for i in figures.images} if figures is not None else {}
    if per_image:
        lines += [f"| image | kept | {removed_word} | failed | freed |", "|---|---:|---:|---:|---:|"]
        for image in sorted(per_image, key=natural_key):
            stats = per_image[image]
            size = freed.get(image)
            lines.append(f"| {_cell(image)} | {stats['kept']} | {stats['delete']} | {stats['failed']} | "
                         f"{human(size.freed) if size is not None else '-'} |")
        lines.append("")
    if by_reason:
        lines += ["```mermaid", f"pie showData title {'Removals' if not result.dry_run else 'Planned removals'} "
                  "by reason"]
        lines += [f'    "{_mermaid_label(label)}" : {count}'
                  for label, count in sorted(by_reason.items(), key=lambda item: (-item[1], item[0]))]
        lines += ["```", ""]

    removals, failures, kept, removal_count, kept_count = _chosen_rows(result)
    shown: dict[str, tuple[list[tuple[str, ...]], list[tuple[str, ...]]]] = {}
    for row in [*failures, *removals]:
        shown.setdefault(row[0], ([], []))[0].append(row)
    for row in kept:
        shown.setdefault(row[0], ([], []))[1].append(row)
    for image in sorted(per_image, key=natural_key):
        stats = per_image[image]
        deleted_rows, kept_rows = shown.get(image, ([], []))
        lines += [f"<details><summary><b>{_cell(image)}</b>: {stats['delete']} {removed_word}, "
                  f"{stats['kept']} kept</summary>", ""]
        lines += _table(deleted_rows)
        if kept_rows:
            lines += [f"{stats['kept']} kept, and why:", ""]
            lines += _table(kept_rows)
        lines += ["</details>", ""]
    if removal_count > len(removals) + len(failures):
        lines += [f"... and {removal_count - len(removals) - len(failures)} more removals: see the --report JSON "
                  "or the HTML report", ""]
    if kept_count > len(kept):
        lines += [f"... and {kept_count - len(kept)} more kept tags: see the --report JSON or the HTML report", ""]
    if result.untagged:
        lines += [f"<details><summary><b>(untagged)</b>: {len(result.untagged)} manifests</summary>", ""]
        lines += _table([("(untagged)", "-", u.digest, u.status,
                          u.reason or u.why or "untagged: nothing kept reaches it")
                         for u in result.untagged[:SUMMARY_ROWS]])
        lines += ["</details>", ""]
    return "\n".join(lines) + "\n"


def _bytes_words(figures: Bytes, dry_run: bool) -> str:
    from ci_env.cleanup.sizes import human

    verb = "would be freed" if dry_run else "freed"
    return (f"{'at most ' if figures.at_most else ''}{human(figures.freed)} {verb} once the registry's garbage "
            "collection runs" + (f" ({figures.unknown} not measured)" if figures.unknown else ""))


def _mermaid_label(text: str) -> str:
    return re.sub(r"[^\w .:()/+-]", "", text)[:60] or "-"


def _chosen_rows(result: Result) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]], list[tuple[str, ...]],
                                          int, int]:
    """(removals shown, failures, kept shown, removals in all, kept in all): streaming over the decisions, the
    first SUMMARY_ROWS in natural order of image and tag are held, never all of them."""
    counts = {"delete": 0, "kept": 0}
    failures: list[tuple[str, ...]] = []

    def key(row: tuple[str, ...]) -> tuple[Any, ...]:
        return natural_key(row[0]), natural_key(row[1])

    def deleted() -> Iterator[tuple[str, ...]]:
        for decision in result.plan.decisions:
            if decision.action == DELETE:
                counts["delete"] += 1
                row = _row(result, decision)
                if row[3] == "failed":
                    failures.append(row)
                else:
                    yield row

    def kept() -> Iterator[tuple[str, ...]]:
        for decision in result.plan.decisions:
            if decision.action != DELETE:
                counts["kept"] += 1
                yield _row(result, decision)

    removals = heapq.nsmallest(SUMMARY_ROWS, deleted(), key=key)
    kept_rows = heapq.nsmallest(SUMMARY_ROWS, kept(), key=key)
    return removals, sorted(failures, key=key), kept_rows, counts["delete"], counts["kept"]


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    if not rows:
        return []
    lines = ["| tag | digest | outcome | reason |", "|---|---|---|---|"]
    lines += [f"| {_cell(short_tag(tag))} | `{short_digest(digest)}` | {_cell(status)} | {_cell(reason)} |"
              for _image, tag, digest, status, reason in rows]
    return [*lines, ""]
