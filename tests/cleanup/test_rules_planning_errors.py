"""A repository whose planning fails in a way no check foresaw (an API answer of an unexpected shape raising a
``TypeError``, say) is skipped with its reason, and the other repositories are planned: one odd answer never
aborts the whole cleanup by rules. The real registry serves the repositories; the vendor listing of one of them
answers with a shape ci-env does not read."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import cast

from ci_env.cleanup.rules_planning import Guards, Selection, plan_rules
from ci_env.registry.client import RegistryClient, TagInfo
from ci_env.registry.reference import RepoAddress, parse_address
from ci_env.retention.rules import parse_rules
from tests.registry_client.images import push_image
from tests.services.registry import RegistryService


class OddListing:
    """A vendor listing whose answer for ``odd`` has a shape nobody foresaw (a tag as the API's raw object)."""

    def __init__(self, odd: str, digests: dict[str, str]) -> None:
        self.odd = odd
        self.digests = digests

    def list_tags(self, repo: RepoAddress) -> list[TagInfo]:
        if repo.path == self.odd:
            return cast("list[TagInfo]", [{"name": "v1", "digest": None}])
        return [TagInfo("v1", self.digests[repo.path], None, "2024-01-01T00:00:00Z")]


def test_an_unexpected_error_in_one_repository_skips_it_with_its_reason_and_plans_the_others(
        registry_open: RegistryService) -> None:
    client = RegistryClient(registry_open.host, docker_config=Path("/nonexistent"))
    good, odd = f"team/good{uuid.uuid4().hex[:8]}", f"team/odd{uuid.uuid4().hex[:8]}"
    digests = {path: push_image(client, path, ["v1"]).digest for path in (good, odd)}
    rules = parse_rules("version: 1\nrepositories:\n- glob: 'team/*'\n  rules:\n  - keep: all\n",
                        Path("rules.yaml"))
    addresses = tuple(parse_address(f"{registry_open.host}/{path}") for path in sorted((good, odd)))
    selection = Selection(tuple(a for a in addresses if a is not None))
    lister = OddListing(odd, digests)
    planned = plan_rules(rules, selection, lambda _repo: client, Guards(), datetime.now(timezone.utc),
                         lister_of=lambda _repo: lister)
    assert [d.tag for d in planned.plan.decisions] == ["v1"]
    assert planned.plan.decisions[0].repository.path == good
    assert len(planned.skipped) == 1
    where, why = planned.skipped[0]
    assert where == f"{registry_open.host}/{odd}"
    assert why.startswith("not listed, nothing removed: unexpected error while reading it (AttributeError: ")
    assert "report it if it stays" in why
