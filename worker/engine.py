"""The worker engine: claim loop, job execution, stop handling, heartbeat, fallback poll.

A job stops for one of five reasons (``StopReason``), recorded in its ``CancelScope`` before
anything is interrupted. Whatever the reason, a stopped job writes nothing more except its
``stopped`` event (and, on shutdown, the hand-back for a retry).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar, assert_never

from storage3.exceptions import StorageApiError

from jobdock.models import Job, JobStatus
from jobdock.realtime import Connect
from supabase import acreate_client
from worker import execution, logs
from worker.batching import Batcher
from worker.config import WorkerConfig
from worker.context import JobContext, Result
from worker.errors import PermanentError, UnknownJobType
from worker.feed import (
    BroadcastFeed,
    ChangeFeed,
    FeedEvent,
    FeedHandlers,
    JobChanged,
    JobDeleted,
    StopRequested,
    WorkAnnounced,
    connector,
)
from worker.presence import Presence, started_at
from worker.presence import version as presence_version
from worker.progress import ProgressWriter, Report
from worker.registry import Registry
from worker.retries import is_transient, persist
from worker.stopping import CancelScope, JobCancelled, StopReason, stop_reason
from worker.store import Stop, Store

#: A document's chunks are written in parts of at most this many bytes of JSON, so no request
#: comes near an API gateway's body limit (localbase: 10 MiB).
CHUNK_PART_BYTES = 4 * 1024 * 1024

T = TypeVar("T")


@dataclass
class RunningJob:
    job: Job
    scope: CancelScope = field(default_factory=CancelScope)
    task: asyncio.Task[None] | None = None
    #: The handler has returned and only the outcome's write is in flight: the job no longer
    #: takes a concurrency slot, so the next claim overlaps the completions' round trip.
    finishing: bool = False


class Worker:
    """One worker process's jobs: claims them, runs them, stops them. Build it with
    ``connect``; ``run`` serves until ``request_shutdown``."""

    def __init__(self, config: WorkerConfig, registry: Registry, store: Store) -> None:
        self.config = config
        self.registry = registry
        self.store = store
        self.running: dict[uuid.UUID, RunningJob] = {}
        self.stopping = asyncio.Event()
        self.wake = asyncio.Event()
        self.feed_down = asyncio.Event()
        self.feed_down.set()
        self.feed: ChangeFeed | BroadcastFeed | None = None
        self.presence: Presence | None = None
        self._started_at = started_at()
        self.completions: Batcher[tuple[Job, Any], bool] = Batcher(
            store.complete_many, "complete-batches"
        )
        self.stops: Batcher[Stop, None] = Batcher(store.record_stops, "stop-batches")
        self.progress = ProgressWriter(
            self._send_progress,
            self._progress_lost,
            config.progress_interval_seconds,
            config.worker_id,
        )
        self.stopped_jobs = 0
        self._resync: asyncio.Task[None] | None = None
        # Whether the queue may hold work for us: set by new or re-queued jobs (realtime), by a
        # claim that got all it asked for, by the safety poll; cleared by a short claim. A slot
        # freed while it is clear costs no claim round trip.
        self._backlog = True
        # Held while claiming and starting jobs, and while comparing what the database says
        # this worker holds with what it runs: a job claimed but not yet started is not stray.
        self._claiming = asyncio.Lock()

    @property
    def handled_types(self) -> list[str]:
        """The job types this worker runs (its registration)."""
        wanted = self.config.job_types
        return [n for n in self.registry.names if wanted is None or n in wanted]

    @property
    def _write_deadline(self) -> float:
        return self.config.write_deadline_seconds

    @classmethod
    async def connect(cls, config: WorkerConfig, registry: Registry) -> Worker:
        client = await acreate_client(config.supabase_url, config.service_key)
        return cls(config, registry, Store(client, config.worker_id))

    # -- lifecycle ------------------------------------------------------------------------------
    async def run(self) -> None:
        """Serve until ``request_shutdown``; then drain, hand back, and return."""
        await self._heartbeat()
        logs.event(
            "worker_started",
            worker_id=self.config.worker_id,
            concurrency=self.config.concurrency,
            realtime=self.config.realtime,
            handlers=",".join(self.registry.names),
        )
        try:
            async with asyncio.TaskGroup() as group:
                side = [
                    group.create_task(self._claim_loop(), name="claim-loop"),
                    group.create_task(self._heartbeat_loop(), name="heartbeat"),
                    group.create_task(self._fallback_loop(), name="fallback-poll"),
                ]
                if self.config.realtime:
                    self.feed = await self._make_feed()
                    side.append(group.create_task(self.feed.run(), name="realtime-feed"))
                if isinstance(self.feed, BroadcastFeed):  # the project has private channels
                    self.presence = self._make_presence()
                    side.append(group.create_task(self.presence.run(), name="presence"))
                await self.stopping.wait()
                await self._drain()
                for task in side:
                    task.cancel()
        finally:
            await self._retire()

    def request_shutdown(self) -> None:
        if not self.stopping.is_set():
            logs.event(
                "shutdown_requested", worker_id=self.config.worker_id, running=len(self.running)
            )
            self.stopping.set()
            self.wake.set()

    async def _drain(self) -> None:
        tasks = [r.task for r in self.running.values() if r.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=self.config.shutdown_grace_seconds)
        for running in list(self.running.values()):
            running.scope.stop(StopReason.SHUTDOWN, "shutdown")
        tasks = [r.task for r in self.running.values() if r.task is not None]
        if tasks:
            # Isolated handlers are killed after the grace; a blocking handler that ignores its
            # flag ends with this process (its job is reclaimed once the lease expires).
            _, stuck = await asyncio.wait(tasks, timeout=self.config.kill_grace_seconds + 1)
            for task in stuck:
                logs.event("handler_unresponsive", task=task.get_name(), at="shutdown")

    async def _retire(self) -> None:
        with contextlib.suppress(Exception):
            await self.store.retire()
        logs.event(
            "worker_stopped", worker_id=self.config.worker_id, stopped_jobs=self.stopped_jobs
        )
        with contextlib.suppress(Exception):
            await self.store.close()

    @property
    def _connect(self) -> Connect:
        url = self.config.realtime_url or self.config.supabase_url
        return connector(url, self.config.service_key)

    async def _make_feed(self) -> ChangeFeed | BroadcastFeed:
        signals = self.config.signals
        if signals == "auto":
            available = await self._guarded("signals", self.store.broadcast_available())
            signals = "broadcast" if available else "postgres_changes"
        logs.event("signals", worker_id=self.config.worker_id, mode=signals)
        kind = BroadcastFeed if signals == "broadcast" else ChangeFeed
        return kind(
            self._connect,
            self.config.worker_id,
            FeedHandlers(self._on_event, self._on_feed_state),
            rebuild_after=self.config.feed_rebuild_after_seconds,
        )

    def _make_presence(self) -> Presence:
        return Presence(
            self._connect,
            self.config.worker_id,
            self._presence_state,
            rebuild_after=self.config.feed_rebuild_after_seconds,
        )

    def _presence_state(self) -> dict[str, Any]:
        return {
            "worker_id": self.config.worker_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "concurrency": self.config.concurrency,
            "running": self._busy_slots(),
            "job_types": self.handled_types,
            "version": presence_version(),
            "started_at": self._started_at,
        }

    def _presence_changed(self) -> None:
        if self.presence is not None:
            self.presence.changed()

    # -- realtime callbacks: hand off only --------------------------------------------------------
    def _on_event(self, event: FeedEvent) -> None:
        match event:
            case JobChanged(job_id, status, lease):
                running = self.running.get(job_id)
                if running is None:
                    return
                reason = stop_reason(running.job.lease_id, status, lease)
                if reason is not None:  # None: our own progress write
                    running.scope.stop(reason, "realtime")
            case JobDeleted(job_id):
                if (running := self.running.get(job_id)) is not None:
                    running.scope.stop(StopReason.DELETED, "realtime")
            case StopRequested(job_id, lease, reason):
                running = self.running.get(job_id)
                if running is not None and (lease is None or lease == running.job.lease_id):
                    running.scope.stop(reason, "realtime")
            case WorkAnnounced():
                if event.concerns(self.config.job_types):
                    self._backlog = True
                    self.wake.set()
            case _:
                assert_never(event)

    def _on_feed_state(self, healthy: bool) -> None:
        if healthy:
            self.feed_down.clear()
            self._resync = asyncio.ensure_future(self._resync_all())
            self._backlog = True
            self.wake.set()
        else:
            self.feed_down.set()

    # -- loops ----------------------------------------------------------------------------------
    async def _claim_loop(self) -> None:
        while not self.stopping.is_set():
            self.wake.clear()
            free = self.config.concurrency - self._busy_slots()
            if free > 0 and (self._backlog or not self._feed_healthy):
                self._backlog = False  # work announced during the call sets it again
                async with self._claiming:
                    claimed = await self._guarded(
                        "claim", self.store.claim(free, self.config.job_types)
                    )
                    for job in claimed or []:
                        self._start(job)
                logs.event(
                    "claim",
                    logging.DEBUG,
                    worker_id=self.config.worker_id,
                    asked=free,
                    got=None if claimed is None else len(claimed),
                )
                if claimed is None or len(claimed) == free:
                    self._backlog = True  # more may be waiting (or the call failed: retry)
                    if claimed:
                        continue
            idle = (
                self.config.idle_poll_seconds
                if self._feed_healthy
                else self.config.fallback_poll_seconds
            )
            try:
                await asyncio.wait_for(self.wake.wait(), idle)
            except TimeoutError:
                self._backlog = True  # the safety poll: retries coming due, missed events

    def _busy_slots(self) -> int:
        return sum(1 for running in self.running.values() if not running.finishing)

    @property
    def _feed_healthy(self) -> bool:
        return self.config.realtime and not self.feed_down.is_set()

    async def _heartbeat_loop(self) -> None:
        interval = self.config.lease_seconds / 3
        late = False
        while True:
            await asyncio.sleep(interval)
            began = time.monotonic()
            ok = await self._heartbeat()
            if not ok or time.monotonic() - began > interval:
                late = True
            elif late:  # we may have looked dead: make sure our jobs are still ours
                late = False
                await self._check_running("heartbeat_recovered")
            if ok:
                await self._reconcile()

    async def _heartbeat(self) -> bool:
        result = await self._guarded(
            "heartbeat",
            self.store.heartbeat(
                self.config.lease_seconds, self.handled_types, socket.gethostname(), os.getpid()
            ),
        )
        return result is not None

    async def _fallback_loop(self) -> None:
        """While the feed is down (or disabled), poll the running jobs' states."""
        while True:
            if self._feed_healthy:
                await self._wait_feed_down()
                continue
            await self._check_running("fallback_poll")
            await asyncio.sleep(self.config.fallback_poll_seconds)

    async def _wait_feed_down(self) -> None:
        while not self.feed_down.is_set():
            await self.feed_down.wait()

    async def _check_running(self, why: str) -> None:
        """Stop every running job that the database no longer has as ours."""
        snapshot = dict(self.running)
        if not snapshot:
            return
        states = await self._guarded(why, self.store.states(list(snapshot)))
        if states is None:
            return
        for job_id, running in snapshot.items():
            reason = stop_reason(running.job.lease_id, *states.get(job_id, (None, None)))
            if reason is not None:
                running.scope.stop(reason, why)

    async def _resync_all(self) -> None:
        await self._check_running("resync")
        await self._reconcile()

    async def _reconcile(self) -> None:
        """Fail (for a retry) every job the database has as running here that this worker no
        longer runs: an attempt whose outcome could not be written must not stay
        ``processing`` for good, kept alive by this worker's heartbeat."""
        async with self._claiming:
            held = await self._guarded("reconcile", self.store.held())
            stray = {i: lease for i, lease in (held or {}).items() if i not in self.running}
        for job_id, lease_id in stray.items():
            logs.event("stray_job", job_id=job_id, worker_id=self.config.worker_id)
            await self._guarded(
                "reconcile",
                self.store.fail_lease(
                    job_id, lease_id, "The worker lost track of this attempt", retryable=True
                ),
            )

    async def _guarded(self, what: str, call: Awaitable[T]) -> T | None:
        try:
            return await call
        except Exception as exc:  # network or server trouble: logged, retried by the loop
            logs.event(
                "call_failed", what=what, worker_id=self.config.worker_id, error=repr(exc)[:200]
            )
            return None

    # -- one job --------------------------------------------------------------------------------
    def _start(self, job: Job) -> None:
        running = RunningJob(job)
        self.running[job.id] = running
        running.task = asyncio.create_task(self._execute(running), name=f"job-{job.id}")
        self._presence_changed()

    async def _execute(self, running: RunningJob) -> None:
        job = running.job
        began = time.monotonic()
        logs.event(
            "claimed",
            logging.DEBUG,
            job_id=job.id,
            worker_id=self.config.worker_id,
            job_type=job.job_type,
            attempt=job.retry_count + 1,
        )
        try:
            await self._run(running, began)
        except Exception as exc:  # an outcome that could not be written: reconciled later
            logs.event(
                "outcome_unwritten",
                job_id=job.id,
                worker_id=self.config.worker_id,
                error=repr(exc)[:200],
            )
        finally:
            # Once its stop is recorded the job may be claimed again, here too, before this
            # attempt gets here: leave a newer attempt's entry alone.
            if self.running.get(job.id) is running:
                self.progress.forget(job.id)
                del self.running[job.id]
            self._presence_changed()
            self.wake.set()

    async def _run(self, running: RunningJob, began: float) -> None:
        job, scope = running.job, running.scope
        handler = self.registry.get(job.job_type)
        if handler is None:
            error = UnknownJobType(f"no handler for job type {job.job_type!r} on this worker")
            await self._finish_failed(running, str(error), retryable=False)
            return
        ctx = JobContext(
            job,
            scope,
            asyncio.get_running_loop(),
            lambda p: self._report(running, p),
            lambda bucket, path: self._download(job, bucket, path),
        )
        try:
            result = await execution.run(handler, ctx, self.config.kill_grace_seconds)
        except JobCancelled:
            await self._stopped(running)
        except Exception as exc:
            if scope.stopped:
                await self._stopped(running)
            else:
                permanent = isinstance(exc, PermanentError)
                await self._finish_failed(running, _message(exc), retryable=not permanent)
        else:
            if scope.stopped:
                await self._stopped(running)
            else:
                running.finishing = True
                self.wake.set()
                await self._finish_completed(running, result, began)

    async def _finish_completed(self, running: RunningJob, result: Any, began: float) -> None:
        job = running.job
        try:
            written = await _shielded(self._write_outcome(job, result))
        except Exception as exc:
            logs.event(
                "complete_failed", job_id=job.id, worker_id=self.config.worker_id, error=repr(exc)
            )
            await self._finish_failed(
                running, f"The result could not be saved: {_message(exc)}", is_transient(exc)
            )
            return
        if written:
            logs.event(
                "completed",
                logging.DEBUG,
                job_id=job.id,
                worker_id=self.config.worker_id,
                ms=(time.monotonic() - began) * 1000,
            )
        else:
            await self._lost(running)

    async def _write_outcome(self, job: Job, result: Any) -> bool:
        """The fenced completion (a document's chunks in parts first); False: not ours."""
        store, completions, deadline = self.store, self.completions, self._write_deadline
        if not (isinstance(result, Result) and result.chunks is not None):
            output = result.output if isinstance(result, Result) else result
            return await persist(lambda: completions.submit((job, output)), "complete", deadline)
        *parts, last = _parts(result.chunks, CHUNK_PART_BYTES)
        for part in parts:
            if not await persist(_bind(store.stage_chunks, job, part), "stage", deadline):
                return False
        return await persist(
            lambda: store.complete_document(job, result.output, last), "complete", deadline
        )

    async def _finish_failed(self, running: RunningJob, error: str, retryable: bool) -> None:
        store, job = self.store, running.job
        written = await _shielded(
            persist(lambda: store.fail(job, error, retryable), "fail", self._write_deadline)
        )
        if written:
            logs.event(
                "failed",
                job_id=job.id,
                worker_id=self.config.worker_id,
                retryable=retryable,
                error=error[:200],
            )
        else:
            await self._lost(running)

    async def _lost(self, running: RunningJob) -> None:
        """A fenced write matched nothing: find out why, and stop."""
        job = running.job
        states = await self._guarded("lost", self.store.states([job.id])) or {}
        status, lease = states.get(job.id, (None, None))
        if status == JobStatus.COMPLETED and lease == str(job.lease_id):
            return  # our own completion, written by an earlier try whose answer was lost
        running.scope.stop(StopReason.for_status(status), "fence")
        await self._stopped(running)

    async def _stopped(self, running: RunningJob) -> None:
        stopped_at = datetime.now(UTC)
        scope, job = running.scope, running.job
        reason = scope.reason or StopReason.LEASE_LOST
        ms = None
        if scope.requested_monotonic is not None:
            ms = (time.monotonic() - scope.requested_monotonic) * 1000
        self.stopped_jobs += 1
        logs.event(
            "stopped",
            job_id=job.id,
            worker_id=self.config.worker_id,
            reason=reason,
            via=scope.via,
            ms=ms,
        )
        detail = {
            "requested_at": scope.requested_at.isoformat() if scope.requested_at else None,
            "stop_ms": ms,
            "via": scope.via,
        }
        stops, store, deadline = self.stops, self.store, self._write_deadline
        stop = Stop(job, reason.value, stopped_at, detail)
        await _shielded(
            self._guarded("record_stopped", persist(lambda: stops.submit(stop), "stop", deadline))
        )
        if reason is StopReason.SHUTDOWN:
            await _shielded(
                self._guarded(
                    "release", persist(lambda: store.release(job, "shutdown"), "release", deadline)
                )
            )

    async def _report(self, running: RunningJob, progress: dict[str, Any]) -> None:
        """Progress is written with the worker's next batch (see ``worker.progress``)."""
        if not running.scope.stopped:
            self.progress.report(running.job, progress)

    async def _send_progress(self, reports: Sequence[Report]) -> set[uuid.UUID]:
        """Write the reports of jobs still running here; nothing for a job that stopped."""
        live = [(job, p) for job, p in reports if self._still_running(job)]
        skipped = {job.id for job, _ in reports} - {job.id for job, _ in live}
        return skipped | (await self.store.progress_many(live) if live else set())

    async def _progress_lost(self, jobs: list[Job]) -> None:
        """Reports that matched nothing: stop the jobs that are no longer ours."""
        jobs = [job for job in jobs if self._still_running(job)]
        if not jobs:
            return
        states = await self._guarded("lost", self.store.states([job.id for job in jobs]))
        if states is None:
            return  # could not tell: the next report or poll asks again
        for job in jobs:
            reason = stop_reason(job.lease_id, *states.get(job.id, (None, None)))
            running = self.running.get(job.id)
            if running is not None and reason is not None:
                running.scope.stop(reason, "fence")

    def _still_running(self, job: Job) -> bool:
        running = self.running.get(job.id)
        return (
            running is not None
            and running.job.lease_id == job.lease_id
            and not running.scope.stopped
        )

    async def _download(self, job: Job, bucket: str, path: str) -> bytes:
        """Storage is read with the service key, so only what the job's owner may read: the
        document the job's own input names, re-checked in SQL (``check_document_job``)."""
        named = (job.input_data.get("bucket"), job.input_data.get("path"))
        if (bucket, path) != named:
            raise PermanentError(f"a job may read only the document its input names, not {path!r}")
        refusal = await self.store.document_refusal(job)
        if refusal is not None:
            raise PermanentError(f"Refused to read the document: {refusal}")
        try:
            return await self.store.download(bucket, path)
        except StorageApiError as exc:
            if str(exc.status) in {"400", "404"}:
                raise PermanentError(f"document {path!r} not found in bucket {bucket!r}") from exc
            raise


async def _shielded(call: Awaitable[T]) -> T:
    """Final writes survive a cancelled caller: a row is never left half-finished."""
    return await asyncio.shield(asyncio.ensure_future(call))


def _bind(
    fn: Callable[[Job, list[dict[str, Any]]], Awaitable[T]], job: Job, part: list[dict[str, Any]]
) -> Callable[[], Awaitable[T]]:
    return lambda: fn(job, part)


def _parts(chunks: Sequence[dict[str, Any]], budget: int) -> list[list[dict[str, Any]]]:
    """Consecutive parts of ``chunks`` of at most ``budget`` bytes of JSON each (at least one
    part, perhaps empty)."""
    parts: list[list[dict[str, Any]]] = [[]]
    size = 0
    for chunk in chunks:
        cost = len(json.dumps(chunk)) + 1
        if parts[-1] and size + cost > budget:
            parts.append([])
            size = 0
        parts[-1].append(chunk)
        size += cost
    return parts


def _message(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
