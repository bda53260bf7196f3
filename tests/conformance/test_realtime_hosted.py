"""The ``hosted`` Realtime profile (``--realtime-profile hosted``, spec ``realtime.md`` §1.6 and
§6; ``realtime-broadcast.md`` §9 L1, H7): ``postgres_changes`` picked up with the hosted poll
cadence, the messages-per-second cap with over-cap changes dropped and counted, and a subscriber
of the ``local`` profile left as it was.

Each profile setting runs in a localbase of its own (module-scoped). Timing is measured on
events; the load generator runs inside Postgres.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import psycopg
import pytest
import pytest_asyncio

from devstack.localbase import LocalbaseProcess
from localbase import keys
from tests.conformance.realtime_helpers import (
    Listener,
    broadcast_url,
    join_channel,
    metrics,
    raw_socket,
    realtime_client,
    subscribe,
    topic_name,
)

CAP = 10


def start(tmp: pytest.TempPathFactory, name: str, *args: str) -> Iterator[LocalbaseProcess]:
    stack = LocalbaseProcess(tmp.mktemp(name) / "data", extra_args=args)
    stack.start()
    yield stack
    assert stack.stop() == 0


@pytest.fixture(scope="module")
def hosted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalbaseProcess]:
    yield from start(tmp_path_factory, "hosted", "--realtime-profile", "hosted")


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalbaseProcess]:
    yield from start(
        tmp_path_factory,
        "capped",
        "--realtime-profile",
        "hosted",
        "--max-events-per-second",
        str(CAP),
    )


def table(stack: LocalbaseProcess) -> str:
    name = f"rt_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(stack.db_dsn, autocommit=True) as conn:
        conn.execute(
            f"""
            create table public.{name} (
              id bigserial primary key, n int,
              at double precision not null default extract(epoch from clock_timestamp()));
            grant select on public.{name} to service_role;
            alter publication supabase_realtime add table public.{name};
            create procedure public.{name}_paced(total int, gap_seconds float8)
            language plpgsql as $$
            begin
              for i in 1 .. total loop
                insert into public.{name} (n) values (i);
                commit;
                perform pg_sleep(gap_seconds);
              end loop;
            end $$;
            """.encode()
        )
    return name


def run(stack: LocalbaseProcess, statement: str) -> None:
    with psycopg.connect(stack.db_dsn, autocommit=True) as conn:
        conn.execute(statement.encode())


@pytest_asyncio.fixture
async def watcher(
    request: pytest.FixtureRequest,
) -> AsyncIterator[Callable[[LocalbaseProcess, str], object]]:
    """Subscribe one official client to a table's changes: ``await watch(stack, table)``."""
    stack_clients: list[object] = []
    contexts = []

    async def watch(stack: LocalbaseProcess, name: str) -> Listener:
        context = realtime_client(stack)
        contexts.append(context)
        client = await context.__aenter__()
        stack_clients.append(client)
        _, listener = await subscribe(client, topic_name(), {"table": name, "schema": "public"})
        return listener

    yield watch  # type: ignore[misc]
    for context in contexts:
        await context.__aexit__(None, None, None)


async def test_idle_pickup_follows_the_idle_interval(hosted: LocalbaseProcess, watcher) -> None:  # type: ignore[no-untyped-def]
    name = table(hosted)
    listener: Listener = await watcher(hosted, name)
    run(hosted, f"insert into {name} (n) values (0)")
    await listener.change()
    latencies = []
    for n in range(1, 4):
        # Right after a delivery the poller polls again at once, finds nothing and waits the
        # idle interval: a change committed now waits for the end of that interval.
        committed = time.monotonic()
        run(hosted, f"insert into {name} (n) values ({n})")
        assert (await listener.change(3))["record"]["n"] == n
        latencies.append(time.monotonic() - committed)
    assert statistics.median(latencies) >= 0.35, latencies
    assert max(latencies) <= 0.8, latencies
    poller = metrics(hosted)["poller"]
    assert poller["next_poll_after"]["idle"] > 0
    assert poller["next_poll_after"]["delivered"] > 0


