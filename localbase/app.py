"""The HTTP/WebSocket application: ``/health``, ``/rest/v1``, ``/storage/v1``, Realtime.

Every request first passes the size limits (``localbase.limits``). With a supervisor, the app
follows PostgreSQL's state: ``/health`` says whether it is running, restarting or gone, and the
APIs answer 503 at once while it is not running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute

from localbase.db import Database
from localbase.limits import LimitsMiddleware, RequestLimits
from localbase.realtime import Realtime, RealtimeConfig
from localbase.rest.api import RestApi
from localbase.storage import StorageApi
from localbase.supervisor import PostgresState, PostgresSupervisor

log = logging.getLogger("localbase")

_METHODS = ["GET", "HEAD", "POST", "PATCH", "PUT", "DELETE"]


@dataclass(frozen=True)
class AppConfig:
    api_dsn: str
    admin_dsn: str
    storage_dir: Path
    realtime: RealtimeConfig = field(default_factory=RealtimeConfig)
    limits: RequestLimits = field(default_factory=RequestLimits)
    postgres: PostgresSupervisor | None = None


def create_app(config: AppConfig) -> Starlette:
    db = Database(config.api_dsn, config.admin_dsn)
    rest = RestApi(db)
    realtime = Realtime(config.admin_dsn, config.api_dsn, config.realtime)
    storage = StorageApi(db, config.storage_dir)
    supervisor = config.postgres

    async def health(request: Request) -> Response:
        if supervisor is not None and supervisor.state is not PostgresState.RUNNING:
            return _unhealthy(supervisor.state, db.unavailable)
        try:
            async with db.pool.connection(timeout=2) as conn:
                await conn.execute("select 1")
        except Exception:  # any failure to reach Postgres means "not healthy"
            return _unhealthy("unavailable", None)
        body = {"status": "ok", "postgres": True}
        if supervisor is not None:
            body["postgres_restarts"] = supervisor.restarts
        return JSONResponse(body)

    async def postgres_back() -> None:
        await db.pool.check()
        await realtime.check_connections()
        db.unavailable = None

    def postgres_down(reason: str) -> None:
        db.unavailable = reason

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await db.open()
        await realtime.start()
        tasks = [
            asyncio.create_task(_watch_schema(config.admin_dsn, rest, db), name="schema-watch")
        ]
        if supervisor is not None:
            supervisor.on_down(postgres_down)
            supervisor.on_up(postgres_back)
            tasks.append(asyncio.create_task(supervisor.run(), name="postgres-supervisor"))
        for task in tasks:
            task.add_done_callback(_side_task_done)
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await realtime.stop()
            await db.close()

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/rest/v1/{path:path}", rest.handle, methods=_METHODS),
        WebSocketRoute("/realtime/v1/websocket", realtime.websocket),
        WebSocketRoute("/socket/websocket", realtime.websocket),
        Route("/realtime/v1/api/broadcast", realtime.broadcast_api.batch, methods=["POST"]),
        Route(
            "/realtime/v1/api/broadcast/{topic:path}/events/{event}",
            realtime.broadcast_api.single,
            methods=["POST"],
        ),
        Route("/realtime/v1/metrics", realtime.metrics, methods=["GET"]),
        Route(
            "/storage/v1/{path:path}",
            storage.handle,
            methods=["GET", "HEAD", "POST", "PUT", "DELETE"],
        ),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(LimitsMiddleware, limits=config.limits)],
    )
    app.state.db = db
    return app


def _unhealthy(status: str, reason: str | None) -> Response:
    body: dict[str, object] = {"status": status, "postgres": False}
    if reason:
        body["message"] = reason
    return JSONResponse(body, status_code=503)


def _side_task_done(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.critical("%s stopped unexpectedly", task.get_name(), exc_info=task.exception())


async def _watch_schema(dsn: str, rest: RestApi, db: Database) -> None:
    """Reload the REST schema cache, PostgREST's in-database configuration and the role
    settings on ``NOTIFY pgrst`` (sent by the DDL event triggers; ``notify pgrst, 'reload
    config'`` after ``alter role … set``)."""
    backoff = 0.1
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
                await conn.execute("listen pgrst")
                rest.invalidate()
                backoff = 0.1
                async for _ in conn.notifies():
                    rest.invalidate()
                    await db.load_role_settings()
        except psycopg.Error as exc:
            log.warning("schema watch lost its connection (%s); retrying", exc)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
