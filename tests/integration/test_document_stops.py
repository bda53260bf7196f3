"""``process_document`` really stops and is safe: a cancel, a force fail or a Studio delete in
the middle of a large parse leaves no parser process; hostile documents fail at once, for good,
and the worker goes on; a job may read only its owner's documents."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from devstack.documents import (
    MiB,
    make_large_epub,
    make_large_markdown,
    make_large_pdf,
    make_markdown,
    make_nested_epub,
    make_pdf_bomb,
    make_spacious_epub,
)
from devstack.localbase import LocalbaseProcess
from devstack.worker import WorkerProcess
from jobdock import actions
from jobdock.documents import Upload, upload_document
from jobdock.models import Job, JobStatus
from supabase import Client
from tests.helpers import Sql, eventually, finished, studio_sql


@pytest.fixture
def sql(localbase: LocalbaseProcess) -> Iterator[Sql]:
    """SQL as Studio runs it, on one connection, the tables left as they are."""
    with studio_sql(localbase.db_dsn) as run:
        yield run


def tree_cpu_seconds(worker: WorkerProcess) -> float:
    assert worker.process is not None
    root = psutil.Process(worker.process.pid)
    total = sum(root.cpu_times()[:2])
    for child in root.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += sum(child.cpu_times()[:2])
    return total


def quiet(worker: WorkerProcess, window: float = 0.5) -> bool:
    """The worker and its children used under a tenth of a core over ``window`` seconds."""
    before = tree_cpu_seconds(worker)
    time.sleep(window)  # a measuring window, not a synchronisation
    return tree_cpu_seconds(worker) - before < 0.1 * window


def stopped(sql: Sql, job_id: uuid.UUID) -> dict[str, Any] | None:
    rows = sql(
        "select detail from public.job_events where job_id = %s and event = 'stopped'", job_id
    )
    return rows[0][0] if rows else None


def start_parsing(client: Client, worker: WorkerProcess, name: str, content: bytes) -> Job:
    job = upload_document(client, Upload(name, content))
    eventually(worker.isolated_processes, timeout=60, what="the parser process")
    return job


LARGE = {
    "epub": lambda: make_large_epub(30 * MiB),
    "pdf": lambda: make_large_pdf(20 * MiB),
    "md": lambda: make_large_markdown(48 * MiB),
}


@pytest.mark.parametrize("kind", sorted(LARGE))
def test_cancel_and_delete_mid_parse_leaves_nothing_running(
    document_worker: WorkerProcess, service_client: Client, sql: Sql, kind: str
) -> None:
    job = start_parsing(service_client, document_worker, f"big.{kind}", LARGE[kind]())
    result = actions.cancel_and_delete(service_client, job.id, wait_for_ack=True, ack_timeout=10)
    assert result.deleted
    assert result.acknowledged
    # Acknowledged means stopped: the parser is already gone, not merely asked to go.
    assert document_worker.isolated_processes() == set()
    eventually(lambda: quiet(document_worker), timeout=10, what="the worker to go quiet")
    assert stopped(sql, job.id)["reason"] == "cancelled"  # type: ignore[index]


@pytest.mark.parametrize(
    "action",
    [
        "force_fail",
        "studio_delete",
    ],
)
def test_force_fail_and_a_studio_delete_mid_parse_stop_the_parser(
    document_worker: WorkerProcess, service_client: Client, sql: Sql, action: str
) -> None:
    job = start_parsing(service_client, document_worker, "big.epub", LARGE["epub"]())
    if action == "force_fail":
        assert isinstance(actions.force_fail(service_client, job.id), actions.Done)
    else:
        sql("delete from public.background_jobs where id = %s", job.id)
    detail = eventually(lambda: stopped(sql, job.id), timeout=10, what="the stopped event")
    assert document_worker.isolated_processes() == set()
    assert detail["reason"] == {"force_fail": "force_failed", "studio_delete": "deleted"}[action]
    actions.cancel_and_delete(service_client, job.id, wait=0)  # no retry of the force-failed job


def test_twenty_upload_and_cancel_cycles_leave_no_growth(
    document_worker: WorkerProcess, service_client: Client
) -> None:
    assert document_worker.process is not None
    content = make_large_markdown(8 * MiB)
    rss: list[int] = []
    for _ in range(20):
        job = start_parsing(service_client, document_worker, "cycle.md", content)
        result = actions.cancel_and_delete(
            service_client, job.id, wait_for_ack=True, ack_timeout=10
        )
        assert result.acknowledged
        assert document_worker.isolated_processes() == set()
        rss.append(psutil.Process(document_worker.process.pid).memory_info().rss)
    # The worker keeps no copy of the documents it no longer processes (each is 8 MiB).
    assert rss[-1] - rss[0] < 48 * MiB, [r // MiB for r in rss]


BOMBS = {
    "inflating.epub": (lambda: make_spacious_epub([100 * MiB]), "inflates to 100 MiB"),
    "nested.epub": (lambda: make_nested_epub(100_000), "limit"),
    "flate-bomb.pdf": (lambda: make_pdf_bomb(300 * MiB), "limit"),
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_a_hostile_document_fails_at_once_for_good_and_the_worker_goes_on(
    document_worker: WorkerProcess, service_client: Client, sql: Sql, name: str
) -> None:
    make, message = BOMBS[name]
    bomb = upload_document(service_client, Upload(name, make()))
    done = finished(service_client, bomb.id, timeout=60)
    assert done.status is JobStatus.FAILED
    assert message in (done.last_error or ""), done.last_error
    assert done.next_retry_at is None
    assert done.retry_count == 0
    failed = sql(
        "select detail from public.job_events where job_id = %s and event = 'failed'", bomb.id
    )
    assert [d[0]["retryable"] for d in failed] == [False]
    # The worker survived and runs the next job.
    after = upload_document(service_client, Upload("after.md", make_markdown([("A", "text")])))
    eventually(
        lambda: actions.get_job(service_client, after.id).status.value == "completed",  # type: ignore[union-attr]
        timeout=30,
        what="the next job",
    )


def test_a_job_naming_another_users_document_fails_without_reading_it(
    document_worker: WorkerProcess, service_client: Client, sql: Sql
) -> None:
    alice = str(uuid.uuid4())
    path = f"{alice}/diary.md"
    service_client.storage.from_("documents").upload(
        path, b"# Diary\n\nSecret.", {"content-type": "text/markdown"}
    )
    sql("set session_replication_role = replica")  # a row that bypassed the SQL rule
    rows = sql(
        "insert into public.background_jobs (job_type, input_data, user_id, max_retries)"
        " values ('process_document', jsonb_build_object('bucket', 'documents', 'path', %s::text,"
        " 'filename', 'diary.md'), %s::uuid, 3) returning id",
        path,
        str(uuid.uuid4()),
    )
    sql("set session_replication_role = origin")
    job_id = rows[0][0]
    done = finished(service_client, job_id)
    assert done.status is JobStatus.FAILED
    assert "Refused to read the document" in (done.last_error or "")
    assert done.next_retry_at is None
    assert sql("select count(*) from public.document_chunks where job_id = %s", job_id) == [(0,)]


def test_a_document_whose_chunks_exceed_one_request_completes(
    document_worker: WorkerProcess, service_client: Client, sql: Sql
) -> None:
    content = make_large_markdown(20 * MiB)  # its chunks are over the 10 MiB request limit
    job = upload_document(service_client, Upload("twenty.md", content))
    done = finished(service_client, job.id, timeout=90)
    assert done.status.value == "completed", done.last_error
    stored = sql(
        "select count(*), sum(length(content)), max(chunk_index) from public.document_chunks"
        " where job_id = %s",
        job.id,
    )
    assert stored[0][0] == done.output_data["chunks"] == stored[0][2] + 1
    assert stored[0][1] > 19 * MiB
    assert sql("select count(*) from public.document_chunks_staged where job_id = %s", job.id) == [
        (0,)
    ]
