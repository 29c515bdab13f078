"""unillm: route and record every call your app makes through the official openai SDK.

    import unillm
    unillm.patch()            # every openai call is now recorded in the DuckDB call log
    with unillm.tags(user="u1", feature="search"):
        client.chat.completions.create(...)
    unillm.sql("select model, sum(cost_usd) from calls group by 1")

Importing unillm has no side effects: it patches nothing, opens no file, reads no environment
variable, and imports neither openai nor duckdb until patch() or sql() is called.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from unillm._version import __version__
from unillm.tags import current_tags, tags

if TYPE_CHECKING:
    from unillm.tracer.store import QueryResult

__all__ = ["__version__", "current_tags", "flush", "patch", "sql", "stats", "tags", "unpatch"]


def patch(config: str | os.PathLike[str] | Mapping[str, Any] | None = None, **settings: Any) -> None:
    """Start recording (and, with routes configured, routing) every openai SDK call.

    `config`: a path to a TOML file or a dict; by default `unillm.toml` or `[tool.unillm]` in
    pyproject.toml is used when present. Keyword arguments override single settings, e.g.
    `patch(log="~/calls.duckdb", flush_interval=0.2)`. Idempotent; `unpatch()` reverses it.
    """
    from unillm import runtime

    runtime.start(config, **settings)


def unpatch() -> None:
    """Stop recording and routing; write what is still queued to the call log."""
    from unillm import runtime

    runtime.stop()


def flush(timeout: float = 2.0) -> None:
    """Write every finished call to the log now and fold the spool into the database if possible."""
    from unillm import runtime

    session = runtime.current()
    if session is not None:
        session.recorder.flush(fold=True, fold_wait=timeout)


def sql(query: str, params: Any = None, *, log: str | os.PathLike[str] | None = None) -> QueryResult:
    """Run a read-only SQL query over the call log (tables `calls` and `attempts`).

    The result has `.rows`, `.columns`, `.to_dicts()`, `.df()` (pandas) and prints as a table.
    Calls recorded moments ago are included even before they reach calls.duckdb. `log` names
    another call log file; by default the patched session's log, else the configured one.
    """
    from unillm import runtime
    from unillm.tracer.location import LogLocation
    from unillm.tracer.store import query as run_query

    location = LogLocation(log) if log is not None else runtime.location()
    return run_query(location, query, params)


def stats() -> dict[str, Any]:
    """What the recorder did in this process (recorded, dropped, queued) and unillm's own trouble."""
    from unillm import diagnostics, runtime

    session = runtime.current()
    return {
        "patched": session is not None,
        "recorder": session.recorder.stats() if session else None,
        **diagnostics.snapshot(),
    }
