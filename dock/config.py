"""Where Supabase is, and the dock's timings.

Supabase settings come from the environment / ``.env`` (``jobdock.settings``); a
``.streamlit/secrets.toml`` may supply them too, either at the root (``SUPABASE_URL = …``, which
Streamlit also exports to the environment) or in a ``[supabase]`` table (``url``, ``anon_key``,
``service_role_key``). Values in ``secrets.toml`` win, as they do for any Streamlit app. The
service key is only ever used on the server.

Timings come from ``DOCK_*`` environment variables (``DOCK_REFRESH_SECONDS=0.5`` …).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from dock.present import RECENT_STEP_SECONDS
from jobdock.settings import Settings

_SECRET_NAMES = {
    "supabase_url": ("SUPABASE_URL", "url"),
    "supabase_anon_key": ("SUPABASE_ANON_KEY", "anon_key"),
    "supabase_service_role_key": ("SUPABASE_SERVICE_ROLE_KEY", "service_role_key"),
}


class DockOptions(BaseSettings):
    """How often the dock refreshes and how long it waits; all configurable for tests."""

    model_config = SettingsConfigDict(
        env_prefix="DOCK_", env_file=".env", extra="ignore", frozen=True
    )

    #: How often each page checks the mirror for changes (at most 1 s: changes show within it).
    #: The job panel is drawn again only when something changed.
    refresh_seconds: float = Field(default=0.5, gt=0, le=1.0)
    #: With no change, the panel is still redrawn this often, to move relative times on.
    idle_refresh_seconds: float = Field(default=RECENT_STEP_SECONDS, gt=0)
    #: REST refresh of the mirror while realtime is down.
    fallback_refresh_seconds: float = Field(default=5.0, gt=0)
    #: REST resync while realtime is live: a safety net, as delivery is at most once.
    resync_seconds: float = Field(default=60.0, gt=0)
    #: Rebuild the realtime client after this long without a subscription.
    stale_after_seconds: float = Field(default=10.0, gt=0)
    #: Cancel & Delete: how long to wait for a running job's worker to acknowledge the stop.
    #: A worker hearing over Realtime answers in milliseconds; the row must be gone within a
    #: second either way, so a silent worker is not waited for longer than this.
    ack_timeout_seconds: float = Field(default=0.6, ge=0)
    #: Cancel & Delete of a job no worker holds: the pause between cancel and delete.
    cancel_wait_seconds: float = Field(default=0.1, ge=0)
    #: Cancel all processing: the longest wait for the workers before deleting.
    bulk_cancel_wait_seconds: float = Field(default=2.0, ge=0)
    #: Rows shown per status group before "Show more". The browser's work for a page grows with
    #: every row (about 25 ms each on a small machine): five keep a new tab well under 2 s.
    rows_per_group: int = Field(default=5, ge=1)
    #: Rows added by one click on "Show more".
    rows_more: int = Field(default=25, ge=1)


def supabase_settings(secrets: Mapping[str, Any] | None = None) -> Settings:
    """``jobdock`` settings, with any Supabase values found in ``secrets`` taking precedence."""
    overrides: dict[str, Any] = {}
    table = secrets.get("supabase") if secrets else None
    for field, (root_name, table_name) in _SECRET_NAMES.items():
        if isinstance(table, Mapping) and table.get(table_name):
            overrides[field] = str(table[table_name])
        elif secrets and secrets.get(root_name):
            overrides[field] = str(secrets[root_name])
    return Settings(**overrides)
