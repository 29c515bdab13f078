"""Routing visibility in the call log (migration 0002_routing): breaker_events, failovers, observers."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import openai
import pytest
from conftest import TEST_KEY, rows

import unillm
from unillm import diagnostics
from unillm.tracer import spool, store
from unillm.tracer.call import CallRecord
from unillm.tracer.location import LogLocation
from unillm.tracer.pricing import Pricer
from unillm.tracer.recorder import Recorder

MESSAGES = [{"role": "user", "content": "hi"}]
OPENED = dt.datetime(2026, 3, 1, 12, 0, 0, 250000, tzinfo=dt.timezone.utc)


@pytest.fixture
def loc(tmp_path: Path) -> LogLocation:
    return LogLocation(tmp_path / "log" / "calls.duckdb")


@pytest.fixture
def recorder(loc: LogLocation) -> Iterator[Recorder]:
    # Never flushes or folds on its own: the test decides when rows reach the spool and the db.
    rec = Recorder(loc, Pricer(), flush_interval=3600, fold_interval=3600)
    yield rec
    rec.close(fold_wait=0)


def breaker_opened(**extra: Any) -> dict[str, Any]:
    return {
        "changed_at": OPENED.isoformat(),
        "target": "groq/llama-3.3-70b",
        "provider": "groq",
        "model": "llama-3.3-70b",
        "from_state": "closed",
        "to_state": "open",
        "reason": "5 failures in a row",
        "failures": 5,
        "failure_rate": None,
        "cooldown_s": 10.0,
        **extra,
    }


def two_attempt_call(rec: Recorder) -> CallRecord:
    """A call unillm failed over: a 503 from openai, then an answer from groq."""
    call = CallRecord("/chat/completions", "smart", False, {}, rec.submit)
    call.route, call.strategy, call.route_reason = "smart", "fallback", "in configured order"
    first = call.new_attempt("api.openai.com")
    first.reason, first.breaker_state, first.http_status = "first", "closed", 503
    first.end()
    second = call.new_attempt("api.groq.com")
    second.provider, second.model = "groq", "llama-3.3-70b"
    second.reason, second.wait_ms, second.breaker_state = "failover", 250.0, "closed"
    second.http_status, second.saw_end = 200, True
    second.body = json.dumps(
        {
            "model": "llama-3.3-70b",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
        }
    ).encode()
    second.end()
    call.sdk_returned()  # finishes the call: the recorder queues it
    return call


def test_breaker_events_are_visible_before_and_after_a_fold(recorder: Recorder, loc: LogLocation) -> None:
    event = breaker_opened()
    recorder.submit_event("breaker_events", event)
    recorder.submit_event("breaker_events", breaker_opened(event_id="mine", from_state="open", to_state="half_open"))
    assert "event_id" not in event  # the caller's dict is not modified
    with pytest.raises(ValueError, match="event tables"):
        recorder.submit_event("calls", {"call_id": "x"})
    recorder.flush()  # to the spool only

    sql = "SELECT changed_at, event_id, to_state, failures, failure_rate, cooldown_s, process_id, host FROM breaker_events"
    sql += " ORDER BY to_state DESC"
    for phase in ("spool", "db"):
        if phase == "spool":
            assert [p.name.split("-")[0] for p in loc.spool_dir.iterdir()] == ["breaker_events"]
            got = store.query(loc, sql, fold_first=False).to_dicts()
        else:
            got = unillm.sql(sql, log=str(loc.db_path)).to_dicts()  # folds first
            assert spool.list_segments(loc.spool_dir, "breaker_events") == []
        opened, half_open = got
        assert opened["changed_at"] == OPENED and opened["to_state"] == "open", phase
        assert opened["failures"] == 5 and opened["failure_rate"] is None and opened["cooldown_s"] == 10.0
        assert opened["event_id"] and half_open["event_id"] == "mine"
        assert opened["process_id"] == os.getpid() and opened["host"] == socket.gethostname()
    assert recorder.stats()["recorded"] == 0  # events are not calls


def test_failovers_view_lists_every_attempt_of_a_retried_call(recorder: Recorder, loc: LogLocation) -> None:
    two_attempt_call(recorder)
    single = CallRecord("/embeddings", "text-embedding-3-small", False, {}, recorder.submit)
    single.new_attempt("api.openai.com").end()
    single.sdk_returned()
    recorder.flush()

    sql = "SELECT * FROM failovers"
    for got in (store.query(loc, sql, fold_first=False).to_dicts(), unillm.sql(sql, log=str(loc.db_path)).to_dicts()):
        assert [(r["attempt"], r["provider"], r["status"], r["http_status"]) for r in got] == [
            (1, "openai", "error", 503),
            (2, "groq", "ok", 200),
        ]
        first, second = got
        assert first["route"] == "smart" and first["request_model"] == "smart"
        assert first["reason"] == "first" and first["wait_ms"] is None and first["error_type"] == "service_unavailable"
        assert second["reason"] == "failover" and second["wait_ms"] == 250.0 and second["breaker_state"] == "closed"
        assert second["model"] == "llama-3.3-70b" and second["duration_ms"] is not None
        assert {r["served_by"] for r in got} == {"groq"} and {r["call_status"] for r in got} == {"ok"}
    [routed] = unillm.sql(
        "SELECT strategy, route_reason FROM calls WHERE route = 'smart'", log=str(loc.db_path)
    ).to_dicts()
    assert routed == {"strategy": "fallback", "route_reason": "in configured order"}


def test_failovers_view_shows_sdk_retries(patched: Path, fake: Any) -> None:
    client = openai.OpenAI(base_url=fake.base_url, api_key=TEST_KEY, max_retries=2)
    fake.fail_next(count=1, status=500)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # one attempt: not listed

    got = rows("SELECT attempt, status, http_status, served_by, call_status, route FROM failovers")
    assert [(r["attempt"], r["status"], r["http_status"]) for r in got] == [(1, "error", 500), (2, "ok", 200)]
    assert all(r["call_status"] == "ok" and r["served_by"] and r["route"] is None for r in got)


def test_observers_see_the_rows_and_a_failing_one_loses_nothing(
    recorder: Recorder, loc: LogLocation, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UNILLM_STRICT", "0")  # as in production: report, do not raise
    diagnostics.reset()
    seen: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []

    def broken(call_row: dict[str, Any], attempt_rows: list[dict[str, Any]]) -> None:
        raise RuntimeError("observer bug")

    recorder.add_observer(broken)
    recorder.add_observer(lambda call_row, attempt_rows: seen.append((call_row, attempt_rows)))
    call = two_attempt_call(recorder)
    try:
        recorder.flush(fold=True)
        counts = diagnostics.snapshot()["counts"]
    finally:
        diagnostics.reset()

    [(call_row, attempt_rows)] = seen  # the failing observer did not stop the next one
    assert call_row["call_id"] == call.call_id and call_row["route"] == "smart"
    assert [(a["attempt"], a["reason"]) for a in attempt_rows] == [(1, "first"), (2, "failover")]
    assert counts.get("internal_error:recorder.observer") == 1
    assert recorder.stats()["recorded"] == 1
    con = duckdb.connect(str(loc.db_path), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM attempts").fetchall() == [(2,)]
        assert con.execute("SELECT call_id FROM calls").fetchall() == [(call.call_id,)]
    finally:
        con.close()


def test_unwritable_spool_keeps_events_up_to_the_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNILLM_STRICT", "0")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    rec = Recorder(LogLocation(blocker / "calls.duckdb"), Pricer(), flush_interval=3600, max_queue=3)
    try:
        for i in range(5):
            rec.submit_event("breaker_events", breaker_opened(event_id=f"e{i}"))
        rec.flush()  # queue cap: two were dropped on submit; the write fails, three wait
        assert rec.stats()["dropped"] == 2 and len(rec._unwritten["breaker_events"]) == 3
        rec.submit_event("breaker_events", breaker_opened(event_id="e5"))
        rec.flush()  # still unwritable: the oldest waiting event goes
        assert rec.stats()["dropped"] == 3
        assert [r["event_id"] for r in rec._unwritten["breaker_events"]] == ["e1", "e2", "e5"]
    finally:
        rec.close(fold_wait=0)
        diagnostics.reset()


def test_unwritable_spool_keeps_the_newest_calls_with_their_attempts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # While the spool cannot be written, calls wait in memory up to the cap (the oldest go first,
    # attempts and all); once it can, exactly the calls kept land, each with its own attempts.
    monkeypatch.setenv("UNILLM_STRICT", "0")
    folder = tmp_path / "log"
    folder.write_text("a file where the log folder should be")
    loc = LogLocation(folder / "calls.duckdb")
    rec = Recorder(loc, Pricer(), flush_interval=3600, fold_interval=3600, max_queue=3)
    try:
        calls = []
        for _ in range(5):
            calls.append(two_attempt_call(rec))
            rec.flush()  # fails: kept in memory, beyond 3 the oldest is dropped
        assert rec.stats()["dropped"] == 2 and rec.stats()["unwritten"] == 3
        folder.unlink()
        rec.flush(fold=True)
        assert rec.stats()["unwritten"] == 0
        got = store.query(loc, "SELECT call_id, count(*) AS n FROM attempts GROUP BY call_id ORDER BY call_id")
        assert got.fetchall() == sorted((c.call_id, 2) for c in calls[2:])
        assert sorted(r[0] for r in store.query(loc, "SELECT call_id FROM calls").fetchall()) == sorted(
            c.call_id for c in calls[2:]
        )
    finally:
        rec.close(fold_wait=0)
        diagnostics.reset()


def test_a_failed_calls_write_after_its_attempts_were_written_writes_them_once(
    recorder: Recorder, loc: LogLocation, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UNILLM_STRICT", "0")
    import unillm.tracer.recorder as recorder_module

    real = recorder_module.write_lines
    failed: list[str] = []

    def calls_fail_once(spool_dir: Path, table: str, data: bytes) -> Path:
        if table == "calls" and not failed:
            failed.append(table)
            raise OSError(28, "No space left on device")
        return real(spool_dir, table, data)

    monkeypatch.setattr(recorder_module, "write_lines", calls_fail_once)
    call = two_attempt_call(recorder)
    try:
        recorder.flush()  # attempts written, calls not
        assert failed and recorder.stats()["unwritten"] == 1
        assert len(spool.list_segments(loc.spool_dir, "attempts")) == 1
        recorder.flush()
    finally:
        diagnostics.reset()
    assert len(spool.list_segments(loc.spool_dir, "attempts")) == 1  # not written a second time
    assert [r[0] for r in store.query(loc, "SELECT call_id FROM calls").fetchall()] == [call.call_id]
    assert store.query(loc, "SELECT count(*) FROM attempts").scalar() == 2
