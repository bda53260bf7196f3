"""The worker's Realtime change feed: one channel, four ``postgres_changes`` bindings.

- ``UPDATE`` filtered ``worker_id=eq.<this worker>``: its jobs being cancelled/force-failed;
- ``DELETE`` (unfiltered: deletes cannot be filtered on non-key columns): matched on
  ``old_record.id`` against the running jobs;
- ``INSERT`` on ``job_signals`` (one row per enqueue statement, written by a trigger, so a
  bulk enqueue is one event, not one per job), and ``UPDATE`` filtered ``status=eq.pending``
  (a retry or a job handed back): new work, to wake the claim loop.

Each binding selects only the columns the engine reads (``STOP_COLUMNS``, ``job_types``,
``job_type``). Frames are parsed here, at the edge, into ``FeedEvent``s: ``JobChanged``,
``JobDeleted``, ``WorkAnnounced``.

Connect, join, confirmation and rebuild are ``jobdock.realtime.LiveChannel``'s: the feed is
trusted only after the ``system`` "Subscribed to PostgreSQL" message with status ok, a feed
that stays down for ``rebuild_after`` seconds is rebuilt, a channel the server closed at once.
Realtime is at-most-once, so the engine re-reads its jobs after every (re)subscribe and polls
while the feed is down.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from realtime import AsyncRealtimeChannel, AsyncRealtimeClient
from realtime.types import RealtimePostgresChangesListenEvent as Listen

from jobdock.clients import realtime_connection
from jobdock.models import JobStatus
from jobdock.realtime import Connect, Listener, LiveChannel
from worker import logs
from worker.stopping import StopReason

#: What the worker reads of an UPDATE to one of its jobs (the primary key always comes too).
#: Bindings ``select`` only these columns: a frame of three values instead of the whole row is
#: cheaper for localbase or Supabase to send and for the official client to parse. (A server
#: older than Realtime v2.101 ignores ``select`` and sends whole rows, which works the same.)
STOP_COLUMNS = ("status", "lease_id")


@dataclass(frozen=True)
class JobChanged:
    """One of this worker's jobs changed (its status and lease as the database has them)."""

    id: uuid.UUID
    status: JobStatus
    lease_id: uuid.UUID | None


@dataclass(frozen=True)
class JobDeleted:
    id: uuid.UUID


@dataclass(frozen=True)
class WorkAnnounced:
    """New work: jobs enqueued (a ``job_signals`` row) or a job back to pending. ``job_types``:
    of which types (None: not said; claim to find out)."""

    job_types: frozenset[str] | None

    def concerns(self, wanted: tuple[str, ...] | None) -> bool:
        """Whether a worker taking ``wanted`` types (None: all) may find work in it."""
        return wanted is None or self.job_types is None or not self.job_types.isdisjoint(wanted)


@dataclass(frozen=True)
class StopRequested:
    """A ``stop`` message on this worker's Broadcast topic: this attempt must stop."""

    id: uuid.UUID
    lease_id: uuid.UUID | None
    reason: StopReason


FeedEvent = JobChanged | JobDeleted | WorkAnnounced | StopRequested


def stops_requested(payload: Mapping[str, Any]) -> list[StopRequested]:
    """The jobs of a ``stop`` message (``{"jobs": [{id, lease_id, reason}]}``); entries that do
    not parse are skipped."""
    found = []
    jobs = payload.get("jobs")
    for job in jobs if isinstance(jobs, list) else []:
        try:
            lease = job.get("lease_id")
            found.append(
                StopRequested(
                    uuid.UUID(str(job["id"])),
                    uuid.UUID(str(lease)) if lease else None,
                    StopReason(job["reason"]),
                )
            )
        except (KeyError, ValueError, TypeError, AttributeError):
            continue
    return found


def job_changed(record: Mapping[str, Any]) -> JobChanged | None:
    try:
        lease = record.get("lease_id")
        return JobChanged(
            uuid.UUID(str(record["id"])),
            JobStatus(record["status"]),
            uuid.UUID(str(lease)) if lease else None,
        )
    except (KeyError, ValueError):
        return None


def job_deleted(old: Mapping[str, Any]) -> JobDeleted | None:
    try:
        return JobDeleted(uuid.UUID(str(old["id"])))
    except (KeyError, ValueError):
        return None


def work_announced(record: Mapping[str, Any]) -> WorkAnnounced:
    types = record.get("job_types")
    if isinstance(types, list):
        return WorkAnnounced(frozenset(str(t) for t in types))
    single = record.get("job_type")
    return WorkAnnounced(frozenset({single}) if isinstance(single, str) else None)


@dataclass(frozen=True)
class FeedHandlers:
    """Engine callbacks. They run on the client's listener task: they must only hand off."""

    event: Callable[[FeedEvent], None]
    subscribed: Callable[[bool], None]


