"""``jobdock``: the dock's buttons on the command line.

Exit status: 0 done; 1 the job is missing or in the wrong state, or Supabase refused or could
not be reached; 2 usage errors (bad arguments, a malformed id, an unreadable file, a malformed
``SUPABASE_URL``). Every error is one line on stderr, never a traceback. Tables by default,
``--json`` for scripts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import math
import stat
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import fields, is_dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

from jobdock import actions
from jobdock.clients import sync_client
from jobdock.documents import Upload, upload_document
from jobdock.errors import InvalidJobId, InvalidSettings, JobdockError, UnreadableFile
from jobdock.models import Job, JobEvent, JobStatus, parse_job_id
from supabase import Client

OK, REFUSED, USAGE = 0, 1, 2
#: The longest ``--wait-ms`` / ``--ack-timeout-ms`` accepted: a day.
MAX_WAIT_MS = 86_400_000
#: Errors longer than this are cut: a proxy's HTML error page is not a message.
MAX_ERROR_CHARS = 500


def _one_line(message: str) -> str:
    line = " ".join(message.split())
    return line if len(line) <= MAX_ERROR_CHARS else line[: MAX_ERROR_CHARS - 1] + "…"


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors on one line (the usage itself is one ``--help`` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE, f"{self.prog}: {_one_line(message)} (see {self.prog} --help)\n")


def _job_id(text: str) -> uuid.UUID:
    try:
        return parse_job_id(text)
    except InvalidJobId as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _not_a_json_value(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range for a number")
    return value


def parse_input(text: str) -> dict[str, Any]:
    """``--input``: a JSON object as PostgREST reads it (no NaN or Infinity) that can be sent
    as UTF-8 (no unpaired surrogate escapes such as ``\\ud800``)."""
    try:
        value = json.loads(text, parse_constant=_not_a_json_value, parse_float=_finite)
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start : exc.end].encode("unicode_escape").decode()
        raise ValueError(f"holds {bad}, an unpaired surrogate: not valid UTF-8") from None
    except ValueError as exc:
        raise ValueError(f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _json_object(text: str) -> dict[str, Any]:
    try:
        return parse_input(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _non_negative_int(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return int(text)


def _milliseconds(text: str) -> int:
    value = _non_negative_int(text)
    if value > MAX_WAIT_MS:
        raise argparse.ArgumentTypeError(f"at most {MAX_WAIT_MS} ms (a day), got {value}")
    return value


def _ms(seconds: float) -> int:
    """An action's default, as its command-line option gives it."""
    return round(seconds * 1000)


