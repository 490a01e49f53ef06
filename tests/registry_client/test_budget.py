"""One request budget per host, shared by every worker: a rate limit met by one pauses all of them, and
--max-requests-per-second paces them together. Runs on a clock five times faster than the wall clock (the
budgets' clock and sleep are injected), so a 5 s pause lasts one second."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ci_env.registry.budget import Budgets, HostLimits, is_rate_limited, requested_pause
from ci_env.registry.client import RegistryClient
from ci_env.registry.http import make_session
from tests.vendors.fakeapi import Call, FakeApi, Reply

NO_CONFIG = Path("/nonexistent-docker-config")
SPEED = 5.0


def fast_clock() -> Callable[[], float]:
    return lambda: time.monotonic() * SPEED


def fast_budgets(**kwargs: object) -> Budgets:
    return Budgets(clock=fast_clock(), wallclock=lambda: time.time() * SPEED,
                   sleep=lambda seconds: time.sleep(seconds / SPEED), **kwargs)  # type: ignore[arg-type]


class Limited:
    """Answers 200 with an empty tag list, except the ``nth`` request (1-based), which gets ``status`` with
    ``headers``; records when each request arrived on the fast clock."""

    def __init__(self, nth: int, status: int, headers: dict[str, str] | Callable[[], dict[str, str]]) -> None:
        self.nth, self.status, self.headers = nth, status, headers
        self.arrivals: list[tuple[float, int]] = []
        self.lock = threading.Lock()
        self.clock = fast_clock()

    def __call__(self, call: Call, *groups: str) -> Reply:
        with self.lock:
            self.arrivals.append((self.clock(), len(self.arrivals) + 1))
            number = len(self.arrivals)
        if number == self.nth:
            headers = self.headers() if callable(self.headers) else self.headers
            return self.status, headers, {"errors": [{"code": "TOOMANYREQUESTS", "message": "slow down"}]}
        return 200, {}, {"name": "app", "tags": []}

    def limited_at(self) -> float:
        return next(when for when, number in self.arrivals if number == self.nth)


def _workers(api: FakeApi, budgets: Budgets, workers: int, each: int) -> RegistryClient:
    client = RegistryClient(api.url.removeprefix("http://"), docker_config=NO_CONFIG,
                            session=make_session(budgets=budgets))
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda _: [client.list_tags("app") for _ in range(each)], range(workers)))
    return client


def test_a_429_with_retry_after_pauses_every_worker_of_the_host(fake_api: Callable[[], FakeApi]) -> None:
    api = fake_api()
    server = Limited(nth=20, status=429, headers={"Retry-After": "5"})
    api.route("GET", r"/v2/app/tags/list")(server)
    budgets = fast_budgets()
    _workers(api, budgets, workers=4, each=15)

    limited = server.limited_at()
    # requests already on their way when the 429 left the server may still arrive a moment later; after that,
    # no worker sends anything until the 5 s the server asked for have passed
    during = [when - limited for when, _ in server.arrivals if limited + 0.5 < when < limited + 4.9]
    assert during == []
    after = [when for when, _ in server.arrivals if when >= limited + 4.9]
    assert len(after) >= 40 - 20  # the rest of the work, the retried request included, came after the pause
    assert len(server.arrivals) == 61  # 60 listings and one retry
    (stats,) = budgets.stats()
    assert stats.limited == 1
    assert stats.paused >= 4  # the worker that met the 429 and the others, each waited once
    assert stats.paused_seconds >= 4.5


def test_without_a_shared_budget_the_other_workers_would_keep_going(fake_api: Callable[[], FakeApi]) -> None:
    """The same run with each worker on a budget of its own: the check above fails (it can fail)."""
    api = fake_api()
    server = Limited(nth=20, status=429, headers={"Retry-After": "5"})
    api.route("GET", r"/v2/app/tags/list")(server)
    host = api.url.removeprefix("http://")

    def worker(_: int) -> None:
        client = RegistryClient(host, docker_config=NO_CONFIG, session=make_session(budgets=fast_budgets()))
        for _ in range(15):
            client.list_tags("app")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(worker, range(4)))
    limited = server.limited_at()
    assert [when for when, _ in server.arrivals if limited + 0.5 < when < limited + 4.9]


def test_github_rate_limit_headers_pause_the_host_until_the_reset(fake_api: Callable[[], FakeApi]) -> None:
    api = fake_api()
    clock = fast_clock()
    server = Limited(nth=5, status=200, headers=lambda: {
        "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time() * SPEED) + 4)})
    api.route("GET", r"/v2/app/tags/list")(server)
    budgets = fast_budgets()
    started = clock()
    _workers(api, budgets, workers=1, each=8)
    assert clock() - started >= 3.0  # requests 6 to 8 waited for the reset
    sixth = next(when for when, number in server.arrivals if number == 6)
    assert sixth - server.limited_at() >= 2.5
    (stats,) = budgets.stats()
    assert stats.limited == 0 and stats.paused == 1


def test_a_github_secondary_limit_403_with_retry_after_is_waited_out_and_retried(
    fake_api: Callable[[], FakeApi],
) -> None:
    api = fake_api()
    server = Limited(nth=2, status=403, headers={"Retry-After": "3"})
    api.route("GET", r"/v2/app/tags/list")(server)
    budgets = fast_budgets()
    _workers(api, budgets, workers=1, each=3)  # no error: the 403 was retried after the pause
    assert len(server.arrivals) == 4
    third = next(when for when, number in server.arrivals if number == 3)
    assert third - server.limited_at() >= 2.5
    (stats,) = budgets.stats()
    assert stats.limited == 1


def test_max_requests_per_second_paces_all_workers_together(fake_api: Callable[[], FakeApi]) -> None:
    api = fake_api()
    server = Limited(nth=0, status=200, headers={})
    api.route("GET", r"/v2/app/tags/list")(server)
    budgets = fast_budgets(requests_per_second=10.0)
    _workers(api, budgets, workers=4, each=8)
    times = sorted(when for when, _ in server.arrivals)
    assert len(times) == 32
    assert times[-1] - times[0] >= 31 / 10 * 0.9  # 32 requests at 10 per second, whichever worker sends
    busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    assert busiest <= 10 + 2  # no second saw more than the rate (give or take the threads' scheduling)
    (stats,) = budgets.stats()
    assert stats.paced >= 16 and stats.limited == 0


def test_a_hosts_declared_limits_space_mutating_requests(fake_api: Callable[[], FakeApi]) -> None:
    api = fake_api()
    arrivals: list[float] = []
    clock = fast_clock()

    @api.route("DELETE", r"/v2/app/manifests/(.+)")
    def delete(call: Call, ref: str) -> Reply:
        arrivals.append(clock())
        return 202, {}, None

    budgets = fast_budgets()
    host = api.url.removeprefix("http://")
    budgets.declare(host, HostLimits(mutating_interval=1.0, concurrency=1))
    client = RegistryClient(host, docker_config=NO_CONFIG, session=make_session(budgets=budgets))
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda n: client.delete_manifest("app", "sha256:" + f"{n:064x}"), range(4)))
    arrivals.sort()
    assert all(b - a >= 0.9 for a, b in itertools.pairwise(arrivals)), arrivals


def test_what_counts_as_a_rate_limit() -> None:
    assert is_rate_limited(429, {})
    assert is_rate_limited(403, {"Retry-After": "60"})
    assert is_rate_limited(403, {"x-ratelimit-remaining": "0"})
    assert not is_rate_limited(403, {"X-RateLimit-Remaining": "12"})
    assert not is_rate_limited(404, {"Retry-After": "1"})
    assert requested_pause(429, {"Retry-After": "7"}) == 7
    assert requested_pause(429, {"X-Retry-After": "1010"}, now=lambda: 1000.0) == 10
    assert requested_pause(200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1030"}, now=lambda: 1000.0) == 30
    assert requested_pause(200, {"ratelimit-remaining": "0;w=21600"}) is None  # Docker Hub pulls: no reset given
    assert requested_pause(200, {"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "1030"}) is None


def test_setup_does_not_import_the_budget_or_the_journal() -> None:
    """`ci-env setup` runs in every job: the request budget and cleanup's journal come with requests only."""
    import subprocess
    import sys

    code = (
        "import sys\nfrom ci_env.cli import main\n"
        "try:\n    main(['setup', '--help'])\nexcept SystemExit: pass\n"
        "heavy = ('requests', 'ci_env.registry.budget', 'ci_env.registry.http', 'ci_env.cleanup.journal',\n"
        "         'ci_env.cleanup.time_budget')\n"
        "print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert proc.stderr.strip().splitlines()[-1] == "[]"


def test_a_503_with_retry_after_is_waited_once_by_the_worker_that_met_it(fake_api: Callable[[], FakeApi]) -> None:
    api = fake_api()
    server = Limited(nth=1, status=503, headers={"Retry-After": "2"})
    api.route("GET", r"/v2/app/tags/list")(server)
    waits: list[float] = []
    client = RegistryClient(api.url.removeprefix("http://"), docker_config=NO_CONFIG,
                            session=make_session(sleep=waits.append))
    assert client.list_tags("app") == []
    assert waits == [2.0]  # its own wait covers the pause it set for the others: no second one
