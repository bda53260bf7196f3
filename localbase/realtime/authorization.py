"""Realtime Authorization: may these claims read or write a private topic? (spec
``realtime-broadcast.md`` §3.2).

Both checks run against the real database, in one transaction that is always rolled back, with
the JWT's role and claims published as Supabase does (``role``, ``realtime.topic``,
``request.jwt.claims``, ``request.jwt.claim.sub``/``role``, ``request.headers``):

* **read**: probe rows are inserted as the admin, one per extension, and selected back as the
  role; a probe the role can see grants read for its extension;
* **write**: one row per extension is inserted as the role under a savepoint; an RLS or
  privilege error (SQLSTATE 42501) denies write.

``service_role`` bypasses RLS, so it may do everything. A role unknown to the database may do
nothing. No row ever stays.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Final, TypeAlias

import psycopg
from psycopg_pool import AsyncConnectionPool

from localbase.realtime.tokens import Claims

log = logging.getLogger("localbase.realtime")

BROADCAST: Final = "broadcast"
PRESENCE: Final = "presence"
SERVICE_ROLE: Final = "service_role"
_CONTEXT_SQL: Final = (
    "select set_config('role', %s, true), set_config('realtime.topic', %s, true),"
    " set_config('request.jwt.claims', %s, true), set_config('request.jwt.claim.sub', %s, true),"
    " set_config('request.jwt.claim.role', %s, true), set_config('request.headers', %s, true)"
)
_PROBE_SQL: Final = "insert into realtime.messages (id, topic, extension) values (%s, %s, %s)"
_SEE_SQL: Final = "select id, extension from realtime.messages where id = any(%s)"
_WRITE_SQL: Final = "insert into realtime.messages (topic, extension) values (%s, %s)"

#: ``can_read`` or ``can_write``.
Check: TypeAlias = Callable[
    [AsyncConnectionPool, str, Claims, Sequence[str], Mapping[str, str]],
    Awaitable[dict[str, bool]],
]


async def can_read(
    pool: AsyncConnectionPool,
    topic: str,
    claims: Claims,
    extensions: Sequence[str],
    headers: Mapping[str, str],
) -> dict[str, bool]:
    """For each extension, whether ``claims`` may read ``topic`` (the name without
    ``realtime:``)."""
    if claims.role == SERVICE_ROLE:
        return dict.fromkeys(extensions, True)
    probes = {uuid.uuid4(): extension for extension in extensions}
    try:
        async with pool.connection() as conn, conn.transaction(force_rollback=True):
            for probe, extension in probes.items():
                await conn.execute(_PROBE_SQL, (probe, topic, extension))
            await conn.execute(_CONTEXT_SQL, _context(topic, claims, headers))
            cursor = await conn.execute(_SEE_SQL, (list(probes),))
            seen = {str(row[1]) for row in await cursor.fetchall()}
    except psycopg.Error as exc:
        log.info("read check of %r as %s failed: %s", topic, claims.role, str(exc).strip())
        return dict.fromkeys(extensions, False)
    return {extension: extension in seen for extension in extensions}


async def can_write(
    pool: AsyncConnectionPool,
    topic: str,
    claims: Claims,
    extensions: Sequence[str],
    headers: Mapping[str, str],
) -> dict[str, bool]:
    """For each extension, whether ``claims`` may write to ``topic``."""
    if claims.role == SERVICE_ROLE:
        return dict.fromkeys(extensions, True)
    allowed: dict[str, bool] = {}
    try:
        async with pool.connection() as conn, conn.transaction(force_rollback=True):
            await conn.execute(_CONTEXT_SQL, _context(topic, claims, headers))
            for extension in extensions:
                try:
                    async with conn.transaction():
                        await conn.execute(_WRITE_SQL, (topic, extension))
                    allowed[extension] = True
                except psycopg.errors.InsufficientPrivilege:
                    allowed[extension] = False
    except psycopg.Error as exc:
        log.info("write check of %r as %s failed: %s", topic, claims.role, str(exc).strip())
        return dict.fromkeys(extensions, False)
    return allowed


def _context(topic: str, claims: Claims, headers: Mapping[str, str]) -> tuple[str, ...]:
    sub = claims.values.get("sub")
    return (
        claims.role,
        topic,
        claims.json,
        "" if sub is None else str(sub),
        claims.role,
        json.dumps(dict(headers)),
    )
