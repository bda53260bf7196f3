"""Progress writes for all running jobs of a worker, together.

Handlers report as often as they like; the writer keeps each job's latest report and writes
the reports of every job in one fenced call, at most once per ``interval``. A worker running
fifty jobs makes four progress calls a second, not two hundred. A job whose report was not
written (it is no longer ours, or its row was busy with a transition) is handed to ``lost``,
which re-reads its state.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from jobdock.models import Job
from worker import logs

Report = tuple[Job, dict[str, Any]]


class ProgressWriter:
    def __init__(
        self,
        send: Callable[[Sequence[Report]], Awaitable[set[uuid.UUID]]],
        lost: Callable[[list[Job]], Awaitable[None]],
        interval: float,
        worker_id: str,
    ) -> None:
        self._send = send
        self._lost = lost
        self.interval = interval
        self._worker_id = worker_id
        self._pending: dict[uuid.UUID, Report] = {}
        self._writer: asyncio.Task[None] | None = None
        self._last_write = -float("inf")

    def report(self, job: Job, progress: dict[str, Any]) -> None:
        """Keep the job's latest progress; it is written with the next batch."""
        self._pending[job.id] = (job, progress)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="progress-writes")

    def forget(self, job_id: uuid.UUID) -> None:
        """A stopped or finished job: its unwritten report is dropped."""
        self._pending.pop(job_id, None)

    async def _write(self) -> None:
        while self._pending:
            delay = self._last_write + self.interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            batch, self._pending = list(self._pending.values()), {}
            if not batch:
                return
            self._last_write = time.monotonic()
            try:
                written = await self._send(batch)
            except Exception as exc:  # best effort: the job's next report tries again
                logs.event(
                    "call_failed", what="progress", worker_id=self._worker_id, error=repr(exc)[:200]
                )
                continue
            lost = [job for job, _ in batch if job.id not in written]
            if lost:
                await self._lost(lost)
