"""``python -m localbase start …``: the command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from localbase.errors import LocalbaseError
from localbase.realtime import RealtimeConfig
from localbase.stack import StackConfig, run
from localbase.supervisor import RestartPolicy


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range 1-65535: {port}")
    return port


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="localbase", description="An embedded Supabase-compatible stack (no Docker)."
    )
    commands = root.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="run Postgres + REST + Storage + Realtime")
    start.add_argument("--data-dir", type=Path, default=Path(".localbase"))
    start.add_argument("--api-port", type=_port, default=54321)
    start.add_argument("--db-port", type=_port, default=54322)
    start.add_argument("--migrations-dir", type=Path, default=Path("supabase/migrations"))
    start.add_argument("--seed", type=Path, default=Path("supabase/seed.sql"))
    start.add_argument(
        "--reset",
        action="store_true",
        help="wipe the data dir, re-initialise, apply migrations and the seed",
    )
    start.add_argument(
        "--host", default="127.0.0.1", help="address the API binds to (default 127.0.0.1)"
    )
    start.add_argument(
        "--postgres-restart-attempts",
        type=_non_negative(int),
        default=RestartPolicy.max_attempts,
        metavar="N",
        help="restarts of a dead PostgreSQL tried in a row before localbase exits with an error"
        f" (default {RestartPolicy.max_attempts})",
    )
    start.add_argument(
        "--postgres-restart-delay",
        type=_non_negative(float),
        default=RestartPolicy.first_delay_seconds,
        metavar="SECONDS",
        help="wait before the first restart of a dead PostgreSQL; doubles per failed attempt"
        f" (default {RestartPolicy.first_delay_seconds})",
    )
    _realtime_options(start)
    return root


def _non_negative(kind: type[int] | type[float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"must not be negative: {text}")
        return value

    return parse


def _realtime_options(start: argparse.ArgumentParser) -> None:
    realtime = start.add_argument_group("realtime")
    realtime.add_argument(
        "--realtime-delay-ms",
        type=_non_negative(int),
        default=0,
        metavar="N",
        help="extra delay before each change is delivered, to mimic hosted latency (default 0)",
    )
    realtime.add_argument(
        "--realtime-idle-timeout",
        type=_non_negative(float),
        default=60.0,
        metavar="SECONDS",
        help="close a socket that sends nothing for this long (default 60, as Supabase)",
    )
    realtime.add_argument(
        "--realtime-join-error-backoff-ms",
        type=_non_negative(int),
        default=100,
        metavar="N",
        help="delay before a refused join is answered (Supabase: 5000; default 100)",
    )
    realtime.add_argument(
        "--realtime-connect-error-backoff-ms",
        type=_non_negative(int),
        default=100,
        metavar="N",
        help="delay before a refused upgrade is answered (Supabase: 2000; default 100)",
    )
    realtime.add_argument(
        "--realtime-profile",
        choices=("local", "hosted"),
        default=RealtimeConfig.profile,
        help="local: postgres_changes streamed as they commit (default); hosted: polled with"
        " hosted Supabase's cadence and capped by --max-events-per-second",
    )
    realtime.add_argument(
        "--max-events-per-second",
        type=_non_negative(int),
        default=None,
        metavar="N",
        help="project cap on Realtime messages per second, counted per receiver as hosted does"
        " (default: 500 under --realtime-profile hosted, none under local)",
    )
    realtime.add_argument(
        "--realtime-max-payload-kb",
        type=_non_negative(int),
        default=RealtimeConfig.max_payload_kb,
        metavar="KB",
        help="largest broadcast or presence payload (default 256, hosted Free; Pro: 3000)",
    )
    realtime.add_argument(
        "--realtime-max-pending",
        type=_non_negative(int),
        default=10_000,
        metavar="N",
        help="frames queued for one socket before it is disconnected as too slow",
    )


def _realtime_config(args: argparse.Namespace) -> RealtimeConfig:
    return RealtimeConfig(
        delay_ms=int(args.realtime_delay_ms),
        idle_timeout=float(args.realtime_idle_timeout),
        join_error_backoff=args.realtime_join_error_backoff_ms / 1000,
        connect_error_backoff=args.realtime_connect_error_backoff_ms / 1000,
        max_pending=max(1, int(args.realtime_max_pending)),
        profile=str(args.realtime_profile),
        max_events_per_second=(
            None if args.max_events_per_second is None else int(args.max_events_per_second)
        ),
        max_payload_kb=int(args.realtime_max_payload_kb),
    )


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = StackConfig(
        data_dir=args.data_dir,
        api_port=args.api_port,
        db_port=args.db_port,
        migrations_dir=args.migrations_dir,
        seed=args.seed,
        reset=args.reset,
        host=args.host,
        realtime=_realtime_config(args),
        restart_policy=RestartPolicy(
            max_attempts=max(1, int(args.postgres_restart_attempts)),
            first_delay_seconds=float(args.postgres_restart_delay),
        ),
    )
    try:
        run(config)
    except LocalbaseError as exc:
        print(f"localbase: {exc}", file=sys.stderr)
        return 1
    return 0
