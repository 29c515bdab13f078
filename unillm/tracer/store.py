"""The call log's DuckDB side: fold spool segments into `calls.duckdb`, and query it.

DuckDB locks the whole file: while one process has it open read-write, every other process's
open (read-write, read-only or ATTACH READ_ONLY) fails at once (DESIGN.md §4). So nobody keeps
the file open. Apps write NDJSON segments into the spool folder (`unillm.tracer.spool`); whichever
process can take the lock for a moment runs `fold`, which ingests every current segment in one
transaction, skipping keys already stored, and deletes the segments after the commit. A crash
between commit and delete is harmless: the next fold skips those rows. `query` attaches the file
read-only for the length of one query and shows database + spool together through views.

`import unillm.tracer.store` does not import duckdb; every function that needs it imports it.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import logging
import os
import random
import re
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unillm.tracer import schema, spool
from unillm.tracer.location import LogLocation

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "FoldResult",
    "LogBusyError",
    "LogLocation",
    "QueryResult",
    "ensure_writable",
    "fold",
    "query",
]

log = logging.getLogger("unillm.tracer.store")

MIGRATIONS_TABLE = "_unillm_migrations"
# Alias of the attached log inside a query connection; users may read `unillm_db._unillm_migrations`.
DB_ALIAS = "unillm_db"
# Column read_json adds with the segment's path: orders duplicates (oldest segment wins).
_SEGMENT_COL = "_unillm_segment"
# How long `query` retries ATTACH while the lock is taken. A fold holds it for milliseconds;
# anything longer is a foreign process keeping the file open.
QUERY_LOCK_WAIT_S = 3.0
# A writer takes milliseconds to rename its .tmp file; one older than this belongs to a dead process.
STALE_TMP_S = 3600.0
BAD_DIR = "bad"
_CREATE_LOCK = ".create.lock"  # in the spool folder: held while one process creates the database
REPR_ROWS = 50
_CELL_WIDTH = 40

# Errors meaning "someone else has the file open right now", from another process (file lock) or
# from this one (DuckDB refuses a second handle on a file it already has open in the process).
_BUSY_MARKERS = (
    "Could not set lock",
    "Conflicting lock",
    "Unique file handle conflict",
    "different configuration than existing connections",
)
_HOLDER = re.compile(r"Conflicting lock is held in (?P<exe>.*?) \(PID (?P<pid>\d+)\)")
# How DuckDB says a spool segment disappeared while it was being read (a fold in another process
# moved it into the database): when listing, or when opening the file after listing it.
_VANISHED = ("No files found that match the pattern", "No such file or directory")


def _vanished(error: BaseException) -> bool:
    text = str(error)
    return any(marker in text for marker in _VANISHED)


# Result types the Python client can only hand over through pytz (not a dependency of ours).
_TZ_TYPE = re.compile(r"TIMESTAMP WITH TIME ZONE|TIMESTAMPTZ_NS|TIMESTAMPTZ")

# Two threads of one process must not fold at once: DuckDB shares one database instance per file
# inside a process, so the file lock does not separate them, and two concurrent transactions
# would each see the other's keys as absent and insert them twice.
_fold_lock = threading.Lock()


# Writers attach the log to this process's one in-memory DuckDB, under `_fold_lock`, and detach it
# afterwards: creating a DuckDB instance costs ~15 ms (duckdb.connect, even of ":memory:"), attach +
# detach ~0.5 ms. Detaching checkpoints and releases the file lock, as closing did.
_engine: duckdb.DuckDBPyConnection | None = None
WRITE_ALIAS = "unillm_log"
# Without a limit the fold's memory (JSON read buffers, the batch, the checkpoint) peaked near 370 MB
# of RSS over 600k calls and kept climbing; with one, the peaks stay level. One thread: DuckDB's JSON
# reader takes a 32 MB buffer per thread, so more threads need a higher limit. 96 MB, not the 64 MB
# of before: a backlog folds with the next transaction read while one commits (_ingest_all), two
# batches of ~31 MB each (16 segments of 2,000 calls) beside the checkpoint. At 64 MB that ran out
# of memory; four processes recorded 53.3-55.5k calls/s at 96 MB and 56.8-58.2k at 128 MB (sequential
# folds at 64 MB: 49.0-50.5k). The price: the process that folds a backlog peaks ~22 MB higher
# (219 MB against 197 MB in benchmarks/recorder.py's four-process run), ~39 MB at 128 MB.
_FOLD_MEMORY = "96MB"
# Rows per row group of the log's tables (DuckDB's default is 122,880). A checkpoint rewrites the
# last, partly filled row group, and every sixth 20k-row fold into a default-sized one cost 13-44 µs
# per row instead of 3-8 (0.3-0.9 s for one fold); at 16,384 rows each fold costs 2.4-6.5 µs per row
# and the file is ~13% larger. Only new row groups take it: an older log keeps its old ones.
_ROW_GROUP_ROWS = 16_384
_FOLD_THREADS = 1


def _reset_fold_lock() -> None:
    # A child forked while another thread held the lock would otherwise never fold; and a DuckDB
    # instance must not be used across fork (its threads and file handles are the parent's).
    global _fold_lock, _engine
    _fold_lock = threading.Lock()
    _engine = None


def _fold_temp_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"unillm-fold-{os.getpid()}"


def _write_engine() -> duckdb.DuckDBPyConnection:
    import duckdb

    global _engine
    if _engine is None:
        _engine = duckdb.connect(
            ":memory:",
            config={
                "threads": _FOLD_THREADS,
                # Beyond the limit a batch spills here instead of failing (only ever with huge captured
                # contents); DuckDB's own default is ".tmp" in the app's working directory.
                "temp_directory": str(_fold_temp_dir()),
            },
        )
    return _engine


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_fold_lock)


@dataclass(frozen=True)
class FoldResult:
    """What one `fold` did. `folded=False` means the lock was not available (see `reason`)."""

    folded: bool
    reason: str | None = None
    rows: dict[str, int] = field(default_factory=dict)  # rows ingested per table (duplicates excluded)
    segments: int = 0  # segment files folded and deleted
    bad: tuple[Path, ...] = ()  # corrupt segments moved to <spool>/bad/ by this fold
    migrations: tuple[str, ...] = ()  # migrations applied by this fold
    seconds: float = 0.0


class LogBusyError(RuntimeError):
    """The call log is held open read-write by another process for longer than a fold takes."""

    def __init__(self, path: Path, detail: str, *, reason: str | None = None) -> None:
        self.path = path
        self.reason = reason or detail  # short form, for FoldResult.reason
        m = _HOLDER.search(detail)
        self.holder_pid: int | None = int(m.group("pid")) if m else None
        if m:
            who = f"another process (PID {m.group('pid')}, {m.group('exe')}) holds it open read-write"
        elif "Conflicting lock" in detail or "Could not set lock" in detail:
            who = "another process holds it open read-write"
        else:  # DuckDB refuses a second handle on a file this process already has open
            who = "this process already has it open through another DuckDB connection"
        super().__init__(
            f"cannot read the call log {path}: {who}. unillm opens it only for milliseconds at a "
            f"time, so this is likely a duckdb shell, notebook or script that called "
            f"duckdb.connect() on it; close that connection or open the file with read_only=True. "
            f"(DuckDB: {detail.splitlines()[0] if detail else ''})"
        )


# --------------------------------------------------------------------------------------------
# SQL text helpers


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _read_segments_sql(table: str, files: Sequence[Path]) -> str:
    # Explicit column types from the schema: no sniffing, a MAP/JSON column read straight from the
    # JSON object, keys missing from a row become NULL and unknown keys are ignored.
    cols = "{" + ", ".join(f"{quote_literal(c.name)}: {quote_literal(c.sql_type)}" for c in schema.TABLES[table]) + "}"
    paths = "[" + ", ".join(quote_literal(str(f)) for f in files) + "]"
    return f"read_json({paths}, format='newline_delimited', columns={cols}, filename={quote_literal(_SEGMENT_COL)})"


def _batch_sql(table: str, files: Sequence[Path]) -> str:
    """SELECT of the segments' rows, one per key (the oldest segment wins), rows without a key dropped."""
    cols = ", ".join(quote_ident(c.name) for c in schema.TABLES[table])
    keys = schema.TABLE_KEYS[table]
    where = " AND ".join(f"s.{quote_ident(k)} IS NOT NULL" for k in keys)
    partition = ", ".join(f"s.{quote_ident(k)}" for k in keys)
    return (
        f"SELECT {cols} FROM {_read_segments_sql(table, files)} AS s WHERE {where} "
        f"QUALIFY row_number() OVER (PARTITION BY {partition} ORDER BY s.{_SEGMENT_COL}) = 1"
    )


