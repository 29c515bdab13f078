"""What survives the end of the app's process: SIGTERM loses nothing, kill -9 at most one flush interval."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import unillm

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX signals")

APP = textwrap.dedent(
    """
    import sys, time
    import openai, unillm

    base_url, log, flush_interval, calls = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    unillm.patch(log=log, flush_interval=flush_interval, fold_interval=3600)
    client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0)
    for _ in range(calls):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    print("done", flush=True)
    time.sleep(60)  # a web worker idling until its supervisor stops it
    """
)


def _start_app(fake_url: str, log: Path, flush_interval: float, calls: int) -> subprocess.Popen[str]:
    app = subprocess.Popen(
        [sys.executable, "-c", APP, fake_url, str(log), str(flush_interval), str(calls)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert app.stdout is not None
    line = app.stdout.readline()
    assert line.strip() == "done", app.stderr.read() if app.stderr else line
    return app


def _logged(log: Path) -> int:
    return int(unillm.sql("select count(*) from calls", log=str(log)).scalar())


def test_sigterm_loses_nothing(fake, tmp_path) -> None:
    log = tmp_path / "calls.duckdb"
    app = _start_app(fake.base_url, log, flush_interval=60, calls=150)  # no periodic flush comes in time
    app.send_signal(signal.SIGTERM)
    assert app.wait(timeout=30) == -signal.SIGTERM  # still dies of the signal, as without unillm
    assert _logged(log) == 150


def test_kill_9_loses_at_most_the_last_flush_interval(fake, tmp_path) -> None:
    log = tmp_path / "calls.duckdb"
    app = _start_app(fake.base_url, log, flush_interval=0.2, calls=150)
    time.sleep(0.6)  # longer than the flush interval: everything made before now is on disk
    app.kill()
    app.wait(timeout=30)
    assert _logged(log) == 150
