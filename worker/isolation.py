"""Running a function in a child process that can really be stopped.

``call`` runs ``fn(*args, report)`` in a child forked from a small fork server, with optional
memory (``RLIMIT_AS``) and CPU-time (``RLIMIT_CPU``) limits. The child reports progress and
its result through a pipe. ``call`` returns or raises only once the child has exited: when
the awaiting task is cancelled, the child is killed (SIGTERM, then SIGKILL after
``grace_seconds``; at once when that is 0) and the cancellation goes on only after the child
is gone. Nothing of the call outlives it, and the worker process is never at risk.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib
import multiprocessing
import multiprocessing.connection
import resource
import signal
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from worker.errors import IsolatedProcessDied, PermanentError, ResourceLimitExceeded

Report = Callable[[Any], None]

#: Imported once by the fork server, so each child starts in milliseconds instead of importing
#: the parsing libraries again (about a second). (A program started as a script, not with
#: ``python -m`` as the worker is, has its main module imported again in every child.)
PRELOAD = [
    "worker.isolation",
    "worker.handlers.demo",
    "worker.handlers.documents",
    "ebooklib.epub",
    "lxml.etree",
    "pypdf",
    "pypdf.generic",
]


@dataclass(frozen=True)
class ProcessLimits:
    """Limits of one child process; ``None`` is no limit."""

    memory_bytes: int | None = None
    cpu_seconds: int | None = None

    def apply(self) -> None:
        """In the child, before the function runs."""
        if self.memory_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (self.memory_bytes, self.memory_bytes))
        if self.cpu_seconds:
            resource.setrlimit(resource.RLIMIT_CPU, (self.cpu_seconds, self.cpu_seconds + 5))

    def memory_exceeded(self) -> ResourceLimitExceeded:
        limit = f"{self.memory_bytes / 2**20:,.0f} MiB" if self.memory_bytes else "none"
        return ResourceLimitExceeded(f"needed more memory than allowed; limit {limit}")

    def cpu_exceeded(self) -> ResourceLimitExceeded:
        return ResourceLimitExceeded(
            f"used more than {self.cpu_seconds} CPU seconds; limit {self.cpu_seconds} s"
        )


@dataclass(frozen=True)
class ChildError:
    """An exception raised in the child, as the parent rebuilds it."""

    kind: str
    message: str
    permanent: bool

    def exception(self) -> Exception:
        text = self.message or self.kind
        return PermanentError(text) if self.permanent else RuntimeError(f"{self.kind}: {text}")


def child_main(
    module: str, qualname: str, args: tuple[Any, ...], conn: Connection, limits: ProcessLimits
) -> None:
    """Entry point in the child: run the function, send ("progress"|"result"|"error", value)."""
    out_of_memory = False
    try:
        limits.apply()
        fn = getattr(importlib.import_module(module), qualname)
        result = fn(*args, lambda progress: conn.send(("progress", progress)))
        conn.send(("result", result))
    except MemoryError:
        out_of_memory = True  # sent below, once the failed frames have let go of their memory
    except BaseException as exc:  # report anything, the parent decides
        error = ChildError(
            f"{type(exc).__name__}", str(exc).strip()[:2000], isinstance(exc, PermanentError)
        )
        _send_quietly(conn, ("error", error))
        if not error.permanent:
            traceback.print_exc(limit=5)
    if out_of_memory:
        _send_quietly(conn, ("memory", None))
    conn.close()


def _send_quietly(conn: Connection, message: tuple[str, Any]) -> None:
    with contextlib.suppress(OSError, MemoryError):  # the parent reads the exit status then
        conn.send(message)


def process_context() -> multiprocessing.context.ForkServerContext:
    """Children come from a fork server: a small process started once (not a fork of the
    worker, which runs threads and an event loop), which forks each child in milliseconds."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


async def call(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    *,
    report: Report,
    limits: ProcessLimits | None = None,
    grace_seconds: float = 0.0,
    name: str = "isolated",
) -> Any:
    """``fn(*args, report)`` in a child process; see the module docstring."""
    limits = limits or ProcessLimits()
    loop = asyncio.get_running_loop()
    context = process_context()
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=child_main,
        args=(fn.__module__, fn.__qualname__, args, sender, limits),
        name=name,
        daemon=True,
    )
    await asyncio.to_thread(process.start)  # never block the loop on a slow start
    sender.close()
    outcome: concurrent.futures.Future[Any] = concurrent.futures.Future()
    reader = _Reader(receiver, process, outcome, loop, report, limits)
    threading.Thread(target=reader.run, name=f"pipe-{name}", daemon=True).start()
    finished = asyncio.wrap_future(outcome, loop=loop)
    try:
        return await asyncio.shield(finished)
    except asyncio.CancelledError:
        await _end(process, finished, grace_seconds)
        raise


async def _end(process: Any, finished: asyncio.Future[Any], grace_seconds: float) -> None:
    """Stop the child (SIGTERM, SIGKILL after the grace; SIGKILL at once without one) and
    return once it is gone."""
    if grace_seconds > 0:
        _signal(process, signal.SIGTERM)
        done, _ = await asyncio.wait({finished}, timeout=grace_seconds)
        if done:
            _retrieve(finished)
            return
    _signal(process, signal.SIGKILL)
    await asyncio.wait({finished})
    _retrieve(finished)


def _signal(process: Any, signum: signal.Signals) -> None:
    if process.exitcode is None:
        with contextlib.suppress(OSError, ValueError):  # already gone
            process.kill() if signum == signal.SIGKILL else process.terminate()


def _retrieve(finished: asyncio.Future[Any]) -> None:
    if not finished.cancelled():
        finished.exception()  # retrieved, so it is not reported as unhandled


class _Reader:
    """The pipe's reader thread: forwards progress, and settles the outcome once the child
    has exited (its exit sentinel, not just EOF)."""

    def __init__(
        self,
        receiver: Connection,
        process: Any,
        outcome: concurrent.futures.Future[Any],
        loop: asyncio.AbstractEventLoop,
        report: Report,
        limits: ProcessLimits,
    ) -> None:
        self.receiver = receiver
        self.process = process
        self.outcome = outcome
        self.loop = loop
        self.report = report
        self.limits = limits
        self.result: tuple[Any] | None = None
        self.failure: Exception | None = None

    def run(self) -> None:
        try:
            while True:
                ready = multiprocessing.connection.wait([self.receiver, self.process.sentinel])
                if self.receiver not in ready:
                    break
                self._handle(*self.receiver.recv())
        except (EOFError, OSError):
            pass
        finally:
            self.receiver.close()
            self.process.join()
            self._settle()

    def _handle(self, kind: str, value: Any) -> None:
        if kind == "progress":
            self.loop.call_soon_threadsafe(self.report, value)
        elif kind == "result":
            self.result = (value,)
        elif kind == "memory":
            self.failure = self.limits.memory_exceeded()
        elif kind == "error" and isinstance(value, ChildError):
            self.failure = value.exception()

    def _settle(self) -> None:
        if self.result is not None:
            self.outcome.set_result(self.result[0])
        else:
            self.outcome.set_exception(self.failure or self._death())

    def _death(self) -> Exception:
        code = self.process.exitcode
        if code == -signal.SIGXCPU and self.limits.cpu_seconds:
            return self.limits.cpu_exceeded()
        if code == -signal.SIGKILL:
            return IsolatedProcessDied("the handler process was killed (out of memory?)")
        return IsolatedProcessDied(f"the handler process exited with code {code}")
