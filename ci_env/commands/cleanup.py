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
        click.Option(["--keep-signatures"], is_flag=True, envvar="WERF_KEEP_SIGNATURES",
                     help="Leave the signatures, attestations, SBOMs and other referrers of removed images "
                     "[env: WERF_KEEP_SIGNATURES]"),
        click.Option(["--delete-untagged"], is_flag=True, envvar="WERF_DELETE_UNTAGGED",
                     help="Also remove the untagged manifests nothing kept reaches, where the registry lists them "
                     "(GitHub Packages, ECR) [env: WERF_DELETE_UNTAGGED]"),
        click.Option(["--time-budget"], default=None, metavar="DURATION", envvar="WERF_CLEANUP_TIME_BUDGET",
                     help="End within DURATION (e.g. 50m, below the CI job's timeout): removals stop starting in "
                     "time to finish cleanly, the rest is left in the journal and the exit code is 3 (run again to "
                     "continue) [env: WERF_CLEANUP_TIME_BUDGET]"),
        click.Option(["--journal"], type=click.Path(dir_okay=False, path_type=Path), default=None,
                     envvar="WERF_CLEANUP_JOURNAL",
                     help="The journal of planned and finished removals a stopped or killed run leaves, and the next "
                     "run finishes first; keep it in the CI cache [env: WERF_CLEANUP_JOURNAL; default: "
                     "$XDG_STATE_HOME/ci-env/journal/COMMAND-HASH.jsonl]"),
        click.Option(["--max-requests-per-second"], type=click.FloatRange(min=0, min_open=True), default=None,
                     metavar="N", envvar="WERF_MAX_REQUESTS_PER_SECOND",
                     help="Send at most N requests per second to each registry or API host, all workers together "
                     "[env: WERF_MAX_REQUESTS_PER_SECOND; default: no limit but the hosts' own]"),
    ]
    if cleanup:
        params += [
            *_limit("git-tag", "git-tag tags"),
            *_limit("git-commit", "git-commit tags"),
            *_limit("stages-signature", "stages-signature tags"),
            click.Option(["--keep-tag"], multiple=True, metavar="REGEX", envvar="WERF_KEEP_TAG",
                         help="Never remove tags the REGEX matches as a whole: ^rel-.* keeps rel-1.0, ^rel- "
                         "keeps nothing (repeatable) "
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
            click.Option(["--git-history-based-cleanup"], type=click.BOOL, is_flag=False, flag_value=True,
                         default=True, show_default=True, metavar="[true|false]",
                         envvar="WERF_GIT_HISTORY_BASED_CLEANUP",
                         help="Decide content-signature tags by werf.yaml's cleanup.keepPolicies (werf's defaults "
                         "when absent) over git history; false: by --stages-signature-strategy-limit/-expiry-days "
                         "[env: WERF_GIT_HISTORY_BASED_CLEANUP]"),
            click.Option(["--git-history-based-cleanup-strict"], type=click.BOOL, is_flag=False, flag_value=True,
                         default=False, show_default=True, metavar="[true|false]",
                         envvar="WERF_GIT_HISTORY_BASED_CLEANUP_STRICT",
                         help="Also remove content-signature tags that have no metadata record of the commit that "
                         "published them (kept otherwise) [env: WERF_GIT_HISTORY_BASED_CLEANUP_STRICT]"),
            click.Option(["--config"], metavar="PATH", default=None, envvar="WERF_CONFIG",
                         help="werf.yaml with the keep policies, relative to --dir "
                         "[env: WERF_CONFIG; default: werf.yaml or werf.yml in --dir, if any]"),
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
    from ci_env.cleanup.protections import bounded_duration

    return None if value < 0 else bounded_duration(days=value)


def _count(value: int) -> int | None:
    return None if value < 0 else value


def _progress() -> Callable[[int, int, Any], None]:
    def report(done: int, total: int, summary: Any) -> None:
        click.echo(f"ci-env: removed {done}/{total} ({summary.count('failed')} failed)", err=True)

    return report


def _with_config(policy: Any, config: Any, kw: dict[str, Any]) -> Any:
    """The policy with werf.yaml's ``keepImagesBuiltWithinLastNHours`` / ``disableBuiltWithinLastNHoursPolicy``
    applied where --keep-published-within was not given."""
    from dataclasses import replace

    source = click.get_current_context().get_parameter_source("keep_published_within")
    if source not in (click.core.ParameterSource.DEFAULT, None):
        return policy
    if config.disable_built_within_last_n_hours_policy:
        return replace(policy, keep_published_within=timedelta(0))
    if config.keep_images_built_within_last_n_hours is not None:
        from ci_env.cleanup.protections import bounded_duration

        hours = config.keep_images_built_within_last_n_hours
        return replace(policy, keep_published_within=bounded_duration(hours=hours))
    return policy


def history_lines(plan: Any, settings: Any, config: Any, kw: dict[str, Any]) -> list[str]:
    """What git-history-based cleanup did, and the warnings it owes the user (stderr lines)."""
    from ci_env.cleanup.policies import KEEP, RULE_NO_METADATA
    from ci_env.output import plural

    lines = []
    history = plan.git_history
    if history is not None:
        source = "werf's default keep policies" if config is None or config.defaults else "werf.yaml's keep policies"
        lines.append(f"keep policies: {source} ({plural(len(config.keep_policies if config else ()), 'policy')}): "
                     f"{plural(history.verdict.references, 'reference')} selected, "
                     f"{plural(history.verdict.commits, 'commit')} of history, "
                     f"{plural(len(history.recorded), 'content signature')} with metadata")
        unrecorded = sum(1 for d in plan.decisions if d.basis.rule == RULE_NO_METADATA and d.action == KEEP)
        if unrecorded:
            lines.append(
                f"ci-env: warning: {plural(unrecorded, 'content-signature tag')} "
                f"{'has' if unrecorded == 1 else 'have'} no metadata record of the commit that published "
                f"{'it' if unrecorded == 1 else 'them'} (published before ci-env recorded commits, or by another "
                f"tool), so the keep policies cannot judge {'it' if unrecorded == 1 else 'them'}: kept. Once every "
                "pipeline publishes with this ci-env, remove such tags with --git-history-based-cleanup-strict "
                "(WERF_GIT_HISTORY_BASED_CLEANUP_STRICT=true)")
        limits = [name for name in ("stages_signature_strategy_limit", "stages_signature_strategy_expiry_days")
                  if kw.get(name, -1) != -1]
        if limits:
            flags = " and ".join("--" + name.replace("_", "-") for name in limits)
            lines.append(f"ci-env: warning: {flags} {'is' if len(limits) == 1 else 'are'} ignored: content-signature "
                         "tags are decided by the keep policies; pass --git-history-based-cleanup=false to use "
                         f"{'it' if len(limits) == 1 else 'them'} instead")
    return lines


def _run(command: str, repo: Any, kw: dict[str, Any], policy: Any, purge_force: bool | None,
         kube: Any = None) -> None:
    from ci_env.ci import detect
    from ci_env.cleanup import report as rpt
    from ci_env.cleanup import run
    from ci_env.cleanup.progress import Throttle
    from ci_env.errors import CiEnvError, RegistryError
    from ci_env.options import IMAGES_REPO, STAGES_STORAGE
    from ci_env.output import Output, plural
    from ci_env.registry.auth import docker_config_dir

    if kw["report"] is not None:
        rpt.check_writable(kw["report"])
    budget = _time_budget(kw)
    if kw.get("max_requests_per_second"):
        from ci_env.registry.budget import shared

        shared().configure(requests_per_second=kw["max_requests_per_second"])
    env = dict(os.environ)
    config = None
    if policy is not None:  # werf.yaml's keep policies, read (and checked) before anything else
        config = run.cleanup_config(Path(kw["directory"]), kw.get("config"), env)
        policy = _with_config(policy, config, kw)
    family = detect(env).family
    insecure = tuple(kw["insecure_registries"]) + tuple(
        h.strip() for h in env.get("WERF_INSECURE_REGISTRY", "").split(",") if h.strip()
    )
    dry_run = bool(kw["dry_run"]) or purge_force is False
    settings = run.Settings(
        directory=Path(kw["directory"]), synchronize=bool(kw.get("git_history_synchronization")),
        dry_run=dry_run, parallel=kw["parallel"],
        docker_config=docker_config_dir(kw["docker_config"], env), insecure_registries=insecure,
        git_history_based=bool(kw.get("git_history_based_cleanup", True))
        and not (config is not None and config.disable_git_history_based_policy),
        git_history_strict=bool(kw.get("git_history_based_cleanup_strict")), cleanup=config,
        keep_signatures=bool(kw["keep_signatures"]), delete_untagged=bool(kw["delete_untagged"]),
    )
    out = Output(family, sys.stderr)
    clients = run.Clients(settings, env)
    started = run.started_now()
    target = run.resolve_target(repo, env, clients, settings.directory)
    out.status(f"{command}: {target.images_repo.address} ({target.images_repo.mode}), "
               f"{plural(len(target.managed), 'managed image')}")
    if config is not None and config.disable:
        out.status("cleanup: disabled in werf.yaml (cleanup.disable: true): nothing is removed")
        return
    if config is not None and config.disable_kubernetes_based_policy and kube is not None:
        kube = dataclasses.replace(kube, without_kube=True)  # werf.yaml: cleanup.disableKubernetesBasedPolicy
    if policy is not None and kube is not None:  # before planning: a cluster that cannot be read removes nothing
        from ci_env.cleanup.in_use import scan

        in_use = scan(kube, env)
        if in_use.summary() is not None:
            out.status(f"ci-env: {in_use.summary()}")
        policy = dataclasses.replace(policy, in_use=in_use)
    planning = Throttle(lambda line: out.status(f"ci-env: {line}"))
    credentials = {IMAGES_REPO: repo.credentials(IMAGES_REPO), STAGES_STORAGE: repo.credentials(STAGES_STORAGE)}
    journal_path = None if dry_run else _journal_path(kw, command, target, env)
    resumption = None
    if journal_path is not None:
        resumption = _resume(command, journal_path, target, clients, settings, env, credentials, policy, budget, out)
        if resumption is not None and (resumption.stopped or (budget is not None and budget.reached())):
            _stopped_before_planning(command, target, resumption, started, journal_path, kw, env, out)
    plan, inventory = run.make_plan(target, clients, settings, policy, datetime.now(timezone.utc), progress=planning,
                                    credentials=credentials)
    deletions = plan.deletions
    if kw.get("keep_tag"):
        from ci_env.cleanup.policies import KIND_TAG
        from ci_env.cleanup.protections import keep_tag_warnings

        found = [name for d in plan.decisions if d.kind == KIND_TAG for name in (d.tag, d.stored_tag)]
        for warning in keep_tag_warnings(kw["keep_tag"], found):
            out.status(f"ci-env: warning: {warning}")
    if any(why == run.NO_DAEMON for _ref, why in inventory.skipped):
        out.status(f"ci-env: warning: {run.NO_DAEMON}")
    for line in history_lines(plan, settings, config, kw):
        out.status(line)
    out.status(f"plan: {len(plan.kept)} kept, {len(deletions)} to remove "
               f"({plural(run.stage_count(plan), 'stage')})" + (" -- dry run, nothing is removed" if dry_run else ""))
    try:
        result = run.execute(command, target, plan, inventory, clients, settings, env, credentials,
                             progress=_progress(), started=started, phases=planning, budget=budget,
                             journal=journal_path)
    except CiEnvError:
        if kw["report"] is not None:
            empty = rpt.Result(command, dry_run, str(target.images_repo.address), None, plan, {}, inventory.skipped,
                               started, run.started_now())
            rpt.write_json(kw["report"], empty.as_json())
        raise
    result = dataclasses.replace(result, waits=_waits(), resumed=resumption.resumed if resumption else ())
    for warning in result.warnings:
        out.status(f"ci-env: warning: {warning}")
    lines = rpt.table_lines(result)  # one line at a time: 100,000 decisions are never a table in memory
    if family in FOLDED_PLAN:  # the plan (dry run or not) in a collapsible section of the job log, on stdout
        title = f"{command} plan: {len(deletions)} to remove" + (" (dry run, nothing removed)" if dry_run else "")
        with Output(family, sys.stdout).section(title, name=f"ci-env-{command}") as section:
            for line in lines:
                section.line(line)
    else:
        for line in lines:
            click.echo(line)
    if kw["report"] is not None:
        result.write_json(kw["report"])
    rpt.append_step_summary(env, rpt.markdown(result))
    counts = result.counts()
    if purge_force is False:
        out.status("purge: nothing removed; pass --force (WERF_FORCE=true) to remove everything listed above")
    out.status(f"{command}: {counts['removed']} removed, {counts['absent']} already gone, {counts['failed']} failed"
               + (f", {counts['not_attempted']} not started" if counts["not_attempted"] else "")
               + (f", {counts['moved']} moved since the plan (left alone)" if counts["moved"] else "")
               + (f", {plural(result.records_forgotten, 'record')} forgotten" if result.records_forgotten else "")
               + rpt.wait_line(result.waits))
    if result.stopped:
        out.status(_stopped_line(command, counts["not_attempted"], result.journal))
    if result.failed:
        raise RegistryError(f"{plural(len(result.failed), 'tag')} could not be removed (run again to retry):\n"
                            + "\n".join(rpt.failure_lines(result.failed)))
    if result.stopped:
        raise click.exceptions.Exit(EXIT_PARTIAL)


#: the exit code of a run the time budget stopped with removals left (``ci_env.cleanup.time_budget``).
EXIT_PARTIAL = 3


def _time_budget(kw: dict[str, Any]) -> Any:
    """The run's TimeBudget (started now) from --time-budget, or None; exit 2 for a duration that is not one."""
    text = kw.get("time_budget")
    if not text:
        return None
    from ci_env.cleanup.protections import duration_or_none
    from ci_env.cleanup.time_budget import TimeBudget
    from ci_env.errors import UsageError

    duration = duration_or_none(text)
    if duration is None or duration.total_seconds() <= 0:
        raise UsageError(f"--time-budget {text!r} is not a duration: write a number with a unit, e.g. 50m, 2h or "
                         "1h30m (s, m, h, d), below the CI job's timeout")
    return TimeBudget(duration.total_seconds())


def _journal_path(kw: dict[str, Any], command: str, target: Any, env: dict[str, str]) -> Path:
    from ci_env.cleanup import journal, run

    given = kw.get("journal")
    return Path(given) if given else journal.default_path(env, run.journal_target(command, target))


def _resume(command: str, path: Path, target: Any, clients: Any, settings: Any, env: dict[str, str],
            credentials: Any, policy: Any, budget: Any, out: Any) -> Any:
    """Finish the journal an earlier run left at ``path`` (None when there is none with work left)."""
    from ci_env.cleanup import journal, resume, run
    from ci_env.output import plural

    state = journal.load(path, run.journal_target(command, target))
    if state is None:
        return None
    pending = state.pending
    if not pending:
        journal.Journal.reopen(state).finish()
        return None
    when = state.created.isoformat().replace("+00:00", "Z")
    out.status(f"{command}: resuming the journal {path}: {plural(len(pending), 'removal')} planned by the run of "
               f"{when} not done yet; each is removed only if its tag still points at the planned digest")
    lister = run.images_lister(target, clients, credentials)
    resumption = resume.resume(state, command, target, clients, settings, env, credentials, policy, budget=budget,
                               progress=_progress(), lister=lister)
    found = resume.counts(resumption.resumed)
    out.status(f"journal: {found.get('removed', 0)} removed, {found.get('absent', 0)} already gone, "
               f"{found.get('moved', 0)} moved since (kept), {found.get('protected', 0)} protected now (kept), "
               f"{found.get('failed', 0)} failed" + (f", {found['not-attempted']} not started"
                                                     if found.get("not-attempted") else ""))
    for warning in resumption.warnings:
        out.status(f"ci-env: warning: {warning}")
    return resumption


def _stopped_before_planning(command: str, target: Any, resumption: Any, started: str, path: Path,
                             kw: dict[str, Any], env: dict[str, str], out: Any) -> None:
    """The time budget ended while finishing the journal: report what was done, say what remains, exit 3."""
    from ci_env.cleanup import report as rpt
    from ci_env.cleanup import run
    from ci_env.cleanup.policies import Plan

    left = sum(1 for r in resumption.resumed if r.outcome == "not-attempted")
    result = rpt.Result(command, False, str(target.images_repo.address), run.journal_target(command, target)
                        .stages_storage, Plan(()), {}, (), started, run.started_now(), stopped=True,
                        journal=str(path) if path.exists() else None, waits=_waits(), resumed=resumption.resumed)
    if kw["report"] is not None:
        rpt.write_json(kw["report"], result.as_json())
    out.status(f"{command}: finishing the journal took the time budget; nothing new was planned"
               + rpt.wait_line(result.waits))
    out.status(_stopped_line(command, left, result.journal))
    raise click.exceptions.Exit(EXIT_PARTIAL)


def _stopped_line(command: str, left: int, journal: str | None) -> str:
    from ci_env.output import plural

    where = f" (journal {journal})" if journal else ""
    return (f"{command}: stopped by --time-budget with {plural(left, 'removal')} not started: run {command} again "
            f"to continue from the journal{where}; exit code {EXIT_PARTIAL}")


def _waits() -> tuple[Any, ...]:
    from ci_env.registry.budget import shared

    return tuple(shared().stats())


@click.command()
@repo_options
@_with(_common_params(cleanup=True))
def cleanup(repo: Any, **kw: Any) -> None:
    """Remove the tags no one needs any more, by the policy of the strategy each was published with.

    Content-signature tags (the default setup) are kept when a keep policy of werf.yaml (werf's defaults
    when it has none) reaches the commit that published them through git history. git-branch tags go
    with their branch, git-tag tags with their git tag (or beyond the limit/expiry), git-commit tags with
    their commit (or beyond the limit/expiry); custom tags stay. --keep-tag, --keep-list and
    --keep-published-within win over every policy, and so does a workload in Kubernetes that uses a tag
    (every kubeconfig context is read unless --without-kube; one that cannot be read stops cleanup before
    anything is removed). Then the stages no kept tag uses are removed. Exits 1 listing the tags that could
    not be removed, 3 when --time-budget stopped it with removals left (run it again: it finishes the journal
    first, removing a planned tag only if it still points at the planned digest).
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
