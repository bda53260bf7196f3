"""Stops and new work sent from SQL over Broadcast from Database: one message per affected
worker per statement, one per statement that adds work, none for a worker's own writes; the
``jobdock:`` topics are the workers' alone."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from realtime import AsyncRealtimeClient, RealtimeSubscribeStates

from devstack.localbase import LocalbaseProcess
from tests.conftest import make_jwt
from tests.helpers import Sql, claim, enqueue, status, studio_sql
from worker.stopping import StopReason


@pytest.fixture
def sql(localbase: LocalbaseProcess) -> Iterator[Sql]:
    with studio_sql(localbase.db_dsn, empty=True) as run:
        run("delete from realtime.messages where topic like 'jobdock:%'")
        yield run


def messages(sql: Sql, topic_like: str = "jobdock:%") -> list[tuple[str, str, Any]]:
    """(topic, event, payload) of the private messages sent, without the id Realtime adds."""
    return [
        (topic, event, {k: v for k, v in payload.items() if k != "id"})
        for topic, event, payload in sql(
            "select topic, event, payload from realtime.messages where topic like %s"
            " and private order by inserted_at, topic",
            topic_like,
        )
    ]


def stops(sql: Sql) -> dict[str, list[tuple[str, str, str]]]:
    """Per worker topic, its stop messages' jobs as (id, lease_id, reason)."""
    found: dict[str, list[tuple[str, str, str]]] = {}
    for topic, event, payload in messages(sql, "jobdock:worker:%"):
        assert event == "stop"
        found.setdefault(topic, []).extend(
            (j["id"], j["lease_id"], j["reason"]) for j in payload["jobs"]
        )
    return found


def test_a_bulk_cancel_is_one_message_per_worker(sql: Sql) -> None:
    """500 running jobs over 4 workers, and one pending: exactly 4 stop messages."""
    sql(
        "insert into public.background_jobs (job_type)"
        " select 'demo.sleep' from generate_series(1, 501)"
    )
    held = {
        f"w{n}": sorted(
            (str(i), str(lease))
            for i, lease in sql(
                "select id, lease_id from public.claim_jobs(%s, null, 125)", f"w{n}"
            )
        )
        for n in range(1, 5)
    }
    assert [len(jobs) for jobs in held.values()] == [125] * 4
    sql("delete from realtime.messages where topic like 'jobdock:%'")
    assert len(sql("select public.cancel_all_processing()")) == 501
    assert [(t, e) for t, e, _ in messages(sql)] == [
        (f"jobdock:worker:w{n}", "stop") for n in range(1, 5)
    ]
    assert {topic: sorted(jobs) for topic, jobs in stops(sql).items()} == {
        f"jobdock:worker:{w}": [(i, lease, "cancelled") for i, lease in jobs]
        for w, jobs in held.items()
    }


@pytest.mark.parametrize(
    ("statement", "reason"),
    [
        ("select public.force_fail(%s)", "force_failed"),
        ("delete from public.background_jobs where id = %s", "deleted"),
        ("update public.background_jobs set status = 'cancelled' where id = %s", "cancelled"),
        ("update public.background_jobs set status = 'pending' where id = %s", "lease_lost"),
    ],
)
def test_every_way_of_taking_a_job_away_tells_its_worker(
    sql: Sql, statement: str, reason: str
) -> None:
    job_id = enqueue(sql)
    _, lease = claim(sql, "w1")
    sql("delete from realtime.messages where topic like 'jobdock:%'")
    sql(statement, job_id)
    assert stops(sql) == {"jobdock:worker:w1": [(job_id, lease, reason)]}
    # The worker names a stop it notices itself (postgres_changes, a poll, a fence) by the same
    # rule: the reason the SQL sends is the one it would derive from the row.
    assert StopReason.for_status(status(sql, job_id)) == reason


def test_a_reclaim_tells_the_worker_that_lost_the_job(sql: Sql) -> None:
    sql("select public.worker_heartbeat('w1', 0.2)")
    job_id = enqueue(sql)
    _, lease = claim(sql, "w1")
    sql("update public.job_workers set heartbeat_at = now() - interval '1 minute'")
    sql("update public.background_jobs set heartbeat_at = now() - interval '1 minute'")
    sql("delete from realtime.messages where topic like 'jobdock:%'")
    assert claim(sql, "w2")[0] == job_id
    assert stops(sql) == {"jobdock:worker:w1": [(job_id, lease, "lease_lost")]}


def test_a_workers_own_writes_send_no_stop(sql: Sql) -> None:
    done, failed, released = enqueue(sql), enqueue(sql), enqueue(sql)
    leases = {claim(sql, "w1") for _ in range(3)}
    lease_of = dict(leases)
    sql("delete from realtime.messages where topic like 'jobdock:%'")
    sql("select public.report_progress(%s, %s, '{\"percent\": 50}')", done, lease_of[done])
    sql("select public.complete_job(%s, %s, '{}')", done, lease_of[done])
    sql("select public.fail_job(%s, %s, 'oops', false)", failed, lease_of[failed])
    sql("select public.release_job(%s, %s, 'shutdown')", released, lease_of[released])
    assert stops(sql) == {}
    # The hand-back is new work, though.
    assert [(e, p) for _, e, p in messages(sql, "jobdock:work")] == [
        ("work", {"job_types": ["demo.sleep"]})
    ]


def test_an_enqueue_statement_is_one_work_message(sql: Sql) -> None:
    sql(
        "insert into public.background_jobs (job_type)"
        " select case when g % 2 = 0 then 'demo.sleep' else 'demo.noop' end"
        " from generate_series(1, 10000) g"
    )
    assert messages(sql, "jobdock:work") == [
        ("jobdock:work", "work", {"job_types": ["demo.noop", "demo.sleep"]})
    ]


async def test_a_signed_in_user_cannot_join_a_jobdock_topic(
    localbase: LocalbaseProcess, admin_sql: Any
) -> None:
    """Even where the project lets users read every other private topic."""
    policy = f"users read rooms {uuid.uuid4().hex[:6]}"
    admin_sql(
        f'create policy "{policy}" on realtime.messages for select to authenticated using (true)'
    )
    try:
        token = make_jwt(str(uuid.uuid4()))
        assert await joins(localbase, token, "room:1") is RealtimeSubscribeStates.SUBSCRIBED
        assert await joins(localbase, token, "jobdock:worker:w1") is not (
            RealtimeSubscribeStates.SUBSCRIBED
        )
        assert await joins(localbase, token, "jobdock:work") is not (
            RealtimeSubscribeStates.SUBSCRIBED
        )
    finally:
        admin_sql(f'drop policy "{policy}" on realtime.messages')


async def joins(stack: LocalbaseProcess, token: str, topic: str) -> RealtimeSubscribeStates:
    """The first state a private join of ``topic`` reaches as the token's user."""
    client = AsyncRealtimeClient(f"{stack.url}/realtime/v1", stack.anon_key)
    client.access_token = token
    await client.connect()
    states: asyncio.Queue[RealtimeSubscribeStates] = asyncio.Queue()
    try:
        channel = client.channel(topic, params={"config": {"private": True}})
        await channel.subscribe(lambda state, _: states.put_nowait(state))
        return await asyncio.wait_for(states.get(), 15)
    finally:
        with contextlib.suppress(Exception):
            await client.remove_all_channels()
        await client.close()
