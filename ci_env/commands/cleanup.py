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

from ci_env.cli_options import docker_config_param, insecure_registry_param, repo_options

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
        click.Option(["--html-report"], type=click.Path(dir_okay=False, path_type=Path), default=None,
                     envvar="WERF_CLEANUP_HTML_REPORT",
                     help="Write the plan, outcomes, bytes freed and each image's tags over time as one "
                     "self-contained HTML page to FILE [env: WERF_CLEANUP_HTML_REPORT]"),
        click.Option(["--parallel"], type=click.IntRange(1, 64), default=8, show_default=True,
                     envvar="WERF_CLEANUP_PARALLEL", help="Tags removed at once [env: WERF_CLEANUP_PARALLEL]"),
        docker_config_param("credentials"),
        insecure_registry_param(),
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
                     help="The journal of planned and finished removals a stopped or killed run leaves; the next "
                     "run removes first those today's plan removes too; keep it in a CI cache of the branch "
                     "[env: WERF_CLEANUP_JOURNAL; default: "
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
        click.Option(["--kube-scan-namespaces"], multiple=True, metavar="NS[,NS...]",
                     help="Scan only these namespaces in each context (repeatable, or comma separated); wins over "
                     "--scan-context-namespace-only [env: WERF_KUBE_SCAN_NAMESPACES, comma or space separated]"),
    ]


def _kube_settings(kw: dict[str, Any]) -> Any:
    from ci_env.cleanup.in_use import KubeSettings, scan_namespaces

    files = tuple(Path(p).expanduser() for p in (kw["kube_config"] or "").split(os.pathsep) if p)
    given = kw["kube_scan_namespaces"] or (os.environ.get("WERF_KUBE_SCAN_NAMESPACES", ""),)
    return KubeSettings(without_kube=bool(kw["without_kube"]), kube_config=files,
                        kube_context=kw["kube_context"] or None,
                        namespace_only=bool(kw["scan_context_namespace_only"]),
                        scan_namespaces=scan_namespaces(given))


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
    from ci_env.cleanup.durations import bounded_duration

    return None if value < 0 else bounded_duration(days=value)


def _count(value: int) -> int | None:
    return None if value < 0 else value


def _progress(bar: Any = None) -> Callable[[int, int, Any], None]:
    from ci_env.cleanup.progress import Bar

    def report(done: int, total: int, summary: Any) -> None:
        if isinstance(bar, Bar):  # a terminal: the removals' bar
            bar("removing", done, total, f"{summary.count('failed')} failed")
            return
        click.echo(f"ci-env: removed {done}/{total} ({summary.count('failed')} failed)", err=True)

    return report


