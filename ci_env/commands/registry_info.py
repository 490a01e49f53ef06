"""`ci-env registry info ADDRESS`: how an images repo is handled, computed locally (no network)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import click

from ci_env.cascade import IMAGES_REPO, Resolved, given, named
from ci_env.cli_options import credential_options
from ci_env.errors import ConfigError
from ci_env.options import Credentials, images_repo_mode
from ci_env.registry.implementations import Implementation, get_implementation
from ci_env.registry.model import choose_implementation
from ci_env.registry.naming import (
    MODES,
    NAMELESS,
    ImagesRepo,
    address_kind,
    check_mode,
    image_label,
    resolve_images_repo,
)
from ci_env.registry.reference import parse_address, validate_tag


def _image_arg(value: str) -> str | None:
    return None if value == NAMELESS else value


def credential_report(impl: Implementation, credentials: Credentials) -> dict[str, Any]:
    """What cleanup needs for ``impl`` and what is present; names and sources only, never values."""
    kinds = [kind for kind_set in impl.credential_sets for kind in kind_set]
    satisfied = credentials.satisfied_set(impl.credential_sets)
    return {
        "required": impl.credentials_required,
        "alternatives": [list(s) for s in impl.credential_sets],
        "satisfied": satisfied is not None if impl.credential_sets else None,
        "kinds": {
            kind: {
                "present": credentials.has(kind),
                "source": credentials.source(kind),
                "set_with": list(credentials.setting_names(kind)),
            }
            for kind in dict.fromkeys(kinds)
        },
        "external": impl.credentials_note or None,
    }


def build_info(
    address_text: str,
    images: Sequence[str | None],
    *,
    mode_flag: str | None,
    implementation_flag: str | None,
    tag: str,
    credentials: Credentials,
    env: Mapping[str, str],
) -> dict[str, Any]:
    """Everything `registry info` shows, as a JSON-ready dict; ConfigError for invalid input.

    Size: the JSON document of ``registry info``, field after field, from one resolution of the address.
    """
    address = parse_address(address_text)
    assert address is not None
    validate_tag(tag, context="--tag")
    impl_choice: Resolved | None
    skipped: tuple[str, ...] = ()
    if implementation_flag:
        try:
            impl_choice = Resolved(get_implementation(implementation_flag).name, "--implementation")
        except ConfigError as exc:
            raise ConfigError(f"--implementation: {exc.message}") from None
    else:
        choice = choose_implementation(IMAGES_REPO, {}, env, address)
        impl_choice, skipped = choice.chosen, choice.skipped
    mode = images_repo_mode(given(mode_flag, "--images-repo-mode"), env)
    if mode_flag == "":  # an empty --images-repo-mode is a mistake here, as it always was, not "unset"
        mode = Resolved("", "--images-repo-mode")
    named(check_mode, mode)  # ConfigError naming the flag or variable
    repo: ImagesRepo = resolve_images_repo(
        address,
        env,
        requested_mode=mode.value,
        implementation=impl_choice.value if impl_choice else None,
        implementation_source=impl_choice.source if impl_choice else "",
        image_names=images,
    )
    impl = repo.implementation
    return {
        "address": str(repo.address),
        "registry": repo.address.registry,
        "api_host": repo.address.api_host(),
        "path": repo.address.path,
        "address_kind": address_kind(repo.address, impl),
        "implementation": impl.name,
        "implementation_title": impl.display,
        "implementation_reason": repo.detected.reason,
        "implementation_source": impl_choice.source if impl_choice else "detected",
        "implementation_not_applied": list(skipped),
        "mode": repo.mode,
        "mode_requested": repo.requested_mode,
        "mode_source": mode.source,
        "nested_repositories": impl.nested_repositories,
        "repositories_precreated": impl.repositories_precreated,
        "cleanup": {"route": impl.delete_route, "how": impl.cleanup},
        "credentials": credential_report(impl, credentials),
        "notes": impl.notes or None,
        "images": [
            {"image": image_label(image), "repository": str(repo.image_repository(image)),
             "full_name": repo.full_name(image, tag)}
            for image in images
        ],
    }


def render_text(info: Mapping[str, Any]) -> str:
    """The human-readable report of :func:`build_info`'s dict."""
    yes_no = {True: "yes", False: "no"}
    creds = info["credentials"]
    lines = [
        f"address:              {info['address']} ({info['address_kind']})",
        f"implementation:       {info['implementation']} ({info['implementation_title']}): "
        f"{info['implementation_reason']}",
        *(f"                      {line}" for line in info["implementation_not_applied"]),
        f"images repo mode:     {info['mode']}"
        + (" (auto)" if info["mode_requested"] == "auto" else f" (from {info['mode_source']})"),
        f"nested repositories:  {yes_no[info['nested_repositories']]}",
        f"create repos first:   {yes_no[info['repositories_precreated']]}",
        f"cleanup deletes tags: {info['cleanup']['how']} [route {info['cleanup']['route']}]",
    ]
    if creds["alternatives"]:
        needed = " or ".join(" + ".join(s) for s in creds["alternatives"])
        state = "present" if creds["satisfied"] else ("MISSING" if creds["required"] else "not set (optional)")
        lines.append(f"cleanup credentials:  {needed}: {state}")
        for kind, entry in creds["kinds"].items():
            where = f"from {entry['source']}" if entry["present"] else "set with " + " or ".join(entry["set_with"])
            lines.append(f"  {kind}: {'present' if entry['present'] else 'not set'} ({where})")
    elif creds["external"]:
        lines.append(f"cleanup credentials:  {creds['external']}")
    else:
        lines.append("cleanup credentials:  none beyond the registry login")
    if info["notes"]:
        lines.append(f"note:                 {info['notes']}")
    if info["images"]:
        lines.append("images:")
        width = max(len(i["image"]) for i in info["images"])
        lines.extend(f"  {i['image'].ljust(width)}  {i['full_name']}" for i in info["images"])
    return "\n".join(lines)


@click.command()
@click.argument("address")
@click.option("--image", "images", multiple=True, metavar="NAME",
              help="Image name from werf.yaml (repeatable); ~ is the nameless image")
@click.option("--images-repo-mode", "mode", default=None, metavar="|".join(MODES),
              help="Images repo mode (default auto) [env: WERF_IMAGES_REPO_MODE]")
@click.option("--implementation", default=None, metavar="NAME",
              help="Registry implementation instead of detection by host; beats every variable "
              "[env: WERF_IMAGES_REPO_IMPLEMENTATION, WERF_REPO_IMPLEMENTATION, on the registry of "
              "WERF_IMAGES_REPO only]")
@click.option("--tag", default="TAG", show_default=True, help="Tag used to show full image names")
@click.option("--json", "as_json", is_flag=True, help="Print JSON")
@credential_options((IMAGES_REPO,))
def info(
    address: str,
    images: tuple[str, ...],
    mode: str | None,
    implementation: str | None,
    tag: str,
    as_json: bool,
    credentials: dict[str, Credentials],
) -> None:
    """Show how ADDRESS is handled as an images repo: implementation, mode, full image names and what
    cleanup needs. Computed locally; contacts no registry and never prints credential values."""
    data = build_info(
        address,
        [_image_arg(i) for i in images],
        mode_flag=mode,
        implementation_flag=implementation,
        tag=tag,
        credentials=credentials[IMAGES_REPO],
        env=os.environ,
    )
    click.echo(json.dumps(data, indent=2) if as_json else render_text(data))
