"""One function per dock button. Each calls one SQL function and returns a typed outcome.

The SQL functions own the rules; these functions only translate their answers: ``Done``,
``NotFound`` (no such job, or not yours) or ``NotAllowed`` (the job's state forbids it).
Repeating an action (a double click) is harmless and reports what is now true.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobdock.backend import backend, rows_of, rpc
from jobdock.errors import BackendError as BackendError  # callers catch it from here too
from jobdock.models import Job, JobEvent, JobStatus, parse_job_id, parse_time
from supabase import Client

ACK_POLL_SECONDS = 0.01


@dataclass(frozen=True)
class Done:
    job_id: uuid.UUID
    status: JobStatus | None  # None: the row is gone (dismissed)


@dataclass(frozen=True)
class NotFound:
    job_id: uuid.UUID


@dataclass(frozen=True)
class NotAllowed:
    job_id: uuid.UUID
    status: JobStatus


Outcome = Done | NotFound | NotAllowed


@dataclass(frozen=True)
class CancelResult:
    """Cancel & Delete: what happened, and how long the worker took to stop when it said so."""

    outcome: Outcome
    deleted: bool
    acknowledged: bool = False
    stop_ms: float | None = None


@dataclass(frozen=True)
class BulkCancelResult:
    cancelled: tuple[uuid.UUID, ...]
    deleted: tuple[uuid.UUID, ...]


def _transition(client: Client, function: str, job_id: str | uuid.UUID, action: str) -> Outcome:
    target = parse_job_id(job_id)
    result = rpc(client, function, {"p_id": str(target)}, action)
    status = JobStatus(result["status"]) if result and result.get("status") else None
    if result and result.get("changed"):
        return Done(target, status)
    if status is None:
        return NotFound(target)
    return NotAllowed(target, status)


def enqueue(
    client: Client,
    job_type: str,
    input_data: dict[str, Any] | None = None,
    *,
    max_retries: int = 3,
    retry_backoff_seconds: float = 2.0,
    force: bool = False,
) -> Job:
    """A new pending job. A job type that no worker has registered is refused unless
    ``force`` (SQL: ``enqueue_job``); a ``process_document`` job must name a document in its
    owner's folder."""
    row = rpc(
        client,
        "enqueue_job",
        {
            "p_job_type": job_type,
            "p_input": input_data or {},
            "p_max_retries": max_retries,
            "p_retry_backoff_seconds": retry_backoff_seconds,
            "p_force": force,
        },
        "enqueue",
    )
    return Job.from_row(row)


def request_cancel(client: Client, job_id: str | uuid.UUID) -> Outcome:
    return _transition(client, "request_cancel", job_id, "cancel")


def force_fail(client: Client, job_id: str | uuid.UUID) -> Outcome:
    return _transition(client, "force_fail", job_id, "force fail")


def retry(client: Client, job_id: str | uuid.UUID) -> Outcome:
    return _transition(client, "retry_job", job_id, "retry")


def dismiss(client: Client, job_id: str | uuid.UUID) -> Outcome:
    return _transition(client, "dismiss_job", job_id, "dismiss")


def _delete_cancelled(client: Client, ids: Sequence[uuid.UUID]) -> tuple[uuid.UUID, ...]:
    if not ids:
        return ()
    deleted = rpc(client, "delete_cancelled_jobs", {"p_ids": [str(i) for i in ids]}, "delete")
    return tuple(uuid.UUID(str(i)) for i in deleted or [])


