"""Merging the JSON reports of several runs of one cleanup (the shards of ``cleanup --shard I/N``) into one report
of the same schema (``ci-env report merge``).

The reports must be of one command and one kind of run (all dry runs or none), and never decide the same tag twice
(shards handle disjoint repositories: an overlap means two jobs ran the same shard, and is refused). A shard's
report says which shard it was (``shard``: I/N, the repositories it took, the rules' fingerprint): the shards must
be of one N and one set of rules, each given once, and all there -- unless ``allow_partial``, when the merged
report names the missing ones (``shards.missing``) and is ``partial``. Reports without ``shard`` (written by an
older ci-env) merge unchecked, with a warning. Counts add up, lists join, the run spans from the first start
to the last finish, and the merged report is ``partial`` when one of them was stopped or a shard is missing, with
each one's own reason (``partial.runs``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci_env.cleanup.report import REPORT_SCHEMA, write_json
from ci_env.cleanup.report_input import read_report
from ci_env.cleanup.sizes import LARGEST
from ci_env.errors import UsageError

_LISTS = ("skipped", "untagged", "resumed", "would_fail")
_HOST_COUNTS = ("rate_limited_answers", "paused_waits", "paused_seconds", "paced_waits", "paced_seconds")
#: ``partial.stopped_by`` of a merged report whose stopped parts do not all give the same reason
SEVERAL = "several"
#: ``partial.runs[].stopped_by`` of a shard not given (``--allow-partial``)
MISSING_SHARD = "missing-shard"
#: a run's reason -> the merged ``partial.stopped_by`` when it is every part's reason
_ALL_FOR = {"time-budget": "time-budget", MISSING_SHARD: "missing-shards"}


@dataclass(frozen=True)
class Shards:
    """The shards of the reports merged: the merged report's ``shards`` (None when no report was a shard's) and
    the shards missing (``I/N``; only with ``allow_partial``)."""

    field: dict[str, Any] | None
    missing: tuple[str, ...] = ()


def _label(shard: Mapping[str, Any]) -> str:
    return f"{shard['index']}/{shard['total']}"


def _listed(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def check_shards(documents: Sequence[tuple[str, Mapping[str, Any]]], allow_partial: bool = False,
                 warn: Callable[[str], None] | None = None) -> Shards:
    """Whether the reports are the shards of one cleanup (see the module docstring): UsageError naming the report
    or shards that are not (a merged report, a shard's report with another run's, different N or rules, a shard
    given twice, shards missing without ``allow_partial``); ``warn`` is told of reports without shard facts."""
    facts: list[tuple[str, Mapping[str, Any]]] = []
    plain: list[str] = []
    older: list[str] = []
    for name, document in documents:
        if "shards" in document:
            raise UsageError(f"{name} is a merged report: merge the reports the shards wrote (cleanup --report)")
        if "shard" not in document:
            older.append(name)
        elif document["shard"] is None:
            plain.append(name)
        else:
            facts.append((name, document["shard"]))
    for name in older:
        if warn is not None:
            warn(f"{name} does not say which shard it is (written by an older ci-env): merged without checking "
                 "that every shard is there once")
    if not facts:
        return Shards(None)
    first_name, first = facts[0]
    if plain:
        raise UsageError(f"{first_name} is shard {_label(first)} of a cleanup by rules and {plain[0]} is no shard's "
                         "report: merge the reports of the shards of one cleanup")
    by_index: dict[int, str] = {}
    for name, shard in facts:
        if shard["total"] != first["total"]:
            raise UsageError(f"{first_name} is shard {_label(first)} and {name} shard {_label(shard)}: shards of "
                             "different counts are not one cleanup; merge the reports of one --shard I/N run")
        if shard["rules"] != first["rules"]:
            raise UsageError(f"{first_name} and {name} ran different rules or --registry (fingerprints "
                             f"{first['rules']} and {shard['rules']}): merge the reports of the shards of one cleanup")
        if shard["index"] in by_index:
            raise UsageError(f"shard {_label(shard)} is given twice ({by_index[shard['index']]} and {name}): give "
                             "each shard's report once")
        by_index[shard["index"]] = name
    total = int(first["total"])
    missing = tuple(f"{index}/{total}" for index in range(1, total + 1) if index not in by_index)
    if missing and older:
        missing = ()  # an older report may be any of them
    elif missing and not allow_partial:
        noun = "shard" if len(missing) == 1 else "shards"
        raise UsageError(f"{noun} {_listed(missing)} {'is' if len(missing) == 1 else 'are'} missing: give every "
                         f"shard's report, or pass --allow-partial to merge these {len(by_index)} (the merged "
                         "report is then partial and names the missing shards)")
    field = {"total": total, "merged": [f"{index}/{total}" for index in sorted(by_index)], "missing": list(missing),
             "repositories": sum(int(shard["repositories"]) for _, shard in facts),
             "selected": max(int(shard["selected"]) for _, shard in facts), "rules": first["rules"]}
    return Shards(field, missing)


def _partial(documents: Sequence[tuple[str, Mapping[str, Any]]], missing: Sequence[str]) -> dict[str, Any] | None:
    """The merged report's ``partial``: each stopped report's own reason and journal, and each missing shard."""
    runs: list[dict[str, Any]] = []
    for name, document in documents:
        stopped = document.get("partial")
        if stopped:
            shard = document.get("shard")
            runs.append({"report": name, "shard": _label(shard) if shard else None,
                         "stopped_by": stopped.get("stopped_by", "time-budget"), "journal": stopped.get("journal")})
    runs += [{"shard": label, "stopped_by": MISSING_SHARD, "journal": None} for label in missing]
    if not runs:
        return None
    reasons = {run["stopped_by"] for run in runs}
    stopped_by = _ALL_FOR.get(next(iter(reasons)), SEVERAL) if len(reasons) == 1 else SEVERAL
    journal = next((run["journal"] for run in runs if run["journal"]), None)
    return {"stopped_by": stopped_by, "journal": journal, "runs": runs}


def merge(documents: Sequence[tuple[str, Mapping[str, Any]]], allow_partial: bool = False,
          warn: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The reports ``(name, document)`` as one report; UsageError naming the reports that do not go together
    (:func:`check_shards`: shards of one cleanup, all there unless ``allow_partial``)."""
    if not documents:
        raise UsageError("report merge needs at least one report")
    first_name, first = documents[0]
    for name, document in documents[1:]:
        for field in ("command", "dry_run"):
            if document.get(field) != first.get(field):
                raise UsageError(f"{name} and {first_name} are not of one run: {field} {document.get(field)!r} and "
                                 f"{first.get(field)!r}; merge the reports of the shards of one cleanup")
    shards = check_shards(documents, allow_partial, warn)
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
        **({"shards": shards.field} if shards.field is not None else {}),
        "summary": _sums([d["summary"] for _, d in documents]),
        "decisions": decisions,
    }
    for listed in _LISTS:
        items = [item for _, d in documents for item in d.get(listed, [])]
        if items or listed == "skipped":
            merged[listed] = items
    partial = _partial(documents, shards.missing)
    if partial is not None:
        merged["partial"] = partial
    limits = [d["rate_limits"] for _, d in documents if "rate_limits" in d]
    if limits:
        merged["rate_limits"] = _rate_limits(limits)
    sizes = [d["bytes"] for _, d in documents if "bytes" in d]
    if sizes:
        merged["bytes"] = _bytes(sizes)
    return merged


def merge_files(paths: Sequence[Path], output: Path, allow_partial: bool = False,
                warn: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Read ``paths``, merge them (:func:`merge`), write the merged report to ``output`` (atomically); the merged
    report. Nothing is written when they do not merge."""
    merged = merge([(str(path), read_report(path)) for path in paths], allow_partial, warn)
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
