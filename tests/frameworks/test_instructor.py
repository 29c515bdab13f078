"""instructor: structured output with retries, through unillm, on each wire family.

As instructor's docs show: ``instructor.from_openai(openai.OpenAI(...))``, then
``client.chat.completions.create(response_model=..., max_retries=...)``. Its default mode sends
the model as a forced function tool and validates the arguments with the pydantic model; a
validation error is sent back to the model (a ``tool`` message naming the error) and asked again.
"""

from __future__ import annotations

from typing import Annotated

import pytest

instructor = pytest.importorskip("instructor")

from instructor.core.exceptions import InstructorRetryException  # noqa: E402
from pydantic import AfterValidator, BaseModel  # noqa: E402

pytestmark = pytest.mark.framework("instructor")


class UserDetail(BaseModel):
    name: str
    age: int


@pytest.mark.feature("structured output")
def test_structured_output(stack) -> None:
    client = instructor.from_openai(stack.client())
    user = client.chat.completions.create(
        model=stack.model,
        response_model=UserDetail,
        messages=[{"role": "user", "content": "Extract Jason is 25 years old"}],
    )
    assert isinstance(user, UserDetail)
    assert isinstance(user.name, str) and user.name and isinstance(user.age, int)
    stack.assert_logged(1)
    # What reached the provider asked for the UserDetail function, in that provider's own shape.
    sent = stack.generation_requests()[0].json
    assert "UserDetail" in str(sent)


@pytest.mark.feature("validation retry")
def test_a_validation_error_is_retried(stack) -> None:
    """The app's validator rejects the first extraction (as a business rule would reject a model's
    first answer); instructor sends the error back and the second answer is accepted: two
    framework requests, two calls in the log, both with the test's tags."""
    seen: list[str] = []

    def checked_once(name: str) -> str:
        seen.append(name)
        if len(seen) == 1:
            raise ValueError("the name was not double-checked, check it again")
        return name

    class CheckedUser(BaseModel):
        name: Annotated[str, AfterValidator(checked_once)]
        age: int

    client = instructor.from_openai(stack.client())
    user = client.chat.completions.create(
        model=stack.model,
        response_model=CheckedUser,
        max_retries=2,
        messages=[{"role": "user", "content": "Extract Jason is 25 years old"}],
    )
    assert isinstance(user, CheckedUser) and user.name == seen[-1]
    assert len(seen) == 2
    stack.assert_logged(2)
    # The retry carried the validation error to the provider that answers.
    first, second = (r.json for r in stack.generation_requests())
    assert "double-checked" not in str(first)
    assert "double-checked" in str(second)


@pytest.mark.feature("retries exhausted")
def test_retries_exhausted_raise_instructors_error(stack) -> None:
    def never(name: str) -> str:
        raise ValueError("never good enough")

    class Never(BaseModel):
        name: Annotated[str, AfterValidator(never)]

    client = instructor.from_openai(stack.client())
    with pytest.raises(InstructorRetryException) as raised:
        client.chat.completions.create(
            model=stack.model,
            response_model=Never,
            max_retries=1,
            messages=[{"role": "user", "content": "Extract Jason"}],
        )
    assert raised.value.n_attempts == 2
    stack.assert_logged(2)  # every attempt is a call of its own, each ok at the HTTP level


@pytest.mark.feature("async")
async def test_async_structured_output(stack) -> None:
    client = instructor.from_openai(stack.async_client())
    user = await client.chat.completions.create(
        model=stack.model,
        response_model=UserDetail,
        messages=[{"role": "user", "content": "Extract Jason is 25 years old"}],
    )
    assert isinstance(user, UserDetail)
    stack.assert_logged(1)
