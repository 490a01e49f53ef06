"""The shards of a cleanup by rules say which shard they were, and ``ci-env report merge`` merges only the shards of
one cleanup: all of them once (or, with --allow-partial, says which are missing), of one N and one set of rules;
the merged ``partial`` gives each part's own reason. The real registry, the real CLI."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from ci_env.cleanup.shards import shard_of
from ci_env.registry.client import RegistryClient
from tests.cleanup.test_cleanup_rules import SCHEMA, ago, run_cli
from tests.registry_client.images import push_image
from tests.services.registry import RegistryService


@dataclass
class Shards:
    host: str
    names: list[str]
    reports: list[Path]  #: shard 1/3, 2/3, 3/3
    summaries: list[str]  #: each shard's $GITHUB_STEP_SUMMARY
    pages: list[str]  #: each shard's HTML report
    tmp: Path

    def mine(self, index: int, total: int = 3) -> list[str]:
        return [n for n in self.names if shard_of(f"{self.host}/{n}", total) == index]

    def merge(self, *reports: Path, extra: tuple[str, ...] = ()) -> tuple[int, str, Path]:
        output = self.tmp / f"merged-{uuid.uuid4().hex[:6]}.json"
        code, _out, err = run_cli("report", "merge", *map(str, reports), "-o", str(output), *extra, cwd=self.tmp)
        return code, err, output

    def copy(self, report: Path, change: Any) -> Path:
        document = json.loads(report.read_text())
        change(document)
        path = self.tmp / f"changed-{uuid.uuid4().hex[:6]}.json"
        path.write_text(json.dumps(document))
        return path


ARGS = ["--rule", "keep-last=1", "--dry-run", "--without-kube"]


@pytest.fixture(scope="module")
def shards(registry_open: RegistryService, tmp_path_factory: pytest.TempPathFactory) -> Shards:
    """9 repositories of a group, each of the 3 shards taking some; a dry run of each shard with its reports."""
    client = RegistryClient(registry_open.host, docker_config=Path("/nonexistent"))
    tmp = tmp_path_factory.mktemp("shards")
    while True:
        group = f"mrg{uuid.uuid4().hex[:8]}"
        names = [f"{group}/svc-{n}" for n in range(9)]
        if len({shard_of(f"{registry_open.host}/{name}", 3) for name in names}) == 3:
            break
    for name in names:
        push_image(client, name, ["old"], created=ago(100))
        push_image(client, name, ["new"], created=ago(1))
    reports, summaries, pages = [], [], []
    for index in (1, 2, 3):
        report, summary, page = tmp / f"shard-{index}.json", tmp / f"summary-{index}.md", tmp / f"shard-{index}.html"
        code, _out, err = run_cli("cleanup", "--registry", registry_open.host, "--repository", f"{group}/", *ARGS,
                                  "--shard", f"{index}/3", "--report", str(report), "--html-report", str(page),
                                  cwd=tmp, GITHUB_STEP_SUMMARY=str(summary))
        assert code == 0, err
        reports.append(report)
        summaries.append(summary.read_text())
        pages.append(page.read_text())
    return Shards(registry_open.host, names, reports, summaries, pages, tmp)


def test_a_shards_report_says_which_shard_it_was_and_how_many_repositories_it_took(shards: Shards) -> None:
    fingerprints = set()
    for index, report in enumerate(shards.reports, 1):
        document = json.loads(report.read_text())
        jsonschema.validate(document, SCHEMA)
        shard = document["shard"]
        taken = len(shards.mine(index))
        assert {k: shard[k] for k in ("index", "total", "repositories", "selected")} == {
            "index": index, "total": 3, "repositories": taken, "selected": 9}
        assert {d["repository"] for d in document["decisions"]} == {f"{shards.host}/{n}" for n in shards.mine(index)}
        fingerprints.add(shard["rules"])
        assert f"Shard {index}/3: {taken} of 9 repositories selected by the rules" in shards.summaries[index - 1]
        assert f"shard {index}/3: {taken} of 9 repositories" in shards.pages[index - 1]
    assert len(fingerprints) == 1 and next(iter(fingerprints)).startswith("sha256:")


def test_a_run_without_shards_says_it_was_none(shards: Shards) -> None:
    report = shards.tmp / "whole.json"
    code, _out, err = run_cli("cleanup", "--registry", shards.host, "--repository", shards.names[0], *ARGS,
                              "--report", str(report), cwd=shards.tmp)
    assert code == 0, err
    document = json.loads(report.read_text())
    jsonschema.validate(document, SCHEMA)
    assert document["shard"] is None and "partial" not in document


def test_every_shard_merges_into_one_report_with_the_shards_counted(shards: Shards) -> None:
    code, err, output = shards.merge(*shards.reports)
    assert code == 0, err
    assert "warning" not in err
    document = json.loads(output.read_text())
    jsonschema.validate(document, SCHEMA)
    assert {k: v for k, v in document["shards"].items() if k != "rules"} == {
        "total": 3, "merged": ["1/3", "2/3", "3/3"], "missing": [], "repositories": 9, "selected": 9}
    assert "partial" not in document and "shard" not in document
    assert document["summary"]["would_remove"] == 9


def test_a_missing_shard_is_refused_naming_it(shards: Shards) -> None:
    code, err, output = shards.merge(shards.reports[0], shards.reports[2])
    assert code == 2
    assert err.strip().splitlines() == [
        "ci-env: error: shard 2/3 is missing: give every shard's report, or pass --allow-partial to merge these 2 "
        "(the merged report is then partial and names the missing shards)"]
    assert not output.exists()
    code, err, _output = shards.merge(shards.reports[1])
    assert code == 2 and "shards 1/3 and 3/3 are missing" in err


def test_allow_partial_merges_what_is_there_and_says_which_shards_are_missing(shards: Shards) -> None:
    code, err, output = shards.merge(shards.reports[0], shards.reports[2], extra=("--allow-partial",))
    assert code == 0, err
    assert "ci-env: warning: the merged report is partial: 1 shard missing (2/3)" in err
    document = json.loads(output.read_text())
    jsonschema.validate(document, SCHEMA)
    assert document["shards"]["merged"] == ["1/3", "3/3"] and document["shards"]["missing"] == ["2/3"]
    assert document["shards"]["repositories"] == len(shards.mine(1)) + len(shards.mine(3))
    assert document["partial"] == {"stopped_by": "missing-shards", "journal": None,
                                   "runs": [{"shard": "2/3", "stopped_by": "missing-shard", "journal": None}]}


def test_the_merged_partial_gives_each_parts_own_reason(shards: Shards) -> None:
    def stopped(document: dict[str, Any]) -> None:
        document["partial"] = {"stopped_by": "time-budget", "journal": "/state/shard-1.jsonl"}

    first = shards.copy(shards.reports[0], stopped)
    code, err, output = shards.merge(first, shards.reports[1], extra=("--allow-partial",))
    assert code == 0, err
    document = json.loads(output.read_text())
    jsonschema.validate(document, SCHEMA)
    assert document["partial"] == {
        "stopped_by": "several", "journal": "/state/shard-1.jsonl",
        "runs": [{"report": str(first), "shard": "1/3", "stopped_by": "time-budget", "journal": "/state/shard-1.jsonl"},
                 {"shard": "3/3", "stopped_by": "missing-shard", "journal": None}]}

    code, err, output = shards.merge(first, *shards.reports[1:])  # every shard there: the budget alone
    assert code == 0, err
    partial = json.loads(output.read_text())["partial"]
    assert partial["stopped_by"] == "time-budget" and [run["shard"] for run in partial["runs"]] == ["1/3"]


def test_a_shard_given_twice_is_refused_naming_it(shards: Shards) -> None:
    again = shards.copy(shards.reports[1], lambda document: None)
    code, err, output = shards.merge(*shards.reports, again, extra=("--allow-partial",))
    assert code == 2
    assert err.strip().splitlines() == [
        f"ci-env: error: shard 2/3 is given twice ({shards.reports[1]} and {again}): give each shard's report once"]
    assert not output.exists()


def test_shards_of_another_count_or_other_rules_are_refused(shards: Shards) -> None:
    other = shards.tmp / "of-two.json"
    code, _out, err = run_cli("cleanup", "--registry", shards.host, "--repository", shards.names[0].split("/")[0] + "/",
                              *ARGS, "--shard", "1/2", "--report", str(other), cwd=shards.tmp)
    assert code == 0, err
    code, err, output = shards.merge(shards.reports[1], other, extra=("--allow-partial",))
    assert code == 2 and not output.exists()
    assert (f"{shards.reports[1]} is shard 2/3 and {other} shard 1/2: shards of different counts are not one "
            "cleanup") in err

    rules = shards.tmp / "other-rules.json"
    code, _out, err = run_cli("cleanup", "--registry", shards.host, "--repository", shards.names[0].split("/")[0] + "/",
                              "--rule", "keep-last=2", *ARGS[2:], "--shard", "2/3", "--report", str(rules),
                              cwd=shards.tmp)
    assert code == 0, err
    code, err, output = shards.merge(shards.reports[0], rules, shards.reports[2])
    assert code == 2 and not output.exists()
    assert f"{shards.reports[0]} and {rules} ran different rules or --registry" in err


def test_a_shards_report_and_a_whole_runs_report_are_refused(shards: Shards) -> None:
    whole = shards.copy(shards.reports[1], lambda document: document.update(shard=None))
    code, err, output = shards.merge(shards.reports[0], whole, shards.reports[2])
    assert code == 2 and not output.exists()
    assert f"{shards.reports[0]} is shard 1/3 of a cleanup by rules and {whole} is no shard's report" in err


def test_reports_of_an_older_ci_env_merge_with_a_warning(shards: Shards) -> None:
    older = [shards.copy(report, lambda document: document.pop("shard")) for report in shards.reports[:2]]
    code, err, output = shards.merge(*older)
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert warnings == [f"ci-env: warning: {path} does not say which shard it is (written by an older ci-env): "
                        "merged without checking that every shard is there once" for path in older]
    document = json.loads(output.read_text())
    jsonschema.validate(document, SCHEMA)
    assert "shards" not in document and "partial" not in document
    assert len(document["decisions"]) == 2 * (len(shards.mine(1)) + len(shards.mine(2)))


def _set(path: str, value: Any) -> Any:
    """A change of a report document: the field at ``path`` (dotted; ``decisions.0``: an item) set to ``value``."""
    def change(document: Any) -> None:
        *parents, last = path.split(".")
        for key in parents:
            document = document[int(key)] if isinstance(document, list) else document[key]
        if isinstance(document, list):
            document[int(last)] = value
        else:
            document[last] = value
    return change


HOSTILE = [  # a change of shard 2/3's report, and the field the refusal names
    (_set("shard", "2/3"), "shard is not null or an object with index, total (1 to 10000)"),
    (_set("shard.total", 10 ** 9), "shard is not null or an object with index, total (1 to 10000)"),
    (_set("shard.index", 7), "shard is not null or an object with index, total (1 to 10000)"),
    (_set("shard.index", 0), "shard is not null or an object with index, total (1 to 10000)"),
    (_set("started", 5), "started is not a time"),
    (lambda document: document.pop("finished"), "finished is not a time"),
    (_set("summary", []), "summary is not an object of counts"),
    (_set("summary.kept", "lots"), "summary is not an object of counts"),
    (_set("summary.kept", float("nan")), "summary is not an object of counts"),
    (_set("decisions", "all of them"), "decisions is not a list of objects"),
    (_set("decisions.0", 1), "decisions is not a list of objects"),
    (_set("decisions.0.repository", ["a"]), "decisions[1] is not an object with kind, repository and stored_tag"),
    (_set("images_repo", {"a": 1}), "images_repo is not a string"),
    (_set("skipped", 5), "skipped is not a list of objects"),
    (_set("partial", "yes"), "partial is not an object with stopped_by and journal"),
    (_set("rate_limits", {"rate_limited_answers": 0, "waits": 0, "waited_seconds": 0, "hosts": [{"host": "h"}]}),
     "rate_limits.hosts is not a list of objects with host and its counts"),
    (_set("bytes", {"images": 5}), "bytes is not an object with freed"),
]


@pytest.mark.parametrize(("change", "field"), HOSTILE)
def test_a_report_of_the_wrong_shape_is_one_line_and_exit_2_and_nothing_is_written(
        shards: Shards, change: Any, field: str) -> None:
    """A report is another job's artifact: a field of another type than the schema's is refused naming it, never
    a traceback (a shard total of 10**9 listed its missing shards until the memory ran out)."""
    hostile = shards.copy(shards.reports[1], change)
    code, err, output = shards.merge(shards.reports[0], hostile, shards.reports[2])
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and not output.exists(), err
    assert lines[0].startswith(f"ci-env: error: the report {str(hostile)!r} is not one cleanup --report wrote: {field}")


def test_a_report_that_is_no_regular_file_or_a_nesting_bomb_is_refused(shards: Shards) -> None:
    import os

    bomb = shards.tmp / "bomb.json"
    bomb.write_text("[" * 100_000 + "]" * 100_000)
    fifo = shards.tmp / f"fifo-{uuid.uuid4().hex[:6]}.json"
    os.mkfifo(fifo)  # opened for reading, it would wait for a writer for ever
    for path, why in ((bomb, "is not JSON"), (fifo, "is not a regular file"), (Path("/dev/zero"), "is not a regular "
                                                                                                   "file")):
        code, err, output = shards.merge(shards.reports[0], path)
        assert code == 2 and not output.exists(), err
        assert err.strip().splitlines() == [f"ci-env: error: the report {str(path)!r} {why}: give the files cleanup "
                                            "--report wrote"]


def test_a_shard_count_over_the_limit_is_refused(tmp_path: Path) -> None:
    code, _out, err = run_cli("cleanup", "--registry", "localhost:1", "--repository", "a/b", *ARGS,
                              "--shard", "1/1000000000", cwd=tmp_path)
    assert code == 2 and "--shard '1/1000000000': 1000000000 shards is over the 10000" in err, err
