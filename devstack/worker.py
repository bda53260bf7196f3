"""``python -m worker`` in a child process, against a localbase of the stack."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from devstack.child import ROOT, stop, stop_at_exit
from devstack.localbase import LocalbaseProcess

FAST = (
    "--lease",
    "2",
    "--grace",
    "1",
    "--kill-grace",
    "1",
    "--fallback-poll",
    "0.2",
    "--idle-poll",
    "0.5",
    "--feed-rebuild-after",
    "5",
)


@dataclass
class WorkerProcess:
    localbase: LocalbaseProcess
    log_path: Path
    worker_id: str
    args: tuple[str, ...] = ()
    realtime_url: str | None = None
    expect_feed: bool = True
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> WorkerProcess:
        env = {
            **os.environ,
            "SUPABASE_URL": self.localbase.url,
            "SUPABASE_SERVICE_ROLE_KEY": self.localbase.service_key,
            "PYTHONUNBUFFERED": "1",
            **self.env,
        }
        argv = [sys.executable, "-m", "worker", "--worker-id", self.worker_id, *FAST, *self.args]
        if self.realtime_url:
            argv += ["--realtime-url", self.realtime_url]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env
            )
        stop_at_exit(self.process)
        self.wait_for_log("event=worker_started", timeout=60)
        if self.expect_feed and "--no-realtime" not in self.args:
            self.wait_for_log("event=feed_subscribed", timeout=60)
        return self

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, pattern: str, timeout: float = 30, count: int = 1) -> None:
        """Wait until ``pattern`` has appeared ``count`` times in the worker's log."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while len(regex.findall(self.log)) < count:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"worker exited ({self.process.returncode}):\n{self.log}")
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{pattern!r} x{count} not logged in {timeout} s:\n{self.log[-4000:]}"
                )
            time.sleep(0.02)

    def isolated_processes(self) -> set[int]:
        """The worker's isolated handler processes alive now (a parser, say): the children of
        its fork server."""
        import psutil

        assert self.process is not None
        found: set[int] = set()
        for child in psutil.Process(self.process.pid).children():
            try:
                if "forkserver" in " ".join(child.cmdline()):
                    found |= {p.pid for p in child.children() if p.status() != psutil.STATUS_ZOMBIE}
            except psutil.NoSuchProcess:
                continue
        return found

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def stop(self, timeout: float = 30) -> int | None:
        """Its exit code (None: it had to be killed)."""
        process, self.process = self.process, None
        return 0 if process is None else stop(process, timeout)
