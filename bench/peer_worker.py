"""One worker process of a peer job queue, for the side-by-side benchmarks (``bench/peers.py``).

Runs the peer's own worker with its defaults (connection pools included) on the queue
``bench``, with two tasks: ``noop`` (returns at once) and ``sleep`` (an async task that waits
until it is cancelled). Logs one greppable line when it is ready to take jobs and one per
stopped ``sleep`` job, with the wall-clock time at which the task saw its cancellation::

    event=peer_ready peer=procrastinate concurrency=10
    event=stopped job_id=42 at=1767225600.123456

Stopped by SIGTERM (or SIGINT).

    .venv/bin/python bench/peer_worker.py procrastinate|awa DSN CONCURRENCY
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from dataclasses import dataclass
from typing import Any

QUEUE = "bench"
PEERS = ("procrastinate", "awa")


def log(event: str, **fields: object) -> None:
    print(" ".join([f"event={event}", *(f"{k}={v}" for k, v in fields.items())]), flush=True)


async def _until_cancelled(job_id: object) -> None:
    """The ``sleep`` task's body: wait until cancelled, and say when that was seen."""
    try:
        await asyncio.Event().wait()  # never set
    except asyncio.CancelledError:
        log("stopped", job_id=job_id, at=f"{time.time():.6f}")
        raise


def _procrastinate_app(dsn: str, concurrency: int) -> Any:
    import procrastinate

    class Connector(procrastinate.PsycopgConnector):
        """Says when the worker's listener is in place: jobs deferred from then on wake it."""

        async def _loop_notify(self, *args: Any, **kwargs: Any) -> None:
            log("peer_ready", peer="procrastinate", concurrency=concurrency)
            await super()._loop_notify(*args, **kwargs)

    return procrastinate.App(connector=Connector(conninfo=dsn))


async def procrastinate_worker(dsn: str, concurrency: int) -> None:
    import procrastinate

    app = _procrastinate_app(dsn, concurrency)

    @app.task(name="noop", queue=QUEUE)
    async def noop() -> None:
        return None

    @app.task(name="sleep", queue=QUEUE, pass_context=True)
    async def sleep(context: procrastinate.JobContext) -> None:
        assert context.job is not None
        await _until_cancelled(context.job.id)

    async with app.open_async():
        # Procrastinate installs its own SIGTERM/SIGINT handlers: a graceful stop.
        await app.run_worker_async(queues=[QUEUE], concurrency=concurrency)


@dataclass
class Noop:
    pass


@dataclass
class Sleep:
    pass


async def awa_worker(dsn: str, concurrency: int) -> None:
    import awa

    client = awa.AsyncClient(dsn)

    @client.task(Noop, queue=QUEUE)
    async def noop(job: Any) -> None:
        return None

    @client.task(Sleep, queue=QUEUE)
    async def sleep(job: Any) -> None:
        await _until_cancelled(job.id)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await client.start([(QUEUE, concurrency)])
    log("peer_ready", peer="awa", concurrency=concurrency)
    try:
        await stop.wait()
    finally:
        await client.shutdown()
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("peer", choices=PEERS)
    parser.add_argument("dsn")
    parser.add_argument("concurrency", type=int)
    args = parser.parse_args()
    run = procrastinate_worker if args.peer == "procrastinate" else awa_worker
    asyncio.run(run(args.dsn, args.concurrency))


if __name__ == "__main__":
    main()
