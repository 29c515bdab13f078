"""Four app processes write one call log while readers query it (`unillm.sql`, a plain DuckDB client
in its own process, and the dashboard's pages): no lock error reaches anyone, every call is stored
exactly once, and a finished call is visible to readers within 2 seconds."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
import threading
import time

import unillm

PROCESSES, CALLS = 4, 1500

WORKER = textwrap.dedent(
    """
    import sys, time
    import openai, unillm

    base_url, log, worker, calls = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    unillm.patch(log=log)
    client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0)
    ask = [{"role": "user", "content": "hi"}]
    for i in range(calls):
        tag = "marker" if i == calls // 2 else "call"
        with unillm.tags(worker=worker, kind=tag):
            client.chat.completions.create(model="gpt-4o-mini", messages=ask)
        if tag == "marker":
            print(f"marker {time.time()}", flush=True)
    """
)

# "Any DuckDB client" in its own process, like the duckdb CLI: short read-only queries in a loop.
PLAIN_READER = textwrap.dedent(
    """
    import sys, time, pathlib
    import duckdb

    log, stop = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    reads = 0
    while not stop.exists():
        if log.exists():
            try:
                with duckdb.connect(str(log), read_only=True) as con:
                    con.execute("select count(*) from calls").fetchone()
                    reads += 1
            except duckdb.IOException:
                pass  # a fold holds the lock this moment: a plain client retries
        time.sleep(0.01)
    assert reads > 0
    """
)


def test_four_writers_and_busy_readers_lose_nothing(tmp_path, monkeypatch) -> None:
    from unillm.testing import FakeOpenAI

    log = tmp_path / "calls.duckdb"
    reader_errors: list[BaseException] = []
    stop = threading.Event()
    renders: list[str] = []

    def read_with_the_dashboard() -> None:
        """The dashboard's pages, rendered again and again (where the dashboard extra is installed)."""
        from pathlib import Path

        from streamlit.testing.v1 import AppTest

        app = str(Path(unillm.__file__).parent / "dashboard" / "app.py")
        while not stop.is_set():
            for page in ("overview", "failover", "calls"):
                try:
                    at = AppTest.from_file(app, default_timeout=60)
                    at.query_params["page"] = page
                    at.run()
                    problems = [e.value for e in at.exception] + [e.value for e in at.error]
                    if problems:
                        reader_errors.append(RuntimeError(f"dashboard {page}: {problems}"))
                    renders.append(page)
                except BaseException as exc:  # noqa: BLE001
                    reader_errors.append(exc)

    def read_with_unillm() -> None:
        while not stop.is_set():
            try:
                unillm.sql("select count(*), sum(cost_usd) from calls", log=str(log))
            except BaseException as exc:  # noqa: BLE001 - any error reaching a reader is the failure
                reader_errors.append(exc)

    with FakeOpenAI(record=False) as fake:
        readers = [threading.Thread(target=read_with_unillm)]
        if importlib.util.find_spec("streamlit") is not None:
            monkeypatch.setenv("UNILLM_LOG", str(log))  # where the dashboard reads
            readers.append(threading.Thread(target=read_with_the_dashboard))
        for reader in readers:
            reader.start()
        stop_file = tmp_path / "stop"
        plain = subprocess.Popen(
            [sys.executable, "-c", PLAIN_READER, str(log), str(stop_file)], stderr=subprocess.PIPE, text=True
        )
        workers = [
            subprocess.Popen(
                [sys.executable, "-c", WORKER, fake.base_url, str(log), str(n), str(CALLS)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for n in range(PROCESSES)
        ]
        # A finished call (each worker's marker) becomes visible to a reader within 2 s.
        for n, worker in enumerate(workers):
            assert worker.stdout is not None
            line = worker.stdout.readline()
            assert line.startswith("marker"), worker.stderr.read() if worker.stderr else line
            finished_at = float(line.split()[1])
            sql = "select count(*) from calls where tags['worker'] = ? and tags['kind'] = 'marker'"
            while not unillm.sql(sql, [str(n)], log=str(log)).scalar():
                assert time.time() - finished_at < 2.0, f"worker {n}'s marker call not visible after 2 s"
                time.sleep(0.02)
        for worker in workers:
            _, errors = worker.communicate(timeout=300)
            assert worker.returncode == 0, errors
            assert "Error" not in errors, errors  # nothing unillm reported reached the app's stderr
        stop.set()
        stop_file.touch()
        for reader in readers:
            reader.join(timeout=30)
        _, plain_errors = plain.communicate(timeout=60)
        assert plain.returncode == 0, plain_errors

    assert not reader_errors, reader_errors[:3]
    if importlib.util.find_spec("streamlit") is not None:
        assert len(renders) >= 3, renders  # the dashboard really read while the apps wrote
    total, distinct = unillm.sql("select count(*), count(distinct call_id) from calls", log=str(log)).rows[0]
    assert (total, distinct) == (PROCESSES * CALLS, PROCESSES * CALLS)
    per_worker = unillm.sql("select tags['worker'], count(*) from calls group by 1 order by 1", log=str(log)).rows
    assert per_worker == [(str(n), CALLS) for n in range(PROCESSES)]
