"""Shared helpers of the Realtime conformance tests: raw Phoenix sockets whose frames are
checked against the official client's models, the official client joined and subscribed,
listeners, unique topics and tables."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from realtime import AsyncRealtimeChannel, AsyncRealtimeClient, RealtimeSubscribeStates
from realtime.message import ServerMessageAdapter, SuccessSystemPayload
from websockets.asyncio.client import ClientConnection, connect

from devstack.localbase import LocalbaseProcess
from localbase import keys

SUBSCRIBED = "Subscribed to PostgreSQL"
TIMEOUT = 5.0
Binding = Mapping[str, Any]


# Raw sockets ---------------------------------------------------------------------------


def ws_url(
    stack: LocalbaseProcess,
    key: str | None = keys.SERVICE_ROLE_KEY,
    *,
    path: str = "/realtime/v1/websocket",
    **params: str,
) -> str:
    query = dict(params)
    if key is not None:
        query["apikey"] = key
    query.setdefault("vsn", "1.0.0")
    return str(httpx.URL(f"ws://127.0.0.1:{stack.api_port}{path}", params=query))


def checked(text: str | bytes, *, client_valid: bool | None = True) -> dict[str, Any]:
    """Parse a server frame: exactly four keys, and valid for the client (``False``: must be
    rejected by it; ``None``: either, for echoes of junk the test itself sent)."""
    assert isinstance(text, str), "server frames are text"
    frame = json.loads(text)
    assert isinstance(frame, dict), frame
    assert set(frame) == {"topic", "event", "payload", "ref"}, frame
    if client_valid:
        ServerMessageAdapter.validate_json(text)
    elif client_valid is False:
        with pytest.raises(ValidationError):
            ServerMessageAdapter.validate_json(text)
    return frame


class RawSocket:
    """A Phoenix vsn 1.0.0 socket driven by hand."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._ref = 0

    def ref(self) -> str:
        self._ref += 1
        return str(self._ref)

    async def push(
        self,
        topic: object,
        event: object,
        payload: object,
        ref: object = None,
        join_ref: object = None,
    ) -> None:
        await self.ws.send(
            json.dumps(
                {
                    "topic": topic,
                    "event": event,
                    "payload": payload,
                    "ref": ref,
                    "join_ref": join_ref,
                }
            )
        )

    async def frame(
        self, limit: float = TIMEOUT, *, client_valid: bool | None = True
    ) -> dict[str, Any]:
        return checked(await asyncio.wait_for(self.ws.recv(), limit), client_valid=client_valid)

    async def until(
        self, done: Callable[[dict[str, Any]], bool], limit: float = TIMEOUT
    ) -> list[dict[str, Any]]:
        """Frames up to and including the first one for which ``done`` is true."""
        frames: list[dict[str, Any]] = []
        async with asyncio.timeout(limit):
            while not frames or not done(frames[-1]):
                frames.append(await self.frame(limit))
        return frames

    async def join(
        self,
        topic: str,
        bindings: list[Binding] | None = None,
        *,
        token: str | None = None,
        ref: str | None = None,
        config: dict[str, Any] | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """Send a phx_join the way the Python client builds it; return (ref, reply frame)."""
        ref = ref or self.ref()
        payload: dict[str, Any] = {
            "config": config
            or {
                "broadcast": {"ack": False, "self": False},
                "presence": {"key": "", "enabled": False},
                "private": False,
                "postgres_changes": list(bindings or []),
            }
        }
        if token is not None:
            payload["access_token"] = token
        await self.push(topic, "phx_join", payload, ref, ref)
        frames = await self.until(lambda f: f["event"] == "phx_reply" and f["ref"] == ref)
        return ref, frames[-1]

    async def subscribed(
        self, topic: str, bindings: list[Binding], token: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Join and wait for "Subscribed to PostgreSQL"."""
        ref, reply = await self.join(topic, bindings, token=token)
        assert reply["payload"]["status"] == "ok", reply
        await self.until(lambda f: f["event"] == "system" and f["topic"] == topic)
        return ref, reply

    async def heartbeat(self) -> list[dict[str, Any]]:
        """Frames up to the reply to a heartbeat sent now (a fence for "nothing else came")."""
        ref = self.ref()
        await self.push("phoenix", "heartbeat", {}, ref)
        return await self.until(lambda f: f["topic"] == "phoenix" and f["ref"] == ref)


@contextlib.asynccontextmanager
async def raw_socket(
    stack: LocalbaseProcess, key: str | None = keys.SERVICE_ROLE_KEY, **kwargs: Any
) -> AsyncIterator[RawSocket]:
    async with connect(ws_url(stack, key), **kwargs) as ws:
        yield RawSocket(ws)


def changes_of(frames: list[dict[str, Any]], topic: str) -> list[dict[str, Any]]:
    return [
        f["payload"]["data"]
        for f in frames
        if f["event"] == "postgres_changes" and f["topic"] == topic
    ]


# Official client -----------------------------------------------------------------------


class Listener:
    """Hands the client's callbacks to queues (callbacks only hand off)."""

    def __init__(self) -> None:
        self.changes: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.system: asyncio.Queue[SuccessSystemPayload] = asyncio.Queue()
        self.states: asyncio.Queue[RealtimeSubscribeStates] = asyncio.Queue()

    def on_change(self, payload: Any) -> None:
        self.changes.put_nowait(payload)

    def on_system(self, payload: SuccessSystemPayload) -> None:
        self.system.put_nowait(payload)

    def on_state(self, state: RealtimeSubscribeStates, error: Exception | None) -> None:
        self.states.put_nowait(state)

    async def change(self, limit: float = TIMEOUT) -> dict[str, Any]:
        payload = await asyncio.wait_for(self.changes.get(), limit)
        return dict(payload["data"])

    async def subscribed(self, limit: float = TIMEOUT) -> None:
        message = await asyncio.wait_for(self.system.get(), limit)
        assert (message.extension, message.message, message.status) == (
            "postgres_changes",
            SUBSCRIBED,
            "ok",
        )

    async def state(self, wanted: RealtimeSubscribeStates, limit: float = TIMEOUT) -> None:
        async with asyncio.timeout(limit):
            while await self.states.get() != wanted:
                pass


@contextlib.asynccontextmanager
async def realtime_client(
    stack: LocalbaseProcess, key: str = keys.SERVICE_ROLE_KEY, **kwargs: Any
) -> AsyncIterator[AsyncRealtimeClient]:
    client = AsyncRealtimeClient(f"{stack.url}/realtime/v1", key, **kwargs)
    await client.connect()
    try:
        yield client
    finally:
        await client.close()


async def subscribe(
    client: AsyncRealtimeClient, name: str, *bindings: Binding, wait: bool = True
) -> tuple[AsyncRealtimeChannel, Listener]:
    """A channel with one callback per binding; waits for "Subscribed to PostgreSQL"."""
    listener = Listener()
    channel = client.channel(name)
    for binding in bindings:
        channel.on_postgres_changes(
            binding.get("event", "*"),
            listener.on_change,
            table=binding.get("table"),
            schema=binding.get("schema"),
            filter=binding.get("filter"),
        )
    channel.on_system(listener.on_system)
    await channel.subscribe(listener.on_state)
    if wait:
        await listener.subscribed()
    return channel, listener


def topic_name() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


# Tables ----------------------------------------------------------------------------------

TableFactory = Callable[..., str]


def table_factory(admin_sql: Callable[[str], None]) -> Iterator[TableFactory]:
    """The body of ``make_table`` fixtures (other modules declare their own)."""
    created: list[str] = []

    def make(
        columns: str,
        *,
        publish: bool = True,
        rls: bool = False,
        full: bool = False,
        grant: bool = True,
    ) -> str:
        name = f"rt_{uuid.uuid4().hex[:10]}"
        statements = [f"create table public.{name} ({columns})"]
        if grant:
            statements.append(
                f"grant select, insert, update, delete on public.{name}"
                " to anon, authenticated, service_role"
            )
        else:  # not even what default privileges on `public` grant
            statements.append(f"revoke all on public.{name} from anon, authenticated, service_role")
        if rls:
            statements.append(f"alter table public.{name} enable row level security")
        if full:
            statements.append(f"alter table public.{name} replica identity full")
        if publish:
            statements.append(f"alter publication supabase_realtime add table public.{name}")
        admin_sql(";\n".join(statements))
        created.append(name)
        return name

    yield make
    if created:
        admin_sql(";".join(f"drop table if exists public.{name}" for name in created))


# Broadcast and Presence ----------------------------------------------------------------


class Inbox:
    """Broadcast, presence and ``system`` callbacks of one official-client channel, handed to
    queues; the subscribe states and their errors too."""

    def __init__(self) -> None:
        self.broadcasts: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.system: asyncio.Queue[Any] = asyncio.Queue()
        self.states: asyncio.Queue[tuple[RealtimeSubscribeStates, Exception | None]] = (
            asyncio.Queue()
        )
        self.syncs: asyncio.Queue[None] = asyncio.Queue()
        self.joins: asyncio.Queue[tuple[str, list[Any], list[Any]]] = asyncio.Queue()
        self.leaves: asyncio.Queue[tuple[str, list[Any], list[Any]]] = asyncio.Queue()

    def on_broadcast(self, payload: Any) -> None:
        self.broadcasts.put_nowait(dict(payload))

    def on_system(self, payload: Any) -> None:
        self.system.put_nowait(payload)

    def on_state(self, state: RealtimeSubscribeStates, error: Exception | None) -> None:
        self.states.put_nowait((state, error))

    def on_sync(self) -> None:
        self.syncs.put_nowait(None)

    def on_join(self, key: str, current: Any, new: Any) -> None:
        self.joins.put_nowait((key, list(current), list(new)))

    def on_leave(self, key: str, current: Any, left: Any) -> None:
        self.leaves.put_nowait((key, list(current), list(left)))

    async def broadcast(self, limit: float = TIMEOUT) -> dict[str, Any]:
        return await asyncio.wait_for(self.broadcasts.get(), limit)

    async def until_event(self, event: str, limit: float = TIMEOUT) -> list[dict[str, Any]]:
        """Broadcasts up to and including the first with ``event`` (a fence)."""
        seen: list[dict[str, Any]] = []
        async with asyncio.timeout(limit):
            while not seen or seen[-1]["event"] != event:
                seen.append(await self.broadcasts.get())
        return seen

    async def state(self, limit: float = TIMEOUT) -> tuple[RealtimeSubscribeStates, Any]:
        return await asyncio.wait_for(self.states.get(), limit)


async def join_channel(
    client: AsyncRealtimeClient,
    name: str,
    config: dict[str, Any] | None = None,
    *,
    presence: bool = False,
    expect: RealtimeSubscribeStates = RealtimeSubscribeStates.SUBSCRIBED,
) -> tuple[AsyncRealtimeChannel, Inbox]:
    """A channel listening to every broadcast (and presence, if asked), subscribed."""
    inbox = Inbox()
    channel = client.channel(name, {"config": config} if config is not None else None)
    channel.on_broadcast("*", inbox.on_broadcast)
    channel.on_system(inbox.on_system)
    if presence:
        channel.on_presence_sync(inbox.on_sync)
        channel.on_presence_join(inbox.on_join)
        channel.on_presence_leave(inbox.on_leave)
    await channel.subscribe(inbox.on_state)
    state, error = await inbox.state(limit=10)
    assert state == expect, (state, error)
    return channel, inbox


def broadcast_url(stack: LocalbaseProcess, suffix: str = "") -> str:
    return f"{stack.url}/realtime/v1/api/broadcast{suffix}"


def metrics(stack: LocalbaseProcess) -> dict[str, Any]:
    response = httpx.get(f"{stack.url}/realtime/v1/metrics", timeout=5)
    response.raise_for_status()
    return dict(response.json())
