"""Signed upload URLs through storage3's ``create_signed_upload_url`` / ``upload_to_signed_url``.

Signing is authorized like an upload (RLS on ``storage.objects`` as the signer); the token is a
JWT over ``{owner, url, upsert, scope, iat, exp}`` signed with the project secret and valid for
two hours; the PUT needs no credentials, stores the object as the signer's, and answers
``{"Key": …}``. Reused (without upsert), expired, forged, misdirected or download tokens get
Storage's error body.
"""

from __future__ import annotations

import time
import uuid

import httpx
import jwt
import pytest
from storage3.exceptions import StorageApiError
from storage3.types import CreateSignedUploadUrlOptions

from devstack.localbase import LocalbaseProcess
from localbase import keys
from supabase import Client
from tests.conftest import user_client


@pytest.fixture
def bucket(folder_policies: str) -> str:
    """A private bucket where users may only touch objects under a folder named after them."""
    return folder_policies


def claims_of(token: str) -> dict[str, object]:
    decoded: dict[str, object] = jwt.decode(token, keys.JWT_SECRET, algorithms=["HS256"])
    return decoded


def put_url(localbase: LocalbaseProcess, bucket: str, key: str, token: str) -> str:
    return f"{localbase.url}/storage/v1/object/upload/sign/{bucket}/{key}?token={token}"


def storage_error(response: httpx.Response) -> dict[str, str]:
    body: dict[str, str] = response.json()
    assert response.status_code == 400, body
    assert set(body) >= {"statusCode", "error", "message"}, body
    return body


def test_user_signs_and_anyone_uploads_once(
    localbase: LocalbaseProcess, service_client: Client, bucket: str
) -> None:
    uid = str(uuid.uuid4())
    files = user_client(localbase, uid).storage.from_(bucket)
    signed = files.create_signed_upload_url(f"{uid}/a b.txt")
    assert signed["path"] == f"{uid}/a b.txt"
    assert signed["signed_url"].startswith(f"{localbase.url}/storage/v1/object/upload/sign/")
    claims = claims_of(signed["token"])
    assert claims["url"] == f"{bucket}/{uid}/a b.txt"
    assert claims["owner"] == uid
    assert claims["upsert"] is False
    assert claims["exp"] == claims["iat"] + 7200  # type: ignore[operator]

    anonymous = service_client.storage.from_(bucket)  # the token is the permission
    uploaded = anonymous.upload_to_signed_url(f"{uid}/a b.txt", signed["token"], b"signed")
    assert uploaded.full_path == f"{bucket}/{uid}/a b.txt"
    assert files.download(f"{uid}/a b.txt") == b"signed"
    removed = service_client.storage.from_(bucket).remove([f"{uid}/a b.txt"])
    assert removed[0]["owner_id"] == uid

    files.upload(f"{uid}/b.txt", b"first")
    again = files.create_signed_upload_url(f"{uid}/c.txt")
    files.upload_to_signed_url(f"{uid}/c.txt", again["token"], b"once")
    with pytest.raises(StorageApiError) as reused:
        files.upload_to_signed_url(f"{uid}/c.txt", again["token"], b"twice")
    assert (str(reused.value.status), reused.value.code) == ("409", "Duplicate")
    assert files.download(f"{uid}/c.txt") == b"once"


def test_x_upsert_lets_the_token_replace(localbase: LocalbaseProcess, bucket: str) -> None:
    uid = str(uuid.uuid4())
    files = user_client(localbase, uid).storage.from_(bucket)
    files.upload(f"{uid}/a.txt", b"old")
    with pytest.raises(StorageApiError) as exists:
        files.create_signed_upload_url(f"{uid}/a.txt")
    assert (str(exists.value.status), exists.value.code) == ("409", "Duplicate")

    options = CreateSignedUploadUrlOptions(upsert="true")
    signed = files.create_signed_upload_url(f"{uid}/a.txt", options)
    assert claims_of(signed["token"])["upsert"] is True
    files.upload_to_signed_url(f"{uid}/a.txt", signed["token"], b"new")
    assert files.download(f"{uid}/a.txt") == b"new"
    files.upload_to_signed_url(f"{uid}/a.txt", signed["token"], b"newer")
    assert files.download(f"{uid}/a.txt") == b"newer"


def test_signing_is_authorized_like_an_upload(
    localbase: LocalbaseProcess, anon_client: Client, bucket: str
) -> None:
    uid, other = str(uuid.uuid4()), str(uuid.uuid4())
    files = user_client(localbase, uid).storage.from_(bucket)
    with pytest.raises(StorageApiError) as refused:
        files.create_signed_upload_url(f"{other}/a.txt")
    assert (str(refused.value.status), refused.value.code) == ("403", "Unauthorized")
    with pytest.raises(StorageApiError) as anon:
        anon_client.storage.from_(bucket).create_signed_upload_url(f"{uid}/a.txt")
    assert str(anon.value.status) == "403"
    with pytest.raises(StorageApiError) as no_bucket:
        user_client(localbase, uid).storage.from_("no-such-bucket").create_signed_upload_url(
            f"{uid}/a.txt"
        )
    assert (str(no_bucket.value.status), no_bucket.value.message) == ("404", "Bucket not found")


def test_bad_tokens_get_storage_errors(
    localbase: LocalbaseProcess, service_client: Client, bucket: str
) -> None:
    uid = str(uuid.uuid4())
    files = user_client(localbase, uid).storage.from_(bucket)
    key = f"{uid}/a.txt"
    now = int(time.time())
    base = {"url": f"{bucket}/{key}", "owner": uid, "upsert": False, "iat": now - 7300}

    expired = jwt.encode({**base, "exp": now - 100}, keys.JWT_SECRET)
    body = storage_error(httpx.put(put_url(localbase, bucket, key, expired), content=b"x"))
    assert body["error"] == "ExpiredToken"
    forged = jwt.encode({**base, "exp": now + 60}, "not-the-project-secret-" * 2)
    body = storage_error(httpx.put(put_url(localbase, bucket, key, forged), content=b"x"))
    assert body["error"] == "InvalidJWT"

    signed = files.create_signed_upload_url(key)["token"]
    other = put_url(localbase, bucket, f"{uid}/b.txt", signed)
    assert storage_error(httpx.put(other, content=b"x"))["error"] == "InvalidSignature"

    files.upload(f"{uid}/d.txt", b"d")
    download = files.create_signed_url(f"{uid}/d.txt", 60)["signedURL"]
    assert download is not None
    download_token = httpx.URL(download).params["token"]
    as_upload = put_url(localbase, bucket, f"{uid}/d.txt", download_token)
    assert storage_error(httpx.put(as_upload, content=b"x"))["error"] == "InvalidSignature"
    as_download = f"{localbase.url}/storage/v1/object/sign/{bucket}/{key}?token={signed}"
    assert storage_error(httpx.get(as_download))["error"] == "InvalidSignature"

    no_token = f"{localbase.url}/storage/v1/object/upload/sign/{bucket}/{key}"
    assert storage_error(httpx.put(no_token, content=b"x"))["statusCode"] == "400"
    assert not files.exists(key)
    assert files.download(f"{uid}/d.txt") == b"d"
