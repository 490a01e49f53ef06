"""The bytes a cleanup frees (``ci_env.cleanup.sizes``): shared blobs once, kept ones never, honest bounds."""

from __future__ import annotations

import json

import pytest

from ci_env.cleanup.sizes import Manifest, Removal, human, measure, parse_manifest


def _digest(name: str) -> str:
    return "sha256:" + name.encode().hex().ljust(64, "0")[:64]


def _image(name: str, size: int, **blobs: int) -> Manifest:
    return Manifest(_digest(name), size, {_digest(b): s for b, s in blobs.items()})


BASE = 1000  # a base layer every image shares


def test_shared_layers_count_once_and_kept_layers_not_at_all() -> None:
    one = _image("one", 10, base=BASE, cfg1=5, app1=300)
    two = _image("two", 20, base=BASE, cfg2=5, app2=400)
    kept = _image("kept", 30, base=BASE, cfg3=5)
    removals = [Removal("api", "gone-1", one.digest), Removal("api", "gone-2", two.digest)]
    figures = measure(removals, [kept.digest], {m.digest: m for m in (one, two, kept)})
    assert figures.freed == 10 + 5 + 300 + 20 + 5 + 400  # the base layer stays with the kept image
    assert not figures.at_most and figures.kept == 30 + BASE + 5 and figures.unknown == 0
    assert [(i.image, i.freed, i.removed) for i in figures.images] == [("api", 740, 2)]
    assert [(tag, size) for _i, tag, _d, size in figures.largest] == [("gone-2", 1425), ("gone-1", 1315)]


def test_unread_kept_manifests_make_the_figure_an_upper_bound() -> None:
    one = _image("one", 10, base=BASE, app1=300)
    two = _image("two", 20, base=BASE, app2=400)
    figures = measure([Removal("api", "a", one.digest), Removal("web", "b", two.digest)], [_digest("unread")],
                      {m.digest: m for m in (one, two)})
    assert figures.freed == 10 + 20 + BASE + 300 + 400  # base once over both images
    assert figures.at_most and figures.kept is None and figures.kept_unread == 1
    assert {i.image: i.freed for i in figures.images} == {"api": 10 + BASE + 300, "web": 20 + BASE + 400}
    assert figures.phrase().startswith("at most 1.7 KiB freed once the registry's garbage collection runs")


def test_a_removed_tag_on_a_kept_digest_frees_nothing_and_unread_removals_are_counted_apart() -> None:
    one = _image("one", 10, app1=300)
    figures = measure([Removal("api", "alias", one.digest), Removal("api", "lost", _digest("lost"))],
                      [one.digest], {one.digest: one})
    assert figures.freed == 0 and figures.unknown == 1 and figures.largest == ()
    assert "(1 not measured)" in figures.phrase()


def test_an_index_frees_its_platform_manifests_and_their_layers() -> None:
    amd, arm = _image("amd", 7, l1=100), _image("arm", 8, l2=200)
    index = Manifest(_digest("index"), 50, {}, (amd.digest, arm.digest))
    figures = measure([Removal("api", "multi", index.digest)], [], {m.digest: m for m in (amd, arm, index)})
    assert figures.freed == 50 + 7 + 100 + 8 + 200 and not figures.at_most


def test_parse_manifest_reads_sizes_and_leaves_foreign_layers_out() -> None:
    body = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"digest": _digest("c"), "size": 12, "mediaType": "application/vnd.oci.image.config.v1+json"},
        "layers": [{"digest": _digest("l"), "size": 34, "mediaType": "application/vnd.oci.image.layer.v1.tar"},
                   {"digest": _digest("f"), "size": 99, "urls": ["https://example.com/f"],
                    "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"}],
    }).encode()
    manifest = parse_manifest("sha256:x", body)
    assert manifest.size == len(body) and manifest.blobs == {_digest("c"): 12, _digest("l"): 34}
    with pytest.raises(ValueError):
        parse_manifest("sha256:x", b'{"schemaVersion": 1}')


@pytest.mark.parametrize(("count", "text"), [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"),
                                             (5 * 1024 ** 3, "5.0 GiB")])
def test_human_sizes(count: int, text: str) -> None:
    assert human(count) == text
