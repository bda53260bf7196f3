"""The worker against a real localbase: it stops a job the moment it is cancelled,
force-failed or deleted — by the jobdock actions or by a direct SQL edit as Studio does —
with Realtime on and off, writes nothing after the stop, and keeps serving."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from devstack.localbase import LocalbaseProcess
from devstack.worker import WorkerProcess
from jobdock import actions
from jobdock.waiting import AuditTrail
from supabase import Client
from tests.helpers import Sql, eventually

INPUTS = {
    "demo.sleep": {"seconds": 30, "step": 0.05},
    "demo.blocking": {"seconds": 30, "check_every": 0.01},
    "demo.stubborn": {"seconds": 30},
}


#: How the worker hears of stops: Broadcast from Database, postgres_changes, or polling only.
SIGNALS = {
    "broadcast": ("--signals", "broadcast"),
    "changes": ("--signals", "postgres_changes"),
    "polling": ("--no-realtime",),
}


@pytest.fixture(scope="module", params=list(SIGNALS))
def worker(
    request: pytest.FixtureRequest,
    localbase: LocalbaseProcess,
    db: Sql,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[WorkerProcess]:
    args = ("--concurrency", "4", *SIGNALS[request.param])
    process = WorkerProcess(
        localbase, tmp_path_factory.mktemp("w") / "worker.log", f"test-{request.param}", args
    ).start()
    yield process
    assert process.stop() == 0


def events(db: Sql, job_id: uuid.UUID) -> list[str]:
    return [
        r[0]
        for r in db("select event from public.job_events where job_id = %s order by id", job_id)
    ]


def stopped_event(db: Sql, job_id: uuid.UUID) -> dict[str, Any] | None:
    rows = db(
        "select detail from public.job_events where job_id = %s and event = 'stopped'", job_id
    )
    return rows[0][0] if rows else None


def job_row(db: Sql, job_id: uuid.UUID) -> tuple[Any, ...] | None:
    rows = db(
        "select status, progress, output_data, updated_at, retry_count"
        " from public.background_jobs where id = %s",
        job_id,
    )
    return rows[0] if rows else None


def start_job(client: Client, db: Sql, worker: WorkerProcess, job_type: str) -> uuid.UUID:
    job = actions.enqueue(client, job_type, INPUTS[job_type], max_retries=0)
    eventually(
        lambda: db(
            "select 1 from public.background_jobs where id = %s and status ="
            " 'processing' and worker_id = %s",
            job.id,
            worker.worker_id,
        ),
        what=f"{job_type} to be claimed",
    )
    if job_type == "demo.stubborn":  # its child process is up once it has reported progress
        eventually(
            lambda: db(
                "select 1 from public.background_jobs where id = %s and progress ? 'percent'",
                job.id,
            ),
            what="the child to report",
        )
    return job.id


def stop(how: str, client: Client, db: Sql, job_id: uuid.UUID) -> str:
    """Stop a job; returns the expected stop reason."""
    if how == "cancel_action":
        assert isinstance(actions.request_cancel(client, job_id), actions.Done)
        return "cancelled"
    if how == "force_fail_action":
        assert isinstance(actions.force_fail(client, job_id), actions.Done)
        return "force_failed"
    if how == "studio_cancel":
        db("update public.background_jobs set status = 'cancelled' where id = %s", job_id)
        return "cancelled"
    if how == "studio_fail":
        db("update public.background_jobs set status = 'failed' where id = %s", job_id)
        return "force_failed"
    if how == "cancel_all":  # the bulk action's cancel (its delete follows in the dock)
        bulk = actions.cancel_all_processing(client, wait=60, stops=AuditTrail(client))
        assert job_id in bulk.cancelled
        return "cancelled"
    db("delete from public.background_jobs where id = %s", job_id)
    return "deleted"


def prove_still_serving(client: Client, db: Sql) -> None:
    """The worker keeps serving: a new job runs to completion."""
    job = actions.enqueue(client, "demo.sleep", {"seconds": 0.05})
    eventually(
        lambda: db(
            "select 1 from public.background_jobs where id = %s and status = 'completed'", job.id
        ),
        what="a follow-up job to complete",
    )


@pytest.mark.parametrize("job_type", list(INPUTS))
@pytest.mark.parametrize(
    "how",
    [
        "cancel_action",
        "force_fail_action",
        "cancel_all",
        "studio_cancel",
        "studio_fail",
        "studio_delete",
    ],
)
def test_stop_is_immediate_and_final(
    worker: WorkerProcess, service_client: Client, db: Sql, job_type: str, how: str
) -> None:
    job_id = start_job(service_client, db, worker, job_type)
    reason = stop(how, service_client, db, job_id)
    detail = eventually(lambda: stopped_event(db, job_id), what="the stopped event")
    assert detail["reason"] == reason
    assert detail["stopped_at"]
    # A fenced progress write may notice the stop before the push (or the poll) does.
    noticed_by = "fallback_poll" if "--no-realtime" in worker.args else "realtime"
    assert detail["via"] in {noticed_by, "fence"}
    after_stop = job_row(db, job_id)
    prove_still_serving(service_client, db)
    assert job_row(db, job_id) == after_stop  # nothing written after the stop
    timeline = events(db, job_id)
    assert timeline.count("claimed") == 1  # no retry
    assert "completed" not in timeline
    assert timeline[-1] in {"stopped", "deleted"}
    assert f"event=stopped job_id={job_id}" in worker.log


def test_seed_flow_cancel_then_delete_while_the_update_is_in_flight(tmp_path: Path) -> None:
    """A hosted-like delivery delay: the row is deleted before the UPDATE event is delivered
    (RLS is checked at delivery time, so that event never arrives); the DELETE event still
    stops the worker. The delay is hosted's upper bound (500 ms), so that a loaded machine
    cannot commit the delete late enough for the UPDATE to slip through; the job writes no
    progress meanwhile, so no fenced write can notice the cancel first."""
    stack = LocalbaseProcess(tmp_path / "data", extra_args=("--realtime-delay-ms", "500"))
    stack.start()
    try:
        with psycopg.connect(stack.db_dsn, autocommit=True) as conn:

            def run(statement: str, *params: Any) -> list[tuple[Any, ...]]:
                cur = conn.execute(statement, params or None)
                return cur.fetchall() if cur.description else []

            worker = WorkerProcess(
                stack, tmp_path / "worker.log", "seed-flow", ("--signals", "postgres_changes")
            ).start()
            try:
                client = _client(stack)
                job = actions.enqueue(client, "demo.sleep", {"seconds": 60, "step": 60})
                eventually(
                    lambda: run(
                        "select 1 from public.background_jobs where id = %s"
                        " and progress ? 'percent'",
                        job.id,
                    ),
                    what="running",
                )
                result = actions.cancel_and_delete(client, job.id, wait=0.1)
                assert result.deleted
                detail = eventually(lambda: stopped_event(run, job.id), what="stopped")
                assert detail["reason"] == "deleted"
                assert detail["via"] == "realtime"
                job_id = job.id
                assert "completed" not in events(run, job_id)
            finally:
                assert worker.stop() == 0
    finally:
        stack.stop()


def _client(stack: LocalbaseProcess) -> Client:
    from tests.conftest import connect

    return connect(stack.url, stack.service_key)


def test_cancel_and_delete_waits_for_the_workers_ack(
    worker: WorkerProcess, service_client: Client, db: Sql
) -> None:
    job_id = start_job(service_client, db, worker, "demo.sleep")
    result = actions.cancel_and_delete(service_client, job_id, wait_for_ack=True, ack_timeout=10)
    assert result.deleted
    assert result.acknowledged
    assert result.stop_ms is not None
    assert 0 <= result.stop_ms < 10_000
    assert job_row(db, job_id) is None
    again = actions.cancel_and_delete(service_client, job_id, wait_for_ack=True)
    assert again.outcome == actions.NotFound(job_id)
    assert not again.deleted


def test_cancel_all_processing_stops_every_running_job(
    worker: WorkerProcess, service_client: Client, db: Sql
) -> None:
    ids = [start_job(service_client, db, worker, "demo.sleep") for _ in range(3)]
    result = actions.cancel_all_processing(service_client, wait=0)
    assert set(result.cancelled) >= set(ids)
    assert set(result.deleted) == set(result.cancelled)
    for job_id in ids:
        detail = eventually(lambda job_id=job_id: stopped_event(db, job_id), what="stopped")
        assert detail["reason"] in {"cancelled", "deleted"}
    prove_still_serving(service_client, db)
