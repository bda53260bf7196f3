"""The ``jobdock`` command line against a real localbase: outputs, exit codes, messages."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devstack.localbase import ROOT, LocalbaseProcess, free_port
from devstack.proxy import TcpProxy
from devstack.worker import WorkerProcess
from jobdock.settings import Settings
from jobdock.workers import online
from tests.conftest import connect
from tests.helpers import eventually

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

    def run(*args: str, **overrides: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "jobdock.cli", *args],
            env={**env, **overrides},
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


def one_line_error(result: subprocess.CompletedProcess[str], status: int, text: str) -> None:
    """What every failure looks like: the exit status, one line on stderr, no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == status, result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.endswith("\n"), result.stderr
    assert text in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": NaN}', "NaN is not a JSON value"),
        ('{"a": [1, -Infinity]}', "-Infinity is not a JSON value"),
        ('{"a": 1e400}', "1e400 is out of range"),
        ("[" * 60_000 + "]" * 60_000, "nested too deeply"),
        ('{"a": ' + "[" * 60_000 + "]" * 60_000 + "}", "nested too deeply"),
        ('{"k":"\\ud800"}', "\\ud800, an unpaired surrogate"),
        ('{"k":"\\udfff x"}', "\\udfff, an unpaired surrogate"),
        ("[1]", "not a JSON object"),
        ("{bad", "not valid JSON"),
    ],
)
def test_bad_input_is_one_usage_line(jobdock: Run, text: str, message: str) -> None:
    result = jobdock("enqueue", "demo.sleep", "--input", text)
    one_line_error(result, 2, message)
    assert result.stderr.startswith("jobdock enqueue: argument --input: ")
    assert json.loads(jobdock("--json", "list").stdout) == []


def test_a_surrogate_pair_is_valid_input(jobdock: Run) -> None:
    job_id = enqueue(jobdock, "--input", '{"k": "\\ud83d\\ude00"}')
    shown = json.loads(jobdock("--json", "show", job_id).stdout)
    assert shown["job"]["input_data"] == {"k": "\N{GRINNING FACE}"}


def test_deeply_nested_input_is_listed_and_shown(jobdock: Run) -> None:
    depth = 900
    job_id = enqueue(jobdock, "--input", '{"a": ' + "[" * depth + "]" * depth + "}")
    listed = jobdock("--json", "list")
    assert listed.returncode == 0, listed.stderr[-300:]
    assert [j["id"] for j in json.loads(listed.stdout)] == [job_id]
    shown = jobdock("--json", "show", job_id)
    assert shown.returncode == 0, shown.stderr[-300:]


@pytest.mark.parametrize(
    "args",
    [
        ("enqueue", os.fsdecode(b"caf\xe9")),
        ("list", "--type", os.fsdecode(b"\xff")),
        ("cancel", str(uuid.uuid4()), "--wait-ms", "99999999999999999999999"),
        ("cancel-all", "--wait-ms", "86400001"),
        ("enqueue", "demo.sleep", "--max-retries", "\N{SUPERSCRIPT TWO}"),
        ("show",),
        (),
    ],
)
def test_usage_errors_are_one_line(jobdock: Run, args: tuple[str, ...]) -> None:
    one_line_error(jobdock(*args), 2, "see jobdock")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "SUPABASE_URL: 'not a url' is not an http(s) URL"),
        ("ftp://127.0.0.1:21", "is not an http(s) URL"),
        ("HTTP://127.0.0.1:54321", "is not an http(s) URL"),
        ("http://[::1", "is not a URL"),
        ("http://127.0.0.1:99999", "has no valid port"),
    ],
)
def test_malformed_supabase_url_is_one_usage_line(jobdock: Run, url: str, message: str) -> None:
    for args in (("list",), ("watch",), ("show", str(uuid.uuid4()))):
        one_line_error(jobdock(*args, SUPABASE_URL=url), 2, message)


def test_malformed_key_is_one_usage_line(jobdock: Run) -> None:
    result = jobdock("list", SUPABASE_SERVICE_ROLE_KEY="")
    one_line_error(result, 2, "SUPABASE_SERVICE_ROLE_KEY: expected a JWT")


def test_unreachable_backend_is_one_line_for_every_command(jobdock: Run, tmp_path: Path) -> None:
    document = tmp_path / "notes.md"
    document.write_text("# Notes\n")
    job_id = str(uuid.uuid4())
    url = f"http://127.0.0.1:{free_port()}"
    for args in (
        ("enqueue", "demo.sleep"),
        ("list",),
        ("show", job_id),
        ("cancel", job_id),
        ("cancel", job_id, "--ack"),
        ("force-fail", job_id),
        ("retry", job_id),
        ("dismiss", job_id),
        ("cancel-all",),
        ("upload", str(document)),
        ("--json", "list"),
    ):
        one_line_error(jobdock(*args, SUPABASE_URL=url), 1, "cannot reach Supabase")


def test_watch_with_unreachable_realtime_is_one_line(jobdock: Run) -> None:
    result = jobdock("watch", SUPABASE_URL="http://127.0.0.1:1")
    one_line_error(result, 1, "watch failed: cannot reach Supabase Realtime")


