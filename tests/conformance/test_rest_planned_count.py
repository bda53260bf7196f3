"""``Prefer: count=planned`` answers the planner's estimate (EXPLAIN as the request's role) and
``count=estimated`` the exact count up to db-max-rows (1000), the estimate above it; 206 when
the count differs from the page."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import httpx
import psycopg
import pytest
from postgrest.types import CountMethod

from devstack.localbase import LocalbaseProcess
from supabase import Client


@pytest.fixture
def big_table(
    localbase: LocalbaseProcess, admin_sql: Callable[[str], None]
) -> Iterator[tuple[str, int]]:
    """5,000 rows, analyzed, so the planner's estimate is known (pg_class.reltuples)."""
    table = f"pc_{uuid.uuid4().hex[:8]}"
    admin_sql(
        f"""
        create table public.{table} (id int primary key, even boolean);
        insert into public.{table} select i, i % 2 = 0 from generate_series(1, 5000) i;
        grant select on public.{table} to anon, authenticated, service_role;
        analyze public.{table};
        """
    )
    with psycopg.connect(localbase.db_dsn) as conn:
        row = conn.execute(
            f"explain (format json) select 1 from public.{table} where even"
        ).fetchone()
    assert row is not None
    yield table, int(row[0][0]["Plan"]["Plan Rows"])
    admin_sql(f"drop table public.{table}")


def content_range(localbase: LocalbaseProcess, path: str, prefer: str) -> httpx.Response:
    headers = {
        "apikey": localbase.service_key,
        "Authorization": f"Bearer {localbase.service_key}",
        "Prefer": prefer,
    }
    return httpx.get(f"{localbase.url}/rest/v1/{path}", headers=headers)


def test_planned_is_the_planners_estimate(
    localbase: LocalbaseProcess, service_client: Client, big_table: tuple[str, int]
) -> None:
    table, estimate = big_table
    result = (
        service_client.table(table)
        .select("id", count=CountMethod.planned)
        .eq("even", True)
        .limit(3)
        .execute()
    )
    assert result.count == estimate
    assert len(result.data) == 3
    response = content_range(localbase, f"{table}?even=eq.true&limit=3", "count=planned")
    assert response.status_code == 206
    assert response.headers["content-range"] == f"0-2/{estimate}"


def test_estimated_is_exact_up_to_max_rows(
    service_client: Client, big_table: tuple[str, int]
) -> None:
    table, estimate = big_table
    few = (
        service_client.table(table)
        .select("id", count=CountMethod.estimated)
        .lte("id", 10)
        .execute()
    )
    assert few.count == 10
    many = (
        service_client.table(table)
        .select("id", count=CountMethod.estimated)
        .eq("even", True)
        .limit(5)
        .execute()
    )
    assert many.count == estimate


def test_planned_head_and_exact_unchanged(
    localbase: LocalbaseProcess, service_client: Client, big_table: tuple[str, int]
) -> None:
    table, _ = big_table
    exact = (
        service_client.table(table)
        .select("id", count=CountMethod.exact)
        .eq("even", True)
        .limit(1)
        .execute()
    )
    assert exact.count == 2500
    head = service_client.table(table).select("*", count=CountMethod.planned, head=True).execute()
    assert head.count is not None
    assert head.count > 0
