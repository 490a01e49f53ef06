"""The HTML report as a person sees it: opened in a real headless Chromium, with the JavaScript console checked
for errors, its totals read off the page and compared with the JSON report, its filters clicked, hostile names
shown as text, and screenshots at a laptop's width and with 50,000 tags."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ci_env.cleanup import html_report
from tests.cleanup.sample_report import HOSTILE_IMAGE, sample_result
from tests.services import unavailable
from tests.services.browser import browser, open_page


@pytest.fixture(scope="module")
def launched() -> Iterator[Any]:
    try:
        with browser() as chromium:
            yield chromium
    except RuntimeError as exc:
        unavailable(str(exc))


def _write(tmp_path: Path, tags: int, **kwargs: Any) -> tuple[Path, dict[str, Any]]:
    result = sample_result(tags, **kwargs)
    page, report = tmp_path / "cleanup.html", tmp_path / "report.json"
    html_report.write(page, result)
    result.write_json(report)
    return page, json.loads(report.read_text())


def _number(page: Any, selector: str) -> int:
    return int(page.text_content(selector).replace(",", ""))


def test_the_page_shows_the_json_reports_totals_and_its_filters_work(launched: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    path, document = _write(tmp_path, 600)
    page, errors = open_page(launched, path.as_uri())
    summary = document["summary"]
    for key in ("delete", "removed", "kept", "failed", "absent"):
        assert _number(page, f'[data-total="{key}"]') == summary[key], key
    assert page.get_attribute('[data-total="freed"]', "data-bytes") == str(document["bytes"]["freed"])
    assert page.text_content('[data-total="freed"]').startswith("at most ")  # kept images' layers were not read
    assert _number(page, "#total") == _number(page, "#shown") == len(document["decisions"])
    assert page.locator("#rows tr.row").count() == 100  # a page at a time
    page.screenshot(path=str(tmp_path / "laptop.png"))

    page.uncheck('input[data-outcome="kept"]')
    assert _number(page, "#shown") == summary["removed"] + summary["failed"]
    assert set(page.locator("#rows .badge").all_text_contents()) <= {"removed", "failed"}
    page.check('input[data-outcome="kept"]')
    page.select_option("#f-group", label="git-commit strategy policy")
    commit_rows = [d for d in document["decisions"] if d["strategy"] == "git-commit"
                   and d["basis"]["rule"] == "strategy"]
    assert _number(page, "#shown") == len(commit_rows)
    page.click("#f-reset")
    page.select_option("#f-image", label="web")
    page.fill("#f-text", "feature-1")
    expected = [d for d in document["decisions"] if d["image"] == "web" and "feature-1" in d["tag"]]
    expect(page.locator("#shown")).to_have_text(str(len(expected)))  # the search waits for typing to pause
    first = page.locator("#rows tr.row").first
    tag = first.locator("td.tag").text_content()
    first.click()
    detail = page.locator("#rows tr.detail").text_content()
    digest = next(d["digest"] for d in document["decisions"] if d["image"] == "web" and d["tag"] == tag)
    assert f"digest: {digest}" in detail and "reason: " in detail
    circles = page.locator('.timeline[data-image="api"] circle')
    assert circles.count() == sum(1 for d in document["decisions"] if d["image"] == "api")
    assert errors == []


def test_hostile_names_and_reasons_stay_text(launched: Any, tmp_path: Path) -> None:
    path, document = _write(tmp_path, 200, hostile=True)
    dialogs: list[str] = []
    page, errors = open_page(launched, path.as_uri())

    def dismiss(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    assert page.locator("img").count() == 0 and page.locator("script").count() == 2
    page.select_option("#f-image", label=HOSTILE_IMAGE)
    assert page.locator("#rows tr.row td").first.text_content() == HOSTILE_IMAGE
    page.click("#f-reset")
    page.uncheck('input[data-outcome="kept"]')
    page.uncheck('input[data-outcome="removed"]')
    assert '<b>"x"</b>' in page.locator("#rows td.reason").first.text_content()
    assert page.locator("b").count() == 0 and dialogs == [] and errors == []
    assert any(d["image"] == HOSTILE_IMAGE for d in document["decisions"])


def test_fifty_thousand_tags_open_filter_and_draw_their_timelines(launched: Any, tmp_path: Path) -> None:
    path, document = _write(tmp_path, 50_000)
    page, errors = open_page(launched, path.as_uri())
    assert _number(page, "#total") == 50_000 and page.locator("#rows tr.row").count() == 100
    assert _number(page, '[data-total="removed"]') == document["summary"]["removed"]
    page.screenshot(path=str(tmp_path / "fifty-thousand.png"))
    bars = page.locator('.timeline[data-image="worker"] g.mark')
    assert 50 <= bars.count() <= 60  # 12,500 tags in periods, not 12,500 dots
    bars.nth(10).click()
    shown = _number(page, "#shown")
    assert 0 < shown < 12_500 and page.text_content("#f-period").startswith("published ")
    assert set(page.locator("#rows tr.row td:first-child").all_text_contents()) == {"worker"}
    page.select_option("#f-image", label="any")
    page.click("#next")
    assert page.text_content("#page") == f"page 2 of {(_number(page, '#shown') + 99) // 100}"
    assert errors == []
