"""`ci-env report merge`: parsing and printing only; the merging is in ``ci_env.cleanup.report_merge``."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def report() -> None:
    """Work with cleanup reports (cleanup --report)."""


@report.command()
@click.argument("reports", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path), metavar="PATH",
              help="Where to write the merged report")
@click.option("--allow-partial", is_flag=True,
              help="Merge the shards given even when some are missing: the merged report is partial and names them")
def merge(reports: tuple[Path, ...], output: Path, allow_partial: bool) -> None:
    """Merge the JSON reports of the shards of one cleanup (cleanup --shard I/N --report ...) into one report of
    the same schema. Exits 2 when a report cannot be read or is not a cleanup report, when the reports are not
    the shards of one cleanup (different N or rules, a shard given twice, a tag two reports decide), or when a
    shard is missing (unless --allow-partial)."""
    from ci_env.cleanup.report import check_writable
    from ci_env.cleanup.report_merge import merge_files
    from ci_env.output import plural

    def warn(message: str) -> None:
        click.echo(f"ci-env: warning: {message}", err=True)

    check_writable(output, "--output")
    merged = merge_files(list(reports), output, allow_partial, warn)
    summary = merged["summary"]
    shards = merged.get("shards")
    if shards is not None and shards["missing"]:
        warn(f"the merged report is partial: {plural(len(shards['missing']), 'shard')} missing "
             f"({', '.join(shards['missing'])})")
    click.echo(f"report merge: {plural(len(reports), 'report')} -> {output}: {len(merged['decisions'])} decisions, "
               f"{summary.get('removed', 0)} removed, {summary.get('would_remove', 0)} would be removed, "
               f"{summary.get('failed', 0)} failed", err=True)
