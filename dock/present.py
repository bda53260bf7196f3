"""How jobs and outcomes read on screen: labels, badges, relative times, messages.

Pure functions of their arguments (no Streamlit, no I/O), so they are unit-tested on their own.
Markdown uses Streamlit's ``:color-badge[…]`` and ``:color[…]`` directives.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, assert_never

from jobdock.actions import BulkCancelResult, CancelResult, Done, NotAllowed, NotFound, Outcome
from jobdock.models import Job, JobEvent, JobStatus

Kind = Literal["success", "info", "warning", "error"]
Message = tuple[Kind, str]  # a flash message: how it looks, what it says

BADGE_COLORS = {
    JobStatus.PENDING: "gray",
    JobStatus.PROCESSING: "blue",
    JobStatus.COMPLETED: "green",
    JobStatus.FAILED: "red",
    JobStatus.CANCELLED: "orange",
}

GROUP_TITLES = {
    JobStatus.PROCESSING: "Processing",
    JobStatus.PENDING: "Pending",
    JobStatus.FAILED: "Failed",
    JobStatus.COMPLETED: "Completed",
    JobStatus.CANCELLED: "Cancelled",
}


def short_id(job_id: uuid.UUID | str) -> str:
    return str(job_id)[:8]


#: Relative times under a minute move in steps of this many seconds (``just now``, ``30 s ago``,
#: ``1 min ago``…), so a page that is redrawn only this often when idle is never wrong.
RECENT_STEP_SECONDS = 30


def ago(when: datetime | None, now: datetime) -> str:
    """``just now``, ``30 s ago``, ``3 min ago``, ``2 h ago``, ``4 d ago``."""
    if when is None:
        return "—"
    seconds = (now - when).total_seconds()
    if seconds < RECENT_STEP_SECONDS:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds // RECENT_STEP_SECONDS) * RECENT_STEP_SECONDS} s ago"


def duration(start: datetime | None, end: datetime | None) -> str | None:
    if start is None or end is None:
        return None
    seconds = max(0.0, (end - start).total_seconds())
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def badge(job: Job, now: datetime) -> str:
    label = job.status.value
    if job.awaiting_retry and job.next_retry_at is not None:
        wait = (job.next_retry_at - now).total_seconds()
        label += " · retry " + (f"in {wait:.0f} s" if wait >= 1 else "due")
    return f":{BADGE_COLORS[job.status]}-badge[{label}]"


def title(job: Job) -> str:
    """``**process_document** · `book.epub` · `3f2c1a9b```."""
    parts = [f"**{_escape(job.job_type)}**"]
    if job.filename:
        parts.append("`" + job.filename.replace("`", "'") + "`")
    parts.append(f"`{short_id(job.id)}`")
    return " · ".join(parts)


def progress(job: Job) -> tuple[float, str] | None:
    """The bar's value (0…1) and its text, for jobs that have or will have progress."""
    if job.status is JobStatus.COMPLETED:
        return 1.0, "done"
    if job.status is JobStatus.PENDING:
        return 0.0, "waiting for a worker"
    if job.status is not JobStatus.PROCESSING and job.progress.percent is None:
        return None
    percent = max(0.0, min(100.0, job.progress.percent or 0.0))
    text = _stage_text(job) or ("starting" if job.status is JobStatus.PROCESSING else "stopped")
    return percent / 100, f"{text} · {percent:.0f}%"


def _stage_text(job: Job) -> str:
    stage, message = job.progress.stage, job.progress.message
    return " — ".join(_escape(part) for part in (stage, message) if part)


def times(job: Job, now: datetime) -> str:
    parts = [f"created {ago(job.created_at, now)}"]
    if job.started_at is not None:
        parts.append(f"started {ago(job.started_at, now)}")
    if job.completed_at is not None and job.status is not JobStatus.PROCESSING:
        parts.append(f"finished {ago(job.completed_at, now)}")
        took = duration(job.started_at, job.completed_at)
        if took:
            parts.append(f"took {took}")
    if job.worker_id and job.status is JobStatus.PROCESSING:
        parts.append(f"worker `{job.worker_id}`")
    parts.append(retries(job))
    return " · ".join(parts)


