"""Batched untag on the default route against the real registry: fast, and only the named tags go (moved onto one
placeholder per batch, which is then deleted: no image is deleted by digest)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ci_env.errors import RegistryError
from ci_env.registry import manifests as mf
from ci_env.registry.client import ClientPool, RegistryClient
from ci_env.registry.http import make_session
from ci_env.registry.reference import RepoAddress
from ci_env.registry.untag import DefaultRemover, RemoverContext, Summary, untag_all
from tests.registry_client.faultproxy import FaultProxy
from tests.registry_client.images import pulls, push_image, push_index
from tests.registry_client.scenarios import assert_only_the_asked_went, push_kept_and_dropped
from tests.services.registry import RegistryService


def _methods(service: RegistryService, since: int, repo: str) -> list[tuple[str, str]]:
    return [(method, path) for method, path, _ in service.requests()[since:] if f"/v2/{repo}/" in path]


def test_parallel_untags_read_only_the_tags_they_remove(registry_open: RegistryService, repo: str) -> None:
    setup = RegistryClient(registry_open.host)
    drops = [f"drop-{n}" for n in range(8)]
    for tag in drops:
        push_image(setup, repo, [tag])
    for n in range(12):
        push_image(setup, repo, [f"keep-{n}"])
    client = RegistryClient(registry_open.host)
    start = threading.Barrier(len(drops))
    before = len(registry_open.requests())

    def untag(tag: str) -> str:
        start.wait()
        return client.untag(repo, tag)

    with ThreadPoolExecutor(len(drops)) as pool:
        assert list(pool.map(untag, drops)) == ["removed"] * len(drops)
    made = _methods(registry_open, before, repo)
    assert not [p for _, p in made if p.endswith("/tags/list")]  # the repository is never listed
    assert sorted(p.rsplit("/", 1)[1] for m, p in made if m == "HEAD" and "/manifests/" in p) == sorted(drops)
    assert sorted(setup.list_tags(repo)) == sorted(f"keep-{n}" for n in range(12))


def test_untag_many_moves_only_the_named_tags_and_deletes_one_placeholder(
    registry_open: RegistryService, repo: str
) -> None:
    client = RegistryClient(registry_open.host)
    pair = push_image(client, repo, ["pair-a", "pair-b"])
    lone = push_image(client, repo, ["lone"])
    shared = [push_image(client, repo, [f"keep-{n}", f"stale-{n}"]) for n in range(3)]
    index = push_index(client, repo, ["multi"])
    body, info = client.get_manifest(repo, index.children[0])
    client.put_manifest(repo, "child", body, info.media_type)  # its manifest is used by the index
    fresh = RegistryClient(registry_open.host)
    before = len(registry_open.requests())
    named = ["pair-a", "pair-b", "lone", "stale-0", "stale-1", "stale-2", "child", "missing"]
    outcomes = fresh.untag_many(repo, named)
    made = _methods(registry_open, before, repo)
    assert outcomes == {**dict.fromkeys(named, "removed"), "missing": "absent"}
    assert sorted(client.list_tags(repo)) == ["keep-0", "keep-1", "keep-2", "multi"]
    for image in shared:
        assert pulls(client, repo, image.digest)
    assert pulls(client, repo, "multi")
    # no image is deleted: the untagged ones are the garbage collector's
    assert client.resolve(repo, pair.digest) is not None and client.resolve(repo, lone.digest) is not None
    puts = [p for m, p in made if m == "PUT" and "/manifests/" in p]
    deletes = [p for m, p in made if m == "DELETE"]
    assert sorted(p.rsplit("/", 1)[1] for p in puts) == sorted(set(named) - {"missing"})
    assert len(deletes) == 1 and deletes[0].rsplit("/", 1)[1] not in {pair.digest, lone.digest}
    assert sum(1 for m, _ in made if m == "HEAD") <= len(named) + 1  # each named tag once (+ the config blob)


def test_untag_many_after_a_run_stopped_between_phases_finishes_it(registry_open: RegistryService,
                                                                     repo: str) -> None:
    client = RegistryClient(registry_open.host)
    images = [push_image(client, repo, [f"keep-{n}", f"stale-{n}"]) for n in range(3)]
    # what a run killed after its PUT phase leaves: the stale tags on one placeholder of that run
    client.ensure_blob(repo, mf.sha256_digest(mf.PLACEHOLDER_CONFIG), mf.PLACEHOLDER_CONFIG)
    stopped = mf.placeholder_manifest()
    for n in range(3):
        client.put_manifest(repo, f"stale-{n}", stopped, mf.OCI_MANIFEST)
    planned = {f"stale-{n}": images[n].digest for n in range(3)}  # the digests the stopped run's plan saw
    rerun = RegistryClient(registry_open.host)
    assert rerun.untag_many(repo, list(planned), expected=planned) == dict.fromkeys(planned, "removed")
    assert sorted(client.list_tags(repo)) == ["keep-0", "keep-1", "keep-2"]
    assert all(pulls(client, repo, image.digest) for image in images)


def test_untag_many_when_the_placeholder_cannot_be_deleted_reports_each_tag_failed(
    registry_nodelete: RegistryService, repo: str
) -> None:
    client = RegistryClient(registry_nodelete.host)
    image = push_image(client, repo, ["keep", "stale"])
    push_image(client, repo, ["lone"])
    outcomes = client.untag_many(repo, ["stale", "lone"])
    assert all(isinstance(outcome, RegistryError) for outcome in outcomes.values())
    for outcome in outcomes.values():
        assert "405 UNSUPPORTED" in str(outcome) and "run the removal again" in str(outcome)
    assert client.resolve(repo, "keep").digest == image.digest  # type: ignore[union-attr]
    assert pulls(client, repo, "keep")


def test_untag_all_batches_the_default_route_and_reports_progress(registry_open: RegistryService,
                                                                  repo: str) -> None:
    client = RegistryClient(registry_open.host)
    for n in range(30):
        push_image(client, repo, [f"keep-{n}", f"stale-{n}"] if n % 2 else [f"lone-{n}"])
    named = [f"stale-{n}" if n % 2 else f"lone-{n}" for n in range(30)]
    remover = DefaultRemover(RemoverContext())
    address = RepoAddress(registry_open.host, repo)
    seen: list[tuple[int, int]] = []

    def progress(done: int, total: int, summary: Summary) -> None:
        seen.append((done, total))

    before = len(registry_open.requests())
    summary = untag_all([(address, tag) for tag in named], lambda _: remover, parallel=4, progress=progress,
                        progress_every=0.0)
    assert [o.status for o in summary.outcomes] == ["removed"] * 30
    assert [o.tag for o in summary.outcomes] == named
    assert sorted(client.list_tags(repo)) == sorted(f"keep-{n}" for n in range(1, 30, 2))
    made = _methods(registry_open, before, repo)
    deletes = [p for m, p in made if m == "DELETE" and not p.endswith("0" * 64)]
    assert len(deletes) == 1  # one placeholder for all 30 tags
    assert len(made) <= 30 * 2 + 1 + 5  # a HEAD and a PUT per tag, one DELETE; the config blob (3), the preflight
    assert seen[-1] == (30, 30) and len(seen) > 2


def test_untag_all_batch_through_faults_removes_only_what_was_asked(registry_open: RegistryService,
                                                                      repo: str) -> None:
    direct = RegistryClient(registry_open.host)
    kept, drops = push_kept_and_dropped(direct, repo)
    proxy = FaultProxy(registry_open.host, seed=5)
    try:
        faulty = RegistryClient(proxy.host, session=make_session(retries=4, backoff=0.01))
        pool = ClientPool()
        pool.put(proxy.host, faulty)  # the remover's client, on the faulty session
        remover = DefaultRemover(RemoverContext(clients=pool))
        address = RepoAddress(proxy.host, repo)
        summary = untag_all([(address, tag) for tag in drops], lambda _: remover, parallel=4)
    finally:
        proxy.stop()
    assert proxy.faults, "the proxy injected no fault: the test would prove nothing"
    assert_only_the_asked_went(direct, repo, kept, drops, summary)


def test_retire_tags_removes_the_named_tags_with_one_delete_and_no_listing(
    registry_open: RegistryService, repo: str
) -> None:
    client = RegistryClient(registry_open.host)
    for n in range(6):
        push_image(client, repo, [f"record-{n}"])
    keep = push_image(client, repo, ["keep"])
    time.sleep(0.2)
    before = len(registry_open.requests())
    outcomes = RegistryClient(registry_open.host).retire_tags(repo, [f"record-{n}" for n in range(4)])
    time.sleep(0.2)
    made = _methods(registry_open, before, repo)
    assert outcomes == {f"record-{n}": "removed" for n in range(4)}
    assert sorted(client.list_tags(repo)) == ["keep", "record-4", "record-5"]
    assert pulls(client, repo, "keep") and client.resolve(repo, "keep").digest == keep.digest  # type: ignore[union-attr]
    assert [m for m, _ in made].count("DELETE") == 1
    assert not any(path.endswith("/tags/list") for _, path in made)


def test_a_guarded_batch_leaves_a_tag_that_moved_since_it_was_planned(registry_open: RegistryService,
                                                                       repo: str) -> None:
    setup = RegistryClient(registry_open.host)
    planned = {tag: push_image(setup, repo, [tag]).digest for tag in ("old-1", "old-2")}
    keep = push_image(setup, repo, ["keep"]).digest
    client = RegistryClient(registry_open.host)
    pushed_again = push_image(setup, repo, ["old-2"]).digest  # old-2 moves before its removal
    remover = DefaultRemover(RemoverContext(clients=_pool_with(client)))
    address = RepoAddress(registry_open.host, repo)
    summary = untag_all([(address, "old-1"), (address, "old-2")], lambda _: remover,
                        expected={(address, tag): digest for tag, digest in planned.items()})
    assert {o.tag: o.status for o in summary.outcomes} == {"old-1": "removed", "old-2": "moved"}
    assert {t: setup.resolve(repo, t).digest for t in setup.list_tags(repo)} == {  # type: ignore[union-attr]
        "keep": keep, "old-2": pushed_again}


def _pool_with(client: RegistryClient) -> ClientPool:
    pool = ClientPool()
    pool.put(client.registry, client)
    return pool
