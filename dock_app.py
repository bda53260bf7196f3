"""The Processing Dock: ``streamlit run dock_app.py``. Wiring only; the parts live in ``dock/``.

The page draws from the process-wide live mirror; browsers never query the database. A tiny
watcher fragment redraws the page only when the mirror changed since the job panel was drawn
(or relative times must move on). It runs when the dock pushes a change (``dock.push``, served
by ``dock_server.py``), or else every ``DOCK_REFRESH_SECONDS`` (≤ 1 s).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import streamlit as st

from dock import callbacks, push, resources, state, views
from dock.mirror import MirrorSnapshot
from jobdock.models import Job, JobEvent

views.page()
state.init()
settings, options, mirror = resources.settings(), resources.options(), resources.mirror()
views.header(settings.supabase_url)
views.uploader(settings.upload_limit_bytes)
if state.confirming():
    views.confirm_cancel_all(mirror.snapshot())


def seen(snapshot: MirrorSnapshot) -> state.Seen:
    step = int(time.time() // options.idle_refresh_seconds)
    return state.Seen(snapshot.version, snapshot.live, step)


def timeline(job: Job) -> list[JobEvent]:
    """Read again only when the job or its stop acknowledgement changed."""
    stop = mirror.snapshot().stops.get(job.id)
    return resources.timeline(str(job.id), f"{job.updated_at}|{stop.id if stop else ''}")


@st.fragment
def job_panel() -> None:
    """The jobs; its buttons rerun only the panel."""
    snapshot = resources.first_rows(mirror)
    state.drawn(seen(snapshot))
    views.flashes(state.take_flashes())
    requested = list(state.deleting())
    slots = views.job_panel(snapshot, options, datetime.now(UTC), timeline)
    for job_id in requested:  # a row not on screen (gone, or beyond "show more") spins below
        with slots.get(job_id) or st.empty(), st.spinner("deleting…"):
            callbacks.run_cancel_delete(job_id)
    if requested:
        # The whole page, not just the panel: a fragment rerun here can meet the watcher's run
        # for the same change (pushed at once), and the browser then kept the deleted row on
        # screen until the next redraw. A full run supersedes both and clears it.
        views.redraw()


@st.fragment(run_every=options.idle_refresh_seconds)
def watch_mirror() -> None:
    """Draws nothing but the push listener; redraws the page when the panel is behind the
    mirror. It runs when the dock pushes a change, on the listener's own timer while there is
    no push (``streamlit run dock_app.py``, or the socket is down), and now and then so that
    relative times move on."""
    push.watch(options.refresh_seconds)
    if state.outdated(seen(mirror.snapshot())):
        views.redraw()


job_panel()
watch_mirror()
