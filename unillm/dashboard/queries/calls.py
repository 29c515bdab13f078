"""Calls: the filtered list of calls, newest first, and one call in full."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unillm.dashboard.filters import Scope, placeholders
from unillm.dashboard.queries.common import among_top, frame, row, utc
from unillm.tracer.answer import load_object

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

LIST_ROWS = 200
STATUSES = ("ok", "error", "interrupted")


@dataclass(frozen=True)
class CallList:
    matching: int  # calls that match, of which the newest LIST_ROWS are listed
    rows: pd.DataFrame
    content_captured: bool  # some call in the range has captured content: text search works


def call_list(
    con: duckdb.DuckDBPyConnection,
    scope: Scope,
    *,
    statuses: tuple[str, ...] = (),
    text: str = "",
    limit: int = LIST_ROWS,
) -> CallList:
    where, params = scope.condition()
    if statuses:
        where += f" AND c.status IN ({placeholders(statuses)})"
        params += list(statuses)
    text = text.strip()
    if text:
        # The call id, the model, the error, or (when captured) the messages. ILIKE on the JSON text
        # is a full scan, but of the filtered rows only.
        where += (
            " AND (c.call_id = ? OR c.request_model ILIKE ? OR c.error_message ILIKE ?"
            " OR CAST(c.request_content AS VARCHAR) ILIKE ? OR CAST(c.response_content AS VARCHAR) ILIKE ?)"
        )
        like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        params += [text, like, like, like, like]
    matching = row(con, f"SELECT count(*) FROM calls AS c WHERE {where}", params)[0]
    rows = frame(
        con,
        f"""
SELECT {utc("c.started_at")} AS time, c.call_id, c.request_model, c.provider,
       coalesce(c.response_model, c.request_model) AS model, c.status, c.duration_ms, c.ttft_ms,
       c.input_tokens, c.output_tokens, c.cost_usd, c.attempts, c.route, CAST(c.tags AS VARCHAR) AS tags,
       c.error_message
FROM calls AS c WHERE {where} AND {among_top("c.started_at", where, limit)}
ORDER BY c.started_at DESC LIMIT {int(limit)}""",
        params * 2,
    )
    scope_where, scope_params = scope.condition()
    captured = row(
        con,
        f"SELECT EXISTS (SELECT 1 FROM calls AS c WHERE {scope_where} AND c.request_content IS NOT NULL)",
        scope_params,
    )[0]
    return CallList(int(matching), rows, bool(captured))


@dataclass(frozen=True)
class CallDetail:
    call: dict[str, Any]
    attempts: pd.DataFrame
    request: Any  # the captured request (parsed JSON) or None
    response: Any


def call_detail(con: duckdb.DuckDBPyConnection, call_id: str) -> CallDetail | None:
    cur = con.execute(
        f"""
SELECT * EXCLUDE (started_at, tags, request_content, response_content, usage_raw),
       {utc("started_at")} AS started_at, CAST(tags AS VARCHAR) AS tags,
       CAST(request_content AS VARCHAR) AS request_content, CAST(response_content AS VARCHAR) AS response_content,
       CAST(usage_raw AS VARCHAR) AS usage_raw
FROM calls WHERE call_id = ? LIMIT 1""",
        [call_id],
    )
    found = cur.fetchone()
    if found is None:
        return None
    call = dict(zip([d[0] for d in cur.description or ()], found, strict=True))
    attempts = frame(
        con,
        f"""
SELECT attempt, {utc("started_at")} AS started_at, reason, provider, model, status, http_status, error_type,
       error_message, wait_ms, duration_ms, ttft_ms, breaker_state, server_address
FROM attempts WHERE call_id = ? ORDER BY attempt""",
        [call_id],
    )
    return CallDetail(call, attempts, _json(call.pop("request_content")), _json(call.pop("response_content")))


def _json(text: str | None) -> Any:
    if text is None:
        return None
    return load_object(text.encode()) or text  # not an object: show the text as stored
