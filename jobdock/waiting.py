"""How an action waits, between marking jobs cancelled and deleting them, for their workers.

A worker that stops a job records a ``stopped`` event in the audit trail (``job_events``). An
action that should wait for it (Cancel & Delete, Cancel all) is given a :class:`StopWaiter`
and reports what the waiter returned; the action itself never sleeps on the waiter's behalf.

- :class:`AuditTrail` polls the trail over REST: bounded, and only while an action waits.
- The dock waits on its live mirror instead (``dock.cancellation.MirrorStops``).

A ``stopped`` event answers the job's *latest* stop request (``cancel_requested`` or
``force_failed``); a ``stopped`` event of an earlier attempt is not an answer.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from jobdock.backend import Row, backend, rows_of
from jobdock.models import JobEvent
from supabase import Client

POLL_SECONDS = 0.01
#: Job ids per read of the trail: keeps a query string far below PostgREST's limits.
IDS_PER_READ = 100
#: The events that request a stop, and the one that answers it.
STOP_EVENTS = ("cancel_requested", "force_failed", "stopped")


class StopWaiter(Protocol):
    """A way to wait for the workers of just-cancelled jobs to report their stop."""

    def wait_for_stops(
        self, job_ids: Collection[uuid.UUID], timeout: float
    ) -> dict[uuid.UUID, JobEvent]:
        """Block until the worker of each job it waits for has recorded its stop, at most
        ``timeout`` seconds; the ``stopped`` events that came, by job id (a job missing from
        the answer: no acknowledgement)."""
        ...


@dataclass(frozen=True)
class AuditTrail:
    """Polls ``job_events`` every ``poll_seconds`` until every given job has stopped. Meant for
    one job or a few (``jobdock cancel --ack``): a job no worker holds is waited for until the
    timeout, as nobody will answer for it."""

    client: Client
    poll_seconds: float = POLL_SECONDS

    def wait_for_stops(
        self, job_ids: Collection[uuid.UUID], timeout: float
    ) -> dict[uuid.UUID, JobEvent]:
        deadline = time.monotonic() + timeout
        wanted = set(job_ids)
        found: dict[uuid.UUID, JobEvent] = {}
        while True:
            found |= recorded_stops(self.client, wanted - found.keys())
            if found.keys() >= wanted or time.monotonic() >= deadline:
                return found
            time.sleep(self.poll_seconds)


def recorded_stops(client: Client, job_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, JobEvent]:
    """The ``stopped`` events that answer each job's latest stop request, as the trail has them
    now (one read per ``IDS_PER_READ`` jobs)."""
    ids = sorted(str(job_id) for job_id in job_ids)
    found: dict[uuid.UUID, JobEvent] = {}
    for start in range(0, len(ids), IDS_PER_READ):
        latest: dict[str, Row] = {}
        for row in _stop_events(client, ids[start : start + IDS_PER_READ]):
            latest[str(row["job_id"])] = row  # in id order: the last one is the latest
        for row in latest.values():
            if row.get("event") == "stopped":
                event = JobEvent.from_row(row)
                found[event.job_id] = event
    return found


def _stop_events(client: Client, job_ids: list[str]) -> list[Row]:
    with backend("wait for the worker"):
        return rows_of(
            client.table("job_events")
            .select("*")
            .in_("job_id", job_ids)
            .in_("event", list(STOP_EVENTS))
            .order("id")
            .execute()
            .data
        )


def wait_for_stop(client: Client, job_id: uuid.UUID, timeout: float) -> JobEvent | None:
    """The worker's ``stopped`` event answering the job's latest stop request, if it arrives
    within ``timeout`` (0: as the trail has it now), read from the audit trail."""
    return AuditTrail(client).wait_for_stops([job_id], timeout).get(job_id)
