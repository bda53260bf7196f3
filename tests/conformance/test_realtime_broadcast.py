"""``spec/realtime-broadcast.md`` §11: Broadcast (B1–B9), Realtime Authorization (A1–A9),
Broadcast from Database (D1–D10), Replay (RP1–RP7), REST broadcast (H1–H6), and bad input.

The official ``realtime`` client wherever it can show the behaviour; a raw Phoenix socket where
a case needs frames the client hides (exact frames, replies it drops, the absence of a reply).
"Nothing arrived" is always proven with a fence: a later message that must arrive after it.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest
from realtime import AsyncRealtimeChannel, RealtimeSubscribeStates
from realtime.exceptions import RealtimeHTTPError
from realtime.types import RealtimeAcknowledgementStatus

from devstack.localbase import LocalbaseProcess
from localbase import keys
from tests.conformance.realtime_helpers import (
    RawSocket,
    broadcast_url,
    join_channel,
    raw_socket,
    realtime_client,
    topic_name,
)
from tests.conftest import make_jwt

SQL = Callable[[str], None]
PUBLIC = {"broadcast": {"ack": False, "self": False}, "private": False}
PRIVATE = {"broadcast": {"ack": False, "self": False}, "private": True}
LIMIT_BYTES = 256 * 1000 + 500


def read_policy(topic: str, extensions: str = "'broadcast'") -> str:
    return (
        f"for select to authenticated using (realtime.topic() = '{topic}'"
        f" and realtime.messages.extension in ({extensions}))"
    )


def write_policy(topic: str) -> str:
    return (
        f"for insert to authenticated with check (realtime.topic() = '{topic}'"
        " and realtime.messages.extension = 'broadcast')"
    )


async def post(url: str, body: object, key: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.post(url, json=body, headers={"apikey": key})


def db(stack: LocalbaseProcess, statement: str, *args: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(stack.db_dsn, autocommit=True) as conn:
        cursor = conn.execute(statement.encode(), args or None)
        return list(cursor.fetchall()) if cursor.description else []


def raw_config(**broadcast: object) -> dict[str, Any]:
    private = bool(broadcast.pop("private", False))
    return {
        "broadcast": {"ack": False, "self": False, **broadcast},
        "presence": {"key": "", "enabled": False},
        "private": private,
        "postgres_changes": [],
    }


async def raw_broadcast(
    sock: RawSocket, topic: str, join_ref: str, event: str, payload: object
) -> str:
    ref = sock.ref()
    body = {"type": "broadcast", "event": event, "payload": payload}
    await sock.push(f"realtime:{topic}", "broadcast", body, ref, join_ref)
    return ref


async def acked(channel: AsyncRealtimeChannel, payload: dict[str, Any]) -> Any:
    """Push a broadcast with the client's ``push`` and wait for its ``ok`` reply (the raw
    tests check the reply's exact shape)."""
    done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    push = await channel.push("broadcast", payload)
    push.receive(RealtimeAcknowledgementStatus.Ok, lambda r: done.set_result(r))
    return await asyncio.wait_for(done, 5)


# B1–B9 -------------------------------------------------------------------------------------


async def test_b1_default_join(localbase: LocalbaseProcess) -> None:
    async with raw_socket(localbase) as sock:
        topic = f"realtime:{topic_name()}"
        _, reply = await sock.join(topic)
        assert reply["payload"] == {"status": "ok", "response": {"postgres_changes": []}}
        after = await sock.heartbeat()
        assert [f["event"] for f in after] == ["phx_reply"]


async def test_b2_b3_self_and_others(localbase: LocalbaseProcess) -> None:
    name = topic_name()
    async with (
        realtime_client(localbase) as a_client,
        realtime_client(localbase) as b_client,
        realtime_client(localbase) as c_client,
    ):
        a, a_inbox = await join_channel(a_client, name, PUBLIC)
        _, b_inbox = await join_channel(b_client, name, PUBLIC)
        c, c_inbox = await join_channel(c_client, name, {"broadcast": {"self": True}})
        await a.send_broadcast("ev", {"n": 1})
        assert await b_inbox.broadcast() == {"event": "ev", "payload": {"n": 1}}
        await c.send_broadcast("fence", {})
        assert [m["event"] for m in await a_inbox.until_event("fence")] == ["fence"]
        assert [m["event"] for m in await c_inbox.until_event("fence")] == ["ev", "fence"]


