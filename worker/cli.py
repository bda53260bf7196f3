"""``python -m worker``: options, signals, exit status."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import re
import signal
import sys
from collections.abc import Sequence

from jobdock.errors import InvalidSettings
from jobdock.settings import get_settings
from worker import logs
from worker.config import WorkerConfig
from worker.engine import Worker
from worker.registry import Registry, default_registry

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


#: Options that set a ``WorkerConfig`` field of the same name: (flag, field, type, help).
#: Their defaults are the dataclass's own, shown in ``--help``.
OPTIONS: tuple[tuple[str, str, argparse._ActionType, str], ...] = (
    ("--concurrency", "concurrency", _positive(int), "jobs run at once"),
    (
        "--grace",
        "shutdown_grace_seconds",
        _positive(float),
        "seconds running jobs may finish on shutdown before they are handed back",
    ),
    (
        "--kill-grace",
        "kill_grace_seconds",
        _positive(float),
        "seconds an isolated handler has between SIGTERM and SIGKILL after a stop",
    ),
    (
        "--fallback-poll",
        "fallback_poll_seconds",
        _positive(float),
        "seconds between status polls while Realtime is down",
    ),
    (
        "--lease",
        "lease_seconds",
        _positive(float),
        "seconds without a heartbeat after which other workers reclaim jobs",
    ),
    (
        "--idle-poll",
        "idle_poll_seconds",
        _positive(float),
        "seconds between safety polls for new work while Realtime is healthy",
    ),
    (
        "--feed-rebuild-after",
        "feed_rebuild_after_seconds",
        _positive(float),
        "rebuild the Realtime client after it has been down this many seconds",
    ),
    (
        "--progress-interval",
        "progress_interval_seconds",
        _positive(float),
        "seconds between progress writes (all running jobs' progress goes in one call)",
    ),
)

_DEFAULTS = {f.name: f.default for f in dataclasses.fields(WorkerConfig)}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m worker",
        description="Run jobdock jobs; stop them the moment they are "
        "cancelled, force-failed or deleted.",
    )
    p.add_argument(
        "--worker-id", type=_worker_id, help="default: <hostname>-<pid>", default=argparse.SUPPRESS
    )
    p.add_argument("--job-types", help="comma-separated job types to take (default: all known)")
    for flag, name, kind, text in OPTIONS:
        p.add_argument(
            flag,
            dest=name,
            type=kind,
            default=argparse.SUPPRESS,
            help=f"{text} (default {_DEFAULTS[name]:g})",
        )
    p.add_argument("--no-realtime", action="store_true", help="poll only (for comparison)")
    p.add_argument(
        "--signals",
        choices=["auto", "broadcast", "postgres_changes"],
        default=argparse.SUPPRESS,
        help="how stops and new work arrive: Broadcast from Database, postgres_changes, or"
        " auto (Broadcast when the project can send it; the default)",
    )
    p.add_argument(
        "--realtime-url", help="Realtime endpoint when it differs from SUPABASE_URL (e.g. a proxy)"
    )
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p


def config_from(args: argparse.Namespace, registry: Registry) -> WorkerConfig:
    settings = get_settings()
    job_types = None
    if args.job_types:
        job_types = tuple(t.strip() for t in args.job_types.split(",") if t.strip())
        unknown = sorted(set(job_types) - set(registry.names))
        if unknown:
            raise SystemExit(
                f"python -m worker: unknown job type(s): {', '.join(unknown)}; "
                f"known: {', '.join(registry.names)}"
            )
    given = {name: getattr(args, name) for _, name, _, _ in OPTIONS if hasattr(args, name)}
    for name in ("worker_id", "signals"):
        if hasattr(args, name):
            given[name] = getattr(args, name)
    return WorkerConfig(
        supabase_url=settings.supabase_url,
        service_key=settings.supabase_service_role_key,
        job_types=job_types or tuple(registry.names),
        realtime=not args.no_realtime,
        realtime_url=args.realtime_url,
        **given,
    )


async def serve(config: WorkerConfig, registry: Registry) -> None:
    worker = await Worker.connect(config, registry)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, worker.request_shutdown)
    await worker.run()


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        registry = default_registry()  # reads the document limits from the environment
        config = config_from(args, registry)
    except (ValueError, InvalidSettings) as exc:  # a malformed setting: one line, usage error
        print(f"python -m worker: {exc}", file=sys.stderr)
        return 2
    logs.configure(args.log_level)
    try:
        asyncio.run(serve(config, registry))
    except OSError as exc:
        print(f"python -m worker: {exc}", file=sys.stderr)
        return 1
    return 0
