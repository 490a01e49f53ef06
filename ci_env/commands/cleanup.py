"""`ci-env cleanup` and `ci-env purge`: parsing and printing only; the work is in ``ci_env.cleanup``."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ci_env.cleanup.time_budget import EXIT_PARTIAL
from ci_env.cli_options import docker_config_param, insecure_registry_param, repo_options, repo_options_in
from ci_env.output import plural

if TYPE_CHECKING:
    from ci_env.cleanup.in_use import KubeSettings
    from ci_env.cleanup.policies import Policy
    from ci_env.cleanup.progress import Bar, Throttle
    from ci_env.cleanup.report import Refusal, Result
    from ci_env.cleanup.target import Settings
    from ci_env.cleanup.time_budget import TimeBudget
    from ci_env.options import RepoOptions
    from ci_env.output import Output
    from ci_env.registry.untag import Progress, Summary
    from ci_env.retention.rules import RulesFile

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
    """The options of cleanup (``cleanup`` True) or purge.

    Size: a table, one entry per option, long on purpose."""
    params = [
        click.Option(["--dry-run"], is_flag=True, envvar="WERF_DRY_RUN",
                     help="Print the plan; remove nothing [env: WERF_DRY_RUN]"),
        click.Option(["--report"], type=click.Path(dir_okay=False, path_type=Path), default=None,
                     envvar="WERF_CLEANUP_REPORT",
                     help="Write the plan and each removal's outcome as JSON to FILE [env: WERF_CLEANUP_REPORT]"),
        click.Option(["--html-report"], type=click.Path(dir_okay=False, path_type=Path), default=None,
                     envvar="WERF_CLEANUP_HTML_REPORT",
                     help="Write the plan, outcomes, bytes freed and each image's tags over time as one "
                     "self-contained HTML page to FILE [env: WERF_CLEANUP_HTML_REPORT]"),
        click.Option(["--measure-kept"], is_flag=True, envvar="WERF_CLEANUP_MEASURE_KEPT",
                     help="Also read the manifest of every kept image (one request each), so the bytes freed are "
                     "exact instead of an upper bound [env: WERF_CLEANUP_MEASURE_KEPT]"),
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
                     "(GitHub Packages, ECR, Harbor) [env: WERF_DELETE_UNTAGGED]"),
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
            click.Option(["--removed-branch"], metavar="BRANCH", default=None, envvar="WERF_REMOVED_BRANCH",
                         help="Remove only the images whose only reason to exist was BRANCH, deleted (or its merge "
                         "request merged): its branch tags, and the images it published that no other branch or tag "
                         "reaches, at once (no --keep-published-within); nothing when BRANCH exists "
                         "[env: WERF_REMOVED_BRANCH]"),
            click.Option(["--config"], metavar="PATH", default=None, envvar="WERF_CONFIG",
                         help="werf.yaml with the keep policies, relative to --dir "
                         "[env: WERF_CONFIG; default: werf.yaml or werf.yml in --dir, if any]"),
            *_kube_params(),
            *_rules_params(),
        ]
    else:
        params.append(click.Option(["--force"], is_flag=True, envvar="WERF_FORCE",
                                   help="Really remove everything [env: WERF_FORCE]"))
    return params


def _rules_params() -> list[click.Option]:
    """Cleanup by retention rules (docs/retention-rules.md): any repository, whoever built it."""
    return [
        click.Option(["--rules"], type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
                     envvar="WERF_CLEANUP_RULES",
                     help="Clean the repositories a retention rules file selects, by its rules, instead of the "
                     "managed images (no images repo or stages storage needed) [env: WERF_CLEANUP_RULES]"),
        click.Option(["--repository", "rules_repositories"], multiple=True, metavar="SELECTOR",
                     help="With --rule: a repository to clean by rules: team/app, a glob 'team/*', or team/ for "
                     "everything under team (repeatable)"),
        click.Option(["--rule", "rules_rules"], multiple=True, metavar="SPEC",
                     help="A retention rule, in priority order (repeatable): 'tags=REGEX;exclude=REGEX;keep-last=N;"
                     "keep-within=D;older-than=D;except-last=N' or 'keep=all'"),
        click.Option(["--untagged", "rules_untagged"], default=None, metavar="keep|remove|SPEC",
                     help="With --rule: untagged manifests nothing references: keep (default), remove, or "
                     "'older-than=D;except-last=N'"),
        click.Option(["--unit", "rules_unit"], default=None, metavar="tag|image",
                     help="With --rule: judge each tag alone (tag, default) or each image with all its tags"),
        click.Option(["--registry", "rules_registry"], default=None, metavar="HOST[:PORT]",
                     envvar="WERF_CLEANUP_REGISTRY",
                     help="The registry of the rules' selectors that name no host [env: WERF_CLEANUP_REGISTRY]"),
        click.Option(["--shard"], default=None, metavar="I/N", envvar="WERF_CLEANUP_SHARD",
                     help="Clean only this shard's repositories of N (1-based; each repository falls to exactly one "
                     "shard); default: CI_NODE_INDEX/CI_NODE_TOTAL of GitLab's parallel: [env: WERF_CLEANUP_SHARD]"),
    ]


def _rules_given(kw: dict[str, Any]) -> bool:
    return bool(kw.get("rules") or kw.get("rules_repositories") or kw.get("rules_rules"))


def _rules_file(kw: dict[str, Any]) -> RulesFile:
    """The rules from --rules FILE or from --repository/--rule (not both: exit 2)."""
    from ci_env.errors import UsageError
    from ci_env.retention.options import rules_from_options
    from ci_env.retention.rules import load_rules

    given = kw.get("rules_repositories") or kw.get("rules_rules") or kw.get("rules_untagged") or kw.get("rules_unit")
    if kw.get("rules") is not None:
        if given:
            raise UsageError("--rules FILE and --repository/--rule/--untagged/--unit both give rules: use one of them")
        return load_rules(kw["rules"])
    return rules_from_options(kw["rules_repositories"], kw["rules_rules"], kw["rules_untagged"], kw["rules_unit"])


def _run_rules(repo: RepoOptions, kw: dict[str, Any]) -> None:
    """Cleanup by retention rules: the rules checked (exit 2, nothing removed), the run, its result printed."""
    from ci_env.cascade import IMAGES_REPO
    from ci_env.ci import detect
    from ci_env.cleanup import pipeline
    from ci_env.cleanup.progress import for_stream
    from ci_env.cleanup.protections import compile_keep_tags, read_keep_list
    from ci_env.cleanup.report import check_writable
    from ci_env.cleanup.rules_run import RulesRequest
    from ci_env.cleanup.shards import shard_from
    from ci_env.output import Output

    rules = _rules_file(kw)
    env = dict(os.environ)
    shard = shard_from(kw.get("shard"), env)
    for option in ("report", "html_report"):
        if kw[option] is not None:
            check_writable(kw[option], "--" + option.replace("_", "-"))
    compile_keep_tags(kw["keep_tag"])  # exit 2 for a pattern that is none
    keep_list = read_keep_list(kw["keep_list"]) if kw["keep_list"] is not None else None
    budget = _time_budget(kw)
    if kw.get("max_requests_per_second"):
        from ci_env.registry.budget import shared

        shared().configure(requests_per_second=kw["max_requests_per_second"])
    family = detect(env).family
    out = Output(family, sys.stderr)
    planning = for_stream(sys.stderr, lambda line: out.status(f"ci-env: {line}"))
    request = RulesRequest(
        rules, _settings(kw, env, dry_run=bool(kw["dry_run"])), env, registry=kw.get("rules_registry"),
        shard=shard, keep_tags=tuple(kw.get("keep_tag") or ()), keep_list=keep_list, kube=_kube_settings(kw),
        credentials=repo.credentials(IMAGES_REPO),
        implementation=repo.images_repo_implementation.value if repo.images_repo_implementation else None,
        journal=Path(kw["journal"]) if kw.get("journal") else None,
        budget=budget,
    )
    result = pipeline.run_rules(request, pipeline.Display(out.status, planning, _progress(planning)))
    _print(result, kw, env, family, out, None)


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


def _kube_settings(kw: dict[str, Any]) -> KubeSettings:
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
    from ci_env.durations import bounded_duration

    return None if value < 0 else bounded_duration(days=value)


def _count(value: int) -> int | None:
    return None if value < 0 else value


def _progress(bar: Bar | Throttle | None = None) -> Progress:
    from ci_env.cleanup.progress import Bar

    def report(done: int, total: int, summary: Summary) -> None:
        if isinstance(bar, Bar):  # a terminal: the removals' bar
            bar("removing", done, total, f"{summary.count('failed')} failed")
            return
        click.echo(f"ci-env: removed {done}/{total} ({summary.count('failed')} failed)", err=True)

    return report


def _run(command: str, repo: RepoOptions, kw: dict[str, Any], policy: Policy | None, purge_force: bool | None,
         kube: KubeSettings | None = None) -> None:
    """Check the options, run the pipeline (``ci_env.cleanup.pipeline``), print its result, exit by it."""
    from ci_env.ci import detect
    from ci_env.cleanup import pipeline
    from ci_env.cleanup.progress import for_stream
    from ci_env.cleanup.report import check_writable
    from ci_env.output import Output

    if kw["report"] is not None:
        check_writable(kw["report"])
    if kw["html_report"] is not None:
        check_writable(kw["html_report"], "--html-report")
    budget = _time_budget(kw)
    if kw.get("max_requests_per_second"):
        from ci_env.registry.budget import shared

        shared().configure(requests_per_second=kw["max_requests_per_second"])
    env = dict(os.environ)
    family = detect(env).family
    out = Output(family, sys.stderr)
    planning = for_stream(sys.stderr, lambda line: out.status(f"ci-env: {line}"))
    source = click.get_current_context().get_parameter_source("keep_published_within")
    request = pipeline.Request(
        command, repo, _settings(kw, env, dry_run=bool(kw["dry_run"]) or purge_force is False), env, policy, kube,
        config_path=kw.get("config"), keep_within_given=source not in (click.core.ParameterSource.DEFAULT, None),
        keep_tags=tuple(kw.get("keep_tag") or ()),
        ignored_limits=tuple(name for name in ("stages_signature_strategy_limit",
                                               "stages_signature_strategy_expiry_days") if kw.get(name, -1) != -1),
        journal=Path(kw["journal"]) if kw.get("journal") else None, budget=budget, report=kw["report"],
    )
    result = pipeline.run(request, pipeline.Display(out.status, planning, _progress(planning)))
    if result is not None:
        _print(result, kw, env, family, out, purge_force)


def _settings(kw: dict[str, Any], env: dict[str, str], *, dry_run: bool) -> Settings:
    """The run's Settings from the options (werf.yaml's cleanup section is applied by the pipeline)."""
    from ci_env.cleanup.target import Settings
    from ci_env.registry.auth import docker_config_dir

    insecure = tuple(kw["insecure_registries"]) + tuple(
        h.strip() for h in env.get("WERF_INSECURE_REGISTRY", "").split(",") if h.strip()
    )
    return Settings(
        directory=Path(kw["directory"]), synchronize=bool(kw.get("git_history_synchronization")),
        dry_run=dry_run, parallel=kw["parallel"],
        docker_config=docker_config_dir(kw["docker_config"], env), insecure_registries=insecure,
        git_history_based=bool(kw.get("git_history_based_cleanup", True)), measure_kept=bool(kw["measure_kept"]),
        git_history_strict=bool(kw.get("git_history_based_cleanup_strict")),
        keep_signatures=bool(kw["keep_signatures"]), delete_untagged=bool(kw["delete_untagged"]),
    )


def _print(result: Result, kw: dict[str, Any], env: dict[str, str], family: str, out: Output,
           purge_force: bool | None) -> None:
    """The result: warnings, the plan's table (folded where the CI folds it), the reports, the summary line;
    then the exit code: 1 for failed removals, tags or untagged manifests (or a dry run whose real run would
    fail), 3 for a stopped run."""
    from ci_env.cleanup import html_report, notes, step_summary
    from ci_env.cleanup import report as rpt
    from ci_env.errors import RegistryError
    from ci_env.output import Output

    command, dry_run = result.command, result.dry_run
    for warning in result.warnings:
        out.status(f"ci-env: warning: {warning}")
    lines = rpt.table_lines(result)  # one line at a time: 100,000 decisions are never a table in memory
    if family in FOLDED_PLAN:  # the plan (dry run or not) in a collapsible section of the job log, on stdout
        title = f"{command} plan: {len(result.plan.deletions)} to remove" + (
            " (dry run, nothing removed)" if dry_run else "")
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
    rpt.append_step_summary(env, step_summary.markdown(result, kw["html_report"] and str(kw["html_report"]), env))
    if purge_force is False:
        out.status("purge: nothing removed; pass --force (WERF_FORCE=true) to remove everything listed above")
    out.status(_summary_line(result))
    counts = result.counts()
    if result.stopped:
        out.status(notes.stopped_line(command, counts["not_attempted"], result.journal))
    if result.would_fail:
        raise _would_fail(command, result.refusals)
    if result.failed:
        raise RegistryError(f"{plural(len(result.failed), 'tag')} could not be removed (run again to retry):\n"
                            + "\n".join(rpt.failure_lines(result.failed)))
    untagged_failures = result.untagged_failures()
    if untagged_failures:
        heading = ("untagged manifests could not be read (dry run, nothing was removed; the real run would fail "
                   "the same way)" if dry_run else
                   "untagged manifests could not be removed (the rest of the cleanup was done; run again to retry)")
        raise RegistryError(f"{heading}:\n" + "\n".join(untagged_failures))
    if result.skipped_fail and result.skipped:
        raise RegistryError(f"{plural(len(result.skipped), 'repository')} could not be listed, nothing was removed "
                            "there (the others were cleaned):\n"
                            + "\n".join(f"  {reference}: {why}" for reference, why in result.skipped))
    if result.stopped:
        raise click.exceptions.Exit(EXIT_PARTIAL)


def _summary_line(result: Result) -> str:
    """The run's last line: what became of the removals and records, the waits, the bytes freed."""
    from ci_env.cleanup import report as rpt

    command, dry_run, counts = result.command, result.dry_run, result.counts()
    would = "would be " if dry_run else ""
    return (f"{command}: {counts['removed']} removed, {counts['absent']} already gone, {counts['failed']} failed"
            + (f", {counts['not_attempted']} not started" if counts["not_attempted"] else "")
            + (f", {counts['moved']} moved since the plan (left alone)" if counts["moved"] else "")
            + (f", {plural(result.records_forgotten, 'record')} forgotten" if result.records_forgotten else "")
            + (f", {plural(result.metadata_pruned, 'metadata record')} {would}pruned" if result.metadata_pruned
               else "")
            + (f", {plural(result.managed_forgotten, 'managed image')} {would}forgotten"
               if result.managed_forgotten else "")
            + rpt.wait_line(result.waits) + (f"; {result.bytes.phrase(dry_run)}" if result.bytes is not None else "")
            + (f"; the real {command} would fail: its preflight refuses "
               f"{plural(len(result.refusals), 'repository')}" if result.would_fail else ""))


