"""The live mirror against the real localbase and the official async client: it follows every
change, hands over stop acknowledgements, rebuilds a dead realtime client and resyncs."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from devstack.localbase import LocalbaseProcess
from devstack.proxy import TcpProxy
from devstack.worker import WorkerProcess
from dock.mirror import JobMirror, MirrorSnapshot, running
from jobdock import actions
from jobdock.models import JobStatus
from jobdock.settings import Settings
from supabase import Client
from tests.conftest import connect

WAIT = 10.0


@pytest.fixture
def jobs(localbase: LocalbaseProcess, admin_sql: Callable[[str], None]) -> Client:
    admin_sql("delete from public.background_jobs; delete from public.job_events")
    return connect(localbase.url, localbase.service_key)


@pytest.fixture
def proxy(localbase: LocalbaseProcess) -> Iterator[TcpProxy]:
    """The mirror's websocket goes through this proxy; REST goes straight to localbase."""
    cut_able = TcpProxy(localbase.api_port).start()
    yield cut_able
    cut_able.close()


def has(job_id: uuid.UUID, status: JobStatus | None = None) -> Callable[[MirrorSnapshot], bool]:
    def check(snapshot: MirrorSnapshot) -> bool:
        job = snapshot.jobs.get(job_id)
        return job is not None and (status is None or job.status is status)

    return check


def live(snapshot: MirrorSnapshot) -> bool:
    return snapshot.live


def down(snapshot: MirrorSnapshot) -> bool:
    return not snapshot.live


def test_the_mirror_follows_every_change_and_hands_over_stops(
    localbase: LocalbaseProcess, jobs: Client
) -> None:
    before = actions.enqueue(jobs, "demo.sleep")  # present before the mirror starts: resync
    mirror = JobMirror(Settings(supabase_url=localbase.url), resync_interval=1.0)
    with running(mirror), psycopg.connect(localbase.db_dsn, autocommit=True) as conn:
        assert mirror.wait_for(live, WAIT)
        assert before.id in mirror.snapshot().jobs

        job = actions.enqueue(jobs, "demo.sleep")
        assert mirror.wait_for(has(job.id, JobStatus.PENDING), WAIT)
        conn.execute("select public.claim_jobs('w-mirror', null, 100)")
        assert mirror.wait_for(has(job.id, JobStatus.PROCESSING), WAIT)
        mirror.expect_stop(job.id)
        assert mirror.wait_for_stops([job.id], 0.05) == {}
        actions.request_cancel(jobs, job.id)
        assert mirror.wait_for(has(job.id, JobStatus.CANCELLED), WAIT)
        ack = None
        for _ in range(5):  # postgres_changes is at most once: a stop may have to be repeated
            conn.execute(
                "select public.record_stopped(%s, 'w-mirror', 'cancelled', clock_timestamp())",
                (job.id,),
            )
            ack = mirror.wait_for_stops([job.id], 2).get(job.id)
            if ack is not None:
                break
        assert ack is not None
        assert ack.event == "stopped"
        assert ack.detail["reason"] == "cancelled"

        actions.cancel_and_delete(jobs, job.id, wait=0)
        assert mirror.wait_for(lambda s: job.id not in s.jobs, WAIT)
        groups = mirror.snapshot().groups
        assert [j.id for j in groups[JobStatus.PROCESSING]] == [before.id]  # claimed too
    assert not mirror.alive


def test_a_dead_realtime_client_is_rebuilt_and_the_gap_resynced(
    localbase: LocalbaseProcess, jobs: Client, proxy: TcpProxy
) -> None:
    """Realtime does not replay: what changed while the socket was down comes from REST."""
    mirror = JobMirror(
        Settings(supabase_url=localbase.url),
        realtime_settings=Settings(supabase_url=f"http://127.0.0.1:{proxy.port}"),
        fallback_interval=600,  # no REST refresh in between: only the resync can find it
        stale_after=1,
        backoff=(0.1, 0.2),
    )
    with running(mirror):
        assert mirror.wait_for(live, WAIT)
        proxy.cut()
        assert mirror.wait_for(down, WAIT)
        assert mirror.snapshot().problem
        missed = actions.enqueue(jobs, "demo.sleep")
        proxy.restore()
        assert mirror.wait_for(lambda s: s.live and missed.id in s.jobs, 30)
        after = actions.enqueue(jobs, "demo.sleep")
        assert mirror.wait_for(has(after.id), WAIT)


def test_while_realtime_is_down_rest_refreshes_slowly(
    localbase: LocalbaseProcess, jobs: Client, proxy: TcpProxy
) -> None:
    mirror = JobMirror(
        Settings(supabase_url=localbase.url),
        realtime_settings=Settings(supabase_url=f"http://127.0.0.1:{proxy.port}"),
        fallback_interval=0.2,
        stale_after=60,
    )
    with running(mirror):
        assert mirror.wait_for(live, WAIT)
        proxy.cut()
        assert mirror.wait_for(down, WAIT)
        job = actions.enqueue(jobs, "demo.sleep")
        assert mirror.wait_for(lambda s: not s.live and job.id in s.jobs, WAIT)
        actions.cancel_and_delete(jobs, job.id, wait=0)
        assert mirror.wait_for(lambda s: not s.live and job.id not in s.jobs, WAIT)


def test_rows_the_dock_deleted_do_not_come_back_from_late_deliveries(
    localbase: LocalbaseProcess, jobs: Client
) -> None:
    with running(JobMirror(Settings(supabase_url=localbase.url))) as mirror:
        assert mirror.wait_for(live, WAIT)
        job = actions.enqueue(jobs, "demo.sleep")
        mirror.forget(job.id)  # as after the dock's own delete, before realtime says so
        mirror.note(job)  # a late INSERT delivery
        assert job.id not in mirror.snapshot().jobs
        newer = actions.enqueue(jobs, "demo.sleep")
        mirror.note(newer)
        assert newer.id in mirror.snapshot().jobs


