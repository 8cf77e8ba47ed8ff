"""``idp check``: what is wrong with this configuration for production (:mod:`idp.ops.checks`).

Exit status 0 when nothing is, 1 otherwise; ``idp serve`` runs it before starting
when ``IDP_ENV=production`` and refuses to start on status 1.
"""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from .serve import DEFAULT_WORKERS


@click.command("check")
@click.option("--workers", envvar="IDP_WORKERS", type=click.IntRange(min=1), default=DEFAULT_WORKERS,
              show_default="IDP_WORKERS, or idp serve's default",
              help="Worker processes idp serve runs on this host (per-IP limits in memory are per worker).")
@with_appcontext
def check_command(workers: int) -> None:
    """List what is wrong with this configuration for production; exit status 1 if anything is."""
    from ..ops.checks import problems

    found = problems(workers)
    if not found:
        click.echo("Ready for production: no problem found.")
        return
    for problem in found:
        click.echo(f"- {problem}", err=True)
    click.echo(f"{len(found)} problem(s) for production.", err=True)
    raise SystemExit(1)


COMMANDS = [check_command]
