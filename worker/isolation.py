"""Running an ``isolated`` handler in a child process that can be killed.

The child reports progress and its result through a pipe. Stopping sends SIGTERM; a child
still alive after the grace period gets SIGKILL. The worker process is never at risk.
"""

from __future__ import annotations

import importlib
import multiprocessing
import traceback
from multiprocessing.connection import Connection
from typing import Any


def child_main(module: str, qualname: str, data: dict[str, Any], conn: Connection) -> None:
    """Entry point in the child: run the handler, send ("progress"|"result"|"error", value)."""
    try:
        fn = getattr(importlib.import_module(module), qualname)
        result = fn(data, lambda progress: conn.send(("progress", progress)))
        conn.send(("result", result))
    except BaseException as exc:  # report anything, the parent decides
        conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}"))
    finally:
        conn.close()


def process_context() -> multiprocessing.context.ForkServerContext:
    """Children come from a fork server: a small process started once (not a fork of the
    worker, which runs threads and an event loop), which forks each child in milliseconds."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["worker.isolation", "worker.demo"])
    return context
