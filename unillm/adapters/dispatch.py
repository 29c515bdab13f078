"""The dispatch transport: sends a call's HTTP attempt to the provider its target names.

It stands where the SDK client's transport would, takes the OpenAI-wire request the SDK built,
lets the target's adapter translate it, sends it through the client's own transport (same pool,
proxy and timeouts), and hands back an OpenAI-wire response of the SDK's own HTTP library, which
the SDK then parses as if OpenAI had answered. For a route, it walks the route's run
(`routing.policy`): retries, failover, breakers and the time budget. A routed stream is read up to
its first content chunk before the SDK sees it, so a stream that fails before then fails over
without the app noticing. Problems unillm finds before sending (a missing
key, a parameter the provider cannot honour) come back as an HTTP error answer the SDK turns into
its own exception class, never as a stray Python exception.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from unillm.adapters import http_messages
from unillm.adapters.base import Adapter, Target, Translation, UnsupportedFeature, openai_error
from unillm.fastjson import loads
from unillm.routing.policy import FAILOVER, FINAL, RETRY, Run, Step, is_context_window_error, is_refusal, is_retryable
from unillm.tracer.call import AttemptRecord, CallRecord, ErrorNote
from unillm.tracer.transport import content_type_of, tap_response

_NO_RETRY = {"content-type": "application/json", "x-should-retry": "false"}
# The provider's headers the SDK sees on a translated answer (its retry advice, the request id).
_PASSED_HEADERS = frozenset((b"retry-after", b"retry-after-ms", b"request-id", b"x-request-id"))


def _passed_headers(response: Any) -> dict[str, str]:
    """`_PASSED_HEADERS` of a provider response: one pass over its raw headers (~1 µs), where a
    `headers.get` per name cost ~4 µs."""
    return {
        name.decode("latin-1").lower(): value.decode("latin-1")
        for name, value in response.headers.raw
        if name.lower() in _PASSED_HEADERS
    }


def adapter_for(wire: str, endpoint: str = "/chat/completions") -> Adapter:
    if wire == "anthropic":
        from unillm.adapters.anthropic import AnthropicAdapter

        return _bridged(AnthropicAdapter(), endpoint)
    if wire == "gemini":
        from unillm.adapters.gemini import GeminiAdapter

        return _bridged(GeminiAdapter(), endpoint)
    from unillm.adapters.openai_compat import OpenAICompatAdapter

    return OpenAICompatAdapter()


def _bridged(chat: Adapter, endpoint: str) -> Adapter:
    """Families without a /responses endpoint answer the Responses API through their chat adapter."""
    if endpoint != "/responses":
        return chat
    from unillm.adapters.responses_bridge import ResponsesBridge

    return ResponsesBridge(chat)


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

    def _parsed(self, request: Any) -> dict[str, Any]:
        if self._body is None:
            self._body = loads(request.content or b"{}")
        return self._body

    def _begin(self, request: Any) -> Run:
        """Order the route's targets for this call; the decision goes into the call record."""
        call, plan = self._call, self._call.plan
        body = self._parsed(request)
        run = plan.start(body, len(request.content or b""), bool(body.get("stream")), call.tags)
        call.route, call.strategy = plan.route, plan.strategy
        if call.route_reason:  # a budget downgraded the call before it got here
            run.notes.insert(0, call.route_reason)
        return run

    def _blocked(self, request: Any, is_async: bool) -> Any:
        """A spent budget's answer: 429 insufficient_quota naming the budget; nothing is sent."""
        http = _library(request)
        attempt = self._call.new_attempt("unillm")
        attempt.provider = "unillm"
        message = self._call.blocked or ""
        content = openai_error(429, message, kind="insufficient_quota", code="budget_exceeded")
        response = http.Response(429, headers=_NO_RETRY, content=content)
        tap_response(attempt, response, is_async=is_async)
        return response

    def _prepare(
        self, request: Any, target: Target, step: Step | None
    ) -> tuple[AttemptRecord, Translation | None, Any]:
        """(attempt, translation, provider request) — or a ready error response as the last item."""
        call = self._call
        http = _library(request)
        attempt = call.new_attempt(_host(target.provider.base_url))
        attempt.provider = target.provider.name
        attempt.model = target.model
        body = self._parsed(request)
        if target.params:
            body = {**body, **target.params}
        stream_options = body.get("stream_options") or {}
        translation = Translation(
            endpoint=call.endpoint,
            request_model=target.model,
            stream=bool(body.get("stream")),
            include_usage=bool(stream_options.get("include_usage")),
        )
        attempt.translation = translation
        if step is not None:
            attempt.reason, attempt.breaker_state = step.reason, step.breaker_state
            attempt.wait_ms = round(step.wait * 1000, 3)
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
            outgoing = adapter_for(target.provider.wire, call.endpoint).build_request(target, translation, body)
        except UnsupportedFeature as exc:
            content = openai_error(400, f"unillm: {exc}", kind="invalid_request_error", code="unsupported_parameter")
            return attempt, None, http.Response(400, headers=_NO_RETRY, content=content)
        provider_request = http_messages.request(
            http,
            outgoing.method,
            _url(http, outgoing.url),
            outgoing.headers,
            outgoing.body,
            _with_timeout(request.extensions, target.timeout, step),
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
        adapter = adapter_for(target.provider.wire, translation.endpoint)
        headers = _passed_headers(provider_response)
        if body is not None:
            problem = _bad_answer(translation, provider_response, body)
            try:
                status, content = (
                    (502, b"")
                    if problem
                    else adapter.translate_response(translation, provider_response.status_code, body)
                )
            except ValueError as exc:  # JSON that parsed by its shape but not as the provider's answer
                problem = f"its answer could not be read: {type(exc).__name__}: {exc}"
            if problem:
                message = f"unillm: {target.provider.name}/{target.model} {problem}"
                status, content = 502, openai_error(502, message, kind="server_error", code="bad_response")
            if "retry_after" in translation.extra and "retry-after" not in headers:
                headers["retry-after"] = str(translation.extra["retry_after"])
            headers["content-type"] = "application/json"
            response = http_messages.response(http, status, headers, content)
            tap_response(attempt, response, is_async=is_async)
            return response
        # The provider's own byte stream, translated and tapped as the SDK reads it.
        response = http.Response(
            200, headers={**headers, "content-type": "text/event-stream"}, stream=provider_response.stream
        )
        tap_response(attempt, response, is_async=is_async, translator=adapter.stream_translator(translation))
        return response

    def _judge(self, run: Run, step: Step, response: Any, refused: bool) -> str:
        """RETRY, FAILOVER or FINAL for an answer; the target's breaker learns from it."""
        status = response.status_code
        if refused:  # unillm answered itself (no key, unsupported parameter): another target may do
            return FAILOVER  # and the breaker judges the provider, not unillm's own refusals
        if _stream_failed_early(self._call.attempts[-1]):
            run.plan.record(step.target, ok=False)
            return RETRY  # if it was the last try, the app reads the failure from the stream itself
        retryable = is_retryable(status)
        run.plan.record(step.target, ok=not retryable)
        if retryable:
            return RETRY
        if status >= 400 or run.plan.failover_on_refusal:
            code, message, finish = _error_of(response) if status >= 400 else _finish_of(response)
            if is_context_window_error(status, code, message):
                return FAILOVER
            if run.plan.failover_on_refusal and is_refusal(status, code, finish):
                return FAILOVER
        return FINAL

    def _finish(self, run: Run, response: Any, http: Any) -> Any:
        """What the app gets from the run's last answer; the run's notes go into the call record."""
        self._call.route_reason = run.reason
        attempts = self._call.attempts
        if response.status_code >= 400:
            return _final_error(http, response, attempts, run.notes)
        if len(attempts) > 1 and _stream_failed_early(attempts[-1]) and isinstance(response.stream, _ReplayBase):
            response.stream.name_attempts(_chain(attempts, run.notes))
        return response

    def _gave_up(self, run: Run, exc: Exception, http: Any) -> Any:
        """The last attempt raised. With one attempt the app gets that exception, as without unillm;
        after several, one 502 (504 for a timeout) answer whose message names every attempt."""
        self._call.route_reason = run.reason
        if len(self._call.attempts) < 2:
            raise exc
        timeout = "timeout" in type(exc).__name__.lower()
        status, code = (504, "upstream_timeout") if timeout else (502, "upstream_unreachable")
        message = f"unillm: no target answered, the last failed with {type(exc).__name__}: {exc}"
        content = openai_error(status, message, kind="server_error", code=code)
        response = http.Response(status, headers=_NO_RETRY, content=content)
        return _final_error(http, response, self._call.attempts, run.notes)


def _with_timeout(extensions: dict[str, Any], timeout: float | None, step: Step | None) -> dict[str, Any]:
    """The SDK's timeouts, lowered to the target's own and to what is left of the call's time budget."""
    if step is None and timeout is None:
        return extensions
    limit = timeout if timeout is not None else float("inf")
    if step is not None:
        limit = min(limit, max(step.deadline - time.monotonic(), 0.001))
    current = extensions.get("timeout") or {}
    capped = {k: limit if v is None else min(v, limit) for k, v in current.items()} or dict.fromkeys(
        ("connect", "read", "write", "pool"), limit
    )
    return {**extensions, "timeout": capped}


def _error_of(response: Any) -> tuple[str | None, str | None, None]:
    """(code, message, None) of an OpenAI-wire error answer."""
    try:
        error = json.loads(response.content)["error"]
        return error.get("code") or error.get("type"), error.get("message"), None
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, None, None


def _finish_of(response: Any) -> tuple[None, None, str | None]:
    """(None, None, finish_reason) of a non-streamed OpenAI-wire answer (streams: not known yet)."""
    content = response.__dict__.get("_content")
    if content is None:
        return None, None, None
    try:
        return None, None, json.loads(content)["choices"][0].get("finish_reason")
    except (ValueError, KeyError, TypeError, IndexError):
        return None, None, None


def _bad_answer(translation: Translation, response: Any, body: bytes) -> str | None:
    """What is wrong with a success answer that is no answer (a proxy's HTML page, a cut body):
    the SDK would hand the app a str or raise a JSONDecodeError, so it counts as a server error."""
    if response.status_code >= 400:
        return None
    content_type = content_type_of(response)
    if translation.stream:
        return f"answered a stream request with content-type {content_type or '(none)'}, not text/event-stream"
    if "json" not in content_type:
        return f"answered with content-type {content_type or '(none)'}, not JSON"
    # Look at the ends only (no copy of the body): JSON bodies rarely carry whitespace around them.
    starts = body.startswith(b"{") or body.lstrip()[:1] == b"{"
    ends = body.endswith((b"}", b"}\n")) or body.rstrip()[-1:] == b"}"
    if not (starts and ends):
        return f"answered with malformed JSON ({len(body)} bytes)"
    return None


def _is_stream(translation: Translation, response: Any) -> bool:
    return (
        translation.stream
        and response.status_code < 400
        and "text/event-stream" in content_type_of(response)
    )


def _final_error(http: Any, response: Any, attempts: list[AttemptRecord], notes: list[str]) -> Any:
    """The last failure, its message naming every attempt (the app sees one error, not N)."""
    try:
        payload = json.loads(response.content)
        error = payload["error"]
    except (ValueError, KeyError, TypeError):
        return response
    error["message"] = f"{error.get('message')} {_chain(attempts, notes)}"
    headers = {**dict(response.headers), "x-should-retry": "false"}
    headers.pop("content-length", None)
    return http.Response(response.status_code, headers=headers, content=json.dumps(payload).encode())


def _chain(attempts: list[AttemptRecord], notes: list[str]) -> str:
    """`(unillm tried 3 times: anthropic/claude-... 529, ...; skipped ...)` for a final error's message."""
    chain = ", ".join(f"{a.provider}/{a.model} {_outcome(a)}" for a in attempts)
    skipped = "".join(f"; {note}" for note in notes if note.startswith(("skipped", "time budget")))
    return f"(unillm tried {len(attempts)} times: {chain}{skipped})"


def _outcome(attempt: AttemptRecord) -> str:
    if attempt.http_status is not None:
        return str(attempt.http_status)
    return attempt.transport_error.kind if attempt.transport_error else "failed"


def _stream_failed_early(attempt: AttemptRecord) -> bool:
    """The stream ended (error event, cut connection) before its first content chunk."""
    return attempt.ended and attempt.interrupted and attempt.t_first_token is None


def _check_events(buffered: list[bytes], attempt: AttemptRecord) -> None:
    """The events before the first content chunk must be JSON (the SDK raises JSONDecodeError on
    a cut one); a bad one ends the attempt as failed early, so the run can fail over."""
    for line in b"".join(buffered).split(b"\n"):
        if line.startswith(b"data:") and line[5:].strip() != b"[DONE]":
            try:
                json.loads(line[5:])
            except ValueError as exc:
                attempt.transport_error = ErrorNote.of(exc)
                attempt.end(interrupted=True)
                attempt.t_first_token = None
                return


class _ReplayBase:
    """A routed stream after its first chunk: the chunks read ahead, then the rest."""

    def __init__(self, buffered: list[bytes], rest: Any, stream: Any) -> None:
        self._buffered = buffered
        self._rest = rest
        self._stream = stream

    def name_attempts(self, chain: str) -> None:
        """Append `chain` to the message of the error event read ahead (the app's one final error)."""
        lines = b"".join(self._buffered).split(b"\n")
        for index, line in enumerate(lines):
            if not line.startswith(b"data:") or b'"error"' not in line:
                continue
            try:
                payload = json.loads(line[5:])
                error = payload["error"]
                error["message"] = f"{error.get('message')} {chain}"
            except (ValueError, KeyError, TypeError):
                continue
            lines[index] = b"data: " + json.dumps(payload).encode()
            self._buffered = [b"\n".join(lines)]
            return


class _SyncReplay(_ReplayBase):
    def __iter__(self) -> Iterator[bytes]:
        yield from self._buffered
        self._buffered = []
        yield from self._rest

    def close(self) -> None:
        try:
            self._rest.close()  # the tap's generator: ends the attempt as interrupted if unfinished
        finally:
            self._stream.close()


class _AsyncReplay(_ReplayBase):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._buffered:
            yield chunk
        self._buffered = []
        async for chunk in self._rest:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._rest.aclose()
        finally:
            await self._stream.aclose()


@functools.lru_cache(maxsize=4)
def _replay_classes(library: str) -> tuple[type, type]:
    """Replay streams that are instances of `library`'s own byte-stream types (httpx checks)."""
    module = importlib.import_module(library)
    return (
        type("SyncReplayStream", (_SyncReplay, module.SyncByteStream), {}),
        type("AsyncReplayStream", (_AsyncReplay, module.AsyncByteStream), {}),
    )


class SyncDispatchTransport(_Dispatch):
    def handle_request(self, request: Any) -> Any:
        if self._call.blocked:
            return self._blocked(request, is_async=False)
        if self._call.plan is None:
            return self._attempt(request, self._call.target, None)[0]
        http = _library(request)
        run = self._begin(request)
        step = run.first()
        while step is not None:
            if step.wait:
                time.sleep(step.wait)
            try:
                response, refused = self._attempt(request, step.target, step)
            except Exception as exc:
                run.plan.record(step.target, ok=False)
                step = run.next(RETRY)
                if step is None:
                    return self._gave_up(run, exc, http)
                continue
            outcome = self._judge(run, step, response, refused)
            if outcome is FINAL:
                return self._finish(run, response, http)
            following = run.next(outcome, response.headers)
            if following is None:
                return self._finish(run, response, http)
            response.close()
            step = following
        raise AssertionError("a route has at least one target")  # pragma: no cover

    def _attempt(self, request: Any, target: Target, step: Step | None) -> tuple[Any, bool]:
        """One attempt: (tapped OpenAI-wire response, whether unillm refused it before sending)."""
        attempt, translation, outgoing = self._prepare(request, target, step)
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
        translated = self._translated(target, http, attempt, translation, response, body, is_async=False)
        if body is None and step is not None:
            self._read_to_first_chunk(translated, attempt)
        return translated, False

    @staticmethod
    def _read_to_first_chunk(response: Any, attempt: AttemptRecord) -> None:
        """Read a routed stream up to its first content chunk (or its early end); a read error
        raises here, where the run can still fail over."""
        stream = response.stream
        rest = iter(stream)
        buffered: list[bytes] = []
        try:
            while attempt.t_first_token is None and not attempt.ended:
                buffered.append(next(rest))
        except StopIteration:
            pass
        except BaseException:
            stream.close()
            raise
        _check_events(buffered, attempt)
        response.stream = _replay_classes(_library(response).__name__)[0](buffered, rest, stream)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class AsyncDispatchTransport(_Dispatch):
    async def handle_async_request(self, request: Any) -> Any:
        if self._call.blocked:
            return self._blocked(request, is_async=True)
        if self._call.plan is None:
            return (await self._attempt(request, self._call.target, None))[0]
        http = _library(request)
        run = self._begin(request)
        step = run.first()
        while step is not None:
            if step.wait:
                await asyncio.sleep(step.wait)
            try:
                response, refused = await self._attempt(request, step.target, step)
            except Exception as exc:
                run.plan.record(step.target, ok=False)
                step = run.next(RETRY)
                if step is None:
                    return self._gave_up(run, exc, http)
                continue
            outcome = self._judge(run, step, response, refused)
            if outcome is FINAL:
                return self._finish(run, response, http)
            following = run.next(outcome, response.headers)
            if following is None:
                return self._finish(run, response, http)
            await response.aclose()
            step = following
        raise AssertionError("a route has at least one target")  # pragma: no cover

    async def _attempt(self, request: Any, target: Target, step: Step | None) -> tuple[Any, bool]:
        attempt, translation, outgoing = self._prepare(request, target, step)
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
        translated = self._translated(target, http, attempt, translation, response, body, is_async=True)
        if body is None and step is not None:
            await self._read_to_first_chunk(translated, attempt)
        return translated, False

    @staticmethod
    async def _read_to_first_chunk(response: Any, attempt: AttemptRecord) -> None:
        stream = response.stream
        rest = stream.__aiter__()
        buffered: list[bytes] = []
        try:
            while attempt.t_first_token is None and not attempt.ended:
                buffered.append(await rest.__anext__())
        except StopAsyncIteration:
            pass
        except BaseException:
            await stream.aclose()
            raise
        _check_events(buffered, attempt)
        response.stream = _replay_classes(_library(response).__name__)[1](buffered, rest, stream)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
