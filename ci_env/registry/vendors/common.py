"""What every vendor remover shares: the context it is given, credential look-up, HTTP helpers.

A vendor remover implements the ``TagRemover`` protocol of ``ci_env.registry.untag``:
``preflight(repo)`` (raises ``PreflightError`` naming the flag or variable to set,
deletes nothing) and ``untag(repo, tag)`` (``"removed"`` or ``"absent"``; ``RegistryError``
or ``AuthError`` on failure). Nothing here ever puts a secret into a message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ci_env.errors import AuthError, PreflightError, RegistryError
from ci_env.registry.outcomes import Status
from ci_env.registry.paging import PageGuard

if TYPE_CHECKING:
    import requests

    from ci_env.registry.api import RegistryApi

_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


class VendorContext(Protocol):
    """What a remover is built from (``ci_env.registry.untag.RemoverContext`` satisfies it)."""

    @property
    def docker_config(self) -> Path | None: ...

    @property
    def insecure_registries(self) -> Sequence[str]: ...

    @property
    def env(self) -> Mapping[str, str]: ...

    @property
    def credentials(self) -> Any: ...

    @property
    def referenced(self) -> Callable[[RegistryApi, str], frozenset[str]]:
        """What a repository's tags reach through an index or as a referrer (``untag.referenced_by_tags``)."""


def credential_flag(kind: str) -> str:
    """The common flag for a credential kind, e.g. ``--repo-docker-hub-token``."""
    return f"--repo-{kind}"


def credential_variable(kind: str) -> str:
    """The common variable for a credential kind, e.g. ``WERF_REPO_DOCKER_HUB_TOKEN``."""
    return "WERF_REPO_" + kind.upper().replace("-", "_")


def where_to_set(*kinds: str) -> str:
    """Human text naming the flag and variable of each kind, joined by ``and``."""
    return " and ".join(f"{credential_flag(k)} (or {credential_variable(k)})" for k in kinds)


def get_credential(context: VendorContext, kind: str) -> str | None:
    """The value of credential ``kind`` (e.g. ``"docker-hub-token"``), or None when not given.

    ``context.credentials`` may be a mapping (keys ``docker-hub-token`` or ``docker_hub_token``),
    an object with attributes (``docker_hub_token``) or a ``get(kind)`` method (the options
    dataclass). When it gives nothing, the common ``WERF_REPO_*`` variable of ``context.env`` is used.
    """
    creds = context.credentials
    attr = kind.replace("-", "_")
    value: Any = None
    if isinstance(creds, Mapping):
        value = creds.get(kind) or creds.get(attr)
    elif creds is not None:
        value = getattr(creds, attr, None)
        if value is None and callable(getattr(creds, "get", None)):
            value = creds.get(kind)
    if not value:
        value = context.env.get(credential_variable(kind))
    return str(value) if value else None


def new_session() -> requests.Session:
    """A session with the project's retry policy (429/5xx with Retry-After, idempotent methods only) whose
    redirects never carry credentials to another host, and whose failures are ``RegistryError``s."""
    from ci_env.registry.http import ApiSession, make_session

    return make_session(session_class=ApiSession)


def next_link(response: requests.Response) -> str | None:
    """The ``rel="next"`` URL of a ``Link`` header, absolute, or None."""
    header = response.headers.get("Link")
    if not header:
        return None
    match = _LINK_NEXT.search(header)
    if not match:
        return None
    from urllib.parse import urljoin

    _refuse_ambiguous(match.group(1), "the next page of a listing")
    absolute: str = urljoin(response.url, match.group(1))
    _refuse_ambiguous(absolute, "the next page of a listing")
    return absolute


def _refuse_ambiguous(url: str, what: str) -> None:
    """RegistryError when the host of ``url`` (a server sent it as ``what``) is ambiguous
    (``ci_env.registry.origins.endpoint_of``); nothing is sent there."""
    from ci_env.registry.origins import UnsafeUrl, ambiguity, describe_unsafe, endpoint_of

    problem = ambiguity(url)
    if problem is None and "://" in url:
        try:
            endpoint_of(url)
        except UnsafeUrl as exc:
            problem = str(exc)
        except ValueError:
            return
    if problem:
        raise RegistryError(
            f"the server sent {what} at a URL whose host is ambiguous ({describe_unsafe(url)}: {problem}); refusing "
            "to follow it"
        )


def paged(
    session: requests.Session, url: str, what: str = "listing", **kwargs: Any
) -> Iterator[requests.Response]:
    """GET ``url`` and every ``Link: rel="next"`` page after it (the caller checks each response).

    A next page on another host than ``url``'s is never fetched, and a repeated or endless one never loops:
    RegistryError (see ``next_page``).
    """
    guard = PageGuard(what, first=url)
    next_url: str | None = url
    while next_url:
        response = session.get(next_url, **kwargs)
        yield response
        if not response.ok:
            return
        next_url = next_page(next_link(response), url, guard)
        kwargs.pop("params", None)


def next_page(next_url: str | None, api_url: str, guard: PageGuard) -> str | None:
    """``next_url`` (absolute, as an API's listing gave it) when it may be fetched, None at the end.

    RegistryError when it is on another host than ``api_url`` (a listing is never continued there, and the
    API's credentials never go there), or when ``guard`` finds it repeated or one page too many.
    """
    if not next_url:
        return None
    _refuse_ambiguous(next_url, f"the next page of {guard.what}")
    from urllib.parse import urlsplit

    here, there = urlsplit(api_url), urlsplit(next_url)
    if (there.scheme, there.netloc) != (here.scheme, here.netloc):
        raise RegistryError(
            f"{guard.what}: the next page is on another host or scheme ({there.scheme}://{there.netloc[-100:]}); a "
            "listing is never continued there"
        )
    guard.advance(next_url)
    return next_url


