"""Session-state keys (constants, initialised once per session), widget keys, flash messages.

Widget keys carry the job id, so a button always acts on the row it was drawn in, whatever
the order of the rows when it is clicked.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import streamlit as st

from dock.present import Kind
from jobdock.models import JobStatus

FLASH = "dock.flash"  # list[Flash]: messages to show once, then drop
DELETING = "dock.deleting"  # list[str]: job ids whose Cancel & Delete runs in this session
SHOWN = "dock.shown"  # dict[str, int]: rows shown per status group
UPLOADS = "dock.uploads"  # int: bumped after an upload, so the uploader starts empty again
UPLOADED = "dock.uploaded"  # set[str]: uploader file ids already enqueued in this session
RENDERED = "dock.rendered"  # Seen | None: what the job panel last drew, for the watcher
CONFIRMING = "dock.confirming"  # bool: the "Cancel all processing?" dialog is open


@dataclass(frozen=True)
class Flash:
    kind: Kind
    text: str


@dataclass(frozen=True)
class Seen:
    """What the panel drew from: the mirror's version and state, and the relative-time step."""

    version: int
    live: bool
    step: int


def init() -> None:
    defaults: dict[str, Any] = {
        FLASH: [],
        DELETING: [],
        SHOWN: {},
        UPLOADS: 0,
        UPLOADED: set(),
        RENDERED: None,
        CONFIRMING: False,
    }
    for key, value in defaults.items():
        if key not in st.session_state:
            st.session_state[key] = value


def flash(kind: Kind, text: str) -> None:
    st.session_state[FLASH].append(Flash(kind, text))


def take_flashes() -> list[Flash]:
    messages: list[Flash] = st.session_state[FLASH]
    st.session_state[FLASH] = []
    return messages


def drawn(seen: Seen) -> None:
    st.session_state[RENDERED] = seen


def outdated(seen: Seen) -> bool:
    """True when the panel was drawn from something older than ``seen``."""
    drawn: Seen | None = st.session_state[RENDERED]
    return drawn != seen


def first_upload(file_id: str) -> bool:
    """True the first time ``file_id`` is seen in this session, and from then on False.

    Streamlit can run an uploader's ``on_change`` twice for one selection (a rerun that
    interrupts another replays the same widget state), which must not enqueue the file twice.
    """
    uploaded: set[str] = st.session_state[UPLOADED]
    if file_id in uploaded:
        return False
    uploaded.add(file_id)
    return True


def confirming() -> bool:
    return bool(st.session_state[CONFIRMING])


def deleting() -> list[str]:
    ids: list[str] = st.session_state[DELETING]
    return ids


def shown(status: JobStatus, default: int) -> int:
    count: int = st.session_state[SHOWN].get(status.value, default)
    return count


# Widget keys ------------------------------------------------------------------------------------
def cancel_key(job_id: uuid.UUID) -> str:
    return f"cancel-{job_id}"


def force_fail_key(job_id: uuid.UUID) -> str:
    return f"force-fail-{job_id}"


def retry_key(job_id: uuid.UUID) -> str:
    return f"retry-{job_id}"


def dismiss_key(job_id: uuid.UUID) -> str:
    return f"dismiss-{job_id}"


def details_key(job_id: uuid.UUID) -> str:
    return f"details-{job_id}"


def row_key(job_id: uuid.UUID) -> str:
    return f"job-{job_id}"


def more_key(status: JobStatus) -> str:
    return f"more-{status.value}"


def fewer_key(status: JobStatus) -> str:
    return f"fewer-{status.value}"


def uploader_key() -> str:
    return f"upload-{st.session_state[UPLOADS]}"


CANCEL_ALL = "bulk-cancel"
CANCEL_ALL_CONFIRM = "bulk-cancel-confirm"
CANCEL_ALL_ABORT = "bulk-cancel-abort"
