"""Answers meant to exhaust the client: a body sent a byte at a time, one that never ends, a small gzip that
inflates without end, JSON nested without end. Each ends in bounded time and memory with one error.

The registry is a local server that misbehaves on purpose (``rawserver`` for what no HTTP library would send).
The bounds are lowered for the tests (``ci_env.registry.bodies``); the defaults are 128 MiB and 300 s.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ci_env.configjson import BaseConfig
from ci_env.dockerconfig import create_job_dir
from ci_env.errors import AuthError, RegistryError
from ci_env.registry import bodies
from ci_env.registry.client import RegistryClient
from ci_env.registry.probe import verify_login
from tests.cli import environ_without, run_ci_env
from tests.registry_client.rawserver import RawServer, Write
from tests.vendors.fakeapi import Call, FakeApi, Reply

NO_CONFIG = Path("/nonexistent-docker-config")
JSON_BOMB = b"[" * 100_000 + b"]" * 100_000


@pytest.fixture
def raw_server() -> Iterator[Callable[[Callable[[Write], None]], RawServer]]:
    started: list[RawServer] = []

    def make(answer: Callable[[Write], None]) -> RawServer:
        server = RawServer(answer)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def small_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bodies, "BODY_DEADLINE", 1.0)
    monkeypatch.setattr(bodies, "MAX_BODY_BYTES", 1 << 20)


def head(*lines: str) -> bytes:
    return ("\r\n".join(["HTTP/1.1 200 OK", "Content-Type: application/json", *lines]) + "\r\n\r\n").encode()


def test_a_body_sent_a_byte_at_a_time_stops_at_the_deadline(
    raw_server: Callable[[Callable[[Write], None]], RawServer], small_bounds: None
) -> None:
    def dribble(write: Write) -> None:
        write(head("Content-Length: 2000") + b'{"tags": [')
        for _ in range(1990):  # 100 s in all: every read of the socket gets a byte well within its timeout
            time.sleep(0.05)
            write(b" ")

    server = raw_server(dribble)
    started = time.monotonic()
    with pytest.raises(RegistryError, match=r"had not finished sending its answer after 1 s"):
        RegistryClient(server.host, docker_config=NO_CONFIG).list_tags("app")
    assert time.monotonic() - started < 10
    assert server.requests == 1


def test_a_body_that_never_ends_stops_at_the_size_bound(
    raw_server: Callable[[Callable[[Write], None]], RawServer], small_bounds: None
) -> None:
    chunk = b'"x",' * 16384

    def endless(write: Write) -> None:
        write(head("Transfer-Encoding: chunked") + b'a\r\n{"tags": [\r\n')
        for _ in range(512):  # 32 MiB, then a proper end: without the bound the listing would succeed
            write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        write(b'4\r\n"x"]\r\n1\r\n}\r\n0\r\n\r\n')

    server = raw_server(endless)
    with pytest.raises(RegistryError, match=r"sent an answer larger than 1 MiB"):
        RegistryClient(server.host, docker_config=NO_CONFIG).list_tags("app")


def test_a_gzip_bomb_stops_at_the_size_bound(
    raw_server: Callable[[Callable[[Write], None]], RawServer], small_bounds: None
) -> None:
    bomb = gzip.compress(b'{"tags": [' + b" " * (64 << 20) + b"]}")  # 64 MiB in about 64 KiB

    def answer(write: Write) -> None:
        write(head("Content-Encoding: gzip", f"Content-Length: {len(bomb)}") + bomb)

    server = raw_server(answer)
    with pytest.raises(RegistryError, match=r"larger than 1 MiB"):
        RegistryClient(server.host, docker_config=NO_CONFIG).list_tags("app")


def tags_cli(api: FakeApi) -> tuple[int, str]:
    result = run_ci_env("registry", "tags", f"{api.url.removeprefix('http://')}/app", "--docker-config",
                        str(NO_CONFIG), env=environ_without())
    return result.returncode, result.stderr


def test_a_tag_list_nested_without_end_is_one_error_line(fake_api: Callable[[], FakeApi]) -> None:
    api = fake_api()
    api.route("GET", r"/v2/app/tags/list")(lambda call: (200, {}, b'{"tags": ' + JSON_BOMB + b"}"))
    code, stderr = tags_cli(api)
    assert code == 1 and "Traceback" not in stderr
    assert stderr.startswith("ci-env: error: ") and stderr.count("\n") == 1, stderr
    assert "not JSON" in stderr


def test_a_manifest_nested_without_end_is_one_error_line(fake_api: Callable[[], FakeApi]) -> None:
    api = fake_api()
    api.route("GET", r"/v2/app/tags/list")(lambda call: (200, {}, {"tags": ["v1"]}))
    api.route("HEAD", r"/v2/app/manifests/v1")(lambda call: (200, {}, None))  # no digest: the client GETs it
    api.route("GET", r"/v2/app/manifests/(.+)")(lambda call, ref: (200, {}, JSON_BOMB))
    code, stderr = tags_cli(api)
    assert code == 1 and "Traceback" not in stderr
    assert stderr.startswith("ci-env: error: ") and stderr.count("\n") == 1, stderr


def test_a_token_answer_nested_without_end_is_one_error_line_at_login(
    fake_api: Callable[[], FakeApi], tmp_path: Path
) -> None:
    api = fake_api()

    def ping(call: Call) -> Reply:
        return 401, {"WWW-Authenticate": f'Bearer realm="{api.url}/token",service="test"'}, None

    api.route("GET", r"/v2/")(ping)
    api.route("GET", r"/token")(lambda call: (200, {}, JSON_BOMB))
    job = create_job_dir(BaseConfig(None), tmp_path / "root", "gitlab-77", [])
    result = run_ci_env("login", api.url.removeprefix("http://"), "-u", "alice", "--password-stdin",
                        "--docker-config", str(job), stdin="s3cret", env={**environ_without(), "HOME": str(tmp_path)})
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.startswith("ci-env: error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "s3cret" not in result.stderr


def test_setups_login_check_reads_a_dribbled_answer_within_its_timeout(
    raw_server: Callable[[Callable[[Write], None]], RawServer]
) -> None:
    """``ci-env setup`` and ``ci-env login`` check credentials with a light probe of their own (standard library):
    its timeout bounds each answer's body too, not only each read of the socket."""

    def dribble(write: Write) -> None:
        write(b'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm="r"\r\nContent-Type: application/json\r\n'
              b'Content-Length: 1000\r\n\r\n{"errors": [{"code": "UNAUTHORIZED", "message": "')
        for _ in range(300):  # 15 s per answer without a bound on the whole body
            time.sleep(0.05)
            write(b"x")

    server = raw_server(dribble)
    started = time.monotonic()
    with pytest.raises(AuthError, match=r"login to .* refused: HTTP 401"):
        verify_login(server.host, "alice", "s3cret", timeout=1)
    assert time.monotonic() - started < 8
    assert server.requests == 2  # the anonymous GET and the one with the credentials
