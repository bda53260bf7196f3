"""``jobdock watch``: a live tail of job changes over Supabase Realtime.

It ends, with ``BackendUnavailable``, when Realtime cannot be reached or the channel is lost:
a tail that silently stops printing would look like a quiet queue.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from realtime.types import (
    PostgresChangesPayload,
    RealtimePostgresChangesListenEvent,
    RealtimeSubscribeStates,
)
from websockets.exceptions import WebSocketException

from jobdock.clients import async_client
from jobdock.errors import BackendUnavailable

#: How long connecting and joining the channel may take.
SUBSCRIBE_TIMEOUT_SECONDS = 15.0

State = tuple[RealtimeSubscribeStates, Exception | None]


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


def _lost(state: State) -> BackendUnavailable:
    status, error = state
    reason = f" ({error})" if error else ""
    return BackendUnavailable(f"watch stopped: Realtime reported {status.value.lower()}{reason}")


async def watch(emit: Callable[[str], None], *, as_json: bool = False) -> None:
    """Print every change to ``background_jobs`` until cancelled, or until the channel is
    lost (``BackendUnavailable``; no reconnect, so nothing is missed silently)."""
    client = await async_client(realtime={"auto_reconnect": False})
    states: asyncio.Queue[State] = asyncio.Queue()

    def on_change(payload: PostgresChangesPayload) -> None:
        change = describe(dict(payload))
        emit(json.dumps(change) if as_json else render(change))

    channel = client.channel("jobdock-watch")
    channel.on_postgres_changes(
        RealtimePostgresChangesListenEvent.All, on_change, schema="public", table="background_jobs"
    )
    try:
        try:
            async with asyncio.timeout(SUBSCRIBE_TIMEOUT_SECONDS):
                await channel.subscribe(lambda status, error: states.put_nowait((status, error)))
                state = await states.get()
        except (OSError, WebSocketException, TimeoutError) as exc:
            raise BackendUnavailable(
                f"watch failed: cannot reach Supabase Realtime ({str(exc) or 'timed out'}). "
                "Is localbase running (make up)?"
            ) from exc
        if state[0] is not RealtimeSubscribeStates.SUBSCRIBED:
            raise _lost(state)
        emit("watching background_jobs (Ctrl-C to stop)")
        raise _lost(await states.get())
    finally:
        await client.remove_all_channels()
