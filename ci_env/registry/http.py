"""The HTTP session every registry and vendor API call goes through.

One ``requests.Session`` per client, with connection reuse, a default timeout,
and retries with exponential backoff on 429, 5xx and dropped connections that
honour ``Retry-After`` within the bounds of ``ci_env.registry.waits`` (at most 60 s
per wait, 5 minutes in all per request). Only idempotent methods (GET, HEAD, PUT,
DELETE, OPTIONS) are retried automatically; a POST is never repeated blindly.

Every request first asks the shared budget of its host (``ci_env.registry.budget``): a rate limit one
worker meets pauses every worker talking to that host, and ``--max-requests-per-second`` paces them all.
The pool keeps up to ``POOL_SIZE`` connections alive per host, as many as cleanup's most workers.

Redirects that a session follows by itself (the vendor APIs' calls; the registry client follows its own) never
carry a credential to another host or scheme: every header that is not known to be harmless is dropped (requests
alone drops only ``Authorization``, so GitLab's ``PRIVATE-TOKEN``/``JOB-TOKEN`` would follow), and a request
whose body would be sent again there (a 307/308 of a login) is refused. A URL whose host is ambiguous (see
``ci_env.registry.origins.endpoint_of``), asked for or redirected to, is refused before anything is sent.

Nothing is taken from outside the job's Docker config and ci-env's options: sessions do not trust the
environment as requests does by default (no ``~/.netrc``, whose ``default`` entry would go to every host). The
two things users do set in the environment are applied explicitly: proxies (``HTTPS_PROXY``, ``HTTP_PROXY``,
``ALL_PROXY``, ``NO_PROXY``, lower-case too), decided again for every redirect target, and the CA bundle
(``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``).

A registry that is not there is one fast answer: a refused connection, an unknown host and a TLS failure are
never retried (``BoundedRetry.increment``) and ``failure_cause`` names the cause; 5xx answers, connection resets
and timeouts are retried.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ci_env.errors import RegistryError
from ci_env.registry.bodies import SafeJsonResponse, read_whole
from ci_env.registry.budget import Budgets, HostBudget, host_of, is_rate_limited, shared
from ci_env.registry.netfail import is_not_there
from ci_env.registry.origins import UnsafeUrl, ambiguity, describe_unsafe, endpoint_of
from ci_env.registry.waits import Sleeper, WaitBudget, retry_after_seconds

DEFAULT_TIMEOUT = 30.0
RETRY_STATUSES = (429, 500, 502, 503, 504)
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
USER_AGENT = "ci-env"
MAX_BACKOFF = 30.0
#: retries of a connection attempt that timed out (a refused or unknown host is never retried).
CONNECT_TIMEOUT_RETRIES = 1
#: connections kept alive per host: at least as many as the most workers a command runs (``--parallel`` 64).
POOL_SIZE = 64

#: the host budget of the request this thread is sending (its retries, inside urllib3, wait through it).
_sending = threading.local()


#: headers a followed redirect may carry to another host or scheme; any other header may hold a credential.
PORTABLE_HEADERS = frozenset({
    "accept", "accept-encoding", "accept-language", "user-agent", "content-type", "content-length",
    "transfer-encoding", "connection", "x-github-api-version",
})


class _TimeoutAdapter(HTTPAdapter):
    """An adapter that applies a default timeout to every request, sends each through its host's budget, and
    reads every body it is not asked to stream within the bounds of ``ci_env.registry.bodies`` (size and time)."""

    def __init__(self, *args: Any, timeout: float = DEFAULT_TIMEOUT, budgets: Budgets | None = None,
                 sleep: Sleeper | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timeout = timeout
        self.budgets = budgets
        self.sleeper = sleep

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, stream: bool = False, **kwargs: Any
    ) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        budget = (self.budgets or shared()).host(host_of(request.url or ""))
        with budget.slot():
            budget.before(request.method or "GET", self.sleeper)
            previous = getattr(_sending, "budget", None)
            _sending.budget = budget
            try:
                response = super().send(request, stream=True, **kwargs)
            finally:
                _sending.budget = previous
        budget.observe(response.status_code, response.headers)
        if not stream:
            read_whole(response)
        return response

    def build_response(self, req: requests.PreparedRequest, resp: Any) -> requests.Response:
        response = super().build_response(req, resp)
        response.__class__ = SafeJsonResponse  # a subclass adding only the json() guard
        return response


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

    def increment(
        self, method: str | None = None, url: str | None = None, response: Any = None,
        error: Exception | None = None, _pool: Any = None, _stacktrace: Any = None,
    ) -> BoundedRetry:
        """urllib3's count, except that a host that is not there (refused, unknown, unreachable) is not
        retried: the request fails at once (retrying changes nothing but the wait)."""
        if error is not None and is_not_there(error):
            from urllib3.exceptions import MaxRetryError

            raise MaxRetryError(_pool, url, error) from error
        return super().increment(method, url, response, error, _pool, _stacktrace)

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        """urllib3's rule, and a 403 with ``Retry-After`` (GitHub's secondary rate limit) is retried too."""
        if super().is_retry(method, status_code, has_retry_after):
            return True
        return status_code == 403 and has_retry_after and bool(self.total) and self._is_method_retryable(method)

    def sleep(self, response: Any = None) -> None:
        """Wait before the next attempt. A rate-limited answer pauses every worker of the host (the shared
        budget) for what it asks, within this request's bounds; other failures back off this request alone.
        Either way the next attempt then waits its turn in the host's budget."""
        wanted: float | None = None
        if self.respect_retry_after_header and response is not None:
            wanted = retry_after_seconds(response.headers.get("Retry-After"))
        if wanted is None:
            wanted = min(self.get_backoff_time(), MAX_BACKOFF)
        budget = self._budget()
        host: HostBudget | None = getattr(_sending, "budget", None)
        method = self.history[-1].method if self.history and self.history[-1].method else "GET"
        if host is not None and response is not None and is_rate_limited(response.status, response.headers):
            host.observe(response.status, response.headers)
            budget.waited += host.pause(budget.allowance(wanted))
            host.before(method, self.sleeper)
        else:
            if host is not None and response is not None:
                host.observe(response.status, response.headers)  # a 503's Retry-After holds the others too
            budget.wait(wanted)
            if host is not None:
                host.before(method, self.sleeper)
        self.waited = budget.waited