def _with_config(policy: Any, config: Any) -> tuple[Any, str | None]:
    """The policy with werf.yaml's ``keepImagesBuiltWithinLastNHours`` / ``disableBuiltWithinLastNHoursPolicy``
    applied, and a warning for the user, if any.

    As in werf, ``disableBuiltWithinLastNHoursPolicy: true`` wins: no tag or stage is protected by its age, also
    when --keep-published-within (or WERF_KEEP_PUBLISHED_WITHIN) is given, which is then ignored with a warning.
    Otherwise --keep-published-within, when given, wins over ``keepImagesBuiltWithinLastNHours`` (as werf's
    --keep-stages-built-within-last-n-hours does)."""
    from dataclasses import replace

    source = click.get_current_context().get_parameter_source("keep_published_within")
    given = source not in (click.core.ParameterSource.DEFAULT, None)
    if config.disable_built_within_last_n_hours_policy:
        warning = None
        if given and policy.keep_published_within:
            warning = ("--keep-published-within (WERF_KEEP_PUBLISHED_WITHIN) is ignored: werf.yaml's "
                       "cleanup.disableBuiltWithinLastNHoursPolicy is true, so no tag or stage is protected by its "
                       "age; remove that line from werf.yaml to protect recent ones")
        return replace(policy, keep_published_within=timedelta(0)), warning
    if given:
        return policy, None
    if config.keep_images_built_within_last_n_hours is not None:
        from ci_env.cleanup.durations import bounded_duration

        hours = config.keep_images_built_within_last_n_hours
        return replace(policy, keep_published_within=bounded_duration(hours=hours)), None
    return policy, None


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
                     f"{plural(history.verdict.commits, 'commit')} read, "
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
    from ci_env.cleanup.progress import for_stream
    from ci_env.errors import CiEnvError, RegistryError
    from ci_env.options import IMAGES_REPO, STAGES_STORAGE
    from ci_env.output import Output, plural
    from ci_env.registry.auth import docker_config_dir

    if kw["report"] is not None:
        rpt.check_writable(kw["report"])
    if kw["html_report"] is not None:
        rpt.check_writable(kw["html_report"], "--html-report")
    budget = _time_budget(kw)
    if kw.get("max_requests_per_second"):
        from ci_env.registry.budget import shared

        shared().configure(requests_per_second=kw["max_requests_per_second"])
    env = dict(os.environ)
    config = None
    config_warning = None
    if policy is not None:  # werf.yaml's keep policies, read (and checked) before anything else
        config = run.cleanup_config(Path(kw["directory"]), kw.get("config"), env)
        policy, config_warning = _with_config(policy, config)
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
    if config_warning is not None:
        out.status(f"ci-env: warning: {config_warning}")
    clients = run.Clients(settings, env)
    started = run.started_now()
    target = run.resolve_target(repo, env, clients, settings.directory)
    out.status(f"{command}: {target.images_repo.address} ({target.images_repo.mode}), "
               f"{plural(len(target.managed), 'managed image')}")
    if config is not None and config.disable:  # no image is removed; the metadata records are pruned, as werf
        pruned, why = run.prune_when_disabled(target, clients, settings, policy, datetime.now(timezone.utc),
                                              credentials={IMAGES_REPO: repo.credentials(IMAGES_REPO),
                                                           STAGES_STORAGE: repo.credentials(STAGES_STORAGE)})
        out.status("cleanup: disabled in werf.yaml (cleanup.disable: true): no image is removed; "
                   + (f"metadata records not pruned: {why}" if why else
                      f"{plural(pruned, 'metadata record')} {'would be ' if dry_run else ''}pruned"))
        return
    if config is not None and config.disable_kubernetes_based_policy and kube is not None:
        kube = dataclasses.replace(kube, without_kube=True)  # werf.yaml: cleanup.disableKubernetesBasedPolicy
    if policy is not None and kube is not None:  # before planning: a cluster that cannot be read removes nothing
        from ci_env.cleanup.in_use import scan

        in_use = scan(kube, env)
        if in_use.summary() is not None:
            out.status(f"ci-env: {in_use.summary()}")
        policy = dataclasses.replace(policy, in_use=in_use)
    planning = for_stream(sys.stderr, lambda line: out.status(f"ci-env: {line}"))
    credentials = {IMAGES_REPO: repo.credentials(IMAGES_REPO), STAGES_STORAGE: repo.credentials(STAGES_STORAGE)}
    journal_path = None if dry_run else _journal_path(kw, command, target, env)
    earlier = None
    if journal_path is not None:
        journal_path, earlier = _earlier_journal(command, journal_path, target, settings, env, out)
    plan, inventory = run.make_plan(target, clients, settings, policy, datetime.now(timezone.utc), progress=planning,
                                    credentials=credentials, also=[e.key for e in earlier.pending] if earlier else ())
    triage = None if earlier is None else _triage(command, earlier, plan, target, inventory, out)
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
    from ci_env.cleanup import html_report, sizes_read

    skip = sizes_read.local_skip(target)
    manifests = sizes_read.read_plan(plan, clients, settings.parallel, planning, skip)  # before removing
    try:
        result = run.execute(command, target, plan, inventory, clients, settings, env, credentials,
                             progress=_progress(planning), started=started, phases=planning, budget=budget,
                             journal=journal_path, first=triage.first if triage is not None else ())
    except CiEnvError:
        if kw["report"] is not None:
            empty = rpt.Result(command, dry_run, str(target.images_repo.address), None, plan, {}, inventory.skipped,
                               started, run.started_now())
            rpt.write_json(kw["report"], empty.as_json())
        raise
    resumed = () if triage is None else triage.resumed(result.outcomes)
    result = dataclasses.replace(result, waits=_waits(), resumed=resumed,
                                 published=html_report.published_times(inventory.tags, inventory.stages))
    result = dataclasses.replace(result, bytes=sizes_read.figures(result, manifests, skip))
    if hasattr(planning, "close"):
        planning.close()
    if earlier is not None:
        _resumed_line(resumed, out)
        if result.journal is None:  # this run wrote no journal, or finished it: the earlier one is done with
            earlier.path.unlink(missing_ok=True)
    for warning in result.warnings:
        out.status(f"ci-env: warning: {warning}")
    lines = rpt.table_lines(result)  # one line at a time: 100,000 decisions are never a table in memory
    if family in FOLDED_PLAN:  # the plan (dry run or not) in a collapsible section of the job log, on stdout
        title = f"{command} plan: {len(deletions)} to remove" + (" (dry run, nothing removed)" if dry_run else "")
        if result.would_fail:
            title += f" -- the real {command} would fail: see the error below"
        with Output(family, sys.stdout).section(title, name=f"ci-env-{command}") as section:
            for line in lines:
                section.line(line)
    else:
        for line in lines:
            click.echo(line)
    if kw["report"] is not None:
        result.write_json(kw["report"])
    if kw["html_report"] is not None:
        html_report.write(kw["html_report"], result)
    rpt.append_step_summary(env, rpt.markdown(result, kw["html_report"] and str(kw["html_report"]), env))
    counts = result.counts()
    if purge_force is False:
        out.status("purge: nothing removed; pass --force (WERF_FORCE=true) to remove everything listed above")
    out.status(f"{command}: {counts['removed']} removed, {counts['absent']} already gone, {counts['failed']} failed"
               + (f", {counts['not_attempted']} not started" if counts["not_attempted"] else "")
               + (f", {counts['moved']} moved since the plan (left alone)" if counts["moved"] else "")
               + (f", {plural(result.records_forgotten, 'record')} forgotten" if result.records_forgotten else "")
               + (f", {plural(result.metadata_pruned, 'metadata record')} {'would be ' if dry_run else ''}pruned"
                  if result.metadata_pruned else "")
               + (f", {plural(result.managed_forgotten, 'managed image')} {'would be ' if dry_run else ''}forgotten"
                  if result.managed_forgotten else "")
               + rpt.wait_line(result.waits) + f"; {result.bytes.phrase(dry_run)}"
               + (f"; the real {command} would fail: its preflight refuses "
                  f"{plural(len(result.refusals), 'repository')}" if result.would_fail else ""))
    if result.stopped:
        out.status(_stopped_line(command, counts["not_attempted"], result.journal))
    if result.would_fail:
        raise _would_fail(command, result.refusals)
    if result.failed:
        raise RegistryError(f"{plural(len(result.failed), 'tag')} could not be removed (run again to retry):\n"
                            + "\n".join(rpt.failure_lines(result.failed)))
    if result.stopped:
        raise click.exceptions.Exit(EXIT_PARTIAL)


