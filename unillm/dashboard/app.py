"""The unillm dashboard (Streamlit): `unillm dashboard` runs this script.

The call log comes from the unillm config (UNILLM_LOG, set by `unillm dashboard --log`, or the
default location); the page and every filter come from the URL. Pages live in
`unillm.dashboard.views`; their SQL in `unillm.dashboard.queries`.
"""

from __future__ import annotations

import datetime as dt

import streamlit as st

from unillm.config import ConfigError, load_settings
from unillm.dashboard import url
from unillm.dashboard.context import PageContext, current_now, filter_options
from unillm.dashboard.filters import DEFAULT_RANGE, PARAM_NAMES, RANGE_LABELS, RANGES, Filters
from unillm.dashboard.views import calls, cost, failover, overview, sql_console
from unillm.tracer.location import LogLocation
from unillm.tracer.store import LogBusyError

PAGES = {
    "overview": ("Overview", overview.render),
    "failover": ("Failover", failover.render),
    "cost": ("Cost", cost.render),
    "calls": ("Calls", calls.render),
    "sql": ("SQL", sql_console.render),
}
# Query parameters a page keeps for itself (its options); they leave the URL when another page opens,
# so a shared link carries only what the page it shows uses.
PAGE_PARAMS = {"overview": ("spend_by",), "cost": ("by",), "calls": ("call", "q", "status"), "sql": ("sql",)}
AUTO_REFRESH = {"off": None, "10s": 10, "30s": 30, "1m": 60, "5m": 300}

st.set_page_config(page_title="unillm", page_icon="📈", layout="wide")


def _location() -> LogLocation | None:
    try:
        return LogLocation(load_settings().log_path())
    except ConfigError as exc:
        st.error(f"unillm could not read its config: {exc}")
        return None


def _refresh() -> None:
    """A new refresh number: part of every cache key, so everything is read again."""
    st.session_state["refresh"] = st.session_state.get("refresh", 0) + 1


def _sidebar(location: LogLocation) -> tuple[str, Filters, int | None]:
    side = st.sidebar
    side.markdown("## unillm")
    side.caption(f"Call log: `{location.db_path}`")

    url.start_from("page", url.read("page") if url.read("page") in PAGES else "overview")
    page = side.radio("Page", list(PAGES), key="page", format_func=lambda p: PAGES[p][0]) or "overview"

    from_url = Filters.from_params({name: url.read_all(name) for name in PARAM_NAMES})
    url.start_from("range", from_url.range)
    chosen = (
        side.selectbox("Time range", [*RANGES, "custom"], key="range", format_func=lambda r: RANGE_LABELS[r])
        or DEFAULT_RANGE
    )
    first_day = last_day = None
    if chosen == "custom":
        today = dt.datetime.now(dt.timezone.utc).date()
        url.start_from("from", from_url.first_day or today - dt.timedelta(days=7))
        url.start_from("to", from_url.last_day or today)
        first_day = side.date_input("From (UTC)", key="from")
        last_day = side.date_input("To (UTC, inclusive)", key="to")

    options = filter_options(str(location.db_path), st.session_state.get("refresh", 0))
    picked: dict[str, list[str]] = {}
    for name, label, current in (
        ("provider", "Provider", from_url.providers),
        ("model", "Model", from_url.models),
        ("route", "Route", from_url.routes),
    ):
        url.start_from(name, list(current))
        choices = sorted(set(options.get(name, [])) | set(st.session_state[name]))
        picked[name] = side.multiselect(label, choices, key=name)
    url.start_from("tags", ", ".join(f"{k}={v}" for k, v in from_url.tags))
    tag_text = side.text_input(
        "Tags", key="tags", placeholder="user=u-42, feature=search", help="key=value pairs; all must match"
    )
    tags = tuple(
        (k.strip(), v.strip())
        for k, sep, v in (part.partition("=") for part in tag_text.split(","))
        if sep and k.strip()
    )
    filters = Filters(
        range=chosen if chosen in RANGES or chosen == "custom" else DEFAULT_RANGE,
        first_day=first_day if isinstance(first_day, dt.date) else None,
        last_day=last_day if isinstance(last_day, dt.date) else None,
        providers=tuple(picked["provider"]),
        models=tuple(picked["model"]),
        routes=tuple(picked["route"]),
        tags=tags,
    )

    side.divider()
    url.start_from("refresh_every", url.read("refresh") if url.read("refresh") in AUTO_REFRESH else "off")
    every = side.selectbox("Auto-refresh", list(AUTO_REFRESH), key="refresh_every") or "off"
    side.button("Refresh now", width="stretch", on_click=_refresh)  # runs before the rerun it causes

    url.write("page", page if page != "overview" else None)
    for other, names in PAGE_PARAMS.items():
        if other != page:
            for name in names:
                url.write(name, None)
    params = filters.to_params()
    for name in PARAM_NAMES:
        url.write(name, params.get(name))
    url.write("refresh", every if every != "off" else None)
    return page, filters, AUTO_REFRESH[every]


def main() -> None:
    location = _location()
    if location is None:
        return
    try:
        page, filters, every = _sidebar(location)  # reads the log for the filters' choices
    except LogBusyError as exc:
        st.error(str(exc))
        return
    title, render = PAGES[page]

    @st.fragment(run_every=every)
    def body() -> None:
        context = PageContext(location, filters, current_now(), st.session_state.get("refresh", 0))
        try:
            render(context)
        except LogBusyError as exc:
            st.error(str(exc))

    st.header(title)
    body()


main()
