"""The HTML report at scale: generate and render N tags (default 50,000), then open it in the headless Chromium.

Prints the file size, the time to build the Result and to write the page, and in the browser the time to load,
to first render (the table) and to full render (timelines too), and to filter (uncheck an outcome, type a tag).

    python bench/html_report_bench.py [--tags 50000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ci_env.cleanup import html_report
from tests.cleanup.sample_report import sample_result
from tests.services.browser import browser, open_page


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tags", type=int, default=50_000)
    args = parser.parse_args()
    numbers: dict[str, float | int] = {"tags": args.tags}
    began = time.perf_counter()
    result = sample_result(args.tags)
    numbers["result_s"] = round(time.perf_counter() - began, 3)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cleanup.html"
        began = time.perf_counter()
        html_report.write(path, result)
        numbers["write_s"] = round(time.perf_counter() - began, 3)
        numbers["file_mb"] = round(path.stat().st_size / 1e6, 2)
        numbers["bytes_per_tag"] = round(path.stat().st_size / args.tags)
        with browser() as chromium:
            began = time.perf_counter()
            page, errors = open_page(chromium, path.as_uri())
            numbers["browser_load_s"] = round(time.perf_counter() - began, 3)
            numbers["first_render_ms"] = float(page.get_attribute("body", "data-first-render"))
            numbers["full_render_ms"] = float(page.get_attribute("body", "data-rendered"))
            began = time.perf_counter()
            page.uncheck('input[data-outcome="kept"]')  # the change handler filters and redraws before it returns
            numbers["filter_outcome_ms"] = round((time.perf_counter() - began) * 1000, 1)
            began = time.perf_counter()
            page.fill("#f-text", "feature-4")
            page.locator("#shown").filter(has_not_text=page.text_content("#shown")).wait_for()
            numbers["filter_text_ms_incl_120ms_debounce"] = round((time.perf_counter() - began) * 1000, 1)
            numbers["console_errors"] = len(errors)
    print(json.dumps(numbers))


if __name__ == "__main__":
    main()
