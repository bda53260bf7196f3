"""Live postgres_changes subscriptions: creating them (with Supabase's checks) and finding them.

Creating mirrors what Supabase does when it inserts rows into ``realtime.subscription``: every
binding of a channel expands to the published tables its schema/table pattern matches (SQL
``LIKE``, ``*`` for all); the role must exist; filter and ``select`` columns must be
SELECT-able by the role; filter values must cast to the column type; ``in`` takes at most 100
values. It is all or nothing per channel, and the first failure's text is reported.

A subscription only sees transactions that commit after it was created: its ``start_lsn`` is
the WAL insert position read when the checks passed (at most once, no replay).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, LiteralString, Protocol, TypeAlias

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from localbase.realtime import messages
from localbase.realtime.bindings import Binding, BindingError, BindingParams, parse_params
from localbase.realtime.catalog import ColumnInfo, TableInfo, load_table
from localbase.realtime.filters import IS_KEYWORDS, Condition, TypedCondition
from localbase.realtime.tokens import Claims
from localbase.replication import PUBLICATION

_TABLES_SQL: Final = """
select c.oid::int, p.schemaname::text, p.tablename::text
from pg_publication_tables p
join pg_namespace n on n.nspname = p.schemaname
join pg_class c on c.relnamespace = n.oid and c.relname = p.tablename
where p.pubname = %s
  and p.schemaname like (case %s when '*' then '%%' else %s end) escape ''
  and p.tablename like (case %s when '*' then '%%' else %s end) escape ''
order by c.oid
"""
_SELECTABLE_SQL: Final = """
select a.attname::text from pg_attribute a
where a.attrelid = %s and a.attnum > 0 and not a.attisdropped
  and has_column_privilege(%s, a.attrelid, a.attnum, 'SELECT')
order by a.attnum
"""
_LIKE_OPERATOR_SQL: Final = (
    "select exists(select 1 from pg_operator where oprname = '~~' and oprleft = %s)"
)
_REGEX_OPERATOR_SQL: Final = """
select exists(select 1 from pg_operator where oprname = %s and oprleft = %s and oprright = %s
                                          and oprresult = 'boolean'::regtype)
"""
_MAX_IN_VALUES: Final = 100
_BOOL_OID: Final = 16
_CAMEL: Final = re.compile(r"(?<!^)(?=[A-Z])")


Query: TypeAlias = LiteralString | sql.Composed


class SubscriptionError(Exception):
    """Creating the subscriptions failed; ``str(exc)`` is the ``system`` message text."""


class Sink(Protocol):
    """Where a subscription's events go: the channel that joined with the binding."""

    topic: str
    topic_json: str

    def deliver(self, frame: str) -> None: ...

    def shutdown(self, message: str) -> None: ...


@dataclass(eq=False, slots=True)
class Subscription:
    """One binding on one table for one channel (a row of Supabase's realtime.subscription)."""

    binding_index: int
    binding_id: int
    sink: Sink
    table_oid: int
    action: str
    conditions: tuple[TypedCondition, ...]
    select: tuple[str, ...] | None
    claims: Claims
    start_lsn: int


