"""The schema cache: tables, columns, primary keys and functions of the exposed schemas.

Like PostgREST's, it is loaded once and reloaded on ``NOTIFY pgrst, 'reload schema'`` (which
the bootstrap's DDL event triggers send after every ``CREATE``/``ALTER``/``DROP``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field

import psycopg

from localbase.rest import relationships
from localbase.rest.relationships import Relationship

EXPOSED_SCHEMAS = ("public", "graphql_public")

_TABLES_SQL = """
select n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), t.typname,
       coalesce((select array_agg(k.attname order by array_position(i.indkey, k.attnum))
                 from pg_index i join pg_attribute k
                   on k.attrelid = i.indrelid and k.attnum = any(i.indkey)
                 where i.indrelid = c.oid and i.indisprimary), '{}'),
       -- the default PostgREST's missing=default evaluates: a domain's, an identity's
       -- sequence, none for a generated column, else the column's own
       case when t.typbasetype <> 0 and ad.adbin is null then pg_get_expr(t.typdefaultbin, 0)
            when a.attidentity = 'd' then format('nextval(%%L)', seq.objid::regclass)
            when a.attgenerated = 's' then null
            else pg_get_expr(ad.adbin, ad.adrelid) end
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
join pg_type t on t.oid = a.atttypid
left join pg_attrdef ad on ad.adrelid = a.attrelid and ad.adnum = a.attnum
left join pg_depend seq
  on seq.refobjid = a.attrelid and seq.refobjsubid = a.attnum and seq.deptype = 'i'
  and seq.classid = 'pg_class'::regclass
where c.relkind in ('r', 'v', 'm', 'p', 'f') and n.nspname = any(%s)
order by n.nspname, c.relname, a.attnum
"""

_FUNCTIONS_SQL = """
select n.nspname, p.proname, p.proretset, p.provolatile, p.pronargdefaults,
       coalesce(array(select format_type(x, null) from unnest(p.proargtypes) x), '{}'),
       coalesce(p.proargnames, '{}'), coalesce(p.proargmodes::text[], '{}'),
       format_type(p.prorettype, null), rt.typtype, rt.typrelid <> 0 or rt.oid = 'record'::regtype,
       coalesce(array(select t.typrelid <> 0 from unnest(p.proargtypes) with ordinality x(oid, n)
                      join pg_type t on t.oid = x.oid order by x.n), '{}'),
       rn.nspname, coalesce(rc.relname, rt.typname)
