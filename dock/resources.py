"""Process-wide resources, created once per Streamlit server process (``st.cache_resource``):
the settings, the sync client for actions, and the live mirror. Nothing here clears caches."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from dock.config import DockOptions, supabase_settings
from dock.mirror import JobMirror, MirrorSnapshot
from jobdock.actions import job_timeline
from jobdock.clients import sync_client
from jobdock.models import JobEvent
from jobdock.settings import Settings
from supabase import Client

FIRST_SYNC_SECONDS = 5.0  # the first panel of a new server waits this long for rows, not none


@st.cache_resource(show_spinner=False)
def settings() -> Settings:
    return supabase_settings(_secrets())


@st.cache_resource(show_spinner=False)
def options() -> DockOptions:
    return DockOptions()


def _close_client(client: Client) -> None:
    client.postgrest.session.close()
    client.storage.session.close()


@st.cache_resource(show_spinner=False, on_release=_close_client)
def client() -> Client:
    return sync_client(settings())


def _close(mirror: JobMirror) -> None:
    mirror.close()


@st.cache_resource(show_spinner=False, on_release=_close)
def mirror() -> JobMirror:
    """Started at once and filled in the background: the page's header does not wait for it
    (the job panel does, see ``first_rows``)."""
    tuning = options()
    return JobMirror(
        settings(),
        fallback_interval=tuning.fallback_refresh_seconds,
        stale_after=tuning.stale_after_seconds,
        resync_interval=tuning.resync_seconds,
    ).start()


def first_rows(live: JobMirror) -> MirrorSnapshot:
    """The mirror's snapshot, once it has its first rows: in the first ``FIRST_SYNC_SECONDS`` of
    the mirror a page waits for them; after that (Supabase unreachable) nobody waits."""
    wait = FIRST_SYNC_SECONDS - live.uptime
    if wait > 0:
        live.wait_for(lambda snapshot: snapshot.synced_at is not None, wait)
    return live.snapshot()


def _secrets() -> Mapping[str, Any] | None:
    return st.secrets if st.secrets.load_if_toml_exists() else None


@st.cache_data(show_spinner=False, max_entries=500, ttl=600)
def timeline(job_id: str, changed: str) -> list[JobEvent]:
    """A job's audit trail, read once per change of the job (``changed`` is the cache key)."""
    return job_timeline(client(), job_id)
