"""``/bucket`` routes: list, get, create, update, empty and delete buckets.

All of them run as the request's role, so the project's policies on ``storage.buckets`` decide
(service_role bypasses them). Deleting a bucket that still holds objects fails on the foreign key
from ``storage.objects``, whatever the role can see, and answers ResourceNotEmpty.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from psycopg import errors as pg_errors
from psycopg import sql
from starlette.responses import JSONResponse, Response

from localbase.storage.context import Call, Operation, Target
from localbase.storage.errors import (
    bucket_already_exists,
    bucket_not_empty,
    entity_too_large,
    invalid_mime_type,
    invalid_request,
    no_such_bucket,
)
from localbase.storage.models import BUCKET_COLUMNS, Bucket
from localbase.storage.names import check_bucket_name
from localbase.storage.uploads import MAX_UPLOAD_BYTES

_MIME = re.compile(r"^([a-zA-Z0-9\-+.]+)/([a-zA-Z0-9\-+.]+)(;\s*charset=[a-zA-Z0-9\-]+)?$|\*$")
_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)(gb|mb|kb|b)", re.IGNORECASE)
_UNITS = {"gb": 10**9, "mb": 10**6, "kb": 10**3, "b": 1}
_SETTINGS = ("public", "file_size_limit", "allowed_mime_types")


@dataclass(frozen=True)
class BucketSettings:
    """The settings a create/update body gives; absent keys are left out of ``values``."""

    values: Mapping[str, Any]

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> BucketSettings:
        values: dict[str, Any] = {}
        if "public" in body and body["public"] is not None:
            if not isinstance(body["public"], bool):
                raise invalid_request("body/public must be boolean")
            values["public"] = body["public"]
        if "file_size_limit" in body:
            values["file_size_limit"] = _size_limit(body["file_size_limit"])
        if "allowed_mime_types" in body:
            values["allowed_mime_types"] = _mime_types(body["allowed_mime_types"])
        return cls(values)


def _size_limit(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, str):
        match = _SIZE.fullmatch(value.strip())
        if match is None:
            raise invalid_request("Invalid file size format, hint: use 20GB / 20MB / 30KB / 3B")
        value = int(float(match[1]) * _UNITS[match[2].lower()])
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise invalid_request("body/file_size_limit must be a non-negative integer or a size")
    if value > MAX_UPLOAD_BYTES:
        raise entity_too_large()
    return value


def _mime_types(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid_request("body/allowed_mime_types must be an array of strings")
    mimes = [v for v in value if v]
    for mime in mimes:
        if len(mime) > 1000 or not _MIME.search(mime):
            raise invalid_mime_type(mime)
    return mimes


async def list_buckets(call: Call, target: Target) -> Response:
    query = f"select {BUCKET_COLUMNS} from storage.buckets order by name"
    async with call.transaction(Operation.LIST_BUCKET, read_only=True) as cur:
        await cur.execute(query)
        rows = await cur.fetchall()
    return JSONResponse([Bucket.from_row(row).to_json() for row in rows])


async def get_bucket(call: Call, target: Target) -> Response:
    query = f"select {BUCKET_COLUMNS} from storage.buckets where id = %s"
    async with call.transaction(Operation.GET_BUCKET, read_only=True) as cur:
        await cur.execute(query, (target.bucket,))
        row = await cur.fetchone()
    if row is None:
        raise no_such_bucket()
    return JSONResponse(Bucket.from_row(row).to_json())


async def create_bucket(call: Call, target: Target) -> Response:
    body = await call.json_object()
    name = body.get("name")
    bucket_id = body.get("id") or name
    if not isinstance(name, str) or not isinstance(bucket_id, str):
        raise invalid_request("body must have required string property 'name'")
    check_bucket_name(name)
    check_bucket_name(bucket_id)
    settings = BucketSettings.parse(body).values
    query = (
        "insert into storage.buckets"
        " (id, name, owner, owner_id, public, file_size_limit, allowed_mime_types)"
        " values (%s, %s, %s, %s, %s, %s, %s)"
    )
    params = (
        bucket_id,
        name,
        call.owner,
        call.owner_id,
        settings.get("public", False),
        settings.get("file_size_limit"),
        settings.get("allowed_mime_types"),
    )
    try:
        async with call.transaction(Operation.CREATE_BUCKET) as cur:
            await cur.execute(query, params)
    except pg_errors.UniqueViolation as exc:
        raise bucket_already_exists() from exc
    return JSONResponse({"name": name})


async def update_bucket(call: Call, target: Target) -> Response:
    check_bucket_name(target.bucket)
    settings = BucketSettings.parse(await call.json_object()).values
    if not settings:
        raise invalid_request("No content provided")
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder())
        for column in _SETTINGS
        if column in settings
    )
    query = sql.SQL(
        "update storage.buckets set {}, updated_at = now() where id = %s returning id"
    ).format(assignments)
    params = [settings[column] for column in _SETTINGS if column in settings]
    async with call.transaction(Operation.UPDATE_BUCKET) as cur:
        await cur.execute(query, [*params, target.bucket])
        if await cur.fetchone() is None:
            raise no_such_bucket()
    return JSONResponse({"message": "Successfully updated"})


async def empty_bucket(call: Call, target: Target) -> Response:
    async with call.transaction(Operation.EMPTY_BUCKET) as cur:
        await cur.execute("select id from storage.buckets where id = %s", (target.bucket,))
        if await cur.fetchone() is None:
            raise no_such_bucket()
        await cur.execute(
            "delete from storage.objects where bucket_id = %s returning version", (target.bucket,)
        )
        versions = [row["version"] for row in await cur.fetchall()]
    await call.files.remove(versions)
    return JSONResponse({"message": "Successfully emptied"})


async def delete_bucket(call: Call, target: Target) -> Response:
    query = "delete from storage.buckets where id = %s returning id"
    try:
        async with call.transaction(Operation.DELETE_BUCKET) as cur:
            await cur.execute(query, (target.bucket,))
            if await cur.fetchone() is None:
                raise no_such_bucket()
    except pg_errors.ForeignKeyViolation as exc:
        raise bucket_not_empty() from exc
    return JSONResponse({"message": "Successfully deleted"})
