"""How jobs and outcomes read on screen (pure functions, no I/O)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from dock import grouping, present
from dock.mirror import Deleted, MirrorSnapshot, Stopped, Upserted, parse_change
from jobdock.actions import BulkCancelResult, CancelResult, Done, NotAllowed, NotFound
from jobdock.models import Job, JobEvent, JobStatus, Progress, WorkerInfo, WorkerPresence

NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
JOB_ID = uuid.UUID("3f2c1a9b-0000-4000-8000-000000000001")


def job(status: JobStatus = JobStatus.PROCESSING, **fields: object) -> Job:
    values: dict[str, object] = {"id": JOB_ID, "job_type": "process_document", "status": status}
    values.update(fields)
    return Job(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.2, "just now"),
        (29.9, "just now"),
        (30, "30 s ago"),
        (59, "30 s ago"),
        (150, "2 min ago"),
        (7300, "2 h ago"),
        (90000, "1 d ago"),
    ],
)
def test_relative_times(seconds: float, text: str) -> None:
    assert present.ago(NOW - timedelta(seconds=seconds), NOW) == text
    assert present.ago(None, NOW) == "—"


def test_badge_progress_and_times_of_a_running_job() -> None:
    running = job(
        started_at=NOW - timedelta(seconds=5),
        created_at=NOW - timedelta(seconds=41),
        worker_id="w-1",
        retry_count=1,
        progress=Progress(42.4, "chunking", "chapter 3 of 9"),
    )
    assert present.badge(running, NOW) == "processing"
    assert present.progress(running) == (0.424, "chunking — chapter 3 of 9 · 42%")
    assert present.times(running, NOW) == "created 30 s ago · started just now · retries 1/3"


def test_a_running_jobs_worker_online_offline_or_unknown() -> None:
    running = job(worker_id="w-1", started_at=NOW - timedelta(seconds=60))
    assert present.worker_note(running, present.Fleet(), NOW) == ("worker w-1", False)
    online = present.Fleet(online=frozenset({"w-1"}))
    assert present.worker_note(running, online, NOW) == ("worker w-1 online", False)
    beat = WorkerInfo("w-1", ("demo.sleep",), NOW - timedelta(seconds=12), 30.0)
    offline = present.Fleet(
        online=frozenset(),
        offline_since={"w-1": NOW - timedelta(seconds=12)},
        roster={"w-1": beat},
    )
    assert present.worker_note(running, offline, NOW) == (
        "worker w-1 offline 12 s — lease expires in 18 s",
        True,
    )
    just_gone = present.Fleet(online=frozenset(), offline_since={"w-1": NOW})
    assert present.worker_note(running, just_gone, NOW) == ("worker w-1", False)
    expired = present.Fleet(online=frozenset(), roster={"w-1": replace(beat, heartbeat_at=None)})
    assert present.worker_note(running, expired, NOW) == (
        "worker w-1 offline — lease expired",
        True,
    )
    assert present.worker_note(job(JobStatus.PENDING), offline, NOW) is None
    html = present.job_html(running, NOW, offline)
    assert '<div class="dock-error">worker w-1 offline 12 s — lease expires in 18 s</div>' in html


def test_the_workers_line_counts_presence_and_the_running_jobs() -> None:
    def worker(name: str, concurrency: int, running: int) -> WorkerPresence:
        return WorkerPresence(name, "h", 1, concurrency, running, ("demo.sleep",), "0.1", NOW)

    unknown = MirrorSnapshot({}, 1, True, None, NOW)
    assert present.workers_line(unknown) is None
    assert present.workers_line(replace(unknown, workers={})) == "no worker online"
    # Presence says how many slots; the jobs say what runs (presence's own count lags).
    fleet = {"a": worker("a", 4, 0), "b": worker("b", 10, 0), "c": worker("c", 2, 0)}
    on = [job(worker_id=w, id=uuid.uuid4()) for w in ["a"] * 4 + ["b"] * 8]
    elsewhere = job(worker_id="gone", id=uuid.uuid4())  # its worker is not online
    jobs = {j.id: j for j in [*on, elsewhere]}
    snapshot = MirrorSnapshot(jobs, 1, True, None, NOW, workers=fleet)
    assert present.workers_line(snapshot) == "3 workers online · 12 running · 4 free slots"


def test_a_job_is_one_html_fragment_with_title_badge_times_and_bar() -> None:
    running = job(
        input_data={"filename": "moby <dick>.epub"},
        created_at=NOW - timedelta(seconds=41),
        progress=Progress(42.4, "chunking", "chapter 3 of 9"),
    )
    html = present.job_html(running, NOW)
    assert html.startswith('<div class="dock-job">')
    assert html.endswith("</div>")
    assert (
        "<b>process_document</b> · <code>moby &lt;dick&gt;.epub</code> · <code>3f2c1a9b</code>"
        in html
    )
    assert '<span class="dock-badge dock-blue">processing</span>' in html
    assert '<div class="dock-times">created 30 s ago · retries 0/3</div>' in html
    assert '<div class="dock-stage">chunking — chapter 3 of 9 · 42%</div>' in html
    assert 'aria-valuenow="42"' in html
    assert '<div style="width: 42.4%"></div>' in html
    assert "dock-error" not in html
    for name in ("dock-job", "dock-badge", "dock-blue", "dock-times", "dock-stage", "dock-bar"):
        assert f".{name}" in present.JOB_CSS  # every class it uses is styled


def test_text_from_the_database_is_never_markup() -> None:
    hostile = job(
        JobStatus.FAILED,
        job_type="<script>alert(1)</script>",
        last_error='<img src=x onerror="alert(2)"> & more',
        progress=Progress(10.0, "<b>stage</b>"),
    )
    html = present.job_html(hostile, NOW)
    assert "<script>" not in html
    assert "<img" not in html
    assert "<b>stage" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert (
        '<div class="dock-error">&lt;img src=x onerror=&quot;alert(2)&quot;&gt; &amp; more</div>'
        in html
    )
    assert '<span class="dock-badge dock-red">failed</span>' in html


def test_progress_per_state() -> None:
    assert present.progress(job(JobStatus.PENDING)) == (0.0, "waiting for a worker")
    assert present.progress(job(JobStatus.PENDING), frozenset({"process_document"})) == (
        0.0,
        "waiting for a worker",
    )
    assert present.progress(job(JobStatus.PENDING), frozenset({"demo.sleep"})) == (
        0.0,
        "waiting for a worker — no live worker runs process_document",
    )
    assert present.progress(job(JobStatus.COMPLETED)) == (1.0, "done")
    assert present.progress(job(JobStatus.PROCESSING)) == (0.0, "starting · 0%")
    assert present.progress(job(JobStatus.FAILED)) is None
    stopped = job(JobStatus.FAILED, progress=Progress(150.0))
    assert present.progress(stopped) == (1.0, "stopped · 100%")


def test_a_failed_job_awaiting_retry_says_when() -> None:
    waiting = job(
        JobStatus.FAILED,
        next_retry_at=NOW + timedelta(seconds=4),
        last_error="boom: *bad* [input]",
    )
    assert present.badge(waiting, NOW) == "failed · retry in 4 s"
    assert '<div class="dock-error">boom: *bad* [input]</div>' in present.job_html(waiting, NOW)


def test_finished_jobs_say_how_long_they_took() -> None:
    done = job(
        JobStatus.COMPLETED,
        created_at=NOW - timedelta(minutes=3),
        started_at=NOW - timedelta(seconds=100),
        completed_at=NOW - timedelta(seconds=10),
    )
    assert present.times(done, NOW) == (
        "created 3 min ago · started 1 min ago · finished just now · took 1 min 30 s · retries 0/3"
    )


def test_output_summaries_stay_short() -> None:
    assert present.output_summary(None) == "no output"
    assert present.output_summary({"chunks": 12, "title": "Moby"}) == "chunks: 12; title: Moby"
    many = {f"k{i}": i for i in range(10)}
    assert present.output_summary(many).endswith("; … 2 more")
    assert present.output_summary({"pages": [1, 2, 3], "meta": {"a": 1}}) == (
        "pages: [3 items]; meta: {1 fields}"
    )
    assert len(present.output_summary("x" * 1000)) <= 400


def test_cancel_messages() -> None:
    short = "3f2c1a9b"
    done = Done(JOB_ID, JobStatus.CANCELLED)
    stopped = JobEvent(7, JOB_ID, "stopped", "w-1", {"reason": "cancelled"}, None)
    acked = CancelResult(done, deleted=True, acknowledgement=stopped, stop_ms=41.6)
    assert present.cancel_message(acked, True, 2) == (
        "success",
        f"Cancelled and deleted job {short} — worker stopped in 42 ms",
    )
    silent = CancelResult(done, deleted=True)
    kind, text = present.cancel_message(silent, True, 2)
    assert kind == "warning"
    assert text.startswith(
        f"Cancelled and deleted job {short} without the worker's acknowledgement"
    )
    assert present.cancel_message(silent, False, 2) == (
        "success",
        f"Cancelled and deleted job {short} (no worker had started it)",
    )
    gone = CancelResult(NotFound(JOB_ID), deleted=False)
    assert present.cancel_message(gone, True, 2) == (
        "info",
        f"Job {short} is already gone; nothing to cancel.",
    )
    finished = CancelResult(NotAllowed(JOB_ID, JobStatus.COMPLETED), deleted=False)
    assert present.cancel_message(finished, True, 2) == (
        "info",
        f"Job {short} already completed; nothing to cancel.",
    )


def test_outcome_and_bulk_messages() -> None:
    assert present.outcome_message("retry", NotAllowed(JOB_ID, JobStatus.PENDING)) == (
        "info",
        "Job 3f2c1a9b is pending now; nothing to retry.",
    )
    assert present.outcome_message("dismiss", Done(JOB_ID, None))[0] == "success"
    nothing = BulkCancelResult((), ())
    assert present.bulk_message(nothing, 0, 0)[0] == "info"
    three = BulkCancelResult((JOB_ID,) * 3, (JOB_ID,) * 3)
    assert present.bulk_message(three, 2, 1) == (
        "success",
        "Cancelled all processing: 3 jobs stopped and deleted "
        "(1 of 2 running acknowledged by their worker).",
    )


def row(**fields: object) -> dict[str, object]:
    return {"id": str(JOB_ID), "job_type": "demo.sleep", "status": "pending", **fields}


def test_realtime_payloads_become_typed_changes() -> None:
    insert = {"data": {"table": "background_jobs", "type": "INSERT", "record": row()}}
    assert isinstance(parse_change(insert), Upserted)
    delete = {
        "data": {"table": "background_jobs", "type": "DELETE", "old_record": {"id": str(JOB_ID)}}
    }
    assert parse_change(delete) == Deleted(JOB_ID)
    stopped = {
        "data": {
            "table": "job_events",
            "type": "INSERT",
            "record": {"id": 7, "job_id": str(JOB_ID), "event": "stopped", "detail": {}},
        }
    }
    change = parse_change(stopped)
    assert isinstance(change, Stopped)
    assert change.event.id == 7
    progress = {"data": {"table": "job_events", "type": "INSERT", "record": {"event": "progress"}}}
    assert parse_change(progress) is None


def test_snapshot_groups_put_the_next_pending_job_first_and_the_newest_finished_first() -> None:
    def at(minutes: int) -> datetime:
        return NOW + timedelta(minutes=minutes)

    jobs = [
        Job(uuid.uuid4(), "a", JobStatus.PENDING, created_at=at(2)),
        Job(uuid.uuid4(), "b", JobStatus.PENDING, created_at=at(1)),
        Job(uuid.uuid4(), "c", JobStatus.COMPLETED, created_at=at(0), completed_at=at(3)),
        Job(uuid.uuid4(), "d", JobStatus.COMPLETED, created_at=at(0), completed_at=at(5)),
    ]
    groups = grouping.group_jobs(jobs)
    assert tuple(groups) == grouping.GROUP_ORDER  # every group, empty ones too, in page order
    assert [j.job_type for j in groups[JobStatus.PENDING]] == ["b", "a"]
    assert [j.job_type for j in groups[JobStatus.COMPLETED]] == ["d", "c"]
    snapshot = MirrorSnapshot({j.id: j for j in jobs}, 1, True, None, None)
    assert snapshot.groups == groups
    assert snapshot.count(JobStatus.PENDING, JobStatus.PROCESSING) == 2
