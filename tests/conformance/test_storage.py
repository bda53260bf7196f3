"""``spec/postgrest.md`` §6 and §7 cases 31–40: ``/storage/v1`` through the official client."""

from __future__ import annotations

import http.client
import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from storage3.exceptions import StorageApiError

from devstack.localbase import LocalbaseProcess
from localbase import keys
from supabase import Client
from tests.conftest import connect, make_jwt, user_client
from tests.helpers import BucketFactory

MB = 1024 * 1024


def stored_files(localbase: LocalbaseProcess) -> set[Path]:
    """Every file localbase keeps for Storage (published versions and uploads in progress)."""
    root = localbase.data_dir / "storage"
    return {path for path in root.rglob("*") if path.is_file()}


def object_count(localbase: LocalbaseProcess, bucket_id: str) -> int:
    with psycopg.connect(localbase.db_dsn) as conn:
        row = conn.execute(
            "select count(*) from storage.objects where bucket_id = %s", (bucket_id,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def raw(
    localbase: LocalbaseProcess,
    method: str,
    path: str,
    *,
    key: str | None = None,
    token: str | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """A request to ``/storage/v1/<path>`` without the client library (``path`` sent as is)."""
    api_key = key or localbase.service_key
    headers = {"apikey": api_key, "Authorization": f"Bearer {token or api_key}"}
    headers.update(kwargs.pop("headers", {}))
    url = httpx.URL(f"{localbase.url}/storage/v1/{path}")
    return httpx.request(method, url, headers=headers, timeout=60, **kwargs)


def storage_error(response: httpx.Response) -> dict[str, Any]:
    """The body of a Storage error; asserts the shape (HTTP 400, string statusCode)."""
    body: dict[str, Any] = response.json()
    assert set(body) >= {"statusCode", "code", "error", "message"}, body
    assert isinstance(body["statusCode"], str)
    expected = 500 if body["statusCode"] == "500" else 400
    assert response.status_code == expected, (response.status_code, body)
    return body


# §7 cases 31–40 ------------------------------------------------------------------------------


def test_31_create_bucket_returns_name(service_client: Client) -> None:
    bucket_id = f"b-{uuid.uuid4().hex[:12]}"
    try:
        assert service_client.storage.create_bucket(bucket_id) == {"name": bucket_id}
    finally:
        service_client.storage.delete_bucket(bucket_id)


def test_32_get_bucket_parses_with_string_owner(
    service_client: Client, make_bucket: BucketFactory
) -> None:
    bucket_id = make_bucket(public=True, file_size_limit=2048, allowed_mime_types=["image/png"])
    bucket = service_client.storage.get_bucket(bucket_id)
    assert bucket.id == bucket.name == bucket_id
    assert bucket.owner == ""
    assert bucket.public is True
    assert bucket.file_size_limit == 2048
    assert bucket.allowed_mime_types == ["image/png"]
    assert bucket.created_at.tzinfo is not None
    listed = {b.id: b for b in service_client.storage.list_buckets()}
    assert listed[bucket_id].owner == ""


def test_33_upload_returns_full_path(service_client: Client, bucket: str) -> None:
    result = service_client.storage.from_(bucket).upload("dir/a b.txt", b"hello")
    assert result.path == "dir/a b.txt"
    assert result.full_path == f"{bucket}/dir/a b.txt"


def test_34_duplicate_upload_conflicts_unless_upsert(
    service_client: Client, bucket: str, localbase: LocalbaseProcess
) -> None:
    files = service_client.storage.from_(bucket)
    files.upload("x.txt", b"one")
    with pytest.raises(StorageApiError) as caught:
        files.upload("x.txt", b"two")
    assert str(caught.value.status) == "409"
    assert caught.value.code == "Duplicate"
    files.upload("x.txt", b"three", {"upsert": "true"})
    assert files.download("x.txt") == b"three"
    response = raw(localbase, "POST", f"object/{bucket}/x.txt", files={"file": ("x.txt", b"4")})
    assert storage_error(response)["code"] == "KeyAlreadyExists"


def test_35_download_returns_identical_bytes(service_client: Client, bucket: str) -> None:
    data = bytes(range(256)) * 1000 + os.urandom(4099)
    files = service_client.storage.from_(bucket)
    files.upload("blob.bin", data, {"content-type": "application/octet-stream"})
    assert files.download("blob.bin") == data


def test_36_exists(service_client: Client, bucket: str) -> None:
    files = service_client.storage.from_(bucket)
    files.upload("here.txt", b"x")
    assert files.exists("here.txt") is True
    assert files.exists("missing.txt") is False


def test_37_download_missing_is_not_found(
    service_client: Client, bucket: str, localbase: LocalbaseProcess
) -> None:
    with pytest.raises(StorageApiError) as caught:
        service_client.storage.from_(bucket).download("missing.txt")
    assert str(caught.value.status) == "404"
    assert caught.value.code == "not_found"
    body = storage_error(raw(localbase, "GET", f"object/{bucket}/missing.txt"))
    assert body == {
        "statusCode": "404",
        "code": "NoSuchKey",
        "error": "not_found",
        "message": "Object not found",
    }


def test_38_list_shows_files_and_folders(service_client: Client, bucket: str) -> None:
    files = service_client.storage.from_(bucket)
    for path in ("dir/a.txt", "dir/b.txt", "dir/sub/c.txt", "dir/sub/deeper/d.txt", "top.txt"):
        files.upload(path, b"x")
    entries = {entry["name"]: entry for entry in files.list("dir")}
    assert set(entries) == {"a.txt", "b.txt", "sub"}
    assert entries["a.txt"]["id"] is not None
    assert entries["a.txt"]["metadata"]["size"] == 1
    folder = entries["sub"]
    assert folder["id"] is None
    assert folder["created_at"] is folder["updated_at"] is folder["metadata"] is None
    assert [e["name"] for e in files.list("dir", {"search": "b"})] == ["b.txt"]
    assert [e["name"] for e in files.list()] == ["dir", "top.txt"]
    page = files.list(
        "dir", {"limit": 1, "offset": 1, "sortBy": {"column": "name", "order": "desc"}}
    )
    assert [e["name"] for e in page] == ["b.txt"]


def test_39_remove_returns_removed_objects(
    service_client: Client, bucket: str, localbase: LocalbaseProcess
) -> None:
    files = service_client.storage.from_(bucket)
    files.upload("gone/a.txt", b"x")
    before = stored_files(localbase)
    removed = files.remove(["gone/a.txt", "missing.txt"])
    assert [entry["name"] for entry in removed] == ["gone/a.txt"]
    assert files.exists("gone/a.txt") is False
    assert len(before - stored_files(localbase)) == 1
    assert files.remove(["missing.txt"]) == []


def test_40_anon_upload_to_private_bucket_is_refused(anon_client: Client, bucket: str) -> None:
    with pytest.raises(StorageApiError) as caught:
        anon_client.storage.from_(bucket).upload("x.txt", b"x")
    assert str(caught.value.status) == "403"
    assert caught.value.code == "Unauthorized"
    assert caught.value.message == "new row violates row-level security policy"


# RLS with user JWTs --------------------------------------------------------------------------


def test_rls_users_only_reach_their_own_folder(
    localbase: LocalbaseProcess, folder_policies: str
) -> None:
    bucket = folder_policies
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    files_a = user_client(localbase, a).storage.from_(bucket)
    files_b = user_client(localbase, b).storage.from_(bucket)

    assert files_a.upload(f"{a}/mine.txt", b"a").full_path == f"{bucket}/{a}/mine.txt"
    files_b.upload(f"{b}/theirs.txt", b"b")
    with pytest.raises(StorageApiError) as refused:
        files_a.upload(f"{b}/intruder.txt", b"x")
    assert (str(refused.value.status), refused.value.code) == ("403", "Unauthorized")

    with pytest.raises(StorageApiError) as hidden:
        files_a.download(f"{b}/theirs.txt")
    assert (str(hidden.value.status), hidden.value.code) == ("404", "not_found")
    assert files_a.exists(f"{b}/theirs.txt") is False
    assert files_a.download(f"{a}/mine.txt") == b"a"
    assert [entry["name"] for entry in files_a.list()] == [a]
    assert files_a.remove([f"{b}/theirs.txt"]) == []
    assert files_b.download(f"{b}/theirs.txt") == b"b"

    info = files_a.info(f"{a}/mine.txt")
    assert info["name"] == f"{a}/mine.txt"
    with pytest.raises(StorageApiError) as no_sign:
        files_a.create_signed_url(f"{b}/theirs.txt", 60)
    assert str(no_sign.value.status) == "404"


def test_rls_owner_is_the_jwt_sub(localbase: LocalbaseProcess, folder_policies: str) -> None:
    bucket = folder_policies
    a = str(uuid.uuid4())
    files_a = user_client(localbase, a).storage.from_(bucket)
    files_a.upload(f"{a}/mine.txt", b"a")
    removed = files_a.remove([f"{a}/mine.txt"])
    assert removed[0]["owner"] == a
    assert removed[0]["owner_id"] == a


def test_policies_see_storage_settings(
    localbase: LocalbaseProcess, admin_sql: Callable[[str], None], bucket: str
) -> None:
    """Storage publishes the legacy ``request.jwt.claim.*`` GUCs and ``storage.operation``."""
    policy = f"p_{bucket}_gucs".replace("-", "_")
    admin_sql(
        f"create policy {policy} on storage.objects for insert to authenticated with check ("
        f"bucket_id = '{bucket}'"
        " and split_part(name, '/', 1) = current_setting('request.jwt.claim.sub', true)"
        " and current_setting('request.jwt.claim.role', true) = 'authenticated'"
        " and current_setting('storage.operation', true) = 'storage.object.upload')"
    )
    try:
        user = str(uuid.uuid4())
        files = user_client(localbase, user).storage.from_(bucket)
        files.upload(f"{user}/ok.txt", b"ok")
        with pytest.raises(StorageApiError) as caught:
            files.update(f"{user}/other.txt", b"no")  # storage.object.upload_update
        assert str(caught.value.status) == "403"
        assert object_count(localbase, bucket) == 1
    finally:
        admin_sql(f"drop policy {policy} on storage.objects")


def test_policy_failing_on_the_final_write_leaves_no_file(
    localbase: LocalbaseProcess, admin_sql: Callable[[str], None], bucket: str
) -> None:
    """A policy on the stored size passes the pre-check but refuses the real row."""
    policy = f"p_{bucket}_size".replace("-", "_")
    admin_sql(
        f"create policy {policy} on storage.objects for insert to anon with check ("
        f"bucket_id = '{bucket}' and coalesce((metadata->>'size')::int, 0) < 10)"
    )
    try:
        files = connect(localbase.url, localbase.anon_key).storage.from_(bucket)
        files.upload("small.txt", b"tiny")
        before = stored_files(localbase)
        with pytest.raises(StorageApiError) as caught:
            files.upload("big.txt", b"x" * 100)
        assert str(caught.value.status) == "403"
        assert stored_files(localbase) == before
        assert object_count(localbase, bucket) == 1
    finally:
        admin_sql(f"drop policy {policy} on storage.objects")


# Signed URLs ---------------------------------------------------------------------------------


def test_signed_url_serves_without_credentials(service_client: Client, bucket: str) -> None:
    files = service_client.storage.from_(bucket)
    files.upload("dir/a b.txt", b"signed bytes")
    signed = files.create_signed_url("dir/a b.txt", 60)["signedURL"]
    assert signed is not None
    response = httpx.get(signed)
    assert response.status_code == 200
    assert response.content == b"signed bytes"
    token = httpx.URL(signed).params["token"]
    claims = jwt.decode(token, keys.JWT_SECRET, algorithms=["HS256"])
    assert claims["url"] == f"{bucket}/dir/a b.txt"
    assert claims["exp"] - claims["iat"] == 60


def test_signed_url_refuses_expired_and_tampered_tokens(
    service_client: Client, bucket: str, localbase: LocalbaseProcess
) -> None:
    files = service_client.storage.from_(bucket)
    files.upload("a.txt", b"a")
    files.upload("b.txt", b"b")
    path = f"object/sign/{bucket}/a.txt"
    now = int(time.time())

    expired = jwt.encode(
        {"url": f"{bucket}/a.txt", "iat": now - 120, "exp": now - 60}, keys.JWT_SECRET
    )
    body = storage_error(httpx.get(f"{localbase.url}/storage/v1/{path}?token={expired}"))
    assert body["code"] == "ExpiredToken"

    signed = files.create_signed_url("a.txt", 60)["signedURL"]
    assert signed is not None
    token = httpx.URL(signed).params["token"]
    head, payload, signature = token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    tampered = f"{head}.{payload}.{flipped}"
    body = storage_error(httpx.get(f"{localbase.url}/storage/v1/{path}?token={tampered}"))
    assert (body["statusCode"], body["code"]) == ("400", "InvalidJWT")

    other = f"{localbase.url}/storage/v1/object/sign/{bucket}/b.txt?token={token}"
    assert storage_error(httpx.get(other))["code"] == "InvalidSignature"

    forged = jwt.encode({"url": f"{bucket}/a.txt", "exp": now + 60}, "not-the-project-secret-" * 2)
    body = storage_error(httpx.get(f"{localbase.url}/storage/v1/{path}?token={forged}"))
    assert body["code"] == "InvalidJWT"
    assert storage_error(httpx.get(f"{localbase.url}/storage/v1/{path}"))["statusCode"] == "400"


def test_signed_urls_in_bulk(service_client: Client, bucket: str) -> None:
    files = service_client.storage.from_(bucket)
    files.upload("a.txt", b"a")
    results = files.create_signed_urls(["a.txt", "missing.txt"], 60)
    assert [r["path"] for r in results] == ["a.txt", "missing.txt"]
    assert results[1]["signedURL"] is None
    assert results[1]["error"]
    signed = results[0]["signedURL"]
    assert signed is not None
    assert httpx.get(signed).content == b"a"


# Limits --------------------------------------------------------------------------------------


def test_bucket_size_limit_refuses_and_leaves_nothing(
    service_client: Client, make_bucket: BucketFactory, localbase: LocalbaseProcess
) -> None:
    bucket_id = make_bucket(file_size_limit=1024)
    files = service_client.storage.from_(bucket_id)
    files.upload("exact.bin", b"x" * 1024)
    before = stored_files(localbase)
    with pytest.raises(StorageApiError) as caught:
        files.upload("big.bin", b"x" * 1025)
    assert str(caught.value.status) == "413"
    assert caught.value.code == "Payload too large"
    assert stored_files(localbase) == before
    assert object_count(localbase, bucket_id) == 1


def test_global_size_limit_refuses_while_streaming(
    service_client: Client, bucket: str, localbase: LocalbaseProcess
) -> None:
    before = stored_files(localbase)
    with pytest.raises(StorageApiError) as caught:
        service_client.storage.from_(bucket).upload("huge.bin", b"\0" * (50 * MB + 1))
    assert (str(caught.value.status), caught.value.code) == ("413", "Payload too large")
    assert stored_files(localbase) == before
    assert object_count(localbase, bucket) == 0


def test_allowed_mime_types(service_client: Client, make_bucket: BucketFactory) -> None:
    bucket_id = make_bucket(allowed_mime_types=["image/png", "text/*"])
    files = service_client.storage.from_(bucket_id)
    files.upload("ok.png", b"png", {"content-type": "image/png"})
    files.upload("ok.txt", b"txt", {"content-type": "text/csv"})
    with pytest.raises(StorageApiError) as caught:
        files.upload("no.json", b"{}", {"content-type": "application/json"})
    assert (str(caught.value.status), caught.value.code) == ("415", "invalid_mime_type")


# Keys and bucket names -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "encoded_key",
    [
        "..%2F..%2F..%2Fescape.txt",
        "%2E%2E/%2E%2E/escape.txt",
        "dir/%2E%2E/%2E%2E/escape.txt",
        "%2Fabsolute.txt",
        "%2E/escape.txt",
        "ctrl%01char.txt",
        "back%5Cslash.txt",
    ],
)
def test_invalid_keys_are_refused(
    localbase: LocalbaseProcess, bucket: str, encoded_key: str
) -> None:
    before = stored_files(localbase)
    response = raw(localbase, "POST", f"object/{bucket}/{encoded_key}", files={"file": ("f", b"x")})
    body = storage_error(response)
    assert (body["statusCode"], body["code"]) == ("400", "InvalidKey")
    assert stored_files(localbase) == before
    assert object_count(localbase, bucket) == 0
    assert not list(localbase.data_dir.parent.rglob("escape.txt"))


@pytest.mark.parametrize("key", ["../../escape.txt", "dir/../../../escape.txt", "./escape.txt"])
def test_dot_segments_sent_verbatim_are_refused(
    localbase: LocalbaseProcess, bucket: str, key: str
) -> None:
    """http.client sends the path as is (httpx would remove the dot segments first)."""
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n'
        f"Content-Type: text/plain\r\n\r\nx\r\n--{boundary}--\r\n"
    ).encode()
    headers = {
        "apikey": localbase.service_key,
        "Authorization": f"Bearer {localbase.service_key}",
        "Content-Type": f"multipart/form-data; boundary={boundary}",
    }
    connection = http.client.HTTPConnection("127.0.0.1", localbase.api_port, timeout=30)
    try:
        connection.request("POST", f"/storage/v1/object/{bucket}/{key}", body, headers)
        response = connection.getresponse()
        status, payload = response.status, json.loads(response.read())
    finally:
        connection.close()
    assert status == 400
    assert (payload["statusCode"], payload["code"]) == ("400", "InvalidKey")
    assert object_count(localbase, bucket) == 0
    assert not list(localbase.data_dir.parent.rglob("escape.txt"))


def test_move_to_an_invalid_key_is_refused(service_client: Client, bucket: str) -> None:
    files = service_client.storage.from_(bucket)
    files.upload("a.txt", b"a")
    with pytest.raises(StorageApiError) as caught:
        files.move("a.txt", "../../escape.txt")
    assert (str(caught.value.status), caught.value.code) == ("400", "InvalidKey")
    assert files.download("a.txt") == b"a"


@pytest.mark.parametrize("name", ["bad/name", "", " padded", "ünïcode", ".."])
def test_invalid_bucket_names_are_refused(localbase: LocalbaseProcess, name: str) -> None:
    response = raw(localbase, "POST", "bucket", json={"id": name, "name": name})
    body = storage_error(response)
    assert (body["statusCode"], body["code"], body["error"]) == (
        "400",
        "InvalidBucketName",
        "Invalid Input",
    )


# Public buckets ------------------------------------------------------------------------------


def test_public_bucket_download_needs_no_credentials(
    service_client: Client, make_bucket: BucketFactory, localbase: LocalbaseProcess
) -> None:
    public = make_bucket(public=True)
    private = make_bucket()
    for bucket_id in (public, private):
        service_client.storage.from_(bucket_id).upload(
            "pic.png", b"\x89PNG", {"content-type": "image/png"}
        )
    url = service_client.storage.from_(public).get_public_url("pic.png")
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.content == b"\x89PNG"
    assert response.headers["content-type"] == "image/png"

    refused = httpx.get(f"{localbase.url}/storage/v1/object/public/{private}/pic.png")
    assert storage_error(refused)["error"] == "Bucket not found"
    missing = httpx.get(f"{localbase.url}/storage/v1/object/public/{public}/nope.png")
    assert storage_error(missing)["error"] == "not_found"


# Downloads -----------------------------------------------------------------------------------


def test_download_headers_and_ranges(
    service_client: Client, bucket: str, localbase: LocalbaseProcess
) -> None:
    files = service_client.storage.from_(bucket)
    files.upload("r.txt", b"0123456789", {"content-type": "text/plain", "cache-control": "60"})
    info = files.info("r.txt")
    assert (info["size"], info["content_type"], info["cache_control"]) == (
        10,
        "text/plain",
        "max-age=60",
    )
    response = raw(localbase, "GET", f"object/authenticated/{bucket}/r.txt")
    assert response.content == b"0123456789"
    assert response.headers["content-type"] == "text/plain"
    assert response.headers["cache-control"] == "max-age=60"
    assert response.headers["etag"] == info["etag"]
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["last-modified"]
    partial = raw(localbase, "GET", f"object/{bucket}/r.txt", headers={"Range": "bytes=2-4"})
    assert (partial.status_code, partial.content) == (206, b"234")
    assert partial.headers["content-range"] == "bytes 2-4/10"
    suffix = raw(localbase, "GET", f"object/{bucket}/r.txt", headers={"Range": "bytes=-3"})
    assert suffix.content == b"789"
    head = raw(localbase, "HEAD", f"object/{bucket}/r.txt")
    assert (head.status_code, head.content, head.headers["content-length"]) == (200, b"", "10")
    for bad_range in ("bytes=20-30", "bytes=abc", "bytes=5-2"):
        bad = raw(localbase, "GET", f"object/{bucket}/r.txt", headers={"Range": bad_range})
        assert bad.status_code == 416
        assert bad.json()["code"] == "InvalidRange"
        assert bad.headers["content-range"] == "bytes */10"


def test_user_metadata_round_trips(service_client: Client, bucket: str) -> None:
    files = service_client.storage.from_(bucket)
    files.upload("m.txt", b"m", {"metadata": {"kind": "report", "n": 1}})
    assert files.info("m.txt")["metadata"] == {"kind": "report", "n": 1}


# Update, move, copy, buckets -----------------------------------------------------------------


def test_update_is_an_upsert(
    service_client: Client, bucket: str, localbase: LocalbaseProcess
) -> None:
    files = service_client.storage.from_(bucket)
    files.update("new.txt", b"first")
    before = stored_files(localbase)
    files.update("new.txt", b"second")
    assert files.download("new.txt") == b"second"
    assert len(stored_files(localbase)) == len(before)  # the replaced version is deleted


def test_move_and_copy(service_client: Client, bucket: str) -> None:
    files = service_client.storage.from_(bucket)
    files.upload("a.txt", b"payload")
    assert files.move("a.txt", "moved/b.txt") == {"message": "Successfully moved"}
    assert files.exists("a.txt") is False
    assert files.copy("moved/b.txt", "c.txt")["Key"] == f"{bucket}/c.txt"
    assert files.download("moved/b.txt") == files.download("c.txt") == b"payload"
    files.remove(["moved/b.txt"])
    assert files.download("c.txt") == b"payload"
    with pytest.raises(StorageApiError) as missing:
        files.move("nope.txt", "x.txt")
    assert str(missing.value.status) == "404"
    with pytest.raises(StorageApiError) as taken:
        files.copy("c.txt", "c.txt")
    assert (str(taken.value.status), taken.value.code) == ("409", "Duplicate")


def test_bucket_update_empty_delete(
    service_client: Client, localbase: LocalbaseProcess, make_bucket: BucketFactory
) -> None:
    storage = service_client.storage
    bucket_id = make_bucket()
    storage.update_bucket(bucket_id, {"public": True, "file_size_limit": 10})
    bucket = storage.get_bucket(bucket_id)
    assert (bucket.public, bucket.file_size_limit) == (True, 10)
    storage.from_(bucket_id).upload("a.txt", b"a")
    with pytest.raises(StorageApiError) as not_empty:
        storage.delete_bucket(bucket_id)
    assert (str(not_empty.value.status), not_empty.value.code) == ("409", "ResourceNotEmpty")
    before = stored_files(localbase)
    assert "message" in storage.empty_bucket(bucket_id)
    assert len(before - stored_files(localbase)) == 1
    assert storage.delete_bucket(bucket_id) == {"message": "Successfully deleted"}
    with pytest.raises(StorageApiError) as gone:
        storage.get_bucket(bucket_id)
    assert (str(gone.value.status), gone.value.code) == ("404", "Bucket not found")


def test_duplicate_bucket(service_client: Client, bucket: str) -> None:
    with pytest.raises(StorageApiError) as caught:
        service_client.storage.create_bucket(bucket)
    assert (str(caught.value.status), caught.value.code) == ("409", "Duplicate")


def test_upload_to_missing_bucket(service_client: Client) -> None:
    with pytest.raises(StorageApiError) as caught:
        service_client.storage.from_("no-such-bucket").upload("a.txt", b"a")
    assert (str(caught.value.status), caught.value.code) == ("404", "Bucket not found")


def test_anon_cannot_create_buckets_without_a_policy(anon_client: Client) -> None:
    with pytest.raises(StorageApiError) as caught:
        anon_client.storage.create_bucket(f"b-{uuid.uuid4().hex[:12]}")
    assert (str(caught.value.status), caught.value.code) == ("403", "Unauthorized")


# Credentials ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    ["not-a-jwt", make_jwt(str(uuid.uuid4()), expires_in=-3600), "a.b.c"],
    ids=["garbage", "expired", "bad-signature"],
)
def test_bad_jwt_gives_the_storage_error_form(
    localbase: LocalbaseProcess, bucket: str, token: str
) -> None:
    body = storage_error(raw(localbase, "GET", "bucket", key=localbase.anon_key, token=token))
    assert (body["statusCode"], body["code"], body["error"]) == (
        "403",
        "AccessDenied",
        "Unauthorized",
    )


