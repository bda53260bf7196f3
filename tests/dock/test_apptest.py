"""The dock's wiring with ``AppTest`` against the real localbase: which buttons each row offers
(looked up by key), what each one does to the database, the messages it leaves, no exceptions.

There is no worker here: a job is put in ``processing`` by claiming it with the SQL function a
worker uses, and a worker's stop acknowledgement is the SQL call a worker makes.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from streamlit.testing.v1 import AppTest

from devstack.documents import make_epub
from devstack.localbase import LocalbaseProcess
from dock import resources, state
from dock.mirror import MirrorSnapshot
from jobdock import actions
from jobdock.models import Job, JobStatus
from supabase import Client
from tests.conftest import connect

SQL = Callable[[str], None]
WAIT = 10.0


@pytest.fixture
def jobs(localbase: LocalbaseProcess) -> Client:
    return connect(localbase.url, localbase.service_key)


def mirror_shows(predicate: Callable[[MirrorSnapshot], bool]) -> None:
    """Wait for the dock's mirror (realtime) to reflect the database, then render."""
    assert resources.mirror().wait_for(predicate, WAIT), resources.mirror().snapshot()


def statuses(*expected: tuple[uuid.UUID, JobStatus]) -> Callable[[MirrorSnapshot], bool]:
    def check(snapshot: MirrorSnapshot) -> bool:
        return all(
            job_id in snapshot.jobs and snapshot.jobs[job_id].status is status
            for job_id, status in expected
        )

    return check


def gone(job_id: uuid.UUID) -> Callable[[MirrorSnapshot], bool]:
    return lambda snapshot: job_id not in snapshot.jobs


def claim(localbase: LocalbaseProcess, job: Job, worker: str = "w-dock") -> uuid.UUID:
    """Claim ``job`` as a worker would (it must be the only claimable one); returns the lease."""
    with psycopg.connect(localbase.db_dsn, autocommit=True) as conn:
        rows = conn.execute(
            "select id, lease_id from public.claim_jobs(%s, null, 100)", (worker,)
        ).fetchall()
    assert [row[0] for row in rows] == [job.id], f"claimed {rows}, expected only {job.id}"
    lease: uuid.UUID = rows[0][1]
    return lease


def keys(at: AppTest) -> set[str]:
    return {button.key for button in at.button if button.key}


def toasts(at: AppTest) -> list[str]:
    return [toast.value for toast in at.toast]


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def fast_ack_worker(localbase: LocalbaseProcess) -> Iterator[Callable[[uuid.UUID], None]]:
    """Stands in for a worker: once the mirror shows the job cancelled, record its stop."""
    threads: list[threading.Thread] = []

    def acknowledge(job_id: uuid.UUID) -> None:
        def work() -> None:
            with psycopg.connect(localbase.db_dsn, autocommit=True) as conn:
                resources.mirror().wait_for(statuses((job_id, JobStatus.CANCELLED)), WAIT)
                conn.execute(
                    "select public.record_stopped(%s, 'w-dock', 'cancelled', clock_timestamp())",
                    (job_id,),
                )

        thread = threading.Thread(target=work, name=f"ack-{job_id}")
        thread.start()
        threads.append(thread)

    yield acknowledge
    for thread in threads:
        thread.join(WAIT)


def test_an_empty_dock_renders_header_uploader_and_hint(app: AppTest) -> None:
    run(app)
    assert app.title[0].value == "Processing Dock"
    assert state.CANCEL_ALL in keys(app)
    uploader = app.file_uploader(key="upload-0")
    assert "50 MB" in uploader.label
    assert "EPUB, MD, PDF, TXT" in uploader.label
    assert any("No jobs yet" in info.value for info in app.info)


