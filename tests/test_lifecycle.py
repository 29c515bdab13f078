"""`unillm prune` and `unillm export`: retention and getting the log out, as a user runs them."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

import unillm
from unillm.tracer.lifecycle import parse_duration
from unillm.tracer.location import LogLocation
from unillm.tracer.spool import list_segments, write_segment

pytestmark = pytest.mark.sdk_independent  # scripts/test runs it in one openai environment only

CLI = [sys.executable, "-m", "unillm.cli"]
NOW = dt.datetime.now(dt.timezone.utc)


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, cwd=cwd)


def add_calls(log: Path, started: list[dt.datetime], prefix: str = "c") -> list[str]:
    """Spool one call per time, each with two attempts (as the recorder would)."""
    spool_dir = LogLocation(log).spool_dir
    ids = [f"{prefix}{i}" for i in range(len(started))]
    calls = [{"call_id": c, "started_at": t.isoformat(), "status": "ok"} for c, t in zip(ids, started, strict=True)]
    attempts = [
        {"call_id": c, "attempt": a, "started_at": (t + dt.timedelta(seconds=a)).isoformat()}
        for c, t in zip(ids, started, strict=True)
        for a in (1, 2)
    ]
    write_segment(spool_dir, "calls", calls)
    write_segment(spool_dir, "attempts", attempts)
    return ids


def count(log: Path, sql: str) -> int:
    return int(unillm.sql(sql, log=str(log)).scalar())


@pytest.fixture
def aged_log(tmp_path: Path) -> Path:
    """2 calls 40 and 90 days old, 3 recent ones; one old and one new breaker event."""
    log = tmp_path / "calls.duckdb"
    add_calls(log, [NOW - dt.timedelta(days=40), NOW - dt.timedelta(days=90)], prefix="old")
    add_calls(log, [NOW, NOW - dt.timedelta(hours=1), NOW - dt.timedelta(days=29)], prefix="new")
    write_segment(
        LogLocation(log).spool_dir,
        "breaker_events",
        [
            {"event_id": "e-old", "changed_at": (NOW - dt.timedelta(days=60)).isoformat(), "to_state": "open"},
            {"event_id": "e-new", "changed_at": NOW.isoformat(), "to_state": "closed"},
        ],
    )
    return log


def test_prune_removes_old_calls_with_their_attempts_and_keeps_new_ones(aged_log: Path, tmp_path: Path) -> None:
    done = cli("prune", "--older-than", "30d", "--log", str(aged_log), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line.split()[1] for line in done.stdout.splitlines()[1:3]}
    assert lines == {"calls": "2", "attempts": "4"}
    assert "breaker_events" in done.stdout and "deleted" in done.stdout

    remaining = unillm.sql("select call_id from calls order by call_id", log=str(aged_log)).rows
    assert remaining == [("new0",), ("new1",), ("new2",)]
    assert count(aged_log, "select count(*) from attempts where call_id like 'old%'") == 0
    assert count(aged_log, "select count(*) from attempts") == 6
    assert unillm.sql("select event_id from breaker_events", log=str(aged_log)).rows == [("e-new",)]
    # The spool was folded first, so nothing old is waiting to come back.
    assert not list_segments(LogLocation(aged_log).spool_dir, "calls")


def test_prune_dry_run_counts_but_deletes_nothing(aged_log: Path, tmp_path: Path) -> None:
    done = cli("prune", "--older-than", "30d", "--log", str(aged_log), "--dry-run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "would delete" in done.stdout and "nothing deleted" in done.stdout
    assert count(aged_log, "select count(*) from calls") == 5
    assert count(aged_log, "select count(*) from attempts") == 10
    assert count(aged_log, "select count(*) from breaker_events") == 2


def test_prune_takes_hours_and_minutes(aged_log: Path, tmp_path: Path) -> None:
    done = cli("prune", "--older-than", "90m", "--log", str(aged_log), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # Only the calls started now and an hour ago are younger than 90 minutes.
    assert unillm.sql("select call_id from calls order by 1", log=str(aged_log)).rows == [("new0",), ("new1",)]


@pytest.mark.parametrize("bad", ["30", "thirty days", "30x", "0d", "-5d", "1.5d"])
def test_bad_duration_is_a_usage_error_naming_the_option(bad: str, aged_log: Path, tmp_path: Path) -> None:
    done = cli("prune", "--older-than", bad, "--log", str(aged_log), cwd=tmp_path)
    assert done.returncode == 2
    assert "--older-than" in done.stderr and "30d" in done.stderr
    assert count(aged_log, "select count(*) from calls") == 5


def test_parse_duration() -> None:
    assert parse_duration("30d") == dt.timedelta(days=30)
    assert parse_duration("12h") == dt.timedelta(hours=12)
    assert parse_duration(" 90M ") == dt.timedelta(minutes=90)


def test_prune_uses_retention_days_from_the_config(aged_log: Path, tmp_path: Path) -> None:
    (tmp_path / "unillm.toml").write_text(f'log = "{aged_log.as_posix()}"\nretention_days = 60\n')
    done = cli("prune", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "retention_days = 60" in done.stdout
    # 90 days old goes; 40 days old stays (younger than 60).
    ids = {r[0] for r in unillm.sql("select call_id from calls", log=str(aged_log)).rows}
    assert ids == {"old0", "new0", "new1", "new2"}
    # --older-than wins over the config.
    assert cli("prune", "--older-than", "30d", cwd=tmp_path).returncode == 0
    assert count(aged_log, "select count(*) from calls") == 3


def test_prune_without_a_cutoff_says_what_to_do(aged_log: Path, tmp_path: Path) -> None:
    done = cli("prune", "--log", str(aged_log), cwd=tmp_path)
    assert done.returncode == 2
    assert "--older-than" in done.stderr and "retention_days" in done.stderr


def test_export_writes_utc_day_partitions_that_read_back(tmp_path: Path) -> None:
    log = tmp_path / "calls.duckdb"
    utc = dt.timezone.utc
    add_calls(
        log,
        [
            dt.datetime(2026, 11, 1, 8, tzinfo=utc),
            dt.datetime(2026, 11, 1, 23, tzinfo=utc),
            # 23:30 at UTC-2 is 01:30 UTC the next day: partitions are UTC days.
            dt.datetime(2026, 11, 1, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-2))),
            dt.datetime(2026, 11, 24, 12, tzinfo=utc),
        ],
    )
    unillm.sql("select 1", log=str(log))  # folds the spool; then add rows that stay in the spool
    spool_dir = LogLocation(log).spool_dir
    add_calls(log, [dt.datetime(2026, 11, 24, 13, tzinfo=utc)], prefix="late")
    write_segment(spool_dir, "breaker_events", [{"event_id": "e", "changed_at": "2026-11-02T00:00:00+00:00"}])

    out = tmp_path / "export"
    done = cli("export", "--format", "parquet", "--out", str(out), "--log", str(log), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "calls" in done.stdout and "5 rows" in done.stdout and "10 rows" in done.stdout

    def per_day(table: str) -> list[tuple[str, int]]:
        rel = duckdb.sql(
            f"select day::varchar, count(*) from read_parquet('{out}/{table}/*/*.parquet', hive_partitioning=true) "
            "group by 1 order by 1"
        )
        return [(str(d), int(n)) for d, n in rel.fetchall()]

    assert per_day("calls") == [("2026-11-01", 2), ("2026-11-02", 1), ("2026-11-24", 2)]
    assert per_day("attempts") == [("2026-11-01", 4), ("2026-11-02", 2), ("2026-11-24", 4)]
    assert per_day("breaker_events") == [("2026-11-02", 1)]
    assert (out / "calls" / "day=2026-11-24").is_dir()

    # Exporting again (e.g. from a nightly job) overwrites instead of failing; --since filters.
    again = cli("export", "--out", str(out), "--log", str(log), "--since", "2026-11-02", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert per_day("calls") == [("2026-11-01", 2), ("2026-11-02", 1), ("2026-11-24", 2)]
    since_only = tmp_path / "since"
    assert (
        cli("export", "--out", str(since_only), "--log", str(log), "--since", "2026-11-02", cwd=tmp_path).returncode
        == 0
    )
    assert sorted(p.name for p in (since_only / "calls").iterdir()) == ["day=2026-11-02", "day=2026-11-24"]


def test_export_csv(aged_log: Path, tmp_path: Path) -> None:
    out = tmp_path / "csv"
    done = cli("export", "--format", "csv", "--out", str(out), "--log", str(aged_log), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    n = duckdb.sql(f"select count(*) from read_csv('{out}/calls/*/*.csv', hive_partitioning=true)").fetchall()
    assert n == [(5,)]
