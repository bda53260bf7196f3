"""Relationships between exposed tables and views, detected from foreign keys as PostgREST
detects them, and the choice of one for an embed (``select=*,author!hint(*)``).

From every foreign key ``child(cols) → parent(fcols)``:

* child → parent is many-to-one, or one-to-one when ``cols`` are the child's primary key or a
  unique key; parent → child is the inverse (one-to-many, or one-to-one);
* a table with foreign keys to two tables whose columns all belong to its primary key is a
  junction: each of the two tables has a many-to-many relationship with the other through it;
* a view that passes a table's key columns through under the same names has the table's
  relationships too (the simple ``select … from table`` views).

Functions add computed relationships: ``fn(parent) returns setof child`` in an exposed schema
relates ``parent`` to ``child`` under the name ``fn``, to-many, or to-one when it returns a
single row (``returns child``, or ``setof child rows 1``). A computed relationship replaces the
detected ones from ``parent`` to a relation named like the function (``authors(books)``
overrides the foreign keys from books to authors, and so settles their ambiguity).

Errors are PostgREST's PGRST200 (no relationship) and PGRST201 (more than one), with its
message, details and hint texts.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from localbase.rest.errors import RestError

TO_ONE = frozenset({"many-to-one", "one-to-one"})

#: Foreign keys between relations (``cols``: ``(child column, parent column)`` pairs in key
#: order) and whether the child's columns are its primary key or a unique key.
FOREIGN_KEYS_SQL = """
with uniques as (
  select conrelid, array_agg(key order by key) as cols
  from pg_constraint, unnest(conkey) as u(key)
  where contype in ('p', 'u')
  group by oid, conrelid
)
select ns.nspname, tab.relname, fns.nspname, ftab.relname, c.conname,
       cols.pairs, cols.attnums in (select u.cols from uniques u where u.conrelid = c.conrelid)
from pg_constraint c
join pg_class tab on tab.oid = c.conrelid
join pg_namespace ns on ns.oid = tab.relnamespace
join pg_class ftab on ftab.oid = c.confrelid
join pg_namespace fns on fns.oid = ftab.relnamespace
cross join lateral (
  select array_agg(array[a.attname::text, f.attname::text] order by k.ord) as pairs,
         array_agg(a.attnum order by a.attnum) as attnums
  from unnest(c.conkey, c.confkey) with ordinality as k(col, ref, ord)
  join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.col
  join pg_attribute f on f.attrelid = c.confrelid and f.attnum = k.ref
) cols
where c.contype = 'f' and c.conparentid = 0
order by c.conrelid, c.conname
"""

#: Columns of exposed views that are a base table's column under the same name (read from
#: the view's rewrite rule dependencies: information_schema hides tables the role does not own).
VIEW_COLUMNS_SQL = """
select vn.nspname, v.relname, tn.nspname, t.relname, array_agg(distinct a.attname::text)
from pg_rewrite r
join pg_class v on v.oid = r.ev_class and v.relkind in ('v', 'm')
join pg_namespace vn on vn.oid = v.relnamespace
join pg_depend d on d.objid = r.oid and d.classid = 'pg_rewrite'::regclass
 and d.refclassid = 'pg_class'::regclass and d.refobjsubid > 0
join pg_class t on t.oid = d.refobjid and t.oid <> v.oid
join pg_namespace tn on tn.oid = t.relnamespace
join pg_attribute a on a.attrelid = t.oid and a.attnum = d.refobjsubid
join pg_attribute va on va.attrelid = v.oid and va.attname = a.attname and not va.attisdropped
where vn.nspname = any(%s)
group by 1, 2, 3, 4
"""

#: Computed relationships: functions of one table-row argument returning a relation's rows.
_RELATION_KINDS = "('r', 'v', 'm', 'f', 'p')"
COMPUTED_SQL = f"""
select n.nspname, p.proname, an.nspname, ac.relname, rn.nspname, rc.relname,
       not p.proretset or p.prorows = 1
