"""Load and validate unillm's settings.

Sources, later ones winning: defaults < config file < environment (UNILLM_LOG,
UNILLM_CAPTURE_CONTENT) < `patch(**kwargs)`.
The config file is `patch(config=...)` (a path or a dict), else `$UNILLM_CONFIG`, else
`unillm.toml` in the working directory or a parent, else `[tool.unillm]` of the nearest
`pyproject.toml`. Validation uses pydantic (already a dependency of the openai SDK); every error
names the file, the key, and what was expected.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]


class ConfigError(ValueError):
    """A config file, key or value is wrong; the message says which and what was expected."""


class PriceConfig(BaseModel):
    """USD per million tokens."""

    model_config = ConfigDict(extra="forbid")
    input: float = Field(ge=0)
    output: float = Field(default=0.0, ge=0)
    cache_read: float | None = Field(default=None, ge=0)
    cache_write: float | None = Field(default=None, ge=0)


class ProviderConfig(BaseModel):
    """A provider entry in `[providers.<name>]`: overrides a built-in one or adds a new one."""

    model_config = ConfigDict(extra="forbid")
    wire: Literal["openai", "anthropic", "gemini"] | None = Field(default=None, description="Wire family.")
    base_url: str | None = Field(default=None, description="Where its API lives.")
    api_key: str | None = Field(default=None, description='The key itself, usually "${SOME_ENV_VAR}".')
    key_env: str | None = Field(default=None, description="Environment variable holding the key.")


class TargetConfig(BaseModel):
    """A target written as a table: `{target = "provider/model", weight = 3, timeout = 20, params = {...}}`."""

    model_config = ConfigDict(extra="forbid")
    target: str = Field(description='"provider/model".')
    weight: float = Field(default=1.0, ge=0, description="Share of traffic under the weighted strategy.")
    timeout: float | None = Field(default=None, gt=0, le=3600, description="Seconds one attempt may take.")
    params: dict[str, Any] = Field(default_factory=dict, description="Request parameters set for this target.")
    context_window: int | None = Field(
        default=None, gt=0, description="Tokens the model accepts; bigger requests skip it before sending."
    )


class AutoConfig(BaseModel):
    """`[routes.<name>.auto]`: what makes a request hard, for the prompt-aware `auto` strategy."""

    model_config = ConfigDict(extra="forbid")
    easy: str | None = Field(default=None, description="Target for easy requests (default: the first target).")
    hard: str | None = Field(default=None, description="Target for hard requests (default: the last target).")
    long_context: int = Field(default=4000, ge=0, description="Estimated input tokens above which a request is hard.")
    code: bool = Field(default=True, description="Code in the prompt makes it hard.")
    tools: bool = Field(default=True, description="Tool definitions make it hard.")
    reasoning: bool = Field(default=True, description="Reasoning cues (prove, step by step, ...) make it hard.")
    hard_keywords: list[str] = Field(default_factory=list, description="Words in the last user turn that make it hard.")
    hard_tags: dict[str, str] = Field(default_factory=dict, description="unillm.tags values that make it hard.")


Strategy = Literal["fallback", "weighted", "lowest-latency", "lowest-cost", "auto"]


class RouteConfig(BaseModel):
    """A route in `[routes.<model name>]`: targets, how to order them, and how hard to try each."""

    model_config = ConfigDict(extra="forbid")
    targets: list[str | TargetConfig] = Field(min_length=1, description='"provider/model" targets, or tables.')
    strategy: Strategy = Field(default="fallback", description="How targets are ordered for each call.")
    auto: AutoConfig = Field(default_factory=AutoConfig, description="Rules of the auto strategy.")
    retries: int = Field(default=1, ge=0, le=10, description="More tries per target on retryable failures.")
    backoff: float = Field(default=0.25, ge=0, le=60, description="Seconds before the first retry.")
    max_backoff: float = Field(default=8.0, ge=0, le=300, description="Longest wait between tries.")
    retry_after_cap: float = Field(default=10.0, ge=0, le=300, description="Longest Retry-After honoured.")
    time_budget: float = Field(default=600.0, gt=0, le=3600, description="Seconds all attempts of a call may take.")
    failover_on_refusal: bool = Field(default=False, description="A content-policy refusal tries the next target.")
    max_cost_ratio: float | None = Field(
        default=None, gt=0, description="Never fail over to a target costing more than this times the first."
    )
    breaker_failures: int = Field(default=5, ge=1, le=1000, description="Failures in a row that open a breaker.")
    breaker_failure_rate: float | None = Field(
        default=None, gt=0, le=1, description="Failure share over the last breaker_window calls that opens it."
    )
    breaker_window: int = Field(default=20, ge=2, le=10_000, description="Calls the failure rate is taken over.")
    breaker_cooldown: float = Field(default=10.0, gt=0, le=3600, description="Seconds before an open breaker probes.")
    breaker_max_cooldown: float = Field(
        default=300.0, gt=0, le=86_400, description="Longest cooldown, which doubles each time a probe fails."
    )

    def target_names(self) -> list[str]:
        return [t if isinstance(t, str) else t.target for t in self.targets]


class BudgetConfig(BaseModel):
    """`[budgets.<name>]`: a spend limit per UTC day, for a route, for tagged calls, or for all calls."""

    model_config = ConfigDict(extra="forbid")
    limit_usd: float = Field(ge=0, description="US dollars per UTC day.")
    route: str | None = Field(default=None, description="Only calls through this route (a [routes] name).")
    tags: dict[str, str] = Field(default_factory=dict, description="Only calls with these unillm.tags values.")
    action: Literal["block", "downgrade"] = Field(default="block", description="What happens once it is reached.")
    downgrade_to: str | None = Field(default=None, description='With action = "downgrade": a route or provider/model.')

    @model_validator(mode="after")
    def _downgrade_needs_a_target(self) -> BudgetConfig:
        if self.action == "downgrade" and not self.downgrade_to:
            raise ValueError('action = "downgrade" needs downgrade_to (a route name or "provider/model")')
        return self


class RedactConfig(BaseModel):
    """`[redact]`: what is replaced in captured content and error messages before they are stored.

    API-key shapes, bearer tokens, keys in URLs and the values of the keys unillm was given are
    always replaced, whatever this says.
    """

    model_config = ConfigDict(extra="forbid")
    patterns: list[str] = Field(
        default_factory=list, description="Regular expressions (Python syntax) whose matches are replaced."
    )
    emails: bool = Field(default=True, description="Replace e-mail addresses.")
    replacement: str = Field(default="[REDACTED]", description="What each match is replaced with.")

    @field_validator("patterns")
    @classmethod
    def _compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a valid regular expression ({exc})") from None
            if compiled.fullmatch(""):
                raise ValueError(f"{pattern!r} matches the empty string, so it would redact between every character")
        return patterns


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    log: Path | None = Field(default=None, description="Path of calls.duckdb; default: the user data folder.")
    flush_interval: float = Field(default=0.5, gt=0, le=60, description="Seconds between spool writes.")
    fold_interval: float = Field(default=1.0, gt=0, le=3600, description="Seconds between folds into the db.")
    max_queue: int = Field(default=100_000, ge=100, description="Calls held in memory before new ones are dropped.")
    stream_usage: bool = Field(default=True, description="Ask providers for usage on streams the app did not.")
    otel: bool = Field(
        default=True,
        description="OpenTelemetry GenAI spans and metrics on the app's providers (or OTLP when "
        "OTEL_EXPORTER_OTLP_ENDPOINT is set); no cost when the app uses neither.",
    )
    prices: dict[str, PriceConfig] = Field(default_factory=dict, description="Price overrides per model.")
    providers: dict[str, ProviderConfig] = Field(default_factory=dict, description="Provider overrides and additions.")
    routes: dict[str, str | RouteConfig] = Field(
        default_factory=dict,
        description='Model name the app uses → "provider/model", or a table with ordered targets.',
    )
    budgets: dict[str, BudgetConfig] = Field(default_factory=dict, description="Spend limits per day.")
    retention_days: int | None = Field(
        default=None, ge=1, description="Rows older than this are pruned by `unillm prune` without --older-than."
    )
    capture_content: bool = Field(
        default=False, description="Store prompts and answers, redacted, in calls.request_content / response_content."
    )
    redact: RedactConfig = Field(default_factory=RedactConfig, description="Redaction rules for stored text.")

    def log_path(self) -> Path:
        return (self.log or default_log_path()).expanduser()


def default_log_path() -> Path:
    """`$XDG_DATA_HOME/unillm/calls.duckdb` (~/.local/share/unillm/ by default; %LOCALAPPDATA% on Windows)."""
    if os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "unillm" / "calls.duckdb"


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand_env(value: Any, where: str) -> Any:
    """Replace `${NAME}` in strings with the environment variable (for keys and paths)."""
    if isinstance(value, str):

        def lookup(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise ConfigError(f"{where}: environment variable {name} is not set")
            return os.environ[name]

        return _ENV_REF.sub(lookup, value)
    if isinstance(value, dict):
        return {k: _expand_env(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, where) for v in value]
    return value


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror}") from None


def find_config_file(start: Path | None = None) -> tuple[Path, dict[str, Any]] | None:
    """`$UNILLM_CONFIG`, else the nearest unillm.toml or pyproject.toml with [tool.unillm]."""
    explicit = os.environ.get("UNILLM_CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"UNILLM_CONFIG points to {path}, which is not a file")
        return path, _section(path)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "unillm.toml"
        if candidate.is_file():
            return candidate, _read_toml(candidate)
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file():
            section = _read_toml(pyproject).get("tool", {}).get("unillm")
            if section is not None:
                return pyproject, section
    return None


def _section(path: Path) -> dict[str, Any]:
    data = _read_toml(path)
    if path.name == "pyproject.toml":
        return data.get("tool", {}).get("unillm", {})
    return data


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")

_UNION_BRANCHES = {"str", "RouteConfig", "TargetConfig"}  # pydantic names the branch of a `str | RouteConfig` in loc


def _relevant(error: Mapping[str, Any]) -> bool:
    """Drop the complaint of the union branch the user obviously did not mean (a table is not a str)."""
    return not ("str" in error["loc"] and isinstance(error.get("input"), dict))


def _describe(error: Mapping[str, Any]) -> str:
    key = ".".join(str(part) for part in error["loc"] if part not in _UNION_BRANCHES)
    if error["type"] == "extra_forbidden":
        return f"key '{key}' is not a unillm setting (known: {', '.join(Settings.model_fields)})"
    message = error["msg"].removeprefix("Value error, ")
    return f"key '{key}': {message[:1].lower()}{message[1:]}, got {error.get('input')!r}"


def load_settings(config: str | os.PathLike[str] | Mapping[str, Any] | None = None, **overrides: Any) -> Settings:
    """Resolve settings from all sources; raise ConfigError naming the file and key on bad input."""
    source = "patch(config=...)"
    data: dict[str, Any] = {}
    if isinstance(config, Mapping):
        data = dict(config)
    elif config is not None:
        path = Path(config).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        source, data = str(path), _section(path)
    else:
        found = find_config_file()
        if found is not None:
            source, data = str(found[0]), found[1]
    data = _expand_env(data, source)
    if os.environ.get("UNILLM_LOG"):
        data["log"] = os.environ["UNILLM_LOG"]
    capture = os.environ.get("UNILLM_CAPTURE_CONTENT", "").strip().lower()
    if capture:
        if capture not in _TRUE + _FALSE:
            raise ConfigError(f"UNILLM_CAPTURE_CONTENT: expected true or false (1/0, yes/no, on/off), got {capture!r}")
        data["capture_content"] = capture in _TRUE
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors() if _relevant(e))
        raise ConfigError(f"{source}: {problems}") from None
