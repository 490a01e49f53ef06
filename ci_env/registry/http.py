"""The HTTP session every registry and vendor API call goes through.

One ``requests.Session`` per client, with connection reuse, a default timeout,
and retries with exponential backoff on 429, 5xx and dropped connections that
honour ``Retry-After``. Only idempotent methods (GET, HEAD, PUT, DELETE, OPTIONS)
are retried automatically; a POST is never repeated blindly.
"""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

DEFAULT_TIMEOUT = 30.0
RETRY_STATUSES = (429, 500, 502, 503, 504)
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
USER_AGENT = "ci-env"


class _TimeoutAdapter(HTTPAdapter):
    """An adapter that applies a default timeout to every request."""

    def __init__(self, *args: Any, timeout: float = DEFAULT_TIMEOUT, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timeout = timeout

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)


def retry_policy(total: int = 6, backoff: float = 0.5, max_backoff: float = 30.0) -> Retry:
    """The retry policy: ``total`` attempts on 429/5xx/connection errors, idempotent methods only."""
    return Retry(
        total=total,
        connect=total,
        read=total,
        status=total,
        other=0,
        backoff_factor=backoff,
        backoff_max=max_backoff,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=IDEMPOTENT_METHODS,
        respect_retry_after_header=True,
        raise_on_status=False,
        raise_on_redirect=False,
    )


def make_session(
    timeout: float = DEFAULT_TIMEOUT, retries: int = 6, backoff: float = 0.5, pool_size: int = 16
) -> requests.Session:
    """A new session with connection pooling, the default timeout and the retry policy."""
    session = requests.Session()
    adapter = _TimeoutAdapter(
        timeout=timeout,
        max_retries=retry_policy(retries, backoff),
        pool_connections=pool_size,
        pool_maxsize=pool_size,
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session
