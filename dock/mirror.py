"""The live mirror: one realtime-fed copy of ``background_jobs`` per Streamlit server process.

A daemon thread runs its own asyncio loop with the official async client::

    REST resync ──► rows ◄── postgres_changes: background_jobs (*), job_events (INSERT stopped)
                     │
    snapshot() ◄─────┘   the job panel renders from it; browsers never query the database

- The channel is trusted only after its ``system`` "Subscribed to PostgreSQL" message. Realtime
  does not replay, so every (re)subscribe is followed by a REST resync; changes that arrive
  during a resync are buffered and replayed over the fresh rows.
- The official client gives up after 5 reconnect attempts: when the channel has not been
  subscribed for ``stale_after`` seconds the client is closed and rebuilt, with backoff.
- While not subscribed, the rows are refreshed from REST every ``fallback_interval`` seconds and
  ``snapshot().live`` is False (the dock shows a banner). Delivery is at most once even while
  subscribed, so a slow safety resync (``resync_interval``) runs then too.
- The realtime callbacks only parse the payload and update the rows under a lock.
- ``wait_for_stops`` lets Cancel & Delete wait for the workers' ``stopped`` events without polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from types import MappingProxyType
from typing import Any, assert_never

from realtime import AsyncRealtimeChannel, AsyncRealtimeClient
from realtime.types import RealtimePostgresChangesListenEvent

from dock.grouping import group_jobs
from jobdock import workers
from jobdock.clients import async_client, realtime_client
from jobdock.models import Job, JobEvent, JobStatus, WorkerInfo, WorkerPresence
from jobdock.realtime import Listener, LiveChannel, describe_error
from jobdock.settings import Settings
from supabase import AsyncClient

log = logging.getLogger("dock.mirror")

PAGE_SIZE = 1000  # Supabase's db-max-rows caps every read at 1,000 rows
REMEMBERED = 10_000  # deleted ids and stop events kept for late or duplicate deliveries
BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0)
CONNECTING = "connecting to Supabase Realtime…"  # the problem until the first subscription
#: A job in these states may still send its ``stopped`` event (a cancelled one: once its
#: worker hears of the cancel).
_STOPPABLE = frozenset({JobStatus.PROCESSING, JobStatus.CANCELLED})


# Changes, parsed once at the edge ----------------------------------------------------------------
@dataclass(frozen=True)
class Upserted:
    job: Job


@dataclass(frozen=True)
class Deleted:
    job_id: uuid.UUID


@dataclass(frozen=True)
class Stopped:
    event: JobEvent


Change = Upserted | Deleted | Stopped


def parse_change(payload: Mapping[str, Any]) -> Change | None:
    """A realtime ``postgres_changes`` payload as a typed change; None if it is not ours."""
    data = payload.get("data", payload)
    table, kind = data.get("table"), data.get("type")
    if table == "background_jobs" and kind in ("INSERT", "UPDATE"):
        return Upserted(Job.from_row(data["record"]))
    if table == "background_jobs" and kind == "DELETE":
        # Under RLS, hosted Supabase sends only the primary key of a deleted row.
        return Deleted(uuid.UUID(str(data["old_record"]["id"])))
    if table == "job_events" and kind == "INSERT" and data["record"].get("event") == "stopped":
        return Stopped(JobEvent.from_row(data["record"]))
    return None


# What the dock renders ---------------------------------------------------------------------------
@dataclass(frozen=True)
class MirrorSnapshot:
    """An immutable view of the mirror at one version; shared by every session that reads it."""

    jobs: Mapping[uuid.UUID, Job]
    version: int
    live: bool
    problem: str | None
    synced_at: datetime | None
    stops: Mapping[uuid.UUID, JobEvent] = field(default_factory=dict)
    #: The job types some live worker runs (None: not known yet).
    handled_types: frozenset[str] | None = None
    #: The workers online by presence (None: presence not live, so not known).
    workers: Mapping[str, WorkerPresence] | None = None
    #: Workers seen online before that are not any more, and since when.
    offline_since: Mapping[str, datetime] = field(default_factory=dict)
    #: The ``job_workers`` rows (heartbeats and leases), by worker id.
    roster: Mapping[str, WorkerInfo] = field(default_factory=dict)

    @cached_property
    def groups(self) -> dict[JobStatus, tuple[Job, ...]]:
        """The jobs by status, as the dock lists them (``dock.grouping.group_jobs``)."""
        return group_jobs(self.jobs.values())

    def count(self, *statuses: JobStatus) -> int:
        return sum(len(self.groups[status]) for status in statuses)


class JobMirror:
    """The rows of ``background_jobs``, kept current over realtime, for one server process."""

    def __init__(
        self,
        settings: Settings,
        *,
        fallback_interval: float = 5.0,
        stale_after: float = 10.0,
        resync_interval: float | None = 60.0,
        backoff: Sequence[float] = BACKOFF,
        realtime_settings: Settings | None = None,
        roster_interval: float = 5.0,
    ) -> None:
        """``resync_interval``: REST resync even while live (None: never), because realtime
        delivery is at most once. ``realtime_settings``: where the websocket goes, when not
        where REST goes (a proxy)."""
        self._settings = settings
        self._resync_interval = resync_interval
        self._roster_interval = roster_interval
        self._handled_types: frozenset[str] | None = None
        self._workers: dict[str, WorkerPresence] | None = None
        self._offline_since: dict[str, datetime] = {}
        self._roster: dict[str, WorkerInfo] = {}
        self._presence: LiveChannel | None = None
        self._realtime_settings = realtime_settings or settings
        self._fallback_interval = fallback_interval
        self._stale_after = stale_after
        self._backoff = tuple(backoff)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._listeners: list[Callable[[], None]] = []
        self._rows: dict[uuid.UUID, Job] = {}
        self._gone: OrderedDict[uuid.UUID, None] = OrderedDict()
        self._stops: OrderedDict[uuid.UUID, JobEvent] = OrderedDict()
        self._buffer: list[Change] | None = None
        self._version = 0
        self._snapshot: MirrorSnapshot | None = None
        self._subscribed = False
        self._subscriptions = 0  # "Subscribed to PostgreSQL" messages so far
        self._synced_subscription = -1  # the subscription the last resync followed
        self._synced_at: datetime | None = None
        self._problem: str | None = CONNECTING
        self._loop: asyncio.AbstractEventLoop | None = None
        self._resync_needed: asyncio.Event | None = None
        self._stopping: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="dock-mirror", daemon=True)
        self._started = time.monotonic()

    # Lifecycle ------------------------------------------------------------------------------------
    def start(self) -> JobMirror:
        self._started = time.monotonic()
        self._thread.start()
        return self

    @property
    def uptime(self) -> float:
        """Seconds since ``start``."""
        return time.monotonic() - self._started

    def close(self, timeout: float = 10.0) -> None:
        """Leave the channel, close the clients and end the thread."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop has just finished
                loop.call_soon_threadsafe(stopping.set)
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # Reading (any thread) -------------------------------------------------------------------------
    def snapshot(self) -> MirrorSnapshot:
        with self._lock:
            return self._snapshot_locked()

    def job(self, job_id: uuid.UUID) -> Job | None:
        with self._lock:
            return self._rows.get(job_id)

    def wait_for(self, predicate: Callable[[MirrorSnapshot], bool], timeout: float) -> bool:
        """Block until ``predicate(snapshot)`` holds (True) or ``timeout`` passes (False)."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self._snapshot_locked()), timeout)

    def listen(self, changed: Callable[[], None]) -> Callable[[], None]:
        """Call ``changed`` (on the mirror's thread, under its lock: it must only hand off) after
        every new version; returns the function that stops it."""
        with self._lock:
            self._listeners.append(changed)

        def stop() -> None:
            with self._lock:
                if changed in self._listeners:
                    self._listeners.remove(changed)

        return stop

    def expect_stop(self, job_id: uuid.UUID) -> None:
        """Forget an earlier ``stopped`` event of this job before asking it to stop again."""
        with self._lock:
            self._stops.pop(job_id, None)

    def wait_for_stops(
        self, job_ids: Collection[uuid.UUID], timeout: float
    ) -> dict[uuid.UUID, JobEvent]:
        """The workers' ``stopped`` events for these jobs, once each job has stopped, finished
        on its own or gone (at most ``timeout``); a job missing from the answer sent none."""
        with self._changed:
            self._changed.wait_for(lambda: all(self._settled(j) for j in job_ids), timeout)
            return {job_id: self._stops[job_id] for job_id in job_ids if job_id in self._stops}

    def _settled(self, job_id: uuid.UUID) -> bool:
        """Nothing more to wait for: the job stopped, finished without a stop, or is gone."""
        job = self._rows.get(job_id)
        return job_id in self._stops or job is None or job.status not in _STOPPABLE

    # Local knowledge (rows the dock itself just read or deleted) ----------------------------------
    def note(self, job: Job) -> None:
        """A row the dock has just read from the database (e.g. the job it enqueued)."""
        self._apply_now(Upserted(job))

    def forget(self, job_id: uuid.UUID) -> None:
        """A row the dock has just deleted: gone now, whatever late deliveries say."""
        self._apply_now(Deleted(job_id))

    # Applying changes (under the lock) ------------------------------------------------------------
    def _apply_now(self, change: Change) -> None:
        with self._changed:
            if self._buffer is not None:
                self._buffer.append(change)
            self._apply(change)
            self._touch()

    def _apply(self, change: Change) -> None:
        match change:
            case Upserted(job):
                current = self._rows.get(job.id)
                if job.id in self._gone or not _newer_or_same(job, current):
                    return
                self._rows[job.id] = job
            case Deleted(job_id):
                self._rows.pop(job_id, None)
                _remember(self._gone, job_id, None)
            case Stopped(event):
                _remember(self._stops, event.job_id, event)
            case _:
                assert_never(change)

    def _touch(self) -> None:
        self._version += 1
        self._changed.notify_all()
        for changed in self._listeners:
            changed()

    def _snapshot_locked(self) -> MirrorSnapshot:
        live = self._subscribed and self._synced_subscription == self._subscriptions
        current = self._snapshot
        if current is None or current.version != self._version or current.live != live:
            current = self._snapshot = MirrorSnapshot(
                jobs=MappingProxyType(dict(self._rows)),
                version=self._version,
                live=live,
                problem=None if live else self._problem,
                synced_at=self._synced_at,
                stops=MappingProxyType(dict(self._stops)),
                handled_types=self._handled_types,
                workers=MappingProxyType(dict(self._workers))
                if self._workers is not None
                else None,
                offline_since=MappingProxyType(dict(self._offline_since)),
                roster=MappingProxyType(dict(self._roster)),
            )
        return current

    # Realtime callbacks (the SDK's listener task): hand off, nothing else ------------------------
    def _on_change(self, payload: Mapping[str, Any]) -> None:
        # Whatever happens here must not escape: it would end the SDK's listener task.
        try:
            change = parse_change(payload)
            if change is not None:
                self._apply_now(change)
        except Exception:
            log.exception("event=unusable_change payload=%.300r", payload)

    def _on_live(self, live: bool, problem: str | None) -> None:
        if not live:
            self._set_down(problem or "live updates unavailable")
            return
        with self._changed:
            self._subscribed = True
            self._subscriptions += 1
            self._touch()
        log.info("event=subscribed subscription=%d", self._subscriptions)
        if self._resync_needed is not None:
            self._resync_needed.set()

    def _set_down(self, problem: str) -> None:
        """Not subscribed any more (runs on the loop): start the slow REST refresh at once."""
        with self._changed:
            was_subscribed = self._subscribed
            changed = was_subscribed or self._problem != problem
            self._subscribed = False
            self._problem = problem
            if changed:
                self._touch()
        if was_subscribed and self._resync_needed is not None:
            self._resync_needed.set()

    # The thread and its loop ----------------------------------------------------------------------
    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception as exc:  # a bug: say so on the page instead of dying silently
            log.exception("event=mirror_crashed")
            self._set_down(f"the live mirror stopped: {exc!r}")

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._resync_needed = asyncio.Event()
        self._stopping = asyncio.Event()
        rest = await async_client(self._settings)
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(self._keep_subscribed(), name="mirror-realtime"),
                    group.create_task(self._keep_synced(rest), name="mirror-resync"),
                    group.create_task(self._keep_roster(rest), name="mirror-roster"),
                    group.create_task(self._keep_presence(), name="mirror-presence"),
                ]
                await self._stopping.wait()
                for task in tasks:
                    task.cancel()
        finally:
            await _close_client(rest)

    async def _keep_subscribed(self) -> None:
        """One live channel, kept by ``jobdock.realtime.LiveChannel`` (rebuilt when the server
        closes it or it stays not live for ``stale_after``)."""
        channel = LiveChannel(
            self._connect,
            f"dock-mirror-{uuid.uuid4().hex[:8]}",
            Listener(self._bind, self._on_live),
            rebuild_after_seconds=self._stale_after,
            backoff_seconds=self._backoff,
            name="dock-mirror",
        )
        await channel.run()

    async def _keep_presence(self) -> None:
        """The workers online, from their presence on the private topic ``jobdock:workers``
        (the dock only listens; it tracks nothing)."""
        self._presence = LiveChannel(
            self._connect,
            workers.TOPIC,
            Listener(self._bind_presence, self._on_presence_live, postgres_changes=False),
            params=workers.presence_params(),
            rebuild_after_seconds=self._stale_after,
            backoff_seconds=self._backoff,
            name="dock-presence",
        )
        await self._presence.run()

    def _orphans(self) -> bool:
        """Whether a processing job's worker is offline (under the lock)."""
        return bool(self._offline_since) and any(
            job.status is JobStatus.PROCESSING and job.worker_id in self._offline_since
            for job in self._rows.values()
        )

    def _bind_presence(self, channel: AsyncRealtimeChannel) -> None:
        channel.on_presence_sync(self._on_presence_sync)

    def _on_presence_live(self, live: bool, problem: str | None) -> None:
        if not live:
            with self._changed:
                if self._workers is not None:
                    self._workers = None
                    self._touch()

    def _on_presence_sync(self) -> None:
        channel = self._presence.channel if self._presence is not None else None
        if channel is None:
            return
        online = workers.workers_in(channel.presence_state())
        now = datetime.now(UTC)
        with self._changed:
            before = self._workers or {}
            for gone in before.keys() - online.keys():
                self._offline_since[gone] = now
            for back in online.keys() & self._offline_since.keys():
                del self._offline_since[back]
            if online != self._workers:
                self._workers = online
                self._touch()

    async def _connect(self) -> AsyncRealtimeClient:
        client = realtime_client(self._realtime_settings)
        await client.connect()
        return client

    def _bind(self, channel: AsyncRealtimeChannel) -> None:
        every = RealtimePostgresChangesListenEvent
        channel.on_postgres_changes(
            every.All, self._on_change, schema="public", table="background_jobs"
        )
        channel.on_postgres_changes(
            every.Insert, self._on_change, schema="public", table="job_events",
            filter="event=eq.stopped",
        )  # fmt: skip

    async def _keep_synced(self, rest: AsyncClient) -> None:
        """Resync now, after every subscribe, and every ``fallback_interval`` while not live."""
        assert self._resync_needed is not None
        failures = 0
        while True:
            try:
                await self._resync(rest)
                failures = 0
            except Exception as exc:
                failures += 1
                self._set_down(f"cannot reach Supabase ({describe_error(exc)})")
                log.warning("event=resync_failed error=%r", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._resync_needed.wait(), self._resync_wait(failures))
            self._resync_needed.clear()

    async def _keep_roster(self, rest: AsyncClient) -> None:
        """Which job types live workers run, read every ``roster_interval`` (``job_workers`` is
        one small row per worker); a page redraws when that set changes, and on every read while
        a processing job's worker is offline (its row counts the time)."""
        while True:
            try:
                rows = (await rest.table("job_workers").select("*").execute()).data or []
                now = datetime.now(UTC)
                roster = [WorkerInfo.from_row(r) for r in rows if isinstance(r, Mapping)]
                handled = frozenset(t for w in roster if w.live(now) for t in w.job_types)
                with self._changed:
                    self._roster = {w.id: w for w in roster}
                    if self._orphans():  # their rows count the time offline: redraw them
                        self._touch()
                    if handled != self._handled_types:
                        self._handled_types = handled
                        self._touch()
            except Exception as exc:  # the jobs themselves still show; the next read retries
                log.warning("event=roster_failed error=%r", exc)
            await asyncio.sleep(self._roster_interval)

    def _resync_wait(self, failures: int) -> float | None:
        """Until the next resync: the safety net while live; slow REST refresh otherwise."""
        if failures:
            return min(
                self._fallback_interval, self._backoff[min(failures, len(self._backoff)) - 1]
            )
        with self._lock:
            live = self._subscribed
        return self._resync_interval if live else self._fallback_interval

    async def _resync(self, rest: AsyncClient) -> None:
        with self._lock:
            subscription = self._subscriptions
            self._buffer = []
        try:
            rows = [job async for job in _all_jobs(rest)]
        except BaseException:
            with self._lock:
                self._buffer = None
            raise
        with self._changed:
            buffered, self._buffer = self._buffer or [], None
            before, self._rows = self._rows, {j.id: j for j in rows if j.id not in self._gone}
            for change in buffered:
                self._apply(change)
            news = self._synced_at is None or self._synced_subscription != subscription
            self._synced_subscription = subscription
            self._synced_at = datetime.now(UTC)
            if news or self._rows != before:  # an unchanged resync redraws no page
                self._touch()
        log.debug("event=resynced rows=%d replayed=%d", len(rows), len(buffered))


async def _all_jobs(rest: AsyncClient) -> AsyncIterator[Job]:
    """Every row, in pages of ``PAGE_SIZE``, keyset-paginated on the primary key (stable under
    concurrent inserts and deletes; changes meanwhile are replayed from the buffer)."""
    after: str | None = None
    while True:
        query = rest.table("background_jobs").select("*").order("id").limit(PAGE_SIZE)
        if after is not None:
            query = query.gt("id", after)
        page = (await query.execute()).data
        if not isinstance(page, list):
            raise TypeError(f"unexpected response from Supabase: {page!r:.200}")
        jobs = [Job.from_row(row) for row in page if isinstance(row, Mapping)]
        for job in jobs:
            yield job
        if len(page) < PAGE_SIZE:
            return
        after = str(jobs[-1].id)


async def _close_client(client: AsyncClient) -> None:
    """Leave the channels, close the socket and the HTTP pool; a dead peer cannot stall it."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.remove_all_channels(), 2)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.realtime.close(), 2)
    with contextlib.suppress(Exception):
        await client.postgrest.aclose()


def _newer_or_same(job: Job, current: Job | None) -> bool:
    if current is None or job.updated_at is None or current.updated_at is None:
        return True
    return job.updated_at >= current.updated_at


def _remember(memory: OrderedDict[uuid.UUID, Any], key: uuid.UUID, value: Any) -> None:
    memory[key] = value
    memory.move_to_end(key)
    while len(memory) > REMEMBERED:
        memory.popitem(last=False)


@contextlib.contextmanager
def running(mirror: JobMirror) -> Iterator[JobMirror]:
    """Start the mirror for the duration of a ``with`` block (tests, benchmarks)."""
    mirror.start()
    try:
        yield mirror
    finally:
        mirror.close()
