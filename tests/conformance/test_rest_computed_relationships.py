"""Computed relationships (PostgREST's "Computed Relationships"): a function ``fn(parent)``
returning a table's rows is a relationship named ``fn`` from ``parent`` to that table —
to-many for ``setof``, to-one for a single row or ``setof … rows 1`` — embeddable in reads, in
function results and in a write's result, with ``!inner``, counts, ordering and RLS; one named
like a table overrides the foreign keys to it (and so settles their ambiguity)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest
from postgrest.exceptions import APIError

from devstack.localbase import LocalbaseProcess
from supabase import Client
from tests.conftest import user_client
from tests.helpers import eventually

P = f"crl{uuid.uuid4().hex[:6]}"
DESIGNERS, GAMES, NOTES, PAGES = f"{P}_designers", f"{P}_games", f"{P}_notes", f"{P}_pages"
DESIGNER, DESIGNER_NOSET, GAMES_OF, MY_NOTES, PARENT, ALL_GAMES = (
    f"{P}_designer",
    f"{P}_designer_noset",
    f"{P}_games_of",
    f"{P}_my_notes",
    f"{P}_parent",
    f"{P}_all_games",
)
OWNER = str(uuid.uuid4())

SCHEMA = f"""
create table public.{DESIGNERS} (id int primary key, name text not null);
create table public.{GAMES} (
    id int primary key, name text not null,
    designer_id int references public.{DESIGNERS}(id),
    publisher_id int references public.{DESIGNERS}(id));
create table public.{NOTES} (id int primary key, game_id int, owner uuid, body text);
alter table public.{NOTES} enable row level security;
create policy own_notes on public.{NOTES} for select to authenticated using (owner = auth.uid());
create table public.{PAGES} (id int primary key, name text, parent int);
insert into public.{DESIGNERS} values (1, 'Sid Meier'), (2, 'Hironobu Sakaguchi');
insert into public.{GAMES} values (1, 'Civilization I', 1, 2), (2, 'Civilization II', 1, 2),
  (3, 'Final Fantasy I', 2, 1);
insert into public.{NOTES} values (1, 1, '{OWNER}', 'mine'), (2, 1, '{uuid.uuid4()}', 'theirs');
insert into public.{PAGES} values (1, 'root', null), (2, 'child', 1);
grant select, insert, update, delete on public.{DESIGNERS}, public.{GAMES}, public.{NOTES},
  public.{PAGES} to anon, authenticated, service_role;