def test_watch_ends_with_one_line_when_the_connection_is_lost(localbase: LocalbaseProcess) -> None:
    proxy = TcpProxy(localbase.api_port).start()
    env = {
        **os.environ,
        "SUPABASE_URL": f"http://127.0.0.1:{proxy.port}",
        "SUPABASE_SERVICE_ROLE_KEY": localbase.service_key,
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "jobdock.cli", "watch"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert "watching background_jobs" in process.stdout.readline()
        proxy.cut()
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
        proxy.close()
    assert "Traceback" not in stderr, stderr
    assert process.returncode == 1
    assert len(stderr.splitlines()) == 1, stderr
    assert "watch stopped: Realtime reported channel_error" in stderr


def test_upload_of_what_is_not_a_readable_file(jobdock: Run, tmp_path: Path) -> None:
    folder = tmp_path / "folder.md"
    folder.mkdir()
    one_line_error(jobdock("upload", str(folder)), 2, f"{folder}: is a directory")
    one_line_error(jobdock("upload", str(tmp_path / "nope.md")), 2, "nope.md: no such file")
    one_line_error(jobdock("upload", "/dev/null"), 2, "/dev/null: not a regular file")
    one_line_error(jobdock("upload", "/proc/self/mem"), 2, "/proc/self/mem: cannot read it")
    one_line_error(jobdock("upload", os.fsdecode(b"caf\xe9.md")), 2, "not valid UTF-8")
    assert json.loads(jobdock("--json", "list").stdout) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_upload_of_a_file_without_read_permission(jobdock: Run, tmp_path: Path) -> None:
    secret = tmp_path / "secret.md"
    secret.write_text("# no\n")
    secret.chmod(0)
    one_line_error(jobdock("upload", str(secret)), 2, "cannot read it (Permission denied)")


@pytest.fixture
def html_server() -> Iterator[str]:
    """A web server that is not Supabase: every answer is an HTML error page."""
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_an_html_error_page_is_one_line(jobdock: Run, html_server: str, tmp_path: Path) -> None:
    document = tmp_path / "notes.md"
    document.write_text("# Notes\n")
    for args in (("upload", str(document)), ("enqueue", "demo.sleep"), ("list",), ("watch",)):
        one_line_error(jobdock(*args, SUPABASE_URL=html_server), 1, "failed")


def test_an_unknown_job_type_is_refused_unless_forced(jobdock: Run) -> None:
    refused = jobdock("enqueue", "no.such.type")
    assert refused.returncode == 1
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "no worker handles job type 'no.such.type'" in lines[0]
    assert refused.stdout == ""
    forced = jobdock("--json", "enqueue", "no.such.type", "--force")
    assert forced.returncode == 0, forced.stderr
    assert json.loads(jobdock("--json", "list", "--type", "no.such.type").stdout)[0]["status"] == (
        "pending"
    )


def test_json_is_accepted_before_or_after_the_command(jobdock: Run) -> None:
    job_id = enqueue(jobdock)
    after = jobdock("list", "--json")
    assert after.returncode == 0, after.stderr
    assert [j["id"] for j in json.loads(after.stdout)] == [job_id]
    assert json.loads(jobdock("show", job_id, "--json").stdout)["job"]["id"] == job_id
    assert json.loads(jobdock("--json", "show", job_id).stdout)["job"]["id"] == job_id
    assert json.loads(jobdock("--json", "list", "--status", "pending", "--json").stdout)
    plain = jobdock("list")
    assert job_id in plain.stdout
    with pytest.raises(json.JSONDecodeError):
        json.loads(plain.stdout)
    forced = jobdock("enqueue", "demo.sleep", "--json")
    assert uuid.UUID(json.loads(forced.stdout)["id"])


def test_workers_lists_the_workers_online(
    jobdock: Run, localbase: LocalbaseProcess, tmp_path: Path
) -> None:
    worker = WorkerProcess(
        localbase,
        tmp_path / "w.log",
        "cli-listed",
        ("--concurrency", "2", "--signals", "broadcast"),
    ).start()
    try:
        listed = eventually(
            lambda: (
                (r := json.loads(jobdock("workers", "--json").stdout))["workers"]
                and any(w["worker_id"] == "cli-listed" for w in r["workers"])
                and r
            ),
            timeout=20,
            what="the worker's presence",
        )
        assert listed["source"] == "presence"
        mine = next(w for w in listed["workers"] if w["worker_id"] == "cli-listed")
        assert (mine["concurrency"], mine["pid"]) == (2, worker.process and worker.process.pid)
        assert "cli-listed" in jobdock("workers").stdout
        # Realtime unreachable: the heartbeats, and it says so.
        dead = Settings(supabase_url=f"http://127.0.0.1:{free_port()}")
        roster = online(connect(localbase.url, localbase.service_key), dead)
        assert roster.source == "heartbeats"
        assert roster.reason
        assert "cli-listed" in [w.worker_id for w in roster.workers]
    finally:
        worker.stop()
