"""Natural batching of the worker's fenced writes: completions and ``stopped`` records.

While one batch is in flight, writes that arrive meanwhile queue up and go together in the
next call: no added latency when idle, one round trip for many jobs under load (a bulk cancel
of hundreds of jobs records their stops in a handful of calls).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")

MAX_BATCH = 200


class Batcher(Generic[Item, Outcome]):
    """Sends items through ``send`` (one call per batch, outcomes in item order)."""

    def __init__(
        self,
        send: Callable[[Sequence[Item]], Awaitable[Sequence[Outcome]]],
        name: str,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._send = send
        self._name = name
        self._max_batch = max_batch
        self._pending: list[tuple[Item, asyncio.Future[Outcome]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Outcome:
        """The item's outcome; raises what the batch's call raised."""
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name=self._name)
        return await future

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # items submitted in this loop iteration join the batch
        while self._pending:
            batch = self._pending[: self._max_batch]
            self._pending = self._pending[self._max_batch :]
            try:
                outcomes = await self._send([item for item, _ in batch])
            except Exception as exc:  # each caller sees the failure of its own write
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if not future.done():
                        future.set_result(outcome)
