"""The OpenAI Agents SDK: an agent with a function tool, on its Responses model (the SDK's default
API) and on its chat-completions model, through unillm, on each wire family.

As its docs show for a custom OpenAI-compatible endpoint: an ``AsyncOpenAI`` client with
``base_url``/``api_key``, ``OpenAIResponsesModel`` / ``OpenAIChatCompletionsModel(model=...,
openai_client=client)``, ``@function_tool``, ``Runner.run_sync`` / ``Runner.run_streamed``, and
``set_tracing_disabled(True)`` so nothing is exported to OpenAI's trace endpoint.

The Responses model routed to Anthropic / Gemini needs unillm's Responses translation for those
wire families (unillm/adapters/responses_bridge.py).
"""

from __future__ import annotations

import pytest

agents = pytest.importorskip("agents")

from agents import (  # noqa: E402
    Agent,
    ItemHelpers,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Runner,
    ToolCallItem,
    ToolCallOutputItem,
    function_tool,
    set_tracing_disabled,
)

pytestmark = pytest.mark.framework("openai-agents")
set_tracing_disabled(True)

MODELS = {"responses": OpenAIResponsesModel, "chat_completions": OpenAIChatCompletionsModel}
OPERATIONS = {"responses": "chat", "chat_completions": "chat"}  # OpenTelemetry calls both "chat"


def weather_agent(stack, api: str, asked: list[str]) -> Agent:
    @function_tool
    def get_weather(city: str) -> str:
        """Get the current weather in a city."""
        asked.append(city)
        return f"The weather in {city} is sunny, 21 degrees."

    return Agent(
        name="Weather assistant",
        instructions="You answer weather questions with the get_weather tool.",
        model=MODELS[api](model=stack.model, openai_client=stack.async_client()),
        tools=[get_weather],
    )


def check_tool_run(result, asked: list[str]) -> None:
    """The agent called get_weather (the function really ran, with the model's argument), fed its
    output back, and finished with the model's text answer about the tool result."""
    calls = [item for item in result.new_items if isinstance(item, ToolCallItem)]
    outputs = [item for item in result.new_items if isinstance(item, ToolCallOutputItem)]
    assert [item.raw_item.name for item in calls] == ["get_weather"]
    assert len(asked) == 1 and isinstance(asked[0], str) and asked[0]
    assert outputs and outputs[0].output == f"The weather in {asked[0]} is sunny, 21 degrees."
    assert isinstance(result.final_output, str) and "tool result" in result.final_output


@pytest.mark.feature("agent + function tool (Responses model)")
def test_agent_tool_call_responses(stack) -> None:
    asked: list[str] = []
    result = Runner.run_sync(weather_agent(stack, "responses", asked), "What's the weather in Tokyo?")
    check_tool_run(result, asked)
    stack.assert_logged(2, operation=OPERATIONS["responses"])  # the tool call, then the answer


@pytest.mark.feature("agent + function tool (chat completions model)")
def test_agent_tool_call_chat_completions(stack) -> None:
    asked: list[str] = []
    result = Runner.run_sync(weather_agent(stack, "chat_completions", asked), "What's the weather in Tokyo?")
    check_tool_run(result, asked)
    stack.assert_logged(2, operation=OPERATIONS["chat_completions"])


@pytest.mark.feature("streamed agent run")
@pytest.mark.parametrize("api", ["responses", "chat_completions"])
async def test_streamed_agent_run(stack, api: str) -> None:
    asked: list[str] = []
    result = Runner.run_streamed(weather_agent(stack, api, asked), input="What's the weather in Tokyo?")
    text_deltas: list[str] = []  # of the latest model response
    messages: list[str] = []
    async for event in result.stream_events():
        kind = getattr(event.data, "type", "") if event.type == "raw_response_event" else ""
        if kind == "response.created":
            text_deltas = []
        elif kind == "response.output_text.delta":
            text_deltas.append(event.data.delta)
        elif event.type == "run_item_stream_event" and event.item.type == "message_output_item":
            messages.append(ItemHelpers.text_message_output(event.item))
    check_tool_run(result, asked)
    assert "".join(text_deltas) == result.final_output == messages[-1]
    stack.assert_logged(2, operation=OPERATIONS[api], stream=True)
