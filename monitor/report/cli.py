"""``monitor report``: write the daily report (HTML + Markdown) and optionally send the digest."""
from __future__ import annotations

import click

from monitor.cli_context import Context, as_of_option, handle_errors, pass_ctx


@click.command("report")
@click.option("--date", "date", default=None, metavar="YYYY-MM-DD",
              help="Day to report on (default: the last complete day in [report] timezone).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Folder for the files (default: [report] out_dir, 'reports').")
@click.option("--send", is_flag=True, help="Also send the digest through the alert notifiers.")
@click.option("--print-digest", is_flag=True, help="Print the chat digest instead of the file paths.")
@as_of_option
@pass_ctx
@handle_errors
def report(ctx: Context, date: str | None, out_dir: str | None, send: bool, print_digest: bool) -> None:
    """Write the daily risk-metric report: HTML with charts and a Markdown digest."""
    from monitor.report.deliver import send_digest
    from monitor.report.generate import generate_report

    result = generate_report(ctx.config, date=date, out_dir=out_dir, now=ctx.now)
    if print_digest:
        click.echo(result.digest, nl=False)
    else:
        counts = result.data.counts()
        click.echo(f"report for {result.date.isoformat()}: {len(result.data.metrics)} metrics, "
                   f"{counts['new']} new / {counts['ongoing']} ongoing / {counts['resolved']} resolved incidents, "
                   f"{result.data.health.issues} data health issue(s)")
        click.echo(f"wrote {result.html_path}")
        click.echo(f"wrote {result.md_path}")
    if send:
        send_digest(ctx.config, result, now=ctx.now)
        click.echo("digest sent", err=True)
