"""Faults: a worker killed mid-job, localbase restarted mid-job, Realtime unreachable for longer
than the client's retries, and a graceful shutdown with running jobs."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from devstack.documents import make_markdown
from devstack.localbase import LocalbaseProcess
from devstack.proxy import TcpProxy
from devstack.worker import WorkerProcess
from jobdock import actions
from supabase import Client
from tests.conftest import connect
from tests.helpers import eventually

Sql = Callable[..., list[tuple[Any, ...]]]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalbaseProcess]:
    """A localbase of this test's own (these tests restart or disturb it)."""
    own = LocalbaseProcess(tmp_path / "data")
    own.start()
    yield own
    own.stop()


@pytest.fixture
def sql(stack: LocalbaseProcess) -> Sql:
    def run(statement: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(stack.db_dsn, autocommit=True) as conn:
            cur = conn.execute(statement, params or None)
            return cur.fetchall() if cur.description else []

    return run


@pytest.fixture
def client(stack: LocalbaseProcess) -> Client:
    return connect(stack.url, stack.service_key)


def events(sql: Sql, job_id: uuid.UUID) -> list[tuple[str, str | None]]:
    return [
        (r[0], r[1])
        for r in sql(
            "select event, worker_id from public.job_events where job_id = %s order by id", job_id
        )
    ]


def stopped(sql: Sql, job_id: uuid.UUID) -> dict[str, Any] | None:
    rows = sql(
        "select detail from public.job_events where job_id = %s and event = 'stopped'"
        " order by id desc limit 1",
        job_id,
    )
    return rows[0][0] if rows else None


def running_on(sql: Sql, job_id: uuid.UUID, worker_id: str) -> bool:
    return bool(
        sql(
            "select 1 from public.background_jobs where id = %s and status ="
            " 'processing' and worker_id = %s",
            job_id,
            worker_id,
        )
    )


def reporting_on(sql: Sql, job_id: uuid.UUID, worker_id: str) -> bool:
    """Running there, and its first progress report written: no fenced write is in flight, so
    a cancel from now on can only be noticed through the feed (or the fallback poll)."""
    return bool(
        sql(
            "select 1 from public.background_jobs where id = %s and status ="
            " 'processing' and worker_id = %s and progress ? 'percent'",
            job_id,
            worker_id,
        )
    )


def status_of(sql: Sql, job_id: uuid.UUID) -> str | None:
    rows = sql("select status from public.background_jobs where id = %s", job_id)
    return rows[0][0] if rows else None


def test_killed_worker_is_replaced_and_chunks_are_written_once(
    stack: LocalbaseProcess, client: Client, sql: Sql, tmp_path: Path
) -> None:
    chapters = [(f"Chapter {n}", f"Text of chapter {n}.\n\nSecond paragraph.") for n in range(8)]
    client.storage.from_("documents").upload(
        "service/book.md", make_markdown(chapters), {"content-type": "text/markdown"}
    )
    job = actions.enqueue(
        client,
        "process_document",
        {
            "bucket": "documents",
            "path": "service/book.md",
            "filename": "book.md",
            "pace_seconds": 0.3,
        },
    )
    first = WorkerProcess(stack, tmp_path / "a.log", "doomed").start()
    eventually(
        lambda: sql(
            "select 1 from public.background_jobs where id = %s and"
            " (progress->>'percent')::float > 10",
            job.id,
        ),
        what="progress",
    )
    assert first.process is not None
    first.process.kill()
    first.process.wait()
    second = WorkerProcess(stack, tmp_path / "b.log", "heir").start()
    try:
        eventually(lambda: status_of(sql, job.id) == "completed", timeout=60, what="completion")
    finally:
        assert second.stop() == 0
    timeline = events(sql, job.id)
    assert ("claimed", "doomed") in timeline
    assert ("lease_expired", "doomed") in timeline
    assert ("claimed", "heir") in timeline
    assert timeline[-1] == ("completed", "heir")
    chunks = sql(
        "select chunk_index, chapter_title from public.document_chunks"
        " where job_id = %s order by chunk_index",
        job.id,
    )
    assert [c[1] for c in chunks] == [title for title, _ in chapters]
    assert [c[0] for c in chunks] == list(range(len(chapters)))
    assert sql("select retry_count from public.background_jobs where id = %s", job.id) == [(1,)]


def test_localbase_restart_mid_job_then_cancel_stops_it(
    stack: LocalbaseProcess, client: Client, sql: Sql, tmp_path: Path
) -> None:
    worker = WorkerProcess(stack, tmp_path / "w.log", "survivor").start()
    try:
        job = actions.enqueue(client, "demo.sleep", {"seconds": 120, "step": 120})
        eventually(lambda: running_on(sql, job.id, "survivor"), what="claim")
        stack.stop()
        stack.start()
        worker.wait_for_log("event=feed_subscribed", count=2, timeout=60)
        eventually(lambda: reporting_on(sql, job.id, "survivor"), what="still running")
        assert isinstance(
            actions.request_cancel(connect(stack.url, stack.service_key), job.id), actions.Done
        )
        detail = eventually(lambda: stopped(sql, job.id), what="stop after the restart")
        assert detail["reason"] == "cancelled"
        assert detail["via"] == "realtime"
    finally:
        assert worker.stop() == 0


def test_a_channel_closed_by_the_server_is_rebuilt_at_once(
    stack: LocalbaseProcess, client: Client, sql: Sql, tmp_path: Path
) -> None:
    """localbase loses its replication stream and closes the worker's channel (as Supabase
    does when it loses the database): the worker rebuilds its feed at once, well before its
    20 s rebuild allowance, and a cancel after that travels by Realtime again."""
    worker = WorkerProcess(
        stack, tmp_path / "w.log", "rejoiner", ("--signals", "postgres_changes")
    ).start()
    try:
        worker.wait_for_log("event=feed_subscribed")
        sql(
            "select pg_terminate_backend(pid) from pg_stat_replication"
            " where application_name = 'localbase_realtime'"
        )
        worker.wait_for_log("event=realtime_rebuild name=worker-rejoiner closed=True", timeout=10)
        worker.wait_for_log("event=feed_subscribed", count=2, timeout=10)
        job = actions.enqueue(client, "demo.sleep", {"seconds": 300, "step": 300})
        eventually(lambda: reporting_on(sql, job.id, "rejoiner"), what="claim")
        assert isinstance(actions.request_cancel(client, job.id), actions.Done)
        detail = eventually(lambda: stopped(sql, job.id), what="stop")
        assert detail["via"] == "realtime"
    finally:
        assert worker.stop() == 0


def test_realtime_outage_falls_back_to_polling_and_recovers(
    stack: LocalbaseProcess, client: Client, sql: Sql, tmp_path: Path
) -> None:
    proxy = TcpProxy(stack.api_port).start()
    worker = WorkerProcess(
        stack, tmp_path / "w.log", "weathered", realtime_url=f"http://127.0.0.1:{proxy.port}"
    ).start()
    try:
        proxy.cut()
        worker.wait_for_log("event=feed_down")
        during = actions.enqueue(client, "demo.sleep", {"seconds": 300, "step": 300})
        eventually(lambda: reporting_on(sql, during.id, "weathered"), what="claim by poll")
        actions.request_cancel(client, during.id)
        detail = eventually(lambda: stopped(sql, during.id), what="stop during the outage")
        assert detail["via"] == "fallback_poll"
        # Longer than the official client's 5 reconnect attempts: it gives up; we rebuild it.
        worker.wait_for_log("event=realtime_rebuild", timeout=60)
        worker.wait_for_log(r"event=realtime_(rebuild|down name=\S+ error)", count=3, timeout=60)
        proxy.restore()
        worker.wait_for_log("event=feed_subscribed", count=2, timeout=60)
        after = actions.enqueue(client, "demo.sleep", {"seconds": 300, "step": 300})
        eventually(lambda: reporting_on(sql, after.id, "weathered"), what="claim")
        actions.request_cancel(client, after.id)
        detail = eventually(lambda: stopped(sql, after.id), what="stop after recovery")
        assert detail["via"] == "realtime"
    finally:
        assert worker.stop() == 0
        proxy.close()


def test_sigterm_drains_hands_back_and_exits_cleanly(
    stack: LocalbaseProcess, client: Client, sql: Sql, tmp_path: Path
) -> None:
    worker = WorkerProcess(stack, tmp_path / "w.log", "leaving").start()
    jobs = [actions.enqueue(client, "demo.sleep", {"seconds": 3, "step": 0.1}) for _ in range(2)]
    for job in jobs:
        eventually(lambda job=job: running_on(sql, job.id, "leaving"), what="claim")
    worker.signal(signal.SIGTERM)
    assert worker.stop() == 0
    for job in jobs:
        assert stopped(sql, job.id)["reason"] == "shutdown"  # type: ignore[index]
        assert sql(
            "select status, retry_count, worker_id from public.background_jobs where id = %s",
            job.id,
        ) == [("pending", 0, None)]
        assert events(sql, job.id)[-1] == ("released", None)
    assert sql("select count(*) from public.job_workers where id = 'leaving'") == [(0,)]
    successor = WorkerProcess(stack, tmp_path / "s.log", "successor").start()
    try:
        for job in jobs:
            eventually(
                lambda job=job: status_of(sql, job.id) == "completed",
                timeout=30,
                what="the retried job to complete",
            )
    finally:
        assert successor.stop() == 0


def test_localbase_killed_while_jobs_complete_strands_none(
    stack: LocalbaseProcess, client: Client, sql: Sql, tmp_path: Path
) -> None:
    """``kill -9`` of localbase while 40 jobs finish: every outcome that could not be written
    is retried, or reconciled once the workers are back; none stays ``processing``."""
    workers = [
        WorkerProcess(stack, tmp_path / f"w{n}.log", f"strand-{n}", ("--concurrency", "20"))
        for n in range(2)
    ]
    for worker in workers:
        worker.start()
    try:
        jobs = [
            actions.enqueue(client, "demo.sleep", {"seconds": 3 + n * 0.05, "step": 0.5})
            for n in range(40)
        ]
        eventually(
            lambda: (
                sql("select count(*) from public.background_jobs where status = 'processing'")
                == [(40,)]
            ),
            what="all 40 running",
        )
        eventually(  # kill just before they finish, so they finish while localbase is down
            lambda: (
                sql(
                    "select count(*) from public.background_jobs where status = 'processing'"
                    " and (progress->>'percent')::float >= 75"
                )
                != [(0,)]
            ),
            what="the first jobs near their end",
        )
        assert stack.process is not None
        stack.process.kill()  # PostgreSQL goes down with it
        stack.process.wait()
        stack.process = None
        # Back only once completions have failed to be written.
        eventually(
            lambda: any("what=complete" in w.log for w in workers),
            timeout=30,
            what="a completion meeting the outage",
        )
        stack.start()
        done = eventually(
            lambda: (
                (
                    rows := sql(
                        "select status, count(*) from public.background_jobs where id = any(%s)"
                        " group by status",
                        [j.id for j in jobs],
                    )
                )
                and rows == [("completed", 40)]
                and rows
            ),
            timeout=90,
            what="all 40 completed after the restart",
        )
        assert done == [("completed", 40)]
        assert sql("select count(*) from public.background_jobs where status = 'processing'") == [
            (0,)
        ]
    finally:
        for worker in workers:
            assert worker.stop() == 0
