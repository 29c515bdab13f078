"""Side by side with other OpenAI instrumentation (issue 8): OpenTelemetry's own
`opentelemetry-instrumentation-openai-v2`, OpenLLMetry's `opentelemetry-instrumentation-openai` and
Langfuse's OpenAI wrapper (`from langfuse.openai import openai`), each patched before or after
unillm. With both active, the app gets exactly what it gets without any instrumentation (sync and
async, answers and streams, iterated, in `with` blocks, or left after one chunk); unillm's log has
one row per call with its tokens and cost; unillm's spans and the other tool's spans are both
there; a call unillm routes to (simulated) Anthropic gets its answer and the other tool's span; and
unpatching either one leaves the other working.

The OpenTelemetry instrumentations are reversible and run in-process, on the app's TracerProvider
with an in-memory exporter. Langfuse patches the SDK when `langfuse.openai` is imported and cannot
be undone, so each Langfuse scenario runs in a fresh interpreter (this file, run as a script) whose
Langfuse exports to an OTLP receiver on 127.0.0.1, with every other address behind a proxy that is
not there; the child prints its report as JSON and the test asserts on it.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from conftest import TEST_KEY

import unillm
from unillm import diagnostics
from unillm.testing import FakeAnthropic, FakeOpenAI, OTLPReceiver

ASK = [{"role": "user", "content": "Where is my parcel?"}]
MODEL = "gpt-4o-mini"
ROUTED = "anthropic/claude-sonnet-4-5"
# The calls of one run of the app, in order: to (simulated) OpenAI, then routed by unillm to Anthropic.
OPENAI_CALLS = ["answer", "stream", "with stream", "stopped early", "async answer", "async stream", "async with stream"]
ROUTED_CALLS = ["routed answer", "routed stream"]
ALL_CALLS = OPENAI_CALLS + ROUTED_CALLS

LANGFUSE_PUBLIC_KEY = "pk-lf-test-0000"
LANGFUSE_SECRET_KEY = "sk-lf-test-SECRET-1111"


@dataclass(frozen=True)
class Theirs:
    """How to recognise the other tool's spans, and what it says the model of a call was."""

    scope: str  # its instrumentation scope
    model_attribute: str
    routed_model: str  # what that attribute says for a call unillm routed to Anthropic
    unpatch_stops_spans: bool  # whether its own unpatch really stops its spans (asserted only then)
    module: str = ""  # where its OpenAIInstrumentor lives (the OpenTelemetry ones)


THEIRS = {
    "openai-v2": Theirs(
        scope="opentelemetry.instrumentation.openai_v2",
        model_attribute="gen_ai.request.model",
        routed_model=ROUTED,
        unpatch_stops_spans=True,
        module="opentelemetry.instrumentation.openai_v2",
    ),
    # OpenLLMetry's uninstrument() (0.62.4) leaves its wrappers in place: it calls
    # unwrap("openai.resources.chat.completions", "Completions.create"), which OpenTelemetry's unwrap()
    # reads as attribute "Completions.create" of module openai.resources.chat, does not find, and skips.
    # Its spans go on after uninstrument(), with or without unillm.
    "openllmetry": Theirs(
        scope="opentelemetry.instrumentation.openai.v1",
        model_attribute="gen_ai.request.model",
        routed_model=ROUTED,
        unpatch_stops_spans=False,
        module="opentelemetry.instrumentation.openai",
    ),
    # Langfuse names the model the answer came from; it has no unpatch at all.
    "langfuse": Theirs(
        scope="langfuse-sdk",
        model_attribute="langfuse.observation.model.name",
        routed_model="claude-sonnet-4-5",
        unpatch_stops_spans=False,
    ),
}


# -- what the app does, and what it sees ----------------------------------------------------------------


def _seen(obj: Any) -> dict[str, Any]:
    """Everything the app can read off a response or chunk, except the per-response id and clock."""
    return obj.model_dump(mode="json", exclude={"id", "created"})


