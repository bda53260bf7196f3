"""Execution plans (``Accept: application/vnd.pgrst.plan…``, ``.explain()``): off by default
(406 PGRST107, as on hosted Supabase); with ``pgrst.db_plan_enabled`` the EXPLAIN output of
the very statement the request would run, as its role, in its transaction."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from devstack.localbase import LocalbaseProcess
from supabase import Client
from tests.conftest import make_jwt, user_client

JSON_PLAN = 'application/vnd.pgrst.plan+json; for="application/json"'


@pytest.fixture
def ledger(admin_sql: Callable[[str], None]) -> Iterator[tuple[str, str]]:
    """Three rows, two of them owned by one user; RLS lets users read their own rows."""
    table, owner = f"pl_{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
    admin_sql(
        f"""
        create table public.{table} (id int primary key, owner uuid, amount int);
        insert into public.{table} values (1, '{owner}', 10), (2, '{owner}', 20),
            (3, gen_random_uuid(), 40);
        alter table public.{table} enable row level security;
        create policy own on public.{table} for all to authenticated
            using (owner = auth.uid()) with check (owner = auth.uid());
        create function public.{table}_all() returns setof public.{table}
            language sql stable as 'select * from public.{table}';
        """
    )
    yield table, owner
    admin_sql(f"drop table public.{table} cascade")


@pytest.fixture
def plans(pgrst_config: Callable[..., None]) -> None:
    pgrst_config(plan=True)


def _scans(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The nodes that read a table."""
    if node["Node Type"].endswith("Scan") and "Relation Name" in node:
        yield node
    for child in node.get("Plans", []):
        yield from _scans(child)


def test_plans_are_off_by_default(rest_http: httpx.Client, ledger: tuple[str, str]) -> None:
    refused = rest_http.get(f"/{ledger[0]}", headers={"Accept": JSON_PLAN})
    assert refused.status_code == 406
    assert refused.json()["code"] == "PGRST107"
    assert refused.json()["message"] == f"None of these media types are available: {JSON_PLAN}"


def test_json_plan_of_a_read(
    service_client: Client, rest_http: httpx.Client, ledger: tuple[str, str], plans: None
) -> None:
    result = service_client.table(ledger[0]).select("*").explain(format="json").execute()
    assert isinstance(result.data, list)
    assert list(result.data[0]) == ["Plan"]
    assert result.data[0]["Plan"]["Node Type"] == "Aggregate"
    response = rest_http.get(f"/{ledger[0]}", headers={"Accept": JSON_PLAN})
    assert response.status_code == 200
    assert response.headers["content-type"] == f"{JSON_PLAN}; charset=utf-8"
    assert "content-range" not in response.headers


def test_the_settings_a_plan_lists_are_supabase_starts(
    rest_http: httpx.Client, ledger: tuple[str, str], plans: None
) -> None:
    """``options=settings`` lists what differs from PostgreSQL's defaults: as on
    ``supabase start``, its image's ``effective_cache_size`` and PostgREST's search_path."""
    response = rest_http.get(
        f"/{ledger[0]}", headers={"Accept": f"{JSON_PLAN}; options=verbose|settings;"}
    )
    assert response.status_code == 200
    assert response.json()[0]["Settings"] == {
        "effective_cache_size": "128MB",
        "search_path": '"public", "public", "extensions"',
    }


def test_text_plan_with_options(
    service_client: Client, rest_http: httpx.Client, ledger: tuple[str, str], plans: None
) -> None:
    text = service_client.table(ledger[0]).select("id").eq("amount", 20).explain().execute()
    assert str(text).startswith("Aggregate  (cost=")
    assert "(amount = 20)" in str(text)
    accept = "application/vnd.pgrst.plan+text; options=verbose|analyze|nonsense"
    response = rest_http.get(f"/{ledger[0]}", params={"id": "eq.1"}, headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"] == (
        'application/vnd.pgrst.plan+text; for="application/json"; options=analyze|verbose;'
        " charset=utf-8"
    )
    assert "Output:" in response.text
    assert "actual time=" in response.text
    assert "Execution Time" in response.text