def _would_fail(command: str, refusals: Sequence[Refusal]) -> Exception:
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




def _removed_branch(text: str | None) -> str | None:
    """The branch of ``--removed-branch`` (``refs/heads/NAME`` or ``NAME``); exit 2 for one git refuses."""
    if text is None:
        return None
    import subprocess

    from ci_env.cleanup.removed_reference import branch_name
    from ci_env.errors import UsageError

    name = branch_name(text.strip())
    try:
        valid = bool(name) and not name.startswith("-") and subprocess.run(
            ["git", "check-ref-format", f"refs/heads/{name}"], capture_output=True, check=False).returncode == 0
    except OSError:  # no git: cleanup says so when it reads the history
        valid = bool(name) and not any(c.isspace() for c in name)
    if not valid:
        raise UsageError(f"--removed-branch {text!r} is not a branch name: give the deleted branch, e.g. feature/x "
                         "(GitLab: $CI_COMMIT_REF_NAME, GitHub: ${{ github.event.ref }})")
    return name


def _time_budget(kw: dict[str, Any]) -> TimeBudget | None:
    """The run's TimeBudget (started now) from --time-budget, or None; exit 2 for a duration that is not one."""
    text = kw.get("time_budget")
    if not text:
        return None
    from ci_env.cleanup.time_budget import TimeBudget
    from ci_env.durations import duration_or_none
    from ci_env.errors import UsageError

    duration = duration_or_none(text)
    if duration is None or duration.total_seconds() <= 0:
        raise UsageError(f"--time-budget {text!r} is not a duration: write a number with a unit, e.g. 50m, 2h or "
                         "1h30m (s, m, h, d), below the CI job's timeout")
    return TimeBudget(duration.total_seconds())