async def test_b4_ack(localbase: LocalbaseProcess) -> None:
    name = topic_name()
    async with realtime_client(localbase) as client:
        channel, _ = await join_channel(client, name, {"broadcast": {"ack": True}})
        await acked(channel, {"type": "broadcast", "event": "e", "payload": {}})
    async with raw_socket(localbase) as sock:
        join_ref, _ = await sock.join(f"realtime:{name}", config=raw_config(ack=True))
        ref = await raw_broadcast(sock, name, join_ref, "e", {})
        reply = (await sock.until(lambda f: f["event"] == "phx_reply"))[-1]
        assert reply["ref"] == ref
        assert reply["payload"] == {"status": "ok", "response": {}}
    async with raw_socket(localbase) as sock:
        join_ref, _ = await sock.join(f"realtime:{name}", config=raw_config(ack=False))
        await raw_broadcast(sock, name, join_ref, "e", {})
        assert [f["event"] for f in await sock.heartbeat()] == ["phx_reply"]


async def test_b5_event_matching(localbase: LocalbaseProcess) -> None:
    name = topic_name()
    async with realtime_client(localbase) as client:
        seen: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        channel = client.channel(name, {"config": {"broadcast": {"self": True}}})
        channel.on_broadcast("EV", lambda p: seen.put_nowait(("EV", p)))
        channel.on_broadcast("*", lambda p: seen.put_nowait(("*", p)))
        subscribed = asyncio.Event()
        await channel.subscribe(lambda state, error: subscribed.set())
        await asyncio.wait_for(subscribed.wait(), 5)
        await channel.send_broadcast("ev", {"k": 1})
        got = {(await asyncio.wait_for(seen.get(), 5))[0] for _ in range(2)}
        assert got == {"EV", "*"}


async def test_b6_non_object_payload(localbase: LocalbaseProcess) -> None:
    name = topic_name()
    async with (
        raw_socket(localbase) as sender,
        raw_socket(localbase) as receiver,
        realtime_client(localbase) as client,
    ):
        _, inbox = await join_channel(client, name, PUBLIC)
        join_ref, _ = await sender.join(f"realtime:{name}")
        await receiver.join(f"realtime:{name}")
        await raw_broadcast(sender, name, join_ref, "ev", [1, 2])
        frame = await receiver.frame(client_valid=False)
        assert frame["payload"] == {"type": "broadcast", "event": "ev", "payload": [1, 2]}
        await raw_broadcast(sender, name, join_ref, "fence", {})
        assert [m["event"] for m in await inbox.until_event("fence")] == ["fence"]


async def test_b7_public_and_private_are_separate(localbase: LocalbaseProcess) -> None:
    name = topic_name()
    async with (
        realtime_client(localbase) as a,
        realtime_client(localbase) as b,
        realtime_client(localbase) as c,
        realtime_client(localbase) as d,
    ):
        public, public_inbox = await join_channel(a, name, PUBLIC)
        private, private_inbox = await join_channel(b, name, PRIVATE)
        public_sender, _ = await join_channel(c, name, PUBLIC)
        private_sender, _ = await join_channel(d, name, PRIVATE)
        await public_sender.send_broadcast("ws", {})
        await public_sender.http_send("rest", {})
        db(localbase, "select realtime.send('{}', 'db', %s, false)", name)
        assert [m["event"] for m in await public_inbox.until_event("db")] == ["ws", "rest", "db"]
        await private_sender.send_broadcast("ws-private", {})
        await private_sender.http_send("rest-private", {})
        db(localbase, "select realtime.send('{}', 'db-private', %s)", name)
        assert [m["event"] for m in await private_inbox.until_event("db-private")] == [
            "ws-private",
            "rest-private",
            "db-private",
        ]
        await public_sender.send_broadcast("fence", {})
        assert [m["event"] for m in await public_inbox.until_event("fence")] == ["fence"]
        await private_sender.send_broadcast("fence", {})
        assert [m["event"] for m in await private_inbox.until_event("fence")] == ["fence"]
        assert public is not private


async def test_b8_order(localbase: LocalbaseProcess) -> None:
    name = topic_name()
    async with realtime_client(localbase) as a, realtime_client(localbase) as b:
        sender, _ = await join_channel(a, name, PUBLIC)
        _, inbox = await join_channel(b, name, PUBLIC)
        for n in range(50):
            await sender.send_broadcast("n", {"n": n})
        received = [(await inbox.broadcast())["payload"]["n"] for _ in range(50)]
        assert received == list(range(50))


