"""One child process of the development stack: start it, wait until it answers, stop it
(SIGTERM, then SIGKILL after a timeout). Every launcher here — ``make up``, the tests' and the
benchmarks' localbase, worker and dock — uses these, so they stop the same way."""

from __future__ import annotations

import atexit
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx

#: The checkout: children run from here.
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def stop(process: subprocess.Popen[bytes] | None, timeout: float) -> int | None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout``; its exit code (None if
    it had to be killed, or there was no process)."""
    if process is None:
        return None
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return None


def stop_at_exit(process: subprocess.Popen[bytes]) -> None:
    """Safety net: never leave a child behind when the parent's run ends abruptly."""
    atexit.register(stop, process, 30.0)


def wait_until_answers(
    url: str,
    process: subprocess.Popen[bytes] | None,
    timeout: float,
    describe: str,
    log: Path | None = None,
    watch: Callable[[], None] | None = None,
) -> None:
    """Until ``url`` answers 200. Raises if the process exits first or time runs out (with the
    end of its log, when there is one); ``watch`` is called on every try and may raise too."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=1.0) as http:
        while time.monotonic() < deadline:
            if watch is not None:
                watch()
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"{describe} exited early:\n{_tail(log)}")
            try:
                if http.get(url).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
    raise TimeoutError(f"{describe} did not answer within {timeout:g} s:\n{_tail(log)}")


def _tail(log: Path | None, chars: int = 4000) -> str:
    if log is None or not log.exists():
        return ""
    return log.read_text(errors="replace")[-chars:]
