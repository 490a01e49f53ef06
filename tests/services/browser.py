"""A real headless browser for the HTML report's tests: the distribution's Chromium driven by Playwright.

Never downloads a browser: Chromium comes from the distribution's packages (``scripts/test`` installs it).
Under ``CI=true`` a missing Chromium or Playwright fails the run; elsewhere the tests skip with the reason.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: Chromium's flags: headless, no sandbox (containers), nothing contacted besides the page
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    """The distribution's Chromium, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def browser() -> Iterator[Any]:
    """A launched Chromium (Playwright's ``Browser``); RuntimeError saying what is missing."""
    path = chromium_path()
    if path is None:
        raise RuntimeError("chromium is not installed (the HTML report's browser tests); scripts/test installs it")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise RuntimeError("the playwright package is not installed (pip install playwright)") from None
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, args=FLAGS)
        try:
            yield launched
        finally:
            launched.close()


def open_page(launched: Any, url: str, width: int = 1366, height: int = 768) -> tuple[Any, list[str]]:
    """The page at ``url`` once its script has run (``body[data-ready=true]``), and the console errors and
    uncaught exceptions collected (kept collecting while the page is used)."""
    page = launched.new_page(viewport={"width": width, "height": height})
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: None if request.url.startswith(("file:", "data:", "about:"))
            else errors.append(f"request to {request.url}"))
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]", timeout=60_000)
    return page, errors
