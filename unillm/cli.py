"""The `unillm` command.

Built on click (the de-facto standard, small, already in most environments) and rich for tables
and progress; both are imported only when the command runs, never by `import unillm`.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from unillm._version import __version__


def _location(log: str | None) -> Any:
    from unillm.config import ConfigError, load_settings
    from unillm.tracer.location import LogLocation

    try:
        settings = load_settings(log=log) if log else load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    return LogLocation(settings.log_path())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="unillm")
def main() -> None:
    """unillm: route and record every call your app makes through the openai SDK."""


@main.command()
@click.option("--calls", default=120, show_default=True, help="How many app requests to simulate.")
@click.option("--log", type=click.Path(dir_okay=False), help="Call log to write (default: the usual location).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def demo(calls: int, log: str | None, quiet: bool) -> None:
    """Run a small support-bot app on simulated providers (no API keys) and show its call log."""
    from unillm.demo import run_demo

    run_demo(calls=calls, log=log, show_progress=not quiet)


@main.command("sql")
@click.argument("query")
@click.option("--log", type=click.Path(dir_okay=False), help="Call log to read (default: the usual location).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--max-rows", default=200, show_default=True, help="Rows to print in table format.")
def sql_command(query: str, log: str | None, fmt: str, max_rows: int) -> None:
    """Run a read-only SQL query over the call log (tables: calls, attempts).

    \b
    Example:
      unillm sql "select request_model, count(*), sum(cost_usd) from calls group by 1"
    """
    from unillm.tracer.store import query as run_query

    try:
        result = run_query(_location(log), query)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:  # duckdb errors: show the message, not a traceback
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
    if fmt == "json":
        click.echo(json.dumps(result.to_dicts(), default=str, indent=2))
    elif fmt == "csv":
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(result.columns)
        writer.writerows(result.rows)
    else:
        print_table(result.columns, result.rows, max_rows=max_rows)


def print_table(
    columns: list[str], rows: list[tuple[Any, ...]], *, max_rows: int = 200, title: str | None = None
) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False, header_style="bold")
    for column in columns:
        table.add_column(column, no_wrap=True)
    for row in rows[:max_rows]:
        table.add_row(*(_cell(value) for value in row))
    console = Console()
    if not console.is_terminal:  # piped or captured: print whole rows rather than fold them at 80
        console = Console(width=max(console.width, 240))
    console.print(table)
    if len(rows) > max_rows:
        console.print(f"[dim]{len(rows) - max_rows} more rows not shown (--max-rows)[/dim]")
    console.print(f"[dim]{len(rows)} row{'s' if len(rows) != 1 else ''}[/dim]")


def _cell(value: Any) -> str:
    if value is None:
        return "[dim]NULL[/dim]"
    if isinstance(value, float):
        if 0 < abs(value) < 1e-3:  # small costs: 0.000055, not 5.5e-05
            return f"{value:.9f}".rstrip("0")
        return f"{value:.6g}"
    return str(value).replace("[", r"\[")


@main.command()
@click.option("--log", type=click.Path(dir_okay=False), help="Call log to fold.")
def fold(log: str | None) -> None:
    """Fold pending spool segments into calls.duckdb now (apps do this on their own every second)."""
    from unillm.tracer.store import fold as fold_spool

    location = _location(log)
    result = fold_spool(location, max_wait_s=5.0)
    click.echo(f"{location.db_path}: {result}")


@main.command()
@click.option("--no-probe", is_flag=True, help="Do not contact the providers.")
def doctor(no_probe: bool) -> None:
    """Show the config, the call log, the routes, and whether each provider's key is set and its API answers."""
    from rich.console import Console

    from unillm.config import ConfigError
    from unillm.doctor import report

    try:
        facts = report(probe=not no_probe)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    console = Console()
    console.print(f"config: {facts['config']}")
    state = "exists" if facts["log_exists"] else "not created yet"
    console.print(f"call log: {facts['log']} ({state}; {facts['spool_backlog']} spool segments waiting)")
    if facts["bad_segments"]:
        console.print(f"[yellow]{facts['bad_segments']} spool segment(s) could not be read and were set aside[/]")
    if facts["log_error"]:
        console.print(f"[red]the call log could not be read: {facts['log_error']}[/]")
    if facts["routes"]:
        routes = [(alias, strategy, " → ".join(t)) for alias, (strategy, t) in facts["routes"].items()]
        print_table(["route", "strategy", "targets"], routes, title="Routes")
    if facts["budgets"]:
        print_table(["budget", "covers", "spent today (UTC)", "when reached"], facts["budgets"], title="Budgets")
    if facts["breakers"]:
        print_table(
            ["target", "opened", "state", "last reason", "last change"],
            facts["breakers"],
            title="Circuit breakers that changed in the last 24 h (from the log)",
        )
    if facts["providers"]:
        providers = [(p.name, p.wire, p.base_url, p.key, p.answer) for p in facts["providers"]]
        print_table(["provider", "wire", "base URL", "key", "answers"], providers, title="Providers")


@main.command()
def where() -> None:
    """Print where the call log and its spool folder are."""
    location = _location(None)
    click.echo(f"log:   {location.db_path}\nspool: {location.spool_dir}")


if __name__ == "__main__":  # pragma: no cover
    main()