def _load_batch(con: duckdb.DuckDBPyConnection, table: str, files: Sequence[Path], into: str | None = None) -> str:
    """The segments' rows into a table, one per key (the oldest segment wins), rows without a key
    dropped; returns the table's name: `_BATCH` (a temp table of `con`), or `into` (a table of the
    fold engine's in-memory database, which all its cursors see).

    What `_batch_sql` selects, made cheaper for folds. The segments are first copied into one file:
    read_json pays ~2.5 ms per file it opens under the fold's memory limit, a third of the cost of
    a 2,000-call segment, and a copy costs ~0.3 ms. A batch rarely holds a key twice (a segment
    copied back by hand, say), so duplicates are looked for on the keys alone and deleted only when
    there are some; the joined file keeps the segments' order, so the first row of a key is the
    oldest. A QUALIFY over the whole rows cost ~3.5 µs per call, a fifth of a fold.
    """
    keys = ", ".join(quote_ident(k) for k in schema.TABLE_KEYS[table])
    present = " AND ".join(f"s.{quote_ident(k)} IS NOT NULL" for k in schema.TABLE_KEYS[table])
    target, create = (_BATCH, "TEMP TABLE _unillm_batch") if into is None else (into, f"TABLE {into}")
    joined = _join_segments(files) if len(files) > 1 else None
    try:
        con.execute(
            f"CREATE OR REPLACE {create} AS SELECT * "
            f"FROM {_read_segments_sql(table, [joined] if joined else files)} AS s WHERE {present}"
        )
    finally:
        if joined is not None:
            joined.unlink(missing_ok=True)
    found = con.execute(f"SELECT count(*) - count(DISTINCT ({keys})) FROM {target}").fetchone()
    if found and found[0]:
        con.execute(
            f"DELETE FROM {target} WHERE rowid IN (SELECT rowid FROM (SELECT rowid, row_number() OVER "
            f"(PARTITION BY {keys} ORDER BY rowid) AS n FROM {target}) WHERE n > 1)"
        )
    return target


def _join_segments(files: Sequence[Path]) -> Path:
    """The segments copied, in order, into one file in this process's temporary folder.

    A segment missing its last newline (truncated, or written by hand) gets one, so its last line
    never runs into the next segment's first. A segment that vanished raises FileNotFoundError.
    """
    folder = _fold_temp_dir()
    folder.mkdir(parents=True, exist_ok=True)
    joined = folder / f"batch-{threading.get_ident()}{spool.SEGMENT_SUFFIX}"
    try:
        with open(joined, "wb") as out:
            for f in files:
                with open(f, "rb") as segment:
                    data = segment.read()
                out.write(data)
                if data and not data.endswith(b"\n"):
                    out.write(b"\n")
    except BaseException:
        joined.unlink(missing_ok=True)
        raise
    return joined


