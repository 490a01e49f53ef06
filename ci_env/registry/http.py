"""The HTTP session every registry and vendor API call goes through.

One ``requests.Session`` per client, with connection reuse, a default timeout,
and retries with exponential backoff on 429, 5xx and dropped connections that
honour ``Retry-After`` within the bounds of ``ci_env.registry.waits`` (at most 60 s
per wait, 5 minutes in all per request). Only idempotent methods (GET, HEAD, PUT,
DELETE, OPTIONS) are retried automatically; a POST is never repeated blindly.
"""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ci_env.registry.waits import Sleeper, WaitBudget, retry_after_seconds

DEFAULT_TIMEOUT = 30.0
RETRY_STATUSES = (429, 500, 502, 503, 504)
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
USER_AGENT = "ci-env"
MAX_BACKOFF = 30.0


class _TimeoutAdapter(HTTPAdapter):
    """An adapter that applies a default timeout to every request."""

    def __init__(self, *args: Any, timeout: float = DEFAULT_TIMEOUT, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timeout = timeout

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)


class BoundedRetry(Retry):
    """urllib3's ``Retry`` whose waits go through one ``WaitBudget`` per request.

    urllib3 alone sleeps whatever ``Retry-After`` asks (up to 6 hours per attempt on urllib3 2, without limit
    on 1.26) and raises on a ``Retry-After`` it cannot parse. Here each wait is capped, the waits of a request
    stop at the budget (the last answer is then returned as is), and an unreadable ``Retry-After`` falls back
    to the exponential backoff. ``sleep`` (tests inject one) does the actual waiting.
    """

    def __init__(self, *args: Any, sleep: Sleeper | None = None, waited: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sleeper = sleep
        self.waited = waited

    def new(self, **kw: Any) -> BoundedRetry:
        kw.setdefault("sleep", self.sleeper)
        kw.setdefault("waited", self.waited)
        return super().new(**kw)

    def _budget(self) -> WaitBudget:
        return WaitBudget(sleep=self.sleeper, waited=self.waited)

    def is_exhausted(self) -> bool:
        return super().is_exhausted() or self._budget().spent

    def sleep(self, response: Any = None) -> None:
        wanted: float | None = None
        if self.respect_retry_after_header and response is not None:
            wanted = retry_after_seconds(response.headers.get("Retry-After"))
        if wanted is None:
            wanted = min(self.get_backoff_time(), MAX_BACKOFF)
        budget = self._budget()
        budget.wait(wanted)
        self.waited = budget.waited


def retry_policy(total: int = 6, backoff: float = 0.5, sleep: Sleeper | None = None) -> Retry:
    """The retry policy: ``total`` attempts on 429/5xx/connection errors, idempotent methods only."""
    return BoundedRetry(
        total=total,
        connect=total,
        read=total,
        status=total,
        other=0,
        backoff_factor=backoff,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=IDEMPOTENT_METHODS,
        respect_retry_after_header=True,
        raise_on_status=False,
        raise_on_redirect=False,
        sleep=sleep,
    )


def make_session(
    timeout: float = DEFAULT_TIMEOUT, retries: int = 6, backoff: float = 0.5, pool_size: int = 16,
    sleep: Sleeper | None = None,
) -> requests.Session:
    """A new session with connection pooling, the default timeout and the retry policy.

    ``sleep`` replaces ``time.sleep`` for the waits between retries (tests record them instead of waiting).
    """
    session = requests.Session()
    adapter = _TimeoutAdapter(
        timeout=timeout,
        max_retries=retry_policy(retries, backoff, sleep),
        pool_connections=pool_size,
        pool_maxsize=pool_size,
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


def wait_budget(session: requests.Session) -> WaitBudget:
    """A fresh ``WaitBudget`` for a retry loop written by hand, sleeping as ``session``'s retries do."""
    adapter = session.get_adapter("https://")
    retry = getattr(adapter, "max_retries", None)
    return WaitBudget(sleep=retry.sleeper if isinstance(retry, BoundedRetry) else None)
