"""Untag on the default route never deletes a manifest a kept tag reaches through nested indexes."""

from __future__ import annotations

from ci_env.registry.client import RegistryClient
from tests.graphs.shapes import push_nested
from tests.registry_client.images import pulls


def test_untag_keeps_a_manifest_a_kept_tag_reaches_through_a_nested_index(open_client: RegistryClient,
                                                                           repo: str) -> None:
    _outer, _inner, image = push_nested(open_client, repo, ["A"])
    body, info = open_client.get_manifest(repo, image.digest)
    open_client.put_manifest(repo, "B", body, info.media_type)  # B: the only tag on M, which A reaches
    assert open_client.untag_many(repo, ["B"]) == {"B": "removed"}
    assert open_client.list_tags(repo) == ["A"]
    assert open_client.resolve(repo, image.digest) is not None
    assert pulls(open_client, repo, "A")


def test_single_untag_keeps_a_manifest_a_kept_tag_reaches_through_a_nested_index(open_client: RegistryClient,
                                                                                  repo: str) -> None:
    _outer, _inner, image = push_nested(open_client, repo, ["A"])
    body, info = open_client.get_manifest(repo, image.digest)
    open_client.put_manifest(repo, "B", body, info.media_type)
    assert open_client.untag(repo, "B") == "removed"
    assert pulls(open_client, repo, "A")
