"""record: the publication and metadata records of images another builder pushed (``docker buildx build --push``,
kaniko, buildah), so cleanup looks after them as it does after what build-and-publish publishes.

For each ``REPOSITORY:TAG`` given: the digest the registry has under the tag (one HEAD), the image it belongs to
(from where the repository is relative to the images repo and its mode, or ``--image``), the strategy of the tag
(:func:`strategy_of`), then the records build-and-publish would have written (:mod:`ci_env.records`): one
publication record per tag, the image added to the managed images, one metadata record for the commit. Everything
is checked (every tag resolved, every image named) before the first record is written. Running it again writes
nothing: a publication record equal to the one there (its time aside) is not written again, a managed image is
added once, a metadata record is immutable.

A foreign image has no werf content signature; its signature is the SHA-256 of its image name and manifest digest
(:func:`foreign_signature`), so tags with the same content share one, as content-signature tags do.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ci_env import records
from ci_env.contract import CUSTOM, GIT_BRANCH, GIT_COMMIT, GIT_TAG, STAGES_SIGNATURE, STRATEGIES
from ci_env.errors import UsageError
from ci_env.registry.naming import MONOREPO, image_label
from ci_env.registry.reference import RepoAddress, parse_image_ref
from ci_env.tagging import docker_tag

if TYPE_CHECKING:
    from ci_env.registry.client import ClientPool
    from ci_env.registry.naming import ImagesRepo

#: ``--strategy`` values: ``auto`` (:func:`strategy_of`) or one strategy for every tag given
AUTO = "auto"
STRATEGY_CHOICES = (AUTO, *STRATEGIES)
#: the shortest abbreviated commit id a tag is taken for (as git's default abbreviation)
SHORT_COMMIT = 7
_FULL_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
#: an image name given to ``--image`` that means "derive it" (the option not given)
DERIVE = object()


@dataclass(frozen=True)
class GitSource:
    """What the images were built from: the branch and git tag (original names; None: none) and the full commit."""

    commit: str
    branch: str | None = None
    tag: str | None = None


@dataclass(frozen=True)
class Settings:
    """Everything ``ci-env record`` needs, resolved: the images repo, the stages storage (None: ``:local``) and
    its project, the references given, the image (``DERIVE``: from each reference; None: ``~``), the strategy
    (``auto`` or one of ``STRATEGIES``), the git source."""

    images_repo: ImagesRepo
    stages: RepoAddress | None
    project: str
    references: tuple[str, ...]
    git: GitSource
    image: object = DERIVE
    strategy: str = AUTO
    docker_config: Path | None = None
    insecure_registries: tuple[str, ...] = ()
    env: Mapping[str, str] = field(repr=False, default_factory=dict)


@dataclass(frozen=True)
class Found:
    """One reference, resolved: the image, its tag (as published) and stored tag, the repository, the digest, the
    strategy and the signature."""

    reference: str
    image: str | None
    tag: str
    stored_tag: str
    repository: RepoAddress
    digest: str
    strategy: str
    signature: str

    def publication(self, git: GitSource, now: str) -> records.Publication:
        return records.Publication(
            image=self.image, tag=self.tag, repository=str(self.repository), stored_tag=self.stored_tag,
            strategy=self.strategy, digest=self.digest, signature=self.signature, published_at=now,
            git_branch=git.branch, git_tag=git.tag, git_commit=git.commit,
        )


@dataclass(frozen=True)
class Outcome:
    """What a run did: per reference, ``recorded`` or ``unchanged``; whether a managed image was added; the
    metadata records written."""

    lines: tuple[tuple[Found, str], ...]
    managed_added: tuple[str | None, ...]
    metadata_written: int


def foreign_signature(image: str | None, digest: str) -> str:
    """The content signature of an image another builder pushed: 64 hex of SHA-256 over its name and digest."""
    return hashlib.sha256(f"ci-env record\0{image_label(image)}\0{digest}".encode()).hexdigest()


def full_commit(value: str, directory: Path) -> str | None:
    """The full id of commit ``value`` (full, or abbreviated and known to the clone in ``directory``)."""
    from ci_env.gitsource import resolve_commit

    resolved = resolve_commit(directory, value)
    if resolved is not None:
        return resolved
    lowered = value.lower()
    return lowered if _FULL_COMMIT.fullmatch(lowered) else None


def ref_forms(name: str) -> set[str]:
    """The tags a CI job makes of a branch or git tag name: ci-env's (``tagging.docker_tag``), every run of other
    characters made one ``-``, and GitLab's ``CI_COMMIT_REF_SLUG`` (lower case, ``[^a-z0-9]`` runs made ``-``, 63
    characters, no ``-`` at either end)."""
    dashed = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower())[:63].strip("-")
    return {docker_tag(name), dashed, slug}


def strategy_of(tag: str, git: GitSource) -> str:
    """The strategy of ``tag`` (``--strategy auto``): ``git-branch`` when it is the branch's name (as a tag, see
    :func:`ref_forms`), ``git-tag`` when it is the git tag's, ``git-commit`` when it is the commit (full, or 7 hex
    digits or more of it); any other tag is decided by the keep policies through the commit, as a
    content-signature tag is."""
    if git.branch and tag in ref_forms(git.branch):
        return GIT_BRANCH
    if git.tag and tag in ref_forms(git.tag):
        return GIT_TAG
    lowered = tag.lower()
    if len(lowered) >= SHORT_COMMIT and git.commit.startswith(lowered):
        return GIT_COMMIT
    return STAGES_SIGNATURE


def image_and_tag(images_repo: ImagesRepo, repository: RepoAddress, stored: str, given: object,
                  reference: str) -> tuple[str | None, str]:
    """(image, tag as published) of ``repository:stored``: from where the repository is under the images repo
    (multirepo: the images repo itself is ``~``, ``IMAGES_REPO/NAME`` is NAME; monorepo: ``~`` unless ``--image``
    names the prefix of the tag), or ``given`` (``--image``). UsageError when the reference is not where that image's
    tags go."""
    address, mode = images_repo.address, images_repo.mode
    where = f"images repo {address} ({mode})"
    if repository.registry != address.registry:
        raise UsageError(f"{reference}: not in the {where}: record images of the images repo only "
                         "(-i/--images-repo, WERF_IMAGES_REPO)")
    if given is DERIVE:
        if repository == address:
            return None, stored
        prefix = f"{address.path}/" if address.path else ""
        name = repository.path[len(prefix):] if repository.path.startswith(prefix) else None
        if mode == MONOREPO or name is None or "/" in name:
            raise UsageError(f"{reference}: not in the {where}: its images are "
                             + (f"{address}:TAG (pass --image NAME for {address}:NAME-TAG)" if mode == MONOREPO
                                else f"{address}:TAG (~) or {address}/NAME:TAG"))
        return records.parse_image_name(name), stored
    image = given if isinstance(given, str) else None
    expected = images_repo.image_repository(image)
    prefix = f"{image}-" if mode == MONOREPO and image is not None else ""
    if repository != expected or not stored.startswith(prefix) or stored == prefix:
        raise UsageError(f"{reference}: not where the tags of image {image_label(image)} go in the {where}: "
                         f"{expected}:{prefix}TAG")
    return image, stored[len(prefix):]


def resolve(settings: Settings, clients: ClientPool) -> list[Found]:
    """Every reference given, resolved (nothing written); UsageError (exit 2) for a reference outside the images
    repo or a tag the registry does not have."""
    from ci_env.registry.naming import validate

    wanted = []
    for text in settings.references:
        ref = parse_image_ref(text)
        if ref.tag is None:
            raise UsageError(f"{text}: give a tag (REPOSITORY:TAG): a record is of a tag, not of a digest")
        image, tag = image_and_tag(settings.images_repo, ref.repo, ref.tag, settings.image, text)
        wanted.append((text, ref.repo, ref.tag, image, tag, ref.digest))
    repo = settings.images_repo
    validate(repo.address, repo.implementation, repo.mode, list(dict.fromkeys(w[3] for w in wanted)))
    found = []
    for text, repository, stored, image, tag, given_digest in wanted:
        info = clients(repository).resolve(repository.path, stored)
        if info is None:
            raise UsageError(f"{text}: no such tag in the registry: push it first (e.g. docker buildx build --push "
                             "-t ...), then record it")
        digest = info.digest
        if given_digest is not None and given_digest != digest:
            raise UsageError(f"{text}: the tag holds {digest} now, not the digest given: record it as it is now")
        strategy = strategy_of(tag, settings.git) if settings.strategy == AUTO else settings.strategy
        found.append(Found(text, image, tag, stored, repository, digest, strategy, foreign_signature(image, digest)))
    return found


def _same(a: records.Publication, b: records.Publication) -> bool:
    """Equal records, their publication time aside."""
    return replace(a, published_at="") == replace(b, published_at="")


def write(store: records.RecordStore, found: Sequence[Found], git: GitSource) -> Outcome:
    """The records of ``found``: each publication record unless an equal one is there, the images added to the
    managed ones unless there, one metadata record per signature unless there (immutable)."""
    existing = {p.full_name: p for p in records.read_publications(store)}
    now = records.utc_now()
    lines = []
    for item in found:
        publication = item.publication(git, now)
        earlier = existing.get(publication.full_name)
        if earlier is not None and _same(earlier, publication):
            lines.append((item, "unchanged"))
            continue
        records.write_publication(store, publication)
        existing[publication.full_name] = publication
        lines.append((item, "recorded"))
    managed = set(records.list_managed_images(store))
    added = []
    for image in dict.fromkeys(item.image for item in found):
        if image not in managed:
            records.add_managed_image(store, image)
            added.append(image)
    written = 0
    for image, signature in dict.fromkeys((item.image, item.signature) for item in found):
        written += records.write_metadata(store, records.CommitMetadata(image, git.commit, signature, now))
    return Outcome(tuple(lines), tuple(added), written)


def describe(item: Found, git: GitSource) -> str:
    """How a recorded tag is shown: its image, strategy (and the reference it names) and digest."""
    ref = {GIT_BRANCH: git.branch, GIT_TAG: git.tag, GIT_COMMIT: git.commit[:12]}.get(item.strategy)
    how = "content (keep policies, by commit " + git.commit[:12] + ")" if item.strategy == STAGES_SIGNATURE else (
        item.strategy + (f" {ref}" if ref else ""))
    if item.strategy == CUSTOM:
        how = "custom (kept)"
    return f"image {image_label(item.image)}, {how}, {item.digest}"
