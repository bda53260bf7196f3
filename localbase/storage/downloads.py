"""Object routes that read bytes: downloads (authenticated, public, signed) and URL signing.

* ``GET /object/{bucket}/{key}`` and ``/object/authenticated/…``: through RLS as the request's
  role; in a public bucket as service_role, as Storage does.
* ``GET /object/public/{bucket}/{key}``: no credentials; only for buckets with ``public``.
* ``POST /object/sign/{bucket}/{key}``: the role must see the object; answers a token URL.
* ``GET /object/sign/{bucket}/{key}?token=``: no credentials; the token is the permission.

Responses carry the stored ``Content-Type``, ``Cache-Control`` and ``ETag``, plus
``Last-Modified``, ``Content-Length`` and ``Accept-Ranges``; a single byte range is honoured.
The file is opened before the response starts, so a concurrent overwrite cannot cut it short.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from datetime import UTC
from email.utils import format_datetime
from typing import BinaryIO
from urllib.parse import quote

from starlette.responses import JSONResponse, Response, StreamingResponse

from localbase.storage import tokens
from localbase.storage.context import Call, Operation, Target, int_field
from localbase.storage.errors import (
    invalid_range,
    invalid_request,
    no_such_bucket,
    no_such_key,
)
from localbase.storage.models import StoredObject
from localbase.storage.objects import find_object, select_object

CHUNK_BYTES = 256 * 1024
MAX_SIGN_PATHS = 1000
_HEADER_SAFE = re.compile(r"[\x20-\x7e]+")
_URL_SAFE = "/!$&'()*+,;=:@"
_URI_COMPONENT_SAFE = "!~*'()"  # with A-Z a-z 0-9 - _ . : what encodeURIComponent leaves alone


async def download(call: Call, target: Target) -> Response:
    found = await find_object(call, target, Operation.GET_AUTH_OBJECT)
    return await _serve(call, found)


async def public_download(call: Call, target: Target) -> Response:
    query = "select public from storage.buckets where id = %s and public"
    async with call.transaction(Operation.GET_PUBLIC_OBJECT, read_only=True, elevated=True) as cur:
        await cur.execute(query, (target.bucket,))
        if await cur.fetchone() is None:
            raise no_such_bucket()
    return await _serve(call, await _find_elevated(call, target, Operation.GET_PUBLIC_OBJECT))


async def signed_download(call: Call, target: Target) -> Response:
    token = call.request.query_params.get("token")
    if not token:
        raise invalid_request("querystring must have required property 'token'")
    tokens.verify(token, target.bucket, target.key)
    return await _serve(call, await _find_elevated(call, target, Operation.GET_SIGNED_OBJECT))


async def _find_elevated(call: Call, target: Target, operation: Operation) -> StoredObject:
    async with call.transaction(operation, read_only=True, elevated=True) as cur:
        found = await select_object(cur, target)
    if found is None:
        raise no_such_key()
    return found


def signed_path(bucket: str, key: str, token: str) -> str:
    return f"/object/sign/{quote(f'{bucket}/{key}', safe=_URL_SAFE)}?token={token}"


async def sign(call: Call, target: Target) -> Response:
    body = await call.json_object()
    expires_in = int_field(body, "expiresIn", 0, minimum=1)
    query = "select id from storage.objects where bucket_id = %s and name = %s"
    async with call.transaction(Operation.SIGN_OBJECT_URL, read_only=True) as cur:
        await cur.execute(query, (target.bucket, target.key))
        if await cur.fetchone() is None:
            raise no_such_key()
    token = tokens.sign(target.bucket, target.key, expires_in)
    return JSONResponse({"signedURL": signed_path(target.bucket, target.key, token)})


async def sign_many(call: Call, target: Target) -> Response:
    body = await call.json_object()
    expires_in = int_field(body, "expiresIn", 0, minimum=1)
    paths = body.get("paths")
    if (
        not isinstance(paths, list)
        or not 0 < len(paths) <= MAX_SIGN_PATHS
        or not all(isinstance(p, str) for p in paths)
    ):
        raise invalid_request(f"body/paths must be an array of 1 to {MAX_SIGN_PATHS} strings")
    query = "select name from storage.objects where bucket_id = %s and name = any(%s)"
    async with call.transaction(Operation.SIGN_OBJECT_URLS, read_only=True) as cur:
        await cur.execute(query, (target.bucket, paths))
        visible = {row["name"] for row in await cur.fetchall()}
    return JSONResponse([_signed_entry(target.bucket, p, p in visible, expires_in) for p in paths])


def _signed_entry(bucket: str, key: str, visible: bool, expires_in: int) -> dict[str, str | None]:
    if not visible:
        error = "Either the object does not exist or you do not have access to it"
        return {"error": error, "path": key, "signedURL": None}
    token = tokens.sign(bucket, key, expires_in)
    return {"error": None, "path": key, "signedURL": signed_path(bucket, key, token)}


def _header(value: str, default: str) -> str:
    return value if _HEADER_SAFE.fullmatch(value) else default


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive ``(first, last)`` of a single ``bytes=`` range; None means everything."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    digits = first + last
    if not dash or not digits or not (digits.isascii() and digits.isdigit()):
        raise invalid_range(size)
    if first:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    else:
        start, end = max(size - int(last), 0), size - 1
    if start > end or start >= size:
        raise invalid_range(size)
    return start, end


def _headers(found: StoredObject, size: int, download: str | None) -> dict[str, str]:
    headers = {
        "Content-Type": _header(found.mimetype, "application/octet-stream"),
        "Cache-Control": _header(found.cache_control, "no-cache"),
        "Last-Modified": format_datetime(found.updated_at.astimezone(UTC), usegmt=True),
        "Content-Length": str(size),
        "Accept-Ranges": "bytes",
    }
    if found.etag is not None:
        headers["ETag"] = _header(found.etag, "")
    if download is not None:
        headers["Content-Disposition"] = content_disposition(download)
    return headers


def content_disposition(download: str) -> str:
    """Storage's renderer: ``attachment;`` alone for ``?download=``, else the name twice,
    escaped as JavaScript's ``encodeURIComponent`` escapes it."""
    if not download:
        return "attachment;"
    name = quote(download, safe=_URI_COMPONENT_SAFE)
    return f"attachment; filename={name}; filename*=UTF-8''{name}"


async def _serve(call: Call, found: StoredObject) -> Response:
    handle = None if found.version is None else await call.files.open(found.version)
    if handle is None:
        raise no_such_key()
    try:
        size = os.fstat(handle.fileno()).st_size
        headers = _headers(found, size, call.request.query_params.get("download"))
        span = byte_range(call.request.headers.get("range"), size)
    except BaseException:
        handle.close()
        raise
    status = 200
    start, length = 0, size
    if span is not None:
        start, length = span[0], span[1] - span[0] + 1
        headers["Content-Range"] = f"bytes {span[0]}-{span[1]}/{size}"
        headers["Content-Length"] = str(length)
        status = 206
    if call.request.method == "HEAD":
        handle.close()
        return Response(status_code=status, headers=headers)
    return StreamingResponse(_read(handle, start, length), status_code=status, headers=headers)


async def _read(handle: BinaryIO, start: int, length: int) -> AsyncIterator[bytes]:
    try:
        await asyncio.to_thread(handle.seek, start)
        remaining = length
        while remaining > 0:
            chunk = await asyncio.to_thread(handle.read, min(CHUNK_BYTES, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk
    finally:
        handle.close()
