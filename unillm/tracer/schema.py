"""The call log's schema: one place that names every column, its DuckDB type and its meaning.

`docs/schema.md` is generated from these tuples, the spool segments are written with these
names, and the migrations below create exactly these columns (a test checks that the three agree).
Migrations are named and append-only: never edit one that has shipped, add a new one.
"""

from __future__ import annotations

from typing import NamedTuple


class Column(NamedTuple):
    name: str
    sql_type: str
    meaning: str


CALL_COLUMNS: tuple[Column, ...] = (
    Column("call_id", "VARCHAR", "Unique id of the logical call (one SDK method call)."),
    Column("started_at", "TIMESTAMPTZ", "When the SDK method was called (UTC)."),
    Column("duration_ms", "DOUBLE", "Milliseconds from the call to the last byte of the answer."),
    Column("ttft_ms", "DOUBLE", "Streams: milliseconds from the call to the first content chunk."),
    Column("operation", "VARCHAR", "OpenTelemetry GenAI operation: chat, text_completion, embeddings."),
    Column("endpoint", "VARCHAR", "API path the SDK called, e.g. /chat/completions or /responses."),
    Column("stream", "BOOLEAN", "Whether the app asked for a streamed answer."),
    Column("request_model", "VARCHAR", "Model name the app asked for."),
    Column("provider", "VARCHAR", "Provider that served the final attempt (openai, azure, groq, ...)."),
    Column(
        "server_address",
        "VARCHAR",
        "Host of the final attempt as the request URL had it: `host`, or `host:port` when the URL names a port.",
    ),
    Column("response_model", "VARCHAR", "Model name the provider reported in its answer."),
    Column("status", "VARCHAR", "ok, error, or interrupted (a stream that ended early)."),
    Column("error_type", "VARCHAR", "Error class or provider error type when status is not ok."),
    Column("error_message", "VARCHAR", "Provider or SDK error message (secrets redacted)."),
    Column("http_status", "INTEGER", "HTTP status of the final attempt."),
    Column("input_tokens", "BIGINT", "Input tokens, including cache reads and writes."),
    Column("output_tokens", "BIGINT", "Output tokens, including reasoning tokens."),
    Column("cached_tokens", "BIGINT", "Input tokens read from the provider's prompt cache."),
    Column("cache_write_tokens", "BIGINT", "Input tokens written to the provider's prompt cache."),
    Column("reasoning_tokens", "BIGINT", "Output tokens spent on reasoning / thinking."),
    Column("cost_usd", "DOUBLE", "Cost in US dollars; NULL when the price is unknown (never 0)."),
    Column("price_known", "BOOLEAN", "False when no price was found for the model: cost_usd is NULL."),
    Column("price_source", "VARCHAR", "Where the price came from: genai-prices <version> or config."),
    Column("finish_reason", "VARCHAR", "Why the model stopped: stop, length, tool_calls, ..."),
    Column("tool_calls", "INTEGER", "Number of tool calls in the answer."),
    Column("attempts", "INTEGER", "Number of HTTP attempts made for this call (retries included)."),
    Column("tags", "MAP(VARCHAR, VARCHAR)", "Tags from unillm.tags(...): query as tags['user']."),
    Column("usage_raw", "JSON", "The provider's usage object, as it sent it."),
    Column("process_id", "INTEGER", "Process id of the app that made the call."),
    Column("host", "VARCHAR", "Host name of the machine that made the call."),
    Column("sdk_version", "VARCHAR", "Version of the openai package."),
    Column("unillm_version", "VARCHAR", "Version of unillm that recorded the call."),
    Column("route", "VARCHAR", "Route (model alias from [routes]) the call went through; NULL when not routed."),
    Column(
        "strategy",
        "VARCHAR",
        "Routing strategy that ordered the targets: fallback, weighted, lowest-latency, lowest-cost, auto.",
    ),
    Column(
        "route_reason",
        "VARCHAR",
        "Why the targets were tried in this order (e.g. the auto strategy's verdict), "
        "and targets skipped before sending.",
    ),
    Column(
        "trace_id", "VARCHAR", "OpenTelemetry trace id of the call's span (32 hex digits); NULL when no span was made."
    ),
    Column("span_id", "VARCHAR", "OpenTelemetry span id of the call's CLIENT span (16 hex digits)."),
    Column(
        "request_content",
        "JSON",
        "Opt-in (capture_content; NULL by default): what the app sent, redacted: {messages} (chat), "
        "{instructions, input} (Responses), {prompt} or {input} text (completions, embeddings). At most 64 KiB: "
        "longer strings and lists are cut, marked …[truncated N chars] / [truncated N items].",
    ),
    Column(
        "response_content",
        "JSON",
        "Opt-in (capture_content; NULL by default): the answer the app got, streamed or not, redacted: "
        "{messages} with content, tool_calls, refusal (chat), {output} items (Responses), {text} (completions). "
        "NULL for embeddings and error answers. At most 64 KiB, cut like request_content.",
    ),
)

