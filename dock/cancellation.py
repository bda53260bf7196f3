"""Cancel & Delete and Cancel all, waiting for the workers through the live mirror.

``jobdock.actions`` does the cancelling and deleting. What the dock adds is *how it waits*
between the two: while the mirror is live it waits on the worker's ``stopped`` event (no
polling), at most ``ack_timeout`` seconds, and reports how long the stop took. Realtime
delivers at most once, so when no event came the database is asked (twice at most). A job no
worker holds is deleted after the short ``cancel_wait``. Without realtime it falls back to
the action's own bounded acknowledgement check.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import datetime

from dock.config import DockOptions
from dock.mirror import JobMirror, MirrorSnapshot
from jobdock import actions
from jobdock.actions import BulkCancelResult, CancelResult
from jobdock.backend import backend
from jobdock.models import JobEvent, JobStatus
from supabase import Client

FIRST_LOOK = 0.3  # seconds: most workers stop well within this


@dataclass(frozen=True)
class CancelReport:
    result: CancelResult
    running: bool  # a worker held the job when the dock asked: its acknowledgement was awaited


@dataclass(frozen=True)
class BulkReport:
    result: BulkCancelResult
    running: int  # jobs that were processing when the dock asked
    acknowledged: int  # … whose worker reported the stop in time


def cancel_and_delete(
    client: Client, mirror: JobMirror, job_id: uuid.UUID, options: DockOptions
) -> CancelReport:
    before = mirror.job(job_id)
    running = before is not None and before.status is JobStatus.PROCESSING
    if not running:
        result = actions.cancel_and_delete(client, job_id, wait=options.cancel_wait_seconds)
    elif not mirror.snapshot().live:
        result = actions.cancel_and_delete(
            client, job_id, wait_for_ack=True, ack_timeout=options.ack_timeout_seconds
        )
    else:
        result = _with_mirror_ack(client, mirror, job_id, options.ack_timeout_seconds)
    if result.deleted:
        mirror.forget(job_id)
    return CancelReport(result, running)


def _with_mirror_ack(
    client: Client, mirror: JobMirror, job_id: uuid.UUID, timeout: float
) -> CancelResult:
    mirror.expect_stop(job_id)
    seen: list[tuple[JobEvent, datetime | None]] = []

    def until_stopped(seconds: float) -> None:
        """The pause between cancel and delete, cut short by the worker's acknowledgement."""
        ack = _acknowledgement(client, mirror, job_id, seconds)
        if ack is not None:
            job = mirror.job(job_id)
            if job is None or job.cancel_requested_at is None:
                job = actions.get_job(client, job_id)  # the row is still there: read it
            seen.append((ack, job.cancel_requested_at if job else None))

    result = actions.cancel_and_delete(client, job_id, wait=timeout, sleep=until_stopped)
    if not seen:
        return result
    ack, requested = seen[0]
    stop_ms = None
    if ack.stopped_at is not None and requested is not None:
        stop_ms = max(0.0, (ack.stopped_at - requested).total_seconds() * 1000)
    return dataclasses.replace(result, acknowledged=True, stop_ms=stop_ms)


def _acknowledgement(
    client: Client, mirror: JobMirror, job_id: uuid.UUID, seconds: float
) -> JobEvent | None:
    """The worker's ``stopped`` event as pushed to the mirror. Push is at most once, so if
    none came within ``FIRST_LOOK`` the database is read once, and once more at the end."""
    first = min(FIRST_LOOK, seconds)
    ack = mirror.wait_for_stop(job_id, first) or actions.wait_for_stop(client, job_id, 0)
    if ack is None and seconds > first:
        ack = mirror.wait_for_stop(job_id, seconds - first)
        ack = ack or actions.wait_for_stop(client, job_id, 0)
    return ack


def cancel_all(client: Client, mirror: JobMirror, options: DockOptions) -> BulkReport:
    """Cancel every pending and processing job, wait for the running ones' workers, delete."""
    before = mirror.snapshot()
    running = tuple(job.id for job in before.groups[JobStatus.PROCESSING])
    for job_id in running:
        mirror.expect_stop(job_id)

    def until_stopped(seconds: float) -> None:
        """The pause between cancel and delete, cut short once every running job stopped."""
        mirror.wait_for(lambda now: _all_settled(now, running), seconds)

    if before.live and running:
        result = actions.cancel_all_processing(
            client, wait=options.bulk_cancel_wait_seconds, sleep=until_stopped
        )
    else:
        result = actions.cancel_all_processing(client)
    for job_id in result.deleted:
        mirror.forget(job_id)
    stopped = {job_id for job_id in running if job_id in mirror.snapshot().stops}
    missing = [job_id for job_id in running if job_id not in stopped]
    if missing:  # events may have been lost: ask the database once
        stopped |= _stopped_in_database(client, missing)
    return BulkReport(result, len(running), len(stopped))


def _stopped_in_database(client: Client, job_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    with backend("read the stop acknowledgements"):
        rows = (
            client.table("job_events")
            .select("job_id")
            .in_("job_id", [str(job_id) for job_id in job_ids])
            .eq("event", "stopped")
            .execute()
            .data
        )
    return {uuid.UUID(str(row["job_id"])) for row in rows if isinstance(row, dict)}


def _all_settled(snapshot: MirrorSnapshot, running: tuple[uuid.UUID, ...]) -> bool:
    """Each job that was running has stopped, or finished on its own before the cancel."""
    for job_id in running:
        job = snapshot.jobs.get(job_id)
        if job_id in snapshot.stops or job is None:
            continue
        if job.status in (JobStatus.PROCESSING, JobStatus.CANCELLED):
            return False
    return True