def test_missing_api_key_is_refused_by_the_gateway(localbase: LocalbaseProcess) -> None:
    response = httpx.get(f"{localbase.url}/storage/v1/bucket")
    assert response.status_code == 401
    assert response.json()["message"] == "No API key found in request"


# Bad input never gives a 500 -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("POST", "bucket", {"content": b"{not json"}),
        ("POST", "bucket", {"content": b"[1, 2]"}),
        ("POST", "bucket", {"json": {"name": 5}}),
        ("POST", "bucket", {"json": {"name": "ok-name", "file_size_limit": "lots"}}),
        ("POST", "bucket", {"json": {"name": "ok-name", "allowed_mime_types": "image/png"}}),
        ("PUT", "bucket/{bucket}", {"json": {}}),
        ("POST", "object/list/{bucket}", {"content": b"\xff\xfe"}),
        ("POST", "object/list/{bucket}", {"json": {"prefix": "", "limit": "many"}}),
        ("POST", "object/list/{bucket}", {"json": {"prefix": "", "sortBy": {"column": "x"}}}),
        ("POST", "object/move", {"json": {"bucketId": "{bucket}"}}),
        ("POST", "object/copy", {"content": b"null"}),
        ("DELETE", "object/{bucket}", {"json": {"prefixes": "a.txt"}}),
        ("DELETE", "object/{bucket}", {"json": {"prefixes": []}}),
        ("POST", "object/sign/{bucket}/a.txt", {"json": {"expiresIn": "soon"}}),
        (
            "POST",
            "object/{bucket}/m.txt",
            {"content": b"garbage", "headers": {"content-type": "multipart/form-data; boundary=x"}},
        ),
        (
            "POST",
            "object/{bucket}/m.txt",
            {"content": b"x", "headers": {"content-type": "multipart/form-data"}},
        ),
        ("POST", "object/{bucket}/m.txt", {"data": {"cacheControl": "3600"}, "files": {}}),
        ("POST", "object/{bucket}/m.txt", {"files": {"other": (None, b"just a field")}}),
        ("GET", "object/sign/{bucket}/m.txt?token=", {}),
        ("GET", "object/sign/{bucket}/m.txt?token=a.b.c", {}),
        ("GET", "nowhere", {}),
    ],
)
def test_bad_input_gives_a_storage_error(
    localbase: LocalbaseProcess,
    bucket: str,
    method: str,
    path: str,
    kwargs: dict[str, Any],
) -> None:
    if kwargs.get("files") == {}:
        kwargs = {**kwargs, "files": {"cacheControl": (None, b"3600")}}
        kwargs.pop("data")
    response = raw(localbase, method, path.format(bucket=bucket), **kwargs)
    assert response.status_code in {400, 404}, response.text
    body = response.json()
    assert isinstance(body["statusCode"], str)
    assert body["statusCode"] != "500"
    assert set(body) == {"statusCode", "code", "error", "message"}
    assert object_count(localbase, bucket) == 0


def test_truncated_multipart_is_refused_and_leaves_nothing(
    localbase: LocalbaseProcess, bucket: str
) -> None:
    before = stored_files(localbase)
    body = (
        b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n'
        b"Content-Type: text/plain\r\n\r\n" + b"partial data with no closing boundary"
    )
    headers = {"content-type": "multipart/form-data; boundary=xyz"}
    response = raw(localbase, "POST", f"object/{bucket}/t.txt", content=body, headers=headers)
    assert storage_error(response)["code"] == "InvalidRequest"
    assert stored_files(localbase) == before
    assert object_count(localbase, bucket) == 0


def test_raw_body_upload(localbase: LocalbaseProcess, service_client: Client, bucket: str) -> None:
    response = raw(
        localbase,
        "POST",
        f"object/{bucket}/raw.json",
        content=json.dumps({"a": 1}).encode(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["Key"] == f"{bucket}/raw.json"
    info = service_client.storage.from_(bucket).info("raw.json")
    assert info["content_type"] == "application/json"
