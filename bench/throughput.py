"""No-op job throughput: N ``demo.noop`` jobs drained by 1 and by 4 worker processes, at each
``--concurrency`` given, and where the machine's CPU went meanwhile.

Throughput is measured in the database (first claim to last completion), so worker start-up
is not counted. CPU is sampled from ``/proc`` over the drain and attributed to localbase (REST
and Realtime in one Python process), Postgres (backends, WAL sender, writer), the workers, and
the kernel's writeback threads (WAL flushes); it is given in cores (2 = both cores of the
machine busy). Prints a markdown table.

    .venv/bin/python bench/throughput.py [--jobs 4000] [--concurrency 10,50] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from dataclasses import dataclass

import psutil
from common import localbase, run, sql, table, workers


@dataclass(frozen=True)
class Drain:
    rate: float  # jobs per second
    cores: Counter[str]  # CPU per component over the drain, in cores


def _component(process: psutil.Process) -> str | None:
    name = process.name()
    if name.startswith("postgres"):
        return "postgres"
    if name.startswith("kworker"):
        return "kernel writeback" if "writeback" in name else None
    command = " ".join(process.cmdline())
    if "-m worker" in command:
        return "workers"
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


def drain(jobs: int, processes: int, concurrency: int) -> Drain:
    with localbase() as (stack, root):
        with workers(
            stack,
            root,
            processes,
            "--concurrency",
            str(concurrency),
            "--lease",
            "30",
            "--idle-poll",
            "0.2",
        ) as started:
            before, began = cpu_seconds(), time.monotonic()
            sql(
                stack,
                "insert into public.background_jobs (job_type) select 'demo.noop'"
                f" from generate_series(1, {int(jobs)})",
            )
            deadline = time.monotonic() + 600
            while sql(
                stack, "select count(*) from public.background_jobs where status <> 'completed'"
            )[0][0]:
                if time.monotonic() > deadline:
                    raise TimeoutError("jobs did not drain in 10 minutes")
                time.sleep(0.05)
            after, wall = cpu_seconds(), time.monotonic() - began
            assert all(w.process and w.process.poll() is None for w in started)
        (seconds,) = sql(
            stack,
            "select extract(epoch from max(completed_at) - min(started_at))"
            " from public.background_jobs",
        )[0]
        cores = Counter({k: max(0.0, after[k] - before.get(k, 0.0)) / wall for k in after})
        return Drain(jobs / float(seconds), cores)


COMPONENTS = ("localbase", "postgres", "workers", "kernel writeback")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=4000)
    parser.add_argument("--concurrency", default="10,50", help="comma-separated")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows = []
    for concurrency in (int(c) for c in args.concurrency.split(",")):
        for processes in (1, 4):
            runs = [drain(args.jobs, processes, concurrency) for _ in range(args.runs)]
            rates = [run.rate for run in runs]
            cores = [f"{statistics.median(run.cores[c] for run in runs):.2f}" for c in COMPONENTS]
            rows.append(
                (
                    f"{processes} × concurrency {concurrency}",
                    f"{statistics.median(rates):,.0f}",
                    f"{min(rates):,.0f}–{max(rates):,.0f}",
                    *cores,
                )
            )
    print(
        f"no-op job throughput, {args.jobs:,} jobs per run, {args.runs} runs each (jobs/s,"
        " measured in the database); CPU in cores over the drain (medians)\n"
    )
    header = ["workers", "median jobs/s", "range", *(f"CPU: {c}" for c in COMPONENTS)]
    print(table(header, rows))


if __name__ == "__main__":
    run(main)
