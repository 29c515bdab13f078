"""Tags, the SQL surface (Python and CLI), config errors, and the import contract."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import TEST_KEY, rows

import unillm
from unillm.config import ConfigError, load_settings

MESSAGES = [{"role": "user", "content": "hello"}]
CLI = [sys.executable, "-m", "unillm.cli"]


def test_tags_nest_and_are_queryable(patched, client) -> None:
    with unillm.tags(user="u1", feature="search"):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        with unillm.tags(feature="rerank", experiment=7):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    recorded = rows(
        "select tags['user'] as user, tags['feature'] as feature, tags['experiment'] as experiment "
        "from calls order by started_at"
    )
    assert recorded == [
        {"user": "u1", "feature": "search", "experiment": None},
        {"user": "u1", "feature": "rerank", "experiment": "7"},
        {"user": None, "feature": None, "experiment": None},
    ]


async def test_tags_are_per_asyncio_task(patched, aclient) -> None:
    async def as_user(name: str) -> None:
        with unillm.tags(user=name):
            for _ in range(3):
                await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
                await asyncio.sleep(0)

    await asyncio.gather(as_user("alice"), as_user("bob"))
    counts = rows("select tags['user'] as user, count(*) as n from calls group by 1 order by 1")
    assert counts == [{"user": "alice", "n": 3}, {"user": "bob", "n": 3}]


def test_sql_result_shapes(patched, client) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    unillm.flush()
    result = unillm.sql("select request_model, status from calls")
    assert result.columns == ["request_model", "status"]
    assert result.rows == [("gpt-4o-mini", "ok")]
    assert result.to_dicts() == [{"request_model": "gpt-4o-mini", "status": "ok"}]
    assert "gpt-4o-mini" in str(result)
    with pytest.raises(ValueError, match="read-only"):
        unillm.sql("delete from calls")


def test_cli_sql_prints_a_table_and_refuses_writes(patched, client, log_path) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    unillm.flush()
    shown = subprocess.run(
        [*CLI, "sql", "select request_model, status, attempts from calls", "--log", str(log_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert "gpt-4o-mini" in shown.stdout and "request_model" in shown.stdout and "1 row" in shown.stdout

    as_csv = subprocess.run(
        [*CLI, "sql", "select status from calls", "--log", str(log_path), "--format", "csv"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert as_csv.stdout.split() == ["status", "ok"]

    refused = subprocess.run(
        [*CLI, "sql", "drop table calls", "--log", str(log_path)], capture_output=True, text=True, timeout=60
    )
    assert refused.returncode != 0
    assert "read-only" in refused.stderr
    assert unillm.sql("select count(*) from calls").scalar() == 1


def test_a_second_process_reads_the_log_while_the_app_is_recording(tmp_path, fake) -> None:
    """The plain case 'app running + a reader': no lock error, and new calls show up."""
    log = tmp_path / "calls.duckdb"
    app = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import time, openai, unillm
                unillm.patch(log={str(log)!r}, flush_interval=0.05, fold_interval=0.1)
                client = openai.OpenAI(base_url={fake.base_url!r}, api_key="sk-x")
                end = time.time() + 4
                while time.time() < end:
                    client.chat.completions.create(model="gpt-4o-mini", messages=[{{"role": "user", "content": "hi"}}])
                """
            ),
        ],
    )
    counts = []
    try:
        while app.poll() is None:
            counts.append(unillm.sql("select count(*) from calls", log=str(log)).scalar())
    finally:
        app.wait(timeout=30)
    assert app.returncode == 0
    assert len(counts) >= 3 and counts == sorted(counts)
    assert counts[-1] > counts[0]
    final = unillm.sql("select count(*) as n, count(distinct call_id) as ids from calls", log=str(log)).to_dicts()
    assert final[0]["n"] == final[0]["ids"] >= counts[-1]


def test_config_file_errors_name_the_file_and_the_key(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "unillm.toml").write_text('flush_interval = "soon"\n')
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert "unillm.toml" in str(raised.value) and "flush_interval" in str(raised.value)

    (tmp_path / "unillm.toml").write_text("flush_intervall = 1\n")
    with pytest.raises(ConfigError, match="flush_intervall.*not a unillm setting"):
        load_settings()

    (tmp_path / "unillm.toml").write_text('log = "${UNILLM_TEST_UNSET_VAR}/calls.duckdb"\n')
    with pytest.raises(ConfigError, match="UNILLM_TEST_UNSET_VAR is not set"):
        load_settings()


