"""Splitting a cleanup by rules over several CI jobs: ``--shard I/N`` (1-based, as GitLab's ``parallel:`` numbers
its jobs), else GitLab's ``CI_NODE_INDEX``/``CI_NODE_TOTAL``. Each repository falls to exactly one shard, by a
stable hash of its full name (``host/path``): every job, on any machine and Python, agrees without talking to
the others, and a repository added later does not move the others."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ci_env.errors import UsageError


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
