"""Reads with embedded resources (``select=*,author(name),books!inner(title)``) as one SQL
statement, run under the request's role so that every embedded table's RLS applies.

Each embed is a lateral subquery of its parent row:

* to-one (many-to-one, one-to-one): ``left join lateral (select row_to_json(x) as body from
  (<child>) x)`` → the object or ``null``; ``!inner`` drops parents without one;
* to-many (one-to-many, many-to-many through the junction): ``json_agg`` of the children →
  an array, ``[]`` when there are none; ``!inner`` keeps parents with at least one;
* spread of a to-one embed (``...author(name)``): the child's columns become the parent's;
* spread of a to-many embed (``...books(title)``, PostgREST v13): each of the children's
  columns becomes one of the parent's, a JSON array over the children (``[]`` without any),
  in the embed's order; an embed or spread inside it gives one element per child.

The child subquery carries the embed's own filters, order, limit and offset
(``author.name=eq.x``, ``books.order=title.desc``, ``books.limit=2``), and nests further.
``order=author(name)`` orders parents by a column of a to-one embed. A null filter on an embed's
key (``books=not.is.null``, ``books=is.null``, also in ``or=(…)``) tests in the parent's
``where`` whether its lateral found a related row, the condition ``!inner`` joins on. A
computed relationship's child is its function called with the parent row
(``fn(row(…)::parent)``).

The rows may come from elsewhere than the table: a write's ``returning`` (``after_write``) or a
function returning the table's rows (``function_rows``: ``rpc/fn?select=*,author(*)``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field, replace

from psycopg import sql

from localbase.rest import aggregates, relationships
from localbase.rest.catalog import Catalog, Function, Table
from localbase.rest.errors import RestError
from localbase.rest.query import (
    Condition,
    CountItem,
    Embed,
    EmbedQuery,
    Field,
    Item,
    Logic,
    OrderTerm,
    ReadQuery,
    SelectItem,
    tests_embed,
)
from localbase.rest.relationships import Relationship
from localbase.rest.statements import (
    Bindings,
    Builder,
    FunctionRows,
    aggregate,
    is_aggregate,
    limit_offset,
    output_name,
)


@dataclass
class Relation:
    """One level of the read: its select list, joins, conditions and order, as SQL parts."""

    select: list[sql.Composable] = field(default_factory=list)
    joins: list[sql.Composable] = field(default_factory=list)
    #: Each embed's key: SQL true when the row has a related row, and the embed's join.
    laterals: dict[str, tuple[sql.Composable, sql.Composable]] = field(default_factory=dict)
    #: The joins that decide which rows a count counts, by embed key: ``!inner`` embeds and
    #: embeds a null filter (``key=not.is.null``) tests.
    counted_joins: dict[str, sql.Composable] = field(default_factory=dict)
    where: list[sql.Composable] = field(default_factory=list)
    group_by: list[sql.Composable] | None = None
    #: What embeds and spreads add to ``group_by`` on a level with aggregates.
    grouping: list[sql.Composable] = field(default_factory=list)
    order: list[sql.Composable] = field(default_factory=list)
    embeds: dict[str, tuple[Embed, Relationship, Table]] = field(default_factory=dict)
    #: The keys of its rows, one per column of ``select``'s output (a to-many spread of this
    #: level turns each into an array).
    names: list[str] = field(default_factory=list)


def has_embeds(items: Sequence[Item]) -> bool:
    return any(
        not isinstance(item, SelectItem) or _is_count(item) or is_aggregate(item) for item in items
    )


def _is_count(item: SelectItem) -> bool:
    return item.field is not None and item.field.name == "count" and not item.field.path


class Reader:
    """Builds the select of one request. An embedded table's alias is its name and a number
    (``messages_1``), as PostgREST names it, so PostgreSQL's messages read the same."""

    def __init__(
        self,
        catalog: Catalog,
        schema: str,
        query: ReadQuery,
        bindings: Bindings,
        *,
        expand_star: bool = False,
    ) -> None:
        self.catalog = catalog
        #: ``*`` as the table's columns, one by one (the top level of a write's result, whose
        #: rows carry the extra ``pgrst_inserted`` flag).
        self.expand_star = expand_star
        self.schema = schema
        self.query = query
        self.bindings = bindings
        self.counter = 0
        self.visited: set[tuple[str, ...]] = {()}

    def next_alias(self, table: Table) -> str:
        self.counter += 1
        return f"{table.name}_{self.counter}"

    # -- one level ---------------------------------------------------------------------------
    def relation(
        self,
        table: Table,
        alias: str,
        items: Sequence[Item],
        path: tuple[str, ...],
        *,
        hoisted: bool = False,
    ) -> Relation:
        """One level; ``hoisted``: a spread whose aggregates its parent computes."""
        params = self._params(path)
        builder = Builder(table, alias, self.bindings)
        out = Relation()
        plain: list[sql.Composable] = []
        counted = False
        grouped = any(
            (_counts(item, table) and not hoisted)
            or (isinstance(item, Embed) and aggregates.has_hoisted(item))
            for item in items
        )
        for index, item in enumerate(items):
            if isinstance(item, Embed):
                self._embed(out, table, builder, item, path, grouped=grouped)
                continue
            if hoisted and is_aggregate(item):
                out.select.append(aggregates.hoisted_value(builder, item, index))
                out.names.append(aggregates.hoisted_name(index))
                continue
            if isinstance(item, CountItem) or _counts(item, table):
                counted = True
                out.select.append(
                    builder.select_list([item]) if is_aggregate(item) else _count_expr(item)
                )
            elif item.field is None and self.expand_star and not path:
                out.select.extend(
                    builder.select_list([SelectItem(Field(name))]) for name in table.columns
                )
                plain.extend(_group_terms(builder, table, item))
            else:
                out.select.append(builder.select_list([item]))
                plain.extend(_group_terms(builder, table, item))
            out.names.extend(_output_names(item, table))
        if counted or grouped:
            out.group_by = plain + out.grouping
        tests = {key: test for key, (test, _) in out.laterals.items()}
        out.where.extend(builder.condition(c, tests) for c in params.where)
        for key in _tested(params.where, tests):
            out.counted_joins.setdefault(key, out.laterals[key][1])
        out.order = [self._order_term(out, table, builder, term) for term in params.order]
        return out

    def _params(self, path: tuple[str, ...]) -> EmbedQuery:
        if not path:
            q = self.query
            return EmbedQuery(q.where, q.order, q.limit, q.offset)
        self.visited.add(path)
        return self.query.embedded.get(path) or EmbedQuery()

    def _embed(
        self,
        out: Relation,
        table: Table,
        builder: Builder,
        embed: Embed,
        path: tuple[str, ...],
        *,
        grouped: bool = False,
    ) -> None:
        rel = relationships.find(
            self.catalog.relationships, self.schema, table.name, embed.name, embed.hint
        )
        child_table = self.catalog.tables.get(rel.foreign)
        if child_table is None:  # pragma: no cover - relationships only join known relations
            raise RestError(400, "PGRST200", f"Could not find the table '{rel.foreign[1]}'")
        if embed.spread and not rel.to_one:
            aggregates.refuse_in_to_many_spread(embed)
        if embed.key in out.embeds:
            # PostgREST names each embed's lateral join after the parent and the embed, so the
            # same key twice at one level is PostgreSQL's duplicate alias error.
            raise RestError(
                400,
                "42712",
                f'table name "{table.name}_{embed.key}_{len(path) + 1}" specified more than once',
            )
        out.embeds[embed.key] = (embed, rel, child_table)
        child_alias = self.next_alias(child_table)
        child_path = (*path, embed.key)
        hoisted = aggregates.has_hoisted(embed)
        inner, names = self.subquery(
            child_table, child_alias, embed.select, child_path, rel, builder, hoisted=hoisted
        )
        lateral = sql.Identifier(child_alias + "_rel")
        inner_join = embed.join == "inner"
        body: sql.Composable
        present: sql.Composable  # the parent row has a related row
        if embed.spread and not rel.to_one:
            body = _arrays(inner, names)
            present = sql.SQL("{}.pgrst_rows > 0").format(lateral)
            _spread_arrays(out, lateral, names, grouped)
        elif embed.spread:
            body = sql.SQL("({})").format(inner)
            # The child's row itself, even when every column it gives is null.
            present = sql.SQL("{} is distinct from null").format(lateral)
            if grouped:
                columns, terms, names = aggregates.spread_columns(
                    lateral, embed.select, child_table
                )
                out.select.extend(columns)
                out.grouping.extend(terms)
            else:
                out.select.append(sql.SQL("{}.*").format(lateral))
            out.names.extend(names)
        elif rel.to_one:
            body = sql.SQL("(select row_to_json(pgrst_row) as body from ({}) pgrst_row)").format(
                inner
            )
            present = sql.SQL("{}.body is not null").format(lateral)
        else:
            body = sql.SQL(
                "(select coalesce(json_agg(pgrst_row), '[]') as body from ({}) pgrst_row)"
            ).format(inner)
            present = sql.SQL("json_array_length({}.body) > 0").format(lateral)
        if embed.select and not embed.spread:
            # An empty embed (``author()``) only joins, for !inner and filters: not in the body.
            value, term = aggregates.embed_value(lateral, embed.key, grouped)
            out.select.append(value)
            out.names.append(embed.key)
            out.grouping.extend([term] if term is not None else [])
        if inner_join:
            # A to-one lateral has no row without a related one: the join drops the parent.
            condition = sql.SQL("true") if rel.to_one else present
            join = sql.SQL(" join lateral {} as {} on {}").format(body, lateral, condition)
            out.counted_joins[embed.key] = join
        else:
            join = sql.SQL(" left join lateral {} as {} on true").format(body, lateral)
        out.joins.append(join)
        out.laterals[embed.key] = (present, join)

    def subquery(
        self,
        table: Table,
        alias: str,
        items: Sequence[Item],
        path: tuple[str, ...],
        rel: Relationship,
        parent: Builder,
        *,
        hoisted: bool = False,
    ) -> tuple[sql.Composable, list[str]]:
        """``select … from child [join junction] <laterals> where <join> and <filters> …``,
        and the keys of its rows."""
        level = self.relation(table, alias, items, path, hoisted=hoisted)
        params = self._params(path)
        source, join_conditions = self._join(table, alias, rel, parent)
        statement = _select(level, source, join_conditions, _page(params.limit, params.offset))
        return statement, level.names

    def _join(
        self, table: Table, alias: str, rel: Relationship, parent: Builder
    ) -> tuple[sql.Composable, list[sql.Composable]]:
        """The child's FROM item and the conditions tying it to the parent row."""
        child = sql.Identifier(alias)
        if rel.function is not None:
            return _computed_source(rel.function, parent, child), []
        source: sql.Composable = sql.SQL("{}.{} as {}").format(
            sql.Identifier(table.schema), sql.Identifier(table.name), child
        )
        junction = rel.junction
        if junction is None:
            return source, [
                sql.SQL("{}.{} = {}.{}").format(
                    child, sql.Identifier(theirs), parent.alias, sql.Identifier(ours)
                )
                for ours, theirs in rel.columns
            ]
        through = sql.Identifier(alias + "_junction")
        on = sql.SQL(" and ").join(
            sql.SQL("{}.{} = {}.{}").format(through, sql.Identifier(j), child, sql.Identifier(c))
            for c, j in junction.target
        )
        source = sql.SQL("{} join {}.{} as {} on {}").format(
            source,
            sql.Identifier(junction.table[0]),
            sql.Identifier(junction.table[1]),
            through,
            on,
        )
        return source, [
            sql.SQL("{}.{} = {}.{}").format(
                through, sql.Identifier(j), parent.alias, sql.Identifier(o)
            )
            for o, j in junction.source
        ]

    def _order_term(
        self, out: Relation, table: Table, builder: Builder, term: OrderTerm
    ) -> sql.Composable:
        direction = " desc" if term.descending else " asc"
        if term.nulls:
            direction += f" nulls {term.nulls}"
        if term.relation is None:
            return builder.field(term.field) + sql.SQL(direction)
        found = out.embeds.get(term.relation)
        if found is None:
            raise not_embedded(term.relation)
        embed, rel, child_table = found
        if not rel.to_one:
            raise RestError(
                400,
                "PGRST118",
                f"A related order on '{embed.name}' is not possible",
                f"'{table.name}' and '{embed.name}' do not form a many-to-one or one-to-one "
                "relationship",
            )
        alias = self.next_alias(child_table)
        source, conditions = self._join(child_table, alias, rel, builder)
        column = Builder(child_table, alias, self.bindings).field(term.field)
        where = (
            sql.SQL(" where ") + sql.SQL(" and ").join(conditions) if conditions else sql.SQL("")
        )
        value = sql.SQL("(select {} from {}{})").format(column, source, where)
        return value + sql.SQL(direction)

    def check_paths(self) -> None:
        for path in self.query.embedded:
            if path not in self.visited:
                raise not_embedded(path[-1])


