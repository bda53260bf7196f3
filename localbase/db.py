"""Connections to the cluster, and the per-request transaction that runs as the JWT's role.

Every API request runs in one transaction on a connection logged in as ``authenticator``,
which then switches to the JWT's role and publishes the claims exactly like PostgREST does
(``set_config('role', …)``, ``request.jwt.claims``, …). Grants and RLS are therefore real.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from localbase.auth import Identity

_CONTEXT_SQL = (
    "select set_config('search_path', %s, true), set_config('role', %s, true),"
    " set_config('request.jwt.claims', %s, true), set_config('request.method', %s, true),"
    " set_config('request.path', %s, true), set_config('request.headers', %s, true)"
)
_LEGACY_CLAIMS_SQL = (
    "select set_config('request.jwt.claim.role', %s, true),"
    " set_config('request.jwt.claim.sub', %s, true), set_config('request.jwt', %s, true)"
)


@dataclass(frozen=True)
class RequestContext:
    """What a request publishes to SQL before its main statement."""

    identity: Identity
    method: str
    path: str
    headers: Mapping[str, str]
    schema: str = "public"
    read_only: bool = False
    legacy_claims: bool = False  # Storage also sets request.jwt.claim.* (spec §6.6)


class Database:
    """A pool of ``authenticator`` connections (API requests) plus admin access."""

    def __init__(self, api_dsn: str, admin_dsn: str, *, max_size: int = 20) -> None:
        self.admin_dsn = admin_dsn
        self.pool = AsyncConnectionPool(
            api_dsn,
            min_size=2,
            max_size=max_size,
            open=False,
            kwargs={"autocommit": True, "prepare_threshold": 0},
        )

    async def open(self) -> None:
        await self.pool.open(wait=True, timeout=30)

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def transaction(self, ctx: RequestContext) -> AsyncIterator[psycopg.AsyncConnection]:
        """One transaction as the request's role; rolled back if the body raises."""
        async with self.pool.connection() as conn:
            await conn.execute(b"begin read only" if ctx.read_only else b"begin")
            try:
                await self._publish(conn, ctx)
                yield conn
            except BaseException:
                await _rollback(conn)
                raise
            else:
                await conn.execute(b"commit")

    async def fetch_one(
        self,
        ctx: RequestContext,
        query: sql.Composed,
        params: Sequence[Any],
        check: Callable[[tuple[Any, ...]], None] | None = None,
    ) -> tuple[Any, ...] | None:
        """Run one statement in its own transaction, pipelined into as few round trips as
        possible: begin, context, statement (and commit, when nothing must be checked first).
        ``check`` may raise to roll the transaction back after seeing the result."""
        async with self.pool.connection() as conn:
            try:
                async with conn.pipeline():
                    await conn.execute(b"begin read only" if ctx.read_only else b"begin")
                    await self._publish(conn, ctx)
                    cur = await conn.execute(query, params)
                    if check is None:
                        await conn.execute(b"commit")
                    row: tuple[Any, ...] | None = await cur.fetchone()
                if check is not None:
                    assert row is not None
                    check(row)
                    await conn.execute(b"commit")
            except BaseException:
                await _rollback(conn)
                raise
            return row

    @staticmethod
    async def _publish(conn: psycopg.AsyncConnection, ctx: RequestContext) -> None:
        claims = json.dumps(dict(ctx.identity.claims), separators=(",", ":"))
        headers = json.dumps({k.lower(): v for k, v in ctx.headers.items()})
        search_path = f'"{ctx.schema}", "public", "extensions"'
        await conn.execute(
            _CONTEXT_SQL,
            (search_path, ctx.identity.role, claims, ctx.method, ctx.path, headers),
        )
        if ctx.legacy_claims:
            sub = str(ctx.identity.claims.get("sub", ""))
            await conn.execute(_LEGACY_CLAIMS_SQL, (ctx.identity.role, sub, claims))


async def _rollback(conn: psycopg.AsyncConnection) -> None:
    if not conn.closed and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        try:
            await conn.execute(b"rollback")
        except psycopg.Error:
            await conn.close()