async def test_busy_pickup_polls_again_at_once(hosted: LocalbaseProcess, watcher) -> None:  # type: ignore[no-untyped-def]
    name = table(hosted)
    listener: Listener = await watcher(hosted, name)
    total = 600
    before = metrics(hosted)["poller"]["next_poll_after"]
    writer = asyncio.create_task(
        asyncio.to_thread(run, hosted, f"call {name}_paced({total}, 0.001)")
    )
    arrivals = []
    for _ in range(total):
        change = await listener.change(5)
        arrivals.append((change["record"]["at"], time.time()))
    await writer
    # Changes committed after the first delivery, while the poller polls again at once.
    busy_since = arrivals[0][1]
    busy = [arrived - committed for committed, arrived in arrivals if committed > busy_since]
    assert len(busy) > total // 4, len(busy)
    after = metrics(hosted)["poller"]["next_poll_after"]
    waits = {kind: after[kind] - before[kind] for kind in after}
    # While changes flow, a poll that delivered is followed at once by the next one: the idle
    # interval is (almost) never waited. (The pickup times themselves are measured in
    # bench/localbase_realtime.py, not asserted here: a loaded machine stretches them.)
    assert waits["delivered"] >= 5 * waits["idle"], (waits, statistics.median(busy))


async def test_h7_batch_over_the_cap(capped: LocalbaseProcess) -> None:
    body = {"messages": [{"topic": "t", "event": "e", "payload": {}}] * (CAP + 1)}
    async with httpx.AsyncClient() as http:
        response = await http.post(
            broadcast_url(capped), json=body, headers={"apikey": keys.SERVICE_ROLE_KEY}
        )
    assert response.status_code == 429
    assert response.json() == {
        "message": "Too many messages to broadcast, please reduce the batch size"
    }


async def wait_for_metrics(
    stack: LocalbaseProcess, done: Callable[[dict[str, object]], bool]
) -> dict[str, object]:
    """The metrics once ``done`` holds (the rate is re-evaluated every 5 s)."""
    async with asyncio.timeout(15):
        status = metrics(stack)
        while not done(status):
            await asyncio.sleep(0.1)  # polling a status endpoint, not waiting for an effect
            status = metrics(stack)
    return status


async def test_burst_over_the_cap_is_dropped_and_counted(capped: LocalbaseProcess, watcher) -> None:  # type: ignore[no-untyped-def]
    name = table(capped)
    listener: Listener = await watcher(capped, name)
    run(capped, f"insert into {name} (n) select generate_series(1, 200)")
    for _ in range(200):  # under the cap until the next evaluation: delivered
        await listener.change()
    await wait_for_metrics(capped, lambda s: s["limited"] is True)
    run(capped, f"insert into {name} (n) select generate_series(1, 20)")
    status = await wait_for_metrics(
        capped,
        lambda s: s["dropped"]["postgres_changes"] >= 20,  # type: ignore[index]
    )
    assert status["dropped"] == {"postgres_changes": 20, "broadcast": 0}
    assert listener.changes.empty()
    async with asyncio.timeout(5):  # drops are logged once per second
        while "over max_events_per_second=10" not in capped.log_path.read_text():  # noqa: ASYNC110
            await asyncio.sleep(0.2)


async def test_l1_over_the_cap_closes_receivers(capped: LocalbaseProcess) -> None:
    await wait_for_metrics(capped, lambda s: s["limited"] is True)
    name = topic_name()
    async with raw_socket(capped) as receiver, realtime_client(capped) as client:
        await receiver.join(f"realtime:{name}")
        sender, _ = await join_channel(client, name)
        await sender.send_broadcast("ev", {})
        frames = await receiver.until(lambda f: f["event"] == "phx_close")
        assert [f["event"] for f in frames] == ["broadcast", "system", "phx_close"]
        assert frames[1]["payload"]["message"] == "Too many messages per second"
        assert frames[1]["payload"]["status"] == "error"
        async with httpx.AsyncClient() as http:
            response = await http.post(
                broadcast_url(capped, f"/{name}/events/e"),
                json={},
                headers={"apikey": keys.SERVICE_ROLE_KEY},
            )
        assert (response.status_code, response.json()) == (
            429,
            {"message": "You have exceeded your rate limit"},
        )


async def test_local_profile_is_unaffected(localbase: LocalbaseProcess, watcher) -> None:  # type: ignore[no-untyped-def]
    name = table(localbase)
    listener: Listener = await watcher(localbase, name)
    run(localbase, f"insert into {name} (n) select generate_series(1, 600)")
    for n in range(1, 601):
        assert (await listener.change())["record"]["n"] == n
    status = metrics(localbase)
    assert status["profile"] == "local"
    assert status["limited"] is False
    assert status["dropped"] == {"postgres_changes": 0, "broadcast": 0}
