"""A real localbase in a child process, for tests and benchmarks."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from devstack.child import ROOT, free_port, stop, stop_at_exit, wait_until_answers
from localbase import keys

__all__ = ["ROOT", "LocalbaseProcess", "free_port"]


@dataclass
class LocalbaseProcess:
    """One ``python -m localbase start`` child, on free ports, in its own data dir."""

    data_dir: Path
    api_port: int = field(default_factory=free_port)
    db_port: int = field(default_factory=free_port)
    migrations_dir: Path = ROOT / "supabase" / "migrations"
    seed: Path = ROOT / "supabase" / "seed.sql"
    extra_args: tuple[str, ...] = ()
    #: Where it starts, as ``supabase start`` in a project: its ``supabase/config.toml``.
    project_dir: Path = ROOT
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
                cwd=self.project_dir,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        stop_at_exit(self.process)
        self.wait_healthy(timeout)

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.log"

    def wait_healthy(self, timeout: float) -> None:
        wait_until_answers(f"{self.url}/health", self.process, timeout, "localbase", self.log_path)

    def stop(self, timeout: float = 30.0) -> int | None:
        """Its exit code (None: it had to be killed)."""
        process, self.process = self.process, None
        return 0 if process is None else stop(process, timeout)
