"""Removing credentials from text that may be shown or stored (labels, messages)."""

from __future__ import annotations

import re

#: ``scheme://userinfo@`` at the start of a URL; userinfo may hold a token (``https://ci:TOKEN@host/...``).
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/@]*@")


def strip_userinfo(url: str) -> str:
    """``url`` without its ``user[:password]@`` part (``https://u:t@h/p`` -> ``https://h/p``); other text unchanged."""
    return _USERINFO.sub(r"\1", url.strip())
