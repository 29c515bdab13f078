"""Tags attached to every call made inside a `with unillm.tags(...)` block.

A ContextVar keeps them per thread and per asyncio task, so concurrent requests of a web app
never see each other's tags.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType

_current_tags: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "unillm_tags", default=MappingProxyType({})
)


@contextmanager
def tags(**values: object) -> Iterator[Mapping[str, str]]:
    """Attach tags to every call inside the block; inner blocks add to (and may override) outer ones.

    Works as a decorator too (`@unillm.tags(feature="search")`). Values are stored as strings.
    """
    merged = {**_current_tags.get(), **{str(k): str(v) for k, v in values.items()}}
    token = _current_tags.set(merged)
    try:
        yield merged
    finally:
        _current_tags.reset(token)


def current_tags() -> Mapping[str, str]:
    """The tags in force right now (an empty mapping outside any `tags` block)."""
    return _current_tags.get()
