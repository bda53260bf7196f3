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

The feed is trusted only after the ``system`` "Subscribed to PostgreSQL" message. Realtime is
at-most-once, so the engine re-reads its jobs after every (re)subscribe and polls while the
feed is down. The official client gives up after 5 failed reconnects: a feed that stays down
for ``rebuild_after`` seconds is torn down and rebuilt, with backoff, forever; a channel the
server closed (it lost the database, say) is rebuilt at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from realtime import AsyncRealtimeClient, RealtimeSubscribeStates
from realtime.types import RealtimePostgresChangesListenEvent as Listen

from jobdock.models import JobStatus
from worker import logs

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


FeedEvent = JobChanged | JobDeleted | WorkAnnounced


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
    def __init__(
        self,
        url: str,
        key: str,
        worker_id: str,
        handlers: FeedHandlers,
        *,
        rebuild_after: float = 20.0,
        max_backoff: float = 10.0,
    ) -> None:
        self.url = url.rstrip("/") + "/realtime/v1"
        self.key = key
        self.worker_id = worker_id
        self.handlers = handlers
        self.rebuild_after = rebuild_after
        self.max_backoff = max_backoff
        self.healthy = False
        self._closed = False  # the server closed the channel: rebuild now, do not wait
        self._changed = asyncio.Event()
        self._down_since = time.monotonic()
        self.initial_backoff = 0.5
        self._backoff = self.initial_backoff

    def _set_healthy(self, healthy: bool) -> None:
        if healthy == self.healthy:
            return
        self.healthy = healthy
        if healthy:
            self._backoff = self.initial_backoff
        else:
            self._down_since = time.monotonic()
        self._changed.set()
        logs.event("feed_subscribed" if healthy else "feed_down", worker_id=self.worker_id)
        self.handlers.subscribed(healthy)

    async def run(self) -> None:
        """Keep a subscribed channel alive, forever."""
        while True:
            client = AsyncRealtimeClient(self.url, self.key, max_retries=5, initial_backoff=0.5)
            self._down_since = time.monotonic()  # each new client gets the full allowance
            self._closed = False
            try:
                await client.connect()
                await self._subscribe(client)
                await self._watch()
            except Exception as exc:  # any failure here means "rebuild"; it is logged
                logs.event("feed_error", worker_id=self.worker_id, error=repr(exc)[:200])
            finally:
                self._set_healthy(False)
                with contextlib.suppress(Exception):
                    await client.close()
            await asyncio.sleep(self._backoff)
            self._backoff = min(self._backoff * 2, self.max_backoff)

    async def _subscribe(self, client: AsyncRealtimeClient) -> None:
        channel = client.channel(f"jobdock-worker-{self.worker_id}")
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
        channel.on_system(self._on_system)
        await channel.subscribe(self._on_state)

    async def _watch(self) -> None:
        """Return when the feed has been down for longer than ``rebuild_after``."""
        while True:
            self._changed.clear()
            if self._closed:
                logs.event("feed_closed", worker_id=self.worker_id)
                return
            if not self.healthy:
                remaining = self.rebuild_after - (time.monotonic() - self._down_since)
                if remaining <= 0:
                    logs.event(
                        "feed_rebuild",
                        worker_id=self.worker_id,
                        down_s=time.monotonic() - self._down_since,
                    )
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), remaining)
            else:
                await self._changed.wait()

    # -- callbacks (listener task): parse and hand off ------------------------------------------
    def _on_system(self, payload: Any) -> None:
        if getattr(payload, "extension", None) == "postgres_changes":
            self._set_healthy(getattr(payload, "status", None) == "ok")

    def _on_state(self, state: RealtimeSubscribeStates, error: Exception | None) -> None:
        if state == RealtimeSubscribeStates.CLOSED:
            # Closed by the server (e.g. it lost the database): the official client does not
            # rejoin a closed channel, so waiting for it would only leave the feed down.
            self._closed = True
            self._changed.set()
        if state != RealtimeSubscribeStates.SUBSCRIBED:
            self._set_healthy(False)

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
