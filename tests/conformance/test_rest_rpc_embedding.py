"""Resource embedding in the result of a function (PostgREST v12–v14): a function returning a
table's rows (``setof books``, or one ``books`` row) has that table's relationships, so
``rpc("fn", …).select("*, authors(name)")`` embeds as a read of the table does — filters, order
and limit on embeds, ``!inner``, spreads, counts, RLS on the embedded tables. Functions
returning scalars or ``table(…)`` have no relationships: PGRST200."""

from __future__ import annotations

import uuid

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from postgrest import CountMethod
from postgrest.exceptions import APIError

from devstack.localbase import LocalbaseProcess
from supabase import Client
from tests.conftest import user_client

P = f"rpe{uuid.uuid4().hex[:6]}"
AUTHORS, BOOKS, TAGS, BOOK_TAGS, NOTES = (
    f"{P}_authors",
    f"{P}_books",
    f"{P}_tags",
    f"{P}_book_tags",
    f"{P}_notes",
)
BOOKS_BY, BOOK, ADD_BOOK, BOOK_COUNT, BOOK_ROWS = (
    f"{P}_books_by",
    f"{P}_book",
    f"{P}_add_book",
    f"{P}_book_count",
    f"{P}_book_rows",
)
OWNER = str(uuid.uuid4())

SCHEMA = f"""
create table public.{AUTHORS} (id int primary key, name text not null);
create table public.{BOOKS} (
    id int primary key, title text not null, author_id int references public.{AUTHORS}(id));
create table public.{TAGS} (id int primary key, label text);
create table public.{BOOK_TAGS} (
    book_id int references public.{BOOKS}(id), tag_id int references public.{TAGS}(id),
    primary key (book_id, tag_id));
create table public.{NOTES} (
    id int primary key, book_id int references public.{BOOKS}(id), owner uuid, body text);
alter table public.{NOTES} enable row level security;
create policy own_notes on public.{NOTES} for select to authenticated using (owner = auth.uid());
insert into public.{AUTHORS} values (1, 'ann'), (2, 'bob');
insert into public.{BOOKS} values (1, 'a1', 1), (2, 'a2', 1), (3, 'b1', 2);
insert into public.{TAGS} values (1, 'x'), (2, 'y');
insert into public.{BOOK_TAGS} values (1, 1), (1, 2), (3, 2);
insert into public.{NOTES} values (1, 1, '{OWNER}', 'mine'), (2, 1, '{uuid.uuid4()}', 'theirs');
grant select, insert, update, delete on public.{AUTHORS}, public.{BOOKS}, public.{TAGS},
  public.{BOOK_TAGS}, public.{NOTES} to anon, authenticated, service_role;

create function public.{BOOKS_BY}(author_name text) returns setof public.{BOOKS}
language sql stable as $$
  select b.* from public.{BOOKS} b join public.{AUTHORS} a on a.id = b.author_id
  where a.name = author_name order by b.id
$$;
create function public.{BOOK}(book_id int) returns public.{BOOKS}
language sql stable as $$ select * from public.{BOOKS} where id = book_id $$;
create function public.{ADD_BOOK}(id int, title text, author_id int)
returns setof public.{BOOKS} language sql as $$
  insert into public.{BOOKS} values (id, title, author_id) returning *
$$;
create function public.{BOOK_COUNT}() returns int
language sql stable as $$ select count(*)::int from public.{BOOKS} $$;
create function public.{BOOK_ROWS}() returns table (id int, title text)
language sql stable as $$ select id, title from public.{BOOKS} $$;
"""
DROP = (
    f"drop function public.{BOOKS_BY}, public.{BOOK}, public.{ADD_BOOK}, "
    f"public.{BOOK_COUNT}, public.{BOOK_ROWS}; drop table public.{NOTES}, "
    f"public.{BOOK_TAGS}, public.{TAGS}, public.{BOOKS}, public.{AUTHORS}"
)


def test_set_returning_function_embeds_its_tables_relationships(db: Client) -> None:
    rows = (
        db.rpc(BOOKS_BY, {"author_name": "ann"})
        .select(f"title,{AUTHORS}(name),{TAGS}(label)")
        .order("label", foreign_table=TAGS)
        .execute()
        .data
    )
    assert rows == [
        {"title": "a1", AUTHORS: {"name": "ann"}, TAGS: [{"label": "x"}, {"label": "y"}]},
        {"title": "a2", AUTHORS: {"name": "ann"}, TAGS: []},
    ]


def test_get_and_post_calls_embed_alike(db: Client) -> None:
    select = f"id,writer:{AUTHORS}(name)"
    posted = db.rpc(BOOKS_BY, {"author_name": "bob"}).select(select).execute().data
    got = db.rpc(BOOKS_BY, {"author_name": "bob"}, get=True).select(select).execute().data
    assert posted == got == [{"id": 3, "writer": {"name": "bob"}}]


def test_a_single_row_function_embeds_in_its_object(db: Client) -> None:
    book = db.rpc(BOOK, {"book_id": 1}).select(f"title,{AUTHORS}(name),{NOTES}(id)").execute()
    assert book.data == {"title": "a1", AUTHORS: {"name": "ann"}, NOTES: [{"id": 1}, {"id": 2}]}


