"""Overview: spend, traffic, errors, failovers, tokens and latency, against the previous period."""

from __future__ import annotations

import streamlit as st

from unillm.dashboard import format as fmt
from unillm.dashboard import url
from unillm.dashboard.context import PageContext
from unillm.dashboard.queries.overview import SPEND_GROUPS, Kpis, overview
from unillm.dashboard.views import charts


def render(context: PageContext) -> None:
    url.start_from("spend_by", url.read("spend_by") if url.read("spend_by") in SPEND_GROUPS else "provider")
    data = context.load(overview, spend_by=st.session_state["spend_by"])
    now, before = data.now, data.before
    st.caption(f"{context.filters.describe().capitalize()}, compared with the period before. Times are UTC.")
    if now.calls == 0:
        st.info(
            f"No calls in this range ({context.filters.describe()}). Widen the time range, or record some: "
            "`unillm demo` makes a few hundred on simulated providers."
        )
        return
    if data.dropped:
        st.warning(
            f"The recorder dropped {data.dropped:,} records in this range (its queue was full or the log "
            "location failed): these figures miss them. See `unillm doctor`; raise `max_queue` if it persists."
        )
    if now.unknown_price_calls:
        models = ", ".join(f"{r.provider}/{r.model} ({r.calls:,})" for r in data.unknown_prices.itertuples(index=False))
        st.warning(
            f"{now.unknown_price_calls:,} calls have no known price, so Spend leaves them out (it does not count "
            f"them as $0): {models}. Add their prices under `[prices]` in unillm.toml."
        )

    _kpis(now, before)

    left, right = st.columns(2)
    with left:
        st.subheader("Spend over time")
        st.radio("Stack by", list(SPEND_GROUPS), key="spend_by", horizontal=True, label_visibility="collapsed")
        url.write("spend_by", st.session_state["spend_by"] if st.session_state["spend_by"] != "provider" else None)
        charts.stacked_bars(data.spend, value="usd", group="grp", value_title="USD", bucket_s=data.bucket_s, money=True)
    with right:
        st.subheader("Calls by status")
        charts.stacked_bars(
            data.traffic,
            value="calls",
            group="status",
            value_title="calls",
            bucket_s=data.bucket_s,
            colors=charts.STATUS_COLORS,
        )
    st.subheader("Latency of successful calls")
    charts.lines(data.latency, columns=["p50", "p95", "p99"], value_title="ms", bucket_s=data.bucket_s)

    st.subheader("By model, slowest first")
    st.dataframe(
        data.by_model,
        hide_index=True,
        width="stretch",
        column_config={
            "model": "provider/model",
            "p50_ms": st.column_config.NumberColumn("p50", format="%.0f ms"),
            "p95_ms": st.column_config.NumberColumn("p95", format="%.0f ms"),
            "p99_ms": st.column_config.NumberColumn("p99", format="%.0f ms"),
            "ttft_p50_ms": st.column_config.NumberColumn("TTFT p50", format="%.0f ms"),
            "usd": st.column_config.NumberColumn("spend", format="$%.6f"),
        },
    )
    st.subheader("What failed")
    if data.errors.empty:
        st.caption("No call ended in an error in this range.")
    else:
        st.dataframe(
            data.errors,
            hide_index=True,
            width="stretch",
            column_config={
                "model": "model asked for",
                "http_status": st.column_config.NumberColumn("HTTP", format="%d"),
                "last_seen": st.column_config.DatetimeColumn("last seen (UTC)", format="YYYY-MM-DD HH:mm:ss"),
                "example": "latest message",
            },
        )


def _get(kpis: Kpis | None, name: str) -> float | None:
    return None if kpis is None else getattr(kpis, name)


def _kpis(now: Kpis, before: Kpis | None) -> None:
    had = before is not None and before.calls > 0

    def delta(value: float | None, previous: float | None, *, relative: bool = True) -> str | None:
        return fmt.change(value, previous, relative=relative) if had else None

    b = before if had else None
    first = st.columns(5)
    first[0].metric("Spend", fmt.usd(now.spend_usd), delta(now.spend_usd, _get(b, "spend_usd")), delta_color="inverse")
    first[1].metric("Calls", fmt.count(now.calls), delta(now.calls, _get(b, "calls")), delta_color="off")
    first[2].metric(
        "Error rate",
        fmt.share(now.error_rate),
        delta(now.error_rate, _get(b, "error_rate"), relative=False),
        delta_color="inverse",
        help=f"{now.errors:,} calls ended in an error (after unillm's and the SDK's retries).",
    )
    first[3].metric(
        "Failover rate",
        fmt.share(now.failover_rate),
        delta(now.failover_rate, _get(b, "failover_rate"), relative=False),
        delta_color="inverse",
        help=f"{now.failed_over:,} calls were answered by another target than the first; {now.retried:,} needed more than one attempt.",
    )
    first[4].metric(
        "Tokens",
        fmt.count(now.tokens),
        delta(now.tokens, _get(b, "tokens")),
        delta_color="off",
        help=f"{now.input_tokens:,} input + {now.output_tokens:,} output",
    )
    second = st.columns(6)
    for i, (label, values, previous) in enumerate(
        (("Latency", now.latency_ms, b.latency_ms if b else None), ("TTFT", now.ttft_ms, b.ttft_ms if b else None))
    ):
        for j, name in enumerate(("p50", "p95", "p99")):
            second[i * 3 + j].metric(
                f"{label} {name}",
                fmt.ms(values[j]),
                delta(values[j], previous[j] if previous else None),
                delta_color="inverse",
                help="Successful calls, from the SDK call to the last byte."
                if label == "Latency"
                else "Successful streams, from the SDK call to the first content chunk.",
            )
