"""``?download=`` on Storage downloads: ``Content-Disposition`` as Storage's renderer writes it.

``attachment; filename=NAME; filename*=UTF-8''NAME`` with NAME escaped by JavaScript's
``encodeURIComponent`` (which leaves ``A-Z a-z 0-9 - _ . ! ~ * ' ( )`` alone), and
``attachment;`` alone for an empty value. The client only returns bytes, so the headers are read
from the URLs storage3 builds.
"""

from __future__ import annotations

import httpx
import pytest

from supabase import Client
from tests.helpers import BucketFactory

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
    bucket_id = make_bucket(public=True)
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
