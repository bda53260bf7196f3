"""One accepted Realtime WebSocket: reading frames, routing them, and writing replies/events.

Frames are handled one at a time, in order, as Phoenix's socket process does (a refused join
waits out the join-error backoff before the next frame is read). Outgoing frames go through a
bounded outbox drained by a writer task, so a client that stops reading never blocks delivery
to anyone else: when its outbox is full it is disconnected. A socket that sends nothing for
``idle_timeout`` seconds is closed (code 1000), as Phoenix's idle timeout does.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from localbase.realtime import messages, protocol
from localbase.realtime.channels import (
    Channel,
    JoinError,
    Services,
    channel_token,
    parse_bindings,
)
from localbase.realtime.joins import JoinOptions, ReplayError
from localbase.realtime.protocol import Frame, FrameError
from localbase.realtime.tokens import Claims, TokenError, verify

log = logging.getLogger("localbase.realtime")

_ids = itertools.count(1)


@dataclass(frozen=True)
class ConnectionLimits:
    idle_timeout: float = 60.0
    join_error_backoff: float = 0.1
    max_pending: int = 10_000
    max_channels: int = 100


class Connection:
    """See the module docstring. ``serve()`` returns when the socket is done."""

    def __init__(
        self, websocket: WebSocket, services: Services, claims: Claims, limits: ConnectionLimits
    ) -> None:
        self.id = next(_ids)
        self.channels: dict[str, Channel] = {}
        self._websocket = websocket
        self._services = services
        self._socket_claims = claims
        self._limits = limits
        self._outbox: collections.deque[str] = collections.deque()
        self._wakeup = asyncio.Event()
        self._done = asyncio.Event()
        self._close_code: int | None = None
        self._reason = "client disconnected"
        self._headers = {name: value for name, value in websocket.headers.items()}

    # Host protocol (used by channels) ----------------------------------------------------

    def send(self, frame: str) -> None:
        if self._done.is_set():
            return
        if len(self._outbox) >= self._limits.max_pending:
            log.warning(
                "realtime socket %d: %d frames unsent; disconnecting a client too slow to read",
                self.id,
                len(self._outbox),
            )
            self._finish(
                f"outbox full ({self._limits.max_pending} frames); client too slow", close_code=None
            )
            return
        if not self._outbox:
            self._wakeup.set()
        self._outbox.append(frame)

    def drop(self, channel: Channel) -> None:
        if self.channels.get(channel.topic) is channel:
            del self.channels[channel.topic]
        channel.stop()

    # Lifecycle ---------------------------------------------------------------------------

    async def serve(self) -> None:
        log.info("realtime socket %d opened role=%s", self.id, self._socket_claims.role)
        tasks = [
            self._task(self._read_loop(), "reader"),
            self._task(self._write_loop(), "writer"),
            self._task(self._wait_done(), "done"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    log.error(
                        "realtime socket %d: %s failed",
                        self.id,
                        task.get_name(),
                        exc_info=task.exception(),
                    )
                    self._reason = f"{task.get_name()} failed"
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for channel in list(self.channels.values()):
                self.drop(channel)
        await self._close()
        log.info("realtime socket %d closed: %s", self.id, self._reason)

    def _task(self, coroutine: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        return asyncio.create_task(coroutine, name=f"realtime socket {self.id} {name}")

    async def _wait_done(self) -> None:
        await self._done.wait()

    def _finish(self, reason: str, *, close_code: int | None) -> None:
        if not self._done.is_set():
            self._reason = reason
            self._close_code = close_code
            self._done.set()

    async def _close(self) -> None:
        if self._close_code is None:
            return
        with contextlib.suppress(TimeoutError, RuntimeError, OSError):
            await asyncio.wait_for(self._websocket.close(self._close_code), timeout=1.0)

    async def _write_loop(self) -> None:
        try:
            while True:
                while self._outbox:
                    frame = self._outbox.popleft()
                    try:
                        await self._websocket.send_text(frame)
                    except UnicodeEncodeError:
                        log.error("realtime socket %d: dropped a frame that is not UTF-8", self.id)
                self._wakeup.clear()
                await self._wakeup.wait()
        except WebSocketDisconnect as exc:
            self._finish(f"client disconnected (code {exc.code})", close_code=None)

    async def _read_loop(self) -> None:
        while True:
            try:
                message = await asyncio.wait_for(
                    self._websocket.receive(), self._limits.idle_timeout
                )
            except TimeoutError:
                self._finish(f"idle for {self._limits.idle_timeout:g} s", close_code=1000)
                return
            if message["type"] == "websocket.disconnect":
                self._finish(f"client disconnected (code {message.get('code')})", close_code=None)
                return
            text = message.get("text")
            if text is None:
                log.info("realtime socket %d: ignoring a binary frame", self.id)
                continue
            await self._handle_text(text)

    # Routing -----------------------------------------------------------------------------

    async def _handle_text(self, text: str) -> None:
        try:
            frame = protocol.decode(text)
        except FrameError as exc:
            log.warning("realtime socket %d: ignoring malformed frame (%s)", self.id, exc)
            return
        try:
            await self._route(frame)
        except Exception:
            log.exception(
                "realtime socket %d: failed to handle %r on %r", self.id, frame.event, frame.topic
            )

    async def _route(self, frame: Frame) -> None:
        if frame.topic == protocol.PHOENIX and frame.event == "heartbeat":
            self.send(protocol.reply(protocol.PHOENIX, frame.ref, "ok", {}))
            return
        channel = self.channels.get(frame.topic) if isinstance(frame.topic, str) else None
        if frame.event == "phx_join":
            await self._join(frame, channel)
        elif channel is None:
            if frame.event == "phx_leave":
                self.send(protocol.reply(frame.topic, frame.ref, "ok", {}))
            else:
                self.send(protocol.error_reply(frame.topic, frame.ref, messages.UNMATCHED_TOPIC))
        elif frame.event == "phx_leave":
            if frame.join_ref in (None, channel.join_ref):
                self.send(protocol.reply(channel.topic, frame.ref, "ok", {}))
                self.send(protocol.close(channel.topic, channel.join_ref))
                self.drop(channel)
        elif frame.event == "access_token":
            channel.refresh(frame.payload)
        elif frame.event == "broadcast":
            await channel.broadcast(frame.payload, frame.ref)
        elif frame.event == "presence":
            await channel.presence(frame.payload, frame.ref)
        else:
            log.debug(
                "realtime socket %d: unexpected %r on %s", self.id, frame.event, channel.topic
            )

    async def _join(self, frame: Frame, existing: Channel | None) -> None:
        topic = frame.topic
        if not isinstance(topic, str) or not topic.startswith(protocol.TOPIC_PREFIX):
            log.warning("realtime socket %d: ignoring unmatched topic %r", self.id, topic)
            self.send(protocol.error_reply(topic, frame.ref, messages.UNMATCHED_TOPIC))
            return
        if existing is not None:
            self.drop(existing)
        try:
            channel = self._new_channel(topic, frame)
            await channel.authorize()
            await channel.load_replay()
        except JoinError as exc:
            log.info("realtime socket %d: join %s refused: %s", self.id, topic, exc.reason)
            await asyncio.sleep(self._limits.join_error_backoff)
            self.send(protocol.error_reply(topic, frame.ref, exc.reason))
        else:
            self.channels[topic] = channel
            channel.attach()
            self.send(protocol.reply(topic, frame.ref, "ok", channel.reply()))
            channel.start()
        if existing is not None:
            self.send(protocol.close(topic, existing.join_ref))

    def _new_channel(self, topic: str, frame: Frame) -> Channel:
        if topic == protocol.TOPIC_PREFIX:
            raise JoinError(messages.TOPIC_REQUIRED)
        payload = frame.payload
        if not isinstance(payload, dict):
            raise JoinError(messages.bad_map(payload))
        if len(self.channels) >= self._limits.max_channels:
            raise JoinError(messages.TOO_MANY_CHANNELS)
        token = channel_token(payload, self._socket_claims.token)
        try:
            claims = verify(token)
        except TokenError as exc:
            raise JoinError(exc.reason) from None
        config = payload.get("config")
        if config is None:
            config = {}
        if not isinstance(config, dict):
            raise JoinError(messages.bad_map(config))
        try:
            options = JoinOptions.parse(config)
        except ReplayError as exc:
            raise JoinError(str(exc)) from None
        return Channel(
            self,
            self._services,
            topic,
            frame.join_ref,
            token,
            claims,
            parse_bindings(config),
            options,
            self._headers,
        )
