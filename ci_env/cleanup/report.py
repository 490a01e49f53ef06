"""The cleanup report: the plan with the outcome of each removal, as JSON (``--report``), a text table
and a Markdown table (``$GITHUB_STEP_SUMMARY``).

The JSON follows ``schemas/cleanup-report.schema.json``; it is written atomically (temporary file +
rename), so a killed run never leaves half a report.
"""

from __future__ import annotations

import itertools
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ci_env.cleanup.policies import DELETE, Decision, Plan
from ci_env.errors import UsageError
from ci_env.registry.outcomes import Status

if TYPE_CHECKING:
    from ci_env.cleanup.resume import Resumed
    from ci_env.cleanup.shards import ShardRun
    from ci_env.cleanup.sizes import Bytes
    from ci_env.registry.budget import WaitStats
    from ci_env.registry.removal import AccessoryOutcome, UntaggedOutcome

REPORT_SCHEMA = "ci-env-cleanup-report/v1"
KEPT = "kept"


@dataclass(frozen=True)
class Refusal:
    """A repository whose remover refused the preflight a dry run did: the real run would stop before removing
    anything, with ``exit_code``."""

    repository: str
    message: str
    exit_code: int = 1

    def as_json(self) -> dict[str, Any]:
        return {"repository": self.repository, "error": self.message, "exit_code": self.exit_code}