def test_each_state_offers_exactly_its_buttons(
    app: AppTest, jobs: Client, localbase: LocalbaseProcess, admin_sql: SQL
) -> None:
    processing = actions.enqueue(jobs, "demo.sleep")
    claim(localbase, processing)
    failed = actions.enqueue(jobs, "demo.fail", max_retries=0)
    claim(localbase, failed)
    completed = actions.enqueue(jobs, "demo.sleep")
    lease = claim(localbase, completed)
    pending = actions.enqueue(jobs, "demo.sleep")
    cancelled = actions.enqueue(jobs, "demo.sleep")
    admin_sql(f"select public.complete_job('{completed.id}', '{lease}', '{{\"words\": 3}}')")
    actions.force_fail(jobs, failed.id)
    admin_sql(f"update public.background_jobs set status = 'cancelled' where id = '{cancelled.id}'")
    mirror_shows(
        statuses(
            (pending.id, JobStatus.PENDING),
            (processing.id, JobStatus.PROCESSING),
            (failed.id, JobStatus.FAILED),
            (completed.id, JobStatus.COMPLETED),
            (cancelled.id, JobStatus.CANCELLED),
        )
    )
    offered = keys(run(app))
    expected = {
        pending.id: {state.cancel_key},
        processing.id: {state.cancel_key, state.force_fail_key},
        failed.id: {state.retry_key, state.dismiss_key},
        completed.id: {state.dismiss_key},
        cancelled.id: {state.dismiss_key},
    }
    every = {state.cancel_key, state.force_fail_key, state.retry_key, state.dismiss_key}
    for job_id, present in expected.items():
        for key in every:
            assert (key(job_id) in offered) is (key in present), (key(job_id), offered)
    assert app.button(key=state.cancel_key(processing.id)).proto.type == "primary"
    assert app.button(key=state.force_fail_key(processing.id)).proto.type == "secondary"
    headers = [header.value for header in app.subheader]
    assert headers == [
        "Processing (1)",
        "Pending (1)",
        "Failed (1)",
        "Completed (1)",
        "Cancelled (1)",
    ]


def test_a_row_is_one_html_fragment_its_buttons_and_closed_details(
    app: AppTest, jobs: Client, localbase: LocalbaseProcess
) -> None:
    """Few elements per row: the text, badge and progress bar of a job are one ``st.html``."""
    job = actions.enqueue(jobs, "demo.sleep", {"filename": "moby.epub"})
    claim(localbase, job)
    mirror_shows(statuses((job.id, JobStatus.PROCESSING)))
    run(app)
    [row] = [html.value for html in app.html if str(job.id)[:8] in html.value]
    assert "<code>moby.epub</code>" in row
    assert '<span class="dock-badge dock-blue">processing</span>' in row
    assert "starting · 0%" in row
    assert 'role="progressbar"' in row
    assert not app.progress
    assert not app.json
    cancel, force_fail = (
        app.button(key=key(job.id)) for key in (state.cancel_key, state.force_fail_key)
    )
    assert not cancel.help
    assert not force_fail.help
    assert any("**Force Fail** stops it" in caption.value for caption in app.caption)


