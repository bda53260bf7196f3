"""Final writes that outlast a flaky network or a restarting Supabase.

A job's outcome (its completion, its failure, its ``stopped`` record, its hand-back) must
reach the database, or the job stays ``processing`` for good. ``persist`` retries the call on
transient errors (the connection failed or dropped, the server or its database pool is
temporarily down) with capped exponential backoff until a deadline, and raises anything else
at once. Every such write is fenced or idempotent in SQL, so sending it twice is harmless.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
from postgrest.exceptions import APIError
from storage3.exceptions import StorageApiError

from worker import logs

T = TypeVar("T")

FIRST_DELAY_SECONDS = 0.1
MAX_DELAY_SECONDS = 5.0

#: SQLSTATE classes and PostgREST codes that say "try again": connection exceptions (08),
#: operator intervention such as a restarting server (57P), insufficient resources (53),
#: serialization failures and deadlocks, PostgREST's own connection errors (PGRST000–003),
#: and the internal error of a pool that could not get a connection (XX000).
TRANSIENT_CODES = ("08", "57P", "53", "40001", "40P01", "PGRST000", "PGRST001", "PGRST002",
                   "PGRST003", "XX000")  # fmt: skip


def is_transient(exc: BaseException) -> bool:
    """Whether the same call may succeed if sent again."""
    if isinstance(exc, httpx.TransportError):
        return True
    if isinstance(exc, APIError):
        code = str(exc.code or "")
        return code.startswith(TRANSIENT_CODES) or (code.isdecimal() and int(code) >= 500)
    if isinstance(exc, StorageApiError):
        return str(exc.status).isdecimal() and int(exc.status) >= 500
    return False


async def persist(
    call: Callable[[], Awaitable[T]], what: str, deadline_seconds: float, **fields: Any
) -> T:
    """``call()``'s result, retrying transient errors until ``deadline_seconds`` have passed."""
    give_up = time.monotonic() + deadline_seconds
    delay = FIRST_DELAY_SECONDS
    while True:
        try:
            return await call()
        except Exception as exc:
            if not is_transient(exc) or time.monotonic() + delay > give_up:
                raise
            logs.event("write_retry", what=what, delay=delay, error=repr(exc)[:200], **fields)
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_DELAY_SECONDS)
