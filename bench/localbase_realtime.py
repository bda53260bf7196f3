"""Benchmark localbase's Realtime (postgres_changes), printing a Markdown table.

* commit → callback latency with one official ``realtime`` client (closed loop: one INSERT,
  wait for its callback, next);
* one change fanned out to 100 sockets, 100 at a time: raw Phoenix sockets (arrival = frame
  received and parsed) and official clients (arrival = callback), every one and the last one;
* a sustained 2,000 changes/s (one INSERT per transaction) to 10 raw sockets for 30 s:
  achieved rate, dropped events, latency, and the localbase process's RSS before and after.

"Commit" is when the writer's autocommit INSERT returns. Fan-out and sustained subscribers
run in child processes so that parsing does not slow the writer; every process reads the same
monotonic clock. The official client costs far more per message than the server (it validates
each frame with pydantic and formats debug strings), which is why the sustained run uses raw
sockets.

    .venv/bin/python bench/localbase_realtime.py [--runs 5] [--changes 500] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import calendar
import functools
import json
import multiprocessing as mp
import os
import re
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any, Final

import httpx
import psycopg
import websockets
from common import run
from realtime import AsyncRealtimeClient

from devstack.localbase import LocalbaseProcess

TABLE = "bench_realtime"
SERVICE_KEY: Final = LocalbaseProcess.service_key
#: Arrivals per row id: a wall-clock time, or (arrival, commit time) from a raw socket.
Seen = dict[int, Any]
SCHEMA = f"""
create table {TABLE} (id bigint primary key, n int, note text);
grant select on {TABLE} to service_role;
alter publication supabase_realtime add table {TABLE};
-- The sustained load is generated inside Postgres (one INSERT and COMMIT per change, paced),
-- so the load generator does not compete with localbase for the CPU.
create procedure bench_insert_paced(first bigint, total int, step int, per_second float8)
language plpgsql as $$
declare
  started timestamptz := clock_timestamp();
begin
  for i in 0 .. total - 1 loop
    perform pg_sleep(greatest(0, extract(epoch from started - clock_timestamp()) + i / per_second));
    insert into {TABLE} values (first + i * step, i);
    commit;
  end loop;
end $$;
"""


def percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def connect_subscriber(url: str, key: str, on_insert: Any) -> AsyncRealtimeClient:
    client = AsyncRealtimeClient(f"{url}/realtime/v1", key)
    await client.connect()
    subscribed = asyncio.Event()
    channel = client.channel(f"bench-{id(client)}")
    channel.on_postgres_changes("INSERT", on_insert, table=TABLE)
    channel.on_system(lambda payload: subscribed.set())
    await channel.subscribe()
    await asyncio.wait_for(subscribed.wait(), 10)
    return client


# Single subscriber, closed loop ---------------------------------------------------------


@dataclass
class Closed:
    """Closed-loop samples: from sending the INSERT, and from its commit being acknowledged."""

    from_sent: list[float]
    from_ack: list[float]


async def single_subscriber(stack: LocalbaseProcess, changes: int, first_id: int) -> Closed:
    """The writer runs in its own thread, so its timestamps do not wait for the event loop
    that runs the client's callbacks."""
    delivered: dict[int, float] = {}
    ready = threading.Event()

    def on_insert(payload: Any) -> None:
        delivered[payload["data"]["record"]["id"]] = time.perf_counter()
        ready.set()

    client = await connect_subscriber(stack.url, stack.service_key, on_insert)
    try:
        return await asyncio.to_thread(
            _closed_loop, stack.db_dsn, first_id, changes, delivered, ready
        )
    finally:
        await client.close()


