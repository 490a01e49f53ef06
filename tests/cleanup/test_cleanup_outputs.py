"""What a person sees of a cleanup run (``python -m ci_env cleanup``, the real registry): the progress bar on a
terminal (never on stdout), the HTML report next to the JSON one with the same totals, and bad paths refused
before anything is removed."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

import pytest

from ci_env.cleanup.sizes import human
from tests.cleanup.test_cleanup_e2e import run_cli
from tests.cleanup.world import World, publish_scenario
from tests.cli import environ_without


@pytest.fixture
def args(tmp_path: Path, world: World) -> list[str]:
    scenario = publish_scenario(world, tmp_path / "project")
    return ["-i", str(world.images_repo), "-s", str(world.stages), "--dir", scenario.directory, "--without-kube"]


def test_on_a_terminal_progress_is_a_bar_on_stderr_and_stdout_stays_the_plan(
    args: list[str], tmp_path: Path,
) -> None:
    leader, follower = pty.openpty()
    env = {**environ_without(), "DOCKER_CONFIG": str(tmp_path / "none"), "TERM": "xterm", "COLUMNS": "120"}
    process = subprocess.Popen([sys.executable, "-m", "ci_env", "cleanup", *args, "--dry-run"], env=env,
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=follower, text=True)
    os.close(follower)
    stderr = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        stderr += chunk
    stdout, _ = process.communicate(timeout=60)
    os.close(leader)
    assert process.returncode == 0, stderr.decode()
    text = stderr.decode()
    assert re.search(r"\r\x1b\[2Kci-env: resolving the stages in \S+ \[#+\] 9/9 [\d,]+/s", text)
    assert re.search(r"\r\x1b\[2Kci-env: measuring the manifests to remove \[#+\] 5/5", text)
    assert "\r" not in stdout and "\x1b" not in stdout and "ci-env: resolving" not in stdout
    assert "feature-a" in stdout and "would-remove" in stdout


@pytest.mark.parametrize("measure_kept", ["false", "true"])
def test_the_html_report_step_summary_and_status_line_give_the_json_reports_totals(
    args: list[str], tmp_path: Path, measure_kept: str,
) -> None:
    """One run as a nightly job runs it: the HTML report, the step summary and the status lines show the same
    totals and bytes freed as the JSON report (an upper bound, said so, unless the kept manifests are read)."""
    report, page = tmp_path / "report.json", tmp_path / "out" / "cleanup.html"
    page.parent.mkdir()
    env = {"GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"), "GITHUB_SERVER_URL": "https://github.com",
           "GITHUB_REPOSITORY": "acme/app", "GITHUB_RUN_ID": "7", "WERF_CLEANUP_MEASURE_KEPT": measure_kept}
    result = run_cli("cleanup", *args, "--report", str(report), "--html-report", str(page), cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    document = json.loads(report.read_text())
    totals, figures = document["summary"], document["bytes"]
    assert totals["removed"] > 0 and totals["kept"] > 0 and figures["freed"] > 0
    assert figures["at_most"] is (measure_kept == "false")
    freed = ("at most " if figures["at_most"] else "") + human(figures["freed"])
    html = page.read_text()
    for key in ("delete", "removed", "kept", "failed", "absent"):
        shown = re.search(rf'data-total="{key}"[^>]*>([^<]+)<', html)
        assert shown is not None and int(shown.group(1).replace(",", "")) == totals[key]
    card = re.search(r'data-total="freed" data-bytes="(\d+)">([^<]+)<', html)
    assert card is not None and int(card.group(1)) == figures["freed"] and card.group(2) == freed
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # nothing loaded from elsewhere

    summary = (tmp_path / "summary.md").read_text()
    assert "HTML report: [cleanup.html](https://github.com/acme/app/actions/runs/7#artifacts)" in summary
    assert (f"**{totals['delete']} to remove**, {totals['kept']} kept: {totals['removed']} removed, "
            f"{totals['absent']} already gone, {totals['failed']} failed; "
            f"**{freed} freed once the registry's garbage collection runs**") in summary
    per_image = dict(re.findall(r"^\| (\S+) \| \d+ \| \d+ \| \d+ \| ([^|]+) \|$", summary, re.MULTILINE))
    assert per_image == {i["image"]: human(i["freed"]) for i in figures["images"]}

    lines = result.stderr.splitlines()
    assert f"plan: {totals['kept']} kept, {totals['delete']} to remove" in "\n".join(lines)
    status = [line for line in lines if line.startswith("cleanup: ")][-1]
    assert status.startswith(f"cleanup: {totals['removed']} removed, {totals['absent']} already gone, "
                             f"{totals['failed']} failed")
    assert status.endswith(f"; {freed} freed once the registry's garbage collection runs")


def test_an_html_report_that_cannot_be_written_stops_before_anything_is_removed(
    args: list[str], tmp_path: Path, world: World,
) -> None:
    before = world.tags("api")
    result = run_cli("cleanup", *args, "--html-report", str(tmp_path / "missing" / "r.html"), cwd=tmp_path)
    assert result.returncode == 2 and "--html-report" in result.stderr and "Traceback" not in result.stderr
    assert world.tags("api") == before
