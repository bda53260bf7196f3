"""What delivery needs to know about a published table: columns and their types, primary key,
RLS, and which columns each role may SELECT.

Entries are keyed by the :class:`~localbase.replication.Relation` object of the change stream.
pgoutput sends a fresh Relation before the first change after any DDL, GRANT/REVOKE, RLS or
replica identity change, so a new Relation means the cached facts are stale; the lookup then
runs against the catalog as it is when the change is delivered (as Supabase's ``apply_rls``),
once the change's transaction is visible: its own DDL or GRANT must be part of the facts.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from localbase.realtime.visibility import Commit
from localbase.replication import Relation

log = logging.getLogger("localbase.realtime")

_FIRST_USER_OID: Final = 16384
_T = TypeVar("_T")


class Kind(enum.Enum):
    """How a column's text output becomes JSON (Postgres ``to_jsonb`` rules)."""

    INT = "int"
    FLOAT = "float"  # float4/float8/numeric: a JSON number unless NaN/Infinity
    BOOL = "bool"
    STRING = "string"  # the output text as a JSON string
    JSONB = "jsonb"
    TIMESTAMPTZ = "timestamptz"
    TIMESTAMP = "timestamp"
    DATE = "date"
    BYTEA = "bytea"
    OTHER = "other"  # ask Postgres


_BUILTIN_KINDS: Final = {
    20: Kind.INT,
    21: Kind.INT,
    23: Kind.INT,
    700: Kind.FLOAT,
    701: Kind.FLOAT,
    1700: Kind.FLOAT,
    16: Kind.BOOL,
    3802: Kind.JSONB,
    114: Kind.OTHER,
    1184: Kind.TIMESTAMPTZ,
    1114: Kind.TIMESTAMP,
    1082: Kind.DATE,
    17: Kind.BYTEA,
}
#: Types whose output text is canonical: equal values print identically, so ``eq``/``neq``/
#: ``in`` filters can compare text instead of asking Postgres.
_CANONICAL: Final = frozenset({20, 21, 23, 16, 2950, 25, 1043, 19})
_COLUMNS_SQL: Final = """
select a.attname, t.typname, a.atttypid::int, format_type(a.atttypid, null), t.typtype,
       t.typcategory, coalesce(co.collisdeterministic, true)
from pg_attribute a
join pg_type t on t.oid = a.atttypid
left join pg_collation co on co.oid = a.attcollation
where a.attrelid = %s and a.attnum > 0 and not a.attisdropped
order by a.attnum
"""
_TABLE_SQL: Final = """
select c.relrowsecurity,
       array(select a.attname::text
             from pg_constraint k
             cross join lateral unnest(k.conkey) with ordinality as u(attnum, pos)
             join pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.attnum
             where k.conrelid = c.oid and k.contype = 'p' order by u.pos)
from pg_class c where c.oid = %s
"""
_SELECTABLE_SQL: Final = """
select a.attname from pg_attribute a
where a.attrelid = %s and a.attnum > 0 and not a.attisdropped
  and has_column_privilege(%s, a.attrelid, a.attnum, 'SELECT')
"""


@dataclass(frozen=True, slots=True)
class TypeInfo:
    oid: int
    name: str  # pg_type.typname: what ``columns[].type`` shows
    formatted: str  # format_type(): what casts use (and error texts show)
    kind: Kind
    canonical: bool

    @property
    def cast_sql(self) -> sql.SQL:
        """The type name for a cast; ``format_type()`` output read from the catalog."""
        return sql.SQL(self.formatted)

    @property
    def array_cast_sql(self) -> sql.SQL:
        return sql.SQL(self.formatted + "[]")


@dataclass(frozen=True, slots=True)
class ColumnInfo:
    name: str
    type: TypeInfo


@dataclass(slots=True)
class TableInfo:
    oid: int
    schema: str
    table: str
    rls: bool
    primary_key: tuple[str, ...]
    columns: tuple[ColumnInfo, ...]
    by_name: Mapping[str, ColumnInfo]
    selectable: dict[str, frozenset[str]] = field(default_factory=dict)
    _memo: dict[Hashable, Any] = field(default_factory=dict)

    def qualified(self) -> str:
        return f"{_quote(self.schema)}.{_quote(self.table)}"

    @property
    def key_set(self) -> frozenset[str]:
        return self.memo("key_set", lambda: frozenset(self.primary_key))

    def memo(self, key: Hashable, compute: Callable[[], _T]) -> _T:
        """Something derived from these (immutable) facts, computed once."""
        try:
            value: _T = self._memo[key]
        except KeyError:
            value = self._memo[key] = compute()
        return value


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def type_info(
    oid: int, name: str, formatted: str, typtype: str, category: str, deterministic: bool
) -> TypeInfo:
    """Classify a column type for JSON encoding and fast filter comparison."""
    if typtype == "e":
        return TypeInfo(oid, name, formatted, Kind.STRING, True)
    builtin = oid < _FIRST_USER_OID
    if not builtin or typtype not in ("b", "r", "m") or category == "A":
        return TypeInfo(oid, name, formatted, Kind.OTHER, False)
    kind = _BUILTIN_KINDS.get(oid, Kind.STRING)
    return TypeInfo(oid, name, formatted, kind, oid in _CANONICAL and deterministic)


class Catalog:
    """Caches :class:`TableInfo` per Relation of the change stream."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool
        self._tables: dict[int, tuple[Relation, TableInfo]] = {}

    async def table(self, relation: Relation, commit: Commit) -> TableInfo:
        cached = self._tables.get(relation.oid)
        if cached is not None and cached[0] is relation:
            return cached[1]
        await commit.visible()
        async with self._pool.connection() as conn:
            info = await load_table(conn, relation.oid, relation.schema, relation.table)
        self._tables[relation.oid] = (relation, info)
        return info

    async def selectable(self, info: TableInfo, role: str, commit: Commit) -> frozenset[str]:
        """Columns ``role`` may SELECT (none if the role no longer exists)."""
        cached = info.selectable.get(role)
        if cached is not None:
            return cached
        await commit.visible()
        try:
            async with self._pool.connection() as conn:
                cursor = await conn.execute(_SELECTABLE_SQL, (info.oid, role))
                columns = frozenset(str(row[0]) for row in await cursor.fetchall())
        except psycopg.Error as exc:
            log.warning("column privileges of role %r on %s: %s", role, info.qualified(), exc)
            columns = frozenset()
        info.selectable[role] = columns
        return columns


async def load_table(conn: psycopg.AsyncConnection, oid: int, schema: str, table: str) -> TableInfo:
    cursor = await conn.execute(_TABLE_SQL, (oid,))
    row = await cursor.fetchone()
    rls, primary_key = (bool(row[0]), tuple(row[1])) if row else (False, ())
    cursor = await conn.execute(_COLUMNS_SQL, (oid,))
    rows = await cursor.fetchall()
    columns = tuple(
        ColumnInfo(name, type_info(type_oid, typname, formatted, typtype, category, collation))
        for name, typname, type_oid, formatted, typtype, category, collation in rows
    )
    return TableInfo(
        oid, schema, table, rls, primary_key, columns, {column.name: column for column in columns}
    )
