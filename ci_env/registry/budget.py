"""One request budget per host, shared by every worker of a run.

Every request a session of ``ci_env.registry.http`` sends asks the budget of its host first
(:meth:`HostBudget.before`), so:

- a server that says "slow down" stops every worker talking to it, not only the one it answered: a 429 or
  a rate-limit 403 with ``Retry-After`` (seconds or an HTTP date; Docker Hub's older ``X-Retry-After`` as a
  Unix time), or ``X-RateLimit-Remaining: 0`` with ``X-RateLimit-Reset`` (GitHub, the Docker Hub API)
  pauses the whole host until then, each pause capped at ``ci_env.registry.waits.RETRY_AFTER_CAP``;
- ``--max-requests-per-second`` (``WERF_MAX_REQUESTS_PER_SECOND``) spaces the requests to each host at least
  ``1/N`` seconds apart, across all workers;
- a host's documented limits (:class:`HostLimits`, declared by the vendor modules for their API hosts with
  :meth:`Budgets.declare`) are kept: GitHub asks for serial requests and one second between mutating ones.

Every wait is counted (:meth:`Budgets.stats`) so the cleanup report can say how long rate limits cost.
One :class:`Budgets` serves the whole process (:func:`shared`); tests make their own with a fast clock.
Standard library only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from ci_env.registry.waits import RETRY_AFTER_CAP, Clock, Sleeper, retry_after_seconds

MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: statuses that, with a rate-limit header, mean "too many requests" (GitHub answers 403 for its limits).
LIMITED_STATUSES = frozenset({403, 429})


@dataclass(frozen=True)
class HostLimits:
    """What a host allows: requests per second (None: no limit), seconds between two mutating requests
    (POST, PUT, PATCH, DELETE), and requests in flight at once (None: as many as the workers)."""

    requests_per_second: float | None = None
    mutating_interval: float = 0.0
    concurrency: int | None = None

    def merged(self, other: HostLimits) -> HostLimits:
        """The stricter of ``self`` and ``other`` in each respect."""
        rates = [r for r in (self.requests_per_second, other.requests_per_second) if r]
        slots = [c for c in (self.concurrency, other.concurrency) if c]
        return HostLimits(min(rates) if rates else None, max(self.mutating_interval, other.mutating_interval),
                          min(slots) if slots else None)


@dataclass(frozen=True)
class WaitStats:
    """The waits of one host: answers that asked to slow down, requests that waited for a pause the server
    asked for (``paused``) or for the pace of the limits (``paced``), and the seconds they waited in all
    (summed over workers, so it can exceed the run's wall time)."""

    host: str
    limited: int = 0
    paused: int = 0
    paused_seconds: float = 0.0
    paced: int = 0
    paced_seconds: float = 0.0

    @property
    def waits(self) -> int:
        return self.paused + self.paced

    @property
    def seconds(self) -> float:
        return self.paused_seconds + self.paced_seconds

    def as_json(self) -> dict[str, object]:
        """The report's form of these counts."""
        return {"host": self.host, "rate_limited_answers": self.limited, "paused_waits": self.paused,
                "paused_seconds": round(self.paused_seconds, 3), "paced_waits": self.paced,
                "paced_seconds": round(self.paced_seconds, 3)}


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:  # plain dicts (tests); requests' headers are case-insensitive already
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


def _number(text: str | None) -> float | None:
    """The leading number of a header value (``0;w=21600`` -> 0); None when there is none."""
    if text is None:
        return None
    head = text.split(";", 1)[0].split(",", 1)[0].strip()
    try:
        value = float(head)
    except ValueError:
        return None
    return value if value == value else None


def requested_pause(status: int, headers: Mapping[str, str], *, now: Clock = time.time) -> float | None:
    """The seconds an answer asks every client to hold off (uncapped), or None when it asks nothing.

    ``Retry-After`` on a 429, 403 or 503; Docker Hub's ``X-Retry-After`` (a Unix time) on a 429;
    ``X-RateLimit-Remaining: 0`` with ``X-RateLimit-Reset`` (a Unix time) on any answer.
    """
    if status in (429, 403, 503):
        asked = retry_after_seconds(_header(headers, "Retry-After"), now=now)
        if asked is not None:
            return asked
    if status == 429:
        when = _number(_header(headers, "X-Retry-After"))
        if when is not None:
            return max(0.0, when - now())
    if _number(_header(headers, "X-RateLimit-Remaining")) == 0:
        reset = _number(_header(headers, "X-RateLimit-Reset"))
        if reset is not None:
            return max(0.0, reset - now())
    return None


def is_rate_limited(status: int, headers: Mapping[str, str]) -> bool:
    """True for an answer refusing a request because of a rate limit: a 429, or a 403 with ``Retry-After``
    or ``X-RateLimit-Remaining: 0`` (GitHub's primary and secondary limits)."""
    if status == 429:
        return True
    if status != 403:
        return False
    return (_header(headers, "Retry-After") is not None
            or _number(_header(headers, "X-RateLimit-Remaining")) == 0)


class HostBudget:
    """The shared budget of one host: a pause any answer can set, the pace of its limits, in-flight slots."""

    def __init__(self, host: str, limits: HostLimits, *, clock: Clock, wallclock: Clock, sleep: Sleeper,
                 cap: float = RETRY_AFTER_CAP) -> None:
        self.host = host
        self.limits = limits
        self.cap = cap
        self._clock = clock
        self._wallclock = wallclock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._paused_until = 0.0
        self._next_any = 0.0
        self._next_mutating = 0.0
        self._slots = threading.BoundedSemaphore(limits.concurrency) if limits.concurrency else None
        self._stats = WaitStats(host)

    def set_limits(self, limits: HostLimits) -> None:
        """Use ``limits`` from now on (a new concurrency bound applies to requests not yet started)."""
        with self._lock:
            self.limits = limits
            self._slots = threading.BoundedSemaphore(limits.concurrency) if limits.concurrency else None

    @property
    def stats(self) -> WaitStats:
        with self._lock:
            return self._stats

    def _count(self, **delta: float) -> None:
        stats = self._stats
        values = {name: getattr(stats, name) + amount for name, amount in delta.items()}
        self._stats = WaitStats(**{**stats.__dict__, **values})

    def pause(self, seconds: float) -> float:
        """Hold every request to this host for ``seconds`` (capped) from now; returns the pause set."""
        granted = max(0.0, min(seconds, self.cap))
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + granted)
        return granted

    def observe(self, status: int, headers: Mapping[str, str]) -> float | None:
        """Take in an answer: count it when it refused a request for a rate limit, and pause the host as it
        asks. Returns the pause set (None: none asked). A reset further away than the cap sets no pause:
        waiting would not help, the requests meanwhile fail with the server's answer."""
        limited = is_rate_limited(status, headers)
        if limited:
            with self._lock:
                self._count(limited=1)
        asked = requested_pause(status, headers, now=self._wallclock)
        if asked is None or asked <= 0:
            return None
        if not limited and asked > self.cap:
            return None
        return self.pause(asked)

    def before(self, method: str, sleep: Sleeper | None = None) -> float:
        """Wait until a request may start: past any pause, at the pace of the limits. Returns the seconds
        waited. ``sleep`` replaces the budget's own (tests record instead of waiting); waiting never loops on
        the clock, so a recording sleep ends too."""
        sleeper = sleep or self._sleep
        waited = 0.0
        waited_until = 0.0
        reserved = False
        paused = paced = 0.0
        while True:
            with self._lock:
                now = self._clock()
                if self._paused_until > now and self._paused_until > waited_until:
                    wait, kind, waited_until = self._paused_until - now, "paused", self._paused_until
                elif not reserved:
                    reserved = True
                    wait, kind = self._reserve(now, method) - now, "paced"
                else:
                    wait = 0.0
                if wait <= 0:
                    if reserved:
                        if paused:
                            self._count(paused=1, paused_seconds=paused)
                        if paced:
                            self._count(paced=1, paced_seconds=paced)
                        return waited
                    continue
            sleeper(wait)
            waited += wait
            if kind == "paused":
                paused += wait
            else:
                paced += wait

    def _reserve(self, now: float, method: str) -> float:
        """The time this request's turn comes (called under the lock); books the turn."""
        start = now
        rate = self.limits.requests_per_second
        if rate:
            start = max(start, self._next_any)
            self._next_any = start + 1.0 / rate
        if self.limits.mutating_interval and method.upper() in MUTATING_METHODS:
            start = max(start, self._next_mutating)
            self._next_mutating = start + self.limits.mutating_interval
        return start

    def slot(self) -> _Slot:
        """A context manager holding one of the host's in-flight slots (a no-op without a concurrency bound)."""
        return _Slot(self._slots)


