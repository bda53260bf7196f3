"""Hostile Realtime frames (invalid Unicode, deep nesting, NaN) are logged and ignored, as
Supabase's socket ignores frames it cannot decode: the sender's other channels and every other
socket keep serving."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from devstack.localbase import LocalbaseProcess
from tests.conformance.realtime_helpers import (
    TableFactory,
    changes_of,
    raw_socket,
    table_factory,
    topic_name,
)

HOSTILE_FRAMES = [
    '{"topic": "\\ud800", "event": "phx_join", "payload": {}, "ref": "1"}',
    '{"topic": "realtime:x", "event": "phx_join", "payload": {"config": "\\udfff"}, "ref": "2"}',
    '{"topic": "phoenix", "event": "heartbeat", "payload": {"k\\u0000": 1}, "ref": "3"}',
    "[" * 50_000,
    '{"topic": "phoenix", "event": "heartbeat", "payload": ' + "[" * 500 + "]" * 500 + "}",
    '{"topic": "phoenix", "event": "heartbeat", "payload": NaN, "ref": "4"}',
]


@pytest.fixture
def make_table(admin_sql: Callable[[str], None]) -> Iterator[TableFactory]:
    yield from table_factory(admin_sql)


async def test_hostile_frames_leave_every_channel_serving(
    localbase: LocalbaseProcess, make_table: TableFactory, admin_sql: Callable[[str], None]
) -> None:
    table = make_table("id bigint primary key, note text")
    binding = [{"event": "INSERT", "schema": "public", "table": table}]
    attacker_topic, bystander_topic = "realtime:" + topic_name(), "realtime:" + topic_name()
    async with raw_socket(localbase) as attacker, raw_socket(localbase) as bystander:
        await attacker.subscribed(attacker_topic, binding)
        await bystander.subscribed(bystander_topic, binding)
        for frame in HOSTILE_FRAMES:
            await attacker.ws.send(frame)
        fence = await attacker.heartbeat()
        admin_sql(f"insert into public.{table} values (1, 'after the attack')")
        seen_by_attacker = await attacker.until(lambda f: f["event"] == "postgres_changes")
        seen_by_bystander = await bystander.until(lambda f: f["event"] == "postgres_changes")
    assert [f["event"] for f in fence] == ["phx_reply"], fence
    for frames, topic in [(seen_by_attacker, attacker_topic), (seen_by_bystander, bystander_topic)]:
        (change,) = changes_of(frames, topic)
        assert change["record"] == {"id": 1, "note": "after the attack"}
