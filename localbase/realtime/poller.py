"""The ``hosted`` profile's change capture: a poller over a logical slot, as Supabase's
``replication_poller`` (spec ``realtime.md`` §6).

A temporary ``pgoutput`` slot is read through SQL (``pg_logical_slot_get_binary_changes``) with
at most ``max_changes`` changes per poll (the slot only stops at transaction boundaries, so a
large transaction comes whole). The cadence is hosted's:

* rows were delivered to someone: poll again at once;
* the slot had changes but none was delivered: wait ``interval`` plus 50–100 ms of jitter;
* nothing: wait ``interval × 5`` (500 ms).

Matching subscriptions and checking RLS happen when a change is polled, not when it commits.
A failing poll is retried with exponential backoff (100 ms to 5 s) on a new connection and slot;
changes committed meanwhile are lost, as hosted's temporary slot loses them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

import psycopg

from localbase.replication import PUBLICATION, PgOutputDecoder, Transaction

log = logging.getLogger("localbase.realtime")

_SESSION: Final = "-c TimeZone=UTC -c DateStyle=ISO,MDY -c IntervalStyle=postgres"
_POLL_SQL: Final = (
    "select data from pg_logical_slot_get_binary_changes(%s, null, %s,"
    " 'proto_version', '1', 'publication_names', %s)"
)
_JITTER_MS: Final = (50, 100)
_IDLE_FACTOR: Final = 5
_MAX_BACKOFF: Final = 5.0


@dataclass
class PollStats:
    """What the poller did, for ``/realtime/v1/metrics``."""

    polls: int = 0
    changes: int = 0
    waits: dict[str, int] = field(
        default_factory=lambda: {"delivered": 0, "unmatched": 0, "idle": 0}
    )
    last_poll_ms: float = 0.0

    def status(self) -> dict[str, object]:
        return {
            "polls": self.polls,
            "changes": self.changes,
            "next_poll_after": dict(self.waits),
            "last_poll_ms": round(self.last_poll_ms, 2),
        }


#: Delivers polled transactions; returns how many frames went out.
Deliver = Callable[[Sequence[Transaction]], Awaitable[int]]


class Poller:
    """See the module docstring; ``run()`` polls until cancelled."""

    def __init__(
        self,
        dsn: str,
        deliver: Deliver,
        *,
        interval_ms: int = 100,
        max_changes: int = 100,
        publication: str = PUBLICATION,
    ) -> None:
        self.stats = PollStats()
        self._dsn = dsn
        self._deliver = deliver
        self._interval = interval_ms / 1000
        self._max_changes = max_changes
        self._publication = publication
        self._slot = f"localbase_realtime_poller_{os.getpid()}"

    async def run(self) -> None:
        backoff = 0.1
        while True:
            try:
                await self._poll_forever()
            except (psycopg.Error, OSError) as exc:
                log.warning(
                    "realtime poller failed (%s); changes until it is back are not delivered;"
                    " retrying in %.1f s",
                    str(exc).strip(),
                    backoff,
                )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF)

    async def _poll_forever(self) -> None:
        async with await psycopg.AsyncConnection.connect(
            self._dsn, autocommit=True, options=_SESSION, application_name="localbase_poller"
        ) as conn:
            await conn.execute(
                "select pg_create_logical_replication_slot(%s, 'pgoutput', true)", (self._slot,)
            )
            log.info("realtime poller started (slot %s)", self._slot)
            decoder = PgOutputDecoder()
            while True:
                wait = await self._poll(conn, decoder)
                await asyncio.sleep(wait)  # the cadence itself: hosted's poll interval

    async def _poll(self, conn: psycopg.AsyncConnection, decoder: PgOutputDecoder) -> float:
        """One poll; the wait before the next one."""
        started = time.monotonic()
        cursor = await conn.execute(_POLL_SQL, (self._slot, self._max_changes, self._publication))
        transactions = []
        for (data,) in await cursor.fetchall():
            transaction = decoder.feed(bytes(data))
            if transaction is not None:
                transactions.append(transaction)
        self.stats.polls += 1
        changes = sum(len(t.changes) for t in transactions)
        self.stats.changes += changes
        delivered = await self._deliver(transactions) if changes else 0
        self.stats.last_poll_ms = (time.monotonic() - started) * 1000
        if delivered:
            self.stats.waits["delivered"] += 1
            return 0.0
        if changes:
            self.stats.waits["unmatched"] += 1
            return self._interval + random.uniform(*_JITTER_MS) / 1000
        self.stats.waits["idle"] += 1
        return self._interval * _IDLE_FACTOR
