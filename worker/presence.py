"""The worker's presence on the private topic ``jobdock:workers``: who is online, on which host,
with how many jobs running and free slots, for the dock and ``jobdock workers``.

Presence is kept live by a ``LiveChannel`` and tracked again after every join. Changes (a job
started or finished) are tracked at most once per ``TRACK_INTERVAL_SECONDS``: hosted Supabase
closes a channel at the 6th track within 30 s. Presence is for people, never for stopping a
job: a worker whose presence is gone still holds its jobs until its lease expires.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

from realtime import AsyncRealtimeChannel

from jobdock import workers
from jobdock.realtime import Connect, Listener, LiveChannel
from worker import logs

TRACK_INTERVAL_SECONDS = 6.0


def version() -> str:
    try:
        return metadata.version("jobdock")
    except metadata.PackageNotFoundError:
        return "unknown"


class Presence:
    def __init__(
        self,
        connect: Connect,
        worker_id: str,
        state: Callable[[], dict[str, Any]],
        *,
        rebuild_after: float = 20.0,
        interval: float = TRACK_INTERVAL_SECONDS,
    ) -> None:
        """``state()``: what to track now (worker id, host, pid, concurrency, running…)."""
        self._state = state
        self._interval = interval
        self._worker_id = worker_id
        self._changed = asyncio.Event()
        self._tracked: dict[str, Any] | None = None
        self.channel = LiveChannel(
            connect,
            workers.TOPIC,
            Listener(self._bind, self._on_live, postgres_changes=False),
            params=workers.presence_params(worker_id),
            rebuild_after_seconds=rebuild_after,
            name=f"presence-{worker_id}",
        )

    def changed(self) -> None:
        """Something in the tracked state changed: track it again (soon, within the rate)."""
        self._changed.set()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self.channel.run(), name="presence-channel")
            group.create_task(self._track_loop(), name="presence-track")

    def _bind(self, channel: AsyncRealtimeChannel) -> None:
        channel.on_presence_sync(lambda: None)  # presence must be enabled for the join

    def _on_live(self, live: bool, problem: str | None) -> None:
        if live:
            self._tracked = None  # a new channel: track again
            self._changed.set()

    async def _track_loop(self) -> None:
        last = -float("inf")
        while True:
            await self._changed.wait()
            await asyncio.sleep(max(0.0, last + self._interval - time.monotonic()))
            self._changed.clear()
            channel, state = self.channel.channel, self._state()
            if channel is None or not self.channel.live or state == self._tracked:
                continue
            try:
                await channel.track(state)
            except Exception as exc:  # the next change or join tracks again
                logs.event("presence_failed", worker_id=self._worker_id, error=repr(exc)[:200])
                continue
            self._tracked, last = state, time.monotonic()


def started_at() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
