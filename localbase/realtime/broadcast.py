"""Broadcast: who is joined to which topic, and delivering a message to them (spec
``realtime-broadcast.md`` §1.3, §2, §4.4–4.5, §8, §9).

Public and private channels of the same name are different topics: a :data:`TopicKey` is the
name (without ``realtime:``) and whether it is private. A message reaches every channel joined
to its topic at delivery time that may read broadcasts (public ones always), except the sender
when it did not ask for ``self``. The frame is built once per message and shared.

Every message counts against the project's messages-per-second rate once when sent and once
per channel it reaches. While the project is over its limit, receivers get the message, then a
``system`` error and ``phx_close``; database broadcasts are dropped.

Database broadcasts are the INSERTs into ``realtime.messages`` of the replication stream, in
commit order: rows with an ``event``, a ``topic`` and a JSON ``payload`` (``send_binary`` rows
never reach protocol 1.0.0 sockets), at most the payload limit in size.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from typing import Final, Protocol

from localbase.realtime.presence import Presences, TopicKey
from localbase.realtime.rates import EventRate
from localbase.replication import RowChange

log = logging.getLogger("localbase.realtime")

TOO_MANY_MESSAGES: Final = "Too many messages per second"
MESSAGES_SCHEMA: Final = "realtime"
MESSAGES_TABLE: Final = "messages"


class Receiver(Protocol):
    """A joined channel as Broadcast sees it."""

    topic_json: str
    replayed: set[str]

    def reads_broadcast(self) -> bool: ...

    def reads_presence(self) -> bool: ...

    def deliver(self, frame: str) -> None: ...

    def shutdown(self, message: str) -> None: ...


def topic_json(name: str) -> str:
    return json.dumps(f"realtime:{name}", ensure_ascii=False)


def frame(topic: str, payload_json: str) -> str:
    return f'{{"topic":{topic},"event":"broadcast","payload":{payload_json},"ref":null}}'


def message_payload(event: str, payload_json: str, message_id: str | None, **meta: bool) -> str:
    """``{"event","meta"?,"payload","type"}`` (the server's map, keys in its order)."""
    parts = [f'{{"event":{json.dumps(event, ensure_ascii=False)}']
    if message_id is not None:
        extra = "".join(f',"{k}":{"true" if v else "false"}' for k, v in meta.items())
        parts.append(f',"meta":{{"id":{json.dumps(message_id, ensure_ascii=False)}{extra}}}')
    parts.append(f',"payload":{payload_json},"type":"broadcast"}}')
    return "".join(parts)


def is_message(change: RowChange) -> bool:
    relation = change.relation
    return relation.schema == MESSAGES_SCHEMA and relation.table == MESSAGES_TABLE


class Hub:
    """Topics, their members and their presences; see the module docstring."""

    def __init__(self, rate: EventRate, max_payload_bytes: int) -> None:
        self.rate = rate
        self.max_payload_bytes = max_payload_bytes
        self.presences = Presences()
        self._members: dict[TopicKey, dict[Receiver, None]] = {}

    def join(self, topic: TopicKey, receiver: Receiver) -> None:
        self._members.setdefault(topic, {})[receiver] = None

    def leave(self, topic: TopicKey, receiver: Receiver) -> None:
        members = self._members.get(topic)
        if members is not None:
            members.pop(receiver, None)
            if not members:
                del self._members[topic]

    def members(self, topic: TopicKey) -> Sequence[Receiver]:
        return list(self._members.get(topic, ()))

    def too_large(self, size: int) -> bool:
        return size > self.max_payload_bytes

    def publish(
        self,
        topic: TopicKey,
        payload_json: str,
        *,
        sender: Receiver | None = None,
        message_id: str | None = None,
    ) -> int:
        """Deliver one broadcast payload; the number of channels reached."""
        limited = self.rate.limited
        receivers = [
            member
            for member in self._members.get(topic, ())
            if member is not sender
            and member.reads_broadcast()
            and (message_id is None or message_id not in member.replayed)
        ]
        if not receivers:
            return 0
        text = frame(receivers[0].topic_json, payload_json)
        for receiver in receivers:
            receiver.deliver(text)
        self.rate.add(len(receivers))
        if limited:
            for receiver in receivers:
                receiver.shutdown(TOO_MANY_MESSAGES)
        return len(receivers)

    def from_database(self, changes: Iterable[RowChange]) -> None:
        """The committed ``realtime.messages`` rows of one transaction, in order."""
        for change in changes:
            if change.kind != "INSERT" or change.new is None:
                continue
            row = change.new
            event, name, payload = row.get("event"), row.get("topic"), row.get("payload")
            message_id, private = row.get("id"), row.get("private")
            if row.get("extension") != "broadcast" or not (
                isinstance(event, str)
                and isinstance(name, str)
                and isinstance(payload, str)
                and isinstance(message_id, str)
                and isinstance(private, str)
            ):
                continue
            if self.too_large(len(payload.encode())):
                log.warning("database broadcast %s on %r over the payload limit", message_id, name)
                continue
            if self.rate.limited:
                self.rate.drop("broadcast")
                continue
            self.rate.add(1)
            body = message_payload(event, payload, message_id)
            self.publish((name, private == "t"), body, message_id=message_id)
