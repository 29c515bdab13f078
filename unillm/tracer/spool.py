"""Spool segments: the app's side of the call log.

The app never opens `calls.duckdb`. Its recorder hands batches of rows to `write_segment`, which
writes them as one NDJSON file into the spool folder; `unillm.tracer.store.fold` later moves them
into the database. A segment is written under a `.tmp` name and renamed into place, so a reader
listing the folder sees either the whole file or nothing (a rename within one folder is atomic).

This module runs in the app's process on every flush: it must stay cheap and must not import duckdb.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from unillm.tracer import schema

__all__ = [
    "SEGMENT_SUFFIX",
    "encode_line",
    "fold_due",
    "list_segments",
    "mark_fold_started",
    "write_lines",
    "write_segment",
]

SEGMENT_SUFFIX = ".jsonl"
TMP_SUFFIX = ".tmp"
# Touched by every fold as it starts: the processes sharing a log read its age to take turns.
FOLD_MARK = ".fold-started"

# Unique within the process; with time_ns and pid in the name, unique across processes too.
# next() on itertools.count is atomic under the GIL, so recorder threads can share it.
_seq = itertools.count()


def _segment_name(table: str) -> str:
    return f"{table}-{time.time_ns()}-{os.getpid()}-{next(_seq)}{SEGMENT_SUFFIX}"


def _check_table(table: str) -> None:
    # A typo would leave files that no fold ever picks up; fail at the writer instead.
    if table not in schema.TABLES:
        raise ValueError(f"unknown call-log table {table!r}; expected one of {sorted(schema.TABLES)}")


def encode_line(row: Mapping[str, Any]) -> bytes:
    """One row as a segment's line (JSON and a newline)."""
    try:
        return orjson.dumps(row, default=str, option=orjson.OPT_APPEND_NEWLINE)
    except (orjson.JSONEncodeError, TypeError):  # e.g. an int beyond 64 bits in a raw usage object
        return json.dumps(row, default=str, separators=(",", ":")).encode() + b"\n"


def write_segment(spool_dir: Path, table: str, rows: Sequence[Mapping[str, Any]], *, fsync: bool = False) -> Path:
    """Write `rows` as one atomic NDJSON segment for `table` and return its final path.

    Keys are column names (see `schema.TABLES`); values are JSON scalars, `tags` a dict of str,
    `usage_raw` a dict or None. Anything `json` cannot encode (datetime, Decimal, ...) is written
    as `str(value)`. `fsync=True` also survives power loss, at the cost of a disk flush per segment
    (a killed process never needs it: the rename only happens after the whole file is written).
    """
    if not rows:
        raise ValueError("write_segment needs at least one row")
    # One growing buffer: joining a list of the rows' bytes objects was 5x slower (each ~1 KB
    # object kept alive until the join costs an allocation of its own).
    data = bytearray()
    for row in rows:
        data += encode_line(row)
    return write_lines(spool_dir, table, data, fsync=fsync)


def write_lines(spool_dir: Path, table: str, data: bytes | bytearray, *, fsync: bool = False) -> Path:
    """`write_segment` for rows already encoded with `encode_line` (`data`: their lines, joined)."""
    _check_table(table)
    if not data:
        raise ValueError("write_lines needs at least one row")
    spool_dir = Path(spool_dir)
    spool_dir.mkdir(parents=True, exist_ok=True)
    final = spool_dir / _segment_name(table)
    tmp = final.with_name(final.name + TMP_SUFFIX)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, final)
    except BaseException:
        # Leave no half-written .tmp behind when we can help it (fold sweeps stale ones anyway).
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return final


def list_segments(spool_dir: Path, table: str) -> list[Path]:
    """Complete segments of `table` in the spool, oldest first (names start with time_ns).

    `.tmp` files being written are never listed. A missing folder means no segments.
    """
    _check_table(table)
    prefix = f"{table}-"
    try:
        with os.scandir(spool_dir) as it:
            names = [
                e.name for e in it if e.name.startswith(prefix) and e.name.endswith(SEGMENT_SUFFIX) and e.is_file()
            ]
    except FileNotFoundError:
        return []
    spool_dir = Path(spool_dir)
    return [spool_dir / n for n in sorted(names, key=_sort_key)]


def _sort_key(name: str) -> tuple[int, int, int, str]:
    # Numeric order of (time_ns, pid, seq): plain string order would put seq 10 before seq 9.
    parts = name[: -len(SEGMENT_SUFFIX)].split("-")
    try:
        return (int(parts[1]), int(parts[2]), int(parts[3]), name)
    except (IndexError, ValueError):
        return (0, 0, 0, name)


def mark_fold_started(spool_dir: Path) -> None:
    """Say, for the other processes on this log, that a fold has just begun (see `fold_due`)."""
    mark = Path(spool_dir) / FOLD_MARK
    try:
        os.utime(mark)
    except FileNotFoundError:
        try:
            mark.touch()
        except OSError:
            pass  # only a schedule hint: a read-only spool folds nothing anyway
    except OSError:
        pass


def fold_due(spool_dir: Path, interval: float) -> bool:
    """Whether a periodic fold is worth starting: some segment waits, and no process on this log
    began a fold in the last `interval` seconds (nearly: 0.9 of it, so ticks just short still fold).

    A fold has a cost of its own whatever it carries (a checkpoint, a transaction per 16 segments)
    and takes every process's segments; four processes each folding every second paid it four
    times over and queued on the file lock. Taking turns by the mark's age keeps it near one fold
    per interval for the whole log.
    """
    try:
        with os.scandir(spool_dir) as it:
            waiting = any(e.name.endswith(SEGMENT_SUFFIX) for e in it)
    except FileNotFoundError:
        return False
    if not waiting:
        return False
    try:
        age = time.time() - os.stat(Path(spool_dir) / FOLD_MARK).st_mtime
    except OSError:
        return True
    return age < 0 or age >= 0.9 * interval
