"""``python -m devstack.up`` (``make up``): localbase, a worker and the dock, under one supervisor.

1. start localbase and wait for ``/health``;
2. start the worker (``python -m worker``) and the dock (``streamlit run dock_server.py``), both
   pointed at that localbase, and print the dock's URL once it answers;
3. on Ctrl-C / SIGTERM stop the dock and the worker first (the worker hands its jobs back),
   then localbase; if any of the three exits on its own, say which and stop the others.

Children run in their own process groups, so a Ctrl-C in the terminal reaches only this
supervisor, which stops them in order. On Linux they also die with it if it is killed.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from devstack.child import ROOT, stop, wait_until_answers
from localbase import keys

PR_SET_PDEATHSIG = 1


class Stop(Exception):
    """Time to stop everything; the message says why."""

    def __init__(self, reason: str, code: int) -> None:
        super().__init__(reason)
        self.code = code


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            self.argv, cwd=ROOT, env=env, start_new_session=True, preexec_fn=_die_with_parent
        )

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def stop(self, timeout: float) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        if stop(process, timeout) is None:
            say(f"{self.name} did not stop within {timeout:g} s; it was killed")


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the supervisor dies, however it dies (Linux only)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def say(text: str) -> None:
    print(f"[up] {text}", file=sys.stderr, flush=True)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="python -m devstack.up", description="Run localbase, a worker and the Processing Dock."
    )
    root.add_argument("--api-port", type=int, default=54321, help="localbase API port")
    root.add_argument("--db-port", type=int, default=54322, help="localbase Postgres port")
    root.add_argument("--data-dir", type=Path, default=Path(".localbase"))
    root.add_argument("--dock-port", type=int, default=8501)
    root.add_argument("--no-worker", action="store_true", help="start no worker")
    root.add_argument(
        "--realtime-profile",
        choices=["local", "hosted"],
        default="local",
        help="localbase's Realtime delivery: local (streaming) or hosted (hosted Supabase's"
        " postgres_changes poller and message cap)",
    )
    root.add_argument(
        "--startup-timeout", type=float, default=120.0, help="seconds to wait for each service"
    )
    root.add_argument("--stop-timeout", type=float, default=30.0)
    return root


def children(args: argparse.Namespace) -> tuple[Child, list[Child]]:
    python = sys.executable
    localbase = Child("localbase", [python, "-m", "localbase", "start"])
    localbase.argv += ["--data-dir", str(args.data_dir.resolve())]
    localbase.argv += ["--api-port", str(args.api_port), "--db-port", str(args.db_port)]
    localbase.argv += ["--realtime-profile", args.realtime_profile]
    others = []
    if not args.no_worker and (ROOT / "worker" / "__main__.py").exists():
        others.append(Child("worker", [python, "-m", "worker"]))
    dock = Child("dock", [python, "-m", "streamlit", "run", str(ROOT / "dock_server.py")])
    dock.argv += ["--server.port", str(args.dock_port), "--server.address", "127.0.0.1"]
    dock.argv += ["--server.headless", "true"]
    others.append(dock)
    return localbase, others


def environment(api_url: str) -> dict[str, str]:
    """Everything talks to this localbase, whatever ``.env`` says."""
    return {
        **os.environ,
        "SUPABASE_URL": api_url,
        "SUPABASE_ANON_KEY": keys.ANON_KEY,
        "SUPABASE_SERVICE_ROLE_KEY": keys.SERVICE_ROLE_KEY,
        "PYTHONUNBUFFERED": "1",
    }


def wait_until_up(url: str, watched: Sequence[Child], timeout: float) -> None:
    """Until ``url`` answers 200; ``Stop`` if a child exits first or time runs out."""
    try:
        wait_until_answers(url, None, timeout, url, watch=lambda: check(watched))
    except TimeoutError:
        raise Stop(f"{url} did not answer within {timeout:g} s", 1) from None


def check(watched: Sequence[Child]) -> None:
    for child in watched:
        code = child.exit_code()
        if code is not None:
            raise Stop(f"{child.name} exited with code {code}; stopping the others", 1)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise Stop(f"{signal.Signals(signum).name} received; stopping", 0)


def run(args: argparse.Namespace) -> int:
    localbase, others = children(args)
    api_url = f"http://127.0.0.1:{args.api_port}"
    dock_url = f"http://127.0.0.1:{args.dock_port}"
    env = environment(api_url)
    started: list[Child] = []
    try:
        localbase.start(env)
        started.append(localbase)
        wait_until_up(f"{api_url}/health", started, args.startup_timeout)
        for child in others:
            child.start(env)
            started.append(child)
        wait_until_up(f"{dock_url}/_stcore/health", started, args.startup_timeout)
        names = ", ".join(child.name for child in started)
        say(f"running: {names}. Ctrl-C stops everything.")
        print(f"\n  Processing Dock: {dock_url}\n", flush=True)
        while True:
            check(started)
            time.sleep(0.2)
    except Stop as stop:
        say(str(stop))
        code = stop.code
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not cut the cleanup
            signal.signal(signum, signal.SIG_IGN)
        for child in reversed(started):
            child.stop(args.stop_timeout)
        say("all stopped")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
