"""``filter`` strings of postgres_changes bindings: parsing and evaluation (spec §4).

Syntax and error texts follow Supabase's ``Subscriptions.parse_subscription_params``:
``col=op.value``, ``col=not.op.value``, ``col=in.(a,b)``, comma-separated conditions ANDed.
Evaluation follows ``realtime.check_equality_op``: both sides cast to the column's type and
compared by Postgres, NULL never matches. When the type's text output is canonical (integers,
booleans, uuid, text with a deterministic collation, enums), ``eq``/``neq``/``in`` compare text
and integer ordering compares numbers, which gives the same answer without a query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from psycopg import sql

from localbase.realtime.catalog import Kind, TypeInfo
from localbase.realtime.messages import Tuple, inspect

OPERATORS: Final = (
    "eq",
    "neq",
    "lt",
    "lte",
    "gt",
    "gte",
    "in",
    "like",
    "ilike",
    "is",
    "match",
    "imatch",
    "isdistinct",
)
_SYMBOLS: Final = {
    "eq": "=",
    "neq": "!=",
    "lt": "<",
    "lte": "<=",
    "gt": ">",
    "gte": ">=",
    "like": "LIKE",
    "ilike": "ILIKE",
    "match": "~",
    "imatch": "~*",
}
_ORDERING: Final = {"lt": int.__lt__, "lte": int.__le__, "gt": int.__gt__, "gte": int.__ge__}
IS_KEYWORDS: Final = ("null", "true", "false", "unknown")
#: Longer filters are refused before they are scanned (Supabase allows 100 ``in`` values).
MAX_FILTER_CHARS: Final = 16 * 1024


class FilterSyntaxError(ValueError):
    """The filter string cannot be parsed; ``reason`` is Supabase's text after the prefix."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Condition:
    """One parsed condition. For ``in`` the value is a Postgres array literal ``{a,b}``."""

    column: str
    op: str
    value: str
    negate: bool

    def as_tuple(self) -> Tuple:
        return Tuple((self.column, self.op, self.value, self.negate))


@dataclass(frozen=True, slots=True)
class TypedCondition:
    """A condition bound to its column's type, with the filter value in canonical text."""

    condition: Condition
    type: TypeInfo
    canonical: tuple[str | None, ...] | None = None  # canonical value(s); None: no fast path
    key: tuple[str, str, str, bool, int] = field(init=False)

    def __post_init__(self) -> None:
        c = self.condition
        object.__setattr__(self, "key", (c.column, c.op, c.value, c.negate, self.type.oid))


def parse(text: str) -> list[Condition]:
    if len(text) > MAX_FILTER_CHARS:
        raise FilterSyntaxError(f"filter is longer than {MAX_FILTER_CHARS} characters")
    trimmed = text.strip()
    if not trimmed:
        return []
    return [_segment(segment) for segment in _split_top_level(trimmed)]


def _split_top_level(text: str) -> list[str]:
    segments: list[str] = []
    current: list[str] = []
    depth, quoted, prev, index = 0, False, "", 0
    while index < len(text):
        char = text[index]
        index += 1
        if quoted and char == "\\" and index < len(text):
            current.append(char + text[index])
            prev = text[index]
            index += 1
            continue
        if quoted:
            quoted = char != '"'
        elif char == '"' and prev in (".", "(", ","):
            quoted = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        elif char == "," and depth == 0:
            segments.append("".join(current))
            current, prev = [], ""
            continue
        current.append(char)
        prev = char
    segments.append("".join(current))
    return segments


def _segment(segment: str) -> Condition:
    trimmed = segment.strip()
    if not trimmed:
        raise FilterSyntaxError("filter must not contain empty segments (check for extra commas)")
    column, equals, rest = trimmed.partition("=")
    if not equals:
        raise FilterSyntaxError(inspect([trimmed]))
    negate = rest.startswith("not.")
    op_value = rest[4:] if negate else rest
    op, dot, value = op_value.partition(".")
    if not dot:
        raise FilterSyntaxError(inspect([op_value]))
    if op not in OPERATORS:
        raise FilterSyntaxError(inspect([op, value]))
    return Condition(column, op, _format_value(op, value), negate)


def _format_value(op: str, value: str) -> str:
    if op == "in":
        if len(value) >= 2 and value[0] == "(" and value[-1] == ")":
            return "{" + value[1:-1] + "}"
        raise FilterSyntaxError("`in` filter value must be wrapped by parentheses")
    if value.startswith('"'):
        unquoted = _unquote(value[1:])
        return value if unquoted is None else unquoted
    return value


def _unquote(rest: str) -> str | None:
    out: list[str] = []
    index = 0
    while index < len(rest):
        char = rest[index]
        if char == '"':
            return "".join(out) if index == len(rest) - 1 else None
        if char == "\\" and index + 1 < len(rest):
            out.append(rest[index + 1])
            index += 2
            continue
        out.append(char)
        index += 1
    return None


def fast_result(typed: TypedCondition, value: str | None) -> bool | None:
    """The condition's outcome for a row value without a query, or ``None`` if unknown."""
    c = typed.condition
    if c.op in ("is", "isdistinct"):
        return None
    if value is None:
        return False
    if typed.canonical is None:
        return None
    if c.op in ("eq", "neq", "in"):
        matched = value in typed.canonical
        if c.op == "neq":
            matched = not matched
        elif not matched and None in typed.canonical:
            return False  # `x = any('{..,NULL}')` is NULL, and so is its negation
        return matched != c.negate
    if c.op in _ORDERING and typed.type.kind is Kind.INT and typed.canonical[0] is not None:
        return _ORDERING[c.op](int(value), int(typed.canonical[0])) != c.negate
    return None


def expression(typed: TypedCondition) -> sql.Composable:
    """SQL for the condition over two placeholders: the row value, then the filter value."""
    c = typed.condition
    cast = sql.SQL("{}::text::{}").format(sql.Placeholder(), typed.type.cast_sql)
    if c.op == "isdistinct":
        word = "IS NOT DISTINCT FROM" if c.negate else "IS DISTINCT FROM"
        return sql.SQL("coalesce({} {} {}, false)").format(cast, sql.SQL(word), cast)
    if c.op == "is":
        word = "IS NOT" if c.negate else "IS"
        keyword = c.value.upper() if c.value in IS_KEYWORDS else "NULL"
        return sql.SQL("coalesce({} {} {}, false)").format(cast, sql.SQL(word), sql.SQL(keyword))
    if c.op == "in":
        array = sql.SQL("{}::text::{}").format(sql.Placeholder(), typed.type.array_cast_sql)
        test: sql.Composable = sql.SQL("{} = any({})").format(cast, array)
    else:
        test = sql.SQL("{} {} {}").format(cast, sql.SQL(_SYMBOLS[c.op]), cast)
    if c.negate:
        test = sql.SQL("not ({})").format(test)
    return sql.SQL("coalesce({}, false)").format(test)


def parameters(typed: TypedCondition, value: str | None) -> Sequence[str | None]:
    if typed.condition.op == "is":
        return [value]
    return [value, typed.condition.value]
