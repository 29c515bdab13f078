"""The wrapt hooks into the openai SDK (and nothing else).

L1 — `SyncAPIClient.request` / `AsyncAPIClient.request`: every chat, responses, embeddings and
legacy-completions call of every client (made before or after `patch()`, module-level client,
`with_raw_response`, `.parse`, `.stream()`) passes here once per logical call. We open a call
record and put it in a ContextVar for the duration of the SDK's request loop.

L2 — `Client._transport_for_url` / `AsyncClient._transport_for_url` of httpx and httpx2: while a
call record is in the ContextVar, the client's transport is wrapped in unillm's tee transport,
so each HTTP attempt (the SDK's retries included) is seen on bytes, whatever transport the client
has (pool, proxy, the user's own `http_client` or mock).

Unpatching restores the original attributes when ours are still the outermost wrappers; if
another instrumentation wrapped on top of us, ours stay in place but pass straight through.
"""

from __future__ import annotations

import contextvars
import importlib
import sys
from collections.abc import Callable
from typing import Any

import wrapt

from unillm import diagnostics
from unillm.tags import current_tags
from unillm.telemetry.parent import capture_parent
from unillm.tracer.call import RECORDED_ENDPOINTS, CallRecord
from unillm.tracer.transport import AsyncTeeTransport, SyncTeeTransport

_current_call: contextvars.ContextVar[CallRecord | None] = contextvars.ContextVar("unillm_call", default=None)


class _Hooks:
    """What the hooks call into; None while unpatched (the wrappers then pass through)."""

    on_finish: Callable[[CallRecord], Any] | None = None
    ask_stream_usage: bool = True
    resolve_target: Callable[[str], Any] | None = None  # model name → routing.policy.Plan
    budgets: Any = None  # routing.budgets.BudgetGuard when the config sets budgets
    otel: bool = True  # remember each call's OpenTelemetry context (its span's parent)
    capture_content: bool = False  # keep each call's request body for the log (config: capture_content)


_hooks = _Hooks()
_installed: list[tuple[object, str, Any]] = []  # (owner, attribute, our wrapper)


def _start_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> CallRecord | None:
    """Open a call record for a model endpoint; None for every other SDK request (and on our bugs)."""
    try:
        return _open_call(args, kwargs)
    except Exception as exc:
        diagnostics.internal_error("shim.request", exc)
        return None


def _open_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> CallRecord | None:
    on_finish = _hooks.on_finish
    if on_finish is None:
        return None
    options: Any = args[1] if len(args) > 1 else kwargs.get("options")
    endpoint = getattr(options, "url", None)
    if endpoint not in RECORDED_ENDPOINTS or getattr(options, "method", "").lower() != "post":
        return None
    body = options.json_data if isinstance(options.json_data, dict) else {}
    stream = bool(body.get("stream"))
    model = body.get("model")
    call = CallRecord(endpoint, model, stream, current_tags(), on_finish)
    if _hooks.otel:
        call.otel_context = capture_parent()
    if _hooks.capture_content:
        call.request_body = body  # a reference; content is picked out of it on the recorder's thread
    resolve = _hooks.resolve_target
    plan = resolve(model) if resolve is not None and isinstance(model, str) else None
    if _hooks.budgets is not None:
        plan = _apply_budgets(call, plan, resolve)
    if plan is not None and plan.targets:
        call.target = plan.targets[0]
        call.route = plan.route  # a one-target route has no dispatch plan to say it
        if plan.owns_retries:
            call.plan = plan
            options.max_retries = 0  # unillm retries and fails over: no second retry loop
    if stream and endpoint != "/responses" and _hooks.ask_stream_usage:
        stream_options = body.get("stream_options") or {}
        if not stream_options.get("include_usage"):
            # Ask for usage so the log has tokens; the tap drops that extra chunk again.
            options.json_data = {**body, "stream_options": {**stream_options, "include_usage": True}}
            call.strip_usage_chunk = True
    return call


def _apply_budgets(call: CallRecord, plan: Any, resolve: Callable[[str], Any] | None) -> Any:
    """A spent budget blocks the call (the dispatch transport answers 429) or swaps its plan."""
    reached = _hooks.budgets.check(plan.route if plan is not None else None, call.tags)
    if reached is None:
        return plan
    if reached.action == "downgrade" and resolve is not None and reached.downgrade_to:
        call.route_reason = f"budget {reached.name!r} reached: downgraded to {reached.downgrade_to}"
        return resolve(reached.downgrade_to)
    call.blocked = reached.message
    return None


