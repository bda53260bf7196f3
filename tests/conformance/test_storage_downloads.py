"""``?download=`` on Storage downloads: ``Content-Disposition`` as Storage's renderer writes it.

``attachment; filename=NAME; filename*=UTF-8''NAME`` with NAME escaped by JavaScript's
``encodeURIComponent`` (which leaves ``A-Z a-z 0-9 - _ . ! ~ * ' ( )`` alone), and
``attachment;`` alone for an empty value. The client only returns bytes, so the headers are read
from the URLs storage3 builds.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
from storage3.types import CreateOrUpdateBucketOptions

from supabase import Client

BucketFactory = Callable[[bool], str]


@pytest.fixture
def make_bucket(
    service_client: Client, admin_sql: Callable[[str], None]
) -> Iterator[BucketFactory]:
    created: list[str] = []

    def make(public: bool) -> str:
        bucket_id = f"dl-{uuid.uuid4().hex[:12]}"
        options = CreateOrUpdateBucketOptions(public=public)
        service_client.storage.create_bucket(bucket_id, options=options)
        created.append(bucket_id)
        return bucket_id

    yield make
    for bucket_id in created:
        admin_sql(f"delete from storage.objects where bucket_id = '{bucket_id}'")
        admin_sql(f"delete from storage.buckets where id = '{bucket_id}'")


@pytest.fixture
def bucket(make_bucket: BucketFactory) -> str:
    return make_bucket(False)


NAMES = [
    ("report.pdf", "report.pdf"),
    ("a b.txt", "a%20b.txt"),
    ("Grüße (1)!~*'.txt", "Gr%C3%BC%C3%9Fe%20(1)!~*'.txt"),
    ('q"u;o,t=e/&?#%.txt', "q%22u%3Bo%2Ct%3De%2F%26%3F%23%25.txt"),
    ("日本.txt", "%E6%97%A5%E6%9C%AC.txt"),
]


@pytest.mark.parametrize(("download", "encoded"), NAMES)
def test_signed_download_names_the_file(
    service_client: Client, bucket: str, download: str, encoded: str
) -> None:
    files = service_client.storage.from_(bucket)
    files.upload("dir/stored.bin", b"bytes")
    signed = files.create_signed_url("dir/stored.bin", 60, {"download": download})["signedURL"]
    assert signed is not None
    response = httpx.get(signed)
    assert response.status_code == 200
    assert response.content == b"bytes"
    expected = f"attachment; filename={encoded}; filename*=UTF-8''{encoded}"
    assert response.headers["content-disposition"] == expected


def test_empty_download_value_is_attachment_alone(
    service_client: Client, make_bucket: BucketFactory
) -> None:
    bucket_id = make_bucket(True)
    files = service_client.storage.from_(bucket_id)
    files.upload("dir/stored.bin", b"bytes")
    public = files.get_public_url("dir/stored.bin", {"download": True})
    assert public.endswith("?download=")
    response = httpx.get(public)
    assert response.status_code == 200
    assert response.headers["content-disposition"] == "attachment;"
    signed = files.create_signed_url("dir/stored.bin", 60, {"download": True})["signedURL"]
    assert signed is not None
    assert httpx.get(signed).headers["content-disposition"] == "attachment;"


def test_no_download_parameter_no_disposition(service_client: Client, bucket: str) -> None:
    files = service_client.storage.from_(bucket)
    files.upload("a.txt", b"a")
    signed = files.create_signed_url("a.txt", 60)["signedURL"]
    assert signed is not None
    assert "content-disposition" not in httpx.get(signed).headers
