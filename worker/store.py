"""The worker's calls into Supabase (REST RPCs and Storage), translated once into plain values.

Every write is fenced in SQL by ``id + lease_id + status = 'processing'``: a write that
matches nothing returns False/None, which means "you no longer own this job".
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobdock.models import Job
from supabase import AsyncClient


class LeaseLost(Exception):
    """The job is no longer held by this worker (its fenced call matched nothing)."""

    def __init__(self, job_id: uuid.UUID) -> None:
        super().__init__(f"job {job_id} is no longer held by this worker")
        self.job_id = job_id


@dataclass(frozen=True)
class Stop:
    """A job's ``stopped`` event: why, when, and how it was noticed."""

    job: Job
    reason: str
    stopped_at: datetime
    detail: dict[str, Any]


class Store:
    def __init__(self, client: AsyncClient, worker_id: str) -> None:
        self.client = client
        self.worker_id = worker_id

    async def _rpc(self, function: str, params: dict[str, Any]) -> Any:
        return (await self.client.rpc(function, params).execute()).data

    async def heartbeat(
        self, lease_seconds: float, handlers: Sequence[str], hostname: str, pid: int
    ) -> bool:
        """Alive, and registers the job types this worker runs."""
        await self._rpc(
            "worker_heartbeat",
            {
                "p_worker_id": self.worker_id,
                "p_lease_seconds": lease_seconds,
                "p_handlers": list(handlers),
                "p_hostname": hostname,
                "p_pid": pid,
            },
        )
        return True

    async def close(self) -> None:
        await self.client.postgrest.aclose()

    async def broadcast_available(self) -> bool:
        """Whether the project sends jobdock's signals over Broadcast from Database."""
        return bool(await self._rpc("jobdock_broadcast_available", {}))

    async def retire(self) -> None:
        await self._rpc("worker_retire", {"p_worker_id": self.worker_id})

    async def claim(self, limit: int, job_types: Sequence[str] | None) -> list[Job]:
        rows = await self._rpc(
            "claim_jobs",
            {
                "p_worker_id": self.worker_id,
                "p_limit": limit,
                "p_job_types": list(job_types) if job_types else None,
            },
        )
        return [Job.from_row(row) for row in rows or []]

    async def progress_many(self, reports: Sequence[tuple[Job, dict[str, Any]]]) -> set[uuid.UUID]:
        """Fenced progress of many jobs in one call; the ids of the jobs written."""
        payload = [
            {"id": str(job.id), "lease_id": str(job.lease_id), "progress": progress}
            for job, progress in reports
        ]
        written = await self._rpc("report_progress_many", {"p_items": payload})
        return {uuid.UUID(str(i)) for i in written or []}

    async def complete_many(self, items: Sequence[tuple[Job, Any]]) -> list[bool]:
        """Fenced completion of many jobs in one call; per item, whether it was still ours."""
        payload = [{"id": str(j.id), "lease_id": str(j.lease_id), "output": o} for j, o in items]
        done = {
            uuid.UUID(str(i)) for i in await self._rpc("complete_jobs", {"p_items": payload}) or []
        }
        return [job.id in done for job, _ in items]

    async def complete_document(
        self, job: Job, output: Any, chunks: Sequence[dict[str, Any]]
    ) -> bool:
        return bool(
            await self._rpc(
                "complete_document_job",
                {
                    "p_id": str(job.id),
                    "p_lease_id": str(job.lease_id),
                    "p_output": output,
                    "p_chunks": list(chunks),
                },
            )
        )

    async def stage_chunks(self, job: Job, chunks: Sequence[dict[str, Any]]) -> bool:
        """Part of a document's chunks, ahead of its completion (fenced; idempotent)."""
        return bool(
            await self._rpc(
                "stage_document_chunks",
                {"p_id": str(job.id), "p_lease_id": str(job.lease_id), "p_chunks": list(chunks)},
            )
        )

    async def fail(self, job: Job, error: str, retryable: bool = True) -> bool:
        return await self.fail_lease(job.id, str(job.lease_id), error, retryable)

    async def fail_lease(
        self, job_id: uuid.UUID, lease_id: str, error: str, retryable: bool = True
    ) -> bool:
        """Fenced failure; False when the lease no longer holds."""
        status = await self._rpc(
            "fail_job",
            {
                "p_id": str(job_id),
                "p_lease_id": lease_id,
                "p_error": error,
                "p_retryable": retryable,
            },
        )
        return status is not None

    async def document_refusal(self, job: Job) -> str | None:
        """Why the job may not read the document its input names (None: it may). Raises
        ``LeaseLost`` when the job is no longer this worker's."""
        rows = await self._rpc(
            "check_document_job", {"p_id": str(job.id), "p_lease_id": str(job.lease_id)}
        )
        if not rows:
            raise LeaseLost(job.id)
        refusal = rows[0].get("refusal")
        return str(refusal) if refusal is not None else None

    async def held(self) -> dict[uuid.UUID, str]:
        """The jobs the database has as running on this worker: id → lease id."""
        rows = await self._rpc("worker_held_jobs", {"p_worker_id": self.worker_id})
        return {uuid.UUID(r["id"]): str(r["lease_id"]) for r in rows or []}

    async def release(self, job: Job, reason: str) -> bool:
        return bool(
            await self._rpc(
                "release_job",
                {"p_id": str(job.id), "p_lease_id": str(job.lease_id), "p_reason": reason},
            )
        )

    async def record_stops(self, stops: Sequence[Stop]) -> list[None]:
        """The ``stopped`` events of many jobs, in one call."""
        payload = [
            {
                "id": str(stop.job.id),
                "lease_id": str(stop.job.lease_id),
                "reason": stop.reason,
                "stopped_at": stop.stopped_at.isoformat(),
                "detail": json.loads(json.dumps(stop.detail)),
            }
            for stop in stops
        ]
        await self._rpc("record_stops", {"p_worker_id": self.worker_id, "p_items": payload})
        return [None] * len(stops)

    async def states(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, tuple[str, str | None]]:
        """Current (status, lease_id) of the given jobs; deleted jobs are absent."""
        if not ids:
            return {}
        rows = await self._rpc("job_states", {"p_ids": [str(i) for i in ids]})
        return {uuid.UUID(r["id"]): (r["status"], r["lease_id"]) for r in rows or []}

    async def download(self, bucket: str, path: str) -> bytes:
        data: bytes = await self.client.storage.from_(bucket).download(path)
        return data