def test_filters_order_limit_inner_and_spread_on_embeds(db: Client) -> None:
    limited = (
        db.rpc(BOOKS_BY, {"author_name": "ann"})
        .select(f"id,{TAGS}(label)")
        .order("label", desc=True, foreign_table=TAGS)
        .limit(1, foreign_table=TAGS)
        .eq("id", 1)
        .execute()
        .data
    )
    assert limited == [{"id": 1, TAGS: [{"label": "y"}]}]
    inner = (
        db.rpc(BOOKS_BY, {"author_name": "ann"})
        .select(f"id,{TAGS}!inner(label)")
        .eq(f"{TAGS}.label", "x")
        .execute()
        .data
    )
    assert inner == [{"id": 1, TAGS: [{"label": "x"}]}]
    spread = (
        db.rpc(BOOKS_BY, {"author_name": "bob"})
        .select(f"title,...{AUTHORS}(author:name)")
        .execute()
        .data
    )
    assert spread == [{"title": "b1", "author": "bob"}]


def test_counts_in_embeds_and_of_the_result(db: Client) -> None:
    result = (
        db.rpc(BOOKS_BY, {"author_name": "ann"}, count=CountMethod.exact)
        .select(f"id,{TAGS}(count)")
        .limit(1)
        .execute()
    )
    assert result.data == [{"id": 1, TAGS: [{"count": 2}]}]
    assert result.count == 2


def test_order_by_a_column_of_a_to_one_embed(http: httpx.Client) -> None:
    response = http.get(
        f"/rpc/{BOOKS_BY}",
        params={
            "author_name": "ann",
            "select": f"id,a:{AUTHORS}(name)",
            "order": "a(name),id.desc",
        },
    )
    assert response.status_code == 200, response.text
    assert [r["id"] for r in response.json()] == [2, 1]


def test_a_volatile_function_returns_its_new_rows_with_embeds(db: Client) -> None:
    added = (
        db.rpc(ADD_BOOK, {"id": 50, "title": "new", "author_id": 2})
        .select(f"title,{AUTHORS}(name)")
        .execute()
    )
    assert added.data == [{"title": "new", AUTHORS: {"name": "bob"}}]
    db.table(BOOKS).delete().eq("id", 50).execute()


def test_rls_on_an_embedded_table_applies(localbase: LocalbaseProcess, module_schema: None) -> None:
    owner = user_client(localbase, OWNER)
    mine = owner.rpc(BOOK, {"book_id": 1}).select(f"id,{NOTES}(body)").execute().data
    assert mine == {"id": 1, NOTES: [{"body": "mine"}]}
    stranger = user_client(localbase, str(uuid.uuid4()))
    hidden = stranger.rpc(BOOKS_BY, {"author_name": "ann"}).select(f"id,{NOTES}!inner(body)")
    assert hidden.execute().data == []


def test_functions_without_a_table_have_no_relationships(db: Client) -> None:
    with pytest.raises(APIError) as scalar:
        db.rpc(BOOK_COUNT, {}).select(f"*,{AUTHORS}(name)").execute()
    assert scalar.value.code == "PGRST200"
    assert scalar.value.message == (
        f"Could not find a relationship between '{BOOK_COUNT}' and '{AUTHORS}' in the schema cache"
    )
    with pytest.raises(APIError) as record:
        db.rpc(BOOK_ROWS, {}).select(f"*,{AUTHORS}(name)").execute()
    assert record.value.code == "PGRST200"
    assert record.value.message == (
        f"Could not find a relationship between 'record' and '{AUTHORS}' in the schema cache"
    )
    assert isinstance(db.rpc(BOOK_COUNT, {}).execute().data, int)


def test_bad_embeds_are_client_errors(http: httpx.Client) -> None:
    cases = {
        f"id,{P}_nothing(id)": "PGRST200",
        f"id,{AUTHORS}(name": "PGRST100",
        "id,(name)": "PGRST100",
        f"id,{AUTHORS}!nope(name)": "PGRST200",
    }
    for select, code in cases.items():
        for method in ("GET", "POST"):
            if method == "GET":
                response = http.get(
                    f"/rpc/{BOOKS_BY}", params={"author_name": "ann", "select": select}
                )
            else:
                response = http.post(
                    f"/rpc/{BOOKS_BY}", params={"select": select}, json={"author_name": "ann"}
                )
            assert response.status_code == 400, (select, response.text)
            assert response.json()["code"] == code, (select, response.text)
    unselected = http.get(
        f"/rpc/{BOOKS_BY}", params={"author_name": "ann", "select": "id", f"{AUTHORS}.name": "eq.x"}
    )
    assert unselected.status_code == 400
    assert unselected.json()["code"] == "PGRST108"


pieces = st.sampled_from(
    [
        AUTHORS,
        TAGS,
        NOTES,
        BOOKS,
        "title",
        "id",
        "name",
        "*",
        "(",
        ")",
        ",",
        ":",
        "!inner",
        "...",
        "count",
        "count()",
        '"',
        "->",
        "é",
        " ",
        ".",
    ]
)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(select=st.lists(pieces, max_size=12).map("".join), post=st.booleans())
def test_fuzzed_select_on_a_function_never_gets_a_server_error(
    http: httpx.Client, select: str, post: bool
) -> None:
    calls = {
        BOOKS_BY: {"author_name": "ann"},
        BOOK: {"book_id": "1"},
        BOOK_COUNT: {},
        BOOK_ROWS: {},
    }
    for function, arguments in calls.items():
        if post:
            response = http.post(f"/rpc/{function}", params={"select": select}, json=arguments)
        else:
            response = http.get(f"/rpc/{function}", params={**arguments, "select": select})
        assert response.status_code < 500, (function, select, response.text)
