"""`unillm dashboard`: Streamlit as an optional extra, the call-log check, the port, the process."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from browser import running_dashboard, write_stand_in_app

from unillm.dashboard import launch

# The tests that start the dashboard (or get past the Streamlit check) need Streamlit; the rest
# run in every environment, where "without Streamlit" is the real thing rather than simulated.
needs_streamlit = pytest.mark.skipif(
    importlib.util.find_spec("streamlit") is None,
    reason="the dashboard tests need Streamlit (pip install 'unillm[dashboard]')",
)


def cli(
    *args: str, cwd: Path, hide_streamlit: bool = False, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`unillm ARGS` in a fresh interpreter; `hide_streamlit` makes it as if Streamlit were not
    installed (in an environment without it, it is simply not there)."""
    hide = "sys.modules['streamlit'] = None; " if hide_streamlit else ""  # find_spec() then says None
    code = f"import sys; {hide}from unillm.cli import main; main(sys.argv[1:], prog_name='unillm')"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60, cwd=cwd, env=env
    )


@pytest.fixture
def recorded_log(tmp_path: Path) -> Path:
    """A call log that exists (its spool folder is enough: the app folds it on first read)."""
    log = tmp_path / "calls.duckdb"
    (tmp_path / "calls.spool").mkdir()
    return log


def test_without_streamlit_it_says_how_to_install_it(tmp_path: Path, recorded_log: Path) -> None:
    done = cli("dashboard", "--log", str(recorded_log), hide_streamlit=True, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == "Error: the dashboard needs Streamlit: pip install 'unillm[dashboard]'"
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_neither_unillm_nor_its_cli_imports_streamlit(tmp_path: Path) -> None:
    probe = "import sys, unillm, unillm.cli, unillm.dashboard.launch; print('streamlit' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.stdout.strip() == "False", done.stderr


def test_a_missing_log_is_named_with_its_spool_folder(tmp_path: Path) -> None:
    log = tmp_path / "nothing" / "calls.duckdb"
    with pytest.raises(launch.LaunchError) as caught:
        launch.check_log(log, log.with_name("calls.spool"))
    message = str(caught.value)
    assert f"no call log at {log}" in message
    assert str(log.with_name("calls.spool")) in message
    assert f"unillm demo --log {log}" in message
    launch.check_log(log, tmp_path)  # a spool folder alone is a call log (not folded yet)
    log.parent.mkdir()
    log.touch()
    launch.check_log(log, log.with_name("calls.spool"))


@needs_streamlit
def test_cli_refuses_a_missing_log_naming_it(tmp_path: Path) -> None:
    log = tmp_path / "calls.duckdb"
    done = cli("dashboard", "--log", str(log), "--no-open", cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"no call log at {log}" in done.stderr
    assert f"{tmp_path / 'calls.spool'}" in done.stderr and "unillm demo" in done.stderr

    # without --log: the usual location, which UNILLM_LOG sets
    elsewhere = tmp_path / "env" / "calls.duckdb"
    done = cli("dashboard", "--no-open", cwd=tmp_path, env={**os.environ, "UNILLM_LOG": str(elsewhere)})
    assert done.returncode == 1 and f"no call log at {elsewhere}" in done.stderr


def _listener(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    sock = socket.socket()
    sock.bind((host, port))
    sock.listen()
    return sock


def test_port_selection() -> None:
    with _listener() as taken:
        port = taken.getsockname()[1]
        assert not launch.port_is_free("127.0.0.1", port)
        picked = launch.pick_port("127.0.0.1", port, explicit=False)
        assert picked > port and launch.port_is_free("127.0.0.1", picked)
        with pytest.raises(launch.LaunchError, match=f"port {port} on 127.0.0.1 is already in use"):
            launch.pick_port("127.0.0.1", port, explicit=True)
    assert launch.pick_port("127.0.0.1", port, explicit=True) == port  # free again


@needs_streamlit
def test_cli_refuses_a_taken_port_given_explicitly(tmp_path: Path, recorded_log: Path) -> None:
    with _listener() as taken:
        port = taken.getsockname()[1]
        done = cli("dashboard", "--log", str(recorded_log), "--port", str(port), "--no-open", cwd=tmp_path)
    assert done.returncode == 1
    assert f"Error: port {port} on 127.0.0.1 is already in use" in done.stderr


def _listening_addresses(port: int) -> list[str]:
    """Local addresses listening on `port`, from /proc/net/tcp{,6} (Linux)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                if len(raw) == 4:
                    found.append(socket.inet_ntop(socket.AF_INET, raw[::-1]))
                else:  # four little-endian 32-bit words
                    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                    found.append(socket.inet_ntop(socket.AF_INET6, words))
    return found


@needs_streamlit
def test_dashboard_answers_on_the_printed_url_on_loopback_only(tmp_path: Path, recorded_log: Path) -> None:
    app = write_stand_in_app(tmp_path)
    with running_dashboard(recorded_log, app_path=app) as url:  # waits for the printed URL to answer
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as response:
            assert response.read().decode() == "ok"
        port = int(url.rsplit(":", 1)[1])
        if Path("/proc/net/tcp").exists():
            assert _listening_addresses(port) == ["127.0.0.1"]


@needs_streamlit
def test_default_port_moves_on_when_taken(tmp_path: Path, recorded_log: Path) -> None:
    app = write_stand_in_app(tmp_path)
    try:
        held = _listener(port=launch.DEFAULT_PORT)
    except OSError:  # already taken by something else: just as good
        held = None
    try:
        with running_dashboard(recorded_log, port=0, app_path=app) as url:
            assert url.startswith("http://127.0.0.1:") and not url.endswith(f":{launch.DEFAULT_PORT}")
    finally:
        if held is not None:
            held.close()


def test_streamlit_command_is_headless_and_private() -> None:
    command = launch.streamlit_command(Path("app.py"), "127.0.0.1", 8600)
    assert command[:5] == [sys.executable, "-m", "streamlit", "run", "app.py"]
    options = dict(zip(command[5::2], command[6::2], strict=True))
    assert options["--server.address"] == "127.0.0.1" and options["--server.port"] == "8600"
    assert options["--server.headless"] == "true" and options["--browser.gatherUsageStats"] == "false"
    assert launch.url("::1", 8600) == "http://[::1]:8600"
    assert launch.local_url("0.0.0.0", 8600) == "http://127.0.0.1:8600"


def test_browser_opens_by_default_only_where_one_can_show(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SSH_CONNECTION", "SSH_TTY", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert not launch.browser_likely()  # a Linux box without a display
    monkeypatch.setenv("DISPLAY", ":0")
    assert launch.browser_likely()
    monkeypatch.setenv("SSH_CONNECTION", "10.0.0.1 50000 10.0.0.2 22")
    assert not launch.browser_likely()  # over SSH: open it on your own machine instead
    monkeypatch.delenv("SSH_CONNECTION")
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.delenv("DISPLAY")
    assert launch.browser_likely()
