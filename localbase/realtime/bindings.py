"""The ``postgres_changes`` bindings of a join: their ids and their parsed parameters.

A binding is the map the client sent (``{"event", "schema", "table", "filter", "select"}``),
echoed verbatim in the join reply with an ``id``. Supabase uses ``:erlang.phash2`` of the map;
any stable, non-zero 27-bit hash will do, so this is a CRC-32 of the canonical JSON.
Parsing follows ``Subscriptions.parse_subscription_params`` (spec §4.1), texts included.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from localbase.realtime import messages
from localbase.realtime.filters import Condition, FilterSyntaxError, parse

_ID_MASK: Final = 0x7FFFFFF
_ACTIONS: Final = ("INSERT", "UPDATE", "DELETE")


class BindingError(Exception):
    """The binding's parameters are invalid; the text goes into a ``system`` error."""


@dataclass(frozen=True)
class Binding:
    """One binding as the client sent it, with its id."""

    id: int
    params: Mapping[str, Any]

    def echo(self) -> dict[str, Any]:
        return {**self.params, "id": self.id}


@dataclass(frozen=True)
class BindingParams:
    action: str  # "*", "INSERT", "UPDATE" or "DELETE"
    schema: str
    table: str
    conditions: tuple[Condition, ...]
    select: tuple[str, ...] | None

    def log_text(self) -> str:
        return messages.params_to_log(
            self.action,
            self.schema,
            self.table,
            [c.as_tuple() for c in self.conditions],
            self.select,
        )


def binding_id(params: object) -> int:
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return zlib.crc32(canonical.encode()) & _ID_MASK or 1


def action_of(params: Mapping[str, Any]) -> str:
    event = params.get("event")
    if not isinstance(event, str) or event == "*":
        return "*"
    upper = event.upper()
    return upper if upper in _ACTIONS else "*"


def parse_params(params: Mapping[str, Any]) -> BindingParams:
    """Supabase's parsing of one binding; raises :class:`BindingError` with its text."""
    action = action_of(params)
    select = _select(params)
    schema, table, filters = _target(params)
    try:
        conditions = tuple(parse(filters)) if filters is not None else ()
    except FilterSyntaxError as exc:
        raise BindingError(messages.filter_parse_error(exc.reason)) from None
    if select is not None and (schema == "*" or table == "*"):
        raise BindingError(
            "Column selection is not supported for wildcard subscriptions. "
            "Provide an explicit schema and table name."
        )
    return BindingParams(action, schema, table, conditions, select)


def _select(params: Mapping[str, Any]) -> tuple[str, ...] | None:
    value = params.get("select")
    if isinstance(value, list):
        names = tuple(item for item in value if isinstance(item, str))
        return names or None
    if isinstance(value, str):
        raise BindingError(
            "Error parsing `select` params: expected a list of column name "
            'strings, e.g. select: ["col1", "col2"]'
        )
    return None


def _target(params: Mapping[str, Any]) -> tuple[str, str, str | None]:
    schema, table, filters = params.get("schema"), params.get("table"), params.get("filter")
    if isinstance(schema, str) and isinstance(table, str):
        if isinstance(filters, str):
            return schema, table, filters
        if "filter" not in params:
            return schema, table, None
    elif isinstance(schema, str) and "table" not in params and "filter" not in params:
        return schema, "*", None
    elif isinstance(table, str) and "schema" not in params and "filter" not in params:
        return "public", table, None
    if "user_token" in params or "auth_token" in params:
        raise BindingError(
            "No subscription params provided. Please provide at least a "
            "`schema` or `table` to subscribe to: <redacted>"
        )
    raise BindingError(messages.no_subscription_params(params))
