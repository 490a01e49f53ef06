"""One repository as another builder fills it (buildx, kaniko): tags pushed at known times, a multi-platform
index with two platform manifests and a buildx attestation, and untagged manifests nothing references."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from ci_env.retention.engine import (
    ACTION_DELETE,
    AGE_REGISTRY,
    EDGE_ATTESTATION,
    EDGE_PLATFORM,
    Artifact,
    Decision,
    Edge,
    Inventory,
    Protections,
    decide,
)
from ci_env.retention.rules import parse_rules

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
REPOSITORY = "registry.example/group/app"

#: tag -> days since it was pushed (each on a digest of its own)
TAG_AGES = {
    "latest": 1, "main": 2, "v1.0.0": 400, "v1.1.0": 200, "v2.0.0": 20, "dev-1": 100, "dev-2": 60, "dev-3": 10,
    "dev-4": 3, "pr-7": 45, "pr-8": 95, "multi": 50,
}
INDEX = "sha256:index-multi"
CHILDREN = ("sha256:multi-amd64", "sha256:multi-arm64", "sha256:multi-attestation")
#: untagged manifests nothing references -> days since pushed
UNTAGGED_AGES = {"sha256:untagged-2": 2, "sha256:untagged-31": 31, "sha256:untagged-90": 90}


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def digest_of(tag: str) -> str:
    return INDEX if tag == "multi" else f"sha256:{tag}"


def inventory() -> Inventory:
    tags = [Artifact(digest_of(tag), tag, ago(days), AGE_REGISTRY) for tag, days in TAG_AGES.items()]
    children = [Artifact(digest, None, ago(TAG_AGES["multi"]), AGE_REGISTRY) for digest in CHILDREN]
    untagged = [Artifact(digest, None, ago(days), AGE_REGISTRY) for digest, days in UNTAGGED_AGES.items()]
    edges = {INDEX: (Edge(CHILDREN[0], EDGE_PLATFORM), Edge(CHILDREN[1], EDGE_PLATFORM),
                     Edge(CHILDREN[2], EDGE_ATTESTATION))}
    return Inventory(REPOSITORY, tuple(tags + children + untagged), edges)


def run(rules_yaml: str, inv: Inventory | None = None, protections: Protections | None = None,
        tmp: Path = Path("rules.yaml")) -> tuple[Decision, ...]:
    inv = inv or inventory()
    entry = parse_rules(rules_yaml, tmp).for_repository(inv.repository)
    assert entry is not None, "the rules select the fixture's repository"
    return decide(inv, entry, NOW, protections)


def removed_tags(decisions: tuple[Decision, ...]) -> set[str]:
    return {d.tag for d in decisions if d.action == ACTION_DELETE and d.tag is not None}


def removed_manifests(decisions: tuple[Decision, ...]) -> set[str]:
    return {d.digest for d in decisions if d.action == ACTION_DELETE and d.tag is None}
