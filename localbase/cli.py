"""``python -m localbase start …``: the command line."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from localbase.errors import LocalbaseError
from localbase.stack import StackConfig, run


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
    return root


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
    )
    try:
        run(config)
    except LocalbaseError as exc:
        print(f"localbase: {exc}", file=sys.stderr)
        return 1
    return 0
