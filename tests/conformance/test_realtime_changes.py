"""``spec/realtime.md`` §9, the change events: E1–E8, F1–F4, A1–A3, plus §3.5/§3.7 details.

"Not delivered" is always shown with a fence: after the change that must not arrive, a change
that must arrive is made, and the first event received has to be that one.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from devstack.localbase import LocalbaseProcess
from localbase import keys
from tests.conformance.realtime_helpers import (
    Listener,
    TableFactory,
    changes_of,
    raw_socket,
    realtime_client,
    subscribe,
    table_factory,
    topic_name,
)
from tests.conftest import make_jwt

COMMIT_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
SQL = Callable[[str], None]


@pytest.fixture
def make_table(admin_sql: SQL) -> Iterator[TableFactory]:
    yield from table_factory(admin_sql)


@pytest.fixture
def jobs(make_table: TableFactory) -> str:
    return make_table("id bigint primary key, status text not null, note text")


@pytest.fixture
def full_jobs(make_table: TableFactory) -> str:
    return make_table("id bigint primary key, status text not null, note text", full=True)


def query(localbase: LocalbaseProcess, statement: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(localbase.db_dsn, autocommit=True) as conn:
        return conn.execute(statement.encode()).fetchall()


# E1–E8 -------------------------------------------------------------------------------------


async def test_e1_insert_payload(localbase: LocalbaseProcess, jobs: str, admin_sql: SQL) -> None:
    topic = "realtime:" + topic_name()
    async with raw_socket(localbase) as socket:
        _, reply = await socket.subscribed(
            topic, [{"event": "INSERT", "schema": "public", "table": jobs}]
        )
        admin_sql(f"insert into {jobs} (id, status) values (1, 'queued')")
        frames = await socket.until(lambda f: f["event"] == "postgres_changes")
    payload = frames[-1]["payload"]
    assert payload["ids"] == [reply["payload"]["response"]["postgres_changes"][0]["id"]]
    data = payload["data"]
    assert set(data) == {
        "schema",
        "table",
        "type",
        "commit_timestamp",
        "columns",
        "errors",
        "record",
    }
    assert (data["schema"], data["table"], data["type"], data["errors"]) == (
        "public",
        jobs,
        "INSERT",
        None,
    )
    assert COMMIT_TIMESTAMP.fullmatch(data["commit_timestamp"])
    assert data["columns"] == [
        {"name": "id", "type": "int8"},
        {"name": "status", "type": "text"},
        {"name": "note", "type": "text"},
    ]
    assert data["record"] == {"id": 1, "status": "queued", "note": None}


async def test_e2_update_default_identity_old_record_is_the_key(
    localbase: LocalbaseProcess, jobs: str, admin_sql: SQL
) -> None:
    admin_sql(f"insert into {jobs} values (7, 'queued', 'n')")
    async with realtime_client(localbase) as client:
        _, listener = await subscribe(client, topic_name(), {"event": "UPDATE", "table": jobs})
        admin_sql(f"update {jobs} set status = 'running' where id = 7")
        data = await listener.change()
    assert data["type"] == "UPDATE"
    assert data["record"] == {"id": 7, "status": "running", "note": "n"}
    assert data["old_record"] == {"id": 7}


async def test_e2_key_change_old_record_is_the_old_key(
    localbase: LocalbaseProcess, jobs: str, admin_sql: SQL
) -> None:
    admin_sql(f"insert into {jobs} values (7, 'queued')")
    async with realtime_client(localbase) as client:
        _, listener = await subscribe(client, topic_name(), {"event": "UPDATE", "table": jobs})
        admin_sql(f"update {jobs} set id = 8 where id = 7")
        data = await listener.change()
    assert (data["record"]["id"], data["old_record"]) == (8, {"id": 7})


async def test_e3_update_full_identity_old_record_is_the_row(
    localbase: LocalbaseProcess, full_jobs: str, admin_sql: SQL
) -> None:
    admin_sql(f"insert into {full_jobs} values (7, 'queued', 'n')")
    async with realtime_client(localbase) as client:
        _, listener = await subscribe(client, topic_name(), {"event": "UPDATE", "table": full_jobs})
        admin_sql(f"update {full_jobs} set status = 'running' where id = 7")
        data = await listener.change()
    assert data["old_record"] == {"id": 7, "status": "queued", "note": "n"}


async def test_e4_delete_default_identity(
    localbase: LocalbaseProcess, jobs: str, admin_sql: SQL
) -> None:
    admin_sql(f"insert into {jobs} values (7, 'queued', 'n')")
    async with realtime_client(localbase) as client:
        _, listener = await subscribe(client, topic_name(), {"event": "DELETE", "table": jobs})
        admin_sql(f"delete from {jobs} where id = 7")
        data = await listener.change()
    assert data["type"] == "DELETE"
    assert "record" not in data
    assert data["old_record"] == {"id": 7}


async def test_e5_delete_full_identity_with_rls_is_key_only(
    localbase: LocalbaseProcess, make_table: TableFactory, admin_sql: SQL
) -> None:
    table = make_table("id bigint primary key, status text", full=True, rls=True)
    admin_sql(f"insert into {table} values (7, 'queued')")
    async with realtime_client(localbase) as client:
        _, listener = await subscribe(client, topic_name(), {"event": "*", "table": table})
        admin_sql(f"delete from {table} where id = 7")
        data = await listener.change()
    assert data["old_record"] == {"id": 7}


async def test_e5_delete_full_identity_without_rls_is_the_row(
    localbase: LocalbaseProcess, full_jobs: str, admin_sql: SQL
) -> None:
    admin_sql(f"insert into {full_jobs} values (7, 'queued', 'n')")
    async with realtime_client(localbase) as client:
        _, listener = await subscribe(client, topic_name(), {"event": "DELETE", "table": full_jobs})
        admin_sql(f"delete from {full_jobs} where id = 7")
        data = await listener.change()
    assert data["old_record"] == {"id": 7, "status": "queued", "note": "n"}


TYPES_DDL = """
id int primary key, small int2, big int8, num numeric, num_nan numeric, dbl float8,
dbl_inf float8, flag bool, txt text, vc varchar(10), ch char(3), uid uuid, js json,
jsb jsonb, jsb_scalar jsonb, tstz timestamptz, ts timestamp, d date, t time, iv interval,
bin bytea, tags text[], nums int4[], grid int4[], mood {mood}, moods {mood}[], addr inet,
money_ money, domain_ {domain}, nothing text, rng int4range
"""
TYPES_ROW = """
(1, -3, 12345678901234567, 1234567890.123456789012, 'NaN', 3.14, '-Infinity', true,
 'he said "hi"\\n', 'ünïcödé', 'ab', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11',
 '{"b": 1, "a": [1, 2.50], "b": 2}', '{"b": 1, "a": {"c": null}}', '"just a string"',
 '2026-08-21 12:00:01.230456+02', '2026-08-21 12:00:01', '2026-08-21', '12:30:00',
 '1 day 2 hours', '\\x0102ff', '{x,"y z",NULL}', '{1,2,3}', '{{1,2},{3,4}}', 'happy',
 '{sad,happy}', '192.168.0.1/24', 12.5, 'dom', NULL, '[1,5)')
