"""Is a request easy or hard? The prompt-aware `auto` strategy's judge: cheap, explainable rules.

A request is hard when any enabled cue holds: a long context (estimated tokens), code in the last
user turn, tool definitions, reasoning cues ("step by step", "prove", a `reasoning_effort`), a
keyword or a tag the user listed. The verdict names the cues that fired, and goes into the call
log (`calls.route_reason`), so every routing decision can be read back and argued with.

Only the last user turn is scanned for words (it is what the model is asked now; scanning a long
history would cost time and flag old topics), and of a long turn only its first 800 and last 400
characters, where the ask is: scanning costs ~8 ns a character, and the decision stays under 20 µs
however long the message. The size estimate counts the whole request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Code: a fence, lines that end like code, or a line that starts like code. Tested line by line
# with str methods: a MULTILINE regex and str.count over a long message cost ~14 µs, this ~1 µs.
_CODE_STARTS = (
    "def ",
    "class ",
    "import ",
    "#include",
    "function ",
    "const ",
    "let ",
    "public ",
    "package ",
    "SELECT ",
    "INSERT INTO ",
)
_CODE_STARTS_WITH_NAME = re.compile(r"(?:from \S+ import |UPDATE \S+ SET )")  # only tried on "from "/"UPDATE "
_CODE_ENDS = (";", "{", "}", "):")
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
_HEAD, _TAIL = 800, 400  # characters of the last user turn scanned: the ask is at its start or end


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
    code_endings = 0
    for line in text.split("\n"):
        start = line.lstrip(" \t")
        if start.startswith(_CODE_STARTS):
            return True
        if start.startswith(("from ", "UPDATE ")) and _CODE_STARTS_WITH_NAME.match(start):
            return True
        if line.endswith(_CODE_ENDS):
            code_endings += 1
            if code_endings == 2:
                return True
    return False


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
