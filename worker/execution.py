"""Run one handler in its mode and stop it when its scope says so.

``run`` returns the handler's result, raises the handler's own exception, or raises
``JobCancelled`` once the handler has really stopped (or was killed / abandoned after the
grace period). The time ``run`` raises is the job's ``stopped_at``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing.connection
import threading
from collections.abc import Callable
from typing import Any

from worker import isolation, logs
from worker.context import JobContext
from worker.handlers import Handler
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
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(handler.fn(ctx, data), name=f"handler-{ctx.job.id}")

    def cancel() -> None:
        task.cancel()

    ctx.scope.on_stop(_in_loop(loop, cancel))
    try:
        await asyncio.wait({task})
    except asyncio.CancelledError:  # the worker itself is being torn down
        task.cancel()
        raise
    if ctx.scope.stopped:
        if not task.cancelled():
            task.exception()  # retrieved, so it is not reported as unhandled
        raise _cancelled(ctx.scope)
    return task.result()


async def _run_thread(handler: Handler, ctx: JobContext, data: dict[str, Any], grace: float) -> Any:
    loop = asyncio.get_running_loop()
    outcome: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def target() -> None:
        try:
            outcome.set_result(handler.fn(ctx, data))
        except BaseException as exc:
            outcome.set_exception(exc)

    threading.Thread(target=target, name=f"handler-{ctx.job.id}", daemon=True).start()
    finished = asyncio.wrap_future(outcome, loop=loop)
    stop = asyncio.Event()
    ctx.scope.on_stop(_in_loop(loop, stop.set))
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({finished, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if not ctx.scope.stopped:
        return finished.result()
    try:
        await asyncio.wait_for(asyncio.shield(finished), grace)
    except JobCancelled:
        pass
    except TimeoutError:
        # A thread cannot be killed: it is abandoned, and can write nothing (its scope is
        # stopped and every write is fenced). Handlers that may ignore their flag should be
        # declared "isolated".
        logs.event("handler_abandoned", job_id=ctx.job.id, handler=handler.name, grace=grace)
    except Exception:
        pass
    raise _cancelled(ctx.scope)


async def _run_process(
    handler: Handler, ctx: JobContext, data: dict[str, Any], grace: float
) -> Any:
    loop = asyncio.get_running_loop()
    spawn = isolation.process_context()
    receiver, sender = spawn.Pipe(duplex=False)
    process = spawn.Process(
        target=isolation.child_main,
        args=(handler.fn.__module__, handler.fn.__qualname__, data, sender),
        name=f"handler-{ctx.job.id}",
        daemon=True,
    )
    await asyncio.to_thread(process.start)  # never block the loop on a slow start
    sender.close()
    result: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def read() -> None:
        """Pipe reader thread: forwards progress, resolves the result, ends when the child
        is gone (its exit sentinel, not just EOF: another process may hold the pipe open)."""
        try:
            while True:
                ready = multiprocessing.connection.wait([receiver, process.sentinel])
                if receiver not in ready:
                    break
                kind, value = receiver.recv()
                if kind == "progress" and not ctx.scope.stopped:
                    loop.call_soon_threadsafe(_report_soon, ctx, value)
                elif kind == "result":
                    result.set_result(value)
                elif kind == "error":
                    result.set_exception(RuntimeError(str(value).splitlines()[0]))
        except (EOFError, OSError):
            pass
        finally:
            receiver.close()
            process.join()
            if not result.done():
                result.set_exception(
                    RuntimeError(f"handler process exited with code {process.exitcode}")
                )

    threading.Thread(target=read, name=f"pipe-{ctx.job.id}", daemon=True).start()
    finished = asyncio.wrap_future(result, loop=loop)
    stop = asyncio.Event()
    ctx.scope.on_stop(_in_loop(loop, stop.set))
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({finished, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if not ctx.scope.stopped:
        return finished.result()
    await _terminate(process, finished, grace)
    raise _cancelled(ctx.scope)


def _report_soon(ctx: JobContext, value: Any) -> None:
    if isinstance(value, dict) and not ctx.scope.stopped:
        task = asyncio.ensure_future(ctx.progress(**_progress_args(value)))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())


def _progress_args(value: dict[str, Any]) -> dict[str, Any]:
    return {k: value.get(k) for k in ("percent", "stage", "message")}


async def _terminate(process: Any, finished: asyncio.Future[Any], grace: float) -> None:
    """SIGTERM, then SIGKILL after ``grace``; returns once the process is gone."""
    if process.is_alive():
        process.terminate()
    try:
        await asyncio.wait_for(asyncio.shield(finished), grace)
    except TimeoutError:
        process.kill()
        await asyncio.wait({finished})
    except Exception:
        pass
    if not finished.cancelled() and finished.done():
        finished.exception()
