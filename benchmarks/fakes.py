"""Fake providers over 127.0.0.1, served by a child process of their own (as a provider would be:
their threads do not compete with the measured side for the benchmark's GIL).

    with served("openai", "openai:529", "openai:stall", "anthropic", "gemini") as urls:
        urls[0]  # http://127.0.0.1:PORT/v1 ...

Specs: `openai` (FakeOpenAI, 12-word answers), `openai:words=N` (N one-word chunks per stream),
`openai:529` / `openai:503` (every request answered with that status), `openai:stall` (every
request accepted, then no answer for 30 s), `anthropic` (FakeAnthropic), `gemini` (FakeGemini).
The URLs are FakeOpenAI's `/v1` URL (the openai SDK's base_url) and the roots of FakeAnthropic and
FakeGemini (LiteLLM's gemini provider wants the root + `/v1beta`).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
from collections.abc import Iterator

SERVER = textwrap.dedent(
    """
    import sys
    from unillm.testing import FakeAnthropic, FakeGemini, FakeOpenAI

    BIG = 10**9
    servers, urls = [], []
    for spec in sys.argv[1:]:
        kind, _, arg = spec.partition(":")
        if kind == "openai":
            words = int(arg.split("=")[1]) if arg.startswith("words=") else 12
            fake = FakeOpenAI(answer_words=words, words_per_chunk=1 if arg.startswith("words=") else 2, record=False)
            if arg.isdigit():
                fake.fail_next(status=int(arg), count=BIG)
            elif arg == "stall":
                fake.stall_next(seconds=30.0, count=BIG)
            url = fake.base_url
        elif kind == "anthropic":
            fake = FakeAnthropic(record=False)
            url = fake.base_url
        elif kind == "gemini":
            fake = FakeGemini(record=False)
            url = fake.url
        else:
            raise SystemExit(f"unknown fake {spec!r}")
        servers.append(fake.__enter__())
        urls.append(url)
    print(" ".join(urls), flush=True)
    sys.stdin.read()  # serve until the benchmark closes our stdin
    for s in servers:
        s.__exit__(None, None, None)
    """
)


@contextlib.contextmanager
def served(*specs: str) -> Iterator[list[str]]:
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, *specs], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline().split()
        if len(line) != len(specs):
            raise RuntimeError(f"fake servers {specs} did not start")
        yield line
    finally:
        assert server.stdin is not None
        server.stdin.close()  # the server exits when its stdin closes
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
