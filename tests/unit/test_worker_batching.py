"""The worker's batched writes without I/O: progress of many jobs in one call, and the
natural batching of completions and stop records (a fake ``send`` stands for the RPC)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from typing import Any

import pytest

from jobdock.models import Job
from worker.batching import Batcher
from worker.progress import ProgressWriter, Report


def job() -> Job:
    return Job.from_row(
        {"id": uuid.uuid4(), "job_type": "demo.sleep", "status": "processing",
         "lease_id": uuid.uuid4()}
    )  # fmt: skip


class FakeProgress:
    """Records each call; answers with the ids it is told to treat as written."""

    def __init__(self, refuse: set[uuid.UUID] | None = None, fail_first: bool = False) -> None:
        self.calls: list[tuple[float, dict[uuid.UUID, dict[str, Any]]]] = []
        self.lost: list[list[Job]] = []
        self.refuse = refuse or set()
        self.fail_first = fail_first
        self.called = asyncio.Event()
        self.gate: asyncio.Event | None = None
        self.lost_reported = asyncio.Event()

    async def send(self, reports: Sequence[Report]) -> set[uuid.UUID]:
        self.calls.append((time.monotonic(), {j.id: p for j, p in reports}))
        self.called.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_first and len(self.calls) == 1:
            raise ConnectionError("backend down")
        return {j.id for j, _ in reports} - self.refuse

    async def on_lost(self, jobs: list[Job]) -> None:
        self.lost.append(jobs)
        self.lost_reported.set()

    async def next_call(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.calls) < count:
                self.called.clear()
                await self.called.wait()


async def test_latest_progress_of_every_job_goes_in_one_call() -> None:
    fake = FakeProgress()
    writer = ProgressWriter(fake.send, fake.on_lost, 0.05, "w")
    jobs = [job() for _ in range(3)]
    for percent in (10, 20, 30):
        for j in jobs:
            writer.report(j, {"percent": percent})
    await fake.next_call(1)
    assert fake.calls[0][1] == {j.id: {"percent": 30} for j in jobs}


async def test_reports_during_a_call_wait_for_the_interval_and_a_forgotten_job_writes_nothing(
) -> None:  # fmt: skip
    fake = FakeProgress()
    fake.gate = asyncio.Event()
    writer = ProgressWriter(fake.send, fake.on_lost, 0.1, "w")
    running, stopped = job(), job()
    writer.report(running, {"percent": 1})
    await fake.next_call(1)
    writer.report(running, {"percent": 2})
    writer.report(stopped, {"percent": 2})
    writer.forget(stopped.id)
    fake.gate.set()
    await fake.next_call(2)
    (first, _), (second, reports) = fake.calls
    assert reports == {running.id: {"percent": 2}}
    assert second - first >= 0.1 * 0.9  # throttled: at most one call per interval


async def test_reports_not_written_are_handed_over_as_lost() -> None:
    kept, gone = job(), job()
    fake = FakeProgress(refuse={gone.id})
    writer = ProgressWriter(fake.send, fake.on_lost, 0.01, "w")
    writer.report(kept, {"percent": 5})
    writer.report(gone, {"percent": 5})
    await fake.next_call(1)
    await asyncio.wait_for(fake.lost_reported.wait(), 5)
    assert fake.lost == [[gone]]


async def test_a_failed_call_is_logged_and_the_next_report_is_written() -> None:
    fake = FakeProgress(fail_first=True)
    writer = ProgressWriter(fake.send, fake.on_lost, 0.01, "w")
    j = job()
    writer.report(j, {"percent": 1})
    await fake.next_call(1)
    writer.report(j, {"percent": 2})
    await fake.next_call(2)
    assert fake.calls[1][1] == {j.id: {"percent": 2}}
    assert fake.lost == []


async def test_batcher_groups_what_arrives_while_a_call_is_in_flight() -> None:
    gate, in_flight = asyncio.Event(), asyncio.Event()
    calls: list[list[int]] = []

    async def send(items: Sequence[int]) -> list[int]:
        calls.append(list(items))
        in_flight.set()
        if len(calls) == 1:
            await gate.wait()
        return [i * 10 for i in items]

    batcher: Batcher[int, int] = Batcher(send, "test")
    first = asyncio.ensure_future(batcher.submit(1))
    await asyncio.wait_for(in_flight.wait(), 5)
    rest = [asyncio.ensure_future(batcher.submit(i)) for i in (2, 3, 4)]
    await asyncio.sleep(0)
    gate.set()
    assert await first == 10
    assert await asyncio.gather(*rest) == [20, 30, 40]
    assert calls == [[1], [2, 3, 4]]


async def test_batcher_gives_each_caller_the_failure_of_its_own_batch() -> None:
    async def send(items: Sequence[int]) -> list[int]:
        raise ConnectionError("backend down")

    batcher: Batcher[int, int] = Batcher(send, "test")
    with pytest.raises(ConnectionError):
        await batcher.submit(1)
