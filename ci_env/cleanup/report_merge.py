"""Merging the JSON reports of several runs of one cleanup (the shards of ``cleanup --shard I/N``) into one report
of the same schema (``ci-env report merge``).

The reports must be of one command and one kind of run (all dry runs or none), and never decide the same tag twice
(shards handle disjoint repositories: an overlap means two jobs ran the same shard, and is refused). Counts add up,
lists join, the run spans from the first start to the last finish, and the merged report is stopped (``partial``)
when one of them was.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ci_env.cleanup.report import REPORT_SCHEMA, write_json
from ci_env.cleanup.sizes import LARGEST
from ci_env.errors import UsageError

_LISTS = ("skipped", "untagged", "resumed", "would_fail")
_HOST_COUNTS = ("rate_limited_answers", "paused_waits", "paused_seconds", "paced_waits", "paced_seconds")


def read_report(path: Path) -> dict[str, Any]:
    """One cleanup report; UsageError (exit 2) for a file that cannot be read or is not one."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"the report {str(path)!r} cannot be read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, ValueError):
        raise UsageError(f"the report {str(path)!r} is not JSON: give the files cleanup --report wrote") from None
    if not isinstance(document, dict) or document.get("schema") != REPORT_SCHEMA:
        raise UsageError(f"the report {str(path)!r} is not a cleanup report ({REPORT_SCHEMA}): give the files "
                         "cleanup --report wrote")
    return document


def merge(documents: Sequence[tuple[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """The reports ``(name, document)`` as one report; UsageError naming the reports that do not go together."""
    if not documents:
        raise UsageError("report merge needs at least one report")
    first_name, first = documents[0]
    for name, document in documents[1:]:
        for field in ("command", "dry_run"):
            if document.get(field) != first.get(field):
                raise UsageError(f"{name} and {first_name} are not of one run: {field} {document.get(field)!r} and "
                                 f"{first.get(field)!r}; merge the reports of the shards of one cleanup")
    owner: dict[tuple[str, str, str], str] = {}
    decisions: list[Any] = []
    for name, document in documents:
        for decision in document.get("decisions", []):
            key = (decision.get("kind"), decision.get("repository"), decision.get("stored_tag"))
            if key in owner:
                raise UsageError(f"{name} and {owner[key]} both decide {key[1]}:{key[2]}: shards never share a "
                                 "repository, so two jobs ran the same shard (check --shard I/N or CI_NODE_INDEX)")
            owner[key] = name
            decisions.append(decision)
    merged: dict[str, Any] = {
        "schema": REPORT_SCHEMA, "command": first["command"], "dry_run": first["dry_run"],
        "started": min(d["started"] for _, d in documents), "finished": max(d["finished"] for _, d in documents),
        "images_repo": _joined([d["images_repo"] for _, d in documents]),
        "stages_storage": _joined([d["stages_storage"] for _, d in documents if d.get("stages_storage")]) or None,
        "summary": _sums([d["summary"] for _, d in documents]),
        "decisions": decisions,
    }
    for listed in _LISTS:
        items = [item for _, d in documents for item in d.get(listed, [])]
        if items or listed == "skipped":
            merged[listed] = items
    stopped = [d["partial"] for _, d in documents if "partial" in d]
    if stopped:
        merged["partial"] = {"stopped_by": "time-budget", "journal": next(
            (p["journal"] for p in stopped if p.get("journal")), None)}
    limits = [d["rate_limits"] for _, d in documents if "rate_limits" in d]
    if limits:
        merged["rate_limits"] = _rate_limits(limits)
    sizes = [d["bytes"] for _, d in documents if "bytes" in d]
    if sizes:
        merged["bytes"] = _bytes(sizes)
    return merged


def merge_files(paths: Sequence[Path], output: Path) -> dict[str, Any]:
    """Read ``paths``, merge them, write the merged report to ``output`` (atomically); the merged report."""
    merged = merge([(str(path), read_report(path)) for path in paths])
    write_json(output, merged)
    return merged


def _joined(values: Sequence[str]) -> str:
    return ", ".join(dict.fromkeys(values))


def _sums(summaries: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for summary in summaries:
        for key, value in summary.items():
            total[key] = total.get(key, 0) + int(value)
    return total


def _rate_limits(limits: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    hosts: dict[str, dict[str, Any]] = {}
    for limit in limits:
        for host in limit.get("hosts", []):
            entry = hosts.setdefault(host["host"], {"host": host["host"], **{k: 0 for k in _HOST_COUNTS}})
            for key in _HOST_COUNTS:
                entry[key] = round(entry[key] + host[key], 3)
    return {"rate_limited_answers": sum(x["rate_limited_answers"] for x in limits),
            "waits": sum(x["waits"] for x in limits),
            "waited_seconds": round(sum(x["waited_seconds"] for x in limits), 3),
            "hosts": [hosts[name] for name in sorted(hosts)]}


def _bytes(sizes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    images: dict[str, dict[str, int]] = {}
    for size in sizes:
        for image in size.get("images", []):
            entry = images.setdefault(image["image"], {"freed": 0, "removed": 0, "unknown": 0})
            for key in entry:
                entry[key] += image[key]
    kept = [s["kept"] for s in sizes if s.get("kept") is not None]
    largest = sorted((item for s in sizes for item in s.get("largest", [])), key=lambda i: -i["size"])[:LARGEST]
    return {"freed": sum(s["freed"] for s in sizes), "at_most": any(s["at_most"] for s in sizes),
            "kept": sum(kept) if kept else None, "kept_unread": sum(s["kept_unread"] for s in sizes),
            "unknown": sum(s["unknown"] for s in sizes), "when": sizes[0]["when"],
            "images": [{"image": name, **images[name]} for name in sorted(images)], "largest": largest}