def _stored_sql(table: str, existing: str, since: str | None = None) -> str:
    """Condition on rows `s`: their key is already in the table `existing`.

    `since` (a SQL literal: the earliest time of the rows checked) bounds the search: a stored
    duplicate is the same row, so it has the same time, and DuckDB skips the row groups before it
    by their min/max. At 10M stored calls that makes a fold's check ~12 ms instead of ~300 ms.
    """
    match = " AND ".join(f"d.{quote_ident(k)} = s.{quote_ident(k)}" for k in schema.TABLE_KEYS[table])
    if since is not None:
        match += f" AND d.{quote_ident(schema.time_column(table))} >= {since}"
    return f"EXISTS (SELECT 1 FROM {existing} AS d WHERE {match})"


def _earliest(con: duckdb.DuckDBPyConnection, table: str, rows: str) -> str | None:
    """The earliest time among `rows` as a TIMESTAMPTZ literal; None when some row has no time
    (then the duplicate check cannot be bounded)."""
    column = quote_ident(schema.time_column(table))
    found = con.execute(
        f"SELECT CAST(min({column}) AS VARCHAR), count(*) FILTER (WHERE {column} IS NULL) FROM {rows}"
    ).fetchone()
    if found is None or found[0] is None or found[1]:
        return None
    return f"CAST({quote_literal(found[0])} AS TIMESTAMPTZ)"  # text both ways: exact, no pytz


# The batch is always materialised into a small temp table before it meets the stored rows: an
# anti-join straight off read_json is planned as a MARK join that hashes the whole stored table
# (~150 ms at 1M rows), against the temp table it hashes the batch (~15 ms).
_BATCH = "temp.main._unillm_batch"


# Lock waits poll (DuckDB's lock is try-only). Folds and queries hold it for milliseconds with short
# gaps between them, so a long backoff would starve the waiter; jitter breaks lock-step retries.
_MAX_BACKOFF_S = 0.02


def _jitter(delay: float) -> float:
    return delay * random.uniform(0.5, 1.5)


def _is_busy(exc: BaseException) -> bool:
    text = str(exc)
    return any(m in text for m in _BUSY_MARKERS)


# --------------------------------------------------------------------------------------------
# fold


def fold(loc: LogLocation, *, max_wait_s: float = 0.0, max_rounds: int | None = None) -> FoldResult:
    """Move the spool's segments into the database, exactly once per key.

    Attaches the database read-write (creating it and its folder if missing), retrying while another
    process holds the lock until `max_wait_s` has passed; then gives up with `folded=False`
    instead of raising. Runs pending migrations, then ingests the oldest segments in transactions
    of at most MAX_SEGMENTS_PER_FOLD per table, `max_rounds` of them (16 by default: a backlog
    larger than that is left for the next fold, so readers are never kept out for long), deleting
    each transaction's segments after its commit, and detaches. Corrupt segments are moved to
    `<spool>/bad/` and reported. Other errors (corrupt database file, permission denied) raise.
    """
    t0 = time.monotonic()
    try:
        created = _create_database(loc)
        with writing(loc, max_wait_s=max_wait_s) as con:
            spool.mark_fold_started(loc.spool_dir)
            applied = created + _migrate(con)
            rows, segments, bad = _ingest_all(con, loc, _MAX_ROUNDS if max_rounds is None else max_rounds)
    except LogBusyError as busy:
        return FoldResult(False, reason=busy.reason, seconds=time.monotonic() - t0)
    _sweep_stale_tmp(loc.spool_dir)
    return FoldResult(
        True,
        rows=rows,
        segments=segments,
        bad=tuple(bad),
        migrations=tuple(applied),
        seconds=time.monotonic() - t0,
    )


