"""The HTTP/WebSocket application: ``/health``, ``/rest/v1``, ``/storage/v1``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute

from localbase.db import Database
from localbase.realtime import Realtime, RealtimeConfig
from localbase.rest.api import RestApi
from localbase.storage import StorageApi

log = logging.getLogger("localbase")

_METHODS = ["GET", "HEAD", "POST", "PATCH", "PUT", "DELETE"]


@dataclass(frozen=True)
class AppConfig:
    api_dsn: str
    admin_dsn: str
    storage_dir: Path
    realtime: RealtimeConfig = field(default_factory=RealtimeConfig)


def create_app(config: AppConfig) -> Starlette:
    db = Database(config.api_dsn, config.admin_dsn)
    rest = RestApi(db)
    realtime = Realtime(config.admin_dsn, config.api_dsn, config.realtime)
    storage = StorageApi(db, config.storage_dir)

    async def health(request: Request) -> Response:
        try:
            async with db.pool.connection(timeout=2) as conn:
                await conn.execute("select 1")
        except Exception:  # any failure to reach Postgres means "not healthy"
            return JSONResponse({"status": "unavailable", "postgres": False}, status_code=503)
        return JSONResponse({"status": "ok", "postgres": True})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await db.open()
        await realtime.start()
        listener = asyncio.create_task(_watch_schema(config.admin_dsn, rest), name="schema-watch")
        try:
            yield
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            await realtime.stop()
            await db.close()

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/rest/v1/{path:path}", rest.handle, methods=_METHODS),
        WebSocketRoute("/realtime/v1/websocket", realtime.websocket),
        WebSocketRoute("/socket/websocket", realtime.websocket),
        Route(
            "/storage/v1/{path:path}",
            storage.handle,
            methods=["GET", "HEAD", "POST", "PUT", "DELETE"],
        ),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.db = db
    return app


async def _watch_schema(dsn: str, rest: RestApi) -> None:
    """Reload the REST schema cache on ``NOTIFY pgrst`` (sent by the DDL event triggers)."""
    backoff = 0.1
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
                await conn.execute("listen pgrst")
                rest.invalidate()
                backoff = 0.1
                async for _ in conn.notifies():
                    rest.invalidate()
        except psycopg.Error as exc:
            log.warning("schema watch lost its connection (%s); retrying", exc)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