"""


async def test_e6_values_are_what_to_jsonb_gives(
    localbase: LocalbaseProcess,
    make_table: TableFactory,
    admin_sql: SQL,
) -> None:
    suffix = uuid.uuid4().hex[:8]
    mood, domain = f"mood_{suffix}", f"dom_{suffix}"
    admin_sql(
        f"create type {mood} as enum ('sad', 'happy');"
        f" create domain {domain} as text check (value <> '')"
    )
    table = make_table(TYPES_DDL.format(mood=mood, domain=domain))
    try:
        async with realtime_client(localbase) as client:
            _, listener = await subscribe(client, topic_name(), {"event": "INSERT", "table": table})
            admin_sql(f"insert into {table} values {TYPES_ROW}")
            data = await listener.change()
        (expected,) = query(localbase, f"select to_jsonb(r) from {table} r")[0]
        types = dict(
            query(
                localbase,
                f"select a.attname, t.typname from pg_attribute a join "
                f"pg_type t on t.oid = a.atttypid where a.attrelid = "
                f"'{table}'::regclass and a.attnum > 0 order by a.attnum",
            )
        )
    finally:
        admin_sql(f"drop table {table}; drop type {mood}; drop domain {domain}")
    expected["bin"] = "0102ff"  # bytea: hex without \x, as Supabase sends it
    assert data["record"] == expected
    assert data["record"]["big"] == 12345678901234567
    assert data["record"]["tstz"] == "2026-08-21T10:00:01.230456+00:00"
    assert data["record"]["nothing"] is None
    assert [(c["name"], c["type"]) for c in data["columns"]] == list(types.items())


async def test_e6_unchanged_toast_default_identity_is_omitted(
    localbase: LocalbaseProcess, make_table: TableFactory, admin_sql: SQL
) -> None:
    table = make_table("id int primary key, status text, big text")
    big = "(select string_agg(md5(g::text), '') from generate_series(1, 3000) g)"
    admin_sql(f"insert into {table} values (1, 'a', {big})")
    async with realtime_client(localbase) as client:
        _, listener = await subscribe(client, topic_name(), {"event": "UPDATE", "table": table})
        admin_sql(f"update {table} set status = 'b' where id = 1")
        data = await listener.change()
    assert data["record"] == {"id": 1, "status": "b"}


async def test_e6_unchanged_toast_full_identity_is_filled(
    localbase: LocalbaseProcess, make_table: TableFactory, admin_sql: SQL
) -> None:
    table = make_table("id int primary key, status text, big text", full=True)
    big = "(select string_agg(md5(g::text), '') from generate_series(1, 3000) g)"
    admin_sql(f"insert into {table} values (1, 'a', {big})")
    (expected_big,) = query(localbase, f"select big from {table}")[0]
    async with realtime_client(localbase) as client:
        _, listener = await subscribe(client, topic_name(), {"event": "UPDATE", "table": table})
        admin_sql(f"update {table} set status = 'b' where id = 1")
        data = await listener.change()
    assert data["record"] == {"id": 1, "status": "b", "big": expected_big}


async def test_e7_one_transaction_three_events_in_order(
    localbase: LocalbaseProcess, jobs: str, admin_sql: SQL
) -> None:
    async with realtime_client(localbase) as client:
        _, listener = await subscribe(client, topic_name(), {"event": "*", "table": jobs})
        admin_sql(
            f"begin; insert into {jobs} values (1, 'queued');"
            f" update {jobs} set status = 'running' where id = 1;"
            f" delete from {jobs} where id = 1; commit"
        )
        events = [await listener.change() for _ in range(3)]
    assert [e["type"] for e in events] == ["INSERT", "UPDATE", "DELETE"]
    assert len({e["commit_timestamp"] for e in events}) == 1


async def test_e8_truncate_is_not_an_event(
    localbase: LocalbaseProcess, jobs: str, admin_sql: SQL
) -> None:
    admin_sql(f"insert into {jobs} values (1, 'queued')")
    async with realtime_client(localbase) as client:
        _, listener = await subscribe(client, topic_name(), {"event": "*", "table": jobs})
        admin_sql(f"truncate {jobs}")
        admin_sql(f"insert into {jobs} values (2, 'fence')")
        data = await listener.change()
    assert (data["type"], data["record"]["id"]) == ("INSERT", 2)


async def test_events_are_in_commit_order(
    localbase: LocalbaseProcess, jobs: str, admin_sql: SQL
) -> None:
    async with realtime_client(localbase) as client:
        _, listener = await subscribe(client, topic_name(), {"event": "INSERT", "table": jobs})
        for index in range(50):
            admin_sql(f"insert into {jobs} values ({index}, 'queued')")
        ids = [(await listener.change())["record"]["id"] for _ in range(50)]
    assert ids == list(range(50))


# F1–F4 -------------------------------------------------------------------------------------


async def test_f1_insert_filter(localbase: LocalbaseProcess, jobs: str, admin_sql: SQL) -> None:
    async with realtime_client(localbase) as client:
        _, listener = await subscribe(
            client, topic_name(), {"event": "INSERT", "table": jobs, "filter": "status=eq.queued"}
        )
        admin_sql(f"insert into {jobs} values (1, 'running')")
        admin_sql(f"insert into {jobs} values (2, 'queued')")
        data = await listener.change()
    assert data["record"]["id"] == 2


async def test_f2_update_filter_sees_the_new_row(
    localbase: LocalbaseProcess, jobs: str, admin_sql: SQL
) -> None:
    admin_sql(f"insert into {jobs} values (1, 'queued'), (2, 'running')")
    async with realtime_client(localbase) as client:
        _, listener = await subscribe(
            client, topic_name(), {"event": "UPDATE", "table": jobs, "filter": "status=eq.queued"}
        )
        admin_sql(f"update {jobs} set status = 'running' where id = 1")
        admin_sql(f"update {jobs} set status = 'queued' where id = 2")
        data = await listener.change()
    assert (data["record"]["id"], data["record"]["status"]) == (2, "queued")


async def test_f3_delete_filter_default_identity_never_matches(
    localbase: LocalbaseProcess, jobs: str, admin_sql: SQL
) -> None:
    admin_sql(f"insert into {jobs} values (1, 'queued')")
    async with realtime_client(localbase) as client:
        _, listener = await subscribe(
            client,
            topic_name(),
            {"event": "DELETE", "table": jobs, "filter": "status=eq.queued"},
            {"event": "INSERT", "table": jobs},
        )
        admin_sql(f"delete from {jobs} where id = 1")
        admin_sql(f"insert into {jobs} values (2, 'fence')")
        data = await listener.change()
    assert data["type"] == "INSERT"


async def test_f3_delete_filter_full_identity_matches(
    localbase: LocalbaseProcess, full_jobs: str, admin_sql: SQL
) -> None:
    admin_sql(f"insert into {full_jobs} values (1, 'queued'), (2, 'running')")
    async with realtime_client(localbase) as client:
        _, listener = await subscribe(
            client,
            topic_name(),
            {"event": "DELETE", "table": full_jobs, "filter": "status=eq.queued"},
        )
        admin_sql(f"delete from {full_jobs} where id = 2")
        admin_sql(f"delete from {full_jobs} where id = 1")
        data = await listener.change()
    assert data["old_record"] == {"id": 1, "status": "queued", "note": None}


async def test_f4_in_filter_matches_typed_values(
    localbase: LocalbaseProcess, jobs: str, admin_sql: SQL
) -> None:
    async with realtime_client(localbase) as client:
        _, listener = await subscribe(
            client, topic_name(), {"event": "INSERT", "table": jobs, "filter": "id=in.(1,02,3)"}
        )
        admin_sql(f"insert into {jobs} values (4, 'a'), (2, 'b'), (5, 'c'), (3, 'd')")
        first, second = await listener.change(), await listener.change()
    assert [first["record"]["id"], second["record"]["id"]] == [2, 3]


FILTER_CASES = [
    ("id=neq.1", [1, 2], [2]),
    ("id=lt.2", [3, 1], [1]),
    ("id=lte.2", [3, 2], [2]),
    ("id=gt.10", [9, 11], [11]),
    ("id=gte.10", [9, 10], [10]),
    ("status=gt.m", [1, 2], [2]),  # status is 'a <id>' for odd ids, 'zz<id>' for even ones
    ('status=in.(zz2,"a 3")', [1, 2, 3], [2, 3]),
    ("id=not.eq.1", [1, 2], [2]),
    ("id=gt.0,id=lt.2", [2, 1], [1]),
    ("note=is.null", [2, 1], [1]),  # note is set for even ids only
    ("status=like.zz%", [1, 2], [2]),
    ("note=eq.x", [1, 3], []),  # NULL never matches
    ("note=not.eq.y", [1, 2], [2]),  # ... not even negated
]


@pytest.mark.parametrize(
    ("filter_text", "ids", "delivered"), FILTER_CASES, ids=[case[0] for case in FILTER_CASES]
)
async def test_filter_operators(
    localbase: LocalbaseProcess,
    jobs: str,
    admin_sql: SQL,
    filter_text: str,
    ids: list[int],
    delivered: list[int],
) -> None:
    async with realtime_client(localbase) as client:
        filtered, everything = Listener(), Listener()
        channel = client.channel(topic_name())
        channel.on_postgres_changes("INSERT", filtered.on_change, table=jobs, filter=filter_text)
        channel.on_postgres_changes("INSERT", everything.on_change, table=jobs)
        channel.on_system(everything.on_system)
        await channel.subscribe(everything.on_state)
        await everything.subscribed()
        for row_id in ids:
            status = f"zz{row_id}" if row_id % 2 == 0 else f"a {row_id}"
            note = "'x'" if row_id % 2 == 0 else "null"
            admin_sql(f"insert into {jobs} values ({row_id}, '{status}', {note})")
        for row_id in ids:  # same frames, same order: once all arrived, the filtered are in
            assert (await everything.change())["record"]["id"] == row_id
    got = []
    while not filtered.changes.empty():
        got.append(filtered.changes.get_nowait()["data"]["record"]["id"])
    assert got == delivered


async def test_filters_cast_to_the_column_type(
    localbase: LocalbaseProcess,
    make_table: TableFactory,
    admin_sql: SQL,
) -> None:
    suffix = uuid.uuid4().hex[:8]
    admin_sql(f"create type state_{suffix} as enum ('queued', 'running')")
    table = make_table(f"id int primary key, uid uuid, state state_{suffix}, amount numeric")
    uid = uuid.uuid4()
    try:
        async with realtime_client(localbase) as client:
            _, listener = await subscribe(
                client,
                topic_name(),
                {"event": "INSERT", "table": table, "filter": f"uid=eq.{str(uid).upper()}"},
                {"event": "INSERT", "table": table, "filter": "amount=eq.1.50"},
                {"event": "INSERT", "table": table, "filter": "state=eq.running"},
            )
            admin_sql(f"insert into {table} values (1, '{uid}', 'queued', 9)")
            admin_sql(f"insert into {table} values (2, null, 'queued', 1.5)")
            admin_sql(f"insert into {table} values (3, null, 'running', 0)")
            got = [(await listener.change())["record"]["id"] for _ in range(3)]
    finally:
        admin_sql(f"drop table {table}; drop type state_{suffix}")
    assert got == [1, 2, 3]


# A1–A3 and RLS -------------------------------------------------------------------------------


async def test_a1_anon_with_rls_and_no_policy_gets_nothing(
    localbase: LocalbaseProcess,
    make_table: TableFactory,
    jobs: str,
    admin_sql: SQL,
) -> None:
    secret = make_table("id bigint primary key, status text", rls=True)
    async with realtime_client(localbase, keys.ANON_KEY) as client:
        _, listener = await subscribe(
            client,
            topic_name(),
            {"event": "INSERT", "table": secret},
            {"event": "INSERT", "table": jobs},
        )
        admin_sql(f"insert into {secret} values (1, 'queued')")
        admin_sql(f"insert into {jobs} values (2, 'fence')")
        data = await listener.change()
    assert data["table"] == jobs


async def test_a2_service_role_bypasses_rls(
    localbase: LocalbaseProcess,
    make_table: TableFactory,
    admin_sql: SQL,
) -> None:
    secret = make_table("id bigint primary key, status text", rls=True)
    async with realtime_client(localbase, keys.SERVICE_ROLE_KEY) as client:
        _, listener = await subscribe(client, topic_name(), {"event": "*", "table": secret})
        admin_sql(f"insert into {secret} values (1, 'queued')")
        admin_sql(f"update {secret} set status = 'running'")
        types = [(await listener.change())["type"] for _ in range(2)]
    assert types == ["INSERT", "UPDATE"]


async def test_rls_users_only_see_their_own_rows(
    localbase: LocalbaseProcess,
    make_table: TableFactory,
    admin_sql: SQL,
) -> None:
    table = make_table("id bigint primary key, owner uuid, status text", rls=True)
    admin_sql(
        f"create policy own on {table} for select to authenticated using (owner = auth.uid())"
    )
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    listeners: dict[str, Listener] = {}
    async with realtime_client(localbase, keys.ANON_KEY) as client:
        for user in (alice, bob):
            channel = client.channel(topic_name())
            listener = listeners[user] = Listener()
            channel.on_postgres_changes("*", listener.on_change, table=table)
            channel.on_system(listener.on_system)
            client.access_token = make_jwt(user)
            await channel.subscribe(listener.on_state)
            await listener.subscribed()
        admin_sql(f"insert into {table} values (1, '{bob}', 'b1'), (2, '{alice}', 'a1')")
        admin_sql(f"update {table} set status = 'b2' where id = 1")
        admin_sql(f"insert into {table} values (3, '{bob}', 'b3'), (4, '{alice}', 'a4')")
        alice_ids = [(await listeners[alice].change())["record"]["id"] for _ in range(2)]
        bob_events = [await listeners[bob].change() for _ in range(3)]
    assert alice_ids == [2, 4]
    assert [(e["type"], e["record"]["id"]) for e in bob_events] == [
        ("INSERT", 1),
        ("UPDATE", 1),
        ("INSERT", 3),
    ]


async def test_rls_of_a_many_row_commit_with_a_composite_key(
    localbase: LocalbaseProcess,
    make_table: TableFactory,
    admin_sql: SQL,
) -> None:
    """The rows of one commit are RLS-checked together: each user gets exactly their rows, keys
    of any text (commas, quotes, braces) included."""
    table = make_table(
        "tenant text, n int, owner uuid, note text, primary key (tenant, n)", rls=True
    )
    admin_sql(
        f"create policy own on {table} for select to authenticated using (owner = auth.uid())"
    )
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    tenants = ["plain", 'a,b "c" {d}', "back\\slash", "NULL"]
    rows = [(tenant, n, alice if n % 3 else bob) for tenant in tenants for n in range(10)]
    values = ", ".join(
        "({}, {}, '{}', 'x')".format("'" + t.replace("'", "''") + "'", n, owner)
        for t, n, owner in rows
    )
    listeners: dict[str, Listener] = {}
    async with realtime_client(localbase, keys.ANON_KEY) as client:
        for user in (alice, bob):
            channel = client.channel(topic_name())
            listener = listeners[user] = Listener()
            channel.on_postgres_changes("*", listener.on_change, table=table)
            channel.on_system(listener.on_system)
            client.access_token = make_jwt(user)
            await channel.subscribe(listener.on_state)
            await listener.subscribed()
        admin_sql(f"insert into {table} values {values}")
        admin_sql(f"update {table} set note = 'y'")
        got: dict[str, list[tuple[str, str, int]]] = {}
        for user in (alice, bob):
            mine = sum(owner == user for _, _, owner in rows)
            events = [await listeners[user].change() for _ in range(2 * mine)]
            got[user] = [(e["type"], e["record"]["tenant"], e["record"]["n"]) for e in events]
    for user in (alice, bob):
        mine = [(t, n) for t, n, owner in rows if owner == user]
        expected = [("INSERT", t, n) for t, n in mine] + [("UPDATE", t, n) for t, n in mine]
        assert got[user] == expected


async def test_rls_delete_is_not_checked_and_key_only(
    localbase: LocalbaseProcess,
    make_table: TableFactory,
    admin_sql: SQL,
) -> None:
    table = make_table("id bigint primary key, status text", rls=True, full=True)
    admin_sql(f"insert into {table} values (1, 'secret')")
    async with realtime_client(localbase, keys.ANON_KEY) as client:
        _, listener = await subscribe(client, topic_name(), {"event": "*", "table": table})
        admin_sql(f"delete from {table} where id = 1")
        data = await listener.change()
    assert (data["type"], data["old_record"]) == ("DELETE", {"id": 1})


async def test_a3_no_select_on_the_key_is_error_401(
    localbase: LocalbaseProcess,
    make_table: TableFactory,
    admin_sql: SQL,
) -> None:
    table = make_table("id bigint primary key, status text", grant=False)
    admin_sql(f"grant select (status) on {table} to anon")
    topic = "realtime:" + topic_name()
    async with raw_socket(localbase, keys.ANON_KEY) as socket:
        await socket.subscribed(topic, [{"event": "*", "schema": "public", "table": table}])
        admin_sql(f"insert into {table} values (1, 'x')")
        frame = await socket.frame(client_valid=False)  # the Python client drops it
        admin_sql(f"update {table} set status = 'y'")
        update = await socket.frame(client_valid=False)
    assert frame["payload"]["data"] == {
        "columns": [],
        "commit_timestamp": None,
        "errors": ["Error 401: Unauthorized"],
        "record": {},
        "schema": "public",
        "table": table,
        "type": "INSERT",
    }
    assert update["payload"]["data"]["old_record"] == {}


async def test_error_400_without_primary_key(
    localbase: LocalbaseProcess,
    make_table: TableFactory,
    admin_sql: SQL,
) -> None:
    table = make_table("id int, status text")
    topic = "realtime:" + topic_name()
    async with raw_socket(localbase) as socket:
        await socket.subscribed(topic, [{"event": "INSERT", "schema": "public", "table": table}])
        admin_sql(f"insert into {table} values (1, 'x')")
        frame = await socket.frame(client_valid=False)
    assert frame["payload"]["data"]["errors"] == ["Error 400: Bad Request, no primary key"]


async def test_error_413_keeps_small_fields(
    localbase: LocalbaseProcess,
    make_table: TableFactory,
    admin_sql: SQL,
) -> None:
    table = make_table("id int primary key, status text, big text")
    async with realtime_client(localbase) as client:
        _, listener = await subscribe(client, topic_name(), {"event": "INSERT", "table": table})
        admin_sql(f"insert into {table} values (1, 'queued', repeat('x', 1100000))")
        data = await listener.change()
    assert data["errors"] == ["Error 413: Payload Too Large"]
    assert data["record"] == {"id": 1, "status": "queued"}
    assert COMMIT_TIMESTAMP.fullmatch(data["commit_timestamp"])
    assert [c["name"] for c in data["columns"]] == ["id", "status", "big"]


async def test_select_limits_columns_and_keeps_the_key(
    localbase: LocalbaseProcess, jobs: str, admin_sql: SQL
) -> None:
    topic = "realtime:" + topic_name()
    async with raw_socket(localbase) as socket:
        await socket.subscribed(
            topic, [{"event": "INSERT", "schema": "public", "table": jobs, "select": ["status"]}]
        )
        admin_sql(f"insert into {jobs} values (1, 'queued', 'note')")
        frames = await socket.until(lambda f: f["event"] == "postgres_changes")
    (data,) = changes_of(frames, topic)
    assert data["record"] == {"id": 1, "status": "queued"}
    assert [c["name"] for c in data["columns"]] == ["id", "status"]


@pytest.mark.parametrize(
    ("big", "errors"),
    [(1_100_000, ["Error 413: Payload Too Large"]), (500_000, None)],
)
async def test_the_size_limit_counts_columns_that_were_not_selected(
    localbase: LocalbaseProcess,
    make_table: TableFactory,
    admin_sql: SQL,
    big: int,
    errors: list[str] | None,
) -> None:
    """``select`` trims the payload, not the size check: a change over 1 MiB in an unselected
    column is still "Payload Too Large" (the size is the whole change's), and one under it is
    not, however its size was estimated."""
    table = make_table("id int primary key, status text, big text")
    topic = "realtime:" + topic_name()
    async with raw_socket(localbase) as socket:
        await socket.subscribed(
            topic, [{"event": "INSERT", "schema": "public", "table": table, "select": ["status"]}]
        )
        admin_sql(f"insert into {table} values (1, 'queued', repeat('x', {big}))")
        frames = await socket.until(lambda f: f["event"] == "postgres_changes")
    (data,) = changes_of(frames, topic)
    assert data["errors"] == errors
    assert data["record"] == {"id": 1, "status": "queued"}


async def test_selecting_and_unselecting_subscribers_of_one_change_each_get_their_columns(
    localbase: LocalbaseProcess, jobs: str, admin_sql: SQL
) -> None:
    picky, everything = "realtime:" + topic_name(), "realtime:" + topic_name()
    async with raw_socket(localbase) as socket:
        await socket.subscribed(
            picky, [{"event": "INSERT", "schema": "public", "table": jobs, "select": ["status"]}]
        )
        await socket.subscribed(
            everything, [{"event": "INSERT", "schema": "public", "table": jobs}]
        )
        admin_sql(f"insert into {jobs} values (1, 'queued', 'note')")
        frames: list[dict[str, Any]] = []
        while not (changes_of(frames, picky) and changes_of(frames, everything)):
            frames += await socket.until(lambda f: f["event"] == "postgres_changes")
    (trimmed,) = changes_of(frames, picky)
    (whole,) = changes_of(frames, everything)
    assert trimmed["record"] == {"id": 1, "status": "queued"}
    assert len(whole["record"]) > 2
    assert whole["record"]["id"] == 1


async def test_a_lost_replication_stream_closes_the_channels_and_a_rejoin_recovers(
    localbase: LocalbaseProcess, jobs: str, admin_sql: SQL
) -> None:
    """As on Supabase: changes made while the stream is down are never delivered, so a channel
    with database subscriptions is closed (``system`` error, then ``phx_close``) rather than
    left trusting its subscription; a rejoin is confirmed once the stream runs again, and the
    changes after it arrive."""
    topic = "realtime:" + topic_name()
    bindings = [{"event": "INSERT", "schema": "public", "table": jobs}]
    async with raw_socket(localbase) as socket:
        await socket.subscribed(topic, bindings)
        admin_sql(
            "select pg_terminate_backend(pid) from pg_stat_replication"
            " where application_name = 'localbase_realtime'"
        )
        frames = await socket.until(lambda f: f["event"] == "phx_close" and f["topic"] == topic)
        [error] = [f["payload"] for f in frames if f["event"] == "system"]
        assert error["status"] == "error"
        assert error["extension"] == "system"
        assert error["message"] == "Realtime was unable to connect to the project database"
        await socket.subscribed(topic, bindings)
        admin_sql(f"insert into {jobs} values (7, 'after the rejoin')")
        frames = await socket.until(lambda f: f["event"] == "postgres_changes")
    (data,) = changes_of(frames, topic)
    assert data["record"]["id"] == 7


async def test_column_privileges_limit_the_payload(
    localbase: LocalbaseProcess,
    make_table: TableFactory,
    admin_sql: SQL,
) -> None:
    table = make_table("id int primary key, status text, secret text", grant=False)
    admin_sql(f"grant select (id, status) on {table} to anon")
    async with realtime_client(localbase, keys.ANON_KEY) as client:
        _, listener = await subscribe(client, topic_name(), {"event": "INSERT", "table": table})
        admin_sql(f"insert into {table} values (1, 'queued', 'hidden')")
        data = await listener.change()
    assert data["record"] == {"id": 1, "status": "queued"}
    assert [c["name"] for c in data["columns"]] == ["id", "status"]


async def test_one_frame_per_channel_lists_matching_ids(
    localbase: LocalbaseProcess, jobs: str, admin_sql: SQL
) -> None:
    topic = "realtime:" + topic_name()
    bindings = [
        {"event": "INSERT", "schema": "public", "table": jobs},
        {"event": "*", "schema": "public", "table": jobs, "filter": "status=eq.queued"},
        {"event": "DELETE", "schema": "public", "table": jobs},
    ]
    async with raw_socket(localbase) as socket:
        _, reply = await socket.subscribed(topic, bindings)
        admin_sql(f"insert into {jobs} values (1, 'queued')")
        frames = await socket.until(lambda f: f["event"] == "postgres_changes")
        frames += await socket.heartbeat()
    ids = [b["id"] for b in reply["payload"]["response"]["postgres_changes"]]
    events = [f for f in frames if f["event"] == "postgres_changes"]
    assert len(events) == 1
    assert sorted(events[0]["payload"]["ids"]) == sorted(ids[:2])
