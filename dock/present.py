"""How jobs and outcomes read on screen: labels, badges, relative times, messages.

Pure functions of their arguments (no Streamlit, no I/O), so they are unit-tested on their own.
A job's text, badge and progress bar are one small HTML fragment (``job_html``, styled by
``JOB_CSS``): one light element per row instead of several Streamlit elements keeps a page of
rows quick to draw in the browser. Text from the database is escaped there, once.
"""

from __future__ import annotations

import html
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, assert_never

from jobdock.actions import BulkCancelResult, CancelResult, Done, NotAllowed, NotFound, Outcome
from jobdock.models import Job, JobEvent, JobStatus, WorkerInfo

if TYPE_CHECKING:
    from dock.mirror import MirrorSnapshot

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
    """``processing``, ``failed · retry in 4 s``."""
    label = job.status.value
    if job.awaiting_retry and job.next_retry_at is not None:
        wait = (job.next_retry_at - now).total_seconds()
        label += " · retry " + (f"in {wait:.0f} s" if wait >= 1 else "due")
    return label


def progress(job: Job, handled: frozenset[str] | None = None) -> tuple[float, str] | None:
    """The bar's value (0…1) and its text, for jobs that have or will have progress.
    ``handled``: the job types live workers run (None: not known)."""
    if job.status is JobStatus.COMPLETED:
        return 1.0, "done"
    if job.status is JobStatus.PENDING:
        if handled is not None and job.job_type not in handled:
            return 0.0, f"waiting for a worker — no live worker runs {job.job_type}"
        return 0.0, "waiting for a worker"
    if job.status is not JobStatus.PROCESSING and job.progress.percent is None:
        return None
    percent = max(0.0, min(100.0, job.progress.percent or 0.0))
    text = _stage_text(job) or ("starting" if job.status is JobStatus.PROCESSING else "stopped")
    return percent / 100, f"{text} · {percent:.0f}%"


def _stage_text(job: Job) -> str:
    stage, message = job.progress.stage, job.progress.message
    return " — ".join(part for part in (stage, message) if part)


def times(job: Job, now: datetime) -> str:
    parts = [f"created {ago(job.created_at, now)}"]
    if job.started_at is not None:
        parts.append(f"started {ago(job.started_at, now)}")
    if job.completed_at is not None and job.status is not JobStatus.PROCESSING:
        parts.append(f"finished {ago(job.completed_at, now)}")
        took = duration(job.started_at, job.completed_at)
        if took:
            parts.append(f"took {took}")
    parts.append(retries(job))
    return " · ".join(parts)


def retries(job: Job) -> str:
    return f"retries {job.retry_count}/{job.max_retries}"


#: The page's stylesheet for ``job_html``. Colours suit the light and the dark theme alike.
JOB_CSS = """
.dock-job { line-height: 1.6; overflow-wrap: anywhere; }
.dock-job code { font-size: 0.875em; padding: 0.1em 0.3em; border-radius: 0.25rem;
  background: rgba(128, 128, 128, 0.14); }
.dock-badge { display: inline-block; margin-left: 0.5rem; padding: 0 0.4rem; border-radius: 0.25rem;
  font-size: 0.875rem; }
.dock-gray { background: rgba(128, 128, 128, 0.16); }
.dock-blue { background: rgba(28, 131, 225, 0.14); color: #1c6cc7; }
.dock-green { background: rgba(33, 195, 84, 0.14); color: #17803d; }
.dock-red { background: rgba(255, 43, 43, 0.12); color: #d92d20; }
.dock-orange { background: rgba(255, 164, 33, 0.16); color: #b25e00; }
.dock-times, .dock-stage { font-size: 0.875rem; opacity: 0.72; }
.dock-error { color: #d92d20; }
.dock-bar { height: 0.5rem; border-radius: 0.25rem; background: rgba(128, 128, 128, 0.2);
  overflow: hidden; }
.dock-bar > div { height: 100%; background: #ff4b4b; }
"""


