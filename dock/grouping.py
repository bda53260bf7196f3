"""How the dock orders jobs: the status groups top to bottom, and the order within each.

Used by the mirror's snapshot (``groups``) and by what draws the page.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from jobdock.models import Job, JobStatus

#: The status groups, top to bottom.
GROUP_ORDER = (
    JobStatus.PROCESSING,
    JobStatus.PENDING,
    JobStatus.FAILED,
    JobStatus.COMPLETED,
    JobStatus.CANCELLED,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def group_jobs(jobs: Iterable[Job]) -> dict[JobStatus, tuple[Job, ...]]:
    """The jobs by status, every group of ``GROUP_ORDER`` present, each in its order."""
    buckets: dict[JobStatus, list[Job]] = {status: [] for status in GROUP_ORDER}
    for job in jobs:
        buckets[job.status].append(job)
    return {status: tuple(sorted(group, key=_group_key)) for status, group in buckets.items()}


def _group_key(job: Job) -> tuple[float, str]:
    """Newest first, except the queue: the next pending job to run comes first."""
    if job.status is JobStatus.PENDING:
        return ((job.created_at or _EPOCH).timestamp(), str(job.id))
    when = job.started_at if job.status is JobStatus.PROCESSING else job.completed_at
    return (-(when or job.created_at or _EPOCH).timestamp(), str(job.id))
