"""``ci_env.redact``: which forms lose their userinfo, and which look alike but carry none."""

from __future__ import annotations

import pytest

from ci_env.redact import has_userinfo, strip_userinfo, strip_userinfo_in

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(("given", "expected"), [
    ("https://user:token@git.example.com/g/p.git", "https://git.example.com/g/p.git"),
    ("https://x-access-token@github.com/o/r", "https://github.com/o/r"),
    ("ssh://git:pw@host:2222/p.git", "ssh://host:2222/p.git"),
    ("user:token@registry.example.com:5000/repo", "registry.example.com:5000/repo"),
    ("https://git.example.com/g/p.git", "https://git.example.com/g/p.git"),
    ("git@github.com:o/r.git", "git@github.com:o/r.git"),  # git's ssh form: a user name, no secret
    (f"nginx@{DIGEST}", f"nginx@{DIGEST}"),
    (f"registry.example.com/repo@{DIGEST}", f"registry.example.com/repo@{DIGEST}"),
    # a raw "@" in a password: URL parsers (urllib, curl, git) take the LAST "@" of the authority
    ("https://user:p@ss@git.example.com/g/p.git", "https://git.example.com/g/p.git"),
    ("https://a@b@c@git.example.com", "https://git.example.com"),
    ("user:p@ss@registry.example.com/repo", "registry.example.com/repo"),
])
def test_strip_userinfo(given: str, expected: str) -> None:
    assert strip_userinfo(given) == expected
    assert has_userinfo(given) is (given != expected)


def test_strip_userinfo_in_text_removes_every_url_credential() -> None:
    line = "fatal: https://a:b@h1/x and http://tok@h2:8080/y; mail me@example.com"
    assert strip_userinfo_in(line) == "fatal: https://h1/x and http://h2:8080/y; mail me@example.com"


def test_strip_userinfo_in_text_removes_a_password_holding_an_at_sign_whole() -> None:
    line = "fatal: unable to access 'https://ci:t0k@n!@git.example.com/g/p.git/': 403; see https://h/x?u=a@b"
    assert strip_userinfo_in(line) == (
        "fatal: unable to access 'https://git.example.com/g/p.git/': 403; see https://h/x?u=a@b"
    )
