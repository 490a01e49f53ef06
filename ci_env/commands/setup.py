"""`ci-env setup` (and the shorthands `ci-env gitlab`, `ci-env github`): a private Docker config
for this job, login, and the exports for the job's shell.

On any error stdout carries no exports, only the shell's failure text (``exit 1``
for posix), so ``eval "$(ci-env setup)"`` and ``. "$(ci-env setup --as-file)"``
stop the job under ``set -e``; the half-made job directory is removed.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ci_env.contract import TAGGING_STRATEGIES
from ci_env.errors import UsageError

if TYPE_CHECKING:
    from ci_env.ci.facts import JobFacts, RegistryLogin
    from ci_env.render import Export, Rendered

#: ``--shell`` values (the formats of :data:`ci_env.render.FORMATS`, listed here so that
#: ``--help`` does not import the renderer).
SHELLS: tuple[str, ...] = ("posix", "fish", "powershell", "cmdexe", "dotenv", "github-env", "json")
#: ``--images-repo-mode`` values (as :data:`ci_env.registry.naming.MODES`; auto resolves per implementation).
IMAGES_REPO_MODES: tuple[str, ...] = ("auto", "monorepo", "multirepo")
#: ``--tagging-strategy`` values (the first is the default), as in :mod:`ci_env.exports`.
#: What ``--as-file`` prints when setup fails: a path that can never exist (``/dev/null`` is not
#: a directory), so ``. "$(ci-env setup --as-file)"`` fails in every shell.
FAILED_SCRIPT_PATH = "/dev/null/ci-env-setup-failed"
#: The name of the ``--as-file`` script inside the job's private directory.
SCRIPT_NAME = "ci-env-exports"


@dataclass(frozen=True)
class SetupOptions:
    """The options of `ci-env setup`, as parsed."""

    shell: str = "posix"
    as_file: bool = False
    output: str | None = None
    docker_config: str | None = None
    tmp_dir: str | None = None
    images_repo: str | None = None
    stages_storage: str | None = None
    images_repo_mode: str | None = None
    tagging_strategy: str | None = None
    override: bool = False
    no_login: bool = False
    no_verify_login: bool = False
    insecure_registry: tuple[str, ...] = ()
    verbose: bool = False


F = TypeVar("F", bound=Callable[..., Any])


class SetupCommand(click.Command):
    """A click command that, when its arguments cannot be parsed, still leaves the shell's failure
    text on stdout: a mistyped option must stop ``eval "$(ci-env setup ...)"`` too."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        given = list(args)
        try:
            return super().parse_args(ctx, args)
        except click.exceptions.UsageError:
            _deliver_failure(_options_from_argv(given))
            raise


def _options_from_argv(args: Sequence[str]) -> SetupOptions:
    """The output options of a command line that click could not parse (best effort)."""
    shell, as_file, output = "posix", False, None
    for index, arg in enumerate(args):
        following = args[index + 1] if index + 1 < len(args) else None
        if arg == "--shell" and following is not None:
            shell = following
        elif arg.startswith("--shell="):
            shell = arg.split("=", 1)[1]
        elif arg == "--as-file":
            as_file = True
        elif arg in ("-o", "--output") and following is not None:
            output = following
        elif arg.startswith("--output="):
            output = arg.split("=", 1)[1]
    return SetupOptions(shell=shell, as_file=as_file, output=output)