class App:
    """The app: sync and async clients of the `openai` module it imported (Langfuse's re-export or the
    SDK itself), pointed at the simulated OpenAI; `provider/model` calls go where unillm sends them."""

    def __init__(self, sdk: Any, fake: FakeOpenAI) -> None:
        self.sdk = sdk
        self.base_url = fake.base_url
        self.client = sdk.OpenAI(base_url=fake.base_url, api_key=TEST_KEY, max_retries=0)

    def run(self) -> dict[str, Any]:
        """The calls of OPENAI_CALLS, in that order."""
        create = self.client.chat.completions.create
        seen: dict[str, Any] = {"answer": _seen(create(model=MODEL, messages=ASK))}
        seen["stream"] = [_seen(c) for c in create(model=MODEL, messages=ASK, stream=True)]
        with create(model=MODEL, messages=ASK, stream=True) as stream:
            seen["with stream"] = [_seen(c) for c in stream]
        with create(model=MODEL, messages=ASK, stream=True) as stream:
            seen["stopped early"] = [_seen(next(iter(stream)))]  # the app stops reading after one chunk
        del stream
        gc.collect()  # openai-v2's wrapper closes the SDK's stream only when it is collected
        seen.update(asyncio.run(self._run_async()))
        return seen

    async def _run_async(self) -> dict[str, Any]:
        client = self.sdk.AsyncOpenAI(base_url=self.base_url, api_key=TEST_KEY, max_retries=0)
        create = client.chat.completions.create
        seen: dict[str, Any] = {"async answer": _seen(await create(model=MODEL, messages=ASK))}
        seen["async stream"] = [_seen(c) async for c in await create(model=MODEL, messages=ASK, stream=True)]
        async with await create(model=MODEL, messages=ASK, stream=True) as stream:
            seen["async with stream"] = [_seen(c) async for c in stream]
        await client.close()
        return seen

    def run_routed(self) -> dict[str, Any]:
        """The calls of ROUTED_CALLS."""
        create = self.client.chat.completions.create
        answer = create(model=ROUTED, messages=ASK)
        return {
            "routed answer": _seen(answer),
            "routed stream": [_seen(c) for c in create(model=ROUTED, messages=ASK, stream=True)],
        }

    def run_a_little(self) -> dict[str, Any]:
        create = self.client.chat.completions.create
        answer = create(model=MODEL, messages=ASK)
        return {"answer": _seen(answer), "stream": [_seen(c) for c in create(model=MODEL, messages=ASK, stream=True)]}


# -- one scenario, for any of the three tools -----------------------------------------------------------


class Tool:
    """The other instrumentation: switching it on and off, and the spans exported so far."""

    name: str
    can_unpatch = True

    def install(self) -> Any:
        """Switch it on; returns the `openai` module the app uses with it."""
        raise NotImplementedError

    def uninstall(self) -> None:
        raise NotImplementedError

    def spans(self) -> list[dict[str, Any]]:
        """Every span exported so far, theirs and unillm's, as plain dicts."""
        raise NotImplementedError


def _patch_unillm(log: Path, anthropic: FakeAnthropic) -> None:
    unillm.patch(
        log=str(log),
        flush_interval=0.05,
        fold_interval=0.2,
        providers={"anthropic": {"base_url": anthropic.base_url, "api_key": "test-key-anthropic"}},
    )


def _calls(log: Path) -> list[dict[str, Any]]:
    unillm.flush()
    columns = "request_model, provider, stream, status, input_tokens, output_tokens, cost_usd, trace_id, span_id"
    return unillm.sql(f"select {columns} from calls order by started_at", log=str(log)).to_dicts()


