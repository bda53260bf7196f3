"""Presence: who tracks what on a topic, and the frames that tell the members (spec
``realtime-broadcast.md`` §7).

Each channel tracks at most one meta under its presence key. A meta is the tracked object plus
``phx_ref`` (16 characters of URL-safe base64: an 8-byte nanosecond timestamp and 4 random
bytes, as ``phoenix_pubsub`` makes them); an update carries ``phx_ref_prev``. Diffs are computed
at once (one node) and go to every member allowed to read presence, the tracker included.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from localbase.realtime import protocol

TopicKey = tuple[str, bool]  # (name without ``realtime:``, private)
#: A channel may track/untrack this often within ``CALLS_WINDOW_SECONDS`` of its first call.
MAX_CALLS: Final = 5
CALLS_WINDOW_SECONDS: Final = 30.0


def phx_ref() -> str:
    raw = time.time_ns().to_bytes(8, "big") + os.urandom(4)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class Member(Protocol):
    """A channel as presence sees it."""

    topic_json: str

    def reads_presence(self) -> bool: ...

    def deliver(self, frame: str) -> None: ...


@dataclass
class Tracked:
    key: str
    meta: dict[str, Any]  # the payload plus phx_ref (and phx_ref_prev after an update)


class Presences:
    """Tracked metas by topic; see the module docstring."""

    def __init__(self) -> None:
        self._tracked: dict[TopicKey, dict[Member, Tracked]] = {}

    def state(self, topic: TopicKey) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """The ``presence_state`` payload: every key with its metas."""
        state: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for tracked in self._tracked.get(topic, {}).values():
            state.setdefault(tracked.key, {"metas": []})["metas"].append(tracked.meta)
        return state

    def track(
        self, topic: TopicKey, member: Member, key: str, payload: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Track or update; the (joins, leaves) of the diff, or ``None`` if nothing changed."""
        members = self._tracked.setdefault(topic, {})
        old = members.get(member)
        if old is not None and _payload(old.meta) == payload:
            return None
        meta = {**payload, "phx_ref": phx_ref()}
        leaves: dict[str, Any] = {}
        if old is not None:
            meta["phx_ref_prev"] = old.meta["phx_ref"]
            leaves = {old.key: {"metas": [old.meta]}}
        members[member] = Tracked(key, meta)
        return {key: {"metas": [meta]}}, leaves

    def untrack(self, topic: TopicKey, member: Member) -> dict[str, Any] | None:
        """Forget the member's meta; the leaves of the diff, or ``None`` if it tracked nothing."""
        members = self._tracked.get(topic)
        if not members or member not in members:
            return None
        old = members.pop(member)
        if not members:
            del self._tracked[topic]
        return {old.key: {"metas": [old.meta]}}

    def tracked(self, topic: TopicKey) -> int:
        return len(self._tracked.get(topic, {}))


def diff_frame(topic_json: str, joins: dict[str, Any], leaves: dict[str, Any]) -> str:
    payload = protocol.dumps({"joins": joins, "leaves": leaves})
    return f'{{"topic":{topic_json},"event":"presence_diff","payload":{payload},"ref":null}}'


def send_diff(members: Iterable[Member], joins: dict[str, Any], leaves: dict[str, Any]) -> None:
    frame: str | None = None
    for member in members:
        if member.reads_presence():
            frame = frame or diff_frame(member.topic_json, joins, leaves)
            member.deliver(frame)


def _payload(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if k not in ("phx_ref", "phx_ref_prev")}


class CallWindow:
    """The per-channel presence rate: at most ``MAX_CALLS`` within 30 s of the first."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._first = 0.0
        self._calls = 0

    def allow(self) -> bool:
        now = self._clock()
        if self._calls == 0 or now - self._first > CALLS_WINDOW_SECONDS:
            self._first, self._calls = now, 0
        self._calls += 1
        return self._calls <= MAX_CALLS