def _closed_loop(
    dsn: str, first_id: int, changes: int, delivered: dict[int, float], ready: threading.Event
) -> Closed:
    samples = Closed([], [])
    with psycopg.connect(dsn, autocommit=True) as db:
        for row_id in range(first_id, first_id + changes):
            ready.clear()
            sent = time.perf_counter()
            db.execute(f"insert into {TABLE} values (%s, 0)", (row_id,))
            acknowledged = time.perf_counter()
            while row_id not in delivered:
                if not ready.wait(10):
                    raise TimeoutError(f"no event for row {row_id}")
                ready.clear()
            samples.from_sent.append(delivered[row_id] - sent)
            samples.from_ack.append(max(0.0, delivered[row_id] - acknowledged))
    return samples


# Subscribers in other processes -----------------------------------------------------------


def subscriber_process(
    url: str,
    key: str,
    kind: str,
    clients: int,
    ready: EventType,
    stop: EventType,
    results: mp.Queue[list[Seen]],
    expected: Any,
) -> None:
    runner = _official_subscribers if kind == "official" else _raw_subscribers
    asyncio.run(runner(url, key, clients, ready, stop, results, expected))


async def _drained(received: list[Seen], stop: EventType, expected: Any) -> None:
    """After ``stop``: wait until every subscriber has ``expected`` events (at most 120 s)."""
    await asyncio.to_thread(stop.wait)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and min(map(len, received)) < expected.value:  # noqa: ASYNC110
        await asyncio.sleep(0.05)  # polls counts that readers and callbacks update


async def _official_subscribers(
    url: str,
    key: str,
    count: int,
    ready: EventType,
    stop: EventType,
    results: mp.Queue[list[Seen]],
    expected: Any,
) -> None:
    received: list[Seen] = [{} for _ in range(count)]
    clients = []
    for seen in received:

        def on_insert(payload: Any, seen: Seen = seen) -> None:
            seen[payload["data"]["record"]["id"]] = time.time()

        clients.append(await connect_subscriber(url, key, on_insert))
    ready.set()
    await _drained(received, stop, expected)
    for client in clients:
        await client.close()
    results.put(received)


async def _raw_subscribers(
    url: str,
    key: str,
    count: int,
    ready: EventType,
    stop: EventType,
    results: mp.Queue[list[Seen]],
    expected: Any,
) -> None:
    """Phoenix sockets without the client library: arrival = frame received and parsed."""
    received: list[Seen] = [{} for _ in range(count)]
    socket_url = f"{url.replace('http', 'ws', 1)}/realtime/v1/websocket?apikey={key}&vsn=1.0.0"
    sockets = [await websockets.connect(socket_url, max_size=None) for _ in range(count)]
    join = json.dumps(
        {
            "topic": "realtime:bench",
            "event": "phx_join",
            "ref": "1",
            "join_ref": "1",
            "payload": {
                "config": {
                    "postgres_changes": [{"event": "INSERT", "schema": "public", "table": TABLE}]
                }
            },
        }
    )
    for ws in sockets:
        await ws.send(join)
        while json.loads(await ws.recv())["event"] != "system":
            pass
    readers = [
        asyncio.create_task(_read(ws, seen), name=f"bench reader {i}")
        for i, (ws, seen) in enumerate(zip(sockets, received, strict=True))
    ]
    ready.set()
    await _drained(received, stop, expected)
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    for ws in sockets:
        await ws.close()
    results.put(received)


_ID: Final = re.compile(r'"record":\{"id":(\d+)')
_STAMP: Final = re.compile(r'"commit_timestamp":"([^"]+)\.(\d{3})Z"')


@functools.lru_cache(maxsize=4096)
def _epoch(seconds: str) -> int:
    return calendar.timegm(time.strptime(seconds, "%Y-%m-%dT%H:%M:%S"))


async def _read(ws: websockets.ClientConnection, seen: Seen) -> None:
    """Arrival (wall clock) and commit time of each event, with as little parsing as possible."""
    heartbeat = time.monotonic()
    async for text in ws:
        arrived = time.time()
        found, stamp = _ID.search(str(text)), _STAMP.search(str(text))
        if found and stamp:
            seen[int(found[1])] = (arrived, _epoch(stamp[1]) + int(stamp[2]) / 1000)
        if time.monotonic() - heartbeat > 20:
            heartbeat = time.monotonic()
            await ws.send('{"topic":"phoenix","event":"heartbeat","payload":{},"ref":null}')


