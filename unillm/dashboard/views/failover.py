"""Failover: the story of an outage — which targets failed and when, where calls went instead,
what that cost in time and money, and when each breaker was open."""

from __future__ import annotations

import streamlit as st

from unillm.dashboard import format as fmt
from unillm.dashboard.context import PageContext
from unillm.dashboard.queries.failover import EVENT_ROWS, Failover, failover
from unillm.dashboard.views import charts


def render(context: PageContext) -> None:
    data: Failover = context.load(failover)
    st.caption(f"{context.filters.describe().capitalize()}. Times are UTC.")
    st.markdown(_story(data))

    cols = st.columns(4)
    cols[0].metric(
        "Calls failed over", fmt.count(data.failed_over), help="Answered by another target than the first one tried."
    )
    cols[1].metric(
        "Failed attempts",
        fmt.count(data.failed_attempts),
        help="HTTP attempts that failed, on any target (retries included).",
    )
    cols[2].metric(
        "Added latency (median)",
        fmt.ms(data.added_ms_median),
        help="Per failed-over call: the time spent on the attempts that failed, and waiting between them.",
    )
    cols[3].metric(
        "Cost difference",
        fmt.usd(data.cost_diff_usd),
        help="What the failed-over calls cost, minus what their first target would have charged for the same tokens.",
    )

    left, right = st.columns(2)
    with left:
        st.subheader("Failed attempts by target")
        charts.stacked_bars(
            data.over_time, value="failed", group="target", value_title="failed attempts", bucket_s=data.bucket_s
        )
    with right:
        st.subheader("Circuit breakers")
        charts.periods(data.breaker_periods)
        if not data.breaker_summary.empty:
            st.dataframe(
                data.breaker_summary,
                hide_index=True,
                width="stretch",
                column_config={
                    "target": "target",
                    "opened": st.column_config.NumberColumn("times opened"),
                    "not_closed_s": st.column_config.NumberColumn("open / half-open", format="%.1f s"),
                    "state_now": "last state",
                },
            )

    st.subheader("Where calls went instead")
    if data.routes.empty:
        st.caption("No call failed over in this range.")
    else:
        st.dataframe(
            data.routes,
            hide_index=True,
            width="stretch",
            column_config={
                "from_target": "from",
                "to_target": "to",
                "calls": st.column_config.NumberColumn("calls"),
                "reasons": "why",
                "added_ms_p50": st.column_config.NumberColumn("added latency p50", format="%.0f ms"),
                "cost_diff_usd": st.column_config.NumberColumn("cost difference", format="$%.6f"),
            },
        )

    st.subheader("Failover timeline")
    if not data.events.empty:
        lanes = data.events.assign(path=data.events["from_target"] + " → " + data.events["to_target"])
        charts.events(
            lanes,
            lane="path",
            color="reason",
            tooltip=["call_id:N", "route:N", "reason:N", "added_ms:Q", "cost_diff_usd:Q"],
        )
        shown = (
            f"newest {EVENT_ROWS:,} of {data.failed_over:,}"
            if data.failed_over > EVENT_ROWS
            else f"{data.failed_over:,}"
        )
        st.caption(f"Every failed-over call ({shown}), newest first.")
        st.dataframe(
            data.events,
            hide_index=True,
            width="stretch",
            column_config={
                "time": st.column_config.DatetimeColumn("time (UTC)", format="YYYY-MM-DD HH:mm:ss.SSS"),
                "from_target": "from",
                "to_target": "to",
                "reason": "why",
                "error_message": "error",
                "added_ms": st.column_config.NumberColumn("added latency", format="%.0f ms"),
                "cost_usd": st.column_config.NumberColumn("cost", format="$%.6f"),
                "cost_diff_usd": st.column_config.NumberColumn("cost difference", format="$%.6f"),
            },
        )

    st.subheader("Target health")
    st.dataframe(
        data.health,
        hide_index=True,
        width="stretch",
        column_config={
            "success_rate": st.column_config.ProgressColumn(
                "success rate", min_value=0.0, max_value=1.0, format="percent"
            ),
            "p50_ms": st.column_config.NumberColumn("p50 (ok)", format="%.0f ms"),
            "p95_ms": st.column_config.NumberColumn("p95 (ok)", format="%.0f ms"),
            "took_over": st.column_config.NumberColumn("answered failovers"),
            "last_error": "last error",
        },
    )


def _story(data: Failover) -> str:
    """The outage in two sentences: what failed, where the calls went, what the breakers did."""
    if data.failed_attempts == 0:
        return "**No attempt failed in this range.** Every call was answered by the first target tried."
    worst = data.health.iloc[0] if not data.health.empty else None
    parts = []
    if worst is not None and worst["errors"]:
        parts.append(
            f"**{worst['target']}** failed {int(worst['errors']):,} of {int(worst['attempts']):,} attempts"
            + (f" (last error: {worst['last_error']})" if worst["last_error"] else "")
            + "."
        )
    if data.failed_over:
        top = data.routes.iloc[0]
        parts.append(
            f"**{data.failed_over:,} calls failed over**, most from {top['from_target']} to {top['to_target']} "
            f"({int(top['calls']):,}), adding {fmt.ms(data.added_ms_median)} per call (median)."
        )
    else:
        parts.append("No call failed over (retries on the same target, or un-routed calls).")
    if not data.breaker_summary.empty:
        opened = int(data.breaker_summary["opened"].sum())
        still = data.breaker_summary[data.breaker_summary["state_now"] != "closed"]["target"].tolist()
        parts.append(
            f"Circuit breakers opened {opened:,} times on {len(data.breaker_summary)} targets"
            + (f"; still not closed at the last record: {', '.join(still)}." if still else "; all closed again.")
        )
    return " ".join(parts)
