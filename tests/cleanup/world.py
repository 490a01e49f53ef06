"""Publish tags the way build-and-publish does (image pushed, publication record written), for cleanup tests
and the benchmark, without a Docker daemon: tiny images through the Registry API (D's test helpers) and
records through F's records API."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

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
        if like is None:
            pushed = push_image(self.client, repo.path, [stored])
        else:
            body, info = self.client.get_manifest(like.path, like.digest)
            if like.path != repo.path:
                for blob in mf.references(body).blobs:
                    self.client.mount_blob(like.path, repo.path, blob)
            self.client.put_manifest(repo.path, stored, body, info.media_type)
            pushed = like
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
