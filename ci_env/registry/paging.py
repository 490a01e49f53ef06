"""Bounded pagination: every paginated listing (the Registry API's ``Link`` pages, the vendors' page numbers,
cursors and ``next`` URLs) ends with an error, never a loop, when a server repeats a page or never stops.
"""

from __future__ import annotations

from ci_env.errors import RegistryError

#: pages one listing may take at most (a million tags at 100 per page).
MAX_PAGES = 10_000


class PageGuard:
    """Counts the pages of one listing (``what``, for messages) and the cursors that led to them."""

    def __init__(self, what: str, first: str | None = None, limit: int | None = None) -> None:
        self.what = what
        self.limit = MAX_PAGES if limit is None else limit
        self.pages = 1
        self._seen: set[str] = set() if first is None else {first}

    def advance(self, cursor: str) -> None:
        """Record that the next page is ``cursor`` (a URL, page number or token).

        RegistryError when the server sent that cursor before (it would loop) or the listing would take more
        than ``limit`` pages.
        """
        if cursor in self._seen:
            raise RegistryError(
                f"{self.what}: the server sent page {self.pages + 1} with a cursor it already sent "
                f"(after {self.pages} pages); stopping instead of looping"
            )
        self._seen.add(cursor)
        self.pages += 1
        if self.pages > self.limit:
            raise RegistryError(
                f"{self.what}: the server still had more after {self.limit} pages; stopping (a listing that "
                "never ends)"
            )
