"""A routed call's Request and Response are built without the libraries' `content=` preparation
(unillm.adapters.http_messages); they must come out as the libraries' own constructors make them."""

from __future__ import annotations

import importlib

import pytest

from unillm.adapters import http_messages

pytestmark = pytest.mark.sdk_independent  # scripts/test runs it in one openai environment only

LIBRARIES = [name for name in ("httpx", "httpx2") if importlib.util.find_spec(name) is not None]
HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01", "content-type": "application/json"}
EXTENSIONS = {"timeout": {"connect": 5.0, "read": 600.0, "write": 600.0, "pool": 600.0}}


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("url", ["https://api.anthropic.com/v1/messages", "http://127.0.0.1:8123/v1beta/models/x"])
@pytest.mark.parametrize("body", [b'{"model":"claude","messages":[]}', b""])
def test_a_provider_request_is_the_one_the_library_would_build(library: str, url: str, body: bytes) -> None:
    http = importlib.import_module(library)
    theirs = http.Request("POST", http.URL(url), headers=HEADERS, content=body, extensions=EXTENSIONS)
    ours = http_messages.request(http, "POST", http.URL(url), HEADERS, body, EXTENSIONS)
    assert ours.headers.raw == theirs.headers.raw  # Host first, Content-Length last, as given between
    assert ours.content == theirs.content == body
    assert (ours.method, ours.url, ours.extensions) == (theirs.method, theirs.url, theirs.extensions)
    assert b"".join(ours.stream) == body  # what a transport sends


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("content", [b'{"id":"chatcmpl-1","object":"chat.completion"}', b""])
def test_a_translated_answer_is_the_one_the_library_would_build(library: str, content: bytes) -> None:
    http = importlib.import_module(library)
    headers = {"retry-after": "3", "content-type": "application/json"}
    theirs = http.Response(429, headers=headers, content=content)
    ours = http_messages.response(http, 429, headers, content)
    assert ours.headers.raw == theirs.headers.raw
    assert ours.content == theirs.content == content
    state = ("status_code", "is_closed", "is_stream_consumed", "num_bytes_downloaded")
    assert [getattr(ours, name) for name in state] == [getattr(theirs, name) for name in state]
    assert ours.json() == theirs.json() if content else ours.text == theirs.text == ""
    assert b"".join(ours.iter_bytes()) == content  # read again, as the SDK's client does
