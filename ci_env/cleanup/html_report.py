"""The HTML report (``--html-report FILE``): one self-contained page people open from the job's artifacts.

It shows the data of the JSON report (``ci_env.cleanup.report.Result``): the totals and the bytes freed at the
top, removals by reason as an inline SVG chart, per image a timeline of its tags over time (published, kept,
removed; the tag and reason on hover, the list below filtered to a period on click), and every decision in a
table filtered by outcome, reason, image and tag name, a page at a time (responsive at 100,000 tags).

Nothing is loaded from elsewhere: CSS, JavaScript and SVG are inline and a Content-Security-Policy forbids any
other source, so it works offline. Every name and reason is untrusted: the data travels as JSON inside a
``<script type="application/json">`` element (``<``, ``>`` and ``&`` escaped) and the page writes it with
``textContent`` only; the parts drawn here go through Jinja2's autoescaping.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ci_env.cleanup.policies import DELETE, FoundTag, StageTag
from ci_env.cleanup.step_summary import image_of, natural_key, reason_group, short_tag
from ci_env.registry.outcomes import Status

if TYPE_CHECKING:
    from ci_env.cleanup.report import Result

TEMPLATE = "cleanup-report.html.j2"
#: outcomes in the order the page lists and colours them
OUTCOMES = (Status.REMOVED, Status.WOULD_REMOVE, Status.FAILED, Status.ABSENT, Status.NOT_ATTEMPTED, Status.MOVED,
            "kept")


def _json_for_html(value: Any) -> str:
    """JSON safe inside a ``<script>`` element: no ``</script>``, no ``<!--``, no U+2028/9 surprises."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def page_data(result: Result) -> dict[str, Any]:
    """What the page shows: the report's totals and bytes, and the decisions as compact rows
    ``[image, tag, digest, outcome, reason group, reason, published, error, extra]`` with the images, outcomes
    and reason groups as indexes into their lists (50,000 rows stay a few megabytes)."""
    images: dict[str, int] = {}
    groups: dict[str, int] = {}
    outcomes = {name: index for index, name in enumerate(OUTCOMES)}
    rows: list[list[Any]] = []
    for decision, entry in zip(result.plan.decisions, result.decision_entries(), strict=True):
        image = images.setdefault(image_of(decision), len(images))
        group = groups.setdefault(reason_group(decision), len(groups))
        outcome = entry["outcome"]
        extra = [f"{a['kind']} {a['digest']} ({a['outcome']})" for a in entry.get("accessories", ())]
        rows.append([image, entry["stored_tag"], entry["digest"] or "", outcomes.setdefault(outcome, len(outcomes)),
                     group, entry["reason"], entry.get("published", ""), entry.get("error", ""),
                     "; ".join(extra)])
    names = sorted(images, key=lambda name: images[name])
    order = {index: rank for rank, index in enumerate(sorted(range(len(names)), key=lambda i: natural_key(names[i])))}
    rows.sort(key=lambda row: (order[row[0]], natural_key(row[1])))
    document = result._document([])
    return {
        "command": result.command,
        "dry_run": result.dry_run,
        "images_repo": result.images_repo,
        "stages_storage": result.stages_storage,
        "shard": result.shard.phrase() if result.shard is not None else None,
        "started": result.started,
        "finished": result.finished,
        "summary": document["summary"],
        "bytes": document.get("bytes"),
        "untagged": len(result.untagged),
        "images": names,
        "groups": sorted(groups, key=lambda name: groups[name]),
        "outcomes": sorted(outcomes, key=lambda name: outcomes[name]),
        "rows": rows,
    }


def _reason_bars(result: Result) -> list[dict[str, Any]]:
    """Removals by reason group, largest first, with each bar's width in percent of the largest."""
    counts: dict[str, int] = {}
    for decision in result.plan.decisions:
        if decision.action == DELETE:
            counts[reason_group(decision)] = counts.get(reason_group(decision), 0) + 1
    top = max(counts.values(), default=1)
    return [{"label": label, "count": count, "width": round(100 * count / top, 1)}
            for label, count in sorted(counts.items(), key=lambda item: (-item[1], natural_key(item[0])))]


def render(result: Result) -> str:
    """The whole page."""
    import jinja2

    from ci_env.cleanup.sizes import human
    from ci_env.render import template_loader

    data = page_data(result)
    environment = jinja2.Environment(loader=template_loader(), autoescape=True, undefined=jinja2.StrictUndefined,
                                     keep_trailing_newline=True)
    environment.filters["human"] = human
    environment.filters["short_tag"] = short_tag
    environment.filters["n"] = "{:,}".format
    template = environment.get_template(TEMPLATE)
    return template.render(data=data, data_json=_json_for_html(data), bars=_reason_bars(result),
                           summary=data["summary"], figures=result.bytes)


def write(path: Path, result: Result) -> None:
    """Write the page to ``path`` atomically (as the JSON report is written)."""
    from ci_env.cleanup.report import _write_atomically

    page = render(result)

    def put(handle: TextIO) -> None:
        handle.write(page)

    _write_atomically(path, put, option="--html-report")


def published_times(tags: Iterable[FoundTag], stages: Iterable[StageTag] = ()) -> Mapping[tuple[str, str], str]:
    """(repository, stored tag) -> ISO time it was published (tags) or created (stages), where known."""
    times: dict[tuple[str, str], str] = {}
    for tag in tags:
        if tag.published is not None:
            times[tag.key] = _iso(tag.published)
    for stage in stages:
        if stage.created is not None:
            times[stage.key] = _iso(stage.created)
    return times


def _iso(when: datetime) -> str:
    return when.replace(microsecond=0).isoformat().replace("+00:00", "Z")
