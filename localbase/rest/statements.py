"""Parsed requests → SQL. Identifiers are always quoted; values are always bound parameters.

Values are bound as *unknown*-typed text (psycopg's default for ``str``), so PostgreSQL casts
them to the column's type exactly as PostgREST's unknown literals are cast: ``id=eq.abc`` on a
uuid column fails with 22P02, ``n=eq.5`` compares numerically.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from localbase.rest.catalog import Function, Table
from localbase.rest.errors import RestError
from localbase.rest.query import (
    Condition,
    CountItem,
    Field,
    Filter,
    Item,
    Logic,
    ReadQuery,
    SelectItem,
    is_json_index,
    tests_embed,
)

MAX_ROWS = 1000  # db-max-rows on Supabase

_OPERATORS = {
    "eq": "=",
    "neq": "<>",
    "gt": ">",
    "gte": ">=",
    "lt": "<",
    "lte": "<=",
    "like": "like",
    "ilike": "ilike",
    "match": "~",
    "imatch": "~*",
    "cs": "@>",
    "cd": "<@",
    "ov": "&&",
    "sl": "<<",
    "sr": ">>",
    "nxr": "&<",
    "nxl": "&>",
    "adj": "-|-",
    "isdistinct": "is distinct from",
}
_FTS = {
    "fts": "to_tsquery",
    "plfts": "plainto_tsquery",
    "phfts": "phraseto_tsquery",
    "wfts": "websearch_to_tsquery",
}
_IS = {
    "null": "is null",
    "not_null": "is not null",
    "true": "is true",
    "false": "is false",
    "unknown": "is unknown",
}


@dataclass
class Statement:
    query: sql.Composed
    params: list[Any]


class Bindings:
    """The values of one statement. Placeholders are named while the statement is assembled
    (a fragment may be used twice, in any order) and numbered when it is finished."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def add(self, value: object) -> sql.Placeholder:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return sql.Placeholder(name)

    def statement(self, query: sql.Composable) -> Statement:
        params: list[Any] = []
        finished = self._positional(query, params)
        return Statement(
            finished if isinstance(finished, sql.Composed) else sql.Composed([finished]), params
        )

    def _positional(self, node: sql.Composable, params: list[Any]) -> sql.Composable:
        if isinstance(node, sql.Composed):
            return sql.Composed([self._positional(part, params) for part in node])
        if isinstance(node, sql.Placeholder):
            params.append(self.values[node._obj])
            return sql.Placeholder()
        return node


