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
def merge(reports: tuple[Path, ...], output: Path) -> None:
    """Merge the JSON reports of the shards of one cleanup (cleanup --shard I/N --report ...) into one report of
    the same schema. Exits 2 when a report cannot be read, is not a cleanup report, or decides a tag another
    report decides too (two jobs ran the same shard)."""
    from ci_env.cleanup.report import check_writable
    from ci_env.cleanup.report_merge import merge_files
    from ci_env.output import plural

    check_writable(output, "--output")
    merged = merge_files(list(reports), output)
    summary = merged["summary"]
    click.echo(f"report merge: {plural(len(reports), 'report')} -> {output}: {len(merged['decisions'])} decisions, "
               f"{summary.get('removed', 0)} removed, {summary.get('would_remove', 0)} would be removed, "
               f"{summary.get('failed', 0)} failed", err=True)
