"""Time charts in UTC (Altair, which Streamlit ships with): the log's times are UTC, and a
browser would otherwise read naive timestamps as its local time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import altair as alt
import streamlit as st

from unillm.dashboard.queries.common import bucket_label

if TYPE_CHECKING:
    import pandas as pd

HEIGHT = 260
# Below the chart, in columns, with room for long "provider/model" names.
_LEGEND = alt.Legend(orient="bottom", columns=2, labelLimit=320, symbolLimit=40)
STATUS_COLORS = alt.Scale(domain=["ok", "error", "interrupted"], range=["#4c78a8", "#d62728", "#ff9f1c"])


def _utc(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    out = frame.copy()
    for column in columns:
        if column in out and len(out):
            out[column] = out[column].dt.tz_localize("UTC")
    return out


def _time_axis(field: str = "time", title: str = "time (UTC)") -> alt.X:
    return alt.X(
        f"{field}:T",
        title=title,
        scale=alt.Scale(type="utc"),
        axis=alt.Axis(format="%b %d %H:%M:%S", labelOverlap=True),
    )


def stacked_bars(
    frame: pd.DataFrame,
    *,
    value: str,
    group: str,
    value_title: str,
    bucket_s: int,
    money: bool = False,
    colors: alt.Scale | None = None,
) -> None:
    if frame.empty:
        st.caption("Nothing in this range.")
        return
    fmt = "$,.4f" if money else ",.0f"
    chart = (
        alt.Chart(_utc(frame, "time"))
        .mark_bar()
        .encode(
            x=_time_axis(title=f"time (UTC, {bucket_label(bucket_s)} bars)"),
            y=alt.Y(f"sum({value}):Q", title=value_title, stack="zero"),
            color=alt.Color(f"{group}:N", title=None, legend=_LEGEND, scale=colors or alt.Undefined),
            tooltip=[
                alt.Tooltip("time:T", format="%H:%M:%S"),
                f"{group}:N",
                alt.Tooltip(f"sum({value}):Q", format=fmt, title=value_title),
            ],
        )
        .properties(height=_height(frame[group].nunique()))
    )
    st.altair_chart(chart, width="stretch")


def _height(legend_entries: int) -> int:
    """Streamlit fits plot and legend into the height together: each legend row takes from the plot."""
    rows = -(-legend_entries // 2)  # the legend has two columns
    return HEIGHT + 18 * rows


def lines(frame: pd.DataFrame, *, columns: list[str], value_title: str, bucket_s: int) -> None:
    if frame.empty:
        st.caption("Nothing in this range.")
        return
    long = _utc(frame, "time").melt(id_vars=["time"], value_vars=columns, var_name="series", value_name="value")
    chart = (
        alt.Chart(long)
        .mark_line(point=len(frame) < 30)
        .encode(
            x=_time_axis(title=f"time (UTC, {bucket_label(bucket_s)} buckets)"),
            y=alt.Y("value:Q", title=value_title),
            color=alt.Color("series:N", title=None, sort=columns, legend=_LEGEND),
            tooltip=[alt.Tooltip("time:T", format="%H:%M:%S"), "series:N", alt.Tooltip("value:Q", format=",.1f")],
        )
        .properties(height=_height(len(columns)))
    )
    st.altair_chart(chart, width="stretch")


def periods(frame: pd.DataFrame) -> None:
    """A Gantt of breaker states: one row per target, a bar per open / half-open period."""
    if frame.empty:
        st.caption("No circuit breaker was open in this range.")
        return
    data = _utc(frame, "start", "end")
    tooltip = [
        "target:N",
        "state:N",
        alt.Tooltip("start:T", format="%H:%M:%S.%L", title="from (UTC)"),
        alt.Tooltip("end:T", format="%H:%M:%S.%L", title="until (UTC)"),
        alt.Tooltip("seconds:Q", format=",.1f"),
        "reason:N",
    ]
    base = alt.Chart(data)
    bars = base.mark_bar().encode(
        x=alt.X("start:T", title="time (UTC)", scale=alt.Scale(type="utc"), axis=alt.Axis(format="%b %d %H:%M:%S")),
        x2="end:T",
        y=alt.Y("target:N", title=None, axis=alt.Axis(labelLimit=260)),
        color=alt.Color(
            "state:N",
            title="breaker",
            scale=alt.Scale(domain=["open", "half_open"], range=["#d62728", "#ff9f1c"]),
            legend=_LEGEND,
        ),
        tooltip=tooltip,
    )
    # A period of a few seconds in a day-wide view is narrower than a pixel: mark where each starts.
    starts = base.mark_tick(thickness=2, size=18).encode(
        x=alt.X("start:T", scale=alt.Scale(type="utc")),
        y=alt.Y("target:N", title=None),
        color=alt.Color("state:N", scale=alt.Scale(domain=["open", "half_open"], range=["#d62728", "#ff9f1c"])),
        tooltip=tooltip,
    )
    chart = (bars + starts).properties(height=alt.Step(34))
    st.altair_chart(chart, width="stretch")


def ranked_bars(frame: pd.DataFrame, *, label: str, value: str, value_title: str, limit: int = 15) -> None:
    if frame.empty:
        return
    data: Any = frame.head(limit)
    chart = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X(f"{value}:Q", title=value_title),
            y=alt.Y(f"{label}:N", title=None, sort="-x"),
            tooltip=[f"{label}:N", alt.Tooltip(f"{value}:Q", format="$,.4f")],
        )
        .properties(height=max(80, 24 * len(data)))
    )
    st.altair_chart(chart, width="stretch")


def events(frame: pd.DataFrame, *, lane: str, color: str, tooltip: list[str]) -> None:
    """One mark per event on a time axis, a lane per `lane` value (e.g. "from → to")."""
    if frame.empty:
        return
    data = _utc(frame, "time")
    chart = (
        alt.Chart(data)
        .mark_tick(thickness=2, size=22)
        .encode(
            x=_time_axis(),
            y=alt.Y(f"{lane}:N", title=None, axis=alt.Axis(labelLimit=420)),
            color=alt.Color(f"{color}:N", title=None, legend=_LEGEND),
            tooltip=[alt.Tooltip("time:T", format="%H:%M:%S.%L", title="time (UTC)"), *tooltip],
        )
        .properties(height=alt.Step(30))
    )
    st.altair_chart(chart, width="stretch")
