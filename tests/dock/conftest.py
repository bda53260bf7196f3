"""Fixtures for the dock: its environment pointed at the test localbase, clean tables, AppTest."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from streamlit.testing.v1 import AppTest

from devstack.localbase import ROOT, LocalbaseProcess
from dock import resources
from jobdock.clients import sync_client
from jobdock.settings import Settings
from supabase import Client

APP = str(ROOT / "dock_app.py")

#: Fast timings: nothing in these tests waits for a worker that is not there. Realtime is at
#: most once, so the mirror's safety resync runs every second instead of every 30.
DOCK_ENV = {
    "DOCK_RESYNC_SECONDS": "1",
    "DOCK_ACK_TIMEOUT_SECONDS": "3",
    "DOCK_CANCEL_WAIT_SECONDS": "0",
    "DOCK_BULK_CANCEL_WAIT_SECONDS": "1",
    "DOCK_FALLBACK_REFRESH_SECONDS": "0.5",
    "DOCK_STALE_AFTER_SECONDS": "3",
    "DOCK_ROWS_PER_GROUP": "3",
    "DOCK_ROWS_MORE": "2",
}


def clear_dock_resources() -> None:
    """Close the mirror and drop the cached settings, so the next run starts afresh."""
    for cached in (resources.mirror, resources.client, resources.options, resources.settings):
        cached.clear()
    resources.timeline.clear()


@pytest.fixture(scope="module")
def dock_env(localbase: LocalbaseProcess) -> Iterator[dict[str, str]]:
    """The dock's environment for this module; its process-wide resources closed afterwards."""
    env = {
        "SUPABASE_URL": localbase.url,
        "SUPABASE_ANON_KEY": localbase.anon_key,
        "SUPABASE_SERVICE_ROLE_KEY": localbase.service_key,
        **DOCK_ENV,
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        clear_dock_resources()
        yield env
        clear_dock_resources()


@pytest.fixture
def clean_jobs(admin_sql: Callable[[str], None]) -> None:
    """Empty the tables with DELETE (not TRUNCATE): a running mirror hears every removal."""
    admin_sql("delete from public.background_jobs; delete from public.job_events")


@pytest.fixture
def jobs_client(localbase: LocalbaseProcess) -> Client:
    return sync_client(Settings(supabase_url=localbase.url))


@pytest.fixture
def app(dock_env: dict[str, str], clean_jobs: None) -> AppTest:
    return AppTest.from_file(APP, default_timeout=30)
