"""Known providers: name, wire family, default base URL and the env var holding the key.

Used to name the provider of a call from the host the SDK talks to, and (by routing) to reach a
provider by name. Users add their own providers in config; this table holds only public facts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any


@dataclass(frozen=True)
class ProviderSpec:
    name: str
    wire: str  # "openai", "anthropic" or "gemini"
    base_url: str  # "" when every user has their own (Azure): set it in [providers.<name>]
    key_env: str | None
    auth: str = "bearer"  # OpenAI-wire auth header: "bearer" (Authorization) or "api-key" (Azure)


BUILTIN_PROVIDERS: tuple[ProviderSpec, ...] = (
    ProviderSpec("openai", "openai", "https://api.openai.com/v1", "OPENAI_API_KEY"),
    ProviderSpec("azure", "openai", "", "AZURE_OPENAI_API_KEY", auth="api-key"),  # .../openai/v1
    ProviderSpec("anthropic", "anthropic", "https://api.anthropic.com", "ANTHROPIC_API_KEY"),
    ProviderSpec("gemini", "gemini", "https://generativelanguage.googleapis.com", "GEMINI_API_KEY"),
    ProviderSpec("mistral", "openai", "https://api.mistral.ai/v1", "MISTRAL_API_KEY"),
    ProviderSpec("deepseek", "openai", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"),
    ProviderSpec("groq", "openai", "https://api.groq.com/openai/v1", "GROQ_API_KEY"),
    ProviderSpec("together", "openai", "https://api.together.xyz/v1", "TOGETHER_API_KEY"),
    ProviderSpec("fireworks", "openai", "https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY"),
    ProviderSpec("xai", "openai", "https://api.x.ai/v1", "XAI_API_KEY"),
    ProviderSpec("openrouter", "openai", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
    ProviderSpec("qwen", "openai", "https://dashscope-intl.aliyuncs.com/compatible-mode/v1", "DASHSCOPE_API_KEY"),
    ProviderSpec("perplexity", "openai", "https://api.perplexity.ai", "PERPLEXITY_API_KEY"),
    ProviderSpec("ollama", "openai", "http://localhost:11434/v1", None),
)

# Hosts that identify a provider even when the base URL differs (regions, deployments).
_HOST_SUFFIXES: tuple[tuple[str, str], ...] = (
    (".openai.azure.com", "azure"),
    (".cognitiveservices.azure.com", "azure"),
    ("dashscope.aliyuncs.com", "qwen"),
    ("dashscope-intl.aliyuncs.com", "qwen"),
)


# Addresses of providers declared or moved in config ([providers.x] base_url): a pass-through call
# to such an address is named after the config entry, not after its host.
_configured_addresses: dict[str, str] = {}


def use_configured_providers(providers: Mapping[str, Any]) -> None:
    _configured_addresses.clear()
    for name, entry in providers.items():
        base_url = getattr(entry, "base_url", None)
        if base_url:
            _configured_addresses.setdefault(_address_of(base_url), name)
    provider_for_host.cache_clear()


@lru_cache(maxsize=256)
def provider_for_host(address: str) -> str:
    """Name the provider behind `host` or `host:port`; unknown addresses are 'openai_compatible'."""
    address = address.lower()
    if address in _configured_addresses:
        return _configured_addresses[address]
    for spec in BUILTIN_PROVIDERS:
        if spec.base_url and _address_of(spec.base_url) == address:
            return spec.name
    host = address.split(":", 1)[0]
    for suffix, name in _HOST_SUFFIXES:
        if host.endswith(suffix):
            return name
    return "openai_compatible"


def _address_of(url: str) -> str:
    """`host` or `host:port` of a URL, the form httpx reports for a request."""
    return url.split("://", 1)[-1].split("/", 1)[0].lower()


def resolve_provider(name: str, overrides: Mapping[str, Any] | None = None) -> ProviderSpec | None:
    """The built-in provider `name`, with config overrides applied; a config-only provider needs
    `wire` and `base_url`. None when nothing by that name exists."""
    builtin = next((spec for spec in BUILTIN_PROVIDERS if spec.name == name), None)
    override = (overrides or {}).get(name)
    if override is None:
        return builtin
    wire = override.wire or (builtin.wire if builtin else None)
    base_url = override.base_url or (builtin.base_url if builtin else None)
    if wire is None or not base_url:
        raise ValueError(f"[providers.{name}] needs wire and base_url (it is not a built-in provider)")
    key_env = override.key_env or (builtin.key_env if builtin else None)
    return ProviderSpec(name, wire, base_url, key_env, auth=builtin.auth if builtin else "bearer")
