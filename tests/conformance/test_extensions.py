"""The extensions of a Supabase project: uuid-ossp, pgcrypto and pg_stat_statements enabled in
schema ``extensions`` from the start, that schema on ``postgres``'s search_path and on every API
request's, and the contrib modules a migration enables itself (pg_trgm, citext, hstore, …)
usable through the REST API as the request's role."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from postgrest.exceptions import APIError

from devstack.localbase import LocalbaseProcess
from supabase import Client


def test_a_new_project_has_supabases_extensions_in_schema_extensions(
    localbase: LocalbaseProcess,
) -> None:
    with psycopg.connect(localbase.db_dsn) as conn:
        installed = dict(
            conn.execute(
                "select e.extname, n.nspname from pg_extension e"
                " join pg_namespace n on n.oid = e.extnamespace"
            ).fetchall()
        )
    assert {
        name: installed.get(name) for name in ("uuid-ossp", "pgcrypto", "pg_stat_statements")
    } == {
        "uuid-ossp": "extensions",
        "pgcrypto": "extensions",
        "pg_stat_statements": "extensions",
    }
    # Available to enable, not enabled: a migration's plain `create extension citext` works.
    assert not {"pg_trgm", "citext", "hstore"} & installed.keys()


@pytest.mark.parametrize(
    "extension",
    ["pg_trgm", "citext", "hstore", "ltree", "fuzzystrmatch", "btree_gist", "vector"],
)
def test_contrib_modules_are_available(localbase: LocalbaseProcess, extension: str) -> None:
    with psycopg.connect(localbase.db_dsn) as conn:
        row = conn.execute(
            "select default_version from pg_available_extensions where name = %s", (extension,)
        ).fetchone()
    assert row is not None
    assert row[0]


def test_postgres_finds_extension_functions_unqualified(localbase: LocalbaseProcess) -> None:
    with psycopg.connect(localbase.db_dsn) as conn:
        search_path = conn.execute("show search_path").fetchone()
        generated = conn.execute("select uuid_generate_v4(), digest('abc', 'sha256')").fetchone()
    assert search_path == ('"$user", public, extensions',)
    assert generated is not None
    assert uuid.UUID(str(generated[0])).version == 4
    assert bytes(generated[1]).hex().startswith("ba7816bf")


def test_pg_stat_statements_is_loaded_at_start(localbase: LocalbaseProcess) -> None:
    alias = f"pgss_{uuid.uuid4().hex}"
    with psycopg.connect(localbase.db_dsn, autocommit=True) as conn:
        conn.execute(f'select 1 as "{alias}"')
        recorded = conn.execute(
            "select query, calls from extensions.pg_stat_statements where query like %s",
            (f"%{alias}%",),
        ).fetchall()
    assert recorded == [(f'select $1 as "{alias}"', 1)]  # constants normalised, as pgss does


@pytest.fixture
def contrib_table(admin_sql: Callable[[str], None]) -> Iterator[str]:
    """A table like a user's migration makes it: enables what it needs, uses it unqualified."""
    name = f"ext_{uuid.uuid4().hex[:8]}"
    admin_sql(
        f"""
        create extension if not exists citext with schema extensions;
        create extension if not exists hstore with schema extensions;
        create extension if not exists pg_trgm with schema extensions;
        create table public.{name} (
            id uuid primary key default uuid_generate_v4(),
            email citext not null unique,
            attrs hstore,
            secret bytea default gen_random_bytes(16)
        );
        create index on public.{name} using gin (email gin_trgm_ops);
        create function public.{name}_like(q text) returns setof public.{name}
            language sql stable as $$
              select * from public.{name} where similarity(email, q) > 0.3
              order by similarity(email, q) desc
            $$;
        """
    )
    yield name
    admin_sql(f"drop table public.{name} cascade")


def test_contrib_types_and_functions_work_through_rest(
    service_client: Client, contrib_table: str
) -> None:
    table = service_client.table(contrib_table)
    created = (
        table.insert([{"email": "Ada@Example.com", "attrs": "a=>1, b=>2"}, {"email": "bob@x.io"}])
        .execute()
        .data
    )
    assert {uuid.UUID(row["id"]).version for row in created} == {4}

    # citext: equality ignores case; the unique index does too.
    found = table.select("email, attrs").eq("email", "ada@EXAMPLE.COM").execute().data
    # hstore has a cast to json, which PostgREST's to_json uses: an object.
    assert found == [{"email": "Ada@Example.com", "attrs": {"a": "1", "b": "2"}}]
    with pytest.raises(APIError, match=r"23505|duplicate"):
        table.insert({"email": "BOB@X.IO"}).execute()

    # pg_trgm inside a function called over RPC, with the request's search_path.
    similar = service_client.rpc(f"{contrib_table}_like", {"q": "ada@example.org"}).execute()
    assert [row["email"] for row in similar.data] == ["Ada@Example.com"]


def test_an_api_role_calls_extension_functions_unqualified(
    admin_sql: Callable[[str], None], anon_client: Client
) -> None:
    name = f"ext_fn_{uuid.uuid4().hex[:8]}"
    # A function body resolves names with the caller's search_path: the request's schema, then
    # [api] extra_search_path (public, extensions by default).
    admin_sql(
        f"""
        create function public.{name}(t text) returns text language plpgsql stable as $$
          begin return encode(hmac(t, 'key', 'sha256'), 'hex'); end $$;
        """
    )
    try:
        answer = anon_client.rpc(name, {"t": "message"}).execute().data
    finally:
        admin_sql(f"drop function public.{name}(text)")
    assert answer == "6e9ef29b75fffc5b7abae527d58fdadb2fe42e7219011976917343065f58ed4a"


#: Listed by pg_available_extensions but not loadable here (docs/localbase.md says why).
UNLOADABLE = {
    "unaccent": "unaccent.rules",  # its rules file belongs in the server's share directory
    "pg_surgery": "undefined symbol",  # needs a function of PostgreSQL 18.6; the server is 18.4
}


def test_every_available_module_creates_except_the_documented_ones(
    localbase: LocalbaseProcess,
) -> None:
    scratch = f"ext_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(localbase.db_dsn, autocommit=True) as conn:
        conn.execute(f'create database "{scratch}"')
    failures: dict[str, str] = {}
    try:
        dsn = localbase.db_dsn.rsplit("/", 1)[0] + f"/{scratch}"
        with psycopg.connect(dsn, autocommit=True) as conn:
            names = [row[0] for row in conn.execute("select name from pg_available_extensions")]
            for name in names:
                try:
                    conn.execute(f'create extension if not exists "{name}" cascade')
                except psycopg.Error as exc:
                    failures[name] = str(exc)
    finally:
        with psycopg.connect(localbase.db_dsn, autocommit=True) as conn:
            conn.execute(f'drop database "{scratch}" with (force)')
    assert len(names) >= 43
    assert failures.keys() == UNLOADABLE.keys()
    for name, reason in UNLOADABLE.items():
        assert reason in failures[name]