def _computed_source(
    function: relationships.QualifiedName, parent: Builder, child: sql.Identifier
) -> sql.Composable:
    """``fn(row(<parent columns>)::parent_type) as child``: the parent row spelled out column
    by column, so that it has the parent's type whatever its rows come from (a table, a write's
    ``returning``, a function's result)."""
    table = parent.table
    assert table is not None
    row = sql.SQL(", ").join(
        sql.SQL("{}.{}").format(parent.alias, sql.Identifier(name)) for name in table.columns
    )
    return sql.SQL("{}.{}(row({})::{}.{}) as {}").format(
        sql.Identifier(function[0]),
        sql.Identifier(function[1]),
        row,
        sql.Identifier(table.schema),
        sql.Identifier(table.name),
        child,
    )


def _arrays(inner: sql.Composable, names: Sequence[str]) -> sql.Composable:
    """A to-many spread's lateral subquery: how many children there are (for ``!inner``),
    and each of their columns as a JSON array, in their order (``[]`` without children)."""
    columns: list[sql.Composable] = [sql.SQL("count(*) as pgrst_rows")]
    columns.extend(
        sql.SQL("coalesce(json_agg(pgrst_row.{0}), '[]') as {0}").format(sql.Identifier(name))
        for name in names
    )
    return sql.SQL("(select {} from ({}) pgrst_row)").format(sql.SQL(", ").join(columns), inner)


