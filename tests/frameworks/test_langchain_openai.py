"""langchain-openai: ``ChatOpenAI`` invoke, stream, ``bind_tools`` and ``with_structured_output``.

As its docs show: ``ChatOpenAI(model=..., base_url=..., api_key=...)`` and the runnable methods.
The app's ``base_url`` is the OpenAI-wire fake; unillm routes the model for the other wires.
"""

from __future__ import annotations

import pytest

langchain_openai = pytest.importorskip("langchain_openai")

from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage  # noqa: E402
from pydantic import BaseModel, Field  # noqa: E402

pytestmark = pytest.mark.framework("langchain-openai")


class GetWeather(BaseModel):
    """Get the current weather in a given location"""

    location: str = Field(..., description="The city and state, e.g. San Francisco, CA")


class Joke(BaseModel):
    """Joke to tell user."""

    setup: str = Field(description="The setup of the joke")
    punchline: str = Field(description="The punchline to the joke")
    rating: int | None = Field(default=None, description="How funny the joke is, from 1 to 10")


def chat(stack) -> langchain_openai.ChatOpenAI:
    return langchain_openai.ChatOpenAI(model=stack.model, base_url=stack.base_url, api_key=stack.api_key)


@pytest.mark.feature("invoke")
def test_invoke(stack) -> None:
    llm = chat(stack)
    message = llm.invoke([("system", "Be brief."), ("human", "Capital of France?")])
    assert isinstance(message, AIMessage)
    assert isinstance(message.content, str) and "Capital of France?" in message.content
    assert message.usage_metadata["input_tokens"] > 0 and message.usage_metadata["output_tokens"] > 0
    [call] = stack.assert_logged(1, stream=False)
    assert call["input_tokens"] == message.usage_metadata["input_tokens"]
    assert call["output_tokens"] == message.usage_metadata["output_tokens"]


@pytest.mark.feature("stream")
def test_stream(stack) -> None:
    llm = chat(stack)
    question = "The river Seine, briefly"
    chunks = list(llm.stream(question))
    assert len(chunks) > 2 and all(isinstance(c, AIMessageChunk) for c in chunks)
    streamed = "".join(c.content for c in chunks)
    whole = llm.invoke(question)
    assert streamed == whole.content and "river Seine" in streamed
    stack.assert_logged(2)
    streamed_call, invoked_call = stack.calls()
    assert streamed_call["stream"] is True and invoked_call["stream"] is False
    assert streamed_call["output_tokens"] == invoked_call["output_tokens"]


@pytest.mark.feature("bind_tools")
def test_bind_tools_and_tool_result(stack) -> None:
    llm_with_tools = chat(stack).bind_tools([GetWeather])
    question = HumanMessage("What's the weather like in San Francisco?")
    ai_msg = llm_with_tools.invoke([question])
    assert [call["name"] for call in ai_msg.tool_calls] == ["GetWeather"]
    call = ai_msg.tool_calls[0]
    assert isinstance(call["args"]["location"], str) and call["id"]
    # The app runs the tool and sends its result back: the model answers in text.
    final = llm_with_tools.invoke([question, ai_msg, ToolMessage('{"temp_c": 18}', tool_call_id=call["id"])])
    assert final.tool_calls == [] and "tool result" in final.content
    stack.assert_logged(2)


@pytest.mark.feature("with_structured_output")
def test_with_structured_output(stack) -> None:
    structured_llm = chat(stack).with_structured_output(Joke)
    joke = structured_llm.invoke("Tell me a joke about cats")
    assert isinstance(joke, Joke) and joke.setup and joke.punchline
    stack.assert_logged(1)


@pytest.mark.feature("async")
async def test_ainvoke_and_astream(stack) -> None:
    llm = chat(stack)
    message = await llm.ainvoke("What is the capital of France?")
    pieces = [chunk.content async for chunk in llm.astream("What is the capital of France?")]
    assert "".join(pieces) == message.content
    stack.assert_logged(2)
