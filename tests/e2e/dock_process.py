"""Run the dock (``streamlit run dock_server.py``, or ``dock_app.py`` without server push) in a
child process against a test localbase."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.localbase_process import ROOT, LocalbaseProcess, free_port


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
        self._wait_healthy(timeout)
        return self

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"the dock exited early:\n{self.log}")
            try:
                if httpx.get(f"{self.url}/_stcore/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"the dock did not answer in {timeout} s:\n{self.log}")

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self, timeout: float = 30.0) -> int:
        process, self.process = self.process, None
        if process is None:
            return 0
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
