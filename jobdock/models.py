"""Typed views of ``background_jobs`` and ``job_events`` rows, parsed once at the edge.

``JobStatus`` mirrors the SQL enum ``public.job_status``. The predicates only decide which
buttons to *offer*; the SQL functions decide what actually happens.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from jobdock.errors import InvalidJobId


class JobStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})


def parse_job_id(text: str | uuid.UUID) -> uuid.UUID:
    if isinstance(text, uuid.UUID):
        return text
    try:
        return uuid.UUID(str(text).strip())
    except (ValueError, AttributeError):
        raise InvalidJobId(str(text)) from None


def parse_time(value: object) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


@dataclass(frozen=True)
class Progress:
    percent: float | None = None
    stage: str | None = None
    message: str | None = None

    @classmethod
    def from_json(cls, value: object) -> Progress:
        if not isinstance(value, Mapping):
            return cls()
        percent = value.get("percent")
        return cls(
            float(percent) if isinstance(percent, int | float) else None,
            str(value["stage"]) if value.get("stage") is not None else None,
            str(value["message"]) if value.get("message") is not None else None,
        )


@dataclass(frozen=True)
class Job:
    id: uuid.UUID
    job_type: str
    status: JobStatus
    user_id: uuid.UUID | None = None
    input_data: Mapping[str, Any] = field(default_factory=dict)
    output_data: Any = None
    progress: Progress = field(default_factory=Progress)
    last_error: str | None = None
    retry_count: int = 0
    max_retries: int = 3
    next_retry_at: datetime | None = None
    worker_id: str | None = None
    lease_id: uuid.UUID | None = None
    heartbeat_at: datetime | None = None
    cancel_requested_at: datetime | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Job:
        return cls(
            id=uuid.UUID(str(row["id"])),
            job_type=str(row["job_type"]),
            status=JobStatus(row["status"]),
            user_id=uuid.UUID(str(row["user_id"])) if row.get("user_id") else None,
            input_data=row.get("input_data") or {},
            output_data=row.get("output_data"),
            progress=Progress.from_json(row.get("progress")),
            last_error=row.get("last_error"),
            retry_count=int(row.get("retry_count") or 0),
            max_retries=int(row.get("max_retries") or 0),
            next_retry_at=parse_time(row.get("next_retry_at")),
            worker_id=row.get("worker_id"),
            lease_id=uuid.UUID(str(row["lease_id"])) if row.get("lease_id") else None,
            heartbeat_at=parse_time(row.get("heartbeat_at")),
            cancel_requested_at=parse_time(row.get("cancel_requested_at")),
            created_at=parse_time(row.get("created_at")),
            started_at=parse_time(row.get("started_at")),
            completed_at=parse_time(row.get("completed_at")),
            updated_at=parse_time(row.get("updated_at")),
        )

    @property
    def awaiting_retry(self) -> bool:
        return self.status is JobStatus.FAILED and self.next_retry_at is not None

    @property
    def filename(self) -> str | None:
        name = self.input_data.get("filename") or self.input_data.get("path")
        return str(name).rsplit("/", 1)[-1] if name else None

    # What the dock offers (the SQL functions have the final word).
    def can_cancel(self) -> bool:
        return self.status in {JobStatus.PENDING, JobStatus.PROCESSING} or self.awaiting_retry

    def can_force_fail(self) -> bool:
        return self.status is JobStatus.PROCESSING

    def can_retry(self) -> bool:
        return self.status is JobStatus.FAILED

    def can_dismiss(self) -> bool:
        return self.status in FINISHED


@dataclass(frozen=True)
class JobEvent:
    id: int
    job_id: uuid.UUID
    event: str
    worker_id: str | None
    detail: Mapping[str, Any]
    created_at: datetime | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> JobEvent:
        return cls(
            id=int(row["id"]),
            job_id=uuid.UUID(str(row["job_id"])),
            event=str(row["event"]),
            worker_id=row.get("worker_id"),
            detail=row.get("detail") or {},
            created_at=parse_time(row.get("created_at")),
        )

    @property
    def stopped_at(self) -> datetime | None:
        return parse_time(self.detail.get("stopped_at"))


@dataclass(frozen=True)
class WorkerInfo:
    """A row of ``job_workers``: a worker process, the job types it runs, its last heartbeat."""

    id: str
    job_types: tuple[str, ...]
    heartbeat_at: datetime | None
    lease_seconds: float

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> WorkerInfo:
        types = row.get("job_types")
        return cls(
            id=str(row["id"]),
            job_types=tuple(str(t) for t in types) if isinstance(types, list) else (),
            heartbeat_at=parse_time(row.get("heartbeat_at")),
            lease_seconds=float(row.get("lease_seconds") or 30),
        )

    def live(self, now: datetime) -> bool:
        """Heartbeating: others will not take its jobs."""
        return (
            self.heartbeat_at is not None
            and (now - self.heartbeat_at).total_seconds() < self.lease_seconds
        )


@dataclass(frozen=True)
class WorkerPresence:
    """What a worker tracks on the ``jobdock:workers`` presence topic."""

    worker_id: str
    host: str | None
    pid: int | None
    concurrency: int
    running: int
    job_types: tuple[str, ...]
    version: str | None
    started_at: datetime | None

    @property
    def free_slots(self) -> int:
        return max(0, self.concurrency - self.running)

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> WorkerPresence | None:
        """A presence meta as tracked by ``worker.presence``; None if it is not one."""
        worker_id = meta.get("worker_id")
        if not isinstance(worker_id, str) or not worker_id:
            return None
        types = meta.get("job_types")
        try:
            return cls(
                worker_id=worker_id,
                host=str(meta["host"]) if meta.get("host") else None,
                pid=int(meta["pid"]) if isinstance(meta.get("pid"), int) else None,
                concurrency=int(meta.get("concurrency") or 0),
                running=int(meta.get("running") or 0),
                job_types=tuple(str(t) for t in types) if isinstance(types, list) else (),
                version=str(meta["version"]) if meta.get("version") else None,
                started_at=parse_time(meta.get("started_at")),
            )
        except (TypeError, ValueError):
            return None
