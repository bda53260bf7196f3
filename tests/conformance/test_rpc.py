"""RPC as PostgREST does it, with the official client: composite (row) arguments, overload
resolution and PGRST202/203, max-affected under strict handling (PGRST124, nothing committed),
Content-Range of a scalar result, and ``tx=rollback``."""

from __future__ import annotations

import uuid

import httpx
import pytest
from postgrest.exceptions import APIError

from supabase import Client

P = f"rpc{uuid.uuid4().hex[:6]}"

SCHEMA = f"""
create table public.{P}_channels (id int primary key, data jsonb, slug text);
create table public.{P}_messages (id int primary key, channel_id int, body text);
insert into public.{P}_channels values (1, null, 'one');
insert into public.{P}_messages values (1, 1, 'hi'), (2, 1, 'there'), (3, 2, 'elsewhere');
create function public.{P}_get_messages(channel_row public.{P}_channels)
  returns setof public.{P}_messages language sql stable
  as $$ select * from public.{P}_messages where channel_id = channel_row.id order by id $$;
create function public.{P}_ov(boolean) returns text language sql as $$ select 'bool' $$;
create function public.{P}_ov(int) returns text language sql as $$ select 'int' $$;
create function public.{P}_ov(text) returns text language sql as $$ select 'text' $$;
create function public.{P}_only_int(int) returns int language sql as $$ select $1 $$;
create function public.{P}_pair(a int) returns int language sql as $$ select a $$;
create function public.{P}_pair(a text) returns text language sql as $$ select a $$;
create function public.{P}_add(n int) returns setof public.{P}_messages language sql
  as $$ insert into public.{P}_messages select 100 + g, 9, 'x' from generate_series(1, n) g
        returning * $$;
create function public.{P}_two() returns int language sql as $$ select 2 $$;
create function public.{P}_blurb(public.{P}_messages) returns text language sql
  as $$ select $1.body $$;
create function public.{P}_dflt() returns int language sql as $$ select 1 $$;
create function public.{P}_dflt(text default 'x') returns text language sql as $$ select $1 $$;
grant select on public.{P}_channels, public.{P}_messages to service_role;
grant insert on public.{P}_messages to service_role;
grant execute on all functions in schema public to service_role;
"""
DROP = (
    f"drop function public.{P}_get_messages, public.{P}_ov(boolean), public.{P}_ov(int), "
    f"public.{P}_ov(text), public.{P}_only_int, public.{P}_pair(int), "
    f"public.{P}_pair(text), public.{P}_add, public.{P}_two, public.{P}_blurb, "
    f"public.{P}_dflt(), public.{P}_dflt(text);"
    f"drop table public.{P}_channels, public.{P}_messages"
)


def test_composite_argument_from_a_json_object(db: Client) -> None:
    row = {"id": 1, "data": None, "slug": None}
    result = db.rpc(f"{P}_get_messages", {"channel_row": row}).execute()
    assert [m["body"] for m in result.data] == ["hi", "there"]


def test_overloads_with_an_unnamed_argument(db: Client) -> None:
    assert db.rpc(f"{P}_ov", {"": "test"}).execute().data == "text"
    with pytest.raises(APIError) as hidden:
        db.rpc(f"{P}_only_int", {"": 1}).execute()
    assert hidden.value.code == "PGRST202"


def test_ambiguous_overloads_say_pgrst203(db: Client) -> None:
    with pytest.raises(APIError) as info:
        db.rpc(f"{P}_pair", {"a": 1}).execute()
    assert info.value.code == "PGRST203"
    assert info.value.message == (
        "Could not choose the best candidate function between: "
        f"public.{P}_pair(a => integer), public.{P}_pair(a => text)"
    )


def test_candidates_are_listed_by_their_parameters(db: Client) -> None:
    with pytest.raises(APIError) as info:
        db.rpc(f"{P}_dflt", {}).execute()
    assert info.value.code == "PGRST203"
    assert info.value.message == (
        "Could not choose the best candidate function between: "
        f"public.{P}_dflt(), public.{P}_dflt( => text)"
    )


def test_the_hint_suggests_parameters_of_the_same_name_or_another_exposed_name(
    db: Client,
) -> None:
    """PostgREST's hint: for a name it knows, the closest parameter list of its overloads (or
    none); for a name it does not, the closest other exposed function — never one it hides."""
    with pytest.raises(APIError) as close_params:
        db.rpc(f"{P}_get_messages", {"channel_rows": {}}).execute()
    assert close_params.value.hint == (
        f"Perhaps you meant to call the function public.{P}_get_messages(channel_row)"
    )
    with pytest.raises(APIError) as nothing_close:
        db.rpc(f"{P}_two", {"unrelated_argument": 1}).execute()
    assert nothing_close.value.hint is None
    with pytest.raises(APIError) as row_function:  # a computed field: cached, not callable
        db.rpc(f"{P}_blurb", {}).execute()
    assert row_function.value.code == "PGRST202"
    assert row_function.value.hint is None  # its one parameter is unnamed: "()" matches nothing
    with pytest.raises(APIError) as hidden:
        db.rpc(f"{P}_only_int", {"": 1}).execute()  # not exposed: another name is offered
    assert hidden.value.hint is not None
    assert f"{P}_only_int" not in hidden.value.hint


def test_missing_function_text(db: Client) -> None:
    with pytest.raises(APIError) as info:
        db.rpc(f"{P}_nothing", {"a": 1, "b": 2}).execute()
    assert info.value.code == "PGRST202"
    assert (
        info.value.message
        == f"Could not find the function public.{P}_nothing(a, b) in the schema cache"
    )
    assert info.value.details == (
        f"Searched for the function public.{P}_nothing with parameters a, b or with a single "
        "unnamed json/jsonb parameter, but no matches were found in the schema cache."
    )


def test_max_affected_on_rpc_commits_nothing(db: Client, http: httpx.Client) -> None:
    response = http.post(
        f"/rpc/{P}_add", json={"n": 3}, headers={"Prefer": "handling=strict, max-affected=2"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "PGRST124"
    assert db.table(f"{P}_messages").select("id").gt("id", 100).execute().data == []
    scalar = http.post(
        f"/rpc/{P}_two", json={}, headers={"Prefer": "handling=strict, max-affected=1"}
    )
    assert scalar.status_code == 400


def test_exact_count_of_a_scalar(db: Client, http: httpx.Client) -> None:
    result = db.rpc(f"{P}_two", {}, count="exact").execute()
    assert result.data == 2
    assert result.count == 1
    plain = http.post(f"/rpc/{P}_two", json={})
    assert plain.headers["content-range"] == "0-0/*"


def test_tx_rollback_on_rpc(db: Client, http: httpx.Client) -> None:
    response = http.post(f"/rpc/{P}_add", json={"n": 1}, headers={"Prefer": "tx=rollback"})
    assert response.status_code == 200
    assert len(response.json()) == 1
    assert response.headers["preference-applied"] == "tx=rollback"
    assert db.table(f"{P}_messages").select("id").gt("id", 100).execute().data == []
