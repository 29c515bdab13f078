"""Is a request easy or hard? The prompt-aware `auto` strategy's judge: cheap, explainable rules.

A request is hard when any enabled cue holds: a long context (estimated tokens), code in the last
user turn, tool definitions, reasoning cues ("step by step", "prove", a `reasoning_effort`), a
keyword or a tag the user listed. The verdict names the cues that fired, and goes into the call
log (`calls.route_reason`), so every routing decision can be read back and argued with.

Only the last user turn is scanned for words (it is what the model is asked now; scanning a long
history would cost time and flag old topics), its first 1,200 and last 400 characters (bounding the time a long message costs); the
size estimate counts the whole request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Code: a fence, lines that end like code, or a line that starts like code. Literal tests first:
# one combined regex over a long message costs ~0.5 ms, these cost a few µs.
_CODE_LINE = re.compile(
    r"^[ \t]*(?:def |class |import |from \S+ import |#include|function |const |let |public |package |"
    r"SELECT |INSERT INTO |UPDATE \S+ SET )",
    re.MULTILINE,
)
_CODE_LINE_ENDS = (";\n", "{\n", "}\n", "):\n")
_REASONING = re.compile(  # matched against the lower-cased text (faster than IGNORECASE)
    r"\b(?:step[- ]by[- ]step|prove|proof|derive|reason(?:ing)? (?:about|through)|think (?:hard|carefully)|"
    r"trade-?offs?|analy[sz]e|compare and contrast|explain why|root cause|plan (?:out|the)|optimi[sz]e)\b"
)
# Cheap literal tests that any reasoning cue contains: the regex runs only when one is present.
_REASONING_HINTS = (
    "step",
    "prov",
    "proof",
    "deriv",
    "reason",
    "think",
    "trade",
    "analy",
    "compar",
    "explain",
    "root cause",
    "plan ",
    "optimi",
)
_HEAD, _TAIL = 1200, 400  # characters of the last user turn scanned: the ask is at its start or end


@dataclass(frozen=True)
class Verdict:
    hard: bool
    cues: tuple[str, ...]

    def describe(self, tokens: int) -> str:
        if self.hard:
            return "hard (" + ", ".join(self.cues) + ")"
        return f"easy (~{tokens} tokens, no hard cue)"


def estimate_tokens(request_bytes: int) -> int:
    """Input tokens of a request from its JSON size: ~4 bytes a token for English (an estimate, not
    a tokenizer: it only has to tell 500 tokens from 50,000, and costs nothing)."""
    return request_bytes // 4


def classify(body: Mapping[str, Any], tokens: int, tags: Mapping[str, str], rules: Any) -> Verdict:
    """`rules`: config.AutoConfig."""
    cues: list[str] = []
    if tokens > rules.long_context:
        cues.append(f"~{tokens} tokens > {rules.long_context}")
    if rules.tools and body.get("tools"):
        cues.append(f"{len(body['tools'])} tools")
    if rules.reasoning and (body.get("reasoning_effort") or body.get("reasoning")):
        cues.append("reasoning effort set")
    for key, value in rules.hard_tags.items():
        if tags.get(key) == value:
            cues.append(f"tag {key}={value}")
    text = _last_user_text(body)
    if len(text) > _HEAD + _TAIL:
        text = text[:_HEAD] + "\n" + text[-_TAIL:]
    if text:
        if rules.code and _has_code(text):
            cues.append("code")
        lowered = text.lower()
        hinted = rules.reasoning and any(hint in lowered for hint in _REASONING_HINTS)
        if hinted and (match := _REASONING.search(lowered)):
            cues.append(f"reasoning cue {match.group(0)!r}")
        for word in rules.hard_keywords:
            if word.lower() in lowered:
                cues.append(f"keyword {word!r}")
                break
    return Verdict(bool(cues), tuple(cues))


def _has_code(text: str) -> bool:
    if "```" in text:
        return True
    if "\n" in text and sum(text.count(end) for end in _CODE_LINE_ENDS) >= 2:
        return True
    return _CODE_LINE.search(text) is not None


def _last_user_text(body: Mapping[str, Any]) -> str:
    """Text of the last user message (chat), or of the Responses API input."""
    messages = body.get("messages")
    if messages is None:
        messages = body.get("input")
        if isinstance(messages, str):
            return messages
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role", "user") == "user":
            return _text_of(message.get("content"))
    return ""


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: keep the text ones
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""