def test_config_sources_and_precedence(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.unillm]\nflush_interval = 2.0\nlog = "from-pyproject.duckdb"\n')
    assert load_settings().flush_interval == 2.0
    (tmp_path / "unillm.toml").write_text("flush_interval = 3.0\n")
    assert load_settings().flush_interval == 3.0
    monkeypatch.setenv("UNILLM_LOG", str(tmp_path / "env.duckdb"))
    assert load_settings().log_path() == tmp_path / "env.duckdb"
    assert load_settings(flush_interval=0.25).flush_interval == 0.25


def test_import_has_no_side_effects(tmp_path) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data")}
    probe = (
        "import sys, unillm\n"
        "heavy = [m for m in ('openai', 'duckdb', 'streamlit', 'opentelemetry', 'httpx', 'genai_prices', 'rich')"
        " if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60
    )
    assert out.stdout.strip() == "[]", out.stderr
    assert list(tmp_path.iterdir()) == []  # no file or folder created


def test_patch_without_openai_warns_and_leaves_the_app_running(tmp_path) -> None:
    probe = textwrap.dedent(
        """
        import sys, warnings
        sys.modules["openai"] = None  # as if it were not installed
        import importlib.util
        real_find_spec = importlib.util.find_spec
        importlib.util.find_spec = lambda name, *a: None if name == "openai" else real_find_spec(name, *a)
        import unillm
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            unillm.patch()
        print(caught[0].message)
        print("app still running")
        """
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert "openai package is not installed" in out.stdout
    assert "pip install openai" in out.stdout
    assert "app still running" in out.stdout


def test_recording_survives_process_exit(tmp_path, fake) -> None:
    log = tmp_path / "calls.duckdb"
    script = textwrap.dedent(
        f"""
        import openai, unillm
        unillm.patch(log={str(log)!r}, flush_interval=30)  # no periodic flush: exit must write
        client = openai.OpenAI(base_url={fake.base_url!r}, api_key={TEST_KEY!r})
        for _ in range(25):
            client.chat.completions.create(model="gpt-4o-mini", messages=[{{"role": "user", "content": "hi"}}])
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert unillm.sql("select count(*) from calls", log=str(log)).scalar() == 25
    assert not any(Path(str(log.with_suffix(".spool"))).glob("*.jsonl"))  # folded at exit


def test_demo_runs_end_to_end(tmp_path) -> None:
    log = tmp_path / "demo.duckdb"
    out = subprocess.run(
        [*CLI, "demo", "--calls", "30", "--quiet", "--log", str(log)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "(total)" in out.stdout and "cost $" in out.stdout
    total = unillm.sql(
        "select count(*) as n, sum(cost_usd) as usd, count(*) filter (where attempts > 1) as retried from calls",
        log=str(log),
    ).to_dicts()[0]
    assert total["n"] >= 30 + 18  # the app's requests (agent steps make two calls) and the async batch
    assert total["usd"] > 0
    assert total["retried"] >= 1  # the simulated outage made the SDK retry
    # The routed calls failed over while the simulated OpenAI was down, and the breakers opened.
    outage = unillm.sql(
        "select provider, count(*) as n from calls where tags['phase'] = '2 outage' and route is not null "
        "and status = 'ok' group by 1",
        log=str(log),
    ).to_dicts()
    assert {row["provider"] for row in outage} & {"anthropic", "gemini"}
    assert "Routed calls before, during and after the OpenAI outage" in out.stdout
    opened = unillm.sql("select count(*) from breaker_events where to_state = 'open'", log=str(log)).scalar()
    assert opened >= 1


def test_demo_without_the_native_sdks_puts_openai_wire_providers_behind_openai() -> None:
    from unillm.adapters.registry import BUILTIN_PROVIDERS
    from unillm.demo import demo_routes
    from unillm.testing.http_server import require_sdk

    wires = {spec.name: spec.wire for spec in BUILTIN_PROVIDERS}
    targets = [t for route in demo_routes(native=False).values() for t in route["targets"]]
    assert {wires[t.split("/")[0]] for t in targets} == {"openai"}
    with pytest.raises(ImportError, match=r"FakeX is built from the no-such-sdk SDK's own types: pip install"):
        require_sdk("no-such-sdk", "FakeX")