class Subscribers:
    """Subscribers spread over child processes; ``collect()`` returns their arrivals."""

    def __init__(self, stack: LocalbaseProcess, kind: str, count: int, processes: int) -> None:
        context = mp.get_context("spawn")
        self._stop = context.Event()
        self._expected = context.Value("q", 0)
        self._results: mp.Queue[list[Seen]] = context.Queue()
        self._ready = [context.Event() for _ in range(processes)]
        self._processes = [
            context.Process(
                target=subscriber_process,
                args=(
                    stack.url,
                    stack.service_key,
                    kind,
                    count // processes,
                    ready,
                    self._stop,
                    self._results,
                    self._expected,
                ),
            )
            for ready in self._ready
        ]

    def __enter__(self) -> Subscribers:
        for process in self._processes:
            process.start()
        for ready in self._ready:
            if not ready.wait(120):
                raise TimeoutError("subscribers did not connect")
        return self

    def collect(self, expected: int) -> list[Seen]:
        """Arrivals, once every subscriber has ``expected`` events (or 120 s have passed)."""
        self._expected.value = expected
        self._stop.set()
        received = [seen for _ in self._processes for seen in self._results.get(timeout=180)]
        for process in self._processes:
            process.join(30)
        return received

    def __exit__(self, *exc: object) -> None:
        for process in self._processes:
            if process.is_alive():
                process.terminate()


@dataclass
class Arrivals:
    every: list[float]
    last: list[float]
    missing: int


def arrivals(committed: dict[int, float], received: list[Seen]) -> Arrivals:
    """Latencies against ``committed`` (wall clock); raw sockets record (arrival, stamp)."""
    at = [{i: v[0] if isinstance(v, tuple) else v for i, v in seen.items()} for seen in received]
    every = [seen[i] - committed[i] for seen in at for i in committed if i in seen]
    last = [
        max(seen[i] for seen in at if i in seen) - committed[i]
        for i in committed
        if any(i in seen for seen in at)
    ]
    missing = sum(1 for seen in at for i in committed if i not in seen)
    return Arrivals(every, last, missing)


def fan_out(
    stack: LocalbaseProcess, kind: str, processes: int, changes: int, first_id: int
) -> Arrivals:
    committed: dict[int, float] = {}
    with (
        Subscribers(stack, kind, 100, processes) as subscribers,
        psycopg.connect(stack.db_dsn, autocommit=True) as db,
    ):
        for row_id in range(first_id, first_id + changes):
            db.execute(f"insert into {TABLE} values (%s, 0)", (row_id,))
            committed[row_id] = time.time()
            time.sleep(0.05)  # pacing: one change at a time through the fan-out
        received = subscribers.collect(changes)
    return arrivals(committed, received)


def _paced_writer(dsn: str, first: int, total: int, step: int, rate: float) -> None:
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("call bench_insert_paced(%s, %s, %s, %s)", (first, total, step, rate))