def _would_fail(command: str, refusals: Any) -> Exception:
    """The error of a dry run whose real run would stop at its preflight: each refusal, with the real run's exit
    code (that of the first refusal, as the real run stops there)."""
    from ci_env.errors import PreflightError

    code = refusals[0].exit_code
    error = PreflightError(
        f"dry run: the real {command} would fail before removing anything (exit {code}), its preflight refuses:\n"
        + "\n".join(f"  {r.message}" for r in refusals)
        + "\nfix the above, then run the dry run again")
    error.exit_code = code
    return error


#: the exit code of a run the time budget stopped with removals left (``ci_env.cleanup.time_budget``).
EXIT_PARTIAL = 3


def _time_budget(kw: dict[str, Any]) -> Any:
    """The run's TimeBudget (started now) from --time-budget, or None; exit 2 for a duration that is not one."""
    text = kw.get("time_budget")
    if not text:
        return None
    from ci_env.cleanup.durations import duration_or_none
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


def _earlier_journal(command: str, path: Path, target: Any, settings: Any, env: dict[str, str],
                     out: Any) -> tuple[Path | None, Any]:
    """The journal an earlier run left at ``path`` with work left (``journal.State``, or None), and where this run
    keeps its own (None: nowhere). A file git tracks in the clone is not a journal (whoever committed it wrote
    it): ignored, and this run keeps none. A journal of another CI ref (another branch's cache) is ignored and
    replaced. UsageError (exit 2) for a file that fails ``journal.load``'s checks."""
    from ci_env.cleanup import journal, run

    if path.exists() and journal.tracked_by_git(path, settings.directory):
        out.status(f"ci-env: warning: the cleanup journal {path} is a file git tracks in {settings.directory}: "
                   "ignored, and this run keeps no journal; pass --journal PATH outside the checkout's tracked "
                   "files")
        return None, None
    state = journal.load(path, run.journal_target(command, target))
    if state is None:
        return path, None
    ref = journal.current_ref(env)
    if state.ref != ref:
        out.status(f"{command}: the journal {path} was written for ref {state.ref or '(none)'}, not for "
                   f"{ref or '(none)'} (another branch's cache?): ignored, and replaced by this run's")
        return path, None
    if not state.pending:
        path.unlink(missing_ok=True)
        return path, None
    return path, state


