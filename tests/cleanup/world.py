"""Publish tags the way build-and-publish does (image pushed, publication record written), for cleanup tests
and the benchmark, without a Docker daemon: tiny images through the Registry API (D's test helpers) and
records through F's records API."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ci_env import records
from ci_env.registry import manifests as mf
from ci_env.registry.client import RegistryClient
from ci_env.registry.naming import image_repository, repository_tag
from ci_env.registry.reference import RepoAddress
from tests.registry_client.images import PushedImage, push_image


def signature_of(text: str) -> str:
    """A 64-hex content signature (as stage tags are)."""
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class World:
    """An images repo and a stages storage on one registry, with the record store."""

    client: RegistryClient
    images_repo: RepoAddress
    stages: RepoAddress
    mode: str = "multirepo"

    def __post_init__(self) -> None:
        self.store = records.open_store(self.stages, "", client=self.client)

    def stage(self, signature: str, like: PushedImage | None = None) -> PushedImage:
        """Push a stage image tagged with ``signature`` (a new image, or the manifest of ``like``)."""
        if like is None:
            return push_image(self.client, self.stages.path, [signature], seed=signature)
        body, info = self.client.get_manifest(like.path, like.digest)
        if like.path != self.stages.path:
            for blob in mf.references(body).blobs:
                self.client.mount_blob(like.path, self.stages.path, blob)
        self.client.put_manifest(self.stages.path, signature, body, info.media_type)
        return PushedImage(self.stages.path, info.digest, info.media_type, like.blobs)

    def publish(
        self, image: str | None, tag: str, strategy: str, *, git_ref: str | None = None,
        published_at: str = "2024-01-01T00:00:00Z", signature: str | None = None, like: PushedImage | None = None,
        record: bool = True,
    ) -> PushedImage:
        """Push ``image`` under ``tag`` (a new tiny image, or the same manifest as ``like``) and record it."""
        records.add_managed_image(self.store, image)
        repo = image_repository(self.images_repo, self.mode, image)
        stored = repository_tag(self.mode, image, tag)
        pushed = self.push(repo, stored, like)
        if record:
            records.write_publication(self.store, records.Publication(
                image=image, tag=tag, repository=str(repo), stored_tag=stored, strategy=strategy,
                digest=pushed.digest, signature=signature or signature_of(f"{image}:{tag}"),
                published_at=published_at,
                git_branch=git_ref if strategy == "git-branch" else None,
                git_tag=git_ref if strategy == "git-tag" else None,
                git_commit=git_ref if strategy == "git-commit" else None,
            ))
        return pushed

    def push(self, repo: RepoAddress, stored: str, like: PushedImage | None) -> PushedImage:
        """Put an image under ``repo:stored``: a new tiny one, or the manifest of ``like`` (same digest)."""
        if like is None:
            return push_image(self.client, repo.path, [stored])
        body, info = self.client.get_manifest(like.path, like.digest)
        if like.path != repo.path:
            for blob in mf.references(body).blobs:
                self.client.mount_blob(like.path, repo.path, blob)
        self.client.put_manifest(repo.path, stored, body, info.media_type)
        return like

    def tags(self, image: str | None) -> set[str]:
        """The tags in ``image``'s repository now."""
        repo = image_repository(self.images_repo, self.mode, image)
        try:
            return set(self.client.list_tags(repo.path))
        except Exception as exc:  # unknown repository
            if "NAME_UNKNOWN" in str(exc):
                return set()
            raise

    def stage_tags(self) -> set[str]:
        return {t for t in self.client.list_tags(self.stages.path) if records.is_stage_tag(t)}

    def record_names(self) -> set[str]:
        return {p.full_name for p in records.read_publications(self.store)}


def dumps(data: object) -> str:
    return json.dumps(data, indent=2)


MISSING_COMMIT = "d" * 40


@dataclass(frozen=True)
class Scenario:
    """What :func:`publish_scenario` published: the git directory, the two commits, and the expected result."""

    directory: str
    first: str
    second: str

    def expected_api(self) -> set[str]:
        """The api tags a cleanup with default options keeps."""
        return {"main", "latest", "v2", self.first, self.second}

    expected_web = frozenset({"brand-new"})
    expected_stages = frozenset(signature_of(n) for n in ("main", "feat", "v2", "c1", "c2"))


def publish_scenario(world: World, directory: Path, *, stage_like: bool = True) -> Scenario:
    """The cleanup scenario shared by every registry: a git repository; tags published for its branches, git
    tags and commits (``latest`` shares the image of ``feature-a``); stages; then the branch ``feature-a`` and
    the git tag ``v1`` are deleted. ``stage_like``: stage images share the tags' manifests (else new images)."""
    from tests.cleanup.gitrepo import GitRepo

    git = GitRepo(directory)
    first = git.commit("one", date="2024-01-01T00:00:00Z")
    git.git("tag", "v1")
    git.git("branch", "feature-a")
    second = git.commit("two", date="2024-02-01T00:00:00Z")
    git.git("tag", "v2")
    w = world
    main = w.publish("api", "main", "git-branch", git_ref="main", signature=signature_of("main"))
    feature = w.publish("api", "feature-a", "git-branch", git_ref="feature-a", signature=signature_of("feat"))
    w.publish("api", "latest", "custom", like=feature, signature=signature_of("feat"))
    v1 = w.publish("api", "v1", "git-tag", git_ref="v1", signature=signature_of("v1"))
    v2 = w.publish("api", "v2", "git-tag", git_ref="v2", signature=signature_of("v2"))
    c1 = w.publish("api", first, "git-commit", git_ref=first, signature=signature_of("c1"))
    c2 = w.publish("api", second, "git-commit", git_ref=second, signature=signature_of("c2"))
    gone = w.publish("api", MISSING_COMMIT, "git-commit", git_ref=MISSING_COMMIT, signature=signature_of("gone"))
    web = w.publish("web", "feature-a", "git-branch", git_ref="feature-a", signature=signature_of("web"))
    w.publish("web", "brand-new", "git-branch", git_ref="brand-new", published_at=recent())
    for name, pushed in (("main", main), ("feat", feature), ("v1", v1), ("v2", v2), ("c1", c1), ("c2", c2),
                         ("gone", gone), ("web", web)):
        w.stage(signature_of(name), like=pushed if stage_like else None)
    w.stage(signature_of("orphan"))
    git.git("branch", "-D", "feature-a")
    git.git("tag", "-d", "v1")
    return Scenario(str(git.path), first, second)


def recent(minutes: int = 10) -> str:
    """A publication time ``minutes`` ago (ISO 8601, UTC)."""
    return (datetime.now(timezone.utc) - timedelta(minutes=minutes)).replace(microsecond=0).isoformat()


def push_labelled(client: RegistryClient, path: str, tags: list[str], labels: dict[str, str],
                  created: str = "2024-01-01T00:00:00Z") -> str:
    """Push a tiny image whose config carries ``labels`` (as build-and-publish labels images) under ``tags``;
    no publication record. The same labels and time give the same image. Returns its digest."""
    seed = json.dumps(sorted(labels.items())) + created
    return push_image(client, path, tags, seed=seed, labels=labels, created=created).digest
