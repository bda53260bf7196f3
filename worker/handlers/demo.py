"""Demo handlers, one per stopping mode. Tests and benchmarks use them.

Kept free of heavy imports: ``stubborn`` runs in a freshly spawned child process.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from worker.context import JobContext


def _number(value: Any, default: float) -> float:
    return float(value) if isinstance(value, int | float) and value >= 0 else default


async def sleep(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]:
    """``{"seconds": 1, "step": 0.1}``: sleeps in steps, reporting progress (cooperative)."""
    seconds, step = _number(data.get("seconds"), 1.0), max(_number(data.get("step"), 0.1), 0.001)
    began = time.monotonic()
    while (elapsed := time.monotonic() - began) < seconds:
        await ctx.progress(100 * elapsed / seconds, "sleeping")
        await asyncio.sleep(min(step, seconds - elapsed))
    return {"slept": seconds}


async def noop(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]:
    """Does nothing: measures the job system itself."""
    return {}


def blocking(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]:
    """``{"seconds": 1, "check_every": 0.01}``: blocks a thread, checking its stop flag."""
    seconds = _number(data.get("seconds"), 1.0)
    check_every = max(_number(data.get("check_every"), 0.01), 0.0005)
    began = last_report = time.monotonic()
    while (elapsed := time.monotonic() - began) < seconds:
        time.sleep(min(check_every, seconds - elapsed))  # a unit of uninterruptible work
        ctx.check()
        if time.monotonic() - last_report >= 0.25:
            ctx.report(100 * elapsed / seconds, "working")
            last_report = time.monotonic()
    return {"worked": seconds}


def stubborn(data: dict[str, Any], report: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """``{"seconds": 5}``: ignores every polite stop request; only a kill ends it (isolated)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    seconds = _number(data.get("seconds"), 5.0)
    began = time.monotonic()
    while (elapsed := time.monotonic() - began) < seconds:
        report({"percent": 100 * elapsed / seconds, "stage": "ignoring you"})
        time.sleep(0.05)
    return {"survived": seconds}


async def fail(ctx: JobContext, data: dict[str, Any]) -> None:
    """``{"message": "…"}``: raises, so the retry policy can be seen at work."""
    raise RuntimeError(str(data.get("message") or "demo failure"))
