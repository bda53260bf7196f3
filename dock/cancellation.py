"""Cancel & Delete and Cancel all, waiting for the workers through the live mirror.

``jobdock.actions`` does the cancelling, the waiting and the deleting; what the dock chooses is
*how it waits* (a ``jobdock.waiting.StopWaiter``). For a job a worker holds it waits, at most
``ack_timeout``, with :class:`MirrorStops`: on the worker's ``stopped`` event as pushed to the
mirror (no polling) while the mirror is live, on the audit trail over REST otherwise. A job no
worker holds is deleted after the short ``cancel_wait``.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass

from dock.config import DockOptions
from dock.mirror import JobMirror
from jobdock import actions
from jobdock.actions import BulkCancelResult, CancelResult
from jobdock.models import JobEvent, JobStatus
from jobdock.waiting import AuditTrail, recorded_stops
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


@dataclass(frozen=True)
class MirrorStops:
    """Waits for the workers of the ``running`` jobs (those a worker held when the dock asked;
    nobody answers for the others) through the live mirror.

    Realtime delivers at most once, so a job whose event has not come within ``FIRST_LOOK`` is
    looked up in the audit trail, and once more at the end. A job that finished on its own or
    was deleted meanwhile is not waited for. While the mirror is not live, the audit trail is
    polled instead."""

    client: Client
    mirror: JobMirror
    running: frozenset[uuid.UUID]

    @classmethod
    def expecting(
        cls, client: Client, mirror: JobMirror, running: Collection[uuid.UUID]
    ) -> MirrorStops:
        """The waiter for jobs about to be asked to stop: earlier stops of theirs forgotten."""
        for job_id in running:
            mirror.expect_stop(job_id)
        return cls(client, mirror, frozenset(running))

    def wait_for_stops(
        self, job_ids: Collection[uuid.UUID], timeout: float
    ) -> dict[uuid.UUID, JobEvent]:
        awaited = self.running.intersection(job_ids)
        if not awaited:
            return {}
        if not self.mirror.snapshot().live:
            return AuditTrail(self.client).wait_for_stops(awaited, timeout)
        first = min(FIRST_LOOK, timeout)
        found = self._look(awaited, first)
        if found.keys() < awaited and timeout > first:
            found |= self._look(awaited - found.keys(), timeout - first)
        return found

    def _look(self, job_ids: frozenset[uuid.UUID], seconds: float) -> dict[uuid.UUID, JobEvent]:
        """Wait on the mirror, then ask the trail about the jobs whose event did not come."""
        found = self.mirror.wait_for_stops(job_ids, seconds)
        missing = job_ids - found.keys()
        return found | (recorded_stops(self.client, missing) if missing else {})


def cancel_and_delete(
    client: Client, mirror: JobMirror, job_id: uuid.UUID, options: DockOptions
) -> CancelReport:
    before = mirror.job(job_id)
    running = before is not None and before.status is JobStatus.PROCESSING
    if running:
        result = actions.cancel_and_delete(
            client,
            job_id,
            ack_timeout=options.ack_timeout_seconds,
            stops=MirrorStops.expecting(client, mirror, [job_id]),
        )
    else:
        result = actions.cancel_and_delete(client, job_id, wait=options.cancel_wait_seconds)
    if result.deleted:
        mirror.forget(job_id)
    return CancelReport(result, running)


def cancel_all(client: Client, mirror: JobMirror, options: DockOptions) -> BulkReport:
    """Cancel every pending and processing job, wait for the running ones' workers, delete."""
    running = tuple(job.id for job in mirror.snapshot().groups[JobStatus.PROCESSING])
    if running:
        result = actions.cancel_all_processing(
            client,
            wait=options.bulk_cancel_wait_seconds,
            stops=MirrorStops.expecting(client, mirror, running),
        )
    else:
        result = actions.cancel_all_processing(client)
    for job_id in result.deleted:
        mirror.forget(job_id)
    return BulkReport(result, len(running), len(result.stopped))
