"""SQL: read-only queries over the call log, with the schema beside them. The same engine as
`unillm sql` and `unillm.sql()`: statements that would modify the log are refused."""

from __future__ import annotations

from typing import Any

import duckdb
import streamlit as st

from unillm.dashboard import url
from unillm.dashboard.context import PageContext
from unillm.tracer import schema
from unillm.tracer.store import LogBusyError, query

EXAMPLES = {
    "Spend and calls per model, today (UTC)": """SELECT coalesce(response_model, request_model) AS model, count(*) AS calls,
       round(sum(cost_usd), 4) AS usd, round(median(duration_ms)) AS p50_ms
FROM calls
WHERE started_at >= current_date
GROUP BY model ORDER BY usd DESC NULLS LAST""",
    "Spend per hour by provider": """SELECT date_trunc('hour', started_at) AS hour, provider, round(sum(cost_usd), 4) AS usd
FROM calls GROUP BY ALL ORDER BY hour""",
    "Spend per user tag": """SELECT tags['user'] AS user, count(*) AS calls, round(sum(cost_usd), 4) AS usd
FROM calls GROUP BY user ORDER BY usd DESC NULLS LAST LIMIT 20""",
    "Failovers: from which target to which": """SELECT request_model, provider AS tried, http_status, error_type, served_by, count(*) AS attempts
FROM failovers WHERE status <> 'ok'
GROUP BY ALL ORDER BY attempts DESC""",
    "Slowest streams by time to first token": """SELECT call_id, started_at, provider, request_model, ttft_ms, duration_ms
FROM calls WHERE stream AND status = 'ok'
ORDER BY ttft_ms DESC LIMIT 20""",
    "Circuit breaker changes": """SELECT changed_at, target, from_state, to_state, reason
FROM breaker_events ORDER BY changed_at DESC LIMIT 50""",
    "Records the recorder dropped": """SELECT date_trunc('hour', dropped_at) AS hour, reason, sum(dropped) AS dropped
FROM recorder_drops GROUP BY ALL ORDER BY hour""",
}
FIRST_EXAMPLE = next(iter(EXAMPLES))
MAX_SHOWN = 10_000


def render(context: PageContext) -> None:
    editor, reference = st.columns([3, 1])
    with reference:
        _schema()
    with editor:
        url.start_from("sql_text", url.read("sql") or EXAMPLES[FIRST_EXAMPLE])
        example = st.selectbox("Examples", ["—", *EXAMPLES], key="sql_example") or "—"
        if example != "—" and st.session_state.get("sql_example_shown") != example:
            st.session_state["sql_text"] = EXAMPLES[example]
        st.session_state["sql_example_shown"] = example
        text = st.text_area(
            "SQL (read-only; tables: calls, attempts, breaker_events, recorder_drops)", key="sql_text", height=180
        )
        url.write("sql", text.strip() if text.strip() != EXAMPLES[FIRST_EXAMPLE] else None)
        st.button("Run", type="primary")  # any rerun runs the query; the button is the explicit one
        if not text.strip():
            return
        try:
            result = query(context.location, text, log_only=True)  # a browser drives it: the log, nothing else
        except ValueError as exc:  # refused: not a read-only statement, or more than one
            st.error(f"Not run: {exc}")
            return
        except LogBusyError as exc:
            st.error(str(exc))
            return
        except duckdb.PermissionException as exc:
            st.error(f"Not run: the dashboard's SQL reads the call log only, no other file or database. ({exc})")
            return
        except Exception as exc:  # DuckDB's parser and binder errors: the message, not a traceback
            st.error(f"{type(exc).__name__}: {exc}")
            return
        frame = result.df()
        st.caption(f"{len(frame):,} rows" + (f"; the first {MAX_SHOWN:,} are shown" if len(frame) > MAX_SHOWN else ""))
        st.dataframe(frame.head(MAX_SHOWN), hide_index=True, width="stretch")
        st.download_button(
            "Download CSV", frame.to_csv(index=False).encode(), file_name="unillm-query.csv", mime="text/csv"
        )
        _chart(frame)


def _chart(frame: Any) -> None:
    """A chart when the result has a label or time column followed by numbers."""
    if len(frame) < 2 or len(frame.columns) < 2:
        return
    x = frame.columns[0]
    numeric = [c for c in frame.columns[1:] if frame[c].dtype.kind in "if"]
    if not numeric:
        return
    data = frame[[x, *numeric]].head(500)
    if frame[x].dtype.kind == "M":
        st.line_chart(data, x=x, y=numeric)
    else:
        st.bar_chart(data, x=x, y=numeric)


def _schema() -> None:
    st.markdown("**Schema**")
    for table, columns in schema.TABLES.items():
        with st.expander(table, expanded=table == "calls"):
            st.markdown("\n".join(f"- `{c.name}` {c.sql_type.lower()}: {c.meaning}" for c in columns))
    for name, view in schema.VIEWS.items():
        with st.expander(f"{name} (view)"):
            st.markdown(view.meaning)
    st.caption("Times are UTC; durations ms; costs USD. Full reference: docs/schema.md.")