def test_every_explain_option_of_the_client(
    service_client: Client, ledger: tuple[str, str], plans: None
) -> None:
    result = (
        service_client.table(ledger[0])
        .select("*")
        .explain(analyze=True, verbose=True, settings=True, buffers=True, wal=True, format="json")
        .execute()
    )
    document = result.data[0]
    assert {"Plan", "Execution Time", "Settings"} <= set(document)
    assert "Output" in document["Plan"]
    assert "Shared Hit Blocks" in document["Plan"]


def test_the_plan_is_the_requests_role_under_rls(
    localbase: LocalbaseProcess, ledger: tuple[str, str], plans: None
) -> None:
    table, owner = ledger
    result = (
        user_client(localbase, owner)
        .table(table)
        .select("*")
        .explain(analyze=True, format="json")
        .execute()
    )
    (scan,) = _scans(result.data[0]["Plan"])
    assert scan["Relation Name"] == table
    assert scan["Actual Rows"] == 2


def test_plan_for_other_media_types(
    rest_http: httpx.Client, ledger: tuple[str, str], plans: None
) -> None:
    for target in ("text/csv", "application/vnd.pgrst.object+json"):
        accept = f'application/vnd.pgrst.plan+json; for="{target}"'
        response = rest_http.get(f"/{ledger[0]}", headers={"Accept": accept})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == f"{accept}; charset=utf-8"
    unknown = 'application/vnd.pgrst.plan+json; for="text/nonsense"'
    refused = rest_http.get(f"/{ledger[0]}", headers={"Accept": unknown})
    assert refused.status_code == 406
    assert refused.json()["code"] == "PGRST107"


def test_plan_of_a_function_call(
    rest_http: httpx.Client, ledger: tuple[str, str], plans: None
) -> None:
    response = rest_http.get(f"/rpc/{ledger[0]}_all", headers={"Accept": JSON_PLAN})
    assert response.status_code == 200
    assert response.json()[0]["Plan"]["Node Type"] == "Aggregate"


def test_analyze_runs_a_write_which_commits_unless_rolled_back(
    localbase: LocalbaseProcess,
    rest_http: httpx.Client,
    service_client: Client,
    ledger: tuple[str, str],
    plans: None,
) -> None:
    """As in PostgREST: ``analyze`` executes the write, and the transaction ends as the
    request's would (``Prefer: tx=rollback`` rolls it back)."""
    table, owner = ledger
    headers = {"Accept": JSON_PLAN}
    planned = rest_http.post(f"/{table}", json={"id": 4, "owner": owner}, headers=headers)
    assert planned.status_code == 200
    assert planned.json()[0]["Plan"]["Node Type"] == "Aggregate"
    rolled_back = rest_http.post(
        f"/{table}",
        json={"id": 5, "owner": owner},
        headers={"Accept": f"{JSON_PLAN}; options=analyze", "Prefer": "tx=rollback"},
    )
    assert rolled_back.status_code == 200
    assert rolled_back.headers["preference-applied"] == "tx=rollback"
    analyzed = rest_http.patch(
        f"/{table}",
        params={"id": "eq.1"},
        json={"amount": 11},
        headers={"Accept": f"{JSON_PLAN}; options=analyze"},
    )
    assert analyzed.status_code == 200
    assert "Execution Time" in analyzed.json()[0]
    rows = service_client.table(table).select("id,amount").order("id").execute().data
    assert rows == [
        {"id": 1, "amount": 11},
        {"id": 2, "amount": 20},
        {"id": 3, "amount": 40},
    ]
    # RLS applies to a planned write as to the write: another user's row is not updated.
    stranger = {"apikey": localbase.anon_key, "Authorization": f"Bearer {make_jwt(owner)}"}
    denied = httpx.patch(
        f"{localbase.url}/rest/v1/{table}",
        params={"id": "eq.3"},
        json={"amount": 0},
        headers={**stranger, "Accept": f"{JSON_PLAN}; options=analyze"},
    )
    assert denied.status_code == 200
    (scan,) = _scans(denied.json()[0]["Plan"])
    assert scan["Actual Rows"] == 0