def _json_default(value: Any) -> Any:
    """What ``json.dumps`` cannot write itself: our dataclasses (one level: the encoder walks
    the rest, so deeply nested input data needs no Python recursion), ids and times."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in fields(value)}
    if isinstance(value, uuid.UUID | datetime):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _to_json(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, default=_json_default, indent=indent)


def _table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True))
        for row in [header, *rows]
    ]
    return "\n".join(line.rstrip() for line in lines)


def _job_rows(jobs: Sequence[Job]) -> str:
    rows = [
        (
            str(j.id),
            j.job_type,
            j.status.value,
            f"{j.progress.percent:.0f}%" if j.progress.percent is not None else "",
            j.filename or "",
            (j.last_error or "")[:60],
        )
        for j in jobs
    ]
    return _table(rows, ("ID", "TYPE", "STATUS", "PROGRESS", "FILE", "ERROR"))


class Output:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def emit(self, value: Any, text: str) -> None:
        print(_to_json(value, indent=2) if self.as_json else text)


def _refused(outcome: actions.Outcome, verb: str) -> int:
    if isinstance(outcome, actions.NotFound):
        print(f"job {outcome.job_id} not found (or not yours); nothing to {verb}", file=sys.stderr)
    elif isinstance(outcome, actions.NotAllowed):
        print(f"job {outcome.job_id} is {outcome.status.value}; cannot {verb} it", file=sys.stderr)
    return REFUSED


def _outcome(out: Output, outcome: actions.Outcome, verb: str, done_text: str) -> int:
    if not isinstance(outcome, actions.Done):
        return _refused(outcome, verb)
    out.emit(outcome, done_text.format(id=outcome.job_id))
    return OK


def cmd_enqueue(client: Client, out: Output, args: argparse.Namespace) -> int:
    job = actions.enqueue(
        client, args.job_type, args.input, max_retries=args.max_retries, force=args.force
    )
    out.emit(job, str(job.id))
    return OK


def cmd_list(client: Client, out: Output, args: argparse.Namespace) -> int:
    jobs = actions.list_jobs(client, status=args.status, job_type=args.type)
    out.emit(jobs, _job_rows(jobs) if jobs else "no jobs")
    return OK


def cmd_show(client: Client, out: Output, args: argparse.Namespace) -> int:
    job = actions.get_job(client, args.job_id)
    timeline = actions.job_timeline(client, args.job_id)
    if job is None and not timeline:
        print(f"job {args.job_id} not found (or not yours)", file=sys.stderr)
        return REFUSED
    text = _job_rows([job]) if job else f"job {args.job_id} was deleted"
    text += "\n\n" + _timeline_text(timeline)
    out.emit({"job": job, "timeline": timeline}, text)
    return OK


def _timeline_text(events: Sequence[JobEvent]) -> str:
    rows = [
        (str(e.created_at or ""), e.event, e.worker_id or "", _to_json(e.detail)) for e in events
    ]
    return _table(rows, ("AT", "EVENT", "WORKER", "DETAIL"))


def cmd_cancel(client: Client, out: Output, args: argparse.Namespace) -> int:
    result = actions.cancel_and_delete(
        client,
        args.job_id,
        wait=args.wait_ms / 1000,
        wait_for_ack=args.ack,
        ack_timeout=args.ack_timeout_ms / 1000,
    )
    if not result.deleted and not isinstance(result.outcome, actions.Done):
        return _refused(result.outcome, "cancel")
    if result.acknowledged and result.stop_ms is not None:
        text = f"cancelled and deleted job {args.job_id}; worker stopped in {result.stop_ms:.0f} ms"
    else:
        text = f"cancelled and deleted job {args.job_id}"
        if args.ack:
            text += " (no worker acknowledged the stop in time)"
    out.emit(result, text)
    return OK


def cmd_force_fail(client: Client, out: Output, args: argparse.Namespace) -> int:
    return _outcome(
        out, actions.force_fail(client, args.job_id), "force-fail", "force-failed job {id}"
    )


def cmd_retry(client: Client, out: Output, args: argparse.Namespace) -> int:
    return _outcome(out, actions.retry(client, args.job_id), "retry", "job {id} queued again")


def cmd_dismiss(client: Client, out: Output, args: argparse.Namespace) -> int:
    return _outcome(out, actions.dismiss(client, args.job_id), "dismiss", "dismissed job {id}")


def cmd_cancel_all(client: Client, out: Output, args: argparse.Namespace) -> int:
    result = actions.cancel_all_processing(client, wait=args.wait_ms / 1000)
    out.emit(result, f"cancelled {len(result.cancelled)} job(s), deleted {len(result.deleted)}")
    return OK


def _read_file(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            raise UnreadableFile(f"{path}: is a directory; upload one file")
        if not stat.S_ISREG(mode):
            raise UnreadableFile(f"{path}: not a regular file")
        return path.read_bytes()
    except FileNotFoundError:
        raise UnreadableFile(f"{path}: no such file") from None
    except OSError as exc:
        raise UnreadableFile(f"{path}: cannot read it ({exc.strerror or exc})") from None


def cmd_upload(client: Client, out: Output, args: argparse.Namespace) -> int:
    path: Path = args.file
    job = upload_document(client, Upload(path.name, _read_file(path)))
    out.emit(job, str(job.id))
    return OK


def cmd_watch(client: Client, out: Output, args: argparse.Namespace) -> int:
    from jobdock.watch import watch

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(watch(lambda line: print(line, flush=True), as_json=out.as_json))
    return OK


def cmd_workers(client: Client, out: Output, args: argparse.Namespace) -> int:
    from jobdock.settings import get_settings
    from jobdock.workers import online

    roster = online(client, get_settings())
    lines = []
    if roster.source == "heartbeats":
        lines.append(f"Realtime unreachable ({roster.reason}); workers with a recent heartbeat:")
    for w in roster.workers:
        load = f"{w.running}/{w.concurrency} running" if roster.source == "presence" else ""
        where = f"{w.host or '?'}:{w.pid or '?'}"
        lines.append("  ".join(p for p in (w.worker_id, where, load, ",".join(w.job_types)) if p))
    text = "\n".join(lines) if roster.workers else "\n".join([*lines, "no worker online"])
    out.emit({"source": roster.source, "reason": roster.reason, "workers": roster.workers}, text)
    return OK


COMMANDS: dict[str, Callable[[Client, Output, argparse.Namespace], int]] = {
    "enqueue": cmd_enqueue,
    "list": cmd_list,
    "show": cmd_show,
    "cancel": cmd_cancel,
    "force-fail": cmd_force_fail,
    "retry": cmd_retry,
    "dismiss": cmd_dismiss,
    "cancel-all": cmd_cancel_all,
    "upload": cmd_upload,
    "watch": cmd_watch,
    "workers": cmd_workers,
}


JSON_HELP = "machine-readable output (before or after the command)"


def parser() -> argparse.ArgumentParser:
    root = _Parser(prog="jobdock", description="Manage jobdock background jobs.")
    root.add_argument("--json", action="store_true", help=JSON_HELP)
    # Accepted after the command too (``jobdock list --json``); SUPPRESS keeps a --json given
    # before it from being reset by the subcommand's default.
    options = _Parser(add_help=False)
    options.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=JSON_HELP)
    sub = root.add_subparsers(dest="command", required=True)
    add = functools.partial(sub.add_parser, parents=[options])

    p = add("enqueue", help="enqueue a job; prints its id")
    p.add_argument("job_type", metavar="TYPE")
    p.add_argument("--input", type=_json_object, default={}, help="input_data as a JSON object")
    p.add_argument("--max-retries", type=_non_negative_int, default=3)
    p.add_argument(
        "--force",
        action="store_true",
        help="queue it even if no worker has registered this job type",
    )

    p = add("list", help="list jobs, newest first")
    p.add_argument("--status", type=JobStatus, choices=list(JobStatus))
    p.add_argument("--type")

    for name, text in (
        ("show", "a job and its timeline"),
        ("force-fail", "Force Fail"),
        ("retry", "Retry a failed job"),
        ("dismiss", "X: delete a finished job"),
    ):
        add(name, help=text).add_argument("job_id", metavar="ID", type=_job_id)

    p = add("cancel", help="Cancel & Delete")
    p.add_argument("job_id", metavar="ID", type=_job_id)
    p.add_argument("--wait-ms", type=_milliseconds, default=_ms(actions.CANCEL_WAIT_SECONDS))
    p.add_argument("--ack", action="store_true", help="wait for the worker to confirm the stop")
    p.add_argument("--ack-timeout-ms", type=_milliseconds, default=_ms(actions.ACK_TIMEOUT_SECONDS))

    p = add("cancel-all", help="Cancel all processing (and pending) jobs")
    p.add_argument("--wait-ms", type=_milliseconds, default=_ms(actions.BULK_CANCEL_WAIT_SECONDS))

    p = add("upload", help="store a document and enqueue process_document")
    p.add_argument("file", metavar="FILE", type=Path)

    add("watch", help="live tail of job changes (Realtime)")
    add("workers", help="the workers online (presence; heartbeats when Realtime is unreachable)")
    return root


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    root = parser()
    for arg in sys.argv[1:] if argv is None else argv:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            root.error(f"argument {arg!r} is not valid UTF-8")
    return root.parse_args(argv)


def _failed(message: str, status: int) -> int:
    print(f"jobdock: {_one_line(message)}", file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Errors are translated here, once: usage errors (a malformed setting,
    an unreadable file) exit 2, everything jobdock refused or could not reach exits 1."""
    args = _parse(argv)
    out = Output(args.json)
    try:
        client = sync_client(retry=False) if args.command != "watch" else None
        return COMMANDS[args.command](client, out, args)  # type: ignore[arg-type]
    except (InvalidSettings, InvalidJobId, UnreadableFile) as exc:
        return _failed(str(exc), USAGE)
    except JobdockError as exc:
        return _failed(str(exc), REFUSED)


if __name__ == "__main__":
    sys.exit(main())
