"""One joined ``realtime:<name>`` topic on one socket (Supabase's ``RealtimeChannel``).

A channel owns its postgres_changes subscriptions and two kinds of background work: creating
the subscriptions after the join reply (then the ``system`` "Subscribed to PostgreSQL"
message, or a ``system`` error) and re-checking its token at expiry (spec §7.3). An
``access_token`` push re-verifies the claims and re-creates the subscriptions (§7.1).

Subscription runs are never cancelled half-way through their queries: a run whose channel
has left, or that a newer run superseded, simply discards its result. A run that fails
unexpectedly crashes the channel (``phx_error``), as a crashed Phoenix channel process does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from psycopg_pool import AsyncConnectionPool

from localbase.realtime import messages, protocol, subscriptions
from localbase.realtime.bindings import Binding, binding_id
from localbase.realtime.subscriptions import Registry, Subscription, SubscriptionError
from localbase.realtime.tokens import Claims, TokenError, verify

log = logging.getLogger("localbase.realtime")

TOKEN_RECHECK_SECONDS: Final = 300.0
_TRUE_STRINGS: Final = ("true",)


class JoinError(Exception):
    """The join is refused; ``reason`` goes into the error reply."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Host(Protocol):
    """The socket a channel lives on."""

    def send(self, frame: str) -> None: ...

    def drop(self, channel: Channel) -> None: ...


@dataclass(frozen=True)
class Services:
    """What channels share: the subscription registry, the admin pool, and a task owner
    (``spawn`` names, keeps and supervises a background task)."""

    registry: Registry
    admin_pool: AsyncConnectionPool
    spawn: Callable[[Coroutine[Any, Any, None], str], asyncio.Task[None]]
    #: Waits (up to a limit) until the replication stream runs; False if it does not.
    replication_ready: Callable[[], Awaitable[bool]]


def channel_token(payload: Mapping[str, Any], socket_token: str) -> str:
    """``access_token`` (or legacy ``user_token``) of a join, else the socket's token."""
    given = payload.get("access_token") or payload.get("user_token")
    if isinstance(given, str) and given.startswith("sb_"):
        return socket_token
    for key in ("user_token", "access_token"):
        if isinstance(payload.get(key), str):
            return str(payload[key])
    return socket_token


def is_private(config: Mapping[str, Any]) -> bool:
    value = config.get("private")
    return value is True or (isinstance(value, str) and value.lower() in _TRUE_STRINGS)


def parse_bindings(config: Mapping[str, Any]) -> list[Binding]:
    items = config.get("postgres_changes")
    if not isinstance(items, list):
        return []
    bindings = []
    for item in items:
        if item is None:
            continue
        if not isinstance(item, dict):
            raise JoinError(messages.bad_map(item))
        bindings.append(Binding(binding_id(item), item))
    return bindings


class Channel:
    """A joined topic; see the module docstring."""

    def __init__(
        self,
        host: Host,
        services: Services,
        topic: str,
        join_ref: object,
        access_token: str,
        claims: Claims,
        bindings: Sequence[Binding],
    ) -> None:
        self.topic = topic
        self.topic_json = json.dumps(topic, ensure_ascii=False)
        self.join_ref = join_ref
        self.bindings = list(bindings)
        self.claims = claims
        self._host = host
        self._services = services
        self._access_token = access_token
        self._subscriptions: list[Subscription] = []
        self._start_lsn: int | None = None
        self._generation = 0
        self._token_timer: asyncio.TimerHandle | None = None
        self._open = True

    def reply(self) -> dict[str, Any]:
        return {"postgres_changes": [binding.echo() for binding in self.bindings]}

    def start(self) -> None:
        self._arm_token_timer()
        if self.bindings:
            self._subscribe()

    def deliver(self, frame: str) -> None:
        if self._open:
            self._host.send(frame)

    def stop(self) -> None:
        """Forget the channel: no more events, no background work."""
        self._open = False
        self._services.registry.remove(self._subscriptions)
        self._subscriptions = []
        if self._token_timer is not None:
            self._token_timer.cancel()

    def refresh(self, payload: object) -> None:
        """An ``access_token`` push: no reply; a bad token shuts the channel down."""
        token = payload.get("access_token") if isinstance(payload, dict) else None
        if not isinstance(token, str) or token.startswith("sb_") or token == self._access_token:
            return
        self._access_token = token
        try:
            self.claims = verify(token)
        except TokenError as exc:
            self.shutdown(exc.shutdown_message)
            return
        self._arm_token_timer()
        if self.bindings:
            self._subscribe()

    def shutdown(self, message: str) -> None:
        """Server-side close: a ``system`` error, then ``phx_close``."""
        if not self._open:
            return
        log.info("realtime channel %s shut down: %s", self.topic, message)
        self._host.send(protocol.system(self.topic, "system", "error", message))
        self._host.send(protocol.close(self.topic, self.join_ref))
        self._host.drop(self)

    def _arm_token_timer(self) -> None:
        if self._token_timer is not None:
            self._token_timer.cancel()
        delay = min(TOKEN_RECHECK_SECONDS, max(self.claims.exp - time.time(), 0.0) + 0.01)
        self._token_timer = asyncio.get_running_loop().call_later(delay, self._check_token)

    def _check_token(self) -> None:
        self._token_timer = None
        try:
            self.claims = verify(self._access_token)
        except TokenError as exc:
            self.shutdown(exc.shutdown_message)
            return
        self._arm_token_timer()

    def _subscribe(self) -> None:
        """Create (or re-create) the subscriptions in the background; the newest run wins."""
        self._generation += 1
        task = self._services.spawn(
            self._create_subscriptions(self.claims, self._generation),
            f"realtime-subscribe {self.topic}",
        )
        task.add_done_callback(self._subscribe_done)

    async def _create_subscriptions(self, claims: Claims, generation: int) -> None:
        # Changes are only streamed while the replication stream runs: a subscription made
        # while it is down would be confirmed for changes that can never arrive.
        if not await self._services.replication_ready():
            if self._current(generation):
                self.shutdown(messages.REPLICATION_TIMEOUT)
            return
        try:
            created = await subscriptions.create(
                self._services.admin_pool, self.bindings, claims, self
            )
        except SubscriptionError as exc:
            if self._current(generation):
                log.info("realtime channel %s: %s", self.topic, exc)
                self.deliver(protocol.system(self.topic, "postgres_changes", "error", str(exc)))
            return
        if not self._current(generation):
            return
        if self._start_lsn is None and created:
            self._start_lsn = created[0].start_lsn
        for subscription in created:
            subscription.start_lsn = self._start_lsn or subscription.start_lsn
        self._services.registry.remove(self._subscriptions)
        self._services.registry.add(created)
        self._subscriptions = created
        self.deliver(protocol.system(self.topic, "postgres_changes", "ok", messages.SUBSCRIBED))

    def _current(self, generation: int) -> bool:
        return self._open and generation == self._generation

    def _subscribe_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None or not self._open:
            return
        self._host.send(protocol.encode(self.topic, "phx_error", {}, self.join_ref))
        self._host.drop(self)
