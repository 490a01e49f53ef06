"""Parsing JSON this program did not write (a server's answer, a Docker config.json): anything that is not a
JSON document is a ``ValueError``, never another error.

Python's parser raises ``RecursionError`` for JSON nested deeper than the interpreter's recursion limit (a
``[[[[...`` bomb of a few kilobytes); every caller handles ``ValueError`` as "not JSON" already. Standard library
only (the ``ci-env setup`` path uses it).
"""

from __future__ import annotations

import json
from typing import Any


def loads(data: str | bytes | bytearray) -> Any:
    """``json.loads(data)``; ValueError for anything that is not a JSON document, nesting bombs included."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
