"""Benchmark localbase's /rest/v1 through the official clients, and its start-up times.

Prints a table: p50/p99 latency of a one-row select and of an update (sync ``supabase``),
requests/s with 8 concurrent async clients, cold start (initdb + bootstrap) and warm start.
Then resource embedding: 100 parents with 10 children each in one request through
``postgrest-py`` (p50/p99, and the SQL statements PostgreSQL logged for one such request). Then
the hardening figures: the parse time of the worst 8 KB query found for each part of
the REST grammar, and 50 concurrent clients for ``--load-seconds``: requests/s, p99 and
dropped connections (a request that got no HTTP answer at all).

    .venv/bin/python bench/localbase_rest.py [--requests 2000] [--starts 5] [--load-seconds 60]
    .venv/bin/python bench/localbase_rest.py --embedding-only [--requests 300] [--starts 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import psycopg
from common import run, timed_starts

from devstack.localbase import LocalbaseProcess
from localbase.rest.errors import RestError
from localbase.rest.query import parse_query
from supabase import ClientOptions, acreate_client, create_client

SCHEMA = """
create table if not exists public.bench_items (id int primary key, name text, n int);
grant select, insert, update, delete on public.bench_items to service_role;
insert into public.bench_items select g, 'item ' || g, g from generate_series(1, 1000) g
on conflict do nothing;
"""


EMBED_SCHEMA = """
create table if not exists public.bench_parents (id int primary key, name text);
create table if not exists public.bench_children (
    id int primary key, parent_id int not null references public.bench_parents(id), name text);