def _spread_arrays(
    out: Relation, lateral: sql.Identifier, names: Sequence[str], grouped: bool
) -> None:
    """The parent's columns for a to-many spread's arrays (as ``jsonb``, which has equality,
    on a level grouped by them)."""
    for name in names:
        column: sql.Composable = sql.SQL("{}.{}").format(lateral, sql.Identifier(name))
        if grouped:
            column = sql.SQL("{}::jsonb").format(column)
            out.grouping.append(column)
        out.select.append(sql.SQL("{} as {}").format(column, sql.Identifier(name)))
        out.names.append(name)


def _tested(conditions: Sequence[Condition], keys: Collection[str]) -> Iterator[str]:
    """The keys of the embeds that null filters (``key=is.null``) in ``conditions`` test."""
    for node in conditions:
        if isinstance(node, Logic):
            yield from _tested(node.children, keys)
        elif tests_embed(node, keys):
            yield node.field.name


def _output_names(item: SelectItem | CountItem, table: Table) -> list[str]:
    """The keys a select item gives its rows (``*``: every column)."""
    if isinstance(item, SelectItem) and item.field is None:
        return list(table.columns)
    return [output_name(item)]


def not_embedded(name: str) -> RestError:
    return RestError(
        400,
        "PGRST108",
        f"'{name}' is not an embedded resource in this request",
        hint=f"Verify that '{name}' is included in the 'select' query parameter.",
    )


