"""Keeps the bundled PostgreSQL running: notices when the postmaster dies, restarts it.

The postmaster's exit is noticed at once: a pidfd of it becomes readable on the event loop.
From then on the APIs answer 503 without trying to connect, and restarts are tried with
growing delays. When one succeeds, broken pooled connections are replaced and the APIs serve
again; if ``RestartPolicy.max_attempts`` starts in a row fail, the supervisor gives up, says
why, and asks the server to stop, so that localbase exits non-zero and whatever supervises
*it* can act.

    RUNNING ──postmaster exits──▶ RESTARTING ──start succeeds──▶ RUNNING
                                      └──max_attempts failures──▶ FAILED (localbase exits 1)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from localbase.errors import LocalbaseError
from localbase.postgres import Cluster

log = logging.getLogger("localbase.supervisor")


class PostgresState(StrEnum):
    RUNNING = "running"
    RESTARTING = "restarting"
    FAILED = "failed"


@dataclass(frozen=True)
class RestartPolicy:
    max_attempts: int = 5
    first_delay_seconds: float = 0.2
    max_delay_seconds: float = 5.0

    def delay_seconds(self, attempt: int) -> float:
        """Wait before start attempt ``attempt`` (1-based)."""
        return min(self.first_delay_seconds * 2.0 ** (attempt - 1), self.max_delay_seconds)


class PostgresSupervisor:
    """See the module docstring. ``run()`` is a task of the API server's lifespan."""

    def __init__(
        self, cluster: Cluster, policy: RestartPolicy, *, give_up: Callable[[], None]
    ) -> None:
        self.cluster = cluster
        self.policy = policy
        self.state = PostgresState.RUNNING
        self.failure: str | None = None
        self.restarts = 0
        self._give_up = give_up
        self._on_down: list[Callable[[str], None]] = []
        self._on_up: list[Callable[[], Awaitable[None]]] = []

    def on_down(self, callback: Callable[[str], None]) -> None:
        """``callback(reason)`` runs as soon as PostgreSQL is known to be down."""
        self._on_down.append(callback)

    def on_up(self, callback: Callable[[], Awaitable[None]]) -> None:
        """``await callback()`` runs after a restart, before the APIs serve again."""
        self._on_up.append(callback)

    async def run(self) -> None:
        while True:
            code = await _exit_code(self.cluster)
            reason = f"PostgreSQL exited (code {code}); restarting it"
            log.error("postgres exited unexpectedly (code %s); restarting it", code)
            self.state = PostgresState.RESTARTING
            for down in self._on_down:
                down(reason)
            if not await self._restart():
                return
            for up in self._on_up:
                await up()
            self.state = PostgresState.RUNNING
            self.restarts += 1
            log.warning("postgres is running again (restart %d)", self.restarts)

    async def _restart(self) -> bool:
        problem = ""
        for attempt in range(1, self.policy.max_attempts + 1):
            await asyncio.sleep(self.policy.delay_seconds(attempt))
            try:
                await asyncio.to_thread(self.cluster.start)
            except LocalbaseError as exc:
                problem = str(exc)
                log.warning(
                    "postgres restart %d/%d failed: %s", attempt, self.policy.max_attempts, exc
                )
                continue
            return True
        self.failure = (
            f"PostgreSQL died and could not be restarted ({self.policy.max_attempts} attempts); "
            f"last error: {problem}"
        )
        self.state = PostgresState.FAILED
        log.critical("%s; stopping localbase", self.failure)
        for down in self._on_down:
            down(self.failure)
        self._give_up()
        return False


async def _exit_code(cluster: Cluster) -> int | None:
    """Wait until the cluster's postmaster exits; its exit code (reaped)."""
    process = cluster.process
    if process is None:
        raise RuntimeError("the cluster is not running")
    if process.poll() is None:
        await _pidfd_exit(process)
    return process.wait()


async def _pidfd_exit(process: subprocess.Popen[bytes]) -> None:
    fd = os.pidfd_open(process.pid)
    loop = asyncio.get_running_loop()
    exited = loop.create_future()

    def readable() -> None:
        if not exited.done():
            exited.set_result(None)

    loop.add_reader(fd, readable)
    try:
        await exited
    finally:
        loop.remove_reader(fd)
        with contextlib.suppress(OSError):
            os.close(fd)