def run_scenario(tool: Tool, order: str, workdir: Path, app_setup: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """Everything a test asserts on, as JSON-able data (a child interpreter hands it back)."""
    report: dict[str, Any] = {"tool": tool.name, "order": order}
    with FakeOpenAI() as fake, FakeAnthropic() as anthropic:
        # What the app gets with no instrumentation at all, and a routed call's answer with unillm alone.
        report["baseline"] = App(openai, fake).run()
        _patch_unillm(workdir / "reference" / "calls.duckdb", anthropic)
        report["reference"] = App(openai, fake).run_routed()
        unillm.unpatch()
        app_setup()

        log = workdir / "log" / "calls.duckdb"
        if order == "unillm first":
            _patch_unillm(log, anthropic)
            sdk = tool.install()
        else:
            sdk = tool.install()
            _patch_unillm(log, anthropic)
        app = App(sdk, fake)
        report["both"] = {**app.run(), **app.run_routed()}
        report["calls"] = _calls(log)
        report["spans"] = tool.spans()

        # Unpatch the one patched first, from under the other; the other goes on working. (Langfuse
        # cannot be unpatched: with it first, unillm is unpatched from on top of it instead.)
        first = "unillm" if order == "unillm first" or not tool.can_unpatch else tool.name
        if first == "unillm":
            unillm.unpatch()
        else:
            tool.uninstall()
        report["unpatched"] = first
        report["alone"] = app.run_a_little()
        report["calls after"] = _calls(log)
        report["spans after"] = tool.spans()
        unillm.unpatch()
        report["anthropic requests"] = len(anthropic.requests)
    return report


def check(report: dict[str, Any]) -> None:
    """What a user of both tools must find, whichever tool and order."""
    theirs_are = THEIRS[report["tool"]]
    baseline, both = report["baseline"], report["both"]
    # The app's results are unchanged: every answer, usage and stream chunk as without instrumentation.
    assert {call: both[call] for call in OPENAI_CALLS} == baseline
    assert baseline["answer"]["choices"][0]["message"]["content"]
    assert len(baseline["stream"]) > 2 and baseline["with stream"] == baseline["stream"]
    # The routed calls reached Anthropic (2 in the reference run, 2 here) and the app got its answers.
    assert {call: both[call] for call in ROUTED_CALLS} == report["reference"]
    assert both["routed answer"]["choices"][0]["message"]["content"]
    assert report["anthropic requests"] == 2 * len(ROUTED_CALLS)

    # unillm recorded each call once, with tokens and cost.
    calls = report["calls"]
    assert [c["request_model"] for c in calls] == [MODEL] * len(OPENAI_CALLS) + [ROUTED] * len(ROUTED_CALLS)
    assert [c["provider"] for c in calls[-len(ROUTED_CALLS) :]] == ["anthropic"] * len(ROUTED_CALLS)
    statuses = {call: row["status"] for call, row in zip(ALL_CALLS, calls, strict=True)}
    assert statuses == {call: "interrupted" if call == "stopped early" else "ok" for call in ALL_CALLS}
    for call, row in zip(ALL_CALLS, calls, strict=True):
        if row["status"] == "ok":
            assert row["input_tokens"] > 0 and row["output_tokens"] > 0 and row["cost_usd"] > 0, (call, row)
    for call in ("answer", "async answer", "routed answer"):
        usage, row = both[call]["usage"], calls[ALL_CALLS.index(call)]
        assert (row["input_tokens"], row["output_tokens"]) == (usage["prompt_tokens"], usage["completion_tokens"])

    # unillm's spans: one per call, joined to its row. Theirs: one per call, the routed ones included.
    ours, theirs = _by_call(report["spans"], "unillm"), _by_call(report["spans"], theirs_are.scope)
    assert [s["span_id"] for s in ours.values()] == [row["span_id"] for row in calls]
    assert [s["attributes"]["gen_ai.request.model"] for s in ours.values()] == [c["request_model"] for c in calls]
    their_models = [s["attributes"].get(theirs_are.model_attribute) for s in theirs.values()]
    assert their_models == [MODEL] * len(OPENAI_CALLS) + [theirs_are.routed_model] * len(ROUTED_CALLS)

    # With one of them unpatched, the other goes on working, and the app still gets the same results.
    assert report["alone"] == {"answer": baseline["answer"], "stream": baseline["stream"]}
    added_calls = report["calls after"][len(calls) :]
    known = {s["span_id"] for s in report["spans"]}
    new_spans = [s for s in report["spans after"] if s["span_id"] not in known]
    new_ours = [s for s in new_spans if s["scope"] == "unillm"]
    new_theirs = [s for s in new_spans if s["scope"] == theirs_are.scope]
    if report["unpatched"] == "unillm":
        assert added_calls == [] and new_ours == []
        assert len(new_theirs) == 2
    else:
        assert [(c["status"], c["stream"]) for c in added_calls] == [("ok", False), ("ok", True)]
        assert all(c["input_tokens"] > 0 and c["output_tokens"] > 0 and c["cost_usd"] > 0 for c in added_calls)
        assert sorted(s["span_id"] for s in new_ours) == sorted(c["span_id"] for c in added_calls)
        if theirs_are.unpatch_stops_spans:
            assert new_theirs == []


def _by_call(spans: list[dict[str, Any]], scope: str) -> dict[str, dict[str, Any]]:
    """The spans of one scope from the run with both tools: exactly one per call, by call."""
    mine = sorted((s for s in spans if s["scope"] == scope), key=lambda s: s["start"])
    assert len(mine) == len(ALL_CALLS), (scope, [s["name"] for s in mine])
    return dict(zip(ALL_CALLS, mine, strict=True))


# -- the OpenTelemetry instrumentations, in-process ----------------------------------------------------------


class OTelTool(Tool):
    def __init__(self, name: str) -> None:
        self.name = name
        self.module = THEIRS[name].module
        self.app_telemetry: Any = None  # the app's AppTelemetry, set up before either tool
        self.instrumentor: Any = None

    def install(self) -> Any:
        self.instrumentor = importlib.import_module(self.module).OpenAIInstrumentor()
        self.instrumentor.instrument()
        return openai

    def uninstall(self) -> None:
        if self.instrumentor is not None and self.instrumentor.is_instrumented_by_opentelemetry:
            self.instrumentor.uninstrument()

    def clean_up(self) -> None:
        """Uninstrument, and take off what uninstrument() left behind (OpenLLMetry's wrappers, see
        THEIRS), so that later tests get the SDK as it was."""
        import wrapt

        self.uninstall()
        for name, module in list(sys.modules.items()):
            if not name.startswith("openai.resources") or module is None:
                continue
            for owner in list(vars(module).values()):
                if not isinstance(owner, type):
                    continue
                for attribute, value in list(vars(owner).items()):
                    wrapper = (
                        getattr(value, "_self_wrapper", None) if isinstance(value, wrapt.FunctionWrapper) else None
                    )
                    if getattr(wrapper, "__module__", "").startswith(self.module + "."):
                        setattr(owner, attribute, value.__wrapped__)

    def spans(self) -> list[dict[str, Any]]:
        return [
            {
                "scope": s.instrumentation_scope.name if s.instrumentation_scope else "",
                "name": s.name,
                "trace_id": format(s.context.trace_id, "032x"),
                "span_id": format(s.context.span_id, "016x"),
                "parent_span_id": format(s.parent.span_id, "016x") if s.parent else "",
                "start": s.start_time,
                "attributes": json.loads(json.dumps(dict(s.attributes or {}), default=str)),
            }
            for s in self.app_telemetry.finished()
        ]


@pytest.fixture
def app_telemetry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Callable[[], Any]]:
    """Sets up, when called, what an app using the OpenTelemetry SDK has: global providers with an
    in-memory exporter (test_otel.AppTelemetry). No OTLP variables, no stray unillm.toml."""
    from opentelemetry.test.globals_test import reset_metrics_globals, reset_trace_globals
    from test_otel import AppTelemetry

    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    reset_trace_globals()
    reset_metrics_globals()
    yield AppTelemetry
    unillm.unpatch()
    diagnostics.reset()
    reset_trace_globals()
    reset_metrics_globals()


