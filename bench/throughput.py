"""No-op job throughput: N ``demo.noop`` jobs drained by 1 and by 4 worker processes.

Throughput is measured in the database (first claim to last completion), so worker start-up
is not counted. Prints a markdown table.

    .venv/bin/python bench/throughput.py [--jobs 4000] [--concurrency 10] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

from common import localbase, sql, table, workers


def drain(jobs: int, processes: int, concurrency: int) -> float:
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
                time.sleep(0.2)
            assert all(w.process and w.process.poll() is None for w in started)
        (seconds,) = sql(
            stack,
            "select extract(epoch from max(completed_at) - min(started_at))"
            " from public.background_jobs",
        )[0]
        return jobs / float(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows = []
    for processes in (1, 4):
        rates = [drain(args.jobs, processes, args.concurrency) for _ in range(args.runs)]
        rows.append(
            (
                f"{processes} × concurrency {args.concurrency}",
                f"{args.jobs}",
                f"{statistics.median(rates):.0f}",
                f"{min(rates):.0f}–{max(rates):.0f}",
            )
        )
    print(f"no-op job throughput, {args.runs} runs each (jobs/s, measured in the database)\n")
    print(table(["workers", "jobs per run", "median jobs/s", "range"], rows))


if __name__ == "__main__":
    main()