async def test_b9_payload_limit(localbase: LocalbaseProcess) -> None:
    name = topic_name()
    big = {"blob": "x" * int(LIMIT_BYTES * 1.2)}
    async with raw_socket(localbase) as sock, raw_socket(localbase) as receiver:
        await receiver.join(f"realtime:{name}")
        join_ref, _ = await sock.join(f"realtime:{name}", config=raw_config(ack=True))
        ref = await raw_broadcast(sock, name, join_ref, "big", big)
        reply = await sock.frame(10, client_valid=False)  # the client drops this reply
        assert reply["ref"] == ref
        assert reply["payload"] == {"status": "error", "response": "payload_size_exceeded"}
        async with raw_socket(localbase) as quiet:
            join_ref, _ = await quiet.join(f"realtime:{name}", config=raw_config())
            await raw_broadcast(quiet, name, join_ref, "big", big)
            assert [f["event"] for f in await quiet.heartbeat()] == ["phx_reply"]
            await raw_broadcast(quiet, name, join_ref, "fence", {})
        frame = await receiver.frame()
        assert frame["payload"]["event"] == "fence"


# A1–A9 -------------------------------------------------------------------------------------


async def test_a1_private_join_refused(localbase: LocalbaseProcess) -> None:
    name = topic_name()
    async with realtime_client(localbase, keys.ANON_KEY) as client:
        channel, inbox = await join_channel(
            client, name, PRIVATE, expect=RealtimeSubscribeStates.CHANNEL_ERROR
        )
        state, error = await inbox.state(limit=10)  # it rejoins by itself, and is refused again
        assert state == RealtimeSubscribeStates.CHANNEL_ERROR
        reason = json.loads(str(error))["reason"]
        assert reason == (
            f"Unauthorized: You do not have permissions to read from this Channel topic: {name}"
        )
        await client.remove_channel(channel)


async def test_a2_a5_policies(localbase: LocalbaseProcess, policies: Callable[[str], None]) -> None:
    name = topic_name()
    policies(read_policy(name))
    user = make_jwt(str(uuid.uuid4()))
    async with realtime_client(localbase, user) as a, realtime_client(localbase) as service:
        member, inbox = await join_channel(a, name, {**PRIVATE, "broadcast": {"ack": True}})
        sender, _ = await join_channel(service, name, PRIVATE)
        await sender.send_broadcast("from-service", {"n": 1})
        assert await inbox.broadcast() == {"event": "from-service", "payload": {"n": 1}}
        policies(write_policy(name))
        await acked(member, {"type": "broadcast", "event": "mine", "payload": {}})


async def test_a3_service_role(localbase: LocalbaseProcess) -> None:
    name = topic_name()
    async with realtime_client(localbase) as client:
        channel, inbox = await join_channel(client, name, {**PRIVATE, "broadcast": {"self": True}})
        await channel.send_broadcast("ev", {"ok": True})
        assert await inbox.broadcast() == {"event": "ev", "payload": {"ok": True}}


async def test_a4_read_only_member(
    localbase: LocalbaseProcess, policies: Callable[[str], None]
) -> None:
    name = topic_name()
    policies(read_policy(name))
    user = make_jwt(str(uuid.uuid4()))
    config = raw_config(ack=True, private=True)
    async with (
        raw_socket(localbase, user) as sock,
        realtime_client(localbase) as service,
        realtime_client(localbase) as other,
    ):
        sender, _ = await join_channel(service, name, PRIVATE)
        _, watcher = await join_channel(other, name, PRIVATE)
        join_ref, reply = await sock.join(f"realtime:{name}", config=config, token=user)
        assert reply["payload"]["status"] == "ok"
        await raw_broadcast(sock, name, join_ref, "denied", {})
        assert [f["event"] for f in await sock.heartbeat()] == ["phx_reply"]  # no ack reply
        await sender.send_broadcast("others", {})
        assert (await sock.frame())["payload"]["event"] == "others"
        assert [m["event"] for m in await watcher.until_event("others")] == ["others"]


async def test_a6_claims(localbase: LocalbaseProcess, policies: Callable[[str], None]) -> None:
    prefix = f"u{uuid.uuid4().hex[:6]}-"
    policies(
        "for select to authenticated using (realtime.topic() = "
        f"'{prefix}' || (select auth.uid())::text and "
        f"(current_setting('request.jwt.claims', true)::jsonb ->> 'team') = 'red')"
    )
    sub = str(uuid.uuid4())
    async with realtime_client(localbase, make_jwt(sub, team="red")) as client:
        await join_channel(client, f"{prefix}{sub}", PRIVATE)
    async with raw_socket(localbase) as sock:
        for token, topic in [
            (make_jwt(sub, team="blue"), f"{prefix}{sub}"),
            (make_jwt(sub, team="red"), f"{prefix}{uuid.uuid4()}"),
        ]:
            _, reply = await sock.join(
                f"realtime:{topic}", config=raw_config(private=True), token=token
            )
            assert reply["payload"]["status"] == "error", (topic, reply)


