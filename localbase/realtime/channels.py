"""One joined ``realtime:<name>`` topic on one socket (Supabase's ``RealtimeChannel``).

A channel owns its postgres_changes subscriptions and two kinds of background work: creating
the subscriptions after the join reply (then the ``system`` "Subscribed to PostgreSQL"
message, or a ``system`` error) and re-checking its token at expiry (spec §7.3). An
``access_token`` push re-verifies the claims and re-creates the subscriptions (§7.1).

It is also a member of its Broadcast/Presence topic (``realtime-broadcast.md``): it relays
client ``broadcast`` pushes, tracks presence, and, when private, holds the permissions its
claims were given (read at join, write at the first push that needs it; all re-checked when
the token changes). After the join reply come the replayed messages, the ``replication_ready``
message and ``presence_state``, in that order.

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

from localbase.realtime import authorization, messages, protocol, replay, subscriptions
from localbase.realtime.authorization import BROADCAST, PRESENCE
from localbase.realtime.bindings import Binding, binding_id
from localbase.realtime.broadcast import Hub
from localbase.realtime.joins import REPLAY_FAILED, JoinOptions
from localbase.realtime.presence import CallWindow, send_diff
from localbase.realtime.subscriptions import Registry, Subscription, SubscriptionError
from localbase.realtime.tokens import Claims, TokenError, verify

log = logging.getLogger("localbase.realtime")

TOKEN_RECHECK_SECONDS: Final = 300.0
REPLICATION_ESTABLISHED: Final = "Replication connection established"
PRESENCE_RATE: Final = "Client presence rate limit exceeded"
TRACK_TOO_LARGE: Final = "Track message size exceeded"
PAYLOAD_TOO_LARGE: Final = "payload_size_exceeded"
TRACK_NOT_A_MAP: Final = "Presence track payload must be a map"


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
    hub: Hub


def channel_token(payload: Mapping[str, Any], socket_token: str) -> str:
    """``access_token`` (or legacy ``user_token``) of a join, else the socket's token."""
    given = payload.get("access_token") or payload.get("user_token")
    if isinstance(given, str) and given.startswith("sb_"):
        return socket_token
    for key in ("user_token", "access_token"):
        if isinstance(payload.get(key), str):
            return str(payload[key])
    return socket_token


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
        options: JoinOptions | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.topic = topic
        self.topic_json = json.dumps(topic, ensure_ascii=False)
        self.join_ref = join_ref
        self.bindings = list(bindings)
        self.claims = claims
        self.options = options = options or JoinOptions()
        self.name = topic.removeprefix(protocol.TOPIC_PREFIX)
        self.key = (self.name, options.private)
        self.replayed: set[str] = set()
        self._host = host
        self._services = services
        self._hub: Hub = services.hub
        self._headers = dict(headers or {})
        self._access_token = access_token
        self._subscriptions: list[Subscription] = []
        self._start_lsn: int | None = None
        self._generation = 0
        self._token_timer: asyncio.TimerHandle | None = None
        self._open = True
        self._presence_enabled = options.presence_enabled
        self._read: dict[str, bool] = {}
        self._write: dict[str, bool] = {}
        self._calls = CallWindow()
        self._replay_frames: list[str] = []

    def reply(self) -> dict[str, Any]:
        return {"postgres_changes": [binding.echo() for binding in self.bindings]}

    # Joining -----------------------------------------------------------------------------

    async def authorize(self) -> None:
        """A private join: read permission for Broadcast (and Presence when enabled) as the
        joining claims. Raises :class:`JoinError` when neither may be read, or when a replay
        is asked without Broadcast read."""
        if not self.options.private:
            return
        wanted = [BROADCAST, PRESENCE] if self._presence_enabled else [BROADCAST]
        self._read = await authorization.can_read(
            self._services.admin_pool, self.name, self.claims, wanted, self._headers
        )
        if not any(self._read.values()) or (self.options.replay and not self._read[BROADCAST]):
            raise JoinError(messages.private_unauthorized(self.name))

    async def load_replay(self) -> None:
        if self.options.replay is None:
            return
        try:
            rows = await replay.replayed(self._services.admin_pool, self.name, self.options.replay)
        except Exception as exc:
            log.warning("replay on %s failed: %s", self.topic, exc)
            raise JoinError(REPLAY_FAILED) from None
        self.replayed = {message_id for message_id, _ in rows}
        self._replay_frames = [
            f'{{"topic":{self.topic_json},"event":"broadcast","payload":{body},"ref":null}}'
            for _, body in rows
        ]

    def attach(self) -> None:
        """Become a member of the topic (before the join reply, as Supabase subscribes)."""
        self._hub.join(self.key, self)

    def start(self) -> None:
        for frame in self._replay_frames:
            self.deliver(frame)
        self._replay_frames = []
        self._arm_token_timer()
        if self.bindings:
            self._subscribe()
        if self.options.replication_ready:
            self._services.spawn(self._announce_replication(), f"realtime-ready {self.topic}")
        if self._presence_enabled and self.reads_presence():
            state = protocol.dumps(self._hub.presences.state(self.key))
            self.deliver(
                f'{{"topic":{self.topic_json},"event":"presence_state","payload":{state},'
                '"ref":null}'
            )

    async def _announce_replication(self) -> None:
        if await self._services.replication_ready():
            self.deliver(protocol.system(self.topic, "system", "ok", REPLICATION_ESTABLISHED))
        else:
            self.shutdown(messages.REPLICATION_TIMEOUT)

    # Membership --------------------------------------------------------------------------

    def reads_broadcast(self) -> bool:
        return not self.options.private or self._read.get(BROADCAST, False)

    def reads_presence(self) -> bool:
        return not self.options.private or self._read.get(PRESENCE, False)

    def deliver(self, frame: str) -> None:
        if self._open:
            self._host.send(frame)

    def stop(self) -> None:
        """Forget the channel: no more events, no background work; its presence leaves."""
        if self._open:
            self._hub.leave(self.key, self)
            leaves = self._hub.presences.untrack(self.key, self)
            if leaves is not None:
                send_diff(self._hub.members(self.key), {}, leaves)
        self._open = False
        self._services.registry.remove(self._subscriptions)
        self._subscriptions = []
        if self._token_timer is not None:
            self._token_timer.cancel()

    # Client pushes -----------------------------------------------------------------------

    async def broadcast(self, payload: object, ref: object) -> None:
        """A client ``broadcast`` push: relayed unchanged to the topic (spec §2)."""
        if not isinstance(payload, dict):
            log.info("realtime channel %s: ignoring a broadcast that is not a map", self.topic)
            return
        payload_json = protocol.dumps(payload)
        if self._hub.too_large(len(payload_json.encode())):
            if self.options.ack:
                self._host.send(protocol.reply(self.topic, ref, "error", PAYLOAD_TOO_LARGE))
            return
        if self.options.private and not await self._may_write(BROADCAST):
            return  # silently, even with ack (spec §2.3)
        self._hub.rate.add(1)
        sender = None if self.options.self_broadcast else self
        self._hub.publish(self.key, payload_json, sender=sender)
        if self.options.ack and self._open:
            self._host.send(protocol.reply(self.topic, ref, "ok", {}))

    async def presence(self, payload: object, ref: object) -> None:
        """A client ``presence`` push: ``track`` or ``untrack`` (spec §7.1, §9)."""
        if not self._calls.allow():
            self.shutdown(PRESENCE_RATE)
            return
        event = payload.get("event") if isinstance(payload, dict) else None
        event = event.lower() if isinstance(event, str) else None
        if event == "track":
            assert isinstance(payload, dict)
            await self._track(payload.get("payload"), ref)
        elif event == "untrack":
            self._host.send(protocol.reply(self.topic, ref, "ok", {}))
            leaves = self._hub.presences.untrack(self.key, self)
            if leaves is not None:
                send_diff(self._hub.members(self.key), {}, leaves)
        else:
            self._host.send(protocol.reply(self.topic, ref, "error", {}))

    async def _track(self, meta: object, ref: object) -> None:
        if not isinstance(meta, dict):
            self._host.send(protocol.error_reply(self.topic, ref, TRACK_NOT_A_MAP))
            return
        if self._hub.too_large(len(protocol.dumps(meta).encode())):
            self.shutdown(TRACK_TOO_LARGE)
            return
        if self.options.private:
            if PRESENCE not in self._read:
                self._read.update(await self._check(authorization.can_read, [PRESENCE]))
            if not await self._may_write(PRESENCE):
                self._host.send(protocol.reply(self.topic, ref, "error", {}))
                return
        if not self._open:
            return
        self._host.send(protocol.reply(self.topic, ref, "ok", {}))
        self._presence_enabled = True
        diff = self._hub.presences.track(self.key, self, self.options.presence_key, meta)
        if diff is not None:
            send_diff(self._hub.members(self.key), *diff)

    async def _may_write(self, extension: str) -> bool:
        if extension not in self._write:
            self._write.update(await self._check(authorization.can_write, [BROADCAST, PRESENCE]))
        return self._write.get(extension, False)

    async def _check(self, check: authorization.Check, extensions: list[str]) -> dict[str, bool]:
        return await check(
            self._services.admin_pool, self.name, self.claims, extensions, self._headers
        )

    # Tokens ------------------------------------------------------------------------------

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
        if self.options.private:
            self._services.spawn(self._recheck(self.claims), f"realtime-recheck {self.topic}")

    async def _recheck(self, claims: Claims) -> None:
        """Permissions are reset for new claims; read is evaluated again (spec §3.1)."""
        wanted = [BROADCAST, PRESENCE] if self._presence_enabled else [BROADCAST]
        read = await authorization.can_read(
            self._services.admin_pool, self.name, claims, wanted, self._headers
        )
        if claims is not self.claims or not self._open:
            return
        self._write = {}
        had = any(self._read.values())
        self._read = read
        if had and not any(read.values()):
            self.shutdown(
                f"You no longer have permission to read from this Channel topic: {self.name}"
            )

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
