"""An error inside the untagged removal of one repository (a vendor's listing, re-check or delete raising something
no check foresaw, a ``TypeError`` say) stops that repository only: a warning names the error's type and message
(without the userinfo of a URL in it), what was planned there is ``failed``, the repository is reported stopped (the
run fails at its end) and the other repositories are done. An interrupt is never swallowed. In-process, with
remover doubles."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from ci_env.cleanup.policies import Plan
from ci_env.cleanup.report import Result
from ci_env.errors import CiEnvError
from ci_env.registry.client import TagInfo
from ci_env.registry.graph import RepoGraph
from ci_env.registry.reference import RepoAddress
from ci_env.registry.removal import ImageRemoval, UntaggedRemoval, remove_untagged
from ci_env.registry.untag import Capabilities, Summary

GOOD = RepoAddress("registry.example", "team/good")
ODD = RepoAddress("registry.example", "team/odd")
PLANNED = {"sha256:" + "a" * 64: "untagged: remove", "sha256:" + "b" * 64: "untagged: remove"}


class Remover:
    """Lists ``PLANNED`` as untagged in every repository and deletes them; in ``odd`` the step named by ``fails``
    raises ``error``."""

    capabilities = Capabilities(deletes_manifests=True, lists_untagged=True)

    def __init__(self, fails: str, error: BaseException) -> None:
        self.fails, self.error = fails, error
        self.deleted: list[tuple[RepoAddress, str]] = []

    def _maybe(self, repo: RepoAddress, step: str) -> None:
        if repo == ODD and self.fails == step:
            raise self.error

    def preflight(self, repo: RepoAddress) -> None:
        self._maybe(repo, "preflight")

    def untag(self, repo: RepoAddress, tag: str) -> str:
        raise AssertionError("no tag is removed here")

    def list_manifests(self, repo: RepoAddress) -> tuple[list[TagInfo], dict[str, str | None]]:
        self._maybe(repo, "listing")
        return [], dict.fromkeys(PLANNED)

    def delete_manifests(self, repo: RepoAddress, digests: Sequence[str], *,
                         parallel: int = 8) -> Mapping[str, str | CiEnvError]:
        self._maybe(repo, "delete")
        self.deleted += [(repo, digest) for digest in digests]
        return dict.fromkeys(digests, "removed")


def _run(remover: Remover) -> UntaggedRemoval:
    removal = ImageRemoval(Summary(()), protected={str(GOOD): frozenset(), str(ODD): frozenset()})

    def graph_of(repo: RepoAddress) -> RepoGraph:
        raise AssertionError("the protected digests are known")

    def recheck(repo: RepoAddress, tags: Sequence[TagInfo]) -> Mapping[str, str]:
        remover._maybe(repo, "recheck")
        return {}

    return remove_untagged([ODD, GOOD], lambda _repo: remover, graph_of, removal, only=lambda _r: PLANNED,
                           recheck=recheck)


@pytest.mark.parametrize("step", ["listing", "recheck", "delete"])
def test_an_unexpected_error_stops_that_repository_only_with_a_warning_and_failed_outcomes(step: str) -> None:
    remover = Remover(step, TypeError("'NoneType' object is not subscriptable (https://bot:s3cret@api.example/v2)"))
    done = _run(remover)
    assert remover.deleted == [(GOOD, digest) for digest in PLANNED]  # the other repository is done
    outcomes = {(o.repo, o.digest): (o.status, o.reason) for o in done.outcomes}
    assert {digest: outcomes[(str(GOOD), digest)][0] for digest in PLANNED} == dict.fromkeys(PLANNED, "removed")
    why = ("unexpected error (TypeError: 'NoneType' object is not subscriptable (https://api.example/v2)); the "
           "registry or its API answered in a shape ci-env does not read: run again, and report it if it stays")
    for digest in PLANNED:
        assert outcomes[(str(ODD), digest)] == ("failed", f"not removed: {why}")
    assert done.warnings == (f"{ODD}: untagged manifests were not removed: {why}",)
    assert done.stopped == {str(ODD): why}
    assert "s3cret" not in repr(done)


def test_the_run_fails_for_a_stopped_repository_and_names_it() -> None:
    remover = Remover("listing", ValueError("bad page"))
    done = _run(remover)
    result = Result("cleanup", False, "rules", None, Plan(()), {}, (), "", "",
                    untagged=done.outcomes, untagged_stopped=done.stopped)
    lines = result.untagged_failures()
    assert len(lines) == 2 and all(line.startswith(f"  {ODD}@sha256:") for line in lines)
    assert "ValueError: bad page" in lines[0]
    stopped_only = Result("cleanup", False, "rules", None, Plan(()), {}, (), "", "",
                          untagged_stopped={str(ODD): "unexpected error (ValueError: bad page)"})
    assert stopped_only.untagged_failures() == [f"  {ODD}: unexpected error (ValueError: bad page)"]


@pytest.mark.parametrize("error", [KeyboardInterrupt(), SystemExit(3)])
def test_an_interrupt_is_never_caught(error: BaseException) -> None:
    remover = Remover("delete", error)
    with pytest.raises(type(error)):
        _run(remover)
