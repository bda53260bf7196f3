"""Why a job stops, and the per-job cancel scope that records the reason before cancelling.

The scope is the one place a stop is decided: the realtime callback, the fallback poll, a
fenced write that matched nothing, or shutdown all call ``CancelScope.stop(reason)``. The
first reason wins; the handler is then interrupted the way its mode allows.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum

from jobdock.models import JobStatus


class StopReason(StrEnum):
    CANCELLED = "cancelled"
    FORCE_FAILED = "force_failed"
    DELETED = "deleted"
    LEASE_LOST = "lease_lost"
    SHUTDOWN = "shutdown"

    @classmethod
    def for_status(cls, status: str | None) -> StopReason:
        """Why a running job must stop, given the status the database now has for it."""
        if status is None:
            return cls.DELETED
        if status == JobStatus.CANCELLED:
            return cls.CANCELLED
        if status == JobStatus.FAILED:
            return cls.FORCE_FAILED
        return cls.LEASE_LOST


def stop_reason(
    held_lease: uuid.UUID | None, status: str | None, lease: uuid.UUID | str | None
) -> StopReason | None:
    """Whether a job this worker runs under ``held_lease`` is still its own, given the status
    and lease the database has for it (``status`` None: the row is gone): None while it is,
    else why it must stop. The one rule behind every stop the worker decides itself."""
    if status == JobStatus.PROCESSING and lease is not None and str(lease) == str(held_lease):
        return None
    return StopReason.for_status(status)


class JobCancelled(Exception):
    """Raised inside a handler that must stop; it must not be retried."""

    def __init__(self, reason: StopReason) -> None:
        super().__init__(f"job stopped: {reason}")
        self.reason = reason


class CancelScope:
    """Thread-safe stop signal for one running job."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flag = threading.Event()
        self._callbacks: list[Callable[[], None]] = []
        self.reason: StopReason | None = None
        self.via: str | None = None  # what noticed: realtime, poll, fence, shutdown
        self.requested_at: datetime | None = None
        self.requested_monotonic: float | None = None

    @property
    def stopped(self) -> bool:
        return self._flag.is_set()

    @property
    def flag(self) -> threading.Event:
        return self._flag

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` on stop (at once if already stopped)."""
        with self._lock:
            if not self._flag.is_set():
                self._callbacks.append(callback)
                return
        callback()

    def stop(self, reason: StopReason, via: str) -> bool:
        """Record the reason, then interrupt. Returns False if the job was already stopping."""
        with self._lock:
            if self._flag.is_set():
                return False
            self.reason = reason
            self.via = via
            self.requested_at = datetime.now(UTC)
            self.requested_monotonic = time.monotonic()
            self._flag.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()
        return True

    def check(self) -> None:
        """Raise ``JobCancelled`` if the job must stop (for handlers, between units of work)."""
        if self._flag.is_set():
            assert self.reason is not None
            raise JobCancelled(self.reason)