class ChangeFeed:
    """The worker's channel, kept live by ``jobdock.realtime.LiveChannel``."""

    def __init__(
        self,
        connect: Connect,
        worker_id: str,
        handlers: FeedHandlers,
        *,
        rebuild_after: float = 20.0,
    ) -> None:
        self.worker_id = worker_id
        self.handlers = handlers
        self.channel = LiveChannel(
            connect,
            f"jobdock-worker-{worker_id}",
            Listener(self._bind, self._on_live),
            rebuild_after_seconds=rebuild_after,
            name=f"worker-{worker_id}",
        )

    @property
    def healthy(self) -> bool:
        return self.channel.live

    async def run(self) -> None:
        """Keep the channel live, forever."""
        await self.channel.run()

    def _bind(self, channel: AsyncRealtimeChannel) -> None:
        jobs = "background_jobs"
        channel.on_postgres_changes(
            Listen.Update,
            self._on_update,
            table=jobs,
            schema="public",
            filter=f"worker_id=eq.{self.worker_id}",
            select=list(STOP_COLUMNS),
        )
        channel.on_postgres_changes(Listen.Delete, self._on_delete, table=jobs, schema="public")
        channel.on_postgres_changes(
            Listen.Insert,
            self._on_new_work,
            table="job_signals",
            schema="public",
            select=["job_types"],
        )
        channel.on_postgres_changes(
            Listen.Update,
            self._on_new_work,
            table=jobs,
            schema="public",
            filter="status=eq.pending",
            select=["job_type"],
        )

    # -- callbacks (listener task): parse and hand off ------------------------------------------
    def _on_live(self, live: bool, problem: str | None) -> None:
        logs.event(
            "feed_subscribed" if live else "feed_down", worker_id=self.worker_id, problem=problem
        )
        self.handlers.subscribed(live)

    def _on_update(self, payload: Any) -> None:
        record = payload.get("data", {}).get("record")
        event = job_changed(record) if isinstance(record, dict) else None
        if event is not None:
            self.handlers.event(event)

    def _on_delete(self, payload: Any) -> None:
        old = payload.get("data", {}).get("old_record")
        event = job_deleted(old) if isinstance(old, dict) else None
        if event is not None:
            self.handlers.event(event)

    def _on_new_work(self, payload: Any) -> None:
        record = payload.get("data", {}).get("record")
        self.handlers.event(work_announced(record if isinstance(record, dict) else {}))


#: The replay window a Broadcast channel asks for on (re)join: messages sent while it was away
#: (at most 25, Realtime's limit); the re-read after every join covers the rest.
REPLAY_LIMIT = 25
REPLAY_MARGIN_MS = 1000


class BroadcastFeed:
    """The worker's signals over Broadcast from Database (``--signals broadcast``): the private
    topics ``jobdock:worker:<id>`` (``stop`` messages for its jobs, one per statement) and
    ``jobdock:work`` (``work``: job types enqueued or re-queued), each kept live by a
    ``LiveChannel``, rejoined with replay since the last message seen. Healthy while both are
    live."""

    def __init__(
        self,
        connect: Connect,
        worker_id: str,
        handlers: FeedHandlers,
        *,
        rebuild_after: float = 20.0,
    ) -> None:
        self.worker_id = worker_id
        self.handlers = handlers
        self._seen_ms = _now_ms()
        self._healthy = False
        self.channels = [
            LiveChannel(
                connect,
                topic,
                Listener(bind, self._on_live, postgres_changes=False),
                params=self._params,
                rebuild_after_seconds=rebuild_after,
                name=f"worker-{worker_id}-{event}",
            )
            for topic, event, bind in (
                (f"jobdock:worker:{worker_id}", "stop", self._bind_stops),
                ("jobdock:work", "work", self._bind_work),
            )
        ]

    @property
    def healthy(self) -> bool:
        return all(channel.live for channel in self.channels)

    async def run(self) -> None:
        """Keep both channels live, forever."""
        async with asyncio.TaskGroup() as group:
            for channel in self.channels:
                group.create_task(channel.run(), name=f"broadcast-{channel.name}")

    def _params(self) -> dict[str, Any]:
        since = self._seen_ms - REPLAY_MARGIN_MS
        replay = {"since": since, "limit": REPLAY_LIMIT}
        return {"config": {"private": True, "broadcast": {"replay": replay}}}

    def _bind_stops(self, channel: AsyncRealtimeChannel) -> None:
        channel.on_broadcast("stop", self._on_stop)

    def _bind_work(self, channel: AsyncRealtimeChannel) -> None:
        channel.on_broadcast("work", self._on_work)

    # -- callbacks (listener task): parse and hand off ------------------------------------------
    def _on_live(self, live: bool, problem: str | None) -> None:
        healthy = self.healthy
        if healthy == self._healthy:
            return
        self._healthy = healthy
        logs.event(
            "feed_subscribed" if healthy else "feed_down",
            worker_id=self.worker_id,
            signals="broadcast",
            problem=problem,
        )
        self.handlers.subscribed(healthy)

    def _on_stop(self, message: Any) -> None:
        self._seen_ms = max(self._seen_ms, _now_ms())
        payload = message.get("payload") if isinstance(message, Mapping) else None
        for event in stops_requested(payload if isinstance(payload, Mapping) else {}):
            self.handlers.event(event)

    def _on_work(self, message: Any) -> None:
        self._seen_ms = max(self._seen_ms, _now_ms())
        payload = message.get("payload") if isinstance(message, Mapping) else None
        self.handlers.event(work_announced(payload if isinstance(payload, Mapping) else {}))


def _now_ms() -> int:
    return int(time.time() * 1000)


def connector(url: str, key: str) -> Connect:
    """How the worker's channels connect: a new Realtime client, connected, each time."""

    async def connect() -> AsyncRealtimeClient:
        client = realtime_connection(url, key)
        await client.connect()
        return client

    return connect
