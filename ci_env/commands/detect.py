"""`ci-env detect`: print the CI system and the job's facts (never a token or password)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from typing import Any

import click

from ci_env.ci import detect as detect_facts
from ci_env.ci.facts import JobFacts


def facts_view(facts: JobFacts, images_registry: str | None = None) -> dict[str, Any]:
    """The facts as plain data for printing: the logins setup would make for an images repo on
    ``images_registry``, without passwords; no token; plus ``job_key``."""
    logins = facts.logins_for((images_registry,) if images_registry else ())
    data = asdict(facts)
    data.pop("token", None)
    data.pop("repo_logins", None)
    data["has_token"] = facts.token is not None
    data["logins"] = [{"registry": lg.registry, "username": lg.username} for lg in logins]
    data["job_key"] = facts.job_key
    return data


@click.command()
@click.argument("system", required=False, default="auto", metavar="[auto|gitlab|github|generic]")
@click.option("--json", "as_json", is_flag=True, help="Print the facts as one JSON object.")
def detect(system: str, as_json: bool) -> None:
    """Print the detected CI system and the job's facts that later steps read."""
    images_repo = os.environ.get("WERF_IMAGES_REPO") or ""
    view = facts_view(detect_facts(os.environ, system), images_repo.split("/", 1)[0].lower() or None)
    if as_json:
        click.echo(json.dumps(view, indent=2, sort_keys=True))
        return
    for key, value in view.items():
        if key == "logins":
            value = ", ".join(f"{lg['registry']} as {lg['username']}" for lg in value) or None
        click.echo(f"{key}: {'-' if value is None else value}")