def retries(job: Job) -> str:
    return f"retries {job.retry_count}/{job.max_retries}"


def error(job: Job) -> str | None:
    return f":red[{_escape(job.last_error)}]" if job.last_error else None


def output_summary(output: Any, limit: int = 400) -> str:
    """A short, readable account of a job's output (the full JSON is one click away)."""
    if output is None:
        return "no output"
    if isinstance(output, Mapping):
        items = [f"{key}: {_scalar(value)}" for key, value in list(output.items())[:8]]
        more = len(output) - len(items)
        text = "; ".join(items) + (f"; … {more} more" if more > 0 else "")
    else:
        text = _scalar(output)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value if len(value) <= 80 else value[:79] + "…"
    if isinstance(value, list):
        return f"[{len(value)} items]"
    if isinstance(value, Mapping):
        return f"{{{len(value)} fields}}"
    return json.dumps(value)


def timeline_rows(events: list[JobEvent]) -> list[dict[str, str]]:
    return [
        {
            "at": event.created_at.strftime("%H:%M:%S.%f")[:-3] if event.created_at else "",
            "event": event.event,
            "worker": event.worker_id or "",
            "detail": json.dumps(dict(event.detail), default=str) if event.detail else "",
        }
        for event in events
    ]


def group_title(status: JobStatus, count: int) -> str:
    return f"{GROUP_TITLES[status]} ({count:,})"


# Messages for the flash (toasts) ------------------------------------------------------------------
def cancel_message(result: CancelResult, running: bool, ack_timeout: float) -> Message:
    """The outcome of Cancel & Delete; ``running``: a worker held the job when it was asked."""
    outcome = result.outcome
    job = short_id(outcome.job_id)
    if isinstance(outcome, NotFound):
        return "info", f"Job {job} is already gone; nothing to cancel."
    if isinstance(outcome, NotAllowed) and outcome.status is not JobStatus.CANCELLED:
        return "info", f"Job {job} already {outcome.status.value}; nothing to cancel."
    if not result.deleted:
        return "info", f"Job {job} was cancelled and is already gone."
    if result.acknowledged:
        stopped = f"in {result.stop_ms:.0f} ms" if result.stop_ms is not None else "(acknowledged)"
        return "success", f"Cancelled and deleted job {job} — worker stopped {stopped}"
    if running:
        return (
            "warning",
            f"Cancelled and deleted job {job} without the worker's acknowledgement "
            f"(none within {ack_timeout:g} s; it stops when it next hears from the database)",
        )
    return "success", f"Cancelled and deleted job {job} (no worker had started it)"


def outcome_message(action: str, outcome: Outcome) -> Message:
    """(kind, text) for Force Fail, Retry and X."""
    job = short_id(outcome.job_id)
    match outcome:
        case Done():
            return "success", _DONE[action].format(job=job)
        case NotFound():
            return "info", f"Job {job} is already gone; nothing to {_VERB[action]}."
        case NotAllowed(status=status):
            return "info", f"Job {job} is {status.value} now; nothing to {_VERB[action]}."
        case _:
            assert_never(outcome)


_DONE = {
    "force_fail": "Force-failed job {job}; its worker stops now.",
    "retry": "Job {job} is pending again and will run shortly.",
    "dismiss": "Removed job {job}.",
}
_VERB = {"force_fail": "force-fail", "retry": "retry", "dismiss": "remove"}


def bulk_message(result: BulkCancelResult, running: int, acknowledged: int) -> Message:
    if not result.cancelled:
        return "info", "Nothing was pending or processing; nothing to cancel."
    stopped = len(result.deleted)
    text = (
        f"Cancelled all processing: {stopped} job{'s' if stopped != 1 else ''} stopped and deleted"
    )
    if running:
        text += f" ({acknowledged} of {running} running acknowledged by their worker)"
    return "success", text + "."


def upload_message(filename: str, job_id: uuid.UUID) -> Message:
    return "success", f"Uploaded {filename}; job {short_id(job_id)} is queued."


def _escape(text: str | None) -> str:
    """Text from the database shown as Markdown: no accidental formatting or directives."""
    if not text:
        return ""
    for char in "\\`*_[]<>:#|~$":
        text = text.replace(char, "\\" + char)
    return text
