"""Which workers are online: their presence on the private topic ``jobdock:workers``, or, when
Realtime cannot be reached, the ``job_workers`` heartbeats (what ``jobdock workers`` shows)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from jobdock.backend import backend, rows_of
from jobdock.clients import realtime_client
from jobdock.models import WorkerInfo, WorkerPresence
from jobdock.settings import Settings
from supabase import Client

#: The private topic workers track their presence on.
TOPIC = "jobdock:workers"
PRESENCE_TIMEOUT_SECONDS = 5.0


def presence_params(key: str = "") -> dict[str, Any]:
    """A channel's join options on ``TOPIC``: private, presence on (``key``: the tracker's)."""
    return {"config": {"private": True, "presence": {"key": key, "enabled": True}}}


def workers_in(state: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, WorkerPresence]:
    """The workers in a channel's presence state, by id (metas that are not a worker's are
    left out)."""
    workers = (WorkerPresence.from_meta(meta) for metas in state.values() for meta in metas)
    return {w.worker_id: w for w in workers if w is not None}


@dataclass(frozen=True)
class Roster:
    """The workers online, and where that came from (``heartbeats``: Realtime was not
    reachable, ``reason`` says why)."""

    source: Literal["presence", "heartbeats"]
    workers: tuple[WorkerPresence, ...]
    reason: str | None = None


async def from_presence(settings: Settings) -> tuple[WorkerPresence, ...]:
    """The presence state right after joining; raises ``TimeoutError`` (after
    ``PRESENCE_TIMEOUT_SECONDS``) or a connection error."""
    client = realtime_client(settings, auto_reconnect=False)
    synced = asyncio.Event()
    try:
        async with asyncio.timeout(PRESENCE_TIMEOUT_SECONDS):
            await client.connect()
            channel = client.channel(TOPIC, params=presence_params())  # type: ignore[arg-type]
            channel.on_presence_sync(synced.set)
            await channel.subscribe()
            await synced.wait()
        online = workers_in(channel.presence_state())
        return tuple(online[worker_id] for worker_id in sorted(online))
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.close(), 2)


def from_heartbeats(client: Client) -> tuple[WorkerPresence, ...]:
    """The workers whose heartbeat is within their lease (running counts are not known)."""
    with backend("read workers"):
        rows = rows_of(client.table("job_workers").select("*").order("id").execute().data)
    now = datetime.now(UTC)
    return tuple(
        WorkerPresence(
            info.id, row.get("hostname"), row.get("pid"), 0, 0, info.job_types, None, None
        )
        for row in rows
        if (info := WorkerInfo.from_row(row)).live(now)
    )


def online(client: Client, settings: Settings) -> Roster:
    try:
        return Roster("presence", asyncio.run(from_presence(settings)))
    except Exception as exc:  # unreachable, refused, timed out: say so, use the heartbeats
        reason = f"{type(exc).__name__}: {exc}".strip(": ") or type(exc).__name__
        return Roster("heartbeats", from_heartbeats(client), reason)
