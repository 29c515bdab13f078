"""Calls: a filterable list, newest first, and one call in full — its attempt chain, tokens,
cost, timings and (when content capture is on) its messages."""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from unillm.dashboard import format as fmt
from unillm.dashboard import url
from unillm.dashboard.context import PageContext
from unillm.dashboard.queries.calls import STATUSES, CallDetail, CallList, call_detail, call_list


def render(context: PageContext) -> None:
    url.start_from("statuses", [s for s in url.read_all("status") if s in STATUSES])
    url.start_from("search", url.read("q") or "")
    left, right = st.columns([1, 2])
    statuses = left.multiselect("Status", list(STATUSES), key="statuses")
    text = right.text_input(
        "Search", key="search", placeholder="call id, model, error text, or words in the messages (when captured)"
    )
    url.write("status", statuses)
    url.write("q", text.strip())
    listing: CallList = context.load(call_list, statuses=tuple(statuses), text=text.strip())
    st.caption(
        f"{listing.matching:,} calls match ({context.filters.describe()}); the newest {min(listing.matching, len(listing.rows)):,} are listed. "
        + (
            ""
            if listing.content_captured
            else "Messages are not captured in this range (capture_content is off), so search looks at ids, models and errors."
        )
    )
    picked = st.dataframe(
        listing.rows,
        hide_index=True,
        width="stretch",
        on_select="rerun",
        selection_mode="single-row",
        key="calls_table",
        column_config={
            "time": st.column_config.DatetimeColumn("time (UTC)", format="YYYY-MM-DD HH:mm:ss.SSS"),
            "duration_ms": st.column_config.NumberColumn("latency", format="%.0f ms"),
            "ttft_ms": st.column_config.NumberColumn("TTFT", format="%.0f ms"),
            "cost_usd": st.column_config.NumberColumn("cost", format="$%.6f"),
        },
    )
    rows = picked.selection.rows if picked is not None and hasattr(picked, "selection") else []
    selected = str(listing.rows.iloc[rows[0]]["call_id"]) if rows else None
    if selected:
        st.session_state["call_id"] = selected
    url.start_from("call_id", url.read("call") or "")
    call_id = st.text_input("Call id", key="call_id", help="Pick a row above, or paste a call id.").strip()
    url.write("call", call_id)
    if call_id:
        detail = context.load(call_detail_for, call_id=call_id)
        if detail is None:
            st.warning(f"No call with id {call_id!r} in the log.")
        else:
            _detail(detail)


def call_detail_for(con: Any, scope: Any, *, call_id: str) -> CallDetail | None:
    """A call by id, whatever the filters (a shared link to a call must open it)."""
    return call_detail(con, call_id)


def _detail(detail: CallDetail) -> None:
    c = detail.call
    st.subheader(f"Call {c['call_id']}")
    st.caption(
        f"{c['started_at']:%Y-%m-%d %H:%M:%S.%f} UTC · {c['operation']} {c['endpoint']} · asked for **{c['request_model']}**, "
        f"answered by **{c['provider']}/{c['response_model'] or '?'}**"
        + (f" · route **{c['route']}** ({c['strategy']})" if c.get("route") else "")
    )
    cols = st.columns(6)
    cols[0].metric("Status", f"{c['status']}" + (f" {c['http_status']}" if c.get("http_status") else ""))
    cols[1].metric("Latency", fmt.ms(c["duration_ms"]))
    cols[2].metric("TTFT", fmt.ms(c["ttft_ms"]))
    cols[3].metric("Tokens in / out", f"{_n(c['input_tokens'])} / {_n(c['output_tokens'])}")
    cols[4].metric("Cost", fmt.usd(c["cost_usd"]) if c.get("price_known") is not False else "unknown price")
    cols[5].metric("Attempts", str(c["attempts"]))
    if c.get("error_message"):
        st.error(f"{c['error_type']}: {c['error_message']}")
    st.markdown("**Attempts** " + " → ".join(_attempt_step(a) for a in detail.attempts.to_dict("records")))
    st.dataframe(detail.attempts, hide_index=True, width="stretch")
    facts = {
        "tags": c.get("tags"),
        "route reason": c.get("route_reason"),
        "cached / cache-write / reasoning tokens": f"{_n(c.get('cached_tokens'))} / {_n(c.get('cache_write_tokens'))} / {_n(c.get('reasoning_tokens'))}",
        "finish reason": c.get("finish_reason"),
        "tool calls": c.get("tool_calls"),
        "price source": c.get("price_source"),
        "trace id / span id": f"{c.get('trace_id') or '—'} / {c.get('span_id') or '—'}",
        "process / host": f"{c.get('process_id')} on {c.get('host')}",
        "sdk / unillm": f"openai {c.get('sdk_version')} / unillm {c.get('unillm_version')}",
    }
    st.markdown("\n".join(f"- **{k}:** {v}" for k, v in facts.items() if v not in (None, "")))
    if detail.request is None and detail.response is None:
        st.caption(
            "Messages were not captured for this call (content capture is off by default: `capture_content = true`)."
        )
        return
    st.subheader("Messages")
    for message in _messages(detail.request):
        _message(message)
    for message in _messages(detail.response):
        _message(message)


def _attempt_step(a: dict[str, Any]) -> str:
    outcome = (
        "ok"
        if a["status"] == "ok"
        else " ".join(str(x) for x in (a.get("http_status"), a.get("error_type")) if x and x == x)
    )
    return f"`{a['attempt']}` {a['provider']}/{a['model']} ({a.get('reason') or 'first'}): **{outcome}** in {fmt.ms(a['duration_ms'])}"


def _n(value: Any) -> str:
    return "—" if value is None or value != value else f"{int(value):,}"


def _messages(content: Any) -> list[dict[str, Any]]:
    """Captured content as chat messages, whatever the endpoint's shape."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"role": "assistant", "content": content}]
    out: list[dict[str, Any]] = []
    if content.get("instructions"):
        out.append({"role": "system", "content": content["instructions"]})
    for key in ("messages", "output"):
        for item in content.get(key) or ():
            out.append(item if isinstance(item, dict) else {"role": "assistant", "content": item})
    for key in ("input", "prompt", "text"):
        value = content.get(key)
        if isinstance(value, list):
            out += [
                v if isinstance(v, dict) else {"role": "user" if key != "text" else "assistant", "content": v}
                for v in value
            ]
        elif value is not None:
            out.append({"role": "assistant" if key == "text" else "user", "content": value})
    return out


def _message(message: dict[str, Any]) -> None:
    role = str(message.get("role") or message.get("type") or "assistant")
    with st.chat_message("user" if role == "user" else "assistant" if role != "system" else "ai", avatar=None):
        st.caption(role)
        content = message.get("content")
        if isinstance(content, str):
            st.markdown(content)
        elif content is not None:
            st.code(json.dumps(content, indent=2, ensure_ascii=False), language="json")
        for call in message.get("tool_calls") or ():
            st.code(json.dumps(call, indent=2, ensure_ascii=False), language="json")
        if message.get("refusal"):
            st.warning(f"refusal: {message['refusal']}")