def test_more_rows_than_one_page_are_all_mirrored(
    localbase: LocalbaseProcess, jobs: Client, admin_sql: Callable[[str], None]
) -> None:
    admin_sql(
        "insert into public.background_jobs (job_type) "
        "select 'demo.sleep' from generate_series(1, 2500)"
    )
    with running(JobMirror(Settings(supabase_url=localbase.url))) as mirror:
        assert mirror.wait_for(lambda s: len(s.jobs) == 2500, 30)
        assert mirror.snapshot().count(JobStatus.PENDING) == 2500


def test_a_channel_closed_by_the_server_is_rebuilt_at_once_and_resynced(
    localbase: LocalbaseProcess, jobs: Client, admin_sql: Callable[[str], None]
) -> None:
    """localbase loses its replication stream and closes the channel, as Supabase does when it
    loses the database: the mirror rebuilds its client without waiting to go stale (60 s
    here), and what changed meanwhile comes from the resync."""
    mirror = JobMirror(
        Settings(supabase_url=localbase.url),
        fallback_interval=600,  # no REST refresh in between: only the resync can find it
        stale_after=60,
        backoff=(0.1, 0.2),
    )
    with running(mirror):
        assert mirror.wait_for(live, WAIT)
        admin_sql(
            "select pg_terminate_backend(pid) from pg_stat_replication"
            " where application_name = 'localbase_realtime'"
        )
        assert mirror.wait_for(down, WAIT)
        missed = actions.enqueue(jobs, "demo.sleep")
        assert mirror.wait_for(lambda s: s.live and missed.id in s.jobs, WAIT)
        after = actions.enqueue(jobs, "demo.sleep")
        assert mirror.wait_for(has(after.id), WAIT)


def test_the_mirror_knows_which_job_types_live_workers_run(
    localbase: LocalbaseProcess, jobs: Client, admin_sql: Callable[[str], None]
) -> None:
    admin_sql("delete from public.job_workers")
    settings = Settings(supabase_url=localbase.url)
    with running(JobMirror(settings, roster_interval=0.05)) as mirror:
        assert mirror.wait_for(lambda s: s.handled_types == frozenset(), WAIT)
        admin_sql("select public.worker_heartbeat('roster-w1', 30, null, 'h', 1, '{demo.sleep}')")
        assert mirror.wait_for(lambda s: s.handled_types == {"demo.sleep"}, WAIT)
        # A worker whose heartbeat is older than its lease is not live any more.
        admin_sql(
            "update public.job_workers set heartbeat_at = now() - interval '1 minute'"
            " where id = 'roster-w1'"
        )
        assert mirror.wait_for(lambda s: s.handled_types == frozenset(), WAIT)
    admin_sql("delete from public.job_workers")


def test_a_refused_subscription_is_not_live_until_it_succeeds(
    localbase: LocalbaseProcess, jobs: Client, admin_sql: Callable[[str], None]
) -> None:
    """A ``system`` error answering the join (here: a table not in the publication) is not a
    subscription, whatever the join reply said: the dock says so and keeps refreshing from
    REST, and is live again once a rejoin succeeds."""
    admin_sql("alter publication supabase_realtime drop table public.job_events")
    try:
        settings = Settings(supabase_url=localbase.url)
        mirror = JobMirror(settings, stale_after=0.5, backoff=(0.1,), fallback_interval=0.2)
        with running(mirror):
            assert mirror.wait_for(
                lambda s: (
                    not s.live
                    and s.synced_at is not None
                    and "refused the subscription" in (s.problem or "")
                ),
                WAIT,
            )
            job = actions.enqueue(jobs, "demo.sleep")  # still shown, through REST
            assert mirror.wait_for(lambda s: not s.live and job.id in s.jobs, WAIT)
            admin_sql("alter publication supabase_realtime add table public.job_events")
            assert mirror.wait_for(live, 30)
    finally:
        admin_sql(
            "do $$ begin alter publication supabase_realtime add table public.job_events;"
            " exception when duplicate_object then null; end $$"
        )


def test_workers_online_come_from_presence_and_a_killed_one_goes_offline(
    localbase: LocalbaseProcess, jobs: Client, tmp_path: Path
) -> None:
    mirror = JobMirror(Settings(supabase_url=localbase.url), stale_after=5)
    worker = WorkerProcess(
        localbase, tmp_path / "w.log", "present-1", ("--concurrency", "3", "--signals", "broadcast")
    )
    with running(mirror):
        assert mirror.wait_for(lambda s: s.workers is not None, WAIT)
        job = actions.enqueue(jobs, "demo.sleep", {"seconds": 60, "step": 0.5})
        worker.start()
        try:
            assert mirror.wait_for(lambda s: "present-1" in (s.workers or {}), WAIT)
            seen = (mirror.snapshot().workers or {})["present-1"]
            assert (seen.concurrency, seen.pid) == (3, worker.process and worker.process.pid)
            assert "demo.sleep" in seen.job_types
            # Its running count follows (tracked at most every 6 s).
            assert mirror.wait_for(
                lambda s: (w := (s.workers or {}).get("present-1")) is not None and w.running == 1,
                15,
            )
            assert worker.process is not None
            worker.process.kill()  # no goodbye: its socket closes, presence says it left
            assert mirror.wait_for(
                lambda s: "present-1" not in (s.workers or {}) and "present-1" in s.offline_since,
                15,
            )
        finally:
            worker.stop()
            actions.cancel_and_delete(jobs, job.id, wait=0)
