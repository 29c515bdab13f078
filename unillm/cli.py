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
    if facts["drops"]:
        print_table(
            ["reason", "records dropped", "processes", "last drop"],
            facts["drops"],
            title="[yellow]Records the recorder dropped in the last 24 h (raise max_queue?)[/]",
        )
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


def _settings(log: str | None) -> Any:
    from unillm.config import ConfigError, load_settings

    try:
        return load_settings(log=log) if log else load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    from unillm.tracer.lifecycle import parse_duration

    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


@main.command()
@click.option(
    "--older-than", callback=_duration, help="Age of rows to delete: 30d, 12h, 90m (default: retention_days)."
)
@click.option("--log", type=click.Path(dir_okay=False), help="Call log to prune (default: the usual location).")
@click.option("--dry-run", is_flag=True, help="Only count the rows that would be deleted.")
def prune(older_than: Any, log: str | None, dry_run: bool) -> None:
    """Delete rows older than a cutoff from every table of the call log (attempts go with their calls).

    \b
    Example:
      unillm prune --older-than 30d --dry-run
    """
    import datetime as dt

    from unillm.tracer.lifecycle import LifecycleError
    from unillm.tracer.lifecycle import prune as prune_log
    from unillm.tracer.location import LogLocation

    settings = _settings(log)
    if older_than is None:
        if settings.retention_days is None:
            raise click.UsageError("give --older-than (e.g. 30d) or set retention_days in the config")
        older_than = dt.timedelta(days=settings.retention_days)
        why = f"retention_days = {settings.retention_days}"
    else:
        why = "--older-than"
    location = LogLocation(settings.log_path())
    cutoff = dt.datetime.now(dt.timezone.utc) - older_than
    try:
        result = prune_log(location, cutoff, dry_run=dry_run)
    except LifecycleError as exc:
        raise click.ClickException(str(exc)) from None
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"{location.db_path}: rows before {cutoff:%Y-%m-%d %H:%M:%S} UTC ({why})")
    for table, n in result.rows.items():
        click.echo(f"  {table:<16} {n:>8} {verb}")
    if dry_run:
        click.echo("dry run: nothing deleted")
    else:
        click.echo(f"file: {_mb(result.bytes_before)} -> {_mb(result.bytes_after)}")


@main.command()
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv"]), default="parquet", show_default=True)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder to write into.")
@click.option("--log", type=click.Path(dir_okay=False), help="Call log to export (default: the usual location).")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), help="Only rows from this UTC day on.")
def export(fmt: str, out: str, log: str | None, since: Any) -> None:
    """Write every table of the call log to OUT/<table>/day=YYYY-MM-DD/ (UTC days).

    \b
    Example:
      unillm export --out ./llm-log --since 2026-11-01
    """
    from pathlib import Path

    from unillm.tracer.lifecycle import LifecycleError
    from unillm.tracer.lifecycle import export as export_log
    from unillm.tracer.store import LogBusyError

    location = _location(log)
    try:
        written = export_log(
            location, Path(out), fmt="csv" if fmt == "csv" else "parquet", since=since.date() if since else None
        )
    except (LifecycleError, LogBusyError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{location.db_path} -> {Path(out).absolute()} ({fmt}, partitioned by UTC day)")
    for table, n in written.items():
        click.echo(f"  {table:<16} {n:>8} rows")


@main.command()
def where() -> None:
    """Print where the call log and its spool folder are."""
    location = _location(None)
    click.echo(f"log:   {location.db_path}\nspool: {location.spool_dir}")


@main.command()
@click.option("--log", type=click.Path(dir_okay=False), help="Call log to show (default: the usual location).")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8501,
    show_default=True,
    help="Port to listen on; when it is taken and not given here, the next free one.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; any other than 127.0.0.1 lets other machines see your call log.",
)
@click.option(
    "--open/--no-open",
    "open_browser",
    default=None,
    help="Open it in a browser (default: only where a browser can show, not over SSH or without a display).",
)
@click.option("--app-path", type=click.Path(dir_okay=False), hidden=True)  # tests: run a stand-in app
@click.pass_context
def dashboard(
    ctx: click.Context, log: str | None, port: int, host: str, open_browser: bool | None, app_path: str | None
) -> None:
    """Browse the call log in a local web dashboard (Streamlit): overview, failover, cost, calls, SQL.

    \b
    Example:
      unillm dashboard --log ./calls.duckdb
    """
    import importlib.util
    from pathlib import Path

    if importlib.util.find_spec("streamlit") is None:  # before importing anything of unillm.dashboard
        raise click.ClickException("the dashboard needs Streamlit: pip install 'unillm[dashboard]'")
    from click.core import ParameterSource

    from unillm.dashboard import launch

    location = _location(log)
    try:
        launch.check_log(location.db_path, location.spool_dir)
        explicit = ctx.get_parameter_source("port") is not ParameterSource.DEFAULT
        port = launch.pick_port(host, port, explicit=explicit)
        if host not in ("127.0.0.1", "localhost", "::1"):
            click.echo(
                f"note: listening on {host}: whoever reaches this machine on port {port} can read the call log",
                err=True,
            )
        code = launch.run(
            location.db_path,
            host=host,
            port=port,
            open_browser=launch.browser_likely() if open_browser is None else open_browser,
            app_path=Path(app_path) if app_path else None,
            echo=click.echo,
        )
    except launch.LaunchError as exc:
        raise click.ClickException(str(exc)) from None
    ctx.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
