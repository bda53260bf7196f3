"""PostgREST's aggregate functions in ``select``: ``count()``, and ``sum()``, ``avg()``,
``max()``, ``min()`` of a field (``total:amount::int.sum()::text``).

They are off unless ``pgrst.db_aggregates_enabled`` is on (``localbase.rest.config``): every
form then answers 400 PGRST123, as on hosted Supabase. A bare ``count`` field is not one of
them: it is PostgreSQL's ``rel.count``, which counts the rows, and is always allowed.

When on, a level of the read (the top relation or an embedded one) with an aggregate is grouped
by its other fields: plain columns (``*`` being each column), embedded resources (by their
JSON, as ``jsonb``) and the columns a spread brings. The aggregates of a to-one spread
(``...author(books_count:id.count())``) are *hoisted*: the spread hands the raw values up under
private names and its parent aggregates them, as PostgREST does. A to-many spread
(``...books(…)``) has none: its columns are arrays, and an aggregate in it, or hoisted into it
from a to-one spread inside it, is 400 PGRST127, as in PostgREST v13.
"""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import sql

from localbase.rest.catalog import Table
from localbase.rest.errors import RestError
from localbase.rest.query import CountItem, Embed, Item, ReadQuery, SelectItem
from localbase.rest.statements import Builder, is_aggregate, output_name

__all__ = [
    "embed_value",
    "forbid",
    "has_hoisted",
    "hoisted_name",
    "hoisted_value",
    "refuse_in_to_many_spread",
    "spread_columns",
]


def forbid(query: ReadQuery) -> None:
    """PGRST123 when ``select`` uses an aggregate anywhere (``db-aggregates-enabled`` off)."""
    if _uses_aggregates(query.select):
        raise RestError(400, "PGRST123", "Use of aggregate functions is not allowed")


def _uses_aggregates(items: Sequence[Item]) -> bool:
    return any(
        _uses_aggregates(item.select) if isinstance(item, Embed) else is_aggregate(item)
        for item in items
    )


def has_hoisted(embed: Embed) -> bool:
    """A spread whose aggregates its parent computes."""
    return embed.spread and any(is_aggregate(item) for item in embed.select)


def refuse_in_to_many_spread(embed: Embed) -> None:
    """PGRST127 for an aggregate in a to-many spread or in the spreads inside it (which would
    hoist it there), in PostgREST's words."""
    if _in_spreads(embed.select):
        raise RestError(
            400,
            "PGRST127",
            "Feature not implemented",
            "Aggregates are not implemented for one-to-many or many-to-many spreads.",
        )


def _in_spreads(items: Sequence[Item]) -> bool:
    return any(
        _in_spreads(item.select) if isinstance(item, Embed) and item.spread else is_aggregate(item)
        for item in items
    )


def hoisted_name(index: int) -> str:
    """The private name under which a spread hands its ``index``-th item's value up."""
    return f"pgrst_agg_{index}"


def hoisted_value(builder: Builder, item: SelectItem | CountItem, index: int) -> sql.Composable:
    """What a spread selects for its parent to aggregate: the (cast) field, or ``true`` for a
    ``count()``, under a private name."""
    value = builder.value(item, aggregated=False)
    return sql.SQL("{} as {}").format(value, sql.Identifier(hoisted_name(index)))


def spread_columns(
    lateral: sql.Identifier, items: Sequence[Item], table: Table
) -> tuple[list[sql.Composable], list[sql.Composable], list[str]]:
    """The parent's select items for a spread next to aggregates (or holding some), the terms
    it is grouped by, and the keys they give its rows."""
    select: list[sql.Composable] = []
    terms: list[sql.Composable] = []
    names: list[str] = []
    for index, item in enumerate(items):
        if is_aggregate(item):
            assert isinstance(item, SelectItem | CountItem)
            select.append(_hoisted_aggregate(lateral, item, index))
            names.append(output_name(item))
            continue
        for name, is_json in _output_columns(item, table):
            column = sql.SQL("{}.{}").format(lateral, sql.Identifier(name))
            if is_json:
                column = sql.SQL("{}::jsonb").format(column)
            select.append(sql.SQL("{} as {}").format(column, sql.Identifier(name)))
            terms.append(column)
            names.append(name)
    return select, terms, names


def _hoisted_aggregate(
    lateral: sql.Identifier, item: SelectItem | CountItem, index: int
) -> sql.Composable:
    function = "count" if isinstance(item, CountItem) else item.aggregate
    cast = item.cast if isinstance(item, CountItem) else item.aggregate_cast
    expr: sql.Composable = sql.SQL(f"{function}({{}}.{{}})").format(
        lateral, sql.Identifier(hoisted_name(index))
    )
    if cast:
        expr = sql.SQL("cast({} as {})").format(expr, sql.SQL(cast))
    return sql.SQL("{} as {}").format(expr, sql.Identifier(output_name(item)))


def _output_columns(item: Item, table: Table) -> list[tuple[str, bool]]:
    """The columns a spread's item brings to its parent, and whether each is an embed's
    JSON."""
    if isinstance(item, Embed):
        if item.spread:
            raise RestError(
                400,
                "PGRST100",
                "localbase does not support a spread inside a spread next to aggregates",
            )
        return [(item.key, True)]
    if isinstance(item, SelectItem) and item.field is None:
        return [(name, False) for name in table.columns]
    assert isinstance(item, SelectItem | CountItem)
    return [(output_name(item), False)]


def embed_value(
    lateral: sql.Identifier, key: str, grouped: bool
) -> tuple[sql.Composable, sql.Composable | None]:
    """An embedded resource's select item and, on a grouped level, its group term (its JSON
    as ``jsonb``, which has equality)."""
    body: sql.Composable = sql.SQL("{}.body").format(lateral)
    if grouped:
        body = sql.SQL("{}::jsonb").format(body)
    return sql.SQL("{} as {}").format(body, sql.Identifier(key)), body if grouped else None
