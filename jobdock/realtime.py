"""One Realtime keep-alive for every listener in jobdock: the worker's feed, the dock's live
mirror and ``jobdock watch``.

A ``LiveChannel`` owns connect, join, confirmation and rebuild; its user supplies only the
channel's bindings and two callbacks (a ``Listener``):

- **confirmation**: with ``postgres_changes`` bindings the channel is *live* only once the
  ``system`` message "Subscribed to PostgreSQL" arrives with status ``ok``. A ``system`` error
  (a table not in the publication, a bad filter, the database lost) is *not live*, whatever the
  join reply said. Without such bindings, the join reply confirms.
- ``on_live(True, None)`` after every confirmation: Realtime is at most once, so the user
  re-reads its state there. ``on_live(False, problem)`` whenever it stops being live.
- **rebuild**: a channel the server closed is rebuilt at once (the official client never
  rejoins a closed channel); a client that stays not live for ``rebuild_after_seconds`` is torn
  down and rebuilt (the official client gives up reconnecting after a few failures), with
  backoff, forever — or, with ``once=True``, ``run`` returns the first time a live channel is
  lost (``jobdock watch``: a tail that silently stops would look like a quiet queue).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from realtime import AsyncRealtimeChannel, AsyncRealtimeClient, RealtimeSubscribeStates

log = logging.getLogger("jobdock.realtime")

#: The ``extension`` of the system message that confirms ``postgres_changes`` bindings.
POSTGRES_CHANGES = "postgres_changes"
BACKOFF_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0)

Connect = Callable[[], Awaitable[AsyncRealtimeClient]]


@dataclass(frozen=True)
class Listener:
    """What a user of a ``LiveChannel`` supplies. Callbacks run on the client's listener task:
    they must only hand off (set an event, apply a change under a lock)."""

    #: Add the bindings (``on_postgres_changes``, ``on_broadcast``…) to a fresh channel.
    bind: Callable[[AsyncRealtimeChannel], None]
    #: Live (confirmed) or not, and why not.
    on_live: Callable[[bool, str | None], None]
    #: Whether the bindings include ``postgres_changes`` (then confirmed by the system message).
    postgres_changes: bool = True


class ChannelLost(Exception):
    """``once`` mode: the live channel was lost, or never became live."""


class LiveChannel:
    def __init__(
        self,
        connect: Connect,
        topic: str,
        listener: Listener,
        *,
        params: dict[str, Any] | Callable[[], dict[str, Any]] | None = None,
        rebuild_after_seconds: float = 20.0,
        backoff_seconds: Sequence[float] = BACKOFF_SECONDS,
        once: bool = False,
        name: str = "realtime",
    ) -> None:
        self._connect = connect
        self._topic = topic
        self._listener = listener
        self._params = params
        self._rebuild_after = rebuild_after_seconds
        self._backoff = tuple(backoff_seconds)
        self._once = once
        self._name = name
        self.live = False
        self.confirmations = 0
        #: The current channel (None between clients), for pushes such as ``track``.
        self.channel: AsyncRealtimeChannel | None = None
        self._problem: str | None = None
        self._closed = False
        self._changed = asyncio.Event()
        self._down_since = time.monotonic()

    @property
    def name(self) -> str:
        return self._name

    # -- the loop -------------------------------------------------------------------------------
    async def run(self) -> None:
        """Keep the channel live, forever (``once``: until it is lost, ``ChannelLost``)."""
        failures = 0
        while True:
            before = self.confirmations
            client: AsyncRealtimeClient | None = None
            self._closed = False
            self._down_since = time.monotonic()
            try:
                client = await self._connect()
                await self._join(client)
                await self._watch()
            except ChannelLost:
                raise
            except Exception as exc:  # any failure here means "rebuild"; it is logged
                if self._once:  # the caller says what happened
                    raise ChannelLost(describe_error(exc)) from exc
                self._set_live(False, f"live updates unavailable ({describe_error(exc)})")
                log.warning("event=realtime_down name=%s error=%r", self._name, exc)
            finally:
                self.channel = None
                self._set_live(False, self._problem or "rebuilding the Realtime client")
                if client is not None:
                    await _close(client)
            failures = 0 if self.confirmations > before else failures + 1
            await asyncio.sleep(self._backoff[min(failures, len(self._backoff) - 1)])

    async def _join(self, client: AsyncRealtimeClient) -> None:
        params = self._params() if callable(self._params) else self._params
        channel = client.channel(self._topic, params=params)  # type: ignore[arg-type]
        self.channel = channel
        self._listener.bind(channel)
        channel.on_system(self._on_system)
        await channel.subscribe(self._on_state)

    async def _watch(self) -> None:
        """Return (``once``: raise ``ChannelLost``) when the channel was closed, or has not been
        live for ``rebuild_after``; in ``once`` mode also as soon as a live channel is lost."""
        while True:
            self._changed.clear()
            if self.live:
                await self._changed.wait()
                continue
            remaining = self._rebuild_after - (time.monotonic() - self._down_since)
            if self._closed or remaining <= 0 or (self._once and self.confirmations):
                if self._once:
                    raise ChannelLost(self._problem or "the channel was lost")
                log.info("event=realtime_rebuild name=%s closed=%s", self._name, self._closed)
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    # -- callbacks (the client's listener task): decide, then hand off --------------------------
    def _on_system(self, payload: Any) -> None:
        if getattr(payload, "extension", None) != POSTGRES_CHANGES:
            return
        if getattr(payload, "status", None) == "ok":
            self._set_live(True, None)
        else:
            message = getattr(payload, "message", None) or "subscription failed"
            self._set_live(False, f"Realtime refused the subscription: {message}")

    def _on_state(self, state: RealtimeSubscribeStates, error: Exception | None) -> None:
        if state is RealtimeSubscribeStates.SUBSCRIBED:
            if not self._listener.postgres_changes:
                self._set_live(True, None)
            return
        if state is RealtimeSubscribeStates.CLOSED:
            self._closed = True
        detail = f": {error}" if error else ""
        if state is RealtimeSubscribeStates.CHANNEL_ERROR and not self.live:
            self._set_live(False, f"Realtime refused the subscription{detail}")
        else:
            self._set_live(False, f"Realtime reported {state.value.lower()}{detail}")

    def _set_live(self, live: bool, problem: str | None) -> None:
        changed = live != self.live or (not live and problem != self._problem)
        was_live = self.live
        self.live, self._problem = live, problem
        if live:
            self.confirmations += 1
        elif was_live:
            self._down_since = time.monotonic()
        self._changed.set()
        if live or changed:
            log.info("event=%s name=%s", "realtime_live" if live else "realtime_down", self._name)
            self._listener.on_live(live, problem)


async def _close(client: AsyncRealtimeClient) -> None:
    """Leave the channels and close the socket; a dead peer cannot stall it."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.remove_all_channels(), 2)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.close(), 2)


def describe_error(exc: BaseException) -> str:
    """An exception in one line, for a person: its type and message."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
