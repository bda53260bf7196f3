"""Object routes that write or list: upload, update, remove, move, copy, list, info.

An upload keeps the database row and the file consistent:

1. the bucket's limits are read (as service_role, like Storage's ``asSuperUser()``);
2. the row is written and rolled back, so RLS or a duplicate key refuses the upload before a
   byte is stored;
3. the body streams into ``tmp/``, under the size and mimetype limits;
4. one transaction as the role writes the row and moves the file into place before it commits.
   If the statement fails the file is never published; if the commit fails it is removed.
   The replaced version's file is deleted only after the commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.types.json import Jsonb
from starlette.responses import JSONResponse, Response

from localbase.storage.context import Call, Operation, Target, int_field, optional_text, text_field
from localbase.storage.errors import (
    StorageError,
    from_postgres,
    invalid_request,
    key_already_exists,
    no_such_bucket,
    no_such_key,
    resource_already_exists,
)
from localbase.storage.models import OBJECT_COLUMNS, StoredObject, iso, list_entry
from localbase.storage.names import check_bucket_name, check_key
from localbase.storage.uploads import MAX_UPLOAD_BYTES, Body, Upload, UploadRules, receive

MAX_LIST_LIMIT = 1500
MAX_REMOVE = 1000
_SORT_COLUMNS = ("name", "updated_at", "created_at", "last_accessed_at")

# A plain insert has no RETURNING, so an INSERT policy alone allows an upload (as in Storage).
_INSERT = (
    "insert into storage.objects"
    " (id, bucket_id, name, owner, owner_id, version, metadata, user_metadata)"
    " values (%(id)s, %(bucket)s, %(name)s, %(owner)s, %(owner_id)s, %(version)s, %(metadata)s,"
    " %(user_metadata)s)"
)
_UPSERT = _INSERT + (
    " on conflict (bucket_id, name) do update set owner = excluded.owner,"
    " owner_id = excluded.owner_id, version = excluded.version, metadata = excluded.metadata,"
    " user_metadata = excluded.user_metadata, updated_at = now(), last_accessed_at = now()"
    " returning id"
)
_LIST = """
with hits as (
    select o.id, o.updated_at, o.created_at, o.last_accessed_at, o.metadata,
           substr(o.name, char_length(%(prefix)s) + 1) as rest
    from storage.objects o
    where o.bucket_id = %(bucket)s and starts_with(lower(o.name), lower(%(needle)s))
), entries as (
    select distinct split_part(rest, '/', 1) as name, null::uuid as id,
           null::timestamptz as updated_at, null::timestamptz as created_at,
           null::timestamptz as last_accessed_at, null::jsonb as metadata, true as folder
    from hits where strpos(rest, '/') > 0
    union all
    select rest, id, updated_at, created_at, last_accessed_at, metadata, false
    from hits where strpos(rest, '/') = 0
)
select name, id, updated_at, created_at, last_accessed_at, metadata from entries
order by {order}
limit %(limit)s offset %(offset)s
"""


class _Rollback(Exception):
    """Ends a trial transaction: the statement ran, its effects are discarded."""


async def upload(call: Call, target: Target) -> Response:
    upsert = call.request.headers.get("x-upsert", "").lower() == "true"
    return await _upload(call, target, upsert=upsert, operation=Operation.CREATE_OBJECT)


async def update(call: Call, target: Target) -> Response:
    return await _upload(call, target, upsert=True, operation=Operation.UPDATE_OBJECT)


async def _upload(call: Call, target: Target, *, upsert: bool, operation: Operation) -> Response:
    object_id = await store_upload(call, target, upsert=upsert, operation=operation)
    return JSONResponse({"Id": object_id, "Key": f"{target.bucket}/{target.key}"})


async def store_upload(call: Call, target: Target, *, upsert: bool, operation: Operation) -> str:
    """Store the request body as ``target`` (the call's role and owner); the object's id."""
    body = Body(call.request)
    try:
        return await _store(call, target, body, upsert=upsert, operation=operation)
    except StorageError as exc:
        await _finish_body(body, exc)
        raise
    except psycopg.Error as exc:
        error = _write_error(exc, upsert=upsert)
        await _finish_body(body, error)
        raise error from exc


async def check_upload(call: Call, target: Target, *, upsert: bool, operation: Operation) -> None:
    """Refuse (with Storage's error) an upload the call's role could not make: a missing
    bucket, an invalid key, RLS, or an existing object when not upserting."""
    check_key(target.key)
    await _upload_rules(call, target.bucket, operation)
    try:
        await _trial_write(call, target, upsert=upsert, operation=operation)
    except psycopg.Error as exc:
        raise _write_error(exc, upsert=upsert) from exc


async def _trial_write(call: Call, target: Target, *, upsert: bool, operation: Operation) -> None:
    trial = _row(call, target, str(uuid.uuid4()), {}, None)
    try:
        async with call.transaction(operation) as cur:
            await cur.execute(_UPSERT if upsert else _INSERT, trial)
            raise _Rollback
    except _Rollback:
        pass


async def _finish_body(body: Body, error: StorageError) -> None:
    """Read the rest of a refused upload so the client sees the error, not a reset."""
    if not await body.drain():
        error.headers["Connection"] = "close"


def _write_error(exc: psycopg.Error, *, upsert: bool) -> StorageError:
    if isinstance(exc, pg_errors.UniqueViolation):
        return resource_already_exists() if upsert else key_already_exists()
    if isinstance(exc, pg_errors.ForeignKeyViolation):
        return no_such_bucket()
    return from_postgres(exc)


async def _store(
    call: Call, target: Target, body: Body, *, upsert: bool, operation: Operation
) -> str:
    check_key(target.key)
    rules = await _upload_rules(call, target.bucket, operation)
    await _trial_write(call, target, upsert=upsert, operation=operation)
    staged = call.files.stage()
    try:
        received = await receive(call.request, body, staged, rules)
        return await _save(call, target, received, upsert=upsert, operation=operation)
    finally:
        staged.discard()


async def _upload_rules(call: Call, bucket: str, operation: Operation) -> UploadRules:
    query = "select file_size_limit, allowed_mime_types from storage.buckets where id = %s"
    async with call.transaction(operation, read_only=True, elevated=True) as cur:
        await cur.execute(query, (bucket,))
        row = await cur.fetchone()
    if row is None:
        raise no_such_bucket()
    limit = row["file_size_limit"]
    mimes = row["allowed_mime_types"]
    return UploadRules(
        min(limit, MAX_UPLOAD_BYTES) if limit else MAX_UPLOAD_BYTES,
        None if mimes is None else tuple(mimes),
    )


def _row(
    call: Call, target: Target, version: str, metadata: Mapping[str, Any], user_metadata: Any
) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "bucket": target.bucket,
        "name": target.key,
        "owner": call.owner,
        "owner_id": call.owner_id,
        "version": version,
        "metadata": Jsonb(dict(metadata)),
        "user_metadata": None if user_metadata is None else Jsonb(user_metadata),
    }


def _metadata(upload: Upload) -> dict[str, Any]:
    size = upload.file.size
    return {
        "eTag": upload.file.etag,
        "size": size,
        "mimetype": upload.mimetype,
        "cacheControl": upload.cache_control,
        "lastModified": iso(datetime.now(UTC)),
        "contentLength": size,
        "httpStatusCode": 200,
    }


async def _save(
    call: Call, target: Target, upload: Upload, *, upsert: bool, operation: Operation
) -> str:
    version = str(uuid.uuid4())
    params = _row(call, target, version, _metadata(upload), upload.user_metadata)
    previous: str | None = None
    object_id = params["id"]
    try:
        async with call.transaction(operation) as cur:
            if upsert:
                previous = await _current_version(cur, target)
                await cur.execute(_UPSERT, params)
                row = await cur.fetchone()
                assert row is not None
                object_id = row["id"]
            else:
                await cur.execute(_INSERT, params)
            await call.files.publish(upload.file, version)
    except BaseException:
        if upload.file.published:
            await call.files.remove([version])
        raise
    await call.files.remove([previous])
    return str(object_id)


async def _current_version(cur: psycopg.AsyncCursor[Any], target: Target) -> str | None:
    await cur.execute(
        "select version from storage.objects where bucket_id = %s and name = %s for update",
        (target.bucket, target.key),
    )
    row = await cur.fetchone()
    return None if row is None else row["version"]


async def remove_many(call: Call, target: Target) -> Response:
    prefixes = (await call.json_object()).get("prefixes")
    if (
        not isinstance(prefixes, list)
        or not 0 < len(prefixes) <= MAX_REMOVE
        or not all(isinstance(p, str) for p in prefixes)
    ):
        raise invalid_request(f"body/prefixes must be an array of 1 to {MAX_REMOVE} strings")
    query = (
        f"delete from storage.objects where bucket_id = %s and name = any(%s)"
        f" returning {OBJECT_COLUMNS}"
    )
    async with call.transaction(Operation.DELETE_OBJECTS) as cur:
        await cur.execute(query, (target.bucket, prefixes))
        removed = [StoredObject.from_row(row) for row in await cur.fetchall()]
    await call.files.remove(obj.version for obj in removed)
    return JSONResponse([obj.to_json() for obj in removed])


async def remove_one(call: Call, target: Target) -> Response:
    query = "delete from storage.objects where bucket_id = %s and name = %s returning version"
    async with call.transaction(Operation.DELETE_OBJECT) as cur:
        await cur.execute(query, (target.bucket, target.key))
        row = await cur.fetchone()
    if row is None:
        raise no_such_key()
    await call.files.remove([row["version"]])
    return JSONResponse({"message": "Successfully deleted"})


def _transfer(body: Mapping[str, Any]) -> tuple[Target, Target]:
    """The source and destination of a move or copy body."""
    bucket = text_field(body, "bucketId")
    source = Target(bucket, text_field(body, "sourceKey"))
    destination_bucket = optional_text(body, "destinationBucket") or bucket
    destination = Target(check_bucket_name(destination_bucket), text_field(body, "destinationKey"))
    check_key(destination.key)
    return source, destination


async def move(call: Call, target: Target) -> Response:
    source, destination = _transfer(await call.json_object())
    query = (
        "update storage.objects set bucket_id = %s, name = %s, owner = %s, owner_id = %s,"
        " updated_at = now() where bucket_id = %s and name = %s returning id"
    )
    params = (
        destination.bucket,
        destination.key,
        call.owner,
        call.owner_id,
        source.bucket,
        source.key,
    )
    try:
        async with call.transaction(Operation.MOVE_OBJECT) as cur:
            await cur.execute(query, params)
            if await cur.fetchone() is None:
                raise no_such_key()
    except (pg_errors.UniqueViolation, pg_errors.ForeignKeyViolation) as exc:
        raise _write_error(exc, upsert=True) from exc
    return JSONResponse({"message": "Successfully moved"})


async def copy(call: Call, target: Target) -> Response:
    source, destination = _transfer(await call.json_object())
    version = str(uuid.uuid4())
    copied = False
    try:
        async with call.transaction(Operation.COPY_OBJECT) as cur:
            original = await select_object(cur, source)
            if original is None or original.version is None:
                raise no_such_key()
            metadata = {**original.metadata, "lastModified": iso(datetime.now(UTC))}
            params = _row(call, destination, version, metadata, original.user_metadata)
            await cur.execute(_INSERT, params)
            try:
                await call.files.copy(original.version, version)
            except FileNotFoundError as exc:
                raise no_such_key() from exc
            copied = True
    except (pg_errors.UniqueViolation, pg_errors.ForeignKeyViolation) as exc:
        raise _write_error(exc, upsert=True) from exc
    except BaseException:
        if copied:
            await call.files.remove([version])
        raise
    return JSONResponse({"Id": str(params["id"]), "Key": f"{destination.bucket}/{destination.key}"})


async def select_object(cur: psycopg.AsyncCursor[Any], target: Target) -> StoredObject | None:
    query = f"select {OBJECT_COLUMNS} from storage.objects where bucket_id = %s and name = %s"
    await cur.execute(query, (target.bucket, target.key))
    row = await cur.fetchone()
    return None if row is None else StoredObject.from_row(row)


async def find_object(call: Call, target: Target, operation: Operation) -> StoredObject:
    """An object as the route may see it: through RLS, or as service_role in a public bucket."""
    async with call.transaction(operation, read_only=True, elevated=True) as cur:
        await cur.execute("select public from storage.buckets where id = %s", (target.bucket,))
        bucket = await cur.fetchone()
    if bucket is None:
        raise no_such_bucket()
    async with call.transaction(operation, read_only=True, elevated=bucket["public"]) as cur:
        found = await select_object(cur, target)
    if found is None:
        raise no_such_key()
    return found


async def info(call: Call, target: Target) -> Response:
    found = await find_object(call, target, Operation.GET_OBJECT_INFO)
    return JSONResponse(found.info_json())


def _list_order(sort_by: Any) -> sql.Composable:
    if sort_by is None:
        sort_by = {}
    if not isinstance(sort_by, dict):
        raise invalid_request("body/sortBy must be object")
    column = sort_by.get("column") or "name"
    order = sort_by.get("order") or "asc"
    if column not in _SORT_COLUMNS:
        raise invalid_request(f"body/sortBy/column must be one of {', '.join(_SORT_COLUMNS)}")
    if not isinstance(order, str) or order.lower() not in {"asc", "desc"}:
        raise invalid_request("body/sortBy/order must be asc or desc")
    direction = sql.SQL(order.lower())
    by_name = sql.SQL('lower(name) collate "C" {0}, name collate "C" {0}').format(direction)
    if column == "name":
        return by_name
    return sql.SQL("folder desc, {} {}, {}").format(sql.Identifier(column), direction, by_name)


async def list_objects(call: Call, target: Target) -> Response:
    body = await call.json_object()
    prefix = optional_text(body, "prefix") or ""
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    params = {
        "bucket": target.bucket,
        "prefix": prefix,
        "needle": prefix + (optional_text(body, "search") or ""),
        "limit": min(int_field(body, "limit", 100, minimum=1), MAX_LIST_LIMIT),
        "offset": int_field(body, "offset", 0),
    }
    query = sql.SQL(_LIST).format(order=_list_order(body.get("sortBy")))
    async with call.transaction(Operation.LIST_OBJECTS, read_only=True) as cur:
        await cur.execute(query, params)
        rows = await cur.fetchall()
    return JSONResponse([list_entry(row) for row in rows])