ATTEMPT_COLUMNS: tuple[Column, ...] = (
    Column("call_id", "VARCHAR", "The call this attempt belongs to (joins calls.call_id)."),
    Column("attempt", "INTEGER", "1 for the first HTTP attempt, 2 for the next, ..."),
    Column("started_at", "TIMESTAMPTZ", "When the HTTP request was sent (UTC)."),
    Column("duration_ms", "DOUBLE", "Milliseconds from sending to the last byte (or the failure)."),
    Column("ttft_ms", "DOUBLE", "Streams: milliseconds from sending to the first content chunk."),
    Column("provider", "VARCHAR", "Provider this attempt went to."),
    Column(
        "server_address",
        "VARCHAR",
        "Host of this attempt as the request URL had it: `host`, or `host:port` when it names a port.",
    ),
    Column("model", "VARCHAR", "Model name sent to the provider."),
    Column("status", "VARCHAR", "ok, error, or interrupted."),
    Column("http_status", "INTEGER", "HTTP status, NULL when no answer came (connection error, timeout)."),
    Column("error_type", "VARCHAR", "Error kind: http status class, timeout, connection, stream_error."),
    Column("error_message", "VARCHAR", "Error message (secrets redacted)."),
    Column(
        "reason",
        "VARCHAR",
        "Why this attempt was made: first, retry (same target), failover (next target), probe (half-open breaker).",
    ),
    Column("wait_ms", "DOUBLE", "Milliseconds unillm waited (backoff, Retry-After) before sending this attempt."),
    Column(
        "breaker_state", "VARCHAR", "Circuit breaker state of the target when the attempt was sent: closed, half_open."
    ),
    Column(
        "span_id",
        "VARCHAR",
        "OpenTelemetry span id of the attempt's child span (made when the call had more than one attempt).",
    ),
)

BREAKER_EVENT_COLUMNS: tuple[Column, ...] = (
    Column("event_id", "VARCHAR", "Unique id of the event."),
    Column("changed_at", "TIMESTAMPTZ", "When the breaker changed state (UTC)."),
    Column("target", "VARCHAR", "The breaker's target: provider/model."),
    Column("provider", "VARCHAR", "Provider of the target."),
    Column("model", "VARCHAR", "Model of the target."),
    Column("from_state", "VARCHAR", "State before: closed, open, half_open."),
    Column("to_state", "VARCHAR", "State after: closed, open, half_open."),
    Column(
        "reason",
        "VARCHAR",
        "Why, e.g. 5 failures in a row, 60% of the last 20 calls failed, cooldown of 10 s passed, "
        "probe succeeded, probe failed.",
    ),
    Column("failures", "INTEGER", "Consecutive failures of the target at the time."),
    Column("failure_rate", "DOUBLE", "Failure share over the breaker window; NULL when not tracked."),
    Column("cooldown_s", "DOUBLE", "Seconds the breaker stays open (when to_state is open)."),
    Column("process_id", "INTEGER", "Process id of the app whose breaker changed state."),
    Column("host", "VARCHAR", "Host name of the machine."),
)