def _counts(item: Item, table: Table) -> bool:
    """An aggregate, or a bare ``count`` where the relation has no such column (PostgreSQL's
    ``rel.count``)."""
    if isinstance(item, Embed):
        return False
    return is_aggregate(item) or (
        isinstance(item, SelectItem) and _is_count(item) and "count" not in table.columns
    )


def _count_expr(item: SelectItem | CountItem) -> sql.Composable:
    expr: sql.Composable = sql.SQL("count(*)")
    if item.cast:
        expr = sql.SQL("cast({} as {})").format(expr, sql.SQL(item.cast))
    return sql.SQL("{} as {}").format(expr, sql.Identifier(item.alias or "count"))


def _group_terms(builder: Builder, table: Table, item: SelectItem) -> list[sql.Composable]:
    if item.field is None:
        return [builder.field(Field(name)) for name in table.columns]
    return [builder.field(item.field)]


def _page(limit: int | None, offset: int) -> sql.Composable:
    text = ""
    if limit is not None:
        text += f" limit {int(limit)}"
    if offset:
        text += f" offset {int(offset)}"
    return sql.SQL(text)


def _select(
    level: Relation,
    source: sql.Composable,
    extra_where: Sequence[sql.Composable],
    page: sql.Composable,
) -> sql.Composable:
    conditions = [*extra_where, *level.where]
    where = sql.SQL(" where ") + sql.SQL(" and ").join(conditions) if conditions else sql.SQL("")
    group: sql.Composable = sql.SQL("")
    if level.group_by:
        group = sql.SQL(" group by ") + sql.SQL(", ").join(level.group_by)
    order = sql.SQL(" order by ") + sql.SQL(", ").join(level.order) if level.order else sql.SQL("")
    return sql.SQL("select {} from {}{}{}{}{}{}").format(
        sql.SQL(", ").join(level.select),
        source,
        sql.SQL("").join(level.joins),
        where,
        group,
        order,
        page,
    )


