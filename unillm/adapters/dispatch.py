"""The dispatch transport: sends a call's HTTP attempt to the provider its target names.

It stands where the SDK client's transport would, takes the OpenAI-wire request the SDK built,
lets the target's adapter translate it, sends it through the client's own transport (same pool,
proxy and timeouts), and hands back an OpenAI-wire response of the SDK's own HTTP library, which
the SDK then parses as if OpenAI had answered. Problems unillm finds before sending (a missing
key, a parameter the provider cannot honour) come back as an HTTP error answer the SDK turns into
its own exception class, never as a stray Python exception.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import json
import time
from typing import Any

from unillm.adapters.base import Adapter, Target, Translation, UnsupportedFeature, openai_error
from unillm.routing.policy import Plan, is_retryable
from unillm.tracer.call import AttemptRecord, CallRecord
from unillm.tracer.transport import tap_response

_NO_RETRY = {"content-type": "application/json", "x-should-retry": "false"}
_PASSED_HEADERS = ("retry-after", "retry-after-ms", "request-id", "x-request-id")


def adapter_for(wire: str) -> Adapter:
    if wire == "anthropic":
        from unillm.adapters.anthropic import AnthropicAdapter

        return AnthropicAdapter()
    if wire == "gemini":
        from unillm.adapters.gemini import GeminiAdapter

        return GeminiAdapter()
    from unillm.adapters.openai_compat import OpenAICompatAdapter

    return OpenAICompatAdapter()


def _library(request: Any) -> Any:
    return importlib.import_module(type(request).__module__.partition(".")[0])


@functools.lru_cache(maxsize=256)
def _parsed_url(library: str, url: str) -> Any:
    return importlib.import_module(library).URL(url)


def _url(http: Any, url: str) -> Any:
    """The library's URL object for `url`, parsed once (parsing costs ~10 µs per request)."""
    return _parsed_url(http.__name__, url)


def _host(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0]


class _Dispatch:
    """What the sync and async transports share: everything but the I/O."""

    def __init__(self, inner: Any, call: CallRecord) -> None:
        self._inner = inner
        self._call = call
        self._body: dict[str, Any] | None = None  # the SDK's request, parsed once for every attempt

    def _prepare(self, request: Any, target: Target) -> tuple[AttemptRecord, Translation | None, Any]:
        """(attempt, translation, provider request) — or a ready error response as the last item."""
        call = self._call
        http = _library(request)
        attempt = call.new_attempt(_host(target.provider.base_url))
        attempt.provider = target.provider.name
        attempt.model = target.model
        if self._body is None:
            self._body = json.loads(request.content or b"{}")
        body = self._body
        stream_options = body.get("stream_options") or {}
        translation = Translation(
            endpoint=call.endpoint,
            request_model=target.model,
            stream=bool(body.get("stream")),
            include_usage=bool(stream_options.get("include_usage")),
        )
        attempt.translation = translation
        if target.api_key is None and target.provider.key_env:
            message = (
                f"unillm: no API key for provider {target.provider.name!r}: set the environment variable "
                f"{target.provider.key_env} (or api_key in [providers.{target.provider.name}] of the config)"
            )
            return (
                attempt,
                None,
                http.Response(401, headers=_NO_RETRY, content=openai_error(401, message, kind="authentication_error")),
            )
        try:
            outgoing = adapter_for(target.provider.wire).build_request(target, translation, body)
        except UnsupportedFeature as exc:
            content = openai_error(400, f"unillm: {exc}", kind="invalid_request_error", code="unsupported_parameter")
            return attempt, None, http.Response(400, headers=_NO_RETRY, content=content)
        provider_request = http.Request(
            outgoing.method,
            _url(http, outgoing.url),
            headers=outgoing.headers,
            content=outgoing.body,
            extensions=request.extensions,
        )
        return attempt, translation, provider_request

    def _translated(
        self,
        target: Target,
        http: Any,
        attempt: AttemptRecord,
        translation: Translation,
        provider_response: Any,
        body: bytes | None,
        is_async: bool,
    ) -> Any:
        """The tapped OpenAI-wire response for a provider answer (body given: read whole; None: stream)."""
        adapter = adapter_for(target.provider.wire)
        headers = {k: v for k in _PASSED_HEADERS if (v := provider_response.headers.get(k)) is not None}
        if body is not None:
            status, content = adapter.translate_response(translation, provider_response.status_code, body)
            response = http.Response(status, headers={**headers, "content-type": "application/json"}, content=content)
            tap_response(attempt, response, is_async=is_async)
            return response
        # The provider's own byte stream, translated and tapped as the SDK reads it.
        response = http.Response(
            200, headers={**headers, "content-type": "text/event-stream"}, stream=provider_response.stream
        )
        tap_response(attempt, response, is_async=is_async, translator=adapter.stream_translator(translation))
        return response


def _is_stream(translation: Translation, response: Any) -> bool:
    return (
        translation.stream
        and response.status_code < 400
        and "text/event-stream" in response.headers.get("content-type", "")
    )


