"""Resource embedding (PostgREST v12 semantics) through the official ``supabase`` client: every
cardinality, hints, ``!inner``, aliases, nesting, filters/order/limit on embeds, counts,
spreads, PGRST200/201/108, RLS on embedded tables, embeds in a write's result, and a fuzzed
``select=`` that never gets a 5xx."""

from __future__ import annotations

import uuid

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from postgrest.exceptions import APIError

from devstack.localbase import LocalbaseProcess
from supabase import Client
from tests.conftest import user_client

P = f"emb{uuid.uuid4().hex[:6]}"
AUTHORS, BOOKS, TAGS, BOOK_TAGS, PROFILES, NOTES, SHELF = (
    f"{P}_authors",
    f"{P}_books",
    f"{P}_tags",
    f"{P}_book_tags",
    f"{P}_profiles",
    f"{P}_notes",
    f"{P}_shelf",
)
OWNER = str(uuid.uuid4())
OTHER = str(uuid.uuid4())

SCHEMA = f"""
create table public.{AUTHORS} (id int primary key, name text not null);
create table public.{BOOKS} (
    id int primary key, title text not null,
    author_id int references public.{AUTHORS}(id),
    editor_id int references public.{AUTHORS}(id));
create table public.{TAGS} (id int primary key, label text);
create table public.{BOOK_TAGS} (
    book_id int references public.{BOOKS}(id), tag_id int references public.{TAGS}(id),
    primary key (book_id, tag_id));
create table public.{PROFILES} (author_id int primary key references public.{AUTHORS}(id),
    bio text);
create table public.{NOTES} (
    id int primary key, book_id int references public.{BOOKS}(id), owner uuid, body text);
alter table public.{NOTES} enable row level security;
create policy own_notes on public.{NOTES} for select to authenticated using (owner = auth.uid());
create view public.{SHELF} as select id, title, author_id from public.{BOOKS};
insert into public.{AUTHORS} values (1, 'ann'), (2, 'bob'), (3, 'cy');
insert into public.{BOOKS} values (1, 'a1', 1, 2), (2, 'a2', 1, null), (3, 'b1', 2, 1);
insert into public.{TAGS} values (1, 'x'), (2, 'y');
insert into public.{BOOK_TAGS} values (1, 1), (1, 2), (3, 2);
insert into public.{PROFILES} values (1, 'bio of ann');
insert into public.{NOTES} values (1, 1, '{OWNER}', 'mine'), (2, 1, '{OTHER}', 'theirs');
grant select, insert, update, delete on public.{AUTHORS}, public.{BOOKS}, public.{TAGS},
  public.{BOOK_TAGS}, public.{PROFILES}, public.{NOTES}, public.{SHELF}
  to anon, authenticated, service_role;
"""
DROP = (
    f"drop view public.{SHELF}; drop table public.{NOTES}, public.{PROFILES}, "
    f"public.{BOOK_TAGS}, public.{TAGS}, public.{BOOKS}, public.{AUTHORS}"
)


def test_many_to_one_with_hint_and_aliases(db: Client) -> None:
    rows = (
        db.table(BOOKS)
        .select(
            f"id,author:{AUTHORS}!author_id(name),editor:{AUTHORS}!{BOOKS}_editor_id_fkey(name)"
        )
        .order("id")
        .execute()
        .data
    )
    assert rows == [
        {"id": 1, "author": {"name": "ann"}, "editor": {"name": "bob"}},
        {"id": 2, "author": {"name": "ann"}, "editor": None},
        {"id": 3, "author": {"name": "bob"}, "editor": {"name": "ann"}},
    ]


def test_one_to_many_nested_many_to_many(db: Client) -> None:
    rows = (
        db.table(AUTHORS)
        .select(f"name,{BOOKS}!author_id(title,{TAGS}(label))")
        .order("id")
        .order("title", foreign_table=BOOKS)
        .order("label", foreign_table=f"{BOOKS}.{TAGS}")
        .execute()
        .data
    )
    assert rows == [
        {
            "name": "ann",
            BOOKS: [
                {"title": "a1", TAGS: [{"label": "x"}, {"label": "y"}]},
                {"title": "a2", TAGS: []},
            ],
        },
        {"name": "bob", BOOKS: [{"title": "b1", TAGS: [{"label": "y"}]}]},
        {"name": "cy", BOOKS: []},
    ]


def test_many_to_many_with_junction_hint(db: Client) -> None:
    rows = db.table(BOOKS).select(f"id,{TAGS}!{BOOK_TAGS}(id)").eq("id", 3).execute().data
    assert rows == [{"id": 3, TAGS: [{"id": 2}]}]


def test_one_to_one_both_ways(db: Client) -> None:
    authors = db.table(AUTHORS).select(f"id,{PROFILES}(bio)").order("id").execute().data
    assert [a[PROFILES] for a in authors] == [{"bio": "bio of ann"}, None, None]
    profile = db.table(PROFILES).select(f"bio,{AUTHORS}(name)").single().execute().data
    assert profile == {"bio": "bio of ann", AUTHORS: {"name": "ann"}}


