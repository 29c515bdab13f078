"""pydantic-ai's OpenAI models: text, structured output, a function tool and streaming, through
unillm, on each wire family.

As its docs show: ``OpenAIChatModel('gpt-4o-mini', provider=OpenAIProvider(base_url=...,
api_key=...))`` (or ``openai_client=``), ``Agent(model, output_type=...)``, ``@agent.tool_plain``,
``agent.run_sync`` and ``agent.run_stream``.
"""

from __future__ import annotations

import pytest

pytest.importorskip("pydantic_ai")

from pydantic import BaseModel  # noqa: E402
from pydantic_ai import Agent  # noqa: E402
from pydantic_ai.messages import ToolCallPart, ToolReturnPart  # noqa: E402
from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel  # noqa: E402
from pydantic_ai.providers.openai import OpenAIProvider  # noqa: E402

pytestmark = pytest.mark.framework("pydantic-ai-slim")


class CityLocation(BaseModel):
    city: str
    country: str


def chat_model(stack) -> OpenAIChatModel:
    return OpenAIChatModel(stack.model, provider=OpenAIProvider(base_url=stack.base_url, api_key=stack.api_key))


@pytest.mark.feature("text (chat model)")
def test_text_answer(stack) -> None:
    agent = Agent(chat_model(stack), instructions="Be concise, reply with one sentence.")
    result = agent.run_sync("Capital of France?")
    assert isinstance(result.output, str) and "Capital of France?" in result.output
    [call] = stack.assert_logged(1)
    usage = result.usage
    assert (usage.input_tokens, usage.output_tokens) == (call["input_tokens"], call["output_tokens"])


@pytest.mark.feature("text (Responses model)")
def test_text_answer_responses_model(stack) -> None:
    model = OpenAIResponsesModel(stack.model, provider=OpenAIProvider(openai_client=stack.async_client()))
    result = Agent(model).run_sync("Capital of France?")
    assert isinstance(result.output, str) and "Capital of France?" in result.output
    stack.assert_logged(1)


@pytest.mark.feature("structured output")
def test_structured_output(stack) -> None:
    agent = Agent(chat_model(stack), output_type=CityLocation)
    result = agent.run_sync("Where were the olympics held in 2012?")
    assert isinstance(result.output, CityLocation) and result.output.city and result.output.country
    stack.assert_logged(1)


@pytest.mark.feature("function tool")
def test_function_tool(stack) -> None:
    agent = Agent(chat_model(stack), instructions="Use the weather tool to answer.")
    asked: list[str] = []

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """Get the current weather in a city."""
        asked.append(city)
        return f"Sunny in {city}"

    result = agent.run_sync("What's the weather in Paris?")
    parts = [part for message in result.all_messages() for part in message.parts]
    assert [p.tool_name for p in parts if isinstance(p, ToolCallPart)] == ["get_weather"]
    assert [p.content for p in parts if isinstance(p, ToolReturnPart)] == [f"Sunny in {asked[0]}"]
    assert len(asked) == 1 and "tool result" in result.output
    stack.assert_logged(2)  # the tool call, then the answer


@pytest.mark.feature("stream")
async def test_stream_text(stack) -> None:
    agent = Agent(chat_model(stack))
    async with agent.run_stream("The river Seine, briefly") as result:
        deltas = [delta async for delta in result.stream_text(delta=True, debounce_by=None)]
    assert len(deltas) > 1
    whole = await agent.run("The river Seine, briefly")
    assert "".join(deltas) == whole.output and "river Seine" in whole.output
    streamed, invoked = stack.assert_logged(2)
    assert streamed["stream"] is True and invoked["stream"] is False
