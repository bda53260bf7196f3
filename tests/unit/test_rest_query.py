"""The PostgREST query grammar, without a database."""

from __future__ import annotations

import pytest

from localbase.rest.errors import RestError
from localbase.rest.query import Field, Filter, Logic, parse_query, parse_select


def test_filters_take_values_literally() -> None:
    query = parse_query([("name", 'eq."x"'), ("n", "not.gte.5"), ("tags", 'cs.{a,"b c"}')])
    assert query.where == [
        Filter(Field("name"), "eq", '"x"'),
        Filter(Field("n"), "gte", "5", negate=True),
        Filter(Field("tags"), "cs", '{a,"b c"}'),
    ]


def test_in_lists_unquote_and_keep_null_as_text() -> None:
    (node,) = parse_query([("k", 'in.(1,"a,b","c(d)","q\\"t",null)')]).where
    assert node == Filter(Field("k"), "in", ("1", "a,b", "c(d)", 'q"t', "null"))
    assert parse_query([("k", "in.()")]).where == [Filter(Field("k"), "in", ())]


def test_logic_trees_nest() -> None:
    (tree,) = parse_query([("or", "(a.eq.1,and(b.gt.2,c.is.null),not.and(d.lt.0))")]).where
    assert tree == Logic(
        "or",
        (
            Filter(Field("a"), "eq", "1"),
            Logic("and", (Filter(Field("b"), "gt", "2"), Filter(Field("c"), "is", "null"))),
            Logic("and", (Filter(Field("d"), "lt", "0"),), negate=True),
        ),
    )


def test_select_aliases_casts_and_json_paths() -> None:
    items = parse_select("id,label:name::text,data->a->>b,*")
    assert [(i.alias, i.cast, i.field) for i in items] == [
        (None, None, Field("id")),
        ("label", "text", Field("name")),
        (None, None, Field("data", (("->", "a"), ("->>", "b")))),
        (None, None, None),
    ]


@pytest.mark.parametrize(
    "params",
    [
        [("n", "noop.1")],
        [("n", "eq")],
        [("n", "in.1,2")],
        [("n", "is.maybe")],
        [("or", "a.eq.1")],
        [("or", "(a.eq.1")],
        [("order", "a.sideways")],
        [("limit", "-1")],
        [("select", "a,b(c")],
    ],
)
def test_malformed_queries_are_400s(params: list[tuple[str, str]]) -> None:
    with pytest.raises(RestError) as info:
        parse_query(params)
    assert info.value.status == 400
    assert info.value.code.startswith("PGRST")


def test_rpc_get_arguments_are_not_filters() -> None:
    query = parse_query([("a", "1"), ("b", "eq.2")], rpc=True)
    assert query.arguments == [("a", "1")]
    assert query.where == [Filter(Field("b"), "eq", "2")]