def test_the_first_page_waits_for_the_first_rows_only_while_the_mirror_is_new(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The header never waits for the mirror; the panel waits for its first rows at most
    ``FIRST_SYNC_SECONDS`` after the mirror started (then it says "Loading the jobs…")."""
    waits: list[float] = []

    class Mirror:
        uptime = 1.5

        def wait_for(self, predicate: Callable[[MirrorSnapshot], bool], timeout: float) -> bool:
            waits.append(timeout)
            return False

        def snapshot(self) -> MirrorSnapshot:
            return MirrorSnapshot({}, 0, False, "connecting", None)

    young = Mirror()
    monkeypatch.setattr(resources, "FIRST_SYNC_SECONDS", 5.0)
    assert resources.first_rows(young).synced_at is None  # type: ignore[arg-type]
    assert waits == [3.5]
    young.uptime = 5.2
    resources.first_rows(young)  # type: ignore[arg-type]
    assert waits == [3.5]  # an old mirror that never synced: nobody waits any more


def test_cancel_and_delete_of_a_pending_job_deletes_it(app: AppTest, jobs: Client) -> None:
    job = actions.enqueue(jobs, "demo.sleep")
    mirror_shows(statuses((job.id, JobStatus.PENDING)))
    run(app).button(key=state.cancel_key(job.id)).click()
    run(app)
    assert actions.get_job(jobs, job.id) is None
    assert [e.event for e in actions.job_timeline(jobs, job.id)][-2:] == [
        "cancel_requested",
        "deleted",
    ]
    assert toasts(app) == [
        f"Cancelled and deleted job {str(job.id)[:8]} (no worker had started it)"
    ]
    assert state.cancel_key(job.id) not in keys(app)


def test_cancel_and_delete_waits_for_the_workers_acknowledgement(
    app: AppTest,
    jobs: Client,
    localbase: LocalbaseProcess,
    fast_ack_worker: Callable[[uuid.UUID], None],
) -> None:
    job = actions.enqueue(jobs, "demo.sleep")
    claim(localbase, job)
    mirror_shows(statuses((job.id, JobStatus.PROCESSING)))
    run(app).button(key=state.cancel_key(job.id)).click()
    fast_ack_worker(job.id)
    run(app)
    assert actions.get_job(jobs, job.id) is None
    [message] = toasts(app)
    assert message.startswith(f"Cancelled and deleted job {str(job.id)[:8]} — worker stopped in ")
    assert message.endswith(" ms")
    assert "stopped" in [e.event for e in actions.job_timeline(jobs, job.id)]


def test_cancel_and_delete_without_acknowledgement_says_so(
    app: AppTest, jobs: Client, localbase: LocalbaseProcess
) -> None:
    job = actions.enqueue(jobs, "demo.sleep")
    claim(localbase, job)
    mirror_shows(statuses((job.id, JobStatus.PROCESSING)))
    run(app).button(key=state.cancel_key(job.id)).click()
    run(app)
    assert actions.get_job(jobs, job.id) is None
    [message] = toasts(app)
    assert "without the worker's acknowledgement" in message


def test_a_failed_job_with_retries_left_offers_cancel_and_delete(
    app: AppTest, jobs: Client, localbase: LocalbaseProcess
) -> None:
    """DESIGN §1: Cancel & Delete is offered for a failed job awaiting its retry, as
    ``Job.can_cancel`` says; it deletes the job, so the retry never runs."""
    job = actions.enqueue(jobs, "demo.sleep", max_retries=2)
    claim(localbase, job)
    actions.force_fail(jobs, job.id)
    mirror_shows(lambda s: job.id in s.jobs and s.jobs[job.id].awaiting_retry)
    offered = keys(run(app))
    assert {state.cancel_key(job.id), state.retry_key(job.id), state.dismiss_key(job.id)} <= offered
    assert state.force_fail_key(job.id) not in offered

    app.button(key=state.cancel_key(job.id)).click()
    run(app)
    assert actions.get_job(jobs, job.id) is None
    assert [e.event for e in actions.job_timeline(jobs, job.id)][-2:] == [
        "cancel_requested",
        "deleted",
    ]
    assert toasts(app)[-1].startswith(f"Cancelled and deleted job {str(job.id)[:8]}")
    assert state.cancel_key(job.id) not in keys(app)


def test_force_fail_then_retry_then_dismiss(
    app: AppTest, jobs: Client, localbase: LocalbaseProcess
) -> None:
    job = actions.enqueue(jobs, "demo.sleep", max_retries=0)
    claim(localbase, job)
    mirror_shows(statuses((job.id, JobStatus.PROCESSING)))

    run(app).button(key=state.force_fail_key(job.id)).click()
    run(app)
    failed = actions.get_job(jobs, job.id)
    assert failed is not None
    assert failed.status is JobStatus.FAILED
    assert failed.last_error == "Force failed by user"
    assert toasts(app) == [f"Force-failed job {str(job.id)[:8]}; its worker stops now."]

    mirror_shows(statuses((job.id, JobStatus.FAILED)))
    assert {state.retry_key(job.id), state.dismiss_key(job.id)} <= keys(run(app))
    app.button(key=state.retry_key(job.id)).click()
    run(app)
    retried = actions.get_job(jobs, job.id)
    assert retried is not None
    assert retried.status is JobStatus.PENDING
    assert retried.last_error is None

    claim(localbase, job)
    actions.force_fail(jobs, job.id)
    mirror_shows(statuses((job.id, JobStatus.FAILED)))
    run(app).button(key=state.dismiss_key(job.id)).click()
    run(app)
    assert actions.get_job(jobs, job.id) is None
    assert toasts(app)[-1] == f"Removed job {str(job.id)[:8]}."
    assert state.dismiss_key(job.id) not in keys(app)


def test_a_second_click_from_a_stale_page_is_a_friendly_message(
    dock_env: dict[str, str], clean_jobs: None, jobs: Client, localbase: LocalbaseProcess
) -> None:
    """Two tabs (or a double click): the second click finds the job already handled."""
    from tests.dock.conftest import APP

    job = actions.enqueue(jobs, "demo.sleep")
    claim(localbase, job)
    mirror_shows(statuses((job.id, JobStatus.PROCESSING)))
    first, second = (run(AppTest.from_file(APP, default_timeout=30)) for _ in range(2))

    first.button(key=state.force_fail_key(job.id)).click()
    second.button(key=state.force_fail_key(job.id)).click()
    run(first)
    run(second)
    short = str(job.id)[:8]
    assert toasts(second) == [f"Job {short} is failed now; nothing to force-fail."]

    run(first).button(key=state.dismiss_key(job.id)).click()
    second.button(key=state.dismiss_key(job.id)).click()
    run(first)
    run(second)
    assert toasts(second) == [f"Job {short} is already gone; nothing to remove."]

    stale = actions.enqueue(jobs, "demo.sleep")
    mirror_shows(statuses((stale.id, JobStatus.PENDING)))
    run(first)
    run(second)
    first.button(key=state.cancel_key(stale.id)).click()
    second.button(key=state.cancel_key(stale.id)).click()
    run(first)
    run(second)
    assert toasts(second) == [f"Job {str(stale.id)[:8]} is already gone; nothing to cancel."]


def test_cancel_all_processing_goes_through_a_dialog(
    app: AppTest,
    jobs: Client,
    localbase: LocalbaseProcess,
    fast_ack_worker: Callable[[uuid.UUID], None],
) -> None:
    running = []
    for _ in range(2):
        running.append(actions.enqueue(jobs, "demo.sleep"))
        claim(localbase, running[-1])
    done = actions.enqueue(jobs, "demo.sleep")
    admin_lease = claim(localbase, done)
    waiting = actions.enqueue(jobs, "demo.sleep")
    with psycopg.connect(localbase.db_dsn, autocommit=True) as conn:
        conn.execute("select public.complete_job(%s, %s, null)", (done.id, admin_lease))
    mirror_shows(
        statuses(
            *((job.id, JobStatus.PROCESSING) for job in running),
            (waiting.id, JobStatus.PENDING),
            (done.id, JobStatus.COMPLETED),
        )
    )
    run(app).button(key=state.CANCEL_ALL).click()
    run(app)
    assert any("2 processing" in md.value and "1 pending" in md.value for md in app.markdown)
    assert state.CANCEL_ALL_CONFIRM in keys(app)
    assert actions.get_job(jobs, waiting.id) is not None  # nothing happens before confirming

    app.button(key=state.CANCEL_ALL_CONFIRM).click()
    for job in running:
        fast_ack_worker(job.id)
    run(app)
    for job in (*running, waiting):
        assert actions.get_job(jobs, job.id) is None
    assert actions.get_job(jobs, done.id) is not None
    assert toasts(app) == [
        "Cancelled all processing: 3 jobs stopped and deleted "
        "(2 of 2 running acknowledged by their worker)."
    ]
    assert state.CANCEL_ALL_CONFIRM not in keys(app)


def test_cancel_all_with_nothing_running(app: AppTest) -> None:
    run(app).button(key=state.CANCEL_ALL).click()
    run(app)
    assert any("Nothing is pending or processing" in md.value for md in app.markdown)
    app.button(key=state.CANCEL_ALL_CONFIRM).click()
    run(app)
    assert toasts(app) == ["Nothing was pending or processing; nothing to cancel."]


def test_uploading_an_epub_stores_it_and_enqueues_process_document(
    app: AppTest, jobs: Client
) -> None:
    book = make_epub([("One", "Call me Ishmael."), ("Two", "It was the best of times.")])
    run(app).file_uploader(key="upload-0").set_value(("moby.epub", book, "application/epub+zip"))
    run(app)
    [job] = actions.list_jobs(jobs)
    assert job.job_type == "process_document"
    assert job.input_data["filename"] == "moby.epub"
    stored = jobs.storage.from_("documents").download(job.input_data["path"])
    assert stored == book
    assert toasts(app) == [f"Uploaded moby.epub; job {str(job.id)[:8]} is queued."]
    assert [uploader.key for uploader in app.file_uploader] == ["upload-1"]  # empty again
    assert state.cancel_key(job.id) in keys(app)  # the new row shows at once


def _replayed_upload() -> None:
    """One selection handed to the uploader's callback twice, as Streamlit does when a rerun
    interrupts the one that carried the selection."""
    import streamlit as st
    from streamlit.runtime.uploaded_file_manager import UploadedFile, UploadedFileRec

    from dock import callbacks, state

    state.init()
    if "picked" not in st.session_state:
        record = UploadedFileRec("file-1", "twice.txt", "text/plain", b"one selection")
        st.session_state["picked"] = [UploadedFile(record, None)]  # type: ignore[arg-type]
        callbacks.on_upload("picked")
        callbacks.on_upload("picked")


def test_a_replayed_upload_callback_enqueues_the_file_once(
    dock_env: dict[str, str], clean_jobs: None, jobs: Client
) -> None:
    app = AppTest.from_function(_replayed_upload, default_timeout=30).run()
    assert not app.exception
    [job] = actions.list_jobs(jobs)
    assert job.input_data["filename"] == "twice.txt"


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("notes.docx", b"PK\x03\x04 not a supported type", "notes.docx: unsupported type"),
        ("empty.txt", b"", "empty.txt: the file is empty"),
    ],
)
def test_an_unacceptable_upload_is_explained_and_nothing_is_enqueued(
    app: AppTest, jobs: Client, name: str, data: bytes, expected: str
) -> None:
    run(app).file_uploader(key="upload-0").set_value((name, data, "application/octet-stream"))
    run(app)
    assert actions.list_jobs(jobs) == []
    [message] = toasts(app)
    assert message.startswith(expected)


def test_an_oversized_upload_is_explained_and_nothing_is_enqueued(
    dock_env: dict[str, str], clean_jobs: None, jobs: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.dock.conftest import APP

    monkeypatch.setenv("UPLOAD_LIMIT_BYTES", str(2**20))
    resources.settings.clear()
    try:
        at = run(AppTest.from_file(APP, default_timeout=30))
        uploader = at.file_uploader(key="upload-0")
        assert "up to 1 MB" in uploader.label
        uploader.set_value(("big.txt", b"x" * (2**20 + 1), "text/plain"))
        run(at)
    finally:
        monkeypatch.delenv("UPLOAD_LIMIT_BYTES")
        resources.settings.clear()
    assert actions.list_jobs(jobs) == []
    [message] = toasts(at)
    assert message.startswith("big.txt: 1.0 MB is over the")


def test_large_groups_are_capped_with_show_more(app: AppTest, jobs: Client) -> None:
    created = [actions.enqueue(jobs, "demo.sleep") for _ in range(5)]
    mirror_shows(statuses(*((job.id, JobStatus.PENDING) for job in created)))
    shown = {job.id for job in created if state.cancel_key(job.id) in keys(run(app))}
    assert len(shown) == 3  # DOCK_ROWS_PER_GROUP
    assert app.subheader[0].value == "Pending (5)"
    more = app.button(key=state.more_key(JobStatus.PENDING))
    assert more.label == "Show 2 more (2 not shown)"
    more.click()
    assert all(state.cancel_key(job.id) in keys(run(app)) for job in created)
    assert state.more_key(JobStatus.PENDING) not in keys(app)


def test_details_show_input_output_and_the_timeline(
    app: AppTest, jobs: Client, localbase: LocalbaseProcess
) -> None:
    job = actions.enqueue(jobs, "demo.sleep", {"seconds": 7})
    lease = claim(localbase, job)
    with psycopg.connect(localbase.db_dsn, autocommit=True) as conn:
        conn.execute(
            'select public.complete_job(%s, %s, \'{"chunks": 12, "words": 3400}\')',
            (job.id, lease),
        )
    mirror_shows(statuses((job.id, JobStatus.COMPLETED)))
    run(app)
    assert not app.json  # closed details read and send nothing
    app.session_state[state.details_key(job.id)] = True
    run(app)
    assert app.json[0].value == '{"seconds": 7}'
    assert "words: 3400; chunks: 12" in [md.value for md in app.markdown]  # jsonb key order
    timeline = app.table[0].value
    assert list(timeline["event"]) == ["enqueued", "claimed", "completed"]


def test_without_supabase_the_dock_explains_and_actions_fail_politely(
    dock_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from devstack.localbase import free_port
    from tests.dock.conftest import APP, clear_dock_resources

    monkeypatch.setenv("SUPABASE_URL", f"http://127.0.0.1:{free_port()}")
    clear_dock_resources()
    try:
        at = run(AppTest.from_file(APP, default_timeout=30))
        [banner] = at.warning
        assert banner.value.startswith("Live updates are unavailable")
        at.button(key=state.CANCEL_ALL).click()
        run(at).button(key=state.CANCEL_ALL_CONFIRM).click()
        run(at)
        [message] = toasts(at)
        assert "cannot reach Supabase" in message
    finally:
        monkeypatch.undo()
        clear_dock_resources()