RECORDER_DROP_COLUMNS: tuple[Column, ...] = (
    Column("event_id", "VARCHAR", "Unique id of the event."),
    Column("dropped_at", "TIMESTAMPTZ", "When the recorder wrote this count (UTC): drops since its previous row."),
    Column("dropped", "BIGINT", "Records the recorder dropped since its previous row in this process."),
    Column(
        "reason",
        "VARCHAR",
        "queue_full (the app made calls faster than they could be written, beyond max_queue) or "
        "unwritable (the log location failed for longer than max_queue calls).",
    ),
    Column("process_id", "INTEGER", "Process id of the app whose recorder dropped them."),
    Column("host", "VARCHAR", "Host name of the machine."),
)

TABLES: dict[str, tuple[Column, ...]] = {
    "calls": CALL_COLUMNS,
    "attempts": ATTEMPT_COLUMNS,
    "breaker_events": BREAKER_EVENT_COLUMNS,
    "recorder_drops": RECORDER_DROP_COLUMNS,
}


def time_column(table: str) -> str:
    """The TIMESTAMPTZ column that dates the rows of `table` (its first one): what prune and
    export cut by, and what bounds a fold's duplicate check (a row and its duplicate share it)."""
    return next(c.name for c in TABLES[table] if c.sql_type == "TIMESTAMPTZ")


# Key columns that make ingestion idempotent: a row whose key is already stored is skipped.
TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "calls": ("call_id",),
    "attempts": ("call_id", "attempt"),
    "breaker_events": ("event_id",),
    "recorder_drops": ("event_id",),
}


class View(NamedTuple):
    meaning: str
    select: str  # over the tables by their plain names, so it works on the db and on readers' views


# Views, current definitions. Readers create them as TEMP VIEWs over their db + spool views (the
# db's own copy, made by a migration for plain DuckDB clients, would read the db alone).
VIEWS: dict[str, View] = {
    "failovers": View(
        "One row per attempt of every call that needed more than one attempt, with the call's outcome.",
        """SELECT
  c.call_id,
  c.started_at,
  c.route,
  c.request_model,
  a.attempt,
  a.provider,
  a.model,
  a.status,
  a.http_status,
  a.error_type,
  a.error_message,
  a.reason,
  a.wait_ms,
  a.duration_ms,
  a.breaker_state,
  c.provider AS served_by,
  c.status AS call_status,
  c.cost_usd
FROM attempts AS a
JOIN calls AS c ON c.call_id = a.call_id
WHERE c.attempts > 1
ORDER BY c.started_at, c.call_id, a.attempt""",
    ),
}


class Migration(NamedTuple):
    name: str
    statements: tuple[str, ...]


