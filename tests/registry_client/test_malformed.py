"""Registry API answers that are malformed, repeat or never end: one clear error, never a wrong reading.

The registry is a local server that misbehaves on purpose; the CLI cases check what a user sees: one
``ci-env: error:`` line, no traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ci_env.errors import CiEnvError, RegistryError
from ci_env.registry import paging
from ci_env.registry.client import RegistryClient
from tests.cli import environ_without, run_ci_env
from tests.vendors.fakeapi import Call, FakeApi, Reply

NO_CONFIG = Path("/nonexistent-docker-config")
SERVER_PAGES = 40


def client(api: FakeApi) -> RegistryClient:
    return RegistryClient(api.url.removeprefix("http://"), docker_config=NO_CONFIG)


def test_a_repeated_link_cursor_is_an_error_not_a_partial_listing(fake_api: Callable[[], FakeApi]) -> None:
    api = fake_api()

    def page(call: Call) -> Reply:
        last = call.query.get("last", [""])[0]
        return 200, {"Link": '</v2/app/tags/list?last=b>; rel="next"'}, {"tags": ["b" if last else "a"]}

    api.route("GET", r"/v2/app/tags/list")(page)
    with pytest.raises(RegistryError, match="cursor it already sent"):
        client(api).list_tags("app")


def test_link_pages_that_never_end_stop_at_the_bound(
    fake_api: Callable[[], FakeApi], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paging, "MAX_PAGES", 5)
    api = fake_api()

    def page(call: Call) -> Reply:
        number = int(call.query.get("last", ["0"])[0])
        headers = {"Link": f'</v2/app/tags/list?last={number + 1}>; rel="next"'} if number < SERVER_PAGES else {}
        return 200, headers, {"tags": [f"t{number}"]}

    api.route("GET", r"/v2/app/tags/list")(page)
    with pytest.raises(RegistryError, match="after 5 pages"):
        client(api).list_tags("app")
    assert len(api.calls) == 5


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        ({"name": "app", "tags": "abc"}, {}),  # a string is not three tags
        ({"name": "app", "tags": [1, 2]}, {}),
        ([{"tags": ["v1"]}], {}),  # a list where an object is expected
        (b"<html><body>Sign in</body></html>", {"Content-Type": "text/html"}),  # a login page with 200
        (b'{"name": "app", "tags": ["v1", "v', {}),  # cut short
    ],
)
def test_a_tag_list_that_is_not_one_is_an_error(
    fake_api: Callable[[], FakeApi], body: object, headers: dict[str, str]
) -> None:
    api = fake_api()
    api.route("GET", r"/v2/app/tags/list")(lambda call: (200, headers, body))
    with pytest.raises(RegistryError, match=r"tag list|not JSON"):
        client(api).list_tags("app")


def test_a_manifest_answered_with_html_is_an_error(fake_api: Callable[[], FakeApi]) -> None:
    api = fake_api()
    api.route("GET", r"/v2/app/manifests/v1")(lambda call: (200, {"Content-Type": "text/html"}, b"<html></html>"))
    with pytest.raises(RegistryError, match="not a manifest"):
        client(api).get_manifest("app", "v1")


def test_a_token_server_answering_a_list_is_an_auth_error(fake_api: Callable[[], FakeApi]) -> None:
    api = fake_api()
    api.route("GET", r"/v2/app/tags/list")(lambda call: (
        (200, {}, {"tags": ["v1"]}) if call.headers.get("Authorization") else
        (401, {"WWW-Authenticate": f'Bearer realm="{api.url}/token",service="reg"'}, {})))
    api.route("GET", r"/token")(lambda call: (200, {}, ["token", "abc"]))
    with pytest.raises(CiEnvError, match="without a token"):
        client(api).list_tags("app")


def test_a_body_cut_short_is_one_error_line_in_the_cli(fake_api: Callable[[], FakeApi]) -> None:
    api = fake_api()
    api.route("GET", r"/v2/app/tags/list")(lambda call: (200, {"Content-Length": "5000"}, {"tags": ["v1"]}))
    result = run_ci_env("registry", "tags", f"{api.url.removeprefix('http://')}/app", "--docker-config",
                        str(NO_CONFIG), env=environ_without())
    assert result.returncode == 1
    assert result.stderr.startswith("ci-env: error: ") and result.stderr.count("\n") == 1, result.stderr


@pytest.mark.parametrize("body", [{"tags": "abc"}, [1, 2, 3], b"<html>maintenance</html>"])
def test_malformed_tag_lists_are_one_error_line_in_the_cli(fake_api: Callable[[], FakeApi], body: object) -> None:
    api = fake_api()
    api.route("GET", r"/v2/app/tags/list")(lambda call: (200, {}, body))
    result = run_ci_env("registry", "tags", f"{api.url.removeprefix('http://')}/app", "--json", "--docker-config",
                        str(NO_CONFIG), env=environ_without())
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("ci-env: error: ") and result.stderr.count("\n") == 1, result.stderr


def test_a_registrys_error_code_and_message_stay_on_one_line(fake_api: Callable[[], FakeApi]) -> None:
    """The registry's error code and message are quoted in the error: a newline or control character in them
    would forge lines of the job's log (``::error::`` workflow commands, a fake ``ci-env:`` line)."""
    api = fake_api()
    errors = [{"code": "BAD\n::warning::planted" + "X" * 500,
               "message": "no\n::error title=ci-env::all tags removed\r\nci-env: done\x07"}]
    api.route("GET", r"/v2/app/tags/list")(lambda call: (400, {}, {"errors": errors}))
    result = run_ci_env("registry", "tags", f"{api.url.removeprefix('http://')}/app", "--docker-config",
                        str(NO_CONFIG), env=environ_without())
    assert result.returncode == 1
    assert result.stderr.startswith("ci-env: error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "answered 400 BAD ::warning::planted" in result.stderr and "\x07" not in result.stderr
    assert "no ::error title=ci-env::all tags removed ci-env: done" in result.stderr
    assert len(result.stderr) < 600  # the code is bounded like the message
