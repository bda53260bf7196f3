"""Property tests: whatever the query string or body, ``/rest/v1`` answers a 2xx or a clean 4xx
(never a 5xx), errors are PostgREST-shaped, and filters never let a row outside them through."""

from __future__ import annotations

import json
import operator
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROWS = [
    {"id": i, "n": (i * 7) % 11 - 5, "s": s, "tags": tags}
    for i, (s, tags) in enumerate(
        [
            ("alpha", ["x"]),
            ("Beta", []),
            ("gamma ray", ["x", "y"]),
            ("a,b", ["z"]),
            ("c(d)", None),
            ('q"t', ["y"]),
            ("", ["x", "z"]),
            ("null", None),
        ],
        start=1,
    )
]

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def fuzz_table(admin_sql: Callable[[str], None]) -> None:
    admin_sql("""
        drop table if exists public.fuzz_items;
        create table public.fuzz_items (id int primary key, n int, s text, tags text[],
                                        meta jsonb default '{}');
        grant select, insert, update, delete on public.fuzz_items to service_role;
    """)
    values = ", ".join(
        "({}, {}, {}, {})".format(
            r["id"],
            r["n"],
            "'" + str(r["s"]).replace("'", "''") + "'",
            "null"
            if r["tags"] is None
            else "array[" + ",".join(f"'{t}'" for t in r["tags"]) + "]::text[]",
        )
        for r in ROWS
    )
    admin_sql(f"insert into public.fuzz_items (id, n, s, tags) values {values}")


@pytest.fixture
def http(rest_http: httpx.Client, fuzz_table: None) -> httpx.Client:
    return rest_http


def assert_clean(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400 and response.request.method == "HEAD":
        assert response.content == b""
        assert response.headers["proxy-status"].startswith("PostgREST; error=")
    elif response.status_code >= 400:
        body = response.json()
        assert isinstance(body, dict), body
        assert isinstance(body["code"], str), body
        assert isinstance(body["message"], str)


junk = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)
tokens = st.sampled_from(
    [
        "eq",
        "neq",
        "gt",
        "lt",
        "in",
        "is",
        "like",
        "ilike",
        "cs",
        "cd",
        "not",
        "or",
        "and",
        "(",
        ")",
        ",",
        ".",
        '"',
        "\\",
        "*",
        "null",
        "n",
        "s",
        "id",
        "tags",
        "{",
        "}",
        "->",
        "->>",
        "1",
        "-3",
        "x",
        "%",
        " ",
        "select",
        "order",
        "limit",
        "desc",
        ":",
        "::",
    ]
)
grammarish = st.lists(tokens, max_size=12).map("".join)


@SETTINGS
@given(
    params=st.lists(st.tuples(st.one_of(grammarish, junk), st.one_of(grammarish, junk)), max_size=4)
)
def test_any_query_string_gives_no_server_error(
    http: httpx.Client, params: list[tuple[str, str]]
) -> None:
    assert_clean(http.get("/fuzz_items", params=params))
    assert_clean(http.head("/fuzz_items", params=params))
    assert_clean(http.patch("/fuzz_items", params=[*params, ("id", "eq.-1")], json={"n": 1}))


@SETTINGS
@given(
    body=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | junk,
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(
                st.sampled_from(["id", "n", "s", "tags", "meta", "nope", ""]), children, max_size=4
            )
        ),
        max_leaves=8,
    )
)
def test_any_json_body_gives_no_server_error(http: httpx.Client, body: Any) -> None:
    response = http.post(
        "/fuzz_items?id=eq.-1",
        content=json.dumps(body),
        headers={"Content-Type": "application/json", "Prefer": "return=representation"},
    )
    assert_clean(response)
    if response.status_code < 300:
        http.delete("/fuzz_items", params={"id": "gt.100"})
        http.delete("/fuzz_items", params={"id": "lt.1"})


OPS: dict[str, Callable[[int, int], bool]] = {
    "eq": operator.eq,
    "neq": operator.ne,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


@SETTINGS
@given(op=st.sampled_from(sorted(OPS)), value=st.integers(-8, 8), negate=st.booleans())
def test_numeric_filters_match_exactly(
    http: httpx.Client, op: str, value: int, negate: bool
) -> None:
    prefix = "not." if negate else ""
    rows = http.get("/fuzz_items", params={"select": "id", "n": f"{prefix}{op}.{value}"}).json()
    expected = {r["id"] for r in ROWS if OPS[op](int(r["n"]), value) != negate}
    assert {r["id"] for r in rows} == expected


@SETTINGS
@given(values=st.lists(st.sampled_from([str(r["s"]) for r in ROWS] + ["zzz", "A,B"]), max_size=4))
def test_in_filter_matches_exactly(http: httpx.Client, values: list[str]) -> None:
    quoted = ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    rows = http.get("/fuzz_items", params={"select": "id", "s": f"in.({quoted})"}).json()
    assert {r["id"] for r in rows} == {r["id"] for r in ROWS if r["s"] in values}


def test_oversized_body_is_refused(http: httpx.Client) -> None:
    response = http.post(
        "/fuzz_items",
        content=b"[" + b"1," * (6 * 1024 * 1024) + b"1]",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert_clean(response)
    assert len(http.get("/fuzz_items", params={"select": "id"}).json()) == len(ROWS)
