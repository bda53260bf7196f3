"""The worker's settings: every default is written here once; ``python -m worker`` falls
through to them. Durations carry their unit in their name."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import Literal

Signals = Literal["auto", "broadcast", "postgres_changes"]


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class WorkerConfig:
    supabase_url: str
    service_key: str
    worker_id: str = field(default_factory=default_worker_id)
    #: Jobs run at once.
    concurrency: int = 4
    #: The job types to take (None: every type of the registry).
    job_types: tuple[str, ...] | None = None
    #: On shutdown: how long running jobs may finish before they are stopped and handed back.
    shutdown_grace_seconds: float = 5.0
    #: After a stop: how long an isolated handler has between SIGTERM and SIGKILL (and after
    #: which a blocking handler that has not returned is logged as unresponsive).
    kill_grace_seconds: float = 5.0
    #: Between status polls of the running jobs while Realtime is down (or disabled).
    fallback_poll_seconds: float = 0.5
    #: Listen to Realtime (False: poll only, for comparison).
    realtime: bool = True
    #: How stops and new work reach the worker: Broadcast from Database (one message per
    #: worker per statement), ``postgres_changes`` (one event per changed row), or ``auto``
    #: (Broadcast when the project can send it).
    signals: Signals = "auto"
    #: Without a heartbeat for this long, other workers take this worker's jobs.
    lease_seconds: float = 30.0
    #: The safety poll for new work while Realtime is healthy.
    idle_poll_seconds: float = 2.0
    #: Between progress writes (all running jobs' progress in one call); the dock redraws
    #: every 0.5 s, so faster is not seen.
    progress_interval_seconds: float = 0.5
    #: Rebuild the Realtime client after it has been down this long.
    feed_rebuild_after_seconds: float = 20.0
    #: The Realtime endpoint when it differs from ``supabase_url`` (a proxy, say).
    realtime_url: str | None = None

    @property
    def write_deadline_seconds(self) -> float:
        """How long a final write is retried: twice the lease, the time other workers give
        this one before they take its jobs."""
        return 2 * self.lease_seconds