from pg_proc p
join pg_namespace n on n.oid = p.pronamespace
join pg_type rt on rt.oid = p.prorettype
left join pg_class rc on rc.oid = rt.typrelid
left join pg_namespace rn on rn.oid = rc.relnamespace
where n.nspname = any(%s) and p.prokind = 'f'
"""


_UNNAMED_TYPES = frozenset({"json", "jsonb", "text", "xml", "bytea"})


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # format_type(), safe to splice as a cast target
    typname: str
    #: The default expression as PostgreSQL prints it (the catalog's own SQL, spliced into
    #: ``missing=default`` inserts as PostgREST does); None: no default.
    default: str | None = None


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    columns: dict[str, Column]
    primary_key: tuple[str, ...]


@dataclass(frozen=True)
class Parameter:
    name: str  # "" for an unnamed parameter
    type: str
    has_default: bool
    composite: bool = False  # a table's or view's row type: the argument is a JSON object


@dataclass(frozen=True)
class Function:
    schema: str
    name: str
    parameters: tuple[Parameter, ...]
    returns_set: bool
    returns_composite: bool
    return_type: str
    volatility: str  # "i" | "s" | "v"
    #: The relation whose row type the function returns (``setof books``, ``returns books``):
    #: its result has that relation's relationships.
    return_relation: tuple[str, str] | None = None
    #: The name PostgREST embeds from: the returned relation's or composite type's name
    #: (``record`` for ``returns table(…)``), else the function's own.
    origin_name: str = ""

    @property
    def returns_void(self) -> bool:
        return self.return_type == "void"

    @property
    def exposed(self) -> bool:
        """PostgREST calls functions by parameter name; the one exception is a single unnamed
        parameter of a type a request body can be (json, jsonb, text, xml, bytea)."""
        unnamed = [p for p in self.parameters if not p.name]
        if not unnamed:
            return True
        return len(self.parameters) == 1 and unnamed[0].type in _UNNAMED_TYPES

    @property
    def cached(self) -> bool:
        """In PostgREST's schema cache: exposed, or a table row's function (``fn(books)``, a
        computed field or relationship) that RPC cannot call by name."""
        return self.exposed or (
            len(self.parameters) == 1
            and not self.parameters[0].name
            and self.parameters[0].composite
        )

    @property
    def single_unnamed_json(self) -> bool:
        return (
            len(self.parameters) == 1
            and self.parameters[0].name == ""
            and self.parameters[0].type in {"json", "jsonb"}
        )

    def accepts(self, names: set[str]) -> bool:
        required = {p.name for p in self.parameters if not p.has_default}
        known = {p.name for p in self.parameters}
        return required <= names <= known


@dataclass
class Catalog:
    tables: dict[tuple[str, str], Table] = field(default_factory=dict)
    functions: dict[tuple[str, str], list[Function]] = field(default_factory=dict)
    #: Relationships between exposed relations, by origin (see ``relationships``).
    relationships: dict[tuple[str, str], list[Relationship]] = field(default_factory=dict)

    @classmethod
    async def load(
        cls, conn: psycopg.AsyncConnection, schemas: tuple[str, ...] = EXPOSED_SCHEMAS
    ) -> Catalog:
        catalog = cls()
        columns: dict[tuple[str, str], dict[str, Column]] = {}
        keys: dict[tuple[str, str], tuple[str, ...]] = {}
        cur = await conn.execute(_TABLES_SQL, (list(schemas),))
        for schema, table, name, type_, typname, pk, default in await cur.fetchall():
            columns.setdefault((schema, table), {})[name] = Column(name, type_, typname, default)
            keys[(schema, table)] = tuple(pk)
        for key, cols in columns.items():
            catalog.tables[key] = Table(key[0], key[1], cols, keys[key])
        cur = await conn.execute(_FUNCTIONS_SQL, (list(schemas),))
        for row in await cur.fetchall():
            function = _function_from_row(row)
            catalog.functions.setdefault((function.schema, function.name), []).append(function)
        foreign_keys = await (await conn.execute(relationships.FOREIGN_KEYS_SQL)).fetchall()
        cur = await conn.execute(relationships.VIEW_COLUMNS_SQL, (list(schemas),))
        views = await cur.fetchall()
        cur = await conn.execute(relationships.COMPUTED_SQL, (list(schemas),))
        computed = await cur.fetchall()
        catalog.relationships = relationships.build(
            foreign_keys,
            {k: t.primary_key for k, t in catalog.tables.items()},
            views,
            schemas,
            computed,
        )
        return catalog

    def suggest_table(self, schema: str, name: str) -> str | None:
        names = [t for (s, t) in self.tables if s == schema]
        close = difflib.get_close_matches(name, names, n=1)
        return f"Perhaps you meant the table '{schema}.{close[0]}'" if close else None

    def suggest_function(self, schema: str, name: str, arguments: set[str]) -> str | None:
        """PostgREST's hint for a call that matched nothing: when its schema cache has
        functions of that name, the closest of their parameter lists; otherwise the closest
        other name. Its fuzzy match compares only letters, digits, spaces and commas, so an
        empty list (``()``) never matches anything."""
        overloads = [f for f in self.functions.get((schema, name), []) if f.cached]
        if overloads:
            lists = {_fuzzy(_parameter_list(p.name for p in f.parameters)): f for f in overloads}
            wanted = _fuzzy(_parameter_list(arguments))
            known = [key for key in lists if key]
            close = difflib.get_close_matches(wanted, known, n=1) if wanted else []
            if not close:
                return None
            suggestion = name + _parameter_list(p.name for p in lists[close[0]].parameters)
        else:
            names = [
                key[1]
                for key, functions in self.functions.items()
                if key[0] == schema and any(f.cached for f in functions)
            ]
            close = difflib.get_close_matches(name, names, n=1)
            if not close:
                return None
            suggestion = close[0]
        return f"Perhaps you meant to call the function {schema}.{suggestion}"


def _parameter_list(names: Iterable[str]) -> str:
    return "(" + ", ".join(sorted(names)) + ")"


def _fuzzy(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum() or c in " ,")


def _function_from_row(row: tuple[object, ...]) -> Function:
    (
        schema,
        name,
        retset,
        volatility,
        ndefaults,
        in_types,
        names,
        modes,
        rettype,
        _typtype,
        composite,
        composite_args,
        relation_schema,
        type_name,
    ) = row
    assert isinstance(in_types, list)
    assert isinstance(names, list)
    assert isinstance(modes, list)
    assert isinstance(composite_args, list)
    if modes:
        in_names = [n for n, m in zip(names, modes, strict=False) if m in ("i", "b", "v")]
    else:
        in_names = list(names)
    in_names += [""] * (len(in_types) - len(in_names))
    first_default = len(in_types) - int(str(ndefaults))
    parameters = tuple(
        Parameter(str(n), str(t), i >= first_default, bool(c))
        for i, (n, t, c) in enumerate(zip(in_names, in_types, composite_args, strict=False))
    )
    relation = None if relation_schema is None else (str(relation_schema), str(type_name))
    return Function(
        str(schema),
        str(name),
        parameters,
        bool(retset),
        bool(composite),
        str(rettype),
        str(volatility),
        relation if composite else None,
        str(type_name) if composite else str(name),
    )