def sustained(
    stack: LocalbaseProcess, rate: int, seconds: float, writers: int, first_id: int
) -> tuple[Arrivals, int, float, float, float]:
    """``writers`` sessions share the rate: one synchronous commit (an fsync) per change is
    more than one session can do 2,000 times a second; group commit makes it possible.
    Latency is measured from each event's own ``commit_timestamp`` (whole milliseconds)."""
    total = int(rate * seconds)
    rss_start = rss_mib(stack_pid(stack))
    cpu_start = cpu_seconds(stack_pid(stack))
    with Subscribers(stack, "raw", 10, 1) as subscribers:
        began = time.perf_counter()
        threads = [
            threading.Thread(
                target=_paced_writer,
                args=(stack.db_dsn, first_id + w, total // writers, writers, rate / writers),
            )
            for w in range(writers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        achieved = total / (time.perf_counter() - began)
        received = subscribers.collect(total // writers * writers)
        rss_end = rss_mib(stack_pid(stack))
        cpu = cpu_seconds(stack_pid(stack)) - cpu_start
    latencies = [arrived - stamp for seen in received for arrived, stamp in seen.values()]
    committed = range(first_id, first_id + total // writers * writers)
    missing = sum(1 for seen in received for i in committed if i not in seen)
    return Arrivals(latencies, [], missing), int(achieved), rss_start, rss_end, cpu


def stack_pid(stack: LocalbaseProcess) -> int:
    assert stack.process is not None
    return stack.process.pid


# Broadcast, Presence and the hosted profile ------------------------------------------------

_SEQ = re.compile(r'"s":(\d+),"t":([0-9.]+)')


async def _official_broadcast_listener(
    stack: LocalbaseProcess, topic: str, on_message: Any
) -> AsyncRealtimeClient:
    client = AsyncRealtimeClient(f"{stack.url}/realtime/v1", stack.service_key)
    await client.connect()
    channel = client.channel(topic)
    channel.on_broadcast("n", on_message)
    joined = asyncio.Event()
    await channel.subscribe(lambda state, error: joined.set())
    await asyncio.wait_for(joined.wait(), 10)
    return client


async def db_broadcast(stack: LocalbaseProcess, subscribers: int, messages: int) -> list[float]:
    """``realtime.send`` committed → the last of ``subscribers`` official-client callbacks (all
    in this process), closed loop; the writer runs in a thread of its own."""
    topic = f"bench-db-{subscribers}"
    arrivals: dict[int, list[float]] = {}
    complete = threading.Event()

    def on_message(payload: Any) -> None:
        times = arrivals.setdefault(payload["payload"]["n"], [])
        times.append(time.perf_counter())
        if len(times) == subscribers:
            complete.set()

    clients = [
        await _official_broadcast_listener(stack, topic, on_message) for _ in range(subscribers)
    ]

    def writer() -> list[float]:
        latencies = []
        with psycopg.connect(stack.db_dsn, autocommit=True) as conn:
            for n in range(messages):
                complete.clear()
                conn.execute(
                    "select realtime.send(jsonb_build_object('n', %s::int), 'n', %s, false)",
                    (n, topic),
                )
                committed = time.perf_counter()
                if not complete.wait(10):
                    raise TimeoutError(f"broadcast {n} did not reach every subscriber")
                latencies.append(max(arrivals[n]) - committed)
        return latencies

    try:
        return await asyncio.to_thread(writer)
    finally:
        for client in clients:
            await client.close()


def broadcast_receivers(
    url: str, topic: str, count: int, ready: EventType, stop: EventType, results: Any
) -> None:
    asyncio.run(_broadcast_receivers(url, topic, count, ready, stop, results))


async def _broadcast_receivers(
    url: str, topic: str, count: int, ready: EventType, stop: EventType, results: Any
) -> None:
    """Raw sockets joined to ``topic``; each message's latency from the send time it carries
    (the monotonic clock is shared by every process)."""
    ws_url = url.replace("http", "ws") + "/realtime/v1/websocket?vsn=1.0.0&apikey=" + SERVICE_KEY
    sockets = [await websockets.connect(ws_url, max_queue=None) for _ in range(count)]
    for ws in sockets:
        join = {"config": {"broadcast": {"self": False}, "private": False}}
        await ws.send(
            json.dumps(
                {
                    "topic": f"realtime:{topic}",
                    "event": "phx_join",
                    "payload": join,
                    "ref": "1",
                    "join_ref": "1",
                }
            )
        )
        await ws.recv()
    latencies: list[list[float]] = [[] for _ in sockets]

    async def read(ws: websockets.ClientConnection, into: list[float]) -> None:
        async for text in ws:
            arrived = time.monotonic()
            found = _SEQ.search(str(text))
            if found:
                into.append(arrived - float(found[2]))

    pairs = zip(sockets, latencies, strict=True)
    readers = [asyncio.create_task(read(ws, into)) for ws, into in pairs]
    ready.set()
    await asyncio.to_thread(stop.wait)
    await asyncio.sleep(2)  # what is still in flight when the sender stops
    for task in readers:
        task.cancel()
    for ws in sockets:
        await ws.close()
    results.put(latencies)


async def client_broadcast(
    stack: LocalbaseProcess, rate: int, seconds: float
) -> tuple[int, int, list[float]]:
    """One raw socket sends ``rate`` broadcasts a second for ``seconds`` to 10 raw receivers
    in 2 child processes: (sent, lost, latencies)."""
    topic = "bench-ws"
    context = mp.get_context("spawn")
    stop, results = context.Event(), context.Queue()
    ready = [context.Event() for _ in range(2)]
    processes = [
        context.Process(target=broadcast_receivers, args=(stack.url, topic, 5, r, stop, results))
        for r in ready
    ]
    for process in processes:
        process.start()
    try:
        for r in ready:
            if not r.wait(60):
                raise TimeoutError("receivers did not join")
        url = (
            f"ws://127.0.0.1:{stack.api_port}/realtime/v1/websocket?vsn=1.0.0&apikey={SERVICE_KEY}"
        )
        async with websockets.connect(url) as ws:
            await ws.send(
                json.dumps(
                    {
                        "topic": f"realtime:{topic}",
                        "event": "phx_join",
                        "payload": {"config": {}},
                        "ref": "1",
                        "join_ref": "1",
                    }
                )
            )
            await ws.recv()
            total = int(rate * seconds)
            began = time.monotonic()
            for n in range(total):
                due = began + n / rate
                if due > time.monotonic():
                    await asyncio.sleep(due - time.monotonic())
                await ws.send(
                    f'{{"topic":"realtime:{topic}","event":"broadcast","ref":null,"join_ref":"1",'
                    f'"payload":{{"type":"broadcast","event":"n","payload":{{"s":{n},"t":{time.monotonic()}}}}}}}'
                )
        stop.set()
        received = [into for _ in processes for into in results.get(timeout=120)]
    finally:
        for process in processes:
            process.join(30)
            if process.is_alive():
                process.terminate()
    latencies = [x for into in received for x in into]
    return total, total * 10 - len(latencies), latencies


async def presence_members(
    stack: LocalbaseProcess, members: int
) -> tuple[list[float], list[float]]:
    """``members`` raw sockets join one topic and track in turn (join → ``presence_state``);
    then 10 of them update their meta, each update timed to its diff at every other member."""
    topic = "realtime:bench-presence"
    url = f"ws://127.0.0.1:{stack.api_port}/realtime/v1/websocket?vsn=1.0.0&apikey={SERVICE_KEY}"
    sockets: list[websockets.ClientConnection] = []
    diffs: dict[int, list[float]] = {}
    join_latencies: list[float] = []

    async def read(ws: websockets.ClientConnection) -> None:
        async for text in ws:
            found = re.search(r'"presence_diff".*"u":(\d+)', str(text))
            if found:
                diffs.setdefault(int(found[1]), []).append(time.perf_counter())

    readers = []
    for i in range(members):
        ws = await websockets.connect(url, max_queue=None)
        config = {"presence": {"key": f"m{i}", "enabled": True}, "private": False}
        began = time.perf_counter()
        await ws.send(
            json.dumps(
                {
                    "topic": topic,
                    "event": "phx_join",
                    "payload": {"config": config},
                    "ref": "1",
                    "join_ref": "1",
                }
            )
        )
        while "presence_state" not in str(await ws.recv()):
            pass
        join_latencies.append(time.perf_counter() - began)
        await ws.send(
            json.dumps(
                {
                    "topic": topic,
                    "event": "presence",
                    "ref": "2",
                    "join_ref": "1",
                    "payload": {"event": "track", "payload": {"i": i}},
                }
            )
        )
        sockets.append(ws)
        readers.append(asyncio.create_task(read(ws)))
    await asyncio.sleep(1)  # the join-time diffs drain
    track_latencies: list[float] = []
    for u in range(10):
        began = time.perf_counter()
        await sockets[u].send(
            json.dumps(
                {
                    "topic": topic,
                    "event": "presence",
                    "ref": "3",
                    "join_ref": "1",
                    "payload": {"event": "track", "payload": {"u": u}},
                }
            )
        )
        async with asyncio.timeout(30):
            while len(diffs.get(u, [])) < members:  # noqa: ASYNC110
                await asyncio.sleep(0.001)  # readers record arrivals; this waits for all
        track_latencies += [t - began for t in diffs[u]]
    for task in readers:
        task.cancel()
    for ws in sockets:
        await ws.close()
    return join_latencies, track_latencies


def p50_p95(samples: Sequence[float]) -> str:
    return f"{ms(statistics.median(samples))} / {ms(percentile(samples, 0.95))}"


def broadcast_rows(stack: LocalbaseProcess, args: argparse.Namespace) -> list[tuple[str, str]]:
    one = asyncio.run(db_broadcast(stack, 1, args.broadcasts))
    hundred = asyncio.run(db_broadcast(stack, 100, args.broadcasts // 5))
    sent, lost, ws_latencies = asyncio.run(
        client_broadcast(stack, args.broadcast_rate, args.seconds)
    )
    joins, tracks = asyncio.run(presence_members(stack, 200))
    return [
        ("Broadcast from Database, commit → callback, 1 subscriber p50 / p99", spread(one)),
        ("  samples", f"{len(one)}"),
        (
            "Broadcast from Database → 100 official clients (1 process): last callback p50 / p99",
            spread(hundred),
        ),
        ("  samples", f"{len(hundred)} messages × 100"),
        (
            f"client broadcast {args.broadcast_rate}/s, {args.seconds:g} s → 10 sockets: lost",
            f"{lost} of {sent * 10}",
        ),
        ("  send → frame p50 / p99", spread(ws_latencies) if ws_latencies else "n/a"),
        ("presence, 200 members: join → presence_state p50 / p99", spread(joins)),
        ("presence: one track → presence_diff at all 200 p50 / p99", spread(tracks)),
    ]


def hosted_rows(args: argparse.Namespace, tmp: str, first_id: int) -> list[tuple[str, str]]:
    """postgres_changes under ``--realtime-profile hosted`` (cap 500/s): idle (closed loop: each
    INSERT after the previous callback) and busy (40 changes/s to 10 raw sockets)."""
    stack = LocalbaseProcess(Path(tmp) / "hosted", extra_args=("--realtime-profile", "hosted"))
    stack.start()
    try:
        with psycopg.connect(stack.db_dsn, autocommit=True) as db:
            db.execute(SCHEMA.encode())
        idle = asyncio.run(single_subscriber(stack, 40, first_id))
        busy, achieved, *_ = sustained(stack, 40, args.seconds / 3, 1, first_id + 1000)
        status = httpx.get(f"{stack.url}/realtime/v1/metrics").json()
    finally:
        stack.stop()
    return [
        (
            "hosted profile, postgres_changes idle: commit → callback p50 / p95",
            p50_p95(idle.from_ack),
        ),
        (
            f"hosted profile, busy ({achieved}/s → 10 raw sockets): commit → frame p50 / p95",
            p50_p95(busy.every) if busy.every else "n/a",
        ),
        (
            "  not delivered / dropped by the cap",
            f"{busy.missing} / {status['dropped']['postgres_changes']}",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--changes", type=int, default=500)
    parser.add_argument("--fanout-changes", type=int, default=100)
    parser.add_argument(
        "--rate", type=int, action="append", help="sustained rate(s), changes/s (default 2000)"
    )
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument(
        "--broadcasts", type=int, default=500, help="Broadcast from Database samples"
    )
    parser.add_argument("--broadcast-rate", type=int, default=5000, help="client broadcasts/s")
    parser.add_argument("--skip-changes", action="store_true", help="only the new rows")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stack = LocalbaseProcess(Path(tmp) / "data")
        stack.start()
        try:
            with psycopg.connect(stack.db_dsn, autocommit=True) as db:
                db.execute(SCHEMA.encode())
            report(stack, args, tmp)
        finally:
            stack.stop()


def spread(samples: Sequence[float]) -> str:
    return f"{ms(statistics.median(samples))} / {ms(percentile(samples, 0.99))}"


def sustained_rows(
    stack: LocalbaseProcess, rate: int, seconds: float, writers: int, first_id: int
) -> list[tuple[str, str]]:
    load, achieved, rss_start, rss_end, cpu = sustained(stack, rate, seconds, writers, first_id)
    per_thousand = cpu / (rate * seconds) * 1000
    return [
        (
            f"sustained {rate}/s for {seconds:g} s → 10 raw sockets: achieved",
            f"{achieved} changes/s, {achieved * 10} frames/s",
        ),
        ("  not delivered", f"{load.missing} of {int(rate * seconds) * 10}"),
        ("  commit → frame p50 / p99", spread(load.every) if load.every else "n/a"),
        ("  localbase RSS start → end", f"{rss_start:.0f} MiB → {rss_end:.0f} MiB"),
        ("  localbase CPU per 1,000 changes (10 frames each)", f"{per_thousand:.2f} s"),
    ]


def report(stack: LocalbaseProcess, args: argparse.Namespace, tmp: str) -> None:
    rows = [] if args.skip_changes else changes_rows(stack, args)
    rows += broadcast_rows(stack, args)
    rows += hosted_rows(args, tmp, 10_000_000)
    rows.append(
        ("load average (1 min) at the end", f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    )
    width = max(len(name) for name, _ in rows)
    print(f"| {'measure':<{width}} | result |")
    print(f"|{'-' * (width + 2)}|--------|")
    for name, value in rows:
        print(f"| {name:<{width}} | {value} |")


def changes_rows(stack: LocalbaseProcess, args: argparse.Namespace) -> list[tuple[str, str]]:
    next_id = 1
    single_runs = []
    for _ in range(args.runs):
        single_runs.append(asyncio.run(single_subscriber(stack, args.changes, next_id)))
        next_id += args.changes
    sent = [s for run in single_runs for s in run.from_sent]
    acked = [s for run in single_runs for s in run.from_ack]
    run_p50 = [statistics.median(run.from_ack) for run in single_runs]
    run_p99 = [percentile(run.from_ack, 0.99) for run in single_runs]
    raw = fan_out(stack, "raw", 1, args.fanout_changes, next_id)
    next_id += args.fanout_changes
    official = fan_out(stack, "official", 4, args.fanout_changes, next_id)
    next_id += args.fanout_changes
    rows = [
        ("1 subscriber, commit acknowledged → callback p50 / p99", spread(acked)),
        (
            "  per-run p50 range / p99 range",
            f"{ms(min(run_p50))}–{ms(max(run_p50))} / {ms(min(run_p99))}–{ms(max(run_p99))}",
        ),
        ("  INSERT sent → callback p50 / p99", spread(sent)),
        ("  samples", f"{len(acked)} ({args.runs} runs × {args.changes} changes)"),
        (
            "fan-out 1 change → 100 raw sockets: delivered",
            f"{len(raw.every)} / {100 * args.fanout_changes}",
        ),
        ("  frame arrival, every socket p50 / p99", spread(raw.every)),
        ("  frame arrival, last socket p50 / p99", spread(raw.last)),
        (
            "fan-out 1 change → 100 official clients (4 processes): delivered",
            f"{len(official.every)} / {100 * args.fanout_changes}",
        ),
        ("  callback, every client p50 / p99", spread(official.every)),
        ("  callback, last client p50 / p99", spread(official.last)),
    ]
    for rate in args.rate or [2000]:
        rows += sustained_rows(stack, rate, args.seconds, args.writers, next_id)
        next_id += int(rate * args.seconds)
    return rows


if __name__ == "__main__":
    run(main)
