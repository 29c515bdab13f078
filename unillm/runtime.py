"""The active unillm session of this process: settings, recorder, hooks. Created by patch()."""

from __future__ import annotations

import atexit
import importlib
import importlib.util
import os
import signal
import threading
import warnings
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from unillm import diagnostics
from unillm.config import Settings, load_settings
from unillm.telemetry.emitter import Telemetry
from unillm.tracer.answer import Usage
from unillm.tracer.call import CallRecord
from unillm.tracer.content import redactor_for
from unillm.tracer.location import LogLocation
from unillm.tracer.pricing import PriceOverride, Pricer
from unillm.tracer.recorder import Recorder
from unillm.tracer.redact import use_redactor

_lock = threading.RLock()
_session: Session | None = None


class Session:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.location = LogLocation(settings.log_path())
        overrides = {
            model: PriceOverride(p.input, p.output, p.cache_read, p.cache_write) for model, p in settings.prices.items()
        }
        self.pricer = Pricer(overrides)
        self.budgets: Any = None
        self.recorder = Recorder(
            self.location,
            self.pricer,
            flush_interval=settings.flush_interval,
            fold_interval=settings.fold_interval,
            max_queue=settings.max_queue,
        )
        self.telemetry = Telemetry(enabled=settings.otel)
        if settings.otel:
            self.recorder.add_row_hook(self.telemetry.stamp)

    def estimate_cost(self, target: Any, input_tokens: int, output_tokens: int) -> float | None:
        """USD a request of this size would cost on `target` (for lowest-cost and max_cost_ratio)."""
        return self.pricer.cost(target.provider.name, target.model, Usage(input_tokens, output_tokens)).usd

    def start_budgets(self) -> Any:
        """The budget guard when the config sets budgets (reads today's spend from the log now)."""
        if not self.settings.budgets:
            return None
        from unillm.routing.budgets import BudgetGuard
        from unillm.tracer.store import query

        def spend(sql: str, params: list[Any]) -> Any:
            return query(self.location, sql, params, fold_first=False).scalar()

        self.budgets = BudgetGuard(self.settings.budgets, spend)
        self.recorder.add_observer(self.budgets.observe_rows)
        self.budgets.start()
        return self.budgets

    def close(self) -> None:
        if self.budgets is not None:
            self.budgets.stop()
        self.recorder.close()
        self.telemetry.close()  # after the recorder's last batch made its spans

    def on_breaker_transition(self, event: dict[str, Any]) -> None:
        changed_at = datetime.fromtimestamp(event.pop("at"), tz=timezone.utc).isoformat()
        self.recorder.submit_event("breaker_events", {**event, "changed_at": changed_at})

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
    _check_references(settings)
    _import_httpx2_now_if_the_sdk_peeks_at_it()
    from unillm import shim

    with _lock:
        if _session is not None and _session.settings == settings and shim.is_installed():
            return True
        if _session is not None:
            _session.close()
        _session = Session(settings)
        from unillm.adapters.registry import use_configured_providers
        from unillm.adapters.targets import TargetResolver

        use_configured_providers(settings.providers)
        use_redactor(redactor_for(settings))

        from unillm.routing.breaker import BREAKERS
        from unillm.routing.latency import LATENCY

        BREAKERS.on_transition = _session.on_breaker_transition
        _session.recorder.add_observer(LATENCY.observe_rows)
        budgets = _session.start_budgets()
        shim.install(
            _session.on_call_finished,
            ask_stream_usage=settings.stream_usage,
            resolve_target=TargetResolver(settings.providers, settings.routes, _session.estimate_cost),
            budgets=budgets,
            otel=settings.otel,
            capture_content=settings.capture_content,
        )
        _session.recorder.start()
        _install_sigterm_flush()
    return True


def _check_references(settings: Settings) -> None:
    """Names the config refers to must exist: providers, route targets, budget routes (else ConfigError)."""
    from unillm.adapters.registry import resolve_provider
    from unillm.config import ConfigError

    for name in settings.providers:
        try:
            resolve_provider(name, settings.providers)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    for alias, route in settings.routes.items():
        for target in [route] if isinstance(route, str) else route.target_names():
            prefix, _, model = target.partition("/")
            if not model or resolve_provider(prefix, settings.providers) is None:
                raise ConfigError(
                    f'routes.{alias}: {target!r} is not "provider/model" with a known provider '
                    "(built in, or declared in [providers.<name>])"
                )
        if not isinstance(route, str):
            for side in ("easy", "hard"):
                name = getattr(route.auto, side)
                if name is not None and name not in route.target_names():
                    raise ConfigError(f"routes.{alias}.auto.{side}: {name!r} is not one of the route's targets")
    for name, budget in settings.budgets.items():
        if budget.route is not None and budget.route not in settings.routes:
            raise ConfigError(f"budgets.{name}.route: {budget.route!r} is not a route in [routes]")
        downgrade = budget.downgrade_to
        if downgrade is not None and downgrade not in settings.routes:
            prefix, _, model = downgrade.partition("/")
            if not model or resolve_provider(prefix, settings.providers) is None:
                raise ConfigError(
                    f'budgets.{name}.downgrade_to: {downgrade!r} is neither a route nor "provider/model" '
                    "with a known provider"
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
        from unillm.routing.breaker import BREAKERS

        BREAKERS.on_transition = None
        if _session is not None:
            _session.close()
            _session = None
        use_redactor(None)  # after the close: the calls it wrote were redacted by the session's rules


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
        session.telemetry.close()


def _flush_on_sigterm(signum: int, frame: Any) -> None:
    """SIGTERM ends a Python process without running atexit: write what is queued first, then do
    what the signal would have done (the app's own handler, or the default: terminate)."""
    session = _session
    if session is not None:
        session.recorder.close(fold_wait=0.0)  # the spool is durable; folding can wait for a reader
    previous = _previous_sigterm[0] if _previous_sigterm else signal.SIG_DFL
    if callable(previous):
        previous(signum, frame)
    elif previous != signal.SIG_IGN:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


_previous_sigterm: list[Any] = []


def _install_sigterm_flush() -> None:
    """Chain our SIGTERM flush in front of the current handler (only the main thread may). A server
    that installs its own handler later (uvicorn, gunicorn) exits normally, and atexit flushes."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        return
    current = signal.getsignal(signal.SIGTERM)
    if current is _flush_on_sigterm:
        return
    try:
        signal.signal(signal.SIGTERM, _flush_on_sigterm)
    except (ValueError, OSError):  # pragma: no cover - embedded interpreters may refuse
        return
    _previous_sigterm[:] = [current]
