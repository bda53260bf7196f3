"""``jobdock watch``: a live tail of job changes over Realtime (on a localbase of its own)."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.localbase import ROOT, LocalbaseProcess
from jobdock import actions
from tests.conftest import connect


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalbaseProcess]:
    own = LocalbaseProcess(tmp_path / "data")
    own.start()
    yield own
    own.stop()


@pytest.fixture
def lines(stack: LocalbaseProcess) -> Iterator[queue.Queue[str]]:
    env = {
        **os.environ,
        "SUPABASE_URL": stack.url,
        "SUPABASE_SERVICE_ROLE_KEY": stack.service_key,
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "jobdock.cli", "--json", "watch"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.put(line)

    threading.Thread(target=pump, daemon=True).start()
    yield output
    process.terminate()
    process.wait(30)
    assert process.stdout is not None
    process.stdout.close()


def next_line(output: queue.Queue[str], timeout: float = 30) -> str:
    try:
        return output.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no output from jobdock watch within {timeout} s") from None


def test_watch_prints_changes(stack: LocalbaseProcess, lines: queue.Queue[str]) -> None:
    assert "watching background_jobs" in next_line(lines)
    client = connect(stack.url, stack.service_key)
    job = actions.enqueue(client, "demo.unknown-type-nobody-claims", {"x": 1}, force=True)
    line = next_line(lines)
    assert f'"id": "{job.id}"' in line
    assert '"change": "INSERT"' in line
    actions.request_cancel(client, job.id)
    line = next_line(lines)
    assert '"change": "UPDATE"' in line
    assert '"status": "cancelled"' in line