create index if not exists bench_children_parent on public.bench_children (parent_id);
grant select on public.bench_parents, public.bench_children to service_role;
insert into public.bench_parents select g, 'parent ' || g from generate_series(1, 100) g
on conflict do nothing;
insert into public.bench_children select g, (g - 1) / 10 + 1, 'child ' || g
from generate_series(1, 1000) g on conflict do nothing;
"""
EMBED_SELECT = "id,name,bench_children(id,name)"


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latencies(stack: LocalbaseProcess, requests: int) -> dict[str, list[float]]:
    with httpx.Client() as http:
        client = create_client(stack.url, stack.service_key, ClientOptions(httpx_client=http))
        table = client.table("bench_items")
        samples: dict[str, list[float]] = {
            "select one row": [],
            "update one row": [],
            "select one row, raw httpx": [],
        }
        headers = {"apikey": stack.service_key, "Authorization": f"Bearer {stack.service_key}"}
        for i in range(requests):
            row_id = i % 1000 + 1
            began = time.perf_counter()
            table.select("*").eq("id", row_id).execute()
            samples["select one row"].append(time.perf_counter() - began)
            began = time.perf_counter()
            table.update({"n": i}).eq("id", row_id).execute()
            samples["update one row"].append(time.perf_counter() - began)
            began = time.perf_counter()
            http.get(f"{stack.url}/rest/v1/bench_items?select=*&id=eq.{row_id}", headers=headers)
            samples["select one row, raw httpx"].append(time.perf_counter() - began)
        return samples


async def throughput(stack: LocalbaseProcess, seconds: float, clients: int) -> float:
    done = 0
    deadline = time.perf_counter() + seconds

    async def one_client(index: int) -> None:
        nonlocal done
        async with httpx.AsyncClient() as http:
            client = await acreate_client(
                stack.url, stack.service_key, ClientOptions(httpx_client=http)
            )  # type: ignore[arg-type]
            table = client.table("bench_items")
            while time.perf_counter() < deadline:
                await table.select("*").eq("id", (done + index) % 1000 + 1).execute()
                done += 1

    began = time.perf_counter()
    await asyncio.gather(*(one_client(i) for i in range(clients)))
    return done / (time.perf_counter() - began)


QUERY_CHARS = 8 * 1024


def _fill(unit: str, head: str = "", tail: str = "") -> str:
    """``head`` + ``unit`` repeated + ``tail``, 8 KB in all."""
    return head + unit * ((QUERY_CHARS - len(head) - len(tail)) // len(unit)) + tail


#: Hostile and merely large 8 KB queries, by the grammar part they exercise.
WORST_QUERIES: dict[str, list[list[tuple[str, str]]]] = {
    "field / JSON path": [
        [("select", _fill("->>>", "input_data", "-"))],
        [("select", _fill("->b", "a"))],
        [("select", _fill("x", "", "->"))],
        [(_fill("->>a", "input_data")[:1024], "eq.1")],
    ],
    "select list": [
        [("select", _fill("a,"))],
        [("select", _fill("al:a->b::text,"))],
        [("select", _fill(":"))],
    ],
    "filter values and in-lists": [
        [("a", _fill("x,", "in.(", ")"))],
        [("a", _fill('"x\\",', "in.(", ")"))],
        [("a", _fill("x", "eq."))],
    ],
    "logic trees": [
        [("or", _fill("a.eq.1,", "(", "a.eq.1)"))],
        [("or", _fill("and(", "(", "a.eq.1" + ")" * 33))],
        [("or", _fill("x,", "(a.cs.{", "})"))],
    ],
    "order": [
        [("order", _fill("a.desc.nullsfirst,"))],
        [("order", _fill("->>>", "a", "-.desc"))],
    ],
    "many parameters": [[("a", "eq.1")] * (QUERY_CHARS // 7)],
}


def parse_times(repeats: int = 30) -> dict[str, float]:
    """Median parse time (s) of the slowest query of each grammar part."""

    def once(params: list[tuple[str, str]]) -> float:
        began = time.perf_counter()
        with contextlib.suppress(RestError):
            parse_query(params)
        return time.perf_counter() - began

    return {
        part: max(statistics.median(once(q) for _ in range(repeats)) for q in queries)
        for part, queries in WORST_QUERIES.items()
    }


async def load(
    stack: LocalbaseProcess, seconds: float, clients: int
) -> tuple[float, list[float], int, int]:
    """``clients`` loops of one-row selects over one shared pool, as an application would:
    requests/s, latencies (s), answered requests and dropped ones (no HTTP answer)."""
    latencies: list[float] = []
    dropped = 0
    deadline = time.perf_counter() + seconds
    headers = {"apikey": stack.service_key, "Authorization": f"Bearer {stack.service_key}"}
    async with httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=30) as http:

        async def one_client(index: int) -> None:
            nonlocal dropped
            n = index
            while time.perf_counter() < deadline:
                n += clients
                began = time.perf_counter()
                try:
                    response = await http.get(
                        "/rest/v1/bench_items", params={"select": "*", "id": f"eq.{n % 1000 + 1}"}
                    )
                except httpx.TransportError:
                    dropped += 1
                    continue
                latencies.append(time.perf_counter() - began)
                assert response.status_code == 200, response.text

        began = time.perf_counter()
        await asyncio.gather(*(one_client(i) for i in range(clients)))
    return len(latencies) / (time.perf_counter() - began), latencies, len(latencies), dropped


def print_hardening(
    parse: dict[str, float], concurrent: tuple[float, list[float], int, int], seconds: float
) -> None:
    print("\nParse time of the slowest 8 KB query per grammar part (median of 30 runs)\n")
    print("| grammar part | parse time | aim |")
    print("|---|---|---|")
    for part, value in parse.items():
        print(f"| {part} | {value * 1000:.2f} ms | ≤ 1 ms |")
    rps, latencies, answered, dropped = concurrent
    print(f"\n50 concurrent clients (one shared httpx pool), one-row select, {seconds:.0f} s\n")
    print("| requests/s | p50 | p99 | answered | dropped connections |")
    print("|---|---|---|---|---|")
    print(
        f"| {rps:.0f} | {percentile(latencies, 0.5) * 1000:.1f} ms | "
        f"{percentile(latencies, 0.99) * 1000:.1f} ms | {answered} | {dropped} (aim: 0) |"
    )


def embedding(stack: LocalbaseProcess, requests: int) -> list[float]:
    """One request for 100 parents and their 1,000 children, through postgrest-py."""
    with psycopg.connect(stack.db_dsn, autocommit=True) as conn:
        conn.execute(EMBED_SCHEMA.encode())
    with httpx.Client() as http:
        client = create_client(stack.url, stack.service_key, ClientOptions(httpx_client=http))
        samples = []
        for _ in range(requests):
            began = time.perf_counter()
            rows = client.table("bench_parents").select(EMBED_SELECT).execute().data
            samples.append(time.perf_counter() - began)
            assert len(rows) == 100
            assert all(len(r["bench_children"]) == 10 for r in rows)
        return samples


def statements_per_request(stack: LocalbaseProcess) -> tuple[int, int]:
    """(statements PostgreSQL logged for one embedding request, of which reading tables):
    ``log_statement = all`` for the duration, between two marker statements."""
    log = stack.data_dir / "postgres.log"
    with psycopg.connect(stack.db_dsn, autocommit=True) as conn:
        conn.execute("alter system set log_statement = 'all'")
        conn.execute("select pg_reload_conf()")
        time.sleep(0.5)  # the postmaster signals the backends; no event to wait on
        conn.execute("select 'bench-marker-begin'")
        with httpx.Client() as http:
            client = create_client(stack.url, stack.service_key, ClientOptions(httpx_client=http))
            client.table("bench_parents").select(EMBED_SELECT).execute()
        conn.execute("select 'bench-marker-end'")
        conn.execute("alter system reset log_statement")
        conn.execute("select pg_reload_conf()")
    text = log.read_text(errors="replace")
    window = text[text.rindex("bench-marker-begin") : text.rindex("bench-marker-end")]
    logged = [
        line
        for line in window.splitlines()[1:]
        if "LOG:  statement:" in line or "LOG:  execute" in line
    ]
    reading = [line for line in logged if "bench_" in line]
    return len(logged) - 1, len(reading)  # the end marker's own line is in the window


def main_embedding(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cold, warm = timed_starts(Path(tmp), args.starts)
        stack = LocalbaseProcess(Path(tmp) / "main")
        stack.start()
        try:
            samples = embedding(stack, args.requests)
            logged, reading = statements_per_request(stack)
        finally:
            stack.stop()
    print("| measure | p50 | p99 | SQL statements per request |")
    print("|---|---|---|---|")
    print(
        f"| 100 parents × 10 children, one embedding request ({args.requests} requests) | "
        f"{percentile(samples, 0.5) * 1000:.2f} ms | {percentile(samples, 0.99) * 1000:.2f} ms | "
        f"{reading} reading tables ({logged} in all: begin, claims, the read, commit) |"
    )
    print(
        f"| cold start, {args.starts} runs | {statistics.median(cold):.2f} s | "
        f"{max(cold):.2f} s (max) | |"
    )
    print(
        f"| warm start, {args.starts} runs | {statistics.median(warm):.2f} s | "
        f"{max(warm):.2f} s (max) | |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--load-seconds", type=float, default=60.0)
    parser.add_argument("--embedding-only", action="store_true")
    args = parser.parse_args()
    if args.embedding_only:
        main_embedding(args)
        return
    parse = parse_times()
    with tempfile.TemporaryDirectory() as tmp:
        cold, warm = timed_starts(Path(tmp), args.starts)
        stack = LocalbaseProcess(Path(tmp) / "main")
        stack.start()
        try:
            with psycopg.connect(stack.db_dsn, autocommit=True) as conn:
                conn.execute(SCHEMA.encode())
            samples = latencies(stack, args.requests)
            embedded = embedding(stack, args.requests)
            logged, reading = statements_per_request(stack)
            rps = asyncio.run(throughput(stack, args.seconds, 8))
            concurrent = asyncio.run(load(stack, args.load_seconds, 50))
        finally:
            stack.stop()
    print(f"localbase /rest/v1 — {args.requests} requests per operation, sync supabase client\n")
    print("| measure | p50 | p99 | aim |")
    print("|---|---|---|---|")
    aims = {
        "select one row": "p50 ≤ 3 ms",
        "update one row": "—",
        "select one row, raw httpx": "(client overhead reference)",
    }
    for name, values in samples.items():
        print(
            f"| {name} | {percentile(values, 0.5) * 1000:.2f} ms | "
            f"{percentile(values, 0.99) * 1000:.2f} ms | {aims[name]} |"
        )
    print(
        f"| embedding: 100 parents × 10 children, one request | "
        f"{percentile(embedded, 0.5) * 1000:.2f} ms | {percentile(embedded, 0.99) * 1000:.2f} ms | "
        f"{reading} SQL statement reads the tables ({logged} logged in all) |"
    )
    print(
        f"| cold start (initdb + bootstrap), {args.starts} runs | "
        f"{statistics.median(cold):.2f} s | {max(cold):.2f} s (max) | ≤ 10 s |"
    )
    print(
        f"| warm start, {args.starts} runs | {statistics.median(warm):.2f} s | "
        f"{max(warm):.2f} s (max) | ≤ 3 s |"
    )
    print(
        f"\n8 concurrent async clients, one-row select: **{rps:.0f} requests/s** "
        f"over {args.seconds:.0f} s"
    )
    print_hardening(parse, concurrent, args.load_seconds)


if __name__ == "__main__":
    run(main)