# Append-only. Each migration runs once per log file, in order, in one transaction together with
# its row in `_unillm_migrations`. The SQL is frozen literal text, not generated from the column
# tuples above: a log made by an old release must replay exactly what that release ran. To add a
# column, append it to the tuple above AND append a migration such as
#     Migration("0002_calls_foo", ("ALTER TABLE calls ADD COLUMN IF NOT EXISTS foo VARCHAR",))
# A test applies every migration to an empty database and checks the result equals `TABLES`
# (and that each view there has the columns of its current definition in `VIEWS`).
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "0001_calls_and_attempts",
        (
            """CREATE TABLE IF NOT EXISTS calls (
  call_id VARCHAR,
  started_at TIMESTAMPTZ,
  duration_ms DOUBLE,
  ttft_ms DOUBLE,
  operation VARCHAR,
  endpoint VARCHAR,
  stream BOOLEAN,
  request_model VARCHAR,
  provider VARCHAR,
  server_address VARCHAR,
  response_model VARCHAR,
  status VARCHAR,
  error_type VARCHAR,
  error_message VARCHAR,
  http_status INTEGER,
  input_tokens BIGINT,
  output_tokens BIGINT,
  cached_tokens BIGINT,
  cache_write_tokens BIGINT,
  reasoning_tokens BIGINT,
  cost_usd DOUBLE,
  price_known BOOLEAN,
  price_source VARCHAR,
  finish_reason VARCHAR,
  tool_calls INTEGER,
  attempts INTEGER,
  tags MAP(VARCHAR, VARCHAR),
  usage_raw JSON,
  process_id INTEGER,
  host VARCHAR,
  sdk_version VARCHAR,
  unillm_version VARCHAR
)""",
            """CREATE TABLE IF NOT EXISTS attempts (
  call_id VARCHAR,
  attempt INTEGER,
  started_at TIMESTAMPTZ,
  duration_ms DOUBLE,
  ttft_ms DOUBLE,
  provider VARCHAR,
  server_address VARCHAR,
  model VARCHAR,
  status VARCHAR,
  http_status INTEGER,
  error_type VARCHAR,
  error_message VARCHAR
)""",
        ),
    ),
    Migration(
        "0002_routing",
        (
            "ALTER TABLE calls ADD COLUMN IF NOT EXISTS route VARCHAR",
            "ALTER TABLE calls ADD COLUMN IF NOT EXISTS strategy VARCHAR",
            "ALTER TABLE calls ADD COLUMN IF NOT EXISTS route_reason VARCHAR",
            "ALTER TABLE attempts ADD COLUMN IF NOT EXISTS reason VARCHAR",
            "ALTER TABLE attempts ADD COLUMN IF NOT EXISTS wait_ms DOUBLE",
            "ALTER TABLE attempts ADD COLUMN IF NOT EXISTS breaker_state VARCHAR",
            """CREATE TABLE IF NOT EXISTS breaker_events (
  event_id VARCHAR,
  changed_at TIMESTAMPTZ,
  target VARCHAR,
  provider VARCHAR,
  model VARCHAR,
  from_state VARCHAR,
  to_state VARCHAR,
  reason VARCHAR,
  failures INTEGER,
  failure_rate DOUBLE,
  cooldown_s DOUBLE,
  process_id INTEGER,
  host VARCHAR
)""",
            """CREATE OR REPLACE VIEW failovers AS SELECT
  c.call_id,
  c.started_at,
  c.route,
  c.request_model,
  a.attempt,
  a.provider,
  a.model,
  a.status,
  a.http_status,
  a.error_type,
  a.error_message,
  a.reason,
  a.wait_ms,
  a.duration_ms,
  a.breaker_state,
  c.provider AS served_by,
  c.status AS call_status,
  c.cost_usd
FROM attempts AS a
JOIN calls AS c ON c.call_id = a.call_id
WHERE c.attempts > 1
ORDER BY c.started_at, c.call_id, a.attempt""",
        ),
    ),
    Migration(
        "0003_telemetry_content_drops",
        (
            "ALTER TABLE calls ADD COLUMN IF NOT EXISTS trace_id VARCHAR",
            "ALTER TABLE calls ADD COLUMN IF NOT EXISTS span_id VARCHAR",
            "ALTER TABLE calls ADD COLUMN IF NOT EXISTS request_content JSON",
            "ALTER TABLE calls ADD COLUMN IF NOT EXISTS response_content JSON",
            "ALTER TABLE attempts ADD COLUMN IF NOT EXISTS span_id VARCHAR",
            """CREATE TABLE IF NOT EXISTS recorder_drops (
  event_id VARCHAR,
  dropped_at TIMESTAMPTZ,
  dropped BIGINT,
  reason VARCHAR,
  process_id INTEGER,
  host VARCHAR
)""",
        ),
    ),
)