@pytest.mark.parametrize("order", ["unillm first", "theirs first"])
@pytest.mark.parametrize("name", ["openai-v2", "openllmetry"])
def test_beside_an_opentelemetry_instrumentation(
    name: str, order: str, app_telemetry: Callable[[], Any], tmp_path: Path
) -> None:
    tool = OTelTool(name)

    def set_up_the_app() -> None:  # the app sets its providers before instrumenting anything
        tool.app_telemetry = app_telemetry()

    try:
        report = run_scenario(tool, order, tmp_path, set_up_the_app)
    finally:
        tool.clean_up()
    check(report)
    # Their span is current while the SDK sends, so unillm's span of each call sits under theirs.
    ours, theirs = _by_call(report["spans"], "unillm"), _by_call(report["spans"], THEIRS[name].scope)
    for call in ALL_CALLS:
        assert ours[call]["parent_span_id"] == theirs[call]["span_id"], call
        assert ours[call]["trace_id"] == theirs[call]["trace_id"], call


# -- Langfuse, in a child interpreter --------------------------------------------------------------------------


class LangfuseTool(Tool):
    name = "langfuse"
    can_unpatch = False  # patched at import, for good

    def __init__(self, receiver: OTLPReceiver) -> None:
        self.receiver = receiver

    def install(self) -> Any:
        from langfuse.openai import openai as wrapped  # the documented drop-in import

        return wrapped

    def spans(self) -> list[dict[str, Any]]:
        from langfuse import get_client

        unillm.flush()  # unillm makes its spans on its recorder thread, on the global TracerProvider,
        get_client().flush()  # which is Langfuse's: its exporter sends them along with its own
        return [
            {
                "scope": s.scope,
                "name": s.name,
                "trace_id": s.trace_id,
                "span_id": s.span_id,
                "parent_span_id": s.parent_span_id,
                "start": s.start_ns,
                "attributes": json.loads(json.dumps(s.attributes, default=str)),
            }
            for s in self.receiver.spans
        ]


