"""What the dock draws: ``st.*`` calls only. Data comes in as arguments; clicks go to
``dock.callbacks``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from dock import callbacks, grouping, present, state
from dock.config import DockOptions
from dock.mirror import CONNECTING, MirrorSnapshot
from dock.state import Flash
from jobdock.formats import CONTENT_TYPES
from jobdock.models import Job, JobEvent, JobStatus

TOAST_ICONS = {
    "success": ":material/check_circle:",
    "info": ":material/info:",
    "warning": ":material/warning:",
    "error": ":material/error:",
}

# Cancel & Delete is red whatever the theme's primary colour; Force Fail stays gray.
STYLE = f"""
<style>
div[class*="st-key-cancel-"] button {{
  background-color: #d92d20; border-color: #d92d20; color: #ffffff;
}}
div[class*="st-key-cancel-"] button:hover {{
  background-color: #b42318; border-color: #b42318; color: #ffffff;
}}
div[class*="st-key-details-"] {{ flex: 1 0 100%; }}  /* a row's Details: a line of its own */
{present.JOB_CSS}
</style>
"""

# What the row buttons do, said once for the page: Streamlit draws a button with a tooltip twice,
# which made a page of rows markedly slower to draw.
LEGEND = (
    "**Cancel & Delete** stops the worker now and deletes the job · **Force Fail** stops it "
    "and keeps the job, failed (the retry policy applies) · **Retry** runs a failed job again "
    "· **X** removes a finished job"
)

Timeline = Callable[[Job], list[JobEvent]]


def page() -> None:
    # A Material icon, not an emoji: checking an emoji loads Streamlit's whole emoji catalogue
    # (about half a second at the first page of a new server).
    st.set_page_config(page_title="Processing Dock", page_icon=":material/inbox:", layout="wide")
    st.html(STYLE)


def header(supabase_url: str) -> None:
    title, actions = st.columns([4, 1], vertical_alignment="bottom")
    title.title("Processing Dock")
    title.caption(f"Background jobs on `{supabase_url}`")
    actions.button(
        "Cancel all processing",
        key=state.CANCEL_ALL,
        icon=":material/cancel:",
        width="stretch",
        on_click=callbacks.on_open_cancel_all,
    )


@st.dialog("Cancel all processing?", on_dismiss=callbacks.on_close_cancel_all)
def confirm_cancel_all(snapshot: MirrorSnapshot) -> None:
    """Stays open across redraws of the page until confirmed, refused or dismissed."""
    processing = snapshot.count(JobStatus.PROCESSING)
    pending = snapshot.count(JobStatus.PENDING)
    active = processing + pending
    if not active:
        st.write("Nothing is pending or processing right now.")
    else:
        jobs = "job" if active == 1 else "jobs"
        st.write(
            f"This cancels **{processing:,} processing** and **{pending:,} pending** {jobs} "
            "and deletes them. Their workers stop at once."
        )
    confirm, keep = st.columns(2)
    if confirm.button(
        "Cancel and delete all",
        key=state.CANCEL_ALL_CONFIRM,
        type="primary",
        on_click=callbacks.on_cancel_all,
        width="stretch",
    ):
        st.rerun()
    if keep.button(
        "Keep them",
        key=state.CANCEL_ALL_ABORT,
        on_click=callbacks.on_close_cancel_all,
        width="stretch",
    ):
        st.rerun()


def uploader(limit_bytes: int) -> None:
    key = state.uploader_key()
    kinds = sorted(CONTENT_TYPES)
    names = ", ".join(kind.lstrip(".").upper() for kind in kinds)
    megabytes = max(1, limit_bytes // 2**20)
    # No ``type=`` filter: every file reaches ``jobdock.documents.validate``, whose message
    # says what is accepted, the same in the browser and in the tests.
    st.file_uploader(
        f"Upload a document ({names}; up to {megabytes} MB each)",
        accept_multiple_files=True,
        key=key,
        on_change=callbacks.on_upload,
        args=(key,),
        max_upload_size=megabytes,
        help="The file is stored in Supabase Storage and a process_document job is queued.",
    )


def flashes(messages: list[Flash]) -> None:
    for message in messages:
        st.toast(message.text, icon=TOAST_ICONS[message.kind], duration="long")


def connection(snapshot: MirrorSnapshot, options: DockOptions) -> None:
    workers = present.workers_line(snapshot)
    if snapshot.live:
        st.caption(f":green[●] live · {workers + ' · ' if workers else ''}{LEGEND}")
        return
    if snapshot.problem == CONNECTING and snapshot.synced_at is not None:
        st.caption(f":gray[●] connecting… · {LEGEND}")  # a new server, rows read, subscribing
        return
    st.warning(
        f"Live updates are unavailable — {snapshot.problem or 'reconnecting'}. "
        f"The list is refreshed from the database every {options.fallback_refresh_seconds:g} s "
        "until realtime is back.",
        icon=":material/cloud_off:",
    )
    st.caption(LEGEND)


def job_panel(
    snapshot: MirrorSnapshot,
    options: DockOptions,
    now: datetime,
    timeline: Timeline,
) -> dict[str, DeltaGenerator]:
    """All groups; returns the spinner slots of the rows whose Cancel & Delete should run."""
    connection(snapshot, options)
    if not snapshot.jobs:
        if snapshot.synced_at is None:
            st.info("Loading the jobs…", icon=":material/hourglass_top:")
        else:
            st.info("No jobs yet. Upload a document to start one.", icon=":material/description:")
        return {}
    deleting = set(state.deleting())
    fleet = present.Fleet.of(snapshot)
    slots: dict[str, DeltaGenerator] = {}
    for status in grouping.GROUP_ORDER:
        jobs = snapshot.groups[status]
        if jobs:
            limit = state.shown(status, options.rows_per_group)
            slots.update(job_group(status, jobs, limit, options, now, deleting, timeline, fleet))
    return slots


def job_group(
    status: JobStatus,
    jobs: tuple[Job, ...],
    limit: int,
    options: DockOptions,
    now: datetime,
    deleting: set[str],
    timeline: Timeline,
    fleet: present.Fleet | None = None,
) -> dict[str, DeltaGenerator]:
    st.subheader(present.group_title(status, len(jobs)))
    slots = {}
    for job in jobs[:limit]:
        slot = job_row(job, now, str(job.id) in deleting, timeline, fleet)
        if slot is not None:
            slots[str(job.id)] = slot
    hidden, shrinkable = len(jobs) - limit, limit > options.rows_per_group
    if hidden <= 0 and not shrinkable:
        return slots
    more = fewer = st.container(horizontal=True)
    if hidden > 0:
        more.button(
            f"Show {min(hidden, options.rows_more):,} more ({hidden:,} not shown)",
            key=state.more_key(status),
            on_click=callbacks.on_show_more,
            args=(status.value,),
            type="tertiary",
        )
    if shrinkable:
        fewer.button(
            "Show fewer",
            key=state.fewer_key(status),
            on_click=callbacks.on_show_fewer,
            args=(status.value,),
            type="tertiary",
        )
    return slots


def job_row(
    job: Job,
    now: datetime,
    deleting: bool,
    timeline: Timeline,
    fleet: present.Fleet | None = None,
) -> DeltaGenerator | None:
    """Few, light elements per row, as a browser's work grows with every element of the page:
    the job (one HTML fragment: text, badge, progress bar), its buttons, and Details."""
    row = st.container(
        border=True, key=state.row_key(job.id), horizontal=True, vertical_alignment="center"
    )
    row.html(present.job_html(job, now, fleet))
    slot = row.empty() if deleting else None
    if slot is not None:
        slot.caption("deleting…")
    else:
        job_buttons(job, row)
    with row:
        details(job, timeline)
    return slot


def job_buttons(job: Job, row: DeltaGenerator) -> None:
    """The buttons the job's state allows, at the right end of ``row`` (see ``LEGEND``)."""
    job_id = str(job.id)
    if job.can_cancel():
        row.button(
            "Cancel & Delete",
            key=state.cancel_key(job.id),
            type="primary",
            on_click=callbacks.on_cancel_delete,
            args=(job_id,),
        )
    if job.can_force_fail():
        row.button(
            "Force Fail",
            key=state.force_fail_key(job.id),
            on_click=callbacks.on_force_fail,
            args=(job_id,),
        )
    if job.can_retry():
        row.button(
            "Retry",
            key=state.retry_key(job.id),
            on_click=callbacks.on_retry,
            args=(job_id,),
        )
    if job.can_dismiss():
        row.button(
            "X",
            key=state.dismiss_key(job.id),
            on_click=callbacks.on_dismiss,
            args=(job_id,),
        )


def details(job: Job, timeline: Timeline) -> None:
    expander = st.expander(
        "Details", key=state.details_key(job.id), on_change="rerun", type="compact"
    )
    if not expander.open:
        return  # closed: nothing is read or sent
    with expander:
        inputs, outputs = st.columns(2)
        inputs.markdown("**Input**")
        inputs.json(dict(job.input_data), expanded=1)
        outputs.markdown("**Output**")
        outputs.write(present.output_summary(job.output_data))
        if job.output_data is not None:
            outputs.json(job.output_data, expanded=False)
        st.markdown("**Timeline**")
        events = present.timeline_rows(timeline(job))
        if events:
            st.table(events, hide_index=True)
        else:
            st.caption("no events recorded")
        st.caption(f"id `{job.id}` · worker `{job.worker_id or '—'}`")


def redraw() -> None:
    """Run the whole page again: the watcher saw a change the panel has not drawn, or a
    Cancel & Delete has just finished."""
    st.rerun()