def test_inner_join_and_embedded_filters(db: Client) -> None:
    inner = (
        db.table(BOOKS)
        .select(f"title,{AUTHORS}!author_id!inner(name)")
        .eq(f"{AUTHORS}.name", "ann")
        .order("id")
        .execute()
        .data
    )
    assert [r["title"] for r in inner] == ["a1", "a2"]
    left = (
        db.table(BOOKS)
        .select(f"title,{AUTHORS}!author_id(name)")
        .eq(f"{AUTHORS}.name", "ann")
        .order("id")
        .execute()
        .data
    )
    assert [r[AUTHORS] for r in left] == [{"name": "ann"}, {"name": "ann"}, None]
    with_books = (
        db.table(AUTHORS)
        .select(f"name,{BOOKS}!author_id!inner(title)")
        .like(f"{BOOKS}.title", "b*")
        .execute()
        .data
    )
    assert with_books == [{"name": "bob", BOOKS: [{"title": "b1"}]}]


def test_an_empty_embed_filters_without_appearing(db: Client) -> None:
    """``author()`` joins for !inner and its filters but adds nothing to the body."""
    rows = (
        db.table(BOOKS)
        .select(f"title,{AUTHORS}!author_id!inner()")
        .eq(f"{AUTHORS}.name", "bob")
        .execute()
        .data
    )
    assert rows == [{"title": "b1"}]
    everything = db.table(BOOKS).select(f"title,{TAGS}()").order("id").execute().data
    assert everything == [{"title": "a1"}, {"title": "a2"}, {"title": "b1"}]


def test_the_same_embed_twice_and_postgres_errors_name_postgrests_aliases(
    http: httpx.Client,
) -> None:
    twice = http.get(
        f"/{BOOKS}", params={"select": f"{AUTHORS}!author_id(*),{AUTHORS}!editor_id(*)"}
    )
    assert twice.status_code == 400
    assert twice.json()["code"] == "42712"
    assert twice.json()["message"] == (f'table name "{BOOKS}_{AUTHORS}_1" specified more than once')
    aliased = http.get(
        f"/{BOOKS}",
        params={"select": f"a:{AUTHORS}!author_id(name),e:{AUTHORS}!editor_id(name)", "id": "eq.1"},
    )
    assert aliased.json() == [{"a": {"name": "ann"}, "e": {"name": "bob"}}]
    missing = http.get(f"/{AUTHORS}", params={"select": f"name,{BOOKS}!author_id(nothing)"})
    assert missing.status_code == 400
    assert missing.json()["code"] == "42703"
    assert missing.json()["message"] == f"column {BOOKS}_1.nothing does not exist"


def test_embedded_order_limit_offset_and_or(db: Client) -> None:
    rows = (
        db.table(AUTHORS)
        .select(f"name,{BOOKS}!author_id(title)")
        .eq("id", 1)
        .order("title", desc=True, foreign_table=BOOKS)
        .limit(1, foreign_table=BOOKS)
        .execute()
        .data
    )
    assert rows == [{"name": "ann", BOOKS: [{"title": "a2"}]}]
    offset = (
        db.table(AUTHORS)
        .select(f"name,{BOOKS}!author_id(title)")
        .eq("id", 1)
        .order("title", foreign_table=BOOKS)
        .range(1, 1, foreign_table=BOOKS)
        .execute()
        .data
    )
    assert offset == [{"name": "ann", BOOKS: [{"title": "a2"}]}]
    either = (
        db.table(AUTHORS)
        .select(f"name,{BOOKS}!author_id(title)")
        .eq("id", 1)
        .or_("title.eq.a1,title.eq.zz", reference_table=BOOKS)
        .execute()
        .data
    )
    assert either == [{"name": "ann", BOOKS: [{"title": "a1"}]}]


def test_order_parents_by_a_to_one_column(localbase: LocalbaseProcess, module_schema: None) -> None:
    response = _get(
        localbase, BOOKS, select=f"title,a:{AUTHORS}!author_id(name)", order="a(name).desc,title"
    )
    assert [r["title"] for r in response.json()] == ["b1", "a1", "a2"]
    refused = _get(
        localbase, AUTHORS, select=f"name,{BOOKS}!author_id(title)", order=f"{BOOKS}(title)"
    )
    assert refused.status_code == 400
    assert refused.json()["code"] == "PGRST118"


def test_count_of_an_embed_and_spread(db: Client) -> None:
    counts = db.table(AUTHORS).select(f"name,{BOOKS}!author_id(count)").order("id").execute().data
    assert [r[BOOKS] for r in counts] == [[{"count": 2}], [{"count": 1}], [{"count": 0}]]
    spread = (
        db.table(BOOKS)
        .select(f"title,...{AUTHORS}!author_id(author_name:name)")
        .order("id")
        .execute()
        .data
    )
    assert spread == [
        {"title": "a1", "author_name": "ann"},
        {"title": "a2", "author_name": "ann"},
        {"title": "b1", "author_name": "bob"},
    ]


