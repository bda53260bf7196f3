"""Run one handler in its mode and stop it when its scope says so.

``run`` returns the handler's result, raises the handler's own exception, or raises
``JobCancelled`` once nothing of the handler runs any more: its task has ended, its thread
has returned, or its process has exited (killed after the grace period if need be). The time
``run`` raises is the job's ``stopped_at``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any

from worker import isolation, logs
from worker.context import JobContext
from worker.registry import Handler
from worker.stopping import CancelScope, JobCancelled


def _in_loop(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> Callable[[], None]:
    """A stop callback that runs ``callback`` on ``loop``, directly when already there."""

    def call() -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            callback()
        else:
            loop.call_soon_threadsafe(callback)

    return call


def _cancelled(scope: CancelScope) -> JobCancelled:
    assert scope.reason is not None
    return JobCancelled(scope.reason)


async def run(handler: Handler, ctx: JobContext, grace: float) -> Any:
    data = dict(ctx.job.input_data)
    if handler.mode == "cooperative":
        return await _run_task(handler, ctx, data)
    if handler.mode == "blocking":
        return await _run_thread(handler, ctx, data, grace)
    return await _run_process(handler, ctx, data, grace)


async def _run_task(handler: Handler, ctx: JobContext, data: dict[str, Any]) -> Any:
    task = asyncio.create_task(handler.fn(ctx, data), name=f"handler-{ctx.job.id}")
    return await _until_stopped(task, ctx.scope)


async def _run_thread(handler: Handler, ctx: JobContext, data: dict[str, Any], grace: float) -> Any:
    loop = asyncio.get_running_loop()
    outcome: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def target() -> None:
        try:
            outcome.set_result(handler.fn(ctx, data))
        except BaseException as exc:
            outcome.set_exception(exc)

    thread = threading.Thread(target=target, name=f"handler-{ctx.job.id}", daemon=True)
    thread.start()
    finished = asyncio.wrap_future(outcome, loop=loop)
    finished.add_done_callback(lambda _: thread.join())  # only the thread's exit is left
    stop = asyncio.Event()
    ctx.scope.on_stop(_in_loop(loop, stop.set))
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({finished, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if not ctx.scope.stopped:
        return finished.result()
    # A thread cannot be killed. The stop is recorded, and the slot freed, only once the
    # thread has returned: until then the job still runs. Handlers that may ignore their flag
    # must be declared "isolated".
    done, _ = await asyncio.wait({finished}, timeout=grace)
    if not done:
        logs.event("handler_unresponsive", job_id=ctx.job.id, handler=handler.name, grace=grace)
        await asyncio.wait({finished})
    if not finished.cancelled():
        finished.exception()  # retrieved: JobCancelled, the handler's own error, or None
    raise _cancelled(ctx.scope)


async def _run_process(
    handler: Handler, ctx: JobContext, data: dict[str, Any], grace: float
) -> Any:
    call = isolation.call(
        handler.fn,
        (data,),
        report=lambda value: _report_soon(ctx, value),
        grace_seconds=grace,
        name=f"handler-{ctx.job.id}",
    )
    task = asyncio.create_task(call, name=f"isolated-{ctx.job.id}")
    return await _until_stopped(task, ctx.scope)


async def _until_stopped(task: asyncio.Task[Any], scope: CancelScope) -> Any:
    """Await ``task``, cancelled when the job's scope stops; raises ``JobCancelled`` only once
    the task has ended."""

    def cancel() -> None:
        task.cancel()

    scope.on_stop(_in_loop(asyncio.get_running_loop(), cancel))
    try:
        await asyncio.wait({task})
    except asyncio.CancelledError:  # the worker itself is being torn down
        task.cancel()
        raise
    if scope.stopped:
        if not task.cancelled():
            task.exception()  # retrieved, so it is not reported as unhandled
        raise _cancelled(scope)
    return task.result()


def _report_soon(ctx: JobContext, value: Any) -> None:
    if isinstance(value, dict) and not ctx.scope.stopped:
        task = asyncio.ensure_future(ctx.progress(**_progress_args(value)))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())


def _progress_args(value: dict[str, Any]) -> dict[str, Any]:
    return {k: value.get(k) for k in ("percent", "stage", "message")}