create function public.{DESIGNER}(public.{GAMES}) returns setof public.{DESIGNERS} rows 1
language sql stable as $$ select * from public.{DESIGNERS} where id = $1.designer_id $$;
create function public.{DESIGNER_NOSET}(public.{GAMES}) returns public.{DESIGNERS}
language sql stable as $$ select * from public.{DESIGNERS} where id = $1.designer_id $$;
create function public.{GAMES_OF}(public.{DESIGNERS}) returns setof public.{GAMES}
language sql stable as $$ select * from public.{GAMES} where designer_id = $1.id $$;
create function public.{MY_NOTES}(public.{GAMES}) returns setof public.{NOTES}
language sql stable as $$ select * from public.{NOTES} where game_id = $1.id $$;
create function public.{PARENT}(public.{PAGES}) returns setof public.{PAGES} rows 1
language sql stable as $$ select * from public.{PAGES} where id = $1.parent $$;
create function public.{ALL_GAMES}() returns setof public.{GAMES}
language sql stable as $$ select * from public.{GAMES} order by id $$;
"""
DROP = (
    f"drop function if exists public.{DESIGNERS}; drop function public.{DESIGNER}, "
    f"public.{DESIGNER_NOSET}, public.{GAMES_OF}, public.{MY_NOTES}, public.{PARENT}, "
    f"public.{ALL_GAMES}; drop table public.{NOTES}, public.{PAGES}, public.{GAMES}, "
    f"public.{DESIGNERS}"
)
#: Named like the table: replaces the two foreign keys from games to designers.
OVERRIDE = f"""
create function public.{DESIGNERS}(public.{GAMES}) returns setof public.{DESIGNERS} rows 1
language sql stable as $$ select * from public.{DESIGNERS} where id = $1.publisher_id $$;
"""


def test_to_one_with_rows_1_and_without_setof(db: Client) -> None:
    for function in (DESIGNER, DESIGNER_NOSET):
        rows = db.table(GAMES).select(f"name,designer:{function}(name)").order("id").execute()
        assert rows.data == [
            {"name": "Civilization I", "designer": {"name": "Sid Meier"}},
            {"name": "Civilization II", "designer": {"name": "Sid Meier"}},
            {"name": "Final Fantasy I", "designer": {"name": "Hironobu Sakaguchi"}},
        ]


def test_to_many_with_embedded_order_and_limit(db: Client) -> None:
    rows = (
        db.table(DESIGNERS)
        .select(f"name,games:{GAMES_OF}(name)")
        .order("id")
        .order("name", desc=True, foreign_table="games")
        .limit(1, foreign_table="games")
        .execute()
        .data
    )
    assert rows == [
        {"name": "Sid Meier", "games": [{"name": "Civilization II"}]},
        {"name": "Hironobu Sakaguchi", "games": [{"name": "Final Fantasy I"}]},
    ]


def test_inner_with_exact_count(http: httpx.Client) -> None:
    response = http.get(
        f"/{DESIGNERS}",
        params={"select": f"name,games:{GAMES_OF}!inner(name)", "games.name": "eq.Civilization I"},
        headers={"Prefer": "count=exact"},
    )
    assert response.json() == [{"name": "Sid Meier", "games": [{"name": "Civilization I"}]}]
    assert response.headers["content-range"] == "0-0/1"
    to_one = http.get(
        f"/{GAMES}",
        params={"select": f"name,d:{DESIGNER}!inner(name)", "d.name": "like.*Hironobu*"},
        headers={"Prefer": "count=exact"},
    )
    assert to_one.json() == [{"name": "Final Fantasy I", "d": {"name": "Hironobu Sakaguchi"}}]
    assert to_one.headers["content-range"] == "0-0/1"


def test_order_by_spread_and_count(http: httpx.Client, db: Client) -> None:
    ordered = http.get(
        f"/{GAMES}", params={"select": f"id,d:{DESIGNER}(name)", "order": "d(name).desc,id"}
    )
    assert [r["id"] for r in ordered.json()] == [1, 2, 3]
    spread = db.table(GAMES).select(f"name,...{DESIGNER}(designer:name)").eq("id", 3).execute()
    assert spread.data == [{"name": "Final Fantasy I", "designer": "Hironobu Sakaguchi"}]
    counted = db.table(DESIGNERS).select(f"id,{GAMES_OF}(count)").order("id").execute()
    assert counted.data == [
        {"id": 1, GAMES_OF: [{"count": 2}]},
        {"id": 2, GAMES_OF: [{"count": 1}]},
    ]


def test_self_and_nested(db: Client) -> None:
    pages = db.table(PAGES).select(f"name,up:{PARENT}(name)").order("id").execute().data
    assert pages == [{"name": "root", "up": None}, {"name": "child", "up": {"name": "root"}}]
    nested = (
        db.table(DESIGNERS)
        .select(f"name,{GAMES_OF}(name,{DESIGNER}(name))")
        .eq("id", 2)
        .execute()
        .data
    )
    assert nested == [
        {
            "name": "Hironobu Sakaguchi",
            GAMES_OF: [{"name": "Final Fantasy I", DESIGNER: {"name": "Hironobu Sakaguchi"}}],
        }
    ]


def test_in_function_results(db: Client) -> None:
    rows = db.rpc(ALL_GAMES, {}).select(f"id,designer:{DESIGNER}(name)").lte("id", 3).execute()
    assert rows.data == [
        {"id": 1, "designer": {"name": "Sid Meier"}},
        {"id": 2, "designer": {"name": "Sid Meier"}},
        {"id": 3, "designer": {"name": "Hironobu Sakaguchi"}},
    ]


def test_in_a_writes_result(db: Client) -> None:
    inserted = (
        db.table(GAMES)
        .insert({"id": 9, "name": "Chrono Trigger", "designer_id": 2})
        .select(f"name,designer:{DESIGNER}(name)")
        .execute()
        .data
    )
    assert inserted == [{"name": "Chrono Trigger", "designer": {"name": "Hironobu Sakaguchi"}}]
    upserted = (
        db.table(GAMES)
        .upsert({"id": 9, "name": "Chrono Cross", "designer_id": 1})
        .select(f"name,designer:{DESIGNER}(name)")
        .execute()
        .data
    )
    assert upserted == [{"name": "Chrono Cross", "designer": {"name": "Sid Meier"}}]
    updated = (
        db.table(DESIGNERS)
        .update({"name": "Sid"})
        .eq("id", 1)
        .select(f"name,{GAMES_OF}(id)")
        .execute()
        .data
    )
    assert updated == [{"name": "Sid", GAMES_OF: [{"id": 1}, {"id": 2}, {"id": 9}]}]
    db.table(DESIGNERS).update({"name": "Sid Meier"}).eq("id", 1).execute()
    db.table(GAMES).delete().eq("id", 9).execute()


def test_rls_on_the_functions_table_applies(
    localbase: LocalbaseProcess, module_schema: None
) -> None:
    owner = user_client(localbase, OWNER)
    rows = owner.table(GAMES).select(f"id,{MY_NOTES}(body)").eq("id", 1).execute().data
    assert rows == [{"id": 1, MY_NOTES: [{"body": "mine"}]}]
    stranger = user_client(localbase, str(uuid.uuid4()))
    assert stranger.table(GAMES).select(f"id,{MY_NOTES}!inner(body)").execute().data == []


def test_overrides_the_detected_relationships(
    db: Client, admin_sql: Callable[[str], None], http: httpx.Client
) -> None:
    with pytest.raises(APIError) as ambiguous:
        db.table(GAMES).select(f"id,{DESIGNERS}(name)").execute()
    assert ambiguous.value.code == "PGRST201"
    admin_sql(OVERRIDE)
    select = {"select": f"id,{DESIGNERS}(name)"}
    eventually(lambda: http.get(f"/{GAMES}", params=select).status_code == 200, what="reload")
    try:
        rows = db.table(GAMES).select(f"id,{DESIGNERS}(name)").order("id").execute().data
        assert rows == [
            {"id": 1, DESIGNERS: {"name": "Hironobu Sakaguchi"}},
            {"id": 2, DESIGNERS: {"name": "Hironobu Sakaguchi"}},
            {"id": 3, DESIGNERS: {"name": "Sid Meier"}},
        ]
        # The foreign-key hint no longer names a relationship from games to designers.
        hinted = http.get(f"/{GAMES}", params={"select": f"id,{DESIGNERS}!designer_id(name)"})
        assert hinted.status_code == 200
        assert hinted.json()[0][DESIGNERS] == {"name": "Hironobu Sakaguchi"}
        # The other direction is not overridden.
        back = db.table(DESIGNERS).select(f"id,{GAMES}!designer_id(id)").eq("id", 2).execute()
        assert back.data == [{"id": 2, GAMES: [{"id": 3}]}]
    finally:
        admin_sql(f"drop function public.{DESIGNERS}")
        eventually(lambda: http.get(f"/{GAMES}", params=select).status_code == 300, what="reload")


def test_unknown_names_are_pgrst200(db: Client) -> None:
    with pytest.raises(APIError) as missing:
        db.table(GAMES).select(f"id,{P}_nope(*)").execute()
    assert missing.value.code == "PGRST200"
    with pytest.raises(APIError) as wrong_origin:
        db.table(DESIGNERS).select(f"id,{DESIGNER}(*)").execute()
    assert wrong_origin.value.code == "PGRST200"