class _Slot:
    def __init__(self, semaphore: threading.BoundedSemaphore | None) -> None:
        self._semaphore = semaphore

    def __enter__(self) -> None:
        if self._semaphore is not None:
            self._semaphore.acquire()

    def __exit__(self, *exc: object) -> None:
        if self._semaphore is not None:
            self._semaphore.release()


class Budgets:
    """The budgets of every host of a run (made on first use), with the run's request rate and the limits
    vendors declared for their hosts."""

    def __init__(self, *, requests_per_second: float | None = None, clock: Clock = time.monotonic,
                 wallclock: Clock = time.time, sleep: Sleeper = time.sleep, cap: float = RETRY_AFTER_CAP) -> None:
        self._rate = requests_per_second
        self._clock = clock
        self._wallclock = wallclock
        self._sleep = sleep
        self._cap = cap
        self._declared: dict[str, HostLimits] = {}
        self._hosts: dict[str, HostBudget] = {}
        self._lock = threading.Lock()

    def _limits(self, host: str) -> HostLimits:
        return HostLimits(self._rate).merged(self._declared.get(host, HostLimits()))

    def configure(self, *, requests_per_second: float | None) -> None:
        """Set the run's request rate per host (``--max-requests-per-second``; None: no limit)."""
        with self._lock:
            self._rate = requests_per_second
            for host, budget in self._hosts.items():
                budget.set_limits(self._limits(host))

    def declare(self, host: str, limits: HostLimits) -> None:
        """Keep ``limits`` for ``host`` (``host[:port]``, as requests go to it), whatever the run's rate."""
        key = host.lower()
        with self._lock:
            self._declared[key] = limits
            if key in self._hosts:
                self._hosts[key].set_limits(self._limits(key))

    def host(self, host: str) -> HostBudget:
        """The budget of ``host`` (``host[:port]``), made on first use."""
        key = host.lower()
        with self._lock:
            budget = self._hosts.get(key)
            if budget is None:
                budget = HostBudget(key, self._limits(key), clock=self._clock, wallclock=self._wallclock,
                                    sleep=self._sleep, cap=self._cap)
                self._hosts[key] = budget
            return budget

    def stats(self) -> list[WaitStats]:
        """The waits of every host that had any, by host."""
        with self._lock:
            budgets = list(self._hosts.values())
        found = [b.stats for b in budgets]
        return sorted((s for s in found if s.limited or s.waits), key=lambda s: s.host)


def host_of(url: str) -> str:
    """The budget key of ``url``: ``host[:port]`` in lower case, without a scheme's default port."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2].lower()
    default = {"https": ":443", "http": ":80"}.get(parts.scheme.lower())
    if default and netloc.endswith(default):
        netloc = netloc[: -len(default)]
    return netloc


_SHARED = Budgets()
_SHARED_LOCK = threading.Lock()


def shared() -> Budgets:
    """The budgets of this process: every session of ``ci_env.registry.http`` uses them unless given others."""
    return _SHARED


def reset_shared(factory: Callable[[], Budgets] = Budgets) -> Budgets:
    """Start the process's budgets afresh (tests, or a long-lived process between runs); returns them."""
    global _SHARED
    with _SHARED_LOCK:
        _SHARED = factory()
        return _SHARED

