"""The repository graph built from real manifests on the real registry (distribution 2.8: no referrers API, so
the referrers tag schema and cosign's tags), and through a front that answers the referrers API."""

from __future__ import annotations

from ci_env.registry.accessories import ATTESTATION, REFERRERS_INDEX, SBOM, SIGNATURE
from ci_env.registry.client import RegistryClient
from ci_env.registry.graph import ATTESTATION_MANIFEST, PLATFORM, registry_graph
from tests.graphs.shapes import (
    IN_TOTO,
    cosign_tag,
    push_artifact,
    push_buildx,
    push_cosign,
    push_index_of,
    push_nested,
)
from tests.registry_client.images import push_image, push_index
from tests.services.referrers_front import ReferrersFront
from tests.services.registry import RegistryService


def test_an_oci_index_reaches_its_two_platforms_for_one_read_and_one_referrers_probe(
    registry_open: RegistryService, open_client: RegistryClient, repo: str,
) -> None:
    index = push_index(open_client, repo, ["multi"])
    single = push_image(open_client, repo, ["single"])
    listed = {t: open_client.resolve(repo, t) for t in open_client.list_tags(repo)}
    before = len(registry_open.requests())
    graph = registry_graph(open_client, repo, listed)
    made = registry_open.requests()[before:]
    assert graph.reach([graph.tags["multi"]]) == {index.digest, *index.children}
    assert graph.reach([graph.tags["single"]]) == {single.digest}
    assert {graph.roles[c] for c in index.children} == {PLATFORM}
    assert not graph.referrers_api
    # the index read once, the referrers API tried once (404 on distribution 2.8); the image never read
    assert sorted((m, p.split("/")[-2]) for m, p, _ in made) == [("GET", "manifests"), ("GET", "referrers")]
    assert graph.requests == 2


def test_a_nested_index_with_attestations_is_walked_to_the_bottom(open_client: RegistryClient, repo: str) -> None:
    buildx, platforms, attestations = push_buildx(open_client, repo)
    outer, inner, image = push_nested(open_client, repo, ["nested"])
    wrapper = push_index_of(open_client, repo, [buildx], ["release"])
    graph = registry_graph(open_client, repo)
    assert graph.reach([graph.tags["release"]]) == {wrapper, buildx, *platforms, *attestations}
    assert {graph.roles[a] for a in attestations} == {ATTESTATION_MANIFEST}
    assert image.digest in graph.reach([graph.tags["nested"]]) and inner in graph.reach([outer])
    assert graph.referenced() >= {buildx, *platforms, *attestations, inner, image.digest}


def test_cosign_tags_are_the_accessories_of_their_image(open_client: RegistryClient, repo: str) -> None:
    image = push_image(open_client, repo, ["v1"])
    signature = push_cosign(open_client, repo, image.digest, "sig")
    attestation = push_cosign(open_client, repo, image.digest, "att")
    sbom = push_cosign(open_client, repo, image.digest, "sbom")
    graph = registry_graph(open_client, repo)
    kinds = {r.digest: (r.kind, r.tag) for r in graph.referrers_of(image.digest)}
    assert kinds == {signature: (SIGNATURE, cosign_tag(image.digest, "sig")),
                     attestation: (ATTESTATION, cosign_tag(image.digest, "att")),
                     sbom: (SBOM, cosign_tag(image.digest, "sbom"))}
    assert set(graph.image_tags()) == {"v1"}
    removal = graph.removal(["v1"])
    assert {(a.kind, a.tags) for a in removal.accessories["v1"]} == {
        (SIGNATURE, (cosign_tag(image.digest, "sig"),)), (ATTESTATION, (cosign_tag(image.digest, "att"),)),
        (SBOM, (cosign_tag(image.digest, "sbom"),))}
    assert graph.removal(["v1"], keep_accessories=True).accessories["v1"] == ()


def test_a_signature_stays_while_another_tag_reaches_its_image(open_client: RegistryClient, repo: str) -> None:
    image = push_image(open_client, repo, ["old", "release"])
    signature = push_cosign(open_client, repo, image.digest)
    graph = registry_graph(open_client, repo)
    removal = graph.removal(["old"])
    assert removal.accessories["old"] == ()
    assert removal.keeps(signature) and removal.keeps(image.digest)


def test_oci_artifacts_found_through_the_referrers_tag_schema(open_client: RegistryClient, repo: str) -> None:
    image = push_image(open_client, repo, ["v1"])
    sbom = push_artifact(open_client, repo, image.digest)
    provenance = push_artifact(open_client, repo, image.digest, IN_TOTO)
    graph = registry_graph(open_client, repo)
    kinds = {r.digest: r.kind for r in graph.referrers_of(image.digest)}
    fallback = graph.tags[image.digest.replace(":", "-")]
    assert kinds == {sbom: SBOM, provenance: ATTESTATION, fallback: REFERRERS_INDEX}
    removal = graph.removal(["v1"])
    assert {a.digest for a in removal.accessories["v1"]} == {sbom, provenance, fallback}
    order = [a.digest for a in removal.all_accessories()]
    assert order.index(sbom) < order.index(fallback)  # deepest first: the index listing them goes last


def test_oci_artifacts_found_through_the_referrers_api(front: ReferrersFront, front_client: RegistryClient,
                                                       repo: str) -> None:
    index = push_index(front_client, repo, ["multi"])
    signature = push_artifact(front_client, repo, index.digest, "application/vnd.dev.cosign.artifact.sig.v1+json",
                              fallback=False)
    child_sbom = push_artifact(front_client, repo, index.children[0], fallback=False)
    graph = registry_graph(front_client, repo)
    assert graph.referrers_api
    assert {r.digest: r.kind for r in graph.referrers_of(index.digest)} == {signature: SIGNATURE}
    assert {r.digest: r.kind for r in graph.referrers_of(index.children[0])} == {child_sbom: SBOM}
    assert graph.reach([graph.tags["multi"]]) == {index.digest, *index.children, signature, child_sbom}
    removal = graph.removal(["multi"])
    assert {a.digest for a in removal.accessories["multi"]} == {*index.children, signature, child_sbom}
    # one referrers request per manifest (the index, its two platforms, the two referrers)
    assert len(front.referrer_calls()) == 5


def test_a_child_two_indexes_share_stays_with_the_kept_one(open_client: RegistryClient, repo: str) -> None:
    shared = push_image(open_client, repo)
    own = push_image(open_client, repo)
    other = push_image(open_client, repo)
    kept = push_index_of(open_client, repo, [shared.digest, other.digest], ["kept"])
    gone = push_index_of(open_client, repo, [shared.digest, own.digest], ["gone"])
    graph = registry_graph(open_client, repo)
    removal = graph.removal(["gone"])
    assert {a.digest for a in removal.accessories["gone"]} == {own.digest}
    assert removal.keeps(shared.digest) and removal.keeps(kept) and not removal.keeps(gone)


def test_a_signature_of_a_signature_goes_deepest_first(open_client: RegistryClient, repo: str) -> None:
    image = push_image(open_client, repo, ["v1"])
    signature = push_cosign(open_client, repo, image.digest)
    countersignature = push_cosign(open_client, repo, signature)
    graph = registry_graph(open_client, repo)
    assert graph.reach([image.digest]) == {image.digest, signature, countersignature}
    assert [a.digest for a in graph.removal(["v1"]).all_accessories()] == [countersignature, signature]
