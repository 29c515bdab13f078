"""llama-index's OpenAI LLM: complete, chat, stream_chat, a function tool and structured output,
through unillm, on each wire family.

As its docs show: ``OpenAI(model=..., api_base=..., api_key=...)`` from
``llama_index.llms.openai``, ``ChatMessage``, ``chat_with_tools`` + ``get_tool_calls_from_response``,
``as_structured_llm``.
"""

from __future__ import annotations

import pytest

pytest.importorskip("llama_index.llms.openai")

from llama_index.core.llms import ChatMessage  # noqa: E402
from llama_index.core.tools import FunctionTool  # noqa: E402
from llama_index.llms.openai import OpenAI  # noqa: E402
from pydantic import BaseModel  # noqa: E402

pytestmark = pytest.mark.framework("llama-index-llms-openai")


class Song(BaseModel):
    """A song with a name and an artist."""

    name: str
    artist: str


def llm_for(stack) -> OpenAI:
    return OpenAI(model=stack.model, api_base=stack.base_url, api_key=stack.api_key)


@pytest.mark.feature("complete + chat")
def test_complete_and_chat(stack) -> None:
    llm = llm_for(stack)
    completion = llm.complete("Paul Graham is ")
    assert "Paul Graham is" in completion.text
    messages = [
        ChatMessage(role="system", content="You are a pirate with a colorful personality."),
        ChatMessage(role="user", content="What is your name?"),
    ]
    reply = llm.chat(messages)
    assert reply.message.role == "assistant" and "What is your name?" in reply.message.content
    stack.assert_logged(2, stream=False)


@pytest.mark.feature("stream_chat")
def test_stream_chat(stack) -> None:
    llm = llm_for(stack)
    messages = [ChatMessage(role="user", content="The river Seine, briefly")]
    deltas = [r.delta for r in llm.stream_chat(messages)]
    assert len([d for d in deltas if d]) > 2
    whole = llm.chat(messages)
    assert "".join(d or "" for d in deltas) == whole.message.content
    streamed, invoked = stack.assert_logged(2)
    assert streamed["stream"] is True and invoked["stream"] is False
    assert streamed["output_tokens"] == invoked["output_tokens"]


@pytest.mark.feature("function tool")
def test_chat_with_tools(stack) -> None:
    asked: list[str] = []

    def get_weather(city: str) -> str:
        """Get the current weather in a city."""
        asked.append(city)
        return f"Sunny in {city}"

    tool = FunctionTool.from_defaults(fn=get_weather)
    llm = llm_for(stack)
    response = llm.chat_with_tools([tool], user_msg="What's the weather in Paris?")
    [selection] = llm.get_tool_calls_from_response(response, error_on_no_tool_call=True)
    assert selection.tool_name == "get_weather" and isinstance(selection.tool_kwargs["city"], str)
    output = tool(**selection.tool_kwargs)
    assert asked == [selection.tool_kwargs["city"]] and output.content == f"Sunny in {asked[0]}"
    stack.assert_logged(1)


@pytest.mark.feature("structured output")
def test_structured_llm(stack) -> None:
    sllm = llm_for(stack).as_structured_llm(Song)
    response = sllm.complete("Name a song by Queen")
    assert isinstance(response.raw, Song) and response.raw.name and response.raw.artist
    stack.assert_logged(1)


@pytest.mark.feature("async")
async def test_achat(stack) -> None:
    llm = llm_for(stack)
    reply = await llm.achat([ChatMessage(role="user", content="Capital of France?")])
    assert "Capital of France?" in reply.message.content
    stack.assert_logged(1)
