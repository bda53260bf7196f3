"""One function per button: call a ``jobdock`` action, write a flash message.

Streamlit runs these before the rerun. Every one is safe to repeat (a double click, a stale
page): the SQL functions decide, and "already finished" outcomes become friendly messages.
Errors from Supabase become a flash message too, never a traceback.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from dock import cancellation, present, resources, state
from jobdock import actions
from jobdock.documents import Upload, upload_document
from jobdock.errors import JobdockError
from jobdock.models import JobStatus, parse_job_id
from supabase import Client


@contextmanager
def reporting() -> Iterator[None]:
    """Turn a jobdock error into a flash message."""
    try:
        yield
    except JobdockError as exc:
        state.flash("error", str(exc))


_ACTIONS: dict[str, Callable[[Client, uuid.UUID], actions.Outcome]] = {
    "force_fail": actions.force_fail,
    "retry": actions.retry,
    "dismiss": actions.dismiss,
}


def _outcome(action: str, job_id: str) -> actions.Outcome | None:
    with reporting():
        outcome = _ACTIONS[action](resources.client(), parse_job_id(job_id))
        state.flash(*present.outcome_message(action, outcome))
        return outcome
    return None


def on_force_fail(job_id: str) -> None:
    _outcome("force_fail", job_id)


def on_retry(job_id: str) -> None:
    _outcome("retry", job_id)


def on_dismiss(job_id: str) -> None:
    outcome = _outcome("dismiss", job_id)
    if isinstance(outcome, actions.Done | actions.NotFound):
        resources.mirror().forget(outcome.job_id)


def on_cancel_delete(job_id: str) -> None:
    """Mark the row; it runs Cancel & Delete under its own spinner (``run_cancel_delete``)."""
    if job_id not in state.deleting():
        state.deleting().append(job_id)


def run_cancel_delete(job_id: str) -> None:
    if job_id not in state.deleting():
        return  # already done by an earlier run
    state.deleting().remove(job_id)
    tuning = resources.options()
    with reporting():
        report = cancellation.cancel_and_delete(
            resources.client(), resources.mirror(), uuid.UUID(job_id), tuning
        )
        state.flash(
            *present.cancel_message(report.result, report.running, tuning.ack_timeout_seconds)
        )


def on_open_cancel_all() -> None:
    st.session_state[state.CONFIRMING] = True


def on_close_cancel_all() -> None:
    st.session_state[state.CONFIRMING] = False


def on_cancel_all() -> None:
    st.session_state[state.CONFIRMING] = False
    with reporting():
        report = cancellation.cancel_all(
            resources.client(), resources.mirror(), resources.options()
        )
        state.flash(*present.bulk_message(report.result, report.running, report.acknowledged))


def on_upload(widget_key: str) -> None:
    files: Sequence[UploadedFile] = st.session_state.get(widget_key) or []
    settings = resources.settings()
    for file in files:
        if not state.first_upload(file.file_id):
            continue
        with reporting():
            job = upload_document(
                resources.client(), Upload(file.name, file.getvalue()), settings=settings
            )
            resources.mirror().note(job)
            state.flash(*present.upload_message(file.name, job.id))
    st.session_state[state.UPLOADS] += 1  # a fresh, empty uploader on the rerun


def on_show_more(status: str) -> None:
    shown: dict[str, int] = st.session_state[state.SHOWN]
    tuning = resources.options()
    shown[status] = shown.get(status, tuning.rows_per_group) + tuning.rows_more


def on_show_fewer(status: str) -> None:
    st.session_state[state.SHOWN].pop(JobStatus(status).value, None)
