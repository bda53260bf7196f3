"""``jobdock watch``: a live tail of job changes over Supabase Realtime.

It ends, with ``BackendUnavailable``, when Realtime cannot be reached or the channel is lost:
a tail that silently stops printing would look like a quiet queue.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from realtime import AsyncRealtimeChannel, AsyncRealtimeClient
from realtime.types import PostgresChangesPayload, RealtimePostgresChangesListenEvent

from jobdock.clients import realtime_client
from jobdock.errors import BackendUnavailable
from jobdock.realtime import ChannelLost, Listener, LiveChannel
from jobdock.settings import get_settings

#: How long connecting and joining the channel may take before the watch gives up.
SUBSCRIBE_TIMEOUT_SECONDS = 15.0


def describe(payload: dict[str, Any]) -> dict[str, Any]:
    """One job change as a flat record: type, id, status, progress, error."""
    data = payload.get("data", payload)
    row = data.get("record") or data.get("old_record") or {}
    progress = row.get("progress") or {}
    kind = data.get("type")
    return {
        "at": data.get("commit_timestamp"),
        "change": getattr(kind, "value", kind),  # the SDK's enum, as INSERT
        "id": row.get("id"),
        "job_type": row.get("job_type"),
        "status": row.get("status"),
        "percent": progress.get("percent"),
        "stage": progress.get("stage"),
        "error": row.get("last_error"),
    }


def render(change: dict[str, Any]) -> str:
    parts = [str(change["at"]), f"{change['change']:<6}", str(change["id"])]
    for key in ("job_type", "status"):
        if change.get(key):
            parts.append(str(change[key]))
    if change.get("percent") is not None:
        parts.append(f"{change['percent']:.0f}%")
    if change.get("stage"):
        parts.append(str(change["stage"]))
    if change.get("error"):
        parts.append(f"error: {change['error']}")
    return "  ".join(parts)


async def watch(emit: Callable[[str], None], *, as_json: bool = False) -> None:
    """Print every change to ``background_jobs`` until cancelled, or until the channel is
    lost (``BackendUnavailable``; no reconnect, so nothing is missed silently)."""

    def on_change(payload: PostgresChangesPayload) -> None:
        change = describe(dict(payload))
        emit(json.dumps(change) if as_json else render(change))

    def bind(channel: AsyncRealtimeChannel) -> None:
        channel.on_postgres_changes(
            RealtimePostgresChangesListenEvent.All,
            on_change,
            schema="public",
            table="background_jobs",
        )

    def on_live(live: bool, problem: str | None) -> None:
        if live:
            emit("watching background_jobs (Ctrl-C to stop)")

    settings = get_settings()  # a malformed setting is a usage error, not an unreachable server

    async def connect() -> AsyncRealtimeClient:
        client = realtime_client(settings, auto_reconnect=False)
        await client.connect()
        return client

    channel = LiveChannel(
        connect,
        "jobdock-watch",
        Listener(bind, on_live),
        rebuild_after_seconds=SUBSCRIBE_TIMEOUT_SECONDS,
        once=True,
        name="watch",
    )
    try:
        await channel.run()
    except ChannelLost as lost:
        if channel.confirmations:
            raise BackendUnavailable(f"watch stopped: {lost}") from lost
        raise BackendUnavailable(
            f"watch failed: cannot reach Supabase Realtime ({lost}). Is localbase running"
            " (make up)?"
        ) from lost
