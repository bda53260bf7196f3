"""jobdock next to its peers, Procrastinate and awa, in one run on one PostgreSQL.

No-op throughput at each ``--configs`` (processes × concurrency): for every run, one localbase
is started and jobdock, Procrastinate and awa each drain ``--jobs`` no-op jobs in it, one after
the other (the order rotates from run to run), each peer in a database of its own created in
localbase's PostgreSQL cluster. Every system's workers are separate processes, started and
ready before the jobs are inserted in one statement (jobdock: one INSERT; Procrastinate: one
``batch_defer``; awa: one ``enqueue_many_copy``, its bulk path into queue storage). Two measures:

* from the database: the first job's start to the last job's end (jobdock: ``started_at`` →
  ``completed_at``; Procrastinate: its ``started`` → ``succeeded`` events; awa: its claim and
  closure ledgers, when they still hold every job — otherwise none);
* wall clock: from the insert's start to the moment the benchmark, polling every 20 ms, sees
  every job done (the same for all three).

Then abort latency with 200 running async jobs over 4 processes, cancelled one every 20 ms:
jobdock's cancel → stop (``bench/cancel_latency.py``'s first mode) and Procrastinate's
``cancel_job_by_id(abort=True)`` → the task's asyncio cancellation (Procrastinate ≥ 3 cancels
an async task on abort). Both are measured from the moment the cancel call returned.

    .venv/bin/python bench/peers.py [--jobs 4000] [--runs 3] [--configs 1x10,4x10,4x50]
        [--peers procrastinate,awa] [--abort-jobs 200] [--no-abort]
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from cancel_latency import MODES, run_mode
from common import localbase, run, summary, table
from peer_worker import QUEUE, Noop
from throughput import POLL_SECONDS, cpu_seconds, drain_on, until_drained

from devstack.child import ROOT, stop, stop_at_exit
from devstack.localbase import LocalbaseProcess

HERE = Path(__file__).resolve().parent
PACE = 0.02  # one cancel every 20 ms, as in bench/cancel_latency.py


@dataclass(frozen=True)
class Drain:
    system: str
    db_rate: float | None  # jobs/s, first start → last end, from the database (None: unknown)
    wall_rate: float  # jobs/s, insert → all seen done
    cores: Counter[str]


# -- peer databases and workers ---------------------------------------------------------------
def create_database(stack: LocalbaseProcess, name: str) -> str:
    """A fresh database in localbase's cluster; its DSN."""
    with psycopg.connect(stack.db_dsn, autocommit=True) as conn:
        conn.execute(f"drop database if exists {name} with (force)".encode())
        conn.execute(f"create database {name}".encode())
    return stack.db_dsn.rsplit("/", 1)[0] + f"/{name}"


def drop_database(stack: LocalbaseProcess, name: str) -> None:
    with psycopg.connect(stack.db_dsn, autocommit=True) as conn:
        conn.execute(f"drop database if exists {name} with (force)".encode())


def migrate(peer: str, dsn: str) -> None:
    if peer == "procrastinate":
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(_procrastinate_app(dsn).schema_manager.get_schema().encode())
    else:
        argv = [sys.executable, "-m", "awa", "--database-url", dsn, "migrate"]
        subprocess.run(argv, check=True, capture_output=True)


def _procrastinate_app(dsn: str) -> Any:
    import procrastinate

    return procrastinate.App(connector=procrastinate.SyncPsycopgConnector(conninfo=dsn))


