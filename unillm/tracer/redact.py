"""Scrub secrets from any text unillm stores or shows (error messages, URLs, captured content).

Provider error messages sometimes echo part of a key ("Incorrect API key provided: sk-abc..."),
and a prompt may hold one ("my key is sk-proj-..."). API-key shapes, bearer tokens and keys in
query strings are always scrubbed, as are the exact values of the keys unillm was given (config
and the providers' environment variables). The config's `[redact]` table adds e-mail addresses
(on by default) and the user's own regexes; `patch()` makes those rules the active ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Not after a letter: "risk-assessment-framework" is prose, "_sk-proj-..." or "9sk-..." may be a key.
_SECRET_PATTERNS = re.compile(
    r"""
    (?<![A-Za-z])(?:sk|pk|rk)-(?:proj-|ant-(?:api\d\d-)?|or-v1-|live-|test-)?[A-Za-z0-9_\-*]{8,}  # OpenAI, ...
    | (?<![A-Za-z])AIza[0-9A-Za-z_\-]{20,}             # Google API keys
    | (?<![A-Za-z])gsk_[A-Za-z0-9]{20,}                # Groq
    | (?<![A-Za-z])xai-[A-Za-z0-9]{20,}                # xAI
    | (?i:bearer)\s+[A-Za-z0-9._\-~+/]{8,}=*           # Authorization headers
    | (?i:(?:api[_-]?key|key|token|secret)=)[^&\s"']{6,} # keys in query strings
    """,
    re.VERBOSE,
)
# Bounded parts (RFC 5321 limits) keep a long run of letters without an "@" linear to scan.
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]{1,64}@(?:[A-Za-z0-9\-]{1,63}\.)+[A-Za-z]{2,24}\b")
_MIN_SECRET = 12  # shorter key values ("EMPTY", "ollama", "k") are too common to scrub as text

DEFAULT_REPLACEMENT = "[REDACTED]"


class Redactor:
    """One set of redaction rules, applied in order: known key values, key shapes, e-mails, patterns."""

    __slots__ = ("_emails", "_literals", "_patterns", "_replacement")

    def __init__(
        self,
        patterns: Iterable[str | re.Pattern[str]] = (),
        *,
        emails: bool = False,
        replacement: str = DEFAULT_REPLACEMENT,
        secrets: Iterable[str | None] = (),
    ) -> None:
        self._patterns = tuple(re.compile(p) if isinstance(p, str) else p for p in patterns)
        self._emails = emails
        self._replacement = replacement.replace("\\", "\\\\")  # a literal, not a re.sub template
        values = sorted({s.strip() for s in secrets if s and len(s.strip()) >= _MIN_SECRET}, key=len, reverse=True)
        self._literals = re.compile("|".join(map(re.escape, values))) if values else None

    def __call__(self, text: str | None) -> str | None:
        if not text:
            return text
        replacement = self._replacement
        if self._literals is not None:
            text = self._literals.sub(replacement, text)
        text = _SECRET_PATTERNS.sub(replacement, text)
        if self._emails and "@" in text:
            text = _EMAIL.sub(replacement, text)
        for pattern in self._patterns:
            text = pattern.sub(replacement, text)
        return text


BUILT_IN = Redactor()
_active = BUILT_IN


def use_redactor(redactor: Redactor | None) -> None:
    """Make `redactor` the rules `redact()` applies (patch() does; None: back to the built-in ones)."""
    global _active
    _active = redactor if redactor is not None else BUILT_IN


def active_redactor() -> Redactor:
    return _active


def redact(text: str | None) -> str | None:
    return _active(text)
