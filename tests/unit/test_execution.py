"""A stop is a stop, for every handler kind: ``execution.run`` raises ``JobCancelled`` only
once nothing of the handler runs any more (task ended, thread returned, process gone), and
isolated code is held to its memory and CPU limits. Real threads and processes, no Supabase."""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import psutil
import pytest

from jobdock.models import Job
from worker import execution, isolation
from worker.context import JobContext
from worker.errors import PermanentError, ResourceLimitExceeded
from worker.registry import Handler
from worker.stopping import CancelScope, JobCancelled, StopReason

RELEASE = threading.Event()  # lets the stubborn thread handler go


def ignores_its_flag(ctx: JobContext, data: dict[str, Any]) -> None:
    ctx.report(1, "started")
    RELEASE.wait(30)  # a unit of work that does not check the flag


def spins(seconds: float, report: Callable[[Any], None]) -> None:
    report({"percent": 1})
    while True:  # CPU-bound, never returns by itself
        pass


def allocates(megabytes: int, report: Callable[[Any], None]) -> int:
    blocks = [bytearray(2**20) for _ in range(megabytes)]
    return len(blocks)


def refuses(report: Callable[[Any], None]) -> None:
    raise PermanentError("chapter 3 inflates to 100 MiB; limit 64 MiB")


def job() -> Job:
    return Job.from_row(
        {"id": uuid.uuid4(), "job_type": "t", "status": "processing", "lease_id": uuid.uuid4()}
    )


class Run:
    """One handler run, with its progress as events."""

    def __init__(self, handler: Handler, grace: float = 0.1) -> None:
        self.scope = CancelScope()
        self.started = asyncio.Event()
        self.ctx = JobContext(
            job(), self.scope, asyncio.get_running_loop(), self._progress, self._download
        )
        self.task = asyncio.create_task(execution.run(handler, self.ctx, grace))

    async def _progress(self, payload: dict[str, Any]) -> None:
        self.started.set()

    async def _download(self, bucket: str, path: str) -> bytes:
        raise AssertionError("no download here")


@pytest.fixture
async def unresponsive() -> AsyncIterator[asyncio.Event]:
    """Set when the worker logs that a stopped handler has not returned within its grace."""
    seen = asyncio.Event()
    loop = asyncio.get_running_loop()

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "event=handler_unresponsive" in record.getMessage():
                loop.call_soon_threadsafe(seen.set)

    watch = Watch()
    logging.getLogger("worker").addHandler(watch)
    logging.getLogger("worker").setLevel(logging.INFO)
    yield seen
    logging.getLogger("worker").removeHandler(watch)
    RELEASE.set()


def handler_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("handler-")]


def isolated_children() -> set[int]:
    """Processes forked by the fork server (the grandchildren of this process)."""
    return {
        p.pid
        for child in psutil.Process().children()
        if "forkserver" in " ".join(child.cmdline())
        for p in child.children()
    }


async def test_a_blocking_stop_waits_for_the_thread_past_its_grace(
    unresponsive: asyncio.Event,
) -> None:
    RELEASE.clear()
    run = Run(Handler("t", "blocking", ignores_its_flag), grace=0.05)
    await asyncio.wait_for(run.started.wait(), 10)
    run.scope.stop(StopReason.CANCELLED, "test")
    await asyncio.wait_for(unresponsive.wait(), 10)
    assert not run.task.done()  # the thread still runs: not stopped, slot not free
    assert handler_threads()
    RELEASE.set()
    with pytest.raises(JobCancelled):
        await asyncio.wait_for(run.task, 10)
    assert handler_threads() == []


async def test_an_isolated_stop_returns_once_the_process_is_gone() -> None:
    from worker.handlers import demo

    run = Run(Handler("t", "isolated", demo.stubborn), grace=0.1)  # ignores SIGTERM
    await asyncio.wait_for(run.started.wait(), 30)
    children = isolated_children()
    assert children
    run.scope.stop(StopReason.FORCE_FAILED, "test")
    with pytest.raises(JobCancelled):
        await asyncio.wait_for(run.task, 10)
    assert not any(psutil.pid_exists(pid) for pid in children)


async def test_a_cancelled_isolated_call_kills_at_once_and_returns_after_the_exit() -> None:
    started = asyncio.Event()
    call = asyncio.create_task(
        isolation.call(spins, (60.0,), report=lambda _: started.set(), grace_seconds=0)
    )
    await asyncio.wait_for(started.wait(), 30)
    children = isolated_children()
    assert children
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(call, 10)
    assert not any(psutil.pid_exists(pid) for pid in children)


async def test_an_isolated_call_is_held_to_its_memory_limit() -> None:
    limits = isolation.ProcessLimits(memory_bytes=1024 * 2**20)
    with pytest.raises(ResourceLimitExceeded, match="limit 1,024 MiB"):
        await isolation.call(allocates, (4096,), report=lambda _: None, limits=limits)
    assert await isolation.call(allocates, (16,), report=lambda _: None, limits=limits) == 16


async def test_an_isolated_call_is_held_to_its_cpu_limit() -> None:
    limits = isolation.ProcessLimits(cpu_seconds=1)
    with pytest.raises(ResourceLimitExceeded, match="more than 1 CPU seconds"):
        await isolation.call(spins, (60.0,), report=lambda _: None, limits=limits)


async def test_a_permanent_error_in_the_child_stays_permanent() -> None:
    with pytest.raises(PermanentError, match="inflates to 100 MiB"):
        await isolation.call(refuses, (), report=lambda _: None)