async def test_a7_probes_leave_no_rows(
    localbase: LocalbaseProcess, policies: Callable[[str], None]
) -> None:
    name = topic_name()
    policies(read_policy(name, "'broadcast', 'presence'"))
    policies(f"for insert to authenticated with check (realtime.topic() = '{name}')")
    before = db(localbase, "select count(*) from realtime.messages")[0][0]
    user = make_jwt(str(uuid.uuid4()))
    async with realtime_client(localbase, user) as client:
        channel, inbox = await join_channel(
            client, name, {**PRIVATE, "broadcast": {"self": True}}, presence=True
        )
        await channel.send_broadcast("ev", {})
        await channel.track({"here": True})
        await inbox.until_event("ev")
        await asyncio.wait_for(inbox.joins.get(), 5)
    assert db(localbase, "select count(*) from realtime.messages")[0][0] == before


async def test_a8_token_loses_read(
    localbase: LocalbaseProcess, policies: Callable[[str], None]
) -> None:
    name = topic_name()
    policies(
        f"for select to authenticated using (realtime.topic() = '{name}'"
        " and (select auth.jwt()) ->> 'team' = 'red')"
    )
    red, blue = make_jwt("u", team="red"), make_jwt("u", team="blue")
    async with raw_socket(localbase, red) as sock:
        join_ref, reply = await sock.join(
            f"realtime:{name}", config=raw_config(private=True), token=red
        )
        assert reply["payload"]["status"] == "ok"
        await sock.push(f"realtime:{name}", "access_token", {"access_token": blue}, None, join_ref)
        frames = await sock.until(lambda f: f["event"] == "phx_close")
        system = frames[-2]
        assert system["event"] == "system"
        assert system["payload"]["status"] == "error"
        assert system["payload"]["message"] == (
            f"You no longer have permission to read from this Channel topic: {name}"
        )


async def test_a9_presence_only_read(
    localbase: LocalbaseProcess, policies: Callable[[str], None]
) -> None:
    name = topic_name()
    policies(read_policy(name, "'presence'"))
    user = make_jwt(str(uuid.uuid4()))
    async with realtime_client(localbase, user) as a, realtime_client(localbase) as service:
        _, inbox = await join_channel(a, name, PRIVATE, presence=True)
        sender, _ = await join_channel(service, name, PRIVATE)
        await sender.send_broadcast("hidden", {})
        await sender.track({"who": "service"})
        _, _, new = await asyncio.wait_for(inbox.joins.get(), 5)
        assert new[0]["who"] == "service"
        assert inbox.broadcasts.empty()


# D1–D10 ------------------------------------------------------------------------------------


async def test_d1_d3_send_frames(localbase: LocalbaseProcess) -> None:
    name = topic_name()
    async with raw_socket(localbase) as sock:
        await sock.join(f"realtime:{name}")
        db(localbase, """select realtime.send('{"a":1}', 'ev', %s, false)""", name)
        frame = await sock.frame()
        (row_id,) = db(localbase, "select id::text from realtime.messages where topic = %s", name)[
            0
        ]
        assert frame == {
            "topic": f"realtime:{name}",
            "event": "broadcast",
            "payload": {
                "event": "ev",
                "meta": {"id": row_id},
                "payload": {"a": 1, "id": row_id},
                "type": "broadcast",
            },
            "ref": None,
        }
        db(localbase, """select realtime.send('{"id":"x"}', 'ev', %s, false)""", name)
        payload = (await sock.frame())["payload"]
        assert payload["payload"] == {"id": "x"}
        assert payload["meta"]["id"] != "x"


async def test_d2_send_defaults_to_private(localbase: LocalbaseProcess) -> None:
    name = topic_name()
    async with realtime_client(localbase) as a, realtime_client(localbase) as b:
        _, public = await join_channel(a, name, PUBLIC)
        _, private = await join_channel(b, name, PRIVATE)
        db(localbase, "select realtime.send('{}', 'private-only', %s)", name)
        db(localbase, "select realtime.send('{}', 'fence', %s, false)", name)
        assert [m["event"] for m in await private.until_event("private-only")] == ["private-only"]
        assert [m["event"] for m in await public.until_event("fence")] == ["fence"]


