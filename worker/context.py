"""What a handler sees of its job: its input, progress reporting and its stop signal."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from jobdock.models import Job
from worker.stopping import CancelScope


@dataclass(frozen=True)
class Result:
    """A handler's output; ``chunks`` are written atomically with the completion."""

    output: Any
    chunks: list[dict[str, Any]] | None = None


Reporter = Callable[[dict[str, Any]], Coroutine[Any, Any, None]]
Downloader = Callable[[str, str], Coroutine[Any, Any, bytes]]


def progress_payload(
    percent: float | None, stage: str | None, message: str | None
) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    if percent is not None:
        payload["percent"] = round(max(0.0, min(100.0, float(percent))), 1)
    if stage is not None:
        payload["stage"] = stage
    if message is not None:
        payload["message"] = message
    return payload


class JobContext:
    """Handed to cooperative (async) and blocking (thread) handlers."""

    def __init__(
        self,
        job: Job,
        scope: CancelScope,
        loop: asyncio.AbstractEventLoop,
        reporter: Reporter,
        downloader: Downloader,
    ) -> None:
        self.job = job
        self.scope = scope
        self._loop = loop
        self._reporter = reporter
        self._downloader = downloader

    @property
    def stopped(self) -> bool:
        return self.scope.stopped

    def check(self) -> None:
        """Raise ``JobCancelled`` if the job must stop."""
        self.scope.check()

    # -- async handlers ------------------------------------------------------------------------
    async def progress(
        self, percent: float | None = None, stage: str | None = None, message: str | None = None
    ) -> None:
        self.scope.check()
        await self._reporter(progress_payload(percent, stage, message))

    async def download(self, bucket: str, path: str) -> bytes:
        self.scope.check()
        return await self._downloader(bucket, path)

    # -- blocking handlers (called from their thread) ------------------------------------------
    def report(
        self, percent: float | None = None, stage: str | None = None, message: str | None = None
    ) -> None:
        """Thread-safe progress report; does not wait for the write."""
        self.scope.check()
        payload = progress_payload(percent, stage, message)
        asyncio.run_coroutine_threadsafe(self._reporter(payload), self._loop)

    def wait(self, seconds: float) -> None:
        """Sleep up to ``seconds``, waking at once (with ``JobCancelled``) when stopped."""
        self.scope.flag.wait(seconds)
        self.scope.check()
