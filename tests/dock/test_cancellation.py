"""How Cancel & Delete waits: the action hands the wait to a ``StopWaiter``, reports the
acknowledgement it returned and times the stop from the trail's ``cancel_requested`` event;
the dock's ``MirrorStops`` waits only for jobs a worker held and asks the audit trail when the
mirror is not live. Against the real localbase; a worker's stop is the SQL call a worker makes."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from datetime import timedelta

import pytest

from dock.cancellation import MirrorStops
from dock.mirror import JobMirror
from jobdock import actions
from jobdock.models import JobEvent, JobStatus
from jobdock.settings import Settings
from jobdock.waiting import AuditTrail, recorded_stops
from supabase import Client

SQL = Callable[[str], None]


@pytest.fixture
def processing(service_client: Client, admin_sql: SQL, clean_jobs: None) -> uuid.UUID:
    """A job a worker (``w-test``) holds."""
    job = actions.enqueue(service_client, "demo.sleep")
    admin_sql("select public.claim_jobs('w-test', null, 100)")
    claimed = actions.get_job(service_client, job.id)
    assert claimed is not None
    assert claimed.status is JobStatus.PROCESSING
    return job.id


def record_stop(admin_sql: SQL, job_id: uuid.UUID, at: str = "clock_timestamp()") -> None:
    admin_sql(f"select public.record_stopped('{job_id}', 'w-test', 'cancelled', {at})")


class StopsAfterRequest:
    """A waiter whose worker stops exactly 250 ms after the cancel request (as the trail has
    it); it answers from the audit trail."""

    def __init__(self, client: Client, admin_sql: SQL) -> None:
        self.client, self.admin_sql = client, admin_sql
        self.calls: list[tuple[list[uuid.UUID], float]] = []

    def wait_for_stops(
        self, job_ids: Collection[uuid.UUID], timeout: float
    ) -> dict[uuid.UUID, JobEvent]:
        self.calls.append((list(job_ids), timeout))
        for job_id in job_ids:
            [request] = [
                e
                for e in actions.job_timeline(self.client, job_id)
                if e.event == "cancel_requested"
            ]
            assert request.created_at is not None
            stopped_at = request.created_at + timedelta(milliseconds=250)
            record_stop(self.admin_sql, job_id, f"'{stopped_at.isoformat()}'")
        return recorded_stops(self.client, job_ids)


def test_the_action_returns_the_waiters_acknowledgement_and_times_it_from_the_request(
    service_client: Client, admin_sql: SQL, processing: uuid.UUID
) -> None:
    waiter = StopsAfterRequest(service_client, admin_sql)
    result = actions.cancel_and_delete(service_client, processing, ack_timeout=1.5, stops=waiter)
    assert waiter.calls == [([processing], 1.5)]
    assert result.deleted
    assert result.acknowledged
    assert result.acknowledgement is not None
    assert result.acknowledgement.event == "stopped"
    assert result.stop_ms == pytest.approx(250, abs=0.01)
    assert actions.get_job(service_client, processing) is None


def test_an_earlier_stop_is_no_answer_to_a_new_request(
    service_client: Client, admin_sql: SQL, processing: uuid.UUID
) -> None:
    record_stop(admin_sql, processing)  # an earlier attempt's stop
    actions.request_cancel(service_client, processing)
    assert recorded_stops(service_client, [processing]) == {}
    assert AuditTrail(service_client).wait_for_stops([processing], 0) == {}
    record_stop(admin_sql, processing)
    assert set(recorded_stops(service_client, [processing])) == {processing}


def test_mirror_stops_wait_only_for_jobs_a_worker_held(
    service_client: Client, admin_sql: SQL, processing: uuid.UUID
) -> None:
    """Nobody answers for a job no worker held: an hour's timeout returns at once (the
    per-test timeout would end it otherwise)."""
    mirror = JobMirror(Settings())  # never started
    assert MirrorStops(service_client, mirror, frozenset()).wait_for_stops([processing], 3600) == {}


def test_mirror_stops_ask_the_audit_trail_while_the_mirror_is_not_live(
    service_client: Client, admin_sql: SQL, processing: uuid.UUID
) -> None:
    mirror = JobMirror(Settings())  # never started: not live
    stops = MirrorStops.expecting(service_client, mirror, [processing])
    actions.request_cancel(service_client, processing)
    record_stop(admin_sql, processing)
    found = stops.wait_for_stops([processing], 5)
    assert list(found) == [processing]
    assert found[processing].worker_id == "w-test"
