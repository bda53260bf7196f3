"""The job state machine in SQL: transitions, the guard trigger, fencing, claiming, races, RLS."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from postgrest.exceptions import APIError
from psycopg.types.json import Jsonb

from devstack.localbase import LocalbaseProcess
from jobdock import actions
from jobdock.models import JobStatus
from supabase import Client
from tests.conftest import user_client
from tests.helpers import Sql, claim, enqueue, events, status


# -- allowed transitions --
def test_happy_path_completes_with_output(sql: Sql) -> None:
    job_id = enqueue(sql)
    claimed, lease = claim(sql)
    assert claimed == job_id
    assert sql(
        "select public.report_progress(%s, %s, %s)",
        job_id,
        lease,
        '{"percent": 50, "stage": "parse"}',
    ) == [(True,)]
    assert sql("select public.complete_job(%s, %s, %s)", job_id, lease, '{"chunks": 3}') == [
        (True,)
    ]
    row = sql(
        "select status, output_data, progress->>'percent', completed_at is not null"
        " from public.background_jobs where id = %s",
        job_id,
    )
    assert row == [("completed", {"chunks": 3}, "100", True)]
    assert events(sql, job_id) == ["enqueued", "claimed", "completed"]


def test_fail_schedules_retries_then_fails_for_good(sql: Sql) -> None:
    job_id = enqueue(sql, max_retries=1, retry_backoff_seconds=0)
    _, lease = claim(sql)
    assert sql("select public.fail_job(%s, %s, 'boom')", job_id, lease) == [("failed",)]
    assert sql(
        "select retry_count, next_retry_at is not null, last_error"
        " from public.background_jobs where id = %s",
        job_id,
    ) == [(1, True, "boom")]
    _, lease2 = claim(sql)  # the retry is due at once (backoff 0)
    assert lease2 != lease
    assert sql("select public.fail_job(%s, %s, 'boom again')", job_id, lease2) == [("failed",)]
    assert sql(
        "select retry_count, next_retry_at from public.background_jobs where id = %s", job_id
    ) == [(1, None)]
    assert sql("select count(*) from public.claim_jobs('w2')") == [(0,)]
    assert events(sql, job_id) == [
        "enqueued",
        "claimed",
        "failed",
        "retry_scheduled",
        "claimed",
        "failed",
    ]


def test_user_actions_follow_the_table(sql: Sql, service_client: Client) -> None:
    pending = enqueue(sql)
    assert actions.request_cancel(service_client, pending) == actions.Done(
        uuid.UUID(pending), JobStatus.CANCELLED
    )
    assert sql(
        "select last_error, cancel_requested_at is not null from public.background_jobs"
        " where id = %s",
        pending,
    ) == [("Cancelled by user", True)]

    running = enqueue(sql, max_retries=0)
    claim(sql)
    assert actions.force_fail(service_client, running) == actions.Done(
        uuid.UUID(running), JobStatus.FAILED
    )
    assert sql(
        "select last_error, next_retry_at, worker_id from public.background_jobs where id = %s",
        running,
    ) == [("Force failed by user", None, "w1")]
    assert actions.retry(service_client, running) == actions.Done(
        uuid.UUID(running), JobStatus.PENDING
    )
    assert sql(
        "select last_error, retry_count from public.background_jobs where id = %s", running
    ) == [(None, 0)]
    assert isinstance(actions.dismiss(service_client, running), actions.NotAllowed)
    assert actions.dismiss(service_client, pending) == actions.Done(uuid.UUID(pending), None)
    assert status(sql, pending) is None
    assert events(sql, pending)[-1] == "deleted"


def test_force_fail_applies_the_retry_policy(sql: Sql, service_client: Client) -> None:
    job_id = enqueue(sql, max_retries=2, retry_backoff_seconds=60)
    claim(sql)
    actions.force_fail(service_client, job_id)
    assert sql(
        "select status, retry_count, next_retry_at > now() from public.background_jobs"
        " where id = %s",
        job_id,
    ) == [("failed", 1, True)]
    # A failed job awaiting its retry can still be cancelled.
    assert isinstance(actions.request_cancel(service_client, job_id), actions.Done)
    assert status(sql, job_id) == "cancelled"


def test_outcomes_for_wrong_state_and_missing_jobs(sql: Sql, service_client: Client) -> None:
    job_id = enqueue(sql)
    _, lease = claim(sql)
    sql("select public.complete_job(%s, %s)", job_id, lease)
    done = uuid.UUID(job_id)
    assert actions.request_cancel(service_client, job_id) == actions.NotAllowed(
        done, JobStatus.COMPLETED
    )
    assert actions.force_fail(service_client, job_id) == actions.NotAllowed(
        done, JobStatus.COMPLETED
    )
    assert actions.retry(service_client, job_id) == actions.NotAllowed(done, JobStatus.COMPLETED)
    missing = uuid.uuid4()
    for action in (actions.request_cancel, actions.force_fail, actions.retry, actions.dismiss):
        assert action(service_client, missing) == actions.NotFound(missing)


# -- illegal transitions --
ILLEGAL = [
    ("completed", "processing"),
    ("completed", "pending"),
    ("completed", "failed"),
    ("cancelled", "completed"),
    ("cancelled", "processing"),
    ("cancelled", "pending"),
    ("pending", "completed"),
    ("pending", "failed"),
]


def put_in_state(sql: Sql, state: str) -> str:
    job_id = enqueue(sql)
    if state == "pending":
        return job_id
    _, lease = claim(sql)
    if state == "completed":
        sql("select public.complete_job(%s, %s)", job_id, lease)
    elif state == "cancelled":
        sql("select public.request_cancel(%s)", job_id)
    return job_id


@pytest.mark.parametrize(("before", "after"), ILLEGAL)
def test_studio_edit_cannot_break_the_state_machine(sql: Sql, before: str, after: str) -> None:
    job_id = put_in_state(sql, before)
    with pytest.raises(psycopg.errors.CheckViolation) as info:
        sql("update public.background_jobs set status = %s where id = %s", after, job_id)
    assert f"illegal job transition: {before} → {after}" in str(info.value)
    assert status(sql, job_id) == before


def test_illegal_transition_over_rest_is_a_clean_400(
    sql: Sql, localbase: LocalbaseProcess, service_client: Client
) -> None:
    job_id = put_in_state(sql, "completed")
    with pytest.raises(APIError) as info:
        service_client.table("background_jobs").update({"status": "processing"}).eq(
            "id", job_id
        ).execute()
    assert info.value.code == "23514"
    assert "illegal job transition: completed → processing" in str(info.value.message)


def test_studio_edits_that_are_legal_are_audited(sql: Sql) -> None:
    job_id = enqueue(sql)
    claim(sql)
    sql("update public.background_jobs set status = 'failed' where id = %s", job_id)
    sql("update public.background_jobs set status = 'pending' where id = %s", job_id)
    sql("delete from public.background_jobs where id = %s", job_id)
    assert events(sql, job_id) == ["enqueued", "claimed", "force_failed", "retried", "deleted"]


def test_insert_must_start_pending(sql: Sql) -> None:
    with pytest.raises(psycopg.errors.CheckViolation, match="must start as pending"):
        sql(
            "insert into public.background_jobs (job_type, status)"
            " values ('demo.sleep', 'completed')"
        )


# -- fencing --
@pytest.mark.parametrize("stop", ["cancel", "force_fail", "delete", "reclaim"])
def test_old_lease_writes_change_nothing(sql: Sql, stop: str) -> None:
    job_id = enqueue(sql, max_retries=3, retry_backoff_seconds=0)
    _, lease = claim(sql, "w1")
    if stop == "cancel":
        sql("select public.request_cancel(%s)", job_id)
    elif stop == "force_fail":
        sql("select public.force_fail(%s)", job_id)
    elif stop == "delete":
        sql("delete from public.background_jobs where id = %s", job_id)
    else:
        sql(
            "update public.background_jobs set heartbeat_at = now() - interval '1 hour'"
            " where id = %s",
            job_id,
        )
        _, new_lease = claim(sql, "w2")
        assert new_lease != lease
    before = sql(
        "select status, progress, output_data, retry_count from public.background_jobs"
        " where id = %s",
        job_id,
    )
    assert sql("select public.report_progress(%s, %s, '{\"percent\": 99}')", job_id, lease) == [
        (False,)
    ]
    assert sql("select public.complete_job(%s, %s, '{\"x\": 1}')", job_id, lease) == [(False,)]
    assert sql("select public.fail_job(%s, %s, 'late')", job_id, lease) == [(None,)]
    assert sql("select public.release_job(%s, %s)", job_id, lease) == [(False,)]
    assert progress_many(sql, [(job_id, lease, {"percent": 98})]) == set()
    after = sql(
        "select status, progress, output_data, retry_count from public.background_jobs"
        " where id = %s",
        job_id,
    )
    assert after == before


def progress_many(sql: Sql, items: list[tuple[str, str, dict[str, Any]]]) -> set[str]:
    payload = [{"id": i, "lease_id": lease, "progress": p} for i, lease, p in items]
    return {str(r[0]) for r in sql("select public.report_progress_many(%s)", Jsonb(payload))}


def test_progress_of_many_jobs_in_one_call_is_fenced_per_job(
    sql: Sql, localbase: LocalbaseProcess
) -> None:
    ids = [enqueue(sql) for _ in range(4)]
    leases = dict(sql("select id::text, lease_id::text from public.claim_jobs('w1', p_limit => 4)"))
    mine, cancelled, busy, other_lease = ids
    sql("select public.request_cancel(%s)", cancelled)
    items = [(i, leases[i], {"percent": n}) for n, i in enumerate(ids)]
    items[3] = (other_lease, str(uuid.uuid4()), {"percent": 3})
    items.append((str(uuid.uuid4()), str(uuid.uuid4()), {"percent": 5}))  # no such job
    with psycopg.connect(localbase.db_dsn) as holder:  # a transition in progress holds a row
        holder.execute("select 1 from public.background_jobs where id = %s for update", [busy])
        assert progress_many(sql, items) == {mine}  # the locked row is skipped, not waited for
    rows = dict(sql("select id::text, progress from public.background_jobs"))
    assert rows[mine] == {"percent": 0}
    assert all(rows[i] == {} for i in (cancelled, busy, other_lease))
    assert progress_many(sql, items[2:3]) == {busy}  # free again: written


def test_stops_of_many_jobs_are_recorded_in_one_call(sql: Sql) -> None:
    ids = [enqueue(sql) for _ in range(3)]
    sql("delete from public.background_jobs where id = %s", ids[2])  # gone: still recorded
    items = [
        {"id": i, "reason": r, "stopped_at": "2026-01-02T03:04:05.5+00:00", "detail": {"via": "t"}}
        for i, r in zip(ids, ["cancelled", "force_failed", "deleted"], strict=True)
    ]
    assert sql("select public.record_stops('w1', %s)", Jsonb(items)) == [(3,)]
    rows = sql(
        "select job_id::text, worker_id, detail from public.job_events"
        " where event = 'stopped' order by id"
    )
    assert [(r[0], r[1], r[2]["reason"], r[2]["via"]) for r in rows] == [
        (ids[0], "w1", "cancelled", "t"),
        (ids[1], "w1", "force_failed", "t"),
        (ids[2], "w1", "deleted", "t"),
    ]
    assert rows[0][2]["stopped_at"] == "2026-01-02T03:04:05.5+00:00"


def test_dead_worker_lease_expires_and_counts_an_attempt(sql: Sql) -> None:
    sql("select public.worker_heartbeat('w1', 0.2)")
    job_id = enqueue(sql, max_retries=1)
    claim(sql, "w1")
    assert sql("select count(*) from public.claim_jobs('w2')") == [(0,)]  # w1 is alive
    sql("update public.job_workers set heartbeat_at = now() - interval '1 minute'")
    sql("update public.background_jobs set heartbeat_at = now() - interval '1 minute'")
    claimed, _ = claim(sql, "w2")
    assert claimed == job_id
    assert sql(
        "select worker_id, retry_count from public.background_jobs where id = %s", job_id
    ) == [("w2", 1)]
    assert "lease_expired" in events(sql, job_id)
    # No retries left: the next expiry fails the job for good instead of reclaiming it.
    sql("update public.background_jobs set heartbeat_at = now() - interval '1 minute'")
    assert sql("select count(*) from public.claim_jobs('w3')") == [(0,)]
    assert status(sql, job_id) == "failed"


def test_release_hands_back_without_counting(sql: Sql) -> None:
    job_id = enqueue(sql)
    _, lease = claim(sql)
    assert sql("select public.release_job(%s, %s, 'shutdown')", job_id, lease) == [(True,)]
    assert sql(
        "select status, retry_count, worker_id from public.background_jobs where id = %s", job_id
    ) == [("pending", 0, None)]
    assert events(sql, job_id)[-1] == "released"


# -- concurrency --
def test_fifty_concurrent_claimers_claim_each_job_once(
    sql: Sql, localbase: LocalbaseProcess
) -> None:
    sql(
        "insert into public.background_jobs (job_type) select 'demo.sleep'"
        " from generate_series(1, 500)"
    )
    start = threading.Barrier(50)

    def claimer(n: int) -> list[str]:
        claimed: list[str] = []
        with psycopg.connect(localbase.db_dsn, autocommit=True) as conn:
            start.wait()
            while rows := conn.execute(
                "select id from public.claim_jobs(%s, null, 3)", (f"w{n}",)
            ).fetchall():
                claimed.extend(str(r[0]) for r in rows)
        return claimed

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(claimer, range(50)))
    claimed = [job for batch in results for job in batch]
    assert len(claimed) == 500
    assert len(set(claimed)) == 500
    assert sql("select count(*) from public.background_jobs where status = 'processing'") == [
        (500,)
    ]


def test_cancel_racing_completion_never_ends_both_ways(
    sql: Sql, localbase: LocalbaseProcess
) -> None:
    trials = 1000
    sql(
        "insert into public.background_jobs (job_type) select 'demo.sleep'"
        " from generate_series(1, %s)",
        trials,
    )
    jobs = sql("select id, lease_id from public.claim_jobs('w1', null, %s)", trials)
    go = threading.Barrier(2)
    completed: dict[str, bool] = {}
    cancelled: dict[str, bool] = {}

    def completer() -> None:
        with psycopg.connect(localbase.db_dsn, autocommit=True) as conn:
            for job_id, lease in jobs:
                go.wait()
                completed[str(job_id)] = conn.execute(
                    "select public.complete_job(%s, %s)", (job_id, lease)
                ).fetchone()[0]

    def canceller() -> None:
        with psycopg.connect(localbase.db_dsn, autocommit=True) as conn:
            for job_id, _ in jobs:
                go.wait()
                cancelled[str(job_id)] = conn.execute(
                    "select (public.request_cancel(%s)).changed", (job_id,)
                ).fetchone()[0]

    threads = [threading.Thread(target=completer), threading.Thread(target=canceller)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    final = dict(sql("select id::text, status::text from public.background_jobs"))
    for job_id, _ in jobs:
        key = str(job_id)
        assert completed[key] != cancelled[key], key  # exactly one of them won
        assert final[key] == ("completed" if completed[key] else "cancelled")


# -- RLS --
def test_users_only_touch_their_own_jobs(
    sql: Sql, localbase: LocalbaseProcess, anon_client: Client
) -> None:
    alice_id, bob_id = str(uuid.uuid4()), str(uuid.uuid4())
    alice, bob = user_client(localbase, alice_id), user_client(localbase, bob_id)
    bobs = actions.enqueue(bob, "demo.sleep")
    assert str(bobs.user_id) == bob_id
    assert actions.list_jobs(alice) == []
    assert actions.get_job(alice, bobs.id) is None
    assert actions.job_timeline(alice, bobs.id) == []
    for action in (actions.request_cancel, actions.force_fail, actions.retry, actions.dismiss):
        assert action(alice, bobs.id) == actions.NotFound(bobs.id)
    assert actions.cancel_all_processing(alice, wait=0).cancelled == ()
    assert status(sql, str(bobs.id)) == "pending"
    assert [j.id for j in actions.list_jobs(bob)] == [bobs.id]
    assert isinstance(actions.request_cancel(bob, bobs.id), actions.Done)
    with pytest.raises(APIError) as info:
        alice.table("background_jobs").insert(
            {"job_type": "demo.sleep", "user_id": bob_id}
        ).execute()
    assert info.value.code == "42501"
    with pytest.raises(APIError) as info:
        alice.table("background_jobs").update({"status": "cancelled"}).eq(
            "id", str(bobs.id)
        ).execute()
    assert info.value.code == "42501"
    with pytest.raises(APIError) as info:
        anon_client.table("background_jobs").select("*").execute()
    assert info.value.code == "42501"
    with pytest.raises(APIError) as info:
        anon_client.rpc("request_cancel", {"p_id": str(bobs.id)}).execute()
    assert info.value.code == "42501"
    with pytest.raises(APIError) as info:
        alice.rpc("claim_jobs", {"p_worker_id": "evil"}).execute()
    assert info.value.code == "42501"


def signals_after(sql: Sql, last: int) -> list[tuple[Any, ...]]:
    return sql("select job_types, jobs from public.job_signals where id > %s order by id", last)


def last_signal(sql: Sql) -> int:
    return int(sql("select coalesce(max(id), 0) from public.job_signals")[0][0])


def test_each_enqueue_statement_is_one_signal_naming_its_job_types(sql: Sql) -> None:
    sql("insert into public.job_types (name) values ('a.one'), ('b.two') on conflict do nothing")
    last = last_signal(sql)
    sql(
        "insert into public.background_jobs (job_type)"
        " select t from unnest(array['b.two', 'a.one', 'b.two']) t"
    )
    sql("insert into public.background_jobs (job_type) select 'x' where false")  # adds nothing
    enqueue(sql, "demo.sleep")
    assert signals_after(sql, last) == [(["a.one", "b.two"], 3), (["demo.sleep"], 1)]


def test_a_users_enqueue_signals_but_only_workers_read_signals(
    sql: Sql, localbase: LocalbaseProcess, service_client: Client
) -> None:
    alice = user_client(localbase, str(uuid.uuid4()))
    last = last_signal(sql)
    actions.enqueue(alice, "demo.sleep")
    assert signals_after(sql, last) == [(["demo.sleep"], 1)]
    with pytest.raises(APIError) as info:
        alice.table("job_signals").select("*").execute()
    assert info.value.code == "42501"
    assert service_client.table("job_signals").select("jobs").gt("id", last).execute().data == [
        {"jobs": 1}
    ]


def test_signals_are_trimmed_as_new_ones_arrive(sql: Sql) -> None:
    last = last_signal(sql)
    sql(
        "do $$ begin for i in 1..2100 loop"
        " insert into public.background_jobs (job_type) values ('demo.noop');"
        " end loop; end $$"
    )
    count, oldest, newest = sql("select count(*), min(id), max(id) from public.job_signals")[0]
    assert newest >= last + 2100  # every statement signalled
    assert count < 2000  # but no more than two thousand are kept
    assert oldest > last
