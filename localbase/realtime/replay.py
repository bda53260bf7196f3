"""Stored broadcasts: replaying them to a joining private channel, and their retention
(spec ``realtime-broadcast.md`` §4.1, §5).

Replay returns the newest *n* private broadcasts of the topic since ``since``, oldest first,
as ``broadcast`` payloads whose ``meta`` says ``replayed``. Rows older than 72 hours are
deleted (hosted drops daily partitions older than that).
"""

from __future__ import annotations

from typing import Final

from psycopg_pool import AsyncConnectionPool

from localbase.realtime.broadcast import message_payload
from localbase.realtime.joins import Replay

RETENTION_HOURS: Final = 72
_REPLAY_SQL: Final = """
select id::text, event, payload::text from (
  select id, event, payload, inserted_at from realtime.messages
  where topic = %s and private is true and extension = 'broadcast'
    and inserted_at >= to_timestamp(%s / 1000.0) at time zone 'UTC'
    and inserted_at < now() + interval '1 minute'
    and event is not null and payload is not null
  order by inserted_at desc limit %s
) newest order by inserted_at
"""
_EXPIRE_SQL: Final = (
    "delete from realtime.messages where inserted_at < now() - make_interval(hours => %s)"
)


async def replayed(pool: AsyncConnectionPool, name: str, replay: Replay) -> list[tuple[str, str]]:
    """``(id, broadcast payload JSON)`` of the messages to replay, oldest first."""
    async with pool.connection() as conn:
        cursor = await conn.execute(_REPLAY_SQL, (name, replay.since_ms, replay.limit))
        rows = await cursor.fetchall()
    return [
        (str(row[0]), message_payload(str(row[1]), str(row[2]), str(row[0]), replayed=True))
        for row in rows
    ]


async def expire(pool: AsyncConnectionPool) -> int:
    """Delete messages past the retention; the number deleted."""
    async with pool.connection() as conn:
        cursor = await conn.execute(_EXPIRE_SQL, (RETENTION_HOURS,))
        return cursor.rowcount
