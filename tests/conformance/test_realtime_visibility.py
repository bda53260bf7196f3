"""A change committed after "Subscribed to PostgreSQL" reaches the subscriber, even when the
stream delivers it before other sessions can see it.

pgoutput streams a commit once its WAL record is flushed; the committing backend becomes visible
to other snapshots a moment later. That moment is made as long as a test needs by a synchronous
standby that never answers: the commit is flushed (and streamed) but stays invisible until the
standby requirement is lifted. Holding commits is cluster-wide, so these tests have a localbase
of their own.

Each test commits, in one held transaction, a fence row first (a table without RLS, delivered
without reading the database) and then the change under test. The fence's arrival shows that
the transaction was streamed and that delivery is at the change under test, while it is still
invisible.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest

from devstack.localbase import LocalbaseProcess
from tests.conformance.realtime_helpers import Listener, realtime_client, subscribe, topic_name

HOLD_LIMIT = 10.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalbaseProcess]:
    own = LocalbaseProcess(tmp_path_factory.mktemp("realtime-visibility") / "data")
    own.start()
    with psycopg.connect(own.db_dsn, autocommit=True) as conn:
        conn.execute("create table visibility_probe (at timestamptz default now())")
    yield own
    assert own.stop() == 0


async def execute(stack: LocalbaseProcess, statement: str) -> list[tuple[object, ...]]:
    async with await psycopg.AsyncConnection.connect(stack.db_dsn, autocommit=True) as conn:
        cursor = await conn.execute(statement.encode())
        return await cursor.fetchall() if cursor.description else []


def create_tables(stack: LocalbaseProcess, *definitions: str) -> list[str]:
    """Published tables (``rls`` in a definition turns RLS on), readable by service_role."""
    names = []
    with psycopg.connect(stack.db_dsn, autocommit=True) as conn:
        for definition in definitions:
            name = f"rt_{os.urandom(5).hex()}"
            columns, _, rls = definition.partition(";")
            conn.execute(
                f"create table {name} ({columns}); grant select on {name} to service_role;"
                f" alter publication supabase_realtime add table {name}".encode()
            )
            if rls:
                conn.execute(f"alter table {name} enable row level security".encode())
            names.append(name)
    return names


class HeldCommit:
    """One transaction whose COMMIT is flushed and streamed but waits for the standby."""

    def __init__(self, conn: psycopg.AsyncConnection) -> None:
        self._conn = conn
        self.task: asyncio.Task[None] | None = None

    def commit(self) -> None:
        self.task = asyncio.create_task(self._conn.commit(), name="held commit")

    async def held(self, stack: LocalbaseProcess) -> bool:
        """True once the backend waits for the standby; False if the commit simply finished."""
        assert self.task is not None
        pid = self._conn.info.backend_pid
        async with asyncio.timeout(HOLD_LIMIT):
            while not self.task.done():
                rows = await execute(
                    stack, f"select wait_event from pg_stat_activity where pid = {pid}"
                )
                if rows and rows[0][0] == "SyncRep":
                    return True
                await asyncio.sleep(0.01)  # polls the server's state, not a timing guess
        return False


@contextlib.asynccontextmanager
async def commits_held(stack: LocalbaseProcess) -> AsyncIterator[None]:
    """Until exit, every commit that writes WAL waits for a standby that does not exist."""
    await execute(stack, "alter system set synchronous_standby_names = 'no_such_standby'")
    await execute(stack, "select pg_reload_conf()")
    try:
        await _until_a_probe_is_held(stack)
        yield
    finally:
        await execute(stack, "alter system reset synchronous_standby_names")
        await execute(stack, "select pg_reload_conf()")


async def _until_a_probe_is_held(stack: LocalbaseProcess) -> None:
    """The reload reaches the server's processes asynchronously: probe until it has."""
    held = False
    async with asyncio.timeout(HOLD_LIMIT):
        while not held:
            async with await psycopg.AsyncConnection.connect(stack.db_dsn) as conn:
                await conn.execute("insert into visibility_probe default values")
                probe = HeldCommit(conn)
                probe.commit()
                try:
                    held = await probe.held(stack)
                finally:  # a held probe is let go at once (it commits with a warning)
                    await execute(stack, f"select pg_cancel_backend({conn.info.backend_pid})")
                    assert probe.task is not None
                    with contextlib.suppress(psycopg.Error):
                        await probe.task


@contextlib.asynccontextmanager
async def subscribed(stack: LocalbaseProcess, *tables: str) -> AsyncIterator[Listener]:
    """A service_role client's channel with an INSERT binding per table."""
    async with realtime_client(stack) as client:
        _, listener = await subscribe(
            client, topic_name(), *({"event": "INSERT", "table": table} for table in tables)
        )
        yield listener


async def commit_held(
    stack: LocalbaseProcess, listener: Listener, fence: str, *statements: str
) -> None:
    """One transaction: a fence row, then ``statements``. Its commit is held until the fence
    event has arrived (delivery has reached the statements' changes), then let go."""
    async with await psycopg.AsyncConnection.connect(stack.db_dsn) as conn:
        for statement in (f"insert into {fence} values (2)", *statements):
            await conn.execute(statement.encode())
        held = HeldCommit(conn)
        async with commits_held(stack):
            held.commit()
            assert (await listener.change())["table"] == fence
            assert await held.held(stack), "the commit was not held"
        assert held.task is not None
        await held.task


async def test_rls_insert_streamed_before_it_is_visible_is_delivered(
    stack: LocalbaseProcess,
) -> None:
    """The RLS check must not run in a snapshot without the row (it would drop the event)."""
    fence, guarded = create_tables(stack, "id int primary key", "id int primary key;rls")
    async with subscribed(stack, fence, guarded) as listener:
        await execute(stack, f"insert into {fence} values (1); insert into {guarded} values (1)")
        assert [(await listener.change())["table"] for _ in range(2)] == [fence, guarded]
        await commit_held(stack, listener, fence, f"insert into {guarded} values (2)")
        data = await listener.change()
    assert (data["table"], data["record"]) == (guarded, {"id": 2})


async def test_ddl_of_the_streamed_transaction_is_in_the_table_facts(
    stack: LocalbaseProcess,
) -> None:
    """Table facts must not be read (and cached) from before the transaction's own DDL."""
    fence, altered = create_tables(stack, "id int primary key", "id int primary key")
    async with subscribed(stack, fence, altered) as listener:
        await execute(stack, f"insert into {fence} values (1); insert into {altered} values (1)")
        assert [(await listener.change())["table"] for _ in range(2)] == [fence, altered]
        await commit_held(
            stack,
            listener,
            fence,
            f"alter table {altered} add column note text",
            f"insert into {altered} values (2, 'added')",
        )
        data = await listener.change()
        await execute(stack, f"insert into {altered} values (3, 'later')")
        later = await listener.change()
    assert data["record"] == {"id": 2, "note": "added"}
    assert later["record"] == {"id": 3, "note": "later"}