def _triage(command: str, state: Any, plan: Any, target: Any, inventory: Any, out: Any) -> Any:
    """The earlier journal against today's ``plan`` (``resume.triage``), with a line saying what is done first
    and one per dropped entry (at most ``DROPPED_LINES``; the report lists them all)."""
    from ci_env.cleanup import resume
    from ci_env.output import plural

    triage = resume.triage(state, plan, resume.target_repositories(target), inventory.skipped)
    when = state.created.isoformat().replace("+00:00", "Z")
    out.status(f"{command}: resuming the journal {state.path} of the run of {when}: "
               f"{plural(len({e.key for e in triage.pending}), 'removal')} not done yet, "
               f"{len(triage.first)} of them go first (today's plan removes them too), "
               f"{len(triage.dropped)} dropped")
    for item in triage.dropped[:DROPPED_LINES]:
        out.status(f"journal: dropped {item.repository}:{item.tag} ({item.outcome}): {item.reason}")
    if len(triage.dropped) > DROPPED_LINES:
        out.status(f"journal: ... and {len(triage.dropped) - DROPPED_LINES} more dropped (the --report lists them)")
    return triage


#: dropped journal entries printed one per line; the report has every one.
DROPPED_LINES = 20


def _resumed_line(resumed: Any, out: Any) -> None:
    from ci_env.cleanup import resume

    found = resume.counts([r for r in resumed if r.outcome not in resume.DROPPED])
    out.status(f"journal: {found.get('removed', 0)} removed, {found.get('absent', 0)} already gone, "
               f"{found.get('failed', 0)} failed" + (f", {found['not-attempted']} not started"
                                                     if found.get("not-attempted") else ""))


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
    not be removed, 3 when --time-budget stopped it with removals left (run it again: it plans afresh and
    removes first what the journal planned and today's plan removes too). --dry-run removes nothing but
    runs the real run's preflight, and exits 1 when it refuses (the real run would stop there).
    """
    from ci_env.cleanup.policies import Limit, Policy
    from ci_env.cleanup.protections import KeepList, compile_keep_tags, read_keep_list
    from ci_env.durations import parse_duration

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

    Without --force only the plan is printed and nothing is removed (exit 0; 1 when the real run's preflight
    would refuse, as for cleanup --dry-run). The managed-images list
    itself is kept; publication records of removed tags are forgotten.
    """
    _run("purge", repo, kw, None, bool(kw["force"]))