from pg_proc p
join pg_namespace n on n.oid = p.pronamespace
join pg_class ac on ac.reltype = p.proargtypes[0] and ac.relkind in {_RELATION_KINDS}
join pg_namespace an on an.oid = ac.relnamespace
join pg_class rc on rc.reltype = p.prorettype and rc.relkind in {_RELATION_KINDS}
join pg_namespace rn on rn.oid = rc.relnamespace
where p.pronargs = 1 and p.prokind = 'f' and n.nspname = any(%s)
order by n.nspname, p.proname, an.nspname, ac.relname
"""

QualifiedName = tuple[str, str]
Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Junction:
    table: QualifiedName
    constraint_source: str
    constraint_target: str
    source: Pairs  # (origin column, junction column)
    target: Pairs  # (foreign column, junction column)


@dataclass(frozen=True)
class Relationship:
    origin: QualifiedName
    foreign: QualifiedName
    cardinality: str  # many-to-one | one-to-many | one-to-one | many-to-many
    constraint: str
    columns: Pairs  # (origin column, foreign column); empty for many-to-many
    junction: Junction | None = None
    foreign_is_view: bool = False
    #: A computed relationship's function: ``function(origin row)`` returns the foreign rows.
    function: QualifiedName | None = None

    @property
    def to_one(self) -> bool:
        return self.cardinality in TO_ONE

    @property
    def is_self(self) -> bool:
        return self.origin == self.foreign

    def summary(self) -> dict[str, str]:
        """The ``details`` entry of a PGRST201 error (empty for a computed relationship, as
        PostgREST's)."""
        if self.function is not None:
            return {}
        embedding = f"{self.origin[1]} with {self.foreign[1]}"
        if self.junction is not None:
            j = self.junction
            how = (
                f"{j.table[1]} using {j.constraint_source}{_cols(c for _, c in j.source)} "
                f"and {j.constraint_target}{_cols(c for _, c in j.target)}"
            )
        else:
            how = (
                f"{self.constraint} using {self.origin[1]}{_cols(a for a, _ in self.columns)} "
                f"and {self.foreign[1]}{_cols(b for _, b in self.columns)}"
            )
        return {"cardinality": self.cardinality, "embedding": embedding, "relationship": how}

    def hint_name(self) -> str:
        if self.function is not None:
            return ""
        via = self.junction.table[1] if self.junction is not None else self.constraint
        return f"'{self.foreign[1]}!{via}'"


def _cols(names: Iterable[str]) -> str:
    return "(" + ", ".join(names) + ")"


ForeignKeyRow = tuple[str, str, str, str, str, Sequence[Sequence[str]], bool]
#: function schema, name, argument relation schema, name, result relation schema, name, to-one
ComputedRow = tuple[str, str, str, str, str, str, bool]


def build(
    foreign_keys: Iterable[ForeignKeyRow],
    primary_keys: dict[QualifiedName, tuple[str, ...]],
    views: Iterable[tuple[str, str, str, str, Sequence[str]]],
    exposed: Sequence[str],
    computed: Iterable[ComputedRow] = (),
) -> dict[QualifiedName, list[Relationship]]:
    """Every relationship, by origin, whose both ends are in an exposed schema; computed
    relationships replace the detected ones they are named after."""
    direct: list[Relationship] = []
    for schema, table, fschema, ftable, constraint, pairs, unique in foreign_keys:
        cols = tuple((str(a), str(b)) for a, b in pairs)
        kind = "one-to-one" if unique else "many-to-one"
        direct.append(Relationship((schema, table), (fschema, ftable), kind, constraint, cols))
    direct += _view_relationships(direct, list(views))
    rels = direct + [_inverse(r) for r in direct] + _many_to_many(direct, primary_keys)
    functions = [_computed(row) for row in computed]
    overridden = {(rel.origin, rel.function) for rel in functions}
    rels = [rel for rel in rels if (rel.origin, rel.foreign) not in overridden] + functions
    by_origin: dict[QualifiedName, list[Relationship]] = {}
    for rel in rels:
        junction_ok = rel.junction is None or rel.junction.table[0] in exposed
        if rel.origin[0] in exposed and rel.foreign[0] in exposed and junction_ok:
            by_origin.setdefault(rel.origin, []).append(rel)
    return by_origin


def _computed(row: ComputedRow) -> Relationship:
    schema, name, oschema, origin, fschema, foreign, to_one = row
    return Relationship(
        (str(oschema), str(origin)),
        (str(fschema), str(foreign)),
        "many-to-one" if to_one else "one-to-many",
        "",
        (),
        function=(str(schema), str(name)),
    )


def _inverse(rel: Relationship) -> Relationship:
    kind = "one-to-one" if rel.cardinality == "one-to-one" else "one-to-many"
    swapped = tuple((b, a) for a, b in rel.columns)
    return Relationship(rel.foreign, rel.origin, kind, rel.constraint, swapped)


def _many_to_many(
    direct: list[Relationship], primary_keys: dict[QualifiedName, tuple[str, ...]]
) -> list[Relationship]:
    found = []
    by_table: dict[QualifiedName, list[Relationship]] = {}
    for rel in direct:
        if rel.cardinality == "many-to-one":
            by_table.setdefault(rel.origin, []).append(rel)
    for junction, rels in by_table.items():
        key = set(primary_keys.get(junction, ()))
        for first in rels:
            for second in rels:
                if first.constraint == second.constraint:
                    continue
                used = {a for a, _ in first.columns} | {a for a, _ in second.columns}
                if not key or not used <= key:
                    continue
                found.append(
                    Relationship(
                        first.foreign,
                        second.foreign,
                        "many-to-many",
                        "",
                        (),
                        Junction(
                            junction,
                            first.constraint,
                            second.constraint,
                            tuple((b, a) for a, b in first.columns),
                            tuple((b, a) for a, b in second.columns),
                        ),
                    )
                )
    return found


def _view_relationships(
    direct: list[Relationship], views: list[tuple[str, str, str, str, Sequence[str]]]
) -> list[Relationship]:
    """A view that keeps a table's foreign-key columns (same names) inherits its foreign keys
    in both directions."""
    found = []
    for vschema, vname, tschema, tname, columns in views:
        kept = set(columns)
        for rel in direct:
            if rel.origin == (tschema, tname) and {a for a, _ in rel.columns} <= kept:
                found.append(replace(rel, origin=(vschema, vname)))
            if rel.foreign == (tschema, tname) and {b for _, b in rel.columns} <= kept:
                found.append(replace(rel, foreign=(vschema, vname), foreign_is_view=True))
    return found


def find(
    relationships: dict[QualifiedName, list[Relationship]],
    schema: str,
    origin: str,
    target: str,
    hint: str | None,
) -> Relationship:
    """The one relationship ``origin → target`` (with ``hint``), or PGRST200 / PGRST201."""
    candidates = relationships.get((schema, origin), [])
    matches = [rel for rel in candidates if _matches(rel, schema, target, hint)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise RestError(
            300,
            "PGRST201",
            f"Could not embed because more than one relationship was found for '{origin}' "
            f"and '{target}'",
            [rel.summary() for rel in matches],
            f"Try changing '{target}' to one of the following: "
            + ", ".join(rel.hint_name() for rel in matches)
            + ". Find the desired relationship in the 'details' key.",
        )
    raise no_relationship(relationships, schema, origin, target, hint)


def no_relationship(
    relationships: dict[QualifiedName, list[Relationship]],
    schema: str,
    origin: str,
    target: str,
    hint: str | None,
) -> RestError:
    """PGRST200: nothing relates ``origin`` to ``target``."""
    using = f"' using the hint '{hint}" if hint else ""
    return RestError(
        400,
        "PGRST200",
        f"Could not find a relationship between '{origin}' and '{target}' in the schema cache",
        f"Searched for a foreign key relationship between '{origin}' and '{target}{using}' "
        f"in the schema '{schema}', but no matches were found.",
        _suggestion(relationships, schema, origin, target),
    )


def _single(columns: Pairs, side: int) -> str | None:
    return columns[0][side] if len(columns) == 1 else None


def _matches(rel: Relationship, schema: str, target: str, hint: str | None) -> bool:
    if rel.function is not None:  # by the function's name only; hints play no part
        return rel.function == (schema, target)
    foreign = rel.foreign[1]
    junction = rel.junction
    if rel.is_self and junction is None:
        if hint is None:
            return (foreign == target and rel.cardinality == "one-to-many") or (
                _single(rel.columns, 0) == target and rel.cardinality == "many-to-one"
            )
        return (
            foreign == target
            and rel.cardinality == "one-to-many"
            and _single(rel.columns, 1) == hint
        )
    if hint is None:
        return foreign == target or (
            not rel.foreign_is_view
            and junction is None
            and (rel.constraint == target or _single(rel.columns, 0) == target)
        )
    if foreign != target:
        return False
    if junction is not None:
        return junction.table[1] == hint
    return hint in {rel.constraint, _single(rel.columns, 0), _single(rel.columns, 1)}


def _suggestion(
    relationships: dict[QualifiedName, list[Relationship]], schema: str, origin: str, target: str
) -> str | None:
    own = relationships.get((schema, origin))
    if own is not None:
        names = sorted({rel.foreign[1] for rel in own} - {target})
        close = difflib.get_close_matches(target, names, n=1)
        return f"Perhaps you meant '{close[0]}' instead of '{target}'." if close else None
    origins = sorted({name for (s, name) in relationships if s == schema})
    close = difflib.get_close_matches(origin, origins, n=1)
    return f"Perhaps you meant '{close[0]}' instead of '{origin}'." if close else None
