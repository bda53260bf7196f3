"""``spec/realtime.md`` §9, connection and channel protocol: C1–C5, J1–J7, L1, D1, robustness.

Official ``realtime``/``supabase`` clients where they can show the behaviour; raw ``websockets``
connections where a case needs frames the client hides. Every frame a raw socket receives is
validated against ``realtime.message.ServerMessageAdapter``: the client's own models are the
contract. Helpers shared with the other ``test_realtime_*`` modules are in ``realtime_helpers``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest
import websockets
from realtime import AsyncRealtimeClient, RealtimeSubscribeStates
from websockets.asyncio.client import connect

from devstack.localbase import LocalbaseProcess
from localbase import keys
from supabase import AsyncClient, acreate_client
from tests.conformance.realtime_helpers import (
    SUBSCRIBED,
    Binding,
    Listener,
    RawSocket,
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


@pytest.fixture
def make_table(admin_sql: Callable[[str], None]) -> Iterator[TableFactory]:
    """Tables with unique names, granted to the API roles and (by default) published."""
    yield from table_factory(admin_sql)


@pytest.fixture
def jobs(make_table: TableFactory) -> str:
    """A small ``background_jobs``-like table."""
    return make_table("id bigint primary key, status text not null, note text")


# C1–C5 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", [keys.ANON_KEY, keys.SERVICE_ROLE_KEY, keys.PUBLISHABLE_KEY, keys.SECRET_KEY]
)
async def test_c1_upgrade_with_a_valid_key(localbase: LocalbaseProcess, key: str) -> None:
    async with raw_socket(localbase, key) as socket:
        frames = await socket.heartbeat()
    assert frames[-1]["payload"] == {"status": "ok", "response": {}}


async def test_c1_other_paths_header_and_default_vsn(localbase: LocalbaseProcess) -> None:
    url = ws_url(localbase, None, path="/socket/websocket")
    async with connect(url, additional_headers={"x-api-key": keys.ANON_KEY}) as ws:
        await RawSocket(ws).heartbeat()
    no_vsn = f"ws://127.0.0.1:{localbase.api_port}/realtime/v1/websocket?apikey={keys.ANON_KEY}"
    async with connect(no_vsn) as ws:
        await RawSocket(ws).heartbeat()


def _token(claims: dict[str, Any], secret: str = keys.JWT_SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


REFUSED = [
    pytest.param(None, "API key is missing", id="missing"),
    pytest.param(make_jwt(role="anon", expires_in=-60), "Token has expired", id="expired"),
    pytest.param(
        _token({"role": "anon", "exp": int(time.time()) + 60}, "x" * 40),
        "Failed to validate JWT signature",
        id="bad-signature",
    ),
    pytest.param(
        _token({"exp": int(time.time()) + 3600}),
        "Fields `role` and `exp` are required in JWT",
        id="no-role",
    ),
    pytest.param(
        _token({"role": "anon"}), "Fields `role` and `exp` are required in JWT", id="no-exp"
    ),
    pytest.param("not-a-jwt", "The token provided is not a valid JWT", id="malformed"),
]


@pytest.mark.parametrize(("key", "error"), REFUSED)
async def test_c2_refused_upgrade_is_http_401_json(
    localbase: LocalbaseProcess, key: str | None, error: str
) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with connect(ws_url(localbase, key)):
            pass
    response = refused.value.response
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/json")
    assert json.loads(response.body) == {"error": error}


async def test_c2_header_wins_over_query_param(localbase: LocalbaseProcess) -> None:
    with pytest.raises(websockets.InvalidStatus):
        async with connect(
            ws_url(localbase, keys.ANON_KEY), additional_headers={"x-api-key": "bad"}
        ):
            pass


async def test_c2_official_client_retries_five_times(
    localbase: LocalbaseProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    import realtime._async.client as client_module

    attempts = 0
    real_connect = client_module.connect

    def counting_connect(*args: Any, **kwargs: Any) -> Any:
        nonlocal attempts
        attempts += 1
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(client_module, "connect", counting_connect)
    client = AsyncRealtimeClient(
        f"{localbase.url}/realtime/v1", make_jwt(role="anon", expires_in=-10), initial_backoff=0.01
    )
    with pytest.raises(websockets.InvalidStatus):
        await client.connect()
    assert attempts == 5


async def test_c3_heartbeat_reply(localbase: LocalbaseProcess) -> None:
    async with raw_socket(localbase) as socket:
        await socket.push("phoenix", "heartbeat", {}, None)
        frame = await socket.frame()
        await socket.push("phoenix", "heartbeat", {}, "hb-7")
        with_ref = await socket.frame()
    assert frame == {
        "topic": "phoenix",
        "event": "phx_reply",
        "payload": {"status": "ok", "response": {}},
        "ref": None,
    }
    assert with_ref["ref"] == "hb-7"


async def test_c5_every_frame_is_a_four_key_text_frame(
    localbase: LocalbaseProcess, jobs: str, admin_sql: Any
) -> None:
    """``checked`` enforces C5 on every frame; this walks one frame of each kind."""
    async with raw_socket(localbase) as socket:
        topic = "realtime:" + topic_name()
        ref, _ = await socket.subscribed(topic, [{"event": "*", "schema": "public", "table": jobs}])
        admin_sql(f"insert into {jobs} values (1, 'queued')")
        await socket.until(lambda f: f["event"] == "postgres_changes")
        await socket.push("other", "whatever", {}, "9")
        await socket.until(lambda f: f["ref"] == "9")
        await socket.push(topic, "phx_leave", {}, "10", ref)
        frames = await socket.until(lambda f: f["event"] == "phx_close")
    assert frames[-1] == {"topic": topic, "event": "phx_close", "payload": {}, "ref": ref}


# J1–J7 -------------------------------------------------------------------------------------


async def test_j1_reply_echoes_bindings_with_stable_ids(
    localbase: LocalbaseProcess, jobs: str
) -> None:
    bindings: list[Binding] = [
        {"event": "UPDATE", "schema": "public", "table": jobs, "filter": "status=eq.queued"},
        {"event": "INSERT", "schema": "public", "table": jobs},
        {"event": "INSERT", "schema": "public", "table": jobs},
    ]
    async with raw_socket(localbase) as socket:
        _, first = await socket.join("realtime:" + topic_name(), bindings)
        _, second = await socket.join("realtime:" + topic_name(), bindings)
    assert first["payload"]["status"] == "ok"
    echoed = first["payload"]["response"]["postgres_changes"]
    assert [{k: v for k, v in b.items() if k != "id"} for b in echoed] == bindings
    ids = [b["id"] for b in echoed]
    assert all(isinstance(i, int) and 0 < i < 2**27 for i in ids)
    assert ids[1] == ids[2] != ids[0]
    assert [b["id"] for b in second["payload"]["response"]["postgres_changes"]] == ids


async def test_j1_event_is_echoed_verbatim_but_normalized_in_texts(
    localbase: LocalbaseProcess, make_table: TableFactory
) -> None:
    """A lowercase event is echoed as sent (so the Python client would reject the reply)."""
    hidden = make_table("id int primary key", publish=False)
    async with raw_socket(localbase) as socket:
        await socket.push(
            "realtime:x",
            "phx_join",
            {
                "config": {
                    "postgres_changes": [{"event": "insert", "schema": "public", "table": hidden}]
                }
            },
            "1",
            "1",
        )
        reply = await socket.frame(client_valid=False)
        system = await socket.frame()
    assert reply["payload"]["response"]["postgres_changes"][0]["event"] == "insert"
    assert system["payload"]["message"] == unable("INSERT", hidden)


async def test_j1_j2_official_client_subscribes(
    localbase: LocalbaseProcess, jobs: str, admin_sql: Any
) -> None:
    async with realtime_client(localbase) as client:
        channel, listener = await subscribe(
            client, topic_name(), {"event": "INSERT", "table": jobs}
        )
        assert channel.postgres_changes_callbacks[0].id
        admin_sql(f"insert into {jobs} values (1, 'queued')")
        assert (await listener.change())["record"] == {"id": 1, "status": "queued", "note": None}


async def test_j2_system_message_follows_the_reply(localbase: LocalbaseProcess, jobs: str) -> None:
    name = topic_name()
    async with raw_socket(localbase) as socket:
        ref = socket.ref()
        await socket.push(
            f"realtime:{name}",
            "phx_join",
            {"config": {"postgres_changes": [{"event": "*", "schema": "public", "table": jobs}]}},
            ref,
            ref,
        )
        reply, system = await socket.frame(), await socket.frame()
    assert (reply["event"], reply["ref"]) == ("phx_reply", ref)
    assert system == {
        "topic": f"realtime:{name}",
        "event": "system",
        "ref": None,
        "payload": {
            "channel": name,
            "extension": "postgres_changes",
            "message": SUBSCRIBED,
            "status": "ok",
        },
    }


async def test_j3_join_without_bindings(localbase: LocalbaseProcess, jobs: str) -> None:
    async with raw_socket(localbase) as socket:
        quiet = "realtime:" + topic_name()
        _, reply = await socket.join(quiet, [])
        assert reply["payload"] == {"status": "ok", "response": {"postgres_changes": []}}
        loud = "realtime:" + topic_name()
        await socket.join(loud, [{"event": "*", "schema": "public", "table": jobs}])
        frames = await socket.until(lambda f: f["event"] == "system")
        frames += await socket.heartbeat()
    assert [f["topic"] for f in frames if f["event"] == "system"] == [loud]


EXPIRED_REASON = re.compile(r"InvalidJWTToken: Token has expired \d+ seconds ago")


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        pytest.param(make_jwt(role="anon", expires_in=-42), EXPIRED_REASON, id="expired"),
        pytest.param(
            _token({"role": "anon"}),
            "InvalidJWTToken: Fields `role` and `exp` are required in JWT",
            id="no-exp",
        ),
        pytest.param(
            "abc.def", "MalformedJWT: The token provided is not a valid JWT", id="malformed"
        ),
        pytest.param(
            _token({"role": "anon", "exp": int(time.time()) + 99}, "y" * 40),
            "JwtSignatureError: Failed to validate JWT signature",
            id="bad-signature",
        ),
    ],
)
async def test_j4_join_with_a_bad_access_token(
    localbase: LocalbaseProcess, jobs: str, token: str, reason: str | re.Pattern[str]
) -> None:
    async with raw_socket(localbase) as socket:
        _, reply = await socket.join(
            "realtime:" + topic_name(),
            [{"event": "*", "schema": "public", "table": jobs}],
            token=token,
        )
    assert reply["payload"]["status"] == "error"
    got = reply["payload"]["response"]["reason"]
    if isinstance(reason, str):
        assert got == reason
    else:
        assert reason.fullmatch(got), got


async def test_j4_official_client_reports_channel_error(
    localbase: LocalbaseProcess, jobs: str
) -> None:
    async with realtime_client(localbase) as client:
        await client.set_auth(make_jwt(role="anon", expires_in=-5))
        _, listener = await subscribe(client, topic_name(), {"table": jobs}, wait=False)
        await listener.state(RealtimeSubscribeStates.CHANNEL_ERROR)


async def test_j4_sb_access_token_means_the_socket_token(
    localbase: LocalbaseProcess, jobs: str
) -> None:
    async with raw_socket(localbase) as socket:
        _, reply = await socket.join(
            "realtime:" + topic_name(),
            [{"event": "*", "schema": "public", "table": jobs}],
            token=keys.PUBLISHABLE_KEY,
        )
    assert reply["payload"]["status"] == "ok"


def unable(event: str, table: str, filters: str = "[]", select: str = "nil") -> str:
    return (
        "Unable to subscribe to changes with given parameters. Please check Realtime is "
        "enabled for the given connect parameters: "
        f"[event: {event}, schema: public, table: {table}, filters: {filters}, "
        f"select: {select}]"
    )


async def test_j5_table_not_in_publication(
    localbase: LocalbaseProcess, make_table: TableFactory
) -> None:
    hidden = make_table("id int primary key", publish=False)
    name = topic_name()
    async with raw_socket(localbase) as socket:
        ref, reply = await socket.join(
            f"realtime:{name}", [{"event": "INSERT", "schema": "public", "table": hidden}]
        )
        assert reply["payload"]["status"] == "ok"
        system = await socket.frame()
        await socket.join(
            f"realtime:{name}-2",
            [{"event": "INSERT", "schema": "public", "table": "no_such_table"}],
        )
        missing_system = await socket.frame()
        await socket.push(f"realtime:{name}", "phx_leave", {}, "leave", ref)
        left = await socket.until(lambda f: f["event"] == "phx_close")
    assert system["payload"] == {
        "channel": name,
        "extension": "postgres_changes",
        "status": "error",
        "message": unable("INSERT", hidden),
    }
    assert missing_system["payload"]["message"] == unable("INSERT", "no_such_table")
    assert [f["event"] for f in left][-2:] == ["phx_reply", "phx_close"]  # was still joined


async def test_j5_python_client_loses_the_channel_after_a_system_error(
    localbase: LocalbaseProcess, make_table: TableFactory
) -> None:
    """The documented pitfall: on_error → rejoin → duplicate join → phx_close → CLOSED."""
    hidden = make_table("id int primary key", publish=False)
    async with realtime_client(localbase) as client:
        channel, listener = await subscribe(client, topic_name(), {"table": hidden}, wait=False)
        await listener.state(RealtimeSubscribeStates.CHANNEL_ERROR)
        await listener.state(RealtimeSubscribeStates.CLOSED)
        assert channel.topic not in client.channels


def exception_text(filters: str, exception: str, table: str, event: str = "*") -> str:
    return (
        "Unable to subscribe to changes with given parameters. An exception happened so "
        "please check your connect parameters: "
        f"[event: {event}, schema: public, table: {table}, filters: {filters}, "
        f"select: nil]. Exception: {exception}"
    )


J6_CASES = [
    (
        "notacolumn=eq.123",
        lambda t: exception_text(
            '[{"notacolumn", "eq", "123", false}]',
            "ERROR P0001 (raise_exception) invalid column for filter notacolumn",
            t,
        ),
    ),
    (
        "id=eq.hey",
        lambda t: exception_text(
            '[{"id", "eq", "hey", false}]',
            'ERROR 22P02 (invalid_text_representation) invalid input syntax for type bigint: "hey"',
            t,
        ),
    ),
    ("id=foo.hey", lambda t: 'Error parsing `filter` params: ["foo", "hey"]'),
    ("undefined", lambda t: 'Error parsing `filter` params: ["undefined"]'),
    (
        "id=in.1,2",
        lambda t: "Error parsing `filter` params: `in` filter value must be wrapped by parentheses",
    ),
    (
        "id=eq.1,,status=eq.x",
        lambda t: (
            "Error parsing `filter` params: filter must not "
            "contain empty segments (check for extra commas)"
        ),
    ),
    (
        "id=in.(" + ",".join(str(i) for i in range(101)) + ")",
        lambda t: exception_text(
            '[{"id", "in", "{' + ",".join(str(i) for i in range(101)) + '}", false}]',
            "ERROR P0001 (raise_exception) too many values for `in` filter. Maximum 100",
            t,
        ),
    ),
]


@pytest.mark.parametrize(
    ("filter_text", "expected"),
    J6_CASES,
    ids=["column", "value", "operator", "no-equals", "in-parens", "empty-segment", "in-101"],
)
async def test_j6_bad_filters_are_system_errors(
    localbase: LocalbaseProcess, jobs: str, filter_text: str, expected: Callable[[str], str]
) -> None:
    name = topic_name()
    async with raw_socket(localbase) as socket:
        _, reply = await socket.join(
            f"realtime:{name}",
            [{"event": "*", "schema": "public", "table": jobs, "filter": filter_text}],
        )
        system = await socket.frame()
    assert reply["payload"]["status"] == "ok"
    assert system["payload"] == {
        "channel": name,
        "extension": "postgres_changes",
        "status": "error",
        "message": expected(jobs),
    }


async def test_j6_missing_schema_and_table(localbase: LocalbaseProcess) -> None:
    async with raw_socket(localbase) as socket:
        await socket.join("realtime:" + topic_name(), [{"event": "*", "filter": "id=eq.1"}])
        system = await socket.frame()
    assert system["payload"]["message"] == (
        "No subscription params provided. Please provide at least a `schema` or `table` to "
        'subscribe to: %{"event" => "*", "filter" => "id=eq.1"}'
    )


async def test_j7_unmatched_topics(localbase: LocalbaseProcess) -> None:
    async with raw_socket(localbase) as socket:
        await socket.push("jobs", "phx_join", {"config": {}}, "1", "1")
        join = await socket.frame()
        await socket.push("realtime:never-joined", "access_token", {}, "2", "1")
        other = await socket.frame()
        await socket.push("realtime:never-joined", "phx_leave", {}, "3", "1")
        leave = await socket.frame()
    assert join == {
        "topic": "jobs",
        "event": "phx_reply",
        "ref": "1",
        "payload": {"status": "error", "response": {"reason": "unmatched topic"}},
    }
    assert other["payload"] == {"status": "error", "response": {"reason": "unmatched topic"}}
    assert leave["payload"] == {"status": "ok", "response": {}}


async def test_join_errors_for_topic_private_and_channel_limit(localbase: LocalbaseProcess) -> None:
    async with raw_socket(localbase, keys.ANON_KEY) as socket:
        _, empty = await socket.join("realtime:", [])
        private = {"private": True, "postgres_changes": []}
        _, refused = await socket.join("realtime:secret", config=private)
        for _ in range(100):
            _, ok = await socket.join("realtime:" + topic_name(), [])
            assert ok["payload"]["status"] == "ok"
        _, limit = await socket.join("realtime:" + topic_name(), [])
    assert empty["payload"]["response"] == {
        "reason": "TopicNameRequired: You must provide a topic name"
    }
    assert refused["payload"]["response"] == {
        "reason": "Unauthorized: You do not have "
        "permissions to read from this Channel topic: secret"
    }
    assert limit["payload"]["response"] == {"reason": "ChannelRateLimitReached: Too many channels"}
    async with raw_socket(localbase, keys.SERVICE_ROLE_KEY) as socket:
        _, allowed = await socket.join("realtime:secret", config=private)
    assert allowed["payload"]["status"] == "ok"


# L1, D1 ------------------------------------------------------------------------------------


async def test_l1_leave_then_no_more_events(
    localbase: LocalbaseProcess, jobs: str, admin_sql: Any
) -> None:
    binding = [{"event": "*", "schema": "public", "table": jobs}]
    leaving, staying = "realtime:" + topic_name(), "realtime:" + topic_name()
    async with raw_socket(localbase) as socket:
        join_ref, _ = await socket.subscribed(leaving, binding)
        await socket.subscribed(staying, binding)
        await socket.push(leaving, "phx_leave", {}, "leave-1", join_ref)
        reply, close = await socket.frame(), await socket.frame()
        admin_sql(f"insert into {jobs} values (1, 'queued')")
        frames = await socket.until(lambda f: f["event"] == "postgres_changes")
        frames += await socket.heartbeat()
    assert reply == {
        "topic": leaving,
        "event": "phx_reply",
        "ref": "leave-1",
        "payload": {"status": "ok", "response": {}},
    }
    assert close == {"topic": leaving, "event": "phx_close", "payload": {}, "ref": join_ref}
    assert changes_of(frames, leaving) == []
    assert len(changes_of(frames, staying)) == 1


async def test_l1_official_unsubscribe(localbase: LocalbaseProcess, jobs: str) -> None:
    async with realtime_client(localbase) as client:
        channel, listener = await subscribe(client, topic_name(), {"table": jobs})
        await channel.unsubscribe()
        await listener.state(RealtimeSubscribeStates.CLOSED)
        assert channel.topic not in client.channels


async def test_d1_duplicate_join(localbase: LocalbaseProcess, jobs: str, admin_sql: Any) -> None:
    topic = "realtime:" + topic_name()
    binding = [{"event": "*", "schema": "public", "table": jobs}]
    async with raw_socket(localbase) as socket:
        first_ref, _ = await socket.subscribed(topic, binding)
        await socket.push(topic, "phx_join", {"config": {"postgres_changes": binding}}, "2", "2")
        reply, close = await socket.frame(), await socket.frame()
        await socket.until(lambda f: f["event"] == "system")
        admin_sql(f"insert into {jobs} values (1, 'queued')")
        frames = await socket.until(lambda f: f["event"] == "postgres_changes")
        frames += await socket.heartbeat()
    assert (reply["event"], reply["ref"]) == ("phx_reply", "2")
    assert reply["payload"]["status"] == "ok"
    assert close == {"topic": topic, "event": "phx_close", "payload": {}, "ref": first_ref}
    assert len(changes_of(frames, topic)) == 1


# Robustness --------------------------------------------------------------------------------


async def test_junk_frames_are_ignored(localbase: LocalbaseProcess) -> None:
    async with raw_socket(localbase) as socket:
        for junk in [
            "not json",
            "[1, 2]",
            '"text"',
            "{}",
            '{"topic": "phoenix"}',
            '{"topic": 1, "event": 2, "payload": 3}',
        ]:
            await socket.ws.send(junk)
        await socket.ws.send(b"\x00\x01binary")
        await socket.heartbeat()
        topic = "realtime:" + topic_name()
        await socket.join(topic, [])
        await socket.push(topic, "no_such_event", {"x": 1}, "77")
        await socket.push(topic, "broadcast", "not a map", "78")
        await socket.push(topic, "access_token", 12, "79")
        frames = await socket.heartbeat()
    assert [f["event"] for f in frames] == ["phx_reply"]


@pytest.mark.parametrize(
    "payload",
    [
        "junk",
        [],
        {"config": "x"},
        {"config": {"postgres_changes": ["nope"]}},
        {"config": {"postgres_changes": [{"event": "*"}]}},
        {"config": {"postgres_changes": [{"schema": 5, "table": None}]}},
        {"config": {"postgres_changes": {"event": "*"}}},
    ],
)
async def test_junk_join_payloads(localbase: LocalbaseProcess, payload: object) -> None:
    async with raw_socket(localbase) as socket:
        await socket.push("realtime:" + topic_name(), "phx_join", payload, "1", "1")
        first = await socket.frame(client_valid=None)  # echoes the junk bindings verbatim
        await socket.heartbeat()
    reply = first["payload"]
    assert reply["status"] in ("ok", "error")
    if reply["status"] == "error":
        assert reply["response"]["reason"].startswith("UnknownErrorOnChannel: expected a map")


async def test_a_thousand_joins_in_a_loop(
    localbase: LocalbaseProcess, jobs: str, admin_sql: Any
) -> None:
    topic = "realtime:" + topic_name()
    binding = {"config": {"postgres_changes": [{"event": "*", "schema": "public", "table": jobs}]}}
    async with raw_socket(localbase) as socket:
        for index in range(1000):
            await socket.push(topic, "phx_join", binding, str(index), str(index))
        frames = await socket.until(
            lambda f: f["event"] == "phx_close" and f["ref"] == "998", limit=60
        )
        frames += await socket.until(lambda f: f["event"] == "system", limit=60)
        admin_sql(f"insert into {jobs} values (1, 'queued')")
        frames += await socket.until(lambda f: f["event"] == "postgres_changes", limit=10)
        frames += await socket.heartbeat()
    replies = [f for f in frames if f["event"] == "phx_reply" and f["topic"] == topic]
    assert len(replies) == 1000
    assert all(r["payload"]["status"] == "ok" for r in replies)
    assert len(changes_of(frames, topic)) == 1
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{localbase.url}/health")).status_code == 200


async def test_supabase_acreate_client_channel(
    localbase: LocalbaseProcess, jobs: str, admin_sql: Any
) -> None:
    client: AsyncClient = await acreate_client(localbase.url, localbase.service_key)
    try:
        listener = Listener()
        channel = client.channel(topic_name())
        channel.on_postgres_changes(
            "INSERT", listener.on_change, table=jobs, filter="status=eq.queued"
        )
        channel.on_system(listener.on_system)
        await channel.subscribe(listener.on_state)
        await listener.subscribed()
        admin_sql(f"insert into {jobs} values (1, 'running'), (2, 'queued')")
        change = await listener.change()
        assert (change["type"], change["record"]["id"]) == ("INSERT", 2)
    finally:
        await client.remove_all_channels()
