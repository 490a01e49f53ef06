"""Reading a cleanup report another job wrote (``ci-env report merge``): the reports are artifacts of other jobs,
so a file may be anything. What is read must be a regular file of at most :data:`MAX_BYTES`, a JSON document
(nesting bombs refused), a cleanup report of this schema, and every field the merge reads must be of the type
the report schema gives it; anything else is one :class:`~ci_env.errors.UsageError` line (exit 2) naming the file
and the field, before anything is written.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn, TypeGuard

from ci_env import untrusted_json
from ci_env.cleanup.report import REPORT_SCHEMA
from ci_env.cleanup.shards import MAX_SHARDS
from ci_env.errors import UsageError

#: the largest report read (a sweep of 100,000 tags writes about 50 MB)
MAX_BYTES = 512 * 1024 * 1024
#: the lists of a report that hold objects
OBJECT_LISTS = ("decisions", "skipped", "untagged", "resumed", "would_fail")
#: the per-host numbers of ``rate_limits.hosts``
HOST_COUNTS = ("rate_limited_answers", "paused_waits", "paused_seconds", "paced_waits", "paced_seconds")

Check = Callable[[Any], bool]


def _count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def _text(value: Any) -> bool:
    return isinstance(value, str)


def _text_or_null(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _objects(value: object) -> TypeGuard[list[dict[str, Any]]]:
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


#: top-level field -> (check, what it must be); ``None`` in the document only where the check allows it
_FIELDS: dict[str, tuple[Check, str]] = {
    "command": (_text, "a string"), "dry_run": (lambda v: isinstance(v, bool), "true or false"),
    "started": (_text, "a time"), "finished": (_text, "a time"), "images_repo": (_text, "a string"),
    "summary": (lambda v: isinstance(v, dict) and all(_count(n) for n in v.values()), "an object of counts"),
}
_OPTIONAL: dict[str, tuple[Check, str]] = {
    "stages_storage": (_text_or_null, "a string or null"),
    **{name: (_objects, "a list of objects") for name in OBJECT_LISTS},
    "partial": (lambda v: v is None or (isinstance(v, dict) and _text(v.get("stopped_by", ""))
                                        and _text_or_null(v.get("journal"))), "an object with stopped_by and journal"),
}


def read_report(path: Path) -> dict[str, Any]:
    """The cleanup report at ``path``; UsageError (exit 2) for a file that cannot be read, is not a regular file,
    is larger than :data:`MAX_BYTES`, is not JSON or not a cleanup report, or has a field the merge reads of
    another type than the report schema's."""
    name = str(path)
    data = _read(path, name)
    try:
        document = untrusted_json.loads(data)
    except (UnicodeDecodeError, ValueError):
        raise UsageError(f"the report {name!r} is not JSON: give the files cleanup --report wrote") from None
    if not isinstance(document, dict) or document.get("schema") != REPORT_SCHEMA:
        raise UsageError(f"the report {name!r} is not a cleanup report ({REPORT_SCHEMA}): give the files "
                         "cleanup --report wrote")
    check_fields(name, document)
    return document


def _read(path: Path, name: str) -> bytes:
    """The bytes of the regular file ``path`` (a FIFO or device is never waited on nor read without end)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise UsageError(f"the report {name!r} cannot be read: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(f"the report {name!r} is not a regular file: give the files cleanup --report wrote")
        if info.st_size > MAX_BYTES:
            raise UsageError(f"the report {name!r} is {info.st_size} bytes, over the {MAX_BYTES} a cleanup report "
                             "can be: give the files cleanup --report wrote")
        try:
            data = handle.read(MAX_BYTES + 1)
        except OSError as exc:
            raise UsageError(f"the report {name!r} cannot be read: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise UsageError(f"the report {name!r} is over the {MAX_BYTES} bytes a cleanup report can be")
    return data


def check_fields(name: str, document: Mapping[str, Any]) -> None:
    """UsageError naming the first field of ``document`` (the report ``name``) the merge reads that is not of the
    report schema's type: the top-level fields, each decision's key, the shard, rate limits and bytes."""
    for field, (check, wanted) in _FIELDS.items():
        if field not in document or not check(document[field]):
            _refuse(name, field, wanted)
    for field, (check, wanted) in _OPTIONAL.items():
        if field in document and not check(document[field]):
            _refuse(name, field, wanted)
    for number, decision in enumerate(document.get("decisions", []), 1):
        if not all(_text(decision.get(key)) for key in ("kind", "repository", "stored_tag")):
            _refuse(name, f"decisions[{number}]", "an object with kind, repository and stored_tag")
    _check_shard(name, document.get("shard"))
    if "rate_limits" in document:
        _check_rate_limits(name, document["rate_limits"])
    if "bytes" in document:
        _check_bytes(name, document["bytes"])


def _check_shard(name: str, shard: Any) -> None:
    if shard is None:
        return
    wanted = f"null or an object with index, total (1 to {MAX_SHARDS}), repositories, selected and rules"
    if not isinstance(shard, dict) or not _text(shard.get("rules")):
        _refuse(name, "shard", wanted)
    index, total = shard.get("index"), shard.get("total")
    if not (_count(index) and _count(total) and 1 <= index <= total <= MAX_SHARDS):
        _refuse(name, "shard", wanted)
    if not (_count(shard.get("repositories")) and _count(shard.get("selected"))):
        _refuse(name, "shard", wanted)


def _check_rate_limits(name: str, limits: Any) -> None:
    wanted = "an object with rate_limited_answers, waits, waited_seconds and hosts"
    if not isinstance(limits, dict) or not all(
            _number(limits.get(key)) for key in ("rate_limited_answers", "waits", "waited_seconds")):
        _refuse(name, "rate_limits", wanted)
    hosts = limits.get("hosts")
    if not _objects(hosts) or not all(_text(host.get("host")) and all(_number(host.get(key)) for key in HOST_COUNTS)
                                      for host in hosts):
        _refuse(name, "rate_limits.hosts", "a list of objects with host and its counts")


def _check_bytes(name: str, sizes: Any) -> None:
    wanted = "an object with freed, at_most, kept, kept_unread, unknown, when, images and largest"
    if not isinstance(sizes, dict) or not (
            all(_count(sizes.get(key)) for key in ("freed", "kept_unread", "unknown"))
            and isinstance(sizes.get("at_most"), bool) and (sizes.get("kept") is None or _count(sizes.get("kept")))
            and _text(sizes.get("when"))):
        _refuse(name, "bytes", wanted)
    images = sizes.get("images")
    if not _objects(images) or not all(
            _text(image.get("image")) and all(_count(image.get(key)) for key in ("freed", "removed", "unknown"))
            for image in images):
        _refuse(name, "bytes.images", "a list of objects with image, freed, removed and unknown")
    largest = sizes.get("largest")
    if not _objects(largest) or not all(_number(item.get("size")) for item in largest):
        _refuse(name, "bytes.largest", "a list of objects with a size")


def _refuse(name: str, field: str, wanted: str) -> NoReturn:
    raise UsageError(f"the report {name!r} is not one cleanup --report wrote: {field} is not {wanted}")