def test_views_inherit_their_tables_relationships(db: Client) -> None:
    rows = db.table(SHELF).select(f"title,{AUTHORS}(name)").eq("id", 3).execute().data
    assert rows == [{"title": "b1", AUTHORS: {"name": "bob"}}]
    back = db.table(AUTHORS).select(f"name,{SHELF}(title)").eq("id", 2).execute().data
    assert back == [{"name": "bob", SHELF: [{"title": "b1"}]}]


def test_missing_ambiguous_and_unselected_relationships(db: Client) -> None:
    with pytest.raises(APIError) as missing:
        db.table(BOOKS).select(f"title,{P}_nothing(id)").execute()
    assert missing.value.code == "PGRST200"
    assert missing.value.message == (
        f"Could not find a relationship between '{BOOKS}' and '{P}_nothing' in the schema cache"
    )
    with pytest.raises(APIError) as ambiguous:
        db.table(BOOKS).select(f"title,{AUTHORS}(name)").execute()
    assert ambiguous.value.code == "PGRST201"
    details = ambiguous.value.details
    assert isinstance(details, list)
    assert {d["relationship"] for d in details} == {  # type: ignore[index]
        f"{BOOKS}_author_id_fkey using {BOOKS}(author_id) and {AUTHORS}(id)",
        f"{BOOKS}_editor_id_fkey using {BOOKS}(editor_id) and {AUTHORS}(id)",
    }
    assert ambiguous.value.hint is not None
    assert f"'{AUTHORS}!{BOOKS}_author_id_fkey'" in ambiguous.value.hint
    with pytest.raises(APIError) as unselected:
        db.table(BOOKS).select("title").eq(f"{AUTHORS}.name", "ann").execute()
    assert unselected.value.code == "PGRST108"


def test_rls_on_an_embedded_table_applies(localbase: LocalbaseProcess, module_schema: None) -> None:
    client = user_client(localbase, OWNER)
    rows = client.table(BOOKS).select(f"id,{NOTES}(body)").eq("id", 1).execute().data
    assert rows == [{"id": 1, NOTES: [{"body": "mine"}]}]
    stranger = user_client(localbase, str(uuid.uuid4()))
    rows = stranger.table(BOOKS).select(f"id,{NOTES}!inner(body)").execute().data
    assert rows == []


def test_writes_return_embedded_resources(db: Client) -> None:
    inserted = (
        db.table(BOOKS)
        .insert({"id": 90, "title": "new", "author_id": 3})
        .select(f"id,{AUTHORS}!author_id(name)")
        .execute()
        .data
    )
    assert inserted == [{"id": 90, AUTHORS: {"name": "cy"}}]
    deleted = (
        db.table(BOOKS).delete().eq("id", 90).select(f"title,{AUTHORS}!author_id(name)").execute()
    )
    assert deleted.data == [{"title": "new", AUTHORS: {"name": "cy"}}]


def test_embedding_with_exact_count(db: Client) -> None:
    result = (
        db.table(BOOKS)
        .select(f"title,{AUTHORS}!author_id!inner(name)", count="exact")
        .eq(f"{AUTHORS}.name", "ann")
        .limit(1)
        .execute()
    )
    assert len(result.data) == 1
    assert result.count == 2


def _get(localbase: LocalbaseProcess, table: str, **params: str) -> httpx.Response:
    headers = {"apikey": localbase.service_key, "Authorization": f"Bearer {localbase.service_key}"}
    return httpx.get(f"{localbase.url}/rest/v1/{table}", params=params, headers=headers)


pieces = st.sampled_from(
    [
        AUTHORS,
        BOOKS,
        TAGS,
        NOTES,
        "name",
        "title",
        "id",
        "*",
        "(",
        ")",
        ",",
        ":",
        "::text",
        "!inner",
        "!left",
        "!author_id",
        "...",
        '"',
        "'",
        "count",
        "count()",
        "->",
        "é",
        "名",
        "\u200b",
        " ",
        ".",
    ]
)
select_text = st.one_of(
    st.lists(pieces, max_size=16).map("".join),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20),
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(select=select_text, filter_key=st.sampled_from(["", f"{AUTHORS}.name", f"{BOOKS}.order"]))
def test_fuzzed_select_never_gets_a_server_error(
    http: httpx.Client, select: str, filter_key: str
) -> None:
    params = [("select", select)]
    if filter_key:
        params.append((filter_key, "eq.ann" if filter_key.endswith("name") else "title.desc"))
    for table in (BOOKS, AUTHORS):
        response = http.get(f"/{table}", params=params)
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            body = response.json()
            assert isinstance(body, dict), body
            assert isinstance(body["code"], str), body
