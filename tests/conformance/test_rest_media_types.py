"""The ``Accept`` header as media types (PostgREST's choice and PGRST107), CSV, ``nulls=stripped``
and ``Prefer`` handling (``tx=rollback``, ``handling=strict``) with the official client."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
from postgrest.exceptions import APIError

from supabase import Client

TABLE = f"media{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def items(admin_sql: Callable[[str], None]) -> Iterator[None]:
    admin_sql(
        f"create table public.{TABLE} (id int primary key, name text, note text);"
        f"insert into public.{TABLE} values (1, 'a', null), (2, 'b, c', 'n');"
        f"grant select, insert, update, delete on public.{TABLE} to service_role;"
    )
    yield
    admin_sql(f"drop table public.{TABLE}")


@pytest.fixture
def http(rest_http: httpx.Client, items: None) -> httpx.Client:
    return rest_http


def test_csv(service_client: Client, items: None) -> None:
    result = service_client.table(TABLE).select("id,name,note").order("id").csv().execute()
    assert result.data == 'id,name,note\n1,a,\n2,"b, c",n'


def test_nulls_stripped_for_objects_and_arrays(service_client: Client, items: None) -> None:
    row = service_client.table(TABLE).select("*").eq("id", 1).strip_nulls().single().execute()
    assert row.data == {"id": 1, "name": "a"}
    rows = service_client.table(TABLE).select("*").order("id").strip_nulls().execute()
    assert rows.data == [{"id": 1, "name": "a"}, {"id": 2, "name": "b, c", "note": "n"}]


def test_plans_are_not_offered(service_client: Client, http: httpx.Client) -> None:
    plan = 'application/vnd.pgrst.plan+json; for="application/json"; options=analyze|verbose;'
    response = http.get(f"/{TABLE}", headers={"Accept": plan})
    assert response.status_code == 406
    assert response.json()["code"] == "PGRST107"
    with pytest.raises(APIError) as info:
        service_client.table(TABLE).select("*").explain().execute()
    assert info.value.code == "PGRST107"


def test_media_type_precedence(http: httpx.Client) -> None:
    weighted = http.get(
        f"/{TABLE}", params={"order": "id"}, headers={"Accept": "text/csv;q=0.5, application/json"}
    )
    assert weighted.headers["content-type"].startswith("application/json")
    csv_first = http.get(f"/{TABLE}", params={"select": "id"}, headers={"Accept": "text/csv, */*"})
    assert csv_first.headers["content-type"].startswith("text/csv")
    unknown = http.get(f"/{TABLE}", headers={"Accept": "image/png"})
    assert unknown.status_code == 406
    assert unknown.json()["code"] == "PGRST107"


def test_tx_rollback_is_honoured_never_committed(
    service_client: Client, http: httpx.Client
) -> None:
    for prefer in ("return=representation, tx=rollback", "handling=strict, tx=rollback"):
        response = http.patch(
            f"/{TABLE}", params={"id": "eq.1"}, json={"name": "changed"}, headers={"Prefer": prefer}
        )
        assert response.status_code in {200, 204}
        assert response.headers["preference-applied"] == "tx=rollback"
        row = service_client.table(TABLE).select("name").eq("id", 1).single().execute()
        assert row.data == {"name": "a"}


def test_strict_handling_refuses_unknown_preferences(http: httpx.Client) -> None:
    response = http.patch(
        f"/{TABLE}",
        params={"id": "eq.1"},
        json={"name": "x"},
        headers={"Prefer": "handling=strict, bogus=1"},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "PGRST122"
