"""New work reaches an idle worker through Realtime alone: its safety poll is set to an hour,
so a job that starts here was announced by the feed (a ``job_signals`` INSERT, one per enqueue
statement, or an UPDATE back to pending for a retry) — and a stop acknowledgement always
answers the latest stop request."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.localbase import LocalbaseProcess
from devstack.worker import WorkerProcess
from jobdock import actions
from jobdock.models import JobStatus
from jobdock.waiting import wait_for_stop
from supabase import Client
from tests.helpers import Sql, eventually


@pytest.fixture(scope="module")
def idle_worker(
    localbase: LocalbaseProcess, db: Sql, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    log: Path = tmp_path_factory.mktemp("idle") / "worker.log"
    process = WorkerProcess(localbase, log, "w-idle", ("--idle-poll", "3600")).start()
    yield process
    assert process.stop() == 0


def status(client: Client, job_id: uuid.UUID) -> JobStatus | None:
    job = actions.get_job(client, job_id)
    return job.status if job else None


def test_an_insert_wakes_an_idle_worker(idle_worker: WorkerProcess, service_client: Client) -> None:
    job = actions.enqueue(service_client, "demo.sleep", {"seconds": 0.05})
    eventually(lambda: status(service_client, job.id) is JobStatus.COMPLETED, what="completed")


def test_one_signal_for_a_bulk_insert_wakes_an_idle_worker_for_all_of_it(
    idle_worker: WorkerProcess, db: Sql
) -> None:
    """Thirty jobs in one statement, as from Studio: one signal, and the worker, four at a time,
    keeps claiming until the queue is empty."""
    added = db(
        "insert into public.background_jobs (job_type, input_data)"
        " select 'demo.sleep', '{\"seconds\": 0.01}' from generate_series(1, 30) returning id"
    )
    ids = [row[0] for row in added]
    eventually(
        lambda: db(
            "select count(*) = 30 from public.background_jobs"
            " where id = any(%s) and status = 'completed'",
            ids,
        )[0][0],
        what="all 30 completed",
    )


def test_a_retry_wakes_an_idle_worker_and_the_ack_is_the_new_one(
    idle_worker: WorkerProcess, service_client: Client, db: Sql
) -> None:
    job = actions.enqueue(
        service_client, "demo.sleep", {"seconds": 60, "step": 0.05}, max_retries=0
    )
    eventually(lambda: status(service_client, job.id) is JobStatus.PROCESSING, what="running")
    assert isinstance(actions.force_fail(service_client, job.id), actions.Done)
    first = eventually(lambda: wait_for_stop(service_client, job.id, 0), what="1st ack")
    assert first.detail["reason"] == "force_failed"

    assert isinstance(actions.retry(service_client, job.id), actions.Done)
    eventually(lambda: status(service_client, job.id) is JobStatus.PROCESSING, what="rerun")
    # The old acknowledgement does not answer the new request.
    assert isinstance(actions.request_cancel(service_client, job.id), actions.Done)
    ack = wait_for_stop(service_client, job.id, 10)
    assert ack is not None
    assert ack.detail["reason"] == "cancelled"
    assert ack.id > first.id

    result = actions.cancel_and_delete(service_client, job.id)  # already cancelled: deleted
    assert result.deleted
    stops = db(
        "select detail->>'reason' from public.job_events"
        " where job_id = %s and event = 'stopped' order by id",
        job.id,
    )
    assert [r[0] for r in stops] == ["force_failed", "cancelled"]
