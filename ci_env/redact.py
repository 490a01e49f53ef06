"""Credentials out of what is published or printed: URLs and addresses without their userinfo.

A repository URL may carry a token (``https://user:token@host/repo.git``, ``https://token@host/...``): CI
systems put such URLs in ``$GIT_URL``, ``$CI_REPO_URL``, ``$BUILDKITE_REPO``, ``$CODEBUILD_SOURCE_REPO_URL``,
and git remotes and error messages repeat them. Everything ci-env exports, writes into image labels or
annotations, or prints goes through these functions first. As docker's and git's own redaction does, the
whole userinfo goes (a user name alone may be a token). Standard library only.
"""

from __future__ import annotations

import re

#: ``scheme://userinfo@`` anywhere in a text; userinfo runs to the LAST ``@`` before the characters that end an
#: authority, as URL parsers read it (a raw ``@`` in a password: ``https://user:p@ss@host``)
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s'\"<>]*@")
#: ``userinfo@host/...`` at the start of a scheme-less address (``user:token@registry.example.com/repo``)
#: git's scp-like form ``user@host:path`` (ssh: no password in it), left as it is
_SCP_LIKE = re.compile(r"^[^/@\s:]+@[^/@\s:]+:(?!\d+(/|$))")
_ADDRESS_USERINFO = re.compile(r"^[^/\s]*@(?![A-Za-z][A-Za-z0-9+._-]*:[0-9a-fA-F]{32,}$)(?=[^/@\s]+(/|$))")


def strip_userinfo(url: str) -> str:
    """``url`` without its ``user[:password]@`` part: ``https://u:t@host/p`` -> ``https://host/p``.

    Also for a scheme-less registry address (``u:t@host/repo`` -> ``host/repo``); a digest reference
    (``host/repo@sha256:...``) and git's scp-like ``git@host:path`` are left alone. Anything without
    userinfo comes back unchanged.
    """
    if "://" in url:
        return _URL_USERINFO.sub(r"\g<scheme>", url)
    if _SCP_LIKE.match(url):
        return url
    return _ADDRESS_USERINFO.sub("", url)


def strip_userinfo_in(text: str) -> str:
    """``text`` (a message, a log line, an annotation ``key=value``) with the userinfo of every URL removed."""
    return _URL_USERINFO.sub(r"\g<scheme>", text) if "@" in text else text


def has_userinfo(url: str) -> bool:
    """True when ``url`` (a URL or a registry address) carries ``user[:password]@``."""
    return strip_userinfo(url) != url
