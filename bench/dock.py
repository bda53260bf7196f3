"""Benchmark the Processing Dock with 5,000 jobs in the table, in headless Debian chromium.

- first render: from the start of navigation (the page's ``performance`` clock) until the first
  job row is drawn, and until every row of the page is: a row counts once its text and buttons
  are on screen, not while Streamlit still shows a placeholder for any of its parts (cold: the
  first tab of a fresh server in a fresh browser, which also fills the live mirror; warm: later
  tabs);
- change visible: a progress write committed in the database until its text is on the page
  (realtime → mirror → the page's next run → browser), timed by a MutationObserver;
- idle CPU of the Streamlit server process with 0 and 3 tabs open and nothing changing (with no
  tab over a whole minute, so that it includes the mirror's safety resync once).

Every run starts a fresh dock and browser on the same seeded localbase; the table pools the
runs. Prints it and writes it under "## Dock" in docs/benchmarks.md.

    .venv/bin/python bench/dock.py [--runs 3] [--jobs 5000] [--changes 30] [--idle-seconds 20]
                                   [--idle-none-seconds 60]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from common import run as run_benchmark
from playwright.sync_api import BrowserContext, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from psycopg.types.json import Jsonb

from devstack.browser import CHROMIUM, chromium
from devstack.dock import DockProcess
from devstack.localbase import LocalbaseProcess, free_port
from dock.config import DockOptions

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "benchmarks.md"
NOTES = """\
How to read it:

- *First render* is measured in the page, from the start of navigation until the rows are
  drawn: a row counts once its text and buttons are on screen, not while Streamlit still shows
  a grey placeholder for one of its parts. Streamlit's frontend keeps those placeholders (for
  every lazily loaded element: buttons, HTML…) until it has worked through all the messages of
  the run, so the first row is complete about when the whole page is, and a page costs about
  its number of elements. A row is four or five: its bordered container, one `st.html` fragment
  with the text, badge and progress bar, its one or two buttons (without tooltips: the legend
  above the rows says what they do), and Details, whose content is only sent once opened.
- The *cold tab* also pays for the Python imports of the server's first run (about 0.6 s) and
  the mirror's first REST sync of all rows (1,000 per request; the header is drawn before it),
  in a browser whose cache is empty.
- *Change visible*: realtime → mirror (a dict under a lock) → the dock's push socket tells
  the page (at most every 0.25 s per page, `dock/push.py`) → the page's watcher fragment runs
  and redraws the page. The delay is that hop plus one redraw; no timer is involved.
- *Idle CPU*: with push, an idle page costs nothing: its watcher runs only when a change is
  pushed, and every 30 s so relative times move on. Without push (`streamlit run
  dock_app.py`) every page asks twice a second, and each ask is a Streamlit fragment run of
  about 5 ms of the server's CPU (3 tabs: 4.5–5.5 %). With no tab, it is mostly the mirror's
  safety resync of all rows once a minute (about 0.25 s of CPU). Streamlit's forced garbage
  collection after every run is off (`.streamlit/config.toml`): with it each run cost about
  40 ms of CPU."""
HEADING = "## Dock"

# Installed in every tab before Streamlit's own scripts: records (``performance.now()``, ms
# since the start of navigation) when the first job row and when every expected row of the
# page is drawn, counts the page's elements then, and stops watching.
RENDER_OBSERVER = """
window.__render = {};
const rendered = () => {
  const rows = document.querySelectorAll("[class*='st-key-job-']");
  const drawn = (el) => el.textContent.trim() !== "" && !el.querySelector(PLACEHOLDER);
  if (!("first" in window.__render) && rows.length > 0 && drawn(rows[0])) {
    window.__render.first = performance.now();
  }
  if (rows.length >= EXPECTED_ROWS && !document.querySelector(PLACEHOLDER)
      && [...rows].every(drawn)) {
    window.__render.all = performance.now();
    window.__render.nodes = document.getElementsByTagName("*").length;
    window.__render.elements = document.querySelectorAll("[data-testid]").length;
    observer.disconnect();
  }
};
const PLACEHOLDER = "[data-testid='stSkeleton'], [data-testid='stSkeletonElement']";
const EXPECTED_ROWS = %(rows)d;
const observer = new MutationObserver(rendered);
observer.observe(document, {subtree: true, childList: true, characterData: true});
"""

SEED = """
insert into public.background_jobs (job_type, input_data)
select case when g %% 3 = 0 then 'process_document' else 'demo.sleep' end,
       jsonb_build_object('bucket', 'documents', 'path', 'service/book-' || g || '.epub',
                          'filename', 'book-' || g || '.epub', 'seconds', 1)
  from generate_series(1, %(total)s) g;