async def test_d4_transactions(localbase: LocalbaseProcess) -> None:
    name = topic_name()
    async with realtime_client(localbase) as client:
        _, inbox = await join_channel(client, name, PUBLIC)
        with psycopg.connect(localbase.db_dsn) as conn:
            conn.execute("select realtime.send('{}', 'rolled-back', %s, false)", (name,))
            conn.rollback()
            for n in range(3):
                conn.execute(
                    "select realtime.send(%s, 'n', %s, false)", (json.dumps({"n": n}), name)
                )
            conn.commit()
        received = [await inbox.broadcast() for _ in range(3)]
        assert [m["payload"]["n"] for m in received] == [0, 1, 2]


@pytest.fixture
def watched_table(admin_sql: SQL) -> Iterator[str]:
    name = f"bc_{uuid.uuid4().hex[:8]}"
    admin_sql(
        f"""
        create table public.{name} (id bigint primary key, status text, blob bytea);
        grant select, insert, update, delete on public.{name} to authenticated, service_role;
        create function public.{name}_bc() returns trigger language plpgsql security definer as $$
        begin
          perform realtime.broadcast_changes('{name}:' || coalesce(new.id, old.id)::text,
            tg_op, tg_op, tg_table_name, tg_table_schema, new, old);
          return null;
        end $$;
        create trigger {name}_bc after insert or update or delete on public.{name}
          for each row execute function public.{name}_bc();
        """
    )
    yield name
    admin_sql(f"drop table public.{name}; drop function public.{name}_bc()")


async def test_d5_broadcast_changes(localbase: LocalbaseProcess, watched_table: str) -> None:
    async with realtime_client(localbase) as client:
        _, inbox = await join_channel(client, f"{watched_table}:17", PRIVATE)
        db(localbase, f"insert into {watched_table} values (17, 'queued', '\\x0102')")
        db(localbase, f"update {watched_table} set status = 'running' where id = 17")
        db(localbase, f"delete from {watched_table} where id = 17")
        insert, update, delete = [await inbox.broadcast() for _ in range(3)]
    row = {"id": 17, "status": "queued", "blob": "\\x0102"}
    for message, event in ((insert, "INSERT"), (update, "UPDATE"), (delete, "DELETE")):
        assert message["event"] == event
        payload = message["payload"]
        assert payload["operation"] == event
        assert payload["table"] == watched_table
        assert payload["schema"] == "public"
        assert payload["id"] == message["meta"]["id"]
    assert insert["payload"]["record"] == row
    assert insert["payload"]["old_record"] is None
    assert update["payload"]["record"] == {**row, "status": "running"}
    assert update["payload"]["old_record"] == row
    assert delete["payload"]["record"] is None
    assert delete["payload"]["old_record"] == {**row, "status": "running"}


async def test_d6_d7_d8_send_never_fails_the_writer(
    localbase: LocalbaseProcess, admin_sql: SQL
) -> None:
    name = topic_name()
    table = f"bc_{uuid.uuid4().hex[:8]}"
    admin_sql(
        f"""
        create table public.{table} (id bigint primary key);
        grant select, insert on public.{table} to authenticated;
        create function public.{table}_bc() returns trigger language plpgsql as $$
        begin
          perform realtime.broadcast_changes('{name}', tg_op, tg_op, tg_table_name,
            tg_table_schema, new, old);
          return null;
        end $$;
        create trigger {table}_bc after insert on public.{table}
          for each row execute function public.{table}_bc();
        create function public.{table}_stmt() returns trigger language plpgsql as $$
        begin
          perform realtime.broadcast_changes('{name}', tg_op, tg_op, tg_table_name,
            tg_table_schema, null, null, tg_level);
          return null;
        end $$;
        """
    )
    async with realtime_client(localbase) as client:
        _, inbox = await join_channel(client, name, PRIVATE)
        notices: list[str] = []
        with psycopg.connect(localbase.db_dsn, autocommit=True) as conn:
            conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
            with conn.transaction():
                conn.execute("set local role authenticated")
                conn.execute(f"insert into public.{table} values (1)")
            conn.execute("select realtime.send('[1]', 'ev', %s)", (name,))
            conn.execute("select realtime.send(null, 'ev', %s)", (name,))
            admin_sql(
                f"create trigger {table}_stmt after insert on public.{table}"
                f" for each statement execute function public.{table}_stmt()"
            )
            with pytest.raises(psycopg.errors.RaiseException) as raised:
                conn.execute(f"insert into public.{table} values (2)")
            conn.execute("select realtime.send('{}', 'fence', %s)", (name,))
        assert raised.value.diag.message_primary == (
            "Failed to process the row: function can only be triggered for each row,"
            " not for each statement"
        )
        assert any("new row violates row-level security policy" in n for n in notices), notices
        assert any('path element at position 1 is not an integer: "id"' in n for n in notices)
        assert [m["event"] for m in await inbox.until_event("fence")] == ["fence"]
    rows = db(localbase, "select event, payload from realtime.messages where topic = %s", name)
    assert sorted(rows, key=str) == sorted(
        [("ev", None), ("fence", {"id": rows[-1][1]["id"]})], key=str
    )
    admin_sql(
        f"drop table public.{table}; drop function public.{table}_bc(), public.{table}_stmt()"
    )


