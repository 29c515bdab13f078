"""The page address as the dashboard's state: widgets start from the URL's query parameters and
write their values back, so copying the address shares the exact view."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st


def read(name: str) -> str | None:
    value = st.query_params.get(name)
    return value or None


def read_all(name: str) -> list[str]:
    return [v for v in st.query_params.get_all(name) if v]


def write(name: str, value: str | Sequence[str] | None) -> None:
    """Set a query parameter (a list repeats it), or remove it when empty."""
    values = [value] if isinstance(value, str) else list(value or ())
    values = [v for v in values if v]
    current = st.query_params.get_all(name)
    if values == current:
        return  # unchanged: do not touch the browser's address
    if values:
        st.query_params[name] = values if len(values) > 1 else values[0]
    elif name in st.query_params:
        del st.query_params[name]


def start_from(key: str, value: Any) -> None:
    """Give the widget `key` its first value (from the URL) unless the session already has one."""
    if key not in st.session_state:
        st.session_state[key] = value
