"""Scrub secrets from any text unillm stores or shows (error messages, URLs).

Provider error messages sometimes echo part of a key ("Incorrect API key provided: sk-abc...").
"""

from __future__ import annotations

import re

_SECRET_PATTERNS = re.compile(
    r"""
    (?:sk|pk|rk)-(?:proj-|ant-(?:api\d\d-)?|or-v1-|live-|test-)?[A-Za-z0-9_\-*]{8,}  # OpenAI, Anthropic, OpenRouter ...
    | AIza[0-9A-Za-z_\-]{20,}                          # Google API keys
    | gsk_[A-Za-z0-9]{20,}                             # Groq
    | xai-[A-Za-z0-9]{20,}                             # xAI
    | (?i:bearer)\s+[A-Za-z0-9._\-~+/]{8,}=*           # Authorization headers
    | (?i:(?:api[_-]?key|key|token|secret)=)[^&\s"']{6,} # keys in query strings
    """,
    re.VERBOSE,
)


def redact(text: str | None) -> str | None:
    if not text:
        return text
    return _SECRET_PATTERNS.sub("[REDACTED]", text)
