"""``python -m devstack.up`` (``make up``): starts localbase, a worker and the dock; Ctrl-C
stops all three; a child that dies takes the others down with a clear message."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from devstack.localbase import ROOT, free_port
from localbase import keys

STARTUP = 120.0


@dataclass
class Supervisor:
    """``python -m devstack.up`` with its output collected line by line."""

    args: list[str]
    process: subprocess.Popen[str] | None = None
    lines: list[str] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)
    reader: threading.Thread = field(init=False)

    def __post_init__(self) -> None:
        self.reader = threading.Thread(target=self._read, name="up-output", daemon=True)

    def start(self) -> Supervisor:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devstack.up", *self.args],
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.reader.start()
        return self

    def _read(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        with self.process.stdout as output:
            for line in output:
                with self._changed:
                    self.lines.append(line.rstrip("\n"))
                    self._changed.notify_all()

    def wait_for_line(self, pattern: str, timeout: float = STARTUP) -> re.Match[str]:
        regex = re.compile(pattern)
        found: list[re.Match[str]] = []

        def seen() -> bool:
            found.extend(m for line in self.lines if (m := regex.search(line)))
            return bool(found)

        with self._changed:
            assert self._changed.wait_for(seen, timeout), "\n".join(self.lines[-60:])
        return found[0]

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def supervisors() -> Iterator[list[Supervisor]]:
    started: list[Supervisor] = []
    yield started
    for supervisor in started:
        if supervisor.process is not None and supervisor.process.poll() is None:
            supervisor.process.send_signal(signal.SIGTERM)
            supervisor.process.wait(60)
        supervisor.reader.join(10)


def ports_args(tmp_path: Path) -> tuple[list[str], int, int]:
    api, db, dock = free_port(), free_port(), free_port()
    args = ["--api-port", str(api), "--db-port", str(db), "--dock-port", str(dock)]
    return [*args, "--data-dir", str(tmp_path / "localbase")], api, dock


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_up_runs_all_three_and_ctrl_c_stops_them(
    tmp_path: Path, supervisors: list[Supervisor]
) -> None:
    args, api, dock = ports_args(tmp_path)
    up = Supervisor(args).start()
    supervisors.append(up)
    url = up.wait_for_line(r"Processing Dock: (http://127\.0\.0\.1:\d+)").group(1)
    assert url == f"http://127.0.0.1:{dock}"
    with_worker = (ROOT / "worker" / "__main__.py").exists()
    expected = "localbase, worker, dock" if with_worker else "localbase, dock"
    assert f"running: {expected}." in up.output
    page = httpx.get(url, timeout=10)
    assert page.status_code == 200
    assert keys.SERVICE_ROLE_KEY not in page.text
    assert httpx.get(f"http://127.0.0.1:{api}/health", timeout=10).status_code == 200

    assert up.process is not None
    up.process.send_signal(signal.SIGINT)
    assert up.process.wait(90) == 0
    up.wait_for_line(r"\[up\] all stopped", timeout=5)
    assert "SIGINT received; stopping" in up.output
    assert not listening(api)
    assert not listening(dock)


def test_when_a_child_dies_the_others_are_stopped(
    tmp_path: Path, supervisors: list[Supervisor]
) -> None:
    args, api, dock = ports_args(tmp_path)
    with socket.socket() as taken:  # the dock cannot bind its port: it exits at once
        taken.bind(("127.0.0.1", dock))
        taken.listen()
        up = Supervisor([*args, "--no-worker"]).start()
        supervisors.append(up)
        assert up.process is not None
        assert up.process.wait(STARTUP) == 1
    up.wait_for_line(r"\[up\] all stopped", timeout=5)
    assert re.search(r"\[up\] dock exited with code \d+; stopping the others", up.output)
    assert not listening(api)
