"""The Realtime service: the WebSocket endpoint and the change feed that drives it.

``start()`` opens two small connection pools (admin: catalog, value conversion, filters;
``authenticator``: RLS checks as the subscriber's role), starts the replication stream and a
dispatcher task that delivers each committed transaction, in commit order, after the optional
delivery delay. ``websocket()`` is the ASGI endpoint for ``/realtime/v1/websocket``.

When the replication stream is lost, changes until it is back cannot be delivered: as Supabase
does when it loses the database, every channel with database subscriptions is then closed
(``system`` error, ``phx_close``), and a (re)join waits for the stream before it is confirmed.

The stream also carries the INSERTs into ``realtime.messages`` (Broadcast from Database); they
are fanned out as soon as they arrive, in commit order, apart from the change queue.

Two delivery profiles (``RealtimeConfig.profile``):

* ``local``: ``postgres_changes`` from the stream, as soon as each commit arrives;
* ``hosted``: ``postgres_changes`` from a :class:`~localbase.realtime.poller.Poller` with
  hosted Supabase's cadence, and the project's messages-per-second cap (500 by default).

``/realtime/v1/metrics`` reports the rate, the drops and the poller's counters.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Final

from psycopg_pool import AsyncConnectionPool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket

from localbase import upgrade_denial
from localbase.realtime import messages, replay
from localbase.realtime.broadcast import Hub, is_message
from localbase.realtime.broadcast_api import BroadcastApi
from localbase.realtime.catalog import Catalog
from localbase.realtime.channels import Services
from localbase.realtime.connection import Connection, ConnectionLimits
from localbase.realtime.delivery import Delivery
from localbase.realtime.poller import Poller
from localbase.realtime.rates import EventRate
from localbase.realtime.subscriptions import Registry
from localbase.realtime.tokens import Claims, TokenError, socket_token, verify
from localbase.replication import PUBLICATION, ReplicationStream, Transaction

log = logging.getLogger("localbase.realtime")

_SESSION: Final = (
    "-c TimeZone=UTC -c DateStyle=ISO,MDY -c IntervalStyle=postgres"
    " -c extra_float_digits=1 -c bytea_output=hex"
)
_STARTUP_TIMEOUT: Final = 30.0
#: At most this many row changes are delivered as one batch (its RLS checks made together).
_BATCH_CHANGES: Final = 1000
_REPLICATION_WAIT: Final = 10.0  # a join waits this long for a lost replication stream
MESSAGES_PUBLICATION: Final = "supabase_realtime_messages_publication"
LOCAL: Final = "local"
HOSTED: Final = "hosted"
#: Hosted's project cap on the Pro plan; the ``hosted`` profile's default.
HOSTED_MAX_EVENTS_PER_SECOND: Final = 500
_EXPIRE_EVERY_SECONDS: Final = 3600.0


@dataclass(frozen=True)
class RealtimeConfig:
    """Tunables; the defaults match Supabase except the two error backoffs (kept short)."""

    delay_ms: int = 0
    idle_timeout: float = 60.0
    join_error_backoff: float = 0.1
    connect_error_backoff: float = 0.1
    max_pending: int = 10_000
    max_channels: int = 100
    max_queued_transactions: int = 100_000
    profile: str = LOCAL
    #: The project's messages-per-second cap; ``None``: none (``local``) or hosted's 500.
    max_events_per_second: int | None = None
    #: Broadcast and track payloads (hosted Free: 256 KB; Pro: 3,000 KB).
    max_payload_kb: int = 256
    poll_interval_ms: int = 100
    poll_max_changes: int = 100

    @property
    def events_cap(self) -> int | None:
        if self.max_events_per_second is not None:
            return self.max_events_per_second
        return HOSTED_MAX_EVENTS_PER_SECOND if self.profile == HOSTED else None

    def limits(self) -> ConnectionLimits:
        return ConnectionLimits(
            self.idle_timeout, self.join_error_backoff, self.max_pending, self.max_channels
        )


class Realtime:
    """See the module docstring."""

    def __init__(self, admin_dsn: str, api_dsn: str, config: RealtimeConfig) -> None:
        self.config = config
        self.registry = Registry()
        self.dropped_transactions = 0
        self._admin = AsyncConnectionPool(
            admin_dsn,
            min_size=1,
            max_size=6,
            open=False,
            name="realtime-admin",
            kwargs={
                "autocommit": True,
                "options": _SESSION,
                "application_name": "localbase_realtime",
            },
        )
        self._api = AsyncConnectionPool(
            api_dsn,
            min_size=1,
            max_size=4,
            open=False,
            name="realtime-rls",
            kwargs={
                "autocommit": True,
                "options": _SESSION,
                "application_name": "localbase_realtime_rls",
            },
        )
        self.rate = EventRate(config.events_cap)
        self.hub = Hub(self.rate, config.max_payload_kb * 1000 + 500)
        self.broadcast_api = BroadcastApi(self.hub, self._admin)
        self._delivery = Delivery(
            self.registry, Catalog(self._admin), self._admin, self._api, self.rate
        )
        self._services = Services(
            self.registry, self._admin, self._spawn, self._replication_ready, self.hub
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self._queue: asyncio.Queue[Transaction] = asyncio.Queue(config.max_queued_transactions)
        hosted = config.profile == HOSTED
        self._poller = (
            Poller(
                admin_dsn,
                self._delivery.transactions,
                interval_ms=config.poll_interval_ms,
                max_changes=config.poll_max_changes,
            )
            if hosted
            else None
        )
        publications = MESSAGES_PUBLICATION if hosted else f"{PUBLICATION},{MESSAGES_PUBLICATION}"
        self._stream = ReplicationStream(
            admin_dsn,
            self._from_thread,
            on_connection=self._connection_changed,
            publication=publications,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._admin.open(wait=True, timeout=_STARTUP_TIMEOUT)
        await self._api.open(wait=True, timeout=_STARTUP_TIMEOUT)
        self._stream.start()
        if not await asyncio.to_thread(self._stream.connected.wait, _STARTUP_TIMEOUT):
            log.warning(
                "replication stream not connected after %.0f s; still trying", _STARTUP_TIMEOUT
            )
        self._start_dispatcher()
        self._spawn(self._every_second(), "realtime-drops")
        self._spawn(self._expire_messages(), "realtime-retention")
        if self._poller is not None:
            self._spawn(self._poller.run(), "realtime-poller")

    def status(self) -> dict[str, object]:
        """``/realtime/v1/metrics``: the profile, the rate and its drops, the poller."""
        body: dict[str, object] = {
            "profile": self.config.profile,
            **self.rate.status(),
            "dropped_transactions": self.dropped_transactions,
        }
        if self._poller is not None:
            body["poller"] = self._poller.stats.status()
        return body

    async def metrics(self, request: Request) -> Response:
        return JSONResponse(self.status())

    async def _every_second(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.rate.log_drops()

    async def _expire_messages(self) -> None:
        while True:
            try:
                deleted = await replay.expire(self._admin)
            except Exception as exc:  # retried at the next round
                log.warning("deleting expired realtime.messages failed: %s", exc)
            else:
                if deleted:
                    log.info("deleted %d realtime.messages past retention", deleted)
            await asyncio.sleep(_EXPIRE_EVERY_SECONDS)

    async def check_connections(self) -> None:
        """Replace pooled connections that broke (after PostgreSQL restarted)."""
        await self._admin.check()
        await self._api.check()

    async def stop(self) -> None:
        self._stopping = True
        tasks = [*self._tasks, *([self._dispatcher] if self._dispatcher else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.to_thread(self._stream.stop)
        await self._api.close()
        await self._admin.close()

    async def websocket(self, websocket: WebSocket) -> None:
        """``/realtime/v1/websocket``: authenticate the upgrade, then serve the socket."""
        claims = self._authenticate(websocket)
        if isinstance(claims, Response):
            await asyncio.sleep(self.config.connect_error_backoff)
            upgrade_denial.mark_denied()
            await websocket.send_denial_response(claims)
            return
        await websocket.accept()
        await Connection(websocket, self._services, claims, self.config.limits()).serve()

    def _authenticate(self, websocket: WebSocket) -> Claims | Response:
        """The socket's claims, or the HTTP response that refuses the upgrade."""
        vsn = websocket.query_params.get("vsn", "1.0.0")
        if not vsn.startswith("1.0."):
            log.warning("refusing realtime serializer version %r (only 1.0.0 is served)", vsn)
            return Response(status_code=403)
        try:
            return verify(socket_token(_api_key(websocket)))
        except TokenError as exc:
            log.info("refusing realtime socket: %s", exc.http_error)
            return JSONResponse({"error": exc.http_error}, status_code=exc.http_status)

    def _spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("realtime task %r failed", task.get_name(), exc_info=task.exception())

    # The change feed ---------------------------------------------------------------------

    def _from_thread(self, transaction: Transaction) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._enqueue, transaction)

    async def _replication_ready(self) -> bool:
        if self._stream.connected.is_set():
            return True
        return await asyncio.to_thread(self._stream.connected.wait, _REPLICATION_WAIT)

    def _connection_changed(self, connected: bool) -> None:
        """From the replication thread."""
        loop = self._loop
        if not connected and loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._replication_lost)

    def _replication_lost(self) -> None:
        """As on Supabase, every channel with database subscriptions is closed (a ``system``
        error, then ``phx_close``): changes made until the stream is back are never delivered,
        so clients must not go on trusting their subscription. They rejoin, get a new
        "Subscribed to PostgreSQL", and read again."""
        if self._stopping:
            return
        channels = self.registry.sinks()
        if channels:
            log.warning("replication stream lost: closing %d channel(s)", len(channels))
        for channel in channels:
            channel.shutdown(messages.DATABASE_LOST)

    def _enqueue(self, transaction: Transaction) -> None:
        if any(is_message(change) for change in transaction.changes):
            self.hub.from_database(c for c in transaction.changes if is_message(c))
            changes = tuple(c for c in transaction.changes if not is_message(c))
            if not changes:
                return
            transaction = dataclasses.replace(transaction, changes=changes)
        try:
            self._queue.put_nowait(transaction)
        except asyncio.QueueFull:
            self.dropped_transactions += 1
            if self.dropped_transactions % 1000 == 1:
                log.warning(
                    "realtime is %d transactions behind; dropped %d so far",
                    self._queue.qsize(),
                    self.dropped_transactions,
                )

    def _start_dispatcher(self) -> None:
        self._dispatcher = asyncio.create_task(self._dispatch(), name="realtime-dispatcher")
        self._dispatcher.add_done_callback(self._dispatcher_done)

    def _dispatcher_done(self, task: asyncio.Task[None]) -> None:
        if self._stopping or task.cancelled():
            return
        log.critical(
            "realtime dispatcher stopped unexpectedly; restarting it", exc_info=task.exception()
        )
        self._start_dispatcher()

    async def _dispatch(self) -> None:
        delay = self.config.delay_ms / 1000
        while True:
            transaction = await self._queue.get()
            if delay:
                wait = transaction.received_at + delay - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                await self._delivery.transaction(transaction)
                continue
            # Transactions that queued up while the last batch was delivered go together (in
            # commit order): under load, one RLS check serves many of them.
            batch, changes = [transaction], len(transaction.changes)
            while changes < _BATCH_CHANGES and not self._queue.empty():
                batch.append(self._queue.get_nowait())
                changes += len(batch[-1].changes)
            await self._delivery.transactions(batch)


def _api_key(websocket: WebSocket) -> str | None:
    """``x-api-key`` header if present, else the ``apikey`` query parameter."""
    if "x-api-key" in websocket.headers:
        return websocket.headers["x-api-key"]
    return websocket.query_params.get("apikey")