def _setup_options(func: F) -> F:
    """The options shared by `setup`, `gitlab` and `github`."""
    from ci_env.cli_options import docker_config_option, insecure_registry_option

    options = [
        click.option(
            "--shell",
            type=click.Choice(SHELLS),
            default="posix",
            show_default=True,
            help="Output format: posix (sh, bash, zsh, dash), fish, powershell, cmdexe, dotenv, "
            "github-env (appends to $GITHUB_ENV), json.",
        ),
        click.option(
            "--as-file",
            is_flag=True,
            help="Write the script to a new 0600 file in the job's 0700 directory and print only its path: "
            '. "$(ci-env setup --as-file)".',
        ),
        click.option("-o", "--output", metavar="PATH", help="Write the script to PATH (truncating it); print nothing."),
        docker_config_option("base"),
        click.option(
            "--tmp-dir",
            metavar="DIR",
            help="Where the job's directory is created (default: $WERF_TMP_DIR, $RUNNER_TEMP, system temp).",
        ),
        click.option(
            "-i", "--images-repo", metavar="ADDRESS",
            help="Images repo (default: $WERF_IMAGES_REPO, the CI's registry).",
        ),
        click.option(
            "-s",
            "--stages-storage",
            metavar="ADDRESS|:local",
            help="Stages storage (default: $WERF_STAGES_STORAGE, <images repo>/stages; required where the "
            "registry has no nested repositories and the images repo is a repository).",
        ),
        click.option(
            "--images-repo-mode",
            type=click.Choice(IMAGES_REPO_MODES),
            help="auto (default: per implementation), monorepo or multirepo; the resolved mode is exported as "
            "WERF_IMAGES_REPO_MODE.",
        ),
        click.option(
            "--tagging-strategy",
            type=click.Choice(TAGGING_STRATEGIES),
            help="stages-signature (default): WERF_TAG_BY_STAGES_SIGNATURE=true; tag-or-branch: "
            "WERF_TAG_GIT_TAG or WERF_TAG_GIT_BRANCH from the git ref.",
        ),
        click.option("--override", is_flag=True, help="Replace WERF_* variables that are already set."),
        click.option("--no-login", is_flag=True, help="Do not log in to the CI's registries."),
        click.option("--no-verify-login", is_flag=True, help="Write the credentials without checking them first."),
        insecure_registry_option("insecure_registry"),
        click.option("-v", "--verbose", is_flag=True, help="Say on stderr what setup does (never a secret)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.command(cls=SetupCommand)
@click.argument("system", required=False, default="auto", metavar="[auto|gitlab|github|generic]")
@_setup_options
def setup(system: str, **options: Any) -> None:
    """Give this CI job its own Docker config, log it in, and print the exports to source.

    \b
    eval "$(ci-env setup)"            # posix shells; fails the job under set -e on error
    . "$(ci-env setup --as-file)"
    """
    run_setup(system, SetupOptions(**options))


@click.command(cls=SetupCommand, hidden=True)
@_setup_options
def gitlab(**options: Any) -> None:
    """`ci-env setup gitlab`: the GitLab CI behaviour, whatever is detected."""
    run_setup("gitlab", SetupOptions(**options))


@click.command(cls=SetupCommand, hidden=True)
@_setup_options
def github(**options: Any) -> None:
    """`ci-env setup github`: the GitHub Actions behaviour, whatever is detected."""
    run_setup("github", SetupOptions(**options))


def _say(enabled: bool) -> Callable[[str], None]:
    def say(line: str) -> None:
        if enabled:
            sys.stderr.write(f"ci-env: {line}\n")
            sys.stderr.flush()

    return say


def _write_stdout(text: str) -> None:
    sys.stdout.flush()
    sys.stdout.buffer.write(text.encode("utf-8", "surrogateescape"))
    sys.stdout.buffer.flush()


def _write_new_private(path: Path, data: bytes) -> None:
    """Create ``path`` (must not exist) with mode 0600 and write ``data``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _write_truncating(path: str, data: bytes) -> None:
    """Write ``data`` to ``path``, truncating it (created 0600 when new; an existing regular file
    readable by others is narrowed to 0600 before anything is written, as the script may hold a token)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            info = os.fstat(fd)
            if stat.S_ISREG(info.st_mode) and info.st_mode & 0o077:
                os.fchmod(fd, 0o600)
            handle.write(data)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}; give -o a writable path") from None


def _check_options(options: SetupOptions, env: Mapping[str, str]) -> None:
    if options.shell not in SHELLS:
        raise UsageError(f"unknown --shell {options.shell!r}: use one of {', '.join(SHELLS)}")
    if options.as_file and options.output:
        raise UsageError("--as-file and -o/--output both say where the script goes: use one of them")
    if options.shell == "github-env":
        if options.as_file or options.output:
            raise UsageError("--shell github-env appends to $GITHUB_ENV: do not combine it with --as-file or -o")
        if not env.get("GITHUB_ENV"):
            raise UsageError(
                "--shell github-env appends to $GITHUB_ENV, which is not set: run it in an Actions step "
                "or choose another --shell"
            )


def run_setup(requested: str, options: SetupOptions, env: Mapping[str, str] | None = None) -> None:
    """Do the whole setup and deliver the script; on any error, remove the job directory, leave
    the shell's failure text where the script would have gone, and re-raise."""
    env = dict(os.environ) if env is None else env
    created: list[Path] = []
    try:
        _check_options(options, env)
        _setup(requested, options, env, _say(options.verbose), created.append)
    except BaseException:
        if created:
            from ci_env.dockerconfig import remove_job_dir

            for path in created:
                remove_job_dir(path)
        _deliver_failure(options)
        raise


def _setup(
    requested: str,
    options: SetupOptions,
    env: Mapping[str, str],
    say: Callable[[str], None],
    created: Callable[[Path], None],
) -> Path:
    """The pipeline: the job's facts -> every setting resolved once -> the job's Docker config and logins ->
    the exports -> the script in the shell's syntax -> delivered where the options say."""
    from ci_env.ci import detect
    from ci_env.configjson import job_config
    from ci_env.dockerconfig import collect_garbage, make_job_dir
    from ci_env.exports import ExportInputs, compute_exports
    from ci_env.options import resolve_setup
    from ci_env.render import kept_notes, render

    facts = detect(env, requested)
    say(f"CI system: {facts.system} ({facts.family} behaviour), job key: {facts.job_key or '(none)'}")
    settings = resolve_setup(
        {"images_repo": options.images_repo, "stages_storage": options.stages_storage,
         "images_repo_mode": options.images_repo_mode, "tagging_strategy": options.tagging_strategy,
         "insecure_registry": options.insecure_registry, "docker_config": options.docker_config,
         "tmp_dir": options.tmp_dir, "no_login": options.no_login},
        env, facts, override=options.override,
    )
    say(settings.describe())
    base, logins = settings.base, settings.logins
    planned = job_config(base, [(login.registry, login.username, login.password) for login in logins])
    say(
        f"base Docker config: {base.directory or '(none)'} (from {settings.docker_config.source})"
        + (" with $DOCKER_AUTH_CONFIG" if base.content is not None else "")
    )
    say(f"job directories under {settings.tmp_root} (from {settings.tmp_dir.source})")
    for removed in collect_garbage(settings.tmp_root):
        say(f"removed stale job directory {removed}")
    if not options.no_verify_login and logins:
        from ci_env.registry.probe import verify_logins

        verify_logins(logins, settings.insecure_registries, say)
    job_dir = make_job_dir(base.directory, planned.config, settings.tmp_root, facts.job_key)
    created(job_dir)
    say(f"job directory: {job_dir}")
    for login in logins:
        say(f"{_login_words(options.no_verify_login)} {login.registry} as {login.username}")
    exports = compute_exports(facts, ExportInputs(job_dir, settings), env)
    for export in exports:
        if export.kept:
            say(f"{export.name} is already set: kept")
    rendered = render(exports, options.shell)
    for note in kept_notes(exports, options.shell):
        sys.stderr.write(f"ci-env: {note}\n")
    _deliver(rendered, options, env, job_dir)
    if planned.left_behind:
        sys.stderr.write(f"ci-env: warning: {_store_warning(base.directory, planned.store, planned.left_behind)}\n")
    sys.stderr.write(f"ci-env: {summary(facts, job_dir, logins, exports, verified=not options.no_verify_login)}\n")
    sys.stderr.flush()
    return job_dir


def _login_words(unverified: bool) -> str:
    """``logged in to``, or ``credentials for`` when --no-verify-login wrote them unchecked."""
    return "credentials (not verified) for" if unverified else "logged in to"


def summary(facts: JobFacts, job_dir: Path, logins: Sequence[RegistryLogin], exports: Sequence[Export],
            verified: bool = True) -> str:
    """The one line setup prints on success: CI system and job, the job's Docker config, each login, the
    images repo with its implementation and mode, and the stages storage (never a secret)."""
    values = {export.name: export.value for export in exports}
    ci = f"{facts.system} job {facts.job_id}" if facts.job_id else (
        "no CI system detected" if facts.system == "none" else f"{facts.system} (no job id)")
    parts = [f"setup: {ci}", f"Docker config {job_dir}"]
    parts += [f"{_login_words(not verified)} {login.registry} as {login.username}" for login in logins] or [
        "no login"]
    images = values.get("WERF_IMAGES_REPO")
    if images:
        details = ", ".join(
            f"{what} {values[name]}"
            for what, name in (("implementation", "WERF_IMAGES_REPO_IMPLEMENTATION"), ("mode", "WERF_IMAGES_REPO_MODE"))
            if values.get(name)
        )
        parts.append(f"images repo {images}" + (f" ({details})" if details else ""))
    else:
        parts.append("no images repo")
    if values.get("WERF_STAGES_STORAGE"):
        parts.append(f"stages storage {values['WERF_STAGES_STORAGE']}")
    return "; ".join(parts)


def _store_warning(directory: Path | None, store: str, registries: Sequence[str]) -> str:
    where = f"the base Docker config {directory}" if directory else "the base Docker config"
    return (
        f"{where} keeps the credentials of {', '.join(registries)} in its credsStore {store!r}, which this job's "
        "config does not use (a store is shared by every job): log in to "
        + ("it" if len(registries) == 1 else "them")
        + " in the job (ci-env login REGISTRY) if the job needs "
        + ("it" if len(registries) == 1 else "them")
    )


def _deliver(rendered: Rendered, options: SetupOptions, env: Mapping[str, str], job_dir: Path) -> None:
    """Put the rendered script where ``options`` ask: a 0600 file in the job directory (its path on stdout),
    ``--output``, ``$GITHUB_ENV`` (github-env), or stdout."""
    data = rendered.text.encode("utf-8", "surrogateescape")
    if options.as_file:
        script = job_dir / f"{SCRIPT_NAME}{rendered.extension}"
        _write_new_private(script, (b"\xef\xbb\xbf" if rendered.bom else b"") + data)
        _write_stdout(f"{script}\n")
    elif options.output:
        _write_truncating(options.output, (b"\xef\xbb\xbf" if rendered.bom else b"") + data)
    elif options.shell == "github-env":
        try:
            with open(env["GITHUB_ENV"], "ab") as handle:
                handle.write(data)
        except OSError as exc:
            raise UsageError(
                f"cannot append to $GITHUB_ENV ({env['GITHUB_ENV']}): {exc.strerror}; run it in an Actions step "
                "or choose another --shell"
            ) from None
        _write_stdout(rendered.stdout)
    else:
        _write_stdout(rendered.text)


def _deliver_failure(options: SetupOptions) -> None:
    """Leave the failure text where the script would have gone (best effort, never raises)."""
    from ci_env.render import failure_text

    text = failure_text(options.shell if options.shell in SHELLS else "posix")
    try:
        if options.as_file:
            _write_stdout(f"{FAILED_SCRIPT_PATH}\n")
        elif options.output:
            if text:
                _write_truncating(options.output, text.encode())
        elif text:
            _write_stdout(text)
    except Exception:
        pass