@contextmanager
def writing(loc: LogLocation, *, max_wait_s: float = 0.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """The log opened read-write (created with its folder if missing) by one writer at a time.

    Takes this process's fold lock, then DuckDB's file lock, retrying with jittered backoff while
    another process holds it; after `max_wait_s` raises `LogBusyError` (its `reason` says why).
    Every writer (`fold`, `unillm prune`) goes through here, so they never race each other.
    """
    import duckdb

    deadline = time.monotonic() + max_wait_s
    lock = _fold_lock  # read now: a fork replaces it
    got = lock.acquire(timeout=max_wait_s) if max_wait_s > 0 else lock.acquire(blocking=False)
    if not got:
        raise LogBusyError(loc.db_path, "", reason="another thread of this process is folding")
    try:
        loc.db_path.parent.mkdir(parents=True, exist_ok=True)
        _create_database(loc)
        delay = 0.002
        con = _write_engine().cursor()  # its own USE and temp tables; the instance is shared
        try:
            while True:
                try:
                    con.execute(
                        f"ATTACH {quote_literal(str(loc.db_path))} AS {WRITE_ALIAS} (ROW_GROUP_SIZE {_ROW_GROUP_ROWS})"
                    )
                    break
                except duckdb.Error as e:
                    if not _is_busy(e):
                        raise
                    if time.monotonic() >= deadline:
                        detail = str(e).splitlines()[0]
                        reason = f"call log {loc.db_path} is held open by another connection ({detail})"
                        raise LogBusyError(loc.db_path, str(e), reason=reason) from None
                    time.sleep(min(_jitter(delay), max(deadline - time.monotonic(), 0.0)))
                    delay = min(delay * 2, _MAX_BACKOFF_S)
            try:
                con.execute(f"USE {WRITE_ALIAS}")  # the caller's unqualified names are the log's
                con.execute(f"SET memory_limit = {quote_literal(_FOLD_MEMORY)}")  # a lifted one comes back
                yield con
            finally:
                _detach(con)
        finally:
            con.close()
    finally:
        lock.release()


def _detach(con: duckdb.DuckDBPyConnection) -> None:
    """End the caller's transaction if it left one open, then detach (checkpoint, release the lock)."""
    import duckdb

    try:
        con.rollback()
    except duckdb.Error:
        pass  # no transaction was open
    con.execute("USE memory")
    con.execute(f"DETACH {WRITE_ALIAS}")


def has_database(db_path: Path) -> bool:
    """Whether the log's database file exists whole (an empty file is the debris of a crashed create)."""
    try:
        return db_path.stat().st_size > 0
    except OSError:
        return False


@contextmanager
def _creation_lock(loc: LogLocation) -> Iterator[None]:
    """Serialise creating the database across processes (an advisory lock, freed if its holder dies)."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock; creating is then only atomic by the rename below
        yield
        return
    loc.spool_dir.mkdir(parents=True, exist_ok=True)
    with open(loc.spool_dir / _CREATE_LOCK, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _create_database(loc: LogLocation) -> list[str]:
    """Create the database whole, once, however many processes fold for the first time together.

    DuckDB writes a new file's header after creating it, so a second process opening the file in
    between read an empty file and failed ("not a valid DuckDB database file"); once, with four
    processes starting at once, the empty file stayed and every later open failed. So the file is
    built and migrated under a temporary name, then renamed into place, under a lock. Returns the
    migrations applied (none when the database was there already).
    """
    if has_database(loc.db_path):
        return []
    import duckdb

    loc.db_path.parent.mkdir(parents=True, exist_ok=True)
    with _creation_lock(loc):
        if has_database(loc.db_path):
            return []  # another process made it while we waited
        tmp = loc.db_path.with_name(f".{loc.db_path.name}.{os.getpid()}.creating")
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            leftover.unlink(missing_ok=True)
        con = duckdb.connect(str(tmp))
        try:
            applied = _migrate(con)
        finally:
            con.close()
        os.replace(tmp, loc.db_path)
    return applied


def _migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply the migrations this file has not seen yet, each in one transaction with its record."""
    con.execute(f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (name VARCHAR PRIMARY KEY, applied_at TIMESTAMPTZ)")
    applied = {r[0] for r in con.execute(f"SELECT name FROM {MIGRATIONS_TABLE}").fetchall()}
    done: list[str] = []
    for migration in schema.MIGRATIONS:  # read at call time: tests append fake migrations
        if migration.name in applied:
            continue
        con.begin()
        try:
            for statement in migration.statements:
                con.execute(statement)
            con.execute(f"INSERT INTO {MIGRATIONS_TABLE} VALUES (?, now())", [migration.name])
            con.commit()
        except BaseException:
            con.rollback()
            raise
        log.info("applied call-log migration %s", migration.name)
        done.append(migration.name)
    return done


# The oldest this many segments per table go into one transaction: a backlog (a log that was locked
# for a while, a burst) is folded in bounded steps, so a fold's memory stays bounded too.
MAX_SEGMENTS_PER_FOLD = 16
_MAX_ROUNDS = 16


def _ingest_all(
    con: duckdb.DuckDBPyConnection, loc: LogLocation, max_rounds: int
) -> tuple[dict[str, int], int, list[Path]]:
    """Ingest the spool in transactions of at most MAX_SEGMENTS_PER_FOLD segments per table (a
    bounded number of them: writers that keep adding segments must not keep readers out).

    While one transaction inserts and commits (its checkpoint included), a thread of its own reads
    the next one's segments into memory: the two halves of a fold cost about the same, and DuckDB
    runs both without the GIL, so a backlog folds on two cores instead of one. A transaction whose
    segments do not read that way (one vanished, or is corrupt) goes through `_ingest`, which
    lists again and quarantines.
    """
    rows: dict[str, int] = {}
    segments, bad = 0, []
    ahead: _ReadAhead | None = None
    loaded: _Loaded | None = None
    try:
        for round_ in range(max_rounds):
            loaded = ahead.result() if ahead is not None else _load_ahead(loc, frozenset(), round_ % 2)
            ahead = None
            done: dict[str, int] | None = None
            if loaded is not None:
                taken = loaded.segments()
                if loaded.more and round_ + 1 < max_rounds:
                    ahead = _ReadAhead.start_for(loc, taken, (round_ + 1) % 2)
                done = _commit_loaded(con, loaded)
                count, more = len(taken), loaded.more
                loaded = None
            if done is None:  # nothing read ahead, or its commit failed: the plain way
                if ahead is not None:
                    _drop_loaded(con, ahead.result())
                    ahead = None
                done, count, quarantined, more = _ingest(con, loc)
                bad.extend(quarantined)
            for table, n in done.items():
                rows[table] = rows.get(table, 0) + n
            segments += count
            if not more:
                break
    finally:
        _drop_loaded(con, loaded)
        if ahead is not None:
            _drop_loaded(con, ahead.result())
    return rows, segments, bad


class _ReadAhead(threading.Thread):
    """`_load_ahead` on a thread of its own; `result()` waits for it and raises what it raised.

    A plain thread, not concurrent.futures: the exit fold may be a process's first, and importing
    concurrent.futures.thread at interpreter shutdown raises. At shutdown, when no thread can
    start, `start_for` returns None and the transactions are read one after another.
    """

    def __init__(self, loc: LogLocation, exclude: frozenset[Path], slot: int) -> None:
        super().__init__(name="unillm-fold-ahead", daemon=True)
        self._job = (loc, exclude, slot)
        self._loaded: _Loaded | None = None
        self._error: BaseException | None = None

    @classmethod
    def start_for(cls, loc: LogLocation, exclude: frozenset[Path], slot: int) -> _ReadAhead | None:
        thread = cls(loc, exclude, slot)
        try:
            thread.start()
        except RuntimeError:  # interpreter shutdown
            return None
        return thread

    def run(self) -> None:
        try:
            self._loaded = _load_ahead(*self._job)
        except BaseException as exc:  # handed to the folding thread by result()
            self._error = exc

    def result(self) -> _Loaded | None:
        self.join()
        if self._error is not None:
            raise self._error
        return self._loaded


@dataclass(frozen=True)
class _Loaded:
    """One transaction's segments, their rows already read into the fold engine's in-memory database."""

    files: dict[str, list[Path]]
    tables: dict[str, str]  # table -> the in-memory table holding its segments' rows
    more: bool  # the spool held more segments than one transaction takes

    def segments(self) -> frozenset[Path]:
        return frozenset(f for fs in self.files.values() for f in fs)


def _list_transaction(loc: LogLocation, exclude: frozenset[Path]) -> tuple[dict[str, list[Path]], bool]:
    """The oldest segments of each table for one transaction, and whether more are waiting."""
    listed = {t: [f for f in spool.list_segments(loc.spool_dir, t) if f not in exclude] for t in schema.TABLES}
    more = any(len(fs) > MAX_SEGMENTS_PER_FOLD for fs in listed.values())
    return {t: fs[:MAX_SEGMENTS_PER_FOLD] for t, fs in listed.items() if fs}, more


def _load_ahead(loc: LogLocation, exclude: frozenset[Path], slot: int) -> _Loaded | None:
    """The next transaction's segments (leaving out `exclude`, the one being committed) read into
    memory on a cursor of its own, so on any thread. None when the spool is empty or a segment did
    not read; two slots, so a load never replaces the tables a commit is reading."""
    import duckdb

    files, more = _list_transaction(loc, exclude)
    if not files:
        return None
    con = _write_engine().cursor()
    tables: dict[str, str] = {}
    try:
        for table, fs in files.items():
            tables[table] = _load_batch(con, table, fs, into=f"memory.main._unillm_ahead{slot}_{table}")
    except (duckdb.Error, FileNotFoundError):  # FileNotFoundError: a segment vanished (_join_segments)
        _drop_loaded(con, _Loaded(files, tables, more))
        return None
    finally:
        con.close()
    return _Loaded(files, tables, more)


def _drop_loaded(con: duckdb.DuckDBPyConnection, loaded: _Loaded | None) -> None:
    if loaded is not None:
        for name in loaded.tables.values():
            con.execute(f"DROP TABLE IF EXISTS {name}")


def _commit_loaded(con: duckdb.DuckDBPyConnection, loaded: _Loaded) -> dict[str, int] | None:
    """Insert a loaded transaction's new rows and commit; then delete its segments. None when the
    commit failed (out of memory, say): the caller folds those segments the plain way."""
    import duckdb

    try:
        con.begin()
        done = {table: _insert_new(con, table, source) for table, source in loaded.tables.items()}
        con.commit()
    except duckdb.Error:
        con.rollback()
        return None
    finally:
        _drop_loaded(con, loaded)
    _delete_segments(loaded.files)
    return done


def _insert_new(con: duckdb.DuckDBPyConnection, table: str, source: str) -> int:
    """Insert the rows of `source` whose key `table` lacks; the number inserted."""
    cols = ", ".join(quote_ident(c.name) for c in schema.TABLES[table])
    since = _earliest(con, table, source)
    inserted = con.execute(
        f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {source} AS s WHERE NOT {_stored_sql(table, table, since)}"
    ).fetchall()
    return int(inserted[0][0]) if inserted else 0


def _delete_segments(files: dict[str, list[Path]]) -> None:
    # Only after the commit: a crash before this leaves files whose keys are now stored, and the
    # next fold skips them.
    for fs in files.values():
        for f in fs:
            try:
                f.unlink()
            except FileNotFoundError:
                pass


def _ingest(con: duckdb.DuckDBPyConnection, loc: LogLocation) -> tuple[dict[str, int], int, list[Path], bool]:
    import duckdb

    bad: list[Path] = []
    # Each round either commits or removes a reason to fail (a corrupt file, a vanished one),
    # so a few rounds suffice; new segments keep arriving but are simply left for the next fold.
    for _ in range(5):
        files, more = _list_transaction(loc, frozenset())
        if not files:
            return {}, 0, bad, False
        try:
            con.begin()
            rows: dict[str, int] = {}
            for table, fs in files.items():
                rows[table] = _insert_new(con, table, _load_batch(con, table, fs))
            con.execute(f"DROP TABLE IF EXISTS {_BATCH}")
            con.commit()
        except (duckdb.Error, FileNotFoundError) as e:  # FileNotFoundError: a segment vanished (_join_segments)
            con.rollback()
            if _vanished(e):
                continue  # someone removed a segment after we listed it: list again
            if isinstance(e, duckdb.OutOfMemoryException) and _lift_memory_limit(con):
                continue  # a batch of large captured contents: again without the fold's limit
            quarantined = _quarantine(con, loc, files)
            if not quarantined:
                raise  # not a segment's fault
            bad.extend(quarantined)
            continue
        _delete_segments(files)
        return rows, sum(len(fs) for fs in files.values()), bad, more
    raise RuntimeError(f"could not fold the spool {loc.spool_dir}: segments kept changing or failing")


def _lift_memory_limit(con: duckdb.DuckDBPyConnection) -> bool:
    """Give this fold DuckDB's default memory limit; False when it had it already."""

    def limit() -> Any:
        found = con.execute("SELECT current_setting('memory_limit')").fetchone()
        return found[0] if found else None

    before = limit()
    con.execute("RESET memory_limit")
    if limit() == before:
        return False
    log.debug("a fold needed more than %s: retrying it without that limit", _FOLD_MEMORY)
    return True


def _quarantine(con: duckdb.DuckDBPyConnection, loc: LogLocation, files: dict[str, list[Path]]) -> list[Path]:
    """Read each segment alone; move those that do not parse against the schema to bad/."""
    import duckdb

    moved: list[Path] = []
    for table, fs in files.items():
        for f in fs:
            try:
                # CREATE ... AS materialises every column, so every value is parsed and cast.
                con.execute(f"CREATE OR REPLACE TEMP TABLE _unillm_probe AS {_batch_sql(table, [f])}")
            except duckdb.Error as e:
                if _vanished(e) or not f.exists():
                    continue
                if not isinstance(e, (duckdb.InvalidInputException, duckdb.ConversionException)):
                    raise  # not about the file's content (out of memory, I/O, ...)
                moved.append(_move_to_bad(loc, f, str(e)))
    con.execute("DROP TABLE IF EXISTS temp._unillm_probe")
    return moved


def _move_to_bad(loc: LogLocation, f: Path, error: str) -> Path:
    bad_dir = loc.spool_dir / BAD_DIR
    bad_dir.mkdir(exist_ok=True)
    dest = bad_dir / f.name
    os.replace(f, dest)
    # The reason beside the file, so whoever looks at bad/ knows why without re-running DuckDB.
    dest.with_name(dest.name + ".error.txt").write_text(error + "\n", encoding="utf-8")
    log.warning("moved corrupt call-log segment %s to %s: %s", f.name, bad_dir, error.splitlines()[0])
    return dest


def _sweep_stale_tmp(spool_dir: Path) -> None:
    now = time.time()
    try:
        with os.scandir(spool_dir) as it:
            for e in it:
                if e.name.endswith(spool.SEGMENT_SUFFIX + spool.TMP_SUFFIX):
                    try:
                        if now - e.stat().st_mtime > STALE_TMP_S:
                            os.unlink(e.path)
                    except OSError:
                        pass
    except OSError:
        pass


# --------------------------------------------------------------------------------------------
# query


class QueryResult:
    """The rows of one query, fetched in full; the connection is already closed."""

    __slots__ = ("columns", "rows")

    def __init__(self, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
        self.columns = columns
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.rows)

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows

    def to_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def scalar(self) -> Any:
        """The single value of a one-column, at-most-one-row result (None when there is no row)."""
        if len(self.columns) != 1 or len(self.rows) > 1:
            raise ValueError(
                f"scalar() needs one column and at most one row; got {len(self.columns)} columns, {len(self.rows)} rows"
            )
        return self.rows[0][0] if self.rows else None

    def df(self) -> Any:  # pandas.DataFrame; Any keeps pandas (and its stubs) optional
        """The rows as a pandas DataFrame (pandas is optional and imported only here)."""
        try:
            pandas = importlib.import_module("pandas")
        except ImportError:
            raise ImportError("QueryResult.df() needs pandas, which is not installed: pip install pandas") from None
        return pandas.DataFrame.from_records(self.rows, columns=self.columns)

    def __repr__(self) -> str:
        return self._table(REPR_ROWS)

    __str__ = __repr__

    def _table(self, limit: int) -> str:
        shown = self.rows[:limit]
        cells = [[_cell(v) for v in row] for row in shown]
        widths = [len(c) for c in self.columns]
        for row in cells:
            widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
        numeric = [
            any(isinstance(r[i], (int, float)) for r in shown)
            and all(isinstance(r[i], (int, float)) or r[i] is None for r in shown)
            for i in range(len(self.columns))
        ]

        def line(values: Sequence[str], right: Sequence[bool]) -> str:
            return " | ".join(
                v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True)
            ).rstrip()

        out = [line(self.columns, [False] * len(widths)), "-+-".join("-" * w for w in widths)]
        out += [line(row, numeric) for row in cells]
        n = len(self.rows)
        more = f", showing the first {limit}" if n > limit else ""
        out.append(f"({n} row{'s' if n != 1 else ''}{more})")
        return "\n".join(out)


def _cell(value: Any) -> str:
    if value is None:
        text = "NULL"
    elif isinstance(value, _dt.datetime):
        text = value.isoformat(sep=" ")
    elif isinstance(value, float):
        text = f"{value:.6g}"
    else:
        text = str(value)
    text = text.replace("\n", "\\n")
    return text if len(text) <= _CELL_WIDTH else text[: _CELL_WIDTH - 1] + "…"


_ALLOWED = ("SELECT", "EXPLAIN")


def _guard(statements: Sequence[duckdb.Statement]) -> None:
    if len(statements) != 1:
        raise ValueError(f"the call log takes one read-only statement per query; got {len(statements)} statements")
    kind = statements[0].type.name
    if kind not in _ALLOWED:
        snippet = " ".join(statements[0].query.split())[:60]
        raise ValueError(
            f"the call log is read-only: {kind} statements are refused ({snippet!r}). Only queries "
            f"run here: SELECT / WITH / FROM / VALUES / DESCRIBE / SHOW / SUMMARIZE / EXPLAIN."
        )


def query(
    loc: LogLocation,
    sql: str,
    params: Sequence[Any] | dict[str, Any] | None = None,
    *,
    read_only_guard: bool = True,
    fold_first: bool = True,
    lock_wait_s: float = QUERY_LOCK_WAIT_S,
    log_only: bool = False,
) -> QueryResult:
    """Run one SQL query over the call log: each table of `schema.TABLES` = database + spool,
    and the views of `schema.VIEWS` over them.

    Each call opens a fresh in-memory DuckDB, ATTACHes the log READ_ONLY (as `unillm_db`),
    builds the views, runs `sql`, fetches every row and closes, so no reader holds the file
    between queries. ATTACH is retried for `lock_wait_s` (3 s) while a fold holds the lock; if
    another process keeps the file open read-write longer than that, `LogBusyError` names the file
    and the holder. (Answering from the spool alone would silently drop every folded row.)
    A corrupt segment is skipped by readers (fold moves it to bad/).

    With `fold_first` (default) pending segments are first folded opportunistically (no waiting;
    any failure is ignored), which keeps the spool short so later queries read fewer files.
    TIMESTAMPTZ values come back as timezone-aware UTC datetimes (without needing pytz).
    With `read_only_guard`, anything but one query statement raises ValueError. The guard is about
    clear errors, not a sandbox: the file is attached read-only in any case.
    With `log_only` (the dashboard's SQL console, which a browser drives) the query cannot reach
    anything but the log: no other file, database or URL (`enable_external_access = false`, locked).
    """
    import duckdb

    statements = duckdb.extract_statements(sql)
    if not statements:
        raise ValueError("empty SQL")
    if read_only_guard:
        _guard(statements)
    elif params is not None and len(statements) > 1:
        raise ValueError("params can only be used with a single statement")

    with reading(loc, fold_first=fold_first, lock_wait_s=lock_wait_s) as con:
        if log_only:  # after the views are built: they read the spool files, the query may not
            con.execute("SET enable_external_access = false")
            con.execute("SET lock_configuration = true")
        return _run(con, statements, params)


@contextmanager
def reading(
    loc: LogLocation, *, fold_first: bool = True, lock_wait_s: float = QUERY_LOCK_WAIT_S
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A fresh in-memory DuckDB whose views show the log (database + spool), closed afterwards.

    The way every reader opens the log (`query`, `unillm export`): ATTACH read-only, retried for
    `lock_wait_s` while a fold holds the lock (then `LogBusyError`), rebuilt when a fold moved
    segments meanwhile. With `fold_first`, pending segments are folded first, opportunistically.
    """
    import duckdb

    if fold_first and any(spool.list_segments(loc.spool_dir, t) for t in schema.TABLES):
        try:
            # One round (MAX_SEGMENTS_PER_FOLD per table): a query must not spend seconds folding a
            # backlog that the recorders fold anyway; it reads what is left from the spool.
            fold(loc, max_wait_s=0.0, max_rounds=1)
        except Exception:  # opportunistic: a reader without write access still answers from db + spool
            log.debug("opportunistic fold before reading failed", exc_info=True)

    deadline = time.monotonic() + lock_wait_s
    delay = 0.002
    vanished = 0
    while True:
        con = duckdb.connect(":memory:")
        try:
            _prepare(con, loc)
        except duckdb.Error as e:
            con.close()
            if _is_busy(e):
                if time.monotonic() >= deadline:
                    raise LogBusyError(loc.db_path, str(e)) from None
                time.sleep(_jitter(delay))
                delay = min(delay * 2, _MAX_BACKOFF_S)
                continue
            if _vanished(e) and vanished < 5:
                vanished += 1  # a fold moved segments into the db between listing and reading
                continue
            raise
        except _Retry:
            con.close()
            continue
        except BaseException:
            con.close()
            raise
        break
    try:
        yield con
    finally:
        con.close()


class _Retry(Exception):
    """The database appeared while the views were built from the spool alone: build them again."""


def _prepare(con: duckdb.DuckDBPyConnection, loc: LogLocation) -> None:
    # Results convert TIMESTAMPTZ to UTC ourselves (see _run); a typo'd table name must raise
    # instead of silently scanning a Python variable of that name.
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET python_enable_replacements = false")
    had_db = has_database(loc.db_path)
    existing: dict[str, set[str]] = {}
    if had_db:
        con.execute(f"ATTACH {quote_literal(str(loc.db_path))} AS {DB_ALIAS} (READ_ONLY)")
        # While attached we hold a shared lock: no fold can run, so the segment list below is
        # consistent with the database (a fold deletes segments before it releases the lock).
        for table, column in con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = ? AND schema_name = 'main'",
            [DB_ALIAS],
        ).fetchall():
            existing.setdefault(table, set()).add(column)
    for table, columns in schema.TABLES.items():
        db_table = f"{DB_ALIAS}.main.{table}" if table in existing else None
        spool_table = f"_unillm_spool_{table}"
        _load_spool(con, table, spool.list_segments(loc.spool_dir, table), spool_table, db_table)
        view = f"SELECT * FROM temp.main.{spool_table}"
        if db_table is not None:
            # An older log may lack newer columns until its next fold migrates it.
            have = existing[table]
            select = ", ".join(
                quote_ident(c.name) if c.name in have else f"CAST(NULL AS {c.sql_type}) AS {quote_ident(c.name)}"
                for c in columns
            )
            view = f"SELECT {select} FROM {db_table} UNION ALL {view}"
        con.execute(f"CREATE TEMP VIEW {table} AS {view}")
    # Derived views read the temp views above (db + spool), never the db's own copy (db alone).
    for name, derived in schema.VIEWS.items():
        con.execute(f"CREATE TEMP VIEW {quote_ident(name)} AS {derived.select}")
    if not had_db and has_database(loc.db_path):
        # A fold created the database meanwhile and may have moved segments we did not read.
        raise _Retry


def _load_spool(
    con: duckdb.DuckDBPyConnection, table: str, files: list[Path], spool_table: str, db_table: str | None
) -> None:
    """Materialise the spool's rows that the database lacks, once per query (a view over read_json
    would re-read the files each time the user's SQL mentions the table)."""
    import duckdb

    target = f"temp.main.{spool_table}"
    if files:
        try:
            con.execute(f"CREATE TEMP TABLE {spool_table} AS {_batch_sql(table, files)}")
        except (duckdb.InvalidInputException, duckdb.ConversionException) as e:
            if _vanished(e):
                raise
            _load_spool_file_by_file(con, table, files, spool_table)
        if db_table is not None:
            since = _earliest(con, table, target)
            con.execute(f"DELETE FROM {target} AS s WHERE {_stored_sql(table, db_table, since)}")
    else:
        defs = ", ".join(f"{quote_ident(c.name)} {c.sql_type}" for c in schema.TABLES[table])
        con.execute(f"CREATE TEMP TABLE {spool_table} ({defs})")


def _load_spool_file_by_file(con: duckdb.DuckDBPyConnection, table: str, files: list[Path], spool_table: str) -> None:
    # A corrupt segment must not blind the reader to the rest: load file by file and skip it
    # (readers leave it where it is; the next fold moves it to bad/).
    import duckdb

    defs = ", ".join(f"{quote_ident(c.name)} {c.sql_type}" for c in schema.TABLES[table])
    con.execute(f"CREATE TEMP TABLE {spool_table} ({defs})")
    cols = ", ".join(quote_ident(c.name) for c in schema.TABLES[table])
    target = f"temp.main.{spool_table}"
    for f in files:
        try:
            con.execute(
                f"INSERT INTO {target} SELECT {cols} FROM ({_batch_sql(table, [f])}) AS s "
                f"WHERE NOT {_stored_sql(table, target)}"
            )
        except (duckdb.InvalidInputException, duckdb.ConversionException) as e:
            if _vanished(e):
                raise
            log.warning("skipping corrupt call-log segment %s: %s", f, str(e).splitlines()[0])


def _run(
    con: duckdb.DuckDBPyConnection,
    statements: Sequence[duckdb.Statement],
    params: Sequence[Any] | dict[str, Any] | None,
) -> QueryResult:
    import duckdb

    for statement in statements[:-1]:
        con.execute(statement.query)
    last = statements[-1]
    text = last.query.rstrip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    tz_top: frozenset[int] = frozenset()
    if last.type == duckdb.StatementType.SELECT:
        text, tz_top = _without_tz(con, text, params)
    con.execute(text, params)
    if con.description is None:
        return QueryResult([], [])
    columns = [d[0] for d in con.description]
    rows = con.fetchall()
    if tz_top:
        utc = _dt.timezone.utc
        rows = [
            tuple(v.replace(tzinfo=utc) if i in tz_top and isinstance(v, _dt.datetime) else v for i, v in enumerate(r))
            for r in rows
        ]
    return QueryResult(columns, rows)


def _without_tz(
    con: duckdb.DuckDBPyConnection, text: str, params: Sequence[Any] | dict[str, Any] | None
) -> tuple[str, frozenset[int]]:
    """Rewrite a query whose result has TIMESTAMPTZ columns so the client can fetch it without pytz.

    DuckDB's Python client builds tz-aware datetimes through pytz; we select `timezone('UTC', col)`
    (a plain TIMESTAMP holding UTC wall time) and attach `timezone.utc` in Python. Nested values
    (a list or struct of TIMESTAMPTZ) are cast to their TIMESTAMP form and come back naive UTC.
    DESCRIBE only binds the query, so finding the types costs no extra run.
    """
    import duckdb

    try:
        described = con.execute(f"DESCRIBE {text}\n", params).fetchall()
    except duckdb.Error:
        return text, frozenset()  # not describable (e.g. DESCRIBE/SHOW itself): run as is
    types = [str(row[1]) for row in described]
    if not any(_TZ_TYPE.search(t) for t in types):
        return text, frozenset()
    items: list[str] = []
    top: list[int] = []
    for i, (row, type_) in enumerate(zip(described, types, strict=True), start=1):
        name = quote_ident(str(row[0]))
        if type_ in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ", "TIMESTAMPTZ_NS"):
            items.append(f"timezone('UTC', #{i}) AS {name}")
            top.append(i - 1)
        elif _TZ_TYPE.search(type_):
            plain = type_.replace("TIMESTAMP WITH TIME ZONE", "TIMESTAMP").replace("TIMESTAMPTZ_NS", "TIMESTAMP_NS")
            plain = plain.replace("TIMESTAMPTZ", "TIMESTAMP")
            items.append(f"CAST(#{i} AS {plain}) AS {name}")
        else:
            items.append(f"#{i}")
    # Newlines around the user's text: a trailing `-- comment` must not swallow the parenthesis.
    return f"SELECT {', '.join(items)} FROM (\n{text}\n) AS _unillm_q", frozenset(top)


# --------------------------------------------------------------------------------------------
# recorder support


def ensure_writable(loc: LogLocation) -> str | None:
    """None if the spool folder can be created and written; else a message naming path and error."""
    try:
        loc.spool_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".unillm-probe-", suffix=".tmp", dir=loc.spool_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        reason = e.strerror or str(e)
        where = e.filename or loc.spool_dir
        return (
            f"unillm cannot write its call-log spool folder {loc.spool_dir} ({where}: {reason}); "
            f"calls are not being recorded. Point the call log at a writable path in the unillm config."
        )
    return None