@contextmanager
def peer_workers(
    peer: str, dsn: str, processes: int, concurrency: int, root: Path
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``processes`` of ``bench/peer_worker.py``, each ready (its ``peer_ready`` line logged)."""
    started: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        for n in range(processes):
            log = root / f"{peer}-{n}.log"
            with log.open("wb") as out:
                argv = [sys.executable, str(HERE / "peer_worker.py"), peer, dsn, str(concurrency)]
                child = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
            stop_at_exit(child)
            started.append((child, log))
        for child, log in started:
            wait_for_line(child, log, "event=peer_ready", 60)
        yield [child for child, _ in started]
    finally:
        for child, _ in started:
            stop(child, 30)


def wait_for_line(child: subprocess.Popen[bytes], log: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        if child.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{log.name}: no {text!r}:\n{log.read_text(errors='replace')}")
        time.sleep(0.02)


# -- one drain per system ---------------------------------------------------------------------
def enqueue(peer: str, dsn: str, jobs: int) -> None:
    if peer == "procrastinate":
        app = _procrastinate_app(dsn)
        with app.open():
            task = app.configure_task("noop", queue=QUEUE, allow_unknown=True)
            task.batch_defer(*([{}] * jobs))
    else:
        import awa

        client = awa.Client(dsn)
        try:
            client.enqueue_many_copy([Noop()] * jobs, queue=QUEUE)
        finally:
            client.close()


def until_done(peer: str, dsn: str, jobs: int) -> None:
    if peer == "procrastinate":
        query = "select not exists (select from procrastinate_jobs where status <> 'succeeded')"
        until_drained(dsn, query, peer)
        return
    import awa

    client = awa.Client(dsn)
    try:  # awa's own count: queue storage keeps no row per finished job
        while sum(s.completed_last_hour for s in client.queue_stats()) < jobs:
            time.sleep(POLL_SECONDS)
    finally:
        client.close()


#: Per peer: (jobs started, jobs ended, seconds from the first start to the last end).
SPANS = {
    "procrastinate": """
        select count(*) filter (where type = 'started'),
               count(*) filter (where type = 'succeeded'),
               extract(epoch from max(at) filter (where type = 'succeeded')
                                  - min(at) filter (where type = 'started'))
        from procrastinate_events""",
    # awa 0.6 keeps claims and closures in rotating ledgers (rows or batches of receipts);
    # a ledger partition may be recycled during a long drain, hence the counts.
    "awa": """
        with claims as (
            select claimed_at as at, 1::bigint as n from awa.lease_claims
            union all select claimed_at, claimed_count from awa.lease_claim_batches),
        closures as (
            select closed_at as at, 1::bigint as n from awa.lease_claim_closures
            union all select closed_at, closed_count from awa.lease_claim_closure_batches)
        select (select sum(n) from claims), (select sum(n) from closures),
               extract(epoch from (select max(at) from closures) - (select min(at) from claims))""",
}


def db_seconds(peer: str, dsn: str, jobs: int) -> float | None:
    """First start → last end from the peer's own tables, if they still account for every
    job."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        started, ended, seconds = conn.execute(SPANS[peer].encode()).fetchone()  # type: ignore[misc]
    return float(seconds) if started == jobs and ended == jobs else None


def peer_drain(
    stack: LocalbaseProcess, root: Path, peer: str, processes: int, concurrency: int, jobs: int
) -> Drain:
    name = f"bench_{peer}"
    dsn = create_database(stack, name)
    try:
        migrate(peer, dsn)
        with peer_workers(peer, dsn, processes, concurrency, root):
            before, began = cpu_seconds(), time.monotonic()
            enqueue(peer, dsn, jobs)
            until_done(peer, dsn, jobs)
            after, wall = cpu_seconds(), time.monotonic() - began
        seconds = db_seconds(peer, dsn, jobs)
    finally:
        drop_database(stack, name)
    cores = Counter({k: max(0.0, after[k] - before.get(k, 0.0)) / wall for k in after})
    return Drain(peer, jobs / seconds if seconds else None, jobs / wall, cores)


def jobdock_drain(
    stack: LocalbaseProcess, root: Path, processes: int, concurrency: int, jobs: int
) -> Drain:
    result = drain_on(stack, root, jobs, processes, concurrency, stack.url)
    return Drain("jobdock", result.rate, result.wall_rate, result.cores)


def round_of_drains(
    systems: list[str], processes: int, concurrency: int, jobs: int
) -> dict[str, Drain]:
    """One run: every system drains in the same localbase, one after the other."""
    done: dict[str, Drain] = {}
    with localbase() as (stack, root):
        for system in systems:
            print(f"… {system} {processes}×{concurrency}", file=sys.stderr, flush=True)
            if system == "jobdock":
                done[system] = jobdock_drain(stack, root, processes, concurrency, jobs)
            else:
                done[system] = peer_drain(stack, root, system, processes, concurrency, jobs)
            d = done[system]
            print(f"  {d.db_rate} {d.wall_rate:.0f} jobs/s", file=sys.stderr, flush=True)
    return done


# -- abort latency ----------------------------------------------------------------------------
def procrastinate_abort(stack: LocalbaseProcess, root: Path, jobs: int) -> list[float]:
    """``jobs`` running ``sleep`` jobs over 4 processes, aborted one every 20 ms; per job, ms
    from the cancel call's return to the task seeing its cancellation."""
    name = "bench_procrastinate_abort"
    dsn = create_database(stack, name)
    try:
        migrate("procrastinate", dsn)
        app = _procrastinate_app(dsn)
        with peer_workers("procrastinate", dsn, 4, math.ceil(jobs / 4) + 1, root), app.open():
            ids = app.configure_task("sleep", queue=QUEUE, allow_unknown=True).batch_defer(
                *([{}] * jobs)
            )
            query = "select count(*) = %s from procrastinate_jobs where status = 'doing'"
            _until(dsn, query, jobs)
            returned: dict[int, float] = {}
            for job_id in ids:
                app.job_manager.cancel_job_by_id(job_id, abort=True)
                returned[job_id] = time.time()  # the workers log time.time() too
                time.sleep(PACE)
            stopped = _until_stopped(root, set(ids))
    finally:
        drop_database(stack, name)
    return [(stopped[i] - returned[i]) * 1000 for i in ids]


def _until(dsn: str, query: str, *params: Any, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while not conn.execute(query, params).fetchone()[0]:  # type: ignore[index]
            if time.monotonic() > deadline:
                raise TimeoutError(query)
            time.sleep(0.05)


def _until_stopped(root: Path, ids: set[int], timeout: float = 120) -> dict[int, float]:
    """The ``stopped`` lines of the peer workers' logs, once every job has one."""
    deadline = time.monotonic() + timeout
    while True:
        stopped: dict[int, float] = {}
        for log in root.glob("procrastinate-*.log"):
            for line in log.read_text(errors="replace").splitlines():
                if line.startswith("event=stopped "):
                    fields = dict(part.split("=", 1) for part in line.split()[1:])
                    stopped[int(fields["job_id"])] = float(fields["at"])
        if ids <= stopped.keys():
            return stopped
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(ids - stopped.keys())} jobs not stopped")
        time.sleep(0.05)


def abort_rows(jobs: int) -> list[tuple[object, ...]]:
    with localbase() as (stack, root):
        latencies = {
            "jobdock (Realtime, async handler)": run_mode(stack, root, MODES[0], jobs)["latencies"],
            "Procrastinate 3.10 (LISTEN/NOTIFY, async task)": procrastinate_abort(
                stack, root, jobs
            ),
        }
    rows = []
    for system, values in latencies.items():
        s = summary(values)
        rows.append(
            (
                system,
                s["n"],
                *(f"{s[k]:.1f}" for k in ("p50", "p90", "p99", "max")),
            )
        )
    return rows


# -- the tables -------------------------------------------------------------------------------
def throughput_rows(
    results: dict[tuple[int, int], list[dict[str, Drain]]], systems: list[str]
) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for (processes, concurrency), runs in results.items():
        for system in systems:
            drains = [r[system] for r in runs]
            db = [d.db_rate for d in drains if d.db_rate is not None]
            wall = [d.wall_rate for d in drains]
            cpu = [statistics.median(_cores(d, part) for d in drains) for part in CPU_PARTS]
            rows.append(
                (
                    f"{processes} × {concurrency}",
                    system,
                    _median_range(db) if len(db) == len(drains) else "—",
                    _median_range(wall),
                    _ratio(runs, system, "db_rate") if system != "jobdock" else "",
                    _ratio(runs, system, "wall_rate") if system != "jobdock" else "",
                    *(f"{c:.2f}" for c in cpu),
                )
            )
    return rows


CPU_PARTS = ("postgres", "localbase", "workers")


def _cores(drain: Drain, part: str) -> float:
    """Cores a part used over the drain; "workers" are jobdock's or the peer's."""
    if part == "workers":
        return drain.cores["workers"] + drain.cores["peer workers"]
    return drain.cores[part]


def _median_range(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}–{max(values):,.0f})"


