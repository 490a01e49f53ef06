"""Publication records compacted into snapshots (``ci_env.records.snapshots``), on the real registry: what a reader
finds after compactions, records written while a compaction runs, legacy records, a registry that refuses deletes."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ci_env import records
from ci_env.records import snapshots
from ci_env.registry.client import RegistryClient
from ci_env.registry.reference import RepoAddress
from tests.services.registry import RegistryService

IMAGES = "127.0.0.1:5000/acme/app"


def _store(registry: RegistryService, name: str = "") -> records.RegistryStore:
    client = RegistryClient(registry.host, docker_config=Path("/nonexistent"))
    stages = RepoAddress(registry.host, name or f"snap-{uuid.uuid4().hex[:10]}/stages")
    store = records.open_store(stages, "", client=client)
    assert isinstance(store, records.RegistryStore)
    return store


def _fresh(store: records.RegistryStore) -> records.RegistryStore:
    """Another reader of the same stages repository (its own client, nothing cached)."""
    client = RegistryClient(store.client.registry, docker_config=Path("/nonexistent"))
    fresh = records.open_store(store.repository, "", client=client)
    assert isinstance(fresh, records.RegistryStore)
    return fresh


def _publication(tag: str, content: str = "first") -> records.Publication:
    return records.Publication("app", tag, IMAGES, tag, "git-branch", "sha256:" + "0" * 64, "a" * 64,
                               "2024-01-01T00:00:00Z", git_branch=content)


def _contents(store: records.RegistryStore) -> dict[str, str | None]:
    """tag -> the content marker (``git_branch``) of its record, as a fresh reader finds them."""
    return {p.tag: p.git_branch for p in records.read_publications(_fresh(store))}


def _compact(store: records.RegistryStore, forget: list[str] | None = None) -> snapshots.Compaction:
    state = snapshots.read_state(store)
    return snapshots.compact(store, state, forget=[records.publication_key(f"{IMAGES}:{t}") for t in forget or []])


def _record_tags(store: records.RegistryStore) -> list[str]:
    return sorted(t for t in _fresh(store).listed_tags() if t.startswith("ci-env-"))


def test_compaction_leaves_one_snapshot_and_a_reader_reads_only_what_was_published_since(
    registry_open: RegistryService,
) -> None:
    store = _store(registry_open)
    for n in range(40):
        records.write_publication(store, _publication(f"t{n}"))
    assert len(_record_tags(store)) == 40
    done = _compact(store)
    assert done.records == 40 and done.retired == 40
    (snapshot,) = _record_tags(store)
    assert snapshots.is_snapshot_tag(snapshot)

    records.write_publication(store, _publication("t3", "second"))  # replaces a compacted record
    records.write_publication(store, _publication("new"))
    before = len(registry_open.requests())
    state = snapshots.read_state(_fresh(store))
    made = registry_open.requests()[before:]
    assert state.read_individually == 2
    record_reads = [path for method, path, _ in made if method == "GET" and "/manifests/ci-env-pub-" in path]
    assert len(record_reads) == 2  # the two records written since; the other 39 come from the snapshot
    contents = {p.tag: p.git_branch for p in state.publications}
    assert len(contents) == 41 and contents["t3"] == "second" and contents["new"] == "first"

    _compact(store, forget=["t5"])
    assert len(_record_tags(store)) == 1
    contents = _contents(store)
    assert len(contents) == 40 and "t5" not in contents and contents["t3"] == "second"
    # nothing changed since: a cleanup writes no new snapshot
    assert _compact(store).snapshot is None


def test_records_written_and_replaced_while_cleanup_compacts_are_never_lost(registry_open: RegistryService) -> None:
    store = _store(registry_open)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda n: records.write_publication(store, _publication(f"old{n}")), range(300)))
    assert _compact(store).records == 300  # a snapshot to replace records of
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda n: records.write_publication(store, _publication(f"mid{n}")), range(300)))

    compacting = threading.Event()
    finished = threading.Event()
    written_during: list[str] = []
    lock = threading.Lock()
    expected: dict[str, str] = {f"old{n}": "first" for n in range(300)} | {f"mid{n}": "first" for n in range(300)}

    def publisher(worker: int) -> None:
        writer = _fresh(store)  # a build job of its own
        compacting.wait()
        n = 0
        while not finished.is_set() or n < 20:
            if n % 2:
                tag, content = f"new{worker}-{n}", "first"
            else:  # replaces a record the compaction is folding into its snapshot
                tag, content = f"old{(worker * 37 + n) % 300}", f"w{worker}-{n}"
            started = compacting.is_set() and not finished.is_set()
            records.write_publication(writer, _publication(tag, content))
            with lock:
                expected[tag] = content
                if started and not finished.is_set():
                    written_during.append(tag)
            n += 1

    def compaction() -> None:
        cleaner = _fresh(store)
        state = snapshots.read_state(cleaner)
        compacting.set()
        time.sleep(0.05)
        snapshots.compact(cleaner, state)
        finished.set()

    with ThreadPoolExecutor(max_workers=5) as pool:
        jobs = [pool.submit(publisher, w) for w in range(4)] + [pool.submit(compaction)]
        for job in jobs:
            job.result()
    assert len(written_during) >= 10, "the publishers must have written while the compaction ran"
    assert any(tag.startswith("old") for tag in written_during)  # compacted records replaced meanwhile
    assert _contents(store) == expected
    _compact(store)  # and the next compaction keeps them too
    assert _contents(store) == expected


def test_two_cleanups_compacting_at_once_lose_nothing(registry_open: RegistryService) -> None:
    store = _store(registry_open)
    for n in range(30):
        records.write_publication(store, _publication(f"a{n}"))
    first = snapshots.read_state(_fresh(store))
    for n in range(10):
        records.write_publication(store, _publication(f"b{n}"))
    second = snapshots.read_state(_fresh(store))  # has seen the b records, the first has not
    snapshots.compact(_fresh(store), second)
    snapshots.compact(_fresh(store), first)  # retires what it saw; the b records live in the other snapshot
    expected = {f"a{n}" for n in range(30)} | {f"b{n}" for n in range(10)}
    assert set(_contents(store)) == expected
    assert sum(snapshots.is_snapshot_tag(t) for t in _record_tags(store)) == 2
    _compact(store)
    assert set(_contents(store)) == expected and len(_record_tags(store)) == 1


def test_a_reader_lists_again_when_a_compaction_replaced_the_snapshot_it_listed(
    registry_open: RegistryService,
) -> None:
    store = _store(registry_open)
    for n in range(10):
        records.write_publication(store, _publication(f"t{n}"))
    _compact(store)
    records.write_publication(store, _publication("late"))
    reader = _fresh(store)
    reader.listed_tags()  # listed now: the snapshot and the late record ...
    _compact(store)  # ... both gone before it reads them
    assert {p.tag for p in records.read_publications(reader)} == {f"t{n}" for n in range(10)} | {"late"}


def test_legacy_records_are_read_then_migrated_and_one_rewritten_meanwhile_survives(
    registry_open: RegistryService,
) -> None:
    store = _store(registry_open)
    for n in range(5):  # as ci-env wrote them before snapshots: one tag per full name, rewritten in place
        publication = _publication(f"t{n}")
        store.put(records.PUBLICATIONS, publication.key, publication.to_json())
    records.write_publication(store, _publication("t0", "newer"))  # published again by this version
    assert _contents(store) == {"t0": "newer", "t1": "first", "t2": "first", "t3": "first", "t4": "first"}

    state = snapshots.read_state(_fresh(store))
    rewritten = _publication("t2", "rewritten by an older ci-env")  # while the compaction runs
    store.put(records.PUBLICATIONS, rewritten.key, rewritten.to_json())
    snapshots.compact(_fresh(store), state)
    left = _record_tags(store)
    assert f"ci-env-publication-{rewritten.key}" in left and len(left) == 2  # the snapshot and the rewritten one
    assert _contents(store) == {"t0": "newer", "t1": "first", "t2": "rewritten by an older ci-env", "t3": "first",
                                "t4": "first"}
    _compact(store)
    assert len(_record_tags(store)) == 1
    assert _contents(store)["t2"] == "rewritten by an older ci-env"


def test_when_the_registry_refuses_deletes_compaction_still_spares_the_reads(
    registry_nodelete: RegistryService,
) -> None:
    store = _store(registry_nodelete)
    for n in range(10):
        records.write_publication(store, _publication(f"t{n}", "old"))
    records.write_publication(store, _publication("t0", "new"))
    done = _compact(store)  # the snapshot is written; retiring the record tags fails
    assert done.snapshot is not None and done.retired == 0
    assert len(_record_tags(store)) == 12
    state = snapshots.read_state(_fresh(store))
    assert state.read_individually == 0  # every tag left is accounted for by the snapshot
    assert {p.tag: p.git_branch for p in state.publications}["t0"] == "new"  # the superseded one never comes back

    records.write_publication(store, _publication("t1", "newest"))
    _compact(store)  # two snapshots now (the old one could not be deleted): a reader merges both
    assert sum(snapshots.is_snapshot_tag(t) for t in _record_tags(store)) == 2
    contents = _contents(store)
    assert contents["t0"] == "new" and contents["t1"] == "newest" and len(contents) == 10


def test_a_forgotten_record_published_again_during_the_compaction_stays(registry_open: RegistryService) -> None:
    store = _store(registry_open)
    for n in range(5):
        records.write_publication(store, _publication(f"t{n}"))
    state = snapshots.read_state(_fresh(store))
    records.write_publication(store, _publication("t1", "again"))  # the tag is published again meanwhile
    snapshots.compact(_fresh(store), state, forget=[records.publication_key(f"{IMAGES}:{t}") for t in ("t1", "t2")])
    assert _contents(store) == {"t0": "first", "t1": "again", "t3": "first", "t4": "first"}


def test_snapshot_tags_and_record_tags_are_records_never_stages() -> None:
    version = snapshots.new_version()
    tag = snapshots.record_tag("0" * 32, version)
    assert records.is_record_tag(tag) and not records.is_stage_tag(tag) and len(tag) <= 128
    assert snapshots.parse_record_tag(tag) == ("0" * 32, version)
    assert len({snapshots.new_version() for _ in range(1000)}) == 1000


def test_records_written_since_a_reading_are_found_by_one_listing_even_once_compacted(
    registry_open: RegistryService,
) -> None:
    """What cleanup asks right before removing: which of the doomed tags' records were written again since the
    plan read them. A new record tag is found by the listing; one another run compacted into its snapshot
    meanwhile (and retired) is found in that snapshot; a record untouched is not reported."""
    store = _store(registry_open)
    for tag in ("a", "b", "c"):
        records.write_publication(store, _publication(tag))
    _compact(store)
    plan = records.read_publication_state(_fresh(store))
    keys = {t: records.publication_key(f"{IMAGES}:{t}") for t in ("a", "b", "c")}
    assert records.written_since(_fresh(store), plan, set(keys.values())) == {}
    records.write_publication(store, _publication("a", "again"))
    found = records.written_since(_fresh(store), plan, set(keys.values()))
    assert set(found) == {keys["a"]} and found[keys["a"]].endswith("Z")
    records.write_publication(store, _publication("b", "again"))
    _compact(_fresh(store))  # another run: its snapshot holds the new records, their tags are retired
    assert not [t for t in store.listed_tags(fresh=True) if t.startswith(snapshots.RECORD_PREFIX)]
    assert set(records.written_since(_fresh(store), plan, set(keys.values()))) == {keys["a"], keys["b"]}
