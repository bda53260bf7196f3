"""The Broadcast, Presence and privacy options of a join (spec ``realtime-broadcast.md`` §1.2, §5).

Booleans also accept the strings ``"true"``/``"false"`` in any case; anything else is the
default (an invalid option is never a reason to refuse a join). ``replay`` is read raw: any
``replay`` key, even ``{}`` or ``null``, asks for a replay, which only private channels may do
and which needs an integer ``since`` (epoch milliseconds) and an integer ``limit`` if given
(clamped to 1…25; missing means 25).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

REPLAY_MAX: Final = 25
REPLAY_PUBLIC: Final = "UnableToReplayMessages: Replay is not allowed for public channels"
REPLAY_INVALID: Final = "UnableToReplayMessages: Replay params are not valid"
REPLAY_FAILED: Final = "UnableToReplayMessages: Realtime was unable to replay messages"


class ReplayError(Exception):
    """The join asks for a replay it cannot have; ``str(exc)`` is the join error."""


@dataclass(frozen=True)
class Replay:
    since_ms: int
    limit: int


@dataclass(frozen=True)
class JoinOptions:
    private: bool = False
    self_broadcast: bool = False
    ack: bool = False
    replication_ready: bool = False
    presence_enabled: bool = False
    presence_key: str = ""
    replay: Replay | None = None

    @classmethod
    def parse(cls, config: Mapping[str, Any]) -> JoinOptions:
        """Raises :class:`ReplayError` for a replay that is not allowed or not valid."""
        broadcast = config.get("broadcast")
        broadcast = broadcast if isinstance(broadcast, dict) else {}
        presence = config.get("presence")
        presence = presence if isinstance(presence, dict) else {}
        private = flag(config.get("private"))
        key = presence.get("key")
        return cls(
            private=private,
            self_broadcast=flag(broadcast.get("self")),
            ack=flag(broadcast.get("ack")),
            replication_ready=flag(broadcast.get("replication_ready")),
            presence_enabled=flag(presence.get("enabled")),
            presence_key=key if isinstance(key, str) and key else str(uuid.uuid1()),
            replay=_replay(broadcast, private) if "replay" in broadcast else None,
        )


def flag(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _replay(broadcast: Mapping[str, Any], private: bool) -> Replay:
    if not private:
        raise ReplayError(REPLAY_PUBLIC)
    params = broadcast["replay"]
    if not isinstance(params, dict):
        raise ReplayError(REPLAY_INVALID)
    since, limit = params.get("since"), params.get("limit", REPLAY_MAX)
    if limit is None:
        limit = REPLAY_MAX
    if not isinstance(since, int) or isinstance(since, bool) or not _integer(limit):
        raise ReplayError(REPLAY_INVALID)
    return Replay(since, min(max(int(limit), 1), REPLAY_MAX))


def _integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
