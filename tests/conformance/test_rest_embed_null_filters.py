"""Null filters on embedded resources (PostgREST v11+): ``clients=not.is.null`` keeps the parents
with a related row, as ``!inner`` does, ``clients=is.null`` those without one; on many-to-one,
one-to-one, one-to-many and many-to-many relationships, aliases, computed relationships,
nested embeds, spreads, inside ``or``, with ``Prefer: count=exact``, in a function's result,
as the request's role (RLS on the embedded table decides), what stays a filter on a column,
and fuzzed filters that never get a 5xx."""

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

P = f"enf{uuid.uuid4().hex[:6]}"
CLIENTS, PROJECTS, TASKS, USERS, USERS_TASKS, CLIENTINFO, CONTACTS = (
    f"{P}_clients",
    f"{P}_projects",
    f"{P}_tasks",
    f"{P}_users",
    f"{P}_users_tasks",
    f"{P}_clientinfo",
    f"{P}_contacts",
)
PROJECTS_OF, OWNER_CLIENT = f"{P}_projects_of", f"{P}_owner_client"
OWNER = str(uuid.uuid4())
OTHER = str(uuid.uuid4())

SCHEMA = f"""
create table public.{CLIENTS} (id int primary key, name text);
create table public.{PROJECTS} (
    id int primary key, name text, client_id int references public.{CLIENTS}(id));
create table public.{TASKS} (
    id int primary key, name text, project_id int references public.{PROJECTS}(id), owner uuid);
create table public.{USERS} (id int primary key, name text);
create table public.{USERS_TASKS} (
    user_id int references public.{USERS}(id), task_id int references public.{TASKS}(id),
    primary key (user_id, task_id));
create table public.{CLIENTINFO} (
    id int primary key, client_id int unique references public.{CLIENTS}(id), other text);
create table public.{CONTACTS} (
    id int primary key, client_id int references public.{CLIENTS}(id), name text);
alter table public.{TASKS} enable row level security;
create policy own_tasks on public.{TASKS} for select to authenticated using (owner = auth.uid());
insert into public.{CLIENTS} values (1, 'Microsoft'), (2, 'Apple'), (3, 'Nobody');
insert into public.{PROJECTS} values
    (1, 'Windows 7', 1), (2, 'Windows 10', 1), (3, 'IOS', 2), (4, 'OSX', 2), (5, 'Orphan', null);
insert into public.{TASKS} values
    (1, 'Design w7', 1, '{OWNER}'), (2, 'Code w7', 1, '{OTHER}'),
    (3, 'Design w10', 2, '{OWNER}'), (4, 'Design IOS', 3, '{OTHER}');
insert into public.{USERS} values (1, 'Angela'), (2, 'Dwight'), (3, 'Michael');
insert into public.{USERS_TASKS} values (1, 1), (2, 1), (2, 3), (3, 2);
insert into public.{CLIENTINFO} values (1, 1, 'main office'), (3, 3, null);
insert into public.{CONTACTS} values (1, 2, 'tabby'), (2, 3, 'rex');
grant select, insert, update, delete on public.{CLIENTS}, public.{PROJECTS}, public.{TASKS},
  public.{USERS}, public.{USERS_TASKS}, public.{CLIENTINFO}, public.{CONTACTS}
  to anon, authenticated, service_role;

create function public.{PROJECTS_OF}(client int) returns setof public.{PROJECTS}
    language sql stable as $$ select * from public.{PROJECTS} where client_id = client $$;
create function public.{OWNER_CLIENT}(public.{PROJECTS}) returns setof public.{CLIENTS} rows 1
    language sql stable as $$ select * from public.{CLIENTS} where id = $1.client_id $$;
grant execute on function public.{PROJECTS_OF}(int), public.{OWNER_CLIENT}(public.{PROJECTS})
  to anon, authenticated, service_role;
notify pgrst, 'reload schema';
"""
DROP = (
    f"drop function public.{PROJECTS_OF}(int), public.{OWNER_CLIENT}(public.{PROJECTS});"
    f"drop table public.{USERS_TASKS}, public.{USERS}, public.{TASKS}, public.{PROJECTS}, "
    f"public.{CLIENTINFO}, public.{CONTACTS}, public.{CLIENTS}"
)


def _names(rows: list[dict[str, object]]) -> list[object]:
    return [row["name"] for row in rows]


def test_many_to_one(db: Client) -> None:
    projects = db.table(PROJECTS)
    present = projects.select(f"name,{CLIENTS}()").not_.is_(CLIENTS, "null").order("id").execute()
    assert present.data == [
        {"name": "Windows 7"},
        {"name": "Windows 10"},
        {"name": "IOS"},
        {"name": "OSX"},
    ]
    absent = projects.select(f"name,{CLIENTS}(name)").is_(CLIENTS, "null").execute()
    assert absent.data == [{"name": "Orphan", CLIENTS: None}]


