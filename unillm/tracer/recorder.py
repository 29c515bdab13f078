"""The recorder: finished calls go into a bounded queue; a background thread turns them into
rows and appends them to the spool as atomic segment files; a second one folds the spool into
`calls.duckdb` about once a second, when it can take the lock for a moment.

The calling thread only appends to a deque (~0.1 µs). Nothing here raises into the app: write
failures are reported once and the rows are kept (up to the queue cap) to be written when the
location works again.

Rows of the other tables (breaker_events) come in through `submit_event`, already built; observers
(`add_observer`) see every call's rows on the writer thread, e.g. the router learning latencies.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, TypeVar

from unillm import diagnostics
from unillm.tracer import schema
from unillm.tracer.call import CallRecord, new_call_id
from unillm.tracer.location import LogLocation
from unillm.tracer.pricing import Pricer
from unillm.tracer.rows import build_rows, host_name
from unillm.tracer.spool import encode_line, fold_due, write_lines, write_segment

_BATCH = 2000  # calls (and events) per segment at most
_HIGH_WATER = 2 * _BATCH  # queued calls beyond which the caller yields to the writer
# Tables built from CallRecords, written in this order after the event tables: attempts first, so
# a reader that sees a call can always see its attempts.
_CALL_TABLES = ("attempts", "calls")

Observer = Callable[[dict[str, Any], list[dict[str, Any]]], None]
RowHook = Callable[[CallRecord, dict[str, Any], list[dict[str, Any]]], None]
_T = TypeVar("_T")


def _take(queue: deque[_T], limit: int) -> list[_T]:
    items: list[_T] = []
    while queue and len(items) < limit:
        items.append(queue.popleft())
    return items


class EncodedCalls:
    """Calls waiting to be written, as segment lines: one buffer per table, grown in place.

    Lines go straight into a bytearray (no dict or bytes object per call outlives its turn), and
    each call's end offsets are kept (plain ints) so the oldest calls can be dropped when the
    spool cannot be written for long.
    """

    __slots__ = ("attempts", "calls", "ends")

    def __init__(self) -> None:
        self.calls = bytearray()
        self.attempts = bytearray()
        self.ends: list[tuple[int, int]] = []  # (end in calls, end in attempts) after each call

    def __len__(self) -> int:
        return len(self.ends)

    def add(self, call_row: dict[str, Any], attempt_rows: list[dict[str, Any]]) -> None:
        self.calls += encode_line(call_row)
        for row in attempt_rows:
            self.attempts += encode_line(row)
        self.ends.append((len(self.calls), len(self.attempts)))

    def attempts_written(self) -> None:
        self.attempts = bytearray()
        self.ends = [(c, 0) for c, _ in self.ends]

    def drop_oldest(self, n: int) -> None:
        call_cut, attempt_cut = self.ends[n - 1]
        del self.calls[:call_cut]
        del self.attempts[:attempt_cut]
        self.ends = [(c - call_cut, a - attempt_cut) for c, a in self.ends[n:]]


def _no_events() -> dict[str, list[dict[str, Any]]]:
    return {t: [] for t in schema.TABLES if t not in _CALL_TABLES}


def _event_row(row: dict[str, Any], host: str, pid: int) -> dict[str, Any]:
    full = dict(row)  # the caller's dict stays untouched
    if full.get("event_id") is None:
        full["event_id"] = new_call_id()  # the key: a row without one would never be ingested
    if full.get("process_id") is None:
        full["process_id"] = pid
    if full.get("host") is None:
        full["host"] = host
    return full


@contextmanager
def _short_gil_turns() -> Iterator[None]:
    """Shorten the interpreter's thread switch interval while this thread does I/O-heavy work.

    Imports and DuckDB calls release the GIL around every file operation; each time, getting it
    back waits for the app's thread to reach the switch interval (5 ms by default). Under an app
    thread that never blocks, warm-up imports then took ~30 s and a fold seconds instead of
    ~200 ms and ~20 ms. The interval is restored right after.
    """
    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, 0.0002))
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


class Recorder:
    def __init__(
        self,
        location: LogLocation,
        pricer: Pricer,
        *,
        flush_interval: float = 0.5,
        fold_interval: float = 1.0,
        max_queue: int = 100_000,
    ) -> None:
        self.location = location
        self._pricer = pricer
        self._flush_interval = flush_interval
        self._fold_interval = fold_interval
        self._max_queue = max_queue
        self._queue: deque[CallRecord] = deque()
        self._events: deque[tuple[str, dict[str, Any]]] = deque()
        # Rows waiting to be written: events as dicts; each call as its encoded lines (calls row,
        # attempts rows), so no dict outlives the call's turn (see _write).
        self._unwritten: dict[str, list[dict[str, Any]]] = _no_events()
        self._unwritten_calls = EncodedCalls()
        self._observers: list[Observer] = []
        self._row_hooks: list[RowHook] = []
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._flush_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._fold_thread: threading.Thread | None = None
        self._fold_lock = threading.Lock()
        self.recorded = 0
        self.dropped = 0
        self._drops_lock = threading.Lock()
        self._unlogged_drops: Counter[str] = Counter()  # by reason, not yet in recorder_drops
        os.register_at_fork(after_in_child=self._after_fork)

    # -- hot path -------------------------------------------------------------------------
    def submit(self, call: CallRecord) -> None:
        if len(self._queue) >= self._max_queue:
            self._drop("queue_full")
            return
        self._queue.append(call)
        queued = len(self._queue)
        if self._thread is None:
            self._start()
        elif queued == _BATCH:
            self._wake.set()  # a full batch is waiting: write it now, not at the next interval
        elif queued > _HIGH_WATER:
            # The writer thread is starved: an app thread that never blocks, only making tiny
            # GIL-releasing calls, can keep the GIL from it indefinitely (CPython's GIL hands
            # itself back to the releasing thread). A short sleep hands it over. Only ever
            # happens in such loops; an app waiting on the network leaves the writer plenty.
            time.sleep(0.0002)

    def submit_event(self, table: str, row: dict[str, Any]) -> None:
        """Queue one row of an event table (breaker_events); cheap and safe from any thread.

        `event_id`, `process_id` and `host` are filled in on the writer thread when missing.
        """
        if table in _CALL_TABLES or table not in schema.TABLES:
            raise ValueError(f"submit_event takes rows of event tables, not {table!r}")
        if len(self._events) >= self._max_queue:
            self._drop("queue_full")
            return
        self._events.append((table, row))
        if self._thread is None:
            self._start()

    def _drop(self, reason: str, n: int = 1) -> None:
        """Count records lost; the writer thread logs the count as a row of `recorder_drops`."""
        with self._drops_lock:
            self.dropped += n
            self._unlogged_drops[reason] += n
        diagnostics.count("dropped_records", n)

    def _drop_rows(self) -> list[dict[str, Any]]:
        with self._drops_lock:
            drops, self._unlogged_drops = self._unlogged_drops, Counter()
        now = datetime.now(timezone.utc).isoformat()
        return [{"dropped_at": now, "dropped": n, "reason": reason} for reason, n in sorted(drops.items())]

    def add_observer(self, fn: Observer) -> None:
        """Call `fn(call_row, attempt_rows)` for every recorded call, on the thread that writes them.

        An observer's exception is reported as an internal error; the rows are recorded anyway.
        """
        self._observers.append(fn)

    def add_row_hook(self, fn: RowHook) -> None:
        """Call `fn(call, call_row, attempt_rows)` for every call before its rows are written; it
        may fill columns (the OpenTelemetry span ids). Its exception is reported; rows are kept."""
        self._row_hooks.append(fn)

    # -- background -----------------------------------------------------------------------
    def start(self) -> None:
        """Start the writer thread now (patch() does), so its one-off imports happen early."""
        self._start()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None and not self._stopping.is_set():
                self._thread = threading.Thread(target=self._run, name="unillm-recorder", daemon=True)
                self._thread.start()
                self._fold_thread = threading.Thread(target=self._run_folds, name="unillm-fold", daemon=True)
                self._fold_thread.start()

    def _run(self) -> None:
        # Load the price table and duckdb before the first batch, not in the middle of it.
        try:
            with _short_gil_turns():
                self._pricer.warm_up()
                import duckdb  # noqa: F401
        except Exception as exc:
            diagnostics.report("warm_up", f"could not load prices or duckdb: {type(exc).__name__}: {exc}")
        while not self._stopping.is_set():
            self._wake.wait(self._flush_interval)
            self._wake.clear()
            self.flush()

    def _run_folds(self) -> None:
        """Fold on a thread of its own: DuckDB works without the GIL, so the writer goes on turning
        calls into rows meanwhile (a fold of a second's worth of calls takes ~0.3 s at 20k calls/s;
        on the writer's thread the queue grew by that much each time)."""
        while not self._stopping.wait(self._fold_interval):
            if fold_due(self.location.spool_dir, self._fold_interval):  # other processes take turns
                self._fold(0.0)

    def flush(self, *, fold: bool = False, fold_wait: float = 0.0) -> None:
        """Write everything queued so far to the spool; optionally fold the spool into the db."""
        with self._flush_lock:
            while True:  # in bounded batches, so a backlog becomes segments (and memory) steadily
                batch = _take(self._queue, _BATCH)
                events = _take(self._events, _BATCH)
                self._write(batch, events)
                if len(batch) < _BATCH and len(events) < _BATCH:
                    break
        if fold:
            self._fold(fold_wait)

    def _write(self, calls: list[CallRecord], events: list[tuple[str, dict[str, Any]]]) -> None:
        """Turn calls into encoded rows and write them with the queued events.

        Each call's rows are encoded and shown to the observers at once, and its dicts dropped:
        kept for the whole batch (2,000 calls), they lived long enough for the garbage collector
        to go over them again and again, ~6 µs a call (a third of the writer's work). Observers'
        errors are reported after the write, so one that raises (strict mode re-raises) cannot
        cost rows.
        """
        pending = self._unwritten_calls
        observers = tuple(self._observers)
        failures: list[Exception] = []
        for call in calls:
            try:
                call_row, attempt_rows = build_rows(call, self._pricer)
            except Exception as exc:
                diagnostics.internal_error("recorder.build_rows", exc)
                continue
            for hook in self._row_hooks:
                try:
                    hook(call, call_row, attempt_rows)
                except Exception as exc:
                    diagnostics.internal_error("recorder.row_hook", exc)
            pending.add(call_row, attempt_rows)
            for fn in observers:
                try:
                    fn(call_row, attempt_rows)
                except Exception as exc:
                    failures.append(exc)
        events = events + [("recorder_drops", row) for row in self._drop_rows()]
        if events:
            host, pid = host_name(), os.getpid()
            for table, row in events:
                self._unwritten.setdefault(table, []).append(_event_row(row, host, pid))
        self._write_pending()
        for failure in failures:
            diagnostics.internal_error("recorder.observer", failure)

    def _write_pending(self) -> None:
        try:
            for table, rows in self._unwritten.items():
                if rows:
                    write_segment(self.location.spool_dir, table, rows)
                    self._unwritten[table] = []
            calls = self._unwritten_calls
            if calls:
                # Attempts first: a reader that sees a call can always see its attempts.
                if calls.attempts:
                    write_lines(self.location.spool_dir, "attempts", calls.attempts)
                try:
                    write_lines(self.location.spool_dir, "calls", calls.calls)
                except OSError:
                    calls.attempts_written()  # they are in the spool: only the calls wait
                    raise
                self.recorded += len(calls)
                self._unwritten_calls = EncodedCalls()
        except OSError as exc:
            diagnostics.report(
                "log_unwritable",
                f"cannot write the call log spool at {self.location.spool_dir}: {exc.strerror or exc}; "
                "calls are kept in memory and written when it works again (set UNILLM_LOG to move it)",
            )
            self._cap_unwritten()
            return
        diagnostics.resolved("log_unwritable")

    def _cap_unwritten(self) -> None:
        for rows in self._unwritten.values():
            if len(rows) > self._max_queue:
                overflow = len(rows) - self._max_queue
                del rows[:overflow]  # the oldest events go first
                self._drop("unwritable", overflow)
        overflow = len(self._unwritten_calls) - self._max_queue
        if overflow > 0:
            self._unwritten_calls.drop_oldest(overflow)  # the oldest calls go first, with their attempts
            self._drop("unwritable", overflow)

    def _fold(self, wait: float) -> None:
        with self._fold_lock:  # one fold at a time in this process (the fold thread, flush(fold=True))
            self._fold_once(wait)

    def _fold_once(self, wait: float) -> None:
        try:
            from unillm.tracer.store import fold  # imports duckdb: only here, on this thread

            with _short_gil_turns():
                result = fold(self.location, max_wait_s=wait)
        except Exception as exc:  # corrupt or foreign file: keep the spool, say so once
            diagnostics.report(
                "log_unreadable",
                f"cannot fold the spool into {self.location.db_path}: {type(exc).__name__}: {exc}; "
                "calls stay in the spool folder and are still visible to unillm sql",
            )
            return
        if result.folded:
            diagnostics.resolved("log_unreadable")

    def close(self, *, fold_wait: float = 1.0) -> None:
        """Stop the thread and write everything; called at exit and by unpatch()."""
        self._stopping.set()
        self._wake.set()
        for thread in (self._thread, self._fold_thread):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=5.0)
        self.flush(fold=True, fold_wait=fold_wait)

    def _after_fork(self) -> None:
        # The child has no recorder thread; calls queued by the parent are the parent's to write.
        self._queue = deque()
        self._events = deque()
        self._unwritten = _no_events()
        self._unwritten_calls = EncodedCalls()
        self._thread = None
        self._fold_thread = None
        self._fold_lock = threading.Lock()
        self._wake = threading.Event()
        self._flush_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._drops_lock = threading.Lock()
        self._unlogged_drops = Counter()

    def stats(self) -> dict[str, Any]:
        return {
            "recorded": self.recorded,
            "dropped": self.dropped,
            "queued": len(self._queue),
            "unwritten": len(self._unwritten_calls),
            "log": str(self.location.db_path),
            "spool": str(self.location.spool_dir),
        }