def array_literal(items: Sequence[object]) -> str:
    """A PostgreSQL array literal with every element quoted (``None`` → NULL)."""
    out = []
    for item in items:
        if item is None:
            out.append("NULL")
        elif isinstance(item, list | tuple):
            out.append(array_literal(item))
        else:
            text = _scalar_text(item)
            out.append('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(out) + "}"


def _scalar_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


class Builder:
    """Builds the statements for one table or function."""

    def __init__(self, table: Table | None, alias: str, bindings: Bindings | None = None) -> None:
        self.table = table
        self.alias = sql.Identifier(alias)
        self.bindings = bindings if bindings is not None else Bindings()

    def statement(self, query: sql.Composable) -> Statement:
        return self.bindings.statement(query)

    # -- expressions -------------------------------------------------------------------------
    def field(self, field_: Field) -> sql.Composable:
        expr: sql.Composable = sql.SQL("{}.{}").format(self.alias, sql.Identifier(field_.name))
        for arrow, key in field_.path:
            key_sql = sql.Literal(int(key)) if is_json_index(key) else sql.Literal(key)
            expr = sql.SQL("{}{}{}").format(expr, sql.SQL(arrow), key_sql)
        return expr

    def bind(self, value: object) -> sql.Composable:
        return self.bindings.add(value)

    def condition(
        self, node: Condition, embeds: Mapping[str, sql.Composable] | None = None
    ) -> sql.Composable:
        """``node`` as SQL. ``embeds``: the embeds of this level by key, each as SQL that is
        true when the row has a related row, for ``key=[not.]is.null``."""
        if isinstance(node, Logic):
            joiner = sql.SQL(" and " if node.op == "and" else " or ")
            children = (self.condition(c, embeds) for c in node.children)
            inner = sql.SQL("({})").format(joiner.join(children))
            return sql.SQL("not {}").format(inner) if node.negate else inner
        if embeds and tests_embed(node, embeds):
            present = embeds[node.field.name]
            return present if node.negate else sql.SQL("not ({})").format(present)
        expr = self._filter(node)
        return sql.SQL("not ({})").format(expr) if node.negate else expr

    def _filter(self, node: Filter) -> sql.Composable:
        column = self.field(node.field)
        if node.op == "is":
            assert isinstance(node.value, str)
            return sql.SQL("{} {}").format(column, sql.SQL(_IS[node.value]))
        if node.op == "in":
            return sql.SQL("{} = any({})").format(column, self.bind(array_literal(node.value)))
        if node.op in _FTS:
            function = sql.SQL(_FTS[node.op])
            if node.quantifier:
                query = sql.SQL("{}({}::regconfig, {})").format(
                    function, self.bind(node.quantifier), self.bind(node.value)
                )
            else:
                query = sql.SQL("{}({})").format(function, self.bind(node.value))
            return sql.SQL("{} @@ {}").format(column, query)
        operator = sql.SQL(_OPERATORS[node.op])
        if node.quantifier:
            values = [self._like(v) if node.op in {"like", "ilike"} else v for v in node.value]
            return sql.SQL("{} {} {}({})").format(
                column, operator, sql.SQL(node.quantifier), self.bind(array_literal(values))
            )
        assert isinstance(node.value, str)
        value = self._like(node.value) if node.op in {"like", "ilike"} else node.value
        return sql.SQL("{} {} {}").format(column, operator, self.bind(value))

    @staticmethod
    def _like(value: str) -> str:
        return value.replace("*", "%")

    def where(self, conditions: Sequence[Condition]) -> sql.Composable:
        if not conditions:
            return sql.SQL("")
        return sql.SQL(" where ") + sql.SQL(" and ").join(self.condition(c) for c in conditions)

    def select_list(self, items: Sequence[SelectItem | CountItem]) -> sql.Composable:
        parts = []
        for item in items:
            if isinstance(item, SelectItem) and item.field is None:
                parts.append(sql.SQL("{}.*").format(self.alias))
                continue
            parts.append(
                sql.SQL("{} as {}").format(self.value(item), sql.Identifier(output_name(item)))
            )
        return sql.SQL(", ").join(parts)

    def value(self, item: SelectItem | CountItem, *, aggregated: bool = True) -> sql.Composable:
        """A select item's expression, PostgREST's ``CAST(SUM(CAST(field AS t)) AS t)``
        (without the aggregate when not ``aggregated``: what a spread hands to its parent)."""
        if isinstance(item, CountItem):
            expr: sql.Composable = sql.SQL("count(*)") if aggregated else sql.SQL("true")
            return _cast(expr, item.cast) if aggregated else expr
        assert item.field is not None
        expr = _cast(self.field(item.field), item.cast)
        if item.aggregate is None or not aggregated:
            return expr
        return _cast(sql.SQL(f"{item.aggregate}({{}})").format(expr), item.aggregate_cast)

    def group_by(self, items: Sequence[Item], columns: Sequence[str]) -> list[sql.Composable]:
        """The fields a level with aggregates is grouped by: every plain field (``*`` is each
        of ``columns``)."""
        terms: list[sql.Composable] = []
        for item in items:
            if isinstance(item, SelectItem) and item.aggregate is None:
                fields = [Field(c) for c in columns] if item.field is None else [item.field]
                terms.extend(self.field(f) for f in fields)
        return terms

    def order_by(self, query: ReadQuery) -> sql.Composable:
        if not query.order:
            return sql.SQL("")
        terms = []
        for term in query.order:
            text = " desc" if term.descending else " asc"
            if term.nulls:
                text += f" nulls {term.nulls}"
            terms.append(self.field(term.field) + sql.SQL(text))
        return sql.SQL(" order by ") + sql.SQL(", ").join(terms)


def output_name(item: SelectItem | CountItem) -> str:
    """The key of a select item in the response: its alias, else the aggregate's name, else
    the last JSON key or the column."""
    if item.alias:
        return item.alias
    if isinstance(item, CountItem):
        return "count"
    if item.aggregate is not None:
        return item.aggregate
    assert item.field is not None
    return item.field.path[-1][1] if item.field.path else item.field.name


def is_aggregate(item: Item) -> bool:
    return isinstance(item, CountItem) or (
        isinstance(item, SelectItem) and item.aggregate is not None
    )


def _cast(expr: sql.Composable, cast: str | None) -> sql.Composable:
    return sql.SQL("cast({} as {})").format(expr, sql.SQL(cast)) if cast else expr


def limit_offset(query: ReadQuery) -> sql.Composable:
    limit = MAX_ROWS if query.limit is None else min(query.limit, MAX_ROWS)
    return sql.SQL(" limit {} offset {}").format(sql.Literal(limit), sql.Literal(query.offset))


#: The page as CSV, as PostgREST renders it: the column names, then each row's record text
#: without its parentheses.
_CSV_BODY = sql.SQL(
    "(select coalesce(string_agg(k, ','), '') from (select json_object_keys(row_to_json(h)) as k"
    " from (select * from pgrst_source limit 1) h) keys) || chr(10) || coalesce(string_agg("
    "substring(pgrst_source::text, 2, length(pgrst_source::text) - 2), chr(10)), '')"
)


def aggregate(
    source: sql.Composable,
    count_sql: sql.Composable | None,
    *,
    flagged: bool = False,
    csv: bool = False,
) -> sql.Composed:
    """total (when counted), rows in this page, the JSON body, and whether any row was inserted
    (upserts only: the source then carries a ``pgrst_inserted`` column, dropped from the body).

    One aggregate over the rows, as PostgREST's statement is (its plan's top node is the
    ``Aggregate``)."""
    total = count_sql if count_sql is not None else sql.SQL("null::bigint")
    if flagged:
        body = sql.SQL("json_agg(to_jsonb(pgrst_source) - 'pgrst_inserted')")
        inserted = sql.SQL("bool_or(pgrst_inserted)")
    else:
        body, inserted = sql.SQL("json_agg(pgrst_source)"), sql.SQL("null::bool")
    text = sql.SQL("coalesce({}, '[]')::text").format(body)
    return sql.SQL(
        "with pgrst_source as ({source}) "
        "select ({total}) as total, count(*) as page, {text} as body, {inserted} "
        "from pgrst_source"
    ).format(source=source, total=total, text=_CSV_BODY if csv else text, inserted=inserted)


#: Turns a write (``insert … returning "t".*``) into the statement's result when the
#: response embeds resources: given the write, whether it flags inserted rows, and the
#: statement's bindings.
Shape = Callable[[sql.Composable, bool, Bindings], sql.Composable]


def _returning(
    builder: Builder, query: ReadQuery, representation: bool, shape: Shape | None
) -> sql.Composable:
    if not representation:
        return sql.SQL(" returning 1")
    if shape is not None:
        return sql.SQL(" returning {}.*").format(builder.alias)
    return sql.SQL(" returning ") + builder.select_list(columns_only(query.select))


#: Reads a function's rows (given its call and the statement's bindings) with embedded
#: resources: the statement's result.
FunctionRows = Callable[[sql.Composable, Bindings], sql.Composable]


def columns_only(items: Sequence[Item]) -> list[SelectItem]:
    """The select list of a result read without embedding."""
    plain = [item for item in items if isinstance(item, SelectItem)]
    if len(plain) != len(items):  # pragma: no cover - such reads are embedding's
        raise RestError(400, "PGRST100", "embedded resources need a relation's rows")
    return plain


def aggregated_columns(items: Sequence[Item]) -> list[SelectItem | CountItem]:
    """The select list of a function's result read without embedding: columns and
    aggregates."""
    plain = [item for item in items if isinstance(item, SelectItem | CountItem)]
    if len(plain) != len(items):  # pragma: no cover - such reads are embedding's
        raise RestError(400, "PGRST100", "embedded resources need a relation's rows")
    return plain


def _finish(
    builder: Builder, source: sql.Composable, shape: Shape | None, *, flagged: bool = False
) -> Statement:
    if shape is not None:
        return builder.statement(shape(source, flagged, builder.bindings))
    return builder.statement(aggregate(source, None, flagged=flagged))


def check_columns(table: Table, names: Sequence[str]) -> None:
    for name in names:
        if name not in table.columns:
            raise RestError(
                400,
                "PGRST204",
                f"Could not find the '{name}' column of '{table.name}' in the schema cache",
            )


def insert(
    table: Table,
    query: ReadQuery,
    rows: list[dict[str, Any]],
    *,
    representation: bool,
    count: bool,
    resolution: str | None,
    missing_default: bool,
    shape: Shape | None = None,
) -> Statement:
    columns = query.columns if query.columns is not None else list(rows[0]) if rows else []
    check_columns(table, columns)
    builder = Builder(table, table.name)
    target = sql.SQL("{}.{} as {}").format(
        sql.Identifier(table.schema), sql.Identifier(table.name), builder.alias
    )
    idents = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    values: sql.Composable
    if not columns:
        values = sql.SQL(" default values")
    elif missing_default and query.columns is not None:
        values = _values_with_defaults(builder, table, columns, rows)
    else:
        values = sql.SQL(" select {} from json_populate_recordset(null::{}.{}, {}::json)").format(
            idents,
            sql.Identifier(table.schema),
            sql.Identifier(table.name),
            builder.bind(json.dumps(rows)),
        )
    conflict = _on_conflict(table, query, columns, resolution)
    flagged = resolution == "merge-duplicates" and bool(columns)
    returning = _returning(builder, query, representation, shape)
    if flagged:
        returning += sql.SQL(", ({}.xmax = 0) as pgrst_inserted").format(builder.alias)
    source = sql.SQL("insert into {} ({}){}{}{}").format(
        target, idents, values, conflict, returning
    )
    if not columns:
        source = sql.SQL("insert into {}{}{}").format(
            target, values, _returning(builder, query, representation, shape)
        )
    return _finish(builder, source, shape, flagged=flagged)


def _values_with_defaults(
    builder: Builder, table: Table, columns: Sequence[str], rows: list[dict[str, Any]]
) -> sql.Composable:
    """PostgREST's ``missing=default``: each object is laid over an object of the listed
    columns' defaults, so every default is evaluated once per row (a serial's sequence moves
    for every row, as on PostgREST) and a column the object has wins."""
    defaults = [
        sql.SQL("{}, {}").format(sql.Literal(name), sql.SQL(table.columns[name].default or ""))
        for name in columns
        if table.columns[name].default
    ]
    laid = sql.SQL(
        "(select jsonb_agg(jsonb_build_object({}) || elem) from jsonb_array_elements({}::jsonb)"
        " elem)"
    ).format(sql.SQL(", ").join(defaults), builder.bind(json.dumps(rows)))
    typed = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(table.columns[name].type))
        for name in columns
    )
    return sql.SQL(" select {} from jsonb_to_recordset({}) as pgrst_body({})").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in columns), laid, typed
    )


