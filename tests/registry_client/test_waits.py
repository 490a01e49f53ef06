"""Waits between retries are bounded: at most 60 s each and 5 minutes in all per request, whatever the server asks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ci_env.errors import RegistryError
from ci_env.registry.client import RegistryClient
from ci_env.registry.http import make_session
from ci_env.registry.waits import REQUEST_WAIT_BUDGET, RETRY_AFTER_CAP, retry_after_seconds
from tests.vendors.fakeapi import Call, FakeApi, Reply

NO_CONFIG = Path("/nonexistent-docker-config")


def _always(status: int, headers: dict[str, str]) -> Callable[..., Reply]:
    def reply(call: Call, *groups: str) -> Reply:
        return status, headers, {"errors": [{"code": "TOOMANYREQUESTS", "message": "slow down"}]}

    return reply


@pytest.mark.parametrize("retry_after", ["100000", "Fri, 31 Dec 2100 23:59:59 GMT"])
def test_a_server_asking_for_a_day_gets_capped_waits_and_an_error(
    fake_api: Callable[[], FakeApi], retry_after: str
) -> None:
    api = fake_api()
    api.route("GET", r"/v2/app/tags/list")(_always(429, {"Retry-After": retry_after}))
    waits: list[float] = []
    client = RegistryClient(api.url.removeprefix("http://"), docker_config=NO_CONFIG,
                            session=make_session(sleep=waits.append))
    with pytest.raises(RegistryError, match="429"):
        client.list_tags("app")
    assert waits, "the client did not retry at all"
    assert max(waits) <= RETRY_AFTER_CAP
    assert sum(waits) <= REQUEST_WAIT_BUDGET
    assert sum(waits) == pytest.approx(REQUEST_WAIT_BUDGET)  # it did honour the server, up to the bounds
    assert len(api.calls) == len(waits) + 1


def test_an_unreadable_retry_after_falls_back_to_backoff(fake_api: Callable[[], FakeApi]) -> None:
    api = fake_api()
    api.route("GET", r"/v2/app/tags/list")(_always(503, {"Retry-After": "soon, maybe"}))
    waits: list[float] = []
    client = RegistryClient(api.url.removeprefix("http://"), docker_config=NO_CONFIG,
                            session=make_session(sleep=waits.append, backoff=0.5))
    with pytest.raises(RegistryError, match="503"):
        client.list_tags("app")
    assert waits and max(waits) <= 30


def test_a_blob_upload_start_answered_429_waits_within_the_bounds(fake_api: Callable[[], FakeApi]) -> None:
    api = fake_api()
    api.route("HEAD", r"/v2/app/blobs/(.+)")(_always(404, {}))
    api.route("POST", r"/v2/app/blobs/uploads/")(_always(429, {"Retry-After": "100000"}))
    waits: list[float] = []
    client = RegistryClient(api.url.removeprefix("http://"), docker_config=NO_CONFIG,
                            session=make_session(sleep=waits.append))
    with pytest.raises(RegistryError, match="429"):
        client.ensure_blob("app", "sha256:" + "1" * 64, b"x")
    assert waits and max(waits) <= RETRY_AFTER_CAP and sum(waits) <= REQUEST_WAIT_BUDGET


def test_retry_after_values_are_read_as_seconds_or_dates() -> None:
    assert retry_after_seconds("120") == 120
    assert retry_after_seconds(" 7 ") == 7
    assert retry_after_seconds("Thu, 01 Jan 1970 00:00:10 GMT", now=lambda: 0.0) == 10
    assert retry_after_seconds("Thu, 01 Jan 1970 00:00:10 GMT", now=lambda: 100.0) == 0
    assert retry_after_seconds("-5") == 0
    assert retry_after_seconds("nan") is None
    assert retry_after_seconds("tomorrow") is None
    assert retry_after_seconds(None) is None
