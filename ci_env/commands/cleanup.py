"""`ci-env cleanup` and `ci-env purge`: parsing and printing only; the work is in ``ci_env.cleanup``."""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import click

from ci_env.options import repo_options

F = TypeVar("F", bound=Callable[..., Any])
#: CI families whose log shows the plan folded (GitHub gets a Markdown summary in $GITHUB_STEP_SUMMARY instead).
FOLDED_PLAN = frozenset({"gitlab"})


def _limit(name: str, what: str) -> list[click.Option]:
    var = name.upper().replace("-", "_")
    return [
        click.Option([f"--{name}-strategy-limit"], type=click.IntRange(min=-1), default=-1, show_default=True,
                     envvar=f"WERF_{var}_STRATEGY_LIMIT",
                     help=f"Keep at most N {what} per image, newest first; -1: no limit "
                     f"[env: WERF_{var}_STRATEGY_LIMIT]"),
        click.Option([f"--{name}-strategy-expiry-days"], type=click.IntRange(min=-1), default=-1, show_default=True,
                     envvar=f"WERF_{var}_STRATEGY_EXPIRY_DAYS",
                     help=f"Remove {what} older than D days; -1: never [env: WERF_{var}_STRATEGY_EXPIRY_DAYS]"),
    ]


def _common_params(cleanup: bool) -> list[click.Option]:
    params = [
        click.Option(["--dry-run"], is_flag=True, envvar="WERF_DRY_RUN",
                     help="Print the plan; remove nothing [env: WERF_DRY_RUN]"),
        click.Option(["--report"], type=click.Path(dir_okay=False, path_type=Path), default=None,
                     envvar="WERF_CLEANUP_REPORT",
                     help="Write the plan and each removal's outcome as JSON to PATH [env: WERF_CLEANUP_REPORT]"),
        click.Option(["--parallel"], type=click.IntRange(1, 64), default=8, show_default=True,
                     envvar="WERF_CLEANUP_PARALLEL", help="Tags removed at once [env: WERF_CLEANUP_PARALLEL]"),
        click.Option(["--docker-config"], type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Docker config directory [env: WERF_DOCKER_CONFIG, DOCKER_CONFIG; default ~/.docker]"),
        click.Option(["--insecure-registry", "insecure_registries"], multiple=True, metavar="HOST[:PORT]",
                     help="Registry reached over plain HTTP (repeatable) [env: WERF_INSECURE_REGISTRY]"),
        click.Option(["--dir", "directory"], type=click.Path(file_okay=False, path_type=Path), default=Path("."),
                     envvar="WERF_DIR", help="Project directory (the git clone) [env: WERF_DIR; default: .]"),
    ]
    if cleanup:
        params += [
            *_limit("git-tag", "git-tag tags"),
            *_limit("git-commit", "git-commit tags"),
            *_limit("stages-signature", "stages-signature tags"),
            click.Option(["--keep-tag"], multiple=True, metavar="REGEX", envvar="WERF_KEEP_TAG",
                         help="Never remove tags matching REGEX in full (repeatable) "
                         "[env: WERF_KEEP_TAG, whitespace separated]"),
            click.Option(["--keep-published-within"], default="2h", show_default=True, metavar="DURATION",
                         envvar="WERF_KEEP_PUBLISHED_WITHIN",
                         help="Never remove tags published within DURATION (90m, 2h, 3d; 0: off) "
                         "[env: WERF_KEEP_PUBLISHED_WITHIN]"),
            click.Option(["--keep-list"], type=click.Path(dir_okay=False, path_type=Path), default=None,
                         envvar="WERF_KEEP_LIST",
                         help="File of TAG or IMAGE:TAG lines never to remove (# comments) [env: WERF_KEEP_LIST]"),
            click.Option(["--git-history-synchronization/--no-git-history-synchronization"], default=False,
                         envvar="WERF_GIT_HISTORY_SYNCHRONIZATION",
                         help="Fetch every branch and tag from origin (and unshallow) before planning "
                         "[env: WERF_GIT_HISTORY_SYNCHRONIZATION]"),
            *_kube_params(),
        ]
    else:
        params.append(click.Option(["--force"], is_flag=True, envvar="WERF_FORCE",
                                   help="Really remove everything [env: WERF_FORCE]"))
    return params


def _kube_params() -> list[click.Option]:
    return [
        click.Option(["--without-kube"], is_flag=True, envvar="WERF_WITHOUT_KUBE",
                     help="Do not read Kubernetes: images running there are not protected [env: WERF_WITHOUT_KUBE]"),
        click.Option(["--kube-config"], default=None, metavar="PATH[:PATH...]",
                     envvar=["WERF_KUBE_CONFIG", "WERF_KUBECONFIG"],
                     help="Kubeconfig file(s) to read [env: WERF_KUBE_CONFIG; default: KUBECONFIG, ~/.kube/config]"),
        click.Option(["--kube-context"], default=None, metavar="NAME", envvar="WERF_KUBE_CONTEXT",
                     help="Scan only this kubeconfig context (default: every context) [env: WERF_KUBE_CONTEXT]"),
        click.Option(["--scan-context-namespace-only"], is_flag=True, envvar="WERF_SCAN_CONTEXT_NAMESPACE_ONLY",
                     help="Scan only each context's namespace (default: all namespaces) "
                     "[env: WERF_SCAN_CONTEXT_NAMESPACE_ONLY]"),
    ]


def _kube_settings(kw: dict[str, Any]) -> Any:
    from ci_env.cleanup.in_use import KubeSettings

    files = tuple(Path(p).expanduser() for p in (kw["kube_config"] or "").split(os.pathsep) if p)
    return KubeSettings(without_kube=bool(kw["without_kube"]), kube_config=files,
                        kube_context=kw["kube_context"] or None,
                        namespace_only=bool(kw["scan_context_namespace_only"]))


def _with(params: list[click.Option]) -> Callable[[F], F]:
    def decorator(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return func(*args, **kwargs)

        existing = getattr(func, "__click_params__", [])
        wrapper.__click_params__ = [*existing, *reversed(params)]  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorator


def _days(value: int) -> timedelta | None:
    return None if value < 0 else timedelta(days=value)


def _count(value: int) -> int | None:
    return None if value < 0 else value


def _progress() -> Callable[[int, int, Any], None]:
    def report(done: int, total: int, summary: Any) -> None:
        click.echo(f"ci-env: removed {done}/{total} ({summary.count('failed')} failed)", err=True)

    return report


def _run(command: str, repo: Any, kw: dict[str, Any], policy: Any, purge_force: bool | None,
         kube: Any = None) -> None:
    from ci_env.ci import detect
    from ci_env.cleanup import report as rpt
    from ci_env.cleanup import run
    from ci_env.cleanup.progress import Throttle
    from ci_env.errors import CiEnvError, RegistryError
    from ci_env.options import IMAGES_REPO, STAGES_STORAGE
    from ci_env.output import Output, format_table
    from ci_env.registry.auth import docker_config_dir

    if kw["report"] is not None:
        rpt.check_writable(kw["report"])
    env = dict(os.environ)
    family = detect(env).family
    insecure = tuple(kw["insecure_registries"]) + tuple(
        h.strip() for h in env.get("WERF_INSECURE_REGISTRY", "").split(",") if h.strip()
    )
    dry_run = bool(kw["dry_run"]) or purge_force is False
    settings = run.Settings(
        directory=Path(kw["directory"]), synchronize=bool(kw.get("git_history_synchronization")),
        dry_run=dry_run, parallel=kw["parallel"],
        docker_config=docker_config_dir(kw["docker_config"], env), insecure_registries=insecure,
    )
    out = Output(family, sys.stderr)
    clients = run.Clients(settings, env)
    started = run.started_now()
    target = run.resolve_target(repo, env, clients, settings.directory)
    out.status(f"{command}: {target.images_repo.address} ({target.images_repo.mode}), "
               f"{len(target.managed)} managed image(s)")
    if policy is not None and kube is not None:  # before planning: a cluster that cannot be read removes nothing
        from ci_env.cleanup.in_use import scan

        in_use = scan(kube, env)
        if in_use.summary() is not None:
            out.status(f"ci-env: {in_use.summary()}")
        policy = dataclasses.replace(policy, in_use=in_use)
    planning = Throttle(lambda line: out.status(f"ci-env: {line}"))
    credentials = {IMAGES_REPO: repo.credentials(IMAGES_REPO), STAGES_STORAGE: repo.credentials(STAGES_STORAGE)}
    plan, inventory = run.make_plan(target, clients, settings, policy, datetime.now(timezone.utc), progress=planning,
                                    credentials=credentials)
    deletions = plan.deletions
    if any(why == run.NO_DAEMON for _ref, why in inventory.skipped):
        out.status(f"ci-env: warning: {run.NO_DAEMON}")
    out.status(f"plan: {len(plan.kept)} kept, {len(deletions)} to remove "
               f"({run.stage_count(plan)} stage(s))" + (" -- dry run, nothing is removed" if dry_run else ""))
    try:
        result = run.execute(command, target, plan, inventory, clients, settings, env, credentials,
                             progress=_progress(), started=started, phases=planning)
    except CiEnvError:
        if kw["report"] is not None:
            empty = rpt.Result(command, dry_run, str(target.images_repo.address), None, plan, {}, inventory.skipped,
                               started, run.started_now())
            rpt.write_json(kw["report"], empty.as_json())
        raise
    lines = format_table(rpt.HEADERS, rpt.rows(result))
    if family in FOLDED_PLAN:  # the plan (dry run or not) in a collapsible section of the job log, on stdout
        title = f"{command} plan: {len(deletions)} to remove" + (" (dry run, nothing removed)" if dry_run else "")
        with Output(family, sys.stdout).section(title, name=f"ci-env-{command}") as section:
            for line in lines:
                section.line(line)
    else:
        click.echo("\n".join(lines))
    if kw["report"] is not None:
        rpt.write_json(kw["report"], result.as_json())
    rpt.append_step_summary(env, rpt.markdown(result))
    counts = result.counts()
    if purge_force is False:
        out.status("purge: nothing removed; pass --force (WERF_FORCE=true) to remove everything listed above")
    out.status(f"{command}: {counts['removed']} removed, {counts['absent']} already gone, {counts['failed']} failed"
               + (f", {result.records_forgotten} record(s) forgotten" if result.records_forgotten else ""))
    if result.failed:
        raise RegistryError(f"{len(result.failed)} tag(s) could not be removed (run again to retry):\n"
                            + "\n".join(rpt.failure_lines(result.failed)))


@click.command()
@repo_options
@_with(_common_params(cleanup=True))
def cleanup(repo: Any, **kw: Any) -> None:
    """Remove the tags no one needs any more, by the policy of the strategy each was published with.

    git-branch tags go with their branch, git-tag tags with their git tag (or beyond the limit/expiry),
    git-commit tags with their commit (or beyond the limit/expiry), stages-signature tags beyond the
    limit/expiry; custom tags stay. --keep-tag, --keep-list and --keep-published-within win over every
    policy, and so does a workload in Kubernetes that uses a tag (every kubeconfig context is read unless
    --without-kube; one that cannot be read stops cleanup before anything is removed). Then the stages no
    kept tag uses are removed. Exits 1 listing the tags that could not be removed.
    """
    from ci_env.cleanup.policies import Limit, Policy
    from ci_env.cleanup.protections import KeepList, compile_keep_tags, parse_duration, read_keep_list

    policy = Policy(
        git_tag=Limit(_count(kw["git_tag_strategy_limit"]), _days(kw["git_tag_strategy_expiry_days"])),
        git_commit=Limit(_count(kw["git_commit_strategy_limit"]), _days(kw["git_commit_strategy_expiry_days"])),
        stages_signature=Limit(_count(kw["stages_signature_strategy_limit"]),
                               _days(kw["stages_signature_strategy_expiry_days"])),
        keep_tags=compile_keep_tags(kw["keep_tag"]),
        keep_published_within=parse_duration(kw["keep_published_within"]),
        keep_list=read_keep_list(kw["keep_list"]) if kw["keep_list"] is not None else KeepList(),
    )
    _run("cleanup", repo, kw, policy, None, kube=_kube_settings(kw))


@click.command()
@repo_options
@_with(_common_params(cleanup=False))
def purge(repo: Any, **kw: Any) -> None:
    """Remove every tag of every managed image, and every stage.

    Without --force only the plan is printed and nothing is removed (exit 0). The managed-images list
    itself is kept; publication records of removed tags are forgotten.
    """
    _run("purge", repo, kw, None, bool(kw["force"]))
