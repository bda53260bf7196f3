"""Aggregate functions in ``select`` (``count()``, ``sum()``, ``avg()``, ``max()``, ``min()``):
off by default (400 PGRST123 for every form, as on hosted Supabase); with
``pgrst.db_aggregates_enabled`` PostgREST's grouping, aliases, casts, embeds, spreads and RPC
results, under the request's role and RLS."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
from postgrest.exceptions import APIError

from devstack.localbase import LocalbaseProcess
from supabase import Client
from tests.conftest import user_client

AGGREGATE_FORMS = [
    "count()",
    "amount.sum()",
    "amount.avg()",
    "amount.max()",
    "amount.min()",
    "total:amount.sum()",
    "amount::int.sum()::text",
    "id.count()",
    "kind,count()",
]


@pytest.fixture
def shop(admin_sql: Callable[[str], None]) -> Iterator[dict[str, str]]:
    """Customers and their orders; users read only their own orders (RLS)."""
    suffix = uuid.uuid4().hex[:8]
    names = {
        "customers": f"ag_customers_{suffix}",
        "orders": f"ag_orders_{suffix}",
        "fn": f"ag_orders_of_{suffix}",
        "summary": f"ag_summary_{suffix}",
        "alice": str(uuid.uuid4()),
        "bob": str(uuid.uuid4()),
    }
    customers, orders, alice, bob = (names[k] for k in ("customers", "orders", "alice", "bob"))
    admin_sql(
        f"""
        create table public.{customers} (id int primary key, name text, owner uuid);
        create table public.{orders} (
            id int primary key, customer_id int references public.{customers},
            kind text, amount numeric, owner uuid);
        insert into public.{customers} values (1, 'alice', '{alice}'), (2, 'bob', '{bob}');
        insert into public.{orders} values
            (1, 1, 'book', 10, '{alice}'), (2, 1, 'book', 20, '{alice}'),
            (3, 1, 'pen', 5, '{alice}'), (4, 2, 'book', 40, '{bob}');
        alter table public.{orders} enable row level security;
        create policy own on public.{orders} for select to authenticated
            using (owner = auth.uid());
        create function public.{names["fn"]}(who int) returns setof public.{orders}
            language sql stable as 'select * from public.{orders} where customer_id = who';
        create function public.{names["summary"]}()
            returns table (kind text, amount numeric) language sql stable
            as 'select kind, amount from public.{orders}';
        """
    )
    yield names
    admin_sql(
        f"drop function public.{names['fn']}, public.{names['summary']};"
        f"drop table public.{orders}, public.{customers}"
    )


@pytest.fixture
def aggregates(pgrst_config: Callable[..., None]) -> None:
    pgrst_config(aggregates=True)


@pytest.mark.parametrize("select", [*AGGREGATE_FORMS, "*,orders:ORDERS(amount.sum())"])
def test_every_aggregate_form_is_pgrst123_by_default(
    rest_http: httpx.Client, shop: dict[str, str], select: str
) -> None:
    select = select.replace("ORDERS", shop["orders"])
    table = shop["customers"] if "orders:" in select else shop["orders"]
    refused = rest_http.get(f"/{table}", params={"select": select})
    assert refused.status_code == 400
    assert refused.json() == {
        "code": "PGRST123",
        "details": None,
        "hint": None,
        "message": "Use of aggregate functions is not allowed",
    }
    on_rpc = rest_http.get(f"/rpc/{shop['summary']}", params={"select": select})
    assert on_rpc.json()["code"] == "PGRST123"


def test_a_bare_count_stays_allowed(service_client: Client, shop: dict[str, str]) -> None:
    """``rel(count)`` is PostgreSQL's ``rel.count``, not one of PostgREST's aggregates."""
    rows = (
        service_client.table(shop["customers"])
        .select(f"name,{shop['orders']}(count)")
        .order("id")
        .execute()
        .data
    )
    assert rows == [
        {"name": "alice", shop["orders"]: [{"count": 3}]},
        {"name": "bob", shop["orders"]: [{"count": 1}]},
    ]


def test_aggregates_of_the_whole_table(
    service_client: Client, shop: dict[str, str], aggregates: None
) -> None:
    orders = service_client.table(shop["orders"])
    assert orders.select("amount.sum()").execute().data == [{"sum": 75}]
    assert orders.select("total:amount.sum(), amount.max(), amount.min()").execute().data == [
        {"total": 75, "max": 40, "min": 5}
    ]
    assert orders.select("amount::int.sum()::text, count()").execute().data == [
        {"sum": "75", "count": 4}
    ]
    assert orders.select("amount.avg()").execute().data == [{"avg": 18.75}]


def test_grouped_by_the_other_fields(
    service_client: Client, shop: dict[str, str], aggregates: None
) -> None:
    rows = (
        service_client.table(shop["orders"])
        .select("kind, amount.sum(), n:count()")
        .order("kind")
        .execute()
        .data
    )
    assert rows == [{"kind": "book", "sum": 70, "n": 3}, {"kind": "pen", "sum": 5, "n": 1}]
    filtered = (
        service_client.table(shop["orders"])
        .select("kind, id.count()")
        .eq("customer_id", 1)
        .order("kind")
        .execute()
        .data
    )
    assert filtered == [{"kind": "book", "count": 2}, {"kind": "pen", "count": 1}]


def test_aggregates_inside_embeds(
    service_client: Client, shop: dict[str, str], aggregates: None
) -> None:
    customers, orders = shop["customers"], shop["orders"]
    rows = (
        service_client.table(customers)
        .select(f"name, {orders}(amount.sum(), kind)")
        .order("id")
        .execute()
        .data
    )
    assert sorted(rows[0][orders], key=lambda r: r["kind"]) == [
        {"sum": 30, "kind": "book"},
        {"sum": 5, "kind": "pen"},
    ]
    nested = (
        service_client.table(orders)
        .select(f"id, {customers}({orders}(id.sum()))")
        .eq("id", 4)
        .execute()
        .data
    )
    assert nested == [{"id": 4, customers: {orders: [{"sum": 4}]}}]


def test_count_next_to_embeds_and_spreads(
    service_client: Client, shop: dict[str, str], aggregates: None
) -> None:
    customers, orders = shop["customers"], shop["orders"]
    per_customer = service_client.table(orders).select(f"count(), {customers}(name)").execute().data
    assert sorted(per_customer, key=lambda r: r["count"]) == [
        {"count": 1, customers: {"name": "bob"}},
        {"count": 3, customers: {"name": "alice"}},
    ]
    spread = service_client.table(orders).select(f"amount.sum(), ...{customers}(name)").execute()
    assert sorted(spread.data, key=lambda r: r["sum"]) == [
        {"sum": 35, "name": "alice"},
        {"sum": 40, "name": "bob"},
    ]
    hoisted = (
        service_client.table(orders)
        .select(f"kind, ...{customers}(customers:id.count())")
        .order("kind")
        .execute()
        .data
    )
    assert hoisted == [{"kind": "book", "customers": 3}, {"kind": "pen", "customers": 1}]


def test_aggregates_over_function_results(
    service_client: Client, shop: dict[str, str], aggregates: None
) -> None:
    of_alice = service_client.rpc(shop["fn"], {"who": 1}).select("kind, amount.sum()")
    assert sorted(of_alice.execute().data, key=lambda r: r["kind"]) == [
        {"kind": "book", "sum": 30},
        {"kind": "pen", "sum": 5},
    ]
    summary = service_client.rpc(shop["summary"], {}).select("kind.count(), amount.max()")
    assert summary.execute().data == [{"count": 4, "max": 40}]


def test_rls_applies_to_aggregates(
    localbase: LocalbaseProcess, shop: dict[str, str], aggregates: None
) -> None:
    alice = user_client(localbase, shop["alice"]).table(shop["orders"])
    assert alice.select("amount.sum(), count()").execute().data == [{"sum": 35, "count": 3}]
    bob = user_client(localbase, shop["bob"]).table(shop["orders"])
    assert bob.select("kind, amount.sum()").execute().data == [{"kind": "book", "sum": 40}]


def test_errors_are_postgrest_s(
    service_client: Client, rest_http: httpx.Client, shop: dict[str, str], aggregates: None
) -> None:
    orders = shop["orders"]
    with pytest.raises(APIError) as missing:
        service_client.table(orders).select("alias:missing.count()").execute()
    assert missing.value.code == "42703"
    assert missing.value.message == f"column {orders}.missing does not exist"
    for select in ("amount.bogus()", "amount.sum()::", "amount.sum(id)", "sum()"):
        response = rest_http.get(f"/{orders}", params={"select": select})
        assert 400 <= response.status_code < 500, (select, response.text)
    unknown_type = rest_http.get(f"/{orders}", params={"select": "amount.sum()::nonsense"})
    assert unknown_type.status_code == 400
    assert unknown_type.json()["code"] == "42704"


def test_an_exact_count_counts_the_rows_before_grouping(
    service_client: Client, rest_http: httpx.Client, shop: dict[str, str], aggregates: None
) -> None:
    """PostgREST with ``db-max-rows`` set (Supabase sets 1000) counts the filtered rows, not
    the groups: 2 groups of 4 orders are ``0-1/4``, a 206."""
    orders = shop["orders"]
    counted = service_client.table(orders).select("kind,count()", count="exact").execute()
    assert sorted(counted.data, key=lambda r: r["kind"]) == [
        {"kind": "book", "count": 3},
        {"kind": "pen", "count": 1},
    ]
    assert counted.count == 4
    response = rest_http.get(
        f"/{orders}",
        params={"select": "kind,amount.sum()", "customer_id": "eq.1"},
        headers={"Prefer": "count=exact"},
    )
    assert response.status_code == 206
    assert response.headers["Content-Range"] == "0-1/3"
    on_rpc = rest_http.get(
        f"/rpc/{shop['summary']}",
        params={"select": "kind,count()"},
        headers={"Prefer": "count=exact"},
    )
    assert on_rpc.status_code == 206
    assert on_rpc.headers["Content-Range"] == "0-1/4"
    single_group = rest_http.get(
        f"/{orders}", params={"select": "count()"}, headers={"Prefer": "count=exact"}
    )
    assert single_group.json() == [{"count": 4}]
    assert single_group.status_code == 206
    assert single_group.headers["Content-Range"] == "0-0/4"
