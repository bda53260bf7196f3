"""``jobdock``: the dock's buttons on the command line.

Exit status: 0 done; 1 the job is missing or in the wrong state (one line on stderr);
2 usage errors (bad arguments, a malformed id). Tables by default, ``--json`` for scripts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, is_dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jobdock import actions
from jobdock.clients import sync_client
from jobdock.documents import Upload, upload_document
from jobdock.errors import InvalidJobId, JobdockError
from jobdock.models import Job, JobEvent, JobStatus, parse_job_id
from supabase import Client

OK, REFUSED, USAGE = 0, 1, 2


def _job_id(text: str) -> uuid.UUID:
    try:
        return parse_job_id(text)
    except InvalidJobId as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--input is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("--input must be a JSON object")
    return value


def _non_negative_int(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return int(text)


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, uuid.UUID | datetime):
        return str(value)
    return value


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
        print(json.dumps(_jsonable(value), indent=2) if self.as_json else text)


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
    job = actions.enqueue(client, args.job_type, args.input, max_retries=args.max_retries)
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
        (str(e.created_at or ""), e.event, e.worker_id or "", json.dumps(_jsonable(e.detail)))
        for e in events
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


def cmd_upload(client: Client, out: Output, args: argparse.Namespace) -> int:
    path: Path = args.file
    if not path.is_file():
        print(f"{path}: no such file", file=sys.stderr)
        return USAGE
    job = upload_document(client, Upload(path.name, path.read_bytes()))
    out.emit(job, str(job.id))
    return OK


def cmd_watch(client: Client, out: Output, args: argparse.Namespace) -> int:
    from jobdock.watch import watch

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(watch(lambda line: print(line, flush=True), as_json=out.as_json))
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
}


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="jobdock", description="Manage jobdock background jobs.")
    root.add_argument("--json", action="store_true", help="machine-readable output")
    sub = root.add_subparsers(dest="command", required=True)

    p = sub.add_parser("enqueue", help="enqueue a job; prints its id")
    p.add_argument("job_type", metavar="TYPE")
    p.add_argument("--input", type=_json_object, default={}, help="input_data as a JSON object")
    p.add_argument("--max-retries", type=_non_negative_int, default=3)

    p = sub.add_parser("list", help="list jobs, newest first")
    p.add_argument("--status", type=JobStatus, choices=list(JobStatus))
    p.add_argument("--type")

    for name, text in (
        ("show", "a job and its timeline"),
        ("force-fail", "Force Fail"),
        ("retry", "Retry a failed job"),
        ("dismiss", "X: delete a finished job"),
    ):
        sub.add_parser(name, help=text).add_argument("job_id", metavar="ID", type=_job_id)

    p = sub.add_parser("cancel", help="Cancel & Delete")
    p.add_argument("job_id", metavar="ID", type=_job_id)
    p.add_argument("--wait-ms", type=_non_negative_int, default=100)
    p.add_argument("--ack", action="store_true", help="wait for the worker to confirm the stop")
    p.add_argument("--ack-timeout-ms", type=_non_negative_int, default=2000)

    p = sub.add_parser("cancel-all", help="Cancel all processing (and pending) jobs")
    p.add_argument("--wait-ms", type=_non_negative_int, default=200)

    p = sub.add_parser("upload", help="store a document and enqueue process_document")
    p.add_argument("file", metavar="FILE", type=Path)

    sub.add_parser("watch", help="live tail of job changes (Realtime)")
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    out = Output(args.json)
    try:
        client = sync_client(retry=False) if args.command != "watch" else None
        return COMMANDS[args.command](client, out, args)  # type: ignore[arg-type]
    except JobdockError as exc:
        print(f"jobdock: {exc}", file=sys.stderr)
        return REFUSED


if __name__ == "__main__":
    sys.exit(main())
