"""Untag on the default route against the real registry: only the named tag goes."""

from __future__ import annotations

import pytest

from ci_env.errors import AuthError, RegistryError
from ci_env.registry.client import RegistryClient
from tests.registry_client.images import pulls, push_image, push_index
from tests.services.registry import RegistryService


@pytest.mark.parametrize("client_fixture", ["open_client", "htpasswd_client", "token_client"])
def test_untag_keeps_other_tags_on_same_digest(client_fixture: str, repo: str, request: pytest.FixtureRequest) -> None:
    client: RegistryClient = request.getfixturevalue(client_fixture)
    image = push_image(client, repo, ["stale", "release-1"])
    assert client.untag(repo, "stale") == "removed"
    assert sorted(client.list_tags(repo)) == ["release-1"]
    assert client.resolve(repo, "release-1").digest == image.digest  # type: ignore[union-attr]
    assert pulls(client, repo, "release-1")


def test_untag_lone_tag_leaves_its_image_untagged_for_the_garbage_collector(open_client: RegistryClient,
                                                                             repo: str) -> None:
    image = push_image(open_client, repo, ["only"])
    keep = push_image(open_client, repo, ["keep"])
    assert open_client.untag(repo, "only") == "removed"
    assert open_client.list_tags(repo) == ["keep"]
    assert open_client.resolve(repo, image.digest) is not None  # untagged, never deleted by digest
    assert pulls(open_client, repo, keep.digest)


def test_untag_costs_a_head_a_put_and_a_delete(registry_open: RegistryService, open_client: RegistryClient,
                                               repo: str) -> None:
    for number in range(3):
        push_image(open_client, repo, [f"t{number}"])
    push_image(open_client, repo, ["x1", "x2"])
    open_client.untag(repo, "t0")  # the placeholder's config blob, once per repository
    for tag in ("t1", "x1", "x2"):
        before = len(registry_open.requests())
        assert open_client.untag(repo, tag) == "removed"
        assert [m for m, _, _ in registry_open.requests()[before:]] == ["HEAD", "PUT", "DELETE"]
    assert sorted(open_client.list_tags(repo)) == ["t2"]


def test_untag_both_tags_of_one_digest_removes_both(open_client: RegistryClient, repo: str) -> None:
    push_image(open_client, repo, ["a", "b"])
    push_image(open_client, repo, ["other"])
    assert open_client.untag(repo, "a") == "removed"
    assert open_client.untag(repo, "b") == "removed"
    assert open_client.list_tags(repo) == ["other"]


def test_untag_absent_tag_reports_absent(open_client: RegistryClient, repo: str) -> None:
    push_image(open_client, repo, ["here"])
    assert open_client.untag(repo, "not-here") == "absent"
    assert open_client.list_tags(repo) == ["here"]


def test_untag_index_keeps_children_and_their_tags(open_client: RegistryClient, repo: str) -> None:
    index = push_index(open_client, repo, ["multi"])
    open_client.put_manifest(repo, "amd64-only", *_manifest(open_client, repo, index.children[0]))
    assert open_client.untag(repo, "multi") == "removed"
    assert open_client.list_tags(repo) == ["amd64-only"]
    for child in index.children:
        assert pulls(open_client, repo, child)


def test_untag_child_tag_never_deletes_a_manifest_an_index_uses(open_client: RegistryClient, repo: str) -> None:
    index = push_index(open_client, repo, ["multi"])
    open_client.put_manifest(repo, "child-tag", *_manifest(open_client, repo, index.children[0]))
    assert open_client.untag(repo, "child-tag") == "removed"
    assert open_client.list_tags(repo) == ["multi"]
    assert pulls(open_client, repo, "multi")


def test_untag_many_tags_in_parallel_keeps_the_kept(open_client: RegistryClient, repo: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    shared = push_image(open_client, repo, ["keep", "drop-s1", "drop-s2"])
    pair = push_image(open_client, repo, ["drop-p1", "drop-p2"])
    lone = [push_image(open_client, repo, [f"drop-l{n}"]) for n in range(4)]
    drops = ["drop-s1", "drop-s2", "drop-p1", "drop-p2", *(f"drop-l{n}" for n in range(4))]
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(lambda t: open_client.untag(repo, t), drops)) == ["removed"] * len(drops)
    assert open_client.list_tags(repo) == ["keep"]
    assert pulls(open_client, repo, "keep")
    assert open_client.resolve(repo, shared.digest) is not None
    assert open_client.resolve(repo, pair.digest) is not None and all(  # untagged: the garbage collector's
        open_client.resolve(repo, image.digest) is not None for image in lone)


def test_can_delete_passes_when_deletion_is_enabled(open_client: RegistryClient, repo: str) -> None:
    push_image(open_client, repo, ["t"])
    open_client.can_delete(repo)
    assert open_client.list_tags(repo) == ["t"]


def test_can_delete_reports_delete_disabled_without_deleting(registry_nodelete: RegistryService, repo: str) -> None:
    client = RegistryClient(registry_nodelete.host)
    push_image(client, repo, ["t"])
    with pytest.raises(RegistryError, match="405 UNSUPPORTED"):
        client.can_delete(repo)
    assert client.list_tags(repo) == ["t"]


def test_can_delete_reports_a_token_without_delete_scope(fresh_registry, tmp_path, repo: str) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import USERS
    from tests.registry_client.conftest import docker_config_for

    service = fresh_registry(auth="token", users=USERS, denied_actions={"delete"})
    config = docker_config_for(tmp_path / "d", service.host, "alice", USERS["alice"])
    client = RegistryClient(service.host, docker_config=config)
    push_image(client, repo, ["t"])
    with pytest.raises(AuthError, match="insufficient_scope") as caught:
        client.can_delete(repo)
    assert USERS["alice"] not in str(caught.value)
    assert client.list_tags(repo) == ["t"]


def _manifest(client: RegistryClient, path: str, ref: str) -> tuple[bytes, str]:
    body, info = client.get_manifest(path, ref)
    return body, info.media_type
