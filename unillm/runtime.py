"""The active unillm session of this process: settings, recorder, hooks. Created by patch()."""

from __future__ import annotations

import atexit
import importlib
import importlib.util
import os
import threading
import warnings
from collections.abc import Mapping
from typing import Any

from unillm import diagnostics
from unillm.config import Settings, load_settings
from unillm.tracer.call import CallRecord
from unillm.tracer.location import LogLocation
from unillm.tracer.pricing import PriceOverride, Pricer
from unillm.tracer.recorder import Recorder

_lock = threading.RLock()
_session: Session | None = None


class Session:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.location = LogLocation(settings.log_path())
        overrides = {
            model: PriceOverride(p.input, p.output, p.cache_read, p.cache_write) for model, p in settings.prices.items()
        }
        self.recorder = Recorder(
            self.location,
            Pricer(overrides),
            flush_interval=settings.flush_interval,
            fold_interval=settings.fold_interval,
            max_queue=settings.max_queue,
        )

    def on_call_finished(self, call: CallRecord) -> None:
        try:
            self.recorder.submit(call)
        except Exception as exc:  # pragma: no cover - submit is an append
            diagnostics.internal_error("recorder.submit", exc)


def start(config: str | os.PathLike[str] | Mapping[str, Any] | None, **overrides: Any) -> bool:
    global _session
    if importlib.util.find_spec("openai") is None:
        warnings.warn(
            "unillm.patch(): the openai package is not installed, nothing was patched (pip install openai)",
            RuntimeWarning,
            stacklevel=3,
        )
        return False
    settings = load_settings(config, **overrides)
    _check_providers(settings)
    _import_httpx2_now_if_the_sdk_peeks_at_it()
    from unillm import shim

    with _lock:
        if _session is not None and _session.settings == settings and shim.is_installed():
            return True
        if _session is not None:
            _session.recorder.close()
        _session = Session(settings)
        from unillm.adapters.registry import use_configured_providers
        from unillm.adapters.targets import TargetResolver

        use_configured_providers(settings.providers)

        shim.install(
            _session.on_call_finished,
            ask_stream_usage=settings.stream_usage,
            resolve_target=TargetResolver(settings.providers, settings.routes),
        )
        _session.recorder.start()
    return True


def _check_providers(settings: Settings) -> None:
    """A `[providers.x]` entry that is neither built in nor complete is an error at patch()."""
    from unillm.adapters.registry import resolve_provider
    from unillm.config import ConfigError

    for name in settings.providers:
        try:
            resolve_provider(name, settings.providers)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    for alias, route in settings.routes.items():
        for target in [route] if isinstance(route, str) else route.targets:
            prefix, _, model = target.partition("/")
            if not model or resolve_provider(prefix, settings.providers) is None:
                raise ConfigError(
                    f'routes.{alias}: {target!r} is not "provider/model" with a known provider '
                    "(built in, or declared in [providers.<name>])"
                )


def _import_httpx2_now_if_the_sdk_peeks_at_it() -> None:
    """openai 2.x reads `sys.modules["httpx2"]` without the import lock on every response. The
    recorder thread imports genai-prices, which imports httpx2 when installed; a response parsed
    in that moment sees a half-initialised module and fails. Importing httpx2 here, on the
    caller's thread and before any call, removes the race (1.x ignores httpx2, 3.x imports it).
    """
    import sys

    openai_httpx2 = sys.modules.get("openai._httpx2")
    if openai_httpx2 is None or "httpx2" in sys.modules:
        return
    try:
        importlib.import_module("httpx2")
    except ImportError:
        pass


def stop() -> None:
    global _session
    from unillm import shim

    with _lock:
        shim.uninstall()
        from unillm.adapters.registry import use_configured_providers

        use_configured_providers({})
        if _session is not None:
            _session.recorder.close()
            _session = None


def current() -> Session | None:
    return _session


def location() -> LogLocation:
    """Where the log is: the active session's, or what the settings say (for readers)."""
    session = _session
    if session is not None:
        return session.location
    return LogLocation(load_settings().log_path())


@atexit.register
def _flush_at_exit() -> None:
    session = _session
    if session is not None:
        session.recorder.close()
