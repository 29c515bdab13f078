"""Cost: spend by model, provider, route, operation or any tag; the most expensive calls; and
what prompt caching saved."""

from __future__ import annotations

import streamlit as st

from unillm.dashboard import format as fmt
from unillm.dashboard import url
from unillm.dashboard.context import PageContext
from unillm.dashboard.queries.cost import DIMENSIONS, TAG_PREFIX, Cost, cost, tag_keys
from unillm.dashboard.views import charts


def render(context: PageContext) -> None:
    keys: list[str] = context.load(tag_keys)
    choices = [*DIMENSIONS, *(TAG_PREFIX + k for k in keys)]
    wanted = url.read("by")
    url.start_from("cost_by", wanted if wanted in choices else "model")
    if st.session_state["cost_by"] not in choices:
        st.session_state["cost_by"] = "model"
    data: Cost = context.load(cost, by=st.session_state["cost_by"])
    st.caption(f"{context.filters.describe().capitalize()}. Times are UTC.")

    cols = st.columns(5)
    cols[0].metric("Spend", fmt.usd(data.spend_usd))
    cols[1].metric("Cost per 1k calls", fmt.usd(data.usd_per_1k_calls), help=f"Over {data.calls:,} calls.")
    cols[2].metric("Spend per day", fmt.usd(data.usd_per_day), help="Average over the span of the calls shown.")
    cols[3].metric(
        "Cache savings",
        fmt.usd(data.cache_savings_usd),
        help=f"{data.cached_tokens:,} input tokens were read from the providers' prompt caches; this is what they "
        "would have cost at the full input price, minus what they cost.",
    )
    cols[4].metric(
        "Calls without a price", fmt.count(data.unknown_price_calls), help="Left out of the spend, not counted as $0."
    )

    by = (
        st.selectbox(
            "Group by",
            choices,
            key="cost_by",
            format_func=lambda d: f"tag: {d[len(TAG_PREFIX) :]}" if d.startswith(TAG_PREFIX) else d,
        )
        or "model"
    )
    url.write("by", by if by != "model" else None)
    left, right = st.columns(2)
    with left:
        st.subheader(f"Spend by {by.replace(TAG_PREFIX, 'tag ')}")
        charts.ranked_bars(data.by, label="group", value="spend_usd", value_title="USD")
    with right:
        st.subheader("Over time")
        charts.stacked_bars(
            data.over_time, value="usd", group="grp", value_title="USD", bucket_s=data.bucket_s, money=True
        )
    st.dataframe(
        data.by,
        hide_index=True,
        width="stretch",
        column_config={
            "group": by.replace(TAG_PREFIX, "tag "),
            "spend_usd": st.column_config.NumberColumn("spend", format="$%.6f"),
            "share": st.column_config.ProgressColumn("share", min_value=0.0, max_value=1.0, format="percent"),
            "usd_per_1k_calls": st.column_config.NumberColumn("per 1k calls", format="$%.4f"),
            "unknown_price": st.column_config.NumberColumn("no price"),
        },
    )

    st.subheader("Most expensive calls")
    st.dataframe(
        data.top_calls,
        hide_index=True,
        width="stretch",
        column_config={
            "time": st.column_config.DatetimeColumn("time (UTC)", format="YYYY-MM-DD HH:mm:ss"),
            "cost_usd": st.column_config.NumberColumn("cost", format="$%.6f"),
            "duration_ms": st.column_config.NumberColumn("latency", format="%.0f ms"),
        },
    )
    st.subheader("Prompt-cache savings")
    if data.savings.empty:
        st.caption("No input tokens were read from a prompt cache in this range.")
    else:
        st.dataframe(
            data.savings,
            hide_index=True,
            width="stretch",
            column_config={"saved_usd": st.column_config.NumberColumn("saved", format="$%.6f")},
        )