@dataclass(frozen=True)
class Result:
    """A whole run: what was planned, and for each deletion its outcome (``removed``, ``absent``,
    ``failed``, ``would-remove``; ``not-attempted`` when the run stopped before removing)."""

    command: str
    dry_run: bool
    images_repo: str
    stages_storage: str | None
    plan: Plan
    outcomes: Mapping[tuple[str, str], tuple[str, str]]  #: (repository, stored_tag) -> (status, reason)
    skipped: tuple[tuple[str, str], ...] = ()
    started: str = ""
    finished: str = ""
    records_forgotten: int = 0
    #: metadata records pruned (``ci_env.cleanup.metadata``); in a dry run, those the real run would prune
    metadata_pruned: int = 0
    #: purge: managed images forgotten (once everything planned is gone); in a dry run, those it would forget
    managed_forgotten: int = 0
    #: (repository, stored_tag) -> the accessories removed with that tag (``ci_env.registry.removal``)
    accessories: Mapping[tuple[str, str], tuple[AccessoryOutcome, ...]] = field(default_factory=dict)
    #: the untagged manifests of ``--delete-untagged`` (``UntaggedOutcome``)
    untagged: tuple[UntaggedOutcome, ...] = ()
    warnings: tuple[str, ...] = ()
    #: the time budget stopped the run before every removal was started (``not-attempted`` ones remain)
    stopped: bool = False
    #: the journal the next run continues from (a stopped run), else None
    journal: str | None = None
    #: the waits rate limits cost, per host (``ci_env.registry.budget.WaitStats``)
    waits: tuple[WaitStats, ...] = ()
    #: the pending removals of an earlier run's journal and what became of each (``ci_env.cleanup.resume``)
    resumed: tuple[Resumed, ...] = ()
    #: a dry run: the repositories whose preflight refused, so the real run would fail (empty: it would not)
    refusals: tuple[Refusal, ...] = ()
    #: the bytes the removals free (``ci_env.cleanup.sizes.Bytes``), when measured
    bytes: Bytes | None = None
    #: (repository, stored_tag) -> when the tag was published (ISO 8601), where known
    published: Mapping[tuple[str, str], str] = field(default_factory=dict)
    #: (repository, stored_tag) -> where ``published`` came from (cleanup by rules): ``registry`` (the vendor API's
    #: push time) or ``config`` (the image config's ``created``)
    age_sources: Mapping[tuple[str, str], str] = field(default_factory=dict)
    #: cleanup by rules with ``--shard I/N``: which shard, and how many repositories it took of those selected
    shard: ShardRun | None = None
    #: cleanup by rules: the repositories that could not be listed are in ``skipped`` and fail the run (exit 1) once
    #: the others are done; managed-image cleanup's ``skipped`` (local stages without a daemon) does not
    skipped_fail: bool = False
    #: the repositories whose untagged removal stopped on an error (reference -> why): with the untagged manifests
    #: whose removal failed, they fail the run (exit 1) once everything else is done
    untagged_stopped: Mapping[str, str] = field(default_factory=dict)

    @property
    def would_fail(self) -> bool:
        """A dry run whose real run would stop at its preflight, before removing anything."""
        return bool(self.refusals)

    def outcome(self, decision: Decision) -> tuple[str, str]:
        if decision.action != DELETE:
            return KEPT, ""
        return self.outcomes.get(decision.key, (Status.NOT_ATTEMPTED, ""))

    @property
    def failed(self) -> list[tuple[Decision, str]]:
        return [(d, self.outcome(d)[1]) for d in self.plan.deletions if self.outcome(d)[0] == Status.FAILED]

    def untagged_failures(self) -> list[str]:
        """One line per untagged manifest whose removal failed and per repository whose untagged removal
        stopped without a planned manifest to name (``untagged_stopped``): reference and reason."""
        lines = [f"  {u.repo}@{u.digest}: {u.reason}" for u in self.untagged if u.status == Status.FAILED]
        named = {u.repo for u in self.untagged if u.status == Status.FAILED}
        lines += [f"  {repo}: {why}" for repo, why in self.untagged_stopped.items() if repo not in named]
        return lines

    def counts(self) -> dict[str, int]:
        counts = {"kept": 0, "delete": 0, "removed": 0, "absent": 0, "failed": 0, "would_remove": 0,
                  "not_attempted": 0, "moved": 0}
        for decision in self.plan.decisions:
            status, _ = self.outcome(decision)
            if decision.action == DELETE:
                counts["delete"] += 1
            key = status.replace("-", "_")
            if key in counts:
                counts[key] += 1
        return counts

    def as_json(self) -> dict[str, Any]:
        """The report document (see the schema)."""
        return self._document(list(self.decision_entries()))

    def decision_entries(self) -> Iterator[dict[str, Any]]:
        """The report's ``decisions``, one entry at a time."""
        for decision in self.plan.decisions:
            status, reason = self.outcome(decision)
            entry: dict[str, Any] = {
                "kind": decision.kind,
                "image": decision.image,
                "repository": str(decision.repository),
                "tag": decision.tag,
                "stored_tag": decision.stored_tag,
                "digest": decision.digest,
                "strategy": decision.strategy,
                "action": decision.action,
                "reason": decision.reason,
                "basis": decision.basis.as_json(),
                "outcome": status,
            }
            if reason:
                entry["error"] = reason
            published = self.published.get(decision.key)
            if published:
                entry["published"] = published
            age_source = self.age_sources.get(decision.key)
            if age_source:
                entry["age_source"] = age_source
            accessories = self.accessories.get(decision.key, ())
            if accessories:
                entry["accessories"] = [a.as_dict() for a in accessories]
            yield entry

    def _document(self, decisions: Any) -> dict[str, Any]:
        return {
            "schema": REPORT_SCHEMA,
            "command": self.command,
            "dry_run": self.dry_run,
            "started": self.started,
            "finished": self.finished,
            "images_repo": self.images_repo,
            "stages_storage": self.stages_storage,
            "shard": self.shard.as_json() if self.shard is not None else None,
            "summary": {**self.counts(), "records_forgotten": self.records_forgotten,
                        "metadata_pruned": self.metadata_pruned, "managed_forgotten": self.managed_forgotten},
            "decisions": decisions,
            "skipped": [{"reference": ref, "reason": why} for ref, why in self.skipped],
            **({"untagged": [u.as_dict() for u in self.untagged]} if self.untagged else {}),
            **({"partial": {"stopped_by": "time-budget", "journal": self.journal}} if self.stopped else {}),
            **({"resumed": [r.as_json() for r in self.resumed]} if self.resumed else {}),
            **({"would_fail": [r.as_json() for r in self.refusals]} if self.refusals else {}),
            "rate_limits": rate_limits_json(self.waits),
            **({"bytes": self.bytes.as_json()} if self.bytes is not None else {}),
        }

    def write_json(self, path: Path) -> None:
        """Write the report document to ``path`` as :func:`write_json` would write ``as_json()``, byte for byte,
        one decision at a time (100,000 decisions never exist as dicts at once)."""
        marker = "\u0000decisions\u0000"
        head, _, tail = json.dumps(self._document(marker), indent=2).partition(json.dumps(marker))
        entries = self.decision_entries()

        def write(handle: TextIO) -> None:
            handle.write(head)
            first = next(entries, None)
            if first is None:
                handle.write("[]")
            else:
                handle.write("[")
                for entry in itertools.chain([first], entries):
                    if entry is not first:
                        handle.write(",")
                    handle.write("\n    " + json.dumps(entry, indent=2).replace("\n", "\n    "))
                handle.write("\n  ]")
            handle.write(tail + "\n")

        _write_atomically(path, write)


