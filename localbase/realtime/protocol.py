"""Phoenix channel frames, serializer version 1.0.0 (JSON objects in text frames, spec §1.3).

Client frames carry ``topic``, ``event``, ``payload``, ``ref`` and optionally ``join_ref``.
Server frames carry exactly ``topic``, ``event``, ``payload`` and ``ref`` (never ``join_ref``);
pushes have ``"ref": null``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from localbase import strict_json

PHOENIX: Final = "phoenix"
TOPIC_PREFIX: Final = "realtime:"
_COMPACT: Final = (",", ":")
#: Frames nested deeper than this are malformed (replies quote parts of them back).
MAX_DEPTH: Final = 64


class FrameError(ValueError):
    """A client frame is not a Phoenix message; it is logged and ignored."""


@dataclass(frozen=True, slots=True)
class Frame:
    topic: Any
    event: Any
    payload: Any
    ref: Any
    join_ref: Any = None


def decode(text: str) -> Frame:
    """A client frame. JSON that Phoenix's decoder refuses (``NaN``, unpaired surrogates such
    as ``"\\ud800"``, nesting past the decoder's limit) is malformed too."""
    try:
        message = strict_json.loads(text, max_depth=MAX_DEPTH)
    except strict_json.JsonInputError as exc:
        raise FrameError(f"not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise FrameError("not a JSON object")
    missing = [key for key in ("topic", "event", "payload", "ref") if key not in message]
    if missing:
        raise FrameError(f"missing {', '.join(missing)}")
    return Frame(
        message["topic"],
        message["event"],
        message["payload"],
        message["ref"],
        message.get("join_ref"),
    )


def dumps(value: object) -> str:
    return json.dumps(value, separators=_COMPACT, ensure_ascii=False)


def encode(topic: object, event: str, payload: object, ref: object = None) -> str:
    return dumps({"topic": topic, "event": event, "payload": payload, "ref": ref})


def reply(topic: object, ref: object, status: str, response: object) -> str:
    return encode(topic, "phx_reply", {"status": status, "response": response}, ref)


def error_reply(topic: object, ref: object, reason: str) -> str:
    return reply(topic, ref, "error", {"reason": reason})


def close(topic: str, join_ref: object) -> str:
    return encode(topic, "phx_close", {}, join_ref)


def system(topic: str, extension: str, status: str, message: str) -> str:
    channel = topic.removeprefix(TOPIC_PREFIX)
    return encode(
        topic,
        "system",
        {"channel": channel, "extension": extension, "message": message, "status": status},
    )


def postgres_changes(topic_json: str, ids: list[int], data_json: str) -> str:
    """A change event; ``data_json`` is shared by every channel that gets the same view."""
    id_list = ",".join(str(i) for i in ids)
    return (
        f'{{"topic":{topic_json},"event":"postgres_changes",'
        f'"payload":{{"ids":[{id_list}],"data":{data_json}}},"ref":null}}'
    )
