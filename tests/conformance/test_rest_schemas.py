"""Exposed schemas: ``[api] schemas`` of ``supabase/config.toml`` through ``postgrest-py``'s
``.schema()`` (``Accept-Profile`` / ``Content-Profile``), PGRST106 for any other schema."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from postgrest.exceptions import APIError

from devstack.localbase import LocalbaseProcess
from localbase.rest.exposure import ConfigError, Exposure
from supabase import Client

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def second_schema(localbase: LocalbaseProcess, admin_sql: Callable[[str], None]) -> Iterator[str]:
    """A table in ``graphql_public``, the second schema the project's config.toml exposes."""
    with psycopg.connect(localbase.db_dsn) as conn:
        existed = conn.execute(
            "select 1 from pg_namespace where nspname = 'graphql_public'"
        ).fetchone()
    table = f"gp_{uuid.uuid4().hex[:8]}"
    admin_sql(
        f"""
        create schema if not exists graphql_public;
        grant usage on schema graphql_public to anon, authenticated, service_role;
        create table graphql_public.{table} (id int primary key, note text);
        grant all on graphql_public.{table} to anon, authenticated, service_role;
        create table public.{table} (id int primary key, other text);
        """
    )
    yield table
    admin_sql(f"drop table graphql_public.{table}, public.{table}")
    if existed is None:
        admin_sql("drop schema graphql_public")


def test_profile_headers_pick_the_schema(service_client: Client, second_schema: str) -> None:
    other = service_client.schema("graphql_public")
    inserted = other.table(second_schema).insert({"id": 1, "note": "there"}).execute()
    assert inserted.data == [{"id": 1, "note": "there"}]
    assert other.table(second_schema).select("*").execute().data == [{"id": 1, "note": "there"}]
    assert service_client.table(second_schema).select("*").execute().data == []
    other.table(second_schema).update({"note": "moved"}).eq("id", 1).execute()
    assert other.table(second_schema).select("note").execute().data == [{"note": "moved"}]


def test_content_profile_answers_the_named_schema(
    localbase: LocalbaseProcess, second_schema: str
) -> None:
    headers = {"apikey": localbase.service_key, "Authorization": f"Bearer {localbase.service_key}"}
    url = f"{localbase.url}/rest/v1/{second_schema}"
    named = httpx.get(url, headers={**headers, "Accept-Profile": "graphql_public"})
    assert named.status_code == 200
    assert named.headers["content-profile"] == "graphql_public"
    assert "content-profile" not in httpx.get(url, headers=headers).headers


def test_a_schema_not_exposed_is_pgrst106(service_client: Client) -> None:
    hidden = service_client.schema("auth").table("users")
    with pytest.raises(APIError) as read:
        hidden.select("*").execute()
    with pytest.raises(APIError) as written:
        hidden.insert({"id": str(uuid.uuid4())}).execute()
    for refused in (read, written):
        assert refused.value.code == "PGRST106"
        assert refused.value.message == "Invalid schema: auth"
        hint = "Only the following schemas are exposed: public, graphql_public"
        assert refused.value.hint == hint


def test_unexposed_schema_status_is_406(localbase: LocalbaseProcess) -> None:
    headers = {
        "apikey": localbase.anon_key,
        "Accept-Profile": "storage",
        "Content-Profile": "storage",
    }
    for method in ("GET", "POST", "PATCH", "DELETE"):
        response = httpx.request(
            method, f"{localbase.url}/rest/v1/objects", headers=headers, json={}
        )
        assert response.status_code == 406
        assert response.json()["code"] == "PGRST106"


def test_config_toml_is_read(tmp_path: Path) -> None:
    assert Exposure.from_config(ROOT / "supabase" / "config.toml") == Exposure(
        ("public", "graphql_public"), ("public", "extensions")
    )
    assert Exposure.from_config(tmp_path / "missing.toml") == Exposure()
    config = tmp_path / "config.toml"
    config.write_text('[api]\nschemas = ["api", "public"]\nextra_search_path = ["public"]\n')
    exposure = Exposure.from_config(config)
    assert exposure.schemas == ("api", "public")
    assert exposure.schema("GET", {}) == "api"
    assert exposure.schema("POST", {"content-profile": "public"}) == "public"
    config.write_text("[api]\nschemas = []\n")
    with pytest.raises(ConfigError):
        Exposure.from_config(config)
    config.write_text('[api]\nschemas = "public"\n')
    with pytest.raises(ConfigError):
        Exposure.from_config(config)