def read(
    catalog: Catalog,
    table: Table,
    query: ReadQuery,
    *,
    count: bool,
    source: sql.Composable | None = None,
    bindings: Bindings | None = None,
    csv: bool = False,
    schema: str | None = None,
) -> sql.Composable:
    """The whole read as one statement: total (when counted), page size and JSON body.

    ``source`` replaces the table (a function call returning its rows); relationships are
    looked up in ``schema`` (the function's), by default the table's."""
    bindings = bindings if bindings is not None else Bindings()
    reader = Reader(catalog, schema or table.schema, query, bindings)
    relation = source or sql.SQL("{}.{}").format(
        sql.Identifier(table.schema), sql.Identifier(table.name)
    )
    from_item = sql.SQL("{} as {}").format(relation, sql.Identifier(table.name))
    level = reader.relation(table, table.name, query.select, ())
    reader.check_paths()
    main = _select(level, from_item, [], limit_offset(query))
    count_sql = _counted(level, from_item, sql.SQL("count(*)")) if count else None
    return aggregate(main, count_sql, csv=csv)


def counted_rows(
    catalog: Catalog, table: Table, query: ReadQuery, bindings: Bindings
) -> sql.Composable:
    """``select 1`` over the rows ``read`` would count (every page), for the planner to
    estimate, as PostgREST explains it for ``count=planned``."""
    reader = Reader(catalog, table.schema, query, bindings)
    relation = sql.SQL("{}.{}").format(sql.Identifier(table.schema), sql.Identifier(table.name))
    from_item = sql.SQL("{} as {}").format(relation, sql.Identifier(table.name))
    level = reader.relation(table, table.name, query.select, ())
    reader.check_paths()
    return _counted(level, from_item, sql.SQL("1"))