select count(*) from public.claim_jobs('bench-seed', null, %(claimed)s);
update public.background_jobs
   set status = 'completed', output_data = '{"chunks": 42}'::jsonb,
       progress = '{"percent": 100, "stage": "done"}'::jsonb
 where id in (select id from public.background_jobs
               where status = 'processing' order by id limit %(completed)s);
update public.background_jobs set status = 'failed', last_error = 'demo failure'
 where id in (select id from public.background_jobs
               where status = 'processing' order by id limit %(failed)s);
"""

OBSERVER = """
() => {
  window.__seen = {};
  window.__watch = [];
  const check = () => {
    const text = document.body.innerText;
    for (const token of window.__watch) {
      if (!(token in window.__seen) && text.includes(token)) window.__seen[token] = Date.now();
    }
  };
  new MutationObserver(check).observe(document.body,
    {subtree: true, childList: true, characterData: true});
}
"""


def seed(stack: LocalbaseProcess, total: int) -> dict[str, int]:
    """``total`` jobs: a few running and pending, some failed, the rest completed."""
    processing, pending, failed = 10, 40, 50
    completed = total - processing - pending - failed
    claimed = processing + failed + completed
    with psycopg.connect(stack.db_dsn, autocommit=True) as conn:
        params = {"total": total, "claimed": claimed, "completed": completed, "failed": failed}
        for statement in SEED.split(";\n"):
            if statement.strip():
                conn.execute(statement, params)
    return {"processing": processing, "pending": pending, "failed": failed, "completed": completed}


def shown_rows(counts: dict[str, int]) -> int:
    return sum(min(count, DockOptions().rows_per_group) for count in counts.values())


@dataclass(frozen=True)
class Render:
    first: float  # seconds from the start of navigation until the first row is drawn
    all: float  # … until every row of the page is
    nodes: int  # DOM elements of the page then
    elements: int  # of which Streamlit's (``data-testid``)


def first_render(context: BrowserContext, url: str, counts: dict[str, int]) -> tuple[Page, Render]:
    """A new tab, timed by ``RENDER_OBSERVER`` (installed in ``context``)."""
    page = context.new_page()
    page.goto(url)
    page.get_by_text(f"Completed ({counts['completed']:,})").wait_for(timeout=60_000)
    page.wait_for_function("() => window.__render.all", timeout=60_000)
    seen = page.evaluate("() => window.__render")
    render = Render(seen["first"] / 1000, seen["all"] / 1000, seen["nodes"], seen["elements"])
    return page, render


BASELINE_APP = 'import streamlit as st\nst.title("Baseline")\nst.write("hello")\n'
# … timed like the dock's rows: from the start of navigation until "hello" is drawn.
BASELINE_OBSERVER = """
const observer = new MutationObserver(() => {
  if (document.body && document.body.innerText.includes("hello")) {
    window.__hello = performance.now();
    observer.disconnect();
  }
});
observer.observe(document, {subtree: true, childList: true, characterData: true});
"""


def baseline_render(context: BrowserContext, root: Path, tabs: int) -> tuple[float, float]:
    """First render of a one-line Streamlit app, this machine's floor: its first tab (a new
    server, a browser with an empty cache) and the median of the next ``tabs``."""
    app = root / "baseline.py"
    app.write_text(BASELINE_APP)
    port = free_port()
    argv = [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(port)]
    server = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        health = f"http://127.0.0.1:{port}/_stcore/health"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(health, timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        context.add_init_script(BASELINE_OBSERVER)
        seconds = []
        for _ in range(tabs + 1):
            page = context.new_page()
            page.goto(f"http://127.0.0.1:{port}", timeout=60_000)
            hello = page.wait_for_function("() => window.__hello").json_value()
            seconds.append(float(hello) / 1000)
            page.close()
        return seconds[0], float(statistics.median(seconds[1:]))
    finally:
        server.terminate()
        server.wait(30)


def change_latencies(page: Page, stack: LocalbaseProcess, changes: int) -> tuple[list[float], int]:
    """Progress writes on one running job; each one timed until its text shows. Returns the
    latencies and how many writes never showed before the next one (lost realtime events)."""
    page.evaluate(OBSERVER)
    with psycopg.connect(stack.db_dsn, autocommit=True) as conn:
        row = conn.execute(
            "select id, lease_id from public.background_jobs where status = 'processing' "
            "order by started_at desc, id asc limit 1"  # the dock's first running row
        ).fetchone()
        assert row is not None
        job_id, lease = row
        latencies, missed = [], 0
        for n in range(changes):
            token = f"bench tick {n:04d}"
            page.evaluate("token => window.__watch.push(token)", token)
            time.sleep(random.uniform(0.2, 1.2))  # sample every phase of the watcher's tick
            progress = Jsonb({"percent": n % 100, "stage": token})
            conn.execute("select public.report_progress(%s, %s, %s)", (job_id, lease, progress))
            committed = time.time()
            try:
                handle = page.wait_for_function(
                    "token => window.__seen[token]", arg=token, timeout=5_000
                )
            except PlaywrightTimeout:
                missed += 1
                continue
            latencies.append(handle.json_value() / 1000 - committed)
    return latencies, missed


def cpu_percent(pid: int, seconds: float) -> float:
    """CPU time of ``pid`` over ``seconds`` of wall time, as a percentage of one core."""

    def ticks() -> int:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime

    hz = os.sysconf("SC_CLK_TCK")
    start, began = ticks(), time.monotonic()
    time.sleep(seconds)
    return 100 * (ticks() - start) / hz / (time.monotonic() - began)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Results:
    """What every run measured, pooled."""

    cold: list[Render] = field(default_factory=list)
    warm: list[Render] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    missed: int = 0
    idle_none: list[float] = field(default_factory=list)
    idle_three: list[float] = field(default_factory=list)
    baseline: tuple[float, float] = (0.0, 0.0)


def measure_dock(
    args: argparse.Namespace, stack: LocalbaseProcess, root: Path, counts: dict[str, int]
) -> Results:
    """One run: a fresh dock server and a fresh browser (empty cache) on the seeded stack."""
    done = Results()
    dock = DockProcess(stack, root / "dock.log").start()
    try:
        with chromium(root / "profile") as context:
            context.add_init_script(RENDER_OBSERVER % {"rows": shown_rows(counts)})
            page, cold = first_render(context, dock.url, counts)
            done.cold.append(cold)
            for _ in range(args.tabs):
                tab, warm = first_render(context, dock.url, counts)
                done.warm.append(warm)
                tab.close()
            done.latencies, done.missed = change_latencies(page, stack, args.changes)
            page.close()
            done.idle_none.append(cpu_percent(dock.pid, args.idle_none_seconds))
            tabs = [first_render(context, dock.url, counts)[0] for _ in range(3)]
            time.sleep(2)  # let the three first renders finish
            done.idle_three.append(cpu_percent(dock.pid, args.idle_seconds))
            for tab in tabs:
                tab.close()
    finally:
        dock.stop()
    return done


def run(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    pooled = Results()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        stack = LocalbaseProcess(root / "data")
        stack.start(timeout=300)
        try:
            counts = seed(stack, args.jobs)
            for n in range(args.runs):
                done = measure_dock(args, stack, root / f"run-{n}", counts)
                pooled.cold += done.cold
                pooled.warm += done.warm
                pooled.latencies += done.latencies
                pooled.missed += done.missed
                pooled.idle_none += done.idle_none
                pooled.idle_three += done.idle_three
            with chromium(root / "baseline-profile") as context:
                pooled.baseline = baseline_render(context, root, args.tabs)
        finally:
            stack.stop()
    return table_rows(args, pooled)


def spread(values: Sequence[float], unit: str = "s", digits: int = 2) -> str:
    """``median`` alone, or ``median (min–max)`` over several values."""
    text = f"{statistics.median(values):.{digits}f} {unit}"
    if len(values) > 1:
        text += f" ({min(values):.{digits}f}–{max(values):.{digits}f})"
    return text


def table_rows(args: argparse.Namespace, pooled: Results) -> list[tuple[str, str, str]]:
    runs, warm, latencies = args.runs, pooled.warm, pooled.latencies
    shown = f"{args.jobs:,} jobs, {DockOptions().rows_per_group} rows shown per group"
    last = warm[-1]
    return [
        (f"first render, cold tab of a new server (median of {runs} runs): first row",
         spread([r.first for r in pooled.cold]), "≤ 2 s"),
        ("first render, cold tab of a new server: all rows",
         spread([r.all for r in pooled.cold]), "≤ 2 s"),
        (f"first render, new tab (median of {len(warm)}): first row / all rows",
         f"{statistics.median(r.first for r in warm):.2f} s / "
         f"{statistics.median(r.all for r in warm):.2f} s", "≤ 2 s"),
        ("first render, new tab, p90: first row / all rows",
         f"{percentile([r.first for r in warm], 0.9):.2f} s / "
         f"{percentile([r.all for r in warm], 0.9):.2f} s", "≤ 2 s"),
        (f"change visible in the page, p50 ({len(latencies)} writes)",
         f"{statistics.median(latencies):.2f} s", "≤ 1 s"),
        ("change visible in the page, p95", f"{percentile(latencies, 0.95):.2f} s", "≤ 1 s"),
        ("change visible in the page, max", f"{max(latencies):.2f} s", "≤ 1 s"),
        ("changes not shown within 5 s (event lost; the 60 s resync repairs)",
         str(pooled.missed), "0"),
        (f"idle CPU of the Streamlit process, no tab ({args.idle_none_seconds:g} s)",
         spread(pooled.idle_none, "%", 1), "≈ 0"),
        (f"idle CPU of the Streamlit process, 3 tabs ({args.idle_seconds:g} s)",
         spread(pooled.idle_three, "%", 1), "near zero"),
        ("jobs in the table", shown, ""),
        ("the page: DOM elements / of them Streamlit's (`data-testid`)",
         f"{last.nodes:,} / {last.elements:,}", ""),
        ("for scale: a one-line Streamlit app, cold tab / new tab",
         f"{pooled.baseline[0]:.2f} s / {pooled.baseline[1]:.2f} s", ""),
    ]  # fmt: skip


def table(rows: list[tuple[str, str, str]]) -> str:
    lines = ["| measure | result | aim |", "|---|---|---|"]
    lines += [f"| {name} | {value} | {aim} |" for name, value, aim in rows]
    return "\n".join(lines)


def write_section(text: str) -> None:
    """Replace (or add) the "## Dock" section of docs/benchmarks.md, leaving the others and the
    section's own "### …" subsections (written by hand) as they are."""
    current = RESULTS.read_text() if RESULTS.exists() else "# Benchmarks\n"
    lines = current.splitlines()
    if HEADING in lines:
        start = lines.index(HEADING)
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith(("## ", "### "))),
            len(lines),
        )
        lines[start:end] = [*text.splitlines(), ""]
    else:
        lines += ["", *text.splitlines()]
    RESULTS.write_text("\n".join(lines).rstrip() + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh dock and browser each")
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--changes", type=int, default=30)
    parser.add_argument("--tabs", type=int, default=5, help="tabs for the warm first render")
    parser.add_argument("--idle-seconds", type=float, default=20.0, help="with 3 tabs")
    parser.add_argument("--idle-none-seconds", type=float, default=60.0, help="with no tab")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} is missing: apt-get install -y chromium", file=sys.stderr)
        return 1
    result = table(run(args))
    print(result)
    if not args.no_write:
        machine = f"{os.cpu_count()}-core"
        rows = DockOptions().rows_per_group
        write_section(
            f"{HEADING}\n\n`bench/dock.py` — the Processing Dock with {args.jobs:,} jobs, "
            f"headless Debian chromium, `dock_server.py` (server push) with default settings "
            f"({rows} rows per group), localbase and the browser on the same {machine} VM "
            f"(load average {os.getloadavg()[0]:.1f} at the end of the run). {args.runs} runs, "
            f"each with a fresh dock server and browser; the figures pool them (medians, "
            f"with the range over the runs in brackets).\n\n{result}\n\n{NOTES}\n"
        )
    return 0


if __name__ == "__main__":
    run_benchmark(main)
