"""OpenAI-wire providers (OpenAI, Mistral, DeepSeek, Groq, Together, Fireworks, xAI, OpenRouter,
Qwen, Perplexity, Ollama, vLLM, ...): same wire, their own base URL, key and small quirks.

Quirks handled (each tested against the simulated provider):
- Mistral accepts only 9-character alphanumeric tool-call ids: ids from other providers in the
  conversation are mapped to such ids deterministically (same id in → same id out), so a
  conversation can fail over to Mistral mid-way and back.
- An error object inside a 200 stream (OpenRouter) is passed on as the SDK expects it (the SDK
  raises `APIError`); the recorder marks the call interrupted.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from unillm.adapters.base import ProviderRequest, Target, Translation, UnsupportedFeature, openai_error
from unillm.fastjson import dumps

_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def mistral_tool_call_id(original: str) -> str:
    """A 9-character alphanumeric id standing for `original` (stable, so results still match)."""
    if len(original) == 9 and original.isalnum():
        return original
    digest = hashlib.sha256(original.encode()).digest()
    return "".join(_ALNUM[b % len(_ALNUM)] for b in digest[:9])


def _remap_tool_call_ids(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    remapped = []
    for message in messages:
        message = dict(message)
        if message.get("tool_calls"):
            message["tool_calls"] = [{**call, "id": mistral_tool_call_id(call["id"])} for call in message["tool_calls"]]
        if message.get("tool_call_id"):
            message["tool_call_id"] = mistral_tool_call_id(message["tool_call_id"])
        remapped.append(message)
    return remapped


class OpenAICompatAdapter:
    wire = "openai"

    def build_request(self, target: Target, translation: Translation, body: dict[str, Any]) -> ProviderRequest:
        if not target.provider.base_url:
            raise UnsupportedFeature(
                f"{target.provider.name}: set base_url in [providers.{target.provider.name}] of the config "
                "(for Azure: https://<resource>.openai.azure.com/openai/v1)"
            )
        payload = {**body, "model": target.model}
        if target.provider.name == "mistral" and payload.get("messages"):
            payload["messages"] = _remap_tool_call_ids(payload["messages"])
        headers = {"content-type": "application/json"}
        if target.api_key and target.provider.auth == "api-key":
            headers["api-key"] = target.api_key
        elif target.api_key:
            headers["authorization"] = f"Bearer {target.api_key}"
        url = target.provider.base_url.rstrip("/") + translation.endpoint
        translation.extra["provider"] = target.provider.name
        return ProviderRequest("POST", url, headers, dumps(payload))

    def translate_response(self, translation: Translation, status: int, body: bytes) -> tuple[int, bytes]:
        if status < 400:
            return status, body  # already OpenAI wire; the recorder reads usage from it
        return status, _name_the_provider(translation.extra.get("provider", "provider"), body)

    def stream_translator(self, translation: Translation) -> PassThrough:
        return PassThrough()


def _name_the_provider(provider: str, body: bytes) -> bytes:
    """Prefix the provider's error message with its name, so the app's exception says who failed."""
    try:
        payload = json.loads(body)
    except ValueError:
        text = body.decode("utf-8", "replace")[:500]
        return openai_error(0, f"{provider}: {text}", kind="api_error")
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        error["message"] = f"{provider}: {error.get('message') or ''}"
    elif isinstance(error, str):
        payload["error"] = {"message": f"{provider}: {error}", "type": "api_error"}
    else:
        return openai_error(0, f"{provider}: {json.dumps(payload)[:500]}", kind="api_error")
    return json.dumps(payload).encode()


class PassThrough:
    def feed(self, chunk: bytes) -> bytes:
        return chunk

    def close(self) -> bytes:
        return b""