def _ratio(runs: list[dict[str, Drain]], peer: str, measure: str) -> str:
    """jobdock ÷ peer, run by run (same localbase, same minute); the median and range."""
    ratios = []
    for r in runs:
        ours, theirs = getattr(r["jobdock"], measure), getattr(r[peer], measure)
        if ours is None or theirs is None:
            return "—"
        ratios.append(ours / theirs)
    return f"{statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=4000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--configs", default="1x10,4x10,4x50", help="processes x concurrency")
    parser.add_argument("--peers", default="procrastinate,awa", help="comma-separated")
    parser.add_argument("--abort-jobs", type=int, default=200)
    parser.add_argument("--no-abort", action="store_true")
    args = parser.parse_args()
    systems = ["jobdock", *args.peers.split(",")]
    configs = [tuple(int(n) for n in c.split("x")) for c in args.configs.split(",")]
    results: dict[tuple[int, int], list[dict[str, Drain]]] = {}
    for processes, concurrency in configs:
        results[(processes, concurrency)] = [
            round_of_drains(
                systems[n % len(systems) :] + systems[: n % len(systems)],
                processes,
                concurrency,
                args.jobs,
            )
            for n in range(args.runs)
        ]
    print(
        f"no-op throughput, {args.jobs:,} jobs per drain, {args.runs} runs; jobs/s, median"
        " (range); ratio = jobdock ÷ peer in the same run, median (range); CPU in cores over"
        " the drain (median)\n"
    )
    header = [
        "processes × concurrency",
        "system",
        "database: first start → last end",
        "wall: insert → all done",
        "ratio (database)",
        "ratio (wall)",
        *(f"CPU: {part}" for part in CPU_PARTS),
    ]
    print(table(header, throughput_rows(results, systems)))
    if not args.no_abort:
        print(
            f"\nabort: {args.abort_jobs} running async jobs over 4 processes, one cancel every"
            " 20 ms; ms from the cancel call's return to the handler's stop\n"
        )
        header = ["system", "jobs", "p50", "p90", "p99", "max"]
        print(table(header, abort_rows(args.abort_jobs)))


if __name__ == "__main__":
    run(main)
