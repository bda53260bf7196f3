"""Verified JWT claims, remembered per token so a signature is checked once, within bounds.

The cache holds at most ``max_entries`` tokens and about ``max_bytes`` of tokens and claims;
the least recently used token goes first. Only tokens whose signature verified are kept, so
a client sending a stream of distinct (even validly signed) tokens costs at most the bound.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ClaimsCache:
    max_entries: int
    max_bytes: int
    _entries: collections.OrderedDict[tuple[str, str], tuple[dict[str, Any], int]] = field(
        default_factory=collections.OrderedDict
    )
    _bytes: int = 0

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str, secret: str) -> dict[str, Any] | None:
        entry = self._entries.get((token, secret))
        if entry is None:
            return None
        self._entries.move_to_end((token, secret))
        return entry[0]

    def put(self, token: str, secret: str, claims: dict[str, Any]) -> None:
        # The claims are decoded from the token, so they take about as much as the token.
        cost = 2 * len(token) + len(secret)
        if cost > self.max_bytes:
            return
        previous = self._entries.pop((token, secret), None)
        if previous is not None:
            self._bytes -= previous[1]
        self._entries[(token, secret)] = (claims, cost)
        self._bytes += cost
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            _, (_, evicted) = self._entries.popitem(last=False)
            self._bytes -= evicted