def cancel_and_delete(
    client: Client,
    job_id: str | uuid.UUID,
    *,
    wait: float = 0.1,
    wait_for_ack: bool = False,
    ack_timeout: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> CancelResult:
    """Mark the job cancelled, give the worker ``wait`` seconds (or until it acknowledges the
    stop, at most ``ack_timeout``), then delete the row. A job already cancelled (a double
    click) is just deleted."""
    outcome = request_cancel(client, job_id)
    if isinstance(outcome, NotFound):
        return CancelResult(outcome, deleted=False)
    if isinstance(outcome, NotAllowed) and outcome.status is not JobStatus.CANCELLED:
        return CancelResult(outcome, deleted=False)
    ack = None
    if wait_for_ack and isinstance(outcome, Done):
        ack = wait_for_stop(client, outcome.job_id, ack_timeout, sleep=sleep)
    elif wait > 0:
        sleep(wait)
    deleted = _delete_cancelled(client, [outcome.job_id])
    stop_ms = _stop_ms(client, outcome.job_id, ack) if ack else None
    return CancelResult(outcome, bool(deleted), acknowledged=ack is not None, stop_ms=stop_ms)


def cancel_all_processing(
    client: Client, *, wait: float = 0.2, sleep: Callable[[float], None] = time.sleep
) -> BulkCancelResult:
    """Cancel every pending and processing job in one call, wait, delete exactly those."""
    ids = tuple(
        uuid.UUID(str(i))
        for i in rpc(client, "cancel_all_processing", {}, "cancel all processing") or []
    )
    if ids and wait > 0:
        sleep(wait)
    return BulkCancelResult(ids, _delete_cancelled(client, ids))


def wait_for_stop(
    client: Client,
    job_id: uuid.UUID,
    timeout: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> JobEvent | None:
    """The worker's ``stopped`` event answering the job's latest stop request (cancel or force
    fail), if it arrives within ``timeout``; a ``stopped`` event of an earlier attempt is not an
    answer. Bounded polling of one indexed row: this runs only while an action waits."""
    deadline = time.monotonic() + timeout
    while True:
        with backend("wait for the worker"):
            rows = rows_of(
                client.table("job_events")
                .select("*")
                .eq("job_id", str(job_id))
                .in_("event", ["cancel_requested", "force_failed", "stopped"])
                .order("id", desc=True)
                .limit(1)
                .execute()
                .data
            )
        if rows and rows[0].get("event") == "stopped":
            return JobEvent.from_row(rows[0])
        if time.monotonic() >= deadline:
            return None
        sleep(ACK_POLL_SECONDS)


def _stop_ms(client: Client, job_id: uuid.UUID, ack: JobEvent) -> float | None:
    requested = _cancel_requested_at(client, job_id)
    stopped = ack.stopped_at
    if requested is None or stopped is None:
        return None
    return max(0.0, (stopped - requested).total_seconds() * 1000)


def _cancel_requested_at(client: Client, job_id: uuid.UUID) -> datetime | None:
    with backend("read the job timeline"):
        rows = rows_of(
            client.table("job_events")
            .select("created_at")
            .eq("job_id", str(job_id))
            .eq("event", "cancel_requested")
            .order("id", desc=True)
            .limit(1)
            .execute()
            .data
        )
    return parse_time(rows[0]["created_at"]) if rows else None


def list_jobs(
    client: Client,
    *,
    status: JobStatus | None = None,
    job_type: str | None = None,
    limit: int = 1000,
) -> list[Job]:
    with backend("list jobs"):
        query = client.table("background_jobs").select("*")
        if status is not None:
            query = query.eq("status", status.value)
        if job_type is not None:
            query = query.eq("job_type", job_type)
        rows = rows_of(query.order("created_at", desc=True).limit(limit).execute().data)
    return [Job.from_row(row) for row in rows]


def get_job(client: Client, job_id: str | uuid.UUID) -> Job | None:
    target = parse_job_id(job_id)
    with backend("read the job"):
        rows = rows_of(
            client.table("background_jobs").select("*").eq("id", str(target)).execute().data
        )
    return Job.from_row(rows[0]) if rows else None


def job_timeline(client: Client, job_id: str | uuid.UUID) -> list[JobEvent]:
    target = parse_job_id(job_id)
    with backend("read the job timeline"):
        rows = rows_of(
            client.table("job_events")
            .select("*")
            .eq("job_id", str(target))
            .order("id")
            .execute()
            .data
        )
    return [JobEvent.from_row(row) for row in rows]