async def test_d9_replication_ready(localbase: LocalbaseProcess) -> None:
    async with realtime_client(localbase) as client:
        _, inbox = await join_channel(
            client, topic_name(), {"broadcast": {"replication_ready": True}}
        )
        message = await asyncio.wait_for(inbox.system.get(), 5)
        assert (message.extension, message.status, message.message) == (
            "system",
            "ok",
            "Replication connection established",
        )


async def test_d10_latency(localbase: LocalbaseProcess) -> None:
    name = topic_name()
    async with realtime_client(localbase) as client:
        _, inbox = await join_channel(client, name, PUBLIC)
        latencies = []
        with psycopg.connect(localbase.db_dsn, autocommit=True) as conn:
            for n in range(100):
                conn.execute(
                    "select realtime.send(%s, 'n', %s, false)", (json.dumps({"n": n}), name)
                )
                committed = time.monotonic()
                assert (await inbox.broadcast(2))["payload"]["n"] == n
                latencies.append(time.monotonic() - committed)
        assert sorted(latencies)[94] <= 0.150


# RP1–RP7 -----------------------------------------------------------------------------------


def now_ms(stack: LocalbaseProcess) -> int:
    return int(db(stack, "select (extract(epoch from clock_timestamp()) * 1000)::bigint")[0][0])


def private_sends(stack: LocalbaseProcess, name: str, count: int) -> None:
    db(
        stack,
        "select realtime.send(jsonb_build_object('n', n), 'n', %s) from generate_series(0, %s) n",
        name,
        count - 1,
    )


