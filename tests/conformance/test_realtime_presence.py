"""``spec/realtime-broadcast.md`` §11, Presence: P1–P12 and L2, with the official client's
``track``/``untrack`` and ``on_presence_sync/join/leave``; raw sockets where a case needs the
frames themselves (``phx_ref``, replies the client does not wait for, the absence of a frame).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from devstack.localbase import LocalbaseProcess
from tests.conformance.realtime_helpers import (
    Inbox,
    RawSocket,
    join_channel,
    raw_socket,
    realtime_client,
    topic_name,
)
from tests.conftest import make_jwt

SQL = Callable[[str], None]
PHX_REF = re.compile(r"^[A-Za-z0-9_-]{16}$")


def presence_config(
    key: str = "", *, enabled: bool = True, private: bool = False
) -> dict[str, Any]:
    return {
        "broadcast": {"ack": False, "self": False},
        "presence": {"key": key, "enabled": enabled},
        "private": private,
        "postgres_changes": [],
    }


async def push_presence(sock: RawSocket, topic: str, join_ref: str, payload: object) -> str:
    ref = sock.ref()
    await sock.push(f"realtime:{topic}", "presence", payload, ref, join_ref)
    return ref


async def joined(inbox: Inbox) -> tuple[str, list[Any], list[Any]]:
    return await asyncio.wait_for(inbox.joins.get(), 5)


def assert_metas(payload: dict[str, Any]) -> None:
    """P12: every meta carries a 16-character ``phx_ref``."""
    for entry in payload.values():
        for meta in entry["metas"]:
            assert PHX_REF.match(meta["phx_ref"]), meta


async def test_p1_p2_p3_track(localbase: LocalbaseProcess) -> None:
    name = topic_name()
    async with realtime_client(localbase) as a_client, realtime_client(localbase) as b_client:
        a, a_inbox = await join_channel(a_client, name, {"presence": {"key": "a"}}, presence=True)
        await asyncio.wait_for(a_inbox.syncs.get(), 5)
        assert a.presence_state() == {}
        _, b_inbox = await join_channel(b_client, name, presence=True)
        await a.track({"w": "a"})
        for inbox in (a_inbox, b_inbox):
            key, current, new = await joined(inbox)
            assert key == "a"
            assert current == []
            assert new[0]["w"] == "a"
            assert PHX_REF.match(new[0]["presence_ref"])
        ref = new[0]["presence_ref"]
        async with raw_socket(localbase) as c:
            await c.push(f"realtime:{name}", "phx_join", {"config": presence_config()}, "1", "1")
            frames = await c.until(lambda f: f["event"] == "presence_state")
            state = frames[-1]
            assert state["ref"] is None
            assert state["payload"] == {"a": {"metas": [{"phx_ref": ref, "w": "a"}]}}


async def test_p2_raw_diff(localbase: LocalbaseProcess) -> None:
    name = topic_name()
    async with raw_socket(localbase) as a, raw_socket(localbase) as b:
        join_ref, _ = await a.join(f"realtime:{name}", config=presence_config("k"))
        await b.join(f"realtime:{name}", config=presence_config())
        await a.frame()  # its presence_state
        await b.frame()
        ref = await push_presence(a, name, join_ref, {"event": "track", "payload": {"w": "a"}})
        reply, diff = await a.frame(), await a.frame()
        assert reply["ref"] == ref
        assert reply["payload"] == {"status": "ok", "response": {}}
        other = await b.frame()
        assert diff == other
        assert diff["event"] == "presence_diff"
        assert diff["ref"] is None
        assert diff["payload"]["leaves"] == {}
        assert_metas(diff["payload"]["joins"])
        assert diff["payload"]["joins"]["k"]["metas"][0]["w"] == "a"


async def test_p4_keys(localbase: LocalbaseProcess) -> None:
    name = topic_name()
    async with raw_socket(localbase) as sock:
        keys = []
        for n in range(2):
            topic = f"realtime:{name}-{n}"
            join_ref, _ = await sock.join(topic, config=presence_config(""))
            await sock.frame()
            ref = sock.ref()
            await sock.push(topic, "presence", {"event": "track", "payload": {}}, ref, join_ref)
            await sock.frame()
            diff = await sock.frame()
            keys.extend(diff["payload"]["joins"])
        assert len(set(keys)) == 2
        assert all(len(key) == 36 for key in keys)
        assert all(uuid.UUID(key) for key in keys)


async def test_p5_update_and_same_payload(localbase: LocalbaseProcess) -> None:
    name = topic_name()
    async with raw_socket(localbase) as sock:
        join_ref, _ = await sock.join(f"realtime:{name}", config=presence_config("k"))
        await sock.frame()
        await push_presence(sock, name, join_ref, {"event": "track", "payload": {"v": 1}})
        first = (await sock.until(lambda f: f["event"] == "presence_diff"))[-1]
        old = first["payload"]["joins"]["k"]["metas"][0]
        await push_presence(sock, name, join_ref, {"event": "track", "payload": {"v": 2}})
        update = (await sock.until(lambda f: f["event"] == "presence_diff"))[-1]["payload"]
        assert update["leaves"] == {"k": {"metas": [old]}}
        new = update["joins"]["k"]["metas"][0]
        assert new["v"] == 2
        assert new["phx_ref_prev"] == old["phx_ref"]
        await push_presence(sock, name, join_ref, {"event": "track", "payload": {"v": 2}})
        assert [f["event"] for f in await sock.heartbeat()] == ["phx_reply", "phx_reply"]


async def test_p6_p7_leaves(localbase: LocalbaseProcess) -> None:
    name = topic_name()
    async with realtime_client(localbase) as b_client:
        _, b_inbox = await join_channel(b_client, name, presence=True)
        b = b_client.channel(name)
        async with realtime_client(localbase) as a_client:
            a, _ = await join_channel(a_client, name, {"presence": {"key": "a"}}, presence=True)
            await a.track({"w": 1})
            await joined(b_inbox)
            await a.untrack()
            key, remaining, left = await asyncio.wait_for(b_inbox.leaves.get(), 5)
            assert (key, remaining, left[0]["w"]) == ("a", [], 1)
            assert "a" not in b.presence_state()
            await a.track({"w": 2})
            await joined(b_inbox)
        key, _, left = await asyncio.wait_for(b_inbox.leaves.get(), 1)  # socket closed
        assert (key, left[0]["w"]) == ("a", 2)
        async with realtime_client(localbase) as c_client:
            c, _ = await join_channel(c_client, name, {"presence": {"key": "c"}}, presence=True)
            await c.track({"w": 3})
            await joined(b_inbox)
            await c_client.remove_channel(c)
            key, _, _ = await asyncio.wait_for(b_inbox.leaves.get(), 1)
            assert key == "c"


async def test_p8_presence_rate(localbase: LocalbaseProcess) -> None:
    name = topic_name()
    async with raw_socket(localbase) as sock:
        join_ref, _ = await sock.join(f"realtime:{name}", config=presence_config("k"))
        await sock.frame()
        for n in range(6):
            await push_presence(sock, name, join_ref, {"event": "track", "payload": {"n": n}})
        frames = await sock.until(lambda f: f["event"] == "phx_close")
        system = frames[-2]
        assert system["event"] == "system"
        assert system["payload"]["status"] == "error"
        assert system["payload"]["message"] == "Client presence rate limit exceeded"


@pytest.mark.parametrize(
    ("payload", "response"),
    [
        ({"event": "track", "payload": "x"}, {"reason": "Presence track payload must be a map"}),
        ({"event": "wave", "payload": {}}, {}),
        ("junk", {}),
    ],
)
async def test_p9_bad_presence_pushes(
    localbase: LocalbaseProcess, payload: object, response: object
) -> None:
    name = topic_name()
    async with raw_socket(localbase) as sock:
        join_ref, _ = await sock.join(f"realtime:{name}", config=presence_config("k"))
        await sock.frame()
        ref = await push_presence(sock, name, join_ref, payload)
        reply = await sock.frame()
        assert reply["ref"] == ref
        assert reply["payload"] == {"status": "error", "response": response}


async def test_p10_private_presence_denied(
    localbase: LocalbaseProcess, policies: Callable[[str], None]
) -> None:
    name = topic_name()
    policies(
        f"for select to authenticated using (realtime.topic() = '{name}'"
        " and realtime.messages.extension = 'broadcast')"
    )
    token = make_jwt(str(uuid.uuid4()))
    async with raw_socket(localbase, token) as sock, realtime_client(localbase) as service:
        join_ref, reply = await sock.join(
            f"realtime:{name}", config=presence_config("u", private=True), token=token
        )
        assert reply["payload"]["status"] == "ok"
        ref = await push_presence(sock, name, join_ref, {"event": "track", "payload": {}})
        reply = await sock.frame()
        assert reply["ref"] == ref
        assert reply["payload"] == {"status": "error", "response": {}}
        tracker, _ = await join_channel(service, name, {"private": True}, presence=True)
        await tracker.track({"w": "service"})
        await tracker.send_broadcast("fence", {})
        frame = await sock.frame()
        assert frame["event"] == "broadcast"  # no presence_state, no diff before it


async def test_p11_public_member_without_presence(localbase: LocalbaseProcess) -> None:
    name = topic_name()
    async with raw_socket(localbase) as sock, realtime_client(localbase) as a_client:
        await sock.join(f"realtime:{name}", config=presence_config(enabled=False))
        a, _ = await join_channel(a_client, name, {"presence": {"key": "a"}}, presence=True)
        await a.track({"w": 1})
        diff = await sock.frame()
        assert diff["event"] == "presence_diff"
        assert_metas(diff["payload"]["joins"])


async def test_l2_track_too_large(localbase: LocalbaseProcess) -> None:
    name = topic_name()
    async with raw_socket(localbase) as sock:
        join_ref, _ = await sock.join(f"realtime:{name}", config=presence_config("k"))
        await sock.frame()
        big = {"blob": "x" * 310_000}
        await push_presence(sock, name, join_ref, {"event": "track", "payload": big})
        frames = await sock.until(lambda f: f["event"] == "phx_close")
        assert frames[-2]["payload"]["message"] == "Track message size exceeded"
