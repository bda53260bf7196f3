"""``process_document``: what a real stop costs and how fast it is.

- Cancel → the parser process gone, for a 50 MB document of each format (Cancel & Delete with
  the worker's acknowledgement; the parser is watched from outside with ``psutil``).
- The worker's memory before and after 20 upload-and-cancel cycles.
- The price of isolation: parsing a 1 MB EPUB in the worker's own process vs in a killable
  child process with limits, and ``process_document`` jobs per second end to end.

    .venv/bin/python bench/documents.py [--rounds 5] [--cycles 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
from common import connect, localbase, run, sql, table, workers

from devstack.documents import MiB, make_large_epub, make_large_markdown, make_large_pdf
from devstack.worker import WorkerProcess
from jobdock import actions
from jobdock.documents import Upload, upload_document
from worker.handlers.documents import DocumentConfig, parse_document

FORMATS: dict[str, Callable[[], bytes]] = {
    "EPUB": lambda: make_large_epub(48 * MiB),
    "PDF": lambda: make_large_pdf(44 * MiB),
    "Markdown": lambda: make_large_markdown(48 * MiB),
}


def wait_for(
    condition: Callable[[], object], timeout: float, what: str, step: float = 0.001
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(step)


def watch_gone(pids: set[int], gone: list[float]) -> threading.Thread:
    def run() -> None:
        while any(psutil.pid_exists(p) for p in pids):
            time.sleep(0.0005)
        gone.append(time.monotonic())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def stop_latency(worker: WorkerProcess, client: object, content: bytes, name: str) -> float:
    job = upload_document(client, Upload(name, content))  # type: ignore[arg-type]
    wait_for(worker.isolated_processes, 120, "parser")
    time.sleep(0.5)  # well into the parse
    pids = worker.isolated_processes()
    gone: list[float] = []
    watcher = watch_gone(pids, gone)
    began = time.monotonic()
    result = actions.cancel_and_delete(client, job.id, wait_for_ack=True, ack_timeout=10)  # type: ignore[arg-type]
    watcher.join(10)
    if not (result.acknowledged and gone):
        raise RuntimeError("the worker did not acknowledge the stop")
    return (gone[0] - began) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--only-isolation", action="store_true", help="just the last table")
    args = parser.parse_args()
    with localbase() as (stack, root):
        client = connect(stack.url, stack.service_key)
        if args.only_isolation:
            isolation_price(stack, root, client)
            return
        with workers(stack, root, 1, "--job-types", "process_document", "--concurrency", "1") as (
            worker,
        ):
            rows = []
            for kind, make in FORMATS.items():
                content = make()
                ms = [
                    stop_latency(worker, client, content, f"big.{ext}")
                    for ext in [{"EPUB": "epub", "PDF": "pdf", "Markdown": "md"}[kind]]
                    * args.rounds
                ]
                rows.append(
                    [
                        f"{kind}, {len(content) / 1e6:.0f} MB",
                        f"{statistics.median(ms):.1f} ms",
                        f"{max(ms):.1f} ms",
                        str(len(ms)),
                    ]
                )
            print("\nCancel & Delete → parser process gone (from the call, ack included)\n")
            print(table(["document", "p50", "max", "rounds"], rows))

            assert worker.process is not None
            me = psutil.Process(worker.process.pid)
            small = make_large_markdown(8 * MiB)
            before = me.memory_info().rss
            for _ in range(args.cycles):
                job = upload_document(client, Upload("cycle.md", small))
                wait_for(worker.isolated_processes, 60, "parser")
                actions.cancel_and_delete(client, job.id, wait_for_ack=True, ack_timeout=10)
            after = me.memory_info().rss
            left = len(worker.isolated_processes())
            print(f"\nWorker RSS around {args.cycles} upload-and-cancel cycles (8 MB Markdown)\n")
            print(
                table(
                    ["before", "after", "growth", "parser processes left"],
                    [
                        [
                            f"{before / MiB:.0f} MiB",
                            f"{after / MiB:.0f} MiB",
                            f"{(after - before) / MiB:+.0f} MiB",
                            str(left),
                        ]
                    ],
                )
            )
        isolation_price(stack, root, client)


def inline_parse(path: Path, config: DocumentConfig) -> float:
    began = time.perf_counter()
    parse_document(str(path), "book.epub", config.limits, 0.0, lambda _: None)
    return (time.perf_counter() - began) * 1000


#: Timed in an interpreter started with ``-c``, as the worker is started with ``-m``: a script's
#: main module (this file) would be imported again in every child, which the worker never pays.
ISOLATED_PROBE = """
import asyncio, json, sys, time
from worker import isolation
from worker.handlers.documents import DocumentConfig, parse_document

async def main(path, count):
    config, times = DocumentConfig(), []
    for _ in range(count):
        began = time.perf_counter()
        await isolation.call(parse_document, (path, "book.epub", config.limits, 0.0),
                             report=lambda _: None, limits=config.process_limits)
        times.append((time.perf_counter() - began) * 1000)
    print(json.dumps(times))

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def isolated_parses(path: Path, count: int) -> list[float]:
    probe = [sys.executable, "-c", ISOLATED_PROBE, str(path), str(count)]
    done = subprocess.run(probe, capture_output=True, text=True, check=True, timeout=600)
    times: list[float] = json.loads(done.stdout)
    return times


def isolation_price(stack: object, root: Path, client: object) -> None:
    book = make_large_epub(1 * MiB)
    config = DocumentConfig()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "book.epub"
        path.write_bytes(book)
        inline = [inline_parse(path, config) for _ in range(20)]
        # One event loop for all of them, as in a worker (its fork server is started by the
        # first call, which is not counted).
        isolated = isolated_parses(path, 21)[1:]
    jobs_per_second = end_to_end(stack, root, client, book)
    med_in, med_iso = statistics.median(inline), statistics.median(isolated)
    print("\nThe price of isolation: a 1 MB EPUB (20 parses each)\n")
    print(
        table(
            ["parse", "p50", "p90", "ratio"],
            [
                [
                    "in the worker's process",
                    f"{med_in:.0f} ms",
                    f"{statistics.quantiles(inline, n=10)[-1]:.0f} ms",
                    "1.00",
                ],
                [
                    "in a killable child (limits on)",
                    f"{med_iso:.0f} ms",
                    f"{statistics.quantiles(isolated, n=10)[-1]:.0f} ms",
                    f"{med_iso / med_in:.2f}",
                ],
            ],
        )
    )
    print(f"\nEnd to end, 1 worker × concurrency 2: {jobs_per_second:.1f} process_document jobs/s")


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1]


def end_to_end(stack: object, root: Path, client: object, book: bytes, count: int = 40) -> float:
    with workers(
        stack,  # type: ignore[arg-type]
        root,
        1,
        "--job-types",
        "process_document",
        "--concurrency",
        "2",
        prefix="e2e",
    ):
        began = time.monotonic()
        for _ in range(count):
            upload_document(client, Upload("book.epub", book))  # type: ignore[arg-type]
        done = "select count(*) from public.background_jobs where status = 'completed'"
        wait_for(lambda: sql(stack, done) == [(count,)], 300, "jobs")  # type: ignore[arg-type]
        return count / (time.monotonic() - began)


if __name__ == "__main__":
    run(main)
