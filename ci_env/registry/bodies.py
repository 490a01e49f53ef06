"""Reading a server's answer whole, within bounds: a body can neither fill the memory nor take forever.

requests reads a body without limit: an endless (chunked) body or a small gzip that inflates to gigabytes fills
the memory, and its read timeout applies to each read of the socket, so a server sending one byte every few
seconds keeps a command waiting for ever. Every answer read whole by ci-env (everything but a blob streamed
across repositories) goes through ``read_whole``: at most ``MAX_BODY_BYTES`` once decoded, read within
``BODY_DEADLINE`` seconds; past either, the request ends with a ``RegistryError`` naming the host and path.

``SafeJsonResponse.json()`` turns a JSON nesting bomb (``[[[[...``, which makes Python's parser raise
RecursionError) into the ``ValueError`` every caller already handles as "not JSON".
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import DecodeError, ProtocolError, ReadTimeoutError
from urllib3.exceptions import SSLError as Urllib3SSLError

from ci_env.errors import RegistryError

#: the most bytes (decoded) of one answer read whole: a tag list of a million tags is about 70 MB.
MAX_BODY_BYTES = 128 << 20
#: the longest reading one answer's body may take, however slowly the server sends it (seconds).
BODY_DEADLINE = 300.0
#: bytes asked of the socket at a time.
CHUNK = 1 << 16


class SafeJsonResponse(requests.Response):
    """A response whose ``json()`` raises ``requests.JSONDecodeError`` (a ValueError) for JSON nested too
    deeply to parse, as for any other body that is not JSON."""

    def json(self, **kwargs: Any) -> Any:
        try:
            return super().json(**kwargs)
        except RecursionError:
            raise requests.exceptions.JSONDecodeError("JSON nested too deeply", "", 0) from None


def read_whole(response: requests.Response) -> None:
    """Read ``response``'s body (its ``raw`` not read yet) into ``response.content``, within the bounds above.

    RegistryError when the body is larger than ``MAX_BODY_BYTES`` or takes longer than ``BODY_DEADLINE``; a
    connection that breaks or a body that cannot be decoded raise requests' own exceptions, as requests would.
    """
    limit, deadline = MAX_BODY_BYTES, time.monotonic() + BODY_DEADLINE
    chunks: list[bytes] = []
    size = 0
    raw = response.raw
    try:
        while True:
            chunk = raw.read1(CHUNK, decode_content=True)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise RegistryError(f"{_where(response)} sent an answer larger than {limit >> 20} MiB; stopping "
                                    "(a body that never ends, or a compressed one that inflates without end)")
            if time.monotonic() > deadline:
                raise RegistryError(f"{_where(response)} had not finished sending its answer after "
                                    f"{BODY_DEADLINE:.0f} s ({size} bytes so far); stopping")
            chunks.append(chunk)
    except ProtocolError as exc:
        raise requests.exceptions.ChunkedEncodingError(exc) from None
    except DecodeError as exc:
        raise requests.exceptions.ContentDecodingError(exc) from None
    except ReadTimeoutError as exc:
        raise requests.exceptions.ConnectionError(exc) from None
    except Urllib3SSLError as exc:
        raise requests.exceptions.SSLError(exc) from None
    except RegistryError:
        response.close()
        raise
    response._content = b"".join(chunks)
    response._content_consumed = True  # type: ignore[attr-defined]
    raw.release_conn()


def _where(response: requests.Response) -> str:
    """``scheme://host[:port]`` and the path (no user info, no query) the response answered."""
    parts = urlsplit(str(response.url or ""))
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path[:200]}"