def _langfuse_child(order: str) -> None:
    """One Langfuse scenario in this fresh interpreter; the report goes to stdout as JSON."""
    with OTLPReceiver() as receiver, tempfile.TemporaryDirectory(prefix="unillm-langfuse-") as workdir:
        os.environ["LANGFUSE_HOST"] = os.environ["LANGFUSE_BASE_URL"] = receiver.url
        os.environ["LANGFUSE_OTEL_TRACES_EXPORT_PATH"] = "v1/traces"  # the receiver's path
        os.chdir(workdir)  # no stray unillm.toml
        report = run_scenario(LangfuseTool(receiver), order, Path(workdir))
        from langfuse._client.resource_manager import LangfuseResourceManager

        LangfuseResourceManager.reset()  # flush and stop its threads while the receiver still listens
        report["exports"] = [
            {"method": r.method, "path": r.path, "authorization": r.headers.get("authorization")}
            for r in receiver.requests
        ]
    print("REPORT " + json.dumps(report))


@pytest.mark.parametrize("order", ["unillm first", "theirs first"])
def test_beside_langfuse(order: str, tmp_path: Path) -> None:
    if importlib.util.find_spec("langfuse") is None:  # not imported here: that would patch this process's SDK
        pytest.skip("langfuse is not installed")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LANGFUSE_", "UNILLM_"))}
    env.update(
        LANGFUSE_PUBLIC_KEY=LANGFUSE_PUBLIC_KEY,
        LANGFUSE_SECRET_KEY=LANGFUSE_SECRET_KEY,
        LANGFUSE_HOST="http://127.0.0.1:9",  # the child puts its receiver's address here
        # Anything headed beyond 127.0.0.1 goes to a proxy that is not there, and fails.
        HTTP_PROXY="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9",
        ALL_PROXY="http://127.0.0.1:9",
        NO_PROXY="127.0.0.1,localhost",
    )
    child = subprocess.run(
        [sys.executable, __file__, "langfuse", order],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=tmp_path,
    )
    assert child.returncode == 0, child.stderr[-4000:]
    [line] = [line for line in child.stdout.splitlines() if line.startswith("REPORT ")]
    report = json.loads(line.removeprefix("REPORT "))

    check(report)
    theirs = _by_call(report["spans"], THEIRS["langfuse"].scope)
    assert {s["attributes"]["langfuse.observation.type"] for s in theirs.values()} == {"generation"}
    for call in ("answer", "routed answer"):  # Langfuse has the usage the app saw
        usage = json.loads(theirs[call]["attributes"]["langfuse.observation.usage_details"])
        assert usage["prompt_tokens"] == report["both"][call]["usage"]["prompt_tokens"]
    # Langfuse exported to the local receiver only, signed with the test project's keys.
    signed = "Basic " + base64.b64encode(f"{LANGFUSE_PUBLIC_KEY}:{LANGFUSE_SECRET_KEY}".encode()).decode()
    assert report["exports"]
    assert {(e["method"], e["path"], e["authorization"]) for e in report["exports"]} == {("POST", "/v1/traces", signed)}


if __name__ == "__main__":  # the child interpreter of test_beside_langfuse
    if sys.argv[1:2] != ["langfuse"] or len(sys.argv) != 3:
        raise SystemExit("usage: test_side_by_side.py langfuse 'unillm first'|'theirs first'")
    _langfuse_child(sys.argv[2])
