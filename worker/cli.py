"""``python -m worker``: options, signals, exit status."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import socket
import sys
from collections.abc import Sequence

from jobdock.settings import get_settings
from worker import logs
from worker.engine import Worker, WorkerConfig
from worker.handlers import default_registry

_WORKER_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")


def _positive(kind: type[int] | type[float]) -> argparse._ActionType:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return value

    return parse


def _worker_id(text: str) -> str:
    if not _WORKER_ID.match(text):
        raise argparse.ArgumentTypeError(
            "worker id: 1-100 characters among letters, digits and . _ : -"
        )
    return text


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m worker",
        description="Run jobdock jobs; stop them the moment they are "
        "cancelled, force-failed or deleted.",
    )
    p.add_argument("--concurrency", type=_positive(int), default=4)
    p.add_argument("--worker-id", type=_worker_id, default=f"{socket.gethostname()}-{os.getpid()}")
    p.add_argument("--job-types", help="comma-separated job types to take (default: all known)")
    p.add_argument(
        "--grace",
        type=_positive(float),
        default=5.0,
        help="seconds to let jobs finish on shutdown, and before a hard stop",
    )
    p.add_argument(
        "--fallback-poll",
        type=_positive(float),
        default=0.5,
        help="seconds between status polls while Realtime is down",
    )
    p.add_argument("--no-realtime", action="store_true", help="poll only (for comparison)")
    p.add_argument(
        "--lease",
        type=_positive(float),
        default=30.0,
        help="seconds without a heartbeat after which other workers reclaim jobs",
    )
    p.add_argument(
        "--idle-poll",
        type=_positive(float),
        default=2.0,
        help="safety poll for new work while Realtime is healthy",
    )
    p.add_argument(
        "--feed-rebuild-after",
        type=_positive(float),
        default=20.0,
        help="rebuild the Realtime client after it has been down this long",
    )
    p.add_argument(
        "--progress-interval",
        type=_positive(float),
        default=0.5,
        help="seconds between progress writes (all running jobs' progress goes in one call)",
    )
    p.add_argument(
        "--realtime-url", help="Realtime endpoint when it differs from SUPABASE_URL (e.g. a proxy)"
    )
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p


def config_from(args: argparse.Namespace) -> WorkerConfig:
    settings = get_settings()
    registry = default_registry()
    job_types = None
    if args.job_types:
        job_types = tuple(t.strip() for t in args.job_types.split(",") if t.strip())
        unknown = sorted(set(job_types) - set(registry.names))
        if unknown:
            raise SystemExit(
                f"python -m worker: unknown job type(s): {', '.join(unknown)}; "
                f"known: {', '.join(registry.names)}"
            )
    return WorkerConfig(
        supabase_url=settings.supabase_url,
        service_key=settings.supabase_service_role_key,
        worker_id=args.worker_id,
        concurrency=args.concurrency,
        job_types=job_types or tuple(registry.names),
        grace=args.grace,
        fallback_poll=args.fallback_poll,
        realtime=not args.no_realtime,
        lease_seconds=args.lease,
        idle_poll=args.idle_poll,
        feed_rebuild_after=args.feed_rebuild_after,
        progress_interval=args.progress_interval,
        realtime_url=args.realtime_url,
    )


async def serve(config: WorkerConfig) -> None:
    worker = Worker(config, default_registry())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, worker.request_shutdown)
    await worker.run()


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    config = config_from(args)
    logs.configure(args.log_level)
    try:
        asyncio.run(serve(config))
    except OSError as exc:
        print(f"python -m worker: {exc}", file=sys.stderr)
        return 1
    return 0
