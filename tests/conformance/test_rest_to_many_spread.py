"""Spreads of to-many relationships (PostgREST v13+): ``...processes(name)`` gives the parent
one JSON array per selected column, ``[]`` without related rows; aliases, ``*``, embeds and
spreads inside, the embed's filters, order, limit and ``!inner``, a to-many spread inside a
to-one spread, writes' results, RLS on the spread table, what still errors, and a fuzzed
``select=`` that never gets a 5xx."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from postgrest.exceptions import APIError

from devstack.localbase import LocalbaseProcess
from supabase import Client
from tests.conftest import user_client

P = f"tms{uuid.uuid4().hex[:6]}"
FACTORIES, CATEGORIES, PROCESSES, COSTS, SUPERVISORS, PROCESS_SUPERVISOR = (
    f"{P}_factories",
    f"{P}_categories",
    f"{P}_processes",
    f"{P}_costs",
    f"{P}_supervisors",
    f"{P}_process_supervisor",
)
OWNER = str(uuid.uuid4())
OTHER = str(uuid.uuid4())

SCHEMA = f"""
create table public.{FACTORIES} (id int primary key, name text);
create table public.{CATEGORIES} (id int primary key, name text);
create table public.{PROCESSES} (
    id int primary key, name text,
    factory_id int references public.{FACTORIES}(id),
    category_id int references public.{CATEGORIES}(id),
    owner uuid);
create table public.{COSTS} (
    process_id int primary key references public.{PROCESSES}(id), cost numeric);
create table public.{SUPERVISORS} (id int primary key, name text);
create table public.{PROCESS_SUPERVISOR} (
    process_id int references public.{PROCESSES}(id),
    supervisor_id int references public.{SUPERVISORS}(id),
    primary key (process_id, supervisor_id));
alter table public.{PROCESSES} enable row level security;
create policy own_processes on public.{PROCESSES} for select to authenticated
    using (owner = auth.uid());
insert into public.{FACTORIES} values (1, 'A'), (2, 'B'), (3, 'C');
insert into public.{CATEGORIES} values (1, 'batch'), (2, 'mass');
insert into public.{PROCESSES} values
    (1, 'A1', 1, 1, '{OWNER}'), (2, 'A2', 1, 2, '{OTHER}'),
    (3, 'B1', 2, 1, '{OWNER}'), (4, 'B2', 2, 1, '{OWNER}');
insert into public.{COSTS} values (1, 150), (2, 200), (4, 70);
insert into public.{SUPERVISORS} values (1, 'mary'), (2, 'john');
insert into public.{PROCESS_SUPERVISOR} values (1, 1), (3, 1), (3, 2);
grant select, insert, update, delete on public.{FACTORIES}, public.{CATEGORIES},
  public.{PROCESSES}, public.{COSTS}, public.{SUPERVISORS}, public.{PROCESS_SUPERVISOR}
  to anon, authenticated, service_role;
