"""`unillm dashboard`: run the Streamlit dashboard (app.py beside this file) on a call log.

Streamlit runs as a child process, `python -m streamlit run app.py`, always headless: this module
prints the one URL line, opens the browser itself once the server answers (only when asked, or
when a browser is likely to be there), forwards Ctrl+C / SIGTERM to the child and returns its
exit code. The call log reaches the app as `UNILLM_LOG` in the child's environment, which
`unillm.config.load_settings` honours.

Nothing here imports streamlit (it is an optional extra, checked with `find_spec` by the CLI).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import webbrowser
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

APP_PATH = Path(__file__).with_name("app.py")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8501
PORTS_TRIED = 100  # how far past the default port to look for a free one
SIGNAL_GRACE_S = 2.0  # a Ctrl+C in the terminal stops the child by itself in well under this
STOP_GRACE_S = 10.0  # how long the child may take to stop after a signal before it is killed


class LaunchError(Exception):
    """The dashboard cannot start; the message says why and what to do."""


def check_log(db_path: Path, spool_dir: Path) -> None:
    """A call log exists once either its database or its spool folder does."""
    if db_path.exists() or spool_dir.is_dir():
        return
    raise LaunchError(
        f"there is no call log at {db_path} (nor a spool folder {spool_dir} beside it): "
        f"record some calls there first, e.g. `unillm demo --log {db_path}`, or point --log at an existing call log"
    )


def port_is_free(host: str, port: int) -> bool:
    """Whether Streamlit could listen on host:port; bound the way it binds (SO_REUSEADDR except on
    Windows), so a port left in TIME_WAIT counts as free and one with a listener does not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        if os.name != "nt":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def pick_port(host: str, port: int, *, explicit: bool, tries: int = PORTS_TRIED) -> int:
    """`port` if free; else, when the user did not ask for it, the next free one after it."""
    if port_is_free(host, port):
        return port
    if explicit:
        raise LaunchError(f"port {port} on {host} is already in use: pass another --port, or leave it out")
    for candidate in range(port + 1, min(port + tries, 65535) + 1):
        if port_is_free(host, candidate):
            return candidate
    raise LaunchError(f"ports {port} to {min(port + tries, 65535)} on {host} are all in use: pass a free --port")


def url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def local_url(host: str, port: int) -> str:
    """Where this machine reaches the server (a wildcard address is reached on loopback)."""
    if host in ("0.0.0.0", ""):
        return url("127.0.0.1", port)
    if host == "::":
        return url("::1", port)
    return url(host, port)


def browser_likely() -> bool:
    """Open a browser by default only where one can show: not over SSH, not on a Linux box
    without a display (Streamlit's own headless rule)."""
    if os.environ.get("SSH_CONNECTION") or os.environ.get("SSH_TTY"):
        return False
    if sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def streamlit_command(app_path: Path, host: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_path),
        "--server.address",
        host,
        "--server.port",
        str(port),
        # Always headless: no e-mail prompt, no second URL banner; the browser is opened here,
        # after the server answers, and only when wanted.
        "--server.headless",
        "true",
        "--logger.hideWelcomeMessage",
        "true",
        "--logger.level",
        "warning",  # nor Uvicorn's "started on" line
        "--browser.gatherUsageStats",
        "false",
        # An installed app, not one being edited: no file watcher, no rerun on save.
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        # A viewer's menu: no "Deploy" button or developer options ("minimal" would also hide the
        # "Running..." indicator, which says a page is still querying).
        "--client.toolbarMode",
        "viewer",
    ]


def wait_healthy(base_url: str, timeout: float, *, alive: Callable[[], bool] = lambda: True) -> bool:
    """Poll `/_stcore/health` until it answers "ok" (True), the timeout passes or `alive()` turns false."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        try:
            with urllib.request.urlopen(f"{base_url}/_stcore/health", timeout=2) as response:
                if response.status == 200 and response.read().strip() == b"ok":
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode  # killed by signal N: 128 + N, as a shell says


def run(
    db_path: Path,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    open_browser: bool = False,
    app_path: Path | None = None,
    echo: Callable[[str], None] = print,
    extra_env: dict[str, str] | None = None,
) -> int:
    """Run the dashboard on `db_path` until it stops or is stopped; return its exit code."""
    app = Path(app_path) if app_path is not None else APP_PATH
    if not app.is_file():
        raise LaunchError(f"the dashboard app {app} is missing (a broken install? reinstall unillm)")
    env = {**os.environ, **(extra_env or {}), "UNILLM_LOG": str(db_path)}
    child = subprocess.Popen(streamlit_command(app, host, port), env=env)
    echo(f"unillm dashboard: {url(host, port)}  (call log: {db_path}; Ctrl+C to stop)")
    return _supervise(child, open_url=local_url(host, port) if open_browser else None)


def _supervise(child: subprocess.Popen[bytes], *, open_url: str | None) -> int:
    """Pass Ctrl+C and SIGTERM on to the child, wait for it, and make sure it is gone on the way out.

    The child stays in this process group, so it dies with the terminal, and a signal sent to the
    group (Ctrl+C in the terminal, `timeout`, a service manager) reaches it directly: a signal is
    passed on only if the child is still running SIGNAL_GRACE_S later (someone signalled this
    process alone). A child still running STOP_GRACE_S after that is killed.
    """
    received: list[tuple[int, float]] = []  # (signal, when)
    passed_on = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        received.append((signum, time.monotonic()))

    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        if open_url is not None:
            threading.Thread(target=_open_when_ready, args=(open_url, child), daemon=True).start()
        while True:
            try:
                return _exit_code(child.wait(timeout=0.25))
            except subprocess.TimeoutExpired:
                if not received:
                    continue
                signum, since = received[0][0], time.monotonic() - received[0][1]
                if not passed_on and since > SIGNAL_GRACE_S:
                    passed_on = True
                    _pass_on(child, signum)
                if since > SIGNAL_GRACE_S + STOP_GRACE_S:
                    child.kill()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _stop(child)


def _pass_on(child: subprocess.Popen[bytes], signum: int) -> None:
    if os.name == "nt":  # a console Ctrl+C reaches the child by itself; SIGTERM means stop it
        if signum == signal.SIGTERM:
            child.terminate()
        return
    try:
        child.send_signal(signum)
    except ProcessLookupError:
        pass


def _open_when_ready(base_url: str, child: subprocess.Popen[bytes]) -> None:
    if wait_healthy(base_url, timeout=60, alive=lambda: child.poll() is None):
        webbrowser.open(base_url)


def _stop(child: subprocess.Popen[bytes], grace: Sequence[float] = (STOP_GRACE_S, 5.0)) -> None:
    """SIGTERM, then SIGKILL if it does not stop in time."""
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(grace[0])
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(grace[1])
