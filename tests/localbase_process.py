"""Run a real localbase in a child process for tests and benchmarks."""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from localbase import keys

ROOT = Path(__file__).resolve().parent.parent


def terminate_on_exit(process: subprocess.Popen[bytes]) -> None:
    """Safety net: never leave a localbase behind when a test run ends abruptly."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LocalbaseProcess:
    """One ``python -m localbase start`` child, on free ports, in its own data dir."""

    data_dir: Path
    api_port: int = field(default_factory=free_port)
    db_port: int = field(default_factory=free_port)
    migrations_dir: Path = ROOT / "supabase" / "migrations"
    seed: Path = ROOT / "supabase" / "seed.sql"
    extra_args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def db_dsn(self) -> str:
        return f"postgresql://postgres:postgres@127.0.0.1:{self.db_port}/postgres"

    anon_key: str = keys.ANON_KEY
    service_key: str = keys.SERVICE_ROLE_KEY

    def start(self, *, reset: bool = False, timeout: float = 90.0) -> None:
        argv = [
            sys.executable,
            "-m",
            "localbase",
            "start",
            "--data-dir",
            str(self.data_dir),
            "--api-port",
            str(self.api_port),
            "--db-port",
            str(self.db_port),
            "--migrations-dir",
            str(self.migrations_dir),
            "--seed",
            str(self.seed),
            *self.extra_args,
        ]
        if reset:
            argv.append("--reset")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        atexit.register(terminate_on_exit, self.process)
        self.wait_healthy(timeout)

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.log"

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"localbase exited early:\n{self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"localbase not healthy in {timeout} s:\n{self.log_path.read_text()}")

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
