"""The secret scan: no API key may appear in anything unillm writes or shows.

`assert_no_secrets` takes named texts (or bytes) from any surface (the call log's tables, its spool
files and database file, log output, span exports, dashboard data) and fails naming each surface
where a key, or a sizeable piece of one, appears. `call_log_texts` gathers every surface of a
call log; add other surfaces to the same mapping.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import unillm
from unillm.tracer.location import LogLocation
from unillm.tracer.schema import TABLES, VIEWS

FRAGMENT = 12  # a run this long of a key counts as the key (a cut or partly masked key leaks too)


def _fragments(secret: str, size: int) -> set[str]:
    if len(secret) <= size:
        return {secret}
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


def assert_no_secrets(texts: Mapping[str, str | bytes], secrets: Iterable[str], *, fragment: int = FRAGMENT) -> None:
    """Fail if any secret, or any `fragment` characters in a row of one, occurs in any text."""
    secrets = [s for s in secrets if s]
    assert secrets, "the scan needs the secrets to look for"
    found: list[str] = []
    for where, text in texts.items():
        haystack = text if isinstance(text, str) else text.decode("latin-1")  # every byte, one char each
        for secret in secrets:
            pieces = [p for p in _fragments(secret, fragment) if p in haystack]
            if pieces:
                at = haystack.index(pieces[0])
                found.append(f"{where}: {secret[:6]}... ({pieces[0]!r} in {haystack[max(at - 40, 0) : at + 60]!r})")
    assert not found, "secrets found:\n" + "\n".join(found)


def table_texts(log: str | Path | None = None) -> dict[str, str]:
    """Every row of every table and view of the call log, every column cast to text."""
    texts: dict[str, str] = {}
    for name in [*TABLES, *VIEWS]:
        result = unillm.sql(f"select cast(columns(*) as varchar) from {name}", log=log)
        texts[f"table {name}"] = "\n".join("\t".join("" if v is None else str(v) for v in row) for row in result.rows)
    return texts


def file_texts(paths: Iterable[Path]) -> dict[str, bytes]:
    return {f"file {path.name}": path.read_bytes() for path in paths if path.is_file()}


def spool_files(log: str | Path) -> list[Path]:
    spool = LogLocation(log).spool_dir
    return sorted(spool.iterdir()) if spool.is_dir() else []


def database_files(log: str | Path) -> list[Path]:
    db = LogLocation(log).db_path
    return [p for p in (db, db.with_name(db.name + ".wal")) if p.is_file()]


def call_log_texts(log: str | Path) -> dict[str, str | bytes]:
    """The tables as a reader sees them, plus the raw bytes of the database file (and its WAL)."""
    return {**table_texts(log), **file_texts(database_files(log))}


def dashboard_texts(log: str | Path) -> dict[str, str]:
    """What the dashboard shows for the log: every page, and the detail of every call, as text
    (metrics, markdown, tables, chart data). Empty when the dashboard extra is not installed."""
    try:
        from streamlit.testing.v1 import AppTest
    except ImportError:
        return {}
    import os

    import streamlit as st

    app = str(Path(unillm.__file__).parent / "dashboard" / "app.py")
    call_ids = [row[0] for row in unillm.sql("select call_id from calls", log=log).rows]
    views = [{"page": page} for page in ("overview", "failover", "cost", "calls", "sql")]
    views += [{"page": "calls", "call": call_id} for call_id in call_ids]
    views.append({"page": "sql", "sql": "select * from calls"})
    texts: dict[str, str] = {}
    previous = os.environ.get("UNILLM_LOG")
    os.environ["UNILLM_LOG"] = str(log)
    try:
        for params in views:
            st.cache_data.clear()
            at = AppTest.from_file(app, default_timeout=30)
            for name, value in params.items():
                at.query_params[name] = value
            at.run()
            assert not at.exception, [e.value for e in at.exception]
            texts[f"dashboard {params}"] = _page_text(at)
    finally:
        if previous is None:
            del os.environ["UNILLM_LOG"]
        else:
            os.environ["UNILLM_LOG"] = previous
    return texts


def _page_text(at: object) -> str:
    """Every element of a rendered page as text: values, labels, help, tables and chart specs."""
    out: list[str] = []

    def walk(node: object) -> None:
        children = getattr(node, "children", None)
        proto = getattr(node, "proto", None)
        if proto is not None:
            out.append(str(proto))  # labels, values, help texts, chart specs and their data
        value = getattr(node, "value", None)
        if hasattr(value, "to_csv"):
            out.append(value.to_csv())  # a table's cells (its proto holds them as Arrow bytes)
        for child in children.values() if isinstance(children, dict) else children or ():
            walk(child)

    walk(at._tree)  # type: ignore[attr-defined]
    return "\n".join(out)
