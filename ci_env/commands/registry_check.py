"""`ci-env registry check REPOSITORY [--json] [--fix]`: what is broken in a repository's image graph.

Reports tags whose manifest is missing, indexes with missing children, and orphaned signatures or referrers
(their subject is gone). ``--fix`` removes the orphans only (after printing the plan). Exit 0 when clean (or
every problem was fixed), 1 when problems remain, 2 on bad input.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click

from ci_env.cascade import IMAGES_REPO
from ci_env.cli_options import credential_options, repo_implementation_option
from ci_env.commands.registry_ops import _api_path, _connection_options, _repository
from ci_env.registry.outcomes import GONE, Status

if TYPE_CHECKING:
    from ci_env.registry.graph import Accessory, RepoGraph
    from ci_env.registry.reference import RepoAddress
    from ci_env.registry.untag import TagRemover


@dataclass(frozen=True)
class Findings:
    """The problems of one repository."""

    repository: str
    dangling_tags: tuple[str, ...]
    broken_indexes: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]  #: (digest, its tags, missing children)
    orphans: tuple[Accessory, ...]

    @property
    def clean(self) -> bool:
        return not (self.dangling_tags or self.broken_indexes or self.orphans)

    def as_dict(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "clean": self.clean,
            "dangling_tags": list(self.dangling_tags),
            "broken_indexes": [{"digest": d, "tags": list(t), "missing_children": list(m)}
                               for d, t, m in self.broken_indexes],
            "orphans": [{**o.as_dict(), "subject": o.subject} for o in self.orphans],
        }


def findings_of(repository: str, graph: RepoGraph) -> Findings:
    """The problems ``graph`` shows (it must be built with ``verify``)."""
    from ci_env.registry.graph import Accessory

    dangling = sorted({*graph.dangling_tags, *(t for t, d in graph.tags.items() if d in graph.missing)})
    broken = tuple((d, graph.tags_on(d), gone) for d, gone in sorted(graph.broken_indexes().items()))
    keep = graph.reach(d for t, d in graph.image_tags().items() if d not in graph.missing)
    orphan_roots = [r.digest for r in graph.orphans()]
    first = {r.digest: r for r in graph.orphans()}
    orphans: list[Accessory] = []
    for digest in graph.walk(orphan_roots):
        if digest in keep or digest in graph.missing:
            continue
        referrer = first.get(digest)
        kind = referrer.kind if referrer else next((r.kind for rs in graph.referrers.values() for r in rs
                                                    if r.digest == digest), "referrer")
        subject = referrer.subject if referrer else ""
        orphans.append(Accessory(digest, kind, subject, graph.tags_on(digest)))
    return Findings(repository, tuple(dangling), broken, tuple(orphans))


def _fix_order(orphans: tuple[Accessory, ...]) -> list[Accessory]:
    """Deepest first; a referrers tag schema index after the referrers it lists."""
    from ci_env.registry.accessories import REFERRERS_INDEX

    ordered = list(reversed(orphans))
    ordered.sort(key=lambda a: a.kind == REFERRERS_INDEX)
    return ordered


@click.command()
@click.argument("repository")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON on stdout.")
@click.option("--fix", is_flag=True, help="Remove the orphaned signatures and referrers (only those), after "
              "printing the plan.")
@click.option("--parallel", type=click.IntRange(1, 64), default=8, show_default=True,
              help="How many manifests to read at once.")
@repo_implementation_option(IMAGES_REPO)
@_connection_options
@credential_options((IMAGES_REPO,))
def check(repository: str, as_json: bool, fix: bool, parallel: int, repo_implementation: str | None,
          docker_config: Path | None, insecure_registries: tuple[str, ...], credentials: dict[str, Any]) -> None:
    """Check the image graph of REPOSITORY: tags whose manifest is missing, indexes with missing children,
    orphaned signatures and referrers (their image is gone).

    --fix removes the orphans (nothing else), printing the plan first. Exits 0 when the repository is clean
    (or every problem was fixed), 1 when problems were found and not fixed, 2 on bad input.
    """
    from ci_env.registry.client import ClientPool
    from ci_env.registry.graph import registry_graph
    from ci_env.registry.implementations import detect_implementation
    from ci_env.registry.model import resolve_implementation
    from ci_env.registry.reference import RepoAddress
    from ci_env.registry.untag import RemoverContext, remover_for

    address = _repository(repository)
    repo = RepoAddress(address.registry, _api_path(address))
    env = dict(os.environ)
    explicit = resolve_implementation(IMAGES_REPO, {"repo_implementation": repo_implementation}, env)
    clients = ClientPool(docker_config, tuple(insecure_registries), env)
    graph = registry_graph(clients(repo), repo.path, parallel=parallel, verify=True)
    findings = findings_of(str(address), graph)
    fixed: dict[str, str] = {}
    if fix and findings.orphans:
        detected = detect_implementation(repo, env, explicit.value if explicit else None,
                                         explicit_source=explicit.source if explicit else "--repo-implementation")
        context = RemoverContext(docker_config=docker_config, insecure_registries=tuple(insecure_registries),
                                 env=env, credentials=credentials[IMAGES_REPO], clients=clients)
        remover = remover_for(detected.implementation, context)
        plan = _fix_order(findings.orphans)
        click.echo(f"check --fix: removing {len(plan)} orphan(s) of {address}:", err=True)
        for orphan in plan:
            click.echo(f"  {orphan.kind} {orphan.digest}" + (f" ({', '.join(orphan.tags)})" if orphan.tags else "")
                       + f" of the missing {orphan.subject or 'image'}", err=True)
        remover.preflight(repo)
        fixed = _remove(remover, repo, plan, parallel)
    _print(findings, fixed, as_json)
    unfixed = bool(findings.dangling_tags or findings.broken_indexes) or any(
        fixed.get(o.digest) not in (*GONE, Status.LEFT) for o in findings.orphans)
    if unfixed:
        sys.exit(1)


def _remove(remover: TagRemover, repo: RepoAddress, plan: list[Accessory], parallel: int) -> dict[str, str]:
    """Remove each orphan (by digest where the route can, else its tags): digest -> outcome or error text."""
    from ci_env.errors import CiEnvError
    from ci_env.registry.removal import ManifestRemover

    results: dict[str, str] = {}
    if remover.capabilities.deletes_manifests:
        deleting = cast(ManifestRemover, remover)
        for orphan in plan:  # one at a time, in order: an index of referrers only after the referrers it lists
            answer = deleting.delete_manifests(repo, [orphan.digest], parallel=parallel).get(orphan.digest)
            results[orphan.digest] = answer.message if isinstance(answer, CiEnvError) else str(answer)
        return results
    for orphan in plan:
        if not orphan.tags:
            results[orphan.digest] = Status.LEFT
            continue
        try:
            for tag in orphan.tags:
                remover.untag(repo, tag)
            results[orphan.digest] = Status.REMOVED
        except CiEnvError as exc:
            results[orphan.digest] = exc.message
    return results


def _print(findings: Findings, fixed: dict[str, str], as_json: bool) -> None:
    if as_json:
        document = findings.as_dict()
        for entry in document["orphans"]:
            if entry["digest"] in fixed:
                entry["fix"] = fixed[entry["digest"]]
        click.echo(json.dumps(document, indent=2))
        return
    for tag in findings.dangling_tags:
        click.echo(f"missing manifest  {findings.repository}:{tag}")
    for digest, tags, gone in findings.broken_indexes:
        named = f" ({', '.join(tags)})" if tags else ""
        click.echo(f"broken index      {digest}{named}: {len(gone)} missing child(ren): {', '.join(gone)}")
    for orphan in findings.orphans:
        named = f" ({', '.join(orphan.tags)})" if orphan.tags else ""
        outcome = f" -> {fixed[orphan.digest]}" if orphan.digest in fixed else ""
        click.echo(f"orphaned {orphan.kind:<11} {orphan.digest}{named} of missing {orphan.subject or '-'}{outcome}")
    if findings.clean:
        click.echo(f"{findings.repository}: clean", err=True)
