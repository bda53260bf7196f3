"""Helpers shared by the tests (plain functions; the fixtures are in the ``conftest.py``
files): waiting on a condition, and driving jobs through SQL as Supabase Studio would."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg

from jobdock import actions
from jobdock.models import Job, JobStatus
from supabase import Client

Sql = Callable[..., list[tuple[Any, ...]]]
#: Makes a Storage bucket with a unique id (keyword arguments: the bucket's options).
BucketFactory = Callable[..., str]


@contextlib.contextmanager
def studio_sql(dsn: str, *, empty: bool = False) -> Iterator[Sql]:
    """SQL as ``postgres`` on one autocommit connection, as Supabase Studio runs it; ``empty``
    truncates the job tables first."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        if empty:
            conn.execute(
                "truncate public.background_jobs, public.job_events, public.job_workers cascade"
            )

        def run(statement: str, *params: Any) -> list[tuple[Any, ...]]:
            cur = conn.execute(statement, params or None)
            return cur.fetchall() if cur.description else []

        yield run


def eventually(condition: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    """Wait for ``condition()`` to be truthy, checking every 20 ms, at most ``timeout``."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(0.02)
    return value


# Jobs through SQL (the ``sql`` fixture's connection) ----------------------------------------


def enqueue(sql: Sql, job_type: str = "demo.sleep", **columns: Any) -> str:
    rows = sql("select id from public.enqueue_job(%s)", job_type)
    job_id = str(rows[0][0])
    for column, value in columns.items():
        sql(f"update public.background_jobs set {column} = %s where id = %s", value, job_id)
    return job_id


def claim(sql: Sql, worker: str = "w1") -> tuple[str, str]:
    rows = sql("select id, lease_id from public.claim_jobs(%s)", worker)
    assert rows, "nothing to claim"
    return str(rows[0][0]), str(rows[0][1])


def status(sql: Sql, job_id: str) -> str | None:
    rows = sql("select status from public.background_jobs where id = %s", job_id)
    return rows[0][0] if rows else None


def events(sql: Sql, job_id: str) -> list[str]:
    return [
        r[0]
        for r in sql("select event from public.job_events where job_id = %s order by id", job_id)
    ]


def finished(client: Client, job_id: uuid.UUID, timeout: float = 30.0) -> Job:
    """The job once it has completed or failed (a ``Job`` read over REST)."""
    job: Job = eventually(
        lambda: (j := actions.get_job(client, job_id)) and j.status in FINISHED_STATES and j,
        timeout=timeout,
        what=f"job {job_id} to finish",
    )
    return job


FINISHED_STATES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED})
