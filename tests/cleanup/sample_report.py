"""A realistic cleanup Result of any size, without a registry: the HTML report's tests, benchmark and screenshots
use it. Several images, every reason and outcome, publication times over 90 days, blob sizes that share a base
layer; ``hostile`` adds names and reasons that try to inject markup."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

from ci_env.cleanup import report as rpt
from ci_env.cleanup.html_report import published_times
from ci_env.cleanup.policies import FoundTag, Policy, plan_cleanup
from ci_env.cleanup.sizes import Manifest, Removal, measure
from ci_env.gitinfo import GitFacts
from ci_env.registry.reference import RepoAddress

REPO = "registry.example.com/acme/shop"
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=timezone.utc)
IMAGES = ("api", "web", "worker", "migrations")
HOSTILE_IMAGE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def sample_result(tags: int, *, dry_run: bool = False, hostile: bool = False) -> rpt.Result:
    """``tags`` tags spread over the images: a third on branches that still exist (kept), the rest on deleted
    branches (removed, one in 97 failed), some commits kept by a limit; published over the last 90 days."""
    images = (*IMAGES, HOSTILE_IMAGE) if hostile else IMAGES
    found = []
    branches = set()
    for n in range(tags):
        image = images[n % len(images)]
        published = NOW - timedelta(days=90) + timedelta(seconds=(90 * 86400 - 7200) * n / max(1, tags))
        if n % 7 == 3:
            name, strategy, ref = f"{n:040x}"[-40:], "git-commit", f"{n:040x}"[-40:]
        else:
            name, strategy, ref = f"feature-{n}", "git-branch", f"feature-{n}"
            if n % 3 == 0:
                branches.add(ref)
        found.append(FoundTag(image, RepoAddress("registry.example.com", f"acme/shop/{image}"), name, name,
                              _digest(f"{image}:{name}"), strategy, "record", ref, published))
    plan = plan_cleanup(found, [], GitFacts(branches=frozenset(branches)), Policy(), NOW)
    status = "would-remove" if dry_run else "removed"
    reason = 'denied: requested access to the resource is denied <b>"x"</b>' if hostile else "denied (403)"
    outcomes = {d.key: ("failed", reason) if not dry_run and n % 97 == 5 else (status, "")
                for n, d in enumerate(plan.deletions)}
    manifests = {}
    for n, decision in enumerate(plan.decisions):
        assert decision.digest is not None
        manifests[decision.digest] = Manifest(decision.digest, 1200, {
            _digest(f"base-{decision.image}"): 30_000_000, _digest(f"cfg-{n}"): 6_000,
            _digest(f"app-{n}"): 2_000_000 + (n * 2654435761) % 300_000_000})
    freeing = [Removal(rpt._image(d), d.stored_tag, d.digest or "") for d in plan.deletions
               if outcomes[d.key][0] != "failed"]
    still = [d.digest or "" for d in plan.decisions if d.action != "delete"
             or outcomes[d.key][0] == "failed"]
    unread = set(still)  # kept manifests are not read by a run
    figures = measure(freeing, still, {k: v for k, v in manifests.items() if k not in unread})
    return rpt.Result("cleanup", dry_run, REPO, f"{REPO}/stages", plan, outcomes, (), "2024-06-01T12:00:00Z",
                      "2024-06-01T12:04:10Z", bytes=figures, published=published_times(found))