def _counted(level: Relation, from_item: sql.Composable, what: sql.Composable) -> sql.Composable:
    joins = list(level.counted_joins.values())
    counted = Relation(joins=joins, where=level.where, select=[what])
    return _select(counted, from_item, [], sql.SQL(""))


def after_write(
    catalog: Catalog, table: Table, query: ReadQuery
) -> Callable[[sql.Composable, bool, Bindings], sql.Composable]:
    """The result of a write whose ``select`` embeds: the written rows (``returning "t".*``,
    a CTE at the top of the statement) read back with their embedded resources. The
    top-level filters chose the rows the write touched; as in PostgREST they do not filter
    its result again (a null filter on an embed is a column's there: 42703, or ignored by an
    insert)."""
    written = replace(query, where=[])

    def shape(write: sql.Composable, flagged: bool, bindings: Bindings) -> sql.Composable:
        reader = Reader(catalog, table.schema, written, bindings, expand_star=True)
        level = reader.relation(table, table.name, query.select, ())
        reader.check_paths()
        source = sql.SQL("pgrst_write as {}").format(sql.Identifier(table.name))
        main = _select(level, source, [], sql.SQL(""))
        inserted = (
            sql.SQL("(select bool_or(pgrst_inserted) from pgrst_write)")
            if flagged
            else sql.SQL("null::bool")
        )
        return sql.SQL(
            "with pgrst_write as ({write}), pgrst_source as ({main}) "
            "select null::bigint as total, (select count(*) from pgrst_write) as page, "
            "coalesce((select json_agg(pgrst_source) from pgrst_source), '[]')::text as body, "
            "{inserted}"
        ).format(write=write, main=main, inserted=inserted)

    return shape


def needs_reader(query: ReadQuery) -> bool:
    """Whether a function's result must be read with embedding: embeds or counts in
    ``select``, parameters of embeds, or an order by an embed's column."""
    return (
        has_embeds(query.select)
        or bool(query.embedded)
        or any(term.relation is not None for term in query.order)
    )


def function_rows(
    catalog: Catalog, function: Function, query: ReadQuery, *, count: bool
) -> FunctionRows | None:
    """How the result of a function returning a table's (or view's) rows is read when the
    request embeds: as that table, its rows being the call's. A function returning anything
    else (a scalar, ``table(…)``, a record) has no relationships: PGRST200, as PostgREST says
    it, naming the function's return type (or the function). None: nothing to embed in a
    single value (its ``select`` plays no part)."""
    relation = function.return_relation
    table = catalog.tables.get(relation) if relation is not None else None
    if table is None:
        if not function.returns_composite and not any(isinstance(i, Embed) for i in query.select):
            return None
        raise _no_relationships(catalog, function, query)

    def rows(call: sql.Composable, bindings: Bindings) -> sql.Composable:
        return read(
            catalog,
            table,
            query,
            count=count,
            source=call,
            bindings=bindings,
            schema=function.schema,
        )

    return rows


def _no_relationships(catalog: Catalog, function: Function, query: ReadQuery) -> RestError:
    embed = next((item for item in query.select if isinstance(item, Embed)), None)
    if embed is not None:
        return relationships.no_relationship(
            catalog.relationships, function.schema, function.origin_name, embed.name, embed.hint
        )
    related = [term.relation for term in query.order if term.relation is not None]
    if query.embedded or related:
        return not_embedded(related[0] if related else min(query.embedded)[-1])
    return RestError(
        400, "PGRST100", "localbase does not count rows in the result of this function"
    )