async def replay_join(
    stack: LocalbaseProcess, name: str, replay: object
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A raw private join with ``replay``; the reply and the frames before a heartbeat fence."""
    config = raw_config(private=True, replay=replay)
    async with raw_socket(stack) as sock:
        _, reply = await sock.join(f"realtime:{name}", config=config)
        return reply, (await sock.heartbeat())[:-1]


async def test_rp1_rp2_replay_newest_oldest_first(localbase: LocalbaseProcess) -> None:
    name = topic_name()
    since = now_ms(localbase)
    for n in range(30):
        db(localbase, "select realtime.send(%s, 'n', %s)", json.dumps({"n": n}), name)
    reply, frames = await replay_join(localbase, name, {"since": since})
    assert reply["payload"]["status"] == "ok"
    assert [f["payload"]["payload"]["n"] for f in frames] == list(range(5, 30))
    assert all(f["payload"]["meta"]["replayed"] is True for f in frames)
    assert all(f["payload"]["meta"]["id"] == f["payload"]["payload"]["id"] for f in frames)
    for limit, expected in ((5, 5), (0, 1), (100, 25)):
        _, frames = await replay_join(localbase, name, {"since": since, "limit": limit})
        assert [f["payload"]["payload"]["n"] for f in frames] == list(range(30 - expected, 30))


async def test_rp3_what_is_not_replayed(localbase: LocalbaseProcess) -> None:
    name = topic_name()
    db(localbase, "select realtime.send('{\"old\":1}', 'old', %s)", name)
    since = now_ms(localbase) + 1  # inserted_at has microseconds: "old" is before ``since``
    db(localbase, "select pg_sleep(0.002)")
    db(localbase, "select realtime.send('{}', 'public', %s, false)", name)
    db(localbase, "select realtime.send('{}', 'other', %s)", topic_name())
    response = await post(
        broadcast_url(localbase),
        {"messages": [{"topic": name, "event": "rest", "payload": {}, "private": True}]},
        keys.SERVICE_ROLE_KEY,
    )
    assert response.status_code == 202
    db(localbase, "select realtime.send('{}', 'new', %s)", name)
    _, frames = await replay_join(localbase, name, {"since": since})
    assert [f["payload"]["event"] for f in frames] == ["new"]


@pytest.mark.parametrize(
    ("private", "replay", "reason"),
    [
        (False, {"since": 0}, "UnableToReplayMessages: Replay is not allowed for public channels"),
        (True, {}, "UnableToReplayMessages: Replay params are not valid"),
        (True, {"since": "yesterday"}, "UnableToReplayMessages: Replay params are not valid"),
        (True, None, "UnableToReplayMessages: Replay params are not valid"),
    ],
)
async def test_rp4_rp5_replay_refused(
    localbase: LocalbaseProcess, private: bool, replay: object, reason: str
) -> None:
    async with raw_socket(localbase) as sock:
        config = raw_config(private=private, replay=replay)
        _, reply = await sock.join(f"realtime:{topic_name()}", config=config)
        assert reply["payload"] == {"status": "error", "response": {"reason": reason}}


async def test_rp6_replay_needs_broadcast_read(
    localbase: LocalbaseProcess, policies: Callable[[str], None]
) -> None:
    name = topic_name()
    policies(read_policy(name, "'presence'"))
    config = raw_config(private=True, replay={"since": 0})
    config["presence"]["enabled"] = True
    token = make_jwt(str(uuid.uuid4()))
    async with raw_socket(localbase, token) as sock:
        _, reply = await sock.join(f"realtime:{name}", config=config, token=token)
        assert reply["payload"]["response"]["reason"].startswith("Unauthorized: ")


async def test_rp7_replayed_in_the_client(localbase: LocalbaseProcess) -> None:
    name = topic_name()
    since = now_ms(localbase)
    private_sends(localbase, name, 3)
    config = {**PRIVATE, "broadcast": {"replay": {"since": since, "limit": 10}}}
    async with realtime_client(localbase) as client:
        _, inbox = await join_channel(client, name, config)
        db(localbase, "select realtime.send('{}', 'fence', %s)", name)
        messages = await inbox.until_event("fence")
    replayed = messages[:-1]
    assert [m["meta"]["replayed"] for m in replayed] == [True, True, True]
    ids = [m["meta"]["id"] for m in messages]
    assert len(ids) == len(set(ids)) == 4


# H1–H6 -------------------------------------------------------------------------------------


async def test_h1_batch(localbase: LocalbaseProcess) -> None:
    name = topic_name()
    async with raw_socket(localbase) as public, raw_socket(localbase) as private:
        await public.join(f"realtime:{name}")
        await private.join(f"realtime:{name}", config=raw_config(private=True))
        response = await post(
            broadcast_url(localbase),
            {
                "messages": [
                    {"topic": name, "event": "a", "payload": {"n": 1}},
                    {"topic": name, "event": "b", "payload": {}, "private": True, "id": "m-1"},
                ]
            },
            keys.SERVICE_ROLE_KEY,
        )
        assert (response.status_code, response.content) == (202, b"")
        assert (await public.frame())["payload"] == {
            "event": "a",
            "payload": {"n": 1},
            "type": "broadcast",
        }
        assert (await private.frame())["payload"] == {
            "event": "b",
            "meta": {"id": "m-1"},
            "payload": {},
            "type": "broadcast",
        }


async def test_h2_unauthorized_private_batch_is_dropped(localbase: LocalbaseProcess) -> None:
    name = topic_name()
    async with realtime_client(localbase) as client:
        _, inbox = await join_channel(client, name, PRIVATE)
        for key, event in ((keys.ANON_KEY, "denied"), (keys.SERVICE_ROLE_KEY, "fence")):
            body = {"messages": [{"topic": name, "event": event, "payload": {}, "private": True}]}
            response = await post(broadcast_url(localbase), body, key)
            assert response.status_code == 202
        assert [m["event"] for m in await inbox.until_event("fence")] == ["fence"]


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        (
            {"messages": [{"topic": "t"}, {"topic": "t", "event": "e", "payload": {}}]},
            {"messages": [{"event": ["can't be blank"], "payload": ["can't be blank"]}, {}]},
        ),
        ({"messages": []}, {"messages": ["can't be blank"]}),
        (
            {"messages": [{"topic": "t", "event": "e", "payload": {"x": "y" * 400_000}}]},
            {"messages": [{"payload": ["Payload size exceeds tenant limit"]}]},
        ),
    ],
)
def test_h3_batch_validation(localbase: LocalbaseProcess, body: object, errors: object) -> None:
    response = httpx.post(broadcast_url(localbase), json=body, headers={"apikey": keys.ANON_KEY})
    assert (response.status_code, response.json()) == (422, {"errors": errors})


@pytest.mark.parametrize(
    "headers",
    [{}, {"apikey": make_jwt("u", expires_in=-10)}, {"apikey": "not-a-jwt"}],
)
def test_h4_unauthorized(localbase: LocalbaseProcess, headers: dict[str, str]) -> None:
    body = {"messages": [{"topic": "t", "event": "e", "payload": {}}]}
    response = httpx.post(broadcast_url(localbase), json=body, headers=headers)
    assert (response.status_code, response.json()) == (401, {"message": "Unauthorized"})
    response = httpx.post(broadcast_url(localbase, "/t/events/e"), json={}, headers=headers)
    assert (response.status_code, response.json()) == (401, {"message": "Unauthorized"})


async def test_h5_h6_http_send(localbase: LocalbaseProcess) -> None:
    name = topic_name()
    async with raw_socket(localbase) as public, raw_socket(localbase) as private:
        await public.join(f"realtime:{name}")
        await private.join(f"realtime:{name}", config=raw_config(private=True))
        async with (
            realtime_client(localbase) as service,
            realtime_client(localbase) as service_private,
            realtime_client(localbase, keys.ANON_KEY) as anon,
        ):
            await service.channel(name).http_send("ev", {"a": 1})
            private_channel = service_private.channel(name, {"config": {"private": True}})
            await private_channel.http_send("ev", {"a": 2})
            with pytest.raises(RealtimeHTTPError) as refused:
                await anon.channel(name, {"config": {"private": True}}).http_send("ev", {"a": 3})
            assert (refused.value.status, str(refused.value)) == (403, "Unauthorized")
        expected = {"event": "ev", "payload": {"a": 1}, "type": "broadcast"}
        assert (await public.frame())["payload"] == expected
        assert (await private.frame())["payload"] == {**expected, "payload": {"a": 2}}
        assert [f["event"] for f in await private.heartbeat()] == ["phx_reply"]


def test_h_single_media_type(localbase: LocalbaseProcess) -> None:
    response = httpx.post(
        broadcast_url(localbase, "/t/events/e"),
        content=b"x",
        headers={"apikey": keys.SERVICE_ROLE_KEY, "content-type": "text/plain"},
    )
    assert response.status_code == 415
    assert response.json() == {
        "error": "Unsupported Media Type. Use application/json or application/octet-stream"
    }


# Bad input ---------------------------------------------------------------------------------


async def test_malformed_broadcasts_leave_everyone_served(localbase: LocalbaseProcess) -> None:
    name = topic_name()
    async with raw_socket(localbase) as hostile, realtime_client(localbase) as a:
        sender, _ = await join_channel(a, name, PUBLIC)
        async with realtime_client(localbase) as b:
            _, inbox = await join_channel(b, name, PUBLIC)
            join_ref, _ = await hostile.join(f"realtime:{name}", config=raw_config(ack=True))
            for payload in ("x", None, 7, [], {"event": None}, {"type": "broadcast"}):
                await hostile.push(
                    f"realtime:{name}", "broadcast", payload, hostile.ref(), join_ref
                )
            await hostile.push(f"realtime:{name}", "presence", "x", hostile.ref(), join_ref)
            await hostile.push(
                f"realtime:{name}", "presence", {"event": 5}, hostile.ref(), join_ref
            )
            await hostile.ws.send("{not json")
            await hostile.heartbeat()
            await sender.send_broadcast("still-here", {})
            assert [m["event"] for m in await inbox.until_event("still-here")][-1] == "still-here"


async def test_thousands_of_joins(localbase: LocalbaseProcess) -> None:
    name = topic_name()
    async with raw_socket(localbase) as hostile, realtime_client(localbase) as a:
        sender, _ = await join_channel(a, name, PUBLIC)
        async with realtime_client(localbase) as b:
            _, inbox = await join_channel(b, name, PUBLIC)
            refs = []
            for n in range(2000):
                ref = hostile.ref()
                refs.append(ref)
                config = raw_config(private=n % 2 == 0)
                await hostile.push(
                    f"realtime:{name}-{n % 50}", "phx_join", {"config": config}, ref, ref
                )
            replies = await hostile.until(
                lambda f: f["event"] == "phx_reply" and f["ref"] == refs[-1], 60
            )
            assert len([f for f in replies if f["event"] == "phx_reply"]) == 2000
            await sender.send_broadcast("still-here", {})
            assert [m["event"] for m in await inbox.until_event("still-here")][-1] == "still-here"
