"""Start, stop, restart and reset a real localbase: data, migrations, processes and ports."""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from devstack.localbase import ROOT, LocalbaseProcess, free_port


def postgres_pids(data_dir: Path) -> list[int]:
    """PIDs of postgres processes serving ``data_dir``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            cmdline
            and cmdline[0].endswith(b"postgres")
            and str(data_dir).encode() in b" ".join(cmdline)
        ):
            found.append(int(entry.name))
    return found


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.fixture
def project(tmp_path: Path) -> Iterator[LocalbaseProcess]:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "20260101000000_notes.sql").write_text(
        "create table public.notes (id int primary key, body text);"
    )
    seed = tmp_path / "seed.sql"
    seed.write_text("insert into public.notes values (1, 'seeded');")
    stack = LocalbaseProcess(tmp_path / "data", migrations_dir=migrations, seed=seed)
    yield stack
    if stack.process is not None:  # a failed test must not leave a localbase running
        stack.stop()


def query(stack: LocalbaseProcess, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(stack.db_dsn, autocommit=True) as conn:
        cur = conn.execute(sql.encode())
        return cur.fetchall() if cur.description else []


def test_restart_keeps_data_and_applies_new_migrations(project: LocalbaseProcess) -> None:
    project.start()
    assert query(project, "select body from public.notes") == [("seeded",)]
    query(project, "insert into public.notes values (2, 'kept')")
    assert project.stop() == 0

    (project.migrations_dir / "20260102000000_tags.sql").write_text(
        "create table public.tags (name text primary key);"
    )
    project.start()
    try:
        assert query(project, "select id from public.notes order by id") == [(1,), (2,)]
        assert query(
            project, "select version from supabase_migrations.schema_migrations order by version"
        ) == [("20260101000000",), ("20260102000000",)]
        assert query(project, "select count(*) from public.tags") == [(0,)]
    finally:
        project.stop()


def test_reset_gives_a_clean_database(project: LocalbaseProcess) -> None:
    project.start()
    query(project, "insert into public.notes values (2, 'gone after reset')")
    project.stop()
    project.start(reset=True)
    try:
        assert query(project, "select id, body from public.notes") == [(1, "seeded")]
    finally:
        project.stop()


def test_stop_leaves_no_process_or_port_behind(project: LocalbaseProcess) -> None:
    project.start()
    assert postgres_pids(project.data_dir)
    assert project.stop() == 0
    assert postgres_pids(project.data_dir) == []
    assert port_is_free(project.api_port)
    assert port_is_free(project.db_port)


def test_kill_9_takes_postgres_down_and_restart_recovers(project: LocalbaseProcess) -> None:
    project.start()
    assert project.process is not None
    os.kill(project.process.pid, signal.SIGKILL)
    project.process.wait()
    project.process = None
    # The parent-death signal makes postgres shut down fast; watch it go, bounded.
    for pid in postgres_pids(project.data_dir):
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            ready, _, _ = select.select([pidfd], [], [], 15)
        finally:
            os.close(pidfd)
        assert ready, f"postgres {pid} survived its parent"
    project.start()
    try:
        assert query(project, "select count(*) from public.notes") == [(1,)]
    finally:
        project.stop()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "localbase", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def test_bad_arguments_are_usage_errors() -> None:
    result = run_cli("start", "--api-port", "abc")
    assert result.returncode == 2
    assert "not a port number: 'abc'" in result.stderr
    assert "Traceback" not in result.stderr


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(
            "start",
            "--data-dir",
            str(tmp_path / "d"),
            "--api-port",
            str(port),
            "--db-port",
            str(free_port()),
        )
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr
    assert "Traceback" not in result.stderr
    shutil.rmtree(tmp_path / "d", ignore_errors=True)