class CredentialScopedSession(requests.Session):
    """A session whose followed redirects never take a credential (a header or a body) to another origin, that
    refuses URLs whose host is ambiguous, and that takes from the environment only proxies and the CA bundle."""

    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False  # no ~/.netrc: credentials come from the Docker config and ci-env's options

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        """requests' ``request``, refusing (``RegistryError``) a URL whose host is ambiguous."""
        text = url.decode() if isinstance(url, bytes) else str(url)
        try:
            endpoint_of(text)
        except UnsafeUrl as exc:
            verb = method.decode() if isinstance(method, bytes) else str(method)
            raise RegistryError(
                f"refusing {verb} to a URL whose host is ambiguous ({describe_unsafe(text)}: {exc}); no request "
                "was sent"
            ) from None
        except ValueError:
            pass  # requests' own error for what is not an http(s) URL
        return super().request(method, url, *args, **kwargs)

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        """The ``Location`` of a redirect, refused (``RegistryError``) when its host is ambiguous."""
        target = super().get_redirect_target(resp)
        if target:
            absolute = urljoin(str(resp.url or ""), target)
            problem = ambiguity(target)  # before joining: joining drops tabs and newlines
            if problem is None:
                try:
                    endpoint_of(absolute)
                except UnsafeUrl as exc:
                    problem = str(exc)
                except ValueError:
                    pass
            if problem:
                before = str(resp.url or "")
                raise RegistryError(
                    f"{_origin(before)} redirected {resp.request.method} {_path(before)} to a URL whose host is "
                    f"ambiguous ({describe_unsafe(target)}: {problem}); refusing to follow it, no request was sent "
                    "there"
                )
        return target

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:
        """requests' merge, with the environment's proxies for ``url`` and its CA bundle applied explicitly."""
        merged = dict(proxies or {})
        for key, value in environment_proxies(str(url)).items():
            merged.setdefault(key, value)
        if verify is True or verify is None:
            verify = ca_bundle() or verify
        return super().merge_environment_settings(url, merged, stream, verify, cert)

    def rebuild_proxies(self, prepared_request: requests.PreparedRequest, proxies: Any) -> dict[str, str]:
        """The proxies of a redirect target, decided again from the environment for its own URL."""
        fresh = environment_proxies(str(prepared_request.url or ""))
        # types-requests leaves requests' redirect hooks (rebuild_proxies, should_strip_auth, rebuild_auth) untyped
        rebuilt: dict[str, str] = super().rebuild_proxies(prepared_request, fresh)  # type: ignore[no-untyped-call]
        return rebuilt

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: requests.Response) -> None:
        """Before following ``response``'s redirect: when it leaves the origin (host, port or scheme, as
        requests judges it), drop every header not in ``PORTABLE_HEADERS`` and refuse to send a body again."""
        before, after = str(response.request.url or ""), str(prepared_request.url or "")
        if self.should_strip_auth(before, after):  # type: ignore[no-untyped-call]
            if prepared_request.body is not None:
                raise RegistryError(
                    f"{_origin(before)} redirected {prepared_request.method} {_path(before)} to another host or "
                    f"scheme ({_origin(after)}) with its body; ci-env never sends a request body (it may hold "
                    "credentials) anywhere but where it was meant for"
                )
            for name in list(prepared_request.headers):
                if name.lower() not in PORTABLE_HEADERS:
                    del prepared_request.headers[name]
        super().rebuild_auth(prepared_request, response)  # type: ignore[no-untyped-call]