class _PostgresFailure(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def postgrex_message(exc: psycopg.Error) -> str:
    """An error as Postgrex prints it: ``ERROR 22P02 (invalid_text_representation) …``."""
    diag = exc.diag
    if diag.sqlstate is None:
        return str(exc).strip()
    name = _CAMEL.sub("_", type(exc).__name__).lower()
    severity = diag.severity_nonlocalized or "ERROR"
    return f"{severity} {diag.sqlstate} ({name}) {diag.message_primary}"


def _raise_exception(text: str) -> _PostgresFailure:
    return _PostgresFailure(f"ERROR P0001 (raise_exception) {text}")


async def create(
    pool: AsyncConnectionPool, bindings: Sequence[Binding], claims: Claims, sink: Sink
) -> list[Subscription]:
    """Check and build the subscriptions of one channel; raises :class:`SubscriptionError`."""
    try:
        parsed = [parse_params(binding.params) for binding in bindings]
    except BindingError as exc:
        raise SubscriptionError(str(exc)) from None
    subscriptions: list[Subscription] = []
    try:
        async with pool.connection() as conn:
            for index, (binding, params) in enumerate(zip(bindings, parsed, strict=True)):
                for table in await _tables(conn, params):
                    conditions = await _checked(conn, table, params, claims.role)
                    subscriptions.append(
                        Subscription(
                            index,
                            binding.id,
                            sink,
                            table.oid,
                            params.action,
                            conditions,
                            params.select,
                            claims,
                            0,
                        )
                    )
            start_lsn = await _wal_position(conn)
    except psycopg.Error as exc:  # the database itself failed (e.g. a table dropped meanwhile)
        raise SubscriptionError(postgrex_message(exc)) from None
    for subscription in subscriptions:
        subscription.start_lsn = start_lsn
    return subscriptions


async def _wal_position(conn: psycopg.AsyncConnection) -> int:
    cursor = await conn.execute("select (pg_current_wal_insert_lsn() - '0/0')::bigint")
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def _tables(conn: psycopg.AsyncConnection, params: BindingParams) -> list[TableInfo]:
    cursor = await conn.execute(
        _TABLES_SQL, (PUBLICATION, params.schema, params.schema, params.table, params.table)
    )
    rows = await cursor.fetchall()
    if not rows:
        raise SubscriptionError(messages.not_in_publication(params.log_text()))
    return [await load_table(conn, oid, schema, table) for oid, schema, table in rows]


async def _checked(
    conn: psycopg.AsyncConnection, table: TableInfo, params: BindingParams, role: str
) -> tuple[TypedCondition, ...]:
    """The checks of Supabase's ``subscription_check_filters`` trigger, in its order."""
    try:
        allowed = {str(row[0]) for row in await _run(conn, _SELECTABLE_SQL, (table.oid, role))}
        conditions = tuple([await _typed(conn, table, c, allowed) for c in params.conditions])
        for column in params.select or ():
            if column not in allowed:
                raise _raise_exception(f"invalid column for select {column}")
        await _run(conn, "select %s::text::regrole", (role,))
    except _PostgresFailure as exc:
        raise SubscriptionError(
            messages.subscription_exception(params.log_text(), exc.text)
        ) from None
    return conditions


async def _run(
    conn: psycopg.AsyncConnection, query: Query, args: Sequence[object] = ()
) -> list[tuple[object, ...]]:
    try:
        cursor = await conn.execute(query, args)
        return list(await cursor.fetchall())
    except psycopg.Error as exc:
        raise _PostgresFailure(postgrex_message(exc)) from None


async def _typed(
    conn: psycopg.AsyncConnection, table: TableInfo, condition: Condition, allowed: set[str]
) -> TypedCondition:
    column = table.by_name.get(condition.column)
    if column is None or condition.column not in allowed:
        raise _raise_exception(f"invalid column for filter {condition.column}")
    if condition.op == "in":
        return await _typed_in(conn, column, condition)
    if condition.op == "is":
        return _typed_is(column, condition)
    if condition.op in ("like", "ilike", "match", "imatch"):
        await _check_pattern(conn, column, condition)
        return TypedCondition(condition, column.type)
    canonical = await _cast(conn, column, condition.value)
    fast = column.type.canonical and condition.op != "isdistinct"
    return TypedCondition(condition, column.type, (canonical,) if fast else None)


async def _cast(conn: psycopg.AsyncConnection, column: ColumnInfo, value: str) -> str | None:
    """``realtime.cast(value, type)`` (errors if it does not cast), and the canonical text."""
    query = sql.SQL("select to_jsonb({value}::text::{type}), {value}::text::{type}::text").format(
        value=sql.Placeholder("value"), type=column.type.cast_sql
    )
    rows = await _run(conn, query, {"value": value})  # type: ignore[arg-type]
    return None if rows[0][1] is None else str(rows[0][1])


async def _typed_in(
    conn: psycopg.AsyncConnection, column: ColumnInfo, condition: Condition
) -> TypedCondition:
    query = sql.SQL(
        "select coalesce(jsonb_array_length(to_jsonb({value}::text::{type})), 0),"
        " array(select e::text from unnest({value}::text::{type}) e)"
    ).format(value=sql.Placeholder("value"), type=column.type.array_cast_sql)
    rows = await _run(conn, query, {"value": condition.value})  # type: ignore[arg-type]
    count, elements = rows[0]
    if isinstance(count, int) and count > _MAX_IN_VALUES:
        raise _raise_exception("too many values for `in` filter. Maximum 100")
    canonical = tuple(elements) if column.type.canonical and isinstance(elements, list) else None
    return TypedCondition(condition, column.type, canonical)


def _typed_is(column: ColumnInfo, condition: Condition) -> TypedCondition:
    if condition.value not in IS_KEYWORDS:
        raise _raise_exception("invalid value for is filter: must be null, true, false, or unknown")
    if condition.value != "null" and column.type.oid != _BOOL_OID:
        raise _raise_exception(
            f"is {condition.value} filter requires a boolean column, got {column.type.formatted}"
        )
    return TypedCondition(condition, column.type)


async def _check_pattern(
    conn: psycopg.AsyncConnection, column: ColumnInfo, condition: Condition
) -> None:
    op = condition.op
    if op in ("like", "ilike"):
        rows = await _run(conn, _LIKE_OPERATOR_SQL, (column.type.oid,))
    else:
        operator = "~*" if op == "imatch" else "~"
        rows = await _run(conn, _REGEX_OPERATOR_SQL, (operator, column.type.oid, column.type.oid))
    if not rows[0][0]:
        raise _raise_exception(
            f"operator {op} requires a text-compatible column type, got {column.type.formatted}"
        )
    if op in ("match", "imatch"):
        try:
            await conn.execute("select '' ~ %s", (condition.value,))
        except psycopg.Error as exc:
            raise _raise_exception(
                f"invalid regular expression for {op} filter: {exc.diag.message_primary}"
            ) from None


class Registry:
    """Subscriptions by table oid, for the change stream to look up."""

    def __init__(self) -> None:
        self._by_table: dict[int, list[Subscription]] = {}

    def for_table(self, oid: int) -> Sequence[Subscription]:
        return self._by_table.get(oid, ())

    def add(self, subscriptions: Iterable[Subscription]) -> None:
        for subscription in subscriptions:
            self._by_table.setdefault(subscription.table_oid, []).append(subscription)

    def remove(self, subscriptions: Iterable[Subscription]) -> None:
        for subscription in subscriptions:
            table = self._by_table.get(subscription.table_oid)
            if table is None:
                continue
            try:
                table.remove(subscription)
            except ValueError:
                continue
            if not table:
                del self._by_table[subscription.table_oid]

    def sinks(self) -> list[Sink]:
        """Every channel with at least one subscription, once each."""
        return list({s.sink: None for items in self._by_table.values() for s in items})

    def __len__(self) -> int:
        return sum(len(items) for items in self._by_table.values())
