"""Cancel → stopped latency, side by side, over 4 worker processes.

For each mode, N running jobs are cancelled one after another; the latency of a job is its
worker's ``stopped_at`` minus the moment the cancel call returned to the caller (negative:
the worker had stopped before the caller even got its answer). Also measured: database reads
per second spent on cancellation checks, and a bulk ``cancel_all_processing`` over 1,000
running jobs. Prints markdown tables and writes ``docs/cancel_latency.png``.

``--signals`` and ``--profile`` choose how stops reach the workers (``auto``: Broadcast when the
project can send it) and localbase's Realtime profile (``hosted``: ``postgres_changes`` from a
poller with hosted's cadence, capped at ``--max-events-per-second``). ``--matrix`` instead
measures both signal modes under both profiles side by side, each in a localbase of its own:
cancel → stopped of an async handler, what one enqueue statement of ``--enqueue`` jobs costs in
Realtime messages, and (hosted profile) what a bulk cancel costs and how fast it stops. Messages
are counted in ``realtime.messages`` (what the triggers sent) and in ``/realtime/v1/metrics``
(what reached subscribers and counts against the cap, and what was dropped).

With ``--rtt-ms N`` the workers and the caller reach localbase through a proxy that delays each
direction by N/2 ms (``bench.common.reach``): the cancel call itself then takes a round trip,
and so does the Realtime event's way to the worker (half of one, after the commit).

    .venv/bin/python bench/cancel_latency.py [--jobs 200] [--bulk 1000] [--only TEXT] [--no-plot]
        [--rtt-ms 0] [--bulk-rounds 4] [--signals auto] [--profile local]
        [--max-events-per-second 500] [--matrix [--enqueue 10000]]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
import uuid
from collections import Counter
from dataclasses import astuple, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from common import connect, localbase, reach, realtime_settled, run, sql, summary, table, workers
from psycopg.types.json import Jsonb

from devstack.localbase import LocalbaseProcess, free_port
from jobdock import actions

DOCS = Path(__file__).resolve().parent.parent / "docs"
LONG = 3600
PACE = 0.02  # one cancel every 20 ms: 200 cancels in 4 s, as fast as people click
# Realtime rows run jobs reporting progress 4 times a second (their UPDATEs load the same
# Realtime path the cancels take); polling rows run jobs that report nothing, so a stop is
# noticed by the poll alone and not by a fenced progress write.
QUIET = {"seconds": LONG, "step": LONG}
STEADY = 3.0  # seconds of steady state in which database reads are counted
SIGNALS = ("broadcast", "postgres_changes")
PROFILES = ("local", "hosted")
UNCLAIMED = "bench.unclaimed"  # enqueued while the workers take only demo.sleep: never claimed
QUIET_SECONDS = 1.5  # Realtime is quiet when its counters stay put this long (hosted idle: 0.5 s)


@dataclass(frozen=True)
class Mode:
    name: str
    job_type: str
    data: dict[str, Any]
    args: tuple[str, ...] = ()
    dead_realtime: bool = False
    jobs: int | None = None
    pace: float = PACE
    aim: str = ""


MODES = [
    Mode(
        "realtime, async handler",
        "demo.sleep",
        {"seconds": LONG, "step": 0.25},
        aim="p50 ≤ 1 ms, p99 ≤ 5 ms",
    ),
    Mode(
        "realtime, async handler, cancels back to back",
        "demo.sleep",
        {"seconds": LONG, "step": 0.25},
        pace=0,
        aim="(stress)",
    ),
    Mode(
        "realtime, blocking handler checking every 10 ms",
        "demo.blocking",
        {"seconds": LONG, "check_every": 0.01},
        aim="p50 ≤ 6 ms",
    ),
    Mode(
        "stubborn handler (isolated process, grace 1 s)",
        "demo.stubborn",
        {"seconds": LONG},
        ("--kill-grace", "1"),
        jobs=20,
        aim="≤ grace + 100 ms",
    ),
    Mode(
        "realtime down (fallback poll 0.5 s)",
        "demo.sleep",
        QUIET,
        ("--fallback-poll", "0.5"),
        dead_realtime=True,
        aim="max ≤ 1 s",
    ),
    Mode(
        "--no-realtime, 1 s poll (the seed's proposal)",
        "demo.sleep",
        QUIET,
        ("--no-realtime", "--fallback-poll", "1"),
        aim="(comparison)",
    ),
]


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


@dataclass(frozen=True)
class Traffic:
    """Realtime counters at one moment; subtract two for what happened in between."""

    events: int  # /realtime/v1/metrics: every event once per receiver, sends of broadcasts too
    dropped_changes: int
    dropped_broadcasts: int
    messages: int  # rows in realtime.messages (Broadcast from Database sends)
    stop_messages: int  # … on the topics jobdock:worker:<id>
    work_messages: int  # … on jobdock:work
    signals: int  # rows in job_signals (one per enqueue statement: postgres_changes' wake-up)

    def __sub__(self, other: Traffic) -> Traffic:
        return Traffic(*(a - b for a, b in zip(astuple(self), astuple(other), strict=True)))

    @property
    def delivered(self) -> int:
        """Events that reached a subscriber: the metrics count a database broadcast once when
        sent and once per channel it reaches, a change once per subscriber it reaches."""
        return self.events - self.messages

    @property
    def dropped(self) -> int:
        return self.dropped_changes + self.dropped_broadcasts


def traffic(stack: LocalbaseProcess) -> Traffic:
    status = httpx.get(f"{stack.url}/realtime/v1/metrics", timeout=10).json()
    counts = sql(
        stack,
        "select count(*), count(*) filter (where topic like 'jobdock:worker:%'),"
        " count(*) filter (where topic = 'jobdock:work'),"
        " (select count(*) from public.job_signals) from realtime.messages",
    )[0]
    dropped = status["dropped"]
    return Traffic(
        status["events"], dropped["postgres_changes"], dropped["broadcast"], *map(int, counts)
    )


def realtime_quiet(stack: LocalbaseProcess, timeout: float = 120.0) -> Traffic:
    """Wait until Realtime has delivered (or dropped) what it will: its counters stay put for
    ``QUIET_SECONDS`` (the hosted poller's idle wait is 0.5 s); the counters then."""
    deadline = time.monotonic() + timeout
    last, since = traffic(stack), time.monotonic()
    while time.monotonic() - since < QUIET_SECONDS:
        if time.monotonic() > deadline:
            raise TimeoutError("Realtime never went quiet")
        time.sleep(0.1)
        now = traffic(stack)
        if now != last:
            last, since = now, time.monotonic()
    return last


def checks_so_far(stack: LocalbaseProcess) -> int:
    rows = sql(
        stack,
        "select coalesce(sum(calls), 0) from pg_stat_user_functions where funcname = 'job_states'",
    )
    return int(rows[0][0])


def run_mode(
    stack: LocalbaseProcess, root: Path, mode: Mode, jobs: int, url: str | None = None
) -> dict[str, Any]:
    """``url``: where the workers and the caller reach localbase (default: directly)."""
    print(f"… {mode.name}: {jobs} jobs", file=sys.stderr, flush=True)
    client = connect(url or stack.url, stack.service_key)
    concurrency = math.ceil(jobs / 4) + 1
    realtime_url = f"http://127.0.0.1:{free_port()}" if mode.dead_realtime else None
    args = ("--concurrency", str(concurrency), "--lease", "30", *mode.args)
    prefix = mode.job_type.replace(".", "-")
    at_start = traffic(stack)
    with workers(
        stack,
        root,
        4,
        *args,
        realtime_url=realtime_url,
        prefix=prefix,
        dead_realtime=mode.dead_realtime,
        url=url,
    ):
        ids = [actions.enqueue(client, mode.job_type, mode.data).id for _ in range(jobs)]
        wait_until(lambda: reporting(stack) == jobs, 300, f"{jobs} jobs running")
        before, began = checks_so_far(stack), time.monotonic()
        time.sleep(STEADY)  # steady state: how many checks do the running workers make?
        idle_rate = (checks_so_far(stack) - before) / (time.monotonic() - began)
        returned: dict[uuid.UUID, datetime] = {}
        for job_id in ids:
            actions.request_cancel(client, job_id)
            returned[job_id] = datetime.now(UTC)
            if mode.pace:
                time.sleep(mode.pace)
        wait_until(
            lambda: (
                sql(
                    stack,
                    "select count(*) from public.job_events where event ="
                    " 'stopped' and job_id = any(%s)",
                    ids,
                )[0][0]
                == jobs
            ),
            120,
            "all stopped",
        )
        rows = sql(
            stack,
            "select job_id, (detail->>'stopped_at')::timestamptz, detail->>'via'"
            " from public.job_events where event = 'stopped'"
            " and job_id = any(%s)",
            ids,
        )
        counted = traffic(stack) - at_start
    stops = {job_id: stopped_at for job_id, stopped_at, _ in rows}
    via = Counter(v for _, _, v in rows)
    latencies = [(stops[i] - returned[i]).total_seconds() * 1000 for i in ids]
    print(f"  {mode.name}: {summary(latencies)} via {dict(via)}", file=sys.stderr, flush=True)
    sql(stack, "delete from public.background_jobs")
    return {
        "mode": mode,
        "latencies": latencies,
        "idle_checks": idle_rate,
        "via": via,
        "traffic": counted,
    }


@dataclass(frozen=True)
class BulkRound:
    settled: bool  # Realtime had delivered the jobs' start-up changes before the cancel
    call: float  # seconds the cancel_all_processing call took
    offsets: list[float]  # per job: stopped_at − the moment the call began, ms


def bulk(
    stack: LocalbaseProcess,
    root: Path,
    jobs: int,
    rounds: int,
    url: str | None = None,
    extra: tuple[str, ...] = (),
) -> list[BulkRound]:
    """``rounds`` bulk cancels of ``jobs`` running jobs. The first is issued as soon as every
    job has reported progress, while Realtime may still be delivering their claims and first
    reports; the others once Realtime has caught up (``realtime_settled``)."""
    client = connect(url or stack.url, stack.service_key)
    done: list[BulkRound] = []
    if not rounds:
        return done
    args = ("--concurrency", str(jobs // 4 + 1), *extra)
    with workers(stack, root, 4, *args, prefix="bulk", url=url):
        for n in range(rounds):
            sql(
                stack,
                "insert into public.background_jobs (job_type, input_data)"
                " select 'demo.sleep', %s from generate_series(1, %s)",
                Jsonb({"seconds": LONG, "step": LONG}),
                jobs,
            )
            wait_until(lambda: reporting(stack) == jobs, 300, "bulk jobs running")
            settled = n > 0
            if settled:
                realtime_settled(stack)
            began = datetime.now(UTC)
            result = client.rpc("cancel_all_processing", {}).execute().data
            returned = datetime.now(UTC)
            ids = [uuid.UUID(str(i)) for i in result]
            assert len(ids) == jobs
            wait_until(lambda ids=ids: stopped_count(stack, ids) == jobs, 120, "bulk stopped")
            offsets = [
                (at - began).total_seconds() * 1000
                for (at,) in sql(
                    stack,
                    "select (detail->>'stopped_at')::timestamptz from public.job_events"
                    " where event = 'stopped' and job_id = any(%s)",
                    ids,
                )
            ]
            print(
                f"  bulk round {n} ({'settled' if settled else 'right after start-up'}):"
                f" stopped after the call began (ms): {summary(offsets)}",
                file=sys.stderr,
                flush=True,
            )
            done.append(BulkRound(settled, (returned - began).total_seconds(), offsets))
            sql(stack, "delete from public.background_jobs")
    return done


def reporting(stack: LocalbaseProcess) -> int:
    """Jobs running with their first progress written (their handlers are under way)."""
    query = (
        "select count(*) from public.background_jobs"
        " where status = 'processing' and progress ? 'percent'"
    )
    return int(sql(stack, query)[0][0])


def stopped_count(stack: LocalbaseProcess, ids: list[uuid.UUID]) -> int:
    query = "select count(*) from public.job_events where event = 'stopped' and job_id = any(%s)"
    return int(sql(stack, query, ids)[0][0])


def bulk_table(rounds: list[BulkRound], jobs: int) -> str:
    rows: list[tuple[object, ...]] = []
    for settled in (False, True):
        chosen = [r for r in rounds if r.settled is settled]
        if not chosen:
            continue
        lasts = [max(r.offsets) for r in chosen]
        firsts = [min(r.offsets) for r in chosen]
        medians = [summary(r.offsets)["p50"] for r in chosen]
        calls = [r.call * 1000 for r in chosen]
        rows.append(
            (
                "once Realtime has caught up" if settled else "right after the jobs started",
                len(chosen),
                f"{statistics.median(calls):.0f}",
                f"{statistics.median(firsts):.0f}",
                f"{statistics.median(medians):.0f}",
                f"{statistics.median(lasts):,.0f}",
                f"{max(lasts):,.0f}",
                "all stopped ≤ 1,000 ms",
            )
        )
    header = [
        f"cancel_all_processing over {jobs:,} running jobs",
        "rounds",
        "call ms",
        "first stop ms",
        "median stop ms",
        "last stop ms (median)",
        "last stop ms (worst)",
        "aim",
    ]
    return table(header, rows)


def plot(results: list[dict[str, Any]]) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    figure, axis = plt.subplots(figsize=(9, 4.5))
    labels = [r["mode"].name.replace(" (", "\n(") for r in results]
    axis.boxplot(
        [[max(v, 0.01) for v in r["latencies"]] for r in results],
        orientation="horizontal",
        tick_labels=labels,
        showfliers=True,
    )
    axis.set_xscale("log")
    axis.set_xlabel("cancel call returned → handler stopped (ms, log scale)")
    axis.set_title("jobdock: how fast a cancelled job really stops (4 workers)")
    figure.tight_layout()
    target = DOCS / "cancel_latency.png"
    figure.savefig(target, dpi=110)
    return target


# Both signal modes under both Realtime profiles (--matrix) ------------------------------------


@dataclass(frozen=True)
class Setting:
    """How stops reach the workers, and localbase's Realtime profile."""

    signals: str
    profile: str

    @property
    def name(self) -> str:
        return f"{self.signals}, {self.profile} profile"


def profile_args(profile: str, events_per_second: int) -> tuple[str, ...]:
    if profile == "local":
        return ()
    return ("--realtime-profile", profile, "--max-events-per-second", str(events_per_second))


def signal_args(signals: str) -> tuple[str, ...]:
    return () if signals == "auto" else ("--signals", signals)


def latency_mode(signals: str) -> Mode:
    """The async-handler row of ``MODES``, with ``signals``."""
    return Mode(
        f"{signals}, async handler",
        "demo.sleep",
        {"seconds": LONG, "step": 0.25},
        signal_args(signals),
    )


@dataclass(frozen=True)
class EnqueueCost:
    setting: Setting
    jobs: int
    listening: int
    traffic: Traffic


def enqueue_cost(
    stack: LocalbaseProcess, root: Path, setting: Setting, jobs: int, url: str | None
) -> EnqueueCost:
    """One INSERT of ``jobs`` jobs while 4 workers listen; they take only demo.sleep, so none
    claims the jobs (claims would add traffic of their own)."""
    print(f"… {setting.name}: enqueue {jobs:,} jobs", file=sys.stderr, flush=True)
    args = ("--job-types", "demo.sleep", *signal_args(setting.signals))
    with workers(stack, root, 4, *args, prefix=f"enqueue-{setting.signals}", url=url):
        before = realtime_quiet(stack)
        with psycopg.connect(stack.db_dsn, autocommit=True) as conn:
            conn.execute("select set_config('jobdock.force', 'on', false)")  # no worker takes it
            conn.execute(
                "insert into public.background_jobs (job_type, input_data)"
                " select %s, '{}'::jsonb from generate_series(1, %s)",
                (UNCLAIMED, jobs),
            )
        counted = realtime_quiet(stack) - before
    sql(stack, "delete from public.background_jobs")
    return EnqueueCost(setting, jobs, 4, counted)


@dataclass(frozen=True)
class BulkCost:
    setting: Setting
    jobs: int
    call_ms: float
    offsets: list[float]  # per job: stopped_at − the moment the call began, ms
    via: Counter[str]
    traffic: Traffic  # from just before the call until Realtime was quiet after the last stop
    average_before: float  # the capped rate's rolling average just before the call


def bulk_cost(
    stack: LocalbaseProcess, root: Path, setting: Setting, jobs: int, url: str | None
) -> BulkCost:
    """``cancel_all_processing`` over ``jobs`` running jobs, once Realtime is quiet."""
    print(f"… {setting.name}: bulk cancel of {jobs:,} jobs", file=sys.stderr, flush=True)
    client = connect(url or stack.url, stack.service_key)
    args = ("--concurrency", str(jobs // 4 + 1), *signal_args(setting.signals))
    with workers(stack, root, 4, *args, prefix=f"bulk-{setting.signals}", url=url):
        sql(
            stack,
            "insert into public.background_jobs (job_type, input_data)"
            " select 'demo.sleep', %s from generate_series(1, %s)",
            Jsonb({"seconds": LONG, "step": LONG}),
            jobs,
        )
        wait_until(lambda: reporting(stack) == jobs, 300, "bulk jobs running")
        before = realtime_quiet(stack)
        average = float(httpx.get(f"{stack.url}/realtime/v1/metrics").json()["average_per_second"])
        began = datetime.now(UTC)
        cancelled = client.rpc("cancel_all_processing", {}).execute().data
        call_ms = (datetime.now(UTC) - began).total_seconds() * 1000
        assert isinstance(cancelled, list)
        assert len(cancelled) == jobs
        ids = [uuid.UUID(str(i)) for i in cancelled]
        wait_until(lambda: stopped_count(stack, ids) == jobs, 300, "bulk stopped")
        counted = realtime_quiet(stack) - before
        rows = sql(
            stack,
            "select (detail->>'stopped_at')::timestamptz, detail->>'via' from public.job_events"
            " where event = 'stopped' and job_id = any(%s)",
            ids,
        )
    sql(stack, "delete from public.background_jobs")
    offsets = [(at - began).total_seconds() * 1000 for at, _ in rows]
    print(f"  {setting.name}: bulk stops (ms) {summary(offsets)}", file=sys.stderr, flush=True)
    return BulkCost(setting, jobs, call_ms, offsets, Counter(v for _, v in rows), counted, average)


@dataclass
class Cell:
    """What --matrix measured for one setting."""

    setting: Setting
    latency: dict[str, Any]
    enqueue: EnqueueCost
    bulk: BulkCost | None


def measure_setting(setting: Setting, args: argparse.Namespace) -> Cell:
    extra = profile_args(setting.profile, args.max_events_per_second)
    with localbase(*extra) as (stack, root), reach(stack, args.rtt_ms) as url:
        sql(stack, "alter system set track_functions = 'all'")
        sql(stack, "select pg_reload_conf()")
        enqueue = enqueue_cost(stack, root, setting, args.enqueue, url)
        latency = run_mode(stack, root, latency_mode(setting.signals), args.jobs, url)
        hosted = setting.profile == "hosted"
        bulk = bulk_cost(stack, root, setting, args.bulk, url) if hosted and args.bulk else None
    return Cell(setting, latency, enqueue, bulk)


LATENCY_AIMS = {
    ("broadcast", "hosted"): "≤ 5 ms / ≤ 25 ms",
    ("broadcast", "local"): "p50 ≤ 1 ms, p99 ≤ 5 ms",
}


def via_text(via: Counter[str]) -> str:
    return ", ".join(f"{name} {count}" for name, count in via.most_common())


def latency_rows(cells: list[Cell]) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for cell in cells:
        s = summary(cell.latency["latencies"])
        counted: Traffic = cell.latency["traffic"]
        rows.append(
            (
                cell.setting.signals,
                cell.setting.profile,
                s["n"],
                f"{s['p50']:.1f}",
                f"{s['p90']:.1f}",
                f"{s['p99']:.1f}",
                f"{s['max']:.1f}",
                f"{cell.latency['idle_checks']:.1f}",
                via_text(cell.latency["via"]),
                f"{counted.delivered:,}",
                f"{counted.dropped:,}",
                LATENCY_AIMS.get((cell.setting.signals, cell.setting.profile), "reported"),
            )
        )
    return rows


def bulk_rows(cells: list[Cell]) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for cell in cells:
        if cell.bulk is None:
            continue
        b, t = cell.bulk, cell.bulk.traffic
        s = summary(b.offsets)
        rows.append(
            (
                b.setting.signals,
                b.setting.profile,
                f"{b.jobs:,}",
                t.stop_messages,
                f"{t.delivered:,}",
                f"{t.events:,}",
                f"{t.dropped_changes:,} / {t.dropped_broadcasts:,}",
                f"{b.average_before:.0f}",
                f"{b.call_ms:.0f}",
                f"{s['min']:.0f}",
                f"{s['p50']:.0f}",
                f"{s['max']:,.0f}",
                via_text(b.via),
                "≤ 8 messages, 0 dropped, ≤ 1 s"
                if b.setting.signals == "broadcast"
                else "reported",
            )
        )
    return rows


def enqueue_rows(cells: list[Cell]) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for cell in cells:
        e, t = cell.enqueue, cell.enqueue.traffic
        rows.append(
            (
                e.setting.signals,
                e.setting.profile,
                f"{e.jobs:,}",
                t.work_messages,
                t.signals,
                f"{t.delivered:,}",
                f"{t.events:,}",
                f"{t.dropped:,}",
                f"{t.delivered / e.listening:g}",
                "1 per listening worker",
            )
        )
    return rows


def matrix(args: argparse.Namespace) -> None:
    settings = [Setting(signals, profile) for profile in PROFILES for signals in SIGNALS]
    cells = [measure_setting(setting, args) for setting in settings]
    cap = f"hosted: --max-events-per-second {args.max_events_per_second}"
    distance = f", {args.rtt_ms:g} ms round trip to localbase" if args.rtt_ms else ""
    print(
        f"cancel call returned → async handler stopped, ms (4 worker processes; {cap}{distance})\n"
    )
    header = ["signals", "profile", "jobs", "p50", "p90", "p99", "max", "check reads/s"]
    header += ["noticed via", "Realtime delivered", "dropped", "aim"]
    print(table(header, latency_rows(cells)))
    if any(cell.bulk for cell in cells):
        print("\ncancel_all_processing: Realtime traffic and stop offsets from the call, ms\n")
        header = ["signals", "profile", "jobs", "stop messages sent", "delivered"]
        header += ["counted against the cap", "dropped (changes / broadcasts)"]
        header += ["rate before (/s)", "call", "first stop", "median stop", "last stop"]
        header += ["noticed via", "aim"]
        print(table(header, bulk_rows(cells)))
    print(
        f"\nRealtime messages per enqueue statement ({args.enqueue:,} jobs, 4 workers listening)\n"
    )
    header = ["signals", "profile", "jobs", "jobdock:work messages", "job_signals rows"]
    header += ["delivered", "counted against the cap", "dropped", "delivered per worker", "aim"]
    print(table(header, enqueue_rows(cells)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--bulk", type=int, default=1000)
    parser.add_argument("--bulk-rounds", type=int, default=4, help="the first right after start-up")
    parser.add_argument("--only", default="", help="run only the modes whose name has this")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--bulk-only", action="store_true", help="only the bulk cancel")
    parser.add_argument("--rtt-ms", type=float, default=0, help="round trip to localbase")
    parser.add_argument("--signals", choices=("auto", *SIGNALS), default="auto")
    parser.add_argument("--profile", choices=PROFILES, default="local", help="Realtime profile")
    parser.add_argument("--max-events-per-second", type=int, default=500, help="hosted's cap")
    parser.add_argument(
        "--matrix", action="store_true", help="both signal modes under both profiles"
    )
    parser.add_argument("--enqueue", type=int, default=10_000, help="jobs per enqueue (--matrix)")
    args = parser.parse_args()
    if args.matrix:
        matrix(args)
        return
    extra = signal_args(args.signals)
    modes = [] if args.bulk_only else [m for m in MODES if args.only in m.name]
    modes = [replace(m, args=(*m.args, *extra)) for m in modes]
    stack_args = profile_args(args.profile, args.max_events_per_second)
    with localbase(*stack_args) as (stack, root), reach(stack, args.rtt_ms) as url:
        sql(stack, "alter system set track_functions = 'all'")
        sql(stack, "select pg_reload_conf()")
        results = [
            run_mode(stack, root, m, min(m.jobs or args.jobs, args.jobs), url) for m in modes
        ]
        rounds = bulk(stack, root, args.bulk, args.bulk_rounds, url, extra)
    rows: list[tuple[object, ...]] = []
    for result in results:
        s = summary(result["latencies"])
        via = ", ".join(f"{name} {count}" for name, count in result["via"].most_common())
        rows.append(
            (
                result["mode"].name,
                s["n"],
                f"{s['p50']:.1f}",
                f"{s['p90']:.1f}",
                f"{s['p99']:.1f}",
                f"{s['max']:.1f}",
                f"{result['idle_checks']:.1f}",
                via,
                result["mode"].aim,
            )
        )
    distance = f", {args.rtt_ms:g} ms round trip to localbase" if args.rtt_ms else ""
    distance += f", --signals {args.signals}" if args.signals != "auto" else ""
    distance += f", {args.profile} Realtime profile" if args.profile != "local" else ""
    print(f"cancel call returned → handler stopped, ms (4 worker processes{distance})\n")
    header = ["mode", "jobs", "p50", "p90", "p99", "max", "check reads/s", "noticed via", "aim"]
    print(table(header, rows))
    if rounds:
        print("\nstop offsets from the moment the call began, ms\n")
        print(bulk_table(rounds, args.bulk))
    target = None if args.no_plot or not results else plot(results)
    if target:
        print(f"\nplot: {target.relative_to(DOCS.parent)}")


if __name__ == "__main__":
    run(main)
