"""Splitting a cleanup by rules over several CI jobs: ``--shard I/N`` (1-based, as GitLab's ``parallel:`` numbers
its jobs), else GitLab's ``CI_NODE_INDEX``/``CI_NODE_TOTAL``. Each repository falls to exactly one shard, by a
stable hash of its full name (``host/path``): every job, on any machine and Python, agrees without talking to
the others, and a repository added later does not move the others."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ci_env.errors import UsageError

#: the most shards a cleanup is split into (GitLab's parallel: allows 200, a GitHub matrix 256 jobs)
MAX_SHARDS = 10_000

if TYPE_CHECKING:
    from ci_env.retention.rules import RulesFile


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``total`` (1 <= index <= total)."""

    index: int
    total: int

    def takes(self, repository: str) -> bool:
        """True when ``repository`` (``host/path``) is this shard's."""
        return shard_of(repository, self.total) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.total}"


@dataclass(frozen=True)
class ShardRun:
    """What a shard's report records of its run (``shard`` in the JSON report): which shard it was, how many
    repositories it took of how many the rules selected on every shard together, and the fingerprint of the rules
    (:func:`fingerprint`), so ``report merge`` can tell the shards of one cleanup from others."""

    shard: Shard
    repositories: int
    selected: int
    rules: str

    def as_json(self) -> dict[str, Any]:
        """The report's ``shard``."""
        return {"index": self.shard.index, "total": self.shard.total, "repositories": self.repositories,
                "selected": self.selected, "rules": self.rules}

    def phrase(self) -> str:
        """``shard 2/4: 3 of 10 repositories``."""
        return f"shard {self.shard}: {self.repositories} of {self.selected} repositories"


def fingerprint(rules: RulesFile, registry: str | None) -> str:
    """``sha256:`` and 16 hex digits naming the rules as read (every entry, selector and rule, wherever the file
    lies: its path does not count) and the ``--registry`` they apply on: the shards of one cleanup agree, a shard
    run with other rules does not."""
    text = repr(replace(rules, source="")) + "\n" + (registry or "")
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def shard_of(repository: str, total: int) -> int:
    """The shard (1-based) of ``total`` that handles ``repository``: the first 8 bytes of its SHA-256, mod total."""
    return 1 + int.from_bytes(hashlib.sha256(repository.encode()).digest()[:8], "big") % total


def parse_shard(text: str, source: str = "--shard") -> Shard:
    """``I/N`` as a Shard; UsageError naming ``source`` for anything else."""
    match = re.fullmatch(r"\s*([0-9]+)\s*/\s*([0-9]+)\s*", text)
    if match is None:
        raise UsageError(f"{source} {text!r} is not I/N: write the shard's number and the number of shards, e.g. "
                         "--shard 2/4 (1-based, as GitLab's CI_NODE_INDEX/CI_NODE_TOTAL)")
    index, total = int(match.group(1)), int(match.group(2))
    if total > MAX_SHARDS:
        raise UsageError(f"{source} {text!r}: {total} shards is over the {MAX_SHARDS} a cleanup is split into")
    if total < 1 or not 1 <= index <= total:
        raise UsageError(f"{source} {text!r}: the shard number must be between 1 and the number of shards "
                         f"({total or 'at least 1'})")
    return Shard(index, total)


def shard_from(option: str | None, env: Mapping[str, str]) -> Shard | None:
    """The run's shard: ``--shard`` when given, else GitLab ``parallel:``'s ``CI_NODE_INDEX``/``CI_NODE_TOTAL``
    when both are set, else None (the whole selection)."""
    if option:
        return parse_shard(option)
    index, total = env.get("CI_NODE_INDEX", "").strip(), env.get("CI_NODE_TOTAL", "").strip()
    if index and total:
        return parse_shard(f"{index}/{total}", "CI_NODE_INDEX/CI_NODE_TOTAL")
    return None
