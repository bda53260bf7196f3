"""Column values as JSON text, exactly as Postgres ``to_jsonb(<text>::<type>)`` renders them.

Supabase's ``realtime.cast`` turns every WAL value into ``to_jsonb(value::type)``. For the
common types the result follows directly from the text output (in a UTC, ISO DateStyle
session), so it is built here; anything else (arrays, json, domains, extension types, values
outside the simple shapes) is converted by Postgres itself, one query per change.

bytea is the exception, as on Supabase: hex digits without the ``\\x`` prefix.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Sequence
from typing import Final

import psycopg
from psycopg import sql

from localbase.realtime.catalog import Kind, TypeInfo

_NUMBER: Final = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?\Z")
_TIMESTAMPTZ: Final = re.compile(
    r"(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d{1,6})?)([+-]\d\d)(:\d\d)?\Z"
)
_TIMESTAMP: Final = re.compile(r"(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d{1,6})?)\Z")
_DATE: Final = re.compile(r"\d{4}-\d\d-\d\d\Z")


#: ``json.dumps(text, ensure_ascii=False)`` without building an encoder per call: a frame has
#: dozens of strings, and this is the hot path of fan-out.
string: Final[Callable[[str], str]] = json.JSONEncoder(ensure_ascii=False).encode


@functools.lru_cache(maxsize=4096)
def name(text: str) -> str:
    """A column or table name as JSON (names repeat in every frame)."""
    return string(text)


def fast_json(text: str, kind: Kind) -> str | None:
    """The JSON for ``text`` of a column of ``kind``, or ``None`` when Postgres must decide."""
    if kind is Kind.STRING:
        return string(text)
    if kind is Kind.INT or kind is Kind.JSONB:
        return text
    if kind is Kind.BOOL:
        return "true" if text == "t" else "false"
    if kind is Kind.FLOAT:
        return text if _NUMBER.match(text) else string(text)
    if kind is Kind.BYTEA:
        return string(text[2:] if text.startswith("\\x") else text)
    return _datetime_json(text, kind)


def _datetime_json(text: str, kind: Kind) -> str | None:
    if kind is Kind.TIMESTAMPTZ:
        match = _TIMESTAMPTZ.match(text)
        if match is None:
            return None
        date, clock, hours, minutes = match.groups()
        return f'"{date}T{clock}{hours}{minutes or ":00"}"'
    if kind is Kind.TIMESTAMP:
        match = _TIMESTAMP.match(text)
        return f'"{match[1]}T{match[2]}"' if match else None
    if kind is Kind.DATE:
        return f'"{text}"' if _DATE.match(text) else None
    return None


async def postgres_json(
    conn: psycopg.AsyncConnection, values: Sequence[tuple[str, TypeInfo]]
) -> list[str]:
    """``to_jsonb(value::type)::text`` for each value, in one round trip."""
    if not values:
        return []
    columns = sql.SQL(", ").join(
        sql.SQL("to_jsonb({}::text::{})::text").format(sql.Placeholder(), info.cast_sql)
        for _, info in values
    )
    cursor = await conn.execute(sql.SQL("select {}").format(columns), [text for text, _ in values])
    row = await cursor.fetchone()
    assert row is not None
    return [str(item) for item in row]
