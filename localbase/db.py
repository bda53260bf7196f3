"""Connections to the cluster, and the per-request transaction that runs as the JWT's role.

Every API request runs in one transaction on a connection logged in as ``authenticator``,
which then switches to the JWT's role and publishes the claims exactly like PostgREST does
(``set_config('role', …)``, ``request.jwt.claims``, …). Grants and RLS are therefore real.

The switched-to role's own timeouts (``alter role anon set statement_timeout = '3s'``) are
applied in the transaction too, as PostgREST's impersonated role settings are; roles without
one keep ``authenticator``'s.

While PostgreSQL is known to be down (see ``localbase.supervisor``) no connection is even
tried: :class:`DatabaseUnavailable` is raised at once, and the APIs answer 503.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from localbase.auth import Identity

#: Role settings applied when a request switches to the role (PostgREST applies the same).
IMPERSONATED_SETTINGS = ("statement_timeout", "lock_timeout")
#: How long a request waits for a free connection (PostgREST's db-pool-acquisition-timeout).
ACQUIRE_TIMEOUT_SECONDS = 10.0
#: What follows the request's schema on its ``search_path`` (PostgREST's
#: ``db-extra-search-path`` as Supabase sets it, ``[api] extra_search_path`` in config.toml).
DEFAULT_EXTRA_SEARCH_PATH = ("public", "extensions")

_ROLE_SETTINGS_SQL = """
select r.rolname, split_part(c.setting, '=', 1), substr(c.setting, strpos(c.setting, '=') + 1)
from pg_db_role_setting s
join pg_roles r on r.oid = s.setrole
cross join lateral unnest(s.setconfig) as c(setting)
where s.setdatabase in (0, (select oid from pg_database where datname = current_database()))
order by s.setdatabase
"""


class DatabaseUnavailable(Exception):
    """PostgreSQL is down (restarting, or gone for good); nothing was sent."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PoolExhausted(Exception):
    """No connection became free within ``ACQUIRE_TIMEOUT_SECONDS``."""


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
    extra_search_path: tuple[str, ...] = DEFAULT_EXTRA_SEARCH_PATH
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
            timeout=ACQUIRE_TIMEOUT_SECONDS,
            kwargs={"autocommit": True, "prepare_threshold": 0},
        )
        #: Why PostgreSQL cannot be used right now, or None when it can.
        self.unavailable: str | None = None
        self.role_settings: dict[str, tuple[tuple[str, str], ...]] = {}

    async def open(self) -> None:
        await self.pool.open(wait=True, timeout=30)
        await self.load_role_settings()

    async def close(self) -> None:
        await self.pool.close()

    async def load_role_settings(self) -> None:
        """Read the timeouts set with ``alter role … set`` (on start and on ``NOTIFY pgrst``)."""
        settings: dict[str, dict[str, str]] = {}
        async with self.connection() as conn:
            for role, name, value in await (await conn.execute(_ROLE_SETTINGS_SQL)).fetchall():
                if name in IMPERSONATED_SETTINGS:
                    settings.setdefault(role, {})[name] = value
        self.role_settings = {role: tuple(items.items()) for role, items in settings.items()}

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection]:
        """A pooled ``authenticator`` connection; fails at once while PostgreSQL is down."""
        if self.unavailable is not None:
            raise DatabaseUnavailable(self.unavailable)
        try:
            async with self.pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            if self.unavailable is not None:
                raise DatabaseUnavailable(self.unavailable) from exc
            raise PoolExhausted(str(exc)) from exc

    @asynccontextmanager
    async def transaction(self, ctx: RequestContext) -> AsyncIterator[psycopg.AsyncConnection]:
        """One transaction as the request's role; rolled back if the body raises."""
        async with self.connection() as conn:
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
        async with self.connection() as conn:
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

    async def _publish(self, conn: psycopg.AsyncConnection, ctx: RequestContext) -> None:
        claims = json.dumps(dict(ctx.identity.claims), separators=(",", ":"))
        headers = json.dumps({k.lower(): v for k, v in ctx.headers.items()})
        search_path = search_path_setting(ctx.schema, ctx.extra_search_path)
        role = ctx.identity.role
        settings = self.role_settings.get(role, ())
        params: list[str] = [search_path, role, claims, ctx.method, ctx.path, headers]
        statement = _CONTEXT_SQL
        if settings:
            statement = _CONTEXT_SQL + ", set_config(%s, %s, true)" * len(settings)
            params += [part for setting in settings for part in setting]
        await conn.execute(statement, params)
        if ctx.legacy_claims:
            sub = str(ctx.identity.claims.get("sub", ""))
            await conn.execute(_LEGACY_CLAIMS_SQL, (ctx.identity.role, sub, claims))


def search_path_setting(schema: str, extra: Sequence[str]) -> str:
    """``"public", "public", "extensions"``: the request's schema, then every extra one,
    each quoted, exactly as PostgREST sets ``search_path`` (a name the list repeats stays
    repeated, which PostgreSQL ignores; ``show search_path`` and plans' settings show it)."""
    return ", ".join('"' + name.replace('"', '""') + '"' for name in (schema, *extra))


async def _rollback(conn: psycopg.AsyncConnection) -> None:
    if not conn.closed and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        try:
            await conn.execute(b"rollback")
        except psycopg.Error:
            await conn.close()
