"""Fixtures of the conformance tests: raw HTTP to /rest/v1, a module's own tables and functions
(its ``SCHEMA`` and ``DROP``), PostgREST's in-database configuration, RLS policies on
``realtime.messages``, and for Storage buckets with unique ids and folder policies."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, cast

import httpx
import pytest
from storage3.types import CreateOrUpdateBucketOptions

from devstack.localbase import LocalbaseProcess
from supabase import Client
from tests.helpers import BucketFactory


@pytest.fixture(scope="session")
def rest_http(localbase: LocalbaseProcess) -> Iterator[httpx.Client]:
    """Raw HTTP to /rest/v1 with the service key, for what the clients cannot say."""
    headers = {"apikey": localbase.service_key, "Authorization": f"Bearer {localbase.service_key}"}
    with httpx.Client(base_url=f"{localbase.url}/rest/v1", headers=headers, timeout=30) as client:
        yield client


PLAN_ACCEPT = 'application/vnd.pgrst.plan+json; for="application/json"'
_PROBE = "pgrst_config_probe"


def _config_in_effect(rest_http: httpx.Client) -> tuple[bool, bool]:
    """(plans, aggregates) as /rest/v1 answers right now."""
    plan = rest_http.get(f"/{_PROBE}", headers={"Accept": PLAN_ACCEPT}).status_code != 406
    counted = rest_http.get(f"/{_PROBE}", params={"select": "count()"})
    return plan, counted.status_code == 200


@pytest.fixture
def pgrst_config(
    admin_sql: Callable[[str], None], rest_http: httpx.Client
) -> Iterator[Callable[..., None]]:
    """Sets ``pgrst.db_plan_enabled`` / ``pgrst.db_aggregates_enabled`` as a project does
    (``alter role authenticator set …; notify pgrst, 'reload config'``) and waits until
    /rest/v1 answers with them; afterwards resets both and checks that they are off again."""
    admin_sql(f"create table if not exists public.{_PROBE} (id int)")

    def apply(*, plan: bool = False, aggregates: bool = False) -> None:
        admin_sql(
            f"alter role authenticator set pgrst.db_plan_enabled to '{str(plan).lower()}';"
            "alter role authenticator set pgrst.db_aggregates_enabled to "
            f"'{str(aggregates).lower()}'; notify pgrst, 'reload config'"
        )
        _wait_for(rest_http, (plan, aggregates))

    yield apply
    admin_sql(
        "alter role authenticator reset pgrst.db_plan_enabled;"
        "alter role authenticator reset pgrst.db_aggregates_enabled;"
        "notify pgrst, 'reload config'"
    )
    _wait_for(rest_http, (False, False))


def _wait_for(rest_http: httpx.Client, wanted: tuple[bool, bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while (seen := _config_in_effect(rest_http)) != wanted:
        assert time.monotonic() < deadline, f"configuration {seen}, expected {wanted}"


@pytest.fixture(scope="module")
def module_schema(
    request: pytest.FixtureRequest, admin_sql: Callable[[str], None]
) -> Iterator[None]:
    """The tables and functions a test module declares in ``SCHEMA``, made once for its tests
    and removed after them with its ``DROP``."""
    admin_sql(request.module.SCHEMA)
    yield
    admin_sql(request.module.DROP)


@pytest.fixture
def db(module_schema: None, service_client: Client) -> Client:
    """The service-role client, over the module's ``SCHEMA``."""
    return service_client


@pytest.fixture
def http(module_schema: None, rest_http: httpx.Client) -> httpx.Client:
    """Raw HTTP to /rest/v1 with the service key, over the module's ``SCHEMA``."""
    return rest_http


@pytest.fixture
def policies(admin_sql: Callable[[str], None]) -> Iterator[Callable[[str], None]]:
    """Create RLS policies on ``realtime.messages`` (``"for select to authenticated using …"``);
    dropped after the test."""
    names: list[str] = []

    def create(body: str) -> None:
        name = f"p_{uuid.uuid4().hex[:10]}"
        admin_sql(f"create policy {name} on realtime.messages {body}")
        names.append(name)

    yield create
    for name in names:
        admin_sql(f"drop policy if exists {name} on realtime.messages")


@pytest.fixture
def make_bucket(
    service_client: Client, admin_sql: Callable[[str], None]
) -> Iterator[BucketFactory]:
    """Create buckets with unique ids; drop them (and their objects) afterwards."""
    created: list[str] = []

    def make(**options: Any) -> str:
        bucket_id = f"b-{uuid.uuid4().hex[:12]}"
        settings = cast(CreateOrUpdateBucketOptions, options) if options else None
        service_client.storage.create_bucket(bucket_id, options=settings)
        created.append(bucket_id)
        return bucket_id

    yield make
    for bucket_id in created:
        admin_sql(f"delete from storage.objects where bucket_id = '{bucket_id}'")
        admin_sql(f"delete from storage.buckets where id = '{bucket_id}'")


@pytest.fixture
def bucket(make_bucket: BucketFactory) -> str:
    return make_bucket()


@pytest.fixture
def folder_policies(admin_sql: Callable[[str], None], bucket: str) -> Iterator[str]:
    """Users may only touch objects under a folder named after their uid, in ``bucket``."""
    check = f"bucket_id = '{bucket}' and (storage.foldername(name))[1] = auth.uid()::text"
    names = [
        f"p_{bucket}_{op}".replace("-", "_") for op in ("select", "insert", "update", "delete")
    ]
    admin_sql(
        f"""
        create policy {names[0]} on storage.objects for select to authenticated using ({check});
        create policy {names[1]} on storage.objects for insert to authenticated
            with check ({check});
        create policy {names[2]} on storage.objects for update to authenticated
            using ({check}) with check ({check});
        create policy {names[3]} on storage.objects for delete to authenticated using ({check});
        """
    )
    yield bucket
    admin_sql("".join(f"drop policy {name} on storage.objects;" for name in names))
