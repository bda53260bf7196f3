"""The ``jobdock`` command line against a real localbase: outputs, exit codes, messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.localbase_process import ROOT, LocalbaseProcess

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def jobdock(localbase: LocalbaseProcess, admin_sql: Callable[[str], None], tmp_path: Path) -> Run:
    admin_sql("truncate public.background_jobs, public.job_events, public.job_workers cascade")
    env = {
        **os.environ,
        "SUPABASE_URL": localbase.url,
        "SUPABASE_SERVICE_ROLE_KEY": localbase.service_key,
        "SUPABASE_ANON_KEY": localbase.anon_key,
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "jobdock.cli", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "Traceback" not in result.stderr, result.stderr
        return result

    return run


def enqueue(run: Run, *extra: str) -> str:
    result = run("enqueue", "demo.sleep", "--input", '{"seconds": 1}', *extra)
    assert result.returncode == 0, result.stderr
    return str(uuid.UUID(result.stdout.strip()))


def test_enqueue_list_show(jobdock: Run) -> None:
    job_id = enqueue(jobdock, "--max-retries", "5")
    listed = jobdock("list")
    assert listed.returncode == 0
    assert job_id in listed.stdout
    assert "pending" in listed.stdout
    as_json = json.loads(jobdock("--json", "list", "--status", "pending").stdout)
    assert [j["id"] for j in as_json] == [job_id]
    assert as_json[0]["max_retries"] == 5
    assert json.loads(jobdock("--json", "list", "--status", "completed").stdout) == []
    shown = jobdock("--json", "show", job_id)
    assert shown.returncode == 0
    detail = json.loads(shown.stdout)
    assert detail["job"]["input_data"] == {"seconds": 1}
    assert [e["event"] for e in detail["timeline"]] == ["enqueued"]


def test_cancel_deletes_and_keeps_the_timeline(jobdock: Run) -> None:
    job_id = enqueue(jobdock)
    result = jobdock("cancel", job_id, "--wait-ms", "0")
    assert result.returncode == 0
    assert f"cancelled and deleted job {job_id}" in result.stdout
    again = jobdock("cancel", job_id)
    assert again.returncode == 1
    assert f"job {job_id} not found" in again.stderr
    shown = json.loads(jobdock("--json", "show", job_id).stdout)
    assert shown["job"] is None
    assert [e["event"] for e in shown["timeline"]] == ["enqueued", "cancel_requested", "deleted"]


def test_wrong_state_and_missing_jobs_exit_1(jobdock: Run) -> None:
    job_id = enqueue(jobdock)
    for command, verb in (("force-fail", "force-fail"), ("retry", "retry"), ("dismiss", "dismiss")):
        result = jobdock(command, job_id)
        assert result.returncode == 1
        assert result.stderr.strip() == f"job {job_id} is pending; cannot {verb} it"
    missing = str(uuid.uuid4())
    result = jobdock("show", missing)
    assert result.returncode == 1
    assert "not found" in result.stderr


def test_usage_errors_exit_2(jobdock: Run) -> None:
    for args in (
        ("cancel", "not-a-uuid"),
        ("show", "123"),
        ("enqueue", "x", "--input", "[1]"),
        ("enqueue", "x", "--input", "{bad"),
        ("enqueue", "x", "--max-retries", "-1"),
        ("list", "--status", "nope"),
        ("frobnicate",),
    ):
        result = jobdock(*args)
        assert result.returncode == 2, args
        assert result.stderr.strip(), args
    result = jobdock("cancel", "not-a-uuid")
    assert "'not-a-uuid' is not a job id" in result.stderr


def test_cancel_all(jobdock: Run) -> None:
    ids = {enqueue(jobdock) for _ in range(3)}
    result = jobdock("--json", "cancel-all", "--wait-ms", "0")
    assert result.returncode == 0
    body = json.loads(result.stdout)
    assert set(body["cancelled"]) == ids
    assert set(body["deleted"]) == ids
    assert json.loads(jobdock("--json", "list").stdout) == []


def test_upload_enqueues_process_document(jobdock: Run, tmp_path: Path) -> None:
    document = tmp_path / "notes.md"
    document.write_text("# Title\n\nSome text.\n")
    result = jobdock("upload", str(document))
    assert result.returncode == 0, result.stderr
    job = json.loads(jobdock("--json", "show", result.stdout.strip()).stdout)["job"]
    assert job["job_type"] == "process_document"
    assert job["input_data"]["bucket"] == "documents"
    assert job["input_data"]["filename"] == "notes.md"


def test_upload_refuses_unsupported_files(jobdock: Run, tmp_path: Path) -> None:
    image = tmp_path / "photo.png"
    image.write_bytes(b"\x89PNG")
    result = jobdock("upload", str(image))
    assert result.returncode == 1
    assert "photo.png: unsupported type" in result.stderr
    assert json.loads(jobdock("--json", "list").stdout) == []
    missing = jobdock("upload", str(tmp_path / "nope.pdf"))
    assert missing.returncode == 2


def test_unreachable_backend_is_one_clear_line(jobdock: Run) -> None:
    env = {**os.environ, "SUPABASE_URL": "http://127.0.0.1:9"}
    result = subprocess.run(
        [sys.executable, "-m", "jobdock.cli", "list"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "cannot reach Supabase" in result.stderr
    assert "Traceback" not in result.stderr
