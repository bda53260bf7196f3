"""The dock (``streamlit run dock_server.py``, or ``dock_app.py`` without server push) in a
child process, against a localbase of the stack."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from devstack.child import ROOT, free_port, stop, stop_at_exit, wait_until_answers
from devstack.localbase import LocalbaseProcess


@dataclass
class DockProcess:
    localbase: LocalbaseProcess
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    script: str = "dock_server.py"  # or "dock_app.py": no push, the pages ask on a timer
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> DockProcess:
        env = {
            **os.environ,
            "SUPABASE_URL": self.localbase.url,
            "SUPABASE_ANON_KEY": self.localbase.anon_key,
            "SUPABASE_SERVICE_ROLE_KEY": self.localbase.service_key,
            "PYTHONUNBUFFERED": "1",
            **self.env,
        }
        argv = [sys.executable, "-m", "streamlit", "run", str(ROOT / self.script)]
        argv += ["--server.port", str(self.port)]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        stop_at_exit(self.process)
        wait_until_answers(
            f"{self.url}/_stcore/health", self.process, timeout, "the dock", self.log_path
        )
        return self

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self, timeout: float = 30.0) -> int | None:
        """Its exit code (None: it had to be killed)."""
        process, self.process = self.process, None
        return 0 if process is None else stop(process, timeout)
