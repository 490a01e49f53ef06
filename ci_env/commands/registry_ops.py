"""`ci-env registry tags|retag|untag`: list, add and remove tags on a registry (parsing and printing only)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ci_env.cascade import IMAGES_REPO
from ci_env.cli_options import (
    credential_options,
    docker_config_option,
    insecure_registry_option,
    repo_implementation_option,
)
from ci_env.errors import UsageError

if TYPE_CHECKING:
    from ci_env.registry.client import RegistryClient
    from ci_env.registry.graph import RepoGraph
    from ci_env.registry.reference import RepoAddress
    from ci_env.registry.removal import ImageRemoval
    from ci_env.registry.untag import Summary

PROGRESS_THRESHOLD = 20
F = TypeVar("F", bound=Callable[..., Any])


def _connection_options(func: F) -> F:
    return docker_config_option("credentials")(insecure_registry_option()(func))


def _api_path(repo: RepoAddress) -> str:
    """The repository name the Registry API uses (Docker Hub's official images live under ``library/``)."""
    if repo.registry == "docker.io" and "/" not in repo.path:
        return f"library/{repo.path}"
    return repo.path


def _client(repo: RepoAddress, docker_config: Path | None, insecure: Sequence[str]) -> RegistryClient:
    from ci_env.registry.client import RegistryClient

    return RegistryClient(repo.api_host(), docker_config=docker_config, insecure_registries=tuple(insecure))


def _repository(text: str) -> RepoAddress:
    from ci_env.registry.reference import parse_address

    address = parse_address(text)
    assert address is not None
    if address.is_registry_only:
        raise UsageError(f"{text!r} is a registry, not a repository: give HOST/REPOSITORY, e.g. {text}/group/app")
    return address


@click.command()
@click.argument("repository")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@click.option("--no-created", is_flag=True,
              help="Skip the creation times (saves two requests per image; vendor listings include them for free).")
@repo_implementation_option()
@_connection_options
@credential_options((IMAGES_REPO,))
def tags(repository: str, as_json: bool, no_created: bool, repo_implementation: str | None,
         docker_config: Path | None, insecure_registries: tuple[str, ...], credentials: dict[str, Any]) -> None:
    """List the tags of REPOSITORY with digest, media type and creation time (where known).

    ECR, Docker Hub and Quay are listed through their own APIs (one paginated listing); every other
    implementation through the Registry API.
    """
    from ci_env.registry.implementations import detect_implementation
    from ci_env.registry.listing import lister_for
    from ci_env.registry.model import resolve_implementation
    from ci_env.registry.reference import RepoAddress
    from ci_env.registry.untag import RemoverContext

    repo = _repository(repository)
    env = dict(os.environ)
    explicit = resolve_implementation(None, {"repo_implementation": repo_implementation}, env, repo)
    detected = detect_implementation(repo, env, explicit.value if explicit else None,
                                     explicit_source=explicit.source if explicit else "--repo-implementation")
    context = RemoverContext(docker_config=docker_config, insecure_registries=tuple(insecure_registries), env=env,
                             credentials=credentials[IMAGES_REPO])
    lister = lister_for(detected.implementation, context)
    if lister is not None:
        infos = lister.list_tags(RepoAddress(repo.registry, _api_path(repo)))
    else:
        infos = _client(repo, docker_config, insecure_registries).tag_infos(_api_path(repo), created=not no_created)
    if as_json:
        click.echo(json.dumps([
            {"tag": i.tag, "digest": i.digest, "media_type": i.media_type, "created": i.created} for i in infos
        ], indent=2))
        return
    if not infos:
        click.echo(f"{repo}: no tags", err=True)
        return
    width = max(len(i.tag) for i in infos)
    for info in infos:
        click.echo(f"{info.tag:<{width}}  {info.digest or '-'}  {info.media_type or '-'}  {info.created or '-'}")


@click.command()
@click.argument("source")
@click.argument("targets", nargs=-1, required=True)
@_connection_options
def retag(source: str, targets: tuple[str, ...], docker_config: Path | None,
          insecure_registries: tuple[str, ...]) -> None:
    """Add tags to the image SOURCE (REPOSITORY:TAG or REPOSITORY@DIGEST) without pulling or pushing layers.

    Each TARGET is REPOSITORY:TAG on the same registry; across repositories the blobs are mounted, an index
    is copied with all its child manifests (any depth), and cosign's signature, attestation and SBOM tags of
    the image go along (the digest does not change, so the signatures stay valid).
    """
    from ci_env.registry.reference import parse_image_ref

    src = parse_image_ref(source)
    grouped: dict[RepoAddress, list[str]] = {}
    for text in targets:
        target = parse_image_ref(text)
        if target.digest or not target.tag:
            raise UsageError(f"target {text!r} must be REPOSITORY:TAG (a tag to add, without a digest)")
        if target.repo.registry != src.repo.registry:
            raise UsageError(
                f"target {text!r} is on {target.repo.registry}, the source on {src.repo.registry}: "
                "retag works within one registry; copy across registries with skopeo copy or crane copy"
            )
        grouped.setdefault(target.repo, []).append(target.tag)
    client = _client(src.repo, docker_config, insecure_registries)
    source_ref = src.digest or src.tag
    assert source_ref is not None
    from ci_env.registry.accessories import copy_cosign_tags

    for repo, new_tags in grouped.items():
        info = client.retag(_api_path(src.repo), source_ref, _api_path(repo), new_tags)
        for tag in new_tags:
            click.echo(f"{repo}:{tag} -> {info.digest}")
        for tag in copy_cosign_tags(client, _api_path(src.repo), _api_path(repo), info.digest):
            click.echo(f"{repo}:{tag} (copied with its image)")


@click.command()
@click.argument("references", nargs=-1, required=True)
@click.option("--dry-run", is_flag=True, help="Show what would be removed (reads the repositories); remove nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@click.option("--parallel", type=click.IntRange(1, 64), default=8, show_default=True,
              help="How many tags to remove at once.")
@click.option("--keep-signatures", is_flag=True, envvar="WERF_KEEP_SIGNATURES",
              help="Leave the signatures, attestations, SBOMs and other referrers of removed images in place "
              "[env: WERF_KEEP_SIGNATURES]")
@repo_implementation_option()
@_connection_options
@credential_options((IMAGES_REPO,))
def untag(references: tuple[str, ...], dry_run: bool, as_json: bool, parallel: int, keep_signatures: bool,
          repo_implementation: str | None, docker_config: Path | None, insecure_registries: tuple[str, ...],
          credentials: dict[str, Any]) -> None:
    """Remove exactly the tags named (REPOSITORY:TAG...); other tags on the same image stay.

    A removed image takes its signatures, attestations, SBOMs and other referrers with it (cosign's
    sha256-<hex>.sig/.att/.sbom tags, the referrers API), and an index its platform manifests, unless a
    remaining tag still reaches them. Every repository is checked first (deletion allowed, credentials
    present); nothing is removed when a check fails. Exits 1 when any tag could not be removed.

    \f
    Size: a click command takes one parameter per option; the body resolves the references, reads the graphs and
    removes, in order.
    """
    from ci_env.registry.client import ClientPool
    from ci_env.registry.graph import PARALLELISM as READS
    from ci_env.registry.graph import registry_graph, removal_graph
    from ci_env.registry.implementations import detect_implementation
    from ci_env.registry.model import resolve_implementation
    from ci_env.registry.reference import RepoAddress, parse_image_ref
    from ci_env.registry.removal import deletes_manifests, remove_images
    from ci_env.registry.untag import RemoverContext, TagRemover, remover_for

    requests: list[tuple[RepoAddress, str]] = []
    for text in references:
        ref = parse_image_ref(text)
        if ref.digest or not ref.tag:
            raise UsageError(f"{text!r}: untag takes REPOSITORY:TAG (a tag, not a digest)")
        requests.append((RepoAddress(ref.repo.registry, _api_path(ref.repo)), ref.tag))
    env = dict(os.environ)
    clients = ClientPool(docker_config, tuple(insecure_registries), env)
    context = RemoverContext(
        docker_config=docker_config, insecure_registries=tuple(insecure_registries), env=env,
        credentials=credentials[IMAGES_REPO], clients=clients,
    )
    removers: dict[str, TagRemover] = {}

    def remover_of(repo: RepoAddress) -> TagRemover:
        explicit = resolve_implementation(None, {"repo_implementation": repo_implementation}, env, repo)
        detected = detect_implementation(repo, env, explicit.value if explicit else None,
                                         explicit_source=explicit.source if explicit else "--repo-implementation")
        route = detected.implementation.delete_route
        if route not in removers:
            removers[route] = remover_for(detected.implementation, context)
        return removers[route]

    total = len(set(requests))
    show_progress = total >= PROGRESS_THRESHOLD and not dry_run

    def progress(done: int, count: int, summary: Summary) -> None:
        click.echo(f"untag: {done}/{count} ({summary.count('removed')} removed, {summary.count('absent')} already "
                   f"gone, {summary.count('failed')} failed)", err=True)

    doomed: dict[RepoAddress, list[str]] = {}
    for repo, tag in requests:
        doomed.setdefault(repo, []).append(tag)

    def graph_of(repo: RepoAddress) -> RepoGraph:
        if deletes_manifests(remover_of(repo)):  # a vendor deleting versions must know every tag
            return registry_graph(clients(repo), repo.path, parallel=READS)
        return removal_graph(clients(repo), repo.path, doomed[repo], parallel=READS)

    result = remove_images(
        requests, remover_of, graph_of, keep_accessories=keep_signatures, parallel=parallel, dry_run=dry_run,
        progress=progress if show_progress else None, fresh_graphs=True,
    )
    for warning in result.warnings:
        click.echo(f"ci-env: warning: {warning}", err=True)
    _print_summary(result, as_json, dry_run)
    if result.summary.failed or result.failed:
        sys.exit(1)


def _print_summary(result: ImageRemoval, as_json: bool, dry_run: bool) -> None:
    from ci_env.output import plural

    summary = result.summary
    grouped = result.by_tag()
    if as_json:
        document = summary.as_dict()
        for entry in document["tags"]:
            graph = result.graphs.get(entry["repository"])
            if graph is not None and graph.tags.get(entry["tag"]):
                entry["digest"] = graph.tags[entry["tag"]]  # what it pointed at when read, right before
            entry["accessories"] = [a.as_dict() for a in grouped.get((entry["repository"], entry["tag"]), ())]
        click.echo(json.dumps(document, indent=2))
        return
    for outcome in summary.outcomes:
        if outcome.status == "failed":
            click.echo(f"failed   {outcome.repo}:{outcome.tag}: {outcome.reason}")
        elif outcome.status == "absent":
            click.echo(f"absent   {outcome.repo}:{outcome.tag} (already gone)")
        elif outcome.status == "would-remove":
            click.echo(f"would remove {outcome.repo}:{outcome.tag}")
        else:
            click.echo(f"removed  {outcome.repo}:{outcome.tag}")
        for accessory in grouped.get((outcome.repo, outcome.tag), ()):
            item = accessory.accessory
            named = f"{item.kind} {item.digest[:19]}" + (f" ({', '.join(item.tags)})" if item.tags else "")
            reason = f": {accessory.reason}" if accessory.reason else ""
            click.echo(f"  with {named}: {accessory.status}{reason}")
    extra = len(result.accessories)
    if dry_run:
        would = summary.count("would-remove")
        click.echo(f"dry run: {plural(would, 'tag')} would be removed"
                   + (f" with {plural(extra, 'accessory')}" if extra else "") + "; nothing was changed", err=True)
        return
    click.echo(
        f"untag: {summary.count('removed')} removed, {summary.count('absent')} already gone, "
        f"{summary.count('failed')} failed"
        + (f"; {sum(1 for a in result.accessories if a.status == 'removed')} accessories removed" if extra else "")
        + " (registries free the space only after their garbage collection)",
        err=True,
    )