def _on_conflict(
    table: Table, query: ReadQuery, columns: Sequence[str], resolution: str | None
) -> sql.Composable:
    if resolution is None:
        return sql.SQL("")
    target = query.on_conflict or list(table.primary_key)
    check_columns(table, target)
    if not target:
        raise RestError(400, "PGRST100", "on_conflict requires a primary key or column list")
    head = sql.SQL(" on conflict ({})").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in target)
    )
    if resolution == "ignore-duplicates" or not columns:
        return head + sql.SQL(" do nothing")
    sets = sql.SQL(", ").join(
        sql.SQL("{0} = excluded.{0}").format(sql.Identifier(c)) for c in columns
    )
    return head + sql.SQL(" do update set ") + sets


def update(
    table: Table,
    query: ReadQuery,
    body: dict[str, Any],
    *,
    representation: bool,
    shape: Shape | None = None,
) -> Statement:
    check_columns(table, list(body))
    builder = Builder(table, table.name)
    target = sql.SQL("{}.{} as {}").format(
        sql.Identifier(table.schema), sql.Identifier(table.name), builder.alias
    )
    if not body:
        empty = sql.SQL("select {} from {} where false").format(
            sql.SQL("{}.*").format(builder.alias) if representation else sql.SQL("1"), target
        )
        return _finish(builder, empty, shape)
    record = builder.bind(json.dumps(body))
    sets = sql.SQL(", ").join(
        sql.SQL("{0} = pgrst_body.{0}").format(sql.Identifier(c)) for c in body
    )
    source = sql.SQL(
        "update {} set {} from (select * from json_populate_record(null::{}.{}, {}::json)) "
        "pgrst_body{}{}"
    ).format(
        target,
        sets,
        sql.Identifier(table.schema),
        sql.Identifier(table.name),
        record,
        builder.where(query.where),
        _returning(builder, query, representation, shape),
    )
    return _finish(builder, source, shape)


