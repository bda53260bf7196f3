"""Benchmark localbase's /rest/v1 through the official clients, and its start-up times.

Prints a table: p50/p99 latency of a one-row select and of an update (sync ``supabase``),
requests/s with 8 concurrent async clients, cold start (initdb + bootstrap) and warm start.

    .venv/bin/python bench/localbase_rest.py [--requests 2000] [--starts 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from supabase import ClientOptions, acreate_client, create_client
from tests.localbase_process import LocalbaseProcess

SCHEMA = """
create table if not exists public.bench_items (id int primary key, name text, n int);
grant select, insert, update, delete on public.bench_items to service_role;
insert into public.bench_items select g, 'item ' || g, g from generate_series(1, 1000) g
on conflict do nothing;
"""


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed_starts(root: Path, count: int) -> tuple[list[float], list[float]]:
    cold, warm = [], []
    for i in range(count):
        stack = LocalbaseProcess(root / f"start{i}")
        began = time.perf_counter()
        stack.start()
        cold.append(time.perf_counter() - began)
        stack.stop()
        began = time.perf_counter()
        stack.start()
        warm.append(time.perf_counter() - began)
        stack.stop()
    return cold, warm


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cold, warm = timed_starts(Path(tmp), args.starts)
        stack = LocalbaseProcess(Path(tmp) / "main")
        stack.start()
        try:
            with psycopg.connect(stack.db_dsn, autocommit=True) as conn:
                conn.execute(SCHEMA.encode())
            samples = latencies(stack, args.requests)
            rps = asyncio.run(throughput(stack, args.seconds, 8))
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


if __name__ == "__main__":
    main()