class ApiSession(CredentialScopedSession):
    """The session of the vendor APIs: a request that fails (connection, TLS, an answer cut short, too many
    redirects) raises ``RegistryError`` naming the host and path, never requests' own exception."""

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        text = url.decode() if isinstance(url, bytes) else str(url)
        verb = method.decode() if isinstance(method, bytes) else str(method)
        try:
            return super().request(method, url, *args, **kwargs)
        except requests.exceptions.TooManyRedirects:
            raise RegistryError(f"{_origin(text)} redirected {verb} {_path(text)} too many times") from None
        except requests.RequestException as exc:
            raise RegistryError(
                f"cannot reach {_origin(text)} ({verb} {_path(text)}): {failure_cause(exc)}"
            ) from None


def failure_cause(exc: BaseException) -> str:
    """What went wrong with a request that got no usable answer, for a message: ``connection refused``,
    ``unknown host``, ``TLS certificate verify failed ... (use --insecure-registry or REQUESTS_CA_BUNDLE)``, a
    timeout, or the answer cut short after retries. Secret-free (no URL)."""
    from ci_env.registry.netfail import cause

    return cause(exc) or f"{type(exc).__name__} after retries (the connection failed or the answer was cut short)"


def environment_proxies(url: str) -> dict[str, str]:
    """The proxies the process environment sets for ``url`` (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``,
    either case), none when ``NO_PROXY``/``no_proxy`` covers its host; requests' own helpers decide."""
    from requests.utils import get_environ_proxies

    return dict(get_environ_proxies(url))


def ca_bundle(env: Mapping[str, str] | None = None) -> str | None:
    """The CA bundle the environment names for TLS verification (``REQUESTS_CA_BUNDLE``, else
    ``CURL_CA_BUNDLE``, as requests and curl read them), or None."""
    source = os.environ if env is None else env
    return source.get("REQUESTS_CA_BUNDLE") or source.get("CURL_CA_BUNDLE") or None


def _origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, without user info."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"[:120]


def _path(url: str) -> str:
    """The path of ``url`` without its query (which may carry secrets)."""
    return urlsplit(url).path[:200] or "/"


def retry_policy(total: int = 6, backoff: float = 0.5, sleep: Sleeper | None = None) -> Retry:
    """The retry policy: ``total`` attempts on 429/5xx and dropped connections, idempotent methods only.

    A host that is not there (refused, unknown, unreachable) and a TLS failure are not retried; a connection
    attempt that times out is tried once more.
    """
    return BoundedRetry(
        total=total,
        connect=min(total, CONNECT_TIMEOUT_RETRIES),
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
    timeout: float = DEFAULT_TIMEOUT, retries: int = 6, backoff: float = 0.5, pool_size: int = POOL_SIZE,
    sleep: Sleeper | None = None, budgets: Budgets | None = None,
    session_class: type[CredentialScopedSession] = CredentialScopedSession,
) -> requests.Session:
    """A new session (a ``session_class``) with connection pooling (``pool_size`` kept-alive connections per
    host), the default timeout, the retry policy and the hosts' shared budgets (``budgets``, else the process's
    own).

    ``sleep`` replaces ``time.sleep`` for the waits between retries and in the budgets (tests record them);
    such a session, unless given ``budgets``, gets budgets of its own on a clock its sleeps move forward.
    """
    if sleep is not None and budgets is None:
        clock = _SleptClock(sleep)
        sleep = clock.sleep
        budgets = Budgets(clock=clock.now, wallclock=clock.wall, sleep=sleep)
    session = session_class()
    adapter = _TimeoutAdapter(
        timeout=timeout,
        budgets=budgets,
        sleep=sleep,
        max_retries=retry_policy(retries, backoff, sleep),
        pool_connections=16,
        pool_maxsize=pool_size,
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


class _SleptClock:
    """A clock that the recorded sleeps move forward (a session whose sleeps are recorded, not waited)."""

    def __init__(self, sleep: Sleeper) -> None:
        import time

        self._record = sleep
        self._slept = 0.0
        self._lock = threading.Lock()
        self._monotonic = time.monotonic
        self._time = time.time

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._slept += seconds
        self._record(seconds)

    def now(self) -> float:
        return self._monotonic() + self._slept

    def wall(self) -> float:
        return self._time() + self._slept


def wait_budget(session: requests.Session) -> WaitBudget:
    """A fresh ``WaitBudget`` for a retry loop written by hand, sleeping as ``session``'s retries do."""
    adapter = session.get_adapter("https://")
    retry = getattr(adapter, "max_retries", None)
    return WaitBudget(sleep=retry.sleeper if isinstance(retry, BoundedRetry) else None)