def delete(
    table: Table, query: ReadQuery, *, representation: bool, shape: Shape | None = None
) -> Statement:
    builder = Builder(table, table.name)
    target = sql.SQL("{}.{} as {}").format(
        sql.Identifier(table.schema), sql.Identifier(table.name), builder.alias
    )
    source = sql.SQL("delete from {}{}{}").format(
        target, builder.where(query.where), _returning(builder, query, representation, shape)
    )
    return _finish(builder, source, shape)


# -- RPC ---------------------------------------------------------------------------------------
def argument_text(value: object, type_: str, *, composite: bool = False) -> str | None:
    """A JSON argument as the text PostgreSQL will cast to the parameter's type."""
    if value is None:
        return None
    if type_ in {"json", "jsonb"} or composite:
        return json.dumps(value)
    if isinstance(value, list):
        return array_literal(value)
    return _scalar_text(value)


def call(
    function: Function,
    arguments: dict[str, str | None],
    query: ReadQuery,
    *,
    count: bool,
    json_arguments: bool = False,
    rows: FunctionRows | None = None,
) -> tuple[Statement, str]:
    """The call statement and the result shape: "void", "scalar", "object" or "set".

    ``rows`` reads the result of a function returning a table's rows when the request embeds
    resources in it."""
    builder = Builder(None, function.name)
    args = []
    for parameter in function.parameters:
        if parameter.name in arguments:
            placeholder = builder.bind(arguments[parameter.name])
            value = sql.SQL("{}::{}").format(placeholder, sql.SQL(parameter.type))
            if parameter.composite and json_arguments:
                # A JSON object becomes the row, as PostgREST's json_to_record arguments do.
                value = sql.SQL("json_populate_record(null::{}, {}::json)").format(
                    sql.SQL(parameter.type), placeholder
                )
            if parameter.name:
                args.append(sql.SQL("{} := {}").format(sql.Identifier(parameter.name), value))
            else:
                args.append(value)
    invocation = sql.SQL("{}.{}({})").format(
        sql.Identifier(function.schema), sql.Identifier(function.name), sql.SQL(", ").join(args)
    )
    if function.returns_void:
        return builder.statement(sql.SQL("select {}").format(invocation)), "void"
    if not function.returns_set and not function.returns_composite:
        statement = sql.SQL("select to_json({})::text").format(invocation)
        return builder.statement(statement), "scalar"
    shape = "set" if function.returns_set else "object"
    if rows is not None:
        return builder.statement(rows(invocation, builder.bindings)), shape
    relation = sql.SQL("{} as {}").format(invocation, builder.alias)
    group: sql.Composable = sql.SQL("")
    if function.returns_composite:
        items = aggregated_columns(query.select)
        select = builder.select_list(items)
        if any(is_aggregate(item) for item in items):
            # ``*`` next to an aggregate groups by nothing here: PostgreSQL then says which
            # column is neither grouped nor aggregated (42803).
            terms = builder.group_by(items, ())
            group = sql.SQL(" group by ") + sql.SQL(", ").join(terms) if terms else group
    else:
        select = sql.SQL("{} as {}").format(builder.alias, builder.alias)
    source = sql.SQL("select {} from {}{}{}{}{}").format(
        select,
        relation,
        builder.where(query.where),
        group,
        builder.order_by(query),
        limit_offset(query),
    )
    count_sql = None
    if count:
        count_sql = sql.SQL("select count(*) from {}{}").format(
            relation, builder.where(query.where)
        )
    if not function.returns_composite:
        scalars = sql.SQL(
            "with pgrst_source as ({source}) "
            "select ({total}) as total, (select count(*) from pgrst_source) as page, "
            "coalesce((select json_agg({alias}) from pgrst_source), '[]')::text as body, null"
        ).format(source=source, total=count_sql or sql.SQL("null::bigint"), alias=builder.alias)
        return builder.statement(scalars), "set"
    return builder.statement(aggregate(source, count_sql)), shape
