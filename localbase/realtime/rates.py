"""The project-wide messages-per-second cap (``max_events_per_second``), as Supabase counts it.

Every event counts once per receiver: a ``postgres_changes`` change once per subscriber that
gets it, a broadcast once when sent and once per channel it reaches (spec ``realtime.md`` §1.6,
``realtime-broadcast.md`` §9). The rate is a rolling average: every tick (5 s) the events of the
tick become one bucket (events per second); the average of the last 12 buckets is compared with
the limit, and the project is *limited* from that tick on while the average is at or over it.
While limited, database changes and database broadcasts are consumed and dropped; the dropped
events are counted and logged at most once per second.
"""

from __future__ import annotations

import collections
import logging
import time
from dataclasses import dataclass
from typing import Final

log = logging.getLogger("localbase.realtime")

TICK_SECONDS: Final = 5.0
BUCKETS: Final = 12


@dataclass
class Dropped:
    """Events dropped because the project was over its limit, by source."""

    postgres_changes: int = 0
    broadcast: int = 0


class EventRate:
    """See the module docstring. ``limit`` ``None`` counts but never limits."""

    def __init__(self, limit: int | None, *, tick_seconds: float = TICK_SECONDS) -> None:
        self.limit = limit
        self.dropped = Dropped()
        self._tick = tick_seconds
        self._buckets: collections.deque[float] = collections.deque(maxlen=BUCKETS)
        self._count = 0
        self._total = 0
        self._tick_end = time.monotonic() + tick_seconds
        self._limited = False
        self._logged = Dropped()

    @property
    def limited(self) -> bool:
        self._roll()
        return self._limited

    @property
    def average(self) -> float:
        self._roll()
        return sum(self._buckets) / len(self._buckets) if self._buckets else 0.0

    def add(self, events: int = 1) -> None:
        self._roll()
        self._count += events
        self._total += events

    def would_exceed(self, events: int) -> bool:
        """Whether ``events`` more now would put the average over the limit (REST batches)."""
        return self.limit is not None and self.average + events > self.limit

    def drop(self, source: str, events: int = 1) -> None:
        if source == "postgres_changes":
            self.dropped.postgres_changes += events
        else:
            self.dropped.broadcast += events

    def log_drops(self) -> None:
        """Log what was dropped since the last call (called once per second)."""
        changes = self.dropped.postgres_changes - self._logged.postgres_changes
        broadcasts = self.dropped.broadcast - self._logged.broadcast
        if changes or broadcasts:
            log.warning(
                "over max_events_per_second=%s (average %.1f/s): dropped %d change event(s)"
                " and %d broadcast(s) in the last second",
                self.limit,
                self.average,
                changes,
                broadcasts,
            )
        self._logged = Dropped(self.dropped.postgres_changes, self.dropped.broadcast)

    def status(self) -> dict[str, object]:
        return {
            "max_events_per_second": self.limit,
            "average_per_second": round(self.average, 2),
            "limited": self.limited,
            "events": self._total,
            "dropped": {
                "postgres_changes": self.dropped.postgres_changes,
                "broadcast": self.dropped.broadcast,
            },
        }

    def _roll(self) -> None:
        now = time.monotonic()
        if now < self._tick_end:
            return
        ticks = int((now - self._tick_end) // self._tick) + 1
        self._buckets.append(self._count / self._tick)
        for _ in range(min(ticks - 1, BUCKETS)):
            self._buckets.append(0.0)
        self._count = 0
        self._tick_end += ticks * self._tick
        average = sum(self._buckets) / len(self._buckets)
        self._limited = self.limit is not None and average >= self.limit
