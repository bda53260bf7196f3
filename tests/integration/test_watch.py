"""``jobdock watch``: a live tail of job changes over Realtime."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from jobdock import actions
from supabase import Client
from tests.localbase_process import ROOT, LocalbaseProcess


@pytest.fixture
def watcher(localbase: LocalbaseProcess) -> Iterator[subprocess.Popen[str]]:
    env = {
        **os.environ,
        "SUPABASE_URL": localbase.url,
        "SUPABASE_SERVICE_ROLE_KEY": localbase.service_key,
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "jobdock.cli", "--json", "watch"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    yield process
    process.terminate()
    process.communicate(timeout=30)


def read_line(process: subprocess.Popen[str], timeout: float = 30) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    line = process.stdout.readline()  # the watcher prints promptly; readline blocks until then
    assert time.monotonic() < deadline, "watch output came too late"
    assert line, f"watch exited: {process.stderr.read() if process.stderr else ''}"
    return line


def test_watch_prints_changes(watcher: subprocess.Popen[str], service_client: Client) -> None:
    assert "watching background_jobs" in read_line(watcher)
    job = actions.enqueue(service_client, "demo.unknown-type-nobody-claims", {"x": 1})
    line = read_line(watcher)
    assert f'"id": "{job.id}"' in line
    assert '"change": "INSERT"' in line
    actions.request_cancel(service_client, job.id)
    line = read_line(watcher)
    assert '"change": "UPDATE"' in line
    assert '"status": "cancelled"' in line
