"""A cleanup by rules that its --time-budget stops part-way: exit 3, the journal and a ``partial`` report; the next
run resumes from the journal and leaves alone a pending tag that moved (pushed again onto another image) or became
protected (--keep-tag) between the runs. The real registry behind a proxy that makes every manifest PUT by tag slow
(the registry's remover moves each tag onto a placeholder, then deletes that; ``tests.services.latency_proxy``),
the real CLI in a subprocess."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest

from ci_env.registry.client import RegistryClient
from tests.cleanup.test_cleanup_rules import SCHEMA, ago, run_cli
from tests.registry_client.images import push_image
from tests.services.latency_proxy import LatencyProxy
from tests.services.registry import RegistryService

KEPT = [f"keep-{n}" for n in range(3)]
STALE = [f"gone-{n:02d}" for n in range(12)]
#: each tag's move takes this long: the 15 s budget (10 s of it the margin) ends after the first slice of 8 removals
MOVE_SECONDS = 0.8


@dataclass
class Scene:
    client: RegistryClient
    proxy: LatencyProxy
    name: str
    tmp: Path

    def args(self, *extra: str, rule: str = "older-than=30d") -> list[str]:
        return ["cleanup", "--registry", self.proxy.host, "--repository", self.name, "--rule", rule,
                "--without-kube", "--parallel", "1", *extra]

    def tags(self) -> set[str]:
        return set(self.client.list_tags(self.name))


@pytest.fixture
def scene(registry_open: RegistryService, tmp_path: Path) -> Iterator[Scene]:
    """3 recent tags and 12 of 100 days ago (each its own image), cleaned through a proxy whose tag moves are slow
    (the test's own pushes and reads go directly)."""
    def slow_move(method: str, path: str) -> None:
        if method == "PUT" and "/manifests/" in path and "sha256:" not in path:
            time.sleep(MOVE_SECONDS)

    client = RegistryClient(registry_open.host, docker_config=Path("/nonexistent"))
    name = f"res{uuid.uuid4().hex[:8]}/app"
    for tag in KEPT:
        push_image(client, name, [tag], created=ago(1))
    for tag in STALE:
        push_image(client, name, [tag], created=ago(100))
    proxy = LatencyProxy(registry_open.host, delay=0, before=slow_move)
    yield Scene(client, proxy, name, tmp_path)
    proxy.stop()


def test_a_rules_run_stopped_by_its_budget_resumes_and_spares_moved_and_protected_tags(scene: Scene) -> None:
    journal, report = scene.tmp / "journal.jsonl", scene.tmp / "first.json"
    code, _out, err = run_cli(*scene.args("--time-budget", "15s", "--journal", str(journal), "--report",
                                          str(report)), cwd=scene.tmp)
    assert code == 3, err
    assert "stopped by --time-budget" in err and "exit code 3" in err and "Traceback" not in err
    document = json.loads(report.read_text())
    jsonschema.validate(document, SCHEMA)
    assert document["partial"] == {"stopped_by": "time-budget", "journal": str(journal)}
    outcomes = {d["tag"]: d["outcome"] for d in document["decisions"]}
    removed = {tag for tag, outcome in outcomes.items() if outcome == "removed"}
    pending = sorted(tag for tag, outcome in outcomes.items() if outcome == "not-attempted")
    assert len(pending) >= 2 and removed | set(pending) == set(STALE)
    assert scene.tags() == set(KEPT) | set(pending)  # what it removed is gone, nothing else
    assert journal.exists() and journal.stat().st_mode & 0o777 == 0o600

    # meanwhile one pending tag is pushed again onto a new image, and another becomes protected
    moved, protected = pending[0], pending[1]
    new_digest = push_image(scene.client, scene.name, [moved], created=ago(0)).digest
    report = scene.tmp / "second.json"
    code, _out, err = run_cli(*scene.args("--keep-tag", protected, "--journal", str(journal), "--report",
                                          str(report)), cwd=scene.tmp)
    assert code == 0, err
    assert f"cleanup: resuming the journal {journal}" in err
    assert scene.tags() == {*KEPT, moved, protected}  # every other stale tag gone
    assert scene.client.resolve(scene.name, moved).digest == new_digest  # type: ignore[union-attr]
    document = json.loads(report.read_text())
    jsonschema.validate(document, SCHEMA)
    assert "partial" not in document and not journal.exists()
    resumed = {r["tag"]: r for r in document["resumed"]}
    assert set(resumed) == set(pending)  # the journal's pending removals, and nothing else
    assert resumed[protected]["outcome"] == "kept" and f"--keep-tag {protected}" in resumed[protected]["reason"]
    assert resumed[moved]["outcome"] == "moved" and new_digest in resumed[moved]["reason"]
    assert {r["outcome"] for tag, r in resumed.items() if tag not in (moved, protected)} == {"removed"}


def test_a_journal_of_another_ref_is_ignored_and_one_with_nothing_left_to_do_is_deleted(scene: Scene) -> None:
    from ci_env.cleanup import journal as jr

    journal = scene.tmp / "journal.jsonl"
    target = jr.Target("cleanup", f"rules command line on {scene.proxy.host}", None)
    entry = jr.Entry(f"{scene.proxy.host}/{scene.name}", STALE[0], "sha256:" + "1" * 64)
    jr.Journal.create(journal, target, [entry], ref="feature/other").close()
    gitlab = {"GITLAB_CI": "true", "CI_COMMIT_REF_NAME": "main"}
    code, _out, err = run_cli(*scene.args("--journal", str(journal), rule="keep=all"), cwd=scene.tmp, **gitlab)
    assert code == 0, err
    assert (f"cleanup: the journal {journal} was written for ref feature/other, not for main (another branch's "
            "cache?): ignored, and replaced by this run's") in err
    assert "resuming the journal" not in err and scene.tags() == {*KEPT, *STALE}

    jr.Journal.create(journal, target, [entry], ref="main").close()  # its tag kept today: nothing to do
    code, _out, err = run_cli(*scene.args("--journal", str(journal), rule="keep=all"), cwd=scene.tmp, **gitlab)
    assert code == 0, err
    assert f"cleanup: resuming the journal {journal}" in err and "1 dropped" in err
    assert not journal.exists() and scene.tags() == {*KEPT, *STALE}