def _final_error(http: Any, response: Any, attempts: list[AttemptRecord]) -> Any:
    """The last failure, its message naming every attempt (the app sees one error, not N)."""
    try:
        payload = json.loads(response.content)
        error = payload["error"]
    except (ValueError, KeyError, TypeError):
        return response
    chain = ", ".join(f"{a.provider}/{a.model} {a.http_status or type(a.transport_error).__name__}" for a in attempts)
    error["message"] = f"{error.get('message')} (unillm tried {len(attempts)} times: {chain})"
    headers = {**dict(response.headers), "x-should-retry": "false"}
    headers.pop("content-length", None)
    return http.Response(response.status_code, headers=headers, content=json.dumps(payload).encode())


# The routing decisions, shared by the sync and async transports (which only differ in how they wait).
Schedule = list[tuple[Target, int]]


def _wait_before(plan: Plan, schedule: Schedule, index: int, headers: Any) -> float:
    """Seconds before attempt `index + 1`: back off on the same target, go at once to the next one."""
    target, try_number = schedule[index]
    return plan.wait_before_retry(try_number, headers) if schedule[index + 1][0] is target else 0.0


def _after_failure(plan: Plan, schedule: Schedule, index: int) -> float | None:
    """Attempt `index` raised (connection, timeout): seconds to wait, or None when it was the last."""
    plan.record(schedule[index][0], ok=False)
    if index == len(schedule) - 1:
        return None
    return _wait_before(plan, schedule, index, None)


def _after_answer(
    plan: Plan,
    schedule: Schedule,
    index: int,
    response: Any,
    refused: bool,
    http: Any,
    attempts: list[AttemptRecord],
) -> tuple[Any, float]:
    """Attempt `index` answered: (what the app gets, or None to try again; seconds to wait first).
    `refused`: unillm answered itself before sending (no key, unsupported parameter)."""
    retryable = is_retryable(response.status_code)
    if not refused:  # the breaker judges the provider, not unillm's own refusals
        plan.record(schedule[index][0], ok=not retryable)
    if index == len(schedule) - 1 or not (refused or retryable):
        final = _final_error(http, response, attempts) if response.status_code >= 400 else response
        return final, 0.0
    return None, _wait_before(plan, schedule, index, response.headers)


class SyncDispatchTransport(_Dispatch):
    def handle_request(self, request: Any) -> Any:
        plan = self._call.plan
        if plan is None:
            return self._attempt(request, self._call.target)[0]
        http = _library(request)
        schedule = list(plan.schedule())
        for index, (target, _) in enumerate(schedule):
            try:
                response, refused = self._attempt(request, target)
            except Exception:
                wait = _after_failure(plan, schedule, index)
                if wait is None:
                    raise
            else:
                final, wait = _after_answer(plan, schedule, index, response, refused, http, self._call.attempts)
                if final is not None:
                    return final
            if wait:
                time.sleep(wait)
        raise AssertionError("a plan has at least one attempt")  # pragma: no cover

    def _attempt(self, request: Any, target: Target) -> tuple[Any, bool]:
        """One attempt: (tapped OpenAI-wire response, whether unillm refused it before sending)."""
        attempt, translation, outgoing = self._prepare(request, target)
        http = _library(request)
        if translation is None:  # unillm's own refusal, already an HTTP answer
            tap_response(attempt, outgoing, is_async=False)
            return outgoing, True
        try:
            response = self._inner.handle_request(outgoing)
            body = None if _is_stream(translation, response) else response.read()
        except BaseException as exc:
            attempt.fail(exc)
            raise
        return self._translated(target, http, attempt, translation, response, body, is_async=False), False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class AsyncDispatchTransport(_Dispatch):
    async def handle_async_request(self, request: Any) -> Any:
        plan = self._call.plan
        if plan is None:
            return (await self._attempt(request, self._call.target))[0]
        http = _library(request)
        schedule = list(plan.schedule())
        for index, (target, _) in enumerate(schedule):
            try:
                response, refused = await self._attempt(request, target)
            except Exception:
                wait = _after_failure(plan, schedule, index)
                if wait is None:
                    raise
            else:
                final, wait = _after_answer(plan, schedule, index, response, refused, http, self._call.attempts)
                if final is not None:
                    return final
            if wait:
                await asyncio.sleep(wait)
        raise AssertionError("a plan has at least one attempt")  # pragma: no cover

    async def _attempt(self, request: Any, target: Target) -> tuple[Any, bool]:
        attempt, translation, outgoing = self._prepare(request, target)
        http = _library(request)
        if translation is None:
            tap_response(attempt, outgoing, is_async=True)
            return outgoing, True
        try:
            response = await self._inner.handle_async_request(outgoing)
            body = None if _is_stream(translation, response) else await response.aread()
        except BaseException as exc:
            attempt.fail(exc)
            raise
        return self._translated(target, http, attempt, translation, response, body, is_async=True), False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