def test_a_related_row_whose_selected_columns_are_null_is_present(db: Client) -> None:
    clients = db.table(CLIENTS)
    present = (
        clients.select(f"name,{CLIENTINFO}(other)")
        .not_.is_(CLIENTINFO, "null")
        .order("id")
        .execute()
    )
    assert present.data == [
        {"name": "Microsoft", CLIENTINFO: {"other": "main office"}},
        {"name": "Nobody", CLIENTINFO: {"other": None}},
    ]
    absent = clients.select(f"name,{CLIENTINFO}()").is_(CLIENTINFO, "null").execute()
    assert absent.data == [{"name": "Apple"}]


def test_one_to_many_with_an_alias(db: Client) -> None:
    clients = db.table(CLIENTS)
    present = clients.select(f"name,{PROJECTS}()").not_.is_(PROJECTS, "null").order("id").execute()
    assert present.data == [{"name": "Microsoft"}, {"name": "Apple"}]
    absent = clients.select(f"name,{PROJECTS}(name)").is_(PROJECTS, "null").execute()
    assert absent.data == [{"name": "Nobody", PROJECTS: []}]
    aliased = clients.select(f"name,ps:{PROJECTS}()").is_("ps", "null").execute()
    assert aliased.data == [{"name": "Nobody"}]


def test_many_to_many_after_the_embeds_filters(db: Client) -> None:
    users = db.table(USERS)
    present = (
        users.select(f"name,{TASKS}()")
        .eq(f"{TASKS}.id", 1)
        .not_.is_(TASKS, "null")
        .order("id")
        .execute()
    )
    assert _names(present.data) == ["Angela", "Dwight"]
    absent = users.select(f"name,{TASKS}()").eq(f"{TASKS}.id", 1).is_(TASKS, "null").execute()
    assert absent.data == [{"name": "Michael"}]


def test_computed_relationship(db: Client) -> None:
    projects = db.table(PROJECTS)
    absent = projects.select(f"name,{OWNER_CLIENT}()").is_(OWNER_CLIENT, "null").execute()
    assert absent.data == [{"name": "Orphan"}]
    present = projects.select(f"id,{OWNER_CLIENT}()").not_.is_(OWNER_CLIENT, "null").execute()
    assert sorted(row["id"] for row in present.data) == [1, 2, 3, 4]


def test_nested_embeds(db: Client) -> None:
    rows = (
        db.table(CLIENTS)
        .select(f"name,{PROJECTS}(name,{TASKS}())")
        .not_.is_(f"{PROJECTS}.{TASKS}", "null")
        .not_.is_(PROJECTS, "null")
        .order("id")
        .order("id", foreign_table=PROJECTS)
        .execute()
    )
    assert rows.data == [
        {"name": "Microsoft", PROJECTS: [{"name": "Windows 7"}, {"name": "Windows 10"}]},
        {"name": "Apple", PROJECTS: [{"name": "IOS"}]},
    ]
    without_tasks = (
        db.table(CLIENTS)
        .select(f"name,{PROJECTS}(name,{TASKS}())")
        .is_(f"{PROJECTS}.{TASKS}", "null")
        .eq("id", 2)
        .execute()
    )
    assert without_tasks.data == [{"name": "Apple", PROJECTS: [{"name": "OSX"}]}]


def test_or_across_embeds_and_columns(db: Client) -> None:
    either = (
        db.table(CLIENTS)
        .select(f"id,name,{CLIENTINFO}(),{CONTACTS}()")
        .ilike(f"{CLIENTINFO}.other", "*main*")
        .ilike(f"{CONTACTS}.name", "*tabby*")
        .or_(f"{CLIENTINFO}.not.is.null,{CONTACTS}.not.is.null")
        .order("id")
        .execute()
    )
    assert either.data == [{"id": 1, "name": "Microsoft"}, {"id": 2, "name": "Apple"}]
    with_a_column = (
        db.table(CLIENTS)
        .select(f"name,{PROJECTS}()")
        .or_(f"{PROJECTS}.is.null,name.eq.Apple")
        .order("id")
        .execute()
    )
    assert with_a_column.data == [{"name": "Apple"}, {"name": "Nobody"}]
    negated = (
        db.table(CLIENTS)
        .select(f"name,{PROJECTS}()")
        .not_.or_(f"{PROJECTS}.is.null,name.eq.Apple")
        .execute()
    )
    assert negated.data == [{"name": "Microsoft"}]
    nested = (
        db.table(CLIENTS)
        .select(f"name,{PROJECTS}(name,{TASKS}())")
        .or_(f"{TASKS}.is.null,name.eq.IOS", reference_table=PROJECTS)
        .eq("id", 2)
        .execute()
    )
    assert nested.data == [{"name": "Apple", PROJECTS: [{"name": "IOS"}, {"name": "OSX"}]}]


