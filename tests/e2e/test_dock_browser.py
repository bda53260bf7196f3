"""The dock end to end in Debian's headless chromium (Playwright), against the real localbase and
real workers: upload → progress → Cancel & Delete; Force Fail → Retry → completed; Cancel all.

Elements are found by their Streamlit keys (``.st-key-<key>``), which carry the job id.
Screenshots go to ``$JOBDOCK_SCREENSHOTS`` when set (``make screenshots`` sets it to
``docs/screenshots/``), otherwise to a temporary directory, so a test run leaves the tree clean.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import BrowserContext, Locator, Page, WebSocket, expect
from playwright.sync_api import Error as PlaywrightError

from devstack.browser import chromium, require_chromium
from devstack.dock import DockProcess
from devstack.documents import make_epub
from devstack.localbase import LocalbaseProcess
from devstack.worker import WorkerProcess
from dock import push
from jobdock import actions
from jobdock.models import JobStatus
from localbase import keys
from supabase import Client
from tests.conftest import connect

DEMO_TYPES = "demo.sleep,demo.fail,demo.noop"
SQL = Callable[[str], None]


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    require_chromium()
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as browser:
        yield browser


@pytest.fixture(scope="module")
def dock(
    localbase: LocalbaseProcess, admin_sql: SQL, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DockProcess]:
    admin_sql("delete from public.background_jobs; delete from public.job_events")
    log = tmp_path_factory.mktemp("dock") / "dock.log"
    # Realtime is at most once: resync every 2 s rather than 30, so a lost event cannot stall.
    server = DockProcess(localbase, log, env={"DOCK_RESYNC_SECONDS": "2"}).start()
    yield server
    server.stop()


@pytest.fixture
def jobs(localbase: LocalbaseProcess) -> Client:
    return connect(localbase.url, localbase.service_key)


@pytest.fixture(scope="module")
def demo_worker(
    localbase: LocalbaseProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[object]:
    """A worker for the demo jobs (``process_document`` is left to the tests' own worker)."""
    log = tmp_path_factory.mktemp("worker") / "demo.log"
    worker = WorkerProcess(
        localbase,
        log,
        "w-e2e-demo",
        ("--concurrency", "4", "--job-types", DEMO_TYPES, "--log-level", "DEBUG"),
    ).start()
    yield worker
    worker.stop()


@pytest.fixture
def page(context: BrowserContext, dock: DockProcess) -> Iterator[Page]:
    tab = context.new_page()
    tab.goto(dock.url)
    expect(tab.get_by_role("heading", name="Processing Dock")).to_be_visible(timeout=30_000)
    yield tab
    tab.close()


# While a fragment reruns, a row that moved to another group is briefly drawn twice (the old
# copy is stale until the run ends): both copies are the same widgets, so the first one will do.
def rows(page: Page, job_id: uuid.UUID) -> Locator:
    return page.locator(f".st-key-job-{job_id}")


def row(page: Page, job_id: uuid.UUID) -> Locator:
    return rows(page, job_id).first


def buttons(page: Page, key: str, job_id: uuid.UUID | None = None) -> Locator:
    return page.locator(f".st-key-{key}{'-' + str(job_id) if job_id else ''} button")


def button(page: Page, key: str, job_id: uuid.UUID | None = None) -> Locator:
    return buttons(page, key, job_id).first


def click_until_gone(page: Page, key: str, job_id: uuid.UUID, attempts: int = 3) -> None:
    """Click the job's button until it goes away (its action happened). Every action is safe to
    repeat, as a person would click again when a click lands while the page is redrawn."""
    target = buttons(page, key, job_id)
    for _ in range(attempts):
        if target.count() == 0:
            return
        with contextlib.suppress(PlaywrightError):
            target.first.click(timeout=2_000)
        with contextlib.suppress(AssertionError):
            expect(target).to_have_count(0, timeout=3_000)
            return
    expect(target).to_have_count(0)


def toast(page: Page, text: str) -> Locator:
    return page.get_by_test_id("stToast").filter(has_text=text)


def stopped_events(jobs: Client, job_id: uuid.UUID) -> list[dict[str, object]]:
    return [dict(e.detail) for e in actions.job_timeline(jobs, job_id) if e.event == "stopped"]


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("JOBDOCK_SCREENSHOTS")
    target = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    target.mkdir(parents=True, exist_ok=True)
    return target


@pytest.fixture
def shoot(page: Page, screenshots: Path) -> Callable[[str], None]:
    def take(name: str) -> None:
        page.screenshot(path=str(screenshots / name))

    return take


def test_no_key_ever_reaches_the_browser(
    page: Page, dock: DockProcess, jobs: Client, localbase: LocalbaseProcess
) -> None:
    frames: list[str] = []

    def record(socket: WebSocket) -> None:
        socket.on("framereceived", lambda payload: frames.append(_text(payload)))

    page.on("websocket", record)
    page.reload()
    job = actions.enqueue(jobs, "demo.unhandled", {"note": "no worker takes this type"}, force=True)
    expect(row(page, job.id)).to_be_visible(timeout=10_000)
    # The dock's worker runs the demo types, not this one: the row says so.
    expect(row(page, job.id)).to_contain_text("no live worker runs demo.unhandled", timeout=15_000)
    page.locator(f".st-key-details-{job.id}").get_by_text("Details").click()
    expect(page.get_by_text("enqueued").first).to_be_visible(timeout=10_000)
    html = httpx.get(dock.url, timeout=10).text
    secrets = {
        "service_role key": localbase.service_key,
        "anon key": localbase.anon_key,
        "secret key": keys.SECRET_KEY,
        "JWT secret": keys.JWT_SECRET,
    }
    assert frames, "no websocket traffic recorded"
    for name, secret in secrets.items():
        assert secret not in html, name
        assert secret not in page.content(), name
        assert not any(secret in frame for frame in frames), name
    actions.cancel_and_delete(jobs, job.id, wait=0)


PUSHING = (
    "() => { const push = window.__jobdockPush;"
    " return !!push && push.socket.readyState === WebSocket.OPEN && push.timer === null; }"
)


def test_the_dock_pushes_changes_and_the_page_stops_asking(
    page: Page, dock: DockProcess, jobs: Client
) -> None:
    """Served by ``dock_server.py``, a page holds the dock's push socket and runs no timer of
    its own; a change in the database arrives on that socket and is drawn."""
    pushed: list[str] = []

    def record(socket: WebSocket) -> None:
        if socket.url.endswith(push.PATH):
            socket.on("framereceived", lambda payload: pushed.append(_text(payload)))

    page.on("websocket", record)
    page.reload()
    page.wait_for_function(PUSHING, timeout=10_000)
    before = len(pushed)
    job = actions.enqueue(jobs, "demo.unhandled", {"note": "pushed, not polled"}, force=True)
    expect(row(page, job.id)).to_be_visible(timeout=10_000)
    assert len(pushed) > before, "the change did not come through the push socket"
    assert all(frame.isdigit() for frame in pushed)  # version numbers only, never rows
    page.wait_for_function(PUSHING, timeout=10_000)  # still pushing: no fallback timer
    actions.cancel_and_delete(jobs, job.id, wait=0)


def test_without_push_the_page_asks_on_its_timer(
    context: BrowserContext,
    localbase: LocalbaseProcess,
    jobs: Client,
    tmp_path: Path,
) -> None:
    """``streamlit run dock_app.py`` has no push route: the page's listener falls back to its
    timer, and changes still show."""
    plain = DockProcess(localbase, tmp_path / "dock.log", script="dock_app.py").start()
    tab = context.new_page()
    try:
        tab.goto(plain.url)
        tab.wait_for_function("() => window.__jobdockPush && window.__jobdockPush.timer !== null")
        job = actions.enqueue(jobs, "demo.unhandled", {"note": "polled"}, force=True)
        expect(row(tab, job.id)).to_be_visible(timeout=10_000)
        actions.cancel_and_delete(jobs, job.id, wait=0)
    finally:
        tab.close()
        plain.stop()


def test_details_are_drawn_only_once_opened(page: Page, jobs: Client) -> None:
    """A closed row sends no input, output or timeline: opening Details reruns and fills it."""
    job = actions.enqueue(jobs, "demo.unhandled", {"note": "details on demand"}, force=True)
    details = page.locator(f".st-key-details-{job.id}")
    expect(details).to_be_visible(timeout=10_000)
    expect(row(page, job.id).get_by_role("progressbar")).to_have_attribute("aria-valuenow", "0")
    expect(details).not_to_contain_text("Timeline")
    details.get_by_text("Details", exact=True).click()
    expect(details).to_contain_text("details on demand", timeout=10_000)
    expect(details).to_contain_text("enqueued")
    details.get_by_text("Details", exact=True).click()
    expect(details).not_to_contain_text("Timeline", timeout=10_000)
    actions.cancel_and_delete(jobs, job.id, wait=0)


def _text(payload: str | bytes) -> str:
    return payload if isinstance(payload, str) else payload.decode("latin-1")


def test_upload_progress_then_cancel_and_delete(
    page: Page,
    jobs: Client,
    localbase: LocalbaseProcess,
    admin_sql: SQL,
    tmp_path: Path,
    shoot: Callable[[str], None],
) -> None:
    chapters = [(f"Chapter {n}", f"Text of chapter {n}. " * 40) for n in range(1, 9)]
    book = make_epub(chapters, title="Moby Dick")
    uploader = page.get_by_test_id("stFileUploaderDropzoneInput")
    uploader.set_input_files(
        files=[{"name": "moby.epub", "mimeType": "application/epub+zip", "buffer": book}]
    )
    expect(toast(page, "Uploaded moby.epub")).to_be_visible(timeout=15_000)
    [job] = [j for j in actions.list_jobs(jobs) if j.filename == "moby.epub"]  # exactly one
    assert job.status is JobStatus.PENDING
    expect(row(page, job.id)).to_contain_text("waiting for a worker")

    # Slow it down (as an operator could in Studio) so it can be watched, then start a worker.
    admin_sql(
        "update public.background_jobs set input_data = input_data || '{\"pace_seconds\": 1.5}'"
        f" where id = '{job.id}'"
    )
    worker = WorkerProcess(
        localbase, tmp_path / "documents.log", "w-e2e-docs", ("--job-types", "process_document")
    ).start()
    try:
        expect(row(page, job.id)).to_contain_text("processing", timeout=15_000)
        progressing = re.compile(r"chapter [1-3] of 8 · \d+%")
        expect(row(page, job.id)).to_contain_text(progressing, timeout=15_000)
        shoot("dock-processing.png")

        button(page, "cancel", job.id).click()
        expect(rows(page, job.id)).to_have_count(0, timeout=1_000)
        short = str(job.id)[:8]
        done = toast(page, f"Cancelled and deleted job {short} — worker stopped in ")
        expect(done).to_be_visible(timeout=5_000)
        shoot("dock-cancelled.png")
    finally:
        worker.stop()
    [stop] = stopped_events(jobs, job.id)
    assert stop["reason"]
    assert actions.get_job(jobs, job.id) is None


def test_force_fail_then_retry_runs_to_completion(
    page: Page, jobs: Client, demo_worker: object
) -> None:
    job = actions.enqueue(jobs, "demo.sleep", {"seconds": 3, "step": 0.1}, max_retries=0)
    expect(button(page, "force-fail", job.id)).to_be_visible(timeout=15_000)
    click_until_gone(page, "force-fail", job.id)
    expect(toast(page, f"Force-failed job {str(job.id)[:8]}")).to_be_visible(timeout=5_000)
    failed = row(page, job.id)
    expect(failed).to_contain_text("Force failed by user", timeout=5_000)
    expect(button(page, "retry", job.id)).to_be_visible()
    expect(button(page, "dismiss", job.id)).to_be_visible()
    expect(buttons(page, "cancel", job.id)).to_have_count(0)
    expect(buttons(page, "force-fail", job.id)).to_have_count(0)
    assert [s["reason"] for s in stopped_events(jobs, job.id)]

    click_until_gone(page, "retry", job.id)
    expect(row(page, job.id)).to_contain_text("completed", timeout=30_000)
    expect(button(page, "dismiss", job.id)).to_be_visible()
    expect(buttons(page, "retry", job.id)).to_have_count(0)
    finished = actions.get_job(jobs, job.id)
    assert finished is not None
    assert finished.status is JobStatus.COMPLETED

    click_until_gone(page, "dismiss", job.id)
    expect(rows(page, job.id)).to_have_count(0)
    assert actions.get_job(jobs, job.id) is None


def test_cancel_all_processing_stops_three_running_jobs(
    page: Page, jobs: Client, admin_sql: SQL, demo_worker: object, shoot: Callable[[str], None]
) -> None:
    admin_sql("delete from public.background_jobs")  # only this test's jobs are counted
    running = [actions.enqueue(jobs, "demo.sleep", {"seconds": 120}) for _ in range(3)]
    for job in running:
        expect(button(page, "force-fail", job.id)).to_be_visible(timeout=20_000)
    button(page, "bulk-cancel").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("3 processing", timeout=10_000)
    shoot("dock-cancel-all.png")
    button(page, "bulk-cancel-confirm").click()
    expect(
        toast(page, "Cancelled all processing: 3 jobs stopped and deleted (3 of 3 running")
    ).to_be_visible(timeout=10_000)
    for job in running:
        expect(rows(page, job.id)).to_have_count(0, timeout=5_000)
        assert actions.get_job(jobs, job.id) is None
        assert len(stopped_events(jobs, job.id)) == 1


def test_tour_screenshot(
    page: Page,
    jobs: Client,
    localbase: LocalbaseProcess,
    demo_worker: object,
    shoot: Callable[[str], None],
    screenshots: Path,
) -> None:
    """The README's picture: every state at once (a document job waits: no worker takes it)."""
    finished = actions.enqueue(jobs, "demo.sleep", {"seconds": 0.3, "step": 0.05})
    broken = actions.enqueue(jobs, "demo.fail", {"message": "chapter 7 is not valid XHTML"},
                             max_retries=0)  # fmt: skip
    busy = [actions.enqueue(jobs, "demo.sleep", {"seconds": 30, "step": 0.2}) for _ in range(2)]
    queued = actions.enqueue(
        jobs,
        "process_document",
        {"bucket": "documents", "path": "service/tour/dune.pdf", "filename": "dune.pdf"},
    )
    expect(row(page, finished.id)).to_contain_text("completed", timeout=20_000)
    expect(row(page, broken.id)).to_contain_text("not valid XHTML", timeout=20_000)
    for job in busy:  # well under way
        expect(row(page, job.id)).to_contain_text(
            re.compile(r"sleeping · [1-9]\d%"), timeout=20_000
        )
    expect(row(page, queued.id)).to_contain_text("waiting for a worker")
    page.set_viewport_size({"width": 1400, "height": 1800})
    expect(page.get_by_role("heading", name="Processing Dock")).to_be_in_viewport()
    shoot("dock-tour.png")
    details = page.locator(f".st-key-details-{finished.id}")
    details.get_by_text("Details").click()
    expect(details).to_contain_text("claimed")
    row(page, finished.id).screenshot(path=str(screenshots / "dock-details.png"))
    actions.cancel_all_processing(jobs, wait=0.2)
    for job in (finished, broken):
        actions.dismiss(jobs, job.id)


def test_workers_online_and_a_dead_workers_job_is_marked(
    page: Page,
    demo_worker: WorkerProcess,
    jobs: Client,
    localbase: LocalbaseProcess,
    tmp_path: Path,
) -> None:
    """The header counts the workers online (presence); a processing job whose worker died is
    flagged on its row, with Force Fail and Cancel & Delete still there."""
    expect(page.get_by_text(re.compile(r"\d+ workers? online · \d+ running · \d+ free slot"))
           ).to_be_visible(timeout=20_000)  # fmt: skip
    doomed = WorkerProcess(
        localbase, tmp_path / "doomed.log", "w-e2e-doomed", ("--job-types", "demo.blocking")
    ).start()
    job = actions.enqueue(jobs, "demo.blocking", {"seconds": 120, "check_every": 0.05})
    try:
        expect(row(page, job.id)).to_contain_text("worker w-e2e-doomed online", timeout=20_000)
        assert doomed.process is not None
        doomed.process.kill()  # no goodbye
        expect(row(page, job.id)).to_contain_text(
            re.compile(r"worker w-e2e-doomed offline \d+ s — lease (expires in \d+ s|expired)"),
            timeout=20_000,
        )
        expect(button(page, "force-fail", job.id)).to_be_visible()
        expect(button(page, "cancel", job.id)).to_be_visible()
    finally:
        doomed.stop()
        actions.cancel_and_delete(jobs, job.id, wait=0)
