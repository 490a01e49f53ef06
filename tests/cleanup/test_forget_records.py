"""Forgetting publication records: only for tags the registry itself no longer has.

A vendor listing that leaves tags out (here: one that answers with only ``main``) or a vendor that calls a
tag "absent" must not make cleanup forget the records of tags the registry still serves; a tag really
gone from the registry has its record forgotten."""

from __future__ import annotations

from pathlib import Path

from ci_env import records
from ci_env.cleanup.collect import Inventory, collect_tags
from ci_env.cleanup.forget import forget_records
from ci_env.cleanup.policies import Plan
from ci_env.cleanup.target import Target
from ci_env.registry.client import ClientPool, TagInfo
from ci_env.registry.naming import resolve_images_repo
from ci_env.registry.reference import RepoAddress
from tests.cleanup.world import World


class OnlyMain:
    """A vendor listing that misbehaves: it answers with ``main`` alone, whatever the repository holds."""

    def __init__(self, digest: str) -> None:
        self.digest = digest

    def list_tags(self, repo: RepoAddress) -> list[TagInfo]:
        return [TagInfo("main", self.digest, None, None)]


def test_records_are_forgotten_only_for_tags_the_registry_no_longer_has(world: World) -> None:
    pushed = {tag: world.publish("api", tag, "git-branch", git_ref=tag) for tag in ("main", "feature-a", "gone")}
    repository = world.images_repo.child("api")
    world.client.delete_manifest(repository.path, pushed["gone"].digest)  # removed outside cleanup
    images_repo = resolve_images_repo(world.images_repo, {}, requested_mode="multirepo", image_names=["api"])
    publications = records.read_publications(world.store)
    found, skipped = collect_tags(images_repo.naming(["api"]), publications, lambda _repo: world.client,
                                  lister=OnlyMain(pushed["main"].digest))
    inventory = Inventory(tuple(found), (), tuple(skipped), tuple(publications))
    target = Target(images_repo, world.stages, False, world.store, ("api",))
    clients = ClientPool(Path("/nonexistent"), (), {})
    # the vendor also called feature-a "absent": neither that nor its absence from the listing is proof
    outcomes = {(str(repository), "feature-a"): ("absent", "")}
    assert forget_records(target, Plan(()), inventory, outcomes, clients=clients) == 1
    remaining = {p.stored_tag for p in records.read_publications(world.store)}
    assert remaining == {"main", "feature-a"}