def test_exact_count_agrees(db: Client) -> None:
    present = (
        db.table(PROJECTS)
        .select(f"name,{CLIENTS}(name)", count=CountMethod.exact)
        .not_.is_(CLIENTS, "null")
        .order("id")
        .limit(2)
        .execute()
    )
    assert present.data == [
        {"name": "Windows 7", CLIENTS: {"name": "Microsoft"}},
        {"name": "Windows 10", CLIENTS: {"name": "Microsoft"}},
    ]
    assert present.count == 4
    absent = (
        db.table(PROJECTS)
        .select(f"name,{TASKS}()", count=CountMethod.exact)
        .is_(TASKS, "null")
        .order("id")
        .limit(1)
        .execute()
    )
    assert absent.data == [{"name": "OSX"}]
    assert absent.count == 2
    either = (
        db.table(CLIENTS)
        .select(f"id,{CLIENTINFO}(),{CONTACTS}()", count=CountMethod.exact)
        .ilike(f"{CLIENTINFO}.other", "*main*")
        .ilike(f"{CONTACTS}.name", "*tabby*")
        .or_(f"{CLIENTINFO}.not.is.null,{CONTACTS}.not.is.null")
        .execute()
    )
    assert either.count == 2


def test_spreads(db: Client) -> None:
    to_many = (
        db.table(CLIENTS)
        .select(f"client:name,...{PROJECTS}(project:name)")
        .not_.is_(PROJECTS, "null")
        .order("id")
        .order("id", foreign_table=PROJECTS)
        .execute()
    )
    assert to_many.data == [
        {"client": "Microsoft", "project": ["Windows 7", "Windows 10"]},
        {"client": "Apple", "project": ["IOS", "OSX"]},
    ]
    none = db.table(CLIENTS).select(f"name,...{PROJECTS}(id)").is_(PROJECTS, "null").execute()
    assert none.data == [{"name": "Nobody", "id": []}]
    to_one = db.table(PROJECTS).select(f"name,...{CLIENTS}(client:name)").is_(CLIENTS, "null")
    assert to_one.execute().data == [{"name": "Orphan", "client": None}]
    info = (
        db.table(CLIENTS)
        .select(f"name,...{CLIENTINFO}(other)")
        .not_.is_(CLIENTINFO, "null")
        .order("id")
        .execute()
    )
    assert info.data == [
        {"name": "Microsoft", "other": "main office"},
        {"name": "Nobody", "other": None},
    ]


def test_rls_on_the_embedded_table_decides(
    localbase: LocalbaseProcess, module_schema: None
) -> None:
    owner = user_client(localbase, OWNER).table(PROJECTS)
    mine = owner.select(f"name,{TASKS}(name)", count=CountMethod.exact).not_.is_(TASKS, "null")
    seen = mine.order("id").execute()
    assert seen.data == [
        {"name": "Windows 7", TASKS: [{"name": "Design w7"}]},
        {"name": "Windows 10", TASKS: [{"name": "Design w10"}]},
    ]
    assert seen.count == 2
    stranger = user_client(localbase, str(uuid.uuid4())).table(PROJECTS)
    assert stranger.select(f"name,{TASKS}()").not_.is_(TASKS, "null").execute().data == []
    nothing = stranger.select(f"id,{TASKS}()", count=CountMethod.exact).is_(TASKS, "null")
    assert nothing.execute().count == 5


def test_in_a_functions_result(db: Client, http: httpx.Client) -> None:
    rows = db.rpc(PROJECTS_OF, {"client": 1}).select(f"name,{TASKS}()").is_(TASKS, "null").execute()
    assert rows.data == []
    got = http.get(
        f"/rpc/{PROJECTS_OF}",
        params={"client": "2", "select": f"name,{TASKS}()", TASKS: "is.null"},
    )
    assert got.status_code == 200
    assert got.json() == [{"name": "OSX"}]


def _missing(relation: str, column: str) -> dict[str, object]:
    return {
        "code": "42703",
        "details": None,
        "hint": None,
        "message": f"column {relation}.{column} does not exist",
    }


