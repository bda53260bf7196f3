"""When a streamed commit is visible: reads that must see the database *with* the change.

pgoutput streams a transaction as soon as its commit record is flushed to WAL. The committing
backend leaves the ProcArray only after that (right after, or once a synchronous standby has
confirmed): until then every new snapshot, in any other session, still sees the transaction as
running. Delivery reads the database as it is at delivery time (the RLS check
``exists(select 1 from t where pk = …)``, table facts, column privileges), so such a read can
run in a snapshot that does not contain the change it is about: a committed row looks absent and
its event is dropped, or table facts from before the commit's own DDL are cached.

:class:`Commit` tells whether a snapshot (the text of ``pg_current_snapshot()``, taken in the
same statement as the read) includes the transaction, and waits until new snapshots do.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Final

from psycopg_pool import AsyncConnectionPool

log = logging.getLogger("localbase.realtime")

SNAPSHOT: Final = "pg_current_snapshot()::text"
_XID_SPACE: Final = 1 << 32
_FIRST_PAUSE: Final = 0.0005
_MAX_PAUSE: Final = 0.05
#: The committing backend normally becomes visible microseconds after the flush. A commit held
#: longer (a synchronous standby that does not answer) holds delivery up to this long, then
#: delivery goes on with whatever the database shows.
WAIT_LIMIT: Final = 10.0


def includes(snapshot: str, xid: int) -> bool:
    """Whether ``snapshot`` (``xmin:xmax:xip,…`` with 64-bit ids) sees transaction ``xid``
    (its low 32 bits, as pgoutput sends it) as finished."""
    xmin_text, xmax_text, running = snapshot.split(":")
    xmax = int(xmax_text)
    full = xmax - (xmax - xid) % _XID_SPACE  # the nearest id with these low bits, at or below xmax
    if xmax - full > _XID_SPACE // 2:
        full += _XID_SPACE  # a recent transaction is within 2^31 of xmax: it is above
    if full >= xmax:
        return False
    return full < int(xmin_text) or str(full) not in running.split(",")


class Commit:
    """One streamed transaction, as seen by the reads made while delivering it."""

    def __init__(self, xid: int, pool: AsyncConnectionPool) -> None:
        self.xid = xid
        self._pool = pool
        self._visible = False

    def seen_in(self, snapshot: str) -> bool:
        """Whether a read made in ``snapshot`` saw the transaction (remembered once true: a
        committed transaction stays visible to every later snapshot)."""
        if not self._visible:
            self._visible = includes(snapshot, self.xid)
        return self._visible

    async def visible(self) -> None:
        """Return once new snapshots include the transaction (at most :data:`WAIT_LIMIT`)."""
        pause, started = _FIRST_PAUSE, time.monotonic()
        while not self._visible:
            if self.seen_in(await self._snapshot()):
                return
            if time.monotonic() - started > WAIT_LIMIT:
                log.warning(
                    "transaction %d committed but still not visible after %.0f s;"
                    " delivering it against the database as it is",
                    self.xid,
                    WAIT_LIMIT,
                )
                self._visible = True
                return
            await asyncio.sleep(pause)
            pause = min(pause * 2, _MAX_PAUSE)

    async def _snapshot(self) -> str:
        async with self._pool.connection() as conn:
            cursor = await conn.execute("select " + SNAPSHOT)
            row = await cursor.fetchone()
        assert row is not None
        return str(row[0])
