"""``collect_tags`` with a vendor tag listing, against the real registry: the tags and digests come from the
listing (no tag list, no manifest HEAD per tag), a tag listed without a digest is resolved alone, and a
listing that fails falls back to the Registry API with the same result (and the tag map left with the client)."""

from __future__ import annotations

from ci_env import records
from ci_env.cleanup.collect import collect_tags
from ci_env.errors import RegistryError
from ci_env.registry.client import TagInfo
from ci_env.registry.naming import resolve_images_repo
from ci_env.registry.reference import RepoAddress
from tests.cleanup.world import World
from tests.services.registry import RegistryService


class ListingOf:
    """A vendor listing of the tags ``digests`` (those in ``forget`` listed without a digest), recording the
    repositories it was asked for; ``fail`` makes it refuse as a vendor API does for a missing repository."""

    def __init__(self, digests: dict[str, str], forget: frozenset[str] = frozenset(), fail: bool = False) -> None:
        self.infos = [TagInfo(tag, None if tag in forget else digest, None, None)
                      for tag, digest in sorted(digests.items())]
        self.fail = fail
        self.asked: list[str] = []

    def list_tags(self, repo: RepoAddress) -> list[TagInfo]:
        self.asked.append(str(repo))
        if self.fail:
            raise RegistryError(f"{repo.path}: no such repository")
        return self.infos


def _publish(world: World) -> dict[str, str]:
    digests = {}
    for tag in ("main", "feature-a", "v1"):
        pushed = world.publish("api", tag, "git-tag" if tag == "v1" else "git-branch", git_ref=tag)
        digests[tag] = pushed.digest
    return digests


def _reads(registry: RegistryService, path: str, since: int) -> tuple[int, int]:
    ours = [(m, p) for m, p, _s in registry.requests()[since:] if p.startswith(f"/v2/{path}/")]
    return (sum(1 for m, p in ours if m == "GET" and p.split("?")[0].endswith("/tags/list")),
            sum(1 for m, p in ours if m == "HEAD" and "/manifests/" in p))


def _collect(world: World, lister: ListingOf | None) -> dict[str, str | None]:
    images_repo = resolve_images_repo(world.images_repo, {}, requested_mode="multirepo", image_names=["api"])
    found, skipped = collect_tags(images_repo.naming(["api"]), records.read_publications(world.store),
                                  lambda _repo: world.client, lister=lister)
    assert skipped == []
    return {t.stored_tag: t.digest for t in found if t.strategy in ("git-branch", "git-tag")}


def test_tags_and_digests_come_from_the_vendor_listing(world: World, registry_open: RegistryService) -> None:
    digests = _publish(world)
    listing = ListingOf(digests, forget=frozenset({"v1"}))
    before = len(registry_open.requests())
    assert _collect(world, listing) == digests
    assert listing.asked == [f"{world.images_repo}/api"]
    # no tag list; one HEAD only: v1, which the listing gave without a digest
    assert _reads(registry_open, world.images_repo.child("api").path, before) == (0, 1)


def test_a_failing_listing_falls_back_to_the_registry_api(world: World, registry_open: RegistryService) -> None:
    digests = _publish(world)
    listing = ListingOf(digests, fail=True)
    before = len(registry_open.requests())
    assert _collect(world, listing) == digests
    assert listing.asked == [f"{world.images_repo}/api"]
    assert _reads(registry_open, world.images_repo.child("api").path, before) == (1, 3)  # list, one HEAD per tag
