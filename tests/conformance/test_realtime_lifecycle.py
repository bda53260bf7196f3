"""``spec/realtime.md`` §9 over time: R1, T1, T2, C4, slow consumers, delivery delay, restarts.

Cases that need other settings than the session's localbase (a short idle timeout, a small
outbox, a delivery delay) share one extra localbase started with those options.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from realtime import RealtimeSubscribeStates
from websockets.asyncio.client import connect

from devstack.localbase import LocalbaseProcess
from localbase import keys
from tests.conformance.realtime_helpers import (
    TableFactory,
    changes_of,
    raw_socket,
    realtime_client,
    subscribe,
    table_factory,
    topic_name,
    ws_url,
)
from tests.conftest import make_jwt

SQL = Callable[[str], None]
DELAY_MS = 300


@pytest.fixture
def make_table(admin_sql: SQL) -> Iterator[TableFactory]:
    yield from table_factory(admin_sql)


@pytest.fixture
def jobs(make_table: TableFactory) -> str:
    return make_table("id bigint primary key, status text not null, note text")


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalbaseProcess]:
    """A localbase with a 1 s idle timeout, a 50-frame outbox and a delivery delay."""
    stack = LocalbaseProcess(
        tmp_path_factory.mktemp("realtime-tuned") / "data",
        extra_args=(
            "--realtime-idle-timeout",
            "1",
            "--realtime-max-pending",
            "50",
            "--realtime-delay-ms",
            str(DELAY_MS),
        ),
    )
    stack.start()
    yield stack
    assert stack.stop() == 0


def tuned_sql(stack: LocalbaseProcess) -> SQL:
    import psycopg

    def run(statement: str) -> None:
        with psycopg.connect(stack.db_dsn, autocommit=True) as conn:
            conn.execute(statement.encode())

    return run


@pytest.fixture
def tuned_jobs(tuned: LocalbaseProcess) -> Iterator[str]:
    sql = tuned_sql(tuned)
    name = f"rt_{os.urandom(5).hex()}"
    sql(
        f"create table {name} (id bigint primary key, status text, note text);"
        f" grant select on {name} to anon, authenticated, service_role;"
        f" alter publication supabase_realtime add table {name}"
    )
    yield name
    sql(f"drop table {name}")


# R1 ------------------------------------------------------------------------------------------


async def test_r1_no_replay_after_reconnect(
    localbase: LocalbaseProcess, jobs: str, admin_sql: SQL
) -> None:
    topic = "realtime:" + topic_name()
    bindings = [{"event": "INSERT", "schema": "public", "table": jobs}]
    async with raw_socket(localbase) as first:
        _, before = await first.subscribed(topic, bindings)
    admin_sql(f"insert into {jobs} values (1, 'while disconnected')")
    async with raw_socket(localbase) as second:
        _, after = await second.subscribed(topic, bindings)
        admin_sql(f"insert into {jobs} values (2, 'after the rejoin')")
        frames = await second.until(lambda f: f["event"] == "postgres_changes")
    assert [d["record"]["id"] for d in changes_of(frames, topic)] == [2]
    assert (
        before["payload"]["response"]["postgres_changes"]
        == after["payload"]["response"]["postgres_changes"]
    )


async def test_r1_no_delivery_before_the_subscription_is_confirmed(
    localbase: LocalbaseProcess, jobs: str, admin_sql: SQL
) -> None:
    admin_sql(f"insert into {jobs} values (1, 'before')")
    async with realtime_client(localbase) as client:
        _, listener = await subscribe(client, topic_name(), {"event": "INSERT", "table": jobs})
        admin_sql(f"insert into {jobs} values (2, 'after')")
        assert (await listener.change())["record"]["id"] == 2


def walsender_pids(stack: LocalbaseProcess) -> set[int]:
    import psycopg

    with psycopg.connect(stack.db_dsn, autocommit=True) as conn:
        rows = conn.execute(
            "select pid from pg_stat_replication"
            " where application_name = 'localbase_realtime' and state = 'streaming'"
        ).fetchall()
    return {int(row[0]) for row in rows}


def wait_for_new_walsender(stack: LocalbaseProcess, old: set[int], limit: float) -> None:
    """Poll the server until a different walsender streams (the stream reconnected)."""
    deadline = time.monotonic() + limit
    while not (walsender_pids(stack) - old):
        assert time.monotonic() < deadline, "the replication stream did not come back"
        time.sleep(0.05)


async def test_replication_stream_reconnects(
    localbase: LocalbaseProcess, jobs: str, admin_sql: SQL
) -> None:
    """The stream reconnects by itself; the channels that were subscribed while it was lost are
    closed (the official client reports CLOSED), and a new channel gets changes again."""
    async with realtime_client(localbase) as client:
        _, lost = await subscribe(client, topic_name(), {"event": "INSERT", "table": jobs})
        old = await asyncio.to_thread(walsender_pids, localbase)
        assert len(old) == 1
        admin_sql(f"select pg_terminate_backend({next(iter(old))})")
        await lost.state(RealtimeSubscribeStates.CLOSED)
        await asyncio.to_thread(wait_for_new_walsender, localbase, old, 15)
        _, again = await subscribe(client, topic_name(), {"event": "INSERT", "table": jobs})
        admin_sql(f"insert into {jobs} values (1, 'after the reconnect')")
        assert (await again.change(limit=10))["record"]["id"] == 1
    assert "replication stream lost" in localbase.log_path.read_text()


# T1, T2 ------------------------------------------------------------------------------------


async def test_t1_access_token_refresh(
    localbase: LocalbaseProcess, jobs: str, admin_sql: SQL
) -> None:
    topic = "realtime:" + topic_name()
    async with raw_socket(localbase, keys.ANON_KEY) as socket:
        join_ref, _ = await socket.subscribed(
            topic,
            [{"event": "INSERT", "schema": "public", "table": jobs}],
            token=make_jwt(role="anon", expires_in=60),
        )
        await socket.push(
            topic,
            "access_token",
            {"access_token": make_jwt(role="authenticated", sub="u1")},
            "refresh-1",
            join_ref,
        )
        frames = await socket.until(lambda f: f["event"] == "system")
        frames += await socket.heartbeat()
        admin_sql(f"insert into {jobs} values (1, 'queued')")
        frames += await socket.until(lambda f: f["event"] == "postgres_changes")
    assert not [f for f in frames if f["ref"] == "refresh-1"]
    system = [f for f in frames if f["event"] == "system"]
    assert [s["payload"]["message"] for s in system] == ["Subscribed to PostgreSQL"]
    assert len(changes_of(frames, topic)) == 1


async def test_t1_official_set_auth(localbase: LocalbaseProcess, jobs: str) -> None:
    async with realtime_client(localbase, keys.ANON_KEY) as client:
        _, listener = await subscribe(client, topic_name(), {"event": "*", "table": jobs})
        await client.set_auth(make_jwt(role="anon", expires_in=120))
        await listener.subscribed()


async def test_t1_refresh_with_a_bad_token_closes_the_channel(
    localbase: LocalbaseProcess, jobs: str
) -> None:
    topic = "realtime:" + topic_name()
    async with raw_socket(localbase) as socket:
        join_ref, _ = await socket.subscribed(
            topic, [{"event": "*", "schema": "public", "table": jobs}]
        )
        await socket.push(
            topic,
            "access_token",
            {"access_token": make_jwt(role="anon", expires_in=-3)},
            "5",
            join_ref,
        )
        system, close = await socket.frame(), await socket.frame()
    assert system["payload"]["extension"] == "system"
    assert re.fullmatch(r"Token has expired \d+ seconds ago", system["payload"]["message"])
    assert close == {"topic": topic, "event": "phx_close", "payload": {}, "ref": join_ref}


async def test_t2_token_expiry_closes_the_channel(localbase: LocalbaseProcess, jobs: str) -> None:
    topic = "realtime:" + topic_name()
    expires = make_jwt(role="anon", expires_in=2)
    async with raw_socket(localbase, keys.ANON_KEY) as socket:
        join_ref, _ = await socket.subscribed(
            topic, [{"event": "*", "schema": "public", "table": jobs}], token=expires
        )
        system = await socket.frame(limit=6)
        close = await socket.frame()
    assert system == {
        "topic": topic,
        "event": "system",
        "ref": None,
        "payload": {
            "channel": topic.removeprefix("realtime:"),
            "extension": "system",
            "status": "error",
            "message": system["payload"]["message"],
        },
    }
    assert re.fullmatch(r"Token has expired \d+ seconds ago", system["payload"]["message"])
    assert close == {"topic": topic, "event": "phx_close", "payload": {}, "ref": join_ref}


async def test_t2_official_client_sees_the_channel_close(
    localbase: LocalbaseProcess, jobs: str
) -> None:
    async with realtime_client(localbase, keys.ANON_KEY) as client:
        client.access_token = make_jwt(role="anon", expires_in=2)
        channel, listener = await subscribe(client, topic_name(), {"event": "*", "table": jobs})
        await listener.state(RealtimeSubscribeStates.CLOSED, limit=6)
        assert channel.topic not in client.channels


# C4 and slow consumers (tuned localbase) ---------------------------------------------------


async def test_c4_idle_socket_is_closed(tuned: LocalbaseProcess) -> None:
    async with connect(ws_url(tuned)) as ws:
        with pytest.raises(websockets.ConnectionClosedOK):
            await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code == 1000


async def test_c4_heartbeats_keep_a_socket_open(tuned: LocalbaseProcess) -> None:
    async with raw_socket(tuned) as socket:
        for _ in range(4):
            await asyncio.sleep(0.5)  # pacing, not synchronisation: below the 1 s idle timeout
            await socket.heartbeat()


@contextlib.asynccontextmanager
async def never_reading_socket(
    stack: LocalbaseProcess, topic: str, table: str
) -> AsyncIterator[socket.socket]:
    """A TCP client that joins a channel and then stops reading (tiny receive buffer)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", stack.api_port))
    key = base64.b64encode(os.urandom(16)).decode()
    path = ws_url(stack).split(str(stack.api_port), 1)[1]
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    assert b" 101 " in sock.recv(4096)
    binding = {"event": "*", "schema": "public", "table": table}
    join = json.dumps(
        {
            "topic": topic,
            "event": "phx_join",
            "ref": "1",
            "join_ref": "1",
            "payload": {"config": {"postgres_changes": [binding]}},
        }
    )
    sock.sendall(_masked_text_frame(join.encode()))
    seen = b""
    while b'"system"' not in seen:  # subscribed; from now on, never read
        seen += sock.recv(4096)
    try:
        yield sock
    finally:
        sock.close()


