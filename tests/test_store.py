"""Behaviour of the call log: spool segments, fold, query, locking, crashes, migrations.

Real files in tmp_path and real subprocesses: the properties under test (DuckDB's file lock,
atomic renames, kill -9) only exist across processes.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from unillm.tracer import schema, spool, store
from unillm.tracer.schema import Column, Migration
from unillm.tracer.store import LogLocation

pytestmark = pytest.mark.sdk_independent  # scripts/test runs it in one openai environment only

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


_children: list[subprocess.Popen[str]] = []


def _spawn(code: str, *args: str, **kw: Any) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )
    _children.append(child)
    return child


@pytest.fixture(autouse=True)
def _no_orphans() -> Iterator[None]:
    # A failing assertion must not leave a fold loop or a lock holder running after the test.
    yield
    while _children:
        child = _children.pop()
        if child.poll() is None:
            child.kill()
        child.wait(timeout=10)
        for stream in (child.stdin, child.stdout, child.stderr):
            if stream is not None:
                stream.close()


def call(call_id: str, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "call_id": call_id,
        "started_at": "2026-11-24T05:30:00.123456+00:00",
        "duration_ms": 12.5,
        "operation": "chat",
        "stream": False,
        "request_model": "gpt-4o-mini",
        "status": "ok",
        "input_tokens": 10,
        "output_tokens": 3,
        "cost_usd": None,
        "price_known": False,
        "tags": {"user": "alice", "team": "search"},
        "usage_raw": {"prompt_tokens": 10, "completion_tokens": 3},
        "process_id": os.getpid(),
    }
    row.update(extra)
    return row


@pytest.fixture
def loc(tmp_path: Path) -> LogLocation:
    return LogLocation(tmp_path / "logs" / "calls.duckdb")


def count(loc: LogLocation, table: str = "calls") -> int:
    return int(store.query(loc, f"SELECT count(*) FROM {table}", fold_first=False).scalar())


def fold_everything(loc: LogLocation) -> None:
    """Fold until the spool is empty (one fold does a bounded number of rounds)."""
    while True:
        result = store.fold(loc, max_wait_s=5)
        assert result.folded, result.reason
        if not result.segments:
            return


def db_ids(loc: LogLocation) -> list[str]:
    con = duckdb.connect(str(loc.db_path), read_only=True)
    try:
        return [r[0] for r in con.execute("SELECT call_id FROM calls").fetchall()]
    finally:
        con.close()


# ------------------------------------------------------------------------------------ schema


def test_migrations_produce_exactly_the_schema_tables() -> None:
    con = duckdb.connect()
    for migration in schema.MIGRATIONS:
        for statement in migration.statements:
            con.execute(statement)
    names = [m.name for m in schema.MIGRATIONS]
    assert len(set(names)) == len(names), "migration names must be unique"
    for table, columns in schema.TABLES.items():
        # Let DuckDB spell both sides (TIMESTAMPTZ vs TIMESTAMP WITH TIME ZONE and so on).
        defs = ", ".join(f'"{c.name}" {c.sql_type}' for c in columns)
        con.execute(f"CREATE TABLE expected_{table} ({defs})")
        got = con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {table})").fetchall()
        want = con.execute(f"SELECT column_name, column_type FROM (DESCRIBE expected_{table})").fetchall()
        assert got == want, table
    assert set(schema.TABLE_KEYS) == set(schema.TABLES)
    # The migrated views have the columns (and types) of their current definitions.
    for name, view in schema.VIEWS.items():
        got = con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {name})").fetchall()
        want = con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {view.select})").fetchall()
        assert got == want, name


def test_migrations_are_frozen_literal_sql() -> None:
    first, routing = schema.MIGRATIONS[:2]
    assert first.name == "0001_calls_and_attempts"
    assert first.statements[0].startswith("CREATE TABLE IF NOT EXISTS calls (\n  call_id VARCHAR,")
    assert "unillm_version VARCHAR\n)" in first.statements[0]
    assert routing.name == "0002_routing"
    assert routing.statements[0] == "ALTER TABLE calls ADD COLUMN IF NOT EXISTS route VARCHAR"
    assert routing.statements[-1].startswith("CREATE OR REPLACE VIEW failovers AS SELECT\n  c.call_id,")


# ------------------------------------------------------------------------------------ spool


def test_import_does_not_load_duckdb() -> None:
    code = "import sys, unillm.tracer.spool, unillm.tracer.store; assert 'duckdb' not in sys.modules, 'duckdb imported'"
    subprocess.run([sys.executable, "-c", code], env=_env(), check=True)


def test_write_segment_is_atomic_ndjson(loc: LogLocation) -> None:
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    path = spool.write_segment(loc.spool_dir, "calls", [call("a", started_at=when), call("b")])
    assert path.parent == loc.spool_dir and path.name.startswith("calls-") and path.suffix == ".jsonl"
    assert [p.name for p in loc.spool_dir.iterdir()] == [path.name]  # no .tmp left behind
    lines = path.read_text().splitlines()
    assert [json.loads(line)["call_id"] for line in lines] == ["a", "b"]
    assert json.loads(lines[0])["started_at"] == when.isoformat()  # datetimes as ISO 8601
    more = [spool.write_segment(loc.spool_dir, "calls", [call(f"c{i}")]) for i in range(12)]
    assert spool.list_segments(loc.spool_dir, "calls") == [path, *more]  # oldest first
    assert spool.list_segments(loc.spool_dir, "attempts") == []
    assert spool.list_segments(loc.spool_dir / "missing", "calls") == []
    (loc.spool_dir / (more[0].name + ".tmp")).write_text("half")  # a writer mid-write
    assert len(spool.list_segments(loc.spool_dir, "calls")) == 13
    with pytest.raises(ValueError, match="unknown call-log table"):
        spool.write_segment(loc.spool_dir, "call", [call("x")])
    with pytest.raises(ValueError):
        spool.write_segment(loc.spool_dir, "calls", [])


# ------------------------------------------------------------------------------------ fold + query


def test_rows_visible_before_and_after_fold_exactly_once(loc: LogLocation) -> None:
    spool.write_segment(loc.spool_dir, "calls", [call(f"c{i}") for i in range(30)])
    spool.write_segment(loc.spool_dir, "calls", [call(f"c{i}") for i in range(20, 50)])  # 10 duplicates
    spool.write_segment(loc.spool_dir, "calls", [call("c7"), call("c7"), call("c50")])  # dups in one file
    spool.write_segment(loc.spool_dir, "attempts", [{"call_id": "c1", "attempt": a} for a in (1, 2, 2)])

    assert not loc.db_path.exists()
    assert count(loc) == 51  # spool only, deduplicated
    assert count(loc, "attempts") == 2

    result = store.fold(loc)
    assert result.folded and result.rows == {"calls": 51, "attempts": 2}
    assert result.segments == 4 and result.bad == ()
    assert result.migrations == tuple(m.name for m in schema.MIGRATIONS)
    assert spool.list_segments(loc.spool_dir, "calls") == []
    assert count(loc) == 51 and count(loc, "attempts") == 2

    again = store.fold(loc)
    assert again.folded and again.rows == {} and again.segments == 0 and again.migrations == ()
    assert count(loc) == 51

    # Half in the db, half in the spool: still once each.
    spool.write_segment(loc.spool_dir, "calls", [call(f"c{i}") for i in range(45, 60)])
    assert count(loc) == 60
    assert store.fold(loc).rows == {"calls": 9}
    ids = db_ids(loc)
    assert len(ids) == len(set(ids)) == 60


def test_the_oldest_copy_of_a_key_wins_and_a_segment_missing_its_last_newline_folds(loc: LogLocation) -> None:
    # A fold reads its segments as one joined file: the first copy of a key there must still be the
    # oldest segment's, and a segment without its last newline must not run into the next one.
    first = spool.write_segment(loc.spool_dir, "calls", [call("k", status="ok"), call("m")])
    first.write_bytes(first.read_bytes().rstrip(b"\n"))  # a segment put back by hand, say
    spool.write_segment(loc.spool_dir, "calls", [call("k", status="error"), call("n")])
    spool.write_segment(loc.spool_dir, "calls", [call("k", status="interrupted"), call("m", status="error")])

    result = store.fold(loc)
    assert result.folded and result.rows == {"calls": 3} and result.segments == 3 and result.bad == ()
    got = store.query(loc, "SELECT call_id, status FROM calls ORDER BY call_id", fold_first=False).fetchall()
    assert got == [("k", "ok"), ("m", "ok"), ("n", "ok")]
    assert not list(store._fold_temp_dir().glob("batch-*"))  # the joined file is not left behind


def test_crash_between_commit_and_delete_is_harmless(loc: LogLocation) -> None:
    seg = spool.write_segment(loc.spool_dir, "calls", [call(f"c{i}") for i in range(10)])
    saved = seg.read_bytes()
    assert store.fold(loc).rows == {"calls": 10}
    seg.write_bytes(saved)  # as if the folder died after COMMIT, before unlink
    assert count(loc) == 10
    result = store.fold(loc)
    assert result.rows == {"calls": 0} and result.segments == 1
    assert not seg.exists() and len(db_ids(loc)) == 10


def test_values_and_types_round_trip(loc: LogLocation) -> None:
    spool.write_segment(loc.spool_dir, "calls", [call("a"), call("b", tags={"user": "bob"}, usage_raw=None)])
    for phase in ("spool", "db"):
        r = store.query(
            loc,
            "SELECT call_id, tags['user'] AS u, tags, started_at, usage_raw->>'prompt_tokens' AS pt, stream "
            "FROM calls ORDER BY call_id",
            fold_first=False,
        )
        assert r.columns == ["call_id", "u", "tags", "started_at", "pt", "stream"], phase
        a, b = r.to_dicts()
        assert a["u"] == "alice" and b["u"] == "bob", phase  # the plain value, not a list
        assert a["tags"] == {"user": "alice", "team": "search"}
        assert a["started_at"] == dt.datetime(2026, 11, 24, 5, 30, 0, 123456, tzinfo=dt.timezone.utc)
        assert a["pt"] == "10" and b["pt"] is None
        assert a["stream"] is False
        store.fold(loc)
    by_user = store.query(loc, "SELECT tags['user'] u, count(*) n FROM calls GROUP BY ALL ORDER BY u")
    assert by_user.rows == [("alice", 1), ("bob", 1)]
    assert store.query(loc, "SELECT count(*) FROM calls WHERE call_id = ?", ["a"]).scalar() == 1
    assert store.query(loc, "SELECT count(*) FROM calls WHERE call_id = $id", {"id": "zz"}).scalar() == 0
    hours = store.query(loc, "SELECT date_trunc('hour', started_at) h, count(*) FROM calls GROUP BY 1")
    assert hours.rows == [(dt.datetime(2026, 11, 24, 5, tzinfo=dt.timezone.utc), 2)]


def test_query_result_api(loc: LogLocation) -> None:
    spool.write_segment(loc.spool_dir, "calls", [call(f"c{i:03}", input_tokens=i) for i in range(120)])
    r = store.query(loc, "SELECT call_id, input_tokens FROM calls ORDER BY call_id")
    assert len(r) == 120 and next(iter(r)) == ("c000", 0) and r.fetchall() is r.rows
    text = repr(r)
    assert text.splitlines()[0].split() == ["call_id", "|", "input_tokens"]
    assert "c049" in text and "c050" not in text and "(120 rows, showing the first 50)" in text
    assert str(r) == text
    with pytest.raises(ValueError, match="one column"):
        r.scalar()
    assert store.query(loc, "SELECT 1 WHERE false").scalar() is None
    if importlib.util.find_spec("pandas") is None:
        with pytest.raises(ImportError, match="pip install pandas"):
            r.df()
    else:
        assert list(r.df().columns) == ["call_id", "input_tokens"] and len(r.df()) == 120


def test_read_only_guard(loc: LogLocation) -> None:
    spool.write_segment(loc.spool_dir, "calls", [call("a")])
    store.fold(loc)
    for sql, kind in [
        ("DELETE FROM calls", "DELETE"),
        ("UPDATE calls SET status = 'x'", "UPDATE"),
        ("DROP TABLE calls", "DROP"),
        ("CREATE TABLE t AS SELECT 1", "CREATE"),
        ("COPY calls TO 'out.csv'", "COPY"),
        ("ATTACH 'other.duckdb'", "ATTACH"),
        ("INSTALL httpfs", "LOAD"),
        ("SET threads = 1", "SET"),
        ("ALTER TABLE calls ADD COLUMN x INT", "ALTER"),
        ("DETACH unillm_db", "DETACH"),
        ("EXPORT DATABASE 'out'", "EXPORT"),
        ("CHECKPOINT", "CALL"),
    ]:
        with pytest.raises(ValueError, match=f"read-only: {kind} statements are refused"):
            store.query(loc, sql)
    with pytest.raises(ValueError, match="one read-only statement"):
        store.query(loc, "SELECT 1; DELETE FROM calls")
    assert count(loc) == 1
    assert store.query(loc, "SELECT tags['user'] FROM calls").scalar() == "alice"
    assert store.query(loc, "FROM calls SELECT call_id").rows == [("a",)]
    assert store.query(loc, "WITH x AS (SELECT * FROM calls) SELECT count(*) FROM x").scalar() == 1
    assert store.query(loc, "DESCRIBE calls").rows[0][:2] == ("call_id", "VARCHAR")
    # Without the guard the file is still attached read-only.
    with pytest.raises(duckdb.Error):
        store.query(loc, f"DELETE FROM {store.DB_ALIAS}.calls", read_only_guard=False)
    with pytest.raises(duckdb.CatalogException):
        store.query(loc, "SELECT * FROM callz")  # no Python-variable replacement scan


# ------------------------------------------------------------------------------------ locking

HOLD_OPEN = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("open", flush=True)
sys.stdin.readline()
"""


