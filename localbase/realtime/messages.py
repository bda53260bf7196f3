"""The exact texts Supabase Realtime puts in ``system`` messages and join errors.

Several of them embed Elixir's ``inspect`` output of the client's parameters (maps, lists,
filter tuples), so this module renders JSON values the way Elixir prints the decoded terms.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

SUBSCRIBED: Final = "Subscribed to PostgreSQL"
TOPIC_REQUIRED: Final = "TopicNameRequired: You must provide a topic name"
TOO_MANY_CHANNELS: Final = "ChannelRateLimitReached: Too many channels"
UNMATCHED_TOPIC: Final = "unmatched topic"
_ESCAPES: Final = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\t": "\\t",
    "\r": "\\r",
    "\f": "\\f",
    "\b": "\\b",
    "\v": "\\v",
    "\a": "\\a",
    "\x1b": "\\e",
}


class Tuple(tuple[object, ...]):
    """A value Elixir prints as a tuple: ``{"col", "eq", "1", false}``."""

    __slots__ = ()


def inspect(value: object) -> str:
    """Elixir's ``inspect/1`` of a decoded JSON term (maps print with sorted keys)."""
    if value is None:
        return "nil"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _inspect_string(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _inspect_float(value)
    if isinstance(value, Tuple):
        return "{" + ", ".join(inspect(item) for item in value) + "}"
    if isinstance(value, Mapping):
        items = sorted(value.items(), key=lambda item: str(item[0]).encode())
        return "%{" + ", ".join(f"{inspect(k)} => {inspect(v)}" for k, v in items) + "}"
    if isinstance(value, Sequence):
        return "[" + ", ".join(inspect(item) for item in value) + "]"
    return repr(value)


def _inspect_string(value: str) -> str:
    out = []
    for index, char in enumerate(value):
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif char == "#" and value[index + 1 : index + 2] == "{":
            out.append("\\#")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _inspect_float(value: float) -> str:
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        if "." not in mantissa:
            mantissa += ".0"
        return f"{mantissa}e{int(exponent)}"
    return text


def to_log(value: object) -> str:
    """``Realtime.Logs.to_log``: strings as they are, anything else inspected."""
    return value if isinstance(value, str) else inspect(value)


def params_to_log(
    action: str, schema: str, table: str, filters: Sequence[Tuple], select: Sequence[str] | None
) -> str:
    return (
        f"event: {action}, schema: {schema}, table: {table}, "
        f"filters: {inspect(list(filters))}, select: {to_log(select)}"
    )


#: Supabase's ``system`` error when it loses the database; the channel is then closed.
DATABASE_LOST = "Realtime was unable to connect to the project database"
#: … and when a channel asks for database changes while the stream does not come back.
REPLICATION_TIMEOUT = "Replication connection was not established in time"


def not_in_publication(params: str) -> str:
    return (
        "Unable to subscribe to changes with given parameters. Please check Realtime is "
        f"enabled for the given connect parameters: [{params}]"
    )


def subscription_exception(params: str, exception: str) -> str:
    return (
        "Unable to subscribe to changes with given parameters. An exception happened so "
        f"please check your connect parameters: [{params}]. Exception: {exception}"
    )


def filter_parse_error(reason: str) -> str:
    return f"Error parsing `filter` params: {reason}"


def no_subscription_params(params: object) -> str:
    return (
        "No subscription params provided. Please provide at least a `schema` or `table` "
        f"to subscribe to: {inspect(params)}"
    )


def private_unauthorized(sub_topic: str) -> str:
    return f"Unauthorized: You do not have permissions to read from this Channel topic: {sub_topic}"


def bad_map(value: object) -> str:
    return f"UnknownErrorOnChannel: expected a map, got: {inspect(value)}"