@dataclass(frozen=True)
class Fleet:
    """What the dock knows of the workers, for a job's row: the job types live workers run
    (``job_workers``), who is online (presence; None: not known), who went offline when, and
    each worker's heartbeat and lease."""

    handled: frozenset[str] | None = None
    online: frozenset[str] | None = None
    offline_since: Mapping[str, datetime] = field(default_factory=dict)
    roster: Mapping[str, WorkerInfo] = field(default_factory=dict)

    @classmethod
    def of(cls, snapshot: MirrorSnapshot) -> Fleet:
        online = None if snapshot.workers is None else frozenset(snapshot.workers)
        return cls(snapshot.handled_types, online, snapshot.offline_since, snapshot.roster)


#: A worker offline for less than this is not flagged (a rejoin, a slow heartbeat).
OFFLINE_GRACE_SECONDS = 3.0


def worker_note(job: Job, fleet: Fleet, now: datetime) -> tuple[str, bool] | None:
    """For a processing job: its worker and whether it is online; ``(text, alarming)``."""
    if job.status is not JobStatus.PROCESSING or not job.worker_id:
        return None
    worker = job.worker_id
    if fleet.online is None:
        return f"worker {worker}", False
    if worker in fleet.online:
        return f"worker {worker} online", False
    since = fleet.offline_since.get(worker)
    gone = (now - since).total_seconds() if since is not None else None
    if gone is not None and gone < OFFLINE_GRACE_SECONDS:
        return f"worker {worker}", False
    text = f"worker {worker} offline" + (f" {gone:.0f} s" if gone is not None else "")
    info = fleet.roster.get(worker)
    if info is not None and info.heartbeat_at is not None:
        left = info.lease_seconds - (now - info.heartbeat_at).total_seconds()
        text += f" — lease expires in {left:.0f} s" if left > 0 else " — lease expired"
    else:
        text += " — lease expired"
    return text, True


def workers_line(snapshot: MirrorSnapshot) -> str | None:
    """``3 workers online · 12 running · 4 free slots`` (None: presence not known). Who is
    online and their slots come from presence; what runs on them from the jobs themselves,
    which are current (a worker tracks its running count at most every 6 s)."""
    if snapshot.workers is None:
        return None
    workers = list(snapshot.workers.values())
    if not workers:
        return "no worker online"
    running = sum(
        1 for job in snapshot.groups[JobStatus.PROCESSING] if job.worker_id in snapshot.workers
    )
    free = max(0, sum(w.concurrency for w in workers) - running)
    plural = "s" if len(workers) != 1 else ""
    return (
        f"{len(workers)} worker{plural} online · {running} running · "
        f"{free} free slot{'s' if free != 1 else ''}"
    )


def job_html(job: Job, now: datetime, fleet: Fleet | None = None) -> str:
    """The job as one HTML fragment: title · file · id + badge, times, its worker, error,
    progress bar. ``fleet``: what is known of the workers (None: nothing)."""
    fleet = fleet or Fleet()
    head = [f"<b>{_escape(job.job_type)}</b>"]
    if job.filename:
        head.append(f"<code>{_escape(job.filename)}</code>")
    head.append(f"<code>{short_id(job.id)}</code>")
    color = BADGE_COLORS[job.status]
    parts = [
        '<div class="dock-job"><div>',
        " · ".join(head),
        f'<span class="dock-badge dock-{color}">{_escape(badge(job, now))}</span></div>',
        f'<div class="dock-times">{_escape(times(job, now))}</div>',
    ]
    if job.last_error:
        parts.append(f'<div class="dock-error">{_escape(job.last_error)}</div>')
    note = worker_note(job, fleet, now)
    if note is not None:
        text, alarming = note
        css = "dock-error" if alarming else "dock-times"
        parts.append(f'<div class="{css}">{_escape(text)}</div>')
    bar = progress(job, fleet.handled)
    if bar is not None:
        value, text = bar
        parts.append(
            f'<div class="dock-stage">{_escape(text)}</div>'
            f'<div class="dock-bar" role="progressbar" aria-valuenow="{value * 100:.0f}" '
            f'aria-valuemin="0" aria-valuemax="100"><div style="width: {value:.1%}"></div></div>'
        )
    parts.append("</div>")
    return "".join(parts)


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
    """Text from the database shown in HTML: never markup."""
    return html.escape(text or "")
