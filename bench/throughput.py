"""No-op job throughput: N ``demo.noop`` jobs drained by 1 and by 4 worker processes, at each
``--concurrency`` given, and where the machine's CPU went meanwhile.

Throughput is measured in the database (first claim to last completion), so worker start-up
is not counted. CPU is sampled from ``/proc`` over the drain and attributed to localbase (REST
and Realtime in one Python process), Postgres (backends, WAL sender, writer), the workers, and
the kernel's writeback threads (WAL flushes); it is given in cores (2 = both cores of the
machine busy). Prints a markdown table.

With ``--rtt-ms`` (comma-separated, e.g. ``0,20``) the workers reach localbase through a proxy
that delays each direction by half the round trip (``bench.common.reach``); the proxy runs in
the benchmark's own process, whose CPU is then shown too. The values are interleaved run by run.

    .venv/bin/python bench/throughput.py [--jobs 4000] [--concurrency 10,50] [--processes 1,4]
        [--rtt-ms 0] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg
from common import localbase, reach, run, sql, table, workers

from devstack.localbase import LocalbaseProcess

POLL_SECONDS = 0.02  # how often the benchmark looks whether the jobs have drained


@dataclass(frozen=True)
class Drain:
    rate: float  # jobs per second, first start to last completion, from the database
    wall_rate: float  # jobs per second, from the insert to the moment all were seen done
    cores: Counter[str]  # CPU per component over the drain, in cores


def _component(process: psutil.Process) -> str | None:
    if process.pid == os.getpid():
        return "benchmark (proxy)"
    name = process.name()
    if name.startswith("postgres"):
        return "postgres"
    if name.startswith("kworker"):
        return "kernel writeback" if "writeback" in name else None
    command = " ".join(process.cmdline())
    if "-m worker" in command:
        return "workers"
    if "peer_worker.py" in command:
        return "peer workers"
    if "-m localbase" in command:
        return "localbase"
    return None


def cpu_seconds() -> Counter[str]:
    """CPU seconds used so far, per component, by the processes alive now."""
    used: Counter[str] = Counter()
    for process in psutil.process_iter():
        try:
            component = _component(process)
            if component is not None:
                times = process.cpu_times()
                used[component] += times.user + times.system
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return used


def until_drained(dsn: str, query: str, what: str, timeout: float = 600) -> None:
    """Poll ``query`` (one connection) until it answers true."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while not conn.execute(query.encode()).fetchone()[0]:  # type: ignore[index]
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} did not drain in {timeout:g} s")
            time.sleep(POLL_SECONDS)


def drain_on(
    stack: LocalbaseProcess, root: Path, jobs: int, processes: int, concurrency: int, url: str
) -> Drain:
    """Drain ``jobs`` no-op jobs with fresh workers reaching localbase at ``url``; the jobs are
    deleted afterwards, so a localbase can serve several drains."""
    args = ("--concurrency", str(concurrency), "--lease", "30", "--idle-poll", "0.2")
    with workers(stack, root, processes, *args, url=url) as started:
        before, began = cpu_seconds(), time.monotonic()
        sql(
            stack,
            "insert into public.background_jobs (job_type) select 'demo.noop'"
            f" from generate_series(1, {int(jobs)})",
        )
        until_drained(
            stack.db_dsn,
            "select not exists (select from public.background_jobs where status <> 'completed')",
            "jobdock",
        )
        after, wall = cpu_seconds(), time.monotonic() - began
        assert all(w.process and w.process.poll() is None for w in started)
    (seconds,) = sql(
        stack,
        "select extract(epoch from max(completed_at) - min(started_at))"
        " from public.background_jobs",
    )[0]
    sql(stack, "delete from public.background_jobs")
    cores = Counter({k: max(0.0, after[k] - before.get(k, 0.0)) / wall for k in after})
    return Drain(jobs / float(seconds), jobs / wall, cores)


def drain(jobs: int, processes: int, concurrency: int, rtt_ms: float = 0) -> Drain:
    with localbase() as (stack, root), reach(stack, rtt_ms) as url:
        return drain_on(stack, root, jobs, processes, concurrency, url)


COMPONENTS = ("localbase", "postgres", "workers", "kernel writeback")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=4000)
    parser.add_argument("--concurrency", default="10,50", help="comma-separated")
    parser.add_argument("--processes", default="1,4", help="comma-separated")
    parser.add_argument("--rtt-ms", default="0", help="comma-separated round trips to localbase")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rtts = [float(r) for r in args.rtt_ms.split(",")]
    components = (*COMPONENTS, "benchmark (proxy)") if any(rtts) else COMPONENTS
    rows = []
    for concurrency in (int(c) for c in args.concurrency.split(",")):
        for processes in (int(p) for p in args.processes.split(",")):
            runs: dict[float, list[Drain]] = {rtt: [] for rtt in rtts}
            for _ in range(args.runs):
                for rtt in rtts:  # interleaved: the machine's load falls on every RTT alike
                    runs[rtt].append(drain(args.jobs, processes, concurrency, rtt))
            for rtt, drains in runs.items():
                rates = [d.rate for d in drains]
                cores = [f"{statistics.median(d.cores[c] for d in drains):.2f}" for c in components]
                label = f"{processes} × concurrency {concurrency}"
                rows.append(
                    (
                        f"{label}, RTT {rtt:g} ms" if any(rtts) else label,
                        f"{statistics.median(rates):,.0f}",
                        f"{min(rates):,.0f}–{max(rates):,.0f}",
                        f"{statistics.median(d.wall_rate for d in drains):,.0f}",
                        *cores,
                    )
                )
    print(
        f"no-op job throughput, {args.jobs:,} jobs per run, {args.runs} runs each (jobs/s,"
        " measured in the database; wall: from the insert until all were seen done);"
        " CPU in cores over the drain (medians)\n"
    )
    header = [
        "workers",
        "median jobs/s",
        "range",
        "wall jobs/s",
        *(f"CPU: {c}" for c in components),
    ]
    print(table(header, rows))


if __name__ == "__main__":
    run(main)