def _masked_text_frame(data: bytes) -> bytes:
    mask = os.urandom(4)
    header = bytes([0x81, 0x80 | 126]) + len(data).to_bytes(2, "big") + mask
    return header + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def _drain(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    chunks = []
    while True:
        chunk = sock.recv(1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


async def test_a_client_that_never_reads_is_disconnected(
    tuned: LocalbaseProcess, tuned_jobs: str
) -> None:
    sql = tuned_sql(tuned)
    topic = "realtime:" + topic_name()
    async with (
        never_reading_socket(tuned, topic, tuned_jobs) as slow,
        realtime_client(tuned) as client,
    ):
        _, listener = await subscribe(
            client, topic_name(), {"event": "INSERT", "table": tuned_jobs, "filter": "id=gt.395"}
        )
        sql(
            f"insert into {tuned_jobs} select g, 'queued', repeat('x', 20000)"
            " from generate_series(1, 400) g"
        )
        for expected in range(396, 401):  # the others keep getting their events
            assert (await listener.change(limit=30))["record"]["id"] == expected
        received = await asyncio.to_thread(_drain, slow, 30)
    assert received.count(b'"postgres_changes"') < 400
    assert "client too slow" in tuned.log_path.read_text()
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{tuned.url}/health")).status_code == 200


# Delivery delay and RLS at delivery time (tuned localbase) ----------------------------------


async def test_delivery_delay_option(tuned: LocalbaseProcess, tuned_jobs: str) -> None:
    sql = tuned_sql(tuned)
    async with realtime_client(tuned) as client:
        _, listener = await subscribe(
            client, topic_name(), {"event": "INSERT", "table": tuned_jobs}
        )
        started = time.monotonic()
        sql(f"insert into {tuned_jobs} values (1, 'queued')")
        await listener.change()
        assert time.monotonic() - started >= DELAY_MS / 1000


async def test_rls_is_checked_against_the_row_at_delivery(tuned: LocalbaseProcess) -> None:
    """A row deleted before its INSERT is delivered is invisible under RLS, as on Supabase."""
    sql = tuned_sql(tuned)
    name = f"rt_{os.urandom(5).hex()}"
    sql(
        f"create table {name} (id int primary key); alter table {name} enable row level security;"
        f" grant select on {name} to service_role;"
        f" alter publication supabase_realtime add table {name}"
    )
    try:
        async with realtime_client(tuned) as client:
            _, listener = await subscribe(client, topic_name(), {"event": "*", "table": name})
            sql(
                f"insert into {name} values (1); delete from {name} where id = 1;"
                f" insert into {name} values (2)"
            )
            first, second = await listener.change(), await listener.change()
    finally:
        sql(f"drop table {name}")
    assert [
        (first["type"], first["old_record"]["id"]),
        (second["type"], second["record"]["id"]),
    ] == [("DELETE", 1), ("INSERT", 2)]


# Restart -----------------------------------------------------------------------------------


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[LocalbaseProcess]:
    stack = LocalbaseProcess(tmp_path / "data")
    stack.start()
    yield stack
    stack.stop()


# realtime 2.34.1 logs ``ConnectionClosedError.code``/``.reason`` while reconnecting, which
# websockets 15 deprecates; under ``filterwarnings = error`` that warning would kill the
# client's listener task instead of letting it reconnect.
@pytest.mark.filterwarnings("ignore:ConnectionClosed.code is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:ConnectionClosed.reason is deprecated:DeprecationWarning")
async def test_python_client_rejoins_after_localbase_restarts(
    restartable: LocalbaseProcess,
) -> None:
    sql = tuned_sql(restartable)
    sql(
        "create table restart_jobs (id int primary key, status text);"
        " grant select on restart_jobs to service_role;"
        " alter publication supabase_realtime add table restart_jobs"
    )
    async with realtime_client(restartable, initial_backoff=0.5) as client:
        _, listener = await subscribe(
            client, topic_name(), {"event": "INSERT", "table": "restart_jobs"}
        )
        await asyncio.to_thread(restartable.stop)
        await listener.state(RealtimeSubscribeStates.CHANNEL_ERROR)
        await asyncio.to_thread(restartable.start)
        await listener.state(RealtimeSubscribeStates.SUBSCRIBED, limit=20)
        await listener.subscribed(limit=10)
        sql("insert into restart_jobs values (1, 'queued')")
        assert (await listener.change())["record"] == {"id": 1, "status": "queued"}
