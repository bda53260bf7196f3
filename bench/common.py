"""Shared benchmark helpers: an own localbase, worker processes, percentiles, tables."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
from realtime import AsyncRealtimeClient
from realtime.types import RealtimePostgresChangesListenEvent as Listen

from devstack.localbase import LocalbaseProcess
from devstack.proxy import TcpProxy
from devstack.worker import WorkerProcess
from supabase import Client, create_client


def run(main: Callable[[], object]) -> None:
    """Run a benchmark's ``main``. Stopped with SIGTERM (``timeout``, Ctrl-C in a pipeline), it
    unwinds like an exception, so its localbase and worker processes are stopped, not left
    running."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    result = main()
    if isinstance(result, int):
        sys.exit(result)


def connect(url: str, key: str) -> Client:
    """An official client, as the dock or the CLI would make one."""
    return create_client(url, key)


@contextlib.contextmanager
def localbase(*extra_args: str) -> Iterator[tuple[LocalbaseProcess, Path]]:
    with tempfile.TemporaryDirectory() as tmp:
        stack = LocalbaseProcess(Path(tmp) / "data", extra_args=extra_args)
        stack.start()
        try:
            yield stack, Path(tmp)
        finally:
            stack.stop()


@contextlib.contextmanager
def reach(stack: LocalbaseProcess, rtt_ms: float) -> Iterator[str]:
    """The URL at which workers and callers reach localbase: its own at 0 ms; otherwise a proxy
    that delays each direction by half of ``rtt_ms`` (hosted Supabase is not on localhost). The
    proxy runs in a thread of the benchmark's process."""
    if rtt_ms <= 0:
        yield stack.url
        return
    proxy = TcpProxy(stack.api_port, delay_seconds=rtt_ms / 2000).start()
    try:
        yield f"http://127.0.0.1:{proxy.port}"
    finally:
        proxy.close()


@contextlib.contextmanager
def workers(
    stack: LocalbaseProcess,
    root: Path,
    count: int,
    *args: str,
    realtime_url: str | None = None,
    prefix: str = "bench",
    dead_realtime: bool = False,
    url: str | None = None,
) -> Iterator[list[WorkerProcess]]:
    """``count`` workers, started and ready; ``url`` (e.g. from ``reach``) is where they reach
    localbase, REST and Realtime alike (unless ``realtime_url`` says otherwise)."""
    started: list[WorkerProcess] = []
    try:
        for n in range(count):
            started.append(
                WorkerProcess(
                    stack,
                    root / f"{prefix}{n}.log",
                    f"{prefix}-{n}",
                    args,
                    realtime_url=realtime_url or url,
                    expect_feed=not dead_realtime,
                    env={"SUPABASE_URL": url} if url else {},
                ).start()
            )
        yield started
    finally:
        for worker in started:
            worker.stop()


def timed_starts(
    root: Path, count: int, project: Path | None = None
) -> tuple[list[float], list[float]]:
    """Seconds until /health answers: ``count`` cold starts (initdb, bootstrap, migrations,
    seed), each followed by a warm start of the same data dir. ``project``: the tree whose
    localbase, migrations and seed run (default this one)."""
    cold: list[float] = []
    warm: list[float] = []
    for i in range(count):
        stack = LocalbaseProcess(root / f"start{i}")
        if project is not None:
            stack.project_dir = project
            stack.migrations_dir = project / "supabase" / "migrations"
            stack.seed = project / "supabase" / "seed.sql"
        for samples in (cold, warm):
            began = time.perf_counter()
            stack.start()
            samples.append(time.perf_counter() - began)
            stack.stop()
    return cold, warm


def sql(stack: LocalbaseProcess, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(stack.db_dsn, autocommit=True) as conn:
        cur = conn.execute(statement.encode() if not params else statement, params or None)
        return cur.fetchall() if cur.description else []


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": statistics.median(values),
        "p90": percentile(values, 0.9),
        "p99": percentile(values, 0.99),
        "max": max(values),
        "min": min(values),
    }


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def realtime_settled(stack: LocalbaseProcess, timeout: float = 120.0) -> float:
    """Wait until Realtime has delivered every change committed so far, and return how long
    that took: a marker row's INSERT event reaches a subscriber of our own, and delivery is in
    commit order. (A ``job_signals`` row of a job type no worker handles: workers ignore it.)"""
    marker = f"bench.settled-{time.monotonic_ns()}"

    async def wait() -> float:
        client = AsyncRealtimeClient(f"{stack.url}/realtime/v1", stack.service_key)
        await client.connect()
        subscribed, arrived = asyncio.Event(), asyncio.Event()

        def on_insert(payload: Any) -> None:
            if payload.get("data", {}).get("record", {}).get("job_types") == [marker]:
                arrived.set()

        def on_system(payload: Any) -> None:
            if getattr(payload, "extension", None) == "postgres_changes":
                subscribed.set()

        channel = client.channel(marker)
        channel.on_postgres_changes(Listen.Insert, on_insert, table="job_signals", schema="public")
        channel.on_system(on_system)
        try:
            await channel.subscribe()
            await asyncio.wait_for(subscribed.wait(), timeout)
            began = time.monotonic()
            sql(stack, "insert into public.job_signals (job_types, jobs) values (%s, 1)", [marker])
            await asyncio.wait_for(arrived.wait(), timeout)
            return time.monotonic() - began
        finally:
            await client.close()

    return asyncio.run(wait())
