"""``POST /object/list-v2/{bucket}`` through storage3's ``list_v2``: prefix, limit, cursor
pagination, the folders/objects split with ``with_delimiter``, ``sortBy``, and RLS."""

from __future__ import annotations

import base64
import itertools
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
from storage3.exceptions import StorageApiError
from storage3.types import SearchV2Options, SearchV2Result

from devstack.localbase import LocalbaseProcess
from supabase import Client
from tests.conftest import user_client

NAMES = ["a.txt", "b.txt", "dir/x.txt", "dir/y.txt", "dir/sub/z.txt", "dir.txt", "e/f.txt"]


@pytest.fixture
def bucket(service_client: Client, admin_sql: Callable[[str], None]) -> Iterator[str]:
    bucket_id = f"lv-{uuid.uuid4().hex[:12]}"
    service_client.storage.create_bucket(bucket_id)
    files = service_client.storage.from_(bucket_id)
    for name in NAMES:
        files.upload(name, name.encode())
    yield bucket_id
    admin_sql(f"delete from storage.objects where bucket_id = '{bucket_id}'")
    admin_sql(f"delete from storage.buckets where id = '{bucket_id}'")


def all_pages(client: Client, bucket: str, options: SearchV2Options) -> list[SearchV2Result]:
    pages = [client.storage.from_(bucket).list_v2(options)]
    while pages[-1].hasNext:
        cursor = pages[-1].nextCursor
        assert cursor is not None
        pages.append(client.storage.from_(bucket).list_v2({**options, "cursor": cursor}))
        assert len(pages) <= len(NAMES)
    return pages


def test_flat_listing_by_name_with_prefix(service_client: Client, bucket: str) -> None:
    result = service_client.storage.from_(bucket).list_v2()
    assert [o.name for o in result.objects] == sorted(NAMES)
    assert result.folders == []
    assert result.hasNext is False
    assert result.nextCursor is None
    only_dir = service_client.storage.from_(bucket).list_v2({"prefix": "dir/"})
    assert [o.name for o in only_dir.objects] == ["dir/sub/z.txt", "dir/x.txt", "dir/y.txt"]
    first = only_dir.objects[1]
    assert first.id
    assert first.metadata is not None
    assert first.metadata["size"] == len(b"dir/x.txt")
    partial = service_client.storage.from_(bucket).list_v2({"prefix": "di"})
    assert [o.name for o in partial.objects][-1] == "dir/y.txt"
    assert len(partial.objects) == 4  # dir.txt and the three under dir/


def test_delimiter_splits_folders_and_objects(service_client: Client, bucket: str) -> None:
    top = service_client.storage.from_(bucket).list_v2({"with_delimiter": True})
    assert [f.name for f in top.folders] == ["dir/", "e/"]
    assert [f.key for f in top.folders] == ["dir", "e"]
    assert [o.name for o in top.objects] == ["a.txt", "b.txt", "dir.txt"]
    assert [o.key for o in top.objects] == ["a.txt", "b.txt", "dir.txt"]
    inner = service_client.storage.from_(bucket).list_v2({"with_delimiter": True, "prefix": "dir/"})
    assert [(f.name, f.key) for f in inner.folders] == [("dir/sub/", "sub")]
    assert [(o.name, o.key) for o in inner.objects] == [
        ("dir/x.txt", "x.txt"),
        ("dir/y.txt", "y.txt"),
    ]


@pytest.mark.parametrize("delimited", [False, True])
@pytest.mark.parametrize("column", ["name", "created_at", "updated_at"])
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_cursor_pages_cover_everything_once(
    service_client: Client, bucket: str, delimited: bool, column: str, order: str
) -> None:
    options: SearchV2Options = {
        "limit": 2,
        "with_delimiter": delimited,
        "sortBy": {"column": column, "order": order},  # type: ignore[typeddict-item]
    }
    whole = service_client.storage.from_(bucket).list_v2({**options, "limit": 100})
    expected = [e.name for e in (*whole.folders, *whole.objects)]
    pages = all_pages(service_client, bucket, options)
    assert all(len(p.folders) + len(p.objects) <= 2 for p in pages)
    seen = [e.name for p in pages for e in (*p.folders, *p.objects)]
    assert sorted(seen) == sorted(expected)
    assert len(seen) == len(set(seen)) == (7 if not delimited else 5)
    if column == "name":  # every page's names come after (before, descending) the last page's
        spans = [sorted(e.name for e in (*p.folders, *p.objects)) for p in pages]
        for earlier, later in itertools.pairwise(spans):
            assert (earlier[-1] < later[0]) if order == "asc" else (earlier[0] > later[-1])
    assert pages[-1].hasNext is False
    assert pages[-1].nextCursor is None
    assert base64.b64decode(pages[0].nextCursor or "").decode().startswith("l:")


def test_rls_hides_other_users_objects(
    localbase: LocalbaseProcess, admin_sql: Callable[[str], None], service_client: Client
) -> None:
    bucket_id = f"lv-{uuid.uuid4().hex[:12]}"
    service_client.storage.create_bucket(bucket_id)
    mine, theirs = str(uuid.uuid4()), str(uuid.uuid4())
    policy = f"p_{bucket_id}".replace("-", "_")
    admin_sql(
        f"create policy {policy} on storage.objects for select to authenticated using "
        f"(bucket_id = '{bucket_id}' and (storage.foldername(name))[1] = auth.uid()::text)"
    )
    try:
        files = service_client.storage.from_(bucket_id)
        files.upload(f"{mine}/a.txt", b"a")
        files.upload(f"{theirs}/b.txt", b"b")
        listed = user_client(localbase, mine).storage.from_(bucket_id).list_v2()
        assert [o.name for o in listed.objects] == [f"{mine}/a.txt"]
        assert service_client.storage.from_(bucket_id).list_v2({"limit": 1}).hasNext is True
    finally:
        admin_sql(f"drop policy {policy} on storage.objects")
        admin_sql(f"delete from storage.objects where bucket_id = '{bucket_id}'")
        admin_sql(f"delete from storage.buckets where id = '{bucket_id}'")


def test_bad_bodies_get_storage_errors(
    localbase: LocalbaseProcess, service_client: Client, bucket: str
) -> None:
    files = service_client.storage.from_(bucket)
    for options in (
        {"limit": 0},
        {"sortBy": {"column": "size"}},
        {"sortBy": {"column": "name", "order": "up"}},
        {"cursor": "not base64!"},
        {"cursor": base64.b64encode(b"z:nope").decode()},
        {"with_delimiter": "yes"},
    ):
        with pytest.raises(StorageApiError) as refused:
            files.list_v2(options)  # type: ignore[arg-type]
        assert str(refused.value.status) == "400", options
    headers = {"apikey": localbase.service_key, "Authorization": f"Bearer {localbase.service_key}"}
    limited = httpx.post(
        f"{localbase.url}/storage/v1/object/list-v2/{bucket}", json={"limit": 5000}, headers=headers
    )
    assert len(limited.json()["objects"]) == len(NAMES)
