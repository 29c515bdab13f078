"""The simulated Gemini Developer API, exercised through the official ``google-genai`` SDK."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pydantic
import pytest

genai = pytest.importorskip("google.genai")
from google.genai import errors, types  # noqa: E402

from unillm.testing import FAULT_HEADER, FakeGemini  # noqa: E402
from unillm.testing.synthetic import count_tokens  # noqa: E402

pytestmark = pytest.mark.sdk_independent  # scripts/test runs it in one openai environment only

FLASH = "gemini-2.5-flash"  # thinks by default
PLAIN = "gemini-2.0-flash"  # does not think
PROMPT = "Tell me about the weather in Paris"
NO_AFC = types.AutomaticFunctionCallingConfig(disable=True)


class City(pydantic.BaseModel):
    name: str
    population: int = pydantic.Field(ge=1000)
    districts: list[str]
    capital: bool


def get_weather(city: str, unit: str = "c") -> str:
    """The current weather in a city."""
    return "sunny"


def get_time(timezone: str) -> str:
    """The current time in a timezone."""
    return "noon"


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini() as server:
        yield server


@pytest.fixture
def client(fake: FakeGemini) -> Iterator[Any]:
    with genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=fake.base_url)) as c:
        yield c


@pytest.fixture
async def aclient(fake: FakeGemini) -> AsyncIterator[Any]:
    c = genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=fake.base_url))
    async with c.aio as ac:
        yield ac


def raw_post(
    fake: FakeGemini, method: str, body: Any, *, model: str = FLASH, key: str | None = "k", **params: str
) -> httpx.Response:
    headers = {"x-goog-api-key": key} if key else {}
    url = f"{fake.url}/v1beta/models/{model}:{method}"
    return httpx.post(url, json=body, headers=headers, params=params, timeout=10)


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "parts": [{"text": text}]}


# --- generateContent -----------------------------------------------------------------------


def test_text_answer_usage_and_identity(fake: FakeGemini, client: Any) -> None:
    r = client.models.generate_content(model=PLAIN, contents=PROMPT)
    assert r.text.startswith("Simulated answer about Tell me about the weather")
    assert r.candidates[0].finish_reason == types.FinishReason.STOP
    assert r.candidates[0].content.role == "model"
    assert r.model_version == PLAIN and r.response_id
    u = r.usage_metadata
    assert u.prompt_token_count == count_tokens(PROMPT)
    assert u.candidates_token_count == count_tokens(r.text)
    assert u.thoughts_token_count is None and u.cached_content_token_count is None
    assert u.total_token_count == u.prompt_token_count + u.candidates_token_count
    assert u.prompt_tokens_details[0].modality == types.MediaModality.TEXT
    req = fake.requests[-1]
    assert req.path.endswith(f"/models/{PLAIN}:generateContent") and req.headers["x-goog-api-key"] == "test-key"
    # Deterministic: the same prompt gets the same text.
    assert client.models.generate_content(model=PLAIN, contents=PROMPT).text == r.text


def test_system_instruction_and_multi_turn(fake: FakeGemini, client: Any) -> None:
    bare = client.models.generate_content(model=PLAIN, contents="Hello")
    r = client.models.generate_content(
        model=PLAIN, contents="Hello", config=types.GenerateContentConfig(system_instruction="Answer like a pirate")
    )
    assert fake.requests[-1].json["systemInstruction"]["parts"][0]["text"] == "Answer like a pirate"
    assert r.usage_metadata.prompt_token_count == bare.usage_metadata.prompt_token_count + count_tokens(
        "Answer like a pirate"
    )
    chat = client.chats.create(model=PLAIN)
    first = chat.send_message("Name a colour")
    second = chat.send_message("Now a fruit please")
    assert "Name a colour" in first.text and "Now a fruit please" in second.text
    roles = [c["role"] for c in fake.requests[-1].json["contents"]]
    assert roles == ["user", "model", "user"]


def test_function_calling_round_trip(fake: FakeGemini, client: Any) -> None:
    config = types.GenerateContentConfig(tools=[get_weather, get_time], automatic_function_calling=NO_AFC)
    first = client.models.generate_content(model=FLASH, contents="Weather and time in Paris?", config=config)
    calls = first.function_calls
    assert [c.name for c in calls] == ["get_weather", "get_time"]  # AUTO with two tools: both, in parallel
    assert calls[0].args == {"city": "sample city"} and calls[1].args == {"timezone": "sample timezone"}
    assert first.candidates[0].finish_reason == types.FinishReason.STOP  # Gemini says STOP, not "tool calls"
    assert first.candidates[0].content.parts[0].thought_signature  # thinking models sign their calls

    history = [
        types.Content(role="user", parts=[types.Part(text="Weather and time in Paris?")]),
        first.candidates[0].content,
        types.Content(
            role="user",
            parts=[
                types.Part.from_function_response(name="get_weather", response={"result": "sunny and 22C"}),
                types.Part.from_function_response(name="get_time", response={"result": "noon"}),
            ],
        ),
    ]
    second = client.models.generate_content(model=FLASH, contents=history, config=config)
    assert second.function_calls is None
    assert second.text.startswith("Simulated answer using the tool result about sunny and 22C")
    # The signature went back to the server as base64, exactly as it came.
    sent = fake.requests[-1].json["contents"][1]["parts"][0]
    assert sent["thoughtSignature"] and sent["functionCall"]["name"] == "get_weather"


def test_function_calling_modes(client: Any) -> None:
    def config(mode: str, allowed: list[str] | None = None) -> types.GenerateContentConfig:
        return types.GenerateContentConfig(
            tools=[get_weather, get_time],
            automatic_function_calling=NO_AFC,
            tool_config=types.ToolConfig(
                function_calling_config=types.FunctionCallingConfig(
                    mode=types.FunctionCallingConfigMode(mode), allowed_function_names=allowed
                )
            ),
        )

    any_one = client.models.generate_content(model=PLAIN, contents="Time?", config=config("ANY", ["get_time"]))
    assert [c.name for c in any_one.function_calls] == ["get_time"]
    assert any_one.candidates[0].content.parts[0].thought_signature is None  # no thinking, no signature
    none = client.models.generate_content(model=PLAIN, contents="Time?", config=config("NONE"))
    assert none.function_calls is None and none.text
    # OpenAPI-style `parameters` (upper-case types) work as well as JSON schema.
    decl = types.FunctionDeclaration(
        name="lookup",
        parameters=types.Schema(
            type=types.Type.OBJECT,
            properties={
                "id": types.Schema(type=types.Type.INTEGER),
                "tags": types.Schema(type=types.Type.ARRAY, items=types.Schema(type=types.Type.STRING)),
            },
            required=["id", "tags"],
        ),
    )
    r = client.models.generate_content(
        model=PLAIN,
        contents="Look it up",
        config=types.GenerateContentConfig(tools=[types.Tool(function_declarations=[decl])]),
    )
    assert r.function_calls[0].args == {"id": 1, "tags": ["sample tags"]}


def test_structured_output(client: Any) -> None:
    config = types.GenerateContentConfig(response_mime_type="application/json", response_schema=City)
    r = client.models.generate_content(model=FLASH, contents="Describe Paris", config=config)
    assert isinstance(r.parsed, City) and r.parsed.population >= 1000
    assert list(json.loads(r.text)) == ["name", "population", "districts", "capital"]  # propertyOrdering
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    r = client.models.generate_content(
        model=FLASH,
        contents="Is it ok?",
        config=types.GenerateContentConfig(response_mime_type="application/json", response_json_schema=schema),
    )
    assert json.loads(r.text) == {"ok": True}


def test_thinking_tokens(fake: FakeGemini, client: Any) -> None:
    r = client.models.generate_content(model=FLASH, contents=PROMPT)
    u = r.usage_metadata
    assert u.thoughts_token_count and u.thoughts_token_count > 0
    # Thoughts are billed output outside candidatesTokenCount; the total has both.
    assert u.candidates_token_count == count_tokens(r.text)
    assert u.total_token_count == u.prompt_token_count + u.candidates_token_count + u.thoughts_token_count

    off = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(thinking_budget=0))
    assert (
        client.models.generate_content(model=FLASH, contents=PROMPT, config=off).usage_metadata.thoughts_token_count
        is None
    )

    on = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(thinking_budget=20, include_thoughts=True))
    r = client.models.generate_content(model=PLAIN, contents=PROMPT, config=on)
    assert r.usage_metadata.thoughts_token_count == 20  # the budget caps thinking
    thought, answer = r.candidates[0].content.parts
    assert thought.thought is True and thought.text and answer.thought is None
    assert r.text == answer.text  # .text skips thought parts

    with pytest.raises(errors.ClientError) as exc:
        client.models.generate_content(model="gemini-2.5-pro", contents=PROMPT, config=off)
    assert exc.value.code == 400 and "only works in thinking mode" in str(exc.value.message)


def test_implicit_cache(fake: FakeGemini, client: Any) -> None:
    config = types.GenerateContentConfig(system_instruction="You are a meticulous travel agent " * 20)
    first = client.models.generate_content(model=PLAIN, contents=PROMPT, config=config)
    assert first.usage_metadata.cached_content_token_count is None
    second = client.models.generate_content(model=PLAIN, contents="Another question entirely", config=config)
    cached = second.usage_metadata.cached_content_token_count
    assert cached == count_tokens("You are a meticulous travel agent " * 20)
    assert cached < second.usage_metadata.prompt_token_count  # cached tokens are part of the prompt count
    assert second.usage_metadata.cache_tokens_details[0].token_count == cached
    fake.clear()
    third = client.models.generate_content(model=PLAIN, contents="Another question entirely", config=config)
    assert third.usage_metadata.cached_content_token_count is None


def test_max_tokens_and_stop_sequences(client: Any) -> None:
    r = client.models.generate_content(
        model=PLAIN, contents=PROMPT, config=types.GenerateContentConfig(max_output_tokens=4)
    )
    assert r.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert 0 < r.usage_metadata.candidates_token_count <= 4
    # On a thinking model, thoughts spend maxOutputTokens first and can leave nothing visible.
    r = client.models.generate_content(
        model=FLASH, contents=PROMPT, config=types.GenerateContentConfig(max_output_tokens=4)
    )
    assert r.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert r.candidates[0].content.parts is None and r.text is None
    assert r.usage_metadata.thoughts_token_count == 4 and r.usage_metadata.candidates_token_count is None

    r = client.models.generate_content(
        model=PLAIN, contents=PROMPT, config=types.GenerateContentConfig(stop_sequences=["weather"])
    )
    assert r.text == "Simulated answer about Tell me about the "
    assert r.candidates[0].finish_reason == types.FinishReason.STOP


def test_candidate_count(client: Any) -> None:
    r = client.models.generate_content(
        model=PLAIN, contents=PROMPT, config=types.GenerateContentConfig(candidate_count=2)
    )
    assert [c.index for c in r.candidates] == [0, 1]
    assert r.usage_metadata.candidates_token_count == 2 * count_tokens(r.candidates[0].content.parts[0].text)


@pytest.mark.parametrize("reason", ["SAFETY", "RECITATION", "MAX_TOKENS", "MALFORMED_FUNCTION_CALL", "OTHER"])
def test_forced_finish_reasons(fake: FakeGemini, client: Any, reason: str) -> None:
    fake.force_finish_reason = reason
    config = types.GenerateContentConfig(tools=[get_weather], automatic_function_calling=NO_AFC)
    r = client.models.generate_content(model=PLAIN, contents=PROMPT, config=config)
    candidate = r.candidates[0]
    assert candidate.finish_reason == types.FinishReason(reason)
    if reason == "MAX_TOKENS":
        assert candidate.content.role == "model"
    else:
        assert candidate.content is None and r.text is None and r.function_calls is None
        assert r.usage_metadata.candidates_token_count is None
    if reason == "SAFETY":
        blocked = [s for s in candidate.safety_ratings if s.blocked]
        assert blocked[0].category == types.HarmCategory.HARM_CATEGORY_DANGEROUS_CONTENT
    if reason == "MALFORMED_FUNCTION_CALL":
        # The wire carries finishMessage, but google-genai 3.4's _Candidate_from_mldev drops it.
        assert candidate.finish_message is None
        body = {"contents": [user(PROMPT)], "tools": [{"functionDeclarations": [{"name": "get_weather"}]}]}
        wire = raw_post(fake, "generateContent", body, model=PLAIN).json()["candidates"][0]
        assert wire["finishMessage"].startswith("Malformed function call: print(default_api.get_weather(")
        assert "content" not in wire
    fake.force_finish_reason = None
    assert client.models.generate_content(model=PLAIN, contents=PROMPT).candidates[0].finish_reason == "STOP"
    with pytest.raises(ValueError):
        fake.force_finish_reason = "TOOL_CALLS"


# --- streamGenerateContent -----------------------------------------------------------------


def test_stream_text_pieces_and_usage(fake: FakeGemini, client: Any) -> None:
    whole = client.models.generate_content(model=FLASH, contents=PROMPT)
    chunks = list(client.models.generate_content_stream(model=FLASH, contents=PROMPT))
    assert len(chunks) > 2 and "".join(c.text for c in chunks) == whole.text
    assert fake.requests[-1].query == {"alt": "sse"}
    assert [c.candidates[0].finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    counts = [c.usage_metadata.candidates_token_count for c in chunks]
    assert counts == sorted(counts)  # cumulative
    last = chunks[-1].usage_metadata
    full = whole.usage_metadata
    assert (last.prompt_token_count, last.candidates_token_count, last.thoughts_token_count) == (
        full.prompt_token_count,
        full.candidates_token_count,
        full.thoughts_token_count,
    )
    assert len({c.response_id for c in chunks}) == 1


def test_stream_function_calls_and_blocks(fake: FakeGemini, client: Any) -> None:
    config = types.GenerateContentConfig(tools=[get_weather], automatic_function_calling=NO_AFC)
    chunks = list(client.models.generate_content_stream(model=PLAIN, contents="Weather?", config=config))
    assert len(chunks) == 1  # calls arrive whole
    assert chunks[0].function_calls[0].name == "get_weather"
    assert chunks[0].candidates[0].finish_reason == types.FinishReason.STOP

    fake.force_finish_reason = "SAFETY"
    chunks = list(client.models.generate_content_stream(model=PLAIN, contents=PROMPT))
    assert chunks[0].text  # some text streamed before the block
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.SAFETY
    assert chunks[-1].candidates[0].content is None


def test_mid_stream_error_raises(fake: FakeGemini, client: Any) -> None:
    fake.fail_stream_next(after_chunks=2, message="Backend went away")
    seen: list[str] = []
    with pytest.raises(errors.ServerError) as exc:
        for chunk in client.models.generate_content_stream(model=PLAIN, contents=PROMPT):
            seen.append(chunk.text)
    assert len(seen) == 2
    assert exc.value.code == 500 and exc.value.status == "INTERNAL" and exc.value.message == "Backend went away"


async def test_async_generate_and_stream(fake: FakeGemini, aclient: Any) -> None:
    r = await aclient.models.generate_content(model=PLAIN, contents=PROMPT)
    pieces = [c.text async for c in await aclient.models.generate_content_stream(model=PLAIN, contents=PROMPT)]
    assert "".join(pieces) == r.text and len(pieces) > 1
    fake.fail_stream_next(after_chunks=1)
    with pytest.raises(errors.ServerError):
        async for _ in await aclient.models.generate_content_stream(model=PLAIN, contents=PROMPT):
            pass
    fake.fail_next(status=503)
    with pytest.raises(errors.ServerError) as exc:
        await aclient.models.generate_content(model=PLAIN, contents=PROMPT)
    assert (exc.value.code, exc.value.status) == (503, "UNAVAILABLE")


def test_sse_wire_framing(fake: FakeGemini) -> None:
    with httpx.stream(
        "POST",
        f"{fake.url}/v1beta/models/{PLAIN}:streamGenerateContent",
        params={"alt": "sse"},
        headers={"x-goog-api-key": "k"},
        json={"contents": [user(PROMPT)]},
        timeout=10,
    ) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        raw = resp.read()
    events = raw.split(b"\r\n\r\n")
    assert events[-1] == b"" and len(events) > 2  # every event, the last included, ends in CRLF CRLF
    payloads = [json.loads(e.removeprefix(b"data: ")) for e in events[:-1]]
    assert all(e.startswith(b"data: {") for e in events[:-1]) and b"[DONE]" not in raw
    assert all(set(p) == {"candidates", "usageMetadata", "modelVersion", "responseId"} for p in payloads)
    assert "finishReason" not in payloads[0]["candidates"][0]
    assert payloads[-1]["candidates"][0]["finishReason"] == "STOP"

    # Without alt=sse the API streams one JSON array instead.
    r = raw_post(fake, "streamGenerateContent", {"contents": [user(PROMPT)]}, model=PLAIN)
    assert r.headers["content-type"].startswith("application/json")
    array = r.json()
    assert len(array) == len(payloads) and len({p["responseId"] for p in array}) == 1
    assert "".join(p["candidates"][0]["content"]["parts"][0]["text"] for p in array).startswith("Simulated")
    fake.fail_stream_next(after_chunks=1)
    array = raw_post(fake, "streamGenerateContent", {"contents": [user(PROMPT)]}, model=PLAIN).json()
    assert len(array) == 2 and array[1]["error"]["status"] == "INTERNAL"  # still one valid JSON array


# --- embeddings, countTokens, models --------------------------------------------------------


def test_embeddings(fake: FakeGemini, client: Any) -> None:
    one = client.models.embed_content(model="gemini-embedding-001", contents="hello world")
    assert len(one.embeddings) == 1 and len(one.embeddings[0].values) == fake.embedding_dimensions
    assert fake.requests[-1].path.endswith(":batchEmbedContents")  # the SDK batches even one text
    many = client.models.embed_content(
        model="gemini-embedding-001",
        contents=["hello world", "goodbye world"],
        config=types.EmbedContentConfig(output_dimensionality=16, task_type="RETRIEVAL_QUERY"),
    )
    assert [len(e.values) for e in many.embeddings] == [16, 16]
    assert many.embeddings[0].values != many.embeddings[1].values
    assert fake.requests[-1].json["requests"][0]["taskType"] == "RETRIEVAL_QUERY"

    r = raw_post(fake, "embedContent", {"content": {"parts": [{"text": "hello world"}]}}, model="gemini-embedding-001")
    assert r.json() == {"embedding": {"values": one.embeddings[0].values}}
    r = raw_post(fake, "embedContent", {"content": {"parts": [{"text": "x"}]}}, model="my-own-embedder")
    assert r.status_code == 200  # a model the fake does not list is accepted for any method
    r = raw_post(fake, "embedContent", {"content": {"parts": [{"text": "x"}]}}, model=FLASH)
    assert r.status_code == 404 and "not supported for embedContent" in r.json()["error"]["message"]
    r = raw_post(fake, "generateContent", {"contents": [user("x")]}, model="gemini-embedding-001")
    assert r.status_code == 404 and "not supported for generateContent" in r.json()["error"]["message"]


def test_count_tokens_and_models(client: Any) -> None:
    assert client.models.count_tokens(model=FLASH, contents=PROMPT).total_tokens == count_tokens(PROMPT)
    names = [m.name for m in client.models.list()]
    assert "models/gemini-2.5-flash" in names and "models/gemini-embedding-001" in names
    model = client.models.get(model=FLASH)
    assert model.input_token_limit == 1_048_576 and "generateContent" in model.supported_actions
    with pytest.raises(errors.ClientError) as exc:
        client.models.get(model="gemini-0.1-nope")
    assert (exc.value.code, exc.value.status) == (404, "NOT_FOUND")


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "rpc", "cls"),
    [
        (400, "INVALID_ARGUMENT", errors.ClientError),
        (403, "PERMISSION_DENIED", errors.ClientError),
        (404, "NOT_FOUND", errors.ClientError),
        (429, "RESOURCE_EXHAUSTED", errors.ClientError),
        (500, "INTERNAL", errors.ServerError),
        (503, "UNAVAILABLE", errors.ServerError),
        (504, "DEADLINE_EXCEEDED", errors.ServerError),
    ],
)
def test_injected_errors(fake: FakeGemini, client: Any, status: int, rpc: str, cls: type[Exception]) -> None:
    fake.fail_next(status=status)
    with pytest.raises(cls) as exc:
        client.models.generate_content(model=PLAIN, contents=PROMPT)
    assert (exc.value.code, exc.value.status) == (status, rpc)  # type: ignore[attr-defined]
    assert client.models.generate_content(model=PLAIN, contents=PROMPT).text  # one fault, then fine


def test_rate_limit_retry_info(fake: FakeGemini, client: Any) -> None:
    fake.fail_next(status=429, retry_after=7)
    with pytest.raises(errors.ClientError) as exc:
        client.models.generate_content(model=PLAIN, contents=PROMPT)
    details = exc.value.details["error"]["details"]
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"} in details
    assert "Please retry in 7s." in str(exc.value.message)


def test_authentication(fake: FakeGemini) -> None:
    r = raw_post(fake, "generateContent", {"contents": [user("x")]}, key=None)
    assert r.status_code == 403
    assert r.json()["error"]["status"] == "PERMISSION_DENIED" and "unregistered callers" in r.json()["error"]["message"]
    r = httpx.post(
        f"{fake.url}/v1beta/models/{PLAIN}:generateContent?key=abc", json={"contents": [user("x")]}, timeout=10
    )
    assert r.status_code == 200  # ?key= works like the header
    fake.api_key = "right-key"
    with genai.Client(api_key="wrong-key", http_options=types.HttpOptions(base_url=fake.base_url)) as c:
        with pytest.raises(errors.ClientError) as exc:
            c.models.generate_content(model=PLAIN, contents=PROMPT)
    assert (exc.value.code, exc.value.status) == (400, "INVALID_ARGUMENT")
    assert exc.value.message == "API key not valid. Please pass a valid API key."
    assert exc.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    assert "wrong-key" not in json.dumps(exc.value.details)


@pytest.mark.parametrize(
    ("body", "message", "field"),
    [
        (
            {"contents": [user("x")], "generationConfig": {"maxTokens": 5}},
            "Invalid JSON payload received. Unknown name \"maxTokens\" at 'generation_config': Cannot find field.",
            "generation_config",
        ),
        (
            {"contents": [{"role": "user", "parts": [{"text": "x", "type": "text"}]}]},
            "Invalid JSON payload received. Unknown name \"type\" at 'contents[0].parts[0]': Cannot find field.",
            "contents[0].parts[0]",
        ),
        (
            {"contents": [user("x")], "messages": []},
            'Invalid JSON payload received. Unknown name "messages": Cannot find field.',
            None,
        ),
        (
            {
                "contents": [user("x")],
                "tools": [
                    {
                        "functionDeclarations": [
                            {"name": "f", "parameters": {"type": "object", "properties": {"a": {"const": 1}}}}
                        ]
                    }
                ],
            },
            'Invalid JSON payload received. Unknown name "const" at '
            "'tools[0].function_declarations[0].parameters.properties[0].value': Cannot find field.",
            "tools[0].function_declarations[0].parameters.properties[0].value",
        ),
        (
            {"contents": [user("x")], "generationConfig": {"temperature": "hot"}},
            "Invalid value at 'generation_config.temperature' (TYPE_FLOAT), \"hot\"",
            "generation_config.temperature",
        ),
        (
            {"contents": [user("x")], "toolConfig": {"functionCallingConfig": {"mode": "SOMETIMES"}}},
            "Invalid value at 'tool_config.function_calling_config.mode' "
            '(type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), "SOMETIMES"',
            "tool_config.function_calling_config.mode",
        ),
    ],
)
def test_invalid_fields_name_the_field(fake: FakeGemini, body: Any, message: str, field: str | None) -> None:
    r = raw_post(fake, "generateContent", body)
    assert r.status_code == 400
    error = r.json()["error"]
    assert (error["code"], error["status"], error["message"]) == (400, "INVALID_ARGUMENT", message)
    violation = error["details"][0]["fieldViolations"][0]
    assert error["details"][0]["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    assert violation.get("field") == field and violation["description"] == message


@pytest.mark.parametrize("role", ["assistant", "system"])
def test_invalid_role(client: Any, role: str) -> None:
    with pytest.raises(errors.ClientError) as exc:
        client.models.generate_content(model=PLAIN, contents=[{"role": role, "parts": [{"text": "hi"}]}])
    assert (exc.value.code, exc.value.status) == (400, "INVALID_ARGUMENT")
    assert exc.value.message == "Please use a valid role: user, model."


def test_structural_rules(fake: FakeGemini) -> None:
    r = raw_post(fake, "generateContent", {"contents": []})
    assert r.status_code == 400 and "contents is not specified" in r.json()["error"]["message"]
    r = raw_post(fake, "generateContent", {"contents": [{"role": "user", "parts": [{"thought": True}]}]})
    assert "required oneof field 'data' must have one initialized field" in r.json()["error"]["message"]
    r = raw_post(fake, "generateContent", {"contents": [{"role": "user", "parts": []}]})
    assert "contents.parts must not be empty" in r.json()["error"]["message"]
    bad_image = {"inlineData": {"mimeType": "image/png", "data": "not base64!"}}
    r = raw_post(fake, "generateContent", {"contents": [{"role": "user", "parts": [bad_image]}]})
    assert r.json()["error"]["message"].startswith(
        "Invalid value at 'contents[0].parts[0].inline_data.data' (TYPE_BYTES), Base64 decoding failed"
    )
    # snake_case spellings are accepted, as the API accepts them.
    r = raw_post(fake, "generateContent", {"contents": [user("x")], "generation_config": {"max_output_tokens": 2}})
    assert r.status_code == 200 and r.json()["candidates"][0]["finishReason"] == "MAX_TOKENS"
    # An image costs a fixed number of prompt tokens.
    image = {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}
    r = raw_post(fake, "countTokens", {"contents": [{"role": "user", "parts": [{"text": "hi"}, image]}]})
    assert r.json()["totalTokens"] == 1 + 258


def test_context_window(fake: FakeGemini, client: Any) -> None:
    fake.context_window = 10
    with pytest.raises(errors.ClientError) as exc:
        client.models.generate_content(model=PLAIN, contents="word " * 11)
    assert exc.value.code == 400
    assert exc.value.message == "The input token count (11) exceeds the maximum number of tokens allowed (10)."


def test_stream_timing_knobs_and_fault_header(fake: FakeGemini) -> None:
    fake.ttft = 0.15
    fake.chunk_delay = 0.02
    started = time.monotonic()
    with genai.Client(api_key="k", http_options=types.HttpOptions(base_url=fake.base_url)) as c:
        chunks = list(c.models.generate_content_stream(model=PLAIN, contents=PROMPT))
    assert time.monotonic() - started >= 0.15 + 0.02 * (len(chunks) - 1)
    # A per-request fault header, for concurrent tests that must not share the FIFO.
    options = types.HttpOptions(base_url=fake.base_url, headers={FAULT_HEADER: "status=429"})
    with genai.Client(api_key="k", http_options=options) as c:
        with pytest.raises(errors.ClientError) as exc:
            c.models.generate_content(model=PLAIN, contents=PROMPT)
    assert (exc.value.code, exc.value.status) == (429, "RESOURCE_EXHAUSTED")


def test_embedding_and_count_validation(fake: FakeGemini) -> None:
    embedder = "gemini-embedding-001"
    body = {"requests": [{"model": f"models/{embedder}", "content": {"parts": []}}]}
    r = raw_post(fake, "batchEmbedContents", body, model=embedder)
    assert r.status_code == 400
    assert r.json()["error"]["message"] == (
        "* BatchEmbedContentsRequest.requests[0].content.parts: contents.parts must not be empty.\n"
    )
    r = raw_post(fake, "embedContent", {"taskType": "RETRIEVAL_QUERY"}, model=embedder)
    assert r.json()["error"]["message"] == "* EmbedContentRequest.content: content is not specified\n"
    r = raw_post(fake, "countTokens", {"contents": [{"role": "user", "parts": [{"txt": "x"}]}]})
    assert r.status_code == 400 and "Unknown name \"txt\" at 'contents[0].parts[0]'" in r.json()["error"]["message"]