def test_what_stays_a_filter_on_a_column(http: httpx.Client) -> None:
    """As in PostgREST: without the embed in ``select``, with another operator, a JSON path or
    ``is.not_null``, the name is a column's."""
    for params in (
        {"select": "name", TASKS: "is.null"},
        {"select": f"name,{TASKS}()", TASKS: "eq.1"},
        {"select": f"name,{TASKS}()", TASKS: "not.eq.1"},
        {"select": f"name,{TASKS}()", TASKS: "is.not_null"},
        {"select": f"name,{TASKS}()", f"{TASKS}->a": "is.null"},
        {"select": f"name,{TASKS}()", "or": f"({TASKS}.in.(1,2))"},
        {"select": f"name,t:{TASKS}()", TASKS: "is.null"},
    ):
        response = http.get(f"/{PROJECTS}", params=params)
        assert response.status_code == 400, params
        assert response.json() == _missing(PROJECTS, TASKS), params
    nested = http.get(
        f"/{CLIENTS}", params={"select": f"name,{PROJECTS}(name)", f"{PROJECTS}.{TASKS}": "is.null"}
    )
    assert nested.status_code == 400
    assert nested.json() == _missing(f"{PROJECTS}_1", TASKS)
    not_embedded = http.get(
        f"/{CLIENTS}", params={"select": "name", f"{PROJECTS}.{TASKS}": "not.is.null"}
    )
    assert not_embedded.status_code == 400
    assert not_embedded.json() == {
        "code": "PGRST108",
        "details": None,
        "hint": f"Verify that '{PROJECTS}' is included in the 'select' query parameter.",
        "message": f"'{PROJECTS}' is not an embedded resource in this request",
    }


def test_an_embed_named_by_its_column(db: Client) -> None:
    projects = db.table(PROJECTS)
    by_value = projects.select("name,client:client_id(name)").eq("client_id", 2).order("id")
    assert by_value.execute().data == [
        {"name": "IOS", "client": {"name": "Apple"}},
        {"name": "OSX", "client": {"name": "Apple"}},
    ]
    by_embed = projects.select("name,client_id(name)").is_("client_id", "null").execute()
    assert by_embed.data == [{"name": "Orphan", "client_id": None}]
    upper = projects.select("name,client_id()").is_("client_id", "NULL").execute()
    assert upper.data == [{"name": "Orphan"}]


def test_writes_filter_only_on_columns(db: Client, http: httpx.Client) -> None:
    """A write's filters choose the rows it writes: a null filter is a column's (42703), an
    insert ignores it, and they do not filter the written rows again."""
    with pytest.raises(APIError) as update:
        db.table(PROJECTS).update({"name": "x"}).not_.is_(TASKS, "null").select(
            f"name,{TASKS}()"
        ).execute()
    assert update.value.code == "42703"
    assert update.value.message == f"column {PROJECTS}.{TASKS} does not exist"
    assert db.table(PROJECTS).select("name").eq("id", 1).execute().data == [{"name": "Windows 7"}]
    inserted = http.post(
        f"/{PROJECTS}",
        params={"select": f"name,{TASKS}(id)", TASKS: "not.is.null"},
        json={"id": 9, "name": "new"},
        headers={"Prefer": "return=representation"},
    )
    assert inserted.status_code == 201
    assert inserted.json() == [{"name": "new", TASKS: []}]
    renamed = (
        db.table(PROJECTS)
        .update({"name": "renamed"})
        .eq("name", "new")
        .select(f"name,{CLIENTS}(name)")
        .execute()
    )
    assert renamed.data == [{"name": "renamed", CLIENTS: None}]
    assert db.table(PROJECTS).delete().eq("id", 9).execute().data == [
        {"id": 9, "name": "renamed", "client_id": None}
    ]


KEYS = [TASKS, CLIENTS, "t", "or", "and", "not.or", f"{TASKS}.or", f"{TASKS}.{USERS}", "name"]
VALUES = [
    "is.null",
    "not.is.null",
    "is.NULL",
    "is.not_null",
    "eq.1",
    "not.is",
    f"({TASKS}.is.null,name.eq.x)",
    f"({CLIENTS}.not.is.null,and({TASKS}.is.null))",
    "(t.is.null)",
    "(is.null)",
]


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    select=st.sampled_from(
        [
            "name",
            f"name,{TASKS}()",
            f"name,t:{TASKS}(name,{USERS}())",
            f"name,...{CLIENTS}(name),{TASKS}!inner(id)",
            f"id,{CLIENTS}(*),...{TASKS}(id)",
        ]
    ),
    filters=st.lists(st.tuples(st.sampled_from(KEYS), st.sampled_from(VALUES)), max_size=3),
    count=st.booleans(),
)
def test_fuzzed_null_filters_never_get_a_server_error(
    http: httpx.Client, select: str, filters: list[tuple[str, str]], count: bool
) -> None:
    headers = {"Prefer": "count=exact"} if count else {}
    response = http.get(f"/{PROJECTS}", params=[("select", select), *filters], headers=headers)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert isinstance(response.json()["code"], str), response.text
