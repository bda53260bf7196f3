"""``[api] extra_search_path`` of ``supabase/config.toml``: every request's ``search_path`` is
its schema, then those schemas (PostgREST's ``db-extra-search-path``), each quoted once. A
function body that calls an unqualified function of a listed schema works; without the schema
listed the call fails as PostgreSQL fails it (42883, 404)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from postgrest.exceptions import APIError

from devstack.localbase import LocalbaseProcess
from localbase.db import search_path_setting
from localbase.rest.exposure import ConfigError, Exposure
from supabase import Client
from tests.conftest import connect

P = f"sp{uuid.uuid4().hex[:6]}"
HELLO, PATH = f"{P}_hello", f"{P}_search_path"

SCHEMA = f"""
create schema if not exists myext;
grant usage on schema myext to anon, authenticated, service_role;
create or replace function myext.{P}_greeting() returns text
language sql immutable as $$ select 'hello from myext' $$;
create function public.{HELLO}() returns text
language plpgsql stable as $$ begin return {P}_greeting(); end $$;
create function public.{PATH}() returns text
language sql stable as $$ select current_setting('search_path') $$;
"""
DROP = f"drop function public.{HELLO}, public.{PATH}, myext.{P}_greeting"


@pytest.fixture(scope="module")
def myext_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalbaseProcess]:
    """A localbase started in a project whose config.toml adds ``myext`` to the search path."""
    project = tmp_path_factory.mktemp("project")
    (project / "supabase").mkdir()
    (project / "supabase" / "config.toml").write_text(
        '[api]\nschemas = ["public", "graphql_public"]\n'
        'extra_search_path = ["public", "extensions", "myext"]\n'
    )
    stack = LocalbaseProcess(project / "data", project_dir=project)
    stack.start()
    with psycopg.connect(stack.db_dsn, autocommit=True) as conn:
        conn.execute(SCHEMA.encode())
    yield stack
    assert stack.stop() == 0


@pytest.fixture
def default_project(admin_sql: Callable[[str], None]) -> Iterator[None]:
    admin_sql(SCHEMA)
    yield
    admin_sql(DROP + "; drop schema myext")


def test_listed_schemas_follow_the_requests_schema(myext_project: LocalbaseProcess) -> None:
    client = connect(myext_project.url, myext_project.service_key)
    assert client.rpc(HELLO, {}).execute().data == "hello from myext"
    path = client.rpc(PATH, {}, get=True).execute().data
    assert path == '"public", "public", "extensions", "myext"'


def test_without_the_schema_the_call_fails_as_postgres_does(
    default_project: None, service_client: Client
) -> None:
    assert service_client.rpc(PATH, {}).execute().data == '"public", "public", "extensions"'
    with pytest.raises(APIError) as missing:
        service_client.rpc(HELLO, {}).execute()
    assert missing.value.code == "42883"
    assert missing.value.message == f"function {P}_greeting() does not exist"


def test_search_path_names_are_quoted_and_kept_as_postgrest_lists_them() -> None:
    assert search_path_setting("api", ("public", "api", "extensions")) == (
        '"api", "public", "api", "extensions"'
    )
    assert search_path_setting('we"ird', ()) == '"we""ird"'


def test_extra_search_path_is_validated(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[api]\nextra_search_path = ["public", "myext"]\n')
    assert Exposure.from_config(config).extra_search_path == ("public", "myext")
    config.write_text("[api]\nextra_search_path = []\n")
    assert Exposure.from_config(config).extra_search_path == ()
    for bad in ('"public"', '["public", ""]', '["a\\"b"]', "[1]"):
        config.write_text(f"[api]\nextra_search_path = {bad}\n")
        with pytest.raises(ConfigError, match="extra_search_path"):
            Exposure.from_config(config)