def json_of(response: requests.Response, what: str, expected: type = dict) -> Any:
    """The JSON body of ``response`` to ``what``, which must be an ``expected`` (dict or list).

    RegistryError for anything else: HTML or a cut-off body with 200, a list where an object is expected.
    """
    try:
        body = response.json()
    except ValueError:
        kind = (response.headers.get("Content-Type") or "no content type").split(";")[0]
        raise RegistryError(f"{what}: the answer ({response.status_code}, {kind}) is not JSON") from None
    if not isinstance(body, expected):
        wanted = "an object" if expected is dict else "a list"
        raise RegistryError(f"{what}: the answer is JSON but not {wanted} as the API defines")
    return body


def token_of(response: requests.Response, key: str, what: str) -> str:
    """The non-empty string ``key`` of the JSON object answered to ``what`` (a token); RegistryError otherwise."""
    value = json_of(response, what).get(key)
    if not isinstance(value, str) or not value:
        raise RegistryError(f"{what}: the answer has no {key!r}")
    return value


def items_of(body: dict[str, Any], key: str, what: str) -> list[dict[str, Any]]:
    """The list of objects under ``key`` of a listing page (absent or null: []); RegistryError otherwise."""
    items = body.get(key)
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise RegistryError(f"{what}: {key!r} in the answer is not a list of objects")
    return items


def post_with_retry(session: requests.Session, url: str, attempts: int = 4, **kwargs: Any) -> requests.Response:
    """POST for a login or token: side-effect free, so a 429/503 is retried honouring ``Retry-After``
    within the bounds of ``ci_env.registry.waits``."""
    from ci_env.registry.http import wait_budget

    budget = wait_budget(session)
    response = session.post(url, **kwargs)
    for _ in range(attempts - 1):
        if response.status_code not in (429, 503) or budget.spent:
            break
        budget.wait(retry_after_seconds(response))
        response = session.post(url, **kwargs)
    return response


def retry_after_seconds(response: requests.Response, default: float = 1.0) -> float:
    """Seconds to wait according to ``Retry-After`` (seconds or a date), ``default`` when absent or unreadable;
    the caller's ``WaitBudget`` caps it."""
    from ci_env.registry.waits import retry_after_seconds as parse

    seconds = parse(response.headers.get("Retry-After"))
    return default if seconds is None else seconds


def describe(response: requests.Response) -> str:
    """A short, secret-free description of an error response: status and the server's message (URLs in it
    without their ``user:token@``)."""
    text = ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("message", "detail", "error_description", "error", "errors"):
            if body.get(key):
                text = str(body[key])
                break
    if not text:
        text = (response.text or "").strip()
    from ci_env.redact import strip_userinfo_in

    text = strip_userinfo_in(" ".join(text.split())[:300])
    return f"HTTP {response.status_code}" + (f": {text}" if text else "")


def fail(response: requests.Response, what: str) -> RegistryError | AuthError:
    """The error to raise for an unexpected response to ``what`` (AuthError for 401/403)."""
    if response.status_code in (401, 403):
        return AuthError(f"{what}: access refused ({describe(response)})")
    return RegistryError(f"{what}: {describe(response)}")


def untag_outcome(response: requests.Response, what: str, gone: Callable[[], bool], where: str) -> str:
    """The outcome of a tag ``DELETE`` answered with ``response``: ``removed`` (200/202/204) or ``absent``.

    A 404 is ``absent`` only when the vendor says the tag is gone: ``gone()`` asks the vendor's API about the
    repository (or version list) the tag belongs to, and answers True when that API knows the repository
    but not the tag. A 404 from a wrong API base URL or for a missing repository raises RegistryError naming
    ``where`` (e.g. "the repository exists and WERF_QUAY_API_URL points at Quay's API"). 401/403 raise
    ``AuthError`` "WHAT refused (...)"; any other answer the error of :func:`fail`. ``what`` names the vendor
    and the tag, e.g. ``"Quay: removing quay.io/acme/app:1.0"``.
    """
    if response.status_code in (200, 202, 204):
        return Status.REMOVED
    if response.status_code == 404:
        if gone():
            return Status.ABSENT
        raise RegistryError(f"{what}: {describe(response)}, and the repository is not there either: check that {where}")
    if response.status_code in (401, 403):
        raise AuthError(f"{what} refused ({describe(response)})")
    raise fail(response, what)


def exists(response: requests.Response, what: str) -> bool:
    """Whether the vendor API's answer to a GET of a repository (or project) says it exists: True for 2xx,
    False for 404, the error of :func:`fail` for anything else."""
    if response.ok:
        return True
    if response.status_code == 404:
        return False
    raise fail(response, what)


def preflight_failure(vendor: str, problem: str, fix: str) -> PreflightError:
    """A PreflightError saying what is wrong with ``vendor`` and what to set; nothing was deleted."""
    return PreflightError(f"{vendor}: {problem}; {fix}. Nothing was deleted.")


def listing_page(response: requests.Response, what: str, missing_hint: str = "") -> dict[str, Any]:
    """The JSON object of one page of a vendor listing; RegistryError for a missing repository or a bad answer."""
    if response.status_code == 404:
        raise RegistryError(f"{what}: no such repository{missing_hint}")
    if not response.ok:
        raise fail(response, what)
    body: dict[str, Any] = json_of(response, what)
    return body
