"""The queue cap: past `max_queue` unwritten calls, new ones are dropped, never blocking the app;
every drop is counted in `unillm.stats()` and in the log's `recorder_drops` table."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import openai
import pytest
from conftest import TEST_KEY, rows

import unillm
from unillm import diagnostics
from unillm.testing import FakeOpenAI

ASK = [{"role": "user", "content": "hi"}]


def test_calls_past_the_queue_cap_are_dropped_and_counted_in_the_log(
    log_path: Path, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(log_path.parent.parent)
    # The writer thread wakes once a minute: the queue fills up as if the disk could not keep up.
    unillm.patch(log=str(log_path), max_queue=100, flush_interval=60, fold_interval=60)
    try:
        client = openai.OpenAI(base_url=fake.base_url, api_key=TEST_KEY, max_retries=0)
        answers = [client.chat.completions.create(model="gpt-4o-mini", messages=ASK) for _ in range(130)]
        assert all(a.choices[0].message.content for a in answers)  # the app got every answer
        assert unillm.stats()["recorder"]["dropped"] == 30

        assert rows("select count(*) as n from calls") == [{"n": 100}]
        drops = rows("select dropped, reason, process_id, host from recorder_drops")
        assert [(d["dropped"], d["reason"]) for d in drops] == [(30, "queue_full")]
        assert drops[0]["process_id"] and drops[0]["host"]
        # Counted once: a later flush with no new drops adds no row.
        client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
        assert rows("select sum(dropped) as n, count(*) as r from recorder_drops") == [{"n": 30, "r": 1}]
    finally:
        unillm.unpatch()
        diagnostics.reset()

    # `unillm doctor` says so.
    doctor = subprocess.run(
        [sys.executable, "-m", "unillm", "doctor", "--no-probe"],
        capture_output=True,
        text=True,
        env={**os.environ, "UNILLM_LOG": str(log_path), "COLUMNS": "200"},
        check=True,
    )
    assert "Records the recorder dropped" in doctor.stdout and "queue_full" in doctor.stdout, doctor.stdout