def test_foreign_process_holding_the_lock(loc: LogLocation) -> None:
    spool.write_segment(loc.spool_dir, "calls", [call("a")])
    assert store.fold(loc).rows == {"calls": 1}
    spool.write_segment(loc.spool_dir, "calls", [call("b")])
    holder = _spawn(HOLD_OPEN, str(loc.db_path), stdin=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        result = store.fold(loc, max_wait_s=0.2)
        assert not result.folded and "held open" in (result.reason or "")
        assert not store.fold(loc).folded  # max_wait_s=0: one try, no exception
        with pytest.raises(store.LogBusyError) as err:
            store.query(loc, "SELECT count(*) FROM calls", lock_wait_s=0.3)
        message = str(err.value)
        assert str(loc.db_path) in message and "another process" in message
        assert f"PID {holder.pid}" in message and err.value.holder_pid == holder.pid
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
    assert count(loc) == 2
    assert store.fold(loc).rows == {"calls": 1}
    assert sorted(db_ids(loc)) == ["a", "b"]


WRITER = """
import sys, time
from pathlib import Path
from unillm.tracer import spool
spool_dir, name, n_segments, n_rows = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
for s in range(n_segments):
    spool.write_segment(spool_dir, "calls", [{"call_id": f"{name}-{s}-{r}", "input_tokens": r} for r in range(n_rows)])
    time.sleep(0.01)  # a recorder flushes now and then, it does not spin
"""

FOLDER = """
import sys, time
from pathlib import Path
from unillm.tracer import store
loc = store.LogLocation(sys.argv[1])
stop = Path(sys.argv[2])
folds = 0
while not stop.exists():
    if store.fold(loc, max_wait_s=0.05).folded:
        folds += 1
    time.sleep(0.05)
print(folds)
"""

READER = """
import json, sys, time
from pathlib import Path
from unillm.tracer import store
loc = store.LogLocation(sys.argv[1])
stop = Path(sys.argv[2])
counts, errors = [], []
while not stop.exists():
    try:
        counts.append(store.query(loc, "SELECT count(*) FROM calls").scalar())
    except Exception as e:
        errors.append(f"{type(e).__name__}: {e}")
    time.sleep(0.005)
print(json.dumps({"counts": counts, "errors": errors}))
"""


def test_concurrent_writers_folder_and_reader(loc: LogLocation, tmp_path: Path) -> None:
    writers, segments, rows = 4, 200, 50
    stop = tmp_path / "stop"
    folder = _spawn(FOLDER, str(loc.db_path), str(stop))
    reader = _spawn(READER, str(loc.db_path), str(stop))
    procs = [_spawn(WRITER, str(loc.spool_dir), f"w{w}", str(segments), str(rows)) for w in range(writers)]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    time.sleep(0.3)  # let the folder and the reader overlap with a quiet spool too
    stop.touch()
    folder_out, folder_err = folder.communicate(timeout=60)
    reader_out, reader_err = reader.communicate(timeout=60)
    assert folder.returncode == 0, folder_err
    assert reader.returncode == 0, reader_err
    print("folds by the folder:", int(folder_out))
    seen = json.loads(reader_out)
    assert seen["errors"] == []
    print("queries by the reader:", len(seen["counts"]))
    assert len(seen["counts"]) >= 3
    assert seen["counts"] == sorted(seen["counts"]), "a reader saw the count go down"
    assert max(seen["counts"]) <= writers * segments * rows

    fold_everything(loc)
    ids = db_ids(loc)
    assert len(ids) == len(set(ids)) == writers * segments * rows
    assert spool.list_segments(loc.spool_dir, "calls") == []
    assert count(loc) == writers * segments * rows


def test_threads_of_one_process_share_the_log(loc: LogLocation) -> None:
    # In one process DuckDB refuses a second handle on an open file instead of a file lock;
    # folds and queries from different threads must still never fail.
    errors: list[str] = []
    done = threading.Event()

    def write() -> None:
        for s in range(40):
            spool.write_segment(loc.spool_dir, "calls", [call(f"t{s}-{r}") for r in range(20)])
        done.set()

    def folder() -> None:
        while not done.is_set():
            try:
                store.fold(loc, max_wait_s=0.05)
            except Exception as e:  # noqa: BLE001 - the test collects every failure
                errors.append(repr(e))

    def reader() -> None:
        while not done.is_set():
            try:
                store.query(loc, "SELECT count(*) FROM calls")
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))

    threads = [threading.Thread(target=f) for f in (write, folder, reader, reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    store.fold(loc, max_wait_s=5)
    ids = db_ids(loc)
    assert len(ids) == len(set(ids)) == 800


FIRST_FOLD = """
import sys, time
from pathlib import Path
from unillm.tracer import spool, store
loc, name, go = store.LogLocation(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
spool.write_segment(loc.spool_dir, "calls", [{"call_id": f"{name}-{i}", "input_tokens": i} for i in range(10)])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
print(store.fold(loc, max_wait_s=10).folded, flush=True)
"""


@pytest.mark.parametrize("trial", range(3))
def test_processes_creating_the_log_together_all_fold(loc: LogLocation, tmp_path: Path, trial: int) -> None:
    # DuckDB writes a new file's header after creating it: a process opening it in between failed,
    # and once the empty file stayed and every later open failed. Four processes race here.
    go = tmp_path / "go"
    children = [_spawn(FIRST_FOLD, str(loc.db_path), f"p{i}", str(go)) for i in range(4)]
    for child in children:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    go.touch()
    for child in children:
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        assert out.strip() == "True", err
    assert loc.db_path.stat().st_size > 0
    assert sorted(db_ids(loc)) == sorted(f"p{i}-{r}" for i in range(4) for r in range(10))
    assert not list(loc.db_path.parent.glob(".*.creating*")), "a temporary database was left behind"


def test_an_empty_database_file_is_replaced_not_fatal(loc: LogLocation) -> None:
    loc.db_path.parent.mkdir(parents=True, exist_ok=True)
    loc.db_path.touch()  # what a crash while DuckDB created the file leaves
    spool.write_segment(loc.spool_dir, "calls", [call("a")])
    assert count(loc) == 1  # readers treat it as no database yet
    assert store.fold(loc).rows == {"calls": 1}
    assert db_ids(loc) == ["a"]


def test_processes_take_turns_to_fold(loc: LogLocation) -> None:
    assert not spool.fold_due(loc.spool_dir, 1.0)  # nothing waits
    spool.write_segment(loc.spool_dir, "calls", [call("a")])
    assert spool.fold_due(loc.spool_dir, 1.0)
    assert store.fold(loc).rows == {"calls": 1}
    spool.write_segment(loc.spool_dir, "calls", [call("b")])
    # Another process (any fold marks the spool) folded just now: the next periodic fold waits.
    assert not spool.fold_due(loc.spool_dir, 1.0)
    assert spool.fold_due(loc.spool_dir, 0.01) or (time.sleep(0.02) or spool.fold_due(loc.spool_dir, 0.01))


FOLD_LOOP = """
import os, pathlib, signal, sys
from unillm.tracer import store
loc = store.LogLocation(sys.argv[1])
if sys.argv[2] == "die-while-deleting":
    # Die after the COMMIT, between deleting two folded segments: the worst moment for idempotency.
    unlink, calls = pathlib.Path.unlink, [0]
    def dying_unlink(self, *args, **kwargs):
        calls[0] += 1
        if calls[0] == 3:
            os.kill(os.getpid(), signal.SIGKILL)
        return unlink(self, *args, **kwargs)
    pathlib.Path.unlink = dying_unlink
print("ready", flush=True)
while True:
    print(store.fold(loc, max_wait_s=1).segments, flush=True)
"""


def test_kill_9_during_fold_loses_and_duplicates_nothing(loc: LogLocation) -> None:
    written: list[str] = []
    rng = random.Random(7)
    modes = ["random"] * 5 + ["die-while-deleting"] * 2
    for trial, mode in enumerate(modes):
        stop_writing = threading.Event()

        def keep_writing(trial: int = trial, stop_writing: threading.Event = stop_writing) -> None:
            s = 0
            while not stop_writing.is_set():
                ids = [f"k{trial}-{s}-{r}" for r in range(50)]
                spool.write_segment(loc.spool_dir, "calls", [call(i) for i in ids])
                written.extend(ids)
                s += 1
                time.sleep(0.003)

        writer = threading.Thread(target=keep_writing)
        writer.start()
        child = _spawn(FOLD_LOOP, str(loc.db_path), mode)
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        if mode == "random":
            for _ in range(rng.randint(1, 3)):  # let some folds complete, then kill inside the next
                child.stdout.readline()
            time.sleep(rng.uniform(0.0, 0.06))
            os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        stop_writing.set()
        writer.join()
        assert child.returncode == -signal.SIGKILL

        if mode == "die-while-deleting":
            assert loc.db_path.with_name(loc.db_path.name + ".wal").exists()  # committed, never checkpointed
        # Readers see every row once, even with folded-but-undeleted segments and a pending WAL.
        assert count(loc) == len(written)
    fold_everything(loc)
    ids = db_ids(loc)
    assert len(ids) == len(set(ids)), "duplicated rows"
    assert set(ids) == set(written), "lost rows"


# ------------------------------------------------------------------------------------ damage + upgrades


def test_corrupt_segment_goes_to_bad_and_the_rest_folds(loc: LogLocation) -> None:
    spool.write_segment(loc.spool_dir, "calls", [call("a")])
    garbage = loc.spool_dir / "calls-1-1-1.jsonl"
    garbage.write_bytes(b"\x00\xff\xfe not json {{{\n")
    wrong_type = spool.write_segment(loc.spool_dir, "calls", [call("x", input_tokens="many")])
    spool.write_segment(loc.spool_dir, "calls", [call("b")])
    spool.write_segment(loc.spool_dir, "attempts", [{"call_id": "a", "attempt": 1}])

    # A reader skips what it cannot parse instead of failing.
    assert count(loc) == 2

    result = store.fold(loc)
    assert result.folded and result.rows == {"calls": 2, "attempts": 1}
    bad_dir = loc.spool_dir / "bad"
    assert sorted(result.bad) == sorted([bad_dir / garbage.name, bad_dir / wrong_type.name])
    assert (bad_dir / garbage.name).read_bytes().startswith(b"\x00\xff")
    assert "input_tokens" in (bad_dir / (wrong_type.name + ".error.txt")).read_text() or (
        "many" in (bad_dir / (wrong_type.name + ".error.txt")).read_text()
    )
    assert spool.list_segments(loc.spool_dir, "calls") == []
    assert store.fold(loc).bad == ()  # not retried forever
    assert sorted(db_ids(loc)) == ["a", "b"]


def test_stale_tmp_files_are_swept(loc: LogLocation) -> None:
    loc.spool_dir.mkdir(parents=True)
    old = loc.spool_dir / "calls-1-2-3.jsonl.tmp"
    new = loc.spool_dir / "calls-4-5-6.jsonl.tmp"
    old.write_text("{")
    new.write_text("{")
    past = time.time() - store.STALE_TMP_S - 10
    os.utime(old, (past, past))
    store.fold(loc)
    assert not old.exists() and new.exists()


# Columns added by 0002_routing: a log (and segments) written by 0.1-era releases lack them.
def columns_after(migrations: tuple[schema.Migration, ...]) -> dict[str, set[str]]:
    """The tables and columns a log has after these migrations (replayed on an empty database)."""
    con = duckdb.connect()
    try:
        for migration in migrations:
            for statement in migration.statements:
                con.execute(statement)
        found: dict[str, set[str]] = {}
        for table, column in con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() WHERE NOT internal AND table_name IN "
            "(SELECT table_name FROM duckdb_tables())"
        ).fetchall():
            found.setdefault(table, set()).add(column)
        return found
    finally:
        con.close()


def as_of_0001(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make this process behave like a release that only knew migration 0001."""
    known = columns_after(schema.MIGRATIONS[:1])
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])
    monkeypatch.setattr(
        schema,
        "TABLES",
        {t: tuple(c for c in schema.TABLES[t] if c.name in known[t]) for t in known},
    )
    monkeypatch.setattr(schema, "VIEWS", {})


def test_older_log_is_migrated_on_open(loc: LogLocation, monkeypatch: pytest.MonkeyPatch) -> None:
    tables, migrations, views = schema.TABLES, schema.MIGRATIONS, schema.VIEWS
    as_of_0001(monkeypatch)
    spool.write_segment(loc.spool_dir, "calls", [call("old", attempts=2)])
    spool.write_segment(loc.spool_dir, "attempts", [{"call_id": "old", "attempt": a} for a in (1, 2)])
    assert store.fold(loc).migrations == ("0001_calls_and_attempts",)
    # The old release leaves segments of its own format behind, without the new keys.
    spool.write_segment(loc.spool_dir, "calls", [call("old-spool")])

    # This release: 0002_routing adds columns, a table and a view.
    monkeypatch.setattr(schema, "TABLES", tables)
    monkeypatch.setattr(schema, "MIGRATIONS", migrations)
    monkeypatch.setattr(schema, "VIEWS", views)
    spool.write_segment(loc.spool_dir, "calls", [call("new", route="smart", strategy="fallback")])
    spool.write_segment(loc.spool_dir, "breaker_events", [{"event_id": "e1", "to_state": "open"}])

    # Readers work on the old file before any fold migrated it.
    sql = "SELECT call_id, route, strategy FROM calls ORDER BY call_id"
    before = store.query(loc, sql, fold_first=False)
    assert before.rows == [("new", "smart", "fallback"), ("old", None, None), ("old-spool", None, None)]
    assert store.query(loc, "SELECT event_id FROM breaker_events", fold_first=False).rows == [("e1",)]
    failovers = store.query(loc, "SELECT call_id, attempt, route, reason FROM failovers", fold_first=False)
    assert failovers.rows == [("old", 1, None, None), ("old", 2, None, None)]

    result = store.fold(loc)
    newer = tuple(m.name for m in migrations[1:])
    assert result.migrations == newer and result.rows == {"calls": 2, "breaker_events": 1}
    applied = store.query(loc, f"SELECT name FROM {store.DB_ALIAS}._unillm_migrations ORDER BY name")
    assert [r[0] for r in applied] == ["0001_calls_and_attempts", *newer]
    assert store.query(loc, sql).rows == before.rows
    assert store.query(loc, "SELECT count(*) FROM failovers").scalar() == 2
    assert store.fold(loc).migrations == ()
    # A plain DuckDB client sees the new columns, table and view in the file itself.
    con = duckdb.connect(str(loc.db_path), read_only=True)
    try:
        assert con.execute("SELECT wait_ms, breaker_state FROM attempts WHERE attempt = 2").fetchall() == [(None, None)]
        assert con.execute("SELECT call_id, attempt FROM failovers").fetchall() == [("old", 1), ("old", 2)]
        assert con.execute("SELECT event_id FROM breaker_events").fetchall() == [("e1",)]
    finally:
        con.close()


def test_a_later_migration_adds_a_column(loc: LogLocation, monkeypatch: pytest.MonkeyPatch) -> None:
    spool.write_segment(loc.spool_dir, "calls", [call("old")])
    assert store.fold(loc).migrations == tuple(m.name for m in schema.MIGRATIONS)

    # A newer release adds a column: appends a migration and the column.
    region = Column("region", "VARCHAR", "Where the call was served.")
    monkeypatch.setattr(
        schema,
        "MIGRATIONS",
        (
            *schema.MIGRATIONS,
            Migration("9999_calls_region", ("ALTER TABLE calls ADD COLUMN IF NOT EXISTS region VARCHAR",)),
        ),
    )
    monkeypatch.setitem(schema.TABLES, "calls", (*schema.CALL_COLUMNS, region))
    spool.write_segment(loc.spool_dir, "calls", [call("new", region="eu")])

    # Readers work on the old file before any fold migrated it.
    before = store.query(loc, "SELECT call_id, region FROM calls ORDER BY call_id", fold_first=False)
    assert before.rows == [("new", "eu"), ("old", None)]

    result = store.fold(loc)
    assert result.migrations == ("9999_calls_region",) and result.rows == {"calls": 1}
    applied = store.query(loc, f"SELECT name FROM {store.DB_ALIAS}._unillm_migrations ORDER BY name")
    assert [r[0] for r in applied] == [*(m.name for m in schema.MIGRATIONS[:-1]), "9999_calls_region"]
    after = store.query(loc, "SELECT call_id, region FROM calls ORDER BY call_id")
    assert after.rows == [("new", "eu"), ("old", None)]
    assert store.fold(loc).migrations == ()


def test_ensure_writable(loc: LogLocation, tmp_path: Path) -> None:
    assert store.ensure_writable(loc) is None and loc.spool_dir.is_dir()
    assert list(loc.spool_dir.iterdir()) == []  # the probe file is gone
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    broken = LogLocation(blocker / "calls.duckdb")
    message = store.ensure_writable(broken)
    assert message is not None and str(broken.spool_dir) in message and "Not a directory" in message


def test_query_on_a_new_location_is_empty_and_creates_nothing(tmp_path: Path) -> None:
    loc = LogLocation(tmp_path / "nowhere" / "calls.duckdb")
    assert count(loc) == 0 and count(loc, "attempts") == 0
    assert count(loc, "breaker_events") == 0 and count(loc, "failovers") == 0
    assert store.query(loc, "SELECT * FROM calls").columns == [c.name for c in schema.CALL_COLUMNS]
    assert not (tmp_path / "nowhere").exists()


def test_location_defaults() -> None:
    loc = LogLocation("some/dir/calls.duckdb")
    assert loc.db_path.is_absolute() and loc.spool_dir == loc.db_path.parent / "calls.spool"
    assert LogLocation("/x/calls.duckdb", "/y/spool").spool_dir == Path("/y/spool")


def test_a_backlog_is_folded_in_bounded_transactions(loc: LogLocation, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "MAX_SEGMENTS_PER_FOLD", 3)
    for i in range(10):
        spool.write_segment(loc.spool_dir, "calls", [call(f"c{i}-{j}") for j in range(5)])
    result = store.fold(loc)
    assert result.segments == 10 and result.rows == {"calls": 50}
    assert spool.list_segments(loc.spool_dir, "calls") == []
    assert store.query(loc, "SELECT count(DISTINCT call_id) FROM calls").scalar() == 50


def test_a_backlog_read_ahead_keeps_the_oldest_copy_and_quarantines_what_does_not_parse(
    loc: LogLocation, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A backlog folds with the next transaction read on a thread of its own while one commits.
    monkeypatch.setattr(store, "MAX_SEGMENTS_PER_FOLD", 3)
    loaders: list[str] = []
    load_ahead = store._load_ahead

    def spy(*args: Any) -> Any:
        loaders.append(threading.current_thread().name)
        return load_ahead(*args)

    monkeypatch.setattr(store, "_load_ahead", spy)
    segments = []
    for i in range(10):
        rows = [call(f"c{i}-{j}") for j in range(5)]
        if i == 1:
            rows.append(call("dup", request_model="the-oldest"))
        if i == 7:
            rows.append(call("dup", request_model="a-later-copy"))
        if i == 5:
            rows.append(call("bad", input_tokens="many"))
        segments.append(spool.write_segment(loc.spool_dir, "calls", rows))

    result = store.fold(loc)
    assert result.bad == (loc.spool_dir / "bad" / segments[5].name,)
    assert result.segments == 9 and result.rows == {"calls": 9 * 5 + 1}
    assert any(name.startswith("unillm-fold-ahead") for name in loaders), loaders
    assert store.query(loc, "SELECT request_model FROM calls WHERE call_id = 'dup'").rows == [("the-oldest",)]
    ids = db_ids(loc)
    assert len(ids) == len(set(ids)) == 46 and "c5-0" not in ids
    assert spool.list_segments(loc.spool_dir, "calls") == []


@pytest.mark.parametrize("first_fold_at_exit", [True, False])
def test_a_backlog_folded_at_interpreter_exit_lands_whole(loc: LogLocation, first_fold_at_exit: bool) -> None:
    # The recorder's last fold runs at exit, when no thread can start (no reading ahead then); in a
    # short script it is also the first, so the store module is only imported then.
    child = _spawn(
        """
        import atexit, sys
        import threading  # as the recorder's threads do: interpreter shutdown then stops new ones
        from unillm.tracer import spool
        from unillm.tracer.location import LogLocation

        threading.Thread(target=lambda: None).start()
        loc = LogLocation(sys.argv[1])
        for i in range(10):
            rows = [{"call_id": f"c{i}-{j}", "started_at": "2026-11-24T05:30:00+00:00"} for j in range(5)]
            spool.write_segment(loc.spool_dir, "calls", rows)

        def fold_at_exit():
            from unillm.tracer import store

            store.MAX_SEGMENTS_PER_FOLD = 3
            print(store.fold(loc).rows)

        if sys.argv[2] == "no":
            from unillm.tracer import store
        atexit.register(fold_at_exit)
        """,
        str(loc.db_path),
        "yes" if first_fold_at_exit else "no",
    )
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert out.strip() == "{'calls': 50}"
    assert count(loc) == 50 and spool.list_segments(loc.spool_dir, "calls") == []


def test_a_batch_larger_than_the_folds_memory_still_folds(loc: LogLocation) -> None:
    # Folds run under a small DuckDB memory limit (flat RSS); captured contents can exceed it.
    content = {"messages": [{"role": "user", "content": "x" * 20_000}]}
    for s in range(8):  # ~160 MB of JSON, over the 96 MB the fold starts with
        spool.write_segment(loc.spool_dir, "calls", [call(f"c{s}-{i}", request_content=content) for i in range(1000)])
    result = store.fold(loc)
    assert result.folded and result.rows == {"calls": 8000} and result.bad == ()
    assert store.query(loc, "SELECT count(*), min(length(request_content::VARCHAR)) FROM calls").rows == [
        (8000, len(json.dumps(content, separators=(",", ":"))))
    ]