def _sync_request(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    call = _start_call(args, kwargs)
    if call is None:
        return wrapped(*args, **kwargs)
    token = _current_call.set(call)
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as exc:
        call.sdk_raised(exc)
        raise
    finally:
        _current_call.reset(token)
    call.sdk_returned()
    return result


async def _async_request(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    call = _start_call(args, kwargs)
    if call is None:
        return await wrapped(*args, **kwargs)
    token = _current_call.set(call)
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as exc:
        call.sdk_raised(exc)
        raise
    finally:
        _current_call.reset(token)
    call.sdk_returned()
    return result


def _sync_transport_for_url(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    transport = wrapped(*args, **kwargs)
    call = _current_call.get()
    if call is None:
        return transport
    if call.target is not None or call.blocked:
        # Imported on the first routed call: an app without routes never loads the dispatch
        # machinery (~20 ms of patch()); after that, a dictionary lookup.
        from unillm.adapters.dispatch import SyncDispatchTransport

        return SyncDispatchTransport(transport, call)
    return SyncTeeTransport(transport, call)


def _async_transport_for_url(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    transport = wrapped(*args, **kwargs)
    call = _current_call.get()
    if call is None:
        return transport
    if call.target is not None or call.blocked:
        from unillm.adapters.dispatch import AsyncDispatchTransport  # see _sync_transport_for_url

        return AsyncDispatchTransport(transport, call)
    return AsyncTeeTransport(transport, call)


def _wrap(owner: object, attribute: str, wrapper: Callable[..., Any]) -> None:
    if any(o is owner and a == attribute for o, a, _ in _installed):
        return  # still in place from an earlier patch() (someone wrapped on top of it)
    function_wrapper = wrapt.FunctionWrapper(getattr(owner, attribute), wrapper)
    setattr(owner, attribute, function_wrapper)
    _installed.append((owner, attribute, function_wrapper))


def install(
    on_finish: Callable[[CallRecord], Any],
    *,
    ask_stream_usage: bool = True,
    resolve_target: Callable[[str], Any] | None = None,
    budgets: Any = None,
    otel: bool = True,
    capture_content: bool = False,
) -> None:
    """Install the hooks (once per process) and point them at `on_finish`."""
    _hooks.on_finish = on_finish
    _hooks.otel = otel
    _hooks.capture_content = capture_content
    _hooks.ask_stream_usage = ask_stream_usage
    _hooks.resolve_target = resolve_target
    _hooks.budgets = budgets
    base_client = importlib.import_module("openai._base_client")
    _wrap(base_client.SyncAPIClient, "request", _sync_request)
    _wrap(base_client.AsyncAPIClient, "request", _async_request)
    # openai 3.x uses httpx2 but still accepts an httpx client, so hook both — each when (and if)
    # it is imported, so patch() does not import a library the app never uses.
    if not _import_hooks_registered:
        for library in ("httpx", "httpx2"):
            wrapt.register_post_import_hook(_hook_http_library, library)
        _import_hooks_registered.append(True)
    for library in ("httpx", "httpx2"):
        module = sys.modules.get(library)
        if module is not None:
            _hook_http_library(module)


_import_hooks_registered: list[bool] = []


def _hook_http_library(module: Any) -> None:
    if _hooks.on_finish is None:
        return  # imported while unpatched: the next patch() hooks it
    _wrap(module.Client, "_transport_for_url", _sync_transport_for_url)
    _wrap(module.AsyncClient, "_transport_for_url", _async_transport_for_url)


def uninstall() -> None:
    """Stop recording; remove our wrappers where nobody wrapped on top of them."""
    _hooks.on_finish = None
    still_wrapped = []
    for owner, attribute, wrapper in reversed(_installed):
        if owner.__dict__.get(attribute) is wrapper:
            setattr(owner, attribute, wrapper.__wrapped__)
        else:  # someone wrapped us; leave the chain intact, ours passes through
            still_wrapped.append((owner, attribute, wrapper))
    _installed[:] = list(reversed(still_wrapped))


def is_installed() -> bool:
    return _hooks.on_finish is not None
