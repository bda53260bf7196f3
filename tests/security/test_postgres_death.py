"""PostgreSQL killed under localbase: 503 at once, then served again by the same localbase;
and when PostgreSQL cannot be restarted, localbase exits non-zero and says why.

These tests kill the cluster, so each runs its own localbase, never the session's."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devstack.localbase import LocalbaseProcess
from tests.conftest import connect
from tests.security.conftest import api_headers

#: Well under the 30 s a request used to wait for the pool.
PROMPT_SECONDS = 2.0


def kill_postmaster(stack: LocalbaseProcess) -> None:
    pid = int((stack.data_dir / "pg" / "postmaster.pid").read_text().splitlines()[0])
    os.kill(pid, signal.SIGKILL)


def wait_until_down(http: httpx.Client, timeout: float = 10.0) -> httpx.Response:
    """Poll /health until localbase's supervisor has noticed PostgreSQL is gone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        health = http.get("/health")
        if health.status_code == 503 and health.json()["status"] == "restarting":
            return health
        time.sleep(0.02)
    raise TimeoutError("localbase did not notice that PostgreSQL was killed")


@pytest.fixture
def own_localbase(tmp_path: Path) -> Iterator[LocalbaseProcess]:
    # The first restart waits 3 s, so the test can see the outage before it ends.
    args = ("--postgres-restart-attempts", "3", "--postgres-restart-delay", "3")
    stack = LocalbaseProcess(tmp_path / "data", extra_args=args)
    stack.start()
    yield stack
    if stack.process is not None and stack.process.poll() is None:
        stack.stop()


def timed(request: httpx.Request, http: httpx.Client) -> tuple[httpx.Response, float]:
    began = time.monotonic()
    response = http.send(request)
    return response, time.monotonic() - began


def test_killed_postgres_answers_503_then_recovers(own_localbase: LocalbaseProcess) -> None:
    stack = own_localbase
    assert stack.process is not None
    pid = stack.process.pid
    headers = api_headers(stack.service_key)
    with httpx.Client(base_url=stack.url, headers=headers, timeout=60) as http:
        assert http.get("/rest/v1/job_types", params={"limit": "1"}).status_code == 200
        kill_postmaster(stack)
        health = wait_until_down(http)
        rest, rest_seconds = timed(http.build_request("GET", "/rest/v1/job_types"), http)
        storage, storage_seconds = timed(http.build_request("GET", "/storage/v1/bucket"), http)
    assert health.json()["status"] == "restarting"
    assert rest.status_code == 503, rest.text
    assert rest.json()["code"] == "PGRST000"
    assert rest_seconds < PROMPT_SECONDS
    assert storage.status_code == 503, storage.text
    assert storage.json()["statusCode"] == "503"
    assert storage_seconds < PROMPT_SECONDS
    stack.wait_healthy(60)
    client = connect(stack.url, stack.service_key)
    assert client.table("job_types").select("*").limit(1).execute().data is not None
    assert httpx.get(f"{stack.url}/health").json()["postgres_restarts"] == 1
    assert stack.process is not None
    assert stack.process.pid == pid
    assert stack.process.poll() is None


def test_postgres_that_cannot_restart_stops_localbase_with_an_error(
    own_localbase: LocalbaseProcess,
) -> None:
    stack = own_localbase
    assert stack.process is not None
    (stack.data_dir / "pg" / "PG_VERSION").write_text("7\n")  # no server can open this cluster
    kill_postmaster(stack)
    code = stack.process.wait(90)
    stack.process = None
    assert code == 1
    log = stack.log_path.read_text()
    assert "PostgreSQL died and could not be restarted (3 attempts)" in log