def rate_limits_json(waits: Sequence[WaitStats]) -> dict[str, Any]:
    """The report's ``rate_limits``: totals over the hosts, then each host that had any wait."""
    return {
        "rate_limited_answers": sum(w.limited for w in waits),
        "waits": sum(w.waits for w in waits),
        "waited_seconds": round(sum(w.seconds for w in waits), 3),
        "hosts": [w.as_json() for w in waits],
    }


def wait_line(waits: Sequence[WaitStats]) -> str:
    """``, 3 rate-limit waits (12.5 s)`` for the final status line; "" when nothing waited."""
    count = sum(w.waits for w in waits)
    limited = sum(w.limited for w in waits)
    if not count and not limited:
        return ""
    answers = f"{limited} rate-limited answer{'s' if limited != 1 else ''}, " if limited else ""
    return f", {answers}{count} wait{'s' if count != 1 else ''} for rate limits ({sum(w.seconds for w in waits):.1f} s)"


def _short(digest: str | None) -> str:
    return digest[:19] if digest else "-"


def _image(decision: Decision) -> str:
    if decision.kind == "stage":
        return "(stages)"
    return "~" if decision.image is None else decision.image


def rows(result: Result) -> list[list[str]]:
    """Table rows: image, tag, digest, action, outcome, reason."""
    return list(iter_rows(result))


def iter_rows(result: Result) -> Iterator[list[str]]:
    """The rows of :func:`rows`, one at a time."""
    for decision in result.plan.decisions:
        status, error = result.outcome(decision)
        action = decision.action if decision.action == DELETE else "keep"
        reason = decision.reason + (f" [{error}]" if error else "")
        yield [_image(decision), decision.stored_tag, _short(decision.digest), action,
               "" if status == KEPT else status, reason]
        for item in result.accessories.get(decision.key, ()):
            accessory = item.accessory
            yield ["", f"+ {accessory.kind}", _short(accessory.digest), action, item.status,
                   ", ".join(accessory.tags) or item.reason]
    for untagged in result.untagged:
        why = untagged.why or "untagged: nothing kept reaches it (--delete-untagged)"
        yield ["(untagged)", "-", _short(untagged.digest), DELETE, untagged.status,
               f"{why} [{untagged.reason}]" if untagged.why and untagged.reason else untagged.reason or why]


HEADERS = ("image", "tag", "digest", "action", "outcome", "reason")


def table_lines(result: Result) -> Iterator[str]:
    """The text table of :func:`rows` (as ``output.format_table`` lays it out), one line at a time: the rows are
    made twice (widths, then lines) instead of being held."""
    widths = [len(h) for h in HEADERS]
    for row in iter_rows(result):
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))

    def render(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(cells)).rstrip()

    yield render(HEADERS)
    yield render(["-" * w for w in widths])
    for row in iter_rows(result):
        yield render(row)


def check_writable(path: Path, option: str = "--report") -> None:
    """UsageError unless a report can be written to ``path`` (its directory exists and is writable);
    called before anything is removed, so a bad --report never stops a cleanup half-way."""
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    except OSError as exc:
        raise UsageError(
            f"{option} {str(path)!r} cannot be written: {exc.strerror or exc}; give a file in a writable directory"
        ) from None
    os.close(fd)
    Path(tmp).unlink(missing_ok=True)


def write_json(path: Path, document: Mapping[str, Any]) -> None:
    """Write ``document`` to ``path`` atomically; UsageError when the directory is not writable."""

    def write(handle: TextIO) -> None:
        json.dump(document, handle, indent=2, sort_keys=False)
        handle.write("\n")

    _write_atomically(path, write)


def _write_atomically(path: Path, write: Callable[[TextIO], None], option: str = "--report") -> None:
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    except OSError as exc:
        raise UsageError(f"{option} {str(path)!r} cannot be written: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            write(handle)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UsageError(f"{option} {str(path)!r} cannot be written: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def append_step_summary(env: Mapping[str, str], text: str) -> bool:
    """Append ``text`` to ``$GITHUB_STEP_SUMMARY`` when set; True when written."""
    target = env.get("GITHUB_STEP_SUMMARY")
    if not target:
        return False
    try:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(text)
    except OSError:
        return False
    return True


def failure_lines(failed: Sequence[tuple[Decision, str]]) -> list[str]:
    """One line per failed removal: reference and reason."""
    return [f"  {d.reference}: {reason}" for d, reason in failed]
