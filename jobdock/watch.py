"""``jobdock watch``: a live tail of job changes over Supabase Realtime."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from realtime.types import PostgresChangesPayload, RealtimePostgresChangesListenEvent

from jobdock.clients import async_client


def describe(payload: dict[str, Any]) -> dict[str, Any]:
    """One job change as a flat record: type, id, status, progress, error."""
    data = payload.get("data", payload)
    row = data.get("record") or data.get("old_record") or {}
    progress = row.get("progress") or {}
    return {
        "at": data.get("commit_timestamp"),
        "change": data.get("type"),
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
    """Print every change to ``background_jobs`` until cancelled."""
    client = await async_client()
    subscribed = asyncio.Event()

    def on_change(payload: PostgresChangesPayload) -> None:
        change = describe(dict(payload))
        emit(json.dumps(change) if as_json else render(change))

    channel = client.channel("jobdock-watch")
    channel.on_postgres_changes(
        RealtimePostgresChangesListenEvent.All, on_change, schema="public", table="background_jobs"
    )
    channel.on_system(lambda payload: subscribed.set())
    await channel.subscribe()
    try:
        await asyncio.wait_for(subscribed.wait(), timeout=15)
        emit("watching background_jobs (Ctrl-C to stop)")
        await asyncio.Event().wait()
    finally:
        await client.remove_all_channels()