@click.command()
@repo_options_in
@_with(_common_params(cleanup=True))
def cleanup(repo: Callable[[Mapping[str, str]], RepoOptions], **kw: Any) -> None:
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

    if _rules_given(kw):
        from ci_env.commands.rules_mode import refuse_managed_options, rules_env

        refuse_managed_options(click.get_current_context())
        _run_rules(repo(rules_env(os.environ)), kw)
        return
    options = repo(os.environ)

    policy = Policy(
        git_tag=Limit(_count(kw["git_tag_strategy_limit"]), _days(kw["git_tag_strategy_expiry_days"])),
        git_commit=Limit(_count(kw["git_commit_strategy_limit"]), _days(kw["git_commit_strategy_expiry_days"])),
        stages_signature=Limit(_count(kw["stages_signature_strategy_limit"]),
                               _days(kw["stages_signature_strategy_expiry_days"])),
        keep_tags=compile_keep_tags(kw["keep_tag"]),
        keep_published_within=parse_duration(kw["keep_published_within"]),
        keep_list=read_keep_list(kw["keep_list"]) if kw["keep_list"] is not None else KeepList(),
        removed_branch=_removed_branch(kw["removed_branch"]),
    )
    _run("cleanup", options, kw, policy, None, kube=_kube_settings(kw))


@click.command()
@repo_options
@_with(_common_params(cleanup=False))
def purge(repo: RepoOptions, **kw: Any) -> None:
    """Remove every tag of every managed image, and every stage.

    Without --force only the plan is printed and nothing is removed (exit 0; 1 when the real run's preflight
    would refuse, as for cleanup --dry-run). The managed-images list
    itself is kept; publication records of removed tags are forgotten.
    """
    _run("purge", repo, kw, None, bool(kw["force"]))