"""
DROP = (
    f"drop table public.{PROCESS_SUPERVISOR}, public.{SUPERVISORS}, public.{COSTS}, "
    f"public.{PROCESSES}, public.{CATEGORIES}, public.{FACTORIES}"
)


def test_each_column_becomes_an_array(db: Client) -> None:
    rows = (
        db.table(FACTORIES)
        .select(f"factory:name,...{PROCESSES}(name,category:category_id)")
        .order("id")
        .order("id", foreign_table=PROCESSES)
        .execute()
        .data
    )
    assert rows == [
        {"factory": "A", "name": ["A1", "A2"], "category": [1, 2]},
        {"factory": "B", "name": ["B1", "B2"], "category": [1, 1]},
        {"factory": "C", "name": [], "category": []},
    ]
    star = db.table(FACTORIES).select(f"id,...{PROCESSES}(*)").eq("id", 3).execute().data
    assert star == [
        {"id": [], "name": [], "factory_id": [], "category_id": [], "owner": []},
    ]
    empty = db.table(FACTORIES).select(f"name,...{PROCESSES}()").order("id").execute().data
    assert empty == [{"name": "A"}, {"name": "B"}, {"name": "C"}]


def test_a_single_object_as_postgrest_js_asks_for_it(db: Client) -> None:
    row = (
        db.table(FACTORIES)
        .select(f"factory_id:id,...{PROCESSES}(id,name)")
        .order("id")
        .order("id", foreign_table=PROCESSES)
        .limit(1)
        .single()
        .execute()
        .data
    )
    assert row == {"factory_id": 1, "id": [1, 2], "name": ["A1", "A2"]}


def test_embeds_and_spreads_inside_give_one_element_per_row(db: Client) -> None:
    rows = (
        db.table(FACTORIES)
        .select(
            f"name,...{PROCESSES}(process:name,...{COSTS}(cost),...{CATEGORIES}(kind:name),"
            f"costs:{COSTS}(cost),...{SUPERVISORS}(supervisor:name),sups:{SUPERVISORS}(id))"
        )
        .order("id")
        .order("id", foreign_table=PROCESSES)
        .order("name", foreign_table=f"{PROCESSES}.{SUPERVISORS}")
        .order("id", foreign_table=f"{PROCESSES}.sups")
        .execute()
        .data
    )
    assert rows == [
        {
            "name": "A",
            "process": ["A1", "A2"],
            "cost": [150, 200],
            "kind": ["batch", "mass"],
            "costs": [{"cost": 150}, {"cost": 200}],
            "supervisor": [["mary"], []],
            "sups": [[{"id": 1}], []],
        },
        {
            "name": "B",
            "process": ["B1", "B2"],
            "cost": [None, 70],
            "kind": ["batch", "batch"],
            "costs": [None, {"cost": 70}],
            "supervisor": [["john", "mary"], []],
            "sups": [[{"id": 1}, {"id": 2}], []],
        },
        {
            "name": "C",
            "process": [],
            "cost": [],
            "kind": [],
            "costs": [],
            "supervisor": [],
            "sups": [],
        },
    ]


def test_many_to_many_and_a_to_many_spread_inside_a_to_one_spread(db: Client) -> None:
    through = (
        db.table(SUPERVISORS)
        .select(f"name,...{PROCESSES}(process:name)")
        .order("id")
        .order("name", desc=True, foreign_table=PROCESSES)
        .execute()
        .data
    )
    assert through == [
        {"name": "mary", "process": ["B1", "A1"]},
        {"name": "john", "process": ["B1"]},
    ]
    siblings = (
        db.table(PROCESSES)
        .select(f"name,...{FACTORIES}(factory:name,...{PROCESSES}(siblings:name))")
        .eq("id", 3)
        .order("name", desc=True, foreign_table=f"{FACTORIES}.{PROCESSES}")
        .execute()
        .data
    )
    assert siblings == [{"name": "B1", "factory": "B", "siblings": ["B2", "B1"]}]


def test_the_embeds_order_limit_and_offset_shape_the_arrays(db: Client) -> None:
    first = (
        db.table(FACTORIES)
        .select(f"name,...{PROCESSES}(id,process:name)")
        .order("id")
        .order("name", desc=True, foreign_table=PROCESSES)
        .limit(1, foreign_table=PROCESSES)
        .execute()
        .data
    )
    assert first == [
        {"name": "A", "id": [2], "process": ["A2"]},
        {"name": "B", "id": [4], "process": ["B2"]},
        {"name": "C", "id": [], "process": []},
    ]
    by_hidden_column = (
        db.table(FACTORIES)
        .select(f"name,...{PROCESSES}(process:name)")
        .in_("id", [1, 2])
        .order("id")
        .order("category_id", desc=True, foreign_table=PROCESSES)
        .order("name", foreign_table=PROCESSES)
        .range(1, 1, foreign_table=PROCESSES)
        .execute()
        .data
    )
    assert by_hidden_column == [
        {"name": "A", "process": ["A1"]},
        {"name": "B", "process": ["B2"]},
    ]


def test_filters_inner_and_count(db: Client) -> None:
    filtered = (
        db.table(FACTORIES)
        .select(f"name,...{PROCESSES}(process:name)")
        .like(f"{PROCESSES}.name", "B*")
        .order("id")
        .order("id", foreign_table=PROCESSES)
        .execute()
        .data
    )
    assert filtered == [
        {"name": "A", "process": []},
        {"name": "B", "process": ["B1", "B2"]},
        {"name": "C", "process": []},
    ]
    inner = (
        db.table(FACTORIES)
        .select(f"name,...{PROCESSES}!inner(process:name)", count="exact")
        .like(f"{PROCESSES}.name", "*1")
        .order("id")
        .limit(1)
        .execute()
    )
    assert inner.data == [{"name": "A", "process": ["A1"]}]
    assert inner.count == 2


def test_rls_on_the_spread_table_applies(localbase: LocalbaseProcess, module_schema: None) -> None:
    owner = user_client(localbase, OWNER).table(FACTORIES)
    rows = (
        owner.select(f"name,...{PROCESSES}(process:name)")
        .order("id")
        .order("id", foreign_table=PROCESSES)
        .execute()
        .data
    )
    assert rows == [
        {"name": "A", "process": ["A1"]},
        {"name": "B", "process": ["B1", "B2"]},
        {"name": "C", "process": []},
    ]
    stranger = user_client(localbase, str(uuid.uuid4())).table(FACTORIES)
    assert stranger.select(f"name,...{PROCESSES}!inner(name)").execute().data == []


def test_writes_return_to_many_spreads(db: Client) -> None:
    """The result is read in the write's statement: as in PostgREST, its related rows are
    those the statement started with, so a new row is not yet among its siblings."""
    try:
        inserted = (
            db.table(PROCESSES)
            .insert({"id": 90, "name": "C1", "factory_id": 3, "category_id": 2})
            .select(f"name,...{FACTORIES}(factory:name,...{PROCESSES}(siblings:name))")
            .execute()
            .data
        )
        assert inserted == [{"name": "C1", "factory": "C", "siblings": []}]
        renamed = (
            db.table(FACTORIES)
            .update({"name": "C!"})
            .eq("id", 3)
            .select(f"name,...{PROCESSES}(id)")
            .execute()
            .data
        )
        assert renamed == [{"name": "C!", "id": [90]}]
    finally:
        db.table(PROCESSES).delete().eq("id", 90).execute()
        db.table(FACTORIES).update({"name": "C"}).eq("id", 3).execute()


def test_what_still_errors(db: Client, http: httpx.Client) -> None:
    with pytest.raises(APIError) as related_order:
        db.table(FACTORIES).select(f"name,...{PROCESSES}(name)").order(
            f"{PROCESSES}(name)"
        ).execute()
    assert related_order.value.code == "PGRST118"
    twice = http.get(f"/{FACTORIES}", params={"select": f"...{PROCESSES}(id,id)"})
    assert twice.status_code == 400
    assert twice.json() == {
        "code": "42702",
        "details": None,
        "hint": None,
        "message": 'column reference "id" is ambiguous',
    }
    off = http.get(f"/{FACTORIES}", params={"select": f"name,...{PROCESSES}(id.sum())"})
    assert off.status_code == 400
    assert off.json()["code"] == "PGRST123"


NOT_IMPLEMENTED = {
    "code": "PGRST127",
    "details": "Aggregates are not implemented for one-to-many or many-to-many spreads.",
    "hint": None,
    "message": "Feature not implemented",
}


def test_aggregates_in_a_to_many_spread_are_pgrst127(
    http: httpx.Client, pgrst_config: Callable[..., None]
) -> None:
    pgrst_config(aggregates=True)
    for select in (
        f"name,...{PROCESSES}(category_id,id.sum())",
        f"name,...{PROCESSES}(count())",
        f"name,...{PROCESSES}(name,...{COSTS}(cost.max()))",
    ):
        response = http.get(f"/{FACTORIES}", params={"select": select})
        assert response.status_code == 400, select
        assert response.json() == NOT_IMPLEMENTED, select
    inside_an_embed = http.get(
        f"/{FACTORIES}",
        params={
            "select": f"...{PROCESSES}(name,{SUPERVISORS}(count()))",
            "id": "eq.1",
            f"{PROCESSES}.order": "id",
        },
    )
    assert inside_an_embed.json() == [
        {"name": ["A1", "A2"], SUPERVISORS: [[{"count": 1}], [{"count": 0}]]}
    ]
    grouped = http.get(
        f"/{FACTORIES}",
        params={"select": f"n:count(),...{PROCESSES}(category_id)", f"{PROCESSES}.order": "id"},
    )
    assert sorted(grouped.json(), key=lambda r: r["category_id"]) == [
        {"n": 1, "category_id": []},
        {"n": 1, "category_id": [1, 1]},
        {"n": 1, "category_id": [1, 2]},
    ]


pieces = st.sampled_from(
    [
        FACTORIES,
        PROCESSES,
        COSTS,
        SUPERVISORS,
        "...",
        "name",
        "id",
        "*",
        "(",
        ")",
        ",",
        ":",
        "!inner",
        "count()",
        "id.sum()",
        "::text",
    ]
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    select=st.lists(pieces, max_size=14).map("".join),
    embedded=st.sampled_from(["", f"{PROCESSES}.order", f"{PROCESSES}.limit"]),
)
def test_fuzzed_spreads_never_get_a_server_error(
    http: httpx.Client, select: str, embedded: str
) -> None:
    params = [("select", select)]
    if embedded:
        params.append((embedded, "name.desc" if embedded.endswith("order") else "1"))
    response = http.get(f"/{FACTORIES}", params=params)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert isinstance(response.json()["code"], str), response.text
