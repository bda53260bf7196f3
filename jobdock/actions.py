"""One function per dock button. Each calls one SQL function and returns a typed outcome.

The SQL functions own the rules; these functions only translate their answers: ``Done``,
``NotFound`` (no such job, or not yours) or ``NotAllowed`` (the job's state forbids it).
Repeating an action (a double click) is harmless and reports what is now true.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jobdock.backend import backend, rows_of, rpc
from jobdock.models import Job, JobEvent, JobStatus, parse_job_id, parse_time
from jobdock.waiting import AuditTrail, StopWaiter
from supabase import Client

#: Cancel & Delete: the pause between cancel and delete when no acknowledgement is awaited.
CANCEL_WAIT_SECONDS = 0.1
#: Cancel & Delete: the longest wait for the worker's acknowledgement.
ACK_TIMEOUT_SECONDS = 2.0
#: Cancel all processing: the pause between cancel and delete.
BULK_CANCEL_WAIT_SECONDS = 0.2


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
    #: The worker's ``stopped`` event, when it came while the action waited.
    acknowledgement: JobEvent | None = None
    #: How long the worker took to stop (see ``_stop_ms``), when it acknowledged.
    stop_ms: float | None = None
    acknowledged: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "acknowledged", self.acknowledgement is not None)


@dataclass(frozen=True)
class BulkCancelResult:
    cancelled: tuple[uuid.UUID, ...]
    deleted: tuple[uuid.UUID, ...]
    #: The workers' ``stopped`` events that came while the action waited.
    stopped: tuple[JobEvent, ...] = ()


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
    wait: float = CANCEL_WAIT_SECONDS,
    wait_for_ack: bool = False,
    ack_timeout: float = ACK_TIMEOUT_SECONDS,
    stops: StopWaiter | None = None,
) -> CancelResult:
    """Mark the job cancelled, wait, then delete the row.

    The wait is a pause of ``wait`` seconds; or, with ``wait_for_ack`` or a ``stops`` strategy,
    until the worker acknowledges the stop, at most ``ack_timeout`` seconds, through ``stops``
    (by default the audit trail, polled over REST). A job already cancelled (a double click) is
    deleted after the pause: the acknowledgement belongs to the first click."""
    outcome = request_cancel(client, job_id)
    if isinstance(outcome, NotFound):
        return CancelResult(outcome, deleted=False)
    if isinstance(outcome, NotAllowed) and outcome.status is not JobStatus.CANCELLED:
        return CancelResult(outcome, deleted=False)
    ack = None
    if isinstance(outcome, Done) and (wait_for_ack or stops is not None):
        waiter = stops or AuditTrail(client)
        ack = waiter.wait_for_stops([outcome.job_id], ack_timeout).get(outcome.job_id)
    elif wait > 0:
        time.sleep(wait)
    deleted = _delete_cancelled(client, [outcome.job_id])
    stop_ms = _stop_ms(client, ack) if ack else None
    return CancelResult(outcome, bool(deleted), ack, stop_ms)


def cancel_all_processing(
    client: Client, *, wait: float = BULK_CANCEL_WAIT_SECONDS, stops: StopWaiter | None = None
) -> BulkCancelResult:
    """Cancel every pending and processing job in one call, wait, delete exactly those. The
    wait is a pause of ``wait`` seconds, or, with ``stops``, at most that long, until the
    workers it waits for have stopped."""
    ids = tuple(
        uuid.UUID(str(i))
        for i in rpc(client, "cancel_all_processing", {}, "cancel all processing") or []
    )
    stopped: dict[uuid.UUID, JobEvent] = {}
    if ids and stops is not None:
        stopped = stops.wait_for_stops(ids, wait)
    elif ids and wait > 0:
        time.sleep(wait)
    return BulkCancelResult(ids, _delete_cancelled(client, ids), tuple(stopped.values()))


def _stop_ms(client: Client, ack: JobEvent) -> float | None:
    """How long the worker took to stop: from the ``cancel_requested`` event the acknowledgement
    answers (the latest before it) to the ``stopped_at`` the worker reported.

    The one definition, for every way of waiting. The trail's request event, not the row's
    ``cancel_requested_at``: it outlives the delete (the row is gone when this is computed),
    it is the request the ``stopped`` event is paired with (``jobdock.waiting``), and it is
    written when the status changes (``clock_timestamp()``), whereas the column holds the
    transaction's start, or whatever a Studio edit put there."""
    requested = _cancel_requested_at(client, ack)
    stopped = ack.stopped_at
    if requested is None or stopped is None:
        return None
    return max(0.0, (stopped - requested).total_seconds() * 1000)


def _cancel_requested_at(client: Client, ack: JobEvent) -> datetime | None:
    with backend("read the job timeline"):
        rows = rows_of(
            client.table("job_events")
            .select("created_at")
            .eq("job_id", str(ack.job_id))
            .eq("event", "cancel_requested")
            .lt("id", ack.id)
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
